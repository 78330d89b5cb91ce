/* The encrypted channel between two devices, sans I/O: a Noise_XXpsk0 handshake (psk derived
 * from the organisation, or from an invite code when a laptop joins) carrying certificates,
 * then one secretstream per direction in length-prefixed frames. The caller moves bytes; the
 * channel never touches a socket or a clock. Wire layout: proto/TRUST.md. */
#ifndef ZILA_CHANNEL_H
#define ZILA_CHANNEL_H

#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>

#include "zila/buf.h"
#include "zila/err.h"
#include "zila/noise.h"
#include "zila/trust.h"

#define ZILA_FRAME_MAX (1024 * 1024) /* bytes after a frame's 4-byte length, hard limit */
#define ZILA_CHANNEL_MSG_MAX (ZILA_FRAME_MAX - crypto_secretstream_xchacha20poly1305_ABYTES)
#define ZILA_CHANNEL_REKEY_BYTES ((uint64_t)64 << 20) /* default: rekey after 64 MiB sent */
#define ZILA_CHANNEL_VERSION 2 /* 2: the members' psk from the organisation secret */

enum zila_channel_mode {
	ZILA_CHANNEL_MEMBER = 1, /* both sides enrolled: psk from the organisation secret */
	ZILA_CHANNEL_JOIN = 2,   /* a laptop with an invite code meets HQ: psk from the code */
};

/* What the channel learnt about the peer during the handshake. */
struct zila_channel_peer {
	uint8_t sign_pk[32]; /* the peer's Ed25519 key, bound to the handshake */
	bool has_cert;
	struct zila_cert cert;
	bool has_issuer;
	struct zila_cert issuer;
	bool joining; /* JOIN mode, responder side: the laptop's request */
	struct zila_enrol_req req;
};

/* Decides whether the peer may proceed; 0 accepts, a negative code (reason in err) refuses.
 * Called once, after the peer's certificate arrived and its key was bound to the handshake. */
typedef int (*zila_peer_check_fn)(void *ctx, const struct zila_channel_peer *peer, struct zila_error *err);
/* Responder: the psk for a session opened in mode (with invite_id in JOIN mode); non-zero
 * refuses the session before anything is decrypted. */
typedef int (*zila_psk_fn)(void *ctx, uint8_t mode, const uint8_t invite_id[ZILA_INVITE_ID_LEN], uint8_t psk[32]);

struct zila_channel_config {
	bool initiator;
	uint8_t mode;                 /* initiator: enum zila_channel_mode */
	const uint8_t *sign_sk;       /* this device's Ed25519 secret key (64 bytes), borrowed */
	struct zila_view cert;        /* this device's certificate; empty for a joining laptop */
	struct zila_view issuer_cert; /* the issuer's certificate when not the root; may be empty */
	const char *join_name;        /* JOIN initiator: the name the laptop asks for */
	uint8_t psk[32];              /* initiator (and a responder without psk_fn) */
	uint8_t invite_id[ZILA_INVITE_ID_LEN]; /* JOIN initiator */
	zila_psk_fn psk_fn;
	void *psk_ctx;
	zila_peer_check_fn check; /* required */
	void *check_ctx;
	uint64_t rekey_bytes;           /* 0: ZILA_CHANNEL_REKEY_BYTES */
	const uint8_t *test_ephemeral;  /* fixed X25519 ephemeral secret: golden vectors only */
};

enum zila_channel_event {
	ZILA_CHANNEL_NONE = 0,    /* more input needed */
	ZILA_CHANNEL_ESTABLISHED, /* the handshake completed with this input */
	ZILA_CHANNEL_MESSAGE,     /* one message was appended to msg */
	ZILA_CHANNEL_CLOSED,      /* the peer closed the stream (authenticated) */
};

enum zila_channel_state { ZILA_CH_HANDSHAKE, ZILA_CH_OPEN, ZILA_CH_CLOSED, ZILA_CH_FAILED };

struct zila_channel {
	enum zila_channel_state state;
	struct zila_channel_config cfg;
	uint8_t cert[ZILA_CERT_LEN], issuer[ZILA_CERT_LEN];
	bool has_cert, has_issuer;
	char join_name[ZILA_NAME_MAX + 1];
	uint8_t x_sk[32];
	struct zila_noise_hs hs;
	bool hs_started;
	struct zila_channel_peer peer;
	uint8_t hash[ZILA_NOISE_HASHLEN];
	crypto_secretstream_xchacha20poly1305_state tx, rx;
	uint8_t rx_key[32]; /* until the peer's stream header arrives */
	bool rx_ready;    /* the peer's stream header arrived */
	bool tx_closed;   /* we sent the final frame */
	bool rx_closed;   /* the peer's final frame arrived */
	uint64_t tx_since_rekey;
	struct zila_buf in; /* a partial frame */
};

/* Prepares a channel; copies what it needs from cfg except sign_sk and the callback contexts,
 * which must outlive it. */
int zila_channel_init(struct zila_channel *ch, const struct zila_channel_config *cfg) ZILA_MUST_CHECK;
/* Wipes every key and frees buffers; safe to call twice. */
void zila_channel_release(struct zila_channel *ch);
/* Initiator: appends the first handshake frame to out. */
int zila_channel_start(struct zila_channel *ch, struct zila_buf *out) ZILA_MUST_CHECK;
/* Consumes received bytes, at most one frame per call: *used gets the bytes taken (call again
 * with the rest). Handshake replies and our stream header are appended to out, a decrypted
 * message to msg; *event says what happened. Any error fails the channel for good. */
int zila_channel_feed(struct zila_channel *ch, const uint8_t *p, size_t len, size_t *used, struct zila_buf *out,
		      struct zila_buf *msg, enum zila_channel_event *event) ZILA_MUST_CHECK;
/* Encrypts one message (at most ZILA_CHANNEL_MSG_MAX bytes) into a frame appended to out. */
int zila_channel_send(struct zila_channel *ch, const uint8_t *p, size_t len, struct zila_buf *out) ZILA_MUST_CHECK;
/* Appends the authenticated end of our stream; nothing may be sent after it. */
int zila_channel_close(struct zila_channel *ch, struct zila_buf *out) ZILA_MUST_CHECK;
/* The transport ended: 0 when the peer closed properly, ZILA_ESHORT when the stream was cut
 * (truncation), ZILA_ECLOSED when the channel had failed. */
int zila_channel_eof(const struct zila_channel *ch) ZILA_MUST_CHECK;
/* The peer, valid once established and as long as ch. */
const struct zila_channel_peer *zila_channel_peer(const struct zila_channel *ch);
/* The handshake hash (64 bytes) for channel binding, valid once established. */
const uint8_t *zila_channel_hash(const struct zila_channel *ch);

/* Peer checks over a replica (ctx: struct zila_trust_ctx *): the certificate chains to this
 * organisation's root, is valid now, and the device is not revoked. A joining laptop (JOIN
 * mode, proven by its invite psk) passes; the caller then redeems the invite. */
int zila_channel_check_member(void *ctx, const struct zila_channel_peer *peer, struct zila_error *err);
/* The responder's psk over a replica (ctx: struct zila_trust_ctx *): the organisation psk for
 * members, the invite psk for a usable invite. */
int zila_channel_psk_replica(void *ctx, uint8_t mode, const uint8_t invite_id[ZILA_INVITE_ID_LEN], uint8_t psk[32]);
/* A joining laptop's check of HQ (ctx: struct zila_join_check *): an HQ certificate signed by
 * the root, valid at now, whose organisation fingerprint starts as the invite code says. */
struct zila_join_check {
	struct zila_invite invite;
	uint64_t now;
	uint8_t root_pk[32]; /* filled when the check passes */
};
int zila_channel_check_hq_for_invite(void *ctx, const struct zila_channel_peer *peer, struct zila_error *err);

#endif
