/* zila history: how much history this replica keeps (meta history_days; a laptop 90 days by
 * default, HQ everything), set it, and drop now what is older and covered by a checkpoint (and,
 * at HQ, the deleted rows every device that may hold them has a checkpoint past). */
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
		return CLI_OK;
	}
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
