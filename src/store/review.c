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
