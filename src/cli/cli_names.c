/* Names where a person reads (see cli_names.h). */
#include "cli_names.h"

#include <ctype.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli_db.h"
#include "zila/os.h"
#include "zila/store.h"
#include "zila/trust.h"

static sqlite3 *open_districts(struct cli *cli);

/* The replica's districts table, read-only, opened once per process (`zila log` names a
 * district per line); NULL (nothing said) when the replica has none: a replica without the
 * default schema names its partitions as it likes. */
static sqlite3 *districts_db(struct cli *cli)
{
	static sqlite3 *cached;
	static bool tried;
	if (tried)
		return cached;
	tried = true;
	cached = open_districts(cli);
	return cached;
}

static sqlite3 *open_districts(struct cli *cli)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char path[4200];
	/* A member of the service replica's group reads the daemon's answers, not the database
	 * (0600, the service user's): ids stand for the names then, with nothing to complain of. */
	snprintf(path, sizeof(path), "%s/%s", cli->dir, ZILA_DB_FILE);
	if (zila_os_access(path, false) == ZILA_EAUTH) /* Windows: its ACL (the group zila's clerk) */
		return NULL;
	if (cli_open_db(cli, false, &db) != CLI_OK)
		return NULL;
	bool have = sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'districts'",
				       -1, &st, NULL) == SQLITE_OK &&
		    sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	if (!have) {
		sqlite3_close(db);
		return NULL;
	}
	return db;
}

/* typed without blanks around it, into buf */
static const char *trimmed(const char *typed, char *buf, size_t n)
{
	while (isspace((unsigned char)*typed))
		typed++;
	size_t len = strlen(typed);
	while (len > 0 && isspace((unsigned char)typed[len - 1]))
		len--;
	snprintf(buf, n, "%.*s", (int)len, typed);
	return buf;
}

int cli_district_resolve(struct cli *cli, const char *typed, char *id_out, size_t n)
{
	char want[512];
	trimmed(typed, want, sizeof(want));
	if (want[0] == '\0') {
		cli_err("the district is empty; give its name, code or id");
		return CLI_FAIL;
	}
	sqlite3 *db = districts_db(cli);
	if (db == NULL) {
		snprintf(id_out, n, "%s", want);
		return CLI_OK;
	}
	/* An exact id first; then code, name or local name, whatever their case. */
	static const char sql[] =
		"SELECT d.id, d.name, coalesce(s.name, '') FROM districts d LEFT JOIN states s ON s.id = d.state_id "
		"WHERE d.id = ?1 UNION ALL "
		"SELECT d.id, d.name, coalesce(s.name, '') FROM districts d LEFT JOIN states s ON s.id = d.state_id "
		"WHERE d.id <> ?1 AND (lower(d.code) = lower(?1) OR lower(d.name) = lower(?1) OR d.name_local = ?1) "
		"AND NOT EXISTS (SELECT 1 FROM districts WHERE id = ?1) ORDER BY 2, 1 LIMIT 6";
	sqlite3_stmt *st = NULL;
	int found = 0, rc = CLI_FAIL;
	char list[1024] = "";
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		cli_err("cannot read the districts table: %s", sqlite3_errmsg(db));
		goto out;
	}
	sqlite3_bind_text(st, 1, want, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);
		const char *name = (const char *)sqlite3_column_text(st, 1);
		const char *state = (const char *)sqlite3_column_text(st, 2);
		if (found == 0)
			snprintf(id_out, n, "%s", id);
		size_t used = strlen(list);
		snprintf(list + used, sizeof(list) - used, "\n  %s%s%s  (id %s)", name ? name : "", state[0] ? ", " : "",
			 state, id);
		found++;
	}
	if (found == 1) {
		rc = CLI_OK;
	} else if (found == 0) {
		cli_err("no district '%s' in this replica's districts table (by id, code or name); "
			"see 'zila catalogue list', or add it with 'zila catalogue add district \"%s\" --state STATE'",
			want, want);
	} else {
		cli_err("'%s' names more than one district; give the id or the code of the one you mean:%s", want, list);
	}
out:
	sqlite3_finalize(st);
	return rc;
}

void cli_district_label(struct cli *cli, const char *id, char *out, size_t n)
{
	if (strcmp(id, "*") == 0) {
		snprintf(out, n, "all districts");
		return;
	}
	snprintf(out, n, "%s", id);
	sqlite3 *db = districts_db(cli);
	if (db == NULL)
		return;
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, "SELECT name FROM districts WHERE id = ?1", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
			snprintf(out, n, "%s", (const char *)sqlite3_column_text(st, 0));
	}
	sqlite3_finalize(st);
}

void cli_device_label(struct zila_store *s, const uint8_t device_pk[32], char *out, size_t n)
{
	char id[ZILA_DEVICE_ID_LEN + 1];
	struct zila_cert c;
	zila_device_id(device_pk, id);
	if (s != NULL && zila_trust_cert_get(s, device_pk, &c) == 0 && c.name[0] != '\0')
		snprintf(out, n, "%s (%s)", c.name, id);
	else
		snprintf(out, n, "%s", id);
}

void cli_local_time(char out[40], uint64_t secs)
{
	time_t t = (time_t)secs;
	struct tm tm;
	if (localtime_r(&t, &tm) == NULL || strftime(out, 40, "%Y-%m-%d %H:%M:%S %Z", &tm) == 0)
		snprintf(out, 40, "?");
}
