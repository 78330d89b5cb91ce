/* The sync session (proto/PROTOCOL.md): Hello with partition digests, then trust records and
 * feed heads where they differ, then acknowledged chunks of entries in causal order. Pure: no
 * sockets, no clock; the store is the only thing it touches. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "sync.pb-c.h"
#include "zila/log.h"
#include "zila/pbuf.h"
#include "zila/session.h"

#define DIGEST_LEN 16
#define TRUST_MSG_BYTES (256 * 1024) /* trust record bytes per Trust message */
#define TRUST_RECORD_MAX 4096
#define TRUST_ID_MAX 64
#define ENTRIES_PER_CHUNK_MAX 100000
#define REASON_MAX 200
#define CERT_FILE_MAX 4096
#define REFUSED_MAX 64 /* Refused items in one Ack */
#define CK_SLICE (512u << 10)      /* checkpoint bytes per Checkpoint message */
#define CK_UNACKED (4 * CK_SLICE) /* checkpoint bytes sent and not yet acknowledged */
#define CK_MAX (1ull << 30)        /* a checkpoint's size */
#define CK_WAIT_MAX 64             /* checkpoints held for a schema, per session */
/* Hello flags */
#define HELLO_HQ 1u       /* the sender is HQ */
#define HELLO_PROGRESS 2u /* the sender (live) sends and takes Progress messages */
#define HELLO_REFS 4u     /* the sender takes keys by reference in packed chunks */
#define HELLO_BLOBS 8u    /* the sender (live) moves attachments' blobs after Done (ATTACH.md) */
#define HELLO_LATE 16u    /* the sender (live, with blobs) sends and takes entries in the blob phase */
/* Packed chunks (PROTOCOL.md): one zstd stream per direction, at this level and window. */
#define PACK_LEVEL 3
#define PACK_LEVEL_SMALL 19 /* a session of one chunk of PACK_SMALL_MIN .. PACK_SMALL_MAX */
#define PACK_SMALL_MIN (16u << 10)
#define PACK_SMALL_MAX (256u << 10)
#define PACK_WINDOW_LOG 21
#define PACK_WINDOW_LOG_MAX 22 /* what a receiver accepts: 4 MiB of window per session */
#define PACK_PLAIN_MAX (4u << 20) /* wire-form bytes a sender puts in one chunk (one entry past it) */
#define PACK_PLAIN_LIMIT (PACK_PLAIN_MAX + 2 * ZILA_ENTRY_MAX + 8192) /* what a receiver takes */

/* One of our own feeds as the peer holds it (for own_at_peer). */
struct own_feed {
	char part[ZILA_PART_MAX + 1];
	uint64_t ours, peer;
	uint64_t acked; /* the highest of ours in a chunk the peer acknowledged */
	uint64_t late;  /* after DONE: the highest of ours sent in the blob phase */
	bool skipped;   /* not offered: the peer refused it before */
};

/* Our own entries in a chunk not acknowledged yet: the last of one feed in that chunk. */
struct own_sent {
	uint64_t chunk;
	size_t feed; /* index in own[] */
	uint64_t seq;
};

#define SENT_RING 128 /* > ZILA_SESSION_WINDOW_MAX: chunks unacknowledged at most */

struct pdigest {
	char part[ZILA_PART_MAX + 1];
	uint8_t digest[DIGEST_LEN];
	uint32_t nfeeds;
	uint64_t ckpt; /* the newest checkpoint of it we keep (its HLC), 0: none */
};

#define WITHHELD_MAX 64

struct zila_session {
	struct zila_session_config cfg;
	struct zila_feed_head withheld[WITHHELD_MAX]; /* own feeds peers would refuse */
	size_t nwithheld;
	enum zila_session_state state;
	struct zila_session_stats st;
	bool importing;
	struct zila_vector mine; /* our heads at start */
	struct pdigest *parts;   /* ours, sorted by part */
	size_t nparts;
	uint8_t trust_digest[DIGEST_LEN];
	uint8_t history_digest[DIGEST_LEN]; /* over the earlier certificates (type 3) */
	bool has_trust;
	char (*differ)[ZILA_PART_MAX + 1]; /* partitions to exchange, sorted */
	size_t ndiffer;
	bool trust_differs;
	bool got_heads;      /* the peer's Heads arrived: our outbox is open */
	struct zila_outbox *outbox;
	bool sent_done, got_done;
	uint64_t chunks_sent, chunks_acked, chunks_received;
	uint64_t hq_seen_ms;     /* sent in our Hello */
	unsigned peer_window;    /* chunks we may send unacknowledged (the peer's Hello) */
	/* Received chunks not yet applied: applied together, in one transaction, when the
	 * window is full or the peer's Done arrives. */
	struct zila_buf pend;
	size_t *pend_offs, npend, pend_cap;
	unsigned pend_chunks;
	/* A window closed and waiting to be applied (zila_session_pending): views into pend. */
	struct zila_view *win;
	size_t nwin;
	bool win_ack;        /* acknowledge it once applied (not when the link is gone) */
	bool done_after;     /* the peer's Done came with it: counted once it is applied */
	uint64_t done_entries;
	struct zila_buf msg;   /* an encoded message being sent */
	struct zila_buf chunk; /* the entries of a chunk being built */
	/* Packed chunks: made at the first chunk each way, freed with the session. */
	bool pack;             /* the peer speaks protocol 2 (or this is a bundle) */
	bool frame_per_chunk;  /* a bundle: every packed chunk a whole zstd frame */
	bool pack_single;      /* the session sends one chunk: one frame of declared size */
	ZSTD_CCtx *zc;
	ZSTD_DCtx *zd;
	bool zd_between;       /* the stream zd reads ended a frame with the last chunk */
	struct zila_entry_coder *enc, *dec;
	struct zila_buf wire;  /* a chunk's entries in wire form */
	struct zila_buf zbuf;  /* a packed chunk */
	struct own_feed *own;  /* our own feeds in partitions the peer reads */
	size_t nown;
	bool own_known;        /* own[].peer is known (its Heads, or digests equal) */
	struct own_sent *osent; /* in chunk order; those up to the peer's last Ack are taken off */
	size_t nosent, osent_cap;
	uint64_t sent_upto[SENT_RING]; /* entries sent up to and including chunk k, at k % SENT_RING */
	/* Pacing (cfg.paced): chunks the caller allows now, and their size. */
	unsigned credit;
	size_t credit_bytes;
	bool peer_progress; /* the peer's Hello offered Progress messages */
	/* Checkpoints (protocol 3, PROTOCOL.md "Checkpoints"): those we send before entries, in
	 * order (ck_pos: the one being sent), and whether the peer takes them at all. */
	bool peer_ckpt;
	bool ck_unlimited; /* a bundle: nobody acknowledges, everything goes at once */
	/* With checkpoints to send: the org-wide partition's entries first (the schema the
	 * checkpoints need), then the checkpoints, then outbox_b: every other partition's
	 * entries past them. ck_phase: 0 none, 1 org-wide entries, 2 checkpoints, 3 the rest. */
	int ck_phase;
	struct zila_outbox *outbox_b;
	zila_part_filter_fn ck_filter; /* the export's filter (a bundle) */
	void *ck_filter_ctx;
	bool ck_merge_due; /* a whole checkpoint waits for the window before it to be applied */
	struct pdigest *peer_parts; /* the peer's Hello: what checkpoints it keeps */
	size_t npeer_parts;
	struct ck_out {
		char part[ZILA_PART_MAX + 1];
		uint8_t *bytes;
		size_t len, sent, acked;
		struct zila_vector heads; /* the feed heads it stands for */
		bool refused;             /* the peer refused it or holds it for its schema */
	} *ck;
	struct zila_vector ck_have; /* the peer's vector before the checkpoints raised it */
	size_t nck, ck_pos;
	/* one arriving, and those that wait for our schema to catch up (tried after each window) */
	char ck_in_part[ZILA_PART_MAX + 1];
	uint64_t ck_in_total;
	struct zila_buf ck_in;
	struct ck_wait {
		uint8_t *bytes;
		size_t len;
	} ck_wait[CK_WAIT_MAX];
	size_t nck_wait;
	bool offer_refs;    /* our Hello said we take keys by reference */
	bool peer_refs;     /* the peer's Hello said it takes them */
	bool peer_blobs;    /* the peer's Hello offered the blob phase, and so did ours */
	bool peer_late;     /* both Hellos offered entries in the blob phase (HELLO_LATE) */
	/* Our own entries sealed since the session's outbox opened, sent after DONE in the
	 * blob phase (zila_session_late_rows): the cursor, and a newer seal to look at once
	 * it is empty. */
	struct zila_outbox *late;
	bool late_again;
};

/* --- helpers ---------------------------------------------------------------------- */

static int fail(struct zila_session *s, struct zila_error *err, int code, const char *what)
{
	s->state = ZILA_SESSION_FAILED;
	return zila_error_set(err, code, "%s", what);
}

/* protobuf-c gives strings NUL-terminated; a name is valid UTF-8 without control bytes. */
static bool name_ok(const char *p, size_t max)
{
	if (p == NULL)
		return false;
	size_t n = strlen(p);
	if (n > max || !zila_utf8_valid((const uint8_t *)p, n))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((uint8_t)p[i] < 0x20 || p[i] == 0x7f)
			return false;
	return true;
}

static int emit(struct zila_session *s, const Zila__Message *m)
{
	size_t n = zila__message__get_packed_size(m);
	if (n > ZILA_SESSION_MSG_MAX)
		return ZILA_ETOOBIG;
	zila_buf_reset(&s->msg);
	int r = zila_buf_reserve(&s->msg, n);
	if (r != 0)
		return r;
	zila__message__pack(m, s->msg.p);
	s->st.msgs_sent++;
	s->st.bytes_sent += n;
	return s->cfg.send(s->cfg.send_ctx, s->msg.p, n);
}

static int part_cmp(const void *a, const void *b)
{
	return strcmp(((const struct pdigest *)a)->part, ((const struct pdigest *)b)->part);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

static int head_part_cmp(const void *pa, const void *pb)
{
	const struct zila_feed_head *a = pa, *b = pb;
	int c = strcmp(a->part, b->part);
	return c ? c : memcmp(a->origin, b->origin, 32);
}

static int head_cmp(const void *pa, const void *pb)
{
	const struct zila_feed_head *a = pa, *b = pb;
	int c = memcmp(a->origin, b->origin, 32);
	return c ? c : strcmp(a->part, b->part);
}

static bool peer_may_read(const struct zila_session *s, const char *part)
{
	return s->cfg.peer_may_read == NULL || s->cfg.peer_may_read(s->cfg.peer_read_ctx, part);
}

static bool in_differ(const struct zila_session *s, const char *part)
{
	return s->ndiffer > 0 && bsearch(part, s->differ, s->ndiffer, sizeof(*s->differ), name_cmp) != NULL;
}

/* The outbox sends only what is to be exchanged and what the peer may read. */
static bool send_filter(void *ctx, const char *part)
{
	const struct zila_session *s = ctx;
	return in_differ(s, part) && peer_may_read(s, part);
}

/* --- digests ---------------------------------------------------------------------- */

/* Per partition the peer may read: BLAKE2b-128 over (origin, u64be seq, chain) of its feeds
 * in origin order: two replicas are in step only when they hold the same entries, not only
 * as many (a fork, PROTOCOL.md "Forks", keeps them out of step). */
static int note_ckpt(void *ctx, const struct zila_ckpt_info *c, size_t len)
{
	struct zila_session *s = ctx;
	(void)len;
	for (size_t i = 0; i < s->nparts; i++)
		if (strcmp(s->parts[i].part, c->part) == 0)
			s->parts[i].ckpt = c->hlc;
	return 0;
}

static int make_digests(struct zila_session *s)
{
	size_t n = s->mine.nheads;
	struct zila_feed_head *h = NULL;
	int r = 0;
	if (n == 0)
		return 0;
	if ((h = malloc(n * sizeof(*h))) == NULL || (s->parts = calloc(n, sizeof(*s->parts))) == NULL) {
		r = ZILA_ENOMEM;
		goto out;
	}
	memcpy(h, s->mine.heads, n * sizeof(*h));
	qsort(h, n, sizeof(*h), head_part_cmp);
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && strcmp(h[j].part, h[i].part) == 0)
			j++;
		if (peer_may_read(s, h[i].part)) {
			crypto_generichash_state g;
			struct pdigest *d = &s->parts[s->nparts++];
			crypto_generichash_init(&g, NULL, 0, DIGEST_LEN);
			for (size_t k = i; k < j; k++) {
				uint8_t seq[8];
				for (int b = 0; b < 8; b++)
					seq[b] = (uint8_t)(h[k].seq >> (56 - 8 * b));
				crypto_generichash_update(&g, h[k].origin, 32);
				crypto_generichash_update(&g, seq, 8);
				crypto_generichash_update(&g, h[k].chain, ZILA_CHAIN_LEN);
			}
			crypto_generichash_final(&g, d->digest, DIGEST_LEN);
			memcpy(d->part, h[i].part, sizeof(d->part));
			d->nfeeds = (uint32_t)(j - i);
		}
		i = j;
	}
out:
	free(h);
	return r;
}

/* A peer needs the certificates of devices whose entries it may receive (those that write a
 * partition it reads), HQ devices (issuers), and every revocation; others stay here: fewer
 * bytes per session, and a district learns nothing of the others' devices. */
static bool record_relevant(const struct zila_session *s, uint8_t type, struct zila_view bytes)
{
	struct zila_cert c;
	if (s->cfg.peer_may_read == NULL || (type != ZILA_TRUST_CERT && type != ZILA_TRUST_CERT_PAST) ||
	    zila_cert_decode(bytes, &c) != 0)
		return true;
	return c.scope_all || peer_may_read(s, c.district);
}

struct trust_hash {
	const struct zila_session *s;
	crypto_generichash_state g, gh; /* current records; earlier certificates */
};

static int trust_hash_one(void *ctx, uint8_t type, struct zila_view id, struct zila_view bytes)
{
	struct trust_hash *th = ctx;
	/* Earlier certificates have a digest of their own, which peers of before them ignore:
	 * trust_digest means what it meant to them. */
	crypto_generichash_state *g = type == ZILA_TRUST_CERT_PAST ? &th->gh : &th->g;
	if (!record_relevant(th->s, type, bytes))
		return 0;
	uint8_t h[32], len[4] = { (uint8_t)(id.len >> 24), (uint8_t)(id.len >> 16), (uint8_t)(id.len >> 8),
				  (uint8_t)id.len };
	crypto_generichash(h, sizeof(h), bytes.p, bytes.len, NULL, 0);
	crypto_generichash_update(g, &type, 1);
	crypto_generichash_update(g, len, 4);
	crypto_generichash_update(g, id.p, id.len);
	crypto_generichash_update(g, h, sizeof(h));
	return 0;
}

static int make_trust_digest(struct zila_session *s)
{
	struct trust_hash th;
	th.s = s;
	crypto_generichash_init(&th.g, NULL, 0, DIGEST_LEN);
	crypto_generichash_init(&th.gh, NULL, 0, DIGEST_LEN);
	int r = zila_store_trust_each(s->cfg.store, trust_hash_one, &th);
	crypto_generichash_final(&th.g, s->trust_digest, DIGEST_LEN);
	crypto_generichash_final(&th.gh, s->history_digest, DIGEST_LEN);
	return r;
}

/* --- sending trust records --------------------------------------------------------- */

struct trust_out {
	zila_session_send_fn send;
	void *send_ctx;
	struct zila_session *sess; /* for stats and the message buffer */
	Zila__TrustRecord *recs;
	Zila__TrustRecord **ptrs;
	uint8_t *store; /* copies of the ids and bytes of the records in this message */
	size_t n, cap, bytes;
	int pass; /* 0: issuers (certificates signed by the root), 1: other certificates, 2: the rest */
	uint8_t root_pk[32];
	bool has_root;
};

static int trust_flush(struct trust_out *t)
{
	if (t->n == 0)
		return 0;
	Zila__Trust tr = ZILA__TRUST__INIT;
	Zila__Message m = ZILA__MESSAGE__INIT;
	tr.n_records = t->n;
	tr.records = t->ptrs;
	m.body_case = ZILA__MESSAGE__BODY_TRUST;
	m.trust = &tr;
	int r = emit(t->sess, &m);
	t->sess->st.trust_sent += t->n;
	t->n = 0;
	t->bytes = 0;
	return r;
}

static int record_pass(const struct trust_out *t, uint8_t type, struct zila_view bytes)
{
	struct zila_cert c;
	if (type != ZILA_TRUST_CERT && type != ZILA_TRUST_CERT_PAST)
		return 2;
	if (zila_cert_decode(bytes, &c) != 0)
		return 2;
	return t->has_root && memcmp(c.issuer_pk, t->root_pk, 32) == 0 ? 0 : 1;
}

static int trust_add(void *ctx, uint8_t type, struct zila_view id, struct zila_view bytes)
{
	struct trust_out *t = ctx;
	if (record_pass(t, type, bytes) != t->pass || id.len > TRUST_ID_MAX || bytes.len > TRUST_RECORD_MAX ||
	    !record_relevant(t->sess, type, bytes))
		return 0;
	if (t->bytes + id.len + bytes.len > TRUST_MSG_BYTES || t->n == t->cap) {
		int r = trust_flush(t);
		if (r != 0)
			return r;
	}
	/* Each record keeps its own slice of the copy area (TRUST_ID_MAX + TRUST_RECORD_MAX). */
	uint8_t *slot = t->store + t->n * (TRUST_ID_MAX + TRUST_RECORD_MAX);
	memcpy(slot, id.p, id.len);
	memcpy(slot + TRUST_ID_MAX, bytes.p, bytes.len);
	Zila__TrustRecord *rec = &t->recs[t->n];
	zila__trust_record__init(rec);
	rec->type = type;
	rec->id.data = slot;
	rec->id.len = id.len;
	rec->bytes.data = slot + TRUST_ID_MAX;
	rec->bytes.len = bytes.len;
	t->ptrs[t->n++] = rec;
	t->bytes += id.len + bytes.len;
	return 0;
}

/* Sends every trust record, issuers first so a receiver can check each as it arrives. */
static int send_trust(struct zila_session *s)
{
	struct trust_out t;
	memset(&t, 0, sizeof(t));
	t.sess = s;
	t.cap = 64;
	t.has_root = zila_trust_org(s->cfg.store, t.root_pk) == 0;
	t.recs = calloc(t.cap, sizeof(*t.recs));
	t.ptrs = calloc(t.cap, sizeof(*t.ptrs));
	t.store = malloc(t.cap * (TRUST_ID_MAX + TRUST_RECORD_MAX));
	int r = t.recs && t.ptrs && t.store ? 0 : ZILA_ENOMEM;
	for (t.pass = 0; r == 0 && t.pass < 3; t.pass++)
		r = zila_store_trust_each(s->cfg.store, trust_add, &t);
	r = r ? r : trust_flush(&t);
	free(t.recs);
	free(t.ptrs);
	free(t.store);
	return r;
}

/* The id a record is kept under comes from the record itself, never from the sender. */
static int record_id(uint8_t type, struct zila_view bytes, uint8_t id[32])
{
	if (type == ZILA_TRUST_CERT || type == ZILA_TRUST_CERT_PAST) {
		struct zila_cert c;
		int r = zila_cert_decode(bytes, &c);
		if (r == 0)
			memcpy(id, c.device_pk, 32);
		return r;
	}
	if (type == ZILA_TRUST_REVOKE) {
		struct zila_revocation rv;
		memset(&rv, 0, sizeof(rv));
		int r = zila_revocation_decode(bytes, &rv);
		if (r == 0)
			memcpy(id, rv.device_pk, 32);
		zila_revocation_release(&rv);
		return r;
	}
	return ZILA_EFORMAT;
}

static int receive_trust(struct zila_session *s, const Zila__Trust *tr, struct zila_error *err)
{
	bool *done = calloc(tr->n_records + 1, sizeof(*done));
	if (done == NULL)
		return fail(s, err, ZILA_ENOMEM, "out of memory");
	/* A record may depend on one later in the message: passes repeat while they accept
	 * something new; what is still refused is logged and dropped. */
	int r = 0;
	for (bool progress = true; r == 0 && progress;) {
		progress = false;
		for (size_t i = 0; r == 0 && i < tr->n_records; i++) {
			const Zila__TrustRecord *rec = tr->records[i];
			struct zila_view bytes = zila_view_make(rec->bytes.data, rec->bytes.len);
			uint8_t id[32];
			struct zila_error why;
			zila_error_clear(&why);
			if (done[i])
				continue;
			if (rec->type > 255 || record_id((uint8_t)rec->type, bytes, id) != 0) {
				done[i] = true;
				continue;
			}
			/* Sessions send every record on any change: skip what is kept already. */
			if (zila_trust_held(s->cfg.store, (uint8_t)rec->type, bytes)) {
				done[i] = true;
				continue;
			}
			if (zila_trust_check_record(s->cfg.trust, (uint8_t)rec->type, bytes, &why) != 0)
				continue;
			/* A certificate older than the one held is kept as an earlier one. */
			if ((r = zila_trust_keep(s->cfg.store, (uint8_t)rec->type, bytes)) != 0)
				break;
			done[i] = progress = true;
			s->st.trust_received++;
		}
	}
	for (size_t i = 0; r == 0 && i < tr->n_records; i++)
		if (!done[i])
			zila_log(ZILA_LOG_INFO, "a trust record from the peer was not kept (unknown issuer, older or invalid)");
	free(done);
	if (r == 0)
		return 0;
	s->state = ZILA_SESSION_FAILED;
	return zila_error_set(err, r, "cannot store a trust record: %s", zila_strerror(r));
}

/* --- entries ------------------------------------------------------------------------ */

static const struct own_feed *own_of(const struct zila_session *s, const char *part, size_t *idx)
{
	for (size_t i = 0; i < s->nown; i++)
		if (strcmp(s->own[i].part, part) == 0) {
			*idx = i;
			return &s->own[i];
		}
	return NULL;
}

/* Notes one of our own entries going out in chunk: once that chunk is acknowledged, the
 * peer holds it (unless its Ack refused the feed), even if the session is cut later. */
static int own_sent_note(struct zila_session *s, const struct zila_entry_info *info, uint64_t chunk)
{
	size_t idx;
	if (!s->own_known || memcmp(info->origin, zila_store_device_pk(s->cfg.store), 32) != 0 ||
	    own_of(s, info->part, &idx) == NULL)
		return 0;
	if (s->state == ZILA_SESSION_DONE && info->seq > s->own[idx].late)
		s->own[idx].late = info->seq;
	if (s->nosent > 0 && s->osent[s->nosent - 1].chunk == chunk && s->osent[s->nosent - 1].feed == idx) {
		s->osent[s->nosent - 1].seq = info->seq;
		return 0;
	}
	if (s->nosent == s->osent_cap) {
		size_t cap = s->osent_cap ? s->osent_cap * 2 : 16;
		struct own_sent *no = realloc(s->osent, cap * sizeof(*no));
		if (no == NULL)
			return ZILA_ENOMEM;
		s->osent = no;
		s->osent_cap = cap;
	}
	s->osent[s->nosent++] = (struct own_sent){ chunk, idx, info->seq };
	return 0;
}

static void own_count(struct zila_session *s, bool done);

/* The peer acknowledged every chunk up to chunk: what of ours they held is now its. */
static void own_acked(struct zila_session *s, uint64_t chunk)
{
	size_t k = 0;
	while (k < s->nosent && s->osent[k].chunk <= chunk) {
		struct own_feed *o = &s->own[s->osent[k].feed];
		if (s->osent[k].seq > o->acked)
			o->acked = s->osent[k].seq;
		k++;
	}
	if (k > 0) {
		memmove(s->osent, s->osent + k, (s->nosent - k) * sizeof(*s->osent));
		s->nosent -= k;
	}
	s->st.entries_acked = s->sent_upto[chunk % SENT_RING];
	own_count(s, false);
}

/* --- packed chunks (PROTOCOL.md, "Packed chunks") ----------------------------------- */

/* Notes where the next pending entry starts in s->pend. */
static int pend_mark(struct zila_session *s)
{
	if (s->npend == s->pend_cap) {
		size_t cap = s->pend_cap ? s->pend_cap * 2 : 256;
		size_t *no = realloc(s->pend_offs, cap * sizeof(*no));
		if (no == NULL)
			return ZILA_ENOMEM;
		s->pend_offs = no;
		s->pend_cap = cap;
	}
	s->pend_offs[s->npend++] = s->pend.len;
	return 0;
}

/* Decompresses p as the next part of the stream zd reads into out (reset first), which must
 * hold all of it: ZILA_ETOOBIG past out's maximum, ZILA_EFORMAT when it is not zstd or stops
 * inside a block (a sender flushes or ends a frame with every chunk). *between: p ended a
 * frame, so zd holds nothing the next chunk needs. */
static int unpack_stream(ZSTD_DCtx *zd, const uint8_t *p, size_t len, struct zila_buf *out, bool *between)
{
	ZSTD_inBuffer in = { p, len, 0 };
	zila_buf_reset(out);
	for (;;) {
		if (out->cap == out->len) {
			size_t more = out->max - out->len < 65536 ? out->max - out->len : 65536;
			if (more == 0 || zila_buf_reserve(out, more) != 0)
				return ZILA_ETOOBIG;
		}
		ZSTD_outBuffer o = { out->p + out->len, out->cap - out->len, 0 };
		size_t r = ZSTD_decompressStream(zd, &o, &in);
		if (ZSTD_isError(r))
			return ZILA_EFORMAT;
		out->len += o.pos;
		*between = r == 0;
		/* Done when all input is taken and the output did not fill (nothing held back). */
		if (in.pos == in.size && o.pos < o.size)
			return 0;
	}
}

static int pack_begin(struct zila_session *s)
{
	if (zila_entry_coder_new(&s->enc) != 0 || (s->zc = ZSTD_createCCtx()) == NULL)
		return ZILA_ENOMEM;
	if (s->peer_refs && zila_entry_coder_refs(s->enc, true, NULL) != 0)
		return ZILA_ENOMEM;
	/* s->wire serves both directions (one at a time): the receiving side may have made it */
	if (s->wire.max == 0)
		zila_buf_init(&s->wire, PACK_PLAIN_LIMIT);
	zila_buf_init(&s->zbuf, ZILA_SESSION_MSG_MAX - 64);
	return 0;
}

/* The stream's parameters, set at its first chunk. A session that sends one chunk (a day's
 * work, an incremental sync) ends its frame there with the size declared, so zstd sizes its
 * tables to it; one of 16 to 256 KiB in wire form is worth the slow level (about 30 ms for
 * 49 KB here, 5% fewer bytes: on a 64 kbit/s link 130 ms less, and more on a lossy one). Longer
 * sessions stream at a fast level, flushed at every chunk; bundles always do. */
static int pack_params(struct zila_session *s, bool last)
{
	size_t n = s->wire.len;
	s->pack_single = last && !s->frame_per_chunk;
	/* not for bundles: a USB stick has no link to save */
	int level = s->pack_single && n >= PACK_SMALL_MIN && n <= PACK_SMALL_MAX ? PACK_LEVEL_SMALL : PACK_LEVEL;
	if (ZSTD_isError(ZSTD_CCtx_setParameter(s->zc, ZSTD_c_compressionLevel, level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(s->zc, ZSTD_c_windowLog, PACK_WINDOW_LOG)) ||
	    (last && ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(s->zc, n))))
		return ZILA_EINTERNAL;
	return 0;
}

/* s->wire, compressed as the next part of this direction's stream, into s->zbuf: flushed so
 * the receiver can read the whole chunk now; a bundle ends the frame with every chunk, so
 * that each of its messages can be checked on its own, and a live session with a chunk
 * after which it waits for an Ack or has no more (frame_end), so that the receiver can free
 * its decompression context while it applies the window. */
static int pack_chunk(struct zila_session *s, bool frame_end)
{
	ZSTD_inBuffer in = { s->wire.p, s->wire.len, 0 };
	ZSTD_EndDirective how = s->frame_per_chunk || s->pack_single || frame_end ? ZSTD_e_end : ZSTD_e_flush;
	zila_buf_reset(&s->zbuf);
	for (;;) {
		size_t room = ZSTD_compressBound(s->wire.len) + 64;
		if (room > s->zbuf.max - s->zbuf.len)
			room = s->zbuf.max - s->zbuf.len;
		if (room == 0 || zila_buf_reserve(&s->zbuf, room) != 0)
			return ZILA_ETOOBIG;
		ZSTD_outBuffer out = { s->zbuf.p + s->zbuf.len, s->zbuf.cap - s->zbuf.len, 0 };
		size_t left = ZSTD_compressStream2(s->zc, &out, &in, how);
		if (ZSTD_isError(left))
			return ZILA_EINTERNAL;
		s->zbuf.len += out.pos;
		if (left == 0 && in.pos == in.size)
			return 0;
	}
}

/* A packed chunk's entries, as stored, into s->pend. */
static int unpack_chunk(struct zila_session *s, const Zila__Entries *e, struct zila_error *err)
{
	/* made at the first chunk, and again after a window that freed them (unpack_idle) */
	if (s->dec == NULL && (zila_entry_coder_new(&s->dec) != 0 ||
			       (s->offer_refs && zila_entry_coder_refs(s->dec, false, s->cfg.store) != 0)))
		return fail(s, err, ZILA_ENOMEM, "out of memory");
	if (s->zd == NULL) {
		if ((s->zd = ZSTD_createDCtx()) == NULL)
			return fail(s, err, ZILA_ENOMEM, "out of memory");
		if (ZSTD_isError(ZSTD_DCtx_setParameter(s->zd, ZSTD_d_windowLogMax, PACK_WINDOW_LOG_MAX)))
			return fail(s, err, ZILA_EINTERNAL, "cannot set up decompression");
	}
	if (s->wire.max == 0)
		zila_buf_init(&s->wire, PACK_PLAIN_LIMIT);
	int r = unpack_stream(s->zd, e->packed.data, e->packed.len, &s->wire, &s->zd_between);
	if (r != 0)
		return fail(s, err, r, r == ZILA_ETOOBIG ? "a packed chunk is larger than a chunk may be"
							 : "a packed chunk does not decompress");
	struct zila_view in = zila_buf_view(&s->wire);
	for (uint32_t i = 0; i < e->count; i++) {
		if (pend_mark(s) != 0)
			return fail(s, err, ZILA_ENOMEM, "out of memory");
		r = zila_entry_from_wire(s->dec, &in, &s->pend);
		if (r == ZILA_EREF) {
			/* Not the peer's fault as such (a row we no longer hold, a prefix held twice):
			 * it is told, and the next session with it sends keys whole. */
			const char *why = "a key sent by reference is not held here (or held twice): the next session sends keys whole";
			s->st.ref_failed = true;
			zila_session_abort(s, ZILA_EREF, why);
			return zila_error_set(err, ZILA_EREF, "%s", why);
		}
		if (r != 0)
			return fail(s, err, r == ZILA_ETOOBIG ? ZILA_ELIMIT : ZILA_EPROTO,
				    r == ZILA_ETOOBIG ? "the peer sent more than its window" : "a packed chunk is malformed");
	}
	if (in.len != 0)
		return fail(s, err, ZILA_EPROTO, "a packed chunk holds more than its count of entries");
	return 0;
}

/* Sends chunks while the window allows, then Done once the outbox is empty. */
/* --- checkpoints (protocol 3) ---------------------------------------------------------- */

static bool base_filter(const struct zila_session *s, const char *part)
{
	return s->ck_filter != NULL ? s->ck_filter(s->ck_filter_ctx, part) : send_filter((void *)s, part);
}

static bool org_filter(void *ctx, const char *part)
{
	return part[0] == '\0' && base_filter(ctx, part);
}

static bool rest_filter(void *ctx, const char *part)
{
	return part[0] != '\0' && base_filter(ctx, part);
}

/* The outboxes for have (raised to the planned checkpoints): one, or the org-wide one and
 * the rest (s->ck_phase 1). */
static int open_outboxes(struct zila_session *s, const struct zila_vector *have)
{
	int r;
	if (s->nck == 0) {
		r = zila_outbox_open(s->cfg.store, have, s->ck_filter != NULL ? s->ck_filter : send_filter,
				     s->ck_filter != NULL ? s->ck_filter_ctx : s, &s->outbox);
		if (r == 0)
			s->st.to_send = zila_outbox_total(s->outbox);
		return r;
	}
	s->ck_phase = 1;
	r = zila_outbox_open(s->cfg.store, have, org_filter, s, &s->outbox);
	r = r ? r : zila_outbox_open(s->cfg.store, have, rest_filter, s, &s->outbox_b);
	if (r == 0)
		s->st.to_send = zila_outbox_total(s->outbox) + zila_outbox_total(s->outbox_b);
	return r;
}

struct ck_plan {
	struct zila_session *s;
	const struct zila_vector *have;
	bool all;             /* a bundle: every partition the peer may read, not only those that differ */
	char (*parts)[ZILA_PART_MAX + 1];
	size_t nparts;
	int r;
};

static int ck_plan_one(void *ctx, const struct zila_ckpt_info *c, size_t len)
{
	struct ck_plan *pl = ctx;
	struct zila_session *s = pl->s;
	(void)len;
	if (!(s->ck_filter != NULL ? s->ck_filter(s->ck_filter_ctx, c->part) : peer_may_read(s, c->part)) ||
	    (!pl->all && !in_differ(s, c->part)))
		return 0;
	bool hq = s->cfg.peer_is_hq || s->st.peer_is_hq;
	/* A peer that holds entries of the partition we lack wrote (or took) them while away:
	 * it is sent the entries, so that it records the values they overwrite as conflicts for
	 * review (a checkpoint carries no deps to tell); a checkpoint only where it must be. */
	bool ahead = false;
	for (size_t i = 0; pl->have != NULL && i < pl->have->nheads && !ahead; i++) {
		const struct zila_feed_head *h = &pl->have->heads[i];
		ahead = strcmp(h->part, c->part) == 0 && h->seq != INT64_MAX &&
			h->seq > zila_vector_get(&s->mine, h->origin, h->part);
	}
	int r = zila_store_checkpoint_needed(s->cfg.store, pl->have, c->part,
					     hq || ahead ? ZILA_CKPT_HISTORY : pl->all ? ZILA_CKPT_LACKING : ZILA_CKPT_CHEAPER);
	if (r < 0)
		return pl->r = r;
	/* A laptop in step takes a newer checkpoint too (once each): with it, it may drop the
	 * history it covers (zila_store_prune) and serve it to a replica that was away. */
	uint64_t theirs = 0;
	for (size_t i = 0; i < s->npeer_parts; i++)
		if (strcmp(s->peer_parts[i].part, c->part) == 0)
			theirs = s->peer_parts[i].ckpt;
	if (r == 0 && (hq || ahead || pl->all || c->hlc <= theirs))
		return 0;
	char(*n)[ZILA_PART_MAX + 1] = realloc(pl->parts, (pl->nparts + 1) * sizeof(*n));
	if (n == NULL)
		return pl->r = ZILA_ENOMEM;
	pl->parts = n;
	memcpy(pl->parts[pl->nparts++], c->part, sizeof(c->part));
	return 0;
}

static int vector_copy(struct zila_vector *to, const struct zila_vector *from)
{
	to->nheads = 0;
	if ((to->heads = calloc(from->nheads + 1, sizeof(*to->heads))) == NULL)
		return ZILA_ENOMEM;
	if (from->nheads > 0)
		memcpy(to->heads, from->heads, from->nheads * sizeof(*to->heads));
	to->nheads = from->nheads;
	return 0;
}

/* The checkpoints to send the peer that holds `have` first. In a live session `have` is
 * raised to them, so that the outbox sends only the entries past them, and the entries they
 * cover are sent after all if the peer does not merge one (ck_fallback). A bundle (all) gets
 * no answer: a receiver that cannot merge a checkpoint (its schema behind, or refused) would
 * silently miss the entries it covers, so a bundle carries every entry held past `have` too
 * (those the checkpoint covers are duplicates where it merges). */
static int plan_checkpoints(struct zila_session *s, struct zila_vector *have, bool all)
{
	struct ck_plan pl = { s, have, all, NULL, 0, 0 };
	int r = zila_store_checkpoint_each(s->cfg.store, ck_plan_one, &pl);
	if (r == 0)
		r = pl.r;
	if (r == 0 && pl.nparts > 0 && (s->ck = calloc(pl.nparts, sizeof(*s->ck))) == NULL)
		r = ZILA_ENOMEM;
	if (r == 0 && pl.nparts > 0 && !all)
		r = vector_copy(&s->ck_have, have);
	for (size_t i = 0; r == 0 && i < pl.nparts; i++) {
		struct ck_out *c = &s->ck[s->nck];
		memcpy(c->part, pl.parts[i], sizeof(c->part));
		if ((r = zila_store_checkpoint_get(s->cfg.store, c->part, &c->bytes, &c->len)) != 0)
			break;
		s->nck++;
		if (c->len > CK_MAX) {
			r = ZILA_ETOOBIG;
			break;
		}
		r = zila_checkpoint_vector(zila_view_make(c->bytes, c->len), &c->heads);
		if (r == 0 && !all)
			r = zila_vector_raise(have, &c->heads);
	}
	free(pl.parts);
	return r;
}

/* After the checkpoints: if the peer did not merge one, the entries past its vector are
 * sent as they would have been without that checkpoint (raised only by those it merged). */
static int ck_fallback(struct zila_session *s)
{
	bool any = false;
	for (size_t i = 0; i < s->nck; i++)
		any = any || s->ck[i].refused;
	if (!any || s->ck_have.heads == NULL)
		return 0;
	struct zila_vector v = { NULL, 0 };
	int r = vector_copy(&v, &s->ck_have);
	for (size_t i = 0; r == 0 && i < s->nck; i++)
		if (!s->ck[i].refused)
			r = zila_vector_raise(&v, &s->ck[i].heads);
	struct zila_outbox *ob = NULL;
	r = r ? r : zila_outbox_open(s->cfg.store, &v, rest_filter, s, &ob);
	zila_vector_release(&v);
	if (r == 0) {
		zila_outbox_free(s->outbox_b);
		s->outbox_b = ob;
	}
	return r;
}

static bool ck_blocked(const struct zila_session *s)
{
	const struct ck_out *c = &s->ck[s->ck_pos];
	if (s->ck_unlimited)
		return false;
	if (c->sent == c->len)
		return c->acked < c->len;
	return c->sent - c->acked >= CK_UNACKED || (s->cfg.paced && s->credit == 0);
}

/* Sends checkpoint slices as the peer's acknowledgements allow; *busy: entries wait. */
static int pump_checkpoints(struct zila_session *s, bool *busy)
{
	int r = 0;
	*busy = false;
	while (r == 0 && s->ck_pos < s->nck) {
		struct ck_out *c = &s->ck[s->ck_pos];
		if (c->sent == c->len && (s->ck_unlimited || c->acked == c->len)) {
			s->st.ckpts_sent++;
			free(c->bytes);
			c->bytes = NULL;
			s->ck_pos++;
			continue;
		}
		if (ck_blocked(s)) {
			*busy = true;
			return 0;
		}
		size_t n = c->len - c->sent < CK_SLICE ? c->len - c->sent : CK_SLICE;
		Zila__Checkpoint k = ZILA__CHECKPOINT__INIT;
		Zila__Message m = ZILA__MESSAGE__INIT;
		k.part = c->part;
		k.total = c->len;
		k.offset = c->sent;
		k.data.data = c->bytes + c->sent;
		k.data.len = n;
		m.body_case = ZILA__MESSAGE__BODY_CHECKPOINT;
		m.checkpoint = &k;
		if ((r = emit(s, &m)) != 0)
			break;
		c->sent += n;
		s->st.ckpt_bytes_sent += n;
		if (s->cfg.paced && s->credit > 0)
			s->credit--;
	}
	return r;
}

static int ck_ack(struct zila_session *s, const char *part, uint64_t upto, bool held, int code, const char *reason)
{
	if (s->importing)
		return 0;
	Zila__CheckpointAck a = ZILA__CHECKPOINT_ACK__INIT;
	Zila__Message m = ZILA__MESSAGE__INIT;
	char why[REASON_MAX + 1];
	snprintf(why, sizeof(why), "%s", reason != NULL ? reason : "");
	a.part = (char *)part;
	a.upto = upto;
	a.held = held;
	a.code = (uint32_t)-code;
	a.reason = why;
	m.body_case = ZILA__MESSAGE__BODY_CHECKPOINT_ACK;
	m.checkpoint_ack = &a;
	return emit(s, &m);
}

/* Merges a whole checkpoint: 0 merged, 1 held for our schema, or refused (logged; the
 * entries past it will wait behind a gap, and the next session offers it again). */
static int ck_merge(struct zila_session *s, const uint8_t *p, size_t len, const char *part, bool keep,
		    struct zila_error *why)
{
	struct zila_ckpt_info info;
	struct zila_apply_stats st;
	int r = zila_store_checkpoint_apply(s->cfg.store, zila_view_make(p, len), &info, &st, why);
	if (r == 0 && strcmp(info.part, part) != 0)
		r = zila_error_set(why, ZILA_EPROTO, "a checkpoint of district '%s' came as one of '%s'", info.part, part);
	if (r == 0) {
		s->st.ckpts_applied++;
		s->st.parked += st.nparked;
		return 0;
	}
	if (r == ZILA_ESCHEMA && keep && s->nck_wait < CK_WAIT_MAX) {
		uint8_t *copy = malloc(len);
		if (copy == NULL)
			return ZILA_ENOMEM;
		memcpy(copy, p, len);
		s->ck_wait[s->nck_wait].bytes = copy;
		s->ck_wait[s->nck_wait++].len = len;
		return 1;
	}
	zila_log(ZILA_LOG_WARN, "%s", why->msg);
	s->st.ckpts_refused++;
	return r;
}

/* After a window: what waited for the schema may merge now. */
static void ck_retry(struct zila_session *s)
{
	for (size_t i = 0; i < s->nck_wait;) {
		struct zila_error why;
		struct zila_ckpt_info info;
		zila_error_clear(&why);
		if (zila_checkpoint_verify(zila_view_make(s->ck_wait[i].bytes, s->ck_wait[i].len), &info) != 0 ||
		    ck_merge(s, s->ck_wait[i].bytes, s->ck_wait[i].len, info.part, false, &why) != ZILA_ESCHEMA) {
			free(s->ck_wait[i].bytes);
			s->ck_wait[i] = s->ck_wait[--s->nck_wait];
			continue;
		}
		i++;
	}
}

static int ck_received(struct zila_session *s, struct zila_error *err);
static int window_ready(struct zila_session *s, bool ack, struct zila_error *err);

static int receive_checkpoint(struct zila_session *s, const Zila__Checkpoint *k, struct zila_error *err)
{
	if (s->ck_in.len == 0 && k->offset == 0) {
		snprintf(s->ck_in_part, sizeof(s->ck_in_part), "%s", k->part);
		s->ck_in_total = k->total;
	}
	if (k->offset != s->ck_in.len || k->total != s->ck_in_total || strcmp(k->part, s->ck_in_part) != 0)
		return fail(s, err, ZILA_EPROTO, "checkpoint slices out of order");
	if (zila_buf_put(&s->ck_in, k->data.data, k->data.len) != 0)
		return fail(s, err, ZILA_ENOMEM, "out of memory");
	s->st.ckpt_bytes_received += k->data.len;
	/* the entries received before it are applied first (the org-wide ones it may need) */
	if (s->pend_chunks > 0) {
		int r = window_ready(s, true, err);
		if (r != 0)
			return r;
	}
	if (s->ck_in.len == s->ck_in_total && s->win != NULL) {
		s->ck_merge_due = true; /* once the caller has applied that window */
		return 0;
	}
	return ck_received(s, err);
}

/* The checkpoint arriving has come so far: acknowledged, and merged when whole. */
static int ck_received(struct zila_session *s, struct zila_error *err)
{
	if (s->ck_in.len < s->ck_in_total) {
		int r = ck_ack(s, s->ck_in_part, s->ck_in.len, false, 0, NULL);
		return r != 0 ? fail(s, err, r, "cannot acknowledge a checkpoint") : 0;
	}
	struct zila_error why;
	zila_error_clear(&why);
	int m = ck_merge(s, s->ck_in.p, s->ck_in.len, s->ck_in_part, true, &why);
	if (m == ZILA_ENOMEM)
		return fail(s, err, m, "out of memory");
	int r = ck_ack(s, s->ck_in_part, s->ck_in.len, m == 1, m < 0 ? m : 0, m < 0 ? why.msg : NULL);
	zila_buf_reset(&s->ck_in);
	s->ck_in_total = 0;
	return r != 0 ? fail(s, err, r, "cannot acknowledge a checkpoint") : 0;
}

static int pump(struct zila_session *s, struct zila_error *err);

static int receive_checkpoint_ack(struct zila_session *s, const Zila__CheckpointAck *a, struct zila_error *err)
{
	if (s->ck_pos >= s->nck || strcmp(a->part, s->ck[s->ck_pos].part) != 0 || a->upto > s->ck[s->ck_pos].sent ||
	    a->upto < s->ck[s->ck_pos].acked)
		return fail(s, err, ZILA_EPROTO, "unexpected checkpoint acknowledgement");
	s->ck[s->ck_pos].acked = a->upto;
	if (a->upto == s->ck[s->ck_pos].len && (a->code != 0 || a->held))
		s->ck[s->ck_pos].refused = true; /* its entries go after all (ck_fallback) */
	if (a->code != 0)
		zila_log(ZILA_LOG_WARN, "the peer refused the checkpoint of district '%s': %s", a->part, a->reason);
	return pump(s, err);
}

/* Sends one chunk of at most max entry bytes (at least one entry) from ob; *end: ob is
 * empty now (the chunk may hold none). */
static int send_chunk(struct zila_session *s, struct zila_outbox *ob, size_t max, bool *end)
{
	ProtobufCBinaryData *items = NULL;
	size_t *offs = NULL, cap = 0;
	int r = 0;
	*end = false;
	size_t n = 0, len;
	zila_buf_reset(&s->chunk);
	zila_buf_reset(&s->wire);
	while ((r = zila_outbox_peek_len(ob, &len)) == 0 && n < ENTRIES_PER_CHUNK_MAX &&
	       (n == 0 || (s->chunk.len + len <= max && s->wire.len < PACK_PLAIN_MAX))) {
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			size_t *no = realloc(offs, (cap + 1) * sizeof(*no));
			if (no == NULL) {
				r = ZILA_ENOMEM;
				goto out;
			}
			offs = no;
		}
		offs[n++] = s->chunk.len;
		struct zila_entry_info info;
		if ((r = zila_outbox_next(ob, &info, &s->chunk)) != 0 ||
		    (r = own_sent_note(s, &info, s->chunks_sent + 1)) != 0)
			goto out;
		/* made at the first entry to send: a side with none (a clone's laptop) makes none */
		if (s->pack && s->enc == NULL && (r = pack_begin(s)) != 0)
			goto out;
		if (s->pack && (r = zila_entry_to_wire(s->enc, zila_view_make(s->chunk.p + offs[n - 1],
									   s->chunk.len - offs[n - 1]),
						       &s->wire)) != 0)
			goto out;
	}
	if (r != 0 && r != ZILA_ENOTFOUND)
		goto out;
	*end = r == ZILA_ENOTFOUND;
	r = 0;
	if (n > 0) {
		if ((items = calloc(n, sizeof(*items))) == NULL) {
			r = ZILA_ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			items[i].data = s->chunk.p + offs[i];
			items[i].len = (i + 1 < n ? offs[i + 1] : s->chunk.len) - offs[i];
		}
		Zila__Entries e = ZILA__ENTRIES__INIT;
		Zila__Message m = ZILA__MESSAGE__INIT;
		e.chunk = ++s->chunks_sent;
		if (e.chunk == 1)
			e.total = s->st.to_send; /* so the peer can show an honest fraction */
		if (s->pack) {
			if ((s->chunks_sent == 1 || s->frame_per_chunk) && (r = pack_params(s, *end)) != 0)
				goto out;
			bool waits = s->chunks_sent - s->chunks_acked >= s->peer_window;
			if ((r = pack_chunk(s, *end || waits)) != 0)
				goto out;
			e.packed.data = s->zbuf.p;
			e.packed.len = s->zbuf.len;
			e.count = (uint32_t)n;
		} else {
			e.n_entries = n;
			e.entries = items;
		}
		m.body_case = ZILA__MESSAGE__BODY_ENTRIES;
		m.entries = &e;
		if ((r = emit(s, &m)) != 0)
			goto out;
		s->st.entries_sent += n;
		s->sent_upto[e.chunk % SENT_RING] = s->st.entries_sent;
		if (s->credit > 0)
			s->credit--;
	}
out:
	free(items);
	free(offs);
	return r;
}

static int pump(struct zila_session *s, struct zila_error *err)
{
	size_t max = s->cfg.chunk_bytes ? s->cfg.chunk_bytes : ZILA_SESSION_CHUNK;
	unsigned window = s->peer_window;
	if (s->cfg.paced && s->credit_bytes > 0 && s->credit_bytes < max)
		max = s->credit_bytes;
	/* A receiver that asks for a window of one is on a link that was cut: small chunks, so
	 * that each stretch between cuts still commits something. */
	if (window == 1 && max > ZILA_SESSION_CHUNK / 4)
		max = ZILA_SESSION_CHUNK / 4;
	int r = 0;
again:
	if (s->state == ZILA_SESSION_EXCHANGE && s->got_heads && !s->sent_done && s->ck_phase == 2) {
		bool busy;
		if ((r = pump_checkpoints(s, &busy)) != 0 || busy)
			goto out;
		if ((r = ck_fallback(s)) != 0)
			goto out;
		/* then every other partition's entries, past the checkpoints (those merged) */
		zila_outbox_free(s->outbox);
		s->outbox = s->outbox_b;
		s->outbox_b = NULL;
		s->ck_phase = 3;
	}
	while (s->state == ZILA_SESSION_EXCHANGE && s->got_heads && !s->sent_done &&
	       s->chunks_sent - s->chunks_acked < window && (!s->cfg.paced || s->credit > 0)) {
		bool end;
		if ((r = send_chunk(s, s->outbox, max, &end)) != 0)
			goto out;
		if (end && s->ck_phase == 1) {
			s->ck_phase = 2;
			goto again;
		}
		if (end) {
			Zila__Done d = ZILA__DONE__INIT;
			Zila__Message m = ZILA__MESSAGE__INIT;
			d.nchunks = s->chunks_sent;
			d.nentries = s->st.entries_sent;
			m.body_case = ZILA__MESSAGE__BODY_DONE;
			m.done = &d;
			if ((r = emit(s, &m)) != 0)
				goto out;
			s->sent_done = true;
		}
	}
out:
	if (r != 0)
		return fail(s, err, r, "cannot send entries");
	return 0;
}

static void own_settle(struct zila_session *s);

/* At HQ, a completed exchange with a device: it holds what we held at the start, unless it
 * refused some or we skipped feeds it refused before (proto/CHECKPOINT.md, "Collecting
 * deleted rows"). A failure only delays collection: logged, the session still done. */
static void note_acks(struct zila_session *s)
{
	if (!s->cfg.is_hq || s->cfg.peer_device == NULL || s->st.nrefused > 0 || s->st.refused_more > 0 ||
	    s->st.feeds_skipped > 0)
		return;
	for (size_t i = 0; i < s->nparts; i++)
		if (s->parts[i].ckpt != 0 &&
		    zila_store_ack_note(s->cfg.store, s->cfg.peer_device, s->parts[i].part, s->parts[i].ckpt) != 0)
			zila_log(ZILA_LOG_WARN, "cannot note what a device of district '%s' holds", s->parts[i].part);
}

static void check_done(struct zila_session *s)
{
	if (s->state == ZILA_SESSION_EXCHANGE && s->sent_done && s->chunks_acked == s->chunks_sent && s->got_done) {
		s->state = ZILA_SESSION_DONE;
		own_settle(s);
		note_acks(s);
	}
}

static unsigned my_window(const struct zila_session *s)
{
	unsigned w = s->cfg.window ? s->cfg.window : ZILA_SESSION_WINDOW;
	return w > ZILA_SESSION_WINDOW_MAX ? ZILA_SESSION_WINDOW_MAX : w;
}

/* Closes the window: the pending chunks wait, as one run of entries, to be applied in one
 * transaction (inline by zila_session_apply, or by the caller) and then acknowledged (unless
 * ack is false: the link is gone). */
/* A closed window is applied with the most memory a receiver uses (SQLite's page cache
 * grows): what unpacked its chunks is given back first. A chunk's wire form (about 1.2 MB in
 * a clone), the coder's buffers and, when the sender ended its frame there, the
 * decompression context and its window (2 MiB): a clone's laptop peaked 4.9 MiB lower (100k
 * rows). Made again for the next window's first chunk. */
static void unpack_idle(struct zila_session *s)
{
	zila_buf_release(&s->wire); /* between chunks either way, so free whichever side made it */
	zila_entry_coder_free(s->dec);
	s->dec = NULL;
	if (s->zd_between) {
		ZSTD_freeDCtx(s->zd);
		s->zd = NULL;
	}
}

static int window_close(struct zila_session *s, bool ack, struct zila_error *err)
{
	if (s->pend_chunks == 0 || s->win != NULL)
		return 0;
	struct zila_view *v = calloc(s->npend + 1, sizeof(*v));
	if (v == NULL)
		return fail(s, err, ZILA_ENOMEM, "out of memory");
	for (size_t i = 0; i < s->npend; i++) {
		size_t end = i + 1 < s->npend ? s->pend_offs[i + 1] : s->pend.len;
		v[i] = zila_view_make(s->pend.p + s->pend_offs[i], end - s->pend_offs[i]);
	}
	s->win = v;
	s->nwin = s->npend;
	s->win_ack = ack;
	unpack_idle(s);
	return 0;
}

bool zila_session_pending(const struct zila_session *s, const struct zila_view **entries, size_t *nentries)
{
	if (entries != NULL)
		*entries = s->win;
	if (nentries != NULL)
		*nentries = s->win != NULL ? s->nwin : 0;
	return s->win != NULL;
}

int zila_session_applied(struct zila_session *s, int result, const struct zila_apply_stats *st,
			 struct zila_error *err)
{
	if (s->win == NULL)
		return zila_error_set(err, ZILA_EINVAL, "no received window waits to be applied");
	free(s->win);
	s->win = NULL;
	s->nwin = 0;
	if (result != 0) {
		/* Nothing of these chunks is kept (one transaction); the next session offers them
		 * again. The peer is told why (database busy, disk full), so it logs the reason
		 * rather than a cut link. */
		zila_session_abort(s, result, zila_error_msg(err, result));
		return result;
	}
	s->st.entries_applied += st->napplied;
	s->st.entries_rejected += st->nrejected + st->ngap;
	s->st.entries_duplicate += st->nduplicate;
	s->st.entries_held += st->nheld;
	s->st.conflicts += st->nconflicts;
	s->st.parked += st->nparked;
	zila_buf_reset(&s->pend);
	s->npend = 0;
	s->pend_chunks = 0;
	if (s->nck_wait > 0)
		ck_retry(s);
	int r = 0;
	if (s->win_ack) {
		Zila__Ack a = ZILA__ACK__INIT;
		Zila__Message m = ZILA__MESSAGE__INIT;
		Zila__Refused rf[ZILA_APPLY_REFUSALS], *rp[ZILA_APPLY_REFUSALS];
		a.chunk = s->chunks_received;
		a.applied = (uint32_t)(st->napplied + st->nheld);
		a.rejected = (uint32_t)(st->nrejected + st->ngap);
		/* The sender learns what we did not take, and why (PROTOCOL.md, "Ack"). */
		for (size_t i = 0; i < st->nrefusals; i++) {
			zila__refused__init(&rf[i]);
			rf[i].origin.data = (uint8_t *)st->refusals[i].origin;
			rf[i].origin.len = 32;
			rf[i].part = (char *)st->refusals[i].part;
			rf[i].seq = st->refusals[i].seq;
			rf[i].code = (uint32_t)-st->refusals[i].code;
			rf[i].reason = (char *)st->refusals[i].reason;
			rp[i] = &rf[i];
		}
		a.n_refused = st->nrefusals;
		a.refused = rp;
		m.body_case = ZILA__MESSAGE__BODY_ACK;
		m.ack = &a;
		if ((r = emit(s, &m)) != 0)
			return fail(s, err, r, "cannot send an acknowledgement");
	}
	if (s->ck_merge_due) {
		s->ck_merge_due = false;
		if ((r = ck_received(s, err)) != 0)
			return r;
	}
	if (s->done_after) {
		s->done_after = false;
		s->got_done = true;
		s->st.peer_done_entries = s->done_entries;
	}
	check_done(s);
	return 0;
}

int zila_session_apply(struct zila_session *s, struct zila_error *err)
{
	if (s->win == NULL)
		return 0;
	struct zila_apply_stats st;
	memset(&st, 0, sizeof(st));
	int r = zila_store_apply(s->cfg.store, s->win, s->nwin, &st, err);
	return zila_session_applied(s, r, &st, err);
}

/* Closes the window and, unless the caller applies windows itself, applies it now. */
static int window_ready(struct zila_session *s, bool ack, struct zila_error *err)
{
	int r = window_close(s, ack, err);
	return r != 0 || s->cfg.caller_applies ? r : zila_session_apply(s, err);
}

static int receive_entries(struct zila_session *s, const Zila__Entries *e, struct zila_error *err)
{
	if (e->chunk != s->chunks_received + 1)
		return fail(s, err, ZILA_EPROTO, "chunks out of order");
	if (e->chunk == 1 && e->total != 0)
		s->st.to_receive = e->total;
	if (e->packed.len > 0 && !s->pack)
		return fail(s, err, ZILA_EPROTO, "a packed chunk from a peer that did not say it speaks protocol 2");
	if (e->packed.len > 0) {
		int r = unpack_chunk(s, e, err);
		if (r != 0)
			return r;
	}
	for (size_t i = 0; i < e->n_entries; i++) {
		if (pend_mark(s) != 0)
			return fail(s, err, ZILA_ENOMEM, "out of memory");
		if (zila_buf_put(&s->pend, e->entries[i].data, e->entries[i].len) != 0)
			return fail(s, err, ZILA_ELIMIT, "the peer sent more than its window");
	}
	s->chunks_received++;
	s->pend_chunks++;
	s->st.entries_received += e->packed.len > 0 ? e->count : e->n_entries;
	return s->pend_chunks >= my_window(s) ? window_ready(s, true, err) : 0;
}

static int unpack_checked(const uint8_t *p, size_t len, Zila__Message **out, struct zila_error *err);

/* --- what the peer refused ------------------------------------------------------------ */

static struct zila_refusal *refusal_of(struct zila_session_stats *st, const uint8_t origin[32], const char *part)
{
	for (size_t i = 0; i < st->nrefused; i++)
		if (memcmp(st->refused[i].origin, origin, 32) == 0 && strcmp(st->refused[i].part, part) == 0)
			return &st->refused[i];
	return NULL;
}

/* The Refused items of a peer's Ack: kept per feed (the lowest seq), ours logged. */
static void receive_refused(struct zila_session *s, const Zila__Ack *a)
{
	const uint8_t *self = zila_store_device_pk(s->cfg.store);
	for (size_t i = 0; i < a->n_refused; i++) {
		const Zila__Refused *x = a->refused[i];
		struct zila_refusal *r = refusal_of(&s->st, x->origin.data, x->part);
		if (r != NULL) {
			if (x->seq < r->seq) {
				r->seq = x->seq;
				r->code = -(int)x->code;
				snprintf(r->reason, sizeof(r->reason), "%s", x->reason);
			}
			continue;
		}
		if (s->st.nrefused == ZILA_APPLY_REFUSALS) {
			s->st.refused_more++;
			continue;
		}
		r = &s->st.refused[s->st.nrefused++];
		memset(r, 0, sizeof(*r));
		memcpy(r->origin, x->origin.data, 32);
		snprintf(r->part, sizeof(r->part), "%s", x->part);
		r->seq = x->seq;
		r->code = -(int)x->code;
		snprintf(r->reason, sizeof(r->reason), "%s", x->reason);
		if (memcmp(r->origin, self, 32) == 0)
			zila_log(ZILA_LOG_WARN, "the peer did not take entry %llu of this device's feed '%s': %s",
				 (unsigned long long)r->seq, r->part[0] ? r->part : "(org)", r->reason);
	}
}

/* Our own feeds the peer may read, as it holds them before the exchange: all of ours when
 * the partition's digests are equal, else its Heads say (have: sorted by head_cmp). */
static int own_feeds(struct zila_session *s, const struct zila_vector *have)
{
	const uint8_t *self = zila_store_device_pk(s->cfg.store);
	free(s->own);
	s->nown = 0;
	if ((s->own = calloc(s->mine.nheads + 1, sizeof(*s->own))) == NULL)
		return ZILA_ENOMEM;
	for (size_t i = 0; i < s->mine.nheads; i++) {
		const struct zila_feed_head *h = &s->mine.heads[i];
		if (memcmp(h->origin, self, 32) != 0 || !peer_may_read(s, h->part))
			continue;
		struct own_feed *o = &s->own[s->nown++];
		memcpy(o->part, h->part, sizeof(o->part));
		o->ours = o->peer = h->seq;
		if (have == NULL || !in_differ(s, h->part))
			continue;
		const struct zila_feed_head *p = bsearch(h, have->heads, have->nheads, sizeof(*h), head_cmp);
		o->peer = p == NULL ? 0 : p->seq < h->seq ? p->seq : h->seq;
	}
	s->own_known = true;
	own_count(s, false);
	return 0;
}

/* How many of our entries the peer holds: at DONE, what we sent it took, unless its Acks
 * refused a feed from some entry on; before, what it held and what it acknowledged. A feed
 * we did not offer stays where it was. */
static void own_count(struct zila_session *s, bool done)
{
	const uint8_t *self = zila_store_device_pk(s->cfg.store);
	s->st.own_at_peer = s->st.own_not_at_peer = 0;
	for (size_t i = 0; s->own_known && i < s->nown; i++) {
		struct own_feed *o = &s->own[i];
		uint64_t at = done ? o->ours : o->acked > o->peer ? o->acked : o->peer;
		const struct zila_refusal *r = refusal_of(&s->st, self, o->part);
		if (o->skipped)
			at = o->peer;
		else if (r != NULL && r->seq > 0 && r->seq - 1 < o->ours)
			at = r->seq - 1 > o->peer ? r->seq - 1 : o->peer;
		s->st.own_at_peer += at;
		s->st.own_not_at_peer += o->ours - at;
	}
}

static void own_settle(struct zila_session *s)
{
	own_count(s, true);
}

/* --- the session ------------------------------------------------------------------ */

int zila_session_new(struct zila_session **out, const struct zila_session_config *cfg, struct zila_error *err)
{
	*out = NULL;
	if (cfg->store == NULL || cfg->send == NULL)
		return zila_error_set(err, ZILA_EINVAL, "a session needs a store and a send function");
	struct zila_session *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return zila_error_set(err, ZILA_ENOMEM, "out of memory");
	s->cfg = *cfg;
	s->state = ZILA_SESSION_NEW;
	zila_buf_init(&s->msg, ZILA_SESSION_MSG_MAX);
	zila_buf_init(&s->chunk, ZILA_SESSION_MSG_MAX);
	/* Whole chunks the peer may send before we acknowledge: each at most a chunk's worth of
	 * bytes plus one entry of the largest size. */
	zila_buf_init(&s->pend, (size_t)my_window(s) * (ZILA_SESSION_CHUNK + ZILA_ENTRY_MAX));
	zila_buf_init(&s->ck_in, CK_MAX);
	*out = s;
	return 0;
}

void zila_session_free(struct zila_session *s)
{
	if (s == NULL)
		return;
	zila_vector_release(&s->mine);
	zila_outbox_free(s->outbox);
	zila_outbox_free(s->outbox_b);
	zila_outbox_free(s->late);
	zila_buf_release(&s->msg);
	zila_buf_release(&s->chunk);
	zila_buf_release(&s->pend);
	zila_buf_release(&s->wire);
	zila_buf_release(&s->zbuf);
	ZSTD_freeCCtx(s->zc);
	ZSTD_freeDCtx(s->zd);
	zila_entry_coder_free(s->enc);
	zila_entry_coder_free(s->dec);
	free(s->pend_offs);
	free(s->win);
	free(s->parts);
	free(s->peer_parts);
	free(s->differ);
	free(s->own);
	free(s->osent);
	for (size_t i = 0; i < s->nck; i++) {
		free(s->ck[i].bytes);
		zila_vector_release(&s->ck[i].heads);
	}
	free(s->ck);
	zila_vector_release(&s->ck_have);
	for (size_t i = 0; i < s->nck_wait; i++)
		free(s->ck_wait[i].bytes);
	zila_buf_release(&s->ck_in);
	free(s);
}

/* Our own feeds in partitions our certificate may not write are refused by every peer: they
 * stay out of digests, heads and what we send, so they do not make every session differ. */
static int withhold(struct zila_session *s)
{
	struct zila_cert own;
	const uint8_t *self = zila_store_device_pk(s->cfg.store);
	if (s->cfg.trust == NULL || zila_trust_cert_get(s->cfg.store, self, &own) != 0)
		return 0;
	size_t k = 0;
	for (size_t i = 0; i < s->mine.nheads; i++) {
		struct zila_feed_head *h = &s->mine.heads[i];
		if (memcmp(h->origin, self, 32) == 0 && !zila_cert_may_write(&own, h->part) &&
		    s->nwithheld < WITHHELD_MAX) {
			s->withheld[s->nwithheld++] = *h;
			continue;
		}
		s->mine.heads[k++] = *h;
	}
	if (k < s->mine.nheads)
		zila_log(ZILA_LOG_WARN, "local changes in %zu partition(s) outside this device's write scope are not sent",
			 s->mine.nheads - k);
	s->mine.nheads = k;
	return 0;
}

int zila_session_start(struct zila_session *s, struct zila_error *err)
{
	if (s->state != ZILA_SESSION_NEW)
		return fail(s, err, ZILA_EINVAL, "the session has already started");
	size_t nsealed;
	/* Our clocks for the Hello: this computer's, and HQ's as far as we know it. */
	struct zila_clock ck;
	zila_store_clock(s->cfg.store, &ck);
	if (s->cfg.now_ms == 0)
		s->cfg.now_ms = ck.wall_ms;
	if (s->cfg.hq_now_ms == 0 && (ck.is_reference || ck.has_offset))
		s->cfg.hq_now_ms = ck.is_reference ? ck.wall_ms : (uint64_t)((int64_t)ck.wall_ms + ck.offset_ms);
	s->hq_seen_ms = ck.is_reference ? ck.wall_ms : ck.hq_seen_ms; /* HQ's word only: hearsay goes no further */
	/* What the application wrote since the last seal is part of what we offer. */
	int r = zila_store_seal(s->cfg.store, &nsealed, err);
	if (r != 0) {
		zila_session_abort(s, r, zila_error_msg(err, r));
		return r;
	}
	if ((r = zila_store_vector(s->cfg.store, &s->mine)) != 0 || (r = withhold(s)) != 0 || (r = make_digests(s)) != 0 ||
	    (r = zila_store_checkpoint_each(s->cfg.store, note_ckpt, s)) != 0)
		return fail(s, err, r, "cannot read the replica's feeds");
	if (s->nparts > 1)
		qsort(s->parts, s->nparts, sizeof(*s->parts), part_cmp);
	if (s->cfg.trust != NULL) {
		if ((r = make_trust_digest(s)) != 0)
			return fail(s, err, r, "cannot read the replica's trust records");
		s->has_trust = true;
	}
	Zila__Hello h = ZILA__HELLO__INIT;
	Zila__Message m = ZILA__MESSAGE__INIT;
	Zila__PartDigest *pd = calloc(s->nparts + 1, sizeof(*pd));
	Zila__PartDigest **pp = calloc(s->nparts + 1, sizeof(*pp));
	if (pd == NULL || pp == NULL) {
		free(pd);
		free(pp);
		return fail(s, err, ZILA_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < s->nparts; i++) {
		zila__part_digest__init(&pd[i]);
		pd[i].part = s->parts[i].part;
		pd[i].digest.data = s->parts[i].digest;
		pd[i].digest.len = DIGEST_LEN;
		pd[i].nfeeds = s->parts[i].nfeeds;
		pd[i].checkpoint = s->parts[i].ckpt;
		pp[i] = &pd[i];
	}
	h.version = ZILA_SESSION_VERSION;
	h.now_ms = s->cfg.now_ms;
	h.hq_now_ms = s->cfg.hq_now_ms;
	h.hq_seen_ms = s->hq_seen_ms;
	s->offer_refs = !s->cfg.no_refs;
	h.flags = (s->cfg.is_hq ? HELLO_HQ : 0) | (s->cfg.live ? HELLO_PROGRESS : 0) | (s->offer_refs ? HELLO_REFS : 0) |
		  (s->cfg.live && s->cfg.blobs ? HELLO_BLOBS : 0) | (s->cfg.live && s->cfg.blobs && s->cfg.late_rows ? HELLO_LATE : 0);
	h.window = my_window(s);
	if (s->has_trust) {
		h.trust_digest.data = s->trust_digest;
		h.trust_digest.len = DIGEST_LEN;
		h.history_digest.data = s->history_digest;
		h.history_digest.len = DIGEST_LEN;
	}
	h.n_parts = s->nparts;
	h.parts = pp;
	m.body_case = ZILA__MESSAGE__BODY_HELLO;
	m.hello = &h;
	r = emit(s, &m);
	free(pd);
	free(pp);
	if (r != 0)
		return fail(s, err, r, "cannot send hello");
	s->state = ZILA_SESSION_HELLO;
	return 0;
}

static int add_differ(struct zila_session *s, const char *part)
{
	memcpy(s->differ[s->ndiffer++], part, strlen(part) + 1);
	return 0;
}

/* HQ's time, from the peer's Hello (PROTOCOL.md, "Clocks"): HQ's own clock when the peer is
 * HQ (its certificate says so) and at the other end now. Anyone else's word is hearsay: the
 * latest HQ time the peer knows has passed, believed only a bounded way past our own and
 * only until HQ is reached (zila_store_clock_hear). A bundle's Hello is old news: it only
 * tells a time that has passed. (Entries HQ wrote teach HQ's time too: trust admit.) */
static int learn_clock(struct zila_session *s, const Zila__Hello *h)
{
	struct zila_clock ck;
	zila_store_clock(s->cfg.store, &ck);
	if (ck.is_reference)
		return 0;
	if (s->cfg.live && s->cfg.peer_is_hq && h->now_ms != 0)
		return zila_store_clock_learn(s->cfg.store, h->now_ms, true, (int64_t)(h->now_ms - ck.wall_ms));
	/* Nobody signed a bundle's Hello: it may tell a time that has passed by our own clock
	 * (a floor for a clock that is behind), never move our dates past it. */
	if (!s->cfg.live && h->hq_seen_ms > ck.hq_est_ms + ZILA_CLOCK_WARN_MS)
		return 0;
	return h->hq_seen_ms > ck.seen_ms ? zila_store_clock_hear(s->cfg.store, h->hq_seen_ms) : 0;
}

static int receive_hello(struct zila_session *s, const Zila__Hello *h, struct zila_error *err)
{
	int r;
	s->st.peer_now_ms = h->now_ms;
	s->st.peer_hq_now_ms = h->hq_now_ms;
	s->st.peer_is_hq = (h->flags & HELLO_HQ) != 0;
	s->peer_progress = s->cfg.live && (h->flags & HELLO_PROGRESS) != 0;
	s->peer_refs = !s->cfg.no_refs && (h->flags & HELLO_REFS) != 0;
	s->peer_blobs = s->cfg.live && s->cfg.blobs && (h->flags & HELLO_BLOBS) != 0;
	s->peer_late = s->peer_blobs && s->cfg.late_rows && (h->flags & HELLO_LATE) != 0;
	if (h->trust_digest.len == DIGEST_LEN) {
		memcpy(s->st.peer_trust, h->trust_digest.data, DIGEST_LEN);
		s->st.has_peer_trust = true;
	}
	s->peer_window = h->window == 0 ? 4 : h->window > ZILA_SESSION_WINDOW_MAX ? ZILA_SESSION_WINDOW_MAX : h->window;
	/* Protocol 1 peers cannot read version 2 entries, which every replica now writes. */
	if (h->version < ZILA_SESSION_VERSION_MIN) {
		char why[REASON_MAX + 1];
		snprintf(why, sizeof(why),
			 "the peer's zila is older (sync protocol %u; this one speaks %u): update zila there to sync",
			 h->version, ZILA_SESSION_VERSION);
		zila_session_abort(s, ZILA_EVERSION, "this peer's zila is newer (sync protocol 2): update zila here to sync");
		return zila_error_set(err, ZILA_EVERSION, "%s", why);
	}
	s->pack = true;
	s->peer_ckpt = h->version >= 3;
	/* What is learnt is used at once; writing it down may wait for the next session (a
	 * full disk or a lock here is met again, and reported, where the session writes). */
	if ((r = learn_clock(s, h)) != 0)
		zila_log(ZILA_LOG_WARN, "cannot record HQ's time in the replica yet: %s", zila_strerror(r));
	/* The peer's clock against HQ's time as this replica knows it (its own clock moved by
	 * what it learnt), not against its own clock: a clock of ours that is wrong, or set
	 * right since, does not make the peer's look wrong. */
	if (h->now_ms != 0 && s->cfg.now_ms != 0) {
		struct zila_clock ck;
		zila_store_clock(s->cfg.store, &ck);
		int64_t ours = ck.has_offset && !ck.is_reference ? ck.offset_ms : 0;
		s->st.clock_offset_ms = (int64_t)(h->now_ms - s->cfg.now_ms) - ours;
	}
	if (h->version >= 3 && h->n_parts > 0) {
		if ((s->peer_parts = calloc(h->n_parts, sizeof(*s->peer_parts))) == NULL)
			return fail(s, err, ZILA_ENOMEM, "out of memory");
		for (size_t k = 0; k < h->n_parts; k++) {
			snprintf(s->peer_parts[k].part, sizeof(s->peer_parts[k].part), "%s", h->parts[k]->part);
			s->peer_parts[k].ckpt = h->parts[k]->checkpoint;
		}
		s->npeer_parts = h->n_parts;
	}
	/* Both sides list their partitions in name order; walk the two lists together. */
	if ((s->differ = calloc(s->nparts + h->n_parts + 1, sizeof(*s->differ))) == NULL)
		return fail(s, err, ZILA_ENOMEM, "out of memory");
	size_t i = 0, j = 0;
	while (i < s->nparts || j < h->n_parts) {
		const Zila__PartDigest *p = j < h->n_parts ? h->parts[j] : NULL;
		int c = p == NULL ? -1 : i == s->nparts ? 1 : strcmp(s->parts[i].part, p->part);
		if (c < 0) {
			add_differ(s, s->parts[i++].part);
		} else if (c > 0) {
			add_differ(s, p->part);
			j++;
		} else {
			/* a checkpoint one side keeps and the other not (protocol 3 on both sides) */
			if (memcmp(s->parts[i].digest, p->digest.data, DIGEST_LEN) != 0 ||
			    (h->version >= 3 && s->parts[i].ckpt != p->checkpoint))
				add_differ(s, p->part);
			i++;
			j++;
		}
	}
	s->st.parts_differ = s->ndiffer;
	/* Both sides must reach the same verdict, also when only one exchanges trust records. */
	s->trust_differs = h->trust_digest.len != (s->has_trust ? DIGEST_LEN : 0) ||
			   (s->has_trust && memcmp(h->trust_digest.data, s->trust_digest, DIGEST_LEN) != 0);
	/* Earlier certificates count only when both sides keep them (a peer of before them
	 * sends no history digest and ignores ours), so both reach the same verdict. */
	if (s->has_trust && h->history_digest.len == DIGEST_LEN &&
	    memcmp(h->history_digest.data, s->history_digest, DIGEST_LEN) != 0)
		s->trust_differs = true;
	if (s->ndiffer == 0 && !s->trust_differs) {
		s->st.in_step = true;
		s->state = ZILA_SESSION_DONE;
		if ((r = own_feeds(s, NULL)) != 0)
			return fail(s, err, r, "out of memory");
		own_settle(s);
		note_acks(s);
		return 0;
	}
	s->state = ZILA_SESSION_EXCHANGE;
	if (s->trust_differs && s->has_trust && (r = send_trust(s)) != 0)
		return fail(s, err, r, "cannot send trust records");
	/* Our heads in the partitions that differ, so the peer knows what we lack. */
	size_t n = 0;
	for (size_t k = 0; k < s->mine.nheads; k++)
		n += in_differ(s, s->mine.heads[k].part);
	Zila__FeedHead *fh = calloc(n + 1, sizeof(*fh));
	Zila__FeedHead **fp = calloc(n + 1, sizeof(*fp));
	if (fh == NULL || fp == NULL) {
		free(fh);
		free(fp);
		return fail(s, err, ZILA_ENOMEM, "out of memory");
	}
	n = 0;
	for (size_t k = 0; k < s->mine.nheads; k++) {
		struct zila_feed_head *x = &s->mine.heads[k];
		if (!in_differ(s, x->part))
			continue;
		zila__feed_head__init(&fh[n]);
		fh[n].origin.data = x->origin;
		fh[n].origin.len = 32;
		fh[n].part = x->part;
		fh[n].seq = x->seq;
		fh[n].chain.data = x->chain;
		fh[n].chain.len = ZILA_CHAIN_LEN;
		fp[n] = &fh[n];
		n++;
	}
	Zila__Heads hd = ZILA__HEADS__INIT;
	Zila__Message m = ZILA__MESSAGE__INIT;
	hd.n_heads = n;
	hd.heads = fp;
	m.body_case = ZILA__MESSAGE__BODY_HEADS;
	m.heads = &hd;
	r = emit(s, &m);
	free(fh);
	free(fp);
	if (r != 0)
		return fail(s, err, r, "cannot send heads");
	return 0;
}

/* The peer holds a feed to the same head as we do but its chain differs: the author signed
 * two histories of it (PROTOCOL.md, "Forks"). */
static int check_forks(struct zila_session *s, const Zila__Heads *hd)
{
	static const uint8_t zero[ZILA_CHAIN_LEN];
	int r = 0;
	for (size_t i = 0; r == 0 && s->mine.nheads > 0 && i < hd->n_heads; i++) {
		const Zila__FeedHead *x = hd->heads[i];
		struct zila_feed_head key;
		if (x->chain.len != ZILA_CHAIN_LEN || !in_differ(s, x->part))
			continue;
		memset(&key, 0, sizeof(key));
		memcpy(key.origin, x->origin.data, 32);
		memcpy(key.part, x->part, strlen(x->part) + 1);
		const struct zila_feed_head *h = bsearch(&key, s->mine.heads, s->mine.nheads, sizeof(key), head_cmp);
		if (h == NULL || h->seq != x->seq || memcmp(h->chain, zero, sizeof(zero)) == 0 ||
		    memcmp(h->chain, x->chain.data, ZILA_CHAIN_LEN) == 0)
			continue;
		s->st.forks++;
		r = zila_store_fork_note(s->cfg.store, key.origin, key.part, x->seq, NULL);
	}
	return r;
}

static int receive_heads(struct zila_session *s, const Zila__Heads *hd, struct zila_error *err)
{
	struct zila_vector have = { NULL, 0 };
	int r = 0;
	if ((have.heads = calloc(hd->n_heads + s->nwithheld + s->cfg.nskip + 1, sizeof(*have.heads))) == NULL)
		return fail(s, err, ZILA_ENOMEM, "out of memory");
	for (size_t i = 0; i < hd->n_heads; i++) {
		const Zila__FeedHead *x = hd->heads[i];
		if (!in_differ(s, x->part))
			continue;
		struct zila_feed_head *h = &have.heads[have.nheads++];
		memcpy(h->origin, x->origin.data, 32);
		memcpy(h->part, x->part, strlen(x->part) + 1);
		h->seq = x->seq;
	}
	if (have.nheads > 1)
		qsort(have.heads, have.nheads, sizeof(*have.heads), head_cmp);
	for (size_t i = 1; i < have.nheads; i++)
		if (head_cmp(&have.heads[i - 1], &have.heads[i]) == 0)
			r = ZILA_EPROTO;
	if (r == 0 && (r = own_feeds(s, &have)) != 0) {
		zila_vector_release(&have);
		return fail(s, err, r, "out of memory");
	}
	if (r == 0 && (r = check_forks(s, hd)) != 0) {
		zila_vector_release(&have);
		return fail(s, err, r, "cannot record a fork");
	}
	/* What the peer refused before is not offered again while its trust records are the
	 * same, unless we just sent it records (its verdict may change). */
	size_t npeer = have.nheads;
	for (size_t i = 0; r == 0 && i < s->cfg.nskip && s->st.trust_sent == 0 && s->st.has_peer_trust; i++) {
		const struct zila_session_skip *k = &s->cfg.skip[i];
		struct zila_feed_head key;
		memset(&key, 0, sizeof(key));
		memcpy(key.origin, k->origin, 32);
		memcpy(key.part, k->part, sizeof(key.part));
		if (memcmp(k->peer_trust, s->st.peer_trust, DIGEST_LEN) != 0 || !in_differ(s, k->part))
			continue;
		struct zila_feed_head *h = bsearch(&key, have.heads, npeer, sizeof(*h), head_cmp);
		if (h != NULL && h->seq >= k->seq)
			continue; /* it took them since, from someone */
		if (h == NULL)
			h = &have.heads[have.nheads++];
		*h = key;
		h->seq = INT64_MAX;
		s->st.feeds_skipped++;
		for (size_t j = 0; j < s->nown; j++)
			if (memcmp(k->origin, zila_store_device_pk(s->cfg.store), 32) == 0 && strcmp(s->own[j].part, k->part) == 0)
				s->own[j].skipped = true;
	}
	if (have.nheads > npeer)
		qsort(have.heads, have.nheads, sizeof(*have.heads), head_cmp);
	/* The peer "has" what we withhold, so the outbox skips it. */
	npeer = have.nheads;
	for (size_t i = 0; r == 0 && i < s->nwithheld; i++) {
		struct zila_feed_head *h = bsearch(&s->withheld[i], have.heads, npeer, sizeof(*h), head_cmp);
		if (h == NULL)
			h = &have.heads[have.nheads++];
		*h = s->withheld[i];
		h->seq = INT64_MAX;
	}
	if (have.nheads > npeer)
		qsort(have.heads, have.nheads, sizeof(*have.heads), head_cmp);
	/* a district's state rather than its history, where that is what the peer lacks */
	if (r == 0 && s->peer_ckpt && (r = plan_checkpoints(s, &have, false)) != 0) {
		zila_vector_release(&have);
		return fail(s, err, r, "cannot read checkpoints");
	}
	if (r == 0)
		r = open_outboxes(s, &have);
	zila_vector_release(&have);
	if (r != 0)
		return fail(s, err, r, r == ZILA_EPROTO ? "the peer named a feed twice" : "cannot read entries");
	s->got_heads = true;
	s->st.to_send_known = true;
	return pump(s, err);
}

static int receive_late(struct zila_session *s, const Zila__Entries *e, struct zila_error *err);
static int pump_late(struct zila_session *s, struct zila_error *err);
static int late_acked(struct zila_session *s, const Zila__Ack *a, struct zila_error *err);

int zila_session_receive(struct zila_session *s, const uint8_t *p, size_t len, struct zila_error *err)
{
	int r = 0;
	if (s->state == ZILA_SESSION_FAILED)
		return zila_error_set(err, ZILA_ECLOSED, "the session has failed");
	if (s->win != NULL)
		return fail(s, err, ZILA_EINVAL, "a received window is not applied yet");
	Zila__Message *m;
	if ((r = unpack_checked(p, len, &m, err)) != 0) {
		s->state = ZILA_SESSION_FAILED;
		return r;
	}
	s->st.msgs_received++;
	s->st.bytes_received += len;
	switch (m->body_case) {
	case ZILA__MESSAGE__BODY_HELLO:
		if (s->state != ZILA_SESSION_HELLO || s->importing)
			r = fail(s, err, ZILA_EPROTO, "unexpected hello");
		else
			r = receive_hello(s, m->hello, err);
		break;
	case ZILA__MESSAGE__BODY_TRUST:
		if (s->state != ZILA_SESSION_EXCHANGE || s->chunks_received > 0 || s->got_done || s->got_heads ||
		    (!s->importing && !s->trust_differs))
			r = fail(s, err, ZILA_EPROTO, "unexpected trust records");
		else if (s->cfg.trust != NULL)
			r = receive_trust(s, m->trust, err);
		break;
	case ZILA__MESSAGE__BODY_HEADS:
		if (s->state != ZILA_SESSION_EXCHANGE || s->got_heads || s->importing)
			r = fail(s, err, ZILA_EPROTO, "unexpected heads");
		else
			r = receive_heads(s, m->heads, err);
		break;
	case ZILA__MESSAGE__BODY_ENTRIES:
		if (s->state == ZILA_SESSION_DONE && s->peer_late)
			r = receive_late(s, m->entries, err);
		else if (s->state != ZILA_SESSION_EXCHANGE || s->got_done || (!s->importing && !s->got_heads))
			r = fail(s, err, ZILA_EPROTO, "unexpected entries");
		else
			r = receive_entries(s, m->entries, err);
		break;
	case ZILA__MESSAGE__BODY_CHECKPOINT:
		/* before the sender's first chunk of entries, after its heads */
		if (s->state != ZILA_SESSION_EXCHANGE || s->got_done || (!s->importing && !s->got_heads))
			r = fail(s, err, ZILA_EPROTO, "unexpected checkpoint");
		else
			r = receive_checkpoint(s, m->checkpoint, err);
		break;
	case ZILA__MESSAGE__BODY_CHECKPOINT_ACK:
		if (s->state != ZILA_SESSION_EXCHANGE || s->importing)
			r = fail(s, err, ZILA_EPROTO, "unexpected checkpoint acknowledgement");
		else
			r = receive_checkpoint_ack(s, m->checkpoint_ack, err);
		break;
	case ZILA__MESSAGE__BODY_ACK:
		if (s->state == ZILA_SESSION_DONE && s->peer_late && m->ack->chunk > s->chunks_acked &&
		    m->ack->chunk <= s->chunks_sent)
			r = late_acked(s, m->ack, err);
		else if (s->state != ZILA_SESSION_EXCHANGE || m->ack->chunk <= s->chunks_acked || m->ack->chunk > s->chunks_sent)
			r = fail(s, err, ZILA_EPROTO, "unexpected acknowledgement");
		else {
			s->chunks_acked = m->ack->chunk;
			receive_refused(s, m->ack);
			own_acked(s, m->ack->chunk);
			r = pump(s, err);
		}
		break;
	case ZILA__MESSAGE__BODY_DONE:
		if (s->state != ZILA_SESSION_EXCHANGE || s->got_done || (!s->importing && !s->got_heads) ||
		    m->done->nchunks != s->chunks_received)
			r = fail(s, err, ZILA_EPROTO, "unexpected end of entries");
		else if (s->pend_chunks > 0) {
			/* counted done once the last window is applied */
			s->done_after = true;
			s->done_entries = m->done->nentries;
			r = window_ready(s, true, err);
		} else {
			if (s->nck_wait > 0)
				ck_retry(s);
			s->got_done = true;
			s->st.peer_done_entries = m->done->nentries;
			s->st.to_receive = m->done->nentries;
		}
		break;
	case ZILA__MESSAGE__BODY_PROGRESS:
		/* Only after our Hello offered them, and before the session ends. */
		if (!s->cfg.live || !(s->state == ZILA_SESSION_EXCHANGE || (s->state == ZILA_SESSION_DONE && s->peer_late)) ||
		    m->progress->bytes < s->st.peer_read_bytes)
			r = fail(s, err, ZILA_EPROTO, "unexpected progress");
		else
			s->st.peer_read_bytes = m->progress->bytes;
		break;
	case ZILA__MESSAGE__BODY_ERROR:
		s->state = ZILA_SESSION_FAILED;
		if (m->error->code == (uint32_t)-ZILA_EREF)
			s->st.ref_failed = true; /* our next session with it sends keys whole */
		s->st.peer_error = m->error->code <= (uint32_t)INT32_MAX ? -(int)m->error->code : 0;
		r = zila_error_set(err, ZILA_EPEER, "the peer ended the session: %s", m->error->reason);
		break;
	default:
		r = fail(s, err, ZILA_EPROTO, "unexpected message");
		break;
	}
	zila__message__free_unpacked(m, NULL);
	if (r == 0)
		check_done(s);
	return r;
}

int zila_session_progress(struct zila_session *s, uint64_t bytes_read, struct zila_error *err)
{
	/* (in the blob phase too: the peer sees we read its chunks) */
	if (!s->peer_progress || !(s->state == ZILA_SESSION_EXCHANGE || (s->state == ZILA_SESSION_DONE && s->peer_blobs)))
		return 0;
	Zila__Progress pr = ZILA__PROGRESS__INIT;
	Zila__Message m = ZILA__MESSAGE__INIT;
	pr.bytes = bytes_read;
	m.body_case = ZILA__MESSAGE__BODY_PROGRESS;
	m.progress = &pr;
	int r = emit(s, &m);
	return r != 0 ? fail(s, err, r, "cannot send progress") : 0;
}

bool zila_session_peer_blobs(const struct zila_session *s)
{
	return s->peer_blobs;
}

bool zila_session_peer_progress(const struct zila_session *s)
{
	return s->peer_progress;
}

int zila_session_flush(struct zila_session *s, struct zila_error *err)
{
	if (s->state != ZILA_SESSION_EXCHANGE || s->pend_chunks == 0 || s->win != NULL)
		return 0;
	return window_ready(s, true, err);
}

bool zila_session_wants_to_send(const struct zila_session *s)
{
	if (s->state == ZILA_SESSION_DONE)
		return s->late != NULL && s->chunks_sent - s->chunks_acked < s->peer_window;
	if (s->state == ZILA_SESSION_EXCHANGE && s->got_heads && !s->sent_done && s->ck_pos < s->nck) {
		const struct ck_out *c = &s->ck[s->ck_pos];
		return c->sent < c->len ? c->sent - c->acked < CK_UNACKED : c->acked == c->len;
	}
	return s->state == ZILA_SESSION_EXCHANGE && s->got_heads && !s->sent_done &&
	       s->chunks_sent - s->chunks_acked < s->peer_window;
}

int zila_session_send_more(struct zila_session *s, size_t chunk_bytes, struct zila_error *err)
{
	if (!zila_session_wants_to_send(s))
		return 0;
	s->credit = 1;
	s->credit_bytes = chunk_bytes;
	int r = s->state == ZILA_SESSION_DONE ? pump_late(s, err) : pump(s, err);
	s->credit = 0;
	if (r == 0)
		check_done(s);
	return r;
}

/* --- rows in the blob phase (PROTOCOL.md, "Rows in the blob phase") ----------------- */

/* The peer takes them only when the whole partition is in its read scope, as in the
 * session; digests equal or not, a new entry may be in any such partition. */
static bool late_filter(void *ctx, const char *part)
{
	return peer_may_read(ctx, part);
}

/* A cursor over our own entries the peer lacks: past what the session offered and what
 * went in the blob phase, in feeds it did not refuse and we do not withhold. Entries of
 * other authors wait for the next session (their order among ours is not ours to keep). */
static int late_open(struct zila_session *s)
{
	const uint8_t *self = zila_store_device_pk(s->cfg.store);
	struct zila_vector v = { NULL, 0 };
	int r = zila_store_vector(s->cfg.store, &v);
	for (size_t i = 0; r == 0 && i < v.nheads; i++) {
		struct zila_feed_head *h = &v.heads[i];
		size_t idx;
		if (memcmp(h->origin, self, 32) != 0 || !peer_may_read(s, h->part)) {
			h->seq = INT64_MAX;
			continue;
		}
		bool held = false;
		for (size_t k = 0; k < s->nwithheld && !held; k++)
			held = strcmp(s->withheld[k].part, h->part) == 0;
		const struct own_feed *o = own_of(s, h->part, &idx);
		if (o == NULL && !held) {
			/* a partition we began writing after the session started */
			struct own_feed *no = realloc(s->own, (s->nown + 1) * sizeof(*no));
			if (no == NULL) {
				r = ZILA_ENOMEM;
				break;
			}
			s->own = no;
			o = memset(&s->own[s->nown++], 0, sizeof(*no));
			memcpy(s->own[s->nown - 1].part, h->part, sizeof(h->part));
		}
		const struct zila_refusal *f = refusal_of(&s->st, self, h->part);
		if (held || o->skipped || (f != NULL && f->seq > 0))
			h->seq = INT64_MAX;
		else
			h->seq = o->late > o->ours ? o->late : o->ours;
	}
	if (r == 0)
		r = zila_outbox_open(s->cfg.store, &v, late_filter, s, &s->late);
	zila_vector_release(&v);
	return r;
}

int zila_session_late_rows(struct zila_session *s, uint64_t *nentries, struct zila_error *err)
{
	*nentries = 0;
	if (s->state != ZILA_SESSION_DONE || !s->peer_late || !s->own_known)
		return 0;
	if (s->late != NULL) {
		/* the cursor goes on; what was sealed since it opened follows it */
		s->late_again = true;
		*nentries = zila_outbox_total(s->late);
		return 0;
	}
	int r = late_open(s);
	if (r != 0)
		return fail(s, err, r, "cannot read our new entries");
	*nentries = zila_outbox_total(s->late);
	if (*nentries == 0) {
		zila_outbox_free(s->late);
		s->late = NULL;
	}
	return 0;
}

/* One chunk of the late cursor (zila_session_send_more after DONE). */
static int pump_late(struct zila_session *s, struct zila_error *err)
{
	size_t max = s->cfg.chunk_bytes ? s->cfg.chunk_bytes : ZILA_SESSION_CHUNK;
	if (s->cfg.paced && s->credit_bytes > 0 && s->credit_bytes < max)
		max = s->credit_bytes;
	bool end = false;
	uint64_t before = s->st.entries_sent;
	int r = send_chunk(s, s->late, max, &end);
	if (r != 0)
		return fail(s, err, r, "cannot send entries");
	s->st.late_sent += s->st.entries_sent - before;
	if (end) {
		zila_outbox_free(s->late);
		s->late = NULL;
		if (s->late_again) {
			s->late_again = false;
			uint64_t n;
			return zila_session_late_rows(s, &n, err);
		}
	}
	return 0;
}

/* A chunk after DONE: applied at once (the caller applies, as in the session), then
 * acknowledged. */
static int receive_late(struct zila_session *s, const Zila__Entries *e, struct zila_error *err)
{
	uint64_t before = s->st.entries_received;
	int r = receive_entries(s, e, err);
	if (r == 0)
		r = window_ready(s, true, err);
	s->st.late_received += s->st.entries_received - before;
	return r;
}

/* Our chunks after DONE acknowledged: what of ours they held is the peer's now. */
static int late_acked(struct zila_session *s, const Zila__Ack *a, struct zila_error *err)
{
	(void)err;
	s->chunks_acked = a->chunk;
	receive_refused(s, a);
	own_acked(s, a->chunk);
	for (size_t i = 0; i < s->nown; i++)
		if (s->own[i].acked > s->own[i].ours)
			s->own[i].ours = s->own[i].acked;
	own_count(s, true);
	return 0;
}

bool zila_session_peer_late(const struct zila_session *s)
{
	return s->peer_late;
}

bool zila_session_late_unacked(const struct zila_session *s)
{
	return s->state == ZILA_SESSION_DONE && (s->late != NULL || s->chunks_acked < s->chunks_sent);
}

void zila_session_abort(struct zila_session *s, int code, const char *reason)
{
	if (s->state == ZILA_SESSION_FAILED || s->state == ZILA_SESSION_DONE)
		return;
	Zila__Error e = ZILA__ERROR__INIT;
	Zila__Message m = ZILA__MESSAGE__INIT;
	char why[REASON_MAX + 1];
	snprintf(why, sizeof(why), "%s", reason ? reason : "");
	e.code = (uint32_t)-code;
	e.reason = why;
	m.body_case = ZILA__MESSAGE__BODY_ERROR;
	m.error = &e;
	(void)emit(s, &m);
	s->state = ZILA_SESSION_FAILED;
}

int zila_session_salvage(struct zila_session *s, uint64_t *napplied, struct zila_error *err)
{
	uint64_t before = s->st.entries_applied + s->st.entries_held;
	int r = 0;
	*napplied = 0;
	/* Chunks are only ever kept whole (the channel authenticated each one) and in order, so
	 * what is kept is a prefix of the sender's causal order, as an applied window is. */
	if (s->state == ZILA_SESSION_EXCHANGE && s->pend_chunks > 0) {
		r = window_close(s, false, err);
		s->win_ack = false; /* a window the caller had not applied yet: nobody to tell */
		r = r ? r : zila_session_apply(s, err);
	}
	*napplied = s->st.entries_applied + s->st.entries_held - before;
	return r;
}

enum zila_session_state zila_session_state(const struct zila_session *s)
{
	return s->state;
}

bool zila_session_done(const struct zila_session *s)
{
	return s->state == ZILA_SESSION_DONE;
}

size_t zila_session_pack_bytes(const struct zila_session *s)
{
	return ZSTD_sizeof_CCtx(s->zc) + ZSTD_sizeof_DCtx(s->zd) + s->wire.cap + s->zbuf.cap +
	       zila_entry_coder_bytes(s->enc) + zila_entry_coder_bytes(s->dec);
}

const struct zila_session_stats *zila_session_stats(const struct zila_session *s)
{
	return &s->st;
}

/* --- bundles ------------------------------------------------------------------------ */

static bool any_part(void *ctx, const char *part)
{
	(void)ctx;
	(void)part;
	return true;
}

int zila_session_export(struct zila_store *store, const struct zila_vector *have, zila_part_filter_fn filter,
			void *filter_ctx, zila_session_send_fn send, void *send_ctx, uint64_t *nentries,
			struct zila_error *err)
{
	struct zila_session_config cfg;
	struct zila_session *s = NULL;
	memset(&cfg, 0, sizeof(cfg));
	cfg.store = store;
	cfg.send = send;
	cfg.send_ctx = send_ctx;
	cfg.peer_may_read = filter;
	cfg.peer_read_ctx = filter_ctx;
	cfg.chunk_bytes = ZILA_SESSION_CHUNK;
	if (nentries)
		*nentries = 0;
	int r = zila_session_new(&s, &cfg, err);
	if (r != 0)
		return r;
	if ((r = send_trust(s)) != 0) {
		r = zila_error_set(err, r, "cannot read the trust records");
		goto out;
	}
	/* checkpoints first, then the entries past them (the receiver's vector raised to them) */
	struct zila_vector raised = { NULL, 0 };
	if (have != NULL && (raised.heads = calloc(have->nheads + 1, sizeof(*raised.heads))) != NULL) {
		if (have->nheads > 0)
			memcpy(raised.heads, have->heads, have->nheads * sizeof(*raised.heads));
		raised.nheads = have->nheads;
	} else if (have != NULL) {
		r = zila_error_set(err, ZILA_ENOMEM, "out of memory");
		goto out;
	}
	s->ck_filter = filter != NULL ? filter : any_part;
	s->ck_filter_ctx = filter_ctx;
	r = zila_store_vector(store, &s->mine); /* what the receiver holds that we lack (plan) */
	r = r ? r : plan_checkpoints(s, &raised, true);
	r = r ? r : open_outboxes(s, &raised);
	zila_vector_release(&raised);
	if (r != 0) {
		r = zila_error_set(err, r, "cannot read entries");
		goto out;
	}
	s->ck_unlimited = true;
	/* Nobody acknowledges a file: the window never closes. */
	s->peer_window = UINT32_MAX;
	s->pack = true;
	s->frame_per_chunk = true;
	s->state = ZILA_SESSION_EXCHANGE;
	s->got_heads = true;
	if ((r = pump(s, err)) == 0 && nentries)
		*nentries = s->st.entries_sent;
out:
	zila_session_free(s);
	return r;
}

int zila_session_import_begin(struct zila_session *s, struct zila_error *err)
{
	if (s->state != ZILA_SESSION_NEW)
		return fail(s, err, ZILA_EINVAL, "the session has already started");
	s->importing = true;
	s->pack = true;
	s->sent_done = true;
	s->state = ZILA_SESSION_EXCHANGE;
	return 0;
}

/* --- validation --------------------------------------------------------------------- */

static int check_body(const Zila__Message *m)
{
	switch (m->body_case) {
	case ZILA__MESSAGE__BODY_HELLO: {
		const Zila__Hello *h = m->hello;
		if (h->version < 1 || h->n_parts > ZILA_SESSION_PARTS_MAX ||
		    (h->trust_digest.len != 0 && h->trust_digest.len != DIGEST_LEN) ||
		    (h->history_digest.len != 0 && h->history_digest.len != DIGEST_LEN))
			return ZILA_EFORMAT;
		for (size_t i = 0; i < h->n_parts; i++) {
			if (!name_ok(h->parts[i]->part, ZILA_PART_MAX) || h->parts[i]->digest.len != DIGEST_LEN)
				return ZILA_EFORMAT;
			/* Sorted and without repeats, so both sides compare lists in one pass. */
			if (i > 0 && strcmp(h->parts[i - 1]->part, h->parts[i]->part) >= 0)
				return ZILA_EFORMAT;
		}
		return 0;
	}
	case ZILA__MESSAGE__BODY_HEADS:
		if (m->heads->n_heads > ZILA_SESSION_HEADS_MAX)
			return ZILA_ETOOBIG;
		for (size_t i = 0; i < m->heads->n_heads; i++) {
			const Zila__FeedHead *h = m->heads->heads[i];
			if (h->origin.len != 32 || !name_ok(h->part, ZILA_PART_MAX) || h->seq == 0 || h->seq > INT64_MAX ||
			    (h->chain.len != 0 && h->chain.len != ZILA_CHAIN_LEN))
				return ZILA_EFORMAT;
		}
		return 0;
	case ZILA__MESSAGE__BODY_TRUST:
		for (size_t i = 0; i < m->trust->n_records; i++) {
			const Zila__TrustRecord *t = m->trust->records[i];
			if (t->type == 0 || t->type > 255 || t->id.len > TRUST_ID_MAX || t->bytes.len > TRUST_RECORD_MAX)
				return ZILA_EFORMAT;
		}
		return 0;
	case ZILA__MESSAGE__BODY_ENTRIES:
		if (m->entries->packed.len > 0) /* a packed chunk: its entries are checked as unpacked */
			return m->entries->chunk == 0 || m->entries->n_entries != 0 || m->entries->count == 0 ||
					       m->entries->count > ENTRIES_PER_CHUNK_MAX
				       ? ZILA_EFORMAT
				       : 0;
		if (m->entries->chunk == 0 || m->entries->n_entries == 0 || m->entries->n_entries > ENTRIES_PER_CHUNK_MAX ||
		    m->entries->count != 0)
			return ZILA_EFORMAT;
		for (size_t i = 0; i < m->entries->n_entries; i++)
			if (m->entries->entries[i].len == 0 || m->entries->entries[i].len > ZILA_ENTRY_MAX)
				return ZILA_EFORMAT;
		return 0;
	case ZILA__MESSAGE__BODY_ACK:
		if (m->ack->chunk == 0 || m->ack->n_refused > REFUSED_MAX)
			return ZILA_EFORMAT;
		for (size_t i = 0; i < m->ack->n_refused; i++) {
			const Zila__Refused *x = m->ack->refused[i];
			if (x->origin.len != 32 || !name_ok(x->part, ZILA_PART_MAX) || x->seq == 0 || x->seq > INT64_MAX ||
			    !name_ok(x->reason, REASON_MAX))
				return ZILA_EFORMAT;
		}
		return 0;
	case ZILA__MESSAGE__BODY_CHECKPOINT: {
		const Zila__Checkpoint *k = m->checkpoint;
		return name_ok(k->part, ZILA_PART_MAX) && k->part[0] != '\0' && k->data.len > 0 && k->data.len <= CK_SLICE &&
				       k->total <= CK_MAX && k->offset < k->total && k->data.len <= k->total - k->offset
			       ? 0
			       : ZILA_EFORMAT;
	}
	case ZILA__MESSAGE__BODY_CHECKPOINT_ACK:
		return name_ok(m->checkpoint_ack->part, ZILA_PART_MAX) && m->checkpoint_ack->upto <= CK_MAX &&
				       m->checkpoint_ack->reason != NULL && strlen(m->checkpoint_ack->reason) <= REASON_MAX &&
				       zila_utf8_valid((const uint8_t *)m->checkpoint_ack->reason, strlen(m->checkpoint_ack->reason))
			       ? 0
			       : ZILA_EFORMAT;
	case ZILA__MESSAGE__BODY_DONE:
	case ZILA__MESSAGE__BODY_PROGRESS:
		return 0;
	case ZILA__MESSAGE__BODY_ERROR:
		return m->error->reason != NULL && strlen(m->error->reason) <= REASON_MAX &&
				       zila_utf8_valid((const uint8_t *)m->error->reason, strlen(m->error->reason))
			       ? 0
			       : ZILA_EFORMAT;
	case ZILA__MESSAGE__BODY_ENROLMENT:
		return m->enrolment->cert_file.len == 0 || m->enrolment->cert_file.len > CERT_FILE_MAX ? ZILA_EFORMAT : 0;
	default:
		return ZILA_EFORMAT;
	}
}

/* Decodes one message and checks its limits; *out is freed with zila__message__free_unpacked. */
static int unpack_checked(const uint8_t *p, size_t len, Zila__Message **out, struct zila_error *err)
{
	*out = NULL;
	if (len > ZILA_SESSION_MSG_MAX)
		return zila_error_set(err, ZILA_ETOOBIG, "message of %zu bytes exceeds the limit", len);
	/* Counts are checked while decoding: what the decoder may allocate is bounded by the
	 * message's size (a million empty elements cannot cost gigabytes). */
	struct zila_pb_budget b;
	zila_pb_budget_init(&b, len);
	Zila__Message *m = zila__message__unpack(&b.alloc, len, p);
	if (m == NULL && b.refused)
		return zila_error_set(err, ZILA_ELIMIT, "message of %zu bytes holds too many elements", len);
	if (m == NULL)
		return zila_error_set(err, ZILA_EFORMAT, "malformed message");
	int r = check_body(m);
	if (r != 0) {
		zila__message__free_unpacked(m, NULL);
		return zila_error_set(err, r, "message fails its limits");
	}
	*out = m;
	return 0;
}

int zila_session_check_message(const uint8_t *p, size_t len, struct zila_error *err)
{
	Zila__Message *m;
	int r = unpack_checked(p, len, &m, err);
	if (r == 0)
		zila__message__free_unpacked(m, NULL);
	return r;
}

int zila_session_verify_message(const uint8_t *p, size_t len, struct zila_error *err)
{
	Zila__Message *m;
	int r = unpack_checked(p, len, &m, err);
	if (r != 0)
		return r;
	if (m->body_case == ZILA__MESSAGE__BODY_ENTRIES && m->entries->packed.len > 0) {
		/* A bundle's packed chunk is a whole zstd frame: it is checked on its own. */
		struct zila_entry_coder *dec = NULL;
		ZSTD_DCtx *zd = ZSTD_createDCtx();
		struct zila_buf wire, one;
		zila_buf_init(&wire, PACK_PLAIN_LIMIT);
		zila_buf_init(&one, ZILA_ENTRY_MAX + 4096);
		r = zd == NULL || zila_entry_coder_new(&dec) != 0 ? ZILA_ENOMEM : 0;
		/* each entry is verified and dropped: its body need not be compressed to be stored */
		if (r == 0)
			zila_entry_coder_plain(dec, true);
		if (r == 0 && ZSTD_isError(ZSTD_DCtx_setParameter(zd, ZSTD_d_windowLogMax, PACK_WINDOW_LOG_MAX)))
			r = ZILA_EINTERNAL;
		bool between;
		r = r ? r : unpack_stream(zd, m->entries->packed.data, m->entries->packed.len, &wire, &between);
		if (r != 0)
			zila_error_set(err, r, "a packed chunk does not decompress");
		struct zila_view in = zila_buf_view(&wire);
		for (uint32_t i = 0; r == 0 && i < m->entries->count; i++) {
			struct zila_entry_info info;
			zila_buf_reset(&one);
			if ((r = zila_entry_from_wire(dec, &in, &one)) != 0)
				zila_error_set(err, r, "entry %u: malformed", i);
			else if ((r = zila_entry_verify(zila_buf_view(&one), &info)) != 0)
				zila_error_set(err, r, "entry %u: %s", i, zila_strerror(r));
		}
		if (r == 0 && in.len != 0)
			r = zila_error_set(err, ZILA_EFORMAT, "a packed chunk holds more than its count of entries");
		zila_buf_release(&wire);
		zila_buf_release(&one);
		zila_entry_coder_free(dec);
		ZSTD_freeDCtx(zd);
	}
	if (m->body_case == ZILA__MESSAGE__BODY_ENTRIES) {
		for (size_t i = 0; r == 0 && i < m->entries->n_entries; i++) {
			struct zila_entry_info info;
			r = zila_entry_verify(zila_view_make(m->entries->entries[i].data, m->entries->entries[i].len), &info);
			if (r != 0)
				zila_error_set(err, r, "entry %zu: %s", i, zila_strerror(r));
		}
	}
	zila__message__free_unpacked(m, NULL);
	return r;
}
