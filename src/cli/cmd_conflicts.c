/* zila conflicts: values overwritten by concurrent writes, and rows parked as
 * duplicates (a UNIQUE collision), orphans (a missing parent) or invalid; `resolve` writes
 * the chosen value as a new change that every replica then agrees on. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>

#include "cli.h"
#include "cli_db.h"
#include "zila/store.h"

static void print_col(sqlite3_stmt *st, int i, bool json)
{
	struct zila_value v = { 0 };
	switch (sqlite3_column_type(st, i)) {
	case SQLITE_INTEGER:
		v.type = ZILA_VAL_INT;
		v.i = sqlite3_column_int64(st, i);
		break;
	case SQLITE_FLOAT:
		v.type = ZILA_VAL_REAL;
		v.d = sqlite3_column_double(st, i);
		break;
	case SQLITE_TEXT:
		v.type = ZILA_VAL_TEXT;
		v.p = sqlite3_column_text(st, i);
		v.len = (size_t)sqlite3_column_bytes(st, i);
		break;
	case SQLITE_BLOB:
		v.type = ZILA_VAL_BLOB;
		v.p = sqlite3_column_blob(st, i);
		v.len = (size_t)sqlite3_column_bytes(st, i);
		break;
	default:
		v.type = ZILA_VAL_NULL;
	}
	cli_print_value(&v, json);
}

static void print_who(sqlite3_stmt *st, int key, int hlc, bool json)
{
	char dev[17] = "?", when[32];
	if (sqlite3_column_bytes(st, key) == 32)
		cli_short_device(dev, sqlite3_column_blob(st, key));
	cli_hlc_time(when, (uint64_t)sqlite3_column_int64(st, hlc));
	if (json)
		printf("\"device\":\"%s\",\"time\":\"%s\"", dev, when);
	else
		printf("%s at %s", dev, when);
}

static const char *kind_name(int k)
{
	return k == 1 ? "duplicate" : k == 2 ? "orphan" : k == 3 ? "invalid" : "?";
}

/* The primary key column of a table (malloc'd) and whether col is one of its columns. */
static int table_pk(sqlite3 *db, const char *table, const char *col, char **pkcol, bool *has_col)
{
	sqlite3_stmt *st = NULL;
	char *sql = sqlite3_mprintf("PRAGMA table_info(\"%w\")", table);
	int r = -1;
	*pkcol = NULL;
	*has_col = false;
	if (sql == NULL || sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		goto out;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 1);
		if (name == NULL)
			continue;
		if (sqlite3_column_int(st, 5) == 1 && *pkcol == NULL)
			*pkcol = strdup(name);
		if (strcmp(name, col) == 0)
			*has_col = true;
	}
	r = *pkcol ? 0 : -1;
out:
	sqlite3_finalize(st);
	sqlite3_free(sql);
	return r;
}

/* Why the row (tbl, pk) is not in its table: its parked kind, or 0 when deleted. */
static int parked_kind(sqlite3 *db, const char *table, sqlite3_value *pk)
{
	sqlite3_stmt *st = NULL;
	int kind = 0;
	if (sqlite3_prepare_v2(db,
			       "SELECT p.kind FROM zila_parked p JOIN zila_tables t ON t.id = p.tid"
			       " WHERE t.name = ? AND p.pk = ?",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
		sqlite3_bind_value(st, 2, pk);
		if (sqlite3_step(st) == SQLITE_ROW)
			kind = sqlite3_column_int(st, 0);
	}
	sqlite3_finalize(st);
	return kind;
}

static int resolve(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "keep", required_argument, NULL, 'k' }, { NULL, 0, NULL, 0 } };
	const char *keep = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'k')
			keep = optarg;
		else
			return cli_usage("conflicts", "unknown option");
	}
	if (optind + 1 != argc)
		return cli_usage("conflicts", optind >= argc ? "resolve needs a conflict ID" : "unexpected argument '%s'",
				 argv[optind + 1 < argc ? optind + 1 : 0]);
	if (keep == NULL)
		return cli_usage("conflicts", "resolve needs --keep kept|lost|VALUE");
	const char *idarg = argv[optind];
	char *end = NULL;
	errno = 0;
	long long id = strtoll(idarg, &end, 10);
	if (errno != 0 || end == idarg || *end != '\0' || id <= 0)
		return cli_usage("conflicts", "'%s' is not a conflict id", idarg);

	int rc = CLI_FAIL;
	struct zila_store *s = NULL;
	sqlite3 *app = NULL;
	sqlite3_stmt *st = NULL, *q = NULL;
	sqlite3_value *pk = NULL, *lost = NULL;
	char *tbl = NULL, *col = NULL, *pkcol = NULL, *sql = NULL;
	bool has_col = false;
	struct zila_error err;
	zila_error_clear(&err);
	if (cli_open_store(cli, &s) != CLI_OK)
		goto out;
	int r = zila_store_seal(s, NULL, &err);
	if (r != 0) {
		cli_err("%s", zila_error_msg(&err, r));
		goto out;
	}
	sqlite3 *db = zila_store_db(s);
	if (sqlite3_prepare_v2(db, "SELECT tbl, pk, col, lost, resolved FROM zila_conflicts WHERE id = ?", -1, &st,
			       NULL) != SQLITE_OK) {
		cli_err("cannot read conflicts: %s", sqlite3_errmsg(db));
		goto out;
	}
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		cli_err("no conflict '%lld' (see 'zila conflicts')", id);
		goto out;
	}
	if (sqlite3_column_int(st, 4) != 0) {
		cli_err("conflict '%lld' is already resolved", id);
		goto out;
	}
	tbl = strdup((const char *)sqlite3_column_text(st, 0));
	col = strdup((const char *)sqlite3_column_text(st, 2));
	pk = sqlite3_value_dup(sqlite3_column_value(st, 1));
	lost = sqlite3_value_dup(sqlite3_column_value(st, 3));
	sqlite3_finalize(st);
	st = NULL;
	if (tbl == NULL || col == NULL || pk == NULL || lost == NULL) {
		cli_err("out of memory");
		goto out;
	}
	if (table_pk(db, tbl, col, &pkcol, &has_col) != 0 || !has_col) {
		cli_err("table '%s' has no column '%s' any more", tbl, col);
		goto out;
	}
	sql = sqlite3_mprintf("SELECT 1 FROM \"%w\" WHERE \"%w\" = ?", tbl, pkcol);
	if (sql == NULL || sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		cli_err("cannot read '%s': %s", tbl, sqlite3_errmsg(db));
		goto out;
	}
	sqlite3_bind_value(st, 1, pk);
	bool present = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	st = NULL;
	if (!present) {
		int kind = parked_kind(db, tbl, pk);
		cli_err("row '%s' of '%s' no longer exists (%s)", (const char *)sqlite3_value_text(pk), tbl,
			kind == 1   ? "parked as a duplicate; see 'zila duplicates'"
			: kind == 2 ? "parked as an orphan: its parent is missing"
			: kind == 3 ? "parked as invalid"
				    : "deleted");
		goto out;
	}
	if (strcmp(keep, "kept") != 0) {
		/* A normal application write: the capture triggers fire on this connection. */
		if (cli_open_db(cli, true, &app) != CLI_OK)
			goto out;
		sqlite3_free(sql);
		sql = sqlite3_mprintf("UPDATE \"%w\" SET \"%w\" = ?1 WHERE \"%w\" = ?2", tbl, col, pkcol);
		if (sql == NULL || sqlite3_prepare_v2(app, sql, -1, &q, NULL) != SQLITE_OK) {
			cli_err("cannot update '%s': %s", tbl, sqlite3_errmsg(app));
			goto out;
		}
		if (strcmp(keep, "lost") == 0)
			sqlite3_bind_value(q, 1, lost);
		else
			sqlite3_bind_text(q, 1, keep, -1, SQLITE_STATIC);
		sqlite3_bind_value(q, 2, pk);
		if (sqlite3_step(q) != SQLITE_DONE) {
			cli_err("cannot set '%s' of row '%s' in '%s': %s", col, (const char *)sqlite3_value_text(pk), tbl,
				sqlite3_errmsg(app));
			goto out;
		}
		if ((r = zila_store_seal(s, NULL, &err)) != 0) {
			cli_err("%s", zila_error_msg(&err, r));
			goto out;
		}
	}
	/* Every open conflict on the same cell is settled by this choice. */
	if (sqlite3_prepare_v2(db,
			       "UPDATE zila_conflicts SET resolved = 1 WHERE resolved = 0 AND"
			       " (id = ?1 OR (tbl = ?2 AND pk = ?3 AND col = ?4))",
			       -1, &st, NULL) != SQLITE_OK) {
		cli_err("cannot mark conflict '%lld' resolved: %s", id, sqlite3_errmsg(db));
		goto out;
	}
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, tbl, -1, SQLITE_STATIC);
	sqlite3_bind_value(st, 3, pk);
	sqlite3_bind_text(st, 4, col, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		cli_err("cannot mark conflict '%lld' resolved: %s", id, sqlite3_errmsg(db));
		goto out;
	}
	int n = sqlite3_changes(db);
	if (cli->json)
		printf("{\"resolved\":%d,\"table\":", n);
	else
		printf("resolved %d conflict%s on %s ", n, n == 1 ? "" : "s", tbl);
	if (cli->json) {
		cli_json_str(tbl);
		printf(",\"row\":");
		cli_json_str((const char *)sqlite3_value_text(pk));
		printf(",\"column\":");
		cli_json_str(col);
		printf(",\"written\":%s}\n", strcmp(keep, "kept") != 0 ? "true" : "false");
	} else {
		printf("%s %s: %s\n", (const char *)sqlite3_value_text(pk), col,
		       strcmp(keep, "kept") == 0 ? "kept the current value" : "wrote the chosen value");
	}
	rc = CLI_OK;
out:
	sqlite3_finalize(st);
	sqlite3_finalize(q);
	sqlite3_close(app);
	sqlite3_value_free(pk);
	sqlite3_value_free(lost);
	sqlite3_free(sql);
	free(tbl);
	free(col);
	free(pkcol);
	zila_store_free(s);
	return rc;
}

int cmd_conflicts(struct cli *cli, int argc, char **argv);
int cmd_conflicts(struct cli *cli, int argc, char **argv)
{
	(void)argv;
	if (argc > 1 && strcmp(argv[1], "resolve") == 0)
		return resolve(cli, argc - 1, argv + 1);
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
	sqlite3 *db = zila_store_db(s);
	sqlite3_stmt *st = NULL;
	size_t n = 0, np = 0;
	if (sqlite3_prepare_v2(db,
			       "SELECT id, tbl, pk, col, kept, kept_origin, kept_hlc, lost, lost_origin, lost_hlc"
			       " FROM zila_conflicts WHERE resolved = 0 ORDER BY id",
			       -1, &st, NULL) != SQLITE_OK) {
		cli_err("cannot read conflicts: %s", sqlite3_errmsg(db));
		zila_store_free(s);
		return CLI_FAIL;
	}
	if (cli->json)
		printf("{\"conflicts\":[");
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (cli->json) {
			printf("%s{\"id\":%lld,\"table\":", n ? "," : "", (long long)sqlite3_column_int64(st, 0));
			print_col(st, 1, true);
			printf(",\"row\":");
			print_col(st, 2, true);
			printf(",\"column\":");
			print_col(st, 3, true);
			printf(",\"kept\":{\"value\":");
			print_col(st, 4, true);
			printf(",");
			print_who(st, 5, 6, true);
			printf("},\"lost\":{\"value\":");
			print_col(st, 7, true);
			printf(",");
			print_who(st, 8, 9, true);
			printf("}}");
		} else {
			if (n == 0)
				printf("overwritten values:\n");
			printf("  #%lld %s ", (long long)sqlite3_column_int64(st, 0), sqlite3_column_text(st, 1));
			print_col(st, 2, false);
			printf(" %s\n    kept: ", sqlite3_column_text(st, 3));
			print_col(st, 4, false);
			printf("  (");
			print_who(st, 5, 6, false);
			printf(")\n    lost: ");
			print_col(st, 7, false);
			printf("  (");
			print_who(st, 8, 9, false);
			printf(")\n");
		}
		n++;
	}
	sqlite3_finalize(st);
	if (cli->json)
		printf("],\"parked\":[");
	if (sqlite3_prepare_v2(db,
			       "SELECT t.name, p.pk, p.kind FROM zila_parked p JOIN zila_tables t ON t.id = p.tid"
			       " ORDER BY t.name, p.pk",
			       -1, &st, NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW) {
			const char *kind = kind_name(sqlite3_column_int(st, 2));
			if (cli->json) {
				printf("%s{\"table\":", np ? "," : "");
				print_col(st, 0, true);
				printf(",\"row\":");
				print_col(st, 1, true);
				printf(",\"kind\":\"%s\"}", kind);
			} else {
				if (np == 0)
					printf("parked rows:\n");
				printf("  %s ", sqlite3_column_text(st, 0));
				print_col(st, 1, false);
				printf("  %s\n", kind);
			}
			np++;
		}
	}
	sqlite3_finalize(st);
	if (cli->json)
		printf("]}\n");
	else if (n == 0 && np == 0)
		printf("no conflicts\n");
	else
		printf("%zu overwritten value%s, %zu parked row%s\n", n, n == 1 ? "" : "s", np, np == 1 ? "" : "s");
	zila_store_free(s);
	return CLI_OK;
}
