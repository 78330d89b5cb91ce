/* The zila command line: shared helpers and the command table. One file per command,
 * src/cli/cmd_<name>.c, each exporting one cmd_<name>() listed in commands.c. */
#ifndef ZILA_CLI_H
#define ZILA_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "zila/err.h"
#include "zila/trust.h"

struct zila_store;

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2, CLI_NODAEMON = 3 };

struct cli {
	const char *dir; /* replica directory: -d DIR, else cli_default_dir() */
	bool json;       /* --json: machine-readable output */
	bool verbose;
	/* The replica, opened by main before a command whose flags ask for it (git's RUN_SETUP)
	 * and closed after it; NULL for the others. tc holds its trust hooks (CLI_TRUST). */
	struct zila_store *store;
	struct zila_trust_ctx tc;
};

/* What main does for a command before calling it. */
enum {
	CLI_STORE = 1 << 0, /* open the replica in cli->dir into cli->store (errors said, exit 1) */
	CLI_TRUST = 1 << 1, /* ... with the trust hooks installed (certificates, revocations) */
	CLI_DAEMON = 1 << 2, /* only talks to the daemon's control socket: no keys needed */
};

/* The replica directory when -d is not given: $ZILA_DIR, else ~/.zila (Windows:
 * %LOCALAPPDATA%\\zila) when it exists, else the installed service's replica
 * (zila_os_system_dir: /var/lib/zila, the Debian package's) when it exists, else ~/.zila (to
 * be made). buf (n bytes) may hold it. */
const char *cli_default_dir(char *buf, size_t n);
/* Whether dir is the installed service's replica and another user's (its daemon is the
 * service manager's to start). */
bool cli_is_system_dir(const char *dir);
/* True when dir is the installed service's replica (/var/lib/zila; Windows: %ProgramData%\zila),
 * whoever owns it. */
bool cli_is_service_dir(const char *dir);
/* For a replica directory of another user (the service's): says plainly, before the command
 * runs, why this user cannot run cmd on it (not in its group; a command that needs the keys,
 * which are its owner's alone; nothing made there yet) and returns CLI_FAIL; else CLI_OK. */
int cli_check_reach(const struct cli *cli, const char *cmd, unsigned flags);

struct cli_command {
	const char *name;
	int (*fn)(struct cli *cli, int argc, char **argv);
	const char *summary;
	const char *usage; /* one or more lines after "usage: " */
	unsigned flags;    /* CLI_STORE, CLI_TRUST */
};

extern const struct cli_command cli_commands[];

/* More lines for a command's --help and 'zila help COMMAND' (name NULL ends the table). */
struct cli_details {
	const char *name;
	const char *text;
};

extern const struct cli_details cli_details[];

/* Prints "zila: msg" to stderr. */
void cli_err(const char *fmt, ...) ZILA_PRINTF(1, 2);
/* Prints the error and the command's usage to stderr; returns CLI_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) ZILA_PRINTF(2, 3);
/* True when argv holds -h or --help; prints the command's usage to stdout. */
bool cli_wants_help(const char *cmd, int argc, char **argv);
/* Opens the replica in cli->dir, printing a clear error on failure. */
int cli_open_store(struct cli *cli, struct zila_store **out);
/* Prints a JSON string literal (quoted, escaped) to stdout. */
void cli_json_str(const char *s);

struct zila_value;
/* Prints a value as text (NULL prints as "NULL") or, with json, as a JSON value. */
void cli_print_value(const struct zila_value *v, bool json);
/* A short, readable form of a device key: the first 8 bytes in hex. */
void cli_short_device(char out[17], const uint8_t *key);
/* "YYYY-MM-DD HH:MM:SS" (UTC) of an HLC timestamp, for --json; people read cli_local_time. */
void cli_hlc_time(char out[32], uint64_t hlc);

#endif
