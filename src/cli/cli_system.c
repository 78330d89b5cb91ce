/* Which replica a command works on when none is named, and what a user may do with a replica
 * that belongs to another user: the Debian package's service replica (/var/lib/zila), run by
 * the user zila, whose group's members reach the daemon but never the keys. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "zila/store.h"

static bool is_dir(const char *path)
{
	struct stat st;
	/* A directory we may not enter still counts: it is there, and the user is told why not. */
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *cli_default_dir(char *buf, size_t n)
{
	const char *env = getenv("ZILA_DIR");
	if (env != NULL && env[0] != '\0')
		return env;
	const char *home = getenv("HOME");
	snprintf(buf, n, "%s/.zila", home != NULL && home[0] != '\0' ? home : ".");
	if (!is_dir(buf) && is_dir(ZILA_SYSTEM_DIR))
		return ZILA_SYSTEM_DIR;
	return buf;
}

static const char *user_name(uid_t uid, char *buf, size_t n)
{
	const struct passwd *pw = getpwuid(uid);
	if (pw != NULL)
		snprintf(buf, n, "%s", pw->pw_name);
	else
		snprintf(buf, n, "%u", (unsigned)uid);
	return buf;
}

static const char *group_name(gid_t gid, char *buf, size_t n)
{
	const struct group *gr = getgrgid(gid);
	if (gr != NULL)
		snprintf(buf, n, "%s", gr->gr_name);
	else
		snprintf(buf, n, "%u", (unsigned)gid);
	return buf;
}

int cli_check_reach(const struct cli *cli, const char *cmd, unsigned flags)
{
	struct stat st;
	char owner[64], group[64], me[64], key[4200];
	if (stat(cli->dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid == geteuid())
		return CLI_OK; /* ours, or not there: the command says what it says */
	user_name(st.st_uid, owner, sizeof(owner));
	group_name(st.st_gid, group, sizeof(group));
	user_name(geteuid(), me, sizeof(me));
	if (access(cli->dir, X_OK) != 0 && errno == EACCES) {
		cli_err("cannot reach the replica in '%s': it belongs to the user %s, and you (%s) are not in its "
			"group %s.\nAsk the administrator to add you ('sudo adduser %s %s', then log in again), "
			"or make a replica of your own with 'zila -d ~/.zila init'.",
			cli->dir, owner, me, group, me, group);
		return CLI_FAIL;
	}
	if (flags & CLI_DAEMON)
		return CLI_OK; /* through the daemon's socket: its mode says who may */
	if (geteuid() == 0) {
		/* root could open it, and leave behind files (the -wal, a new key) its owner cannot. */
		cli_err("'%s' belongs to the user %s: run 'zila %s' as that user, not as root: "
			"'sudo -u %s zila -d %s %s ...'.",
			cli->dir, owner, cmd, owner, cli->dir, cmd);
		return CLI_FAIL;
	}
	snprintf(key, sizeof(key), "%s/%s", cli->dir, ZILA_KEY_FILE);
	if (access(key, R_OK) == 0)
		return CLI_OK;
	if (errno == EACCES) {
		cli_err("'zila %s' opens the replica in '%s' with its device key, which only the user %s may read.\n"
			"Run it as that user: 'sudo -u %s zila -d %s %s ...'. Members of the group %s may use "
			"'zila status', 'zila peers' and 'zila sync' through its daemon.",
			cmd, cli->dir, owner, owner, cli->dir, cmd, group);
		return CLI_FAIL;
	}
	if (errno == ENOENT && access(cli->dir, W_OK) != 0) {
		cli_err("there is no replica in '%s' yet, and only the user %s may make one there: "
			"'sudo -u %s zila -d %s init' (or join).\nFor a replica of your own: 'zila -d ~/.zila %s'.",
			cli->dir, owner, owner, cli->dir, cmd);
		return CLI_FAIL;
	}
	return CLI_OK;
}
