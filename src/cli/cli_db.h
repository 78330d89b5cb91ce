/* A plain SQLite connection to the replica file, for commands that read or write user
 * tables with ordinary SQL (import, export, report). */
#ifndef ZILA_CLI_DB_H
#define ZILA_CLI_DB_H

#include <sqlite3.h>
#include <stdbool.h>

#include "cli.h"

/* Opens DIR/zila.db (never creates it) read-write or read-only, with a busy timeout and
 * foreign keys on. The capture triggers fire on this connection, so writes through it are
 * captured like any application's. Prints the error and returns CLI_FAIL on failure;
 * *out is the caller's to sqlite3_close(). */
int cli_open_db(struct cli *cli, bool write, sqlite3 **out);

/* strerror(e) with a lowercase first letter, as zila's messages are; a static buffer. */
const char *cli_errno_msg(int e);

#endif
