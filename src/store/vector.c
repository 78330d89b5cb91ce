/* Version vectors and walking the entries a peer lacks, in causal (HLC) order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

#define VECTOR_MAX 1000000

void zila_vector_release(struct zila_vector *v)
{
	free(v->heads);
	v->heads = NULL;
	v->nheads = 0;
}

static int head_cmp(const void *pa, const void *pb)
{
	const struct zila_feed_head *a = pa, *b = pb;
	int c = memcmp(a->origin, b->origin, 32);
	return c ? c : strcmp(a->part, b->part);
}

int zila_store_vector(struct zila_store *s, struct zila_vector *out)
{
	size_t cap = 0;
	int r = ZILA_EDB;
	out->heads = NULL;
	out->nheads = 0;
	/* kept prepared: every session starts with it (its parse cost a tenth of a no-op
	 * sync's start); prepared for this call alone when the store's cache is full */
	static const char q[] = "SELECT o.key, f.part, f.head, f.chain FROM zila_feeds f JOIN zila_origins o"
				" ON o.id = f.origin WHERE f.head > 0 ORDER BY o.key, f.part";
	sqlite3_stmt *kept = store_stmt(s, q), *st = kept;
	if (st == NULL && sqlite3_prepare_v2(s->db, q, -1, &st, NULL) != SQLITE_OK)
		goto out;
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (out->nheads == cap) {
			cap = cap ? cap * 2 : 16;
			struct zila_feed_head *h = realloc(out->heads, cap * sizeof(*h));
			if (h == NULL) {
				r = ZILA_ENOMEM;
				goto out;
			}
			out->heads = h;
		}
		struct zila_feed_head *h = &out->heads[out->nheads++];
		memset(h, 0, sizeof(*h));
		memcpy(h->origin, sqlite3_column_blob(st, 0), 32);
		snprintf(h->part, sizeof(h->part), "%s", (const char *)sqlite3_column_text(st, 1));
		h->seq = (uint64_t)sqlite3_column_int64(st, 2);
		if (sqlite3_column_bytes(st, 3) == ZILA_CHAIN_LEN)
			memcpy(h->chain, sqlite3_column_blob(st, 3), ZILA_CHAIN_LEN);
	}
	if (out->nheads > 1)
		qsort(out->heads, out->nheads, sizeof(*out->heads), head_cmp);
	r = 0;
out:
	if (kept != NULL)
		sqlite3_reset(kept);
	else
		sqlite3_finalize(st);
	if (r != 0)
		zila_vector_release(out);
	return r;
}

int zila_vector_encode(const struct zila_vector *v, struct zila_buf *out)
{
	int r = zila_buf_put_u8(out, 1);
	r = r ? r : zila_buf_put_varint(out, v->nheads);
	for (size_t i = 0; r == 0 && i < v->nheads; i++) {
		r = zila_buf_put(out, v->heads[i].origin, 32);
		r = r ? r : zila_buf_put_lenbytes(out, v->heads[i].part, strlen(v->heads[i].part));
		r = r ? r : zila_buf_put_varint(out, v->heads[i].seq);
	}
	return r;
}

int zila_vector_decode(struct zila_view in, struct zila_vector *out)
{
	uint8_t version;
	uint64_t n;
	struct zila_view part;
	out->heads = NULL;
	out->nheads = 0;
	int r = zila_view_get_u8(&in, &version);
	if (r == 0 && version != 1)
		return ZILA_EVERSION;
	r = r ? r : zila_view_get_varint(&in, &n);
	if (r != 0)
		return r;
	if (n > VECTOR_MAX || n > in.len / 34)
		return ZILA_ETOOBIG;
	out->heads = calloc((size_t)n + 1, sizeof(*out->heads));
	if (out->heads == NULL)
		return ZILA_ENOMEM;
	for (uint64_t i = 0; r == 0 && i < n; i++) {
		struct zila_feed_head *h = &out->heads[i];
		r = zila_view_get_copy(&in, h->origin, 32);
		r = r ? r : zila_view_get_lenbytes(&in, ZILA_PART_MAX, &part);
		r = r ? r : zila_view_get_varint(&in, &h->seq);
		if (r == 0 && memchr(part.p, 0, part.len) != NULL)
			r = ZILA_EFORMAT;
		if (r == 0) {
			memcpy(h->part, part.p, part.len);
			out->nheads++;
		}
	}
	if (r == 0 && in.len != 0)
		r = ZILA_EFORMAT;
	if (r != 0) {
		zila_vector_release(out);
		return r;
	}
	if (out->nheads > 1)
		qsort(out->heads, out->nheads, sizeof(*out->heads), head_cmp);
	return 0;
}

uint64_t zila_vector_get(const struct zila_vector *v, const uint8_t origin[32], const char *part)
{
	struct zila_feed_head key;
	memset(&key, 0, sizeof(key));
	memcpy(key.origin, origin, 32);
	snprintf(key.part, sizeof(key.part), "%s", part);
	const struct zila_feed_head *h = v->nheads ? bsearch(&key, v->heads, v->nheads, sizeof(*h), head_cmp) : NULL;
	return h ? h->seq : 0;
}

int zila_store_entries_since(struct zila_store *s, const struct zila_vector *have, zila_part_filter_fn filter,
			     void *filter_ctx, zila_entry_fn fn, void *ctx)
{
	struct zila_outbox *o = NULL;
	struct zila_entry_info info;
	struct zila_buf b;
	zila_buf_init(&b, 2 * ZILA_ENTRY_MAX);
	int r = zila_outbox_open(s, have, filter, filter_ctx, &o);
	while (r == 0) {
		zila_buf_reset(&b);
		if ((r = zila_outbox_next(o, &info, &b)) == 0)
			r = fn(ctx, &info, zila_buf_view(&b));
	}
	zila_outbox_free(o);
	zila_buf_release(&b);
	return r == ZILA_ENOTFOUND ? 0 : r;
}

void store_vector_sort(struct zila_vector *v)
{
	if (v->nheads > 1)
		qsort(v->heads, v->nheads, sizeof(*v->heads), head_cmp);
}
