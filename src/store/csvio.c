/* CSV import (libcsv does the parsing; this file maps headers to columns, validates and
 * normalises cells, and creates or updates rows with plain SQL) and CSV/JSON export. */
#include "zila/csvio.h"

#include <csv.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#define KEYS_MAX 8     /* unique keys considered for matching */
#define KEY_COLS_MAX 8 /* columns in one unique key */
#define SLOTS 32       /* cached INSERT/UPDATE statements */
#define NORM_MAX 80    /* bytes of a normalised cell (date, phone, resolved id) */
#define PREBUF_MAX (64 * 1024)
#define SHOW_MAX 60 /* bytes of a cell quoted in a reason */

enum kind { K_TEXT, K_INT, K_REAL, K_DATE, K_PERIOD, K_PHONE };
enum { OP_INSERT, OP_UPDATE };

/* A few recent lookups (foreign keys found, districts resolved), so that a file whose rows
 * cycle through a handful of districts or units costs one query per distinct value. */
#define CACHE_N 16
struct kcache {
	char *key[CACHE_N];
	size_t key_len[CACHE_N];
	char *val[CACHE_N];
	size_t next;
};

struct column {
	char *name;
	enum kind kind;
	bool notnull;
	bool has_default;
	bool writable;
	char *fk_table; /* single-column foreign key, or NULL */
	char *fk_col;
	sqlite3_stmt *fk_check;
	struct kcache fk_seen; /* values known to be in fk_table */
};

struct value {
	const char *p; /* NUL-terminated */
	size_t len;
	bool null;
	int64_t i; /* K_INT */
	char norm[NORM_MAX];
};

struct ukey {
	int cols[KEY_COLS_MAX];
	size_t ncols;
	sqlite3_stmt *find; /* SELECT id, <mapped> IS ?... WHERE key = ? */
};

struct slot {
	int op;
	uint64_t mask;
	sqlite3_stmt *st;
};

struct zila_csv_import {
	sqlite3 *db;
	const struct zila_csv_import_opts *o;
	bool savepoint; /* the caller's transaction was open: we use a savepoint in it */
	bool in_txn;
	bool finished;
	int fatal;
	struct zila_error fatal_err;

	/* input before the parser starts: BOM and delimiter detection */
	uint8_t *pre;
	size_t pre_len;
	bool started;
	struct csv_parser parser;
	bool parser_init;

	/* the record being read */
	char *arena;
	size_t arena_len, arena_cap;
	size_t *off, *flen;
	bool *fnull;
	size_t nfields, fields_cap;
	const char **fptr; /* filled at the end of a record */
	uint64_t rec_breaks;
	uint64_t line;
	int prev_term;

	/* the table */
	char *table;
	struct column *cols;
	size_t ncols;
	int id_col;
	int district_col;
	sqlite3_stmt *district_find;
	struct kcache districts; /* cell -> district id */
	struct ukey keys[KEYS_MAX];
	size_t nkeys;

	/* the header */
	bool have_header;
	char **header;
	size_t *header_lens;
	size_t nheader;
	int *field_col; /* per CSV column: table column, or -1 to ignore */
	int *mapped;    /* table columns in the header, in header order */
	size_t nmapped;
	uint64_t mapped_mask;
	sqlite3_stmt *find_id;
	struct slot slots[SLOTS];
	size_t next_slot;

	struct value *vals; /* per table column */
	struct zila_csv_stats st;
	char reason[512];
};

/* --- small helpers ---------------------------------------------------------------- */

/* strerror(e) with a lowercase first letter, as zila's messages are. */
static const char *errno_msg(int e, char buf[128])
{
	snprintf(buf, 128, "%s", strerror(e));
	if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
		buf[0] = (char)(buf[0] + 32);
	return buf;
}

static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);
	if (d != NULL)
		memcpy(d, s, n);
	return d;
}

/* Appends "name" (quoted for SQL) to a malloc'd string builder. */
struct sb {
	char *p;
	size_t len, cap;
	bool oom;
};

static void sb_add(struct sb *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (p == NULL) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_str(struct sb *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

/* An identifier, quoted for SQL ("a""b"). */
static void sb_ident(struct sb *b, const char *s)
{
	sb_add(b, "\"", 1);
	for (const char *q = s; *q; q++) {
		if (*q == '"')
			sb_add(b, "\"\"", 2);
		else
			sb_add(b, q, 1);
	}
	sb_add(b, "\"", 1);
}

static void sb_fmt(struct sb *b, const char *fmt, ...) ZILA_PRINTF(2, 3);
static void sb_fmt(struct sb *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		sb_add(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static int prepare(sqlite3 *db, struct sb *b, sqlite3_stmt **out, struct zila_error *err)
{
	*out = NULL;
	if (b->oom)
		return zila_error_set(err, ZILA_ENOMEM, "out of memory");
	if (sqlite3_prepare_v2(db, b->p, -1, out, NULL) != SQLITE_OK)
		return zila_error_set(err, ZILA_EDB, "cannot prepare statement: %s",
				      sqlite3_errmsg(db));
	return 0;
}

static bool ieq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++) {
		int ca = (unsigned char)*a, cb = (unsigned char)*b;
		if (ca >= 'A' && ca <= 'Z')
			ca += 32;
		if (cb >= 'A' && cb <= 'Z')
			cb += 32;
		if (ca != cb)
			return false;
	}
	return *a == *b;
}

/* Compares a header cell with a column name: case-insensitive, and spaces, dashes and
 * dots in the header count as underscores ("Name Local" matches name_local). */
static bool header_matches(const char *h, const char *col)
{
	for (; *h && *col; h++, col++) {
		int ch = (unsigned char)*h, cc = (unsigned char)*col;
		if (ch >= 'A' && ch <= 'Z')
			ch += 32;
		if (cc >= 'A' && cc <= 'Z')
			cc += 32;
		if (ch == ' ' || ch == '-' || ch == '.')
			ch = '_';
		if (ch != cc)
			return false;
	}
	return *h == *col;
}

static bool utf8_valid(const uint8_t *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint8_t c = s[i];
		size_t k;
		uint32_t cp;
		if (c < 0x80) {
			if (c == 0)
				return false;
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			k = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			k = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			k = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i <= k)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

/* A cell as it may be quoted in a reason: at most SHOW_MAX bytes, cut on a character
 * boundary, newlines shown as spaces. */
static const char *show(char out[SHOW_MAX + 8], const char *s, size_t n)
{
	size_t k = n;
	if (k > SHOW_MAX) {
		k = SHOW_MAX;
		while (k > 0 && ((unsigned char)s[k] & 0xc0) == 0x80)
			k--;
	}
	for (size_t i = 0; i < k; i++)
		out[i] = (s[i] == '\n' || s[i] == '\r') ? ' ' : s[i];
	if (k < n) {
		memcpy(out + k, "...", 4);
	} else {
		out[k] = '\0';
	}
	return out;
}

static int days_in_month(int y, int m)
{
	static const int d[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return d[m - 1];
}

static bool digits(const char *s, size_t n, int *out)
{
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return n > 0;
}

/* YYYY-MM-DD, or D-M-YYYY / D/M/YYYY / D.M.YYYY with one- or two-digit day and month. */
static bool parse_date(const char *s, size_t n, char out[NORM_MAX])
{
	int y, m, d;
	if (n == 10 && s[4] == '-' && s[7] == '-') {
		if (!digits(s, 4, &y) || !digits(s + 5, 2, &m) || !digits(s + 8, 2, &d))
			return false;
	} else {
		size_t i = 0, a, b;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
		a = i;
		if (a < 1 || a > 2 || i >= n || (s[i] != '-' && s[i] != '/' && s[i] != '.'))
			return false;
		char sep = s[i++];
		size_t mstart = i;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
		b = i - mstart;
		if (b < 1 || b > 2 || i >= n || s[i] != sep)
			return false;
		i++;
		if (n - i != 4 || !digits(s, a, &d) || !digits(s + mstart, b, &m) ||
		    !digits(s + i, 4, &y))
			return false;
	}
	if (y < 1000 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
		return false;
	snprintf(out, NORM_MAX, "%04d-%02d-%02d", y % 10000, m % 100, d % 100);
	return true;
}

static bool parse_period(const char *s, size_t n, char out[NORM_MAX])
{
	int y, m;
	if (n != 7 || s[4] != '-' || !digits(s, 4, &y) || !digits(s + 5, 2, &m) || y < 1000 ||
	    m < 1 || m > 12) {
		/* Excel turns 2024-05 into May-24 or 05-2024; accept MM-YYYY and MM/YYYY */
		if (n == 7 && (s[2] == '-' || s[2] == '/') && digits(s, 2, &m) &&
		    digits(s + 3, 4, &y) && y >= 1000 && m >= 1 && m <= 12) {
			snprintf(out, NORM_MAX, "%04d-%02d", y % 10000, m % 100);
			return true;
		}
		return false;
	}
	snprintf(out, NORM_MAX, "%04d-%02d", y % 10000, m % 100);
	return true;
}

/* A 10-digit Indian mobile number from what people type: +91 98765 43210, 098765-43210. */
static bool parse_phone(const char *s, size_t n, char out[11])
{
	char d[24];
	size_t nd = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c >= '0' && c <= '9') {
			if (nd == sizeof(d))
				return false;
			d[nd++] = c;
		} else if (c == '+' && nd == 0) {
			continue;
		} else if (c != ' ' && c != '-' && c != '(' && c != ')' && c != '.') {
			return false;
		}
	}
	const char *p = d;
	if (nd == 12 && d[0] == '9' && d[1] == '1') {
		p += 2;
		nd = 10;
	} else if (nd == 11 && d[0] == '0') {
		p += 1;
		nd = 10;
	}
	if (nd != 10 || p[0] < '6' || p[0] > '9')
		return false;
	memcpy(out, p, 10);
	out[10] = '\0';
	return true;
}

static bool parse_int(const char *s, size_t n, int64_t *out)
{
	size_t i = 0;
	bool neg = false;
	if (i < n && (s[i] == '-' || s[i] == '+'))
		neg = s[i++] == '-';
	size_t first = i;
	uint64_t v = 0;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			break;
		if (v > (UINT64_C(1) << 62))
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (i == first)
		return false;
	/* "12.0" and "12.00", as spreadsheets sometimes write whole numbers */
	if (i < n && s[i] == '.') {
		for (i++; i < n && s[i] == '0'; i++)
			;
	}
	if (i != n)
		return false;
	*out = neg ? -(int64_t)v : (int64_t)v;
	return true;
}

static const char *kcache_get(const struct kcache *c, const char *k, size_t n)
{
	for (size_t i = 0; i < CACHE_N; i++)
		if (c->key[i] != NULL && c->key_len[i] == n && memcmp(c->key[i], k, n) == 0)
			return c->val[i];
	return NULL;
}

static int kcache_put(struct kcache *c, const char *k, size_t n, const char *val)
{
	char *key = malloc(n + 1);
	char *v = xstrdup(val);
	if (key == NULL || v == NULL) {
		free(key);
		free(v);
		return ZILA_ENOMEM;
	}
	memcpy(key, k, n);
	key[n] = '\0';
	size_t i = c->next;
	c->next = (c->next + 1) % CACHE_N;
	free(c->key[i]);
	free(c->val[i]);
	c->key[i] = key;
	c->key_len[i] = n;
	c->val[i] = v;
	return 0;
}

static void kcache_free(struct kcache *c)
{
	for (size_t i = 0; i < CACHE_N; i++) {
		free(c->key[i]);
		free(c->val[i]);
	}
}

/* --- the table -------------------------------------------------------------------- */

static enum kind column_kind(const char *name, const char *type)
{
	size_t n = strlen(name);
	char up[64];
	size_t i;
	for (i = 0; type[i] && i < sizeof(up) - 1; i++)
		up[i] = (type[i] >= 'a' && type[i] <= 'z') ? (char)(type[i] - 32) : type[i];
	up[i] = '\0';
	if (strstr(up, "INT") != NULL)
		return K_INT;
	if (strstr(up, "REAL") || strstr(up, "FLOA") || strstr(up, "DOUB"))
		return K_REAL;
	if (up[0] != '\0' && strstr(up, "TEXT") == NULL && strstr(up, "CHAR") == NULL &&
	    strstr(up, "CLOB") == NULL)
		return K_TEXT;
	if ((n > 3 && strcmp(name + n - 3, "_on") == 0) || strcmp(name, "since") == 0 ||
	    strcmp(name, "deadline") == 0)
		return K_DATE;
	if (strcmp(name, "period") == 0)
		return K_PERIOD;
	if (strcmp(name, "phone") == 0 || (n > 6 && strcmp(name + n - 6, "_phone") == 0))
		return K_PHONE;
	return K_TEXT;
}

static int find_column(struct zila_csv_import *im, const char *name)
{
	for (size_t i = 0; i < im->ncols; i++)
		if (ieq(im->cols[i].name, name))
			return (int)i;
	return -1;
}

static bool table_has_column(sqlite3 *db, const char *table, const char *col)
{
	sqlite3_stmt *st = NULL;
	bool found = false;
	if (sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2", -1,
			       &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, col, -1, SQLITE_STATIC);
	found = sqlite3_step(st) == SQLITE_ROW;
out:
	sqlite3_finalize(st);
	return found;
}

static int table_exists(sqlite3 *db, const char *table, struct zila_error *err)
{
	sqlite3_stmt *st = NULL;
	int r = ZILA_EDB;
	if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
			       -1, &st, NULL) != SQLITE_OK) {
		r = zila_error_set(err, ZILA_EDB, "cannot read the schema: %s", sqlite3_errmsg(db));
		goto out;
	}
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		r = 0;
	} else if (rc == SQLITE_DONE) {
		r = zila_error_set(err, ZILA_ENOTFOUND, "no table '%s' in the replica", table);
	} else {
		r = zila_error_set(err, ZILA_EDB, "cannot read the schema: %s", sqlite3_errmsg(db));
	}
out:
	sqlite3_finalize(st);
	return r;
}

/* Finds a district's id from its id, or else its code, name or local name; *out is
 * malloc'd. ZILA_ENOTFOUND when none matches, ZILA_EEXIST when several do. */
static int district_resolve(sqlite3 *db, sqlite3_stmt **cache, const char *v, char **out)
{
	*out = NULL;
	int r = ZILA_ENOTFOUND;
	if (*cache == NULL) {
		struct sb b = { 0 };
		sb_str(&b, "SELECT id, min(prio) FROM (SELECT id, 0 AS prio FROM districts "
			   "WHERE id = ?1");
		if (table_has_column(db, "districts", "code"))
			sb_str(&b, " UNION ALL SELECT id, 1 FROM districts WHERE lower(code) = "
				   "lower(?1)");
		if (table_has_column(db, "districts", "name"))
			sb_str(&b, " UNION ALL SELECT id, 1 FROM districts WHERE lower(name) = "
				   "lower(?1)");
		if (table_has_column(db, "districts", "name_local"))
			sb_str(&b, " UNION ALL SELECT id, 1 FROM districts WHERE name_local = ?1");
		sb_str(&b, ") GROUP BY id ORDER BY 2 LIMIT 2");
		int pr = prepare(db, &b, cache, NULL);
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
			*out = xstrdup((const char *)sqlite3_column_text(st, 0));
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

static int load_table(struct zila_csv_import *im, struct zila_error *err)
{
	sqlite3 *db = im->db;
	sqlite3_stmt *st = NULL;
	int r = table_exists(db, im->table, err);
	if (r != 0)
		goto out;
	if (strncmp(im->table, "zila_", 5) == 0 || strncmp(im->table, "sqlite_", 7) == 0) {
		r = zila_error_set(err, ZILA_EINVAL, "table '%s' is internal to zila", im->table);
		goto out;
	}

	r = ZILA_EDB;
	if (sqlite3_prepare_v2(db,
			       "SELECT name, type, \"notnull\", dflt_value IS NOT NULL, pk, hidden "
			       "FROM pragma_table_xinfo(?1)",
			       -1, &st, NULL) != SQLITE_OK)
		goto dberr;
	sqlite3_bind_text(st, 1, im->table, -1, SQLITE_STATIC);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (im->ncols == 64) {
			r = zila_error_set(err, ZILA_EINVAL, "table '%s' has more than 64 columns",
					   im->table);
			goto out;
		}
		struct column *c = realloc(im->cols, (im->ncols + 1) * sizeof(*c));
		if (c == NULL) {
			r = zila_error_set(err, ZILA_ENOMEM, "out of memory");
			goto out;
		}
		im->cols = c;
		c = &im->cols[im->ncols];
		memset(c, 0, sizeof(*c));
		im->ncols++;
		const char *name = (const char *)sqlite3_column_text(st, 0);
		const char *type = (const char *)sqlite3_column_text(st, 1);
		c->name = xstrdup(name ? name : "");
		if (c->name == NULL) {
			r = zila_error_set(err, ZILA_ENOMEM, "out of memory");
			goto out;
		}
		c->kind = column_kind(c->name, type ? type : "");
		c->notnull = sqlite3_column_int(st, 2) != 0;
		c->has_default = sqlite3_column_int(st, 3) != 0;
		c->writable = sqlite3_column_int(st, 5) == 0;
		if (sqlite3_column_int(st, 4) != 0) {
			if (strcmp(c->name, "id") != 0 || im->id_col >= 0) {
				r = zila_error_set(err, ZILA_EUNTRACKABLE,
						   "table '%s' does not have a single text primary "
						   "key named id",
						   im->table);
				goto out;
			}
			im->id_col = (int)(im->ncols - 1);
		}
	}
	if (rc != SQLITE_DONE)
		goto dberr;
	sqlite3_finalize(st);
	st = NULL;
	if (im->id_col < 0) {
		r = zila_error_set(err, ZILA_EUNTRACKABLE,
				   "table '%s' does not have a single text primary key named id",
				   im->table);
		goto out;
	}
	im->cols[im->id_col].kind = K_TEXT;

	/* single-column foreign keys */
	if (sqlite3_prepare_v2(db,
			       "SELECT id, \"table\", \"from\", \"to\", "
			       "(SELECT count(*) FROM pragma_foreign_key_list(?1) g WHERE g.id = f.id) "
			       "FROM pragma_foreign_key_list(?1) f",
			       -1, &st, NULL) != SQLITE_OK)
		goto dberr;
	sqlite3_bind_text(st, 1, im->table, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (sqlite3_column_int(st, 4) != 1)
			continue;
		const char *ptab = (const char *)sqlite3_column_text(st, 1);
		const char *from = (const char *)sqlite3_column_text(st, 2);
		const char *to = (const char *)sqlite3_column_text(st, 3);
		int ci = find_column(im, from ? from : "");
		if (ci < 0 || ptab == NULL)
			continue;
		struct column *c = &im->cols[ci];
		free(c->fk_table);
		free(c->fk_col);
		c->fk_table = xstrdup(ptab);
		c->fk_col = xstrdup(to ? to : "id"); /* a NULL "to" means the parent's key */
		if (c->fk_table == NULL || c->fk_col == NULL) {
			r = zila_error_set(err, ZILA_ENOMEM, "out of memory");
			goto out;
		}
	}
	if (rc != SQLITE_DONE)
		goto dberr;
	sqlite3_finalize(st);
	st = NULL;
	for (size_t i = 0; i < im->ncols; i++) {
		struct column *c = &im->cols[i];
		if (c->fk_table == NULL)
			continue;
		if (strcmp(c->name, "district_id") == 0 && strcmp(c->fk_table, "districts") == 0)
			continue; /* resolved by district_resolve() */
		struct sb b = { 0 };
		sb_str(&b, "SELECT 1 FROM ");
		sb_ident(&b, c->fk_table);
		sb_str(&b, " WHERE ");
		sb_ident(&b, c->fk_col);
		sb_str(&b, " = ?1");
		r = prepare(db, &b, &c->fk_check, err);
		free(b.p);
		if (r != 0)
			goto out;
	}
	im->district_col = find_column(im, "district_id");

	/* UNIQUE keys other than the primary key, for create-or-update matching */
	if (sqlite3_prepare_v2(db,
			       "SELECT l.name, (SELECT group_concat(name, char(31)) FROM "
			       "(SELECT name FROM pragma_index_info(l.name) ORDER BY seqno)) "
			       "FROM pragma_index_list(?1) l WHERE l.\"unique\" AND l.origin <> 'pk' "
			       "AND NOT l.partial ORDER BY l.seq DESC",
			       -1, &st, NULL) != SQLITE_OK)
		goto dberr;
	sqlite3_bind_text(st, 1, im->table, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && im->nkeys < KEYS_MAX) {
		const char *cols = (const char *)sqlite3_column_text(st, 1);
		if (cols == NULL)
			continue; /* an index on expressions */
		struct ukey k = { .ncols = 0 };
		bool ok = true;
		const char *p = cols;
		while (ok) {
			const char *e = strchr(p, 31);
			size_t n = e ? (size_t)(e - p) : strlen(p);
			char name[128];
			if (n >= sizeof(name) || k.ncols == KEY_COLS_MAX) {
				ok = false;
				break;
			}
			memcpy(name, p, n);
			name[n] = '\0';
			int ci = find_column(im, name);
			if (ci < 0)
				ok = false;
			else
				k.cols[k.ncols++] = ci;
			if (e == NULL)
				break;
			p = e + 1;
		}
		if (ok && k.ncols > 0)
			im->keys[im->nkeys++] = k;
	}
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		goto dberr;
	r = 0;
	goto out;
dberr:
	r = zila_error_set(err, ZILA_EDB, "cannot read table '%s': %s", im->table,
			   sqlite3_errmsg(db));
out:
	sqlite3_finalize(st);
	return r;
}

/* --- statements ------------------------------------------------------------------- */

/* SELECT id, c1 IS ?1, c2 IS ?2, ... FROM t WHERE <where> */
static void sb_compare_select(struct zila_csv_import *im, struct sb *b)
{
	sb_str(b, "SELECT \"id\"");
	for (size_t j = 0; j < im->nmapped; j++) {
		sb_str(b, ", ");
		sb_ident(b, im->cols[im->mapped[j]].name);
		sb_fmt(b, " IS ?%zu", j + 1);
	}
	sb_str(b, " FROM ");
	sb_ident(b, im->table);
	sb_str(b, " WHERE ");
}

static int prepare_finders(struct zila_csv_import *im, struct zila_error *err)
{
	int r;
	struct sb b = { 0 };
	sb_compare_select(im, &b);
	sb_fmt(&b, "\"id\" = ?%zu", im->nmapped + 1);
	r = prepare(im->db, &b, &im->find_id, err);
	free(b.p);
	if (r != 0)
		return r;

	/* keep only the keys whose columns are all in the header */
	size_t nk = 0;
	for (size_t k = 0; k < im->nkeys; k++) {
		bool all = true;
		for (size_t i = 0; i < im->keys[k].ncols; i++)
			if (!(im->mapped_mask & (UINT64_C(1) << im->keys[k].cols[i])))
				all = false;
		if (all)
			im->keys[nk++] = im->keys[k];
	}
	im->nkeys = nk;
	for (size_t k = 0; k < im->nkeys; k++) {
		struct ukey *key = &im->keys[k];
		struct sb kb = { 0 };
		sb_compare_select(im, &kb);
		for (size_t i = 0; i < key->ncols; i++) {
			if (i > 0)
				sb_str(&kb, " AND ");
			sb_ident(&kb, im->cols[key->cols[i]].name);
			sb_fmt(&kb, " = ?%zu", im->nmapped + 1 + i);
		}
		r = prepare(im->db, &kb, &key->find, err);
		free(kb.p);
		if (r != 0)
			return r;
	}
	return 0;
}

/* The INSERT or UPDATE statement for the columns in mask, prepared once and cached. The
 * parameters are the columns in table order, then (UPDATE) the id. */
static int get_stmt(struct zila_csv_import *im, int op, uint64_t mask, sqlite3_stmt **out,
		    struct zila_error *err)
{
	*out = NULL;
	for (size_t i = 0; i < SLOTS; i++) {
		if (im->slots[i].st != NULL && im->slots[i].op == op && im->slots[i].mask == mask) {
			*out = im->slots[i].st;
			return 0;
		}
	}
	struct sb b = { 0 };
	size_t n = 0;
	if (op == OP_INSERT) {
		sb_str(&b, "INSERT INTO ");
		sb_ident(&b, im->table);
		sb_str(&b, " (");
		for (size_t i = 0; i < im->ncols; i++) {
			if (!(mask & (UINT64_C(1) << i)))
				continue;
			if (n++ > 0)
				sb_str(&b, ", ");
			sb_ident(&b, im->cols[i].name);
		}
		sb_str(&b, ") VALUES (");
		for (size_t i = 0; i < n; i++)
			sb_fmt(&b, i ? ", ?%zu" : "?%zu", i + 1);
		sb_str(&b, ")");
	} else {
		sb_str(&b, "UPDATE ");
		sb_ident(&b, im->table);
		sb_str(&b, " SET ");
		for (size_t i = 0; i < im->ncols; i++) {
			if (!(mask & (UINT64_C(1) << i)))
				continue;
			if (n++ > 0)
				sb_str(&b, ", ");
			sb_ident(&b, im->cols[i].name);
			sb_fmt(&b, " = ?%zu", n);
		}
		sb_fmt(&b, " WHERE \"id\" = ?%zu", n + 1);
	}
	sqlite3_stmt *st;
	int r = prepare(im->db, &b, &st, err);
	free(b.p);
	if (r != 0)
		return r;
	struct slot *s = &im->slots[im->next_slot];
	im->next_slot = (im->next_slot + 1) % SLOTS;
	sqlite3_finalize(s->st);
	s->op = op;
	s->mask = mask;
	s->st = st;
	*out = st;
	return 0;
}

static void bind_value(sqlite3_stmt *st, int idx, const struct column *c, const struct value *v)
{
	if (v->null)
		sqlite3_bind_null(st, idx);
	else if (c->kind == K_INT)
		sqlite3_bind_int64(st, idx, v->i);
	else
		sqlite3_bind_text(st, idx, v->p, (int)v->len, SQLITE_STATIC);
}

/* --- rows ------------------------------------------------------------------------- */

#define REJECT(...)                                                                      \
	do {                                                                             \
		snprintf(im->reason, sizeof(im->reason), __VA_ARGS__);                   \
		r = 1;                                                                   \
		goto out;                                                                \
	} while (0)

/* Checks and normalises the cells of one row into im->vals. 0, 1 (rejected, reason set)
 * or a negative fatal code. */
static int read_cells(struct zila_csv_import *im, struct zila_error *err)
{
	int r = 0;
	char sh[SHOW_MAX + 8];
	for (size_t i = 0; i < im->ncols; i++) {
		im->vals[i].null = true;
		im->vals[i].p = NULL;
		im->vals[i].len = 0;
	}
	for (size_t f = 0; f < im->nfields; f++) {
		const char *p = im->fptr[f];
		size_t n = im->flen[f];
		int ci = f < im->nheader ? im->field_col[f] : -1;
		if (f >= im->nheader) {
			if (!im->fnull[f] && n > 0)
				REJECT("row has %zu fields, the header has %zu", im->nfields,
				       im->nheader);
			continue;
		}
		if (ci < 0 || im->fnull[f])
			continue;
		struct column *c = &im->cols[ci];
		struct value *v = &im->vals[ci];
		if (!utf8_valid((const uint8_t *)p, n))
			REJECT("column %s is not valid UTF-8 (save the file as 'CSV UTF-8')",
			       c->name);
		v->null = false;
		v->p = p;
		v->len = n;
		if (n == 0 && c->kind != K_TEXT) {
			v->null = true; /* a quoted empty cell where only a value makes sense */
			continue;
		}
		switch (c->kind) {
		case K_DATE:
			if (!parse_date(p, n, v->norm))
				REJECT("malformed date '%s' in column %s (want YYYY-MM-DD or "
				       "DD-MM-YYYY)",
				       show(sh, p, n), c->name);
			v->p = v->norm;
			v->len = 10;
			break;
		case K_PERIOD:
			if (!parse_period(p, n, v->norm))
				REJECT("malformed period '%s' in column %s (want YYYY-MM)",
				       show(sh, p, n), c->name);
			v->p = v->norm;
			v->len = 7;
			break;
		case K_PHONE:
			if (!parse_phone(p, n, v->norm)) {
				bool excel = memchr(p, 'E', n) != NULL && memchr(p, '.', n) != NULL;
				REJECT("malformed phone '%s' in column %s (want a 10-digit mobile "
				       "number%s)",
				       show(sh, p, n), c->name,
				       excel ? "; format the column as text in the spreadsheet" : "");
			}
			v->p = v->norm;
			v->len = 10;
			break;
		case K_INT:
			if (!parse_int(p, n, &v->i))
				REJECT("malformed number '%s' in column %s", show(sh, p, n),
				       c->name);
			break;
		default:
			break;
		}
	}

	/* the partition: a district may be named by id, code or name */
	if (im->district_col >= 0 && !im->vals[im->district_col].null &&
	    im->cols[im->district_col].fk_table != NULL &&
	    strcmp(im->cols[im->district_col].fk_table, "districts") == 0) {
		struct value *v = &im->vals[im->district_col];
		const char *known = kcache_get(&im->districts, v->p, v->len);
		if (known == NULL) {
			char *id = NULL;
			int dr = district_resolve(im->db, &im->district_find, v->p, &id);
			if (dr == ZILA_ENOTFOUND)
				REJECT("unknown district '%s'", show(sh, v->p, v->len));
			if (dr == ZILA_EEXIST)
				REJECT("ambiguous district '%s' (use its id)", show(sh, v->p, v->len));
			if (dr != 0 || strlen(id) >= NORM_MAX) {
				free(id);
				r = zila_error_set(err, dr ? dr : ZILA_EINVAL,
						   "cannot look up district: %s",
						   sqlite3_errmsg(im->db));
				goto out;
			}
			int pr = kcache_put(&im->districts, v->p, v->len, id);
			free(id);
			if (pr != 0) {
				r = zila_error_set(err, ZILA_ENOMEM, "out of memory");
				goto out;
			}
			known = kcache_get(&im->districts, v->p, v->len);
		}
		snprintf(v->norm, sizeof(v->norm), "%s", known);
		v->p = v->norm;
		v->len = strlen(v->norm);
	}

	/* other foreign keys */
	for (size_t i = 0; i < im->ncols; i++) {
		struct column *c = &im->cols[i];
		struct value *v = &im->vals[i];
		if (c->fk_check == NULL || v->null)
			continue;
		if (kcache_get(&c->fk_seen, v->p, v->len) != NULL)
			continue;
		bind_value(c->fk_check, 1, c, v);
		int rc = sqlite3_step(c->fk_check);
		sqlite3_reset(c->fk_check);
		if (rc == SQLITE_DONE)
			REJECT("%s '%s' is not in table %s", c->name, show(sh, v->p, v->len),
			       c->fk_table);
		if (rc != SQLITE_ROW) {
			r = zila_error_set(err, ZILA_EDB, "cannot check %s: %s", c->name,
					   sqlite3_errmsg(im->db));
			goto out;
		}
		if (kcache_put(&c->fk_seen, v->p, v->len, "") != 0) {
			r = zila_error_set(err, ZILA_ENOMEM, "out of memory");
			goto out;
		}
	}
out:
	return r;
}

/* Runs a finder; *found tells whether a row matched, *changed gets the mapped columns
 * whose value differs, and id gets the row's id. */
static int run_find(struct zila_csv_import *im, sqlite3_stmt *st, bool *found,
		    uint64_t *changed, char id[NORM_MAX], struct zila_error *err)
{
	*found = false;
	*changed = 0;
	int rc = sqlite3_step(st);
	int r = 0;
	if (rc == SQLITE_ROW) {
		const char *rid = (const char *)sqlite3_column_text(st, 0);
		*found = true;
		snprintf(id, NORM_MAX, "%s", rid ? rid : "");
		for (size_t j = 0; j < im->nmapped; j++)
			if (sqlite3_column_int(st, (int)j + 1) == 0)
				*changed |= UINT64_C(1) << im->mapped[j];
	} else if (rc != SQLITE_DONE) {
		r = zila_error_set(err, rc == SQLITE_BUSY ? ZILA_EBUSY : ZILA_EDB,
				   "cannot read table '%s': %s", im->table, sqlite3_errmsg(im->db));
	}
	sqlite3_reset(st);
	return r;
}

static void bind_mapped(struct zila_csv_import *im, sqlite3_stmt *st)
{
	for (size_t j = 0; j < im->nmapped; j++) {
		int ci = im->mapped[j];
		bind_value(st, (int)j + 1, &im->cols[ci], &im->vals[ci]);
	}
}

/* Runs an INSERT or UPDATE; a constraint failure rejects the row (SQLite has already
 * undone the statement), anything else is fatal. */
static int run_write(struct zila_csv_import *im, sqlite3_stmt *st, struct zila_error *err)
{
	int rc = sqlite3_step(st);
	int r = 0;
	if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		snprintf(im->reason, sizeof(im->reason), "rejected by the database: %s",
			 sqlite3_errmsg(im->db));
		r = 1;
	} else if (rc != SQLITE_DONE) {
		r = zila_error_set(err, (rc & 0xff) == SQLITE_BUSY ? ZILA_EBUSY : ZILA_EDB,
				   "cannot write table '%s': %s", im->table, sqlite3_errmsg(im->db));
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

static int process_row(struct zila_csv_import *im, struct zila_error *err)
{
	int r = read_cells(im, err);
	char sh[SHOW_MAX + 8];
	if (r != 0)
		goto out;

	bool found = false;
	uint64_t changed = 0;
	char id[NORM_MAX] = "";
	struct value *idv = &im->vals[im->id_col];
	if (!idv->null) {
		if (idv->len == 0 || idv->len >= NORM_MAX)
			REJECT("malformed id '%s'", show(sh, idv->p, idv->len));
		bind_mapped(im, im->find_id);
		sqlite3_bind_text(im->find_id, (int)im->nmapped + 1, idv->p, (int)idv->len,
				  SQLITE_STATIC);
		r = run_find(im, im->find_id, &found, &changed, id, err);
		if (r != 0)
			goto out;
	} else {
		for (size_t k = 0; k < im->nkeys && !found; k++) {
			struct ukey *key = &im->keys[k];
			bool set = true;
			for (size_t i = 0; i < key->ncols; i++)
				if (im->vals[key->cols[i]].null)
					set = false;
			if (!set)
				continue;
			bind_mapped(im, key->find);
			for (size_t i = 0; i < key->ncols; i++) {
				int ci = key->cols[i];
				bind_value(key->find, (int)(im->nmapped + 1 + i), &im->cols[ci],
					   &im->vals[ci]);
			}
			r = run_find(im, key->find, &found, &changed, id, err);
			if (r != 0)
				goto out;
		}
	}

	sqlite3_stmt *st;
	if (found) {
		changed &= ~(UINT64_C(1) << im->id_col);
		if (changed == 0) {
			im->st.nunchanged++;
			goto out;
		}
		if (im->district_col >= 0 && (changed & (UINT64_C(1) << im->district_col)))
			REJECT("row %s belongs to another district; a row cannot move between "
			       "districts",
			       id);
		for (size_t i = 0; i < im->ncols; i++)
			if ((changed & (UINT64_C(1) << i)) && im->vals[i].null &&
			    im->cols[i].notnull)
				REJECT("missing required column '%s'", im->cols[i].name);
		r = get_stmt(im, OP_UPDATE, changed, &st, err);
		if (r != 0)
			goto out;
		int n = 0;
		for (size_t i = 0; i < im->ncols; i++)
			if (changed & (UINT64_C(1) << i))
				bind_value(st, ++n, &im->cols[i], &im->vals[i]);
		sqlite3_bind_text(st, n + 1, id, -1, SQLITE_STATIC);
		r = run_write(im, st, err);
		if (r == 0)
			im->st.nupdated++;
	} else {
		uint64_t mask = 0;
		for (size_t i = 0; i < im->ncols; i++) {
			struct column *c = &im->cols[i];
			if ((int)i == im->id_col || !c->writable)
				continue;
			if (!im->vals[i].null)
				mask |= UINT64_C(1) << i;
			else if (c->notnull && !c->has_default)
				REJECT("missing required column '%s'", c->name);
		}
		if (idv->null) {
			uint8_t raw[16];
			randombytes_buf(raw, sizeof(raw));
			sodium_bin2hex(id, NORM_MAX, raw, sizeof(raw));
		} else {
			memcpy(id, idv->p, idv->len);
			id[idv->len] = '\0';
		}
		mask |= UINT64_C(1) << im->id_col;
		r = get_stmt(im, OP_INSERT, mask, &st, err);
		if (r != 0)
			goto out;
		int n = 0;
		for (size_t i = 0; i < im->ncols; i++) {
			if (!(mask & (UINT64_C(1) << i)))
				continue;
			if ((int)i == im->id_col)
				sqlite3_bind_text(st, ++n, id, -1, SQLITE_STATIC);
			else
				bind_value(st, ++n, &im->cols[i], &im->vals[i]);
		}
		r = run_write(im, st, err);
		if (r == 0)
			im->st.ncreated++;
	}
out:
	return r;
}

#undef REJECT

static int process_header(struct zila_csv_import *im, struct zila_error *err)
{
	int r = ZILA_ENOMEM;
	size_t n = im->nfields;
	im->header = calloc(n, sizeof(*im->header));
	im->header_lens = calloc(n, sizeof(*im->header_lens));
	im->field_col = calloc(n, sizeof(*im->field_col));
	im->mapped = calloc(im->ncols, sizeof(*im->mapped));
	if (im->header == NULL || im->header_lens == NULL || im->field_col == NULL ||
	    im->mapped == NULL) {
		r = zila_error_set(err, ZILA_ENOMEM, "out of memory");
		goto out;
	}
	im->nheader = n;
	for (size_t f = 0; f < n; f++) {
		const char *p = im->fptr[f] ? im->fptr[f] : "";
		size_t len = im->fnull[f] ? 0 : im->flen[f];
		im->header[f] = malloc(len + 1);
		if (im->header[f] == NULL) {
			r = zila_error_set(err, ZILA_ENOMEM, "out of memory");
			goto out;
		}
		memcpy(im->header[f], p, len);
		im->header[f][len] = '\0';
		im->header_lens[f] = len;
	}
	for (size_t f = 0; f < n; f++) {
		const char *h = im->header[f];
		im->field_col[f] = -1;
		if (!utf8_valid((const uint8_t *)h, im->header_lens[f])) {
			r = zila_error_set(err, ZILA_EFORMAT,
					   "the header is not valid UTF-8 (save the file as 'CSV "
					   "UTF-8')");
			goto out;
		}
		if (h[0] == '\0' || strncmp(h, "zila_reject", 11) == 0)
			continue;
		const char *target = NULL;
		bool mapped_by_user = false;
		for (size_t m = 0; m < im->o->nmap; m++) {
			if (im->o->map[m].header != NULL && ieq(im->o->map[m].header, h)) {
				target = im->o->map[m].column;
				mapped_by_user = true;
			}
		}
		int ci = -1;
		if (mapped_by_user) {
			if (target == NULL || target[0] == '\0')
				continue;
			ci = find_column(im, target); /* checked in zila_csv_import_new() */
		} else {
			for (size_t i = 0; i < im->ncols && ci < 0; i++)
				if (header_matches(h, im->cols[i].name))
					ci = (int)i;
			/* "District" for district_id, "Org Unit" for org_unit_id */
			char withid[256];
			if (ci < 0 && snprintf(withid, sizeof(withid), "%s_id", h) < (int)sizeof(withid))
				for (size_t i = 0; i < im->ncols && ci < 0; i++)
					if (im->cols[i].fk_table != NULL &&
					    header_matches(withid, im->cols[i].name))
						ci = (int)i;
		}
		if (ci < 0) {
			r = zila_error_set(err, ZILA_ESCHEMA,
					   "no column of table '%s' matches header '%s' (map it to "
					   "a column, or ignore it)",
					   im->table, h);
			goto out;
		}
		if (!im->cols[ci].writable) {
			r = zila_error_set(err, ZILA_ESCHEMA, "column '%s' of table '%s' cannot be written",
					   im->cols[ci].name, im->table);
			goto out;
		}
		if (im->mapped_mask & (UINT64_C(1) << ci)) {
			r = zila_error_set(err, ZILA_ESCHEMA,
					   "two headers map to column '%s' (the second is '%s')",
					   im->cols[ci].name, h);
			goto out;
		}
		im->mapped_mask |= UINT64_C(1) << ci;
		im->mapped[im->nmapped++] = ci;
		im->field_col[f] = ci;
	}
	if (im->nmapped == 0) {
		r = zila_error_set(err, ZILA_ESCHEMA, "the header names no column of table '%s'",
				   im->table);
		goto out;
	}
	r = prepare_finders(im, err);
out:
	return r;
}

/* --- libcsv callbacks ------------------------------------------------------------- */

static void set_fatal(struct zila_csv_import *im, int code, const char *fmt, ...)
	ZILA_PRINTF(3, 4);
static void set_fatal(struct zila_csv_import *im, int code, const char *fmt, ...)
{
	if (im->fatal != 0)
		return;
	im->fatal = code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(im->fatal_err.msg, sizeof(im->fatal_err.msg), fmt, ap);
	va_end(ap);
	im->fatal_err.code = code;
}

static uint64_t count_breaks(const char *s, size_t n)
{
	uint64_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\n')
			k++;
		else if (s[i] == '\r' && (i + 1 == n || s[i + 1] != '\n'))
			k++;
	}
	return k;
}

static void on_field(void *s, size_t n, void *ctx)
{
	struct zila_csv_import *im = ctx;
	if (im->fatal != 0)
		return;
	if (im->nfields == ZILA_CSV_FIELDS_MAX) {
		set_fatal(im, ZILA_ETOOBIG, "line %" PRIu64 " has more than %d fields", im->line,
			  ZILA_CSV_FIELDS_MAX);
		return;
	}
	if (s != NULL && im->arena_len + n + 1 > ZILA_CSV_ROW_MAX) {
		set_fatal(im, ZILA_ETOOBIG, "the row on line %" PRIu64 " is longer than %d bytes",
			  im->line, ZILA_CSV_ROW_MAX);
		return;
	}
	if (im->nfields == im->fields_cap) {
		size_t cap = im->fields_cap ? im->fields_cap * 2 : 32;
		size_t *off = realloc(im->off, cap * sizeof(*off));
		if (off != NULL)
			im->off = off;
		size_t *flen = realloc(im->flen, cap * sizeof(*flen));
		if (flen != NULL)
			im->flen = flen;
		bool *fnull = realloc(im->fnull, cap * sizeof(*fnull));
		if (fnull != NULL)
			im->fnull = fnull;
		const char **fptr = realloc(im->fptr, cap * sizeof(*fptr));
		if (fptr != NULL)
			im->fptr = fptr;
		if (off == NULL || flen == NULL || fnull == NULL || fptr == NULL) {
			set_fatal(im, ZILA_ENOMEM, "out of memory");
			return;
		}
		im->fields_cap = cap;
	}
	size_t need = im->arena_len + (s ? n : 0) + 1;
	if (need > im->arena_cap) {
		size_t cap = im->arena_cap ? im->arena_cap : 4096;
		while (cap < need)
			cap *= 2;
		char *a = realloc(im->arena, cap);
		if (a == NULL) {
			set_fatal(im, ZILA_ENOMEM, "out of memory");
			return;
		}
		im->arena = a;
		im->arena_cap = cap;
	}
	size_t i = im->nfields++;
	im->off[i] = im->arena_len;
	im->fnull[i] = s == NULL;
	im->flen[i] = s ? n : 0;
	if (s != NULL) {
		memcpy(im->arena + im->arena_len, s, n);
		im->rec_breaks += count_breaks(s, n);
	}
	im->arena_len += (s ? n : 0);
	im->arena[im->arena_len++] = '\0';
}

static void reject_row(struct zila_csv_import *im, uint64_t line)
{
	im->st.nrejected++;
	if (im->o->on_reject == NULL)
		return;
	struct zila_csv_reject rj = {
		.line = line,
		.reason = im->reason,
		.fields = im->fptr,
		.field_lens = im->flen,
		.nfields = im->nfields,
		.header = (const char *const *)im->header,
		.header_lens = im->header_lens,
		.nheader = im->nheader,
	};
	im->o->on_reject(im->o->ctx, &rj);
}

static void on_record(int c, void *ctx)
{
	struct zila_csv_import *im = ctx;
	bool crlf = im->nfields == 0 && c == '\n' && im->prev_term == '\r';
	im->prev_term = c;
	if (crlf)
		return;
	uint64_t line = im->line;
	im->line += 1 + im->rec_breaks;
	im->st.nlines = im->line - 1;
	if (im->fatal != 0)
		goto done;

	bool blank = true;
	for (size_t i = 0; i < im->nfields; i++) {
		im->fptr[i] = im->fnull[i] ? NULL : im->arena + im->off[i];
		if (!im->fnull[i] && im->flen[i] > 0)
			blank = false;
	}
	if (blank)
		goto done;
	if (!im->have_header) {
		im->have_header = true;
		int r = process_header(im, &im->fatal_err);
		if (r != 0)
			im->fatal = r;
		goto done;
	}
	im->st.nrows++;
	int r = process_row(im, &im->fatal_err);
	if (r < 0)
		im->fatal = r;
	else if (r > 0)
		reject_row(im, line);
done:
	im->nfields = 0;
	im->arena_len = 0;
	im->rec_breaks = 0;
}

/* libcsv grows its field buffer with this; refusing a huge field stops a file with an
 * unclosed quote from being read whole into memory. */
static void *limited_realloc(void *p, size_t n)
{
	if (n > ZILA_CSV_FIELD_MAX + 4096)
		return NULL;
	return realloc(p, n);
}

static int space_func_space(unsigned char c)
{
	return c == ' ';
}

static int space_func_default(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* Picks the separator from the first line: the most frequent of , ; TAB outside quotes. */
static char detect_delim(const uint8_t *p, size_t n)
{
	size_t nc = 0, ns = 0, nt = 0;
	bool q = false;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '"')
			q = !q;
		else if (!q && (p[i] == '\n' || p[i] == '\r'))
			break;
		else if (!q && p[i] == ',')
			nc++;
		else if (!q && p[i] == ';')
			ns++;
		else if (!q && p[i] == '\t')
			nt++;
	}
	if (ns > nc && ns >= nt)
		return ';';
	if (nt > nc && nt > ns)
		return '\t';
	return ',';
}

static int parse_bytes(struct zila_csv_import *im, const uint8_t *p, size_t n)
{
	size_t done = csv_parse(&im->parser, p, n, on_field, on_record, im);
	if (done != n && im->fatal == 0) {
		int e = csv_error(&im->parser);
		if (e == CSV_ENOMEM)
			set_fatal(im, ZILA_ETOOBIG,
				  "a field on line %" PRIu64 " is longer than %d bytes (is a quote "
				  "not closed?)",
				  im->line, ZILA_CSV_FIELD_MAX);
		else
			set_fatal(im, ZILA_EFORMAT, "cannot parse line %" PRIu64 ": %s", im->line,
				  csv_strerror(e));
	}
	return im->fatal;
}

static int start_parser(struct zila_csv_import *im)
{
	const uint8_t *p = im->pre;
	size_t n = im->pre_len;
	im->started = true;
	if (n >= 2 && ((p[0] == 0xff && p[1] == 0xfe) || (p[0] == 0xfe && p[1] == 0xff))) {
		set_fatal(im, ZILA_EFORMAT,
			  "the file is UTF-16; save it as 'CSV UTF-8 (comma delimited)'");
		return im->fatal;
	}
	if (n >= 3 && p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf) {
		p += 3;
		n -= 3;
	}
	char delim = im->o->delim ? im->o->delim : detect_delim(p, n);
	if (csv_init(&im->parser, CSV_REPALL_NL | CSV_EMPTY_IS_NULL | CSV_APPEND_NULL) != 0) {
		set_fatal(im, ZILA_ENOMEM, "out of memory");
		return im->fatal;
	}
	im->parser_init = true;
	csv_set_delim(&im->parser, (unsigned char)delim);
	csv_set_space_func(&im->parser, delim == '\t' ? space_func_space : space_func_default);
	csv_set_realloc_func(&im->parser, limited_realloc);
	int r = parse_bytes(im, p, n);
	free(im->pre);
	im->pre = NULL;
	im->pre_len = 0;
	return r;
}

/* --- the import API --------------------------------------------------------------- */

int zila_csv_import_new(struct zila_csv_import **out, sqlite3 *db,
			const struct zila_csv_import_opts *opts, struct zila_error *err)
{
	int r = ZILA_EINVAL;
	struct zila_csv_import *im = NULL;
	*out = NULL;
	if (db == NULL || opts == NULL || opts->table == NULL) {
		r = zila_error_set(err, ZILA_EINVAL, "no table given");
		goto out;
	}
	if (sodium_init() < 0) {
		r = zila_error_set(err, ZILA_EINTERNAL, "cannot initialise libsodium");
		goto out;
	}
	im = calloc(1, sizeof(*im));
	if (im == NULL) {
		r = zila_error_set(err, ZILA_ENOMEM, "out of memory");
		goto out;
	}
	im->db = db;
	im->o = opts;
	im->id_col = -1;
	im->district_col = -1;
	im->line = 1;
	im->table = xstrdup(opts->table);
	if (im->table == NULL) {
		r = zila_error_set(err, ZILA_ENOMEM, "out of memory");
		goto out;
	}
	r = load_table(im, err);
	if (r != 0)
		goto out;
	for (size_t m = 0; m < opts->nmap; m++) {
		const char *col = opts->map[m].column;
		if (col != NULL && col[0] != '\0' && find_column(im, col) < 0) {
			r = zila_error_set(err, ZILA_EINVAL, "no column '%s' in table '%s'", col,
					   im->table);
			goto out;
		}
	}
	im->vals = calloc(im->ncols, sizeof(*im->vals));
	if (im->vals == NULL) {
		r = zila_error_set(err, ZILA_ENOMEM, "out of memory");
		goto out;
	}
	im->savepoint = sqlite3_get_autocommit(db) == 0;
	const char *begin = im->savepoint ? "SAVEPOINT zila_import" : "BEGIN IMMEDIATE";
	int rc = sqlite3_exec(db, begin, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		r = zila_error_set(err, (rc & 0xff) == SQLITE_BUSY ? ZILA_EBUSY : ZILA_EDB,
				   "cannot start a transaction: %s", sqlite3_errmsg(db));
		goto out;
	}
	im->in_txn = true;
	*out = im;
	im = NULL;
	r = 0;
out:
	zila_csv_import_free(im);
	return r;
}

int zila_csv_import_feed(struct zila_csv_import *im, const void *p, size_t len,
			 struct zila_error *err)
{
	int r = im->fatal;
	if (r != 0 || im->finished) {
		r = r ? r : ZILA_EINVAL;
		goto out;
	}
	const uint8_t *b = p;
	if (!im->started) {
		size_t take = len;
		if (im->pre_len + take > PREBUF_MAX)
			take = PREBUF_MAX - im->pre_len;
		uint8_t *np = realloc(im->pre, im->pre_len + take + 1);
		if (np == NULL) {
			set_fatal(im, ZILA_ENOMEM, "out of memory");
			r = im->fatal;
			goto out;
		}
		im->pre = np;
		memcpy(im->pre + im->pre_len, b, take);
		im->pre_len += take;
		b += take;
		len -= take;
		bool line = memchr(im->pre, '\n', im->pre_len) != NULL ||
			    memchr(im->pre, '\r', im->pre_len) != NULL;
		if (!line && im->pre_len < PREBUF_MAX)
			goto out;
		r = start_parser(im);
		if (r != 0)
			goto out;
	}
	if (len > 0)
		r = parse_bytes(im, b, len);
out:
	if (r != 0 && err != NULL && im->fatal != 0)
		*err = im->fatal_err;
	return r;
}

static int end_txn(struct zila_csv_import *im, bool commit)
{
	if (!im->in_txn)
		return 0;
	im->in_txn = false;
	const char *sql;
	if (im->savepoint)
		sql = commit ? "RELEASE zila_import"
			     : "ROLLBACK TO zila_import; RELEASE zila_import";
	else
		sql = commit ? "COMMIT" : "ROLLBACK";
	return sqlite3_exec(im->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : ZILA_EDB;
}

int zila_csv_import_finish(struct zila_csv_import *im, struct zila_csv_stats *st,
			   struct zila_error *err)
{
	int r = im->fatal;
	if (st != NULL)
		memset(st, 0, sizeof(*st));
	if (r != 0 || im->finished) {
		r = r ? r : ZILA_EINVAL;
		goto out;
	}
	if (!im->started) {
		r = start_parser(im);
		if (r != 0)
			goto out;
	}
	im->finished = true;
	if (csv_fini(&im->parser, on_field, on_record, im) != 0 && im->fatal == 0)
		set_fatal(im, ZILA_EFORMAT, "cannot parse line %" PRIu64, im->line);
	r = im->fatal;
	if (r != 0)
		goto out;
	if (!im->have_header) {
		set_fatal(im, ZILA_EFORMAT, "the file is empty (no header row)");
		r = im->fatal;
		goto out;
	}
	if (im->st.nrejected > 0 && !im->o->skip_bad && !im->o->dry_run) {
		set_fatal(im, ZILA_EFORMAT, "%" PRIu64 " of %" PRIu64 " rows are bad; nothing was imported",
			  im->st.nrejected, im->st.nrows);
		r = im->fatal;
		goto out;
	}
	int rc = end_txn(im, !im->o->dry_run);
	if (rc != 0) {
		set_fatal(im, rc, "cannot commit: %s", sqlite3_errmsg(im->db));
		r = im->fatal;
		goto out;
	}
	r = 0;
out:
	if (r != 0) {
		(void)end_txn(im, false);
		if (err != NULL && im->fatal != 0)
			*err = im->fatal_err;
	}
	if (st != NULL)
		*st = im->st;
	return r;
}

void zila_csv_import_stats(const struct zila_csv_import *im, struct zila_csv_stats *st)
{
	*st = im->st;
}

void zila_csv_import_free(struct zila_csv_import *im)
{
	if (im == NULL)
		return;
	(void)end_txn(im, false);
	if (im->parser_init)
		csv_free(&im->parser);
	free(im->pre);
	free(im->arena);
	free(im->off);
	free(im->flen);
	free(im->fnull);
	free(im->fptr);
	for (size_t i = 0; i < im->ncols; i++) {
		free(im->cols[i].name);
		free(im->cols[i].fk_table);
		free(im->cols[i].fk_col);
		kcache_free(&im->cols[i].fk_seen);
		sqlite3_finalize(im->cols[i].fk_check);
	}
	free(im->cols);
	for (size_t k = 0; k < KEYS_MAX; k++)
		sqlite3_finalize(im->keys[k].find);
	for (size_t i = 0; i < SLOTS; i++)
		sqlite3_finalize(im->slots[i].st);
	sqlite3_finalize(im->find_id);
	sqlite3_finalize(im->district_find);
	kcache_free(&im->districts);
	for (size_t f = 0; f < im->nheader; f++)
		free(im->header[f]);
	free(im->header);
	free(im->header_lens);
	free(im->field_col);
	free(im->mapped);
	free(im->vals);
	free(im->table);
	free(im);
}

int zila_csv_import_file(sqlite3 *db, const char *path, const struct zila_csv_import_opts *opts,
			 struct zila_csv_stats *st, struct zila_error *err)
{
	struct zila_csv_import *im = NULL;
	FILE *f = NULL;
	int r;
	char ebuf[128];
	uint8_t *buf = malloc(64 * 1024);
	if (st != NULL)
		memset(st, 0, sizeof(*st));
	bool is_stdin = strcmp(path, "-") == 0;
	if (buf == NULL) {
		r = zila_error_set(err, ZILA_ENOMEM, "out of memory");
		goto out;
	}
	f = is_stdin ? stdin : fopen(path, "rb");
	if (f == NULL) {
		r = zila_error_set(err, ZILA_EIO, "cannot read '%s': %s", path, errno_msg(errno, ebuf));
		goto out;
	}
	r = zila_csv_import_new(&im, db, opts, err);
	if (r != 0)
		goto out;
	size_t n;
	while ((n = fread(buf, 1, 64 * 1024, f)) > 0) {
		r = zila_csv_import_feed(im, buf, n, err);
		if (r != 0)
			goto out;
	}
	if (ferror(f)) {
		r = zila_error_set(err, ZILA_EIO, "cannot read '%s': %s", path, errno_msg(errno, ebuf));
		goto out;
	}
	r = zila_csv_import_finish(im, st, err);
out:
	if (im != NULL && st != NULL && r != 0)
		zila_csv_import_stats(im, st);
	zila_csv_import_free(im);
	if (f != NULL && !is_stdin)
		fclose(f);
	free(buf);
	return r;
}

/* --- export ----------------------------------------------------------------------- */

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

static void csv_field(FILE *out, const char *s, size_t n)
{
	if (!needs_quotes(s, n)) {
		fwrite(s, 1, n, out);
		return;
	}
	fputc('"', out);
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

static void json_str(FILE *out, const unsigned char *s, size_t n)
{
	fputc('"', out);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", out);
		else if (c == '\r')
			fputs("\\r", out);
		else if (c == '\t')
			fputs("\\t", out);
		else if (c < 0x20)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

int zila_csv_export(sqlite3 *db, const struct zila_csv_export_opts *opts, FILE *out,
		    uint64_t *nrows, struct zila_error *err)
{
	int r;
	sqlite3_stmt *st = NULL, *dfind = NULL;
	char *district = NULL;
	struct sb b = { 0 };
	uint64_t n = 0;
	char ebuf[128];
	if (nrows != NULL)
		*nrows = 0;
	if (opts == NULL || opts->table == NULL) {
		r = zila_error_set(err, ZILA_EINVAL, "no table given");
		goto out;
	}
	const char *t = opts->table;
	r = table_exists(db, t, err);
	if (r != 0)
		goto out;
	if (opts->district != NULL) {
		if (!table_has_column(db, t, "district_id")) {
			r = zila_error_set(err, ZILA_EINVAL,
					   "table '%s' has no district_id column (it is org-wide)", t);
			goto out;
		}
		int dr = table_exists(db, "districts", NULL) == 0
				 ? district_resolve(db, &dfind, opts->district, &district)
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
	bool has_id = table_has_column(db, t, "id");
	if (self_col[0] != '\0' && has_id) {
		sb_str(&b, "WITH RECURSIVE d(id, depth) AS (SELECT id, 0 FROM ");
		sb_ident(&b, t);
		sb_str(&b, " WHERE ");
		sb_ident(&b, self_col);
		sb_str(&b, " IS NULL UNION ALL SELECT c.id, d.depth + 1 FROM ");
		sb_ident(&b, t);
		sb_str(&b, " c JOIN d ON c.");
		sb_ident(&b, self_col);
		sb_str(&b, " = d.id WHERE d.depth < 64) SELECT t.* FROM ");
		sb_ident(&b, t);
		sb_str(&b, " t LEFT JOIN (SELECT id, min(depth) AS depth FROM d GROUP BY id) x "
			   "ON x.id = t.id");
		if (district != NULL)
			sb_str(&b, " WHERE t.district_id = ?1");
		sb_str(&b, " ORDER BY coalesce(x.depth, 1000), t.id");
	} else {
		sb_str(&b, "SELECT * FROM ");
		sb_ident(&b, t);
		if (district != NULL)
			sb_str(&b, " WHERE district_id = ?1");
		sb_str(&b, has_id ? " ORDER BY id" : " ORDER BY rowid");
	}
	r = prepare(db, &b, &st, err);
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
		r = zila_error_set(err, ZILA_EIO, "cannot write: %s", errno_msg(errno, ebuf));
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
