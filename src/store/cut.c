/* Undoing what a revoked device wrote past its revocation's mark (#15 item 13;
 * proto/TRUST.md, "Entries past a mark"). Whether an entry stands depends only
 * on signed data (the entry and the revocations), so every replica ends with
 * the same entries, and the tables are then made again from them: the same rows
 * as a replica that never took the ones removed. */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "zila/log.h"

struct cut_feed {
  int64_t id;
  uint64_t from; /* the first sequence number removed */
};

/* The first entry of the feed that keep refuses, or 0. */
static int first_refused(struct zila_store *s, int64_t feed,
                         zila_entry_keep_fn keep, void *ctx, uint64_t *from) {
  sqlite3_stmt *q = NULL;
  int r = ZILA_EDB, rc;
  *from = 0;
  if (sqlite3_prepare_v2(
          s->db, "SELECT bytes FROM zila_entries WHERE feed = ? ORDER BY seq",
          -1, &q, NULL) != SQLITE_OK)
    goto out;
  sqlite3_bind_int64(q, 1, feed);
  while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
    struct entry e;
    struct zila_view b = zila_view_make(sqlite3_column_blob(q, 0),
                                        (size_t)sqlite3_column_bytes(q, 0));
    if (entry_parse_head(b, &e, false) != 0)
      continue;
    bool stands = keep(ctx, &e.info);
    uint64_t seq = e.info.seq;
    entry_release(&e);
    if (!stands) {
      *from = seq;
      break;
    }
  }
  r = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : ZILA_EDB;
out:
  sqlite3_finalize(q);
  return r;
}

/* Removes the feed's entries from `from` on; its head and chain go back to the
 * last kept. */
static int cut_feed(struct zila_store *s, const struct cut_feed *f,
                    size_t *ncut) {
  sqlite3_stmt *d = NULL, *q = NULL;
  int r = ZILA_EDB;
  if (sqlite3_prepare_v2(s->db,
                         "DELETE FROM zila_entries WHERE feed = ? AND seq >= ?",
                         -1, &d, NULL) != SQLITE_OK)
    goto out;
  sqlite3_bind_int64(d, 1, f->id);
  sqlite3_bind_int64(d, 2, (int64_t)f->from);
  if (sqlite3_step(d) != SQLITE_DONE)
    goto out;
  *ncut += (size_t)sqlite3_changes(s->db);
  /* the chain over the entries left, as store_feed_advance() made it */
  sqlite3_stmt *z = NULL;
  if (sqlite3_prepare_v2(
          s->db, "UPDATE zila_feeds SET head = 0, chain = NULL WHERE id = ?",
          -1, &z, NULL) != SQLITE_OK)
    goto out;
  sqlite3_bind_int64(z, 1, f->id);
  int rc = sqlite3_step(z);
  sqlite3_finalize(z);
  if (rc != SQLITE_DONE ||
      sqlite3_prepare_v2(s->db,
                         "SELECT seq, hlc, bytes FROM zila_entries WHERE feed "
                         "= ? ORDER BY seq",
                         -1, &q, NULL) != SQLITE_OK)
    goto out;
  sqlite3_bind_int64(q, 1, f->id);
  r = 0;
  while (r == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
    struct zila_view b = zila_view_make(sqlite3_column_blob(q, 2),
                                        (size_t)sqlite3_column_bytes(q, 2));
    r = store_feed_advance(s, f->id, (uint64_t)sqlite3_column_int64(q, 0), b,
                           (uint64_t)sqlite3_column_int64(q, 1),
                           store_now_ms(s) / 1000);
  }
  if (r == 0 && rc != SQLITE_DONE)
    r = ZILA_EDB;
out:
  sqlite3_finalize(d);
  sqlite3_finalize(q);
  return r;
}

int zila_store_cut(struct zila_store *s, const uint8_t (*origins)[32],
                   size_t norigins, zila_entry_keep_fn keep, void *ctx,
                   size_t *ncut, struct zila_error *err) {
  struct cut_feed *cuts = NULL;
  size_t ncuts = 0, cap = 0;
  sqlite3_stmt *q = NULL;
  struct zila_apply_stats st;
  int r, rc;
  *ncut = 0;
  memset(&st, 0, sizeof(st));
  if (norigins == 0)
    return 0;
  /* Pending local edits are sealed first: the tables are made again from
   * entries only. */
  if ((r = zila_store_seal(s, NULL, err)) != 0)
    return r;
  if ((r = store_begin(s, err)) != 0)
    return r;
  /* and what was written since, under the write lock: a write committed between
   * that seal and this transaction would be wiped with the tables */
  if ((r = store_seal_locked(s, NULL, err)) != 0) {
    store_rollback(s);
    return r;
  }
  if ((r = store_hw_check(s)) != 0)
    goto dberr;
  r = ZILA_EDB;
  if (sqlite3_prepare_v2(s->db,
                         "SELECT f.id FROM zila_feeds f JOIN zila_origins o ON "
                         "o.id = f.origin WHERE o.key = ?",
                         -1, &q, NULL) != SQLITE_OK)
    goto dberr;
  r = 0;
  for (size_t k = 0; r == 0 && k < norigins; k++) {
    /* This device's own feeds are never cut: it would hand their sequence
     * numbers out again. */
    if (memcmp(origins[k], zila_store_device_pk(s), 32) == 0)
      continue;
    sqlite3_reset(q);
    sqlite3_bind_blob(q, 1, origins[k], 32, SQLITE_STATIC);
    while (r == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
      struct cut_feed f = {sqlite3_column_int64(q, 0), 0};
      if ((r = first_refused(s, f.id, keep, ctx, &f.from)) != 0 || f.from == 0)
        continue;
      if (ncuts == cap) {
        size_t ncap = cap ? 2 * cap : 8;
        struct cut_feed *nc = realloc(cuts, ncap * sizeof(*nc));
        if (nc == NULL) {
          r = ZILA_ENOMEM;
          break;
        }
        cuts = nc;
        cap = ncap;
      }
      cuts[ncuts++] = f;
    }
    if (r == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
      r = ZILA_EDB;
  }
  sqlite3_finalize(q);
  q = NULL;
  for (size_t i = 0; r == 0 && i < ncuts; i++)
    r = cut_feed(s, &cuts[i], ncut);
  /* the schema as the entries left make it (a schema entry cut is undone), then
   * the rows */
  if (r == 0 && *ncut > 0)
    r = store_schema_redo(s, &st);
  if (r == 0 && *ncut > 0)
    r = store_schema_save_blocked(s);
  if (r == 0 && *ncut > 0)
    r = store_save_hlc(s);
  if (r != 0)
    goto dberr;
  free(cuts);
  if ((r = store_commit(s, err)) == 0 && *ncut > 0)
    zila_log(ZILA_LOG_WARN,
             "undid %zu entries of a revoked device past its revocation's "
             "mark; the rows they "
             "changed went back to the versions that stand",
             *ncut);
  return r;
dberr:
  sqlite3_finalize(q);
  free(cuts);
  store_rollback(s);
  *ncut = 0;
  return r == ZILA_ENOMEM
             ? zila_error_set(err, r, "out of memory")
             : store_db_error(s, err, "cannot undo a revoked device's entries");
}
