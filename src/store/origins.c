/* Authors' keys by a small id (zila_origins), cached in memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

int store_origin_id(struct zila_store *s, const uint8_t key[32], int64_t *out)
{
	*out = 0;
	for (size_t i = 0; i < s->norigins; i++)
		if (memcmp(s->origins[i].key, key, 32) == 0) {
			*out = s->origins[i].id;
			return 0;
		}
	sqlite3_stmt *st = NULL;
	int r = ZILA_EDB;
	int64_t id = 0;
	/* Another process (a `zila bundle apply` while the daemon runs) may have added the
	 * origin since the cache was loaded: look it up before inserting. */
	if (sqlite3_prepare_v2(s->db, "SELECT id FROM zila_origins WHERE key = ?", -1, &st, NULL))
		goto out;
	sqlite3_bind_blob(st, 1, key, 32, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE)
		goto out;
	sqlite3_finalize(st);
	st = NULL;
	if (id == 0) {
		if (sqlite3_prepare_v2(s->db, "INSERT INTO zila_origins(key) VALUES (?)", -1, &st, NULL))
			goto out;
		sqlite3_bind_blob(st, 1, key, 32, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			goto out;
		id = sqlite3_last_insert_rowid(s->db);
	}
	struct origin *o = realloc(s->origins, (s->norigins + 1) * sizeof(*o));
	if (o == NULL) {
		r = ZILA_ENOMEM;
		goto out;
	}
	s->origins = o;
	o[s->norigins].id = id;
	memcpy(o[s->norigins].key, key, 32);
	*out = o[s->norigins++].id;
	r = 0;
out:
	sqlite3_finalize(st);
	return r;
}

const uint8_t *store_origin_key(struct zila_store *s, int64_t id)
{
	for (size_t i = 0; i < s->norigins; i++)
		if (s->origins[i].id == id)
			return s->origins[i].key;
	return NULL;
}

int store_load_origins(struct zila_store *s)
{
	/* kept prepared: every rolled-back transaction loads them again (store_rollback) */
	sqlite3_stmt *st = store_stmt(s, "SELECT id, key FROM zila_origins ORDER BY id");
	int r = ZILA_EDB;
	if (st == NULL)
		return r;
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (sqlite3_column_bytes(st, 1) != 32)
			continue;
		struct origin *o = realloc(s->origins, (s->norigins + 1) * sizeof(*o));
		if (o == NULL) {
			r = ZILA_ENOMEM;
			goto out;
		}
		s->origins = o;
		o[s->norigins].id = sqlite3_column_int64(st, 0);
		memcpy(o[s->norigins].key, sqlite3_column_blob(st, 1), 32);
		s->norigins++;
	}
	r = 0;
out:
	sqlite3_reset(st);
	return r;
}
