/* Creating and opening a replica: its zila_* tables and their upgrades, the device key, the
 * connections, the prepared statements, the clock hooks; what it holds is in db.c (the
 * connection and transactions), origins.c, meta.c (settings) and records.c (trust records). */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store_int.h"
#include "zila/store_test.h"
#include "zila/clock.h"
#include "zila/log.h"
#include "zila/os.h"

extern const char zila_default_schema_sql[];

#define STR_(x) #x
#define STR(x) STR_(x)
#define STORE_VERSION_STR STR(STORE_SCHEMA_VERSION)

/* Row states by rowid (store_int.h, struct rowstate): new in replica format 2. */
#define LIVE_SQL                                                                                 \
	"CREATE TABLE zila_live(tid INTEGER NOT NULL, rid INTEGER NOT NULL, pk NOT NULL, st BLOB NOT NULL," \
	" PRIMARY KEY(tid, rid)) WITHOUT ROWID;"

/* Devices seen to sign two histories of a feed (fork.c): new in replica format 5. */
#define FORKS_SQL                                                                                \
	"CREATE TABLE zila_forks(origin BLOB NOT NULL, part TEXT NOT NULL, seq INTEGER NOT NULL,"   \
	" seen_at INTEGER NOT NULL, peer BLOB, PRIMARY KEY(origin, part));"

/* The devices met (peers.c): new in replica format 6, where a daemon used to create it. */
#define PEERS_SQL                                                                                        \
	"CREATE TABLE IF NOT EXISTS zila_peers(device BLOB PRIMARY KEY, name TEXT, district_id TEXT,"     \
	" addr TEXT, source TEXT, last_seen INTEGER, last_sync INTEGER, last_result TEXT, sent INTEGER," \
	" received INTEGER, entries_at_sync INTEGER, clock_offset_ms INTEGER);"

/* The schema entries taken past the default (schema.c): new in replica format 8, with
 * zila_tables.cols, the synced columns of each table (NULL: all of them). Format 9 keys
 * them by (version, author): two HQ devices may make the same version; state 0 applied,
 * 1 the same change as one before it, 2 lost to one before it (why); undo: what undoing
 * it restores (the table's statement before a column was added, a dropped index's). */
#define SCHEMA_SQL                                                                                \
	"CREATE TABLE IF NOT EXISTS zila_schema(version INTEGER NOT NULL, origin BLOB NOT NULL, sql TEXT NOT NULL,"  \
	" pcol TEXT, hlc INTEGER, at INTEGER, state INTEGER NOT NULL DEFAULT 0, why TEXT, undo TEXT,"              \
	" PRIMARY KEY (version, origin));"
/* Format 8 to 9: the same rows, keyed by version and author. */
#define SCHEMA_9_SQL                                                                                    \
	"ALTER TABLE zila_schema RENAME TO zila_schema_8;" SCHEMA_SQL                                        \
	"INSERT INTO zila_schema(version, origin, sql, pcol, hlc, at) SELECT version,"                       \
	" coalesce(origin, zeroblob(32)), sql, pcol, hlc, at FROM zila_schema_8; DROP TABLE zila_schema_8;"

/* Checkpoints of a partition's state (partckpt.c, proto/CHECKPOINT.md): new in replica
 * format 10, with zila_feeds.base (entries at or below it may not be held here). */
#define CKPT_SQL                                                                                  \
	"CREATE TABLE IF NOT EXISTS zila_checkpoints(part TEXT PRIMARY KEY, hlc INTEGER NOT NULL,"  \
	" signer BLOB NOT NULL, bytes BLOB NOT NULL, at INTEGER);"

static const char meta_sql[] =
	"CREATE TABLE zila_meta(k TEXT PRIMARY KEY, v);"
	"CREATE TABLE zila_tables(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, pcol TEXT, hw INTEGER, nlive INTEGER,"
	" cols TEXT);" SCHEMA_SQL
	"CREATE TABLE zila_pending(tid INTEGER NOT NULL, rid INTEGER, pk, m INTEGER, part, at REAL);"
	"CREATE TABLE zila_origins(id INTEGER PRIMARY KEY, key BLOB NOT NULL UNIQUE);"
	"CREATE TABLE zila_feeds(id INTEGER PRIMARY KEY, origin INTEGER NOT NULL, part TEXT NOT NULL,"
	" head INTEGER NOT NULL DEFAULT 0, chain BLOB, base INTEGER NOT NULL DEFAULT 0, UNIQUE(origin, part));"
	FORKS_SQL
	"CREATE TABLE zila_entries(id INTEGER PRIMARY KEY, feed INTEGER NOT NULL, seq INTEGER NOT NULL,"
	" hlc INTEGER NOT NULL, applied INTEGER NOT NULL, bytes BLOB NOT NULL, UNIQUE(feed, seq));"
	"CREATE INDEX zila_entries_hlc ON zila_entries(hlc);"
	"CREATE INDEX zila_entries_held ON zila_entries(applied) WHERE applied = 0;"
	"CREATE TABLE zila_rows(tid INTEGER NOT NULL, pk NOT NULL, st BLOB NOT NULL, dead BLOB,"
	" PRIMARY KEY(tid, pk)) WITHOUT ROWID;"
	LIVE_SQL
	"CREATE TABLE zila_parked(tid INTEGER NOT NULL, pk NOT NULL, kind INTEGER NOT NULL,"
	" PRIMARY KEY(tid, pk)) WITHOUT ROWID;"
	"CREATE TABLE zila_conflicts(id INTEGER PRIMARY KEY, tbl TEXT NOT NULL, pk, col TEXT NOT NULL,"
	" kept, kept_origin BLOB, kept_hlc INTEGER, lost, lost_origin BLOB, lost_hlc INTEGER,"
	" seen_at INTEGER NOT NULL, resolved INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE zila_trust(type INTEGER NOT NULL, id BLOB NOT NULL, bytes BLOB NOT NULL,"
	" PRIMARY KEY(type, id));" PEERS_SQL CKPT_SQL;

static uint64_t wall_ms(void *ctx)
{
	(void)ctx;
	return zila_wall_ms();
}

uint64_t store_now_ms(struct zila_store *s)
{
	return s->clock(s->clock_ctx);
}

void zila_store_set_clock(struct zila_store *s, zila_clock_fn fn, void *ctx)
{
	s->clock = fn ? fn : wall_ms;
	s->clock_ctx = ctx;
}

static bool uptime(void *ctx, struct zila_uptime *out)
{
	(void)ctx;
	return zila_uptime(out);
}

void zila_store_set_uptime(struct zila_store *s, zila_uptime_fn fn, void *ctx)
{
	s->uptime = fn ? fn : uptime;
	s->uptime_ctx = ctx;
}

uint64_t zila_hlc_ms(uint64_t hlc)
{
	return hlc >> 16;
}

static char *path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);
	if (p != NULL)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

static int write_key(const char *path, const uint8_t *sk, struct zila_error *err)
{
	return zila_os_write_new(path, sk, crypto_sign_SECRETKEYBYTES, 0600, err);
}

static int read_key(struct zila_store *s, struct zila_error *err)
{
	char *path = path_join(s->dir, ZILA_KEY_FILE);
	struct zila_buf key;
	unsigned mode = 0;
	int r = ZILA_ENOMEM;
	zila_buf_init(&key, crypto_sign_SECRETKEYBYTES);
	if (path == NULL)
		goto out;
	if ((r = zila_os_read_file(path, crypto_sign_SECRETKEYBYTES, &key, &mode, err)) != 0) {
		if (r == ZILA_ETOOBIG)
			r = zila_error_set(err, ZILA_EFORMAT, "device key '%s' is damaged", path);
		else if (r != ZILA_ENOMEM)
			r = zila_error_set(err, ZILA_EIO, "cannot read the device key: %s", zila_error_msg(err, r));
		goto out;
	}
	if ((mode & 077) != 0) {
		char how[600];
		zila_os_private_how(path, how, sizeof(how));
		zila_log(ZILA_LOG_WARN, "device key '%s' is readable by others; run '%s'", path, how);
	}
	if (key.len != crypto_sign_SECRETKEYBYTES) {
		r = zila_error_set(err, ZILA_EFORMAT, "device key '%s' is damaged", path);
		goto out;
	}
	memcpy(s->sk, key.p, crypto_sign_SECRETKEYBYTES);
	crypto_sign_ed25519_sk_to_pk(s->pk, s->sk);
	r = 0;
out:
	zila_buf_release(&key); /* wipes the copy */
	free(path);
	return r;
}

static int open_db(const char *path, int flags, sqlite3 **out)
{
	*out = NULL;
	int rc = sqlite3_open_v2(path, out, flags | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		sqlite3_close(*out);
		*out = NULL;
	}
	return rc;
}

/* zila's own connection's page cache (KiB, negative) */
#define OWN_CACHE "-40960"

static int setup_connection(sqlite3 *db, bool zila_conn)
{
	int off = 0;
	sqlite3_busy_timeout(db, 10000);
	if (zila_conn) {
		if (sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, &off) != SQLITE_OK ||
		    store_chain_register(db) != 0)
			return -1;
	}
	/* zila's own connection merges with foreign keys off (orphans are parked, not
	 * refused); an application connection opened by zila enforces them. The page cache
	 * is most of a daemon's memory: 40 MiB keeps a laptop cloning a million rows under
	 * 64 MiB, and past that a bigger cache bought little (the two random-key B-trees
	 * of a large clone outgrow any cache of that order; the OS page cache holds them). */
	return sqlite3_exec(db,
			    zila_conn ? "PRAGMA foreign_keys = OFF; PRAGMA synchronous = FULL;"
					"PRAGMA cache_size = " OWN_CACHE "; PRAGMA temp_store = MEMORY;"
				      : "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;",
			    NULL, NULL, NULL);
}

/* The page cache the replica's header asks of every connection that does not set its own
 * (PRAGMA default_cache_size, in pages: 32 MiB of 4 KiB pages). SQLite's default, 2 MiB,
 * is outgrown by a table of some 100k rows, and an application's writes to a tracked
 * table touch one B-tree more (zila_pending): with 2 MiB a million-row insert took 1.6x
 * as long tracked as untracked, with 32 MiB 1.25x, and both ran faster (bench_store). */
#define APP_CACHE_PAGES "8192"

/* Replicas made before the header said so get it on their next open; a replica another
 * program holds locked gets it another time. */
static void app_cache_default(struct zila_store *s)
{
	sqlite3_stmt *st = NULL;
	long pages = 0;
	if (sqlite3_prepare_v2(s->db, "PRAGMA default_cache_size", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		pages = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	/* which sets this connection's cache too: set back to zila's own */
	if (pages < atol(APP_CACHE_PAGES))
		(void)sqlite3_exec(s->db, "PRAGMA default_cache_size = " APP_CACHE_PAGES "; PRAGMA cache_size = " OWN_CACHE,
				   NULL, NULL, NULL);
}

static const char *prepared[][2] = {
	{ "row_get", "SELECT st, dead FROM zila_rows WHERE tid = ? AND pk = ?" },
	{ "row_put", "INSERT INTO zila_rows(tid, pk, st, dead) VALUES (?, ?, ?, ?)" },
	{ "row_upd", "UPDATE zila_rows SET st = ?3, dead = ?4 WHERE tid = ?1 AND pk = ?2" },
	{ "row_del", "DELETE FROM zila_rows WHERE tid = ? AND pk = ?" },
	{ "live_get", "SELECT pk, st FROM zila_live WHERE tid = ? AND rid = ?" },
	{ "live_put", "INSERT INTO zila_live(tid, rid, pk, st) VALUES (?, ?, ?, ?)" },
	{ "live_upd", "UPDATE zila_live SET pk = ?3, st = ?4 WHERE tid = ?1 AND rid = ?2" },
	{ "live_del", "DELETE FROM zila_live WHERE tid = ?1 AND rid = ?2 AND pk = ?3" },
	{ "live_evict", "INSERT OR REPLACE INTO zila_rows(tid, pk, st, dead) SELECT tid, pk, st, NULL FROM zila_live"
			" WHERE tid = ?1 AND rid = ?2 AND pk IS NOT ?3" },
	{ "live_scan", "SELECT rid, pk FROM zila_live WHERE tid = ? ORDER BY rid DESC" },
	{ "pend_dels", "SELECT tid, rid FROM zila_pending WHERE m IS NULL AND rid IS NOT NULL ORDER BY tid, rid" },
	{ "pend_del_from", "SELECT EXISTS(SELECT 1 FROM zila_pending WHERE tid = ? AND m IS NULL AND rid >= ?)" },
	{ "hw_get", "SELECT hw FROM zila_tables WHERE id = ?" },
	{ "hw_set", "UPDATE zila_tables SET hw = ?2 WHERE id = ?1" },
	{ "nlive_add", "UPDATE zila_tables SET nlive = nlive + ?2 WHERE id = ?1 AND nlive IS NOT NULL" },
	{ "nlive_get", "SELECT nlive FROM zila_tables WHERE id = ?" },
	{ "nlive_set", "UPDATE zila_tables SET nlive = (SELECT count(*) FROM zila_live WHERE tid = ?1) - ?2 WHERE id = ?1" },
	{ "entry_put", "INSERT INTO zila_entries(feed, seq, hlc, applied, bytes) VALUES (?, ?, ?, ?, ?)" },
	{ "feed_get", "SELECT id, head, head_hlc FROM zila_feeds WHERE origin = ? AND part = ?" },
	{ "feed_new", "INSERT INTO zila_feeds(origin, part, head) VALUES (?, ?, 0)" },
	{ "feed_head", "UPDATE zila_feeds SET head = ?1, chain = zila_chain(chain, ?3), head_hlc = ?4, seen = ?5"
		       " WHERE id = ?2" },
	{ "conflict", "INSERT INTO zila_conflicts(tbl, pk, col, kept, kept_origin, kept_hlc, lost,"
		      " lost_origin, lost_hlc, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" },
	{ "park_put", "INSERT OR REPLACE INTO zila_parked(tid, pk, kind) VALUES (?, ?, ?)" },
	{ "park_del", "DELETE FROM zila_parked WHERE tid = ? AND pk = ?" },
	{ "trust_put", "INSERT OR REPLACE INTO zila_trust(type, id, bytes) VALUES (?, ?, ?)" },
	{ "trust_get", "SELECT bytes FROM zila_trust WHERE type = ? AND id = ?" },
	{ "trust_all", "SELECT type, id, bytes FROM zila_trust ORDER BY type, id" },
	{ "feed_hlc", "SELECT hlc FROM zila_entries WHERE feed = ? AND seq = ?" },
};

/* zila_feeds.head_hlc (the date of the head entry) and .seen (when this replica last took
 * an entry of the feed, seconds) came after replica format 4: added in place, and older
 * zila ignores them (NULL: not known yet). */
static int feeds_columns(struct zila_store *s, struct zila_error *err)
{
	sqlite3_stmt *st = NULL;
	int has = 0;
	if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM pragma_table_info('zila_feeds') WHERE name = 'seen'", -1,
			       &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		has = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (has)
		return 0;
	int r = store_exec(s, "ALTER TABLE zila_feeds ADD COLUMN head_hlc INTEGER", err);
	return r ? r : store_exec(s, "ALTER TABLE zila_feeds ADD COLUMN seen INTEGER", err);
}

static int prepare_all(struct zila_store *s, struct zila_error *err)
{
	sqlite3_stmt **slots[] = { &s->st_row_get, &s->st_row_put, &s->st_row_upd, &s->st_row_del,
				   &s->st_live_get, &s->st_live_put, &s->st_live_upd, &s->st_live_del,
				   &s->st_live_evict, &s->st_live_scan, &s->st_pend_dels, &s->st_pend_del_from,
				   &s->st_hw_get, &s->st_hw_set, &s->st_nlive_add, &s->st_nlive_get, &s->st_nlive_set,
				   &s->st_entry_put, &s->st_feed_get, &s->st_feed_new,
				   &s->st_feed_head, &s->st_conflict, &s->st_park_put, &s->st_park_del,
				   &s->st_trust_put, &s->st_trust_get, &s->st_trust_all, &s->st_feed_hlc };
	for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++)
		if (sqlite3_prepare_v3(s->db, prepared[i][1], -1, SQLITE_PREPARE_PERSISTENT, slots[i],
				       NULL) != SQLITE_OK)
			return store_db_error(s, err, prepared[i][0]);
	return 0;
}

void zila_store_free(struct zila_store *s)
{
	if (s == NULL)
		return;
	store_checkpoint_stop(s);
	store_free_tables(s);
	sqlite3_stmt *sts[] = { s->st_row_get, s->st_row_put, s->st_row_upd, s->st_row_del, s->st_live_get,
				s->st_live_put, s->st_live_upd, s->st_live_del, s->st_live_evict,
				s->st_live_scan, s->st_pend_dels, s->st_pend_del_from, s->st_hw_get, s->st_hw_set,
				s->st_nlive_add, s->st_nlive_get, s->st_nlive_set,
				s->st_entry_put,
				s->st_feed_get, s->st_feed_new, s->st_feed_head, s->st_conflict,
				s->st_park_put, s->st_park_del, s->st_trust_put, s->st_trust_get, s->st_trust_all,
				s->st_feed_hlc };
	for (size_t i = 0; i < sizeof(sts) / sizeof(sts[0]); i++)
		sqlite3_finalize(sts[i]);
	sqlite3_finalize(s->st_settle);
	sqlite3_finalize(s->st_same);
	for (size_t i = 0; i < s->nexec; i++) {
		sqlite3_finalize(s->exec[i].st);
		free(s->exec[i].sql);
	}
	ZSTD_freeDCtx(s->dctx);
	if (s->db != NULL)
		sqlite3_close(s->db);
	if (s->app_db != NULL)
		sqlite3_close(s->app_db);
	if (s->sk != NULL)
		sodium_free(s->sk);
	zila_buf_release(&s->tmp_st);
	zila_buf_release(&s->tmp_dead);
	free(s->origins);
	free(s->dir);
	free(s->db_path);
	free(s);
}

static int store_alloc(struct zila_store **out, const char *dir)
{
	struct zila_store *s = calloc(1, sizeof(*s));
	*out = NULL;
	if (s == NULL)
		return ZILA_ENOMEM;
	s->open_conflicts = -1;
	s->dir = strdup(dir);
	s->db_path = path_join(dir, ZILA_DB_FILE);
	s->sk = sodium_malloc(crypto_sign_SECRETKEYBYTES);
	s->clock = wall_ms;
	s->armed_cookie = -1;
	s->uptime = uptime;
	zila_buf_init(&s->tmp_st, 1 << 20);
	zila_buf_init(&s->tmp_dead, 1u << 30);
	if (s->dir == NULL || s->db_path == NULL || s->sk == NULL) {
		zila_store_free(s);
		return ZILA_ENOMEM;
	}
	*out = s;
	return 0;
}

static bool has_column(struct zila_store *s, const char *table, const char *col)
{
	sqlite3_stmt *st = NULL;
	bool has = false;
	if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM pragma_table_info(?) WHERE name = ?", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, col, -1, SQLITE_STATIC);
		has = sqlite3_step(st) == SQLITE_ROW;
	}
	sqlite3_finalize(st);
	return has;
}

/* Format 1 kept every row state in zila_rows by key. Format 2 moves the states of rows a
 * rowid table shows to zila_live, by rowid, and its delete captures record the rowid.
 * Format 3 drops the insert triggers of rowid tables for a high-water rowid (seal.c).
 * Format 4 counts each table's zila_live records (zila_tables.nlive, seal.c). Format 5 keeps
 * each feed's chain hash and the forks seen (zila_forks; fork.c). Format 6 has the peer
 * table (peers.c) from the start. Format 7 records when each captured change was made
 * (zila_pending.at; the triggers again). Format 8 has zila_schema and zila_tables.cols;
 * format 9 keys zila_schema by version and author (two HQ devices); format 10 keeps
 * checkpoints of partitions' states (zila_checkpoints) and each feed's base. One
 * transaction takes a replica from its format to this one. */
static int upgrade(struct zila_store *s, int from, struct zila_error *err)
{
	int r = store_begin(s, err);
	if (r != 0)
		return r;
	if (from < 2)
		r = store_exec(s, LIVE_SQL, err);
	if (from < 3)
		r = r ? r : store_exec(s, "ALTER TABLE zila_tables ADD COLUMN hw INTEGER", err);
	/* NULL: counted when first needed (seal.c, check_gone) */
	if (from < 4)
		r = r ? r : store_exec(s, "ALTER TABLE zila_tables ADD COLUMN nlive INTEGER", err);
	if (from < 5) {
		r = r ? r : store_exec(s, "ALTER TABLE zila_feeds ADD COLUMN chain BLOB;" FORKS_SQL, err);
		r = r ? r : store_migrate_chains(s, err);
	}
	/* a replica a daemon has run on has the table already */
	if (from < 6)
		r = r ? r : store_exec(s, PEERS_SQL, err);
	/* changes captured before have no time: dated when sealed, as they were */
	if (r == 0 && !has_column(s, "zila_pending", "at"))
		r = store_exec(s, "ALTER TABLE zila_pending ADD COLUMN at REAL", err);
	/* (a replica made by a later zila and set back to an older format has them) */
	if (r == 0 && from < 8 && !has_column(s, "zila_tables", "cols"))
		r = store_exec(s, "ALTER TABLE zila_tables ADD COLUMN cols TEXT", err);
	if (from < 8)
		r = r ? r : store_exec(s, SCHEMA_SQL, err);
	else if (from < 9)
		r = r ? r : store_exec(s, SCHEMA_9_SQL, err);
	if (from < 10) {
		r = r ? r : store_exec(s, CKPT_SQL, err);
		if (r == 0 && !has_column(s, "zila_feeds", "base"))
			r = store_exec(s, "ALTER TABLE zila_feeds ADD COLUMN base INTEGER NOT NULL DEFAULT 0", err);
	}
	r = r ? r : store_load_tables(s, err);
	/* the columns there now are the synced ones: a column added later by hand stays local */
	if (from < 8)
		r = r ? r : store_migrate_cols(s, err);
	if (from < 2)
		r = r ? r : store_migrate_live(s, err);
	if (from < 3)
		r = r ? r : store_migrate_hw(s, err);
	r = r ? r : store_arm_all(s, err);
	r = r ? r : store_exec(s, "UPDATE zila_meta SET v = '" STORE_VERSION_STR "' WHERE k = 'store_version'", err);
	r = r ? r : store_commit(s, err);
	if (r != 0) {
		char why[200];
		snprintf(why, sizeof(why), "%s", zila_error_msg(err, r));
		store_rollback(s);
		return zila_error_set(err, r, "cannot upgrade '%s' to replica format %d: %s", s->db_path,
				      STORE_SCHEMA_VERSION, why);
	}
	zila_log(ZILA_LOG_INFO, "upgraded '%s' from replica format %d to %d", s->db_path, from, STORE_SCHEMA_VERSION);
	return 0;
}

/* A replica made by an older zila may be readable by others (0644): made private on open,
 * with its -wal and -shm, which SQLite makes with the database file's mode. */
static void private_files(const char *db_path)
{
	static const char *const suffix[] = { "", "-wal", "-shm" };
	char path[4200];
	for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", db_path, suffix[i]);
		(void)!zila_os_make_private(path);
	}
}

int zila_store_open(struct zila_store **out, const char *dir, struct zila_error *err)
{
	struct zila_store *s = NULL;
	int r = store_alloc(&s, dir);
	*out = NULL;
	if (r != 0)
		return zila_error_set(err, r, "out of memory");
	if (access(s->db_path, F_OK) != 0) {
		r = zila_error_set(err, ZILA_ENOTFOUND, "no replica in '%s'; create one with 'zila -d %s init'",
				   dir, dir);
		goto out;
	}
	private_files(s->db_path);
	if (open_db(s->db_path, SQLITE_OPEN_READWRITE, &s->db) != SQLITE_OK || setup_connection(s->db, true)) {
		r = zila_error_set(err, ZILA_EDB, "cannot open '%s'", s->db_path);
		goto out;
	}
	char *ver = NULL;
	if (zila_store_meta_get(s, "store_version", &ver) != 0) {
		r = zila_error_set(err, ZILA_EFORMAT, "'%s' is not a zila replica", s->db_path);
		goto out;
	}
	int sv = atoi(ver);
	free(ver);
	if (sv < 1 || sv > STORE_SCHEMA_VERSION) {
		r = zila_error_set(err, ZILA_EVERSION, "'%s' has replica format %d; this zila reads 1 to %d",
				   s->db_path, sv, STORE_SCHEMA_VERSION);
		goto out;
	}
	if (sv < STORE_SCHEMA_VERSION && (r = upgrade(s, sv, err)) != 0)
		goto out;
	/* Open conflicts by cell, for settling them (review.c); older replicas get it here. */
	if ((r = store_exec(s, "CREATE INDEX IF NOT EXISTS zila_conflicts_open ON zila_conflicts(tbl, pk, col)"
			       " WHERE resolved = 0",
			    err)) != 0)
		goto out;
	app_cache_default(s);
	store_checkpoint_init(s);
	if ((r = read_key(s, err)) != 0)
		goto out;
	if ((r = store_load_origins(s)) != 0 || (r = store_origin_id(s, s->pk, &s->self_id)) != 0) {
		r = store_db_error(s, err, "origins");
		goto out;
	}
	s->hlc = (uint64_t)store_meta_int(s, "hlc", 0);
	store_clock_load(s);
	store_scope_load(s);
	s->schema = store_meta_int(s, "schema_version", 1);
	s->schema_cookie = -1;
	store_schema_load_blocked(s);
	if ((r = feeds_columns(s, err)) != 0 || (r = prepare_all(s, err)) != 0 ||
	    (r = store_load_tables(s, err)) != 0)
		goto out;
	if ((r = store_blob_upgrade(s, err)) != 0)
		goto out;
	struct zila_error serr;
	if (store_scope_refresh(s, &serr) != 0) /* the next seal tries again */
		zila_log(ZILA_LOG_WARN, "cannot arm the write scope's triggers: %s", serr.msg);
	*out = s;
	s = NULL;
out:
	zila_store_free(s);
	return r;
}

int zila_store_create(const char *dir, struct zila_error *err)
{
	struct zila_store *s = NULL;
	char *key_path = path_join(dir, ZILA_KEY_FILE);
	sqlite3 *db = NULL;
	uint8_t pk[32];
	uint8_t *sk = sodium_malloc(crypto_sign_SECRETKEYBYTES);
	char *db_path = path_join(dir, ZILA_DB_FILE);
	int r = ZILA_ENOMEM;
	if (key_path == NULL || db_path == NULL || sk == NULL)
		goto out;
	if ((r = zila_os_mkdir(dir, 0700, err)) != 0)
		goto out;
	if (access(db_path, F_OK) == 0) {
		r = zila_error_set(err, ZILA_EEXIST, "'%s' already holds a replica", dir);
		goto out;
	}
	/* The replica is private, whatever the umask or the directory's mode: SQLite gives its
	 * -wal and -shm files the mode of the database file, so it is created 0600 here. */
	if ((r = zila_os_write_new(db_path, "", 0, 0600, err)) != 0)
		goto out;
	if (open_db(db_path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &db) != SQLITE_OK) {
		r = zila_error_set(err, ZILA_EDB, "cannot create '%s'", db_path);
		goto out;
	}
	char *msg = NULL;
	if (sqlite3_exec(db, "PRAGMA journal_mode = WAL; BEGIN; PRAGMA default_cache_size = " APP_CACHE_PAGES ";", NULL, NULL, &msg) ||
	    sqlite3_exec(db, meta_sql, NULL, NULL, &msg) ||
	    sqlite3_exec(db, zila_default_schema_sql, NULL, NULL, &msg) ||
	    sqlite3_exec(db,
			 "INSERT INTO zila_meta VALUES ('store_version', '" STORE_VERSION_STR "'), ('schema_version', '1'),"
			 " ('hlc', '0'), ('created_at', strftime('%s','now'));"
			 "COMMIT;",
			 NULL, NULL, &msg)) {
		r = zila_error_set(err, ZILA_EDB, "cannot create the replica: %s", msg ? msg : "?");
		sqlite3_free(msg);
		goto out;
	}
	sqlite3_close(db);
	db = NULL;
	crypto_sign_keypair(pk, sk);
	if ((r = write_key(key_path, sk, err)) != 0)
		goto out;
	if ((r = zila_store_open(&s, dir, err)) != 0)
		goto out;
	/* Track every table of the default schema: district_id partitions when present. */
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(s->db,
			       "SELECT m.name, (SELECT count(*) FROM pragma_table_info(m.name)"
			       " WHERE name = 'district_id') FROM sqlite_schema m WHERE m.type = 'table'"
			       " AND m.name NOT LIKE 'zila_%' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.rowid",
			       -1, &st, NULL)) {
		r = store_db_error(s, err, "schema");
		goto out;
	}
	char **names = NULL;
	int *part = NULL, n = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		char **nn = realloc(names, (size_t)(n + 1) * sizeof(*nn));
		int *np = realloc(part, (size_t)(n + 1) * sizeof(*np));
		if (nn != NULL)
			names = nn;
		if (np != NULL)
			part = np;
		if (nn == NULL || np == NULL)
			break;
		names[n] = strdup((const char *)sqlite3_column_text(st, 0));
		part[n++] = sqlite3_column_int(st, 1);
	}
	sqlite3_finalize(st);
	const char **pcols = calloc((size_t)n + 1, sizeof(*pcols));
	r = pcols == NULL ? zila_error_set(err, ZILA_ENOMEM, "out of memory") : 0;
	for (int i = 0; r == 0 && i < n; i++) {
		if (names[i] == NULL)
			r = zila_error_set(err, ZILA_ENOMEM, "out of memory");
		pcols[i] = part[i] ? "district_id" : NULL;
	}
	/* every table of the schema in one transaction, the table list loaded once */
	if (r == 0)
		r = store_track_many(s, names, pcols, n, err);
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(pcols);
	free(names);
	free(part);
out:
	if (db != NULL)
		sqlite3_close(db);
	zila_store_free(s);
	sodium_free(sk);
	free(key_path);
	free(db_path);
	return r;
}

/* tests only (store_test.h) */
sqlite3 *zila_store_db(struct zila_store *s)
{
	return s->db;
}

bool zila_store_in_transaction(struct zila_store *s)
{
	return !sqlite3_get_autocommit(s->db);
}

void zila_store_set_busy(struct zila_store *s, zila_busy_fn fn, void *ctx)
{
	if (fn != NULL)
		sqlite3_busy_handler(s->db, fn, ctx);
	else
		sqlite3_busy_timeout(s->db, 10000);
}

const char *zila_store_dir(const struct zila_store *s)
{
	return s->dir;
}

const uint8_t *zila_store_device_pk(const struct zila_store *s)
{
	return s->pk;
}

const uint8_t *zila_store_device_sk(const struct zila_store *s)
{
	return s->sk;
}

void zila_store_set_hooks(struct zila_store *s, const struct zila_store_hooks *hooks)
{
	if (hooks == NULL)
		memset(&s->hooks, 0, sizeof(s->hooks));
	else
		s->hooks = *hooks;
}

int zila_store_exec_captured(struct zila_store *s, const char *sql,
			     int (*cb)(void *, int, char **, char **), void *ctx,
			     struct zila_error *err)
{
	if (s->app_db == NULL) {
		if (open_db(s->db_path, SQLITE_OPEN_READWRITE, &s->app_db) != SQLITE_OK ||
		    setup_connection(s->app_db, false))
			return zila_error_set(err, ZILA_EDB, "cannot open '%s'", s->db_path);
	}
	char *msg = NULL;
	if (sqlite3_exec(s->app_db, sql, cb, ctx, &msg) != SQLITE_OK) {
		int r = zila_error_set(err, ZILA_EDB, "%s", msg ? msg : sqlite3_errmsg(s->app_db));
		sqlite3_free(msg);
		return r;
	}
	return 0;
}
