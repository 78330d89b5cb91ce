/* Making a user table show the merged state of its rows. A row that exists is visible
 * unless it is parked: as a duplicate (it lost a UNIQUE slot to a row that ranks first),
 * as an orphan (a foreign key finds no parent), or as invalid (another constraint of this
 * replica refuses it). Parking depends only on the merged state, so every replica parks
 * the same rows, and parked rows come back when what blocked them goes away. */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "zila/log.h"

#define PARK_DEPTH 32

int row_fk_ok(struct zila_store *s, struct table *t, const struct zval *vals)
{
	(void)s;
	for (int i = 0; i < t->nfk; i++) {
		const struct zval *v = &vals[t->fks[i].col];
		if (v->type == VAL_NULL)
			continue;
		sqlite3_stmt *st = t->fks[i].parent_has;
		val_bind(st, 1, v);
		int rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc == SQLITE_DONE)
			return 0;
	}
	return 1;
}

static int parked_set(struct zila_store *s, struct table *t, const struct zval *pk, int kind)
{
	sqlite3_stmt *st = kind ? s->st_park_put : s->st_park_del;
	int r = ZILA_EDB;
	sqlite3_bind_int64(st, 1, t->id);
	val_bind(st, 2, pk);
	if (kind)
		sqlite3_bind_int(st, 3, kind);
	if (sqlite3_step(st) == SQLITE_DONE)
		r = 0;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

static int exec_pk(sqlite3_stmt *st, const struct zval *pk)
{
	val_bind(st, 1, pk);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : ZILA_EDB;
}

static int park_depth(struct zila_store *s, struct table *t, const struct zval *pk, struct rowstate *r,
		      int kind, struct zila_apply_stats *st, int depth, bool was_visible)
{
	int rr = 0;
	if (was_visible)
		rr = exec_pk(t->del, pk);
	r->has_rid = false;
	if (rr == 0 && r->parked != kind && st != NULL)
		st->nparked++;
	r->parked = kind;
	rr = rr ? rr : row_save(s, t, pk, r);
	rr = rr ? rr : parked_set(s, t, pk, kind);
	if (rr == 0 && was_visible && t->nchild > 0)
		rr = park_children(s, t, r->vals, st, depth + 1);
	t->touched = true;
	return rr;
}

int row_park(struct zila_store *s, struct table *t, const struct zval *pk, struct rowstate *r, int kind,
	     struct zila_apply_stats *st)
{
	return park_depth(s, t, pk, r, kind, st, 0, ROW_VISIBLE(r));
}

int park_children(struct zila_store *s, struct table *t, const struct zval *vals, struct zila_apply_stats *st,
		  int depth)
{
	int rr = 0;
	if (depth > PARK_DEPTH)
		return 0; /* store_settle() finishes deeper chains */
	for (int i = 0; rr == 0 && i < t->nchild; i++) {
		struct child *c = &t->children[i];
		struct fkey *fk = &c->child->fks[c->fk];
		const struct zval *key = &vals[fk->parent_idx];
		if (key->type == VAL_NULL)
			continue;
		/* Collect first: parking deletes from the table the statement reads. */
		struct zila_buf keys;
		zila_buf_init(&keys, 1u << 30);
		size_t n = 0;
		val_bind(c->find, 1, key);
		while (rr == 0 && sqlite3_step(c->find) == SQLITE_ROW) {
			struct zval v;
			val_from_column(&v, c->find, 0);
			rr = val_put(&keys, &v);
			n++;
		}
		sqlite3_reset(c->find);
		struct zila_view in = zila_buf_view(&keys);
		struct rowstate row;
		row_init(&row, c->child->ncols);
		for (size_t k = 0; rr == 0 && k < n; k++) {
			struct zval cpk;
			rr = val_get(&in, &cpk);
			rr = rr ? rr : row_load(s, c->child, &cpk, &row, true);
			if (rr == 0 && ROW_VISIBLE(&row))
				rr = park_depth(s, c->child, &cpk, &row, PARK_ORPHAN, st, depth, true);
		}
		row_release(&row);
		zila_buf_release(&keys);
	}
	return rr;
}

static bool pk_less(const struct zval *a, const struct zval *b)
{
	if (a->type != b->type)
		return a->type < b->type;
	if (a->type == VAL_INT)
		return a->i < b->i;
	size_t n = a->len < b->len ? a->len : b->len;
	int c = n ? memcmp(a->p, b->p, n) : 0;
	return c < 0 || (c == 0 && a->len < b->len);
}

/* Which of two rows keeps a UNIQUE slot: a row of the org-wide partition before a row of
 * a district's, then the earlier existence write, then the smaller key. Only a device that
 * may write every partition writes an org-wide row, and a district's device never writes
 * one: so a district cannot take a slot from a row of a partition it may not write by
 * dating its own row early (two districts' rows stand alike: neither may write the other's). */
static bool ranks_first(struct zila_store *s, const struct rowstate *a, const struct zval *apk,
			const struct rowstate *b, const struct zval *bpk)
{
	if (!b->known)
		return true;
	bool a_org = a->part[0] == '\0', b_org = b->part[0] == '\0';
	if (a_org != b_org)
		return a_org;
	int c = ver_cmp(s, &a->ever, &b->ever);
	if (c != 0)
		return c < 0;
	return pk_less(apk, bpk);
}

/* The row r failed a UNIQUE constraint: the loser of each collision is parked. Returns 1
 * when r lost (and is now parked), 0 when the slots are free for r. */
static int resolve_dup(struct zila_store *s, struct table *t, const struct zval *pk, struct rowstate *r,
		       struct zila_apply_stats *st, bool in_table)
{
	int rr = 0;
	struct rowstate occ;
	struct zila_buf keybuf; /* the occupant's key, whatever its length */
	row_init(&occ, t->ncols);
	zila_buf_init(&keybuf, 64u << 20);
	for (int k = 0; rr == 0 && k < t->nuniq; k++) {
		sqlite3_stmt *q = t->uniq_find[k];
		bool has_null = false;
		for (int j = 0; t->uniq_cols[k][j] >= 0; j++) {
			const struct zval *v = &r->vals[t->uniq_cols[k][j]];
			has_null |= v->type == VAL_NULL;
			val_bind(q, j + 1, v);
		}
		struct zval opk;
		bool found = false;
		if (!has_null && sqlite3_step(q) == SQLITE_ROW) {
			val_from_column(&opk, q, 0);
			zila_buf_reset(&keybuf);
			if ((opk.type == VAL_TEXT || opk.type == VAL_BLOB) &&
			    (rr = zila_buf_put(&keybuf, opk.p, opk.len)) == 0) {
				opk.p = keybuf.p;
				found = true;
			} else if (opk.type == VAL_INT) {
				found = true;
			}
		}
		sqlite3_reset(q);
		sqlite3_clear_bindings(q);
		if (!found || val_equal(&opk, pk))
			continue;
		if ((rr = row_load(s, t, &opk, &occ, true)) != 0)
			break;
		if (ranks_first(s, r, pk, &occ, &opk)) {
			rr = row_park(s, t, &opk, &occ, PARK_DUP, st);
		} else {
			rr = park_depth(s, t, pk, r, PARK_DUP, st, 0, in_table);
			if (rr == 0)
				rr = 1;
		}
	}
	row_release(&occ);
	zila_buf_release(&keybuf);
	return rr;
}

/* A merge that changed some columns of a row the table shows, as loaded from it: only
 * those are written, by rowid (SQLite rewrites an index only when the update names one
 * of its columns). */
static sqlite3_stmt *partial_update(struct zila_store *s, struct table *t, const struct rowstate *r)
{
	uint64_t mask = r->dirty & ~DIRTY_BIT(t->pk);
	if (!r->track || !t->has_rowid || !r->has_rid || mask == 0 || (mask & DIRTY_MORE))
		return NULL;
	sqlite3_stmt *st = store_table_upd(s, t, mask);
	if (st == NULL)
		return NULL;
	for (int i = 0; i < t->ncols && i < 63; i++)
		if (mask & DIRTY_BIT(i))
			val_bind(st, i + 1, &r->vals[i]);
	val_bind(st, t->pk + 1, &r->vals[t->pk]);
	sqlite3_bind_int64(st, t->ncols + 1, r->rid);
	return st;
}

static int write_row(struct zila_store *s, struct table *t, struct rowstate *r, bool update)
{
	sqlite3_stmt *st = update ? partial_update(s, t, r) : NULL;
	if (st == NULL) {
		st = update ? t->upd : t->ins;
		for (int i = 0; i < t->ncols; i++)
			val_bind(st, i + 1, &r->vals[i]);
	}
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_DONE)
		return 0;
	return sqlite3_extended_errcode(s->db);
}

int row_materialize(struct zila_store *s, struct table *t, const struct zval *pk, struct rowstate *r,
		    bool was_visible, struct zila_apply_stats *st)
{
	int rr = 0;
	int prev = was_visible ? PARK_NONE : r->parked; /* what zila_parked says now */
	t->touched = true;
	if (!r->exists) {
		if (was_visible) {
			rr = exec_pk(t->del, pk);
			rr = rr ? rr : park_children(s, t, r->vals, st, 0);
		}
		r->has_rid = false;
		r->parked = PARK_NONE;
		if (rr == 0 && prev != PARK_NONE)
			rr = parked_set(s, t, pk, 0);
		return rr ? rr : row_save(s, t, pk, r);
	}
	if (!row_fk_ok(s, t, r->vals))
		return park_depth(s, t, pk, r, PARK_ORPHAN, st, 0, was_visible);
	for (int attempt = 0; attempt <= t->nuniq + 1; attempt++) {
		int rc = write_row(s, t, r, was_visible);
		if (rc == 0 && was_visible && sqlite3_changes(s->db) == 0) {
			/* The state shows the row, the table lacks it: it was removed without a
			 * capture since the seal (a REPLACE on its rowid, a writer without triggers).
			 * A removal is a delete like any other, and an update does not bring a
			 * deleted row back: the state stays as merged, and the next seal walks the
			 * table against its states and seals the delete, dated past this version. */
			if (!t->gone_seen)
				zila_log(ZILA_LOG_INFO, "a row of '%s' that a merge updates was removed here without a "
					 "capture; its removal is sealed as a delete", t->name);
			t->gone_seen = true;
			return row_save(s, t, pk, r);
		}
		if (rc == 0) {
			/* The state goes where the row is (struct rowstate). */
			if (!was_visible) {
				r->has_rid = true;
				r->rid = sqlite3_last_insert_rowid(s->db);
			} else if (t->has_rowid && !r->has_rid && (rr = row_locate(t, pk, r)) != 0) {
				return rr;
			}
			r->parked = PARK_NONE;
			if (prev != PARK_NONE)
				rr = parked_set(s, t, pk, 0);
			return rr ? rr : row_save(s, t, pk, r);
		}
		if (rc == SQLITE_CONSTRAINT_PRIMARYKEY && !was_visible) {
			r->track = false; /* what the table holds was not loaded: write every column */
			was_visible = true; /* already there: update it in place */
			continue;
		}
		if (rc == SQLITE_CONSTRAINT_UNIQUE && t->nuniq > 0) {
			rr = resolve_dup(s, t, pk, r, st, was_visible);
			if (rr == 1)
				return 0; /* r lost its slot and is parked */
			if (rr != 0)
				return rr;
			continue;
		}
		if ((rc & 0xff) == SQLITE_CONSTRAINT) {
			zila_log(ZILA_LOG_WARN, "a row of '%s' breaks a constraint of this replica (%s); it is parked for review",
				 t->name, sqlite3_errmsg(s->db));
			return park_depth(s, t, pk, r, PARK_INVALID, st, 0, was_visible);
		}
		return ZILA_EDB;
	}
	return park_depth(s, t, pk, r, PARK_DUP, st, 0, was_visible);
}

int store_settle(struct zila_store *s, struct zila_apply_stats *st)
{
	int rr = 0;
	struct zila_buf keys;
	zila_buf_init(&keys, 1u << 30);
	for (int round = 0; rr == 0 && round < 16; round++) {
		sqlite3_stmt *q = store_stmt(s, "SELECT tid, pk FROM zila_parked ORDER BY tid, pk");
		size_t n = 0, changed = 0;
		zila_buf_reset(&keys);
		if (q == NULL) {
			rr = ZILA_EDB;
			break;
		}
		while (rr == 0 && sqlite3_step(q) == SQLITE_ROW) {
			struct zval v;
			val_from_column(&v, q, 1);
			rr = zila_buf_put_varint(&keys, (uint64_t)sqlite3_column_int64(q, 0));
			rr = rr ? rr : val_put(&keys, &v);
			n++;
		}
		sqlite3_reset(q);
		struct zila_view in = zila_buf_view(&keys);
		for (size_t i = 0; rr == 0 && i < n; i++) {
			uint64_t tid;
			struct zval pk;
			rr = zila_view_get_varint(&in, &tid);
			rr = rr ? rr : val_get(&in, &pk);
			struct table *t = rr ? NULL : store_table_by_id(s, (int64_t)tid);
			if (t == NULL)
				continue;
			struct rowstate row;
			row_init(&row, t->ncols);
			rr = row_load(s, t, &pk, &row, true);
			if (rr == 0 && ROW_VISIBLE(&row)) {
				rr = parked_set(s, t, &pk, 0); /* stale entry */
			} else if (rr == 0) {
				int before = row.parked;
				rr = row_materialize(s, t, &pk, &row, false, st);
				if (rr == 0 && (ROW_VISIBLE(&row) || row.parked != before))
					changed++;
			}
			row_release(&row);
		}
		if (changed == 0)
			break;
	}
	zila_buf_release(&keys);
	return rr;
}
