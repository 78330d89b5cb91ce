/* CSV and JSON out: one table of a replica as Excel reads it (UTF-8 with BOM, CRLF), or
 * as an array of JSON objects. */
#include "zila/office/csvio.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "office_int.h"

static bool needs_quotes(const char *s, size_t n)
{
	if (n == 0)
		return true; /* '' is written as "" so that it reads back as '', not NULL */
	if (s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' || s[n - 1] == '\t')
		return true;
	for (size_t i = 0; i < n; i++)
		if (s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r' || s[i] == ';')
			return true;
	return false;
}

/* A cell, quoted when needed, with a ' before it when a spreadsheet would take it for a
 * formula (office_formula_like; import takes the ' off again). */
static void csv_field(FILE *out, const char *s, size_t n)
{
	bool formula = office_formula_like(s, n);
	if (!needs_quotes(s, n)) {
		if (formula)
			fputc('\'', out);
		fwrite(s, 1, n, out);
		return;
	}
	fputc('"', out);
	if (formula)
		fputc('\'', out);
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '"')
			fputc('"', out);
		fputc(s[i], out);
	}
	fputc('"', out);
}

int zila_csv_write_row(FILE *out, const char *const *fields, const size_t *lens, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			fputc(',', out);
		if (fields[i] != NULL)
			csv_field(out, fields[i], lens[i]);
	}
	fputs("\r\n", out);
	return ferror(out) ? ZILA_EIO : 0;
}

/* A JSON string, written by jansson (as every JSON zila writes). */
static void json_str(FILE *out, const unsigned char *s, size_t n)
{
	json_t *j = json_stringn_nocheck((const char *)s, n);
	if (j != NULL)
		json_dumpf(j, out, JSON_ENCODE_ANY);
	json_decref(j);
}

int zila_csv_export(sqlite3 *db, const struct zila_csv_export_opts *opts, FILE *out,
		    uint64_t *nrows, struct zila_error *err)
{
	int r;
	sqlite3_stmt *st = NULL, *dfind = NULL;
	char *district = NULL;
	struct office_sb b = { 0 };
	uint64_t n = 0;
	char ebuf[128];
	if (nrows != NULL)
		*nrows = 0;
	if (opts == NULL || opts->table == NULL) {
		r = zila_error_set(err, ZILA_EINVAL, "no table given");
		goto out;
	}
	const char *t = opts->table;
	r = office_table_exists(db, t, err);
	if (r != 0)
		goto out;
	if (opts->district != NULL) {
		if (!office_table_has_column(db, t, "district_id")) {
			r = zila_error_set(err, ZILA_EINVAL,
					   "table '%s' has no district_id column (it is org-wide)", t);
			goto out;
		}
		int dr = office_table_exists(db, "districts", NULL) == 0
				 ? office_district_resolve(db, &dfind, opts->district, &district)
				 : ZILA_ENOTFOUND;
		if (dr == ZILA_ENOTFOUND || dr == ZILA_EEXIST) {
			r = zila_error_set(err, ZILA_ENOTFOUND, "%s district '%s'",
					   dr == ZILA_EEXIST ? "ambiguous" : "unknown", opts->district);
			goto out;
		}
		if (dr != 0) {
			r = zila_error_set(err, dr, "cannot look up district '%s'", opts->district);
			goto out;
		}
	}

	/* a table that refers to itself (org_units.parent_id) is written parents first, so
	 * that importing the file into an empty replica finds every parent */
	char self_col[128] = "";
	{
		sqlite3_stmt *fk = NULL;
		if (sqlite3_prepare_v2(db,
				       "SELECT \"from\" FROM pragma_foreign_key_list(?1) WHERE "
				       "\"table\" = ?1 AND seq = 0 AND coalesce(\"to\", 'id') = 'id'",
				       -1, &fk, NULL) == SQLITE_OK) {
			sqlite3_bind_text(fk, 1, t, -1, SQLITE_STATIC);
			if (sqlite3_step(fk) == SQLITE_ROW)
				snprintf(self_col, sizeof(self_col), "%s",
					 (const char *)sqlite3_column_text(fk, 0));
		}
		sqlite3_finalize(fk);
	}
	bool has_id = office_table_has_column(db, t, "id");
	if (self_col[0] != '\0' && has_id) {
		office_sb_str(&b, "WITH RECURSIVE d(id, depth) AS (SELECT id, 0 FROM ");
		office_sb_ident(&b, t);
		office_sb_str(&b, " WHERE ");
		office_sb_ident(&b, self_col);
		office_sb_str(&b, " IS NULL UNION ALL SELECT c.id, d.depth + 1 FROM ");
		office_sb_ident(&b, t);
		office_sb_str(&b, " c JOIN d ON c.");
		office_sb_ident(&b, self_col);
		office_sb_str(&b, " = d.id WHERE d.depth < 64) SELECT t.* FROM ");
		office_sb_ident(&b, t);
		office_sb_str(&b, " t LEFT JOIN (SELECT id, min(depth) AS depth FROM d GROUP BY id) x "
			   "ON x.id = t.id");
		if (district != NULL)
			office_sb_str(&b, " WHERE t.district_id = ?1");
		office_sb_str(&b, " ORDER BY coalesce(x.depth, 1000), t.id");
	} else {
		office_sb_str(&b, "SELECT * FROM ");
		office_sb_ident(&b, t);
		if (district != NULL)
			office_sb_str(&b, " WHERE district_id = ?1");
		office_sb_str(&b, has_id ? " ORDER BY id" : " ORDER BY rowid");
	}
	r = office_prepare(db, &b, &st, err);
	if (r != 0)
		goto out;
	if (district != NULL)
		sqlite3_bind_text(st, 1, district, -1, SQLITE_STATIC);

	int ncol = sqlite3_column_count(st);
	bool json = opts->format == ZILA_EXPORT_JSON;
	if (json) {
		fputs("[", out);
	} else {
		if (!opts->no_bom)
			fputs("\xef\xbb\xbf", out);
		for (int i = 0; i < ncol; i++) {
			const char *name = sqlite3_column_name(st, i);
			if (i > 0)
				fputc(',', out);
			csv_field(out, name, strlen(name));
		}
		fputs("\r\n", out);
	}
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (json)
			fputs(n == 0 ? "\n{" : ",\n{", out);
		for (int i = 0; i < ncol; i++) {
			int type = sqlite3_column_type(st, i);
			const unsigned char *v = sqlite3_column_text(st, i);
			size_t len = (size_t)sqlite3_column_bytes(st, i);
			if (json) {
				if (i > 0)
					fputc(',', out);
				const char *name = sqlite3_column_name(st, i);
				json_str(out, (const unsigned char *)name, strlen(name));
				fputc(':', out);
				if (type == SQLITE_NULL)
					fputs("null", out);
				else if (type == SQLITE_INTEGER)
					fprintf(out, "%lld", (long long)sqlite3_column_int64(st, i));
				else if (type == SQLITE_FLOAT) {
					double d = sqlite3_column_double(st, i);
					if (d != d || d > 1.7976931348623157e308 ||
					    d < -1.7976931348623157e308)
						fputs("null", out);
					else
						fprintf(out, "%.17g", d);
				} else
					json_str(out, v, len);
			} else {
				if (i > 0)
					fputc(',', out);
				if (type != SQLITE_NULL)
					csv_field(out, (const char *)v, len);
			}
		}
		if (json)
			fputc('}', out);
		else
			fputs("\r\n", out);
		n++;
	}
	if (rc != SQLITE_DONE) {
		r = zila_error_set(err, ZILA_EDB, "cannot read table '%s': %s", t,
				   sqlite3_errmsg(db));
		goto out;
	}
	if (json)
		fputs(n ? "\n]\n" : "]\n", out);
	if (fflush(out) != 0 || ferror(out)) {
		r = zila_error_set(err, ZILA_EIO, "cannot write: %s", office_errno_msg(errno, ebuf));
		goto out;
	}
	if (nrows != NULL)
		*nrows = n;
	r = 0;
out:
	free(b.p);
	free(district);
	sqlite3_finalize(st);
	sqlite3_finalize(dfind);
	return r;
}

