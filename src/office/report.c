/* The HQ progress report (see zila/report.h): a handful of counting queries per district
 * over the default schema, then a sort by how far behind each district is. */
#include "zila/office/report.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "office_int.h"
#include "zila/clock.h"

static int64_t days_from_civil(int y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* A date as office staff write it (office_parse_date) to days since 1970, and its
 * YYYY-MM-DD form in norm (may be NULL); false when malformed. */
static bool parse_day(const char *s, int64_t *out, char norm[OFFICE_NORM_MAX])
{
	char d[OFFICE_NORM_MAX];
	if (s == NULL || !office_parse_date(s, strlen(s), d))
		return false;
	*out = days_from_civil(atoi(d), atoi(d + 5), atoi(d + 8));
	if (norm != NULL)
		memcpy(norm, d, sizeof(d));
	return true;
}

int zila_report_pct(int64_t n, int64_t d)
{
	return d > 0 ? (int)(n * 100 / d) : 0;
}

struct q {
	sqlite3 *db;
	struct zila_error *err;
};

/* Runs sql with up to three text parameters and reads the first row's integer columns
 * into out[0..nout). A query that returns no row gives zeros. */
static int ints(struct q *q, const char *sql, const char *a, const char *b, const char *c,
		int64_t *out, int nout)
{
	sqlite3_stmt *st = NULL;
	int r = 0;
	for (int i = 0; i < nout; i++)
		out[i] = 0;
	if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK) {
		r = zila_error_set(q->err, ZILA_ESCHEMA,
				   "cannot compute the report (does the replica have the default "
				   "schema?): %s",
				   sqlite3_errmsg(q->db));
		goto out;
	}
	const char *p[3] = { a, b, c };
	for (int i = 0; i < 3 && i < sqlite3_bind_parameter_count(st); i++)
		sqlite3_bind_text(st, i + 1, p[i], -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		for (int i = 0; i < nout; i++)
			out[i] = sqlite3_column_int64(st, i);
	} else if (rc != SQLITE_DONE) {
		r = zila_error_set(q->err, ZILA_EDB, "cannot compute the report: %s",
				   sqlite3_errmsg(q->db));
	}
out:
	sqlite3_finalize(st);
	return r;
}

static void copy_col(char *dst, size_t n, sqlite3_stmt *st, int col)
{
	const unsigned char *v = sqlite3_column_text(st, col);
	snprintf(dst, n, "%s", v ? (const char *)v : "");
}

static int level_rank(const char *level)
{
	if (strcmp(level, "state") == 0)
		return 0;
	if (strcmp(level, "district") == 0)
		return 1;
	if (strcmp(level, "block") == 0)
		return 2;
	if (strcmp(level, "panchayat") == 0 || strcmp(level, "ward") == 0)
		return 3;
	return 4;
}

/* The drive for a district, its target and sign-ups. */
static int drive_figures(struct q *q, const struct zila_report_opts *o, const char *today,
			 int64_t today_days, struct zila_report_row *row)
{
	sqlite3_stmt *st = NULL;
	int r = 0;
	const char *sql =
		o->drive != NULL
			? "SELECT id, name, coalesce(starts_on, ''), coalesce(deadline, '') FROM drives "
			  "WHERE id = ?3"
			: "SELECT v.id, v.name, coalesce(v.starts_on, ''), coalesce(v.deadline, '') "
			  "FROM drives v WHERE (v.district_id IS NULL OR v.district_id = ?1) "
			  "AND (v.starts_on IS NULL OR v.starts_on <= ?2) "
			  "ORDER BY EXISTS (SELECT 1 FROM drive_targets t WHERE t.drive_id = v.id "
			  "AND t.district_id = ?1) DESC, v.starts_on DESC, v.id LIMIT 1";
	row->drive_status = "no drive";
	row->progress = HUGE_VAL;
	if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK) {
		r = zila_error_set(q->err, ZILA_ESCHEMA, "cannot compute the report: %s",
				   sqlite3_errmsg(q->db));
		goto out;
	}
	if (o->drive != NULL)
		sqlite3_bind_text(st, 3, o->drive, -1, SQLITE_STATIC);
	else {
		sqlite3_bind_text(st, 1, row->district_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, today, -1, SQLITE_STATIC);
	}
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		goto out;
	if (rc != SQLITE_ROW) {
		r = zila_error_set(q->err, ZILA_EDB, "cannot compute the report: %s",
				   sqlite3_errmsg(q->db));
		goto out;
	}
	copy_col(row->drive_id, sizeof(row->drive_id), st, 0);
	copy_col(row->drive_name, sizeof(row->drive_name), st, 1);
	copy_col(row->starts_on, sizeof(row->starts_on), st, 2);
	copy_col(row->deadline, sizeof(row->deadline), st, 3);
	sqlite3_finalize(st);
	st = NULL;

	/* The target is set at the top level that has one (the district unit, else the sum
	 * over its blocks, ...), so that targets split down the tree are not counted twice. */
	if (sqlite3_prepare_v2(q->db,
			       "SELECT u.level, sum(t.target) FROM drive_targets t JOIN org_units u "
			       "ON u.id = t.org_unit_id WHERE t.drive_id = ?1 AND t.district_id = ?2 "
			       "GROUP BY u.level",
			       -1, &st, NULL) != SQLITE_OK) {
		r = zila_error_set(q->err, ZILA_ESCHEMA, "cannot compute the report: %s",
				   sqlite3_errmsg(q->db));
		goto out;
	}
	sqlite3_bind_text(st, 1, row->drive_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, row->district_id, -1, SQLITE_STATIC);
	int best = 99;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *level = (const char *)sqlite3_column_text(st, 0);
		int rank = level_rank(level ? level : "");
		int64_t t = sqlite3_column_int64(st, 1);
		if (rank < best) {
			best = rank;
			row->target = t;
		} else if (rank == best) {
			row->target += t;
		}
	}
	if (rc != SQLITE_DONE) {
		r = zila_error_set(q->err, ZILA_EDB, "cannot compute the report: %s",
				   sqlite3_errmsg(q->db));
		goto out;
	}
	r = ints(q,
		 "SELECT count(*) FROM signups WHERE drive_id = ?1 AND district_id = ?2 "
		 "AND (signed_on IS NULL OR signed_on <= ?3)",
		 row->drive_id, row->district_id, today, &row->signups, 1);
	if (r != 0)
		goto out;

	int64_t start, end;
	bool has_start = parse_day(row->starts_on, &start, NULL);
	bool has_end = parse_day(row->deadline, &end, NULL);
	row->days_left = has_end ? end - today_days : 0;
	if (has_start && has_end && end >= start) {
		int64_t dur = end - start + 1;
		int64_t el = today_days - start + 1;
		el = el < 0 ? 0 : (el > dur ? dur : el);
		row->expected = (row->target * el + dur - 1) / dur;
	} else if (has_end && today_days > end) {
		row->expected = row->target;
	}
	if (row->target <= 0) {
		row->drive_status = "no target";
	} else if (row->signups >= row->target) {
		row->drive_status = "done";
		row->progress = (double)row->signups / (double)row->target;
	} else if (has_end && today_days > end) {
		row->drive_status = "overdue";
		row->progress = (double)row->signups / (double)row->target;
	} else if (row->signups >= row->expected) {
		row->drive_status = "on track";
		row->progress = row->expected > 0 ? (double)row->signups / (double)row->expected
						  : 1e6;
	} else {
		row->drive_status = "behind";
		row->progress = (double)row->signups / (double)row->expected;
	}
out:
	sqlite3_finalize(st);
	return r;
}

static void format_time(char *out, size_t n, int64_t v)
{
	time_t t = (time_t)(v > 100000000000LL ? v / 1000 : v); /* ms or s */
	struct tm tm;
	if (gmtime_r(&t, &tm) != NULL)
		strftime(out, n, "%Y-%m-%d %H:%M UTC", &tm);
	else
		snprintf(out, n, "%lld", (long long)v);
}

/* Per device of the district, its last completed sync, newest first, from what the caller
 * gave; "unknown" when it gave nothing (no daemon ever ran). */
static void last_sync(const struct zila_report_opts *o, struct zila_report_row *row)
{
	snprintf(row->last_sync, sizeof(row->last_sync), "unknown");
	if (o->syncs == NULL)
		return;
	size_t len = 0;
	int64_t below = INT64_MAX; /* list newest first, in the caller's order among equals */
	size_t after = 0;
	for (;;) {
		const struct zila_report_sync *next = NULL;
		size_t next_i = 0;
		for (size_t i = 0; i < o->nsyncs; i++) {
			const struct zila_report_sync *s = &o->syncs[i];
			if (s->district_id == NULL || strcmp(s->district_id, row->district_id) != 0)
				continue;
			if (s->last_sync > below || (s->last_sync == below && i < after))
				continue;
			if (next == NULL || s->last_sync > next->last_sync) {
				next = s;
				next_i = i;
			}
		}
		if (next == NULL)
			break;
		below = next->last_sync;
		after = next_i + 1;
		char when[64];
		if (next->last_sync <= 0)
			snprintf(when, sizeof(when), "never");
		else
			format_time(when, sizeof(when), next->last_sync);
		int k = snprintf(row->last_sync + len, sizeof(row->last_sync) - len, "%s%s %s",
				 len ? ", " : "", next->device ? next->device : "?", when);
		if (k < 0 || (size_t)k >= sizeof(row->last_sync) - len)
			break;
		len += (size_t)k;
	}
	if (len == 0)
		snprintf(row->last_sync, sizeof(row->last_sync), "no device seen");
}

static int cmp_rows(const void *a, const void *b)
{
	const struct zila_report_row *x = a, *y = b;
	if (x->progress != y->progress)
		return x->progress < y->progress ? -1 : 1;
	int px = zila_report_pct(x->booths_with_agent, x->booths);
	int py = zila_report_pct(y->booths_with_agent, y->booths);
	if (px != py)
		return px < py ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int district_row(struct q *q, const struct zila_report_opts *o, const char *today,
			int64_t today_days, const char *period, struct zila_report_row *row)
{
	int64_t v[3];
	const char *d = row->district_id;
	int r = drive_figures(q, o, today, today_days, row);
	if (r != 0)
		return r;
	r = ints(q,
		 "SELECT count(*), count(a.b), count(c.b) FROM org_units u "
		 "LEFT JOIN (SELECT DISTINCT booth_id AS b FROM booth_agents WHERE district_id = ?1) a "
		 "ON a.b = u.id "
		 "LEFT JOIN (SELECT DISTINCT booth_id AS b FROM booth_committees WHERE district_id = "
		 "?1) c ON c.b = u.id WHERE u.level = 'booth' AND u.district_id = ?1",
		 d, NULL, NULL, v, 3);
	if (r != 0)
		return r;
	row->booths = v[0];
	row->booths_with_agent = v[1];
	row->booths_with_committee = v[2];
	r = ints(q,
		 "SELECT count(*), coalesce(sum(status = 'inactive'), 0), "
		 "coalesce(sum(status = 'to_replace'), 0) FROM office_bearers WHERE district_id = ?1",
		 d, NULL, NULL, v, 3);
	if (r != 0)
		return r;
	row->bearers = v[0];
	row->bearers_inactive = v[1];
	row->bearers_to_replace = v[2];
	r = ints(q,
		 "SELECT count(*), count(r.u) FROM org_units b LEFT JOIN (SELECT DISTINCT "
		 "org_unit_id AS u FROM reports WHERE district_id = ?1 AND period = ?2 AND status IN "
		 "('submitted', 'accepted')) r ON r.u = b.id WHERE b.level = 'block' AND "
		 "b.district_id = ?1",
		 d, period, NULL, v, 2);
	if (r != 0)
		return r;
	row->reports_due = v[0];
	row->reports_submitted = v[1];
	last_sync(o, row);
	return 0;
}

int zila_report_build(sqlite3 *db, const struct zila_report_opts *o, struct zila_report *out,
		      struct zila_error *err)
{
	int r = ZILA_EINVAL;
	sqlite3_stmt *st = NULL;
	struct q q = { db, err };
	struct zila_report rep;
	int64_t today_days;
	char *district = NULL; /* the id --district names */
	memset(out, 0, sizeof(*out));
	memset(&rep, 0, sizeof(rep));

	char norm[OFFICE_NORM_MAX];
	if (o->today != NULL) {
		if (!parse_day(o->today, &today_days, norm)) {
			r = zila_error_set(err, ZILA_EINVAL, "malformed date '%s' (want YYYY-MM-DD)",
					   o->today);
			goto out;
		}
		snprintf(rep.today, sizeof(rep.today), "%.10s", norm);
	} else {
		time_t now = (time_t)zila_wall_s();
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(rep.today, sizeof(rep.today), "%Y-%m-%d", &tm);
		(void)parse_day(rep.today, &today_days, NULL);
	}
	if (o->period != NULL) {
		if (!office_parse_period(o->period, strlen(o->period), norm)) {
			r = zila_error_set(err, ZILA_EINVAL, "malformed period '%s' (want YYYY-MM)",
					   o->period);
			goto out;
		}
		snprintf(rep.period, sizeof(rep.period), "%.7s", norm);
	} else {
		snprintf(rep.period, sizeof(rep.period), "%.7s", rep.today);
	}

	/* --district names it the way the importer reads a district cell */
	if (o->district != NULL) {
		sqlite3_stmt *find = NULL;
		int dr = office_district_resolve(db, &find, o->district, &district);
		sqlite3_finalize(find);
		if (dr == ZILA_ENOTFOUND) {
			r = zila_error_set(err, ZILA_ENOTFOUND, "unknown district '%s'", o->district);
			goto out;
		}
		if (dr == ZILA_EEXIST) {
			r = zila_error_set(err, ZILA_EINVAL, "ambiguous district '%s' (use its id)",
					   o->district);
			goto out;
		}
		if (dr != 0) {
			r = zila_error_set(err, ZILA_ESCHEMA,
					   "cannot compute the report (does the replica have the "
					   "default schema?): %s",
					   sqlite3_errmsg(db));
			goto out;
		}
	}
	const char *sql =
		district != NULL
			? "SELECT id, name, coalesce(name_local, '') FROM districts WHERE id = ?1"
			: "SELECT id, name, coalesce(name_local, '') FROM districts d WHERE "
			  "EXISTS (SELECT 1 FROM org_units WHERE district_id = d.id) OR "
			  "EXISTS (SELECT 1 FROM people WHERE district_id = d.id) ORDER BY name, id";
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		r = zila_error_set(err, ZILA_ESCHEMA,
				   "cannot compute the report (does the replica have the default "
				   "schema?): %s",
				   sqlite3_errmsg(db));
		goto out;
	}
	if (district != NULL)
		sqlite3_bind_text(st, 1, district, -1, SQLITE_STATIC);
	int rc;
	size_t cap = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (rep.nrows == cap) {
			cap = cap ? cap * 2 : 16;
			struct zila_report_row *rows = realloc(rep.rows, cap * sizeof(*rows));
			if (rows == NULL) {
				r = zila_error_set(err, ZILA_ENOMEM, "out of memory");
				goto out;
			}
			rep.rows = rows;
		}
		struct zila_report_row *row = &rep.rows[rep.nrows++];
		memset(row, 0, sizeof(*row));
		copy_col(row->district_id, sizeof(row->district_id), st, 0);
		copy_col(row->name, sizeof(row->name), st, 1);
		copy_col(row->name_local, sizeof(row->name_local), st, 2);
	}
	if (rc != SQLITE_DONE) {
		r = zila_error_set(err, ZILA_EDB, "cannot list districts: %s", sqlite3_errmsg(db));
		goto out;
	}

	struct zila_report_row *t = &rep.total;
	snprintf(t->name, sizeof(t->name), "total");
	for (size_t i = 0; i < rep.nrows; i++) {
		struct zila_report_row *row = &rep.rows[i];
		r = district_row(&q, o, rep.today, today_days, rep.period, row);
		if (r != 0)
			goto out;
		t->target += row->target;
		t->signups += row->signups;
		t->expected += row->expected;
		t->booths += row->booths;
		t->booths_with_agent += row->booths_with_agent;
		t->booths_with_committee += row->booths_with_committee;
		t->bearers += row->bearers;
		t->bearers_inactive += row->bearers_inactive;
		t->bearers_to_replace += row->bearers_to_replace;
		t->reports_due += row->reports_due;
		t->reports_submitted += row->reports_submitted;
	}
	t->progress = HUGE_VAL;
	if (t->target <= 0)
		t->drive_status = "no target";
	else if (t->signups >= t->target)
		t->drive_status = "done";
	else if (t->signups >= t->expected)
		t->drive_status = "on track";
	else
		t->drive_status = "behind";
	if (t->target > 0)
		t->progress = t->expected > 0 ? (double)t->signups / (double)t->expected : 1e6;
	snprintf(t->last_sync, sizeof(t->last_sync), "%s", "");
	if (rep.nrows > 1)
		qsort(rep.rows, rep.nrows, sizeof(*rep.rows), cmp_rows);
	*out = rep;
	memset(&rep, 0, sizeof(rep));
	r = 0;
out:
	sqlite3_finalize(st);
	free(district);
	zila_report_release(&rep);
	return r;
}

void zila_report_release(struct zila_report *r)
{
	if (r == NULL)
		return;
	free(r->rows);
	r->rows = NULL;
	r->nrows = 0;
}
