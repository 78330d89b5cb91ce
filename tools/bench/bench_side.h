/* Shared by the sync benchmarks: clocks, replicas, and one side of a sync (channel + session)
 * fed from a socket by its caller. Static functions: each benchmark is one program. */
#ifndef ZILA_BENCH_SIDE_H
#define ZILA_BENCH_SIDE_H

#include <errno.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "zila/channel.h"
#include "zila/log.h"
#include "zila/session.h"
#include "zila/store.h"
#include "zila/trust.h"

/* Real time: the daemon benchmarks run `zila daemon`, which judges certificates by it. */
#define NOW_S ((uint64_t)time(NULL))

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "bench: %s: %s\n", what, msg);
	exit(1);
}

static uint64_t clock_ms(void *ctx)
{
	(void)ctx;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t clock_s(void *ctx)
{
	(void)ctx;
	return NOW_S;
}

static struct zila_store *open_store(const char *dir, struct zila_trust_ctx *tc)
{
	struct zila_store *s;
	struct zila_error err;
	zila_error_clear(&err);
	if (zila_store_open(&s, dir, &err) != 0)
		die("open", err.msg);
	zila_store_set_clock(s, clock_ms, NULL);
	if (tc != NULL) {
		memset(tc, 0, sizeof(*tc));
		tc->now = clock_s;
		zila_trust_install(s, tc);
	}
	return s;
}

static inline void db_exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		die(sql, msg ? msg : "?");
}

/* Inserts rows [from, from + n) of district d1 into db (an application's connection to a
 * replica, or a plain database); returns seconds. */

struct side {
	int fd;
	bool initiator;
	struct zila_channel ch;
	struct zila_session *sess;
	struct zila_store *s;
	struct zila_trust_ctx tc;
	struct zila_cert peer_cert;
	uint8_t cert[ZILA_CERT_LEN], issuer[ZILA_CERT_LEN];
	struct zila_buf out, msg;
	uint64_t tx, rx, tx_hs, rx_hs; /* bytes on the wire; at the end of the handshake */
	double t_start, t_hs, t_done;
	bool closed;
};

/* Writes what the side has to send (blocking) and counts it. */
static inline void side_flush(struct side *sd)
{
	size_t off = 0;
	while (off < sd->out.len) {
		ssize_t n = write(sd->fd, sd->out.p + off, sd->out.len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("write", strerror(errno));
		off += (size_t)n;
	}
	sd->tx += sd->out.len;
	zila_buf_reset(&sd->out);
}

static int side_send(void *ctx, const uint8_t *p, size_t len)
{
	struct side *sd = ctx;
	return zila_channel_send(&sd->ch, p, len, &sd->out);
}

static void channel_config(struct side *sd, struct zila_channel_config *cfg)
{
	struct zila_cert own, is;
	struct zila_buf b;
	uint8_t root[32];
	memset(cfg, 0, sizeof(*cfg));
	if (zila_trust_org(sd->s, root) != 0 || zila_trust_cert_get(sd->s, zila_store_device_pk(sd->s), &own) != 0)
		die("identity", "replica not enrolled");
	zila_buf_init(&b, ZILA_CERT_LEN);
	if (zila_cert_encode(&own, &b) != 0)
		die("identity", "certificate");
	memcpy(sd->cert, b.p, ZILA_CERT_LEN);
	cfg->cert = zila_view_make(sd->cert, ZILA_CERT_LEN);
	zila_buf_reset(&b);
	if (memcmp(own.issuer_pk, root, 32) != 0 && zila_trust_cert_get(sd->s, own.issuer_pk, &is) == 0 &&
	    zila_cert_encode(&is, &b) == 0) {
		memcpy(sd->issuer, b.p, ZILA_CERT_LEN);
		cfg->issuer_cert = zila_view_make(sd->issuer, ZILA_CERT_LEN);
	}
	zila_buf_release(&b);
	cfg->initiator = sd->initiator;
	cfg->mode = ZILA_CHANNEL_MEMBER;
	cfg->sign_sk = zila_store_device_sk(sd->s);
	uint8_t secret[ZILA_ORG_SECRET_LEN];
	if (zila_trust_org_secret(sd->s, secret) != 0)
		die("identity", "no organisation secret");
	zila_org_psk(secret, cfg->psk);
	sodium_memzero(secret, sizeof(secret));
	cfg->check = zila_channel_check_member;
	cfg->check_ctx = &sd->tc;
}

/* Opens the replica and the channel; an initiator's first frame is left in sd->out. */
static void side_begin(struct side *sd, const char *dir, int fd, bool initiator)
{
	struct zila_channel_config cfg;
	memset(sd, 0, sizeof(*sd));
	sd->fd = fd;
	sd->initiator = initiator;
	sd->s = open_store(dir, &sd->tc);
	zila_buf_init(&sd->out, 64u << 20);
	zila_buf_init(&sd->msg, ZILA_FRAME_MAX);
	channel_config(sd, &cfg);
	sd->t_start = now();
	if (zila_channel_init(&sd->ch, &cfg) != 0)
		die("channel", "init");
	if (initiator && zila_channel_start(&sd->ch, &sd->out) != 0)
		die("channel", "start");
}

/* Consumes received bytes (whole frames; *used says how many), leaving replies in sd->out. */
static void side_feed(struct side *sd, const uint8_t *in, size_t have, size_t *used_out)
{
	struct zila_error err;
	size_t off = 0;
	zila_error_clear(&err);
	sd->rx += have;
	while (off < have && !sd->closed) {
		size_t used = 0;
		enum zila_channel_event ev;
		zila_buf_reset(&sd->msg);
		if (zila_channel_feed(&sd->ch, in + off, have - off, &used, &sd->out, &sd->msg, &ev) != 0)
			die("channel", "feed");
		off += used;
		if (ev == ZILA_CHANNEL_ESTABLISHED) {
			struct zila_session_config sc;
			sd->t_hs = now();
			/* The handshake's last message goes before the session starts, as the
			 * daemon sends it (conn.c, on_established): the peer checks it while this
			 * side seals and reads its feeds. */
			side_flush(sd);
			sd->tx_hs = sd->tx + sd->out.len;
			sd->rx_hs = sd->rx - (have - off);
			sd->peer_cert = zila_channel_peer(&sd->ch)->cert;
			memset(&sc, 0, sizeof(sc));
			sc.store = sd->s;
			sc.trust = &sd->tc;
			sc.peer_may_read = zila_trust_read_filter;
			sc.peer_read_ctx = &sd->peer_cert;
			sc.send = side_send;
			sc.send_ctx = sd;
			sc.now_ms = clock_ms(NULL);
			if (zila_session_new(&sd->sess, &sc, &err) != 0 || zila_session_start(sd->sess, &err) != 0)
				die("session", err.msg);
		} else if (ev == ZILA_CHANNEL_MESSAGE) {
			if (zila_session_receive(sd->sess, sd->msg.p, sd->msg.len, &err) != 0)
				die("session", err.msg);
			/* each reply as soon as it is made, as the daemon does (conn.c) */
			side_flush(sd);
		} else if (ev == ZILA_CHANNEL_CLOSED) {
			sd->closed = true;
		}
		if (sd->sess != NULL && zila_session_done(sd->sess) && sd->t_done == 0) {
			sd->t_done = now();
			if (zila_channel_close(&sd->ch, &sd->out) != 0)
				die("channel", "close");
		}
		if (used == 0)
			break;
	}
	/* Bytes of a partial frame stay with the caller. */
	sd->rx -= have - off;
	*used_out = off;
}

static void side_end(struct side *sd)
{
	zila_session_free(sd->sess);
	zila_channel_release(&sd->ch);
	zila_buf_release(&sd->out);
	zila_buf_release(&sd->msg);
	zila_store_free(sd->s);
	sd->sess = NULL;
	sd->s = NULL;
}

/* n people of district d1 from row `from` (ids, names and phones the benches share), in one
 * transaction with `verb` (INSERT, INSERT OR REPLACE); returns the seconds it took. */
static inline double insert_people(sqlite3 *db, size_t from, size_t n, const char *verb)
{
	sqlite3_stmt *st;
	char sql[200], id[40], name[40], phone[32], addr[40];
	snprintf(sql, sizeof(sql),
		 "%s INTO people(id, district_id, name, phone, address, birth_year) VALUES (?, 'd1', ?, ?, ?, ?)", verb);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		die("prepare", sqlite3_errmsg(db));
	double t0 = now();
	db_exec(db, "BEGIN");
	for (size_t i = from; i < from + n; i++) {
		snprintf(id, sizeof(id), "p%08zx%08zx", i * 2654435761u % 4294967291u, i);
		snprintf(name, sizeof(name), "Ramesh Kumar %zu", i % 977);
		snprintf(phone, sizeof(phone), "9%09zu", i);
		snprintf(addr, sizeof(addr), "Village %zu, booth %zu", i % 5000, i % 2000);
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, phone, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, addr, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 5, 1950 + (int)(i % 50));
		if (sqlite3_step(st) != SQLITE_DONE)
			die("insert", sqlite3_errmsg(db));
		sqlite3_reset(st);
	}
	db_exec(db, "COMMIT");
	sqlite3_finalize(st);
	return now() - t0;
}

#endif
