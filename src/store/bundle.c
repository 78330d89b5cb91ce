/* USB bundles: a file of entries and trust records that carries changes between replicas
 * with no network. Layout (see proto/BUNDLE.md):
 *   "ZILABNDL" | u8 version=1 | u8 flags=0 | records... | 0xFF | varint nrecords | hash[32]
 * record: u8 kind (1 entry, 2 trust) | varint len | payload; the hash is BLAKE2b-256 of
 * every byte before it, so truncation or any flipped byte is caught before anything is
 * applied; each entry also carries its author's signature. */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_int.h"
#include "zila/log.h"

#define MAGIC "ZILABNDL"
#define REC_ENTRY 1
#define REC_TRUST 2
#define REC_END 0xFF
#define APPLY_BATCH 64 /* entries per transaction: ~200k rows at most */

struct writer {
	FILE *f;
	crypto_generichash_state h;
	struct zila_buf b;
	size_t nrecords, nentries;
};

static int w_flush(struct writer *w)
{
	crypto_generichash_update(&w->h, w->b.p, w->b.len);
	size_t n = w->b.len ? fwrite(w->b.p, 1, w->b.len, w->f) : 0;
	int r = n == w->b.len ? 0 : ZILA_EIO;
	zila_buf_reset(&w->b);
	return r;
}

static int w_record(struct writer *w, uint8_t kind, const uint8_t *p, size_t n)
{
	int r = zila_buf_put_u8(&w->b, kind);
	r = r ? r : zila_buf_put_lenbytes(&w->b, p, n);
	w->nrecords++;
	if (r == 0 && w->b.len > (1u << 20))
		r = w_flush(w);
	return r;
}

static int w_entry(void *ctx, const struct zila_entry_info *e, struct zila_view bytes)
{
	struct writer *w = ctx;
	(void)e;
	w->nentries++;
	return w_record(w, REC_ENTRY, bytes.p, bytes.len);
}

int zila_bundle_create(struct zila_store *s, const char *path, const struct zila_vector *have,
		       zila_part_filter_fn filter, void *filter_ctx, size_t *nentries, struct zila_error *err)
{
	struct writer w;
	sqlite3_stmt *st = NULL;
	char *tmp = NULL;
	uint8_t hash[32];
	int r;
	memset(&w, 0, sizeof(w));
	zila_buf_init(&w.b, 64u << 20);
	if (nentries)
		*nentries = 0;
	if ((r = zila_store_seal(s, NULL, err)) != 0)
		goto out;
	size_t n = strlen(path) + 16;
	tmp = malloc(n);
	if (tmp == NULL) {
		r = zila_error_set(err, ZILA_ENOMEM, "out of memory");
		goto out;
	}
	snprintf(tmp, n, "%s.tmp", path);
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
	r = zila_buf_put(&w.b, MAGIC, 8);
	r = r ? r : zila_buf_put_u8(&w.b, 1);
	r = r ? r : zila_buf_put_u8(&w.b, 0);
	/* One read transaction: the bundle is a consistent snapshot. */
	r = r ? r : store_exec(s, "BEGIN", err);
	if (r == 0 && sqlite3_prepare_v2(s->db, "SELECT type, id, bytes FROM zila_trust ORDER BY type, id", -1, &st,
					 NULL) != SQLITE_OK)
		r = ZILA_EDB;
	struct zila_buf rec;
	zila_buf_init(&rec, 1 << 20);
	while (r == 0 && sqlite3_step(st) == SQLITE_ROW) {
		zila_buf_reset(&rec);
		r = zila_buf_put_u8(&rec, (uint8_t)sqlite3_column_int(st, 0));
		r = r ? r : zila_buf_put_lenbytes(&rec, sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1));
		r = r ? r : zila_buf_put_lenbytes(&rec, sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2));
		r = r ? r : w_record(&w, REC_TRUST, rec.p, rec.len);
	}
	zila_buf_release(&rec);
	sqlite3_finalize(st);
	st = NULL;
	r = r ? r : zila_store_entries_since(s, have, filter, filter_ctx, w_entry, &w);
	store_rollback(s);
	r = r ? r : zila_buf_put_u8(&w.b, REC_END);
	r = r ? r : zila_buf_put_varint(&w.b, w.nrecords);
	r = r ? r : w_flush(&w);
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
		(void)unlink(tmp);
		if (err == NULL || err->code == 0)
			r = zila_error_set(err, r, "cannot write bundle '%s': %s", path,
					   r == ZILA_EIO ? strerror(errno) : zila_strerror(r));
		goto out;
	}
	if (nentries)
		*nentries = w.nentries;
out:
	if (w.f != NULL)
		fclose(w.f);
	zila_buf_release(&w.b);
	free(tmp);
	return r;
}

/* Checks framing, the hash and every signature; collects the records. */
static int bundle_verify(struct zila_view file, struct zila_view **entries, size_t *nentries,
			 struct zila_view **trust, size_t *ntrust, struct zila_error *err, const char *path)
{
	struct zila_view in = file;
	const uint8_t *magic, *hash;
	uint8_t version, flags, kind;
	uint8_t calc[32];
	size_t cap = 0, tcap = 0, nrec = 0;
	*entries = NULL;
	*trust = NULL;
	*nentries = *ntrust = 0;
	int r = zila_view_get_bytes(&in, 8, &magic);
	if (r != 0 || memcmp(magic, MAGIC, 8) != 0)
		return zila_error_set(err, ZILA_EFORMAT, "'%s' is not a zila bundle", path);
	r = zila_view_get_u8(&in, &version);
	r = r ? r : zila_view_get_u8(&in, &flags);
	if (r != 0)
		return zila_error_set(err, ZILA_ESHORT, "bundle '%s' is truncated", path);
	if (version != 1)
		return zila_error_set(err, ZILA_EVERSION, "bundle '%s' has version %u; this zila reads version 1",
				      path, version);
	if (file.len < 32 + 10)
		return zila_error_set(err, ZILA_ESHORT, "bundle '%s' is truncated", path);
	crypto_generichash(calc, 32, file.p, file.len - 32, NULL, 0);
	for (;;) {
		struct zila_view rec;
		if ((r = zila_view_get_u8(&in, &kind)) != 0)
			break;
		if (kind == REC_END)
			break;
		if ((r = zila_view_get_lenbytes(&in, ZILA_ENTRY_MAX + 4096, &rec)) != 0)
			break;
		nrec++;
		if (kind == REC_ENTRY) {
			if (*nentries == cap) {
				cap = cap ? cap * 2 : 256;
				struct zila_view *ne = realloc(*entries, cap * sizeof(*ne));
				if (ne == NULL)
					return zila_error_set(err, ZILA_ENOMEM, "out of memory");
				*entries = ne;
			}
			(*entries)[(*nentries)++] = rec;
		} else if (kind == REC_TRUST) {
			if (*ntrust == tcap) {
				tcap = tcap ? tcap * 2 : 16;
				struct zila_view *nt = realloc(*trust, tcap * sizeof(*nt));
				if (nt == NULL)
					return zila_error_set(err, ZILA_ENOMEM, "out of memory");
				*trust = nt;
			}
			(*trust)[(*ntrust)++] = rec;
		} /* unknown record kinds from newer versions are skipped */
	}
	uint64_t count = 0;
	if (r == 0)
		r = zila_view_get_varint(&in, &count);
	r = r ? r : zila_view_get_bytes(&in, 32, &hash);
	if (r != 0)
		return zila_error_set(err, ZILA_ESHORT, "bundle '%s' is truncated or damaged; nothing was applied", path);
	if (in.len != 0 || count != nrec || sodium_memcmp(hash, calc, 32) != 0)
		return zila_error_set(err, ZILA_EFORMAT, "bundle '%s' is damaged (checksum mismatch); nothing was applied",
				      path);
	for (size_t i = 0; i < *nentries; i++) {
		struct zila_entry_info info;
		r = zila_entry_verify((*entries)[i], &info);
		if (r != 0)
			return zila_error_set(err, r, "bundle '%s' holds an entry that fails verification (%s); nothing was applied",
					      path, zila_strerror(r));
	}
	return 0;
}

static int apply_trust(struct zila_store *s, struct zila_view *trust, size_t n, struct zila_apply_stats *st,
		       struct zila_error *err)
{
	bool *done = calloc(n + 1, sizeof(*done));
	if (done == NULL)
		return zila_error_set(err, ZILA_ENOMEM, "out of memory");
	int r = store_begin(s, err);
	/* A certificate may arrive before the one that issued it: passes repeat while they
	 * accept something new; what is still refused after that is logged. */
	for (bool progress = true, last = false; r == 0 && (progress || !last);) {
		last = !progress;
		progress = false;
		for (size_t i = 0; r == 0 && i < n; i++) {
			if (done[i])
				continue;
			struct zila_view in = trust[i], id, bytes;
			uint8_t type;
			r = zila_view_get_u8(&in, &type);
			r = r ? r : zila_view_get_lenbytes(&in, 4096, &id);
			r = r ? r : zila_view_get_lenbytes(&in, 1 << 20, &bytes);
			if (r != 0) {
				r = zila_error_set(err, ZILA_EFORMAT, "malformed trust record in bundle");
				break;
			}
			if (s->hooks.trust_record != NULL) {
				struct zila_error why;
				zila_error_clear(&why);
				int rr = s->hooks.trust_record(s->hooks.ctx, s, type, bytes, &why);
				if (rr != 0) {
					if (last)
						zila_log(ZILA_LOG_WARN, "rejected a trust record: %s", zila_error_msg(&why, rr));
					continue;
				}
			}
			if ((r = zila_store_trust_put(s, type, id, bytes)) != 0) {
				r = store_db_error(s, err, "cannot store a trust record");
			} else {
				done[i] = true;
				progress = true;
				st->ntrust++;
			}
		}
		if (last)
			break;
	}
	free(done);
	if (r == 0)
		return store_commit(s, err);
	store_rollback(s);
	return r;
}

int zila_bundle_apply(struct zila_store *s, const char *path, struct zila_apply_stats *st, struct zila_error *err)
{
	struct zila_apply_stats dummy, part;
	struct zila_view *entries = NULL, *trust = NULL;
	size_t nentries = 0, ntrust = 0;
	void *map = MAP_FAILED;
	size_t map_len = 0;
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
	if (map_len == 0) {
		r = zila_error_set(err, ZILA_ESHORT, "bundle '%s' is empty", path);
		goto out;
	}
	map = mmap(NULL, map_len, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		r = zila_error_set(err, ZILA_EIO, "cannot read bundle '%s': %s", path, strerror(errno));
		goto out;
	}
	r = bundle_verify(zila_view_make(map, map_len), &entries, &nentries, &trust, &ntrust, err, path);
	if (r != 0)
		goto out;
	if ((r = apply_trust(s, trust, ntrust, st, err)) != 0)
		goto out;
	/* Batches keep each transaction and its memory bounded; entries are in causal order,
	 * so an interruption leaves a consistent prefix that a second apply completes. */
	for (size_t i = 0; i < nentries; i += APPLY_BATCH) {
		size_t n = nentries - i < APPLY_BATCH ? nentries - i : APPLY_BATCH;
		/* bundle_verify() checked every signature already. */
		if ((r = store_apply(s, entries + i, n, false, &part, err)) != 0)
			goto out;
		st->nreceived += part.nreceived;
		st->napplied += part.napplied;
		st->nduplicate += part.nduplicate;
		st->nrejected += part.nrejected;
		st->nheld += part.nheld;
		st->ngap += part.ngap;
		st->nconflicts += part.nconflicts;
		st->nparked += part.nparked;
	}
out:
	if (map != MAP_FAILED)
		munmap(map, map_len);
	if (fd >= 0)
		close(fd);
	free(entries);
	free(trust);
	return r;
}
