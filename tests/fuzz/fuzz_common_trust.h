/* Fixed keys and certificates shared by the trust fuzzers (header-only, one per harness). */
#ifndef FUZZ_COMMON_TRUST_H
#define FUZZ_COMMON_TRUST_H

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "zila/channel.h"

#define FZ_NOW 1800000000ull

struct fz_org {
	uint8_t root_pk[32], root_sk[64], psk[32];
	uint8_t a_pk[32], a_sk[64], a_cert[ZILA_CERT_LEN];
	uint8_t b_pk[32], b_sk[64], b_cert[ZILA_CERT_LEN];
};

static inline void fz_cert(struct fz_org *o, const uint8_t pk[32], int role, const char *district, uint8_t out[ZILA_CERT_LEN])
{
	struct zila_cert c;
	struct zila_buf b;
	memset(&c, 0, sizeof(c));
	c.version = 1;
	zila_org_fingerprint(o->root_pk, c.org_fp);
	memcpy(c.device_pk, pk, 32);
	memcpy(c.name, "fuzz", 5);
	c.role = (uint8_t)role;
	c.scope_all = district == NULL;
	if (district)
		memcpy(c.district, district, strlen(district) + 1);
	c.not_before = FZ_NOW - 1000;
	c.not_after = FZ_NOW + 1000;
	zila_buf_init(&b, ZILA_CERT_LEN);
	if (zila_cert_sign(&c, o->root_sk, &b) != 0 || b.len != ZILA_CERT_LEN)
		abort();
	memcpy(out, b.p, ZILA_CERT_LEN);
	zila_buf_release(&b);
}

static inline void fz_org_make(struct fz_org *o)
{
	uint8_t seed[32];
	if (sodium_init() < 0)
		abort();
	memset(seed, 1, 32);
	crypto_sign_seed_keypair(o->root_pk, o->root_sk, seed);
	memset(seed, 2, 32);
	crypto_sign_seed_keypair(o->a_pk, o->a_sk, seed);
	memset(seed, 3, 32);
	crypto_sign_seed_keypair(o->b_pk, o->b_sk, seed);
	memset(seed, 4, 32); /* the organisation secret */
	zila_org_psk(seed, o->psk);
	fz_cert(o, o->a_pk, ZILA_ROLE_DISTRICT, "d-1", o->a_cert);
	fz_cert(o, o->b_pk, ZILA_ROLE_HQ, NULL, o->b_cert);
}

static inline int fz_check(void *ctx, const struct zila_channel_peer *peer, struct zila_error *err)
{
	const struct fz_org *o = ctx;
	(void)err;
	if (!peer->has_cert)
		return ZILA_ECERT;
	return zila_cert_verify(&peer->cert, o->root_pk, peer->has_issuer ? &peer->issuer : NULL, FZ_NOW);
}

/* a initiates, b responds; fixed ephemerals so that a fuzzer sees the same transcript. */
static inline void fz_config(struct fz_org *o, struct zila_channel_config *ca, struct zila_channel_config *cb)
{
	static const uint8_t ea[32] = { 4 }, eb[32] = { 5 };
	memset(ca, 0, sizeof(*ca));
	memset(cb, 0, sizeof(*cb));
	ca->initiator = true;
	ca->mode = ZILA_CHANNEL_MEMBER;
	ca->sign_sk = o->a_sk;
	ca->cert = zila_view_make(o->a_cert, ZILA_CERT_LEN);
	memcpy(ca->psk, o->psk, 32);
	ca->check = fz_check;
	ca->check_ctx = o;
	ca->test_ephemeral = ea;
	cb->sign_sk = o->b_sk;
	cb->cert = zila_view_make(o->b_cert, ZILA_CERT_LEN);
	memcpy(cb->psk, o->psk, 32);
	cb->check = fz_check;
	cb->check_ctx = o;
	cb->test_ephemeral = eb;
}

/* Feeds data to ch in chunks of chunk bytes; stops at the first error. */
static inline int fz_feed(struct zila_channel *ch, const uint8_t *p, size_t n, size_t chunk, struct zila_buf *out,
		   struct zila_buf *msg)
{
	size_t off = 0;
	if (chunk == 0)
		chunk = 1;
	while (off < n) {
		size_t len = n - off < chunk ? n - off : chunk, used;
		enum zila_channel_event ev;
		int r = zila_channel_feed(ch, p + off, len, &used, out, msg, &ev);
		if (r != 0)
			return r;
		if (used == 0)
			abort(); /* the channel must make progress */
		off += used;
	}
	return 0;
}

#endif
