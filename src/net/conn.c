/* One TCP connection with a peer: resolve, connect, channel handshake, then the sync session
 * (or the JOIN exchange with HQ), then an authenticated close. One state machine, one
 * transition function (conn_event); the libuv callbacks only translate events into it. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "join.h"
#include "peers.h"
#include "zila/blobx.h"
#include "zila/clock.h"
#include "zila/log.h"
#include "zila/os.h"

static const char *state_names[] = { "dialing", "handshake", "session", "join", "closing", "closed" };

void conn_noref_add(struct conns *cs, const uint8_t device[32])
{
	for (unsigned i = 0; i < cs->nnoref && i < NOREF_MAX; i++)
		if (memcmp(cs->noref[i], device, 32) == 0)
			return;
	memcpy(cs->noref[cs->nnoref % NOREF_MAX], device, 32);
	cs->nnoref++;
}

const char *conn_state_name(enum conn_state s)
{
	return state_names[s];
}

static void conn_flush(struct conn *c);
static void begin_closing(struct conn *c);
static void conn_noisy_flush(uv_timer_t *h);
static void conn_fail(struct conn *c, int code, const char *fmt, ...) ZILA_PRINTF(3, 4);

/* --- unauthenticated connections: counted, and logged without flooding the log ------ */

static void preauth_end(struct conn *c)
{
	if (c->preauth) {
		c->preauth = false;
		c->cs->npreauth--;
	}
}

/* --- the replica lent to the worker while a slice applies (net_lend, #20) ------------- */

static void lend_take(struct net_lend *l)
{
	uv_mutex_lock(&l->mu);
	while (!l->done)
		uv_cond_wait(&l->cv, &l->mu);
	uv_mutex_unlock(&l->mu);
	l->lent = false;
	l->owner = NULL;
}

void net_store_claim(const struct net_env *env)
{
	struct net_lend *l = env->lend;
	if (l == NULL || !l->lent)
		return;
	l->claims++;
	lend_take(l);
}

/* Whether c's next step waits for the slice on the worker: all but an inbound handshake's
 * first message (the psk and our certificate are in memory) may need the store. */
static bool lend_waits(const struct conn *c)
{
	const struct net_lend *l = c->cs->env->lend;
	if (l == NULL || !l->lent)
		return false;
	return !(c->state == CONN_HANDSHAKE && !c->initiator && c->ch_init && !c->ch.hs_started);
}

/* Sessions at most (zila_daemon_config.max_sessions, 0: 64). */
static unsigned net_max_sessions(const struct net_env *env)
{
	return env->cfg->max_sessions ? env->cfg->max_sessions : 64;
}

/* Handshakes at once: as many as sessions (at least PREAUTH_MAX, at most PREAUTH_CAP), so a
 * fan-in of laptops within the session cap never has a handshake closed to make room. */
static unsigned preauth_max(const struct net_env *env)
{
	unsigned n = net_max_sessions(env);
	return n < PREAUTH_MAX ? PREAUTH_MAX : n > PREAUTH_CAP ? PREAUTH_CAP : n;
}

unsigned conn_nsessions(const struct conns *cs)
{
	/* Closed connections wait for their close callbacks: they no longer count. */
	unsigned n = 0;
	for (const struct conn *c = cs->list; c != NULL; c = c->next)
		if (!c->preauth && c->state != CONN_CLOSED)
			n++;
	return n;
}

static const char *const noisy_what[NOISY_KINDS] = {
	[NOISY_CAP] = "over the session cap", [NOISY_RATE] = "over the handshake rate",
	[NOISY_ADDR] = "over the handshakes per address", [NOISY_EVICTED] = "closed to make room",
	[NOISY_FAILED] = "handshakes refused", [NOISY_TIMEOUT] = "handshake deadlines",
};

static void conn_noisy_flush(uv_timer_t *h)
{
	struct conns *cs = container_of(h, struct conns, noisy_timer);
	char line[512];
	size_t n = 0;
	for (int k = 0; k < NOISY_KINDS; k++) {
		if (cs->noisy_quiet[k] == 0 || n >= sizeof(line))
			continue;
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%llu %s", n ? ", " : "",
				      (unsigned long long)cs->noisy_quiet[k], noisy_what[k]);
	}
	if (n > 0)
		zila_log(ZILA_LOG_WARN, "unauthenticated connections in the last %d s, not logged one by one: %s",
			 NOISY_WINDOW_MS / 1000, line);
	memset(cs->noisy_quiet, 0, sizeof(cs->noisy_quiet));
	cs->noisy_logged = 0;
	uv_timer_stop(h);
}

/* Logs a refusal or failure of an unauthenticated connection, or only counts it once
 * NOISY_BURST lines were logged in this window: a flood must not fill the disk. */
static void noisy(struct conns *cs, enum noisy_kind k, const char *fmt, ...) ZILA_PRINTF(3, 4);
static void noisy(struct conns *cs, enum noisy_kind k, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	if (!uv_is_active((uv_handle_t *)&cs->noisy_timer) && !cs->env->stopping)
		uv_timer_start(&cs->noisy_timer, conn_noisy_flush, NOISY_WINDOW_MS, 0);
	if (cs->noisy_logged >= NOISY_BURST) {
		cs->noisy_quiet[k]++;
		return;
	}
	cs->noisy_logged++;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	zila_log(ZILA_LOG_WARN, "%s", msg);
}

/* --- lifetime ------------------------------------------------------------------------- */

static void conn_free(struct conn *c)
{
	struct conns *cs = c->cs;
	if ((c->sess != NULL || c->bx != NULL) && cs->env->lend != NULL && cs->env->lend->lent) {
		/* its session's statements are the store's: freed after the slice (conns_resume) */
		c->free_later = true;
		return;
	}
	for (struct conn **pp = &cs->list; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	preauth_end(c);
	cs->n--;
	if (c->ai != NULL)
		uv_freeaddrinfo(c->ai);
	zila_session_free(c->sess);
	zila_blobx_free(c->bx);
	if (c->ch_init)
		zila_channel_release(&c->ch);
	zila_buf_release(&c->out);
	zila_buf_release(&c->inflight);
	zila_buf_release(&c->msg);
	zila_buf_release(&c->held_in);
	sodium_memzero(&c->jc, sizeof(c->jc));
	free(c);
	cs->hooks.freed(cs->hooks.ctx);
}

static void on_close(uv_handle_t *h)
{
	struct conn *c = h->data;
	if (--c->nopen == 0)
		conn_free(c);
}

static struct conn *conn_new(struct conns *cs, bool initiator)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->cs = cs;
	c->initiator = initiator;
	c->started_ms = uv_now(cs->env->loop);
	c->result = ZILA_EINTERNAL;
	zila_buf_init(&c->out, OUT_MAX_BYTES);
	zila_buf_init(&c->inflight, OUT_MAX_BYTES);
	zila_buf_init(&c->msg, ZILA_CHANNEL_MSG_MAX);
	uv_timer_init(cs->env->loop, &c->timer);
	c->timer.data = c;
	uv_timer_init(cs->env->loop, &c->pace);
	c->pace.data = c;
	uv_idle_init(cs->env->loop, &c->apply_idle);
	c->apply_idle.data = c;
	zila_buf_init(&c->held_in, READ_CHUNK);
	uv_tcp_init(cs->env->loop, &c->tcp);
	c->tcp.data = c;
	c->tcp_open = true;
	c->nopen = 4;
	c->next = cs->list;
	cs->list = c;
	cs->n++;
	return c;
}

/* Results are recorded once, as soon as they are known (before the close completes). */
static void conn_finished(struct conn *c)
{
	if (c->finished)
		return;
	c->finished = true;
	net_store_claim(c->cs->env); /* the owner records the result in the replica */
	if (c->pump_yields > 0)
		zila_log(ZILA_LOG_DEBUG, "sending to %s, the loop turned %llu times between chunks (%d ms a turn at most)",
			 c->addr, (unsigned long long)c->pump_yields, PUMP_TURN_MS);
	if (c->read_yields > 0)
		zila_log(ZILA_LOG_DEBUG, "receiving from %s, the loop turned %llu times between reads (%d ms a turn at most)",
			 c->addr, (unsigned long long)c->read_yields, PUMP_TURN_MS);
	if (c->sess != NULL && c->result != 0) {
		/* Whole chunks that arrived before the cut are kept: the next session then resends
		 * only what was in flight, not a window's worth. */
		struct zila_error err;
		uint64_t n = 0;
		zila_error_clear(&err);
		int r = zila_session_salvage(c->sess, &n, &err);
		if (r != 0)
			zila_log(ZILA_LOG_WARN, "cannot keep the entries received from %s before the cut: %s", c->addr,
				 zila_error_msg(&err, r));
		else if (n > 0)
			zila_log(ZILA_LOG_INFO, "kept %llu entries received from %s before the cut", (unsigned long long)n,
				 c->addr);
	}
	c->cs->hooks.ended(c->cs->hooks.ctx, c);
}

static void log_blobs(struct conn *c, const char *how);

static void conn_close_handles(struct conn *c)
{
	if (c->state == CONN_CLOSED)
		return;
	log_blobs(c, " (stopped early)");
	conn_finished(c);
	preauth_end(c);
	c->state = CONN_CLOSED;
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->timer, on_close);
	uv_timer_stop(&c->pace);
	uv_close((uv_handle_t *)&c->pace, on_close);
	/* A window being applied in slices stops here: what was applied is kept, the rest
	 * comes again with the next session (it was not acknowledged). */
	c->applying = false;
	uv_idle_stop(&c->apply_idle);
	uv_close((uv_handle_t *)&c->apply_idle, on_close);
	if (c->tcp_open) {
		c->tcp_open = false;
		uv_close((uv_handle_t *)&c->tcp, on_close);
	}
	/* A resolver request still out keeps c alive until its callback (nopen counts it). */
	if (c->gai_pending)
		uv_cancel((uv_req_t *)&c->gai_req);
}

/* --- libuv callbacks: translation only --------------------------------------------- */

static void on_timer(uv_timer_t *t)
{
	conn_event(t->data, EV_TIMEOUT, NULL, 0, UV_ETIMEDOUT);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct conn *c = h->data;
	(void)hint;
	*buf = uv_buf_init((char *)c->rbuf, sizeof(c->rbuf));
}

/* Nanoseconds this turn of the loop has spent on chunks, made (conn_pump) or taken
 * (on_read), every connection together: the turn starts with the first of them. */
static uint64_t turn_ns(struct conns *cs)
{
	uint64_t turn = uv_now(cs->env->loop);
	if (cs->pump_turn_at != turn) {
		cs->pump_turn_at = turn;
		cs->pump_turn_ns = uv_hrtime();
	}
	return uv_hrtime() - cs->pump_turn_ns;
}

static void on_apply_slice(uv_idle_t *h);

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = s->data;
	(void)buf;
	if (nread > 0) {
		(void)turn_ns(c->cs);
		conn_event(c, EV_READ, c->rbuf, (size_t)nread, 0);
		/* libuv reads a stream up to 32 times in a turn, and a read that completes a chunk
		 * decodes it (some ms, 30-70 ms under load): past PUMP_TURN_MS the rest is read in
		 * the next turn (the connection's idle), other connections' events between (#20). */
		if (c->reading && c->state == CONN_SESSION && turn_ns(c->cs) >= (uint64_t)PUMP_TURN_MS * 1000000) {
			uv_read_stop((uv_stream_t *)&c->tcp);
			c->reading = false;
			c->read_yield = true;
			c->read_yields++;
			uv_idle_start(&c->apply_idle, on_apply_slice);
		}
	} else if (nread < 0) /* UV_EOF or an error; nread == 0 is EAGAIN: nothing happened */
		conn_event(c, EV_EOF, NULL, 0, nread == UV_EOF ? 0 : (int)nread);
}

static void on_write(uv_write_t *req, int status)
{
	struct conn *c = req->data;
	c->writing = false;
	c->inflight_off += c->piece_len;
	c->written += c->piece_len;
	c->piece_len = 0;
	if (c->inflight_off >= c->inflight.len || status != 0) {
		zila_buf_reset(&c->inflight);
		c->inflight_off = 0;
	}
	conn_event(c, EV_WRITTEN, NULL, 0, status);
}

static void conn_pump(struct conn *c);

static void on_pace(uv_timer_t *t)
{
	struct conn *c = t->data;
	conn_pump(c);
	conn_flush(c);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	(void)req;
	(void)status; /* the peer's EOF or the deadline ends CLOSING */
}

static void on_connect(uv_connect_t *req, int status)
{
	conn_event(req->data, EV_CONNECTED, NULL, 0, status);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *ai)
{
	struct conn *c = req->data;
	c->ai = ai;
	c->gai_pending = false;
	c->nopen--;
	if (c->state == CONN_CLOSED) {
		if (c->nopen == 0)
			conn_free(c);
		return;
	}
	conn_event(c, EV_RESOLVED, NULL, 0, status);
}

/* --- helpers -------------------------------------------------------------------------- */

static uint64_t idle_ms(const struct conns *cs)
{
	return cs->env->cfg->idle_timeout_ms ? cs->env->cfg->idle_timeout_ms : SESSION_IDLE_MS;
}

static void deadline(struct conn *c, uint64_t ms)
{
	uv_timer_start(&c->timer, on_timer, ms, 0);
}

static const char *peer_label(const struct conn *c, char *buf, size_t n)
{
	if (c->peer_name[0])
		snprintf(buf, n, "'%s' (%s)", c->peer_name, c->addr);
	else
		snprintf(buf, n, "%s", c->addr);
	return buf;
}

static void start_reading(struct conn *c)
{
	if (!c->reading && !c->applying && lend_waits(c)) {
		c->wait_read = true; /* after the slice (conns_resume) */
		return;
	}
	if (!c->reading && c->tcp_open && !c->applying && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
		c->reading = true;
}

/* Bytes queued here, not yet taken by the kernel. */
static size_t unwritten(const struct conn *c)
{
	return c->out.len + (c->inflight.len - c->inflight_off);
}

/* A piece is about WRITE_PIECE_MS of the link, at least WRITE_PIECE: on a slow link a write
 * still completes as the link drains; on a LAN one piece a turn of the loop keeps the
 * kernel's buffer full (32 KiB a turn is a wake-up of both ends per 32 KiB). */
static size_t write_piece(const struct conn *c)
{
	double b = c->rate * WRITE_PIECE_MS / 1000;
	return b <= WRITE_PIECE ? WRITE_PIECE : b >= WRITE_PIECE_MAX ? WRITE_PIECE_MAX : (size_t)b;
}

/* Writes the next piece. A piece's write completes when the kernel took it, which on a slow
 * link is when the link drained enough: completion follows the link, not a whole window. */
static void conn_flush(struct conn *c)
{
	if (c->state == CONN_CLOSED || c->writing || unwritten(c) == 0 || !c->tcp_open)
		goto pressure;
	if (c->inflight_off >= c->inflight.len) {
		struct zila_buf t = c->inflight;
		c->inflight = c->out;
		c->out = t;
		zila_buf_reset(&c->out);
		c->inflight_off = 0;
	}
	size_t n = c->inflight.len - c->inflight_off, piece = write_piece(c);
	if (n > piece)
		n = piece;
	uv_buf_t b = uv_buf_init((char *)c->inflight.p + c->inflight_off, (unsigned)n);
	c->write_req.data = c;
	int r = uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
	if (r != 0) {
		zila_buf_reset(&c->inflight);
		c->inflight_off = 0;
		zila_log(ZILA_LOG_DEBUG, "write to %s: %s", c->addr, uv_strerror(r));
		conn_close_handles(c);
		return;
	}
	c->piece_len = n;
	c->writing = true;
pressure:
	/* A peer that does not read stops us reading from it: its backlog stays bounded. */
	if (c->reading && unwritten(c) > READ_PAUSE_BYTES) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = false;
	}
}

/* What the blob phase moved, once per connection (`how` says it stopped early: a cut
 * costs what was in flight, and these lines let a bench count it). */
static void log_blobs(struct conn *c, const char *how)
{
	if (c->bx == NULL || !c->blobs_started || c->blobs_logged)
		return;
	c->blobs_logged = true;
	const struct zila_blobx_stats *bs = zila_blobx_stats(c->bx);
	if (bs->refused_scope > 0)
		zila_log(ZILA_LOG_WARN, "refused %s %llu attachment asks: no row it may read refers to those files", c->addr,
			 (unsigned long long)bs->refused_scope);
	if (bs->refused_unshown > 0)
		zila_log(ZILA_LOG_WARN, "refused %s %llu attachment asks for files it has not shown it holds (knowing a"
					" file's hash is not enough)", c->blob_label, (unsigned long long)bs->refused_unshown);
	if (bs->shown > 0)
		zila_log(ZILA_LOG_INFO, "%s showed it holds %llu attachment files (%llu bytes checked): possession"
					" recorded", c->blob_label, (unsigned long long)bs->shown,
			 (unsigned long long)bs->shown_bytes);
	if (bs->received > 0 || bs->served > 0 || bs->chunks_bad > 0 || bs->received_bytes > 0 || bs->served_bytes > 0)
		zila_log(ZILA_LOG_INFO,
			 "attachments with %s%s: received %llu (%llu bytes), sent %llu (%llu bytes), refused %llu bad chunks,"
			 " %llu asks outside its scope, in %llu ms; queued at most %zu bytes, waited for the link %llu times",
			 c->addr, how, (unsigned long long)bs->received, (unsigned long long)bs->received_bytes,
			 (unsigned long long)bs->served, (unsigned long long)bs->served_bytes,
			 (unsigned long long)bs->chunks_bad, (unsigned long long)bs->refused_scope,
			 (unsigned long long)(uv_now(c->cs->env->loop) - c->blobs_at_ms), c->blob_queued_max,
			 (unsigned long long)c->pace_waits);
	const struct zila_session_stats *st = zila_session_stats(c->sess);
	if (st->late_sent > 0 || st->late_received > 0)
		zila_log(ZILA_LOG_INFO, "rows in the attachments' phase with %s%s: sent %llu entries, received %llu", c->addr,
			 how, (unsigned long long)st->late_sent, (unsigned long long)st->late_received);
}

/* Ends the connection with an authenticated close when the channel is open (the peer then
 * knows we stopped on purpose), else at once. */
static void conn_fail(struct conn *c, int code, const char *fmt, ...)
{
	char lbl[400];
	va_list ap;
	if (c->state == CONN_CLOSED)
		return;
	log_blobs(c, " (stopped early)");
	if (!c->finished) {
		va_start(ap, fmt);
		vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
		va_end(ap);
		c->result = code ? code : ZILA_EINTERNAL;
		if (c->preauth)
			noisy(c->cs, code == UV_ETIMEDOUT ? NOISY_TIMEOUT : NOISY_FAILED, "%s with %s: %s",
			      c->mode == ZILA_CHANNEL_JOIN ? "join" : "sync", peer_label(c, lbl, sizeof(lbl)), c->reason);
		else if (!(c->initiator && !c->has_peer && c->owner != NULL)) /* the owner logs those */
			zila_log(c->duplicate ? ZILA_LOG_DEBUG : ZILA_LOG_WARN, "%s with %s: %s",
				 c->mode == ZILA_CHANNEL_JOIN ? "join" : "sync", peer_label(c, lbl, sizeof(lbl)),
				 c->reason);
		conn_finished(c);
	}
	if (c->ch_init && c->ch.state == ZILA_CH_OPEN && !c->ch.tx_closed) {
		if (c->sess != NULL && c->state == CONN_SESSION && zila_session_state(c->sess) != ZILA_SESSION_FAILED)
			zila_session_abort(c->sess, code, c->reason);
		if (zila_channel_close(&c->ch, &c->out) == 0) {
			c->state = CONN_CLOSING;
			deadline(c, CLOSING_TIMEOUT_MS / 2);
			conn_flush(c);
			return;
		}
	}
	conn_close_handles(c);
}

static int session_send(void *ctx, const uint8_t *p, size_t len)
{
	struct conn *c = ctx;
	c->last_out_ms = uv_now(c->cs->env->loop);
	return zila_channel_send(&c->ch, p, len, &c->out);
}

/* --- the link: what it carries, and a sender paced by it ------------------------------- */

/* Bytes the kernel holds for the peer, sent or not, not yet acknowledged by it. */
static size_t kernel_queue(struct conn *c)
{
	uv_os_fd_t fd;
	if (c->tcp_open && uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
		return zila_os_sock_unsent((intptr_t)fd);
	return 0;
}

/* Of the piece being written, the bytes the kernel took already: a write completes when the
 * whole piece is taken, and what it took meanwhile is counted in kernel_queue() too. */
static size_t piece_taken(struct conn *c)
{
	if (!c->writing || !c->tcp_open)
		return 0;
	size_t left = uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp);
	return left < c->piece_len ? c->piece_len - left : 0;
}

/* Everything on its way to the peer and not yet acknowledged by its TCP. */
static size_t link_backlog(struct conn *c)
{
	return unwritten(c) - piece_taken(c) + kernel_queue(c);
}

/* Learns the link's rate from what it carried while it had bytes queued: after 250 ms, or
 * sooner once 128 KiB went (a fast link is known at once). */
static void link_sample(struct conn *c)
{
	uint64_t now = uv_hrtime();
	size_t kq = kernel_queue(c);
	uint64_t handed = c->written + piece_taken(c);
	uint64_t delivered = handed > kq ? handed - kq : 0;
	/* never backwards: a sample that went back would wrap to an absurd rate */
	if (delivered < c->rate_delivered)
		delivered = c->rate_delivered;
	uint64_t dt = now - c->rate_at_ns, db = delivered - c->rate_delivered;
	if (c->rate_at_ns == 0) {
		c->rate_at_ns = now;
		c->rate_delivered = delivered;
	} else if (dt >= 250 * 1000000ull || (db >= 128 * 1024 && dt >= 1000000ull)) {
		if (c->rate_busy) {
			double r = (double)db * 1e9 / (double)dt;
			if (r > LINK_RATE_MAX)
				r = LINK_RATE_MAX;
			c->rate = c->rate == 0 ? r : (c->rate + r) / 2;
		}
		c->rate_at_ns = now;
		c->rate_delivered = delivered;
		c->rate_busy = false;
	}
	if (unwritten(c) + kq > 1024)
		c->rate_busy = true;
}

/* Sends chunks while the link has less than about LINK_AHEAD_MS of them queued: each about
 * CHUNK_LINK_MS of link, so on 2G a chunk is a few KiB, applied and kept a second after it
 * left, and on a LAN the session's full chunk. Making a chunk reads up to 256 KiB of
 * entries and codes them for the wire (20-150 ms on this loaded machine); on a LAN the link
 * takes a window of them at once, and each write's callback pumped again in the same turn,
 * which made one turn of the loop last 0.2-0.84 s while a laptop cloned (#20): chunks
 * are made in a turn until PUMP_TURN_MS have gone, the rest in the next turns (the pace
 * timer), other connections' events between. A turn is then at most one chunk past the
 * budget. Chunks sized to the budget (at least one entry each) bounded it further but made
 * a 1M-row clone some 1.5x slower (more windows, each applied and acknowledged): not done. */
static void session_over(struct conn *c);

static void conn_pump(struct conn *c)
{
	struct zila_error err;
	/* nothing goes out while a received window is applied in slices: the session is
	 * between a message and its answer (apply_done pumps again) */
	if (c->state != CONN_SESSION || c->sess == NULL || c->applying)
		return;
	if (lend_waits(c)) {
		c->wait_pump = true; /* chunks are read from the store: after the slice */
		return;
	}
	bool blobs = c->blobs_started;
	struct conns *cs = c->cs;
	uint64_t turn = uv_now(cs->env->loop);
	zila_error_clear(&err);
	for (int i = 0; i < 64; i++) {
		/* in the blob phase, new rows of ours go before the next piece of a file */
		bool late = blobs && zila_session_wants_to_send(c->sess);
		if (!(late || (blobs ? zila_blobx_wants_to_send(c->bx) : zila_session_wants_to_send(c->sess))))
			break;
		/* The loop's time is taken once a turn: a chunk made at another time than the
		 * last starts the turn's budget. On loopback a write completes at once and its
		 * callback pumps again in the same turn, so the budget is the turn's, not a call's. */
		if (cs->pump_turn_at != turn) {
			cs->pump_turn_at = turn;
			cs->pump_turn_ns = uv_hrtime();
		} else if (uv_hrtime() - cs->pump_turn_ns >= (uint64_t)PUMP_TURN_MS * 1000000) {
			c->pump_yields++;
			/* not 0: libuv runs a timer started at 0 from a timer in the same turn */
			uv_timer_start(&c->pace, on_pace, 1, 0);
			return;
		}
		link_sample(c);
		/* The rate is at most LINK_RATE_MAX: what follows fits a size_t. */
		double ahead = c->rate * LINK_AHEAD_MS / 1000;
		size_t want = c->rate == 0 ? 2 * LINK_QUEUE_MIN : ahead > LINK_QUEUE_MIN ? (size_t)ahead : LINK_QUEUE_MIN;
		if (blobs && c->rate > 0) {
			/* files hold less ahead: new rows wait behind what is queued (ATTACH.md) */
			double b = c->rate * BLOB_AHEAD_MS / 1000;
			size_t bw = b > CHUNK_MIN ? (size_t)b : CHUNK_MIN;
			if (bw < want)
				want = bw;
		}
		/* rows do not wait for the queue to drain: they are queued behind what is */
		if (!late && link_backlog(c) >= want) {
			if (!uv_is_active((uv_handle_t *)&c->pace)) {
				unsigned ms = c->pace_wait_ms == 0 ? PACE_FIRST_MS : 2 * c->pace_wait_ms;
				c->pace_wait_ms = ms < PACE_MS ? ms : PACE_MS;
				c->pace_waits += blobs;
				uv_timer_start(&c->pace, on_pace, c->pace_wait_ms, 0);
			}
			return;
		}
		/* blobs: a write in flight pumps again when it completes (EV_WRITTEN) */
		if (blobs && !late && unwritten(c) >= BLOB_QUEUED_MAX)
			return;
		c->pace_wait_ms = 0;
		double one = c->rate * CHUNK_LINK_MS / 1000;
		size_t chunk = c->rate == 0 ? CHUNK_FIRST : one < CHUNK_MIN ? CHUNK_MIN : one > ZILA_SESSION_CHUNK ? ZILA_SESSION_CHUNK : (size_t)one;
		/* A chunk at most doubles the last: the rate is a guess until the link is busy. */
		if (c->chunk_bytes != 0 && chunk > 2 * c->chunk_bytes)
			chunk = 2 * c->chunk_bytes;
		if (chunk > ZILA_SESSION_CHUNK)
			chunk = ZILA_SESSION_CHUNK;
		c->chunk_bytes = chunk;
		/* blobs: at least one message (a 64 KiB chunk) per call, about `chunk` bytes */
		int r = blobs && !late ? zila_blobx_send_more(c->bx, chunk, &err) : zila_session_send_more(c->sess, chunk, &err);
		if (r != 0) {
			conn_fail(c, r, "%s", zila_error_msg(&err, r));
			return;
		}
		if (blobs && unwritten(c) > c->blob_queued_max)
			c->blob_queued_max = unwritten(c);
		if (blobs ? zila_blobx_done(c->bx) && !zila_session_late_unacked(c->sess) : zila_session_done(c->sess)) {
			conn_flush(c);
			session_over(c);
			return;
		}
		conn_flush(c);
	}
}

/* What to fetch from this peer (proto/ATTACH.md, "Policy"): HQ fetches every blob it lacks;
 * a laptop fetches everything from a LAN peer, and from HQ unless the uplink is slow
 * (setting attach.link: fast, slow, or auto: slower than attach.slow_bps bytes/s as
 * measured while the rows went, default 50000): then only what a user asked for
 * (zila attachment get) and blobs of at most attach.fetch_below bytes (default 65536). */
static void blob_policy(struct conn *c, struct zila_blobx_config *bc)
{
	const struct net_env *d = c->cs->env;
	const struct zila_channel_peer *pe = zila_channel_peer(&c->ch);
	char *mode = NULL, *v = NULL;
	uint64_t slow_bps = 50000;
	bc->fetch_below = 65536;
	if (zila_store_meta_get(d->store, "attach.slow_bps", &v) == 0 && v != NULL)
		slow_bps = strtoull(v, NULL, 10);
	free(v);
	v = NULL;
	if (zila_store_meta_get(d->store, "attach.fetch_below", &v) == 0 && v != NULL)
		bc->fetch_below = strtoull(v, NULL, 10);
	free(v);
	if (zila_store_meta_get(d->store, "attach.link", &mode) != 0)
		mode = NULL;
	bool peer_hq = pe->cert.role == ZILA_ROLE_HQ && pe->cert.scope_all;
	bool slow = mode != NULL && strcmp(mode, "slow") == 0;
	if (mode == NULL || strcmp(mode, "auto") == 0 || mode[0] == '\0')
		slow = c->rate > 0 && c->rate < (double)slow_bps;
	bc->fetch_all = d->id.is_hq || !peer_hq || !slow;
	free(mode);
}

/* Rows never wait for blobs: in the blob phase, a local write since the session began
 * (unsealed changes, or own entries sealed since), noticed when the daemon sees the replica
 * written (conns_local_write) or about once a second here, goes on the same channel ahead of
 * the next piece of a file when the peer takes rows in the blob phase (PROTOCOL.md, "Rows in
 * the blob phase"): sealed now, sent as more chunks of the session, acknowledged by the
 * peer. A peer that does not (an older zila) has the phase ended instead; the daemon then
 * starts a new session, rows first, and the blobs resume at their chunks. */
static bool late_rows(struct conn *c)
{
	struct zila_store *s = c->cs->env->store;
	struct zila_error err;
	int64_t n = 0;
	size_t nsealed = 0;
	uint64_t nlate = 0;
	c->blobs_checked_ms = uv_now(c->cs->env->loop);
	bool pending = zila_store_pending(s, &n) == 0 && n > 0;
	if (!pending && peers_own_sealed(s) <= (c->late_own > c->own_offered ? c->late_own : c->own_offered))
		return false;
	/* Only while the peer cannot finish before it reads them: we have not said BlobDone, or
	 * serve it a file still (its last piece follows the rows). Else, as with an older peer,
	 * the phase ends and a new session carries them. */
	if (!zila_session_peer_late(c->sess) || zila_blobx_peer_may_finish(c->bx))
		return true;
	/* another session's transaction (a window applied in slices) seals at its next look */
	if (zila_store_in_transaction(s))
		return false;
	zila_error_clear(&err);
	int r = pending ? zila_store_seal(s, &nsealed, &err) : 0;
	if (r != 0) {
		zila_log(ZILA_LOG_WARN, "cannot seal local changes now: %s", zila_error_msg(&err, r));
		return false;
	}
	int64_t own = peers_own_sealed(s);
	if ((r = zila_session_late_rows(c->sess, &nlate, &err)) != 0) {
		conn_fail(c, r, "%s", zila_error_msg(&err, r));
		return false;
	}
	if (nlate > 0)
		zila_log(ZILA_LOG_INFO, "sending %llu new entries to %s in the attachments' phase, ahead of the files",
			 (unsigned long long)nlate, c->addr);
	/* Not c->own_offered: the daemon then wants one more session with the peer once this
	 * one ends, whose blob phase fetches files these rows name (the peer's asks were made
	 * when this phase began). */
	c->late_own = own;
	conn_pump(c);
	conn_flush(c);
	return false;
}

static bool blobs_yield(struct conn *c)
{
	uint64_t now = uv_now(c->cs->env->loop);
	if (now - c->blobs_checked_ms < 1000)
		return false;
	if (!late_rows(c))
		return false;
	zila_log(ZILA_LOG_INFO, "pausing attachments with %s: new rows go first (the files resume where they stopped)",
		 c->addr);
	log_blobs(c, " (paused for rows)");
	c->result = 0;
	conn_finished(c);
	begin_closing(c);
	return true;
}

/* The rows are done (the session is DONE): the blob phase when both sides offered it, then
 * the close. A cut in the blob phase leaves the rows applied and acknowledged. */
static void session_over(struct conn *c)
{
	struct zila_error err;
	zila_error_clear(&err);
	if (c->bx != NULL && zila_session_peer_blobs(c->sess) &&
	    !(c->blobs_started && zila_blobx_done(c->bx) && !zila_session_late_unacked(c->sess))) {
		if (!c->blobs_started) {
			struct zila_blobx_config bc;
			memset(&bc, 0, sizeof(bc));
			blob_policy(c, &bc);
			zila_blobx_policy(c->bx, bc.fetch_all, bc.fetch_below);
			c->blobs_started = true;
			c->blobs_at_ms = uv_now(c->cs->env->loop);
			int r = zila_blobx_start(c->bx, &err);
			if (r != 0) {
				conn_fail(c, r, "%s", zila_error_msg(&err, r));
				return;
			}
			const struct zila_blobx_stats *bs = zila_blobx_stats(c->bx);
			if (bs->asked > 0 || bs->wanted_left > 0)
				zila_log(ZILA_LOG_INFO, "asking %s for %llu attachments (%llu bytes)%s", c->addr,
					 (unsigned long long)bs->asked, (unsigned long long)bs->asked_bytes,
					 bs->wanted_left ? "; others wait for a faster link or a request" : "");
			conn_flush(c);
		}
		if (!zila_blobx_done(c->bx) || zila_session_late_unacked(c->sess)) {
			if (!blobs_yield(c) && c->state == CONN_SESSION)
				conn_pump(c);
			return;
		}
	}
	log_blobs(c, "");
	c->result = 0;
	conn_finished(c);
	begin_closing(c);
}

/* --- the steps -------------------------------------------------------------------------- */

static void begin_closing(struct conn *c)
{
	int r = zila_channel_close(&c->ch, &c->out);
	if (r != 0) {
		conn_close_handles(c);
		return;
	}
	c->state = CONN_CLOSING;
	deadline(c, CLOSING_TIMEOUT_MS);
}

/* Another connection with the same device: the one the lower device key dialled stays,
 * so two laptops that dial each other at once keep the same one. */
static bool resolve_duplicate(struct conn *c)
{
	const uint8_t *self = zila_store_device_pk(c->cs->env->store);
	for (struct conn *o = c->cs->list; o != NULL; o = o->next) {
		if (o == c || !o->has_peer || o->state == CONN_CLOSED || o->state == CONN_CLOSING ||
		    memcmp(o->peer_pk, c->peer_pk, 32) != 0)
			continue;
		const uint8_t *oi = o->initiator ? self : o->peer_pk;
		const uint8_t *ci = c->initiator ? self : c->peer_pk;
		bool keep_o = memcmp(oi, ci, 32) < 0 || (memcmp(oi, ci, 32) == 0 && o->started_ms <= c->started_ms);
		struct conn *loser = keep_o ? c : o;
		loser->duplicate = true;
		conn_fail(loser, ZILA_EEXIST, "a session with this device is already running");
		if (loser == c)
			return true;
	}
	return false;
}

static void serve_join(struct conn *c)
{
	const struct net_env *d = c->cs->env;
	struct zila_error err;
	struct zila_buf m;
	const struct zila_channel_peer *pe = zila_channel_peer(&c->ch);
	zila_error_clear(&err);
	zila_buf_init(&m, ZILA_CHANNEL_MSG_MAX);
	c->mode = ZILA_CHANNEL_JOIN;
	int r = join_answer(d->store, c->invite_id, pe, zila_trust_now(d->trust), &m, &err);
	if (r == 0) {
		char id[ZILA_DEVICE_ID_LEN + 1];
		zila_device_id(pe->sign_pk, id);
		zila_log(ZILA_LOG_INFO, "enrolled device %s as '%s' from %s by invite", id, pe->req.name, c->addr);
		c->result = 0;
	} else {
		snprintf(c->reason, sizeof(c->reason), "join refused: %s", zila_error_msg(&err, r));
		zila_log(ZILA_LOG_WARN, "join from %s refused: %s", c->addr, zila_error_msg(&err, r));
		c->result = r;
	}
	/* m holds the Enrolment, or an Error telling the laptop why. */
	if (m.len > 0 && zila_channel_send(&c->ch, m.p, m.len, &c->out) != 0)
		zila_log(ZILA_LOG_DEBUG, "join answer to %s not sent", c->addr);
	zila_buf_release(&m);
	conn_finished(c);
	begin_closing(c);
}

static void on_established(struct conn *c)
{
	struct conns *cs = c->cs;
	const struct net_env *d = cs->env;
	const struct zila_channel_peer *pe = zila_channel_peer(&c->ch);
	struct zila_error err;
	char lbl[400];
	zila_error_clear(&err);
	preauth_end(c);
	c->has_peer = true;
	memcpy(c->peer_pk, pe->sign_pk, 32);
	if (pe->has_cert) {
		snprintf(c->peer_name, sizeof(c->peer_name), "%s", pe->cert.name);
		snprintf(c->peer_district, sizeof(c->peer_district), "%s", pe->cert.scope_all ? "*" : pe->cert.district);
	} else if (pe->joining) {
		snprintf(c->peer_name, sizeof(c->peer_name), "%s", pe->req.name);
	}
	cs->hooks.established(cs->hooks.ctx, c);
	if (c->initiator && c->mode == ZILA_CHANNEL_JOIN) {
		c->state = CONN_JOIN;
		deadline(c, JOIN_TIMEOUT_MS);
		return;
	}
	if (!c->initiator && pe->joining) {
		serve_join(c);
		return;
	}
	if (resolve_duplicate(c))
		return;
	unsigned max = net_max_sessions(d);
	if (!c->initiator && conn_nsessions(cs) > max) {
		conn_fail(c, ZILA_EBUSY, "%u sessions run already", max);
		return;
	}
	/* The handshake's last message goes now, not after the session's start: the peer
	 * checks it and starts its session while this side seals and reads its feeds. */
	conn_flush(c);
	peers_seen(d->store, c->peer_pk, c->peer_name, c->peer_district, c->addr, c->initiator ? c->source : "inbound");
	/* zila_session_start() seals local changes first: they compete with what arrives. A
	 * replica that cannot be written (locked, full) fails the session there, and the
	 * peer is told why. */
	int r;
	struct zila_session_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.store = d->store;
	cfg.trust = d->trust;
	cfg.peer_may_read = zila_trust_read_filter;
	cfg.peer_read_ctx = (void *)&pe->cert;
	cfg.send = session_send;
	cfg.send_ctx = c;
	cfg.is_hq = d->id.is_hq;
	/* After a session with this peer failed (a flaky link), commit every chunk: a window's
	 * worth of work is not lost again and again to the same cut. */
	if (c->flaky)
		cfg.window = 1;
	cfg.live = true;
	cfg.peer_is_hq = pe->cert.role == ZILA_ROLE_HQ && pe->cert.scope_all;
	cfg.peer_device = c->peer_pk;
	/* What this peer refused before is not offered again (while its trust is the same). */
	refused_skips(cs->refused, c->peer_pk, c->skip, &c->nskip);
	cfg.skip = c->skip;
	cfg.nskip = c->nskip;
	/* Each received window comes back to us to apply (apply_window): the seam where a
	 * worker with a connection of its own can take the apply off the loop. */
	cfg.caller_applies = true;
	for (unsigned i = 0; i < cs->nnoref && i < NOREF_MAX; i++)
		if (memcmp(cs->noref[i], c->peer_pk, 32) == 0)
			cfg.no_refs = true;
	/* Chunks sized by the link and sent as it drains (conn_pump). */
	cfg.paced = true;
	/* Attachments' blobs after the rows (#25). */
	cfg.blobs = true;
	/* and rows written meanwhile on the same channel, ahead of the files */
	cfg.late_rows = true;
	struct zila_blobx_config bc;
	memset(&bc, 0, sizeof(bc));
	bc.store = d->store;
	bc.peer_may_read = zila_trust_read_filter;
	bc.peer_read_ctx = (void *)&pe->cert;
	bc.peer_may_write = zila_trust_write_filter;
	bc.peer_write_ctx = (void *)&pe->cert;
	snprintf(c->blob_label, sizeof(c->blob_label), "%s '%s' (%s, %s)",
		 pe->cert.scope_all ? "HQ device" : "the laptop", pe->cert.name,
		 pe->cert.scope_all ? "every district" : pe->cert.district, c->addr);
	bc.peer_name = c->blob_label;
	bc.send = session_send;
	bc.send_ctx = c;
	zila_error_clear(&err);
	if ((r = zila_blobx_new(&c->bx, &bc, &err)) != 0 || (r = zila_session_new(&c->sess, &cfg, &err)) != 0 ||
	    (r = zila_session_start(c->sess, &err)) != 0) {
		conn_fail(c, r, "cannot start the session: %s", zila_error_msg(&err, r));
		return;
	}
	c->own_offered = peers_own_sealed(d->store);
	zila_log(ZILA_LOG_DEBUG, "session with %s started (%s)", peer_label(c, lbl, sizeof(lbl)),
		 c->initiator ? "we dialled" : "it dialled");
	c->state = CONN_SESSION;
	c->last_apply_ms = c->last_read_ms = c->last_write_ms = uv_now(cs->env->loop);
	deadline(c, idle_ms(c->cs));
}

static void on_bytes(struct conn *c, const uint8_t *p, size_t len);
static void session_step(struct conn *c);

/* The pending window's slices applied so far, with this one's stats: counts add up, and a
 * feed's first refusal is kept once. */
static void stats_add(struct zila_apply_stats *to, const struct zila_apply_stats *st)
{
	to->nreceived += st->nreceived;
	to->napplied += st->napplied;
	to->nduplicate += st->nduplicate;
	to->nrejected += st->nrejected;
	to->nheld += st->nheld;
	to->nretried += st->nretried;
	to->ngap += st->ngap;
	to->nconflicts += st->nconflicts;
	to->nparked += st->nparked;
	to->ntrust += st->ntrust;
	to->nrefusals_more += st->nrefusals_more;
	for (size_t i = 0; i < st->nrefusals; i++) {
		const struct zila_refusal *f = &st->refusals[i];
		size_t k = 0;
		while (k < to->nrefusals &&
		       (memcmp(to->refusals[k].origin, f->origin, 32) != 0 || strcmp(to->refusals[k].part, f->part) != 0))
			k++;
		if (k < to->nrefusals)
			to->refusals[k].nwaiting += 1 + f->nwaiting; /* a later entry of a feed refused before */
		else if (to->nrefusals < ZILA_APPLY_REFUSALS)
			to->refusals[to->nrefusals++] = *f;
		else
			to->nrefusals_more++;
	}
}

/* The window is applied (or failed, r): the session acknowledges it, and what came with its
 * last message is taken now. */
static void apply_done(struct conn *c, int r, struct zila_error *err)
{
	c->applying = false;
	uv_idle_stop(&c->apply_idle);
	uv_update_time(c->cs->env->loop);
	c->last_apply_ms = c->last_read_ms = uv_now(c->cs->env->loop);
	r = zila_session_applied(c->sess, r, &c->apply_st, err);
	if (r != 0) {
		conn_fail(c, r, "%s", zila_error_msg(err, r));
		conn_flush(c);
		return;
	}
	deadline(c, idle_ms(c->cs));
	if (c->held_in.len > 0) {
		/* on_bytes may hold bytes again (another large window): take these out first */
		struct zila_buf held = c->held_in;
		zila_buf_init(&c->held_in, READ_CHUNK);
		on_bytes(c, held.p, held.len);
		zila_buf_release(&held);
	} else {
		session_step(c);
		conn_flush(c);
	}
	if (c->state != CONN_CLOSED && unwritten(c) <= READ_PAUSE_BYTES)
		start_reading(c);
}

/* A slice's result: its entries count, the session is kept alive and the peer told we are
 * there; after the window's last slice (or a failure) the session acknowledges it. */
static void slice_finish(struct conn *c, size_t end, int r, const struct zila_apply_stats *st, struct zila_error *err)
{
	stats_add(&c->apply_st, st);
	c->apply_next = end;
	/* the session is busy, not idle: no deadline while its window is applied */
	deadline(c, idle_ms(c->cs));
	/* and the peer hears so (Progress, every PROGRESS_MS): we read nothing meanwhile, so
	 * its writes stop draining, and a window applied for longer than its idle deadline (a
	 * national HQ under load) would have it take us for gone and cut the session */
	if (r == 0 && end < c->apply_n && zila_session_peer_progress(c->sess)) {
		uv_update_time(c->cs->env->loop);
		if (uv_now(c->cs->env->loop) - c->last_out_ms >= PROGRESS_MS) {
			r = zila_session_progress(c->sess, c->bytes_in, err);
			c->apply_progress++;
			conn_flush(c);
		}
	}
	if (r != 0 || end == c->apply_n) {
		const struct net_lend *l = c->cs->env->lend;
		if (c->apply_progress > 0)
			zila_log(ZILA_LOG_DEBUG, "applying a window from %s, told it %u times we are there", c->addr,
				 c->apply_progress);
		if (l != NULL)
			zila_log(ZILA_LOG_DEBUG,
				 "applied a window from %s; off the loop so far: %llu slices, %llu handshakes answered "
				 "meanwhile, %llu waits for a slice",
				 c->addr, (unsigned long long)l->slices, (unsigned long long)l->answered,
				 (unsigned long long)l->claims);
		c->apply_progress = 0;
		apply_done(c, r, err);
	}
}

/* After a slice: what waited for the store goes on (held bytes, deadlines, chunks, reads),
 * and windows waiting to apply take their turn. */
static void conn_resume(struct conn *c)
{
	if (c->state == CONN_CLOSED)
		return;
	if (c->applying) {
		/* its deadline is set again by its slices; it reads nothing until applied */
		c->wait_timeout = false;
		if (!uv_is_active((uv_handle_t *)&c->apply_idle))
			uv_idle_start(&c->apply_idle, on_apply_slice);
		return;
	}
	if (c->held_in.len > 0) {
		struct zila_buf held = c->held_in;
		zila_buf_init(&c->held_in, READ_CHUNK);
		conn_event(c, EV_READ, held.p, held.len, 0);
		zila_buf_release(&held);
	}
	if (c->state != CONN_CLOSED && c->wait_eof && !c->applying) {
		c->wait_eof = false;
		conn_event(c, EV_EOF, NULL, 0, c->eof_status);
	}
	if (c->state != CONN_CLOSED && c->wait_timeout && !c->applying) {
		c->wait_timeout = false;
		conn_event(c, EV_TIMEOUT, NULL, 0, UV_ETIMEDOUT);
	}
	if (c->state != CONN_CLOSED && c->wait_pump) {
		c->wait_pump = false;
		conn_pump(c);
		conn_flush(c);
	}
	if (c->state != CONN_CLOSED && c->wait_read) {
		c->wait_read = false;
		if (unwritten(c) <= READ_PAUSE_BYTES)
			start_reading(c);
	}
}

static void conns_resume(struct conns *cs)
{
	/* closed connections are freed by close callbacks, never here: the list holds */
	for (struct conn *c = cs->list, *n; c != NULL; c = n) {
		n = c->next;
		if (cs->env->lend->lent)
			return;
		if (c->free_later)
			conn_free(c);
		else
			conn_resume(c);
	}
}

/* The worker: one slice, one transaction, with the store lent to it. */
static void slice_work(uv_work_t *req)
{
	struct conn *c = req->data;
	struct net_lend *l = c->cs->env->lend;
	memset(&c->slice_st, 0, sizeof(c->slice_st));
	zila_error_clear(&c->slice_err);
	c->slice_r = zila_store_apply(c->cs->env->store, c->apply_v + c->apply_next, c->slice_end - c->apply_next,
				      &c->slice_st, &c->slice_err);
	uv_mutex_lock(&l->mu);
	l->done = true;
	uv_cond_signal(&l->cv);
	uv_mutex_unlock(&l->mu);
	if (l->test_late_ms > 0)
		uv_sleep(l->test_late_ms);
}

/* Back on the loop: the store is ours again (it may have been claimed before). */
static void slice_done(uv_work_t *req, int status)
{
	struct conn *c = req->data;
	struct conns *cs = c->cs;
	struct net_lend *l = cs->env->lend;
	if (l->lent) {
		/* never another's (on_apply_slice starts none while a result waits): were it so,
		 * this result's store work would have run beside that slice */
		if (l->owner != c)
			zila_log(ZILA_LOG_ERROR,
				 "internal: another slice was lent the replica before this one's result was taken");
		lend_take(l);
	}
	l->queued = false;
	c->nopen--;
	if (c->state == CONN_CLOSED) {
		if (c->nopen == 0)
			conn_free(c);
	} else if (c->applying) {
		if (status != 0) {
			c->slice_r = zila_error_set(&c->slice_err, ZILA_EINTERNAL, "a slice of the window did not run: %s",
						    uv_strerror(status));
			memset(&c->slice_st, 0, sizeof(c->slice_st));
		}
		slice_finish(c, c->slice_end, c->slice_r, &c->slice_st, &c->slice_err);
	}
	conns_resume(cs);
}

/* One slice of the pending window, one transaction, per turn of the loop: on the worker,
 * the loop answering others meanwhile (net_lend), or here when there is none. */
static void on_apply_slice(uv_idle_t *h)
{
	struct conn *c = container_of(h, struct conn, apply_idle);
	struct net_lend *l = c->cs->env->lend;
	struct zila_error err;
	struct zila_apply_stats st;
	zila_error_clear(&err);
	if (!c->applying || c->state == CONN_CLOSED || c->sess == NULL) {
		uv_idle_stop(h);
		if (c->read_yield && !c->applying && c->state != CONN_CLOSED) {
			c->read_yield = false;
			if (unwritten(c) <= READ_PAUSE_BYTES)
				start_reading(c);
		}
		return;
	}
	if (l != NULL && (l->lent || l->queued)) {
		/* another slice runs, or its result waits (the loop may have claimed the store
		 * back meanwhile); this one follows it (conns_resume) */
		uv_idle_stop(h);
		return;
	}
	/* Handshakes first: while one is under way (a few turns of the loop, each quick) the
	 * slice waits, at most APPLY_DEFER_MS, so a flood of handshakes cannot stop the apply. */
	uint64_t now = zila_os_mono_ms();
	if (c->cs->npreauth > 0) {
		if (c->apply_defer_since == 0)
			c->apply_defer_since = now;
		if (now - c->apply_defer_since < APPLY_DEFER_MS)
			return;
	}
	c->apply_defer_since = 0;
	size_t end = c->apply_next, bytes = 0;
	while (end < c->apply_n && (end == c->apply_next || bytes + c->apply_v[end].len <= APPLY_SLICE_BYTES))
		bytes += c->apply_v[end++].len;
	if (l != NULL) {
		c->slice_end = end;
		c->slice_req.data = c;
		l->lent = true;
		l->queued = true;
		l->owner = c;
		l->done = false;
		if (uv_queue_work(c->cs->env->loop, &c->slice_req, slice_work, slice_done) == 0) {
			c->nopen++; /* c outlives the slice: slice_done frees it if it closed meanwhile */
			l->slices++;
			uv_idle_stop(h);
			return;
		}
		l->lent = false;
		l->queued = false;
		l->owner = NULL;
	}
	memset(&st, 0, sizeof(st));
	int r = zila_store_apply(c->cs->env->store, c->apply_v + c->apply_next, end - c->apply_next, &st, &err);
	slice_finish(c, end, r, &st, &err);
}

/* Applies a window the session has received on the daemon's connection, and tells the
 * session how it went (it acknowledges, or fails and tells the peer why). A window of more
 * than APPLY_SLICE_BYTES is applied in slices, one per turn of the loop (on_apply_slice),
 * so that other peers wait at most a slice, not the window: each slice is a transaction of
 * whole entries (a kill keeps the slices committed and the next session resends the rest,
 * which was not acknowledged), and the merge does not depend on how entries are grouped.
 * The connection reads nothing more until the window is applied. */
static int apply_window(struct conn *c, struct zila_error *err)
{
	const struct zila_view *v;
	size_t n, bytes = 0;
	if (c->applying || !zila_session_pending(c->sess, &v, &n))
		return 0;
	for (size_t i = 0; i < n; i++)
		bytes += v[i].len;
	/* Off the loop (net_lend) also a window of one large entry, or of a few small ones. */
	if ((bytes > APPLY_SLICE_BYTES && n > 1) || (bytes > APPLY_LOOP_BYTES && c->cs->env->lend != NULL)) {
		c->applying = true;
		c->apply_v = v;
		c->apply_n = n;
		c->apply_next = 0;
		memset(&c->apply_st, 0, sizeof(c->apply_st));
		if (c->reading) {
			uv_read_stop((uv_stream_t *)&c->tcp);
			c->reading = false;
		}
		uv_idle_start(&c->apply_idle, on_apply_slice);
		return 0;
	}
	struct zila_apply_stats st;
	memset(&st, 0, sizeof(st));
	int r = zila_store_apply(c->cs->env->store, v, n, &st, err);
	/* The loop's time is where this iteration began: a long apply would make the next
	 * window look due at once, and a fast link's windows small. */
	uv_update_time(c->cs->env->loop);
	c->last_apply_ms = uv_now(c->cs->env->loop);
	return zila_session_applied(c->sess, r, &st, err);
}

/* After bytes arrived in a session: what arrived whole is applied and acknowledged at least
 * every APPLY_EVERY_MS (rows show, and are kept, as they arrive); a side that reads and says
 * nothing tells the peer it is there (Progress); the sender's side sends what the link
 * takes. */
static void session_step(struct conn *c)
{
	struct zila_error err;
	uint64_t now = uv_now(c->cs->env->loop);
	int r = 0;
	if (c->applying)
		return;
	zila_error_clear(&err);
	if (now - c->last_apply_ms >= APPLY_EVERY_MS) {
		if ((r = zila_session_flush(c->sess, &err)) == 0)
			r = apply_window(c, &err);
	}
	if (r == 0 && now - c->last_out_ms >= PROGRESS_MS && c->bytes_in - c->progress_at >= PROGRESS_MIN_BYTES &&
	    zila_session_peer_progress(c->sess)) {
		c->progress_at = c->bytes_in;
		r = zila_session_progress(c->sess, c->bytes_in, &err);
	}
	if (r != 0) {
		conn_fail(c, r, "%s", zila_error_msg(&err, r));
		return;
	}
	const struct zila_session_stats *st = zila_session_stats(c->sess);
	if (st->peer_is_hq && st->own_at_peer > c->own_told) {
		c->own_told = st->own_at_peer;
		c->cs->hooks.delivered(c->cs->hooks.ctx, c);
	}
	if (zila_session_done(c->sess)) {
		session_over(c);
		return;
	}
	conn_pump(c);
}

static void on_message(struct conn *c)
{
	const struct net_env *d = c->cs->env;
	struct zila_error err;
	zila_error_clear(&err);
	if (c->state == CONN_SESSION) {
		if (zila_blobx_is_blob(c->msg.p, c->msg.len)) {
			/* the blob phase: the peer may be in it before our session is DONE */
			int r = c->bx != NULL && zila_session_peer_blobs(c->sess)
					? zila_blobx_receive(c->bx, c->msg.p, c->msg.len, &err)
					: zila_error_set(&err, ZILA_EPROTO, "a blob message, not offered");
			if (r != 0) {
				conn_fail(c, r, "%s", zila_error_msg(&err, r));
				return;
			}
			if (c->blobs_started)
				session_over(c);
			return;
		}
		if (c->blobs_started && !zila_session_peer_late(c->sess))
			return; /* rows are done: a late Progress */
		/* (after DONE, with a peer that sends them: its new rows, their Acks, Progress) */
		uint64_t late = zila_session_stats(c->sess)->late_received;
		int r = zila_session_receive(c->sess, c->msg.p, c->msg.len, &err);
		if (r == 0 && zila_session_stats(c->sess)->late_received > late)
			zila_log(ZILA_LOG_INFO, "%s sent %llu new entries in the attachments' phase", c->addr,
				 (unsigned long long)(zila_session_stats(c->sess)->late_received - late));
		if (r == 0)
			r = apply_window(c, &err);
		if (r != 0) {
			conn_fail(c, r, "%s", zila_error_msg(&err, r));
			return;
		}
		if (!c->applying && zila_session_done(c->sess))
			session_over(c);
	} else if (c->state == CONN_JOIN) {
		int r = join_take(d->store, c->jc.root_pk, c->msg.p, c->msg.len, zila_trust_now(d->trust), &err);
		if (r != 0) {
			conn_fail(c, r, "%s", zila_error_msg(&err, r));
			return;
		}
		c->result = 0;
		conn_finished(c);
		begin_closing(c);
	}
	/* In CLOSING, messages after our close (a late Ack) are read and dropped. */
}

/* What a web server or a captive portal answers starts with text; zila's first message does
 * not (a length, then the handshake's bytes). */
static bool looks_like_text(const uint8_t *p, size_t n)
{
	if (n < 4)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((p[i] < 0x20 || p[i] > 0x7e) && p[i] != '\r' && p[i] != '\n' && p[i] != '\t')
			return false;
	return true;
}

static void on_bytes(struct conn *c, const uint8_t *p, size_t len)
{
	size_t off = 0;
	if (c->state == CONN_SESSION) {
		c->last_read_ms = uv_now(c->cs->env->loop);
		deadline(c, idle_ms(c->cs));
	}
	while (off < len && c->state != CONN_CLOSED) {
		size_t used = 0;
		enum zila_channel_event ev = ZILA_CHANNEL_NONE;
		zila_buf_reset(&c->msg);
		int r = zila_channel_feed(&c->ch, p + off, len - off, &used, &c->out, &c->msg, &ev);
		if (r != 0) {
			/* The channel failed for good (tampered, refused, malformed): nothing more can
			 * be sent on it, so the TCP connection just ends. */
			if (c->state == CONN_HANDSHAKE && c->initiator && looks_like_text(c->first, c->nfirst)) {
				char said[sizeof(c->first) + 1];
				size_t n = 0;
				for (; n < c->nfirst && c->first[n] != '\r' && c->first[n] != '\n'; n++)
					said[n] = (char)c->first[n];
				said[n] = '\0';
				conn_fail(c, r,
					  "something that is not a zila peer answered at %s (it began \"%s\"): a captive portal "
					  "or a wrong address?",
					  c->addr, said);
			} else if (c->state == CONN_HANDSHAKE && !c->initiator && r == ZILA_EVERSION) {
				/* A zila from before organisation secrets (handshake version 1) logs an
				 * answer that is text as what answered: say it in 16 bytes. */
				static const char say[] = "update zila (v2)";
				uv_buf_t b = uv_buf_init((char *)say, sizeof(say) - 1);
				(void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
				conn_fail(c, r,
					  "handshake refused: the device at %s speaks another handshake version (a zila from "
					  "before organisation secrets): it must be updated, and enrolled again",
					  c->addr);
			} else if (c->state != CONN_CLOSING) {
				conn_fail(c, r, "%s: %s",
					  c->state == CONN_HANDSHAKE ? "handshake refused" : "channel failed", zila_strerror(r));
			}
			conn_close_handles(c);
			return;
		}
		off += used;
		if (ev == ZILA_CHANNEL_NONE && off < len && lend_waits(c)) {
			/* the handshake's next message needs the store: after the slice */
			if (zila_buf_put(&c->held_in, p + off, len - off) != 0) {
				net_store_claim(c->cs->env);
				conn_fail(c, ZILA_ENOMEM, "out of memory");
				break;
			}
			if (c->reading) {
				uv_read_stop((uv_stream_t *)&c->tcp);
				c->reading = false;
			}
			c->wait_read = true;
			break;
		}
		if (ev == ZILA_CHANNEL_ESTABLISHED)
			on_established(c);
		else if (ev == ZILA_CHANNEL_MESSAGE)
			on_message(c);
		/* each reply as soon as it is made: the next message of this read may take a while */
		if (ev == ZILA_CHANNEL_MESSAGE || ev == ZILA_CHANNEL_ESTABLISHED)
			conn_flush(c);
		if (c->applying) {
			/* the rest waits until the window is applied (apply_done) */
			if (off < len && zila_buf_put(&c->held_in, p + off, len - off) != 0) {
				conn_fail(c, ZILA_ENOMEM, "out of memory");
				break;
			}
			break;
		}
		else if (ev == ZILA_CHANNEL_CLOSED) {
			if (c->state == CONN_SESSION && c->blobs_started && zila_session_late_unacked(c->sess)) {
				/* it finished as our new rows were on their way: not known to be there */
				conn_fail(c, ZILA_ECLOSED,
					  "the peer closed before it acknowledged the rows sent in the attachments' phase");
			} else if (c->state == CONN_SESSION && c->blobs_started) {
				/* the peer ended the blob phase (it has new rows, or stops): the rows
				 * were done; what came of the files is kept */
				zila_log(ZILA_LOG_INFO, "%s ended the attachments' phase; the files resume at the next session",
					 c->addr);
				log_blobs(c, " (paused by the peer)");
				c->result = 0;
				conn_finished(c);
				begin_closing(c);
			} else if (c->state == CONN_SESSION)
				conn_fail(c, ZILA_ECLOSED, "the peer closed the session before it completed");
			else if (c->state == CONN_JOIN)
				conn_fail(c, ZILA_ECLOSED, "HQ closed without sending a certificate");
		}
		if (used == 0)
			break;
	}
	if (c->state == CONN_SESSION)
		session_step(c);
	conn_flush(c);
	if (c->state == CONN_CLOSING && c->ch.rx_closed && !c->writing && unwritten(c) == 0)
		conn_close_handles(c);
}

static int init_initiator_channel(struct conn *c)
{
	const struct net_env *env = c->cs->env;
	const struct net_identity *d = &env->id;
	struct zila_channel_config cfg;
	struct zila_error err;
	int r;
	memset(&cfg, 0, sizeof(cfg));
	cfg.initiator = true;
	cfg.sign_sk = zila_store_device_sk(env->store);
	if (c->mode == ZILA_CHANNEL_JOIN) {
		zila_error_clear(&err);
		net_store_claim(env);
		if ((r = join_prepare(env->store, &cfg, &c->jc, zila_trust_now(env->trust), &err)) != 0) {
			zila_log(ZILA_LOG_WARN, "cannot join: %s", zila_error_msg(&err, r));
			return r;
		}
	} else {
		cfg.mode = ZILA_CHANNEL_MEMBER;
		cfg.cert = zila_view_make(d->cert_bytes, ZILA_CERT_LEN);
		if (d->has_issuer)
			cfg.issuer_cert = zila_view_make(d->issuer_bytes, ZILA_CERT_LEN);
		memcpy(cfg.psk, d->psk, sizeof(cfg.psk));
		cfg.check = zila_channel_check_member;
		cfg.check_ctx = env->trust;
	}
	r = zila_channel_init(&c->ch, &cfg);
	sodium_memzero(cfg.psk, sizeof(cfg.psk));
	if (r == 0)
		c->ch_init = true;
	return r;
}

/* Responder psk: the replica's, remembering the invite id a joining laptop names. */
static int responder_psk(void *ctx, uint8_t mode, const uint8_t invite_id[ZILA_INVITE_ID_LEN], uint8_t psk[32])
{
	struct conn *c = ctx;
	const struct net_identity *id = &c->cs->env->id;
	memcpy(c->invite_id, invite_id, ZILA_INVITE_ID_LEN);
	c->mode = mode;
	/* Members: the key read from the organisation secret when the identity was read, so
	 * that an unauthenticated first message costs no file read. */
	if (mode == ZILA_CHANNEL_MEMBER) {
		if (!id->enrolled)
			return ZILA_ENOTENROLLED;
		memcpy(psk, id->psk, 32);
		return 0;
	}
	net_store_claim(c->cs->env); /* an invite's psk is read from the replica */
	return zila_channel_psk_replica(c->cs->env->trust, mode, invite_id, psk);
}

/* Liveness by bytes (#24): a session lives while bytes move in either direction: the idle
 * deadline after the last byte read, or after the last piece the kernel took. A peer that
 * tells what it reads (Progress) is heard from every second or two while it reads, so
 * writes alone extend its session by at most one more deadline: bytes the kernel takes may
 * sit in a stopped peer's buffers, and then it is cut at most two deadlines after its last
 * word (one after its kernel stopped taking bytes). A receiver applying a window says
 * nothing while its kernel takes bytes: that counts, as it did before. An older peer says
 * nothing while it reads a window: for it a drained piece counts without that bound. */
static uint64_t session_alive_until(const struct conn *c)
{
	uint64_t idle = idle_ms(c->cs);
	uint64_t until = c->last_read_ms + idle, by_write = c->last_write_ms + idle;
	if (!(c->sess != NULL && zila_session_peer_progress(c->sess)))
		return by_write > until ? by_write : until;
	if (by_write > until)
		until = by_write < c->last_read_ms + 2 * idle ? by_write : c->last_read_ms + 2 * idle;
	return until;
}

/* --- the transition function -------------------------------------------------------------- */

void conn_event(struct conn *c, enum conn_event ev, const uint8_t *p, size_t len, int status)
{
	if (c->state == CONN_CLOSED)
		return;
	if (ev == EV_STOP) {
		net_store_claim(c->cs->env);
		if (c->state != CONN_CLOSING)
			conn_fail(c, ZILA_ECLOSED, "the daemon is stopping");
		return;
	}
	switch (c->state) {
	case CONN_DIALING:
		if (ev == EV_RESOLVED) {
			if (status != 0 || c->ai == NULL) {
				conn_fail(c, status ? status : ZILA_ENOTFOUND, "cannot resolve '%s': %s", c->addr,
					  uv_strerror(status ? status : UV_EAI_NONAME));
				return;
			}
			c->connect_req.data = c;
			int r = uv_tcp_connect(&c->connect_req, &c->tcp, c->ai->ai_addr, on_connect);
			if (r != 0)
				conn_fail(c, r, "cannot connect: %s", uv_strerror(r));
		} else if (ev == EV_CONNECTED) {
			if (status != 0) {
				conn_fail(c, status, "cannot connect: %s", uv_strerror(status));
				return;
			}
			uv_tcp_nodelay(&c->tcp, 1);
			if (zila_channel_start(&c->ch, &c->out) != 0) {
				conn_fail(c, ZILA_EINTERNAL, "cannot start the handshake");
				return;
			}
			c->state = CONN_HANDSHAKE;
			deadline(c, HANDSHAKE_TIMEOUT_MS);
			start_reading(c);
			conn_flush(c);
		} else if (ev == EV_TIMEOUT) {
			conn_fail(c, UV_ETIMEDOUT, "no answer within %d s", DIAL_TIMEOUT_MS / 1000);
		}
		return;
	case CONN_HANDSHAKE:
	case CONN_SESSION:
	case CONN_JOIN:
	case CONN_CLOSING:
		break;
	case CONN_CLOSED:
		return;
	}
	/* While a slice runs on the worker, what needs the store waits for it (conns_resume). */
	if (lend_waits(c)) {
		if (ev == EV_READ || ev == EV_EOF) {
			if (ev == EV_READ && zila_buf_put(&c->held_in, p, len) != 0) {
				net_store_claim(c->cs->env);
				conn_fail(c, ZILA_ENOMEM, "out of memory");
				return;
			}
			if (ev == EV_EOF) {
				c->wait_eof = true;
				c->eof_status = status;
			}
			if (c->reading) {
				uv_read_stop((uv_stream_t *)&c->tcp);
				c->reading = false;
			}
			c->wait_read = true;
			return;
		}
		if (ev == EV_TIMEOUT) {
			c->wait_timeout = true;
			return;
		}
	} else if (ev == EV_READ && c->cs->env->lend != NULL && c->cs->env->lend->lent) {
		c->cs->env->lend->answered++; /* an inbound handshake's first message */
	}
	switch (ev) {
	case EV_READ:
		if (c->bytes_in == 0) {
			c->nfirst = len < sizeof(c->first) ? len : sizeof(c->first);
			memcpy(c->first, p, c->nfirst);
		}
		c->bytes_in += len;
		on_bytes(c, p, len);
		break;
	case EV_EOF:
		if (c->state == CONN_CLOSING)
			conn_close_handles(c);
		else if (c->state == CONN_HANDSHAKE && c->initiator && c->bytes_in == 0 && c->owner != NULL &&
			 c->last_ok != 0 && zila_wall_s() - c->last_ok < 600) {
			/* It answered nothing, though a sync with it completed minutes ago: not another
			 * organisation, but a peer that turned the handshake away before it began. */
			c->busy_refused = true;
			conn_fail(c, status ? status : ZILA_EBUSY,
				  "the peer turned the handshake away before it began, %llu s after the last sync with it "
				  "completed: it is busy (too many handshakes or sessions at once)",
				  (unsigned long long)(zila_wall_s() - c->last_ok));
		} else if (c->state == CONN_HANDSHAKE)
			conn_fail(c, status ? status : ZILA_EAUTH,
				  c->bytes_in == 0 ? "the peer closed the connection before the handshake began: it belongs to "
						     "another organisation, or it is busy (too many handshakes at once)"
						   : "the peer ended the handshake before it completed");
		else
			conn_fail(c, status ? status : ZILA_ESHORT, "connection cut%s%s", status ? ": " : "",
				  status ? uv_strerror(status) : "");
		break;
	case EV_WRITTEN:
		if (status != 0) {
			if (status != UV_ECANCELED)
				conn_fail(c, status, "cannot send: %s", uv_strerror(status));
			conn_close_handles(c);
			break;
		}
		/* A piece that drained into the link counts too (session_alive_until). */
		if (c->state == CONN_SESSION) {
			c->last_write_ms = uv_now(c->cs->env->loop);
			conn_pump(c);
		}
		conn_flush(c);
		if (unwritten(c) <= READ_PAUSE_BYTES)
			start_reading(c);
		if (c->state == CONN_CLOSING && !c->writing && unwritten(c) == 0) {
			if (c->ch.rx_closed) {
				conn_close_handles(c);
			} else if (!c->shut) {
				/* Half-close: the peer reads our close frame, then EOF. */
				c->shut = true;
				c->shutdown_req.data = c;
				if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
					conn_close_handles(c);
			}
		}
		break;
	case EV_TIMEOUT:
		if (c->state == CONN_SESSION && c->applying) {
			deadline(c, idle_ms(c->cs));
			break;
		}
		if (c->state == CONN_SESSION) {
			uint64_t now = uv_now(c->cs->env->loop), until = session_alive_until(c);
			if (until > now) {
				deadline(c, until - now);
				break;
			}
		}
		if (c->state == CONN_CLOSING)
			conn_close_handles(c);
		else
			conn_fail(c, UV_ETIMEDOUT, "no progress in state %s for %d s", conn_state_name(c->state),
				  (int)((c->state == CONN_SESSION ? idle_ms(c->cs)
				       : c->state == CONN_JOIN	  ? JOIN_TIMEOUT_MS
								  : HANDSHAKE_TIMEOUT_MS) /
					1000));
		break;
	default:
		break;
	}
}

/* --- entry points ------------------------------------------------------------------------- */

int conn_dial(struct conns *cs, const struct conn_dial *d, struct conn **out)
{
	char host[256];
	char port[8];
	uint16_t pn;
	struct addrinfo hints;
	if (out != NULL)
		*out = NULL;
	int r = zila_hostport_parse(d->addr, host, sizeof(host), &pn);
	if (r != 0)
		return r;
	struct conn *c = conn_new(cs, true);
	if (c == NULL)
		return ZILA_ENOMEM;
	c->owner = d->owner;
	c->seqno = d->seqno;
	c->flaky = d->flaky;
	c->last_ok = d->last_ok;
	snprintf(c->source, sizeof(c->source), "%s", d->source);
	c->mode = d->join ? ZILA_CHANNEL_JOIN : ZILA_CHANNEL_MEMBER;
	snprintf(c->addr, sizeof(c->addr), "%s", d->addr);
	if (d->name != NULL && d->name[0])
		snprintf(c->peer_name, sizeof(c->peer_name), "%s", d->name);
	if (out != NULL)
		*out = c;
	if ((r = init_initiator_channel(c)) != 0) {
		conn_fail(c, r, "cannot prepare the channel: %s", zila_strerror(r));
		return 0;
	}
	c->state = CONN_DIALING;
	deadline(c, DIAL_TIMEOUT_MS);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%u", pn);
	c->gai_req.data = c;
	r = uv_getaddrinfo(cs->env->loop, &c->gai_req, on_resolved, host, port, &hints);
	if (r != 0) {
		conn_fail(c, r, "cannot resolve '%s': %s", host, uv_strerror(r));
		return 0;
	}
	c->nopen++;
	c->gai_pending = true;
	zila_log(ZILA_LOG_DEBUG, "dialling %s (%s)%s", d->addr, d->source, c->mode == ZILA_CHANNEL_JOIN ? " to join" : "");
	return 0;
}

static bool rate_ok(struct conns *cs, const char *ip)
{
	uint64_t now = uv_now(cs->env->loop);
	struct rate_slot *slot = NULL, *oldest = &cs->rate[0];
	for (size_t i = 0; i < RATE_SLOTS; i++) {
		if (strcmp(cs->rate[i].addr, ip) == 0) {
			slot = &cs->rate[i];
			break;
		}
		if (cs->rate[i].at_ms < oldest->at_ms)
			oldest = &cs->rate[i];
	}
	if (slot == NULL) {
		slot = oldest;
		snprintf(slot->addr, sizeof(slot->addr), "%s", ip);
		slot->tokens = RATE_BURST;
		slot->at_ms = now;
	}
	slot->tokens += (double)(now - slot->at_ms) / RATE_REFILL_MS;
	if (slot->tokens > RATE_BURST)
		slot->tokens = RATE_BURST;
	slot->at_ms = now;
	if (slot->tokens < 1.0)
		return false;
	slot->tokens -= 1.0;
	return true;
}

void conn_rate_refund(struct conns *cs, const char *ip)
{
	for (size_t i = 0; i < RATE_SLOTS; i++)
		if (strcmp(cs->rate[i].addr, ip) == 0 && cs->rate[i].tokens + 1.0 <= RATE_BURST)
			cs->rate[i].tokens += 1.0;
}

void conn_accept(struct conns *cs, uv_stream_t *listener)
{
	struct sockaddr_storage ss;
	int sl = sizeof(ss);
	char ip[64] = "?";
	const struct net_env *env = cs->env;
	struct conn *c = conn_new(cs, false);
	if (c == NULL)
		return;
	c->state = CONN_HANDSHAKE;
	if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
		conn_close_handles(c);
		return;
	}
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
			snprintf(c->addr, sizeof(c->addr), "%s:%u", ip, ntohs(((struct sockaddr_in *)&ss)->sin_port));
		} else {
			uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
			snprintf(c->addr, sizeof(c->addr), "[%s]:%u", ip, ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
		}
	}
	c->result = ZILA_ECLOSED;
	c->finished = true; /* refusals below are not sessions: nothing to record */
	if (env->stopping || !env->id.enrolled) {
		conn_close_handles(c);
		return;
	}
	snprintf(c->ip, sizeof(c->ip), "%s", ip);
	unsigned max = net_max_sessions(env);
	/* c is not unauthenticated yet: it counts as one of the sessions here. */
	if (conn_nsessions(cs) > max) {
		noisy(cs, NOISY_CAP, "refused %s: %u sessions run already", c->addr, max);
		conn_close_handles(c);
		return;
	}
	if (!rate_ok(cs, ip)) {
		noisy(cs, NOISY_RATE, "refused %s: too many handshakes from %s", c->addr, ip);
		conn_close_handles(c);
		return;
	}
	unsigned same = 0;
	struct conn *oldest = NULL;
	for (struct conn *o = cs->list; o != NULL; o = o->next) {
		if (o == c || !o->preauth)
			continue;
		if (strcmp(o->ip, ip) == 0)
			same++;
		if (oldest == NULL || o->started_ms < oldest->started_ms)
			oldest = o;
	}
	if (same >= PREAUTH_PER_ADDR) {
		noisy(cs, NOISY_ADDR, "refused %s: %d handshakes from %s run already", c->addr, PREAUTH_PER_ADDR, ip);
		conn_close_handles(c);
		return;
	}
	unsigned pmax = preauth_max(env);
	if (cs->npreauth >= pmax && oldest != NULL) {
		/* An honest handshake is done in a few round trips: the one waiting longest is
		 * most likely slow on purpose, once it has waited PREAUTH_EVICT_MS. Before that
		 * the newcomer is refused instead (it dials again with backoff): closing young
		 * handshakes to make room for newer ones made a fan-in of 1,000 laptops close
		 * 4,747 handshakes and take 103 s, each redial closing another. */
		uint64_t age = uv_now(env->loop) - oldest->started_ms;
		if (age < PREAUTH_EVICT_MS) {
			noisy(cs, NOISY_CAP, "refused %s: %u handshakes at once", c->addr, pmax);
			conn_close_handles(c);
			return;
		}
		noisy(cs, NOISY_EVICTED, "closed %s after %llu ms in the handshake: %d handshakes at once", oldest->addr,
		      (unsigned long long)age, pmax);
		oldest->result = ZILA_EBUSY;
		oldest->finished = true;
		conn_close_handles(oldest);
	}
	struct zila_channel_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.sign_sk = zila_store_device_sk(env->store);
	cfg.cert = zila_view_make(env->id.cert_bytes, ZILA_CERT_LEN);
	if (env->id.has_issuer)
		cfg.issuer_cert = zila_view_make(env->id.issuer_bytes, ZILA_CERT_LEN);
	cfg.psk_fn = responder_psk;
	cfg.psk_ctx = c;
	cfg.check = zila_channel_check_member;
	cfg.check_ctx = env->trust;
	if (zila_channel_init(&c->ch, &cfg) != 0) {
		conn_close_handles(c);
		return;
	}
	c->ch_init = true;
	c->finished = false;
	c->result = ZILA_EINTERNAL;
	c->mode = ZILA_CHANNEL_MEMBER;
	c->preauth = true;
	cs->npreauth++;
	deadline(c, HANDSHAKE_TIMEOUT_MS);
	start_reading(c);
}

void conns_init(struct conns *cs, const struct net_env *env, const struct refused *rf, const struct conn_hooks *hooks)
{
	memset(cs, 0, sizeof(*cs));
	cs->env = env;
	cs->refused = rf;
	cs->hooks = *hooks;
	uv_timer_init(env->loop, &cs->noisy_timer);
}

void conns_stop(struct conns *cs)
{
	conn_noisy_flush(&cs->noisy_timer);
	if (!uv_is_closing((uv_handle_t *)&cs->noisy_timer))
		uv_close((uv_handle_t *)&cs->noisy_timer, NULL);
	/* Sessions end with an authenticated close; what they applied is committed. */
	for (struct conn *c = cs->list, *n; c != NULL; c = n) {
		n = c->next;
		conn_event(c, EV_STOP, NULL, 0, 0);
	}
}

void conns_local_write(struct conns *cs)
{
	for (struct conn *c = cs->list; c != NULL; c = c->next)
		if (c->state == CONN_SESSION && c->blobs_started && !c->applying) {
			c->blobs_checked_ms = 0; /* look now, not at the next second */
			session_over(c);
		}
}

struct conn *conn_with(const struct conns *cs, const uint8_t device[32], bool in_session)
{
	for (struct conn *c = cs->list; c != NULL; c = c->next)
		if (c->has_peer && c->state != CONN_CLOSED && (!in_session || c->state == CONN_SESSION) &&
		    memcmp(c->peer_pk, device, 32) == 0)
			return c;
	return NULL;
}

void conn_disown(struct conn *c)
{
	c->owner = NULL;
}
