/* zila catalogue: HQ keeps the organisation's catalogue (states, districts, posts) by name.
 *   zila catalogue [list]
 *   zila catalogue add state NAME [--code C] [--local NAME] [--id ID]
 *   zila catalogue add district NAME --state STATE [--code C] [--local NAME] [--id ID]
 *   zila catalogue add post NAME --level LEVEL [--rank N] [--local NAME] [--id ID]
 * The rows are ordinary org-wide rows of the default schema, written as an application
 * writes them (captured, sealed, synced to every laptop). Only HQ may write them. */
#include <getopt.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_db.h"
#include "cli_trust.h"

struct add_args {
	const char *kind, *name, *code, *local, *id, *state, *level;
	long rank;
};

/* The single value of a query with one text parameter; NULL when no row (or an error). */
static char *one_text(sqlite3 *db, const char *sql, const char *p1)
{
	sqlite3_stmt *st = NULL;
	char *v = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, p1, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
			v = strdup((const char *)sqlite3_column_text(st, 0));
	}
	sqlite3_finalize(st);
	return v;
}

/* Only HQ writes org-wide rows: said before anything is written, in words. */
static int hq_only(struct cli *cli)
{
	struct zila_store *s = NULL;
	struct zila_trust_ctx tc;
	struct zila_cert c;
	if (cli_trust_open(cli, &s, &tc) != CLI_OK)
		return CLI_FAIL;
	bool hq = zila_trust_cert_get(s, zila_store_device_pk(s), &c) == 0 && c.role == ZILA_ROLE_HQ;
	zila_store_free(s);
	if (!hq) {
		cli_err("only HQ keeps the catalogue (states, districts, posts): it is org-wide, and this "
			"device is not HQ; ask HQ to add it");
		return CLI_FAIL;
	}
	return CLI_OK;
}

static int add(struct cli *cli, const struct add_args *a)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char *state_id = NULL, *dup = NULL;
	int rc = CLI_FAIL;
	if (hq_only(cli) != CLI_OK || cli_open_db(cli, true, &db) != CLI_OK)
		return CLI_FAIL;
	const char *sql;
	if (strcmp(a->kind, "state") == 0) {
		dup = one_text(db, "SELECT id FROM states WHERE lower(name) = lower(?1)", a->name);
		sql = "INSERT INTO states(id, name, name_local, code) "
		      "VALUES (coalesce(?1, lower(hex(randomblob(16)))), ?2, ?3, ?4) RETURNING id";
	} else if (strcmp(a->kind, "district") == 0) {
		state_id = one_text(db, "SELECT id FROM states WHERE id = ?1 OR lower(code) = lower(?1) OR "
					"lower(name) = lower(?1) OR name_local = ?1 ORDER BY id = ?1 DESC LIMIT 1",
				    a->state);
		if (state_id == NULL) {
			cli_err("no state '%s' in the catalogue; add it first: zila catalogue add state \"%s\"", a->state,
				a->state);
			goto out;
		}
		sqlite3_stmt *q = NULL;
		if (sqlite3_prepare_v2(db, "SELECT id FROM districts WHERE state_id = ?1 AND lower(name) = lower(?2)", -1, &q,
				       NULL) == SQLITE_OK) {
			sqlite3_bind_text(q, 1, state_id, -1, SQLITE_STATIC);
			sqlite3_bind_text(q, 2, a->name, -1, SQLITE_STATIC);
			if (sqlite3_step(q) == SQLITE_ROW)
				dup = strdup((const char *)sqlite3_column_text(q, 0));
		}
		sqlite3_finalize(q);
		sql = "INSERT INTO districts(id, name, name_local, code, state_id) "
		      "VALUES (coalesce(?1, lower(hex(randomblob(16)))), ?2, ?3, ?4, ?5) RETURNING id";
	} else {
		dup = one_text(db, "SELECT id FROM posts WHERE lower(name) = lower(?1)", a->name);
		sql = "INSERT INTO posts(id, name, name_local, level, rank) "
		      "VALUES (coalesce(?1, lower(hex(randomblob(16)))), ?2, ?3, ?5, ?6) RETURNING id";
	}
	if (dup != NULL) {
		cli_err("%s '%s' is already in the catalogue (id %s)", a->kind, a->name, dup);
		goto out;
	}
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		cli_err("this replica has no %ss table of the default schema: %s", a->kind, sqlite3_errmsg(db));
		goto out;
	}
	sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, a->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, a->local, -1, SQLITE_STATIC);
	if (strcmp(a->kind, "post") != 0)
		sqlite3_bind_text(st, 4, a->code, -1, SQLITE_STATIC);
	if (strcmp(a->kind, "district") == 0)
		sqlite3_bind_text(st, 5, state_id, -1, SQLITE_STATIC);
	if (strcmp(a->kind, "post") == 0) {
		sqlite3_bind_text(st, 5, a->level, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 6, a->rank);
	}
	int r = sqlite3_step(st);
	if (r != SQLITE_ROW) {
		if (sqlite3_extended_errcode(db) == SQLITE_CONSTRAINT_CHECK)
			cli_err("level '%s' is not one of state, district, block, panchayat, ward, booth", a->level);
		else if (sqlite3_extended_errcode(db) == SQLITE_CONSTRAINT_PRIMARYKEY)
			cli_err("the id '%s' is taken; leave --id out and one is made", a->id);
		else
			cli_err("cannot add %s '%s': %s", a->kind, a->name, sqlite3_errmsg(db));
		goto out;
	}
	if (cli->json) {
		printf("{\"added\":\"%s\",\"id\":", a->kind);
		cli_json_str((const char *)sqlite3_column_text(st, 0));
		printf(",\"name\":");
		cli_json_str(a->name);
		printf("}\n");
	} else {
		printf("added %s '%s' (id %s)\n", a->kind, a->name, (const char *)sqlite3_column_text(st, 0));
	}
	rc = CLI_OK;
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(state_id);
	free(dup);
	return rc;
}

static int list(struct cli *cli)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	if (cli_open_db(cli, false, &db) != CLI_OK)
		return CLI_FAIL;
	static const char sql[] =
		"SELECT k, name, loc, code, under, id FROM ("
		"SELECT 1 AS o, 'state' AS k, s.name, coalesce(s.name_local, '') AS loc, coalesce(s.code, '') AS code, "
		"'' AS under, s.id FROM states s "
		"UNION ALL SELECT 2, 'district', d.name, coalesce(d.name_local, ''), coalesce(d.code, ''), "
		"coalesce(s.name, d.state_id), d.id FROM districts d LEFT JOIN states s ON s.id = d.state_id "
		"UNION ALL SELECT 3, 'post', p.name, coalesce(p.name_local, ''), '', p.level, p.id FROM posts p) "
		"ORDER BY o, under, name";
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		cli_err("this replica has no catalogue of the default schema (states, districts, posts)");
		sqlite3_close(db);
		return CLI_FAIL;
	}
	size_t n = 0;
	if (cli->json)
		printf("[");
	else
		printf("%-9s  %-24s  %-20s  %-8s  %-16s  %s\n", "KIND", "NAME", "LOCAL NAME", "CODE", "STATE/LEVEL", "ID");
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *v[6];
		for (int i = 0; i < 6; i++)
			v[i] = (const char *)sqlite3_column_text(st, i);
		if (cli->json) {
			static const char *keys[] = { "kind", "name", "name_local", "code", "under", "id" };
			printf("%s{", n ? "," : "");
			for (int i = 0; i < 6; i++) {
				printf("%s\"%s\":", i ? "," : "", keys[i]);
				cli_json_str(v[i]);
			}
			printf("}");
		} else {
			printf("%-9s  %-24s  %-20s  %-8s  %-16s  %s\n", v[0], v[1], v[2], v[3], v[4], v[5]);
		}
		n++;
	}
	if (cli->json)
		printf("]\n");
	else if (n == 0)
		printf("(the catalogue is empty: HQ adds states, districts and posts with 'zila catalogue add')\n");
	sqlite3_finalize(st);
	sqlite3_close(db);
	return CLI_OK;
}

int cmd_catalogue(struct cli *cli, int argc, char **argv);
int cmd_catalogue(struct cli *cli, int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "list") == 0) {
		if (argc > 2)
			return cli_usage("catalogue", "catalogue list takes no arguments");
		return list(cli);
	}
	if (strcmp(argv[1], "add") != 0)
		return cli_usage("catalogue", "'%s' is not 'list' or 'add'", argv[1]);
	static const struct option opts[] = { { "code", required_argument, NULL, 'c' },
					      { "local", required_argument, NULL, 'l' },
					      { "id", required_argument, NULL, 'i' },
					      { "state", required_argument, NULL, 's' },
					      { "level", required_argument, NULL, 'v' },
					      { "rank", required_argument, NULL, 'r' },
					      { NULL, 0, NULL, 0 } };
	struct add_args a = { 0 };
	int c;
	optind = 2;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c': a.code = optarg; break;
		case 'l': a.local = optarg; break;
		case 'i': a.id = optarg; break;
		case 's': a.state = optarg; break;
		case 'v': a.level = optarg; break;
		case 'r': {
			char *end;
			a.rank = strtol(optarg, &end, 10);
			if (*end != '\0' || end == optarg)
				return cli_usage("catalogue", "rank '%s' is not a whole number", optarg);
			break;
		}
		default: return cli_usage("catalogue", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (argc - optind != 2)
		return cli_usage("catalogue", "catalogue add needs a kind (state, district or post) and a name");
	a.kind = argv[optind];
	a.name = argv[optind + 1];
	if (strcmp(a.kind, "state") != 0 && strcmp(a.kind, "district") != 0 && strcmp(a.kind, "post") != 0)
		return cli_usage("catalogue", "'%s' is not state, district or post", a.kind);
	if (a.name[0] == '\0')
		return cli_usage("catalogue", "the name is empty");
	if (strcmp(a.kind, "district") == 0 && a.state == NULL)
		return cli_usage("catalogue", "a district needs --state STATE (its name, code or id)");
	if (strcmp(a.kind, "post") == 0 && a.level == NULL)
		return cli_usage("catalogue", "a post needs --level (state, district, block, panchayat, ward or booth)");
	if ((a.state && strcmp(a.kind, "district") != 0) || ((a.level || a.rank) && strcmp(a.kind, "post") != 0) ||
	    (a.code && strcmp(a.kind, "post") == 0))
		return cli_usage("catalogue", "an option given does not fit a %s", a.kind);
	return add(cli, &a);
}
