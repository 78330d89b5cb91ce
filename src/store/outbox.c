/* The entries a peer lacks, in causal (HLC) order, read a page at a time per feed so that
 * memory follows the number of feeds, not the size of the backlog. */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

#define PAGE 64 /* entry headers read per feed at a time (the LIMIT below) */

struct slot {
	uint64_t seq;
	uint64_t hlc;
	int64_t id;
	uint32_t len;
};

struct ofeed {
	int64_t id;          /* zila_feeds id */
	uint8_t origin[32];
	char part[ZILA_PART_MAX + 1];
	uint64_t next;       /* first sequence number not yet paged in */
	uint64_t last;       /* head when the outbox opened: nothing past it is sent */
	struct slot page[PAGE];
	unsigned npage, pos;
};

struct zila_outbox {
	struct zila_store *s;
	struct ofeed *feeds;
	size_t nfeeds;
	uint64_t total, sent;
	sqlite3_stmt *page, *get;
};

void zila_outbox_free(struct zila_outbox *o)
{
	if (o == NULL)
		return;
	sqlite3_finalize(o->page);
	sqlite3_finalize(o->get);
	free(o->feeds);
	free(o);
}

int zila_outbox_open(struct zila_store *s, const struct zila_vector *have, zila_part_filter_fn filter,
		     void *filter_ctx, struct zila_outbox **out)
{
	struct zila_outbox *o = calloc(1, sizeof(*o));
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int r = ZILA_ENOMEM;
	*out = NULL;
	if (o == NULL)
		goto out;
	o->s = s;
	r = ZILA_EDB;
	if (sqlite3_prepare_v2(s->db,
			       "SELECT f.id, o.key, f.part, f.head FROM zila_feeds f JOIN zila_origins o ON o.id = f.origin"
			       " WHERE f.head > 0",
			       -1, &st, NULL) ||
	    sqlite3_prepare_v2(s->db,
			       "SELECT seq, hlc, id, length(bytes) FROM zila_entries WHERE feed = ? AND seq >= ?"
			       " AND seq <= ? ORDER BY seq LIMIT 64", /* PAGE */
			       -1, &o->page, NULL) ||
	    sqlite3_prepare_v2(s->db, "SELECT bytes FROM zila_entries WHERE id = ?", -1, &o->get, NULL))
		goto out;
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct ofeed f;
		memset(&f, 0, sizeof(f));
		f.id = sqlite3_column_int64(st, 0);
		if (sqlite3_column_bytes(st, 1) != 32)
			continue;
		memcpy(f.origin, sqlite3_column_blob(st, 1), 32);
		const char *part = (const char *)sqlite3_column_text(st, 2);
		if (part == NULL || strlen(part) > ZILA_PART_MAX)
			continue;
		memcpy(f.part, part, strlen(part) + 1);
		f.last = (uint64_t)sqlite3_column_int64(st, 3);
		f.next = (have != NULL ? zila_vector_get(have, f.origin, f.part) : 0) + 1;
		if (f.next > f.last || (filter != NULL && !filter(filter_ctx, f.part)))
			continue;
		if (o->nfeeds == cap) {
			cap = cap ? cap * 2 : 16;
			struct ofeed *nf = realloc(o->feeds, cap * sizeof(*nf));
			if (nf == NULL) {
				r = ZILA_ENOMEM;
				goto out;
			}
			o->feeds = nf;
		}
		o->feeds[o->nfeeds++] = f;
		o->total += f.last - f.next + 1;
	}
	r = 0;
out:
	sqlite3_finalize(st);
	if (r == 0) {
		*out = o;
	} else {
		zila_outbox_free(o);
	}
	return r;
}

uint64_t zila_outbox_total(const struct zila_outbox *o)
{
	return o->total;
}

static int refill(struct zila_outbox *o, struct ofeed *f)
{
	f->npage = f->pos = 0;
	if (f->next > f->last)
		return 0;
	sqlite3_bind_int64(o->page, 1, f->id);
	sqlite3_bind_int64(o->page, 2, (int64_t)f->next);
	sqlite3_bind_int64(o->page, 3, (int64_t)f->last);
	int rc;
	while ((rc = sqlite3_step(o->page)) == SQLITE_ROW && f->npage < PAGE) {
		struct slot *sl = &f->page[f->npage++];
		sl->seq = (uint64_t)sqlite3_column_int64(o->page, 0);
		sl->hlc = (uint64_t)sqlite3_column_int64(o->page, 1);
		sl->id = sqlite3_column_int64(o->page, 2);
		sl->len = (uint32_t)sqlite3_column_int64(o->page, 3);
	}
	sqlite3_reset(o->page);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return ZILA_EDB;
	/* Heads are contiguous: a missing sequence number means the feed changed under us
	 * (it cannot shrink), so stop that feed rather than send a gap. */
	if (f->npage == 0 || f->page[0].seq != f->next) {
		f->npage = 0;
		f->next = f->last + 1;
		return 0;
	}
	f->next = f->page[f->npage - 1].seq + 1;
	return 0;
}

/* The feed whose next entry has the lowest (hlc, origin, part, seq), or NULL at the end. */
static int pick(struct zila_outbox *o, struct ofeed **out)
{
	struct ofeed *best = NULL;
	*out = NULL;
	for (size_t i = 0; i < o->nfeeds; i++) {
		struct ofeed *f = &o->feeds[i];
		if (f->pos == f->npage) {
			int r = refill(o, f);
			if (r != 0)
				return r;
			if (f->npage == 0)
				continue;
		}
		if (best == NULL) {
			best = f;
			continue;
		}
		const struct slot *a = &f->page[f->pos], *b = &best->page[best->pos];
		int c = a->hlc < b->hlc ? -1 : a->hlc > b->hlc ? 1 : memcmp(f->origin, best->origin, 32);
		if (c == 0)
			c = strcmp(f->part, best->part);
		if (c < 0)
			best = f;
	}
	*out = best;
	return 0;
}

int zila_outbox_peek_len(struct zila_outbox *o, size_t *len)
{
	struct ofeed *f;
	*len = 0;
	int r = pick(o, &f);
	if (r == 0 && f == NULL)
		return ZILA_ENOTFOUND;
	if (r == 0)
		*len = f->page[f->pos].len;
	return r;
}

int zila_outbox_next(struct zila_outbox *o, struct zila_entry_info *info, struct zila_buf *bytes)
{
	struct ofeed *f;
	int r = pick(o, &f);
	if (r != 0)
		return r;
	if (f == NULL)
		return ZILA_ENOTFOUND;
	const struct slot *sl = &f->page[f->pos++];
	sqlite3_bind_int64(o->get, 1, sl->id);
	if (sqlite3_step(o->get) != SQLITE_ROW) {
		sqlite3_reset(o->get);
		return ZILA_EDB;
	}
	if (info != NULL) {
		memset(info, 0, sizeof(*info));
		memcpy(info->origin, f->origin, 32);
		memcpy(info->part, f->part, sizeof(info->part));
		info->seq = sl->seq;
		info->hlc = sl->hlc;
	}
	r = zila_buf_put(bytes, sqlite3_column_blob(o->get, 0), (size_t)sqlite3_column_bytes(o->get, 0));
	sqlite3_reset(o->get);
	if (r == 0)
		o->sent++;
	return r;
}
