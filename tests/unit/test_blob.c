/* Attachments (#25): the blob store (stored once, limits, quota, a full disk, damage found),
 * and the blob phase between two real replicas through in-memory queues (byte-identical,
 * the serving side's read scope, a chunk that does not match refused and fetched again, a
 * cut resumed at its chunk), collection after the horizon, and USB bundles that carry files
 * (rows first, every file verified, a damaged one refused alone, twice is harmless). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <sys/resource.h>
#endif

#include <cmocka.h>
#include <sodium.h>

#include "sync.pb-c.h"
#include "zila/blob.h"
#include "zila/blobx.h"
#include "zila/bundle.h"
#include "zila/os.h"
#include "zila/store_test.h"

struct replica {
	char top[64], dir[80];
	struct zila_store *s;
};

static void exec(struct replica *r, const char *sql)
{
	struct zila_error err;
	zila_error_clear(&err);
	if (zila_store_exec_captured(r->s, sql, NULL, NULL, &err) != 0)
		fail_msg("%s: %s", sql, err.msg);
}

static void replica_open(struct replica *r)
{
	struct zila_error err;
	zila_error_clear(&err);
	memset(r, 0, sizeof(*r));
	snprintf(r->top, sizeof(r->top), "/tmp/zila-blob-XXXXXX");
	assert_int_equal(zila_os_mkdtemp(r->top), 0);
	snprintf(r->dir, sizeof(r->dir), "%s/r", r->top);
	assert_int_equal(zila_store_create(r->dir, &err), 0);
	assert_int_equal(zila_store_open(&r->s, r->dir, &err), 0);
	exec(r, "INSERT INTO states(id, name) VALUES ('s1', 'State');"
		"INSERT INTO districts(id, state_id, name) VALUES ('d1', 's1', 'One'), ('d2', 's1', 'Two')");
}

static void replica_close(struct replica *r)
{
	zila_store_free(r->s);
	assert_int_equal(zila_os_rmtree(r->top), 0);
}

static void write_file(const char *path, size_t len, uint32_t seed)
{
	uint8_t *p = malloc(len ? len : 1);
	assert_non_null(p);
	for (size_t i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
	struct zila_error err;
	assert_int_equal(zila_os_write_atomic(path, p, len, 0600, &err), 0);
	free(p);
}

static bool same_file(const char *a, const char *b)
{
	struct zila_buf x, y;
	zila_buf_init(&x, 64 << 20);
	zila_buf_init(&y, 64 << 20);
	bool same = zila_os_read_file(a, x.max, &x, NULL, NULL) == 0 && zila_os_read_file(b, y.max, &y, NULL, NULL) == 0 &&
		    x.len == y.len && memcmp(x.p, y.p, x.len) == 0;
	zila_buf_release(&x);
	zila_buf_release(&y);
	return same;
}

static int count_files(void *ctx, const char *name)
{
	(void)name;
	(*(int *)ctx)++;
	return 0;
}

/* files under DIR/blobs/XX/ for every XX */
struct walk {
	const char *dir;
	int n;
};

static int count_sub(void *ctx, const char *name)
{
	struct walk *w = ctx;
	char sub[256];
	snprintf(sub, sizeof(sub), "%s/blobs/%s", w->dir, name);
	return zila_os_list(sub, count_files, &w->n);
}

static int blob_files(struct replica *r)
{
	struct walk w = { r->dir, 0 };
	char top[256];
	snprintf(top, sizeof(top), "%s/blobs", r->dir);
	(void)!zila_os_list(top, count_sub, &w);
	return w.n;
}

static int64_t scalar(struct replica *r, const char *sql)
{
	sqlite3_stmt *st;
	int64_t v = -1;
	assert_int_equal(sqlite3_prepare_v2(zila_store_db(r->s), sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void attach(struct replica *r, const char *path, const char *district, struct zila_attachment *a)
{
	struct zila_attach_req rq = { .path = path, .district = district };
	struct zila_error err;
	zila_error_clear(&err);
	if (zila_blob_attach(r->s, &rq, a, &err) != 0)
		fail_msg("attach %s: %s", path, err.msg);
}

/* --- the store ------------------------------------------------------------------------- */

static void test_stored_once(void **state)
{
	(void)state;
	struct replica r;
	struct zila_attachment a, b, f;
	struct zila_error err;
	char in[128], out[128];
	replica_open(&r);
	snprintf(in, sizeof(in), "%s/photo.jpg", r.top);
	snprintf(out, sizeof(out), "%s/out.jpg", r.top);
	write_file(in, 300 * 1024 + 17, 1);
	attach(&r, in, "d1", &a);
	attach(&r, in, "d1", &b);
	assert_string_equal(a.hash, b.hash);
	assert_string_not_equal(a.id, b.id);
	assert_string_equal(a.media_type, "image/jpeg");
	assert_int_equal(a.size, 300 * 1024 + 17);
	assert_int_equal(a.state, ZILA_BLOB_PRESENT);
	assert_int_equal(blob_files(&r), 1); /* two rows, one blob */
	assert_int_equal(scalar(&r, "SELECT count(*) FROM attachments"), 2);
	assert_int_equal(zila_blob_find(r.s, a.hash, &f, &err), 0);
	assert_int_equal(zila_blob_find(r.s, "zzzzzzzz", &f, &err), ZILA_ENOTFOUND);
	assert_int_equal(zila_blob_copy_out(r.s, a.hash, out, &err), 0);
	assert_true(same_file(in, out));
	/* the reference is an ordinary captured change: sealed into the feed like any row */
	size_t n = 0;
	assert_int_equal(zila_store_seal(r.s, &n, &err), 0);
	assert_true(n >= 1);
	replica_close(&r);
}

static void test_limits(void **state)
{
	(void)state;
	struct replica r;
	struct zila_attachment a;
	struct zila_error err;
	char in[128], small[128];
	replica_open(&r);
	snprintf(in, sizeof(in), "%s/big.bin", r.top);
	snprintf(small, sizeof(small), "%s/small.bin", r.top);
	write_file(in, 200000, 2);
	write_file(small, 50000, 3);
	assert_int_equal(zila_store_meta_set(r.s, "attach.max_bytes", "100000"), 0);
	struct zila_attach_req rq = { .path = in, .district = "d1" };
	zila_error_clear(&err);
	assert_int_equal(zila_blob_attach(r.s, &rq, &a, &err), ZILA_ETOOBIG);
	assert_non_null(strstr(err.msg, "attach.max_bytes"));
	assert_int_equal(zila_store_meta_set(r.s, "attach.quota_bytes", "80000"), 0);
	rq.path = small;
	assert_int_equal(zila_blob_attach(r.s, &rq, &a, &err), 0);
	/* the same file again costs nothing more; another one passes the quota */
	assert_int_equal(zila_blob_attach(r.s, &rq, &a, &err), 0);
	write_file(small, 50001, 4);
	zila_error_clear(&err);
	assert_int_equal(zila_blob_attach(r.s, &rq, &a, &err), ZILA_ELIMIT);
	assert_non_null(strstr(err.msg, "quota"));
	/* another district has its own quota */
	rq.district = "d2";
	assert_int_equal(zila_blob_attach(r.s, &rq, &a, &err), 0);
	assert_int_equal(scalar(&r, "SELECT count(*) FROM attachments"), 3);
	assert_int_equal(blob_files(&r), 2);
	/* an owner row that does not exist */
	rq.table = "people";
	rq.row = "nobody";
	rq.district = NULL;
	assert_int_equal(zila_blob_attach(r.s, &rq, &a, &err), ZILA_ENOTFOUND);
	replica_close(&r);
}

#ifndef _WIN32
/* A file size limit stands in for a full disk: the blob's write fails, nothing is left
 * behind (no blob, no temp file, no row), the replica is whole and takes the file later.
 * POSIX only (setrlimit), as test_os_full. */
static void test_full_disk(void **state)
{
	(void)state;
	struct replica r;
	struct zila_attachment a;
	struct zila_error err;
	struct rlimit old, lim;
	char in[128];
	replica_open(&r);
	snprintf(in, sizeof(in), "%s/photo.jpg", r.top);
	write_file(in, 400000, 5);
	int64_t rows = scalar(&r, "SELECT count(*) FROM attachments");
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 300000;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	struct zila_attach_req rq = { .path = in, .district = "d1" };
	zila_error_clear(&err);
	int rc = zila_blob_attach(r.s, &rq, &a, &err);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_true(rc == ZILA_EIO || rc == ZILA_EFULL);
	assert_non_null(strstr(err.msg, "cannot"));
	assert_int_equal(blob_files(&r), 0);
	assert_int_equal(scalar(&r, "SELECT count(*) FROM attachments"), rows);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(zila_store_db(r.s), "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
	attach(&r, in, "d1", &a);
	assert_int_equal(blob_files(&r), 1);
	replica_close(&r);
}
#endif

/* --- the blob phase ----------------------------------------------------------------------- */

struct queue {
	struct zila_buf *m;
	size_t n, head, cap;
};

static int q_send(void *ctx, const uint8_t *p, size_t len)
{
	struct queue *q = ctx;
	if (q->n == q->cap) {
		q->cap = q->cap ? 2 * q->cap : 16;
		q->m = realloc(q->m, q->cap * sizeof(*q->m));
		assert_non_null(q->m);
	}
	zila_buf_init(&q->m[q->n], ZILA_SESSION_MSG_MAX);
	assert_int_equal(zila_buf_put(&q->m[q->n], p, len), 0);
	q->n++;
	return 0;
}

static void q_clear(struct queue *q)
{
	for (size_t i = 0; i < q->n; i++)
		zila_buf_release(&q->m[i]);
	free(q->m);
	memset(q, 0, sizeof(*q));
}

struct side {
	struct replica *r;
	struct zila_blobx *bx;
	struct queue out; /* what it sent, not yet read by the other */
	const char *may_read; /* the other's read scope: one district, NULL: all */
};

static bool scope_one(void *ctx, const char *part)
{
	return strcmp((const char *)ctx, part) == 0;
}

/* The other side reads and writes peer_reads (NULL: every partition, an HQ device). */
static void side_new(struct side *s, struct replica *r, const char *peer_reads)
{
	struct zila_blobx_config cfg;
	struct zila_error err;
	memset(s, 0, sizeof(*s));
	memset(&cfg, 0, sizeof(cfg));
	s->r = r;
	s->may_read = peer_reads;
	cfg.store = r->s;
	cfg.peer_may_read = peer_reads ? scope_one : NULL;
	cfg.peer_read_ctx = (void *)peer_reads;
	cfg.peer_may_write = peer_reads ? scope_one : NULL;
	cfg.peer_write_ctx = (void *)peer_reads;
	cfg.send = q_send;
	cfg.send_ctx = &s->out;
	cfg.fetch_all = true;
	assert_int_equal(zila_blobx_new(&s->bx, &cfg, &err), 0);
}

static void side_free(struct side *s)
{
	zila_blobx_free(s->bx);
	q_clear(&s->out);
}

/* What a tamper hook may do to a message in flight (a peer that sends bad bytes). */
typedef void (*tamper_fn)(void *ctx, struct zila_buf *m);

/* Bytes a side is asked to send per turn: a chunk, or less (a slow link: pieces). */
static size_t turn_bytes = 64 * 1024;

/* Runs both sides until both are done, or until `budget` messages were delivered to b
 * (a cut: the rest is dropped). Returns true when both finished. */
static bool run(struct side *a, struct side *b, size_t budget, tamper_fn tamper, void *tctx)
{
	struct zila_error err;
	size_t delivered_b = 0;
	assert_int_equal(zila_blobx_start(a->bx, &err), 0);
	assert_int_equal(zila_blobx_start(b->bx, &err), 0);
	for (int round = 0; round < 100000; round++) {
		bool moved = false;
		struct side *sides[2] = { a, b };
		for (int k = 0; k < 2; k++) {
			struct side *me = sides[k], *other = sides[1 - k];
			while (zila_blobx_wants_to_send(me->bx)) {
				assert_int_equal(zila_blobx_send_more(me->bx, turn_bytes, &err), 0);
				moved = true;
				break;
			}
			while (other->out.head < other->out.n) {
				struct zila_buf *m = &other->out.m[other->out.head++];
				if (me == b) {
					if (delivered_b == budget)
						return false;
					delivered_b++;
					if (tamper != NULL)
						tamper(tctx, m);
				}
				zila_error_clear(&err);
				if (zila_blobx_receive(me->bx, m->p, m->len, &err) != 0)
					fail_msg("receive: %s", err.msg);
				moved = true;
			}
		}
		if (zila_blobx_done(a->bx) && zila_blobx_done(b->bx))
			return true;
		if (!moved)
			fail_msg("the blob phase stalled");
	}
	return false;
}

/* A holds a photo of d1 and one of d2; B has the rows (as a sync brings them), not the bytes. */
static void two_replicas(struct replica *a, struct replica *b, char in1[128], char in2[128], struct zila_attachment *p1,
			 struct zila_attachment *p2)
{
	char sql[512];
	replica_open(a);
	replica_open(b);
	snprintf(in1, 128, "%s/one.jpg", a->top);
	snprintf(in2, 128, "%s/two.jpg", a->top);
	write_file(in1, 5 * ZILA_BLOB_CHUNK + 1234, 7);
	write_file(in2, 100000, 8);
	attach(a, in1, "d1", p1);
	attach(a, in2, "d2", p2);
	snprintf(sql, sizeof(sql),
		 "INSERT INTO attachments(id, district_id, hash, size, name) VALUES ('%s', 'd1', '%s', %llu, 'one.jpg'),"
		 " ('%s', 'd2', '%s', %llu, 'two.jpg')",
		 p1->id, p1->hash, (unsigned long long)p1->size, p2->id, p2->hash, (unsigned long long)p2->size);
	exec(b, sql);
}

static void test_exchange(void **state)
{
	(void)state;
	struct replica a, b;
	struct zila_attachment p1, p2, f;
	struct zila_error err;
	struct side sa, sb;
	char in1[128], in2[128], out[128];
	two_replicas(&a, &b, in1, in2, &p1, &p2);
	struct zila_blob_stats bs;
	assert_int_equal(zila_blob_stats(b.s, &bs, &err), 0);
	assert_int_equal(bs.nmissing, 2);
	side_new(&sa, &a, NULL);
	side_new(&sb, &b, NULL);
	assert_true(run(&sa, &sb, SIZE_MAX, NULL, NULL));
	assert_int_equal(zila_blobx_stats(sb.bx)->received, 2);
	assert_int_equal(zila_blobx_stats(sa.bx)->served, 2);
	assert_int_equal(zila_blobx_stats(sa.bx)->served_bytes, p1.size + p2.size);
	assert_int_equal(zila_blob_find(b.s, p1.id, &f, &err), 0);
	assert_int_equal(f.state, ZILA_BLOB_PRESENT);
	snprintf(out, sizeof(out), "%s/got.jpg", b.top);
	assert_int_equal(zila_blob_copy_out(b.s, p1.hash, out, &err), 0);
	assert_true(same_file(in1, out));
	assert_int_equal(zila_blob_copy_out(b.s, p2.hash, out, &err), 0);
	assert_true(same_file(in2, out));
	assert_int_equal(zila_blob_stats(b.s, &bs, &err), 0);
	assert_int_equal(bs.nmissing, 0);
	side_free(&sa);
	side_free(&sb);
	/* in step: each side says BlobDone, nothing else */
	side_new(&sa, &a, NULL);
	side_new(&sb, &b, NULL);
	assert_true(run(&sa, &sb, SIZE_MAX, NULL, NULL));
	assert_int_equal(sa.out.n, 1);
	assert_int_equal(sb.out.n, 1);
	side_free(&sa);
	side_free(&sb);
	replica_close(&a);
	replica_close(&b);
}

/* B may read d1 only: A serves the d1 photo and refuses the d2 one (checked where served). */
static void test_scope(void **state)
{
	(void)state;
	struct replica a, b;
	struct zila_attachment p1, p2, f;
	struct zila_error err;
	struct side sa, sb;
	char in1[128], in2[128];
	two_replicas(&a, &b, in1, in2, &p1, &p2);
	side_new(&sa, &a, "d1");
	side_new(&sb, &b, NULL);
	assert_true(run(&sa, &sb, SIZE_MAX, NULL, NULL));
	assert_int_equal(zila_blobx_stats(sa.bx)->refused_scope, 1);
	assert_int_equal(zila_blobx_stats(sb.bx)->refused_by_peer, 1);
	assert_int_equal(zila_blobx_stats(sb.bx)->received, 1);
	assert_int_equal(zila_blob_find(b.s, p1.id, &f, &err), 0);
	assert_int_equal(f.state, ZILA_BLOB_PRESENT);
	assert_int_equal(zila_blob_find(b.s, p2.id, &f, &err), 0);
	assert_int_equal(f.state, ZILA_BLOB_MISSING);
	side_free(&sa);
	side_free(&sb);
	/* a blob no row refers to is served to nobody */
	uint8_t id[32];
	assert_int_equal(zila_blob_put(a.s, (const uint8_t *)"secret", 6, id, &err), 0);
	assert_false(zila_blob_may_serve(a.s, id, NULL, NULL));
	replica_close(&a);
	replica_close(&b);
}

/* Possession (#25, ATTACH.md): a d2 laptop that writes a row naming the hash of d1's photo is
 * not served d1's bytes, neither by HQ nor by a device that reads both districts (the HQ
 * relay carries d1's proof only); HQ asks the d2 side to show the file; an honest d2 laptop
 * that has the same file shows it by sending it (one copy kept), and then d2's rows are served. */
static void test_possession(void **state)
{
	(void)state;
	struct replica hq, bad, good, both;
	struct zila_attachment p1, p3, f;
	struct zila_error err;
	struct side s1, s2;
	char in1[128], in3[128], sql[512];
	replica_open(&hq);
	replica_open(&bad);
	replica_open(&good);
	replica_open(&both);
	snprintf(in1, sizeof(in1), "%s/form.jpg", hq.top);
	write_file(in1, 3 * ZILA_BLOB_CHUNK + 77, 11);
	attach(&hq, in1, "d1", &p1); /* d1's photo, at HQ (it came from a d1 laptop) */
	assert_true(zila_blob_held_in(hq.s, (const uint8_t[32]){ 0 }, "d1") == false);
	/* the attacker's d2 row names that hash; rows sync: HQ has it too */
	snprintf(sql, sizeof(sql),
		 "INSERT INTO attachments(id, district_id, hash, size, name) VALUES ('bad1id', 'd2', '%s', %llu, 'x.jpg')",
		 p1.hash, (unsigned long long)p1.size);
	exec(&bad, sql);
	exec(&hq, sql);
	/* HQ (the d2 laptop reads and writes d2) refuses the ask, and asks the d2 side to show
	 * the file, which it cannot */
	side_new(&s1, &hq, "d2");
	side_new(&s2, &bad, NULL);
	assert_true(run(&s1, &s2, SIZE_MAX, NULL, NULL));
	assert_int_equal(zila_blobx_stats(s1.bx)->refused_unshown, 1);
	assert_int_equal(zila_blobx_stats(s1.bx)->served_bytes, 0);
	assert_int_equal(zila_blobx_stats(s2.bx)->refused_by_peer, 1);
	assert_int_equal(zila_blobx_stats(s2.bx)->received, 0);
	assert_int_equal(zila_blobx_stats(s1.bx)->asked, 1); /* HQ asked for d2's proof */
	assert_int_equal(zila_blobx_stats(s1.bx)->refused_by_peer, 1);
	assert_int_equal(zila_blob_find(bad.s, "bad1id", &f, &err), 0);
	assert_int_equal(f.state, ZILA_BLOB_MISSING);
	assert_int_equal(blob_files(&bad), 0);
	side_free(&s1);
	side_free(&s2);
	/* a device reading both districts (an HQ staff laptop) gets the file from HQ for d1's row,
	 * shown in d1 only; it does not serve it to the d2 laptop either */
	snprintf(sql, sizeof(sql),
		 "INSERT INTO attachments(id, district_id, hash, size, name) VALUES ('%s', 'd1', '%s', %llu, 'form.jpg'),"
		 " ('bad1id', 'd2', '%s', %llu, 'x.jpg')",
		 p1.id, p1.hash, (unsigned long long)p1.size, p1.hash, (unsigned long long)p1.size);
	exec(&both, sql);
	side_new(&s1, &hq, NULL);
	side_new(&s2, &both, NULL);
	assert_true(run(&s1, &s2, SIZE_MAX, NULL, NULL));
	assert_int_equal(zila_blobx_stats(s2.bx)->received, 1);
	side_free(&s1);
	side_free(&s2);
	uint8_t id[32];
	assert_int_equal(zila_hex_decode(id, 32, p1.hash, 64), 0);
	assert_true(zila_blob_held_in(both.s, id, "d1"));
	assert_false(zila_blob_held_in(both.s, id, "d2"));
	side_new(&s1, &both, "d2");
	side_new(&s2, &bad, NULL);
	assert_true(run(&s1, &s2, SIZE_MAX, NULL, NULL));
	assert_int_equal(zila_blobx_stats(s1.bx)->refused_unshown, 1);
	assert_int_equal(zila_blobx_stats(s2.bx)->received, 0);
	assert_int_equal(blob_files(&bad), 0);
	side_free(&s1);
	side_free(&s2);
	/* an honest d2 laptop attaches the same file: HQ asks it to show the file, checks every
	 * chunk against the copy's manifest and keeps one copy; d2 rows are served from then on */
	snprintf(in3, sizeof(in3), "%s/same.jpg", good.top);
	write_file(in3, 3 * ZILA_BLOB_CHUNK + 77, 11);
	attach(&good, in3, "d2", &p3);
	assert_string_equal(p3.hash, p1.hash);
	snprintf(sql, sizeof(sql),
		 "INSERT INTO attachments(id, district_id, hash, size, name) VALUES ('%s', 'd2', '%s', %llu, 'same.jpg')",
		 p3.id, p3.hash, (unsigned long long)p3.size);
	exec(&hq, sql);
	assert_false(zila_blob_held_in(hq.s, id, "d2"));
	side_new(&s1, &hq, "d2");
	side_new(&s2, &good, NULL);
	assert_true(run(&s1, &s2, SIZE_MAX, NULL, NULL));
	assert_int_equal(zila_blobx_stats(s1.bx)->shown, 1);
	assert_int_equal(zila_blobx_stats(s1.bx)->received_bytes, p1.size);
	assert_int_equal(zila_blobx_stats(s2.bx)->served, 1);
	side_free(&s1);
	side_free(&s2);
	assert_true(zila_blob_held_in(hq.s, id, "d2"));
	assert_int_equal(blob_files(&hq), 1);
	/* in step now: HQ asks nothing more of it */
	side_new(&s1, &hq, "d2");
	side_new(&s2, &good, NULL);
	assert_true(run(&s1, &s2, SIZE_MAX, NULL, NULL));
	assert_int_equal(s1.out.n, 1);
	assert_int_equal(s2.out.n, 1);
	side_free(&s1);
	side_free(&s2);
	/* d2's rows are served the file now that a d2 device showed it */
	side_new(&s1, &hq, "d2");
	side_new(&s2, &bad, NULL);
	assert_true(run(&s1, &s2, SIZE_MAX, NULL, NULL));
	assert_int_equal(zila_blobx_stats(s2.bx)->received, 1);
	side_free(&s1);
	side_free(&s2);
	replica_close(&hq);
	replica_close(&bad);
	replica_close(&good);
	replica_close(&both);
}

/* A replica from before the possession record: what it holds is credited where the rows of a
 * single district name it; a file named from two districts is credited nowhere (its writers
 * show it again), and is kept meanwhile. */
static void test_possession_upgrade(void **state)
{
	(void)state;
	struct replica r;
	struct zila_attachment a, b;
	struct zila_error err;
	char in1[128], in2[128], sql[512];
	uint8_t ida[32], idb[32];
	replica_open(&r);
	snprintf(in1, sizeof(in1), "%s/a.jpg", r.top);
	snprintf(in2, sizeof(in2), "%s/b.jpg", r.top);
	write_file(in1, 1000, 1);
	write_file(in2, 2000, 2);
	attach(&r, in1, "d1", &a);
	attach(&r, in2, "d1", &b);
	snprintf(sql, sizeof(sql),
		 "INSERT INTO attachments(id, district_id, hash, size, name) VALUES ('bad1id', 'd2', '%s', 2000, 'x.jpg')",
		 b.hash);
	exec(&r, sql);
	assert_int_equal(zila_hex_decode(ida, 32, a.hash, 64), 0);
	assert_int_equal(zila_hex_decode(idb, 32, b.hash, 64), 0);
	/* as an older zila left it */
	exec(&r, "DROP TABLE zila_blob_held");
	zila_store_free(r.s);
	assert_int_equal(zila_store_open(&r.s, r.dir, &err), 0);
	assert_true(zila_blob_held_in(r.s, ida, "d1"));
	assert_false(zila_blob_held_in(r.s, idb, "d1"));
	assert_false(zila_blob_held_in(r.s, idb, "d2"));
	assert_true(zila_blob_may_serve(r.s, ida, scope_one, (void *)"d1"));
	assert_false(zila_blob_may_serve(r.s, idb, scope_one, (void *)"d2"));
	assert_false(zila_blob_may_serve(r.s, idb, scope_one, (void *)"d1"));
	/* kept while shown nowhere and named */
	assert_int_equal(zila_store_meta_set(r.s, ZILA_META_HISTORY_DAYS, "1"), 0);
	uint64_t n, bytes;
	assert_int_equal(zila_blob_collect(r.s, INT64_MAX, &n, &bytes, &err), 0);
	assert_int_equal(zila_blob_collect(r.s, INT64_MAX, &n, &bytes, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(blob_files(&r), 2);
	replica_close(&r);
}

/* A fetch cut mid-file leaves a partial copy; the same file attached here then makes it whole:
 * the partial copy goes (a collection would keep it beside the whole one for as long as a row
 * names the file; property seed 327 with ZILA_PROP_CKPT=1 ZILA_PROP_BLOBS=1). */
static void test_partial_then_attached(void **state)
{
	(void)state;
	struct replica r;
	struct zila_attachment a;
	struct zila_error err;
	struct zila_blob_writer *w = NULL;
	struct zila_buf data, ch;
	char in[128], path[1200];
	uint8_t id[32];
	uint32_t next;
	replica_open(&r);
	snprintf(in, sizeof(in), "%s/a.jpg", r.top);
	write_file(in, 3 * ZILA_BLOB_CHUNK, 5);
	zila_buf_init(&data, 1 << 20);
	zila_buf_init(&ch, 1 << 20);
	assert_int_equal(zila_os_read_file(in, data.max, &data, NULL, &err), 0);
	assert_int_equal(zila_blob_hash_mem(data.p, data.len, &ch, id), 0);
	assert_int_equal(zila_blob_writer_open(r.s, id, data.len, ch.p, 3, &w, &next, &err), 0);
	assert_int_equal(zila_blob_writer_add(w, 0, data.p, ZILA_BLOB_CHUNK, &err), 0);
	zila_blob_writer_free(w); /* cut */
	assert_int_equal(zila_blob_part_chunks(r.s, id), 1);
	attach(&r, in, "d1", &a);
	snprintf(path, sizeof(path), "%s/blobs/%.2s/%s.part", r.dir, a.hash, a.hash + 2);
	assert_false(zila_os_exists(path));
	snprintf(path, sizeof(path), "%s/blobs/%.2s/%s.man", r.dir, a.hash, a.hash + 2);
	assert_false(zila_os_exists(path));
	assert_int_equal(blob_files(&r), 1);
	zila_buf_release(&data);
	zila_buf_release(&ch);
	replica_close(&r);
}

/* Collection by scope: a blob held for d1 that only another district's live row names (d1's
 * row deleted; a d2 row naming its hash) is not kept for that row. */
static void test_collect_scope(void **state)
{
	(void)state;
	struct replica r;
	struct zila_attachment a;
	struct zila_error err;
	char in1[128], sql[512];
	uint64_t n, bytes;
	replica_open(&r);
	snprintf(in1, sizeof(in1), "%s/a.jpg", r.top);
	write_file(in1, 5000, 3);
	attach(&r, in1, "d1", &a);
	snprintf(sql, sizeof(sql),
		 "INSERT INTO attachments(id, district_id, hash, size, name) VALUES ('bad1id', 'd2', '%s', 5000, 'x.jpg');"
		 " DELETE FROM attachments WHERE id = '%s'",
		 a.hash, a.id);
	exec(&r, sql);
	assert_int_equal(zila_store_meta_set(r.s, ZILA_META_HISTORY_DAYS, "1"), 0);
	assert_int_equal(zila_blob_collect(r.s, INT64_MAX, &n, &bytes, &err), 0); /* noted */
	assert_int_equal(n, 0);
	assert_int_equal(zila_blob_collect(r.s, INT64_MAX, &n, &bytes, &err), 0); /* past the horizon */
	assert_int_equal(n, 1);
	assert_int_equal(blob_files(&r), 0);
	assert_int_equal(scalar(&r, "SELECT count(*) FROM zila_blob_held"), 0);
	replica_close(&r);
}

struct flip {
	int left; /* chunks to damage */
	int seen;
};

static void flip_chunk(void *ctx, struct zila_buf *m)
{
	struct flip *f = ctx;
	Zila__Message *msg = zila__message__unpack(NULL, m->len, m->p);
	assert_non_null(msg);
	if (msg->body_case == ZILA__MESSAGE__BODY_BLOB_CHUNK && f->left > 0 && msg->blob_chunk->index == 2) {
		f->left--;
		f->seen++;
		msg->blob_chunk->data.data[100] ^= 0x40;
		zila_buf_reset(m);
		assert_int_equal(zila_buf_reserve(m, zila__message__get_packed_size(msg)), 0);
		m->len = zila__message__pack(msg, m->p);
	}
	zila__message__free_unpacked(msg, NULL);
}

/* A chunk that does not match its hash is refused; the chunks before it are kept and the
 * blob is asked for again from there, once. */
static void test_bad_chunk(void **state)
{
	(void)state;
	struct replica a, b;
	struct zila_attachment p1, p2, f;
	struct zila_error err;
	struct side sa, sb;
	struct flip fl = { 1, 0 };
	char in1[128], in2[128], out[128];
	two_replicas(&a, &b, in1, in2, &p1, &p2);
	side_new(&sa, &a, "d1");
	side_new(&sb, &b, NULL);
	assert_true(run(&sa, &sb, SIZE_MAX, flip_chunk, &fl));
	assert_int_equal(fl.seen, 1);
	assert_int_equal(zila_blobx_stats(sb.bx)->chunks_bad, 1);
	assert_int_equal(zila_blobx_stats(sb.bx)->received, 1);
	/* served twice: the second time from the bad chunk on */
	assert_int_equal(zila_blobx_stats(sa.bx)->served_bytes, p1.size + (p1.size - 2 * ZILA_BLOB_CHUNK));
	assert_int_equal(zila_blob_find(b.s, p1.id, &f, &err), 0);
	assert_int_equal(f.state, ZILA_BLOB_PRESENT);
	snprintf(out, sizeof(out), "%s/got.jpg", b.top);
	assert_int_equal(zila_blob_copy_out(b.s, p1.hash, out, &err), 0);
	assert_true(same_file(in1, out));
	side_free(&sa);
	side_free(&sb);
	/* a peer that always sends it damaged: refused each time, never kept whole */
	replica_close(&b);
	struct replica c;
	char sql[300];
	replica_open(&c);
	snprintf(sql, sizeof(sql), "INSERT INTO attachments(id, district_id, hash, size) VALUES ('x', 'd1', '%s', %llu)",
		 p1.hash, (unsigned long long)p1.size);
	exec(&c, sql);
	fl.left = 100;
	fl.seen = 0;
	side_new(&sa, &a, NULL);
	side_new(&sb, &c, NULL);
	assert_true(run(&sa, &sb, SIZE_MAX, flip_chunk, &fl));
	assert_int_equal(zila_blobx_stats(sb.bx)->chunks_bad, 2); /* the first time and the one retry */
	assert_int_equal(zila_blobx_stats(sb.bx)->received, 0);
	assert_int_equal(zila_blob_find(c.s, p1.hash, &f, &err), 0);
	assert_int_equal(f.state, ZILA_BLOB_PARTIAL);
	assert_int_equal(f.have_bytes, 2 * ZILA_BLOB_CHUNK);
	side_free(&sa);
	side_free(&sb);
	replica_close(&a);
	replica_close(&c);
}

/* A cut after the manifest and three chunks keeps those three; the next exchange sends only
 * the rest. */
static void test_resume(void **state)
{
	(void)state;
	struct replica a, b;
	struct zila_attachment p1, p2, f;
	struct zila_error err;
	struct side sa, sb;
	char in1[128], in2[128], out[128];
	two_replicas(&a, &b, in1, in2, &p1, &p2);
	side_new(&sa, &a, "d1"); /* only the 5-chunk d1 photo moves */
	side_new(&sb, &b, NULL);
	/* A's messages to B: BlobDone (it wants nothing), the manifest, chunks 0, 1, 2; cut */
	assert_false(run(&sa, &sb, 5, NULL, NULL));
	side_free(&sa);
	side_free(&sb);
	assert_int_equal(zila_blob_part_chunks(b.s, (const uint8_t[32]){ 0 }), 0);
	assert_int_equal(zila_blob_find(b.s, p1.id, &f, &err), 0);
	assert_int_equal(f.state, ZILA_BLOB_PARTIAL);
	assert_int_equal(f.have_bytes, 3 * ZILA_BLOB_CHUNK);
	side_new(&sa, &a, "d1");
	side_new(&sb, &b, NULL);
	assert_true(run(&sa, &sb, SIZE_MAX, NULL, NULL));
	assert_int_equal(zila_blobx_stats(sa.bx)->served_bytes, p1.size - 3 * ZILA_BLOB_CHUNK);
	snprintf(out, sizeof(out), "%s/got.jpg", b.top);
	assert_int_equal(zila_blob_copy_out(b.s, p1.hash, out, &err), 0);
	assert_true(same_file(in1, out));
	side_free(&sa);
	side_free(&sb);
	replica_close(&a);
	replica_close(&b);
}

/* A slow link: the blob goes in pieces of 5,000 bytes (a row written meanwhile waits behind
 * one piece, not a 64 KiB chunk); a cut in the middle of a chunk's pieces keeps the whole
 * chunks before it, and the next exchange sends exactly the rest. */
static void test_pieces(void **state)
{
	(void)state;
	struct replica a, b;
	struct zila_attachment p1, p2, f;
	struct zila_error err;
	struct side sa, sb;
	char in1[128], in2[128], out[128];
	two_replicas(&a, &b, in1, in2, &p1, &p2);
	turn_bytes = 5000;
	side_new(&sa, &a, "d1");
	side_new(&sb, &b, NULL);
	/* BlobDone, the manifest, then pieces: 40 of them end inside chunk 2 (14 a chunk) */
	assert_false(run(&sa, &sb, 42, NULL, NULL));
	side_free(&sa);
	side_free(&sb);
	assert_int_equal(zila_blob_find(b.s, p1.id, &f, &err), 0);
	assert_int_equal(f.state, ZILA_BLOB_PARTIAL);
	assert_int_equal(f.have_bytes, 2 * ZILA_BLOB_CHUNK);
	side_new(&sa, &a, "d1");
	side_new(&sb, &b, NULL);
	assert_true(run(&sa, &sb, SIZE_MAX, NULL, NULL));
	assert_int_equal(zila_blobx_stats(sa.bx)->served_bytes, p1.size - 2 * ZILA_BLOB_CHUNK);
	assert_int_equal(zila_blobx_stats(sb.bx)->chunks_bad, 0);
	/* every message was a piece: none larger than the turn and a message's framing */
	for (size_t i = 0; i < sa.out.n; i++)
		assert_true(sa.out.m[i].len <= 5000 + 128);
	assert_true(sa.out.n > (p1.size - 2 * ZILA_BLOB_CHUNK) / 5000);
	snprintf(out, sizeof(out), "%s/got.jpg", b.top);
	assert_int_equal(zila_blob_copy_out(b.s, p1.hash, out, &err), 0);
	assert_true(same_file(in1, out));
	turn_bytes = 64 * 1024;
	side_free(&sa);
	side_free(&sb);
	replica_close(&a);
	replica_close(&b);
}

/* Pieces out of order (one skipped, so the next does not start where the last ended) fail
 * the exchange with EPROTO, as any malformed blob message: nothing of that chunk is kept. */
static void test_piece_out_of_order(void **state)
{
	(void)state;
	struct replica a, b;
	struct zila_attachment p1, p2, f;
	struct zila_error err;
	struct side sa, sb;
	char in1[128], in2[128];
	two_replicas(&a, &b, in1, in2, &p1, &p2);
	side_new(&sa, &a, "d1");
	side_new(&sb, &b, NULL);
	assert_int_equal(zila_blobx_start(sa.bx, &err), 0);
	assert_int_equal(zila_blobx_start(sb.bx, &err), 0);
	/* B's ask (with pieces) reaches A; A sends a manifest and pieces of 5,000 bytes */
	for (size_t i = 0; i < sb.out.n; i++)
		assert_int_equal(zila_blobx_receive(sa.bx, sb.out.m[i].p, sb.out.m[i].len, &err), 0);
	for (int k = 0; k < 4; k++)
		assert_int_equal(zila_blobx_send_more(sa.bx, 5000, &err), 0);
	int r = 0, pieces = 0;
	for (size_t i = 0; i < sa.out.n && r == 0; i++) {
		Zila__Message *msg = zila__message__unpack(NULL, sa.out.m[i].len, sa.out.m[i].p);
		assert_non_null(msg);
		bool piece = msg->body_case == ZILA__MESSAGE__BODY_BLOB_CHUNK;
		zila__message__free_unpacked(msg, NULL);
		if (piece && ++pieces == 2)
			continue; /* the second piece is lost: the third does not follow the first */
		zila_error_clear(&err);
		r = zila_blobx_receive(sb.bx, sa.out.m[i].p, sa.out.m[i].len, &err);
	}
	assert_int_equal(r, ZILA_EPROTO);
	assert_non_null(strstr(err.msg, "out of order"));
	side_free(&sa);
	side_free(&sb);
	assert_int_equal(zila_blob_find(b.s, p1.id, &f, &err), 0);
	assert_int_equal(f.have_bytes, 0);
	replica_close(&a);
	replica_close(&b);
}

/* A blob damaged on the serving side's disk is refused (and removed there), not sent. */
static void test_damaged_here(void **state)
{
	(void)state;
	struct replica a, b;
	struct zila_attachment p1, p2;
	struct zila_error err;
	struct side sa, sb;
	char in1[128], in2[128], path[1200];
	two_replicas(&a, &b, in1, in2, &p1, &p2);
	snprintf(path, sizeof(path), "%s/blobs/%.2s/%s", a.dir, p1.hash, p1.hash + 2);
	write_file(path, p1.size, 99);
	side_new(&sa, &a, "d1");
	side_new(&sb, &b, NULL);
	assert_true(run(&sa, &sb, SIZE_MAX, NULL, NULL));
	assert_int_equal(zila_blobx_stats(sa.bx)->refused_missing, 1);
	assert_int_equal(zila_blobx_stats(sb.bx)->received, 0);
	assert_false(zila_os_exists(path));
	assert_int_equal(zila_blob_copy_out(a.s, p1.hash, path, &err), ZILA_ENOTFOUND);
	side_free(&sa);
	side_free(&sb);
	/* A still records the photo as shown in d1 (it attached it), but the bytes are gone: it
	 * asks for them again, and takes them from a peer that holds them */
	struct zila_buf data;
	uint8_t id[32];
	zila_buf_init(&data, 1 << 20);
	assert_int_equal(zila_os_read_file(in1, data.max, &data, NULL, &err), 0);
	assert_int_equal(zila_blob_put(b.s, data.p, data.len, id, &err), 0);
	assert_int_equal(zila_blob_held_add(b.s, id, "d1", &err), 0);
	zila_buf_release(&data);
	side_new(&sa, &a, NULL);
	side_new(&sb, &b, NULL);
	assert_true(run(&sa, &sb, SIZE_MAX, NULL, NULL));
	assert_int_equal(zila_blobx_stats(sa.bx)->received, 1);
	/* copied out beside it, not over the stored copy (Windows keeps a file in use) */
	char out[1300];
	snprintf(out, sizeof(out), "%s/photo-out.jpg", a.dir);
	assert_int_equal(zila_blob_copy_out(a.s, p1.hash, out, &err), 0);
	assert_true(same_file(in1, out));
	assert_true(same_file(in1, path));
	side_free(&sa);
	side_free(&sb);
	replica_close(&a);
	replica_close(&b);
}

/* Collection: a blob no live row refers to goes once it has been unreferenced since before
 * the horizon; a referenced one stays. */
static void test_collect(void **state)
{
	(void)state;
	struct replica r;
	struct zila_attachment a, b;
	struct zila_error err;
	char in1[128], in2[128], sql[400];
	uint64_t n, bytes;
	replica_open(&r);
	snprintf(in1, sizeof(in1), "%s/a.jpg", r.top);
	snprintf(in2, sizeof(in2), "%s/b.jpg", r.top);
	write_file(in1, 1000, 1);
	write_file(in2, 2000, 2);
	attach(&r, in1, "d1", &a);
	attach(&r, in2, "d1", &b);
	snprintf(sql, sizeof(sql), "DELETE FROM attachments WHERE id = '%s'", b.id);
	exec(&r, sql);
	/* a replica without a write scope keeps all history (HQ): this one keeps 90 days */
	assert_int_equal(zila_store_meta_set(r.s, ZILA_META_HISTORY_DAYS, "90"), 0);
	int64_t now = zila_store_horizon_ms(r.s) + 90LL * 86400 * 1000;
	/* fetches asked for: of a blob here (satisfied), of one no row refers to (gone), and
	 * of one a row refers to that is not here (kept) */
	static const char missing[] = "1111111111111111111111111111111111111111111111111111111111111111";
	exec(&r, "INSERT INTO attachments (id, district_id, hash, size) VALUES ('m1', 'd1', '"
		 "1111111111111111111111111111111111111111111111111111111111111111', 10)");
	assert_int_equal(zila_blob_ask(r.s, a.hash, &err), 0);
	assert_int_equal(zila_blob_ask(r.s, b.hash, &err), 0);
	assert_int_equal(zila_blob_ask(r.s, missing, &err), 0);
	assert_int_equal(scalar(&r, "SELECT count(*) FROM zila_blob_asks"), 3);
	/* first pass, a directory at a time: b is noted as unreferenced from now on; nothing goes */
	unsigned next = 0, steps = 0;
	n = bytes = 0;
	while (next < ZILA_BLOB_COLLECT_STEPS) {
		assert_int_equal(zila_blob_collect_step(r.s, zila_store_horizon_ms(r.s), &next, &n, &bytes, &err), 0);
		steps++;
		if (next < ZILA_BLOB_COLLECT_STEPS) /* the asks wait for the pass's end */
			assert_int_equal(scalar(&r, "SELECT count(*) FROM zila_blob_asks"), 3);
	}
	assert_int_equal(steps, ZILA_BLOB_COLLECT_STEPS);
	assert_int_equal(scalar(&r, "SELECT count(*) FROM zila_blob_asks"), 1);
	assert_int_equal(scalar(&r, "SELECT count(*) FROM zila_blob_asks WHERE hash LIKE '1111%'"), 1);
	assert_int_equal(zila_blob_collect(r.s, zila_store_horizon_ms(r.s), &n, &bytes, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(blob_files(&r), 2);
	/* the horizon has not passed that time: kept */
	assert_int_equal(zila_blob_collect(r.s, now - 1000, &n, &bytes, &err), 0);
	assert_int_equal(n, 0);
	/* once it has: b goes, a stays */
	assert_int_equal(zila_blob_collect(r.s, now + 60000, &n, &bytes, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(bytes, 2000);
	assert_int_equal(blob_files(&r), 1);
	assert_int_equal(zila_blob_find(r.s, a.id, &b, &err), 0);
	assert_int_equal(b.state, ZILA_BLOB_PRESENT);
	replica_close(&r);
}

/* --- bundles with files ------------------------------------------------------------------ */

static bool only_d2(void *ctx, const char *part)
{
	(void)ctx;
	return strcmp(part, "d2") == 0;
}

static bool only_d1(void *ctx, const char *part)
{
	(void)ctx;
	return strcmp(part, "d1") == 0;
}

struct planned {
	int calls;
	struct zila_bundle_summary sum;
	int refuse;
};

static int plan(void *ctx, const struct zila_bundle_summary *sum, struct zila_error *err)
{
	struct planned *p = ctx;
	p->calls++;
	p->sum = *sum;
	return p->refuse ? zila_error_set(err, p->refuse, "does not fit") : 0;
}

static void bundle_for(struct replica *from, struct replica *to, const struct zila_bundle_opts *o, zila_part_filter_fn filter,
		       struct zila_buf *b, struct zila_bundle_summary *sum)
{
	struct zila_bundle_to bt;
	struct zila_error err;
	zila_error_clear(&err);
	memset(&bt, 0, sizeof(bt));
	bt.kind = ZILA_BUNDLE_TO_DEVICE;
	memcpy(bt.device_pk, zila_store_device_pk(to->s), 32);
	zila_buf_init(b, 64 << 20);
	if (zila_bundle_write_ex(from->s, NULL, filter, NULL, &bt, o, zila_buf_sink, b, sum, &err) != 0)
		fail_msg("bundle: %s", err.msg);
}

static int read_files(struct replica *r, const struct zila_buf *b, struct zila_bundle_files *f)
{
	struct zila_apply_stats st;
	struct zila_error err;
	zila_error_clear(&err);
	return zila_bundle_read_ex(r->s, NULL, b->p, b->len, "b", &st, f, &err);
}

static void test_bundle_files(void **state)
{
	(void)state;
	struct replica a, b, c;
	struct zila_attachment big, small, other;
	struct zila_bundle_summary sum;
	struct zila_bundle_files f;
	struct zila_buf bb, rows;
	struct zila_error err;
	char p1[128], p2[128], p3[128], out[128];
	replica_open(&a);
	replica_open(&b);
	replica_open(&c);
	snprintf(p1, sizeof(p1), "%s/scan.pdf", a.top);
	snprintf(p2, sizeof(p2), "%s/photo.jpg", a.top);
	snprintf(p3, sizeof(p3), "%s/d2.jpg", a.top);
	write_file(p1, 3 * ZILA_BLOB_CHUNK + 100, 7);
	write_file(p2, 5000, 8);
	write_file(p3, 7000, 9);
	attach(&a, p1, "d1", &big);
	attach(&a, p2, "d1", &small);
	attach(&a, p3, "d2", &other);

	/* without the option: the bundle of before (version 3), and no plan is asked */
	struct planned pl = { 0 };
	struct zila_bundle_opts none = { .plan = plan, .plan_ctx = &pl };
	bundle_for(&a, &b, &none, NULL, &rows, &sum);
	assert_int_equal(rows.p[8], ZILA_BUNDLE_SEALED_VERSION);
	assert_int_equal(pl.calls, 0);
	assert_int_equal(sum.bytes, rows.len);
	assert_int_equal(sum.rows_bytes, rows.len);
	assert_int_equal(sum.nfiles, 0);

	/* with files: the plan comes after the rows with the files' exact size */
	struct zila_bundle_opts with = { .blobs = true, .plan = plan, .plan_ctx = &pl };
	bundle_for(&a, &b, &with, NULL, &bb, &sum);
	assert_int_equal(bb.p[8], ZILA_BUNDLE_FILES_VERSION);
	assert_int_equal(pl.calls, 1);
	assert_int_equal(pl.sum.nfiles, 3);
	assert_int_equal(pl.sum.files_bytes, sum.files_bytes);
	assert_int_equal(sum.rows_bytes + sum.files_bytes, bb.len);
	assert_int_equal(sum.bytes, bb.len);
	assert_int_equal(sum.nfiles, 3);
	assert_true(sum.files_bytes > 3 * ZILA_BLOB_CHUNK + 12000);
	/* the rows decrypt as a version-3 reader would: the files follow them */
	struct zila_bundle_keys keys = { zila_store_device_pk(b.s), zila_store_device_sk(b.s), NULL };
	struct zila_buf plain;
	zila_buf_init(&plain, 64 << 20);
	assert_int_equal(zila_bundle_decrypt(bb.p, bb.len, &keys, "b", &plain, &err), 0);
	zila_buf_release(&plain);

	/* B keeps all three (no certificate: no read scope), byte-identical */
	assert_int_equal(read_files(&b, &bb, &f), 0);
	assert_int_equal(f.nfiles, 3);
	assert_int_equal(f.nstored, 3);
	assert_int_equal(f.nrefused + f.nmissing, 0);
	assert_int_equal(scalar(&b, "SELECT count(*) FROM attachments"), 3);
	snprintf(out, sizeof(out), "%s/out.pdf", b.top);
	assert_int_equal(zila_blob_copy_out(b.s, big.hash, out, &err), 0);
	assert_true(same_file(p1, out));
	/* each is taken as shown in the one district whose rows name it, so B serves them */
	{
		uint8_t id[32];
		assert_int_equal(zila_hex_decode(id, 32, big.hash, 64), 0);
		assert_true(zila_blob_held_in(b.s, id, "d1"));
		assert_true(zila_blob_may_serve(b.s, id, scope_one, (void *)"d1"));
		assert_int_equal(zila_hex_decode(id, 32, other.hash, 64), 0);
		assert_true(zila_blob_held_in(b.s, id, "d2"));
		assert_false(zila_blob_held_in(b.s, id, "d1"));
	}
	/* twice: every file is held already */
	assert_int_equal(read_files(&b, &bb, &f), 0);
	assert_int_equal(f.nheld, 3);
	assert_int_equal(f.nstored, 0);
	zila_buf_release(&bb);

	/* a filter carries only what it allows */
	bundle_for(&a, &c, &with, only_d1, &bb, &sum);
	assert_int_equal(sum.nfiles, 2);
	zila_buf_release(&bb);
	/* a file not shown in the partition of the row that names it is not carried: a d2 row
	 * naming the d1 photo's hash does not put the photo in a bundle for d2 */
	{
		char sql[400];
		snprintf(sql, sizeof(sql), "INSERT INTO attachments(id, district_id, hash, size, name) VALUES"
					   " ('guess-d2-1', 'd2', '%s', %llu, 'x.jpg')", small.hash, (unsigned long long)small.size);
		exec(&a, sql);
		bundle_for(&a, &c, &with, only_d2, &bb, &sum);
		assert_int_equal(sum.nfiles, 1); /* d2.jpg only */
		zila_buf_release(&bb);
		exec(&a, "DELETE FROM attachments WHERE id = 'guess-d2-1'");
	}
	/* files below a size */
	struct zila_bundle_opts below = { .blobs = true, .blobs_max = 6000 };
	bundle_for(&a, &c, &below, NULL, &bb, &sum);
	assert_int_equal(sum.nfiles, 1);
	assert_int_equal(sum.nlarge, 2);
	zila_buf_release(&bb);

	/* a plan that refuses stops before any file is written */
	pl.refuse = ZILA_EFULL;
	zila_buf_init(&bb, 64 << 20);
	{
		struct zila_bundle_to bt = { .kind = ZILA_BUNDLE_TO_DEVICE };
		memcpy(bt.device_pk, zila_store_device_pk(c.s), 32);
		assert_int_equal(zila_bundle_write_ex(a.s, NULL, NULL, NULL, &bt, &with, zila_buf_sink, &bb, &sum, &err),
				 ZILA_EFULL);
		assert_true(bb.len < 3 * ZILA_BLOB_CHUNK); /* the rows only */
	}
	zila_buf_release(&bb);
	pl.refuse = 0;

	/* a damaged byte in the big file's chunks: that file is refused, the rows and the
	 * other files arrive (files come in hash order, so find where the big one lies) */
	bundle_for(&a, &c, &with, NULL, &bb, &sum);
	{
		const char *order[3] = { big.hash, small.hash, other.hash };
		size_t before = 0;
		uint64_t sizes[3] = { big.size, small.size, other.size };
		for (int i = 0; i < 3; i++) /* records of files whose hash sorts before the big one's */
			if (strcmp(order[i], big.hash) < 0) {
				uint64_t n = (sizes[i] + ZILA_BLOB_CHUNK - 1) / ZILA_BLOB_CHUNK;
				before += 8 + 24 + 4 + 40 + n * 32 + 17 + n * 21 + sizes[i];
			}
		size_t at = (size_t)sum.rows_bytes + before + 8 + 24 + 4 + 40 + 4 * 32 + 17 + 4 + 17 + 2 * ZILA_BLOB_CHUNK;
		bb.p[at] ^= 0x40; /* inside its second chunk */
	}
	assert_int_equal(read_files(&c, &bb, &f), 0);
	assert_int_equal(f.nrefused, 1);
	assert_int_equal(f.nstored, 2);
	assert_non_null(strstr(f.why, "damaged"));
	assert_int_equal(scalar(&c, "SELECT count(*) FROM attachments"), 3); /* the rows came */
	uint8_t id[32];
	assert_int_equal(zila_hex_decode(id, 32, big.hash, 64), 0);
	assert_false(zila_blob_present(c.s, id));
	assert_int_equal(zila_blob_part_chunks(c.s, id), 1); /* its first, verified chunk is kept */
	zila_buf_release(&bb);
	/* cut short: what is missing is said, the rows still come */
	bundle_for(&a, &c, &with, NULL, &bb, &sum);
	bb.len -= 50;
	assert_int_equal(read_files(&c, &bb, &f), 0);
	assert_true(f.nrefused + f.nmissing > 0);
	zila_buf_release(&bb);

	zila_buf_release(&rows);
	replica_close(&a);
	replica_close(&b);
	replica_close(&c);
}

/* zila status with thousands missing: counted by stats alone (no byte read, no file cut),
 * and a few named */
static void test_stats_many(void **state)
{
	(void)state;
	struct replica r;
	struct zila_blob_stats st;
	struct zila_error err;
	replica_open(&r);
	exec(&r, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)"
		 " INSERT INTO attachments (id, district_id, hash, size, name)"
		 " SELECT printf('m%05d', i), 'd1', printf('%064x', i), 300000, printf('p%d.jpg', i) FROM n");
	/* a partial copy of the first: two verified chunks and half of a third being appended */
	uint8_t id[32], *chunk = calloc(1, ZILA_BLOB_CHUNK);
	char hex[65], man[256], part[256];
	assert_non_null(chunk);
	snprintf(hex, sizeof(hex), "%064x", 1);
	assert_int_equal(zila_hex_decode(id, 32, hex, 64), 0);
	snprintf(man, sizeof(man), "%s/blobs/%.2s", r.dir, hex);
	snprintf(part, sizeof(part), "%s/blobs", r.dir);
	assert_int_equal(zila_os_mkdir(part, 0700, &err), 0);
	assert_int_equal(zila_os_mkdir(man, 0700, &err), 0);
	snprintf(man, sizeof(man), "%s/blobs/%.2s/%s.man", r.dir, hex, hex + 2);
	snprintf(part, sizeof(part), "%s/blobs/%.2s/%s.part", r.dir, hex, hex + 2);
	uint8_t m[8 + 5 * 32] = { 0 };
	crypto_generichash(m + 8, 32, chunk, ZILA_BLOB_CHUNK, NULL, 0);
	memcpy(m + 40, m + 8, 32);
	assert_int_equal(zila_os_append(man, m, sizeof(m), &err), 0);
	assert_int_equal(zila_os_append(part, chunk, ZILA_BLOB_CHUNK, &err), 0);
	assert_int_equal(zila_os_append(part, chunk, ZILA_BLOB_CHUNK, &err), 0);
	assert_int_equal(zila_os_append(part, chunk, ZILA_BLOB_CHUNK / 2, &err), 0);
	assert_int_equal(zila_blob_stats(r.s, &st, &err), 0);
	assert_int_equal(st.nref, 5000);
	assert_int_equal(st.nmissing, 5000);
	assert_int_equal(st.missing_bytes, 5000ull * 300000);
	assert_int_equal(st.npartial, 1);
	assert_int_equal(st.partial_bytes, 2 * ZILA_BLOB_CHUNK);
	assert_int_equal(st.nfirst, ZILA_BLOB_STATS_FIRST);
	assert_memory_equal(st.first[0], id, 32);
	/* counting cut nothing off the copy a transfer is appending to */
	uint64_t size = 0;
	int64_t mt;
	assert_int_equal(zila_os_stat(part, &size, &mt), 0);
	assert_int_equal(size, 2 * ZILA_BLOB_CHUNK + ZILA_BLOB_CHUNK / 2);
	/* receiving checks the bytes: two chunks verified */
	assert_int_equal(zila_blob_part_chunks(r.s, id), 2);
	free(chunk);
	replica_close(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stored_once), cmocka_unit_test(test_limits),
#ifndef _WIN32
		cmocka_unit_test(test_full_disk),
#endif
		cmocka_unit_test(test_exchange),    cmocka_unit_test(test_scope), cmocka_unit_test(test_possession),
		cmocka_unit_test(test_possession_upgrade), cmocka_unit_test(test_collect_scope),
		cmocka_unit_test(test_partial_then_attached),	   cmocka_unit_test(test_bad_chunk),
		cmocka_unit_test(test_resume),	    cmocka_unit_test(test_pieces),	   cmocka_unit_test(test_piece_out_of_order),
		cmocka_unit_test(test_damaged_here), cmocka_unit_test(test_collect),	   cmocka_unit_test(test_bundle_files),
		cmocka_unit_test(test_stats_many),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
