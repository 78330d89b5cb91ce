/* The PostgreSQL mirror of HQ's replica (zila/office/pgmirror.h): which rows to copy comes
 * from the entries stored after a mark (a store call), what to copy from a plain read
 * connection to the user tables; libpq's blocking API on a thread of the mirror's own. */
#include "zila/office/pgmirror.h"

#include <ctype.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "office_int.h"
#include "zila/buf.h"
#include "zila/review.h"
#include "zila/store.h"

#define SCHEMA "\"" ZILA_PGMIRROR_SCHEMA "\""
#define BATCH_ENTRIES 2000 /* entries walked per PostgreSQL transaction */
#define STATE_TABLE SCHEMA ".zila_mirror_state"
#define PARKED_TABLE SCHEMA ".zila_parked_rows"

struct col {
	char *name, *decl;
	const char *pgtype;
	bool pk;
};

struct table {
	char *name;
	struct col *cols;
	int ncols, pk; /* pk: index of the key column, -1: none (not mirrored) */
	bool missing;  /* tracked but not (yet) in the replica's file */
};

/* A row to copy again: its table (index into tables) and key. */
struct key {
	int t;
	int type;
	int64_t i;
	double d;
	char *s; /* text or blob bytes */
	size_t len;
};

struct keyset {
	struct key *k;
	size_t n, cap;
	bool oom;
};

struct zila_pgmirror {
	char *dir, *conninfo;
	struct zila_store *store;
	sqlite3 *db;
	PGconn *pg;
	PGcancel *cancel; /* under mu: how zila_pgmirror_free interrupts a long statement */
	char replica[65]; /* the device key in hex: which replica the mark belongs to */
	struct table *tables;
	int ntables;

	pthread_t thread;
	bool running, stop, kicked;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct zila_pgmirror_state st; /* under mu */
};

/* --- small helpers ------------------------------------------------------------------ */

static void tables_free(struct zila_pgmirror *m)
{
	for (int i = 0; i < m->ntables; i++) {
		for (int c = 0; c < m->tables[i].ncols; c++) {
			free(m->tables[i].cols[c].name);
			free(m->tables[i].cols[c].decl);
		}
		free(m->tables[i].cols);
		free(m->tables[i].name);
	}
	free(m->tables);
	m->tables = NULL;
	m->ntables = 0;
}

/* SQLite's affinity rules (datatype3.html, 3.1) picking the PostgreSQL type. */
static const char *pg_type(const char *decl)
{
	char u[128];
	size_t i;
	for (i = 0; decl[i] != '\0' && i + 1 < sizeof(u); i++)
		u[i] = (char)toupper((unsigned char)decl[i]);
	u[i] = '\0';
	if (strstr(u, "INT"))
		return "bigint";
	if (strstr(u, "CHAR") || strstr(u, "CLOB") || strstr(u, "TEXT"))
		return "text";
	if (strstr(u, "BLOB"))
		return "bytea";
	if (u[0] == '\0')
		return "text"; /* no type holds any value: its text shows them all */
	if (strstr(u, "REAL") || strstr(u, "FLOA") || strstr(u, "DOUB"))
		return "double precision";
	return "numeric";
}

/* The first line of libpq's message, without its "ERROR:  " prefix. */
static const char *pg_msg(PGconn *pg, char *buf, size_t n)
{
	const char *e = pg ? PQerrorMessage(pg) : "out of memory";
	if (strncmp(e, "ERROR:  ", 8) == 0)
		e += 8;
	snprintf(buf, n, "%s", e);
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

static int fail(struct zila_error *err, int code, const char *fmt, ...) ZILA_PRINTF(3, 4);
static int fail(struct zila_error *err, int code, const char *fmt, ...)
{
	va_list ap;
	char msg[sizeof(err->msg)];
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return zila_error_set(err, code, "%s", msg);
}

static int pg_cmd(struct zila_pgmirror *m, const char *sql, struct zila_error *err)
{
	char b[300];
	PGresult *res = PQexec(m->pg, sql);
	ExecStatusType s = PQresultStatus(res);
	int r = 0;
	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
		r = fail(err, ZILA_EIO, "PostgreSQL refused the mirror's statement: %s", pg_msg(m->pg, b, sizeof(b)));
	PQclear(res);
	return r;
}

/* An identifier quoted for PostgreSQL; malloc'd (PQfreemem is free here, but use PQfreemem). */
static char *pg_ident(struct zila_pgmirror *m, const char *name)
{
	return PQescapeIdentifier(m->pg, name, strlen(name));
}

static void sb_ident(struct zila_pgmirror *m, struct office_sb *b, const char *name)
{
	char *q = pg_ident(m, name);
	if (q == NULL) {
		b->oom = true;
		return;
	}
	office_sb_str(b, q);
	PQfreemem(q);
}

static void sb_table(struct zila_pgmirror *m, struct office_sb *b, const char *name)
{
	office_sb_str(b, SCHEMA ".");
	sb_ident(m, b, name);
}

/* --- the connection string ---------------------------------------------------------- */

int zila_pgmirror_check_conninfo(const char *conninfo, struct zila_error *err)
{
	char *msg = NULL;
	int r = 0;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &msg);
	if (opts == NULL) {
		if (msg != NULL)
			msg[strcspn(msg, "\n")] = '\0';
		r = zila_error_set(err, ZILA_EINVAL, "the PostgreSQL connection string does not parse: %s",
				   msg ? msg : "out of memory");
		goto out;
	}
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val != NULL && o->val[0] != '\0')
			r = zila_error_set(err, ZILA_EINVAL,
					   "the PostgreSQL connection string holds a password; put it in a password "
					   "file (~/.pgpass or PGPASSFILE) or a service file (PGSERVICEFILE) instead, "
					   "so it never shows in a command line, the settings or a log");
out:
	PQconninfoFree(opts);
	PQfreemem(msg);
	return r;
}

/* --- state shared with status ------------------------------------------------------- */

void zila_pgmirror_get_state(struct zila_pgmirror *m, struct zila_pgmirror_state *out)
{
	pthread_mutex_lock(&m->mu);
	*out = m->st;
	pthread_mutex_unlock(&m->mu);
}

/* --- opening both ends -------------------------------------------------------------- */

static int open_replica(struct zila_pgmirror *m, struct zila_error *err)
{
	char path[4096];
	int r;
	if (m->store == NULL && (r = zila_store_open(&m->store, m->dir, err)) != 0)
		return r;
	if (m->db != NULL)
		return 0;
	if (snprintf(path, sizeof(path), "%s/%s", m->dir, ZILA_DB_FILE) >= (int)sizeof(path))
		return zila_error_set(err, ZILA_EINVAL, "replica directory '%s' is too long", m->dir);
	if (sqlite3_open_v2(path, &m->db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		r = zila_error_set(err, ZILA_EDB, "cannot open '%s': %s", path,
				   m->db ? sqlite3_errmsg(m->db) : "out of memory");
		sqlite3_close(m->db);
		m->db = NULL;
		return r;
	}
	sqlite3_busy_timeout(m->db, 10000);
	const uint8_t *pk = zila_store_device_pk(m->store);
	zila_hex_encode(m->replica, pk, 32);
	return 0;
}

static void close_pg(struct zila_pgmirror *m)
{
	pthread_mutex_lock(&m->mu);
	PQfreeCancel(m->cancel);
	m->cancel = NULL;
	m->st.connected = false;
	pthread_mutex_unlock(&m->mu);
	PQfinish(m->pg);
	m->pg = NULL;
}

static bool stopping(struct zila_pgmirror *m)
{
	pthread_mutex_lock(&m->mu);
	bool stop = m->stop;
	pthread_mutex_unlock(&m->mu);
	return stop;
}

static const char state_sql[] =
	"CREATE SCHEMA IF NOT EXISTS " SCHEMA ";"
	"CREATE TABLE IF NOT EXISTS " STATE_TABLE "(replica text PRIMARY KEY, mark bigint NOT NULL,"
	" held_from bigint NOT NULL, schema_sig text NOT NULL, at timestamptz NOT NULL DEFAULT now());"
	"CREATE TABLE IF NOT EXISTS " PARKED_TABLE "(tbl text NOT NULL, pk text NOT NULL, pk_type text NOT NULL,"
	" kind text NOT NULL, row_data jsonb NOT NULL, PRIMARY KEY(tbl, pk));";

static int connect_pg(struct zila_pgmirror *m, struct zila_error *err)
{
	char b[300];
	if (m->pg != NULL && PQstatus(m->pg) == CONNECTION_OK)
		return 0;
	if (m->pg != NULL)
		close_pg(m);
	/* A connect_timeout of its own unless the string gives one (later values win): a host
	 * that does not answer must not hold the thread, nor the daemon's stop, for minutes. */
	static const char *const keys[] = { "connect_timeout", "dbname", NULL };
	const char *vals[] = { "10", m->conninfo, NULL };
	m->pg = PQconnectdbParams(keys, vals, 1);
	if (m->pg == NULL || PQstatus(m->pg) != CONNECTION_OK) {
		int r = fail(err, ZILA_EIO, "cannot reach PostgreSQL (%s): %s", m->st.target,
			     pg_msg(m->pg, b, sizeof(b)));
		close_pg(m);
		return r;
	}
	pthread_mutex_lock(&m->mu);
	snprintf(m->st.target, sizeof(m->st.target), "%s on %s:%s", PQdb(m->pg),
		 PQhost(m->pg) ? PQhost(m->pg) : "", PQport(m->pg) ? PQport(m->pg) : "");
	m->st.connected = true;
	m->cancel = PQgetCancel(m->pg);
	pthread_mutex_unlock(&m->mu);
	PQclear(PQexec(m->pg, "SET client_min_messages = warning"));
	int r = PQsetClientEncoding(m->pg, "UTF8") != 0
			? fail(err, ZILA_EIO, "PostgreSQL would not take UTF-8: %s", pg_msg(m->pg, b, sizeof(b)))
			: pg_cmd(m, state_sql, err);
	if (r != 0)
		close_pg(m);
	return r;
}

/* --- the replica's tables ----------------------------------------------------------- */

static int add_table(void *ctx, const char *name, const char *pcol)
{
	struct zila_pgmirror *m = ctx;
	(void)pcol;
	struct table *t = realloc(m->tables, (size_t)(m->ntables + 1) * sizeof(*t));
	if (t == NULL)
		return ZILA_ENOMEM;
	m->tables = t;
	t = &m->tables[m->ntables];
	memset(t, 0, sizeof(*t));
	t->pk = -1;
	if ((t->name = strdup(name)) == NULL)
		return ZILA_ENOMEM;
	m->ntables++;
	return 0;
}

static int read_columns(struct zila_pgmirror *m, struct table *t)
{
	sqlite3_stmt *st = NULL;
	int r = 0, rc;
	if (sqlite3_prepare_v2(m->db, "SELECT name, type, pk FROM pragma_table_info(?)", -1, &st, NULL) != SQLITE_OK)
		return ZILA_EDB;
	sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct col *c = realloc(t->cols, (size_t)(t->ncols + 1) * sizeof(*c));
		if (c == NULL) {
			r = ZILA_ENOMEM;
			break;
		}
		t->cols = c;
		c = &t->cols[t->ncols];
		c->name = strdup((const char *)sqlite3_column_text(st, 0));
		c->decl = strdup(sqlite3_column_text(st, 1) ? (const char *)sqlite3_column_text(st, 1) : "");
		c->pk = sqlite3_column_int(st, 2) != 0;
		if (c->name == NULL || c->decl == NULL) {
			free(c->name);
			free(c->decl);
			r = ZILA_ENOMEM;
			break;
		}
		c->pgtype = pg_type(c->decl);
		if (c->pk)
			t->pk = t->pk == -1 ? t->ncols : -2; /* -2: a key of several columns */
		t->ncols++;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = ZILA_EDB;
	sqlite3_finalize(st);
	t->missing = t->ncols == 0;
	if (t->pk < 0)
		t->pk = -1;
	return r;
}

/* The tracked tables with their columns, and a signature of their definitions and indexes
 * (a schema change shows as a new signature). */
static int load_tables(struct zila_pgmirror *m, char sig[17], struct zila_error *err)
{
	tables_free(m);
	int r = zila_store_table_each(m->store, add_table, m);
	uint64_t h = 1469598103934665603ull;
	for (int i = 0; r == 0 && i < m->ntables; i++) {
		r = read_columns(m, &m->tables[i]);
		sqlite3_stmt *st = NULL;
		if (r == 0 && sqlite3_prepare_v2(m->db, "SELECT coalesce(sql, '') FROM sqlite_master WHERE tbl_name = ?"
						 " ORDER BY type DESC, name", -1, &st, NULL) != SQLITE_OK)
			r = ZILA_EDB;
		if (r == 0) {
			sqlite3_bind_text(st, 1, m->tables[i].name, -1, SQLITE_STATIC);
			while (sqlite3_step(st) == SQLITE_ROW)
				for (const unsigned char *p = sqlite3_column_text(st, 0); p && *p; p++)
					h = (h ^ *p) * 1099511628211ull;
			h = (h ^ 0xff) * 1099511628211ull;
		}
		sqlite3_finalize(st);
	}
	snprintf(sig, 17, "%016llx", (unsigned long long)h);
	if (r != 0)
		return zila_error_set(err, r, "cannot read the replica's tables: %s",
				      m->db ? sqlite3_errmsg(m->db) : zila_strerror(r));
	return 0;
}

/* --- values as PostgreSQL's text ---------------------------------------------------- */

/* The text form of column i of a SQLite row, in b (NULL: SQL NULL). COPY escapes when copy. */
static const char *value_text(sqlite3_stmt *st, int i, struct office_sb *b, bool copy)
{
	b->len = 0;
	switch (sqlite3_column_type(st, i)) {
	case SQLITE_NULL:
		return NULL;
	case SQLITE_INTEGER:
		office_sb_fmt(b, "%lld", (long long)sqlite3_column_int64(st, i));
		break;
	case SQLITE_FLOAT:
		office_sb_fmt(b, "%.17g", sqlite3_column_double(st, i));
		break;
	case SQLITE_BLOB: {
		const unsigned char *p = sqlite3_column_blob(st, i);
		int n = sqlite3_column_bytes(st, i);
		office_sb_str(b, copy ? "\\\\x" : "\\x");
		for (int k = 0; k < n; k++)
			office_sb_fmt(b, "%02x", p[k]);
		break;
	}
	default: {
		const char *p = (const char *)sqlite3_column_text(st, i);
		int n = sqlite3_column_bytes(st, i);
		if (!copy) {
			office_sb_add(b, p, (size_t)n);
			break;
		}
		for (int k = 0; k < n; k++) {
			switch (p[k]) {
			case '\\': office_sb_str(b, "\\\\"); break;
			case '\n': office_sb_str(b, "\\n"); break;
			case '\r': office_sb_str(b, "\\r"); break;
			case '\t': office_sb_str(b, "\\t"); break;
			default: office_sb_add(b, p + k, 1);
			}
		}
	}
	}
	office_sb_add(b, "", 0);
	if (b->p == NULL) {
		b->oom = true;
		return NULL;
	}
	b->p[b->len] = '\0';
	return b->p;
}

/* --- making the tables -------------------------------------------------------------- */

static int create_table(struct zila_pgmirror *m, const struct table *t, bool drop, struct zila_error *err)
{
	struct office_sb b = { 0 };
	if (drop) {
		office_sb_str(&b, "DROP TABLE IF EXISTS ");
		sb_table(m, &b, t->name);
		office_sb_str(&b, " CASCADE;");
	}
	office_sb_str(&b, "CREATE TABLE IF NOT EXISTS ");
	sb_table(m, &b, t->name);
	office_sb_str(&b, "(");
	for (int c = 0; c < t->ncols; c++) {
		office_sb_str(&b, c ? ", " : "");
		sb_ident(m, &b, t->cols[c].name);
		office_sb_fmt(&b, " %s%s", t->cols[c].pgtype, c == t->pk ? " PRIMARY KEY" : "");
	}
	office_sb_str(&b, ");");
	/* Columns added since: the table is then copied again (reload), so no default is needed. */
	for (int c = 0; c < t->ncols; c++) {
		office_sb_str(&b, "ALTER TABLE ");
		sb_table(m, &b, t->name);
		office_sb_str(&b, " ADD COLUMN IF NOT EXISTS ");
		sb_ident(m, &b, t->cols[c].name);
		office_sb_fmt(&b, " %s;", t->cols[c].pgtype);
	}
	int r = b.oom ? ZILA_ENOMEM : pg_cmd(m, b.p, err);
	free(b.p);
	return r;
}

/* The replica's indexes on t, made at PostgreSQL without UNIQUE: the mirror copies rows one
 * by one, and a slot passes from one row to another within a transaction. */
static int create_indexes(struct zila_pgmirror *m, const struct table *t, struct zila_error *err)
{
	sqlite3_stmt *st = NULL, *ci = NULL;
	struct office_sb b = { 0 };
	int r = 0;
	if (sqlite3_prepare_v2(m->db, "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?"
				      " AND sql IS NOT NULL ORDER BY name", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(m->db, "SELECT name FROM pragma_index_info(?) ORDER BY seqno", -1, &ci, NULL) != SQLITE_OK) {
		r = ZILA_EDB;
		goto out;
	}
	sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *iname = (const char *)sqlite3_column_text(st, 0);
		int n = 0;
		b.len = 0;
		office_sb_str(&b, "CREATE INDEX IF NOT EXISTS ");
		sb_ident(m, &b, iname);
		office_sb_str(&b, " ON ");
		sb_table(m, &b, t->name);
		office_sb_str(&b, "(");
		sqlite3_reset(ci);
		sqlite3_bind_text(ci, 1, iname, -1, SQLITE_TRANSIENT);
		while (sqlite3_step(ci) == SQLITE_ROW && sqlite3_column_text(ci, 0) != NULL) {
			office_sb_str(&b, n++ ? ", " : "");
			sb_ident(m, &b, (const char *)sqlite3_column_text(ci, 0));
		}
		office_sb_str(&b, ")");
		if (n == 0)
			continue; /* an index on expressions: not mirrored */
		if (b.oom) {
			r = ZILA_ENOMEM;
			break;
		}
		if ((r = pg_cmd(m, b.p, err)) != 0)
			break;
	}
out:
	sqlite3_finalize(st);
	sqlite3_finalize(ci);
	free(b.p);
	return r;
}

/* Every row of t by COPY (the table is empty at PostgreSQL, or emptied first). */
static int copy_table(struct zila_pgmirror *m, const struct table *t, bool empty_first, int64_t *nrows,
		      struct zila_error *err)
{
	struct office_sb q = { 0 }, line = { 0 }, v = { 0 };
	sqlite3_stmt *st = NULL;
	PGresult *res = NULL;
	char b[300];
	int r = 0;
	if (empty_first) {
		office_sb_str(&q, "DELETE FROM ");
		sb_table(m, &q, t->name);
		if (q.oom || (r = pg_cmd(m, q.p, err)) != 0)
			goto out;
		q.len = 0;
	}
	office_sb_str(&q, "COPY ");
	sb_table(m, &q, t->name);
	office_sb_str(&q, " FROM STDIN");
	office_sb_add(&q, "", 1);
	struct office_sb s = { 0 };
	office_sb_str(&s, "SELECT ");
	for (int c = 0; c < t->ncols; c++) {
		office_sb_str(&s, c ? ", " : "");
		office_sb_ident(&s, t->cols[c].name);
	}
	office_sb_str(&s, " FROM ");
	office_sb_ident(&s, t->name);
	r = office_prepare(m->db, &s, &st, err);
	free(s.p);
	if (r != 0 || q.oom) {
		r = r ? r : ZILA_ENOMEM;
		goto out;
	}
	res = PQexec(m->pg, q.p);
	if (PQresultStatus(res) != PGRES_COPY_IN) {
		r = fail(err, ZILA_EIO, "PostgreSQL would not take the rows of '%s': %s", t->name,
			 pg_msg(m->pg, b, sizeof(b)));
		goto out;
	}
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		line.len = 0;
		for (int c = 0; c < t->ncols; c++) {
			const char *x = value_text(st, c, &v, true);
			office_sb_str(&line, c ? "\t" : "");
			office_sb_str(&line, x ? x : "\\N");
		}
		office_sb_str(&line, "\n");
		if (line.oom || v.oom) {
			r = ZILA_ENOMEM;
			break;
		}
		if (PQputCopyData(m->pg, line.p, (int)line.len) != 1) {
			r = fail(err, ZILA_EIO, "lost PostgreSQL while copying '%s': %s", t->name, pg_msg(m->pg, b, sizeof(b)));
			break;
		}
		(*nrows)++;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = zila_error_set(err, ZILA_EDB, "cannot read the rows of '%s': %s", t->name, sqlite3_errmsg(m->db));
	if (PQputCopyEnd(m->pg, r ? "the replica could not be read" : NULL) != 1 && r == 0)
		r = fail(err, ZILA_EIO, "lost PostgreSQL while copying '%s': %s", t->name, pg_msg(m->pg, b, sizeof(b)));
	PQclear(res);
	while ((res = PQgetResult(m->pg)) != NULL) {
		if (PQresultStatus(res) != PGRES_COMMAND_OK && r == 0)
			r = fail(err, ZILA_EIO, "PostgreSQL refused the rows of '%s': %s", t->name,
				 pg_msg(m->pg, b, sizeof(b)));
		PQclear(res);
	}
out:
	sqlite3_finalize(st);
	free(q.p);
	free(line.p);
	free(v.p);
	return r;
}

/* --- readable views ---------------------------------------------------------------- */

static int table_index(struct zila_pgmirror *m, const char *name);

static const struct col *find_col(const struct table *t, const char *name)
{
	for (int c = 0; c < t->ncols; c++)
		if (strcmp(t->cols[c].name, name) == 0)
			return &t->cols[c];
	return NULL;
}

/* zila."T_named" for each table T with a foreign key to a table that has a name column:
 * T's columns, then each such key's parent name as "COLUMN_name" (LEFT JOIN, so a row whose
 * parent is missing is still shown). Made again after a schema change (T.* is fixed when a
 * view is made). */
static int create_views(struct zila_pgmirror *m, struct zila_error *err)
{
	sqlite3_stmt *fk = NULL;
	struct office_sb b = { 0 }, joins = { 0 };
	char vname[300], alias[32], cname[300];
	int r = 0;
	if (sqlite3_prepare_v2(m->db, "SELECT \"table\", \"from\", coalesce(\"to\", '') FROM pragma_foreign_key_list(?)"
				      " ORDER BY id, seq", -1, &fk, NULL) != SQLITE_OK)
		return zila_error_set(err, ZILA_EDB, "cannot read the replica's foreign keys: %s", sqlite3_errmsg(m->db));
	for (int i = 0; r == 0 && i < m->ntables; i++) {
		const struct table *t = &m->tables[i];
		int n = 0;
		if (t->missing || t->pk < 0)
			continue;
		b.len = joins.len = 0;
		snprintf(vname, sizeof(vname), "%s_named", t->name);
		office_sb_str(&b, "DROP VIEW IF EXISTS ");
		sb_table(m, &b, vname);
		office_sb_str(&b, "; CREATE VIEW ");
		sb_table(m, &b, vname);
		office_sb_str(&b, " AS SELECT t.*");
		sqlite3_reset(fk);
		sqlite3_bind_text(fk, 1, t->name, -1, SQLITE_STATIC);
		while (sqlite3_step(fk) == SQLITE_ROW) {
			const char *ptab = (const char *)sqlite3_column_text(fk, 0), *from = (const char *)sqlite3_column_text(fk, 1);
			const char *to = (const char *)sqlite3_column_text(fk, 2);
			int p = table_index(m, ptab);
			if (p < 0 || m->tables[p].missing || m->tables[p].pk < 0 || find_col(&m->tables[p], "name") == NULL)
				continue;
			if (to[0] == '\0')
				to = m->tables[p].cols[m->tables[p].pk].name;
			snprintf(cname, sizeof(cname), "%s_name", from);
			if (find_col(t, cname) != NULL || find_col(&m->tables[p], to) == NULL)
				continue;
			snprintf(alias, sizeof(alias), "p%d", ++n);
			office_sb_fmt(&b, ", %s.\"name\" AS ", alias);
			sb_ident(m, &b, cname);
			office_sb_str(&joins, " LEFT JOIN ");
			sb_table(m, &joins, m->tables[p].name);
			office_sb_fmt(&joins, " %s ON %s.", alias, alias);
			sb_ident(m, &joins, to);
			office_sb_str(&joins, " = t.");
			sb_ident(m, &joins, from);
		}
		if (n == 0)
			continue;
		office_sb_str(&b, " FROM ");
		sb_table(m, &b, t->name);
		office_sb_str(&b, " t");
		office_sb_add(&b, joins.p, joins.len);
		if (b.oom || joins.oom)
			r = ZILA_ENOMEM;
		else
			r = pg_cmd(m, b.p, err);
	}
	sqlite3_finalize(fk);
	free(b.p);
	free(joins.p);
	return r;
}

/* --- parked rows -------------------------------------------------------------------- */

struct parked_walk {
	struct zila_pgmirror *m;
	struct keyset *now;
	json_t *rows; /* [table, key text, key type, kind, {row}] */
	int r;
};

static json_t *value_json(const struct zila_value *v)
{
	char *hex;
	json_t *j;
	switch (v->type) {
	case ZILA_VAL_INT:
		return json_integer((json_int_t)v->i);
	case ZILA_VAL_REAL:
		return json_real(v->d);
	case ZILA_VAL_TEXT:
		if ((j = json_stringn((const char *)v->p, v->len)) != NULL)
			return j;
		/* not UTF-8: shown as bytes */
		__attribute__((fallthrough));
	case ZILA_VAL_BLOB:
		if ((hex = malloc(v->len * 2 + 3)) == NULL)
			return NULL;
		memcpy(hex, "\\x", 2);
		zila_hex_encode(hex + 2, v->p, v->len);
		j = json_string(hex);
		free(hex);
		return j;
	default:
		return json_null();
	}
}

static int parked_values(void *ctx, size_t ncols, const char *const *cols, const struct zila_value *vals)
{
	json_t *o = ctx;
	for (size_t i = 0; i < ncols; i++)
		if (json_object_set_new(o, cols[i], value_json(&vals[i])) != 0)
			return ZILA_ENOMEM;
	return 0;
}

static int table_index(struct zila_pgmirror *m, const char *name)
{
	for (int i = 0; i < m->ntables; i++)
		if (strcmp(m->tables[i].name, name) == 0)
			return i;
	return -1;
}

static int key_add(struct keyset *ks, int t, const struct zila_value *v)
{
	if (ks->n == ks->cap) {
		size_t cap = ks->cap ? ks->cap * 2 : 256;
		struct key *k = realloc(ks->k, cap * sizeof(*k));
		if (k == NULL)
			return ks->oom = true, ZILA_ENOMEM;
		ks->k = k;
		ks->cap = cap;
	}
	struct key *k = &ks->k[ks->n];
	memset(k, 0, sizeof(*k));
	k->t = t;
	k->type = v->type;
	k->i = v->i;
	k->d = v->d;
	if (v->type == ZILA_VAL_TEXT || v->type == ZILA_VAL_BLOB) {
		if ((k->s = malloc(v->len + 1)) == NULL)
			return ks->oom = true, ZILA_ENOMEM;
		memcpy(k->s, v->p, v->len);
		k->s[v->len] = '\0';
		k->len = v->len;
	}
	ks->n++;
	return 0;
}

static void keys_release(struct keyset *ks)
{
	for (size_t i = 0; i < ks->n; i++)
		free(ks->k[i].s);
	free(ks->k);
	memset(ks, 0, sizeof(*ks));
}

static int key_cmp(const void *a, const void *b)
{
	const struct key *x = a, *y = b;
	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	if (x->type != y->type)
		return x->type < y->type ? -1 : 1;
	if (x->type == ZILA_VAL_INT)
		return x->i < y->i ? -1 : x->i > y->i;
	if (x->type == ZILA_VAL_REAL)
		return x->d < y->d ? -1 : x->d > y->d;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = n ? memcmp(x->s, y->s, n) : 0;
	return c ? c : (x->len < y->len ? -1 : x->len > y->len);
}

static void keys_unique(struct keyset *ks)
{
	if (ks->n == 0)
		return;
	qsort(ks->k, ks->n, sizeof(*ks->k), key_cmp);
	size_t w = 1;
	for (size_t i = 1; i < ks->n; i++) {
		if (key_cmp(&ks->k[w - 1], &ks->k[i]) == 0)
			free(ks->k[i].s);
		else
			ks->k[w++] = ks->k[i];
	}
	ks->n = w;
}

static const char *kind_name(enum zila_park_kind k)
{
	return k == ZILA_PARK_DUP ? "duplicate" : k == ZILA_PARK_ORPHAN ? "orphan" : "invalid";
}

static int parked_row(void *ctx, const struct zila_park *p)
{
	struct parked_walk *w = ctx;
	struct zila_error e;
	int t = table_index(w->m, p->table);
	json_t *row = json_object(), *pkj = value_json(&p->pk);
	char *pktext = NULL;
	int r = row && pkj ? 0 : ZILA_ENOMEM;
	if (r == 0 && t >= 0)
		r = key_add(w->now, t, &p->pk);
	if (r == 0)
		r = zila_store_parked_row(w->m->store, p->table, &p->pk, parked_values, row, &e);
	if (r == 0) {
		pktext = json_is_string(pkj) ? strdup(json_string_value(pkj)) : json_dumps(pkj, JSON_ENCODE_ANY);
		json_t *one = json_pack("[s,s,s,s,O]", p->table, pktext ? pktext : "",
					p->pk.type == ZILA_VAL_INT ? "integer" : "text", kind_name(p->kind), row);
		r = one && json_array_append_new(w->rows, one) == 0 ? 0 : ZILA_ENOMEM;
	}
	free(pktext);
	json_decref(row);
	json_decref(pkj);
	return r;
}

/* The keys parked at PostgreSQL now (from the last transaction that reached it). */
static int parked_at_pg(struct zila_pgmirror *m, struct keyset *out, struct zila_error *err)
{
	char b[300];
	PGresult *res = PQexec(m->pg, "SELECT tbl, pk, pk_type FROM " PARKED_TABLE);
	int r = 0;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		r = fail(err, ZILA_EIO, "cannot read the parked rows at PostgreSQL: %s", pg_msg(m->pg, b, sizeof(b)));
		goto out;
	}
	for (int i = 0; r == 0 && i < PQntuples(res); i++) {
		int t = table_index(m, PQgetvalue(res, i, 0));
		struct zila_value v = { 0 };
		const char *pk = PQgetvalue(res, i, 1);
		if (t < 0)
			continue;
		if (strcmp(PQgetvalue(res, i, 2), "integer") == 0) {
			v.type = ZILA_VAL_INT;
			v.i = strtoll(pk, NULL, 10);
		} else {
			v.type = ZILA_VAL_TEXT;
			v.p = (const uint8_t *)pk;
			v.len = strlen(pk);
		}
		r = key_add(out, t, &v);
	}
out:
	PQclear(res);
	return r;
}

/* Replaces the parked rows at PostgreSQL with the replica's, and adds to touched every key
 * that entered or left the parked set (a row unparked by another row's delete has no change
 * of its own in the entries). */
static int sync_parked(struct zila_pgmirror *m, struct keyset *touched, struct zila_error *err)
{
	struct keyset before = { 0 }, now = { 0 };
	struct parked_walk w = { m, &now, json_array(), 0 };
	char *text = NULL, b[300];
	PGresult *res = NULL;
	int r = w.rows ? parked_at_pg(m, &before, err) : ZILA_ENOMEM;
	if (r == 0 && (r = zila_store_parked_each(m->store, ZILA_PARK_ANY, NULL, NULL, parked_row, &w)) != 0)
		zila_error_set(err, r, "cannot read the replica's parked rows: %s", zila_strerror(r));
	for (size_t i = 0; r == 0 && i < before.n; i++)
		r = key_add(touched, before.k[i].t,
			    &(struct zila_value){ .type = before.k[i].type, .i = before.k[i].i,
						  .p = (const uint8_t *)before.k[i].s, .len = before.k[i].len });
	for (size_t i = 0; r == 0 && i < now.n; i++)
		r = key_add(touched, now.k[i].t,
			    &(struct zila_value){ .type = now.k[i].type, .i = now.k[i].i, .d = now.k[i].d,
						  .p = (const uint8_t *)now.k[i].s, .len = now.k[i].len });
	if (r != 0)
		goto out;
	if ((r = pg_cmd(m, "DELETE FROM " PARKED_TABLE, err)) != 0)
		goto out;
	if ((text = json_dumps(w.rows, JSON_COMPACT)) == NULL) {
		r = ZILA_ENOMEM;
		goto out;
	}
	const char *params[1] = { text };
	res = PQexecParams(m->pg,
			   "INSERT INTO " PARKED_TABLE " SELECT x->>0, x->>1, x->>2, x->>3, x->4"
			   " FROM jsonb_array_elements($1::jsonb) AS x",
			   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		r = fail(err, ZILA_EIO, "PostgreSQL refused the parked rows: %s", pg_msg(m->pg, b, sizeof(b)));
out:
	PQclear(res);
	free(text);
	json_decref(w.rows);
	keys_release(&before);
	keys_release(&now);
	return r;
}

/* --- copying touched rows ----------------------------------------------------------- */

static int touched_change(void *ctx, const struct zila_change *c)
{
	void **a = ctx;
	struct zila_pgmirror *m = a[0];
	int t = table_index(m, c->table);
	return t < 0 ? 0 : key_add(a[1], t, &c->pk);
}

static void bind_key(sqlite3_stmt *st, const struct key *k)
{
	switch (k->type) {
	case ZILA_VAL_INT: sqlite3_bind_int64(st, 1, k->i); break;
	case ZILA_VAL_REAL: sqlite3_bind_double(st, 1, k->d); break;
	case ZILA_VAL_TEXT: sqlite3_bind_text(st, 1, k->s, (int)k->len, SQLITE_STATIC); break;
	case ZILA_VAL_BLOB: sqlite3_bind_blob(st, 1, k->s, (int)k->len, SQLITE_STATIC); break;
	default: sqlite3_bind_null(st, 1);
	}
}

/* The statements of one table: its row by key at SQLite, upsert and delete at PostgreSQL. */
struct table_sql {
	sqlite3_stmt *get;
	char *upsert, *del;
};

static int table_sql_make(struct zila_pgmirror *m, const struct table *t, struct table_sql *out,
			  struct zila_error *err)
{
	struct office_sb s = { 0 }, u = { 0 }, d = { 0 };
	memset(out, 0, sizeof(*out));
	office_sb_str(&s, "SELECT ");
	office_sb_str(&u, "INSERT INTO ");
	sb_table(m, &u, t->name);
	office_sb_str(&u, "(");
	for (int c = 0; c < t->ncols; c++) {
		office_sb_str(&s, c ? ", " : "");
		office_sb_ident(&s, t->cols[c].name);
		office_sb_str(&u, c ? ", " : "");
		sb_ident(m, &u, t->cols[c].name);
	}
	office_sb_str(&s, " FROM ");
	office_sb_ident(&s, t->name);
	office_sb_str(&s, " WHERE ");
	office_sb_ident(&s, t->cols[t->pk].name);
	office_sb_str(&s, " = ?");
	office_sb_str(&u, ") VALUES (");
	for (int c = 0; c < t->ncols; c++)
		office_sb_fmt(&u, "%s$%d::%s", c ? ", " : "", c + 1, t->cols[c].pgtype);
	office_sb_str(&u, ") ON CONFLICT (");
	sb_ident(m, &u, t->cols[t->pk].name);
	office_sb_str(&u, t->ncols > 1 ? ") DO UPDATE SET " : ") DO NOTHING");
	for (int c = 0, n = 0; c < t->ncols; c++) {
		if (c == t->pk)
			continue;
		office_sb_str(&u, n++ ? ", " : "");
		sb_ident(m, &u, t->cols[c].name);
		office_sb_str(&u, " = EXCLUDED.");
		sb_ident(m, &u, t->cols[c].name);
	}
	office_sb_str(&d, "DELETE FROM ");
	sb_table(m, &d, t->name);
	office_sb_str(&d, " WHERE ");
	sb_ident(m, &d, t->cols[t->pk].name);
	office_sb_fmt(&d, " = $1::%s", t->cols[t->pk].pgtype);
	int r = u.oom || d.oom ? ZILA_ENOMEM : office_prepare(m->db, &s, &out->get, err);
	free(s.p);
	if (r == 0) {
		out->upsert = u.p;
		out->del = d.p;
	} else {
		free(u.p);
		free(d.p);
	}
	return r;
}

static void table_sql_release(struct table_sql *q)
{
	sqlite3_finalize(q->get);
	free(q->upsert);
	free(q->del);
}

/* The key as text, for a message. */
static void key_show(const struct key *k, char *buf, size_t n)
{
	if (k->type == ZILA_VAL_INT)
		snprintf(buf, n, "%lld", (long long)k->i);
	else if (k->type == ZILA_VAL_TEXT)
		snprintf(buf, n, "%.*s", (int)(k->len > 60 ? 60 : k->len), k->s);
	else
		snprintf(buf, n, "(a key of type %d)", k->type);
}

#define PIPE_MAX 512 /* statements in flight before their results are read */

/* Ends a pipeline: a sync, then every result read; the first failure named by its row. */
static int pipe_flush(struct zila_pgmirror *m, const struct keyset *ks, const size_t *sent, size_t *nsent, int r,
		      struct zila_error *err)
{
	char b[300], kb[80];
	PGresult *res;
	if (*nsent == 0 && PQpipelineStatus(m->pg) == PQ_PIPELINE_OFF)
		return r;
	if (PQpipelineSync(m->pg) != 1 && r == 0)
		r = fail(err, ZILA_EIO, "lost PostgreSQL while copying rows: %s", pg_msg(m->pg, b, sizeof(b)));
	for (size_t j = 0; j < *nsent; j++) {
		if ((res = PQgetResult(m->pg)) == NULL)
			break; /* the connection is gone: said above or below */
		ExecStatusType st = PQresultStatus(res);
		if (st != PGRES_COMMAND_OK && st != PGRES_PIPELINE_ABORTED && r == 0) {
			const struct key *k = &ks->k[sent[j]];
			key_show(k, kb, sizeof(kb));
			snprintf(b, sizeof(b), "%s", PQresultErrorMessage(res));
			b[strcspn(b, "\n")] = '\0';
			r = fail(err, ZILA_EIO, "PostgreSQL refused row '%s' of '%s': %s", kb, m->tables[k->t].name,
				 strncmp(b, "ERROR:  ", 8) == 0 ? b + 8 : b);
		}
		PQclear(res);
		while ((res = PQgetResult(m->pg)) != NULL)
			PQclear(res);
	}
	/* the sync's own result */
	while ((res = PQgetResult(m->pg)) != NULL) {
		ExecStatusType st = PQresultStatus(res);
		PQclear(res);
		if (st == PGRES_PIPELINE_SYNC)
			break;
	}
	*nsent = 0;
	if (PQexitPipelineMode(m->pg) != 1 && r == 0)
		r = fail(err, ZILA_EIO, "lost PostgreSQL while copying rows: %s", pg_msg(m->pg, b, sizeof(b)));
	return r;
}

/* Copies the current state of every key in ks (sorted by table): the row, or its absence.
 * In libpq's pipeline mode, PIPE_MAX statements a round trip: a day's sync of a district is
 * one or two round trips, not one per row. */
static int copy_keys(struct zila_pgmirror *m, struct keyset *ks, int64_t *nrows, struct zila_error *err)
{
	struct table_sql q = { 0 };
	struct office_sb *vals = NULL;
	const char **params = NULL;
	size_t *sent = calloc(PIPE_MAX, sizeof(*sent)), nsent = 0;
	int cur = -1, r = sent ? 0 : ZILA_ENOMEM;
	char b[300];
	for (size_t i = 0; r == 0 && i < ks->n; i++) {
		const struct key *k = &ks->k[i];
		const struct table *t = &m->tables[k->t];
		if (t->pk < 0 || t->missing)
			continue;
		if (k->t != cur) {
			for (int c = 0; vals && c < m->tables[cur].ncols; c++)
				free(vals[c].p);
			free(vals);
			free(params);
			table_sql_release(&q);
			cur = k->t;
			vals = calloc((size_t)t->ncols, sizeof(*vals));
			params = calloc((size_t)t->ncols, sizeof(*params));
			if (vals == NULL || params == NULL) {
				r = ZILA_ENOMEM;
				break;
			}
			if ((r = table_sql_make(m, t, &q, err)) != 0)
				break;
		}
		if (nsent == 0 && PQenterPipelineMode(m->pg) != 1) {
			r = fail(err, ZILA_EIO, "PostgreSQL would not take a pipeline: %s", pg_msg(m->pg, b, sizeof(b)));
			break;
		}
		sqlite3_reset(q.get);
		bind_key(q.get, k);
		int rc = sqlite3_step(q.get), ok;
		if (rc == SQLITE_ROW) {
			for (int c = 0; c < t->ncols; c++)
				params[c] = value_text(q.get, c, &vals[c], false);
			for (int c = 0; c < t->ncols; c++)
				if (vals[c].oom)
					r = ZILA_ENOMEM;
			if (r != 0)
				break;
			ok = PQsendQueryParams(m->pg, q.upsert, t->ncols, NULL, params, NULL, NULL, 0);
		} else if (rc == SQLITE_DONE) {
			char kt[32];
			const char *p = k->type == ZILA_VAL_INT ? (snprintf(kt, sizeof(kt), "%lld", (long long)k->i), kt)
								: k->s;
			ok = PQsendQueryParams(m->pg, q.del, 1, NULL, &p, NULL, NULL, 0);
		} else {
			r = zila_error_set(err, ZILA_EDB, "cannot read '%s' of the replica: %s", t->name,
					   sqlite3_errmsg(m->db));
			break;
		}
		if (ok != 1) {
			r = fail(err, ZILA_EIO, "lost PostgreSQL while copying '%s': %s", t->name, pg_msg(m->pg, b, sizeof(b)));
			break;
		}
		sent[nsent++] = i;
		(*nrows)++;
		if (nsent == PIPE_MAX)
			r = pipe_flush(m, ks, sent, &nsent, r, err);
	}
	if (sent != NULL)
		r = pipe_flush(m, ks, sent, &nsent, r, err);
	for (int c = 0; vals && cur >= 0 && c < m->tables[cur].ncols; c++)
		free(vals[c].p);
	free(vals);
	free(params);
	free(sent);
	table_sql_release(&q);
	return r;
}

/* --- one step ----------------------------------------------------------------------- */

struct mark {
	bool have;
	int64_t mark, held_from;
	char sig[17];
};

static int read_mark(struct zila_pgmirror *m, struct mark *out, struct zila_error *err)
{
	char b[300];
	const char *p[1] = { m->replica };
	memset(out, 0, sizeof(*out));
	PGresult *res = PQexecParams(m->pg, "SELECT mark, held_from, schema_sig FROM " STATE_TABLE " WHERE replica = $1",
				     1, NULL, p, NULL, NULL, 0);
	int r = 0;
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		r = fail(err, ZILA_EIO, "cannot read the mirror's mark at PostgreSQL: %s", pg_msg(m->pg, b, sizeof(b)));
	else if (PQntuples(res) == 1) {
		out->have = true;
		out->mark = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		out->held_from = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
		snprintf(out->sig, sizeof(out->sig), "%s", PQgetvalue(res, 0, 2));
	}
	PQclear(res);
	return r;
}

static int write_mark(struct zila_pgmirror *m, const struct mark *k, struct zila_error *err)
{
	char mark[24], held[24], b[300];
	snprintf(mark, sizeof(mark), "%lld", (long long)k->mark);
	snprintf(held, sizeof(held), "%lld", (long long)k->held_from);
	const char *p[4] = { m->replica, mark, held, k->sig };
	PGresult *res = PQexecParams(m->pg,
				     "INSERT INTO " STATE_TABLE "(replica, mark, held_from, schema_sig) VALUES ($1, $2, $3, $4)"
				     " ON CONFLICT (replica) DO UPDATE SET mark = EXCLUDED.mark, held_from = EXCLUDED.held_from,"
				     " schema_sig = EXCLUDED.schema_sig, at = now()",
				     4, NULL, p, NULL, NULL, 0);
	int r = PQresultStatus(res) == PGRES_COMMAND_OK
			? 0
			: fail(err, ZILA_EIO, "cannot keep the mirror's mark at PostgreSQL: %s", pg_msg(m->pg, b, sizeof(b)));
	PQclear(res);
	return r;
}

/* Begins a transaction holding the replica's advisory lock, so that two mirrors of one
 * replica (the daemon's and a `zila mirror once`) take turns; returns MOVED (rolled back)
 * when the other moved the mark since k was read: the caller reads it again. */
#define MOVED 1
static int begin_locked(struct zila_pgmirror *m, const struct mark *k, struct zila_error *err)
{
	struct mark now;
	char b[300];
	const char *p[1] = { m->replica };
	int r = pg_cmd(m, "BEGIN", err);
	if (r != 0)
		return r;
	PGresult *res = PQexecParams(m->pg, "SELECT pg_advisory_xact_lock(hashtextextended($1, 20))", 1, NULL, p, NULL,
				     NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		r = fail(err, ZILA_EIO, "cannot take the mirror's lock at PostgreSQL: %s", pg_msg(m->pg, b, sizeof(b)));
	PQclear(res);
	r = r ? r : read_mark(m, &now, err);
	if (r == 0 && (now.have != k->have || (k->have && (now.mark != k->mark || now.held_from != k->held_from))))
		r = MOVED;
	if (r != 0)
		PQclear(PQexec(m->pg, "ROLLBACK"));
	return r;
}

static int noop_change(void *ctx, const struct zila_change *c)
{
	(void)ctx;
	(void)c;
	return 0;
}

/* The replica's last entry and the first held one, walking nothing. */
static int replica_top(struct zila_pgmirror *m, struct zila_change_mark *out, struct zila_error *err)
{
	int r = zila_store_changes_after(m->store, INT64_MAX - 1, 1, noop_change, NULL, out);
	return r ? zila_error_set(err, r, "cannot read the replica's entries: %s", zila_strerror(r)) : 0;
}

static void rollback(struct zila_pgmirror *m)
{
	if (m->pg != NULL && PQstatus(m->pg) == CONNECTION_OK)
		PQclear(PQexec(m->pg, "ROLLBACK"));
}

/* Everything, in one transaction at PostgreSQL and one read transaction at SQLite. */
static int full_load(struct zila_pgmirror *m, struct mark *was, const char *sig, int64_t *nrows,
		     struct zila_error *err)
{
	struct zila_change_mark top;
	struct keyset ignore = { 0 };
	int r = replica_top(m, &top, err);
	if (r != 0)
		return r;
	struct mark k = { true, top.top, top.held_from, "" };
	snprintf(k.sig, sizeof(k.sig), "%s", sig);
	if ((r = begin_locked(m, was, err)) != 0)
		return r;
	if (sqlite3_exec(m->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		rollback(m);
		return zila_error_set(err, ZILA_EDB, "cannot read the replica: %s", sqlite3_errmsg(m->db));
	}
	for (int i = 0; r == 0 && i < m->ntables; i++) {
		const struct table *t = &m->tables[i];
		if (t->missing || t->pk < 0)
			continue;
		if (stopping(m)) {
			r = zila_error_set(err, ZILA_ECLOSED, "stopped before the first copy was done");
			break;
		}
		r = create_table(m, t, true, err);
		r = r ? r : copy_table(m, t, false, nrows, err);
		r = r ? r : create_indexes(m, t, err);
	}
	r = r ? r : create_views(m, err);
	r = r ? r : sync_parked(m, &ignore, err);
	r = r ? r : write_mark(m, &k, err);
	sqlite3_exec(m->db, "COMMIT", NULL, NULL, NULL);
	r = r ? r : pg_cmd(m, "COMMIT", err);
	if (r != 0)
		rollback(m);
	else
		*was = k;
	keys_release(&ignore);
	if (r == ZILA_ENOMEM)
		zila_error_set(err, r, "out of memory");
	return r;
}

/* Follows a schema change: new tables made and copied, tables with new columns copied again,
 * new indexes made. Inside the caller's transaction. */
static int follow_schema(struct zila_pgmirror *m, int64_t *nrows, struct zila_error *err)
{
	char b[300];
	int r = 0;
	for (int i = 0; r == 0 && i < m->ntables; i++) {
		const struct table *t = &m->tables[i];
		if (t->missing || t->pk < 0)
			continue;
		const char *p[2] = { ZILA_PGMIRROR_SCHEMA, t->name };
		PGresult *res = PQexecParams(m->pg,
					     "SELECT count(*) FROM information_schema.columns WHERE table_schema = $1"
					     " AND table_name = $2", 2, NULL, p, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			r = fail(err, ZILA_EIO, "cannot read the mirror's tables: %s", pg_msg(m->pg, b, sizeof(b)));
			PQclear(res);
			break;
		}
		int had = atoi(PQgetvalue(res, 0, 0));
		PQclear(res);
		r = create_table(m, t, false, err);
		if (r == 0 && had != t->ncols)
			r = copy_table(m, t, had > 0, nrows, err);
		r = r ? r : create_indexes(m, t, err);
	}
	return r ? r : create_views(m, err);
}

/* One transaction: the rows touched by up to BATCH_ENTRIES entries after k->mark (and by
 * held entries since applied), the parked rows, the schema, the new mark. *more: entries
 * are left. */
static int step_batch(struct zila_pgmirror *m, struct mark *k, const char *sig, bool *more, int64_t *nrows,
		      struct zila_error *err)
{
	struct keyset ks = { 0 };
	struct zila_change_mark cm, top;
	void *ctx[2] = { m, &ks };
	int r = 0;
	*more = false;
	/* Entries held for a newer schema were walked before they applied: once any of them
	 * applies, everything from the first of them is walked again. */
	if (k->held_from > 0) {
		if ((r = replica_top(m, &top, err)) != 0)
			return r;
		if (top.held_from != k->held_from) {
			int64_t at = k->held_from - 1;
			while (r == 0 && at < k->mark) {
				r = zila_store_changes_after(m->store, at, BATCH_ENTRIES, touched_change, ctx, &cm);
				if (r == 0 && cm.nwalked == 0)
					break;
				at = cm.next;
			}
			if (r != 0)
				return zila_error_set(err, r, "cannot read the replica's entries: %s", zila_strerror(r));
		}
	}
	r = zila_store_changes_after(m->store, k->mark, BATCH_ENTRIES, touched_change, ctx, &cm);
	if (r != 0) {
		keys_release(&ks);
		return zila_error_set(err, r, "cannot read the replica's entries: %s", zila_strerror(r));
	}
	bool schema = strcmp(sig, k->sig) != 0;
	if (cm.nwalked == 0 && ks.n == 0 && !schema && cm.held_from == k->held_from) {
		pthread_mutex_lock(&m->mu);
		m->st.behind = cm.behind;
		pthread_mutex_unlock(&m->mu);
		keys_release(&ks);
		return 0;
	}
	if ((r = begin_locked(m, k, err)) != 0) {
		keys_release(&ks);
		return r;
	}
	if (sqlite3_exec(m->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		r = zila_error_set(err, ZILA_EDB, "cannot read the replica: %s", sqlite3_errmsg(m->db));
		goto out;
	}
	if (schema)
		r = follow_schema(m, nrows, err);
	r = r ? r : sync_parked(m, &ks, err);
	if (r == 0) {
		keys_unique(&ks);
		r = ks.oom ? ZILA_ENOMEM : copy_keys(m, &ks, nrows, err);
	}
	struct mark nk = { true, cm.next, cm.held_from, "" };
	snprintf(nk.sig, sizeof(nk.sig), "%s", sig);
	r = r ? r : write_mark(m, &nk, err);
	sqlite3_exec(m->db, "COMMIT", NULL, NULL, NULL);
	r = r ? r : pg_cmd(m, "COMMIT", err);
	if (r == 0) {
		*k = nk;
		*more = cm.behind > 0;
		pthread_mutex_lock(&m->mu);
		m->st.mark = nk.mark;
		m->st.behind = cm.behind;
		pthread_mutex_unlock(&m->mu);
	}
out:
	if (r != 0)
		rollback(m);
	if (r == ZILA_ENOMEM)
		zila_error_set(err, r, "out of memory");
	keys_release(&ks);
	return r;
}

int zila_pgmirror_step(struct zila_pgmirror *m, struct zila_error *err)
{
	struct zila_error e;
	struct mark k;
	char sig[17];
	int64_t nrows = 0;
	bool more = true;
	if (err == NULL)
		err = &e;
	zila_error_clear(err);
	int r = open_replica(m, err);
	r = r ? r : connect_pg(m, err);
	r = r ? r : load_tables(m, sig, err);
	/* MOVED: another mirror of this replica moved the mark meanwhile; start from its mark. */
	for (int tries = 0; r == 0 && tries < 10; tries++) {
		struct zila_change_mark top;
		more = true;
		r = read_mark(m, &k, err);
		r = r ? r : replica_top(m, &top, err);
		/* no mark for this replica (a new database), or one past its last entry (a replica
		 * restored from an older backup): everything again */
		if (r == 0 && (!k.have || k.mark > top.top))
			r = full_load(m, &k, sig, &nrows, err);
		while (r == 0 && more && !stopping(m))
			r = step_batch(m, &k, sig, &more, &nrows, err);
		if (r != MOVED)
			break;
		r = 0;
	}
	if (r == MOVED)
		r = zila_error_set(err, ZILA_EBUSY, "another mirror of this replica keeps moving the mark at PostgreSQL");
	pthread_mutex_lock(&m->mu);
	m->st.rows += nrows;
	if (r == 0) {
		m->st.loaded = true;
		m->st.mark = k.mark;
		m->st.last_ok = (int64_t)time(NULL);
		m->st.last_error[0] = '\0';
	} else {
		snprintf(m->st.last_error, sizeof(m->st.last_error), "%s", zila_error_msg(err, r));
	}
	pthread_mutex_unlock(&m->mu);
	/* A connection PostgreSQL closed is made again by the next step; the error says so
	 * rather than which statement met the closed connection. */
	if (r != 0 && m->pg != NULL && PQstatus(m->pg) != CONNECTION_OK) {
		char b[300];
		pg_msg(m->pg, b, sizeof(b));
		pthread_mutex_lock(&m->mu);
		snprintf(m->st.last_error, sizeof(m->st.last_error),
			 "cannot reach PostgreSQL (%.100s): the connection was lost (%.100s); it is tried again", m->st.target, b);
		pthread_mutex_unlock(&m->mu);
		zila_error_set(err, r, "%s", m->st.last_error);
		close_pg(m);
	}
	return r;
}

/* --- life cycle and the thread ------------------------------------------------------ */

int zila_pgmirror_new(struct zila_pgmirror **out, const char *dir, const char *conninfo, struct zila_error *err)
{
	*out = NULL;
	int r = zila_pgmirror_check_conninfo(conninfo, err);
	if (r != 0)
		return r;
	struct zila_pgmirror *m = calloc(1, sizeof(*m));
	if (m == NULL || (m->dir = strdup(dir)) == NULL || (m->conninfo = strdup(conninfo)) == NULL) {
		if (m)
			free(m->dir);
		free(m);
		return zila_error_set(err, ZILA_ENOMEM, "out of memory");
	}
	pthread_mutex_init(&m->mu, NULL);
	pthread_cond_init(&m->cv, NULL);
	m->st.behind = -1;
	snprintf(m->st.target, sizeof(m->st.target), "not connected yet");
	*out = m;
	return 0;
}

static void *mirror_main(void *arg)
{
	struct zila_pgmirror *m = arg;
	unsigned fails = 0;
	pthread_mutex_lock(&m->mu);
	while (!m->stop) {
		m->kicked = false;
		pthread_mutex_unlock(&m->mu);
		struct zila_error err;
		int r = zila_pgmirror_step(m, &err);
		fails = r == 0 ? 0 : fails + 1;
		unsigned wait_ms = fails == 0 ? 1000 : fails >= 3 ? 5000 : 1000u << fails;
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += wait_ms / 1000;
		until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&m->mu);
		while (!m->stop && !(m->kicked && fails == 0))
			if (pthread_cond_timedwait(&m->cv, &m->mu, &until) != 0)
				break;
	}
	pthread_mutex_unlock(&m->mu);
	return NULL;
}

int zila_pgmirror_start(struct zila_pgmirror *m)
{
	if (m->running)
		return ZILA_EINTERNAL;
	if (pthread_create(&m->thread, NULL, mirror_main, m) != 0)
		return ZILA_ENOMEM;
	m->running = true;
	return 0;
}

void zila_pgmirror_kick(struct zila_pgmirror *m)
{
	if (m == NULL)
		return;
	pthread_mutex_lock(&m->mu);
	m->kicked = true;
	pthread_cond_signal(&m->cv);
	pthread_mutex_unlock(&m->mu);
}

void zila_pgmirror_free(struct zila_pgmirror *m)
{
	if (m == NULL)
		return;
	if (m->running) {
		char b[256];
		pthread_mutex_lock(&m->mu);
		m->stop = true;
		/* A first copy of millions of rows is interrupted, not waited for: it is in one
		 * transaction, and the next start begins it again. */
		if (m->cancel != NULL)
			(void)PQcancel(m->cancel, b, (int)sizeof(b));
		pthread_cond_signal(&m->cv);
		pthread_mutex_unlock(&m->mu);
		pthread_join(m->thread, NULL);
	}
	PQfreeCancel(m->cancel);
	PQfinish(m->pg);
	sqlite3_close(m->db);
	zila_store_free(m->store);
	tables_free(m);
	pthread_mutex_destroy(&m->mu);
	pthread_cond_destroy(&m->cv);
	free(m->dir);
	free(m->conninfo);
	free(m);
}
