/* The peer table the daemon keeps in the replica. Other code reads it by column name:
 * `zila report` takes the last sync per device from (name, district_id, last_sync), so keep
 * those columns.
 *   zila_peers(device BLOB PRIMARY KEY  -- the peer's Ed25519 key, 32 bytes
 *              name, district_id        -- from its certificate ("*" for scope all)
 *              addr, source             -- last address; 'lan', 'config', 'hq' or 'inbound'
 *              last_seen, last_sync     -- unix seconds: last contact, last completed session
 *              last_result              -- 'ok' or why the last session failed
 *              sent, received           -- entries in the last session, each way
 *              entries_at_sync          -- entries we held when that session completed
 *              clock_offset_ms)         -- its clock minus HQ's time as we knew it at its last
 *                                          Hello (minus ours when we know nothing of HQ's) */
#include <stdio.h>
#include <string.h>

#include "peers.h"
#include "zila/clock.h"
#include "zila/log.h"

int peers_init(struct zila_store *s)
{
	char *msg = NULL;
	int r = sqlite3_exec(zila_store_db(s),
			     "CREATE TABLE IF NOT EXISTS zila_peers(device BLOB PRIMARY KEY, name TEXT, district_id TEXT,"
			     " addr TEXT, source TEXT, last_seen INTEGER, last_sync INTEGER, last_result TEXT,"
			     " sent INTEGER, received INTEGER, entries_at_sync INTEGER, clock_offset_ms INTEGER)",
			     NULL, NULL, &msg);
	if (r != SQLITE_OK) {
		zila_log(ZILA_LOG_ERROR, "cannot create the peer table: %s", msg ? msg : "?");
		sqlite3_free(msg);
		return ZILA_EDB;
	}
	return 0;
}

static void step(sqlite3_stmt *st, const char *what)
{
	if (st != NULL && sqlite3_step(st) != SQLITE_DONE)
		zila_log(ZILA_LOG_WARN, "cannot record %s in the peer table: %s", what,
			 sqlite3_errmsg(sqlite3_db_handle(st)));
	sqlite3_finalize(st);
}

void peers_seen(struct zila_store *s, const uint8_t device[32], const char *name, const char *district, const char *addr,
		const char *source)
{
	sqlite3_stmt *st = NULL;
	sqlite3_prepare_v2(zila_store_db(s),
			   "INSERT INTO zila_peers(device, name, district_id, addr, source, last_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
			   " ON CONFLICT(device) DO UPDATE SET name = coalesce(excluded.name, name),"
			   " district_id = coalesce(excluded.district_id, district_id), addr = excluded.addr,"
			   " source = CASE WHEN source IN ('hq', 'config') AND excluded.source IN ('inbound', 'lan') THEN source"
			   " ELSE excluded.source END, last_seen = excluded.last_seen",
			   -1, &st, NULL);
	if (st == NULL)
		return;
	sqlite3_bind_blob(st, 1, device, 32, SQLITE_STATIC);
	if (name && name[0])
		sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	if (district && district[0])
		sqlite3_bind_text(st, 3, district, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, addr, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, source, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)zila_wall_s());
	step(st, "a peer");
}

void peers_synced(struct zila_store *store, const uint8_t device[32], int result, const char *reason,
		  const struct zila_session_stats *s)
{
	sqlite3_stmt *st = NULL;
	struct zila_store_counts counts;
	if (zila_store_counts(store, &counts) != 0)
		memset(&counts, 0, sizeof(counts));
	sqlite3_prepare_v2(zila_store_db(store),
			   "UPDATE zila_peers SET last_seen = ?2, last_result = ?3,"
			   " last_sync = CASE WHEN ?3 = 'ok' THEN ?2 ELSE last_sync END,"
			   " sent = ?4, received = ?5,"
			   " entries_at_sync = CASE WHEN ?3 = 'ok' THEN ?6 ELSE entries_at_sync END,"
			   " clock_offset_ms = coalesce(?7, clock_offset_ms) WHERE device = ?1",
			   -1, &st, NULL);
	if (st == NULL)
		return;
	sqlite3_bind_blob(st, 1, device, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)zila_wall_s());
	sqlite3_bind_text(st, 3, result == 0 ? "ok" : reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, s ? (sqlite3_int64)s->entries_sent : 0);
	sqlite3_bind_int64(st, 5, s ? (sqlite3_int64)s->entries_received : 0);
	sqlite3_bind_int64(st, 6, counts.entries);
	/* Our own clock's error is not the peer's: measured against HQ's time (as learnt), a
	 * peer is not blamed for our clock, and the warning goes once ours is set right. */
	if (s && s->peer_now_ms)
		sqlite3_bind_int64(st, 7, s->clock_offset_ms);
	step(st, "a session");
}

/* What local writes leave behind: captured changes not sealed yet, and our own sealed
 * entries (a session applying remote entries seals pending changes first, so a change may
 * already be sealed when we look). */
int64_t peers_own_sealed(struct zila_store *s)
{
	sqlite3_stmt *st = NULL;
	int64_t n = -1;
	if (sqlite3_prepare_v2(zila_store_db(s),
			       "SELECT coalesce(sum(f.head), 0) FROM zila_feeds f JOIN zila_origins o ON o.id = f.origin"
			       " WHERE o.key = ?1",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_blob(st, 1, zila_store_device_pk(s), 32, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	return n;
}
