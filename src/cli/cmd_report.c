/* zila report: HQ progress per district, most behind first, as a terminal table, CSV or
 * JSON. The figures come from src/office/report.c; the last sync per device from the
 * daemon's peer table. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>

#include "cli.h"
#include "cli_db.h"
#include "zila/store.h"
#include "zila/office/csvio.h"
#include "zila/office/report.h"

static void json_row(const struct zila_report_row *w, bool total)
{
	printf("{");
	if (!total) {
		printf("\"district_id\":");
		cli_json_str(w->district_id);
		printf(",\"district\":");
		cli_json_str(w->name);
		printf(",\"district_local\":");
		cli_json_str(w->name_local);
		printf(",\"drive_id\":");
		cli_json_str(w->drive_id);
		printf(",\"drive\":");
		cli_json_str(w->drive_name);
		printf(",\"starts_on\":");
		cli_json_str(w->starts_on);
		printf(",\"deadline\":");
		cli_json_str(w->deadline);
		printf(",\"days_left\":%" PRId64 ",", w->days_left);
	}
	printf("\"target\":%" PRId64 ",\"signups\":%" PRId64 ",\"expected\":%" PRId64
	       ",\"status\":",
	       w->target, w->signups, w->expected);
	cli_json_str(w->drive_status);
	printf(",\"booths\":%" PRId64 ",\"booths_with_agent\":%" PRId64
	       ",\"booths_with_committee\":%" PRId64 ",\"bearers\":%" PRId64
	       ",\"bearers_inactive\":%" PRId64 ",\"bearers_to_replace\":%" PRId64
	       ",\"reports_due\":%" PRId64 ",\"reports_submitted\":%" PRId64,
	       w->booths, w->booths_with_agent, w->booths_with_committee, w->bearers,
	       w->bearers_inactive, w->bearers_to_replace, w->reports_due, w->reports_submitted);
	if (!total) {
		printf(",\"last_sync\":");
		cli_json_str(w->last_sync);
	}
	printf("}");
}

static int csv_row(const struct zila_report_row *w, const char *period, bool total)
{
	char num[16][32];
	int64_t nums[] = {
		w->days_left,
		w->target,
		w->signups,
		w->expected,
		zila_report_pct(w->signups, w->target),
		w->booths,
		w->booths_with_agent,
		zila_report_pct(w->booths_with_agent, w->booths),
		w->booths_with_committee,
		zila_report_pct(w->booths_with_committee, w->booths),
		w->bearers,
		w->bearers_inactive,
		w->bearers_to_replace,
		w->reports_due,
		w->reports_submitted,
	};
	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
		snprintf(num[i], sizeof(num[i]), "%" PRId64, nums[i]);
	const char *f[] = {
		total ? "" : w->district_id,
		w->name,
		total ? "" : w->name_local,
		total ? "" : w->drive_id,
		total ? "" : w->drive_name,
		total ? "" : w->starts_on,
		total ? "" : w->deadline,
		total ? "" : num[0],
		num[1],
		num[2],
		num[3],
		num[4],
		w->drive_status,
		num[5],
		num[6],
		num[7],
		num[8],
		num[9],
		num[10],
		num[11],
		num[12],
		num[13],
		num[14],
		period,
		total ? "" : w->last_sync,
	};
	size_t n = sizeof(f) / sizeof(f[0]);
	size_t lens[32];
	for (size_t i = 0; i < n; i++)
		lens[i] = strlen(f[i]);
	return zila_csv_write_row(stdout, f, lens, n);
}

static void text_row(const struct zila_report_row *w, int namew)
{
	char signups[48], agents[48], committees[48], reports[32], deadline[32];
	snprintf(signups, sizeof(signups), "%" PRId64 "/%" PRId64 " %d%%", w->signups, w->target,
		 zila_report_pct(w->signups, w->target));
	snprintf(agents, sizeof(agents), "%" PRId64 "/%" PRId64 " %d%%", w->booths_with_agent,
		 w->booths, zila_report_pct(w->booths_with_agent, w->booths));
	snprintf(committees, sizeof(committees), "%" PRId64 "/%" PRId64 " %d%%",
		 w->booths_with_committee, w->booths,
		 zila_report_pct(w->booths_with_committee, w->booths));
	snprintf(reports, sizeof(reports), "%" PRId64 "/%" PRId64, w->reports_submitted,
		 w->reports_due);
	if (w->deadline[0] != '\0')
		snprintf(deadline, sizeof(deadline), "%s %+" PRId64 "d", w->deadline, w->days_left);
	else
		snprintf(deadline, sizeof(deadline), "-");
	printf("%-*s  %-16s %7" PRId64 "  %-9s  %-18s %-14s %-14s %8" PRId64 " %10" PRId64
	       "  %-7s  %s\n",
	       namew, w->name, signups, w->expected, w->drive_status, deadline, agents, committees,
	       w->bearers_inactive, w->bearers_to_replace, reports, w->last_sync);
}

struct syncs {
	struct zila_report_sync *v;
	char **names; /* device and district strings, owned */
	size_t n, nnames, cap;
};

static void syncs_free(struct syncs *s)
{
	for (size_t i = 0; i < s->nnames; i++)
		free(s->names[i]);
	free(s->names);
	free(s->v);
}

static char *name_dup(const char *v, struct syncs *s)
{
	char *d = v ? strdup(v) : NULL;
	if (d != NULL)
		s->names[s->nnames++] = d;
	return d;
}

static int add_sync(void *ctx, const struct zila_peer_record *p)
{
	struct syncs *s = ctx;
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 16;
		struct zila_report_sync *v = realloc(s->v, ncap * sizeof(*v));
		if (v != NULL)
			s->v = v;
		char **names = realloc(s->names, 2 * ncap * sizeof(*names));
		if (names != NULL)
			s->names = names;
		if (v == NULL || names == NULL)
			return ZILA_ENOMEM;
		s->cap = ncap;
	}
	struct zila_report_sync *w = &s->v[s->n++];
	w->device = name_dup(p->name, s);
	w->district_id = name_dup(p->district, s);
	w->last_sync = p->has_last_sync ? p->last_sync : 0;
	return 0;
}

/* The last completed sync of every device the daemon has met (the store's peer table).
 * Leaves s->v NULL (the report says "unknown") where no daemon ever recorded a device. */
static int read_syncs(struct cli *cli, struct syncs *s)
{
	struct zila_store *st = NULL;
	struct zila_error err;
	zila_error_clear(&err);
	int r = zila_store_open(&st, cli->dir, &err);
	if (r != 0) {
		cli_err("%s", zila_error_msg(&err, r));
		return r;
	}
	if ((r = zila_store_peer_each(st, add_sync, s)) != 0)
		cli_err("cannot read the devices met: %s", zila_strerror(r));
	zila_store_free(st);
	return r;
}

int cmd_report(struct cli *cli, int argc, char **argv);
int cmd_report(struct cli *cli, int argc, char **argv)
{
	int rc = CLI_FAIL;
	struct zila_report_opts o = { 0 };
	struct zila_report rep = { 0 };
	const char *format = cli->json ? "json" : "text";
	sqlite3 *db = NULL;
	struct syncs syncs = { 0 };
	struct zila_error err;
	zila_error_clear(&err);

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		const char **dst = NULL;
		if (strcmp(a, "--district") == 0)
			dst = &o.district;
		else if (strcmp(a, "--period") == 0)
			dst = &o.period;
		else if (strcmp(a, "--today") == 0)
			dst = &o.today;
		else if (strcmp(a, "--drive") == 0)
			dst = &o.drive;
		else if (strcmp(a, "--format") == 0)
			dst = &format;
		else {
			rc = cli_usage("report", a[0] == '-' ? "unknown option '%s'"
							   : "unexpected argument '%s'",
				       a);
			goto out;
		}
		if (v == NULL) {
			rc = cli_usage("report", "option '%s' needs a value", a);
			goto out;
		}
		*dst = argv[++i];
	}
	if (strcmp(format, "text") != 0 && strcmp(format, "csv") != 0 &&
	    strcmp(format, "json") != 0) {
		rc = cli_usage("report", "unknown format '%s' (text, csv or json)", format);
		goto out;
	}
	rc = cli_open_db(cli, false, &db);
	if (rc != CLI_OK)
		goto out;
	rc = CLI_FAIL;
	if (read_syncs(cli, &syncs) != 0)
		goto out;
	o.syncs = syncs.v;
	o.nsyncs = syncs.n;
	int r = zila_report_build(db, &o, &rep, &err);
	if (r != 0) {
		cli_err("%s", zila_error_msg(&err, r));
		goto out;
	}

	if (strcmp(format, "json") == 0) {
		printf("{\"today\":");
		cli_json_str(rep.today);
		printf(",\"period\":");
		cli_json_str(rep.period);
		printf(",\"districts\":[");
		for (size_t i = 0; i < rep.nrows; i++) {
			printf(i ? ",\n" : "\n");
			json_row(&rep.rows[i], false);
		}
		printf("\n],\"total\":");
		json_row(&rep.total, true);
		printf("}\n");
	} else if (strcmp(format, "csv") == 0) {
		static const char *h[] = {
			"district_id", "district", "district_local", "drive_id", "drive",
			"starts_on", "deadline", "days_left", "target", "signups", "expected",
			"signups_pct", "status", "booths", "booths_with_agent", "agent_pct",
			"booths_with_committee", "committee_pct", "bearers", "bearers_inactive",
			"bearers_to_replace", "reports_due", "reports_submitted", "period",
			"last_sync",
		};
		size_t lens[32], n = sizeof(h) / sizeof(h[0]);
		for (size_t i = 0; i < n; i++)
			lens[i] = strlen(h[i]);
		fputs("\xef\xbb\xbf", stdout);
		int wr = zila_csv_write_row(stdout, h, lens, n);
		for (size_t i = 0; i < rep.nrows && wr == 0; i++)
			wr = csv_row(&rep.rows[i], rep.period, false);
		if (wr == 0)
			wr = csv_row(&rep.total, rep.period, true);
		if (wr != 0) {
			cli_err("cannot write the report");
			goto out;
		}
	} else {
		int namew = 8;
		for (size_t i = 0; i < rep.nrows; i++)
			if ((int)strlen(rep.rows[i].name) > namew)
				namew = (int)strlen(rep.rows[i].name);
		bool same = true;
		for (size_t i = 1; i < rep.nrows; i++)
			if (strcmp(rep.rows[i].drive_id, rep.rows[0].drive_id) != 0)
				same = false;
		printf("progress as of %s; coordinator reports for %s", rep.today, rep.period);
		if (rep.nrows > 0 && same && rep.rows[0].drive_id[0] != '\0')
			printf("; drive '%s' (%s to %s)", rep.rows[0].drive_name,
			       rep.rows[0].starts_on, rep.rows[0].deadline);
		printf("\n\n%-*s  %-16s %7s  %-9s  %-18s %-14s %-14s %8s %10s  %-7s  %s\n", namew,
		       "district", "sign-ups/target", "due now", "status", "deadline",
		       "booth agents", "committees", "inactive", "to replace", "reports",
		       "last sync");
		for (size_t i = 0; i < rep.nrows; i++)
			text_row(&rep.rows[i], namew);
		if (rep.nrows == 0)
			printf("(no district data in this replica)\n");
		text_row(&rep.total, namew);
	}
	rc = CLI_OK;
out:
	zila_report_release(&rep);
	syncs_free(&syncs);
	sqlite3_close(db);
	return rc;
}
