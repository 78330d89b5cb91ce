/* The Noise XX handshake with optional psk modifiers (Noise_XX[pskN]_25519_ChaChaPoly_BLAKE2b),
 * built on libsodium primitives. Pure functions over buffers: no I/O, no clock, no randomness
 * except a fresh ephemeral key unless a test fixes one. zila uses XXpsk0 (see proto/TRUST.md). */
#ifndef ZILA_NOISE_H
#define ZILA_NOISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zila/buf.h"
#include "zila/err.h"

#define ZILA_NOISE_DHLEN 32
#define ZILA_NOISE_HASHLEN 64
#define ZILA_NOISE_KEYLEN 32
#define ZILA_NOISE_TAGLEN 16
#define ZILA_NOISE_MSG_MAX 65535 /* a Noise message, per the specification */
#define ZILA_NOISE_PSK_MAX 4

/* psk modifier positions, as a bit mask: psk0 (start of message 1), psk1 (end of message 1),
 * psk2 (end of message 2), psk3 (end of message 3). */
enum {
	ZILA_NOISE_PSK0 = 1 << 0,
	ZILA_NOISE_PSK1 = 1 << 1,
	ZILA_NOISE_PSK2 = 1 << 2,
	ZILA_NOISE_PSK3 = 1 << 3,
};

/* A CipherState: a key and a 64-bit nonce. */
struct zila_noise_cipher {
	uint8_t k[ZILA_NOISE_KEYLEN];
	uint64_t n;
	bool has_k;
};

/* A HandshakeState for the XX pattern. Embedded by its owner; zila_noise_release() wipes it. */
struct zila_noise_hs {
	bool initiator;
	unsigned psk_mask;
	unsigned npsk_used;
	uint8_t psks[ZILA_NOISE_PSK_MAX][32];
	unsigned npsks;
	uint8_t h[ZILA_NOISE_HASHLEN];
	uint8_t ck[ZILA_NOISE_HASHLEN];
	struct zila_noise_cipher cs;
	uint8_t s_sk[32], s_pk[32];
	uint8_t e_sk[32], e_pk[32];
	bool e_fixed;
	uint8_t re[32], rs[32];
	bool has_re, has_rs;
	unsigned msg_index; /* 0, 1, 2: the next handshake message */
	bool failed;
};

/* Starts a handshake: protocol name from psk_mask, prologue mixed in. psks holds npsks keys of
 * 32 bytes, used in order at the psk tokens (npsks must equal the number of bits in psk_mask).
 * s_sk is this side's static X25519 secret key (copied). */
int zila_noise_init(struct zila_noise_hs *hs, bool initiator, unsigned psk_mask,
		    const uint8_t (*psks)[32], size_t npsks, const uint8_t s_sk[32],
		    const uint8_t *prologue, size_t prologue_len) ZILA_MUST_CHECK;
/* Wipes every secret in hs. */
void zila_noise_release(struct zila_noise_hs *hs);
/* Fixes the next ephemeral key (test vectors only); otherwise one is generated. */
void zila_noise_set_ephemeral(struct zila_noise_hs *hs, const uint8_t e_sk[32]);
/* The protocol name for a psk mask, e.g. "Noise_XXpsk0_25519_ChaChaPoly_BLAKE2b". */
void zila_noise_name(unsigned psk_mask, char out[64]);

/* Writes the next handshake message (tokens, then payload encrypted when a key is set) to
 * out. ZILA_EPROTO when it is not this side's turn. */
int zila_noise_write(struct zila_noise_hs *hs, const uint8_t *payload, size_t payload_len,
		     struct zila_buf *out) ZILA_MUST_CHECK;
/* Reads the peer's next handshake message; the decrypted payload is appended to payload.
 * Any failure (ZILA_EAUTH, ZILA_ESHORT, ...) leaves hs failed: it accepts nothing more. */
int zila_noise_read(struct zila_noise_hs *hs, const uint8_t *msg, size_t msg_len,
		    struct zila_buf *payload) ZILA_MUST_CHECK;
/* True once all three messages have been processed. */
bool zila_noise_done(const struct zila_noise_hs *hs);
/* The handshake hash (valid once done). */
const uint8_t *zila_noise_hash(const struct zila_noise_hs *hs);
/* The peer's static public key (X25519), or NULL before it was received. */
const uint8_t *zila_noise_remote_static(const struct zila_noise_hs *hs);
/* Split(): c1 encrypts initiator-to-responder, c2 responder-to-initiator. */
int zila_noise_split(struct zila_noise_hs *hs, struct zila_noise_cipher *c1,
		     struct zila_noise_cipher *c2) ZILA_MUST_CHECK;

/* Transport with a CipherState (ChaChaPoly, nonce n, empty associated data). */
int zila_noise_encrypt(struct zila_noise_cipher *c, const uint8_t *pt, size_t pt_len,
		       struct zila_buf *out) ZILA_MUST_CHECK;
int zila_noise_decrypt(struct zila_noise_cipher *c, const uint8_t *ct, size_t ct_len,
		       struct zila_buf *out) ZILA_MUST_CHECK;

#endif
