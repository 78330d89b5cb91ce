/* The replica: tracked tables, change capture, sealing local changes into signed feed
 * entries, applying remote entries (deterministic merge), conflicts, content hash and
 * USB bundles. Only SQLite and libsodium below it. */
#ifndef ZILA_STORE_H
#define ZILA_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "zila/buf.h"
#include "zila/clock.h"
#include "zila/err.h"

#define ZILA_VERSION "0.1.0"
#define ZILA_DB_FILE "zila.db"
#define ZILA_KEY_FILE "device.key"
#define ZILA_PART_MAX 64          /* bytes in a partition name */
#define ZILA_ENTRY_MAX (900 * 1024) /* an entry's encoded size, so it fits one frame */
#define ZILA_ENTRY_VERSION 2 /* the entry format the seal writes (version 1 is still read) */
#define ZILA_ORG_PARTITION ""     /* the org-wide partition's name */

struct zila_store;

/* --- opening ---------------------------------------------------------------------- */

/* Creates dir (mode 0700) if needed, dir/zila.db (WAL) with the zila metadata tables,
 * the default schema (proto/schema/default.sql, compiled in) tracked, and a new device
 * key pair in dir/device.key (mode 0600). Fails with ZILA_EEXIST if a replica is there. */
int zila_store_create(const char *dir, struct zila_error *err) ZILA_MUST_CHECK;

/* Opens the replica in dir. *out is owned by the caller: zila_store_free(). */
int zila_store_open(struct zila_store **out, const char *dir, struct zila_error *err) ZILA_MUST_CHECK;
void zila_store_free(struct zila_store *s);

/* Whether a transaction is open on the store's own connection; none is between calls. */
bool zila_store_in_transaction(struct zila_store *s);
/* Called when another program's write lock holds the replica, as sqlite3_busy_handler's
 * handler: n counts the calls for this lock; non-zero means wait and try again. NULL gives
 * back the store's own wait (up to 10 s). */
typedef int (*zila_busy_fn)(void *ctx, int n);
void zila_store_set_busy(struct zila_store *s, zila_busy_fn fn, void *ctx);
/* A read snapshot: everything read between begin and end sees one consistent state of the
 * replica (writers elsewhere go on). ZILA_EDB when one cannot be opened. */
int zila_store_snapshot_begin(struct zila_store *s) ZILA_MUST_CHECK;
void zila_store_snapshot_end(struct zila_store *s);
const char *zila_store_dir(const struct zila_store *s);
/* This device's Ed25519 public key (32 bytes) and secret key (64 bytes, in guarded memory
 * that lives as long as the store). */
const uint8_t *zila_store_device_pk(const struct zila_store *s);
const uint8_t *zila_store_device_sk(const struct zila_store *s);

/* Runs SQL as an application would: triggers fire, changes are captured for sealing.
 * Each result row is passed to cb (may be NULL) as with sqlite3_exec. */
int zila_store_exec_captured(struct zila_store *s, const char *sql,
			     int (*cb)(void *, int, char **, char **), void *ctx,
			     struct zila_error *err) ZILA_MUST_CHECK;

/* Key/value settings in zila_meta. get returns ZILA_ENOTFOUND when unset; *out is
 * malloc'd and owned by the caller. */
int zila_store_meta_get(struct zila_store *s, const char *key, char **out) ZILA_MUST_CHECK;
int zila_store_meta_set(struct zila_store *s, const char *key, const char *value) ZILA_MUST_CHECK;
/* zila_store_meta_set committed without an fsync: for notes a daemon writes at every
 * session, which must not hold its loop up (#20). A power cut may take the note back; the
 * next seal or checkpoint makes it durable. */
int zila_store_meta_note(struct zila_store *s, const char *key, const char *value) ZILA_MUST_CHECK;
/* Removes the settings named in keys (nkeys of them) in one transaction; unset ones are
 * no error. */
int zila_store_meta_del(struct zila_store *s, const char *const *keys, size_t nkeys) ZILA_MUST_CHECK;
/* zila_meta: "MS TABLE", the last tracked table whose change capture was found lost (another
 * program rebuilt the table) and armed again, and when (ms since 1970). */
#define ZILA_META_REARMED "capture.rearmed"

/* The partition this device may write (its certificate's district), or NULL or "" for every
 * partition (HQ). A district laptop's triggers then refuse, when it is made, a write of a
 * row of another district or of an org-wide table, with a message that names the district
 * or table and who may write it (scope.c). Returns 0 or a negative code. */
int zila_store_set_write_scope(struct zila_store *s, const char *part) ZILA_MUST_CHECK;
/* The name of district part in the default schema's catalogue (its districts table), or ""
 * when it has none there; at most n - 1 bytes. For people, who read names, not ids. */
void zila_store_district_name(struct zila_store *s, const char *part, char *name, size_t n);
/* The partition set so, "" for all; valid until the next set or the store is freed. */
const char *zila_store_write_scope(const struct zila_store *s);
/* Calls fn with each thing a person should know about what this replica captured, in plain
 * words: a table whose capture was lost and armed again (in the last 7 days), and rows or
 * changes made here outside the device's write scope, which are not sent, with what to do. */
typedef void (*zila_notice_fn)(void *ctx, const char *msg);
int zila_store_notices(struct zila_store *s, zila_notice_fn fn, void *ctx) ZILA_MUST_CHECK;

/* --- tracking --------------------------------------------------------------------- */

/* Makes table synced: installs capture triggers and captures its existing rows (in a
 * rowid table, as rows past its high-water rowid, which starts at 0). pcol
 * names the partition column, or NULL for an org-wide table. Refuses tables that cannot
 * converge (ZILA_EUNTRACKABLE, with the reason and the fix in err). */
int zila_store_track(struct zila_store *s, const char *table, const char *pcol,
		     struct zila_error *err) ZILA_MUST_CHECK;

/* --- sealing and clocks ----------------------------------------------------------- */

/* Seals every captured local change into signed entries of this device's feeds (one
 * entry per partition per batch): updates and deletes the triggers recorded, rows
 * inserted into a rowid table past its high-water rowid, and rows inserted where a delete
 * freed a rowid. Idempotent and crash-safe: a change is sealed exactly once. *nentries
 * (may be NULL) gets the number of entries written. With nothing captured it returns at
 * once without taking the write lock. */
int zila_store_seal(struct zila_store *s, size_t *nentries, struct zila_error *err) ZILA_MUST_CHECK;
/* zila_store_seal, then every row of every rowid table compared with its state: finds the
 * rows a writer inserted at a rowid of its own choosing below the high-water rowid where
 * no delete freed it (such as rowid 0), which only this finds, and seals them. O(rows):
 * 'zila seal' and the daemon (at start and hourly) run it. *nrows (may be NULL) gets the
 * number of such rows. */
int zila_store_sweep(struct zila_store *s, size_t *nentries, size_t *nrows, struct zila_error *err) ZILA_MUST_CHECK;
/* The number of captured changes not yet sealed (rows past the high-water rowids
 * included). */
int zila_store_pending(struct zila_store *s, int64_t *out) ZILA_MUST_CHECK;

/* Hybrid logical clock: 48 bits of milliseconds since 1970, 16 bits of counter. */
uint64_t zila_hlc_ms(uint64_t hlc);
/* The wall clock the store uses; tests may replace it (returns ms since 1970). */
typedef uint64_t (*zila_clock_fn)(void *ctx);
void zila_store_set_clock(struct zila_store *s, zila_clock_fn fn, void *ctx);
/* How much time really passed, whatever the wall clock did (zila_uptime()); tests may
 * replace it. Returns false when it cannot tell. */
typedef bool (*zila_uptime_fn)(void *ctx, struct zila_uptime *out);
void zila_store_set_uptime(struct zila_store *s, zila_uptime_fn fn, void *ctx);

/* The reference clock (proto/PROTOCOL.md, "Clocks"). HQ's clock is the organisation's time.
 * A replica dates what it writes by its best estimate of HQ's time, kept between the last
 * HQ time it learnt and that time plus ZILA_CLOCK_LEAD_MS: a clock years ahead cannot date
 * an edit more than the lead past a time HQ had reached, a clock behind dates edits no
 * earlier than that time. */
#define ZILA_CLOCK_LEAD_MS (2ull * 24 * 3600 * 1000)
#define ZILA_CLOCK_WARN_MS (10ull * 60 * 1000) /* a clock this far from HQ's is called wrong */
/* How far an entry may be dated before its feed's previous entry, and an entry of a
 * lapsed certificate before this replica last took an entry of its feed (proto/TRUST.md,
 * "Admitting an entry"). */
#define ZILA_BACKDATE_MS (24ull * 3600 * 1000)
/* When this replica last took an entry of the feed (origin, part) from another, in
 * seconds by its clock; 0 when it never did. 0, or a negative code. */
int zila_store_feed_seen(struct zila_store *s, const uint8_t origin[32], const char *part,
			 uint64_t *seen) ZILA_MUST_CHECK;
enum zila_clock_state {
	ZILA_CLOCK_OK,     /* HQ itself, or close to HQ's time as last learnt */
	ZILA_CLOCK_NONE,   /* no organisation: nothing to compare with */
	ZILA_CLOCK_AHEAD,  /* ahead of HQ's clock by more than ZILA_CLOCK_WARN_MS */
	ZILA_CLOCK_BEHIND, /* behind HQ's clock, or before a time HQ had already reached */
	ZILA_CLOCK_STALE,  /* past the lead: out of touch that long, or the clock is ahead */
};
struct zila_clock {
	uint64_t wall_ms;  /* this computer's clock */
	uint64_t stamp_ms; /* the time what is written now is dated by */
	uint64_t hq_est_ms; /* HQ's clock as best estimated: wall_ms moved by the offset, if known */
	uint64_t seen_ms;  /* the latest HQ time known to have passed, by anyone's word; 0: none */
	uint64_t hq_seen_ms; /* the same by HQ's word alone (its Hello, its entries, its certificate) */
	uint64_t heard_ms; /* what another laptop said of it (bounded; gone at contact with HQ) */
	int64_t offset_ms; /* HQ's clock minus this computer's, when has_offset */
	bool is_reference; /* this replica is HQ: its clock is the reference */
	bool has_offset;
	enum zila_clock_state state;
};
void zila_store_clock(struct zila_store *s, struct zila_clock *out);
/* Makes this replica's own clock the organisation's reference (at HQ's org init). */
int zila_store_clock_reference(struct zila_store *s) ZILA_MUST_CHECK;
/* Learns HQ's time: seen_ms is an HQ time known to have passed (0: none), and when
 * has_offset, offset_ms is HQ's clock minus this computer's, measured just now. Kept in
 * the replica when it moves by more than a little. Ignored at HQ. What is learnt is used
 * at once even when writing it down fails (the code says why: ZILA_EFULL, ZILA_EBUSY, ...);
 * the next call writes it. */
int zila_store_clock_learn(struct zila_store *s, uint64_t seen_ms, bool has_offset, int64_t offset_ms) ZILA_MUST_CHECK;
/* Hearsay: another laptop says HQ's time seen_ms has passed. Believed at most
 * ZILA_CLOCK_LEAD_MS past this replica's own estimate of HQ's clock, kept apart from HQ's
 * word, and forgotten when HQ next tells its clock (zila_store_clock_learn with an offset):
 * a laptop that lies about HQ's time moves another's dates by the lead at most, and only
 * until that one reaches HQ. */
int zila_store_clock_hear(struct zila_store *s, uint64_t seen_ms) ZILA_MUST_CHECK;
/* What to tell the user about c in plain words; "" when the clock is fine. */
void zila_clock_describe(const struct zila_clock *c, char *buf, size_t n);

/* --- entries ---------------------------------------------------------------------- */

struct zila_entry_info {
	uint8_t origin[32];             /* author's Ed25519 public key */
	char part[ZILA_PART_MAX + 1];   /* partition, NUL-terminated */
	uint64_t seq;                   /* 1, 2, 3, ... within (origin, part) */
	uint64_t hlc;
	uint32_t schema;
	size_t nchanges;
};

/* Parses an entry's header and checks its signature (ZILA_ESIG) and layout; the body is
 * checked when applied. */
int zila_entry_verify(struct zila_view bytes, struct zila_entry_info *out) ZILA_MUST_CHECK;

/* The wire form of entries (proto/PROTOCOL.md, "Packed chunks"). A version 2 entry travels
 * with its plain body in column form (the values of each column together, hex text as its
 * bytes), for the session's compression; older entries travel as stored. A coder holds the
 * (de)compression contexts and scratch space; one per session direction, not shared. */
struct zila_entry_coder;
int zila_entry_coder_new(struct zila_entry_coder **out) ZILA_MUST_CHECK;
void zila_entry_coder_free(struct zila_entry_coder *c);
/* Bytes the coder holds: its zstd contexts and buffers (0 for NULL). */
size_t zila_entry_coder_bytes(const struct zila_entry_coder *c);
/* Appends the entry (as stored) to out in wire form. 0, or ZILA_ETOOBIG/ZILA_ENOMEM. */
int zila_entry_to_wire(struct zila_entry_coder *c, struct zila_view entry, struct zila_buf *out) ZILA_MUST_CHECK;
/* Reads one entry in wire form from the front of *in and appends it to out as it is stored
 * (its body compressed as the seal compresses). Nothing is verified here (the apply checks
 * the result like any received entry), except an entry with a key sent by reference, whose
 * signature is checked once the keys are found. ZILA_EFORMAT when the input is not an entry;
 * ZILA_EREF when a key sent by reference is not held by the resolving replica (or is held
 * twice, or the entry it gives does not verify). */
int zila_entry_from_wire(struct zila_entry_coder *c, struct zila_view *in, struct zila_buf *out) ZILA_MUST_CHECK;
/* plain: from_wire leaves each body uncompressed (body flag 0), an entry as valid as the
 * compressed one since both are signed over the plain body; for a reader that verifies
 * entries and drops them (a bundle's first pass), which would otherwise compress each body
 * only to decompress it again. The default (false) stores bodies as the seal does. */
void zila_entry_coder_plain(struct zila_entry_coder *c, bool plain);
/* Keys by reference (PROTOCOL.md, "Packed chunks", tag 6), for a session whose peer said
 * it takes them. send: the key (hex of 16 bytes or more) of an UPDATE or DELETE goes as its
 * first ZILA_WIRE_REF_LEN bytes, unless an entry this coder carried before upserted a key
 * that may be it (so the peer held the row before the session). resolve: the replica in
 * which from_wire looks keys sent by reference up (borrowed for the coder's life; NULL: a
 * key by reference is malformed). */
#define ZILA_WIRE_REF_LEN 6
int zila_entry_coder_refs(struct zila_entry_coder *c, bool send, struct zila_store *resolve) ZILA_MUST_CHECK;

/* A version vector: per feed, the highest contiguous sequence number held. */
#define ZILA_CHAIN_LEN 16 /* a feed's chain hash: BLAKE2b-128 over its entries to the head */
struct zila_feed_head {
	uint8_t origin[32];
	char part[ZILA_PART_MAX + 1];
	uint64_t seq;
	uint8_t chain[ZILA_CHAIN_LEN]; /* chain(seq) (src/store/fork.c) */
};
struct zila_vector {
	struct zila_feed_head *heads;
	size_t nheads;
};

int zila_store_vector(struct zila_store *s, struct zila_vector *out) ZILA_MUST_CHECK;

/* Forks (proto/PROTOCOL.md, "Forks"): a device that signed two different entries under one
 * sequence number of a feed. note records one (logged once; peer: who showed the other
 * history, may be NULL) and quarantines its author here: nothing more of it is admitted. */
struct zila_fork {
	uint8_t origin[32];
	char part[ZILA_PART_MAX + 1];
	uint64_t seq;     /* the fork is at or before this sequence number */
	uint64_t seen_at; /* seconds */
	bool own;         /* this device's own feed: restored from an old backup? */
};
typedef int (*zila_fork_fn)(void *ctx, const struct zila_fork *f);
int zila_store_fork_note(struct zila_store *s, const uint8_t origin[32], const char *part, uint64_t seq,
			 const uint8_t *peer) ZILA_MUST_CHECK;
int zila_store_fork_each(struct zila_store *s, zila_fork_fn fn, void *ctx) ZILA_MUST_CHECK;

/* Undoing a revoked author's entries (proto/TRUST.md, "Entries past a mark"). For each feed
 * of each of the norigins authors, keep is asked about its entries in sequence order (it may read the replica, and
 * must judge by signed data only); the first it refuses and every later one of that feed are
 * removed, and the feed's head goes back. When any was removed, the tracked tables and their
 * row states are made again from the entries left: every row goes back to the best version
 * that stands, as on a replica that never took the removed ones. Pending local edits are
 * sealed first. This device's own feeds are never cut. One transaction; *ncut gets the
 * number of entries removed. */
typedef bool (*zila_entry_keep_fn)(void *ctx, const struct zila_entry_info *e);
int zila_store_cut(struct zila_store *s, const uint8_t (*origins)[32], size_t norigins, zila_entry_keep_fn keep,
		   void *ctx, size_t *ncut, struct zila_error *err) ZILA_MUST_CHECK;
void zila_vector_release(struct zila_vector *v);
/* Canonical encoding (sorted by origin, part). */
int zila_vector_encode(const struct zila_vector *v, struct zila_buf *out) ZILA_MUST_CHECK;
int zila_vector_decode(struct zila_view in, struct zila_vector *out) ZILA_MUST_CHECK;
/* The head for (origin, part) in v, 0 when absent. */
uint64_t zila_vector_get(const struct zila_vector *v, const uint8_t origin[32], const char *part);

/* Decides whether a partition may be sent to the peer being served (read scope). */
typedef bool (*zila_part_filter_fn)(void *ctx, const char *part);
/* Called for each entry, in causal (HLC) order; bytes are borrowed for the call only.
 * A non-zero return stops the walk and is returned. */
typedef int (*zila_entry_fn)(void *ctx, const struct zila_entry_info *e, struct zila_view bytes);

/* Walks the entries this replica holds that `have` lacks (all when have is NULL). */
int zila_store_entries_since(struct zila_store *s, const struct zila_vector *have,
			     zila_part_filter_fn filter, void *filter_ctx, zila_entry_fn fn,
			     void *ctx) ZILA_MUST_CHECK;

/* A cursor over the entries a peer holding `have` (NULL: nothing) lacks, within the filter,
 * in causal order; what arrives after it opened is not included. Memory follows the number
 * of feeds, not the backlog. *out is owned by the caller: zila_outbox_free(). */
struct zila_outbox;
int zila_outbox_open(struct zila_store *s, const struct zila_vector *have, zila_part_filter_fn filter,
		     void *filter_ctx, struct zila_outbox **out) ZILA_MUST_CHECK;
void zila_outbox_free(struct zila_outbox *o);
/* Entries the cursor had to send when it opened. */
uint64_t zila_outbox_total(const struct zila_outbox *o);
/* The size of the next entry; ZILA_ENOTFOUND at the end. */
int zila_outbox_peek_len(struct zila_outbox *o, size_t *len) ZILA_MUST_CHECK;
/* Appends the next entry to bytes and describes it in info (may be NULL); ZILA_ENOTFOUND at
 * the end. */
int zila_outbox_next(struct zila_outbox *o, struct zila_entry_info *info, struct zila_buf *bytes) ZILA_MUST_CHECK;

/* --- checkpoints of a partition's state (proto/CHECKPOINT.md) ---------------------- */

/* A checkpoint is an HQ device's signed statement of one district partition's rows, with
 * every merge register, at the feed heads it names: a replica that merges it and then the
 * entries past those heads ends with the rows of one that merged every entry. */
#define ZILA_CKPT_VERSION 1
struct zila_apply_stats;
#define ZILA_CKPT_CHUNK_MAX (1u << 20)  /* a chunk as carried (a zstd frame) */
#define ZILA_CKPT_PLAIN_MAX (4u << 20)  /* a chunk's declared plain size */
#define ZILA_CKPT_CHUNK_SOFT (256u << 10) /* the maker cuts a chunk past this much plain */
struct zila_ckpt_info {
	uint8_t signer[32];            /* the HQ device that made it */
	char part[ZILA_PART_MAX + 1];  /* a district partition, never the org-wide one */
	uint64_t hlc;                  /* when it was made (the signer's HLC) */
	uint32_t schema;               /* the signer's schema version */
	uint64_t nfeeds, nrows, nchunks;
	uint64_t max_hlc;              /* the newest head entry it covers (0: none known) */
};
/* Checks a checkpoint's layout, every chunk's hash and the signature over its head (not who
 * signed it: the trust hook does that at apply). 0, ZILA_EFORMAT, ZILA_EVERSION, ZILA_ESIG. */
int zila_checkpoint_verify(struct zila_view bytes, struct zila_ckpt_info *out) ZILA_MUST_CHECK;
/* The feed heads a checkpoint covers, as a vector (owned by the caller). */
int zila_checkpoint_vector(struct zila_view bytes, struct zila_vector *out) ZILA_MUST_CHECK;
/* Seals local changes, then makes a checkpoint of partition part signed with this device's
 * key and keeps it (zila_checkpoints, replacing the partition's older one). ZILA_EINVAL for
 * the org-wide partition; ZILA_ESCHEMA when entries of part wait for a schema here. */
int zila_store_checkpoint_make(struct zila_store *s, const char *part, struct zila_ckpt_info *info,
			       struct zila_error *err) ZILA_MUST_CHECK;
/* The checkpoint of part this replica keeps (made here or merged), malloc'd into *bytes
 * (owned by the caller); ZILA_ENOTFOUND when none. */
int zila_store_checkpoint_get(struct zila_store *s, const char *part, uint8_t **bytes, size_t *len) ZILA_MUST_CHECK;
/* Calls fn for each checkpoint kept, by partition; the view is borrowed for the call. */
typedef int (*zila_ckpt_fn)(void *ctx, const struct zila_ckpt_info *c, size_t len);
int zila_store_checkpoint_each(struct zila_store *s, zila_ckpt_fn fn, void *ctx) ZILA_MUST_CHECK;
/* Verifies a checkpoint (zila_checkpoint_verify, then the trust hook: an HQ device's), seals
 * local changes, and merges it in one transaction: every register of every row it holds
 * that is newer than this replica's, then the feed heads it names where this replica's are
 * behind (the entries in between are not held here: a peer behind them is sent this
 * checkpoint first). Nothing is changed when it fails: a plain message in err. */
int zila_store_checkpoint_apply(struct zila_store *s, struct zila_view bytes, struct zila_ckpt_info *info,
				struct zila_apply_stats *st, struct zila_error *err) ZILA_MUST_CHECK;
/* Whether a peer holding `have` is to be sent this replica's checkpoint of part before
 * entries (1) or not (0), or a negative code. It must be when some feed of part is behind,
 * in have, the entries this replica holds (pruned here). Beyond that, by how: ZILA_CKPT_HISTORY
 * (the peer keeps the audit trail, HQ: entries wherever they are held), ZILA_CKPT_CHEAPER
 * (when the entries it stands for that the peer lacks are more bytes than half the
 * checkpoint), ZILA_CKPT_LACKING (when the peer lacks any entry it stands for: a bundle,
 * whose receiver may then drop that history). 0 when no checkpoint of part is kept. */
enum { ZILA_CKPT_HISTORY = 0, ZILA_CKPT_CHEAPER = 1, ZILA_CKPT_LACKING = 2 };
int zila_store_checkpoint_needed(struct zila_store *s, const struct zila_vector *have, const char *part, int how)
	ZILA_MUST_CHECK;
/* Raises each head of v to by's where by's is higher, adding feeds v lacks; v stays sorted. */
int zila_vector_raise(struct zila_vector *v, const struct zila_vector *by) ZILA_MUST_CHECK;

/* --- bounded history (proto/CHECKPOINT.md, "Horizon") ------------------------------ */
#define ZILA_META_HISTORY_DAYS "history_days" /* zila_meta: days of history a laptop keeps */
#define ZILA_HISTORY_DAYS_DEFAULT 90
/* The time (ms since 1970, by the store's clock) before which this replica need not keep
 * history: now minus history_days. 0 when it keeps everything (an HQ device keeps the full
 * audit trail: history_days 0 or "all"). */
int64_t zila_store_horizon_ms(struct zila_store *s);
/* Drops the entries older than the horizon that a checkpoint kept here covers (never one of
 * this device's that the checkpoint does not cover); *ndropped gets how many. One transaction. */
int zila_store_prune(struct zila_store *s, size_t *ndropped, struct zila_error *err) ZILA_MUST_CHECK;
/* Calls fn for each district whose history this replica does not hold in full (it merged a
 * checkpoint over it, or dropped entries it covers): up to before_ms (the checkpoint's date)
 * the audit trail is at HQ. part is borrowed for the call; non-zero stops the walk. */
typedef int (*zila_gap_fn)(void *ctx, const char *part, uint64_t before_ms);
int zila_store_history_gaps(struct zila_store *s, zila_gap_fn fn, void *ctx) ZILA_MUST_CHECK;
/* The daemon's hourly upkeep. At HQ (is_hq): a checkpoint of every district that has none
 * and some history (64 entries), or whose history since its last is larger than it, or a day
 * old with anything new; *nmade counts them. Elsewhere: zila_store_prune (*ndropped). */
int zila_store_history_upkeep(struct zila_store *s, bool is_hq, size_t *nmade, size_t *ndropped,
			      struct zila_error *err) ZILA_MUST_CHECK;

/* --- compacting the replica's file (README "Deleted rows collected") ------------------- */

/* What a compaction would give back and what it did, in bytes of SQLite pages. */
struct zila_compact_info {
	uint64_t file_bytes;   /* page_count x page_size: the file, its WAL copied back */
	uint64_t free_bytes;   /* pages on the free list */
	uint64_t unused_bytes; /* unused bytes on pages in use: those deletes left part-empty */
	bool compacted;        /* the file was written again (VACUUM) */
	uint64_t after_bytes;  /* the file after it */
	uint64_t ms;           /* how long it held the replica: the VACUUM and emptying the WAL */
};
/* A compaction pays when free and unused bytes are at least this share of the file (a table
 * grown by inserts in key order or at random keeps 0-31% of its pages' bytes unused) and at
 * least ZILA_COMPACT_MIN_BYTES. */
#define ZILA_COMPACT_SHARE_PCT 40
#define ZILA_COMPACT_MIN_BYTES (512 * 1024)
/* Fills info's file_bytes, free_bytes and unused_bytes; reads every page of the replica. */
int zila_store_compact_measure(struct zila_store *s, struct zila_compact_info *info, struct zila_error *err)
	ZILA_MUST_CHECK;
/* Whether compacting a replica measured so pays (the share and the minimum above). */
bool zila_store_compact_pays(const struct zila_compact_info *info);
/* Measures, then, when always or when it pays, writes the replica's file again without its
 * free and part-empty pages (VACUUM, one transaction: a crash leaves it whole, as it was or
 * compacted; rows, rowids and the content hash do not change). Needs twice the pages in use
 * free on the replica's disk: else ZILA_EFULL with a plain message and nothing done. Holds
 * the replica while it runs (info->ms); not inside a transaction, nor while a statement of
 * this store is stepping. info->compacted says whether it ran. */
int zila_store_compact(struct zila_store *s, bool always, struct zila_compact_info *info, struct zila_error *err)
	ZILA_MUST_CHECK;

/* --- collecting deleted rows (proto/CHECKPOINT.md, "Collecting deleted rows") ---------- */

/* At HQ, at the end of an exchange with device that completed (it now holds everything this
 * replica held at the start, and this replica everything it held then): ckpt_hlc is the
 * checkpoint of part this replica kept at that start. The one noted at the exchange before
 * becomes the device's acknowledged checkpoint (what it sealed during that exchange is here
 * now); this one waits for the next. 0 or a negative code. */
int zila_store_ack_note(struct zila_store *s, const uint8_t device[32], const char *part, uint64_t ckpt_hlc)
	ZILA_MUST_CHECK;
/* The checkpoint of part device has acknowledged here (its HLC), 0 when none. */
int zila_store_ack_get(struct zila_store *s, const uint8_t device[32], const char *part, uint64_t *acked)
	ZILA_MUST_CHECK;
/* The devices other than this one that may hold a partition (trust: zila_trust_collect). */
struct zila_holders {
	const char *part;
	const uint8_t (*devices)[32];
	size_t ndevices;
};
/* At HQ: for each partition of h whose every holder has acknowledged a checkpoint this
 * replica kept, drops the deleted rows (not parked) whose every register is covered by each
 * of those checkpoints and by the one kept here. One transaction; *ndropped counts them. */
int zila_store_collect(struct zila_store *s, const struct zila_holders *h, size_t nh, size_t *ndropped,
		       struct zila_error *err) ZILA_MUST_CHECK;
/* Why a holder holds back the collection of a partition's deleted rows (zila_store_collect_held). */
enum zila_hold_why {
	ZILA_HOLD_NEVER_SEEN = 1, /* no contact with it here and no entry of it: never seen since enrolment */
	ZILA_HOLD_BUNDLE_ONLY,    /* no live contact, but entries of it are here: by USB bundle (no answer) */
	ZILA_HOLD_NO_ACK,         /* it met this replica, but acknowledged no checkpoint of the partition */
	ZILA_HOLD_OLD_ACK,        /* the checkpoint it acknowledged does not cover the deletes */
};
struct zila_hold {
	uint8_t device[32];
	int why;            /* ZILA_HOLD_* */
	uint64_t acked_hlc; /* the checkpoint it acknowledged (its HLC; zila_hlc_ms), 0 none */
	int64_t last_sync;  /* unix seconds of its last completed exchange here, 0 none known */
	size_t nrows;       /* the waiting rows its acknowledgement does not cover */
	bool revoked;       /* revoked, with entries up to its marks not all here (zila_trust_collect_held) */
};
/* A partition whose deleted rows wait for collection. */
struct zila_held {
	char part[ZILA_PART_MAX + 1];
	size_t nrows;       /* deleted rows (not parked) a collection now would keep */
	size_t nnew;        /* of them, those the checkpoint kept here does not cover (deleted after
			     * it, none kept, or entries of the partition wait for a schema): they
			     * wait for HQ's next checkpoint, not for a device */
	uint64_t ckpt_hlc;  /* the checkpoint kept here (0 none, or entries wait for a schema) */
	struct zila_hold *holds; /* the holders that hold some back */
	size_t nholds;
};
struct zila_held_list {
	struct zila_held *parts; /* those of h first, in its order, then any without a checkpoint */
	size_t nparts;
};
/* At HQ: by zila_store_collect's rule, the partitions whose deleted rows wait, how many, and
 * which holders of h (those whose acknowledged checkpoint leaves some uncovered) hold them
 * back and why. Reads only. out is the caller's, released with zila_held_list_release. */
int zila_store_collect_held(struct zila_store *s, const struct zila_holders *h, size_t nh, struct zila_held_list *out,
		    struct zila_error *err) ZILA_MUST_CHECK;
void zila_held_list_release(struct zila_held_list *l);
/* Of l: the partitions some device holds back, and how many devices (each counted once). */
void zila_held_list_count(const struct zila_held_list *l, size_t *nheld, size_t *ndevices);

/* --- receiving -------------------------------------------------------------------- */

/* Trust hooks the store consults (installed by the trust layer; none means accept every
 * well-signed entry and every trust record). */
struct zila_store_hooks {
	/* 0 to accept an entry whose signature verified, else a negative code with the
	 * reason in err; a rejected entry is logged and never applied. */
	int (*admit)(void *ctx, struct zila_store *s, const struct zila_entry_info *e,
		     struct zila_error *err);
	/* Verifies a trust record (certificate, revocation) received in a bundle; 0 means
	 * the store keeps it in zila_trust. */
	int (*trust_record)(void *ctx, struct zila_store *s, uint8_t type, struct zila_view bytes,
			    struct zila_error *err);
	/* 0 to accept a checkpoint whose signature verified (its signer an HQ device of the
	 * organisation, not revoked); none installed: every well-signed one is accepted. */
	int (*checkpoint)(void *ctx, struct zila_store *s, const struct zila_ckpt_info *c, struct zila_error *err);
	void *ctx;
};
void zila_store_set_hooks(struct zila_store *s, const struct zila_store_hooks *hooks);

/* An entry a receiver did not take, and why: the first of its feed in one apply. */
#define ZILA_APPLY_REFUSALS 16
#define ZILA_REFUSAL_REASON_MAX 160
struct zila_refusal {
	uint8_t origin[32];
	char part[ZILA_PART_MAX + 1];
	uint64_t seq;
	int code;  /* ZILA_E*; ZILA_EGAP: it waits behind an entry this replica does not hold */
	char reason[ZILA_REFUSAL_REASON_MAX]; /* plain words, without device, feed and seq */
	uint64_t nwaiting; /* later entries of the feed in the same apply, not taken either */
};

/* What one device may park at a replica in entries it holds for a schema the replica lacks
 * (proto/ENTRY.md): past it, its entries are refused until the schema arrives. */
#define ZILA_HELD_MAX 4096
#define ZILA_HELD_MAX_BYTES (64ll << 20)

struct zila_apply_stats {
	size_t nreceived;  /* entries offered */
	size_t napplied;   /* stored and merged */
	size_t nduplicate; /* already held */
	size_t nrejected;  /* failed a check */
	size_t nheld;      /* stored, waiting for a newer schema */
	size_t nretried;   /* held entries tried again (only after this replica's schema changed) */
	size_t ngap;       /* not stored: an earlier entry of the feed is missing */
	size_t nconflicts; /* overwritten values recorded */
	size_t nparked;    /* rows parked as duplicates or orphans */
	size_t ntrust;     /* trust records accepted */
	/* The first refused (or waiting) entry of each feed, for its sender (at most
	 * ZILA_APPLY_REFUSALS feeds; nrefusals_more counts the feeds left out). */
	struct zila_refusal refusals[ZILA_APPLY_REFUSALS];
	size_t nrefusals, nrefusals_more;
	size_t ncollected; /* deleted rows a merged checkpoint's maker had collected: dropped here too */
};

/* Seals local changes, then stores and merges the entries in one transaction. Entries
 * are verified first; rejected ones are logged and skipped. */
int zila_store_apply(struct zila_store *s, const struct zila_view *entries, size_t n,
		     struct zila_apply_stats *st, struct zila_error *err) ZILA_MUST_CHECK;

/* Trust records kept in the replica (type, id, bytes); put replaces by (type, id). */
int zila_store_trust_put(struct zila_store *s, uint8_t type, struct zila_view id,
			 struct zila_view bytes) ZILA_MUST_CHECK;
/* Whether exactly this record (same bytes) is kept under (type, id). */
bool zila_store_trust_held(struct zila_store *s, uint8_t type, struct zila_view id, struct zila_view bytes);
/* Calls fn for every trust record in (type, id) order; id and bytes are borrowed for the
 * call, which must not call back into the trust records. A non-zero return stops the walk. */
typedef int (*zila_trust_record_fn)(void *ctx, uint8_t type, struct zila_view id, struct zila_view bytes);
int zila_store_trust_each(struct zila_store *s, zila_trust_record_fn fn, void *ctx) ZILA_MUST_CHECK;
/* The bytes kept under (type, id), malloc'd into *bytes (owned by the caller);
 * ZILA_ENOTFOUND when none. */
int zila_store_trust_get(struct zila_store *s, uint8_t type, struct zila_view id, uint8_t **bytes,
			 size_t *len) ZILA_MUST_CHECK;
/* Calls fn for every record of type whose id begins with prefix (prefix.len 0: all of the
 * type), in id order; id and bytes are borrowed for the call, which may read the trust
 * records. A non-zero return stops the walk and is returned. */
int zila_store_trust_find(struct zila_store *s, uint8_t type, struct zila_view prefix, zila_trust_record_fn fn,
			  void *ctx) ZILA_MUST_CHECK;

/* --- reading the replica ---------------------------------------------------------- */

/* A typed SQLite value; bytes are borrowed (see the function that hands it out). */
enum { ZILA_VAL_NULL = 0, ZILA_VAL_INT = 1, ZILA_VAL_REAL = 2, ZILA_VAL_TEXT = 3, ZILA_VAL_BLOB = 4 };
struct zila_value {
	int type;
	int64_t i;
	double d;
	const uint8_t *p;
	size_t len;
};

enum { ZILA_OP_UPSERT = 1, ZILA_OP_UPDATE = 2, ZILA_OP_DELETE = 3 };

/* One change of one row inside an entry, as the audit trail shows it. */
struct zila_change {
	const struct zila_entry_info *entry;
	const char *table; /* NUL-terminated */
	int op;
	struct zila_value pk;
	size_t ncols;
	const char *const *cols;        /* names of the changed columns */
	const struct zila_value *vals;  /* their new values */
};
/* Everything handed to the callback is valid for the call only; non-zero stops the walk. */
typedef int (*zila_change_fn)(void *ctx, const struct zila_change *c);

/* Walks every change in every entry held, oldest first (HLC order), optionally only
 * those of one table and/or one row key (text). */
int zila_store_walk_changes(struct zila_store *s, const char *table, const char *id, zila_change_fn fn,
			    void *ctx) ZILA_MUST_CHECK;

/* Where a walk of stored entries stopped (zila_store_changes_after). */
struct zila_change_mark {
	int64_t next;      /* the mark to resume from: the last entry walked (or the mark given) */
	int64_t held_from; /* the first entry at or before next still held for a newer schema, 0: none */
	int64_t top;       /* the last entry stored */
	int64_t behind;    /* entries stored after next */
	size_t nwalked;    /* entries walked by this call */
};
/* Walks the changes of the entries stored after mark after (0: from the first), in the order
 * they were stored (not HLC order), at most max_entries of them (0: all), calling fn for
 * each change (as zila_store_walk_changes). Entries held for a newer schema are walked too:
 * out->held_from says where to walk again once they apply. One read transaction. Used by the
 * PostgreSQL mirror to learn which rows to copy again; a mark stays valid across restarts. */
int zila_store_changes_after(struct zila_store *s, int64_t after, size_t max_entries, zila_change_fn fn, void *ctx,
			     struct zila_change_mark *out) ZILA_MUST_CHECK;

/* Records the deletion of a row as a local change (sealed and synced like any other),
 * also when the row is parked and so not in its table; used to discard a duplicate. */
int zila_store_delete_row(struct zila_store *s, const char *table, const struct zila_value *pk,
			  struct zila_error *err) ZILA_MUST_CHECK;

/* Called with a parked row's columns (table order, primary key included) and values;
 * everything is borrowed for the call only. A non-zero return is passed back. */
typedef int (*zila_row_fn)(void *ctx, size_t ncols, const char *const *cols,
			   const struct zila_value *vals);
/* Reads the values of a row parked as a duplicate, orphan or invalid (so not in its
 * table) and calls fn once with them. ZILA_ENOTFOUND when table is not tracked or the row
 * is not parked. */
int zila_store_parked_row(struct zila_store *s, const char *table, const struct zila_value *pk,
			  zila_row_fn fn, void *ctx, struct zila_error *err) ZILA_MUST_CHECK;

/* A row's sync state, as the web interface shows it: ZILA_ROW_CONFLICT when a conflict on
 * it waits for review; ZILA_ROW_LOCAL when a change of it made here is not sealed yet, or
 * sealed in an entry of this device's past the first hq_acked ones (what HQ acknowledged,
 * ZILA_META_NET_OWN_HQ; exact for a device that writes one partition, as a district laptop
 * does); else ZILA_ROW_AT_HQ (also every row of an HQ device, is_hq). */
enum { ZILA_ROW_LOCAL = 0, ZILA_ROW_AT_HQ = 1, ZILA_ROW_CONFLICT = 2 };
int zila_store_row_sync(struct zila_store *s, const char *table, const struct zila_value *pk, int64_t hq_acked,
			bool is_hq, int *state) ZILA_MUST_CHECK;

/* Counts for `zila status`. */
struct zila_store_counts {
	int64_t pending;    /* captured, not yet sealed */
	int64_t entries;    /* entries held, all feeds */
	int64_t own_entries;
	int64_t held;       /* waiting for a newer schema */
	int64_t held_bytes; /* their size */
	int64_t held_most;  /* the most of them one device has parked (ZILA_HELD_MAX) */
	int64_t conflicts;  /* unresolved overwritten values */
	int64_t parked;     /* rows parked as duplicates, orphans or invalid */
	int64_t orphans;    /* of them, orphans (a parent missing) */
	int64_t feeds;
};
int zila_store_counts(struct zila_store *s, struct zila_store_counts *out) ZILA_MUST_CHECK;
/* The entries this device has written, all its feeds (cheap: what local writes left
 * behind once sealed). */
int zila_store_own_entries(struct zila_store *s, int64_t *out) ZILA_MUST_CHECK;

/* --- peers ------------------------------------------------------------------------ */

/* The devices this replica has met, as the daemon recorded them. Strings are borrowed for
 * the callback; NULL when unknown. */
struct zila_peer_record {
	const uint8_t *device;       /* its Ed25519 key (32 bytes); NULL if the record is damaged */
	const char *name, *district; /* from its certificate ("*": scope all) */
	const char *addr, *source;   /* last address; "lan", "config", "hq" or "inbound" */
	int64_t last_seen, last_sync; /* unix seconds: last contact, last completed session */
	bool has_last_seen, has_last_sync;
	const char *last_result;     /* "ok" or why the last session failed */
	int64_t sent, received;      /* entries in the last session, each way */
	int64_t entries_at_sync;     /* entries held when the last session completed */
	int64_t clock_offset_ms;     /* its clock minus HQ's time (as known) at its last Hello */
	bool has_entries_at_sync, has_clock_offset;
};
typedef int (*zila_peer_fn)(void *ctx, const struct zila_peer_record *p);

/* Records contact with a device at now (unix seconds): name and district ("" or NULL keep
 * what is known), its address and how it was found. A typed or HQ address is not replaced
 * by a LAN or inbound one. The peer table's writes commit without an fsync (a daemon makes
 * them at every handshake and session): a power cut may take the last back. */
int zila_store_peer_seen(struct zila_store *s, const uint8_t device[32], const char *name, const char *district,
			 const char *addr, const char *source, int64_t now) ZILA_MUST_CHECK;
/* How a session with a device ended. */
struct zila_peer_session {
	const char *result;      /* "ok", or why it failed */
	int64_t sent, received;  /* entries, each way */
	bool has_clock_offset;
	int64_t clock_offset_ms; /* its clock minus HQ's time as known */
};
/* Records a session with a device met before (zila_store_peer_seen) ended at now; a
 * completed one ("ok") is its last sync, with the number of entries held then. */
int zila_store_peer_synced(struct zila_store *s, const uint8_t device[32], int64_t now,
			   const struct zila_peer_session *sess) ZILA_MUST_CHECK;
/* Calls fn for every device met, the most recently seen first. */
int zila_store_peer_each(struct zila_store *s, zila_peer_fn fn, void *ctx) ZILA_MUST_CHECK;
/* Calls fn for every device of district, the latest to complete a sync first (those that
 * never did last): the report's last sync per district. */
int zila_store_peer_district(struct zila_store *s, const char *district, zila_peer_fn fn,
			     void *ctx) ZILA_MUST_CHECK;

/* A content hash of every tracked row (visible and parked), equal on two replicas iff
 * their tracked rows are equal. */
int zila_store_hash(struct zila_store *s, uint8_t out[32], struct zila_error *err) ZILA_MUST_CHECK;

#endif
