/* The web interface's tasks beyond single records: import (preview and commit, the code of
 * `zila import`), review (the store calls of `zila conflicts resolve`, `zila duplicates
 * merge` and `zila conflicts drop`), export (the code of `zila export`). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web_int.h"
#include "zila/office/csvio.h"
#include "zila/trust.h"

/* --- import ------------------------------------------------------------------------------ */

struct imp {
	json_t *rows;
	size_t nerr;
};

static json_t *cell(const char *s)
{
	return s ? json_string(s) : json_null();
}

static void imp_change(void *ctx, const struct zila_csv_change *ch)
{
	struct imp *im = ctx;
	json_t *changes = json_array();
	for (size_t i = 0; i < ch->ncols; i++)
		json_array_append_new(changes, json_pack("{s:s, s:o, s:o}", "col", ch->columns[i], "old",
							 ch->old_values ? cell(ch->old_values[i]) : json_null(), "new",
							 cell(ch->new_values[i])));
	if (json_array_size(im->rows) < 5000)
		json_array_append_new(im->rows, json_pack("{s:I, s:s, s:s, s:o}", "line", (json_int_t)ch->row, "action",
							  ch->created ? "create" : "update", "id", ch->id, "changes",
							  changes));
	else
		json_decref(changes);
}

static void imp_reject(void *ctx, const struct zila_csv_reject *rj)
{
	struct imp *im = ctx;
	im->nerr++;
	if (json_array_size(im->rows) < 5000)
		json_array_append_new(im->rows, json_pack("{s:I, s:s, s:s}", "line", (json_int_t)rj->row, "action",
							  "error", "error", rj->reason));
}

/* The header row's cells (a simple reading of the first record: quotes, the delimiter the
 * import would pick). */
static json_t *header_cells(const char *csv)
{
	json_t *arr = json_array();
	const char *p = csv;
	if ((unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB && (unsigned char)p[2] == 0xBF)
		p += 3;
	const char *eol = strpbrk(p, "\r\n");
	size_t linelen = eol ? (size_t)(eol - p) : strlen(p);
	char delim = ',';
	size_t nc = 0, ns = 0, nt = 0;
	for (size_t i = 0; i < linelen; i++)
		nc += p[i] == ',', ns += p[i] == ';', nt += p[i] == '\t';
	if (ns > nc && ns >= nt)
		delim = ';';
	else if (nt > nc && nt > ns)
		delim = '\t';
	char f[512];
	size_t k = 0;
	bool q = false;
	for (const char *s = p;; s++) {
		if (q) {
			if (*s == '"' && s[1] == '"') {
				if (k + 1 < sizeof(f))
					f[k++] = '"';
				s++;
			} else if (*s == '"') {
				q = false;
			} else if (*s == '\0') {
				break;
			} else if (k + 1 < sizeof(f)) {
				f[k++] = *s;
			}
			continue;
		}
		if (*s == '"') {
			q = true;
		} else if (*s == delim || *s == '\r' || *s == '\n' || *s == '\0') {
			f[k] = '\0';
			json_array_append_new(arr, json_string(f));
			k = 0;
			if (*s != delim)
				break;
		} else if (k + 1 < sizeof(f)) {
			f[k++] = *s;
		}
	}
	return arr;
}

void web_import(struct zila_office_web *w, bool commit, json_t *body, struct zila_office_reply *out)
{
	const char *table = json_string_value(json_object_get(body, "table"));
	const char *csv = json_string_value(json_object_get(body, "csv"));
	json_t *map = json_object_get(body, "map");
	struct wtable *t = table ? web_table(w, table) : NULL;
	if (t == NULL || csv == NULL) {
		web_reply_error(out, t == NULL && table ? 404 : 400, t == NULL && table ? "not_found" : "invalid",
				table ? "csv" : "table", table ? (t ? "the file is missing" : "no synced table by that name")
							       : "which table does the file go into?");
		return;
	}
	size_t nmap = json_is_object(map) ? json_object_size(map) : 0;
	json_t *cells = header_cells(csv), *mapping = json_object(), *unmapped = json_array();
	/* room for the given mapping and, in a preview, every header cell left out */
	struct zila_csv_map *m = calloc(nmap + json_array_size(cells) + 1, sizeof(*m));
	const char **names = calloc(t->ncols + 1, sizeof(*names));
	bool *isfk = calloc(t->ncols + 1, sizeof(*isfk));
	struct imp im = { json_array(), 0 };
	struct zila_csv_import *ci = NULL;
	struct zila_csv_stats st;
	struct zila_error err;
	memset(&st, 0, sizeof(st));
	zila_error_clear(&err);
	const char *key;
	json_t *v;
	size_t k = 0;
	if (m == NULL || names == NULL || isfk == NULL) {
		web_reply_error(out, 500, "internal", NULL, "out of memory");
		goto out;
	}
	json_object_foreach(map, key, v)
	{
		if (!json_is_string(v) && !json_is_null(v)) {
			web_reply_error(out, 400, "invalid", "map", "a mapping names a column (or \"\" to leave it out)");
			goto out;
		}
		m[k].header = key;
		m[k].column = json_is_string(v) ? json_string_value(v) : "";
		k++;
	}
	/* What each header cell goes into: the mapping given, else the import's guess
	 * (office_header_guess, as `zila import` guesses). A preview leaves a header nothing
	 * places out ("" in mapping, listed in unmapped) so that the rows show at once; a
	 * commit refuses it, as `zila import` does, until the clerk maps it or leaves it out. */
	for (size_t c = 0; c < t->ncols; c++) {
		names[c] = t->cols[c].name;
		isfk[c] = t->cols[c].fk_table != NULL;
	}
	size_t i;
	json_array_foreach(cells, i, v)
	{
		const char *h = json_string_value(v);
		const char *col = "";
		json_t *given = json_object_get(map, h);
		if (given != NULL) {
			col = json_is_string(given) ? json_string_value(given) : "";
		} else if (h[0] != '\0' && strncmp(h, "zila_reject", 11) != 0) {
			int g = office_header_guess(h, names, isfk, t->ncols);
			if (g >= 0) {
				col = t->cols[g].name;
			} else {
				json_array_append_new(unmapped, json_string(h));
				if (!commit) {
					m[k].header = h;
					m[k].column = "";
					k++;
				}
			}
		}
		json_object_set_new(mapping, h, json_string(col));
	}
	struct zila_csv_import_opts opts = {
		.table = t->name,
		.map = m,
		.nmap = k,
		.dry_run = !commit,
		.own_district = w->district,
		.on_reject = imp_reject,
		.on_change = imp_change,
		.ctx = &im,
	};
	int r = zila_csv_import_new(&ci, w->db, &opts, &err);
	if (r == 0)
		r = zila_csv_import_feed(ci, csv, strlen(csv), &err);
	if (r == 0)
		r = zila_csv_import_finish(ci, &st, &err);
	else if (ci != NULL)
		zila_csv_import_stats(ci, &st);
	json_t *cols = json_array();
	for (size_t c = 0; c < t->ncols; c++)
		json_array_append_new(cols, json_string(t->cols[c].name));
	json_t *counts = json_pack("{s:I, s:I, s:I, s:I}", "create", (json_int_t)st.ncreated, "update",
				   (json_int_t)st.nupdated, "skip", (json_int_t)st.nunchanged, "error",
				   (json_int_t)(st.nrejected ? st.nrejected : im.nerr));
	json_t *o = json_pack("{s:O, s:O, s:o, s:O, s:o, s:b}", "mapping", mapping, "unmapped", unmapped, "columns",
			      cols, "rows", im.rows, "counts", counts, "written", commit && r == 0);
	if (r != 0 && r != ZILA_EFORMAT) {
		json_decref(o);
		web_reply_error(out, 400, "invalid", NULL, "%s", zila_error_msg(&err, r));
	} else if (r == ZILA_EFORMAT && commit) {
		json_object_set_new(o, "error",
				    json_string("nothing was imported: some rows cannot be taken (see the rows marked "
						"error); correct the file and try again"));
		json_object_set_new(o, "code", json_string("invalid"));
		web_reply_json(out, 400, o);
	} else {
		web_reply_json(out, 200, o);
	}
out:
	zila_csv_import_free(ci);
	json_decref(im.rows);
	json_decref(cells);
	json_decref(mapping);
	json_decref(unmapped);
	free(names);
	free(isfk);
	free(m);
}

/* --- review -------------------------------------------------------------------------------- */

static json_t *val_json(const struct zila_value *v)
{
	switch (v->type) {
	case ZILA_VAL_INT:
		return json_integer(v->i);
	case ZILA_VAL_REAL:
		return json_real(v->d);
	case ZILA_VAL_TEXT:
		return json_stringn((const char *)v->p, v->len);
	case ZILA_VAL_NULL:
		return json_null();
	default:
		return json_string("(bytes)");
	}
}

static json_t *who_json(struct zila_office_web *w, const uint8_t *origin, uint64_t hlc, const struct zila_value *v)
{
	char name[ZILA_NAME_MAX + 40] = "";
	struct zila_cert c;
	if (origin != NULL) {
		if (zila_trust_cert_get(w->s, origin, &c) == 0 && c.name[0]) {
			snprintf(name, sizeof(name), "%s", c.name);
		} else {
			char id[ZILA_DEVICE_ID_LEN + 1];
			zila_device_id(origin, id);
			snprintf(name, sizeof(name), "%s", id);
		}
	}
	return json_pack("{s:o, s:s, s:I}", "value", val_json(v), "device", name, "when",
			 (json_int_t)(zila_hlc_ms(hlc) / 1000));
}

struct rv {
	struct zila_office_web *w;
	json_t *conflicts, *duplicates, *orphans, *invalid;
};

static int rv_conflict(void *ctx, const struct zila_conflict *c)
{
	struct rv *rv = ctx;
	json_t *o = json_pack("{s:I, s:s, s:o, s:s, s:o, s:o}", "id", (json_int_t)c->id, "table", c->table, "row",
			      val_json(&c->pk), "col", c->col, "kept",
			      who_json(rv->w, c->kept_origin, c->kept_hlc, &c->kept), "lost",
			      who_json(rv->w, c->lost_origin, c->lost_hlc, &c->lost));
	/* the row's display value, as the records page names it */
	struct wtable *t = web_table(rv->w, c->table);
	json_t *pk = json_object_get(o, "row");
	json_t *label = t && json_is_string(pk) ? web_row_label(rv->w, t, json_string_value(pk)) : NULL;
	json_object_set_new(o, "row_label", label ? label : json_null());
	json_array_append_new(rv->conflicts, o);
	return 0;
}

/* An orphan's missing parent: the first foreign-key column whose value names no row of
 * its table (NULL when none does: the parent came back since). */
static const char *orphan_col(struct zila_office_web *w, const struct wtable *t, json_t *values)
{
	for (size_t i = 0; i < t->ncols; i++) {
		json_t *v = json_object_get(values, t->cols[i].name);
		struct wtable *ft = t->cols[i].fk_table ? web_table(w, t->cols[i].fk_table) : NULL;
		if (ft == NULL || v == NULL || json_is_null(v))
			continue;
		struct office_sb b = { 0 };
		sqlite3_stmt *st = NULL;
		bool found = true;
		office_sb_str(&b, "SELECT 1 FROM ");
		office_sb_ident(&b, ft->name);
		office_sb_str(&b, " WHERE ");
		office_sb_ident(&b, ft->cols[ft->pk].name);
		office_sb_str(&b, " = ?");
		if (office_prepare(w->db, &b, &st, NULL) == 0) {
			if (json_is_integer(v))
				sqlite3_bind_int64(st, 1, json_integer_value(v));
			else
				sqlite3_bind_text(st, 1, json_string_value(v), -1, SQLITE_STATIC);
			found = sqlite3_step(st) == SQLITE_ROW;
		}
		sqlite3_finalize(st);
		free(b.p);
		if (!found)
			return t->cols[i].name;
	}
	return NULL;
}

static int rv_values(void *ctx, size_t ncols, const char *const *cols, const struct zila_value *vals)
{
	json_t *o = ctx;
	for (size_t i = 0; i < ncols; i++)
		json_object_set_new(o, cols[i], val_json(&vals[i]));
	return 0;
}

/* The row that holds a parked duplicate's slot: the visible row that has its values in
 * every column of one of the table's UNIQUE indexes (as `zila duplicates` finds it). */
static json_t *find_holder(struct zila_office_web *w, const struct wtable *t, json_t *values)
{
	sqlite3_stmt *st = NULL, *ii = NULL, *q = NULL;
	json_t *holder = NULL;
	char *sql = sqlite3_mprintf("SELECT name FROM pragma_index_list(%Q) WHERE \"unique\" = 1 AND origin != 'pk'"
				    " AND partial = 0",
				    t->name);
	if (sql == NULL || sqlite3_prepare_v2(w->db, sql, -1, &st, NULL) != SQLITE_OK)
		goto out;
	while (holder == NULL && sqlite3_step(st) == SQLITE_ROW) {
		struct office_sb b = { 0 };
		json_t *binds = json_array();
		bool usable = true;
		sqlite3_free(sql);
		sql = sqlite3_mprintf("SELECT name FROM pragma_index_info(%Q)", (const char *)sqlite3_column_text(st, 0));
		if (sql == NULL || sqlite3_prepare_v2(w->db, sql, -1, &ii, NULL) != SQLITE_OK)
			usable = false;
		office_sb_str(&b, "SELECT ");
		office_sb_ident(&b, t->cols[t->pk].name);
		office_sb_str(&b, " FROM ");
		office_sb_ident(&b, t->name);
		office_sb_str(&b, " WHERE 1");
		while (usable && sqlite3_step(ii) == SQLITE_ROW) {
			const char *c = (const char *)sqlite3_column_text(ii, 0);
			json_t *v = c ? json_object_get(values, c) : NULL;
			if (v == NULL || json_is_null(v)) {
				usable = false;
				break;
			}
			office_sb_str(&b, " AND ");
			office_sb_ident(&b, c);
			office_sb_str(&b, " = ?");
			json_array_append(binds, v);
		}
		sqlite3_finalize(ii);
		ii = NULL;
		if (usable && json_array_size(binds) > 0 && office_prepare(w->db, &b, &q, NULL) == 0) {
			size_t i;
			json_t *v;
			json_array_foreach(binds, i, v)
			{
				if (json_is_integer(v))
					sqlite3_bind_int64(q, (int)i + 1, json_integer_value(v));
				else if (json_is_real(v))
					sqlite3_bind_double(q, (int)i + 1, json_real_value(v));
				else
					sqlite3_bind_text(q, (int)i + 1, json_string_value(v), -1, SQLITE_TRANSIENT);
			}
			if (sqlite3_step(q) == SQLITE_ROW)
				holder = web_column_json(q, 0);
			sqlite3_finalize(q);
			q = NULL;
		}
		json_decref(binds);
		free(b.p);
	}
out:
	sqlite3_finalize(st);
	sqlite3_finalize(ii);
	sqlite3_finalize(q);
	sqlite3_free(sql);
	return holder;
}

/* The holder's row as an object (NULL when none). */
static json_t *holder_values(struct zila_office_web *w, const struct wtable *t, json_t *holder)
{
	struct office_sb b = { 0 };
	sqlite3_stmt *st = NULL;
	json_t *o = NULL;
	office_sb_str(&b, "SELECT * FROM ");
	office_sb_ident(&b, t->name);
	office_sb_str(&b, " WHERE ");
	office_sb_ident(&b, t->cols[t->pk].name);
	office_sb_str(&b, " = ?");
	if (holder && office_prepare(w->db, &b, &st, NULL) == 0) {
		if (json_is_integer(holder))
			sqlite3_bind_int64(st, 1, json_integer_value(holder));
		else
			sqlite3_bind_text(st, 1, json_string_value(holder), -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW) {
			o = json_object();
			for (int i = 0; i < sqlite3_column_count(st); i++)
				json_object_set_new(o, sqlite3_column_name(st, i), web_column_json(st, i));
		}
	}
	sqlite3_finalize(st);
	free(b.p);
	return o;
}

static int rv_parked(void *ctx, const struct zila_park *p)
{
	struct rv *rv = ctx;
	json_t *values = json_object();
	struct zila_error err;
	zila_error_clear(&err);
	if (zila_store_parked_row(rv->w->s, p->table, &p->pk, rv_values, values, &err) != 0) {
		json_decref(values);
		return 0;
	}
	char id[600];
	json_t *pk = val_json(&p->pk);
	snprintf(id, sizeof(id), "%s:%s", p->table, json_is_string(pk) ? json_string_value(pk) : "?");
	json_t *o = json_pack("{s:s, s:s, s:o, s:o}", "id", id, "table", p->table, "row", pk, "values", values);
	if (p->kind == ZILA_PARK_DUP) {
		struct wtable *t = web_table(rv->w, p->table);
		json_t *holder = t ? find_holder(rv->w, t, values) : NULL;
		json_t *hv = t ? holder_values(rv->w, t, holder) : NULL;
		json_object_set_new(o, "holder_values", hv ? hv : json_null());
		json_object_set_new(o, "holder", holder ? holder : json_null());
		json_array_append_new(rv->duplicates, o);
	} else if (p->kind == ZILA_PARK_ORPHAN) {
		struct wtable *t = web_table(rv->w, p->table);
		const char *col = t ? orphan_col(rv->w, t, values) : NULL;
		json_object_set_new(o, "col", col ? json_string(col) : json_null());
		json_array_append_new(rv->orphans, o);
	} else {
		json_array_append_new(rv->invalid, o);
	}
	return 0;
}

void web_review(struct zila_office_web *w, struct zila_office_reply *out)
{
	struct rv rv = { w, json_array(), json_array(), json_array(), json_array() };
	if (zila_store_conflict_each(w->s, rv_conflict, &rv) != 0 ||
	    zila_store_parked_each(w->s, ZILA_PARK_ANY, NULL, NULL, rv_parked, &rv) != 0) {
		json_decref(rv.conflicts);
		json_decref(rv.duplicates);
		json_decref(rv.orphans);
		json_decref(rv.invalid);
		web_reply_error(out, 500, "internal", NULL, "cannot read what waits for review");
		return;
	}
	web_reply_json(out, 200, json_pack("{s:o, s:o, s:o, s:o}", "conflicts", rv.conflicts, "duplicates", rv.duplicates,
					   "orphans", rv.orphans, "invalid", rv.invalid));
}

/* "table:key" into its parts (key points into buf). */
static struct wtable *parked_id(struct zila_office_web *w, const char *id, char *buf, size_t n, const char **key)
{
	snprintf(buf, n, "%s", id ? id : "");
	char *colon = strchr(buf, ':');
	if (colon == NULL)
		return NULL;
	*colon = '\0';
	*key = colon + 1;
	return web_table(w, buf);
}

void web_resolve(struct zila_office_web *w, json_t *body, struct zila_office_reply *out)
{
	const char *kind = json_string_value(json_object_get(body, "kind"));
	const char *choice = json_string_value(json_object_get(body, "choice"));
	struct zila_error err;
	zila_error_clear(&err);
	int r;
	if (kind == NULL || choice == NULL) {
		web_reply_error(out, 400, "invalid", NULL, "a resolution names its kind, id and choice");
		return;
	}
	if (strcmp(kind, "conflict") == 0) {
		json_t *idv = json_object_get(body, "id");
		enum zila_keep keep = strcmp(choice, "kept") == 0   ? ZILA_KEEP_KEPT
				      : strcmp(choice, "lost") == 0 ? ZILA_KEEP_LOST
								    : ZILA_KEEP_VALUE;
		const char *value = json_string_value(json_object_get(body, "value"));
		if (!json_is_integer(idv) || (keep == ZILA_KEEP_VALUE && (strcmp(choice, "value") != 0 || value == NULL))) {
			web_reply_error(out, 400, "invalid", NULL,
					"a conflict is settled by its id and \"kept\", \"lost\" or \"value\" with a value");
			return;
		}
		struct zila_resolved res;
		memset(&res, 0, sizeof(res));
		r = zila_store_conflict_resolve(w->s, json_integer_value(idv), keep, value, &res, &err);
		if (r == 0)
			web_reply_json(out, 200, json_pack("{s:b, s:i, s:b}", "ok", 1, "resolved", res.nresolved, "written",
							   res.written));
		else
			web_reply_error(out, r == ZILA_ENOTFOUND ? 404 : r == ZILA_EEXIST ? 409 : 400,
					r == ZILA_ENOTFOUND ? "not_found" : r == ZILA_EEXIST ? "conflict" : "invalid", NULL,
					"%s", zila_error_msg(&err, r));
		zila_resolved_release(&res);
		return;
	}
	char buf[600];
	const char *key = NULL;
	struct wtable *t = parked_id(w, json_string_value(json_object_get(body, "id")), buf, sizeof(buf), &key);
	if (t == NULL) {
		web_reply_error(out, 404, "not_found", NULL, "no parked row by that id (TABLE:KEY)");
		return;
	}
	struct zila_value pk = { .type = ZILA_VAL_TEXT, .p = (const uint8_t *)key, .len = strlen(key) };
	if (strcmp(kind, "duplicate") == 0 && strcmp(choice, "merge") == 0) {
		json_t *values = json_object();
		json_t *into = json_object_get(body, "into");
		json_t *holder = NULL;
		if (zila_store_parked_row(w->s, t->name, &pk, rv_values, values, &err) == 0 && !json_is_string(into))
			holder = find_holder(w, t, values);
		json_decref(values);
		const char *into_s = json_is_string(into) ? json_string_value(into) : json_string_value(holder);
		if (into_s == NULL) {
			json_decref(holder);
			web_reply_error(out, 409, "conflict", NULL,
					"no row holds this duplicate's place any more: name the row to merge it into");
			return;
		}
		struct zila_value zi = { .type = ZILA_VAL_TEXT, .p = (const uint8_t *)into_s, .len = strlen(into_s) };
		struct zila_merged mg;
		memset(&mg, 0, sizeof(mg));
		r = zila_store_merge_duplicate(w->s, t->name, &pk, &zi, &mg, &err);
		json_decref(holder);
		if (r == 0)
			web_reply_json(out, 200, json_pack("{s:b, s:i, s:i}", "ok", 1, "filled", mg.nfilled, "moved", mg.nmoved));
		else
			web_reply_error(out, r == ZILA_ENOTFOUND ? 404 : 400, r == ZILA_ENOTFOUND ? "not_found" : "invalid",
					NULL, "%s", zila_error_msg(&err, r));
		return;
	}
	if ((strcmp(kind, "orphan") == 0 || strcmp(kind, "duplicate") == 0 || strcmp(kind, "invalid") == 0) &&
	    strcmp(choice, "drop") == 0) {
		r = zila_store_delete_row(w->s, t->name, &pk, &err);
		if (r == 0)
			web_reply_json(out, 200, json_pack("{s:b}", "ok", 1));
		else
			web_reply_error(out, 400, "invalid", NULL, "%s", zila_error_msg(&err, r));
		return;
	}
	web_reply_error(out, 400, "invalid", "choice", "no such resolution: conflict kept|lost|value, duplicate "
						       "merge|drop, orphan drop");
}

/* --- export -------------------------------------------------------------------------------- */

void web_export(struct zila_office_web *w, const char *query, struct zila_office_reply *out)
{
	char *table = web_query_get(query, "table");
	struct wtable *t = table ? web_table(w, table) : NULL;
	struct zila_error err;
	zila_error_clear(&err);
	FILE *f = NULL;
	if (t == NULL) {
		web_reply_error(out, 404, "not_found", "table", "no synced table '%s'", table ? table : "");
		goto out;
	}
	struct zila_csv_export_opts opts = { .table = t->name, .district = t->pcol ? w->district : NULL };
	f = tmpfile();
	int r = f ? zila_csv_export(w->db, &opts, f, NULL, &err) : ZILA_EIO;
	long n = r == 0 ? ftell(f) : -1;
	char *body = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (body == NULL || fseek(f, 0, SEEK_SET) != 0 || fread(body, 1, (size_t)n, f) != (size_t)n) {
		free(body);
		web_reply_error(out, 500, "internal", NULL, "cannot export '%s': %s", t->name,
				r ? zila_error_msg(&err, r) : "a temporary file failed");
		goto out;
	}
	out->status = 200;
	out->body = body;
	out->body_len = (size_t)n;
	snprintf(out->ctype, sizeof(out->ctype), "text/csv; charset=utf-8");
	snprintf(out->filename, sizeof(out->filename), "%s.csv", t->name);
out:
	if (f != NULL)
		fclose(f);
	free(table);
}
