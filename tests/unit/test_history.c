/* Checkpoints of a partition's state and bounded history (proto/CHECKPOINT.md): a clone from
 * a checkpoint plus the entries after it has the rows of a clone of every entry; concurrent
 * edits merge alike in either order; forged, damaged or unsigned checkpoints change nothing;
 * history covered by a checkpoint and older than the horizon is dropped and the rows stay
 * (also when the tables are made again from the entries); the format-9 upgrade; deleted rows'
 * registers collected once every device that may hold them has acknowledged a checkpoint,
 * and a key inserted again after its delete was collected wins everywhere; the replica
 * compacted after them. */
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

#include "zila/schema.h"
#include "zila/store.h"
#include "zila/os.h"

static uint64_t test_now_ms = 1700000000000ull;

static uint64_t test_clock(void *ctx)
{
	(void)ctx;
	return test_now_ms;
}

struct replica {
	char dir[256];
	char db[300];
	struct zila_store *s;
	sqlite3 *app;
};

static char base[] = "/tmp/zila-test-history-XXXXXX";

static void replica_new(struct replica *r, const char *name)
{
	struct zila_error err;
	snprintf(r->dir, sizeof(r->dir), "%s/%s", base, name);
	snprintf(r->db, sizeof(r->db), "%s/zila.db", r->dir);
	assert_int_equal(zila_store_create(r->dir, &err), 0);
	assert_int_equal(sqlite3_open(r->db, &r->app), SQLITE_OK);
	sqlite3_busy_timeout(r->app, 5000);
	assert_int_equal(sqlite3_exec(r->app,
				      "CREATE TABLE t(id TEXT PRIMARY KEY, district_id TEXT NOT NULL, v TEXT, w INTEGER,"
				      " code TEXT, UNIQUE(district_id, code));"
				      "CREATE TABLE o(id TEXT PRIMARY KEY, name TEXT)",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(zila_store_open(&r->s, r->dir, &err), 0);
	zila_store_set_clock(r->s, test_clock, NULL);
	assert_int_equal(zila_store_track(r->s, "t", "district_id", &err), 0);
	assert_int_equal(zila_store_track(r->s, "o", NULL, &err), 0);
}

static void replica_free(struct replica *r)
{
	sqlite3_close(r->app);
	zila_store_free(r->s);
	memset(r, 0, sizeof(*r));
}

static void app(struct replica *r, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(r->app, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg ? msg : "?");
	struct zila_error err;
	assert_int_equal(zila_store_seal(r->s, NULL, &err), 0);
	test_now_ms += 1500; /* a group of its own */
}

/* Entries `to` lacks, from `from`, applied in one call; returns how many went. */
struct held {
	struct zila_view *v;
	size_t n, cap;
};
static int collect(void *ctx, const struct zila_entry_info *e, struct zila_view bytes)
{
	struct held *h = ctx;
	(void)e;
	if (h->n == h->cap) {
		h->cap = h->cap ? 2 * h->cap : 64;
		h->v = realloc(h->v, h->cap * sizeof(*h->v));
	}
	uint8_t *p = malloc(bytes.len);
	memcpy(p, bytes.p, bytes.len);
	h->v[h->n++] = zila_view_make(p, bytes.len);
	return 0;
}

static size_t send_entries(struct replica *from, struct replica *to)
{
	struct zila_vector v;
	struct held h = { 0 };
	struct zila_apply_stats st;
	struct zila_error err;
	assert_int_equal(zila_store_vector(to->s, &v), 0);
	assert_int_equal(zila_store_entries_since(from->s, &v, NULL, NULL, collect, &h), 0);
	zila_vector_release(&v);
	if (h.n > 0) {
		assert_int_equal(zila_store_apply(to->s, h.v, h.n, &st, &err), 0);
		assert_int_equal(st.nrejected, 0);
		assert_int_equal(st.ngap, 0);
	}
	for (size_t i = 0; i < h.n; i++)
		free((void *)h.v[i].p);
	free(h.v);
	return h.n;
}

static void hash_of(struct replica *r, uint8_t h[32])
{
	struct zila_error err;
	assert_int_equal(zila_store_hash(r->s, h, &err), 0);
}

static void assert_same(struct replica *a, struct replica *b)
{
	uint8_t ha[32], hb[32];
	hash_of(a, ha);
	hash_of(b, hb);
	assert_memory_equal(ha, hb, 32);
}

static int64_t count(struct replica *r, const char *sql)
{
	sqlite3_stmt *st;
	int64_t n = -1;
	assert_int_equal(sqlite3_prepare_v2(r->app, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static void checkpoint_bytes(struct replica *r, const char *part, uint8_t **p, size_t *len)
{
	assert_int_equal(zila_store_checkpoint_get(r->s, part, p, len), 0);
}

/* A district edited many times: rows, updates, deletes, a re-insert, a UNIQUE collision. */
static void history(struct replica *hq, int rounds)
{
	char sql[256];
	app(hq, "INSERT INTO o VALUES ('x', 'org row')");
	for (int i = 0; i < 20; i++) {
		snprintf(sql, sizeof(sql), "INSERT INTO t VALUES ('r%02d', 'd1', 'v0', 0, 'c%02d')", i, i);
		app(hq, sql);
	}
	app(hq, "INSERT INTO t VALUES ('e1', 'd2', 'other district', 1, NULL)");
	for (int k = 1; k <= rounds; k++) {
		snprintf(sql, sizeof(sql), "UPDATE t SET v = 'v%d', w = w + 1 WHERE district_id = 'd1'", k);
		app(hq, sql);
	}
	app(hq, "DELETE FROM t WHERE id IN ('r03', 'r04')");
	app(hq, "INSERT INTO t VALUES ('r04', 'd1', 'back', 9, 'c04')");
	app(hq, "UPDATE t SET w = 100 WHERE id = 'r03'"); /* an update does not revive a deleted row */
}

static void test_clone(void **state)
{
	(void)state;
	struct replica hq, full, clone;
	struct zila_error err;
	struct zila_ckpt_info ci;
	replica_new(&hq, "hq");
	replica_new(&full, "full");
	replica_new(&clone, "clone");
	history(&hq, 10);
	assert_int_equal(zila_store_checkpoint_make(hq.s, "d1", &ci, &err), 0);
	assert_int_equal(ci.nrows, 20); /* r03 a tombstone, r04 again */
	assert_int_equal(zila_store_checkpoint_make(hq.s, "", &ci, &err), ZILA_EINVAL);
	/* after the checkpoint: more edits */
	app(&hq, "UPDATE t SET v = 'after' WHERE id = 'r01'");
	app(&hq, "INSERT INTO t VALUES ('r99', 'd1', 'new', 1, 'c99')");
	uint8_t *cp;
	size_t cplen;
	checkpoint_bytes(&hq, "d1", &cp, &cplen);
	struct zila_apply_stats st;
	assert_int_equal(zila_store_checkpoint_apply(clone.s, zila_view_make(cp, cplen), &ci, &st, &err), 0);
	assert_string_equal(ci.part, "d1");
	/* only what came after, and the other partitions */
	size_t n = send_entries(&hq, &clone);
	size_t nfull = send_entries(&hq, &full);
	assert_true(n < nfull / 3);
	assert_same(&hq, &full);
	assert_same(&hq, &clone);
	assert_int_equal(count(&clone, "SELECT count(*) FROM t WHERE id = 'r03'"), 0);
	assert_int_equal(count(&clone, "SELECT w FROM t WHERE id = 'r04'"), 9);
	/* the tombstone is there: an old upsert of r03 cannot revive it */
	assert_int_equal(count(&clone, "SELECT count(*) FROM zila_rows"), count(&full, "SELECT count(*) FROM zila_rows"));
	/* a second time changes nothing */
	assert_int_equal(zila_store_checkpoint_apply(clone.s, zila_view_make(cp, cplen), NULL, &st, &err), 0);
	assert_same(&hq, &clone);
	assert_int_equal(send_entries(&hq, &clone), 0);
	/* a clone's vector equals HQ's: nothing to send either way */
	assert_int_equal(send_entries(&clone, &hq), 0);
	/* the clone keeps the checkpoint and can pass it on to another new laptop */
	struct replica third;
	replica_new(&third, "third");
	uint8_t *cp2;
	size_t cp2len;
	checkpoint_bytes(&clone, "d1", &cp2, &cp2len);
	assert_int_equal(cplen, cp2len);
	assert_int_equal(zila_store_checkpoint_apply(third.s, zila_view_make(cp2, cp2len), NULL, &st, &err), 0);
	send_entries(&clone, &third);
	assert_same(&hq, &third);
	free(cp2);
	free(cp);
	replica_free(&third);
	replica_free(&hq);
	replica_free(&full);
	replica_free(&clone);
}

/* A laptop that wrote concurrently (and is behind) takes the checkpoint: the same rows as if
 * it had taken HQ's entries, whichever it took first. */
static void test_concurrent(void **state)
{
	(void)state;
	struct replica hq, lap, lap2;
	struct zila_error err;
	struct zila_ckpt_info ci;
	struct zila_apply_stats st;
	replica_new(&hq, "hq2");
	replica_new(&lap, "lap");
	replica_new(&lap2, "lap2");
	app(&hq, "INSERT INTO t VALUES ('a', 'd1', 'hq', 1, 'ca')");
	send_entries(&hq, &lap);
	send_entries(&hq, &lap2);
	/* concurrent: the laptops edit a and add b; HQ edits a again, many times */
	app(&lap, "UPDATE t SET w = 50 WHERE id = 'a'");
	app(&lap, "INSERT INTO t VALUES ('b', 'd1', 'lap', 2, 'ca2')");
	app(&lap2, "UPDATE t SET w = 50 WHERE id = 'a'");
	app(&lap2, "INSERT INTO t VALUES ('b', 'd1', 'lap', 2, 'ca2')");
	for (int i = 0; i < 5; i++)
		app(&hq, "UPDATE t SET v = v || '+' WHERE id = 'a'");
	app(&hq, "INSERT INTO t VALUES ('c', 'd1', 'hq', 3, 'ca2')"); /* takes b's code first: b is parked */
	assert_int_equal(zila_store_checkpoint_make(hq.s, "d1", &ci, &err), 0);
	uint8_t *cp;
	size_t cplen;
	checkpoint_bytes(&hq, "d1", &cp, &cplen);
	/* lap: the checkpoint; lap2: HQ's entries */
	assert_int_equal(zila_store_checkpoint_apply(lap.s, zila_view_make(cp, cplen), NULL, &st, &err), 0);
	send_entries(&hq, &lap2);
	assert_same(&lap, &lap2);
	send_entries(&lap, &hq);
	send_entries(&lap2, &hq);
	send_entries(&hq, &lap);
	send_entries(&hq, &lap2);
	assert_same(&lap, &hq);
	assert_same(&lap2, &hq);
	assert_int_equal(send_entries(&hq, &lap), 0);
	assert_int_equal(count(&hq, "SELECT w FROM t WHERE id = 'a'"), 50);
	free(cp);
	replica_free(&hq);
	replica_free(&lap);
	replica_free(&lap2);
}

static int refuse_all(void *ctx, struct zila_store *s, const struct zila_ckpt_info *c, struct zila_error *err)
{
	(void)ctx;
	(void)s;
	(void)c;
	return zila_error_set(err, ZILA_ECERT, "its signer is not an HQ device of this organisation");
}

static void expect_refused(struct replica *r, const uint8_t *p, size_t len, int code, const char *words)
{
	uint8_t before[32], after[32];
	struct zila_vector v0, v1;
	struct zila_error err;
	struct zila_apply_stats st;
	hash_of(r, before);
	assert_int_equal(zila_store_vector(r->s, &v0), 0);
	int rc = zila_store_checkpoint_apply(r->s, zila_view_make(p, len), NULL, &st, &err);
	assert_int_equal(rc, code);
	if (strstr(err.msg, words) == NULL || strstr(err.msg, "nothing changed") == NULL)
		fail_msg("message '%s' lacks '%s'", err.msg, words);
	hash_of(r, after);
	assert_memory_equal(before, after, 32);
	assert_int_equal(zila_store_vector(r->s, &v1), 0);
	assert_int_equal(v0.nheads, v1.nheads);
	zila_vector_release(&v0);
	zila_vector_release(&v1);
	uint8_t *kept = NULL;
	size_t klen = 0;
	assert_int_equal(zila_store_checkpoint_get(r->s, "d1", &kept, &klen), ZILA_ENOTFOUND);
}

static void test_malformed(void **state)
{
	(void)state;
	struct replica hq, lap;
	struct zila_error err;
	struct zila_ckpt_info ci;
	replica_new(&hq, "hq3");
	replica_new(&lap, "lap3");
	history(&hq, 2);
	assert_int_equal(zila_store_checkpoint_make(hq.s, "d1", &ci, &err), 0);
	uint8_t *cp;
	size_t len;
	checkpoint_bytes(&hq, "d1", &cp, &len);
	assert_int_equal(zila_checkpoint_verify(zila_view_make(cp, len), &ci), 0);
	uint8_t *bad = malloc(len + 1);
	/* a forged row: a byte of the last chunk changed */
	memcpy(bad, cp, len);
	bad[len - 5] ^= 0x20;
	expect_refused(&lap, bad, len, ZILA_ESIG, "does not verify");
	/* a wrong vector: a feed's sequence number in the signed head (after magic, version,
	 * signer, partition, hlc and schema: the feed count, the first origin, its seq) */
	memcpy(bad, cp, len);
	size_t at = 8 + 1 + 32 + 1 + 2 + 8 + 1 + 1 + 32;
	bad[at] ^= 0x01;
	expect_refused(&lap, bad, len, ZILA_ESIG, "does not verify");
	/* truncated, and bytes after the end */
	expect_refused(&lap, cp, len - 1, ZILA_EFORMAT, "malformed");
	memcpy(bad, cp, len);
	bad[len] = 0;
	expect_refused(&lap, bad, len + 1, ZILA_EFORMAT, "malformed");
	/* another format version */
	memcpy(bad, cp, len);
	bad[8] = 9;
	expect_refused(&lap, bad, len, ZILA_EVERSION, "format");
	/* well signed, but not by an HQ device: the trust hook says no */
	struct zila_store_hooks hooks = { .checkpoint = refuse_all };
	zila_store_set_hooks(lap.s, &hooks);
	expect_refused(&lap, cp, len, ZILA_ECERT, "not an HQ device");
	struct zila_store_hooks none = { 0 };
	zila_store_set_hooks(lap.s, &none);
	/* a checkpoint whose rows name a table this replica lacks waits for the schema */
	assert_int_equal(zila_schema_change(hq.s, "CREATE TABLE z(id TEXT PRIMARY KEY, district_id TEXT)", "district_id",
					    NULL, &err),
			 0);
	assert_int_equal(zila_store_checkpoint_make(hq.s, "d1", &ci, &err), 0);
	free(cp);
	checkpoint_bytes(&hq, "d1", &cp, &len);
	expect_refused(&lap, cp, len, ZILA_ESCHEMA, "sync with HQ first");
	free(bad);
	free(cp);
	replica_free(&hq);
	replica_free(&lap);
}

static int64_t entries(struct replica *r)
{
	return count(r, "SELECT count(*) FROM zila_entries");
}

static bool keep_none(void *ctx, const struct zila_entry_info *e)
{
	(void)ctx;
	(void)e;
	return false;
}

/* A laptop keeps history_days of history: what a checkpoint covers and is older goes, the
 * rows stay, a replica that was away longer catches up from the checkpoint, and the tables
 * made again from the entries (a revocation's cut, a schema redo) start from it. */
static void test_prune(void **state)
{
	(void)state;
	struct replica hq, lap, away;
	struct zila_error err;
	struct zila_ckpt_info ci;
	struct zila_apply_stats st;
	replica_new(&hq, "hq4");
	replica_new(&lap, "lap4");
	replica_new(&away, "away4");
	assert_int_equal(zila_store_set_write_scope(lap.s, "d1"), 0);
	/* HQ keeps everything; a laptop 90 days unless told */
	assert_int_equal(zila_store_horizon_ms(hq.s), 0);
	assert_int_equal(zila_store_horizon_ms(lap.s), (int64_t)test_now_ms - 90ll * 86400000);
	/* away syncs once, early, and not again for more than the horizon */
	app(&hq, "INSERT INTO t VALUES ('z0', 'd1', 'early', 0, 'cz')");
	send_entries(&hq, &away);
	history(&hq, 10);
	send_entries(&hq, &lap);
	app(&lap, "UPDATE t SET v = 'lap' WHERE id = 'r05'");
	send_entries(&lap, &hq);
	assert_int_equal(zila_store_checkpoint_make(hq.s, "d1", &ci, &err), 0);
	uint8_t *cp;
	size_t len;
	checkpoint_bytes(&hq, "d1", &cp, &len);
	if (zila_store_checkpoint_apply(lap.s, zila_view_make(cp, len), NULL, &st, &err) != 0)
		fail_msg("%s", err.msg);
	free(cp);
	/* nothing is older than the horizon yet */
	size_t dropped = 99;
	assert_int_equal(zila_store_prune(lap.s, &dropped, &err), 0);
	assert_int_equal(dropped, 0);
	/* 100 days on, with history_days 30 */
	test_now_ms += 100ull * 86400000;
	assert_int_equal(zila_store_meta_set(lap.s, ZILA_META_HISTORY_DAYS, "30"), 0);
	int64_t before = entries(&lap);
	app(&hq, "UPDATE t SET v = 'later' WHERE id = 'r06'");
	send_entries(&hq, &lap);
	assert_int_equal(zila_store_prune(lap.s, &dropped, &err), 0);
	assert_true(dropped > 0);
	/* left: the org-wide partition (no checkpoint), d2's, and of d1 the edit after the
	 * checkpoint and each feed's head entry (the laptop's own edit: the seal dates its next
	 * entry after it) */
	assert_int_equal(entries(&lap), before + 1 - (int64_t)dropped);
	assert_int_equal(count(&lap, "SELECT count(*) FROM zila_entries e JOIN zila_feeds f ON f.id = e.feed"
				     " WHERE f.part = 'd1'"),
			 2);
	assert_same(&hq, &lap);
	/* a replica away longer than the horizon: its vector is behind what lap holds, so lap
	 * sends its checkpoint first, then the entries after it */
	struct zila_vector v;
	assert_int_equal(zila_store_vector(away.s, &v), 0);
	assert_int_equal(zila_store_checkpoint_needed(lap.s, &v, "d1", ZILA_CKPT_CHEAPER), 1);
	assert_int_equal(zila_store_checkpoint_needed(lap.s, &v, "d2", ZILA_CKPT_CHEAPER), 0);
	zila_vector_release(&v);
	checkpoint_bytes(&lap, "d1", &cp, &len);
	assert_int_equal(zila_store_checkpoint_apply(away.s, zila_view_make(cp, len), NULL, &st, &err), 0);
	free(cp);
	send_entries(&lap, &away);
	assert_same(&hq, &away);
	/* the tables made again from the entries held (a cut that removes nothing of d1) start
	 * from the checkpoint: the rows stay */
	struct replica other;
	replica_new(&other, "other4");
	app(&other, "INSERT INTO o VALUES ('y', 'from a device to be revoked')");
	send_entries(&other, &lap);
	assert_int_equal(count(&lap, "SELECT count(*) FROM o"), 2);
	uint8_t who[1][32];
	memcpy(who[0], zila_store_device_pk(other.s), 32);
	size_t ncut = 0;
	assert_int_equal(zila_store_cut(lap.s, (const uint8_t(*)[32])who, 1, keep_none, NULL, &ncut, &err), 0);
	assert_int_equal(ncut, 1);
	assert_int_equal(count(&lap, "SELECT count(*) FROM o"), 1);
	assert_same(&hq, &lap);
	replica_free(&other);
	replica_free(&hq);
	replica_free(&lap);
	replica_free(&away);
}

/* keep for the cut below: the revoked device's entries past its first are refused */
static const uint8_t *revoked_pk;
static bool keep_first(void *ctx, const struct zila_entry_info *e)
{
	(void)ctx;
	return memcmp(e->origin, revoked_pk, 32) != 0 || e->seq <= 1;
}

/* A revocation whose mark reaches into a checkpoint a laptop holds (it never held the
 * entries): the checkpoint goes, and with it the revoked device's rows; HQ, which holds every
 * entry, cuts them and checkpoints again, and the laptop that takes that checkpoint ends with
 * HQ's rows. */
static void test_cut_into_checkpoint(void **state)
{
	(void)state;
	struct replica hq, lap, dev;
	struct zila_error err;
	struct zila_ckpt_info ci;
	struct zila_apply_stats st;
	replica_new(&hq, "hq5");
	replica_new(&lap, "lap5");
	replica_new(&dev, "dev5");
	app(&hq, "INSERT INTO t VALUES ('h1', 'd1', 'hq', 1, 'ch')");
	app(&dev, "INSERT INTO t VALUES ('k1', 'd1', 'kept', 1, 'ck1')");
	app(&dev, "INSERT INTO t VALUES ('k2', 'd1', 'past the mark', 2, 'ck2')");
	app(&dev, "UPDATE t SET v = 'overwritten past the mark' WHERE id = 'k1'");
	send_entries(&dev, &hq);
	assert_int_equal(zila_store_checkpoint_make(hq.s, "d1", &ci, &err), 0);
	uint8_t *cp;
	size_t len;
	checkpoint_bytes(&hq, "d1", &cp, &len);
	assert_int_equal(zila_store_checkpoint_apply(lap.s, zila_view_make(cp, len), NULL, &st, &err), 0);
	free(cp);
	assert_int_equal(count(&lap, "SELECT count(*) FROM t WHERE id = 'k2'"), 1);
	/* the revocation: the device's entries past its first are refused everywhere */
	revoked_pk = zila_store_device_pk(dev.s);
	uint8_t who[1][32];
	memcpy(who[0], revoked_pk, 32);
	size_t ncut = 99;
	assert_int_equal(zila_store_cut(lap.s, (const uint8_t(*)[32])who, 1, keep_first, NULL, &ncut, &err), 0);
	assert_int_equal(ncut, 0); /* it held none of the entries */
	assert_int_equal(count(&lap, "SELECT count(*) FROM t WHERE v LIKE '%past the mark%'"), 0);
	assert_int_equal(count(&lap, "SELECT count(*) FROM zila_checkpoints"), 0);
	assert_int_equal(zila_store_cut(hq.s, (const uint8_t(*)[32])who, 1, keep_first, NULL, &ncut, &err), 0);
	assert_int_equal(ncut, 2);
	assert_int_equal(count(&hq, "SELECT count(*) FROM t WHERE v LIKE '%past the mark%'"), 0);
	assert_int_equal(count(&hq, "SELECT count(*) FROM t WHERE id = 'k1'"), 1);
	/* HQ's new checkpoint brings the laptop the rows that stand */
	assert_int_equal(zila_store_checkpoint_make(hq.s, "d1", &ci, &err), 0);
	checkpoint_bytes(&hq, "d1", &cp, &len);
	assert_int_equal(zila_store_checkpoint_apply(lap.s, zila_view_make(cp, len), NULL, &st, &err), 0);
	free(cp);
	send_entries(&hq, &lap);
	assert_same(&hq, &lap);
	assert_int_equal(count(&lap, "SELECT count(*) FROM t WHERE v LIKE '%past the mark%'"), 0);
	replica_free(&hq);
	replica_free(&lap);
	replica_free(&dev);
}

/* A replica of format 9 (no zila_checkpoints, no zila_feeds.base) is upgraded on open and
 * keeps its rows. */
static void test_upgrade_9(void **state)
{
	(void)state;
	struct replica r;
	struct zila_error err;
	uint8_t h0[32], h1[32];
	replica_new(&r, "up9");
	app(&r, "INSERT INTO t VALUES ('a', 'd1', 'x', 1, 'c')");
	hash_of(&r, h0);
	zila_store_free(r.s);
	r.s = NULL;
	assert_int_equal(sqlite3_exec(r.app,
				      "DROP TABLE zila_checkpoints; ALTER TABLE zila_feeds DROP COLUMN base;"
				      " UPDATE zila_meta SET v = '9' WHERE k = 'store_version'",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(zila_store_open(&r.s, r.dir, &err), 0);
	zila_store_set_clock(r.s, test_clock, NULL);
	assert_int_equal(count(&r, "SELECT v FROM zila_meta WHERE k = 'store_version'"), 10);
	assert_int_equal(count(&r, "SELECT count(*) FROM pragma_table_info('zila_feeds') WHERE name = 'base'"), 1);
	hash_of(&r, h1);
	assert_memory_equal(h0, h1, 32);
	struct zila_ckpt_info ci;
	assert_int_equal(zila_store_checkpoint_make(r.s, "d1", &ci, &err), 0);
	assert_int_equal(ci.nrows, 1);
	replica_free(&r);
}

/* One exchange of a device with HQ that completed (both ways), as a live session ends it:
 * HQ notes the checkpoint of d1 it kept at the start. */
static void exchange(struct replica *hq, struct replica *dev)
{
	uint64_t kept = 0;
	uint8_t *cp = NULL;
	size_t cplen = 0;
	struct zila_ckpt_info ci;
	if (zila_store_checkpoint_get(hq->s, "d1", &cp, &cplen) == 0) {
		assert_int_equal(zila_checkpoint_verify(zila_view_make(cp, cplen), &ci), 0);
		kept = ci.hlc;
		free(cp);
	}
	send_entries(dev, hq);
	send_entries(hq, dev);
	if (kept != 0)
		assert_int_equal(zila_store_ack_note(hq->s, zila_store_device_pk(dev->s), "d1", kept), 0);
}

static size_t hq_collect(struct replica *hq, struct replica **devs, size_t n)
{
	uint8_t keys[8][32];
	struct zila_holders h = { "d1", (const uint8_t(*)[32])keys, n };
	struct zila_error err;
	size_t dropped = 0;
	for (size_t i = 0; i < n; i++)
		memcpy(keys[i], zila_store_device_pk(devs[i]->s), 32);
	assert_int_equal(zila_store_collect(hq->s, &h, 1, &dropped, &err), 0);
	return dropped;
}

#define TOMBS "SELECT count(*) FROM zila_rows r WHERE NOT EXISTS (SELECT 1 FROM t WHERE t.id = r.pk)" \
	      " AND NOT EXISTS (SELECT 1 FROM zila_parked p WHERE p.pk = r.pk)"

/* Deleted rows' registers are collected at HQ once every device that may hold the district
 * has acknowledged a checkpoint covering them, never before (a device that has not holds it
 * back, and its older concurrent upsert still loses); a laptop merging a later checkpoint
 * that no longer carries them drops them too; entries they covered, sent again, change
 * nothing; every replica ends with the same rows. */
static void test_collect(void **state)
{
	(void)state;
	struct replica hq, a, b, full, late;
	struct zila_error err;
	struct zila_ckpt_info ci;
	struct zila_apply_stats st;
	char sql[200];
	replica_new(&hq, "chq");
	replica_new(&a, "ca");
	replica_new(&b, "cb");
	replica_new(&full, "cfull");
	replica_new(&late, "clate");
	for (int i = 0; i < 10; i++) {
		snprintf(sql, sizeof(sql), "INSERT INTO t VALUES ('k%d', 'd1', 'v', %d, 'c%d')", i, i, i);
		app(&hq, sql);
	}
	send_entries(&hq, &a);
	send_entries(&hq, &b);
	send_entries(&hq, &late); /* it holds the inserts only, and is away from now on */
	/* b, offline, upserts k2 before HQ deletes it: older, concurrent */
	app(&b, "INSERT OR REPLACE INTO t VALUES ('k2', 'd1', 'b was here', 2, 'c2')");
	app(&hq, "DELETE FROM t WHERE id IN ('k0', 'k1', 'k2', 'k3', 'k4')");
	assert_int_equal(count(&hq, TOMBS), 5);
	assert_int_equal(zila_store_checkpoint_make(hq.s, "d1", &ci, &err), 0);
	struct replica *both[] = { &a, &b };
	/* nobody has acknowledged: nothing goes */
	assert_int_equal(hq_collect(&hq, both, 2), 0);
	/* a completes two exchanges (what it sealed during the first is at HQ after the second) */
	exchange(&hq, &a);
	uint64_t acked = 1;
	assert_int_equal(zila_store_ack_get(hq.s, zila_store_device_pk(a.s), "d1", &acked), 0);
	assert_int_equal(acked, 0);
	exchange(&hq, &a);
	assert_int_equal(zila_store_ack_get(hq.s, zila_store_device_pk(a.s), "d1", &acked), 0);
	assert_int_equal(acked, ci.hlc);
	/* b has not: it holds collection back */
	assert_int_equal(hq_collect(&hq, both, 2), 0);
	assert_int_equal(count(&hq, TOMBS), 5);
	/* with a alone as the district's device, they would go */
	/* b comes back: its older upsert loses to the delete (the tombstone is still there) */
	exchange(&hq, &b);
	assert_int_equal(count(&hq, "SELECT count(*) FROM t WHERE id = 'k2'"), 0);
	assert_int_equal(hq_collect(&hq, both, 2), 0); /* b's first exchange is only pending */
	exchange(&hq, &b);
	/* k2's tombstone holds b's upsert, which the checkpoint does not cover: it stays */
	assert_int_equal(hq_collect(&hq, both, 2), 4);
	assert_int_equal(count(&hq, TOMBS), 1);
	/* a newer checkpoint covers it; acknowledged by both, it goes too */
	assert_int_equal(zila_store_checkpoint_make(hq.s, "d1", &ci, &err), 0);
	for (int k = 0; k < 2; k++) {
		exchange(&hq, &a);
		exchange(&hq, &b);
	}
	assert_int_equal(hq_collect(&hq, both, 2), 1);
	assert_int_equal(count(&hq, TOMBS), 0);
	/* the heads of checkpoints no device can acknowledge any more are gone: the one both
	 * acknowledged (pending ones are the same) is all HQ keeps */
	assert_int_equal(count(&hq, "SELECT count(*) FROM zila_ckpt_heads"), 1);
	assert_int_equal(count(&hq, "SELECT count(*) FROM t"), 5);
	/* the laptops drop them when a checkpoint covering them no longer carries them */
	assert_int_equal(count(&a, TOMBS), 5);
	assert_int_equal(zila_store_checkpoint_make(hq.s, "d1", &ci, &err), 0);
	uint8_t *cp;
	size_t cplen;
	checkpoint_bytes(&hq, "d1", &cp, &cplen);
	assert_int_equal(zila_store_checkpoint_apply(a.s, zila_view_make(cp, cplen), NULL, &st, &err), 0);
	assert_int_equal(st.ncollected, 5);
	assert_int_equal(count(&a, TOMBS), 0);
	assert_same(&hq, &a);
	/* the old inserts again, from a replica that was away: already covered, nothing changes */
	assert_int_equal(send_entries(&late, &hq), 0);
	assert_int_equal(send_entries(&late, &a), 0);
	struct zila_vector none = { 0 };
	struct held h = { 0 };
	assert_int_equal(zila_store_entries_since(late.s, &none, NULL, NULL, collect, &h), 0);
	assert_true(h.n >= 10);
	assert_int_equal(zila_store_apply(hq.s, h.v, h.n, &st, &err), 0);
	assert_int_equal(st.napplied, 0);
	assert_int_equal(zila_store_apply(a.s, h.v, h.n, &st, &err), 0);
	assert_int_equal(st.napplied, 0);
	for (size_t i = 0; i < h.n; i++)
		free((void *)h.v[i].p);
	free(h.v);
	assert_int_equal(count(&hq, "SELECT count(*) FROM t WHERE id IN ('k0', 'k1', 'k2', 'k3', 'k4')"), 0);
	assert_int_equal(count(&a, "SELECT count(*) FROM t WHERE id IN ('k0', 'k1', 'k2', 'k3', 'k4')"), 0);
	/* the away replica catches up from the checkpoint: its old rows go, as HQ's did */
	assert_int_equal(zila_store_checkpoint_apply(late.s, zila_view_make(cp, cplen), NULL, &st, &err), 0);
	send_entries(&hq, &late);
	send_entries(&hq, &full);
	send_entries(&b, &full);
	assert_same(&hq, &late);
	assert_same(&hq, &full); /* one that took every entry and keeps every tombstone */
	assert_same(&hq, &b);
	/* The rows made again from the entries held (a revocation's cut): the away replica holds
	 * the old inserts, not the delete (its checkpoint covers it): what the checkpoint covers
	 * stands for them, and the deleted rows do not come back. */
	struct replica x;
	replica_new(&x, "cx");
	app(&x, "INSERT INTO t VALUES ('x1', 'd1', 'from a device to be revoked', 1, 'cx1')");
	send_entries(&x, &late);
	assert_int_equal(count(&late, "SELECT count(*) FROM t WHERE id = 'x1'"), 1);
	uint8_t who[1][32];
	memcpy(who[0], zila_store_device_pk(x.s), 32);
	size_t ncut = 0;
	assert_int_equal(zila_store_cut(late.s, (const uint8_t(*)[32])who, 1, keep_none, NULL, &ncut, &err), 0);
	assert_int_equal(ncut, 1);
	assert_int_equal(count(&late, "SELECT count(*) FROM t WHERE id IN ('k0', 'k1', 'k2', 'k3', 'k4', 'x1')"), 0);
	assert_same(&hq, &late);
	replica_free(&x);
	free(cp);
	replica_free(&hq);
	replica_free(&a);
	replica_free(&b);
	replica_free(&full);
	replica_free(&late);
}

/* After mass deletes and their collection, a laptop's replica is compacted when that pays:
 * its file shrinks, the rows, their rowids and the content hash stay, a second compaction
 * does not pay, and the replica syncs on as before. */
static void test_compact(void **state)
{
	(void)state;
	struct replica hq, a;
	struct zila_error err;
	struct zila_ckpt_info ci;
	struct zila_apply_stats st;
	struct zila_compact_info before, info;
	uint8_t h1[32], h2[32];
	replica_new(&hq, "khq");
	replica_new(&a, "ka");
	app(&hq, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4000)"
		 " INSERT INTO t SELECT 'm' || i, 'd1', hex(randomblob(150)), i, 'c' || i FROM n");
	send_entries(&hq, &a);
	app(&hq, "DELETE FROM t WHERE w % 4 <> 0");
	assert_int_equal(zila_store_checkpoint_make(hq.s, "d1", &ci, &err), 0);
	exchange(&hq, &a);
	exchange(&hq, &a);
	struct replica *devs[] = { &a };
	assert_int_equal(hq_collect(&hq, devs, 1), 3000);
	assert_int_equal(zila_store_checkpoint_make(hq.s, "d1", &ci, &err), 0);
	uint8_t *cp;
	size_t cplen;
	checkpoint_bytes(&hq, "d1", &cp, &cplen);
	assert_int_equal(zila_store_checkpoint_apply(a.s, zila_view_make(cp, cplen), NULL, &st, &err), 0);
	free(cp);
	assert_int_equal(st.ncollected, 3000);
	assert_int_equal(count(&a, TOMBS), 0);
	/* and the history the checkpoint covers goes past the laptop's horizon */
	size_t dropped = 0;
	assert_int_equal(zila_store_meta_set(a.s, ZILA_META_HISTORY_DAYS, "1"), 0);
	test_now_ms += 2 * 86400000ull;
	assert_int_equal(zila_store_prune(a.s, &dropped, &err), 0);
	assert_true(dropped >= 2);
	/* the store's checkpoint thread may be copying the WAL back just now: busy, then done */
	int busy = 1;
	for (int i = 0; busy && i < 500; i++)
		if ((busy = (int)count(&a, "PRAGMA wal_checkpoint(TRUNCATE)")) != 0)
			sqlite3_sleep(10);
	assert_int_equal(busy, 0);
	int64_t pages = count(&a, "PRAGMA page_count"), rowids = count(&a, "SELECT sum(rowid) FROM t");
	assert_int_equal(zila_store_compact_measure(a.s, &before, &err), 0);
	assert_true(zila_store_compact_pays(&before));
	/* another program's table with neither primary key nor index, holding rows: VACUUM
	 * would number them again (1, 3 -> 1, 2), so none until it has an index */
	app(&a, "CREATE TABLE notes(x); INSERT INTO notes VALUES (1), (2), (3); DELETE FROM notes WHERE x = 2");
	assert_int_equal(zila_store_compact(a.s, false, &info, &err), ZILA_ESCHEMA);
	assert_false(info.compacted);
	assert_non_null(strstr(err.msg, "'notes'"));
	app(&a, "CREATE INDEX notes_x ON notes(x)");
	hash_of(&a, h1);
	assert_int_equal(zila_store_compact(a.s, false, &info, &err), 0);
	assert_true(info.compacted);
	print_message("compacted: %llu -> %llu bytes (%llu free, %llu unused) in %llu ms\n",
		      (unsigned long long)info.file_bytes, (unsigned long long)info.after_bytes,
		      (unsigned long long)info.free_bytes, (unsigned long long)info.unused_bytes,
		      (unsigned long long)info.ms);
	assert_int_equal(info.file_bytes, before.file_bytes);
	assert_true(info.after_bytes * 2 < info.file_bytes);
	assert_true(count(&a, "PRAGMA page_count") * 2 < pages);
	hash_of(&a, h2);
	assert_memory_equal(h1, h2, 32);
	assert_same(&hq, &a);
	assert_int_equal(count(&a, "SELECT sum(rowid) FROM t"), rowids);
	assert_int_equal(count(&a, "SELECT count(*) FROM t"), 1000);
	assert_int_equal(count(&a, "SELECT sum(rowid) FROM notes"), 4);
	/* compacted, it does not pay again */
	assert_int_equal(zila_store_compact(a.s, false, &info, &err), 0);
	assert_false(info.compacted);
	/* and it syncs both ways */
	app(&hq, "INSERT INTO t VALUES ('new', 'd1', 'after', 1, 'cnew'); DELETE FROM t WHERE id = 'm4'");
	/* a new row on the laptop is found past the high-water rowid, which compaction kept */
	app(&a, "UPDATE t SET v = 'from a' WHERE id = 'm8'; INSERT INTO t VALUES ('a1', 'd1', 'from a', 3, 'ca1')");
	exchange(&hq, &a);
	assert_same(&hq, &a);
	assert_int_equal(count(&hq, "SELECT count(*) FROM t WHERE v = 'from a' OR id = 'new'"), 3);
	replica_free(&hq);
	replica_free(&a);
}

/* A replica's clock: the test's, moved by the int64_t ms ctx points to. */
static uint64_t skewed_clock(void *ctx)
{
	return test_now_ms + (uint64_t)*(const int64_t *)ctx;
}

/* The keys a replica shows of k1..k4, as one string ("k1 k3 ..."). */
static void shown(struct replica *r, char *out, size_t n)
{
	sqlite3_stmt *st;
	out[0] = '\0';
	assert_int_equal(sqlite3_prepare_v2(r->app, "SELECT id FROM t WHERE id IN ('k1', 'k2', 'k3', 'k4') ORDER BY id",
					    -1, &st, NULL),
			 SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW)
		snprintf(out + strlen(out), n - strlen(out), "%s ", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
}

/* A delete dated more than a day past the clocks of the replicas that later insert its key
 * again (a laptop whose clock was ahead deleted it; they follow its date only a day ahead),
 * collected before they do so: at HQ (zila_store_collect), at a laptop that held the
 * tombstone, at one that still showed the row, and at a clone that never held it (the last
 * three from a checkpoint that no longer carries it). Each re-insert is causally after the
 * delete, so it wins everywhere, also at a replica that keeps the tombstone. */
static void test_collect_skew(void **state)
{
	(void)state;
	struct replica hq, a, b, c, d, e;
	struct replica *all[] = { &hq, &a, &b, &c, &d, &e };
	int64_t none = 0, ahead = 30ll * 3600 * 1000;
	struct zila_error err;
	struct zila_ckpt_info ci;
	struct zila_apply_stats st;
	char want[64], got[64];
	replica_new(&hq, "shq");
	replica_new(&a, "sa");
	replica_new(&b, "sb");
	replica_new(&c, "sc");
	replica_new(&d, "sd");
	replica_new(&e, "se");
	for (size_t i = 0; i < 6; i++)
		zila_store_set_clock(all[i]->s, skewed_clock, all[i] == &a ? &ahead : &none);
	app(&hq, "INSERT INTO t VALUES ('k1', 'd1', 'v', 1, 'c1'), ('k2', 'd1', 'v', 2, 'c2'),"
		 " ('k3', 'd1', 'v', 3, 'c3'), ('k4', 'd1', 'v', 4, 'c4'), ('k5', 'd1', 'v', 5, 'c5')");
	for (size_t i = 1; i < 5; i++)
		send_entries(&hq, all[i]);
	/* a, its clock 30 hours ahead, deletes them; d is away from now on (it leaves the
	 * holders, or is away past the horizon) and never takes the delete */
	app(&a, "DELETE FROM t WHERE id IN ('k1', 'k2', 'k3', 'k4')");
	send_entries(&a, &hq);
	assert_int_equal(zila_store_checkpoint_make(hq.s, "d1", &ci, &err), 0);
	struct replica *holders[] = { &a, &b, &c };
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < 3; i++)
			exchange(&hq, holders[i]);
	assert_int_equal(count(&c, TOMBS), 4);
	assert_int_equal(hq_collect(&hq, holders, 3), 4);
	/* the checkpoint the laptops merge no longer carries them */
	uint8_t *cp;
	size_t cplen;
	assert_int_equal(zila_store_checkpoint_make(hq.s, "d1", &ci, &err), 0);
	checkpoint_bytes(&hq, "d1", &cp, &cplen);
	assert_int_equal(zila_store_checkpoint_apply(c.s, zila_view_make(cp, cplen), NULL, &st, &err), 0);
	assert_int_equal(st.ncollected, 4);
	assert_int_equal(zila_store_checkpoint_apply(d.s, zila_view_make(cp, cplen), NULL, &st, &err), 0);
	assert_int_equal(st.ncollected, 4);
	assert_int_equal(count(&d, "SELECT count(*) FROM t WHERE id = 'k3'"), 0);
	assert_int_equal(zila_store_checkpoint_apply(e.s, zila_view_make(cp, cplen), NULL, &st, &err), 0);
	free(cp);
	/* each inserts a collected key again, its clock more than a day behind the delete */
	app(&hq, "INSERT INTO t VALUES ('k1', 'd1', 'again at HQ', 1, 'c1')");
	app(&c, "INSERT INTO t VALUES ('k2', 'd1', 'again at c', 2, 'c2')");
	app(&d, "INSERT INTO t VALUES ('k3', 'd1', 'again at d', 3, 'c3')");
	app(&e, "INSERT INTO t VALUES ('k4', 'd1', 'again at e', 4, 'c4')");
	assert_int_equal(count(&b, TOMBS), 4); /* b keeps the tombstones */
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < 6; i++)
			for (size_t j = 0; j < 6; j++)
				if (i != j)
					send_entries(all[i], all[j]);
	shown(&hq, want, sizeof(want));
	assert_string_equal(want, "k1 k2 k3 k4 ");
	for (size_t i = 1; i < 6; i++) {
		shown(all[i], got, sizeof(got));
		assert_string_equal(got, want);
		assert_same(&hq, all[i]);
	}
	for (size_t i = 0; i < 6; i++)
		replica_free(all[i]);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	if (zila_os_mkdtemp(base) != 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clone),     cmocka_unit_test(test_concurrent), cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_prune),     cmocka_unit_test(test_cut_into_checkpoint),
		cmocka_unit_test(test_upgrade_9), cmocka_unit_test(test_collect), cmocka_unit_test(test_collect_skew),
		cmocka_unit_test(test_compact),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	(void)!zila_os_rmtree(base);
	return r;
}
