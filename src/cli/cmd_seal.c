/* zila seal: seal captured local changes into signed entries now, and sweep every
 * tracked table for rows inserted at rowids no capture sees (zila_store_sweep). */
#include <stdio.h>

#include "cli.h"
#include "zila/store.h"

int cmd_seal(struct cli *cli, int argc, char **argv);
int cmd_seal(struct cli *cli, int argc, char **argv)
{
	(void)argv;
	if (argc > 1)
		return cli_usage("seal", "seal takes no arguments");
	struct zila_store *s = cli->store;
	struct zila_error err;
	size_t n = 0, swept = 0;
	zila_error_clear(&err);
	int r = zila_store_sweep(s, &n, &swept, &err);
	if (r != 0) {
		cli_err("%s", zila_error_msg(&err, r));
		return CLI_FAIL;
	}
	if (cli->json)
		printf("{\"entries\":%zu,\"swept\":%zu}\n", n, swept);
	else if (swept > 0)
		printf("sealed %zu entr%s (%zu row%s found by the sweep)\n", n, n == 1 ? "y" : "ies", swept,
		       swept == 1 ? "" : "s");
	else
		printf("sealed %zu entr%s\n", n, n == 1 ? "y" : "ies");
	return CLI_OK;
}
