/* zila open: a one-time login link of the running daemon's web interface, opened in the
 * browser where the system can (Windows: the Start menu's "zila" entry), printed always.
 *   zila open
 * The link carries its token after '#', which a browser never sends to a server, so it
 * lands in no log; it is good for one login within 5 minutes. It is never put on a browser's
 * command line (zila_os_open_url). */
#include <stdio.h>

#include "cli_ctl.h"
#include "zila/os.h"

int cmd_open(struct cli *cli, int argc, char **argv);
int cmd_open(struct cli *cli, int argc, char **argv)
{
	(void)argv;
	if (argc > 1)
		return cli_usage("open", "open takes no arguments");
	json_t *resp = NULL;
	int r = cli_ctl_call(cli, json_pack("{s:s}", "cmd", "web-login"), &resp);
	const char *url = json_string_value(json_object_get(resp, "url"));
	if (r == CLI_OK && url == NULL) {
		cli_err("the daemon gave no login link");
		r = CLI_FAIL;
	}
	if (r != CLI_OK) {
		/* From the Start menu the window would close before the reason could be read. */
		if (zila_os_console_own()) {
			fprintf(stderr, "\nPress Enter to close this window.\n");
			(void)getchar();
		}
	} else if (cli->json) {
		printf("{\"url\":\"%s\"}\n", url);
	} else if (zila_os_open_url(url) == 0) {
		printf("Opening zila's web interface in your browser. If it does not open, open this link\n"
		       "in a browser on this computer (once, within 5 minutes):\n\n  %s\n", url);
	} else {
		printf("Open this link in a browser on this computer (once, within 5 minutes):\n\n  %s\n", url);
	}
	json_decref(resp);
	return r;
}
