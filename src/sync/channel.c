/* The channel state machine: framing, the XXpsk0 handshake with certificates in its payloads,
 * then secretstream per direction with rekeying and an authenticated close. */
#include "zila/channel.h"

#include <string.h>

#define HS_FRAME_MAX (ZILA_NOISE_MSG_MAX + 16)
#define SS_HEADER crypto_secretstream_xchacha20poly1305_HEADERBYTES
#define SS_ABYTES crypto_secretstream_xchacha20poly1305_ABYTES
#define PROLOGUE "zila-channel-v1"

enum { PAYLOAD_CERTS = 1, PAYLOAD_JOIN = 2 };

/* Every key and secret the channel holds, wiped; the channel never works again. */
static void wipe(struct zila_channel *ch)
{
	ch->state = ZILA_CH_FAILED;
	zila_noise_release(&ch->hs);
	sodium_memzero(ch->x_sk, sizeof(ch->x_sk));
	sodium_memzero(ch->cfg.psk, sizeof(ch->cfg.psk));
	sodium_memzero(&ch->tx, sizeof(ch->tx));
	sodium_memzero(&ch->rx, sizeof(ch->rx));
	sodium_memzero(ch->rx_key, sizeof(ch->rx_key));
}

static int fail(struct zila_channel *ch, int r)
{
	wipe(ch); /* a failed channel drops every key now */
	return r;
}

int zila_channel_init(struct zila_channel *ch, const struct zila_channel_config *cfg)
{
	int r = ZILA_EINVAL;
	memset(ch, 0, sizeof(*ch));
	zila_buf_init(&ch->in, 4 + ZILA_FRAME_MAX);
	ch->state = ZILA_CH_FAILED;
	if (cfg->sign_sk == NULL || cfg->check == NULL)
		goto out;
	if (cfg->initiator && cfg->mode != ZILA_CHANNEL_MEMBER && cfg->mode != ZILA_CHANNEL_JOIN)
		goto out;
	if (cfg->cert.len != 0 && cfg->cert.len != ZILA_CERT_LEN)
		goto out;
	if (cfg->issuer_cert.len != 0 && cfg->issuer_cert.len != ZILA_CERT_LEN)
		goto out;
	/* Only a joining laptop goes without a certificate. */
	if (cfg->cert.len == 0 && !(cfg->initiator && cfg->mode == ZILA_CHANNEL_JOIN))
		goto out;
	ch->cfg = *cfg;
	ch->cfg.cert = zila_view_make(NULL, 0);
	ch->cfg.issuer_cert = zila_view_make(NULL, 0);
	ch->cfg.join_name = NULL;
	if (cfg->cert.len) {
		memcpy(ch->cert, cfg->cert.p, ZILA_CERT_LEN);
		ch->has_cert = true;
	}
	if (cfg->issuer_cert.len) {
		memcpy(ch->issuer, cfg->issuer_cert.p, ZILA_CERT_LEN);
		ch->has_issuer = true;
	}
	if (cfg->initiator && cfg->mode == ZILA_CHANNEL_JOIN) {
		if (cfg->join_name == NULL || strlen(cfg->join_name) == 0 || strlen(cfg->join_name) > ZILA_NAME_MAX)
			goto out;
		memcpy(ch->join_name, cfg->join_name, strlen(cfg->join_name) + 1);
	}
	if (ch->cfg.rekey_bytes == 0)
		ch->cfg.rekey_bytes = ZILA_CHANNEL_REKEY_BYTES;
	if (crypto_sign_ed25519_sk_to_curve25519(ch->x_sk, cfg->sign_sk) != 0)
		goto out;
	ch->state = ZILA_CH_HANDSHAKE;
	r = 0;
out:
	return r;
}

void zila_channel_release(struct zila_channel *ch)
{
	zila_buf_release(&ch->in);
	wipe(ch);
}

static int put_frame_header(struct zila_buf *out, size_t len)
{
	if (len == 0 || len > ZILA_FRAME_MAX)
		return ZILA_ETOOBIG;
	return zila_buf_put_u32be(out, (uint32_t)len);
}

/* The cleartext head of message 1, also mixed into the handshake as the prologue. */
static int msg1_head(uint8_t mode, const uint8_t *invite_id, struct zila_buf *b)
{
	int r;
	if ((r = zila_buf_put_u8(b, ZILA_CHANNEL_VERSION)) != 0 || (r = zila_buf_put_u8(b, mode)) != 0)
		return r;
	if (mode == ZILA_CHANNEL_JOIN)
		r = zila_buf_put(b, invite_id, ZILA_INVITE_ID_LEN);
	return r;
}

static int start_noise(struct zila_channel *ch, const uint8_t *head, size_t head_len, const uint8_t psk[32])
{
	uint8_t prologue[64];
	size_t n = sizeof(PROLOGUE) - 1;
	memcpy(prologue, PROLOGUE, n);
	memcpy(prologue + n, head, head_len);
	int r = zila_noise_init(&ch->hs, ch->cfg.initiator, ZILA_NOISE_PSK0, (const uint8_t(*)[32])psk, 1, ch->x_sk,
				prologue, n + head_len);
	if (r == 0 && ch->cfg.test_ephemeral != NULL)
		zila_noise_set_ephemeral(&ch->hs, ch->cfg.test_ephemeral);
	ch->hs_started = r == 0;
	return r;
}

/* Our handshake payload: the certificate chain, or a joining laptop's request. */
static int our_payload(struct zila_channel *ch, struct zila_buf *b)
{
	int r;
	if (!ch->has_cert) {
		struct zila_enrol_req req;
		struct zila_buf rb;
		memset(&req, 0, sizeof(req));
		memcpy(req.name, ch->join_name, sizeof(req.name));
		zila_buf_init(&rb, ZILA_ENROL_REQ_MAX);
		r = zila_enrol_req_sign(&req, ch->cfg.sign_sk, &rb);
		if (r == 0 && (r = zila_buf_put_u8(b, PAYLOAD_JOIN)) == 0 && (r = zila_buf_put_u16be(b, (uint16_t)rb.len)) == 0)
			r = zila_buf_put(b, rb.p, rb.len);
		zila_buf_release(&rb);
		return r;
	}
	if ((r = zila_buf_put_u8(b, PAYLOAD_CERTS)) != 0 || (r = zila_buf_put_u8(b, ch->has_issuer ? 2 : 1)) != 0 ||
	    (r = zila_buf_put(b, ch->cert, ZILA_CERT_LEN)) != 0)
		return r;
	if (ch->has_issuer)
		r = zila_buf_put(b, ch->issuer, ZILA_CERT_LEN);
	return r;
}

/* Parses the peer's payload, binds its Ed25519 key to the Noise static key and asks cfg.check. */
static int take_peer_payload(struct zila_channel *ch, struct zila_view v, bool join_expected, struct zila_error *err)
{
	struct zila_channel_peer *pe = &ch->peer;
	uint8_t kind, n, x[32];
	const uint8_t *p;
	int r;

	memset(pe, 0, sizeof(*pe));
	if ((r = zila_view_get_u8(&v, &kind)) != 0)
		return ZILA_EPROTO;
	if (kind == PAYLOAD_CERTS && !join_expected) {
		if (zila_view_get_u8(&v, &n) != 0 || n < 1 || n > 2 || v.len != (size_t)n * ZILA_CERT_LEN)
			return ZILA_EPROTO;
		if ((r = zila_view_get_bytes(&v, ZILA_CERT_LEN, &p)) != 0 ||
		    (r = zila_cert_decode(zila_view_make(p, ZILA_CERT_LEN), &pe->cert)) != 0)
			return r;
		pe->has_cert = true;
		if (n == 2) {
			if ((r = zila_view_get_bytes(&v, ZILA_CERT_LEN, &p)) != 0 ||
			    (r = zila_cert_decode(zila_view_make(p, ZILA_CERT_LEN), &pe->issuer)) != 0)
				return r;
			pe->has_issuer = true;
		}
		memcpy(pe->sign_pk, pe->cert.device_pk, 32);
	} else if (kind == PAYLOAD_JOIN && join_expected) {
		uint16_t len;
		if (zila_view_get_u16be(&v, &len) != 0 || len != v.len || len > ZILA_ENROL_REQ_MAX)
			return ZILA_EPROTO;
		if ((r = zila_enrol_req_decode(v, &pe->req)) != 0)
			return r;
		pe->joining = true;
		memcpy(pe->sign_pk, pe->req.device_pk, 32);
	} else {
		return ZILA_EPROTO;
	}
	/* The Noise static key must be the X25519 form of the Ed25519 key the certificate (or the
	 * request) names: the es/se exchanges then prove the peer holds that signing key. */
	const uint8_t *rs = zila_noise_remote_static(&ch->hs);
	if (rs == NULL || crypto_sign_ed25519_pk_to_curve25519(x, pe->sign_pk) != 0 || sodium_memcmp(x, rs, 32) != 0)
		return ZILA_EAUTH;
	return ch->cfg.check(ch->cfg.check_ctx, pe, err);
}

static int open_streams(struct zila_channel *ch, struct zila_buf *out)
{
	struct zila_noise_cipher c1, c2;
	uint8_t header[SS_HEADER];
	int r = zila_noise_split(&ch->hs, &c1, &c2);
	if (r != 0)
		goto out;
	memcpy(ch->hash, zila_noise_hash(&ch->hs), sizeof(ch->hash));
	struct zila_noise_cipher *tx = ch->cfg.initiator ? &c1 : &c2;
	crypto_secretstream_xchacha20poly1305_init_push(&ch->tx, header, tx->k);
	if ((r = put_frame_header(out, SS_HEADER)) != 0 || (r = zila_buf_put(out, header, SS_HEADER)) != 0)
		goto out;
	memcpy(ch->rx_key, ch->cfg.initiator ? c2.k : c1.k, sizeof(ch->rx_key));
	zila_noise_release(&ch->hs);
	ch->state = ZILA_CH_OPEN;
out:
	sodium_memzero(&c1, sizeof(c1));
	sodium_memzero(&c2, sizeof(c2));
	return r;
}

int zila_channel_start(struct zila_channel *ch, struct zila_buf *out)
{
	int r = ZILA_EPROTO;
	struct zila_buf head, msg;
	zila_buf_init(&head, 16);
	zila_buf_init(&msg, ZILA_NOISE_MSG_MAX);
	if (ch->state != ZILA_CH_HANDSHAKE || !ch->cfg.initiator || ch->hs_started)
		goto out;
	if ((r = msg1_head(ch->cfg.mode, ch->cfg.invite_id, &head)) != 0 ||
	    (r = start_noise(ch, head.p, head.len, ch->cfg.psk)) != 0 || (r = zila_noise_write(&ch->hs, NULL, 0, &msg)) != 0)
		goto out;
	if ((r = put_frame_header(out, head.len + msg.len)) != 0 || (r = zila_buf_put(out, head.p, head.len)) != 0 ||
	    (r = zila_buf_put(out, msg.p, msg.len)) != 0)
		goto out;
	r = 0;
out:
	zila_buf_release(&head);
	zila_buf_release(&msg);
	return r == 0 ? 0 : fail(ch, r);
}

static int write_hs(struct zila_channel *ch, struct zila_buf *out)
{
	struct zila_buf pl, msg;
	int r;
	zila_buf_init(&pl, 1024);
	zila_buf_init(&msg, ZILA_NOISE_MSG_MAX);
	if ((r = our_payload(ch, &pl)) == 0 && (r = zila_noise_write(&ch->hs, pl.p, pl.len, &msg)) == 0 &&
	    (r = put_frame_header(out, msg.len)) == 0)
		r = zila_buf_put(out, msg.p, msg.len);
	zila_buf_release(&pl);
	zila_buf_release(&msg);
	return r;
}

static int handshake_frame(struct zila_channel *ch, const uint8_t *body, size_t len, struct zila_buf *out,
			   enum zila_channel_event *event)
{
	struct zila_buf pl;
	struct zila_error err;
	int r = ZILA_EPROTO;
	zila_buf_init(&pl, ZILA_NOISE_MSG_MAX);

	if (!ch->cfg.initiator && !ch->hs_started) {
		/* Message 1: version, mode, invite id, then -> psk, e. */
		struct zila_view v = zila_view_make(body, len);
		uint8_t ver, mode, id[ZILA_INVITE_ID_LEN] = { 0 }, psk[32];
		if (zila_view_get_u8(&v, &ver) != 0 || zila_view_get_u8(&v, &mode) != 0)
			goto out;
		if (ver != ZILA_CHANNEL_VERSION) {
			r = ZILA_EVERSION;
			goto out;
		}
		if (mode == ZILA_CHANNEL_JOIN && zila_view_get_copy(&v, id, sizeof(id)) != 0)
			goto out;
		if (mode != ZILA_CHANNEL_MEMBER && mode != ZILA_CHANNEL_JOIN)
			goto out;
		if (ch->cfg.psk_fn != NULL)
			r = ch->cfg.psk_fn(ch->cfg.psk_ctx, mode, id, psk);
		else if (mode == ZILA_CHANNEL_MEMBER)
			r = (memcpy(psk, ch->cfg.psk, 32), 0);
		else
			r = ZILA_EAUTH;
		if (r != 0) {
			r = ZILA_EAUTH;
			goto out;
		}
		ch->cfg.mode = mode;
		r = start_noise(ch, body, len - v.len, psk);
		sodium_memzero(psk, sizeof(psk));
		if (r != 0)
			goto out;
		/* Without the organisation's psk this read fails: outsiders stop here. */
		if ((r = zila_noise_read(&ch->hs, v.p, v.len, &pl)) != 0)
			goto out;
		if (pl.len != 0) {
			r = ZILA_EPROTO;
			goto out;
		}
		r = write_hs(ch, out);
		goto out;
	}
	if ((r = zila_noise_read(&ch->hs, body, len, &pl)) != 0)
		goto out;
	zila_error_clear(&err);
	bool join = !ch->cfg.initiator && ch->cfg.mode == ZILA_CHANNEL_JOIN;
	if ((r = take_peer_payload(ch, zila_buf_view(&pl), join, &err)) != 0)
		goto out;
	if (ch->cfg.initiator && (r = write_hs(ch, out)) != 0)
		goto out;
	if ((r = open_streams(ch, out)) != 0)
		goto out;
	*event = ZILA_CHANNEL_ESTABLISHED;
	r = 0;
out:
	zila_buf_release(&pl);
	return r;
}

static int transport_frame(struct zila_channel *ch, const uint8_t *body, size_t len, struct zila_buf *msg,
			   enum zila_channel_event *event)
{
	int r;
	unsigned char tag;
	unsigned long long mlen;

	if (ch->rx_closed)
		return ZILA_EPROTO;
	if (!ch->rx_ready) {
		if (len != SS_HEADER)
			return ZILA_EPROTO;
		r = crypto_secretstream_xchacha20poly1305_init_pull(&ch->rx, body, ch->rx_key) == 0 ? 0 : ZILA_EAUTH;
		sodium_memzero(ch->rx_key, sizeof(ch->rx_key));
		ch->rx_ready = r == 0;
		return r;
	}
	if (len < SS_ABYTES)
		return ZILA_EPROTO;
	size_t start = msg->len;
	if ((r = zila_buf_reserve(msg, len - SS_ABYTES)) != 0)
		return r;
	uint8_t none; /* an empty message may meet a buffer that has no memory yet */
	if (crypto_secretstream_xchacha20poly1305_pull(&ch->rx, len > SS_ABYTES ? msg->p + start : &none, &mlen, &tag, body,
						       len, NULL, 0) != 0)
		return ZILA_EAUTH;
	msg->len = start + (size_t)mlen;
	if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL) {
		if (mlen != 0)
			return ZILA_EPROTO;
		ch->rx_closed = true;
		*event = ZILA_CHANNEL_CLOSED;
	} else {
		*event = ZILA_CHANNEL_MESSAGE;
	}
	return 0;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int zila_channel_feed(struct zila_channel *ch, const uint8_t *p, size_t len, size_t *used, struct zila_buf *out,
		      struct zila_buf *msg, enum zila_channel_event *event)
{
	int r;
	const uint8_t *body;
	size_t blen, limit;

	*used = 0;
	*event = ZILA_CHANNEL_NONE;
	if (ch->state != ZILA_CH_HANDSHAKE && ch->state != ZILA_CH_OPEN)
		return ZILA_ECLOSED;
	if (ch->state == ZILA_CH_HANDSHAKE && ch->cfg.initiator && !ch->hs_started)
		return fail(ch, ZILA_EPROTO);
	limit = ch->state == ZILA_CH_HANDSHAKE ? HS_FRAME_MAX : ZILA_FRAME_MAX;

	if (ch->in.len == 0 && len >= 4) {
		/* The whole frame is in the input: no copy. */
		uint32_t l = be32(p);
		if (l == 0 || l > limit)
			return fail(ch, l == 0 ? ZILA_EPROTO : ZILA_ETOOBIG);
		if (len - 4 >= l) {
			body = p + 4;
			blen = l;
			*used = 4 + (size_t)l;
			goto have;
		}
	}
	if (ch->in.len < 4) {
		size_t take = 4 - ch->in.len < len ? 4 - ch->in.len : len;
		if ((r = zila_buf_put(&ch->in, p, take)) != 0)
			return fail(ch, r);
		*used += take;
		p += take;
		len -= take;
		if (ch->in.len < 4)
			return 0;
	}
	uint32_t l = be32(ch->in.p);
	/* The length is checked before anything is allocated for the body. */
	if (l == 0 || l > limit)
		return fail(ch, l == 0 ? ZILA_EPROTO : ZILA_ETOOBIG);
	size_t need = 4 + (size_t)l - ch->in.len;
	size_t take = need < len ? need : len;
	if ((r = zila_buf_put(&ch->in, p, take)) != 0)
		return fail(ch, r);
	*used += take;
	if (ch->in.len < 4 + (size_t)l)
		return 0;
	body = ch->in.p + 4;
	blen = l;
have:
	if (ch->state == ZILA_CH_HANDSHAKE)
		r = handshake_frame(ch, body, blen, out, event);
	else
		r = transport_frame(ch, body, blen, msg, event);
	zila_buf_reset(&ch->in);
	return r == 0 ? 0 : fail(ch, r);
}

int zila_channel_send(struct zila_channel *ch, const uint8_t *p, size_t len, struct zila_buf *out)
{
	int r;
	unsigned long long clen;
	unsigned char tag = crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;

	if (ch->state != ZILA_CH_OPEN || ch->tx_closed)
		return ZILA_ECLOSED;
	if (len > ZILA_CHANNEL_MSG_MAX)
		return ZILA_ETOOBIG;
	ch->tx_since_rekey += len;
	if (ch->tx_since_rekey >= ch->cfg.rekey_bytes) {
		/* Both sides derive the next key after this message. */
		tag = crypto_secretstream_xchacha20poly1305_TAG_REKEY;
		ch->tx_since_rekey = 0;
	}
	if ((r = zila_buf_reserve(out, 4 + len + SS_ABYTES)) != 0 || (r = put_frame_header(out, len + SS_ABYTES)) != 0)
		return r;
	crypto_secretstream_xchacha20poly1305_push(&ch->tx, out->p + out->len, &clen, p, len, NULL, 0, tag);
	out->len += (size_t)clen;
	return 0;
}

int zila_channel_close(struct zila_channel *ch, struct zila_buf *out)
{
	int r;
	unsigned long long clen;
	if (ch->state != ZILA_CH_OPEN || ch->tx_closed)
		return ZILA_ECLOSED;
	if ((r = zila_buf_reserve(out, 4 + SS_ABYTES)) != 0 || (r = put_frame_header(out, SS_ABYTES)) != 0)
		return r;
	crypto_secretstream_xchacha20poly1305_push(&ch->tx, out->p + out->len, &clen, NULL, 0, NULL, 0,
						   crypto_secretstream_xchacha20poly1305_TAG_FINAL);
	out->len += (size_t)clen;
	ch->tx_closed = true;
	return 0;
}

int zila_channel_eof(const struct zila_channel *ch)
{
	if (ch->state == ZILA_CH_FAILED)
		return ZILA_ECLOSED;
	return ch->rx_closed ? 0 : ZILA_ESHORT;
}

const struct zila_channel_peer *zila_channel_peer(const struct zila_channel *ch)
{
	return &ch->peer;
}

const uint8_t *zila_channel_hash(const struct zila_channel *ch)
{
	return ch->hash;
}
