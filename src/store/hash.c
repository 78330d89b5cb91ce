/* The content hash: BLAKE2b-256 over every tracked row, visible and parked, in a
 * canonical order (tables by name, rows by key, columns in table order). */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

static int hash_put(crypto_generichash_state *h, struct zila_buf *b)
{
	crypto_generichash_update(h, b->p, b->len);
	zila_buf_reset(b);
	return 0;
}

/* A parked row's image as kept since the table has its columns: one kept before a column
 * was added has that column's default (a schema change, schema.c), so that two replicas
 * that parked the row before and after the change hash alike; and its values as the
 * table would hold them (val_affine: a replica made before codec.c kept them so may hold
 * the INTEGER 3 a column now TEXT shows as '3'). */
static int put_image(struct zila_store *s, struct zila_buf *b, const struct table *t, struct zila_view img)
{
	struct zila_view in = img;
	uint64_t n;
	if (zila_view_get_varint(&in, &n) != 0 || n > (uint64_t)t->ncols)
		return zila_buf_put_lenbytes(b, img.p, img.len);
	struct zila_buf tmp, conv;
	zila_buf_init(&tmp, 64u << 20);
	zila_buf_init(&conv, 64u << 20);
	int r = zila_buf_put_varint(&tmp, (uint64_t)t->ncols);
	for (uint64_t i = 0; r == 0 && i < n; i++) {
		struct zval v;
		r = val_get(&in, &v);
		r = r ? r : val_affine(s, t, (int)i, &v, &conv);
		r = r ? r : val_put(&tmp, &v);
	}
	zila_buf_release(&conv);
	for (int i = (int)n; r == 0 && i < t->ncols; i++) {
		struct zval v;
		val_default(&v, t, i);
		r = val_put(&tmp, &v);
	}
	r = r ? r : zila_buf_put_lenbytes(b, tmp.p, tmp.len);
	zila_buf_release(&tmp);
	return r;
}

static int hash_table(struct zila_store *s, struct table *t, crypto_generichash_state *h, struct zila_buf *b)
{
	sqlite3_stmt *st = NULL;
	struct zila_buf q;
	char tail[32];
	zila_buf_init(&q, 1 << 20);
	snprintf(tail, sizeof(tail), " ORDER BY %d", t->pk + 1);
	int r = store_sql_select_all(&q, t);
	r = r ? r : zila_buf_put(&q, tail, strlen(tail) + 1);
	if (r != 0)
		goto out;
	r = ZILA_EDB;
	if (sqlite3_prepare_v2(s->db, (const char *)q.p, -1, &st, NULL) != SQLITE_OK)
		goto out;
	r = zila_buf_put_u8(b, 'T');
	r = r ? r : zila_buf_put_lenbytes(b, t->name, strlen(t->name));
	r = r ? r : zila_buf_put_varint(b, (uint64_t)t->ncols);
	for (int i = 0; r == 0 && i < t->ncols; i++)
		r = zila_buf_put_lenbytes(b, t->cols[i], strlen(t->cols[i]));
	int rc;
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		r = zila_buf_put_u8(b, 'R');
		for (int i = 0; r == 0 && i < t->ncols; i++) {
			struct zval v;
			val_from_column(&v, st, i);
			r = val_put(b, &v);
		}
		if (r == 0 && b->len > 65536)
			r = hash_put(h, b);
	}
	if (r != 0)
		goto out;
	sqlite3_finalize(st);
	st = NULL;
	/* Parked rows count: they are rows of the replica, only not shown. */
	if (sqlite3_prepare_v2(s->db,
			       "SELECT p.kind, r.dead FROM zila_parked p JOIN zila_rows r ON r.tid = p.tid"
			       " AND r.pk = p.pk WHERE p.tid = ? ORDER BY p.pk",
			       -1, &st, NULL) != SQLITE_OK) {
		r = ZILA_EDB;
		goto out;
	}
	sqlite3_bind_int64(st, 1, t->id);
	while (r == 0 && sqlite3_step(st) == SQLITE_ROW) {
		r = zila_buf_put_u8(b, 'P');
		r = r ? r : zila_buf_put_u8(b, (uint8_t)sqlite3_column_int(st, 0));
		r = r ? r : put_image(s, b, t, zila_view_make(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1)));
		if (r == 0 && b->len > 65536)
			r = hash_put(h, b);
	}
	if (r == 0)
		r = hash_put(h, b);
out:
	sqlite3_finalize(st);
	zila_buf_release(&q);
	return r;
}

int zila_store_hash(struct zila_store *s, uint8_t out[32], struct zila_error *err)
{
	crypto_generichash_state h;
	struct zila_buf b;
	int r = 0;
	memset(out, 0, 32);
	zila_buf_init(&b, 1u << 30);
	crypto_generichash_init(&h, (const uint8_t *)"zila-hash-v1", 12, 32);
	if ((r = store_exec(s, "BEGIN", err)) != 0)
		goto out;
	for (int i = 0; r == 0 && i < s->ntables; i++) /* tables are sorted by name */
		r = hash_table(s, s->tables[i], &h, &b);
	store_rollback(s);
	if (r != 0) {
		r = store_db_error(s, err, "cannot hash the replica");
		goto out;
	}
	crypto_generichash_final(&h, out, 32);
out:
	zila_buf_release(&b);
	return r;
}
