/* Names where a person reads: districts by name (not their 32-hex ids), devices by the name
 * on their certificate and the id `zila devices` prints (not a hex prefix), times in local
 * time with the zone. `--json` output keeps the ids and the seconds. */
#ifndef ZILA_CLI_NAMES_H
#define ZILA_CLI_NAMES_H

#include <stddef.h>
#include <stdint.h>

#include "cli.h"

struct zila_store;

/* Resolves what a person typed for a district (its id, code, name or local name; case and
 * surrounding blanks do not matter) against the replica's districts table. On success copies
 * the id to id_out and returns CLI_OK; an unknown or ambiguous district prints what to do
 * instead and returns CLI_FAIL. */
int cli_district_resolve(struct cli *cli, const char *typed, char *id_out, size_t n);

/* "Patna" for a district id the replica knows, else the id itself; "all districts" for "*". */
void cli_district_label(struct cli *cli, const char *id, char *out, size_t n);

/* "lap-patna-1 (ABCD-EFGH-JKMN-PQRS-TV)" for a device with a certificate here, else its id. */
void cli_device_label(struct zila_store *s, const uint8_t device_pk[32], char *out, size_t n);

/* "2026-12-07 11:04:12 IST": a time in seconds, in local time with its zone. */
void cli_local_time(char out[40], uint64_t secs);

#endif
