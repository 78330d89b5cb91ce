/* HQ's merged state mirrored into PostgreSQL (libpq): every tracked table as a table of the
 * same rows, the parked rows in a table of their own, schema changes followed, resumable
 * from a mark kept in PostgreSQL in the same transaction as the rows it covers. */
#ifndef ZILA_OFFICE_PGMIRROR_H
#define ZILA_OFFICE_PGMIRROR_H

#include <stdbool.h>
#include <stdint.h>

#include "zila/err.h"

#define ZILA_META_MIRROR_PG "mirror.postgres" /* the setting: a libpq connection string */
#define ZILA_PGMIRROR_SCHEMA "zila"           /* the PostgreSQL schema the mirror writes */

/* What `zila status` says of the mirror; strings are copies. */
struct zila_pgmirror_state {
	bool connected;      /* the last attempt reached PostgreSQL */
	bool loaded;         /* the mirror holds a complete copy (initial load done) */
	int64_t mark;        /* entries of the replica mirrored, in the order they were stored */
	int64_t behind;      /* entries stored after the mark; -1: not known yet */
	int64_t rows;        /* rows written or deleted at PostgreSQL since the start */
	int64_t last_ok;     /* unix seconds when the mirror was last in step; 0: never */
	char target[160];    /* where, as "db on host:port" (never a password) */
	char last_error[320]; /* the last failure in plain words; empty after a success */
};

struct zila_pgmirror;

/* Refuses a connection string that does not parse or that holds a password (which would sit
 * in argv, the replica's settings or a log): ZILA_EINVAL with the reason in err. */
int zila_pgmirror_check_conninfo(const char *conninfo, struct zila_error *err) ZILA_MUST_CHECK;

/* Makes a mirror of the replica in dir into the database conninfo names (checked as above).
 * Nothing is opened yet: the first step connects. *out is the caller's (zila_pgmirror_free). */
int zila_pgmirror_new(struct zila_pgmirror **out, const char *dir, const char *conninfo,
		      struct zila_error *err) ZILA_MUST_CHECK;

/* Brings PostgreSQL in step with the replica, blocking: connects (again) when needed, makes
 * the tables, loads everything the first time, then copies the rows changed by entries
 * stored after the mark, follows schema changes, and moves the mark in the same transaction.
 * Returns 0 when in step; a code, the reason in err and in the state, when not (the next
 * step starts again from the mark kept at PostgreSQL). Not to be called while the mirror's
 * thread runs (zila_pgmirror_start). */
int zila_pgmirror_step(struct zila_pgmirror *m, struct zila_error *err) ZILA_MUST_CHECK;

/* A copy of the state; safe from any thread. */
void zila_pgmirror_get_state(struct zila_pgmirror *m, struct zila_pgmirror_state *out);

/* Runs steps on a thread of the mirror's own: at once, after each zila_pgmirror_kick(), and
 * every second (after a failure, with a backoff up to 5 s). 0 or ZILA_ENOMEM/ZILA_EINTERNAL. */
int zila_pgmirror_start(struct zila_pgmirror *m) ZILA_MUST_CHECK;
/* Asks the thread for a step soon; never blocks (the daemon calls it after each apply). */
void zila_pgmirror_kick(struct zila_pgmirror *m);
/* Stops the thread (waiting for its step to end), closes everything and frees m; NULL: nothing. */
void zila_pgmirror_free(struct zila_pgmirror *m);

#endif
