/* The peer table (zila_peers): the devices this replica has met, kept by the daemon and
 * read by `zila peers`, status and the report (last sync per district).
 *   zila_peers(device BLOB PRIMARY KEY  -- the peer's Ed25519 key, 32 bytes
 *              name, district_id        -- from its certificate ("*" for scope all)
 *              addr, source             -- last address; 'lan', 'config', 'hq' or 'inbound'
 *              last_seen, last_sync     -- unix seconds: last contact, last completed session
 *              last_result              -- 'ok' or why the last session failed
 *              sent, received           -- entries in the last session, each way
 *              entries_at_sync          -- entries we held when that session completed
 *              clock_offset_ms)         -- its clock minus HQ's time as we knew it at its last
 *                                          Hello (minus ours when we know nothing of HQ's) */
#include <string.h>

#include "store_int.h"

/* A write to the peer table with the device's key as ?1; NULL when it cannot be prepared. */
static sqlite3_stmt *peer_write(struct zila_store *s, const char *sql, const uint8_t device[32])
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		sqlite3_finalize(st);
		return NULL;
	}
	sqlite3_bind_blob(st, 1, device, 32, SQLITE_STATIC);
	return st;
}

/* Runs and finalizes a peer_write() statement (NULL: it could not be prepared), committed
 * without an fsync (store_lazy_begin). */
static int peer_done(struct zila_store *s, sqlite3_stmt *st)
{
	bool lazy = store_lazy_begin(s);
	int r = st != NULL && sqlite3_step(st) == SQLITE_DONE ? 0 : store_db_code(s);
	sqlite3_finalize(st);
	store_lazy_end(s, lazy);
	return r;
}

int zila_store_peer_seen(struct zila_store *s, const uint8_t device[32], const char *name, const char *district,
			 const char *addr, const char *source, int64_t now)
{
	sqlite3_stmt *st = peer_write(s,
				      "INSERT INTO zila_peers(device, name, district_id, addr, source, last_seen)"
				      " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(device) DO UPDATE SET"
				      " name = coalesce(excluded.name, name),"
				      " district_id = coalesce(excluded.district_id, district_id), addr = excluded.addr,"
				      " source = CASE WHEN source IN ('hq', 'config') AND excluded.source IN"
				      " ('inbound', 'lan') THEN source ELSE excluded.source END,"
				      " last_seen = excluded.last_seen",
				      device);
	if (st != NULL) {
		if (name && name[0])
			sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
		if (district && district[0])
			sqlite3_bind_text(st, 3, district, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, addr, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, source, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 6, now);
	}
	return peer_done(s, st);
}

int zila_store_peer_synced(struct zila_store *s, const uint8_t device[32], int64_t now,
			   const struct zila_peer_session *sess)
{
	sqlite3_stmt *st = peer_write(s,
				      "UPDATE zila_peers SET last_seen = ?2, last_result = ?3,"
				      " last_sync = CASE WHEN ?3 = 'ok' THEN ?2 ELSE last_sync END,"
				      " sent = ?4, received = ?5,"
				      " entries_at_sync = CASE WHEN ?3 = 'ok' THEN (SELECT count(*) FROM zila_entries)"
				      " ELSE entries_at_sync END,"
				      " clock_offset_ms = coalesce(?6, clock_offset_ms) WHERE device = ?1",
				      device);
	if (st != NULL) {
		sqlite3_bind_int64(st, 2, now);
		sqlite3_bind_text(st, 3, sess->result, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, sess->sent);
		sqlite3_bind_int64(st, 5, sess->received);
		if (sess->has_clock_offset)
			sqlite3_bind_int64(st, 6, sess->clock_offset_ms);
	}
	return peer_done(s, st);
}

static const char *text_or_null(sqlite3_stmt *st, int col)
{
	return (const char *)sqlite3_column_text(st, col);
}

static int64_t int_opt(sqlite3_stmt *st, int col, bool *has)
{
	*has = sqlite3_column_type(st, col) != SQLITE_NULL;
	return *has ? sqlite3_column_int64(st, col) : 0;
}

struct peer_walk {
	zila_peer_fn fn;
	void *ctx;
};

static int peer_row(void *ctx, sqlite3_stmt *st)
{
	struct peer_walk *w = ctx;
	struct zila_peer_record p;
	memset(&p, 0, sizeof(p));
	if (sqlite3_column_bytes(st, 0) == 32)
		p.device = sqlite3_column_blob(st, 0);
	p.name = text_or_null(st, 1);
	p.district = text_or_null(st, 2);
	p.addr = text_or_null(st, 3);
	p.source = text_or_null(st, 4);
	p.last_seen = int_opt(st, 5, &p.has_last_seen);
	p.last_sync = int_opt(st, 6, &p.has_last_sync);
	p.last_result = text_or_null(st, 7);
	p.sent = sqlite3_column_int64(st, 8);
	p.received = sqlite3_column_int64(st, 9);
	p.entries_at_sync = int_opt(st, 10, &p.has_entries_at_sync);
	p.clock_offset_ms = int_opt(st, 11, &p.has_clock_offset);
	return w->fn(w->ctx, &p);
}

/* Walks the rows of a query over the peer table whose ?1 (if any) is district. */
static int peer_walk(struct zila_store *s, const char *sql, const char *district, zila_peer_fn fn, void *ctx)
{
	struct peer_walk w = { fn, ctx };
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK && district != NULL)
		sqlite3_bind_text(st, 1, district, -1, SQLITE_STATIC);
	return store_walk(s, st, peer_row, &w);
}

#define PEER_COLS                                                                                          \
	"SELECT device, name, district_id, addr, source, last_seen, last_sync, last_result, sent, received," \
	" entries_at_sync, clock_offset_ms FROM zila_peers"

int zila_store_peer_each(struct zila_store *s, zila_peer_fn fn, void *ctx)
{
	return peer_walk(s, PEER_COLS " ORDER BY last_seen DESC", NULL, fn, ctx);
}

int zila_store_peer_district(struct zila_store *s, const char *district, zila_peer_fn fn, void *ctx)
{
	return peer_walk(s, PEER_COLS " WHERE district_id = ?1 ORDER BY last_sync DESC", district, fn, ctx);
}
