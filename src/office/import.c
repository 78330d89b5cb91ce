/* CSV import: libcsv does the parsing; this file maps headers to columns, validates and
 * normalises cells (rules.c), and creates or updates rows with plain SQL. */
#include "zila/office/csvio.h"

#include <csv.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "office_int.h"
#include "zila/buf.h"

#define KEYS_MAX 8     /* unique keys considered for matching */
#define KEY_COLS_MAX 8 /* columns in one unique key */
#define SLOTS 32       /* cached INSERT/UPDATE statements */
#define PREBUF_MAX (64 * 1024)

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
	enum office_kind kind;
	bool notnull;
	bool has_default;
	bool writable;
	char *fk_table; /* single-column foreign key, or NULL */
	char *fk_col;
	sqlite3_stmt *fk_check;
	struct kcache fk_seen; /* values known to be in fk_table */
	/* A parent with a code column (a booth's number "110"): a value that is no id is looked up
	 * by code, in the row's district when the parent has one; NULL otherwise. */
	sqlite3_stmt *fk_by_code;
	struct kcache fk_codes; /* "district\x1fcode" -> id */
};

struct value {
	const char *p; /* NUL-terminated */
	size_t len;
	bool null;
	int64_t i; /* K_INT */
	char norm[OFFICE_NORM_MAX];
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
	uint64_t records; /* records read, blank ones and the header included */
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
	sqlite3_stmt *find_old; /* SELECT every column FROM t WHERE id = ?1 */
	int name_col;           /* the table's name column, or -1 */
	struct slot slots[SLOTS];
	size_t next_slot;

	struct value *vals; /* per table column */
	struct zila_csv_stats st;
	char reason[512];
};

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
	char *v = office_strdup(val);
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

static int find_column(struct zila_csv_import *im, const char *name)
{
	for (size_t i = 0; i < im->ncols; i++)
		if (office_ieq(im->cols[i].name, name))
			return (int)i;
	return -1;
}

static int load_table(struct zila_csv_import *im, struct zila_error *err)
{
	sqlite3 *db = im->db;
	sqlite3_stmt *st = NULL;
	int r = office_table_exists(db, im->table, err);
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
		c->name = office_strdup(name ? name : "");
		if (c->name == NULL) {
			r = zila_error_set(err, ZILA_ENOMEM, "out of memory");
			goto out;
		}
		c->kind = office_column_kind(c->name, type ? type : "");
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
		c->fk_table = office_strdup(ptab);
		c->fk_col = office_strdup(to ? to : "id"); /* a NULL "to" means the parent's key */
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
			continue; /* resolved by office_district_resolve() */
		struct office_sb b = { 0 };
		office_sb_str(&b, "SELECT 1 FROM ");
		office_sb_ident(&b, c->fk_table);
		office_sb_str(&b, " WHERE ");
		office_sb_ident(&b, c->fk_col);
		office_sb_str(&b, " = ?1");
		r = office_prepare(db, &b, &c->fk_check, err);
		free(b.p);
		if (r != 0)
			goto out;
		/* a parent with a code: "110" names booth 110 (of the row's district, if the parent has districts) */
		bool has_code = false, has_district = false;
		sqlite3_stmt *ti = NULL;
		if (sqlite3_prepare_v2(db, "SELECT name FROM pragma_table_info(?1)", -1, &ti, NULL) != SQLITE_OK)
			goto dberr;
		sqlite3_bind_text(ti, 1, c->fk_table, -1, SQLITE_STATIC);
		while (sqlite3_step(ti) == SQLITE_ROW) {
			const char *cn = (const char *)sqlite3_column_text(ti, 0);
			has_code = has_code || (cn && strcmp(cn, "code") == 0);
			has_district = has_district || (cn && strcmp(cn, "district_id") == 0);
		}
		sqlite3_finalize(ti);
		if (!has_code)
			continue;
		struct office_sb q = { 0 };
		office_sb_str(&q, "SELECT ");
		office_sb_ident(&q, c->fk_col);
		office_sb_str(&q, " FROM ");
		office_sb_ident(&q, c->fk_table);
		office_sb_str(&q, has_district ? " WHERE code = ?1 AND (?2 IS NULL OR district_id = ?2) LIMIT 2"
					       : " WHERE code = ?1 LIMIT 2");
		r = office_prepare(db, &q, &c->fk_by_code, err);
		free(q.p);
		if (r != 0)
			goto out;
	}
	im->district_col = find_column(im, "district_id");
	im->name_col = find_column(im, "name");

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

/* The columns in mask, in table order: "a", "b" or (assign) "a" = ?1, "b" = ?2. Returns how
 * many. */
static size_t sb_columns(struct zila_csv_import *im, struct office_sb *b, uint64_t mask,
			 bool assign)
{
	size_t n = 0;
	for (size_t i = 0; i < im->ncols; i++) {
		if (!(mask & (UINT64_C(1) << i)))
			continue;
		if (n++ > 0)
			office_sb_str(b, ", ");
		office_sb_ident(b, im->cols[i].name);
		if (assign)
			office_sb_fmt(b, " = ?%zu", n);
	}
	return n;
}

/* SELECT id, c1 IS ?1, c2 IS ?2, ... FROM t WHERE <where> */
static void sb_compare_select(struct zila_csv_import *im, struct office_sb *b)
{
	office_sb_str(b, "SELECT \"id\"");
	for (size_t j = 0; j < im->nmapped; j++) {
		office_sb_str(b, ", ");
		office_sb_ident(b, im->cols[im->mapped[j]].name);
		office_sb_fmt(b, " IS ?%zu", j + 1);
	}
	office_sb_str(b, " FROM ");
	office_sb_ident(b, im->table);
	office_sb_str(b, " WHERE ");
}

static int prepare_finders(struct zila_csv_import *im, struct zila_error *err)
{
	int r;
	struct office_sb b = { 0 };
	sb_compare_select(im, &b);
	office_sb_fmt(&b, "\"id\" = ?%zu", im->nmapped + 1);
	r = office_prepare(im->db, &b, &im->find_id, err);
	free(b.p);
	if (r != 0)
		return r;
	struct office_sb ob = { 0 };
	office_sb_str(&ob, "SELECT ");
	(void)sb_columns(im, &ob, ~UINT64_C(0), false);
	office_sb_str(&ob, " FROM ");
	office_sb_ident(&ob, im->table);
	office_sb_str(&ob, " WHERE \"id\" = ?1");
	r = office_prepare(im->db, &ob, &im->find_old, err);
	free(ob.p);
	if (r != 0)
		return r;

	/* keep only the keys whose columns are all in the header (or filled in: the district) */
	uint64_t known = im->mapped_mask;
	if (im->district_col >= 0 && im->o->own_district != NULL)
		known |= UINT64_C(1) << im->district_col;
	size_t nk = 0;
	for (size_t k = 0; k < im->nkeys; k++) {
		bool all = true;
		for (size_t i = 0; i < im->keys[k].ncols; i++)
			if (!(known & (UINT64_C(1) << im->keys[k].cols[i])))
				all = false;
		if (all)
			im->keys[nk++] = im->keys[k];
	}
	im->nkeys = nk;
	for (size_t k = 0; k < im->nkeys; k++) {
		struct ukey *key = &im->keys[k];
		struct office_sb kb = { 0 };
		sb_compare_select(im, &kb);
		for (size_t i = 0; i < key->ncols; i++) {
			if (i > 0)
				office_sb_str(&kb, " AND ");
			office_sb_ident(&kb, im->cols[key->cols[i]].name);
			office_sb_fmt(&kb, " = ?%zu", im->nmapped + 1 + i);
		}
		r = office_prepare(im->db, &kb, &key->find, err);
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
	struct office_sb b = { 0 };
	size_t n = 0;
	if (op == OP_INSERT) {
		office_sb_str(&b, "INSERT INTO ");
		office_sb_ident(&b, im->table);
		office_sb_str(&b, " (");
		n = sb_columns(im, &b, mask, false);
		office_sb_str(&b, ") VALUES (");
		for (size_t i = 0; i < n; i++)
			office_sb_fmt(&b, i ? ", ?%zu" : "?%zu", i + 1);
		office_sb_str(&b, ")");
	} else {
		office_sb_str(&b, "UPDATE ");
		office_sb_ident(&b, im->table);
		office_sb_str(&b, " SET ");
		n = sb_columns(im, &b, mask, true);
		office_sb_fmt(&b, " WHERE \"id\" = ?%zu", n + 1);
	}
	sqlite3_stmt *st;
	int r = office_prepare(im->db, &b, &st, err);
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

/* A cell's value as it is written: the normalised text, or the number of an INTEGER
 * column; *len gets its length. */
static const char *cell_text(const struct zila_csv_import *im, size_t i, char num[32], size_t *len)
{
	const struct value *v = &im->vals[i];
	if (im->cols[i].kind == K_INT) {
		snprintf(num, 32, "%lld", (long long)v->i);
		*len = strlen(num);
		return num;
	}
	*len = v->len;
	return v->p;
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
	char sh[OFFICE_SHOW_MAX + 8];
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
		if (!zila_utf8_valid((const uint8_t *)p, n))
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
			if (!office_parse_date(p, n, v->norm))
				REJECT("malformed date '%s' in column %s (want YYYY-MM-DD or "
				       "DD-MM-YYYY)",
				       office_show(sh, p, n), c->name);
			v->p = v->norm;
			v->len = 10;
			break;
		case K_PERIOD:
			if (!office_parse_period(p, n, v->norm))
				REJECT("malformed period '%s' in column %s (want YYYY-MM)",
				       office_show(sh, p, n), c->name);
			v->p = v->norm;
			v->len = 7;
			break;
		case K_PHONE:
			if (!office_parse_phone(p, n, v->norm)) {
				bool excel = memchr(p, 'E', n) != NULL && memchr(p, '.', n) != NULL;
				REJECT("malformed phone '%s' in column %s (want a 10-digit mobile "
				       "number, or a landline with its STD code such as 0612-2234567%s)",
				       office_show(sh, p, n), c->name,
				       excel ? "; format the column as text in the spreadsheet" : "");
			}
			v->p = v->norm;
			v->len = strlen(v->norm);
			break;
		case K_GENDER: {
			const char *g = office_gender(p, n);
			if (g != NULL) {
				v->p = g;
				v->len = strlen(g);
			}
			break;
		}
		case K_INT:
			if (!office_parse_int(p, n, &v->i))
				REJECT("malformed number '%s' in column %s", office_show(sh, p, n),
				       c->name);
			break;
		default:
			break;
		}
	}

	/* a district laptop's own district, for a file that names none */
	if (im->district_col >= 0 && im->vals[im->district_col].null && im->o->own_district != NULL &&
	    strlen(im->o->own_district) < OFFICE_NORM_MAX) {
		struct value *v = &im->vals[im->district_col];
		snprintf(v->norm, sizeof(v->norm), "%s", im->o->own_district);
		v->p = v->norm;
		v->len = strlen(v->norm);
		v->null = false;
	}

	/* the partition: a district may be named by id, code or name */
	if (im->district_col >= 0 && !im->vals[im->district_col].null &&
	    im->cols[im->district_col].fk_table != NULL &&
	    strcmp(im->cols[im->district_col].fk_table, "districts") == 0) {
		struct value *v = &im->vals[im->district_col];
		const char *known = kcache_get(&im->districts, v->p, v->len);
		if (known == NULL) {
			char *id = NULL;
			int dr = office_district_resolve(im->db, &im->district_find, v->p, &id);
			if (dr == ZILA_ENOTFOUND)
				REJECT("unknown district '%s'", office_show(sh, v->p, v->len));
			if (dr == ZILA_EEXIST)
				REJECT("ambiguous district '%s' (use its id)", office_show(sh, v->p, v->len));
			if (dr != 0 || strlen(id) >= OFFICE_NORM_MAX) {
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
		if (rc == SQLITE_DONE && c->fk_by_code != NULL) {
			/* not an id: a code, such as a booth's number, within the row's district */
			const char *dist = NULL;
			if (im->district_col >= 0 && !im->vals[im->district_col].null)
				dist = im->vals[im->district_col].p;
			else if (im->o->own_district != NULL)
				dist = im->o->own_district;
			char key[2 * OFFICE_NORM_MAX + 2];
			int kn = snprintf(key, sizeof(key), "%s\x1f%.*s", dist ? dist : "", (int)v->len, v->p);
			const char *id = kn > 0 && (size_t)kn < sizeof(key) ? kcache_get(&c->fk_codes, key, (size_t)kn) : NULL;
			if (id == NULL) {
				sqlite3_bind_text(c->fk_by_code, 1, v->p, (int)v->len, SQLITE_TRANSIENT);
				if (dist != NULL)
					sqlite3_bind_text(c->fk_by_code, 2, dist, -1, SQLITE_TRANSIENT);
				else
					sqlite3_bind_null(c->fk_by_code, 2);
				int n = 0;
				char found[OFFICE_NORM_MAX] = "";
				while ((rc = sqlite3_step(c->fk_by_code)) == SQLITE_ROW) {
					if (n++ == 0)
						snprintf(found, sizeof(found), "%s", (const char *)sqlite3_column_text(c->fk_by_code, 0));
				}
				sqlite3_reset(c->fk_by_code);
				sqlite3_clear_bindings(c->fk_by_code);
				if (rc != SQLITE_DONE) {
					r = zila_error_set(err, ZILA_EDB, "cannot look up %s: %s", c->name, sqlite3_errmsg(im->db));
					goto out;
				}
				if (n == 0)
					REJECT("%s '%s' is not in table %s (neither an id nor a code)", c->name,
					       office_show(sh, v->p, v->len), c->fk_table);
				if (n > 1)
					REJECT("%s '%s' is the code of several rows of %s: use its id", c->name,
					       office_show(sh, v->p, v->len), c->fk_table);
				if (kn > 0 && (size_t)kn < sizeof(key) && kcache_put(&c->fk_codes, key, (size_t)kn, found) != 0) {
					r = zila_error_set(err, ZILA_ENOMEM, "out of memory");
					goto out;
				}
				snprintf(v->norm, sizeof(v->norm), "%s", found);
			} else {
				snprintf(v->norm, sizeof(v->norm), "%s", id);
			}
			v->p = v->norm;
			v->len = strlen(v->norm);
			continue;
		}
		if (rc == SQLITE_DONE)
			REJECT("%s '%s' is not in table %s", c->name, office_show(sh, v->p, v->len),
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
		    uint64_t *changed, char id[OFFICE_NORM_MAX], struct zila_error *err)
{
	*found = false;
	*changed = 0;
	int rc = sqlite3_step(st);
	int r = 0;
	if (rc == SQLITE_ROW) {
		const char *rid = (const char *)sqlite3_column_text(st, 0);
		*found = true;
		snprintf(id, OFFICE_NORM_MAX, "%s", rid ? rid : "");
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

/* Whether name appears in text as a word of its own (an identifier in a CHECK). */
static bool names_column(const char *text, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = strstr(text, name); p != NULL; p = strstr(p + 1, name)) {
		bool before = p == text || !(p[-1] == '_' || ((p[-1] | 32) >= 'a' && (p[-1] | 32) <= 'z') ||
					       (p[-1] >= '0' && p[-1] <= '9'));
		char c = p[n];
		bool after = !(c == '_' || ((c | 32) >= 'a' && (c | 32) <= 'z') || (c >= '0' && c <= '9'));
		if (before && after)
			return true;
	}
	return false;
}

/* A constraint SQLite refused, as office staff can act on it: "CHECK constraint failed:
 * gender = 'female' OR ..." as the value, the column and what the column allows; "UNIQUE
 * constraint failed: people.district_id, people.phone" as the values another row holds. */
static void constraint_reason(struct zila_csv_import *im)
{
	char sh[OFFICE_SHOW_MAX + 8], num[32];
	size_t len;
	const char *msg = sqlite3_errmsg(im->db);
	int xrc = sqlite3_extended_errcode(im->db);
	const char *rule = strstr(msg, "constraint failed: ");
	rule = rule ? rule + strlen("constraint failed: ") : msg;
	if (xrc == SQLITE_CONSTRAINT_CHECK) {
		for (size_t i = 0; i < im->ncols; i++) {
			if (im->vals[i].null || !names_column(rule, im->cols[i].name))
				continue;
			const char *t = cell_text(im, i, num, &len);
			snprintf(im->reason, sizeof(im->reason),
				 "'%s' is not allowed in column %s (the table wants: %s)",
				 office_show(sh, t, len), im->cols[i].name, rule);
			return;
		}
	} else if (xrc == SQLITE_CONSTRAINT_UNIQUE || xrc == SQLITE_CONSTRAINT_PRIMARYKEY) {
		size_t n = 0, named = 0;
		for (size_t i = 0; i < im->ncols; i++)
			named += names_column(rule, im->cols[i].name);
		for (size_t i = 0; i < im->ncols && n < sizeof(im->reason); i++) {
			if (im->vals[i].null || !names_column(rule, im->cols[i].name) ||
			    ((int)i == im->district_col && named > 1))
				continue;
			const char *t = cell_text(im, i, num, &len);
			int k = snprintf(im->reason + n, sizeof(im->reason) - n, "%s%s '%s'",
					 n ? ", " : "", im->cols[i].name, office_show(sh, t, len));
			if (k < 0)
				break;
			n += (size_t)k;
		}
		if (n > 0 && n < sizeof(im->reason)) {
			snprintf(im->reason + n, sizeof(im->reason) - n,
				 " already belongs to another row of table '%s' (UNIQUE: two rows "
				 "cannot share it)",
				 im->table);
			return;
		}
	}
	snprintf(im->reason, sizeof(im->reason), "rejected by the database: %s", msg);
}

/* Runs an INSERT or UPDATE; a constraint failure rejects the row (SQLite has already
 * undone the statement), anything else is fatal. */
static int run_write(struct zila_csv_import *im, sqlite3_stmt *st, struct zila_error *err)
{
	int rc = sqlite3_step(st);
	int r = 0;
	if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		constraint_reason(im);
		r = 1;
	} else if (rc != SQLITE_DONE) {
		r = zila_error_set(err, (rc & 0xff) == SQLITE_BUSY ? ZILA_EBUSY : ZILA_EDB,
				   "cannot write table '%s': %s", im->table, sqlite3_errmsg(im->db));
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

/* Reads the stored row id into im->find_old: 1 when it is there, 0 when not, or a negative
 * fatal code. The caller resets im->find_old when done with the row's columns. */
static int old_row(struct zila_csv_import *im, const char *id, struct zila_error *err)
{
	sqlite3_reset(im->find_old);
	sqlite3_bind_text(im->find_old, 1, id, -1, SQLITE_TRANSIENT);
	int rc = sqlite3_step(im->find_old);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return zila_error_set(err, (rc & 0xff) == SQLITE_BUSY ? ZILA_EBUSY : ZILA_EDB,
			      "cannot read table '%s': %s", im->table, sqlite3_errmsg(im->db));
}

/* "phone 9123400002" for the columns of a key a row matched on (its district left out). */
static void key_words(struct zila_csv_import *im, const struct ukey *key, char *out, size_t n)
{
	char sh[OFFICE_SHOW_MAX + 8];
	size_t len = 0;
	out[0] = '\0';
	for (size_t i = 0; i < key->ncols && len < n; i++) {
		int ci = key->cols[i];
		if (ci == im->district_col && key->ncols > 1)
			continue;
		char num[32];
		size_t tl;
		const char *t = cell_text(im, (size_t)ci, num, &tl);
		int k = snprintf(out + len, n - len, "%s%s %s", len ? ", " : "", im->cols[ci].name,
				 office_show(sh, t, tl));
		if (k < 0)
			break;
		len += (size_t)k;
	}
}

/* A row matched on a natural key such as (district, phone) that names someone else than the
 * stored row: 1 with im->reason set (a family's shared phone, or a phone given twice in one
 * file, must not turn one person into another), 0, or a negative fatal code. */
static int another_person(struct zila_csv_import *im, const struct ukey *key, const char *id,
			  uint64_t changed, struct zila_error *err)
{
	if (im->name_col < 0 || !(changed & (UINT64_C(1) << im->name_col)) ||
	    im->vals[im->name_col].null)
		return 0;
	int r = old_row(im, id, err);
	if (r <= 0)
		goto out;
	r = 0;
	const char *o = (const char *)sqlite3_column_text(im->find_old, im->name_col);
	const struct value *nv = &im->vals[im->name_col];
	if (o != NULL && !office_same_name(o, nv->p, nv->len)) {
		char kw[200], sh[OFFICE_SHOW_MAX + 8], sh2[OFFICE_SHOW_MAX + 8];
		const char *old_name = office_show(sh, o, strlen(o));
		key_words(im, key, kw, sizeof(kw));
		snprintf(im->reason, sizeof(im->reason),
			 "%s is already %s's (id %s), and this row names '%s': two people are not "
			 "merged (for a shared phone, leave this person's empty or give their own; "
			 "to rename %s, give the id)",
			 kw, old_name, id, office_show(sh2, nv->p, nv->len), old_name);
		r = 1;
	}
out:
	sqlite3_reset(im->find_old);
	return r;
}

/* Text a file lost on its way through a spreadsheet: 1 and im->reason set, 0, or a negative
 * fatal code. A changed text cell of row id whose letters became ? where the stored value
 * has them (Excel's "CSV (Comma delimited)" writes Hindi so), or (id NULL: a new row) a
 * cell of ? alone. */
static int lost_letters(struct zila_csv_import *im, const char *id, uint64_t changed,
			struct zila_error *err)
{
	char sh[OFFICE_SHOW_MAX + 8], sh2[OFFICE_SHOW_MAX + 8];
	bool have_old = false;
	int r = 0;
	for (size_t i = 0; i < im->ncols && r == 0; i++) {
		const struct value *v = &im->vals[i];
		if (im->cols[i].kind != K_TEXT || v->null || memchr(v->p, '?', v->len) == NULL)
			continue;
		if (id == NULL) {
			if (office_only_question_marks(v->p, v->len)) {
				snprintf(im->reason, sizeof(im->reason),
					 "column %s is '%s': the file lost its letters (save it "
					 "from Excel as 'CSV UTF-8', not 'CSV (Comma delimited)')",
					 im->cols[i].name, office_show(sh, v->p, v->len));
				r = 1;
			}
			continue;
		}
		if (!(changed & (UINT64_C(1) << i)))
			continue;
		if (!have_old) {
			r = old_row(im, id, err);
			have_old = true;
			if (r <= 0)
				break;
			r = 0;
		}
		const char *o = (const char *)sqlite3_column_text(im->find_old, (int)i);
		size_t on = (size_t)sqlite3_column_bytes(im->find_old, (int)i);
		if (o != NULL && office_lost_letters(o, on, v->p, v->len)) {
			snprintf(im->reason, sizeof(im->reason),
				 "column %s lost its letters: '%s' where the replica has '%s' (Excel's "
				 "'CSV (Comma delimited)' turns Hindi into ?; save the file as 'CSV "
				 "UTF-8' and import that)",
				 im->cols[i].name, office_show(sh, v->p, v->len), office_show(sh2, o, on));
			r = 1;
		}
	}
	if (have_old)
		sqlite3_reset(im->find_old);
	return r;
}

/* What a row is about to do, for the change callback: the columns in mask with their stored
 * values (id set: an update; read before the write) and their new ones. */
struct change {
	size_t n;
	const char **cols;
	char **old, **new;
	char *name;
	bool ready;
};

static void change_free(struct change *ch)
{
	for (size_t i = 0; i < ch->n; i++) {
		free(ch->old[i]);
		free(ch->new[i]);
	}
	free(ch->cols);
	free(ch->old);
	free(ch->new);
	free(ch->name);
	memset(ch, 0, sizeof(*ch));
}

static char *dup_n(const char *p, size_t n)
{
	char *d = malloc(n + 1);
	if (d != NULL) {
		memcpy(d, p, n);
		d[n] = '\0';
	}
	return d;
}

static int change_prepare(struct zila_csv_import *im, const char *id, uint64_t mask,
			  struct change *ch, struct zila_error *err)
{
	int r = 0;
	memset(ch, 0, sizeof(*ch));
	if (im->o->on_change == NULL)
		return 0;
	ch->cols = calloc(im->ncols, sizeof(*ch->cols));
	ch->old = calloc(im->ncols, sizeof(*ch->old));
	ch->new = calloc(im->ncols, sizeof(*ch->new));
	if (ch->cols == NULL || ch->old == NULL || ch->new == NULL)
		goto oom;
	bool have_old = false;
	if (id != NULL) {
		r = old_row(im, id, err);
		if (r < 0)
			goto out;
		have_old = r == 1;
		r = 0;
		if (have_old && im->name_col >= 0) {
			const char *nm = (const char *)sqlite3_column_text(im->find_old, im->name_col);
			if (nm != NULL && (ch->name = office_strdup(nm)) == NULL)
				goto oom;
		}
	}
	for (size_t i = 0; i < im->ncols; i++) {
		if (!(mask & (UINT64_C(1) << i)) || (int)i == im->id_col)
			continue;
		const struct value *v = &im->vals[i];
		size_t k = ch->n++;
		ch->cols[k] = im->cols[i].name;
		if (have_old && sqlite3_column_type(im->find_old, (int)i) != SQLITE_NULL) {
			const char *o = (const char *)sqlite3_column_text(im->find_old, (int)i);
			ch->old[k] = dup_n(o ? o : "", (size_t)sqlite3_column_bytes(im->find_old, (int)i));
			if (ch->old[k] == NULL)
				goto oom;
		}
		if (!v->null) {
			char num[32];
			size_t len;
			const char *t = cell_text(im, i, num, &len);
			if ((ch->new[k] = dup_n(t, len)) == NULL)
				goto oom;
		}
	}
	if (id == NULL && im->name_col >= 0 && !im->vals[im->name_col].null &&
	    (ch->name = dup_n(im->vals[im->name_col].p, im->vals[im->name_col].len)) == NULL)
		goto oom;
	ch->ready = true;
	goto out;
oom:
	r = zila_error_set(err, ZILA_ENOMEM, "out of memory");
out:
	sqlite3_reset(im->find_old);
	if (r != 0)
		change_free(ch);
	return r;
}

static void change_tell(struct zila_csv_import *im, struct change *ch, bool created, const char *id)
{
	if (!ch->ready)
		return;
	struct zila_csv_change c = {
		.row = im->records,
		.created = created,
		.id = id,
		.name = ch->name,
		.ncols = ch->n,
		.columns = ch->cols,
		.old_values = created ? NULL : (const char *const *)ch->old,
		.new_values = (const char *const *)ch->new,
	};
	im->o->on_change(im->o->ctx, &c);
}

static int process_row(struct zila_csv_import *im, struct zila_error *err)
{
	struct change ch = { 0 };
	int r = read_cells(im, err);
	char sh[OFFICE_SHOW_MAX + 8];
	if (r != 0)
		goto out;

	bool found = false;
	const struct ukey *by_key = NULL; /* the natural key the row matched on, if not its id */
	uint64_t changed = 0;
	char id[OFFICE_NORM_MAX] = "";
	struct value *idv = &im->vals[im->id_col];
	if (!idv->null) {
		if (idv->len == 0 || idv->len >= OFFICE_NORM_MAX)
			REJECT("malformed id '%s'", office_show(sh, idv->p, idv->len));
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
			if (found)
				by_key = key;
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
			REJECT("id %s belongs to another district; a row cannot move between "
			       "districts",
			       id);
		r = lost_letters(im, id, changed, err);
		if (r != 0)
			goto out;
		if (by_key != NULL) {
			r = another_person(im, by_key, id, changed, err);
			if (r != 0)
				goto out;
		}
		for (size_t i = 0; i < im->ncols; i++)
			if ((changed & (UINT64_C(1) << i)) && im->vals[i].null &&
			    im->cols[i].notnull)
				REJECT("missing required column '%s'", im->cols[i].name);
		r = get_stmt(im, OP_UPDATE, changed, &st, err);
		if (r != 0)
			goto out;
		r = change_prepare(im, id, changed, &ch, err);
		if (r != 0)
			goto out;
		int n = 0;
		for (size_t i = 0; i < im->ncols; i++)
			if (changed & (UINT64_C(1) << i))
				bind_value(st, ++n, &im->cols[i], &im->vals[i]);
		sqlite3_bind_text(st, n + 1, id, -1, SQLITE_STATIC);
		r = run_write(im, st, err);
		if (r == 0) {
			im->st.nupdated++;
			change_tell(im, &ch, false, id);
		}
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
		r = lost_letters(im, NULL, 0, err);
		if (r != 0)
			goto out;
		if (idv->null) {
			uint8_t raw[16];
			randombytes_buf(raw, sizeof(raw));
			sodium_bin2hex(id, OFFICE_NORM_MAX, raw, sizeof(raw));
		} else {
			memcpy(id, idv->p, idv->len);
			id[idv->len] = '\0';
		}
		mask |= UINT64_C(1) << im->id_col;
		r = get_stmt(im, OP_INSERT, mask, &st, err);
		if (r != 0)
			goto out;
		r = change_prepare(im, NULL, mask, &ch, err);
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
		if (r == 0) {
			im->st.ncreated++;
			change_tell(im, &ch, true, id);
		}
	}
out:
	change_free(&ch);
	return r;
}

#undef REJECT

static int process_header(struct zila_csv_import *im, struct zila_error *err)
{
	int r = ZILA_ENOMEM;
	size_t n = im->nfields;
	const char **names = NULL;
	bool *isfk = NULL;
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
	names = calloc(im->ncols + 1, sizeof(*names));
	isfk = calloc(im->ncols + 1, sizeof(*isfk));
	if (names == NULL || isfk == NULL) {
		r = zila_error_set(err, ZILA_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < im->ncols; i++) {
		names[i] = im->cols[i].name;
		isfk[i] = im->cols[i].fk_table != NULL;
	}
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
		if (!zila_utf8_valid((const uint8_t *)h, im->header_lens[f])) {
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
			if (im->o->map[m].header != NULL && office_ieq(im->o->map[m].header, h)) {
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
			ci = office_header_guess(h, (const char *const *)names, isfk, im->ncols);
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
	free(names);
	free(isfk);
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

static void reject_row(struct zila_csv_import *im, uint64_t line, uint64_t row)
{
	im->st.nrejected++;
	if (im->o->on_reject == NULL)
		return;
	struct zila_csv_reject rj = {
		.line = line,
		.row = row,
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
	uint64_t line = im->line, row = ++im->records;
	im->line += 1 + im->rec_breaks;
	im->st.nlines = im->line - 1;
	if (im->fatal != 0)
		goto done;

	bool blank = true;
	for (size_t i = 0; i < im->nfields; i++) {
		im->fptr[i] = im->fnull[i] ? NULL : im->arena + im->off[i];
		/* the ' export put before what a spreadsheet would run as a formula */
		if (!im->fnull[i] && im->flen[i] > 1 && im->fptr[i][0] == '\'' &&
		    office_formula_like(im->fptr[i] + 1, im->flen[i] - 1)) {
			im->fptr[i]++;
			im->flen[i]--;
		}
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
		reject_row(im, line, row);
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
	im->name_col = -1;
	im->line = 1;
	im->table = office_strdup(opts->table);
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
	const char *begin = im->savepoint ? "SAVEPOINT office_import" : "BEGIN IMMEDIATE";
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
		sql = commit ? "RELEASE office_import"
			     : "ROLLBACK TO office_import; RELEASE office_import";
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
		kcache_free(&im->cols[i].fk_codes);
		sqlite3_finalize(im->cols[i].fk_check);
		sqlite3_finalize(im->cols[i].fk_by_code);
	}
	free(im->cols);
	for (size_t k = 0; k < KEYS_MAX; k++)
		sqlite3_finalize(im->keys[k].find);
	for (size_t i = 0; i < SLOTS; i++)
		sqlite3_finalize(im->slots[i].st);
	sqlite3_finalize(im->find_id);
	sqlite3_finalize(im->find_old);
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
		r = zila_error_set(err, ZILA_EIO, "cannot read '%s': %s", path, office_errno_msg(errno, ebuf));
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
		r = zila_error_set(err, ZILA_EIO, "cannot read '%s': %s", path, office_errno_msg(errno, ebuf));
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
