/* zila track: make another table of the replica synced. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "zila/trust.h"
#include "zila/store.h"

int cmd_track(struct cli *cli, int argc, char **argv);
int cmd_track(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "partition", required_argument, NULL, 'p' },
					      { "org", no_argument, NULL, 'o' },
					      { NULL, 0, NULL, 0 } };
	const char *pcol = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "p:", opts, NULL)) != -1) {
		if (c == 'p')
			pcol = optarg;
		else if (c == 'o')
			pcol = NULL;
		else
			return cli_usage("track", "unknown option");
	}
	if (optind != argc - 1)
		return cli_usage("track", "track needs exactly one table name");
	const char *table = argv[optind];
	struct zila_store *s = cli->store;
	struct zila_error err;
	struct zila_cert own;
	zila_error_clear(&err);
	/* at HQ a table tracked alone would reach no laptop: 'zila schema track' distributes it */
	if (zila_trust_cert_get(s, zila_store_device_pk(s), &own) == 0 && own.role == ZILA_ROLE_HQ) {
		cli_err("this replica is HQ of an organisation: track '%s' with 'zila schema track %s%s%s' so that every "
			"laptop gets the table (tracked here alone it would reach none)",
			table, table, pcol ? " --partition " : " --org-wide", pcol ? pcol : "");
		return CLI_FAIL;
	}
	/* a district laptop's table would reach nobody: HQ makes tables for everyone */
	if (zila_store_write_scope(s)[0] != '\0') {
		cli_err("cannot track '%s' here: this laptop may write only its district, and tables are added for the "
			"whole organisation at HQ ('zila schema add-table' or 'zila schema track'); the table stays local "
			"to this laptop and is not synced", table);
		return CLI_FAIL;
	}
	int r = zila_store_track(s, table, pcol, &err);
	if (r != 0) {
		cli_err("%s", zila_error_msg(&err, r));
		return CLI_FAIL;
	}
	if (pcol)
		printf("tracking '%s', partitioned by '%s'\n", table, pcol);
	else
		printf("tracking '%s' in the org-wide partition\n", table);
	return CLI_OK;
}
