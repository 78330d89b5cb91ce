/* Inside the store: shared between the store's files only. */
#ifndef ZILA_STORE_INT_H
#define ZILA_STORE_INT_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <zstd.h>

#include "zila/buf.h"
#include "zila/err.h"
#include "zila/review.h"
#include "zila/store.h"

#define STORE_SCHEMA_VERSION 10 /* layout of the zila_* tables (1: no zila_live; 2: insert triggers; 3: no zila_tables.nlive;
                                 * 4: no chains, no zila_forks; 5: zila_peers made by the daemon; 6: no zila_pending.at;
                                 * 7: no zila_schema, no zila_tables.cols; 8: zila_schema by version only;
                                 * 9: no zila_checkpoints, no zila_feeds.base) */
#define ZILA_SCHEMA_TABLE "zila_schema" /* the table a schema entry's body names (schema.c) */
#define STORE_FORKED_MAX 64 /* forked origins kept in memory for admission */
#define STORE_EXEC_CACHE 64 /* single statements store_exec and store_stmt keep prepared */
/* What a capture trigger records as the time a change was made: the writer's clock, as
 * SQLite 3.40 reads it (no unixepoch('subsec')); seal.c turns it into milliseconds. */
#define WRITE_TIME "julianday('now')"
#define MASK_BITS 62           /* columns past this share the last bit of an update mask */
#define SEAL_BATCH 2048        /* captured changes read per seal batch */
#define SEAL_CHUNK 128         /* batches per seal transaction (~260k changes) */
#define MAX_SKEW_MS (24ull * 3600 * 1000) /* how far ahead of our wall clock we follow a peer */

/* Value tags of the shared value codec (entries, parked rows, hash). */
enum { VAL_NULL = ZILA_VAL_NULL, VAL_INT = ZILA_VAL_INT, VAL_REAL = ZILA_VAL_REAL, VAL_TEXT = ZILA_VAL_TEXT,
       VAL_BLOB = ZILA_VAL_BLOB };
/* Change kinds in an entry body. */
enum { OP_UPSERT = ZILA_OP_UPSERT, OP_UPDATE = ZILA_OP_UPDATE, OP_DELETE = ZILA_OP_DELETE };

/* Inside the store a value is a zval. */
#define zval zila_value

/* A register version: (hlc, origin) orders writes; seq names the entry that wrote it.
 * origin is the local id from zila_origins; 0 with hlc 0 means "never written". */
struct ver {
	uint64_t hlc;
	int64_t origin;
	uint64_t seq;
};

struct fkey {
	int col;            /* index of the child column in this table */
	struct table *parent;
	char *parent_col;
	int parent_idx;     /* index of parent_col in the parent table */
	sqlite3_stmt *parent_has; /* SELECT 1 FROM parent WHERE parent_col = ? */
};

#define UPD_BY_MAX 4 /* update statements by changed columns a table keeps (the oldest goes) */
/* A rowstate's dirty mask: bit c for column c < 63, DIRTY_MORE for any column past them. */
#define DIRTY_MORE (UINT64_C(1) << 63)
#define DIRTY_BIT(c) ((c) < 63 ? UINT64_C(1) << (c) : DIRTY_MORE)

/* A tracked table, as zila_tables and the SQLite schema describe it. */
struct table {
	int64_t id;
	char *name;
	int ncols;
	char **cols;         /* in table order */
	int pk;              /* index of the primary key column */
	int pcol;            /* index of the partition column, -1 for org-wide */
	int nuniq;           /* UNIQUE indexes other than the primary key */
	int **uniq_cols;     /* per index: column indexes, terminated by -1 */
	sqlite3_stmt **uniq_find; /* SELECT pk FROM t WHERE c1 = ? AND ... */
	int nfk;
	struct fkey *fks;
	int nchild;          /* foreign keys elsewhere that point at this table */
	struct child { struct table *child; int fk; sqlite3_stmt *find; } *children;
	sqlite3_stmt *sel;   /* SELECT all columns [, rowid] FROM t WHERE pk = ? */
	/* How the key column compares (key_canon): its affinity ('T' text, 'N' numeric or
	 * real, 'B' none), and with a collation other than BINARY, a search of zila_rows
	 * that compares keys by it (SELECT pk FROM zila_rows WHERE tid = ? AND pk = ? COLLATE c). */
	char pk_aff;
	/* Every column's affinity by SQLite's rules on its declared type: 'I' INTEGER, 'T'
	 * TEXT, 'B' BLOB (none), 'R' REAL, 'N' NUMERIC. A row the table does not show keeps
	 * its values as the table would hold them (val_affine). */
	char *aff;
	sqlite3_stmt *key_rows;
	bool has_rowid;      /* capture records the rowid (cheaper than the key text) */
	sqlite3_stmt *sel_rowid; /* SELECT all columns, rowid FROM t WHERE rowid >= ? (in order), or NULL */
	bool rows_none;      /* seal: zila_rows holds no state of this table */
	/* Rowid tables have no insert trigger: a row past the table's high-water rowid
	 * (zila_tables.hw) is new, and the seal reads it there (seal.c). */
	sqlite3_stmt *sel_down; /* SELECT pk, rowid FROM t WHERE rowid <= ? ORDER BY rowid DESC */
	sqlite3_stmt *count_new; /* SELECT count(*) FROM t WHERE rowid > ? */
	sqlite3_stmt *hw_fix; /* at commit: hw to the highest rowid (?1), or down to it (struct table) */
	bool hw_clean;       /* every row of the table is sealed in this transaction: hw may rise */
	bool down_walked;    /* seal_reused() walked down from its mark in this seal */
	sqlite3_stmt *ins;   /* INSERT INTO t (all columns) VALUES (...) */
	sqlite3_stmt *upd;   /* UPDATE t SET all non-pk columns WHERE pk = ? */
	/* UPDATE t SET the columns of a mask WHERE rowid = ?(ncols + 1) AND pk = ?: a merge
	 * that changes one column rewrites only the indexes that name it (store_table_upd) */
	struct { uint64_t mask; sqlite3_stmt *st; } upd_by[UPD_BY_MAX];
	unsigned upd_by_next;
	sqlite3_stmt *del;   /* DELETE FROM t WHERE pk = ? */
	bool touched;        /* changed in the current apply/seal */
	/* Rows SQLite removes without a trigger (REPLACE on a UNIQUE index) leave their states
	 * in zila_live: the seal compares the table's row count with the number of zila_live
	 * records of the table (zila_tables.nlive as committed, plus nlive_delta: what codec.c
	 * counted this transaction) when a change it sealed may have displaced rows
	 * (maybe_gone: a new row, or an update of a uniq_mask column). */
	int64_t uniq_mask;   /* update-mask bits of columns in UNIQUE indexes (-1: an expression) */
	int64_t nlive_delta;
	bool maybe_gone;
	bool evicted;        /* a state was moved out of zila_live for another key's (codec.c) */
	/* a merge met a row its state shows but the table lacks (removed without a capture
	 * since the seal, e.g. a REPLACE on its rowid): the next seal walks the table against
	 * its states and seals the removal as a delete, as any (materialize.c, seal.c) */
	bool gone_seen;
	sqlite3_stmt *count_all; /* SELECT count(*) FROM t */
	/* A table rebuilt by another program (create a copy, copy the rows, drop, rename, as
	 * database tools change a table's structure) lost its capture triggers: unarmed until
	 * they are made again; reseal: every row is sealed again (seal.c, rearm). */
	bool unarmed, reseal;
	/* Each column's constant DEFAULT (NULL: none, or not a constant), given to a row no
	 * entry named the column for: one written before the column was added (schema.c). */
	sqlite3_value **dflt;
};

struct origin {
	int64_t id;
	uint8_t key[32];
};

struct zila_store {
	sqlite3 *db;       /* triggers off, foreign keys off: zila's own writes */
	sqlite3 *app_db;   /* opened on demand for zila_store_exec_captured() */
	char *dir;
	char *db_path;
	uint8_t *sk;       /* sodium_malloc'd: 64-byte Ed25519 secret key */
	uint8_t pk[32];
	int64_t self_id;   /* zila_origins id of this device */
	uint64_t hlc;      /* last HLC issued or seen */
	int64_t schema;    /* user schema version */
	zila_clock_fn clock;
	void *clock_ctx;
	zila_uptime_fn uptime;
	void *uptime_ctx;
	/* the reference clock (clock.c): HQ's time as learnt. The offset was HQ's clock minus
	 * ours when this computer's clock read clk_learnt_wall, clk_learnt_up after boot
	 * clk_boot ("": unknown); clk_dirty: not yet written down as it is in memory. */
	bool clk_ref, clk_has_offset, clk_dirty;
	int64_t clk_offset;
	uint64_t clk_seen, clk_saved_seen, clk_learnt_wall, clk_learnt_up;
	uint64_t clk_heard; /* HQ's time as another laptop told it (hearsay, bounded); 0: none */
	/* open conflicts (review.c; -1: not counted yet); may count some settled since */
	int64_t open_conflicts;
	sqlite3_stmt *st_settle; /* prepared at its first use */
	sqlite3_stmt *st_same;   /* apply.c, check_same: likewise */
	ZSTD_DCtx *dctx;         /* apply's decompression context, made at its first use */
	struct {
		char *sql;
		sqlite3_stmt *st;
	} exec[STORE_EXEC_CACHE]; /* store_exec's statements, prepared once (open.c) */
	size_t nexec;
	/* origins zila_forks names (fork.c), read when forks_known is false */
	uint8_t forked[STORE_FORKED_MAX][32];
	size_t nforked;
	bool forks_known;
	bool reapplying; /* store_reapply(): the merge is made again, conflicts were recorded */
	char clk_boot[40];
	struct zila_store_hooks hooks;
	struct table **tables;
	int ntables;
	struct zila_buf tmp_st, tmp_dead; /* scratch for row_save */
	struct origin *origins; /* cache of zila_origins; rebuilt after a rollback */
	size_t norigins;
	/* prepared statements, created at open */
	sqlite3_stmt *st_row_get, *st_row_put, *st_row_upd, *st_row_del;
	sqlite3_stmt *st_live_get, *st_live_put, *st_live_upd, *st_live_del, *st_live_evict;
	sqlite3_stmt *st_live_scan, *st_pend_dels, *st_pend_del_from, *st_hw_get, *st_hw_set;
	sqlite3_stmt *st_nlive_add, *st_nlive_get, *st_nlive_set;
	sqlite3_stmt *st_entry_put, *st_feed_get, *st_feed_new, *st_feed_head;
	sqlite3_stmt *st_conflict, *st_park_put, *st_park_del;
	sqlite3_stmt *st_trust_put, *st_trust_get, *st_trust_all;
	sqlite3_stmt *st_feed_hlc; /* the HLC of a feed's entry (seal.c: a feed's dates only rise) */
	int64_t armed_cookie; /* PRAGMA schema_version when every table was armed, else -1 */
	/* the partition this device may write (scope.c), when it may not write all */
	bool wscoped;
	char wscope[ZILA_PART_MAX + 1];
	struct ckpt *ckpt;  /* the checkpoint thread (checkpoint.c), started on first need */
	bool ckpt_failed;   /* it could not start: the writer checkpoints */
	bool nosync;        /* a merge is committing with synchronous OFF */
	int64_t held_max, held_max_bytes; /* zila_store_set_held_limit(); 0: the defaults */
	/* Refusals logged lately (refuse.c): the same refusal is logged once per
	 * REFUSAL_LOG_MS, with a count of the times it was met meanwhile. */
	struct refusal_logged {
		uint8_t key[16];
		uint64_t at_ms;
		uint64_t again;
	} refusals_logged[32];
	/* schema.c: PRAGMA schema_version when the tables' cache was last read (-1: unknown);
	 * whether the open transaction changed the schema (a rollback reloads the cache); why
	 * HQ's next schema version cannot be applied here ("" when nothing waits for that) */
	int64_t schema_cookie;
	bool schema_txn;
	/* the tables' cache could not be read whole, or lacks a table a capture names: the
	 * next seal reads it again before it seals anything (schema.c, seal.c) */
	bool tables_stale;
	bool seal_unknown; /* the last seal failed on a capture of a table the cache lacked */
	char schema_blocked[600];
	/* a schema entry came that ranks before one taken (another HQ device's), or one taken
	 * was cut: the schema is made again in canonical order at the end of the apply */
	bool schema_redo;
};

/* --- refuse.c --- */
/* Records that the entry described by info was not taken (code, reason in plain words) in
 * st for its sender, and logs it: once per feed and apply, and the same refusal at most once
 * per 10 minutes. A gap (ZILA_EGAP) only counts behind a refusal of its feed, or is noted
 * when it is the first of its feed, and is logged at INFO. */
void store_refusal(struct zila_store *s, struct zila_apply_stats *st, const struct zila_entry_info *info, int code,
		   const char *reason);

/* --- checkpoint.c --- */
/* Installs the WAL hook that hands checkpoints to a thread of the store. */
void store_checkpoint_init(struct zila_store *s);
/* Waits for a running checkpoint and ends the thread; before the connection closes. */
void store_checkpoint_stop(struct zila_store *s);

/* --- open.c --- */
int store_exec(struct zila_store *s, const char *sql, struct zila_error *err) ZILA_MUST_CHECK;
/* A replica made before attachments (#25) with the default schema gets its `attachments`
 * table, tracked, the first time it is opened (blob.c); others are left as they are. */
int store_blob_upgrade(struct zila_store *s, struct zila_error *err) ZILA_MUST_CHECK;
/* One statement of constant SQL text, prepared once per opened store and kept (a prepare
 * parses the text: more than a small statement's run). The caller binds, steps and resets
 * it, never finalizes it. NULL when it cannot be prepared. */
sqlite3_stmt *store_stmt(struct zila_store *s, const char *sql);
int store_db_error(struct zila_store *s, struct zila_error *err, const char *what);
/* The zila code for the connection's last SQLite error: ZILA_EBUSY, ZILA_EFULL, ZILA_ENOMEM, ZILA_EDB. */
int store_db_code(struct zila_store *s);
/* Steps st (NULL: it could not be prepared) and calls row for each result row until row
 * returns non-zero; then finalizes st. Returns row's non-zero return, the store's code for
 * a failed step, or 0. */
int store_walk(struct zila_store *s, sqlite3_stmt *st, int (*row)(void *ctx, sqlite3_stmt *st), void *ctx) ZILA_MUST_CHECK;
int store_begin(struct zila_store *s, struct zila_error *err) ZILA_MUST_CHECK;
void store_rollback(struct zila_store *s);
/* Bookkeeping the daemon writes at every handshake and session (the peer table, notes in
 * zila_meta) commits without fsyncs, as merges do (apply.c): an fsync on the daemon's loop
 * held every connection up by 1-40 ms, three times a session. A power cut may take such a
 * note back; the next commit with fsyncs (every seal) or checkpoint makes it durable, as
 * the WAL is written in order. store_lazy_begin switches fsyncs off unless a transaction is
 * open or they are off already, and says whether it did; store_lazy_end(s, that) switches
 * them back on. */
bool store_lazy_begin(struct zila_store *s);
void store_lazy_end(struct zila_store *s, bool on);
int store_commit(struct zila_store *s, struct zila_error *err) ZILA_MUST_CHECK;
uint64_t store_now_ms(struct zila_store *s);
int store_origin_id(struct zila_store *s, const uint8_t key[32], int64_t *out) ZILA_MUST_CHECK;
const uint8_t *store_origin_key(struct zila_store *s, int64_t id);
int store_save_hlc(struct zila_store *s) ZILA_MUST_CHECK;

/* --- tables.c --- */
int store_load_tables(struct zila_store *s, struct zila_error *err) ZILA_MUST_CHECK;
/* Format 1 to 2, in the caller's transaction: shown rows' states to zila_live, and delete
 * captures that record the rowid. */
int store_migrate_live(struct zila_store *s, struct zila_error *err) ZILA_MUST_CHECK;
/* Format 2 to 3, in the caller's transaction: rowid tables lose their insert trigger and
 * get a high-water rowid. */
int store_migrate_hw(struct zila_store *s, struct zila_error *err) ZILA_MUST_CHECK;
/* (Re)creates the capture triggers of every tracked table (tables.c, arm_sql), or of t. */
int store_arm_all(struct zila_store *s, struct zila_error *err) ZILA_MUST_CHECK;
int store_arm_table(struct zila_store *s, const struct table *t, struct zila_error *err) ZILA_MUST_CHECK;
/* In the caller's transaction: the part of zila_store_track() that writes (zila_tables
 * with the table's synced columns, capture triggers); the caller reloads the cache. */
int store_track_locked(struct zila_store *s, const char *table, const char *pcol, struct zila_error *err) ZILA_MUST_CHECK;
int store_track_many(struct zila_store *s, char *const *tables, const char *const *pcols, int n,
		     struct zila_error *err) ZILA_MUST_CHECK;
/* Adds col to the synced columns of the tracked table (zila_tables.cols). */
int store_cols_add(struct zila_store *s, const char *table, const char *col) ZILA_MUST_CHECK;
/* Removes col from the synced columns of the tracked table. */
int store_cols_drop(struct zila_store *s, const char *table, const char *col) ZILA_MUST_CHECK;
/* Stops tracking table (its zila_tables row and what zila keeps of its rows); the caller
 * drops or rebuilds the table itself. */
int store_untrack_locked(struct zila_store *s, const char *table) ZILA_MUST_CHECK;
/* Format 7 to 8, in the caller's transaction: each tracked table's columns as synced. */
int store_migrate_cols(struct zila_store *s, struct zila_error *err) ZILA_MUST_CHECK;

/* --- schema.c --- */
struct entry;
/* Reloads the tables' cache and the schema version, keeping what the cache knows of the
 * open transaction (touched tables, marks, counts). */
int store_schema_reload(struct zila_store *s, struct zila_error *err) ZILA_MUST_CHECK;
/* Outside a transaction: reloads the cache when another program changed the schema. */
int store_schema_follow(struct zila_store *s, struct zila_error *err) ZILA_MUST_CHECK;
/* After a rollback: the cache as committed, if the transaction changed the schema. */
void store_schema_rolled_back(struct zila_store *s);
/* Whether an entry body is a schema entry's (it names only ZILA_SCHEMA_TABLE). */
bool store_schema_entry(struct zila_view body);
/* Applies a schema entry in the caller's transaction: 0 (applied, or applied before),
 * ZILA_ESCHEMA (it waits: an earlier version is missing, or it cannot be applied here,
 * s->schema_blocked says why), ZILA_EFORMAT / ZILA_ESCOPE (malformed, not org-wide). */
int store_schema_apply(struct zila_store *s, struct entry *e) ZILA_MUST_CHECK;
/* Makes the organisation's schema again from the schema entries held, in canonical order
 * (version, then author's key): undoes those taken past the first that ranks otherwise
 * (or whose entry was cut), takes the rest in order, then makes every tracked table's
 * rows again from the entries (store_reapply). In the caller's transaction. */
int store_schema_redo(struct zila_store *s, struct zila_apply_stats *st) ZILA_MUST_CHECK;
/* s->schema_blocked as the replica keeps it (zila_meta), so another process says it too. */
void store_schema_load_blocked(struct zila_store *s);
int store_schema_save_blocked(struct zila_store *s) ZILA_MUST_CHECK;
/* zila_store_notices(): local tables and columns, a schema version that cannot be applied. */
int store_schema_notices(struct zila_store *s, zila_notice_fn fn, void *ctx) ZILA_MUST_CHECK;

/* --- scope.c --- */
/* Appends to q the write-scope triggers of t (their names start with tname), after
 * dropping those it had: none when the device may write everything. */
int store_scope_sql(struct zila_store *s, struct zila_buf *q, const char *tname, const struct table *t) ZILA_MUST_CHECK;
/* Reads the write scope from zila_meta. */
void store_scope_load(struct zila_store *s);
/* Whether the triggers refuse writes for another scope than the device's. */
bool store_scope_stale(struct zila_store *s);
/* Arms every table's triggers for the device's scope, in the caller's transaction; or, in
 * a transaction of its own, when they are stale and no transaction is open. */
int store_scope_arm(struct zila_store *s, struct zila_error *err) ZILA_MUST_CHECK;
int store_scope_refresh(struct zila_store *s, struct zila_error *err) ZILA_MUST_CHECK;
/* Sets t->unarmed on every tracked table that is there but lacks its capture triggers, and
 * counts them in *n: a read of sqlite_schema. */
int store_armed_check(struct zila_store *s, int *n) ZILA_MUST_CHECK;
/* In a write transaction: marks the rowid tables with nothing to seal past or below
 * their high-water rowids clean (seal.c), so rows zila writes there are not sealed. */
int store_hw_check(struct zila_store *s) ZILA_MUST_CHECK;
/* Before a commit: every rowid table's high-water mark follows its rows (struct table). */
int store_hw_commit(struct zila_store *s) ZILA_MUST_CHECK;
void store_free_tables(struct zila_store *s);
struct table *store_table_by_name(struct zila_store *s, const char *name, size_t len);
struct table *store_table_by_id(struct zila_store *s, int64_t id);
/* Appends `SELECT "c1", ... FROM "t"` (every column, in table order, quoted). */
int store_sql_select_all(struct zila_buf *q, const struct table *t) ZILA_MUST_CHECK;

/* Copies a partition name into a ZILA_PART_MAX + 1 buffer (snprintf's formatting was a
 * few percent of sealing). */
static inline void part_copy(char *dst, const char *src)
{
	size_t n = strnlen(src, ZILA_PART_MAX);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* --- codec.c --- */
int val_put(struct zila_buf *b, const struct zval *v) ZILA_MUST_CHECK;
int val_get(struct zila_view *in, struct zval *v) ZILA_MUST_CHECK;
void val_from_column(struct zval *v, sqlite3_stmt *st, int col);
/* A column's default (struct table, dflt) as a value: NULL when it has none. */
void val_default(struct zval *v, const struct table *t, int col);
int val_bind(sqlite3_stmt *st, int idx, const struct zval *v);
/* The key a received change names, as the table's key column compares it: the column's
 * affinity applied (the INTEGER 1001 is the TEXT '1001' in a TEXT column), and under a
 * collation other than BINARY, the spelling of the row the table or zila_rows already
 * holds under it. pk may then point into buf[0] or buf[1], which stay the caller's. */
int key_canon(struct zila_store *s, struct table *t, struct zval *pk, struct zila_buf buf[2]) ZILA_MUST_CHECK;
/* v as column col of t would hold it (SQLite's type affinity: the INTEGER 3 is the TEXT
 * '3' in a TEXT column, the TEXT '3' the INTEGER 3 in an INTEGER one, ...), so that a row
 * kept out of the table (parked, deleted) has the values it has where the table shows it.
 * v may then point into buf, which stays the caller's. */
int val_affine(struct zila_store *s, const struct table *t, int col, struct zval *v, struct zila_buf *buf) ZILA_MUST_CHECK;
bool val_equal(const struct zval *a, const struct zval *b);
int ver_cmp(struct zila_store *s, const struct ver *a, const struct ver *b);

/* The merge state of one row: registers, and its values when loaded.
 *
 * Where a state lives: a row a rowid table shows has its state in zila_live at the row's
 * rowid, so that rows written together share pages there as they do in the table. Every
 * other state (a deleted or parked row, any row of a WITHOUT ROWID table) is in zila_rows
 * by key. A zila_live record names its key, and a record whose key is not the row's at
 * that rowid (a row replaced by INSERT OR REPLACE, a rowid reused) is never taken for the
 * row's: it is moved to zila_rows when its slot is needed. */
struct rowstate {
	bool known;     /* a state was found */
	bool in_live;   /* ...in zila_live at live_rid */
	bool in_rows;   /* ...in zila_rows */
	bool has_rid;   /* the table holds the row at rid */
	int64_t live_rid, rid;
	bool exists;    /* existence register */
	int parked;     /* PARK_* */
	struct ver ever;
	char part[ZILA_PART_MAX + 1]; /* the partition the row belongs to ("" org-wide) */
	struct ver *cver;  /* [ncols] */
	struct zval *vals; /* [ncols], bytes owned by arena */
	struct zila_buf arena;
	int ncols;
	/* Set by a merge (apply.c) on a row it loaded from the table: which columns' values it
	 * changed since (DIRTY_BIT), so the table's row is written with only those. Cleared
	 * by every load; only a caller that marks every change it makes sets `track`. */
	bool track;
	uint64_t dirty;
};
enum { PARK_NONE = 0, PARK_DUP = ZILA_PARK_DUP, PARK_ORPHAN = ZILA_PARK_ORPHAN, PARK_INVALID = ZILA_PARK_INVALID };
#define ROW_VISIBLE(r) ((r)->known && (r)->exists && (r)->parked == PARK_NONE)

void row_init(struct rowstate *r, int ncols);
void row_release(struct rowstate *r);
void row_reset(struct rowstate *r);
/* Loads registers and, when load_vals, values: from the table for a row it shows, else
 * from the image zila_rows keeps. The table is asked for the row's rowid first. */
int row_load(struct zila_store *s, struct table *t, const struct zval *pk, struct rowstate *r,
	     bool load_vals) ZILA_MUST_CHECK;
/* row_load() of registers only, without asking the table: the caller knows the rowid the
 * table holds the row at (at), or where its state may be (hint: a deleted row's rowid). */
int row_load_at(struct zila_store *s, struct table *t, const struct zval *pk, struct rowstate *r,
		const int64_t *at, const int64_t *hint) ZILA_MUST_CHECK;
/* Asks the table for the row's rowid (r->has_rid, r->rid). */
int row_locate(struct table *t, const struct zval *pk, struct rowstate *r) ZILA_MUST_CHECK;
/* The UPDATE of t that sets the columns of mask (DIRTY_BIT; neither the key nor DIRTY_MORE)
 * for the row at a rowid and key (t->has_rowid): prepared on first use, kept by t; NULL
 * when it cannot be prepared (the caller writes every column then). */
sqlite3_stmt *store_table_upd(struct zila_store *s, struct table *t, uint64_t mask);
/* Saves r where it belongs (above) and removes the copy it was loaded from. */
int row_save(struct zila_store *s, struct table *t, const struct zval *pk, struct rowstate *r) ZILA_MUST_CHECK;
/* row_save() of a row the table shows at rid, for a key no state is known of: ZILA_EEXIST
 * (nothing written) when zila_rows has the key or zila_live the rowid. */
int row_save_new_at(struct zila_store *s, struct table *t, const struct zval *pk, int64_t rid,
		    struct rowstate *r) ZILA_MUST_CHECK;


/* --- entry.c --- */
struct entry_dep {
	uint8_t origin[32];
	uint64_t seq;
};
struct entry {
	struct zila_entry_info info;
	struct entry_dep *deps;
	size_t ndeps;
	struct zila_view body;   /* the plain body once inflated (entry_parse, entry_inflate) */
	struct zila_view stored; /* the body as the entry holds it */
	bool packed;             /* stored is a zstd frame */
	uint8_t version;         /* 1, or ZILA_ENTRY_VERSION */
	size_t head_len;         /* bytes before the codec byte */
	uint8_t *plain;          /* owned: the decompressed body */
};
/* Parses, verifies (check_sig) and inflates an entry; e borrows from bytes. */
int entry_parse(struct zila_view bytes, struct entry *e, bool check_sig) ZILA_MUST_CHECK;
/* The same without inflating the body, so that many entries can wait in little memory;
 * entry_inflate() decompresses it (with dc when not NULL) and counts its changes, and
 * entry_deflate() frees the plain body again. */
int entry_parse_head(struct zila_view bytes, struct entry *e, bool check_sig) ZILA_MUST_CHECK;
/* The author's signature over an entry entry_parse_head read without checking it: 0 or ZILA_ESIG
 * (a version 2 entry with a compressed body is inflated for the check, with dc when not NULL). */
int entry_verify_sig(struct zila_view bytes, const struct entry *e, ZSTD_DCtx *dc) ZILA_MUST_CHECK;
/* Version 2 signatures (proto/ENTRY.md): over the head (head_len bytes before the codec byte)
 * and the BLAKE2b-256 of the plain body. 0, ZILA_ESIG or ZILA_ENOMEM. */
int entry_sign(const uint8_t *head, size_t head_len, struct zila_view plain, const uint8_t *sk, uint8_t sig[64])
	ZILA_MUST_CHECK;
int entry_sign_check(const uint8_t *head, size_t head_len, struct zila_view plain, const uint8_t sig[64],
		     const uint8_t origin[32]) ZILA_MUST_CHECK;
int entry_inflate(struct entry *e, ZSTD_DCtx *dc) ZILA_MUST_CHECK;
void entry_deflate(struct entry *e);
void entry_release(struct entry *e);

/* --- apply.c --- */
/* zila_store_apply(), optionally trusting signatures the caller has just verified. */
int store_apply(struct zila_store *s, const struct zila_view *entries, size_t n, bool check_sigs,
		struct zila_apply_stats *st, struct zila_error *err) ZILA_MUST_CHECK;

/* In a write transaction: the tracked tables and their row states made again from the
 * entries held, in (HLC, origin, partition, sequence) order, as a replica that cloned
 * exactly those entries has them (cut.c). Conflicts are not recorded again. */
int store_reapply(struct zila_store *s, struct zila_apply_stats *st) ZILA_MUST_CHECK;

/* --- vector.c --- */
/* Sorts v's heads by origin, then partition (zila_vector_get's order). */
void store_vector_sort(struct zila_vector *v);

/* --- partckpt.c --- */
/* In a write transaction: the rows of every checkpoint kept merged again (store_reapply
 * starts from them: the history they stand for may not be held here). */
int store_checkpoints_remerge(struct zila_store *s, struct zila_apply_stats *st) ZILA_MUST_CHECK;
/* A revocation's cut (cut.c): every checkpoint kept whose head of a feed of one of the
 * norigins authors keep refuses (it holds writes past the mark) is dropped, so the rows are
 * made again without it; *ndropped counts them. In the caller's transaction. */
int store_checkpoints_cut(struct zila_store *s, const uint8_t (*origins)[32], size_t norigins, zila_entry_keep_fn keep,
			  void *ctx, size_t *ndropped) ZILA_MUST_CHECK;

/* --- materialize.c --- */
/* Makes the user table show what r says (insert, update, delete, park), then records r. */
int row_materialize(struct zila_store *s, struct table *t, const struct zval *pk,
		    struct rowstate *r, bool was_visible, struct zila_apply_stats *st) ZILA_MUST_CHECK;
/* Re-examines parked rows and foreign keys of touched tables until nothing changes. */
int store_settle(struct zila_store *s, struct zila_apply_stats *st) ZILA_MUST_CHECK;

int row_park(struct zila_store *s, struct table *t, const struct zval *pk, struct rowstate *r,
	     int kind, struct zila_apply_stats *st) ZILA_MUST_CHECK;
/* Parks the visible rows that reference the row (pk, vals) of t through a foreign key. */
int park_children(struct zila_store *s, struct table *t, const struct zval *vals,
		  struct zila_apply_stats *st, int depth) ZILA_MUST_CHECK;
/* 1 when every single-column foreign key of the row finds its parent, 0 when not. */
int row_fk_ok(struct zila_store *s, struct table *t, const struct zval *vals);

/* --- seal.c --- */
/* The feed's id (made when new), head, and the date of its head entry when this replica
 * took that entry from another (head_hlc may be NULL; 0: not known). */
int store_feed_get(struct zila_store *s, int64_t origin, const char *part, int64_t *id,
		   uint64_t *head, uint64_t *head_hlc) ZILA_MUST_CHECK;
int store_seal_locked(struct zila_store *s, size_t *nentries, struct zila_error *err) ZILA_MUST_CHECK;
/* In a write transaction: deletes the row pk of t (visible or parked) as a local change,
 * sealed by the next seal. */
int store_delete_captured(struct zila_store *s, struct table *t, const struct zval *pk) ZILA_MUST_CHECK;
/* Seals at most max_batches batches; *more says whether captured changes remain. With
 * swept, once nothing remains, also the rows no capture or mark finds (zila_store_sweep);
 * their number is added to *swept. */
int store_seal_some(struct zila_store *s, size_t *nentries, size_t max_batches, bool *more, size_t *swept,
		    struct zila_error *err) ZILA_MUST_CHECK;
uint64_t store_hlc_tick(struct zila_store *s);

/* --- clock.c --- */
/* Loads the reference clock's state from zila_meta. */
/* review.c: open conflicts on a cell a causal write overwrote are settled (upto: its version) */
int store_conflicts_settle(struct zila_store *s, const struct table *t, const struct zval *pk, int col, uint64_t upto);

/* origins.c: the authors' keys by id, read into memory at open and after a rollback */
int store_load_origins(struct zila_store *s);
/* meta.c: an integer setting, dflt when unset or not a number */
int64_t store_meta_int(struct zila_store *s, const char *key, int64_t dflt);

/* fork.c: feed chains and forks */
int store_chain_register(sqlite3 *db);
/* The feed's head moves to seq, its chain over bytes (the entry stored under seq). An entry
 * taken from another replica also records its date hlc and when it was taken (seen,
 * seconds: zila_feeds.head_hlc, .seen); the seal's own entries pass 0 for both. */
int store_feed_advance(struct zila_store *s, int64_t feed, uint64_t seq, struct zila_view bytes, uint64_t hlc,
		       uint64_t seen);
int store_migrate_chains(struct zila_store *s, struct zila_error *err);
bool store_is_forked(struct zila_store *s, const uint8_t origin[32]);
void store_clock_load(struct zila_store *s);
/* The time entries written now are dated by (ms): zila_clock.stamp_ms. */
uint64_t store_stamp_ms(struct zila_store *s);
/* The same for a change made when this computer's clock (store_now_ms) said wall_then:
 * mapped to HQ's time as known now, in the same bounds, never past now. */
uint64_t store_stamp_at(struct zila_store *s, uint64_t wall_then);

/* --- collect.c --- */
/* At HQ, notes the feed heads of a checkpoint it keeps (for acknowledgements). */
int store_ckpt_heads_note(struct zila_store *s, const char *part, uint64_t hlc, struct zila_view bytes) ZILA_MUST_CHECK;
/* The collected mark of part (zila_meta "collected.PART"): an HLC at or past every version
 * of a row of part this replica dropped, or skipped taking (a checkpoint's feed heads past
 * its own), so may not hold; 0: none. The seal dates every entry of part past it (seal.c),
 * so that a key inserted again wins over a delete this replica no longer holds. note raises
 * it to hlc (never lowers it), in the caller's transaction. */
uint64_t store_collected_mark(struct zila_store *s, const char *part);
int store_collected_note(struct zila_store *s, const char *part, uint64_t hlc) ZILA_MUST_CHECK;
/* The deleted rows a checkpoint being merged carries (temp.zila_ck_seen): reset, add one. */
int store_ckpt_seen_reset(struct zila_store *s) ZILA_MUST_CHECK;
int store_ckpt_seen(struct zila_store *s, sqlite3_stmt **st, int64_t tid, const struct zval *pk) ZILA_MUST_CHECK;
/* After merging checkpoint bytes of part: drops the deleted rows of tables tids it covers
 * and does not carry (its maker collected them), and (shown: this replica was behind it)
 * the rows shown here it covers and does not carry (deleted there, then collected); *ndropped
 * counts them. */
int store_ckpt_absent_drop(struct zila_store *s, const char *part, struct zila_view bytes, const int64_t *tids,
			   size_t ntids, bool shown, struct zila_apply_stats *st, size_t *ndropped) ZILA_MUST_CHECK;

#endif
