/* Review of what a merge set aside: values overwritten by concurrent writes (conflicts) and
 * rows parked as duplicates, orphans or invalid, and settling them. The store keeps these
 * in its own tables; this header is how everything above the store reads and settles them. */
#ifndef ZILA_REVIEW_H
#define ZILA_REVIEW_H

#include <stdbool.h>
#include <stdint.h>

#include "zila/err.h"
#include "zila/store.h"

/* Why a row is parked (not shown in its table). */
enum zila_park_kind {
	ZILA_PARK_ANY = 0,     /* in filters: every kind */
	ZILA_PARK_DUP = 1,     /* it collided on a UNIQUE key with the row that keeps the slot */
	ZILA_PARK_ORPHAN = 2,  /* its parent (a foreign key) is missing */
	ZILA_PARK_INVALID = 3, /* it breaks a constraint of its table */
};

/* One value overwritten by a concurrent write; everything is borrowed for the callback. */
struct zila_conflict {
	int64_t id;
	const char *table, *col;
	struct zila_value pk;
	struct zila_value kept, lost;         /* the value the table shows, the one overwritten */
	const uint8_t *kept_origin, *lost_origin; /* the writers' keys (32 bytes), NULL when unknown */
	uint64_t kept_hlc, lost_hlc;
};
typedef int (*zila_conflict_fn)(void *ctx, const struct zila_conflict *c);

/* Calls fn for every unresolved conflict, oldest first. A non-zero return stops the walk and
 * is returned. */
int zila_store_conflict_each(struct zila_store *s, zila_conflict_fn fn, void *ctx) ZILA_MUST_CHECK;

/* What to keep of a conflicting cell. */
enum zila_keep {
	ZILA_KEEP_KEPT,  /* the value the table shows: nothing is written */
	ZILA_KEEP_LOST,  /* the overwritten value, written again */
	ZILA_KEEP_VALUE, /* a value of the user's (text) */
};
/* What a resolve did; the strings are malloc'd: zila_resolved_release(). */
struct zila_resolved {
	char *table, *row, *col; /* row: the key as text */
	int nresolved;           /* open conflicts on the cell, now settled */
	bool written;            /* the chosen value was written as a new local change */
};
void zila_resolved_release(struct zila_resolved *r);

/* Settles conflict id and every open conflict on the same cell: unless keep is
 * ZILA_KEEP_KEPT, writes the chosen value (value for ZILA_KEEP_VALUE) as an application
 * would (triggers fire) and seals it. Local changes captured before are sealed too. One
 * transaction: on any failure nothing is changed. ZILA_ENOTFOUND for no such conflict, a
 * column gone or a row no longer in its table, ZILA_EEXIST when already resolved; the
 * reason in plain words in err. */
int zila_store_conflict_resolve(struct zila_store *s, int64_t id, enum zila_keep keep, const char *value,
				struct zila_resolved *out, struct zila_error *err) ZILA_MUST_CHECK;

/* One parked row; everything is borrowed for the callback. */
struct zila_park {
	const char *table;
	const char *pcol; /* the table's partition column, NULL when org-wide */
	struct zila_value pk;
	enum zila_park_kind kind;
};
typedef int (*zila_park_fn)(void *ctx, const struct zila_park *p);

/* Calls fn for every parked row of kind (ZILA_PARK_ANY: all) in table (NULL: every table)
 * whose key reads as key_text (NULL: any key), by table name, then key. The callback may
 * read the store (zila_store_parked_row()). A non-zero return stops the walk and is
 * returned. */
int zila_store_parked_each(struct zila_store *s, enum zila_park_kind kind, const char *table, const char *key_text,
			   zila_park_fn fn, void *ctx) ZILA_MUST_CHECK;

/* What a merge did. */
struct zila_merged {
	int nfilled; /* the holder's empty columns filled from the duplicate */
	int nmoved;  /* references to the duplicate repointed to the holder */
};
/* Folds the row of table parked as a duplicate under key pk into the row the table shows
 * under key into: the holder's NULL columns the duplicate has set are filled (key and
 * partition aside), every single-column foreign key naming the duplicate (visible rows, and
 * rows parked as its orphans) is repointed to the holder, and the duplicate is deleted, all
 * as local changes that are sealed and sync, in one transaction: on any failure nothing is
 * changed. ZILA_ENOTFOUND when pk is not a parked duplicate of table or into not a row it
 * shows; the reason in plain words in err. */
int zila_store_merge_duplicate(struct zila_store *s, const char *table, const struct zila_value *pk,
			       const struct zila_value *into, struct zila_merged *out,
			       struct zila_error *err) ZILA_MUST_CHECK;

/* Calls fn with the name and partition column (NULL: org-wide) of every tracked table, by
 * name; borrowed for the call. A non-zero return stops the walk and is returned. */
typedef int (*zila_table_fn)(void *ctx, const char *name, const char *pcol);
int zila_store_table_each(struct zila_store *s, zila_table_fn fn, void *ctx) ZILA_MUST_CHECK;

#endif
