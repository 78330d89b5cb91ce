/* USB bundles written and read by the sync session. Layout (proto/ENTRY.md, "Bundle"):
 *   "ZILABNDL" | u8 version = 4 | { u32be len | Message }* | u32be 0 | BLAKE2b-256 of all before
 * (version 4: Entries are packed chunks, each a whole zstd frame; version 2 is still read)
 * The hash catches truncation and any flipped byte before anything is applied; each entry
 * also carries its author's signature. On the stick that bundle is encrypted (version 3):
 *   "ZILABNDL" | u8 3 | u8 kind | key block | secretstream header | { u32be len | chunk }*
 * Pure: bytes out through a sink, bytes in from memory. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "zila/bundle.h"
#include "zila/session.h"
#include "zila/trust.h"

#define MAGIC "ZILABNDL"

struct writer {
	zila_bundle_sink_fn sink;
	void *ctx;
	crypto_generichash_state h;
};

static int w_put(struct writer *w, const void *p, size_t n)
{
	crypto_generichash_update(&w->h, p, n);
	return n > 0 ? w->sink(w->ctx, p, n) : 0;
}

static int w_message(void *ctx, const uint8_t *p, size_t len)
{
	struct writer *w = ctx;
	uint8_t n[4] = { (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len };
	int r = w_put(w, n, 4);
	return r ? r : w_put(w, p, len);
}

int zila_bundle_write(struct zila_store *s, const struct zila_vector *have, zila_part_filter_fn filter,
		      void *filter_ctx, zila_bundle_sink_fn sink, void *sink_ctx, size_t *nentries,
		      struct zila_error *err)
{
	struct writer w;
	uint8_t hash[32], version = ZILA_BUNDLE_VERSION;
	uint64_t n = 0;
	int r;
	memset(&w, 0, sizeof(w));
	w.sink = sink;
	w.ctx = sink_ctx;
	if (nentries)
		*nentries = 0;
	if ((r = zila_store_seal(s, NULL, err)) != 0)
		return r;
	crypto_generichash_init(&w.h, NULL, 0, 32);
	r = w_put(&w, MAGIC, 8);
	r = r ? r : w_put(&w, &version, 1);
	/* One read transaction: the bundle is a consistent snapshot. */
	if (r == 0 && (r = zila_store_snapshot_begin(s)) == 0) {
		r = zila_session_export(s, have, filter, filter_ctx, w_message, &w, &n, err);
		zila_store_snapshot_end(s);
	}
	static const uint8_t end[4] = { 0, 0, 0, 0 };
	r = r ? r : w_put(&w, end, 4);
	if (r == 0) {
		crypto_generichash_final(&w.h, hash, 32);
		r = sink(sink_ctx, hash, 32);
	}
	if (r != 0) {
		if (err == NULL || err->code == 0)
			r = zila_error_set(err, r, "cannot write the bundle: %s", zila_strerror(r));
		return r;
	}
	if (nentries)
		*nentries = (size_t)n;
	return 0;
}

/* Walks the messages of a verified-length bundle body; fn gets each. */
typedef int (*msg_fn)(void *ctx, const uint8_t *p, size_t len, struct zila_error *err);

static int walk(struct zila_view body, msg_fn fn, void *ctx, struct zila_error *err, const char *path)
{
	for (;;) {
		uint32_t len;
		const uint8_t *p;
		if (zila_view_get_u32be(&body, &len) != 0)
			return zila_error_set(err, ZILA_ESHORT, "bundle '%s' is truncated; nothing was applied", path);
		if (len == 0)
			break;
		if (len > ZILA_SESSION_MSG_MAX || zila_view_get_bytes(&body, len, &p) != 0)
			return zila_error_set(err, ZILA_EFORMAT, "bundle '%s' is damaged; nothing was applied", path);
		int r = fn(ctx, p, len, err);
		if (r != 0)
			return r;
	}
	if (body.len != 0)
		return zila_error_set(err, ZILA_EFORMAT, "bundle '%s' has bytes after its end; nothing was applied", path);
	return 0;
}

/* Pass one: every message within limits, every entry signed by its author. */
static int verify_one(void *ctx, const uint8_t *p, size_t len, struct zila_error *err)
{
	const char *path = ctx;
	struct zila_error why;
	zila_error_clear(&why);
	int r = zila_session_verify_message(p, len, &why);
	if (r != 0)
		return zila_error_set(err, r == ZILA_ESIG ? r : ZILA_EFORMAT,
				      "bundle '%s' holds a message that fails verification (%s); nothing was applied", path,
				      why.msg);
	return 0;
}

static int ignore_acks(void *ctx, const uint8_t *p, size_t len)
{
	(void)ctx;
	(void)p;
	(void)len;
	return 0;
}

static int apply_one(void *ctx, const uint8_t *p, size_t len, struct zila_error *err)
{
	return zila_session_receive(ctx, p, len, err);
}

static int read_plain(struct zila_store *s, struct zila_trust_ctx *trust, const uint8_t *p, size_t len,
		      const char *path, struct zila_apply_stats *st, struct zila_error *err);

int zila_bundle_read(struct zila_store *s, struct zila_trust_ctx *trust, const uint8_t *p, size_t len,
		     const char *path, struct zila_apply_stats *st, struct zila_error *err)
{
	int kind = zila_bundle_kind(p, len);
	if (kind != ZILA_BUNDLE_TO_DEVICE && kind != ZILA_BUNDLE_TO_ORG)
		return read_plain(s, trust, p, len, path, st, err);
	uint8_t secret[ZILA_ORG_SECRET_LEN], org_key[32];
	struct zila_bundle_keys keys = { zila_store_device_pk(s), zila_store_device_sk(s), NULL };
	struct zila_buf plain;
	if (kind == ZILA_BUNDLE_TO_ORG && zila_trust_org_secret(s, secret) == 0) {
		zila_org_bundle_key(secret, org_key);
		keys.org_key = org_key;
	}
	sodium_memzero(secret, sizeof(secret));
	if (st != NULL)
		memset(st, 0, sizeof(*st));
	zila_buf_init(&plain, len);
	int r = zila_bundle_decrypt(p, len, &keys, path, &plain, err);
	sodium_memzero(org_key, sizeof(org_key));
	if (r == 0 && zila_bundle_kind(plain.p, plain.len) != ZILA_BUNDLE_PLAIN)
		r = zila_error_set(err, ZILA_EFORMAT, "bundle '%s' holds no bundle inside; nothing was applied", path);
	if (r == 0)
		r = read_plain(s, trust, plain.p, plain.len, path, st, err);
	if (plain.p != NULL)
		sodium_memzero(plain.p, plain.len);
	zila_buf_release(&plain);
	return r;
}

static int read_plain(struct zila_store *s, struct zila_trust_ctx *trust, const uint8_t *p, size_t len,
		      const char *path, struct zila_apply_stats *st, struct zila_error *err)
{
	struct zila_apply_stats dummy;
	struct zila_session *sess = NULL;
	uint8_t hash[32];
	int r;
	if (st == NULL)
		st = &dummy;
	memset(st, 0, sizeof(*st));
	if (len < ZILA_BUNDLE_MIN) {
		r = zila_error_set(err, ZILA_ESHORT, "bundle '%s' is too short to be a bundle", path);
		goto out;
	}
	if (memcmp(p, MAGIC, 8) != 0) {
		r = zila_error_set(err, ZILA_EFORMAT, "'%s' is not a zila bundle", path);
		goto out;
	}
	/* Version 2 (entries as stored, before packed chunks) reads through the same session. */
	if (p[8] != ZILA_BUNDLE_VERSION && p[8] != ZILA_BUNDLE_VERSION_OLD) {
		r = zila_error_set(err, ZILA_EVERSION,
				   "bundle '%s' has format version %u; this zila reads versions %u, %u and %u: update it",
				   path, p[8], ZILA_BUNDLE_VERSION_OLD, ZILA_BUNDLE_SEALED_VERSION, ZILA_BUNDLE_VERSION);
		goto out;
	}
	crypto_generichash(hash, 32, p, len - 32, NULL, 0);
	if (sodium_memcmp(hash, p + len - 32, 32) != 0) {
		r = zila_error_set(err, ZILA_EFORMAT, "bundle '%s' is damaged or truncated (checksum); nothing was applied",
				   path);
		goto out;
	}
	struct zila_view body = zila_view_make(p + 9, len - 9 - 32);
	if ((r = walk(body, verify_one, (void *)path, err, path)) != 0)
		goto out;
	struct zila_session_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.store = s;
	cfg.trust = trust;
	cfg.send = ignore_acks;
	if ((r = zila_session_new(&sess, &cfg, err)) != 0 || (r = zila_session_import_begin(sess, err)) != 0)
		goto out;
	r = walk(body, apply_one, sess, err, path);
	const struct zila_session_stats *ss = zila_session_stats(sess);
	st->nreceived = ss->entries_received;
	st->napplied = ss->entries_applied;
	st->nduplicate = ss->entries_duplicate;
	st->nrejected = ss->entries_rejected;
	st->nheld = ss->entries_held;
	st->ntrust = ss->trust_received;
	st->nconflicts = ss->conflicts;
	st->nparked = ss->parked;
	if (r == 0 && !zila_session_done(sess))
		r = zila_error_set(err, ZILA_EFORMAT, "bundle '%s' ends without its last message", path);
out:
	zila_session_free(sess);
	return r;
}

/* --- encrypted bundles (version 3) ----------------------------------------------------- */

#define SS_HEADER crypto_secretstream_xchacha20poly1305_HEADERBYTES
#define SS_ABYTES crypto_secretstream_xchacha20poly1305_ABYTES
#define SEALED_KEY (crypto_box_SEALBYTES + 32)                                  /* kind 1: 80 */
#define BOXED_KEY (crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + 32) /* kind 2: 72 */
#define HEAD_MAX (8 + 2 + 32 + SEALED_KEY + SS_HEADER)

/* The clear header's length for a kind, 0 for an unknown kind. */
static size_t head_len(uint8_t kind)
{
	if (kind == ZILA_BUNDLE_TO_DEVICE)
		return 8 + 2 + 32 + SEALED_KEY + SS_HEADER;
	if (kind == ZILA_BUNDLE_TO_ORG)
		return 8 + 2 + BOXED_KEY + SS_HEADER;
	return 0;
}

struct enc {
	zila_bundle_sink_fn sink;
	void *ctx;
	crypto_secretstream_xchacha20poly1305_state st;
	uint8_t head[HEAD_MAX];
	size_t head_len;
	bool first;
	uint8_t *buf; /* ZILA_BUNDLE_CHUNK plaintext bytes, then room for their ciphertext */
	size_t n;
};

static int enc_push(struct enc *e, unsigned char tag)
{
	uint8_t *ct = e->buf + ZILA_BUNDLE_CHUNK;
	unsigned long long clen;
	crypto_secretstream_xchacha20poly1305_push(&e->st, ct + 4, &clen, e->buf, e->n, e->first ? e->head : NULL,
						   e->first ? e->head_len : 0, tag);
	ct[0] = (uint8_t)(clen >> 24);
	ct[1] = (uint8_t)(clen >> 16);
	ct[2] = (uint8_t)(clen >> 8);
	ct[3] = (uint8_t)clen;
	e->first = false;
	e->n = 0;
	return e->sink(e->ctx, ct, (size_t)clen + 4);
}

/* A chunk is pushed only once more bytes follow it, so that the last one is FINAL. */
static int enc_sink(void *ctx, const uint8_t *p, size_t len)
{
	struct enc *e = ctx;
	while (len > 0) {
		int r;
		if (e->n == ZILA_BUNDLE_CHUNK && (r = enc_push(e, 0)) != 0)
			return r;
		size_t k = ZILA_BUNDLE_CHUNK - e->n < len ? ZILA_BUNDLE_CHUNK - e->n : len;
		memcpy(e->buf + e->n, p, k);
		e->n += k;
		p += k;
		len -= k;
	}
	return 0;
}

int zila_bundle_write_to(struct zila_store *s, const struct zila_vector *have, zila_part_filter_fn filter,
			 void *filter_ctx, const struct zila_bundle_to *to, zila_bundle_sink_fn sink, void *sink_ctx,
			 size_t *nentries, struct zila_error *err)
{
	struct enc e;
	uint8_t key[crypto_secretstream_xchacha20poly1305_KEYBYTES], xpk[32];
	int r = ZILA_EINVAL;
	if (to == NULL)
		return zila_bundle_write(s, have, filter, filter_ctx, sink, sink_ctx, nentries, err);
	memset(&e, 0, sizeof(e));
	e.sink = sink;
	e.ctx = sink_ctx;
	e.first = true;
	crypto_secretstream_xchacha20poly1305_keygen(key);
	memcpy(e.head, MAGIC, 8);
	e.head[8] = ZILA_BUNDLE_SEALED_VERSION;
	e.head[9] = (uint8_t)to->kind;
	size_t at = 10;
	if (to->kind == ZILA_BUNDLE_TO_DEVICE) {
		memcpy(e.head + at, to->device_pk, 32);
		at += 32;
		if (crypto_sign_ed25519_pk_to_curve25519(xpk, to->device_pk) != 0 ||
		    crypto_box_seal(e.head + at, key, sizeof(key), xpk) != 0) {
			r = zila_error_set(err, ZILA_EINVAL, "the receiver's device key cannot receive a bundle");
			goto out;
		}
		at += SEALED_KEY;
	} else if (to->kind == ZILA_BUNDLE_TO_ORG) {
		randombytes_buf(e.head + at, crypto_secretbox_NONCEBYTES);
		crypto_secretbox_easy(e.head + at + crypto_secretbox_NONCEBYTES, key, sizeof(key), e.head + at, to->org_key);
		at += BOXED_KEY;
	} else {
		r = zila_error_set(err, ZILA_EINVAL, "unknown bundle receiver kind %d", (int)to->kind);
		goto out;
	}
	crypto_secretstream_xchacha20poly1305_init_push(&e.st, e.head + at, key);
	e.head_len = at + SS_HEADER;
	if ((e.buf = malloc(2 * ZILA_BUNDLE_CHUNK + SS_ABYTES + 4)) == NULL) {
		r = zila_error_set(err, ZILA_ENOMEM, "cannot write the bundle: out of memory");
		goto out;
	}
	if ((r = sink(sink_ctx, e.head, e.head_len)) != 0) {
		r = zila_error_set(err, r, "cannot write the bundle: %s", zila_strerror(r));
		goto out;
	}
	if ((r = zila_bundle_write(s, have, filter, filter_ctx, enc_sink, &e, nentries, err)) != 0)
		goto out;
	if ((r = enc_push(&e, crypto_secretstream_xchacha20poly1305_TAG_FINAL)) != 0)
		r = zila_error_set(err, r, "cannot write the bundle: %s", zila_strerror(r));
out:
	if (e.buf != NULL) {
		sodium_memzero(e.buf, ZILA_BUNDLE_CHUNK);
		free(e.buf);
	}
	sodium_memzero(&e.st, sizeof(e.st));
	sodium_memzero(key, sizeof(key));
	return r;
}

int zila_bundle_kind(const uint8_t *p, size_t len)
{
	if (len < 10)
		return ZILA_ESHORT;
	if (memcmp(p, MAGIC, 8) != 0)
		return ZILA_EFORMAT;
	if (p[8] == ZILA_BUNDLE_VERSION || p[8] == ZILA_BUNDLE_VERSION_OLD)
		return ZILA_BUNDLE_PLAIN;
	if (p[8] != ZILA_BUNDLE_SEALED_VERSION)
		return ZILA_EVERSION;
	if (head_len(p[9]) == 0)
		return ZILA_EFORMAT;
	return p[9];
}

int zila_bundle_decrypt(const uint8_t *p, size_t len, const struct zila_bundle_keys *keys, const char *name,
			struct zila_buf *plain, struct zila_error *err)
{
	crypto_secretstream_xchacha20poly1305_state st;
	uint8_t key[crypto_secretstream_xchacha20poly1305_KEYBYTES], xpk[32], xsk[32];
	int r = zila_bundle_kind(p, len);
	bool final = false;
	memset(&st, 0, sizeof(st));
	if (r < 0 || r == ZILA_BUNDLE_PLAIN) {
		r = zila_error_set(err, r < 0 ? r : ZILA_EFORMAT, "'%s' is not an encrypted zila bundle", name);
		goto out;
	}
	uint8_t kind = (uint8_t)r;
	size_t hl = head_len(kind);
	if (len < hl) {
		r = zila_error_set(err, ZILA_ESHORT, "bundle '%s' is truncated; nothing was applied", name);
		goto out;
	}
	if (kind == ZILA_BUNDLE_TO_DEVICE) {
		if (keys->device_pk == NULL || sodium_memcmp(p + 10, keys->device_pk, 32) != 0) {
			char id[ZILA_DEVICE_ID_LEN + 1];
			zila_device_id(p + 10, id);
			r = zila_error_set(err, ZILA_EAUTH,
					   "bundle '%s' is for another device (%s), not this one: only it can read it; "
					   "nothing was applied",
					   name, id);
			goto out;
		}
		if (keys->device_sk == NULL || crypto_sign_ed25519_sk_to_curve25519(xsk, keys->device_sk) != 0 ||
		    crypto_sign_ed25519_pk_to_curve25519(xpk, keys->device_pk) != 0 ||
		    crypto_box_seal_open(key, p + 42, SEALED_KEY, xpk, xsk) != 0) {
			r = zila_error_set(err, ZILA_EAUTH,
					   "bundle '%s' does not open with this device's key: it is damaged; nothing was applied",
					   name);
			goto out;
		}
	} else {
		if (keys->org_key == NULL) {
			r = zila_error_set(err, ZILA_ENOTENROLLED,
					   "bundle '%s' is for the organisation's enrolled devices, and this device holds no "
					   "organisation secret; nothing was applied. %s",
					   name, ZILA_NO_SECRET_MSG);
			goto out;
		}
		if (crypto_secretbox_open_easy(key, p + 10 + crypto_secretbox_NONCEBYTES,
					       BOXED_KEY - crypto_secretbox_NONCEBYTES, p + 10, keys->org_key) != 0) {
			r = zila_error_set(err, ZILA_EAUTH,
					   "bundle '%s' does not open with this organisation's secret: it is for another "
					   "organisation, or damaged; nothing was applied",
					   name);
			goto out;
		}
	}
	if (crypto_secretstream_xchacha20poly1305_init_pull(&st, p + hl - SS_HEADER, key) != 0) {
		r = zila_error_set(err, ZILA_EAUTH, "bundle '%s' is damaged; nothing was applied", name);
		goto out;
	}
	struct zila_view v = zila_view_make(p + hl, len - hl);
	bool first = true;
	while (v.len > 0 && !final) {
		uint32_t n;
		const uint8_t *c;
		unsigned long long mlen;
		unsigned char tag;
		if (zila_view_get_u32be(&v, &n) != 0 || n < SS_ABYTES || n > ZILA_BUNDLE_CHUNK + SS_ABYTES ||
		    zila_view_get_bytes(&v, n, &c) != 0) {
			r = zila_error_set(err, ZILA_EFORMAT, "bundle '%s' is damaged or truncated; nothing was applied", name);
			goto out;
		}
		size_t start = plain->len;
		if ((r = zila_buf_reserve(plain, n - SS_ABYTES + 1)) != 0) {
			r = zila_error_set(err, r, "bundle '%s' is too large to read: %s", name, zila_strerror(r));
			goto out;
		}
		if (crypto_secretstream_xchacha20poly1305_pull(&st, plain->p + start, &mlen, &tag, c, n, first ? p : NULL,
							       first ? hl : 0) != 0) {
			r = zila_error_set(err, ZILA_EAUTH,
					   "bundle '%s' is damaged or was altered (it does not decrypt); nothing was applied", name);
			goto out;
		}
		plain->len = start + (size_t)mlen;
		first = false;
		final = tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL;
		if (tag != 0 && !final) {
			r = zila_error_set(err, ZILA_EFORMAT, "bundle '%s' is damaged; nothing was applied", name);
			goto out;
		}
	}
	if (!final || v.len != 0) {
		r = zila_error_set(err, ZILA_EFORMAT, "bundle '%s' is %s; nothing was applied", name,
				   final ? "followed by bytes after its end" : "truncated");
		goto out;
	}
	r = 0;
out:
	sodium_memzero(&st, sizeof(st));
	sodium_memzero(key, sizeof(key));
	sodium_memzero(xsk, sizeof(xsk));
	return r;
}
