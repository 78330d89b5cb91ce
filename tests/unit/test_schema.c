/* Schema changes HQ distributes (#17): each refused change with its reason; a laptop that
 * gets entries for a new column and table before the schema entry holds them and takes
 * them with it, in one apply; a store open beside the one that changed the schema (the
 * daemon beside the CLI) follows at once; a laptop's own column and table stay local and
 * are told; a format-7 replica upgrades with its columns as synced. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sodium.h>
#include <sqlite3.h>
#include <cmocka.h>

#include "zila/schema.h"
#include "zila/store.h"
#include "zila/store_test.h"
#include "zila/os.h"

static char base[64];

static struct zila_store *make(const char *name)
{
	char dir[128];
	struct zila_error err;
	struct zila_store *s = NULL;
	snprintf(dir, sizeof(dir), "%s/%s", base, name);
	assert_int_equal(zila_store_create(dir, &err), 0);
	assert_int_equal(zila_store_open(&s, dir, &err), 0);
	return s;
}

static struct zila_store *reopen(struct zila_store *s)
{
	char dir[128];
	struct zila_error err;
	snprintf(dir, sizeof(dir), "%s", zila_store_dir(s));
	zila_store_free(s);
	assert_int_equal(zila_store_open(&s, dir, &err), 0);
	return s;
}

static void app(struct zila_store *s, const char *sql)
{
	struct zila_error err;
	int r = zila_store_exec_captured(s, sql, NULL, NULL, &err);
	if (r != 0)
		fprintf(stderr, "sql failed: %s: %s\n", sql, err.msg);
	assert_int_equal(r, 0);
}

static char *one(struct zila_store *s, const char *sql)
{
	sqlite3_stmt *st = NULL;
	char *v = NULL;
	assert_int_equal(sqlite3_prepare_v2(zila_store_db(s), sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
		v = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return v;
}

static void expect(struct zila_store *s, const char *sql, const char *want)
{
	char *v = one(s, sql);
	if (want == NULL ? v != NULL : v == NULL || strcmp(v, want) != 0)
		fprintf(stderr, "%s: got '%s', want '%s'\n", sql, v ? v : "NULL", want ? want : "NULL");
	assert_true(want == NULL ? v == NULL : v != NULL && strcmp(v, want) == 0);
	free(v);
}

struct list {
	uint8_t *p[64];
	size_t len[64];
	struct zila_entry_info info[64];
	size_t n;
};

static int collect(void *ctx, const struct zila_entry_info *e, struct zila_view b)
{
	struct list *l = ctx;
	assert_true(l->n < 64);
	l->p[l->n] = malloc(b.len);
	memcpy(l->p[l->n], b.p, b.len);
	l->len[l->n] = b.len;
	(void)e;
	assert_int_equal(zila_entry_verify(b, &l->info[l->n]), 0);
	l->n++;
	return 0;
}

static void list_free(struct list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->p[i]);
	l->n = 0;
}

/* Everything `to` lacks of `from`, in one apply. */
static void sync_to(struct zila_store *from, struct zila_store *to, struct zila_apply_stats *st)
{
	struct zila_vector v = { 0 };
	struct list l = { .n = 0 };
	struct zila_view views[64];
	struct zila_error err;
	assert_int_equal(zila_store_seal(from, NULL, &err), 0);
	assert_int_equal(zila_store_vector(to, &v), 0);
	assert_int_equal(zila_store_entries_since(from, &v, NULL, NULL, collect, &l), 0);
	for (size_t i = 0; i < l.n; i++)
		views[i] = zila_view_make(l.p[i], l.len[i]);
	assert_int_equal(zila_store_apply(to, views, l.n, st, &err), 0);
	zila_vector_release(&v);
	list_free(&l);
}

static void refused(struct zila_store *s, const char *sql, const char *pcol, const char *words)
{
	struct zila_error err;
	zila_error_clear(&err);
	uint32_t v0 = zila_schema_version(s);
	int r = zila_schema_change(s, sql, pcol, NULL, &err);
	if (r == 0 || strstr(err.msg, words) == NULL)
		fprintf(stderr, "%s: %d %s (wanted '%s')\n", sql, r, err.msg, words);
	assert_int_equal(r, ZILA_EINVAL);
	assert_non_null(strstr(err.msg, words));
	assert_int_equal(zila_schema_version(s), v0);
}

static void test_refused(void **state)
{
	(void)state;
	struct zila_store *hq = make("refused");
	refused(hq, "ALTER TABLE people DROP COLUMN phone", NULL, "dropping a column");
	refused(hq, "ALTER TABLE people RENAME COLUMN name TO full_name", NULL, "add the new one");
	refused(hq, "ALTER TABLE people RENAME TO members", NULL, "renaming table");
	refused(hq, "DROP TABLE events", NULL, "dropping a table");
	refused(hq, "CREATE TABLE people (id TEXT PRIMARY KEY, name INTEGER)", NULL, "changing its columns, types or key");
	refused(hq, "ALTER TABLE people ALTER COLUMN name TYPE INTEGER", NULL, "changing a column's type");
	refused(hq, "ALTER TABLE people ADD COLUMN voter_id TEXT NOT NULL", NULL, "NOT NULL needs a DEFAULT");
	refused(hq, "CREATE UNIQUE INDEX people_voter ON people(name)", NULL, "UNIQUE index");
	refused(hq, "CREATE TABLE zila_x (id TEXT PRIMARY KEY)", NULL, "belong to zila");
	refused(hq, "CREATE TABLE t1 (id INTEGER PRIMARY KEY, v TEXT)", NULL, "rowid");
	refused(hq, "CREATE TABLE t2 (v TEXT)", NULL, "no primary key");
	refused(hq, "CREATE TABLE t3 (id TEXT PRIMARY KEY, x TEXT REFERENCES nowhere(id))", NULL, "not synced");
	refused(hq, "CREATE TABLE t4 AS SELECT * FROM people", NULL, "AS SELECT");
	refused(hq, "CREATE TEMP TABLE t5 (id TEXT PRIMARY KEY)", NULL, "temporary");
	refused(hq, "CREATE VIEW v AS SELECT 1", NULL, "views and triggers");
	refused(hq, "ALTER TABLE people ADD COLUMN a TEXT; DROP TABLE events", NULL, "one statement");
	refused(hq, "DELETE FROM people", NULL, "only CREATE TABLE");
	refused(hq, "CREATE TABLE t6 (id TEXT PRIMARY KEY, d TEXT)", "nope", "no column 'nope'");
	/* nothing of a refused change stays: the names are free */
	expect(hq, "SELECT count(*) FROM sqlite_schema WHERE name IN ('t1','t2','t3','t4','t6','members')", "0");
	/* a laptop that may write only its district changes nothing of the organisation's */
	assert_int_equal(zila_store_set_write_scope(hq, "d-1"), 0);
	refused(hq, "ALTER TABLE people ADD COLUMN voter_id TEXT", NULL, "changed at HQ");
	zila_store_free(hq);
}

/* HQ adds a column and a table; the laptop gets the entries that use them before the
 * schema entries, one apply at a time, and then the schema entries: held, then taken with
 * them; restarts in between keep the held entries. */
static void test_held_then_released(void **state)
{
	(void)state;
	struct zila_store *hq = make("hq"), *lap = make("lap");
	struct zila_error err;
	struct zila_apply_stats st;
	uint32_t v = 0;
	app(hq, "INSERT INTO states(id, name) VALUES ('s1', 'Bihar');"
		"INSERT INTO districts(id, state_id, name) VALUES ('d1', 's1', 'Patna');"
		"INSERT INTO people(id, district_id, name, phone) VALUES ('p1', 'd1', 'Asha', '9876543210');"
		"INSERT INTO people(id, district_id, name, phone) VALUES ('p2', 'd1', 'Ravi', '9876543211')");
	sync_to(hq, lap, &st);
	assert_int_equal(zila_schema_change(hq, "ALTER TABLE people ADD COLUMN voter_id TEXT", NULL, &v, &err), 0);
	assert_int_equal(v, 2);
	assert_int_equal(zila_schema_change(hq, "CREATE TABLE volunteers (id TEXT PRIMARY KEY, district_id TEXT "
						"REFERENCES districts(id), person_id TEXT REFERENCES people(id), "
						"skill TEXT NOT NULL DEFAULT 'any', UNIQUE (district_id, person_id))",
					     "district_id", &v, &err), 0);
	assert_int_equal(v, 3);
	app(hq, "UPDATE people SET voter_id = 'BR/01/123' WHERE id = 'p1';"
		"INSERT INTO volunteers(id, district_id, person_id) VALUES ('v1', 'd1', 'p1')");
	struct zila_vector have = { 0 };
	struct list l = { .n = 0 };
	assert_int_equal(zila_store_seal(hq, NULL, &err), 0);
	assert_int_equal(zila_store_vector(lap, &have), 0);
	assert_int_equal(zila_store_entries_since(hq, &have, NULL, NULL, collect, &l), 0);
	zila_vector_release(&have);
	/* the schema entries are org-wide, schema 2 and 3; the rows' entries say schema 3 */
	size_t nschema = 0;
	for (size_t i = 0; i < l.n; i++)
		nschema += l.info[i].part[0] == '\0';
	assert_int_equal(nschema, 2);
	/* the district's entries first: held */
	for (size_t i = 0; i < l.n; i++) {
		if (l.info[i].part[0] == '\0')
			continue;
		assert_int_equal(l.info[i].schema, 3);
		struct zila_view one1 = zila_view_make(l.p[i], l.len[i]);
		assert_int_equal(zila_store_apply(lap, &one1, 1, &st, &err), 0);
		assert_int_equal(st.nheld, 1);
	}
	struct zila_store_counts c;
	assert_int_equal(zila_store_counts(lap, &c), 0);
	assert_int_equal(c.held, 1);
	lap = reopen(lap);
	/* the second schema entry alone waits for the first (a gap in HQ's feed) */
	struct zila_view views[64];
	size_t n = 0;
	for (size_t i = 0; i < l.n; i++)
		if (l.info[i].part[0] == '\0')
			views[n++] = zila_view_make(l.p[i], l.len[i]);
	assert_int_equal(n, 2);
	assert_int_equal(zila_store_apply(lap, &views[1], 1, &st, &err), 0);
	assert_int_equal(st.ngap, 1);
	assert_int_equal(zila_schema_version(lap), 1);
	/* then both: the schema moves to 3 and the held entry is taken, in this one apply */
	assert_int_equal(zila_store_apply(lap, views, 2, &st, &err), 0);
	assert_int_equal(zila_schema_version(lap), 3);
	assert_int_equal(st.nretried, 1);
	expect(lap, "SELECT voter_id FROM people WHERE id = 'p1'", "BR/01/123");
	expect(lap, "SELECT skill FROM volunteers WHERE id = 'v1'", "any");
	assert_int_equal(zila_store_counts(lap, &c), 0);
	assert_int_equal(c.held, 0);
	/* the laptop writes the new column and table at once (capture follows), and HQ takes it */
	app(lap, "UPDATE people SET voter_id = 'BR/01/124' WHERE id = 'p1';"
		 "INSERT INTO volunteers(id, district_id, person_id, skill) VALUES ('v2', 'd1', 'p2', 'driving')");
	sync_to(lap, hq, &st);
	assert_int_equal(st.nheld, 0);
	assert_int_equal(st.nrejected, 0);
	expect(hq, "SELECT voter_id FROM people WHERE id = 'p1'", "BR/01/124");
	expect(hq, "SELECT skill FROM volunteers WHERE id = 'v2'", "driving");
	uint8_t h1[32], h2[32];
	sync_to(hq, lap, &st);
	assert_int_equal(zila_store_hash(hq, h1, &err), 0);
	assert_int_equal(zila_store_hash(lap, h2, &err), 0);
	assert_memory_equal(h1, h2, 32);
	/* the versions, with their statements */
	expect(lap, "SELECT group_concat(version) FROM zila_schema", "2,3");
	list_free(&l);
	zila_store_free(hq);
	zila_store_free(lap);
}

/* A store open while another changes the schema (the daemon while `zila schema` runs, or
 * `zila bundle apply`): its next seal sees the new column. */
static void test_cache_follows(void **state)
{
	(void)state;
	struct zila_store *daemon = make("follow"), *cli = NULL, *other = make("other");
	struct zila_error err;
	struct zila_apply_stats st;
	assert_int_equal(zila_store_open(&cli, zila_store_dir(daemon), &err), 0);
	app(daemon, "INSERT INTO states(id, name) VALUES ('s1', 'Bihar')");
	assert_int_equal(zila_store_seal(daemon, NULL, &err), 0);
	assert_int_equal(zila_schema_change(cli, "ALTER TABLE states ADD COLUMN motto TEXT", NULL, NULL, &err), 0);
	zila_store_free(cli);
	app(daemon, "UPDATE states SET motto = 'forward' WHERE id = 's1'");
	sync_to(daemon, other, &st);
	assert_int_equal(zila_schema_version(daemon), 2);
	assert_int_equal(st.nheld, 0);
	expect(other, "SELECT motto FROM states WHERE id = 's1'", "forward");
	zila_store_free(daemon);
	zila_store_free(other);
}

struct notes {
	char all[4096];
};

static void note(void *ctx, const char *msg)
{
	struct notes *n = ctx;
	strncat(n->all, msg, sizeof(n->all) - strlen(n->all) - 2);
	strcat(n->all, "\n");
}

/* A laptop's own column and table keep working, are not synced, and are told. */
static void test_local(void **state)
{
	(void)state;
	struct zila_store *hq = make("lhq"), *lap = make("llap");
	struct zila_error err;
	struct zila_apply_stats st;
	app(lap, "ALTER TABLE people ADD COLUMN my_note TEXT; CREATE TABLE my_list (id TEXT PRIMARY KEY, v TEXT);"
		 "INSERT INTO states(id, name) VALUES ('s1', 'Bihar');"
		 "INSERT INTO districts(id, state_id, name) VALUES ('d1', 's1', 'Patna');"
		 "INSERT INTO people(id, district_id, name, my_note) VALUES ('p1', 'd1', 'Asha', 'call back');"
		 "INSERT INTO my_list VALUES ('x', 'y')");
	sync_to(lap, hq, &st);
	assert_int_equal(st.nheld, 0);
	assert_int_equal(st.nrejected, 0);
	expect(hq, "SELECT name FROM people WHERE id = 'p1'", "Asha");
	expect(lap, "SELECT my_note FROM people WHERE id = 'p1'", "call back");
	struct notes n = { "" };
	assert_int_equal(zila_store_notices(lap, note, &n), 0);
	assert_non_null(strstr(n.all, "'my_list'"));
	assert_non_null(strstr(n.all, "'people.my_note'"));
	assert_non_null(strstr(n.all, "not synced"));
	/* HQ's column of the same name is taken over: synced from then on */
	assert_int_equal(zila_schema_change(hq, "ALTER TABLE people ADD COLUMN my_note TEXT", NULL, NULL, &err), 0);
	app(hq, "UPDATE people SET my_note = 'from hq' WHERE id = 'p1'");
	sync_to(hq, lap, &st);
	assert_int_equal(zila_schema_version(lap), 2);
	expect(lap, "SELECT my_note FROM people WHERE id = 'p1'", "from hq");
	/* HQ's table whose name a laptop's own table holds waits, and says why */
	assert_int_equal(zila_schema_change(hq, "CREATE TABLE my_list (id TEXT PRIMARY KEY, v TEXT, w TEXT)", NULL, NULL,
					     &err), 0);
	sync_to(hq, lap, &st);
	assert_int_equal(zila_schema_version(lap), 2);
	assert_int_equal(st.nheld, 1);
	n.all[0] = '\0';
	assert_int_equal(zila_store_notices(lap, note, &n), 0);
	assert_non_null(strstr(n.all, "schema version 3 cannot be applied here: 'my_list' is already a table"));
	/* and says it in another process, and after a restart: the replica keeps the reason */
	lap = reopen(lap);
	n.all[0] = '\0';
	assert_int_equal(zila_store_notices(lap, note, &n), 0);
	assert_non_null(strstr(n.all, "HQ's schema version 3 cannot be applied here: 'my_list' is already a table"));
	/* once the laptop's table is out of the way, the next apply takes it, and the reason goes */
	app(lap, "ALTER TABLE my_list RENAME TO my_old_list");
	sync_to(hq, lap, &st);
	assert_int_equal(zila_schema_version(lap), 3);
	lap = reopen(lap);
	n.all[0] = '\0';
	assert_int_equal(zila_store_notices(lap, note, &n), 0);
	assert_null(strstr(n.all, "cannot be applied here"));
	zila_store_free(hq);
	zila_store_free(lap);
}

/* A format-7 replica opens as format 8: its columns as they are now are the synced ones. */
static void test_upgrade(void **state)
{
	(void)state;
	struct zila_store *s = make("up7");
	char path[200];
	sqlite3 *db = NULL;
	snprintf(path, sizeof(path), "%s/zila.db", zila_store_dir(s));
	zila_store_free(s);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DROP TABLE zila_schema; ALTER TABLE zila_tables DROP COLUMN cols;"
					  "UPDATE zila_meta SET v = '7' WHERE k = 'store_version'",
				      NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	char dir[200];
	snprintf(dir, sizeof(dir), "%s/up7", base);
	struct zila_error err;
	assert_int_equal(zila_store_open(&s, dir, &err), 0);
	expect(s, "SELECT v FROM zila_meta WHERE k = 'store_version'", "9");
	expect(s, "SELECT count(*) FROM zila_tables WHERE cols IS NULL", "0");
	expect(s, "SELECT instr(cols, 'phone') > 0 FROM zila_tables WHERE name = 'people'", "1");
	zila_store_free(s);
}


/* All of from's entries (an empty vector), into l. */
static void all_of(struct zila_store *from, struct list *l)
{
	struct zila_vector v = { 0 };
	struct zila_error err;
	assert_int_equal(zila_store_seal(from, NULL, &err), 0);
	assert_int_equal(zila_store_entries_since(from, &v, NULL, NULL, collect, l), 0);
}

static void apply_views(struct zila_store *to, struct zila_view *views, size_t n)
{
	struct zila_apply_stats st;
	struct zila_error err;
	int r = zila_store_apply(to, views, n, &st, &err);
	if (r != 0)
		fprintf(stderr, "apply: %s\n", err.msg);
	assert_int_equal(r, 0);
}

/* What must be equal on every replica: the content hash, the columns of the tables HQ
 * changed (PRAGMA table_info, in order), their statements, and the schema entries taken. */
static char *shape(struct zila_store *s)
{
	uint8_t h[32];
	struct zila_error err;
	char hex[65], *out = malloc(16384);
	assert_int_equal(zila_store_hash(s, h, &err), 0);
	for (int i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", h[i]);
	char *a = one(s, "SELECT group_concat(cid || ':' || name || ':' || type || ':' || \"notnull\" || ':' ||"
			 " coalesce(dflt_value, '-'), ',') FROM pragma_table_info('people')");
	char *b = one(s, "SELECT group_concat(cid || ':' || name || ':' || type, ',') FROM pragma_table_info('volunteers')");
	char *c = one(s, "SELECT group_concat(sql, ';') FROM (SELECT sql FROM sqlite_schema WHERE tbl_name IN"
			 " ('people', 'volunteers') AND type IN ('table', 'index') AND sql IS NOT NULL ORDER BY name)");
	char *d = one(s, "SELECT group_concat(version || ':' || hex(origin) || ':' || state, ',') FROM"
			 " (SELECT * FROM zila_schema ORDER BY version, origin)");
	char *e = one(s, "SELECT v FROM zila_meta WHERE k = 'schema_version'");
	snprintf(out, 16384, "hash %s\npeople %s\nvolunteers %s\nsql %s\nschema %s\nversion %s", hex, a ? a : "-",
		 b ? b : "-", c ? c : "-", d ? d : "-", e ? e : "-");
	free(a);
	free(b);
	free(c);
	free(d);
	free(e);
	return out;
}

static void same_shape(struct zila_store *x, struct zila_store *y, const char *what)
{
	char *a = shape(x), *b = shape(y);
	if (strcmp(a, b) != 0)
		fprintf(stderr, "%s: replicas differ\n--- one\n%s\n--- other\n%s\n", what, a, b);
	assert_string_equal(a, b);
	free(a);
	free(b);
}

/* Two HQ devices change the schema at once (#17): each makes versions 2 and 3 without
 * having seen the other's. Two columns added under one version both end up everywhere in
 * one order; a table made twice, and a column added twice with other types, keep the one
 * that ranks first (version, then author's key) on every replica; the other is said. The
 * outcome does not depend on the order the replicas receive them in. */
static void test_two_hq(void **state)
{
	(void)state;
	struct zila_store *a = make("twoa"), *b = make("twob");
	struct zila_error err;
	struct zila_apply_stats st;
	uint32_t v = 0;
	app(a, "INSERT INTO states(id, name) VALUES ('s1', 'Bihar');"
	       "INSERT INTO districts(id, state_id, name) VALUES ('d1', 's1', 'Patna');"
	       "INSERT INTO people(id, district_id, name, phone) VALUES ('p1', 'd1', 'Asha', '9876543210');"
	       "INSERT INTO people(id, district_id, name, phone) VALUES ('p2', 'd1', 'Ravi', '9876543211')");
	sync_to(a, b, &st);
	/* A: voter_id TEXT, then volunteers; B: caste, then voter_id INTEGER and another volunteers */
	assert_int_equal(zila_schema_change(a, "ALTER TABLE people ADD COLUMN voter_id TEXT", NULL, &v, &err), 0);
	assert_int_equal(v, 2);
	assert_int_equal(zila_schema_change(a, "CREATE TABLE volunteers (id TEXT PRIMARY KEY, district_id TEXT, "
					       "person_id TEXT REFERENCES people(id), skill TEXT)", "district_id", &v, &err), 0);
	assert_int_equal(v, 3);
	app(a, "UPDATE people SET voter_id = 'BR/01/1' WHERE id = 'p1';"
	       "INSERT INTO volunteers(id, district_id, person_id, skill) VALUES ('va', 'd1', 'p1', 'driving')");
	assert_int_equal(zila_schema_change(b, "ALTER TABLE people ADD COLUMN caste TEXT DEFAULT 'not asked'", NULL, &v,
					    &err), 0);
	assert_int_equal(v, 2);
	assert_int_equal(zila_schema_change(b, "CREATE TABLE volunteers (id TEXT PRIMARY KEY, district_id TEXT, "
					       "person_id TEXT REFERENCES people(id), skill TEXT, hours INTEGER)", "district_id",
					    &v, &err), 0);
	assert_int_equal(v, 3);
	assert_int_equal(zila_schema_change(b, "ALTER TABLE people ADD COLUMN voter_id INTEGER", NULL, &v, &err), 0);
	assert_int_equal(v, 4);
	/* three transactions, three entries: an entry that writes a change that lost waits
	 * whole (held), the others are taken */
	app(b, "UPDATE people SET caste = 'OBC' WHERE id = 'p2';"
	       "UPDATE people SET voter_id = 42, phone = '1111111111' WHERE id = 'p2'");
	assert_int_equal(zila_store_seal(b, NULL, &err), 0);
	app(b, "INSERT INTO volunteers(id, district_id, person_id, skill, hours) VALUES ('vb', 'd1', 'p2', 'cooking', 4)");
	assert_int_equal(zila_store_seal(b, NULL, &err), 0);
	app(b, "INSERT INTO volunteers(id, district_id, person_id, skill) VALUES ('vc', 'd1', 'p1', 'typing')");
	struct list la = { .n = 0 }, lb = { .n = 0 };
	all_of(a, &la);
	all_of(b, &lb);
	struct zila_view va[64], vb[64], all[128];
	size_t n = 0;
	for (size_t i = 0; i < la.n; i++)
		all[n++] = va[i] = zila_view_make(la.p[i], la.len[i]);
	for (size_t i = 0; i < lb.n; i++)
		all[n++] = vb[i] = zila_view_make(lb.p[i], lb.len[i]);
	/* r1: A's, then B's; r2: B's, then A's; r3: all at once; r4..r6: one entry at a time
	 * in random orders, with a restart half way */
	struct zila_store *r[6];
	char name[16];
	for (int i = 0; i < 6; i++) {
		snprintf(name, sizeof(name), "twor%d", i);
		r[i] = make(name);
	}
	apply_views(r[0], va, la.n);
	apply_views(r[0], vb, lb.n);
	apply_views(r[1], vb, lb.n);
	apply_views(r[1], va, la.n);
	apply_views(r[2], all, n);
	for (int k = 3; k < 6; k++) {
		struct zila_view p[128];
		memcpy(p, all, n * sizeof(*p));
		for (size_t i = n - 1; i > 0; i--) {
			size_t j = (size_t)rand() % (i + 1);
			struct zila_view t = p[i];
			p[i] = p[j];
			p[j] = t;
		}
		/* an entry before its feed's earlier ones waits (a gap); apply them all again
		 * after, as a sync would */
		for (size_t i = 0; i < n; i++) {
			apply_views(r[k], &p[i], 1);
			if (i == n / 2)
				r[k] = reopen(r[k]);
		}
		apply_views(r[k], all, n);
	}
	/* and the two HQ devices take each other's */
	apply_views(a, vb, lb.n);
	apply_views(b, va, la.n);
	same_shape(a, b, "the two HQ devices");
	for (int i = 0; i < 6; i++)
		same_shape(a, r[i], "an HQ device and a replica");
	/* both columns of version 2, once each, A's or B's voter_id by the key's rank */
	expect(r[0], "SELECT count(*) FROM pragma_table_info('people') WHERE name IN ('voter_id', 'caste')", "2");
	/* B's voter_id (version 4) loses to A's (version 2); the volunteers table made twice
	 * at version 3 is the one of the device whose key ranks first */
	bool a_first = memcmp(zila_store_device_pk(a), zila_store_device_pk(b), 32) < 0;
	expect(r[0], "SELECT count(*) FROM zila_schema WHERE state = 2", "2");
	expect(r[0], "SELECT type FROM pragma_table_info('people') WHERE name = 'voter_id'", "TEXT");
	expect(r[0], "SELECT count(*) FROM pragma_table_info('volunteers') WHERE name = 'hours'", a_first ? "0" : "1");
	expect(r[0], "SELECT skill FROM volunteers WHERE id = 'va'", "driving");
	/* B's entries that write its table's 'hours' (its inserts name every column) wait
	 * where B's table lost: held, and counted in status */
	expect(r[0], "SELECT count(*) FROM volunteers WHERE id IN ('vb', 'vc')", a_first ? "0" : "2");
	struct zila_store_counts cnt;
	assert_int_equal(zila_store_counts(r[0], &cnt), 0);
	assert_int_equal(cnt.held, a_first ? 2 : 0);
	expect(r[0], "SELECT caste FROM people WHERE id = 'p2'", "OBC");
	expect(r[0], "SELECT caste FROM people WHERE id = 'p1'", "not asked");
	expect(r[0], "SELECT voter_id FROM people WHERE id = 'p2'", "42");
	expect(r[0], "SELECT phone FROM people WHERE id = 'p2'", "1111111111");
	struct notes nt = { .all = "" };
	assert_int_equal(zila_store_notices(r[1], note, &nt), 0);
	assert_non_null(strstr(nt.all, "was not applied: "));
	/* the replica keeps working: a new version on top of both, from A, reaches everyone */
	assert_int_equal(zila_schema_change(a, "CREATE INDEX people_caste ON people(caste)", NULL, &v, &err), 0);
	assert_int_equal(v, 5);
	for (int i = 0; i < 6; i++)
		sync_to(a, r[i], &st);
	sync_to(a, b, &st);
	for (int i = 0; i < 6; i++)
		same_shape(b, r[i], "after version 4");
	list_free(&la);
	list_free(&lb);
	for (int i = 0; i < 6; i++)
		zila_store_free(r[i]);
	zila_store_free(a);
	zila_store_free(b);
}

static const uint8_t *cut_who;

static bool keep_not_cut_who(void *ctx, const struct zila_entry_info *e)
{
	(void)ctx;
	return memcmp(e->origin, cut_who, 32) != 0;
}

/* Another program's write, made at the store's next BEGIN IMMEDIATE, before it runs: just
 * after the seal that an operation makes first, before the operation's write lock. */
static sqlite3 *slip_db;
static const char *slip_sql;

static int slip_at_begin(unsigned type, void *ctx, void *p, void *x)
{
	(void)ctx;
	(void)p;
	if (type == SQLITE_TRACE_STMT && slip_sql != NULL && strncmp((const char *)x, "BEGIN IMMEDIATE", 15) == 0) {
		const char *q = slip_sql;
		slip_sql = NULL;
		assert_int_equal(sqlite3_exec(slip_db, q, NULL, NULL, NULL), SQLITE_OK);
	}
	return 0;
}

/* A cut makes the tables again from the entries alone, after sealing what was written: a
 * write committed after that seal, before the cut's write lock, must be sealed too, not
 * wiped with the tables (its capture then sealed the old value under a new date). */
static void test_cut_keeps_late_write(void **state)
{
	(void)state;
	struct zila_store *hq = make("lwhq"), *bad = make("lwbad"), *lap = make("lwlap");
	struct zila_error err;
	struct zila_apply_stats st;
	char db[300];
	app(hq, "INSERT INTO states(id, name) VALUES ('s1', 'Bihar');"
		"INSERT INTO districts(id, state_id, name) VALUES ('d1', 's1', 'Patna');"
		"INSERT INTO people(id, district_id, name, phone) VALUES ('p1', 'd1', 'Asha', '9876543210')");
	sync_to(hq, bad, &st);
	sync_to(hq, lap, &st);
	app(bad, "UPDATE people SET name = 'Bad' WHERE id = 'p1'");
	sync_to(bad, lap, &st);
	expect(lap, "SELECT name FROM people WHERE id = 'p1'", "Bad");
	snprintf(db, sizeof(db), "%s/zila.db", zila_store_dir(lap));
	assert_int_equal(sqlite3_open(db, &slip_db), SQLITE_OK);
	sqlite3_busy_timeout(slip_db, 5000);
	slip_sql = "UPDATE people SET phone = '5555555555' WHERE id = 'p1'";
	assert_int_equal(sqlite3_trace_v2(zila_store_db(lap), SQLITE_TRACE_STMT, slip_at_begin, NULL), SQLITE_OK);
	size_t ncut = 0;
	cut_who = zila_store_device_pk(bad);
	assert_int_equal(zila_store_cut(lap, (const uint8_t(*)[32])zila_store_device_pk(bad), 1, keep_not_cut_who, NULL,
					&ncut, &err), 0);
	assert_int_equal(sqlite3_trace_v2(zila_store_db(lap), 0, NULL, NULL), SQLITE_OK);
	assert_null(slip_sql);
	assert_int_equal(ncut, 1);
	expect(lap, "SELECT name || '/' || phone FROM people WHERE id = 'p1'", "Asha/5555555555");
	assert_int_equal(zila_store_seal(lap, NULL, &err), 0);
	expect(lap, "SELECT count(*) FROM zila_pending", "0");
	sync_to(lap, hq, &st);
	expect(hq, "SELECT name || '/' || phone FROM people WHERE id = 'p1'", "Asha/5555555555");
	sqlite3_close(slip_db);
	zila_store_free(hq);
	zila_store_free(bad);
	zila_store_free(lap);
}

/* A schema entry undone by a revocation (#17): a second HQ device's changes are cut (the
 * root revoked it from before them). The column and the table they made go, the replica's
 * schema version goes back, and the entries that wrote them (its own laptop's too) are
 * held, on the replica that had taken them as on one that never did: equal hashes, tables
 * and held counts. Another HQ's next version is taken on top as usual. */
static void test_cut_schema(void **state)
{
	(void)state;
	struct zila_store *hq = make("cuthq"), *bad = make("cutbad"), *lap = make("cutlap"), *q = make("cutq");
	struct zila_error err;
	struct zila_apply_stats st;
	uint32_t v = 0;
	app(hq, "INSERT INTO states(id, name) VALUES ('s1', 'Bihar');"
		"INSERT INTO districts(id, state_id, name) VALUES ('d1', 's1', 'Patna');"
		"INSERT INTO people(id, district_id, name, phone) VALUES ('p1', 'd1', 'Asha', '9876543210');"
		"INSERT INTO people(id, district_id, name, phone) VALUES ('p2', 'd1', 'Ravi', '9876543211')");
	sync_to(hq, bad, &st);
	sync_to(hq, lap, &st);
	assert_int_equal(zila_schema_change(bad, "ALTER TABLE people ADD COLUMN voter_id TEXT", NULL, &v, &err), 0);
	assert_int_equal(zila_schema_change(bad, "CREATE TABLE volunteers (id TEXT PRIMARY KEY, district_id TEXT, "
						 "person_id TEXT REFERENCES people(id), skill TEXT)", "district_id", &v, &err), 0);
	assert_int_equal(zila_schema_change(bad, "CREATE INDEX people_voter ON people(voter_id)", NULL, &v, &err), 0);
	assert_int_equal(v, 4);
	app(bad, "UPDATE people SET voter_id = 'BR/1' WHERE id = 'p1'");
	sync_to(bad, lap, &st);
	assert_int_equal(zila_schema_version(lap), 4);
	/* the laptop uses them: its own entries, and one that does not */
	app(lap, "UPDATE people SET voter_id = 'BR/2' WHERE id = 'p2'");
	assert_int_equal(zila_store_seal(lap, NULL, &err), 0);
	app(lap, "INSERT INTO volunteers(id, district_id, person_id, skill) VALUES ('v1', 'd1', 'p2', 'driving')");
	assert_int_equal(zila_store_seal(lap, NULL, &err), 0);
	app(lap, "UPDATE people SET phone = '5555555555' WHERE id = 'p1'");
	assert_int_equal(zila_store_seal(lap, NULL, &err), 0);
	/* the revocation reaches the laptop: everything the bad HQ wrote is cut */
	size_t ncut = 0;
	cut_who = zila_store_device_pk(bad);
	assert_int_equal(zila_store_cut(lap, (const uint8_t(*)[32])zila_store_device_pk(bad), 1, keep_not_cut_who, NULL,
					&ncut, &err), 0);
	assert_int_equal(ncut, 4);
	assert_int_equal(zila_schema_version(lap), 1);
	expect(lap, "SELECT count(*) FROM pragma_table_info('people') WHERE name = 'voter_id'", "0");
	expect(lap, "SELECT count(*) FROM sqlite_schema WHERE name IN ('volunteers', 'people_voter')", "0");
	expect(lap, "SELECT count(*) FROM zila_schema", "0");
	expect(lap, "SELECT count(*) FROM zila_tables WHERE name = 'volunteers'", "0");
	expect(lap, "SELECT phone FROM people WHERE id = 'p1'", "5555555555");
	struct zila_store_counts c1, c2;
	assert_int_equal(zila_store_counts(lap, &c1), 0);
	assert_int_equal(c1.held, 2);
	/* the laptop keeps working: a new row is captured and sealed (its triggers are there) */
	app(lap, "INSERT INTO people(id, district_id, name) VALUES ('p3', 'd1', 'Meena')");
	assert_int_equal(zila_store_seal(lap, NULL, &err), 0);
	expect(lap, "SELECT count(*) FROM zila_pending", "0");
	/* a replica that never took the bad HQ's entries ends the same */
	sync_to(hq, q, &st);
	sync_to(lap, q, &st);
	assert_int_equal(zila_store_counts(q, &c2), 0);
	assert_int_equal(c2.held, 2);
	same_shape(lap, q, "the laptop that undid them and a replica that never took them");
	/* HQ's next version is version 2, taken everywhere; what waits still waits */
	assert_int_equal(zila_schema_change(hq, "ALTER TABLE people ADD COLUMN caste TEXT", NULL, &v, &err), 0);
	assert_int_equal(v, 2);
	sync_to(hq, lap, &st);
	sync_to(hq, q, &st);
	sync_to(lap, hq, &st);
	assert_int_equal(zila_schema_version(lap), 2);
	same_shape(lap, q, "after HQ's next version");
	same_shape(lap, hq, "HQ and the laptop");
	zila_store_free(hq);
	zila_store_free(bad);
	zila_store_free(lap);
	zila_store_free(q);
}

/* A format-8 replica (zila_schema keyed by version, nothing kept to undo a change) upgrades
 * to 9 with its rows, and a change taken then can still be undone (its column found in the
 * table's statement). */
static void test_upgrade_8(void **state)
{
	(void)state;
	struct zila_store *hq = make("up8hq"), *lap = make("up8lap");
	struct zila_error err;
	struct zila_apply_stats st;
	app(hq, "INSERT INTO states(id, name) VALUES ('s1', 'Bihar');"
		"INSERT INTO districts(id, state_id, name) VALUES ('d1', 's1', 'Patna');"
		"INSERT INTO people(id, district_id, name) VALUES ('p1', 'd1', 'Asha')");
	sync_to(hq, lap, &st);
	assert_int_equal(zila_schema_change(hq, "ALTER TABLE people ADD COLUMN voter_id TEXT DEFAULT 'none' ; -- for all",
					    NULL, NULL, &err), 0);
	sync_to(hq, lap, &st);
	char *before = one(lap, "SELECT undo FROM zila_schema");
	assert_non_null(before);
	free(before);
	char dir[200], path[220];
	snprintf(dir, sizeof(dir), "%s", zila_store_dir(lap));
	snprintf(path, sizeof(path), "%s/zila.db", dir);
	zila_store_free(lap);
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE s8(version INTEGER PRIMARY KEY, sql TEXT NOT NULL, pcol TEXT, origin BLOB,"
					  " hlc INTEGER, at INTEGER); INSERT INTO s8 SELECT version, sql, pcol, origin, hlc, at"
					  " FROM zila_schema; DROP TABLE zila_schema; ALTER TABLE s8 RENAME TO zila_schema;"
					  "UPDATE zila_meta SET v = '8' WHERE k = 'store_version'", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(zila_store_open(&lap, dir, &err), 0);
	expect(lap, "SELECT v FROM zila_meta WHERE k = 'store_version'", "9");
	expect(lap, "SELECT version || ':' || length(origin) || ':' || state || ':' || (undo IS NULL) FROM zila_schema",
	       "2:32:0:1");
	/* HQ is revoked from before its change: the laptop undoes it from the table's statement */
	size_t ncut = 0;
	cut_who = zila_store_device_pk(hq);
	assert_int_equal(zila_store_cut(lap, (const uint8_t(*)[32])zila_store_device_pk(hq), 1, keep_not_cut_who, NULL,
					&ncut, &err), 0);
	assert_true(ncut > 0);
	expect(lap, "SELECT count(*) FROM pragma_table_info('people') WHERE name = 'voter_id'", "0");
	expect(lap, "SELECT instr(sql, 'voter_id') FROM sqlite_schema WHERE name = 'people'", "0");
	assert_int_equal(zila_schema_version(lap), 1);
	zila_store_free(hq);
	zila_store_free(lap);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	snprintf(base, sizeof(base), "/tmp/zila-schema-XXXXXX");
	if (zila_os_mkdtemp(base) != 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refused), cmocka_unit_test(test_held_then_released),
		cmocka_unit_test(test_cache_follows), cmocka_unit_test(test_local), cmocka_unit_test(test_upgrade),
		cmocka_unit_test(test_two_hq), cmocka_unit_test(test_cut_schema),
		cmocka_unit_test(test_cut_keeps_late_write),
		cmocka_unit_test(test_upgrade_8),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	if (zila_os_rmtree(base) != 0)
		return 1;
	return r;
}
