/* zila attachment: what attachments this replica refers to and holds; copy one out (asking
 * the daemon to fetch it first when its bytes are not here yet).
 *   zila attachment ls [--missing] [--limit N] [--offset N]
 *   zila attachment get REF OUT [--wait SECS]
 *   zila attachment set NAME VALUE     (the office's settings, attach.NAME)
 *   zila attachment collect            (remove blobs no row has referred to since the horizon) */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_ctl.h"
#include "zila/blob.h"
#include "zila/os.h"
#include "zila/store.h"

static const char *state_word(const struct zila_attachment *a)
{
	return a->state == ZILA_BLOB_PRESENT ? "here" : a->state == ZILA_BLOB_PARTIAL ? "partial" : "missing";
}

struct ls {
	bool json, first, missing_only;
	uint64_t n, here, bytes, missing_bytes;
	uint64_t offset, limit, nlisted, nmatch; /* a page of what matches (limit 0: all) */
};

static int ls_one(void *ctx, const struct zila_attachment *a)
{
	struct ls *l = ctx;
	l->n++;
	l->bytes += a->size;
	if (a->state == ZILA_BLOB_PRESENT)
		l->here++;
	else
		l->missing_bytes += a->size - a->have_bytes;
	if (l->missing_only && a->state == ZILA_BLOB_PRESENT)
		return 0;
	if (l->nmatch++ < l->offset || (l->limit > 0 && l->nlisted >= l->limit))
		return 0;
	l->nlisted++;
	if (l->json) {
		printf("%s{\"id\":\"%s\",\"district\":", l->first ? "" : ",", a->id);
		cli_json_str(a->district);
		printf(",\"hash\":\"%s\",\"size\":%llu,\"have\":%llu,\"state\":\"%s\",\"asked\":%s,\"media_type\":", a->hash,
		       (unsigned long long)a->size, (unsigned long long)a->have_bytes, state_word(a),
		       a->asked ? "true" : "false");
		cli_json_str(a->media_type);
		printf(",\"name\":");
		cli_json_str(a->name);
		printf(",\"owner\":");
		if (a->owner_table[0] != '\0') {
			char o[300];
			snprintf(o, sizeof(o), "%s:%s", a->owner_table, a->owner_id);
			cli_json_str(o);
		} else {
			printf("null");
		}
		printf("}");
	} else {
		char st[64];
		if (a->state == ZILA_BLOB_PARTIAL)
			snprintf(st, sizeof(st), "partial %llu%%",
				 (unsigned long long)(a->size ? a->have_bytes * 100 / a->size : 0));
		else
			snprintf(st, sizeof(st), "%s%s", state_word(a), a->state != ZILA_BLOB_PRESENT && a->asked ? " (asked)" : "");
		printf("%-32s %-10s %10llu  %-15s %s%s%s%s\n", a->id, a->district, (unsigned long long)a->size, st, a->name,
		       a->owner_table[0] ? " -> " : "", a->owner_table, a->owner_table[0] ? ":" : "");
		if (a->owner_table[0])
			printf("%*s%s\n", 0, "", a->owner_id);
	}
	l->first = false;
	return 0;
}

static int do_ls(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "missing", no_argument, NULL, 'm' },
					      { "limit", required_argument, NULL, 'l' },
					      { "offset", required_argument, NULL, 'o' },
					      { NULL, 0, NULL, 0 } };
	struct ls l = { .json = cli->json, .first = true };
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		char *end = NULL;
		if (c == 'm') {
			l.missing_only = true;
			continue;
		}
		if (c != 'l' && c != 'o')
			return cli_usage("attachment", "unknown option");
		unsigned long long v = strtoull(optarg, &end, 10);
		if (optarg[0] < '0' || optarg[0] > '9' || *end != '\0')
			return cli_usage("attachment", "--%s takes a number, not '%s'", c == 'l' ? "limit" : "offset", optarg);
		if (c == 'l')
			l.limit = v;
		else
			l.offset = v;
	}
	if (optind != argc)
		return cli_usage("attachment", "ls takes only --missing, --limit N and --offset N");
	struct zila_error err;
	zila_error_clear(&err);
	if (cli->json)
		printf("{\"attachments\":[");
	else
		printf("%-32s %-10s %10s  %-15s %s\n", "ID", "DISTRICT", "BYTES", "BYTES HERE", "NAME");
	int r = zila_blob_list(cli->store, ls_one, &l, &err);
	if (r != 0) {
		if (cli->json)
			printf("]}\n");
		cli_err("%s", zila_error_msg(&err, r));
		return CLI_FAIL;
	}
	if (cli->json)
		printf("],\"count\":%llu,\"here\":%llu,\"bytes\":%llu,\"missing_bytes\":%llu,\"matching\":%llu,"
		       "\"offset\":%llu,\"listed\":%llu}\n",
		       (unsigned long long)l.n, (unsigned long long)l.here, (unsigned long long)l.bytes,
		       (unsigned long long)l.missing_bytes, (unsigned long long)l.nmatch, (unsigned long long)l.offset,
		       (unsigned long long)l.nlisted);
	else {
		printf("%llu attachment%s, %llu here; %llu bytes still to come\n", (unsigned long long)l.n,
		       l.n == 1 ? "" : "s", (unsigned long long)l.here, (unsigned long long)l.missing_bytes);
		if (l.nlisted < l.nmatch)
			printf("listed %llu of %llu from %llu (--offset %llu for the next)\n", (unsigned long long)l.nlisted,
			       (unsigned long long)l.nmatch, (unsigned long long)l.offset,
			       (unsigned long long)(l.offset + l.nlisted));
	}
	return CLI_OK;
}

/* Asks the running daemon to sync now (the fetch asked for goes with it); quiet when none runs. */
static bool nudge_daemon(struct cli *cli)
{
	struct cli_ctl ctl;
	json_t *resp = NULL;
	if (cli_ctl_open(cli, &ctl, true) != CLI_OK)
		return false;
	bool ok = cli_ctl_send(&ctl, json_pack("{s:s, s:b}", "cmd", "sync", "wait", false)) == CLI_OK &&
		  cli_ctl_recv(&ctl, &resp, 10000) == CLI_OK && json_is_true(json_object_get(resp, "ok"));
	json_decref(resp);
	cli_ctl_close(&ctl);
	return ok;
}

static int do_get(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "wait", required_argument, NULL, 'w' }, { NULL, 0, NULL, 0 } };
	long wait = 60;
	char *end;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'w') {
			wait = strtol(optarg, &end, 10);
			if (*end != '\0' || wait < 0)
				return cli_usage("attachment", "--wait '%s' is not a number of seconds", optarg);
		} else {
			return cli_usage("attachment", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (argc - optind != 2)
		return cli_usage("attachment", "get takes REF and OUT");
	const char *ref = argv[optind], *out = argv[optind + 1];
	struct zila_attachment a;
	struct zila_error err;
	zila_error_clear(&err);
	int r = zila_blob_find(cli->store, ref, &a, &err);
	if (r != 0) {
		cli_err("%s", zila_error_msg(&err, r));
		return CLI_FAIL;
	}
	if (a.state != ZILA_BLOB_PRESENT) {
		if ((r = zila_blob_ask(cli->store, a.hash, &err)) != 0) {
			cli_err("%s", zila_error_msg(&err, r));
			return CLI_FAIL;
		}
		bool daemon = nudge_daemon(cli);
		uint8_t id[32];
		if (zila_hex_decode(id, 32, a.hash, 64) != 0) {
			cli_err("attachment '%s' has a damaged hash '%s'", a.id, a.hash);
			return CLI_FAIL;
		}
		for (long i = 0; daemon && i < wait * 10 && !zila_blob_present(cli->store, id); i++)
			zila_os_sleep_ms(100);
		if (!zila_blob_present(cli->store, id)) {
			cli_err("the bytes of '%s' (%llu) are not here yet; asked for them: %s", a.name,
				(unsigned long long)a.size,
				daemon ? "the daemon fetches them at its next sync with a peer that has them"
				       : "they are fetched at the next sync (no daemon runs now)");
			return CLI_FAIL;
		}
	}
	if ((r = zila_blob_copy_out(cli->store, a.hash, out, &err)) != 0) {
		cli_err("%s", zila_error_msg(&err, r));
		return CLI_FAIL;
	}
	if (cli->json)
		printf("{\"id\":\"%s\",\"hash\":\"%s\",\"size\":%llu}\n", a.id, a.hash, (unsigned long long)a.size);
	else
		fprintf(stderr, "wrote '%s' (%llu bytes, %s) to '%s'\n", a.name, (unsigned long long)a.size, a.media_type, out);
	return CLI_OK;
}

static const char *const settings[][2] = {
	{ "max_bytes", "the largest file attached, in bytes (10485760)" },
	{ "quota_bytes", "the attachments of one district, in bytes (2147483648)" },
	{ "link", "the uplink to HQ: auto (measured), fast or slow (auto)" },
	{ "slow_bps", "auto: a link slower than this many bytes/s is slow (50000)" },
	{ "fetch_below", "on a slow link, others' files up to this size still come (65536)" },
	{ "shrink", "shrink JPEG photos on the way in by default: on or off (off)" },
};

static int do_set(struct cli *cli, int argc, char **argv)
{
	size_t n = sizeof(settings) / sizeof(settings[0]);
	if (argc != 3)
		return cli_usage("attachment", "set takes NAME and VALUE");
	for (size_t i = 0; i < n; i++) {
		if (strcmp(argv[1], settings[i][0]) != 0)
			continue;
		char key[64], *end;
		if (strcmp(argv[1], "link") == 0) {
			if (strcmp(argv[2], "auto") != 0 && strcmp(argv[2], "fast") != 0 && strcmp(argv[2], "slow") != 0)
				return cli_usage("attachment", "link is auto, fast or slow, not '%s'", argv[2]);
		} else if (strcmp(argv[1], "shrink") == 0) {
			if (strcmp(argv[2], "on") != 0 && strcmp(argv[2], "off") != 0)
				return cli_usage("attachment", "shrink is on or off, not '%s'", argv[2]);
		} else if (strtoull(argv[2], &end, 10), *end != '\0' || argv[2][0] == '\0' || argv[2][0] == '-') {
			return cli_usage("attachment", "%s takes a number of bytes, not '%s'", argv[1], argv[2]);
		}
		snprintf(key, sizeof(key), "attach.%s", argv[1]);
		if (zila_store_meta_set(cli->store, key, argv[2]) != 0) {
			cli_err("cannot write the setting '%s'", key);
			return CLI_FAIL;
		}
		return CLI_OK;
	}
	cli_err("no setting '%s'; the settings are:", argv[1]);
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, "  %-12s %s\n", settings[i][0], settings[i][1]);
	return CLI_USAGE;
}

static int do_collect(struct cli *cli)
{
	struct zila_error err;
	uint64_t n = 0, bytes = 0;
	zila_error_clear(&err);
	int r = zila_blob_collect(cli->store, zila_store_horizon_ms(cli->store), &n, &bytes, &err);
	if (r != 0) {
		cli_err("%s", zila_error_msg(&err, r));
		return CLI_FAIL;
	}
	if (cli->json)
		printf("{\"removed\":%llu,\"bytes\":%llu}\n", (unsigned long long)n, (unsigned long long)bytes);
	else
		printf("removed %llu blob%s (%llu bytes) no row has referred to since the history horizon\n",
		       (unsigned long long)n, n == 1 ? "" : "s", (unsigned long long)bytes);
	return CLI_OK;
}

int cmd_attachment(struct cli *cli, int argc, char **argv);
int cmd_attachment(struct cli *cli, int argc, char **argv)
{
	if (argc < 2)
		return do_ls(cli, 1, argv);
	if (strcmp(argv[1], "ls") == 0 || strcmp(argv[1], "list") == 0)
		return do_ls(cli, argc - 1, argv + 1);
	if (strcmp(argv[1], "get") == 0)
		return do_get(cli, argc - 1, argv + 1);
	if (strcmp(argv[1], "set") == 0)
		return do_set(cli, argc - 1, argv + 1);
	if (strcmp(argv[1], "collect") == 0)
		return argc > 2 ? cli_usage("attachment", "collect takes no arguments") : do_collect(cli);
	return cli_usage("attachment", "unknown subcommand '%s'", argv[1]);
}
