/* zila_proxy: a fault-injecting TCP proxy for reliability tests between zila daemons. It
 * forwards each connection to one target, cuts both byte streams into chunks and drops,
 * delays, corrupts, duplicates, reorders or truncates them, the same way for the same seed. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

static const char usage[] =
	"usage: zila_proxy --listen HOST:PORT --to HOST:PORT [--seed N] [--drop P] [--delay MS]\n"
	"                  [--cut-after BYTES | --cut-every BYTES] [--truncate P] [--flip P]\n"
	"                  [--dup P] [--reorder P] [--chunk BYTES] [--rate BYTES] [--log FILE]\n"
	"\n"
	"Forwards every connection accepted on --listen to --to, in both directions. Each\n"
	"direction's byte stream is cut into chunks (random 1..4096 bytes, or --chunk BYTES each)\n"
	"and faults are applied per chunk with probability P (0..1):\n"
	"  --drop P        the chunk is lost\n"
	"  --delay MS      every chunk is held a random 0..MS ms (order is kept)\n"
	"  --flip P        one random bit of the chunk is inverted\n"
	"  --dup P         the chunk is sent twice\n"
	"  --reorder P     the chunk is swapped with the next one\n"
	"  --truncate P    part of the chunk is sent, then the connection is closed\n"
	"  --rate BYTES    each direction carries at most BYTES per second (a slow link: a\n"
	"                  quarter second of it is queued here, the rest waits in the sender's\n"
	"                  socket)\n"
	"  --cut-after N   each connection is closed after N bytes (both directions counted)\n"
	"  --cut-every N   the connection carrying every Nth byte of all traffic is closed\n"
	"  --seed N        the same seed, options and input give the same faults (default: from\n"
	"                  the clock, logged so that a run can be replayed)\n"
	"  --log FILE      one line per fault, and the summary, appended to FILE (default stderr)\n"
	"HOST is a numeric IPv4 or [IPv6] address, or localhost; nothing is ever resolved.\n"
	"SIGUSR1 turns faults off and on again; SIGTERM or SIGINT exits with a summary.\n";

enum {
	READ_BUF_LEN = 64 * 1024,
	/* Past HIGH_WATER bytes queued for a slow receiver the sender is no longer read, so
	 * the kernel's buffers push back on it; reading resumes below LOW_WATER. */
	HIGH_WATER = 256 * 1024,
	LOW_WATER = 64 * 1024,
	DEFAULT_CHUNK = 4096,
	MAX_CHUNK = 1024 * 1024,
	/* A reordered chunk waits for the next one at most this long, so that a sender
	 * waiting for a reply to it is not stalled for ever. */
	HOLD_MS = 250,
	/* After a cut, queued data gets this long to reach the peers before the sockets close. */
	DRAIN_MS = 2000,
	NHANDLES = 7, /* per connection: 2 TCP, 2 x 2 direction timers, 1 drain timer */
};

enum fault { F_DROP, F_DELAY, F_FLIP, F_DUP, F_REORDER, F_TRUNCATE, F_CUT, NFAULTS };
static const char *const fault_names[NFAULTS] = { "drop", "delay", "flip", "dup",
						  "reorder", "truncate", "cut" };

enum item_kind { ITEM_DATA, ITEM_SHUTDOWN };

/* Bytes waiting to be written to one side, in order. */
struct item {
	struct item *next;
	uv_write_t req;
	struct dir *dir;
	uint64_t release_ms; /* loop time before which it is not written (delay) */
	enum item_kind kind;
	size_t len;
	uint8_t data[];
};

/* What happens to the chunk being read; drawn when its first byte arrives. */
struct plan {
	uint64_t start; /* stream offset of its first byte */
	size_t size, pos;
	bool drop, flip, dup, reorder, trunc;
	size_t flip_off, trunc_off;
	unsigned flip_bit, delay_ms;
};

/* One direction of a connection: bytes read from src are written to dst. */
struct dir {
	struct conn *conn;
	int idx; /* 0: client to server, 1: server to client */
	uv_stream_t *src, *dst;
	uint64_t rng;
	uint64_t off; /* bytes read from src */
	struct plan ch;
	uint8_t *cbuf; /* the current chunk's bytes, kept when it is duplicated or reordered */
	size_t cbuf_len;
	uint8_t *held; /* a reordered chunk waiting for the next one */
	size_t held_len;
	bool holding, held_dup;
	struct item *head, *tail; /* not yet handed to uv_write */
	size_t queued; /* bytes of data items not yet written */
	uint64_t last_release_ms;
	double link_free_ms; /* --rate: when the link has carried what is queued */
	bool paused, ended, shut_sent, shut_done;
	uv_timer_t release_timer, hold_timer;
	uv_shutdown_t shut_req;
	uint8_t rbuf[READ_BUF_LEN];
};

struct conn {
	struct conn *prev, *next;
	uint64_t id;
	uv_tcp_t client, server;
	uv_connect_t connect_req;
	uv_timer_t drain_timer;
	struct dir dir[2];
	uint64_t nin; /* bytes read, both directions */
	bool cutting, closing;
	int nopen;
};

static struct {
	struct sockaddr_storage listen_addr, to_addr;
	const char *listen_s, *to_s, *log_path;
	uint64_t seed, cut_after, cut_every;
	double p_drop, p_flip, p_dup, p_reorder, p_truncate;
	unsigned delay_ms;
	uint64_t rate; /* bytes per second per direction; 0: unlimited */
	size_t chunk; /* 0: random 1..DEFAULT_CHUNK */
} opt;

static struct {
	uv_loop_t loop;
	uv_tcp_t listener;
	uv_signal_t sig_usr1, sig_term, sig_int;
	FILE *log;
	bool faults_on, stopping;
	uint64_t counts[NFAULTS];
	uint64_t nconns, bytes_in, bytes_out, total_in, next_cut;
	size_t high_water, low_water;
	struct conn *conns;
} px;

static void logline(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logline(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(px.log, fmt, ap);
	va_end(ap);
	fputc('\n', px.log);
}

static const char *dir_name(const struct dir *d)
{
	return d->idx == 0 ? "c>s" : "s>c";
}

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* splitmix64; each direction of each connection has its own stream, so faults depend on
 * the seed, the connection's number and the position in the byte stream, never on how the
 * kernel happened to split the reads. */
static uint64_t rnd64(struct dir *d)
{
	return mix64(d->rng += UINT64_C(0x9e3779b97f4a7c15));
}

static bool chance(struct dir *d, double p)
{
	return (double)(rnd64(d) >> 11) / 9007199254740992.0 < p;
}

static void fmt_addr(const struct sockaddr *sa, char *out, size_t out_len)
{
	char host[64] = "?";
	int port = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
		uv_ip4_name(in, host, sizeof host);
		port = ntohs(in->sin_port);
		snprintf(out, out_len, "%s:%d", host, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		uv_ip6_name(in6, host, sizeof host);
		port = ntohs(in6->sin6_port);
		snprintf(out, out_len, "[%s]:%d", host, port);
	} else {
		snprintf(out, out_len, "?");
	}
}

/* HOST:PORT with a numeric host (or localhost), so the proxy can only ever reach an address
 * the user wrote down. */
static bool parse_addr(const char *s, bool port_zero_ok, struct sockaddr_storage *out)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	char *end;
	memset(out, 0, sizeof *out);
	if (colon == NULL || (size_t)(colon - s) >= sizeof host || colon == s)
		return false;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	errno = 0;
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || end == colon + 1 || port > 65535 || (port == 0 && !port_zero_ok))
		return false;
	if (strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	if (host[0] == '[') {
		size_t n = strlen(host);
		if (n < 3 || host[n - 1] != ']')
			return false;
		host[n - 1] = '\0';
		return uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)(void *)out) == 0;
	}
	return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)(void *)out) == 0;
}

static bool parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	errno = 0;
	if (s[0] == '-')
		return false;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static bool parse_prob(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= 0.0 && v <= 1.0))
		return false;
	*out = v;
	return true;
}

/* --- connections ----------------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	if (--c->nopen > 0)
		return;
	/* Every write and shutdown callback has run by now (libuv cancels them before the
	 * stream's close callback); only items never handed to uv_write remain. */
	for (int i = 0; i < 2; i++) {
		struct dir *d = &c->dir[i];
		while (d->head != NULL) {
			struct item *it = d->head;
			d->head = it->next;
			free(it);
		}
		free(d->cbuf);
		free(d->held);
	}
	free(c);
}

static void conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		px.conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	logline("conn %" PRIu64 " closed after %" PRIu64 " bytes in", c->id, c->nin);
	uv_close((uv_handle_t *)&c->client, on_handle_closed);
	uv_close((uv_handle_t *)&c->server, on_handle_closed);
	uv_close((uv_handle_t *)&c->drain_timer, on_handle_closed);
	for (int i = 0; i < 2; i++) {
		uv_close((uv_handle_t *)&c->dir[i].release_timer, on_handle_closed);
		uv_close((uv_handle_t *)&c->dir[i].hold_timer, on_handle_closed);
	}
}

static void pump(struct dir *d);

static void on_release_timer(uv_timer_t *t)
{
	pump(container_of(t, struct dir, release_timer));
}

static void resume_reading(struct dir *d);

static void on_write(uv_write_t *req, int status)
{
	struct item *it = container_of(req, struct item, req);
	struct dir *d = it->dir;
	struct conn *c = d->conn;
	d->queued -= it->len;
	free(it);
	if (c->closing)
		return;
	if (status < 0) {
		logline("conn %" PRIu64 " %s write failed: %s", c->id, dir_name(d), uv_strerror(status));
		conn_close(c);
		return;
	}
	if (d->paused && d->queued < px.low_water)
		resume_reading(d);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	struct dir *d = container_of(req, struct dir, shut_req);
	struct conn *c = d->conn;
	(void)status;
	d->shut_done = true;
	if (!c->closing && c->dir[0].shut_done && c->dir[1].shut_done)
		conn_close(c);
}

/* Writes every item whose delay has passed, in order; a shutdown item half-closes dst. */
static void pump(struct dir *d)
{
	struct conn *c = d->conn;
	uint64_t now = uv_now(&px.loop);
	while (!c->closing && d->head != NULL) {
		struct item *it = d->head;
		if (it->release_ms > now) {
			uv_timer_start(&d->release_timer, on_release_timer, it->release_ms - now, 0);
			return;
		}
		d->head = it->next;
		if (d->head == NULL)
			d->tail = NULL;
		if (it->kind == ITEM_SHUTDOWN) {
			free(it);
			d->shut_sent = true;
			int r = uv_shutdown(&d->shut_req, d->dst, on_shutdown);
			if (r < 0)
				on_shutdown(&d->shut_req, r);
			return;
		}
		uv_buf_t b = uv_buf_init((char *)it->data, (unsigned)it->len);
		px.bytes_out += it->len;
		int r = uv_write(&it->req, d->dst, &b, 1, on_write);
		if (r < 0) {
			d->queued -= it->len;
			free(it);
			logline("conn %" PRIu64 " %s write failed: %s", c->id, dir_name(d), uv_strerror(r));
			conn_close(c);
			return;
		}
	}
}

static void enqueue(struct dir *d, enum item_kind kind, const uint8_t *p, size_t len, unsigned delay_ms)
{
	struct conn *c = d->conn;
	struct item *it = malloc(sizeof *it + len);
	if (it == NULL) {
		logline("conn %" PRIu64 " out of memory", c->id);
		conn_close(c);
		return;
	}
	memset(it, 0, sizeof *it);
	it->dir = d;
	it->kind = kind;
	it->len = len;
	if (len > 0)
		memcpy(it->data, p, len);
	/* A delayed chunk delays everything after it: a byte stream never overtakes itself. */
	uint64_t at = uv_now(&px.loop) + delay_ms;
	if (at < d->last_release_ms)
		at = d->last_release_ms;
	if (opt.rate > 0) {
		/* The link carries one chunk after the other at the rate. */
		double t = (double)at > d->link_free_ms ? (double)at : d->link_free_ms;
		d->link_free_ms = t + (double)len * 1000.0 / (double)opt.rate;
		at = (uint64_t)d->link_free_ms;
	}
	it->release_ms = d->last_release_ms = at;
	if (d->tail != NULL)
		d->tail->next = it;
	else
		d->head = it;
	d->tail = it;
	d->queued += len;
	pump(d);
}

static void release_held(struct dir *d)
{
	if (!d->holding)
		return;
	d->holding = false;
	uv_timer_stop(&d->hold_timer);
	enqueue(d, ITEM_DATA, d->held, d->held_len, 0);
	if (d->held_dup && !d->conn->closing)
		enqueue(d, ITEM_DATA, d->held, d->held_len, 0);
}

static void on_hold_timer(uv_timer_t *t)
{
	struct dir *d = container_of(t, struct dir, hold_timer);
	logline("conn %" PRIu64 " %s reordered chunk released after %d ms without a next one",
		d->conn->id, dir_name(d), HOLD_MS);
	release_held(d);
}

static void clear_faults(struct plan *p)
{
	p->drop = p->flip = p->dup = p->reorder = p->trunc = false;
	p->delay_ms = 0;
}

/* Draws the next chunk's fate. The same number of values is drawn whatever the options, so
 * chunk boundaries stay put when a fault is switched on or off. */
static void new_chunk(struct dir *d)
{
	struct plan *p = &d->ch;
	struct conn *c = d->conn;
	uint64_t r = rnd64(d);
	memset(p, 0, sizeof *p);
	p->start = d->off;
	p->size = opt.chunk ? opt.chunk : (size_t)(r % DEFAULT_CHUNK) + 1;
	p->drop = chance(d, opt.p_drop);
	p->flip = chance(d, opt.p_flip);
	p->flip_off = (size_t)(rnd64(d) % p->size);
	p->flip_bit = (unsigned)(rnd64(d) % 8);
	p->dup = chance(d, opt.p_dup);
	p->reorder = chance(d, opt.p_reorder) && !d->holding;
	p->trunc = chance(d, opt.p_truncate);
	p->trunc_off = (size_t)(rnd64(d) % p->size);
	r = rnd64(d);
	p->delay_ms = opt.delay_ms ? (unsigned)(r % ((uint64_t)opt.delay_ms + 1)) : 0;
	d->cbuf_len = 0;
	if (!px.faults_on) {
		clear_faults(p);
		return;
	}
	if (p->drop) {
		clear_faults(p);
		p->drop = true;
	}
	if (p->trunc)
		p->dup = p->reorder = false;
	const char *id = dir_name(d);
	if (p->drop) {
		px.counts[F_DROP]++;
		logline("conn %" PRIu64 " %s @%" PRIu64 " drop chunk of %zu bytes", c->id, id, p->start, p->size);
	}
	if (p->delay_ms > 0) {
		px.counts[F_DELAY]++;
		logline("conn %" PRIu64 " %s @%" PRIu64 " delay chunk of %zu bytes by %u ms", c->id, id,
			p->start, p->size, p->delay_ms);
	}
	if (p->dup) {
		px.counts[F_DUP]++;
		logline("conn %" PRIu64 " %s @%" PRIu64 " dup chunk of %zu bytes", c->id, id, p->start, p->size);
	}
	if (p->reorder) {
		px.counts[F_REORDER]++;
		logline("conn %" PRIu64 " %s @%" PRIu64 " reorder chunk of %zu bytes with the next", c->id,
			id, p->start, p->size);
	}
}

/* The current chunk is complete: send its copy, or hold it, or let a held one follow it. */
static void end_chunk(struct dir *d)
{
	struct plan *p = &d->ch;
	if (p->reorder) {
		memcpy(d->held, d->cbuf, d->cbuf_len);
		d->held_len = d->cbuf_len;
		d->held_dup = p->dup;
		d->holding = true;
		uv_timer_start(&d->hold_timer, on_hold_timer, HOLD_MS, 0);
	} else {
		if (p->dup)
			enqueue(d, ITEM_DATA, d->cbuf, d->cbuf_len, p->delay_ms);
		release_held(d);
	}
	p->pos = p->size;
}

/* Handles `len` bytes of the current chunk. Returns false when a truncation closed the
 * connection. */
static bool chunk_piece(struct dir *d, uint8_t *buf, size_t len)
{
	struct plan *p = &d->ch;
	struct conn *c = d->conn;
	if (p->drop)
		return true;
	if (p->trunc && p->trunc_off >= p->pos && p->trunc_off < p->pos + len) {
		size_t keep = p->trunc_off - p->pos;
		if (keep > 0)
			enqueue(d, ITEM_DATA, buf, keep, p->delay_ms);
		px.counts[F_TRUNCATE]++;
		logline("conn %" PRIu64 " %s @%" PRIu64 " truncate chunk of %zu bytes after %zu, closing",
			c->id, dir_name(d), p->start, p->size, p->trunc_off);
		return false;
	}
	if (p->flip && p->flip_off >= p->pos && p->flip_off < p->pos + len) {
		buf[p->flip_off - p->pos] ^= (uint8_t)(1u << p->flip_bit);
		px.counts[F_FLIP]++;
		logline("conn %" PRIu64 " %s @%" PRIu64 " flip bit %u of byte %" PRIu64, c->id, dir_name(d),
			p->start, p->flip_bit, p->start + p->flip_off);
	}
	if (p->dup || p->reorder) {
		memcpy(d->cbuf + d->cbuf_len, buf, len);
		d->cbuf_len += len;
	}
	if (!p->reorder)
		enqueue(d, ITEM_DATA, buf, len, p->delay_ms);
	return true;
}

/* No more input in this direction (end of stream or a cut): a partial chunk ends where the
 * stream ends, a held chunk goes out, then dst is half-closed. */
static void end_input(struct dir *d)
{
	if (d->ended)
		return;
	d->ended = true;
	uv_read_stop(d->src);
	if (d->ch.pos > 0 && d->ch.pos < d->ch.size) {
		d->ch.size = d->ch.pos;
		end_chunk(d);
	}
	release_held(d);
	if (!d->conn->closing)
		enqueue(d, ITEM_SHUTDOWN, NULL, 0, 0);
}

static void on_drain_timer(uv_timer_t *t)
{
	struct conn *c = container_of(t, struct conn, drain_timer);
	logline("conn %" PRIu64 " peers did not take the last bytes in %d ms", c->id, DRAIN_MS);
	conn_close(c);
}

/* Ends both directions now; whatever was already accepted is still delivered, then both
 * sockets close. */
static void conn_cut(struct conn *c)
{
	if (c->cutting || c->closing)
		return;
	c->cutting = true;
	/* A truncated chunk sends nothing after its cut point. */
	for (int i = 0; i < 2; i++) {
		struct plan *p = &c->dir[i].ch;
		if (p->pos < p->size && p->trunc)
			p->size = p->pos;
	}
	end_input(&c->dir[0]);
	end_input(&c->dir[1]);
	if (!c->closing)
		uv_timer_start(&c->drain_timer, on_drain_timer, DRAIN_MS, 0);
}

/* How many of `n` new bytes may pass before a cut; sets *cut when the cut falls inside.
 * (--cut-after and --cut-every exclude each other.) */
static size_t cut_limit(struct conn *c, size_t n, bool *cut)
{
	*cut = false;
	if (opt.cut_after > 0 && c->nin < opt.cut_after && n >= opt.cut_after - c->nin) {
		if (!px.faults_on)
			return n;
		*cut = true;
		px.counts[F_CUT]++;
		logline("conn %" PRIu64 " cut after %" PRIu64 " bytes on this connection", c->id, opt.cut_after);
		return (size_t)(opt.cut_after - c->nin);
	}
	if (opt.cut_every > 0 && n >= px.next_cut - px.total_in) {
		size_t lim = (size_t)(px.next_cut - px.total_in);
		if (!px.faults_on) {
			/* The cuts missed while the link behaved are skipped, not made up for. */
			while (px.next_cut <= px.total_in + n)
				px.next_cut += opt.cut_every;
			return n;
		}
		*cut = true;
		px.counts[F_CUT]++;
		logline("conn %" PRIu64 " cut at byte %" PRIu64 " of all traffic", c->id, px.next_cut);
		px.next_cut += opt.cut_every;
		return lim;
	}
	return n;
}

static void feed(struct dir *d, uint8_t *p, size_t n)
{
	struct conn *c = d->conn;
	bool cut;
	size_t lim = cut_limit(c, n, &cut);
	c->nin += lim;
	px.total_in += lim;
	px.bytes_in += lim;
	while (lim > 0 && !c->closing) {
		if (d->ch.pos == d->ch.size)
			new_chunk(d);
		size_t take = d->ch.size - d->ch.pos;
		if (take > lim)
			take = lim;
		bool go_on = chunk_piece(d, p, take);
		d->ch.pos += take;
		d->off += take;
		p += take;
		lim -= take;
		if (!go_on) {
			d->ch.size = d->ch.pos;
			conn_cut(c);
			return;
		}
		if (d->ch.pos == d->ch.size)
			end_chunk(d);
	}
	if (cut)
		conn_cut(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;
	struct dir *d = (uv_tcp_t *)h == &c->client ? &c->dir[0] : &c->dir[1];
	(void)suggested;
	*buf = uv_buf_init((char *)d->rbuf, sizeof d->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = s->data;
	struct dir *d = (uv_tcp_t *)s == &c->client ? &c->dir[0] : &c->dir[1];
	if (c->closing || d->ended || nread == 0)
		return;
	if (nread == UV_EOF) {
		end_input(d);
		return;
	}
	if (nread < 0) {
		logline("conn %" PRIu64 " %s read failed: %s", c->id, dir_name(d), uv_strerror((int)nread));
		conn_close(c);
		return;
	}
	feed(d, (uint8_t *)buf->base, (size_t)nread);
	if (!c->closing && !d->ended && d->queued > px.high_water) {
		uv_read_stop(s);
		d->paused = true;
	}
}

static void resume_reading(struct dir *d)
{
	struct conn *c = d->conn;
	d->paused = false;
	if (c->closing || c->cutting || d->ended)
		return;
	int r = uv_read_start(d->src, on_alloc, on_read);
	if (r < 0) {
		logline("conn %" PRIu64 " cannot read: %s", c->id, uv_strerror(r));
		conn_close(c);
	}
}

static void on_connect(uv_connect_t *req, int status)
{
	struct conn *c = container_of(req, struct conn, connect_req);
	if (c->closing)
		return;
	if (status < 0) {
		logline("conn %" PRIu64 " cannot connect to %s: %s", c->id, opt.to_s, uv_strerror(status));
		conn_close(c);
		return;
	}
	uv_tcp_nodelay(&c->server, 1);
	resume_reading(&c->dir[0]);
	resume_reading(&c->dir[1]);
}

static void free_handle(uv_handle_t *h)
{
	free(h);
}

static void on_connection(uv_stream_t *listener, int status)
{
	struct conn *c = NULL;
	int r;
	if (status < 0) {
		logline("accept failed: %s", uv_strerror(status));
		return;
	}
	c = calloc(1, sizeof *c);
	if (c == NULL)
		goto fail;
	c->id = ++px.nconns;
	uv_tcp_init(&px.loop, &c->client);
	uv_tcp_init_ex(&px.loop, &c->server, opt.to_addr.ss_family);
	if (opt.rate > 0) {
		/* A slow link holds little: what it cannot carry waits in the sender's socket. */
		int rb = (int)px.high_water;
		(void)uv_recv_buffer_size((uv_handle_t *)&c->server, &rb);
	}
	uv_timer_init(&px.loop, &c->drain_timer);
	c->client.data = c->server.data = c->drain_timer.data = c;
	for (int i = 0; i < 2; i++) {
		struct dir *d = &c->dir[i];
		d->conn = c;
		d->idx = i;
		d->src = (uv_stream_t *)(i == 0 ? &c->client : &c->server);
		d->dst = (uv_stream_t *)(i == 0 ? &c->server : &c->client);
		d->rng = mix64(opt.seed + mix64(c->id * 2 + (uint64_t)i));
		uv_timer_init(&px.loop, &d->release_timer);
		uv_timer_init(&px.loop, &d->hold_timer);
		d->release_timer.data = d->hold_timer.data = c;
	}
	c->nopen = NHANDLES;
	c->next = px.conns;
	if (px.conns != NULL)
		px.conns->prev = c;
	px.conns = c;
	if ((r = uv_accept(listener, (uv_stream_t *)&c->client)) < 0) {
		logline("accept failed: %s", uv_strerror(r));
		conn_close(c);
		return;
	}
	size_t max = opt.chunk ? opt.chunk : DEFAULT_CHUNK;
	for (int i = 0; i < 2; i++) {
		c->dir[i].cbuf = malloc(max);
		c->dir[i].held = malloc(max);
		if (c->dir[i].cbuf == NULL || c->dir[i].held == NULL) {
			logline("conn %" PRIu64 " out of memory", c->id);
			conn_close(c);
			return;
		}
	}
	struct sockaddr_storage peer;
	int peer_len = sizeof peer;
	char peer_s[80] = "?";
	if (uv_tcp_getpeername(&c->client, (struct sockaddr *)&peer, &peer_len) == 0)
		fmt_addr((struct sockaddr *)&peer, peer_s, sizeof peer_s);
	logline("conn %" PRIu64 " from %s", c->id, peer_s);
	uv_tcp_nodelay(&c->client, 1);
	r = uv_tcp_connect(&c->connect_req, &c->server, (const struct sockaddr *)&opt.to_addr, on_connect);
	if (r < 0) {
		logline("conn %" PRIu64 " cannot connect to %s: %s", c->id, opt.to_s, uv_strerror(r));
		conn_close(c);
	}
	return;
fail:
	/* Accept and drop it, so that the listener does not report it again and again. */
	logline("out of memory accepting a connection");
	uv_tcp_t *t = malloc(sizeof *t);
	if (t != NULL) {
		uv_tcp_init(&px.loop, t);
		(void)uv_accept(listener, (uv_stream_t *)t);
		uv_close((uv_handle_t *)t, free_handle);
	}
}

/* --- signals ---------------------------------------------------------------------------- */

static void on_usr1(uv_signal_t *s, int signum)
{
	(void)s;
	(void)signum;
	px.faults_on = !px.faults_on;
	logline("faults %s (SIGUSR1)", px.faults_on ? "on" : "off");
	if (px.faults_on)
		return;
	/* The link behaves from this byte on: chunks in progress lose their faults and held
	 * chunks go out now. */
	for (struct conn *c = px.conns; c != NULL; c = c->next) {
		for (int i = 0; i < 2 && !c->closing; i++) {
			struct dir *d = &c->dir[i];
			if (d->ch.pos < d->ch.size && d->ch.reorder)
				enqueue(d, ITEM_DATA, d->cbuf, d->cbuf_len, 0);
			clear_faults(&d->ch);
			release_held(d);
		}
	}
}

static void on_stop(uv_signal_t *s, int signum)
{
	(void)s;
	if (px.stopping)
		return;
	px.stopping = true;
	logline("stopping (%s)", signum == SIGTERM ? "SIGTERM" : "SIGINT");
	uv_close((uv_handle_t *)&px.listener, NULL);
	while (px.conns != NULL)
		conn_close(px.conns);
	uv_close((uv_handle_t *)&px.sig_usr1, NULL);
	uv_close((uv_handle_t *)&px.sig_term, NULL);
	uv_close((uv_handle_t *)&px.sig_int, NULL);
}

/* --- main -------------------------------------------------------------------------------- */

static int parse_args(int argc, char **argv)
{
	bool seeded = false;
	uint64_t v;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		bool ok = true;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(usage, stdout);
			exit(0);
		}
		if (val == NULL || strncmp(a, "--", 2) != 0) {
			fprintf(stderr, "zila_proxy: unknown option or missing value '%s'\n%s", a, usage);
			return 2;
		}
		i++;
		if (strcmp(a, "--listen") == 0) {
			opt.listen_s = val;
			ok = parse_addr(val, true, &opt.listen_addr);
		} else if (strcmp(a, "--to") == 0) {
			opt.to_s = val;
			ok = parse_addr(val, false, &opt.to_addr);
		} else if (strcmp(a, "--seed") == 0) {
			ok = parse_u64(val, 0, UINT64_MAX, &opt.seed);
			seeded = true;
		} else if (strcmp(a, "--drop") == 0) {
			ok = parse_prob(val, &opt.p_drop);
		} else if (strcmp(a, "--flip") == 0) {
			ok = parse_prob(val, &opt.p_flip);
		} else if (strcmp(a, "--dup") == 0) {
			ok = parse_prob(val, &opt.p_dup);
		} else if (strcmp(a, "--reorder") == 0) {
			ok = parse_prob(val, &opt.p_reorder);
		} else if (strcmp(a, "--truncate") == 0) {
			ok = parse_prob(val, &opt.p_truncate);
		} else if (strcmp(a, "--delay") == 0) {
			ok = parse_u64(val, 0, 600000, &v);
			opt.delay_ms = (unsigned)v;
		} else if (strcmp(a, "--rate") == 0) {
			ok = parse_u64(val, 1, UINT64_MAX / 2, &opt.rate);
		} else if (strcmp(a, "--cut-after") == 0) {
			ok = parse_u64(val, 1, UINT64_MAX / 2, &opt.cut_after);
		} else if (strcmp(a, "--cut-every") == 0) {
			ok = parse_u64(val, 1, UINT64_MAX / 2, &opt.cut_every);
		} else if (strcmp(a, "--chunk") == 0) {
			ok = parse_u64(val, 1, MAX_CHUNK, &v);
			opt.chunk = (size_t)v;
		} else if (strcmp(a, "--log") == 0) {
			opt.log_path = val;
		} else {
			fprintf(stderr, "zila_proxy: unknown option '%s'\n%s", a, usage);
			return 2;
		}
		if (!ok) {
			fprintf(stderr, "zila_proxy: bad value '%s' for %s\n", val, a);
			return 2;
		}
	}
	if (opt.listen_s == NULL || opt.to_s == NULL) {
		fprintf(stderr, "zila_proxy: --listen and --to are required\n%s", usage);
		return 2;
	}
	if (opt.cut_after > 0 && opt.cut_every > 0) {
		fprintf(stderr, "zila_proxy: --cut-after and --cut-every exclude each other\n");
		return 2;
	}
	if (!seeded)
		opt.seed = mix64((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32));
	return 0;
}

int main(int argc, char **argv)
{
	int r = parse_args(argc, argv);
	char where[80];
	if (r != 0)
		return r;
	px.log = stderr;
	if (opt.log_path != NULL && (px.log = fopen(opt.log_path, "a")) == NULL) {
		fprintf(stderr, "zila_proxy: cannot open log '%s': %s\n", opt.log_path, strerror(errno));
		return 1;
	}
	setvbuf(px.log, NULL, _IOLBF, 0);
	/* A peer that goes away mid-write must be an error code, not a dead proxy. */
	signal(SIGPIPE, SIG_IGN);
	px.faults_on = true;
	px.next_cut = opt.cut_every;
	if ((r = uv_loop_init(&px.loop)) < 0) {
		fprintf(stderr, "zila_proxy: cannot start the event loop: %s\n", uv_strerror(r));
		return 1;
	}
	px.high_water = HIGH_WATER;
	px.low_water = LOW_WATER;
	if (opt.rate > 0) {
		/* About a quarter second of the link queued here, as a modem would. */
		px.high_water = opt.rate / 4 > 4096 ? (size_t)(opt.rate / 4) : 4096;
		px.high_water = px.high_water < HIGH_WATER ? px.high_water : HIGH_WATER;
		px.low_water = px.high_water / 4;
	}
	uv_tcp_init_ex(&px.loop, &px.listener, opt.listen_addr.ss_family);
	if (opt.rate > 0) {
		int rb = (int)px.high_water;
		(void)uv_recv_buffer_size((uv_handle_t *)&px.listener, &rb);
	}
	if ((r = uv_tcp_bind(&px.listener, (const struct sockaddr *)&opt.listen_addr, 0)) < 0 ||
	    (r = uv_listen((uv_stream_t *)&px.listener, 128, on_connection)) < 0) {
		fprintf(stderr, "zila_proxy: cannot listen on '%s': %s\n", opt.listen_s, uv_strerror(r));
		return 1;
	}
	uv_signal_init(&px.loop, &px.sig_usr1);
	uv_signal_init(&px.loop, &px.sig_term);
	uv_signal_init(&px.loop, &px.sig_int);
	uv_signal_start(&px.sig_usr1, on_usr1, SIGUSR1);
	uv_signal_start(&px.sig_term, on_stop, SIGTERM);
	uv_signal_start(&px.sig_int, on_stop, SIGINT);
	struct sockaddr_storage bound;
	int bound_len = sizeof bound;
	uv_tcp_getsockname(&px.listener, (struct sockaddr *)&bound, &bound_len);
	fmt_addr((struct sockaddr *)&bound, where, sizeof where);
	logline("zila_proxy: listening on %s, forwarding to %s, seed %" PRIu64, where, opt.to_s, opt.seed);
	uv_run(&px.loop, UV_RUN_DEFAULT);
	r = uv_loop_close(&px.loop);
	fprintf(px.log, "faults:");
	for (int i = 0; i < NFAULTS; i++)
		fprintf(px.log, " %s=%" PRIu64, fault_names[i], px.counts[i]);
	fprintf(px.log, "\nzila_proxy: %" PRIu64 " connections, %" PRIu64 " bytes in, %" PRIu64 " bytes out\n",
		px.nconns, px.bytes_in, px.bytes_out);
	if (r != 0)
		fprintf(stderr, "zila_proxy: handles left open at exit: %s\n", uv_strerror(r));
	if (px.log != stderr && fclose(px.log) != 0) {
		fprintf(stderr, "zila_proxy: cannot write log '%s': %s\n", opt.log_path, strerror(errno));
		return 1;
	}
	return r != 0;
}
