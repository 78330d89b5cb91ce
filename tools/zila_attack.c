/* zila_attack: a hostile peer for reliability tests. It floods a daemon with handshakes, holds
 * slow connections, sends maximum-size and oversize frames, replays captured bytes, or uses an
 * enrolled replica to open valid sessions that do nothing useful; then prints what it saw. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "zila/channel.h"
#include "zila/daemon.h"
#include "zila/err.h"
#include "zila/noise.h"
#include "zila/session.h"
#include "zila/store.h"
#include "zila/trust.h"

static const char usage[] =
	"usage: zila_attack --to IPV4:PORT [--from IPV4 [--spread N]] [--seconds S] [--conns N]\n"
	"                   [--rate N] MODE [MODE OPTIONS]\n"
	"\n"
	"Runs for S seconds (default 10) with N connections at a time (default 16), opening at\n"
	"most --rate connections per second (default 100), from --from (default any) or from N\n"
	"consecutive addresses starting there (--spread). Modes:\n"
	"  garbage            each connection sends 1..512 random bytes, then waits to be closed\n"
	"  msg1 [--root HEX]  each sends a well-formed first handshake message (random key);\n"
	"                     with --root, a real one under the psk an outsider derives from the\n"
	"                     public root key (as zila did before organisation secrets), its\n"
	"                     version byte 1 and the current one in turn\n"
	"  loris [--every MS] each sends one byte every MS ms (default 2000) until closed\n"
	"  frame --size N     each sends a frame header announcing N bytes, then N random bytes\n"
	"                     (64 KiB when N is over the 1 MiB frame limit)\n"
	"  replay --file F    each sends the bytes of F (a captured handshake), then waits\n"
	"  member --dir DIR --what hello|idle|bigframe|oversize\n"
	"                     as the enrolled replica DIR: completes the handshake, then sends its\n"
	"                     Hello twice (hello), sends nothing (idle, N connections held), sends\n"
	"                     a 1 MiB frame of noise (bigframe) or announces a 2 GiB frame\n"
	"                     (oversize); again and again\n"
	"  beacons (--root HEX | --secret-file F) --count N [--port P] [--spoof IPV4]\n"
	"                     forges LAN beacons with the organisation's public root key (an\n"
	"                     outsider's knowledge, keyed as zila did before organisation secrets)\n"
	"                     or with its secret, read from F (an enrolled laptop's org.secret:\n"
	"                     that laptop's own tool): N made-up\n"
	"                     devices, each naming TCP port P+i\n"
	"                     (default 20000), sent by UDP to --to once a second each; --spoof\n"
	"                     sends them with that source address (a raw socket: root)\n"
	"Prints one summary line: connections opened, closed by the peer, refused, still open,\n"
	"how long they lived, bytes sent, the most bytes one connection received. Exit 0 when it ran, 1 on failure, 2 on misuse.\n";

enum mode { M_GARBAGE, M_MSG1, M_LORIS, M_FRAME, M_REPLAY, M_MEMBER, M_BEACONS };
enum what { W_HELLO, W_IDLE, W_BIGFRAME, W_OVERSIZE };

static struct {
	struct sockaddr_in to;
	struct in_addr from;
	bool has_from;
	unsigned spread, seconds, conns, rate, every_ms;
	uint64_t size, announce; /* frame: body bytes sent, length announced */
	enum mode mode;
	enum what what;
	const char *dir;
	uint8_t root[32], secret[32];
	bool has_secret;
	unsigned count, port;
	struct in_addr spoof;
	bool has_spoof;
	uint8_t *file;
	size_t file_len;
} opt = { .spread = 1, .seconds = 10, .conns = 16, .rate = 100, .every_ms = 2000, .port = 20000 };

static struct {
	uint64_t opened, closed, refused, bytes, life_sum_ms, life_max_ms, established, sessions_refused, rx_max;
	unsigned next_from;
} st;

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int die_usage(const char *what, const char *arg)
{
	if (arg != NULL && arg[0] != '\0')
		fprintf(stderr, "zila_attack: %s '%s'\n%s", what, arg, usage);
	else
		fprintf(stderr, "zila_attack: %s\n%s", what, usage);
	return 2;
}

static bool parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || s[0] == '-' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* A non-blocking TCP connection to opt.to from the next source address; -1 on failure. */
static int open_conn(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	if (opt.has_from) {
		struct sockaddr_in a;
		memset(&a, 0, sizeof(a));
		a.sin_family = AF_INET;
		a.sin_addr.s_addr = htonl(ntohl(opt.from.s_addr) + st.next_from++ % opt.spread);
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
			close(fd);
			return -1;
		}
	}
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&opt.to, sizeof(opt.to)) != 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	st.opened++;
	return fd;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* What an outsider who holds the public root key makes of it: the members' psk as zila
 * derived it before organisation secrets, H_32("zila-org-psk-v1" || root). */
static void outsider_psk(uint8_t psk[32])
{
	crypto_generichash_state h;
	crypto_generichash_init(&h, NULL, 0, 32);
	crypto_generichash_update(&h, (const uint8_t *)"zila-org-psk-v1", 15);
	crypto_generichash_update(&h, opt.root, 32);
	crypto_generichash_final(&h, psk, 32);
}

/* A real first handshake message of a member under the outsider's psk, with a random
 * device key; the version byte alternates between 1 (before organisation secrets) and the
 * current one. n bytes at p; 0 on failure. */
static size_t outsider_msg1(uint8_t *p, size_t n)
{
	static unsigned k;
	uint8_t psk[1][32], pk[32], sk[64], x_sk[32], pro[64];
	uint8_t head[2] = { (uint8_t)(k++ % 2 ? ZILA_CHANNEL_VERSION : 1), ZILA_CHANNEL_MEMBER };
	struct zila_noise_hs hs;
	struct zila_buf m;
	size_t len = 0;
	outsider_psk(psk[0]);
	crypto_sign_keypair(pk, sk);
	(void)!crypto_sign_ed25519_sk_to_curve25519(x_sk, sk);
	memcpy(pro, "zila-channel-v1", 15);
	memcpy(pro + 15, head, 2);
	zila_buf_init(&m, 256);
	if (zila_noise_init(&hs, true, ZILA_NOISE_PSK0, (const uint8_t(*)[32])psk, 1, x_sk, pro, 17) == 0 &&
	    zila_noise_write(&hs, NULL, 0, &m) == 0 && 4 + 2 + m.len <= n) {
		put_be32(p, (uint32_t)(2 + m.len));
		memcpy(p + 4, head, 2);
		memcpy(p + 6, m.p, m.len);
		len = 6 + m.len;
	}
	zila_noise_release(&hs);
	zila_buf_release(&m);
	return len;
}

/* --- raw modes: many connections driven by poll ------------------------------------------- */

struct slot {
	int fd;
	uint64_t opened_ms, next_ms;
	uint8_t *pay;
	size_t pay_len, off, rx;
	bool connected;
};

/* What a raw connection sends first (the whole of it, except for loris and frame). */
static void make_payload(struct slot *s)
{
	free(s->pay);
	s->pay = NULL;
	s->pay_len = s->off = 0;
	switch (opt.mode) {
	case M_GARBAGE:
		s->pay_len = 1 + randombytes_uniform(512);
		break;
	case M_MSG1:
		s->pay_len = 4 + 2 + 32 + 16; /* version, mode MEMBER, e, empty payload's tag */
		break;
	case M_LORIS:
		s->pay_len = 4 + 2 + 32 + 16; /* the same, one byte at a time */
		break;
	case M_FRAME:
		s->pay_len = 4 + (size_t)opt.size;
		break;
	case M_REPLAY:
		s->pay_len = opt.file_len;
		break;
	case M_MEMBER:
	case M_BEACONS:
		return;
	}
	if ((s->pay = malloc(s->pay_len)) == NULL) {
		s->pay_len = 0;
		return;
	}
	if (opt.mode == M_REPLAY) {
		memcpy(s->pay, opt.file, opt.file_len);
		return;
	}
	randombytes_buf(s->pay, s->pay_len);
	if (opt.mode == M_MSG1 && !sodium_is_zero(opt.root, 32)) {
		s->pay_len = outsider_msg1(s->pay, s->pay_len);
	} else if (opt.mode == M_MSG1 || opt.mode == M_LORIS) {
		put_be32(s->pay, 2 + 32 + 16);
		s->pay[4] = ZILA_CHANNEL_VERSION;
		s->pay[5] = ZILA_CHANNEL_MEMBER;
	} else if (opt.mode == M_FRAME) {
		put_be32(s->pay, (uint32_t)opt.announce);
	}
}

static void slot_close(struct slot *s, bool by_peer)
{
	uint64_t life = now_ms() - s->opened_ms;
	if (by_peer) {
		if (s->connected) {
			st.closed++;
			st.life_sum_ms += life;
			if (life > st.life_max_ms)
				st.life_max_ms = life;
		} else {
			st.refused++;
		}
	}
	close(s->fd);
	s->fd = -1;
}

static int run_raw(void)
{
	struct slot *slots = calloc(opt.conns, sizeof(*slots));
	struct pollfd *pfd = calloc(opt.conns, sizeof(*pfd));
	uint64_t end = now_ms() + (uint64_t)opt.seconds * 1000, next_open = now_ms();
	uint64_t gap = 1000 / opt.rate ? 1000 / opt.rate : 1;
	uint8_t rbuf[4096];
	if (slots == NULL || pfd == NULL) {
		fprintf(stderr, "zila_attack: out of memory\n");
		free(slots);
		free(pfd);
		return 1;
	}
	for (unsigned i = 0; i < opt.conns; i++)
		slots[i].fd = -1;
	while (now_ms() < end) {
		uint64_t now = now_ms();
		for (unsigned i = 0; i < opt.conns; i++) {
			struct slot *s = &slots[i];
			if (s->fd < 0 && now >= next_open) {
				make_payload(s);
				s->connected = false;
				s->rx = 0;
				s->opened_ms = s->next_ms = now;
				if ((s->fd = open_conn()) < 0)
					st.refused++;
				next_open = now + gap;
			}
			pfd[i].fd = s->fd;
			pfd[i].events = POLLIN;
			if (s->fd >= 0 && s->off < s->pay_len && now >= s->next_ms)
				pfd[i].events |= POLLOUT;
		}
		(void)poll(pfd, opt.conns, 20);
		now = now_ms();
		for (unsigned i = 0; i < opt.conns; i++) {
			struct slot *s = &slots[i];
			if (s->fd < 0)
				continue;
			if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) {
				ssize_t n = recv(s->fd, rbuf, sizeof(rbuf), 0);
				if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
					if (n < 0 && !s->connected && errno == ECONNRESET)
						s->connected = true; /* accepted, then reset */
					slot_close(s, true);
					continue;
				}
				s->connected = true;
				if (n > 0 && (s->rx += (size_t)n) > st.rx_max)
					st.rx_max = s->rx;
			}
			if ((pfd[i].revents & POLLOUT) && s->off < s->pay_len) {
				size_t want = s->pay_len - s->off;
				if (opt.mode == M_LORIS)
					want = 1;
				ssize_t n = send(s->fd, s->pay + s->off, want, MSG_NOSIGNAL);
				if (n > 0) {
					s->connected = true;
					s->off += (size_t)n;
					st.bytes += (uint64_t)n;
					if (opt.mode == M_LORIS)
						s->next_ms = now + opt.every_ms;
				} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
					slot_close(s, true);
				}
			}
		}
	}
	unsigned still = 0;
	for (unsigned i = 0; i < opt.conns; i++) {
		if (slots[i].fd >= 0) {
			still++;
			slot_close(&slots[i], false);
		}
		free(slots[i].pay);
	}
	static const char *names[] = { "garbage", "msg1", "loris", "frame", "replay", "member" };
	printf("zila_attack %s: opened=%" PRIu64 " closed_by_peer=%" PRIu64 " refused=%" PRIu64 " open_at_end=%u"
	       " life_avg_ms=%" PRIu64 " life_max_ms=%" PRIu64 " bytes_sent=%" PRIu64 " most_received=%" PRIu64 "\n",
	       names[opt.mode], st.opened, st.closed, st.refused, still, st.closed ? st.life_sum_ms / st.closed : 0,
	       st.life_max_ms, st.bytes, st.rx_max);
	free(slots);
	free(pfd);
	return 0;
}

/* --- member mode: an enrolled replica, one blocking connection at a time ----------------- */

struct member {
	struct zila_store *store;
	struct zila_trust_ctx trust;
	uint8_t cert[ZILA_CERT_LEN], issuer[ZILA_CERT_LEN], root[32];
	bool has_issuer;
};

struct mconn {
	int fd;
	struct zila_channel ch;
	struct zila_buf out, msg;
	uint64_t opened_ms;
};

static int member_open(struct member *m, struct zila_error *err)
{
	struct zila_cert c, issuer;
	struct zila_buf b;
	int r;
	memset(m, 0, sizeof(*m));
	if ((r = zila_store_open(&m->store, opt.dir, err)) != 0)
		return r;
	zila_trust_install(m->store, &m->trust);
	if (zila_trust_org(m->store, m->root) != 0 ||
	    zila_trust_cert_get(m->store, zila_store_device_pk(m->store), &c) != 0)
		return zila_error_set(err, ZILA_ENOTENROLLED, "'%s' is not an enrolled replica", opt.dir);
	zila_buf_init(&b, ZILA_CERT_LEN);
	if ((r = zila_cert_encode(&c, &b)) == 0)
		memcpy(m->cert, b.p, ZILA_CERT_LEN);
	zila_buf_reset(&b);
	if (r == 0 && memcmp(c.issuer_pk, m->root, 32) != 0 && zila_trust_cert_get(m->store, c.issuer_pk, &issuer) == 0 &&
	    zila_cert_encode(&issuer, &b) == 0) {
		memcpy(m->issuer, b.p, ZILA_CERT_LEN);
		m->has_issuer = true;
	}
	zila_buf_release(&b);
	return r;
}

static int send_all(int fd, struct zila_buf *b)
{
	size_t off = 0;
	while (off < b->len) {
		ssize_t n = send(fd, b->p + off, b->len - off, MSG_NOSIGNAL);
		if (n > 0) {
			off += (size_t)n;
			st.bytes += (uint64_t)n;
		} else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			if (poll(&p, 1, 5000) <= 0)
				return -1;
		} else {
			return -1;
		}
	}
	zila_buf_reset(b);
	return 0;
}

/* Reads until the channel yields an event other than NONE; returns the event, or -1 when the
 * peer closed or failed the connection, -2 after timeout_ms without one. */
static int member_wait(struct mconn *c, int timeout_ms)
{
	uint8_t rbuf[16384];
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		uint64_t now = now_ms();
		if (now >= end)
			return -2;
		if (poll(&p, 1, (int)(end - now)) <= 0)
			continue;
		ssize_t n = recv(c->fd, rbuf, sizeof(rbuf), 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0)
			return -1;
		size_t off = 0;
		int got = ZILA_CHANNEL_NONE;
		while (off < (size_t)n) {
			size_t used = 0;
			enum zila_channel_event ev = ZILA_CHANNEL_NONE;
			zila_buf_reset(&c->msg);
			if (zila_channel_feed(&c->ch, rbuf + off, (size_t)n - off, &used, &c->out, &c->msg, &ev) != 0)
				return -1;
			off += used;
			if (ev != ZILA_CHANNEL_NONE && got == ZILA_CHANNEL_NONE)
				got = (int)ev; /* the rest of rbuf (a close) is read on the next call, or lost */
			if (used == 0)
				break;
		}
		if (c->out.len > 0 && send_all(c->fd, &c->out) != 0)
			return -1;
		if (got != ZILA_CHANNEL_NONE)
			return got;
	}
}

static void mconn_release(struct mconn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	zila_channel_release(&c->ch);
	zila_buf_release(&c->out);
	zila_buf_release(&c->msg);
}

/* Connects and completes the handshake: 0, or -1 (counted as refused). */
static int member_connect(struct member *m, struct mconn *c)
{
	struct zila_channel_config cfg;
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	zila_buf_init(&c->out, 8u << 20);
	zila_buf_init(&c->msg, ZILA_CHANNEL_MSG_MAX);
	memset(&cfg, 0, sizeof(cfg));
	cfg.initiator = true;
	cfg.mode = ZILA_CHANNEL_MEMBER;
	cfg.sign_sk = zila_store_device_sk(m->store);
	cfg.cert = zila_view_make(m->cert, ZILA_CERT_LEN);
	if (m->has_issuer)
		cfg.issuer_cert = zila_view_make(m->issuer, ZILA_CERT_LEN);
	uint8_t secret[ZILA_ORG_SECRET_LEN];
	if (zila_trust_org_secret(m->store, secret) != 0)
		return -1;
	zila_org_psk(secret, cfg.psk);
	sodium_memzero(secret, sizeof(secret));
	cfg.check = zila_channel_check_member;
	cfg.check_ctx = &m->trust;
	int r = zila_channel_init(&c->ch, &cfg);
	sodium_memzero(cfg.psk, sizeof(cfg.psk));
	if (r != 0)
		return -1;
	c->opened_ms = now_ms();
	if ((c->fd = open_conn()) < 0)
		return -1;
	struct pollfd p = { .fd = c->fd, .events = POLLOUT };
	if (poll(&p, 1, 5000) <= 0)
		return -1;
	if (zila_channel_start(&c->ch, &c->out) != 0 || send_all(c->fd, &c->out) != 0)
		return -1;
	if (member_wait(c, 10000) != ZILA_CHANNEL_ESTABLISHED)
		return -1;
	st.established++;
	return 0;
}

static int capture_send(void *ctx, const uint8_t *p, size_t len)
{
	struct zila_buf *b = ctx;
	zila_buf_reset(b);
	return zila_buf_put(b, p, len);
}

static void note_close(struct mconn *c)
{
	uint64_t life = now_ms() - c->opened_ms;
	st.closed++;
	st.life_sum_ms += life;
	if (life > st.life_max_ms)
		st.life_max_ms = life;
}

static int run_member(void)
{
	struct member m;
	struct zila_error err;
	struct zila_buf hello;
	uint64_t end = now_ms() + (uint64_t)opt.seconds * 1000;
	int rc = 1;
	zila_error_clear(&err);
	zila_buf_init(&hello, ZILA_CHANNEL_MSG_MAX);
	int r = member_open(&m, &err);
	if (r != 0) {
		fprintf(stderr, "zila_attack: %s\n", zila_error_msg(&err, r));
		goto out;
	}
	/* Our Hello, as the session makes it. */
	struct zila_session *sess = NULL;
	struct zila_session_config sc;
	memset(&sc, 0, sizeof(sc));
	sc.store = m.store;
	sc.trust = &m.trust;
	sc.send = capture_send;
	sc.send_ctx = &hello;
	if ((r = zila_session_new(&sess, &sc, &err)) != 0 || (r = zila_session_start(sess, &err)) != 0) {
		fprintf(stderr, "zila_attack: cannot make a Hello: %s\n", zila_error_msg(&err, r));
		zila_session_free(sess);
		goto out;
	}
	zila_session_free(sess);
	if (opt.what == W_IDLE) {
		/* N sessions opened and held without a word. */
		struct mconn *cs = calloc(opt.conns, sizeof(*cs));
		unsigned nopen = 0;
		if (cs == NULL)
			goto out;
		for (unsigned i = 0; i < opt.conns && now_ms() < end; i++) {
			if (member_connect(&m, &cs[i]) != 0) {
				st.refused++;
				mconn_release(&cs[i]);
				continue;
			}
			nopen++;
		}
		while (now_ms() < end && nopen > 0) {
			for (unsigned i = 0; i < opt.conns; i++) {
				if (cs[i].fd < 0)
					continue;
				if (member_wait(&cs[i], 50) == -1) {
					note_close(&cs[i]);
					mconn_release(&cs[i]);
					nopen--;
				}
			}
		}
		for (unsigned i = 0; i < opt.conns; i++)
			if (cs[i].fd >= 0)
				mconn_release(&cs[i]);
		printf("zila_attack member idle: opened=%" PRIu64 " established=%" PRIu64 " refused=%" PRIu64
		       " closed_by_peer=%" PRIu64 " open_at_end=%u life_avg_ms=%" PRIu64 " life_max_ms=%" PRIu64 "\n",
		       st.opened, st.established, st.refused, st.closed, nopen, st.closed ? st.life_sum_ms / st.closed : 0,
		       st.life_max_ms);
		free(cs);
		rc = 0;
		goto out;
	}
	uint64_t answered = 0;
	while (now_ms() < end) {
		struct mconn c;
		if (member_connect(&m, &c) != 0) {
			st.refused++;
			mconn_release(&c);
			/* Refused (rate limit or cap): try again a little later. */
			usleep(100 * 1000);
			continue;
		}
		uint8_t hdr[4];
		struct zila_buf raw;
		zila_buf_init(&raw, 4 + ZILA_FRAME_MAX);
		switch (opt.what) {
		case W_HELLO:
			/* Hello, the peer's Hello, Hello again: a protocol violation. */
			if (zila_channel_send(&c.ch, hello.p, hello.len, &c.out) == 0 && send_all(c.fd, &c.out) == 0 &&
			    member_wait(&c, 10000) == ZILA_CHANNEL_MESSAGE) {
				answered++;
				if (zila_channel_send(&c.ch, hello.p, hello.len, &c.out) == 0)
					(void)send_all(c.fd, &c.out);
			}
			break;
		case W_BIGFRAME:
			put_be32(hdr, ZILA_FRAME_MAX);
			if (zila_buf_put(&raw, hdr, 4) == 0 && zila_buf_reserve(&raw, ZILA_FRAME_MAX) == 0) {
				randombytes_buf(raw.p + raw.len, ZILA_FRAME_MAX);
				raw.len += ZILA_FRAME_MAX;
				(void)send_all(c.fd, &raw);
			}
			break;
		case W_OVERSIZE:
			put_be32(hdr, 0x80000000u);
			if (zila_buf_put(&raw, hdr, 4) == 0)
				(void)send_all(c.fd, &raw);
			break;
		case W_IDLE:
			break;
		}
		zila_buf_release(&raw);
		/* Until the daemon closes: the session is done, refused, or failed. */
		while (member_wait(&c, 30000) >= 0)
			;
		note_close(&c);
		mconn_release(&c);
	}
	static const char *whats[] = { "hello", "idle", "bigframe", "oversize" };
	printf("zila_attack member %s: opened=%" PRIu64 " established=%" PRIu64 " refused=%" PRIu64
	       " answered=%" PRIu64 " closed_by_peer=%" PRIu64 " life_avg_ms=%" PRIu64 " life_max_ms=%" PRIu64
	       " bytes_sent=%" PRIu64 "\n",
	       whats[opt.what], st.opened, st.established, st.refused, answered, st.closed,
	       st.closed ? st.life_sum_ms / st.closed : 0, st.life_max_ms, st.bytes);
	rc = 0;
out:
	zila_buf_release(&hello);
	zila_store_free(m.store);
	return rc;
}

/* --- arguments ------------------------------------------------------------------------------ */

static int read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t buf[65536];
	size_t n;
	if (f == NULL) {
		fprintf(stderr, "zila_attack: cannot open '%s': %s\n", path, strerror(errno));
		return 1;
	}
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	if (n == 0 || (opt.file = malloc(n)) == NULL) {
		fprintf(stderr, "zila_attack: '%s' is empty or too big\n", path);
		return 1;
	}
	memcpy(opt.file, buf, n);
	opt.file_len = n;
	return 0;
}

/* Forged beacons: made-up devices (their keys start 0xff, so every member's key is lower
 * and each dials them) at the source address, naming ports nobody listens on. */
static int run_beacons(void)
{
	uint8_t key[32], pkt[ZILA_BEACON_LEN], salt[8];
	uint64_t sent = 0, t_end = now_ms() + (uint64_t)opt.seconds * 1000;
	/* --spoof: an IPv4 header of our own (the kernel fills in its length and checksum) and a
	 * UDP header without checksum before each beacon. */
	uint8_t raw[20 + 8 + ZILA_BEACON_LEN];
	int fd = opt.has_spoof ? socket(AF_INET, SOCK_RAW, IPPROTO_RAW) : socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("zila_attack: socket");
		return 1;
	}
	memset(raw, 0, sizeof(raw));
	raw[0] = 0x45;
	raw[8] = 64;
	raw[9] = IPPROTO_UDP;
	memcpy(raw + 12, &opt.spoof, 4);
	memcpy(raw + 16, &opt.to.sin_addr, 4);
	raw[20] = 0x9c; /* source port 40000 */
	raw[21] = 0x40;
	memcpy(raw + 22, &opt.to.sin_port, 2);
	raw[24] = (uint8_t)((8 + ZILA_BEACON_LEN) >> 8);
	raw[25] = (uint8_t)(8 + ZILA_BEACON_LEN);
	if (opt.has_from && !opt.has_spoof) {
		struct sockaddr_in a;
		memset(&a, 0, sizeof(a));
		a.sin_family = AF_INET;
		a.sin_addr = opt.from;
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
			perror("zila_attack: bind");
			close(fd);
			return 1;
		}
	}
	if (opt.has_secret) {
		zila_beacon_key(opt.secret, key); /* an enrolled laptop's tool */
	} else {
		/* An outsider with the public root key only: the derivation zila used before
		 * organisation secrets (H_32("zila-org-psk-v1" || root), subkey "zilabcn1"). */
		uint8_t psk[32];
		outsider_psk(psk);
		crypto_kdf_derive_from_key(key, 32, 1, "zilabcn1", psk);
	}
	randombytes_buf(salt, sizeof(salt));
	while (now_ms() < t_end) {
		for (unsigned i = 0; i < opt.count; i++) {
			struct zila_beacon b;
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			memset(b.device_pk, 0xff, 32);
			memcpy(b.device_pk + 8, salt, sizeof(salt));
			b.device_pk[1] = (uint8_t)(i >> 8);
			b.device_pk[2] = (uint8_t)i;
			b.port = (uint16_t)(opt.port + i);
			b.time_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
			zila_beacon_seal(key, &b, pkt);
			memcpy(raw + 28, pkt, sizeof(pkt));
			const uint8_t *out = opt.has_spoof ? raw : pkt;
			size_t len = opt.has_spoof ? sizeof(raw) : sizeof(pkt);
			if (sendto(fd, out, len, 0, (struct sockaddr *)&opt.to, sizeof(opt.to)) == (ssize_t)len)
				sent++;
		}
		usleep(1000000);
	}
	close(fd);
	sodium_memzero(key, sizeof(key));
	printf("beacons: %" PRIu64 " sent for %u made-up devices\n", sent, opt.count);
	return 0;
}

static bool parse_ip(const char *s, struct in_addr *a)
{
	return inet_pton(AF_INET, s, a) == 1;
}

int main(int argc, char **argv)
{
	const char *mode = NULL, *file = NULL, *what = NULL;
	bool has_to = false;
	uint64_t v;
	if (sodium_init() < 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0) {
			fputs(usage, stdout);
			return 0;
		}
		if (a[0] != '-') {
			if (mode != NULL)
				return die_usage("unexpected argument", a);
			mode = a;
			continue;
		}
		if (val == NULL)
			return die_usage("missing value for", a);
		i++;
		if (strcmp(a, "--to") == 0) {
			char host[64];
			const char *colon = strrchr(val, ':');
			if (colon == NULL || (size_t)(colon - val) >= sizeof(host) || !parse_u64(colon + 1, 1, 65535, &v))
				return die_usage("--to is not IPV4:PORT", val);
			memcpy(host, val, (size_t)(colon - val));
			host[colon - val] = '\0';
			memset(&opt.to, 0, sizeof(opt.to));
			opt.to.sin_family = AF_INET;
			opt.to.sin_port = htons((uint16_t)v);
			if (!parse_ip(host, &opt.to.sin_addr))
				return die_usage("--to is not IPV4:PORT", val);
			has_to = true;
		} else if (strcmp(a, "--from") == 0) {
			if (!parse_ip(val, &opt.from))
				return die_usage("--from is not an IPv4 address", val);
			opt.has_from = true;
		} else if (strcmp(a, "--spread") == 0 && parse_u64(val, 1, 250, &v)) {
			opt.spread = (unsigned)v;
		} else if (strcmp(a, "--seconds") == 0 && parse_u64(val, 1, 3600, &v)) {
			opt.seconds = (unsigned)v;
		} else if (strcmp(a, "--conns") == 0 && parse_u64(val, 1, 1000, &v)) {
			opt.conns = (unsigned)v;
		} else if (strcmp(a, "--rate") == 0 && parse_u64(val, 1, 1000, &v)) {
			opt.rate = (unsigned)v;
		} else if (strcmp(a, "--every") == 0 && parse_u64(val, 1, 600000, &v)) {
			opt.every_ms = (unsigned)v;
		} else if (strcmp(a, "--size") == 0 && parse_u64(val, 1, 0xFFFFFFFFu, &v)) {
			opt.size = v;
		} else if (strcmp(a, "--file") == 0) {
			file = val;
		} else if (strcmp(a, "--dir") == 0) {
			opt.dir = val;
		} else if (strcmp(a, "--what") == 0) {
			what = val;
		} else if (strcmp(a, "--root") == 0) {
			if (strlen(val) != 64 || zila_hex_decode(opt.root, 32, val, 64) != 0)
				return die_usage("--root is not 64 hex digits", val);
		} else if (strcmp(a, "--secret-file") == 0) {
			/* DIR/org.secret of an enrolled replica: "ZILASEC1" and 32 bytes */
			FILE *sf = fopen(val, "rb");
			uint8_t sb[41];
			size_t sn = sf ? fread(sb, 1, sizeof(sb), sf) : 0;
			if (sf)
				fclose(sf);
			if (sn != 40 || memcmp(sb, "ZILASEC1", 8) != 0)
				return die_usage("--secret-file is not an organisation secret file", val);
			memcpy(opt.secret, sb + 8, 32);
			sodium_memzero(sb, sizeof(sb));
			opt.has_secret = true;
		} else if (strcmp(a, "--count") == 0 && parse_u64(val, 1, 60000, &v)) {
			opt.count = (unsigned)v;
		} else if (strcmp(a, "--port") == 0 && parse_u64(val, 1, 65535, &v)) {
			opt.port = (unsigned)v;
		} else if (strcmp(a, "--spoof") == 0) {
			if (!parse_ip(val, &opt.spoof))
				return die_usage("--spoof is not an IPv4 address", val);
			opt.has_spoof = true;
		} else {
			return die_usage("bad option or value", a);
		}
	}
	if (!has_to || mode == NULL)
		return die_usage("--to and a mode are required", NULL);
	if (strcmp(mode, "garbage") == 0) {
		opt.mode = M_GARBAGE;
	} else if (strcmp(mode, "msg1") == 0) {
		opt.mode = M_MSG1;
	} else if (strcmp(mode, "loris") == 0) {
		opt.mode = M_LORIS;
	} else if (strcmp(mode, "frame") == 0) {
		opt.mode = M_FRAME;
		if (opt.size == 0)
			return die_usage("frame needs --size", NULL);
		opt.announce = opt.size;
		if (opt.size > ZILA_FRAME_MAX)
			opt.size = 65536; /* announced as given: a receiver must refuse before the body */
	} else if (strcmp(mode, "replay") == 0) {
		opt.mode = M_REPLAY;
		if (file == NULL)
			return die_usage("replay needs --file", NULL);
		if (read_file(file) != 0)
			return 1;
	} else if (strcmp(mode, "member") == 0) {
		opt.mode = M_MEMBER;
		if (opt.dir == NULL || what == NULL)
			return die_usage("member needs --dir and --what", NULL);
		if (strcmp(what, "hello") == 0)
			opt.what = W_HELLO;
		else if (strcmp(what, "idle") == 0)
			opt.what = W_IDLE;
		else if (strcmp(what, "bigframe") == 0)
			opt.what = W_BIGFRAME;
		else if (strcmp(what, "oversize") == 0)
			opt.what = W_OVERSIZE;
		else
			return die_usage("unknown --what", what);
	} else if (strcmp(mode, "beacons") == 0) {
		opt.mode = M_BEACONS;
		if (opt.count == 0 || (sodium_is_zero(opt.root, 32) && !opt.has_secret))
			return die_usage("beacons needs --root or --secret-file, and --count", NULL);
		if (opt.port + opt.count > 65536)
			return die_usage("--port plus --count passes 65535", NULL);
	} else {
		return die_usage("unknown mode", mode);
	}
	int rc = opt.mode == M_MEMBER ? run_member() : opt.mode == M_BEACONS ? run_beacons() : run_raw();
	free(opt.file);
	return rc;
}
