/* Review (include/zila/review.h): conflicts and parked rows, read and settled. A parked
 * row's values live in the parked image in zila_rows, not in the user table. */
#include <stdio.h>
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

/* A conflict is settled for everyone once its cell is written again by a write made with the
 * kept value in view (proto/ENTRY.md, "Conflicts"): sealed here (seal.c), or received from a
 * writer whose entry covers it (apply.c). Every replica sees that write, so every replica
 * stops listing the conflict; a resolution is data. upto: the version the write overwrote. */
int store_conflicts_settle(struct zila_store *s, const struct table *t, const struct zval *pk, int col, uint64_t upto)
{
	if (s->open_conflicts == 0)
		return 0;
	if (s->open_conflicts < 0) {
		sqlite3_stmt *q = NULL;
		if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM zila_conflicts WHERE resolved = 0", -1, &q, NULL) !=
			    SQLITE_OK ||
		    sqlite3_step(q) != SQLITE_ROW) {
			sqlite3_finalize(q);
			return ZILA_EDB;
		}
		s->open_conflicts = sqlite3_column_int64(q, 0);
		sqlite3_finalize(q);
		if (s->open_conflicts == 0)
			return 0;
	}
	if (s->st_settle == NULL &&
	    sqlite3_prepare_v3(s->db,
			       "UPDATE zila_conflicts SET resolved = 1 WHERE resolved = 0 AND tbl = ?1 AND pk IS ?2 AND"
			       " col = ?3 AND kept_hlc <= ?4",
			       -1, SQLITE_PREPARE_PERSISTENT, &s->st_settle, NULL) != SQLITE_OK)
		return ZILA_EDB;
	sqlite3_stmt *u = s->st_settle;
	sqlite3_bind_text(u, 1, t->name, -1, SQLITE_STATIC);
	val_bind(u, 2, pk);
	sqlite3_bind_text(u, 3, t->cols[col], -1, SQLITE_STATIC);
	sqlite3_bind_int64(u, 4, (int64_t)upto);
	int rc = sqlite3_step(u);
	int n = sqlite3_changes(s->db);
	sqlite3_reset(u);
	sqlite3_clear_bindings(u);
	if (rc != SQLITE_DONE)
		return ZILA_EDB;
	if (n > 0)
		s->open_conflicts = s->open_conflicts > n ? s->open_conflicts - n : 0;
	return 0;
}

/* --- conflicts -------------------------------------------------------------------- */

static const uint8_t *origin_of(sqlite3_stmt *st, int col)
{
	return sqlite3_column_bytes(st, col) == 32 ? sqlite3_column_blob(st, col) : NULL;
}

struct walk {
	union {
		zila_conflict_fn conflict;
		zila_park_fn park;
		zila_table_fn table;
	} fn;
	void *ctx;
};

static int conflict_row(void *ctx, sqlite3_stmt *st)
{
	struct walk *w = ctx;
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
	return w->fn.conflict(w->ctx, &c);
}

int zila_store_conflict_each(struct zila_store *s, zila_conflict_fn fn, void *ctx)
{
	struct walk w = { .fn.conflict = fn, .ctx = ctx };
	sqlite3_stmt *st = NULL;
	(void)sqlite3_prepare_v2(s->db,
				 "SELECT id, tbl, pk, col, kept, kept_origin, kept_hlc, lost, lost_origin, lost_hlc"
				 " FROM zila_conflicts WHERE resolved = 0 ORDER BY id",
				 -1, &st, NULL);
	return store_walk(s, st, conflict_row, &w);
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

/* A borrowed zval of an SQLite value. */
static void val_of(struct zval *v, sqlite3_value *x)
{
	memset(v, 0, sizeof(*v));
	switch (sqlite3_value_type(x)) {
	case SQLITE_INTEGER:
		v->type = VAL_INT;
		v->i = sqlite3_value_int64(x);
		break;
	case SQLITE_FLOAT:
		v->type = VAL_REAL;
		v->d = sqlite3_value_double(x);
		break;
	case SQLITE_TEXT:
		v->type = VAL_TEXT;
		v->p = sqlite3_value_text(x);
		v->len = (size_t)sqlite3_value_bytes(x);
		break;
	case SQLITE_BLOB:
		v->type = VAL_BLOB;
		v->p = sqlite3_value_blob(x);
		v->len = (size_t)sqlite3_value_bytes(x);
		break;
	default:
		v->type = VAL_NULL;
	}
}

/* A key as text for messages, as SQLite would show it; sqlite3_free() it. */
static char *val_text(const struct zval *v)
{
	switch (v->type) {
	case VAL_INT:
		return sqlite3_mprintf("%lld", (long long)v->i);
	case VAL_REAL:
		return sqlite3_mprintf("%!.15g", v->d);
	case VAL_TEXT:
		return sqlite3_mprintf("%.*s", (int)v->len, (const char *)v->p);
	case VAL_BLOB:
		return sqlite3_mprintf("(%zu bytes)", v->len);
	default:
		return sqlite3_mprintf("NULL");
	}
}

/* Runs sql with binds ?1..?n as an application's write: the capture triggers (and the
 * table's own) fire for this one statement, so the seal that follows in the same
 * transaction seals it; the store's connection otherwise runs without triggers. *changes
 * gets the rows it changed; on failure why gets SQLite's reason. */
static int write_captured(struct zila_store *s, const char *sql, const struct zval *binds, int n, int *changes,
			  char *why, size_t why_len)
{
	sqlite3_stmt *st = NULL;
	int on = 1, off = 0, r = ZILA_EDB;
	*changes = 0;
	if (sql == NULL) {
		snprintf(why, why_len, "out of memory");
		return ZILA_ENOMEM;
	}
	if (sqlite3_db_config(s->db, SQLITE_DBCONFIG_ENABLE_TRIGGER, 1, &on) == SQLITE_OK &&
	    sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK) {
		for (int i = 0; i < n; i++)
			val_bind(st, i + 1, &binds[i]);
		if (sqlite3_step(st) == SQLITE_DONE) {
			*changes = sqlite3_changes(s->db);
			r = 0;
		}
	}
	if (r != 0) {
		r = store_db_code(s);
		snprintf(why, why_len, "%s", sqlite3_errmsg(s->db));
	}
	sqlite3_finalize(st);
	(void)sqlite3_db_config(s->db, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, &off);
	return r;
}

/* The store's connection merges with foreign keys off; a user's write is held to them as
 * an application connection holds it: false when column ci of the row pk (as written)
 * names a parent that is not there. */
static bool fk_holds(struct zila_store *s, struct table *t, int ci, const struct zval *pk)
{
	sqlite3_stmt *st = NULL;
	bool ok = true;
	char *sql = sqlite3_mprintf("SELECT \"%w\" FROM \"%w\" WHERE \"%w\" = ?", t->cols[ci], t->name, t->cols[t->pk]);
	if (sql == NULL || sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		goto out;
	val_bind(st, 1, pk);
	if (sqlite3_step(st) != SQLITE_ROW)
		goto out;
	struct zval v;
	val_from_column(&v, st, 0);
	for (int i = 0; ok && i < t->nfk && v.type != VAL_NULL; i++) {
		if (t->fks[i].col != ci)
			continue;
		sqlite3_stmt *p = t->fks[i].parent_has;
		val_bind(p, 1, &v);
		ok = sqlite3_step(p) == SQLITE_ROW;
		sqlite3_reset(p);
	}
out:
	sqlite3_finalize(st);
	sqlite3_free(sql);
	return ok;
}

static bool row_present(struct zila_store *s, struct table *t, const struct zval *pk)
{
	sqlite3_stmt *st = NULL;
	bool yes = false;
	char *sql = sqlite3_mprintf("SELECT 1 FROM \"%w\" WHERE \"%w\" = ?", t->name, t->cols[t->pk]);
	if (sql != NULL && sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK) {
		val_bind(st, 1, pk);
		yes = sqlite3_step(st) == SQLITE_ROW;
	}
	sqlite3_finalize(st);
	sqlite3_free(sql);
	return yes;
}

/* Seals what the transaction captured and settles parked rows, as every seal does. */
static int seal_in(struct zila_store *s, struct zila_error *err)
{
	int r = store_seal_locked(s, NULL, err);
	if (r == 0 && (r = store_settle(s, NULL)) != 0)
		r = store_db_error(s, err, "cannot settle parked rows");
	return r;
}

int zila_store_conflict_resolve(struct zila_store *s, int64_t id, enum zila_keep keep, const char *value,
				struct zila_resolved *out, struct zila_error *err)
{
	sqlite3_stmt *st = NULL;
	sqlite3_value *pk = NULL, *lost = NULL;
	struct table *t = NULL;
	int r, ci = -1;
	memset(out, 0, sizeof(*out));
	if (keep == ZILA_KEEP_VALUE && value == NULL)
		return zila_error_set(err, ZILA_EINVAL, "no value to keep");
	/* the seal in this transaction must know every table whose changes it meets */
	if ((r = store_schema_follow(s, err)) != 0 || (r = store_begin(s, err)) != 0)
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
	struct zval zpk, zlost;
	val_of(&zpk, pk);
	val_of(&zlost, lost);
	/* The conflicts this choice settles: its seal may mark them (store_conflicts_settle). */
	int64_t nopen = 0;
	if (sqlite3_prepare_v2(s->db,
			       "SELECT count(*) FROM zila_conflicts WHERE resolved = 0 AND"
			       " (id = ?1 OR (tbl = ?2 AND pk = ?3 AND col = ?4))",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_text(st, 2, out->table, -1, SQLITE_STATIC);
		sqlite3_bind_value(st, 3, pk);
		sqlite3_bind_text(st, 4, out->col, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			nopen = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	st = NULL;
	if (!row_present(s, t, &zpk)) {
		int kind = parked_kind(s, t, pk);
		r = zila_error_set(err, ZILA_ENOTFOUND, "row '%s' of '%s' no longer exists (%s)", out->row, out->table,
				   kind == PARK_DUP	 ? "parked as a duplicate; see 'zila duplicates'"
				   : kind == PARK_ORPHAN ? "parked as an orphan: its parent is missing"
				   : kind == PARK_INVALID ? "parked as invalid"
							  : "deleted");
		goto out;
	}
	if (keep != ZILA_KEEP_KEPT) {
		struct zval binds[2] = { zlost, zpk };
		char why[200];
		int n;
		if (keep == ZILA_KEEP_VALUE) {
			memset(&binds[0], 0, sizeof(binds[0]));
			binds[0].type = VAL_TEXT;
			binds[0].p = (const uint8_t *)value;
			binds[0].len = strlen(value);
		}
		char *sql = sqlite3_mprintf("UPDATE \"%w\" SET \"%w\" = ?1 WHERE \"%w\" = ?2", t->name, t->cols[ci],
					    t->cols[t->pk]);
		r = write_captured(s, sql, binds, 2, &n, why, sizeof(why));
		sqlite3_free(sql);
		if (r == 0 && !fk_holds(s, t, ci, &zpk)) {
			r = ZILA_EINVAL;
			snprintf(why, sizeof(why), "FOREIGN KEY constraint failed");
		}
		if (r != 0) {
			r = zila_error_set(err, r, "cannot set '%s' of row '%s' in '%s': %s", out->col, out->row, out->table,
					   why);
			goto out;
		}
		out->written = true;
	} else {
		/* The kept value, captured again as a change of its own: the seal dates it past
		 * both versions, and every replica that receives it settles the conflict too
		 * (store_conflicts_settle): a resolution travels as data. */
		int64_t mask = (int64_t)1 << (ci < MASK_BITS ? ci : MASK_BITS);
		char *sql = t->has_rowid ? sqlite3_mprintf("INSERT INTO zila_pending(tid, rid, m) SELECT ?1, rowid, ?2 FROM "
							   "\"%w\" WHERE \"%w\" = ?3",
							   t->name, t->cols[t->pk])
					 : sqlite3_mprintf("INSERT INTO zila_pending(tid, pk, m) VALUES (?1, ?3, ?2)");
		int prc = sql != NULL ? sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) : SQLITE_NOMEM;
		sqlite3_free(sql);
		if (prc == SQLITE_OK) {
			sqlite3_bind_int64(st, 1, t->id);
			sqlite3_bind_int64(st, 2, mask);
			sqlite3_bind_value(st, 3, pk);
			prc = sqlite3_step(st);
		}
		sqlite3_finalize(st);
		st = NULL;
		if (prc != SQLITE_DONE) {
			r = store_db_error(s, err, "cannot record the kept value");
			goto out;
		}
		out->written = true;
	}
	/* what was captured before is sealed with it, as any seal does */
	if ((r = seal_in(s, err)) != 0)
		goto out;
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
	int nmarked = sqlite3_changes(s->db);
	if (s->open_conflicts > 0)
		s->open_conflicts = s->open_conflicts > nmarked ? s->open_conflicts - nmarked : 0;
	out->nresolved = (int)(nopen > nmarked ? nopen : nmarked);
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

static int park_row(void *ctx, sqlite3_stmt *st)
{
	struct walk *w = ctx;
	struct zila_park p;
	memset(&p, 0, sizeof(p));
	p.table = (const char *)sqlite3_column_text(st, 0);
	p.pcol = (const char *)sqlite3_column_text(st, 1);
	val_from_column(&p.pk, st, 2);
	p.kind = (enum zila_park_kind)sqlite3_column_int(st, 3);
	return w->fn.park(w->ctx, &p);
}

int zila_store_parked_each(struct zila_store *s, enum zila_park_kind kind, const char *table, const char *key_text,
			   zila_park_fn fn, void *ctx)
{
	struct walk w = { .fn.park = fn, .ctx = ctx };
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(s->db,
			       "SELECT t.name, t.pcol, p.pk, p.kind FROM zila_parked p JOIN zila_tables t ON t.id = p.tid"
			       " WHERE (?1 = 0 OR p.kind = ?1) AND (?2 IS NULL OR t.name = ?2)"
			       " AND (?3 IS NULL OR CAST(p.pk AS TEXT) = ?3) ORDER BY t.name, p.pk",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int(st, 1, (int)kind);
		if (table != NULL)
			sqlite3_bind_text(st, 2, table, -1, SQLITE_STATIC);
		if (key_text != NULL)
			sqlite3_bind_text(st, 3, key_text, -1, SQLITE_STATIC);
	}
	return store_walk(s, st, park_row, &w);
}

static int table_row(void *ctx, sqlite3_stmt *st)
{
	struct walk *w = ctx;
	return w->fn.table(w->ctx, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1));
}

int zila_store_table_each(struct zila_store *s, zila_table_fn fn, void *ctx)
{
	struct walk w = { .fn.table = fn, .ctx = ctx };
	sqlite3_stmt *st = NULL;
	(void)sqlite3_prepare_v2(s->db, "SELECT name, pcol FROM zila_tables ORDER BY name", -1, &st, NULL);
	return store_walk(s, st, table_row, &w);
}

/* --- merging a duplicate ------------------------------------------------------------ */

/* Copies into the holder (into) every column it has NULL and the duplicate (dup) has set,
 * but its key and partition. */
static int fill_nulls(struct zila_store *s, struct table *t, const struct rowstate *dup, const struct zval *into,
		      int *nfilled, struct zila_error *err)
{
	struct zval *binds = calloc((size_t)t->ncols + 1, sizeof(*binds));
	int *from = calloc((size_t)t->ncols + 1, sizeof(*from));
	char *sql = sqlite3_mprintf("UPDATE \"%w\" SET", t->name), *what = val_text(into), why[200];
	int r = ZILA_ENOMEM, nset = 0, n;
	*nfilled = 0;
	if (binds == NULL || from == NULL || sql == NULL || what == NULL) {
		r = zila_error_set(err, r, "out of memory");
		goto out;
	}
	val_bind(t->sel, 1, into);
	if (sqlite3_step(t->sel) != SQLITE_ROW) {
		sqlite3_reset(t->sel);
		r = zila_error_set(err, ZILA_ENOTFOUND, "no row '%s' in '%s' to merge into", what, t->name);
		goto out;
	}
	for (int i = 0; sql != NULL && i < t->ncols; i++) {
		if (i == t->pk || i == t->pcol || sqlite3_column_type(t->sel, i) != SQLITE_NULL ||
		    dup->vals[i].type == VAL_NULL)
			continue;
		char *s2 = sqlite3_mprintf("%s%s \"%w\" = ?%d", sql, nset ? "," : "", t->cols[i], nset + 1);
		sqlite3_free(sql);
		sql = s2;
		from[nset] = i;
		binds[nset++] = dup->vals[i];
	}
	sqlite3_reset(t->sel);
	if (nset == 0) {
		r = 0;
		goto out;
	}
	char *s2 = sql ? sqlite3_mprintf("%s WHERE \"%w\" = ?%d", sql, t->cols[t->pk], nset + 1) : NULL;
	sqlite3_free(sql);
	sql = s2;
	binds[nset] = *into;
	r = write_captured(s, sql, binds, nset + 1, &n, why, sizeof(why));
	for (int k = 0; r == 0 && k < nset; k++)
		if (!fk_holds(s, t, from[k], into)) {
			r = ZILA_EINVAL;
			snprintf(why, sizeof(why), "FOREIGN KEY constraint failed");
		}
	if (r != 0) {
		r = zila_error_set(err, r, "cannot fill the empty columns of '%s:%s': %s", t->name, what, why);
		goto out;
	}
	*nfilled = nset;
out:
	free(binds);
	free(from);
	sqlite3_free(sql);
	sqlite3_free(what);
	return r;
}

/* The keys of the rows of t parked (any kind), in key order; *keys is the caller's to
 * free with sqlite3_value_free each. */
static int parked_keys(struct zila_store *s, struct table *t, sqlite3_value ***keys, size_t *n)
{
	sqlite3_stmt *st = NULL;
	int r = 0;
	*keys = NULL;
	*n = 0;
	if (sqlite3_prepare_v2(s->db, "SELECT pk FROM zila_parked WHERE tid = ? ORDER BY pk", -1, &st, NULL) !=
	    SQLITE_OK)
		return store_db_code(s);
	sqlite3_bind_int64(st, 1, t->id);
	int rc;
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		sqlite3_value **k = realloc(*keys, (*n + 1) * sizeof(*k));
		if (k == NULL || (k[*n] = sqlite3_value_dup(sqlite3_column_value(st, 0))) == NULL) {
			if (k != NULL)
				*keys = k;
			r = ZILA_ENOMEM;
			break;
		}
		*keys = k;
		(*n)++;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = store_db_code(s);
	sqlite3_finalize(st);
	return r;
}

/* Rows of child parked with their foreign key fk naming the duplicate dpk are inserted
 * again naming the holder (an UPSERT every replica applies). */
static int repoint_parked(struct zila_store *s, struct table *t, struct table *child, const struct fkey *fk,
			  const struct zval *dpk, const struct zval *into, int *nmoved, struct zila_error *err)
{
	sqlite3_value **keys = NULL;
	size_t nkeys = 0;
	struct rowstate row;
	struct zval *binds = calloc((size_t)child->ncols, sizeof(*binds));
	char *sql = sqlite3_mprintf("INSERT INTO \"%w\" (", child->name), why[200];
	int r = parked_keys(s, child, &keys, &nkeys), n;
	row_init(&row, child->ncols);
	for (int i = 0; sql != NULL && i < child->ncols; i++) {
		char *s2 = sqlite3_mprintf("%s%s\"%w\"", sql, i ? ", " : "", child->cols[i]);
		sqlite3_free(sql);
		sql = s2;
	}
	for (int i = 0; sql != NULL && i < child->ncols; i++) {
		char *s2 = sqlite3_mprintf("%s%s?%d", sql, i ? ", " : ") VALUES (", i + 1);
		sqlite3_free(sql);
		sql = s2;
	}
	char *s2 = sql ? sqlite3_mprintf("%s)", sql) : NULL;
	sqlite3_free(sql);
	sql = s2;
	if (r == 0 && (binds == NULL || sql == NULL || row.cver == NULL || row.vals == NULL))
		r = ZILA_ENOMEM;
	if (r != 0) {
		r = zila_error_set(err, r, "cannot read the parked rows of '%s': %s", child->name, zila_strerror(r));
		goto out;
	}
	for (size_t k = 0; k < nkeys; k++) {
		struct zval cpk;
		val_of(&cpk, keys[k]);
		row_reset(&row);
		if ((r = row_load(s, child, &cpk, &row, true)) != 0) {
			r = store_db_error(s, err, "cannot read a parked row");
			goto out;
		}
		if (!row.known || !row.exists || row.parked == PARK_NONE || !val_equal(&row.vals[fk->col], dpk))
			continue;
		for (int i = 0; i < child->ncols; i++)
			binds[i] = i == fk->col ? *into : i == child->pk ? cpk : row.vals[i];
		if ((r = write_captured(s, sql, binds, child->ncols, &n, why, sizeof(why))) != 0) {
			char *a = val_text(&cpk), *b = val_text(into);
			r = zila_error_set(err, r, "cannot repoint row '%s' of '%s' to '%s': %s", a ? a : "?", child->name,
					   b ? b : "?", why);
			sqlite3_free(a);
			sqlite3_free(b);
			goto out;
		}
		(*nmoved)++;
	}
	(void)t;
out:
	for (size_t k = 0; k < nkeys; k++)
		sqlite3_value_free(keys[k]);
	free(keys);
	free(binds);
	sqlite3_free(sql);
	row_release(&row);
	return r;
}

/* Every single-column foreign key that references t's key is repointed from the duplicate
 * to the holder: visible rows by an UPDATE, rows parked as its orphans inserted again. */
static int repoint_all(struct zila_store *s, struct table *t, const struct zval *dpk, const struct zval *into,
		       int *nmoved, struct zila_error *err)
{
	*nmoved = 0;
	for (int c = 0; c < t->nchild; c++) {
		struct table *child = t->children[c].child;
		const struct fkey *fk = &child->fks[t->children[c].fk];
		if (fk->parent_idx != t->pk)
			continue;
		const char *fcol = child->cols[fk->col];
		struct zval binds[2] = { *into, *dpk };
		char why[200];
		int n, r;
		char *sql = sqlite3_mprintf("UPDATE \"%w\" SET \"%w\" = ?1 WHERE \"%w\" = ?2", child->name, fcol, fcol);
		r = write_captured(s, sql, binds, 2, &n, why, sizeof(why));
		sqlite3_free(sql);
		if (r != 0) {
			char *what = val_text(into);
			r = zila_error_set(err, r, "cannot repoint '%s.%s' to '%s:%s': %s", child->name, fcol, t->name,
					   what ? what : "?", why);
			sqlite3_free(what);
			return r;
		}
		*nmoved += n;
		if ((r = repoint_parked(s, t, child, fk, dpk, into, nmoved, err)) != 0)
			return r;
	}
	return 0;
}

int zila_store_merge_duplicate(struct zila_store *s, const char *table, const struct zila_value *pk,
			       const struct zila_value *into, struct zila_merged *out, struct zila_error *err)
{
	memset(out, 0, sizeof(*out));
	/* the tables as another program may have changed them: the seal in this transaction
	 * must know every table whose changes it meets */
	int r = store_schema_follow(s, err);
	if (r != 0)
		return r;
	struct table *t = store_table_by_name(s, table, strlen(table));
	struct rowstate dup;
	char *what = val_text(pk);
	if (t == NULL) {
		sqlite3_free(what);
		return zila_error_set(err, ZILA_ENOTFOUND, "table '%s' is not tracked", table);
	}
	row_init(&dup, t->ncols);
	if (what == NULL || dup.cver == NULL || dup.vals == NULL) {
		r = zila_error_set(err, ZILA_ENOMEM, "out of memory");
		goto done;
	}
	if ((r = store_begin(s, err)) != 0)
		goto done;
	if ((r = row_load(s, t, pk, &dup, true)) != 0) {
		r = store_db_error(s, err, "cannot read row state");
		goto out;
	}
	if (!dup.known || !dup.exists || dup.parked != PARK_DUP) {
		r = zila_error_set(err, ZILA_ENOTFOUND, "no parked duplicate '%s:%s' (see 'zila duplicates')", table, what);
		goto out;
	}
	if (dup.vals[t->pk].type == VAL_NULL)
		dup.vals[t->pk] = *pk;
	if ((r = fill_nulls(s, t, &dup, into, &out->nfilled, err)) != 0 ||
	    (r = repoint_all(s, t, pk, into, &out->nmoved, err)) != 0)
		goto out;
	if ((r = store_delete_captured(s, t, pk)) != 0) {
		r = store_db_error(s, err, "cannot discard the duplicate");
		goto out;
	}
	if ((r = seal_in(s, err)) != 0)
		goto out;
	r = store_commit(s, err);
out:
	if (r != 0) {
		store_rollback(s);
		memset(out, 0, sizeof(*out));
	}
done:
	row_release(&dup);
	sqlite3_free(what);
	return r;
}
