/* Schema changes HQ distributes (proto/schema/README.md): what may be distributed, the
 * schema entry that carries a change, and applying one in the transaction of the entries
 * that need it. The tables' cache follows at once; what cannot be applied waits. */
#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store_int.h"
#include "zila/log.h"
#include "zila/schema.h"

enum kind { K_TABLE, K_COLUMN, K_INDEX, K_DROP_INDEX };

struct ddl {
	enum kind kind;
	bool unique;        /* CREATE UNIQUE INDEX */
	bool adopted;       /* what it makes was here already (a receiver's, or 'zila schema track') */
	char table[256];    /* the table made or changed (K_TABLE, K_COLUMN, K_INDEX) */
	char name[256];     /* the column (K_COLUMN) or the index (K_INDEX, K_DROP_INDEX) */
};

/* --- reading the statement ---------------------------------------------------------- */

static const char *skip_space(const char *p)
{
	for (;;) {
		while (*p != '\0' && isspace((unsigned char)*p))
			p++;
		if (p[0] == '-' && p[1] == '-') {
			while (*p != '\0' && *p != '\n')
				p++;
		} else if (p[0] == '/' && p[1] == '*') {
			const char *e = strstr(p + 2, "*/");
			p = e ? e + 2 : p + strlen(p);
		} else {
			return p;
		}
	}
}

/* The next token: an identifier or keyword (quoted ones unquoted, *quoted set), or one
 * character of punctuation; "" at the end. */
static void next_tok(const char **pp, char *out, size_t n, bool *quoted)
{
	const char *p = skip_space(*pp);
	size_t k = 0;
	*quoted = false;
	char close = *p == '"' ? '"' : *p == '`' ? '`' : *p == '[' ? ']' : '\0';
	if (close != '\0') {
		*quoted = true;
		p++;
		while (*p != '\0') {
			if (*p == close) {
				if (close != ']' && p[1] == close) {
					p++;
				} else {
					p++;
					break;
				}
			}
			if (k + 1 < n)
				out[k++] = *p;
			p++;
		}
	} else if (isalnum((unsigned char)*p) || *p == '_' || *p == '$' || (unsigned char)*p >= 0x80) {
		while (isalnum((unsigned char)*p) || *p == '_' || *p == '$' || (unsigned char)*p >= 0x80) {
			if (k + 1 < n)
				out[k++] = *p;
			p++;
		}
	} else if (*p != '\0') {
		out[k++] = *p++;
	}
	out[k] = '\0';
	*pp = p;
}

static bool kw(const char *tok, bool quoted, const char *word)
{
	return !quoted && strcasecmp(tok, word) == 0;
}

#define RENAME_PATH                                                                                             \
	"laptops hold rows and entries under the old name, and a rename cannot be merged with them. To rename, "  \
	"add the new one ('zila schema add-column' or a new table), copy the values across with an UPDATE at HQ "   \
	"(it syncs like any edit), and stop using the old one (it stays, unused)"

/* A name of the form [main.]name; "temp" or another schema is refused. */
static int read_name(const char **p, char *out, size_t n, struct zila_error *err)
{
	bool q;
	next_tok(p, out, n, &q);
	if (out[0] == '\0' || (!q && !isalpha((unsigned char)out[0]) && out[0] != '_' && (unsigned char)out[0] < 0x80))
		return zila_error_set(err, ZILA_EINVAL, "a name is missing or malformed in the statement");
	const char *save = *p;
	char dot[4];
	next_tok(p, dot, sizeof(dot), &q);
	if (strcmp(dot, ".") == 0 && !q) {
		if (strcasecmp(out, "main") != 0)
			return zila_error_set(err, ZILA_EINVAL, "only tables of the replica itself ('main') can be distributed, not of '%s'", out);
		next_tok(p, out, n, &q);
		if (out[0] == '\0')
			return zila_error_set(err, ZILA_EINVAL, "a name is missing after 'main.'");
	} else {
		*p = save;
	}
	if (strncasecmp(out, "zila_", 5) == 0 || strncasecmp(out, "sqlite_", 7) == 0)
		return zila_error_set(err, ZILA_EINVAL, "names starting with zila_ or sqlite_ belong to zila and SQLite: '%s'", out);
	return 0;
}

/* Skips IF NOT EXISTS / IF EXISTS. */
static void skip_if(const char **p, bool not_too)
{
	const char *save = *p;
	char t[16];
	bool q;
	next_tok(p, t, sizeof(t), &q);
	if (!kw(t, q, "IF")) {
		*p = save;
		return;
	}
	if (not_too)
		next_tok(p, t, sizeof(t), &q);
	next_tok(p, t, sizeof(t), &q);
}

/* What the statement is, or why it cannot be distributed. */
static int classify(const char *sql, struct ddl *d, struct zila_error *err)
{
	const char *p = sql;
	char a[64], b[64];
	bool q;
	memset(d, 0, sizeof(*d));
	next_tok(&p, a, sizeof(a), &q);
	if (kw(a, q, "CREATE")) {
		next_tok(&p, b, sizeof(b), &q);
		if (kw(b, q, "TEMP") || kw(b, q, "TEMPORARY"))
			return zila_error_set(err, ZILA_EINVAL, "a temporary table lives as long as one connection: there is nothing to distribute");
		if (kw(b, q, "VIRTUAL"))
			return zila_error_set(err, ZILA_EINVAL, "a virtual table keeps its rows outside the replica's tables: zila cannot sync it");
		if (kw(b, q, "VIEW") || kw(b, q, "TRIGGER"))
			return zila_error_set(err, ZILA_EINVAL, "views and triggers are not distributed: each replica keeps its own; "
				      "make them on the laptops that need them (they stay local)");
		if (kw(b, q, "UNIQUE")) {
			d->unique = true;
			next_tok(&p, b, sizeof(b), &q);
		}
		if (kw(b, q, "TABLE") && !d->unique) {
			d->kind = K_TABLE;
			skip_if(&p, true);
			int r = read_name(&p, d->table, sizeof(d->table), err);
			if (r != 0)
				return r;
			next_tok(&p, b, sizeof(b), &q);
			if (strcmp(b, "(") != 0 || q)
				return zila_error_set(err, ZILA_EINVAL, "CREATE TABLE ... AS SELECT copies rows of this replica; make the table with "
					      "its columns, then write its rows (they sync like any rows)");
			return 0;
		}
		if (kw(b, q, "INDEX")) {
			d->kind = K_INDEX;
			skip_if(&p, true);
			int r = read_name(&p, d->name, sizeof(d->name), err);
			if (r != 0)
				return r;
			next_tok(&p, b, sizeof(b), &q);
			if (!kw(b, q, "ON"))
				return zila_error_set(err, ZILA_EINVAL, "CREATE INDEX needs 'ON table (columns)'");
			return read_name(&p, d->table, sizeof(d->table), err);
		}
	} else if (kw(a, q, "ALTER")) {
		next_tok(&p, b, sizeof(b), &q);
		if (!kw(b, q, "TABLE"))
			return zila_error_set(err, ZILA_EINVAL, "only ALTER TABLE ... ADD COLUMN can be distributed");
		int r = read_name(&p, d->table, sizeof(d->table), err);
		if (r != 0)
			return r;
		next_tok(&p, b, sizeof(b), &q);
		if (kw(b, q, "ADD")) {
			d->kind = K_COLUMN;
			const char *save = p;
			next_tok(&p, b, sizeof(b), &q);
			if (!kw(b, q, "COLUMN"))
				p = save;
			next_tok(&p, d->name, sizeof(d->name), &q);
			if (d->name[0] == '\0')
				return zila_error_set(err, ZILA_EINVAL, "ADD COLUMN needs a column name");
			return 0;
		}
		if (kw(b, q, "RENAME")) {
			next_tok(&p, b, sizeof(b), &q);
			if (kw(b, q, "TO"))
				return zila_error_set(err, ZILA_EINVAL, "renaming table '%s' is refused: %s", d->table, RENAME_PATH);
			return zila_error_set(err, ZILA_EINVAL, "renaming a column of '%s' is refused: %s", d->table, RENAME_PATH);
		}
		if (kw(b, q, "DROP"))
			return zila_error_set(err, ZILA_EINVAL, "dropping a column of '%s' is refused: laptops still hold its values and entries "
				      "that write it. Stop using the column instead (leave it empty); it costs little",
				      d->table);
		return zila_error_set(err, ZILA_EINVAL, "changing a column's type or a table's key or constraints cannot be merged: laptops "
			      "hold rows and entries of the old shape. Add a new column (or table) of the new shape, "
			      "copy the values across at HQ, and stop using the old one");
	} else if (kw(a, q, "DROP")) {
		next_tok(&p, b, sizeof(b), &q);
		if (kw(b, q, "INDEX")) {
			d->kind = K_DROP_INDEX;
			skip_if(&p, false);
			return read_name(&p, d->name, sizeof(d->name), err);
		}
		if (kw(b, q, "TABLE"))
			return zila_error_set(err, ZILA_EINVAL, "dropping a table is refused: laptops hold its rows and entries that write it, "
				      "and a drop cannot be merged with them. Stop using the table instead (it stays, unused)");
	}
	return zila_error_set(err, ZILA_EINVAL, "only CREATE TABLE, ALTER TABLE ... ADD COLUMN, CREATE INDEX and DROP INDEX can be "
		      "distributed (dropping or renaming a table or column, or changing a type or key, cannot be merged "
		      "with the rows and entries laptops hold)");
}

/* --- the replica's own schema ------------------------------------------------------- */

static int type_of(struct zila_store *s, const char *name, char *out, size_t n)
{
	sqlite3_stmt *st = NULL;
	int r = ZILA_ENOTFOUND;
	out[0] = '\0';
	if (sqlite3_prepare_v2(s->db, "SELECT type FROM sqlite_schema WHERE name = ? COLLATE NOCASE", -1, &st, NULL) !=
	    SQLITE_OK)
		return ZILA_EDB;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(out, n, "%s", (const char *)sqlite3_column_text(st, 0));
		r = 0;
	}
	sqlite3_finalize(st);
	return r;
}

static struct table *tracked(struct zila_store *s, const char *name)
{
	for (int i = 0; i < s->ntables; i++)
		if (strcasecmp(s->tables[i]->name, name) == 0)
			return s->tables[i];
	return NULL;
}

/* The column's declared type and whether the table has it at all. */
static bool column_decl(struct zila_store *s, const char *table, const char *col, char *type, size_t n, int *notnull,
			bool *has_dflt)
{
	sqlite3_stmt *st = NULL;
	bool found = false;
	if (sqlite3_prepare_v2(s->db, "SELECT type, \"notnull\", dflt_value FROM pragma_table_info(?) WHERE name = ? "
				      "COLLATE NOCASE", -1, &st, NULL) != SQLITE_OK)
		return false;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, col, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		found = true;
		snprintf(type, n, "%s", sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0) : "");
		*notnull = sqlite3_column_int(st, 1);
		*has_dflt = sqlite3_column_type(st, 2) != SQLITE_NULL;
	}
	sqlite3_finalize(st);
	return found;
}

/* One statement and nothing after it (the rest may be spaces, comments and ';'). */
static int one_statement(struct zila_store *s, const char *sql, sqlite3_stmt **out, struct zila_error *err)
{
	const char *tail = NULL;
	*out = NULL;
	if (sqlite3_prepare_v2(s->db, sql, -1, out, &tail) != SQLITE_OK || *out == NULL) {
		const char *m = sqlite3_errmsg(s->db);
		sqlite3_finalize(*out);
		*out = NULL;
		if (strstr(m, "already exists") != NULL)
			return zila_error_set(err, ZILA_EINVAL, "%s: changing an existing table's columns, types or key cannot be merged with the "
				      "rows laptops hold; add a column instead ('zila schema add-column')", m);
		return zila_error_set(err, ZILA_EINVAL, "the statement is not valid SQL here: %s", m);
	}
	for (const char *t = skip_space(tail); *t != '\0'; t = skip_space(t + 1))
		if (*t != ';') {
			sqlite3_finalize(*out);
			*out = NULL;
			return zila_error_set(err, ZILA_EINVAL, "one statement per schema change: '%.40s...' follows the first", t);
		}
	return 0;
}

static char *schema_sql_of(struct zila_store *s, const char *type, const char *name);

/* Checks and runs one schema change in the caller's transaction; the tables' cache is
 * reloaded. adopt: a receiver takes a local table or column that is already there and
 * the same as the change makes. *undo (malloc'd, may stay NULL): what undoing the change
 * restores (the table's statement before a column is added, a dropped index's). */

static int run_change_undo(struct zila_store *s, const char *sql, const char *pcol, bool adopt, struct ddl *d,
			   char **undo, struct zila_error *err)
{
	char type[32], decl[128];
	sqlite3_stmt *st = NULL;
	int r;
	if (strlen(sql) > ZILA_SCHEMA_SQL_MAX)
		return zila_error_set(err, ZILA_EINVAL, "the statement is longer than %d KiB", ZILA_SCHEMA_SQL_MAX / 1024);
	if ((r = classify(sql, d, err)) != 0)
		return r;
	if (d->kind != K_TABLE && pcol != NULL)
		return zila_error_set(err, ZILA_EINVAL, "a partition column is given only with a new table");
	bool adopted = false;
	switch (d->kind) {
	case K_TABLE:
		if (tracked(s, d->table) != NULL)
			return zila_error_set(err, ZILA_EINVAL, "table '%s' is synced already: changing its columns, types or key cannot be merged "
				      "with the rows laptops hold; add a column instead ('zila schema add-column')", d->table);
		if (type_of(s, d->table, type, sizeof(type)) == 0) {
			/* a table of this replica's own, made as the change makes it, is taken over */
			sqlite3_stmt *q = NULL;
			if (adopt && sqlite3_prepare_v2(s->db, "SELECT sql = ? FROM sqlite_schema WHERE name = ? COLLATE NOCASE",
							-1, &q, NULL) == SQLITE_OK) {
				sqlite3_bind_text(q, 1, sql, -1, SQLITE_STATIC);
				sqlite3_bind_text(q, 2, d->table, -1, SQLITE_STATIC);
				adopted = sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0) == 1;
			}
			sqlite3_finalize(q);
			if (!adopted)
				return zila_error_set(err, ZILA_EINVAL, "'%s' is already a %s of this replica that is not synced; %s", d->table, type,
					      adopt ? "rename it so that HQ's table can be made here"
						    : "track it as it is with 'zila schema track', or choose another name");
		}
		break;
	case K_COLUMN: {
		struct table *t = tracked(s, d->table);
		if (t == NULL)
			return zila_error_set(err, ZILA_EINVAL, "table '%s' is not synced: only columns of synced tables can be distributed", d->table);
		for (int i = 0; i < t->ncols; i++)
			if (strcasecmp(t->cols[i], d->name) == 0)
				return zila_error_set(err, ZILA_EINVAL, "'%s' already has a synced column '%s'", d->table, d->name);
		int nn = 0;
		bool dflt = false;
		if (column_decl(s, d->table, d->name, decl, sizeof(decl), &nn, &dflt)) {
			if (!adopt)
				return zila_error_set(err, ZILA_EINVAL, "'%s' already has a column '%s' that is not synced (local to this replica); "
					      "choose another name", d->table, d->name);
			adopted = true; /* checked against the statement's type below */
		}
		break;
	}
	case K_INDEX: {
		struct table *t = tracked(s, d->table);
		if (t == NULL)
			return zila_error_set(err, ZILA_EINVAL, "table '%s' is not synced: only indexes of synced tables can be distributed", d->table);
		if (d->unique && !adopt)
			return zila_error_set(err, ZILA_EINVAL, "a UNIQUE index on '%s', which laptops already hold rows of, may meet rows that "
				      "collide there, and those cannot be settled alike everywhere; declare UNIQUE columns in "
				      "a new table ('zila schema add-table'), or add a plain index", d->table);
		if (type_of(s, d->name, type, sizeof(type)) == 0) {
			if (!adopt)
				return zila_error_set(err, ZILA_EINVAL, "'%s' is already the name of a %s here", d->name, type);
			adopted = true; /* an index of the same name: kept as it is */
		}
		break;
	}
	case K_DROP_INDEX: {
		sqlite3_stmt *q = NULL;
		int uniq = -1;
		char tbl[256] = "";
		if (sqlite3_prepare_v2(s->db, "SELECT tbl_name, sql IS NULL OR sql LIKE 'CREATE UNIQUE%' FROM sqlite_schema "
					      "WHERE type = 'index' AND name = ? COLLATE NOCASE", -1, &q, NULL) == SQLITE_OK) {
			sqlite3_bind_text(q, 1, d->name, -1, SQLITE_STATIC);
			if (sqlite3_step(q) == SQLITE_ROW) {
				snprintf(tbl, sizeof(tbl), "%s", (const char *)sqlite3_column_text(q, 0));
				uniq = sqlite3_column_int(q, 1);
			}
		}
		sqlite3_finalize(q);
		if (uniq < 0) {
			if (!adopt)
				return zila_error_set(err, ZILA_EINVAL, "there is no index '%s'", d->name);
			adopted = true; /* dropped here already */
			break;
		}
		if (tracked(s, tbl) == NULL && !adopt)
			return zila_error_set(err, ZILA_EINVAL, "index '%s' is on '%s', which is not synced", d->name, tbl);
		if (uniq == 1)
			return zila_error_set(err, ZILA_EINVAL, "index '%s' is UNIQUE: dropping it changes which rows are duplicates, which cannot "
				      "be settled alike on every laptop", d->name);
		snprintf(d->table, sizeof(d->table), "%s", tbl);
		break;
	}
	}
	if (!adopted) {
		if ((r = one_statement(s, sql, &st, err)) != 0)
			return r;
		if (undo != NULL && d->kind == K_COLUMN)
			*undo = schema_sql_of(s, "table", d->table);
		else if (undo != NULL && d->kind == K_DROP_INDEX)
			*undo = schema_sql_of(s, "index", d->name);
		{
			int rc = sqlite3_step(st);
			if (rc != SQLITE_DONE) {
				const char *m = sqlite3_errmsg(s->db);
				if (strstr(m, "NOT NULL") != NULL)
					r = zila_error_set(err, ZILA_EINVAL, "a new column that is NOT NULL needs a DEFAULT: laptops hold rows and "
						   "entries without it. Add it without NOT NULL, or with DEFAULT and a constant");
				else if (rc == SQLITE_FULL || rc == SQLITE_BUSY || rc == SQLITE_NOMEM)
					r = store_db_error(s, err, "cannot change the schema");
				else
					r = zila_error_set(err, ZILA_EINVAL, "SQLite refuses the change: %s", m);
				sqlite3_finalize(st);
				return r;
			}
		}
		sqlite3_finalize(st);
	}
	d->adopted = adopted;
	switch (d->kind) {
	case K_TABLE: {
		/* the rules of 'zila track', and foreign keys only to synced tables */
		sqlite3_stmt *q = NULL;
		char bad[256] = "";
		if (sqlite3_prepare_v2(s->db, "SELECT \"table\" FROM pragma_foreign_key_list(?)", -1, &q, NULL) == SQLITE_OK) {
			sqlite3_bind_text(q, 1, d->table, -1, SQLITE_STATIC);
			while (bad[0] == '\0' && sqlite3_step(q) == SQLITE_ROW) {
				const char *pt = (const char *)sqlite3_column_text(q, 0);
				if (pt != NULL && strcasecmp(pt, d->table) != 0 && tracked(s, pt) == NULL)
					snprintf(bad, sizeof(bad), "%s", pt);
			}
		}
		sqlite3_finalize(q);
		if (bad[0] != '\0')
			return zila_error_set(err, ZILA_EINVAL, "'%s' refers to '%s', which is not synced: laptops would hold rows whose parent "
				      "they never get", d->table, bad);
		if ((r = store_track_locked(s, d->table, pcol, err)) != 0) {
			if (r != ZILA_EUNTRACKABLE)
				return r;
			if (err != NULL)
				err->code = ZILA_EINVAL;
			return ZILA_EINVAL;
		}
		break;
	}
	case K_COLUMN: {
		int nn = 0;
		bool dflt = false;
		if (!column_decl(s, d->table, d->name, decl, sizeof(decl), &nn, &dflt))
			return zila_error_set(err, ZILA_EINVAL, "the statement did not add a column '%s'", d->name);
		if (nn && !dflt)
			return zila_error_set(err, ZILA_EINVAL, "a new column that is NOT NULL needs a DEFAULT: laptops hold rows and entries "
				      "without it. Add it without NOT NULL, or with DEFAULT and a constant");
		if (adopted)
			zila_log(ZILA_LOG_INFO, "schema: the local column '%s.%s' (%s) is synced from now on", d->table,
				 d->name, decl);
		if ((r = store_cols_add(s, d->table, d->name)) != 0)
			return store_db_error(s, err, "cannot record a synced column");
		break;
	}
	default:
		break;
	}
	return 0;
}

/* --- the tables' cache ---------------------------------------------------------------- */

/* What the cache knows of each table within a transaction (struct table), kept across a
 * reload. */
struct transient {
	int64_t id, nlive_delta;
	bool touched, hw_clean, maybe_gone, evicted, rows_none, unarmed, reseal, gone_seen;
};

int store_schema_reload(struct zila_store *s, struct zila_error *err)
{
	struct transient *keep = calloc((size_t)s->ntables + 1, sizeof(*keep));
	int n = s->ntables, r;
	if (keep == NULL)
		return zila_error_set(err, ZILA_ENOMEM, "out of memory");
	for (int i = 0; i < n; i++) {
		struct table *t = s->tables[i];
		keep[i] = (struct transient){ t->id, t->nlive_delta, t->touched, t->hw_clean, t->maybe_gone,
					      t->evicted, t->rows_none, t->unarmed, t->reseal, t->gone_seen };
	}
	s->schema = store_meta_int(s, "schema_version", 1);
	r = store_load_tables(s, err);
	for (int i = 0; r == 0 && i < s->ntables; i++) {
		struct table *t = s->tables[i];
		for (int k = 0; k < n; k++) {
			if (keep[k].id != t->id)
				continue;
			t->nlive_delta = keep[k].nlive_delta;
			t->touched = keep[k].touched;
			t->hw_clean = keep[k].hw_clean;
			t->maybe_gone = keep[k].maybe_gone;
			t->evicted = keep[k].evicted;
			t->gone_seen = keep[k].gone_seen;
			t->rows_none = keep[k].rows_none;
			t->unarmed = keep[k].unarmed;
			t->reseal = keep[k].reseal;
		}
	}
	free(keep);
	s->schema_cookie = -1;
	return r;
}

static int64_t cookie(struct zila_store *s)
{
	sqlite3_stmt *st = NULL;
	int64_t c = -1;
	if (sqlite3_prepare_v2(s->db, "PRAGMA schema_version", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		c = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return c;
}

int store_schema_follow(struct zila_store *s, struct zila_error *err)
{
	if (!sqlite3_get_autocommit(s->db))
		return 0;
	int64_t c = cookie(s);
	if (c < 0 || (c == s->schema_cookie && !s->tables_stale))
		return 0;
	/* another program (zila at HQ, a bundle applied by the CLI) changed the schema: the
	 * cache follows, so capture, seal and merge see new tables and columns at once */
	int64_t v = store_meta_int(s, "schema_version", 1);
	int r = 0;
	if (v != s->schema || s->schema_cookie >= 0 || s->tables_stale) {
		r = store_schema_reload(s, err);
		if (r == 0 && v != s->schema)
			zila_log(ZILA_LOG_INFO, "schema: now at version %lld", (long long)s->schema);
	}
	if (r == 0)
		s->schema_cookie = cookie(s);
	return r;
}

void store_schema_rolled_back(struct zila_store *s)
{
	if (!s->schema_txn)
		return;
	s->schema_txn = false;
	struct zila_error e;
	zila_error_clear(&e);
	if (store_schema_reload(s, &e) != 0)
		zila_log(ZILA_LOG_ERROR, "cannot reload the tracked tables: %s", e.msg);
}

/* --- schema entries ------------------------------------------------------------------- */

/* Records what became of schema entry (v, origin): state ZILA_SCHEMA_*, why (not applied),
 * undo (applied: what undoing it restores); the replica's version is the highest taken. */
static int record(struct zila_store *s, uint32_t v, const char *sql, const char *pcol, const uint8_t origin[32],
		  uint64_t hlc, int state, const char *why, const char *undo)
{
	sqlite3_stmt *st = NULL;
	char num[24];
	int r = ZILA_EDB;
	if (sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO zila_schema(version, origin, sql, pcol, hlc, at, state, why,"
				      " undo) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_int64(st, 1, v);
	sqlite3_bind_blob(st, 2, origin, 32, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, sql, -1, SQLITE_STATIC);
	if (pcol != NULL)
		sqlite3_bind_text(st, 4, pcol, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (int64_t)hlc);
	sqlite3_bind_int64(st, 6, (int64_t)(store_now_ms(s) / 1000));
	sqlite3_bind_int(st, 7, state);
	if (why != NULL)
		sqlite3_bind_text(st, 8, why, -1, SQLITE_STATIC);
	if (undo != NULL)
		sqlite3_bind_text(st, 9, undo, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto out;
	if ((int64_t)v > s->schema)
		s->schema = v;
	snprintf(num, sizeof(num), "%lld", (long long)s->schema);
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO zila_meta VALUES ('schema_version', ?)", -1, &st, NULL) !=
		    SQLITE_OK ||
	    (sqlite3_bind_text(st, 1, num, -1, SQLITE_STATIC), sqlite3_step(st)) != SQLITE_DONE)
		goto out;
	r = 0;
out:
	sqlite3_finalize(st);
	return r;
}

/* After a change ran: the cache reloaded, the version moved, triggers made for what the
 * change added; a new table is clean (nothing in it to seal). */
static int after_change(struct zila_store *s, const struct ddl *d, uint32_t v, struct zila_error *err)
{
	s->schema_txn = true;
	int64_t was = s->schema;
	int r = store_schema_reload(s, err);
	if (r != 0)
		return r;
	s->schema = (int64_t)v > was ? v : was;
	struct table *t = d->kind == K_DROP_INDEX && d->table[0] == '\0' ? NULL : tracked(s, d->table);
	if (t != NULL && (r = store_arm_table(s, t, err)) != 0)
		return r;
	/* a table made empty now has nothing to seal: rows merged into it are not this replica's */
	if (t != NULL && d->kind == K_TABLE && !d->adopted)
		t->hw_clean = true;
	return 0;
}

static int put_body(struct zila_buf *b, uint32_t v, const char *sql, const char *pcol)
{
	struct zval pk = { .type = VAL_INT, .i = v };
	struct zval vs = { .type = VAL_TEXT, .p = (const uint8_t *)sql, .len = strlen(sql) };
	struct zval vp = { .type = pcol ? VAL_TEXT : VAL_NULL, .p = (const uint8_t *)pcol, .len = pcol ? strlen(pcol) : 0 };
	int r = zila_buf_put_varint(b, 1);
	r = r ? r : zila_buf_put_lenbytes(b, ZILA_SCHEMA_TABLE, strlen(ZILA_SCHEMA_TABLE));
	r = r ? r : zila_buf_put_varint(b, 2);
	r = r ? r : zila_buf_put_lenbytes(b, "sql", 3);
	r = r ? r : zila_buf_put_lenbytes(b, "partition", 9);
	r = r ? r : zila_buf_put_varint(b, 1);
	r = r ? r : zila_buf_put_varint(b, 0);
	r = r ? r : zila_buf_put_u8(b, OP_UPSERT);
	r = r ? r : val_put(b, &pk);
	r = r ? r : val_put(b, &vs);
	return r ? r : val_put(b, &vp);
}

/* The schema entry for version v as the next entry of this device's org-wide feed. */
static int write_entry(struct zila_store *s, uint32_t v, const char *sql, const char *pcol, uint64_t *hlc_out,
		       struct zila_error *err)
{
	struct zila_buf e, body;
	sqlite3_stmt *st = NULL;
	int64_t feed;
	uint64_t head;
	size_t ndeps = 0;
	uint8_t sig[64];
	int r;
	zila_buf_init(&e, ZILA_ENTRY_MAX);
	zila_buf_init(&body, ZILA_ENTRY_MAX);
	if ((r = store_feed_get(s, s->self_id, ZILA_ORG_PARTITION, &feed, &head, NULL)) != 0) {
		r = store_db_error(s, err, "cannot read this device's org-wide feed");
		goto out;
	}
	uint64_t hlc = store_hlc_tick(s);
	*hlc_out = hlc;
	r = zila_buf_put_u8(&e, 1);
	r = r ? r : zila_buf_put(&e, s->pk, 32);
	r = r ? r : zila_buf_put_lenbytes(&e, "", 0);
	r = r ? r : zila_buf_put_varint(&e, head + 1);
	r = r ? r : zila_buf_put_u64be(&e, hlc);
	r = r ? r : zila_buf_put_varint(&e, v);
	/* deps: the org-wide feeds of others as held now */
	if (r == 0 && sqlite3_prepare_v2(s->db, "SELECT o.key, f.head FROM zila_feeds f JOIN zila_origins o ON o.id = f.origin"
					      " WHERE f.part = '' AND f.origin != ? AND f.head > 0 ORDER BY o.key",
					 -1, &st, NULL) != SQLITE_OK)
		r = ZILA_EDB;
	if (r == 0) {
		sqlite3_bind_int64(st, 1, s->self_id);
		while (r == 0 && sqlite3_step(st) == SQLITE_ROW) {
			r = zila_buf_put(&body, sqlite3_column_blob(st, 0), 32);
			r = r ? r : zila_buf_put_varint(&body, (uint64_t)sqlite3_column_int64(st, 1));
			ndeps++;
		}
	}
	r = r ? r : zila_buf_put_varint(&e, ndeps);
	r = r ? r : zila_buf_put(&e, body.p, body.len);
	zila_buf_reset(&body);
	r = r ? r : put_body(&body, v, sql, pcol);
	r = r ? r : zila_buf_put_u8(&e, 0);
	r = r ? r : zila_buf_put_lenbytes(&e, body.p, body.len);
	if (r == 0 && e.len + 64 > ZILA_ENTRY_MAX)
		r = ZILA_ETOOBIG;
	if (r != 0) {
		r = zila_error_set(err, r, "cannot encode the schema entry: %s", zila_strerror(r));
		goto out;
	}
	crypto_sign_detached(sig, NULL, e.p, e.len, s->sk);
	if ((r = zila_buf_put(&e, sig, 64)) != 0) {
		r = zila_error_set(err, r, "cannot encode the schema entry");
		goto out;
	}
	sqlite3_stmt *put = s->st_entry_put;
	sqlite3_bind_int64(put, 1, feed);
	sqlite3_bind_int64(put, 2, (int64_t)(head + 1));
	sqlite3_bind_int64(put, 3, (int64_t)hlc);
	sqlite3_bind_int(put, 4, 1);
	sqlite3_bind_blob(put, 5, e.p, (int)e.len, SQLITE_STATIC);
	int rc = sqlite3_step(put);
	sqlite3_reset(put);
	sqlite3_clear_bindings(put);
	if (rc != SQLITE_DONE || store_feed_advance(s, feed, head + 1, zila_buf_view(&e), 0, 0) != 0 ||
	    store_save_hlc(s) != 0)
		r = store_db_error(s, err, "cannot store the schema entry");
out:
	sqlite3_finalize(st);
	zila_buf_release(&e);
	zila_buf_release(&body);
	return r;
}

uint32_t zila_schema_version(struct zila_store *s)
{
	return (uint32_t)s->schema;
}

static int change(struct zila_store *s, const char *sql, const char *pcol, bool dry, bool adopt, uint32_t *version,
		  struct zila_error *err)
{
	struct ddl d;
	uint64_t hlc = 0;
	int r;
	if (version != NULL)
		*version = 0;
	if (s->wscoped)
		return zila_error_set(err, ZILA_EINVAL, "this laptop may write only its district; the organisation's schema is changed at HQ "
			      "(a table or column made here stays local to this laptop and is not synced)");
	if (pcol != NULL && pcol[0] == '\0')
		pcol = NULL;
	if (!dry && (r = zila_store_seal(s, NULL, err)) != 0)
		return r;
	if ((r = store_schema_follow(s, err)) != 0 || (r = store_begin(s, err)) != 0)
		return r;
	/* two changes at once at HQ (two commands, two HQ devices' replicas are apart): the
	 * version is read again under the write lock, never taken twice */
	if (store_meta_int(s, "schema_version", 1) != s->schema) {
		store_rollback(s);
		if (store_schema_reload(s, NULL) != 0)
			zila_log(ZILA_LOG_ERROR, "cannot reload the tracked tables");
		return zila_error_set(err, ZILA_EINVAL, "another schema change was made here meanwhile (now version %lld); run this one again",
			      (long long)s->schema);
	}
	uint32_t v = (uint32_t)s->schema + 1;
	char *undo = NULL;
	r = run_change_undo(s, sql, pcol, adopt, &d, &undo, err);
	r = r ? r : after_change(s, &d, v, err);
	if (!dry) {
		r = r ? r : write_entry(s, v, sql, pcol, &hlc, err);
		if (r == 0 && (r = record(s, v, sql, pcol, s->pk, hlc, ZILA_SCHEMA_APPLIED, NULL, undo)) != 0)
			r = store_db_error(s, err, "cannot record the schema version");
		if (r == 0 && (r = store_commit(s, err)) == 0) {
			s->schema_txn = false;
			if (version != NULL)
				*version = v;
			zila_log(ZILA_LOG_INFO, "schema: version %u made: %s", v, sql);
			free(undo);
			return 0;
		}
	}
	free(undo);
	store_rollback(s);
	return r;
}

int zila_schema_change(struct zila_store *s, const char *sql, const char *pcol, uint32_t *version,
		       struct zila_error *err)
{
	return change(s, sql, pcol, false, false, version, err);
}

int zila_schema_track(struct zila_store *s, const char *sql, const char *pcol, uint32_t *version,
		      struct zila_error *err)
{
	return change(s, sql, pcol, false, true, version, err);
}

int zila_schema_check(struct zila_store *s, const char *sql, const char *pcol, struct zila_error *err)
{
	return change(s, sql, pcol, true, false, NULL, err);
}

bool store_schema_entry(struct zila_view body)
{
	uint64_t ntab;
	struct zila_view name;
	if (zila_view_get_varint(&body, &ntab) != 0 || ntab != 1 || zila_view_get_lenbytes(&body, 255, &name) != 0)
		return false;
	return name.len == strlen(ZILA_SCHEMA_TABLE) && memcmp(name.p, ZILA_SCHEMA_TABLE, name.len) == 0;
}

/* A text value of at most max bytes, valid UTF-8 without NUL, as a C string in out. */
static int text_of(const struct zval *v, size_t max, char **out)
{
	*out = NULL;
	if (v->type != VAL_TEXT || v->len > max || memchr(v->p, 0, v->len) != NULL)
		return ZILA_EFORMAT;
	*out = malloc(v->len + 1);
	if (*out == NULL)
		return ZILA_ENOMEM;
	memcpy(*out, v->p, v->len);
	(*out)[v->len] = '\0';
	return 0;
}

int zila_schema_decode(struct zila_view body, uint32_t version, char **sql_out, char **pcol_out)
{
	struct zila_view in = body, name;
	uint64_t n, di;
	uint8_t op;
	struct zval pk, vs, vp;
	char *sql = NULL, *pcol = NULL;
	*sql_out = *pcol_out = NULL;
	int r = zila_view_get_varint(&in, &n);
	if (r == 0 && n != 1)
		r = ZILA_EFORMAT;
	r = r ? r : zila_view_get_lenbytes(&in, 255, &name);
	if (r == 0 && (name.len != strlen(ZILA_SCHEMA_TABLE) || memcmp(name.p, ZILA_SCHEMA_TABLE, name.len) != 0))
		r = ZILA_EFORMAT;
	r = r ? r : zila_view_get_varint(&in, &n);
	if (r == 0 && n != 2)
		r = ZILA_EFORMAT;
	r = r ? r : zila_view_get_lenbytes(&in, 255, &name);
	if (r == 0 && (name.len != 3 || memcmp(name.p, "sql", 3) != 0))
		r = ZILA_EFORMAT;
	r = r ? r : zila_view_get_lenbytes(&in, 255, &name);
	if (r == 0 && (name.len != 9 || memcmp(name.p, "partition", 9) != 0))
		r = ZILA_EFORMAT;
	r = r ? r : zila_view_get_varint(&in, &n);
	if (r == 0 && n != 1)
		r = ZILA_EFORMAT;
	r = r ? r : zila_view_get_varint(&in, &di);
	r = r ? r : zila_view_get_u8(&in, &op);
	r = r ? r : val_get(&in, &pk);
	r = r ? r : val_get(&in, &vs);
	r = r ? r : val_get(&in, &vp);
	if (r == 0 && (di != 0 || op != OP_UPSERT || in.len != 0 || pk.type != VAL_INT || pk.i != (int64_t)version ||
		       version < 2))
		r = ZILA_EFORMAT;
	r = r ? r : text_of(&vs, ZILA_SCHEMA_SQL_MAX, &sql);
	if (r == 0 && vp.type != VAL_NULL)
		r = text_of(&vp, 255, &pcol);
	if (r == ZILA_ESHORT || r == ZILA_ETOOBIG)
		r = ZILA_EFORMAT;
	if (r != 0) {
		free(sql);
		free(pcol);
		return r;
	}
	*sql_out = sql;
	*pcol_out = pcol;
	return 0;
}

int zila_schema_classify(const char *sql, struct zila_error *err)
{
	struct ddl d;
	if (strlen(sql) > ZILA_SCHEMA_SQL_MAX)
		return zila_error_set(err, ZILA_EINVAL, "the statement is longer than %d KiB", ZILA_SCHEMA_SQL_MAX / 1024);
	return classify(sql, &d, err);
}

/* --- two HQ devices: the canonical order -------------------------------------------- */

/* A schema entry held here, as the canonical order needs it. */
struct sent {
	uint32_t v;
	uint8_t origin[32];
	uint64_t hlc;
	char *sql, *pcol;
	int state; /* a row of zila_schema: its state; -1: none (not taken) */
	char *undo;
};

static int key_cmp(uint32_t va, const uint8_t *oa, uint32_t vb, const uint8_t *ob)
{
	if (va != vb)
		return va < vb ? -1 : 1;
	return memcmp(oa, ob, 32);
}

static int sent_cmp(const void *a, const void *b)
{
	const struct sent *x = a, *y = b;
	return key_cmp(x->v, x->origin, y->v, y->origin);
}

static void sents_free(struct sent *l, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(l[i].sql);
		free(l[i].pcol);
		free(l[i].undo);
	}
	free(l);
}

static char *dup_col(sqlite3_stmt *st, int i)
{
	const char *t = (const char *)sqlite3_column_text(st, i);
	return t ? strdup(t) : NULL;
}

/* held: the schema entries the replica holds (its org-wide feeds; waiting: only those not
 * taken, applied = 0); otherwise the rows of zila_schema. In canonical order: version,
 * then the author's key. */
static int load_sents_where(struct zila_store *s, bool held, bool waiting, struct sent **out, size_t *n);
static int load_sents(struct zila_store *s, bool held, struct sent **out, size_t *n)
{
	return load_sents_where(s, held, false, out, n);
}

static int load_sents_where(struct zila_store *s, bool held, bool waiting, struct sent **out, size_t *n)
{
	sqlite3_stmt *q = NULL;
	struct sent *l = NULL;
	size_t cap = 0;
	int r = ZILA_EDB, rc;
	*out = NULL;
	*n = 0;
	const char *sql = !held	   ? "SELECT version, origin, sql, pcol, hlc, state, undo FROM zila_schema"
			  : waiting ? "SELECT e.bytes FROM zila_entries e JOIN zila_feeds f ON f.id = e.feed"
				      " WHERE f.part = '' AND e.applied = 0"
				    : "SELECT e.bytes FROM zila_entries e JOIN zila_feeds f ON f.id = e.feed WHERE f.part = ''";
	if (sqlite3_prepare_v2(s->db, sql, -1, &q, NULL) != SQLITE_OK)
		goto out;
	r = 0;
	while (r == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct sent x;
		memset(&x, 0, sizeof(x));
		x.state = -1;
		if (held) {
			struct entry e;
			struct zila_view b = zila_view_make(sqlite3_column_blob(q, 0), (size_t)sqlite3_column_bytes(q, 0));
			if (entry_parse(b, &e, false) != 0)
				continue;
			bool ok = store_schema_entry(e.body) && zila_schema_decode(e.body, e.info.schema, &x.sql, &x.pcol) == 0;
			x.v = e.info.schema;
			memcpy(x.origin, e.info.origin, 32);
			x.hlc = e.info.hlc;
			entry_release(&e);
			if (!ok)
				continue;
		} else {
			x.v = (uint32_t)sqlite3_column_int64(q, 0);
			if (sqlite3_column_bytes(q, 1) == 32)
				memcpy(x.origin, sqlite3_column_blob(q, 1), 32);
			x.sql = dup_col(q, 2);
			x.pcol = dup_col(q, 3);
			x.hlc = (uint64_t)sqlite3_column_int64(q, 4);
			x.state = sqlite3_column_int(q, 5);
			x.undo = dup_col(q, 6);
			if (x.sql == NULL) {
				r = ZILA_ENOMEM;
				break;
			}
		}
		if (*n == cap) {
			struct sent *nl = realloc(l, (cap = cap ? cap * 2 : 16) * sizeof(*l));
			if (nl == NULL) {
				free(x.sql);
				free(x.pcol);
				free(x.undo);
				r = ZILA_ENOMEM;
				break;
			}
			l = nl;
		}
		l[(*n)++] = x;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = ZILA_EDB;
out:
	sqlite3_finalize(q);
	if (r != 0) {
		sents_free(l, *n);
		*n = 0;
		return r;
	}
	if (*n > 1)
		qsort(l, *n, sizeof(*l), sent_cmp);
	*out = l;
	return 0;
}

static char *schema_sql_of(struct zila_store *s, const char *type, const char *name)
{
	sqlite3_stmt *q = NULL;
	char *out = NULL;
	if (sqlite3_prepare_v2(s->db, "SELECT sql FROM sqlite_schema WHERE type = ? AND name = ? COLLATE NOCASE", -1, &q,
			       NULL) == SQLITE_OK) {
		sqlite3_bind_text(q, 1, type, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 2, name, -1, SQLITE_STATIC);
		if (sqlite3_step(q) == SQLITE_ROW)
			out = dup_col(q, 0);
	}
	sqlite3_finalize(q);
	return out;
}

static void short_key(char out[17], const uint8_t *key)
{
	zila_hex_encode(out, key, 8);
}

/* Whether a change meets one taken before it in the canonical order: 0 no, ZILA_SCHEMA_SAME
 * (the same change: nothing to do), ZILA_SCHEMA_LOST (it conflicts; why says with what),
 * negative: database trouble. It looks only at the organisation's schema (synced tables and
 * columns, the changes taken), never at the replica's own tables, so every replica decides
 * alike. */
static int conflict(struct zila_store *s, const char *sql, const char *pcol, char *why, size_t n)
{
	struct ddl d, o;
	struct zila_error e;
	sqlite3_stmt *q = NULL;
	char by[64] = "";
	int found = 0; /* 1: the same object made by a change taken, 2: and the same statement */
	if (classify(sql, &d, &e) != 0) {
		snprintf(why, n, "it cannot be distributed: %s", e.msg);
		return ZILA_SCHEMA_LOST;
	}
	if (sqlite3_prepare_v2(s->db, "SELECT version, origin, sql, pcol FROM zila_schema WHERE state = 0"
				      " ORDER BY version, origin", -1, &q, NULL) != SQLITE_OK)
		return ZILA_EDB;
	while (sqlite3_step(q) == SQLITE_ROW) {
		const char *osql = (const char *)sqlite3_column_text(q, 2), *opcol = (const char *)sqlite3_column_text(q, 3);
		if (osql == NULL || classify(osql, &o, &e) != 0 || o.kind != d.kind)
			continue;
		bool same_obj = d.kind == K_TABLE    ? strcasecmp(o.table, d.table) == 0
				: d.kind == K_COLUMN ? strcasecmp(o.table, d.table) == 0 && strcasecmp(o.name, d.name) == 0
						     : strcasecmp(o.name, d.name) == 0;
		if (!same_obj)
			continue;
		char dev[17] = "?";
		if (sqlite3_column_bytes(q, 1) == 32)
			short_key(dev, sqlite3_column_blob(q, 1));
		snprintf(by, sizeof(by), "version %u by HQ device %s", (unsigned)(sqlite3_column_int64(q, 0) & 0xffffffu), dev);
		bool same_pcol = (pcol == NULL || pcol[0] == '\0') ? opcol == NULL : opcol != NULL && strcmp(pcol, opcol) == 0;
		found = strcmp(osql, sql) == 0 && same_pcol ? 2 : 1;
	}
	sqlite3_finalize(q);
	char type[32];
	switch (d.kind) {
	case K_TABLE:
		if (found == 2)
			goto same;
		if (found == 1) {
			snprintf(why, n, "table '%s' was made otherwise by %s, which ranks first", d.table, by);
			return ZILA_SCHEMA_LOST;
		}
		if (tracked(s, d.table) != NULL) {
			snprintf(why, n, "table '%s' is synced already", d.table);
			return ZILA_SCHEMA_LOST;
		}
		return 0;
	case K_COLUMN: {
		struct table *t = tracked(s, d.table);
		if (t == NULL) {
			snprintf(why, n, "there is no synced table '%s' (the change that made it lost or was undone)", d.table);
			return ZILA_SCHEMA_LOST;
		}
		if (found == 2)
			goto same;
		if (found == 1) {
			snprintf(why, n, "column '%.200s.%.200s' was added otherwise by %s, which ranks first", d.table, d.name, by);
			return ZILA_SCHEMA_LOST;
		}
		for (int i = 0; i < t->ncols; i++)
			if (strcasecmp(t->cols[i], d.name) == 0) {
				snprintf(why, n, "'%s' has a synced column '%s' already", d.table, d.name);
				return ZILA_SCHEMA_LOST;
			}
		return 0;
	}
	case K_INDEX:
		if (tracked(s, d.table) == NULL) {
			snprintf(why, n, "there is no synced table '%s' (the change that made it lost or was undone)", d.table);
			return ZILA_SCHEMA_LOST;
		}
		if (found && type_of(s, d.name, type, sizeof(type)) == 0) {
			if (found == 2)
				goto same;
			snprintf(why, n, "index '%s' was made otherwise by %s, which ranks first", d.name, by);
			return ZILA_SCHEMA_LOST;
		}
		return 0;
	case K_DROP_INDEX:
		if (found == 2 && type_of(s, d.name, type, sizeof(type)) != 0)
			goto same;
		return 0;
	}
	return 0;
same:
	snprintf(why, n, "the same change as %s", by);
	return ZILA_SCHEMA_SAME;
}

/* Takes schema entry (v, origin) in the caller's transaction, in canonical order: applied,
 * the same as one taken (nothing to do) or lost to one, and recorded. ZILA_ESCHEMA: it
 * cannot be applied here (a table of the replica's own in the way; s->schema_blocked says
 * why) and nothing of it is kept. */
static int decide(struct zila_store *s, uint32_t v, const char *sql, const char *pcol, const uint8_t origin[32],
		  uint64_t hlc)
{
	struct ddl d;
	struct zila_error why;
	char lost[600];
	char *undo = NULL;
	zila_error_clear(&why);
	/* all or nothing, whatever the caller does with the entry's own savepoint */
	bool was_txn = s->schema_txn;
	int r = store_exec(s, "SAVEPOINT zila_schema_change", NULL);
	if (r != 0)
		return r;
	int state = conflict(s, sql, pcol, lost, sizeof(lost));
	if (state < 0) {
		r = state;
	} else if (state > 0) {
		r = record(s, v, sql, pcol, origin, hlc, state, lost, NULL);
	} else {
		if ((r = run_change_undo(s, sql, pcol, true, &d, &undo, &why)) == 0 &&
		    (r = after_change(s, &d, v, &why)) == 0)
			r = record(s, v, sql, pcol, origin, hlc, ZILA_SCHEMA_APPLIED, NULL, undo);
	}
	free(undo);
	if (r != 0) {
		int rr = store_db_code(s);
		if (store_exec(s, "ROLLBACK TO zila_schema_change", NULL) != 0)
			r = ZILA_EDB;
		if (s->schema_txn && store_schema_reload(s, NULL) != 0)
			r = ZILA_EDB;
		s->schema_txn = was_txn;
		if (r == ZILA_EDB)
			r = rr;
	}
	if (store_exec(s, "RELEASE zila_schema_change", NULL) != 0 && r == 0)
		r = ZILA_EDB;
	if (r == ZILA_EINVAL || r == ZILA_EUNTRACKABLE || r == ZILA_ENOTFOUND || r == ZILA_EEXIST) {
		/* it waits, and says why; it is tried again when this replica's schema changes */
		snprintf(s->schema_blocked, sizeof(s->schema_blocked), "HQ's schema version %u cannot be applied here: %s",
			 v, zila_error_msg(&why, r));
		zila_log(ZILA_LOG_WARN, "%s; it and what needs it wait", s->schema_blocked);
		r = ZILA_ESCHEMA;
	} else if (r == 0) {
		s->schema_blocked[0] = '\0';
		if (state == ZILA_SCHEMA_LOST)
			zila_log(ZILA_LOG_WARN, "schema: version %u lost (%s): %s", v, lost, sql);
		else
			zila_log(ZILA_LOG_INFO, "schema: version %u %s: %s", v, state ? "is the same change as one taken" : "applied",
				 sql);
	}
	return r;
}

int store_schema_apply(struct zila_store *s, struct entry *e)
{
	char *sql = NULL, *pcol = NULL;
	struct sent *held = NULL, *taken = NULL;
	size_t nheld = 0, ntaken = 0;
	int r = zila_schema_decode(e->body, e->info.schema, &sql, &pcol);
	if (r != 0)
		goto out;
	/* only HQ writes the org-wide partition (its certificate: the trust hook) */
	if (e->info.part[0] != '\0') {
		r = ZILA_ESCOPE;
		goto out;
	}
	uint32_t v = e->info.schema;
	const uint8_t *o = e->info.origin;
	if ((r = load_sents(s, false, &taken, &ntaken)) != 0)
		goto out;
	for (size_t i = 0; i < ntaken; i++)
		if (key_cmp(taken[i].v, taken[i].origin, v, o) == 0)
			goto out; /* taken before: never twice */
	/* made again from the entries (store_reapply): everything that can be taken was */
	if (s->reapplying || v > (uint32_t)s->schema + 1) {
		r = ZILA_ESCHEMA; /* waits for the versions before it */
		goto out;
	}
	if (ntaken > 0 && key_cmp(v, o, taken[ntaken - 1].v, taken[ntaken - 1].origin) < 0) {
		/* another HQ device's change that ranks before one taken: the schema is made again
		 * in canonical order at the end of this apply (store_schema_redo) */
		s->schema_redo = true;
		r = ZILA_ESCHEMA;
		goto out;
	}
	/* one that ranks before it and waits (a table of this replica's own in the way): this
	 * one waits behind it */
	if ((r = load_sents_where(s, true, true, &held, &nheld)) != 0)
		goto out;
	for (size_t i = 0; i < nheld; i++) {
		if (key_cmp(held[i].v, held[i].origin, v, o) >= 0)
			break;
		bool was_taken = false;
		for (size_t k = 0; !was_taken && k < ntaken; k++)
			was_taken = key_cmp(held[i].v, held[i].origin, taken[k].v, taken[k].origin) == 0;
		if (!was_taken) {
			r = ZILA_ESCHEMA;
			goto out;
		}
	}
	r = decide(s, v, sql, pcol, o, e->info.hlc);
out:
	sents_free(held, nheld);
	sents_free(taken, ntaken);
	free(sql);
	free(pcol);
	return r;
}

/* The table's statement without the column an ADD COLUMN statement gave it (SQLite writes
 * ", " and the column's definition, from its name to the statement's end, into the
 * table's statement): what undoing it restores, for a change taken before replica format
 * 9 recorded that. NULL when it cannot be found. */
static char *strip_column(const char *table_sql, const char *alter)
{
	const char *p = alter;
	char tok[64];
	bool q;
	for (int i = 0; i < 4; i++) /* ALTER TABLE name ADD */
		next_tok(&p, tok, sizeof(tok), &q);
	const char *save = p;
	next_tok(&p, tok, sizeof(tok), &q);
	if (strcmp(tok, ".") == 0) { /* main.name */
		next_tok(&p, tok, sizeof(tok), &q);
		next_tok(&p, tok, sizeof(tok), &q);
		save = p;
		next_tok(&p, tok, sizeof(tok), &q);
	}
	if (!kw(tok, q, "COLUMN"))
		p = save;
	p = skip_space(p);
	/* to the statement's end: a ';' or a comment outside quotes, trailing spaces off */
	size_t len = 0;
	for (char quote = '\0'; p[len] != '\0'; len++) {
		char ch = p[len];
		if (quote != '\0') {
			if (ch == quote)
				quote = '\0';
		} else if (ch == '\'' || ch == '"' || ch == '`') {
			quote = ch;
		} else if (ch == '[') {
			quote = ']';
		} else if (ch == ';' || (ch == '-' && p[len + 1] == '-') || (ch == '/' && p[len + 1] == '*')) {
			break;
		}
	}
	while (len > 0 && isspace((unsigned char)p[len - 1]))
		len--;
	if (len == 0)
		return NULL;
	char *needle = malloc(len + 3);
	if (needle == NULL)
		return NULL;
	memcpy(needle, ", ", 2);
	memcpy(needle + 2, p, len);
	needle[len + 2] = '\0';
	const char *at = NULL;
	for (const char *f = strstr(table_sql, needle); f != NULL; f = strstr(f + 1, needle))
		at = f;
	char *out = NULL;
	if (at != NULL && (out = malloc(strlen(table_sql) + 1)) != NULL) {
		size_t k = (size_t)(at - table_sql);
		memcpy(out, table_sql, k);
		strcpy(out + k, at + len + 2);
	}
	free(needle);
	return out;
}

/* Makes the table again by statement tsql (its indexes kept): the rows go, and come back
 * from the entries (store_reapply). */
static int remake_table(struct zila_store *s, const char *table, const char *tsql)
{
	sqlite3_stmt *q = NULL;
	char **idx = NULL;
	size_t nidx = 0;
	int r = ZILA_EDB;
	if (sqlite3_prepare_v2(s->db, "SELECT sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = ? COLLATE NOCASE"
				      " AND sql IS NOT NULL ORDER BY rowid", -1, &q, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(q, 1, table, -1, SQLITE_STATIC);
	r = 0;
	while (r == 0 && sqlite3_step(q) == SQLITE_ROW) {
		char **n2 = realloc(idx, (nidx + 1) * sizeof(*idx));
		if (n2 == NULL || (n2[nidx] = dup_col(q, 0)) == NULL) {
			idx = n2 ? n2 : idx;
			r = ZILA_ENOMEM;
			break;
		}
		idx = n2;
		nidx++;
	}
	sqlite3_finalize(q);
	q = NULL;
	char *drop = sqlite3_mprintf("DROP TABLE \"%w\"", table);
	if (r == 0)
		r = drop == NULL ? ZILA_ENOMEM : store_exec(s, drop, NULL);
	sqlite3_free(drop);
	r = r ? r : store_exec(s, tsql, NULL);
	for (size_t i = 0; r == 0 && i < nidx; i++)
		r = store_exec(s, idx[i], NULL);
	if (r == 0 && sqlite3_prepare_v2(s->db, "DELETE FROM zila_pending WHERE tid = (SELECT id FROM zila_tables WHERE"
						 " name = ? COLLATE NOCASE)", -1, &q, NULL) == SQLITE_OK) {
		sqlite3_bind_text(q, 1, table, -1, SQLITE_STATIC);
		r = sqlite3_step(q) == SQLITE_DONE ? 0 : ZILA_EDB;
	}
out:
	sqlite3_finalize(q);
	for (size_t i = 0; i < nidx; i++)
		free(idx[i]);
	free(idx);
	return r;
}

/* Undoes one change taken (the last of those taken): the replica's schema as before it. */
static int undo_one(struct zila_store *s, const struct sent *x)
{
	struct ddl d;
	struct zila_error e;
	int r = 0;
	if (x->state == ZILA_SCHEMA_APPLIED && classify(x->sql, &d, &e) == 0) {
		switch (d.kind) {
		case K_TABLE: {
			char *drop = sqlite3_mprintf("DROP TABLE IF EXISTS \"%w\"", d.table);
			r = store_untrack_locked(s, d.table);
			r = r ? r : drop == NULL ? ZILA_ENOMEM : store_exec(s, drop, NULL);
			sqlite3_free(drop);
			break;
		}
		case K_COLUMN: {
			char *now = schema_sql_of(s, "table", d.table), *before = NULL;
			if (x->undo != NULL)
				before = strdup(x->undo);
			else if (now != NULL)
				before = strip_column(now, x->sql);
			if (before == NULL) {
				zila_log(ZILA_LOG_ERROR, "schema: cannot undo version %u (%s): the table's statement before it "
					 "is not known", x->v, x->sql);
				r = ZILA_EDB;
			}
			r = r ? r : remake_table(s, d.table, before);
			r = r ? r : store_cols_drop(s, d.table, d.name);
			free(now);
			free(before);
			break;
		}
		case K_INDEX: {
			char *drop = sqlite3_mprintf("DROP INDEX IF EXISTS \"%w\"", d.name);
			r = drop == NULL ? ZILA_ENOMEM : store_exec(s, drop, NULL);
			sqlite3_free(drop);
			break;
		}
		case K_DROP_INDEX:
			if (x->undo != NULL)
				r = store_exec(s, x->undo, NULL);
			break;
		}
	}
	sqlite3_stmt *q = NULL;
	if (r == 0 && sqlite3_prepare_v2(s->db, "DELETE FROM zila_schema WHERE version = ? AND origin = ?", -1, &q, NULL) ==
			      SQLITE_OK) {
		sqlite3_bind_int64(q, 1, x->v);
		sqlite3_bind_blob(q, 2, x->origin, 32, SQLITE_STATIC);
		r = sqlite3_step(q) == SQLITE_DONE ? 0 : ZILA_EDB;
	}
	sqlite3_finalize(q);
	s->schema_txn = true;
	return r ? r : store_schema_reload(s, NULL);
}

int store_schema_redo(struct zila_store *s, struct zila_apply_stats *st)
{
	struct sent *held = NULL, *taken = NULL;
	size_t nheld = 0, ntaken = 0, from = 0;
	int r;
	s->schema_redo = false;
	if ((r = load_sents(s, true, &held, &nheld)) != 0 || (r = load_sents(s, false, &taken, &ntaken)) != 0)
		goto out;
	/* the first change taken that is no longer held (cut), or that ranks after one held
	 * and not taken: it and every one after it are undone, then taken again in order */
	for (from = 0; from < ntaken; from++) {
		bool is_held = false;
		for (size_t i = 0; !is_held && i < nheld; i++)
			is_held = key_cmp(held[i].v, held[i].origin, taken[from].v, taken[from].origin) == 0;
		if (!is_held)
			break;
		bool before = false;
		for (size_t i = 0; !before && i < nheld; i++) {
			if (key_cmp(held[i].v, held[i].origin, taken[from].v, taken[from].origin) >= 0)
				break;
			bool t = false;
			for (size_t k = 0; !t && k < ntaken; k++)
				t = key_cmp(held[i].v, held[i].origin, taken[k].v, taken[k].origin) == 0;
			before = !t;
		}
		if (before)
			break;
	}
	size_t nundo = ntaken - from;
	for (size_t i = ntaken; r == 0 && i > from; i--)
		r = undo_one(s, &taken[i - 1]);
	if (r != 0)
		goto out;
	/* the version is the highest taken */
	s->schema = 1;
	for (size_t i = 0; i < from; i++)
		if ((int64_t)taken[i].v > s->schema)
			s->schema = taken[i].v;
	char num[24];
	snprintf(num, sizeof(num), "%lld", (long long)s->schema);
	sqlite3_stmt *m = NULL;
	if (sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO zila_meta VALUES ('schema_version', ?)", -1, &m, NULL) !=
		    SQLITE_OK ||
	    (sqlite3_bind_text(m, 1, num, -1, SQLITE_STATIC), sqlite3_step(m)) != SQLITE_DONE)
		r = ZILA_EDB;
	sqlite3_finalize(m);
	if (r != 0)
		goto out;
	s->schema_blocked[0] = '\0';
	/* every table as its synced columns say, armed again (a table made again lost its triggers) */
	for (int i = 0; r == 0 && i < s->ntables; i++)
		r = store_arm_table(s, s->tables[i], NULL);
	for (size_t i = 0; r == 0 && i < nheld; i++) {
		bool t = false;
		for (size_t k = 0; !t && k < from; k++)
			t = key_cmp(held[i].v, held[i].origin, taken[k].v, taken[k].origin) == 0;
		if (t)
			continue;
		if (held[i].v > (uint32_t)s->schema + 1)
			break;
		r = decide(s, held[i].v, held[i].sql, held[i].pcol, held[i].origin, held[i].hlc);
		if (r == ZILA_ESCHEMA) {
			r = 0;
			break;
		}
	}
	if (r != 0)
		goto out;
	if (nundo > 0)
		zila_log(ZILA_LOG_WARN, "schema: another HQ device's change ranks before %zu taken here, or one was undone: "
			 "the schema is made again in order (version %lld now), and the rows from the entries", nundo,
			 (long long)s->schema);
	/* the tables' rows from the entries, held ones tried again */
	r = store_exec(s, "DELETE FROM zila_meta WHERE k = 'held_schema'", NULL);
	r = r ? r : store_reapply(s, st);
	for (int i = 0; r == 0 && i < s->ntables; i++)
		s->tables[i]->hw_clean = true;
out:
	sents_free(held, nheld);
	sents_free(taken, ntaken);
	return r;
}

void store_schema_load_blocked(struct zila_store *s)
{
	char *v = NULL;
	s->schema_blocked[0] = '\0';
	if (zila_store_meta_get(s, "schema_blocked", &v) == 0 && v != NULL)
		snprintf(s->schema_blocked, sizeof(s->schema_blocked), "%s", v);
	free(v);
}

int store_schema_save_blocked(struct zila_store *s)
{
	char *v = NULL;
	int r = zila_store_meta_get(s, "schema_blocked", &v);
	bool same = r == 0 ? strcmp(v, s->schema_blocked) == 0 : s->schema_blocked[0] == '\0';
	free(v);
	if (r != 0 && r != ZILA_ENOTFOUND)
		return r;
	if (same)
		return 0;
	if (s->schema_blocked[0] == '\0')
		return store_exec(s, "DELETE FROM zila_meta WHERE k = 'schema_blocked'", NULL);
	return zila_store_meta_set(s, "schema_blocked", s->schema_blocked);
}

/* --- reading ---------------------------------------------------------------------- */

int zila_schema_each(struct zila_store *s, zila_schema_fn fn, void *ctx)
{
	sqlite3_stmt *st = NULL;
	int r = ZILA_EDB;
	if (sqlite3_prepare_v2(s->db, "SELECT version, sql, pcol, origin, hlc, state, why FROM zila_schema"
				      " ORDER BY version, origin", -1, &st, NULL) != SQLITE_OK)
		goto out;
	r = 0;
	while (r == 0 && sqlite3_step(st) == SQLITE_ROW) {
		const uint8_t *o = sqlite3_column_bytes(st, 3) == 32 ? sqlite3_column_blob(st, 3) : NULL;
		r = fn(ctx, (uint32_t)sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
		       (const char *)sqlite3_column_text(st, 2), o, (uint64_t)sqlite3_column_int64(st, 4),
		       sqlite3_column_int(st, 5), (const char *)sqlite3_column_text(st, 6));
	}
out:
	sqlite3_finalize(st);
	return r;
}

int zila_schema_table_sql(struct zila_store *s, const char *table, char **table_sql, char **index_sql,
			  struct zila_error *err)
{
	sqlite3_stmt *st = NULL;
	struct zila_buf idx;
	int r = ZILA_ENOTFOUND;
	*table_sql = *index_sql = NULL;
	zila_buf_init(&idx, ZILA_SCHEMA_SQL_MAX * 16);
	if (sqlite3_prepare_v2(s->db, "SELECT type, sql FROM sqlite_schema WHERE tbl_name = ? COLLATE NOCASE AND sql IS NOT "
				      "NULL AND type IN ('table', 'index') ORDER BY type = 'index', rowid", -1, &st, NULL) !=
	    SQLITE_OK) {
		r = store_db_error(s, err, "cannot read the schema");
		goto out;
	}
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *type = (const char *)sqlite3_column_text(st, 0), *sql = (const char *)sqlite3_column_text(st, 1);
		if (strcmp(type, "table") == 0) {
			free(*table_sql);
			*table_sql = strdup(sql);
			r = *table_sql ? 0 : ZILA_ENOMEM;
		} else if ((idx.len && zila_buf_put(&idx, ";\n", 2) != 0) || zila_buf_put(&idx, sql, strlen(sql)) != 0) {
			r = ZILA_ENOMEM;
			break;
		}
	}
	if (r == 0 && (zila_buf_put_u8(&idx, 0) != 0 || (*index_sql = strdup((const char *)idx.p)) == NULL))
		r = ZILA_ENOMEM;
	if (r == ZILA_ENOTFOUND)
		zila_error_set(err, r, "no table '%s' in the replica", table);
	else if (r == ZILA_ENOMEM)
		zila_error_set(err, r, "out of memory");
out:
	if (r != 0) {
		free(*table_sql);
		*table_sql = NULL;
	}
	sqlite3_finalize(st);
	zila_buf_release(&idx);
	return r;
}

int zila_schema_local_each(struct zila_store *s, zila_local_fn fn, void *ctx)
{
	sqlite3_stmt *st = NULL;
	int r = ZILA_EDB;
	if (sqlite3_prepare_v2(s->db, "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'zila\\_%' "
				      "ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name", -1, &st, NULL) !=
	    SQLITE_OK)
		goto out;
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		if (tracked(s, name) == NULL)
			fn(ctx, name);
	}
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(s->db, "SELECT name FROM pragma_table_info(?)", -1, &st, NULL) != SQLITE_OK)
		goto out;
	for (int i = 0; i < s->ntables; i++) {
		struct table *t = s->tables[i];
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
		while (sqlite3_step(st) == SQLITE_ROW) {
			const char *c = (const char *)sqlite3_column_text(st, 0);
			bool synced = false;
			for (int k = 0; !synced && k < t->ncols; k++)
				synced = strcasecmp(t->cols[k], c) == 0;
			if (!synced) {
				char both[600];
				snprintf(both, sizeof(both), "%s.%s", t->name, c);
				fn(ctx, both);
			}
		}
	}
	r = 0;
out:
	sqlite3_finalize(st);
	return r;
}

struct notice_ctx {
	zila_notice_fn fn;
	void *ctx;
	char tables[600], cols[600];
	int ntables, ncols;
};

static void note_local(void *ctx, const char *name)
{
	struct notice_ctx *c = ctx;
	bool col = strchr(name, '.') != NULL;
	char *list = col ? c->cols : c->tables;
	int *n = col ? &c->ncols : &c->ntables;
	size_t len = strlen(list);
	if (*n < 6 && len + strlen(name) + 4 < sizeof(c->tables))
		snprintf(list + len, sizeof(c->tables) - len, "%s'%s'", len ? ", " : "", name);
	(*n)++;
}

int store_schema_notices(struct zila_store *s, zila_notice_fn fn, void *ctx)
{
	char msg[1024];
	struct notice_ctx c = { .fn = fn, .ctx = ctx };
	if (s->schema_blocked[0] != '\0')
		fn(ctx, s->schema_blocked);
	/* changes of two HQ devices that met: the one that lost, and why */
	sqlite3_stmt *q = NULL;
	if (sqlite3_prepare_v2(s->db, "SELECT version, origin, why FROM zila_schema WHERE state = 2 ORDER BY version, origin",
			       -1, &q, NULL) != SQLITE_OK)
		return ZILA_EDB;
	while (sqlite3_step(q) == SQLITE_ROW) {
		char dev[17] = "?";
		if (sqlite3_column_bytes(q, 1) == 32)
			short_key(dev, sqlite3_column_blob(q, 1));
		snprintf(msg, sizeof(msg), "HQ's schema version %lld by HQ device %s was not applied: %s (two HQ devices "
			 "changed the schema at once; every replica keeps the same one)", (long long)sqlite3_column_int64(q, 0),
			 dev, (const char *)sqlite3_column_text(q, 2));
		fn(ctx, msg);
	}
	sqlite3_finalize(q);
	int r = zila_schema_local_each(s, note_local, &c);
	if (r != 0)
		return r;
	if (c.ntables > 0) {
		snprintf(msg, sizeof(msg),
			 "%d table%s of this replica %s local: %s%s; not synced (HQ makes a table for every laptop "
			 "with 'zila schema add-table' or 'zila schema track')",
			 c.ntables, c.ntables == 1 ? "" : "s", c.ntables == 1 ? "is" : "are", c.tables,
			 c.ntables > 6 ? ", ..." : "");
		fn(ctx, msg);
	}
	if (c.ncols > 0) {
		snprintf(msg, sizeof(msg),
			 "%d column%s of synced tables %s local to this replica: %s%s; not synced (HQ adds a column for "
			 "every laptop with 'zila schema add-column')",
			 c.ncols, c.ncols == 1 ? "" : "s", c.ncols == 1 ? "is" : "are", c.cols, c.ncols > 6 ? ", ..." : "");
		fn(ctx, msg);
	}
	return 0;
}
