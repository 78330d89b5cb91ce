/* zila init: create a replica with the default schema and a device key. */
#include <stdio.h>

#include "cli.h"
#include "zila/store.h"

int cmd_init(struct cli *cli, int argc, char **argv);
int cmd_init(struct cli *cli, int argc, char **argv)
{
	struct zila_error err;
	(void)argv;
	if (argc > 1)
		return cli_usage("init", "init takes no arguments");
	zila_error_clear(&err);
	int r = zila_store_create(cli->dir, &err);
	if (r != 0) {
		cli_err("%s", zila_error_msg(&err, r));
		return CLI_FAIL;
	}
	if (cli->json) {
		printf("{\"dir\":");
		cli_json_str(cli->dir);
		printf(",\"created\":true}\n");
	} else {
		printf("created a replica in '%s' with the default schema\n", cli->dir);
	}
	return CLI_OK;
}
