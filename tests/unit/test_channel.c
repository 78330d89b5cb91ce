/* The Noise engine against the published vector, and the channel: golden handshake, framing,
 * rekey, close, and the attacks (other organisation, tampering, replay, truncation). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "zila/channel.h"

#define NOW 1800000000ull /* 2027-01-15 */

/* --- vector files: "key hexvalue" lines ---------------------------------------------- */

struct kv {
	char key[64];
	uint8_t val[2048];
	size_t len;
};

static size_t load_vectors(const char *name, struct kv *kv, size_t max)
{
	char path[1024], line[8192];
	const char *dir = getenv("ZILA_VECTORS");
	snprintf(path, sizeof(path), "%s/%s", dir ? dir : "tests/vectors", name);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		char *sp = strchr(line, ' ');
		assert_non_null(sp);
		*sp = '\0';
		if (strcmp(line, "protocol_name") == 0)
			continue;
		assert_true(n < max);
		assert_true(strlen(line) < sizeof(kv[n].key));
		memcpy(kv[n].key, line, strlen(line) + 1);
		kv[n].len = strlen(sp + 1) / 2;
		assert_true(kv[n].len <= sizeof(kv[n].val));
		assert_int_equal(zila_hex_decode(kv[n].val, kv[n].len, sp + 1, strlen(sp + 1)), 0);
		n++;
	}
	fclose(f);
	return n;
}

static const struct kv *find(const struct kv *kv, size_t n, const char *key, int nth)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(kv[i].key, key) == 0 && nth-- == 0)
			return &kv[i];
	fail_msg("vector key '%s' missing", key);
	return NULL;
}

/* --- the published Noise vector -------------------------------------------------------- */

static void test_noise_published_vector(void **state)
{
	(void)state;
	static struct kv kv[32];
	size_t n = load_vectors("noise_XXpsk0+psk1_25519_ChaChaPoly_BLAKE2b.txt", kv, 32);
	uint8_t psks[2][32];
	memcpy(psks[0], find(kv, n, "psk0", 0)->val, 32);
	memcpy(psks[1], find(kv, n, "psk1", 0)->val, 32);
	const struct kv *pro = find(kv, n, "prologue", 0);
	struct zila_noise_hs a, b;
	unsigned mask = ZILA_NOISE_PSK0 | ZILA_NOISE_PSK1;
	char name[64];
	zila_noise_name(mask, name);
	assert_string_equal(name, "Noise_XXpsk0+psk1_25519_ChaChaPoly_BLAKE2b");
	assert_int_equal(zila_noise_init(&a, true, mask, (const uint8_t(*)[32])psks, 2, find(kv, n, "init_static", 0)->val,
					 pro->val, pro->len), 0);
	assert_int_equal(zila_noise_init(&b, false, mask, (const uint8_t(*)[32])psks, 2, find(kv, n, "resp_static", 0)->val,
					 pro->val, pro->len), 0);
	zila_noise_set_ephemeral(&a, find(kv, n, "init_ephemeral", 0)->val);
	zila_noise_set_ephemeral(&b, find(kv, n, "resp_ephemeral", 0)->val);
	for (int i = 0; i < 3; i++) {
		struct zila_noise_hs *w = i % 2 ? &b : &a, *r = i % 2 ? &a : &b;
		const struct kv *pl = find(kv, n, "payload", i), *ct = find(kv, n, "ciphertext", i);
		struct zila_buf o, p;
		zila_buf_init(&o, 70000);
		zila_buf_init(&p, 70000);
		assert_int_equal(zila_noise_write(w, pl->val, pl->len, &o), 0);
		assert_int_equal(o.len, ct->len);
		assert_memory_equal(o.p, ct->val, ct->len);
		assert_int_equal(zila_noise_read(r, o.p, o.len, &p), 0);
		assert_int_equal(p.len, pl->len);
		assert_memory_equal(p.p, pl->val, pl->len);
		zila_buf_release(&o);
		zila_buf_release(&p);
	}
	assert_true(zila_noise_done(&a) && zila_noise_done(&b));
	assert_memory_equal(zila_noise_hash(&a), zila_noise_hash(&b), ZILA_NOISE_HASHLEN);
	struct zila_noise_cipher a1, a2, b1, b2;
	assert_int_equal(zila_noise_split(&a, &a1, &a2), 0);
	assert_int_equal(zila_noise_split(&b, &b1, &b2), 0);
	/* Transport messages alternate: responder, then initiator. */
	for (int i = 3; i < 5; i++) {
		const struct kv *pl = find(kv, n, "payload", i), *ct = find(kv, n, "ciphertext", i);
		struct zila_noise_cipher *enc = i % 2 ? &b2 : &a1, *dec = i % 2 ? &a2 : &b1;
		struct zila_buf o, p;
		zila_buf_init(&o, 70000);
		zila_buf_init(&p, 70000);
		assert_int_equal(zila_noise_encrypt(enc, pl->val, pl->len, &o), 0);
		assert_int_equal(o.len, ct->len);
		assert_memory_equal(o.p, ct->val, ct->len);
		assert_int_equal(zila_noise_decrypt(dec, o.p, o.len, &p), 0);
		assert_memory_equal(p.p, pl->val, pl->len);
		zila_buf_release(&o);
		zila_buf_release(&p);
	}
	/* An empty payload, decrypted into a buffer that holds no memory yet. */
	struct zila_buf o, p;
	zila_buf_init(&o, 1024);
	zila_buf_init(&p, 1024);
	assert_int_equal(zila_noise_encrypt(&a1, NULL, 0, &o), 0);
	assert_int_equal(o.len, ZILA_NOISE_TAGLEN);
	assert_int_equal(zila_noise_decrypt(&b1, o.p, o.len, &p), 0);
	assert_int_equal(p.len, 0);
	zila_buf_release(&o);
	zila_buf_release(&p);
	zila_noise_release(&a);
	zila_noise_release(&b);
}

static void test_noise_wrong_turn_and_tamper(void **state)
{
	(void)state;
	uint8_t psk[1][32] = { { 7 } }, sa[32], sb[32];
	randombytes_buf(sa, 32);
	randombytes_buf(sb, 32);
	struct zila_noise_hs a, b;
	struct zila_buf o, p;
	zila_buf_init(&o, 70000);
	zila_buf_init(&p, 70000);
	assert_int_equal(zila_noise_init(&a, true, ZILA_NOISE_PSK0, (const uint8_t(*)[32])psk, 1, sa, NULL, 0), 0);
	assert_int_equal(zila_noise_init(&b, false, ZILA_NOISE_PSK0, (const uint8_t(*)[32])psk, 1, sb, NULL, 0), 0);
	/* The responder cannot speak first; the wrong npsks is refused. */
	assert_int_equal(zila_noise_write(&b, NULL, 0, &o), ZILA_EPROTO);
	struct zila_noise_hs c;
	assert_int_equal(zila_noise_init(&c, true, ZILA_NOISE_PSK0, (const uint8_t(*)[32])psk, 0, sa, NULL, 0), ZILA_EINVAL);
	assert_int_equal(zila_noise_init(&b, false, ZILA_NOISE_PSK0, (const uint8_t(*)[32])psk, 1, sb, NULL, 0), 0);
	assert_int_equal(zila_noise_write(&a, (const uint8_t *)"hi", 2, &o), 0);
	o.p[o.len - 1] ^= 1;
	assert_int_equal(zila_noise_read(&b, o.p, o.len, &p), ZILA_EAUTH);
	/* A failed state accepts nothing more. */
	o.p[o.len - 1] ^= 1;
	assert_int_equal(zila_noise_read(&b, o.p, o.len, &p), ZILA_EPROTO);
	zila_buf_release(&o);
	zila_buf_release(&p);
	zila_noise_release(&a);
	zila_noise_release(&b);
}

/* --- a small organisation ------------------------------------------------------------ */

struct org {
	uint8_t root_pk[32], root_sk[64];
	uint8_t psk[32], secret[ZILA_ORG_SECRET_LEN];
};

struct dev {
	uint8_t pk[32], sk[64];
	uint8_t cert[ZILA_CERT_LEN];
};

static void org_make(struct org *o, uint8_t seed_byte)
{
	uint8_t seed[32];
	memset(seed, seed_byte, sizeof(seed));
	crypto_sign_seed_keypair(o->root_pk, o->root_sk, seed);
	/* The organisation secret: bytes of seed_byte + 1 (the golden handshake: 0x12). */
	memset(o->secret, seed_byte + 1, sizeof(o->secret));
	zila_org_psk(o->secret, o->psk);
}

static void dev_make(struct dev *d, const struct org *o, uint8_t seed_byte, int role, const char *district,
		     uint64_t nb, uint64_t na)
{
	uint8_t seed[32];
	struct zila_cert c;
	struct zila_buf b;
	memset(seed, seed_byte, sizeof(seed));
	crypto_sign_seed_keypair(d->pk, d->sk, seed);
	memset(&c, 0, sizeof(c));
	c.version = 1;
	zila_org_fingerprint(o->root_pk, c.org_fp);
	memcpy(c.device_pk, d->pk, 32);
	snprintf(c.name, sizeof(c.name), "dev-%u", seed_byte);
	c.role = (uint8_t)role;
	c.scope_all = district == NULL;
	if (district)
		snprintf(c.district, sizeof(c.district), "%s", district);
	c.not_before = nb;
	c.not_after = na;
	zila_buf_init(&b, ZILA_CERT_LEN);
	assert_int_equal(zila_cert_sign(&c, o->root_sk, &b), 0);
	assert_int_equal(b.len, ZILA_CERT_LEN);
	memcpy(d->cert, b.p, ZILA_CERT_LEN);
	zila_buf_release(&b);
}

struct check_ctx {
	const struct org *org;
	uint64_t now;
	int ncalls;
};

static int check_cert(void *ctx, const struct zila_channel_peer *peer, struct zila_error *err)
{
	struct check_ctx *c = ctx;
	c->ncalls++;
	if (!peer->has_cert)
		return zila_error_set(err, ZILA_ECERT, "no certificate");
	int r = zila_cert_verify(&peer->cert, c->org->root_pk, peer->has_issuer ? &peer->issuer : NULL, c->now);
	return r ? zila_error_set(err, r, "certificate: %s", zila_strerror(r)) : 0;
}

struct pair {
	struct zila_channel a, b; /* a initiates */
	struct check_ctx ca, cb;
	struct zila_buf a2b, b2a, ma, mb;
};

static void pair_init(struct pair *p, const struct org *oa, const struct dev *da, const struct org *ob,
		      const struct dev *db)
{
	struct zila_channel_config ca, cb;
	memset(p, 0, sizeof(*p));
	memset(&ca, 0, sizeof(ca));
	memset(&cb, 0, sizeof(cb));
	p->ca.org = oa;
	p->ca.now = NOW;
	p->cb.org = ob;
	p->cb.now = NOW;
	ca.initiator = true;
	ca.mode = ZILA_CHANNEL_MEMBER;
	ca.sign_sk = da->sk;
	ca.cert = zila_view_make(da->cert, ZILA_CERT_LEN);
	memcpy(ca.psk, oa->psk, 32);
	ca.check = check_cert;
	ca.check_ctx = &p->ca;
	cb.sign_sk = db->sk;
	cb.cert = zila_view_make(db->cert, ZILA_CERT_LEN);
	memcpy(cb.psk, ob->psk, 32);
	cb.check = check_cert;
	cb.check_ctx = &p->cb;
	assert_int_equal(zila_channel_init(&p->a, &ca), 0);
	assert_int_equal(zila_channel_init(&p->b, &cb), 0);
	zila_buf_init(&p->a2b, 8 << 20);
	zila_buf_init(&p->b2a, 8 << 20);
	zila_buf_init(&p->ma, 8 << 20);
	zila_buf_init(&p->mb, 8 << 20);
}

static void pair_release(struct pair *p)
{
	zila_channel_release(&p->a);
	zila_channel_release(&p->b);
	zila_buf_release(&p->a2b);
	zila_buf_release(&p->b2a);
	zila_buf_release(&p->ma);
	zila_buf_release(&p->mb);
}

/* Feeds all of in to ch; returns the first error, counts events. */
static int pump(struct zila_channel *ch, struct zila_buf *in, struct zila_buf *out, struct zila_buf *msg, int *nest,
		int *nmsg, int *nclosed)
{
	size_t off = 0;
	while (off < in->len) {
		size_t used;
		enum zila_channel_event ev;
		int r = zila_channel_feed(ch, in->p + off, in->len - off, &used, out, msg, &ev);
		if (r != 0)
			return r;
		off += used;
		if (ev == ZILA_CHANNEL_ESTABLISHED && nest)
			(*nest)++;
		if (ev == ZILA_CHANNEL_MESSAGE && nmsg)
			(*nmsg)++;
		if (ev == ZILA_CHANNEL_CLOSED && nclosed)
			(*nclosed)++;
	}
	zila_buf_reset(in);
	return 0;
}

static void handshake(struct pair *p)
{
	int ea = 0, eb = 0;
	assert_int_equal(zila_channel_start(&p->a, &p->a2b), 0);
	assert_int_equal(pump(&p->b, &p->a2b, &p->b2a, &p->mb, &eb, NULL, NULL), 0); /* msg1 -> msg2 */
	assert_int_equal(pump(&p->a, &p->b2a, &p->a2b, &p->ma, &ea, NULL, NULL), 0); /* msg2 -> msg3 + hdr */
	assert_int_equal(pump(&p->b, &p->a2b, &p->b2a, &p->mb, &eb, NULL, NULL), 0); /* msg3 + hdr -> hdr */
	assert_int_equal(pump(&p->a, &p->b2a, &p->a2b, &p->ma, NULL, NULL, NULL), 0);
	assert_int_equal(ea, 1);
	assert_int_equal(eb, 1);
}

static void test_channel_roundtrip(void **state)
{
	(void)state;
	struct org o;
	struct dev hq, d1;
	struct pair p;
	org_make(&o, 1);
	dev_make(&hq, &o, 2, ZILA_ROLE_HQ, NULL, NOW - 10, NOW + 1000);
	dev_make(&d1, &o, 3, ZILA_ROLE_DISTRICT, "d-07", NOW - 10, NOW + 1000);
	pair_init(&p, &o, &d1, &o, &hq);
	handshake(&p);
	assert_memory_equal(zila_channel_hash(&p.a), zila_channel_hash(&p.b), ZILA_NOISE_HASHLEN);
	assert_memory_equal(zila_channel_peer(&p.b)->sign_pk, d1.pk, 32);
	assert_string_equal(zila_channel_peer(&p.b)->cert.district, "d-07");
	assert_memory_equal(zila_channel_peer(&p.a)->sign_pk, hq.pk, 32);
	assert_int_equal(p.ca.ncalls, 1);
	assert_int_equal(p.cb.ncalls, 1);

	/* Messages both ways, one of the largest size. */
	static uint8_t big[ZILA_CHANNEL_MSG_MAX];
	randombytes_buf(big, sizeof(big));
	assert_int_equal(zila_channel_send(&p.a, (const uint8_t *)"hello", 5, &p.a2b), 0);
	assert_int_equal(zila_channel_send(&p.a, big, sizeof(big), &p.a2b), 0);
	assert_int_equal(zila_channel_send(&p.a, big, sizeof(big) + 1, &p.a2b), ZILA_ETOOBIG);
	int nmsg = 0, nclosed = 0;
	assert_int_equal(pump(&p.b, &p.a2b, &p.b2a, &p.mb, NULL, &nmsg, &nclosed), 0);
	assert_int_equal(nmsg, 2);
	assert_int_equal(p.mb.len, 5 + sizeof(big));
	assert_memory_equal(p.mb.p, "hello", 5);
	assert_memory_equal(p.mb.p + 5, big, sizeof(big));
	assert_int_equal(zila_channel_send(&p.b, (const uint8_t *)"back", 4, &p.b2a), 0);
	nmsg = 0;
	assert_int_equal(pump(&p.a, &p.b2a, &p.a2b, &p.ma, NULL, &nmsg, NULL), 0);
	assert_int_equal(nmsg, 1);
	assert_memory_equal(p.ma.p, "back", 4);
	/* An empty message, received into a buffer that holds no memory yet. */
	struct zila_buf none;
	zila_buf_init(&none, 1024);
	assert_int_equal(zila_channel_send(&p.b, (const uint8_t *)"", 0, &p.b2a), 0);
	nmsg = 0;
	assert_int_equal(pump(&p.a, &p.b2a, &p.a2b, &none, NULL, &nmsg, NULL), 0);
	assert_int_equal(nmsg, 1);
	assert_int_equal(none.len, 0);
	zila_buf_release(&none);

	/* Authenticated close: EOF after it is clean; nothing is sent after it. */
	assert_int_equal(zila_channel_eof(&p.b), ZILA_ESHORT);
	assert_int_equal(zila_channel_close(&p.a, &p.a2b), 0);
	assert_int_equal(zila_channel_send(&p.a, (const uint8_t *)"x", 1, &p.a2b), ZILA_ECLOSED);
	assert_int_equal(pump(&p.b, &p.a2b, &p.b2a, &p.mb, NULL, NULL, &nclosed), 0);
	assert_int_equal(nclosed, 1);
	assert_int_equal(zila_channel_eof(&p.b), 0);
	pair_release(&p);
}

static void test_channel_byte_by_byte(void **state)
{
	(void)state;
	struct org o;
	struct dev a, b;
	struct pair p;
	org_make(&o, 1);
	dev_make(&a, &o, 2, ZILA_ROLE_HQ, NULL, NOW - 10, NOW + 1000);
	dev_make(&b, &o, 3, ZILA_ROLE_BLOCK, "d-1", NOW - 10, NOW + 1000);
	pair_init(&p, &o, &a, &o, &b);
	handshake(&p);
	assert_int_equal(zila_channel_send(&p.a, (const uint8_t *)"fragmented", 10, &p.a2b), 0);
	int nmsg = 0;
	for (size_t i = 0; i < p.a2b.len; i++) {
		size_t used;
		enum zila_channel_event ev;
		assert_int_equal(zila_channel_feed(&p.b, p.a2b.p + i, 1, &used, &p.b2a, &p.mb, &ev), 0);
		assert_int_equal(used, 1);
		nmsg += ev == ZILA_CHANNEL_MESSAGE;
	}
	assert_int_equal(nmsg, 1);
	assert_memory_equal(p.mb.p, "fragmented", 10);
	pair_release(&p);
}

static void test_channel_rekey(void **state)
{
	(void)state;
	struct org o;
	struct dev a, b;
	struct pair p;
	org_make(&o, 1);
	dev_make(&a, &o, 2, ZILA_ROLE_HQ, NULL, NOW - 10, NOW + 1000);
	dev_make(&b, &o, 3, ZILA_ROLE_DISTRICT, "d-1", NOW - 10, NOW + 1000);
	for (int rekey = 0; rekey < 2; rekey++) {
		pair_init(&p, &o, &a, &o, &b);
		if (rekey)
			p.a.cfg.rekey_bytes = 100; /* rekey every second message */
		handshake(&p);
		uint8_t k0[32], m[64];
		int nmsg = 0;
		/* secretstream's key changes only when it rekeys: compare the receive key. */
		memcpy(k0, p.b.rx.k, 32);
		for (int i = 0; i < 50; i++) {
			memset(m, i, sizeof(m));
			assert_int_equal(zila_channel_send(&p.a, m, sizeof(m), &p.a2b), 0);
		}
		assert_int_equal(pump(&p.b, &p.a2b, &p.b2a, &p.mb, NULL, &nmsg, NULL), 0);
		assert_int_equal(nmsg, 50);
		for (int i = 0; i < 50; i++)
			for (int j = 0; j < 64; j++)
				assert_int_equal(p.mb.p[i * 64 + j], i);
		assert_int_equal(memcmp(k0, p.b.rx.k, 32) != 0, rekey);
		assert_int_equal(memcmp(p.a.tx.k, p.b.rx.k, 32), 0);
		pair_release(&p);
	}
}

static void test_channel_other_org_stops_at_message_1(void **state)
{
	(void)state;
	struct org o1, o2;
	struct dev a, b;
	struct pair p;
	org_make(&o1, 1);
	org_make(&o2, 9);
	dev_make(&a, &o2, 2, ZILA_ROLE_DISTRICT, "d-1", NOW - 10, NOW + 1000);
	dev_make(&b, &o1, 3, ZILA_ROLE_HQ, NULL, NOW - 10, NOW + 1000);
	pair_init(&p, &o2, &a, &o1, &b);
	assert_int_equal(zila_channel_start(&p.a, &p.a2b), 0);
	assert_int_equal(pump(&p.b, &p.a2b, &p.b2a, &p.mb, NULL, NULL, NULL), ZILA_EAUTH);
	/* Nothing was sent back: the responder's identity stays hidden. */
	assert_int_equal(p.b2a.len, 0);
	assert_int_equal(p.cb.ncalls, 0);
	pair_release(&p);
}

static void test_channel_other_org_same_psk(void **state)
{
	(void)state;
	/* Even with the right psk, a certificate of another root is refused by the check. */
	struct org o1, o2;
	struct dev a, b;
	struct pair p;
	org_make(&o1, 1);
	org_make(&o2, 9);
	memcpy(o2.psk, o1.psk, 32);
	dev_make(&a, &o2, 2, ZILA_ROLE_DISTRICT, "d-1", NOW - 10, NOW + 1000);
	dev_make(&b, &o1, 3, ZILA_ROLE_HQ, NULL, NOW - 10, NOW + 1000);
	pair_init(&p, &o2, &a, &o1, &b);
	assert_int_equal(zila_channel_start(&p.a, &p.a2b), 0);
	assert_int_equal(pump(&p.b, &p.a2b, &p.b2a, &p.mb, NULL, NULL, NULL), 0);
	/* a checks b's certificate against o2's root. */
	assert_int_equal(pump(&p.a, &p.b2a, &p.a2b, &p.ma, NULL, NULL, NULL), ZILA_ECERT);
	assert_int_equal(p.a2b.len, 0);
	pair_release(&p);
}

static void test_channel_expired_cert(void **state)
{
	(void)state;
	struct org o;
	struct dev a, b;
	struct pair p;
	org_make(&o, 1);
	dev_make(&a, &o, 2, ZILA_ROLE_DISTRICT, "d-1", NOW - 1000, NOW - 1);
	dev_make(&b, &o, 3, ZILA_ROLE_HQ, NULL, NOW - 10, NOW + 1000);
	pair_init(&p, &o, &a, &o, &b);
	assert_int_equal(zila_channel_start(&p.a, &p.a2b), 0);
	assert_int_equal(pump(&p.b, &p.a2b, &p.b2a, &p.mb, NULL, NULL, NULL), 0);
	assert_int_equal(pump(&p.a, &p.b2a, &p.a2b, &p.ma, NULL, NULL, NULL), 0);
	assert_int_equal(pump(&p.b, &p.a2b, &p.b2a, &p.mb, NULL, NULL, NULL), ZILA_EEXPIRED);
	assert_int_equal(p.b2a.len, 0);
	assert_int_equal(zila_channel_send(&p.b, (const uint8_t *)"x", 1, &p.b2a), ZILA_ECLOSED);
	pair_release(&p);
}

static void test_channel_stolen_cert(void **state)
{
	(void)state;
	/* b presents a's valid certificate but holds another key: the binding check refuses. */
	struct org o;
	struct dev a, b, thief;
	struct pair p;
	org_make(&o, 1);
	dev_make(&a, &o, 2, ZILA_ROLE_DISTRICT, "d-1", NOW - 10, NOW + 1000);
	dev_make(&b, &o, 3, ZILA_ROLE_HQ, NULL, NOW - 10, NOW + 1000);
	dev_make(&thief, &o, 4, ZILA_ROLE_DISTRICT, "d-2", NOW - 10, NOW + 1000);
	memcpy(thief.cert, b.cert, ZILA_CERT_LEN);
	pair_init(&p, &o, &a, &o, &thief);
	assert_int_equal(zila_channel_start(&p.a, &p.a2b), 0);
	assert_int_equal(pump(&p.b, &p.a2b, &p.b2a, &p.mb, NULL, NULL, NULL), 0);
	assert_int_equal(pump(&p.a, &p.b2a, &p.a2b, &p.ma, NULL, NULL, NULL), ZILA_EAUTH);
	assert_int_equal(p.ca.ncalls, 0);
	pair_release(&p);
}

static void test_channel_flipped_bytes(void **state)
{
	(void)state;
	struct org o;
	struct dev a, b;
	org_make(&o, 1);
	dev_make(&a, &o, 2, ZILA_ROLE_DISTRICT, "d-1", NOW - 10, NOW + 1000);
	dev_make(&b, &o, 3, ZILA_ROLE_HQ, NULL, NOW - 10, NOW + 1000);
	/* Flip one bit of each handshake message body in turn (past the frame length). */
	for (int which = 0; which < 3; which++) {
		for (size_t bit = 0; bit < 8; bit += 3) {
			struct pair p;
			pair_init(&p, &o, &a, &o, &b);
			assert_int_equal(zila_channel_start(&p.a, &p.a2b), 0);
			int r = 0;
			struct zila_buf *frames[3] = { &p.a2b, &p.b2a, &p.a2b };
			for (int step = 0; step < 3 && r == 0; step++) {
				struct zila_buf *f = frames[step];
				if (step == which)
					f->p[4 + (step == 0 ? 2 : 0) + (f->len - 5) / 2] ^= (uint8_t)(1u << bit);
				if (step % 2 == 0)
					r = pump(&p.b, f, &p.b2a, &p.mb, NULL, NULL, NULL);
				else
					r = pump(&p.a, f, &p.a2b, &p.ma, NULL, NULL, NULL);
			}
			assert_int_equal(r, ZILA_EAUTH);
			pair_release(&p);
		}
	}
	/* And a transport frame. */
	struct pair p;
	pair_init(&p, &o, &a, &o, &b);
	handshake(&p);
	assert_int_equal(zila_channel_send(&p.a, (const uint8_t *)"payload", 7, &p.a2b), 0);
	p.a2b.p[8] ^= 0x40;
	assert_int_equal(pump(&p.b, &p.a2b, &p.b2a, &p.mb, NULL, NULL, NULL), ZILA_EAUTH);
	assert_int_equal(p.mb.len, 0);
	assert_int_equal(zila_channel_eof(&p.b), ZILA_ECLOSED);
	pair_release(&p);
}

static void test_channel_replayed_handshake(void **state)
{
	(void)state;
	struct org o;
	struct dev a, b;
	struct pair p, q;
	org_make(&o, 1);
	dev_make(&a, &o, 2, ZILA_ROLE_DISTRICT, "d-1", NOW - 10, NOW + 1000);
	dev_make(&b, &o, 3, ZILA_ROLE_HQ, NULL, NOW - 10, NOW + 1000);
	pair_init(&p, &o, &a, &o, &b);
	struct zila_buf m1, m3;
	zila_buf_init(&m1, 1 << 16);
	zila_buf_init(&m3, 1 << 16);
	assert_int_equal(zila_channel_start(&p.a, &p.a2b), 0);
	assert_int_equal(zila_buf_put(&m1, p.a2b.p, p.a2b.len), 0);
	assert_int_equal(pump(&p.b, &p.a2b, &p.b2a, &p.mb, NULL, NULL, NULL), 0);
	assert_int_equal(pump(&p.a, &p.b2a, &p.a2b, &p.ma, NULL, NULL, NULL), 0);
	assert_int_equal(zila_buf_put(&m3, p.a2b.p, p.a2b.len), 0);
	assert_int_equal(pump(&p.b, &p.a2b, &p.b2a, &p.mb, NULL, NULL, NULL), 0);

	/* An eavesdropper replays the recorded messages 1 and 3 to a fresh responder: message 2
	 * has a new ephemeral key, so the old message 3 does not decrypt. */
	pair_init(&q, &o, &a, &o, &b);
	assert_int_equal(pump(&q.b, &m1, &q.b2a, &q.mb, NULL, NULL, NULL), 0);
	assert_true(q.b2a.len > 0);
	assert_int_equal(pump(&q.b, &m3, &q.b2a, &q.mb, NULL, NULL, NULL), ZILA_EAUTH);
	assert_int_equal(q.cb.ncalls, 0);
	/* Replaying message 2 to the initiator that already finished is refused too. */
	zila_buf_release(&m1);
	zila_buf_release(&m3);
	pair_release(&q);
	pair_release(&p);
}

static void test_channel_truncated_stream(void **state)
{
	(void)state;
	struct org o;
	struct dev a, b;
	struct pair p;
	org_make(&o, 1);
	dev_make(&a, &o, 2, ZILA_ROLE_DISTRICT, "d-1", NOW - 10, NOW + 1000);
	dev_make(&b, &o, 3, ZILA_ROLE_HQ, NULL, NOW - 10, NOW + 1000);
	pair_init(&p, &o, &a, &o, &b);
	handshake(&p);
	assert_int_equal(zila_channel_send(&p.a, (const uint8_t *)"one", 3, &p.a2b), 0);
	size_t keep = p.a2b.len;
	assert_int_equal(zila_channel_send(&p.a, (const uint8_t *)"two", 3, &p.a2b), 0);
	assert_int_equal(zila_channel_close(&p.a, &p.a2b), 0);
	/* The attacker cuts the stream after the first message. */
	p.a2b.len = keep;
	int nmsg = 0, nclosed = 0;
	assert_int_equal(pump(&p.b, &p.a2b, &p.b2a, &p.mb, NULL, &nmsg, &nclosed), 0);
	assert_int_equal(nmsg, 1);
	assert_int_equal(nclosed, 0);
	assert_int_equal(zila_channel_eof(&p.b), ZILA_ESHORT);
	pair_release(&p);

	/* Dropping a middle frame is caught by the stream's own counter. */
	pair_init(&p, &o, &a, &o, &b);
	handshake(&p);
	assert_int_equal(zila_channel_send(&p.a, (const uint8_t *)"one", 3, &p.a2b), 0);
	size_t first = p.a2b.len;
	assert_int_equal(zila_channel_send(&p.a, (const uint8_t *)"two", 3, &p.a2b), 0);
	size_t second = p.a2b.len;
	assert_int_equal(zila_channel_close(&p.a, &p.a2b), 0);
	memmove(p.a2b.p + first, p.a2b.p + second, p.a2b.len - second);
	p.a2b.len -= second - first;
	assert_int_equal(pump(&p.b, &p.a2b, &p.b2a, &p.mb, NULL, NULL, NULL), ZILA_EAUTH);
	pair_release(&p);
}

static void test_channel_frame_limits(void **state)
{
	(void)state;
	struct org o;
	struct dev a, b;
	struct pair p;
	org_make(&o, 1);
	dev_make(&a, &o, 2, ZILA_ROLE_DISTRICT, "d-1", NOW - 10, NOW + 1000);
	dev_make(&b, &o, 3, ZILA_ROLE_HQ, NULL, NOW - 10, NOW + 1000);
	pair_init(&p, &o, &a, &o, &b);
	/* A handshake frame claiming 70000 bytes is refused on its length alone. */
	uint8_t hdr[4] = { 0, 1, 0x11, 0x70 };
	size_t used;
	enum zila_channel_event ev;
	assert_int_equal(zila_channel_feed(&p.b, hdr, 4, &used, &p.b2a, &p.mb, &ev), ZILA_ETOOBIG);
	assert_int_equal(p.b.in.cap < 4096, 1);
	pair_release(&p);

	pair_init(&p, &o, &a, &o, &b);
	handshake(&p);
	/* After the handshake: 1 MiB + 1 is refused before any allocation for the body. */
	uint8_t big[4] = { 0, 0x10, 0, 1 };
	assert_int_equal(zila_channel_feed(&p.b, big, 2, &used, &p.b2a, &p.mb, &ev), 0);
	assert_int_equal(zila_channel_feed(&p.b, big + 2, 2, &used, &p.b2a, &p.mb, &ev), ZILA_ETOOBIG);
	assert_true(p.b.in.cap < 4096);
	/* A zero-length frame is a protocol violation. */
	pair_release(&p);
	pair_init(&p, &o, &a, &o, &b);
	uint8_t zero[4] = { 0 };
	assert_int_equal(zila_channel_feed(&p.b, zero, 4, &used, &p.b2a, &p.mb, &ev), ZILA_EPROTO);
	pair_release(&p);
}

/* --- join mode: a laptop with an invite code meets HQ ------------------------------ */

static int psk_for_invite(void *ctx, uint8_t mode, const uint8_t id[ZILA_INVITE_ID_LEN], uint8_t psk[32])
{
	const struct zila_invite *inv = ctx;
	uint8_t want[ZILA_INVITE_ID_LEN];
	zila_invite_id(inv, want);
	if (mode != ZILA_CHANNEL_JOIN || memcmp(id, want, sizeof(want)) != 0)
		return ZILA_ENOTFOUND;
	zila_invite_psk(inv, psk);
	return 0;
}

static int accept_joiner(void *ctx, const struct zila_channel_peer *peer, struct zila_error *err)
{
	(void)err;
	int *seen = ctx;
	*seen = peer->joining && strcmp(peer->req.name, "laptop-7") == 0;
	return *seen ? 0 : ZILA_EPROTO;
}

static void test_channel_join(void **state)
{
	(void)state;
	struct org o;
	struct dev hq, laptop;
	uint8_t fp[ZILA_FP_LEN];
	org_make(&o, 1);
	dev_make(&hq, &o, 2, ZILA_ROLE_HQ, NULL, NOW - 10, NOW + 1000);
	dev_make(&laptop, &o, 5, ZILA_ROLE_DISTRICT, "x", NOW - 10, NOW + 1000);
	zila_org_fingerprint(o.root_pk, fp);
	for (int wrong = 0; wrong < 2; wrong++) {
		struct zila_invite inv, typed;
		zila_invite_new(&inv, fp);
		typed = inv;
		if (wrong)
			typed.secret[0] ^= 1;
		struct zila_join_check jc;
		memset(&jc, 0, sizeof(jc));
		jc.invite = typed;
		jc.now = NOW;
		int seen = 0;
		struct zila_channel_config ca, cb;
		memset(&ca, 0, sizeof(ca));
		memset(&cb, 0, sizeof(cb));
		ca.initiator = true;
		ca.mode = ZILA_CHANNEL_JOIN;
		ca.sign_sk = laptop.sk;
		ca.join_name = "laptop-7";
		zila_invite_psk(&typed, ca.psk);
		zila_invite_id(&typed, ca.invite_id);
		ca.check = zila_channel_check_hq_for_invite;
		ca.check_ctx = &jc;
		cb.sign_sk = hq.sk;
		cb.cert = zila_view_make(hq.cert, ZILA_CERT_LEN);
		cb.psk_fn = psk_for_invite;
		cb.psk_ctx = &inv;
		cb.check = accept_joiner;
		cb.check_ctx = &seen;
		struct pair p;
		memset(&p, 0, sizeof(p));
		assert_int_equal(zila_channel_init(&p.a, &ca), 0);
		assert_int_equal(zila_channel_init(&p.b, &cb), 0);
		zila_buf_init(&p.a2b, 1 << 20);
		zila_buf_init(&p.b2a, 1 << 20);
		zila_buf_init(&p.ma, 1 << 20);
		zila_buf_init(&p.mb, 1 << 20);
		assert_int_equal(zila_channel_start(&p.a, &p.a2b), 0);
		if (wrong) {
			/* A typo'd secret gives another invite id: HQ has no psk for it. */
			assert_int_equal(pump(&p.b, &p.a2b, &p.b2a, &p.mb, NULL, NULL, NULL), ZILA_EAUTH);
			assert_int_equal(p.b2a.len, 0);
		} else {
			int ea = 0, eb = 0;
			assert_int_equal(pump(&p.b, &p.a2b, &p.b2a, &p.mb, &eb, NULL, NULL), 0);
			assert_int_equal(pump(&p.a, &p.b2a, &p.a2b, &p.ma, &ea, NULL, NULL), 0);
			assert_int_equal(pump(&p.b, &p.a2b, &p.b2a, &p.mb, &eb, NULL, NULL), 0);
			assert_int_equal(ea + eb, 2);
			assert_int_equal(seen, 1);
			assert_memory_equal(jc.root_pk, o.root_pk, 32);
			assert_memory_equal(zila_channel_peer(&p.b)->sign_pk, laptop.pk, 32);
		}
		pair_release(&p);
	}
}

/* --- the golden handshake ---------------------------------------------------------- */

/* Fixed keys and ephemerals: message bytes must match tests/vectors/handshake_zila_v1.txt.
 * ZILA_WRITE_VECTORS=1 rewrites the file (after a deliberate format change only). */
static void test_channel_golden_handshake(void **state)
{
	(void)state;
	struct org o;
	struct dev a, b;
	struct pair p;
	uint8_t ea[32], eb[32];
	org_make(&o, 0x11);
	dev_make(&a, &o, 0x22, ZILA_ROLE_DISTRICT, "district-07", 1700000000, 1900000000);
	dev_make(&b, &o, 0x33, ZILA_ROLE_HQ, NULL, 1700000000, 1900000000);
	memset(ea, 0x44, 32);
	memset(eb, 0x55, 32);
	pair_init(&p, &o, &a, &o, &b);
	p.a.cfg.test_ephemeral = ea;
	p.b.cfg.test_ephemeral = eb;

	struct zila_buf m[3];
	for (int i = 0; i < 3; i++)
		zila_buf_init(&m[i], 1 << 16);
	assert_int_equal(zila_channel_start(&p.a, &p.a2b), 0);
	assert_int_equal(zila_buf_put(&m[0], p.a2b.p, p.a2b.len), 0);
	assert_int_equal(pump(&p.b, &p.a2b, &p.b2a, &p.mb, NULL, NULL, NULL), 0);
	assert_int_equal(zila_buf_put(&m[1], p.b2a.p, p.b2a.len), 0);
	assert_int_equal(pump(&p.a, &p.b2a, &p.a2b, &p.ma, NULL, NULL, NULL), 0);
	/* a's output is message 3 then its random stream header frame (4 + 24 bytes). */
	assert_int_equal(zila_buf_put(&m[2], p.a2b.p, p.a2b.len - 28), 0);
	assert_int_equal(pump(&p.b, &p.a2b, &p.b2a, &p.mb, NULL, NULL, NULL), 0);

	const char *names[] = { "msg1", "msg2", "msg3" };
	if (getenv("ZILA_WRITE_VECTORS")) {
		char path[1024];
		const char *dir = getenv("ZILA_VECTORS");
		snprintf(path, sizeof(path), "%s/handshake_zila_v1.txt", dir ? dir : "tests/vectors");
		FILE *f = fopen(path, "w");
		assert_non_null(f);
		fprintf(f, "# zila channel handshake, version 2 (Noise_XXpsk0_25519_ChaChaPoly_BLAKE2b), fixed keys.\n"
			   "# psk from the organisation secret of 32 bytes of 0x12 (proto/TRUST.md).\n"
			   "# Keys: root/initiator/responder Ed25519 seeds of bytes 11/22/33, X25519\n"
			   "# ephemerals of bytes 44 (initiator) and 55 (responder); certificates valid\n"
			   "# 1700000000..1900000000. Frames include their 4-byte length. See proto/TRUST.md.\n");
		static char hex[2 * 65536 + 1];
		zila_hex_encode(hex, o.root_pk, 32);
		fprintf(f, "root_pk %s\n", hex);
		zila_hex_encode(hex, o.psk, 32);
		fprintf(f, "psk %s\n", hex);
		zila_hex_encode(hex, a.cert, ZILA_CERT_LEN);
		fprintf(f, "init_cert %s\n", hex);
		zila_hex_encode(hex, b.cert, ZILA_CERT_LEN);
		fprintf(f, "resp_cert %s\n", hex);
		for (int i = 0; i < 3; i++) {
			zila_hex_encode(hex, m[i].p, m[i].len);
			fprintf(f, "%s %s\n", names[i], hex);
		}
		zila_hex_encode(hex, zila_channel_hash(&p.a), ZILA_NOISE_HASHLEN);
		fprintf(f, "handshake_hash %s\n", hex);
		fclose(f);
	}
	static struct kv kv[16];
	size_t n = load_vectors("handshake_zila_v1.txt", kv, 16);
	assert_memory_equal(find(kv, n, "root_pk", 0)->val, o.root_pk, 32);
	assert_memory_equal(find(kv, n, "psk", 0)->val, o.psk, 32);
	assert_memory_equal(find(kv, n, "init_cert", 0)->val, a.cert, ZILA_CERT_LEN);
	assert_memory_equal(find(kv, n, "resp_cert", 0)->val, b.cert, ZILA_CERT_LEN);
	for (int i = 0; i < 3; i++) {
		const struct kv *v = find(kv, n, names[i], 0);
		assert_int_equal(v->len, m[i].len);
		assert_memory_equal(v->val, m[i].p, m[i].len);
	}
	assert_memory_equal(find(kv, n, "handshake_hash", 0)->val, zila_channel_hash(&p.a), ZILA_NOISE_HASHLEN);
	for (int i = 0; i < 3; i++)
		zila_buf_release(&m[i]);
	pair_release(&p);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_noise_published_vector),
		cmocka_unit_test(test_noise_wrong_turn_and_tamper),
		cmocka_unit_test(test_channel_roundtrip),
		cmocka_unit_test(test_channel_byte_by_byte),
		cmocka_unit_test(test_channel_rekey),
		cmocka_unit_test(test_channel_other_org_stops_at_message_1),
		cmocka_unit_test(test_channel_other_org_same_psk),
		cmocka_unit_test(test_channel_expired_cert),
		cmocka_unit_test(test_channel_stolen_cert),
		cmocka_unit_test(test_channel_flipped_bytes),
		cmocka_unit_test(test_channel_replayed_handshake),
		cmocka_unit_test(test_channel_truncated_stream),
		cmocka_unit_test(test_channel_frame_limits),
		cmocka_unit_test(test_channel_join),
		cmocka_unit_test(test_channel_golden_handshake),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
