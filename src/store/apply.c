/* Receiving entries: verify, admit, store in feed order, and merge. Each cell is a
 * last-writer-wins register ordered by (HLC, origin key); row existence is a register of
 * its own. Values a concurrent write overwrites are kept in zila_conflicts. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "zila/log.h"
#include "zila/store_test.h"

struct dirtab {
	struct table *t;
	int ncols;
	int *map; /* entry column -> local column, -1: a column this replica lacks */
	bool has_pcol; /* the entry names the table's partition column */
	bool unknown;  /* it names a column this replica lacks (an upsert or an update of it waits) */
};

struct applier {
	struct zila_store *s;
	struct zila_apply_stats *st;
	struct entry *e;
	int64_t origin;
	struct rowstate row;
	int row_cols;
	struct dirtab *dir;
	int ndir;
	struct zila_buf keybuf[2]; /* key_canon() */
};

static void dir_free(struct applier *a)
{
	for (int i = 0; i < a->ndir; i++)
		free(a->dir[i].map);
	free(a->dir);
	a->dir = NULL;
	a->ndir = 0;
}

static int col_by_name(const struct table *t, const uint8_t *p, size_t n)
{
	for (int i = 0; i < t->ncols; i++)
		if (strlen(t->cols[i]) == n && memcmp(t->cols[i], p, n) == 0)
			return i;
	return -1;
}

/* Reads the table directory; unknown tables or columns mean a newer schema (ZILA_ESCHEMA). */
static int read_dir(struct applier *a, struct zila_view *in)
{
	uint64_t ntab, ncols;
	struct zila_view name;
	int r = zila_view_get_varint(in, &ntab);
	if (r != 0)
		return r;
	a->dir = calloc((size_t)ntab + 1, sizeof(*a->dir));
	if (a->dir == NULL)
		return ZILA_ENOMEM;
	for (uint64_t i = 0; i < ntab; i++) {
		struct dirtab *d = &a->dir[a->ndir++];
		r = zila_view_get_lenbytes(in, 255, &name);
		r = r ? r : zila_view_get_varint(in, &ncols);
		if (r != 0)
			return r;
		d->t = store_table_by_name(a->s, (const char *)name.p, name.len);
		d->ncols = (int)ncols;
		d->map = calloc((size_t)ncols + 1, sizeof(int));
		if (d->map == NULL)
			return ZILA_ENOMEM;
		for (uint64_t c = 0; c < ncols; c++) {
			if ((r = zila_view_get_lenbytes(in, 255, &name)) != 0)
				return r;
			d->map[c] = d->t ? col_by_name(d->t, name.p, name.len) : -1;
			if (d->t == NULL || d->map[c] == d->t->pk)
				return ZILA_ESCHEMA;
			if (d->map[c] < 0) {
				d->unknown = true;
				continue;
			}
			d->has_pcol |= d->map[c] == d->t->pcol;
		}
		if (d->t == NULL)
			return ZILA_ESCHEMA;
		/* Org-wide tables live only in the org-wide partition; rows of partitioned tables
		 * are checked one by one (a NULL partition value is org-wide too). */
		if (d->t->pcol < 0 && a->e->info.part[0] != '\0')
			return ZILA_ESCOPE;
	}
	return 0;
}

/* Did the author of e know of the write v when it wrote? */
static bool covers(struct applier *a, const struct ver *v)
{
	if (v->origin == a->origin)
		return true;
	const uint8_t *key = store_origin_key(a->s, v->origin);
	if (key == NULL)
		return true;
	for (size_t i = 0; i < a->e->ndeps; i++)
		if (memcmp(a->e->deps[i].origin, key, 32) == 0)
			return a->e->deps[i].seq >= v->seq;
	return false;
}

static int record_conflict(struct applier *a, struct table *t, const struct zval *pk, int col,
			   const struct zval *kept, const struct ver *kv, const struct zval *lost,
			   const struct ver *lv)
{
	struct zila_store *s = a->s;
	sqlite3_stmt *st = s->st_conflict;
	const uint8_t *ko = store_origin_key(s, kv->origin), *lo = store_origin_key(s, lv->origin);
	sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
	val_bind(st, 2, pk);
	sqlite3_bind_text(st, 3, t->cols[col], -1, SQLITE_STATIC);
	val_bind(st, 4, kept);
	if (ko)
		sqlite3_bind_blob(st, 5, ko, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, (int64_t)kv->hlc);
	val_bind(st, 7, lost);
	if (lo)
		sqlite3_bind_blob(st, 8, lo, 32, SQLITE_STATIC);
	sqlite3_bind_int64(st, 9, (int64_t)lv->hlc);
	sqlite3_bind_int64(st, 10, (int64_t)(store_now_ms(s) / 1000));
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
		return ZILA_EDB;
	a->st->nconflicts++;
	if (s->open_conflicts >= 0)
		s->open_conflicts++;
	return 0;
}

static int merge_cell(struct applier *a, struct table *t, const struct zval *pk, int c,
		      const struct zval *val, const struct ver *v, bool *changed)
{
	struct rowstate *r = &a->row;
	struct ver *cur = &r->cver[c];
	int cmp = ver_cmp(a->s, v, cur);
	bool had = cur->hlc != 0;
	if (cmp > 0 && a->s->reapplying) {
		/* made again after a cut: the conflicts were recorded (and settled) the first time */
		if (r->track && !val_equal(val, &r->vals[c]))
			r->dirty |= DIRTY_BIT(c);
		r->vals[c] = *val;
		*cur = *v;
		*changed = true;
	} else if (cmp > 0) {
		if (r->track && !val_equal(val, &r->vals[c]))
			r->dirty |= DIRTY_BIT(c);
		if (had && r->exists && !covers(a, cur) && !val_equal(val, &r->vals[c])) {
			int rr = record_conflict(a, t, pk, c, val, v, &r->vals[c], cur);
			if (rr != 0)
				return rr;
		} else if (had && covers(a, cur)) {
			/* written with the value here in view: whatever conflict it ended is settled */
			int rr = store_conflicts_settle(a->s, t, pk, c, cur->hlc);
			if (rr != 0)
				return rr;
		}
		r->vals[c] = *val;
		*cur = *v;
		*changed = true;
	} else if (cmp < 0 && !a->s->reapplying && had && r->exists && cur->origin != v->origin &&
		   !val_equal(val, &r->vals[c])) {
		return record_conflict(a, t, pk, c, &r->vals[c], cur, val, v);
	}
	return 0;
}

static bool part_matches(const struct zval *v, const char *part)
{
	if (v->type == VAL_NULL)
		return part[0] == '\0';
	if (v->type != VAL_TEXT)
		return false;
	return strlen(part) == v->len && memcmp(part, v->p, v->len) == 0;
}

static int apply_change(struct applier *a, struct zila_view *in)
{
	struct zila_store *s = a->s;
	uint64_t di, n;
	uint8_t op;
	struct zval pk, val;
	int r = zila_view_get_varint(in, &di);
	r = r ? r : zila_view_get_u8(in, &op);
	r = r ? r : val_get(in, &pk);
	if (r != 0)
		return r;
	if (di >= (uint64_t)a->ndir || pk.type == VAL_NULL || pk.type == VAL_REAL)
		return ZILA_EFORMAT;
	struct dirtab *d = &a->dir[di];
	struct table *t = d->t;
	/* The INTEGER 1001 must find the TEXT '1001' of another partition (and 'ABC' the row
	 * 'abc' under NOCASE), or the check below is skipped and SQLite writes over that row. */
	if ((r = key_canon(s, t, &pk, a->keybuf)) != 0)
		return r;
	if (pk.type == VAL_REAL)
		return ZILA_EFORMAT;
	struct rowstate *row = &a->row;
	if (a->row_cols != t->ncols) {
		row_release(row);
		row_init(row, t->ncols);
		a->row_cols = t->ncols;
	}
	if ((r = row_load(s, t, &pk, row, true)) != 0)
		return r;
	/* the values came from the table: merge_cell marks each one it changes */
	row->track = ROW_VISIBLE(row) && row->has_rid;
	if (row->known && strcmp(row->part, a->e->info.part) != 0)
		return ZILA_ESCOPE;
	if (!row->known) {
		/* An update or delete of a row of a rowid table that neither the table nor a state
		 * by key knows: its row may have been removed here without a capture (a REPLACE on
		 * its rowid), its state left at that rowid. The next seal walks the table against
		 * its states and seals such a removal as a delete (row_materialize). */
		if (t->has_rowid && op != OP_UPSERT && !t->gone_seen) {
			zila_log(ZILA_LOG_DEBUG, "a merge updates a row of '%s' that is not here: the next seal looks "
				 "for rows removed without a capture", t->name);
			t->gone_seen = true;
		}
		part_copy(row->part, a->e->info.part);
		/* a column the entry does not name (added after it was written) starts at its default */
		for (int c = 0; t->dflt != NULL && c < t->ncols; c++)
			if (c != t->pk)
				val_default(&row->vals[c], t, c);
	}
	struct ver v = { a->e->info.hlc, a->origin, a->e->info.seq };
	bool was_visible = ROW_VISIBLE(row), changed = false;
	switch (op) {
	case OP_UPSERT:
		if (d->unknown)
			return ZILA_ESCHEMA;
		if (ver_cmp(s, &v, &row->ever) > 0) {
			row->exists = true;
			row->ever = v;
			changed = true;
		}
		if (ver_cmp(s, &v, &row->cver[t->pk]) > 0) {
			row->vals[t->pk] = pk;
			row->cver[t->pk] = v;
		}
		for (int c = 0; r == 0 && c < d->ncols; c++) {
			r = val_get(in, &val);
			if (r == 0 && d->map[c] == t->pcol && !part_matches(&val, a->e->info.part))
				r = ZILA_ESCOPE;
			r = r ? r : merge_cell(a, t, &pk, d->map[c], &val, &v, &changed);
		}
		/* An upsert that leaves the partition column out still puts the row in its
		 * entry's partition (else a NULL there would make it org-wide). */
		if (r == 0 && t->pcol >= 0 && !d->has_pcol) {
			struct zval pv = { .type = VAL_NULL };
			if (a->e->info.part[0] != '\0') {
				pv.type = VAL_TEXT;
				pv.p = (const uint8_t *)a->e->info.part;
				pv.len = strlen(a->e->info.part);
			}
			r = merge_cell(a, t, &pk, t->pcol, &pv, &v, &changed);
		}
		break;
	case OP_UPDATE:
		r = zila_view_get_varint(in, &n);
		if (r == 0 && n > (uint64_t)d->ncols)
			r = ZILA_EFORMAT;
		for (uint64_t k = 0; r == 0 && k < n; k++) {
			uint64_t c;
			r = zila_view_get_varint(in, &c);
			if (r == 0 && c >= (uint64_t)d->ncols)
				r = ZILA_EFORMAT;
			r = r ? r : val_get(in, &val);
			if (r == 0 && d->map[c] < 0)
				r = ZILA_ESCHEMA; /* it writes a column this replica lacks: the entry waits */
			if (r == 0 && d->map[c] == t->pcol && !part_matches(&val, a->e->info.part))
				r = ZILA_ESCOPE;
			r = r ? r : merge_cell(a, t, &pk, d->map[c], &val, &v, &changed);
		}
		break;
	case OP_DELETE:
		if (ver_cmp(s, &v, &row->ever) > 0) {
			row->exists = false;
			row->ever = v;
			changed = true;
		}
		break;
	default:
		r = ZILA_EFORMAT;
	}
	if (r != 0)
		return r;
	if (!row->known && row->vals[t->pk].type == VAL_NULL)
		row->vals[t->pk] = pk;
	if (!changed)
		return 0;
	return row_materialize(s, t, &pk, row, was_visible, a->st);
}

/* Merges an entry's body. ZILA_ESCHEMA: this replica lacks a table or column (hold it);
 * ZILA_ESCOPE / ZILA_EFORMAT: the entry is bad (reject it); others: database trouble. */
static int apply_body(struct zila_store *s, struct entry *e, int64_t origin, struct zila_apply_stats *st)
{
	/* a schema change HQ distributes (schema.c). Other entries wait while they name a
	 * table or column this replica lacks (read_dir), not for their author's version
	 * number: after a schema entry is undone (a revocation) or lost to another HQ
	 * device's, a laptop's entries written on top of it that name none of what it made
	 * are taken as any, not held until the organisation reaches that number again */
	if (store_schema_entry(e->body))
		return store_schema_apply(s, e);
	struct applier a;
	memset(&a, 0, sizeof(a));
	a.s = s;
	a.st = st;
	a.e = e;
	a.origin = origin;
	row_init(&a.row, 1);
	a.row_cols = 1;
	zila_buf_init(&a.keybuf[0], 64u << 20);
	zila_buf_init(&a.keybuf[1], 64u << 20);
	struct zila_view in = e->body;
	uint64_t n;
	int r = read_dir(&a, &in);
	r = r ? r : zila_view_get_varint(&in, &n);
	for (uint64_t i = 0; r == 0 && i < n; i++)
		r = apply_change(&a, &in);
	if (r == 0 && in.len != 0)
		r = ZILA_EFORMAT;
	dir_free(&a);
	row_release(&a.row);
	zila_buf_release(&a.keybuf[0]);
	zila_buf_release(&a.keybuf[1]);
	return r;
}

static void describe(char *out, size_t n, const struct zila_entry_info *i)
{
	char hex[17];
	zila_hex_encode(hex, i->origin, 8);
	snprintf(out, n, "device %s feed '%s' seq %llu", hex, i->part[0] ? i->part : "(org)",
		 (unsigned long long)i->seq);
}

struct incoming {
	struct entry e;
	struct zila_view bytes;
	bool ok;
};

static int cmp_incoming(const void *pa, const void *pb)
{
	const struct incoming *a = pa, *b = pb;
	if (a->ok != b->ok)
		return a->ok ? -1 : 1;
	if (a->e.info.hlc != b->e.info.hlc)
		return a->e.info.hlc < b->e.info.hlc ? -1 : 1;
	int c = memcmp(a->e.info.origin, b->e.info.origin, 32);
	if (c != 0)
		return c;
	c = strcmp(a->e.info.part, b->e.info.part);
	if (c != 0)
		return c;
	return a->e.info.seq < b->e.info.seq ? -1 : a->e.info.seq > b->e.info.seq;
}

static int store_entry(struct zila_store *s, int64_t feed, const struct incoming *in, int applied)
{
	sqlite3_stmt *st = s->st_entry_put;
	sqlite3_bind_int64(st, 1, feed);
	sqlite3_bind_int64(st, 2, (int64_t)in->e.info.seq);
	sqlite3_bind_int64(st, 3, (int64_t)in->e.info.hlc);
	sqlite3_bind_int(st, 4, applied);
	sqlite3_bind_blob(st, 5, in->bytes.p, (int)in->bytes.len, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
		return ZILA_EDB;
	return store_feed_advance(s, feed, in->e.info.seq, in->bytes, in->e.info.hlc, store_now_ms(s) / 1000);
}

/* An entry under a sequence number this replica holds: the same bytes, or a fork (fork.c),
 * proven by the two signed entries. */
static int check_same(struct zila_store *s, int64_t feed, const struct incoming *x)
{
	int r = 0;
	/* prepared once: a whole bundle applied again is a duplicate per entry */
	if (s->st_same == NULL &&
	    sqlite3_prepare_v3(s->db, "SELECT bytes FROM zila_entries WHERE feed = ? AND seq = ?", -1,
			       SQLITE_PREPARE_PERSISTENT, &s->st_same, NULL) != SQLITE_OK)
		return ZILA_EDB;
	sqlite3_stmt *q = s->st_same;
	sqlite3_bind_int64(q, 1, feed);
	sqlite3_bind_int64(q, 2, (int64_t)x->e.info.seq);
	if (sqlite3_step(q) == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(q, 0);
		const void *p = sqlite3_column_blob(q, 0);
		/* A version 2 entry is the same under either codec: its signature covers it. */
		bool same = x->e.version >= 2 && n > 64 && x->bytes.len > 64
				    ? ((const uint8_t *)p)[0] == x->bytes.p[0] &&
					      memcmp((const uint8_t *)p + n - 64, x->bytes.p + x->bytes.len - 64, 64) == 0
				    : n == x->bytes.len && (n == 0 || memcmp(p, x->bytes.p, n) == 0);
		if (!same)
			r = zila_store_fork_note(s, x->e.info.origin, x->e.info.part, x->e.info.seq, NULL);
	}
	sqlite3_reset(q);
	return r;
}

int zila_store_feed_seen(struct zila_store *s, const uint8_t origin[32], const char *part, uint64_t *seen)
{
	sqlite3_stmt *q = NULL;
	int r = ZILA_EDB;
	*seen = 0;
	if (sqlite3_prepare_v2(s->db,
			       "SELECT f.seen FROM zila_feeds f JOIN zila_origins o ON o.id = f.origin"
			       " WHERE o.key = ?1 AND f.part = ?2",
			       -1, &q, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_blob(q, 1, origin, 32, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, part, -1, SQLITE_STATIC);
	int rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		*seen = (uint64_t)sqlite3_column_int64(q, 0);
	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		r = 0;
out:
	sqlite3_finalize(q);
	return r;
}

static void observe_clock(struct zila_store *s, uint64_t hlc)
{
	/* Follow a peer's clock, but never more than MAX_SKEW_MS past the time we date by. */
	uint64_t cap = (store_stamp_ms(s) + MAX_SKEW_MS) << 16;
	if (hlc > cap)
		hlc = cap;
	if (hlc > s->hlc)
		s->hlc = hlc;
}

/* What held entries wait for: the tables and columns this replica has, and its schema
 * version ("hash:version"). */
static void schema_key(struct zila_store *s, char out[64])
{
	crypto_generichash_state h;
	uint8_t fp[16];
	char hex[33];
	crypto_generichash_init(&h, NULL, 0, sizeof(fp));
	for (int i = 0; i < s->ntables; i++) {
		const struct table *t = s->tables[i];
		crypto_generichash_update(&h, (const uint8_t *)t->name, strlen(t->name) + 1);
		for (int c = 0; c < t->ncols; c++)
			crypto_generichash_update(&h, (const uint8_t *)t->cols[c], strlen(t->cols[c]) + 1);
		crypto_generichash_update(&h, (const uint8_t *)"", 1);
	}
	/* and the replica's own schema: a local table in the way of HQ's may have moved */
	sqlite3_stmt *st = NULL;
	int64_t cookie = -1;
	if (sqlite3_prepare_v2(s->db, "PRAGMA schema_version", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		cookie = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	crypto_generichash_update(&h, (const uint8_t *)&cookie, sizeof(cookie));
	crypto_generichash_final(&h, fp, sizeof(fp));
	zila_hex_encode(hex, fp, sizeof(fp));
	snprintf(out, 64, "%s:%lld", hex, (long long)s->schema);
}

#define META_HELD "held_schema" /* the schema_key() held entries were last tried against */

/* Held entries are tried again only when the schema they wait for may have come: a
 * thousand of them cost an apply window nothing while it stays the same. A schema entry
 * among them changes the schema (schema.c), so they are walked again until it stays. The
 * ids are read first: a schema change may not run beside an open read of the replica. */
static int retry_held(struct zila_store *s, struct zila_apply_stats *st)
{
	sqlite3_stmt *q = NULL, *u = NULL, *g = NULL;
	char key[64], *tried = NULL;
	int64_t *ids = NULL;
	size_t nids = 0, cap = 0;
	schema_key(s, key);
	int r = zila_store_meta_get(s, META_HELD, &tried);
	bool same = r == 0 && strcmp(tried, key) == 0;
	free(tried);
	if (r != 0 && r != ZILA_ENOTFOUND)
		return r;
	if (same)
		return 0;
	r = ZILA_EDB;
	if (sqlite3_prepare_v2(s->db, "SELECT e.id FROM zila_entries e WHERE e.applied = 0 ORDER BY e.hlc, e.id", -1, &q,
			       NULL) ||
	    sqlite3_prepare_v2(s->db,
			       "SELECT e.bytes, f.origin FROM zila_entries e JOIN zila_feeds f ON f.id = e.feed"
			       " WHERE e.id = ? AND e.applied = 0",
			       -1, &g, NULL) ||
	    sqlite3_prepare_v2(s->db, "UPDATE zila_entries SET applied = 1 WHERE id = ?", -1, &u, NULL))
		goto out;
	for (int pass = 0; pass < 1000; pass++) {
		char before[64];
		schema_key(s, before);
		nids = 0;
		r = 0;
		sqlite3_reset(q);
		while (r == 0 && sqlite3_step(q) == SQLITE_ROW) {
			if (nids == cap) {
				int64_t *n2 = realloc(ids, (cap = cap ? cap * 2 : 64) * sizeof(*ids));
				if (n2 == NULL) {
					r = ZILA_ENOMEM;
					break;
				}
				ids = n2;
			}
			ids[nids++] = sqlite3_column_int64(q, 0);
		}
		sqlite3_reset(q);
		for (size_t i = 0; r == 0 && i < nids; i++) {
			sqlite3_bind_int64(g, 1, ids[i]);
			if (sqlite3_step(g) != SQLITE_ROW) {
				sqlite3_reset(g);
				continue;
			}
			struct entry e;
			size_t len = (size_t)sqlite3_column_bytes(g, 0);
			uint8_t *copy = malloc(len + 1);
			int64_t origin = sqlite3_column_int64(g, 1);
			if (copy == NULL) {
				sqlite3_reset(g);
				r = ZILA_ENOMEM;
				break;
			}
			memcpy(copy, sqlite3_column_blob(g, 0), len);
			sqlite3_reset(g);
			if (entry_parse(zila_view_make(copy, len), &e, false) != 0) {
				free(copy);
				continue;
			}
			st->nretried++;
			int rr = store_exec(s, "SAVEPOINT held", NULL);
			rr = rr ? rr : apply_body(s, &e, origin, st);
			if (rr == 0) {
				sqlite3_bind_int64(u, 1, ids[i]);
				rr = sqlite3_step(u) == SQLITE_DONE ? 0 : ZILA_EDB;
				sqlite3_reset(u);
				if (rr == 0)
					st->nheld = st->nheld ? st->nheld - 1 : 0;
			}
			if (rr != 0 && store_exec(s, "ROLLBACK TO held", NULL) != 0)
				rr = ZILA_EDB;
			if (store_exec(s, "RELEASE held", NULL) != 0)
				rr = ZILA_EDB;
			if (rr != 0 && rr != ZILA_ESCHEMA && rr != ZILA_ESCOPE && rr != ZILA_EFORMAT)
				r = rr;
			entry_release(&e);
			free(copy);
		}
		schema_key(s, key);
		if (r != 0 || strcmp(before, key) == 0)
			break;
	}
	if (r == 0)
		r = zila_store_meta_set(s, META_HELD, key);
out:
	free(ids);
	sqlite3_finalize(q);
	sqlite3_finalize(g);
	sqlite3_finalize(u);
	return r;
}

int store_reapply(struct zila_store *s, struct zila_apply_stats *st)
{
	sqlite3_stmt *q = NULL, *u = NULL, *g = NULL;
	int64_t *ids = NULL;
	size_t nids = 0, cap = 0;
	int r = 0;
	for (int i = 0; r == 0 && i < s->ntables; i++) {
		struct table *t = s->tables[i];
		char *sql = sqlite3_mprintf("DELETE FROM \"%w\"", t->name);
		r = sql == NULL ? ZILA_ENOMEM : sqlite3_exec(s->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : ZILA_EDB;
		sqlite3_free(sql);
		t->nlive_delta = 0;
		t->touched = true;
	}
	r = r ? r
	      : store_exec(s,
			   "DELETE FROM zila_rows; DELETE FROM zila_live; DELETE FROM zila_parked;"
			   " UPDATE zila_tables SET nlive = 0 WHERE nlive IS NOT NULL",
			   NULL);
	/* What checkpoints kept here stand for first: the entries they cover may be gone, and
	 * those still held are not applied again: a row the checkpoint's maker collected (deleted,
	 * every holder past it, CHECKPOINT.md) has no delete left here to answer its insert. */
	r = r ? r : store_checkpoints_remerge(s, st);
	r = r ? r
	      : store_exec(s,
			   "UPDATE zila_entries SET applied = 1 WHERE applied = 0 AND id IN (SELECT e.id FROM zila_entries e"
			   " JOIN zila_feeds f ON f.id = e.feed JOIN zila_origins o ON o.id = f.origin"
			   " JOIN temp.zila_covered c ON c.origin = o.key AND c.part = f.part WHERE e.seq <= c.seq)",
			   NULL);
	if (r != 0)
		return r;
	/* The order of a clone: by date, then author, partition and sequence (cmp_incoming).
	 * The ids are read first: once the transaction has changed the schema (a schema entry
	 * undone or taken again, schema.c), a ROLLBACK TO of an entry that waits ends every
	 * statement still reading. */
	if (sqlite3_prepare_v2(s->db,
			       "SELECT e.id FROM zila_entries e JOIN zila_feeds f ON f.id = e.feed"
			       " JOIN zila_origins o ON o.id = f.origin WHERE NOT EXISTS (SELECT 1 FROM temp.zila_covered c"
			       " WHERE c.origin = o.key AND c.part = f.part AND e.seq <= c.seq)"
			       " ORDER BY e.hlc, o.key, f.part, e.seq",
			       -1, &q, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "SELECT e.bytes, f.origin FROM zila_entries e JOIN zila_feeds f ON f.id = e.feed"
				      " WHERE e.id = ?", -1, &g, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "UPDATE zila_entries SET applied = ?2 WHERE id = ?1", -1, &u, NULL) != SQLITE_OK) {
		r = ZILA_EDB;
		goto out;
	}
	int rc;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (nids == cap) {
			int64_t *n2 = realloc(ids, (cap = cap ? cap * 2 : 1024) * sizeof(*ids));
			if (n2 == NULL) {
				r = ZILA_ENOMEM;
				goto out;
			}
			ids = n2;
		}
		ids[nids++] = sqlite3_column_int64(q, 0);
	}
	if (rc != SQLITE_DONE) {
		r = ZILA_EDB;
		goto out;
	}
	s->reapplying = true;
	for (size_t i = 0; r == 0 && i < nids; i++) {
		struct entry e;
		sqlite3_bind_int64(g, 1, ids[i]);
		if (sqlite3_step(g) != SQLITE_ROW) {
			sqlite3_reset(g);
			continue;
		}
		size_t len = (size_t)sqlite3_column_bytes(g, 0);
		int64_t origin = sqlite3_column_int64(g, 1);
		uint8_t *copy = malloc(len + 1);
		if (copy == NULL) {
			sqlite3_reset(g);
			r = ZILA_ENOMEM;
			break;
		}
		memcpy(copy, sqlite3_column_blob(g, 0), len);
		sqlite3_reset(g);
		int applied = 0;
		if (entry_parse(zila_view_make(copy, len), &e, false) != 0) {
			free(copy);
			continue;
		}
		int rr = store_exec(s, "SAVEPOINT again", NULL);
		rr = rr ? rr : apply_body(s, &e, origin, st);
		applied = rr == 0;
		if (rr != 0 && store_exec(s, "ROLLBACK TO again", NULL) != 0)
			rr = ZILA_EDB;
		if (store_exec(s, "RELEASE again", NULL) != 0)
			rr = ZILA_EDB;
		if (rr != 0 && rr != ZILA_ESCHEMA && rr != ZILA_ESCOPE && rr != ZILA_EFORMAT)
			r = rr;
		entry_release(&e);
		free(copy);
		sqlite3_bind_int64(u, 1, ids[i]);
		sqlite3_bind_int(u, 2, applied);
		if (r == 0 && sqlite3_step(u) != SQLITE_DONE)
			r = ZILA_EDB;
		sqlite3_reset(u);
	}
	s->reapplying = false;
	r = r ? r : store_settle(s, st);
out:
	s->reapplying = false;
	free(ids);
	sqlite3_finalize(q);
	sqlite3_finalize(g);
	sqlite3_finalize(u);
	return r;
}

void zila_store_set_held_limit(struct zila_store *s, int64_t nentries, int64_t nbytes)
{
	s->held_max = nentries;
	s->held_max_bytes = nbytes;
}

/* Entries each device has parked here for a schema this replica lacks, counted once per
 * apply window and then kept up to date. */
struct held_use {
	int64_t origin, n, bytes;
};

static int held_use(struct zila_store *s, struct held_use **uses, size_t *nuses, int64_t origin,
		    struct held_use **out)
{
	for (size_t i = 0; i < *nuses; i++)
		if ((*uses)[i].origin == origin) {
			*out = &(*uses)[i];
			return 0;
		}
	struct held_use *nu = realloc(*uses, (*nuses + 1) * sizeof(*nu));
	if (nu == NULL)
		return ZILA_ENOMEM;
	*uses = nu;
	struct held_use *h = &nu[(*nuses)++];
	memset(h, 0, sizeof(*h));
	h->origin = origin;
	sqlite3_stmt *q = NULL;
	int r = ZILA_EDB;
	if (sqlite3_prepare_v2(s->db,
			       "SELECT count(*), coalesce(sum(length(e.bytes)), 0) FROM zila_entries e"
			       " JOIN zila_feeds f ON f.id = e.feed WHERE e.applied = 0 AND f.origin = ?",
			       -1, &q, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(q, 1, origin);
		if (sqlite3_step(q) == SQLITE_ROW) {
			h->n = sqlite3_column_int64(q, 0);
			h->bytes = sqlite3_column_int64(q, 1);
			r = 0;
		}
	}
	sqlite3_finalize(q);
	*out = h;
	return r;
}

int zila_store_apply(struct zila_store *s, const struct zila_view *entries, size_t n,
		     struct zila_apply_stats *st, struct zila_error *err)
{
	return store_apply(s, entries, n, true, st, err);
}

/* An entry the merge refuses (held or rejected), as opposed to database trouble. */
static bool refused(int rr)
{
	return rr == ZILA_ESCHEMA || rr == ZILA_ESCOPE || rr == ZILA_EFORMAT || rr == ZILA_ETOOBIG || rr == ZILA_ESHORT;
}

#define APPLY_AGAIN 1 /* apply_window(): redo with a savepoint per entry */
#define APPLY_RESEAL 2 /* apply_window(): a local write came after the seal: seal, then redo */
#define APPLY_RESEALS 3 /* times a merge seals again before it seals inside its transaction */
#define APPLY_BAD_MAX 8          /* entries that do not parse or verify, before a window is given up */
#define APPLY_REFUSED_FEEDS 256  /* feeds with a refused entry, before a window is given up */

static bool feed_listed(const struct zila_feed_head *f, size_t n, const struct zila_entry_info *e)
{
	for (size_t i = 0; i < n; i++)
		if (memcmp(f[i].origin, e->origin, 32) == 0 && strcmp(f[i].part, e->part) == 0)
			return true;
	return false;
}

/* The one count a kept statement sql answers (-1 when it cannot be read). */
static int64_t count_of(struct zila_store *s, const char *sql)
{
	sqlite3_stmt *q = store_stmt(s, sql);
	int64_t n = -1;
	if (q != NULL && sqlite3_step(q) == SQLITE_ROW)
		n = sqlite3_column_int64(q, 0);
	if (q != NULL)
		sqlite3_reset(q);
	return n;
}

/* Rows parked in the replica now. */
static int64_t parked_count(struct zila_store *s)
{
	return count_of(s, "SELECT count(*) FROM zila_parked");
}

/* How many entries the replica holds for a schema it lacks. */
static int64_t held_count(struct zila_store *s)
{
	return count_of(s, "SELECT count(*) FROM zila_entries WHERE applied = 0");
}

/* Applies the sorted, admitted entries in one transaction. Careless, an entry the merge
 * refuses would leave part of its rows behind, so the first refusal gives up with
 * APPLY_AGAIN (the caller rolls back and comes again careful); careful, each entry runs
 * in a savepoint of its own. Savepoints copy every page an entry touches into a
 * sub-journal, which for a clone is most of the memory and a quarter of the time, and
 * refusals are rare: each window is tried careless first. */
/* Whether a local change waits to be sealed (store_hw_check has looked at the marks): a
 * capture, or a row past its table's mark. */
static bool unsealed(struct zila_store *s)
{
	for (int i = 0; i < s->ntables; i++)
		if (s->tables[i]->count_new != NULL && !s->tables[i]->hw_clean)
			return true;
	return count_of(s, "SELECT EXISTS(SELECT 1 FROM zila_pending)") != 0;
}

static int apply_window(struct zila_store *s, struct incoming *in, size_t n, bool careful, bool seal_in,
			ZSTD_DCtx *dc, struct zila_apply_stats *st, struct zila_error *err)
{
	char what[128];
	struct held_use *uses = NULL;
	size_t nuses = 0;
	int r;
	if ((r = store_begin(s, err)) != 0)
		return r;
	s->schema_redo = false;
	/* A write committed between the seal before this merge and its write lock is sealed
	 * first too: else the merge takes the row as it is now for the version its state
	 * knows, writes an older remote value over a later local one, and the local write's
	 * capture then seals what the merge left. The seal is made again on its own (its
	 * commit keeps its fsyncs, which this one skips), or in here the last time, when the
	 * caller made this commit a synced one. */
	if (seal_in && (r = store_seal_locked(s, NULL, err)) != 0)
		goto fail;
	int64_t parked0 = parked_count(s);
	/* Rows merged into a table sealed up to here need no seal: the mark passes them. */
	if ((r = store_hw_check(s)) != 0) {
		r = store_db_error(s, err, "cannot read the high-water rowids");
		goto fail;
	}
	if (!seal_in && unsealed(s)) {
		r = APPLY_RESEAL;
		goto fail;
	}
	for (size_t i = 0; i < n && in[i].ok; i++) {
		struct incoming *x = &in[i];
		int64_t origin, feed;
		uint64_t head, head_hlc;
		if ((r = store_origin_id(s, x->e.info.origin, &origin)) != 0 ||
		    (r = store_feed_get(s, origin, x->e.info.part, &feed, &head, &head_hlc)) != 0) {
			r = store_db_error(s, err, "cannot record a feed");
			goto fail;
		}
		if (x->e.info.seq <= head) {
			st->nduplicate++;
			if ((r = check_same(s, feed, x)) != 0) {
				r = store_db_error(s, err, "cannot compare an entry with the one held");
				goto fail;
			}
			continue;
		}
		if (store_is_forked(s, x->e.info.origin)) {
			st->nrejected++;
			store_refusal(s, st, &x->e.info, ZILA_EFORKED,
				      "its author signed two histories of a feed (a fork): nothing more of it is "
				      "accepted until HQ revokes it");
			continue;
		}
		if (x->e.info.seq != head + 1) {
			st->ngap++;
			snprintf(what, sizeof(what), "waits for entry %llu of its feed, which this replica does not hold",
				 (unsigned long long)(head + 1));
			store_refusal(s, st, &x->e.info, ZILA_EGAP, what);
			continue;
		}
		/* A device dates its entries forward (HLC); one dated back past its own previous
		 * entry is written after the fact, e.g. into a certificate it held then. */
		if (head_hlc != 0 && zila_hlc_ms(x->e.info.hlc) + ZILA_BACKDATE_MS < zila_hlc_ms(head_hlc)) {
			st->nrejected++;
			store_refusal(s, st, &x->e.info, ZILA_EEXPIRED,
				      "it is dated more than a day before the previous entry of its feed");
			continue;
		}
		int applied = 1;
		if (careful && (r = store_exec(s, "SAVEPOINT entry", err)) != 0)
			goto fail;
		int rr = entry_inflate(&x->e, dc);
		if (rr == ZILA_ENOMEM) {
			r = zila_error_set(err, rr, "out of memory");
			goto fail;
		}
		if (rr == 0)
			rr = apply_body(s, &x->e, origin, st);
		if (rr != 0 && refused(rr)) {
			if (!careful) {
				r = APPLY_AGAIN;
				goto fail;
			}
			if ((r = store_exec(s, "ROLLBACK TO entry", err)) != 0)
				goto fail;
			describe(what, sizeof(what), &x->e.info);
			struct held_use *h = NULL;
			if (rr == ZILA_ESCHEMA && (r = held_use(s, &uses, &nuses, origin, &h)) != 0) {
				r = store_db_error(s, err, "cannot count held entries");
				goto fail;
			}
			int64_t max = s->held_max > 0 ? s->held_max : ZILA_HELD_MAX;
			int64_t max_bytes = s->held_max_bytes > 0 ? s->held_max_bytes : ZILA_HELD_MAX_BYTES;
			if (h != NULL && (h->n >= max || h->bytes + (int64_t)x->bytes.len > max_bytes)) {
				rr = ZILA_ELIMIT;
				h = NULL;
			}
			if (h != NULL) {
				h->n++;
				h->bytes += (int64_t)x->bytes.len;
				applied = 0;
				st->nheld++;
				zila_log(ZILA_LOG_INFO, "holding entry of %s until this replica has its schema", what);
			} else {
				st->nrejected++;
				store_refusal(s, st, &x->e.info, rr,
					      rr == ZILA_ESCOPE   ? "it writes rows outside its partition"
					      : rr == ZILA_ELIMIT ? "it waits for a schema this replica lacks, and this "
								    "replica holds as many such entries of its device as it keeps"
								    : zila_strerror(rr));
				entry_deflate(&x->e);
				if ((r = store_exec(s, "RELEASE entry", err)) != 0)
					goto fail;
				continue;
			}
		} else if (rr != 0) {
			r = store_db_error(s, err, "cannot apply an entry");
			goto fail;
		}
		entry_deflate(&x->e);
		if ((r = store_entry(s, feed, x, applied)) != 0 ||
		    (careful && (r = store_exec(s, "RELEASE entry", err)) != 0)) {
			r = store_db_error(s, err, "cannot store an entry");
			goto fail;
		}
		if (applied)
			st->napplied++;
		observe_clock(s, x->e.info.hlc);
	}
	/* another HQ device's schema change that ranks before one taken: the schema in
	 * canonical order, and the rows again (schema.c) */
	r = retry_held(s, st);
	bool redone = false;
	/* held before this window: counted only when the schema is made again (rare) */
	int64_t held0 = r == 0 && s->schema_redo ? held_count(s) - (int64_t)st->nheld : -1;
	for (int k = 0; r == 0 && s->schema_redo && k < 8; k++) {
		redone = true;
		if ((r = store_schema_redo(s, st)) == 0)
			r = retry_held(s, st);
	}
	if (r == 0 && redone) {
		/* what this window left held, now that everything was taken again */
		int64_t now = held_count(s);
		size_t nheld = now >= held0 && held0 >= 0 ? (size_t)(now - held0) : st->nheld;
		if (nheld < st->nheld)
			st->napplied += st->nheld - nheld;
		st->nheld = nheld;
	}
	if (r != 0 || (r = store_schema_save_blocked(s)) != 0 || (r = store_settle(s, st)) != 0 ||
	    (r = store_save_hlc(s)) != 0) {
		r = store_db_error(s, err, "cannot finish applying");
		goto fail;
	}
	/* A row parked on the way and restored before the end (a child applied before its
	 * parent in one entry) is nothing to review: report what is parked now that was not. */
	int64_t parked1 = parked_count(s);
	st->nparked = parked0 >= 0 && parked1 > parked0 ? (size_t)(parked1 - parked0) : 0;
	free(uses);
	return store_commit(s, err);
fail:
	free(uses);
	store_rollback(s);
	return r;
}

int store_apply(struct zila_store *s, const struct zila_view *entries, size_t n, bool check_sigs,
		struct zila_apply_stats *st, struct zila_error *err)
{
	struct zila_apply_stats dummy, before;
	struct incoming *in = NULL;
	ZSTD_DCtx *dc = NULL;
	int r;
	if (st == NULL)
		st = &dummy;
	memset(st, 0, sizeof(*st));
	st->nreceived = n;
	/* Local edits compete under the same rule: seal them first. */
	if ((r = zila_store_seal(s, NULL, err)) != 0)
		return r;
	in = calloc(n + 1, sizeof(*in));
	/* one decompression context for the store's life: making one costs more than a small window */
	if (s->dctx == NULL)
		s->dctx = ZSTD_createDCtx();
	dc = s->dctx;
	if (in == NULL || dc == NULL) {
		r = zila_error_set(err, ZILA_ENOMEM, "out of memory");
		goto out;
	}
	/* Signatures and admission first; bodies stay compressed until their turn. What one
	 * sender can make this cost is bounded: an entry of a feed refused earlier in the
	 * window would wait behind that one anyway, so it is not verified; a window with more
	 * than APPLY_BAD_MAX entries that do not parse or verify, or refusals in more than
	 * APPLY_REFUSED_FEEDS feeds, is given up (forged or hostile: the session ends). */
	struct zila_feed_head *refused_feeds = NULL; /* at the first refusal */
	size_t nrefused_feeds = 0, nbad = 0;
	for (size_t i = 0; i < n; i++) {
		in[i].bytes = entries[i];
		int rr = entry_parse_head(entries[i], &in[i].e, false);
		if (rr == 0 && feed_listed(refused_feeds, nrefused_feeds, &in[i].e.info)) {
			st->ngap++;
			entry_release(&in[i].e);
			continue;
		}
		if (rr == 0 && check_sigs)
			rr = entry_verify_sig(entries[i], &in[i].e, dc);
		if (rr != 0) {
			st->nrejected++;
			entry_release(&in[i].e);
			if (++nbad > APPLY_BAD_MAX) {
				r = zila_error_set(err, ZILA_ESIG,
						   "more than %d entries of this window do not %s: forged or damaged; "
						   "the rest of it is refused",
						   APPLY_BAD_MAX, rr == ZILA_ESIG ? "verify" : "parse or verify");
				free(refused_feeds);
				goto out;
			}
			zila_log(ZILA_LOG_WARN, "rejected an entry: %s", zila_strerror(rr));
			continue;
		}
		if (s->hooks.admit != NULL) {
			struct zila_error why;
			zila_error_clear(&why);
			rr = s->hooks.admit(s->hooks.ctx, s, &in[i].e.info, &why);
			if (rr != 0) {
				store_refusal(s, st, &in[i].e.info, rr, zila_error_msg(&why, rr));
				st->nrejected++;
				if (nrefused_feeds == APPLY_REFUSED_FEEDS) {
					r = zila_error_set(err, ZILA_ELIMIT,
							   "entries of more than %d feeds in this window are refused; "
							   "the rest of it is not checked",
							   APPLY_REFUSED_FEEDS);
					entry_release(&in[i].e);
					free(refused_feeds);
					goto out;
				}
				if (refused_feeds == NULL &&
				    (refused_feeds = calloc(APPLY_REFUSED_FEEDS, sizeof(*refused_feeds))) == NULL) {
					r = zila_error_set(err, ZILA_ENOMEM, "out of memory");
					entry_release(&in[i].e);
					goto out;
				}
				memcpy(refused_feeds[nrefused_feeds].origin, in[i].e.info.origin, 32);
				memcpy(refused_feeds[nrefused_feeds].part, in[i].e.info.part, sizeof(in[i].e.info.part));
				nrefused_feeds++;
				entry_release(&in[i].e);
				continue;
			}
		}
		in[i].ok = true;
	}
	free(refused_feeds);
	qsort(in, n, sizeof(*in), cmp_incoming);
	/* The merge commit skips its fsyncs: a power cut may take back received entries, which
	 * the next sync brings again, and since the WAL is written in order the next FULL
	 * commit (every seal is one) or checkpoint makes them durable too. Seals keep theirs:
	 * a lost seal would hand its sequence numbers to other changes. Not NORMAL but OFF:
	 * NORMAL still syncs a WAL header it writes (and the directory of a new WAL), which on
	 * a WAL that a checkpoint has just emptied is most of an incremental sync's time. The
	 * checkpoints run on the store's thread with fsyncs of their own (checkpoint.c); a
	 * checkpoint without them would let the WAL restart over frames whose copies in the
	 * database file are not yet durable. */
	s->nosync = true;
	if ((r = store_exec(s, "PRAGMA synchronous = OFF", err)) != 0)
		goto out;
	before = *st;
	uint64_t hlc = s->hlc;
	for (int careful = 0, reseal = 0; careful < 2;) {
		r = apply_window(s, in, n, careful, reseal == APPLY_RESEALS, dc, st, err);
		if (r == 0)
			break;
		/* Rolled back: what the transaction taught the memory goes too (store_rollback
		 * rebuilt the origin cache from what is committed). */
		*st = before;
		s->hlc = hlc;
		if (r == APPLY_RESEAL) {
			/* sealed with fsyncs; the last time, the merge seals inside and keeps them */
			reseal++;
			zila_log(ZILA_LOG_DEBUG, "a local write came after the seal before a merge: sealed again");
			if ((r = store_exec(s, "PRAGMA synchronous = FULL", err)) != 0)
				break;
			s->nosync = false;
			if ((r = zila_store_seal(s, NULL, err)) != 0)
				break;
			hlc = s->hlc;
			if (reseal < APPLY_RESEALS) {
				if ((r = store_exec(s, "PRAGMA synchronous = OFF", err)) != 0)
					break;
				s->nosync = true;
			}
			continue;
		}
		if (r != APPLY_AGAIN)
			break;
		careful++;
	}
out:
	if (store_exec(s, "PRAGMA synchronous = FULL", NULL) == 0)
		s->nosync = false;
	else if (r == 0)
		r = store_db_error(s, err, "cannot restore synchronous commits");
	for (size_t i = 0; in != NULL && i < n; i++)
		entry_release(&in[i].e);
	free(in);
	return r;
}
