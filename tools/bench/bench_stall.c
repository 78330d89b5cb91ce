/* Does HQ's loop stall while it applies a large window? One real HQ daemon (`zila daemon`);
 * laptop A sends it ROWS new rows (HQ applies them), then laptop B clones them from it (HQ
 * sends), while a third laptop, the prober, syncs with HQ again and again (a handshake and a
 * no-op session each, from a loopback address of its own each time, so HQ's per-address
 * handshake rate does not refuse it). Prints the prober's handshake latency (connect to
 * channel established) and no-op session time, p50/p99/max, during each transfer and idle.
 *   bench_stall [ZILA_BINARY [ROWS]]   (default build/zila, 200,000; `make bench-stall`:
 *   1,000,000) */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "bench_side.h"

#define PROBE_GAP_MS 20
#define PROBES_MAX 100000

static int dial(uint32_t from_ip, const struct sockaddr_in *to)
{
	struct sockaddr_in from;
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	memset(&from, 0, sizeof(from));
	from.sin_family = AF_INET;
	from.sin_addr.s_addr = htonl(from_ip);
	if (fd < 0 || bind(fd, (struct sockaddr *)&from, sizeof(from)) != 0 ||
	    connect(fd, (const struct sockaddr *)to, sizeof(*to)) != 0)
		die("connect", strerror(errno));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct timeval tv = { 60, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* One whole session with HQ from dir over a new connection; *hs_s: connect to established. */
static double sync_once(const char *dir, uint32_t from_ip, const struct sockaddr_in *to, double *hs_s)
{
	static struct side sd;
	static uint8_t in[1 << 16];
	size_t have = 0, used;
	side_begin(&sd, dir, -1, true);
	double t0 = now();
	sd.fd = dial(from_ip, to);
	side_flush(&sd);
	while (!sd.closed) {
		ssize_t n = read(sd.fd, in + have, sizeof(in) - have);
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
		die("sync", "a session did not finish");
	*hs_s = sd.t_hs - t0;
	double total = sd.t_done - t0;
	close(sd.fd);
	side_end(&sd);
	return total;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void print_latency(const char *what, double *hs, double *ses, size_t n)
{
	if (n == 0) {
		printf("%-28s no probe finished\n", what);
		return;
	}
	qsort(hs, n, sizeof(double), cmp_double);
	qsort(ses, n, sizeof(double), cmp_double);
	size_t p99 = (n * 99) / 100;
	if (p99 >= n)
		p99 = n - 1;
	printf("%-28s %4zu probes: handshake p50 %.1f ms, p99 %.1f ms, max %.1f ms; no-op session p50 %.1f ms,"
	       " p99 %.1f ms, max %.1f ms\n",
	       what, n, hs[n / 2] * 1e3, hs[p99] * 1e3, hs[n - 1] * 1e3, ses[n / 2] * 1e3, ses[p99] * 1e3,
	       ses[n - 1] * 1e3);
}

static struct zila_store *laptop(struct zila_store *h, const char *dir, const char *district)
{
	struct zila_error err;
	struct zila_buf file;
	zila_error_clear(&err);
	if (zila_store_create(dir, &err) != 0)
		die("create", err.msg);
	struct zila_store *l = open_store(dir, NULL);
	zila_buf_init(&file, 65536);
	if (zila_trust_issue(h, zila_store_device_pk(l), district, ZILA_ROLE_DISTRICT, district, NOW_S, 365, &file,
			     &err) != 0 ||
	    zila_trust_install_cert(l, zila_buf_view(&file), NOW_S, &err) != 0)
		die("enrol", err.msg);
	zila_buf_release(&file);
	return l;
}

/* Probes HQ until the child pid ends (or, with pid 0, for secs seconds). */
static size_t probe(const char *dir, const struct sockaddr_in *to, pid_t pid, double secs, double *hs, double *ses,
		    double *child_s)
{
	static uint32_t next_ip = 0;
	size_t n = 0;
	double t0 = now();
	for (;;) {
		int st;
		if (pid != 0 && waitpid(pid, &st, WNOHANG) == pid) {
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
				die("transfer", "the laptop's session failed");
			*child_s = now() - t0;
			break;
		}
		if (pid == 0 && now() - t0 >= secs)
			break;
		if (n < PROBES_MAX) {
			ses[n] = sync_once(dir, 0x7f020000u + 2 + (next_ip++ % 4000), to, &hs[n]);
			n++;
		}
		usleep(PROBE_GAP_MS * 1000);
	}
	return n;
}

int main(int argc, char **argv)
{
	const char *zila = argc > 1 ? argv[1] : "build/zila";
	long rows = argc > 2 ? strtol(argv[2], NULL, 10) : 200000;
	char base[128], hq[160], la[160], lb[160], lp[160], sql[512], listen_at[64];
	struct zila_error err;
	zila_error_clear(&err);
	snprintf(base, sizeof(base), "%s/zila-bench-stall-XXXXXX", getenv("ZILA_BENCH_DIR") ? getenv("ZILA_BENCH_DIR") : "/tmp");
	signal(SIGPIPE, SIG_IGN);
	if (sodium_init() < 0 || mkdtemp(base) == NULL || rows < 1000 || rows > 100000000)
		die("setup", "arguments (1,000 to 100,000,000 rows) or temporary directory");
	zila_log_set_sink(NULL, NULL, ZILA_LOG_ERROR);
	snprintf(hq, sizeof(hq), "%s/hq", base);
	snprintf(la, sizeof(la), "%s/a", base);
	snprintf(lb, sizeof(lb), "%s/b", base);
	snprintf(lp, sizeof(lp), "%s/prober", base);
	printf("== bench_stall: HQ's loop while it applies, then sends, %ld rows; a prober syncs with HQ every %d ms\n",
	       rows, PROBE_GAP_MS);

	if (zila_store_create(hq, &err) != 0)
		die("create", err.msg);
	struct zila_store *h = open_store(hq, NULL);
	if (zila_trust_org_init(h, "Bench", "pass", 4, &zila_pwcost_min, NOW_S, &err) != 0 ||
	    zila_store_exec_captured(h,
				     "INSERT INTO states(id, name) VALUES ('s1', 'Bihar');"
				     " INSERT INTO districts(id, state_id, name) VALUES ('d1', 's1', 'One'), ('d2', 's1', 'Two')",
				     NULL, NULL, &err) != 0 ||
	    zila_store_seal(h, NULL, &err) != 0)
		die("hq", err.msg);
	struct zila_store *a = laptop(h, la, "d1"), *b = laptop(h, lb, "d1"), *p = laptop(h, lp, "d2");
	snprintf(sql, sizeof(sql),
		 "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < %ld)"
		 " INSERT INTO people(id, district_id, name, phone) SELECT printf('%%032x', x * 2654435761 %% 4294967291)"
		 " || x, 'd1', 'Person ' || x, printf('9%%09d', x) FROM n",
		 rows);
	if (zila_store_exec_captured(a, "PRAGMA foreign_keys = OFF", NULL, NULL, &err) != 0 ||
	    zila_store_exec_captured(a, sql, NULL, NULL, &err) != 0 || zila_store_seal(a, NULL, &err) != 0)
		die("laptop rows", err.msg);
	zila_store_free(a);
	zila_store_free(b);
	zila_store_free(p);
	zila_store_free(h);

	int port = 0;
	{
		struct sockaddr_in sa;
		socklen_t alen = sizeof(sa);
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && getsockname(fd, (struct sockaddr *)&sa, &alen) == 0)
			port = ntohs(sa.sin_port);
		close(fd);
	}
	snprintf(listen_at, sizeof(listen_at), "127.0.0.1:%d", port);
	fflush(stdout);
	pid_t d = fork();
	if (d == 0) {
		char logp[200];
		snprintf(logp, sizeof(logp), "%s/hq.log", base);
		int logfd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(logfd, 2);
		execl(zila, zila, "-d", hq, "daemon", "--listen", listen_at, "--beacon-port", "0", (char *)NULL);
		_exit(127);
	}
	struct sockaddr_in to;
	memset(&to, 0, sizeof(to));
	to.sin_family = AF_INET;
	to.sin_port = htons((uint16_t)port);
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (int k = 0;; k++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		int ok = connect(fd, (struct sockaddr *)&to, sizeof(to)) == 0;
		close(fd);
		if (ok)
			break;
		if (k > 100)
			die("daemon", "did not start listening");
		usleep(50000);
	}
	usleep(300000);

	double *hs = calloc(PROBES_MAX, sizeof(double)), *ses = calloc(PROBES_MAX, sizeof(double)), t_child = 0;
	size_t n = probe(lp, &to, 0, 2.0, hs, ses, &t_child);
	print_latency("idle HQ:", hs, ses, n);
	for (int phase = 0; phase < 2; phase++) {
		fflush(stdout);
		pid_t c = fork();
		if (c == 0) {
			double hs1;
			sync_once(phase == 0 ? la : lb, 0x7f030002u + (uint32_t)phase, &to, &hs1);
			_exit(0);
		}
		n = probe(lp, &to, c, 0, hs, ses, &t_child);
		char what[80];
		snprintf(what, sizeof(what), phase == 0 ? "HQ applies %ld rows:" : "HQ sends %ld rows:", rows);
		print_latency(what, hs, ses, n);
		printf("%-28s the laptop's session took %.2f s\n", "", t_child);
	}
	kill(d, SIGTERM);
	int status;
	waitpid(d, &status, 0);
	sqlite3 *db;
	char path[200];
	snprintf(path, sizeof(path), "%s/zila.db", lb);
	int64_t got = -1;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(db, "SELECT count(*) FROM people", -1, &st, NULL) == SQLITE_OK &&
		    sqlite3_step(st) == SQLITE_ROW)
			got = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	if (got != rows)
		die("converged", "laptop B does not hold every row");
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	if (getenv("ZILA_BENCH_KEEP") == NULL && system(cmd) != 0)
		die("cleanup", base);
	free(hs);
	free(ses);
	return 0;
}
