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
	assert_non_null(strstr(n.all, "schema version 3 cannot be applied here"));
	/* once the laptop's table is out of the way, the next apply takes it */
	app(lap, "ALTER TABLE my_list RENAME TO my_old_list");
	sync_to(hq, lap, &st);
	assert_int_equal(zila_schema_version(lap), 3);
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
	expect(s, "SELECT v FROM zila_meta WHERE k = 'store_version'", "8");
	expect(s, "SELECT count(*) FROM zila_tables WHERE cols IS NULL", "0");
	expect(s, "SELECT instr(cols, 'phone') > 0 FROM zila_tables WHERE name = 'people'", "1");
	zila_store_free(s);
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
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	if (zila_os_rmtree(base) != 0)
		return 1;
	return r;
}
