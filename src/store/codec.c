/* Encodings the store keeps and sends: typed values, register versions, row states. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

#define VAL_MAX (64u << 20)

static uint64_t zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzigzag(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

int val_put(struct zila_buf *b, const struct zval *v)
{
	int r = zila_buf_put_u8(b, (uint8_t)v->type);
	if (r != 0)
		return r;
	switch (v->type) {
	case VAL_NULL:
		return 0;
	case VAL_INT:
		return zila_buf_put_varint(b, zigzag(v->i));
	case VAL_REAL: {
		uint64_t bits;
		memcpy(&bits, &v->d, 8);
		return zila_buf_put_u64be(b, bits);
	}
	case VAL_TEXT:
	case VAL_BLOB:
		return zila_buf_put_lenbytes(b, v->p, v->len);
	default:
		return ZILA_EINVAL;
	}
}

int val_get(struct zila_view *in, struct zval *v)
{
	uint8_t tag;
	uint64_t x;
	struct zila_view sub;
	memset(v, 0, sizeof(*v));
	int r = zila_view_get_u8(in, &tag);
	if (r != 0)
		return r;
	v->type = tag;
	switch (tag) {
	case VAL_NULL:
		return 0;
	case VAL_INT:
		r = zila_view_get_varint(in, &x);
		v->i = unzigzag(x);
		return r;
	case VAL_REAL:
		r = zila_view_get_u64be(in, &x);
		memcpy(&v->d, &x, 8);
		return r;
	case VAL_TEXT:
	case VAL_BLOB:
		r = zila_view_get_lenbytes(in, VAL_MAX, &sub);
		v->p = sub.p;
		v->len = sub.len;
		return r;
	default:
		return ZILA_EFORMAT;
	}
}

void val_default(struct zval *v, const struct table *t, int col)
{
	memset(v, 0, sizeof(*v));
	sqlite3_value *d = t->dflt != NULL ? t->dflt[col] : NULL;
	if (d == NULL)
		return;
	switch (sqlite3_value_type(d)) {
	case SQLITE_INTEGER:
		v->type = VAL_INT;
		v->i = sqlite3_value_int64(d);
		break;
	case SQLITE_FLOAT:
		v->type = VAL_REAL;
		v->d = sqlite3_value_double(d);
		break;
	case SQLITE_TEXT:
		v->type = VAL_TEXT;
		v->p = sqlite3_value_text(d);
		v->len = (size_t)sqlite3_value_bytes(d);
		break;
	case SQLITE_BLOB:
		v->type = VAL_BLOB;
		v->p = sqlite3_value_blob(d);
		v->len = (size_t)sqlite3_value_bytes(d);
		if (v->p == NULL)
			v->p = (const uint8_t *)"";
		break;
	default:
		break;
	}
}

void val_from_column(struct zval *v, sqlite3_stmt *st, int col)
{
	memset(v, 0, sizeof(*v));
	switch (sqlite3_column_type(st, col)) {
	case SQLITE_INTEGER:
		v->type = VAL_INT;
		v->i = sqlite3_column_int64(st, col);
		break;
	case SQLITE_FLOAT:
		v->type = VAL_REAL;
		v->d = sqlite3_column_double(st, col);
		break;
	case SQLITE_TEXT:
		v->type = VAL_TEXT;
		v->p = sqlite3_column_text(st, col);
		v->len = (size_t)sqlite3_column_bytes(st, col);
		break;
	case SQLITE_BLOB:
		v->type = VAL_BLOB;
		v->p = sqlite3_column_blob(st, col);
		v->len = (size_t)sqlite3_column_bytes(st, col);
		if (v->p == NULL)
			v->p = (const uint8_t *)"";
		break;
	default:
		v->type = VAL_NULL;
	}
}

int val_bind(sqlite3_stmt *st, int idx, const struct zval *v)
{
	switch (v->type) {
	case VAL_INT:
		return sqlite3_bind_int64(st, idx, v->i);
	case VAL_REAL:
		return sqlite3_bind_double(st, idx, v->d);
	case VAL_TEXT:
		return sqlite3_bind_text(st, idx, (const char *)v->p, (int)v->len, SQLITE_STATIC);
	case VAL_BLOB:
		return sqlite3_bind_blob(st, idx, v->p, (int)v->len, SQLITE_STATIC);
	default:
		return sqlite3_bind_null(st, idx);
	}
}

/* SQLite's numeric affinity on a TEXT key (sqlite3_value_numeric_type; a real that is a
 * whole number is stored as an integer, as NUMERIC and INTEGER columns do). */
static int numeric_key(struct zila_store *s, struct zval *pk)
{
	sqlite3_stmt *st = NULL;
	sqlite3_value *v = NULL;
	int r = ZILA_EDB;
	if (sqlite3_prepare_v2(s->db, "SELECT ?1", -1, &st, NULL) != SQLITE_OK)
		goto out;
	val_bind(st, 1, pk);
	if (sqlite3_step(st) != SQLITE_ROW || (v = sqlite3_value_dup(sqlite3_column_value(st, 0))) == NULL)
		goto out;
	r = 0;
	int type = sqlite3_value_numeric_type(v);
	double d = type == SQLITE_FLOAT ? sqlite3_value_double(v) : 0;
	if (type == SQLITE_INTEGER) {
		pk->type = VAL_INT;
		pk->i = sqlite3_value_int64(v);
	} else if (type == SQLITE_FLOAT && d >= -9.2e18 && d <= 9.2e18 && d == (double)(int64_t)d) {
		pk->type = VAL_INT;
		pk->i = (int64_t)d;
	} else if (type == SQLITE_FLOAT) {
		pk->type = VAL_REAL;
		pk->d = d;
	}
out:
	sqlite3_value_free(v);
	sqlite3_finalize(st);
	return r;
}

/* Copies the key in column col of st into b and points pk at it. */
static int key_take(struct zval *pk, sqlite3_stmt *st, int col, struct zila_buf *b)
{
	struct zval k;
	val_from_column(&k, st, col);
	zila_buf_reset(b);
	if ((k.type == VAL_TEXT || k.type == VAL_BLOB) && k.len > 0) {
		int r = zila_buf_put(b, k.p, k.len);
		if (r != 0)
			return r;
		k.p = b->p;
	}
	*pk = k;
	return 0;
}

int key_canon(struct zila_store *s, struct table *t, struct zval *pk, struct zila_buf buf[2])
{
	int r = 0;
	if (t->pk_aff == 'T' && pk->type == VAL_INT) {
		char txt[24];
		int n = snprintf(txt, sizeof(txt), "%lld", (long long)pk->i);
		zila_buf_reset(&buf[0]);
		if ((r = zila_buf_put(&buf[0], txt, (size_t)n)) != 0)
			return r;
		pk->type = VAL_TEXT;
		pk->p = buf[0].p;
		pk->len = (size_t)n;
	} else if (t->pk_aff == 'N' && pk->type == VAL_TEXT && (r = numeric_key(s, pk)) != 0) {
		return r;
	}
	if (t->key_rows == NULL || (pk->type != VAL_TEXT && pk->type != VAL_BLOB))
		return 0;
	/* Under NOCASE 'ABC' is the row 'abc': the table's spelling, else the one a state
	 * is kept under (a deleted or parked row), else the key as it came. */
	sqlite3_stmt *q[2] = { t->sel, t->key_rows };
	for (int i = 0; r == 0 && i < 2; i++) {
		val_bind(q[i], 1, pk);
		int rc = sqlite3_step(q[i]);
		if (rc == SQLITE_ROW)
			r = key_take(pk, q[i], i == 0 ? t->pk : 0, &buf[1]);
		else if (rc != SQLITE_DONE)
			r = ZILA_EDB;
		sqlite3_reset(q[i]);
		sqlite3_clear_bindings(q[i]);
		if (rc == SQLITE_ROW)
			break;
	}
	return r;
}

/* A real that is a whole number an int64 holds, as an integer (SQLite's integer affinity
 * on a real: sqlite3VdbeIntegerAffinity). */
static void whole_real(struct zval *v)
{
	if (v->type == VAL_REAL && v->d > -9.2e18 && v->d < 9.2e18 && v->d == (double)(int64_t)v->d) {
		v->i = (int64_t)v->d;
		v->type = VAL_INT;
	}
}

int val_affine(struct zila_store *s, const struct table *t, int col, struct zval *v, struct zila_buf *buf)
{
	char a = t->aff != NULL && col >= 0 && col < t->ncols ? t->aff[col] : 'B';
	int r = 0;
	switch (a) {
	case 'T':
		if (v->type == VAL_INT || v->type == VAL_REAL) {
			/* SQLite's own spelling of a number (a real's digits are its, not printf's) */
			sqlite3_stmt *st = store_stmt(s, "SELECT CAST(?1 AS TEXT)");
			if (st == NULL)
				return ZILA_EDB;
			val_bind(st, 1, v);
			if (sqlite3_step(st) == SQLITE_ROW) {
				zila_buf_reset(buf);
				r = zila_buf_put(buf, sqlite3_column_text(st, 0), (size_t)sqlite3_column_bytes(st, 0));
				if (r == 0) {
					v->type = VAL_TEXT;
					v->p = buf->p;
					v->len = buf->len;
				}
			} else {
				r = ZILA_EDB;
			}
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
		}
		break;
	case 'I':
	case 'N':
	case 'R':
		if (v->type == VAL_TEXT)
			r = numeric_key(s, v);
		whole_real(v);
		if (a == 'R' && v->type == VAL_INT) {
			v->d = (double)v->i;
			v->type = VAL_REAL;
		}
		break;
	default:
		break;
	}
	return r;
}

bool val_equal(const struct zval *a, const struct zval *b)
{
	if (a->type != b->type)
		return false;
	switch (a->type) {
	case VAL_INT:
		return a->i == b->i;
	case VAL_REAL:
		return memcmp(&a->d, &b->d, 8) == 0;
	case VAL_TEXT:
	case VAL_BLOB:
		return a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
	default:
		return true;
	}
}

int ver_cmp(struct zila_store *s, const struct ver *a, const struct ver *b)
{
	if (a->hlc != b->hlc)
		return a->hlc < b->hlc ? -1 : 1;
	if (a->origin == b->origin)
		return a->seq < b->seq ? -1 : a->seq > b->seq;
	const uint8_t *ka = store_origin_key(s, a->origin), *kb = store_origin_key(s, b->origin);
	if (ka == NULL || kb == NULL) /* the zero version has no origin */
		return ka ? 1 : kb ? -1 : 0;
	int c = memcmp(ka, kb, 32);
	return c < 0 ? -1 : c > 0;
}

void row_init(struct rowstate *r, int ncols)
{
	memset(r, 0, sizeof(*r));
	r->ncols = ncols;
	r->cver = calloc((size_t)ncols + 1, sizeof(*r->cver));
	r->vals = calloc((size_t)ncols + 1, sizeof(*r->vals));
	zila_buf_init(&r->arena, 1u << 30);
}

void row_release(struct rowstate *r)
{
	free(r->cver);
	free(r->vals);
	zila_buf_release(&r->arena);
	memset(r, 0, sizeof(*r));
}

void row_reset(struct rowstate *r)
{
	r->known = r->in_live = r->in_rows = r->has_rid = r->exists = false;
	r->live_rid = r->rid = 0;
	r->parked = PARK_NONE;
	r->track = false;
	r->dirty = 0;
	r->part[0] = '\0';
	memset(&r->ever, 0, sizeof(r->ever));
	memset(r->cver, 0, (size_t)r->ncols * sizeof(*r->cver));
	memset(r->vals, 0, (size_t)r->ncols * sizeof(*r->vals));
	zila_buf_reset(&r->arena);
}

#define ST_UNIFORM 0x08 /* flag: every register holds the one version that follows */

static bool ver_same(const struct ver *a, const struct ver *b)
{
	return a->hlc == b->hlc && a->origin == b->origin && a->seq == b->seq;
}

/* The state blob: flags, partition, a table of distinct versions, and per register
 * (existence first, then each column) an index into it (0: never written). A row whose
 * registers were all written by one change (every row sealed or received as an insert
 * and not changed since) is kept as flags, partition, that version and the register
 * count: a third smaller, and zila_rows is most of what the merge reads and writes. */
static int put_state(struct zila_buf *b, const struct rowstate *r)
{
	struct ver uniq[8];
	int nuniq = 0;
	uint8_t idx_small[256];
	bool uniform = r->ever.hlc != 0 || r->ever.origin != 0;
	for (int i = 0; uniform && i < r->ncols; i++)
		uniform = ver_same(&r->cver[i], &r->ever);
	if (uniform) {
		int rr = zila_buf_put_u8(b, (uint8_t)((r->exists ? 1 : 0) | (r->parked << 1) | ST_UNIFORM));
		rr = rr ? rr : zila_buf_put_lenbytes(b, r->part, strlen(r->part));
		rr = rr ? rr : zila_buf_put_u64be(b, r->ever.hlc);
		rr = rr ? rr : zila_buf_put_varint(b, (uint64_t)r->ever.origin);
		rr = rr ? rr : zila_buf_put_varint(b, r->ever.seq);
		return rr ? rr : zila_buf_put_varint(b, (uint64_t)r->ncols + 1);
	}
	uint8_t *idx = r->ncols + 1 <= 256 ? idx_small : malloc((size_t)r->ncols + 1);
	int rr = 0;
	if (idx == NULL)
		return ZILA_ENOMEM;
	/* Most rows have one or two distinct versions; past eight, versions repeat inline. */
	for (int i = 0; i <= r->ncols; i++) {
		const struct ver *v = i == 0 ? &r->ever : &r->cver[i - 1];
		idx[i] = 0;
		if (v->hlc == 0 && v->origin == 0)
			continue;
		int k;
		for (k = 0; k < nuniq; k++)
			if (uniq[k].hlc == v->hlc && uniq[k].origin == v->origin && uniq[k].seq == v->seq)
				break;
		if (k == nuniq && nuniq < 8)
			uniq[nuniq++] = *v;
		idx[i] = (uint8_t)(k < nuniq ? k + 1 : 255);
	}
	rr = zila_buf_put_u8(b, (uint8_t)((r->exists ? 1 : 0) | (r->parked << 1)));
	rr = rr ? rr : zila_buf_put_lenbytes(b, r->part, strlen(r->part));
	rr = rr ? rr : zila_buf_put_varint(b, (uint64_t)nuniq);
	for (int k = 0; rr == 0 && k < nuniq; k++) {
		rr = zila_buf_put_u64be(b, uniq[k].hlc);
		rr = rr ? rr : zila_buf_put_varint(b, (uint64_t)uniq[k].origin);
		rr = rr ? rr : zila_buf_put_varint(b, uniq[k].seq);
	}
	rr = rr ? rr : zila_buf_put_varint(b, (uint64_t)r->ncols + 1);
	for (int i = 0; rr == 0 && i <= r->ncols; i++) {
		rr = zila_buf_put_u8(b, idx[i]);
		if (rr == 0 && idx[i] == 255) {
			const struct ver *v = i == 0 ? &r->ever : &r->cver[i - 1];
			rr = zila_buf_put_u64be(b, v->hlc);
			rr = rr ? rr : zila_buf_put_varint(b, (uint64_t)v->origin);
			rr = rr ? rr : zila_buf_put_varint(b, v->seq);
		}
	}
	if (idx != idx_small)
		free(idx);
	return rr;
}

static int get_ver(struct zila_view *in, struct ver *v)
{
	uint64_t o = 0;
	int r = zila_view_get_u64be(in, &v->hlc);
	r = r ? r : zila_view_get_varint(in, &o);
	r = r ? r : zila_view_get_varint(in, &v->seq);
	v->origin = (int64_t)o;
	return r;
}

static int get_state(struct zila_view in, struct rowstate *r)
{
	uint8_t flags, idx;
	uint64_t nuniq, nregs;
	struct ver uniq[8];
	struct zila_view part;
	int rr = zila_view_get_u8(&in, &flags);
	rr = rr ? rr : zila_view_get_lenbytes(&in, ZILA_PART_MAX, &part);
	if (rr == 0 && (flags & ST_UNIFORM)) {
		struct ver v;
		rr = get_ver(&in, &v);
		rr = rr ? rr : zila_view_get_varint(&in, &nregs);
		if (rr != 0)
			return ZILA_EFORMAT;
		r->exists = flags & 1;
		r->parked = (flags >> 1) & 3;
		memcpy(r->part, part.p, part.len);
		r->part[part.len] = '\0';
		/* Registers of columns added since were never written. */
		r->ever = v;
		for (uint64_t i = 1; i < nregs && (int)i <= r->ncols; i++)
			r->cver[i - 1] = v;
		return 0;
	}
	rr = rr ? rr : zila_view_get_varint(&in, &nuniq);
	if (rr != 0 || nuniq > 8)
		return ZILA_EFORMAT;
	for (uint64_t k = 0; k < nuniq; k++)
		if ((rr = get_ver(&in, &uniq[k])) != 0)
			return rr;
	if ((rr = zila_view_get_varint(&in, &nregs)) != 0)
		return rr;
	r->exists = flags & 1;
	r->parked = (flags >> 1) & 3;
	memcpy(r->part, part.p, part.len);
	r->part[part.len] = '\0';
	for (uint64_t i = 0; i < nregs; i++) {
		struct ver v = { 0, 0, 0 };
		if ((rr = zila_view_get_u8(&in, &idx)) != 0)
			return rr;
		if (idx == 255) {
			if ((rr = get_ver(&in, &v)) != 0)
				return rr;
		} else if (idx > 0) {
			if (idx > nuniq)
				return ZILA_EFORMAT;
			v = uniq[idx - 1];
		}
		/* Registers of columns this replica no longer has are dropped. */
		if (i == 0)
			r->ever = v;
		else if ((int)i <= r->ncols)
			r->cver[i - 1] = v;
	}
	return 0;
}

/* A row's values as the table would hold them (val_affine): where it is not shown (parked,
 * deleted), the values it came with in an entry, which a replica that showed it first
 * would have read back from the table converted (an INTEGER 3 written before a column
 * became TEXT is '3' there). Two replicas keep the same image either way. */
static int put_vals_affine(struct zila_store *s, const struct table *t, struct zila_buf *b, const struct rowstate *r)
{
	struct zila_buf tmp;
	zila_buf_init(&tmp, 64u << 20);
	int rr = zila_buf_put_varint(b, (uint64_t)r->ncols);
	for (int i = 0; rr == 0 && i < r->ncols; i++) {
		struct zval v = r->vals[i];
		rr = val_affine(s, t, i, &v, &tmp);
		rr = rr ? rr : val_put(b, &v);
	}
	zila_buf_release(&tmp);
	return rr;
}

/* Copies values (borrowed from a statement or blob) into the arena; pointers are fixed
 * up after the single reservation so they stay valid. */
static int own_vals(struct rowstate *r)
{
	size_t total = 0;
	for (int i = 0; i < r->ncols; i++)
		if (r->vals[i].type == VAL_TEXT || r->vals[i].type == VAL_BLOB)
			total += r->vals[i].len;
	zila_buf_reset(&r->arena);
	int rr = zila_buf_reserve(&r->arena, total + 1);
	if (rr != 0)
		return rr;
	for (int i = 0; i < r->ncols; i++) {
		struct zval *v = &r->vals[i];
		if (v->type != VAL_TEXT && v->type != VAL_BLOB)
			continue;
		uint8_t *dst = r->arena.p + r->arena.len;
		if (v->len)
			memcpy(dst, v->p, v->len);
		r->arena.len += v->len;
		v->p = dst;
	}
	return 0;
}

/* The state zila_rows holds for pk, with the image of a row the table does not show. */
static int rows_get(struct zila_store *s, struct table *t, const struct zval *pk, struct rowstate *r, bool load_vals)
{
	sqlite3_stmt *st = s->st_row_get;
	int rr = 0;
	sqlite3_bind_int64(st, 1, t->id);
	val_bind(st, 2, pk);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		r->known = r->in_rows = true;
		rr = get_state(zila_view_make(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0)), r);
		if (rr == 0 && load_vals && !ROW_VISIBLE(r) && sqlite3_column_type(st, 1) == SQLITE_BLOB) {
			struct zila_view in = zila_view_make(sqlite3_column_blob(st, 1),
							     (size_t)sqlite3_column_bytes(st, 1));
			uint64_t n;
			rr = zila_view_get_varint(&in, &n);
			for (uint64_t i = 0; rr == 0 && i < n; i++) {
				struct zval v;
				rr = val_get(&in, &v);
				if (rr == 0 && (int)i < r->ncols)
					r->vals[i] = v;
			}
			/* columns added since the image was kept: their default, as the table gave rows */
			for (int i = (int)n; rr == 0 && i < r->ncols && i < t->ncols; i++)
				val_default(&r->vals[i], t, i);
			rr = rr ? rr : own_vals(r);
		}
	} else if (rc != SQLITE_DONE) {
		rr = ZILA_EDB;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rr;
}

/* The state zila_live holds at rid, when it is pk's. */
static int live_get(struct zila_store *s, struct table *t, const struct zval *pk, int64_t rid, struct rowstate *r)
{
	sqlite3_stmt *st = s->st_live_get;
	int rr = 0;
	sqlite3_bind_int64(st, 1, t->id);
	sqlite3_bind_int64(st, 2, rid);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		struct zval key;
		val_from_column(&key, st, 0);
		if (val_equal(&key, pk)) {
			r->known = r->in_live = true;
			r->live_rid = rid;
			rr = get_state(zila_view_make(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1)), r);
		}
	} else if (rc != SQLITE_DONE) {
		rr = ZILA_EDB;
	}
	sqlite3_reset(st);
	return rr;
}

int row_load(struct zila_store *s, struct table *t, const struct zval *pk, struct rowstate *r,
	     bool load_vals)
{
	sqlite3_stmt *sel = t->sel;
	int rr = 0;
	row_reset(r);
	if (!t->has_rowid) {
		rr = rows_get(s, t, pk, r, load_vals);
		if (rr != 0 || !load_vals || !ROW_VISIBLE(r))
			return rr;
	}
	val_bind(sel, 1, pk);
	int rc = sqlite3_step(sel);
	if (rc == SQLITE_ROW && t->has_rowid) {
		r->has_rid = true;
		r->rid = sqlite3_column_int64(sel, t->ncols);
		rr = live_get(s, t, pk, r->rid, r);
		/* not at its rowid: a row the seal has yet to see */
		if (rr == 0 && !r->known)
			rr = rows_get(s, t, pk, r, load_vals);
	} else if (rc == SQLITE_DONE && t->has_rowid) {
		rr = rows_get(s, t, pk, r, load_vals);
	} else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		rr = ZILA_EDB;
	}
	if (rr == 0 && rc == SQLITE_ROW && load_vals && ROW_VISIBLE(r)) {
		for (int i = 0; i < r->ncols; i++)
			val_from_column(&r->vals[i], sel, i);
		rr = own_vals(r);
	}
	sqlite3_reset(sel);
	return rr;
}

int row_locate(struct table *t, const struct zval *pk, struct rowstate *r)
{
	sqlite3_stmt *sel = t->sel;
	val_bind(sel, 1, pk);
	int rc = sqlite3_step(sel);
	r->has_rid = rc == SQLITE_ROW && t->has_rowid;
	if (r->has_rid)
		r->rid = sqlite3_column_int64(sel, t->ncols);
	sqlite3_reset(sel);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : ZILA_EDB;
}

int row_load_at(struct zila_store *s, struct table *t, const struct zval *pk, struct rowstate *r,
		const int64_t *at, const int64_t *hint)
{
	int rr = 0;
	row_reset(r);
	if (at != NULL && t->has_rowid) {
		r->has_rid = true;
		r->rid = *at;
		rr = live_get(s, t, pk, *at, r);
	}
	if (rr == 0 && !r->known && hint != NULL && t->has_rowid && (at == NULL || *hint != *at))
		rr = live_get(s, t, pk, *hint, r);
	if (rr == 0 && !r->known)
		rr = rows_get(s, t, pk, r, false);
	return rr;
}

static int step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

static int row_write(sqlite3_stmt *st, int64_t tid, const struct zval *pk, const struct zila_buf *stb,
		     const struct zila_buf *dead, bool visible)
{
	sqlite3_bind_int64(st, 1, tid);
	val_bind(st, 2, pk);
	sqlite3_bind_blob(st, 3, stb->p, (int)stb->len, SQLITE_STATIC);
	if (!visible)
		sqlite3_bind_blob(st, 4, dead->p ? dead->p : (const uint8_t *)"", (int)dead->len, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 4);
	return step_done(st);
}

static int live_write(sqlite3_stmt *st, int64_t tid, int64_t rid, const struct zval *pk, const struct zila_buf *stb)
{
	sqlite3_bind_int64(st, 1, tid);
	sqlite3_bind_int64(st, 2, rid);
	val_bind(st, 3, pk);
	sqlite3_bind_blob(st, 4, stb->p, (int)stb->len, SQLITE_STATIC);
	return step_done(st);
}

/* Removes pk's record at rid from zila_live (evict: moves another key's record there to
 * zila_rows, where a search by key finds it). */
static int live_clear(sqlite3_stmt *st, int64_t tid, int64_t rid, const struct zval *pk)
{
	sqlite3_bind_int64(st, 1, tid);
	sqlite3_bind_int64(st, 2, rid);
	val_bind(st, 3, pk);
	return step_done(st);
}

/* Encodes r for zila_rows into s->tmp_st, and its values into s->tmp_dead when the table
 * does not show the row. Not ROW_VISIBLE(): a row saved for the first time is not `known`
 * yet, and a visible row needs no copy of its values (the table has them). */
static int encode_row(struct zila_store *s, const struct table *t, const struct rowstate *r, bool *visible)
{
	*visible = r->exists && r->parked == PARK_NONE;
	zila_buf_reset(&s->tmp_st);
	zila_buf_reset(&s->tmp_dead);
	int rr = put_state(&s->tmp_st, r);
	if (rr == 0 && !*visible)
		rr = put_vals_affine(s, t, &s->tmp_dead, r);
	return rr;
}

/* A shown row's state at its rowid: in place, or into a free slot, or into one another
 * key's record holds (that record goes to zila_rows first). */
static int save_live(struct zila_store *s, struct table *t, const struct zval *pk, struct rowstate *r)
{
	int rc;
	if (r->in_live && r->live_rid == r->rid) {
		rc = live_write(s->st_live_upd, t->id, r->rid, pk, &s->tmp_st);
		if (rc == SQLITE_DONE && sqlite3_changes(s->db) == 1)
			return rc;
	}
	rc = live_write(s->st_live_put, t->id, r->rid, pk, &s->tmp_st);
	if (rc == SQLITE_DONE)
		t->nlive_delta++;
	if (rc == SQLITE_CONSTRAINT) {
		t->rows_none = false;
		t->evicted = true;
		rc = live_clear(s->st_live_evict, t->id, r->rid, pk);
		rc = rc == SQLITE_DONE ? live_write(s->st_live_upd, t->id, r->rid, pk, &s->tmp_st) : rc;
	}
	if (rc == SQLITE_DONE && r->in_live && r->live_rid != r->rid) {
		rc = live_clear(s->st_live_del, t->id, r->live_rid, pk);
		t->nlive_delta -= sqlite3_changes(s->db);
	}
	if (rc == SQLITE_DONE && r->in_rows) {
		sqlite3_bind_int64(s->st_row_del, 1, t->id);
		val_bind(s->st_row_del, 2, pk);
		rc = step_done(s->st_row_del);
	}
	return rc;
}

/* Any other state by key, in place or as a new record. */
static int save_rows(struct zila_store *s, struct table *t, const struct zval *pk, struct rowstate *r, bool visible)
{
	struct zila_buf *stb = &s->tmp_st, *dead = &s->tmp_dead;
	t->rows_none = false;
	/* An update in place or a plain insert, as the load found it: INSERT OR REPLACE
	 * would search the key twice more. The other statement covers a stale guess. */
	int rc;
	if (r->in_rows) {
		rc = row_write(s->st_row_upd, t->id, pk, stb, dead, visible);
		if (rc == SQLITE_DONE && sqlite3_changes(s->db) == 0)
			rc = row_write(s->st_row_put, t->id, pk, stb, dead, visible);
	} else {
		rc = row_write(s->st_row_put, t->id, pk, stb, dead, visible);
		if (rc == SQLITE_CONSTRAINT)
			rc = row_write(s->st_row_upd, t->id, pk, stb, dead, visible);
	}
	if (rc == SQLITE_DONE && r->in_live) {
		rc = live_clear(s->st_live_del, t->id, r->live_rid, pk);
		t->nlive_delta -= sqlite3_changes(s->db);
	}
	return rc;
}

int row_save(struct zila_store *s, struct table *t, const struct zval *pk, struct rowstate *r)
{
	bool visible;
	int rr = encode_row(s, t, r, &visible);
	if (rr != 0)
		return rr;
	bool live = visible && t->has_rowid && r->has_rid;
	int rc = live ? save_live(s, t, pk, r) : save_rows(s, t, pk, r, visible);
	if (rc != SQLITE_DONE)
		return ZILA_EDB;
	r->known = true;
	r->in_live = live;
	r->live_rid = live ? r->rid : 0;
	r->in_rows = !live;
	return 0;
}

int row_save_new_at(struct zila_store *s, struct table *t, const struct zval *pk, int64_t rid,
		    struct rowstate *r)
{
	bool visible;
	int rr = encode_row(s, t, r, &visible);
	if (rr != 0)
		return rr;
	if (!visible)
		return ZILA_EINVAL;
	int rc;
	if (t->has_rowid) {
		/* zila_rows holds few records (deleted and parked rows): a quick search, and
		 * none at all while it holds nothing of the table (the seal knows) */
		rc = SQLITE_DONE;
		if (!t->rows_none) {
			sqlite3_bind_int64(s->st_row_get, 1, t->id);
			val_bind(s->st_row_get, 2, pk);
			rc = step_done(s->st_row_get);
		}
		if (rc == SQLITE_ROW)
			return ZILA_EEXIST;
		if (rc != SQLITE_DONE)
			return ZILA_EDB;
		rc = live_write(s->st_live_put, t->id, rid, pk, &s->tmp_st);
		if (rc == SQLITE_DONE)
			t->nlive_delta++;
	} else {
		rc = row_write(s->st_row_put, t->id, pk, &s->tmp_st, &s->tmp_dead, true);
	}
	if (rc == SQLITE_CONSTRAINT)
		return ZILA_EEXIST;
	if (rc != SQLITE_DONE)
		return ZILA_EDB;
	r->known = true;
	r->in_live = t->has_rowid;
	r->in_rows = !t->has_rowid;
	r->has_rid = r->in_live;
	r->rid = r->live_rid = r->in_live ? rid : 0;
	return 0;
}
