/* Channel benchmark (issue 3): handshake cost per side in milliseconds (certificate checks
 * included), and throughput of 64 KiB messages through the channel (framing, encryption and
 * decryption) as a ratio to raw secretstream push+pull of the same messages.
 * usage: bench_channel   (ZILA_BENCH_QUICK=1: fewer rounds) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "zila/channel.h"

#define NOW 1800000000ull
#define MSG (64 * 1024)

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int r)
{
	fprintf(stderr, "bench_channel: %s: %s\n", what, zila_strerror(r));
	exit(1);
}

struct org {
	uint8_t root_pk[32], root_sk[64], psk[32];
};

struct dev {
	uint8_t pk[32], sk[64], cert[ZILA_CERT_LEN];
};

static void make_dev(struct dev *d, const struct org *o, int role, const char *district)
{
	struct zila_cert c;
	struct zila_buf b;
	crypto_sign_keypair(d->pk, d->sk);
	memset(&c, 0, sizeof(c));
	c.version = 1;
	zila_org_fingerprint(o->root_pk, c.org_fp);
	memcpy(c.device_pk, d->pk, 32);
	snprintf(c.name, sizeof(c.name), "bench");
	c.role = (uint8_t)role;
	c.scope_all = district == NULL;
	if (district)
		snprintf(c.district, sizeof(c.district), "%s", district);
	c.not_before = NOW - 10;
	c.not_after = NOW + 10;
	zila_buf_init(&b, ZILA_CERT_LEN);
	int r = zila_cert_sign(&c, o->root_sk, &b);
	if (r != 0)
		die("cert", r);
	memcpy(d->cert, b.p, ZILA_CERT_LEN);
	zila_buf_release(&b);
}

static int check(void *ctx, const struct zila_channel_peer *peer, struct zila_error *err)
{
	const struct org *o = ctx;
	(void)err;
	return zila_cert_verify(&peer->cert, o->root_pk, NULL, NOW);
}

static void config(struct zila_channel_config *c, bool initiator, const struct org *o, const struct dev *d)
{
	memset(c, 0, sizeof(*c));
	c->initiator = initiator;
	c->mode = ZILA_CHANNEL_MEMBER;
	c->sign_sk = d->sk;
	c->cert = zila_view_make(d->cert, ZILA_CERT_LEN);
	memcpy(c->psk, o->psk, 32);
	c->check = check;
	c->check_ctx = (void *)o;
}

/* Feeds all of in to ch, timing it into *t. */
static void feed_all(struct zila_channel *ch, struct zila_buf *in, struct zila_buf *out, struct zila_buf *msg, double *t)
{
	double t0 = now();
	size_t off = 0;
	while (off < in->len) {
		size_t used;
		enum zila_channel_event ev;
		int r = zila_channel_feed(ch, in->p + off, in->len - off, &used, out, msg, &ev);
		if (r != 0)
			die("feed", r);
		off += used;
	}
	*t += now() - t0;
	zila_buf_reset(in);
}

static void handshake_pair(struct zila_channel *a, struct zila_channel *b, const struct org *o, const struct dev *da,
			   const struct dev *db, double *ta, double *tb)
{
	struct zila_channel_config ca, cb;
	struct zila_buf a2b, b2a, m;
	config(&ca, true, o, da);
	config(&cb, false, o, db);
	zila_buf_init(&a2b, 1 << 17);
	zila_buf_init(&b2a, 1 << 17);
	zila_buf_init(&m, 1 << 21);
	double t0 = now();
	if (zila_channel_init(a, &ca) != 0 || zila_channel_start(a, &a2b) != 0)
		die("start", ZILA_EINTERNAL);
	*ta += now() - t0;
	t0 = now();
	if (zila_channel_init(b, &cb) != 0)
		die("init", ZILA_EINTERNAL);
	*tb += now() - t0;
	feed_all(b, &a2b, &b2a, &m, tb); /* message 1 -> message 2 */
	feed_all(a, &b2a, &a2b, &m, ta); /* message 2 -> message 3 + stream header */
	feed_all(b, &a2b, &b2a, &m, tb); /* message 3 + header -> header */
	feed_all(a, &b2a, &a2b, &m, ta);
	zila_buf_release(&a2b);
	zila_buf_release(&b2a);
	zila_buf_release(&m);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	bool quick = getenv("ZILA_BENCH_QUICK") != NULL;
	struct org o;
	struct dev a, b;
	crypto_sign_keypair(o.root_pk, o.root_sk);
	zila_org_psk(o.root_pk, o.psk);
	make_dev(&a, &o, ZILA_ROLE_DISTRICT, "d-1");
	make_dev(&b, &o, ZILA_ROLE_HQ, NULL);

	/* Handshakes. */
	int nhs = quick ? 100 : 1000;
	double ta = 0, tb = 0;
	for (int i = 0; i < nhs; i++) {
		struct zila_channel ca, cb;
		handshake_pair(&ca, &cb, &o, &a, &b, &ta, &tb);
		zila_channel_release(&ca);
		zila_channel_release(&cb);
	}
	printf("handshake (Noise_XXpsk0_25519_ChaChaPoly_BLAKE2b + certificate checks), %d runs:\n", nhs);
	printf("  initiator %.3f ms, responder %.3f ms, both %.3f ms per handshake\n", 1e3 * ta / nhs, 1e3 * tb / nhs,
	       1e3 * (ta + tb) / nhs);

	/* Throughput: the same 64 KiB messages through the channel and through raw secretstream. */
	size_t nmsg = quick ? 2048 : 16384; /* 128 MiB or 1 GiB per run */
	uint8_t *pt = malloc(MSG);
	struct zila_buf wire, out, msg;
	zila_buf_init(&wire, MSG + 64);
	zila_buf_init(&out, 1 << 16);
	zila_buf_init(&msg, MSG + 64);
	randombytes_buf(pt, MSG);
	double best_ch = 1e9, best_raw = 1e9;
	for (int run = 0; run < 3; run++) {
		struct zila_channel ca, cb;
		double x = 0, y = 0;
		handshake_pair(&ca, &cb, &o, &a, &b, &x, &y);
		double t0 = now();
		for (size_t i = 0; i < nmsg; i++) {
			zila_buf_reset(&wire);
			zila_buf_reset(&msg);
			int r = zila_channel_send(&ca, pt, MSG, &wire);
			if (r != 0)
				die("send", r);
			size_t used;
			enum zila_channel_event ev;
			r = zila_channel_feed(&cb, wire.p, wire.len, &used, &out, &msg, &ev);
			if (r != 0 || ev != ZILA_CHANNEL_MESSAGE || msg.len != MSG)
				die("receive", r ? r : ZILA_EINTERNAL);
		}
		double t = now() - t0;
		if (t < best_ch)
			best_ch = t;
		zila_channel_release(&ca);
		zila_channel_release(&cb);

		crypto_secretstream_xchacha20poly1305_state push, pull;
		uint8_t key[32], header[crypto_secretstream_xchacha20poly1305_HEADERBYTES];
		uint8_t *ct = malloc(MSG + crypto_secretstream_xchacha20poly1305_ABYTES), *back = malloc(MSG);
		crypto_secretstream_xchacha20poly1305_keygen(key);
		crypto_secretstream_xchacha20poly1305_init_push(&push, header, key);
		crypto_secretstream_xchacha20poly1305_init_pull(&pull, header, key);
		t0 = now();
		for (size_t i = 0; i < nmsg; i++) {
			unsigned long long clen, mlen;
			unsigned char tag;
			crypto_secretstream_xchacha20poly1305_push(&push, ct, &clen, pt, MSG, NULL, 0, 0);
			if (crypto_secretstream_xchacha20poly1305_pull(&pull, back, &mlen, &tag, ct, clen, NULL, 0) != 0)
				die("raw pull", ZILA_EAUTH);
		}
		t = now() - t0;
		if (t < best_raw)
			best_raw = t;
		free(ct);
		free(back);
	}
	double mib = (double)nmsg * MSG / (1024.0 * 1024.0);
	printf("throughput, 64 KiB messages, encrypt + decrypt, best of 3 runs of %.0f MiB:\n", mib);
	printf("  channel %.0f MiB/s, raw secretstream %.0f MiB/s, ratio %.3f (goal >= 0.9)\n", mib / best_ch,
	       mib / best_raw, best_raw / best_ch);
	free(pt);
	zila_buf_release(&wire);
	zila_buf_release(&out);
	zila_buf_release(&msg);
	return 0;
}
