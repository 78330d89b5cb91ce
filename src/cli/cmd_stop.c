/* zila stop: ask the running daemon to shut down, and wait until it has.
 *   zila stop */
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "cli_ctl.h"
#include "zila/daemon.h"

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
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool stopped = fd < 0;
	for (int i = 0; !stopped && i < 300; i++) {
		if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
			stopped = true;
			break;
		}
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	if (fd >= 0)
		close(fd);
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
