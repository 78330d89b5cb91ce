/* zila conflicts: values overwritten by concurrent writes, and rows parked as
 * duplicates (a UNIQUE collision), orphans (a missing parent) or invalid. */
#include <stdio.h>
#include <string.h>
#include <sqlite3.h>

#include "cli.h"
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

int cmd_conflicts(struct cli *cli, int argc, char **argv);
int cmd_conflicts(struct cli *cli, int argc, char **argv)
{
	(void)argv;
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
