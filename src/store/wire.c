/* The wire form of entries (proto/PROTOCOL.md, "Packed chunks"): a version 2 entry travels
 * with its plain body in column form, the values of one column next to each other and hex
 * text as its bytes, so that the session's compression sees like with like; the receiver
 * turns it back into the entry, byte for byte the plain body its author signed. */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

#define WIRE_VERBATIM 0 /* u8 kind, lenbytes entry as stored */
#define WIRE_COLUMNS 1  /* u8 kind, lenbytes head, lenbytes columns, u8[64] signature */
#define TAG_HEX 5       /* in column form: a TEXT of lowercase hex digits, as its bytes */
#define TAG_REF 6       /* a key the peer holds: its first bytes (ZILA_WIRE_REF_LEN) */
#define REF_MIN 16      /* keys of at least this many bytes may go by reference */
#define SEEN_BITS 20    /* keys upserted in the session, as a set with false positives */
#define STREAMS_MAX 4096 /* streams of one body in column form (1 + per table: 1 + ncols) */
#define HEAD_MAX (64 * 1024 + 4096 * 45) /* version .. deps: partition, 4096 deps */
#define COLUMNS_MAX (2 * ZILA_ENTRY_MAX)

struct vview {
	struct zila_view meta, data;
};

struct zila_entry_coder {
	ZSTD_DCtx *dc;
	ZSTD_CCtx *cc;
	struct zila_buf cols, body, packed;
	struct zila_buf *streams; /* meta and data of each stream being written */
	size_t nstreams_cap;
	struct vview *views;      /* the streams being read */
	size_t nviews_cap;
	/* Keys by reference (zila_entry_coder_refs). */
	bool send_refs;
	uint8_t *seen;            /* 2^SEEN_BITS bits: keys upserted by entries sent so far (NULL: none) */
	struct zila_store *resolve;
	struct zila_view *tnames; /* the table names of the body being read */
	size_t ntnames_cap;
	bool used_ref;            /* the body being read had a key by reference */
	bool plain;               /* from_wire leaves bodies uncompressed (zila_entry_coder_plain) */
	sqlite3_stmt *q_table;    /* SELECT pk FROM t WHERE pk >= ? AND pk < ?, for q_tid */
	int64_t q_tid;
};

int zila_entry_coder_new(struct zila_entry_coder **out)
{
	struct zila_entry_coder *c = calloc(1, sizeof(*c));
	*out = NULL;
	if (c == NULL)
		return ZILA_ENOMEM;
	c->dc = ZSTD_createDCtx();
	c->cc = ZSTD_createCCtx();
	if (c->dc == NULL || c->cc == NULL) {
		zila_entry_coder_free(c);
		return ZILA_ENOMEM;
	}
	zila_buf_init(&c->cols, COLUMNS_MAX);
	zila_buf_init(&c->body, ZILA_ENTRY_MAX);
	zila_buf_init(&c->packed, ZILA_ENTRY_MAX + 4096);
	*out = c;
	return 0;
}

void zila_entry_coder_free(struct zila_entry_coder *c)
{
	if (c == NULL)
		return;
	ZSTD_freeDCtx(c->dc);
	ZSTD_freeCCtx(c->cc);
	zila_buf_release(&c->cols);
	zila_buf_release(&c->body);
	zila_buf_release(&c->packed);
	for (size_t i = 0; i < c->nstreams_cap; i++)
		zila_buf_release(&c->streams[i]);
	free(c->streams);
	free(c->views);
	free(c->seen);
	free(c->tnames);
	sqlite3_finalize(c->q_table);
	free(c);
}

size_t zila_entry_coder_bytes(const struct zila_entry_coder *c)
{
	if (c == NULL)
		return 0;
	size_t n = sizeof(*c) + ZSTD_sizeof_DCtx(c->dc) + ZSTD_sizeof_CCtx(c->cc) + c->cols.cap + c->body.cap +
		   c->packed.cap + (c->seen != NULL ? (1u << SEEN_BITS) / 8 : 0);
	for (size_t i = 0; i < c->nstreams_cap; i++)
		n += c->streams[i].cap;
	return n;
}

int zila_entry_coder_refs(struct zila_entry_coder *c, bool send, struct zila_store *resolve)
{
	c->send_refs = send; /* the set of upserted keys is made at the first upsert (put_key) */
	c->resolve = resolve;
	return 0;
}

static int streams_ready(struct zila_entry_coder *c, size_t n)
{
	if (n > c->nstreams_cap) {
		struct zila_buf *ns = realloc(c->streams, n * sizeof(*ns));
		if (ns == NULL)
			return ZILA_ENOMEM;
		for (size_t i = c->nstreams_cap; i < n; i++)
			zila_buf_init(&ns[i], COLUMNS_MAX);
		c->streams = ns;
		c->nstreams_cap = n;
	}
	for (size_t i = 0; i < n; i++)
		zila_buf_reset(&c->streams[i]);
	return 0;
}

/* The body's table directory: ntables, and per table its column count. Stream 0 holds the
 * changes' table indexes, ops and UPDATE column lists; then per table its columns' values,
 * one stream each from first[t], then its keys (random keys after the columns compress
 * better: 1.03 MB against 1.10 MB for the bench district). *nstreams gets the count. */
static int read_dir(struct zila_view *in, uint64_t *ntab, uint32_t *first, size_t *nstreams,
		    struct zila_view *names)
{
	uint64_t ncols;
	struct zila_view name;
	size_t n = 1; /* the ops stream */
	int r = zila_view_get_varint(in, ntab);
	if (r != 0)
		return r;
	if (*ntab > 4096)
		return ZILA_ETOOBIG;
	for (uint64_t i = 0; i < *ntab; i++) {
		r = zila_view_get_lenbytes(in, 255, &name);
		if (r == 0 && names != NULL)
			names[i] = name;
		r = r ? r : zila_view_get_varint(in, &ncols);
		if (r == 0 && ncols > 32767)
			r = ZILA_ETOOBIG;
		for (uint64_t k = 0; r == 0 && k < ncols; k++)
			r = zila_view_get_lenbytes(in, 255, &name);
		if (r != 0)
			return r;
		first[i] = (uint32_t)n;
		n += 1 + (size_t)ncols;
		if (n > STREAMS_MAX)
			return ZILA_ETOOBIG;
	}
	first[*ntab] = (uint32_t)n;
	*nstreams = n;
	return 0;
}

static bool is_hex(const struct zval *v)
{
	if (v->type != VAL_TEXT || v->len < 2 || v->len % 2 != 0)
		return false;
	for (size_t i = 0; i < v->len; i++) {
		uint8_t ch = ((const uint8_t *)v->p)[i];
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
			return false;
	}
	return true;
}

/* A stream of values is kept as two: `meta` (each value's tag, and the length of a TEXT or
 * BLOB) and `data` (the rest), so that the regular part compresses to almost nothing and
 * random keys are not interleaved with their tags. */
struct vstream {
	struct zila_buf *meta, *data;
};

/* One value from a body into a stream, hex text as its bytes. */
static int put_wire_val(struct vstream o, struct zila_view *in)
{
	uint8_t tag;
	uint64_t x;
	const uint8_t *p;
	struct zila_view text;
	int r = zila_view_get_u8(in, &tag);
	if (r != 0)
		return r;
	switch (tag) {
	case VAL_NULL:
		return zila_buf_put_u8(o.meta, tag);
	case VAL_INT:
		r = zila_view_get_varint(in, &x);
		r = r ? r : zila_buf_put_u8(o.meta, tag);
		return r ? r : zila_buf_put_varint(o.data, x);
	case VAL_REAL:
		r = zila_view_get_bytes(in, 8, &p);
		r = r ? r : zila_buf_put_u8(o.meta, tag);
		return r ? r : zila_buf_put(o.data, p, 8);
	case VAL_TEXT:
	case VAL_BLOB:
		break;
	default:
		return ZILA_EFORMAT;
	}
	if ((r = zila_view_get_lenbytes(in, ZILA_ENTRY_MAX, &text)) != 0)
		return r;
	struct zval v = { .type = tag, .p = text.p, .len = text.len };
	if (!is_hex(&v)) {
		r = zila_buf_put_u8(o.meta, tag);
		r = r ? r : zila_buf_put_varint(o.meta, text.len);
		return r ? r : zila_buf_put(o.data, text.p, text.len);
	}
	uint8_t bytes[256];
	size_t n = text.len / 2;
	r = zila_buf_put_u8(o.meta, TAG_HEX);
	r = r ? r : zila_buf_put_varint(o.meta, n);
	for (size_t off = 0; r == 0 && off < n; off += sizeof(bytes)) {
		size_t k = n - off < sizeof(bytes) ? n - off : sizeof(bytes);
		r = zila_hex_decode(bytes, k, (const char *)text.p + 2 * off, 2 * k);
		r = r ? r : zila_buf_put(o.data, bytes, k);
	}
	return r;
}

/* One value from a stream into a body. */
static int get_wire_val(struct vview *in, struct zila_buf *b)
{
	uint8_t tag;
	uint64_t x, len;
	const uint8_t *p;
	int r = zila_view_get_u8(&in->meta, &tag);
	if (r != 0)
		return r;
	switch (tag) {
	case VAL_NULL:
		return zila_buf_put_u8(b, tag);
	case VAL_INT:
		r = zila_view_get_varint(&in->data, &x);
		r = r ? r : zila_buf_put_u8(b, tag);
		return r ? r : zila_buf_put_varint(b, x);
	case VAL_REAL:
		r = zila_view_get_bytes(&in->data, 8, &p);
		r = r ? r : zila_buf_put_u8(b, tag);
		return r ? r : zila_buf_put(b, p, 8);
	case VAL_TEXT:
	case VAL_BLOB:
		r = zila_view_get_varint(&in->meta, &len);
		if (r == 0 && len > in->data.len)
			r = ZILA_ESHORT;
		r = r ? r : zila_view_get_bytes(&in->data, (size_t)len, &p);
		r = r ? r : zila_buf_put_u8(b, tag);
		r = r ? r : zila_buf_put_varint(b, len);
		return r ? r : zila_buf_put(b, p, (size_t)len);
	case TAG_HEX: {
		char hex[2 * 256 + 1];
		r = zila_view_get_varint(&in->meta, &len);
		if (r == 0 && len > in->data.len)
			r = ZILA_ESHORT;
		r = r ? r : zila_view_get_bytes(&in->data, (size_t)len, &p);
		r = r ? r : zila_buf_put_u8(b, VAL_TEXT);
		r = r ? r : zila_buf_put_varint(b, 2 * len);
		for (size_t off = 0; r == 0 && off < len; off += 256) {
			size_t k = len - off < 256 ? (size_t)len - off : 256;
			zila_hex_encode(hex, p + off, k);
			r = zila_buf_put(b, hex, 2 * k);
		}
		return r;
	}
	default:
		return ZILA_EFORMAT;
	}
}

/* The set of keys upserted by the entries this coder sent: a bit per hash, so a key may
 * seem upserted when it was not (it then goes whole), never the other way round. */
static size_t seen_bit(const uint8_t *key, size_t n)
{
	uint64_t h = 1469598103934665603u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ key[i]) * 1099511628211u;
	return (size_t)(h >> (64 - SEEN_BITS));
}

/* A row's key into its stream: by reference (its first ZILA_WIRE_REF_LEN bytes) when the
 * peer takes references, the change is an UPDATE and no entry sent before in this session
 * upserted it: the peer then held the row before the session (it holds what the sender's
 * replica held of the feeds it reads, or receives it first in this session). A DELETE goes
 * whole: a row written and deleted again between two seals leaves only its delete, of a key
 * no peer ever held (seal.c), which a reference could not name. */
static int put_key(struct zila_entry_coder *c, struct vstream o, struct zila_view *in, uint8_t op)
{
	struct zila_view peek = *in, text;
	uint8_t tag, key[256];
	if (!c->send_refs || zila_view_get_u8(&peek, &tag) != 0 || tag != VAL_TEXT ||
	    zila_view_get_lenbytes(&peek, ZILA_ENTRY_MAX, &text) != 0)
		return put_wire_val(o, in);
	struct zval v = { .type = VAL_TEXT, .p = text.p, .len = text.len };
	size_t n = text.len / 2;
	if (n < REF_MIN || n > sizeof(key) || !is_hex(&v) || zila_hex_decode(key, n, (const char *)text.p, text.len) != 0)
		return put_wire_val(o, in);
	size_t bit = seen_bit(key, n);
	if (op == 1) {
		/* made here, not per session: a session that upserts nothing (most incremental
		 * ones, and every one of the side that has nothing to send) never pays for it */
		if (c->seen == NULL && (c->seen = calloc(1, (size_t)1 << (SEEN_BITS - 3))) == NULL)
			return ZILA_ENOMEM;
		c->seen[bit >> 3] |= (uint8_t)(1u << (bit & 7));
		return put_wire_val(o, in);
	}
	if (op != 2)
		return put_wire_val(o, in);
	if (c->seen != NULL && ((c->seen[bit >> 3] >> (bit & 7)) & 1))
		return put_wire_val(o, in);
	*in = peek;
	int r = zila_buf_put_u8(o.meta, TAG_REF);
	r = r ? r : zila_buf_put_varint(o.meta, n);
	r = r ? r : zila_buf_put_varint(o.meta, ZILA_WIRE_REF_LEN);
	return r ? r : zila_buf_put(o.data, key, ZILA_WIRE_REF_LEN);
}

/* The candidates for a key by reference: lowercase hex of 2n digits starting with lo. */
static int ref_candidate(sqlite3_stmt *q, const char *lo, size_t n, char *found, int *nfound)
{
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(q, 0);
		size_t len = (size_t)sqlite3_column_bytes(q, 0);
		struct zval v = { .type = VAL_TEXT, .p = (const uint8_t *)k, .len = len };
		if (sqlite3_column_type(q, 0) != SQLITE_TEXT || k == NULL || len != 2 * n || !is_hex(&v) ||
		    memcmp(k, lo, strlen(lo)) != 0)
			continue;
		if (*nfound == 0 || memcmp(found, k, len) != 0)
			(*nfound)++;
		memcpy(found, k, len);
	}
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? 0 : ZILA_EDB;
}

/* Finds the one key of table `name` (its rows, and its deleted or parked rows) that starts
 * with the k bytes prefix and is n bytes long, as 2n hex digits into found. */
static int ref_resolve(struct zila_entry_coder *c, struct zila_view name, const uint8_t *prefix, size_t k,
		       size_t n, char *found)
{
	struct zila_store *s = c->resolve;
	char lo[2 * 256 + 1], hi[2 * 256 + 1];
	uint8_t up[256];
	int nfound = 0, r;
	if (s == NULL)
		return ZILA_EFORMAT; /* we did not offer to take them */
	struct table *t = store_table_by_name(s, (const char *)name.p, name.len);
	if (t == NULL || (t->pk_aff != 'T' && t->pk_aff != 'B'))
		return ZILA_EREF;
	/* [lo, hi): the keys that start with the prefix (hi: the prefix plus one) */
	zila_hex_encode(lo, prefix, k);
	memcpy(up, prefix, k);
	size_t i = k;
	while (i > 0 && up[i - 1] == 0xff)
		up[--i] = 0;
	bool top = i == 0; /* ff..ff: no upper bound */
	if (!top)
		up[i - 1]++;
	zila_hex_encode(hi, up, k);
	if (top)
		hi[0] = 'g'; /* past every hex digit */
	if (c->q_table == NULL || c->q_tid != t->id) {
		struct zila_buf q;
		sqlite3_finalize(c->q_table);
		c->q_table = NULL;
		zila_buf_init(&q, 4096);
		const char *col = t->cols[t->pk];
		r = zila_buf_put(&q, "SELECT \"", 8);
		for (const char *p = col; r == 0 && *p; p++)
			r = *p == '"' ? zila_buf_put(&q, "\"\"", 2) : zila_buf_put_u8(&q, (uint8_t)*p);
		r = r ? r : zila_buf_put(&q, "\" FROM \"", 8);
		for (const char *p = t->name; r == 0 && *p; p++)
			r = *p == '"' ? zila_buf_put(&q, "\"\"", 2) : zila_buf_put_u8(&q, (uint8_t)*p);
		r = r ? r : zila_buf_put(&q, "\" WHERE \"", 9);
		for (const char *p = col; r == 0 && *p; p++)
			r = *p == '"' ? zila_buf_put(&q, "\"\"", 2) : zila_buf_put_u8(&q, (uint8_t)*p);
		r = r ? r : zila_buf_put(&q, "\" >= ?1 AND \"", 13);
		for (const char *p = col; r == 0 && *p; p++)
			r = *p == '"' ? zila_buf_put(&q, "\"\"", 2) : zila_buf_put_u8(&q, (uint8_t)*p);
		r = r ? r : zila_buf_put(&q, "\" < ?2 LIMIT 3", 15); /* with its NUL */
		if (r == 0 && sqlite3_prepare_v2(s->db, (const char *)q.p, -1, &c->q_table, NULL) != SQLITE_OK)
			r = ZILA_EDB;
		zila_buf_release(&q);
		if (r != 0)
			return r;
		c->q_tid = t->id;
	}
	sqlite3_stmt *dead = store_stmt(s, "SELECT pk FROM zila_rows WHERE tid = ?1 AND pk >= ?2 AND pk < ?3 LIMIT 3");
	if (dead == NULL)
		return ZILA_EDB;
	sqlite3_bind_text(c->q_table, 1, lo, (int)(2 * k), SQLITE_TRANSIENT);
	sqlite3_bind_text(c->q_table, 2, hi, (int)(2 * k), SQLITE_TRANSIENT);
	sqlite3_bind_int64(dead, 1, t->id);
	sqlite3_bind_text(dead, 2, lo, (int)(2 * k), SQLITE_TRANSIENT);
	sqlite3_bind_text(dead, 3, hi, (int)(2 * k), SQLITE_TRANSIENT);
	lo[2 * k] = '\0';
	r = ref_candidate(c->q_table, lo, n, found, &nfound);
	r = r ? r : ref_candidate(dead, lo, n, found, &nfound);
	if (r != 0)
		return r;
	return nfound == 1 ? 0 : ZILA_EREF;
}

/* A row's key from its stream into a body: a key by reference is looked up (ref_resolve). */
static int get_key(struct zila_entry_coder *c, uint64_t t, struct vview *in, struct zila_buf *b)
{
	struct zila_view peek = in->meta;
	uint8_t tag;
	uint64_t n, k;
	const uint8_t *p;
	char found[2 * 256];
	if (zila_view_get_u8(&peek, &tag) != 0 || tag != TAG_REF)
		return get_wire_val(in, b);
	int r = zila_view_get_varint(&peek, &n);
	r = r ? r : zila_view_get_varint(&peek, &k);
	if (r == 0 && (n < REF_MIN || n > 256 || k < 1 || k > n))
		r = ZILA_EFORMAT;
	r = r ? r : zila_view_get_bytes(&in->data, (size_t)k, &p);
	if (r != 0)
		return r;
	in->meta = peek;
	if ((r = ref_resolve(c, c->tnames[t], p, (size_t)k, (size_t)n, found)) != 0)
		return r;
	c->used_ref = true;
	r = zila_buf_put_u8(b, VAL_TEXT);
	r = r ? r : zila_buf_put_varint(b, 2 * n);
	return r ? r : zila_buf_put(b, found, 2 * n);
}

static struct vstream vs(struct zila_entry_coder *c, size_t i)
{
	return (struct vstream){ &c->streams[2 * i], &c->streams[2 * i + 1] };
}

/* body (plain) -> c->cols: the directory, nchanges, then per stream lenbytes meta and
 * lenbytes data (stream 0, the ops, has only data). */
static int to_columns(struct zila_entry_coder *c, struct zila_view body)
{
	struct zila_view in = body;
	uint64_t ntab, nchanges;
	uint32_t first[4097];
	size_t nstreams;
	int r = read_dir(&in, &ntab, first, &nstreams, NULL);
	r = r ? r : zila_view_get_varint(&in, &nchanges);
	r = r ? r : streams_ready(c, 2 * nstreams);
	if (r != 0)
		return r;
	zila_buf_reset(&c->cols);
	r = zila_buf_put(&c->cols, body.p, body.len - in.len);
	struct zila_buf *ops = &c->streams[1];
	for (uint64_t k = 0; r == 0 && k < nchanges; k++) {
		uint64_t t, n, col;
		uint8_t op;
		r = zila_view_get_varint(&in, &t);
		r = r ? r : zila_view_get_u8(&in, &op);
		if (r == 0 && t >= ntab)
			r = ZILA_EFORMAT;
		if (r != 0)
			break;
		uint64_t ncols = first[t + 1] - first[t] - 1;
		r = zila_buf_put_varint(ops, t);
		r = r ? r : zila_buf_put_u8(ops, op);
		r = r ? r : put_key(c, vs(c, first[t + 1] - 1), &in, op);
		if (r == 0 && op == 1) {
			for (uint64_t i = 0; r == 0 && i < ncols; i++)
				r = put_wire_val(vs(c, first[t] + i), &in);
		} else if (r == 0 && op == 2) {
			r = zila_view_get_varint(&in, &n);
			if (r == 0 && n > ncols)
				r = ZILA_EFORMAT;
			r = r ? r : zila_buf_put_varint(ops, n);
			for (uint64_t i = 0; r == 0 && i < n; i++) {
				r = zila_view_get_varint(&in, &col);
				if (r == 0 && col >= ncols)
					r = ZILA_EFORMAT;
				r = r ? r : zila_buf_put_varint(ops, col);
				r = r ? r : put_wire_val(vs(c, first[t] + col), &in);
			}
		} else if (r == 0 && op != 3) {
			r = ZILA_EFORMAT;
		}
	}
	if (r == 0 && in.len != 0)
		r = ZILA_EFORMAT;
	for (size_t i = 0; r == 0 && i < 2 * nstreams; i++)
		r = zila_buf_put_lenbytes(&c->cols, c->streams[i].p, c->streams[i].len);
	return r;
}

/* cols -> c->body (plain) */
static int from_columns(struct zila_entry_coder *c, struct zila_view cols)
{
	struct zila_view in = cols;
	struct vview *st;
	uint64_t ntab, nchanges;
	uint32_t first[4097];
	size_t nstreams;
	if (c->tnames == NULL && (c->tnames = calloc(4096, sizeof(*c->tnames))) == NULL)
		return ZILA_ENOMEM;
	c->used_ref = false;
	int r = read_dir(&in, &ntab, first, &nstreams, c->tnames);
	r = r ? r : zila_view_get_varint(&in, &nchanges);
	if (r == 0 && nchanges > ZILA_ENTRY_MAX)
		r = ZILA_EFORMAT;
	if (r != 0)
		return r;
	if (nstreams > c->nviews_cap) {
		struct vview *nv = realloc(c->views, nstreams * sizeof(*nv));
		if (nv == NULL)
			return ZILA_ENOMEM;
		c->views = nv;
		c->nviews_cap = nstreams;
	}
	st = c->views;
	zila_buf_reset(&c->body);
	r = zila_buf_put(&c->body, cols.p, cols.len - in.len);
	for (size_t i = 0; r == 0 && i < nstreams; i++) {
		r = zila_view_get_lenbytes(&in, COLUMNS_MAX, &st[i].meta);
		r = r ? r : zila_view_get_lenbytes(&in, COLUMNS_MAX, &st[i].data);
	}
	if (r == 0 && in.len != 0)
		r = ZILA_EFORMAT;
	struct zila_view *ops = &st[0].data;
	for (uint64_t k = 0; r == 0 && k < nchanges; k++) {
		uint64_t t, n, col;
		uint8_t op;
		r = zila_view_get_varint(ops, &t);
		r = r ? r : zila_view_get_u8(ops, &op);
		if (r == 0 && (t >= ntab || op < 1 || op > 3))
			r = ZILA_EFORMAT;
		if (r != 0)
			break;
		uint64_t ncols = first[t + 1] - first[t] - 1;
		r = zila_buf_put_varint(&c->body, t);
		r = r ? r : zila_buf_put_u8(&c->body, op);
		r = r ? r : get_key(c, t, &st[first[t + 1] - 1], &c->body);
		if (r == 0 && op == 1) {
			for (uint64_t i = 0; r == 0 && i < ncols; i++)
				r = get_wire_val(&st[first[t] + i], &c->body);
		} else if (r == 0 && op == 2) {
			r = zila_view_get_varint(ops, &n);
			if (r == 0 && n > ncols)
				r = ZILA_EFORMAT;
			r = r ? r : zila_buf_put_varint(&c->body, n);
			for (uint64_t i = 0; r == 0 && i < n; i++) {
				r = zila_view_get_varint(ops, &col);
				if (r == 0 && col >= ncols)
					r = ZILA_EFORMAT;
				r = r ? r : zila_buf_put_varint(&c->body, col);
				r = r ? r : get_wire_val(&st[first[t] + col], &c->body);
			}
		}
	}
	/* Every stream used up: the column form says exactly one body. */
	for (size_t i = 0; r == 0 && i < nstreams; i++)
		if (st[i].meta.len != 0 || st[i].data.len != 0)
			r = ZILA_EFORMAT;
	return r == ZILA_ETOOBIG || r == ZILA_ESHORT ? ZILA_EFORMAT : r;
}

int zila_entry_to_wire(struct zila_entry_coder *c, struct zila_view entry, struct zila_buf *out)
{
	struct entry e;
	int r = entry_parse_head(entry, &e, false);
	if (r == 0 && e.version >= 2 && (r = entry_inflate(&e, c->dc)) == 0 && (r = to_columns(c, e.body)) == 0) {
		r = zila_buf_put_u8(out, WIRE_COLUMNS);
		r = r ? r : zila_buf_put_lenbytes(out, entry.p, e.head_len);
		r = r ? r : zila_buf_put_lenbytes(out, c->cols.p, c->cols.len);
		r = r ? r : zila_buf_put(out, entry.p + entry.len - 64, 64);
		entry_release(&e);
		return r;
	}
	entry_release(&e);
	/* Older entries, and anything the column form does not fit, travel as stored. */
	r = zila_buf_put_u8(out, WIRE_VERBATIM);
	return r ? r : zila_buf_put_lenbytes(out, entry.p, entry.len);
}

void zila_entry_coder_plain(struct zila_entry_coder *c, bool plain)
{
	c->plain = plain;
}

int zila_entry_from_wire(struct zila_entry_coder *c, struct zila_view *in, struct zila_buf *out)
{
	uint8_t kind;
	struct zila_view head, cols;
	const uint8_t *sig;
	int r = zila_view_get_u8(in, &kind);
	if (r == 0 && kind == WIRE_VERBATIM) {
		r = zila_view_get_lenbytes(in, ZILA_ENTRY_MAX + 4096, &head);
		return r ? r : zila_buf_put(out, head.p, head.len);
	}
	if (r == 0 && kind != WIRE_COLUMNS)
		r = ZILA_EFORMAT;
	r = r ? r : zila_view_get_lenbytes(in, HEAD_MAX, &head);
	r = r ? r : zila_view_get_lenbytes(in, COLUMNS_MAX, &cols);
	r = r ? r : zila_view_get_bytes(in, 64, &sig);
	if (r == 0 && head.len == 0)
		r = ZILA_EFORMAT;
	r = r ? r : from_columns(c, cols);
	if (r != 0)
		return r == ZILA_ESHORT || r == ZILA_ETOOBIG ? ZILA_EFORMAT : r;
	/* Stored as the seal stores its own: compressed (zstd, fast level) when that is smaller. */
	struct zila_view body = zila_buf_view(&c->body);
	bool packed = false;
	if (body.len > 256 && !c->plain) {
		size_t bound = ZSTD_compressBound(body.len);
		zila_buf_reset(&c->packed);
		if (zila_buf_reserve(&c->packed, bound) == 0) {
			size_t n = ZSTD_compressCCtx(c->cc, c->packed.p, bound, body.p, body.len, 1);
			if (!ZSTD_isError(n) && n < body.len) {
				c->packed.len = n;
				packed = true;
			}
		}
	}
	size_t at = out->len;
	r = zila_buf_put(out, head.p, head.len);
	r = r ? r : zila_buf_put_u8(out, packed ? 1 : 0);
	r = r ? r : zila_buf_put_lenbytes(out, packed ? c->packed.p : body.p, packed ? c->packed.len : body.len);
	r = r ? r : zila_buf_put(out, sig, 64);
	if (r == 0 && c->used_ref) {
		/* A key found by its prefix must be the one its author signed: a replica that
		 * lacks the row and holds another with that prefix would otherwise refuse the
		 * entry as forged. Such an entry is asked for again, whole (PROTOCOL.md). */
		struct entry e;
		r = entry_parse_head(zila_view_make(out->p + at, out->len - at), &e, false);
		if (r == 0 && entry_sign_check(head.p, head.len, body, sig, e.info.origin) != 0)
			r = ZILA_EREF;
		entry_release(&e);
		if (r != 0 && r != ZILA_EREF && r != ZILA_ENOMEM)
			r = ZILA_EFORMAT;
	}
	return r;
}
