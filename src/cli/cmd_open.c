/* zila open: a one-time login link of the running daemon's web interface.
 *   zila open
 * The link carries its token after '#', which a browser never sends to a server, so it
 * lands in no log; it is good for one login within 5 minutes. */
#include <stdio.h>

#include "cli_ctl.h"

int cmd_open(struct cli *cli, int argc, char **argv);
int cmd_open(struct cli *cli, int argc, char **argv)
{
	(void)argv;
	if (argc > 1)
		return cli_usage("open", "open takes no arguments");
	json_t *resp = NULL;
	int r = cli_ctl_call(cli, json_pack("{s:s}", "cmd", "web-login"), &resp);
	if (r != CLI_OK)
		return r;
	const char *url = json_string_value(json_object_get(resp, "url"));
	if (url == NULL) {
		cli_err("the daemon gave no login link");
		json_decref(resp);
		return CLI_FAIL;
	}
	if (cli->json)
		printf("{\"url\":\"%s\"}\n", url);
	else
		printf("Open this link in a browser on this computer (once, within 5 minutes):\n\n  %s\n", url);
	json_decref(resp);
	return CLI_OK;
}
