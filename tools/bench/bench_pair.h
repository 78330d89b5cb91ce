/* One session between two processes over loopback TCP, each side measuring what it sent,
 * received and held (bench_bytes, bench_national, bench_history). Static functions: each benchmark is one
 * program. */
#ifndef ZILA_BENCH_PAIR_H
#define ZILA_BENCH_PAIR_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "bench_side.h"

struct result {
	uint64_t tx, rx, entries_received;
	uint64_t ckpts_applied;      /* checkpoints merged (#20) */
	uint64_t tx_hs, rx_hs;       /* of which the handshake */
	uint64_t msg_tx, msg_rx;     /* session messages, before the channel's framing */
	double total_s;
	long maxrss_kib;             /* the side's process's peak RSS */
};

static inline void run_side(const char *dir, int fd, bool initiator, struct result *res)
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
	res->tx = sd.tx;
	res->rx = sd.rx;
	res->tx_hs = sd.tx_hs;
	res->rx_hs = sd.rx_hs;
	res->msg_tx = zila_session_stats(sd.sess)->bytes_sent;
	res->msg_rx = zila_session_stats(sd.sess)->bytes_received;
	res->entries_received = zila_session_stats(sd.sess)->entries_received;
	res->ckpts_applied = zila_session_stats(sd.sess)->ckpts_applied;
	res->total_s = sd.t_done - sd.t_start;
	side_end(&sd);
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	res->maxrss_kib = ru.ru_maxrss;
}

/* One session between HQ (responder) and a laptop (initiator), each side a process. */
static inline void sync_pair(const char *hq_dir, const char *lap_dir, struct result *lap, struct result *hq)
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
		_exit(write(pa[1], &r, sizeof(r)) == (ssize_t)sizeof(r) ? 0 : 1);
	}
	pid_t l = fork();
	if (l == 0) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
			die("connect", strerror(errno));
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct result r;
		run_side(lap_dir, fd, true, &r);
		_exit(write(pb[1], &r, sizeof(r)) == (ssize_t)sizeof(r) ? 0 : 1);
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

static inline sqlite3 *open_db(const char *dir)
{
	char path[300];
	sqlite3 *db;
	snprintf(path, sizeof(path), "%s/zila.db", dir);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		die("open", path);
	sqlite3_busy_timeout(db, 5000);
	return db;
}

static inline int64_t query_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	int64_t v = 0;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		die(sql, sqlite3_errmsg(db));
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

#endif
