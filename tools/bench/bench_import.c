/* CSV import benchmark (issue 5): 100k member rows (Hindi and English names, phones, dates,
 * a district given by name, an org unit foreign key) imported in one transaction, into a
 * plain database with the default schema and into a replica whose capture triggers record
 * every row; then a re-import that changes nothing, and an export.
 * usage: bench_import [ROWS]   (default 100000; ZILA_BENCH_QUICK=1: 20000) */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>
#include <sqlite3.h>

#include "zila/office/csvio.h"
#include "zila/store.h"

extern const char zila_default_schema_sql[];

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "bench_import: %s: %s\n", what, msg);
	exit(1);
}

static const char seed_sql[] =
	"INSERT INTO states (id, name) VALUES ('s1', 'Bihar');"
	"INSERT INTO districts (id, state_id, name, name_local, code) VALUES "
	"('d1', 's1', 'Patna', 'पटना', 'PAT'), ('d2', 's1', 'Gaya', 'गया', 'GAY');"
	"INSERT INTO org_units (id, level, name) VALUES ('u0', 'state', 'Bihar');"
	"INSERT INTO org_units (id, level, parent_id, district_id, name) VALUES "
	"('u1', 'district', 'u0', 'd1', 'Patna'), ('u2', 'district', 'u0', 'd2', 'Gaya');";

/* A members file as Excel writes it: BOM, CRLF, quoted addresses with commas. */
static char *make_csv(size_t n, size_t *len)
{
	static const char *first[] = { "Ramesh", "Sita", "Anil", "Gita", "Manoj", "Rekha" };
	static const char *first_hi[] = { "रमेश", "सीता", "अनिल", "गीता", "मनोज", "रेखा" };
	static const char *last[] = { "Kumar", "Devi", "Yadav", "Singh", "Prasad" };
	static const char *last_hi[] = { "कुमार", "देवी", "यादव", "सिंह", "प्रसाद" };
	size_t cap = 256 + n * 200, off = 0;
	char *s = malloc(cap);
	if (s == NULL)
		die("csv", "out of memory");
	off += (size_t)snprintf(s + off, cap - off,
				"\xef\xbb\xbfName,Name Local,Phone,District,Gender,Birth Year,"
				"Address,Org Unit,Joined On\r\n");
	for (size_t i = 0; i < n; i++) {
		bool gaya = i % 2;
		off += (size_t)snprintf(s + off, cap - off,
					"%s %s,%s %s,+91 9%09zu,%s,%s,%zu,\"Ward %zu, Village %zu\",%s,"
					"%02zu/%02zu/20%02zu\r\n",
					first[i % 6], last[i % 5], first_hi[i % 6], last_hi[i % 5], i,
					gaya ? "Gaya" : "पटना", i % 2 ? "female" : "male", 1950 + i % 50,
					i % 20, i % 3000, gaya ? "u2" : "u1", 1 + i % 28, 1 + i % 12,
					10 + i % 15);
	}
	*len = off;
	return s;
}

static double run_import(sqlite3 *db, const char *csv, size_t len, struct zila_csv_stats *st)
{
	struct zila_csv_import *im = NULL;
	struct zila_error err;
	struct zila_csv_import_opts o = { .table = "people" };
	double t0 = now();
	int r = zila_csv_import_new(&im, db, &o, &err);
	for (size_t off = 0; r == 0 && off < len; off += 256 * 1024)
		r = zila_csv_import_feed(im, csv + off, len - off < 256 * 1024 ? len - off : 256 * 1024,
					 &err);
	if (r == 0)
		r = zila_csv_import_finish(im, st, &err);
	double t = now() - t0;
	zila_csv_import_free(im);
	if (r != 0)
		die("import", err.msg);
	return t;
}

int main(int argc, char **argv)
{
	size_t n = 100000;
	if (getenv("ZILA_BENCH_QUICK") != NULL)
		n = 20000;
	if (argc > 1)
		n = (size_t)strtoull(argv[1], NULL, 10);
	if (sodium_init() < 0)
		die("sodium", "cannot initialise");
	size_t len;
	char *csv = make_csv(n, &len);
	struct zila_csv_stats st;
	printf("== bench_import: %zu member rows, %.1f MB CSV (BOM, Hindi, quoted fields)\n", n,
	       (double)len / 1e6);

	/* a plain database with the default schema */
	char dir[] = "/tmp/zila-bench-import-XXXXXX";
	if (mkdtemp(dir) == NULL)
		die("mkdtemp", dir);
	char path[1024];
	snprintf(path, sizeof(path), "%s/plain.db", dir);
	sqlite3 *db;
	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    sqlite3_exec(db, "PRAGMA journal_mode = WAL; PRAGMA cache_size = -65536", NULL, NULL,
			 NULL) != SQLITE_OK ||
	    sqlite3_exec(db, zila_default_schema_sql, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(db, seed_sql, NULL, NULL, NULL) != SQLITE_OK)
		die("plain db", sqlite3_errmsg(db));
	double t = run_import(db, csv, len, &st);
	if (st.ncreated != n)
		die("plain import", "not every row was created");
	printf("import, plain database:        %8.0f rows/s  (%.2f s)\n", (double)n / t, t);
	t = run_import(db, csv, len, &st);
	if (st.nunchanged != n)
		die("re-import", "rows changed");
	printf("re-import, nothing changes:    %8.0f rows/s  (%.2f s)\n", (double)n / t, t);
	char *out = NULL;
	size_t out_len = 0;
	FILE *m = open_memstream(&out, &out_len);
	struct zila_csv_export_opts eo = { .table = "people" };
	double t0 = now();
	if (m == NULL || zila_csv_export(db, &eo, m, NULL, NULL) != 0)
		die("export", "failed");
	fclose(m);
	t = now() - t0;
	printf("export CSV:                    %8.0f rows/s  (%.2f s, %.1f MB)\n", (double)n / t, t,
	       (double)out_len / 1e6);
	free(out);
	sqlite3_close(db);

	/* a replica: the capture triggers record every imported row for sealing */
	char rdir[600];
	snprintf(rdir, sizeof(rdir), "%s/replica", dir);
	struct zila_error err;
	zila_error_clear(&err);
	if (zila_store_create(rdir, &err) != 0) {
		printf("import, replica (captured):    skipped (%s)\n", err.msg);
	} else {
		snprintf(path, sizeof(path), "%s/%s", rdir, ZILA_DB_FILE);
		if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
		    sqlite3_exec(db, "PRAGMA cache_size = -65536", NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(db, seed_sql, NULL, NULL, NULL) != SQLITE_OK)
			die("replica", sqlite3_errmsg(db));
		sqlite3_busy_timeout(db, 10000);
		t = run_import(db, csv, len, &st);
		if (st.ncreated != n)
			die("replica import", "not every row was created");
		printf("import, replica (captured):    %8.0f rows/s  (%.2f s)\n", (double)n / t, t);
		sqlite3_close(db);
	}
	free(csv);
	char cmd[700];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_import: cannot remove '%s'\n", dir);
	return 0;
}
