/* Which replica a command works on when none is named, and what a user may do with a replica
 * that belongs to another user: the Debian package's service replica (/var/lib/zila), run by
 * the user zila, whose group's members reach the daemon but never the keys. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "zila/os.h"
#include "zila/store.h"

static bool is_dir(const char *path)
{
	struct zila_os_owner o;
	zila_os_dir_owner(path, &o);
	return o.exists;
}

const char *cli_default_dir(char *buf, size_t n)
{
	static char sys[4096];
	const char *env = getenv("ZILA_DIR");
	if (env != NULL && env[0] != '\0')
		return env;
	if (zila_os_default_dir(buf, n) != 0)
		snprintf(buf, n, "./.zila");
	if (!is_dir(buf) && zila_os_system_dir(sys, sizeof(sys)) == 0 && is_dir(sys))
		return sys;
	return buf;
}

bool cli_is_service_dir(const char *dir)
{
	char sys[4096];
	return zila_os_system_dir(sys, sizeof(sys)) == 0 && strcmp(dir, sys) == 0;
}

bool cli_is_system_dir(const char *dir)
{
	char sys[4096];
	struct zila_os_owner o;
	if (zila_os_system_dir(sys, sizeof(sys)) != 0 || strcmp(dir, sys) != 0)
		return false;
	zila_os_dir_owner(dir, &o);
	return o.exists && !o.mine;
}

int cli_check_reach(const struct cli *cli, const char *cmd, unsigned flags)
{
	struct zila_os_owner o;
	char key[4200];
	zila_os_dir_owner(cli->dir, &o);
	if (!o.exists || o.mine)
		return CLI_OK; /* ours, or not there: the command says what it says */
	if (!o.enter) {
		cli_err("cannot reach the replica in '%s': it belongs to the user %s, and you (%s) are not in its "
			"group %s.\nAsk the administrator to add you ('sudo adduser %s %s', then log in again), "
			"or make a replica of your own with 'zila -d ~/.zila init'.",
			cli->dir, o.owner, o.me, o.group, o.me, o.group);
		return CLI_FAIL;
	}
	if (flags & CLI_DAEMON)
		return CLI_OK; /* through the daemon's socket: its mode says who may */
	if (o.root) {
		/* root could open it, and leave behind files (the -wal, a new key) its owner cannot. */
		cli_err("'%s' belongs to the user %s: run 'zila %s' as that user, not as root: "
			"'sudo -u %s zila -d %s %s ...'.",
			cli->dir, o.owner, cmd, o.owner, cli->dir, cmd);
		return CLI_FAIL;
	}
	snprintf(key, sizeof(key), "%s/%s", cli->dir, ZILA_KEY_FILE);
	int r = zila_os_access(key, false);
	if (r == 0)
		return CLI_OK;
	if (r == ZILA_EAUTH) {
		cli_err("'zila %s' opens the replica in '%s' with its device key, which only the user %s may read.\n"
			"Run it as that user: 'sudo -u %s zila -d %s %s ...'. Members of the group %s may use "
			"'zila status', 'zila peers', 'zila sync' and 'zila open' through its daemon.",
			cmd, cli->dir, o.owner, o.owner, cli->dir, cmd, o.group);
		return CLI_FAIL;
	}
	if (r == ZILA_ENOTFOUND && zila_os_access(cli->dir, true) != 0) {
		cli_err("there is no replica in '%s' yet, and only the user %s may make one there: "
			"'sudo -u %s zila -d %s init' (or join).\nFor a replica of your own: 'zila -d ~/.zila %s'.",
			cli->dir, o.owner, o.owner, cli->dir, cmd);
		return CLI_FAIL;
	}
	return CLI_OK;
}
