/* zila schema: HQ changes the organisation's schema, and every laptop follows.
 *   zila schema [list]
 *   zila schema add-column TABLE COLUMN TYPE [--default VALUE] [--not-null]
 *   zila schema add-table TABLE [--partition COLUMN | --org-wide] COLUMN-DEF...
 *   zila schema add-index NAME TABLE COLUMN...
 *   zila schema drop-index NAME
 *   zila schema track TABLE [--partition COLUMN | --org-wide]
 *   zila schema sql STATEMENT [--partition COLUMN]
 * Each change is one schema version, signed in HQ's org-wide feed (proto/schema/README.md). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "zila/buf.h"
#include "zila/schema.h"
#include "zila/store.h"

static int put(struct zila_buf *b, const char *s)
{
	return zila_buf_put(b, s, strlen(s));
}

/* "name" with quotes doubled */
static int put_id(struct zila_buf *b, const char *name)
{
	int r = zila_buf_put_u8(b, '"');
	for (const char *p = name; r == 0 && *p; p++)
		r = *p == '"' ? put(b, "\"\"") : zila_buf_put_u8(b, (uint8_t)*p);
	return r ? r : zila_buf_put_u8(b, '"');
}

/* A constant: a number as it is, anything else as a quoted string. */
static int put_const(struct zila_buf *b, const char *v)
{
	char *end = NULL;
	(void)strtod(v, &end);
	if (v[0] != '\0' && end != NULL && *end == '\0' && v[0] != '+')
		return put(b, v);
	int r = zila_buf_put_u8(b, '\'');
	for (const char *p = v; r == 0 && *p; p++)
		r = *p == '\'' ? put(b, "''") : zila_buf_put_u8(b, (uint8_t)*p);
	return r ? r : zila_buf_put_u8(b, '\'');
}

static const char *text(struct zila_buf *b)
{
	if (zila_buf_put_u8(b, 0) != 0)
		return NULL;
	return (const char *)b->p;
}

struct list_ctx {
	struct cli *cli;
	int n;
};

static int list_one(void *ctx, uint32_t v, const char *sql, const char *pcol, const uint8_t *origin, uint64_t hlc,
		    int state, const char *why)
{
	struct list_ctx *l = ctx;
	static const char *const states[] = { "applied", "same", "lost" };
	char dev[17] = "?", when[32];
	if (origin != NULL)
		cli_short_device(dev, origin);
	cli_hlc_time(when, hlc);
	if (l->cli->json) {
		printf("%s{\"version\":%u,\"sql\":", l->n++ ? "," : "", v);
		cli_json_str(sql);
		printf(",\"partition\":");
		if (pcol)
			cli_json_str(pcol);
		else
			printf("null");
		printf(",\"device\":\"%s\",\"at\":\"%s\",\"state\":\"%s\",\"why\":", dev, when,
		       states[state >= 0 && state <= 2 ? state : 0]);
		if (why)
			cli_json_str(why);
		else
			printf("null");
		printf("}");
	} else {
		printf("%4u  %s  by %s", v, when, dev);
		if (pcol)
			printf("  (partitioned by %s)", pcol);
		printf("\n      %s\n", sql);
		if (state == ZILA_SCHEMA_LOST)
			printf("      NOT APPLIED: %s\n", why ? why : "it lost to another HQ device's change");
		else if (state == ZILA_SCHEMA_SAME)
			printf("      nothing to do: %s\n", why ? why : "the same change as one before it");
	}
	return 0;
}

static void local_one(void *ctx, const char *name)
{
	int *n = ctx;
	printf("%s'%s'", (*n)++ ? ", " : "local, not synced: ", name);
}

static int list(struct cli *cli, struct zila_store *s)
{
	uint32_t v = zila_schema_version(s);
	if (cli->json) {
		printf("{\"version\":%u,\"changes\":[", v);
		struct list_ctx l = { cli, 0 };
		int r = zila_schema_each(s, list_one, &l);
		printf("]}\n");
		return r == 0 ? CLI_OK : CLI_FAIL;
	}
	printf("schema version %u (1: the default schema%s)\n", v, v > 1 ? "; the changes since:" : "");
	struct list_ctx l = { cli, 0 };
	if (zila_schema_each(s, list_one, &l) != 0) {
		cli_err("cannot read the schema versions of this replica");
		return CLI_FAIL;
	}
	int n = 0;
	if (zila_schema_local_each(s, local_one, &n) != 0)
		return CLI_FAIL;
	if (n)
		printf("\n");
	return CLI_OK;
}

/* One change: made (or with --dry-run only checked) and said. */
static int make(struct cli *cli, struct zila_store *s, const char *sql, const char *pcol, bool dry, bool track)
{
	struct zila_error err;
	uint32_t v = 0;
	zila_error_clear(&err);
	int r = dry ? zila_schema_check(s, sql, pcol, &err)
		: track ? zila_schema_track(s, sql, pcol, &v, &err) : zila_schema_change(s, sql, pcol, &v, &err);
	if (r != 0) {
		cli_err("schema change refused: %s", zila_error_msg(&err, r));
		return CLI_FAIL;
	}
	if (cli->json) {
		printf("{\"version\":%u,\"dry_run\":%s,\"sql\":", dry ? zila_schema_version(s) + 1 : v, dry ? "true" : "false");
		cli_json_str(sql);
		printf("}\n");
	} else if (dry) {
		printf("would make schema version %u: %s\n", zila_schema_version(s) + 1, sql);
	} else {
		printf("schema version %u: %s\n", v, sql);
	}
	return CLI_OK;
}

int cmd_schema(struct cli *cli, int argc, char **argv);
int cmd_schema(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "partition", required_argument, NULL, 'p' },
					      { "org-wide", no_argument, NULL, 'o' },
					      { "default", required_argument, NULL, 'D' },
					      { "not-null", no_argument, NULL, 'N' },
					      { "dry-run", no_argument, NULL, 'n' },
					      { NULL, 0, NULL, 0 } };
	const char *pcol = NULL, *dflt = NULL;
	bool org = false, notnull = false, dry = false, pset = false;
	struct zila_store *s = cli->store;
	struct zila_buf q;
	int c, rc = CLI_USAGE;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+p:", opts, NULL)) != -1) {
		if (c == 'p')
			pcol = optarg, pset = true;
		else if (c == 'o')
			org = true;
		else if (c == 'D')
			dflt = optarg;
		else if (c == 'N')
			notnull = true;
		else if (c == 'n')
			dry = true;
		else
			return cli_usage("schema", "unknown option");
	}
	/* options may come after the subcommand too */
	const char *sub = optind < argc ? argv[optind] : "list";
	int first = optind < argc ? optind : argc - 1;
	argc -= first;
	argv += first; /* argv[0] is the subcommand now */
	optind = 0;    /* glibc: scan afresh */
	while ((c = getopt_long(argc, argv, "p:", opts, NULL)) != -1) {
		if (c == 'p')
			pcol = optarg, pset = true;
		else if (c == 'o')
			org = true;
		else if (c == 'D')
			dflt = optarg;
		else if (c == 'N')
			notnull = true;
		else if (c == 'n')
			dry = true;
		else
			return cli_usage("schema", "unknown option");
	}
	char **args = argv + optind;
	int nargs = argc - optind;
	if (org && pset)
		return cli_usage("schema", "--partition and --org-wide do not go together");
	zila_buf_init(&q, ZILA_SCHEMA_SQL_MAX);
	int r = 0;
	if (strcmp(sub, "list") == 0) {
		rc = nargs == 0 ? list(cli, s) : cli_usage("schema", "list takes no arguments");
		goto out;
	}
	if (strcmp(sub, "add-column") == 0) {
		if (nargs != 3) {
			rc = cli_usage("schema", "add-column needs TABLE COLUMN TYPE (e.g. people voter_id TEXT)");
			goto out;
		}
		r = put(&q, "ALTER TABLE ");
		r = r ? r : put_id(&q, args[0]);
		r = r ? r : put(&q, " ADD COLUMN ");
		r = r ? r : put_id(&q, args[1]);
		r = r ? r : put(&q, " ");
		r = r ? r : put(&q, args[2]);
		if (notnull)
			r = r ? r : put(&q, " NOT NULL");
		if (dflt != NULL) {
			r = r ? r : put(&q, " DEFAULT ");
			r = r ? r : put_const(&q, dflt);
		}
	} else if (strcmp(sub, "add-table") == 0) {
		if (nargs < 1) {
			rc = cli_usage("schema", "add-table needs TABLE and its columns (e.g. volunteers \"name TEXT NOT NULL\")");
			goto out;
		}
		if (!org && pcol == NULL)
			pcol = "district_id";
		bool has_pcol = false;
		for (int i = 1; pcol != NULL && i < nargs; i++)
			has_pcol |= strncmp(args[i], pcol, strlen(pcol)) == 0 && (args[i][strlen(pcol)] == ' ' || args[i][strlen(pcol)] == '\0');
		r = put(&q, "CREATE TABLE ");
		r = r ? r : put_id(&q, args[0]);
		r = r ? r : put(&q, " (\n\tid TEXT PRIMARY KEY NOT NULL DEFAULT (lower(hex(randomblob(16))))");
		if (pcol != NULL && !has_pcol) {
			r = r ? r : put(&q, ",\n\t");
			r = r ? r : put_id(&q, pcol);
			r = r ? r : put(&q, strcmp(pcol, "district_id") == 0 ? " TEXT REFERENCES districts(id)" : " TEXT");
		}
		for (int i = 1; r == 0 && i < nargs; i++) {
			r = put(&q, ",\n\t");
			r = r ? r : put(&q, args[i]);
		}
		r = r ? r : put(&q, "\n)");
	} else if (strcmp(sub, "add-index") == 0) {
		if (nargs < 3) {
			rc = cli_usage("schema", "add-index needs NAME TABLE COLUMN...");
			goto out;
		}
		r = put(&q, "CREATE INDEX ");
		r = r ? r : put_id(&q, args[0]);
		r = r ? r : put(&q, " ON ");
		r = r ? r : put_id(&q, args[1]);
		r = r ? r : put(&q, " (");
		for (int i = 2; r == 0 && i < nargs; i++) {
			r = i > 2 ? put(&q, ", ") : 0;
			r = r ? r : put_id(&q, args[i]);
		}
		r = r ? r : put(&q, ")");
	} else if (strcmp(sub, "drop-index") == 0) {
		if (nargs != 1) {
			rc = cli_usage("schema", "drop-index needs the index's NAME");
			goto out;
		}
		r = put(&q, "DROP INDEX ");
		r = r ? r : put_id(&q, args[0]);
	} else if (strcmp(sub, "sql") == 0) {
		if (nargs != 1) {
			rc = cli_usage("schema", "sql needs one statement, in quotes");
			goto out;
		}
		r = put(&q, args[0]);
	} else if (strcmp(sub, "track") == 0) {
		char *tsql = NULL, *isql = NULL;
		struct zila_error err;
		zila_error_clear(&err);
		if (nargs != 1) {
			rc = cli_usage("schema", "track needs the TABLE");
			goto out;
		}
		if (dry) {
			rc = cli_usage("schema", "track has no --dry-run");
			goto out;
		}
		int rr = zila_schema_table_sql(s, args[0], &tsql, &isql, &err);
		if (rr != 0) {
			cli_err("%s", zila_error_msg(&err, rr));
			rc = CLI_FAIL;
			goto out;
		}
		rc = make(cli, s, tsql, org ? NULL : pcol, false, true);
		for (char *p = isql; rc == CLI_OK && p != NULL && *p != '\0';) {
			char *e = strstr(p, ";\n");
			if (e != NULL)
				*e = '\0';
			rc = make(cli, s, p, NULL, false, true);
			p = e ? e + 2 : NULL;
		}
		free(tsql);
		free(isql);
		goto out;
	} else {
		rc = cli_usage("schema", "unknown subcommand '%s'", sub);
		goto out;
	}
	if (r != 0 || text(&q) == NULL) {
		cli_err("the change is too long");
		rc = CLI_FAIL;
		goto out;
	}
	rc = make(cli, s, (const char *)q.p, strcmp(sub, "add-table") == 0 || strcmp(sub, "sql") == 0 ? pcol : NULL, dry,
		  false);
out:
	zila_buf_release(&q);
	return rc;
}
