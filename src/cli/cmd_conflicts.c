/* zila conflicts: values overwritten by concurrent writes, and rows parked as
 * duplicates (a UNIQUE collision), orphans (a missing parent) or invalid; `resolve` writes
 * the chosen value as a new change that every replica then agrees on. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "zila/review.h"
#include "zila/store.h"

static void print_who(const uint8_t *key, uint64_t hlc, bool json)
{
	char dev[17] = "?", when[32];
	if (key != NULL)
		cli_short_device(dev, key);
	cli_hlc_time(when, hlc);
	if (json)
		printf("\"device\":\"%s\",\"time\":\"%s\"", dev, when);
	else
		printf("%s at %s", dev, when);
}

static const char *kind_name(enum zila_park_kind k)
{
	return k == ZILA_PARK_DUP ? "duplicate" : k == ZILA_PARK_ORPHAN ? "orphan" : k == ZILA_PARK_INVALID ? "invalid" : "?";
}

static int resolve(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "keep", required_argument, NULL, 'k' }, { NULL, 0, NULL, 0 } };
	const char *keep = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'k')
			keep = optarg;
		else
			return cli_usage("conflicts", "unknown option");
	}
	if (optind + 1 != argc)
		return cli_usage("conflicts", optind >= argc ? "resolve needs a conflict ID" : "unexpected argument '%s'",
				 argv[optind + 1 < argc ? optind + 1 : 0]);
	if (keep == NULL)
		return cli_usage("conflicts", "resolve needs --keep kept|lost|VALUE");
	const char *idarg = argv[optind];
	char *end = NULL;
	errno = 0;
	long long id = strtoll(idarg, &end, 10);
	if (errno != 0 || end == idarg || *end != '\0' || id <= 0)
		return cli_usage("conflicts", "'%s' is not a conflict id", idarg);

	int rc = CLI_FAIL;
	struct zila_store *s = NULL;
	struct zila_resolved res;
	struct zila_error err;
	enum zila_keep k = strcmp(keep, "kept") == 0 ? ZILA_KEEP_KEPT
			   : strcmp(keep, "lost") == 0 ? ZILA_KEEP_LOST
						       : ZILA_KEEP_VALUE;
	memset(&res, 0, sizeof(res));
	zila_error_clear(&err);
	if (cli_open_store(cli, &s) != CLI_OK)
		goto out;
	/* The choice, its write and its seal commit together, or nothing does. */
	int r = zila_store_conflict_resolve(s, id, k, keep, &res, &err);
	if (r != 0) {
		cli_err("%s", zila_error_msg(&err, r));
		goto out;
	}
	int n = res.nresolved;
	if (cli->json)
		printf("{\"resolved\":%d,\"table\":", n);
	else
		printf("resolved %d conflict%s on %s ", n, n == 1 ? "" : "s", res.table);
	if (cli->json) {
		cli_json_str(res.table);
		printf(",\"row\":");
		cli_json_str(res.row);
		printf(",\"column\":");
		cli_json_str(res.col);
		printf(",\"written\":%s}\n", res.written ? "true" : "false");
	} else {
		printf("%s %s: %s\n", res.row, res.col, res.written ? "wrote the chosen value" : "kept the current value");
	}
	rc = CLI_OK;
out:
	zila_resolved_release(&res);
	zila_store_free(s);
	return rc;
}

struct listing {
	bool json;
	size_t n, np;
};

static int print_conflict(void *ctx, const struct zila_conflict *c)
{
	struct listing *l = ctx;
	if (l->json) {
		printf("%s{\"id\":%lld,\"table\":", l->n ? "," : "", (long long)c->id);
		cli_json_str(c->table);
		printf(",\"row\":");
		cli_print_value(&c->pk, true);
		printf(",\"column\":");
		cli_json_str(c->col);
		printf(",\"kept\":{\"value\":");
		cli_print_value(&c->kept, true);
		printf(",");
		print_who(c->kept_origin, c->kept_hlc, true);
		printf("},\"lost\":{\"value\":");
		cli_print_value(&c->lost, true);
		printf(",");
		print_who(c->lost_origin, c->lost_hlc, true);
		printf("}}");
	} else {
		if (l->n == 0)
			printf("overwritten values:\n");
		printf("  #%lld %s ", (long long)c->id, c->table);
		cli_print_value(&c->pk, false);
		printf(" %s\n    kept: ", c->col);
		cli_print_value(&c->kept, false);
		printf("  (");
		print_who(c->kept_origin, c->kept_hlc, false);
		printf(")\n    lost: ");
		cli_print_value(&c->lost, false);
		printf("  (");
		print_who(c->lost_origin, c->lost_hlc, false);
		printf(")\n");
	}
	l->n++;
	return 0;
}

static int print_parked(void *ctx, const struct zila_park *p)
{
	struct listing *l = ctx;
	const char *kind = kind_name(p->kind);
	if (l->json) {
		printf("%s{\"table\":", l->np ? "," : "");
		cli_json_str(p->table);
		printf(",\"row\":");
		cli_print_value(&p->pk, true);
		printf(",\"kind\":\"%s\"}", kind);
	} else {
		if (l->np == 0)
			printf("parked rows:\n");
		printf("  %s ", p->table);
		cli_print_value(&p->pk, false);
		printf("  %s\n", kind);
	}
	l->np++;
	return 0;
}

int cmd_conflicts(struct cli *cli, int argc, char **argv);
int cmd_conflicts(struct cli *cli, int argc, char **argv)
{
	(void)argv;
	if (argc > 1 && strcmp(argv[1], "resolve") == 0)
		return resolve(cli, argc - 1, argv + 1);
	if (argc > 1)
		return cli_usage("conflicts", "unexpected argument '%s'", argv[1]);
	struct zila_store *s = NULL;
	if (cli_open_store(cli, &s) != CLI_OK)
		return CLI_FAIL;
	struct zila_error err;
	zila_error_clear(&err);
	int r = zila_store_seal(s, NULL, &err);
	if (r != 0) {
		cli_err("%s", zila_error_msg(&err, r));
		zila_store_free(s);
		return CLI_FAIL;
	}
	struct listing l = { cli->json, 0, 0 };
	if (cli->json)
		printf("{\"conflicts\":[");
	if ((r = zila_store_conflict_each(s, print_conflict, &l)) != 0) {
		if (cli->json)
			printf("\n");
		cli_err("cannot read conflicts: %s", zila_strerror(r));
		zila_store_free(s);
		return CLI_FAIL;
	}
	if (cli->json)
		printf("],\"parked\":[");
	if ((r = zila_store_parked_each(s, ZILA_PARK_ANY, NULL, NULL, print_parked, &l)) != 0) {
		if (cli->json)
			printf("\n");
		cli_err("cannot read parked rows: %s", zila_strerror(r));
		zila_store_free(s);
		return CLI_FAIL;
	}
	if (cli->json)
		printf("]}\n");
	else if (l.n == 0 && l.np == 0)
		printf("no conflicts\n");
	else
		printf("%zu overwritten value%s, %zu parked row%s\n", l.n, l.n == 1 ? "" : "s", l.np, l.np == 1 ? "" : "s");
	zila_store_free(s);
	return CLI_OK;
}
