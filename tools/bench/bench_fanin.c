/* Fan-in: one real HQ daemon (`zila daemon`) and N laptops syncing with it at the same time
 * over encrypted loopback TCP, driven from one process by a load client (every laptop a replica
 * of its own, its own district, its own loopback source address). Prints total time, HQ's peak
 * RSS, and checks that everything converged.
 *   bench_fanin [ZILA_BINARY [LAPTOPS [ROWS_PER_LAPTOP]]]   (default build/zila, 200, 50;
 *   LAPTOPS up to 10,000: each laptop costs this process 4 descriptors, HQ one) */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "bench_side.h"
#include "zila/daemon.h"

#define PORT 17431
#define MAX_LAPTOPS 10000

static long hq_rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* CPU seconds (user + system) the process has used so far. */
static double cpu_s(pid_t pid)
{
	char path[64];
	unsigned long ut = 0, st = 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	/* after "pid (comm) ": fields 3.. ; utime and stime are fields 14 and 15 */
	if (fscanf(f, "%*d (%*[^)]) %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		ut = st = 0;
	fclose(f);
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int64_t count(const char *dbpath, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t n = -1;
	if (sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		die("open", dbpath);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* Laptop i dials HQ from its own loopback address, 127.1.x.y from 127.1.0.2 on (HQ limits
 * handshakes per source address; Linux answers for all of 127/8). */
static int dial(int i, const struct sockaddr_in *to)
{
	struct sockaddr_in from;
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	memset(&from, 0, sizeof(from));
	from.sin_family = AF_INET;
	from.sin_addr.s_addr = htonl(0x7f010000u + (uint32_t)i + 2);
	if (fd < 0 || bind(fd, (struct sockaddr *)&from, sizeof(from)) != 0 ||
	    connect(fd, (const struct sockaddr *)to, sizeof(*to)) != 0)
		die("connect", strerror(errno));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static bool not_begun(const struct side *sd)
{
	return sd->sess == NULL || zila_session_stats(sd->sess)->msgs_received == 0;
}

/* A handshake HQ closed or refused: a fresh start, dialled again after the daemon's own
 * backoff towards HQ (1 s doubling, with jitter). */
static void again_later(struct side *sd, const char *base, int i, int *pfd_fd, double *retry_at,
			struct zila_backoff *b)
{
	char dir[200];
	close(sd->fd);
	side_end(sd);
	snprintf(dir, sizeof(dir), "%s/lap%d", base, i);
	side_begin(sd, dir, -1, true);
	*pfd_fd = sd->fd = -1;
	*retry_at = now() + zila_backoff_fail(b, randombytes_random()) / 1000.0;
}

int main(int argc, char **argv)
{
	const char *zila = argc > 1 ? argv[1] : "build/zila";
	int nlap = argc > 2 ? atoi(argv[2]) : 200;
	int rows = argc > 3 ? atoi(argv[3]) : 50;
	char base[128], hq[160], dir[200], sql[512], listen_at[64];
	struct zila_error err;
	zila_error_clear(&err);
	snprintf(base, sizeof(base), "%s/zila-bench-fanin-XXXXXX", getenv("ZILA_BENCH_DIR") ? getenv("ZILA_BENCH_DIR") : "/tmp");
	signal(SIGPIPE, SIG_IGN); /* a write to a handshake HQ closed fails, and is dialled again */
	if (sodium_init() < 0 || mkdtemp(base) == NULL || nlap < 1 || nlap > MAX_LAPTOPS)
		die("setup", "arguments (1-10000 laptops) or temporary directory");
	/* Each laptop holds its replica (database, WAL, shared memory) and a socket open. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (rlim_t)nlap * 4 + 64 > rl.rlim_cur)
		die("setup", "too few file descriptors for this many laptops (ulimit -n: 4 a laptop)");
	zila_log_set_sink(NULL, NULL, ZILA_LOG_ERROR);
	snprintf(hq, sizeof(hq), "%s/hq", base);
	printf("== bench_fanin: one HQ daemon, %d laptops at once, %d rows written on each, %d on HQ per district\n", nlap,
	       rows, rows);

	/* HQ: the organisation, every district, rows in each; each laptop enrolled for its own
	 * district, with rows of its own. */
	if (zila_store_create(hq, &err) != 0)
		die("create", err.msg);
	struct zila_store *h = open_store(hq, NULL);
	if (zila_trust_org_init(h, "Bench", "pass", 4, &zila_pwcost_min, NOW_S, &err) != 0)
		die("org", err.msg);
	if (zila_store_exec_captured(h, "INSERT INTO states(id, name) VALUES ('s1', 'Bihar')", NULL, NULL, &err) != 0)
		die("insert", err.msg);
	for (int i = 0; i < nlap; i++) {
		snprintf(sql, sizeof(sql),
			 "INSERT INTO districts(id, state_id, name) VALUES ('d%d', 's1', 'District %d');"
			 " WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < %d)"
			 " INSERT INTO people(id, district_id, name) SELECT 'hq-%d-' || x, 'd%d', 'HQ person ' || x FROM n",
			 i, i, rows, i, i);
		if (zila_store_exec_captured(h, sql, NULL, NULL, &err) != 0)
			die("insert", err.msg);
	}
	if (zila_store_seal(h, NULL, &err) != 0)
		die("seal", err.msg);
	for (int i = 0; i < nlap; i++) {
		struct zila_buf file;
		char district[16];
		snprintf(dir, sizeof(dir), "%s/lap%d", base, i);
		snprintf(district, sizeof(district), "d%d", i);
		if (zila_store_create(dir, &err) != 0)
			die("create", err.msg);
		struct zila_store *l = open_store(dir, NULL);
		zila_buf_init(&file, 65536);
		if (zila_trust_issue(h, zila_store_device_pk(l), district, ZILA_ROLE_DISTRICT, district, NOW_S, 365, &file,
				     &err) != 0 ||
		    zila_trust_install_cert(l, zila_buf_view(&file), NOW_S, &err) != 0)
			die("enrol", err.msg);
		zila_buf_release(&file);
		/* The laptop knows its district's row (org-wide) only after the sync; its people
		 * rows wait, parked as orphans, until then. */
		snprintf(sql, sizeof(sql),
			 "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < %d)"
			 " INSERT INTO people(id, district_id, name) SELECT 'lap-%d-' || x, 'd%d', 'Laptop person ' || x FROM n",
			 rows, i, i);
		if (zila_store_exec_captured(l, "PRAGMA foreign_keys = OFF", NULL, NULL, &err) != 0 ||
		    zila_store_exec_captured(l, sql, NULL, NULL, &err) != 0 || zila_store_seal(l, NULL, &err) != 0)
			die("laptop rows", err.msg);
		zila_store_free(l);
	}
	zila_store_free(h);

	/* The HQ daemon, listening on loopback, beacons off. */
	/* A free port: bind to 0, read it, let it go. */
	int port = PORT;
	{
		struct sockaddr_in a;
		socklen_t alen = sizeof(a);
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		memset(&a, 0, sizeof(a));
		a.sin_family = AF_INET;
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && getsockname(fd, (struct sockaddr *)&a, &alen) == 0)
			port = ntohs(a.sin_port);
		close(fd);
	}
	snprintf(listen_at, sizeof(listen_at), "127.0.0.1:%d", port);
	char max_sessions[16];
	snprintf(max_sessions, sizeof(max_sessions), "%d", nlap + 8);
	fflush(stdout);
	pid_t d = fork();
	if (d == 0) {
		char logp[200];
		snprintf(logp, sizeof(logp), "%s/hq.log", base);
		int logfd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(logfd, 2);
		execl(zila, zila, "-d", hq, "daemon", "--listen", listen_at, "--beacon-port", "0", "--max-sessions",
		      max_sessions, (char *)NULL);
		_exit(127);
	}
	/* Wait until it listens. */
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
	usleep(200000);

	/* All laptops dial at once, each from its own loopback address (the daemon limits
	 * handshakes per source address), and sync in one poll loop. */
	struct side *sides = calloc((size_t)nlap, sizeof(*sides));
	struct pollfd *pfd = calloc((size_t)nlap, sizeof(*pfd));
	uint8_t *in = malloc(1 << 16);
	size_t *have = calloc((size_t)nlap, sizeof(*have));
	uint8_t **bufs = calloc((size_t)nlap, sizeof(*bufs));
	/* Replicas opened first: the clock starts when every laptop is ready to dial. */
	for (int i = 0; i < nlap; i++) {
		snprintf(dir, sizeof(dir), "%s/lap%d", base, i);
		side_begin(&sides[i], dir, -1, true);
		bufs[i] = malloc(ZILA_FRAME_MAX + 64);
	}
	/* HQ takes at most 32 handshakes at once and closes the oldest to make room: a laptop
	 * whose handshake is closed dials again later, with the daemon's backoff. */
	double *retry_at = calloc((size_t)nlap, sizeof(*retry_at));
	struct zila_backoff *backoff = calloc((size_t)nlap, sizeof(*backoff));
	for (int i = 0; i < nlap; i++)
		zila_backoff_init(&backoff[i], 1000, 5 * 60 * 1000);
	int redials = 0;
	double hq_cpu0 = cpu_s(d);
	double t0 = now();
	for (int i = 0; i < nlap; i++)
		pfd[i].fd = sides[i].fd = dial(i, &to);
	int done = 0;
	char cmd[240];
	while (done < nlap) {
		double t = now(), next = t + 60;
		for (int i = 0; i < nlap; i++) {
			if (retry_at[i] != 0 && retry_at[i] <= t) {
				retry_at[i] = 0;
				pfd[i].fd = sides[i].fd = dial(i, &to);
			}
			if (retry_at[i] != 0 && retry_at[i] < next)
				next = retry_at[i];
			pfd[i].events = sides[i].closed ? 0 : POLLIN;
			if (sides[i].out.len > 0)
				pfd[i].events |= POLLOUT;
		}
		int np = poll(pfd, (nfds_t)nlap, (int)((next - t) * 1e3) + 1);
		if (np < 0 || (np == 0 && next >= t + 60))
			die("poll", "no progress for 60 s");
		for (int i = 0; i < nlap; i++) {
			struct side *sd = &sides[i];
			if ((pfd[i].revents & POLLOUT) && sd->out.len > 0) {
				ssize_t n = write(sd->fd, sd->out.p, sd->out.len);
				if (n > 0) {
					memmove(sd->out.p, sd->out.p + n, sd->out.len - (size_t)n);
					sd->out.len -= (size_t)n;
					sd->tx += (uint64_t)n;
				}
			}
			if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) {
				ssize_t n = read(sd->fd, bufs[i] + have[i], ZILA_FRAME_MAX + 64 - have[i]);
				size_t used = 0;
				/* Closed, or refused, before HQ's session began (HQ may close a handshake
				 * this side took for done): dial again. */
				if ((n <= 0 || sd->closed) && not_begun(sd)) {
					again_later(sd, base, i, &pfd[i].fd, &retry_at[i], &backoff[i]);
					have[i] = 0;
					redials++;
					continue;
				}
				if (n <= 0) {
					if (!sd->closed) {
						snprintf(cmd, sizeof(cmd), "tail -5 '%s/hq.log' >&2", base);
						(void)!system(cmd);
						die("sync", "HQ closed a connection before the session ended");
					}
					continue;
				}
				have[i] += (size_t)n;
				side_feed(sd, bufs[i], have[i], &used);
				memmove(bufs[i], bufs[i] + used, have[i] - used);
				have[i] -= used;
				if (sd->closed && not_begun(sd)) {
					again_later(sd, base, i, &pfd[i].fd, &retry_at[i], &backoff[i]);
					have[i] = 0;
					redials++;
					continue;
				}
				if (sd->closed && zila_session_done(sd->sess))
					done++;
			}
		}
	}
	double total = now() - t0;
	uint64_t sent = 0, received = 0;
	for (int i = 0; i < nlap; i++) {
		sent += zila_session_stats(sides[i].sess)->entries_sent;
		received += zila_session_stats(sides[i].sess)->entries_received;
		close(sides[i].fd);
		side_end(&sides[i]);
		free(bufs[i]);
	}
	long rss = hq_rss_kb(d);
	double hq_cpu = cpu_s(d) - hq_cpu0;
	kill(d, SIGTERM);
	int status;
	waitpid(d, &status, 0);

	/* Converged: HQ holds every laptop's rows; each laptop its district's HQ rows. */
	char dbp[240];
	snprintf(dbp, sizeof(dbp), "%s/zila.db", hq);
	int64_t at_hq = count(dbp, "SELECT count(*) FROM people WHERE id LIKE 'lap-%'");
	int64_t missing = 0;
	for (int i = 0; i < nlap; i++) {
		snprintf(dbp, sizeof(dbp), "%s/lap%d/zila.db", base, i);
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM people WHERE district_id = 'd%d'", i);
		missing += 2 * rows - count(dbp, sql);
	}
	printf("fan-in:      %d sessions in %.2f s (%.1f ms each on average, all at once); entries up %llu, down %llu;"
	       " %d handshakes closed by HQ's limit and dialled again\n",
	       nlap, total, total * 1e3 / nlap, (unsigned long long)sent, (unsigned long long)received, redials);
	printf("             HQ's CPU %.2f s (%.2f ms a session)\n", hq_cpu, hq_cpu * 1e3 / nlap);
	printf("             HQ peak RSS %.1f MiB; HQ holds %lld of %d laptop rows; laptops miss %lld rows; daemon exit %d\n",
	       (double)rss / 1024, (long long)at_hq, nlap * rows, (long long)missing,
	       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	if (system(cmd) != 0)
		die("cleanup", base);
	free(sides);
	free(pfd);
	free(in);
	free(have);
	free(bufs);
	free(retry_at);
	free(backoff);
	return at_hq == nlap * rows && missing == 0 ? 0 : 1;
}
