/* Schema changes HQ makes for the whole organisation: signed, versioned schema entries in
 * HQ's org-wide feed that every replica applies in order (proto/schema/README.md). */
#ifndef ZILA_SCHEMA_H
#define ZILA_SCHEMA_H

#include <stdbool.h>
#include <stdint.h>

#include "zila/buf.h"
#include "zila/err.h"

struct zila_store;

#define ZILA_SCHEMA_SQL_MAX (64 * 1024) /* bytes of one schema change's statement */

/* The organisation's schema version this replica has applied: 1 is the default schema
 * (proto/schema/default.sql), each change HQ distributes adds one. */
uint32_t zila_schema_version(struct zila_store *s);

/* Makes one schema change for every replica of the organisation and applies it here: sql
 * is one statement of CREATE TABLE (pcol: its partition column, NULL for an org-wide
 * table), ALTER TABLE ... ADD COLUMN (nullable, or NOT NULL with a constant DEFAULT), CREATE
 * INDEX or DROP INDEX. Local changes are sealed first; the change is written as the next
 * schema version in one transaction with its entry in this device's org-wide feed.
 * Changes that cannot be merged (dropping or renaming a table or column, changing a type
 * or a key, a NOT NULL column without a default, a UNIQUE index on a table that holds
 * rows elsewhere, ...) are refused with ZILA_EINVAL and the reason and what to do in err;
 * nothing is changed then. *version (may be NULL) gets the new version. A device that may
 * write only a district (its write scope) is refused: HQ changes the schema. */
int zila_schema_change(struct zila_store *s, const char *sql, const char *pcol, uint32_t *version,
		       struct zila_error *err) ZILA_MUST_CHECK;

/* zila_schema_change() of a statement that made something this replica already has, as
 * zila_schema_table_sql() gives it: an untracked table is taken as it is (and tracked), an
 * index kept; a UNIQUE index is allowed (the table is new to every other replica). */
int zila_schema_track(struct zila_store *s, const char *sql, const char *pcol, uint32_t *version,
		      struct zila_error *err) ZILA_MUST_CHECK;

/* Checks sql as zila_schema_change() would, and changes nothing. */
int zila_schema_check(struct zila_store *s, const char *sql, const char *pcol, struct zila_error *err) ZILA_MUST_CHECK;

/* A schema entry's body (proto/schema/README.md) for version: its statement and the
 * partition column of a new table (NULL: none), malloc'd into *sql and *pcol (the
 * caller's). ZILA_EFORMAT when the body is not exactly that. Pure: no replica. */
int zila_schema_decode(struct zila_view body, uint32_t version, char **sql, char **pcol) ZILA_MUST_CHECK;
/* Whether sql is a kind of statement that may be distributed (without looking at a
 * replica): 0, or ZILA_EINVAL with the reason in err. Pure. */
int zila_schema_classify(const char *sql, struct zila_error *err) ZILA_MUST_CHECK;

/* The SQL that makes an existing, untracked table of this replica (sqlite_schema's CREATE
 * statement) and of each of its indexes, for distributing it as it is; *table_sql and
 * *index_sql (indexes separated by ";\n", "" when none) are malloc'd and the caller's.
 * ZILA_ENOTFOUND when there is no such table. */
int zila_schema_table_sql(struct zila_store *s, const char *table, char **table_sql, char **index_sql,
			  struct zila_error *err) ZILA_MUST_CHECK;

/* What became of a schema entry here: taken, the same change as one taken before it
 * (nothing to do), or lost to one taken before it (two HQ devices made conflicting
 * changes; proto/schema/README.md, "Two HQ devices"). */
enum { ZILA_SCHEMA_APPLIED = 0, ZILA_SCHEMA_SAME = 1, ZILA_SCHEMA_LOST = 2 };

/* Calls fn for every schema entry taken here past the default, in canonical order
 * (version, then author's key): its statement, the partition column of a new table (NULL
 * otherwise), its author's key (32 bytes), its HLC, its state and, unless applied, why
 * (NULL when applied). Everything is borrowed for the call; non-zero stops the walk. */
typedef int (*zila_schema_fn)(void *ctx, uint32_t version, const char *sql, const char *pcol,
			      const uint8_t *origin, uint64_t hlc, int state, const char *why);
int zila_schema_each(struct zila_store *s, zila_schema_fn fn, void *ctx) ZILA_MUST_CHECK;

/* Calls fn with the tables of this replica that are not synced (made here, not by HQ) and
 * the columns of synced tables that are local to it: their names as "table" or
 * "table.column". Borrowed for the call. */
typedef void (*zila_local_fn)(void *ctx, const char *name);
int zila_schema_local_each(struct zila_store *s, zila_local_fn fn, void *ctx) ZILA_MUST_CHECK;

#endif
