/* USB bundles written and read by the sync session. Layout (proto/ENTRY.md, "Bundle"):
 *   "ZILABNDL" | u8 version = 2 | { u32be len | Message }* | u32be 0 | BLAKE2b-256 of all before
 * The hash catches truncation and any flipped byte before anything is applied; each entry
 * also carries its author's signature. */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zila/bundle.h"
#include "zila/session.h"

#define MAGIC "ZILABNDL"

struct writer {
	FILE *f;
	crypto_generichash_state h;
	int r;
};

static int w_put(struct writer *w, const void *p, size_t n)
{
	crypto_generichash_update(&w->h, p, n);
	if (n > 0 && fwrite(p, 1, n, w->f) != n)
		return ZILA_EIO;
	return 0;
}

static int w_message(void *ctx, const uint8_t *p, size_t len)
{
	struct writer *w = ctx;
	uint8_t n[4] = { (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len };
	int r = w_put(w, n, 4);
	return r ? r : w_put(w, p, len);
}

int zila_bundle_create(struct zila_store *s, const char *path, const struct zila_vector *have,
		       zila_part_filter_fn filter, void *filter_ctx, size_t *nentries, struct zila_error *err)
{
	struct writer w;
	char *tmp = NULL;
	uint8_t hash[32], version = ZILA_BUNDLE_VERSION;
	uint64_t n = 0;
	int r;
	memset(&w, 0, sizeof(w));
	if (nentries)
		*nentries = 0;
	if ((r = zila_store_seal(s, NULL, err)) != 0)
		goto out;
	size_t len = strlen(path) + 8;
	if ((tmp = malloc(len)) == NULL) {
		r = zila_error_set(err, ZILA_ENOMEM, "out of memory");
		goto out;
	}
	snprintf(tmp, len, "%s.tmp", path);
	w.f = fopen(tmp, "wbx");
	if (w.f == NULL && errno == EEXIST) {
		(void)unlink(tmp); /* left by an interrupted run */
		w.f = fopen(tmp, "wbx");
	}
	if (w.f == NULL) {
		r = zila_error_set(err, ZILA_EIO, "cannot create '%s': %s", tmp, strerror(errno));
		goto out;
	}
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
		if (fwrite(hash, 1, 32, w.f) != 32 || fflush(w.f) != 0 || fsync(fileno(w.f)) != 0)
			r = ZILA_EIO;
	}
	if (fclose(w.f) != 0 && r == 0)
		r = ZILA_EIO;
	w.f = NULL;
	if (r == 0 && rename(tmp, path) != 0)
		r = ZILA_EIO;
	if (r != 0) {
		int saved = errno;
		(void)unlink(tmp);
		if (err == NULL || err->code == 0)
			r = zila_error_set(err, r, "cannot write bundle '%s': %s", path,
					   r == ZILA_EIO ? strerror(saved) : zila_strerror(r));
		goto out;
	}
	if (nentries)
		*nentries = (size_t)n;
out:
	if (w.f != NULL)
		fclose(w.f);
	free(tmp);
	return r;
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

int zila_bundle_apply(struct zila_store *s, struct zila_trust_ctx *trust, const char *path,
		      struct zila_apply_stats *st, struct zila_error *err)
{
	struct zila_apply_stats dummy;
	struct zila_session *sess = NULL;
	void *map = MAP_FAILED;
	size_t map_len = 0;
	uint8_t hash[32];
	int fd = -1, r;
	if (st == NULL)
		st = &dummy;
	memset(st, 0, sizeof(*st));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) != 0) {
		r = zila_error_set(err, ZILA_EIO, "cannot read bundle '%s': %s", path, strerror(errno));
		goto out;
	}
	map_len = (size_t)sb.st_size;
	if (map_len < 8 + 1 + 4 + 32) {
		r = zila_error_set(err, ZILA_ESHORT, "bundle '%s' is too short to be a bundle", path);
		goto out;
	}
	if ((map = mmap(NULL, map_len, PROT_READ, MAP_PRIVATE, fd, 0)) == MAP_FAILED) {
		r = zila_error_set(err, ZILA_EIO, "cannot read bundle '%s': %s", path, strerror(errno));
		goto out;
	}
	const uint8_t *p = map;
	if (memcmp(p, MAGIC, 8) != 0) {
		r = zila_error_set(err, ZILA_EFORMAT, "'%s' is not a zila bundle", path);
		goto out;
	}
	if (p[8] != ZILA_BUNDLE_VERSION) {
		r = zila_error_set(err, ZILA_EVERSION, "bundle '%s' has format version %u; this zila reads version %u", path,
				   p[8], ZILA_BUNDLE_VERSION);
		goto out;
	}
	crypto_generichash(hash, 32, p, map_len - 32, NULL, 0);
	if (sodium_memcmp(hash, p + map_len - 32, 32) != 0) {
		r = zila_error_set(err, ZILA_EFORMAT, "bundle '%s' is damaged or truncated (checksum); nothing was applied",
				   path);
		goto out;
	}
	struct zila_view body = zila_view_make(p + 9, map_len - 9 - 32);
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
	if (map != MAP_FAILED)
		munmap(map, map_len);
	if (fd >= 0)
		close(fd);
	return r;
}
