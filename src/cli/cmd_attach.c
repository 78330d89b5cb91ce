/* zila attach: store a file beside the replica and add its reference, a row of the tracked
 * table `attachments` that syncs like any row (proto/ATTACH.md).
 *   zila attach FILE [--to TABLE:ID [--column C]] [--district ID] [--name NAME] [--type MEDIA]
 *               [--shrink | --no-shrink]
 * --shrink re-encodes a large JPEG photo smaller first (src/office/shrink.c) and records the
 * original's blob id and size in the row; the setting attach.shrink (zila attachment set
 * shrink on) makes it the default. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "zila/blob.h"
#include "zila/office/shrink.h"
#include "zila/os.h"
#include "zila/store.h"

/* Whether to shrink: --shrink or --no-shrink, else the office's setting attach.shrink. */
static bool shrink_wanted(struct cli *cli, int flag)
{
	char *v = NULL;
	bool on = false;
	if (flag != 0)
		return flag > 0;
	if (zila_store_meta_get(cli->store, "attach.shrink", &v) == 0 && v != NULL)
		on = strcmp(v, "on") == 0;
	free(v);
	return on;
}

/* Shrinks the photo at rq->path when it is a large JPEG: then rq takes the smaller bytes (in
 * small, the caller's) and the original's blob id (orig_hex) and size. Says what it did. */
static int shrink_file(struct zila_attach_req *rq, struct zila_buf *orig, struct zila_buf *small, char orig_hex[65],
		       const char **name, struct zila_error *err)
{
	struct zila_shrink_result res;
	struct zila_buf ch;
	uint8_t id[32];
	int r = zila_os_read_file(rq->path, ZILA_SHRINK_IN_MAX, orig, NULL, err);
	if (r == ZILA_ETOOBIG)
		return zila_error_set(err, r, "'%s' is larger than zila shrinks (%u bytes)", rq->path, ZILA_SHRINK_IN_MAX);
	if (r != 0)
		return r;
	if ((r = zila_shrink_jpeg(orig->p, orig->len, 0, 0, small, &res, err)) != 0)
		return r;
	fprintf(stderr, "%s: %s\n", *name, res.note);
	if (!res.shrunk)
		return 0;
	zila_buf_init(&ch, ZILA_BLOB_CHUNKS_MAX * 32);
	r = zila_blob_hash_mem(orig->p, orig->len, &ch, id);
	zila_buf_release(&ch);
	if (r != 0)
		return zila_error_set(err, r, "out of memory");
	zila_hex_encode(orig_hex, id, 32);
	rq->data = small->p;
	rq->data_len = small->len;
	rq->name = *name;
	rq->original_hash = orig_hex;
	rq->original_size = orig->len;
	return 0;
}

int cmd_attach(struct cli *cli, int argc, char **argv);
int cmd_attach(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "to", required_argument, NULL, 't' },
					      { "column", required_argument, NULL, 'c' },
					      { "district", required_argument, NULL, 'D' },
					      { "name", required_argument, NULL, 'n' },
					      { "type", required_argument, NULL, 'm' },
					      { "shrink", no_argument, NULL, 's' },
					      { "no-shrink", no_argument, NULL, 'S' },
					      { NULL, 0, NULL, 0 } };
	struct zila_attach_req rq;
	char table[128] = "";
	const char *to = NULL;
	int c, shrink = 0;
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
		else if (c == 's')
			shrink = 1;
		else if (c == 'S')
			shrink = -1;
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
	struct zila_buf orig, small;
	char orig_hex[65];
	const char *name = rq.name;
	int r = 0;
	zila_error_clear(&err);
	zila_buf_init(&orig, ZILA_SHRINK_IN_MAX);
	zila_buf_init(&small, ZILA_SHRINK_IN_MAX);
	if (name == NULL) {
		const char *b = strrchr(rq.path, '/'), *w = strrchr(rq.path, '\\');
		name = w != NULL && (b == NULL || w > b) ? w + 1 : b ? b + 1 : rq.path;
	}
	if (shrink_wanted(cli, shrink) && shrink == 0 && !zila_shrink_available())
		fprintf(stderr, "%s: not shrunk: this build of zila cannot shrink photos\n", name); /* the setting's default */
	else if (shrink_wanted(cli, shrink))
		r = shrink_file(&rq, &orig, &small, orig_hex, &name, &err);
	if (r == 0)
		r = zila_blob_attach(cli->store, &rq, &a, &err);
	zila_buf_release(&orig);
	zila_buf_release(&small);
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
		if (a.original_hash[0])
			printf(",\"original_hash\":\"%s\",\"original_size\":%llu", a.original_hash,
			       (unsigned long long)a.original_size);
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
