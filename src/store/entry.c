/* The entry: one sealed batch of a device's changes to one partition, signed by it.
 * Layout (all integers varint unless sized; see proto/ENTRY.md):
 *   u8 version (1 or 2) | origin[32] | part (len+bytes) | seq | u64be hlc | schema |
 *   ndeps, ndeps x (origin[32], seq) | u8 codec | body (len+bytes) | sig[64].
 * codec 0: the body as is; codec 1: a zstd frame that declares its size. Version 1 is signed
 * over every byte before the signature; version 2 over its head (every byte before the codec)
 * and the BLAKE2b-256 of its plain body, so that it may be stored or sent under either codec. */
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
	if (version != 1 && version != ZILA_ENTRY_VERSION)
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
	e->version = version;
	e->head_len = bytes.len - in.len;
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
	e->packed = codec == 1;
	e->stored = e->body;
	if (check_sig && (r = entry_verify_sig(bytes, e, NULL)) != 0)
		goto fail;
	return 0;
fail:
	entry_release(e);
	return r;
}

/* A version 2 entry's signed message: its head, then the BLAKE2b-256 of its plain body.
 * msg has room for head_len + 32 bytes. */
static void signed_message(const uint8_t *head, size_t head_len, struct zila_view plain, uint8_t *msg)
{
	memcpy(msg, head, head_len);
	crypto_generichash(msg + head_len, 32, plain.p, plain.len, NULL, 0);
}

int entry_sign(const uint8_t *head, size_t head_len, struct zila_view plain, const uint8_t *sk, uint8_t sig[64])
{
	uint8_t *msg = malloc(head_len + 32);
	if (msg == NULL)
		return ZILA_ENOMEM;
	signed_message(head, head_len, plain, msg);
	crypto_sign_detached(sig, NULL, msg, head_len + 32, sk);
	free(msg);
	return 0;
}

int entry_sign_check(const uint8_t *head, size_t head_len, struct zila_view plain, const uint8_t sig[64],
		     const uint8_t origin[32])
{
	uint8_t *msg = malloc(head_len + 32);
	if (msg == NULL)
		return ZILA_ENOMEM;
	signed_message(head, head_len, plain, msg);
	int r = crypto_sign_verify_detached(sig, msg, head_len + 32, origin) == 0 ? 0 : ZILA_ESIG;
	free(msg);
	return r;
}

int entry_verify_sig(struct zila_view bytes, const struct entry *e, ZSTD_DCtx *dc)
{
	if (bytes.len < 64)
		return ZILA_ESHORT;
	const uint8_t *sig = bytes.p + bytes.len - 64;
	if (e->version == 1)
		return crypto_sign_verify_detached(sig, bytes.p, bytes.len - 64, e->info.origin) == 0 ? 0 : ZILA_ESIG;
	if (!e->packed)
		return entry_sign_check(bytes.p, e->head_len, e->stored, sig, e->info.origin);
	/* A compressed body is checked as its plain bytes, inflated for the check only. */
	struct entry tmp = *e;
	tmp.plain = NULL;
	tmp.deps = NULL;
	int r = entry_inflate(&tmp, dc);
	if (r == 0)
		r = entry_sign_check(bytes.p, e->head_len, tmp.body, sig, e->info.origin);
	free(tmp.plain);
	return r;
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
