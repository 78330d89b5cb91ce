/* zila service: the daemon as a Windows service (the Service Control Manager), started at
 * boot for the whole machine; what systemd's unit (tools/zila.service) is on Linux.
 *   zila -d DIR service install [DAEMON OPTIONS]   (as an administrator; DIR made by init)
 *   zila service uninstall                          (stops it; the replica stays)
 *   zila -d DIR service run [DAEMON OPTIONS]        (what the service manager starts) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "zila/os.h"

#define SERVICE_NAME "zila"

int cmd_daemon(struct cli *cli, int argc, char **argv);
int cmd_service(struct cli *cli, int argc, char **argv);

struct svc_ctx {
	struct cli *cli;
	int argc;
	char **argv;
};

static int svc_run(void *arg)
{
	struct svc_ctx *c = arg;
	return cmd_daemon(c->cli, c->argc, c->argv) == CLI_OK ? 0 : ZILA_EINTERNAL;
}

/* The service manager's stop: the daemon's own stop request, over its control channel. */
static void svc_stop(void *arg)
{
	struct svc_ctx *c = arg;
	struct zila_os_conn *conn = NULL;
	static const char req[] = "{\"cmd\":\"stop\"}\n";
	if (zila_os_ctl_dial(&conn, c->cli->dir) == 0 &&
	    zila_os_conn_send(conn, req, sizeof(req) - 1, zila_os_mono_ms() + 5000) != 0)
		fprintf(stderr, "zila: cannot ask the daemon to stop\n");
	zila_os_conn_close(conn);
}

static int install(struct cli *cli, int argc, char **argv)
{
	char dir[4096], self[4096], cmdline[16384];
	struct zila_error err;
	zila_error_clear(&err);
	if (zila_os_realpath(cli->dir, dir, sizeof(dir)) != 0) {
		cli_err("no replica in '%s': run 'zila -d %s init' first", cli->dir, cli->dir);
		return CLI_FAIL;
	}
	if (zila_os_self_path(self, sizeof(self)) != 0) {
		cli_err("cannot tell where this program is");
		return CLI_FAIL;
	}
	int n = snprintf(cmdline, sizeof(cmdline), "\"%s\" -d \"%s\" service run", self, dir);
	for (int i = 2; i < argc && n > 0 && (size_t)n < sizeof(cmdline); i++) {
		if (strchr(argv[i], '"') != NULL)
			return cli_usage("service", "option '%s' holds a quote", argv[i]);
		n += snprintf(cmdline + n, sizeof(cmdline) - (size_t)n, " \"%s\"", argv[i]);
	}
	if (n < 0 || (size_t)n >= sizeof(cmdline))
		return cli_usage("service", "the command line is too long");
	int r = zila_os_service_install(SERVICE_NAME, "zila sync", cmdline, &err);
	if (r != 0) {
		cli_err("%s", zila_error_msg(&err, r));
		return CLI_FAIL;
	}
	printf("installed the service 'zila' (starts at boot): %s\n", cmdline);
	return CLI_OK;
}

int cmd_service(struct cli *cli, int argc, char **argv)
{
	struct zila_error err;
	zila_error_clear(&err);
	if (argc < 2)
		return cli_usage("service", "service needs install, uninstall or run");
	if (strcmp(argv[1], "install") == 0)
		return install(cli, argc, argv);
	if (strcmp(argv[1], "uninstall") == 0) {
		if (argc > 2)
			return cli_usage("service", "uninstall takes no arguments");
		int r = zila_os_service_uninstall(SERVICE_NAME, &err);
		if (r != 0) {
			cli_err("%s", zila_error_msg(&err, r));
			return CLI_FAIL;
		}
		printf("removed the service 'zila'; the replica stays in place\n");
		return CLI_OK;
	}
	if (strcmp(argv[1], "run") == 0) {
		/* No console: the daemon's log goes to DIR/zila.log. */
		char log[4200];
		snprintf(log, sizeof(log), "%s/zila.log", cli->dir);
		if (zila_os_stderr_to(log) != 0)
			fprintf(stderr, "zila: cannot write the service's log '%s'\n", log);
		static char daemon_cmd[] = "daemon";
		argv[1] = daemon_cmd;
		struct svc_ctx c = { cli, argc - 1, argv + 1 };
		int r = zila_os_service_run(SERVICE_NAME, svc_run, svc_stop, &c, &err);
		if (r != 0) {
			cli_err("%s", zila_error_msg(&err, r));
			return r == ZILA_EINVAL ? CLI_USAGE : CLI_FAIL;
		}
		return CLI_OK;
	}
	return cli_usage("service", "unknown service command '%s' (install, uninstall or run)", argv[1]);
}
