/* Replica engine benchmark (issue 2): write path with and without capture, sealing,
 * bundle apply into an empty replica, file size, an incremental exchange, and the sweep.
 * Workload: a members-like table of 8 text columns with random 16-byte hex ids.
 * usage: bench_store [ROWS...]   (default: 100000 1000000; ZILA_BENCH_QUICK=1: 20000) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>
#include <sqlite3.h>

#include "zila/bundle.h"
#include "zila/os.h"
#include "zila/store.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "bench_store: %s: %s\n", what, msg);
	exit(1);
}

static const char cols_sql[] = "(id TEXT PRIMARY KEY, district_id TEXT NOT NULL, name TEXT, father TEXT,"
			       " phone TEXT, village TEXT, booth TEXT, caste TEXT, occupation TEXT)";

/* Inserts n rows in one transaction through a plain connection; returns seconds. */
static double insert_rows(const char *db_path, const char *table, size_t n, uint64_t seed)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	char sql[256], id[33], buf[8][40];
	if (sqlite3_open(db_path, &db) != SQLITE_OK)
		die("open", db_path);
	snprintf(sql, sizeof(sql), "INSERT INTO %s VALUES (?,?,?,?,?,?,?,?,?)", table);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		die("prepare", sqlite3_errmsg(db));
	uint64_t x = seed;
	double t0 = now();
	sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
	for (size_t i = 0; i < n; i++) {
		uint8_t raw[16];
		for (int k = 0; k < 16; k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			raw[k] = (uint8_t)x;
		}
		for (int k = 0; k < 16; k++)
			sprintf(id + 2 * k, "%02x", raw[k]);
		snprintf(buf[0], 40, "Ramesh Kumar %zu", i % 977);
		snprintf(buf[1], 40, "Suresh Prasad %zu", i % 613);
		snprintf(buf[2], 40, "9%09zu", i);
		snprintf(buf[3], 40, "Village %zu", i % 5000);
		snprintf(buf[4], 40, "booth-%zu", i % 2000);
		snprintf(buf[5], 40, "group %zu", i % 40);
		snprintf(buf[6], 40, "farmer %zu", i % 25);
		sqlite3_bind_text(st, 1, id, 32, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, "d-patna", -1, SQLITE_STATIC);
		for (int k = 0; k < 7; k++)
			sqlite3_bind_text(st, 3 + k, buf[k], -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			die("insert", sqlite3_errmsg(db));
		sqlite3_reset(st);
	}
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	double t = now() - t0;
	sqlite3_finalize(st);
	sqlite3_close(db);
	return t;
}

static void exec(const char *db_path, const char *sql)
{
	sqlite3 *db;
	char *msg = NULL;
	if (sqlite3_open(db_path, &db) != SQLITE_OK || sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		die(sql, msg ? msg : "open");
	sqlite3_close(db);
}

static off_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_size : 0;
}

static struct zila_store *open_store(const char *dir)
{
	struct zila_store *s;
	struct zila_error err;
	if (zila_store_open(&s, dir, &err) != 0)
		die("open store", err.msg);
	return s;
}

static void make_replica(const char *dir, bool with_plain)
{
	struct zila_error err;
	char db[512], cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		die("rm", dir);
	if (zila_store_create(dir, &err) != 0)
		die("create", err.msg);
	snprintf(db, sizeof(db), "%s/zila.db", dir);
	char sql[600];
	snprintf(sql, sizeof(sql), "CREATE TABLE members %s;%s%s", cols_sql, with_plain ? "CREATE TABLE plain_members " : "",
		 with_plain ? cols_sql : "");
	exec(db, sql);
	struct zila_store *s = open_store(dir);
	if (zila_store_track(s, "members", "district_id", &err) != 0)
		die("track", err.msg);
	zila_store_free(s);
}

/* Waits for a checkpoint the store's thread may be running, then empties the WAL. */
/* A bundle to a file and back, as `zila bundle create` and `apply` do it. */
static int bundle_create(struct zila_store *s, const char *path, const struct zila_vector *have, size_t *n,
			 struct zila_error *err)
{
	struct zila_os_atomic *a;
	int r = zila_os_atomic_open(&a, path, 0644, err);
	if (r == 0)
		zila_os_atomic_remakeable(a);
	if (r == 0 && (r = zila_bundle_write(s, have, NULL, NULL, zila_os_atomic_write, a, n, err)) != 0)
		zila_os_atomic_abort(a);
	else if (r == 0)
		r = zila_os_atomic_commit(a, err);
	return r;
}

static int bundle_apply(struct zila_store *s, const char *path, struct zila_apply_stats *st, struct zila_error *err)
{
	struct zila_os_map m;
	int r = zila_os_map(&m, path, err);
	if (r == 0) {
		r = zila_bundle_read(s, NULL, m.p, m.len, path, st, err);
		zila_os_unmap(&m);
	}
	return r;
}

static void checkpoint(const char *path)
{
	sqlite3 *db;
	char *msg = NULL;
	if (sqlite3_open(path, &db) != SQLITE_OK)
		die("open", path);
	sqlite3_busy_timeout(db, 60000);
	if (sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, &msg) != SQLITE_OK)
		die("checkpoint", msg ? msg : path);
	sqlite3_close(db);
}

static void run(size_t n, const char *base)
{
	char a[512], b[512], adb[600], bdb[600], plain[600], bundle[600];
	struct zila_error err;
	snprintf(a, sizeof(a), "%s/a", base);
	snprintf(b, sizeof(b), "%s/b", base);
	snprintf(adb, sizeof(adb), "%s/zila.db", a);
	snprintf(bdb, sizeof(bdb), "%s/zila.db", b);
	snprintf(plain, sizeof(plain), "%s/plain.db", base);
	snprintf(bundle, sizeof(bundle), "%s/x.bndl", base);
	printf("\n== %zu rows (members: 8 text columns, random 16-byte hex ids)\n", n);

	/* Write path: the same inserts into an untracked and a tracked table, each into a
	 * fresh replica, best of two rounds (the machine's other load varies). */
	double t_plain = 1e9, t_tracked = 1e9, t_scoped = 1e9;
	for (int round = 0; round < 2; round++) {
		make_replica(a, true);
		double t = insert_rows(adb, "plain_members", n, 42);
		t_plain = t < t_plain ? t : t_plain;
		make_replica(a, true);
		t = insert_rows(adb, "members", n, 42);
		t_tracked = t < t_tracked ? t : t_tracked;
		/* a district laptop's: its triggers refuse rows of other districts */
		make_replica(a, true);
		struct zila_store *ss = open_store(a);
		if (zila_store_set_write_scope(ss, "d-patna") != 0)
			die("write scope", a);
		zila_store_free(ss);
		t = insert_rows(adb, "members", n, 42);
		t_scoped = t < t_scoped ? t : t_scoped;
	}
	printf("write path: untracked %.2f s (%.0f rows/s), tracked %.2f s (%.0f rows/s), ratio %.2fx (goal <= 1.3x)\n",
	       t_plain, n / t_plain, t_tracked, n / t_tracked, t_tracked / t_plain);
	printf("write path on a district laptop (write scope checked): %.2f s (%.0f rows/s), ratio %.2fx (goal <= 1.3x)\n",
	       t_scoped, n / t_scoped, t_scoped / t_plain);

	struct zila_store *s = open_store(a);
	double t0 = now();
	size_t nentries = 0;
	if (zila_store_seal(s, &nentries, &err) != 0)
		die("seal", err.msg);
	double t_seal = now() - t0;
	printf("seal: %.2f s for %zu rows into %zu entries (%.0f rows/s), %.2fx the untracked insert time (goal <= 1.0x)\n",
	       t_seal, n, nentries, n / t_seal, t_seal / t_plain);
	zila_store_free(s);

	/* Size: the replica (feeds included) against the same rows in a plain database. */
	unlink(plain);
	exec(plain, "PRAGMA journal_mode = WAL");
	{
		char sql[600];
		snprintf(sql, sizeof(sql), "CREATE TABLE plain_members %s", cols_sql);
		exec(plain, sql);
	}
	insert_rows(plain, "plain_members", n, 42);
	checkpoint(plain);
	exec(adb, "DROP TABLE plain_members");
	exec(adb, "VACUUM");
	checkpoint(adb);
	off_t sz_plain = file_size(plain), sz_rep = file_size(adb);
	printf("size: plain %.1f MiB, replica %.1f MiB, ratio %.2fx (goal <= 2x)\n", sz_plain / 1048576.0,
	       sz_rep / 1048576.0, (double)sz_rep / (double)sz_plain);

	/* Apply: a bundle of every row into an empty replica. */
	s = open_store(a);
	t0 = now();
	if (bundle_create(s, bundle, NULL, NULL, &err) != 0)
		die("bundle create", err.msg);
	double t_create = now() - t0;
	zila_store_free(s);
	make_replica(b, false);
	struct zila_store *sb = open_store(b);
	struct zila_apply_stats st;
	t0 = now();
	if (bundle_apply(sb, bundle, &st, &err) != 0)
		die("bundle apply", err.msg);
	double t_apply = now() - t0;
	printf("bundle: %.1f MiB written in %.2f s; applied into an empty replica in %.2f s: %.0f rows/s vs plain "
	       "insert %.0f rows/s = %.0f%% (goal >= 50%%)\n",
	       file_size(bundle) / 1048576.0, t_create, t_apply, n / t_apply, n / t_plain,
	       100.0 * (n / t_apply) / (n / t_plain));
	uint8_t ha[32], hb[32];
	s = open_store(a);
	if (zila_store_hash(s, ha, &err) != 0 || zila_store_hash(sb, hb, &err) != 0)
		die("hash", err.msg);
	printf("hashes equal after apply: %s\n", memcmp(ha, hb, 32) == 0 ? "yes" : "NO");

	/* Incremental: 100 updates on one of two in-step replicas, repeated; the median is
	 * printed. The bulk load's WAL is checkpointed first: its write-back belongs to it. */
	checkpoint(adb);
	checkpoint(bdb);
	double best = 1e9, times[7];
	long long bytes = 0;
	for (int k = 0; k < 7; k++) {
		char sql[256];
		snprintf(sql, sizeof(sql), "UPDATE members SET village = village || '%d' WHERE rowid IN"
			 " (SELECT rowid FROM members ORDER BY rowid LIMIT 100 OFFSET %d)", k, k * 1000);
		exec(adb, sql);
		struct zila_vector v;
		t0 = now();
		if (zila_store_vector(sb, &v) != 0)
			die("vector", "b");
		if (bundle_create(s, bundle, &v, &nentries, &err) != 0)
			die("bundle create", err.msg);
		double t1 = now();
		if (bundle_apply(sb, bundle, &st, &err) != 0)
			die("bundle apply", err.msg);
		double t2 = now();
		zila_vector_release(&v);
		times[k] = t2 - t0;
		if (times[k] < best)
			best = times[k];
		bytes = (long long)file_size(bundle);
		if (k == 6)
			printf("incremental (100 updated rows, last run): seal + bundle create %.1f ms, apply %.1f ms\n",
			       (t1 - t0) * 1e3, (t2 - t1) * 1e3);
	}
	for (int i = 0; i < 7; i++)
		for (int j = i + 1; j < 7; j++)
			if (times[j] < times[i]) {
				double x = times[i];
				times[i] = times[j];
				times[j] = x;
			}
	printf("incremental: median %.1f ms, best %.1f ms over 7 runs (goal < 5 ms), bundle %lld bytes\n",
	       times[3] * 1e3, best * 1e3, bytes);
	if (zila_store_hash(s, ha, &err) != 0 || zila_store_hash(sb, hb, &err) != 0)
		die("hash", err.msg);
	printf("hashes equal after incremental: %s\n", memcmp(ha, hb, 32) == 0 ? "yes" : "NO");

	/* Sweep: every row compared with its state (what 'zila seal' and the daemon's hourly
	 * sweep cost), with nothing to find. */
	size_t nswept = 0;
	t0 = now();
	if (zila_store_sweep(s, NULL, &nswept, &err) != 0)
		die("sweep", err.msg);
	printf("sweep of %zu rows: %.1f ms, %zu found (want 0)\n", n, (now() - t0) * 1e3, nswept);
	zila_store_free(s);
	zila_store_free(sb);
}

int main(int argc, char **argv)
{
	if (sodium_init() < 0)
		return 1;
	char base[] = "/tmp/zila-bench-XXXXXX";
	if (mkdtemp(base) == NULL)
		die("mkdtemp", base);
	printf("bench_store: replica engine (sqlite %s)\n", sqlite3_libversion());
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			run((size_t)strtoull(argv[i], NULL, 10), base);
	} else if (getenv("ZILA_BENCH_QUICK")) {
		run(20000, base);
	} else {
		run(100000, base);
		run(1000000, base);
	}
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
	return system(cmd) == 0 ? 0 : 1;
}
