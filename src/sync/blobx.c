/* The blob phase, sans I/O (proto/ATTACH.md): asks, manifests, chunks, refusals, done. One
 * blob comes in at a time (the peer serves our asks in order), its chunks verified against
 * the manifest its id commits to; the files are the store's (zila/blob.h). */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "sync.pb-c.h"
#include "zila/blobx.h"
#include "zila/log.h"
#include "zila/pbuf.h"

#define QUEUE_MAX 100000 /* the peer's asks waiting, at most */
#define REFUSE_MISSING 1
#define REFUSE_SCOPE 2
#define REFUSE_DAMAGED 3
#define REFUSE_UNSHOWN 4 /* a row it may read names it; not shown held in that row's partition */
#define PARTS_ARENA_MAX (8u << 20) /* the partitions of the peer's waiting asks, at most */
#define BLOBX_PIECE_MIN 1024 /* a piece of a chunk is at least this (unless the chunk's end) */

/* Partitions (ATTACH.md, "Possession") are kept in an arena, NUL-terminated, back to back. */
struct ask {
	uint8_t id[32];
	uint32_t from;
	uint32_t poff; /* its partitions in the asks' arena */
	uint32_t np;   /* 0: any (an older zila) */
};

struct mine {
	uint8_t id[32];
	uint64_t size;
	bool open;    /* asked, no answer yet */
	bool retried; /* asked a second time after a bad chunk */
	bool present; /* held whole here: asked to have it shown in parts */
	uint32_t poff, np; /* the partitions it is not shown in here, in our arena */
};

struct zila_blobx {
	struct zila_blobx_config cfg;
	struct zila_blobx_stats st;
	bool started, sent_done, peer_done;
	bool peer_pieces; /* the peer takes chunks in pieces (its BlobWant said so) */
	/* the peer's asks, served in order */
	struct ask *q;
	size_t nq, qhead, qcap;
	struct zila_buf qparts; /* their partitions */
	struct zila_blob_reader *rd; /* the blob being served */
	uint8_t rd_id[32];
	uint32_t rd_next, rd_n;
	size_t rd_off; /* of chunk rd_next, the bytes sent already (in pieces) */
	/* our asks */
	struct mine *mine;
	size_t nmine, nopen;
	struct zila_buf mparts; /* their partitions */
	/* the blob coming in */
	struct mine *in;
	struct zila_blob_writer *w;
	uint32_t in_n;   /* its chunks */
	uint64_t in_size; /* its bytes, as its manifest says */
	struct zila_buf piece; /* the chunk being put together from pieces */
	uint32_t piece_idx;
	bool piece_on;
	bool in_skip;    /* its chunks are dropped (refused) */
	bool in_retry;   /* ask for it again when its chunks end */
	bool in_proof;   /* held here already: its chunks are checked, not kept, to show it */
	struct zila_buf in_hashes; /* then its manifest's chunk hashes */
	uint32_t proof_next;
	struct zila_buf credit; /* the partitions it will be shown in once whole (NUL-terminated) */
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
	zila_buf_init(&bx->qparts, PARTS_ARENA_MAX);
	zila_buf_init(&bx->mparts, PARTS_ARENA_MAX);
	zila_buf_init(&bx->in_hashes, ZILA_BLOB_CHUNKS_MAX * 32);
	zila_buf_init(&bx->credit, ZILA_BLOB_PARTS_MAX * (ZILA_PART_MAX + 1));
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
	zila_buf_release(&bx->qparts);
	zila_buf_release(&bx->mparts);
	zila_buf_release(&bx->in_hashes);
	zila_buf_release(&bx->credit);
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
	size_t nparts = 0;
	for (size_t i = 0; i < n; i++)
		nparts += list[i]->np;
	char **pp = calloc(nparts ? nparts : 1, sizeof(*pp));
	int r = 0;
	if (a == NULL || ap == NULL || pp == NULL) {
		r = ZILA_ENOMEM;
		goto out;
	}
	nparts = 0;
	for (size_t i = 0; i < n; i++) {
		zila__blob_ask__init(&a[i]);
		a[i].id.data = (uint8_t *)list[i]->id;
		a[i].id.len = 32;
		/* a blob held here is shown by all of its bytes, from the first */
		a[i].from = list[i]->present ? 0 : zila_blob_part_chunks(bx->cfg.store, list[i]->id);
		a[i].parts = pp + nparts;
		const char *q = (const char *)bx->mparts.p + list[i]->poff;
		for (uint32_t k = 0; k < list[i]->np; k++) {
			pp[nparts++] = (char *)q;
			q += strlen(q) + 1;
		}
		a[i].n_parts = list[i]->np;
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
	free(pp);
	return r;
}

struct want_ctx {
	struct zila_blobx *bx;
	int r;
};

static bool peer_may_write(const struct zila_blobx *bx, const char *part)
{
	return bx->cfg.peer_may_write == NULL || bx->cfg.peer_may_write(bx->cfg.peer_write_ctx, part);
}

static int want_one(void *ctx, const uint8_t id[32], uint64_t size, bool asked, uint32_t have, bool present,
		    const char *const *parts, size_t nparts)
{
	struct want_ctx *w = ctx;
	struct zila_blobx *bx = w->bx;
	(void)have;
	/* held here, not shown in some partitions of its rows: only a peer that may write one of
	 * them can show it (the others could only relay bytes we have) */
	size_t np = 0;
	const char *use[ZILA_BLOB_PARTS_MAX];
	for (size_t i = 0; i < nparts && np < ZILA_BLOB_PARTS_MAX; i++)
		if (!present || peer_may_write(bx, parts[i]))
			use[np++] = parts[i];
	if (present && np == 0)
		return 0;
	if (!bx->cfg.fetch_all && !asked && size > bx->cfg.fetch_below) {
		bx->st.wanted_left++;
		return 0;
	}
	size_t poff = bx->mparts.len;
	for (size_t i = 0; i < np; i++)
		if (zila_buf_put(&bx->mparts, use[i], strlen(use[i]) + 1) != 0)
			return ZILA_ENOMEM;
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
	m->present = present;
	m->poff = (uint32_t)poff;
	m->np = (uint32_t)np;
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
	int r = zila_blob_needed(bx->cfg.store, want_one, &w, err);
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

/* The incoming blob is here whole (received, or its bytes checked against a copy held here):
 * it is held shown in the partitions its manifest credited. */
static int credit(struct zila_blobx *bx, struct zila_error *err)
{
	const char *p = (const char *)bx->credit.p;
	for (size_t at = 0; at < bx->credit.len; at += strlen(p + at) + 1) {
		int r = zila_blob_held_add(bx->cfg.store, bx->in->id, p + at, err);
		if (r != 0)
			return r;
	}
	if (bx->credit.len > 0) {
		bx->st.shown++;
		bx->st.shown_bytes += bx->in_size;
	}
	zila_buf_reset(&bx->credit);
	return 0;
}

/* The incoming blob's chunks ended (its last one arrived): ask again once after a bad one. */
static int in_end(struct zila_blobx *bx)
{
	struct mine *m = bx->in;
	bool retry = bx->in_retry && !m->retried;
	zila_buf_reset(&bx->credit);
	bx->in_proof = false;
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

struct unshown_ctx {
	struct zila_blobx *bx;
	int r;
};

static int credit_add(struct zila_blobx *bx, const char *part)
{
	return zila_buf_put(&bx->credit, part, strlen(part) + 1);
}

/* The partitions the blob coming in will be shown in: those its manifest says the peer holds
 * it shown in and the peer may write (a relay of d1's file is no proof for d2's rows, even from
 * HQ). An older zila says nothing: then those of ours the peer may write, unless it may write
 * every partition (HQ relays files; its bytes show nothing about a district). */
static int credit_plan(struct zila_blobx *bx, const Zila__BlobManifest *mf, const struct mine *m, struct zila_error *err)
{
	int r = 0;
	zila_buf_reset(&bx->credit);
	if (mf->n_held_in > ZILA_BLOB_PARTS_MAX)
		return zila_error_set(err, ZILA_EFORMAT, "a blob manifest shows more than %d partitions", ZILA_BLOB_PARTS_MAX);
	for (size_t i = 0; i < mf->n_held_in; i++)
		if (strlen(mf->held_in[i]) > ZILA_PART_MAX)
			return zila_error_set(err, ZILA_EFORMAT, "a blob manifest with a malformed partition");
	if (mf->held) {
		for (size_t i = 0; r == 0 && i < mf->n_held_in; i++)
			if (peer_may_write(bx, mf->held_in[i]))
				r = credit_add(bx, mf->held_in[i]);
	} else if (bx->cfg.peer_may_write != NULL && !peer_may_write(bx, "")) {
		const char *q = (const char *)bx->mparts.p + m->poff;
		for (uint32_t k = 0; r == 0 && k < m->np; k++, q += strlen(q) + 1)
			if (peer_may_write(bx, q))
				r = credit_add(bx, q);
	}
	return r ? zila_error_set(err, r, "out of memory") : 0;
}

static int take_manifest(struct zila_blobx *bx, const Zila__BlobManifest *mf, struct zila_error *err)
{
	struct mine *m = mine_of(bx, &mf->id);
	uint32_t next = 0;
	if (m == NULL || bx->in != NULL)
		return zila_error_set(err, ZILA_EPROTO, "a blob manifest that was not asked for");
	if (mf->chunks.len % 32 != 0 || mf->size > ZILA_BLOB_SIZE_MAX)
		return zila_error_set(err, ZILA_EFORMAT, "a malformed blob manifest");
	int r = credit_plan(bx, mf, m, err);
	if (r != 0)
		return r;
	bx->in = m;
	bx->in_n = (uint32_t)(mf->chunks.len / 32);
	bx->in_size = mf->size;
	bx->in_skip = bx->in_retry = bx->in_proof = false;
	bx->piece_on = false;
	r = zila_blob_writer_open(bx->cfg.store, m->id, mf->size, mf->chunks.data, mf->chunks.len / 32, &bx->w, &next,
				  err);
	if (r == ZILA_EEXIST || (r == 0 && bx->in_n == 0)) {
		/* held already (shown here for other partitions, or another peer brought it): its
		 * chunks are checked against the manifest, which makes the id, to show it; or empty */
		uint8_t id[32];
		if (r == 0 && (r = zila_blob_put(bx->cfg.store, NULL, 0, id, err)) != 0)
			return r;
		if (bx->in_n == 0) {
			bx->st.received++;
			r = credit(bx, err);
			return r ? r : in_end(bx);
		}
		zila_error_clear(err);
		zila_buf_reset(&bx->in_hashes);
		if (zila_buf_put(&bx->in_hashes, mf->chunks.data, mf->chunks.len) != 0)
			return zila_error_set(err, ZILA_ENOMEM, "out of memory");
		bx->in_proof = true;
		bx->proof_next = 0;
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
	if (bx->in_proof && !bx->in_skip) {
		uint8_t h[32];
		uint64_t want = bx->in_size - (uint64_t)c->index * ZILA_BLOB_CHUNK;
		if (want > ZILA_BLOB_CHUNK)
			want = ZILA_BLOB_CHUNK;
		crypto_generichash(h, 32, data, dlen, NULL, 0);
		if (c->index != bx->proof_next || dlen != want ||
		    sodium_memcmp(h, bx->in_hashes.p + (size_t)c->index * 32, 32) != 0) {
			/* not the bytes: nothing is shown; asked for once more */
			bx->st.chunks_bad++;
			bx->in_skip = true;
			bx->in_retry = true;
		} else if (++bx->proof_next == bx->in_n) {
			bx->st.received_bytes += dlen;
			int r = credit(bx, err);
			return r ? r : in_end(bx);
		} else {
			bx->st.received_bytes += dlen;
		}
	} else if (!bx->in_skip) {
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
				r = credit(bx, err);
				return r ? r : in_end(bx);
			}
		}
	}
	return last ? in_end(bx) : 0;
}

static int queue_asks(struct zila_blobx *bx, const Zila__BlobWant *w, struct zila_error *err)
{
	if (w->n_asks > ZILA_BLOBX_ASKS_MAX || bx->peer_done || bx->nq - bx->qhead + w->n_asks > QUEUE_MAX)
		return zila_error_set(err, ZILA_EPROTO, "too many blob asks");
	if (bx->qhead >= bx->nq)
		zila_buf_reset(&bx->qparts); /* every ask served: their partitions with them */
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
		const Zila__BlobAsk *a = w->asks[i];
		if (a->n_parts > ZILA_BLOB_PARTS_MAX)
			return zila_error_set(err, ZILA_EFORMAT, "a blob ask names more than %d partitions", ZILA_BLOB_PARTS_MAX);
		struct ask *q = &bx->q[bx->nq];
		memcpy(q->id, a->id.data, 32);
		q->from = a->from;
		q->poff = (uint32_t)bx->qparts.len;
		q->np = (uint32_t)a->n_parts;
		for (size_t k = 0; k < a->n_parts; k++) {
			size_t n = strlen(a->parts[k]);
			if (n > ZILA_PART_MAX)
				return zila_error_set(err, ZILA_EFORMAT, "a blob ask with a malformed partition");
			if (zila_buf_put(&bx->qparts, a->parts[k], n + 1) != 0)
				return zila_error_set(err, ZILA_EPROTO, "too many blob asks");
		}
		bx->nq++;
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

struct shown_ctx {
	const struct zila_blobx *bx;
	const struct ask *a;
	char *parts[ZILA_BLOB_PARTS_MAX];
	size_t n;
	bool asked; /* one of them is one the peer asked for */
};

static int shown_one(void *ctx, const char *part)
{
	struct shown_ctx *c = ctx;
	if (c->n >= ZILA_BLOB_PARTS_MAX)
		return 0;
	if ((c->parts[c->n] = strdup(part)) == NULL)
		return ZILA_ENOMEM;
	c->n++;
	const char *q = (const char *)c->bx->qparts.p + c->a->poff;
	for (uint32_t k = 0; !c->asked && k < c->a->np; k++, q += strlen(q) + 1)
		c->asked = strcmp(q, part) == 0;
	if (c->a->np == 0)
		c->asked = true;
	return 0;
}

/* Opens the next ask: its manifest, or a refusal. A blob is served for a partition the peer
 * may read where a live row names it and it is held shown (possession); when the peer named
 * partitions, for one of those. */
static int serve_next(struct zila_blobx *bx, size_t *sent, struct zila_error *err)
{
	struct ask a = bx->q[bx->qhead++];
	struct shown_ctx sc;
	memset(&sc, 0, sizeof(sc));
	sc.bx = bx;
	sc.a = &a;
	int r = zila_blob_shown(bx->cfg.store, a.id, bx->cfg.peer_may_read, bx->cfg.peer_read_ctx, shown_one, &sc);
	if (r != 0)
		goto out;
	if (!sc.asked) {
		char hex[65];
		zila_hex_encode(hex, a.id, 32);
		if (!zila_blob_named(bx->cfg.store, a.id, bx->cfg.peer_may_read, bx->cfg.peer_read_ctx)) {
			bx->st.refused_scope++;
			r = send_refused(bx, a.id, REFUSE_SCOPE, sent);
			goto out;
		}
		if (!zila_blob_present(bx->cfg.store, a.id)) {
			bx->st.refused_missing++;
			r = send_refused(bx, a.id, REFUSE_MISSING, sent);
			goto out;
		}
		/* the hash is no capability: a row naming it is not enough */
		zila_log(ZILA_LOG_WARN,
			 "%s asked for file %.12s, which a row it may read names, but it has not shown it holds it: no"
			 " device that may write that row's district has sent this replica the file; refused",
			 bx->cfg.peer_name ? bx->cfg.peer_name : "the peer", hex);
		bx->st.refused_unshown++;
		r = send_refused(bx, a.id, REFUSE_UNSHOWN, sent);
		goto out;
	}
	struct zila_error e2;
	zila_error_clear(&e2);
	r = zila_blob_reader_open(bx->cfg.store, a.id, &bx->rd, &e2);
	if (r == ZILA_ENOTFOUND || r == ZILA_EFORMAT) {
		bx->st.refused_missing++;
		r = send_refused(bx, a.id, r == ZILA_EFORMAT ? REFUSE_DAMAGED : REFUSE_MISSING, sent);
		goto out;
	}
	if (r != 0) {
		r = zila_error_set(err, r, "%s", zila_error_msg(&e2, r));
		goto out;
	}
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
	mf.held = true;
	mf.held_in = sc.parts;
	mf.n_held_in = sc.n;
	m.body_case = ZILA__MESSAGE__BODY_BLOB_MANIFEST;
	m.blob_manifest = &mf;
	r = emit(bx, &m, sent);
	bx->st.served++;
	if (r == 0 && bx->rd_n == 0) {
		zila_blob_reader_free(bx->rd);
		bx->rd = NULL;
	}
out:
	for (size_t i = 0; i < sc.n; i++)
		free(sc.parts[i]);
	if (r != 0 && err != NULL && err->code == 0)
		r = zila_error_set(err, r, "cannot serve a blob");
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
