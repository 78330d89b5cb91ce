/* Review (include/zila/review.h): conflicts and parked rows, read and settled. A parked
 * row's values live in the parked image in zila_rows, not in the user table. */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

int zila_store_parked_row(struct zila_store *s, const char *table, const struct zila_value *pk,
			  zila_row_fn fn, void *ctx, struct zila_error *err)
{
	struct table *t = store_table_by_name(s, table, strlen(table));
	struct rowstate row;
	int r;
	if (t == NULL)
		return zila_error_set(err, ZILA_ENOTFOUND, "table '%s' is not tracked", table);
	row_init(&row, t->ncols);
	if (row.cver == NULL || row.vals == NULL) {
		r = zila_error_set(err, ZILA_ENOMEM, "out of memory");
		goto out;
	}
	if ((r = row_load(s, t, pk, &row, true)) != 0) {
		r = store_db_error(s, err, "cannot read row state");
		goto out;
	}
	/* A deleted row keeps a state record too, but only a parked one has an image. */
	if (!row.known || !row.exists || row.parked == PARK_NONE) {
		r = zila_error_set(err, ZILA_ENOTFOUND, "the row is not parked in '%s'", table);
		goto out;
	}
	if (row.vals[t->pk].type == VAL_NULL)
		row.vals[t->pk] = *pk;
	r = fn(ctx, (size_t)t->ncols, (const char *const *)t->cols, row.vals);
out:
	row_release(&row);
	return r;
}

/* --- conflicts -------------------------------------------------------------------- */

static const uint8_t *origin_of(sqlite3_stmt *st, int col)
{
	return sqlite3_column_bytes(st, col) == 32 ? sqlite3_column_blob(st, col) : NULL;
}

int zila_store_conflict_each(struct zila_store *s, zila_conflict_fn fn, void *ctx)
{
	sqlite3_stmt *st = NULL;
	int r = ZILA_EDB, rc;
	if (sqlite3_prepare_v2(s->db,
			       "SELECT id, tbl, pk, col, kept, kept_origin, kept_hlc, lost, lost_origin, lost_hlc"
			       " FROM zila_conflicts WHERE resolved = 0 ORDER BY id",
			       -1, &st, NULL) != SQLITE_OK)
		goto out;
	r = 0;
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct zila_conflict c;
		memset(&c, 0, sizeof(c));
		c.id = sqlite3_column_int64(st, 0);
		c.table = (const char *)sqlite3_column_text(st, 1);
		val_from_column(&c.pk, st, 2);
		c.col = (const char *)sqlite3_column_text(st, 3);
		val_from_column(&c.kept, st, 4);
		c.kept_origin = origin_of(st, 5);
		c.kept_hlc = (uint64_t)sqlite3_column_int64(st, 6);
		val_from_column(&c.lost, st, 7);
		c.lost_origin = origin_of(st, 8);
		c.lost_hlc = (uint64_t)sqlite3_column_int64(st, 9);
		r = fn(ctx, &c);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_db_code(s);
out:
	sqlite3_finalize(st);
	return r;
}

void zila_resolved_release(struct zila_resolved *r)
{
	if (r == NULL)
		return;
	free(r->table);
	free(r->row);
	free(r->col);
	memset(r, 0, sizeof(*r));
}

static int parked_kind(struct zila_store *s, struct table *t, sqlite3_value *pk)
{
	sqlite3_stmt *st = NULL;
	int kind = PARK_NONE;
	if (sqlite3_prepare_v2(s->db, "SELECT kind FROM zila_parked WHERE tid = ? AND pk = ?", -1, &st, NULL) ==
	    SQLITE_OK) {
		sqlite3_bind_int64(st, 1, t->id);
		sqlite3_bind_value(st, 2, pk);
		if (sqlite3_step(st) == SQLITE_ROW)
			kind = sqlite3_column_int(st, 0);
	}
	sqlite3_finalize(st);
	return kind;
}

/* Writes value into column ci of the row pk as an application's write: the capture triggers
 * (and the table's own) fire for this one statement, so the seal that follows in the same
 * transaction seals it. The store's connection otherwise runs without triggers. */
static int write_captured(struct zila_store *s, struct table *t, int ci, sqlite3_value *pk, sqlite3_value *lost,
			  const char *value, struct zila_error *err, const char *row)
{
	sqlite3_stmt *st = NULL;
	int on = 1, off = 0, r = ZILA_EDB;
	char *sql = sqlite3_mprintf("UPDATE \"%w\" SET \"%w\" = ?1 WHERE \"%w\" = ?2", t->name, t->cols[ci],
				    t->cols[t->pk]);
	if (sql == NULL)
		return zila_error_set(err, ZILA_ENOMEM, "out of memory");
	if (sqlite3_db_config(s->db, SQLITE_DBCONFIG_ENABLE_TRIGGER, 1, &on) != SQLITE_OK)
		goto fail;
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK) {
		if (lost != NULL)
			sqlite3_bind_value(st, 1, lost);
		else
			sqlite3_bind_text(st, 1, value, -1, SQLITE_STATIC);
		sqlite3_bind_value(st, 2, pk);
		if (sqlite3_step(st) == SQLITE_DONE)
			r = 0;
	}
fail:
	if (r != 0)
		r = zila_error_set(err, store_db_code(s), "cannot set '%s' of row '%s' in '%s': %s", t->cols[ci], row,
				   t->name, sqlite3_errmsg(s->db));
	sqlite3_finalize(st);
	(void)sqlite3_db_config(s->db, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, &off);
	sqlite3_free(sql);
	return r;
}

/* The store's connection merges with foreign keys off; a user's write is held to them as
 * an application connection holds it (a value no parent has is refused). */
static int fk_check(struct zila_store *s, struct table *t, int ci, sqlite3_value *pk, struct zila_error *err,
		    const char *row)
{
	sqlite3_stmt *st = NULL;
	int r = 0;
	char *sql = sqlite3_mprintf("SELECT \"%w\" FROM \"%w\" WHERE \"%w\" = ?", t->cols[ci], t->name, t->cols[t->pk]);
	if (sql == NULL || sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		r = store_db_error(s, err, "cannot read the row written");
		goto out;
	}
	sqlite3_bind_value(st, 1, pk);
	if (sqlite3_step(st) != SQLITE_ROW)
		goto out;
	struct zval v;
	val_from_column(&v, st, 0);
	for (int i = 0; r == 0 && i < t->nfk && v.type != VAL_NULL; i++) {
		if (t->fks[i].col != ci)
			continue;
		sqlite3_stmt *p = t->fks[i].parent_has;
		val_bind(p, 1, &v);
		if (sqlite3_step(p) != SQLITE_ROW)
			r = zila_error_set(err, ZILA_EINVAL, "cannot set '%s' of row '%s' in '%s': FOREIGN KEY constraint failed",
					   t->cols[ci], row, t->name);
		sqlite3_reset(p);
	}
out:
	sqlite3_finalize(st);
	sqlite3_free(sql);
	return r;
}

static bool row_present(struct zila_store *s, struct table *t, sqlite3_value *pk)
{
	sqlite3_stmt *st = NULL;
	bool yes = false;
	char *sql = sqlite3_mprintf("SELECT 1 FROM \"%w\" WHERE \"%w\" = ?", t->name, t->cols[t->pk]);
	if (sql != NULL && sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_value(st, 1, pk);
		yes = sqlite3_step(st) == SQLITE_ROW;
	}
	sqlite3_finalize(st);
	sqlite3_free(sql);
	return yes;
}

int zila_store_conflict_resolve(struct zila_store *s, int64_t id, enum zila_keep keep, const char *value,
				struct zila_resolved *out, struct zila_error *err)
{
	sqlite3_stmt *st = NULL;
	sqlite3_value *pk = NULL, *lost = NULL;
	struct table *t = NULL;
	int r, ci = -1;
	memset(out, 0, sizeof(*out));
	if ((r = store_begin(s, err)) != 0)
		return r;
	if (sqlite3_prepare_v2(s->db, "SELECT tbl, pk, col, lost, resolved FROM zila_conflicts WHERE id = ?", -1, &st,
			       NULL) != SQLITE_OK) {
		r = store_db_error(s, err, "cannot read conflicts");
		goto out;
	}
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		r = rc == SQLITE_DONE ? zila_error_set(err, ZILA_ENOTFOUND, "no conflict '%lld' (see 'zila conflicts')",
						       (long long)id)
				      : store_db_error(s, err, "cannot read conflicts");
		goto out;
	}
	if (sqlite3_column_int(st, 4) != 0) {
		r = zila_error_set(err, ZILA_EEXIST, "conflict '%lld' is already resolved", (long long)id);
		goto out;
	}
	pk = sqlite3_value_dup(sqlite3_column_value(st, 1));
	lost = sqlite3_value_dup(sqlite3_column_value(st, 3));
	const char *row = pk ? (const char *)sqlite3_value_text(pk) : NULL;
	out->table = strdup((const char *)sqlite3_column_text(st, 0));
	out->col = strdup((const char *)sqlite3_column_text(st, 2));
	out->row = strdup(row ? row : "NULL");
	sqlite3_finalize(st);
	st = NULL;
	if (out->table == NULL || out->col == NULL || out->row == NULL || pk == NULL || lost == NULL) {
		r = zila_error_set(err, ZILA_ENOMEM, "out of memory");
		goto out;
	}
	if ((t = store_table_by_name(s, out->table, strlen(out->table))) != NULL)
		for (int i = 0; i < t->ncols && ci < 0; i++)
			if (strcmp(t->cols[i], out->col) == 0)
				ci = i;
	if (ci < 0) {
		r = zila_error_set(err, ZILA_ENOTFOUND, "table '%s' has no column '%s' any more", out->table, out->col);
		goto out;
	}
	if (!row_present(s, t, pk)) {
		int kind = parked_kind(s, t, pk);
		r = zila_error_set(err, ZILA_ENOTFOUND, "row '%s' of '%s' no longer exists (%s)", out->row, out->table,
				   kind == PARK_DUP	 ? "parked as a duplicate; see 'zila duplicates'"
				   : kind == PARK_ORPHAN ? "parked as an orphan: its parent is missing"
				   : kind == PARK_INVALID ? "parked as invalid"
							  : "deleted");
		goto out;
	}
	if (keep != ZILA_KEEP_KEPT) {
		if ((r = write_captured(s, t, ci, pk, keep == ZILA_KEEP_LOST ? lost : NULL, value, err, out->row)) != 0 ||
		    (r = fk_check(s, t, ci, pk, err, out->row)) != 0)
			goto out;
		out->written = true;
	}
	/* what was captured before is sealed with it, as any seal does */
	if ((r = store_seal_locked(s, NULL, err)) != 0)
		goto out;
	if ((r = store_settle(s, NULL)) != 0) {
		r = store_db_error(s, err, "cannot settle parked rows");
		goto out;
	}
	/* Every open conflict on the same cell is settled by this choice. */
	if (sqlite3_prepare_v2(s->db,
			       "UPDATE zila_conflicts SET resolved = 1 WHERE resolved = 0 AND"
			       " (id = ?1 OR (tbl = ?2 AND pk = ?3 AND col = ?4))",
			       -1, &st, NULL) != SQLITE_OK) {
		r = store_db_error(s, err, "cannot mark the conflict resolved");
		goto out;
	}
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, out->table, -1, SQLITE_STATIC);
	sqlite3_bind_value(st, 3, pk);
	sqlite3_bind_text(st, 4, out->col, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		r = store_db_error(s, err, "cannot mark the conflict resolved");
		goto out;
	}
	out->nresolved = sqlite3_changes(s->db);
	sqlite3_finalize(st);
	st = NULL;
	r = store_commit(s, err);
out:
	sqlite3_finalize(st);
	if (r != 0) {
		store_rollback(s);
		out->written = false;
	}
	sqlite3_value_free(pk);
	sqlite3_value_free(lost);
	return r;
}

/* --- parked rows and tables ---------------------------------------------------------- */

int zila_store_parked_each(struct zila_store *s, enum zila_park_kind kind, const char *table, const char *key_text,
			   zila_park_fn fn, void *ctx)
{
	sqlite3_stmt *st = NULL;
	int r = ZILA_EDB, rc;
	if (sqlite3_prepare_v2(s->db,
			       "SELECT t.name, t.pcol, p.pk, p.kind FROM zila_parked p JOIN zila_tables t ON t.id = p.tid"
			       " WHERE (?1 = 0 OR p.kind = ?1) AND (?2 IS NULL OR t.name = ?2)"
			       " AND (?3 IS NULL OR CAST(p.pk AS TEXT) = ?3) ORDER BY t.name, p.pk",
			       -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_int(st, 1, (int)kind);
	if (table != NULL)
		sqlite3_bind_text(st, 2, table, -1, SQLITE_STATIC);
	if (key_text != NULL)
		sqlite3_bind_text(st, 3, key_text, -1, SQLITE_STATIC);
	r = 0;
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct zila_park p;
		memset(&p, 0, sizeof(p));
		p.table = (const char *)sqlite3_column_text(st, 0);
		p.pcol = (const char *)sqlite3_column_text(st, 1);
		val_from_column(&p.pk, st, 2);
		p.kind = (enum zila_park_kind)sqlite3_column_int(st, 3);
		r = fn(ctx, &p);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_db_code(s);
out:
	sqlite3_finalize(st);
	return r;
}

int zila_store_table_each(struct zila_store *s, zila_table_fn fn, void *ctx)
{
	sqlite3_stmt *st = NULL;
	int r = ZILA_EDB, rc;
	if (sqlite3_prepare_v2(s->db, "SELECT name, pcol FROM zila_tables ORDER BY name", -1, &st, NULL) != SQLITE_OK)
		goto out;
	r = 0;
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
		r = fn(ctx, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1));
	if (r == 0 && rc != SQLITE_DONE)
		r = store_db_code(s);
out:
	sqlite3_finalize(st);
	return r;
}
