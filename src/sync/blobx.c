/* The blob phase, sans I/O (proto/ATTACH.md): asks, manifests, chunks, refusals, done. One
 * blob comes in at a time (the peer serves our asks in order), its chunks verified against
 * the manifest its id commits to; the files are the store's (zila/blob.h). */
#include <stdlib.h>
#include <string.h>

#include "sync.pb-c.h"
#include "zila/blobx.h"
#include "zila/pbuf.h"

#define QUEUE_MAX 100000 /* the peer's asks waiting, at most */
#define REFUSE_MISSING 1
#define REFUSE_SCOPE 2
#define REFUSE_DAMAGED 3
#define BLOBX_PIECE_MIN 1024 /* a piece of a chunk is at least this (unless the chunk's end) */

struct ask {
	uint8_t id[32];
	uint32_t from;
};

struct mine {
	uint8_t id[32];
	uint64_t size;
	bool open;    /* asked, no answer yet */
	bool retried; /* asked a second time after a bad chunk */
};

struct zila_blobx {
	struct zila_blobx_config cfg;
	struct zila_blobx_stats st;
	bool started, sent_done, peer_done;
	bool peer_pieces; /* the peer takes chunks in pieces (its BlobWant said so) */
	/* the peer's asks, served in order */
	struct ask *q;
	size_t nq, qhead, qcap;
	struct zila_blob_reader *rd; /* the blob being served */
	uint8_t rd_id[32];
	uint32_t rd_next, rd_n;
	size_t rd_off; /* of chunk rd_next, the bytes sent already (in pieces) */
	/* our asks */
	struct mine *mine;
	size_t nmine, nopen;
	/* the blob coming in */
	struct mine *in;
	struct zila_blob_writer *w;
	uint32_t in_n;   /* its chunks */
	uint64_t in_size; /* its bytes, as its manifest says */
	struct zila_buf piece; /* the chunk being put together from pieces */
	uint32_t piece_idx;
	bool piece_on;
	bool in_skip;    /* its chunks are dropped (refused, or held already) */
	bool in_retry;   /* ask for it again when its chunks end */
	struct zila_buf msg;
};

bool zila_blobx_is_blob(const uint8_t *p, size_t len)
{
	/* a Message is one field of its oneof: the key byte is (field << 3) | 2 */
	return len > 0 && (p[0] & 7) == 2 && (p[0] >> 3) >= ZILA__MESSAGE__BODY_BLOB_WANT &&
	       (p[0] >> 3) <= ZILA__MESSAGE__BODY_BLOB_DONE;
}

int zila_blobx_new(struct zila_blobx **out, const struct zila_blobx_config *cfg, struct zila_error *err)
{
	*out = NULL;
	if (cfg->store == NULL || cfg->send == NULL)
		return zila_error_set(err, ZILA_EINVAL, "a blob exchange needs a store and a send function");
	struct zila_blobx *bx = calloc(1, sizeof(*bx));
	if (bx == NULL)
		return zila_error_set(err, ZILA_ENOMEM, "out of memory");
	bx->cfg = *cfg;
	zila_buf_init(&bx->msg, ZILA_SESSION_MSG_MAX);
	zila_buf_init(&bx->piece, ZILA_BLOB_CHUNK);
	*out = bx;
	return 0;
}

void zila_blobx_free(struct zila_blobx *bx)
{
	if (bx == NULL)
		return;
	zila_blob_reader_free(bx->rd);
	zila_blob_writer_free(bx->w);
	free(bx->q);
	free(bx->mine);
	zila_buf_release(&bx->msg);
	zila_buf_release(&bx->piece);
	free(bx);
}

const struct zila_blobx_stats *zila_blobx_stats(const struct zila_blobx *bx)
{
	return &bx->st;
}

static int emit(struct zila_blobx *bx, const Zila__Message *m, size_t *sent)
{
	size_t n = zila__message__get_packed_size(m);
	if (n > ZILA_SESSION_MSG_MAX)
		return ZILA_ETOOBIG;
	zila_buf_reset(&bx->msg);
	int r = zila_buf_reserve(&bx->msg, n);
	if (r != 0)
		return r;
	zila__message__pack(m, bx->msg.p);
	if (sent != NULL)
		*sent += n;
	return bx->cfg.send(bx->cfg.send_ctx, bx->msg.p, n);
}

static int send_done_if_over(struct zila_blobx *bx)
{
	if (!bx->started || bx->sent_done || bx->nopen > 0)
		return 0;
	Zila__Message m = ZILA__MESSAGE__INIT;
	Zila__BlobDone d = ZILA__BLOB_DONE__INIT;
	m.body_case = ZILA__MESSAGE__BODY_BLOB_DONE;
	m.blob_done = &d;
	bx->sent_done = true;
	return emit(bx, &m, NULL);
}

static int send_asks(struct zila_blobx *bx, const struct mine *const *list, size_t n)
{
	Zila__Message m = ZILA__MESSAGE__INIT;
	Zila__BlobWant w = ZILA__BLOB_WANT__INIT;
	Zila__BlobAsk *a = calloc(n ? n : 1, sizeof(*a));
	Zila__BlobAsk **ap = calloc(n ? n : 1, sizeof(*ap));
	int r = 0;
	if (a == NULL || ap == NULL) {
		r = ZILA_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		zila__blob_ask__init(&a[i]);
		a[i].id.data = (uint8_t *)list[i]->id;
		a[i].id.len = 32;
		a[i].from = zila_blob_part_chunks(bx->cfg.store, list[i]->id);
		ap[i] = &a[i];
	}
	w.n_asks = n;
	w.asks = ap;
	w.pieces = true;
	m.body_case = ZILA__MESSAGE__BODY_BLOB_WANT;
	m.blob_want = &w;
	r = emit(bx, &m, NULL);
out:
	free(a);
	free(ap);
	return r;
}

struct want_ctx {
	struct zila_blobx *bx;
	int r;
};

static int want_one(void *ctx, const uint8_t id[32], uint64_t size, bool asked, uint32_t have)
{
	struct want_ctx *w = ctx;
	struct zila_blobx *bx = w->bx;
	(void)have;
	if (!bx->cfg.fetch_all && !asked && size > bx->cfg.fetch_below) {
		bx->st.wanted_left++;
		return 0;
	}
	if (bx->nmine % 64 == 0) {
		struct mine *nm = realloc(bx->mine, (bx->nmine + 64) * sizeof(*nm));
		if (nm == NULL)
			return ZILA_ENOMEM;
		bx->mine = nm;
	}
	struct mine *m = &bx->mine[bx->nmine++];
	memset(m, 0, sizeof(*m));
	memcpy(m->id, id, 32);
	m->size = size;
	m->open = true;
	bx->nopen++;
	bx->st.asked++;
	bx->st.asked_bytes += size;
	bx->st.pending_bytes += size;
	return 0;
}

void zila_blobx_policy(struct zila_blobx *bx, bool fetch_all, uint64_t fetch_below)
{
	bx->cfg.fetch_all = fetch_all;
	bx->cfg.fetch_below = fetch_below;
}

int zila_blobx_start(struct zila_blobx *bx, struct zila_error *err)
{
	struct want_ctx w = { bx, 0 };
	if (bx->started)
		return 0;
	bx->started = true;
	int r = zila_blob_missing(bx->cfg.store, want_one, &w, err);
	if (r != 0)
		return r;
	const struct mine **list = calloc(ZILA_BLOBX_ASKS_MAX, sizeof(*list));
	if (list == NULL)
		return zila_error_set(err, ZILA_ENOMEM, "out of memory");
	for (size_t i = 0; r == 0 && i < bx->nmine; i += ZILA_BLOBX_ASKS_MAX) {
		size_t n = bx->nmine - i < ZILA_BLOBX_ASKS_MAX ? bx->nmine - i : ZILA_BLOBX_ASKS_MAX;
		for (size_t k = 0; k < n; k++)
			list[k] = &bx->mine[i + k];
		r = send_asks(bx, list, n);
	}
	free(list);
	r = r ? r : send_done_if_over(bx);
	return r ? zila_error_set(err, r, "cannot ask for blobs") : 0;
}

/* --- receiving ---------------------------------------------------------------------- */

static struct mine *mine_of(struct zila_blobx *bx, const ProtobufCBinaryData *id)
{
	if (id->len != 32)
		return NULL;
	for (size_t i = 0; i < bx->nmine; i++)
		if (bx->mine[i].open && memcmp(bx->mine[i].id, id->data, 32) == 0)
			return &bx->mine[i];
	return NULL;
}

static int resolve(struct zila_blobx *bx, struct mine *m)
{
	if (!m->open)
		return 0;
	m->open = false;
	bx->nopen--;
	bx->st.pending_bytes -= bx->st.pending_bytes < m->size ? bx->st.pending_bytes : m->size;
	return send_done_if_over(bx);
}

/* The incoming blob's chunks ended (its last one arrived): ask again once after a bad one. */
static int in_end(struct zila_blobx *bx)
{
	struct mine *m = bx->in;
	bool retry = bx->in_retry && !m->retried;
	zila_blob_writer_free(bx->w);
	bx->w = NULL;
	bx->in = NULL;
	if (retry) {
		const struct mine *one = m;
		m->retried = true;
		return send_asks(bx, &one, 1);
	}
	return resolve(bx, m);
}

static int take_manifest(struct zila_blobx *bx, const Zila__BlobManifest *mf, struct zila_error *err)
{
	struct mine *m = mine_of(bx, &mf->id);
	uint32_t next = 0;
	if (m == NULL || bx->in != NULL)
		return zila_error_set(err, ZILA_EPROTO, "a blob manifest that was not asked for");
	if (mf->chunks.len % 32 != 0 || mf->size > ZILA_BLOB_SIZE_MAX)
		return zila_error_set(err, ZILA_EFORMAT, "a malformed blob manifest");
	bx->in = m;
	bx->in_n = (uint32_t)(mf->chunks.len / 32);
	bx->in_size = mf->size;
	bx->in_skip = bx->in_retry = false;
	bx->piece_on = false;
	int r = zila_blob_writer_open(bx->cfg.store, m->id, mf->size, mf->chunks.data, mf->chunks.len / 32, &bx->w,
				      &next, err);
	if (r == ZILA_EEXIST || (r == 0 && bx->in_n == 0)) {
		/* held already (another peer brought it), or empty */
		uint8_t id[32];
		if (r == 0 && (r = zila_blob_put(bx->cfg.store, NULL, 0, id, err)) != 0)
			return r;
		bx->in_skip = true;
		if (bx->in_n == 0) {
			bx->st.received++;
			return in_end(bx);
		}
		return 0;
	}
	if (r == ZILA_EFORMAT) {
		/* the manifest does not make the id: nothing of it is taken */
		bx->st.chunks_bad++;
		bx->in_skip = true;
		bx->in_retry = true;
		return 0;
	}
	return r;
}

static int take_chunk(struct zila_blobx *bx, const Zila__BlobChunk *c, struct zila_error *err)
{
	if (bx->in == NULL || c->id.len != 32 || memcmp(c->id.data, bx->in->id, 32) != 0 || c->index >= bx->in_n)
		return zila_error_set(err, ZILA_EPROTO, "a blob chunk out of order");
	/* the chunk's length, as the manifest has it (a manifest that does not add up is
	 * refused by the writer; then the pieces only have to end where it says) */
	uint64_t at = (uint64_t)c->index * ZILA_BLOB_CHUNK;
	size_t clen = at >= bx->in_size ? 0 : bx->in_size - at > ZILA_BLOB_CHUNK ? ZILA_BLOB_CHUNK : (size_t)(bx->in_size - at);
	const uint8_t *data = c->data.data;
	size_t dlen = c->data.len;
	if (c->offset != 0 || dlen < clen) {
		/* a piece (our BlobWant took pieces): they come in order, back to back, and make
		 * the chunk once it is whole */
		if (c->offset == 0 ? bx->piece_on : !bx->piece_on || bx->piece_idx != c->index || c->offset != bx->piece.len)
			return zila_error_set(err, ZILA_EPROTO, "a blob piece out of order");
		if (dlen == 0 || (c->offset == 0 ? 0 : bx->piece.len) + dlen > clen)
			return zila_error_set(err, ZILA_EPROTO, "a blob piece past its chunk's end");
		if (c->offset == 0) {
			zila_buf_reset(&bx->piece);
			bx->piece_idx = c->index;
			bx->piece_on = true;
		}
		int r = zila_buf_put(&bx->piece, data, dlen);
		if (r != 0)
			return zila_error_set(err, r, "out of memory");
		if (bx->piece.len < clen)
			return 0;
		bx->piece_on = false;
		data = bx->piece.p;
		dlen = bx->piece.len;
	} else if (bx->piece_on) {
		return zila_error_set(err, ZILA_EPROTO, "a blob chunk inside another's pieces");
	}
	bool last = c->index + 1 == bx->in_n;
	if (!bx->in_skip) {
		struct zila_error e2;
		zila_error_clear(&e2);
		int r = zila_blob_writer_add(bx->w, c->index, data, dlen, &e2);
		if (r == ZILA_EFORMAT || r == ZILA_EPROTO) {
			/* refused; what was verified before it is kept, and it is asked for again */
			bx->st.chunks_bad++;
			bx->in_skip = true;
			bx->in_retry = true;
		} else if (r != 0) {
			return zila_error_set(err, r, "%s", zila_error_msg(&e2, r));
		} else {
			bx->st.received_bytes += dlen;
			if (zila_blob_writer_done(bx->w)) {
				bx->st.received++;
				return in_end(bx);
			}
		}
	}
	return last ? in_end(bx) : 0;
}

static int queue_asks(struct zila_blobx *bx, const Zila__BlobWant *w, struct zila_error *err)
{
	if (w->n_asks > ZILA_BLOBX_ASKS_MAX || bx->peer_done || bx->nq - bx->qhead + w->n_asks > QUEUE_MAX)
		return zila_error_set(err, ZILA_EPROTO, "too many blob asks");
	if (bx->nq + w->n_asks > bx->qcap) {
		/* drop what was served */
		if (bx->q != NULL)
			memmove(bx->q, bx->q + bx->qhead, (bx->nq - bx->qhead) * sizeof(*bx->q));
		bx->nq -= bx->qhead;
		bx->qhead = 0;
		size_t cap = bx->nq + w->n_asks + 64;
		struct ask *nq = realloc(bx->q, cap * sizeof(*nq));
		if (nq == NULL)
			return zila_error_set(err, ZILA_ENOMEM, "out of memory");
		bx->q = nq;
		bx->qcap = cap;
	}
	if (w->pieces)
		bx->peer_pieces = true;
	for (size_t i = 0; i < w->n_asks; i++) {
		if (w->asks[i]->id.len != 32)
			return zila_error_set(err, ZILA_EFORMAT, "a malformed blob ask");
		memcpy(bx->q[bx->nq].id, w->asks[i]->id.data, 32);
		bx->q[bx->nq++].from = w->asks[i]->from;
	}
	return 0;
}

int zila_blobx_receive(struct zila_blobx *bx, const uint8_t *p, size_t len, struct zila_error *err)
{
	if (len > ZILA_SESSION_MSG_MAX || !zila_blobx_is_blob(p, len))
		return zila_error_set(err, ZILA_EFORMAT, "not a blob message");
	struct zila_pb_budget b;
	zila_pb_budget_init(&b, len);
	Zila__Message *m = zila__message__unpack(&b.alloc, len, p);
	int r = 0;
	if (m == NULL)
		return zila_error_set(err, ZILA_EFORMAT, "a malformed blob message");
	switch (m->body_case) {
	case ZILA__MESSAGE__BODY_BLOB_WANT:
		r = queue_asks(bx, m->blob_want, err);
		break;
	case ZILA__MESSAGE__BODY_BLOB_MANIFEST:
		r = take_manifest(bx, m->blob_manifest, err);
		break;
	case ZILA__MESSAGE__BODY_BLOB_CHUNK:
		r = take_chunk(bx, m->blob_chunk, err);
		break;
	case ZILA__MESSAGE__BODY_BLOB_REFUSED: {
		struct mine *mi = mine_of(bx, &m->blob_refused->id);
		if (mi == NULL || bx->in != NULL) {
			r = zila_error_set(err, ZILA_EPROTO, "a blob refusal that was not asked for");
			break;
		}
		bx->st.refused_by_peer++;
		r = resolve(bx, mi);
		break;
	}
	case ZILA__MESSAGE__BODY_BLOB_DONE:
		bx->peer_done = true;
		break;
	default:
		r = zila_error_set(err, ZILA_EFORMAT, "not a blob message");
	}
	zila__message__free_unpacked(m, NULL);
	return r;
}

/* --- serving ------------------------------------------------------------------------- */

bool zila_blobx_wants_to_send(const struct zila_blobx *bx)
{
	return bx->started && (bx->rd != NULL || bx->qhead < bx->nq);
}

static int send_refused(struct zila_blobx *bx, const uint8_t id[32], uint32_t reason, size_t *sent)
{
	Zila__Message m = ZILA__MESSAGE__INIT;
	Zila__BlobRefused x = ZILA__BLOB_REFUSED__INIT;
	x.id.data = (uint8_t *)id;
	x.id.len = 32;
	x.reason = reason;
	m.body_case = ZILA__MESSAGE__BODY_BLOB_REFUSED;
	m.blob_refused = &x;
	return emit(bx, &m, sent);
}

/* Opens the next ask: its manifest, or a refusal. */
static int serve_next(struct zila_blobx *bx, size_t *sent, struct zila_error *err)
{
	struct ask a = bx->q[bx->qhead++];
	if (!zila_blob_may_serve(bx->cfg.store, a.id, bx->cfg.peer_may_read, bx->cfg.peer_read_ctx)) {
		bx->st.refused_scope++;
		return send_refused(bx, a.id, REFUSE_SCOPE, sent);
	}
	struct zila_error e2;
	zila_error_clear(&e2);
	int r = zila_blob_reader_open(bx->cfg.store, a.id, &bx->rd, &e2);
	if (r == ZILA_ENOTFOUND || r == ZILA_EFORMAT) {
		bx->st.refused_missing++;
		return send_refused(bx, a.id, r == ZILA_EFORMAT ? REFUSE_DAMAGED : REFUSE_MISSING, sent);
	}
	if (r != 0)
		return zila_error_set(err, r, "%s", zila_error_msg(&e2, r));
	memcpy(bx->rd_id, a.id, 32);
	struct zila_view man = zila_blob_reader_manifest(bx->rd);
	bx->rd_n = (uint32_t)(man.len / 32);
	bx->rd_next = a.from < bx->rd_n ? a.from : 0;
	bx->rd_off = 0;
	Zila__Message m = ZILA__MESSAGE__INIT;
	Zila__BlobManifest mf = ZILA__BLOB_MANIFEST__INIT;
	mf.id.data = bx->rd_id;
	mf.id.len = 32;
	mf.size = zila_blob_reader_size(bx->rd);
	mf.chunks.data = (uint8_t *)man.p;
	mf.chunks.len = man.len;
	m.body_case = ZILA__MESSAGE__BODY_BLOB_MANIFEST;
	m.blob_manifest = &mf;
	r = emit(bx, &m, sent);
	bx->st.served++;
	if (r == 0 && bx->rd_n == 0) {
		zila_blob_reader_free(bx->rd);
		bx->rd = NULL;
	}
	return r;
}

int zila_blobx_send_more(struct zila_blobx *bx, size_t bytes, struct zila_error *err)
{
	size_t sent = 0;
	int r = 0;
	while (r == 0 && bx->started && (sent == 0 || sent < bytes)) {
		if (bx->rd == NULL) {
			if (bx->qhead >= bx->nq)
				break;
			r = serve_next(bx, &sent, err);
			continue;
		}
		Zila__Message m = ZILA__MESSAGE__INIT;
		Zila__BlobChunk c = ZILA__BLOB_CHUNK__INIT;
		struct zila_view v = zila_blob_reader_chunk(bx->rd, bx->rd_next);
		/* when the caller wants less than a chunk sent (a slow link), a peer that takes
		 * pieces gets pieces of about that much: the link then holds little ahead of new
		 * rows; else whole chunks */
		size_t len = v.len - bx->rd_off;
		if (bx->peer_pieces && bytes < ZILA_BLOB_CHUNK) {
			size_t piece = bytes > BLOBX_PIECE_MIN ? bytes : BLOBX_PIECE_MIN;
			if (len > piece)
				len = piece;
		}
		c.id.data = bx->rd_id;
		c.id.len = 32;
		c.index = bx->rd_next;
		c.data.data = (uint8_t *)v.p + bx->rd_off;
		c.data.len = len;
		c.offset = (uint32_t)bx->rd_off;
		m.body_case = ZILA__MESSAGE__BODY_BLOB_CHUNK;
		m.blob_chunk = &c;
		r = emit(bx, &m, &sent);
		bx->st.served_bytes += len;
		bx->rd_off += len;
		if (bx->rd_off < v.len)
			continue;
		bx->rd_off = 0;
		if (++bx->rd_next >= bx->rd_n) {
			zila_blob_reader_free(bx->rd);
			bx->rd = NULL;
		}
	}
	if (r != 0 && err != NULL && err->code == 0)
		r = zila_error_set(err, r, "cannot send a blob");
	return r;
}

bool zila_blobx_peer_may_finish(const struct zila_blobx *bx)
{
	return bx->started && bx->sent_done && bx->rd == NULL && bx->qhead >= bx->nq;
}

bool zila_blobx_done(const struct zila_blobx *bx)
{
	return bx->started && bx->sent_done && bx->peer_done && bx->rd == NULL && bx->qhead >= bx->nq;
}
