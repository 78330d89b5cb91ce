/* Collecting deleted rows' merge state (proto/CHECKPOINT.md, "Collecting deleted rows"): HQ
 * drops a deleted row's registers once every device that may hold its district has taken
 * what a checkpoint covering them covers; a replica that merges a checkpoint covering a
 * deleted row it holds, and not carrying it, drops it as the checkpoint's maker did. */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "zila/log.h"

/* Kept at HQ only (made when first needed, no replica format of their own): the feed heads
 * of each checkpoint kept there, by its HLC, and what each device has acknowledged: acked,
 * the newest checkpoint all of whose entries it holds and past which everything it writes is
 * causally after them; pending, the checkpoint kept at the start of its last completed
 * exchange (acked once the next one completes: what it sealed during that one is here then). */
static const char TABLES_SQL[] =
	"CREATE TABLE IF NOT EXISTS zila_ckpt_heads(part TEXT NOT NULL, hlc INTEGER NOT NULL, heads BLOB NOT NULL,"
	" PRIMARY KEY(part, hlc)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS zila_acks(device BLOB NOT NULL, part TEXT NOT NULL, pending INTEGER NOT NULL"
	" DEFAULT 0, acked INTEGER NOT NULL DEFAULT 0, at INTEGER, PRIMARY KEY(device, part)) WITHOUT ROWID;";

static int tables(struct zila_store *s)
{
	return sqlite3_exec(s->db, TABLES_SQL, NULL, NULL, NULL) == SQLITE_OK ? 0 : ZILA_EDB;
}

uint64_t store_collected_mark(struct zila_store *s, const char *part)
{
	sqlite3_stmt *st = store_stmt(s, "SELECT CAST(v AS INTEGER) FROM zila_meta WHERE k = 'collected.' || ?");
	uint64_t mark = 0;
	if (st == NULL)
		return 0;
	sqlite3_bind_text(st, 1, part, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0)
		mark = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return mark;
}

int store_collected_note(struct zila_store *s, const char *part, uint64_t hlc)
{
	if (hlc == 0 || hlc <= store_collected_mark(s, part))
		return 0;
	sqlite3_stmt *st = store_stmt(s, "INSERT OR REPLACE INTO zila_meta(k, v) VALUES ('collected.' || ?, ?)");
	if (st == NULL)
		return ZILA_EDB;
	sqlite3_bind_text(st, 1, part, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)hlc);
	int r = sqlite3_step(st) == SQLITE_DONE ? 0 : ZILA_EDB;
	sqlite3_reset(st);
	return r;
}

/* A floor: per feed of one partition (by local origin id), the sequence number up to which
 * a deleted row's versions may be collected. */
struct floor {
	char part[ZILA_PART_MAX + 1];
	int64_t *oids;
	uint64_t *seqs;
	size_t n;
	const int64_t *tids; /* only rows of these tables (NULL: every table) */
	size_t ntids;
	uint64_t top; /* the newest version of a row collect_scan dropped */
};

static void floor_release(struct floor *f)
{
	free(f->oids);
	free(f->seqs);
	memset(f, 0, sizeof(*f));
}

static uint64_t floor_seq(const struct floor *f, int64_t oid)
{
	for (size_t i = 0; i < f->n; i++)
		if (f->oids[i] == oid)
			return f->seqs[i];
	return 0;
}

/* heads: nfeeds × { u8[32] origin, u64be seq }. */
static int heads_encode(const struct zila_vector *v, struct zila_buf *out)
{
	int r = 0;
	for (size_t i = 0; r == 0 && i < v->nheads; i++) {
		r = zila_buf_put(out, v->heads[i].origin, 32);
		r = r ? r : zila_buf_put_u64be(out, v->heads[i].seq);
	}
	return r;
}

static int floor_from_heads(struct zila_store *s, struct zila_view in, struct floor *f)
{
	size_t n = in.len / 40;
	if (in.len % 40 != 0)
		return ZILA_EFORMAT;
	if ((f->oids = calloc(n + 1, sizeof(*f->oids))) == NULL || (f->seqs = calloc(n + 1, sizeof(*f->seqs))) == NULL)
		return ZILA_ENOMEM;
	int r = 0;
	for (size_t i = 0; r == 0 && i < n; i++) {
		const uint8_t *key;
		r = zila_view_get_bytes(&in, 32, &key);
		r = r ? r : zila_view_get_u64be(&in, &f->seqs[i]);
		r = r ? r : store_origin_id(s, key, &f->oids[i]);
		f->n += r == 0;
	}
	return r;
}

int store_ckpt_heads_note(struct zila_store *s, const char *part, uint64_t hlc, struct zila_view bytes)
{
	sqlite3_stmt *q = NULL;
	struct zila_vector v = { 0 };
	struct zila_buf b;
	zila_buf_init(&b, 64u << 20);
	if (s->wscoped) /* only HQ counts acknowledgements */
		return 0;
	int r = tables(s);
	r = r ? r : zila_checkpoint_vector(bytes, &v);
	r = r ? r : heads_encode(&v, &b);
	if (r == 0 && sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO zila_ckpt_heads(part, hlc, heads) VALUES (?, ?, ?)", -1,
					 &q, NULL) != SQLITE_OK)
		r = ZILA_EDB;
	if (r == 0) {
		sqlite3_bind_text(q, 1, part, -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 2, (int64_t)hlc);
		sqlite3_bind_blob(q, 3, b.len ? (const void *)b.p : "", (int)b.len, SQLITE_STATIC); /* no feeds: empty */
		r = sqlite3_step(q) == SQLITE_DONE ? 0 : ZILA_EDB;
	}
	sqlite3_finalize(q);
	zila_vector_release(&v);
	zila_buf_release(&b);
	return r;
}

int zila_store_ack_note(struct zila_store *s, const uint8_t device[32], const char *part, uint64_t ckpt_hlc)
{
	sqlite3_stmt *q = NULL;
	int r = tables(s);
	if (r == 0 && sqlite3_prepare_v2(s->db,
					 "INSERT INTO zila_acks(device, part, pending, acked, at) VALUES (?1, ?2, ?3, 0, ?4)"
					 " ON CONFLICT(device, part) DO UPDATE SET acked = max(acked, pending),"
					 " pending = max(excluded.pending, pending), at = excluded.at",
					 -1, &q, NULL) != SQLITE_OK)
		r = ZILA_EDB;
	if (r == 0) {
		sqlite3_bind_blob(q, 1, device, 32, SQLITE_STATIC);
		sqlite3_bind_text(q, 2, part, -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 3, (int64_t)ckpt_hlc);
		sqlite3_bind_int64(q, 4, (int64_t)(store_now_ms(s) / 1000));
		r = sqlite3_step(q) == SQLITE_DONE ? 0 : ZILA_EDB;
	}
	sqlite3_finalize(q);
	return r;
}

int zila_store_ack_get(struct zila_store *s, const uint8_t device[32], const char *part, uint64_t *acked)
{
	sqlite3_stmt *q = NULL;
	*acked = 0;
	int r = tables(s);
	if (r == 0 && sqlite3_prepare_v2(s->db, "SELECT acked FROM zila_acks WHERE device = ? AND part = ?", -1, &q, NULL) !=
			      SQLITE_OK)
		r = ZILA_EDB;
	if (r == 0) {
		sqlite3_bind_blob(q, 1, device, 32, SQLITE_STATIC);
		sqlite3_bind_text(q, 2, part, -1, SQLITE_STATIC);
		if (sqlite3_step(q) == SQLITE_ROW)
			*acked = (uint64_t)sqlite3_column_int64(q, 0);
	}
	sqlite3_finalize(q);
	return r;
}

/* The checkpoint of part kept here (its HLC) that bounds collection: nothing past what this
 * replica has covered. 0 when none is kept, or while an entry of part waits for a schema (one
 * may name a row collected meanwhile): nothing of part is collected then. */
static int own_ckpt(struct zila_store *s, const char *part, uint64_t *own)
{
	sqlite3_stmt *k = NULL;
	*own = 0;
	if (sqlite3_prepare_v2(s->db, "SELECT hlc FROM zila_checkpoints WHERE part = ?", -1, &k, NULL) != SQLITE_OK)
		return ZILA_EDB;
	sqlite3_bind_text(k, 1, part, -1, SQLITE_STATIC);
	if (sqlite3_step(k) == SQLITE_ROW)
		*own = (uint64_t)sqlite3_column_int64(k, 0);
	sqlite3_finalize(k);
	k = NULL;
	if (*own != 0 && sqlite3_prepare_v2(s->db,
					    "SELECT 1 FROM zila_entries e JOIN zila_feeds f ON f.id = e.feed WHERE f.part = ?"
					    " AND e.applied = 0 LIMIT 1",
					    -1, &k, NULL) == SQLITE_OK) {
		sqlite3_bind_text(k, 1, part, -1, SQLITE_STATIC);
		if (sqlite3_step(k) == SQLITE_ROW)
			*own = 0;
	}
	sqlite3_finalize(k);
	return 0;
}

/* The checkpoint of part a holder has acknowledged here (its HLC), 0 when none; a is
 * "SELECT acked FROM zila_acks WHERE device = ? AND part = ?", reset after. */
static uint64_t acked_of(sqlite3_stmt *a, const uint8_t device[32], const char *part)
{
	sqlite3_bind_blob(a, 1, device, 32, SQLITE_STATIC);
	sqlite3_bind_text(a, 2, part, -1, SQLITE_STATIC);
	uint64_t hlc = sqlite3_step(a) == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(a, 0) : 0;
	sqlite3_reset(a);
	return hlc;
}

/* The floor of the checkpoint of part at hlc, from the heads kept of it; *ok false when they
 * are not kept (no heads to go by). q is "SELECT heads FROM zila_ckpt_heads WHERE part = ?1
 * AND hlc = ?2", reset after. */
static int heads_floor(struct zila_store *s, sqlite3_stmt *q, const char *part, uint64_t hlc, struct floor *g, bool *ok)
{
	*ok = false;
	part_copy(g->part, part);
	sqlite3_bind_text(q, 1, part, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, (int64_t)hlc);
	if (sqlite3_step(q) != SQLITE_ROW) {
		sqlite3_reset(q);
		return 0;
	}
	int r = floor_from_heads(s, zila_view_make(sqlite3_column_blob(q, 0), (size_t)sqlite3_column_bytes(q, 0)), g);
	sqlite3_reset(q);
	*ok = r == 0;
	return r;
}

/* Lowers f to g feed by feed (a feed g lacks: 0); an empty f takes g's. */
static void floor_lower(struct floor *f, struct floor *g)
{
	if (f->oids == NULL) {
		f->oids = g->oids;
		f->seqs = g->seqs;
		f->n = g->n;
		g->oids = NULL;
		g->seqs = NULL;
		return;
	}
	for (size_t j = 0; j < f->n; j++) {
		uint64_t o = floor_seq(g, f->oids[j]);
		if (o < f->seqs[j])
			f->seqs[j] = o;
	}
}

static const char ACKED_SQL[] = "SELECT acked FROM zila_acks WHERE device = ? AND part = ?";
static const char HEADS_SQL[] = "SELECT heads FROM zila_ckpt_heads WHERE part = ?1 AND hlc = ?2";

/* The floor of h->part: per feed, the lowest head among the checkpoints each holder has
 * acknowledged and the one kept here. *ok false: none is kept here, or a holder has
 * acknowledged none this replica knows the heads of. */
static int floor_of(struct zila_store *s, const struct zila_holders *h, struct floor *f, bool *ok)
{
	sqlite3_stmt *a = NULL, *q = NULL;
	uint64_t own = 0;
	int r = ZILA_EDB;
	*ok = false;
	part_copy(f->part, h->part);
	if (sqlite3_prepare_v2(s->db, ACKED_SQL, -1, &a, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, HEADS_SQL, -1, &q, NULL) != SQLITE_OK || (r = own_ckpt(s, h->part, &own)) != 0)
		goto out;
	if (own == 0)
		goto out;
	bool found = true;
	for (size_t i = 0; r == 0 && found && i <= h->ndevices; i++) {
		uint64_t hlc = i < h->ndevices ? acked_of(a, h->devices[i], h->part) : own;
		found = hlc != 0; /* not acknowledged: it holds collection back */
		struct floor g = { 0 };
		if (found && (r = heads_floor(s, q, h->part, hlc, &g, &found)) == 0 && found)
			floor_lower(f, &g);
		floor_release(&g);
	}
	*ok = r == 0 && found;
out:
	sqlite3_finalize(a);
	sqlite3_finalize(q);
	return r;
}

/* Drops the heads of checkpoints of h->part no holder can acknowledge any more: older than
 * each holder's acknowledged one, or (none yet) its pending one, or (none) the one kept here,
 * which is what its next exchange will note. */
static int prune_heads(struct zila_store *s, const struct zila_holders *h)
{
	sqlite3_stmt *a = NULL, *d = NULL;
	int r = ZILA_EDB;
	uint64_t low = UINT64_MAX;
	if (sqlite3_prepare_v2(s->db, "SELECT CASE WHEN acked > 0 THEN acked ELSE pending END FROM zila_acks WHERE device = ? AND part = ?", -1, &a,
			       NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db,
			       "DELETE FROM zila_ckpt_heads WHERE part = ?1 AND hlc < min(?2, coalesce((SELECT hlc FROM"
			       " zila_checkpoints WHERE part = ?1), 0))",
			       -1, &d, NULL) != SQLITE_OK)
		goto out;
	for (size_t i = 0; i < h->ndevices; i++) {
		sqlite3_bind_blob(a, 1, h->devices[i], 32, SQLITE_STATIC);
		sqlite3_bind_text(a, 2, h->part, -1, SQLITE_STATIC);
		if (sqlite3_step(a) == SQLITE_ROW) {
			/* acked when there is one: the oldest it may still stand on */
			uint64_t v = (uint64_t)sqlite3_column_int64(a, 0);
			if (v != 0 && v < low)
				low = v;
		}
		sqlite3_reset(a);
	}
	sqlite3_reset(a);
	sqlite3_bind_text(d, 1, h->part, -1, SQLITE_STATIC);
	sqlite3_bind_int64(d, 2, low > INT64_MAX ? INT64_MAX : (int64_t)low);
	r = sqlite3_step(d) == SQLITE_DONE ? 0 : ZILA_EDB;
out:
	sqlite3_finalize(a);
	sqlite3_finalize(d);
	return r;
}

static bool covered(const struct floor *f, const struct ver *v)
{
	return v->origin == 0 || v->seq <= floor_seq(f, v->origin);
}

static void top_of(struct floor *f, const struct ver *v)
{
	if (v->hlc > f->top)
		f->top = v->hlc;
}

/* Whether f covers every register of a row (its existence and each column). */
static bool covers_row(const struct floor *f, const struct table *t, const struct rowstate *row)
{
	bool all = covered(f, &row->ever);
	for (int c = 0; all && c < t->ncols; c++)
		all = covered(f, &row->cver[c]);
	return all;
}

/* Calls fn for every deleted row a collection may drop: its state in zila_rows, not parked,
 * of a partitioned table, written by some device; except (seen) those in temp.zila_ck_seen.
 * The row is borrowed for the call; non-zero from fn stops the walk. */
typedef int (*deleted_fn)(void *ctx, struct table *t, const struct zval *pk, const struct rowstate *row);
static int deleted_each(struct zila_store *s, bool seen, deleted_fn fn, void *ctx)
{
	sqlite3_stmt *q = NULL;
	struct rowstate row;
	int row_cols = 1, r = ZILA_EDB, rc;
	row_init(&row, 1);
	if (sqlite3_prepare_v2(s->db,
			       seen ? "SELECT r.tid, r.pk FROM zila_rows r WHERE NOT EXISTS (SELECT 1"
				      " FROM zila_parked p WHERE p.tid = r.tid AND p.pk = r.pk) AND NOT EXISTS (SELECT 1 FROM"
				      " temp.zila_ck_seen c WHERE c.tid = r.tid AND c.pk = r.pk)"
				    : "SELECT r.tid, r.pk FROM zila_rows r WHERE NOT EXISTS (SELECT 1"
				      " FROM zila_parked p WHERE p.tid = r.tid AND p.pk = r.pk)",
			       -1, &q, NULL) != SQLITE_OK)
		goto out;
	r = 0;
	while (r == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct table *t = store_table_by_id(s, sqlite3_column_int64(q, 0));
		if (t == NULL || t->pcol < 0)
			continue;
		struct zval pk;
		val_from_column(&pk, q, 1);
		if (row_cols != t->ncols) {
			row_release(&row);
			row_init(&row, t->ncols);
			row_cols = t->ncols;
		}
		if ((r = row_load(s, t, &pk, &row, false)) != 0)
			break;
		if (!row.known || !row.in_rows || row.exists || row.parked != PARK_NONE || row.ever.origin == 0)
			continue;
		r = fn(ctx, t, &pk, &row);
	}
out:
	sqlite3_finalize(q);
	row_release(&row);
	return r;
}

struct scan {
	struct floor *fl;
	size_t nfl;
	sqlite3_stmt *gone;
};

static int scan_one(void *ctx, struct table *t, const struct zval *pk, const struct rowstate *row)
{
	struct scan *sc = ctx;
	struct floor *f = NULL;
	for (size_t i = 0; i < sc->nfl && f == NULL; i++) {
		bool in = sc->fl[i].tids == NULL;
		for (size_t k = 0; !in && k < sc->fl[i].ntids; k++)
			in = sc->fl[i].tids[k] == t->id;
		if (in && strcmp(sc->fl[i].part, row->part) == 0)
			f = &sc->fl[i];
	}
	if (f == NULL || !covers_row(f, t, row))
		return 0;
	top_of(f, &row->ever);
	for (int c = 0; c < t->ncols; c++)
		top_of(f, &row->cver[c]);
	sqlite3_bind_int64(sc->gone, 1, t->id);
	int r = val_bind(sc->gone, 2, pk);
	if (r == 0 && sqlite3_step(sc->gone) != SQLITE_DONE)
		r = ZILA_EDB;
	sqlite3_reset(sc->gone);
	return r;
}

/* Drops every deleted row (deleted_each) of a floor's partition whose registers the floor
 * covers, except (seen) those in temp.zila_ck_seen; raises the partition's collected mark to
 * the newest version dropped (a key inserted again here is dated past the delete it no longer
 * holds: proto/ENTRY.md, "HLC"). */
static int collect_scan(struct zila_store *s, struct floor *fl, size_t nfl, bool seen, size_t *ndropped)
{
	struct scan sc = { fl, nfl, NULL };
	int r = ZILA_EDB;
	if (sqlite3_exec(s->db, "CREATE TEMP TABLE IF NOT EXISTS zila_gone(tid, pk); DELETE FROM temp.zila_gone", NULL,
			 NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "INSERT INTO temp.zila_gone(tid, pk) VALUES (?, ?)", -1, &sc.gone, NULL) != SQLITE_OK)
		goto out;
	r = deleted_each(s, seen, scan_one, &sc);
	if (r == 0 && sqlite3_exec(s->db, "DELETE FROM zila_rows WHERE (tid, pk) IN (SELECT tid, pk FROM temp.zila_gone)",
				   NULL, NULL, NULL) != SQLITE_OK)
		r = ZILA_EDB;
	if (r == 0)
		*ndropped += (size_t)sqlite3_changes(s->db);
	for (size_t i = 0; r == 0 && i < nfl; i++)
		r = store_collected_note(s, fl[i].part, fl[i].top);
out:
	sqlite3_finalize(sc.gone);
	return r;
}

int store_ckpt_seen_reset(struct zila_store *s)
{
	return sqlite3_exec(s->db,
			    "CREATE TEMP TABLE IF NOT EXISTS zila_ck_seen(tid, pk, PRIMARY KEY(tid, pk)) WITHOUT ROWID;"
			    " DELETE FROM temp.zila_ck_seen",
			    NULL, NULL, NULL) == SQLITE_OK
		       ? 0
		       : ZILA_EDB;
}

int store_ckpt_seen(struct zila_store *s, sqlite3_stmt **st, int64_t tid, const struct zval *pk)
{
	if (*st == NULL && sqlite3_prepare_v2(s->db, "INSERT OR IGNORE INTO temp.zila_ck_seen(tid, pk) VALUES (?, ?)", -1, st,
					      NULL) != SQLITE_OK)
		return ZILA_EDB;
	sqlite3_bind_int64(*st, 1, tid);
	int r = val_bind(*st, 2, pk);
	if (r == 0 && sqlite3_step(*st) != SQLITE_DONE)
		r = ZILA_EDB;
	sqlite3_reset(*st);
	return r;
}

/* The rows of t in f's partition the table shows or parks, covered by f and not in
 * temp.zila_ck_seen: deleted here (the delete f covers, collected by its maker), their state
 * dropped. */
static int drop_shown(struct zila_store *s, struct table *t, const struct floor *f, struct zila_apply_stats *st,
		      size_t *ndropped)
{
	sqlite3_stmt *q = NULL;
	struct rowstate row;
	struct zila_buf keys;
	size_t nkeys = 0;
	int r = ZILA_EDB, rc;
	row_init(&row, t->ncols);
	zila_buf_init(&keys, 1u << 30);
	char *sql = sqlite3_mprintf("SELECT \"%w\" FROM \"%w\" x WHERE \"%w\" = ?1 AND NOT EXISTS (SELECT 1 FROM"
				    " temp.zila_ck_seen c WHERE c.tid = ?2 AND c.pk = x.\"%w\") UNION ALL SELECT p.pk FROM"
				    " zila_parked p WHERE p.tid = ?2 AND NOT EXISTS (SELECT 1 FROM temp.zila_ck_seen c WHERE"
				    " c.tid = ?2 AND c.pk = p.pk)",
				    t->cols[t->pk], t->name, t->cols[t->pcol], t->cols[t->pk]);
	if (sql == NULL || sqlite3_prepare_v2(s->db, sql, -1, &q, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(q, 1, f->part, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, t->id);
	r = 0;
	while (r == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct zval pk;
		val_from_column(&pk, q, 0);
		r = val_put(&keys, &pk);
		nkeys++;
	}
	sqlite3_finalize(q);
	q = NULL;
	struct zila_view in = zila_view_make(keys.p, keys.len);
	for (size_t i = 0; r == 0 && i < nkeys; i++) {
		struct zval pk;
		if ((r = val_get(&in, &pk)) != 0 || (r = row_load(s, t, &pk, &row, true)) != 0)
			break;
		if (!row.known || !row.exists || strcmp(row.part, f->part) != 0 || row.ever.origin == 0 ||
		    !covered(f, &row.ever))
			continue;
		bool all = true;
		for (int c = 0; all && c < t->ncols; c++)
			all = covered(f, &row.cver[c]);
		if (!all)
			continue;
		bool was_visible = ROW_VISIBLE(&row);
		row.exists = false;
		if ((r = row_materialize(s, t, &pk, &row, was_visible, st)) != 0)
			break;
		sqlite3_stmt *d = NULL;
		if (sqlite3_prepare_v2(s->db, "DELETE FROM zila_rows WHERE tid = ? AND pk = ?", -1, &d, NULL) != SQLITE_OK)
			r = ZILA_EDB;
		if (r == 0) {
			sqlite3_bind_int64(d, 1, t->id);
			r = val_bind(d, 2, &pk);
			if (r == 0 && sqlite3_step(d) != SQLITE_DONE)
				r = ZILA_EDB;
		}
		sqlite3_finalize(d);
		*ndropped += r == 0;
	}
out:
	sqlite3_free(sql);
	sqlite3_finalize(q);
	zila_buf_release(&keys);
	row_release(&row);
	return r;
}

int store_ckpt_absent_drop(struct zila_store *s, const char *part, struct zila_view bytes, const int64_t *tids,
			   size_t ntids, bool shown, struct zila_apply_stats *st, size_t *ndropped)
{
	struct zila_vector v = { 0 };
	struct floor f = { 0 };
	*ndropped = 0;
	int r = zila_checkpoint_vector(bytes, &v);
	part_copy(f.part, part);
	if (r == 0 && ((f.oids = calloc(v.nheads + 1, sizeof(*f.oids))) == NULL ||
		       (f.seqs = calloc(v.nheads + 1, sizeof(*f.seqs))) == NULL))
		r = ZILA_ENOMEM;
	for (size_t i = 0; r == 0 && i < v.nheads; i++) {
		r = store_origin_id(s, v.heads[i].origin, &f.oids[i]);
		f.seqs[i] = v.heads[i].seq;
		f.n += r == 0;
	}
	f.tids = tids;
	f.ntids = ntids;
	for (size_t i = 0; r == 0 && shown && i < ntids; i++) {
		struct table *t = store_table_by_id(s, tids[i]);
		if (t != NULL && t->pcol >= 0)
			r = drop_shown(s, t, &f, st, ndropped);
	}
	r = r ? r : collect_scan(s, &f, 1, true, ndropped);
	floor_release(&f);
	zila_vector_release(&v);
	return r;
}

int zila_store_collect(struct zila_store *s, const struct zila_holders *h, size_t nh, size_t *ndropped,
		       struct zila_error *err)
{
	struct floor *fl = calloc(nh + 1, sizeof(*fl));
	size_t nfl = 0;
	*ndropped = 0;
	if (fl == NULL)
		return zila_error_set(err, ZILA_ENOMEM, "out of memory");
	int r = store_begin(s, err);
	if (r != 0) {
		free(fl);
		return r;
	}
	r = tables(s);
	for (size_t i = 0; r == 0 && i < nh; i++) {
		bool ok = false;
		if ((r = floor_of(s, &h[i], &fl[nfl], &ok)) == 0 && ok)
			nfl++;
		else
			floor_release(&fl[nfl]);
		r = r ? r : prune_heads(s, &h[i]);
	}
	if (r == 0 && nfl > 0)
		r = collect_scan(s, fl, nfl, false, ndropped);
	for (size_t i = 0; i < nfl; i++)
		floor_release(&fl[i]);
	free(fl);
	if (r != 0) {
		store_rollback(s);
		*ndropped = 0;
		return r == ZILA_ENOMEM ? zila_error_set(err, r, "out of memory")
					: store_db_error(s, err, "cannot collect deleted rows");
	}
	if ((r = store_commit(s, err)) != 0)
		*ndropped = 0;
	else if (*ndropped > 0)
		zila_log(ZILA_LOG_INFO, "collected %zu deleted rows every device of their district has", *ndropped);
	return r;
}

/* --- what holds collection back ------------------------------------------------------ */

/* One partition being looked at: its report, and the floors the rule goes by. */
struct held_part {
	struct zila_held *out;
	bool own_ok;
	struct floor own;
	struct floor *dev; /* [out->nholds]: each holder's acknowledged checkpoint */
	bool *dev_ok;
};

struct held_walk {
	struct held_part *parts;
	size_t nparts; /* sorted by part */
	struct zila_held *extra; /* partitions no checkpoint is kept of: every row waits for one */
	size_t nextra;
};

static int held_cmp(const void *a, const void *b)
{
	return strcmp(((const struct held_part *)a)->out->part, ((const struct held_part *)b)->out->part);
}

/* A deleted row of a partition no checkpoint is kept of: it waits for the first. */
static int held_unkept(struct held_walk *w, const char *part)
{
	for (size_t i = 0; i < w->nextra; i++)
		if (strcmp(w->extra[i].part, part) == 0) {
			w->extra[i].nrows++;
			w->extra[i].nnew++;
			return 0;
		}
	struct zila_held *n = realloc(w->extra, (w->nextra + 1) * sizeof(*n));
	if (n == NULL)
		return ZILA_ENOMEM;
	w->extra = n;
	memset(&n[w->nextra], 0, sizeof(*n));
	part_copy(n[w->nextra].part, part);
	n[w->nextra].nrows = n[w->nextra].nnew = 1;
	w->nextra++;
	return 0;
}

/* A deleted row kept: it waits unless every floor covers it (the collection's rule: the
 * lowest of them, feed by feed, covers it). */
static int held_one(void *ctx, struct table *t, const struct zval *pk, const struct rowstate *row)
{
	struct held_walk *w = ctx;
	(void)pk;
	struct zila_held key;
	struct held_part k = { .out = &key };
	part_copy(key.part, row->part);
	struct held_part *p = w->nparts ? bsearch(&k, w->parts, w->nparts, sizeof(k), held_cmp) : NULL;
	if (p == NULL)
		return held_unkept(w, row->part);
	bool own = p->own_ok && covers_row(&p->own, t, row);
	bool all = own;
	for (size_t i = 0; i < p->out->nholds; i++) {
		bool c = p->dev_ok[i] && covers_row(&p->dev[i], t, row);
		p->out->holds[i].nrows += !c;
		all = all && c;
	}
	p->out->nrows += !all;
	p->out->nnew += !own;
	return 0;
}

/* Why a holder of part holds it back, in facts: its acknowledgement, its last contact and
 * last completed exchange here (zila_acks, zila_peers), whether entries of it are here. */
static int hold_facts(struct zila_store *s, const char *part, struct zila_hold *o)
{
	sqlite3_stmt *q = NULL;
	int r = ZILA_EDB;
	bool met = false;
	if (sqlite3_prepare_v2(s->db,
			       "SELECT acked, at FROM zila_acks WHERE device = ?1 AND part = ?2 UNION ALL"
			       " SELECT NULL, last_sync FROM zila_peers WHERE device = ?1 UNION ALL"
			       " SELECT -1, NULL FROM zila_feeds f JOIN zila_origins o ON o.id = f.origin"
			       " WHERE o.key = ?1 AND f.head > 0",
			       -1, &q, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_blob(q, 1, o->device, 32, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, part, -1, SQLITE_STATIC);
	bool entries = false;
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		int64_t a = sqlite3_column_int64(q, 0), at = sqlite3_column_int64(q, 1);
		bool has_a = sqlite3_column_type(q, 0) != SQLITE_NULL;
		entries |= has_a && a == -1;
		if (has_a && a > 0)
			o->acked_hlc = (uint64_t)a;
		met |= !has_a || a >= 0; /* a completed exchange, or contact in a live session */
		if (sqlite3_column_type(q, 1) != SQLITE_NULL && at > o->last_sync)
			o->last_sync = at;
	}
	if (rc != SQLITE_DONE)
		goto out;
	if (o->acked_hlc != 0)
		o->why = ZILA_HOLD_OLD_ACK;
	else if (met)
		o->why = ZILA_HOLD_NO_ACK;
	else
		o->why = entries ? ZILA_HOLD_BUNDLE_ONLY : ZILA_HOLD_NEVER_SEEN;
	r = 0;
out:
	sqlite3_finalize(q);
	return r;
}

/* Reads the floors of one partition: the checkpoint kept here and each holder's. */
static int held_floors(struct zila_store *s, const struct zila_holders *h, struct held_part *p, sqlite3_stmt *a,
		       sqlite3_stmt *q)
{
	uint64_t own = 0;
	int r = own_ckpt(s, h->part, &own);
	p->out->ckpt_hlc = own;
	if (r == 0 && own != 0)
		r = heads_floor(s, q, h->part, own, &p->own, &p->own_ok);
	p->dev = calloc(h->ndevices + 1, sizeof(*p->dev));
	p->dev_ok = calloc(h->ndevices + 1, sizeof(*p->dev_ok));
	p->out->holds = calloc(h->ndevices + 1, sizeof(*p->out->holds));
	if (r == 0 && (p->dev == NULL || p->dev_ok == NULL || p->out->holds == NULL))
		r = ZILA_ENOMEM;
	for (size_t i = 0; r == 0 && i < h->ndevices; i++) {
		uint64_t hlc = acked_of(a, h->devices[i], h->part);
		memcpy(p->out->holds[i].device, h->devices[i], 32);
		p->out->nholds++;
		if (hlc != 0)
			r = heads_floor(s, q, h->part, hlc, &p->dev[i], &p->dev_ok[i]);
	}
	return r;
}

/* Keeps the partitions with rows waiting, and in each the holders that hold some back. */
static int held_trim(struct zila_store *s, struct zila_held_list *l)
{
	size_t k = 0;
	int r = 0;
	for (size_t i = 0; i < l->nparts; i++) {
		struct zila_held *p = &l->parts[i];
		size_t m = 0;
		for (size_t j = 0; p->nrows > 0 && j < p->nholds; j++)
			if (p->holds[j].nrows > 0)
				p->holds[m++] = p->holds[j];
		p->nholds = m;
		for (size_t j = 0; r == 0 && j < m; j++)
			r = hold_facts(s, p->part, &p->holds[j]);
		if (p->nrows == 0) {
			free(p->holds);
			continue;
		}
		l->parts[k++] = *p;
	}
	l->nparts = k;
	return r;
}

int zila_store_collect_held(struct zila_store *s, const struct zila_holders *h, size_t nh, struct zila_held_list *out,
		    struct zila_error *err)
{
	sqlite3_stmt *a = NULL, *q = NULL;
	struct held_walk w = { 0 };
	memset(out, 0, sizeof(*out));
	int r = tables(s);
	if (r == 0 && (sqlite3_prepare_v2(s->db, ACKED_SQL, -1, &a, NULL) != SQLITE_OK ||
		       sqlite3_prepare_v2(s->db, HEADS_SQL, -1, &q, NULL) != SQLITE_OK))
		r = ZILA_EDB;
	out->parts = calloc(nh + 1, sizeof(*out->parts));
	w.parts = calloc(nh + 1, sizeof(*w.parts));
	if (r == 0 && (out->parts == NULL || w.parts == NULL))
		r = ZILA_ENOMEM;
	for (size_t i = 0; r == 0 && i < nh; i++) {
		w.parts[i].out = &out->parts[i];
		part_copy(out->parts[i].part, h[i].part);
		out->nparts = w.nparts = i + 1;
		r = held_floors(s, &h[i], &w.parts[i], a, q);
	}
	if (r == 0) {
		qsort(w.parts, w.nparts, sizeof(*w.parts), held_cmp);
		r = deleted_each(s, false, held_one, &w);
	}
	for (size_t i = 0; i < w.nparts; i++) {
		floor_release(&w.parts[i].own);
		for (size_t j = 0; w.parts[i].dev != NULL && j <= w.parts[i].out->nholds; j++)
			floor_release(&w.parts[i].dev[j]);
		free(w.parts[i].dev);
		free(w.parts[i].dev_ok);
	}
	free(w.parts);
	if (r == 0 && w.nextra > 0) {
		struct zila_held *n = realloc(out->parts, (out->nparts + w.nextra) * sizeof(*n));
		if (n == NULL)
			r = ZILA_ENOMEM;
		else
			memcpy(n + out->nparts, w.extra, w.nextra * sizeof(*n));
		out->parts = n ? n : out->parts;
		out->nparts += n ? w.nextra : 0;
	}
	free(w.extra);
	r = r ? r : held_trim(s, out);
	sqlite3_finalize(a);
	sqlite3_finalize(q);
	if (r != 0) {
		zila_held_list_release(out);
		return r == ZILA_ENOMEM ? zila_error_set(err, r, "out of memory")
					: store_db_error(s, err, "cannot read what holds collection back");
	}
	return 0;
}

void zila_held_list_release(struct zila_held_list *l)
{
	for (size_t i = 0; l->parts != NULL && i < l->nparts; i++)
		free(l->parts[i].holds);
	free(l->parts);
	memset(l, 0, sizeof(*l));
}

static bool hold_seen_before(const struct zila_held_list *l, size_t part, size_t k)
{
	for (size_t i = 0; i <= part; i++)
		for (size_t j = 0; j < l->parts[i].nholds && (i < part || j < k); j++)
			if (memcmp(l->parts[i].holds[j].device, l->parts[part].holds[k].device, 32) == 0)
				return true;
	return false;
}

void zila_held_list_count(const struct zila_held_list *l, size_t *nheld, size_t *ndevices)
{
	*nheld = *ndevices = 0;
	for (size_t i = 0; i < l->nparts; i++) {
		*nheld += l->parts[i].nholds > 0;
		for (size_t k = 0; k < l->parts[i].nholds; k++)
			*ndevices += !hold_seen_before(l, i, k);
	}
}
