/* USB bundles written and read by the sync session. Layout (proto/ENTRY.md, "Bundle"):
 *   "ZILABNDL" | u8 version = 3 | { u32be len | Message }* | u32be 0 | BLAKE2b-256 of all before
 * (version 3: Entries are packed chunks, each a whole zstd frame; version 2 is still read)
 * The hash catches truncation and any flipped byte before anything is applied; each entry
 * also carries its author's signature. Pure: bytes out through a sink, bytes in from memory. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "zila/bundle.h"
#include "zila/session.h"

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

int zila_bundle_read(struct zila_store *s, struct zila_trust_ctx *trust, const uint8_t *p, size_t len,
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
	if (p[8] != ZILA_BUNDLE_VERSION && p[8] != 2) {
		r = zila_error_set(err, ZILA_EVERSION, "bundle '%s' has format version %u; this zila reads versions 2 and %u",
				   path, p[8], ZILA_BUNDLE_VERSION);
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
