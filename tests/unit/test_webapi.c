/* The web interface's pages (zila/office/web.h) driven without a server: on a replica that
 * holds two districts, a district's pages neither read nor write the other's rows nor the
 * org-wide tables (their own checks: this replica's capture triggers refuse nothing, as it
 * is not enrolled), HQ's pages see both; the schema's CHECKs become choices and bounds; the
 * query string is decoded (Hindi, +); errors name their field; history says old -> new. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>
#include <sqlite3.h>

#include "zila/office/web.h"
#include "zila/bundle.h"
#include "zila/buf.h"
#include "zila/os.h"
#include "zila/store.h"

static char dir[64];
static struct zila_store *store;
static struct zila_office_web *d1, *hq;

static void exec_in(const char *in, const char *sql)
{
	char path[128], *msg = NULL;
	sqlite3 *db;
	snprintf(path, sizeof(path), "%s/zila.db", in);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK)
		fprintf(stderr, "sql failed: %s\n", msg);
	sqlite3_free(msg);
	sqlite3_close(db);
	assert_int_equal(rc, SQLITE_OK);
}

static void exec(const char *sql)
{
	exec_in(dir, sql);
}

/* Every entry of from into to, as a bundle. */
static void send_all(struct zila_store *from, struct zila_store *to)
{
	struct zila_error err;
	struct zila_apply_stats st;
	struct zila_buf b;
	size_t n;
	zila_buf_init(&b, SIZE_MAX);
	assert_int_equal(zila_store_seal(from, &n, &err), 0);
	assert_int_equal(zila_bundle_write(from, NULL, NULL, NULL, zila_buf_sink, &b, NULL, &err), 0);
	assert_int_equal(zila_bundle_read(to, NULL, b.p, b.len, "x", &st, &err), 0);
	zila_buf_release(&b);
}

/* One request; the answer's status, its JSON in *out (caller's reference, may be NULL). */
static int req(struct zila_office_web *w, const char *method, const char *path, const char *query,
	       const char *body, json_t **out)
{
	struct zila_office_reply rep;
	zila_office_web_handle(w, method, path, query ? query : "", body ? body : "", body ? strlen(body) : 0, &rep);
	assert_non_null(rep.body);
	json_t *j = json_loadb(rep.body, rep.body_len, 0, NULL);
	free(rep.body);
	if (out)
		*out = j;
	else
		json_decref(j);
	return rep.status;
}

/* An upload or a file's content (the worker's calls) as role; the answer in *rep (body the caller's). */
static int freq(struct zila_office_web *w, const char *role, const char *method, const char *path, const char *query,
		const void *body, size_t len, struct zila_office_reply *rep)
{
	zila_office_web_files_as(w, role, method, path, query ? query : "", body ? body : "", len, rep);
	assert_non_null(rep->body);
	return rep->status;
}

static const char *jstr(const struct zila_office_reply *rep, const char *key, json_t **keep)
{
	*keep = json_loadb(rep->body, rep->body_len, 0, NULL);
	json_t *v = json_object_get(*keep, key);
	if (json_is_object(v) && strcmp(key, "attachment") == 0)
		v = json_object_get(v, "id");
	return json_string_value(v);
}

static int setup(void **state)
{
	(void)state;
	struct zila_error err;
	zila_error_clear(&err);
	assert_true(sodium_init() >= 0);
	snprintf(dir, sizeof(dir), "/tmp/zila-test-webapi-XXXXXX");
	assert_int_equal(zila_os_mkdtemp(dir), 0);
	assert_int_equal(zila_store_create(dir, &err), 0);
	assert_int_equal(zila_store_open(&store, dir, &err), 0);
	exec("INSERT INTO states(id, name) VALUES ('s1', 'Bihar');"
	     "INSERT INTO districts(id, state_id, name, code) VALUES ('d1', 's1', 'Patna', 'PAT'), ('d2', 's1', 'Gaya', 'GAY');"
	     "INSERT INTO org_units(id, level, district_id, name, code) VALUES ('b1', 'booth', 'd1', 'Kishunpur', '110');"
	     "INSERT INTO people(id, district_id, name, name_local, phone) VALUES"
	     " ('p1', 'd1', 'Ram Kumar', 'राम कुमार', '9876543210'), ('p2', 'd2', 'Gaya Ram', NULL, '9111111111')");
	size_t n;
	assert_int_equal(zila_store_seal(store, &n, &err), 0);
	struct zila_office_who w1 = { "dev1", "patna-1", "d1", "Org", false };
	struct zila_office_who wh = { "dev0", "hq", NULL, "Org", true };
	assert_int_equal(zila_office_web_new(&d1, dir, store, &w1, &err), 0);
	assert_int_equal(zila_office_web_new(&hq, dir, store, &wh, &err), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	zila_office_web_free(d1);
	zila_office_web_free(hq);
	zila_store_free(store);
	return zila_os_rmtree(dir) == 0 ? 0 : -1;
}

static void test_scope(void **state)
{
	(void)state;
	json_t *j;
	assert_int_equal(req(d1, "GET", "/api/tables/people/rows", NULL, NULL, &j), 200);
	assert_int_equal(json_integer_value(json_object_get(j, "total")), 1);
	json_decref(j);
	assert_int_equal(req(hq, "GET", "/api/tables/people/rows", NULL, NULL, &j), 200);
	assert_int_equal(json_integer_value(json_object_get(j, "total")), 2);
	json_decref(j);
	assert_int_equal(req(d1, "GET", "/api/tables/people/rows", "f.district_id=d2", NULL, &j), 200);
	assert_int_equal(json_integer_value(json_object_get(j, "total")), 0);
	json_decref(j);
	assert_int_equal(req(d1, "GET", "/api/tables/people/rows/p2", NULL, NULL, NULL), 404);
	assert_int_equal(req(hq, "GET", "/api/tables/people/rows/p2", NULL, NULL, NULL), 200);
	assert_int_equal(req(d1, "PUT", "/api/tables/people/rows/p2", NULL, "{\"name\":\"x\"}", &j), 403);
	assert_string_equal(json_string_value(json_object_get(j, "code")), "scope");
	json_decref(j);
	assert_int_equal(req(d1, "DELETE", "/api/tables/people/rows/p2", NULL, NULL, NULL), 403);
	assert_int_equal(req(d1, "POST", "/api/tables/people/rows", NULL, "{\"name\":\"x\",\"district_id\":\"d2\"}", NULL),
			 403);
	assert_int_equal(req(d1, "POST", "/api/tables/districts/rows", NULL, "{\"name\":\"x\",\"state_id\":\"s1\"}", NULL),
			 403);
	assert_int_equal(req(d1, "GET", "/api/tables/people/options/district_id", NULL, NULL, &j), 200);
	assert_int_equal(json_array_size(json_object_get(j, "options")), 2); /* districts are org-wide: readable */
	json_decref(j);
	/* nothing of d2 changed */
	assert_int_equal(req(hq, "GET", "/api/tables/people/rows/p2", NULL, NULL, &j), 200);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "row"), "name")), "Gaya Ram");
	json_decref(j);
}

static json_t *column(json_t *tables, const char *table, const char *col)
{
	size_t i, k;
	json_t *t, *c;
	json_array_foreach(json_object_get(tables, "tables"), i, t)
	{
		if (strcmp(json_string_value(json_object_get(t, "name")), table) != 0)
			continue;
		json_array_foreach(json_object_get(t, "columns"), k, c)
		{
			if (strcmp(json_string_value(json_object_get(c, "name")), col) == 0)
				return c;
		}
	}
	return NULL;
}

static void test_schema_forms(void **state)
{
	(void)state;
	json_t *j;
	assert_int_equal(req(d1, "GET", "/api/tables", NULL, NULL, &j), 200);
	json_t *g = column(j, "people", "gender"), *by = column(j, "people", "birth_year"), *lv = column(j, "org_units", "level");
	json_t *ou = column(j, "people", "org_unit_id"), *tg = column(j, "drive_targets", "target");
	assert_non_null(g);
	assert_int_equal(json_array_size(json_object_get(g, "choices")), 3);
	assert_string_equal(json_string_value(json_array_get(json_object_get(g, "choices"), 1)), "male");
	assert_true(json_real_value(json_object_get(by, "min")) == 1900 && json_real_value(json_object_get(by, "max")) == 2100);
	assert_int_equal(json_array_size(json_object_get(lv, "choices")), 6);
	assert_string_equal(json_string_value(json_object_get(json_object_get(ou, "fk"), "table")), "org_units");
	assert_true(json_real_value(json_object_get(tg, "min")) == 0 && json_is_null(json_object_get(tg, "max")));
	json_decref(j);
}

static void test_search_and_labels(void **state)
{
	(void)state;
	json_t *j;
	/* राम, percent-encoded; "ram+kumar" with + as a space, any case */
	assert_int_equal(req(d1, "GET", "/api/tables/people/rows", "q=%E0%A4%B0%E0%A4%BE%E0%A4%AE", NULL, &j), 200);
	assert_int_equal(json_integer_value(json_object_get(j, "total")), 1);
	json_decref(j);
	assert_int_equal(req(d1, "GET", "/api/tables/people/rows", "q=ram+KUMAR", NULL, &j), 200);
	assert_int_equal(json_integer_value(json_object_get(j, "total")), 1);
	json_decref(j);
	assert_int_equal(req(d1, "GET", "/api/tables/people/rows", "q=%25", NULL, &j), 200);
	assert_int_equal(json_integer_value(json_object_get(j, "total")), 0); /* LIKE's % is a plain character */
	json_decref(j);
	assert_int_equal(req(d1, "GET", "/api/tables/people/rows", "sort=nope", NULL, NULL), 400);
	assert_int_equal(req(d1, "PUT", "/api/tables/people/rows/p1", NULL, "{\"org_unit_id\":\"b1\"}", &j), 200);
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(j, "row"), "_labels"),
							      "org_unit_id")),
			    "110 — Kishunpur");
	json_decref(j);
	/* history: a foreign key's id has its label beside it */
	struct zila_error err;
	size_t n;
	zila_error_clear(&err);
	assert_int_equal(zila_store_seal(store, &n, &err), 0);
	assert_int_equal(req(d1, "GET", "/api/tables/people/rows/p1", NULL, NULL, &j), 200);
	json_t *c = json_array_get(json_object_get(json_array_get(json_object_get(j, "history"), 0), "changes"), 0);
	assert_string_equal(json_string_value(json_object_get(c, "col")), "org_unit_id");
	assert_string_equal(json_string_value(json_object_get(c, "new")), "b1");
	assert_string_equal(json_string_value(json_object_get(json_object_get(c, "_labels"), "new")), "110 — Kishunpur");
	assert_null(json_object_get(json_object_get(c, "_labels"), "old"));
	json_decref(j);
}

static void test_writes_and_history(void **state)
{
	(void)state;
	json_t *j;
	struct zila_error err;
	zila_error_clear(&err);
	assert_int_equal(req(d1, "POST", "/api/tables/people/rows", NULL,
			     "{\"name\":\"Sita\",\"phone\":\"098765-43211\",\"gender\":\"महिला\",\"birth_year\":\"1990\"}", &j),
			 201);
	json_t *row = json_object_get(j, "row");
	char id[40];
	snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(row, "id")));
	assert_string_equal(json_string_value(json_object_get(row, "district_id")), "d1");
	assert_string_equal(json_string_value(json_object_get(row, "phone")), "9876543211");
	assert_string_equal(json_string_value(json_object_get(row, "gender")), "female");
	assert_int_equal(json_integer_value(json_object_get(row, "birth_year")), 1990);
	assert_string_equal(json_string_value(json_object_get(row, "_sync")), "local"); /* not sealed yet */
	json_decref(j);
	size_t n;
	assert_int_equal(zila_store_seal(store, &n, &err), 0);
	char path[100];
	snprintf(path, sizeof(path), "/api/tables/people/rows/%s", id);
	assert_int_equal(req(d1, "PUT", path, NULL, "{\"name\":\"Sita Devi\"}", NULL), 200);
	assert_int_equal(zila_store_seal(store, &n, &err), 0);
	assert_int_equal(req(d1, "GET", path, NULL, NULL, &j), 200);
	json_t *h = json_object_get(j, "history");
	assert_int_equal(json_array_size(h), 2);
	json_t *c = json_array_get(json_object_get(json_array_get(h, 0), "changes"), 0);
	assert_string_equal(json_string_value(json_object_get(c, "old")), "Sita");
	assert_string_equal(json_string_value(json_object_get(c, "new")), "Sita Devi");
	json_decref(j);
	/* refusals name their field */
	assert_int_equal(req(d1, "POST", "/api/tables/people/rows", NULL, "{\"name\":\"T\",\"phone\":\"9876543211\"}", &j), 409);
	assert_string_equal(json_string_value(json_object_get(j, "field")), "phone");
	json_decref(j);
	assert_int_equal(req(d1, "POST", "/api/tables/people/rows", NULL, "{\"name\":\"T\",\"birth_year\":1800}", &j), 400);
	assert_string_equal(json_string_value(json_object_get(j, "field")), "birth_year");
	json_decref(j);
	assert_int_equal(req(d1, "POST", "/api/tables/people/rows", NULL, "{\"name\":\"T\",\"phone\":\"12\"}", &j), 400);
	assert_string_equal(json_string_value(json_object_get(j, "field")), "phone");
	json_decref(j);
	assert_int_equal(req(d1, "POST", "/api/tables/people/rows", NULL, "{\"name\":\"T\",\"nope\":1}", NULL), 400);
	assert_int_equal(req(d1, "POST", "/api/tables/people/rows", NULL, "{not json", NULL), 400);
	assert_int_equal(req(d1, "GET", "/api/nothing", NULL, NULL, NULL), 404);
	assert_int_equal(req(d1, "GET", "/api/tables/nope/rows", NULL, NULL, NULL), 404);
	assert_int_equal(req(d1, "DELETE", path, NULL, NULL, NULL), 200);
	assert_int_equal(req(d1, "GET", path, NULL, NULL, NULL), 404);
}

/* Import preview: the office words are guessed (shared with `zila import`); a header
 * nothing places maps to "" and the rows still show; the commit refuses it until the
 * clerk leaves it out by name, as `zila import` does. */
static void test_import_preview(void **state)
{
	(void)state;
	json_t *j;
	const char *body = "{\"table\":\"people\",\"csv\":\"Naam,Mobile No.,Ling,Kuch Aur\\nAsha,9222222222,F,x\\n\"}";
	assert_int_equal(req(d1, "POST", "/api/import/preview", NULL, body, &j), 200);
	json_t *m = json_object_get(j, "mapping");
	assert_string_equal(json_string_value(json_object_get(m, "Naam")), "name");
	assert_string_equal(json_string_value(json_object_get(m, "Mobile No.")), "phone");
	assert_string_equal(json_string_value(json_object_get(m, "Ling")), "gender");
	assert_string_equal(json_string_value(json_object_get(m, "Kuch Aur")), "");
	assert_string_equal(json_string_value(json_array_get(json_object_get(j, "unmapped"), 0)), "Kuch Aur");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "counts"), "create")), 1);
	json_t *r0 = json_array_get(json_object_get(j, "rows"), 0);
	assert_string_equal(json_string_value(json_object_get(r0, "action")), "create");
	json_decref(j);
	assert_int_equal(req(d1, "POST", "/api/import/commit", NULL, body, &j), 400);
	assert_non_null(strstr(json_string_value(json_object_get(j, "error")), "Kuch Aur"));
	json_decref(j);
	assert_int_equal(req(d1, "GET", "/api/tables/people/rows", "q=9222222222", NULL, &j), 200);
	assert_int_equal(json_integer_value(json_object_get(j, "total")), 0);
	json_decref(j);
	const char *mapped = "{\"table\":\"people\",\"map\":{\"Kuch Aur\":\"\"},"
			     "\"csv\":\"Naam,Mobile No.,Ling,Kuch Aur\\nAsha,9222222222,F,x\\n\"}";
	assert_int_equal(req(d1, "POST", "/api/import/commit", NULL, mapped, &j), 200);
	assert_true(json_is_true(json_object_get(j, "written")));
	json_decref(j);
	assert_int_equal(req(d1, "GET", "/api/tables/people/rows", "q=9222222222", NULL, &j), 200);
	assert_int_equal(json_integer_value(json_object_get(j, "total")), 1);
	json_decref(j);
}

static void test_hq(void **state)
{
	(void)state;
	json_t *j;
	exec("INSERT INTO org_units(id, level, district_id, name, code) VALUES ('b2', 'booth', 'd1', 'Rampur', '111'),"
	     " ('g1', 'booth', 'd2', 'Gaya Booth', '1');"
	     "INSERT INTO people(id, district_id, name) VALUES ('a1', 'd1', 'Agent');"
	     "INSERT INTO booth_agents(id, district_id, booth_id, person_id) VALUES ('ag1', 'd1', 'b1', 'a1');"
	     "INSERT INTO drives(id, district_id, name, starts_on, deadline) VALUES ('dr1', 'd1', 'Drive', '2026-11-01', '2026-12-31');"
	     "INSERT INTO signups(id, district_id, drive_id, person_id, signed_on) VALUES"
	     " ('s1', 'd1', 'dr1', 'p1', '2026-11-02'), ('s2', 'd1', 'dr1', 'a1', '2026-11-02');");
	assert_int_equal(req(d1, "GET", "/api/hq/list", "metric=booths_without_agent", NULL, &j), 200);
	assert_int_equal(json_array_size(json_object_get(j, "rows")), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(j, "rows"), 0), "id")), "b2");
	json_decref(j);
	assert_int_equal(req(d1, "GET", "/api/hq/list", "metric=booths_without_agent&district=d2", NULL, NULL), 403);
	assert_int_equal(req(hq, "GET", "/api/hq/list", "metric=booths_without_agent&district=d2", NULL, &j), 200);
	assert_int_equal(json_array_size(json_object_get(j, "rows")), 1);
	json_decref(j);
	assert_int_equal(req(hq, "GET", "/api/hq/list", "metric=nope&district=d2", NULL, NULL), 400);
	assert_int_equal(req(d1, "GET", "/api/hq/progress", "today=2026-11-15", NULL, &j), 200);
	json_t *ds = json_object_get(j, "districts");
	assert_int_equal(json_array_size(ds), 1); /* its own district only */
	json_t *r = json_array_get(ds, 0);
	assert_string_equal(json_string_value(json_object_get(r, "id")), "d1");
	assert_int_equal(json_integer_value(json_object_get(r, "booths")), 2);
	assert_int_equal(json_integer_value(json_object_get(r, "booths_with_agent")), 1);
	json_t *series = json_object_get(r, "series");
	assert_int_equal(json_array_size(series), 1);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(series, 0), "signups")), 2);
	json_decref(j);
	assert_int_equal(req(hq, "GET", "/api/hq/progress", "today=2026-11-15", NULL, &j), 200);
	assert_int_equal(json_array_size(json_object_get(j, "districts")), 2);
	json_decref(j);
	/* devices: a laptop neither invites nor revokes; this replica has no organisation */
	assert_int_equal(req(d1, "GET", "/api/devices", NULL, NULL, &j), 200);
	assert_int_equal(json_array_size(json_object_get(j, "devices")), 0);
	json_decref(j);
	assert_int_equal(req(d1, "POST", "/api/devices/invite", NULL, "{\"district\":\"d1\"}", NULL), 403);
	assert_int_equal(req(d1, "POST", "/api/devices/revoke", NULL, "{\"id\":\"x\"}", NULL), 403);
	assert_int_equal(req(hq, "POST", "/api/devices/invite", NULL, "{\"district\":\"Nowhere\"}", &j), 400);
	assert_string_equal(json_string_value(json_object_get(j, "field")), "district");
	json_decref(j);
	assert_int_equal(req(hq, "POST", "/api/devices/revoke", NULL, "{\"id\":\"x\"}", NULL), 404);
}

/* Review names what it shows: a conflict's row by its display value (row_label), an
 * orphan's missing parent by its column (col). A second replica deletes a booth while this
 * one adds a member to it, and both rename the same member. */
static void test_review_labels(void **state)
{
	(void)state;
	char dir2[64];
	struct zila_store *s2 = NULL;
	struct zila_office_web *w2 = NULL;
	struct zila_error err;
	json_t *j;
	zila_error_clear(&err);
	snprintf(dir2, sizeof(dir2), "/tmp/zila-test-webapi2-XXXXXX");
	assert_int_equal(zila_os_mkdtemp(dir2), 0);
	assert_int_equal(zila_store_create(dir2, &err), 0);
	assert_int_equal(zila_store_open(&s2, dir2, &err), 0);
	exec("INSERT INTO org_units(id, level, district_id, name, code) VALUES ('b9', 'booth', 'd1', 'Sonpur', '120')");
	send_all(store, s2);
	exec_in(dir2, "DELETE FROM org_units WHERE id = 'b9'; UPDATE people SET name = 'Gaya Ram B' WHERE id = 'p2'");
	size_t n;
	assert_int_equal(zila_store_seal(s2, &n, &err), 0);
	exec("INSERT INTO people(id, district_id, name, phone, org_unit_id) VALUES ('p9', 'd1', 'Kid', '9333333333', 'b9');"
	     "UPDATE people SET name = 'Gaya Ram A' WHERE id = 'p2'");
	send_all(store, s2);
	struct zila_office_who wh = { "dev2", "hq2", NULL, "Org", true };
	assert_int_equal(zila_office_web_new(&w2, dir2, s2, &wh, &err), 0);
	assert_int_equal(req(w2, "GET", "/api/review", NULL, NULL, &j), 200);
	json_t *o = json_array_get(json_object_get(j, "orphans"), 0);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "row")), "p9");
	assert_string_equal(json_string_value(json_object_get(o, "col")), "org_unit_id");
	json_t *c = json_array_get(json_object_get(j, "conflicts"), 0);
	assert_non_null(c);
	assert_string_equal(json_string_value(json_object_get(c, "row")), "p2");
	assert_string_equal(json_string_value(json_object_get(c, "row_label")), "Gaya Ram A");
	json_decref(j);
	zila_office_web_free(w2);
	zila_store_free(s2);
	assert_int_equal(zila_os_rmtree(dir2), 0);
}

/* Attachments: uploaded in scope only (the records' own rules), limits refused in plain words,
 * listed with what is here, served only to a caller whose scope reads them. */
static void test_attachments(void **state)
{
	(void)state;
	struct zila_office_reply rep;
	struct zila_error err;
	json_t *j, *k;
	char photo[3000], id1[64], id2[64], path[128];
	zila_error_clear(&err);
	for (size_t i = 0; i < sizeof(photo); i++)
		photo[i] = (char)(i * 7 + i / 13);
	/* a clerk of d1 attaches a photo to a member of d1 */
	assert_int_equal(freq(d1, "owner", "POST", "/api/attachments", "table=people&id=p1&name=sheet%201.jpg", photo,
			      sizeof(photo), &rep), 201);
	snprintf(id1, sizeof(id1), "%s", jstr(&rep, "attachment", &j));
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "attachment"), "state")), "here");
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "attachment"), "media_type")), "image/jpeg");
	assert_false(json_is_true(json_object_get(json_object_get(j, "shrink"), "done")));
	json_decref(j);
	free(rep.body);
	/* a viewer may not; d2's account may not on d1's laptop; d1 may not attach to d2's member */
	assert_int_equal(freq(d1, "viewer", "POST", "/api/attachments", "table=people&id=p1&name=a.jpg", photo, 10, &rep), 403);
	assert_string_equal(jstr(&rep, "code", &j), "role");
	json_decref(j);
	free(rep.body);
	assert_int_equal(freq(d1, "district:d2", "POST", "/api/attachments", "table=people&id=p1&name=a.jpg", photo, 10, &rep),
			 403);
	assert_string_equal(jstr(&rep, "code", &j), "scope");
	json_decref(j);
	free(rep.body);
	assert_int_equal(freq(d1, "owner", "POST", "/api/attachments", "table=people&id=p2&name=a.jpg", photo, 10, &rep), 403);
	assert_string_equal(jstr(&rep, "code", &j), "scope");
	json_decref(j);
	free(rep.body);
	assert_int_equal(freq(hq, "district:d1", "POST", "/api/attachments", "table=people&id=p2&name=a.jpg", photo, 10, &rep),
			 403);
	free(rep.body);
	assert_int_equal(freq(d1, "owner", "POST", "/api/attachments", "table=people&id=nobody&name=a.jpg", photo, 10, &rep),
			 404);
	free(rep.body);
	assert_int_equal(freq(d1, "owner", "POST", "/api/attachments", "table=zila_meta&id=x&name=a.jpg", photo, 10, &rep), 400);
	free(rep.body);
	/* HQ attaches a scan to d2's member */
	assert_int_equal(freq(hq, "owner", "POST", "/api/attachments", "table=people&id=p2&name=form.pdf", photo, 100, &rep),
			 201);
	snprintf(id2, sizeof(id2), "%s", jstr(&rep, "attachment", &j));
	json_decref(j);
	free(rep.body);
	/* the size limit and the quota, in plain words with a code the page translates */
	assert_int_equal(zila_store_meta_set(store, "attach.max_bytes", "1000"), 0);
	assert_int_equal(freq(d1, "owner", "POST", "/api/attachments", "table=people&id=p1&name=big.jpg", photo, sizeof(photo),
			      &rep), 413);
	assert_string_equal(jstr(&rep, "code", &j), "too_big");
	assert_non_null(strstr(json_string_value(json_object_get(j, "error")), "larger than 1000 bytes"));
	assert_int_equal(json_integer_value(json_object_get(j, "limit")), 1000);
	json_decref(j);
	free(rep.body);
	assert_int_equal(zila_store_meta_set(store, "attach.max_bytes", "10485760"), 0);
	assert_int_equal(zila_store_meta_set(store, "attach.quota_bytes", "4000"), 0);
	assert_int_equal(freq(d1, "owner", "POST", "/api/attachments", "table=people&id=p1&name=more.jpg", photo + 1, 2000,
			      &rep), 413);
	assert_string_equal(jstr(&rep, "code", &j), "quota");
	assert_non_null(strstr(json_string_value(json_object_get(j, "error")), "quota"));
	json_decref(j);
	free(rep.body);
	assert_int_equal(zila_store_meta_set(store, "attach.quota_bytes", "2147483648"), 0);
	/* shrinking: a file that is not a JPEG goes as it is and the answer says so; a damaged JPEG
	 * is refused and nothing is kept (a build that cannot shrink refuses to be asked) */
#ifndef _WIN32
	assert_int_equal(freq(d1, "owner", "POST", "/api/attachments", "table=people&id=p1&name=notes.txt&shrink=1", "plain",
			      5, &rep), 201);
	jstr(&rep, "shrink", &j);
	assert_false(json_is_true(json_object_get(json_object_get(j, "shrink"), "done")));
	assert_non_null(strstr(json_string_value(json_object_get(json_object_get(j, "shrink"), "note")), "not a JPEG"));
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "shrink"), "why")), "not_jpeg");
#else
	assert_int_equal(freq(d1, "owner", "POST", "/api/attachments", "table=people&id=p1&name=notes.txt&shrink=1", "plain",
			      5, &rep), 400);
	assert_string_equal(jstr(&rep, "code", &j), "no_shrink");
	json_decref(j);
	free(rep.body);
	assert_int_equal(freq(d1, "owner", "POST", "/api/attachments", "table=people&id=p1&name=notes.txt", "plain", 5, &rep),
			 201);
	jstr(&rep, "shrink", &j);
#endif
	json_decref(j);
	free(rep.body);
	static const char bad[] = "\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\x12\x34";
	assert_int_equal(freq(d1, "owner", "POST", "/api/attachments", "table=people&id=p1&name=cut.jpg&shrink=1", bad,
			      sizeof(bad) - 1, &rep), 400);
#ifndef _WIN32
	assert_string_equal(jstr(&rep, "code", &j), "damaged");
#else
	assert_string_equal(jstr(&rep, "code", &j), "no_shrink");
#endif
	json_decref(j);
	free(rep.body);
	/* the record lists its files; d1 does not see d2's record's */
	assert_int_equal(req(d1, "GET", "/api/attachments", "table=people&id=p1", NULL, &j), 200);
	k = json_object_get(j, "attachments");
	assert_int_equal(json_array_size(k), 2); /* sheet 1.jpg, notes.txt */
	assert_string_equal(json_string_value(json_object_get(json_array_get(k, 0), "name")), "sheet 1.jpg");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(k, 0), "size")), sizeof(photo));
	assert_int_equal(json_integer_value(json_object_get(json_array_get(k, 0), "percent")), 100);
	json_decref(j);
	assert_int_equal(req(d1, "GET", "/api/attachments", "table=people&id=p2", NULL, NULL), 404);
	/* contents: byte-identical, a photo shown inline, a download saved; another district's is not here */
	snprintf(path, sizeof(path), "/api/attachments/%s/content", id1);
	assert_int_equal(freq(d1, "viewer", "GET", path, NULL, NULL, 0, &rep), 200);
	assert_int_equal(rep.body_len, sizeof(photo));
	assert_memory_equal(rep.body, photo, sizeof(photo));
	assert_string_equal(rep.ctype, "image/jpeg");
	assert_string_equal(rep.filename, "sheet 1.jpg");
	assert_true(rep.inline_file);
	free(rep.body);
	assert_int_equal(freq(d1, "owner", "GET", path, "download=1", NULL, 0, &rep), 200);
	assert_false(rep.inline_file);
	free(rep.body);
	snprintf(path, sizeof(path), "/api/attachments/%s/content", id2);
	assert_int_equal(freq(d1, "owner", "GET", path, NULL, NULL, 0, &rep), 404);
	free(rep.body);
	assert_int_equal(freq(hq, "district:d1", "GET", path, NULL, NULL, 0, &rep), 404);
	free(rep.body);
	assert_int_equal(freq(hq, "owner", "GET", path, NULL, NULL, 0, &rep), 200);
	assert_string_equal(rep.ctype, "application/pdf");
	assert_false(rep.inline_file); /* only photos are shown in the page */
	free(rep.body);
	/* a d2 row naming d1's photo by its hash: d2's account at HQ does not get d1's bytes */
	char sql[300];
	snprintf(sql, sizeof(sql), "INSERT INTO attachments(id, district_id, hash, size, media_type, name) SELECT"
				   " 'guess-d2-1', 'd2', hash, size, media_type, 'x.jpg' FROM attachments WHERE id = '%s'", id1);
	exec(sql);
	assert_int_equal(freq(hq, "district:d2", "GET", "/api/attachments/guess-d2-1/content", NULL, NULL, 0, &rep), 404);
	assert_string_equal(jstr(&rep, "code", &j), "not_shown");
	json_decref(j);
	free(rep.body);
	assert_int_equal(freq(hq, "owner", "GET", "/api/attachments/guess-d2-1/content", NULL, NULL, 0, &rep), 200);
	assert_int_equal(rep.body_len, sizeof(photo));
	free(rep.body);
	exec("DELETE FROM attachments WHERE id = 'guess-d2-1'");
	/* a row whose file is not here: listed as missing, its content refused with the reason */
	exec("INSERT INTO attachments(id, district_id, hash, size, media_type, name, owner_table, owner_id) VALUES"
	     " ('gone-file-1', 'd1', '" "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef', 5000, 'image/jpeg',"
	     " 'far.jpg', 'people', 'p1')");
	assert_int_equal(req(d1, "GET", "/api/attachments", "missing=1", NULL, &j), 200);
	assert_int_equal(json_integer_value(json_object_get(j, "total")), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(j, "attachments"), 0), "state")),
			    "missing");
	json_decref(j);
	assert_int_equal(freq(d1, "owner", "GET", "/api/attachments/gone-file-1/content", NULL, NULL, 0, &rep), 404);
	assert_string_equal(jstr(&rep, "code", &j), "missing");
	json_decref(j);
	free(rep.body);
	assert_int_equal(req(d1, "POST", "/api/attachments/gone-file-1/fetch", NULL, "{}", &j), 200);
	assert_true(json_is_true(json_object_get(j, "asked")));
	json_decref(j);
	/* the session tells the upload form the limit and the shrink default */
	assert_int_equal(req(d1, "GET", "/api/session", NULL, NULL, &j), 200);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "attach"), "max_bytes")), 10485760);
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scope),
		cmocka_unit_test(test_schema_forms),
		cmocka_unit_test(test_search_and_labels),
		cmocka_unit_test(test_writes_and_history),
		cmocka_unit_test(test_import_preview),
		cmocka_unit_test(test_hq),
		cmocka_unit_test(test_review_labels),
		cmocka_unit_test(test_attachments),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
