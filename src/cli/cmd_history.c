/* zila history: how much history this replica keeps (meta history_days; a laptop 90 days by
 * default, HQ everything), set it, and drop now what is older and covered by a checkpoint (and,
 * at HQ, the deleted rows every device that may hold them has a checkpoint past); compact the
 * replica's file when that pays (a laptop's prune) or when asked (compact). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
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
		struct zila_cert own;
		if (zila_trust_cert_get(s, zila_store_device_pk(s), &own) == 0 && own.role == ZILA_ROLE_HQ && own.scope_all) {
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
		printf("{\"horizon_ms\":%lld,\"entries\":%lld}\n", (long long)horizon, (long long)c.entries);
		return CLI_OK;
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
	return CLI_OK;
}
