/* Settings (zila_meta): key and text value. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

int zila_store_meta_get(struct zila_store *s, const char *key, char **out)
{
	sqlite3_stmt *st = store_stmt(s, "SELECT v FROM zila_meta WHERE k = ?");
	int r = ZILA_EDB;
	*out = NULL;
	if (st == NULL)
		return r;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE || (rc == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_NULL)) {
		r = ZILA_ENOTFOUND;
		goto out;
	}
	if (rc != SQLITE_ROW)
		goto out;
	*out = strdup((const char *)sqlite3_column_text(st, 0));
	r = *out ? 0 : ZILA_ENOMEM;
out:
	sqlite3_reset(st);
	return r;
}

int zila_store_meta_set(struct zila_store *s, const char *key, const char *value)
{
	sqlite3_stmt *st = store_stmt(s, "INSERT OR REPLACE INTO zila_meta(k, v) VALUES (?, ?)");
	if (st == NULL)
		return ZILA_EDB;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
	int r = sqlite3_step(st) == SQLITE_DONE ? 0 : store_db_code(s); /* a full disk says so */
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

int zila_store_meta_note(struct zila_store *s, const char *key, const char *value)
{
	bool lazy = store_lazy_begin(s);
	int r = zila_store_meta_set(s, key, value);
	store_lazy_end(s, lazy);
	return r;
}

int zila_store_meta_del(struct zila_store *s, const char *const *keys, size_t nkeys)
{
	sqlite3_stmt *st = NULL;
	int r = store_begin(s, NULL);
	if (r != 0)
		return r;
	if (sqlite3_prepare_v2(s->db, "DELETE FROM zila_meta WHERE k = ?", -1, &st, NULL) != SQLITE_OK)
		r = store_db_code(s);
	for (size_t i = 0; r == 0 && i < nkeys; i++) {
		sqlite3_bind_text(st, 1, keys[i], -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			r = store_db_code(s);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	if (r == 0)
		return store_commit(s, NULL);
	store_rollback(s);
	return r;
}

int64_t store_meta_int(struct zila_store *s, const char *key, int64_t dflt)
{
	char *v = NULL;
	if (zila_store_meta_get(s, key, &v) != 0)
		return dflt;
	int64_t x = strtoll(v, NULL, 10);
	free(v);
	return x;
}

int store_save_hlc(struct zila_store *s)
{
	char v[32];
	snprintf(v, sizeof(v), "%llu", (unsigned long long)s->hlc);
	return zila_store_meta_set(s, "hlc", v);
}
