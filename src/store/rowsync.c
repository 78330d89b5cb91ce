/* A row's sync state as the web interface shows it (zila_store_row_sync): still only here,
 * held by HQ, or in conflict. */
#include <string.h>

#include "store_int.h"

static bool row_pending(struct zila_store *s, const struct table *t, const struct zval *pk, const struct rowstate *r)
{
	sqlite3_stmt *st = NULL;
	bool yes = false;
	if (sqlite3_prepare_v2(s->db,
			       "SELECT 1 FROM zila_pending WHERE tid = ?1 AND (pk = ?2 OR (?3 IS NOT NULL AND rid = ?3))"
			       " LIMIT 1",
			       -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_int64(st, 1, t->id);
	(void)val_bind(st, 2, pk);
	if (r->has_rid)
		sqlite3_bind_int64(st, 3, r->rid);
	yes = sqlite3_step(st) == SQLITE_ROW;
out:
	sqlite3_finalize(st);
	return yes;
}

static bool row_conflict(struct zila_store *s, const char *table, const struct zval *pk)
{
	sqlite3_stmt *st = NULL;
	bool yes = false;
	if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM zila_conflicts WHERE tbl = ? AND pk = ? AND resolved = 0 LIMIT 1",
			       -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	(void)val_bind(st, 2, pk);
	yes = sqlite3_step(st) == SQLITE_ROW;
out:
	sqlite3_finalize(st);
	return yes;
}

int zila_store_row_sync(struct zila_store *s, const char *table, const struct zila_value *pk, int64_t hq_acked,
			bool is_hq, int *state)
{
	struct table *t = store_table_by_name(s, table, strlen(table));
	struct rowstate row;
	int r;
	*state = ZILA_ROW_LOCAL;
	if (t == NULL)
		return ZILA_ENOTFOUND;
	row_init(&row, t->ncols);
	if (row.cver == NULL) {
		r = ZILA_ENOMEM;
		goto out;
	}
	if ((r = row_load(s, t, pk, &row, false)) != 0)
		goto out;
	if (row_conflict(s, table, pk)) {
		*state = ZILA_ROW_CONFLICT;
		goto out;
	}
	if (!row.known || row_pending(s, t, pk, &row))
		goto out; /* captured, not sealed yet */
	/* The newest version of any register of the row: its existence or a cell. */
	struct ver last = row.ever;
	for (int i = 0; i < t->ncols; i++)
		if (row.cver[i].hlc > last.hlc)
			last = row.cver[i];
	if (is_hq || last.origin != s->self_id || (int64_t)last.seq <= hq_acked)
		*state = ZILA_ROW_AT_HQ;
out:
	row_release(&row);
	return r;
}
