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

/* The floor of h->part: per feed, the lowest head among the checkpoints each holder has
 * acknowledged. *ok false: a holder has acknowledged none this replica knows the heads of. */
static int floor_of(struct zila_store *s, const struct zila_holders *h, struct floor *f, bool *ok)
{
	sqlite3_stmt *a = NULL, *q = NULL;
	int r = ZILA_EDB;
	*ok = false;
	part_copy(f->part, h->part);
	if (sqlite3_prepare_v2(s->db, "SELECT acked FROM zila_acks WHERE device = ? AND part = ?", -1, &a, NULL) !=
		    SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "SELECT heads FROM zila_ckpt_heads WHERE part = ?1 AND hlc = ?2", -1, &q, NULL) !=
		    SQLITE_OK)
		goto out;
	/* the checkpoint kept here bounds it too: nothing past what this replica has covered */
	uint64_t own = 0;
	sqlite3_stmt *k = NULL;
	if (sqlite3_prepare_v2(s->db, "SELECT hlc FROM zila_checkpoints WHERE part = ?", -1, &k, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(k, 1, h->part, -1, SQLITE_STATIC);
	if (sqlite3_step(k) == SQLITE_ROW)
		own = (uint64_t)sqlite3_column_int64(k, 0);
	sqlite3_finalize(k);
	/* nor while entries of it wait for a schema: one may name a row collected meanwhile */
	if (own != 0 && sqlite3_prepare_v2(s->db,
					   "SELECT 1 FROM zila_entries e JOIN zila_feeds f ON f.id = e.feed WHERE f.part = ?"
					   " AND e.applied = 0 LIMIT 1",
					   -1, &k, NULL) == SQLITE_OK) {
		sqlite3_bind_text(k, 1, h->part, -1, SQLITE_STATIC);
		if (sqlite3_step(k) == SQLITE_ROW)
			own = 0;
		sqlite3_finalize(k);
	}
	r = 0;
	if (own == 0)
		goto out;
	for (size_t i = 0; r == 0 && i <= h->ndevices; i++) {
		uint64_t hlc = own;
		if (i < h->ndevices) {
			sqlite3_bind_blob(a, 1, h->devices[i], 32, SQLITE_STATIC);
			sqlite3_bind_text(a, 2, h->part, -1, SQLITE_STATIC);
			hlc = sqlite3_step(a) == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(a, 0) : 0;
			sqlite3_reset(a);
		}
		if (hlc == 0)
			goto out; /* not acknowledged: it holds collection back */
		sqlite3_bind_text(q, 1, h->part, -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 2, (int64_t)hlc);
		if (sqlite3_step(q) != SQLITE_ROW) {
			sqlite3_reset(q);
			goto out; /* a checkpoint this replica has not kept: no heads to go by */
		}
		struct floor g = { 0 };
		r = floor_from_heads(s, zila_view_make(sqlite3_column_blob(q, 0), (size_t)sqlite3_column_bytes(q, 0)), &g);
		sqlite3_reset(q);
		if (r == 0 && f->oids == NULL) {
			f->oids = g.oids;
			f->seqs = g.seqs;
			f->n = g.n;
			g.oids = NULL;
			g.seqs = NULL;
		} else if (r == 0) {
			for (size_t j = 0; j < f->n; j++) {
				uint64_t o = floor_seq(&g, f->oids[j]);
				if (o < f->seqs[j])
					f->seqs[j] = o;
			}
		}
		floor_release(&g);
	}
	*ok = r == 0;
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

/* Drops every deleted row (not parked, its state in zila_rows) of a floor's partition whose
 * registers the floor covers, except (seen) those in temp.zila_ck_seen; raises the
 * partition's collected mark to the newest version dropped (a key inserted again here is
 * dated past the delete it no longer holds: proto/ENTRY.md, "HLC"). */
static int collect_scan(struct zila_store *s, struct floor *fl, size_t nfl, bool seen, size_t *ndropped)
{
	sqlite3_stmt *q = NULL, *g = NULL;
	struct rowstate row;
	int row_cols = 1, r = ZILA_EDB, rc;
	row_init(&row, 1);
	if (sqlite3_exec(s->db, "CREATE TEMP TABLE IF NOT EXISTS zila_gone(tid, pk); DELETE FROM temp.zila_gone", NULL,
			 NULL, NULL) != SQLITE_OK)
		goto out;
	if (sqlite3_prepare_v2(s->db,
			       seen ? "SELECT r.tid, r.pk FROM zila_rows r WHERE NOT EXISTS (SELECT 1"
				      " FROM zila_parked p WHERE p.tid = r.tid AND p.pk = r.pk) AND NOT EXISTS (SELECT 1 FROM"
				      " temp.zila_ck_seen c WHERE c.tid = r.tid AND c.pk = r.pk)"
				    : "SELECT r.tid, r.pk FROM zila_rows r WHERE NOT EXISTS (SELECT 1"
				      " FROM zila_parked p WHERE p.tid = r.tid AND p.pk = r.pk)",
			       -1, &q, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "INSERT INTO temp.zila_gone(tid, pk) VALUES (?, ?)", -1, &g, NULL) != SQLITE_OK)
		goto out;
	r = 0;
	while (r == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		int64_t tid = sqlite3_column_int64(q, 0);
		struct table *t = store_table_by_id(s, tid);
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
		struct floor *f = NULL;
		for (size_t i = 0; i < nfl && f == NULL; i++) {
			bool in = fl[i].tids == NULL;
			for (size_t k = 0; !in && k < fl[i].ntids; k++)
				in = fl[i].tids[k] == tid;
			if (in && strcmp(fl[i].part, row.part) == 0)
				f = &fl[i];
		}
		bool all = f != NULL && covered(f, &row.ever);
		for (int c = 0; all && c < t->ncols; c++)
			all = covered(f, &row.cver[c]);
		if (!all)
			continue;
		top_of(f, &row.ever);
		for (int c = 0; c < t->ncols; c++)
			top_of(f, &row.cver[c]);
		sqlite3_bind_int64(g, 1, tid);
		r = val_bind(g, 2, &pk);
		if (r == 0 && sqlite3_step(g) != SQLITE_DONE)
			r = ZILA_EDB;
		sqlite3_reset(g);
	}
	sqlite3_finalize(q);
	q = NULL;
	if (r == 0 && sqlite3_exec(s->db, "DELETE FROM zila_rows WHERE (tid, pk) IN (SELECT tid, pk FROM temp.zila_gone)",
				   NULL, NULL, NULL) != SQLITE_OK)
		r = ZILA_EDB;
	if (r == 0)
		*ndropped += (size_t)sqlite3_changes(s->db);
	for (size_t i = 0; r == 0 && i < nfl; i++)
		r = store_collected_note(s, fl[i].part, fl[i].top);
out:
	sqlite3_finalize(q);
	sqlite3_finalize(g);
	row_release(&row);
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
