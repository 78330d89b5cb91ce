/* Fuzzes the decoder of encrypted bundles (version 3, proto/ENTRY.md "Bundle"): the clear
 * header, the key block of both kinds, the secretstream chunks. Pure, fixed keys. An input
 * whose first byte is odd is the plaintext of a bundle this harness encrypts itself, by the
 * spec, with chunk sizes and at most one flipped byte or cut taken from the input: so the
 * fuzzer reaches past the authentication, and a clean one must decrypt to its plaintext. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "zila/bundle.h"

static uint8_t dev_pk[32], dev_sk[64], org_key[32];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	uint8_t seed[32];
	if (sodium_init() < 0)
		abort();
	memset(seed, 5, sizeof(seed));
	crypto_sign_seed_keypair(dev_pk, dev_sk, seed);
	memset(org_key, 6, sizeof(org_key));
	return 0;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* A bundle of kind to the fixed keys, its plaintext cut into chunks of `step` bytes. */
static size_t seal(uint8_t *out, uint8_t kind, const uint8_t *pt, size_t n, size_t step)
{
	uint8_t key[crypto_secretstream_xchacha20poly1305_KEYBYTES], xpk[32];
	crypto_secretstream_xchacha20poly1305_state st;
	size_t at = 0;
	crypto_secretstream_xchacha20poly1305_keygen(key);
	memcpy(out, "ZILABNDL", 8);
	out[8] = ZILA_BUNDLE_SEALED_VERSION;
	out[9] = kind;
	at = 10;
	if (kind == ZILA_BUNDLE_TO_DEVICE) {
		memcpy(out + at, dev_pk, 32);
		at += 32;
		if (crypto_sign_ed25519_pk_to_curve25519(xpk, dev_pk) != 0 || crypto_box_seal(out + at, key, 32, xpk) != 0)
			abort();
		at += crypto_box_SEALBYTES + 32;
	} else {
		randombytes_buf(out + at, crypto_secretbox_NONCEBYTES);
		crypto_secretbox_easy(out + at + crypto_secretbox_NONCEBYTES, key, 32, out + at, org_key);
		at += crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + 32;
	}
	crypto_secretstream_xchacha20poly1305_init_push(&st, out + at, key);
	at += crypto_secretstream_xchacha20poly1305_HEADERBYTES;
	size_t head = at, off = 0;
	do {
		size_t k = n - off < step ? n - off : step;
		unsigned long long clen;
		bool last = off + k == n;
		crypto_secretstream_xchacha20poly1305_push(&st, out + at + 4, &clen, pt + off, k, off == 0 ? out : NULL,
							   off == 0 ? head : 0,
							   last ? crypto_secretstream_xchacha20poly1305_TAG_FINAL : 0);
		put32(out + at, (uint32_t)clen);
		at += 4 + (size_t)clen;
		off += k;
	} while (off < n);
	return at;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zila_bundle_keys keys = { dev_pk, dev_sk, org_key };
	struct zila_buf plain;
	struct zila_error err;
	uint8_t *in;
	size_t len;
	bool clean = false;
	if (size >= 4 && (data[0] & 1)) {
		const uint8_t *pt = data + 4;
		size_t n = size - 4, step = 1 + (size_t)data[1] * 257 % ZILA_BUNDLE_CHUNK;
		size_t nchunks = n / step + 1;
		in = malloc(200 + n + nchunks * 24);
		if (in == NULL)
			abort();
		len = seal(in, (data[0] & 2) ? ZILA_BUNDLE_TO_ORG : ZILA_BUNDLE_TO_DEVICE, pt, n, step);
		size_t where = ((size_t)data[2] << 8 | data[3]) % len;
		if (data[0] & 4)
			in[where] ^= (uint8_t)(1u << (data[0] >> 5));
		else if (data[0] & 8)
			len = where;
		else
			clean = true;
		zila_buf_init(&plain, len);
		zila_error_clear(&err);
		int r = zila_bundle_decrypt(in, len, &keys, "fuzz", &plain, &err);
		if (clean && (r != 0 || plain.len != n || (n > 0 && memcmp(plain.p, pt, n) != 0)))
			abort(); /* a bundle made by the spec must open to its plaintext */
		if (!clean && r == 0)
			abort(); /* a flipped byte or a cut must never pass */
	} else {
		/* a copy of its own, so that reading past the input is caught */
		len = size;
		if ((in = malloc(len ? len : 1)) == NULL)
			abort();
		if (size > 0)
			memcpy(in, data, size);
		zila_buf_init(&plain, len);
		zila_error_clear(&err);
		(void)!zila_bundle_decrypt(in, len, &keys, "fuzz", &plain, &err);
	}
	zila_buf_release(&plain);
	free(in);
	return 0;
}
