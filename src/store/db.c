/* The store's own connection: errors in words, statements prepared once, transactions. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "zila/log.h"

int store_db_code(struct zila_store *s)
{
	int rc = sqlite3_extended_errcode(s->db);
	if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
		return ZILA_EBUSY;
	if ((rc & 0xff) == SQLITE_FULL || ((rc & 0xff) == SQLITE_IOERR && sqlite3_system_errno(s->db) == ENOSPC))
		return ZILA_EFULL; /* a full disk may also surface as an I/O error (the -shm file) */
	if ((rc & 0xff) == SQLITE_NOMEM)
		return ZILA_ENOMEM;
	return ZILA_EDB;
}

int store_db_error(struct zila_store *s, struct zila_error *err, const char *what)
{
	return zila_error_set(err, store_db_code(s), "%s: %s", what, sqlite3_errmsg(s->db));
}

/* Runs one statement of SQL text, or several, as sqlite3_exec would; a single statement is
 * prepared once and kept (BEGIN, COMMIT, SAVEPOINT, PRAGMA ... run in every transaction:
 * parsing them again each time cost more than a small apply). SQLITE_OK or the error. */
/* The kept statement of sql, prepared now if it is new; *rc the error when it cannot be
 * (SQLITE_OK and NULL: text that is not one statement, or a full cache). */
static sqlite3_stmt *cached(struct zila_store *s, const char *sql, int *rc)
{
	sqlite3_stmt *st = NULL;
	const char *tail = NULL;
	*rc = SQLITE_OK;
	for (size_t i = 0; i < s->nexec; i++)
		if (strcmp(s->exec[i].sql, sql) == 0)
			return s->exec[i].st;
	if ((*rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, &tail)) != SQLITE_OK)
		return NULL;
	while (tail != NULL && (*tail == ' ' || *tail == '\n' || *tail == '\t' || *tail == ';'))
		tail++;
	if (st == NULL || (tail != NULL && *tail != '\0') || s->nexec == STORE_EXEC_CACHE ||
	    (s->exec[s->nexec].sql = strdup(sql)) == NULL) {
		sqlite3_finalize(st);
		return NULL;
	}
	s->exec[s->nexec++].st = st;
	return st;
}

sqlite3_stmt *store_stmt(struct zila_store *s, const char *sql)
{
	int rc;
	return cached(s, sql, &rc);
}

static int exec_cached(struct zila_store *s, const char *sql)
{
	int rc;
	sqlite3_stmt *st = cached(s, sql, &rc);
	if (rc != SQLITE_OK)
		return rc;
	if (st == NULL)
		return sqlite3_exec(s->db, sql, NULL, NULL, NULL);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	if (rc == SQLITE_DONE)
		rc = SQLITE_OK;
	sqlite3_reset(st);
	return rc;
}

int store_exec(struct zila_store *s, const char *sql, struct zila_error *err)
{
	if (exec_cached(s, sql) == SQLITE_OK)
		return 0;
	return store_db_error(s, err, "database");
}

int store_walk(struct zila_store *s, sqlite3_stmt *st, int (*row)(void *ctx, sqlite3_stmt *st), void *ctx)
{
	int r = 0, rc = SQLITE_DONE;
	if (st == NULL)
		return store_db_code(s);
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
		r = row(ctx, st);
	if (r == 0 && rc != SQLITE_DONE)
		r = store_db_code(s);
	sqlite3_finalize(st);
	return r;
}

int store_begin(struct zila_store *s, struct zila_error *err)
{
	for (int i = 0; i < s->ntables; i++) {
		s->tables[i]->hw_clean = false;
		s->tables[i]->nlive_delta = 0;
	}
	if (exec_cached(s, "BEGIN IMMEDIATE") == SQLITE_OK)
		return 0;
	return store_db_error(s, err, "cannot start a write transaction");
}

bool store_lazy_begin(struct zila_store *s)
{
	/* inside a transaction the write commits as that one does */
	if (s->nosync || !sqlite3_get_autocommit(s->db) || exec_cached(s, "PRAGMA synchronous = OFF") != SQLITE_OK)
		return false;
	s->nosync = true;
	return true;
}

void store_lazy_end(struct zila_store *s, bool on)
{
	if (!on)
		return;
	if (exec_cached(s, "PRAGMA synchronous = FULL") == SQLITE_OK)
		s->nosync = false;
	else
		zila_log(ZILA_LOG_WARN, "cannot restore synchronous commits: %s", sqlite3_errmsg(s->db));
}

int zila_store_snapshot_begin(struct zila_store *s)
{
	return exec_cached(s, "BEGIN") == SQLITE_OK ? 0 : ZILA_EDB;
}

void zila_store_snapshot_end(struct zila_store *s)
{
	/* A read snapshot wrote nothing: no cache to rebuild (store_rollback). */
	if (!sqlite3_get_autocommit(s->db))
		(void)exec_cached(s, "ROLLBACK");
}


void store_rollback(struct zila_store *s)
{
	if (!sqlite3_get_autocommit(s->db))
		(void)exec_cached(s, "ROLLBACK");
	/* Origins inserted by the rolled-back transaction are gone from the file, and their
	 * rowids will be handed out again: a cached id would name another device's origin.
	 * The cache is rebuilt from what is committed (on failure it stays empty, and
	 * store_origin_id() looks each key up again). */
	s->norigins = 0;
	if (store_load_origins(s) != 0)
		s->norigins = 0;
	/* conflicts it settled are open again: counted afresh (review.c) */
	s->open_conflicts = -1;
	/* what codec.c counted of zila_live went with it */
	for (int i = 0; i < s->ntables; i++)
		s->tables[i]->nlive_delta = 0;
	/* a schema change it made is gone too: the tables' cache as committed */
	store_schema_rolled_back(s);
}

int store_commit(struct zila_store *s, struct zila_error *err)
{
	int r = 0;
	if (store_hw_commit(s) != 0)
		r = store_db_error(s, err, "cannot record the tables' high-water rowids");
	else if (exec_cached(s, "COMMIT") != SQLITE_OK)
		r = store_db_error(s, err, "cannot commit");
	if (r != 0)
		store_rollback(s);
	else
		s->schema_txn = false;
	return r;
}
