/* The HQ report: figures on a small hand-built organisation checked against values worked
 * out by hand, then on randomly generated organisations against counts kept while
 * generating (many seeds; a failure prints its seed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "zila/office/report.h"

extern const char zila_default_schema_sql[];

static void exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK)
		fprintf(stderr, "sql failed: %s\n%s\n", msg, sql);
	sqlite3_free(msg);
	assert_int_equal(rc, SQLITE_OK);
}

static void execf(sqlite3 *db, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *sql = sqlite3_vmprintf(fmt, ap);
	va_end(ap);
	exec(db, sql);
	sqlite3_free(sql);
}

static sqlite3 *new_db(void)
{
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	exec(db, zila_default_schema_sql);
	exec(db, "PRAGMA foreign_keys = ON;"
		 "INSERT INTO states (id, name) VALUES ('s1', 'Bihar');"
		 "INSERT INTO org_units (id, level, name) VALUES ('u-state', 'state', 'Bihar');"
		 "INSERT INTO posts (id, name, level) VALUES ('post', 'Booth President', 'booth');");
	return db;
}

/* --- hand-built data ---------------------------------------------------------------- */

/* Alpha: 10 booths under block A1 (blocks A1, A2); agents at booths 0-5 (booth 0 twice);
 * committees at booths 0, 2, 4; 5 office bearers, 2 inactive and 1 to replace; a target of
 * 100 on the district unit (block targets 60 + 40 below it are not added); 31 sign-ups,
 * one of them after today; reports for 2026-11: A1 submitted, A2 draft, and A1 accepted
 * for 2026-10.
 * Beta: 4 booths under B1 (blocks B1, B2, B3); an agent at booth 0; no committee; 2 active
 * bearers; targets on its three blocks only, 6 each; 10 sign-ups; reports for 2026-11:
 * B1 accepted, B2 submitted.
 * The drive runs 2026-11-01 to 2026-11-30 (30 days); on 2026-11-15 15 days have passed:
 * Alpha is due ceil(100 * 15 / 30) = 50 and has 30 (behind, 0.60); Beta is due
 * ceil(18 * 15 / 30) = 9 and has 10 (on track, 1.11). */
static void build_hand(sqlite3 *db)
{
	exec(db, "INSERT INTO districts (id, state_id, name, name_local, code) VALUES "
		 "('dA', 's1', 'Alpha', 'अल्फ़ा', 'A'), ('dB', 's1', 'Beta', 'बीटा', 'B'), "
		 "('dC', 's1', 'Gamma', NULL, 'C');"
		 "INSERT INTO org_units (id, level, parent_id, district_id, name) VALUES "
		 "('uA', 'district', 'u-state', 'dA', 'Alpha'), ('uB', 'district', 'u-state', 'dB', 'Beta'),"
		 "('A1', 'block', 'uA', 'dA', 'A1'), ('A2', 'block', 'uA', 'dA', 'A2'),"
		 "('B1', 'block', 'uB', 'dB', 'B1'), ('B2', 'block', 'uB', 'dB', 'B2'),"
		 "('B3', 'block', 'uB', 'dB', 'B3');"
		 "INSERT INTO drives (id, name, starts_on, deadline) VALUES "
		 "('drv', 'Drive', '2026-11-01', '2026-11-30');"
		 "INSERT INTO drive_targets (district_id, drive_id, org_unit_id, target) VALUES "
		 "('dA', 'drv', 'uA', 100), ('dA', 'drv', 'A1', 60), ('dA', 'drv', 'A2', 40),"
		 "('dB', 'drv', 'B1', 6), ('dB', 'drv', 'B2', 6), ('dB', 'drv', 'B3', 6);");
	for (int i = 0; i < 10; i++)
		execf(db, "INSERT INTO org_units (id, level, parent_id, district_id, name) VALUES "
			  "('bA%d', 'booth', 'A1', 'dA', 'booth')",
		      i);
	for (int i = 0; i < 4; i++)
		execf(db, "INSERT INTO org_units (id, level, parent_id, district_id, name) VALUES "
			  "('bB%d', 'booth', 'B1', 'dB', 'booth')",
		      i);
	for (int i = 0; i < 31; i++)
		execf(db, "INSERT INTO people (id, district_id, name) VALUES ('pA%d', 'dA', 'a')", i);
	for (int i = 0; i < 10; i++)
		execf(db, "INSERT INTO people (id, district_id, name) VALUES ('pB%d', 'dB', 'b')", i);
	for (int i = 0; i < 6; i++)
		execf(db, "INSERT INTO booth_agents (district_id, booth_id, person_id) VALUES "
			  "('dA', 'bA%d', 'pA%d')",
		      i, i);
	exec(db, "INSERT INTO booth_agents (district_id, booth_id, person_id) VALUES "
		 "('dA', 'bA0', 'pA9'), ('dB', 'bB0', 'pB0');"
		 "INSERT INTO booth_committees (district_id, booth_id) VALUES "
		 "('dA', 'bA0'), ('dA', 'bA2'), ('dA', 'bA4');"
		 "INSERT INTO office_bearers (district_id, person_id, post_id, org_unit_id, status) "
		 "VALUES ('dA', 'pA0', 'post', 'bA0', 'active'), ('dA', 'pA1', 'post', 'bA1', 'inactive'),"
		 "('dA', 'pA2', 'post', 'bA2', 'inactive'), ('dA', 'pA3', 'post', 'bA3', 'to_replace'),"
		 "('dA', 'pA4', 'post', 'bA4', 'active'), ('dB', 'pB0', 'post', 'bB0', 'active'),"
		 "('dB', 'pB1', 'post', 'bB1', 'active');"
		 "INSERT INTO reports (district_id, org_unit_id, coordinator_id, period, status) VALUES "
		 "('dA', 'A1', 'pA0', '2026-11', 'submitted'), ('dA', 'A2', 'pA1', '2026-11', 'draft'),"
		 "('dA', 'A1', 'pA0', '2026-10', 'accepted'), ('dB', 'B1', 'pB0', '2026-11', 'accepted'),"
		 "('dB', 'B2', 'pB1', '2026-11', 'submitted');");
	for (int i = 0; i < 31; i++)
		execf(db, "INSERT INTO signups (district_id, drive_id, person_id, signed_on) VALUES "
			  "('dA', 'drv', 'pA%d', '%s')",
		      i, i == 30 ? "2026-11-20" : "2026-11-05");
	for (int i = 0; i < 10; i++)
		execf(db, "INSERT INTO signups (district_id, drive_id, person_id, signed_on) VALUES "
			  "('dB', 'drv', 'pB%d', '2026-11-10')",
		      i);
}

static void test_hand_figures(void **state)
{
	(void)state;
	sqlite3 *db = new_db();
	build_hand(db);
	struct zila_report rep;
	struct zila_report_opts o = { .today = "2026-11-15" };
	assert_int_equal(zila_report_build(db, &o, &rep, NULL), 0);
	assert_string_equal(rep.period, "2026-11");
	/* Gamma holds no data and is not listed */
	assert_int_equal(rep.nrows, 2);

	const struct zila_report_row *a = &rep.rows[0], *b = &rep.rows[1];
	assert_string_equal(a->name, "Alpha"); /* most behind first */
	assert_string_equal(a->drive_id, "drv");
	assert_int_equal(a->target, 100);
	assert_int_equal(a->signups, 30);
	assert_int_equal(a->expected, 50);
	assert_int_equal(a->days_left, 15);
	assert_string_equal(a->drive_status, "behind");
	assert_int_equal(a->booths, 10);
	assert_int_equal(a->booths_with_agent, 6);
	assert_int_equal(a->booths_with_committee, 3);
	assert_int_equal(zila_report_pct(a->booths_with_agent, a->booths), 60);
	assert_int_equal(a->bearers, 5);
	assert_int_equal(a->bearers_inactive, 2);
	assert_int_equal(a->bearers_to_replace, 1);
	assert_int_equal(a->reports_due, 2);
	assert_int_equal(a->reports_submitted, 1);
	assert_string_equal(a->last_sync, "unknown");

	assert_string_equal(b->name, "Beta");
	assert_int_equal(b->target, 18);
	assert_int_equal(b->signups, 10);
	assert_int_equal(b->expected, 9);
	assert_string_equal(b->drive_status, "on track");
	assert_int_equal(b->booths, 4);
	assert_int_equal(b->booths_with_agent, 1);
	assert_int_equal(b->booths_with_committee, 0);
	assert_int_equal(b->bearers, 2);
	assert_int_equal(b->bearers_inactive + b->bearers_to_replace, 0);
	assert_int_equal(b->reports_due, 3);
	assert_int_equal(b->reports_submitted, 2);

	const struct zila_report_row *t = &rep.total;
	assert_int_equal(t->target, 118);
	assert_int_equal(t->signups, 40);
	assert_int_equal(t->expected, 59);
	assert_string_equal(t->drive_status, "behind");
	assert_int_equal(t->booths, 14);
	assert_int_equal(t->booths_with_agent, 7);
	assert_int_equal(t->booths_with_committee, 3);
	assert_int_equal(t->bearers_inactive, 2);
	assert_int_equal(t->bearers_to_replace, 1);
	assert_int_equal(t->reports_due, 5);
	assert_int_equal(t->reports_submitted, 3);
	zila_report_release(&rep);

	/* another period, after the deadline, one district by name */
	struct zila_report_opts o2 = { .today = "2026-12-05", .period = "2026-10",
				       .district = "beta" };
	assert_int_equal(zila_report_build(db, &o2, &rep, NULL), 0);
	assert_int_equal(rep.nrows, 1);
	assert_string_equal(rep.rows[0].name, "Beta");
	assert_string_equal(rep.rows[0].drive_status, "overdue");
	assert_int_equal(rep.rows[0].expected, 18);
	assert_int_equal(rep.rows[0].days_left, -5);
	assert_int_equal(rep.rows[0].reports_submitted, 0);
	zila_report_release(&rep);

	struct zila_report_opts o3 = { .today = "2026-12-05", .period = "2026-10", .district = "A" };
	assert_int_equal(zila_report_build(db, &o3, &rep, NULL), 0);
	assert_int_equal(rep.rows[0].reports_submitted, 1);
	assert_int_equal(rep.rows[0].signups, 31);
	zila_report_release(&rep);

	/* a district with no data is still reported when asked for by name */
	struct zila_report_opts o4 = { .today = "2026-11-15", .district = "dC" };
	assert_int_equal(zila_report_build(db, &o4, &rep, NULL), 0);
	assert_int_equal(rep.nrows, 1);
	assert_string_equal(rep.rows[0].drive_status, "no target");
	zila_report_release(&rep);

	struct zila_report_opts bad = { .district = "nowhere" };
	assert_int_equal(zila_report_build(db, &bad, &rep, NULL), ZILA_ENOTFOUND);
	struct zila_report_opts badp = { .period = "2026-13" };
	assert_int_equal(zila_report_build(db, &badp, &rep, NULL), ZILA_EINVAL);
	/* dates and months as the importer reads them (one parser in the office layer) */
	struct zila_report_opts in = { .today = "15/11/2026", .period = "10-2026" };
	assert_int_equal(zila_report_build(db, &in, &rep, NULL), 0);
	assert_string_equal(rep.today, "2026-11-15");
	assert_string_equal(rep.period, "2026-10");
	zila_report_release(&rep);
	struct zila_report_opts badd = { .today = "2026-02-30" };
	assert_int_equal(zila_report_build(db, &badd, &rep, NULL), ZILA_EINVAL);
	/* two districts of one name: the name is ambiguous, the id is not */
	exec(db, "INSERT INTO states (id, name) VALUES ('s2', 'Jharkhand');"
		 "INSERT INTO districts (id, state_id, name) VALUES ('dE', 's2', 'Alpha')");
	struct zila_report_opts amb = { .today = "2026-11-15", .district = "alpha" };
	assert_int_equal(zila_report_build(db, &amb, &rep, NULL), ZILA_EINVAL);
	amb.district = "dA";
	assert_int_equal(zila_report_build(db, &amb, &rep, NULL), 0);
	assert_int_equal(rep.nrows, 1);
	assert_string_equal(rep.rows[0].district_id, "dA");
	zila_report_release(&rep);
	sqlite3_close(db);
}

static void test_last_sync_from_peers(void **state)
{
	(void)state;
	sqlite3 *db = new_db();
	build_hand(db);
	/* the report reads user tables only: a peer table in the replica is not its source */
	exec(db, "CREATE TABLE zila_peers (name TEXT, district_id TEXT, last_sync INTEGER);"
		 "INSERT INTO zila_peers VALUES ('laptop-x', 'dA', 1800000000);");
	struct zila_report rep;
	struct zila_report_opts o = { .today = "2026-11-15" };
	assert_int_equal(zila_report_build(db, &o, &rep, NULL), 0);
	assert_string_equal(rep.rows[0].last_sync, "unknown");
	zila_report_release(&rep);

	/* the caller's list, newest first per district, never last */
	const struct zila_report_sync syncs[] = {
		{ "laptop-a2", "dA", 1700000000 },
		{ "laptop-b", "dX", 1750000000 },
		{ "laptop-a3", "dA", 0 },
		{ "laptop-a", "dA", 1800000000 },
	};
	o.syncs = syncs;
	o.nsyncs = 4;
	assert_int_equal(zila_report_build(db, &o, &rep, NULL), 0);
	assert_string_equal(rep.rows[0].last_sync, "laptop-a 2027-01-15 08:00 UTC, laptop-a2 "
						    "2023-11-14 22:13 UTC, laptop-a3 never");
	assert_string_equal(rep.rows[1].last_sync, "no device seen");
	zila_report_release(&rep);
	sqlite3_close(db);
}

/* --- generated data ----------------------------------------------------------------- */

static uint64_t rng;
static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

struct expect {
	int64_t booths, agents, committees, bearers, inactive, to_replace, target, signups;
	int64_t blocks, reports;
};

static void test_generated(void **state)
{
	(void)state;
	const char *s = getenv("ZILA_SEEDS");
	int nseeds = s ? atoi(s) / 10 : 50;
	if (nseeds < 5)
		nseeds = 5;
	for (int seed = 1; seed <= nseeds; seed++) {
		rng = 0x9e3779b97f4a7c15ULL * (uint64_t)seed;
		sqlite3 *db = new_db();
		exec(db, "BEGIN; INSERT INTO drives (id, name, starts_on, deadline) VALUES "
			 "('drv', 'Drive', '2026-10-01', '2026-12-29');");
		int nd = 1 + (int)rnd(6);
		struct expect ex[6];
		memset(ex, 0, sizeof(ex));
		for (int d = 0; d < nd; d++) {
			struct expect *e = &ex[d];
			execf(db, "INSERT INTO districts (id, state_id, name) VALUES ('d%d', 's1', 'D%d');"
				  "INSERT INTO org_units (id, level, parent_id, district_id, name) VALUES "
				  "('u%d', 'district', 'u-state', 'd%d', 'x');",
			      d, d, d, d);
			e->blocks = 1 + rnd(4);
			for (int b = 0; b < e->blocks; b++) {
				execf(db, "INSERT INTO org_units (id, level, parent_id, district_id, name) "
					  "VALUES ('k%d_%d', 'block', 'u%d', 'd%d', 'x');",
				      d, b, d, d);
				int u = (int)rnd(4);
				static const char *st[] = { "draft", "submitted", "accepted", NULL };
				if (st[u] != NULL) {
					execf(db, "INSERT INTO people (id, district_id, name) VALUES "
						  "('c%d_%d', 'd%d', 'c');"
						  "INSERT INTO reports (district_id, org_unit_id, coordinator_id, "
						  "period, status) VALUES ('d%d', 'k%d_%d', 'c%d_%d', '2026-11', '%s')",
					      d, b, d, d, d, b, d, b, st[u]);
					e->reports += u == 1 || u == 2;
				}
			}
			e->booths = rnd(40);
			int npeople = 1 + (int)rnd(60);
			for (int p = 0; p < npeople; p++)
				execf(db, "INSERT INTO people (id, district_id, name) VALUES "
					  "('p%d_%d', 'd%d', 'p')",
				      d, p, d);
			for (int k = 0; k < e->booths; k++) {
				execf(db, "INSERT INTO org_units (id, level, parent_id, district_id, name) "
					  "VALUES ('b%d_%d', 'booth', 'k%d_0', 'd%d', 'x')",
				      d, k, d, d);
				int na = (int)rnd(3);
				for (int a = 0; a < na && a < npeople; a++)
					execf(db, "INSERT INTO booth_agents (district_id, booth_id, "
						  "person_id) VALUES ('d%d', 'b%d_%d', 'p%d_%d')",
					      d, d, k, d, a);
				e->agents += na > 0;
				if (rnd(2)) {
					execf(db, "INSERT INTO booth_committees (district_id, booth_id) "
						  "VALUES ('d%d', 'b%d_%d')",
					      d, d, k);
					e->committees++;
				}
				static const char *bs[] = { "active", "active", "inactive", "to_replace" };
				int w = (int)rnd(4);
				execf(db, "INSERT INTO office_bearers (district_id, person_id, post_id, "
					  "org_unit_id, status) VALUES ('d%d', 'p%d_0', 'post', 'b%d_%d', '%s')",
				      d, d, d, k, bs[w]);
				e->bearers++;
				e->inactive += w == 2;
				e->to_replace += w == 3;
			}
			e->target = 1 + rnd(80);
			execf(db, "INSERT INTO drive_targets (district_id, drive_id, org_unit_id, "
				  "target) VALUES ('d%d', 'drv', 'u%d', %d)",
			      d, d, (int)e->target);
			e->signups = rnd((uint32_t)npeople + 1);
			for (int p = 0; p < e->signups; p++)
				execf(db, "INSERT INTO signups (district_id, drive_id, person_id, "
					  "signed_on) VALUES ('d%d', 'drv', 'p%d_%d', '2026-10-15')",
				      d, d, p);
		}
		exec(db, "COMMIT");
		struct zila_report rep;
		struct zila_report_opts o = { .today = "2026-11-15" };
		assert_int_equal(zila_report_build(db, &o, &rep, NULL), 0);
		assert_int_equal(rep.nrows, (size_t)nd);
		struct expect tot = { 0 };
		for (size_t i = 0; i < rep.nrows; i++) {
			const struct zila_report_row *w = &rep.rows[i];
			int d = atoi(w->district_id + 1);
			struct expect *e = &ex[d];
			/* 46 of the drive's 90 days have passed on 2026-11-15 */
			int64_t expected = (e->target * 46 + 89) / 90;
			if (w->booths != e->booths || w->booths_with_agent != e->agents ||
			    w->booths_with_committee != e->committees || w->bearers != e->bearers ||
			    w->bearers_inactive != e->inactive || w->bearers_to_replace != e->to_replace ||
			    w->target != e->target || w->signups != e->signups ||
			    w->expected != expected || w->reports_due != e->blocks ||
			    w->reports_submitted != e->reports)
				fail_msg("seed %d: district %s differs from the generated counts", seed,
					 w->district_id);
			const char *want = e->signups >= e->target ? "done"
					   : e->signups >= expected ? "on track"
								     : "behind";
			if (strcmp(w->drive_status, want) != 0)
				fail_msg("seed %d: district %s is '%s', want '%s'", seed, w->district_id,
					 w->drive_status, want);
			if (i > 0 && rep.rows[i - 1].progress > w->progress)
				fail_msg("seed %d: rows are not sorted most behind first", seed);
			tot.booths += e->booths;
			tot.signups += e->signups;
			tot.target += e->target;
			tot.reports += e->reports;
		}
		assert_int_equal(rep.total.booths, tot.booths);
		assert_int_equal(rep.total.signups, tot.signups);
		assert_int_equal(rep.total.target, tot.target);
		assert_int_equal(rep.total.reports_submitted, tot.reports);
		zila_report_release(&rep);
		sqlite3_close(db);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hand_figures),
		cmocka_unit_test(test_last_sync_from_peers),
		cmocka_unit_test(test_generated),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
