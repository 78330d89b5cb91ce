/* zila peers: the daemon's peer table (LAN, configured, HQ, and those that dialled us).
 *   zila peers */
#include <stdio.h>
#include <stdlib.h>

#include "cli_ctl.h"

int cmd_peers(struct cli *cli, int argc, char **argv);
int cmd_peers(struct cli *cli, int argc, char **argv)
{
	(void)argv;
	if (argc > 1)
		return cli_usage("peers", "peers takes no arguments");
	json_t *resp = NULL;
	int r = cli_ctl_call(cli, json_pack("{s:s}", "cmd", "peers"), &resp);
	if (r != CLI_OK)
		return r;
	json_t *peers = json_object_get(resp, "peers");
	if (cli->json) {
		char *s = json_dumps(peers, JSON_COMPACT);
		printf("%s\n", s ? s : "[]");
		free(s);
	} else {
		cli_print_peers(peers);
	}
	json_decref(resp);
	return CLI_OK;
}
