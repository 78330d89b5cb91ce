/* Helpers shared by the trust commands (org, invite, join, enrol, devices, whoami, revoke). */
#ifndef ZILA_CLI_TRUST_H
#define ZILA_CLI_TRUST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "zila/buf.h"
#include "zila/trust.h"

/* Opens the replica with the trust hooks installed in *tc (which must outlive the store). */
int cli_trust_open(struct cli *cli, struct zila_store **s, struct zila_trust_ctx *tc);
/* The wall clock in seconds. */
uint64_t cli_now(void);
/* A passphrase from the first line of file, or from a prompt on the terminal (twice when
 * confirm). *out is sodium_malloc'd: free with sodium_free. Prints its own errors. */
int cli_read_passphrase(const char *file, bool confirm, char **out, size_t *len);
/* A line typed on the terminal without echo (a secret: a passphrase, an invite code), after
 * printing what; no_tty is the error printed when there is no terminal. */
int cli_prompt_hidden(const char *what, const char *no_tty, char *buf, size_t n);
/* Reads a whole file of at most max bytes into out; prints its own errors. */
int cli_read_file(const char *path, size_t max, struct zila_buf *out);
/* Writes a new file (refusing to overwrite one) with the given mode; prints its own errors. */
int cli_write_new_file(const char *path, const void *p, size_t n, unsigned mode);
/* "7d", "12h", "30m" or plain seconds; 0 on success. */
int cli_parse_duration(const char *s, uint64_t *secs);
/* "YYYY-MM-DD" (local time) of a time in seconds. */
void cli_date(char out[32], uint64_t secs);
/* Asks a question on the terminal; 0 with a non-empty answer. */
int cli_ask(const char *question, char *answer, size_t n);
/* Finds the enrolled device a typed id (readable id, or 64 hex digits) names. Prints errors. */
int cli_find_device(struct zila_store *s, const char *typed, uint8_t pk[32]);

#endif
