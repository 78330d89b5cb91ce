/* Attachments' bytes (#25, proto/ATTACH.md): content-addressed blobs beside the replica, in
 * DIR/blobs/ab/cdef... (the id's hex, its first two digits the directory), each stored once
 * however many rows refer to it; partial ones as ...part with their manifest as ...man. The
 * references are rows of the tracked table `attachments`: they sync, merge and are scoped
 * like any rows. Files only through os.h. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "zila/blob.h"
#include "zila/clock.h"
#include "zila/log.h"
#include "zila/os.h"

#define BLOB_DIR "blobs"
#define MANIFEST_HEAD 8 /* size, 8 bytes LE, before the chunk hashes in a .man file */

/* Store-owned: fetches asked for (zila attachment get), and when a blob was first seen with
 * no live row referring to it (collect). */
static const char ASKS_SQL[] = "CREATE TABLE IF NOT EXISTS zila_blob_asks (hash TEXT PRIMARY KEY NOT NULL, at INTEGER NOT NULL)";
static const char GONE_SQL[] = "CREATE TABLE IF NOT EXISTS zila_blob_gone (hash TEXT PRIMARY KEY NOT NULL, since INTEGER NOT NULL)";
/* Possession: the partitions each blob is held shown in (ATTACH.md, "Possession"). Made when
 * a replica is first opened by a zila that keeps it, crediting what was held then. */
static const char HELD_SQL[] = "CREATE TABLE IF NOT EXISTS zila_blob_held (hash TEXT NOT NULL, part TEXT NOT NULL,"
			       " PRIMARY KEY (hash, part)) WITHOUT ROWID";

/* --- ids and paths -------------------------------------------------------------------- */

void zila_blob_id(const uint8_t *chunk_hashes, size_t nchunks, uint64_t size, uint8_t id[32])
{
	crypto_generichash_state h;
	uint8_t le[8];
	for (int i = 0; i < 8; i++)
		le[i] = (uint8_t)(size >> (8 * i));
	crypto_generichash_init(&h, NULL, 0, 32);
	crypto_generichash_update(&h, (const uint8_t *)"zila-blob-1", 11);
	crypto_generichash_update(&h, le, 8);
	if (nchunks > 0)
		crypto_generichash_update(&h, chunk_hashes, nchunks * 32);
	crypto_generichash_final(&h, id, 32);
}

static size_t nchunks_of(uint64_t size)
{
	return (size_t)((size + ZILA_BLOB_CHUNK - 1) / ZILA_BLOB_CHUNK);
}

int zila_blob_hash_mem(const uint8_t *p, size_t len, struct zila_buf *chunks, uint8_t id[32])
{
	size_t n = nchunks_of(len), start = chunks->len;
	int r = zila_buf_reserve(chunks, n * 32);
	if (r != 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		size_t off = i * ZILA_BLOB_CHUNK, clen = len - off < ZILA_BLOB_CHUNK ? len - off : ZILA_BLOB_CHUNK;
		crypto_generichash(chunks->p + start + i * 32, 32, p + off, clen, NULL, 0);
	}
	chunks->len = start + n * 32;
	zila_blob_id(n > 0 ? chunks->p + start : NULL, n, len, id); /* an empty file: no chunk, maybe no buffer */
	return 0;
}

static bool hex_id(const char *hex, uint8_t id[32])
{
	return hex != NULL && strlen(hex) == 64 && zila_hex_decode(id, 32, hex, 64) == 0;
}

/* DIR/blobs/ab/cdef...SUFFIX; dir_only: DIR/blobs/ab */
static void blob_path(const struct zila_store *s, const uint8_t id[32], const char *suffix, char *out, size_t n)
{
	char hex[65];
	zila_hex_encode(hex, id, 32);
	if (suffix == NULL)
		snprintf(out, n, "%s/" BLOB_DIR "/%.2s", s->dir, hex);
	else
		snprintf(out, n, "%s/" BLOB_DIR "/%.2s/%s%s", s->dir, hex, hex + 2, suffix);
}

static int make_dirs(struct zila_store *s, const uint8_t id[32], struct zila_error *err)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/" BLOB_DIR, s->dir);
	int r = zila_os_mkdir(path, 0700, err);
	blob_path(s, id, NULL, path, sizeof(path));
	return r ? r : zila_os_mkdir(path, 0700, err);
}

bool zila_blob_present(struct zila_store *s, const uint8_t id[32])
{
	char path[4200];
	blob_path(s, id, "", path, sizeof(path));
	return zila_os_exists(path);
}

/* The store's own tables for attachments, made when first needed: a read (the daemon's
 * status, every session's blob phase) takes no write lock once they are there. */
static int ensure_tables(struct zila_store *s, struct zila_error *err)
{
	sqlite3_stmt *st = store_stmt(s, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN"
					 " ('zila_blob_asks', 'zila_blob_gone')");
	int n = 0;
	if (st != NULL) {
		if (sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int(st, 0);
		sqlite3_reset(st);
	}
	if (n == 2)
		return 0;
	int r = store_exec(s, ASKS_SQL, err);
	return r ? r : store_exec(s, GONE_SQL, err);
}

static bool has_table(struct zila_store *s, const char *name)
{
	sqlite3_stmt *st = NULL;
	bool yes = false;
	if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?", -1, &st, NULL) ==
	    SQLITE_OK) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		yes = sqlite3_step(st) == SQLITE_ROW;
	}
	sqlite3_finalize(st);
	return yes;
}

static bool has_attachments(struct zila_store *s)
{
	sqlite3_stmt *st = NULL;
	bool yes = false;
	if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'attachments'", -1, &st,
			       NULL) == SQLITE_OK)
		yes = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return yes;
}

extern const char zila_default_schema_sql[];

/* The possession table, the first time a zila that keeps it opens the replica. What is held
 * then came by the rule before it (the hash was enough): a blob that the live rows of a single
 * partition name is credited there, as it most likely came for them; one that rows of two
 * partitions or more name is credited nowhere, and its writers show it again at their next
 * sync (so a row naming another district's file before the upgrade gains nothing by it). */
static int held_upgrade(struct zila_store *s, struct zila_error *err)
{
	sqlite3_stmt *st = NULL, *ins = NULL;
	uint64_t n = 0;
	if (has_table(s, "zila_blob_held"))
		return 0;
	int r = store_exec(s, "BEGIN IMMEDIATE", err);
	if (r != 0)
		return r;
	if (has_table(s, "zila_blob_held")) /* another process made it meanwhile */
		return store_exec(s, "COMMIT", err);
	r = store_exec(s, HELD_SQL, err);
	if (r == 0 && has_attachments(s)) {
		if (sqlite3_prepare_v2(s->db, "SELECT hash, min(district_id) FROM attachments GROUP BY hash"
					      " HAVING count(DISTINCT district_id) = 1", -1, &st, NULL) != SQLITE_OK ||
		    sqlite3_prepare_v2(s->db, "INSERT OR IGNORE INTO zila_blob_held (hash, part) VALUES (?, ?)", -1, &ins,
				       NULL) != SQLITE_OK)
			r = store_db_error(s, err, "attachments");
		while (r == 0 && sqlite3_step(st) == SQLITE_ROW) {
			uint8_t id[32];
			const char *hex = (const char *)sqlite3_column_text(st, 0);
			if (!hex_id(hex, id) || !zila_blob_present(s, id))
				continue;
			sqlite3_bind_text(ins, 1, hex, -1, SQLITE_TRANSIENT);
			sqlite3_bind_value(ins, 2, sqlite3_column_value(st, 1));
			if (sqlite3_step(ins) != SQLITE_DONE)
				r = store_db_error(s, err, "attachments");
			sqlite3_reset(ins);
			n++;
		}
	}
	sqlite3_finalize(st);
	sqlite3_finalize(ins);
	r = r ? r : store_exec(s, "COMMIT", err);
	if (r != 0)
		(void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	else if (n > 0)
		zila_log(ZILA_LOG_INFO, "'%s': %llu attachment files held before this zila are taken as shown in the"
					" district whose rows name them; files named from two districts or more are asked"
					" for again from their writers", s->db_path, (unsigned long long)n);
	return r;
}

int store_blob_upgrade(struct zila_store *s, struct zila_error *err)
{
	int r = held_upgrade(s, err);
	if (r != 0 || has_attachments(s) || store_table_by_name(s, "districts", 9) == NULL)
		return r;
	/* the default schema's own statements (the file ends with them) */
	const char *sql = strstr(zila_default_schema_sql, "CREATE TABLE attachments");
	if (sql == NULL)
		return 0;
	char *name = strdup("attachments");
	const char *pcol = "district_id";
	if (name == NULL)
		return zila_error_set(err, ZILA_ENOMEM, "out of memory");
	r = store_exec(s, "BEGIN IMMEDIATE", err);
	if (r == 0 && sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		r = store_db_error(s, err, "cannot add the attachments table");
	r = r ? r : store_exec(s, "COMMIT", err);
	if (r != 0)
		(void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	if (r == 0 && (r = store_track_many(s, &name, &pcol, 1, err)) != 0)
		(void)sqlite3_exec(s->db, "DROP TABLE attachments", NULL, NULL, NULL);
	if (r == 0)
		zila_log(ZILA_LOG_INFO, "'%s' has an attachments table now (#25)", s->db_path);
	free(name);
	return r;
}

/* --- storing ---------------------------------------------------------------------------- */

/* A partial copy (.part and its .man) of a blob held whole: left by a fetch cut before the
 * same file was attached here or came whole otherwise. */
static void drop_partial(struct zila_store *s, const uint8_t id[32])
{
	char path[4200];
	blob_path(s, id, ".part", path, sizeof(path));
	(void)!zila_os_remove(path);
	blob_path(s, id, ".man", path, sizeof(path));
	(void)!zila_os_remove(path);
}

int zila_blob_put(struct zila_store *s, const uint8_t *p, size_t len, uint8_t id[32], struct zila_error *err)
{
	struct zila_buf ch;
	struct zila_os_atomic *a = NULL;
	char path[4200];
	int r;
	if (len > ZILA_BLOB_SIZE_MAX)
		return zila_error_set(err, ZILA_ETOOBIG, "a file of %zu bytes is over the largest zila carries (%llu MB)", len,
				      ZILA_BLOB_SIZE_MAX / 1024 / 1024);
	zila_buf_init(&ch, ZILA_BLOB_CHUNKS_MAX * 32);
	if ((r = zila_blob_hash_mem(p, len, &ch, id)) != 0) {
		r = zila_error_set(err, r, "out of memory");
		goto out;
	}
	blob_path(s, id, "", path, sizeof(path));
	if (zila_os_exists(path))
		goto out; /* stored once, however many rows refer to it */
	if ((r = make_dirs(s, id, err)) != 0)
		goto out;
	/* PATH.tmp, synced, renamed: a full disk leaves no half blob and never touches the replica */
	if ((r = zila_os_atomic_open(&a, path, 0600, err)) != 0)
		goto out;
	if (zila_os_atomic_write(a, p, len) != 0) {
		r = zila_os_atomic_failed(a, err);
		zila_os_atomic_abort(a);
		goto out;
	}
	r = zila_os_atomic_commit(a, err);
	if (r == 0)
		drop_partial(s, id); /* a fetch cut before: the whole file is here now */
out:
	zila_buf_release(&ch);
	return r;
}

/* ASCII case-insensitive equality (file name endings) */
static bool same_ci(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if ((*a | 0x20) != (*b | 0x20))
			return false;
	return *a == *b;
}

static const char *media_of(const char *name)
{
	static const char *const map[][2] = {
		{ ".jpg", "image/jpeg" }, { ".jpeg", "image/jpeg" }, { ".png", "image/png" }, { ".gif", "image/gif" },
		{ ".webp", "image/webp" }, { ".heic", "image/heic" }, { ".pdf", "application/pdf" },
		{ ".txt", "text/plain" }, { ".csv", "text/csv" }, { ".mp3", "audio/mpeg" }, { ".mp4", "video/mp4" },
		{ ".ogg", "audio/ogg" }, { ".m4a", "audio/mp4" }, { ".tif", "image/tiff" }, { ".tiff", "image/tiff" },
	};
	const char *dot = strrchr(name, '.');
	for (size_t i = 0; dot != NULL && i < sizeof(map) / sizeof(map[0]); i++)
		if (same_ci(dot, map[i][0]))
			return map[i][1];
	return "application/octet-stream";
}

static uint64_t setting(struct zila_store *s, const char *key, uint64_t dflt)
{
	char *v = NULL;
	uint64_t x = dflt;
	if (zila_store_meta_get(s, key, &v) == 0 && v != NULL && v[0] != '\0')
		x = strtoull(v, NULL, 10);
	free(v);
	return x;
}

static void text_of(sqlite3_stmt *st, int col, char *out, size_t n)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	snprintf(out, n, "%s", t ? (const char *)t : "");
}

/* The owner row's district, checking that the row exists; "" for a table without one. */
static int owner_district(struct zila_store *s, const struct zila_attach_req *rq, char *part, struct zila_error *err)
{
	sqlite3_stmt *st = NULL;
	char pk[128] = "";
	bool has_district = false;
	int r = 0;
	part[0] = '\0';
	if (sqlite3_prepare_v2(s->db, "SELECT name, pk FROM pragma_table_info(?)", -1, &st, NULL) != SQLITE_OK)
		return store_db_error(s, err, "attach");
	sqlite3_bind_text(st, 1, rq->table, -1, SQLITE_STATIC);
	bool any = false, col_ok = rq->column == NULL;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *c = (const char *)sqlite3_column_text(st, 0);
		any = true;
		if (sqlite3_column_int(st, 1) == 1)
			snprintf(pk, sizeof(pk), "%s", c);
		if (strcmp(c, "district_id") == 0)
			has_district = true;
		if (rq->column != NULL && strcmp(c, rq->column) == 0)
			col_ok = true;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (!any)
		return zila_error_set(err, ZILA_ENOTFOUND, "no table '%s' to attach to", rq->table);
	if (!col_ok)
		return zila_error_set(err, ZILA_ENOTFOUND, "table '%s' has no column '%s'", rq->table, rq->column);
	if (pk[0] == '\0')
		return zila_error_set(err, ZILA_EINVAL, "table '%s' has no single-column primary key to name a row by",
				      rq->table);
	char *q = sqlite3_mprintf("SELECT %s FROM \"%w\" WHERE \"%w\" = ?", has_district ? "district_id" : "''",
				  rq->table, pk);
	if (q == NULL || sqlite3_prepare_v2(s->db, q, -1, &st, NULL) != SQLITE_OK) {
		sqlite3_free(q);
		return store_db_error(s, err, "attach");
	}
	sqlite3_free(q);
	sqlite3_bind_text(st, 1, rq->row, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		text_of(st, 0, part, ZILA_PART_MAX + 1);
	else
		r = zila_error_set(err, ZILA_ENOTFOUND, "no row '%s' in table '%s'", rq->row, rq->table);
	sqlite3_finalize(st);
	return r;
}

static uint64_t district_bytes(struct zila_store *s, const char *part, const char *except_hash)
{
	sqlite3_stmt *st = NULL;
	uint64_t n = 0;
	if (sqlite3_prepare_v2(s->db,
			       "SELECT coalesce(sum(size), 0) FROM (SELECT DISTINCT hash, size FROM attachments"
			       " WHERE district_id = ? AND hash <> ?)",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, part, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, except_hash, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			n = (uint64_t)sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	return n;
}

static const char *base_name(const char *path)
{
	const char *b = strrchr(path, '/');
	const char *w = strrchr(path, '\\');
	if (w != NULL && (b == NULL || w > b))
		b = w;
	return b ? b + 1 : path;
}

int zila_blob_attach(struct zila_store *s, const struct zila_attach_req *rq, struct zila_attachment *out,
		     struct zila_error *err)
{
	struct zila_buf data;
	char part[ZILA_PART_MAX + 1] = "", hex[65], rid[33], *sql = NULL, *v = NULL;
	uint8_t id[32], rnd[16];
	uint64_t max = setting(s, "attach.max_bytes", ZILA_BLOB_MAX_DEFAULT);
	uint64_t quota = setting(s, "attach.quota_bytes", ZILA_BLOB_QUOTA_DEFAULT);
	int r;
	memset(out, 0, sizeof(*out));
	if (max > ZILA_BLOB_SIZE_MAX)
		max = ZILA_BLOB_SIZE_MAX;
	zila_buf_init(&data, (size_t)max);
	if (rq->data != NULL) {
		const char *nm = rq->name ? rq->name : "the file";
		if (rq->data_len > max) {
			r = zila_error_set(err, ZILA_ETOOBIG, "'%s' is larger than %llu bytes, the largest file this office attaches"
					   " (setting attach.max_bytes)", nm, (unsigned long long)max);
			goto out;
		}
		if (zila_buf_put(&data, rq->data, rq->data_len) != 0) {
			r = zila_error_set(err, ZILA_ENOMEM, "out of memory");
			goto out;
		}
	} else if ((r = zila_os_read_file(rq->path, (size_t)max, &data, NULL, err)) != 0) {
		if (r == ZILA_ETOOBIG)
			r = zila_error_set(err, r, "'%s' is larger than %llu bytes, the largest file this office attaches"
				       " (setting attach.max_bytes)", rq->path, (unsigned long long)max);
		goto out;
	}
	if (rq->table != NULL && (r = owner_district(s, rq, part, err)) != 0)
		goto out;
	if (rq->district != NULL && rq->district[0] != '\0') {
		if (part[0] != '\0' && strcmp(part, rq->district) != 0) {
			r = zila_error_set(err, ZILA_EINVAL, "row '%s' of '%s' is in district '%s', not '%s'", rq->row,
					   rq->table, part, rq->district);
			goto out;
		}
		part_copy(part, rq->district);
	}
	if (part[0] == '\0' && zila_store_meta_get(s, "write.scope", &v) == 0 && v != NULL)
		part_copy(part, v);
	if (part[0] == '\0') {
		r = zila_error_set(err, ZILA_EINVAL, "say which district the file belongs to (--district ID)");
		goto out;
	}
	{
		struct zila_buf ch;
		zila_buf_init(&ch, ZILA_BLOB_CHUNKS_MAX * 32);
		r = zila_blob_hash_mem(data.p, data.len, &ch, id);
		zila_buf_release(&ch);
		if (r != 0) {
			r = zila_error_set(err, r, "out of memory");
			goto out;
		}
	}
	zila_hex_encode(hex, id, 32);
	uint64_t used = district_bytes(s, part, hex);
	if (used + data.len > quota) {
		r = zila_error_set(err, ZILA_ELIMIT,
				   "district '%s' holds %llu bytes of attachments; this file's %zu bytes would pass its quota of"
				   " %llu (setting attach.quota_bytes)",
				   part, (unsigned long long)used, data.len, (unsigned long long)quota);
		goto out;
	}
	if ((r = zila_blob_put(s, data.p, data.len, id, err)) != 0)
		goto out;
	randombytes_buf(rnd, sizeof(rnd));
	zila_hex_encode(rid, rnd, sizeof(rnd));
	char orig_size[24] = "NULL";
	if (rq->original_hash != NULL)
		snprintf(orig_size, sizeof(orig_size), "%llu", (unsigned long long)rq->original_size);
	const char *name = rq->name ? rq->name : rq->path ? base_name(rq->path) : "file";
	const char *mt = rq->media_type ? rq->media_type : media_of(name);
	sql = sqlite3_mprintf("INSERT INTO attachments (id, district_id, hash, size, media_type, name, owner_table, owner_id,"
			      " owner_column, original_hash, original_size, added_on) VALUES (%Q, %Q, %Q, %llu, %Q, %Q, %Q,"
			      " %Q, %Q, %Q, %s, strftime('%%Y-%%m-%%dT%%H:%%M:%%SZ', 'now'));",
			      rid, part, hex, (unsigned long long)data.len, mt, name, rq->table, rq->row, rq->column,
			      rq->original_hash, orig_size);
	if (sql == NULL) {
		r = zila_error_set(err, ZILA_ENOMEM, "out of memory");
		goto out;
	}
	if (rq->table != NULL && rq->column != NULL) {
		char *up = sqlite3_mprintf("%sUPDATE \"%w\" SET \"%w\" = %Q WHERE rowid = (SELECT rowid FROM \"%w\""
					   " WHERE %s = %Q);",
					   sql, rq->table, rq->column, rid, rq->table, "id", rq->row);
		sqlite3_free(sql);
		sql = up;
	}
	/* attached here: held shown in its partition (possession) */
	char *tx = sql ? sqlite3_mprintf("BEGIN; %s INSERT OR IGNORE INTO zila_blob_held (hash, part) VALUES (%Q, %Q);"
					 " COMMIT;", sql, hex, part) : NULL;
	sqlite3_free(sql);
	sql = tx;
	if (sql == NULL) {
		r = zila_error_set(err, ZILA_ENOMEM, "out of memory");
		goto out;
	}
	if ((r = zila_store_exec_captured(s, sql, NULL, NULL, err)) != 0) {
		(void)!zila_store_exec_captured(s, "ROLLBACK", NULL, NULL, NULL);
		goto out;
	}
	r = zila_blob_find(s, rid, out, err);
out:
	sqlite3_free(sql);
	free(v);
	zila_buf_release(&data);
	return r;
}

/* --- reading ---------------------------------------------------------------------------- */

uint32_t zila_blob_part_chunks(struct zila_store *s, const uint8_t id[32])
{
	char man[4200], part[4200];
	struct zila_buf m;
	struct zila_os_map mp;
	uint32_t n = 0;
	blob_path(s, id, ".man", man, sizeof(man));
	blob_path(s, id, ".part", part, sizeof(part));
	zila_buf_init(&m, MANIFEST_HEAD + ZILA_BLOB_CHUNKS_MAX * 32);
	memset(&mp, 0, sizeof(mp));
	if (zila_os_read_file(man, m.max, &m, NULL, NULL) != 0 || m.len < MANIFEST_HEAD ||
	    (m.len - MANIFEST_HEAD) % 32 != 0 || zila_os_map(&mp, part, NULL) != 0)
		goto out;
	size_t nch = (m.len - MANIFEST_HEAD) / 32;
	/* whole chunks whose bytes match the manifest, from the first; the rest is cut off */
	while (n < nch && (size_t)(n + 1) * ZILA_BLOB_CHUNK <= mp.len) {
		uint8_t h[32];
		crypto_generichash(h, 32, mp.p + (size_t)n * ZILA_BLOB_CHUNK, ZILA_BLOB_CHUNK, NULL, 0);
		if (sodium_memcmp(h, m.p + MANIFEST_HEAD + (size_t)n * 32, 32) != 0)
			break;
		n++;
	}
	size_t keep = (size_t)n * ZILA_BLOB_CHUNK;
	zila_os_unmap(&mp);
	if (keep != mp.len)
		(void)!zila_os_truncate(part, keep);
out:
	zila_os_unmap(&mp);
	zila_buf_release(&m);
	return n;
}

/* The chunks a partial copy holds, from the sizes of its files alone: for showing (status,
 * ls), which must stay fast with thousands missing and must not cut a file a running daemon
 * appends to. Receiving verifies them (zila_blob_part_chunks). */
static uint32_t part_chunks_shown(struct zila_store *s, const uint8_t id[32])
{
	char man[4200], part[4200];
	uint64_t msize = 0, psize = 0;
	int64_t mt;
	blob_path(s, id, ".part", part, sizeof(part));
	if (zila_os_stat(part, &psize, &mt) != 0 || psize < ZILA_BLOB_CHUNK)
		return 0;
	blob_path(s, id, ".man", man, sizeof(man));
	if (zila_os_stat(man, &msize, &mt) != 0 || msize < MANIFEST_HEAD || (msize - MANIFEST_HEAD) % 32 != 0)
		return 0;
	uint64_t n = psize / ZILA_BLOB_CHUNK, nch = (msize - MANIFEST_HEAD) / 32;
	return (uint32_t)(n < nch ? n : nch);
}

static void fill(struct zila_store *s, sqlite3_stmt *st, struct zila_attachment *a)
{
	uint8_t id[32];
	memset(a, 0, sizeof(*a));
	text_of(st, 0, a->id, sizeof(a->id));
	text_of(st, 1, a->district, sizeof(a->district));
	text_of(st, 2, a->hash, sizeof(a->hash));
	a->size = (uint64_t)sqlite3_column_int64(st, 3);
	text_of(st, 4, a->media_type, sizeof(a->media_type));
	text_of(st, 5, a->name, sizeof(a->name));
	text_of(st, 6, a->owner_table, sizeof(a->owner_table));
	text_of(st, 7, a->owner_id, sizeof(a->owner_id));
	text_of(st, 8, a->owner_column, sizeof(a->owner_column));
	text_of(st, 9, a->original_hash, sizeof(a->original_hash));
	a->asked = sqlite3_column_int(st, 10) != 0;
	a->original_size = (uint64_t)sqlite3_column_int64(st, 11);
	text_of(st, 12, a->added_on, sizeof(a->added_on));
	a->state = ZILA_BLOB_MISSING;
	if (!hex_id(a->hash, id))
		return;
	if (zila_blob_present(s, id)) {
		a->state = ZILA_BLOB_PRESENT;
		a->have_bytes = a->size;
		return;
	}
	uint32_t n = part_chunks_shown(s, id);
	if (n > 0) {
		a->state = ZILA_BLOB_PARTIAL;
		a->have_bytes = (uint64_t)n * ZILA_BLOB_CHUNK;
	}
}

#define ATT_COLS                                                                                             \
	"a.id, a.district_id, a.hash, a.size, a.media_type, a.name, a.owner_table, a.owner_id, a.owner_column," \
	" a.original_hash, EXISTS (SELECT 1 FROM zila_blob_asks k WHERE k.hash = a.hash), a.original_size, a.added_on"

int zila_blob_list(struct zila_store *s, zila_attachment_fn fn, void *ctx, struct zila_error *err)
{
	sqlite3_stmt *st = NULL;
	int r = ensure_tables(s, err);
	if (r != 0 || !has_attachments(s))
		return r;
	if (sqlite3_prepare_v2(s->db, "SELECT " ATT_COLS " FROM attachments a ORDER BY a.district_id, a.id", -1, &st,
			       NULL) != SQLITE_OK)
		return store_db_error(s, err, "attachments");
	int rc;
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct zila_attachment a;
		fill(s, st, &a);
		r = fn(ctx, &a);
	}
	sqlite3_finalize(st);
	return r;
}

int zila_blob_find(struct zila_store *s, const char *ref, struct zila_attachment *out, struct zila_error *err)
{
	sqlite3_stmt *st = NULL;
	int r = ensure_tables(s, err), n = 0;
	memset(out, 0, sizeof(*out));
	if (r != 0)
		return r;
	if (!has_attachments(s))
		return zila_error_set(err, ZILA_ENOTFOUND, "this replica has no attachments table");
	size_t len = strlen(ref);
	if (len < 6)
		return zila_error_set(err, ZILA_EINVAL, "'%s' is too short to name an attachment (at least 6 characters)", ref);
	if (sqlite3_prepare_v2(s->db,
			       "SELECT " ATT_COLS " FROM attachments a WHERE a.id = ?1 OR a.hash = lower(?1)"
			       " OR substr(a.id, 1, ?2) = ?1 OR substr(a.hash, 1, ?2) = lower(?1)"
			       " ORDER BY (a.id = ?1) DESC, (a.hash = lower(?1)) DESC, a.id",
			       -1, &st, NULL) != SQLITE_OK)
		return store_db_error(s, err, "attachments");
	sqlite3_bind_text(st, 1, ref, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)len);
	char first_hash[65] = "";
	bool exact = false;
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct zila_attachment a;
		fill(s, st, &a);
		if (n == 0) {
			*out = a;
			snprintf(first_hash, sizeof(first_hash), "%s", a.hash);
			exact = strcmp(a.id, ref) == 0 || same_ci(a.hash, ref);
		} else if (!exact && strcmp(a.hash, first_hash) != 0) {
			n = -1;
			break;
		}
		n++;
	}
	sqlite3_finalize(st);
	if (n == 0)
		r = zila_error_set(err, ZILA_ENOTFOUND, "no attachment '%s' (zila attachment ls lists them)", ref);
	else if (n < 0)
		r = zila_error_set(err, ZILA_EINVAL, "'%s' names more than one attachment; give more of it", ref);
	return r;
}

struct zila_blob_reader {
	struct zila_os_map map;
	struct zila_buf chunks;
	uint64_t size;
};

int zila_blob_reader_open(struct zila_store *s, const uint8_t id[32], struct zila_blob_reader **out,
			  struct zila_error *err)
{
	char path[4200], hex[65];
	uint8_t got[32];
	struct zila_blob_reader *rd = calloc(1, sizeof(*rd));
	int r;
	*out = NULL;
	zila_hex_encode(hex, id, 32);
	if (rd == NULL)
		return zila_error_set(err, ZILA_ENOMEM, "out of memory");
	zila_buf_init(&rd->chunks, ZILA_BLOB_CHUNKS_MAX * 32);
	blob_path(s, id, "", path, sizeof(path));
	if (!zila_os_exists(path)) {
		r = zila_error_set(err, ZILA_ENOTFOUND, "blob %.12s is not here", hex);
		goto fail;
	}
	if ((r = zila_os_map(&rd->map, path, err)) != 0)
		goto fail;
	rd->size = rd->map.len;
	if (rd->size > ZILA_BLOB_SIZE_MAX || (r = zila_blob_hash_mem(rd->map.p, rd->map.len, &rd->chunks, got)) != 0 ||
	    sodium_memcmp(got, id, 32) != 0) {
		/* damaged on this disk: removed, so that it is fetched again */
		zila_os_unmap(&rd->map);
		(void)!zila_os_remove(path);
		r = zila_error_set(err, ZILA_EFORMAT, "blob %.12s was damaged on this disk; removed, to be fetched again", hex);
		goto fail;
	}
	*out = rd;
	return 0;
fail:
	zila_blob_reader_free(rd);
	return r;
}

uint64_t zila_blob_reader_size(const struct zila_blob_reader *rd)
{
	return rd->size;
}

struct zila_view zila_blob_reader_manifest(const struct zila_blob_reader *rd)
{
	return zila_buf_view(&rd->chunks);
}

struct zila_view zila_blob_reader_chunk(const struct zila_blob_reader *rd, uint32_t i)
{
	uint64_t off = (uint64_t)i * ZILA_BLOB_CHUNK;
	if (off >= rd->size)
		return zila_view_make(NULL, 0);
	uint64_t n = rd->size - off < ZILA_BLOB_CHUNK ? rd->size - off : ZILA_BLOB_CHUNK;
	return zila_view_make(rd->map.p + off, (size_t)n);
}

void zila_blob_reader_free(struct zila_blob_reader *rd)
{
	if (rd == NULL)
		return;
	zila_os_unmap(&rd->map);
	zila_buf_release(&rd->chunks);
	free(rd);
}

int zila_blob_copy_out(struct zila_store *s, const char *hash, const char *path, struct zila_error *err)
{
	uint8_t id[32];
	struct zila_blob_reader *rd = NULL;
	if (!hex_id(hash, id))
		return zila_error_set(err, ZILA_EINVAL, "'%s' is not a blob hash", hash);
	int r = zila_blob_reader_open(s, id, &rd, err);
	if (r == 0)
		r = zila_os_write_atomic(path, rd->map.p, rd->map.len, 0644, err);
	zila_blob_reader_free(rd);
	return r;
}

int zila_blob_ask(struct zila_store *s, const char *hash, struct zila_error *err)
{
	sqlite3_stmt *st;
	int r = ensure_tables(s, err);
	if (r != 0)
		return r;
	if ((st = store_stmt(s, "INSERT OR IGNORE INTO zila_blob_asks (hash, at) VALUES (?, ?)")) == NULL)
		return store_db_error(s, err, "attachments");
	sqlite3_bind_text(st, 1, hash, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)zila_wall_ms());
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_db_error(s, err, "attachments");
}

/* --- moving ----------------------------------------------------------------------------- */

static int missing_walk(struct zila_store *s, zila_blob_want_fn fn, void *ctx, bool shown, struct zila_error *err);

int zila_blob_missing(struct zila_store *s, zila_blob_want_fn fn, void *ctx, struct zila_error *err)
{
	return missing_walk(s, fn, ctx, false, err);
}

static int missing_walk(struct zila_store *s, zila_blob_want_fn fn, void *ctx, bool shown, struct zila_error *err)
{
	sqlite3_stmt *st = NULL;
	int r = ensure_tables(s, err);
	if (r != 0 || !has_attachments(s))
		return r;
	if (sqlite3_prepare_v2(s->db,
			       "SELECT a.hash, max(a.size), EXISTS (SELECT 1 FROM zila_blob_asks k WHERE k.hash = a.hash)"
			       " FROM attachments a GROUP BY a.hash ORDER BY min(a.rowid)",
			       -1, &st, NULL) != SQLITE_OK)
		return store_db_error(s, err, "attachments");
	while (r == 0 && sqlite3_step(st) == SQLITE_ROW) {
		uint8_t id[32];
		if (!hex_id((const char *)sqlite3_column_text(st, 0), id) || zila_blob_present(s, id))
			continue;
		r = fn(ctx, id, (uint64_t)sqlite3_column_int64(st, 1), sqlite3_column_int(st, 2) != 0,
		       shown ? part_chunks_shown(s, id) : zila_blob_part_chunks(s, id));
	}
	sqlite3_finalize(st);
	return r;
}

bool zila_blob_named(struct zila_store *s, const uint8_t id[32], zila_part_filter_fn filter, void *ctx)
{
	sqlite3_stmt *st = NULL;
	char hex[65];
	bool ok = false;
	if (!has_attachments(s))
		return false;
	zila_hex_encode(hex, id, 32);
	if (sqlite3_prepare_v2(s->db, "SELECT DISTINCT district_id FROM attachments WHERE hash = ?", -1, &st, NULL) != SQLITE_OK)
		return false;
	sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
	while (!ok && sqlite3_step(st) == SQLITE_ROW) {
		const char *p = (const char *)sqlite3_column_text(st, 0);
		ok = filter == NULL || filter(ctx, p ? p : "");
	}
	sqlite3_finalize(st);
	return ok;
}

int zila_blob_held_add(struct zila_store *s, const uint8_t id[32], const char *part, struct zila_error *err)
{
	char hex[65];
	sqlite3_stmt *st;
	int r = has_table(s, "zila_blob_held") ? 0 : store_exec(s, HELD_SQL, err);
	if (r != 0)
		return r;
	if ((st = store_stmt(s, "INSERT OR IGNORE INTO zila_blob_held (hash, part) VALUES (?, ?)")) == NULL)
		return store_db_error(s, err, "attachments");
	zila_hex_encode(hex, id, 32);
	sqlite3_bind_text(st, 1, hex, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, part, -1, SQLITE_TRANSIENT);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_db_error(s, err, "attachments");
}

bool zila_blob_held_in(struct zila_store *s, const uint8_t id[32], const char *part)
{
	char hex[65];
	sqlite3_stmt *st = store_stmt(s, "SELECT 1 FROM zila_blob_held WHERE hash = ? AND part = ?");
	bool yes = false;
	if (st == NULL)
		return false;
	zila_hex_encode(hex, id, 32);
	sqlite3_bind_text(st, 1, hex, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, part, -1, SQLITE_TRANSIENT);
	yes = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_reset(st);
	return yes;
}

int zila_blob_held_sole(struct zila_store *s, const uint8_t id[32], zila_part_filter_fn filter, void *ctx,
			struct zila_error *err)
{
	sqlite3_stmt *st = NULL;
	char hex[65], part[ZILA_PART_MAX + 1] = "";
	int n = 0;
	if (!has_attachments(s))
		return 0;
	zila_hex_encode(hex, id, 32);
	if (sqlite3_prepare_v2(s->db, "SELECT DISTINCT district_id FROM attachments WHERE hash = ? LIMIT 2", -1, &st,
			       NULL) != SQLITE_OK)
		return store_db_error(s, err, "attachments");
	sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW)
		if (n++ == 0)
			text_of(st, 0, part, sizeof(part));
	sqlite3_finalize(st);
	if (n != 1 || (filter != NULL && !filter(ctx, part)))
		return 0;
	return zila_blob_held_add(s, id, part, err);
}

int zila_blob_shown(struct zila_store *s, const uint8_t id[32], zila_part_filter_fn filter, void *fctx,
		    zila_blob_part_fn fn, void *ctx)
{
	sqlite3_stmt *st = NULL;
	char hex[65];
	int r = 0;
	if (!has_attachments(s) || !has_table(s, "zila_blob_held"))
		return 0;
	zila_hex_encode(hex, id, 32);
	if (sqlite3_prepare_v2(s->db, "SELECT DISTINCT a.district_id FROM attachments a JOIN zila_blob_held h"
				      " ON h.hash = a.hash AND h.part = a.district_id WHERE a.hash = ? ORDER BY 1",
			       -1, &st, NULL) != SQLITE_OK)
		return ZILA_EDB;
	sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
	while (r == 0 && sqlite3_step(st) == SQLITE_ROW) {
		const char *p = (const char *)sqlite3_column_text(st, 0);
		if (filter == NULL || filter(fctx, p ? p : ""))
			r = fn(ctx, p ? p : "");
	}
	sqlite3_finalize(st);
	return r;
}

static int stop_at_one(void *ctx, const char *part)
{
	(void)ctx;
	(void)part;
	return 1;
}

bool zila_blob_may_serve(struct zila_store *s, const uint8_t id[32], zila_part_filter_fn filter, void *ctx)
{
	return zila_blob_shown(s, id, filter, ctx, stop_at_one, NULL) == 1;
}

int zila_blob_needed(struct zila_store *s, zila_blob_need_fn fn, void *ctx, struct zila_error *err)
{
	sqlite3_stmt *st = NULL, *pq = NULL, *aq = NULL;
	int r = ensure_tables(s, err);
	if (r != 0 || !has_attachments(s))
		return r;
	if (!has_table(s, "zila_blob_held") && (r = store_exec(s, HELD_SQL, err)) != 0)
		return r;
	/* every hash live rows name, whether some of its rows are in a partition where it is not
	 * shown; then per hash, the partitions to ask it shown in */
	if (sqlite3_prepare_v2(s->db,
			       "SELECT a.hash, max(a.size), EXISTS (SELECT 1 FROM zila_blob_asks k WHERE k.hash = a.hash),"
			       " max(NOT EXISTS (SELECT 1 FROM zila_blob_held h WHERE h.hash = a.hash AND h.part ="
			       " a.district_id)) FROM attachments a GROUP BY a.hash ORDER BY min(a.rowid)",
			       -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db,
			       "SELECT DISTINCT a.district_id FROM attachments a WHERE a.hash = ? AND NOT EXISTS (SELECT 1"
			       " FROM zila_blob_held h WHERE h.hash = a.hash AND h.part = a.district_id) ORDER BY 1 LIMIT 64",
			       -1, &pq, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "SELECT DISTINCT district_id FROM attachments WHERE hash = ? ORDER BY 1 LIMIT 64", -1,
			       &aq, NULL) != SQLITE_OK) {
		r = store_db_error(s, err, "attachments");
		goto out;
	}
	while (r == 0 && sqlite3_step(st) == SQLITE_ROW) {
		uint8_t id[32];
		const char *hex = (const char *)sqlite3_column_text(st, 0);
		char parts[ZILA_BLOB_PARTS_MAX][ZILA_PART_MAX + 1];
		const char *pp[ZILA_BLOB_PARTS_MAX];
		size_t np = 0;
		if (!hex_id(hex, id))
			continue;
		bool present = zila_blob_present(s, id);
		if (present && sqlite3_column_int(st, 3) == 0)
			continue; /* here, and shown wherever its rows are */
		/* not here: asked for in every partition of its rows (a record of where it was
		 * shown may outlive a copy found damaged); here: in those it is not shown in */
		sqlite3_stmt *q = present ? pq : aq;
		sqlite3_bind_text(q, 1, hex, -1, SQLITE_TRANSIENT);
		while (np < ZILA_BLOB_PARTS_MAX && sqlite3_step(q) == SQLITE_ROW) {
			text_of(q, 0, parts[np], sizeof(parts[np]));
			pp[np] = parts[np];
			np++;
		}
		sqlite3_reset(q);
		r = fn(ctx, id, (uint64_t)sqlite3_column_int64(st, 1), sqlite3_column_int(st, 2) != 0,
		       present ? 0 : zila_blob_part_chunks(s, id), present, pp, np);
	}
out:
	sqlite3_finalize(st);
	sqlite3_finalize(pq);
	sqlite3_finalize(aq);
	return r;
}

int zila_blob_readable(struct zila_store *s, zila_part_filter_fn filter, void *fctx, uint64_t max_size,
		       zila_blob_held_fn fn, void *ctx, uint64_t *nabsent, uint64_t *nlarge, struct zila_error *err)
{
	sqlite3_stmt *st = NULL;
	char last[65] = "";
	int r = 0;
	if (nabsent)
		*nabsent = 0;
	if (nlarge)
		*nlarge = 0;
	if (!has_attachments(s))
		return 0;
	if (!has_table(s, "zila_blob_held") && (r = store_exec(s, HELD_SQL, err)) != 0)
		return r;
	/* only what is held shown in the row's partition goes (possession) */
	if (sqlite3_prepare_v2(s->db, "SELECT DISTINCT a.hash, a.district_id, a.size FROM attachments a"
				      " WHERE EXISTS (SELECT 1 FROM zila_blob_held h WHERE h.hash = a.hash AND h.part ="
				      " a.district_id) ORDER BY a.hash", -1, &st, NULL) != SQLITE_OK)
		return store_db_error(s, err, "attachments");
	while (r == 0 && sqlite3_step(st) == SQLITE_ROW) {
		const char *hex = (const char *)sqlite3_column_text(st, 0), *part = (const char *)sqlite3_column_text(st, 1);
		uint8_t id[32];
		/* a hash's first row a reader may read decides; the others are the same blob */
		if (hex == NULL || strcmp(hex, last) == 0 || !hex_id(hex, id) ||
		    (filter != NULL && !filter(fctx, part ? part : "")))
			continue;
		snprintf(last, sizeof(last), "%s", hex);
		uint64_t size = (uint64_t)sqlite3_column_int64(st, 2);
		if (!zila_blob_present(s, id)) {
			if (nabsent)
				(*nabsent)++;
		} else if (max_size > 0 && size > max_size) {
			if (nlarge)
				(*nlarge)++;
		} else {
			r = fn(ctx, id, size);
		}
	}
	sqlite3_finalize(st);
	return r;
}

struct zila_blob_writer {
	struct zila_store *s;
	uint8_t id[32];
	uint64_t size;
	struct zila_buf chunks;
	uint32_t next, n;
	char part[4200], man[4200], final[4200];
};

int zila_blob_writer_open(struct zila_store *s, const uint8_t id[32], uint64_t size, const uint8_t *chunk_hashes,
			  size_t nchunks, struct zila_blob_writer **out, uint32_t *next, struct zila_error *err)
{
	uint8_t got[32];
	char hex[65];
	int r;
	*out = NULL;
	*next = 0;
	zila_hex_encode(hex, id, 32);
	if (size > ZILA_BLOB_SIZE_MAX || nchunks != nchunks_of(size))
		return zila_error_set(err, ZILA_EFORMAT, "blob %.12s: its manifest does not fit its size", hex);
	zila_blob_id(chunk_hashes, nchunks, size, got);
	if (sodium_memcmp(got, id, 32) != 0)
		return zila_error_set(err, ZILA_EFORMAT, "blob %.12s: its manifest does not make its hash", hex);
	if (zila_blob_present(s, id)) {
		drop_partial(s, id);
		return zila_error_set(err, ZILA_EEXIST, "blob %.12s is here already", hex);
	}
	struct zila_blob_writer *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return zila_error_set(err, ZILA_ENOMEM, "out of memory");
	w->s = s;
	memcpy(w->id, id, 32);
	w->size = size;
	w->n = (uint32_t)nchunks;
	zila_buf_init(&w->chunks, MANIFEST_HEAD + nchunks * 32);
	blob_path(s, id, ".part", w->part, sizeof(w->part));
	blob_path(s, id, ".man", w->man, sizeof(w->man));
	blob_path(s, id, "", w->final, sizeof(w->final));
	uint8_t le[8];
	for (int i = 0; i < 8; i++)
		le[i] = (uint8_t)(size >> (8 * i));
	if ((r = zila_buf_put(&w->chunks, le, 8)) != 0 || (r = zila_buf_put(&w->chunks, chunk_hashes, nchunks * 32)) != 0) {
		r = zila_error_set(err, r, "out of memory");
		goto fail;
	}
	if ((r = make_dirs(s, id, err)) != 0)
		goto fail;
	w->next = zila_blob_part_chunks(s, id);
	if (w->next == 0) {
		/* not synced either: a manifest that does not verify resumes nothing */
		(void)!zila_os_remove(w->part);
		(void)!zila_os_remove(w->man);
		if ((r = zila_os_append(w->man, w->chunks.p, w->chunks.len, err)) != 0)
			goto fail;
	}
	*next = w->next;
	*out = w;
	return 0;
fail:
	zila_blob_writer_free(w);
	return r;
}

int zila_blob_writer_add(struct zila_blob_writer *w, uint32_t i, const uint8_t *p, size_t len, struct zila_error *err)
{
	uint8_t h[32];
	char hex[65];
	zila_hex_encode(hex, w->id, 32);
	if (i != w->next || i >= w->n)
		return zila_error_set(err, ZILA_EPROTO, "blob %.12s: chunk %u came where %u was expected", hex, i, w->next);
	uint64_t want = w->size - (uint64_t)i * ZILA_BLOB_CHUNK;
	if (want > ZILA_BLOB_CHUNK)
		want = ZILA_BLOB_CHUNK;
	crypto_generichash(h, 32, p, len, NULL, 0);
	if (len != want || sodium_memcmp(h, w->chunks.p + MANIFEST_HEAD + (size_t)i * 32, 32) != 0)
		return zila_error_set(err, ZILA_EFORMAT, "blob %.12s: chunk %u does not match its hash; refused", hex, i);
	int r = zila_os_append(w->part, p, len, err);
	if (r != 0)
		return r;
	w->next++;
	if (w->next < w->n)
		return 0;
	if (w->n == 0 && (r = zila_os_append(w->part, "", 0, err)) != 0)
		return r;
	/* not synced: a received blob is checked whenever it is read (served, copied out) and
	 * fetched again when damaged, so a power cut costs a fetch, never a wrong byte */
	if ((r = zila_os_finish(w->part, w->final, false, err)) != 0)
		return r;
	(void)!zila_os_remove(w->man);
	return 0;
}

bool zila_blob_writer_done(const struct zila_blob_writer *w)
{
	return w->next >= w->n;
}

void zila_blob_writer_free(struct zila_blob_writer *w)
{
	if (w == NULL)
		return;
	zila_buf_release(&w->chunks);
	free(w);
}

/* --- counting and collecting --------------------------------------------------------------- */

static int count_missing(void *ctx, const uint8_t id[32], uint64_t size, bool asked, uint32_t have)
{
	struct zila_blob_stats *st = ctx;
	(void)asked;
	if (st->nfirst < ZILA_BLOB_STATS_FIRST)
		memcpy(st->first[st->nfirst++], id, 32);
	st->nmissing++;
	st->missing_bytes += size;
	if (have > 0) {
		st->npartial++;
		st->partial_bytes += (uint64_t)have * ZILA_BLOB_CHUNK;
	}
	return 0;
}

int zila_blob_stats(struct zila_store *s, struct zila_blob_stats *st, struct zila_error *err)
{
	sqlite3_stmt *q = NULL;
	memset(st, 0, sizeof(*st));
	if (!has_attachments(s))
		return 0;
	if (sqlite3_prepare_v2(s->db, "SELECT count(*), coalesce(sum(size), 0) FROM (SELECT hash, max(size) AS size"
				      " FROM attachments GROUP BY hash)", -1, &q, NULL) != SQLITE_OK)
		return store_db_error(s, err, "attachments");
	if (sqlite3_step(q) == SQLITE_ROW) {
		st->nref = (uint64_t)sqlite3_column_int64(q, 0);
		st->ref_bytes = (uint64_t)sqlite3_column_int64(q, 1);
	}
	sqlite3_finalize(q);
	return missing_walk(s, count_missing, st, true, err);
}

struct collect {
	struct zila_store *s;
	char sub[4200];
	const char *prefix; /* the two hex digits of the directory */
	int64_t now, horizon;
	uint64_t n, bytes;
	int r;
};

/* A live row keeps a blob if the blob is held shown in its partition, or shown in none: a
 * blob held for d1 that only d2's rows name is not kept for them (possession). */
static bool referenced(struct zila_store *s, const char *hex)
{
	sqlite3_stmt *st = store_stmt(s, "SELECT 1 FROM attachments a WHERE a.hash = ?1 AND (EXISTS (SELECT 1 FROM"
					 " zila_blob_held h WHERE h.hash = ?1 AND h.part = a.district_id) OR NOT EXISTS"
					 " (SELECT 1 FROM zila_blob_held h WHERE h.hash = ?1)) LIMIT 1");
	bool yes = st == NULL; /* in doubt, keep it */
	if (st != NULL) {
		sqlite3_bind_text(st, 1, hex, -1, SQLITE_TRANSIENT);
		yes = sqlite3_step(st) == SQLITE_ROW;
		sqlite3_reset(st);
	}
	return yes;
}

static int collect_file(void *ctx, const char *name)
{
	struct collect *c = ctx;
	char hex[65], path[4400];
	size_t len = strlen(name);
	/* a final blob is 62 hex digits; .part and .man go with it; .tmp ones are a put's */
	if (len < 62 || (len != 62 && strcmp(name + 62, ".part") != 0 && strcmp(name + 62, ".man") != 0))
		return 0;
	snprintf(hex, sizeof(hex), "%s%.62s", c->prefix, name);
	uint8_t id[32];
	if (!hex_id(hex, id))
		return 0;
	if (referenced(c->s, hex)) {
		sqlite3_stmt *st = store_stmt(c->s, "DELETE FROM zila_blob_gone WHERE hash = ?");
		if (st != NULL) {
			sqlite3_bind_text(st, 1, hex, -1, SQLITE_TRANSIENT);
			(void)sqlite3_step(st);
			sqlite3_reset(st);
		}
		return 0;
	}
	int64_t since = -1;
	sqlite3_stmt *st = store_stmt(c->s, "SELECT since FROM zila_blob_gone WHERE hash = ?");
	if (st == NULL)
		return ZILA_EDB;
	sqlite3_bind_text(st, 1, hex, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) == SQLITE_ROW)
		since = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (since < 0) {
		st = store_stmt(c->s, "INSERT OR IGNORE INTO zila_blob_gone (hash, since) VALUES (?, ?)");
		if (st == NULL)
			return ZILA_EDB;
		sqlite3_bind_text(st, 1, hex, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 2, c->now);
		(void)sqlite3_step(st);
		sqlite3_reset(st);
		return 0;
	}
	if (since >= c->horizon)
		return 0;
	snprintf(path, sizeof(path), "%s/%s", c->sub, name);
	uint64_t size = 0;
	int64_t mt;
	if (zila_os_stat(path, &size, &mt) == 0 && zila_os_remove(path) == 0) {
		c->bytes += size;
		if (len == 62) {
			c->n++;
			/* the bytes are gone: what was shown of them goes too */
			st = store_stmt(c->s, "DELETE FROM zila_blob_held WHERE hash = ?");
			if (st != NULL) {
				sqlite3_bind_text(st, 1, hex, -1, SQLITE_TRANSIENT);
				(void)sqlite3_step(st);
				sqlite3_reset(st);
			}
		}
	}
	return 0;
}

/* Fetches asked for (zila attachment get) that are done with: the blob is here, or no live
 * row refers to it any more. */
static void prune_asks(struct zila_store *s)
{
	sqlite3_stmt *st = NULL;
	struct zila_buf gone;
	zila_buf_init(&gone, 64u << 20);
	(void)!store_exec(s, "DELETE FROM zila_blob_asks WHERE hash NOT IN (SELECT hash FROM attachments)", NULL);
	if (sqlite3_prepare_v2(s->db, "SELECT hash FROM zila_blob_asks", -1, &st, NULL) != SQLITE_OK)
		goto out;
	while (sqlite3_step(st) == SQLITE_ROW) {
		uint8_t id[32];
		if (hex_id((const char *)sqlite3_column_text(st, 0), id) && zila_blob_present(s, id))
			(void)!zila_buf_put(&gone, id, 32);
	}
	sqlite3_finalize(st);
	st = store_stmt(s, "DELETE FROM zila_blob_asks WHERE hash = ?");
	for (size_t i = 0; st != NULL && i + 32 <= gone.len; i += 32) {
		char hex[65];
		zila_hex_encode(hex, gone.p + i, 32);
		sqlite3_bind_text(st, 1, hex, -1, SQLITE_TRANSIENT);
		(void)sqlite3_step(st);
		sqlite3_reset(st);
	}
out:
	zila_buf_release(&gone);
}

int zila_blob_collect_step(struct zila_store *s, int64_t horizon_ms, unsigned *next, uint64_t *nremoved,
			   uint64_t *bytes_removed, struct zila_error *err)
{
	struct collect c;
	char name[3];
	if (*next >= ZILA_BLOB_COLLECT_STEPS)
		return 0;
	memset(&c, 0, sizeof(c));
	c.s = s;
	c.now = (int64_t)zila_wall_ms();
	c.horizon = horizon_ms;
	int r = ensure_tables(s, err);
	if (r != 0 || !has_attachments(s)) {
		*next = ZILA_BLOB_COLLECT_STEPS;
		return r;
	}
	snprintf(name, sizeof(name), "%02x", *next);
	snprintf(c.sub, sizeof(c.sub), "%s/" BLOB_DIR "/%s", s->dir, name);
	c.prefix = name;
	/* one transaction per directory: what it notes commits once */
	if ((r = store_exec(s, "BEGIN", err)) != 0)
		return r;
	r = zila_os_list(c.sub, collect_file, &c);
	if (r == ZILA_ENOTFOUND)
		r = 0;
	if (r == 0)
		r = store_exec(s, "COMMIT", err);
	else {
		(void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return zila_error_set(err, r, "cannot collect attachments in '%s'", c.sub);
	}
	if (r != 0) {
		(void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return r;
	}
	*nremoved += c.n;
	*bytes_removed += c.bytes;
	if (++*next == ZILA_BLOB_COLLECT_STEPS) {
		/* forget what is gone from disk, and asks done with */
		(void)!store_exec(s, "DELETE FROM zila_blob_gone WHERE hash IN (SELECT a.hash FROM attachments a WHERE"
				     " EXISTS (SELECT 1 FROM zila_blob_held h WHERE h.hash = a.hash AND h.part = a.district_id)"
				     " OR NOT EXISTS (SELECT 1 FROM zila_blob_held h WHERE h.hash = a.hash))", NULL);
		prune_asks(s);
	}
	return 0;
}

int zila_blob_collect(struct zila_store *s, int64_t horizon_ms, uint64_t *nremoved, uint64_t *bytes_removed,
		      struct zila_error *err)
{
	unsigned next = 0;
	int r = 0;
	*nremoved = *bytes_removed = 0;
	while (r == 0 && next < ZILA_BLOB_COLLECT_STEPS)
		r = zila_blob_collect_step(s, horizon_ms, &next, nremoved, bytes_removed, err);
	return r;
}
