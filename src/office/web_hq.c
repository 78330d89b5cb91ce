/* HQ's pages of the web interface: progress per district (the figures of `zila report`,
 * with sign-ups over the drive as a series) and the rows behind a number (inactive office
 * bearers, booths without an agent or a committee, blocks whose report is missing); the
 * devices, and HQ's invites and revocations (as `zila invite` and `zila revoke`). A
 * district laptop sees its own district only. */
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "web_int.h"
#include "zila/office/report.h"
#include "zila/trust.h"

/* --- last sync per device, for the report -------------------------------------------------- */

struct syncs {
	struct zila_report_sync *v;
	char **strs;
	size_t n, cap;
};

static int add_sync(void *ctx, const struct zila_peer_record *p)
{
	struct syncs *s = ctx;
	if (p->name == NULL || p->district == NULL)
		return 0;
	if (s->n == s->cap) {
		size_t ncap = s->cap ? 2 * s->cap : 16;
		struct zila_report_sync *v = realloc(s->v, ncap * sizeof(*v));
		char **strs = v ? realloc(s->strs, 2 * ncap * sizeof(*strs)) : NULL;
		if (v != NULL)
			s->v = v;
		if (strs == NULL)
			return ZILA_ENOMEM;
		s->strs = strs;
		s->cap = ncap;
	}
	char *name = office_strdup(p->name), *district = office_strdup(p->district);
	s->strs[2 * s->n] = name;
	s->strs[2 * s->n + 1] = district;
	s->v[s->n].device = name ? name : "";
	s->v[s->n].district_id = district ? district : "";
	s->v[s->n].last_sync = p->has_last_sync ? p->last_sync : 0;
	s->n++;
	return 0;
}

static void syncs_release(struct syncs *s)
{
	for (size_t i = 0; i < 2 * s->n; i++)
		free(s->strs[i]);
	free(s->strs);
	free(s->v);
}

/* Sign-ups of a drive in a district, day by day, as a running total. */
static json_t *series(struct zila_office_web *w, const char *district, const char *drive)
{
	json_t *arr = json_array();
	sqlite3_stmt *st = NULL;
	if (drive[0] == '\0' ||
	    sqlite3_prepare_v2(w->db,
			       "SELECT signed_on, count(*) FROM signups WHERE district_id = ? AND drive_id = ?"
			       " AND signed_on IS NOT NULL GROUP BY signed_on ORDER BY signed_on",
			       -1, &st, NULL) != SQLITE_OK) {
		sqlite3_finalize(st);
		return arr;
	}
	sqlite3_bind_text(st, 1, district, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, drive, -1, SQLITE_STATIC);
	json_int_t total = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		total += sqlite3_column_int64(st, 1);
		json_array_append_new(arr, json_pack("{s:s, s:I}", "day", (const char *)sqlite3_column_text(st, 0),
						     "signups", total));
	}
	sqlite3_finalize(st);
	return arr;
}

static json_t *row_json(struct zila_office_web *w, const struct zila_report_row *r, bool with_series)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:s, s:s, s:I, s:s}, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
			      " s:I, s:I, s:I, s:s, s:o}",
			      "id", r->district_id, "name", r->name, "name_local", r->name_local, "drive", "id", r->drive_id,
			      "name", r->drive_name, "starts_on", r->starts_on, "deadline", r->deadline, "days_left",
			      (json_int_t)r->days_left, "status", r->drive_status ? r->drive_status : "", "target",
			      (json_int_t)r->target, "signups", (json_int_t)r->signups, "expected", (json_int_t)r->expected,
			      "booths", (json_int_t)r->booths, "booths_with_agent", (json_int_t)r->booths_with_agent,
			      "booths_with_committee", (json_int_t)r->booths_with_committee, "bearers",
			      (json_int_t)r->bearers, "bearers_inactive", (json_int_t)r->bearers_inactive,
			      "bearers_to_replace", (json_int_t)r->bearers_to_replace, "reports_due",
			      (json_int_t)r->reports_due, "reports_submitted", (json_int_t)r->reports_submitted,
			      "last_sync", r->last_sync, "progress",
			      /* nothing due yet divides by zero: JSON has no infinity */
			      isfinite(r->progress) ? json_real(r->progress) : json_null());
	if (o != NULL && with_series)
		json_object_set_new(o, "series", series(w, r->district_id, r->drive_id));
	return o;
}

void web_hq_progress(struct zila_office_web *w, const char *query, struct zila_office_reply *out)
{
	char *period = web_query_get(query, "period"), *today = web_query_get(query, "today");
	struct syncs sy = { 0 };
	struct zila_report rep;
	struct zila_error err;
	zila_error_clear(&err);
	memset(&rep, 0, sizeof(rep));
	if (zila_store_peer_each(w->s, add_sync, &sy) != 0) {
		web_reply_error(out, 500, "internal", NULL, "cannot read the devices met");
		goto out;
	}
	struct zila_report_opts opts = {
		.district = w->district,
		.period = period && period[0] ? period : NULL,
		.today = today && today[0] ? today : NULL,
		.syncs = sy.v,
		.nsyncs = sy.n,
	};
	int r = zila_report_build(w->db, &opts, &rep, &err);
	if (r != 0) {
		web_reply_error(out, r == ZILA_EINVAL ? 400 : 500, r == ZILA_EINVAL ? "invalid" : "internal", NULL, "%s",
				zila_error_msg(&err, r));
		goto out;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < rep.nrows; i++)
		json_array_append_new(arr, row_json(w, &rep.rows[i], true));
	web_reply_json(out, 200, json_pack("{s:s, s:s, s:o, s:o}", "period", rep.period, "today", rep.today, "districts",
					   arr, "total", row_json(w, &rep.total, false)));
out:
	zila_report_release(&rep);
	syncs_release(&sy);
	free(period);
	free(today);
}

/* --- the rows behind a number ---------------------------------------------------------------- */

static const struct metric {
	const char *name;
	const char *sql; /* ?1: the district; ?2: the period */
} metrics[] = {
	{ "inactive_bearers",
	  "SELECT b.id, p.name AS person, p.name_local AS person_local, p.phone, po.name AS post,"
	  " CASE WHEN u.code IS NOT NULL THEN u.code || ' — ' || u.name ELSE u.name END AS unit, b.status, b.reason,"
	  " b.since FROM office_bearers b JOIN people p ON p.id = b.person_id JOIN posts po ON po.id = b.post_id"
	  " JOIN org_units u ON u.id = b.org_unit_id WHERE b.district_id = ?1 AND b.status != 'active'"
	  " ORDER BY b.status DESC, po.rank, p.name" },
	{ "booths_without_agent",
	  "SELECT u.id, u.code, u.name, u.name_local, pu.name AS parent FROM org_units u"
	  " LEFT JOIN org_units pu ON pu.id = u.parent_id WHERE u.district_id = ?1 AND u.level = 'booth'"
	  " AND NOT EXISTS (SELECT 1 FROM booth_agents a WHERE a.booth_id = u.id) ORDER BY u.code, u.name" },
	{ "booths_without_committee",
	  "SELECT u.id, u.code, u.name, u.name_local, pu.name AS parent FROM org_units u"
	  " LEFT JOIN org_units pu ON pu.id = u.parent_id WHERE u.district_id = ?1 AND u.level = 'booth'"
	  " AND NOT EXISTS (SELECT 1 FROM booth_committees c WHERE c.booth_id = u.id) ORDER BY u.code, u.name" },
	{ "reports_missing",
	  "SELECT u.id, u.code, u.name, u.name_local FROM org_units u WHERE u.district_id = ?1 AND u.level = 'block'"
	  " AND NOT EXISTS (SELECT 1 FROM reports r WHERE r.org_unit_id = u.id AND r.period = ?2"
	  " AND r.status != 'draft') ORDER BY u.name" },
};

void web_hq_list(struct zila_office_web *w, const char *query, struct zila_office_reply *out)
{
	char *metric = web_query_get(query, "metric"), *district = web_query_get(query, "district");
	char *period = web_query_get(query, "period");
	char month[8];
	sqlite3_stmt *st = NULL;
	const struct metric *m = NULL;
	for (size_t i = 0; metric && i < sizeof(metrics) / sizeof(metrics[0]); i++)
		if (strcmp(metrics[i].name, metric) == 0)
			m = &metrics[i];
	if (m == NULL) {
		web_reply_error(out, 400, "invalid", "metric",
				"metric is inactive_bearers, booths_without_agent, booths_without_committee or reports_missing");
		goto out;
	}
	const char *d = w->district ? w->district : district;
	if (d == NULL || d[0] == '\0') {
		web_reply_error(out, 400, "invalid", "district", "which district?");
		goto out;
	}
	if (w->district && district && district[0] && strcmp(district, w->district) != 0) {
		web_reply_error(out, 403, "scope", "district", "this laptop sees its own district only");
		goto out;
	}
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(month, sizeof(month), "%Y-%m", &tm);
	if (sqlite3_prepare_v2(w->db, m->sql, -1, &st, NULL) != SQLITE_OK) {
		web_reply_error(out, 500, "internal", NULL, "cannot list: %s", sqlite3_errmsg(w->db));
		goto out;
	}
	sqlite3_bind_text(st, 1, d, -1, SQLITE_STATIC);
	if (sqlite3_bind_parameter_count(st) >= 2)
		sqlite3_bind_text(st, 2, period && period[0] ? period : month, -1, SQLITE_STATIC);
	json_t *cols = json_array(), *rows = json_array();
	for (int i = 0; i < sqlite3_column_count(st); i++)
		json_array_append_new(cols, json_string(sqlite3_column_name(st, i)));
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_t *o = json_object();
		for (int i = 0; i < sqlite3_column_count(st); i++)
			json_object_set_new(o, sqlite3_column_name(st, i), web_column_json(st, i));
		json_array_append_new(rows, o);
	}
	web_reply_json(out, 200, json_pack("{s:s, s:s, s:o, s:o}", "metric", m->name, "district", d, "columns", cols,
					   "rows", rows));
out:
	sqlite3_finalize(st);
	free(metric);
	free(district);
	free(period);
}

/* --- devices ------------------------------------------------------------------------------------ */

struct devs {
	struct zila_office_web *w;
	json_t *arr;
	const char *find; /* a readable id to look for (revoke), or NULL */
	uint8_t found[32];
	bool hit;
	json_t *met; /* hex device key -> {last_sync_at, last_seen_at}, from the peer table */
};

/* When this replica last met and last synced with each device (the daemon's peer table). */
static int met_one(void *ctx, const struct zila_peer_record *p)
{
	json_t *met = ctx;
	char hex[65];
	if (p->device == NULL)
		return 0;
	sodium_bin2hex(hex, sizeof(hex), p->device, 32);
	json_t *o = json_object();
	if (p->has_last_sync)
		json_object_set_new(o, "last_sync_at", json_integer(p->last_sync));
	if (p->has_last_seen)
		json_object_set_new(o, "last_seen_at", json_integer(p->last_seen));
	json_object_set_new(met, hex, o);
	return 0;
}

static int dev_one(void *ctx, const struct zila_cert *c)
{
	struct devs *d = ctx;
	char id[ZILA_DEVICE_ID_LEN + 1], issuer[ZILA_DEVICE_ID_LEN + 1] = "root";
	uint8_t root_pk[32];
	zila_device_id(c->device_pk, id);
	if (d->find != NULL) {
		if (strcmp(id, d->find) == 0) {
			memcpy(d->found, c->device_pk, 32);
			d->hit = true;
		}
		return 0;
	}
	/* a district laptop lists its district's devices */
	if (d->w->district != NULL && (c->scope_all || strcmp(c->district, d->w->district) != 0))
		return 0;
	struct zila_revocation rv;
	bool revoked = zila_trust_revocation_get(d->w->s, c->device_pk, &rv) == 0;
	if (revoked)
		zila_revocation_release(&rv);
	if (!(zila_trust_org(d->w->s, root_pk) == 0 && memcmp(root_pk, c->issuer_pk, 32) == 0))
		zila_device_id(c->issuer_pk, issuer);
	json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:I, s:b, s:b, s:s}", "id", id, "name", c->name, "role",
			      zila_role_name(c->role), "district", c->scope_all ? json_null() : json_string(c->district),
			      "expires", (json_int_t)c->not_after, "expired", (uint64_t)time(NULL) > c->not_after, "revoked",
			      revoked, "issuer", issuer);
	char hex[65];
	sodium_bin2hex(hex, sizeof(hex), c->device_pk, 32);
	json_object_update(o, json_object_get(d->met, hex)); /* last_sync_at, last_seen_at when known */
	json_array_append_new(d->arr, o);
	return 0;
}

void web_devices(struct zila_office_web *w, struct zila_office_reply *out)
{
	struct devs d = { w, json_array(), NULL, { 0 }, false, json_object() };
	if (zila_store_peer_each(w->s, met_one, d.met) != 0)
		json_object_clear(d.met); /* the devices are listed without when they synced */
	int r = zila_trust_cert_each(w->s, dev_one, &d);
	json_decref(d.met);
	if (r != 0) {
		json_decref(d.arr);
		web_reply_error(out, 500, "internal", NULL, "cannot read the devices");
		return;
	}
	web_reply_json(out, 200, json_pack("{s:o}", "devices", d.arr));
}

/* POST /api/devices/invite {district, role?} and /api/devices/revoke {id}: HQ's acts, as
 * `zila invite` and `zila revoke` do them. */
void web_devices_act(struct zila_office_web *w, bool invite, json_t *body, struct zila_office_reply *out)
{
	struct zila_error err;
	zila_error_clear(&err);
	if (!w->hq || w->no_admin) {
		web_reply_error(out, 403, "scope", NULL, "only HQ %s devices", invite ? "invites" : "revokes");
		return;
	}
	if (invite) {
		const char *district = json_string_value(json_object_get(body, "district"));
		const char *role = json_string_value(json_object_get(body, "role"));
		int rl = ZILA_ROLE_DISTRICT;
		sqlite3_stmt *cache = NULL;
		char *did = NULL, code[ZILA_INVITE_CODE_LEN + 1];
		if (role != NULL && (zila_role_parse(role, &rl) != 0 || rl == ZILA_ROLE_HQ)) {
			web_reply_error(out, 400, "invalid", "role", "the role is \"district\" or \"block\"");
			return;
		}
		int r = district ? office_district_resolve(w->db, &cache, district, &did) : ZILA_ENOTFOUND;
		sqlite3_finalize(cache);
		if (r != 0) {
			web_reply_error(out, 400, "invalid", "district", "no district '%s' in the catalogue",
					district ? district : "");
			return;
		}
		uint64_t now = (uint64_t)time(NULL), ttl = 7 * 86400;
		r = zila_trust_invite(w->s, did, rl, now, now + ttl, code, &err);
		if (r != 0)
			web_reply_error(out, 400, "invalid", NULL, "cannot make an invite: %s", zila_error_msg(&err, r));
		else
			web_reply_json(out, 201, json_pack("{s:s, s:s, s:s, s:I}", "code", code, "district", did, "role",
							   zila_role_name(rl), "expires", (json_int_t)(now + ttl)));
		free(did);
		return;
	}
	struct devs d = { w, NULL, json_string_value(json_object_get(body, "id")), { 0 }, false, NULL };
	if (d.find == NULL || zila_trust_cert_each(w->s, dev_one, &d) != 0 || !d.hit) {
		web_reply_error(out, 404, "not_found", "id", "no enrolled device by that id");
		return;
	}
	int r = zila_trust_revoke(w->s, d.found, (uint64_t)time(NULL), &err);
	if (r != 0)
		web_reply_error(out, 400, "invalid", NULL, "%s", zila_error_msg(&err, r));
	else
		web_reply_json(out, 200, json_pack("{s:b}", "ok", 1));
}
