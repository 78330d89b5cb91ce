/* The entry: one sealed batch of a device's changes to one partition, signed by it.
 * Layout (all integers varint unless sized; see proto/ENTRY.md):
 *   u8 version=1 | origin[32] | part (len+bytes) | seq | u64be hlc | schema |
 *   ndeps, ndeps x (origin[32], seq) | u8 codec | body (len+bytes) | sig[64] over all before.
 * codec 0: the body as is; codec 1: a zstd frame that declares its size. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "store_int.h"

#define MAX_DEPS 4096

void entry_release(struct entry *e)
{
	free(e->plain);
	free(e->deps);
	memset(e, 0, sizeof(*e));
}

/* Walks the body's table directory and reads the change count. */
static int body_count(struct zila_view body, size_t *nchanges)
{
	uint64_t ntab, ncols, n;
	struct zila_view name;
	*nchanges = 0;
	int r = zila_view_get_varint(&body, &ntab);
	if (r != 0)
		return r;
	if (ntab > 4096)
		return ZILA_ETOOBIG;
	for (uint64_t i = 0; i < ntab; i++) {
		r = zila_view_get_lenbytes(&body, 255, &name);
		r = r ? r : zila_view_get_varint(&body, &ncols);
		if (r == 0 && ncols > 32767)
			r = ZILA_ETOOBIG;
		for (uint64_t c = 0; r == 0 && c < ncols; c++)
			r = zila_view_get_lenbytes(&body, 255, &name);
		if (r != 0)
			return r;
	}
	r = zila_view_get_varint(&body, &n);
	if (r == 0 && n > ZILA_ENTRY_MAX)
		r = ZILA_EFORMAT;
	*nchanges = (size_t)n;
	return r;
}

int entry_parse_head(struct zila_view bytes, struct entry *e, bool check_sig)
{
	struct zila_view in = bytes, part;
	const uint8_t *origin, *sig;
	uint8_t version;
	uint64_t schema, ndeps;
	int r;
	memset(e, 0, sizeof(*e));
	if (bytes.len > ZILA_ENTRY_MAX + 4096)
		return ZILA_ETOOBIG;
	if (bytes.len < 1 + 32 + 64)
		return ZILA_ESHORT;
	if ((r = zila_view_get_u8(&in, &version)) != 0)
		return r;
	if (version != 1)
		return ZILA_EVERSION;
	r = zila_view_get_bytes(&in, 32, &origin);
	r = r ? r : zila_view_get_lenbytes(&in, ZILA_PART_MAX, &part);
	r = r ? r : zila_view_get_varint(&in, &e->info.seq);
	r = r ? r : zila_view_get_u64be(&in, &e->info.hlc);
	r = r ? r : zila_view_get_varint(&in, &schema);
	r = r ? r : zila_view_get_varint(&in, &ndeps);
	if (r != 0)
		goto fail;
	if (e->info.seq == 0 || schema > UINT32_MAX || memchr(part.p, 0, part.len) != NULL) {
		r = ZILA_EFORMAT;
		goto fail;
	}
	if (ndeps > MAX_DEPS || ndeps > in.len / 33) {
		r = ZILA_ETOOBIG;
		goto fail;
	}
	memcpy(e->info.origin, origin, 32);
	memcpy(e->info.part, part.p, part.len);
	e->info.part[part.len] = '\0';
	e->info.schema = (uint32_t)schema;
	if (ndeps > 0) {
		e->deps = calloc((size_t)ndeps, sizeof(*e->deps));
		if (e->deps == NULL) {
			r = ZILA_ENOMEM;
			goto fail;
		}
	}
	for (uint64_t i = 0; i < ndeps; i++) {
		r = zila_view_get_copy(&in, e->deps[i].origin, 32);
		r = r ? r : zila_view_get_varint(&in, &e->deps[i].seq);
		if (r != 0)
			goto fail;
		e->ndeps++;
	}
	uint8_t codec;
	r = zila_view_get_u8(&in, &codec);
	r = r ? r : zila_view_get_lenbytes(&in, ZILA_ENTRY_MAX, &e->body);
	r = r ? r : zila_view_get_bytes(&in, 64, &sig);
	if (r == 0 && codec > 1)
		r = ZILA_EFORMAT;
	if (r != 0)
		goto fail;
	if (in.len != 0) {
		r = ZILA_EFORMAT;
		goto fail;
	}
	if (check_sig && crypto_sign_verify_detached(sig, bytes.p, bytes.len - 64, origin) != 0) {
		r = ZILA_ESIG;
		goto fail;
	}
	e->packed = codec == 1;
	e->stored = e->body;
	return 0;
fail:
	entry_release(e);
	return r;
}

int entry_verify_sig(struct zila_view bytes, const struct entry *e)
{
	if (bytes.len < 64)
		return ZILA_ESHORT;
	return crypto_sign_verify_detached(bytes.p + bytes.len - 64, bytes.p, bytes.len - 64, e->info.origin) == 0
		       ? 0
		       : ZILA_ESIG;
}

int entry_inflate(struct entry *e, ZSTD_DCtx *dc)
{
	int r;
	entry_deflate(e);
	if (e->packed) {
		/* The declared size is checked before anything is allocated. */
		unsigned long long n = ZSTD_getFrameContentSize(e->body.p, e->body.len);
		if (n == ZSTD_CONTENTSIZE_ERROR || n == ZSTD_CONTENTSIZE_UNKNOWN || n == 0)
			return ZILA_EFORMAT;
		if (n > ZILA_ENTRY_MAX)
			return ZILA_ETOOBIG;
		if ((e->plain = malloc((size_t)n)) == NULL)
			return ZILA_ENOMEM;
		size_t got = dc != NULL ? ZSTD_decompressDCtx(dc, e->plain, (size_t)n, e->body.p, e->body.len)
					: ZSTD_decompress(e->plain, (size_t)n, e->body.p, e->body.len);
		if (ZSTD_isError(got) || got != n) {
			free(e->plain);
			e->plain = NULL;
			return ZILA_EFORMAT;
		}
		e->body = zila_view_make(e->plain, (size_t)n);
	}
	r = body_count(e->body, &e->info.nchanges);
	return r;
}

void entry_deflate(struct entry *e)
{
	free(e->plain);
	e->plain = NULL;
	e->body = e->stored;
}

int entry_parse(struct zila_view bytes, struct entry *e, bool check_sig)
{
	int r = entry_parse_head(bytes, e, check_sig);
	if (r == 0 && (r = entry_inflate(e, NULL)) != 0)
		entry_release(e);
	return r;
}

int zila_entry_verify(struct zila_view bytes, struct zila_entry_info *out)
{
	struct entry e;
	memset(out, 0, sizeof(*out));
	int r = entry_parse(bytes, &e, true);
	if (r == 0)
		*out = e.info;
	entry_release(&e);
	return r;
}
