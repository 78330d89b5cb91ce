/* Opening the replica file with a plain SQLite connection (see cli_db.h). */
#include "cli_db.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "zila/store.h"

int cli_open_db(struct cli *cli, bool write, sqlite3 **out)
{
	char path[4096];
	struct stat sb;
	*out = NULL;
	if (snprintf(path, sizeof(path), "%s/%s", cli->dir, ZILA_DB_FILE) >= (int)sizeof(path)) {
		cli_err("replica directory '%s' is too long", cli->dir);
		return CLI_FAIL;
	}
	if (stat(path, &sb) != 0) {
		cli_err("no replica in '%s' (run 'zila -d %s init' first)", cli->dir, cli->dir);
		return CLI_FAIL;
	}
	int flags = write ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY;
	if (sqlite3_open_v2(path, out, flags, NULL) != SQLITE_OK) {
		cli_err("cannot open '%s': %s", path, *out ? sqlite3_errmsg(*out) : "out of memory");
		sqlite3_close(*out);
		*out = NULL;
		return CLI_FAIL;
	}
	sqlite3_busy_timeout(*out, 10000);
	sqlite3_exec(*out, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
	return CLI_OK;
}

const char *cli_errno_msg(int e)
{
	static char buf[256];
	snprintf(buf, sizeof(buf), "%s", strerror(e));
	if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
		buf[0] = (char)(buf[0] + 32);
	return buf;
}
