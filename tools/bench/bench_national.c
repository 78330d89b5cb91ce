/* A national HQ replica (zila_gen: many districts, their members and booths): how long it
 * takes to make and how much disk, a district's clone from it against the same district's
 * clone from an HQ holding only that district (bytes and seconds, over encrypted loopback
 * TCP, alternately), and `zila report` at that size (seconds, peak RSS).
 *   bench_national [DISTRICTS [PEOPLE [BOOTHS [ROUNDS]]]]   (default 50 2000 200 3; `make
 *   bench-national` runs 700 14286 1430 3: ~10M members, ~1M booths);
 *   ZILA_GEN (build/tools/zila_gen), ZILA (build/zila), ZILA_BENCH_DIR (/tmp),
 *   ZILA_BENCH_KEEP=1 keeps the replicas and says where */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_pair.h"

/* Rows of every user table, and a digest of their counts per table (two laptops that hold
 * the same district must agree on both). */
static int64_t user_rows(const char *dir, uint64_t *digest)
{
	sqlite3 *db = open_db(dir);
	sqlite3_stmt *st;
	int64_t total = 0;
	*digest = 1469598103934665603ULL;
	if (sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE"
				   " 'zila\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
			       -1, &st, NULL) != SQLITE_OK)
		die("rows", sqlite3_errmsg(db));
	while (sqlite3_step(st) == SQLITE_ROW) {
		char sql[200];
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM \"%s\"", (const char *)sqlite3_column_text(st, 0));
		int64_t n = query_int(db, sql);
		total += n;
		*digest = (*digest ^ (uint64_t)n) * 1099511628211ULL;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return total;
}

static double file_mib(const char *dir)
{
	char path[300];
	struct stat sb;
	double total = 0;
	static const char *const names[] = { "zila.db", "zila.db-wal" };
	for (size_t i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (stat(path, &sb) == 0)
			total += (double)sb.st_size;
	}
	return total / (1 << 20);
}

static void run(const char *cmd)
{
	if (system(cmd) != 0)
		die("command failed", cmd);
}

/* Makes an HQ replica with the generated data (all districts, or district k alone), sealed;
 * returns the seconds of generation and seal. */
static void make_hq(const char *dir, const char *gen, long nd, long people, long booths, long k, double *gen_s,
		    double *seal_s)
{
	char cmd[800], only[32] = "";
	struct zila_error err;
	zila_error_clear(&err);
	if (zila_store_create(dir, &err) != 0)
		die("create", err.msg);
	if (k > 0)
		snprintf(only, sizeof(only), "--only-district %ld", k);
	/* the long form says how long each of its steps took (make bench's stays quiet) */
	snprintf(cmd, sizeof(cmd), "'%s' --districts %ld --people-per-district %ld --booths-per-district %ld %s %s --db '%s/zila.db'",
		 gen, nd, people, booths, only, nd * people >= 1000000 ? "--progress" : "", dir);
	double t0 = now();
	if (system(cmd) != 0)
		die("zila_gen", "failed (build it with make build/tools/zila_gen, or set ZILA_GEN)");
	*gen_s = now() - t0;
	struct zila_store *h = open_store(dir, NULL);
	if (zila_trust_org_init(h, "Bench", "pass", 4, &zila_pwcost_min, NOW_S, &err) != 0)
		die("org", err.msg);
	t0 = now();
	if (zila_store_seal(h, NULL, &err) != 0)
		die("seal", err.msg);
	*seal_s = now() - t0;
	zila_store_free(h);
	malloc_trim(0);
}

/* A new laptop of district code dcode, enrolled by the HQ at hq_dir. */
static void make_laptop(const char *hq_dir, const char *lap, const char *dcode)
{
	struct zila_error err;
	char did[64], sql[128];
	zila_error_clear(&err);
	if (zila_store_create(lap, &err) != 0)
		die("create", err.msg);
	sqlite3 *db = open_db(hq_dir);
	sqlite3_stmt *st;
	snprintf(sql, sizeof(sql), "SELECT id FROM districts WHERE code = '%s'", dcode);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW)
		die("district", dcode);
	snprintf(did, sizeof(did), "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
	struct zila_store *h = open_store(hq_dir, NULL), *l = open_store(lap, NULL);
	struct zila_buf file;
	zila_buf_init(&file, 65536);
	if (zila_trust_issue(h, zila_store_device_pk(l), "laptop", ZILA_ROLE_DISTRICT, did, NOW_S, 365, &file, &err) != 0 ||
	    zila_trust_install_cert(l, zila_buf_view(&file), NOW_S, &err) != 0)
		die("enrol", err.msg);
	zila_buf_release(&file);
	zila_store_free(h);
	zila_store_free(l);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

#define MAXROUNDS 9

int main(int argc, char **argv)
{
	long nd = argc > 1 ? strtol(argv[1], NULL, 10) : 50;
	long people = argc > 2 ? strtol(argv[2], NULL, 10) : 2000;
	long booths = argc > 3 ? strtol(argv[3], NULL, 10) : 200;
	long rounds = argc > 4 ? strtol(argv[4], NULL, 10) : 3;
	const char *gen = getenv("ZILA_GEN") ? getenv("ZILA_GEN") : "build/tools/zila_gen";
	const char *zila = getenv("ZILA") ? getenv("ZILA") : "build/zila";
	char base[128], nat[160], one[160], lt_nat[160], lt_one[160], lap[160], cmd[800], dcode[32];
	snprintf(base, sizeof(base), "%s/zila-bench-national-XXXXXX",
		 getenv("ZILA_BENCH_DIR") ? getenv("ZILA_BENCH_DIR") : "/tmp");
	if (nd < 2 || nd > 10000 || people < 100 || booths < 1 || rounds < 1 || rounds > MAXROUNDS || sodium_init() < 0 ||
	    mkdtemp(base) == NULL)
		die("usage", "bench_national [DISTRICTS>=2 [PEOPLE>=100 [BOOTHS>=1 [ROUNDS 1-9]]]]");
	zila_log_set_sink(NULL, NULL, ZILA_LOG_ERROR);
	snprintf(nat, sizeof(nat), "%s/hq-national", base);
	snprintf(one, sizeof(one), "%s/hq-one", base);
	snprintf(lt_nat, sizeof(lt_nat), "%s/lap-national.tmpl", base);
	snprintf(lt_one, sizeof(lt_one), "%s/lap-one.tmpl", base);
	snprintf(lap, sizeof(lap), "%s/lap", base);
	long k = nd / 2 + 1; /* a district from the middle of the national replica */
	snprintf(dcode, sizeof(dcode), "D%02ld", k);

	printf("== bench_national: %ld districts x %ld people, ~%ld booths each; district %s cloned from the national"
	       " HQ and from an HQ holding only it, %ld rounds alternately\n",
	       nd, people, booths, dcode, rounds);
	double g_nat, s_nat, g_one, s_one;
	make_hq(nat, gen, nd, people, booths, 0, &g_nat, &s_nat);
	uint64_t dg;
	sqlite3 *db = open_db(nat);
	int64_t members = query_int(db, "SELECT count(*) FROM people");
	int64_t nbooths = query_int(db, "SELECT count(*) FROM org_units WHERE level = 'booth'");
	int64_t nentries = query_int(db, "SELECT count(*) FROM zila_entries");
	db_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
	sqlite3_close(db);
	int64_t nat_rows = user_rows(nat, &dg);
	printf("national HQ: %lld rows (%lld members, %lld booths), %lld entries; generated in %.1f s, sealed in %.1f s;"
	       " %.0f MiB on disk\n",
	       (long long)nat_rows, (long long)members, (long long)nbooths, (long long)nentries, g_nat, s_nat,
	       file_mib(nat));
	make_hq(one, gen, nd, people, booths, k, &g_one, &s_one);
	int64_t one_rows = user_rows(one, &dg);
	printf("one-district HQ: %lld rows; generated in %.1f s, sealed in %.1f s; %.0f MiB on disk\n",
	       (long long)one_rows, g_one, s_one, file_mib(one));
	make_laptop(nat, lt_nat, dcode);
	make_laptop(one, lt_one, dcode);

	double sec[2][MAXROUNDS], hq_rss[2] = { 0, 0 };
	uint64_t bytes[2] = { 0, 0 }, drows[2] = { 0, 0 }, digests[2] = { 0, 0 };
	for (long r = 0; r < rounds; r++) {
		for (int w = 0; w < 2; w++) {
			struct result rl, rh;
			snprintf(cmd, sizeof(cmd), "rm -rf '%s' && cp -a '%s' '%s'", lap, w ? lt_one : lt_nat, lap);
			run(cmd);
			sync_pair(w ? one : nat, lap, &rl, &rh);
			sec[w][r] = rl.total_s;
			bytes[w] = rl.tx + rl.rx;
			if ((double)rh.maxrss_kib / 1024 > hq_rss[w])
				hq_rss[w] = (double)rh.maxrss_kib / 1024;
			drows[w] = (uint64_t)user_rows(lap, &digests[w]);
		}
	}
	if (drows[0] != drows[1] || digests[0] != digests[1] || drows[0] == 0)
		die("clone", "the two laptops do not hold the same rows");
	qsort(sec[0], (size_t)rounds, sizeof(double), cmp_double);
	qsort(sec[1], (size_t)rounds, sizeof(double), cmp_double);
	double m0 = sec[0][rounds / 2], m1 = sec[1][rounds / 2];
	printf("district clone, from the national HQ: %llu rows, %llu B on the wire, %.3f s median (%.3f-%.3f),"
	       " HQ peak RSS %.1f MiB\n",
	       (unsigned long long)drows[0], (unsigned long long)bytes[0], m0, sec[0][0], sec[0][rounds - 1], hq_rss[0]);
	printf("district clone, from the one-district HQ: %llu rows, %llu B on the wire, %.3f s median (%.3f-%.3f),"
	       " HQ peak RSS %.1f MiB\n",
	       (unsigned long long)drows[1], (unsigned long long)bytes[1], m1, sec[1][0], sec[1][rounds - 1], hq_rss[1]);
	printf("national/one-district: seconds %.2fx, bytes %.2fx (goal <= 1.2x)\n", m0 / m1,
	       (double)bytes[0] / (double)bytes[1]);

	/* zila report at national size: the CLI's own process, seconds and peak RSS. */
	for (int i = 0; i < 2; i++) {
		double t0 = now();
		pid_t p = fork();
		if (p == 0) {
			int fd = open("/dev/null", O_WRONLY);
			dup2(fd, 1);
			execl(zila, zila, "-d", nat, "report", (char *)NULL);
			_exit(127);
		}
		int st;
		struct rusage ru;
		if (p < 0 || wait4(p, &st, 0, &ru) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			die("zila report", "failed (build it with make build/zila, or set ZILA)");
		printf("zila report at national size (%s): %.2f s, peak RSS %.1f MiB\n", i ? "again" : "first",
		       now() - t0, (double)ru.ru_maxrss / 1024);
	}

	if (getenv("ZILA_BENCH_KEEP") != NULL) {
		printf("(replicas kept in %s)\n", base);
		return 0;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	run(cmd);
	return 0;
}
