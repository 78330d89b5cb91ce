/* Reading parked rows for review (zila duplicates): their values live in the parked
 * image in zila_rows, not in the user table. */
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
