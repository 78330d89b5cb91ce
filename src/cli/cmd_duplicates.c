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

/* Copies into the holder every column it has NULL and the duplicate has set. */
static int fill_nulls(sqlite3 *app, const struct dup *d, int *nfilled)
{
	sqlite3_stmt *h = NULL, *u = NULL;
	char *sql = sqlite3_mprintf("SELECT * FROM \"%w\" WHERE \"%w\" = ?", d->table, d->pkcol);
	int r = -1, nset = 0;
	int *from = calloc(d->row.ncols ? d->row.ncols : 1, sizeof(*from));
	*nfilled = 0;
	if (from == NULL || sql == NULL || sqlite3_prepare_v2(app, sql, -1, &h, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_value(h, 1, d->holder);
	if (sqlite3_step(h) != SQLITE_ROW)
		goto fail;
	sqlite3_free(sql);
	sql = sqlite3_mprintf("UPDATE \"%w\" SET", d->table);
	for (int c = 0; sql && c < sqlite3_column_count(h); c++) {
		const char *name = sqlite3_column_name(h, c);
		int i = col_index(&d->row, name);
		if (i < 0 || sqlite3_column_type(h, c) != SQLITE_NULL ||
		    sqlite3_value_type(d->row.vals[i]) == SQLITE_NULL || strcasecmp(name, d->pkcol) == 0 ||
		    (d->pcol && strcasecmp(name, d->pcol) == 0))
			continue;
		char *s2 = sqlite3_mprintf("%s%s \"%w\" = ?%d", sql, nset ? "," : "", name, nset + 1);
		sqlite3_free(sql);
		sql = s2;
		from[nset++] = i;
	}
	if (sql == NULL)
		goto fail;
	if (nset == 0) {
		r = 0;
		goto out;
	}
	char *s2 = sqlite3_mprintf("%s WHERE \"%w\" = ?%d", sql, d->pkcol, nset + 1);
	sqlite3_free(sql);
	sql = s2;
	if (sql == NULL || sqlite3_prepare_v2(app, sql, -1, &u, NULL) != SQLITE_OK)
		goto fail;
	for (int k = 0; k < nset; k++)
		sqlite3_bind_value(u, k + 1, d->row.vals[from[k]]);
	sqlite3_bind_value(u, nset + 1, d->holder);
	if (sqlite3_step(u) != SQLITE_DONE)
		goto fail;
	*nfilled = nset;
	r = 0;
	goto out;
fail:
	cli_err("cannot fill the empty columns of '%s:%s': %s", d->table, vtext(d->holder), sqlite3_errmsg(app));
out:
	sqlite3_finalize(h);
	sqlite3_finalize(u);
	sqlite3_free(sql);
	free(from);
	return r;
}

/* A parked row of a child table that referenced the duplicate, inserted again with the
 * reference repointed to the holder. */
struct repoint_walk {
	struct zila_store *s;
	sqlite3 *app;
	const struct dup *d;
	const char *child, *fcol;
	int *nmoved;
};

static int repoint_parked(void *ctx, const struct zila_park *p)
{
	struct repoint_walk *w = ctx;
	const struct dup *d = w->d;
	struct rowcopy row = { 0, NULL, NULL };
	struct zila_error err;
	sqlite3_stmt *ins = NULL;
	char *sql = NULL;
	int r = -1;
	zila_error_clear(&err);
	int rr = zila_store_parked_row(w->s, w->child, &p->pk, copy_row, &row, &err);
	if (rr != 0) {
		cli_err("cannot read parked row of '%s': %s", w->child, zila_error_msg(&err, rr));
		goto out;
	}
	int fi = col_index(&row, w->fcol);
	if (fi < 0 || sqlite3_value_type(row.vals[fi]) != sqlite3_value_type(d->pk) ||
	    strcmp(vtext(row.vals[fi]), vtext(d->pk)) != 0) {
		r = 0;
		goto out;
	}
	sql = sqlite3_mprintf("INSERT INTO \"%w\" (", w->child);
	for (size_t i = 0; sql && i < row.ncols; i++) {
		char *s2 = sqlite3_mprintf("%s%s\"%w\"", sql, i ? ", " : "", row.cols[i]);
		sqlite3_free(sql);
		sql = s2;
	}
	for (size_t i = 0; sql && i < row.ncols; i++) {
		char *s2 = sqlite3_mprintf("%s%s?%d", sql, i ? ", " : ") VALUES (", (int)i + 1);
		sqlite3_free(sql);
		sql = s2;
	}
	char *s2 = sql ? sqlite3_mprintf("%s)", sql) : NULL;
	sqlite3_free(sql);
	sql = s2;
	if (sql == NULL || sqlite3_prepare_v2(w->app, sql, -1, &ins, NULL) != SQLITE_OK) {
		cli_err("cannot repoint '%s.%s' to '%s:%s': %s", w->child, w->fcol, d->table, vtext(d->holder),
			sqlite3_errmsg(w->app));
		goto out;
	}
	for (size_t i = 0; i < row.ncols; i++)
		sqlite3_bind_value(ins, (int)i + 1, (int)i == fi ? d->holder : row.vals[i]);
	if (sqlite3_step(ins) != SQLITE_DONE) {
		struct zila_value zpk = p->pk;
		sqlite3_value *pk = value_dup(w->app, &zpk);
		cli_err("cannot repoint row '%s' of '%s' to '%s': %s", pk ? vtext(pk) : "?", w->child, vtext(d->holder),
			sqlite3_errmsg(w->app));
		sqlite3_value_free(pk);
		goto out;
	}
	(*w->nmoved)++;
	r = 0;
out:
	sqlite3_finalize(ins);
	sqlite3_free(sql);
	rowcopy_release(&row);
	return r;
}

/* Repoints one single-column foreign key child.fcol from the duplicate to the holder:
 * visible rows by a captured UPDATE, rows parked as orphans of the duplicate by inserting
 * them again with the new reference (an UPSERT every replica applies). */
static int repoint(struct zila_store *s, sqlite3 *app, const struct dup *d, const char *child, const char *fcol,
		   int *nmoved)
{
	sqlite3_stmt *st = NULL;
	char *sql = sqlite3_mprintf("UPDATE \"%w\" SET \"%w\" = ?1 WHERE \"%w\" = ?2", child, fcol, fcol);
	struct repoint_walk w = { s, app, d, child, fcol, nmoved };
	int r = -1;
	if (sql == NULL || sqlite3_prepare_v2(app, sql, -1, &st, NULL) != SQLITE_OK)
		goto dberr;
	sqlite3_bind_value(st, 1, d->holder);
	sqlite3_bind_value(st, 2, d->pk);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto dberr;
	*nmoved += sqlite3_changes(app);
	r = zila_store_parked_each(s, ZILA_PARK_ANY, child, NULL, repoint_parked, &w);
	if (r != 0 && r != -1)
		cli_err("cannot read parked rows: %s", zila_strerror(r));
	r = r ? -1 : 0;
	goto out;
dberr:
	cli_err("cannot repoint '%s.%s' to '%s:%s': %s", child, fcol, d->table, vtext(d->holder), sqlite3_errmsg(app));
out:
	sqlite3_finalize(st);
	sqlite3_free(sql);
	return r;
}

/* The single-column foreign keys of tracked tables that reference d's table. */
struct fk_walk {
	sqlite3 *db;
	const struct dup *d;
	char **pairs; /* child, column, child, column, ... */
	size_t npairs;
};

static int fks_of(void *ctx, const char *child, const char *pcol)
{
	struct fk_walk *w = ctx;
	sqlite3_stmt *fk = NULL;
	int r = -1;
	(void)pcol;
	char *sql = sqlite3_mprintf("PRAGMA foreign_key_list(\"%w\")", child);
	if (sql == NULL || sqlite3_prepare_v2(w->db, sql, -1, &fk, NULL) != SQLITE_OK)
		goto out;
	/* id, seq, table, from, to: only keys of one column (seq 0 with no seq 1). */
	int last_id = -1;
	while (sqlite3_step(fk) == SQLITE_ROW) {
		int id = sqlite3_column_int(fk, 0);
		if (sqlite3_column_int(fk, 1) != 0) {
			if (id == last_id && w->npairs > 0) { /* multi-column: drop it again */
				w->npairs--;
				free(w->pairs[2 * w->npairs]);
				free(w->pairs[2 * w->npairs + 1]);
			}
			last_id = -1;
			continue;
		}
		last_id = -1;
		const char *parent = (const char *)sqlite3_column_text(fk, 2);
		const char *to = (const char *)sqlite3_column_text(fk, 4);
		if (parent == NULL || strcasecmp(parent, w->d->table) != 0 || (to && strcasecmp(to, w->d->pkcol) != 0))
			continue;
		char **np = realloc(w->pairs, (w->npairs + 1) * 2 * sizeof(*np));
		if (np == NULL)
			goto out;
		w->pairs = np;
		w->pairs[2 * w->npairs] = strdup(child);
		w->pairs[2 * w->npairs + 1] = strdup((const char *)sqlite3_column_text(fk, 3));
		w->npairs++;
		last_id = id;
	}
	r = 0;
out:
	sqlite3_finalize(fk);
	sqlite3_free(sql);
	return r;
}

/* Every single-column foreign key of a tracked table that references d's table. */
static int repoint_all(struct zila_store *s, sqlite3 *app, const struct dup *d, int *nmoved)
{
	struct fk_walk w = { app, d, NULL, 0 };
	int r = -1;
	*nmoved = 0;
	if (zila_store_table_each(s, fks_of, &w) != 0) {
		cli_err("cannot read the foreign keys of the tracked tables: %s", sqlite3_errmsg(app));
		goto done;
	}
	for (size_t i = 0; i < w.npairs; i++) {
		if (w.pairs[2 * i] == NULL || w.pairs[2 * i + 1] == NULL) {
			cli_err("out of memory");
			goto done;
		}
		if (repoint(s, app, d, w.pairs[2 * i], w.pairs[2 * i + 1], nmoved) != 0)
			goto done;
	}
	r = 0;
done:
	for (size_t i = 0; i < 2 * w.npairs; i++)
		free(w.pairs[i]);
	free(w.pairs);
	return r;
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
	bool in_tx = false;
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
	/* Application writes (captured, so they sync) in one transaction. */
	if (sqlite3_exec(app, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		cli_err("cannot start a transaction: %s", sqlite3_errmsg(app));
		goto out;
	}
	in_tx = true;
	if (fill_nulls(app, &d, &nfilled) != 0 || repoint_all(s, app, &d, &nmoved) != 0)
		goto out;
	if (sqlite3_exec(app, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		cli_err("cannot commit the merge: %s", sqlite3_errmsg(app));
		goto out;
	}
	in_tx = false;
	struct zila_value zpk = zval_of(d.pk);
	if ((r = zila_store_delete_row(s, d.table, &zpk, &err)) != 0) {
		cli_err("cannot discard duplicate '%s:%s': %s", d.table, vtext(d.pk), zila_error_msg(&err, r));
		goto out;
	}
	if (cli->json) {
		printf("{\"merged\":");
		char *n = sqlite3_mprintf("%s:%s", d.table, vtext(d.pk));
		cli_json_str(n ? n : "");
		sqlite3_free(n);
		printf(",\"into\":");
		struct zila_value zh = zval_of(d.holder);
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
	if (in_tx)
		sqlite3_exec(app, "ROLLBACK", NULL, NULL, NULL);
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
	sqlite3 *app = NULL; /* the user tables' layout and rows, and the merge's writes */
	if (cli_open_store(cli, &s) != CLI_OK)
		return CLI_FAIL;
	struct zila_error err;
	zila_error_clear(&err);
	int rc = CLI_FAIL, r = zila_store_seal(s, NULL, &err);
	if (r != 0)
		cli_err("%s", zila_error_msg(&err, r));
	else if (cli_open_db(cli, do_merge, &app) == CLI_OK)
		rc = do_merge ? merge(cli, s, app, argc - 1, argv + 1) : list(cli, s, app);
	sqlite3_close(app);
	zila_store_free(s);
	return rc;
}
