/* zila stop: ask the running daemon to shut down, and wait until it has.
 *   zila stop */
#include <stdio.h>

#include "cli_ctl.h"
#include "zila/daemon.h"
#include "zila/os.h"

int cmd_stop(struct cli *cli, int argc, char **argv);
int cmd_stop(struct cli *cli, int argc, char **argv)
{
	(void)argv;
	if (argc > 1)
		return cli_usage("stop", "stop takes no arguments");
	json_t *resp = NULL;
	int r = cli_ctl_call(cli, json_pack("{s:s}", "cmd", "stop"), &resp);
	if (r != CLI_OK)
		return r;
	long pid = (long)json_integer_value(json_object_get(resp, "pid"));
	json_decref(resp);
	/* The daemon holds its lock until the replica is closed: wait for that (30 s at most). */
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s", cli->dir, ZILA_LOCK_FILE);
	bool stopped = !zila_os_lock_held(path);
	for (int i = 0; !stopped && i < 300; i++) {
		zila_os_sleep_ms(100);
		stopped = !zila_os_lock_held(path);
	}
	if (!stopped) {
		cli_err("the daemon (pid %ld) is still shutting down after 30 s", pid);
		return CLI_FAIL;
	}
	if (cli->json)
		printf("{\"stopped\":true,\"pid\":%ld}\n", pid);
	else
		printf("stopped the daemon (pid %ld)\n", pid);
	return CLI_OK;
}
