/* zila export: one table as CSV (UTF-8 with BOM, so Excel keeps Hindi intact) or JSON;
 * importing the CSV back changes nothing. The work is in src/office/export.c. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sqlite3.h>

#include "cli.h"
#include "cli_db.h"
#include "zila/office/csvio.h"
#include "zila/os.h"

int cmd_export(struct cli *cli, int argc, char **argv);
int cmd_export(struct cli *cli, int argc, char **argv)
{
	int rc = CLI_FAIL;
	const char *table = NULL, *district = NULL, *outpath = NULL;
	enum zila_export_format format = cli->json ? ZILA_EXPORT_JSON : ZILA_EXPORT_CSV;
	bool no_bom = false;
	sqlite3 *db = NULL;
	FILE *out = NULL;
	struct zila_os_atomic *file = NULL;
	struct zila_error err;
	zila_error_clear(&err);

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--no-bom") == 0) {
			no_bom = true;
			continue;
		}
		if (strcmp(a, "--table") != 0 && strcmp(a, "-t") != 0 && strcmp(a, "--district") != 0 &&
		    strcmp(a, "--format") != 0 && strcmp(a, "-o") != 0 && strcmp(a, "--output") != 0) {
			rc = cli_usage("export", a[0] == '-' ? "unknown option '%s'"
							   : "unexpected argument '%s'",
				       a);
			goto out;
		}
		if (v == NULL) {
			rc = cli_usage("export", "option '%s' needs a value", a);
			goto out;
		}
		i++;
		if (strcmp(a, "--table") == 0 || strcmp(a, "-t") == 0) {
			table = v;
		} else if (strcmp(a, "--district") == 0) {
			district = v;
		} else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
			outpath = v;
		} else if (strcmp(v, "csv") == 0) {
			format = ZILA_EXPORT_CSV;
		} else if (strcmp(v, "json") == 0) {
			format = ZILA_EXPORT_JSON;
		} else {
			rc = cli_usage("export", "unknown format '%s' (csv or json)", v);
			goto out;
		}
	}
	if (table == NULL) {
		rc = cli_usage("export", "no table given (--table TABLE)");
		goto out;
	}
	rc = cli_open_db(cli, false, &db);
	if (rc != CLI_OK)
		goto out;
	rc = CLI_FAIL;

	if (outpath != NULL) {
		/* written beside the target and renamed, so a failed export leaves no half file */
		if (zila_os_atomic_open(&file, outpath, 0666, &err) == 0) {
			zila_os_atomic_remakeable(file);
		} else {
			cli_err("%s", err.msg);
			goto out;
		}
		out = zila_os_atomic_stream(file);
	}
	struct zila_csv_export_opts opts = {
		.table = table, .district = district, .format = format, .no_bom = no_bom,
	};
	uint64_t nrows = 0;
	int r = zila_csv_export(db, &opts, out ? out : stdout, &nrows, &err);
	if (r != 0) {
		cli_err("cannot export '%s': %s", table, zila_error_msg(&err, r));
		goto out;
	}
	if (file != NULL) {
		int cr = zila_os_atomic_commit(file, &err);
		file = NULL;
		if (cr != 0) {
			cli_err("%s", err.msg);
			goto out;
		}
		fprintf(stderr, "%" PRIu64 " rows of '%s' written to '%s'\n", nrows, table, outpath);
	}
	rc = CLI_OK;
out:
	zila_os_atomic_abort(file);
	sqlite3_close(db);
	return rc;
}
