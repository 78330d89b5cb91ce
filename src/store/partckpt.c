/* Signed checkpoints of a partition's state (proto/CHECKPOINT.md): HQ writes every row of a
 * district with its merge registers; a replica merges them register by register, as it
 * merges entries, so a clone costs what the state costs, not what its history did. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "store_int.h"
#include "zila/log.h"

#define MAGIC "ZILACKPT"
#define SIG_CONTEXT "zila-checkpoint-1"
#define FEEDS_MAX 1000000u
#define TABLES_MAX 4096u
#define COLS_MAX 32767u
#define CHUNKS_MAX 1000000u

/* --- parsing ------------------------------------------------------------------------ */

struct cfeed {
	uint8_t origin[32];
	uint64_t seq, head_hlc;
	uint8_t chain[ZILA_CHAIN_LEN];
};
struct ctable {
	struct zila_view name;
	uint64_t ncols, pk;
	struct zila_view *cols;
};
struct ckpt_parsed {
	struct zila_ckpt_info info;
	struct cfeed *feeds;
	struct ctable *tables;
	uint64_t ntables;
	const uint8_t *hashes; /* nchunks × 32 */
	struct zila_view chunks; /* u32be len | frame, nchunks times */
};

static void parsed_release(struct ckpt_parsed *p)
{
	for (uint64_t i = 0; p->tables != NULL && i < p->ntables; i++)
		free(p->tables[i].cols);
	free(p->tables);
	free(p->feeds);
	memset(p, 0, sizeof(*p));
}

static int sig_check(const uint8_t *head, size_t head_len, const uint8_t sig[64], const uint8_t pk[32])
{
	crypto_sign_state st;
	crypto_sign_init(&st);
	crypto_sign_update(&st, (const uint8_t *)SIG_CONTEXT, sizeof(SIG_CONTEXT) - 1);
	crypto_sign_update(&st, head, head_len);
	return crypto_sign_final_verify(&st, sig, pk) == 0 ? 0 : ZILA_ESIG;
}

static int sig_make(const uint8_t *head, size_t head_len, uint8_t sig[64], const uint8_t *sk)
{
	crypto_sign_state st;
	crypto_sign_init(&st);
	crypto_sign_update(&st, (const uint8_t *)SIG_CONTEXT, sizeof(SIG_CONTEXT) - 1);
	crypto_sign_update(&st, head, head_len);
	return crypto_sign_final_create(&st, sig, NULL, sk) == 0 ? 0 : ZILA_ESIG;
}

static bool name_ok(struct zila_view v)
{
	return v.len > 0 && memchr(v.p, 0, v.len) == NULL;
}

/* Reads and checks everything but who signed. */
static int parse(struct zila_view bytes, struct ckpt_parsed *p)
{
	struct zila_view in = bytes;
	const uint8_t *magic, *signer, *sig;
	uint8_t version;
	uint64_t x;
	struct zila_view part;
	int r;
	memset(p, 0, sizeof(*p));
	if ((r = zila_view_get_bytes(&in, 8, &magic)) != 0 || memcmp(magic, MAGIC, 8) != 0)
		return ZILA_EFORMAT;
	if ((r = zila_view_get_u8(&in, &version)) != 0)
		return ZILA_EFORMAT;
	if (version != ZILA_CKPT_VERSION)
		return ZILA_EVERSION;
	r = zila_view_get_bytes(&in, 32, &signer);
	r = r ? r : zila_view_get_lenbytes(&in, ZILA_PART_MAX, &part);
	r = r ? r : zila_view_get_u64be(&in, &p->info.hlc);
	r = r ? r : zila_view_get_varint(&in, &x);
	if (r != 0 || x > UINT32_MAX || part.len == 0 || !name_ok(part))
		return ZILA_EFORMAT;
	memcpy(p->info.signer, signer, 32);
	memcpy(p->info.part, part.p, part.len);
	p->info.part[part.len] = '\0';
	p->info.schema = (uint32_t)x;
	if ((r = zila_view_get_varint(&in, &p->info.nfeeds)) != 0 || p->info.nfeeds > FEEDS_MAX ||
	    p->info.nfeeds > in.len / (32 + 1 + ZILA_CHAIN_LEN + 8))
		return ZILA_EFORMAT;
	if ((p->feeds = calloc(p->info.nfeeds + 1, sizeof(*p->feeds))) == NULL)
		return ZILA_ENOMEM;
	for (uint64_t i = 0; i < p->info.nfeeds; i++) {
		struct cfeed *f = &p->feeds[i];
		r = zila_view_get_copy(&in, f->origin, 32);
		r = r ? r : zila_view_get_varint(&in, &f->seq);
		r = r ? r : zila_view_get_copy(&in, f->chain, ZILA_CHAIN_LEN);
		r = r ? r : zila_view_get_u64be(&in, &f->head_hlc);
		if (r != 0 || f->seq == 0 || f->seq > INT64_MAX || (i > 0 && memcmp(p->feeds[i - 1].origin, f->origin, 32) >= 0))
			return ZILA_EFORMAT;
		if (f->head_hlc > p->info.max_hlc)
			p->info.max_hlc = f->head_hlc;
	}
	if ((r = zila_view_get_varint(&in, &p->ntables)) != 0 || p->ntables > TABLES_MAX || p->ntables > in.len / 3)
		return ZILA_EFORMAT;
	if ((p->tables = calloc(p->ntables + 1, sizeof(*p->tables))) == NULL)
		return ZILA_ENOMEM;
	for (uint64_t i = 0; i < p->ntables; i++) {
		struct ctable *t = &p->tables[i];
		r = zila_view_get_lenbytes(&in, 255, &t->name);
		r = r ? r : zila_view_get_varint(&in, &t->ncols);
		if (r != 0 || !name_ok(t->name) || t->ncols == 0 || t->ncols > COLS_MAX || t->ncols > in.len)
			return ZILA_EFORMAT;
		if ((t->cols = calloc(t->ncols, sizeof(*t->cols))) == NULL)
			return ZILA_ENOMEM;
		for (uint64_t c = 0; c < t->ncols; c++)
			if (zila_view_get_lenbytes(&in, 255, &t->cols[c]) != 0 || !name_ok(t->cols[c]))
				return ZILA_EFORMAT;
		if (zila_view_get_varint(&in, &t->pk) != 0 || t->pk >= t->ncols)
			return ZILA_EFORMAT;
	}
	r = zila_view_get_varint(&in, &p->info.nrows);
	r = r ? r : zila_view_get_varint(&in, &p->info.nchunks);
	if (r != 0 || p->info.nchunks > CHUNKS_MAX || p->info.nchunks > in.len / 32)
		return ZILA_EFORMAT;
	if (zila_view_get_bytes(&in, (size_t)p->info.nchunks * 32, &p->hashes) != 0)
		return ZILA_EFORMAT;
	size_t head_len = (size_t)(in.p - bytes.p);
	if (zila_view_get_bytes(&in, 64, &sig) != 0)
		return ZILA_EFORMAT;
	if (sig_check(bytes.p, head_len, sig, p->info.signer) != 0)
		return ZILA_ESIG;
	/* every chunk is there, as long as it says, with the hash the signed head names */
	p->chunks = in;
	for (uint64_t i = 0; i < p->info.nchunks; i++) {
		uint32_t len;
		const uint8_t *c;
		uint8_t h[32];
		if (zila_view_get_u32be(&in, &len) != 0 || len == 0 || len > ZILA_CKPT_CHUNK_MAX ||
		    zila_view_get_bytes(&in, len, &c) != 0)
			return ZILA_EFORMAT;
		crypto_generichash(h, 32, c, len, NULL, 0);
		if (sodium_memcmp(h, p->hashes + 32 * i, 32) != 0)
			return ZILA_ESIG;
	}
	return in.len == 0 ? 0 : ZILA_EFORMAT;
}

int zila_checkpoint_verify(struct zila_view bytes, struct zila_ckpt_info *out)
{
	struct ckpt_parsed p;
	int r = parse(bytes, &p);
	if (out != NULL)
		*out = p.info;
	parsed_release(&p);
	return r;
}

int zila_checkpoint_vector(struct zila_view bytes, struct zila_vector *out)
{
	struct ckpt_parsed p;
	int r = parse(bytes, &p);
	out->heads = NULL;
	out->nheads = 0;
	if (r == 0 && (out->heads = calloc(p.info.nfeeds + 1, sizeof(*out->heads))) == NULL)
		r = ZILA_ENOMEM;
	for (uint64_t i = 0; r == 0 && i < p.info.nfeeds; i++) {
		struct zila_feed_head *h = &out->heads[out->nheads++];
		memcpy(h->origin, p.feeds[i].origin, 32);
		part_copy(h->part, p.info.part);
		h->seq = p.feeds[i].seq;
		memcpy(h->chain, p.feeds[i].chain, ZILA_CHAIN_LEN);
	}
	parsed_release(&p);
	return r;
}

/* --- making ------------------------------------------------------------------------- */

struct maker {
	struct zila_store *s;
	struct zila_buf rows;   /* the current chunk's rows */
	struct zila_buf plain;  /* the current chunk as it is compressed */
	struct zila_buf chunks; /* u32be len | frame, every chunk so far */
	struct zila_buf hashes;
	int64_t *oids;          /* the current chunk's origins, by local id */
	size_t noids, cap;
	uint64_t nrows_chunk, nrows, nchunks;
	void *frame;
	size_t frame_cap;
	/* The current chunk, of one table, in columns (each compresses with its like): keys,
	 * flags, existence versions, then per column its versions and its values. */
	struct zila_buf *st;
	int nst;
	uint64_t tidx;
	size_t st_len;
};

static int streams_for(struct maker *m, int ncols)
{
	for (int i = 0; i < m->nst; i++)
		zila_buf_release(&m->st[i]);
	free(m->st);
	m->nst = 0;
	if ((m->st = calloc((size_t)(3 + 2 * ncols), sizeof(*m->st))) == NULL)
		return ZILA_ENOMEM;
	m->nst = 3 + 2 * ncols;
	for (int i = 0; i < m->nst; i++)
		zila_buf_init(&m->st[i], 64u << 20);
	return 0;
}

static int origin_index(struct maker *m, int64_t oid, uint64_t *idx)
{
	for (size_t i = 0; i < m->noids; i++)
		if (m->oids[i] == oid) {
			*idx = i + 1;
			return 0;
		}
	if (m->noids == m->cap) {
		size_t n = m->cap ? m->cap * 2 : 16;
		int64_t *o = realloc(m->oids, n * sizeof(*o));
		if (o == NULL)
			return ZILA_ENOMEM;
		m->oids = o;
		m->cap = n;
	}
	m->oids[m->noids++] = oid;
	*idx = m->noids;
	return 0;
}

static int put_ver(struct maker *m, struct zila_buf *b, const struct ver *v)
{
	uint64_t idx = 0;
	if (v->hlc == 0 && v->origin == 0)
		return zila_buf_put_varint(b, 0);
	int r = origin_index(m, v->origin, &idx);
	r = r ? r : zila_buf_put_varint(b, idx);
	r = r ? r : zila_buf_put_u64be(b, v->hlc);
	return r ? r : zila_buf_put_varint(b, v->seq);
}

static int flush_chunk(struct maker *m)
{
	if (m->nrows_chunk == 0)
		return 0;
	zila_buf_reset(&m->plain);
	int r = zila_buf_put_varint(&m->plain, m->noids);
	for (size_t i = 0; r == 0 && i < m->noids; i++) {
		const uint8_t *key = store_origin_key(m->s, m->oids[i]);
		r = key == NULL ? ZILA_EINTERNAL : zila_buf_put(&m->plain, key, 32);
	}
	r = r ? r : zila_buf_put_varint(&m->plain, m->tidx);
	r = r ? r : zila_buf_put_varint(&m->plain, m->nrows_chunk);
	for (int i = 0; r == 0 && i < m->nst; i++) {
		r = zila_buf_put_lenbytes(&m->plain, m->st[i].p, m->st[i].len);
		zila_buf_reset(&m->st[i]);
	}
	m->st_len = 0;
	if (r != 0)
		return r;
	size_t bound = ZSTD_compressBound(m->plain.len);
	if (bound > m->frame_cap) {
		void *f = realloc(m->frame, bound);
		if (f == NULL)
			return ZILA_ENOMEM;
		m->frame = f;
		m->frame_cap = bound;
	}
	size_t n = ZSTD_compress(m->frame, m->frame_cap, m->plain.p, m->plain.len, 9);
	if (ZSTD_isError(n) || n > ZILA_CKPT_CHUNK_MAX)
		return ZILA_ETOOBIG;
	uint8_t h[32];
	crypto_generichash(h, 32, m->frame, n, NULL, 0);
	r = zila_buf_put_u32be(&m->chunks, (uint32_t)n);
	r = r ? r : zila_buf_put(&m->chunks, m->frame, n);
	r = r ? r : zila_buf_put(&m->hashes, h, 32);
	m->nchunks++;
	m->nrows_chunk = 0;
	m->noids = 0;
	zila_buf_reset(&m->rows);
	return r;
}

static int put_row(struct maker *m, const struct table *t, const struct zval *pk, const struct rowstate *row)
{
	size_t before = 0, after = 0;
	for (int i = 0; i < m->nst; i++)
		before += m->st[i].len;
	/* most rows were written whole by one change: one version says it for every register */
	bool uniform = row->ever.hlc != 0 || row->ever.origin != 0;
	for (int c = 0; uniform && c < t->ncols; c++)
		uniform = row->cver[c].hlc == row->ever.hlc && row->cver[c].origin == row->ever.origin &&
			  row->cver[c].seq == row->ever.seq;
	int r = val_put(&m->st[0], pk);
	r = r ? r : zila_buf_put_u8(&m->st[1], (uint8_t)((row->exists ? 1 : 0) | (uniform ? 2 : 0)));
	r = r ? r : put_ver(m, &m->st[2], &row->ever);
	for (int c = 0; r == 0 && c < t->ncols; c++) {
		const struct ver *v = &row->cver[c];
		if (!uniform)
			r = put_ver(m, &m->st[3 + 2 * c], v);
		if (r == 0 && c != t->pk && (v->hlc != 0 || v->origin != 0))
			r = val_put(&m->st[4 + 2 * c], &row->vals[c]);
	}
	if (r != 0)
		return r;
	for (int i = 0; i < m->nst; i++)
		after += m->st[i].len;
	m->st_len += after - before;
	m->nrows_chunk++;
	m->nrows++;
	return m->st_len >= ZILA_CKPT_CHUNK_SOFT ? flush_chunk(m) : 0;
}

static int make_rows(struct maker *m, const char *part, uint64_t tidx, struct table *t)
{
	struct zila_store *s = m->s;
	sqlite3_stmt *q = NULL;
	struct rowstate row;
	int r = ZILA_EDB, rc;
	row_init(&row, t->ncols);
	/* a chunk holds rows of one table */
	if ((r = flush_chunk(m)) != 0 || (r = streams_for(m, t->ncols)) != 0)
		goto out;
	m->tidx = tidx;
	r = ZILA_EDB;
	/* Rows the table shows in its rowid order (the order they were written in, which
	 * compresses as the entries did: by key, random ids scatter every column), then the
	 * others (deleted, parked) by key; a key once, wherever its state is. */
	if (sqlite3_prepare_v2(s->db,
			       "SELECT pk FROM (SELECT pk, rid AS o FROM zila_live WHERE tid = ?1 UNION ALL"
			       " SELECT pk, NULL FROM zila_rows WHERE tid = ?1) GROUP BY pk ORDER BY min(o) NULLS LAST, pk",
			       -1, &q, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_int64(q, 1, t->id);
	r = 0;
	while (r == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct zval pk;
		val_from_column(&pk, q, 0);
		if ((r = row_load(s, t, &pk, &row, true)) != 0)
			break;
		if (!row.known || strcmp(row.part, part) != 0)
			continue;
		r = put_row(m, t, &pk, &row);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = ZILA_EDB;
out:
	row_release(&row);
	sqlite3_finalize(q);
	return r;
}

/* The feed heads of part, sorted by origin key: the vector the rows are at. */
static int make_feeds(struct zila_store *s, const char *part, struct zila_buf *b, uint64_t *hlc_max)
{
	sqlite3_stmt *q = NULL;
	int r = ZILA_EDB, rc;
	uint64_t n = 0;
	struct zila_buf tmp;
	zila_buf_init(&tmp, 1u << 30);
	if (sqlite3_prepare_v2(s->db,
			       "SELECT o.key, f.head, f.chain, coalesce(f.head_hlc,"
			       " (SELECT e.hlc FROM zila_entries e WHERE e.feed = f.id AND e.seq = f.head), 0)"
			       " FROM zila_feeds f JOIN zila_origins o ON o.id = f.origin WHERE f.part = ? AND f.head > 0"
			       " ORDER BY o.key",
			       -1, &q, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(q, 1, part, -1, SQLITE_STATIC);
	r = 0;
	while (r == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		uint8_t chain[ZILA_CHAIN_LEN] = { 0 };
		if (sqlite3_column_bytes(q, 0) != 32)
			continue;
		if (sqlite3_column_bytes(q, 2) == ZILA_CHAIN_LEN)
			memcpy(chain, sqlite3_column_blob(q, 2), ZILA_CHAIN_LEN);
		uint64_t hh = (uint64_t)sqlite3_column_int64(q, 3);
		if (hh > *hlc_max)
			*hlc_max = hh;
		r = zila_buf_put(&tmp, sqlite3_column_blob(q, 0), 32);
		r = r ? r : zila_buf_put_varint(&tmp, (uint64_t)sqlite3_column_int64(q, 1));
		r = r ? r : zila_buf_put(&tmp, chain, ZILA_CHAIN_LEN);
		r = r ? r : zila_buf_put_u64be(&tmp, hh);
		n++;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = ZILA_EDB;
	r = r ? r : zila_buf_put_varint(b, n);
	r = r ? r : zila_buf_put(b, tmp.p, tmp.len);
out:
	zila_buf_release(&tmp);
	sqlite3_finalize(q);
	return r;
}

static int64_t count1(struct zila_store *s, const char *sql, const char *part)
{
	sqlite3_stmt *q = NULL;
	int64_t n = -1;
	if (sqlite3_prepare_v2(s->db, sql, -1, &q, NULL) == SQLITE_OK) {
		sqlite3_bind_text(q, 1, part, -1, SQLITE_STATIC);
		if (sqlite3_step(q) == SQLITE_ROW)
			n = sqlite3_column_int64(q, 0);
	}
	sqlite3_finalize(q);
	return n;
}

static int keep_checkpoint(struct zila_store *s, const struct zila_ckpt_info *c, struct zila_view bytes)
{
	sqlite3_stmt *q = NULL;
	int r = ZILA_EDB;
	/* the newest one of the partition is kept; an older one arriving later changes nothing */
	if (sqlite3_prepare_v2(s->db,
			       "INSERT INTO zila_checkpoints(part, hlc, signer, bytes, at) VALUES (?1, ?2, ?3, ?4, ?5)"
			       " ON CONFLICT(part) DO UPDATE SET hlc = excluded.hlc, signer = excluded.signer,"
			       " bytes = excluded.bytes, at = excluded.at WHERE excluded.hlc > zila_checkpoints.hlc",
			       -1, &q, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(q, 1, c->part, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, (int64_t)c->hlc);
	sqlite3_bind_blob(q, 3, c->signer, 32, SQLITE_STATIC);
	sqlite3_bind_blob(q, 4, bytes.p, (int)bytes.len, SQLITE_STATIC);
	sqlite3_bind_int64(q, 5, (int64_t)(store_now_ms(s) / 1000));
	r = sqlite3_step(q) == SQLITE_DONE ? 0 : ZILA_EDB;
	/* HQ goes by its heads when devices acknowledge it (collect.c) */
	if (r == 0 && sqlite3_changes(s->db) > 0)
		r = store_ckpt_heads_note(s, c->part, c->hlc, bytes);
out:
	sqlite3_finalize(q);
	return r;
}

int zila_store_checkpoint_make(struct zila_store *s, const char *part, struct zila_ckpt_info *info,
			       struct zila_error *err)
{
	struct maker m;
	struct zila_buf head, out;
	int r;
	bool began = false;
	memset(&m, 0, sizeof(m));
	if (info != NULL)
		memset(info, 0, sizeof(*info));
	if (part == NULL || part[0] == '\0' || strlen(part) > ZILA_PART_MAX)
		return zila_error_set(err, ZILA_EINVAL,
				      "a checkpoint is of one district partition, not of the org-wide one (its "
				      "catalogues travel as entries)");
	if ((r = zila_store_seal(s, NULL, err)) != 0)
		return r;
	m.s = s;
	zila_buf_init(&m.rows, 64u << 20);
	zila_buf_init(&m.plain, 64u << 20);
	zila_buf_init(&m.chunks, SIZE_MAX);
	zila_buf_init(&m.hashes, SIZE_MAX);
	zila_buf_init(&head, SIZE_MAX);
	zila_buf_init(&out, SIZE_MAX);
	if ((r = store_begin(s, err)) != 0)
		goto done;
	began = true;
	int64_t held = count1(s,
			      "SELECT count(*) FROM zila_entries e JOIN zila_feeds f ON f.id = e.feed"
			      " WHERE f.part = ? AND e.applied = 0",
			      part);
	if (held != 0) {
		r = held < 0 ? store_db_error(s, err, "cannot count held entries")
			     : zila_error_set(err, ZILA_ESCHEMA,
					      "%lld entries of district '%s' wait for a schema this replica lacks; "
					      "no checkpoint is made until they apply",
					      (long long)held, part);
		goto done;
	}
	/* a date of its own, past everything it covers: the newest checkpoint of a district wins */
	uint64_t hlc = store_hlc_tick(s), max_hlc = 0;
	r = zila_buf_put(&head, MAGIC, 8);
	r = r ? r : zila_buf_put_u8(&head, ZILA_CKPT_VERSION);
	r = r ? r : zila_buf_put(&head, s->pk, 32);
	r = r ? r : zila_buf_put_lenbytes(&head, part, strlen(part));
	r = r ? r : zila_buf_put_u64be(&head, hlc);
	r = r ? r : zila_buf_put_varint(&head, (uint64_t)s->schema);
	r = r ? r : make_feeds(s, part, &head, &max_hlc);
	uint64_t ntab = 0;
	for (int i = 0; i < s->ntables; i++)
		ntab += s->tables[i]->pcol >= 0;
	r = r ? r : zila_buf_put_varint(&head, ntab);
	uint64_t tidx = 0;
	for (int i = 0; r == 0 && i < s->ntables; i++) {
		struct table *t = s->tables[i];
		if (t->pcol < 0)
			continue;
		r = zila_buf_put_lenbytes(&head, t->name, strlen(t->name));
		r = r ? r : zila_buf_put_varint(&head, (uint64_t)t->ncols);
		for (int c = 0; r == 0 && c < t->ncols; c++)
			r = zila_buf_put_lenbytes(&head, t->cols[c], strlen(t->cols[c]));
		r = r ? r : zila_buf_put_varint(&head, (uint64_t)t->pk);
		r = r ? r : make_rows(&m, part, tidx++, t);
	}
	r = r ? r : flush_chunk(&m);
	r = r ? r : zila_buf_put_varint(&head, m.nrows);
	r = r ? r : zila_buf_put_varint(&head, m.nchunks);
	r = r ? r : zila_buf_put(&head, m.hashes.p, m.hashes.len);
	uint8_t sig[64];
	r = r ? r : sig_make(head.p, head.len, sig, s->sk);
	r = r ? r : zila_buf_put(&out, head.p, head.len);
	r = r ? r : zila_buf_put(&out, sig, 64);
	r = r ? r : zila_buf_put(&out, m.chunks.p, m.chunks.len);
	struct zila_ckpt_info ci;
	memset(&ci, 0, sizeof(ci));
	memcpy(ci.signer, s->pk, 32);
	part_copy(ci.part, part);
	ci.hlc = hlc;
	ci.schema = (uint32_t)s->schema;
	ci.nrows = m.nrows;
	ci.nchunks = m.nchunks;
	ci.max_hlc = max_hlc;
	r = r ? r : keep_checkpoint(s, &ci, zila_view_make(out.p, out.len));
	r = r ? r : store_save_hlc(s);
	if (r != 0) {
		r = r == ZILA_ENOMEM ? zila_error_set(err, r, "out of memory")
				     : store_db_error(s, err, "cannot make a checkpoint");
		goto done;
	}
	began = false;
	if ((r = store_commit(s, err)) == 0 && info != NULL) {
		*info = ci;
		info->nfeeds = (uint64_t)count1(s, "SELECT count(*) FROM zila_feeds WHERE part = ? AND head > 0", part);
	}
done:
	if (began)
		store_rollback(s);
	free(m.oids);
	free(m.frame);
	for (int i = 0; i < m.nst; i++)
		zila_buf_release(&m.st[i]);
	free(m.st);
	zila_buf_release(&m.rows);
	zila_buf_release(&m.plain);
	zila_buf_release(&m.chunks);
	zila_buf_release(&m.hashes);
	zila_buf_release(&head);
	zila_buf_release(&out);
	return r;
}

int zila_store_checkpoint_get(struct zila_store *s, const char *part, uint8_t **bytes, size_t *len)
{
	sqlite3_stmt *q = NULL;
	int r = ZILA_EDB;
	*bytes = NULL;
	*len = 0;
	if (sqlite3_prepare_v2(s->db, "SELECT bytes FROM zila_checkpoints WHERE part = ?", -1, &q, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(q, 1, part, -1, SQLITE_STATIC);
	int rc = sqlite3_step(q);
	if (rc == SQLITE_DONE) {
		r = ZILA_ENOTFOUND;
	} else if (rc == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(q, 0);
		if ((*bytes = malloc(n + 1)) == NULL) {
			r = ZILA_ENOMEM;
			goto out;
		}
		memcpy(*bytes, sqlite3_column_blob(q, 0), n);
		*len = n;
		r = 0;
	}
out:
	sqlite3_finalize(q);
	return r;
}

int zila_store_checkpoint_each(struct zila_store *s, zila_ckpt_fn fn, void *ctx)
{
	sqlite3_stmt *q = NULL;
	int r = ZILA_EDB, rc;
	if (sqlite3_prepare_v2(s->db, "SELECT bytes FROM zila_checkpoints ORDER BY part", -1, &q, NULL) != SQLITE_OK)
		goto out;
	r = 0;
	while (r == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct zila_ckpt_info ci;
		size_t n = (size_t)sqlite3_column_bytes(q, 0);
		if (zila_checkpoint_verify(zila_view_make(sqlite3_column_blob(q, 0), n), &ci) != 0)
			continue;
		r = fn(ctx, &ci, n);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = ZILA_EDB;
out:
	sqlite3_finalize(q);
	return r;
}

/* --- merging ------------------------------------------------------------------------ */

struct mtable {
	struct table *t;
	int *map; /* checkpoint column -> local column */
	uint64_t pk;
};

struct merger {
	struct zila_store *s;
	const struct ckpt_parsed *p;
	struct mtable *tabs;
	struct zila_apply_stats *st;
	int64_t *oids; /* the current chunk's origins, local ids */
	uint64_t noids;
	struct rowstate row;
	int row_cols;
	struct zila_buf keybuf[2];
	bool seen, seen_all; /* note the rows it carries (collect.c) */
	sqlite3_stmt *seen_st;
};

static int get_ver(struct merger *m, struct zila_view *in, struct ver *v)
{
	uint64_t idx;
	memset(v, 0, sizeof(*v));
	int r = zila_view_get_varint(in, &idx);
	if (r != 0 || idx == 0)
		return r;
	if (idx > m->noids)
		return ZILA_EFORMAT;
	v->origin = m->oids[idx - 1];
	r = zila_view_get_u64be(in, &v->hlc);
	r = r ? r : zila_view_get_varint(in, &v->seq);
	if (r == 0 && (v->hlc == 0 || v->seq == 0))
		r = ZILA_EFORMAT;
	return r;
}

static bool pcol_matches(const struct zval *v, const char *part)
{
	return v->type == VAL_TEXT && strlen(part) == v->len && memcmp(part, v->p, v->len) == 0;
}

/* One row, read from the chunk's column streams (cur: keys, flags, existence versions,
 * then per column its versions and values) of table ti. */
static int merge_row(struct merger *m, uint64_t ti, struct zila_view *cur)
{
	struct zila_store *s = m->s;
	uint8_t flags;
	struct zval pk, val;
	struct ver v;
	struct ver ever;
	int r = val_get(&cur[0], &pk);
	r = r ? r : zila_view_get_u8(&cur[1], &flags);
	if (r != 0 || pk.type == VAL_NULL || pk.type == VAL_REAL || flags > 3)
		return ZILA_EFORMAT;
	bool uniform = flags & 2;
	if ((r = get_ver(m, &cur[2], &ever)) != 0)
		return r;
	if (uniform && ever.origin == 0)
		return ZILA_EFORMAT;
	struct mtable *mt = &m->tabs[ti];
	struct table *t = mt->t;
	uint64_t ncols = m->p->tables[ti].ncols;
	if (t == NULL) {
		/* a table this replica's schema, at the checkpoint's version or later, does not have
		 * (undone, or lost to another HQ device's change): its rows have no place here */
		for (uint64_t c = 0; r == 0 && c < ncols; c++) {
			if (uniform)
				v = ever;
			else
				r = get_ver(m, &cur[3 + 2 * c], &v);
			if (r == 0 && c != mt->pk && v.origin != 0)
				r = val_get(&cur[4 + 2 * c], &val);
		}
		return r;
	}
	if ((r = key_canon(s, t, &pk, m->keybuf)) != 0)
		return r;
	struct rowstate *row = &m->row;
	if (m->row_cols != t->ncols) {
		row_release(row);
		row_init(row, t->ncols);
		m->row_cols = t->ncols;
	}
	if ((r = row_load(s, t, &pk, row, true)) != 0)
		return r;
	/* the rows it carries that may stay here once merged (collect.c): deleted ones, and,
	 * where this replica is behind it, every one it held before */
	if (m->seen && (!(flags & 1) || m->seen_all) &&
	    (r = store_ckpt_seen(s, &m->seen_st, t->id, &pk)) != 0)
		return r;
	const char *part = m->p->info.part;
	if (row->known && strcmp(row->part, part) != 0)
		return ZILA_ESCOPE;
	if (!row->known) {
		part_copy(row->part, part);
		for (int c = 0; t->dflt != NULL && c < t->ncols; c++)
			if (c != t->pk)
				val_default(&row->vals[c], t, c);
	}
	bool was_visible = ROW_VISIBLE(row), changed = false;
	if (ever.origin == 0 && (flags & 1))
		return ZILA_EFORMAT; /* a row that exists was written by someone */
	if (ver_cmp(s, &ever, &row->ever) > 0) {
		row->exists = flags & 1;
		row->ever = ever;
		changed = true;
	}
	for (uint64_t c = 0; r == 0 && c < ncols; c++) {
		int lc = mt->map[c];
		if (uniform)
			v = ever;
		else if ((r = get_ver(m, &cur[3 + 2 * c], &v)) != 0)
			break;
		bool written = v.origin != 0;
		if (c == mt->pk) {
			val = pk;
		} else if (written) {
			if ((r = val_get(&cur[4 + 2 * c], &val)) != 0)
				break;
			/* a row of the partition says so in its partition column: no forged moves (a
			 * deleted row's image may have lost its values: NULL there is no claim) */
			if (lc == t->pcol && !pcol_matches(&val, part) && ((flags & 1) || val.type != VAL_NULL))
				return ZILA_ESCOPE;
		}
		if (written && lc >= 0 && ver_cmp(s, &v, &row->cver[lc]) > 0) {
			row->vals[lc] = val;
			row->cver[lc] = v;
			changed = true;
		}
	}
	if (r != 0)
		return r;
	if (row->vals[t->pk].type == VAL_NULL)
		row->vals[t->pk] = pk;
	if (!changed)
		return 0;
	return row_materialize(s, t, &pk, row, was_visible, m->st);
}

static int merge_chunk(struct merger *m, struct zila_view frame, ZSTD_DCtx *dc, uint8_t **plain, size_t *cap)
{
	unsigned long long size = ZSTD_getFrameContentSize(frame.p, frame.len);
	if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > ZILA_CKPT_PLAIN_MAX)
		return ZILA_EFORMAT;
	if (size + 1 > *cap) {
		uint8_t *n = realloc(*plain, (size_t)size + 1);
		if (n == NULL)
			return ZILA_ENOMEM;
		*plain = n;
		*cap = (size_t)size + 1;
	}
	size_t got = ZSTD_decompressDCtx(dc, *plain, *cap, frame.p, frame.len);
	if (ZSTD_isError(got) || got != size)
		return ZILA_EFORMAT;
	struct zila_view in = zila_view_make(*plain, got);
	uint64_t n, ti;
	int r = zila_view_get_varint(&in, &m->noids);
	if (r != 0 || m->noids > in.len / 32)
		return ZILA_EFORMAT;
	free(m->oids);
	if ((m->oids = calloc(m->noids + 1, sizeof(*m->oids))) == NULL)
		return ZILA_ENOMEM;
	for (uint64_t i = 0; r == 0 && i < m->noids; i++) {
		const uint8_t *key;
		r = zila_view_get_bytes(&in, 32, &key);
		r = r ? r : store_origin_id(m->s, key, &m->oids[i]);
	}
	r = r ? r : zila_view_get_varint(&in, &ti);
	r = r ? r : zila_view_get_varint(&in, &n);
	if (r != 0 || ti >= m->p->ntables)
		return r ? r : ZILA_EFORMAT;
	size_t nst = 3 + 2 * (size_t)m->p->tables[ti].ncols;
	struct zila_view *cur = calloc(nst, sizeof(*cur));
	if (cur == NULL)
		return ZILA_ENOMEM;
	for (size_t i = 0; r == 0 && i < nst; i++)
		r = zila_view_get_lenbytes(&in, ZILA_CKPT_PLAIN_MAX, &cur[i]);
	if (r == 0 && (in.len != 0 || n > cur[1].len || cur[1].len != n))
		r = ZILA_EFORMAT;
	for (uint64_t i = 0; r == 0 && i < n; i++)
		r = merge_row(m, ti, cur);
	/* every stream read to its end: nothing left over, nothing short */
	for (size_t i = 0; r == 0 && i < nst; i++)
		if (cur[i].len != 0)
			r = ZILA_EFORMAT;
	free(cur);
	return r;
}

/* Every table and column the checkpoint names must be here, the key where it says. */
static int match_schema(struct zila_store *s, const struct ckpt_parsed *p, struct mtable *tabs, struct zila_error *err)
{
	for (uint64_t i = 0; i < p->ntables; i++) {
		const struct ctable *ct = &p->tables[i];
		struct table *t = store_table_by_name(s, (const char *)ct->name.p, ct->name.len);
		/* A table or column missing here although this replica's schema is at the
		 * checkpoint's version or past it was undone or lost to another HQ device's change:
		 * skipped, as its entries would be. Before that version it waits for the schema. */
		bool behind = p->info.schema > (uint64_t)s->schema;
		tabs[i].pk = ct->pk;
		if (t == NULL && !behind)
			continue;
		if (t == NULL)
			return zila_error_set(err, ZILA_ESCHEMA,
					      "it holds rows of table '%.*s', which this replica does not track: sync with "
					      "HQ first (its schema comes as entries), then apply it again",
					      (int)ct->name.len, (const char *)ct->name.p);
		if (t->pcol < 0)
			return zila_error_set(err, ZILA_ESCOPE, "it holds rows of org-wide table '%s' in district '%s'",
					      t->name, p->info.part);
		tabs[i].t = t;
		if ((tabs[i].map = calloc(ct->ncols, sizeof(int))) == NULL)
			return zila_error_set(err, ZILA_ENOMEM, "out of memory");
		for (uint64_t c = 0; c < ct->ncols; c++) {
			int lc = -1;
			for (int k = 0; k < t->ncols; k++)
				if (strlen(t->cols[k]) == ct->cols[c].len && memcmp(t->cols[k], ct->cols[c].p, ct->cols[c].len) == 0)
					lc = k;
			if (lc < 0 && !behind) {
				tabs[i].map[c] = -1;
				continue;
			}
			if (lc < 0)
				return zila_error_set(err, ZILA_ESCHEMA,
						      "it holds column '%.*s' of table '%s', which this replica lacks: "
						      "sync with HQ first (its schema comes as entries), then apply it again",
						      (int)ct->cols[c].len, (const char *)ct->cols[c].p, t->name);
			if ((c == ct->pk) != (lc == t->pk))
				return zila_error_set(err, ZILA_EFORMAT, "its key of table '%s' is not the table's key",
						      t->name);
			tabs[i].map[c] = lc;
		}
	}
	return 0;
}

/* The feed heads move up to the checkpoint's; the entries in between are not held here.
 * Among them may be a delete whose row its maker collected, which this replica then never
 * holds: the partition's collected mark rises past them (the date of the feed's head entry,
 * as a feed's dates only rise; the checkpoint's own when its maker did not know it). */
static int merge_feeds(struct zila_store *s, const struct ckpt_parsed *p)
{
	sqlite3_stmt *u = NULL;
	uint64_t top = 0;
	int r = ZILA_EDB;
	if (sqlite3_prepare_v2(s->db,
			       "UPDATE zila_feeds SET head = ?2, chain = ?3, head_hlc = ?4, seen = ?5,"
			       " base = max(base, ?2) WHERE id = ?1",
			       -1, &u, NULL) != SQLITE_OK)
		goto out;
	r = 0;
	for (uint64_t i = 0; r == 0 && i < p->info.nfeeds; i++) {
		const struct cfeed *f = &p->feeds[i];
		int64_t origin, feed;
		uint64_t head, head_hlc;
		if ((r = store_origin_id(s, f->origin, &origin)) != 0 ||
		    (r = store_feed_get(s, origin, p->info.part, &feed, &head, &head_hlc)) != 0)
			break;
		if (head >= f->seq)
			continue;
		sqlite3_bind_int64(u, 1, feed);
		sqlite3_bind_int64(u, 2, (int64_t)f->seq);
		sqlite3_bind_blob(u, 3, f->chain, ZILA_CHAIN_LEN, SQLITE_STATIC);
		sqlite3_bind_int64(u, 4, (int64_t)f->head_hlc);
		sqlite3_bind_int64(u, 5, (int64_t)(store_now_ms(s) / 1000));
		if (sqlite3_step(u) != SQLITE_DONE)
			r = ZILA_EDB;
		sqlite3_reset(u);
		uint64_t skipped = f->head_hlc != 0 ? f->head_hlc : p->info.hlc;
		if (skipped > top)
			top = skipped;
	}
	r = r ? r : store_collected_note(s, p->info.part, top);
out:
	sqlite3_finalize(u);
	return r;
}

static const char *why_code(int r)
{
	switch (r) {
	case ZILA_ESIG:
		return "its signature or a chunk's hash does not verify (forged or damaged)";
	case ZILA_EVERSION:
		return "it is of a checkpoint format this zila does not read";
	case ZILA_ESCOPE:
		return "a row in it belongs to another partition (forged)";
	default:
		return "it is malformed";
	}
}

/* Merges the rows of p in the caller's transaction (schema checked, high-water marks read). */
static int merge_rows(struct zila_store *s, const struct ckpt_parsed *p, struct zila_apply_stats *st,
		      const struct zila_view *collect, struct zila_error *err)
{
	struct merger m;
	ZSTD_DCtx *dc = NULL;
	uint8_t *plain = NULL;
	size_t cap = 0;
	int r;
	memset(&m, 0, sizeof(m));
	m.s = s;
	m.p = p;
	m.st = st;
	row_init(&m.row, 1);
	m.row_cols = 1;
	zila_buf_init(&m.keybuf[0], 64u << 20);
	zila_buf_init(&m.keybuf[1], 64u << 20);
	if ((m.tabs = calloc(p->ntables + 1, sizeof(*m.tabs))) == NULL || (dc = ZSTD_createDCtx()) == NULL) {
		r = zila_error_set(err, ZILA_ENOMEM, "out of memory");
		goto out;
	}
	if ((r = match_schema(s, p, m.tabs, err)) != 0) {
		char why[sizeof(err->msg)];
		snprintf(why, sizeof(why), "%s", zila_error_msg(err, r));
		r = zila_error_set(err, r, "checkpoint of district '%s' refused, nothing changed: %s", p->info.part, why);
		goto out;
	}
	struct zila_view in = p->chunks;
	m.seen = collect != NULL;
	if (m.seen && (r = store_ckpt_seen_reset(s)) != 0)
		goto out;
	for (uint64_t i = 0; m.seen && r == 0 && i < p->info.nfeeds; i++) {
		int64_t origin, feed;
		uint64_t head, head_hlc;
		r = store_origin_id(s, p->feeds[i].origin, &origin);
		r = r ? r : store_feed_get(s, origin, p->info.part, &feed, &head, &head_hlc);
		m.seen_all |= r == 0 && head < p->feeds[i].seq;
	}
	/* (a new replica holds no rows of it: nothing to drop) */
	if (m.seen_all && r == 0) {
		bool any = false;
		for (uint64_t i = 0; !any && i < p->ntables; i++) {
			struct table *t = m.tabs[i].t;
			sqlite3_stmt *q = NULL;
			char *sql = t == NULL ? NULL
					      : sqlite3_mprintf("SELECT 1 FROM \"%w\" WHERE \"%w\" = ? LIMIT 1", t->name,
								t->cols[t->pcol]);
			if (sql != NULL && sqlite3_prepare_v2(s->db, sql, -1, &q, NULL) == SQLITE_OK) {
				sqlite3_bind_text(q, 1, p->info.part, -1, SQLITE_STATIC);
				any = sqlite3_step(q) == SQLITE_ROW;
			}
			sqlite3_finalize(q);
			sqlite3_free(sql);
		}
		m.seen_all = any;
	}
	for (uint64_t i = 0; r == 0 && i < p->info.nchunks; i++) {
		uint32_t len;
		const uint8_t *c;
		r = zila_view_get_u32be(&in, &len);
		r = r ? r : zila_view_get_bytes(&in, len, &c);
		r = r ? r : merge_chunk(&m, zila_view_make(c, len), dc, &plain, &cap);
	}
	/* A deleted row held here that it covers and does not carry was collected by its maker,
	 * which does so only once every device that may hold it has a checkpoint past it (CHECKPOINT.md) */
	if (r == 0 && m.seen) {
		int64_t *tids = calloc(p->ntables + 1, sizeof(*tids));
		size_t ntids = 0, gone = 0;
		for (uint64_t i = 0; tids != NULL && i < p->ntables; i++)
			if (m.tabs[i].t != NULL)
				tids[ntids++] = m.tabs[i].t->id;
		r = tids == NULL ? ZILA_ENOMEM
				 : store_ckpt_absent_drop(s, p->info.part, *collect, tids, ntids, m.seen_all, st, &gone);
		free(tids);
		st->ncollected += gone;
	}
	if (r == ZILA_EFORMAT || r == ZILA_ESCOPE || r == ZILA_ESHORT)
		r = zila_error_set(err, r == ZILA_ESHORT ? ZILA_EFORMAT : r,
				   "checkpoint of district '%s' refused, nothing changed: %s", p->info.part, why_code(r));
	else if (r == ZILA_ENOMEM)
		r = zila_error_set(err, r, "out of memory");
	else if (r != 0)
		r = store_db_error(s, err, "cannot merge a checkpoint");
out:
	for (uint64_t i = 0; m.tabs != NULL && i < p->ntables; i++)
		free(m.tabs[i].map);
	free(m.tabs);
	free(m.oids);
	free(plain);
	sqlite3_finalize(m.seen_st);
	row_release(&m.row);
	zila_buf_release(&m.keybuf[0]);
	zila_buf_release(&m.keybuf[1]);
	ZSTD_freeDCtx(dc);
	return r;
}

int zila_store_checkpoint_apply(struct zila_store *s, struct zila_view bytes, struct zila_ckpt_info *info,
				struct zila_apply_stats *st, struct zila_error *err)
{
	struct ckpt_parsed p;
	struct zila_apply_stats dummy;
	bool began = false;
	if (st == NULL)
		st = &dummy;
	memset(st, 0, sizeof(*st));
	if (info != NULL)
		memset(info, 0, sizeof(*info));
	int r = parse(bytes, &p);
	if (r != 0) {
		r = r == ZILA_ENOMEM ? zila_error_set(err, r, "out of memory")
				     : zila_error_set(err, r, "checkpoint refused, nothing changed: %s", why_code(r));
		goto out;
	}
	if (info != NULL)
		*info = p.info;
	if (s->hooks.checkpoint != NULL) {
		struct zila_error why;
		zila_error_clear(&why);
		if ((r = s->hooks.checkpoint(s->hooks.ctx, s, &p.info, &why)) != 0) {
			r = zila_error_set(err, r, "checkpoint of district '%s' refused, nothing changed: %s", p.info.part,
					   zila_error_msg(&why, r));
			goto out;
		}
	}
	if (p.info.schema > (uint64_t)s->schema) {
		r = zila_error_set(err, ZILA_ESCHEMA,
				   "checkpoint of district '%s' is of schema version %u and this replica has %lld: sync "
				   "with HQ first (its schema comes as entries), then apply it again; nothing changed",
				   p.info.part, p.info.schema, (long long)s->schema);
		goto out;
	}
	if ((r = zila_store_seal(s, NULL, err)) != 0)
		goto out;
	if ((r = store_begin(s, err)) != 0)
		goto out;
	began = true;
	if ((r = store_hw_check(s)) != 0) {
		r = store_db_error(s, err, "cannot read the high-water rowids");
		goto out;
	}
	if ((r = merge_rows(s, &p, st, &bytes, err)) != 0)
		goto out;
	r = merge_feeds(s, &p);
	r = r ? r : store_settle(s, st);
	if (r == 0 && p.info.max_hlc > s->hlc) {
		uint64_t capped = (store_stamp_ms(s) + MAX_SKEW_MS) << 16;
		s->hlc = p.info.max_hlc < capped ? p.info.max_hlc : capped;
	}
	r = r ? r : store_save_hlc(s);
	r = r ? r : keep_checkpoint(s, &p.info, bytes);
	if (r != 0) {
		r = r == ZILA_ENOMEM ? zila_error_set(err, r, "out of memory")
				     : store_db_error(s, err, "cannot merge a checkpoint");
		goto out;
	}
	began = false;
	r = store_commit(s, err);
	if (r == 0)
		zila_log(ZILA_LOG_INFO, "merged the checkpoint of district '%s' (%llu rows, %llu feeds)", p.info.part,
			 (unsigned long long)p.info.nrows, (unsigned long long)p.info.nfeeds);
out:
	if (began)
		store_rollback(s);
	parsed_release(&p);
	return r;
}

/* A kept checkpoint of part that no longer merges (the schema made again behind it): its
 * rows would be missing here while the feed heads it raised still say they are held, so no
 * peer would send them again. It is dropped, and each feed's head goes back to the entries
 * held here from its first on (the rows come from those entries, made again next); entries
 * held past a missing one (never held: the checkpoint brought their state; or pruned) are
 * dropped too, so that a peer sends the feed again from there (HQ keeps them all). Only
 * where this device's own feed misses entries does it stay (*kept): its own writes past them
 * are nowhere else for sure; its rows wait for the schema or HQ's next. */
static int unmerged_drop(struct zila_store *s, const char *part, bool *kept)
{
	sqlite3_stmt *q = NULL, *z = NULL, *e = NULL, *d = NULL, *x = NULL;
	int r = ZILA_EDB, rc;
	*kept = false;
	if (sqlite3_prepare_v2(s->db,
			       "SELECT f.id FROM zila_feeds f JOIN zila_origins o ON o.id = f.origin WHERE f.part = ?1"
			       " AND o.key = ?2 AND f.base > 0 AND f.base >"
			       " (SELECT count(*) FROM zila_entries e WHERE e.feed = f.id AND e.seq <= f.base)",
			       -1, &q, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(q, 1, part, -1, SQLITE_STATIC);
	sqlite3_bind_blob(q, 2, zila_store_device_pk(s), 32, SQLITE_STATIC);
	if ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		*kept = true; /* entries it covers are gone here */
		r = 0;
		goto out;
	}
	if (rc != SQLITE_DONE)
		goto out;
	sqlite3_finalize(q);
	q = NULL;
	if (sqlite3_prepare_v2(s->db, "SELECT id FROM zila_feeds WHERE part = ?1 AND base > 0", -1, &q, NULL) !=
		    SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "UPDATE zila_feeds SET head = 0, chain = NULL, base = 0 WHERE id = ?1", -1, &z,
			       NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "SELECT seq, hlc, bytes FROM zila_entries WHERE feed = ?1 ORDER BY seq", -1, &e,
			       NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "DELETE FROM zila_checkpoints WHERE part = ?1", -1, &d, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "DELETE FROM zila_entries WHERE feed = ?1 AND seq > ?2", -1, &x, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(q, 1, part, -1, SQLITE_STATIC);
	r = 0;
	while (r == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		int64_t feed = sqlite3_column_int64(q, 0);
		sqlite3_bind_int64(z, 1, feed);
		if (sqlite3_step(z) != SQLITE_DONE)
			r = ZILA_EDB;
		sqlite3_reset(z);
		/* the chain over the entries held, in order, as store_feed_advance() made it */
		sqlite3_bind_int64(e, 1, feed);
		uint64_t next = 1;
		while (r == 0 && sqlite3_step(e) == SQLITE_ROW && (uint64_t)sqlite3_column_int64(e, 0) == next) {
			struct zila_view b = zila_view_make(sqlite3_column_blob(e, 2), (size_t)sqlite3_column_bytes(e, 2));
			r = store_feed_advance(s, feed, next, b, (uint64_t)sqlite3_column_int64(e, 1), store_now_ms(s) / 1000);
			next++;
		}
		sqlite3_reset(e);
		sqlite3_bind_int64(x, 1, feed);
		sqlite3_bind_int64(x, 2, (int64_t)(next - 1));
		if (r == 0 && sqlite3_step(x) != SQLITE_DONE)
			r = ZILA_EDB;
		sqlite3_reset(x);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = ZILA_EDB;
	sqlite3_bind_text(d, 1, part, -1, SQLITE_STATIC);
	if (r == 0 && sqlite3_step(d) != SQLITE_DONE)
		r = ZILA_EDB;
out:
	sqlite3_finalize(q);
	sqlite3_finalize(z);
	sqlite3_finalize(e);
	sqlite3_finalize(d);
	sqlite3_finalize(x);
	return r;
}

/* Runs q with ?1, ?2, ?3 bound to feed k of p: its origin, the checkpoint's partition and
 * the sequence it covers up to. */
static int feed_step(sqlite3_stmt *q, const struct ckpt_parsed *p, uint64_t k)
{
	sqlite3_bind_blob(q, 1, p->feeds[k].origin, 32, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, p->info.part, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, (int64_t)p->feeds[k].seq);
	int rc = sqlite3_step(q);
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? 0 : ZILA_EDB;
}

int store_checkpoints_remerge(struct zila_store *s, struct zila_apply_stats *st)
{
	sqlite3_stmt *q = NULL, *cov = NULL;
	char **parts = NULL;
	size_t nparts = 0;
	int r = ZILA_EDB, rc;
	/* what each checkpoint merged again covers (store_reapply skips those entries) */
	if (store_exec(s, "CREATE TEMP TABLE IF NOT EXISTS zila_covered(origin BLOB NOT NULL, part TEXT NOT NULL,"
			  " seq INTEGER NOT NULL, PRIMARY KEY(origin, part)) WITHOUT ROWID; DELETE FROM temp.zila_covered",
		       NULL) != 0 ||
	    sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO temp.zila_covered(origin, part, seq) VALUES (?1, ?2, ?3)", -1,
			       &cov, NULL) != SQLITE_OK)
		goto out;
	/* read first: a merge may change the schema's cache, never the list */
	if (sqlite3_prepare_v2(s->db, "SELECT part FROM zila_checkpoints ORDER BY part", -1, &q, NULL) != SQLITE_OK)
		goto out;
	r = 0;
	while (r == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		char **n = realloc(parts, (nparts + 1) * sizeof(*parts));
		if (n == NULL || (n[nparts] = strdup((const char *)sqlite3_column_text(q, 0))) == NULL) {
			parts = n ? n : parts;
			r = ZILA_ENOMEM;
			break;
		}
		parts = n;
		nparts++;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = ZILA_EDB;
	sqlite3_finalize(q);
	q = NULL;
	for (size_t i = 0; r == 0 && i < nparts; i++) {
		uint8_t *b = NULL;
		size_t len = 0;
		struct ckpt_parsed p;
		struct zila_error err;
		if ((r = zila_store_checkpoint_get(s, parts[i], &b, &len)) != 0)
			break;
		bool parsed = parse(zila_view_make(b, len), &p) == 0;
		if (parsed && (r = merge_rows(s, &p, st, NULL, &err)) == 0) {
			for (uint64_t k = 0; r == 0 && k < p.info.nfeeds; k++) {
				r = feed_step(cov, &p, k);
			}
		} else if (parsed) {
			/* a schema made again without a table or column it holds */
			bool kept = false;
			if (r == ZILA_ESCHEMA && (r = unmerged_drop(s, parts[i], &kept)) == 0)
				zila_log(ZILA_LOG_WARN,
					 kept ? "cannot merge the checkpoint of district '%s' again: %s; some entries it "
						"covers, of this device's own feed, are no longer held here: its rows wait for the "
						"schema or HQ's next"
					      : "cannot merge the checkpoint of district '%s' again: %s; it is dropped and "
						"the district's rows are made again from the entries held here (peers send the rest)",
					 parts[i], err.msg);
		}
		parsed_release(&p);
		free(b);
	}
out:
	sqlite3_finalize(cov);
	for (size_t i = 0; i < nparts; i++)
		free(parts[i]);
	free(parts);
	return r;
}

/* --- what a peer needs -------------------------------------------------------------- */

int zila_store_checkpoint_needed(struct zila_store *s, const struct zila_vector *have, const char *part, int how)
{
	sqlite3_stmt *q = NULL, *sz = NULL;
	uint8_t *bytes = NULL;
	size_t len = 0;
	int r = zila_store_checkpoint_get(s, part, &bytes, &len);
	struct zila_vector cv = { NULL, 0 };
	if (r == ZILA_ENOTFOUND)
		return 0;
	if (r != 0 || (r = zila_checkpoint_vector(zila_view_make(bytes, len), &cv)) != 0)
		goto out;
	r = ZILA_EDB;
	if (sqlite3_prepare_v2(s->db,
			       "SELECT o.key, f.base, f.id FROM zila_feeds f JOIN zila_origins o ON o.id = f.origin"
			       " WHERE f.part = ? AND f.head > 0",
			       -1, &q, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "SELECT coalesce(sum(length(bytes)), 0) FROM zila_entries WHERE feed = ?1 AND seq > ?2"
				      " AND seq <= ?3",
			       -1, &sz, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(q, 1, part, -1, SQLITE_STATIC);
	bool behind_base = false;
	int64_t lacking = 0;
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (sqlite3_column_bytes(q, 0) != 32)
			continue;
		const uint8_t *key = sqlite3_column_blob(q, 0);
		uint64_t got = have != NULL ? zila_vector_get(have, key, part) : 0;
		behind_base |= got < (uint64_t)sqlite3_column_int64(q, 1);
		uint64_t upto = zila_vector_get(&cv, key, part);
		if (got >= upto)
			continue;
		sqlite3_bind_int64(sz, 1, sqlite3_column_int64(q, 2));
		sqlite3_bind_int64(sz, 2, (int64_t)got);
		sqlite3_bind_int64(sz, 3, (int64_t)upto);
		if (sqlite3_step(sz) == SQLITE_ROW)
			lacking += sqlite3_column_int64(sz, 0);
		sqlite3_reset(sz);
	}
	if (rc != SQLITE_DONE)
		goto out;
	/* What must go as a checkpoint (the entries are not held here), and what had better: the
	 * history it stands for costs the peer more than the state (unless the peer keeps the
	 * audit trail, HQ: it gets the entries wherever they are held) */
	r = behind_base || (how == ZILA_CKPT_CHEAPER && lacking > 0 && (uint64_t)lacking > len / 2) ||
	    (how == ZILA_CKPT_LACKING && lacking > 0);
out:
	zila_vector_release(&cv);
	sqlite3_finalize(q);
	sqlite3_finalize(sz);
	free(bytes);
	return r;
}

int zila_vector_raise(struct zila_vector *v, const struct zila_vector *by)
{
	size_t n = v->nheads;
	struct zila_feed_head *h = realloc(v->heads, (v->nheads + by->nheads + 1) * sizeof(*h));
	if (h == NULL)
		return ZILA_ENOMEM;
	v->heads = h;
	for (size_t i = 0; i < by->nheads; i++) {
		const struct zila_feed_head *b = &by->heads[i];
		size_t k;
		for (k = 0; k < n; k++)
			if (memcmp(v->heads[k].origin, b->origin, 32) == 0 && strcmp(v->heads[k].part, b->part) == 0)
				break;
		if (k < n) {
			if (v->heads[k].seq < b->seq)
				v->heads[k].seq = b->seq;
		} else {
			v->heads[v->nheads++] = *b;
		}
	}
	store_vector_sort(v);
	return 0;
}

/* --- bounded history ---------------------------------------------------------------- */

int64_t zila_store_horizon_ms(struct zila_store *s)
{
	/* unset: a laptop keeps ZILA_HISTORY_DAYS_DEFAULT days, HQ (scope all) everything */
	int64_t days = store_meta_int(s, ZILA_META_HISTORY_DAYS, s->wscoped ? ZILA_HISTORY_DAYS_DEFAULT : 0);
	if (days <= 0)
		return 0;
	int64_t now = (int64_t)store_now_ms(s);
	int64_t span = days * 24 * 3600 * 1000;
	return now > span ? now - span : 0;
}

int zila_store_prune(struct zila_store *s, size_t *ndropped, struct zila_error *err)
{
	sqlite3_stmt *q = NULL, *d = NULL, *b = NULL;
	char **parts = NULL;
	size_t nparts = 0;
	int r, rc;
	*ndropped = 0;
	int64_t horizon = zila_store_horizon_ms(s);
	if (horizon <= 0)
		return 0;
	if ((r = store_begin(s, err)) != 0)
		return r;
	r = ZILA_EDB;
	if (sqlite3_prepare_v2(s->db, "SELECT part FROM zila_checkpoints ORDER BY part", -1, &q, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db,
			       "DELETE FROM zila_entries WHERE feed = (SELECT f.id FROM zila_feeds f JOIN zila_origins o"
			       " ON o.id = f.origin WHERE o.key = ?1 AND f.part = ?2) AND seq <= ?3 AND hlc < ?4 AND applied = 1"
			       /* a feed's head entry stays: the seal dates the next one after it */
			       " AND seq < (SELECT head FROM zila_feeds WHERE id = zila_entries.feed)",
			       -1, &d, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db,
			       "UPDATE zila_feeds SET base = max(base, ?3) WHERE part = ?2 AND origin = (SELECT id FROM"
			       " zila_origins WHERE key = ?1)",
			       -1, &b, NULL) != SQLITE_OK)
		goto out;
	r = 0;
	while (r == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		char **n = realloc(parts, (nparts + 1) * sizeof(*parts));
		if (n == NULL || (n[nparts] = strdup((const char *)sqlite3_column_text(q, 0))) == NULL) {
			parts = n ? n : parts;
			r = ZILA_ENOMEM;
			break;
		}
		parts = n;
		nparts++;
	}
	for (size_t i = 0; r == 0 && i < nparts; i++) {
		uint8_t *bytes = NULL;
		size_t len = 0;
		struct ckpt_parsed p;
		if ((r = zila_store_checkpoint_get(s, parts[i], &bytes, &len)) != 0)
			break;
		if (parse(zila_view_make(bytes, len), &p) == 0) {
			for (uint64_t k = 0; r == 0 && k < p.info.nfeeds; k++) {
				/* only what the checkpoint covers, and only what is older than the horizon */
				sqlite3_bind_int64(d, 4, (int64_t)((uint64_t)horizon << 16));
				r = feed_step(d, &p, k);
				int gone = sqlite3_changes(s->db);
				*ndropped += r == 0 ? (size_t)gone : 0;
				if (r == 0 && gone > 0)
					r = feed_step(b, &p, k);
			}
		}
		parsed_release(&p);
		free(bytes);
	}
out:
	for (size_t i = 0; i < nparts; i++)
		free(parts[i]);
	free(parts);
	sqlite3_finalize(q);
	sqlite3_finalize(d);
	sqlite3_finalize(b);
	if (r != 0) {
		store_rollback(s);
		*ndropped = 0;
		return r == ZILA_ENOMEM ? zila_error_set(err, r, "out of memory")
					: store_db_error(s, err, "cannot drop old history");
	}
	return store_commit(s, err);
}

/* --- upkeep: what the daemon does hourly ----------------------------------------------- */

#define CKPT_MIN_ENTRIES 64            /* a district's first checkpoint, once it has this many */
#define CKPT_EVERY_MS (24ll * 3600 * 1000) /* then daily, when anything came since */

/* Whether HQ should make a new checkpoint of part: none yet and some history; or the
 * history since the last is larger than it (the factor 1); or a day since, with anything new. */
static int ckpt_due(struct zila_store *s, const char *part, bool *due)
{
	sqlite3_stmt *q = NULL;
	int r = ZILA_EDB;
	int64_t hlc = 0, len = 0;
	*due = false;
	if (sqlite3_prepare_v2(s->db, "SELECT hlc, length(bytes) FROM zila_checkpoints WHERE part = ?", -1, &q, NULL) !=
	    SQLITE_OK)
		goto out;
	sqlite3_bind_text(q, 1, part, -1, SQLITE_STATIC);
	if (sqlite3_step(q) == SQLITE_ROW) {
		hlc = sqlite3_column_int64(q, 0);
		len = sqlite3_column_int64(q, 1);
	}
	sqlite3_finalize(q);
	q = NULL;
	if (sqlite3_prepare_v2(s->db,
			       "SELECT count(*), coalesce(sum(length(e.bytes)), 0) FROM zila_entries e JOIN zila_feeds f"
			       " ON f.id = e.feed WHERE f.part = ?1 AND e.hlc > ?2",
			       -1, &q, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(q, 1, part, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, hlc);
	if (sqlite3_step(q) != SQLITE_ROW)
		goto out;
	int64_t n = sqlite3_column_int64(q, 0), bytes = sqlite3_column_int64(q, 1);
	int64_t age = (int64_t)store_stamp_ms(s) - (int64_t)((uint64_t)hlc >> 16);
	if (hlc == 0)
		*due = n >= CKPT_MIN_ENTRIES;
	else
		*due = n > 0 && (bytes > len || age >= CKPT_EVERY_MS);
	r = 0;
out:
	sqlite3_finalize(q);
	return r;
}

int zila_store_history_upkeep(struct zila_store *s, bool is_hq, size_t *nmade, size_t *ndropped,
			      struct zila_error *err)
{
	sqlite3_stmt *q = NULL;
	char **parts = NULL;
	size_t nparts = 0;
	int r = 0, rc;
	*nmade = *ndropped = 0;
	if (!is_hq)
		return zila_store_prune(s, ndropped, err);
	if (sqlite3_prepare_v2(s->db, "SELECT DISTINCT part FROM zila_feeds WHERE part <> '' AND head > 0 ORDER BY part", -1,
			       &q, NULL) != SQLITE_OK)
		return store_db_error(s, err, "cannot list the districts");
	while (r == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		char **n = realloc(parts, (nparts + 1) * sizeof(*parts));
		if (n == NULL || (n[nparts] = strdup((const char *)sqlite3_column_text(q, 0))) == NULL) {
			parts = n ? n : parts;
			r = zila_error_set(err, ZILA_ENOMEM, "out of memory");
			break;
		}
		parts = n;
		nparts++;
	}
	sqlite3_finalize(q);
	for (size_t i = 0; r == 0 && i < nparts; i++) {
		bool due = false;
		if ((r = ckpt_due(s, parts[i], &due)) != 0) {
			r = store_db_error(s, err, "cannot read the history of a district");
			break;
		}
		if (!due)
			continue;
		r = zila_store_checkpoint_make(s, parts[i], NULL, err);
		if (r == ZILA_ESCHEMA) { /* its entries wait for a schema: next time */
			zila_log(ZILA_LOG_INFO, "%s", err->msg);
			r = 0;
			continue;
		}
		if (r == 0)
			(*nmade)++;
	}
	for (size_t i = 0; i < nparts; i++)
		free(parts[i]);
	free(parts);
	return r;
}

int zila_store_history_gaps(struct zila_store *s, zila_gap_fn fn, void *ctx)
{
	sqlite3_stmt *q = NULL;
	int r = ZILA_EDB, rc;
	if (sqlite3_prepare_v2(s->db,
			       "SELECT c.part, c.hlc FROM zila_checkpoints c WHERE EXISTS (SELECT 1 FROM zila_feeds f"
			       " WHERE f.part = c.part AND f.base > 0) ORDER BY c.part",
			       -1, &q, NULL) != SQLITE_OK)
		goto out;
	r = 0;
	while (r == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW)
		r = fn(ctx, (const char *)sqlite3_column_text(q, 0), zila_hlc_ms((uint64_t)sqlite3_column_int64(q, 1)));
	if (r == 0 && rc != SQLITE_DONE)
		r = ZILA_EDB;
out:
	sqlite3_finalize(q);
	return r;
}

int store_checkpoints_cut(struct zila_store *s, const uint8_t (*origins)[32], size_t norigins, zila_entry_keep_fn keep,
			  void *ctx, size_t *ndropped)
{
	sqlite3_stmt *q = NULL, *d = NULL;
	int r = ZILA_EDB, rc;
	*ndropped = 0;
	if (sqlite3_prepare_v2(s->db, "SELECT part, bytes FROM zila_checkpoints ORDER BY part", -1, &q, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "DELETE FROM zila_checkpoints WHERE part = ?", -1, &d, NULL) != SQLITE_OK)
		goto out;
	r = 0;
	/* parts to drop are collected first: the walk reads the table they go from */
	char (*drop)[ZILA_PART_MAX + 1] = NULL;
	size_t ndrop = 0;
	while (r == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct ckpt_parsed p;
		bool tainted = false;
		if (parse(zila_view_make(sqlite3_column_blob(q, 1), (size_t)sqlite3_column_bytes(q, 1)), &p) == 0) {
			for (uint64_t i = 0; i < p.info.nfeeds && !tainted; i++) {
				bool cut = false;
				for (size_t k = 0; k < norigins && !cut; k++)
					cut = memcmp(origins[k], p.feeds[i].origin, 32) == 0 &&
					      memcmp(origins[k], zila_store_device_pk(s), 32) != 0;
				if (!cut)
					continue;
				/* does the entry at its head stand? (keep judges by signed data: the feed,
				 * the sequence number and its date) */
				struct zila_entry_info e;
				memset(&e, 0, sizeof(e));
				memcpy(e.origin, p.feeds[i].origin, 32);
				part_copy(e.part, p.info.part);
				e.seq = p.feeds[i].seq;
				e.hlc = p.feeds[i].head_hlc;
				tainted = !keep(ctx, &e);
			}
		}
		parsed_release(&p);
		if (!tainted)
			continue;
		char(*n)[ZILA_PART_MAX + 1] = realloc(drop, (ndrop + 1) * sizeof(*n));
		if (n == NULL) {
			r = ZILA_ENOMEM;
			break;
		}
		drop = n;
		part_copy(drop[ndrop++], (const char *)sqlite3_column_text(q, 0));
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = ZILA_EDB;
	for (size_t i = 0; r == 0 && i < ndrop; i++) {
		sqlite3_bind_text(d, 1, drop[i], -1, SQLITE_STATIC);
		if (sqlite3_step(d) != SQLITE_DONE)
			r = ZILA_EDB;
		sqlite3_reset(d);
		if (r == 0) {
			(*ndropped)++;
			zila_log(ZILA_LOG_WARN,
				 "the checkpoint of district '%s' held writes of a revoked device past its mark: it is "
				 "dropped, and the district's rows are made again from the entries held here; HQ's next "
				 "checkpoint brings back the rest",
				 drop[i]);
		}
	}
	free(drop);
out:
	sqlite3_finalize(q);
	sqlite3_finalize(d);
	return r;
}
