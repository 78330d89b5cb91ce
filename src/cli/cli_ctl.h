/* Talking to the running daemon over its control socket DIR/zila.sock (a named pipe on
 * Windows; zila/os.h's control channel): one JSON request per
 * line, JSON lines back (src/net/control.c). Used by status, peers, peer, sync and stop. */
#ifndef ZILA_CLI_CTL_H
#define ZILA_CLI_CTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"

struct cli_ctl {
	struct zila_os_conn *conn;
	char *buf;
	size_t len, cap;
};

/* Connects to the daemon of cli->dir. Returns CLI_OK, or CLI_NODAEMON when none runs (the
 * message is printed unless quiet). */
int cli_ctl_open(struct cli *cli, struct cli_ctl *c, bool quiet);
void cli_ctl_close(struct cli_ctl *c);
/* Sends req (consumed). */
int cli_ctl_send(struct cli_ctl *c, json_t *req);
/* Reads the next line as JSON into *out (caller's reference) within timeout_ms (-1: no
 * limit). CLI_FAIL on EOF, timeout or a malformed line (printed). */
int cli_ctl_recv(struct cli_ctl *c, json_t **out, int timeout_ms);
/* One request, one answer; prints the daemon's error ("ok": false) and returns CLI_FAIL. */
int cli_ctl_call(struct cli *cli, json_t *req, json_t **out);

/* Prints the peer table of a peers or status answer. */
void cli_print_peers(json_t *peers);

/* "12 s ago", "5 min ago", "3 h ago", else the UTC date and time; "never" for 0. */
void cli_ago(char *out, size_t n, int64_t when);

#endif
