/* libFuzzer harness for the CSV import path: arbitrary bytes as a spreadsheet for one of
 * the default tables, fed in chunks, in an in-memory replica. The first byte picks the
 * table, the chunk size and the options (the change callback, a laptop's own district); the
 * rest is the file. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "zila/office/csvio.h"

extern const char zila_default_schema_sql[];
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sqlite3 *db;

static void on_reject(void *ctx, const struct zila_csv_reject *rj)
{
	size_t *n = ctx;
	/* touch everything the callback is given, so that ASan checks it */
	for (size_t i = 0; i < rj->nfields; i++)
		if (rj->fields[i] != NULL && rj->field_lens[i] > 0)
			*n += (unsigned char)rj->fields[i][rj->field_lens[i] - 1];
	for (size_t i = 0; i < rj->nheader; i++)
		*n += rj->header_lens[i];
	(*n)++;
}

static void on_change(void *ctx, const struct zila_csv_change *ch)
{
	size_t *n = ctx;
	for (size_t i = 0; i < ch->ncols; i++) {
		*n += strlen(ch->columns[i]);
		if (ch->new_values[i] != NULL)
			*n += strlen(ch->new_values[i]);
		if (!ch->created && ch->old_values[i] != NULL)
			*n += strlen(ch->old_values[i]);
	}
	*n += ch->row + strlen(ch->id) + (ch->name != NULL ? strlen(ch->name) : 0);
}

static void setup(void)
{
	if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
	    sqlite3_exec(db, zila_default_schema_sql, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(db,
			 "INSERT INTO states (id, name) VALUES ('s1', 'Bihar');"
			 "INSERT INTO districts (id, state_id, name, name_local, code) VALUES "
			 "('d1', 's1', 'Patna', 'पटना', 'PAT'), ('d2', 's1', 'Gaya', 'गया', 'GAY');"
			 "INSERT INTO org_units (id, level, name) VALUES ('u0', 'state', 'Bihar');"
			 "INSERT INTO org_units (id, level, parent_id, district_id, name) VALUES "
			 "('u1', 'district', 'u0', 'd1', 'Patna'), ('u2', 'booth', 'u1', 'd1', 'B1');"
			 "INSERT INTO people (id, district_id, name, phone) VALUES "
			 "('p1', 'd1', 'Ramesh', '9876543210');"
			 "INSERT INTO posts (id, name, level) VALUES ('post1', 'President', 'booth');"
			 "INSERT INTO drives (id, name) VALUES ('drv', 'Drive');",
			 NULL, NULL, NULL) != SQLITE_OK)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *tables[] = { "people", "org_units", "office_bearers", "booth_agents",
					"reports", "signups", "districts", "events" };
	static const size_t chunks[] = { 1, 2, 3, 7, 64, 4096, 1 << 20, 13 };
	if (db == NULL)
		setup();
	if (size < 1)
		return 0;
	uint8_t sel = data[0];
	data++;
	size--;
	size_t nrej = 0;
	struct zila_csv_map map[] = { { "s.no.", "" }, { "mobile", "phone" } };
	struct zila_csv_import_opts o = {
		.table = tables[sel & 7],
		.map = map,
		.nmap = (sel & 7) == 0 ? 2 : 1, /* phone is a column of people only */
		.dry_run = (sel & 0x80) == 0,
		.skip_bad = (sel & 0x40) != 0,
		.on_reject = on_reject,
		.on_change = (sel & 0x20) != 0 ? on_change : NULL,
		.own_district = (sel & 0x80) != 0 && (sel & 0x20) != 0 ? "d2" : NULL,
		.ctx = &nrej,
	};
	struct zila_csv_import *im = NULL;
	struct zila_csv_stats st;
	if (zila_csv_import_new(&im, db, &o, NULL) != 0)
		abort();
	size_t chunk = chunks[(sel >> 3) & 7];
	int r = 0;
	for (size_t off = 0; off < size && r == 0; off += chunk)
		r = zila_csv_import_feed(im, data + off, size - off < chunk ? size - off : chunk, NULL);
	if (r == 0)
		r = zila_csv_import_finish(im, &st, NULL);
	zila_csv_import_free(im);
	/* the replica is never left inside a transaction */
	if (!sqlite3_get_autocommit(db))
		abort();
	/* rows written (with skip_bad and not dry run) go back out through export */
	if (r == 0 && !o.dry_run) {
		FILE *null = fopen("/dev/null", "w");
		struct zila_csv_export_opts eo = { .table = o.table };
		if (null != NULL) {
			if (zila_csv_export(db, &eo, null, NULL, NULL) != 0)
				abort();
			fclose(null);
		}
		sqlite3_exec(db, "DELETE FROM signups; DELETE FROM reports; DELETE FROM booth_agents; "
				 "DELETE FROM office_bearers; DELETE FROM events; "
				 "DELETE FROM people WHERE id <> 'p1'; "
				 "DELETE FROM org_units WHERE id NOT IN ('u0', 'u1', 'u2'); "
				 "DELETE FROM districts WHERE id NOT IN ('d1', 'd2');",
			     NULL, NULL, NULL);
	}
	return 0;
}
