/* Feed chains and forks (#15 item 8; proto/PROTOCOL.md, "Forks").
 *
 * A feed's chain hash covers the content of every entry up to its head:
 * chain(0) = 16 zero bytes, chain(n) = BLAKE2b-128(chain(n-1) || bytes of entry n), where a
 * version 2 entry's bytes are its signature (it covers the entry, whatever codec holds it). Two
 * replicas that hold one feed to the same head hold the same entries exactly when their
 * chains are equal, so digests and heads carry it. Equal heads with different chains, or an
 * entry that differs from the one held under its sequence number, mean its author signed two
 * histories: restored from an old backup, or tampered with. Such a fork is recorded
 * (zila_forks), logged, shown in status, and the author quarantined: nothing more of it is
 * admitted here until HQ revokes it. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "store_int.h"
#include "zila/log.h"

static void chain_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	uint8_t prev[ZILA_CHAIN_LEN] = { 0 }, out[ZILA_CHAIN_LEN];
	if (sqlite3_value_type(argv[0]) == SQLITE_BLOB && sqlite3_value_bytes(argv[0]) == ZILA_CHAIN_LEN)
		memcpy(prev, sqlite3_value_blob(argv[0]), ZILA_CHAIN_LEN);
	crypto_generichash_state g;
	crypto_generichash_init(&g, NULL, 0, ZILA_CHAIN_LEN);
	crypto_generichash_update(&g, prev, sizeof(prev));
	const uint8_t *p = sqlite3_value_blob(argv[1]);
	int n = sqlite3_value_bytes(argv[1]);
	if (p != NULL && n > 64 && p[0] >= 2) {
		p += n - 64;
		n = 64;
	}
	if (p != NULL && n > 0)
		crypto_generichash_update(&g, p, (unsigned long long)n);
	crypto_generichash_final(&g, out, sizeof(out));
	sqlite3_result_blob(ctx, out, sizeof(out), SQLITE_TRANSIENT);
}

int store_chain_register(sqlite3 *db)
{
	return sqlite3_create_function_v2(db, "zila_chain", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY,
					  NULL, chain_fn, NULL, NULL, NULL) == SQLITE_OK
		       ? 0
		       : ZILA_EDB;
}

int store_feed_advance(struct zila_store *s, int64_t feed, uint64_t seq, struct zila_view bytes, uint64_t hlc,
		       uint64_t seen)
{
	sqlite3_stmt *st = s->st_feed_head;
	sqlite3_bind_int64(st, 1, (int64_t)seq);
	sqlite3_bind_int64(st, 2, feed);
	sqlite3_bind_blob(st, 3, bytes.p, (int)bytes.len, SQLITE_STATIC);
	if (hlc != 0) {
		sqlite3_bind_int64(st, 4, (int64_t)hlc);
		sqlite3_bind_int64(st, 5, (int64_t)seen);
	}
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : ZILA_EDB;
}

int store_migrate_chains(struct zila_store *s, struct zila_error *err)
{
	/* Every feed from 0, its entries in sequence order (an upgrade: once). */
	int r = store_exec(s, "UPDATE zila_feeds SET chain = NULL", err);
	sqlite3_stmt *q = NULL, *u = NULL;
	if (r != 0)
		return r;
	if (sqlite3_prepare_v2(s->db, "SELECT feed, bytes FROM zila_entries ORDER BY feed, seq", -1, &q, NULL) !=
		    SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "UPDATE zila_feeds SET chain = zila_chain(chain, ?2) WHERE id = ?1", -1, &u,
			       NULL) != SQLITE_OK) {
		r = store_db_error(s, err, "cannot compute the feeds' chains");
		goto out;
	}
	while (r == 0 && sqlite3_step(q) == SQLITE_ROW) {
		sqlite3_bind_int64(u, 1, sqlite3_column_int64(q, 0));
		sqlite3_bind_value(u, 2, sqlite3_column_value(q, 1));
		if (sqlite3_step(u) != SQLITE_DONE)
			r = store_db_error(s, err, "cannot compute the feeds' chains");
		sqlite3_reset(u);
	}
out:
	sqlite3_finalize(q);
	sqlite3_finalize(u);
	return r;
}

bool store_is_forked(struct zila_store *s, const uint8_t origin[32])
{
	if (!s->forks_known) {
		sqlite3_stmt *q = NULL;
		s->nforked = 0;
		if (sqlite3_prepare_v2(s->db, "SELECT DISTINCT origin FROM zila_forks", -1, &q, NULL) == SQLITE_OK)
			while (sqlite3_step(q) == SQLITE_ROW && s->nforked < STORE_FORKED_MAX)
				if (sqlite3_column_bytes(q, 0) == 32)
					memcpy(s->forked[s->nforked++], sqlite3_column_blob(q, 0), 32);
		sqlite3_finalize(q);
		s->forks_known = true;
	}
	for (size_t i = 0; i < s->nforked; i++)
		if (memcmp(s->forked[i], origin, 32) == 0)
			return true;
	return false;
}

int zila_store_fork_note(struct zila_store *s, const uint8_t origin[32], const char *part, uint64_t seq,
			 const uint8_t *peer)
{
	char id[17];
	bool own = memcmp(origin, zila_store_device_pk(s), 32) == 0;
	if (store_is_forked(s, origin))
		return 0;
	for (int i = 0; i < 8; i++)
		snprintf(id + 2 * i, 3, "%02x", origin[i]);
	if (own)
		zila_log(ZILA_LOG_ERROR,
			 "this laptop's own changes in partition '%s' forked at or before #%llu: another replica holds "
			 "different entries under the same numbers (was this laptop restored from an old backup?). "
			 "Nothing more from this device is accepted by replicas that saw both; ask HQ to revoke this "
			 "device and enrol the laptop again",
			 part, (unsigned long long)seq);
	else
		zila_log(ZILA_LOG_ERROR,
			 "device %s… signed two different histories of its changes in partition '%s' (at or before #%llu): "
			 "restored from an old backup, or tampered with. Nothing more from it is accepted here; HQ: "
			 "revoke it and enrol the laptop again",
			 id, part, (unsigned long long)seq);
	sqlite3_stmt *st = NULL;
	int r = ZILA_EDB;
	if (sqlite3_prepare_v2(s->db,
			       "INSERT OR IGNORE INTO zila_forks(origin, part, seq, seen_at, peer) VALUES (?, ?, ?, ?, ?)",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_blob(st, 1, origin, 32, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, part, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, (int64_t)seq);
		sqlite3_bind_int64(st, 4, (int64_t)(store_now_ms(s) / 1000));
		if (peer != NULL)
			sqlite3_bind_blob(st, 5, peer, 32, SQLITE_STATIC);
		r = sqlite3_step(st) == SQLITE_DONE ? 0 : store_db_code(s);
	}
	sqlite3_finalize(st);
	s->forks_known = false;
	return r;
}

int zila_store_fork_each(struct zila_store *s, zila_fork_fn fn, void *ctx)
{
	sqlite3_stmt *q = NULL;
	int r = 0;
	if (sqlite3_prepare_v2(s->db, "SELECT origin, part, seq, seen_at FROM zila_forks ORDER BY seen_at, origin, part",
			       -1, &q, NULL) != SQLITE_OK)
		return ZILA_EDB;
	while (r == 0 && sqlite3_step(q) == SQLITE_ROW) {
		struct zila_fork f;
		memset(&f, 0, sizeof(f));
		if (sqlite3_column_bytes(q, 0) != 32)
			continue;
		memcpy(f.origin, sqlite3_column_blob(q, 0), 32);
		snprintf(f.part, sizeof(f.part), "%s", (const char *)sqlite3_column_text(q, 1));
		f.seq = (uint64_t)sqlite3_column_int64(q, 2);
		f.seen_at = (uint64_t)sqlite3_column_int64(q, 3);
		f.own = memcmp(f.origin, zila_store_device_pk(s), 32) == 0;
		r = fn(ctx, &f);
	}
	sqlite3_finalize(q);
	return r;
}
