/* Bytes on the wire against the content: a first clone of a generated district (zila_gen:
 * Devanagari names, every table of the default schema) and a day's work of one office, over
 * encrypted loopback TCP (the bytes are those of any link), each side in a process of its own.
 * The floor is the same rows exported as CSV (as `zila export` writes them) compressed with
 * zstd level 19, as `zstd -19` does.
 *   bench_bytes [PEOPLE]   (default 20,000); ZILA_GEN=path of zila_gen (build/tools/zila_gen);
 *   ZILA_DAY_SQL=the day's work (tools/bench/day.sql, which the link bench runs too);
 *   ZILA_BENCH_KEEP=1 keeps the replicas and says where */
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
#include <zstd.h>

#include "bench_pair.h"
#include "zila/office/csvio.h"

/* Every row of every user table of the replica as CSV, one file per table as `zila export`
 * writes it, concatenated; returns the rows and fills *csv (malloc'd). */
static uint64_t export_csv(const char *dir, char **csv, size_t *csv_len)
{
	sqlite3 *db = open_db(dir);
	sqlite3_stmt *st;
	FILE *f = open_memstream(csv, csv_len);
	uint64_t total = 0;
	struct zila_error err;
	zila_error_clear(&err);
	if (f == NULL || sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE"
					    " 'zila\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
					    -1, &st, NULL) != SQLITE_OK)
		die("export", sqlite3_errmsg(db));
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct zila_csv_export_opts o;
		uint64_t n = 0;
		memset(&o, 0, sizeof(o));
		o.table = (const char *)sqlite3_column_text(st, 0);
		o.format = ZILA_EXPORT_CSV;
		if (zila_csv_export(db, &o, f, &n, &err) != 0)
			die("export", err.msg);
		total += n;
	}
	sqlite3_finalize(st);
	fclose(f);
	sqlite3_close(db);
	return total;
}

static size_t zstd19(const void *p, size_t len)
{
	size_t bound = ZSTD_compressBound(len);
	void *out = malloc(bound);
	size_t n = out ? ZSTD_compress(out, bound, p, len, 19) : 0;
	if (out == NULL || ZSTD_isError(n))
		die("zstd", "compress");
	free(out);
	return n;
}

/* What the receiver holds as entries: how many, their bytes, and their bodies' bytes. */
static void entry_sizes(const char *dir, const char *where, int64_t *n, int64_t *bytes)
{
	sqlite3 *db = open_db(dir);
	char sql[300];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM zila_entries %s", where);
	*n = query_int(db, sql);
	snprintf(sql, sizeof(sql), "SELECT total(length(bytes)) FROM zila_entries %s", where);
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		die(sql, sqlite3_errmsg(db));
	*bytes = sqlite3_step(st) == SQLITE_ROW ? (int64_t)sqlite3_column_double(st, 0) : 0;
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* One office's day on the laptop: tools/bench/day.sql (ZILA_DAY_SQL), the link bench's day
 * too: 200 people registered, 500 edited, 20 deleted. */
static void days_work(const char *dir, const char *path, int nnew, int ndel)
{
	FILE *f = fopen(path, "rb");
	static char sql[16384];
	size_t n = f ? fread(sql, 1, sizeof(sql) - 1, f) : 0;
	if (f == NULL || n == 0 || n == sizeof(sql) - 1)
		die("day's work", "cannot read tools/bench/day.sql (run from the repository's top, or set ZILA_DAY_SQL)");
	fclose(f);
	sql[n] = '\0';
	sqlite3 *db = open_db(dir);
	int64_t before = query_int(db, "SELECT count(*) FROM people");
	db_exec(db, sql);
	if (query_int(db, "SELECT count(*) FROM people") != before + nnew - ndel)
		die("day's work", "the day's SQL did not add and delete as many people as it says");
	sqlite3_close(db);
}

int main(int argc, char **argv)
{
	long people = argc > 1 ? strtol(argv[1], NULL, 10) : 20000;
	const char *gen = getenv("ZILA_GEN") ? getenv("ZILA_GEN") : "build/tools/zila_gen";
	char base[128], hq[160], lap[160], cmd[600], did[64];
	struct zila_error err;
	snprintf(base, sizeof(base), "%s/zila-bench-bytes-XXXXXX", getenv("ZILA_BENCH_DIR") ? getenv("ZILA_BENCH_DIR") : "/tmp");
	zila_error_clear(&err);
	if (people < 100 || sodium_init() < 0 || mkdtemp(base) == NULL)
		die("setup", "PEOPLE must be at least 100; tmp");
	zila_log_set_sink(NULL, NULL, ZILA_LOG_ERROR);
	snprintf(hq, sizeof(hq), "%s/hq", base);
	snprintf(lap, sizeof(lap), "%s/lap", base);
	if (zila_store_create(hq, &err) != 0 || zila_store_create(lap, &err) != 0)
		die("create", err.msg);

	/* HQ holds the generated district, written by an application, sealed. */
	snprintf(cmd, sizeof(cmd), "'%s' --districts 1 --people-per-district %ld --db '%s/zila.db'", gen, people, hq);
	if (system(cmd) != 0)
		die("zila_gen", "failed (build it with make build/tools/zila_gen, or set ZILA_GEN)");
	sqlite3 *db = open_db(hq);
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, "SELECT id FROM districts LIMIT 1", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW)
		die("district", sqlite3_errmsg(db));
	snprintf(did, sizeof(did), "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
	struct zila_store *h = open_store(hq, NULL), *l = open_store(lap, NULL);
	struct zila_buf file;
	zila_buf_init(&file, 65536);
	if (zila_trust_org_init(h, "Bench", "pass", 4, &zila_pwcost_min, NOW_S, &err) != 0 ||
	    zila_trust_issue(h, zila_store_device_pk(l), "laptop", ZILA_ROLE_DISTRICT, did, NOW_S, 365, &file, &err) != 0 ||
	    zila_trust_install_cert(l, zila_buf_view(&file), NOW_S, &err) != 0)
		die("enrol", err.msg);
	zila_buf_release(&file);
	double t0 = now();
	if (zila_store_seal(h, NULL, &err) != 0)
		die("seal", err.msg);
	double t_seal = now() - t0;
	zila_store_free(h);
	zila_store_free(l);
	malloc_trim(0);

	printf("== bench_bytes: a district of %ld people (zila_gen), encrypted loopback TCP; bytes on the wire,"
	       " handshake included\n", people);
	struct result rl, rh;
	sync_pair(hq, lap, &rl, &rh);
	char *csv = NULL;
	size_t csv_len = 0;
	uint64_t rows = export_csv(lap, &csv, &csv_len);
	size_t floor19 = zstd19(csv, csv_len);
	free(csv);
	int64_t nent, ent_bytes;
	entry_sizes(lap, "", &nent, &ent_bytes);
	printf("clone:       %llu rows, %lld entries (%.1f KiB stored); laptop received %llu B, sent %llu B in %.2f s"
	       " (HQ sealed them in %.2f s)\n",
	       (unsigned long long)rows, (long long)nent, (double)ent_bytes / 1024, (unsigned long long)rl.rx,
	       (unsigned long long)rl.tx, rl.total_s, t_seal);
	printf("             CSV of the same rows %zu B, zstd -19 %zu B (the floor); wire/floor %.2fx (goal <= 1.2x),"
	       " %.1f B per row\n",
	       csv_len, floor19, (double)(rl.rx + rl.tx) / (double)floor19, (double)(rl.rx + rl.tx) / (double)rows);

	/* A day's work on the laptop, sealed as its daemon would, then synced to HQ. */
	const int nnew = 200, nedit = 500, ndel = 20, nchanged = nnew + nedit + ndel;
	int64_t before_n, before_b, after_n, after_b;
	entry_sizes(lap, "", &before_n, &before_b);
	days_work(lap, getenv("ZILA_DAY_SQL") ? getenv("ZILA_DAY_SQL") : "tools/bench/day.sql", nnew, ndel);
	l = open_store(lap, NULL);
	if (zila_store_seal(l, NULL, &err) != 0)
		die("seal", err.msg);
	zila_store_free(l);
	entry_sizes(lap, "", &after_n, &after_b);
	sync_pair(hq, lap, &rl, &rh);
	if (rh.entries_received == 0)
		die("day's work", "nothing arrived at HQ");
	/* HQ holds exactly what the laptop holds (the keys sent by reference were found). */
	uint8_t hh[32], hl[32];
	struct zila_store *hs = open_store(hq, NULL);
	l = open_store(lap, NULL);
	if (zila_store_hash(hs, hh, &err) != 0 || zila_store_hash(l, hl, &err) != 0)
		die("hash", err.msg);
	if (memcmp(hh, hl, 32) != 0)
		die("day's work", "HQ and the laptop differ after the sync");
	zila_store_free(hs);
	zila_store_free(l);
	printf("day's work:  %d new, %d edited, %d deleted people: %lld entries (%lld B stored); laptop sent %llu B,"
	       " received %llu B\n",
	       nnew, nedit, ndel, (long long)(after_n - before_n), (long long)(after_b - before_b),
	       (unsigned long long)rl.tx, (unsigned long long)rl.rx);
	printf("             %.1f B per changed row both ways (goal <= 30), %.1f B sent\n",
	       (double)(rl.tx + rl.rx) / nchanged, (double)rl.tx / nchanged);
	printf("             where: handshake %llu B, session messages %llu B (the laptop's %llu B), channel"
	       " framing %llu B\n",
	       (unsigned long long)(rl.tx_hs + rl.rx_hs), (unsigned long long)(rl.msg_tx + rl.msg_rx),
	       (unsigned long long)rl.msg_tx, (unsigned long long)(rl.tx + rl.rx - rl.tx_hs - rl.rx_hs - rl.msg_tx - rl.msg_rx));

	if (getenv("ZILA_BENCH_KEEP") != NULL) {
		printf("(replicas kept in %s)\n", base);
		return 0;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	if (system(cmd) != 0)
		die("cleanup", base);
	return 0;
}
