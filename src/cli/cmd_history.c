/* zila history: how much history this replica keeps (meta history_days; a laptop 90 days by
 * default, HQ everything), set it, and drop now what is older and covered by a checkpoint (and,
 * at HQ, the deleted rows every device that may hold them has a checkpoint past); compact the
 * replica's file when that pays (a laptop's prune) or when asked (compact); at HQ, which devices
 * hold the collection of deleted rows back, and why. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_trust.h"
#include "cli_names.h"
#include "zila/store.h"
#include "zila/trust.h"

int cmd_history(struct cli *cli, int argc, char **argv);

static int show_gap(void *ctx, const char *part, uint64_t before_ms)
{
	struct cli *cli = ctx;
	char label[160], when[40];
	cli_district_label(cli, part, label, sizeof(label));
	cli_local_time(when, before_ms / 1000);
	printf("district '%s': history from %s on (before it: at HQ)\n", label, when);
	return 0;
}

static double mib(uint64_t b)
{
	return (double)b / 1048576;
}

/* always: `zila history compact`; else a laptop's prune, when it pays. */
static int compact(struct cli *cli, bool always)
{
	struct zila_compact_info ci;
	struct zila_error err;
	zila_error_clear(&err);
	int r = zila_store_compact(cli->store, always, &ci, &err);
	if (r == ZILA_ESCHEMA && !always) {
		/* the prune was done; only the compaction it would have paid for was not */
		printf("%s\n", zila_error_msg(&err, r));
		return CLI_OK;
	}
	if (r != 0) {
		cli_err("%s", zila_error_msg(&err, r));
		return CLI_FAIL;
	}
	uint64_t back = ci.free_bytes + ci.unused_bytes;
	int pct = ci.file_bytes > 0 ? (int)(back * 100 / ci.file_bytes) : 0;
	if (cli->json)
		printf("{\"compacted\":%s,\"before_bytes\":%llu,\"free_bytes\":%llu,\"unused_bytes\":%llu,"
		       "\"after_bytes\":%llu,\"ms\":%llu}\n",
		       ci.compacted ? "true" : "false", (unsigned long long)ci.file_bytes,
		       (unsigned long long)ci.free_bytes, (unsigned long long)ci.unused_bytes,
		       (unsigned long long)ci.after_bytes, (unsigned long long)ci.ms);
	else if (ci.compacted)
		printf("compacted the replica from %.1f MiB to %.1f MiB in %.2f s (%d%% of it was free or part-empty "
		       "pages)\n",
		       mib(ci.file_bytes), mib(ci.after_bytes), (double)ci.ms / 1000, pct);
	else
		printf("the replica (%.1f MiB) was not compacted: %d%% of it is free or part-empty pages (it pays from "
		       "%d%%)\n",
		       mib(ci.file_bytes), pct, ZILA_COMPACT_SHARE_PCT);
	return CLI_OK;
}

static bool is_hq(struct zila_store *s)
{
	struct zila_cert own;
	return zila_trust_cert_get(s, zila_store_device_pk(s), &own) == 0 && own.role == ZILA_ROLE_HQ && own.scope_all;
}

static const char *const why_names[] = { "", "never_seen", "bundle_only", "no_ack", "old_ack" };

/* Why a device holds collection back, in plain words (the devices' own list names them). */
static void say_why(const struct zila_hold *o, char *out, size_t n)
{
	char when[32], synced[32];
	uint64_t now = cli_now(), ck = zila_hlc_ms(o->acked_hlc) / 1000;
	cli_date(synced, (uint64_t)o->last_sync);
	if (o->revoked) {
		snprintf(out, n, "revoked, but HQ lacks some of its changes up to the revocation (a bundle from it brings them)");
	} else if (o->why == ZILA_HOLD_NEVER_SEEN) {
		snprintf(out, n, "never seen since enrolment");
	} else if (o->why == ZILA_HOLD_BUNDLE_ONLY) {
		snprintf(out, n, "reached HQ only by USB bundle (a bundle gets no answer: two live syncs with HQ release it)");
	} else if (o->why == ZILA_HOLD_NO_ACK && o->last_sync > 0) {
		snprintf(out, n, "has not acknowledged the latest checkpoint (last sync %s: its next syncs do)", synced);
	} else if (o->why == ZILA_HOLD_NO_ACK) {
		snprintf(out, n, "has met HQ but not completed a sync since the district's first checkpoint");
	} else {
		cli_date(when, ck);
		long days = now > ck ? (long)((now - ck) / 86400) : 0;
		snprintf(out, n, "last acknowledged a checkpoint from %s, %ld day%s ago; has not acknowledged the latest",
			 when, days, days == 1 ? "" : "s");
		if (o->last_sync > 0)
			snprintf(out + strlen(out), n - strlen(out), " (last sync %s)", synced);
	}
}

static void held_json(struct zila_store *s, const struct zila_held_list *l, size_t nheld, size_t ndevs, size_t nwait)
{
	printf(",\"collection\":{\"districts_held\":%zu,\"devices_holding\":%zu,\"districts_waiting\":%zu,"
	       "\"districts\":[",
	       nheld, ndevs, nwait);
	for (size_t i = 0; i < l->nparts; i++) {
		const struct zila_held *p = &l->parts[i];
		printf("%s{\"district\":", i ? "," : "");
		cli_json_str(p->part);
		printf(",\"rows\":%zu,\"wait_for_checkpoint\":%zu,\"held_by\":[", p->nrows, p->nnew);
		for (size_t k = 0; k < p->nholds; k++) {
			const struct zila_hold *o = &p->holds[k];
			char id[ZILA_DEVICE_ID_LEN + 1];
			struct zila_cert c;
			zila_device_id(o->device, id);
			printf("%s{\"device\":\"%s\",\"name\":", k ? "," : "", id);
			cli_json_str(zila_trust_cert_get(s, o->device, &c) == 0 ? c.name : "");
			printf(",\"why\":\"%s\",\"rows\":%zu,\"acked_ms\":%llu,\"last_sync\":%lld,\"revoked\":%s}",
			       why_names[o->why], o->nrows, (unsigned long long)zila_hlc_ms(o->acked_hlc),
			       (long long)o->last_sync, o->revoked ? "true" : "false");
		}
		printf("]}");
	}
	printf("]}");
}

/* HQ: whether deleted rows wait for collection and, per district held back, which devices
 * hold it back, why, and what to do. One line when nothing is held back. */
static int show_held(struct cli *cli, struct zila_store *s)
{
	struct zila_held_list l;
	struct zila_error err;
	size_t nheld = 0, ndevs = 0, nwait = 0, nrows = 0, nnew = 0, nnext = 0;
	zila_error_clear(&err);
	int r = zila_trust_collect_held(s, &l, &err);
	if (r != 0) {
		cli_err("%s", zila_error_msg(&err, r));
		return CLI_FAIL;
	}
	zila_held_list_count(&l, &nheld, &ndevs);
	/* rows no device holds back wait for HQ's next checkpoint, or go at the next collection */
	for (size_t i = 0; i < l.nparts; i++) {
		const struct zila_held *p = &l.parts[i];
		nwait += p->nholds == 0 && p->nnew > 0;
		nrows += p->nholds > 0 ? p->nrows : 0;
		nnew += p->nholds == 0 ? p->nnew : 0;
		nnext += p->nholds == 0 ? p->nrows - p->nnew : 0;
	}
	if (cli->json) {
		held_json(s, &l, nheld, ndevs, nwait);
		zila_held_list_release(&l);
		return CLI_OK;
	}
	if (nheld == 0)
		printf("deleted rows: no device holds their collection back");
	else
		printf("deleted rows of %zu district%s (%zu rows) wait for %zu device%s that ha%s not acknowledged them:",
		       nheld, nheld == 1 ? "" : "s", nrows, ndevs, ndevs == 1 ? "" : "s", ndevs == 1 ? "s" : "ve");
	if (nwait > 0)
		printf("%s%zu deleted row%s of %zu district%s wait for HQ's next checkpoint", nheld ? "\n" : " (", nnew,
		       nnew == 1 ? "" : "s", nwait, nwait == 1 ? "" : "s");
	if (nnext > 0)
		printf("%s%zu go at the next hourly collection", nwait ? "; " : nheld ? "\n" : " (", nnext);
	printf("%s\n", nheld == 0 && (nwait > 0 || nnext > 0) ? ")" : "");
	for (size_t i = 0; i < l.nparts; i++) {
		const struct zila_held *p = &l.parts[i];
		if (p->nholds == 0)
			continue;
		char label[160];
		cli_district_label(cli, p->part, label, sizeof(label));
		printf("district '%s': %zu deleted row%s wait for collection, held back by:\n", label, p->nrows,
		       p->nrows == 1 ? "" : "s");
		for (size_t k = 0; k < p->nholds; k++) {
			const struct zila_hold *o = &p->holds[k];
			char id[ZILA_DEVICE_ID_LEN + 1], why[300];
			struct zila_cert c;
			zila_device_id(o->device, id);
			say_why(o, why, sizeof(why));
			printf("  '%s' (%s): %s\n", zila_trust_cert_get(s, o->device, &c) == 0 ? c.name : "?", id, why);
			if (!o->revoked)
				printf("      if this laptop is lost or replaced: zila revoke %s\n", id);
		}
	}
	zila_held_list_release(&l);
	return CLI_OK;
}

int cmd_history(struct cli *cli, int argc, char **argv)
{
	struct zila_store *s = cli->store;
	struct zila_error err;
	zila_error_clear(&err);
	if (argc == 3 && strcmp(argv[1], "--days") == 0) {
		char *end = NULL;
		long days = strcmp(argv[2], "all") == 0 ? 0 : strtol(argv[2], &end, 10);
		if ((end != NULL && (*end != '\0' || end == argv[2])) || days < 0 || days > 36500)
			return cli_usage("history", "--days takes a number of days (1 to 36500) or 'all'");
		char v[24];
		snprintf(v, sizeof(v), "%ld", days);
		if (zila_store_meta_set(s, ZILA_META_HISTORY_DAYS, v) != 0) {
			cli_err("cannot record the setting");
			return CLI_FAIL;
		}
		if (days == 0)
			printf("this replica keeps all its history\n");
		else
			printf("this replica keeps %ld days of history (older entries go once a checkpoint from HQ covers "
			       "them)\n",
			       days);
		return CLI_OK;
	}
	if (argc == 2 && strcmp(argv[1], "prune") == 0) {
		size_t n = 0;
		int r = zila_store_prune(s, &n, &err);
		if (r != 0) {
			cli_err("%s", zila_error_msg(&err, r));
			return CLI_FAIL;
		}
		printf("dropped %zu entr%s older than the horizon and covered by a checkpoint\n", n, n == 1 ? "y" : "ies");
		/* HQ: the deleted rows every device that may hold them has a checkpoint past */
		if (is_hq(s)) {
			if ((r = zila_trust_collect(s, &n, &err)) != 0) {
				cli_err("%s", zila_error_msg(&err, r));
				return CLI_FAIL;
			}
			printf("collected %zu deleted row%s every device of their district has\n", n, n == 1 ? "" : "s");
		}
		/* a laptop's file is tens of MB; HQ's may be 10 GB: there only when asked */
		return zila_store_horizon_ms(s) != 0 ? compact(cli, false) : CLI_OK;
	}
	if (argc == 2 && strcmp(argv[1], "compact") == 0)
		return compact(cli, true);
	if (argc != 1)
		return cli_usage("history", "unexpected argument '%s'", argv[1]);
	int64_t horizon = zila_store_horizon_ms(s);
	struct zila_store_counts c;
	if (zila_store_counts(s, &c) != 0) {
		cli_err("cannot read the replica");
		return CLI_FAIL;
	}
	if (cli->json) {
		printf("{\"horizon_ms\":%lld,\"entries\":%lld", (long long)horizon, (long long)c.entries);
		int rc = is_hq(s) ? show_held(cli, s) : CLI_OK;
		printf("}\n");
		return rc;
	}
	if (horizon == 0) {
		printf("keeps all history (%lld entries)\n", (long long)c.entries);
	} else {
		char when[40];
		cli_local_time(when, (uint64_t)horizon / 1000);
		printf("keeps history from %s on (%lld entries); older entries go once a checkpoint from HQ covers them\n",
		       when, (long long)c.entries);
	}
	if (zila_store_history_gaps(s, show_gap, cli) != 0) {
		cli_err("cannot read the checkpoints");
		return CLI_FAIL;
	}
	return is_hq(s) ? show_held(cli, s) : CLI_OK;
}
