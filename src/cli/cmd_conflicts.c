/* zila conflicts: values overwritten by concurrent writes, and rows parked as
 * duplicates (a UNIQUE collision), orphans (a missing parent) or invalid; `resolve` writes
 * the chosen value as a new change that every replica then agrees on (and stops listing);
 * an orphan is shown with its content and the parent it lacks, and can be linked to another
 * parent (`relink`) or dropped (`drop`). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "cli.h"
#include "cli_db.h"
#include "cli_names.h"
#include "zila/review.h"
#include "zila/store.h"

/* Who wrote a value and when: the device's name and id, local time (--json: the id, UTC). */
static void print_who(struct zila_store *s, const uint8_t *key, uint64_t hlc, bool json)
{
	char dev[160] = "?", when[40];
	if (json) {
		char id[ZILA_DEVICE_ID_LEN + 1] = "?";
		if (key != NULL)
			zila_device_id(key, id);
		cli_hlc_time(when, hlc);
		printf("\"device\":\"%s\",\"time\":\"%s\"", id, when);
		return;
	}
	if (key != NULL)
		cli_device_label(s, key, dev, sizeof(dev));
	cli_local_time(when, zila_hlc_ms(hlc) / 1000);
	printf("%s, %s", dev, when);
}

static const char *kind_name(enum zila_park_kind k)
{
	return k == ZILA_PARK_DUP ? "duplicate" : k == ZILA_PARK_ORPHAN ? "orphan" : k == ZILA_PARK_INVALID ? "invalid" : "?";
}

static int resolve(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "keep", required_argument, NULL, 'k' },
					      { "value", required_argument, NULL, 'v' },
					      { NULL, 0, NULL, 0 } };
	const char *keep = NULL, *value = NULL;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'k')
			keep = optarg;
		else if (c == 'v')
			value = optarg;
		else
			return cli_usage("conflicts", "unknown option");
	}
	if (optind + 1 != argc)
		return cli_usage("conflicts", optind >= argc ? "resolve needs a conflict ID" : "unexpected argument '%s'",
				 argv[optind + 1 < argc ? optind + 1 : 0]);
	if ((keep == NULL) == (value == NULL))
		return cli_usage("conflicts", "resolve needs --keep kept, --keep lost, or --value TEXT (one of them)");
	/* A typo is not a value: "--keep theirs" would have written the word into the row. */
	if (keep != NULL && strcmp(keep, "kept") != 0 && strcmp(keep, "lost") != 0)
		return cli_usage("conflicts", "'%s' is not 'kept' or 'lost'; to write a value of your own, give --value TEXT",
				 keep);
	const char *idarg = argv[optind];
	char *end = NULL;
	errno = 0;
	long long id = strtoll(idarg, &end, 10);
	if (errno != 0 || end == idarg || *end != '\0' || id <= 0)
		return cli_usage("conflicts", "'%s' is not a conflict id", idarg);

	int rc = CLI_FAIL;
	struct zila_store *s = NULL;
	struct zila_resolved res;
	struct zila_error err;
	enum zila_keep k = value != NULL ? ZILA_KEEP_VALUE : strcmp(keep, "kept") == 0 ? ZILA_KEEP_KEPT : ZILA_KEEP_LOST;
	memset(&res, 0, sizeof(res));
	zila_error_clear(&err);
	if (cli_open_store(cli, &s) != CLI_OK)
		goto out;
	/* The choice, its write and its seal commit together, or nothing does. */
	int r = zila_store_conflict_resolve(s, id, k, value, &res, &err);
	if (r != 0) {
		cli_err("%s", zila_error_msg(&err, r));
		goto out;
	}
	int n = res.nresolved;
	if (cli->json)
		printf("{\"resolved\":%d,\"table\":", n);
	else
		printf("resolved %d conflict%s on %s ", n, n == 1 ? "" : "s", res.table);
	if (cli->json) {
		cli_json_str(res.table);
		printf(",\"row\":");
		cli_json_str(res.row);
		printf(",\"column\":");
		cli_json_str(res.col);
		printf(",\"written\":%s}\n", res.written ? "true" : "false");
	} else {
		printf("%s %s: %s; every replica stops listing it once this change reaches it\n", res.row, res.col,
		       k == ZILA_KEEP_KEPT ? "kept the current value" : "wrote the chosen value");
	}
	rc = CLI_OK;
out:
	zila_resolved_release(&res);
	zila_store_free(s);
	return rc;
}

struct listing {
	struct zila_store *s;
	sqlite3 *db; /* plain connection to the user tables: an orphan's missing parent */
	bool json;
	size_t n, np;
};

static int print_conflict(void *ctx, const struct zila_conflict *c)
{
	struct listing *l = ctx;
	if (l->json) {
		printf("%s{\"id\":%lld,\"table\":", l->n ? "," : "", (long long)c->id);
		cli_json_str(c->table);
		printf(",\"row\":");
		cli_print_value(&c->pk, true);
		printf(",\"column\":");
		cli_json_str(c->col);
		printf(",\"kept\":{\"value\":");
		cli_print_value(&c->kept, true);
		printf(",");
		print_who(l->s, c->kept_origin, c->kept_hlc, true);
		printf("},\"lost\":{\"value\":");
		cli_print_value(&c->lost, true);
		printf(",");
		print_who(l->s, c->lost_origin, c->lost_hlc, true);
		printf("}}");
	} else {
		if (l->n == 0)
			printf("overwritten values:\n");
		printf("  #%lld %s ", (long long)c->id, c->table);
		cli_print_value(&c->pk, false);
		printf(" %s\n    kept: ", c->col);
		cli_print_value(&c->kept, false);
		printf("  (");
		print_who(l->s, c->kept_origin, c->kept_hlc, false);
		printf(")\n    lost: ");
		cli_print_value(&c->lost, false);
		printf("  (");
		print_who(l->s, c->lost_origin, c->lost_hlc, false);
		printf(")\n");
	}
	l->n++;
	return 0;
}

static void bind_zv(sqlite3_stmt *st, int i, const struct zila_value *v)
{
	switch (v->type) {
	case ZILA_VAL_INT: sqlite3_bind_int64(st, i, v->i); break;
	case ZILA_VAL_REAL: sqlite3_bind_double(st, i, v->d); break;
	case ZILA_VAL_TEXT: sqlite3_bind_text(st, i, (const char *)v->p, (int)v->len, SQLITE_STATIC); break;
	case ZILA_VAL_BLOB: sqlite3_bind_blob(st, i, v->p, (int)v->len, SQLITE_STATIC); break;
	default: sqlite3_bind_null(st, i); break;
	}
}

struct orphan {
	struct listing *l;
	const struct zila_park *p;
};

/* A parked row's content, and for an orphan each parent it names that is not there, with
 * what to do about it. */
static int show_row(void *ctx, size_t ncols, const char *const *cols, const struct zila_value *vals)
{
	struct orphan *o = ctx;
	printf("    row:");
	for (size_t i = 0; i < ncols; i++) {
		if (vals[i].type == ZILA_VAL_NULL)
			continue;
		printf(" %s=", cols[i]);
		cli_print_value(&vals[i], false);
	}
	printf("\n");
	if (o->p->kind != ZILA_PARK_ORPHAN || o->l->db == NULL)
		return 0;
	sqlite3_stmt *fk = NULL;
	char *sql = sqlite3_mprintf("SELECT \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(%Q)", o->p->table);
	const char *first = NULL;
	if (sql != NULL && sqlite3_prepare_v2(o->l->db, sql, -1, &fk, NULL) == SQLITE_OK) {
		while (sqlite3_step(fk) == SQLITE_ROW) {
			const char *parent = (const char *)sqlite3_column_text(fk, 0);
			const char *from = (const char *)sqlite3_column_text(fk, 1);
			const char *to = (const char *)sqlite3_column_text(fk, 2);
			for (size_t i = 0; from != NULL && parent != NULL && i < ncols; i++) {
				if (strcmp(cols[i], from) != 0 || vals[i].type == ZILA_VAL_NULL)
					continue;
				sqlite3_stmt *q = NULL;
				char *qs = to != NULL ? sqlite3_mprintf("SELECT 1 FROM \"%w\" WHERE \"%w\" = ?", parent, to)
						      : sqlite3_mprintf("SELECT 1 FROM \"%w\" WHERE rowid = ?", parent);
				bool there = qs != NULL && sqlite3_prepare_v2(o->l->db, qs, -1, &q, NULL) == SQLITE_OK &&
					     (bind_zv(q, 1, &vals[i]), sqlite3_step(q) == SQLITE_ROW);
				sqlite3_finalize(q);
				sqlite3_free(qs);
				if (!there) {
					printf("    missing parent: %s = ", from);
					cli_print_value(&vals[i], false);
					printf(" (no such row in %s)\n", parent);
					if (first == NULL)
						first = cols[i];
				}
			}
		}
	}
	sqlite3_finalize(fk);
	sqlite3_free(sql);
	printf("    it comes back by itself when that parent arrives; or link it to another: "
	       "zila conflicts relink %s:", o->p->table);
	cli_print_value(&o->p->pk, false);
	printf(" %s=ID; or drop it: zila conflicts drop %s:", first ? first : "COLUMN", o->p->table);
	cli_print_value(&o->p->pk, false);
	printf("\n");
	return 0;
}

static int print_parked(void *ctx, const struct zila_park *p)
{
	struct listing *l = ctx;
	const char *kind = kind_name(p->kind);
	if (l->json) {
		printf("%s{\"table\":", l->np ? "," : "");
		cli_json_str(p->table);
		printf(",\"row\":");
		cli_print_value(&p->pk, true);
		printf(",\"kind\":\"%s\"}", kind);
	} else {
		if (l->np == 0)
			printf("parked rows:\n");
		printf("  %s ", p->table);
		cli_print_value(&p->pk, false);
		printf("  %s\n", kind);
		struct orphan o = { l, p };
		struct zila_error err;
		if (zila_store_parked_row(l->s, p->table, &p->pk, show_row, &o, &err) != 0)
			printf("    (its content cannot be read: %s)\n", err.msg);
	}
	l->np++;
	return 0;
}

/* The parked row a user named (TABLE:ID), its key copied out of the walk. */
struct found {
	int n;
	enum zila_park_kind kind;
	struct zila_value pk;
	uint8_t key[1024];
};

static int find_one(void *ctx, const struct zila_park *p)
{
	struct found *f = ctx;
	if (f->n++ > 0)
		return 0;
	f->kind = p->kind;
	f->pk = p->pk;
	if ((p->pk.type == ZILA_VAL_TEXT || p->pk.type == ZILA_VAL_BLOB) && p->pk.len <= sizeof(f->key)) {
		memcpy(f->key, p->pk.p, p->pk.len);
		f->pk.p = f->key;
	}
	return 0;
}

/* relink: the parked row written back into its table with one column set anew (through a
 * plain connection, so foreign keys are checked and the write is captured like any). */
struct relink {
	sqlite3 *db;
	const char *table, *col, *value;
	bool found_col;
	int rc;
	char why[256];
};

static int relink_row(void *ctx, size_t ncols, const char *const *cols, const struct zila_value *vals)
{
	struct relink *rl = ctx;
	char *sql = sqlite3_mprintf("INSERT INTO \"%w\" (", rl->table), *marks = sqlite3_mprintf("");
	for (size_t i = 0; sql != NULL && marks != NULL && i < ncols; i++) {
		char *s2 = sqlite3_mprintf("%s%s\"%w\"", sql, i ? ", " : "", cols[i]);
		char *m2 = sqlite3_mprintf("%s%s?%d", marks, i ? ", " : "", (int)i + 1);
		sqlite3_free(sql);
		sqlite3_free(marks);
		sql = s2;
		marks = m2;
	}
	char *full = sql && marks ? sqlite3_mprintf("%s) VALUES (%s)", sql, marks) : NULL;
	sqlite3_free(sql);
	sqlite3_free(marks);
	sqlite3_stmt *st = NULL;
	rl->rc = full != NULL ? sqlite3_prepare_v2(rl->db, full, -1, &st, NULL) : SQLITE_NOMEM;
	sqlite3_free(full);
	for (size_t i = 0; rl->rc == SQLITE_OK && i < ncols; i++) {
		if (strcmp(cols[i], rl->col) == 0) {
			sqlite3_bind_text(st, (int)i + 1, rl->value, -1, SQLITE_STATIC);
			rl->found_col = true;
		} else {
			bind_zv(st, (int)i + 1, &vals[i]);
		}
	}
	if (rl->rc == SQLITE_OK && rl->found_col)
		rl->rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(rl->db);
	if (rl->rc != SQLITE_OK)
		snprintf(rl->why, sizeof(rl->why), "%s", sqlite3_errmsg(rl->db));
	sqlite3_finalize(st);
	return 0;
}

/* zila conflicts relink TABLE:ID COLUMN=VALUE | drop TABLE:ID */
static int fix_parked(struct cli *cli, int argc, char **argv)
{
	bool relink = strcmp(argv[0], "relink") == 0;
	if (argc != (relink ? 3 : 2))
		return cli_usage("conflicts", relink ? "relink needs TABLE:ID and COLUMN=VALUE" : "drop needs TABLE:ID");
	const char *name = argv[1], *colon = strchr(name, ':');
	const char *eq = relink ? strchr(argv[2], '=') : NULL;
	if (colon == NULL || colon == name || colon[1] == '\0')
		return cli_usage("conflicts", "'%s' is not TABLE:ID (as 'zila conflicts' lists parked rows)", name);
	if (relink && (eq == NULL || eq == argv[2]))
		return cli_usage("conflicts", "'%s' is not COLUMN=VALUE", argv[2]);
	char table[256], col[256];
	snprintf(table, sizeof(table), "%.*s", (int)(colon - name), name);
	if (relink)
		snprintf(col, sizeof(col), "%.*s", (int)(eq - argv[2]), argv[2]);
	struct zila_store *s = NULL;
	struct zila_error err;
	struct found f;
	int rc = CLI_FAIL, r;
	memset(&f, 0, sizeof(f));
	zila_error_clear(&err);
	if (cli_open_store(cli, &s) != CLI_OK)
		return CLI_FAIL;
	if ((r = zila_store_parked_each(s, ZILA_PARK_ANY, table, colon + 1, find_one, &f)) != 0) {
		cli_err("cannot read parked rows: %s", zila_strerror(r));
		goto out;
	}
	if (f.n == 0) {
		cli_err("no parked row '%s' (see 'zila conflicts')", name);
		goto out;
	}
	if (!relink) {
		/* Deleted as a local change: every replica drops it. */
		if ((r = zila_store_delete_row(s, table, &f.pk, &err)) != 0 || (r = zila_store_seal(s, NULL, &err)) != 0) {
			cli_err("cannot drop '%s': %s", name, zila_error_msg(&err, r));
			goto out;
		}
		printf("dropped %s; every replica drops it once this change reaches it\n", name);
		rc = CLI_OK;
		goto out;
	}
	if (f.kind != ZILA_PARK_ORPHAN) {
		cli_err("'%s' is not an orphan (it is parked as a %s): %s", name,
			f.kind == ZILA_PARK_DUP ? "duplicate" : "invalid row",
			f.kind == ZILA_PARK_DUP ? "see 'zila duplicates merge'" : "fix what it breaks, or drop it");
		goto out;
	}
	struct relink rl = { NULL, table, col, eq + 1, false, SQLITE_OK, "" };
	if (cli_open_db(cli, true, &rl.db) != CLI_OK)
		goto out;
	r = zila_store_parked_row(s, table, &f.pk, relink_row, &rl, &err);
	sqlite3_close(rl.db);
	if (r != 0) {
		cli_err("cannot read '%s': %s", name, zila_error_msg(&err, r));
		goto out;
	}
	if (!rl.found_col) {
		cli_err("'%s' has no column '%s'", table, col);
		goto out;
	}
	if (rl.rc != SQLITE_OK) {
		cli_err("cannot link '%s' with %s = '%s': %s%s", name, col, eq + 1, rl.why,
			(rl.rc & 0xff) == SQLITE_CONSTRAINT ? " (is there such a parent row?)" : "");
		goto out;
	}
	if ((r = zila_store_seal(s, NULL, &err)) != 0) {
		cli_err("cannot seal the change: %s", zila_error_msg(&err, r));
		goto out;
	}
	printf("linked %s with %s = %s; it is back in its table, and every replica follows\n", name, col, eq + 1);
	rc = CLI_OK;
out:
	zila_store_free(s);
	return rc;
}

int cmd_conflicts(struct cli *cli, int argc, char **argv);
int cmd_conflicts(struct cli *cli, int argc, char **argv)
{
	(void)argv;
	if (argc > 1 && strcmp(argv[1], "resolve") == 0)
		return resolve(cli, argc - 1, argv + 1);
	if (argc > 1 && (strcmp(argv[1], "relink") == 0 || strcmp(argv[1], "drop") == 0))
		return fix_parked(cli, argc - 1, argv + 1);
	if (argc > 1)
		return cli_usage("conflicts", "unexpected argument '%s'", argv[1]);
	struct zila_store *s = NULL;
	if (cli_open_store(cli, &s) != CLI_OK)
		return CLI_FAIL;
	struct zila_error err;
	zila_error_clear(&err);
	int r = zila_store_seal(s, NULL, &err);
	if (r != 0) {
		cli_err("%s", zila_error_msg(&err, r));
		zila_store_free(s);
		return CLI_FAIL;
	}
	struct listing l = { s, NULL, cli->json, 0, 0 };
	if (!cli->json && cli_open_db(cli, false, &l.db) != CLI_OK)
		l.db = NULL;
	if (cli->json)
		printf("{\"conflicts\":[");
	if ((r = zila_store_conflict_each(s, print_conflict, &l)) != 0) {
		if (cli->json)
			printf("\n");
		cli_err("cannot read conflicts: %s", zila_strerror(r));
		sqlite3_close(l.db);
		zila_store_free(s);
		return CLI_FAIL;
	}
	if (cli->json)
		printf("],\"parked\":[");
	if ((r = zila_store_parked_each(s, ZILA_PARK_ANY, NULL, NULL, print_parked, &l)) != 0) {
		if (cli->json)
			printf("\n");
		cli_err("cannot read parked rows: %s", zila_strerror(r));
		sqlite3_close(l.db);
		zila_store_free(s);
		return CLI_FAIL;
	}
	if (cli->json)
		printf("]}\n");
	else if (l.n == 0 && l.np == 0)
		printf("no conflicts\n");
	else
		printf("%zu overwritten value%s, %zu parked row%s\n", l.n, l.n == 1 ? "" : "s", l.np, l.np == 1 ? "" : "s");
	sqlite3_close(l.db);
	zila_store_free(s);
	return CLI_OK;
}
