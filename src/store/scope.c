/* The device's write scope at the source: a district laptop's triggers refuse a row of
 * another district, or of an org-wide table, when it is written, instead of sealing it into
 * a feed that no replica takes; and what is already out of scope, told in plain words. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store_int.h"
#include "zila/clock.h"

#define META_SCOPE "write.scope"             /* the district this device may write, "" all */
#define META_SCOPE_ARMED "write.scope.armed" /* the one the triggers refuse others for */

/* The scope as zila_meta has it: false when the device may write everything (HQ, or not
 * enrolled: such a replica exchanges nothing, and when it enrols its scope is set). */
static bool scope_get(struct zila_store *s, const char *key, char *part)
{
	char *v = NULL;
	part[0] = '\0';
	if (zila_store_meta_get(s, key, &v) != 0)
		return false;
	part_copy(part, v);
	free(v);
	return part[0] != '\0';
}

/* Appends to q what sqlite3_mprintf() makes of fmt (%w: inside an identifier's quotes, %q:
 * inside a literal's). */
static int put_sql(struct zila_buf *q, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *x = sqlite3_vmprintf(fmt, ap);
	va_end(ap);
	int r = x == NULL ? ZILA_ENOMEM : zila_buf_put(q, x, strlen(x));
	sqlite3_free(x);
	return r;
}

void zila_store_district_name(struct zila_store *s, const char *part, char *name, size_t n)
{
	sqlite3_stmt *st = NULL;
	name[0] = '\0';
	if (sqlite3_prepare_v2(s->db, "SELECT name FROM districts WHERE id = ?", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, part, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
			snprintf(name, n, "%s", (const char *)sqlite3_column_text(st, 0));
	}
	sqlite3_finalize(st);
}

/* "district 'Patna' (d-07)", or "district 'd-07'" when the catalogue does not name it. */
static void district_words(struct zila_store *s, const char *part, char *out, size_t n)
{
	char name[128];
	zila_store_district_name(s, part, name, sizeof(name));
	if (name[0] != '\0' && strcmp(name, part) != 0)
		snprintf(out, n, "district '%s' (%s)", name, part);
	else
		snprintf(out, n, "district '%s'", part);
}

int store_scope_sql(struct zila_store *s, struct zila_buf *q, const char *tname, const struct table *t)
{
	static const char *const kinds[] = { "wi", "wu", "wd" };
	static const char *const ops[] = { "INSERT", "UPDATE", "DELETE" };
	int r = 0;
	for (int k = 0; r == 0 && k < 3; k++)
		r = put_sql(q, "DROP TRIGGER IF EXISTS %s_%s;\n", tname, kinds[k]);
	if (r != 0 || !s->wscoped)
		return r;
	char msg[1024], where[256];
	district_words(s, s->wscope, where, sizeof(where));
	/* An insert is refused with FAIL, not ABORT: a trigger that may abort the statement
	 * has SQLite keep a statement journal for every row inserted in a transaction (the
	 * README's write path: the insert's CPU time 1.42x the untracked insert's with ABORT,
	 * 1.27x with FAIL). FAIL keeps what the statement wrote before the row it refuses, as
	 * SQLite's FAIL does. */
	if (t->pcol >= 0) {
		snprintf(msg, sizeof(msg),
			 "zila: this laptop may write only %s; a row of '%s' for another district (or for the whole "
			 "organisation) is written by a laptop of that district or at HQ",
			 where, t->name);
		for (int k = 0; r == 0 && k < 2; k++)
			r = put_sql(q,
				    "CREATE TRIGGER %s_%s BEFORE %s ON \"%w\" WHEN %s.\"%w\" IS NOT '%q'"
				    " BEGIN SELECT RAISE(%s, '%q'); END;\n",
				    tname, kinds[k], ops[k], t->name, k == 0 ? "NEW" : "OLD", t->cols[t->pcol], s->wscope,
				    k == 0 ? "FAIL" : "ABORT", msg);
		return r;
	}
	snprintf(msg, sizeof(msg),
		 "zila: '%s' is an org-wide table: only HQ may write it (this laptop writes %s); ask HQ to add or "
		 "change the row",
		 t->name, where);
	for (int k = 0; r == 0 && k < 3; k++)
		r = put_sql(q, "CREATE TRIGGER %s_%s BEFORE %s ON \"%w\" BEGIN SELECT RAISE(%s, '%q'); END;\n", tname,
			    kinds[k], ops[k], t->name, k == 0 ? "FAIL" : "ABORT", msg);
	return r;
}

void store_scope_load(struct zila_store *s)
{
	s->wscoped = scope_get(s, META_SCOPE, s->wscope);
}

/* What the triggers are armed for: the scope and the district's name they give ("" for
 * none), so that they are made again when the catalogue names the district (it comes from
 * HQ after enrolment) or renames it. */
static void armed_for(struct zila_store *s, char *out, size_t n)
{
	char name[128] = "";
	if (s->wscoped)
		zila_store_district_name(s, s->wscope, name, sizeof(name));
	snprintf(out, n, "%s%s%s", s->wscope, s->wscoped ? "|" : "", name);
}

bool store_scope_stale(struct zila_store *s)
{
	char *v = NULL, want[ZILA_PART_MAX + 200];
	armed_for(s, want, sizeof(want));
	bool same = zila_store_meta_get(s, META_SCOPE_ARMED, &v) == 0 ? strcmp(v, want) == 0 : want[0] == '\0';
	free(v);
	return !same;
}

int store_scope_arm(struct zila_store *s, struct zila_error *err)
{
	char armed[ZILA_PART_MAX + 200];
	int r = store_arm_all(s, err);
	armed_for(s, armed, sizeof(armed));
	if (r == 0 && (r = zila_store_meta_set(s, META_SCOPE_ARMED, armed)) != 0)
		r = store_db_error(s, err, "cannot note the write scope");
	return r;
}

const char *zila_store_write_scope(const struct zila_store *s)
{
	return s->wscope;
}

int zila_store_set_write_scope(struct zila_store *s, const char *part)
{
	if (part == NULL)
		part = "";
	if (strlen(part) > ZILA_PART_MAX)
		return ZILA_EINVAL;
	int r = zila_store_meta_set(s, META_SCOPE, part);
	if (r != 0)
		return r;
	store_scope_load(s);
	return store_scope_refresh(s, NULL);
}

int store_scope_refresh(struct zila_store *s, struct zila_error *err)
{
	/* Inside a transaction (a certificate arriving with a merge) the triggers wait for the
	 * next seal or open, which arm them before anything is sealed. */
	if (!sqlite3_get_autocommit(s->db) || !store_scope_stale(s))
		return 0;
	int r = store_begin(s, err);
	if (r != 0)
		return r;
	if ((r = store_scope_arm(s, err)) != 0) {
		store_rollback(s);
		return r;
	}
	return store_commit(s, err);
}

/* Rows of partitioned tables of other districts (written here before the scope was
 * enforced: a district laptop receives no other district's rows), and changes of this
 * device in the org-wide partition (its rows are not told apart from HQ's otherwise). */
int zila_store_notices(struct zila_store *s, zila_notice_fn fn, void *ctx)
{
	char msg[1024], where[256];
	sqlite3_stmt *st = NULL;
	int r = 0;
	/* capture lost and armed again (seal.c, rearm), told for a week */
	char *v = NULL;
	if (zila_store_meta_get(s, ZILA_META_REARMED, &v) == 0) {
		char *end = NULL, when[40];
		unsigned long long ms = strtoull(v, &end, 10);
		if (end != NULL && *end == ' ' && store_now_ms(s) < ms + 7ull * 24 * 3600 * 1000) {
			/* local time with its zone, as a person there reads it */
			time_t secs = (time_t)(ms / 1000);
			struct tm tm;
			if (localtime_r(&secs, &tm) == NULL || strftime(when, sizeof(when), "%Y-%m-%d %H:%M %Z", &tm) == 0)
				zila_format_time(ms, when, sizeof(when));
			snprintf(msg, sizeof(msg),
				 "on %s zila found that table '%s' had lost its change capture (another program rebuilt "
				 "it, as database tools do to change a table's structure); capture is on again and the "
				 "table's rows were sealed again, so nothing written meanwhile stays behind",
				 when, end + 1);
			fn(ctx, msg);
		}
	}
	free(v);
	if ((r = store_schema_notices(s, fn, ctx)) != 0 || !s->wscoped)
		return r;
	district_words(s, s->wscope, where, sizeof(where));
	for (int i = 0; r == 0 && i < s->ntables; i++) {
		struct table *t = s->tables[i];
		if (t->pcol < 0)
			continue;
		/* (rows of no district come from HQ too: this device's are its org-wide feed's) */
		char *q = sqlite3_mprintf("SELECT count(*) FROM \"%w\" WHERE \"%w\" IS NOT NULL AND \"%w\" IS NOT ?",
					  t->name, t->cols[t->pcol], t->cols[t->pcol]);
		if (q == NULL || sqlite3_prepare_v2(s->db, q, -1, &st, NULL) != SQLITE_OK)
			r = ZILA_EDB;
		sqlite3_free(q);
		if (r != 0)
			break;
		sqlite3_bind_text(st, 1, s->wscope, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0) {
			snprintf(msg, sizeof(msg),
				 "%lld rows of '%s' were written here for other districts; this laptop may write only %s, "
				 "so they are not sent to anyone. Have them entered at HQ or on a laptop of their district",
				 (long long)sqlite3_column_int64(st, 0), t->name, where);
			fn(ctx, msg);
		}
		sqlite3_finalize(st);
		st = NULL;
	}
	if (r != 0)
		return r;
	/* org-wide changes of this device: its feed of the org-wide partition */
	if (sqlite3_prepare_v2(s->db, "SELECT head FROM zila_feeds WHERE origin = ? AND part = ''", -1, &st, NULL) !=
	    SQLITE_OK)
		return ZILA_EDB;
	sqlite3_bind_int64(st, 1, s->self_id);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0) {
		snprintf(msg, sizeof(msg),
			 "%lld entries of changes made here to org-wide rows (catalogues such as states, districts "
			 "and posts, or rows of no district) are not sent: only HQ may write them. Ask HQ to make "
			 "these changes",
			 (long long)sqlite3_column_int64(st, 0));
		fn(ctx, msg);
	}
	sqlite3_finalize(st);
	return 0;
}
