/* Tracked tables: refusing tables that cannot converge, installing capture triggers, and
 * the per-table statements the merge uses. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store_int.h"
#include "zila/log.h"

/* Appends "name" with embedded quotes doubled. */
static int put_qid(struct zila_buf *b, const char *name)
{
	int r = zila_buf_put_u8(b, '"');
	for (const char *p = name; r == 0 && *p; p++) {
		if (*p == '"')
			r = zila_buf_put_u8(b, '"');
		if (r == 0)
			r = zila_buf_put_u8(b, (uint8_t)*p);
	}
	if (r == 0)
		r = zila_buf_put_u8(b, '"');
	return r;
}

static int put_str(struct zila_buf *b, const char *s)
{
	return zila_buf_put(b, s, strlen(s));
}

/* Appends printf output. */
static int put_fmt(struct zila_buf *b, const char *fmt, ...) ZILA_PRINTF(2, 3);
static int put_fmt(struct zila_buf *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return ZILA_ETOOBIG;
	return zila_buf_put(b, tmp, (size_t)n);
}

static const char *cstr(struct zila_buf *b)
{
	if (zila_buf_put_u8(b, 0) != 0)
		return NULL;
	b->len--;
	return (const char *)b->p;
}

static int prep(struct zila_store *s, struct zila_buf *sql, sqlite3_stmt **out)
{
	const char *q = cstr(sql);
	*out = NULL;
	if (q == NULL)
		return ZILA_ENOMEM;
	if (sqlite3_prepare_v3(s->db, q, -1, SQLITE_PREPARE_PERSISTENT, out, NULL) != SQLITE_OK)
		return ZILA_EDB;
	return 0;
}

static void table_free(struct table *t)
{
	if (t == NULL)
		return;
	for (int i = 0; i < t->ncols; i++)
		free(t->cols[i]);
	free(t->cols);
	for (int i = 0; i < t->nuniq; i++) {
		free(t->uniq_cols[i]);
		sqlite3_finalize(t->uniq_find[i]);
	}
	free(t->uniq_cols);
	free(t->uniq_find);
	for (int i = 0; i < t->nfk; i++) {
		free(t->fks[i].parent_col);
		sqlite3_finalize(t->fks[i].parent_has);
	}
	free(t->fks);
	for (int i = 0; i < t->nchild; i++)
		sqlite3_finalize(t->children[i].find);
	free(t->children);
	sqlite3_finalize(t->sel);
	sqlite3_finalize(t->key_rows);
	sqlite3_finalize(t->sel_rowid);
	sqlite3_finalize(t->hw_fix);
	sqlite3_finalize(t->sel_down);
	sqlite3_finalize(t->count_new);
	sqlite3_finalize(t->count_all);
	sqlite3_finalize(t->ins);
	sqlite3_finalize(t->upd);
	for (int i = 0; i < UPD_BY_MAX; i++)
		sqlite3_finalize(t->upd_by[i].st);
	sqlite3_finalize(t->del);
	for (int i = 0; t->dflt != NULL && i < t->ncols; i++)
		sqlite3_value_free(t->dflt[i]);
	free(t->dflt);
	free(t->aff);
	free(t->name);
	free(t);
}

void store_free_tables(struct zila_store *s)
{
	for (int i = 0; i < s->ntables; i++)
		table_free(s->tables[i]);
	free(s->tables);
	s->tables = NULL;
	s->ntables = 0;
}

struct table *store_table_by_name(struct zila_store *s, const char *name, size_t len)
{
	for (int i = 0; i < s->ntables; i++)
		if (strlen(s->tables[i]->name) == len && memcmp(s->tables[i]->name, name, len) == 0)
			return s->tables[i];
	return NULL;
}

struct table *store_table_by_id(struct zila_store *s, int64_t id)
{
	for (int i = 0; i < s->ntables; i++)
		if (s->tables[i]->id == id)
			return s->tables[i];
	return NULL;
}

static int col_index(const struct table *t, const char *name)
{
	for (int i = 0; i < t->ncols; i++)
		if (strcasecmp(t->cols[i], name) == 0)
			return i;
	return -1;
}

/* Columns and primary key of a table from pragma_table_xinfo. */
struct colinfo {
	int ncols, npk, pk, hidden;
	char **cols;
	char pktype[64];
};

static void colinfo_release(struct colinfo *ci)
{
	for (int i = 0; i < ci->ncols; i++)
		free(ci->cols[i]);
	free(ci->cols);
	memset(ci, 0, sizeof(*ci));
}

static int read_columns(struct zila_store *s, const char *table, struct colinfo *ci)
{
	sqlite3_stmt *st = NULL;
	int r = ZILA_EDB;
	memset(ci, 0, sizeof(*ci));
	ci->pk = -1;
	if (sqlite3_prepare_v2(s->db, "SELECT name, type, pk, hidden FROM pragma_table_xinfo(?) ORDER BY cid",
			       -1, &st, NULL))
		goto out;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (sqlite3_column_int(st, 3) != 0) {
			ci->hidden++;
			continue;
		}
		char **c = realloc(ci->cols, (size_t)(ci->ncols + 1) * sizeof(*c));
		if (c == NULL) {
			r = ZILA_ENOMEM;
			goto out;
		}
		ci->cols = c;
		c[ci->ncols] = strdup((const char *)sqlite3_column_text(st, 0));
		if (c[ci->ncols] == NULL) {
			r = ZILA_ENOMEM;
			goto out;
		}
		if (sqlite3_column_int(st, 2) > 0) {
			ci->npk++;
			ci->pk = ci->ncols;
			snprintf(ci->pktype, sizeof(ci->pktype), "%s",
				 (const char *)sqlite3_column_text(st, 1));
		}
		ci->ncols++;
	}
	r = 0;
out:
	sqlite3_finalize(st);
	return r;
}

static bool is_without_rowid(struct zila_store *s, const char *table)
{
	sqlite3_stmt *st = NULL;
	bool wr = false;
	/* A WITHOUT ROWID table has no rowid column to select. */
	struct zila_buf q;
	zila_buf_init(&q, 4096);
	if (put_str(&q, "SELECT rowid FROM ") == 0 && put_qid(&q, table) == 0 && cstr(&q) != NULL)
		wr = sqlite3_prepare_v2(s->db, (const char *)q.p, -1, &st, NULL) != SQLITE_OK;
	sqlite3_finalize(st);
	zila_buf_release(&q);
	return wr;
}

static int load_unique(struct zila_store *s, struct table *t)
{
	sqlite3_stmt *st = NULL, *ic = NULL;
	struct zila_buf q;
	int r = ZILA_EDB;
	zila_buf_init(&q, 1 << 16);
	if (sqlite3_prepare_v2(s->db, "SELECT name FROM pragma_index_list(?) WHERE \"unique\" = 1 AND origin != 'pk'",
			       -1, &st, NULL) ||
	    sqlite3_prepare_v2(s->db, "SELECT name FROM pragma_index_info(?) ORDER BY seqno", -1, &ic, NULL))
		goto out;
	sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		int *cols = NULL, n = 0;
		bool ok = true;
		sqlite3_reset(ic);
		sqlite3_bind_text(ic, 1, (const char *)sqlite3_column_text(st, 0), -1, SQLITE_TRANSIENT);
		while (sqlite3_step(ic) == SQLITE_ROW) {
			const char *cn = (const char *)sqlite3_column_text(ic, 0);
			int ci = cn ? col_index(t, cn) : -1;
			/* REPLACE on this index may remove other rows (seal.c, seal_gone) */
			t->uniq_mask |= ci < 0 ? -1 : (int64_t)1 << (ci < MASK_BITS ? ci : MASK_BITS);
			int *nc = realloc(cols, (size_t)(n + 2) * sizeof(*nc));
			if (nc == NULL) {
				free(cols);
				r = ZILA_ENOMEM;
				goto out;
			}
			cols = nc;
			if (ci < 0)
				ok = false; /* an expression index: not checked by the merge */
			cols[n++] = ci;
		}
		if (!ok || n == 0) {
			free(cols);
			continue;
		}
		cols[n] = -1;
		int **nu = realloc(t->uniq_cols, (size_t)(t->nuniq + 1) * sizeof(*nu));
		sqlite3_stmt **nf = realloc(t->uniq_find, (size_t)(t->nuniq + 1) * sizeof(*nf));
		if (nu != NULL)
			t->uniq_cols = nu;
		if (nf != NULL)
			t->uniq_find = nf;
		if (nu == NULL || nf == NULL) {
			free(cols);
			r = ZILA_ENOMEM;
			goto out;
		}
		zila_buf_reset(&q);
		int rr = put_str(&q, "SELECT ");
		rr = rr ? rr : put_qid(&q, t->cols[t->pk]);
		rr = rr ? rr : put_str(&q, " FROM ");
		rr = rr ? rr : put_qid(&q, t->name);
		for (int i = 0; rr == 0 && i < n; i++) {
			rr = put_str(&q, i ? " AND " : " WHERE ");
			rr = rr ? rr : put_qid(&q, t->cols[cols[i]]);
			rr = rr ? rr : put_fmt(&q, " = ?%d", i + 1);
		}
		t->uniq_cols[t->nuniq] = cols;
		t->uniq_find[t->nuniq] = NULL;
		t->nuniq++;
		if (rr != 0 || (rr = prep(s, &q, &t->uniq_find[t->nuniq - 1])) != 0) {
			r = rr;
			goto out;
		}
	}
	r = 0;
out:
	sqlite3_finalize(st);
	sqlite3_finalize(ic);
	zila_buf_release(&q);
	return r;
}

static int put_select(struct zila_buf *q, const struct table *t, bool with_rowid)
{
	int r = put_str(q, "SELECT ");
	for (int i = 0; r == 0 && i < t->ncols; i++) {
		r = i ? put_str(q, ", ") : 0;
		r = r ? r : put_qid(q, t->cols[i]);
	}
	r = r ? r : put_str(q, with_rowid ? ", rowid FROM " : " FROM ");
	return r ? r : put_qid(q, t->name);
}

int store_sql_select_all(struct zila_buf *q, const struct table *t)
{
	return put_select(q, t, false);
}

static int table_statements(struct zila_store *s, struct table *t)
{
	struct zila_buf q;
	int r;
	zila_buf_init(&q, 1 << 20);
	/* SELECT all [, rowid] FROM t WHERE pk = ? (the rowid says where the row's state is),
	 * and SELECT all, rowid FROM t from a rowid on */
	r = put_select(&q, t, t->has_rowid);
	r = r ? r : put_str(&q, " WHERE ");
	r = r ? r : put_qid(&q, t->cols[t->pk]);
	r = r ? r : put_str(&q, " = ?");
	r = r ? r : prep(s, &q, &t->sel);
	if (r == 0 && t->has_rowid) {
		zila_buf_reset(&q);
		r = put_select(&q, t, true);
		r = r ? r : put_str(&q, " WHERE rowid >= ? ORDER BY rowid");
		r = r ? r : prep(s, &q, &t->sel_rowid);
		/* the high-water rowid follows the table's highest: up to it when every row is
		 * sealed (?1), else only down (rows gone); written only when it changes */
		zila_buf_reset(&q);
		/* scalar subqueries, each a seek to the last rowid: UPDATE ... FROM (SELECT ...)
		 * built two ephemeral tables (a pager and its page cache) per table per commit */
		r = r ? r : put_str(&q, "UPDATE zila_tables SET hw = (SELECT coalesce(max(rowid), 0) FROM ");
		r = r ? r : put_qid(&q, t->name);
		r = r ? r : put_fmt(&q, ") WHERE id = %lld AND hw IS NOT (SELECT coalesce(max(rowid), 0) FROM ", (long long)t->id);
		r = r ? r : put_qid(&q, t->name);
		r = r ? r : put_str(&q, ") AND (?1 OR hw > (SELECT coalesce(max(rowid), 0) FROM ");
		r = r ? r : put_qid(&q, t->name);
		r = r ? r : put_str(&q, "))");
		r = r ? r : prep(s, &q, &t->hw_fix);
		zila_buf_reset(&q);
		r = r ? r : put_str(&q, "SELECT ");
		r = r ? r : put_qid(&q, t->cols[t->pk]);
		r = r ? r : put_str(&q, ", rowid FROM ");
		r = r ? r : put_qid(&q, t->name);
		r = r ? r : put_str(&q, " WHERE rowid <= ? ORDER BY rowid DESC");
		r = r ? r : prep(s, &q, &t->sel_down);
		zila_buf_reset(&q);
		r = r ? r : put_str(&q, "SELECT count(*) FROM ");
		r = r ? r : put_qid(&q, t->name);
		r = r ? r : put_str(&q, " WHERE rowid > ?");
		r = r ? r : prep(s, &q, &t->count_new);
		zila_buf_reset(&q);
		r = r ? r : put_str(&q, "SELECT count(*) FROM ");
		r = r ? r : put_qid(&q, t->name);
		r = r ? r : prep(s, &q, &t->count_all);
	}
	/* INSERT INTO t (all) VALUES (?1..?n) */
	zila_buf_reset(&q);
	r = r ? r : put_str(&q, "INSERT INTO ");
	r = r ? r : put_qid(&q, t->name);
	r = r ? r : put_str(&q, " (");
	for (int i = 0; r == 0 && i < t->ncols; i++) {
		r = i ? put_str(&q, ", ") : 0;
		r = r ? r : put_qid(&q, t->cols[i]);
	}
	r = r ? r : put_str(&q, ") VALUES (");
	for (int i = 0; r == 0 && i < t->ncols; i++)
		r = put_fmt(&q, "%s?%d", i ? ", " : "", i + 1);
	r = r ? r : put_str(&q, ")");
	r = r ? r : prep(s, &q, &t->ins);
	/* UPDATE t SET c = ?i WHERE pk = ?pk */
	zila_buf_reset(&q);
	r = r ? r : put_str(&q, "UPDATE ");
	r = r ? r : put_qid(&q, t->name);
	r = r ? r : put_str(&q, " SET ");
	bool first = true;
	for (int i = 0; r == 0 && i < t->ncols; i++) {
		if (i == t->pk)
			continue;
		r = first ? 0 : put_str(&q, ", ");
		first = false;
		r = r ? r : put_qid(&q, t->cols[i]);
		r = r ? r : put_fmt(&q, " = ?%d", i + 1);
	}
	if (first) /* a table with only a key column */
		r = r ? r : put_qid(&q, t->cols[t->pk]), r = r ? r : put_fmt(&q, " = ?%d", t->pk + 1);
	r = r ? r : put_str(&q, " WHERE ");
	r = r ? r : put_qid(&q, t->cols[t->pk]);
	r = r ? r : put_fmt(&q, " = ?%d", t->pk + 1);
	r = r ? r : prep(s, &q, &t->upd);
	/* DELETE */
	zila_buf_reset(&q);
	r = r ? r : put_str(&q, "DELETE FROM ");
	r = r ? r : put_qid(&q, t->name);
	r = r ? r : put_str(&q, " WHERE ");
	r = r ? r : put_qid(&q, t->cols[t->pk]);
	r = r ? r : put_str(&q, " = ?");
	r = r ? r : prep(s, &q, &t->del);
	zila_buf_release(&q);
	return r;
}

sqlite3_stmt *store_table_upd(struct zila_store *s, struct table *t, uint64_t mask)
{
	for (int i = 0; i < UPD_BY_MAX; i++)
		if (t->upd_by[i].st != NULL && t->upd_by[i].mask == mask)
			return t->upd_by[i].st;
	/* UPDATE t SET c = ?i, ... WHERE rowid = ?n+1 AND pk = ?pk: the rowid finds the row
	 * without the key's index; the key says it is still this one */
	struct zila_buf q;
	sqlite3_stmt *st = NULL;
	zila_buf_init(&q, 1 << 16);
	int r = put_str(&q, "UPDATE ");
	r = r ? r : put_qid(&q, t->name);
	r = r ? r : put_str(&q, " SET ");
	bool first = true;
	for (int i = 0; r == 0 && i < t->ncols && i < 63; i++) {
		if (i == t->pk || !(mask & DIRTY_BIT(i)))
			continue;
		r = first ? 0 : put_str(&q, ", ");
		first = false;
		r = r ? r : put_qid(&q, t->cols[i]);
		r = r ? r : put_fmt(&q, " = ?%d", i + 1);
	}
	r = r ? r : first ? ZILA_EINVAL : 0;
	r = r ? r : put_fmt(&q, " WHERE rowid = ?%d AND ", t->ncols + 1);
	r = r ? r : put_qid(&q, t->cols[t->pk]);
	r = r ? r : put_fmt(&q, " = ?%d", t->pk + 1);
	r = r ? r : prep(s, &q, &st);
	zila_buf_release(&q);
	if (r != 0) {
		sqlite3_finalize(st);
		return NULL;
	}
	unsigned k = t->upd_by_next++ % UPD_BY_MAX;
	sqlite3_finalize(t->upd_by[k].st);
	t->upd_by[k].mask = mask;
	t->upd_by[k].st = st;
	return st;
}

/* Single-column foreign keys between tracked tables; others are left to SQLite. */
static int load_fkeys(struct zila_store *s)
{
	sqlite3_stmt *st = NULL;
	struct zila_buf q;
	int r = ZILA_EDB;
	zila_buf_init(&q, 1 << 16);
	if (sqlite3_prepare_v2(s->db,
			       "SELECT id, \"table\", \"from\", \"to\", (SELECT count(*) FROM pragma_foreign_key_list(?1) b"
			       " WHERE b.id = a.id) FROM pragma_foreign_key_list(?1) a",
			       -1, &st, NULL))
		goto out;
	for (int ti = 0; ti < s->ntables; ti++) {
		struct table *t = s->tables[ti];
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
		while (sqlite3_step(st) == SQLITE_ROW) {
			if (sqlite3_column_int(st, 4) != 1)
				continue;
			const char *ptab = (const char *)sqlite3_column_text(st, 1);
			const char *from = (const char *)sqlite3_column_text(st, 2);
			const char *to = (const char *)sqlite3_column_text(st, 3);
			struct table *p = ptab ? store_table_by_name(s, ptab, strlen(ptab)) : NULL;
			int col = from ? col_index(t, from) : -1;
			if (p == NULL || col < 0)
				continue;
			const char *pcolname = to ? to : p->cols[p->pk];
			if (col_index(p, pcolname) < 0)
				continue;
			struct fkey *nf = realloc(t->fks, (size_t)(t->nfk + 1) * sizeof(*nf));
			struct child *nc = realloc(p->children, (size_t)(p->nchild + 1) * sizeof(*nc));
			if (nf != NULL)
				t->fks = nf;
			if (nc != NULL)
				p->children = nc;
			if (nf == NULL || nc == NULL) {
				r = ZILA_ENOMEM;
				goto out;
			}
			struct fkey *fk = &t->fks[t->nfk++];
			memset(fk, 0, sizeof(*fk));
			fk->col = col;
			fk->parent = p;
			fk->parent_col = strdup(pcolname);
			fk->parent_idx = col_index(p, pcolname);
			zila_buf_reset(&q);
			int rr = put_str(&q, "SELECT 1 FROM ");
			rr = rr ? rr : put_qid(&q, p->name);
			rr = rr ? rr : put_str(&q, " WHERE ");
			rr = rr ? rr : put_qid(&q, pcolname);
			rr = rr ? rr : put_str(&q, " = ? LIMIT 1");
			rr = rr ? rr : prep(s, &q, &fk->parent_has);
			p->children[p->nchild].child = t;
			p->children[p->nchild].fk = t->nfk - 1;
			p->children[p->nchild].find = NULL;
			p->nchild++;
			zila_buf_reset(&q);
			rr = rr ? rr : put_str(&q, "SELECT ");
			rr = rr ? rr : put_qid(&q, t->cols[t->pk]);
			rr = rr ? rr : put_str(&q, " FROM ");
			rr = rr ? rr : put_qid(&q, t->name);
			rr = rr ? rr : put_str(&q, " WHERE ");
			rr = rr ? rr : put_qid(&q, t->cols[col]);
			rr = rr ? rr : put_str(&q, " = ?");
			rr = rr ? rr : prep(s, &q, &p->children[p->nchild - 1].find);
			if (rr != 0) {
				r = rr;
				goto out;
			}
		}
	}
	r = 0;
out:
	sqlite3_finalize(st);
	zila_buf_release(&q);
	return r;
}

/* A declared type's affinity, by SQLite's rules (section 3.1 of its datatype page): 'I'
 * INTEGER, 'T' TEXT, 'B' BLOB, 'R' REAL, 'N' NUMERIC. */
static char decl_affinity(const char *decl)
{
	char up[64];
	size_t i;
	for (i = 0; decl != NULL && decl[i] != '\0' && i + 1 < sizeof(up); i++)
		up[i] = (char)toupper((unsigned char)decl[i]);
	up[i] = '\0';
	if (strstr(up, "INT") != NULL)
		return 'I';
	if (strstr(up, "CHAR") != NULL || strstr(up, "CLOB") != NULL || strstr(up, "TEXT") != NULL)
		return 'T';
	if (up[0] == '\0' || strstr(up, "BLOB") != NULL)
		return 'B';
	if (strstr(up, "REAL") != NULL || strstr(up, "FLOA") != NULL || strstr(up, "DOUB") != NULL)
		return 'R';
	return 'N';
}

/* The columns' affinities (struct table, aff), the key column's as key_canon compares it,
 * and its collation: a key must be found as the table would find it. */
static int load_key_rule(struct zila_store *s, struct table *t)
{
	const char *decl = NULL, *coll = NULL;
	free(t->aff);
	if ((t->aff = calloc((size_t)t->ncols + 1, 1)) == NULL)
		return ZILA_ENOMEM;
	for (int c = 0; c < t->ncols; c++) {
		if (sqlite3_table_column_metadata(s->db, "main", t->name, t->cols[c], &decl, &coll, NULL, NULL, NULL) !=
		    SQLITE_OK)
			return ZILA_EDB;
		t->aff[c] = decl_affinity(decl);
	}
	if (sqlite3_table_column_metadata(s->db, "main", t->name, t->cols[t->pk], &decl, &coll, NULL, NULL, NULL) !=
	    SQLITE_OK)
		return ZILA_EDB;
	char a = t->aff[t->pk];
	t->pk_aff = a == 'T' || a == 'B' ? a : 'N';
	if (coll == NULL || strcasecmp(coll, "BINARY") == 0)
		return 0;
	struct zila_buf q;
	zila_buf_init(&q, 4096);
	int r = put_fmt(&q, "SELECT pk FROM zila_rows WHERE tid = %lld AND pk = ?1 COLLATE ", (long long)t->id);
	r = r ? r : put_qid(&q, coll);
	r = r ? r : put_str(&q, " ORDER BY pk LIMIT 1");
	r = r ? r : prep(s, &q, &t->key_rows);
	zila_buf_release(&q);
	return r;
}

/* Keeps of ci the columns named in list (one per line) and the key, in table order. */
static void synced_only(struct colinfo *ci, const char *list)
{
	int n = 0, pk = -1;
	for (int i = 0; i < ci->ncols; i++) {
		bool keep = i == ci->pk;
		size_t len = strlen(ci->cols[i]);
		for (const char *p = list; !keep && *p != '\0';) {
			const char *e = strchr(p, '\n');
			size_t l = e ? (size_t)(e - p) : strlen(p);
			keep = l == len && strncasecmp(p, ci->cols[i], l) == 0;
			p += l + (e != NULL);
		}
		if (!keep) {
			free(ci->cols[i]);
			continue;
		}
		if (i == ci->pk)
			pk = n;
		ci->cols[n++] = ci->cols[i];
	}
	ci->ncols = n;
	ci->pk = pk;
}

/* The columns as zila_tables.cols keeps them: one per line. */
static int cols_text(struct zila_buf *b, char *const *cols, int ncols)
{
	int r = 0;
	for (int i = 0; r == 0 && i < ncols; i++) {
		r = i ? zila_buf_put_u8(b, '\n') : 0;
		r = r ? r : put_str(b, cols[i]);
	}
	return r ? r : (cstr(b) ? 0 : ZILA_ENOMEM);
}

/* Records text (cols_text) as the synced columns of table id. */
static int cols_save(struct zila_store *s, int64_t id, const struct zila_buf *text)
{
	sqlite3_stmt *st = store_stmt(s, "UPDATE zila_tables SET cols = ? WHERE id = ?");
	if (st == NULL)
		return ZILA_EDB;
	sqlite3_bind_text(st, 1, (const char *)text->p, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, id);
	int r = sqlite3_step(st) == SQLITE_DONE ? 0 : ZILA_EDB;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

int store_cols_add(struct zila_store *s, const char *table, const char *col)
{
	struct table *t = store_table_by_name(s, table, strlen(table));
	for (int i = 0; t == NULL && i < s->ntables; i++)
		if (strcasecmp(s->tables[i]->name, table) == 0)
			t = s->tables[i];
	if (t == NULL)
		return ZILA_ENOTFOUND;
	struct zila_buf b;
	zila_buf_init(&b, 1 << 20);
	int r = cols_text(&b, t->cols, t->ncols);
	r = r ? r : zila_buf_put_u8(&b, '\n');
	r = r ? r : put_str(&b, col);
	if (r == 0 && cstr(&b) == NULL)
		r = ZILA_ENOMEM;
	r = r ? r : cols_save(s, t->id, &b);
	zila_buf_release(&b);
	return r;
}

int store_cols_drop(struct zila_store *s, const char *table, const char *col)
{
	struct table *t = NULL;
	for (int i = 0; t == NULL && i < s->ntables; i++)
		if (strcasecmp(s->tables[i]->name, table) == 0)
			t = s->tables[i];
	if (t == NULL)
		return ZILA_ENOTFOUND;
	struct zila_buf b;
	zila_buf_init(&b, 1 << 20);
	int r = 0;
	bool first = true;
	for (int i = 0; r == 0 && i < t->ncols; i++) {
		if (strcasecmp(t->cols[i], col) == 0)
			continue;
		r = first ? 0 : zila_buf_put_u8(&b, '\n');
		r = r ? r : put_str(&b, t->cols[i]);
		first = false;
	}
	if (r == 0 && cstr(&b) == NULL)
		r = ZILA_ENOMEM;
	r = r ? r : cols_save(s, t->id, &b);
	zila_buf_release(&b);
	return r;
}

int store_untrack_locked(struct zila_store *s, const char *table)
{
	sqlite3_stmt *st = NULL;
	int64_t id = -1;
	if (sqlite3_prepare_v2(s->db, "SELECT id FROM zila_tables WHERE name = ? COLLATE NOCASE", -1, &st, NULL) != SQLITE_OK)
		return ZILA_EDB;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (id < 0)
		return 0;
	static const char *const del[] = { "DELETE FROM zila_tables WHERE id = ?", "DELETE FROM zila_rows WHERE tid = ?",
					   "DELETE FROM zila_live WHERE tid = ?", "DELETE FROM zila_parked WHERE tid = ?",
					   "DELETE FROM zila_pending WHERE tid = ?" };
	for (size_t i = 0; i < sizeof(del) / sizeof(del[0]); i++) {
		if (sqlite3_prepare_v2(s->db, del[i], -1, &st, NULL) != SQLITE_OK)
			return ZILA_EDB;
		sqlite3_bind_int64(st, 1, id);
		int rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return ZILA_EDB;
	}
	return 0;
}

int store_migrate_cols(struct zila_store *s, struct zila_error *err)
{
	int r = 0;
	struct zila_buf b;
	zila_buf_init(&b, 1 << 20);
	for (int i = 0; r == 0 && i < s->ntables; i++) {
		struct table *t = s->tables[i];
		zila_buf_reset(&b);
		r = cols_text(&b, t->cols, t->ncols);
		r = r ? r : cols_save(s, t->id, &b);
	}
	zila_buf_release(&b);
	return r ? store_db_error(s, err, "cannot record the synced columns") : 0;
}

/* Each column's constant DEFAULT, evaluated once (struct table). */
static int load_defaults(struct zila_store *s, struct table *t)
{
	sqlite3_stmt *st = NULL, *ev = NULL;
	int r = ZILA_EDB;
	if (sqlite3_prepare_v2(s->db, "SELECT name, dflt_value FROM pragma_table_info(?) WHERE dflt_value IS NOT NULL", -1,
			       &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
	r = 0;
	while (r == 0 && sqlite3_step(st) == SQLITE_ROW) {
		int c = col_index(t, (const char *)sqlite3_column_text(st, 0));
		const char *d = (const char *)sqlite3_column_text(st, 1);
		/* a constant only: an expression or the time would differ between replicas */
		if (c < 0 || c == t->pk || d == NULL || d[0] == '(' || strncasecmp(d, "CURRENT_", 8) == 0)
			continue;
		char *q = sqlite3_mprintf("SELECT %s", d);
		if (q == NULL || sqlite3_prepare_v2(s->db, q, -1, &ev, NULL) != SQLITE_OK || sqlite3_step(ev) != SQLITE_ROW) {
			sqlite3_free(q);
			sqlite3_finalize(ev);
			ev = NULL;
			continue;
		}
		sqlite3_free(q);
		if (t->dflt == NULL && (t->dflt = calloc((size_t)t->ncols, sizeof(*t->dflt))) == NULL)
			r = ZILA_ENOMEM;
		else if ((t->dflt[c] = sqlite3_value_dup(sqlite3_column_value(ev, 0))) == NULL)
			r = ZILA_ENOMEM;
		sqlite3_finalize(ev);
		ev = NULL;
	}
out:
	sqlite3_finalize(st);
	return r;
}

int store_load_tables(struct zila_store *s, struct zila_error *err)
{
	sqlite3_stmt *st = NULL;
	int r = ZILA_EDB;
	store_free_tables(s);
	if (sqlite3_prepare_v2(s->db, "SELECT id, name, pcol, cols FROM zila_tables ORDER BY name", -1, &st, NULL))
		goto out;
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct table *t = calloc(1, sizeof(*t));
		struct table **nt = realloc(s->tables, (size_t)(s->ntables + 1) * sizeof(*nt));
		if (nt != NULL)
			s->tables = nt;
		if (t == NULL || nt == NULL) {
			free(t);
			r = ZILA_ENOMEM;
			goto out;
		}
		s->tables[s->ntables++] = t;
		t->id = sqlite3_column_int64(st, 0);
		t->name = strdup((const char *)sqlite3_column_text(st, 1));
		struct colinfo ci;
		if (t->name == NULL || read_columns(s, t->name, &ci) != 0) {
			r = ZILA_ENOMEM;
			goto out;
		}
		/* only the synced columns (zila_tables.cols; NULL: all): a column added here and
		 * not by HQ stays local, in the table and out of every entry */
		if (sqlite3_column_type(st, 3) != SQLITE_NULL)
			synced_only(&ci, (const char *)sqlite3_column_text(st, 3));
		t->ncols = ci.ncols;
		t->cols = ci.cols;
		t->pk = ci.pk;
		t->pcol = -1;
		if (t->ncols == 0 || t->pk < 0) {
			r = zila_error_set(err, ZILA_ESCHEMA,
					   "tracked table '%s' %s: zila cannot sync it, and nothing was changed. Another program "
					   "rebuilt it (as database tools do to change a table's structure); make its key again "
					   "(its id column TEXT PRIMARY KEY), or restore the replica from a backup",
					   t->name, t->ncols == 0 ? "is gone" : "lost its primary key");
			goto out;
		}
		if (sqlite3_column_type(st, 2) != SQLITE_NULL) {
			t->pcol = col_index(t, (const char *)sqlite3_column_text(st, 2));
			if (t->pcol < 0) {
				r = zila_error_set(err, ZILA_ESCHEMA,
						   "tracked table '%s' lost its partition column: zila cannot sync it, and "
						   "nothing was changed. Another program rebuilt it without the column; add it "
						   "back, or restore the replica from a backup",
						   t->name);
				goto out;
			}
		}
		t->has_rowid = !is_without_rowid(s, t->name);
		if ((r = table_statements(s, t)) != 0 || (r = load_unique(s, t)) != 0 || (r = load_key_rule(s, t)) != 0 ||
		    (r = load_defaults(s, t)) != 0) {
			r = store_db_error(s, err, t->name);
			goto out;
		}
	}
	if ((r = load_fkeys(s)) != 0)
		r = store_db_error(s, err, "foreign keys");
out:
	sqlite3_finalize(st);
	/* a cache read in part would let the seal meet captures of tables it does not know */
	s->tables_stale = r != 0;
	return r;
}

static int refuse(struct zila_error *err, const char *fmt, ...) ZILA_PRINTF(2, 3);
static int refuse(struct zila_error *err, const char *fmt, ...)
{
	if (err != NULL) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
		err->code = ZILA_EUNTRACKABLE;
	}
	return ZILA_EUNTRACKABLE;
}

static int check_trackable(struct zila_store *s, const char *table, const char *pcol,
			   struct colinfo *ci, struct zila_error *err)
{
	if (strncmp(table, "zila_", 5) == 0 || strncmp(table, "sqlite_", 7) == 0)
		return refuse(err, "cannot track '%s': tables named zila_* and sqlite_* belong to zila and SQLite", table);
	sqlite3_stmt *st = NULL;
	int type_ok = 0;
	if (sqlite3_prepare_v2(s->db, "SELECT type FROM sqlite_schema WHERE name = ?", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			type_ok = strcmp((const char *)sqlite3_column_text(st, 0), "table") == 0 ? 1 : 2;
	}
	sqlite3_finalize(st);
	if (type_ok == 0)
		return zila_error_set(err, ZILA_ENOTFOUND, "no table '%s' in the replica", table);
	if (type_ok == 2)
		return refuse(err, "cannot track '%s': it is not a table (views and virtual tables hold no rows of their own)", table);
	int r = read_columns(s, table, ci);
	if (r != 0)
		return zila_error_set(err, r, "cannot read the columns of '%s'", table);
	if (ci->hidden > 0)
		return refuse(err, "cannot track '%s': it has generated columns, which every replica computes on its own; "
			      "make them plain columns or compute them in a view", table);
	if (ci->npk == 0)
		return refuse(err, "cannot track '%s': it has no primary key, so rows on two laptops cannot be matched; "
			      "add a column like id TEXT PRIMARY KEY DEFAULT (lower(hex(randomblob(16))))", table);
	if (ci->npk > 1)
		return refuse(err, "cannot track '%s': its primary key has %d columns; zila needs one key column: "
			      "add id TEXT PRIMARY KEY DEFAULT (lower(hex(randomblob(16)))) and make the old key UNIQUE",
			      table, ci->npk);
	if (strcasecmp(ci->pktype, "INTEGER") == 0 && !is_without_rowid(s, table))
		return refuse(err, "cannot track '%s': its key '%s' is INTEGER PRIMARY KEY, a rowid that each laptop "
			      "numbers on its own, so two laptops would make different rows with the same key; "
			      "use a key generated on the device, e.g. id TEXT PRIMARY KEY DEFAULT (lower(hex(randomblob(16))))",
			      table, ci->cols[ci->pk]);
	if (pcol != NULL) {
		int pc = -1;
		for (int i = 0; i < ci->ncols; i++)
			if (strcasecmp(ci->cols[i], pcol) == 0)
				pc = i;
		if (pc < 0)
			return refuse(err, "cannot track '%s': it has no column '%s' to partition by; add it or track "
				      "the table as org-wide without --partition", table, pcol);
		if (pc == ci->pk)
			return refuse(err, "cannot track '%s': the partition column cannot be the primary key", table);
	}
	return 0;
}

/* The delete capture: the key and partition of the row gone, and in a rowid table the
 * rowid it had, which is where its state is (struct rowstate); and when it was made. */
static int delete_trigger(struct zila_buf *q, const char *tname, const char *table, int64_t tid, const char *pkc,
			  const char *pcol, bool rowid)
{
	int r = put_fmt(q, "DROP TRIGGER IF EXISTS %s_del;\nCREATE TRIGGER %s_del AFTER DELETE ON ", tname, tname);
	r = r ? r : put_qid(q, table);
	r = r ? r : put_fmt(q, " BEGIN INSERT INTO zila_pending(tid, rid, pk, m, part, at) VALUES (%lld, %s, OLD.",
			    (long long)tid, rowid ? "OLD.rowid" : "NULL");
	r = r ? r : put_qid(q, pkc);
	r = r ? r : put_str(q, ", NULL, ");
	if (pcol != NULL) {
		r = r ? r : put_str(q, "OLD.");
		r = r ? r : put_qid(q, pcol);
	} else {
		r = r ? r : put_str(q, "''");
	}
	return r ? r : put_str(q, ", " WRITE_TIME "); END;\n");
}

/* The capture triggers of a table (replacing any it has): updates record the rowid where
 * there is one (a small integer costs the writer less than the key text), deletes the key,
 * as the row is gone, and the rowid; each records when it was made (julianday('now'): the
 * writer's clock, which the seal dates the change by). Inserts into a rowid table are not
 * captured at all: any trigger on INSERT has SQLite keep a statement journal for every row
 * inserted in a transaction, which cost more than the trigger itself (the README's write
 * path). A guard refuses changing a row's key or partition. */
static int arm_sql(struct zila_buf *q, const char *table, int64_t tid, char *const *cols, int ncols, int pk,
		   const char *pcol, bool rowid)
{
	char tname[64];
	const char *pkc = cols[pk];
	const char *keycol = rowid ? "rid" : "pk";
	int r = 0;
	/* Trigger names use the table id: table names may be long or odd. */
	snprintf(tname, sizeof(tname), "zila_%lld", (long long)tid);
	if (!rowid) {
		r = put_fmt(q, "DROP TRIGGER IF EXISTS %s_ins;\nCREATE TRIGGER %s_ins AFTER INSERT ON ", tname, tname);
		r = r ? r : put_qid(q, table);
		r = r ? r : put_fmt(q, " BEGIN INSERT INTO zila_pending(tid, pk, m, at) VALUES (%lld, NEW.", (long long)tid);
		r = r ? r : put_qid(q, pkc);
		r = r ? r : put_str(q, ", -1, " WRITE_TIME "); END;\n");
	}
	r = r ? r : put_fmt(q, "DROP TRIGGER IF EXISTS %s_upd;\nCREATE TRIGGER %s_upd AFTER UPDATE ON ", tname, tname);
	r = r ? r : put_qid(q, table);
	r = r ? r : put_fmt(q, " BEGIN INSERT INTO zila_pending(tid, %s, m, at) VALUES (%lld, NEW.", keycol,
			    (long long)tid);
	r = r ? r : (rowid ? put_str(q, "rowid") : put_qid(q, pkc));
	r = r ? r : put_str(q, ", 0");
	for (int i = 0; r == 0 && i < ncols; i++) {
		if (i == pk)
			continue;
		r = put_str(q, " | ((OLD.");
		r = r ? r : put_qid(q, cols[i]);
		r = r ? r : put_str(q, " IS NOT NEW.");
		r = r ? r : put_qid(q, cols[i]);
		r = r ? r : put_fmt(q, ") << %d)", i < MASK_BITS ? i : MASK_BITS);
	}
	r = r ? r : put_str(q, ", " WRITE_TIME "); END;\n");
	r = r ? r : delete_trigger(q, tname, table, tid, pkc, pcol, rowid);
	/* A row's key and partition never change: refuse such updates at the source. */
	r = r ? r : put_fmt(q, "DROP TRIGGER IF EXISTS %s_guard;\nCREATE TRIGGER %s_guard BEFORE UPDATE ON ", tname,
			    tname);
	r = r ? r : put_qid(q, table);
	r = r ? r : put_str(q, " WHEN OLD.");
	r = r ? r : put_qid(q, pkc);
	r = r ? r : put_str(q, " IS NOT NEW.");
	r = r ? r : put_qid(q, pkc);
	if (pcol != NULL) {
		r = r ? r : put_str(q, " OR OLD.");
		r = r ? r : put_qid(q, pcol);
		r = r ? r : put_str(q, " IS NOT NEW.");
		r = r ? r : put_qid(q, pcol);
	}
	r = r ? r : put_str(q, " BEGIN SELECT RAISE(ABORT, 'zila: a synced row''s key and partition cannot change;"
			       " insert a new row and delete the old one'); END;\n");
	return r;
}

/* arm_sql() for a tracked table, and its write-scope triggers (scope.c). */
static int arm_table(struct zila_store *s, struct zila_buf *q, const struct table *t)
{
	char tname[64];
	snprintf(tname, sizeof(tname), "zila_%lld", (long long)t->id);
	int r = arm_sql(q, t->name, t->id, t->cols, t->ncols, t->pk, t->pcol >= 0 ? t->cols[t->pcol] : NULL,
			t->has_rowid);
	return r ? r : store_scope_sql(s, q, tname, t);
}

int store_arm_table(struct zila_store *s, const struct table *t, struct zila_error *err)
{
	struct zila_buf q;
	int r;
	zila_buf_init(&q, 1 << 20);
	r = arm_table(s, &q, t);
	if (r != 0 || cstr(&q) == NULL)
		r = zila_error_set(err, ZILA_ENOMEM, "out of memory");
	else
		r = store_exec(s, (const char *)q.p, err);
	zila_buf_release(&q);
	return r;
}

int store_arm_all(struct zila_store *s, struct zila_error *err)
{
	int r = 0;
	for (int i = 0; r == 0 && i < s->ntables; i++)
		r = store_arm_table(s, s->tables[i], err);
	return r;
}

/* The table of a capture trigger named zila_<id>_<kind> (arm_sql), kind one of the three that
 * a rebuild loses with the table; NULL for any other trigger. */
static struct table *trigger_table(struct zila_store *s, const char *name)
{
	static const char *const kinds[] = { "upd", "del", "guard" };
	long long id;
	int len = 0;
	if (sscanf(name, "zila_%lld_%n", &id, &len) != 1 || len == 0)
		return NULL;
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		if (strcmp(name + len, kinds[k]) != 0)
			continue;
		for (int i = 0; i < s->ntables; i++)
			if (s->tables[i]->id == id)
				return s->tables[i];
	}
	return NULL;
}

int store_armed_check(struct zila_store *s, int *n)
{
	/* one pass over the schema: it has no index by table, and a query per table read it
	 * whole 2 x ntables times on every first seal of an opened store */
	static const char q[] = "SELECT type, name, tbl_name FROM sqlite_schema WHERE type IN ('table', 'trigger')";
	sqlite3_stmt *st = NULL;
	int r = ZILA_EDB, rc;
	*n = 0;
	/* the schema as it was at the last look, every table armed: nothing to read */
	int64_t cookie = -1;
	sqlite3_stmt *sv = store_stmt(s, "PRAGMA schema_version");
	if (sv != NULL && sqlite3_step(sv) == SQLITE_ROW)
		cookie = sqlite3_column_int64(sv, 0);
	if (sv != NULL)
		sqlite3_reset(sv);
	if (cookie >= 0 && cookie == s->armed_cookie)
		return 0;
	/* per table: whether it is there (1), and how many of its three triggers are (2..) */
	int *seen = calloc((size_t)s->ntables + 1, sizeof(*seen));
	if (seen == NULL || sqlite3_prepare_v2(s->db, q, -1, &st, NULL) != SQLITE_OK)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *type = (const char *)sqlite3_column_text(st, 0);
		const char *name = (const char *)sqlite3_column_text(st, 1);
		const char *tbl = (const char *)sqlite3_column_text(st, 2);
		if (type == NULL || name == NULL || tbl == NULL)
			continue;
		if (strcmp(type, "table") == 0) {
			for (int i = 0; i < s->ntables; i++)
				if (sqlite3_stricmp(s->tables[i]->name, name) == 0)
					seen[i] |= 1;
			continue;
		}
		struct table *t = trigger_table(s, name);
		if (t == NULL || sqlite3_stricmp(t->name, tbl) != 0)
			continue;
		for (int i = 0; i < s->ntables; i++)
			if (s->tables[i] == t)
				seen[i] += 2;
	}
	if (rc != SQLITE_DONE)
		goto out;
	r = 0;
	for (int i = 0; i < s->ntables; i++) {
		struct table *t = s->tables[i];
		t->unarmed = (seen[i] & 1) != 0 && seen[i] / 2 < 3;
		*n += t->unarmed;
	}
	s->armed_cookie = *n == 0 ? cookie : -1;
out:
	if (r != 0)
		s->armed_cookie = -1;
	sqlite3_finalize(st);
	free(seen);
	return r;
}

int store_track_locked(struct zila_store *s, const char *table, const char *pcol, struct zila_error *err)
{
	struct colinfo ci = { 0 };
	struct zila_buf q, cl;
	sqlite3_stmt *st = NULL;
	int r;
	zila_buf_init(&q, 1 << 20);
	zila_buf_init(&cl, 1 << 20);
	if (store_table_by_name(s, table, strlen(table)) != NULL) {
		r = zila_error_set(err, ZILA_EEXIST, "table '%s' is already tracked", table);
		goto out;
	}
	if ((r = check_trackable(s, table, pcol, &ci, err)) != 0)
		goto out;
	/* A rowid table's rows are new past its high-water rowid: 0, so the rows it holds
	 * already are sealed as inserts. */
	bool rowid = !is_without_rowid(s, table);
	if ((r = cols_text(&cl, ci.cols, ci.ncols)) != 0) {
		r = zila_error_set(err, r, "out of memory");
		goto out;
	}
	if (sqlite3_prepare_v2(s->db, "INSERT INTO zila_tables(name, pcol, hw, nlive, cols) VALUES (?, ?, ?, ?, ?)", -1,
			       &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
		if (pcol)
			sqlite3_bind_text(st, 2, pcol, -1, SQLITE_STATIC);
		if (rowid) {
			sqlite3_bind_int64(st, 3, 0);
			sqlite3_bind_int64(st, 4, 0); /* no state in zila_live yet: counted from here */
		}
		sqlite3_bind_text(st, 5, (const char *)cl.p, -1, SQLITE_STATIC);
		r = sqlite3_step(st) == SQLITE_DONE ? 0 : ZILA_EDB;
	} else {
		r = ZILA_EDB;
	}
	sqlite3_finalize(st);
	if (r != 0) {
		r = store_db_error(s, err, "track");
		goto out;
	}
	int64_t tid = sqlite3_last_insert_rowid(s->db);
	const char *pkc = ci.cols[ci.pk];
	r = arm_sql(&q, table, tid, ci.cols, ci.ncols, ci.pk, pcol, rowid);
	/* Rows of a WITHOUT ROWID table that were there before tracking are captured as inserts. */
	if (!rowid) {
		r = r ? r : put_fmt(&q, "INSERT INTO zila_pending(tid, pk, m) SELECT %lld, ", (long long)tid);
		r = r ? r : put_qid(&q, pkc);
		r = r ? r : put_str(&q, ", -1 FROM ");
		r = r ? r : put_qid(&q, table);
		r = r ? r : put_str(&q, ";");
	}
	if (r != 0 || cstr(&q) == NULL) {
		r = zila_error_set(err, ZILA_ENOMEM, "out of memory");
		goto out;
	}
	r = store_exec(s, (const char *)q.p, err);
out:
	colinfo_release(&ci);
	zila_buf_release(&q);
	zila_buf_release(&cl);
	return r;
}

/* Tracks n tables in one transaction and loads the table list once: the tables of a new
 * replica's schema are tracked together (one load for each table tracked made creating a
 * replica quadratic in its tables). */
int store_track_many(struct zila_store *s, char *const *tables, const char *const *pcols, int n,
		     struct zila_error *err)
{
	int r;
	for (int i = 0; i < n; i++)
		if (store_table_by_name(s, tables[i], strlen(tables[i])) != NULL)
			return zila_error_set(err, ZILA_EEXIST, "table '%s' is already tracked", tables[i]);
	if ((r = store_begin(s, err)) != 0)
		return r;
	for (int i = 0; i < n; i++)
		if ((r = store_track_locked(s, tables[i], pcols[i], err)) != 0)
			goto fail;
	if ((r = store_load_tables(s, err)) != 0)
		goto fail;
	/* and the write scope's */
	for (int i = 0; i < n; i++) {
		struct table *t = store_table_by_name(s, tables[i], strlen(tables[i]));
		if (t != NULL && (r = store_arm_table(s, t, err)) != 0)
			goto fail;
	}
	r = store_commit(s, err);
	if (r != 0 && store_load_tables(s, NULL) != 0)
		zila_log(ZILA_LOG_ERROR, "cannot reload the tracked tables");
	return r;
fail:
	store_rollback(s);
	if (store_load_tables(s, NULL) != 0)
		zila_log(ZILA_LOG_ERROR, "cannot reload the tracked tables");
	return r;
}

int zila_store_track(struct zila_store *s, const char *table, const char *pcol, struct zila_error *err)
{
	char *tables[1] = { (char *)table };
	const char *pcols[1] = { pcol };
	return store_track_many(s, tables, pcols, 1, err);
}

int store_migrate_live(struct zila_store *s, struct zila_error *err)
{
	struct zila_buf q;
	int r = 0;
	zila_buf_init(&q, 1 << 20);
	for (int i = 0; r == 0 && i < s->ntables; i++) {
		struct table *t = s->tables[i];
		char tname[64];
		if (!t->has_rowid)
			continue;
		const char *pkc = t->cols[t->pk];
		zila_buf_reset(&q);
		r = put_fmt(&q, "INSERT INTO zila_live(tid, rid, pk, st) SELECT r.tid, u.rowid, r.pk, r.st FROM zila_rows r"
				" JOIN ");
		r = r ? r : put_qid(&q, t->name);
		r = r ? r : put_str(&q, " u ON u.");
		r = r ? r : put_qid(&q, pkc);
		r = r ? r : put_fmt(&q, " = r.pk WHERE r.tid = %lld AND r.dead IS NULL;\n", (long long)t->id);
		r = r ? r : put_fmt(&q, "DELETE FROM zila_rows WHERE tid = %lld AND dead IS NULL AND pk IN (SELECT ",
				    (long long)t->id);
		r = r ? r : put_qid(&q, pkc);
		r = r ? r : put_str(&q, " FROM ");
		r = r ? r : put_qid(&q, t->name);
		r = r ? r : put_str(&q, ");\n");
		snprintf(tname, sizeof(tname), "zila_%lld", (long long)t->id);
		r = r ? r : delete_trigger(&q, tname, t->name, t->id, pkc, t->pcol >= 0 ? t->cols[t->pcol] : NULL, true);
		if (r != 0 || cstr(&q) == NULL) {
			r = zila_error_set(err, ZILA_ENOMEM, "out of memory");
			break;
		}
		r = store_exec(s, (const char *)q.p, err);
	}
	zila_buf_release(&q);
	return r;
}

int store_migrate_hw(struct zila_store *s, struct zila_error *err)
{
	struct zila_buf q;
	int r = 0;
	zila_buf_init(&q, 1 << 20);
	for (int i = 0; r == 0 && i < s->ntables; i++) {
		struct table *t = s->tables[i];
		if (!t->has_rowid)
			continue;
		/* Every row there is sealed or captured: the mark starts at the highest. */
		zila_buf_reset(&q);
		r = put_fmt(&q, "DROP TRIGGER IF EXISTS zila_%lld_ins;\nUPDATE zila_tables SET hw ="
				" (SELECT coalesce(max(rowid), 0) FROM ", (long long)t->id);
		r = r ? r : put_qid(&q, t->name);
		r = r ? r : put_fmt(&q, ") WHERE id = %lld;", (long long)t->id);
		if (r != 0 || cstr(&q) == NULL) {
			r = zila_error_set(err, ZILA_ENOMEM, "out of memory");
			break;
		}
		r = store_exec(s, (const char *)q.p, err);
	}
	zila_buf_release(&q);
	return r;
}

int store_hw_commit(struct zila_store *s)
{
	int r = 0;
	for (int i = 0; i < s->ntables; i++) {
		struct table *t = s->tables[i];
		if (t->hw_fix == NULL)
			continue;
		sqlite3_bind_int(t->hw_fix, 1, t->hw_clean);
		if (r == 0 && sqlite3_step(t->hw_fix) != SQLITE_DONE)
			r = ZILA_EDB;
		sqlite3_reset(t->hw_fix);
		t->hw_clean = false;
		if (r == 0 && t->nlive_delta != 0) {
			sqlite3_stmt *st = s->st_nlive_add;
			sqlite3_bind_int64(st, 1, t->id);
			sqlite3_bind_int64(st, 2, t->nlive_delta);
			if (sqlite3_step(st) != SQLITE_DONE)
				r = ZILA_EDB;
			sqlite3_reset(st);
		}
		t->nlive_delta = 0;
	}
	return r;
}
