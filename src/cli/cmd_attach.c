/* zila attach: store a file beside the replica and add its reference, a row of the tracked
 * table `attachments` that syncs like any row (proto/ATTACH.md).
 *   zila attach FILE [--to TABLE:ID [--column C]] [--district ID] [--name NAME] [--type MEDIA] */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "zila/blob.h"
#include "zila/store.h"

int cmd_attach(struct cli *cli, int argc, char **argv);
int cmd_attach(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "to", required_argument, NULL, 't' },
					      { "column", required_argument, NULL, 'c' },
					      { "district", required_argument, NULL, 'D' },
					      { "name", required_argument, NULL, 'n' },
					      { "type", required_argument, NULL, 'm' },
					      { NULL, 0, NULL, 0 } };
	struct zila_attach_req rq;
	char table[128] = "";
	const char *to = NULL;
	int c;
	memset(&rq, 0, sizeof(rq));
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 't')
			to = optarg;
		else if (c == 'c')
			rq.column = optarg;
		else if (c == 'D')
			rq.district = optarg;
		else if (c == 'n')
			rq.name = optarg;
		else if (c == 'm')
			rq.media_type = optarg;
		else
			return cli_usage("attach", "unknown option '%s'", argv[optind - 1]);
	}
	if (argc - optind != 1)
		return cli_usage("attach", "attach takes one FILE");
	rq.path = argv[optind];
	if (to != NULL) {
		const char *colon = strchr(to, ':');
		if (colon == NULL || colon == to || colon[1] == '\0' || (size_t)(colon - to) >= sizeof(table))
			return cli_usage("attach", "--to '%s' is not TABLE:ID", to);
		memcpy(table, to, (size_t)(colon - to));
		table[colon - to] = '\0';
		rq.table = table;
		rq.row = colon + 1;
	} else if (rq.column != NULL) {
		return cli_usage("attach", "--column needs --to TABLE:ID");
	}
	struct zila_attachment a;
	struct zila_error err;
	zila_error_clear(&err);
	int r = zila_blob_attach(cli->store, &rq, &a, &err);
	if (r == 0)
		r = zila_store_seal(cli->store, NULL, &err);
	if (r != 0) {
		cli_err("%s", zila_error_msg(&err, r));
		return CLI_FAIL;
	}
	if (cli->json) {
		printf("{\"id\":\"%s\",\"hash\":\"%s\",\"size\":%llu,\"media_type\":", a.id, a.hash,
		       (unsigned long long)a.size);
		cli_json_str(a.media_type);
		printf(",\"name\":");
		cli_json_str(a.name);
		printf(",\"district\":");
		cli_json_str(a.district);
		printf("}\n");
	} else {
		/* the reference: what `zila attachment get` takes, and what --column put in the row */
		printf("%s\n", a.id);
		fprintf(stderr, "attached '%s' (%llu bytes, %s, blob %.12s) in district '%s'%s%s%s\n", a.name,
			(unsigned long long)a.size, a.media_type, a.hash, a.district, rq.table ? " to " : "",
			rq.table ? to : "", rq.column ? " (column set)" : "");
	}
	return CLI_OK;
}
