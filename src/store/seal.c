/* Sealing: turns the changes the capture triggers recorded in zila_pending, and the rows
 * inserted into rowid tables past their high-water rowids, into signed entries of this
 * device's feeds, one per partition per batch, in one transaction with the removal of
 * what they seal (and the move of the mark), so a change is sealed exactly once even if
 * killed. */
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "store_int.h"
#include "zila/log.h"

uint64_t store_hlc_tick(struct zila_store *s)
{
	uint64_t now = store_stamp_ms(s) << 16;
	s->hlc = now > s->hlc ? now : s->hlc + 1;
	return s->hlc;
}

int store_feed_get(struct zila_store *s, int64_t origin, const char *part, int64_t *id, uint64_t *head,
		   uint64_t *head_hlc)
{
	sqlite3_stmt *st = s->st_feed_get;
	int r = ZILA_EDB;
	*id = 0;
	*head = 0;
	if (head_hlc != NULL)
		*head_hlc = 0;
	sqlite3_bind_int64(st, 1, origin);
	sqlite3_bind_text(st, 2, part, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(st, 0);
		*head = (uint64_t)sqlite3_column_int64(st, 1);
		if (head_hlc != NULL)
			*head_hlc = (uint64_t)sqlite3_column_int64(st, 2);
		r = 0;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return rc == SQLITE_ROW ? 0 : r;
	st = s->st_feed_new;
	sqlite3_bind_int64(st, 1, origin);
	sqlite3_bind_text(st, 2, part, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_DONE) {
		*id = sqlite3_last_insert_rowid(s->db);
		r = 0;
	}
	sqlite3_reset(st);
	return r;
}

/* One captured change, deduplicated within a batch per (table, rowid) where the capture
 * recorded a rowid, else per (table, key). The two never meet: a rowid table's captures
 * carry the key only for deletes, whose rows are gone; a row deleted and inserted again
 * is found present by its delete, which writes it whole. */
struct item {
	int64_t tid;
	bool by_rid; /* the capture recorded the rowid, not the key */
	int64_t rid;
	bool has_hint; /* a delete's: the rowid the row had, where its state is */
	int64_t hint;
	struct zval pk; /* by_rid: read from the row when it is sealed */
	size_t pk_off;
	bool ins, del;
	bool scan; /* a row found past the high-water rowid (or below it, freed by a delete):
		    * new unless its state is at its rowid (written by zila, or sealed) */
	int64_t mask;
	size_t part_off, part_len;
	bool has_part;
	uint64_t when; /* when its last capture was made (this computer's ms; an update's within
			* the second its item has), 0: unknown */
	uint64_t date; /* else the HLC to date it by (a table sealed again: rearm), 0: none */
	uint32_t next; /* hash chain, 1-based */
};

/* An entry being built for one partition. */
struct builder {
	char part[ZILA_PART_MAX + 1];
	int64_t feed;
	uint64_t seq, hlc;
	uint64_t last; /* the HLC of the feed's last entry: an entry's is past it */
	uint64_t want; /* the date its changes were made (stamp_ms << 16), 0: the seal's time */
	uint64_t first_ms; /* when the first change of its group was made (0: an undated group) */
	uint64_t mark; /* the partition's collected mark: its entries are dated past it */
	struct zila_buf changes;
	size_t nchanges;
	struct table *dir[64];
	int ndir;
	unsigned ncut; /* entries cut from it by size in this seal (cut_at) */
};

/* Rows of one table inserted at rowids freed by deletes (seal_reused). */
struct reused {
	struct table *t;
	int64_t *rids;
	size_t n;
};

struct sealer {
	struct zila_store *s;
	struct item *items;
	size_t nitems;
	uint32_t *buckets;
	struct zila_buf arena;
	struct builder *b;
	size_t nb;
	struct zila_buf entry, deps, raw, packed;
	struct zila_buf key; /* the key of the rowid record being sealed */
	ZSTD_CCtx *zc;
	struct rowstate row;
	int row_cols;
	size_t nentries;
	struct zila_error *err;
	struct table *scan_t; /* whose sel_rowid is on a row (scan_to) */
	int64_t scan_rid;
	bool has_skew;
	int64_t skew; /* this store's clock minus the writers' (SQLite's 'now'), in ms */
	uint64_t when_ms, when_hlc; /* the last date computed (write_hlc) */
	uint64_t floor; /* the HLC when the seal began: past every version held (builder_date) */
	int64_t dropped_tid; /* the last table no longer tracked whose captures read_batch dropped */
	bool failed;         /* read_batch set z->err (unknown_capture) */
	uint64_t reseal_hlc; /* the date of the rows of tables sealed again (rearm) */
	struct reused *reused; /* rows seal_reused() found, sealed after the captured changes */
	size_t nreused;
	size_t nchanges; /* changes sealed so far, every partition */
	int bulk;        /* a large seal (cut_at): -1 not known yet, 0 no, 1 yes */
};

/* A large seal (an import or generated data sealed at once: BULK_CHANGES changes or more,
 * about the 450 KiB at which a group is cut anyway) cuts its entries smaller: each
 * partition's first at CUT_FIRST of changes, then twice as much each time up to CUT_MAX
 * (about 6 s of a 64 kbit/s link as the sync sends it), so that a laptop cloning over 2G
 * applies and shows the first rows within seconds and more every few seconds, and a cut
 * loses at most the entry in flight (#24; at 450 KiB an entry is about 10 s of 2G). Not
 * smaller: the session compresses an entry's columns together, and 64 KiB entries made a
 * clone 1.14x the CSV floor instead of 1.07x (256 KiB: 1.09x). A smaller seal keeps each
 * group of changes in one entry. */
#define BULK_CHANGES 2048
#define CUT_FIRST (16u << 10)
#define CUT_MAX (256u << 10)

#define SCAN_AHEAD 16 /* rows scan_to() steps over rather than search again */

static void scan_stop(struct sealer *z)
{
	if (z->scan_t != NULL)
		sqlite3_reset(z->scan_t->sel_rowid);
	z->scan_t = NULL;
}

/* Puts t->sel_rowid on the row at rid: SQLITE_ROW when there is one, SQLITE_DONE when the
 * row is gone. Captured inserts come in rowid order, so the row is most often the next one
 * or a few past where the statement is: stepping there spares a search from the root and
 * a reset per row. */
static int scan_to(struct sealer *z, struct table *t, int64_t rid)
{
	sqlite3_stmt *st = t->sel_rowid;
	int rc;
	if (z->scan_t != t || z->scan_rid > rid || (uint64_t)rid - (uint64_t)z->scan_rid > SCAN_AHEAD) {
		scan_stop(z);
		sqlite3_bind_int64(st, 1, rid);
		if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
			sqlite3_reset(st);
			return rc;
		}
		z->scan_t = t;
		z->scan_rid = sqlite3_column_int64(st, t->ncols);
	}
	while (z->scan_rid < rid) {
		if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
			scan_stop(z);
			return rc;
		}
		z->scan_rid = sqlite3_column_int64(st, t->ncols);
	}
	return z->scan_rid == rid ? SQLITE_ROW : SQLITE_DONE;
}

#define NBUCKETS 8192

static uint32_t item_hash(const struct item *it)
{
	const struct zval *pk = &it->pk;
	uint64_t h = 1469598103934665603ull ^ (uint64_t)it->tid;
	if (it->by_rid) {
		h = (h ^ (uint64_t)it->rid) * 1099511628211ull;
	} else if (pk->type == VAL_TEXT || pk->type == VAL_BLOB) {
		for (size_t i = 0; i < pk->len; i++)
			h = (h ^ pk->p[i]) * 1099511628211ull;
	} else {
		h = (h ^ (uint64_t)pk->i) * 1099511628211ull;
	}
	return (uint32_t)(h ^ (h >> 32)) % NBUCKETS;
}

/* Changes made within GROUP_MS of the first of a group are dated together, by that first
 * one, and go out in one entry: a transaction's changes are made a few ms apart, and one
 * entry is applied whole everywhere. A change made later starts a group of its own. */
#define GROUP_MS 1000

static bool same_group(uint64_t first_ms, uint64_t when)
{
	uint64_t d = when > first_ms ? when - first_ms : first_ms - when;
	return d < GROUP_MS;
}

#define JD_UNIX 2440587.5 /* the Julian day of 1970-01-01 */
#define DAY_MS 86400000.0

/* The time a capture recorded (a Julian day, by the writer's clock: SQLite's 'now') as this
 * store's clock has it. The two are the same computer's clock, unless a test moved the
 * store's (zila_store_set_clock, ZILA_CLOCK_SKEW): the difference now is applied. */
static int write_ms(struct sealer *z, double jd, uint64_t *ms)
{
	*ms = 0;
	if (!z->has_skew) {
		sqlite3_stmt *st = NULL;
		int rc = sqlite3_prepare_v2(z->s->db, "SELECT julianday('now')", -1, &st, NULL);
		if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
			double now = (sqlite3_column_double(st, 0) - JD_UNIX) * DAY_MS;
			z->skew = (int64_t)store_now_ms(z->s) - llround(now);
			z->has_skew = true;
		}
		sqlite3_finalize(st);
		if (!z->has_skew)
			return ZILA_EDB;
	}
	double t = (jd - JD_UNIX) * DAY_MS + (double)z->skew;
	if (t >= 1.0 && t < 9e15)
		*ms = (uint64_t)(t + 0.5); /* the nearest: a Julian day's double is a few µs off */
	return 0;
}

/* A capture of table id tid that the tables' cache does not know (t NULL), or by rowid of
 * a table without rowids now (t). Never dropped unsaid: a table zila_tables still lists
 * means the cache is behind the schema (another program tracked it since the cache was
 * read): the seal fails, nothing of it is kept, and it is made again on a cache read anew
 * (seal). A table no longer tracked (untracked, dropped) or one rebuilt WITHOUT ROWID
 * (rearm seals each of its rows again as it is) leaves nothing to seal: the capture is
 * discarded, with a word. Returns 0 when it is discarded. */
static int unknown_capture(struct sealer *z, int64_t tid, const struct table *t)
{
	struct zila_store *s = z->s;
	if (t != NULL) {
		zila_log(ZILA_LOG_WARN, "a change of '%s' was captured by rowid, but the table has no rowids now (it was "
			 "rebuilt WITHOUT ROWID): its rows are sealed again as they are, and the capture is dropped", t->name);
		return 0;
	}
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_ERROR;
	char name[128] = "";
	if (sqlite3_prepare_v2(s->db, "SELECT name FROM zila_tables WHERE id = ?", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, tid);
		if ((rc = sqlite3_step(st)) == SQLITE_ROW)
			snprintf(name, sizeof(name), "%s", (const char *)sqlite3_column_text(st, 0));
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW) {
		s->tables_stale = true;
		s->seal_unknown = true;
		return zila_error_set(z->err, ZILA_ESCHEMA, "the tracked table '%s' is not known to this zila yet (tracked "
				      "by another program); nothing was sealed, and its changes wait for the next seal", name);
	}
	if (rc != SQLITE_DONE)
		return store_db_error(s, z->err, "cannot read the tracked tables");
	zila_log(ZILA_LOG_WARN, "a change was captured in a table that is no longer tracked (table id %lld): there is "
		 "nothing to seal, and the capture is dropped", (long long)tid);
	return 0;
}

static int read_batch(struct sealer *z, int64_t *last_rowid)
{
	static const char q[] = "SELECT rowid, tid, rid, pk, m, part, at FROM zila_pending ORDER BY rowid LIMIT ?";
	sqlite3_stmt *st = NULL;
	int r = ZILA_EDB;
	z->nitems = 0;
	zila_buf_reset(&z->arena);
	memset(z->buckets, 0, NBUCKETS * sizeof(*z->buckets));
	if (sqlite3_prepare_v2(z->s->db, q, -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_int(st, 1, SEAL_BATCH);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*last_rowid = sqlite3_column_int64(st, 0);
		struct item it = { 0 };
		struct table *t = NULL;
		it.tid = sqlite3_column_int64(st, 1);
		t = store_table_by_id(z->s, it.tid);
		bool by_rid = sqlite3_column_type(st, 2) != SQLITE_NULL && sqlite3_column_type(st, 4) != SQLITE_NULL;
		if (t == NULL || (by_rid && t->sel_rowid == NULL)) {
			if (t != NULL || it.tid != z->dropped_tid) {
				if ((r = unknown_capture(z, it.tid, t)) != 0) {
					z->failed = true;
					goto out;
				}
				z->dropped_tid = t == NULL ? it.tid : 0;
			}
			continue;
		}
		if (by_rid) {
			/* A rowid record: the row is read once, when it is sealed. */
			it.by_rid = true;
			it.rid = sqlite3_column_int64(st, 2);
		} else {
			val_from_column(&it.pk, st, 3);
			it.has_hint = sqlite3_column_type(st, 2) != SQLITE_NULL;
			it.hint = sqlite3_column_int64(st, 2);
		}
		if (sqlite3_column_type(st, 6) != SQLITE_NULL && (r = write_ms(z, sqlite3_column_double(st, 6), &it.when)) != 0)
			goto out;
		if (sqlite3_column_type(st, 4) == SQLITE_NULL)
			it.del = true;
		else if (sqlite3_column_int64(st, 4) == -1)
			it.ins = true;
		else
			it.mask = sqlite3_column_int64(st, 4);
		uint32_t h = item_hash(&it);
		struct item *found = NULL;
		for (uint32_t k = z->buckets[h]; k != 0; k = z->items[k - 1].next) {
			struct item *o = &z->items[k - 1];
			if (o->tid != it.tid || o->by_rid != it.by_rid || o->rid != it.rid)
				continue;
			/* a row's updates made a group apart are sealed apart, each cell dated
			 * by the group it was changed in (builder_at) */
			if (it.by_rid && !same_group(o->when, it.when))
				continue;
			struct zval opk = o->pk;
			if (opk.type == VAL_TEXT || opk.type == VAL_BLOB)
				opk.p = z->arena.p + o->pk_off;
			if (it.by_rid || val_equal(&opk, &it.pk)) {
				found = o;
				break;
			}
		}
		if (found == NULL) {
			it.pk_off = z->arena.len;
			if (it.pk.type == VAL_TEXT || it.pk.type == VAL_BLOB) {
				if ((r = zila_buf_put(&z->arena, it.pk.p, it.pk.len)) != 0)
					goto out;
			}
			if (it.pk.type == VAL_TEXT || it.pk.type == VAL_BLOB)
				it.pk.p = NULL; /* fixed up from pk_off below */
			it.next = z->buckets[h];
			z->items[z->nitems++] = it;
			z->buckets[h] = (uint32_t)z->nitems;
			found = &z->items[z->nitems - 1];
		} else {
			found->ins |= it.ins;
			found->del |= it.del;
			found->mask |= it.mask;
			/* the row as it is now: as its last change made it */
			if (it.when > found->when)
				found->when = it.when;
			/* the first delete's rowid: the state was there when the batch began */
			if (!found->has_hint) {
				found->has_hint = it.has_hint;
				found->hint = it.hint;
			}
		}
		if (it.del && sqlite3_column_type(st, 5) != SQLITE_NULL) {
			found->has_part = true;
			found->part_off = z->arena.len;
			found->part_len = (size_t)sqlite3_column_bytes(st, 5);
			if ((r = zila_buf_put(&z->arena, sqlite3_column_text(st, 5), found->part_len)) != 0)
				goto out;
		}
	}
	if (rc != SQLITE_DONE)
		goto out;
	for (size_t i = 0; i < z->nitems; i++)
		if (z->items[i].pk.type == VAL_TEXT || z->items[i].pk.type == VAL_BLOB)
			z->items[i].pk.p = z->arena.p + z->items[i].pk_off;
	r = 0;
out:
	sqlite3_finalize(st);
	return r;
}

static int put_deps(struct sealer *z, const char *part)
{
	static const char q[] = "SELECT o.key, f.head FROM zila_feeds f JOIN zila_origins o ON o.id = f.origin"
				" WHERE f.part = ? AND f.origin != ? AND f.head > 0 ORDER BY o.key";
	sqlite3_stmt *st = NULL;
	size_t n = 0;
	int r = ZILA_EDB;
	zila_buf_reset(&z->deps);
	if (sqlite3_prepare_v2(z->s->db, q, -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(st, 1, part, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, z->s->self_id);
	r = 0;
	while (r == 0 && sqlite3_step(st) == SQLITE_ROW) {
		r = zila_buf_put(&z->deps, sqlite3_column_blob(st, 0), 32);
		r = r ? r : zila_buf_put_varint(&z->deps, (uint64_t)sqlite3_column_int64(st, 1));
		n++;
	}
	r = r ? r : zila_buf_put_varint(&z->entry, n);
	r = r ? r : zila_buf_put(&z->entry, z->deps.p, z->deps.len);
out:
	sqlite3_finalize(st);
	return r;
}

static int flush(struct sealer *z, struct builder *b)
{
	struct zila_store *s = z->s;
	struct zila_buf *e = &z->entry;
	uint8_t sig[64];
	int r;
	if (b->nchanges == 0)
		return 0;
	zila_buf_reset(e);
	r = zila_buf_put_u8(e, ZILA_ENTRY_VERSION);
	r = r ? r : zila_buf_put(e, s->pk, 32);
	r = r ? r : zila_buf_put_lenbytes(e, b->part, strlen(b->part));
	r = r ? r : zila_buf_put_varint(e, b->seq);
	r = r ? r : zila_buf_put_u64be(e, b->hlc);
	r = r ? r : zila_buf_put_varint(e, (uint64_t)s->schema);
	r = r ? r : put_deps(z, b->part);
	/* body: table directory, change count, changes */
	size_t dir_len = 0;
	struct zila_buf dir;
	zila_buf_init(&dir, 1 << 20);
	r = r ? r : zila_buf_put_varint(&dir, (uint64_t)b->ndir);
	for (int i = 0; r == 0 && i < b->ndir; i++) {
		struct table *t = b->dir[i];
		r = zila_buf_put_lenbytes(&dir, t->name, strlen(t->name));
		r = r ? r : zila_buf_put_varint(&dir, (uint64_t)t->ncols - 1);
		for (int c = 0; r == 0 && c < t->ncols; c++)
			if (c != t->pk)
				r = zila_buf_put_lenbytes(&dir, t->cols[c], strlen(t->cols[c]));
	}
	r = r ? r : zila_buf_put_varint(&dir, b->nchanges);
	dir_len = dir.len;
	zila_buf_reset(&z->raw);
	r = r ? r : zila_buf_put(&z->raw, dir.p, dir_len);
	zila_buf_release(&dir);
	r = r ? r : zila_buf_put(&z->raw, b->changes.p, b->changes.len);
	/* Bodies are compressed (zstd, fast level) when that makes them smaller. */
	bool packed = false;
	if (r == 0 && z->raw.len > 256 && z->zc != NULL) {
		size_t bound = ZSTD_compressBound(z->raw.len);
		zila_buf_reset(&z->packed);
		if (zila_buf_reserve(&z->packed, bound) == 0) {
			size_t n = ZSTD_compressCCtx(z->zc, z->packed.p, bound, z->raw.p, z->raw.len, 1);
			if (!ZSTD_isError(n) && n < z->raw.len) {
				z->packed.len = n;
				packed = true;
			}
		}
	}
	size_t head_len = e->len;
	r = r ? r : zila_buf_put_u8(e, packed ? 1 : 0);
	if (packed)
		r = r ? r : zila_buf_put_lenbytes(e, z->packed.p, z->packed.len);
	else
		r = r ? r : zila_buf_put_lenbytes(e, z->raw.p, z->raw.len);
	if (r == 0 && e->len + 64 > ZILA_ENTRY_MAX) {
		return zila_error_set(z->err, ZILA_ETOOBIG,
				      "a change in partition '%s' is larger than an entry may be (%u KiB)",
				      b->part, ZILA_ENTRY_MAX / 1024);
	}
	if (r != 0)
		return zila_error_set(z->err, r, "cannot encode an entry: %s", zila_strerror(r));
	/* Signed over the plain body (version 2), so relays may send it uncompressed. */
	if ((r = entry_sign(e->p, head_len, zila_buf_view(&z->raw), s->sk, sig)) != 0 ||
	    (r = zila_buf_put(e, sig, 64)) != 0)
		return zila_error_set(z->err, r, "cannot encode an entry");
	sqlite3_stmt *st = s->st_entry_put;
	sqlite3_bind_int64(st, 1, b->feed);
	sqlite3_bind_int64(st, 2, (int64_t)b->seq);
	sqlite3_bind_int64(st, 3, (int64_t)b->hlc);
	sqlite3_bind_int(st, 4, 1);
	sqlite3_bind_blob(st, 5, e->p, (int)e->len, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	int r2 = rc == SQLITE_DONE ? store_feed_advance(s, b->feed, b->seq, zila_buf_view(e), 0, 0) : 0;
	if (rc != SQLITE_DONE || r2 != 0)
		return store_db_error(s, z->err, "cannot store an entry");
	z->nentries++;
	b->last = b->hlc;
	b->nchanges = 0;
	b->ndir = 0;
	zila_buf_reset(&b->changes);
	return 0;
}

/* Dates b's next entry: when its changes were made, or the seal's time (the clock's tick,
 * past every date issued or followed) for changes no capture dated; past the feed's last
 * entry either way, so that a feed's dates only rise. A date by when the changes were made
 * is also past the HLC as it stood when the seal began (z->floor), as an HLC follows what
 * it receives: remote entries are applied only after pending local changes are sealed, so
 * every version a pending change can overwrite was held before it was made, and is at or
 * below that HLC (the clock follows every entry applied, up to a day ahead: builder_above
 * takes care of the rest). That covers versions no capture names, such as the one an
 * INSERT OR REPLACE of a held key removed, whose state the seal finds only after it wrote
 * the new row's (gone_settle). */
static void builder_date(struct sealer *z, struct builder *b)
{
	uint64_t h = b->want != 0 ? b->want : store_hlc_tick(z->s);
	if (b->want != 0 && h <= z->floor)
		h = z->floor + 1;
	if (h <= b->last)
		h = b->last + 1;
	if (h > z->s->hlc)
		z->s->hlc = h;
	/* Past the partition's collected mark too: a key inserted again after this replica
	 * dropped its delete (or skipped it for a checkpoint) wins over the delete on the
	 * replicas that still hold it, as it does here. Every entry, not only those holding an
	 * insert: new rows join a group without their (absent) state being read, and the
	 * feed's next dates are past this one anyway. The clock does not follow the mark, so
	 * the other partitions' dates stay where they were. */
	if (h <= b->mark)
		h = b->mark + 1;
	b->hlc = h;
}

static int builder_open(struct sealer *z, struct builder *b)
{
	struct zila_store *s = z->s;
	uint64_t head, head_hlc = 0;
	int r = store_feed_get(s, s->self_id, b->part, &b->feed, &head, &head_hlc);
	if (r != 0)
		return store_db_error(s, z->err, "feed");
	b->seq = head + 1;
	if (b->seq > 1 && b->last == 0) {
		sqlite3_stmt *st = s->st_feed_hlc;
		sqlite3_bind_int64(st, 1, b->feed);
		sqlite3_bind_int64(st, 2, (int64_t)head);
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			b->last = (uint64_t)sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		/* the head entry dropped with old history (or covered by a checkpoint): its date is
		 * kept with the feed (proto/CHECKPOINT.md) */
		if (rc == SQLITE_DONE)
			b->last = head_hlc;
		else if (rc != SQLITE_ROW)
			return store_db_error(s, z->err, "feed");
	}
	builder_date(z, b);
	return 0;
}

/* Whether a change made at when (ms; 0: not known) to be dated date (0: by when) joins b's
 * group. A change no capture dated (a new row, which no trigger records; a row removed
 * without one) joins whatever group b has: it was made in one of the transactions sealed,
 * most often the last, and sealing it apart split a transaction in two entries. */
static bool builder_joins(const struct builder *b, uint64_t date, uint64_t when)
{
	if (date != 0)
		return b->first_ms == 0 && b->want == date;
	if (when == 0)
		return true;
	return b->first_ms != 0 && same_group(b->first_ms, when);
}

/* The date a change made at when (write_ms) goes out with, before the floor and the feed. */
static uint64_t write_hlc(struct sealer *z, uint64_t when)
{
	if (when != z->when_ms) {
		z->when_ms = when;
		z->when_hlc = store_stamp_at(z->s, when) << 16;
	}
	return z->when_hlc;
}

/* Makes b take a change made at when (0: not known) to be dated date (0: by when): a change
 * of another group than b's so far goes out in an entry of its own. */
static int builder_at(struct sealer *z, struct builder *b, uint64_t date, uint64_t when)
{
	int r;
	if (builder_joins(b, date, when))
		return 0;
	b->want = date != 0 ? date : write_hlc(z, when);
	b->first_ms = date != 0 ? 0 : when;
	if (b->nchanges == 0) {
		builder_date(z, b);
		return 0;
	}
	if ((r = flush(z, b)) != 0)
		return r;
	return builder_open(z, b);
}

static struct builder *builder_find(struct sealer *z, const char *part)
{
	for (size_t i = 0; i < z->nb; i++)
		if (strcmp(z->b[i].part, part) == 0)
			return &z->b[i];
	return NULL;
}

static int builder_for(struct sealer *z, const char *part, uint64_t date, uint64_t when, struct builder **out)
{
	*out = builder_find(z, part);
	if (*out != NULL)
		return builder_at(z, *out, date, when);
	struct builder *nb = realloc(z->b, (z->nb + 1) * sizeof(*nb));
	if (nb == NULL)
		return ZILA_ENOMEM;
	z->b = nb;
	struct builder *b = &z->b[z->nb++];
	memset(b, 0, sizeof(*b));
	snprintf(b->part, sizeof(b->part), "%s", part);
	b->mark = store_collected_mark(z->s, part);
	zila_buf_init(&b->changes, ZILA_ENTRY_MAX * 2);
	b->want = date != 0 ? date : when != 0 ? write_hlc(z, when) : 0;
	b->first_ms = date != 0 ? 0 : when;
	*out = b;
	return builder_open(z, b);
}

/* Whether dir_index() finds room for t without flushing b (which changes b's version). */
static bool dir_fits(const struct builder *b, const struct table *t)
{
	for (int i = 0; i < b->ndir; i++)
		if (b->dir[i] == t)
			return true;
	return b->ndir < 64;
}

static int dir_index(struct sealer *z, struct builder *b, struct table *t)
{
	for (int i = 0; i < b->ndir; i++)
		if (b->dir[i] == t)
			return i;
	if (b->ndir == 64) {
		int r = flush(z, b);
		if (r != 0)
			return r;
		r = builder_open(z, b);
		if (r != 0)
			return r;
	}
	b->dir[b->ndir] = t;
	return b->ndir++;
}

/* The newest version the change overwrites: the registers op sets (all cells and the
 * existence of an upsert, the masked cells of an update, the existence of a delete). */
static struct ver overwritten(struct zila_store *s, const struct table *t, const struct rowstate *row, int op,
			      int64_t mask)
{
	struct ver top = { 0, 0, 0 };
	if (!row->known)
		return top;
	if (op != OP_UPDATE)
		top = row->ever;
	for (int i = 0; op != OP_DELETE && i < t->ncols; i++) {
		if (op == OP_UPDATE && (i == t->pk || !((mask >> (i < MASK_BITS ? i : MASK_BITS)) & 1)))
			continue;
		if (ver_cmp(s, &row->cver[i], &top) > 0)
			top = row->cver[i];
	}
	return top;
}

/* Causality before clocks: a change made on a replica that holds a version of what it
 * changes must win over that version on every replica, whatever the clocks said (a peer
 * whose clock is ahead dates its edits past ours, and we follow a peer's clock only a day
 * ahead). When b's version is not above it, b's changes so far go out as an entry of
 * their own and b goes on dated just past the overwritten version; the clock follows, as
 * an HLC follows what it receives. */
static int builder_above(struct sealer *z, struct builder *b, const struct table *t, const struct rowstate *row,
			 int op, int64_t mask)
{
	struct zila_store *s = z->s;
	struct ver top = overwritten(s, t, row, op, mask);
	struct ver v = { b->hlc, s->self_id, b->seq };
	if (top.hlc == 0 || ver_cmp(s, &v, &top) > 0)
		return 0;
	int r;
	if (b->nchanges > 0 && ((r = flush(z, b)) != 0 || (r = builder_open(z, b)) != 0))
		return r;
	if (b->hlc <= top.hlc)
		b->hlc = top.hlc + 1;
	if (b->hlc > s->hlc)
		s->hlc = b->hlc;
	return 0;
}

static int count_past(struct table *t, int64_t hw, int64_t *n);
static int hw_get(struct zila_store *s, const struct table *t, int64_t *hw);

/* Whether the seal is large (BULK_CHANGES): the changes sealed so far and those still
 * waiting (captured, and rows past the high-water rowids). Asked only once a partition holds
 * CUT_FIRST of changes, so a small seal never counts. The changes of the batch being sealed
 * are still in zila_pending, so up to a batch is taken off: a seal judged large is. */
static int seal_bulk(struct sealer *z)
{
	struct zila_store *s = z->s;
	sqlite3_stmt *st = store_stmt(s, "SELECT count(*) FROM zila_pending");
	int64_t n = 0;
	int r = ZILA_EDB;
	if (st != NULL && sqlite3_step(st) == SQLITE_ROW) {
		n = sqlite3_column_int64(st, 0);
		r = 0;
	}
	if (st != NULL)
		sqlite3_reset(st);
	for (int i = 0; r == 0 && i < s->ntables; i++) {
		struct table *t = s->tables[i];
		int64_t hw, nnew = 0;
		if (t->count_new == NULL)
			continue;
		if ((r = hw_get(s, t, &hw)) == 0 && (r = count_past(t, hw, &nnew)) == 0)
			n += nnew;
	}
	if (r != 0)
		return 0; /* not known: cut as a small seal does */
	size_t sealed = z->nchanges, counted_twice = sealed < SEAL_BATCH ? sealed : SEAL_BATCH;
	return (uint64_t)n + sealed - counted_twice >= BULK_CHANGES;
}

/* The size of changes at which b's entry is cut: half an entry, or in a large seal less
 * (BULK_CHANGES). */
static size_t cut_at(struct sealer *z, const struct builder *b)
{
	if (z->bulk < 0)
		z->bulk = seal_bulk(z);
	if (!z->bulk)
		return ZILA_ENTRY_MAX / 2;
	size_t at = (size_t)CUT_FIRST << (b->ncut < 4 ? b->ncut : 4) /* 16 .. 256 */;
	return at < CUT_MAX ? at : CUT_MAX;
}

static int seal_item(struct sealer *z, struct item *it)
{
	struct zila_store *s = z->s;
	struct table *t = store_table_by_id(s, it->tid);
	struct rowstate *row = &z->row;
	char part[ZILA_PART_MAX + 1] = "";
	int r = 0;
	if (t == NULL) {
		/* read_batch keeps items of known tables only; the cache changed since */
		s->tables_stale = true;
		s->seal_unknown = true;
		return zila_error_set(z->err, ZILA_EINTERNAL, "a change of table id %lld came to the seal, but the "
				      "tracked tables changed meanwhile; nothing was sealed", (long long)it->tid);
	}
	if (z->row_cols != t->ncols) {
		row_release(row);
		row_init(row, t->ncols);
		z->row_cols = t->ncols;
	}
	sqlite3_stmt *sel = t->sel;
	int rc;
	if (it->by_rid) {
		/* A rowid record: the row there now is the one to seal. A row that is gone has
		 * its own record with the key (the delete's); another row that took its rowid
		 * since was captured as an insert at that rowid. */
		sel = t->sel_rowid;
		rc = scan_to(z, t, it->rid);
		if (rc == SQLITE_DONE) {
			/* gone since, but a new value in a UNIQUE column may have displaced rows */
			if (t->uniq_mask != 0 && (it->ins || (it->mask & t->uniq_mask) != 0))
				t->maybe_gone = true;
			return 0;
		}
		if (rc == SQLITE_ROW) {
			/* The key outlives the statement (the checks after the seal read others). */
			struct zval key;
			val_from_column(&key, sel, t->pk);
			it->pk = key;
			if (key.type == VAL_TEXT || key.type == VAL_BLOB) {
				zila_buf_reset(&z->key);
				if ((r = zila_buf_put(&z->key, key.p, key.len)) != 0) {
					r = zila_error_set(z->err, r, "cannot hold a key of '%s': %s", t->name, zila_strerror(r));
					goto out;
				}
				it->pk.p = z->key.p;
			}
		}
	} else {
		val_bind(sel, 1, &it->pk);
		rc = sqlite3_step(sel);
	}
	bool present = rc == SQLITE_ROW;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		r = store_db_error(s, z->err, t->name);
		goto out;
	}
	/* A deleted key back in a rowid table was inserted again, which no trigger records. */
	if (present && it->del && t->has_rowid)
		it->ins = true;
	if (present && t->pcol >= 0 && sqlite3_column_type(sel, t->pcol) != SQLITE_NULL) {
		int n = sqlite3_column_bytes(sel, t->pcol);
		if (n > ZILA_PART_MAX) {
			zila_log(ZILA_LOG_ERROR, "a row of '%s' has a partition value longer than %d bytes; it is not synced",
				 t->name, ZILA_PART_MAX);
			goto out;
		}
		memcpy(part, sqlite3_column_text(sel, t->pcol), (size_t)n);
		part[n] = '\0';
	}
	/* the rowid the table holds the row at: its state's place */
	int64_t at = 0;
	if (present && t->has_rowid)
		at = it->by_rid ? it->rid : sqlite3_column_int64(sel, t->ncols);
	/* A row inserted since the last seal is most often new: its state is then the
	 * insert's alone, and writing it at the row's rowid finds out (a record there, or one
	 * by key, takes the path below). A row deleted and inserted again has its state where
	 * the delete found it: the path below moves it. */
	struct builder *b = NULL;
	bool fresh = false;
	if (present && it->ins && !it->del && (b = builder_find(z, part)) != NULL && dir_fits(b, t) &&
	    builder_joins(b, it->date, it->when)) {
		struct ver v = { b->hlc, s->self_id, b->seq };
		row_reset(row);
		for (int i = 0; i < t->ncols; i++)
			row->cver[i] = v;
		row->exists = true;
		row->ever = v;
		part_copy(row->part, part);
		r = row_save_new_at(s, t, &it->pk, at, row);
		if (r != 0 && r != ZILA_EEXIST) {
			r = store_db_error(s, z->err, "cannot save row state");
			goto out;
		}
		fresh = r == 0;
		r = 0;
	}
	if (!fresh && (r = row_load_at(s, t, &it->pk, row, present && t->has_rowid ? &at : NULL,
				       it->has_hint ? &it->hint : NULL)) != 0) {
		r = store_db_error(s, z->err, "cannot read row state");
		goto out;
	}
	if (!present && it->has_part && t->pcol >= 0) {
		size_t n = it->part_len > ZILA_PART_MAX ? ZILA_PART_MAX : it->part_len;
		memcpy(part, z->arena.p + it->part_off, n);
		part[n] = '\0';
	} else if (!present && row->known) {
		part_copy(part, row->part);
	}
	int op;
	if (present && it->scan && !fresh && row->known && row->in_live && row->live_rid == at)
		op = 0; /* not new: its state is at its rowid */
	else if (present)
		op = (it->ins || !row->known || !row->exists || row->parked) ? OP_UPSERT : OP_UPDATE;
	else if (row->known)
		op = row->exists ? OP_DELETE : 0; /* a parked row only by zila_store_delete_row() */
	else
		/* A deleted row no state is found for was inserted since the last seal, or its
		 * state was left at another rowid by an INSERT OR REPLACE of its key (no capture
		 * names that rowid). The delete goes out either way: in the first case it deletes
		 * nothing anywhere, in the second it is not lost. */
		op = it->del && t->has_rowid ? OP_DELETE : 0;
	if (op == OP_UPDATE && it->mask == 0)
		op = 0;
	/* A new row, or a new value in a UNIQUE column, may have displaced another row
	 * (REPLACE): the seal counts the table's rows at the end (seal_gone). So may a row
	 * written since the last seal and deleted again, which leaves only its delete: one
	 * whose row no state describes (inserted since: no trigger records that) or whose
	 * state is at another rowid than the row deleted had (its key written again). */
	if (t->uniq_mask != 0 && (it->ins || op == OP_UPSERT || (it->mask & t->uniq_mask) != 0))
		t->maybe_gone = true;
	if (!present && it->del && t->uniq_mask != 0 &&
	    (!row->known || !row->in_live || !it->has_hint || row->live_rid != it->hint))
		t->maybe_gone = true;
	if (op != 0 && row->known && strcmp(row->part, part) != 0) {
		zila_log(ZILA_LOG_ERROR, "a row of '%s' moved from partition '%s' to '%s'; zila keeps the old one",
			 t->name, row->part, part);
		op = 0;
	}
	if (op == 0) {
		/* A row back in the table whose state is elsewhere (at its old rowid, or by key):
		 * moved to its rowid. */
		if (present && t->has_rowid && ROW_VISIBLE(row) && !(row->in_live && row->live_rid == at) &&
		    (r = row_save(s, t, &it->pk, row)) != 0)
			r = store_db_error(s, z->err, "cannot save row state");
		goto out;
	}
	if (!fresh && (r = builder_for(z, part, it->date, it->when, &b)) != 0)
		goto out;
	if (!fresh && (r = builder_above(z, b, t, row, op, it->mask)) != 0)
		goto out;
	int di = dir_index(z, b, t);
	if (di < 0) {
		r = di;
		goto out;
	}
	struct ver v = { b->hlc, s->self_id, b->seq };
	struct zila_buf *c = &b->changes;
	r = zila_buf_put_varint(c, (uint64_t)di);
	r = r ? r : zila_buf_put_u8(c, (uint8_t)op);
	r = r ? r : val_put(c, &it->pk);
	if (op == OP_UPSERT) {
		for (int i = 0; r == 0 && i < t->ncols; i++) {
			if (i == t->pk)
				continue;
			struct zval val;
			val_from_column(&val, sel, i);
			r = val_put(c, &val);
			if (r == 0 && row->known && row->cver[i].hlc != 0)
				r = store_conflicts_settle(s, t, &it->pk, i, row->cver[i].hlc);
			row->cver[i] = v;
		}
		row->cver[t->pk] = v;
		row->exists = true;
		row->parked = PARK_NONE;
		row->ever = v;
	} else if (op == OP_UPDATE) {
		int n = 0;
		for (int i = 0; i < t->ncols; i++)
			if (i != t->pk && (it->mask >> (i < MASK_BITS ? i : MASK_BITS)) & 1)
				n++;
		r = r ? r : zila_buf_put_varint(c, (uint64_t)n);
		for (int i = 0; r == 0 && i < t->ncols; i++) {
			if (i == t->pk || !((it->mask >> (i < MASK_BITS ? i : MASK_BITS)) & 1))
				continue;
			struct zval val;
			val_from_column(&val, sel, i);
			r = zila_buf_put_varint(c, (uint64_t)(i < t->pk ? i : i - 1));
			r = r ? r : val_put(c, &val);
			if (r == 0 && row->cver[i].hlc != 0)
				r = store_conflicts_settle(s, t, &it->pk, i, row->cver[i].hlc);
			row->cver[i] = v;
		}
	} else {
		if (row->parked != PARK_NONE) {
			sqlite3_stmt *d = s->st_park_del;
			sqlite3_bind_int64(d, 1, t->id);
			val_bind(d, 2, &it->pk);
			r = sqlite3_step(d) == SQLITE_DONE ? 0 : ZILA_EDB;
			sqlite3_reset(d);
			sqlite3_clear_bindings(d);
		}
		row->exists = false;
		row->parked = PARK_NONE;
		row->ever = v;
	}
	if (r != 0) {
		r = zila_error_set(z->err, r, "cannot encode a change of '%s'", t->name);
		goto out;
	}
	part_copy(row->part, part);
	b->nchanges++;
	z->nchanges++;
	if (!fresh && (r = row_save(s, t, &it->pk, row)) != 0) {
		r = store_db_error(s, z->err, "cannot save row state");
		goto out;
	}
	if (!it->by_rid)
		sqlite3_reset(sel);
	/* Local orphans are parked as remote ones are, so every replica agrees. Parking
	 * deletes from tables, so the scan of rowids starts again after it. */
	if (op != OP_DELETE && t->nfk > 0) {
		if ((r = row_load(s, t, &it->pk, row, true)) == 0 && !row_fk_ok(s, t, row->vals)) {
			scan_stop(z);
			r = row_park(s, t, &it->pk, row, PARK_ORPHAN, NULL);
		}
	} else if (op == OP_DELETE && t->nchild > 0) {
		scan_stop(z);
		struct zval *vals = calloc((size_t)t->ncols, sizeof(*vals));
		if (vals == NULL)
			r = ZILA_ENOMEM;
		else {
			vals[t->pk] = it->pk;
			r = park_children(s, t, vals, NULL, 0);
			free(vals);
		}
	}
	if (r != 0)
		r = store_db_error(s, z->err, "cannot park an orphan");
	if (r == 0 && b->changes.len >= CUT_FIRST && b->changes.len >= cut_at(z, b)) {
		b->ncut++;
		if ((r = flush(z, b)) == 0)
			r = builder_open(z, b);
	}
out:
	if (!it->by_rid)
		sqlite3_reset(sel);
	return r;
}

static int hw_get(struct zila_store *s, const struct table *t, int64_t *hw)
{
	sqlite3_stmt *st = s->st_hw_get;
	sqlite3_bind_int64(st, 1, t->id);
	int rc = sqlite3_step(st);
	*hw = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : ZILA_EDB;
}

static int hw_set(struct zila_store *s, const struct table *t, int64_t hw)
{
	sqlite3_stmt *st = s->st_hw_set;
	sqlite3_bind_int64(st, 1, t->id);
	sqlite3_bind_int64(st, 2, hw);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : ZILA_EDB;
}

/* The number of rows of t past the high-water rowid hw. */
static int count_past(struct table *t, int64_t hw, int64_t *n)
{
	sqlite3_bind_int64(t->count_new, 1, hw);
	int rc = sqlite3_step(t->count_new);
	*n = rc == SQLITE_ROW ? sqlite3_column_int64(t->count_new, 0) : 0;
	sqlite3_reset(t->count_new);
	return rc == SQLITE_ROW ? 0 : ZILA_EDB;
}

/* Whether zila_live holds, at rid, the state of the key in column col of row. */
static bool live_names(struct zila_store *s, const struct table *t, int64_t rid, sqlite3_stmt *row, int col)
{
	sqlite3_stmt *st = s->st_live_get;
	struct zval a, b;
	sqlite3_bind_int64(st, 1, t->id);
	sqlite3_bind_int64(st, 2, rid);
	bool same = false;
	if (sqlite3_step(st) == SQLITE_ROW) {
		val_from_column(&a, st, 0);
		val_from_column(&b, row, col);
		same = val_equal(&a, &b);
	}
	sqlite3_reset(st);
	return same;
}

static int cmp_rid(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static int push_rid(int64_t **v, size_t *n, size_t *cap, int64_t rid)
{
	if (*n == *cap) {
		size_t nc = *cap ? 2 * *cap : 64;
		int64_t *nv = realloc(*v, nc * sizeof(**v));
		if (nv == NULL)
			return ZILA_ENOMEM;
		*v = nv;
		*cap = nc;
	}
	(*v)[(*n)++] = rid;
	return 0;
}

static int seal_rows_at(struct sealer *z, struct table *t, int64_t *rids, size_t n)
{
	int r = 0;
	qsort(rids, n, sizeof(*rids), cmp_rid);
	for (size_t i = 0; r == 0 && i < n; i++) {
		struct item it = { .tid = t->id, .by_rid = true, .rid = rids[i], .ins = true, .scan = true };
		r = seal_item(z, &it);
	}
	scan_stop(z);
	return r;
}

/* Rows at or below hw that the last seal did not see, going down from hw (seal_reused):
 * a row whose state is not at its rowid is new, unless a delete in dels (sorted) freed its
 * rowid (found by that); the first row whose state is at its rowid and that no delete
 * freed was there at the last seal, and so is every row below it. */
static int walk_down(struct zila_store *s, struct table *t, int64_t hw, const int64_t *dels, size_t nrun,
		     int64_t **found, size_t *nfound, size_t *capf)
{
	sqlite3_stmt *down = t->sel_down;
	int r = 0, rc = SQLITE_DONE;
	sqlite3_bind_int64(down, 1, hw);
	while (r == 0 && (rc = sqlite3_step(down)) == SQLITE_ROW) {
		int64_t rid = sqlite3_column_int64(down, 1);
		bool freed = nrun > 0 && bsearch(&rid, dels, nrun, sizeof(*dels), cmp_rid) != NULL;
		if (live_names(s, t, rid, down, 0)) {
			if (!freed)
				break; /* there since the last seal */
			continue;      /* deleted and inserted again: its delete seals it */
		}
		/* (found already when a delete freed it) */
		if (!freed)
			r = push_rid(found, nfound, capf, rid);
	}
	if (r == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
		r = ZILA_EDB;
	sqlite3_reset(down);
	return r;
}

/* Keeps the rows walk_down() found for seal_reused_rows(). */
static int keep_reused(struct sealer *z, struct table *t, int64_t **found, size_t *nfound, size_t *capf)
{
	struct reused *nr = realloc(z->reused, (z->nreused + 1) * sizeof(*nr));
	if (nr == NULL)
		return ZILA_ENOMEM;
	z->reused = nr;
	z->reused[z->nreused++] = (struct reused){ t, *found, *nfound };
	*found = NULL;
	*nfound = *capf = 0;
	return 0;
}

/* Finds the rows given a rowid at or below a table's high-water rowid since the last seal,
 * through the deletes in zila_pending (each records the rowid it freed), while every state
 * is where the last seal left it; seal_reused_rows() seals them after the captured changes,
 * like the rows past the mark, so that they join the group (the entry) of the transaction
 * sealed last instead of opening one of their own before it:
 * - a row at a rowid a delete freed (a writer may name the rowid) is new when the state
 *   there is not its own;
 * - SQLite gives a new row the rowid after the highest, so it gives one at or below the
 *   mark only after the row at the mark was deleted, and that delete (or one of a row past
 *   the mark) is in zila_pending. Such rows are then found going down from the mark: a row
 *   is never given a rowid below one present, so below the first row whose state is at
 *   its rowid and that was not deleted since, every row is as sealed.
 * What neither finds (a rowid of the writer's choosing that no delete freed) the sweep
 * does (zila_store_sweep). */
static int seal_reused(struct sealer *z)
{
	struct zila_store *s = z->s;
	sqlite3_stmt *st = s->st_pend_dels;
	int64_t *pairs = NULL, *found = NULL;
	size_t n = 0, cap = 0, nfound = 0, capf = 0;
	int r = ZILA_EDB;
	int rc;
	for (int i = 0; i < s->ntables; i++)
		s->tables[i]->down_walked = false;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n + 2 > cap) {
			cap = cap ? 2 * cap : 256;
			int64_t *np = realloc(pairs, cap * sizeof(*pairs));
			if (np == NULL) {
				r = ZILA_ENOMEM;
				goto out;
			}
			pairs = np;
		}
		pairs[n++] = sqlite3_column_int64(st, 0);
		pairs[n++] = sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		goto out;
	r = 0;
	/* pairs: (tid, rid) sorted; one table's deleted rowids are a run of them */
	for (size_t i = 0; r == 0 && i < n;) {
		size_t j = i;
		while (j < n && pairs[j] == pairs[i])
			j += 2;
		struct table *t = store_table_by_id(s, pairs[i]);
		int64_t hw, top = pairs[j - 1];
		size_t nrun = (j - i) / 2;
		int64_t *dels = malloc(nrun * sizeof(*dels));
		if (dels == NULL) {
			r = ZILA_ENOMEM;
			break;
		}
		for (size_t k = 0; k < nrun; k++)
			dels[k] = pairs[i + 2 * k + 1];
		i = j;
		if (t == NULL || t->sel_down == NULL || (r = hw_get(s, t, &hw)) != 0) {
			free(dels);
			continue;
		}
		sqlite3_stmt *down = t->sel_down;
		nfound = 0;
		/* A rowid a delete freed may hold a row inserted there by rowid. */
		for (size_t k = 0; r == 0 && k < nrun; k++) {
			if (dels[k] > hw || (k > 0 && dels[k] == dels[k - 1]))
				continue;
			sqlite3_bind_int64(down, 1, dels[k]);
			rc = sqlite3_step(down);
			if (rc == SQLITE_ROW && sqlite3_column_int64(down, 1) == dels[k] &&
			    !live_names(s, t, dels[k], down, 0))
				r = push_rid(&found, &nfound, &capf, dels[k]);
			else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
				r = ZILA_EDB;
			sqlite3_reset(down);
		}
		/* (a table with UNIQUE columns always: see below) */
		if (r == 0 && (top >= hw || t->uniq_mask != 0))
			r = walk_down(s, t, hw, dels, nrun, &found, &nfound, &capf);
		free(dels);
		t->down_walked = true;
		if (r == 0 && nfound > 0) {
			zila_log(ZILA_LOG_DEBUG, "%zu rows of '%s' inserted at rowids freed by deletes", nfound, t->name);
			r = keep_reused(z, t, &found, &nfound, &capf);
		}
	}
	/* A REPLACE removes the rows in the way of a UNIQUE value without a trigger, so no
	 * delete above names the rowid it freed: when it freed the highest, the next row
	 * inserted took that rowid, at or below the mark (the lab's seed 7: the row and the
	 * displaced row's delete were never sealed). Such rows are found going down from the
	 * mark as above; a table that holds no such row costs one step and one look-up. */
	for (int i = 0; r == 0 && i < s->ntables; i++) {
		struct table *t = s->tables[i];
		int64_t hw;
		bool walked = t->down_walked;
		t->down_walked = false;
		if (walked || t->sel_down == NULL || t->uniq_mask == 0)
			continue;
		if ((r = hw_get(s, t, &hw)) == 0)
			r = walk_down(s, t, hw, NULL, 0, &found, &nfound, &capf);
		if (r == 0 && nfound > 0) {
			zila_log(ZILA_LOG_DEBUG, "%zu rows of '%s' inserted at rowids freed by a REPLACE", nfound, t->name);
			r = keep_reused(z, t, &found, &nfound, &capf);
		}
	}
out:
	if (r == ZILA_EDB)
		r = store_db_error(s, z->err, "cannot read captured deletes");
	else if (r != 0)
		r = zila_error_set(z->err, r, "out of memory");
	sqlite3_reset(st);
	free(pairs);
	free(found);
	return r;
}

static int seal_reused_rows(struct sealer *z)
{
	int r = 0;
	for (size_t i = 0; r == 0 && i < z->nreused; i++)
		r = seal_rows_at(z, z->reused[i].t, z->reused[i].rids, z->reused[i].n);
	for (size_t i = 0; i < z->nreused; i++)
		free(z->reused[i].rids);
	free(z->reused);
	z->reused = NULL;
	z->nreused = 0;
	return r;
}

/* Rows past a table's high-water rowid: inserted since the last seal, or written by zila
 * (their states are at their rowids: nothing to seal). They are sealed in rowid order,
 * SEAL_BATCH rows a batch; the mark moves with each batch, in the batch's transaction.
 * Once all are sealed the table is clean: the commit puts the mark at its highest rowid. */
static int seal_new(struct sealer *z, struct table *t, size_t *nbatch, size_t max_batches, bool *more)
{
	struct zila_store *s = z->s;
	sqlite3_stmt *st = t->sel_rowid;
	int64_t hw;
	int r, rc = SQLITE_DONE;
	if ((r = hw_get(s, t, &hw)) != 0)
		return store_db_error(s, z->err, "cannot read a high-water rowid");
	int64_t last = hw;
	size_t n = 0;
	scan_stop(z);
	while (last < INT64_MAX) {
		if (z->scan_t != t) {
			sqlite3_bind_int64(st, 1, last + 1);
			if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
				sqlite3_reset(st);
				break;
			}
			z->scan_t = t;
			z->scan_rid = sqlite3_column_int64(st, t->ncols);
		}
		struct item it = { .tid = t->id, .by_rid = true, .rid = z->scan_rid, .ins = true, .scan = true,
				   .date = t->reseal ? z->reseal_hlc : 0 };
		if ((r = seal_item(z, &it)) != 0)
			return r;
		last = it.rid;
		if (++n % SEAL_BATCH == 0) {
			if ((r = hw_set(s, t, last)) != 0)
				return store_db_error(s, z->err, "cannot move a high-water rowid");
			if (++*nbatch == max_batches) {
				*more = true;
				scan_stop(z);
				return 0;
			}
		}
		/* on to the next row, unless parking moved the statement off this one */
		if (z->scan_t == t) {
			if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
				scan_stop(z);
				break;
			}
			z->scan_rid = sqlite3_column_int64(st, t->ncols);
		}
	}
	scan_stop(z);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return store_db_error(s, z->err, t->name);
	if (last != hw && (r = hw_set(s, t, last)) != 0)
		return store_db_error(s, z->err, "cannot move a high-water rowid");
	t->hw_clean = true;
	return 0;
}

/* Keeps a key (for seal_gone) with where its state is (0: by key, in zila_rows). */
static int keep_key(struct zila_buf *keys, int64_t **rids, size_t *n, size_t *cap, int64_t rid, const struct zval *k)
{
	uint8_t tag = (uint8_t)k->type;
	int r = push_rid(rids, n, cap, rid);
	r = r ? r : zila_buf_put(keys, &tag, 1);
	return r ? r : (k->type == VAL_TEXT || k->type == VAL_BLOB ? zila_buf_put_lenbytes(keys, k->p, k->len)
								  : zila_buf_put_u64be(keys, (uint64_t)k->i));
}

/* The keys of t whose states in zila_rows say the row is shown (no copy of its values): a
 * state moved out of zila_live for another key's (a REPLACE on the rowid), or any state of
 * a WITHOUT ROWID table. seal_gone() asks the table for each. */
static int gone_in_rows(struct sealer *z, struct table *t, struct zila_buf *keys, int64_t **rids, size_t *n,
			size_t *cap)
{
	sqlite3_stmt *st = NULL;
	int r = 0, rc;
	if (sqlite3_prepare_v2(z->s->db, "SELECT pk FROM zila_rows WHERE tid = ? AND dead IS NULL", -1, &st, NULL) !=
	    SQLITE_OK)
		return store_db_error(z->s, z->err, t->name);
	sqlite3_bind_int64(st, 1, t->id);
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct zval k;
		val_from_column(&k, st, 0);
		if (keep_key(keys, rids, n, cap, 0, &k) != 0)
			r = zila_error_set(z->err, ZILA_ENOMEM, "out of memory");
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_db_error(z->s, z->err, t->name);
	sqlite3_finalize(st);
	return r;
}

/* One walk of a rowid table's rows and its zila_live records, both in rowid order, for what
 * does not match: a row no record names (its rowid in *found, when found is not NULL: a row
 * inserted where no capture or mark sees it), and a record whose key the row at its rowid
 * does not have (kept in keys and rids: a row gone without a trigger, or a record left
 * over, which gone_settle() tells apart). */
static int walk_states(struct sealer *z, struct table *t, struct zila_buf *keys, int64_t **rids, size_t *n,
		       size_t *cap, int64_t **found, size_t *nfound, size_t *capf, int64_t *nstates)
{
	struct zila_store *s = z->s;
	sqlite3_stmt *live = s->st_live_scan, *down = t->sel_down;
	int r = 0, rc, lrc;
	scan_stop(z);
	sqlite3_bind_int64(live, 1, t->id);
	sqlite3_bind_int64(down, 1, INT64_MAX);
	lrc = sqlite3_step(live);
	rc = sqlite3_step(down);
	while (r == 0 && (lrc == SQLITE_ROW || rc == SQLITE_ROW)) {
		int64_t lrid = lrc == SQLITE_ROW ? sqlite3_column_int64(live, 0) : INT64_MIN;
		int64_t rid = rc == SQLITE_ROW ? sqlite3_column_int64(down, 1) : INT64_MIN;
		bool same = false;
		if (lrc == SQLITE_ROW && rc == SQLITE_ROW && lrid == rid) {
			struct zval a, b;
			val_from_column(&a, live, 1);
			val_from_column(&b, down, 0);
			same = val_equal(&a, &b);
		}
		if (!same && rc == SQLITE_ROW && rid >= lrid && found != NULL && push_rid(found, nfound, capf, rid) != 0)
			r = ZILA_ENOMEM;
		if (!same && lrc == SQLITE_ROW && lrid >= rid) {
			struct zval k;
			val_from_column(&k, live, 1);
			if (r == 0 && keep_key(keys, rids, n, cap, lrid, &k) != 0)
				r = ZILA_ENOMEM;
		}
		bool step_live = lrc == SQLITE_ROW && lrid >= rid, step_rows = rc == SQLITE_ROW && rid >= lrid;
		if (step_live && nstates != NULL)
			(*nstates)++;
		if (step_live)
			lrc = sqlite3_step(live);
		if (step_rows)
			rc = sqlite3_step(down);
	}
	if (r == ZILA_ENOMEM)
		r = zila_error_set(z->err, r, "out of memory");
	else if (rc != SQLITE_DONE || lrc != SQLITE_DONE)
		r = store_db_error(s, z->err, t->name);
	sqlite3_reset(down);
	sqlite3_reset(live);
	return r;
}

/* Seals as deletes the keys in keys/rids (walk_states) and those whose states zila_rows
 * keeps as shown (gone_in_rows) that the table no longer holds anywhere; a record left
 * over is removed. */
static int gone_settle(struct sealer *z, struct table *t, struct zila_buf *keys, int64_t **rids_, size_t *n_,
		       size_t *cap, size_t *ngone)
{
	struct zila_store *s = z->s;
	int r = gone_in_rows(z, t, keys, rids_, n_, cap);
	int64_t *rids = *rids_;
	size_t n = *n_;
	struct zila_view in = zila_buf_view(keys);
	size_t ndel = 0;
	for (size_t i = 0; r == 0 && i < n; i++) {
		struct item it = { .tid = t->id, .del = true, .has_hint = rids[i] != 0, .hint = rids[i] };
		uint8_t tag;
		r = zila_view_get_u8(&in, &tag);
		it.pk.type = tag;
		if (r == 0 && (tag == VAL_TEXT || tag == VAL_BLOB)) {
			struct zila_view kv;
			r = zila_view_get_lenbytes(&in, SIZE_MAX, &kv);
			it.pk.p = kv.p;
			it.pk.len = kv.len;
		} else if (r == 0) {
			uint64_t x;
			r = zila_view_get_u64be(&in, &x);
			it.pk.i = (int64_t)x;
		}
		if (r != 0) {
			r = zila_error_set(z->err, r, "cannot read back a key of '%s'", t->name);
			break;
		}
		/* A record in zila_live at a rowid that no longer shows its key is the key's state
		 * only when no other is: a REPLACE of the key itself gave the row a new rowid, where
		 * the seal wrote a state of its own (the row is in the table), or the row was parked
		 * or deleted since (its state is in zila_rows). Such a record is left over: it goes. */
		val_bind(t->sel, 1, &it.pk);
		int src = sqlite3_step(t->sel);
		sqlite3_reset(t->sel);
		if (src != SQLITE_ROW && src != SQLITE_DONE) {
			r = store_db_error(s, z->err, t->name);
			break;
		}
		bool other = src == SQLITE_ROW;
		if (other && it.has_hint) {
			/* ...only once the row has a state at its new rowid */
			struct rowstate at;
			row_init(&at, t->ncols);
			r = row_locate(t, &it.pk, &at);
			if (r == 0 && at.has_rid) {
				sqlite3_stmt *g = s->st_live_get;
				sqlite3_bind_int64(g, 1, t->id);
				sqlite3_bind_int64(g, 2, at.rid);
				struct zval k;
				other = sqlite3_step(g) == SQLITE_ROW && (val_from_column(&k, g, 0), val_equal(&k, &it.pk));
				sqlite3_reset(g);
			}
			row_release(&at);
			if (r != 0) {
				r = store_db_error(s, z->err, t->name);
				break;
			}
			if (!other)
				continue;
		}
		if (!other && it.has_hint) {
			sqlite3_bind_int64(s->st_row_get, 1, t->id);
			val_bind(s->st_row_get, 2, &it.pk);
			src = sqlite3_step(s->st_row_get);
			sqlite3_reset(s->st_row_get);
			sqlite3_clear_bindings(s->st_row_get);
			if (src != SQLITE_ROW && src != SQLITE_DONE) {
				r = store_db_error(s, z->err, t->name);
				break;
			}
			other = src == SQLITE_ROW;
		}
		if (other) {
			if (!it.has_hint)
				continue; /* a state in zila_rows of a row the table shows: the seal moves it */
			sqlite3_stmt *d = s->st_live_del;
			sqlite3_bind_int64(d, 1, t->id);
			sqlite3_bind_int64(d, 2, it.hint);
			val_bind(d, 3, &it.pk);
			src = sqlite3_step(d);
			sqlite3_reset(d);
			sqlite3_clear_bindings(d);
			if (src != SQLITE_DONE) {
				r = store_db_error(s, z->err, t->name);
				break;
			}
			t->nlive_delta -= sqlite3_changes(s->db);
			continue;
		}
		r = seal_item(z, &it);
		ndel++;
	}
	if (r == 0 && ndel > 0) {
		zila_log(ZILA_LOG_INFO, "%zu rows of '%s' were removed without a delete (REPLACE); sealed as deletes",
			 ndel, t->name);
		*ngone += ndel;
	}
	return r;
}

/* Rows SQLite removed without a trigger: REPLACE conflict resolution on a UNIQUE index (or
 * on the rowid) deletes the rows in the way and fires no delete trigger unless the writer's
 * connection has recursive_triggers on. live_too: walk the table against zila_live (a rowid
 * table); else only the states zila_rows keeps as shown. */
static int seal_gone(struct sealer *z, struct table *t, bool live_too, size_t *ngone)
{
	struct zila_buf keys;
	int64_t *rids = NULL;
	size_t n = 0, cap = 0;
	int r = 0;
	zila_buf_init(&keys, 1u << 30);
	if (live_too)
		r = walk_states(z, t, &keys, &rids, &n, &cap, NULL, NULL, NULL, NULL);
	if (r == 0)
		r = gone_settle(z, t, &keys, &rids, &n, &cap, ngone);
	free(rids);
	zila_buf_release(&keys);
	return r;
}

/* The number of zila_live records of t now: as committed, plus what this transaction
 * changed (codec.c). recount: count them (zila_tables.nlive unknown, or after a walk, which
 * also sets right a count that went wrong). */
static int nlive_of(struct zila_store *s, struct table *t, bool recount, int64_t *n)
{
	sqlite3_stmt *st = s->st_nlive_get;
	int rc;
	*n = 0;
	sqlite3_bind_int64(st, 1, t->id);
	rc = sqlite3_step(st);
	bool known = rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL;
	if (known)
		*n = sqlite3_column_int64(st, 0) + t->nlive_delta;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return ZILA_EDB;
	if (known && !recount)
		return 0;
	st = s->st_nlive_set;
	sqlite3_bind_int64(st, 1, t->id);
	sqlite3_bind_int64(st, 2, t->nlive_delta);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return ZILA_EDB;
	return recount ? 0 : nlive_of(s, t, false, n);
}

/* After every captured change and new row is sealed: each table where a sealed change may
 * have displaced rows shows exactly the rows zila_live has states of, unless SQLite removed
 * some without a trigger (fewer rows) or a writer inserted at a rowid of its choosing below
 * the mark (more): then the table is walked (seal_gone, sweep_table). */
static int sweep_table(struct sealer *z, struct table *t, size_t *nswept);
static int check_gone(struct sealer *z, struct table *t)
{
	struct zila_store *s = z->s;
	int64_t rows = 0, live = 0;
	size_t n = 0;
	t->maybe_gone = false;
	if (t->count_all == NULL)
		return 0;
	int rc = sqlite3_step(t->count_all);
	if (rc == SQLITE_ROW)
		rows = sqlite3_column_int64(t->count_all, 0);
	sqlite3_reset(t->count_all);
	if (rc != SQLITE_ROW || nlive_of(s, t, false, &live) != 0)
		return store_db_error(s, z->err, t->name);
	int r = 0;
	if (rows < live)
		r = seal_gone(z, t, true, &n);
	else if (rows > live)
		r = sweep_table(z, t, &n);
	else if (t->evicted)
		r = seal_gone(z, t, false, &n);
	t->evicted = false;
	return r;
}

static int nlive_recount(struct zila_store *s, struct table *t)
{
	int64_t nlive;
	return nlive_of(s, t, true, &nlive);
}

/* Sets the count of t's zila_live records to n, as counted now (this transaction's changes
 * included, which nlive_delta holds apart until the commit). */
static int nlive_put(struct zila_store *s, struct table *t, int64_t n)
{
	sqlite3_stmt *st = store_stmt(s, "UPDATE zila_tables SET nlive = ?2 WHERE id = ?1");
	if (st == NULL)
		return ZILA_EDB;
	sqlite3_bind_int64(st, 1, t->id);
	sqlite3_bind_int64(st, 2, n - t->nlive_delta);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : ZILA_EDB;
}

/* Rows no capture and no mark finds: inserted at a rowid the writer chose, at or below the
 * high-water rowid, where no delete since the last seal freed it (rowid 0 before the first
 * row, a gap an older delete left). Every row of the table is compared with the state at
 * its rowid, both read in rowid order. */
static int sweep_table(struct sealer *z, struct table *t, size_t *nswept)
{
	struct zila_store *s = z->s;
	struct zila_buf keys;
	int64_t *found = NULL, *rids = NULL;
	size_t n = 0, cap = 0, nk = 0, capk = 0;
	zila_buf_init(&keys, 1u << 30);
	/* one walk finds both: rows no state names, and states whose row is gone */
	int64_t nstates = 0;
	size_t before = *nswept;
	int r = walk_states(z, t, &keys, &rids, &nk, &capk, &found, &n, &cap, &nstates);
	bool all_match = nk == 0 && n == 0;
	if (r == 0 && n > 0) {
		zila_log(ZILA_LOG_INFO, "%zu rows of '%s' were inserted at rowids of their own choosing; sealed now",
			 n, t->name);
		r = seal_rows_at(z, t, found, n);
		*nswept += n;
	}
	/* then rows removed without a trigger, whatever removed them, and the count of states
	 * set right (what a crash or an older zila may have left) */
	if (r == 0)
		r = gone_settle(z, t, &keys, &rids, &nk, &capk, nswept);
	/* When every record matched its row and nothing was sealed, the walk has just counted
	 * them: a count(*) over zila_live again was a tenth of a sweep that found nothing. */
	if (r == 0 && (all_match && *nswept == before ? nlive_put(s, t, nstates) : nlive_recount(s, t)) != 0)
		r = store_db_error(s, z->err, t->name);
	t->maybe_gone = false;
	free(found);
	free(rids);
	zila_buf_release(&keys);
	return r;
}

int store_hw_check(struct zila_store *s)
{
	sqlite3_stmt *del = s->st_pend_del_from;
	int r = 0;
	for (int i = 0; r == 0 && i < s->ntables; i++) {
		struct table *t = s->tables[i];
		int64_t hw;
		if (t->count_new == NULL)
			continue;
		if ((r = hw_get(s, t, &hw)) != 0)
			break;
		int64_t nnew;
		bool none_new = count_past(t, hw, &nnew) == 0 && nnew == 0;
		sqlite3_bind_int64(del, 1, t->id);
		sqlite3_bind_int64(del, 2, hw);
		bool no_reuse = sqlite3_step(del) == SQLITE_ROW && sqlite3_column_int(del, 0) == 0;
		sqlite3_reset(del);
		t->hw_clean = none_new && no_reuse;
	}
	return r;
}

/* Which tables zila_rows holds no state of: their new rows need no search there. */
static int rows_none(struct zila_store *s)
{
	sqlite3_stmt *st = NULL;
	int r = ZILA_EDB;
	if (sqlite3_prepare_v2(s->db, "SELECT EXISTS(SELECT 1 FROM zila_rows WHERE tid = ?)", -1, &st, NULL) != SQLITE_OK)
		return r;
	r = 0;
	for (int i = 0; r == 0 && i < s->ntables; i++) {
		struct table *t = s->tables[i];
		sqlite3_bind_int64(st, 1, t->id);
		if (sqlite3_step(st) == SQLITE_ROW)
			t->rows_none = sqlite3_column_int(st, 0) == 0;
		else
			r = ZILA_EDB;
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	return r;
}

/* Appends t to order after the tables its foreign keys point at (a cycle is cut where it
 * closes). mark: 1 while t's parents are being placed, 2 once t is placed. */
static void place_table(struct zila_store *s, struct table *t, struct table **order, int *n, uint8_t *mark)
{
	int i = 0;
	while (s->tables[i] != t)
		i++;
	if (mark[i] != 0)
		return;
	mark[i] = 1;
	for (int k = 0; k < t->nfk; k++)
		if (t->fks[k].parent != NULL && t->fks[k].parent != t)
			place_table(s, t->fks[k].parent, order, n, mark);
	mark[i] = 2;
	order[(*n)++] = t;
}

/* The order in which the rows new in each table are sealed: parents before children.
 * Captured changes go in the order they were made, but new rows of rowid tables have no
 * capture (seal_new), so this order is all that keeps a parent's entry before its
 * child's; taken in the tables' own order (by name) a clone's children arrive before
 * their parents, are parked as orphans and materialised again when the parents come
 * (store_settle), which doubled the clone. Returns NULL when out of memory. */
static struct table **seal_order(struct zila_store *s)
{
	struct table **order = malloc(((size_t)s->ntables + 1) * sizeof(*order));
	uint8_t *mark = calloc((size_t)s->ntables + 1, 1);
	bool ok = order != NULL && mark != NULL;
	int n = 0;
	for (int i = 0; ok && i < s->ntables; i++)
		place_table(s, s->tables[i], order, &n, mark);
	free(mark);
	if (!ok) {
		free(order);
		order = NULL;
	}
	return order;
}

/* The date of the rows of a table sealed again (rearm): when they changed is not known,
 * only that it was after this replica's last seal, so they are dated just past everything
 * it holds (the HLC's rule for what it receives); writes made elsewhere since win. */
static int reseal_date(struct sealer *z)
{
	sqlite3_stmt *st = NULL;
	int r = ZILA_EDB;
	if (sqlite3_prepare_v2(z->s->db, "SELECT max(hlc) FROM zila_entries", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		z->reseal_hlc = (uint64_t)sqlite3_column_int64(st, 0) + 1;
		r = 0;
	}
	sqlite3_finalize(st);
	return r != 0 ? store_db_error(z->s, z->err, "cannot read the entries' dates") : 0;
}

int store_seal_locked(struct zila_store *s, size_t *nentries, struct zila_error *err)
{
	bool more;
	return store_seal_some(s, nentries, SIZE_MAX, &more, NULL, err);
}

int store_seal_some(struct zila_store *s, size_t *nentries, size_t max_batches, bool *more, size_t *swept,
		    struct zila_error *err)
{
	struct sealer z;
	struct table **order = NULL;
	int r = ZILA_ENOMEM;
	memset(&z, 0, sizeof(z));
	z.s = s;
	z.err = err;
	z.bulk = -1;
	/* The HLC as kept in the replica: another process (zila bundle apply, while a daemon
	 * runs) may have applied entries since this handle last read or wrote it, and the
	 * floor must be past their versions too. */
	uint64_t kept = (uint64_t)store_meta_int(s, "hlc", 0);
	if (kept > s->hlc)
		s->hlc = kept;
	z.floor = s->hlc;
	z.items = malloc(SEAL_BATCH * sizeof(*z.items));
	z.buckets = malloc(NBUCKETS * sizeof(*z.buckets));
	zila_buf_init(&z.arena, 1u << 30);
	zila_buf_init(&z.entry, ZILA_ENTRY_MAX * 2);
	zila_buf_init(&z.deps, 1 << 20);
	zila_buf_init(&z.raw, ZILA_ENTRY_MAX * 2);
	zila_buf_init(&z.packed, ZILA_ENTRY_MAX * 3);
	zila_buf_init(&z.key, ZILA_ENTRY_MAX);
	z.zc = ZSTD_createCCtx();
	row_init(&z.row, 1);
	z.row_cols = 1;
	*more = false;
	if (z.items == NULL || z.buckets == NULL)
		goto out;
	if ((r = rows_none(s)) != 0) {
		r = store_db_error(s, err, "cannot read row states");
		goto out;
	}
	if ((r = seal_reused(&z)) != 0)
		goto out;
	size_t nbatch;
	for (nbatch = 0;; nbatch++) {
		if (nbatch == max_batches) {
			*more = true;
			break;
		}
		int64_t last = 0;
		if ((r = read_batch(&z, &last)) != 0) {
			if (!z.failed)
				r = store_db_error(s, err, "cannot read captured changes");
			goto out;
		}
		if (last == 0)
			break; /* (a batch of captures all dropped still goes: read_batch said why) */
		for (size_t i = 0; i < z.nitems; i++)
			if ((r = seal_item(&z, &z.items[i])) != 0)
				goto out;
		scan_stop(&z);
		sqlite3_stmt *st = NULL;
		if (sqlite3_prepare_v2(s->db, "DELETE FROM zila_pending WHERE rowid <= ?", -1, &st, NULL) == SQLITE_OK) {
			sqlite3_bind_int64(st, 1, last);
			r = sqlite3_step(st) == SQLITE_DONE ? 0 : ZILA_EDB;
		} else {
			r = ZILA_EDB;
		}
		sqlite3_finalize(st);
		if (r != 0) {
			r = store_db_error(s, err, "cannot clear captured changes");
			goto out;
		}
	}
	if ((r = seal_reused_rows(&z)) != 0)
		goto out;
	if ((order = seal_order(s)) == NULL) {
		r = zila_error_set(err, ZILA_ENOMEM, "out of memory");
		goto out;
	}
	for (int i = 0; !*more && i < s->ntables; i++) {
		struct table *t = order[i];
		if (t->reseal && z.reseal_hlc == 0 && (r = reseal_date(&z)) != 0)
			goto out;
		if (t->sel_down != NULL && (r = seal_new(&z, t, &nbatch, max_batches, more)) != 0)
			goto out;
		/* and the rows deleted while nothing captured it */
		size_t ngone = 0;
		if (!*more && t->reseal && (r = seal_gone(&z, t, false, &ngone)) == 0)
			t->reseal = false;
		if (r != 0)
			goto out;
	}
	for (int i = 0; swept != NULL && !*more && i < s->ntables; i++) {
		struct table *t = order[i];
		if ((r = t->sel_down != NULL ? sweep_table(&z, t, swept) : seal_gone(&z, t, false, swept)) != 0)
			goto out;
	}
	/* rows a merge found removed without a capture (row_materialize): sealed as deletes */
	for (int i = 0; !*more && i < s->ntables; i++) {
		struct table *t = order[i];
		size_t ngone = 0;
		if (!t->gone_seen)
			continue;
		if ((r = t->sel_down != NULL ? sweep_table(&z, t, &ngone) : seal_gone(&z, t, false, &ngone)) != 0)
			goto out;
		t->gone_seen = false;
	}
	for (int i = 0; !*more && i < s->ntables; i++)
		if ((order[i]->maybe_gone || order[i]->evicted) && order[i]->sel_down != NULL &&
		    (r = check_gone(&z, order[i])) != 0)
			goto out;
	for (size_t i = 0; i < z.nb; i++)
		if ((r = flush(&z, &z.b[i])) != 0)
			goto out;
	if (z.nentries > 0 && (r = store_save_hlc(s)) != 0) {
		r = store_db_error(s, err, "cannot save the clock");
		goto out;
	}
	r = 0;
	if (nentries)
		*nentries = z.nentries;
out:
	scan_stop(&z);
	free(order);
	for (size_t i = 0; i < z.nreused; i++)
		free(z.reused[i].rids);
	free(z.reused);
	for (size_t i = 0; i < z.nb; i++)
		zila_buf_release(&z.b[i].changes);
	free(z.b);
	free(z.items);
	free(z.buckets);
	zila_buf_release(&z.arena);
	zila_buf_release(&z.entry);
	zila_buf_release(&z.deps);
	zila_buf_release(&z.raw);
	zila_buf_release(&z.packed);
	zila_buf_release(&z.key);
	ZSTD_freeCCtx(z.zc);
	row_release(&z.row);
	return r;
}

/* A table a database tool rebuilt the way they change a table's structure (create a copy,
 * copy the rows, drop the table, rename the copy) lost zila's triggers with the old table,
 * and what was written to it since was not captured. Its triggers are made again, and each
 * of its rows is sealed again as it is now (seal_new, rearm's date), its rows gone as
 * deletes (seal_gone): the copy gave the rows new rowids, so their states go to zila_rows,
 * where they are found by key, and back to zila_live at their rowids as they are sealed. */
static int rearm(struct zila_store *s, struct zila_error *err)
{
	int n = 0, r = store_load_tables(s, err); /* its columns may have changed too */
	if (r == 0 && store_armed_check(s, &n) != 0)
		r = store_db_error(s, err, "cannot read the schema");
	for (int i = 0; r == 0 && i < s->ntables; i++) {
		struct table *t = s->tables[i];
		if (!t->unarmed)
			continue;
		if ((r = store_arm_table(s, t, err)) != 0)
			break;
		sqlite3_stmt *st = NULL;
		static const char *const q[] = {
			"INSERT OR REPLACE INTO zila_rows(tid, pk, st, dead) SELECT tid, pk, st, NULL FROM zila_live WHERE tid = ?",
			"DELETE FROM zila_live WHERE tid = ?",
		};
		for (int k = 0; r == 0 && k < 2; k++) {
			if (sqlite3_prepare_v2(s->db, q[k], -1, &st, NULL) == SQLITE_OK) {
				sqlite3_bind_int64(st, 1, t->id);
				r = sqlite3_step(st) == SQLITE_DONE ? 0 : ZILA_EDB;
			} else {
				r = ZILA_EDB;
			}
			sqlite3_finalize(st);
			if (k == 1)
				t->nlive_delta -= sqlite3_changes(s->db);
		}
		/* rows of a rowid table are found again past its mark; a WITHOUT ROWID table's
		 * are captured as inserts, as zila_store_track does */
		if (r == 0 && t->has_rowid) {
			r = hw_set(s, t, INT64_MIN);
		} else if (r == 0) {
			char *ins = sqlite3_mprintf("INSERT INTO zila_pending(tid, pk, m) SELECT %lld, \"%w\", -1 FROM \"%w\"",
						    (long long)t->id, t->cols[t->pk], t->name);
			r = ins == NULL ? ZILA_ENOMEM : sqlite3_exec(s->db, ins, NULL, NULL, NULL) == SQLITE_OK ? 0 : ZILA_EDB;
			sqlite3_free(ins);
		}
		if (r != 0) {
			r = store_db_error(s, err, t->name);
			break;
		}
		t->unarmed = false;
		t->reseal = true;
		zila_log(ZILA_LOG_WARN,
			 "the table '%s' lost zila's change capture (another program rebuilt it, as database tools do to "
			 "change a table's structure): capture is on again, and its rows are sealed again as they are now",
			 t->name);
		char v[300];
		snprintf(v, sizeof(v), "%llu %s", (unsigned long long)store_now_ms(s), t->name);
		if ((r = zila_store_meta_set(s, ZILA_META_REARMED, v)) != 0)
			r = store_db_error(s, err, "cannot note the table sealed again");
	}
	return r;
}

static int seal_once(struct zila_store *s, size_t *nentries, size_t *swept, struct zila_error *err);

/* A seal that met a capture of a table its cache did not know yet (tracked by another
 * program between the look at the schema and the write lock) made nothing: it is made
 * again once, on the tables read anew. */
static int seal(struct zila_store *s, size_t *nentries, size_t *swept, struct zila_error *err)
{
	size_t n = 0, again = 0;
	s->seal_unknown = false;
	int r = seal_once(s, &n, swept, err);
	if (r != 0 && s->seal_unknown && sqlite3_get_autocommit(s->db)) {
		zila_log(ZILA_LOG_INFO, "the tracked tables changed while sealing: read again, and sealed again");
		zila_error_clear(err);
		r = seal_once(s, &again, swept, err);
	}
	if (nentries)
		*nentries = n + again;
	return r;
}

static int seal_once(struct zila_store *s, size_t *nentries, size_t *swept, struct zila_error *err)
{
	/* Bounded transactions keep the WAL and the write lock small for large backlogs;
	 * each one seals and clears its changes atomically. */
	bool more = true;
	int64_t npending = 0;
	int nunarmed = 0;
	if (nentries)
		*nentries = 0;
	int rf = store_schema_follow(s, err); /* another program changed the schema (schema.c) */
	if (rf != 0)
		return rf;
	if (store_armed_check(s, &nunarmed) != 0)
		return store_db_error(s, err, "cannot read the schema");
	bool rescope = store_scope_stale(s);
	bool gone = false;
	for (int i = 0; i < s->ntables; i++)
		gone |= s->tables[i]->gone_seen;
	/* Nothing captured: no write lock is needed, so a sync can send and receive while
	 * another program holds a long write transaction (its changes are not committed yet). */
	if (swept == NULL && nunarmed == 0 && !rescope && !gone && zila_store_pending(s, &npending) == 0 &&
	    npending == 0)
		return 0;
	while (more) {
		size_t n = 0;
		int r = store_begin(s, err);
		if (r != 0)
			return r;
		if (nunarmed > 0) {
			r = rearm(s, err);
			nunarmed = 0;
		}
		if (r == 0 && rescope) {
			r = store_scope_arm(s, err);
			rescope = false;
		}
		if (r == 0)
			r = store_seal_some(s, &n, SEAL_CHUNK, &more, swept, err);
		if (r == 0)
			r = store_settle(s, NULL);
		if (r != 0) {
			store_rollback(s);
			return r;
		}
		if ((r = store_commit(s, err)) != 0)
			return r;
		if (nentries)
			*nentries += n;
	}
	return 0;
}

int zila_store_seal(struct zila_store *s, size_t *nentries, struct zila_error *err)
{
	return seal(s, nentries, NULL, err);
}

int zila_store_sweep(struct zila_store *s, size_t *nentries, size_t *nrows, struct zila_error *err)
{
	size_t swept = 0;
	int r = seal(s, nentries, &swept, err);
	if (nrows)
		*nrows = swept;
	return r;
}

int store_delete_captured(struct zila_store *s, struct table *t, const struct zval *pk)
{
	sqlite3_stmt *st = NULL;
	/* Visible rows are deleted from the table; the pending record is what seals it. */
	int r = sqlite3_prepare_v2(s->db, "INSERT INTO zila_pending(tid, pk, m, part) VALUES (?, ?, NULL, NULL)", -1,
				   &st, NULL) == SQLITE_OK ? 0 : ZILA_EDB;
	if (r == 0) {
		sqlite3_bind_int64(st, 1, t->id);
		val_bind(st, 2, pk);
		r = sqlite3_step(st) == SQLITE_DONE ? 0 : ZILA_EDB;
	}
	sqlite3_finalize(st);
	if (r == 0) {
		val_bind(t->del, 1, pk);
		r = sqlite3_step(t->del) == SQLITE_DONE ? 0 : ZILA_EDB;
		sqlite3_reset(t->del);
	}
	return r;
}

int zila_store_delete_row(struct zila_store *s, const char *table, const struct zila_value *pk,
			  struct zila_error *err)
{
	/* the tables as another program may have changed them: the seal in this transaction
	 * must know every table whose changes it meets */
	int r = store_schema_follow(s, err);
	if (r != 0)
		return r;
	struct table *t = store_table_by_name(s, table, strlen(table));
	if (t == NULL)
		return zila_error_set(err, ZILA_ENOTFOUND, "table '%s' is not tracked", table);
	if ((r = store_begin(s, err)) != 0)
		return r;
	r = store_delete_captured(s, t, pk);
	if (r == 0)
		r = store_seal_locked(s, NULL, err);
	if (r == 0)
		r = store_settle(s, NULL);
	if (r != 0) {
		store_rollback(s);
		return err && err->code ? r : store_db_error(s, err, "cannot delete the row");
	}
	return store_commit(s, err);
}

static int pending(struct zila_store *s, int64_t *out);

int zila_store_pending(struct zila_store *s, int64_t *out)
{
	/* one read transaction for its 2 x ntables statements, each of which would take and
	 * drop the database's read lock on its own (fcntl locks: most of a small apply) */
	bool own = sqlite3_get_autocommit(s->db) != 0 && zila_store_snapshot_begin(s) == 0;
	int r = pending(s, out);
	if (own)
		zila_store_snapshot_end(s);
	return r;
}

static int pending(struct zila_store *s, int64_t *out)
{
	sqlite3_stmt *st = store_stmt(s, "SELECT count(*) FROM zila_pending");
	int r = ZILA_EDB;
	*out = 0;
	if (st != NULL && sqlite3_step(st) == SQLITE_ROW) {
		*out = sqlite3_column_int64(st, 0);
		r = 0;
	}
	if (st != NULL)
		sqlite3_reset(st);
	/* and the rows past the high-water rowids (rows zila wrote there since count too,
	 * until a seal finds their states at their rowids) */
	for (int i = 0; r == 0 && i < s->ntables; i++) {
		struct table *t = s->tables[i];
		int64_t hw;
		if (t->count_new == NULL)
			continue;
		if ((r = hw_get(s, t, &hw)) != 0)
			break;
		int64_t nnew;
		if ((r = count_past(t, hw, &nnew)) == 0)
			*out += nnew;
		/* and a row at the mark that a REPLACE's freed rowid gave a new row (seal_reused):
		 * its state is not there (one step and one look-up) */
		if (r == 0 && t->sel_down != NULL && t->uniq_mask != 0) {
			sqlite3_bind_int64(t->sel_down, 1, hw);
			int rc = sqlite3_step(t->sel_down);
			if (rc == SQLITE_ROW && !live_names(s, t, sqlite3_column_int64(t->sel_down, 1), t->sel_down, 0))
				*out += 1;
			else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
				r = ZILA_EDB;
			sqlite3_reset(t->sel_down);
		}
	}
	/* and every row of a table that lost its capture: the seal seals them again (rearm),
	 * so the daemon seals as soon as another program has rebuilt a table */
	int nunarmed = 0;
	if (r == 0 && (r = store_armed_check(s, &nunarmed)) == 0 && nunarmed > 0) {
		for (int i = 0; r == 0 && i < s->ntables; i++) {
			struct table *t = s->tables[i];
			if (!t->unarmed || t->count_all == NULL)
				continue;
			int rc = sqlite3_step(t->count_all);
			if (rc == SQLITE_ROW)
				*out += sqlite3_column_int64(t->count_all, 0);
			sqlite3_reset(t->count_all);
			r = rc == SQLITE_ROW ? 0 : ZILA_EDB;
		}
	}
	return r;
}
