/* Sync over encrypted loopback TCP, each side in a process of its own (so each side's peak
 * RSS is its own): clone of a district into a new laptop, incremental syncs of 100 rows,
 * the no-op sync, against plain bulk-inserting the same rows into SQLite.
 *   bench_sync [ROWS]   (default 1,000,000); ZILA_BENCH_RUNS=N incremental runs (20) */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_side.h"

#define INCREMENTAL_RUNS_MAX 1000 /* ZILA_BENCH_RUNS, for profiling; 20 by default */

/* --- one side of a sync, blocking on a socket -------------------------------------- */

struct result {
	double handshake_s, session_s, total_s;
	uint64_t tx_after, rx_after, entries_received;
	long rss_kb;
	int in_step;
};

static void run_side(const char *dir, int fd, bool initiator, struct result *res)
{
	static struct side sd;
	static uint8_t in[1 << 16];
	size_t have = 0, used;
	memset(res, 0, sizeof(*res));
	side_begin(&sd, dir, fd, initiator);
	side_flush(&sd);
	while (!sd.closed) {
		ssize_t n = read(fd, in + have, sizeof(in) - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
		side_feed(&sd, in, have, &used);
		memmove(in, in + used, have - used);
		have -= used;
		side_flush(&sd);
	}
	if (sd.sess == NULL || !zila_session_done(sd.sess))
		die("sync", "the session did not finish");
	const struct zila_session_stats *st = zila_session_stats(sd.sess);
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	res->handshake_s = sd.t_hs - sd.t_start;
	res->session_s = sd.t_done - sd.t_hs;
	res->total_s = sd.t_done - sd.t_start;
	res->tx_after = sd.tx - sd.tx_hs;
	res->rx_after = sd.rx - sd.rx_hs;
	res->entries_received = st->entries_received;
	res->rss_kb = ru.ru_maxrss;
	res->in_step = st->in_step;
	side_end(&sd);
}

static void sync_pair(const char *hq_dir, const char *lap_dir, struct result *lap, struct result *hq)
{
	int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1, pa[2], pb[2];
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(ls, 1) != 0 ||
	    getsockname(ls, (struct sockaddr *)&a, &alen) != 0 || pipe(pa) != 0 || pipe(pb) != 0)
		die("socket", strerror(errno));
	fflush(stdout);
	pid_t h = fork();
	if (h == 0) {
		int fd = accept(ls, NULL, NULL);
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct result r;
		run_side(hq_dir, fd, false, &r);
		if (write(pa[1], &r, sizeof(r)) != (ssize_t)sizeof(r))
			_exit(1);
		_exit(0);
	}
	pid_t l = fork();
	if (l == 0) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
			die("connect", strerror(errno));
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct result r;
		run_side(lap_dir, fd, true, &r);
		if (write(pb[1], &r, sizeof(r)) != (ssize_t)sizeof(r))
			_exit(1);
		_exit(0);
	}
	close(ls);
	if (read(pa[0], hq, sizeof(*hq)) != (ssize_t)sizeof(*hq) || read(pb[0], lap, sizeof(*lap)) != (ssize_t)sizeof(*lap))
		die("sync", "a side failed");
	int st1, st2;
	waitpid(h, &st1, 0);
	waitpid(l, &st2, 0);
	close(pa[0]);
	close(pa[1]);
	close(pb[0]);
	close(pb[1]);
}

static int dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 1000000;
	char base[128], hq[160], lap[160], plain[160], path[200];
	/* ZILA_BENCH_DIR picks the filesystem (fsync costs differ widely); default /tmp. */
	snprintf(base, sizeof(base), "%s/zila-bench-sync-XXXXXX", getenv("ZILA_BENCH_DIR") ? getenv("ZILA_BENCH_DIR") : "/tmp");
	struct zila_error err;
	struct zila_trust_ctx tc;
	zila_error_clear(&err);
	if (sodium_init() < 0 || mkdtemp(base) == NULL)
		die("setup", "tmp");
	zila_log_set_sink(NULL, NULL, ZILA_LOG_ERROR);
	snprintf(hq, sizeof(hq), "%s/hq", base);
	snprintf(lap, sizeof(lap), "%s/lap", base);
	snprintf(plain, sizeof(plain), "%s/plain.db", base);
	printf("== bench_sync: %zu people rows in one district, encrypted loopback TCP, one process per side\n", n);

	/* Plain SQLite: the same schema without zila, the same rows in one transaction. */
	if (zila_store_create(hq, &err) != 0 || zila_store_create(lap, &err) != 0)
		die("create", err.msg);
	sqlite3 *db;
	if (sqlite3_open(plain, &db) != SQLITE_OK)
		die("open", plain);
	db_exec(db, "PRAGMA journal_mode = WAL");
	db_exec(db, "CREATE TABLE people(id TEXT PRIMARY KEY, district_id TEXT NOT NULL, name TEXT NOT NULL,"
		    " name_local TEXT, phone TEXT, gender TEXT, birth_year INTEGER, address TEXT)");
	double t_plain = insert_people(db, 0, n, "INSERT");
	sqlite3_close(db);

	/* HQ with the district's rows, written by an application, sealed; a laptop enrolled. */
	struct zila_store *h = open_store(hq, NULL), *l = open_store(lap, NULL);
	struct zila_buf file;
	zila_buf_init(&file, 65536);
	if (zila_trust_org_init(h, "Bench", "pass", 4, &zila_pwcost_min, NOW_S, &err) != 0 ||
	    zila_trust_issue(h, zila_store_device_pk(l), "laptop", ZILA_ROLE_DISTRICT, "d1", NOW_S, 365, &file, &err) != 0 ||
	    zila_trust_install_cert(l, zila_buf_view(&file), NOW_S, &err) != 0)
		die("enrol", err.msg);
	zila_buf_release(&file);
	zila_store_free(l);
	snprintf(path, sizeof(path), "%s/zila.db", hq);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		die("open", path);
	db_exec(db, "PRAGMA foreign_keys = ON");
	db_exec(db, "INSERT INTO states(id, name) VALUES ('s1', 'Bihar')");
	db_exec(db, "INSERT INTO districts(id, state_id, name) VALUES ('d1', 's1', 'Patna'), ('d2', 's1', 'Gaya')");
	(void)insert_people(db, 0, n, "INSERT");
	if (zila_store_seal(h, NULL, &err) != 0)
		die("seal", err.msg);
	zila_store_free(h);
	(void)tc;
	/* Each side's peak RSS is its own: what this process held for writing and sealing
	 * (page caches, freed but kept by malloc) is given back before the sides fork. */
	sqlite3_close(db);
	malloc_trim(0);

	struct result rl, rh;
	sync_pair(hq, lap, &rl, &rh);
	printf("clone:       %.2f s for %zu rows (%llu entries), %.0f rows/s; plain insert %.2f s; ratio %.2fx (goal <= 2.5x)\n",
	       rl.total_s, n, (unsigned long long)rl.entries_received, (double)n / rl.total_s, t_plain,
	       rl.total_s / t_plain);
	printf("             peak RSS: laptop %.1f MiB, HQ %.1f MiB (goal <= 64 MiB); %.1f MiB received\n",
	       (double)rl.rss_kb / 1024, (double)rh.rss_kb / 1024, (double)rl.rx_after / 1048576);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		die("open", path);

	static double hs[INCREMENTAL_RUNS_MAX], inc[INCREMENTAL_RUNS_MAX], seal[INCREMENTAL_RUNS_MAX];
	int runs = getenv("ZILA_BENCH_RUNS") ? atoi(getenv("ZILA_BENCH_RUNS")) : 20;
	if (runs < 1 || runs > INCREMENTAL_RUNS_MAX || (size_t)runs * 100 > n)
		die("ZILA_BENCH_RUNS", "must be 1 to 1000, and at most ROWS / 100");
	for (int k = 0; k < runs; k++) {
		if (sqlite3_exec(db, "SELECT 1", NULL, NULL, NULL) != SQLITE_OK)
			die("db", "closed");
		char sql[200];
		snprintf(sql, sizeof(sql),
			 "UPDATE people SET phone = printf('7%%02d%%08d', %d, rowid) WHERE rowid IN"
			 " (SELECT rowid FROM people LIMIT 100 OFFSET %d)",
			 k, k * 100);
		db_exec(db, sql);
		/* The daemon seals a local change when it notices it, before any sync. */
		double t0 = now();
		struct zila_store *hs_ = open_store(hq, NULL);
		if (zila_store_seal(hs_, NULL, &err) != 0)
			die("seal", err.msg);
		zila_store_free(hs_);
		seal[k] = now() - t0;
		sync_pair(hq, lap, &rl, &rh);
		if (rl.entries_received == 0)
			die("incremental", "nothing arrived");
		hs[k] = rl.handshake_s;
		inc[k] = rl.session_s;
	}
	qsort(hs, runs, sizeof(double), dcmp);
	qsort(inc, runs, sizeof(double), dcmp);
	qsort(seal, runs, sizeof(double), dcmp);
	/* the least of the runs is the figure the machine's other load moves least */
	printf("incremental: 100 changed rows: %.2f ms median after the handshake (goal <= 5 ms), min %.2f ms, max %.2f ms;"
	       " %d runs\n",
	       inc[runs / 2] * 1e3, inc[0] * 1e3, inc[runs - 1] * 1e3, runs);
	printf("             (sealing them on HQ beforehand, store open included: %.2f ms median)\n",
	       seal[runs / 2] * 1e3);
	printf("handshake:   %.2f ms median (goal <= 2 ms)\n", hs[runs / 2] * 1e3);

	sync_pair(hq, lap, &rl, &rh);
	printf("no-op sync:  in step %s; after the handshake laptop sent %llu B, received %llu B;"
	       " 1 round trip (goal <= 512 B)\n",
	       rl.in_step ? "yes" : "NO", (unsigned long long)rl.tx_after, (unsigned long long)rl.rx_after);
	sqlite3_close(db);

	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	if (system(cmd) != 0)
		die("cleanup", base);
	return 0;
}
