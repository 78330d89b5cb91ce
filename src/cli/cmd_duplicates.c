/* zila duplicates: rows parked by a UNIQUE collision, side by side with the row that holds
 * the slot, and `merge`, which folds a duplicate into that row as normal, synced changes. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sqlite3.h>

#include "cli.h"
#include "cli_db.h"
#include "zila/review.h"
#include "zila/store.h"

/* A parked row's columns and values, copied out of the store's callback. */
struct rowcopy {
	size_t ncols;
	char **cols;
	sqlite3_value **vals;
};

/* One parked duplicate and the row holding its UNIQUE slot (holder NULL when none). */
struct dup {
	char *table, *pkcol, *pcol;
	sqlite3_value *pk, *holder;
	char *uniq; /* the colliding columns, "a, b" */
	struct rowcopy row;
};

static void rowcopy_release(struct rowcopy *r)
{
	for (size_t i = 0; i < r->ncols; i++) {
		free(r->cols ? r->cols[i] : NULL);
		sqlite3_value_free(r->vals ? r->vals[i] : NULL);
	}
	free(r->cols);
	free(r->vals);
	memset(r, 0, sizeof(*r));
}

static void dup_release(struct dup *d)
{
	free(d->table);
	free(d->pkcol);
	free(d->pcol);
	free(d->uniq);
	sqlite3_value_free(d->pk);
	sqlite3_value_free(d->holder);
	rowcopy_release(&d->row);
	memset(d, 0, sizeof(*d));
}

/* A borrowed zila_value view of an SQLite value. */
static struct zila_value zval_of(sqlite3_value *v)
{
	struct zila_value z = { 0 };
	switch (sqlite3_value_type(v)) {
	case SQLITE_INTEGER:
		z.type = ZILA_VAL_INT;
		z.i = sqlite3_value_int64(v);
		break;
	case SQLITE_FLOAT:
		z.type = ZILA_VAL_REAL;
		z.d = sqlite3_value_double(v);
		break;
	case SQLITE_TEXT:
		z.type = ZILA_VAL_TEXT;
		z.p = sqlite3_value_text(v);
		z.len = (size_t)sqlite3_value_bytes(v);
		break;
	case SQLITE_BLOB:
		z.type = ZILA_VAL_BLOB;
		z.p = sqlite3_value_blob(v);
		z.len = (size_t)sqlite3_value_bytes(v);
		break;
	default:
		z.type = ZILA_VAL_NULL;
	}
	return z;
}

static void bind_zval(sqlite3_stmt *st, int idx, const struct zila_value *v)
{
	switch (v->type) {
	case ZILA_VAL_INT:
		sqlite3_bind_int64(st, idx, v->i);
		break;
	case ZILA_VAL_REAL:
		sqlite3_bind_double(st, idx, v->d);
		break;
	case ZILA_VAL_TEXT:
		sqlite3_bind_text(st, idx, (const char *)v->p, (int)v->len, SQLITE_TRANSIENT);
		break;
	case ZILA_VAL_BLOB:
		sqlite3_bind_blob(st, idx, v->p, (int)v->len, SQLITE_TRANSIENT);
		break;
	default:
		sqlite3_bind_null(st, idx);
	}
}

static int copy_row(void *ctx, size_t ncols, const char *const *cols, const struct zila_value *vals)
{
	struct rowcopy *r = ctx;
	sqlite3 *mem = NULL;
	sqlite3_stmt *st = NULL;
	int rc = ZILA_ENOMEM;
	r->cols = calloc(ncols ? ncols : 1, sizeof(*r->cols));
	r->vals = calloc(ncols ? ncols : 1, sizeof(*r->vals));
	if (r->cols == NULL || r->vals == NULL)
		goto out;
	r->ncols = ncols;
	/* sqlite3_value_dup needs a protected value: round-trip each through a statement. */
	if (sqlite3_open(":memory:", &mem) != SQLITE_OK || sqlite3_prepare_v2(mem, "SELECT ?", -1, &st, NULL) != SQLITE_OK)
		goto out;
	for (size_t i = 0; i < ncols; i++) {
		bind_zval(st, 1, &vals[i]);
		if (sqlite3_step(st) != SQLITE_ROW)
			goto out;
		r->cols[i] = strdup(cols[i]);
		r->vals[i] = sqlite3_value_dup(sqlite3_column_value(st, 0));
		sqlite3_reset(st);
		if (r->cols[i] == NULL || r->vals[i] == NULL)
			goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	sqlite3_close(mem);
	return rc;
}

static int col_index(const struct rowcopy *r, const char *name)
{
	for (size_t i = 0; i < r->ncols; i++)
		if (strcasecmp(r->cols[i], name) == 0)
			return (int)i;
	return -1;
}

static const char *vtext(sqlite3_value *v)
{
	const char *t = (const char *)sqlite3_value_text(v);
	return t ? t : "NULL";
}

/* The table's primary key column (malloc'd), or NULL. */
static char *pk_column(sqlite3 *db, const char *table)
{
	sqlite3_stmt *st = NULL;
	char *sql = sqlite3_mprintf("PRAGMA table_info(\"%w\")", table), *pk = NULL;
	if (sql != NULL && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK)
		while (pk == NULL && sqlite3_step(st) == SQLITE_ROW)
			if (sqlite3_column_int(st, 5) == 1)
				pk = strdup((const char *)sqlite3_column_text(st, 1));
	sqlite3_finalize(st);
	sqlite3_free(sql);
	return pk;
}

/* Finds the visible row that holds d's slot in one of the table's UNIQUE indexes. */
static int find_holder(sqlite3 *db, struct dup *d)
{
	sqlite3_stmt *st = NULL, *ii = NULL, *q = NULL;
	char *sql = sqlite3_mprintf("PRAGMA index_list(\"%w\")", d->table);
	char **names = NULL;
	size_t nnames = 0;
	int r = -1;
	if (sql == NULL || sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		goto out;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *origin = (const char *)sqlite3_column_text(st, 3);
		if (sqlite3_column_int(st, 2) != 1 || sqlite3_column_int(st, 4) != 0 ||
		    (origin && strcmp(origin, "pk") == 0))
			continue;
		char **nn = realloc(names, (nnames + 1) * sizeof(*nn));
		if (nn == NULL)
			goto out;
		names = nn;
		if ((names[nnames] = strdup((const char *)sqlite3_column_text(st, 1))) == NULL)
			goto out;
		nnames++;
	}
	sqlite3_finalize(st);
	st = NULL;
	for (size_t k = 0; k < nnames && d->holder == NULL; k++) {
		int cols[64], ncols = 0;
		bool usable = true;
		sqlite3_free(sql);
		sql = sqlite3_mprintf("PRAGMA index_info(\"%w\")", names[k]);
		if (sql == NULL || sqlite3_prepare_v2(db, sql, -1, &ii, NULL) != SQLITE_OK)
			goto out;
		while (sqlite3_step(ii) == SQLITE_ROW) {
			const char *c = (const char *)sqlite3_column_text(ii, 2);
			int ci = c ? col_index(&d->row, c) : -1;
			/* Expression columns and NULLs never collide the way we can look up. */
			if (ci < 0 || ncols == 64 || sqlite3_value_type(d->row.vals[ci]) == SQLITE_NULL)
				usable = false;
			else
				cols[ncols++] = ci;
		}
		sqlite3_finalize(ii);
		ii = NULL;
		if (!usable || ncols == 0)
			continue;
		sqlite3_free(sql);
		sql = sqlite3_mprintf("SELECT \"%w\" FROM \"%w\" WHERE", d->pkcol, d->table);
		char *desc = NULL;
		for (int i = 0; sql && i < ncols; i++) {
			char *s2 = sqlite3_mprintf("%s%s \"%w\" = ?%d", sql, i ? " AND" : "", d->row.cols[cols[i]], i + 1);
			char *d2 = sqlite3_mprintf("%s%s%s", desc ? desc : "", i ? ", " : "", d->row.cols[cols[i]]);
			sqlite3_free(sql);
			sqlite3_free(desc);
			sql = s2;
			desc = d2;
		}
		if (sql == NULL || desc == NULL || sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) {
			sqlite3_free(desc);
			goto out;
		}
		for (int i = 0; i < ncols; i++)
			sqlite3_bind_value(q, i + 1, d->row.vals[cols[i]]);
		if (sqlite3_step(q) == SQLITE_ROW) {
			d->holder = sqlite3_value_dup(sqlite3_column_value(q, 0));
			d->uniq = strdup(desc);
		}
		sqlite3_free(desc);
		sqlite3_finalize(q);
		q = NULL;
	}
	r = 0;
out:
	sqlite3_finalize(st);
	sqlite3_finalize(ii);
	sqlite3_finalize(q);
	sqlite3_free(sql);
	for (size_t k = 0; k < nnames; k++)
		free(names[k]);
	free(names);
	return r;
}

/* Loads the parked duplicate (table, pk): its values, key column and slot holder; the
 * table's own layout and rows are read through db, a plain connection. */
static int dup_load(struct zila_store *s, sqlite3 *db, const char *table, sqlite3_value *pk, const char *pcol,
		    struct dup *d)
{
	struct zila_error err;
	zila_error_clear(&err);
	memset(d, 0, sizeof(*d));
	d->table = strdup(table);
	d->pcol = pcol ? strdup(pcol) : NULL;
	d->pk = sqlite3_value_dup(pk);
	if (d->table == NULL || d->pk == NULL || (pcol && d->pcol == NULL)) {
		cli_err("out of memory");
		return -1;
	}
	if ((d->pkcol = pk_column(db, table)) == NULL) {
		cli_err("cannot read the columns of '%s': %s", table, sqlite3_errmsg(db));
		return -1;
	}
	struct zila_value zpk = zval_of(d->pk);
	int r = zila_store_parked_row(s, table, &zpk, copy_row, &d->row, &err);
	if (r != 0) {
		cli_err("cannot read parked row '%s:%s': %s", table, vtext(d->pk), zila_error_msg(&err, r));
		return -1;
	}
	if (find_holder(db, d) != 0) {
		cli_err("cannot look up the unique slot of '%s:%s': %s", table, vtext(d->pk), sqlite3_errmsg(db));
		return -1;
	}
	return 0;
}

/* A value as one line of text for the side-by-side listing; sqlite3_free it. */
static char *cell(sqlite3_value *v)
{
	if (v == NULL || sqlite3_value_type(v) == SQLITE_NULL)
		return sqlite3_mprintf("NULL");
	if (sqlite3_value_type(v) == SQLITE_BLOB)
		return sqlite3_mprintf("(%d bytes)", sqlite3_value_bytes(v));
	return sqlite3_mprintf("%s", sqlite3_value_text(v));
}

/* Prints d, with the holder's current row next to it. */
static void dup_print(sqlite3 *db, const struct dup *d, size_t n, bool json)
{
	sqlite3_stmt *h = NULL;
	bool have = false;
	if (d->holder) {
		char *sql = sqlite3_mprintf("SELECT * FROM \"%w\" WHERE \"%w\" = ?", d->table, d->pkcol);
		if (sql && sqlite3_prepare_v2(db, sql, -1, &h, NULL) == SQLITE_OK) {
			sqlite3_bind_value(h, 1, d->holder);
			have = sqlite3_step(h) == SQLITE_ROW;
		}
		sqlite3_free(sql);
	}
	if (json) {
		printf("%s{\"id\":", n ? "," : "");
		char *name = sqlite3_mprintf("%s:%s", d->table, vtext(d->pk));
		cli_json_str(name ? name : "");
		sqlite3_free(name);
		printf(",\"table\":");
		cli_json_str(d->table);
		printf(",\"row\":");
		struct zila_value z = zval_of(d->pk);
		cli_print_value(&z, true);
		printf(",\"holder\":");
		if (d->holder) {
			z = zval_of(d->holder);
			cli_print_value(&z, true);
		} else {
			printf("null");
		}
		printf(",\"unique\":");
		if (d->uniq)
			cli_json_str(d->uniq);
		else
			printf("null");
		printf(",\"columns\":[");
	} else {
		printf("%s:%s  ", d->table, vtext(d->pk));
		if (d->holder)
			printf("duplicate of %s:%s  (UNIQUE %s)\n", d->table, vtext(d->holder), d->uniq ? d->uniq : "?");
		else
			printf("no visible row holds its slot any more\n");
		printf("    %-16s %-30s %s\n", "column", "duplicate", have ? "holder" : "");
	}
	for (size_t i = 0; i < d->row.ncols; i++) {
		sqlite3_value *hv = NULL;
		if (have)
			for (int c = 0; c < sqlite3_column_count(h); c++)
				if (strcasecmp(sqlite3_column_name(h, c), d->row.cols[i]) == 0)
					hv = sqlite3_column_value(h, c);
		if (json) {
			printf("%s{\"name\":", i ? "," : "");
			cli_json_str(d->row.cols[i]);
			struct zila_value z = zval_of(d->row.vals[i]);
			printf(",\"duplicate\":");
			cli_print_value(&z, true);
			printf(",\"holder\":");
			if (hv) {
				z = zval_of(hv);
				cli_print_value(&z, true);
			} else {
				printf("null");
			}
			printf("}");
		} else {
			char *a = cell(d->row.vals[i]), *b = have ? cell(hv) : NULL;
			bool differs = have && a && b && strcmp(a, b) != 0;
			printf("  %c %-16s %-30s %s\n", differs ? '*' : ' ', d->row.cols[i], a ? a : "?",
			       have ? (b ? b : "?") : "");
			sqlite3_free(a);
			sqlite3_free(b);
		}
	}
	if (json)
		printf("]}");
	sqlite3_finalize(h);
}

/* An SQLite value of a borrowed zila_value (sqlite3_value_free it), or NULL. */
static sqlite3_value *value_dup(sqlite3 *db, const struct zila_value *v)
{
	sqlite3_stmt *st = NULL;
	sqlite3_value *out = NULL;
	if (sqlite3_prepare_v2(db, "SELECT ?", -1, &st, NULL) == SQLITE_OK) {
		bind_zval(st, 1, v);
		if (sqlite3_step(st) == SQLITE_ROW)
			out = sqlite3_value_dup(sqlite3_column_value(st, 0));
	}
	sqlite3_finalize(st);
	return out;
}

/* Walks parked duplicates, loading each (with its holder) into d for a callback. */
struct dup_walk {
	struct zila_store *s;
	sqlite3 *db;
	struct dup *d;
	size_t n;
	bool json;
	const char *name; /* lookup: what the user named */
};

static int load_one(struct dup_walk *w, const struct zila_park *p)
{
	sqlite3_value *pk = value_dup(w->db, &p->pk);
	int r = pk == NULL ? -1 : dup_load(w->s, w->db, p->table, pk, p->pcol, w->d);
	if (pk == NULL)
		cli_err("out of memory");
	sqlite3_value_free(pk);
	return r;
}

static int list_one(void *ctx, const struct zila_park *p)
{
	struct dup_walk *w = ctx;
	if (load_one(w, p) != 0) {
		dup_release(w->d);
		return -1;
	}
	if (!w->json && w->n > 0)
		printf("\n");
	dup_print(w->db, w->d, w->n, w->json);
	dup_release(w->d);
	w->n++;
	return 0;
}

static int list(struct cli *cli, struct zila_store *s, sqlite3 *db)
{
	struct dup d;
	struct dup_walk w = { s, db, &d, 0, cli->json, NULL };
	memset(&d, 0, sizeof(d));
	if (cli->json)
		printf("{\"duplicates\":[");
	int r = zila_store_parked_each(s, ZILA_PARK_DUP, NULL, NULL, list_one, &w);
	if (r != 0) {
		if (r != -1)
			cli_err("cannot read parked rows: %s", zila_strerror(r));
		return CLI_FAIL;
	}
	if (cli->json)
		printf("]}\n");
	else if (w.n == 0)
		printf("no duplicates\n");
	else
		printf("%zu duplicate%s; merge one with 'zila duplicates merge TABLE:ID'\n", w.n, w.n == 1 ? "" : "s");
	return CLI_OK;
}

static int lookup_one(void *ctx, const struct zila_park *p)
{
	struct dup_walk *w = ctx;
	if (w->n++ > 0) {
		dup_release(w->d);
		cli_err("'%s' names duplicates in several tables; write it as TABLE:ID", w->name);
		return -1;
	}
	return load_one(w, p);
}

/* Finds the parked duplicate a user named: TABLE:ID, or a bare ID if only one matches. */
static int lookup(struct zila_store *s, sqlite3 *db, const char *name, struct dup *d)
{
	struct dup_walk w = { s, db, d, 0, false, name };
	const char *colon = strchr(name, ':');
	char *table = colon ? strndup(name, (size_t)(colon - name)) : NULL;
	int r;
	memset(d, 0, sizeof(*d));
	if (colon && table == NULL) {
		cli_err("out of memory");
		return -1;
	}
	r = zila_store_parked_each(s, ZILA_PARK_DUP, table, colon ? colon + 1 : name, lookup_one, &w);
	free(table);
	if (r != 0) {
		if (r != -1)
			cli_err("cannot read parked rows: %s", zila_strerror(r));
		return -1;
	}
	if (w.n == 0) {
		cli_err("no parked duplicate '%s' (see 'zila duplicates')", name);
		return -1;
	}
	return 0;
}

static bool row_visible(sqlite3 *db, const struct dup *d, sqlite3_value *pk)
{
	sqlite3_stmt *st = NULL;
	bool yes = false;
	char *sql = sqlite3_mprintf("SELECT 1 FROM \"%w\" WHERE \"%w\" = ?", d->table, d->pkcol);
	if (sql && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_value(st, 1, pk);
		yes = sqlite3_step(st) == SQLITE_ROW;
	}
	sqlite3_finalize(st);
	sqlite3_free(sql);
	return yes;
}

static int merge(struct cli *cli, struct zila_store *s, sqlite3 *app, int argc, char **argv)
{
	static const struct option opts[] = { { "into", required_argument, NULL, 'i' }, { NULL, 0, NULL, 0 } };
	const char *into = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'i')
			into = optarg;
		else
			return cli_usage("duplicates", "unknown option");
	}
	if (optind >= argc)
		return cli_usage("duplicates", "merge needs a duplicate: TABLE:ID");
	if (optind + 1 != argc)
		return cli_usage("duplicates", "unexpected argument '%s'", argv[optind + 1]);
	const char *name = argv[optind];
	struct dup d;
	struct zila_error err;
	int rc = CLI_FAIL, nfilled = 0, nmoved = 0, r;
	zila_error_clear(&err);
	if (lookup(s, app, name, &d) != 0)
		goto out;
	if (into) {
		struct zila_value zi = { .type = ZILA_VAL_TEXT, .p = (const uint8_t *)into, .len = strlen(into) };
		sqlite3_value_free(d.holder);
		if ((d.holder = value_dup(app, &zi)) == NULL) {
			cli_err("out of memory");
			goto out;
		}
	}
	if (d.holder == NULL) {
		cli_err("no row holds the slot of '%s:%s' any more; name one with --into ID", d.table, vtext(d.pk));
		goto out;
	}
	if (!row_visible(app, &d, d.holder)) {
		cli_err("no row '%s' in '%s' to merge into", vtext(d.holder), d.table);
		goto out;
	}
	/* The fill, the repointing and the discard are local changes, sealed in one transaction. */
	struct zila_value zpk = zval_of(d.pk), zh = zval_of(d.holder);
	struct zila_merged m;
	if ((r = zila_store_merge_duplicate(s, d.table, &zpk, &zh, &m, &err)) != 0) {
		cli_err("%s", zila_error_msg(&err, r));
		goto out;
	}
	nfilled = m.nfilled;
	nmoved = m.nmoved;
	if (cli->json) {
		printf("{\"merged\":");
		char *n = sqlite3_mprintf("%s:%s", d.table, vtext(d.pk));
		cli_json_str(n ? n : "");
		sqlite3_free(n);
		printf(",\"into\":");
		cli_print_value(&zh, true);
		printf(",\"filled\":%d,\"repointed\":%d}\n", nfilled, nmoved);
	} else {
		printf("merged %s:%s into %s:%s: %d empty column%s filled, %d reference%s repointed, duplicate "
		       "discarded\n",
		       d.table, vtext(d.pk), d.table, vtext(d.holder), nfilled, nfilled == 1 ? "" : "s", nmoved,
		       nmoved == 1 ? "" : "s");
	}
	rc = CLI_OK;
out:
	dup_release(&d);
	return rc;
}

int cmd_duplicates(struct cli *cli, int argc, char **argv);
int cmd_duplicates(struct cli *cli, int argc, char **argv)
{
	bool do_merge = argc > 1 && strcmp(argv[1], "merge") == 0;
	if (!do_merge && argc > 1)
		return cli_usage("duplicates", "unexpected argument '%s'", argv[1]);
	struct zila_store *s = NULL;
	sqlite3 *app = NULL; /* the user tables' layout and rows, read as any program would */
	if (cli_open_store(cli, &s) != CLI_OK)
		return CLI_FAIL;
	struct zila_error err;
	zila_error_clear(&err);
	int rc = CLI_FAIL, r = zila_store_seal(s, NULL, &err);
	if (r != 0)
		cli_err("%s", zila_error_msg(&err, r));
	else if (cli_open_db(cli, false, &app) == CLI_OK)
		rc = do_merge ? merge(cli, s, app, argc - 1, argv + 1) : list(cli, s, app);
	sqlite3_close(app);
	zila_store_free(s);
	return rc;
}
