/* USB bundles written and read by the sync session. Layout (proto/ENTRY.md, "Bundle"):
 *   "ZILABNDL" | u8 version = 4 | { u32be len | Message }* | u32be 0 | BLAKE2b-256 of all before
 * (version 4: Entries are packed chunks, each a whole zstd frame; version 2 is still read)
 * The hash catches truncation and any flipped byte before anything is applied; each entry
 * also carries its author's signature. On the stick that bundle is encrypted (version 3):
 *   "ZILABNDL" | u8 3 | u8 kind | key block | secretstream header | { u32be len | chunk }*
 * and version 5 adds attachments' files after it, each in a stream of its own.
 * Pure: bytes out through a sink, bytes in from memory. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "zila/blob.h"
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

static int decrypt_rows(const uint8_t *p, size_t len, const struct zila_bundle_keys *keys, const char *name,
			struct zila_buf *plain, uint8_t *key_out, size_t *end, struct zila_error *err);
static void read_files(struct zila_store *s, const uint8_t *p, size_t len, const uint8_t *key, const char *name,
		       struct zila_bundle_files *f);

int zila_bundle_read(struct zila_store *s, struct zila_trust_ctx *trust, const uint8_t *p, size_t len,
		     const char *path, struct zila_apply_stats *st, struct zila_error *err)
{
	return zila_bundle_read_ex(s, trust, p, len, path, st, NULL, err);
}

int zila_bundle_read_ex(struct zila_store *s, struct zila_trust_ctx *trust, const uint8_t *p, size_t len,
			const char *path, struct zila_apply_stats *st, struct zila_bundle_files *files,
			struct zila_error *err)
{
	struct zila_bundle_files fdummy;
	if (files == NULL)
		files = &fdummy;
	memset(files, 0, sizeof(*files));
	int kind = zila_bundle_kind(p, len);
	if (kind != ZILA_BUNDLE_TO_DEVICE && kind != ZILA_BUNDLE_TO_ORG)
		return read_plain(s, trust, p, len, path, st, err);
	uint8_t secret[ZILA_ORG_SECRET_LEN], org_key[32], key[crypto_secretstream_xchacha20poly1305_KEYBYTES];
	size_t end = 0;
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
	int r = decrypt_rows(p, len, &keys, path, &plain, key, &end, err);
	sodium_memzero(org_key, sizeof(org_key));
	if (r == 0 && p[8] != ZILA_BUNDLE_FILES_VERSION && end != len)
		r = zila_error_set(err, ZILA_EFORMAT, "bundle '%s' is followed by bytes after its end; nothing was applied",
				   path);
	if (r == 0 && zila_bundle_kind(plain.p, plain.len) != ZILA_BUNDLE_PLAIN)
		r = zila_error_set(err, ZILA_EFORMAT, "bundle '%s' holds no bundle inside; nothing was applied", path);
	if (r == 0)
		r = read_plain(s, trust, plain.p, plain.len, path, st, err);
	if (plain.p != NULL)
		sodium_memzero(plain.p, plain.len);
	zila_buf_release(&plain);
	/* the rows first, always: the files only once they are applied */
	if (r == 0 && p[8] == ZILA_BUNDLE_FILES_VERSION)
		read_files(s, p + end, len - end, key, path, files);
	sodium_memzero(key, sizeof(key));
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
				   "bundle '%s' has format version %u; this zila reads versions %u, %u, %u and %u: update it",
				   path, p[8], ZILA_BUNDLE_VERSION_OLD, ZILA_BUNDLE_SEALED_VERSION, ZILA_BUNDLE_VERSION,
				   ZILA_BUNDLE_FILES_VERSION);
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
	uint64_t out; /* bytes given to sink */
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
	e->out += (uint64_t)clen + 4;
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
	struct zila_bundle_summary sum;
	if (to == NULL)
		return zila_bundle_write(s, have, filter, filter_ctx, sink, sink_ctx, nentries, err);
	int r = zila_bundle_write_ex(s, have, filter, filter_ctx, to, NULL, sink, sink_ctx, &sum, err);
	if (nentries)
		*nentries = r == 0 ? sum.nentries : 0;
	return r;
}

/* --- files after the rows (version 5) ------------------------------------------------------- */

#define FILE_HEAD 40 /* a file's first message: u8[32] id | u64be size | chunk hashes */
#define FILE_MSG_MAX (FILE_HEAD + ZILA_BLOB_CHUNKS_MAX * 32)
#define FILE_BUF (FILE_MSG_MAX + SS_ABYTES + 4)
#define TRAILER_LEN 12 /* u32be files | u64be their bytes */

static uint64_t nchunks(uint64_t size)
{
	return (size + ZILA_BLOB_CHUNK - 1) / ZILA_BLOB_CHUNK;
}

/* A file's record after its u64be length: header, its first message, one per chunk. */
static uint64_t record_len(uint64_t size)
{
	uint64_t n = nchunks(size);
	return SS_HEADER + 4 + FILE_HEAD + n * 32 + SS_ABYTES + n * (4 + SS_ABYTES) + size;
}

static void put_be(uint8_t *p, uint64_t x, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(x >> (8 * (n - 1 - i)));
}

static uint64_t get_be(const uint8_t *p, int n)
{
	uint64_t x = 0;
	for (int i = 0; i < n; i++)
		x = x << 8 | p[i];
	return x;
}

static int e_out(struct enc *e, const uint8_t *p, size_t n)
{
	e->out += n;
	return e->sink(e->ctx, p, n);
}

/* One secretstream message, framed: u32be n | ciphertext (ct: FILE_BUF bytes). */
static int ss_put(struct enc *e, crypto_secretstream_xchacha20poly1305_state *st, const uint8_t *m, size_t n,
		  unsigned char tag, uint8_t *ct)
{
	unsigned long long clen;
	crypto_secretstream_xchacha20poly1305_push(st, ct + 4, &clen, m, n, NULL, 0, tag);
	put_be(ct, clen, 4);
	return e_out(e, ct, (size_t)clen + 4);
}

struct carry {
	uint8_t (*ids)[32];
	size_t n, cap;
	uint64_t bytes; /* the records' bytes, framing included */
};

static int carry_add(void *ctx, const uint8_t id[32], uint64_t size)
{
	struct carry *c = ctx;
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 64;
		void *p = realloc(c->ids, cap * 32);
		if (p == NULL)
			return ZILA_ENOMEM;
		c->ids = p;
		c->cap = cap;
	}
	memcpy(c->ids[c->n++], id, 32);
	c->bytes += 8 + record_len(size);
	return 0;
}

static uint64_t trailer_bytes(void)
{
	return 8 + SS_HEADER + 4 + TRAILER_LEN + SS_ABYTES;
}

/* One held file as a record (u64be length, then its own secretstream under key). A copy
 * found damaged here is left out (*skipped): the reader is told how many came. */
static int write_file(struct enc *e, struct zila_store *s, const uint8_t *key, const uint8_t id[32], uint8_t *msg,
		      uint8_t *ct, bool *skipped, uint64_t *size_out, struct zila_error *err)
{
	struct zila_blob_reader *rd = NULL;
	crypto_secretstream_xchacha20poly1305_state st;
	uint8_t head[8 + SS_HEADER];
	struct zila_error why;
	zila_error_clear(&why);
	*skipped = false;
	int r = zila_blob_reader_open(s, id, &rd, &why);
	if (r != 0) {
		*skipped = true; /* gone or damaged on this disk since it was counted */
		return 0;
	}
	uint64_t size = zila_blob_reader_size(rd), n = nchunks(size);
	struct zila_view man = zila_blob_reader_manifest(rd);
	*size_out = size;
	put_be(head, record_len(size), 8);
	crypto_secretstream_xchacha20poly1305_init_push(&st, head + 8, key);
	r = e_out(e, head, sizeof(head));
	memcpy(msg, id, 32);
	put_be(msg + 32, size, 8);
	if (man.len > 0)
		memcpy(msg + FILE_HEAD, man.p, man.len);
	r = r ? r : ss_put(e, &st, msg, FILE_HEAD + man.len, n == 0 ? crypto_secretstream_xchacha20poly1305_TAG_FINAL : 0, ct);
	for (uint64_t i = 0; r == 0 && i < n; i++) {
		struct zila_view c = zila_blob_reader_chunk(rd, (uint32_t)i);
		r = ss_put(e, &st, c.p, c.len, i + 1 == n ? crypto_secretstream_xchacha20poly1305_TAG_FINAL : 0, ct);
	}
	sodium_memzero(&st, sizeof(st));
	zila_blob_reader_free(rd);
	if (r != 0)
		r = zila_error_set(err, r, "cannot write the bundle: %s", zila_strerror(r));
	return r;
}

static int write_files(struct enc *e, struct zila_store *s, const uint8_t *key, const struct carry *c,
		       struct zila_bundle_summary *sum, struct zila_error *err)
{
	crypto_secretstream_xchacha20poly1305_state st;
	uint8_t *msg = malloc(FILE_MSG_MAX), *ct = malloc(FILE_BUF), end[8 + SS_HEADER], tr[TRAILER_LEN];
	uint64_t nfiles = 0, bytes = 0;
	int r = 0;
	if (msg == NULL || ct == NULL) {
		r = zila_error_set(err, ZILA_ENOMEM, "cannot write the bundle: out of memory");
		goto out;
	}
	for (size_t i = 0; r == 0 && i < c->n; i++) {
		bool skipped;
		uint64_t size = 0;
		r = write_file(e, s, key, c->ids[i], msg, ct, &skipped, &size, err);
		if (r == 0 && skipped)
			sum->ndamaged++;
		else if (r == 0) {
			nfiles++;
			bytes += size;
		}
	}
	if (r != 0)
		goto out;
	/* the end: u64be 0, then how many files came, so that a cut at a record's edge shows */
	memset(end, 0, 8);
	crypto_secretstream_xchacha20poly1305_init_push(&st, end + 8, key);
	put_be(tr, nfiles, 4);
	put_be(tr + 4, bytes, 8);
	if ((r = e_out(e, end, sizeof(end))) != 0 ||
	    (r = ss_put(e, &st, tr, sizeof(tr), crypto_secretstream_xchacha20poly1305_TAG_FINAL, ct)) != 0)
		r = zila_error_set(err, r, "cannot write the bundle: %s", zila_strerror(r));
	sodium_memzero(&st, sizeof(st));
	sum->nfiles = nfiles;
out:
	free(msg);
	free(ct);
	return r;
}

int zila_bundle_write_ex(struct zila_store *s, const struct zila_vector *have, zila_part_filter_fn filter,
			 void *filter_ctx, const struct zila_bundle_to *to, const struct zila_bundle_opts *opts,
			 zila_bundle_sink_fn sink, void *sink_ctx, struct zila_bundle_summary *sum,
			 struct zila_error *err)
{
	struct enc e;
	struct carry carry;
	struct zila_bundle_summary dummy;
	uint8_t key[crypto_secretstream_xchacha20poly1305_KEYBYTES], xpk[32];
	bool files = opts != NULL && opts->blobs;
	size_t nent = 0;
	int r = ZILA_EINVAL;
	if (sum == NULL)
		sum = &dummy;
	memset(sum, 0, sizeof(*sum));
	memset(&carry, 0, sizeof(carry));
	if (to == NULL)
		return zila_error_set(err, ZILA_EINVAL, "a bundle is encrypted to its receiver: say whom it is for");
	/* which files, before anything is written: their count and bytes are known exactly */
	if (files && (r = zila_blob_readable(s, filter, filter_ctx, opts->blobs_max, carry_add, &carry, &sum->nabsent,
					     &sum->nlarge, err)) != 0) {
		if (err == NULL || err->code == 0)
			r = zila_error_set(err, r, "cannot list the attachments to carry: %s", zila_strerror(r));
		free(carry.ids);
		return r;
	}
	memset(&e, 0, sizeof(e));
	e.sink = sink;
	e.ctx = sink_ctx;
	e.first = true;
	crypto_secretstream_xchacha20poly1305_keygen(key);
	memcpy(e.head, MAGIC, 8);
	e.head[8] = files ? ZILA_BUNDLE_FILES_VERSION : ZILA_BUNDLE_SEALED_VERSION;
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
	if ((r = e_out(&e, e.head, e.head_len)) != 0) {
		r = zila_error_set(err, r, "cannot write the bundle: %s", zila_strerror(r));
		goto out;
	}
	if ((r = zila_bundle_write(s, have, filter, filter_ctx, enc_sink, &e, &nent, err)) != 0)
		goto out;
	if ((r = enc_push(&e, crypto_secretstream_xchacha20poly1305_TAG_FINAL)) != 0) {
		r = zila_error_set(err, r, "cannot write the bundle: %s", zila_strerror(r));
		goto out;
	}
	sum->nentries = nent;
	sum->rows_bytes = e.out;
	if (files) {
		sum->nfiles = carry.n;
		sum->files_bytes = carry.bytes + trailer_bytes();
		if (opts->plan != NULL && (r = opts->plan(opts->plan_ctx, sum, err)) != 0)
			goto out;
		if ((r = write_files(&e, s, key, &carry, sum, err)) != 0)
			goto out;
		sum->files_bytes = e.out - sum->rows_bytes;
	}
	sum->bytes = e.out;
out:
	if (e.buf != NULL) {
		sodium_memzero(e.buf, ZILA_BUNDLE_CHUNK);
		free(e.buf);
	}
	free(carry.ids);
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
	if (p[8] != ZILA_BUNDLE_SEALED_VERSION && p[8] != ZILA_BUNDLE_FILES_VERSION)
		return ZILA_EVERSION;
	if (head_len(p[9]) == 0)
		return ZILA_EFORMAT;
	return p[9];
}

int zila_bundle_decrypt(const uint8_t *p, size_t len, const struct zila_bundle_keys *keys, const char *name,
			struct zila_buf *plain, struct zila_error *err)
{
	size_t end = 0;
	int r = decrypt_rows(p, len, keys, name, plain, NULL, &end, err);
	/* a version-5 bundle's files follow its rows; the rows are what is decrypted here */
	if (r == 0 && p[8] != ZILA_BUNDLE_FILES_VERSION && end != len)
		r = zila_error_set(err, ZILA_EFORMAT, "bundle '%s' is followed by bytes after its end; nothing was applied",
				   name);
	return r;
}

/* The rows' stream of an encrypted bundle into plain; *end: where it ends in p; key_out (may
 * be NULL): the file key, for the files after the rows. */
static int decrypt_rows(const uint8_t *p, size_t len, const struct zila_bundle_keys *keys, const char *name,
			struct zila_buf *plain, uint8_t *key_out, size_t *end, struct zila_error *err)
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
	if (!final) {
		r = zila_error_set(err, ZILA_EFORMAT, "bundle '%s' is truncated; nothing was applied", name);
		goto out;
	}
	*end = len - v.len;
	if (key_out != NULL)
		memcpy(key_out, key, sizeof(key));
	r = 0;
out:
	sodium_memzero(&st, sizeof(st));
	sodium_memzero(key, sizeof(key));
	sodium_memzero(xsk, sizeof(xsk));
	return r;
}

/* --- reading the files after the rows (version 5) ----------------------------------------- */

static void refuse(struct zila_bundle_files *f, const char *name, const char *fmt, const char *what)
{
	f->nrefused++;
	if (f->why[0] == '\0')
		snprintf(f->why, sizeof(f->why), fmt, name, what);
}

/* One file's record; false when it was refused (f says why). */
static bool read_file(struct zila_store *s, struct zila_view rec, const uint8_t *key, const char *name,
		      zila_part_filter_fn filter, void *fctx, uint8_t *m, struct zila_bundle_files *f)
{
	crypto_secretstream_xchacha20poly1305_state st;
	struct zila_blob_writer *w = NULL;
	unsigned long long mlen;
	unsigned char tag;
	const uint8_t *hdr, *c;
	uint32_t n, next = 0;
	uint8_t id[32], got[32];
	char hex[65] = "?";
	bool ok = false;
	if (zila_view_get_bytes(&rec, SS_HEADER, &hdr) != 0 ||
	    crypto_secretstream_xchacha20poly1305_init_pull(&st, hdr, key) != 0 || zila_view_get_u32be(&rec, &n) != 0 ||
	    n < SS_ABYTES + FILE_HEAD || n > FILE_MSG_MAX + SS_ABYTES || zila_view_get_bytes(&rec, n, &c) != 0 ||
	    crypto_secretstream_xchacha20poly1305_pull(&st, m, &mlen, &tag, c, n, NULL, 0) != 0 ||
	    (mlen - FILE_HEAD) % 32 != 0) {
		refuse(f, name, "bundle '%s': a file's head is damaged%s; it was refused", "");
		goto out;
	}
	f->nfiles++;
	memcpy(id, m, 32);
	zila_hex_encode(hex, id, 32);
	uint64_t size = get_be(m + 32, 8), nch = (mlen - FILE_HEAD) / 32;
	zila_blob_id(m + FILE_HEAD, (size_t)nch, size, got);
	if (size > ZILA_BLOB_SIZE_MAX || nch != nchunks(size) || sodium_memcmp(got, id, 32) != 0 ||
	    (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL) != (nch == 0)) {
		refuse(f, name, "bundle '%s': file %.12s does not match its own hash; it was refused", hex);
		goto out;
	}
	if (zila_blob_present(s, id)) {
		f->nheld++; /* importing twice is harmless */
		ok = true;
		goto out;
	}
	/* a row this device may read refers to it */
	if (!zila_blob_named(s, id, filter, fctx)) {
		f->nother++;
		ok = true;
		goto out;
	}
	struct zila_error why;
	zila_error_clear(&why);
	if (zila_blob_writer_open(s, id, size, m + FILE_HEAD, (size_t)nch, &w, &next, &why) != 0) {
		if (why.code == ZILA_EEXIST) {
			f->nheld++;
			ok = true;
		} else
			refuse(f, name, "bundle '%s': file %s", why.msg);
		goto out;
	}
	if (nch == 0) {
		/* an empty file: its head was all of it */
		zila_blob_writer_free(w);
		w = NULL;
		if (rec.len != 0 || zila_blob_put(s, NULL, 0, got, &why) != 0) {
			refuse(f, name, "bundle '%s': empty file %.12s could not be kept; it was refused", hex);
			goto out;
		}
	}
	for (uint64_t i = 0; i < nch; i++) {
		if (zila_view_get_u32be(&rec, &n) != 0 || n < SS_ABYTES || n > ZILA_BLOB_CHUNK + SS_ABYTES ||
		    zila_view_get_bytes(&rec, n, &c) != 0 ||
		    crypto_secretstream_xchacha20poly1305_pull(&st, m, &mlen, &tag, c, n, NULL, 0) != 0 ||
		    (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL) != (i + 1 == nch)) {
			char what[128];
			snprintf(what, sizeof(what), "%.12s: chunk %llu is damaged (it does not decrypt)", hex,
				 (unsigned long long)i);
			refuse(f, name, "bundle '%s': file %s; the file was refused, its verified chunks kept", what);
			goto out;
		}
		if (i < next)
			continue; /* held in part already */
		if (zila_blob_writer_add(w, (uint32_t)i, m, (size_t)mlen, &why) != 0) {
			refuse(f, name, "bundle '%s': %s", why.msg);
			goto out;
		}
	}
	if (rec.len != 0 || (w != NULL && !zila_blob_writer_done(w))) {
		refuse(f, name, "bundle '%s': file %.12s has bytes after its end; it was refused", hex);
		goto out;
	}
	/* a bundle does not say where the file was shown: it is taken as shown where the rows
	 * naming it are, when they are in one partition (ATTACH.md, "Possession") */
	if (zila_blob_held_sole(s, id, filter, fctx, &why) != 0) {
		refuse(f, name, "bundle '%s': %s", why.msg);
		goto out;
	}
	f->nstored++;
	f->stored_bytes += size;
	ok = true;
out:
	zila_blob_writer_free(w);
	sodium_memzero(&st, sizeof(st));
	return ok;
}

static void read_files(struct zila_store *s, const uint8_t *p, size_t len, const uint8_t *key, const char *name,
		       struct zila_bundle_files *f)
{
	struct zila_view v = zila_view_make(p, len);
	struct zila_cert own;
	zila_part_filter_fn filter = NULL;
	void *fctx = NULL;
	uint8_t *m = malloc(FILE_MSG_MAX > ZILA_BUNDLE_CHUNK ? FILE_MSG_MAX : ZILA_BUNDLE_CHUNK);
	uint64_t records = 0;
	bool ended = false, cut = false;
	if (m == NULL) {
		refuse(f, name, "bundle '%s': %s", "out of memory for its files");
		return;
	}
	/* a replica of an organisation keeps what its certificate may read */
	if (zila_trust_cert_get(s, zila_store_device_pk(s), &own) == 0) {
		filter = zila_trust_read_filter;
		fctx = &own;
	}
	for (;;) {
		const uint8_t *lp, *rp;
		if (zila_view_get_bytes(&v, 8, &lp) != 0)
			break;
		uint64_t rl = get_be(lp, 8);
		if (rl == 0) {
			ended = true;
			break;
		}
		records++;
		if (rl > v.len) {
			refuse(f, name, "bundle '%s' is cut short in its files%s; the last one was refused", "");
			v.len = 0;
			cut = true;
			break;
		}
		if (zila_view_get_bytes(&v, (size_t)rl, &rp) != 0)
			break;
		(void)read_file(s, zila_view_make(rp, (size_t)rl), key, name, filter, fctx, m, f);
	}
	/* the trailer says how many files the bundle carries: a cut between two shows */
	crypto_secretstream_xchacha20poly1305_state st;
	const uint8_t *hdr, *c;
	uint32_t n;
	unsigned long long mlen;
	unsigned char tag;
	if (!ended || zila_view_get_bytes(&v, SS_HEADER, &hdr) != 0 ||
	    crypto_secretstream_xchacha20poly1305_init_pull(&st, hdr, key) != 0 || zila_view_get_u32be(&v, &n) != 0 ||
	    n != TRAILER_LEN + SS_ABYTES || zila_view_get_bytes(&v, n, &c) != 0 ||
	    crypto_secretstream_xchacha20poly1305_pull(&st, m, &mlen, &tag, c, n, NULL, 0) != 0 ||
	    tag != crypto_secretstream_xchacha20poly1305_TAG_FINAL || v.len != 0) {
		if (f->why[0] == '\0')
			snprintf(f->why, sizeof(f->why), "bundle '%s' is cut short or damaged at the end of its files", name);
		if (!cut)
			f->nmissing = 1; /* at least one, how many is not known */
	} else {
		uint64_t said = get_be(m, 4);
		if (said > records) {
			f->nmissing = said - records;
			if (f->why[0] == '\0')
				snprintf(f->why, sizeof(f->why), "bundle '%s' carries %llu files and %llu could be read", name,
					 (unsigned long long)said, (unsigned long long)records);
		}
	}
	sodium_memzero(&st, sizeof(st));
	free(m);
}
