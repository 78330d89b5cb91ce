/* Property test of the merge: 3-5 replicas take random inserts, updates and deletes
 * (UNIQUE collisions, children of concurrently deleted parents, create-after-delete,
 * double deletes) from plain sqlite3 connections, exchange bundles pairwise in random
 * order, then exchange everything: all content hashes must be equal and
 * PRAGMA foreign_key_check clean. Replica 0 is HQ and changes the schema now and then
 * (columns with and without defaults, a table, indexes: zila_schema_change); writes use
 * what a replica has, and some exchanges hand entries over one by one in random order,
 * so a schema change arrives before, after or between the entries that need it. In half
 * the seeds replica 1 is a second HQ device changing the schema at the same time: every
 * replica must also end with the same tables, columns (in order), indexes and schema
 * entries. In one seed of eight (ZILA_PROP_BLOBS) files are attached, their rows deleted
 * and their blobs exchanged, with cuts, within each replica's read scope (blob_*, below).
 * ZILA_SEEDS sets how many seeds (default 500;
 * ZILA_SEEDS=FIRST-LAST runs seeds FIRST to LAST);
 * ZILA_SEED=N replays one seed. A failure prints its seed. A seed's run is the same on
 * every run: writes dated by the replicas' test clocks (not the real one: the capture
 * triggers' julianday) and device keys from the seed (they rank HQ devices and order ties);
 * ZILA_PROP_FIXED=0 uses the real clock and random keys instead (a seed then varies from
 * run to run, as it did before: seed 29 failed in about 2 of 5 such runs until parked rows
 * kept their values as the table holds them, test_parked_values_affine in test_store.c).
 * ZILA_PROP_CKPT=1 adds checkpoints, collection and replaced laptops (make check runs some
 * shards with it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>
#include <sqlite3.h>
#include <cmocka.h>

#include "zila/blob.h"
#include "zila/blobx.h"
#include "zila/bundle.h"
#include "zila/schema.h"
#include "zila/store.h"
#include "zila/store_test.h"
#include "zila/log.h"
#include "zila/os.h"

#define MAXR 5

static const char test_schema[] =
	"CREATE TABLE parent(id TEXT PRIMARY KEY, district_id TEXT, name TEXT, code TEXT,"
	" UNIQUE(district_id, code));"
	"CREATE TABLE child(id TEXT PRIMARY KEY, district_id TEXT NOT NULL, parent_id TEXT REFERENCES parent(id),"
	" v INTEGER, note TEXT);"
	"CREATE INDEX child_parent ON child(parent_id);"
	"CREATE TABLE tag(id TEXT PRIMARY KEY, label TEXT, weight REAL);";

/* HQ's schema changes, in order. */
static const struct {
	const char *sql, *pcol;
} schema_steps[] = {
	{ "ALTER TABLE parent ADD COLUMN extra TEXT", NULL },
	{ "CREATE TABLE item(id TEXT PRIMARY KEY, district_id TEXT, parent_id TEXT REFERENCES parent(id),"
	  " qty INTEGER, UNIQUE(district_id, qty))", "district_id" },
	{ "CREATE INDEX item_parent ON item(parent_id)", NULL },
	{ "ALTER TABLE child ADD COLUMN score INTEGER NOT NULL DEFAULT 7", NULL },
	{ "ALTER TABLE tag ADD COLUMN color TEXT DEFAULT 'red'", NULL },
	{ "CREATE INDEX child_note ON child(note)", NULL },
	{ "DROP INDEX child_note", NULL },
};
#define NSTEPS (sizeof(schema_steps) / sizeof(schema_steps[0]))

/* A second HQ device's (replica 1, in half the seeds), made without waiting for the
 * first's: some fit beside them, some meet them (the same column with another type, the
 * same table or index made otherwise) and lose the same way everywhere. A change its own
 * replica refuses (it has the first HQ's already) is skipped. */
static const struct {
	const char *sql, *pcol;
} schema_steps_b[] = {
	{ "ALTER TABLE tag ADD COLUMN size INTEGER", NULL },
	{ "ALTER TABLE parent ADD COLUMN extra INTEGER DEFAULT 3", NULL },
	{ "CREATE TABLE item(id TEXT PRIMARY KEY, district_id TEXT, qty INTEGER, memo TEXT)", "district_id" },
	{ "CREATE INDEX child_note ON child(v)", NULL },
	{ "ALTER TABLE child ADD COLUMN score INTEGER NOT NULL DEFAULT 7", NULL },
};
#define NSTEPS_B (sizeof(schema_steps_b) / sizeof(schema_steps_b[0]))

struct replica {
	char dir[256];
	struct zila_store *s;
	sqlite3 *app; /* a plain connection, as any program would open */
	uint64_t clock;
};

static uint64_t rng_state;
static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state % n);
}

static uint64_t fake_clock(void *ctx)
{
	struct replica *r = ctx;
	r->clock += rnd(3); /* clocks that tick slowly and tie often */
	return r->clock;
}

/* julianday('now') on both of a replica's connections reads its fake clock (without ticking
 * it): the capture triggers date a write by it and the seal turns that date into an HLC, so
 * with the real clock the entries' dates, their grouping and so the merge's winners depended
 * on how long the run took between a write and its seal (seed 122 passed when traced). */
static void fake_julianday(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
	const unsigned char *a = argc == 1 ? sqlite3_value_text(argv[0]) : NULL;
	if (a == NULL || strcmp((const char *)a, "now") != 0) {
		sqlite3_result_error(cx, "test julianday: only 'now'", -1);
		return;
	}
	const struct replica *r = sqlite3_user_data(cx);
	sqlite3_result_double(cx, (double)r->clock / 86400000.0 + 2440587.5);
}

static int fake_now(sqlite3 *db, struct replica *r)
{
	return sqlite3_create_function(db, "julianday", 1, SQLITE_UTF8, r, fake_julianday, NULL, NULL);
}

/* The keys too (device keys, nonces): from a generator of the seed's, not the system's. A
 * device's key orders the merge's ties and ranks HQ devices' concurrent schema changes, so
 * with random keys a seed could pass one run and fail the next. Test-only, not random. */
static bool fixed; /* unless ZILA_PROP_FIXED=0: the test clock's julianday and these keys */
static uint64_t key_state;
static void key_bytes(void *const buf, const size_t size)
{
	uint8_t *p = buf;
	for (size_t i = 0; i < size; i++) {
		key_state = key_state * 6364136223846793005ull + 1442695040888963407ull;
		p[i] = (uint8_t)(key_state >> 56);
	}
}
static uint32_t key_random(void)
{
	uint32_t v;
	key_bytes(&v, sizeof(v));
	return v;
}
static const char *key_name(void)
{
	return "zila-test-property";
}
static struct randombytes_implementation key_impl = {
	.implementation_name = key_name, .random = key_random, .buf = key_bytes,
};

static char failure[512];
static uint64_t total_pruned, total_ckpts, total_collected; /* across seeds: the checkpoints and collection ran */
/* Checkpoints, collection and replaced laptops run with ZILA_PROP_CKPT=1 (they change what
 * a seed does, so a seed's run with them is another run; make check runs some shards
 * each way). ZILA_PROP_DUMP=1 prints the replicas' rows at a failure. */
static bool nockpt;
static int note_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(failure, sizeof(failure), fmt, ap);
	va_end(ap);
	return -1;
}

static int open_replica(struct replica *r, const char *base, int i, bool first)
{
	struct zila_error err;
	snprintf(r->dir, sizeof(r->dir), "%s/r%d", base, i);
	if (first) {
		if (zila_store_create(r->dir, &err) != 0)
			return note_fail("create: %s", err.msg);
	}
	if (zila_store_open(&r->s, r->dir, &err) != 0)
		return note_fail("open: %s", err.msg);
	r->clock = 1700000000000ull + rnd(50);
	zila_store_set_clock(r->s, fake_clock, r);
	char path[300];
	snprintf(path, sizeof(path), "%s/zila.db", r->dir);
	if (sqlite3_open(path, &r->app) != SQLITE_OK)
		return note_fail("sqlite3_open");
	sqlite3_busy_timeout(r->app, 5000);
	if (fixed && (fake_now(r->app, r) != SQLITE_OK || fake_now(zila_store_db(r->s), r) != SQLITE_OK))
		return note_fail("julianday: %s", sqlite3_errmsg(r->app));
	if (first) {
		if (sqlite3_exec(r->app, test_schema, NULL, NULL, NULL) != SQLITE_OK)
			return note_fail("schema: %s", sqlite3_errmsg(r->app));
		if (zila_store_track(r->s, "parent", "district_id", &err) != 0 ||
		    zila_store_track(r->s, "child", "district_id", &err) != 0 ||
		    zila_store_track(r->s, "tag", NULL, &err) != 0)
			return note_fail("track: %s", err.msg);
	}
	return 0;
}

static void close_replica(struct replica *r)
{
	sqlite3_close(r->app);
	r->app = NULL;
	zila_store_free(r->s);
	r->s = NULL;
}

/* Ids come from small pools so that rows are shared, deleted and re-created. */
static void rid(char *out, const char *prefix, uint32_t n)
{
	sprintf(out, "%s%u", prefix, n);
}

/* ZILA_PROP_TRACE=1: each write and exchange on stderr, to follow a failing seed. */
static bool trace;

static void app_exec(struct replica *r, const char *sql)
{
	if (trace)
		fprintf(stderr, "  %s: %s\n", r->dir + strlen(r->dir) - 2, sql);
	/* Constraint failures are what a real application would see too; they change nothing. */
	(void)sqlite3_exec(r->app, sql, NULL, NULL, NULL);
}

static void random_write(struct replica *r)
{
	char sql[512], id[32], pid[32];
	/* Parents may also be org-wide: a NULL partition value is the org-wide partition. */
	uint32_t dk = rnd(5);
	const char *dist = dk < 2 ? "d1" : dk < 4 ? "d2" : "org";
	const char *dval = dk < 2 ? "'d1'" : dk < 4 ? "'d2'" : "NULL";
	switch (rnd(15)) {
	case 0:
	case 1:
		/* REPLACE removes the row holding the same code (or key) without a delete trigger */
		rid(id, "p", rnd(12));
		snprintf(sql, sizeof(sql), "INSERT %sINTO parent(id, district_id, name, code) VALUES ('%s-%s', %s, 'n%u', 'c%u')",
			 rnd(3) == 0 ? "OR REPLACE " : "", id, dist, dval, rnd(100), rnd(6));
		break;
	case 2:
		rid(id, "p", rnd(12));
		snprintf(sql, sizeof(sql), "UPDATE parent SET name = 'u%u' WHERE id = '%s-%s'", rnd(100), id, dist);
		break;
	case 3:
		rid(id, "p", rnd(12));
		snprintf(sql, sizeof(sql), "UPDATE %sparent SET code = 'c%u' WHERE id = '%s-%s'",
			 rnd(2) == 0 ? "OR REPLACE " : "", rnd(6), id, dist);
		break;
	case 4:
		rid(id, "p", rnd(12));
		snprintf(sql, sizeof(sql), "DELETE FROM parent WHERE id = '%s-%s'", id, dist);
		break;
	case 5:
	case 6:
		rid(id, "c", rnd(20));
		rid(pid, "p", rnd(12));
		snprintf(sql, sizeof(sql),
			 "INSERT OR IGNORE INTO child(id, district_id, parent_id, v, note) SELECT '%s-%s', '%s', id, %u, 'x'"
			 " FROM parent WHERE id = '%s-%s'",
			 id, dk < 4 ? dist : "d1", dk < 4 ? dist : "d1", rnd(1000), pid, dist);
		break;
	case 7:
		rid(id, "c", rnd(20));
		snprintf(sql, sizeof(sql), "UPDATE child SET v = v + %u, note = 'n%u' WHERE id = '%s-%s'", rnd(9) + 1,
			 rnd(50), id, dist);
		break;
	case 8:
		rid(id, "c", rnd(20));
		snprintf(sql, sizeof(sql), "DELETE FROM child WHERE id = '%s-%s'", id, dist);
		break;
	/* what a schema change added: refused by SQLite where it is not here yet */
	case 10:
		rid(id, "p", rnd(12));
		snprintf(sql, sizeof(sql), "UPDATE parent SET extra = 'e%u' WHERE id = '%s-%s'", rnd(100), id, dist);
		break;
	case 11:
		rid(id, "i", rnd(10));
		rid(pid, "p", rnd(12));
		if (rnd(4) == 0)
			snprintf(sql, sizeof(sql), "DELETE FROM item WHERE id = '%s-%s'", id, dist);
		else
			snprintf(sql, sizeof(sql),
				 "INSERT %sINTO item(id, district_id, parent_id, qty) SELECT '%s-%s', district_id, id, %u"
				 " FROM parent WHERE id = '%s-%s'",
				 rnd(3) == 0 ? "OR REPLACE " : "", id, dist, rnd(5), pid, dist);
		break;
	case 12:
		rid(id, "c", rnd(20));
		snprintf(sql, sizeof(sql), "UPDATE child SET score = %u WHERE id = '%s-%s'", rnd(50), id, dist);
		break;
	case 13:
		rid(id, "t", rnd(6));
		snprintf(sql, sizeof(sql), "UPDATE tag SET color = 'k%u' WHERE id = '%s'", rnd(9), id);
		break;
	case 14:
		rid(id, "t", rnd(6));
		snprintf(sql, sizeof(sql), "UPDATE tag SET size = %u WHERE id = '%s'", rnd(9), id);
		break;
	default:
		rid(id, "t", rnd(6));
		if (rnd(3) == 0)
			snprintf(sql, sizeof(sql), "DELETE FROM tag WHERE id = '%s'", id);
		else
			snprintf(sql, sizeof(sql),
				 "INSERT INTO tag(id, label, weight) VALUES ('%s', 'l%u', %u.5) ON CONFLICT(id) DO UPDATE"
				 " SET label = excluded.label",
				 id, rnd(30), rnd(10));
		break;
	}
	if (rnd(4) == 0) {
		/* Several writes in one application transaction. */
		char tx[1200];
		snprintf(tx, sizeof(tx), "BEGIN; %s; UPDATE tag SET weight = weight + 1 WHERE id = 't%u'; COMMIT;", sql, rnd(6));
		app_exec(r, tx);
		if (!sqlite3_get_autocommit(r->app))
			app_exec(r, "ROLLBACK");
	} else {
		app_exec(r, sql);
	}
}

static int sync_pair(struct replica *from, struct replica *to, const char *base)
{
	struct zila_vector v = { 0 };
	struct zila_error err;
	struct zila_apply_stats st;
	struct zila_buf b;
	(void)base;
	zila_buf_init(&b, SIZE_MAX);
	if (trace)
		fprintf(stderr, "  sync %s -> %s\n", from->dir + strlen(from->dir) - 2, to->dir + strlen(to->dir) - 2);
	if (zila_store_vector(to->s, &v) != 0)
		return note_fail("vector");
	int r = zila_bundle_write(from->s, &v, NULL, NULL, zila_buf_sink, &b, NULL, &err);
	zila_vector_release(&v);
	if (r == 0 && (r = zila_bundle_read(to->s, NULL, b.p, b.len, "x", &st, &err)) != 0)
		r = note_fail("bundle apply: %s", err.msg);
	else if (r != 0)
		r = note_fail("bundle create: %s", err.msg);
	zila_buf_release(&b);
	if (r != 0)
		return r;
	if (st.nrejected || st.ngap)
		return note_fail("apply rejected %zu, gaps %zu", st.nrejected, st.ngap);
	return 0;
}

struct held {
	uint8_t **p;
	size_t *len, n, cap;
};

static int collect(void *ctx, const struct zila_entry_info *e, struct zila_view bytes)
{
	struct held *h = ctx;
	(void)e;
	if (h->n == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 16;
		h->p = realloc(h->p, h->cap * sizeof(*h->p));
		h->len = realloc(h->len, h->cap * sizeof(*h->len));
		if (h->p == NULL || h->len == NULL)
			return -1;
	}
	h->p[h->n] = malloc(bytes.len);
	if (h->p[h->n] == NULL)
		return -1;
	memcpy(h->p[h->n], bytes.p, bytes.len);
	h->len[h->n++] = bytes.len;
	return 0;
}

/* What `to` lacks, handed over one entry at a time in random order (an entry whose feed
 * has a gap before it comes again later): schema entries after the entries they carry. */
static int sync_shuffled(struct replica *from, struct replica *to)
{
	struct zila_vector v = { 0 };
	struct held h = { 0 };
	int r = -1;
	if (trace)
		fprintf(stderr, "  shuffled %s -> %s\n", from->dir + strlen(from->dir) - 2, to->dir + strlen(to->dir) - 2);
	if (zila_store_vector(to->s, &v) != 0)
		return note_fail("vector");
	if (zila_store_entries_since(from->s, &v, NULL, NULL, collect, &h) != 0) {
		note_fail("entries_since");
		goto out;
	}
	for (size_t i = h.n; i > 1; i--) {
		size_t j = rnd((uint32_t)i);
		uint8_t *tp = h.p[i - 1];
		size_t tl = h.len[i - 1];
		h.p[i - 1] = h.p[j], h.len[i - 1] = h.len[j];
		h.p[j] = tp, h.len[j] = tl;
	}
	size_t left = h.n;
	while (left > 0) {
		size_t before = left;
		for (size_t i = 0; i < h.n; i++) {
			if (h.p[i] == NULL)
				continue;
			struct zila_view one = zila_view_make(h.p[i], h.len[i]);
			struct zila_apply_stats st;
			struct zila_error err;
			if (zila_store_apply(to->s, &one, 1, &st, &err) != 0) {
				note_fail("apply: %s", err.msg);
				goto out;
			}
			if (st.nrejected) {
				note_fail("apply rejected an entry");
				goto out;
			}
			if (st.ngap == 0) {
				free(h.p[i]);
				h.p[i] = NULL;
				left--;
			}
		}
		if (left == before) {
			note_fail("%zu entries never applied", left);
			goto out;
		}
	}
	r = 0;
out:
	for (size_t i = 0; i < h.n; i++)
		free(h.p[i]);
	free(h.p);
	free(h.len);
	zila_vector_release(&v);
	return r;
}

static int fk_clean(struct replica *r)
{
	sqlite3_stmt *st = NULL;
	int rows = 0;
	if (sqlite3_prepare_v2(r->app, "PRAGMA foreign_key_check", -1, &st, NULL) != SQLITE_OK)
		return note_fail("fk check");
	while (sqlite3_step(st) == SQLITE_ROW)
		rows++;
	sqlite3_finalize(st);
	return rows == 0 ? 0 : note_fail("%s: foreign_key_check found %d orphans", r->dir, rows);
}

/* --- attachments (#25): files attached, rows deleted, blobs exchanged with cuts ------------
 * In one seed of every ZILA_PROP_BLOBS (default 8; 1: every seed, 0: none) the replicas also
 * attach files (the store's own attachments table, tracked in every replica). Replica 0 (HQ) reads every district; replica i > 0 reads only
 * district d(i % 3), attaches files there and deletes attachments rows there. The steps
 * also run the blob phase between two replicas, in either scope, sometimes cut after a few
 * messages. At the end (after the rows' full exchange) every replica exchanges blobs with
 * HQ twice, then collects: each must hold exactly the blobs that live rows of districts it
 * may read refer to, byte-identical to what was attached, and no partial copy. The choices
 * come from a random stream of their own, so the other steps of a seed are unchanged. */
static uint64_t blob_rng;
static uint64_t blob_seeds = 8;
static bool blob_seed; /* this seed attaches files and exchanges blobs */
static bool blob_ready; /* the districts the files belong to are written */
/* Files attached, and by which replica: a replaced laptop (ZILA_PROP_CKPT) takes with it the
 * files it had sent nowhere, so a row elsewhere may refer to bytes no replica holds. */
#define BLOB_ATTACHED_MAX 512
static struct {
	char hash[65];
	int rep;
	bool gone_with; /* its replica was replaced since */
} blob_attached[BLOB_ATTACHED_MAX];
static size_t nblob_attached;

static uint32_t brnd(uint32_t n)
{
	blob_rng ^= blob_rng << 13;
	blob_rng ^= blob_rng >> 7;
	blob_rng ^= blob_rng << 17;
	return (uint32_t)(blob_rng % n);
}

static const char *const districts[] = { "d0", "d1", "d2" };
static const size_t blob_sizes[] = { 1, 5000, 70000, 140000 }; /* 1, 1, 2 and 3 chunks */

/* File k of district d: the same bytes each time (so a file is stored once however often it
 * is attached), never the same in two districts. */
static void blob_bytes(int d, int k, uint8_t *p, size_t len)
{
	uint64_t x = (uint64_t)(d * 16 + k) * 0x9E3779B97F4A7C15ull + 12345;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
}

/* Replica i reads district d: HQ every one, the others their own. */
static bool reads(int i, const char *d)
{
	return i == 0 || strcmp(d, districts[i % 3]) == 0;
}

static bool scope_fn(void *ctx, const char *part)
{
	return reads((int)(intptr_t)ctx, part);
}

struct bq {
	struct zila_buf *m;
	size_t n, head;
	int r;
};

static int bq_send(void *ctx, const uint8_t *p, size_t len)
{
	struct bq *q = ctx;
	struct zila_buf *nm = realloc(q->m, (q->n + 1) * sizeof(*nm));
	if (nm == NULL)
		return ZILA_ENOMEM;
	q->m = nm;
	zila_buf_init(&q->m[q->n], ZILA_SESSION_MSG_MAX);
	if (zila_buf_put(&q->m[q->n], p, len) != 0)
		return ZILA_ENOMEM;
	q->n++;
	return 0;
}

static void bq_clear(struct bq *q)
{
	for (size_t i = 0; i < q->n; i++)
		zila_buf_release(&q->m[i]);
	free(q->m);
	memset(q, 0, sizeof(*q));
}

/* The blob phase between replicas a and b (indexes ia, ib), as a live session runs it after
 * the rows; cut (the rest dropped) after `budget` messages delivered, 0: never. */
static int blob_exchange(struct replica *reps, int ia, int ib, size_t budget)
{
	struct zila_blobx *bx[2] = { NULL, NULL };
	struct bq out[2];
	struct zila_error err;
	int idx[2] = { ia, ib }, r = -1;
	size_t delivered = 0;
	memset(out, 0, sizeof(out));
	for (int k = 0; k < 2; k++) {
		struct zila_blobx_config cfg;
		memset(&cfg, 0, sizeof(cfg));
		cfg.store = reps[idx[k]].s;
		cfg.peer_may_read = scope_fn;
		cfg.peer_read_ctx = (void *)(intptr_t)idx[1 - k];
		cfg.peer_may_write = scope_fn; /* a replica writes what it reads */
		cfg.peer_write_ctx = (void *)(intptr_t)idx[1 - k];
		cfg.send = bq_send;
		cfg.send_ctx = &out[k];
		cfg.fetch_all = true;
		if (zila_blobx_new(&bx[k], &cfg, &err) != 0) {
			note_fail("blobx: %s", err.msg);
			goto out;
		}
	}
	for (int k = 0; k < 2; k++)
		if (zila_blobx_start(bx[k], &err) != 0) {
			note_fail("blobx start %d: %s", idx[k], err.msg);
			goto out;
		}
	for (int round = 0; round < 1000000; round++) {
		bool moved = false;
		for (int k = 0; k < 2; k++) {
			if (zila_blobx_wants_to_send(bx[k])) {
				if (zila_blobx_send_more(bx[k], 1 + brnd(100000), &err) != 0) {
					note_fail("blobx send %d: %s", idx[k], err.msg);
					goto out;
				}
				moved = true;
			}
			struct bq *in = &out[1 - k];
			while (in->head < in->n) {
				if (budget != 0 && delivered++ == budget) {
					r = 0; /* a cut */
					goto out;
				}
				struct zila_buf *m = &in->m[in->head++];
				zila_error_clear(&err);
				if (zila_blobx_receive(bx[k], m->p, m->len, &err) != 0) {
					note_fail("blobx receive %d<-%d: %s", idx[k], idx[1 - k], err.msg);
					goto out;
				}
				moved = true;
			}
		}
		if (zila_blobx_done(bx[0]) && zila_blobx_done(bx[1])) {
			r = 0;
			goto out;
		}
		if (!moved) {
			note_fail("the blob phase between %d and %d stalled", ia, ib);
			goto out;
		}
	}
	note_fail("the blob phase between %d and %d did not end", ia, ib);
out:
	for (int k = 0; k < 2; k++) {
		zila_blobx_free(bx[k]);
		bq_clear(&out[k]);
	}
	return r;
}

static int blob_step(struct replica *reps, int n, const char *base)
{
	if (!blob_ready) {
		/* the same catalogue rows on every replica (attachments name their district) */
		for (int i = 0; i < n; i++)
			app_exec(&reps[i], "INSERT OR IGNORE INTO states(id, name) VALUES ('s', 'S');"
					   "INSERT OR IGNORE INTO districts(id, state_id, name) VALUES ('d0', 's', 'D0'),"
					   " ('d1', 's', 'D1'), ('d2', 's', 'D2')");
		blob_ready = true;
	}
	uint32_t what = brnd(12);
	int i = (int)brnd((uint32_t)n);
	if (what < 2) { /* attach a file of a district i writes */
		int d = i == 0 ? (int)brnd(3) : i % 3, k = (int)brnd(4);
		size_t len = blob_sizes[k];
		uint8_t *p = malloc(len);
		char path[400];
		struct zila_attachment a;
		struct zila_error err;
		if (p == NULL)
			return note_fail("out of memory");
		blob_bytes(d, k, p, len);
		snprintf(path, sizeof(path), "%s/file-%d-%d", base, d, k);
		FILE *f = fopen(path, "wb");
		bool wrote = f != NULL && fwrite(p, 1, len, f) == len;
		if (f != NULL && fclose(f) != 0)
			wrote = false;
		free(p);
		if (!wrote)
			return note_fail("cannot write %s", path);
		struct zila_attach_req rq = { .path = path, .district = districts[d] };
		if (zila_blob_attach(reps[i].s, &rq, &a, &err) != 0)
			return note_fail("attach on %d: %s", i, err.msg);
		if (nblob_attached < BLOB_ATTACHED_MAX) {
			memcpy(blob_attached[nblob_attached].hash, a.hash, sizeof(a.hash));
			blob_attached[nblob_attached].rep = i;
			blob_attached[nblob_attached++].gone_with = false;
		}
		if (trace)
			fprintf(stderr, "  r%d attach %s in %s\n", i, a.hash, districts[d]);
	} else if (what == 2) { /* delete an attachments row of a district i writes */
		char sql[300];
		snprintf(sql, sizeof(sql),
			 "DELETE FROM attachments WHERE id = (SELECT id FROM attachments WHERE district_id %s '%s'"
			 " ORDER BY id LIMIT 1 OFFSET %u)",
			 i == 0 ? "<>" : "=", i == 0 ? "" : districts[i % 3], brnd(4));
		app_exec(&reps[i], sql);
	} else if (what < 5) { /* the blob phase between two replicas, maybe cut */
		int j = (int)brnd((uint32_t)n - 1);
		if (j >= i)
			j++;
		return blob_exchange(reps, i, j, brnd(3) == 0 ? 1 + brnd(8) : 0);
	}
	return 0;
}

struct blob_held {
	struct replica *r;
	int i;
	int bad;
	struct replica *all; /* every replica, n of them */
	int n;
};

/* Whether a blob missing here may be lost for good: attached by a replica replaced since,
 * and held whole by none. */
static bool blob_lost_with_replaced(const struct blob_held *h, const char *hash)
{
	bool gone = false;
	for (size_t k = 0; k < nblob_attached; k++)
		if (strcmp(blob_attached[k].hash, hash) == 0 && blob_attached[k].gone_with)
			gone = true;
	for (int j = 0; gone && j < h->n; j++) {
		char path[600];
		snprintf(path, sizeof(path), "%s/blobs/%.2s/%s", h->all[j].dir, hash, hash + 2);
		if (access(path, F_OK) == 0)
			return false;
	}
	return gone;
}

/* Every live row of a readable district: its blob is here, whole and byte-identical. */
static int check_held(void *ctx, const struct zila_attachment *a)
{
	struct blob_held *h = ctx;
	if (!reads(h->i, a->district))
		return 0;
	if (a->state != ZILA_BLOB_PRESENT) {
		if (blob_lost_with_replaced(h, a->hash)) {
			if (trace)
				fprintf(stderr, "  r%d: blob %s went with a replaced laptop\n", h->i, a->hash);
			return 0;
		}
		note_fail("replica %d lacks blob %s of %s", h->i, a->hash, a->district);
		return -1;
	}
	int d = (int)(a->district[1] - '0'), k = -1;
	for (int x = 0; x < 4; x++)
		if (blob_sizes[x] == a->size)
			k = x;
	char out[400];
	snprintf(out, sizeof(out), "%s/copy", h->r->dir);
	struct zila_error err;
	if (k < 0 || zila_blob_copy_out(h->r->s, a->hash, out, &err) != 0)
		return note_fail("replica %d cannot copy out %s", h->i, a->hash);
	uint8_t *want = malloc(a->size), *got = malloc(a->size + 1);
	FILE *f = fopen(out, "rb");
	size_t n = f != NULL && got != NULL ? fread(got, 1, a->size + 1, f) : 0;
	if (f != NULL)
		fclose(f);
	if (want != NULL)
		blob_bytes(d, k, want, a->size);
	bool same = want != NULL && got != NULL && n == a->size && memcmp(want, got, n) == 0;
	free(want);
	free(got);
	remove(out);
	if (!same)
		return note_fail("replica %d's copy of %s differs from the file attached", h->i, a->hash);
	return 0;
}

struct blob_files {
	char (*hash)[65];
	size_t n;
	bool partial;
	const char *sub;
};

static int list_file(void *ctx, const char *name)
{
	struct blob_files *fs = ctx;
	size_t len = strlen(name);
	if (len > 62) {
		fs->partial = true; /* .part, .man, .tmp */
		return 0;
	}
	char (*nh)[65] = realloc(fs->hash, (fs->n + 1) * sizeof(*nh));
	if (nh == NULL)
		return ZILA_ENOMEM;
	fs->hash = nh;
	snprintf(fs->hash[fs->n++], 65, "%s%s", fs->sub, name);
	return 0;
}

/* The blobs replica i holds must be exactly those live rows of districts it reads refer to. */
static int check_exact(struct replica *r, int i)
{
	char blobs[300], sub[400];
	struct blob_files fs;
	memset(&fs, 0, sizeof(fs));
	snprintf(blobs, sizeof(blobs), "%s/blobs", r->dir);
	for (int x = 0; x < 256; x++) {
		char two[3];
		snprintf(two, sizeof(two), "%02x", x);
		snprintf(sub, sizeof(sub), "%s/%s", blobs, two);
		fs.sub = two;
		if (access(sub, F_OK) == 0 && zila_os_list(sub, list_file, &fs) != 0) {
			free(fs.hash);
			return note_fail("cannot list %s", sub);
		}
	}
	int rc = 0;
	if (fs.partial)
		rc = note_fail("replica %d keeps a partial blob after the full exchange", i);
	for (size_t k = 0; rc == 0 && k < fs.n; k++) {
		char sql[400];
		snprintf(sql, sizeof(sql), "SELECT group_concat(district_id) FROM attachments WHERE hash = '%s'", fs.hash[k]);
		sqlite3_stmt *st = NULL;
		bool ok = false;
		if (sqlite3_prepare_v2(r->app, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
		    sqlite3_column_text(st, 0) != NULL) {
			const char *ds = (const char *)sqlite3_column_text(st, 0);
			for (int d = 0; d < 3; d++)
				if (strstr(ds, districts[d]) != NULL && reads(i, districts[d]))
					ok = true;
		}
		sqlite3_finalize(st);
		if (!ok)
			rc = note_fail("replica %d holds blob %s that no live row it may read refers to", i, fs.hash[k]);
	}
	free(fs.hash);
	return rc;
}

static int blob_final(struct replica *reps, int n)
{
	struct zila_error err;
	for (int pass = 0; pass < 2; pass++)
		for (int i = 1; i < n; i++)
			if (blob_exchange(reps, 0, i, 0) != 0)
				return -1;
	for (int i = 0; i < n; i++) {
		struct blob_held h = { &reps[i], i, 0, reps, n };
		uint64_t nrem = 0, brem = 0;
		/* twice: the first pass notes what no row refers to, the second (horizon in the
		 * future) removes it */
		for (int k = 0; k < 2; k++)
			if (zila_blob_collect(reps[i].s, INT64_MAX, &nrem, &brem, &err) != 0)
				return note_fail("collect on %d: %s", i, err.msg);
		if (zila_blob_list(reps[i].s, check_held, &h, &err) != 0)
			return -1;
		if (check_exact(&reps[i], i) != 0)
			return -1;
	}
	return 0;
}

#define GONE_MAX 16


static uint64_t kept_hlc(struct replica *r, const char *part)
{
	uint8_t *cp = NULL;
	size_t len = 0;
	struct zila_ckpt_info ci;
	uint64_t hlc = 0;
	if (zila_store_checkpoint_get(r->s, part, &cp, &len) == 0 && zila_checkpoint_verify(zila_view_make(cp, len), &ci) == 0)
		hlc = ci.hlc;
	free(cp);
	return hlc;
}

/* Replica i completes an exchange with HQ (replica 0); HQ notes it and collects, with every
 * other replica, and each replaced one some replica still holds entries of that HQ lacks, as
 * the devices that may hold the districts. */
static int collect_step(struct replica *reps, int n, int i, uint8_t (*gone)[32], size_t ngone, const char *base)
{
	static const char *const parts[2] = { "d1", "d2" };
	uint64_t kept[2] = { kept_hlc(&reps[0], "d1"), kept_hlc(&reps[0], "d2") };
	struct zila_error err;
	if (sync_pair(&reps[i], &reps[0], base) != 0 || sync_pair(&reps[0], &reps[i], base) != 0)
		return -1;
	for (int d = 0; d < 2; d++)
		if (kept[d] != 0 && zila_store_ack_note(reps[0].s, zila_store_device_pk(reps[i].s), parts[d], kept[d]) != 0)
			return note_fail("ack note");
	uint8_t keys[MAXR + GONE_MAX][32];
	struct zila_holders h[2];
	struct zila_vector v[MAXR];
	size_t nk = 0;
	memset(v, 0, sizeof(v));
	for (int k = 1; k < n; k++)
		memcpy(keys[nk++], zila_store_device_pk(reps[k].s), 32);
	int r = 0;
	for (int k = 0; r == 0 && k < n; k++)
		r = zila_store_vector(reps[k].s, &v[k]);
	for (int d = 0; d < 2; d++) {
		h[d].part = parts[d];
		h[d].devices = (const uint8_t(*)[32])keys;
		h[d].ndevices = nk;
	}
	/* a replaced device: held back while some replica holds an entry of it HQ lacks (both
	 * districts share the list: the stricter one) */
	for (size_t g = 0; r == 0 && g < ngone; g++) {
		bool behind = false;
		for (int d = 0; d < 2; d++)
			for (int k = 1; k < n; k++)
				behind |= zila_vector_get(&v[k], gone[g], parts[d]) > zila_vector_get(&v[0], gone[g], parts[d]);
		if (behind) {
			memcpy(keys[nk++], gone[g], 32);
			h[0].ndevices = h[1].ndevices = nk;
		}
	}
	for (int k = 0; k < n; k++)
		zila_vector_release(&v[k]);
	if (r != 0)
		return note_fail("vector");
	size_t dropped = 0;
	if (zila_store_collect(reps[0].s, h, 2, &dropped, &err) != 0)
		return note_fail("collect: %s", err.msg);
	total_collected += dropped;
	if (trace) {
		sqlite3_stmt *q = NULL;
		long long left = -1;
		if (sqlite3_prepare_v2(reps[0].app, "SELECT count(*) FROM zila_rows r WHERE NOT EXISTS (SELECT 1 FROM"
					  " zila_parked p WHERE p.tid = r.tid AND p.pk = r.pk)", -1, &q, NULL) == SQLITE_OK &&

		    sqlite3_step(q) == SQLITE_ROW)
			left = sqlite3_column_int64(q, 0);
		sqlite3_finalize(q);
		fprintf(stderr, "  r%d acknowledged at HQ; HQ collected %zu deleted rows, %lld left\n", i, dropped, left);
	}
	return 0;
}

/* HQ checkpoints both districts, then every device meets it twice (from device i on). */
static int collect_round(struct replica *reps, int n, int i, uint8_t (*gone)[32], size_t ngone, const char *base)
{
	/* HQ deletes a child of d1 and a parent of d2 first: rows to collect (and ids the
	 * laptops' writes may bring back after) */
	char sql[300];
	snprintf(sql, sizeof(sql),
		 "DELETE FROM child WHERE id = (SELECT id FROM child WHERE district_id = 'd1' ORDER BY id LIMIT 1 OFFSET %u);"
		 "DELETE FROM parent WHERE id = (SELECT id FROM parent WHERE district_id = 'd2' ORDER BY id LIMIT 1 OFFSET %u)",
		 rnd(3), rnd(3));
	if (trace)
		fprintf(stderr, "  r0: %s\n", sql);
	if (sqlite3_exec(reps[0].app, sql, NULL, NULL, NULL) != SQLITE_OK)
		return note_fail("hq delete: %s", sqlite3_errmsg(reps[0].app));
	for (int d = 0; d < 2; d++) {
		struct zila_error err;
		int rm = zila_store_checkpoint_make(reps[0].s, d ? "d2" : "d1", NULL, &err);
		if (rm != 0 && rm != ZILA_ESCHEMA)
			return note_fail("checkpoint: %s", err.msg);
		total_ckpts += rm == 0;
	}
	for (int k = 0; k < 2 * (n - 1); k++)
		if (collect_step(reps, n, 1 + (i - 1 + k) % (n - 1), gone, ngone, base) != 0)
			return -1;
	return 0;
}

static int run_seed(uint64_t seed, const char *base)
{
	struct replica reps[MAXR];
	char *shape0 = NULL;
	int n, r = -1;
	rng_state = seed * 0x9E3779B97F4A7C15ull + 1;
	key_state = seed;
	n = 3 + (int)rnd(3);
	blob_seed = blob_seeds != 0 && seed % blob_seeds == 0;
	memset(reps, 0, sizeof(reps));
	for (int i = 0; i < MAXR; i++) {
		char old[400];
		snprintf(old, sizeof(old), "%s/r%d", base, i);
		if (zila_os_rmtree(old) != 0)
			return note_fail("cleanup");
	}
	for (int i = 0; i < n; i++)
		if (open_replica(&reps[i], base, i, true) != 0)
			goto out;
	int steps = 20 + (int)rnd(40);
	blob_rng = seed * 0xD1B54A32D192ED03ull + 7;
	blob_ready = false;
	nblob_attached = 0;
	size_t nschema = 0, nschema_b = 0, nprune = 0;
	uint8_t gone[GONE_MAX][32];
	size_t ngone = 0;
	bool two_hq = rnd(2) == 0;
	for (int k = 0; k < steps; k++) {
		/* half way, HQ collects what every device has (then the writes, syncs, checkpoints
		 * and replaced laptops go on) */
		if (!nockpt && k == steps / 2 && collect_round(reps, n, 1, gone, ngone, base) != 0)
			goto out;
		if (two_hq && nschema_b < NSTEPS_B && rnd(10) == 0) {
			struct zila_error err;
			int rr = zila_schema_change(reps[1].s, schema_steps_b[nschema_b].sql, schema_steps_b[nschema_b].pcol,
						    NULL, &err);
			if (trace)
				fprintf(stderr, "  r1 schema: %s: %s\n", schema_steps_b[nschema_b].sql, rr ? err.msg : "made");
			if (rr != 0 && rr != ZILA_EINVAL) {
				note_fail("second HQ's schema change %zu: %s", nschema_b, err.msg);
				goto out;
			}
			nschema_b++;
		} else if (nschema < NSTEPS && rnd(8) == 0) {
			struct zila_error err;
			if (trace)
				fprintf(stderr, "  r0 schema: %s\n", schema_steps[nschema].sql);
			int rr = zila_schema_change(reps[0].s, schema_steps[nschema].sql, schema_steps[nschema].pcol, NULL, &err);
			/* with two HQ devices, the other's change may be here already */
			if (rr != 0 && !(two_hq && rr == ZILA_EINVAL)) {
				note_fail("schema change %zu: %s", nschema, err.msg);
				goto out;
			}
			nschema++;
		} else if (rnd(13) == 0 && !nockpt) {
			/* HQ checkpoints a district (not while entries of it wait for a schema) */
			struct zila_error err;
			const char *part = rnd(5) < 3 ? "d1" : "d2";
			int rr = zila_store_checkpoint_make(reps[0].s, part, NULL, &err);
			if (trace)
				fprintf(stderr, "  r0 checkpoint %s: %s\n", part, rr ? err.msg : "made");
			if (rr != 0 && rr != ZILA_ESCHEMA) {
				note_fail("checkpoint of %s: %s", part, err.msg);
				goto out;
			}
			total_ckpts += rr == 0;
		} else if (rnd(11) == 0 && !nockpt) {
			/* two days pass everywhere; a laptop keeping a day of history drops what a
			 * checkpoint it holds covers */
			for (int i = 0; i < n; i++)
				reps[i].clock += 2ull * 86400000;
			int i = 1 + (int)rnd((uint32_t)n - 1);
			struct zila_error err;
			size_t dropped = 0;
			/* it meets HQ and takes its newest checkpoints, as a live session gives them to
			 * a laptop that holds an older one (or none) */
			bool fresh = rnd(2) == 0;
			/* (a second HQ device keeps the audit trail: no session sends it a checkpoint) */
			for (int d = 0; d < 2 && !(two_hq && i == 1) && !getenv("ZILA_PROP_NOTAKE"); d++) {
				uint8_t *cp = NULL;
				size_t cplen = 0;
				struct zila_apply_stats ast;
				if (fresh) { /* HQ makes them just now */
					int rm = zila_store_checkpoint_make(reps[0].s, d ? "d2" : "d1", NULL, &err);
					if (rm != 0 && rm != ZILA_ESCHEMA) {
						note_fail("checkpoint: %s", err.msg);
						goto out;
					}
					total_ckpts += rm == 0;
				}
				if (zila_store_checkpoint_get(reps[0].s, d ? "d2" : "d1", &cp, &cplen) != 0)
					continue;
				int rr = zila_store_checkpoint_apply(reps[i].s, zila_view_make(cp, cplen), NULL, &ast, &err);
				free(cp);
				if (rr != 0 && rr != ZILA_ESCHEMA) {
					note_fail("checkpoint merge on replica %d: %s", i, err.msg);
					goto out;
				}
			}
			if (zila_store_meta_set(reps[i].s, "history_days", "1") != 0 ||
			    zila_store_prune(reps[i].s, &dropped, &err) != 0) {
				note_fail("prune on replica %d", i);
				goto out;
			}
			nprune += dropped;
			total_pruned += dropped;
			if (trace) {
				sqlite3_stmt *q = NULL;
				int kept = -1;
				if (sqlite3_prepare_v2(reps[i].app, "SELECT count(*) FROM zila_checkpoints", -1, &q, NULL) == SQLITE_OK &&
				    sqlite3_step(q) == SQLITE_ROW)
					kept = sqlite3_column_int(q, 0);
				sqlite3_finalize(q);
				long long mn = 0, nc = 0;
				if (sqlite3_prepare_v2(reps[i].app, "SELECT min(e.hlc >> 16), count(*) FROM zila_entries e JOIN zila_feeds f ON f.id = e.feed JOIN zila_checkpoints c ON c.part = f.part", -1, &q, NULL) == SQLITE_OK &&
				    sqlite3_step(q) == SQLITE_ROW) {
					mn = sqlite3_column_int64(q, 0);
					nc = sqlite3_column_int64(q, 1);
				}
				sqlite3_finalize(q);
				/* the horizon reads the replica's clock, which draws from the test's random
				 * numbers: the trace puts both back, so that it follows the same run */
				uint64_t rs = rng_state, c = reps[i].clock;
				long long hz = (long long)zila_store_horizon_ms(reps[i].s);
				rng_state = rs;
				reps[i].clock = c;
				fprintf(stderr, "  r%d pruned %zu entries (%d checkpoints kept; %lld entries of their districts, oldest %lld, horizon %lld)\n", i, dropped, kept, nc, mn, hz);
			}
		} else if (rnd(37) == 0 && !nockpt) {
			/* a laptop is replaced by a new one (what it had not sent is gone with it): it
			 * clones from whoever it meets next, a checkpoint where one is held */
			int i = 1 + (int)rnd((uint32_t)n - 1);
			uint64_t c = reps[i].clock;
			/* the old laptop holds collection back until every entry of it is at HQ (as a
			 * revocation's marks would say) */
			if (ngone < GONE_MAX)
				memcpy(gone[ngone++], zila_store_device_pk(reps[i].s), 32);
			close_replica(&reps[i]);
			if (zila_os_rmtree(reps[i].dir) != 0 || open_replica(&reps[i], base, i, true) != 0)
				goto out;
			reps[i].clock = c;
			/* its files sent nowhere are gone; the new laptop gets the catalogue rows the
			 * files name again (blob_step) before it attaches one */
			for (size_t x = 0; x < nblob_attached; x++)
				if (blob_attached[x].rep == i)
					blob_attached[x].gone_with = true;
			blob_ready = false;
			if (trace)
				fprintf(stderr, "  r%d replaced\n", i);
		} else if (!nockpt && rnd(9) == 0) {
			/* a device completes an exchange with HQ (both ways, as a live session): HQ
			 * notes the checkpoints it kept at the start, then collects deleted rows every
			 * device that may hold them has acknowledged a checkpoint past */
			int i = 1 + (int)rnd((uint32_t)n - 1);
			if (rnd(3) == 0 ? collect_round(reps, n, i, gone, ngone, base) != 0
					: collect_step(reps, n, i, gone, ngone, base) != 0)
				goto out;
		} else if (rnd(3) == 0) {
			int a = (int)rnd((uint32_t)n), b = (int)rnd((uint32_t)n - 1);
			if (b >= a)
				b++;
			if ((rnd(5) == 0 ? sync_shuffled(&reps[a], &reps[b]) : sync_pair(&reps[a], &reps[b], base)) != 0)
				goto out;
		} else {
			random_write(&reps[rnd((uint32_t)n)]);
		}
		if (blob_seed && blob_step(reps, n, base) != 0)
			goto out;
		if (rnd(25) == 0) { /* a restart between steps */
			int i = (int)rnd((uint32_t)n);
			uint64_t c = reps[i].clock;
			close_replica(&reps[i]);
			if (open_replica(&reps[i], base, i, false) != 0)
				goto out;
			reps[i].clock = c;
		}
	}
	/* Full exchange: twice round the ring in both directions reaches everyone. */
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < n; i++) {
			if (sync_pair(&reps[i], &reps[(i + 1) % n], base) != 0 ||
			    sync_pair(&reps[(i + 1) % n], &reps[i], base) != 0)
				goto out;
		}
	if (blob_seed && blob_final(reps, n) != 0)
		goto out;
	uint8_t h0[32], h[32];
	struct zila_error err;
	for (int i = 0; i < n; i++) {
		if (zila_store_hash(reps[i].s, i ? h : h0, &err) != 0) {
			note_fail("hash: %s", err.msg);
			goto out;
		}
		if (i > 0 && memcmp(h, h0, 32) != 0) {
			for (int j = 0; (trace || getenv("ZILA_PROP_DUMP")) && j < n; j++) {
				sqlite3_stmt *d = NULL;
				fprintf(stderr, "replica %d:", j);
				if (sqlite3_prepare_v2(reps[j].app,
						       "SELECT 'parent', id, code FROM parent UNION ALL SELECT 'child', id, parent_id FROM child"
						       " UNION ALL SELECT 'parked', pk, kind FROM zila_parked ORDER BY 1, 2",
						       -1, &d, NULL) == SQLITE_OK)
					while (sqlite3_step(d) == SQLITE_ROW)
						fprintf(stderr, " %s:%s=%s", sqlite3_column_text(d, 0), sqlite3_column_text(d, 1),
							sqlite3_column_text(d, 2));
				sqlite3_finalize(d);
				fprintf(stderr, "\n");
			}
			note_fail("replica %d hash differs from replica 0", i);
			goto out;
		}
		if (zila_schema_version(reps[i].s) != zila_schema_version(reps[0].s)) {
			note_fail("replica %d is at schema version %u, HQ at %u", i, zila_schema_version(reps[i].s),
				  zila_schema_version(reps[0].s));
			goto out;
		}
		if (fk_clean(&reps[i]) != 0)
			goto out;
		/* the same tables, columns in the same order, the same indexes and schema entries */
		static const char shape_sql[] =
			"SELECT group_concat(x, ';') FROM (SELECT type || ' ' || name || ' ' || coalesce(sql, '') AS x FROM"
			" sqlite_schema WHERE name NOT LIKE 'zila%' AND name NOT LIKE 'sqlite%' UNION ALL SELECT"
			" 'schema ' || version || ' ' || hex(origin) || ' ' || state FROM zila_schema ORDER BY 1)";
		char *sh = NULL;
		sqlite3_stmt *q = NULL;
		if (sqlite3_prepare_v2(reps[i].app, shape_sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW &&
		    sqlite3_column_text(q, 0) != NULL)
			sh = strdup((const char *)sqlite3_column_text(q, 0));
		sqlite3_finalize(q);
		if (sh == NULL) {
			note_fail("cannot read the schema of replica %d", i);
			goto out;
		}
		if (i == 0) {
			free(shape0);
			shape0 = sh;
		} else {
			bool same = strcmp(sh, shape0) == 0;
			if (!same && trace)
				fprintf(stderr, "replica 0: %s\nreplica %d: %s\n", shape0, i, sh);
			free(sh);
			if (!same) {
				note_fail("replica %d has another schema than replica 0", i);
				goto out;
			}
		}
		sqlite3_stmt *st = NULL;
		if (sqlite3_prepare_v2(reps[i].app, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK ||
		    sqlite3_step(st) != SQLITE_ROW || strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0) {
			sqlite3_finalize(st);
			note_fail("integrity_check failed on replica %d", i);
			goto out;
		}
		sqlite3_finalize(st);
		int64_t pending = -1;
		if (zila_store_pending(reps[i].s, &pending) != 0 || pending != 0) {
			note_fail("replica %d still has %lld unsealed changes", i, (long long)pending);
			goto out;
		}
	}
	(void)nprune;
	r = 0;
out:
	free(shape0);
	for (int i = 0; i < n; i++)
		close_replica(&reps[i]);
	return r;
}

static void test_property(void **state)
{
	(void)state;
	const char *one = getenv("ZILA_SEED");
	const char *many = getenv("ZILA_SEEDS");
	trace = getenv("ZILA_PROP_TRACE") != NULL;
	if (getenv("ZILA_PROP_BLOBS") != NULL)
		blob_seeds = strtoull(getenv("ZILA_PROP_BLOBS"), NULL, 10);
	if (trace) /* and the store's warnings (a checkpoint refused, an entry rejected) */
		zila_log_set_sink(zila_log_stderr, NULL, ZILA_LOG_WARN);
	const char *ck = getenv("ZILA_PROP_CKPT");
	nockpt = ck == NULL || strcmp(ck, "0") == 0;
	uint64_t first = one ? strtoull(one, NULL, 10) : 1;
	uint64_t count = one ? 1 : many ? strtoull(many, NULL, 10) : 500;
	/* ZILA_SEEDS=FIRST-LAST runs that range, so `make check` can run shards side by side. */
	const char *dash = !one && many ? strchr(many, '-') : NULL;
	if (dash) {
		first = strtoull(many, NULL, 10);
		uint64_t last = strtoull(dash + 1, NULL, 10);
		if (first < 1 || last < first)
			fail_msg("ZILA_SEEDS='%s': wanted a count or FIRST-LAST with 1 <= FIRST <= LAST", many);
		count = last - first + 1;
	}
	char base[] = "/tmp/zila-prop-XXXXXX";
	const char *shm = access("/dev/shm", W_OK) == 0 ? "/dev/shm/zila-prop-XXXXXX" : NULL;
	char shmbase[64];
	char *dir;
	if (shm) {
		snprintf(shmbase, sizeof(shmbase), "%s", shm);
		dir = zila_os_mkdtemp(shmbase) == 0 ? shmbase : NULL;
	} else {
		dir = zila_os_mkdtemp(base) == 0 ? base : NULL;
	}
	assert_non_null(dir);
	uint64_t failed = 0;
	for (uint64_t seed = first; seed < first + count; seed++) {
		if (run_seed(seed, dir) != 0) {
			fprintf(stderr, "property: seed %llu failed: %s (replay: ZILA_SEED=%llu %s)\n",
				(unsigned long long)seed, failure, (unsigned long long)seed, "build/asan/tests/test_property");
			failed++;
			if (failed >= 5)
				break;
		}
	}
	if (failed != 0 && getenv("ZILA_PROP_KEEP") != NULL) /* the last failing seed's replicas */
		fprintf(stderr, "property: replicas kept in %s\n", dir);
	else if (zila_os_rmtree(dir) != 0)
		fprintf(stderr, "property: could not remove %s\n", dir);
	printf("property: %llu checkpoints made, %llu entries pruned, %llu deleted rows collected at HQ\n",
	       (unsigned long long)total_ckpts, (unsigned long long)total_pruned, (unsigned long long)total_collected);
	printf("property: %llu seeds run (%llu to %llu), %llu failed\n", (unsigned long long)count,
	       (unsigned long long)first, (unsigned long long)(first + count - 1), (unsigned long long)failed);
	assert_int_equal(failed, 0);
}

int main(void)
{
	const char *fx = getenv("ZILA_PROP_FIXED");
	fixed = fx == NULL || strcmp(fx, "0") != 0;
	if (fixed)
		randombytes_set_implementation(&key_impl); /* before sodium_init */
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_property) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
