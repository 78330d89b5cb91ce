/* Trust records kept in the replica (zila_trust): certificates and revocations by (type, id). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

int zila_store_trust_put(struct zila_store *s, uint8_t type, struct zila_view id,
			 struct zila_view bytes)
{
	sqlite3_stmt *st = s->st_trust_put;
	sqlite3_bind_int(st, 1, type);
	sqlite3_bind_blob(st, 2, id.p, (int)id.len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, bytes.p, (int)bytes.len, SQLITE_STATIC);
	int r = sqlite3_step(st) == SQLITE_DONE ? 0 : store_db_code(s); /* a full disk says so */
	sqlite3_reset(st);
	return r;
}

bool zila_store_trust_held(struct zila_store *s, uint8_t type, struct zila_view id, struct zila_view bytes)
{
	sqlite3_stmt *st = s->st_trust_get;
	sqlite3_bind_int(st, 1, type);
	sqlite3_bind_blob(st, 2, id.p, (int)id.len, SQLITE_STATIC);
	bool held = sqlite3_step(st) == SQLITE_ROW && (size_t)sqlite3_column_bytes(st, 0) == bytes.len &&
		    memcmp(sqlite3_column_blob(st, 0), bytes.p, bytes.len) == 0;
	sqlite3_reset(st);
	return held;
}

int zila_store_trust_get(struct zila_store *s, uint8_t type, struct zila_view id, uint8_t **bytes, size_t *len)
{
	sqlite3_stmt *st = NULL;
	int r = ZILA_EDB;
	*bytes = NULL;
	*len = 0;
	if (sqlite3_prepare_v2(s->db, "SELECT bytes FROM zila_trust WHERE type = ?1 AND id = ?2", -1, &st, NULL) !=
	    SQLITE_OK)
		goto out;
	sqlite3_bind_int(st, 1, type);
	sqlite3_bind_blob(st, 2, id.p, (int)id.len, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		r = ZILA_ENOTFOUND;
		goto out;
	}
	if (rc != SQLITE_ROW)
		goto out;
	int n = sqlite3_column_bytes(st, 0);
	const void *p = sqlite3_column_blob(st, 0);
	if (n <= 0 || p == NULL) {
		r = ZILA_EFORMAT;
		goto out;
	}
	if ((*bytes = malloc((size_t)n)) == NULL) {
		r = ZILA_ENOMEM;
		goto out;
	}
	memcpy(*bytes, p, (size_t)n);
	*len = (size_t)n;
	r = 0;
out:
	sqlite3_finalize(st);
	return r;
}

struct trust_walk {
	zila_trust_record_fn fn;
	void *ctx;
	uint8_t type;
};

static int trust_row(void *ctx, sqlite3_stmt *st)
{
	struct trust_walk *w = ctx;
	struct zila_view id = zila_view_make(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
	struct zila_view b = zila_view_make(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1));
	return w->fn(w->ctx, w->type, id, b);
}

int zila_store_trust_find(struct zila_store *s, uint8_t type, struct zila_view prefix, zila_trust_record_fn fn,
			  void *ctx)
{
	struct trust_walk w = { fn, ctx, type };
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(s->db,
			       "SELECT id, bytes FROM zila_trust WHERE type = ?1 AND substr(id, 1, ?3) = ?2 ORDER BY id",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int(st, 1, type);
		sqlite3_bind_blob(st, 2, prefix.len ? prefix.p : (const uint8_t *)"", (int)prefix.len, SQLITE_STATIC);
		sqlite3_bind_int(st, 3, (int)prefix.len);
	}
	return store_walk(s, st, trust_row, &w);
}

int zila_store_trust_each(struct zila_store *s, zila_trust_record_fn fn, void *ctx)
{
	sqlite3_stmt *st = s->st_trust_all;
	int r = 0, rc;
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct zila_view id = zila_view_make(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1));
		struct zila_view b = zila_view_make(sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2));
		r = fn(ctx, (uint8_t)sqlite3_column_int(st, 0), id, b);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = ZILA_EDB;
	sqlite3_reset(st);
	return r;
}
