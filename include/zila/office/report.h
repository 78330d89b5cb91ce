/* HQ progress per district, computed from the default schema on any replica: membership
 * drive sign-ups against target and deadline, booth agent and committee coverage, office
 * bearers to replace, coordinator reports for a period, and last sync per device (which the
 * caller gives: the office layer reads user tables only). */
#ifndef ZILA_OFFICE_REPORT_H
#define ZILA_OFFICE_REPORT_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "zila/err.h"

/* One device's last completed sync, as the caller knows it (the daemon's peer table). */
struct zila_report_sync {
	const char *device;      /* its name */
	const char *district_id; /* the district it belongs to */
	int64_t last_sync;       /* unix seconds of its last completed sync; 0: never */
};

struct zila_report_opts {
	const char *district; /* id, code or name; NULL for every district the replica holds */
	const char *period;   /* YYYY-MM (or MM-YYYY) for coordinator reports; NULL for the
			       * month of today */
	const char *today;    /* YYYY-MM-DD (or DD-MM-YYYY, as the importer reads dates) the
			       * report is as of; NULL for today (UTC) */
	const char *drive;    /* a drive id; NULL picks, per district, the latest drive that
			       * has started by today, preferring one with a target there */
	/* The devices' last completed syncs, listed per district newest first; borrowed for
	 * the call. NULL: nothing is known (every row says "unknown"); non-NULL with nsyncs 0:
	 * no device was ever seen ("no device seen"). */
	const struct zila_report_sync *syncs;
	size_t nsyncs;
};

/* Drive status words, from worst to best: "overdue" (deadline passed, target not met),
 * "behind" (fewer sign-ups than the target pro rata to the days elapsed), "on track",
 * "done" (target met), or "no drive" / "no target". */
struct zila_report_row {
	char district_id[72];
	char name[128];
	char name_local[128];
	char drive_id[72];
	char drive_name[128];
	char starts_on[11];
	char deadline[11];
	int64_t days_left;      /* to the deadline; negative once it has passed */
	int64_t target;         /* the sum of the drive's targets at the district's top level */
	int64_t signups;        /* sign-ups for the drive up to today */
	int64_t expected;       /* target * (days elapsed / days of the drive), rounded up */
	const char *drive_status;
	int64_t booths;
	int64_t booths_with_agent;     /* booths with at least one booth agent */
	int64_t booths_with_committee; /* booths with a booth committee */
	int64_t bearers;               /* office bearers */
	int64_t bearers_inactive;
	int64_t bearers_to_replace;
	int64_t reports_due;       /* blocks of the district (each block coordinator reports) */
	int64_t reports_submitted; /* blocks with a report submitted or accepted for the period */
	char last_sync[512];       /* "device time, ..." from opts->syncs, "no device seen",
				    * or "unknown" */
	double progress;           /* the sort key: sign-ups over what is due now; lower is
				    * further behind */
};

struct zila_report {
	char period[8];
	char today[11];
	struct zila_report_row *rows; /* most behind first */
	size_t nrows;
	struct zila_report_row total; /* sums; drive fields describe the sums */
};

/* Computes the report. A district is listed when the replica holds any of its org units or
 * people, or when opts->district names it. *out is cleared first and owned by the caller:
 * zila_report_release(). */
int zila_report_build(sqlite3 *db, const struct zila_report_opts *opts, struct zila_report *out,
		      struct zila_error *err) ZILA_MUST_CHECK;
void zila_report_release(struct zila_report *r);

/* Percentage n of d, rounded down; 0 when d is 0. */
int zila_report_pct(int64_t n, int64_t d);

#endif
