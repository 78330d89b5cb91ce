/* Noise XX with psk modifiers over libsodium: X25519, ChaCha20-Poly1305 (IETF), BLAKE2b.
 * Follows the Noise specification revision 34, sections 5 (processing rules) and 9 (psk). */
#include "zila/noise.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define BLOCKLEN 128

enum token { T_E, T_S, T_EE, T_ES, T_SE, T_PSK, T_END };

static void hash2(uint8_t out[ZILA_NOISE_HASHLEN], const uint8_t *a, size_t a_len, const uint8_t *b,
		  size_t b_len)
{
	crypto_generichash_blake2b_state st;
	crypto_generichash_blake2b_init(&st, NULL, 0, ZILA_NOISE_HASHLEN);
	crypto_generichash_blake2b_update(&st, a, a_len);
	if (b_len > 0)
		crypto_generichash_blake2b_update(&st, b, b_len);
	crypto_generichash_blake2b_final(&st, out, ZILA_NOISE_HASHLEN);
	sodium_memzero(&st, sizeof(st));
}

/* HMAC-BLAKE2b (RFC 2104 with a 128-byte block), over the concatenation of two inputs. */
static void hmac(uint8_t out[ZILA_NOISE_HASHLEN], const uint8_t key[ZILA_NOISE_HASHLEN], const uint8_t *a,
		 size_t a_len, const uint8_t *b, size_t b_len)
{
	uint8_t pad[BLOCKLEN], inner[ZILA_NOISE_HASHLEN];
	crypto_generichash_blake2b_state st;

	memset(pad, 0x36, sizeof(pad));
	for (size_t i = 0; i < ZILA_NOISE_HASHLEN; i++)
		pad[i] ^= key[i];
	crypto_generichash_blake2b_init(&st, NULL, 0, ZILA_NOISE_HASHLEN);
	crypto_generichash_blake2b_update(&st, pad, BLOCKLEN);
	if (a_len > 0)
		crypto_generichash_blake2b_update(&st, a, a_len);
	if (b_len > 0)
		crypto_generichash_blake2b_update(&st, b, b_len);
	crypto_generichash_blake2b_final(&st, inner, sizeof(inner));

	memset(pad, 0x5c, sizeof(pad));
	for (size_t i = 0; i < ZILA_NOISE_HASHLEN; i++)
		pad[i] ^= key[i];
	crypto_generichash_blake2b_init(&st, NULL, 0, ZILA_NOISE_HASHLEN);
	crypto_generichash_blake2b_update(&st, pad, BLOCKLEN);
	crypto_generichash_blake2b_update(&st, inner, sizeof(inner));
	crypto_generichash_blake2b_final(&st, out, ZILA_NOISE_HASHLEN);

	sodium_memzero(pad, sizeof(pad));
	sodium_memzero(inner, sizeof(inner));
	sodium_memzero(&st, sizeof(st));
}

/* HKDF(ck, ikm) with two or three outputs of HASHLEN bytes. */
static void hkdf(const uint8_t ck[ZILA_NOISE_HASHLEN], const uint8_t *ikm, size_t ikm_len, uint8_t *o1,
		 uint8_t *o2, uint8_t *o3)
{
	uint8_t temp[ZILA_NOISE_HASHLEN];
	uint8_t c;

	hmac(temp, ck, ikm, ikm_len, NULL, 0);
	c = 1;
	hmac(o1, temp, &c, 1, NULL, 0);
	c = 2;
	hmac(o2, temp, o1, ZILA_NOISE_HASHLEN, &c, 1);
	if (o3 != NULL) {
		c = 3;
		hmac(o3, temp, o2, ZILA_NOISE_HASHLEN, &c, 1);
	}
	sodium_memzero(temp, sizeof(temp));
}

static void nonce96(uint8_t out[12], uint64_t n)
{
	memset(out, 0, 4);
	for (int i = 0; i < 8; i++)
		out[4 + i] = (uint8_t)(n >> (8 * i));
}

static int cipher_encrypt_ad(struct zila_noise_cipher *c, const uint8_t *ad, size_t ad_len, const uint8_t *pt,
			     size_t pt_len, struct zila_buf *out)
{
	if (!c->has_k)
		return zila_buf_put(out, pt, pt_len);
	if (c->n == UINT64_MAX)
		return ZILA_EPROTO;
	int r = zila_buf_reserve(out, pt_len + ZILA_NOISE_TAGLEN);
	if (r != 0)
		return r;
	uint8_t nonce[12];
	unsigned long long clen = 0;
	nonce96(nonce, c->n);
	crypto_aead_chacha20poly1305_ietf_encrypt(out->p + out->len, &clen, pt, pt_len, ad, ad_len, NULL, nonce,
						  c->k);
	out->len += (size_t)clen;
	c->n++;
	return 0;
}

static int cipher_decrypt_ad(struct zila_noise_cipher *c, const uint8_t *ad, size_t ad_len, const uint8_t *ct,
			     size_t ct_len, struct zila_buf *out)
{
	if (!c->has_k)
		return zila_buf_put(out, ct, ct_len);
	if (ct_len < ZILA_NOISE_TAGLEN)
		return ZILA_ESHORT;
	if (c->n == UINT64_MAX)
		return ZILA_EPROTO;
	int r = zila_buf_reserve(out, ct_len - ZILA_NOISE_TAGLEN);
	if (r != 0)
		return r;
	uint8_t nonce[12], none;
	unsigned long long plen = 0;
	nonce96(nonce, c->n);
	/* An empty plaintext may meet a buffer that has no memory yet: no pointer into it. */
	uint8_t *dst = ct_len > ZILA_NOISE_TAGLEN ? out->p + out->len : &none;
	if (crypto_aead_chacha20poly1305_ietf_decrypt(dst, &plen, NULL, ct, ct_len, ad, ad_len, nonce, c->k) != 0)
		return ZILA_EAUTH;
	out->len += (size_t)plen;
	c->n++;
	return 0;
}

static void mix_hash(struct zila_noise_hs *hs, const uint8_t *p, size_t n)
{
	uint8_t h[ZILA_NOISE_HASHLEN];
	hash2(h, hs->h, sizeof(hs->h), p, n);
	memcpy(hs->h, h, sizeof(h));
}

static void init_key(struct zila_noise_cipher *c, const uint8_t *k)
{
	memcpy(c->k, k, ZILA_NOISE_KEYLEN);
	c->n = 0;
	c->has_k = true;
}

static void mix_key(struct zila_noise_hs *hs, const uint8_t *ikm, size_t n)
{
	uint8_t ck[ZILA_NOISE_HASHLEN], k[ZILA_NOISE_HASHLEN];
	hkdf(hs->ck, ikm, n, ck, k, NULL);
	memcpy(hs->ck, ck, sizeof(ck));
	init_key(&hs->cs, k);
	sodium_memzero(ck, sizeof(ck));
	sodium_memzero(k, sizeof(k));
}

static void mix_key_and_hash(struct zila_noise_hs *hs, const uint8_t *ikm, size_t n)
{
	uint8_t ck[ZILA_NOISE_HASHLEN], th[ZILA_NOISE_HASHLEN], k[ZILA_NOISE_HASHLEN];
	hkdf(hs->ck, ikm, n, ck, th, k);
	memcpy(hs->ck, ck, sizeof(ck));
	mix_hash(hs, th, sizeof(th));
	init_key(&hs->cs, k);
	sodium_memzero(ck, sizeof(ck));
	sodium_memzero(th, sizeof(th));
	sodium_memzero(k, sizeof(k));
}

static int encrypt_and_hash(struct zila_noise_hs *hs, const uint8_t *pt, size_t n, struct zila_buf *out)
{
	size_t start = out->len;
	int r = cipher_encrypt_ad(&hs->cs, hs->h, sizeof(hs->h), pt, n, out);
	if (r == 0)
		mix_hash(hs, out->p + start, out->len - start);
	return r;
}

static int decrypt_and_hash(struct zila_noise_hs *hs, const uint8_t *ct, size_t n, struct zila_buf *out)
{
	int r = cipher_decrypt_ad(&hs->cs, hs->h, sizeof(hs->h), ct, n, out);
	if (r == 0)
		mix_hash(hs, ct, n);
	return r;
}

static int dh(uint8_t out[32], const uint8_t sk[32], const uint8_t pk[32])
{
	/* libsodium refuses an all-zero result (a small-order point). */
	return crypto_scalarmult(out, sk, pk) == 0 ? 0 : ZILA_EAUTH;
}

/* The tokens of XX message i (0, 1, 2) with the psk modifiers of mask inserted. */
static void tokens_for(unsigned mask, unsigned i, enum token *t)
{
	size_t n = 0;
	if (i == 0) {
		if (mask & ZILA_NOISE_PSK0)
			t[n++] = T_PSK;
		t[n++] = T_E;
		if (mask & ZILA_NOISE_PSK1)
			t[n++] = T_PSK;
	} else if (i == 1) {
		t[n++] = T_E;
		t[n++] = T_EE;
		t[n++] = T_S;
		t[n++] = T_ES;
		if (mask & ZILA_NOISE_PSK2)
			t[n++] = T_PSK;
	} else {
		t[n++] = T_S;
		t[n++] = T_SE;
		if (mask & ZILA_NOISE_PSK3)
			t[n++] = T_PSK;
	}
	t[n] = T_END;
}

void zila_noise_name(unsigned psk_mask, char out[64])
{
	char mods[24] = "";
	for (unsigned i = 0; i < 4; i++) {
		if (psk_mask & (1u << i)) {
			size_t l = strlen(mods);
			snprintf(mods + l, sizeof(mods) - l, "%spsk%u", l ? "+" : "", i);
		}
	}
	snprintf(out, 64, "Noise_XX%s_25519_ChaChaPoly_BLAKE2b", mods);
}

int zila_noise_init(struct zila_noise_hs *hs, bool initiator, unsigned psk_mask, const uint8_t (*psks)[32],
		    size_t npsks, const uint8_t s_sk[32], const uint8_t *prologue, size_t prologue_len)
{
	int r = ZILA_EINVAL;
	char name[64];
	size_t nbits = 0;

	memset(hs, 0, sizeof(*hs));
	for (unsigned i = 0; i < 4; i++)
		nbits += (psk_mask >> i) & 1;
	if (psk_mask > 0xf || npsks != nbits || npsks > ZILA_NOISE_PSK_MAX)
		goto out;
	hs->initiator = initiator;
	hs->psk_mask = psk_mask;
	hs->npsks = (unsigned)npsks;
	for (size_t i = 0; i < npsks; i++)
		memcpy(hs->psks[i], psks[i], 32);
	memcpy(hs->s_sk, s_sk, 32);
	crypto_scalarmult_base(hs->s_pk, hs->s_sk);

	zila_noise_name(psk_mask, name);
	size_t name_len = strlen(name);
	/* The name fits HASHLEN, so h is the name padded with zeros. */
	memset(hs->h, 0, sizeof(hs->h));
	memcpy(hs->h, name, name_len);
	memcpy(hs->ck, hs->h, sizeof(hs->ck));
	mix_hash(hs, prologue, prologue_len);
	r = 0;
out:
	return r;
}

void zila_noise_release(struct zila_noise_hs *hs)
{
	sodium_memzero(hs, sizeof(*hs));
}

void zila_noise_set_ephemeral(struct zila_noise_hs *hs, const uint8_t e_sk[32])
{
	memcpy(hs->e_sk, e_sk, 32);
	hs->e_fixed = true;
}

static bool my_turn(const struct zila_noise_hs *hs)
{
	/* The initiator writes messages 0 and 2, the responder message 1. */
	return hs->initiator == (hs->msg_index % 2 == 0);
}

/* The tokens both sides process alike: the DHs and the psk. d is scratch for the DH. */
static int mix_token(struct zila_noise_hs *hs, enum token tok, uint8_t d[32])
{
	int r = 0;
	switch (tok) {
	case T_EE:
		r = dh(d, hs->e_sk, hs->re);
		break;
	case T_ES: /* the initiator's e with the responder's s */
		r = hs->initiator ? dh(d, hs->e_sk, hs->rs) : dh(d, hs->s_sk, hs->re);
		break;
	case T_SE:
		r = hs->initiator ? dh(d, hs->s_sk, hs->re) : dh(d, hs->e_sk, hs->rs);
		break;
	case T_PSK:
		if (hs->npsk_used >= hs->npsks)
			return ZILA_EINTERNAL;
		mix_key_and_hash(hs, hs->psks[hs->npsk_used++], 32);
		return 0;
	default:
		return ZILA_EINTERNAL;
	}
	if (r == 0)
		mix_key(hs, d, 32);
	return r;
}

int zila_noise_write(struct zila_noise_hs *hs, const uint8_t *payload, size_t payload_len, struct zila_buf *out)
{
	int r = ZILA_EPROTO;
	enum token t[8];
	uint8_t d[32];
	size_t start = out->len;

	if (hs->failed || hs->msg_index > 2 || !my_turn(hs))
		goto out;
	tokens_for(hs->psk_mask, hs->msg_index, t);
	for (size_t i = 0; t[i] != T_END; i++) {
		switch (t[i]) {
		case T_E:
			if (!hs->e_fixed)
				randombytes_buf(hs->e_sk, 32);
			hs->e_fixed = false;
			crypto_scalarmult_base(hs->e_pk, hs->e_sk);
			if ((r = zila_buf_put(out, hs->e_pk, 32)) != 0)
				goto out;
			mix_hash(hs, hs->e_pk, 32);
			if (hs->psk_mask)
				mix_key(hs, hs->e_pk, 32);
			break;
		case T_S:
			if ((r = encrypt_and_hash(hs, hs->s_pk, 32, out)) != 0)
				goto out;
			break;
		case T_EE:
		case T_ES:
		case T_SE:
		case T_PSK:
			if ((r = mix_token(hs, t[i], d)) != 0)
				goto out;
			break;
		case T_END:
			break;
		}
	}
	if ((r = encrypt_and_hash(hs, payload, payload_len, out)) != 0)
		goto out;
	if (out->len - start > ZILA_NOISE_MSG_MAX) {
		r = ZILA_ETOOBIG;
		goto out;
	}
	hs->msg_index++;
	r = 0;
out:
	sodium_memzero(d, sizeof(d));
	if (r != 0)
		hs->failed = true;
	return r;
}

int zila_noise_read(struct zila_noise_hs *hs, const uint8_t *msg, size_t msg_len, struct zila_buf *payload)
{
	int r = ZILA_EPROTO;
	enum token t[8];
	uint8_t d[32];
	struct zila_buf tmp;
	struct zila_view v = zila_view_make(msg, msg_len);
	const uint8_t *p;

	zila_buf_init(&tmp, 64);
	if (hs->failed || hs->msg_index > 2 || my_turn(hs))
		goto out;
	if (msg_len > ZILA_NOISE_MSG_MAX) {
		r = ZILA_ETOOBIG;
		goto out;
	}
	tokens_for(hs->psk_mask, hs->msg_index, t);
	for (size_t i = 0; t[i] != T_END; i++) {
		switch (t[i]) {
		case T_E:
			if ((r = zila_view_get_bytes(&v, 32, &p)) != 0)
				goto out;
			memcpy(hs->re, p, 32);
			hs->has_re = true;
			mix_hash(hs, hs->re, 32);
			if (hs->psk_mask)
				mix_key(hs, hs->re, 32);
			break;
		case T_S: {
			size_t n = hs->cs.has_k ? 32 + ZILA_NOISE_TAGLEN : 32;
			if ((r = zila_view_get_bytes(&v, n, &p)) != 0)
				goto out;
			zila_buf_reset(&tmp);
			if ((r = decrypt_and_hash(hs, p, n, &tmp)) != 0)
				goto out;
			memcpy(hs->rs, tmp.p, 32);
			hs->has_rs = true;
			break;
		}
		case T_EE:
		case T_ES:
		case T_SE:
		case T_PSK:
			if ((r = mix_token(hs, t[i], d)) != 0)
				goto out;
			break;
		case T_END:
			break;
		}
	}
	if ((r = decrypt_and_hash(hs, v.p, v.len, payload)) != 0)
		goto out;
	hs->msg_index++;
	r = 0;
out:
	sodium_memzero(d, sizeof(d));
	zila_buf_release(&tmp);
	if (r != 0)
		hs->failed = true;
	return r;
}

bool zila_noise_done(const struct zila_noise_hs *hs)
{
	return !hs->failed && hs->msg_index == 3;
}

const uint8_t *zila_noise_hash(const struct zila_noise_hs *hs)
{
	return hs->h;
}

const uint8_t *zila_noise_remote_static(const struct zila_noise_hs *hs)
{
	return hs->has_rs ? hs->rs : NULL;
}

int zila_noise_split(struct zila_noise_hs *hs, struct zila_noise_cipher *c1, struct zila_noise_cipher *c2)
{
	uint8_t k1[ZILA_NOISE_HASHLEN], k2[ZILA_NOISE_HASHLEN];
	memset(c1, 0, sizeof(*c1));
	memset(c2, 0, sizeof(*c2));
	if (!zila_noise_done(hs))
		return ZILA_EPROTO;
	hkdf(hs->ck, NULL, 0, k1, k2, NULL);
	init_key(c1, k1);
	init_key(c2, k2);
	sodium_memzero(k1, sizeof(k1));
	sodium_memzero(k2, sizeof(k2));
	return 0;
}

int zila_noise_encrypt(struct zila_noise_cipher *c, const uint8_t *pt, size_t pt_len, struct zila_buf *out)
{
	if (!c->has_k)
		return ZILA_EPROTO;
	return cipher_encrypt_ad(c, NULL, 0, pt, pt_len, out);
}

int zila_noise_decrypt(struct zila_noise_cipher *c, const uint8_t *ct, size_t ct_len, struct zila_buf *out)
{
	if (!c->has_k)
		return ZILA_EPROTO;
	return cipher_decrypt_ad(c, NULL, 0, ct, ct_len, out);
}
