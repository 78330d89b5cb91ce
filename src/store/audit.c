/* The audit trail: every change of every entry held, decoded for people to read, and the
 * counts `zila status` shows. */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

struct walker {
	zila_change_fn fn;
	void *ctx;
	const char *table, *id;
};

static int walk_entry(struct walker *w, struct entry *e)
{
	struct zila_view in = e->body, name;
	uint64_t ntab, n;
	int r = zila_view_get_varint(&in, &ntab);
	if (r != 0 || ntab > 4096)
		return r ? r : ZILA_EFORMAT;
	char **tnames = calloc((size_t)ntab + 1, sizeof(char *));
	char ***cnames = calloc((size_t)ntab + 1, sizeof(char **));
	uint64_t *ncols = calloc((size_t)ntab + 1, sizeof(uint64_t));
	const char **cols = NULL;
	struct zval *vals = NULL;
	if (tnames == NULL || cnames == NULL || ncols == NULL) {
		r = ZILA_ENOMEM;
		goto out;
	}
	uint64_t maxc = 0;
	for (uint64_t i = 0; r == 0 && i < ntab; i++) {
		r = zila_view_get_lenbytes(&in, 255, &name);
		r = r ? r : zila_view_get_varint(&in, &ncols[i]);
		if (r != 0 || ncols[i] > 32767) {
			r = r ? r : ZILA_EFORMAT;
			break;
		}
		tnames[i] = strndup((const char *)name.p, name.len);
		cnames[i] = calloc((size_t)ncols[i] + 1, sizeof(char *));
		if (tnames[i] == NULL || cnames[i] == NULL) {
			r = ZILA_ENOMEM;
			break;
		}
		for (uint64_t c = 0; r == 0 && c < ncols[i]; c++) {
			r = zila_view_get_lenbytes(&in, 255, &name);
			if (r == 0 && (cnames[i][c] = strndup((const char *)name.p, name.len)) == NULL)
				r = ZILA_ENOMEM;
		}
		if (ncols[i] > maxc)
			maxc = ncols[i];
	}
	r = r ? r : zila_view_get_varint(&in, &n);
	if (r != 0)
		goto out;
	cols = calloc((size_t)maxc + 1, sizeof(*cols));
	vals = calloc((size_t)maxc + 1, sizeof(*vals));
	if (cols == NULL || vals == NULL) {
		r = ZILA_ENOMEM;
		goto out;
	}
	for (uint64_t k = 0; r == 0 && k < n; k++) {
		uint64_t di, cnt, c;
		uint8_t op;
		struct zila_change ch;
		memset(&ch, 0, sizeof(ch));
		r = zila_view_get_varint(&in, &di);
		r = r ? r : zila_view_get_u8(&in, &op);
		r = r ? r : val_get(&in, &ch.pk);
		if (r == 0 && di >= ntab)
			r = ZILA_EFORMAT;
		if (r != 0)
			break;
		ch.entry = &e->info;
		ch.table = tnames[di];
		ch.op = op;
		ch.cols = cols;
		ch.vals = vals;
		if (op == OP_UPSERT) {
			for (c = 0; r == 0 && c < ncols[di]; c++) {
				cols[c] = cnames[di][c];
				r = val_get(&in, &vals[c]);
			}
			ch.ncols = (size_t)ncols[di];
		} else if (op == OP_UPDATE) {
			r = zila_view_get_varint(&in, &cnt);
			if (r == 0 && cnt > ncols[di])
				r = ZILA_EFORMAT;
			for (uint64_t j = 0; r == 0 && j < cnt; j++) {
				r = zila_view_get_varint(&in, &c);
				if (r == 0 && c >= ncols[di])
					r = ZILA_EFORMAT;
				if (r == 0) {
					cols[j] = cnames[di][c];
					r = val_get(&in, &vals[j]);
				}
			}
			ch.ncols = (size_t)cnt;
		} else if (op != OP_DELETE) {
			r = ZILA_EFORMAT;
		}
		if (r != 0)
			break;
		if (w->table != NULL && strcmp(w->table, ch.table) != 0)
			continue;
		if (w->id != NULL && !(ch.pk.type == VAL_TEXT && strlen(w->id) == ch.pk.len &&
				       memcmp(w->id, ch.pk.p, ch.pk.len) == 0))
			continue;
		r = w->fn(w->ctx, &ch);
	}
out:
	for (uint64_t i = 0; tnames && cnames && ncols && i < ntab; i++) {
		free(tnames[i]);
		for (uint64_t c = 0; cnames[i] && c < ncols[i]; c++)
			free(cnames[i][c]);
		free(cnames[i]);
	}
	free(tnames);
	free(cnames);
	free(ncols);
	free(cols);
	free(vals);
	return r;
}

static int walk_cb(void *ctx, const struct zila_entry_info *info, struct zila_view bytes)
{
	struct entry e;
	(void)info;
	int r = entry_parse(bytes, &e, false);
	if (r != 0)
		return 0; /* a damaged stored entry is skipped in the trail, not fatal */
	r = walk_entry(ctx, &e);
	entry_release(&e);
	return r;
}

int zila_store_walk_changes(struct zila_store *s, const char *table, const char *id, zila_change_fn fn, void *ctx)
{
	struct walker w = { fn, ctx, table, id };
	int r = store_exec(s, "BEGIN", NULL);
	if (r != 0)
		return r;
	r = zila_store_entries_since(s, NULL, NULL, NULL, walk_cb, &w);
	store_rollback(s);
	return r;
}

static int64_t count(struct zila_store *s, const char *q, int64_t arg)
{
	sqlite3_stmt *st = NULL;
	int64_t n = -1;
	if (sqlite3_prepare_v2(s->db, q, -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_bind_parameter_count(st) > 0)
			sqlite3_bind_int64(st, 1, arg);
		if (sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	return n;
}

int zila_store_own_entries(struct zila_store *s, int64_t *out)
{
	*out = count(s, "SELECT coalesce(sum(head), 0) FROM zila_feeds WHERE origin = ?", s->self_id);
	return *out < 0 ? ZILA_EDB : 0;
}

int zila_store_counts(struct zila_store *s, struct zila_store_counts *out)
{
	memset(out, 0, sizeof(*out));
	if (zila_store_pending(s, &out->pending) != 0)
		out->pending = -1;
	out->entries = count(s, "SELECT count(*) FROM zila_entries", 0);
	if (zila_store_own_entries(s, &out->own_entries) != 0)
		out->own_entries = -1;
	out->held = count(s, "SELECT count(*) FROM zila_entries WHERE applied = 0", 0);
	out->held_bytes = count(s, "SELECT coalesce(sum(length(bytes)), 0) FROM zila_entries WHERE applied = 0", 0);
	out->held_most = count(s, "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM zila_entries e"
				  " JOIN zila_feeds f ON f.id = e.feed WHERE e.applied = 0 GROUP BY f.origin)", 0);
	out->conflicts = count(s, "SELECT count(*) FROM zila_conflicts WHERE resolved = 0", 0);
	out->parked = count(s, "SELECT count(*) FROM zila_parked", 0);
	out->orphans = count(s, "SELECT count(*) FROM zila_parked WHERE kind = ?", PARK_ORPHAN);
	out->feeds = count(s, "SELECT count(*) FROM zila_feeds WHERE head > 0", 0);
	if (out->pending < 0 || out->entries < 0 || out->conflicts < 0 || out->parked < 0 || out->orphans < 0)
		return ZILA_EDB;
	return 0;
}

/* The mirror's walk: entries by the order they were stored (zila_entries ids), not by HLC,
 * so that a mark taken once is a place to resume from whatever HLCs arrive later. */
int zila_store_changes_after(struct zila_store *s, int64_t after, size_t max_entries, zila_change_fn fn, void *ctx,
			     struct zila_change_mark *out)
{
	struct walker w = { fn, ctx, NULL, NULL };
	sqlite3_stmt *st = NULL;
	memset(out, 0, sizeof(*out));
	out->next = after;
	int r = store_exec(s, "BEGIN", NULL);
	if (r != 0)
		return r;
	if (sqlite3_prepare_v2(s->db, "SELECT id, bytes FROM zila_entries WHERE id > ? ORDER BY id LIMIT ?", -1, &st,
			       NULL) != SQLITE_OK) {
		r = ZILA_EDB;
		goto out;
	}
	sqlite3_bind_int64(st, 1, after);
	sqlite3_bind_int64(st, 2, max_entries > 0 && max_entries < INT64_MAX ? (int64_t)max_entries : INT64_MAX);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct zila_view bytes = { sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1) };
		struct entry e;
		if (entry_parse(bytes, &e, false) == 0) {
			r = walk_entry(&w, &e);
			entry_release(&e);
		}
		/* A damaged stored entry changed no row: it is passed, as in the trail. */
		if (r != 0)
			goto out;
		out->next = sqlite3_column_int64(st, 0);
		out->nwalked++;
	}
	if (rc != SQLITE_DONE) {
		r = ZILA_EDB;
		goto out;
	}
	out->top = count(s, "SELECT coalesce(max(id), 0) FROM zila_entries", 0);
	out->held_from = count(s, "SELECT coalesce(min(id), 0) FROM zila_entries WHERE applied = 0 AND id <= ?",
			       out->next);
	out->behind = count(s, "SELECT count(*) FROM zila_entries WHERE id > ?", out->next);
	if (out->top < 0 || out->held_from < 0 || out->behind < 0)
		r = ZILA_EDB;
out:
	sqlite3_finalize(st);
	store_rollback(s);
	return r;
}
