/* The web interface's pages (include/zila/office/web.h): routing, the schema as forms,
 * records (list, search, page, view with history, add, edit, delete), foreign-key options.
 * Import, review and export are in web_tasks.c, HQ's progress in web_hq.c. Plain SQL on the user tables, scoped to the
 * device's district; the store for sync state and history. */
#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "office_int.h"
#include "web_int.h"
#include "zila/blob.h"
#include "zila/office/shrink.h"
#include "zila/trust.h"

/* --- answers --------------------------------------------------------------------------- */

void web_reply_json(struct zila_office_reply *out, int status, json_t *o)
{
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (s == NULL) {
		s = office_strdup("{\"error\":\"out of memory\",\"code\":\"internal\"}");
		status = 500;
	}
	out->status = status;
	out->body = s;
	out->body_len = s ? strlen(s) : 0;
	out->ctype[0] = '\0';
}

void web_reply_error(struct zila_office_reply *out, int status, const char *code, const char *field,
		     const char *fmt, ...)
{
	char msg[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_t *o = json_pack("{s:s, s:s}", "error", msg, "code", code);
	if (field != NULL)
		json_object_set_new(o, "field", json_string(field));
	web_reply_json(out, status, o);
}

/* --- the query string ------------------------------------------------------------------ */

static int hexv(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* n bytes of s form-decoded (+ is a space, %XX a byte) into a malloc'd string. */
static char *form_decode(const char *s, size_t n)
{
	char *o = malloc(n + 1), *p = o;
	if (o == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '+') {
			*p++ = ' ';
		} else if (s[i] == '%' && i + 2 < n && hexv(s[i + 1]) >= 0 && hexv(s[i + 2]) >= 0) {
			int v = hexv(s[i + 1]) * 16 + hexv(s[i + 2]);
			*p++ = (char)(v ? v : ' ');
			i += 2;
		} else {
			*p++ = s[i];
		}
	}
	*p = '\0';
	return o;
}

/* Calls fn(ctx, key, value) for each key=value of the query, decoded. */
static void query_each(const char *q, void (*fn)(void *ctx, const char *k, const char *v), void *ctx)
{
	while (q && *q) {
		const char *amp = strchr(q, '&');
		size_t n = amp ? (size_t)(amp - q) : strlen(q);
		const char *eq = memchr(q, '=', n);
		char *k = form_decode(q, eq ? (size_t)(eq - q) : n);
		char *v = eq ? form_decode(eq + 1, n - (size_t)(eq - q) - 1) : office_strdup("");
		if (k && v)
			fn(ctx, k, v);
		free(k);
		free(v);
		q = amp ? amp + 1 : NULL;
	}
}

struct qfind {
	const char *key;
	char *val;
};

static void qfind_cb(void *ctx, const char *k, const char *v)
{
	struct qfind *f = ctx;
	if (f->val == NULL && strcmp(k, f->key) == 0)
		f->val = office_strdup(v);
}

char *web_query_get(const char *query, const char *key)
{
	struct qfind f = { key, NULL };
	query_each(query, qfind_cb, &f);
	return f.val;
}

/* --- the schema -------------------------------------------------------------------------- */

static void col_free(struct wcol *c)
{
	free(c->name);
	free(c->type);
	free(c->dflt);
	free(c->fk_table);
	for (size_t i = 0; i < c->nchoices; i++)
		free(c->choices[i]);
	free(c->choices);
}

static void tables_free(struct zila_office_web *w)
{
	for (size_t i = 0; i < w->ntables; i++) {
		struct wtable *t = &w->tables[i];
		for (size_t j = 0; j < t->ncols; j++)
			col_free(&t->cols[j]);
		free(t->cols);
		free(t->name);
		free(t->pcol);
	}
	free(w->tables);
	w->tables = NULL;
	w->ntables = 0;
}

static int add_table(void *ctx, const char *name, const char *pcol)
{
	struct zila_office_web *w = ctx;
	struct wtable *nt = realloc(w->tables, (w->ntables + 1) * sizeof(*nt));
	if (nt == NULL)
		return ZILA_ENOMEM;
	w->tables = nt;
	struct wtable *t = &nt[w->ntables++];
	memset(t, 0, sizeof(*t));
	t->name = office_strdup(name);
	t->pcol = pcol ? office_strdup(pcol) : NULL;
	t->display = t->display2 = t->code = t->phone = t->pk = -1;
	return t->name == NULL ? ZILA_ENOMEM : 0;
}

static int find_col(const struct wtable *t, const char *name)
{
	for (size_t i = 0; i < t->ncols; i++)
		if (strcmp(t->cols[i].name, name) == 0)
			return (int)i;
	return -1;
}

const char *web_strcasestr(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (; *hay; hay++) {
		size_t i = 0;
		while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
			i++;
		if (i == n)
			return hay;
	}
	return NULL;
}

static bool prefix_ieq(const char *p, const char *word, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] == '\0' || tolower((unsigned char)p[i]) != tolower((unsigned char)word[i]))
			return false;
	return true;
}

/* Skips spaces; true when s continues with word (case-insensitive) as a whole word. */
static bool word_at(const char **s, const char *word)
{
	const char *p = *s;
	while (isspace((unsigned char)*p))
		p++;
	size_t n = strlen(word);
	if (!prefix_ieq(p, word, n) || isalnum((unsigned char)p[n]) || p[n] == '_')
		return false;
	*s = p + n;
	return true;
}

/* An identifier (plain, "quoted" or `quoted`) at *s into out; false when there is none. */
static bool ident_at(const char **s, char *out, size_t n)
{
	const char *p = *s;
	while (isspace((unsigned char)*p))
		p++;
	size_t k = 0;
	if (*p == '"' || *p == '`' || *p == '[') {
		char close = *p == '[' ? ']' : *p;
		p++;
		while (*p && *p != close && k + 1 < n)
			out[k++] = *p++;
		if (*p != close)
			return false;
		p++;
	} else {
		while ((isalnum((unsigned char)*p) || *p == '_') && k + 1 < n)
			out[k++] = *p++;
	}
	out[k] = '\0';
	*s = p;
	return k > 0;
}

/* A 'literal' at *s into out. */
static bool literal_at(const char **s, char *out, size_t n)
{
	const char *p = *s;
	while (isspace((unsigned char)*p))
		p++;
	if (*p != '\'')
		return false;
	p++;
	size_t k = 0;
	for (;;) {
		if (*p == '\0')
			return false;
		if (*p == '\'') {
			if (p[1] != '\'')
				break;
			p++;
		}
		if (k + 1 < n)
			out[k++] = *p;
		p++;
	}
	out[k] = '\0';
	*s = p + 1;
	return true;
}

static void add_choice(struct wcol *c, const char *v)
{
	char **nc = realloc(c->choices, (c->nchoices + 1) * sizeof(*nc));
	if (nc == NULL)
		return;
	c->choices = nc;
	if ((nc[c->nchoices] = office_strdup(v)) != NULL)
		c->nchoices++;
}

/* The CHECKs of a CREATE TABLE as form rules: `c = 'a' OR c = 'b'` (or c IN ('a', 'b'))
 * becomes choices, `c BETWEEN x AND y` and `c >= x` bounds. Anything else is left to the
 * database, whose refusal the form shows. */
static void parse_checks(struct wtable *t, const char *sql)
{
	for (const char *p = sql; (p = web_strcasestr(p, "CHECK")) != NULL;) {
		p += 5;
		const char *q = p;
		while (isspace((unsigned char)*q))
			q++;
		if (*q != '(')
			continue;
		/* the group's extent */
		int depth = 0;
		const char *end = q;
		for (; *end; end++) {
			if (*end == '(')
				depth++;
			else if (*end == ')' && --depth == 0)
				break;
		}
		if (*end != ')')
			return;
		size_t glen = (size_t)(end - q - 1);
		char *g = malloc(glen + 1);
		if (g == NULL)
			return;
		memcpy(g, q + 1, glen);
		g[glen] = '\0';
		char col[128], first[128] = "", lit[256];
		const char *s = g;
		bool choices_ok = true;
		size_t nlit = 0;
		char lits[32][256];
		/* c = 'a' OR c = 'b' ... */
		while (choices_ok && *s) {
			if (!ident_at(&s, col, sizeof(col))) {
				choices_ok = false;
				break;
			}
			if (first[0] == '\0')
				snprintf(first, sizeof(first), "%s", col);
			else if (strcmp(first, col) != 0)
				choices_ok = false;
			while (isspace((unsigned char)*s))
				s++;
			if (*s == '=') {
				s++;
				if (!literal_at(&s, lit, sizeof(lit))) {
					choices_ok = false;
					break;
				}
				if (nlit < 32)
					snprintf(lits[nlit++], sizeof(lits[0]), "%s", lit);
			} else if (word_at(&s, "IN")) {
				while (isspace((unsigned char)*s))
					s++;
				if (*s++ != '(') {
					choices_ok = false;
					break;
				}
				while (literal_at(&s, lit, sizeof(lit))) {
					if (nlit < 32)
						snprintf(lits[nlit++], sizeof(lits[0]), "%s", lit);
					while (isspace((unsigned char)*s))
						s++;
					if (*s == ',')
						s++;
				}
				while (isspace((unsigned char)*s))
					s++;
				if (*s++ != ')')
					choices_ok = false;
			} else if (word_at(&s, "BETWEEN")) {
				char *e1, *e2;
				double a = strtod(s, &e1);
				const char *x = e1;
				if (e1 != s && word_at(&x, "AND")) {
					double b = strtod(x, &e2);
					int ci = find_col(t, col);
					if (e2 != x && ci >= 0) {
						t->cols[ci].has_min = t->cols[ci].has_max = true;
						t->cols[ci].min = a;
						t->cols[ci].max = b;
					}
				}
				choices_ok = false;
				nlit = 0;
				break;
			} else if (s[0] == '>' && s[1] == '=') {
				char *e1;
				double a = strtod(s + 2, &e1);
				int ci = find_col(t, col);
				if (e1 != s + 2 && ci >= 0) {
					t->cols[ci].has_min = true;
					t->cols[ci].min = a;
				}
				choices_ok = false;
				nlit = 0;
				break;
			} else {
				choices_ok = false;
				break;
			}
			if (!word_at(&s, "OR")) {
				while (isspace((unsigned char)*s))
					s++;
				if (*s != '\0')
					choices_ok = false;
				break;
			}
		}
		int ci = first[0] ? find_col(t, first) : -1;
		if (choices_ok && nlit > 0 && ci >= 0 && t->cols[ci].nchoices == 0)
			for (size_t i = 0; i < nlit; i++)
				add_choice(&t->cols[ci], lits[i]);
		free(g);
		p = end;
	}
}

static int load_columns(struct zila_office_web *w, struct wtable *t)
{
	sqlite3_stmt *st = NULL;
	int r = ZILA_EDB;
	char *q = sqlite3_mprintf("SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(%Q)", t->name);
	if (q == NULL || sqlite3_prepare_v2(w->db, q, -1, &st, NULL) != SQLITE_OK)
		goto out;
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct wcol *nc = realloc(t->cols, (t->ncols + 1) * sizeof(*nc));
		if (nc == NULL) {
			r = ZILA_ENOMEM;
			goto out;
		}
		t->cols = nc;
		struct wcol *c = &nc[t->ncols++];
		memset(c, 0, sizeof(*c));
		c->name = office_strdup((const char *)sqlite3_column_text(st, 0));
		const char *ty = (const char *)sqlite3_column_text(st, 1);
		c->type = office_strdup(ty && web_strcasestr(ty, "INT") ? "INTEGER"
					: ty && (web_strcasestr(ty, "REAL") || web_strcasestr(ty, "FLOA") || web_strcasestr(ty, "DOUB"))
						? "REAL"
						: "TEXT");
		c->notnull = sqlite3_column_int(st, 2) != 0;
		if (sqlite3_column_type(st, 3) != SQLITE_NULL)
			c->dflt = office_strdup((const char *)sqlite3_column_text(st, 3));
		c->pk = sqlite3_column_int(st, 4) != 0;
		if (c->name == NULL || c->type == NULL) {
			r = ZILA_ENOMEM;
			goto out;
		}
	}
	sqlite3_finalize(st);
	st = NULL;
	sqlite3_free(q);
	q = sqlite3_mprintf("SELECT \"from\", \"table\" FROM pragma_foreign_key_list(%Q)", t->name);
	if (q == NULL || sqlite3_prepare_v2(w->db, q, -1, &st, NULL) != SQLITE_OK)
		goto out;
	while (sqlite3_step(st) == SQLITE_ROW) {
		int ci = find_col(t, (const char *)sqlite3_column_text(st, 0));
		if (ci >= 0 && t->cols[ci].fk_table == NULL)
			t->cols[ci].fk_table = office_strdup((const char *)sqlite3_column_text(st, 1));
	}
	sqlite3_finalize(st);
	st = NULL;
	sqlite3_free(q);
	q = sqlite3_mprintf("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = %Q", t->name);
	if (q == NULL || sqlite3_prepare_v2(w->db, q, -1, &st, NULL) != SQLITE_OK)
		goto out;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
		parse_checks(t, (const char *)sqlite3_column_text(st, 0));
	static const char *const names[] = { "name", "title", "label", "code" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && t->display < 0; i++)
		t->display = find_col(t, names[i]);
	for (size_t i = 0; i < t->ncols; i++)
		if (t->cols[i].pk)
			t->pk = (int)i;
	if (t->display < 0)
		t->display = t->pk;
	t->display2 = find_col(t, "name_local");
	t->code = find_col(t, "code");
	t->phone = find_col(t, "phone");
	sqlite3_finalize(st);
	st = NULL;
	sqlite3_free(q);
	q = sqlite3_mprintf("SELECT rowid FROM \"%w\" LIMIT 0", t->name);
	t->has_rowid = q != NULL && sqlite3_prepare_v2(w->db, q, -1, &st, NULL) == SQLITE_OK;
	r = t->pk >= 0 ? 0 : ZILA_EINVAL;
out:
	sqlite3_finalize(st);
	sqlite3_free(q);
	return r;
}

/* The synced tables and their columns, read again whenever the schema changed. */
int web_schema(struct zila_office_web *w)
{
	sqlite3_stmt *st = NULL;
	int64_t v = -1;
	if (sqlite3_prepare_v2(w->db, "PRAGMA schema_version", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (v == w->schema_version && w->tables != NULL)
		return 0;
	tables_free(w);
	int r = zila_store_table_each(w->s, add_table, w);
	for (size_t i = 0; r == 0 && i < w->ntables; i++)
		r = load_columns(w, &w->tables[i]);
	if (r != 0) {
		tables_free(w);
		return r;
	}
	w->schema_version = v;
	return 0;
}

struct wtable *web_table(struct zila_office_web *w, const char *name)
{
	for (size_t i = 0; i < w->ntables; i++)
		if (strcmp(w->tables[i].name, name) == 0)
			return &w->tables[i];
	return NULL;
}

/* --- scope ------------------------------------------------------------------------------- */

/* Whether the device may write t at all (a district laptop: not the org-wide tables). */
static bool table_writable(const struct zila_office_web *w, const struct wtable *t)
{
	if (w->viewer)
		return false;
	return w->district == NULL || t->pcol != NULL;
}

/* The scope condition for SELECTs of t, as SQL text appended to b (with " AND " first when
 * and): a district laptop sees its district's rows and the org-wide ones. */
void web_scope_sql(const struct zila_office_web *w, const struct wtable *t, struct office_sb *b, bool and)
{
	if (w->district == NULL || t->pcol == NULL)
		return;
	office_sb_str(b, and ? " AND (" : " (");
	office_sb_ident(b, t->pcol);
	office_sb_str(b, " = ");
	char *lit = sqlite3_mprintf("%Q", w->district);
	office_sb_str(b, lit ? lit : "NULL");
	sqlite3_free(lit);
	office_sb_str(b, " OR ");
	office_sb_ident(b, t->pcol);
	office_sb_str(b, " IS NULL)");
}

/* --- values ------------------------------------------------------------------------------ */

json_t *web_column_json(sqlite3_stmt *st, int i)
{
	switch (sqlite3_column_type(st, i)) {
	case SQLITE_INTEGER:
		return json_integer(sqlite3_column_int64(st, i));
	case SQLITE_FLOAT:
		return json_real(sqlite3_column_double(st, i));
	case SQLITE_NULL:
		return json_null();
	default:
		return json_stringn((const char *)sqlite3_column_text(st, i), (size_t)sqlite3_column_bytes(st, i));
	}
}

/* A row's label: "code — name" where the table has both (an org unit), else its display. */
static void label_sql(const struct wtable *t, struct office_sb *b)
{
	if (t->code >= 0 && t->display >= 0 && t->display != t->code) {
		office_sb_str(b, "CASE WHEN ");
		office_sb_ident(b, t->cols[t->code].name);
		office_sb_str(b, " IS NOT NULL THEN ");
		office_sb_ident(b, t->cols[t->code].name);
		office_sb_str(b, " || ' — ' || ");
		office_sb_ident(b, t->cols[t->display].name);
		office_sb_str(b, " ELSE ");
		office_sb_ident(b, t->cols[t->display].name);
		office_sb_str(b, " END");
	} else {
		office_sb_ident(b, t->cols[t->display].name);
	}
}

/* The label of id in table t (NULL when there is none in scope). */
json_t *web_row_label(struct zila_office_web *w, const struct wtable *t, const char *id)
{
	struct office_sb b = { 0 };
	sqlite3_stmt *st = NULL;
	json_t *out = NULL;
	office_sb_str(&b, "SELECT ");
	label_sql(t, &b);
	office_sb_str(&b, " FROM ");
	office_sb_ident(&b, t->name);
	office_sb_str(&b, " WHERE ");
	office_sb_ident(&b, t->cols[t->pk].name);
	office_sb_str(&b, " = ?");
	web_scope_sql(w, t, &b, true);
	if (office_prepare(w->db, &b, &st, NULL) == 0) {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			out = web_column_json(st, 0);
	}
	sqlite3_finalize(st);
	free(b.p);
	return out;
}

static const char *sync_word(int state)
{
	return state == ZILA_ROW_AT_HQ ? "at_hq" : state == ZILA_ROW_CONFLICT ? "conflict" : "local";
}

static int64_t hq_acked(struct zila_office_web *w)
{
	/* The daemon's count of our entries HQ acknowledged (zila/daemon.h, net.own_synced_hq). */
	char *v = NULL;
	int64_t n = 0;
	if (zila_store_meta_get(w->s, "net.own_synced_hq", &v) == 0 && v != NULL)
		n = strtoll(v, NULL, 10);
	free(v);
	return n;
}

/* The current row of st (every column of t) as an object, with _labels and _sync. */
static json_t *row_json(struct zila_office_web *w, const struct wtable *t, sqlite3_stmt *st, int64_t acked)
{
	json_t *o = json_object(), *labels = json_object();
	for (size_t i = 0; i < t->ncols; i++) {
		json_object_set_new(o, t->cols[i].name, web_column_json(st, (int)i));
		const char *v = (const char *)sqlite3_column_text(st, (int)i);
		if (t->cols[i].fk_table && v != NULL) {
			struct wtable *ft = web_table(w, t->cols[i].fk_table);
			json_t *l = ft ? web_row_label(w, ft, v) : NULL;
			if (l != NULL)
				json_object_set_new(labels, t->cols[i].name, l);
		}
	}
	json_object_set_new(o, "_labels", labels);
	struct zila_value pk;
	memset(&pk, 0, sizeof(pk));
	int pt = sqlite3_column_type(st, t->pk);
	if (pt == SQLITE_INTEGER) {
		pk.type = ZILA_VAL_INT;
		pk.i = sqlite3_column_int64(st, t->pk);
	} else {
		pk.type = ZILA_VAL_TEXT;
		pk.p = sqlite3_column_text(st, t->pk);
		pk.len = (size_t)sqlite3_column_bytes(st, t->pk);
	}
	int state = ZILA_ROW_LOCAL;
	if (zila_store_row_sync(w->s, t->name, &pk, acked, w->hq, &state) != 0)
		state = ZILA_ROW_LOCAL;
	json_object_set_new(o, "_sync", json_string(sync_word(state)));
	return o;
}

/* SELECT every column of t, in table order, and extra (may be ""). */
static void select_cols_and(const struct wtable *t, struct office_sb *b, const char *extra)
{
	office_sb_str(b, "SELECT ");
	for (size_t i = 0; i < t->ncols; i++) {
		if (i)
			office_sb_str(b, ", ");
		office_sb_ident(b, t->cols[i].name);
	}
	office_sb_str(b, extra);
	office_sb_str(b, " FROM ");
	office_sb_ident(b, t->name);
}

static void select_cols(const struct wtable *t, struct office_sb *b)
{
	select_cols_and(t, b, "");
}

/* --- GET /api/session, /api/tables --------------------------------------------------------- */

static void get_session(struct zila_office_web *w, struct zila_office_reply *out)
{
	json_t *district = json_null();
	if (w->district != NULL) {
		char *name = NULL;
		sqlite3_stmt *st = NULL;
		if (sqlite3_prepare_v2(w->db, "SELECT name, name_local FROM districts WHERE id = ?", -1, &st, NULL) ==
		    SQLITE_OK) {
			sqlite3_bind_text(st, 1, w->district, -1, SQLITE_STATIC);
			if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
				name = office_strdup((const char *)sqlite3_column_text(st, 0));
		}
		sqlite3_finalize(st);
		district = json_pack("{s:s, s:s}", "id", w->district, "name", name ? name : w->district);
		free(name);
	}
	char *lang = NULL, *mx = NULL, *sh = NULL;
	if (zila_store_meta_get(w->s, "web.lang", &lang) != 0)
		lang = NULL;
	if (zila_store_meta_get(w->s, "attach.max_bytes", &mx) != 0)
		mx = NULL;
	if (zila_store_meta_get(w->s, "attach.shrink", &sh) != 0)
		sh = NULL;
	json_t *o = json_pack("{s:{s:s, s:s}, s:o, s:o, s:s, s:s}", "device", "id", w->device_id, "name", w->name,
			      "district", district, "org",
			      w->org ? json_pack("{s:s}", "name", w->org) : json_null(), "role", w->hq ? "hq" : "laptop",
			      "lang", lang && strcmp(lang, "hi") == 0 ? "hi" : "en");
	free(lang);
	/* what the upload form needs: the office's limit (checked again by the daemon), the
	 * shrink checkbox's default, and whether this build can shrink */
	json_object_set_new(o, "attach",
			    json_pack("{s:I, s:b, s:b}", "max_bytes",
				      (json_int_t)(mx && mx[0] ? strtoull(mx, NULL, 10) : ZILA_BLOB_MAX_DEFAULT), "shrink",
				      sh && strcmp(sh, "on") == 0, "can_shrink", zila_shrink_available()));
	free(mx);
	free(sh);
	web_reply_json(out, 200, o);
}

/* PUT /api/session {lang}: the language the interface speaks, kept in the replica's settings. */
static void put_session(struct zila_office_web *w, json_t *body, struct zila_office_reply *out)
{
	const char *lang = json_string_value(json_object_get(body, "lang"));
	if (lang == NULL || (strcmp(lang, "en") != 0 && strcmp(lang, "hi") != 0)) {
		web_reply_error(out, 400, "invalid", "lang", "the language is \"en\" or \"hi\"");
		return;
	}
	if (zila_store_meta_set(w->s, "web.lang", lang) != 0) {
		web_reply_error(out, 500, "internal", NULL, "cannot keep the language in the replica's settings");
		return;
	}
	web_reply_json(out, 200, json_pack("{s:s}", "lang", lang));
}

static void label_of(const char *name, char *out, size_t n)
{
	snprintf(out, n, "%s", name);
	for (char *p = out; *p; p++)
		if (*p == '_')
			*p = ' ';
}

static void get_tables(struct zila_office_web *w, struct zila_office_reply *out)
{
	json_t *arr = json_array();
	char label[256];
	for (size_t i = 0; i < w->ntables; i++) {
		const struct wtable *t = &w->tables[i];
		json_t *cols = json_array();
		for (size_t j = 0; j < t->ncols; j++) {
			const struct wcol *c = &t->cols[j];
			label_of(c->name, label, sizeof(label));
			json_t *o = json_pack("{s:s, s:s, s:b, s:b, s:s}", "name", c->name, "type", c->type, "notnull",
					      c->notnull, "pk", c->pk, "label", label);
			json_object_set_new(o, "default", c->dflt ? json_string(c->dflt) : json_null());
			json_t *fk = json_null();
			if (c->fk_table) {
				const struct wtable *ft = web_table(w, c->fk_table);
				fk = json_pack("{s:s, s:s}", "table", c->fk_table, "display",
					       ft ? ft->cols[ft->display].name : "id");
			}
			json_object_set_new(o, "fk", fk);
			json_t *ch = json_null();
			if (c->nchoices) {
				ch = json_array();
				for (size_t k = 0; k < c->nchoices; k++)
					json_array_append_new(ch, json_string(c->choices[k]));
			}
			json_object_set_new(o, "choices", ch);
			json_object_set_new(o, "min", c->has_min ? json_real(c->min) : json_null());
			json_object_set_new(o, "max", c->has_max ? json_real(c->max) : json_null());
			json_array_append_new(cols, o);
		}
		label_of(t->name, label, sizeof(label));
		json_array_append_new(arr, json_pack("{s:s, s:s, s:o, s:b, s:b, s:s, s:o}", "name", t->name, "label", label,
						     "partition", t->pcol ? json_string(t->pcol) : json_null(),
						     "org_wide", t->pcol == NULL, "writable", table_writable(w, t),
						     "display", t->cols[t->display].name, "columns", cols));
	}
	web_reply_json(out, 200, json_pack("{s:o}", "tables", arr));
}

/* --- GET /api/tables/T/rows ---------------------------------------------------------------- */

struct list_q {
	const struct wtable *t;
	struct office_sb where;
	const char *bad; /* a filter naming no column */
	char *binds[32];
	size_t nbinds;
};

static void list_filter(void *ctx, const char *k, const char *v)
{
	struct list_q *l = ctx;
	if (strncmp(k, "f.", 2) != 0)
		return;
	int ci = find_col(l->t, k + 2);
	if (ci < 0) {
		l->bad = l->t->name; /* any */
		return;
	}
	if (l->nbinds >= 32)
		return;
	office_sb_str(&l->where, " AND ");
	office_sb_ident(&l->where, l->t->cols[ci].name);
	if (v[0] == '\0') {
		office_sb_str(&l->where, " IS NULL");
		return;
	}
	office_sb_fmt(&l->where, " = ?%zu", 3 + l->nbinds);
	l->binds[l->nbinds++] = office_strdup(v);
}

static long num_arg(const char *query, const char *key, long dflt, long lo, long hi)
{
	char *v = web_query_get(query, key), *end;
	long n = dflt;
	if (v != NULL && v[0]) {
		n = strtol(v, &end, 10);
		if (*end != '\0')
			n = dflt;
	}
	free(v);
	return n < lo ? lo : n > hi ? hi : n;
}

/* The search: the name columns (English and local) contain q, or the phone contains its
 * digits; case-insensitive for ASCII. */
static void search_sql(const struct wtable *t, struct office_sb *b, bool phone_too)
{
	office_sb_str(b, " AND (");
	office_sb_ident(b, t->cols[t->display].name);
	office_sb_str(b, " LIKE ?1 ESCAPE '\\'");
	if (t->display2 >= 0) {
		office_sb_str(b, " OR ");
		office_sb_ident(b, t->cols[t->display2].name);
		office_sb_str(b, " LIKE ?1 ESCAPE '\\'");
	}
	if (t->code >= 0 && t->code != t->display) {
		office_sb_str(b, " OR ");
		office_sb_ident(b, t->cols[t->code].name);
		office_sb_str(b, " LIKE ?1 ESCAPE '\\'");
	}
	if (phone_too && t->phone >= 0) {
		office_sb_str(b, " OR ");
		office_sb_ident(b, t->cols[t->phone].name);
		office_sb_str(b, " LIKE ?2");
	}
	office_sb_str(b, ")");
}

/* '%q%' with LIKE's own characters escaped; and the digits of q for the phone ('' when q has
 * fewer than 3). */
static void like_patterns(const char *q, char **pat, char **digits)
{
	size_t n = strlen(q);
	char *p = malloc(2 * n + 3), *d = malloc(n + 3);
	*pat = p;
	*digits = d;
	if (p == NULL || d == NULL)
		return;
	*p++ = '%';
	size_t nd = 0;
	*d++ = '%';
	for (const char *s = q; *s; s++) {
		if (*s == '%' || *s == '_' || *s == '\\')
			*p++ = '\\';
		*p++ = *s;
		if (isdigit((unsigned char)*s))
			d[nd++] = *s;
	}
	*p++ = '%';
	*p = '\0';
	d[nd] = '%';
	d[nd + 1] = '\0';
	if (nd < 3)
		(*digits)[0] = '\0';
}

/* The list is ordered by the display column (a member's name) on the server: a local index
 * on it makes a page, near or deep, a walk of the index instead of a sort of the district.
 * Local to this replica (not synced, no schema version): an index HQ adds of the same name is
 * adopted as it is. Made the first time the table is listed (on a replica of 20,000 members
 * that takes about 0.1 s, once); a daemon whose interface nobody opens changes nothing. */
static void sort_index(struct zila_office_web *w, struct wtable *t)
{
	if (t->indexed)
		return;
	t->indexed = true;
	sqlite3_stmt *st = NULL;
	char name[300];
	snprintf(name, sizeof(name), "web_%s_%s", t->name, t->cols[t->display].name);
	bool have = false;
	if (sqlite3_prepare_v2(w->db, "SELECT 1 FROM sqlite_schema WHERE type = 'index' AND name = ?", -1, &st, NULL) ==
	    SQLITE_OK) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		have = sqlite3_step(st) == SQLITE_ROW;
	}
	sqlite3_finalize(st);
	if (have || t->display == t->pk)
		return;
	char *sql = t->pcol ? sqlite3_mprintf("CREATE INDEX IF NOT EXISTS \"%w\" ON \"%w\"(\"%w\", \"%w\")", name,
					      t->name, t->cols[t->display].name, t->pcol)
			    : sqlite3_mprintf("CREATE INDEX IF NOT EXISTS \"%w\" ON \"%w\"(\"%w\")", name, t->name,
					      t->cols[t->display].name);
	if (sql != NULL)
		(void)sqlite3_exec(w->db, sql, NULL, NULL, NULL); /* without it the list is slower, not wrong */
	sqlite3_free(sql);
}

static void get_rows(struct zila_office_web *w, struct wtable *t, const char *query, struct zila_office_reply *out)
{
	struct list_q l;
	memset(&l, 0, sizeof(l));
	l.t = t;
	sqlite3_stmt *st = NULL;
	struct office_sb b = { 0 };
	char *q = web_query_get(query, "q"), *sort = web_query_get(query, "sort");
	char *pat = NULL, *digits = NULL;
	long offset = num_arg(query, "offset", 0, 0, 100000000), limit = num_arg(query, "limit", 50, 1, 200);
	sort_index(w, t);
	office_sb_str(&l.where, " WHERE 1");
	web_scope_sql(w, t, &l.where, true);
	query_each(query, list_filter, &l);
	if (l.bad != NULL) {
		web_reply_error(out, 400, "invalid", NULL, "a filter names a column '%s' does not have", t->name);
		goto out;
	}
	bool searching = q != NULL && q[0] != '\0';
	if (searching) {
		like_patterns(q, &pat, &digits);
		if (pat == NULL || digits == NULL) {
			web_reply_error(out, 500, "internal", NULL, "out of memory");
			goto out;
		}
		search_sql(t, &l.where, digits[0] != '\0');
	}
	int sort_col = t->display;
	bool desc = false;
	if (sort != NULL && sort[0]) {
		desc = sort[0] == '-';
		sort_col = find_col(t, sort + (desc ? 1 : 0));
		if (sort_col < 0) {
			web_reply_error(out, 400, "invalid", "sort", "no column '%s' in '%s' to sort by", sort + (desc ? 1 : 0),
					t->name);
			goto out;
		}
	}
	/* The page. Listed by the display column, a rowid table's page is found in its sort
	 * index alone (display, partition, rowid: the order it keeps), and only the page's rows
	 * are read; a search reads the rows anyway, and sorts what it found ("+": not by the
	 * index, which would read the district in name order to find a few). */
	b.len = 0;
	struct office_sb order = { 0 };
	bool by_index = sort_col == t->display && t->has_rowid && !searching && l.nbinds == 0;
	office_sb_str(&order, " ORDER BY ");
	office_sb_str(&order, searching ? "+" : "");
	office_sb_ident(&order, t->cols[sort_col].name);
	office_sb_str(&order, desc ? " DESC, " : ", ");
	if (by_index && t->pcol) {
		office_sb_ident(&order, t->pcol);
		office_sb_str(&order, desc ? " DESC, " : ", ");
	}
	if (t->has_rowid)
		office_sb_str(&order, desc ? "rowid DESC" : "rowid");
	else
		office_sb_ident(&order, t->cols[t->pk].name);
	select_cols_and(t, &b, by_index ? "" : ", count(*) OVER ()");
	if (by_index) {
		office_sb_str(&b, " WHERE rowid IN (SELECT rowid FROM ");
		office_sb_ident(&b, t->name);
		office_sb_add(&b, l.where.p, l.where.len);
		office_sb_add(&b, order.p, order.len);
		office_sb_fmt(&b, " LIMIT %ld OFFSET %ld)", limit, offset);
		office_sb_add(&b, order.p, order.len);
	} else {
		/* one pass finds the page and counts what matched */
		office_sb_add(&b, l.where.p, l.where.len);
		office_sb_add(&b, order.p, order.len);
		office_sb_fmt(&b, " LIMIT %ld OFFSET %ld", limit, offset);
	}
	free(order.p);
	if (office_prepare(w->db, &b, &st, NULL) != 0)
		goto db_error;
	if (searching) {
		sqlite3_bind_text(st, 1, pat, -1, SQLITE_STATIC);
		if (digits[0])
			sqlite3_bind_text(st, 2, digits, -1, SQLITE_STATIC);
	}
	for (size_t i = 0; i < l.nbinds; i++)
		sqlite3_bind_text(st, (int)(3 + i), l.binds[i], -1, SQLITE_STATIC);
	json_t *rows = json_array();
	int64_t acked = hq_acked(w);
	int rc;
	int64_t total = -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (!by_index)
			total = sqlite3_column_int64(st, (int)t->ncols);
		json_array_append_new(rows, row_json(w, t, st, acked));
	}
	if (rc != SQLITE_DONE) {
		json_decref(rows);
		goto db_error;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (total < 0) {
		b.len = 0;
		/* the count, when the page did not say it */
		office_sb_str(&b, "SELECT count(*) FROM ");
		office_sb_ident(&b, t->name);
		office_sb_add(&b, l.where.p, l.where.len);
		if (office_prepare(w->db, &b, &st, NULL) != 0) {
			json_decref(rows);
			goto db_error;
		}
		if (searching) {
			sqlite3_bind_text(st, 1, pat, -1, SQLITE_STATIC);
			if (digits[0])
				sqlite3_bind_text(st, 2, digits, -1, SQLITE_STATIC);
		}
		for (size_t i = 0; i < l.nbinds; i++)
			sqlite3_bind_text(st, (int)(3 + i), l.binds[i], -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			total = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
		st = NULL;
	}
	web_reply_json(out, 200, json_pack("{s:o, s:I, s:i, s:i}", "rows", rows, "total", (json_int_t)total, "offset",
					   (int)offset, "limit", (int)limit));
	goto out;
db_error:
	web_reply_error(out, 500, "internal", NULL, "cannot read '%s': %s", t->name, sqlite3_errmsg(w->db));
out:
	sqlite3_finalize(st);
	for (size_t i = 0; i < l.nbinds; i++)
		free(l.binds[i]);
	free(l.where.p);
	free(b.p);
	free(q);
	free(sort);
	free(pat);
	free(digits);
}

/* --- one row -------------------------------------------------------------------------------- */

/* Reads row id of t in scope into *row (NULL when absent or out of scope). */
static int read_row(struct zila_office_web *w, const struct wtable *t, const char *id, bool scoped, json_t **row)
{
	struct office_sb b = { 0 };
	sqlite3_stmt *st = NULL;
	*row = NULL;
	select_cols(t, &b);
	office_sb_str(&b, " WHERE ");
	office_sb_ident(&b, t->cols[t->pk].name);
	office_sb_str(&b, " = ?");
	if (scoped)
		web_scope_sql(w, t, &b, true);
	int r = office_prepare(w->db, &b, &st, NULL);
	free(b.p);
	if (r != 0)
		return r;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*row = row_json(w, t, st, hq_acked(w));
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : ZILA_EDB;
}

/* History: the changes of one row, oldest first as the store walks them; old values are
 * what the walk saw before. */
struct hist {
	struct zila_office_web *w;
	const struct wtable *t;
	json_t *items;
	json_t *last; /* column -> last value seen */
};

static json_t *value_json(const struct zila_value *v)
{
	switch (v->type) {
	case ZILA_VAL_INT:
		return json_integer(v->i);
	case ZILA_VAL_REAL:
		return json_real(v->d);
	case ZILA_VAL_TEXT:
		return json_stringn((const char *)v->p, v->len);
	case ZILA_VAL_BLOB:
		return json_string("(bytes)");
	default:
		return json_null();
	}
}

static void device_name(struct zila_office_web *w, const uint8_t pk[32], char *out, size_t n)
{
	struct zila_cert c;
	if (zila_trust_cert_get(w->s, pk, &c) == 0 && c.name[0]) {
		snprintf(out, n, "%s", c.name);
		return;
	}
	char id[ZILA_DEVICE_ID_LEN + 1];
	zila_device_id(pk, id);
	snprintf(out, n, "%s", id);
}

/* A foreign key's old and new ids get their labels beside them, as rows' _labels:
 * {"old":"110 — Kishunpur", "new":...} (a side without a row in scope has none). */
static void hist_labels(struct hist *h, const char *col, json_t *ch)
{
	int i = find_col(h->t, col);
	struct wtable *ft = i >= 0 && h->t->cols[i].fk_table ? web_table(h->w, h->t->cols[i].fk_table) : NULL;
	if (ft == NULL)
		return;
	json_t *labels = json_object();
	static const char *const sides[] = { "old", "new" };
	for (size_t k = 0; k < 2; k++) {
		json_t *v = json_object_get(ch, sides[k]);
		json_t *l = json_is_string(v) ? web_row_label(h->w, ft, json_string_value(v)) : NULL;
		if (l != NULL)
			json_object_set_new(labels, sides[k], l);
	}
	json_object_set_new(ch, "_labels", labels);
}

static int hist_cb(void *ctx, const struct zila_change *c)
{
	struct hist *h = ctx;
	json_t *changes = json_array();
	if (c->op == ZILA_OP_DELETE) {
		json_array_append_new(changes, json_pack("{s:s, s:n, s:n}", "col", "(deleted)", "old", "new"));
	} else {
		for (size_t i = 0; i < c->ncols; i++) {
			json_t *nv = value_json(&c->vals[i]);
			json_t *ov = json_object_get(h->last, c->cols[i]);
			if ((ov != NULL && json_equal(ov, nv)) || (ov == NULL && json_is_null(nv))) {
				json_decref(nv);
				continue;
			}
			json_t *ch = json_pack("{s:s, s:O, s:O}", "col", c->cols[i], "old", ov ? ov : json_null(), "new", nv);
			hist_labels(h, c->cols[i], ch);
			json_array_append_new(changes, ch);
			json_object_set_new(h->last, c->cols[i], nv);
		}
	}
	char name[ZILA_NAME_MAX + 40];
	device_name(h->w, c->entry->origin, name, sizeof(name));
	json_array_insert_new(h->items, 0,
			      json_pack("{s:I, s:s, s:s, s:o}", "when", (json_int_t)(zila_hlc_ms(c->entry->hlc) / 1000),
					"device", name, "op", c->op == ZILA_OP_DELETE ? "delete" : "write", "changes",
					changes));
	return 0;
}

static void get_row(struct zila_office_web *w, struct wtable *t, const char *id, struct zila_office_reply *out)
{
	json_t *row = NULL;
	if (read_row(w, t, id, true, &row) != 0) {
		web_reply_error(out, 500, "internal", NULL, "cannot read '%s': %s", t->name, sqlite3_errmsg(w->db));
		return;
	}
	if (row == NULL) {
		web_reply_error(out, 404, "not_found", NULL, "no row '%s' in '%s'", id, t->name);
		return;
	}
	struct hist h = { w, t, json_array(), json_object() };
	if (zila_store_walk_changes(w->s, t->name, id, hist_cb, &h) != 0)
		json_array_clear(h.items);
	json_decref(h.last);
	json_t *o = json_pack("{s:O, s:O, s:O, s:o}", "row", row, "_sync", json_object_get(row, "_sync"), "_labels",
			      json_object_get(row, "_labels"), "history", h.items);
	json_decref(row);
	web_reply_json(out, 200, o);
}

/* --- writes --------------------------------------------------------------------------------- */

/* A JSON value as the column takes it: the office's rules for what people type (phones,
 * dates, gender words), as `zila import` applies them. NULL for a bad value, msg says why. */
static int bind_value(sqlite3_stmt *st, int idx, const struct wcol *c, json_t *v, char *msg, size_t n)
{
	if (json_is_null(v))
		return sqlite3_bind_null(st, idx), 0;
	if (json_is_integer(v))
		return sqlite3_bind_int64(st, idx, json_integer_value(v)), 0;
	if (json_is_real(v))
		return sqlite3_bind_double(st, idx, json_real_value(v)), 0;
	if (json_is_boolean(v))
		return sqlite3_bind_int(st, idx, json_is_true(v)), 0;
	if (!json_is_string(v)) {
		snprintf(msg, n, "'%s' takes a plain value", c->name);
		return -1;
	}
	const char *s = json_string_value(v);
	size_t len = json_string_length(v);
	char norm[OFFICE_NORM_MAX];
	int64_t iv;
	if (len == 0 && !c->notnull)
		return sqlite3_bind_null(st, idx), 0;
	switch (office_column_kind(c->name, c->type)) {
	case K_PHONE:
		if (!office_parse_phone(s, len, norm)) {
			snprintf(msg, n, "'%s' is not a phone number (10 digits, or a landline with its STD code)", s);
			return -1;
		}
		return sqlite3_bind_text(st, idx, norm, -1, SQLITE_TRANSIENT), 0;
	case K_DATE:
		if (!office_parse_date(s, len, norm)) {
			snprintf(msg, n, "'%s' is not a date (YYYY-MM-DD or DD-MM-YYYY)", s);
			return -1;
		}
		return sqlite3_bind_text(st, idx, norm, -1, SQLITE_TRANSIENT), 0;
	case K_PERIOD:
		if (!office_parse_period(s, len, norm)) {
			snprintf(msg, n, "'%s' is not a month (YYYY-MM)", s);
			return -1;
		}
		return sqlite3_bind_text(st, idx, norm, -1, SQLITE_TRANSIENT), 0;
	case K_GENDER: {
		const char *g = office_gender(s, len);
		return sqlite3_bind_text(st, idx, g ? g : s, -1, SQLITE_TRANSIENT), 0;
	}
	case K_INT:
		if (!office_parse_int(s, len, &iv)) {
			snprintf(msg, n, "'%s' is not a whole number", s);
			return -1;
		}
		return sqlite3_bind_int64(st, idx, iv), 0;
	default:
		return sqlite3_bind_text(st, idx, s, (int)len, SQLITE_TRANSIENT), 0;
	}
}

/* The database's refusal in plain words, with the field at fault. */
static void write_error(struct zila_office_web *w, const struct wtable *t, struct zila_office_reply *out)
{
	const char *m = sqlite3_errmsg(w->db);
	int ext = sqlite3_extended_errcode(w->db);
	const char *field = NULL;
	/* A UNIQUE key names its columns: the one at fault is the last that is not the district. */
	if (ext == SQLITE_CONSTRAINT_UNIQUE)
		for (size_t i = 0; i < t->ncols; i++) {
			char dotted[300];
			snprintf(dotted, sizeof(dotted), "%s.%s", t->name, t->cols[i].name);
			if (strstr(m, dotted) != NULL && !(t->pcol && strcmp(t->pcol, t->cols[i].name) == 0))
				field = t->cols[i].name;
		}
	for (size_t i = 0; i < t->ncols && field == NULL; i++) {
		char dotted[300];
		snprintf(dotted, sizeof(dotted), "%s.%s", t->name, t->cols[i].name);
		if (strstr(m, dotted) != NULL || (ext == SQLITE_CONSTRAINT_CHECK && strstr(m, t->cols[i].name) != NULL)) {
			field = t->cols[i].name;
			break;
		}
	}
	if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
		web_reply_error(out, 409, "conflict", field, "another row of '%s' has this %s already", t->name,
				field ? field : "value");
	else if (ext == SQLITE_CONSTRAINT_NOTNULL)
		web_reply_error(out, 400, "invalid", field, "'%s' must be filled in", field ? field : "a field");
	else if (ext == SQLITE_CONSTRAINT_CHECK)
		web_reply_error(out, 400, "invalid", field, "'%s' is not allowed here (%s)", field ? field : "a value", m);
	else if (ext == SQLITE_CONSTRAINT_FOREIGNKEY)
		web_reply_error(out, 400, "invalid", field, "a choice names a row that does not exist");
	else if ((ext & 0xff) == SQLITE_CONSTRAINT || ext == SQLITE_ERROR)
		/* the capture triggers' refusal of a write out of the device's scope */
		web_reply_error(out, 403, "scope", NULL, "%s", m);
	else if ((ext & 0xff) == SQLITE_BUSY)
		web_reply_error(out, 503, "busy", NULL, "the replica is busy with another program's write: try again");
	else
		web_reply_error(out, 500, "internal", NULL, "cannot write '%s': %s", t->name, m);
}

/* POST (id NULL) or PUT of a row from body's columns. */
static void put_row(struct zila_office_web *w, struct wtable *t, const char *id, json_t *body,
		    struct zila_office_reply *out)
{
	struct office_sb b = { 0 };
	sqlite3_stmt *st = NULL;
	char newid[33], msg[400];
	const char *key;
	json_t *v;
	if (!json_is_object(body)) {
		web_reply_error(out, 400, "invalid", NULL, "the body is a JSON object of column values");
		return;
	}
	if (!table_writable(w, t)) {
		web_reply_error(out, 403, "scope", NULL, "'%s' is kept by HQ for every district: this laptop may not change it",
				t->name);
		return;
	}
	json_object_foreach(body, key, v)
	{
		if (key[0] == '_')
			continue;
		if (find_col(t, key) < 0) {
			web_reply_error(out, 400, "invalid", key, "'%s' has no column '%s'", t->name, key);
			return;
		}
	}
	const char *pcol = t->pcol;
	const char *given_part = pcol ? json_string_value(json_object_get(body, pcol)) : NULL;
	if (id != NULL) {
		json_t *row = NULL;
		if (read_row(w, t, id, false, &row) != 0 || row == NULL) {
			json_decref(row);
			web_reply_error(out, 404, "not_found", NULL, "no row '%s' in '%s'", id, t->name);
			return;
		}
		const char *part = pcol ? json_string_value(json_object_get(row, pcol)) : NULL;
		bool foreign = w->district != NULL && pcol != NULL && (part == NULL || strcmp(part, w->district) != 0);
		bool moved = pcol && json_object_get(body, pcol) &&
			     !json_equal(json_object_get(body, pcol), json_object_get(row, pcol));
		json_t *idv = json_object_get(body, t->cols[t->pk].name);
		bool rekey = idv != NULL && !(json_is_string(idv) && strcmp(json_string_value(idv), id) == 0);
		json_decref(row);
		if (foreign) {
			web_reply_error(out, 403, "scope", NULL, "this row belongs to another district: only its laptops and HQ may change it");
			return;
		}
		if (moved || rekey) {
			web_reply_error(out, 400, "invalid", moved ? pcol : t->cols[t->pk].name,
					"a row's %s never changes", moved ? "district" : "id");
			return;
		}
	} else if (w->district != NULL && pcol != NULL && given_part != NULL && strcmp(given_part, w->district) != 0) {
		web_reply_error(out, 403, "scope", pcol, "this laptop writes only its own district's rows");
		return;
	}
	if (id == NULL) {
		json_t *idv = json_object_get(body, t->cols[t->pk].name);
		if (json_is_string(idv) && json_string_length(idv) > 0 && json_string_length(idv) < sizeof(newid)) {
			snprintf(newid, sizeof(newid), "%s", json_string_value(idv));
		} else {
			uint8_t raw[16];
			randombytes_buf(raw, sizeof(raw));
			sodium_bin2hex(newid, sizeof(newid), raw, sizeof(raw));
		}
		office_sb_str(&b, "INSERT INTO ");
		office_sb_ident(&b, t->name);
		office_sb_str(&b, " (");
		office_sb_ident(&b, t->cols[t->pk].name);
		size_t n = 1;
		bool own_part = pcol && w->district && json_object_get(body, pcol) == NULL;
		if (own_part) {
			office_sb_str(&b, ", ");
			office_sb_ident(&b, pcol);
			n++;
		}
		json_object_foreach(body, key, v)
		{
			if (key[0] == '_' || find_col(t, key) == t->pk)
				continue;
			office_sb_str(&b, ", ");
			office_sb_ident(&b, key);
			n++;
		}
		office_sb_str(&b, ") VALUES (?");
		for (size_t i = 1; i < n; i++)
			office_sb_str(&b, ", ?");
		office_sb_str(&b, ")");
		if (office_prepare(w->db, &b, &st, NULL) != 0)
			goto db_error;
		int idx = 1;
		sqlite3_bind_text(st, idx++, newid, -1, SQLITE_TRANSIENT);
		if (own_part)
			sqlite3_bind_text(st, idx++, w->district, -1, SQLITE_TRANSIENT);
		json_object_foreach(body, key, v)
		{
			if (key[0] == '_' || find_col(t, key) == t->pk)
				continue;
			if (bind_value(st, idx++, &t->cols[find_col(t, key)], v, msg, sizeof(msg)) != 0) {
				web_reply_error(out, 400, "invalid", key, "%s", msg);
				goto out;
			}
		}
		id = newid;
	} else {
		office_sb_str(&b, "UPDATE ");
		office_sb_ident(&b, t->name);
		office_sb_str(&b, " SET ");
		size_t n = 0;
		json_object_foreach(body, key, v)
		{
			if (key[0] == '_' || find_col(t, key) == t->pk || (pcol && strcmp(key, pcol) == 0))
				continue;
			office_sb_str(&b, n++ ? ", " : "");
			office_sb_ident(&b, key);
			office_sb_str(&b, " = ?");
		}
		if (n == 0) {
			web_reply_error(out, 400, "invalid", NULL, "nothing to change");
			goto out;
		}
		office_sb_str(&b, " WHERE ");
		office_sb_ident(&b, t->cols[t->pk].name);
		office_sb_str(&b, " = ?");
		if (office_prepare(w->db, &b, &st, NULL) != 0)
			goto db_error;
		int idx = 1;
		json_object_foreach(body, key, v)
		{
			if (key[0] == '_' || find_col(t, key) == t->pk || (pcol && strcmp(key, pcol) == 0))
				continue;
			if (bind_value(st, idx++, &t->cols[find_col(t, key)], v, msg, sizeof(msg)) != 0) {
				web_reply_error(out, 400, "invalid", key, "%s", msg);
				goto out;
			}
		}
		sqlite3_bind_text(st, idx, id, -1, SQLITE_TRANSIENT);
	}
	if (sqlite3_step(st) != SQLITE_DONE) {
		write_error(w, t, out);
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	json_t *row = NULL;
	if (read_row(w, t, id, false, &row) != 0 || row == NULL)
		goto db_error;
	web_reply_json(out, id == newid ? 201 : 200, json_pack("{s:o}", "row", row));
	goto out;
db_error:
	web_reply_error(out, 500, "internal", NULL, "cannot write '%s': %s", t->name, sqlite3_errmsg(w->db));
out:
	sqlite3_finalize(st);
	free(b.p);
}

static void delete_row(struct zila_office_web *w, struct wtable *t, const char *id, struct zila_office_reply *out)
{
	json_t *row = NULL;
	if (read_row(w, t, id, false, &row) != 0 || row == NULL) {
		web_reply_error(out, 404, "not_found", NULL, "no row '%s' in '%s'", id, t->name);
		return;
	}
	const char *part = t->pcol ? json_string_value(json_object_get(row, t->pcol)) : NULL;
	bool foreign = w->district != NULL && (t->pcol == NULL || part == NULL || strcmp(part, w->district) != 0);
	json_decref(row);
	if (foreign) {
		web_reply_error(out, 403, "scope", NULL, "this row is not this laptop's district's: only HQ may delete it");
		return;
	}
	struct office_sb b = { 0 };
	sqlite3_stmt *st = NULL;
	office_sb_str(&b, "DELETE FROM ");
	office_sb_ident(&b, t->name);
	office_sb_str(&b, " WHERE ");
	office_sb_ident(&b, t->cols[t->pk].name);
	office_sb_str(&b, " = ?");
	if (office_prepare(w->db, &b, &st, NULL) != 0) {
		web_reply_error(out, 500, "internal", NULL, "cannot delete: %s", sqlite3_errmsg(w->db));
	} else {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			write_error(w, t, out);
		else
			web_reply_json(out, 200, json_pack("{s:b}", "deleted", 1));
	}
	sqlite3_finalize(st);
	free(b.p);
}

/* GET /api/tables/T/options/COL?q=: the rows a foreign key may name, in scope, by label. */
static void get_options(struct zila_office_web *w, struct wtable *t, const char *col, const char *query,
			struct zila_office_reply *out)
{
	int ci = find_col(t, col);
	struct wtable *ft = ci >= 0 && t->cols[ci].fk_table ? web_table(w, t->cols[ci].fk_table) : NULL;
	if (ft == NULL) {
		web_reply_error(out, 404, "not_found", NULL, "'%s' of '%s' is no link to another table", col, t->name);
		return;
	}
	char *q = web_query_get(query, "q"), *pat = NULL, *digits = NULL;
	long limit = num_arg(query, "limit", 50, 1, 200);
	struct office_sb b = { 0 };
	sqlite3_stmt *st = NULL;
	office_sb_str(&b, "SELECT ");
	office_sb_ident(&b, ft->cols[ft->pk].name);
	office_sb_str(&b, ", ");
	label_sql(ft, &b);
	office_sb_str(&b, " FROM ");
	office_sb_ident(&b, ft->name);
	office_sb_str(&b, " WHERE 1");
	web_scope_sql(w, ft, &b, true);
	bool searching = q && q[0];
	if (searching) {
		like_patterns(q, &pat, &digits);
		search_sql(ft, &b, false);
	}
	office_sb_str(&b, " ORDER BY 2");
	office_sb_fmt(&b, " LIMIT %ld", limit);
	json_t *arr = json_array();
	if (office_prepare(w->db, &b, &st, NULL) == 0) {
		if (searching && pat)
			sqlite3_bind_text(st, 1, pat, -1, SQLITE_STATIC);
		while (sqlite3_step(st) == SQLITE_ROW)
			json_array_append_new(arr, json_pack("{s:o, s:o}", "id", web_column_json(st, 0), "label",
							     web_column_json(st, 1)));
	}
	sqlite3_finalize(st);
	web_reply_json(out, 200, json_pack("{s:o}", "options", arr));
	free(b.p);
	free(q);
	free(pat);
	free(digits);
}

/* --- routing -------------------------------------------------------------------------------- */

int zila_office_web_new(struct zila_office_web **out, const char *dir, struct zila_store *s,
			const struct zila_office_who *who, struct zila_error *err)
{
	char path[4096];
	*out = NULL;
	struct zila_office_web *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return zila_error_set(err, ZILA_ENOMEM, "out of memory");
	w->s = s;
	w->schema_version = -1;
	w->device_id = office_strdup(who->device_id ? who->device_id : "");
	w->name = office_strdup(who->name ? who->name : "");
	w->district = who->district ? office_strdup(who->district) : NULL;
	w->home = who->district ? office_strdup(who->district) : NULL;
	w->dir = office_strdup(dir);
	w->org = who->org ? office_strdup(who->org) : NULL;
	w->hq = who->hq;
	snprintf(path, sizeof(path), "%s/zila.db", dir);
	if (sqlite3_open_v2(path, &w->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		int r = zila_error_set(err, ZILA_EDB, "cannot open '%s': %s", path, w->db ? sqlite3_errmsg(w->db) : "out of memory");
		zila_office_web_free(w);
		return r;
	}
	/* The daemon's loop runs these: a short wait for another writer, then "busy". */
	sqlite3_busy_timeout(w->db, 1000);
	sqlite3_exec(w->db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
	if (web_schema(w) != 0) /* now rather than at the first request, which says a failure */
		w->schema_version = -1;
	*out = w;
	return 0;
}

void zila_office_web_free(struct zila_office_web *w)
{
	if (w == NULL)
		return;
	tables_free(w);
	sqlite3_close(w->db);
	free(w->device_id);
	free(w->name);
	free(w->district);
	free(w->home);
	free(w->dir);
	free(w->org);
	free(w);
}

/* Splits "/api/a/b/c" into up to n segments (pointers into buf). */
static size_t split_path(const char *path, char *buf, size_t buflen, char **seg, size_t n)
{
	snprintf(buf, buflen, "%s", path);
	size_t k = 0;
	for (char *p = strtok(buf, "/"); p != NULL && k < n; p = strtok(NULL, "/"))
		seg[k++] = p;
	return strtok(NULL, "/") ? n + 1 : k;
}

void zila_office_web_handle(struct zila_office_web *w, const char *method, const char *path, const char *query,
			    const char *body, size_t body_len, struct zila_office_reply *out)
{
	char buf[1024];
	char *seg[8] = { NULL };
	memset(out, 0, sizeof(*out));
	bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0, put = strcmp(method, "PUT") == 0,
	     del = strcmp(method, "DELETE") == 0;
	json_t *jb = NULL;
	if ((post || put) && body_len > 0) {
		json_error_t je;
		jb = json_loadb(body, body_len, 0, &je);
		if (jb == NULL) {
			web_reply_error(out, 400, "invalid", NULL, "the body is not JSON: %s", je.text);
			return;
		}
	}
	if (web_schema(w) != 0) {
		web_reply_error(out, 500, "internal", NULL, "cannot read the replica's schema: %s", sqlite3_errmsg(w->db));
		goto out;
	}
	size_t n = split_path(path, buf, sizeof(buf), seg, 8);
	if (n < 2 || strcmp(seg[0], "api") != 0) {
		web_reply_error(out, 404, "not_found", NULL, "no such page");
	} else if (n == 2 && strcmp(seg[1], "session") == 0 && get) {
		get_session(w, out);
	} else if (n == 2 && strcmp(seg[1], "session") == 0 && put) {
		put_session(w, jb, out);
	} else if (n == 2 && strcmp(seg[1], "tables") == 0 && get) {
		get_tables(w, out);
	} else if (n >= 4 && strcmp(seg[1], "tables") == 0) {
		struct wtable *t = web_table(w, seg[2]);
		if (t == NULL)
			web_reply_error(out, 404, "not_found", NULL, "no synced table '%s'", seg[2]);
		else if (n == 4 && strcmp(seg[3], "rows") == 0 && get)
			get_rows(w, t, query, out);
		else if (n == 4 && strcmp(seg[3], "rows") == 0 && post)
			put_row(w, t, NULL, jb, out);
		else if (n == 5 && strcmp(seg[3], "rows") == 0 && get)
			get_row(w, t, seg[4], out);
		else if (n == 5 && strcmp(seg[3], "rows") == 0 && put)
			put_row(w, t, seg[4], jb, out);
		else if (n == 5 && strcmp(seg[3], "rows") == 0 && del)
			delete_row(w, t, seg[4], out);
		else if (n == 5 && strcmp(seg[3], "options") == 0 && get)
			get_options(w, t, seg[4], query, out);
		else
			web_reply_error(out, 404, "not_found", NULL, "no such page");
	} else if (n == 3 && strcmp(seg[1], "import") == 0 && post &&
		   (strcmp(seg[2], "commit") == 0 || strcmp(seg[2], "preview") == 0)) {
		web_import(w, strcmp(seg[2], "commit") == 0, jb, out);
	} else if (n == 2 && strcmp(seg[1], "review") == 0 && get) {
		web_review(w, out);
	} else if (n == 3 && strcmp(seg[1], "review") == 0 && strcmp(seg[2], "resolve") == 0 && post) {
		web_resolve(w, jb, out);
	} else if (n == 3 && strcmp(seg[1], "hq") == 0 && strcmp(seg[2], "progress") == 0 && get) {
		web_hq_progress(w, query, out);
	} else if (n == 3 && strcmp(seg[1], "hq") == 0 && strcmp(seg[2], "list") == 0 && get) {
		web_hq_list(w, query, out);
	} else if (n == 2 && strcmp(seg[1], "devices") == 0 && get) {
		web_devices(w, out);
	} else if (n == 3 && strcmp(seg[1], "devices") == 0 && post &&
		   (strcmp(seg[2], "invite") == 0 || strcmp(seg[2], "revoke") == 0)) {
		web_devices_act(w, strcmp(seg[2], "invite") == 0, jb, out);
	} else if (n == 2 && strcmp(seg[1], "attachments") == 0 && get) {
		web_attachments(w, query, out);
	} else if (n == 4 && strcmp(seg[1], "attachments") == 0 && strcmp(seg[3], "fetch") == 0 && post) {
		web_attachment_fetch(w, seg[2], out);
	} else if (n == 2 && strcmp(seg[1], "export") == 0 && get) {
		web_export(w, query, out);
	} else {
		web_reply_error(out, 404, "not_found", NULL, "no such page");
	}
out:
	json_decref(jb);
}

void zila_office_web_handle_as(struct zila_office_web *w, const char *role, const char *method, const char *path,
			       const char *query, const char *body, size_t body_len, struct zila_office_reply *out)
{
	memset(out, 0, sizeof(*out));
	if (role == NULL || strcmp(role, "owner") == 0 || strcmp(role, "admin") == 0) {
		zila_office_web_handle(w, method, path, query, body, body_len, out);
	} else if (strcmp(role, "viewer") == 0) {
		bool reads = strcmp(method, "GET") == 0 || (strcmp(method, "PUT") == 0 && strcmp(path, "/api/session") == 0);
		if (!reads) {
			web_reply_error(out, 403, "role", NULL, "this account may read, not change: ask an admin");
			return;
		}
		w->viewer = w->no_admin = true;
		zila_office_web_handle(w, method, path, query, body, body_len, out);
		w->viewer = w->no_admin = false;
	} else if (strncmp(role, "district:", 9) == 0 && role[9] != '\0') {
		/* The device's own scope, narrowed to the account's district: the same checks then
		 * hold as on that district's laptop. An account for a district the device does not
		 * hold sees nothing. */
		char *own = w->district;
		if (own != NULL && strcmp(own, role + 9) != 0) {
			web_reply_error(out, 403, "scope", NULL, "this account is for district '%s', which this laptop does not hold",
					role + 9);
			return;
		}
		w->district = (char *)(uintptr_t)(role + 9);
		w->no_admin = true;
		zila_office_web_handle(w, method, path, query, body, body_len, out);
		w->district = own;
		w->no_admin = false;
	} else {
		web_reply_error(out, 403, "role", NULL, "this account's role '%s' is not one zila knows", role);
	}
}
