/* A district named the way people name it: by id, code, name or local name. */
#include <stdlib.h>

#include "office_int.h"

int office_district_resolve(sqlite3 *db, sqlite3_stmt **cache, const char *v, char **out)
{
	*out = NULL;
	int r = ZILA_ENOTFOUND;
	if (*cache == NULL) {
		struct office_sb b = { 0 };
		office_sb_str(&b, "SELECT id, min(prio) FROM (SELECT id, 0 AS prio FROM districts "
			   "WHERE id = ?1");
		if (office_table_has_column(db, "districts", "code"))
			office_sb_str(&b, " UNION ALL SELECT id, 1 FROM districts WHERE lower(code) = "
				   "lower(?1)");
		if (office_table_has_column(db, "districts", "name"))
			office_sb_str(&b, " UNION ALL SELECT id, 1 FROM districts WHERE lower(name) = "
				   "lower(?1)");
		if (office_table_has_column(db, "districts", "name_local"))
			office_sb_str(&b, " UNION ALL SELECT id, 1 FROM districts WHERE name_local = ?1");
		office_sb_str(&b, ") GROUP BY id ORDER BY 2 LIMIT 2");
		int pr = office_prepare(db, &b, cache, NULL);
		free(b.p);
		if (pr != 0)
			return pr;
	}
	sqlite3_stmt *st = *cache;
	sqlite3_bind_text(st, 1, v, -1, SQLITE_STATIC);
	int n = 0, rc;
	bool exact = false;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n++ == 0) {
			exact = sqlite3_column_int(st, 1) == 0;
			*out = office_strdup((const char *)sqlite3_column_text(st, 0));
			if (*out == NULL) {
				r = ZILA_ENOMEM;
				goto out;
			}
		}
	}
	if (rc != SQLITE_DONE)
		r = ZILA_EDB;
	else if (n == 1 || (n > 1 && exact))
		r = 0;
	else if (n > 1)
		r = ZILA_EEXIST;
out:
	if (r != 0) {
		free(*out);
		*out = NULL;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}
