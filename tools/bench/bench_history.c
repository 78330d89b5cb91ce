/* Clone cost by state, not history (#20 part 2): a district of ROWS people cloned fresh, and
 * the same rows edited 10 times each and checkpointed at HQ, cloned by a new laptop over
 * encrypted loopback TCP (one process per side); and a laptop that held the whole history,
 * after it takes the checkpoint and drops what is older than its horizon, against the plain
 * table's size; then that laptop after HQ deletes half the rows, before and after their
 * registers are collected.
 *   bench_history [ROWS]   (default 100,000); goals: clone <= 1.2x fresh (bytes and seconds),
 *   laptop replica <= 2x the plain table */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_pair.h"

#define EDITS 10

/* An HQ replica at dir with the district's rows (edited `edits` more times, each round
 * sealed), a district laptop enrolled at lap. */
static void make_hq(const char *dir, const char *lap, size_t n, int edits, bool checkpoint)
{
	struct zila_error err;
	char path[300];
	zila_error_clear(&err);
	if (zila_store_create(dir, &err) != 0 || zila_store_create(lap, &err) != 0)
		die("create", err.msg);
	struct zila_store *h = open_store(dir, NULL), *l = open_store(lap, NULL);
	struct zila_buf file;
	zila_buf_init(&file, 65536);
	if (zila_trust_org_init(h, "Bench", "pass", 4, &zila_pwcost_min, NOW_S, &err) != 0 ||
	    zila_trust_issue(h, zila_store_device_pk(l), "laptop", ZILA_ROLE_DISTRICT, "d1", NOW_S, 365, &file, &err) != 0 ||
	    zila_trust_install_cert(l, zila_buf_view(&file), NOW_S, &err) != 0)
		die("enrol", err.msg);
	zila_buf_release(&file);
	zila_store_free(l);
	snprintf(path, sizeof(path), "%s/zila.db", dir);
	sqlite3 *db;
	if (sqlite3_open(path, &db) != SQLITE_OK)
		die("open", path);
	db_exec(db, "INSERT INTO states(id, name) VALUES ('s1', 'Bihar')");
	db_exec(db, "INSERT INTO districts(id, state_id, name) VALUES ('d1', 's1', 'Patna'), ('d2', 's1', 'Gaya')");
	(void)insert_people(db, 0, n, "INSERT");
	if (zila_store_seal(h, NULL, &err) != 0)
		die("seal", err.msg);
	for (int k = 1; k <= edits; k++) {
		char sql[200];
		/* every member's phone and address again: a drive's worth of corrections */
		snprintf(sql, sizeof(sql),
			 "UPDATE people SET phone = printf('8%%02d%%07d', %d, rowid), address = address || ' /%d'", k, k);
		db_exec(db, sql);
		if (zila_store_seal(h, NULL, &err) != 0)
			die("seal", err.msg);
	}
	struct zila_ckpt_info ci;
	if (checkpoint && zila_store_checkpoint_make(h, "d1", &ci, &err) != 0)
		die("checkpoint", err.msg);
	sqlite3_close(db);
	zila_store_free(h);
	malloc_trim(0);
}

static uint64_t two_days_on(void *ctx)
{
	return clock_ms(ctx) + 2ull * 86400000;
}

/* A figure of a file's pages in MiB, read after its WAL is copied back (query: one integer). */
static double pages_mib(const char *path, const char *query)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	double b = 0;
	if (sqlite3_open(path, &db) != SQLITE_OK)
		die("open", path);
	db_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
	if (sqlite3_prepare_v2(db, query, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		b = (double)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return b / 1048576;
}

/* The replica's bytes in use (pages not on the free list), and the plain table's. */
static double used_mib(const char *path)
{
	return pages_mib(path, "SELECT (page_count - freelist_count) * page_size FROM pragma_page_count,"
			       " pragma_freelist_count, pragma_page_size");
}

/* The laptop's people table as the schema makes it (its columns and indexes), in db. */
static void plain_schema(sqlite3 *db, const char *lap)
{
	sqlite3_stmt *st;
	char sql[600];
	snprintf(sql, sizeof(sql), "ATTACH '%s/zila.db' AS lap", lap);
	db_exec(db, sql);
	if (sqlite3_prepare_v2(db, "SELECT sql FROM lap.sqlite_schema WHERE tbl_name = 'people' AND sql IS NOT NULL"
				   " AND type IN ('table', 'index')"
				   " ORDER BY type = 'index'", -1, &st, NULL) != SQLITE_OK)
		die("schema", sqlite3_errmsg(db));
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *q = (const char *)sqlite3_column_text(st, 0);
		if (strstr(q, "REFERENCES") != NULL) /* the references' tables are not here: no checks */
			db_exec(db, "PRAGMA foreign_keys = OFF");
		db_exec(db, q);
	}
	sqlite3_finalize(st);
}

/* The rows the laptop at lap shows (their state after the edits) in a plain SQLite file, in
 * the laptop's people table as the schema makes it, without zila, written fresh: what the
 * replica is compared with. */
static double plain_of(const char *lap, const char *out)
{
	sqlite3 *db;
	if (sqlite3_open(out, &db) != SQLITE_OK)
		die("open", out);
	plain_schema(db, lap);
	db_exec(db, "INSERT INTO main.people SELECT * FROM lap.people ORDER BY rowid");
	db_exec(db, "DETACH lap");
	sqlite3_close(db);
	return used_mib(out);
}

/* The same table without zila that went through the same history as the district at HQ: the
 * same inserts, the same rounds of edits (each its own transaction), the same deletes, and no
 * VACUUM: it keeps the pages the deletes half-emptied, as the replica does. */
static void plain_history(const char *lap, const char *out, size_t n)
{
	sqlite3 *db;
	char sql[200];
	if (sqlite3_open(out, &db) != SQLITE_OK)
		die("open", out);
	plain_schema(db, lap);
	db_exec(db, "DETACH lap");
	(void)insert_people(db, 0, n, "INSERT");
	for (int k = 1; k <= EDITS - 1; k++) {
		snprintf(sql, sizeof(sql),
			 "UPDATE people SET phone = printf('8%%02d%%07d', %d, rowid), address = address || ' /%d'", k, k);
		db_exec(db, sql);
	}
	db_exec(db, "DELETE FROM people WHERE rowid % 2 = 0");
	sqlite3_close(db);
}

/* The file's size in MiB (page_count x page_size, its WAL copied back). */
static double file_mib(const char *path)
{
	return pages_mib(path, "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size");
}

/* Where a replica's pages go (ZILA_BENCH_PAGES=1): the largest tables and indexes. */
static void pages_of(const char *what, const char *path)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	if (getenv("ZILA_BENCH_PAGES") == NULL || sqlite3_open(path, &db) != SQLITE_OK)
		return;
	if (sqlite3_prepare_v2(db, "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT 8", -1, &st,
			       NULL) == SQLITE_OK)
		while (sqlite3_step(st) == SQLITE_ROW)
			printf("  %s: %s %.2f MiB\n", what, sqlite3_column_text(st, 0),
			       (double)sqlite3_column_int64(st, 1) / 1048576);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* The share of the replica at dir that is free or part-empty pages (what compaction gives
 * back; it pays from ZILA_COMPACT_SHARE_PCT), in percent. */
static double slack_of(const char *dir)
{
	struct zila_compact_info ci;
	struct zila_error err;
	struct zila_store *s = open_store(dir, NULL);
	if (zila_store_compact_measure(s, &ci, &err) != 0)
		die("measure", err.msg);
	zila_store_free(s);
	return ci.file_bytes ? 100.0 * (double)(ci.free_bytes + ci.unused_bytes) / (double)ci.file_bytes : 0;
}

static int64_t entries_of(const char *path)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t n = -1;
	if (sqlite3_open(path, &db) != SQLITE_OK)
		die("open", path);
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM zila_entries", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

static int64_t tombstones_of(const char *path)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t n = -1;
	if (sqlite3_open(path, &db) != SQLITE_OK)
		die("open", path);
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM zila_rows r WHERE NOT EXISTS (SELECT 1 FROM zila_parked p"
				   " WHERE p.tid = r.tid AND p.pk = r.pk)", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* The replica's size once compacted (VACUUM INTO a copy): its pages, without those a
 * deleted half of the rows left part-empty. */
static double compact_mib(const char *path, const char *tmp)
{
	sqlite3 *db;
	char sql[400];
	unlink(tmp);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		die("open", path);
	snprintf(sql, sizeof(sql), "VACUUM INTO '%s'", tmp);
	db_exec(db, sql);
	sqlite3_close(db);
	double m = used_mib(tmp);
	unlink(tmp);
	return m;
}

static uint64_t days_on(void *ctx)
{
	return clock_ms(ctx) + (uint64_t)(uintptr_t)ctx * 86400000;
}

/* The laptop (after the horizon above) sees HQ delete half the district's rows; it takes
 * that, then the checkpoint after it, and drops its history past the horizon: its size with
 * the deleted rows' registers (before collection); then the laptop has acknowledged the
 * checkpoint at HQ (two completed sessions, noted as the session notes them), HQ collects,
 * makes its next checkpoint, and the laptop takes it and drops what it covers and no longer
 * carries (after collection); then compacted (zila_store_compact, as its daemon does hourly).
 * Against the plain table of the rows it shows, written fresh, and the same table that went
 * through the same history without zila. */
static void deletes(const char *hq, const char *lap, const char *base, size_t n)
{
	struct zila_error err;
	struct result r, rh;
	struct zila_ckpt_info ci;
	char path[300], db_path[300];
	size_t dropped = 0, collected = 0;
	snprintf(db_path, sizeof(db_path), "%s/zila.db", hq);
	sqlite3 *db;
	if (sqlite3_open(db_path, &db) != SQLITE_OK)
		die("open", db_path);
	db_exec(db, "DELETE FROM people WHERE rowid % 2 = 0");
	sqlite3_close(db);
	struct zila_store *h = open_store(hq, NULL);
	zila_store_set_clock(h, days_on, (void *)(uintptr_t)3);
	if (zila_store_seal(h, NULL, &err) != 0 || zila_store_checkpoint_make(h, "d1", &ci, &err) != 0)
		die("checkpoint", err.msg);
	zila_store_free(h);
	sync_pair(hq, lap, &r, &rh);
	struct zila_store *l = open_store(lap, NULL);
	zila_store_set_clock(l, days_on, (void *)(uintptr_t)5);
	if (zila_store_prune(l, &dropped, &err) != 0)
		die("prune", err.msg);
	uint8_t lap_pk[32];
	memcpy(lap_pk, zila_store_device_pk(l), 32);
	zila_store_free(l);
	snprintf(path, sizeof(path), "%s/zila.db", lap);
	double before = used_mib(path);
	int64_t tbefore = tombstones_of(path);
	snprintf(db_path, sizeof(db_path), "%s/compact.db", base);
	double cbefore = compact_mib(path, db_path);
	h = open_store(hq, NULL);
	zila_store_set_clock(h, days_on, (void *)(uintptr_t)5);
	for (int k = 0; k < 2; k++)
		if (zila_store_ack_note(h, lap_pk, "d1", ci.hlc) != 0)
			die("ack", "cannot note");
	if (zila_trust_collect(h, &collected, &err) != 0 || zila_store_checkpoint_make(h, "d1", &ci, &err) != 0)
		die("collect", err.msg);
	zila_store_free(h);
	sync_pair(hq, lap, &r, &rh);
	double after = used_mib(path);
	int64_t tafter = tombstones_of(path);
	double cafter = compact_mib(path, db_path);
	snprintf(path, sizeof(path), "%s/plain-deleted.db", base);
	double pd = plain_of(lap, path);
	printf("laptop after %zu deletes past the horizon: %.1f MiB with their registers (%lld deleted rows kept); after HQ"
	       " collected %zu and the laptop took its next checkpoint: %.1f MiB (%lld kept); the plain table of its rows"
	       " %.1f MiB: %.2fx before, %.2fx after\n",
	       n / 2, before, (long long)tbefore, collected, after, (long long)tafter, pd, before / pd, after / pd);
	printf("the same compacted (VACUUM INTO a copy: no part-empty pages the deletes left): %.1f MiB before, %.1f MiB"
	       " after collection: %.2fx and %.2fx the plain table\n",
	       cbefore, cafter, cbefore / pd, cafter / pd);
	/* the plain table with the same history, and the laptop compacted as its daemon does */
	char ph[300];
	snprintf(ph, sizeof(ph), "%s/plain-history.db", base);
	plain_history(lap, ph, n);
	double phu = used_mib(ph), phf = file_mib(ph), pdf = file_mib(path);
	snprintf(path, sizeof(path), "%s/zila.db", lap);
	double af = file_mib(path);
	printf("plain tables: fresh %.1f MiB in use, %.1f MiB file; with the same history (inserts, %d rounds of edits,"
	       " the deletes; not vacuumed) %.1f MiB in use, %.1f MiB file\n",
	       pd, pdf, EDITS - 1, phu, phf);
	printf("laptop after collection: %.1f MiB in use, %.1f MiB file: %.2fx / %.2fx the fresh plain table, %.2fx /"
	       " %.2fx the one with the same history (in use / file)\n",
	       after, af, after / pd, af / pdf, after / phu, af / phf);
	struct zila_compact_info ci2;
	l = open_store(lap, NULL);
	double t0 = now();
	if (zila_store_compact_measure(l, &ci2, &err) != 0)
		die("measure", err.msg);
	double measure_ms = (now() - t0) * 1000;
	if (zila_store_compact(l, false, &ci2, &err) != 0)
		die("compact", err.msg);
	zila_store_free(l);
	double ku = used_mib(path), kf = file_mib(path);
	printf("laptop compacted (zila_store_compact: %s, %.0f%% of its file free or part-empty; measuring %.0f ms,"
	       " VACUUM and emptying the WAL %llu ms): %.1f MiB in use, %.1f MiB file: %.2fx / %.2fx the fresh plain table, %.2fx / %.2fx the"
	       " one with the same history (goal <= 2x)%s\n",
	       ci2.compacted ? "it paid" : "it did not pay",
	       ci2.file_bytes ? 100.0 * (double)(ci2.free_bytes + ci2.unused_bytes) / (double)ci2.file_bytes : 0,
	       measure_ms, (unsigned long long)ci2.ms, ku, kf, ku / pd, kf / pdf, ku / phu, kf / phf,
	       ku / pd <= 2 && kf / pdf <= 2 ? "" : "  ** over the goal **");
}

/* --- one side of a sync, blocking on a socket -------------------------------------- */

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 100000;
	char base[128], hq1[160], lap1[160], hq2[160], lap2[160], lap3[160], plain[160], path[300];
	snprintf(base, sizeof(base), "%s/zila-bench-history-XXXXXX", getenv("ZILA_BENCH_DIR") ? getenv("ZILA_BENCH_DIR") : "/tmp");
	if (sodium_init() < 0 || mkdtemp(base) == NULL)
		die("setup", "tmp");
	zila_log_set_sink(NULL, NULL, ZILA_LOG_ERROR);
	snprintf(hq1, sizeof(hq1), "%s/hq-fresh", base);
	snprintf(lap1, sizeof(lap1), "%s/lap-fresh", base);
	snprintf(hq2, sizeof(hq2), "%s/hq-edited", base);
	snprintf(lap2, sizeof(lap2), "%s/lap-edited", base);
	snprintf(lap3, sizeof(lap3), "%s/lap-long", base);
	snprintf(plain, sizeof(plain), "%s/plain.db", base);
	printf("== bench_history: %zu people rows in one district, fresh and edited %d times each, encrypted loopback TCP\n",
	       n, EDITS);
	sqlite3 *db;
	if (sqlite3_open(plain, &db) != SQLITE_OK)
		die("open", plain);
	db_exec(db, "CREATE TABLE people(id TEXT PRIMARY KEY, district_id TEXT NOT NULL, name TEXT NOT NULL,"
		    " name_local TEXT, phone TEXT, gender TEXT, birth_year INTEGER, address TEXT)");
	(void)insert_people(db, 0, n, "INSERT");
	sqlite3_close(db);

	struct result f, fh, e, eh;
	make_hq(hq1, lap1, n, 0, false);
	sync_pair(hq1, lap1, &f, &fh);
	make_hq(hq2, lap2, n, EDITS - 1, true);
	sync_pair(hq2, lap2, &e, &eh);
	double rb = (double)(e.rx - e.rx_hs) / (double)(f.rx - f.rx_hs), rs = e.total_s / f.total_s;
	printf("clone fresh:  %.2f s, %.1f MiB received, %llu entries\n", f.total_s, (double)(f.rx - f.rx_hs) / 1048576,
	       (unsigned long long)f.entries_received);
	printf("clone edited: %.2f s, %.1f MiB received, %llu entries after %llu checkpoint(s)\n", e.total_s,
	       (double)(e.rx - e.rx_hs) / 1048576, (unsigned long long)e.entries_received,
	       (unsigned long long)e.ckpts_applied);
	printf("ratio edited/fresh: %.2fx bytes, %.2fx seconds (goal <= 1.2x both)%s\n", rb, rs,
	       rb <= 1.2 && rs <= 1.2 ? "" : "  ** over the goal **");

	/* A laptop that held the whole history: it cloned the edited district's entries before
	 * HQ's checkpoint (HQ keeps entries for it: the checkpoint was not there yet), takes the
	 * checkpoint at its next sync, and days later drops what it covers. */
	{
		struct zila_error err;
		char h3[160];
		snprintf(h3, sizeof(h3), "%s/hq-long", base);
		make_hq(h3, lap3, n, EDITS - 1, false);
		struct result r3, r3h;
		sync_pair(h3, lap3, &r3, &r3h);
		snprintf(path, sizeof(path), "%s/zila.db", lap3);
		double before = used_mib(path);
		int64_t ebefore = entries_of(path);
		struct zila_store *h = open_store(h3, NULL);
		struct zila_ckpt_info ci;
		if (zila_store_checkpoint_make(h, "d1", &ci, &err) != 0)
			die("checkpoint", err.msg);
		zila_store_free(h);
		sync_pair(h3, lap3, &r3, &r3h);
		struct zila_store *l = open_store(lap3, NULL);
		size_t dropped = 0;
		if (zila_store_meta_set(l, ZILA_META_HISTORY_DAYS, "1") != 0)
			die("history_days", "cannot set");
		zila_store_set_clock(l, two_days_on, NULL); /* the horizon (a day) passes */
		if (zila_store_prune(l, &dropped, &err) != 0)
			die("prune", err.msg);
		zila_store_free(l);
		double after = used_mib(path), p = used_mib(plain), pe, pf;
		pages_of("laptop after the horizon", path);
		snprintf(path, sizeof(path), "%s/plain-edited.db", base);
		pe = plain_of(lap3, path);
		snprintf(path, sizeof(path), "%s/zila.db", lap3);
		printf("laptop with the history: %.1f MiB (%lld entries); after the checkpoint and the horizon: %.1f MiB"
		       " (%zu entries dropped); the plain table of its rows %.1f MiB: %.2fx (goal <= 2x)%s\n",
		       before, (long long)ebefore, after, dropped, pe, after / pe, after / pe <= 2 ? "" : "  ** over the goal **");
		snprintf(path, sizeof(path), "%s/zila.db", lap2);
		double c = used_mib(path);
		pages_of("laptop cloned from the checkpoint", path);
		snprintf(path, sizeof(path), "%s/zila.db", lap1);
		double fr = used_mib(path);
		pages_of("laptop cloned fresh", path);
		snprintf(path, sizeof(path), "%s/plain-fresh.db", base);
		pf = plain_of(lap1, path);
		printf("laptop cloned from the checkpoint: %.1f MiB: %.2fx the plain table of its rows (one cloned fresh:"
		       " %.1f MiB, %.2fx its plain table, %.1f MiB)\n", c, c / pe, fr, fr / pf, pf);
		printf("against the rows before the edits in a table with only its key (the figure before): laptop after"
		       " the horizon %.2fx, cloned from the checkpoint %.2fx, cloned fresh %.2fx (%.1f MiB)\n",
		       after / p, c / p, fr / p, p);
		printf("free or part-empty pages (compaction pays from %d%%): laptop cloned fresh %.0f%%, cloned from the"
		       " checkpoint %.0f%%, after the horizon %.0f%%\n",
		       ZILA_COMPACT_SHARE_PCT, slack_of(lap1), slack_of(lap2), slack_of(lap3));
		deletes(h3, lap3, base, n);
	}
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	if (system(cmd) != 0)
		fprintf(stderr, "bench: could not remove %s\n", base);
	return 0;
}
