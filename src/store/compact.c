/* Compacting the replica's file (README "Deleted rows collected"): after mass deletes, a
 * collection or a prune, SQLite keeps the pages they emptied (on its free list) and those they
 * left part-empty; a VACUUM writes the file again without them, in one transaction. */
#include <string.h>

#include "store_int.h"
#include "zila/os.h"

static int pragma_int(struct zila_store *s, const char *sql, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int r = ZILA_EDB;
	*out = 0;
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
		*out = sqlite3_column_int64(st, 0);
		r = 0;
	}
	sqlite3_finalize(st);
	return r;
}

int zila_store_compact_measure(struct zila_store *s, struct zila_compact_info *info, struct zila_error *err)
{
	int64_t pages = 0, nfree = 0, size = 0, unused = 0;
	memset(info, 0, sizeof(*info));
	/* dbstat reads every page: a laptop's tens of MB, not HQ's hourly (README) */
	if (pragma_int(s, "PRAGMA page_count", &pages) != 0 || pragma_int(s, "PRAGMA freelist_count", &nfree) != 0 ||
	    pragma_int(s, "PRAGMA page_size", &size) != 0 ||
	    pragma_int(s, "SELECT coalesce(sum(unused), 0) FROM dbstat('main', 1)", &unused) != 0)
		return store_db_error(s, err, "cannot measure the replica's pages");
	info->file_bytes = (uint64_t)(pages * size);
	info->free_bytes = (uint64_t)(nfree * size);
	info->unused_bytes = (uint64_t)unused;
	return 0;
}

bool zila_store_compact_pays(const struct zila_compact_info *info)
{
	uint64_t back = info->free_bytes + info->unused_bytes;
	return back >= ZILA_COMPACT_MIN_BYTES && back * 100 >= info->file_bytes * ZILA_COMPACT_SHARE_PCT;
}

/* VACUUM writes the compacted copy to a temporary file, then every page of it to the WAL
 * beside the replica: room for both, counted on the replica's disk. */
static int room_for(struct zila_store *s, const struct zila_compact_info *info, struct zila_error *err)
{
	uint64_t avail = 0, need = 2 * (info->file_bytes - info->free_bytes) + ZILA_COMPACT_MIN_BYTES;
	if (zila_os_free_bytes(s->dir, &avail) != 0)
		return 0; /* unknown: VACUUM says SQLITE_FULL if it runs out, and changes nothing */
	if (avail >= need)
		return 0;
	return zila_error_set(err, ZILA_EFULL,
			      "not enough free disk space to compact the replica: it needs %.1f MiB free beside '%s', "
			      "there is %.1f MiB",
			      (double)need / 1048576, s->dir, (double)avail / 1048576);
}

/* VACUUM wrote the compacted file into the WAL: copy it back and empty the WAL, on a
 * connection of its own that waits at most WAL_WAIT_MS for the checkpoint thread (VACUUM's
 * commit woke it) or a reader on an older snapshot; past that it is left to a later
 * checkpoint, which shrinks the file as well (the WAL keeps its size until then). */
#define WAL_WAIT_MS 250

static void shrink_wal(struct zila_store *s)
{
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(s->db_path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) == SQLITE_OK &&
	    sqlite3_exec(db, "PRAGMA synchronous = FULL", NULL, NULL, NULL) == SQLITE_OK) {
		sqlite3_busy_timeout(db, WAL_WAIT_MS);
		(void)sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
	}
	sqlite3_close(db);
}

/* VACUUM keeps a rowid table's rowids when the table has an INTEGER PRIMARY KEY (the rowid
 * itself) or any index (which names rows by rowid); a table with neither is copied with new
 * rowids, 1 up, its gaps closed. Tracked tables have a primary key, so they keep theirs;
 * zila_pending's rowids live only within a seal's transaction. Another program's table of
 * that kind, holding rows, might keep its rowids elsewhere: then no compaction. */
static int renumbered(struct zila_store *s, struct zila_error *err)
{
	static const char q[] =
		"SELECT m.name FROM sqlite_schema m WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
		"AND m.name <> 'zila_pending' AND m.sql NOT LIKE 'CREATE VIRTUAL%' AND m.sql NOT LIKE '%WITHOUT ROWID%' "
		"AND NOT EXISTS (SELECT 1 FROM pragma_index_list(m.name)) "
		"AND NOT EXISTS (SELECT 1 FROM pragma_table_info(m.name) WHERE pk = 1 AND upper(type) = 'INTEGER' "
		"AND (SELECT count(*) FROM pragma_table_info(m.name) WHERE pk > 0) = 1)";
	sqlite3_stmt *st = NULL, *any = NULL;
	int r = 0, rc = SQLITE_DONE;
	if (sqlite3_prepare_v2(s->db, q, -1, &st, NULL) != SQLITE_OK)
		return store_db_error(s, err, "cannot read the replica's tables");
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		char *sql = sqlite3_mprintf("SELECT 1 FROM \"%w\" LIMIT 1", name);
		if (sql == NULL || sqlite3_prepare_v2(s->db, sql, -1, &any, NULL) != SQLITE_OK)
			r = store_db_error(s, err, "cannot read the replica's tables");
		else if (sqlite3_step(any) == SQLITE_ROW)
			r = zila_error_set(err, ZILA_ESCHEMA,
					   "the replica was not compacted: table '%s' has no primary key and no index, and "
					   "compacting would number its rows again (SQLite's VACUUM); give it a primary key "
					   "or an index to allow it",
					   name);
		sqlite3_finalize(any);
		any = NULL;
		sqlite3_free(sql);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_db_error(s, err, "cannot read the replica's tables");
	sqlite3_finalize(st);
	return r;
}

int zila_store_compact(struct zila_store *s, bool always, struct zila_compact_info *info, struct zila_error *err)
{
	int r = zila_store_compact_measure(s, info, err);
	if (r != 0 || (!always && !zila_store_compact_pays(info)))
		return r;
	if (!sqlite3_get_autocommit(s->db) || s->nosync)
		return zila_error_set(err, ZILA_EBUSY, "cannot compact the replica inside a transaction");
	if ((r = renumbered(s, err)) != 0 || (r = room_for(s, info, err)) != 0)
		return r;
	uint64_t t0 = zila_os_mono_ms();
	/* one transaction: a crash or a full disk leaves the replica as it was; VACUUM keeps
	 * the rowids (tables are copied whole), which zila_live and the sweep rely on */
	if (sqlite3_exec(s->db, "VACUUM", NULL, NULL, NULL) != SQLITE_OK) {
		if (sqlite3_errcode(s->db) == SQLITE_FULL)
			return zila_error_set(err, ZILA_EFULL, "not enough free disk space to compact the replica "
							       "(nothing changed)");
		return store_db_error(s, err, "cannot compact the replica");
	}
	info->compacted = true;
	shrink_wal(s);
	info->ms = zila_os_mono_ms() - t0;
	int64_t pages = 0, size = 0;
	if (pragma_int(s, "PRAGMA page_count", &pages) != 0 || pragma_int(s, "PRAGMA page_size", &size) != 0)
		return store_db_error(s, err, "cannot measure the replica's pages");
	info->after_bytes = (uint64_t)(pages * size);
	return 0;
}
