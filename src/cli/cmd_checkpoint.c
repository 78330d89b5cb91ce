/* zila checkpoint: HQ signs a checkpoint of a district's state (proto/CHECKPOINT.md), so that
 * a new or long-absent laptop gets the state, not the history; list the ones kept, write one
 * to a file, merge one from a file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_names.h"
#include "zila/os.h"
#include "zila/store.h"
#include "zila/trust.h"

#define FILE_MAX (1ull << 30)

int cmd_checkpoint(struct cli *cli, int argc, char **argv);

static int make_one(struct cli *cli, const char *id, bool *first)
{
	struct zila_error err;
	struct zila_ckpt_info ci;
	char label[200];
	zila_error_clear(&err);
	int r = zila_store_checkpoint_make(cli->store, id, &ci, &err);
	cli_district_label(cli, id, label, sizeof(label));
	if (r != 0) {
		cli_err("cannot make a checkpoint of district '%s': %s", label, zila_error_msg(&err, r));
		return CLI_FAIL;
	}
	if (cli->json)
		printf("%s{\"district\":\"%s\",\"rows\":%llu,\"feeds\":%llu,\"chunks\":%llu}", *first ? "" : ",", id,
		       (unsigned long long)ci.nrows, (unsigned long long)ci.nfeeds, (unsigned long long)ci.nchunks);
	else
		printf("checkpoint of district '%s': %llu rows at the heads of %llu feeds\n", label,
		       (unsigned long long)ci.nrows, (unsigned long long)ci.nfeeds);
	*first = false;
	return CLI_OK;
}

struct lister {
	struct cli *cli;
	bool first;
};

static int list_one(void *ctx, const struct zila_ckpt_info *c, size_t len)
{
	struct lister *l = ctx;
	char label[200], signer[ZILA_DEVICE_ID_LEN + 1];
	cli_district_label(l->cli, c->part, label, sizeof(label));
	zila_device_id(c->signer, signer);
	if (l->cli->json)
		printf("%s{\"district\":\"%s\",\"made_ms\":%llu,\"signer\":\"%s\",\"rows\":%llu,\"feeds\":%llu,\"bytes\":%zu}",
		       l->first ? "" : ",", c->part, (unsigned long long)zila_hlc_ms(c->hlc), signer,
		       (unsigned long long)c->nrows, (unsigned long long)c->nfeeds, len);
	else
		printf("%-24s %8llu rows %6llu feeds %10zu bytes  by %s\n", label, (unsigned long long)c->nrows,
		       (unsigned long long)c->nfeeds, len, signer);
	l->first = false;
	return 0;
}

/* Every district that has entries here. */
static int all_districts(struct cli *cli, char ***out, size_t *n)
{
	struct zila_vector v;
	*out = NULL;
	*n = 0;
	if (zila_store_vector(cli->store, &v) != 0)
		return -1;
	for (size_t i = 0; i < v.nheads; i++) {
		if (v.heads[i].part[0] == '\0')
			continue;
		bool seen = false;
		for (size_t k = 0; k < *n && !seen; k++)
			seen = strcmp((*out)[k], v.heads[i].part) == 0;
		if (seen)
			continue;
		char **more = realloc(*out, (*n + 1) * sizeof(**out));
		if (more == NULL)
			break;
		*out = more;
		(*out)[(*n)++] = strdup(v.heads[i].part);
	}
	zila_vector_release(&v);
	return 0;
}

static bool is_hq(struct cli *cli)
{
	struct zila_cert c;
	return zila_trust_cert_get(cli->store, zila_store_device_pk(cli->store), &c) == 0 && c.role == ZILA_ROLE_HQ &&
	       c.scope_all;
}

int cmd_checkpoint(struct cli *cli, int argc, char **argv)
{
	struct zila_error err;
	zila_error_clear(&err);
	if (argc >= 2 && strcmp(argv[1], "list") == 0) {
		if (argc != 2)
			return cli_usage("checkpoint", "checkpoint list takes no arguments");
		struct lister l = { cli, true };
		if (cli->json)
			printf("[");
		int r = zila_store_checkpoint_each(cli->store, list_one, &l);
		if (cli->json)
			printf("]\n");
		else if (l.first)
			printf("no checkpoints kept\n");
		if (r != 0) {
			cli_err("cannot read the checkpoints: %s", zila_strerror(r));
			return CLI_FAIL;
		}
		return CLI_OK;
	}
	if (argc >= 2 && strcmp(argv[1], "export") == 0) {
		if (argc != 4)
			return cli_usage("checkpoint", "checkpoint export needs a district and a file");
		char id[128];
		if (cli_district_resolve(cli, argv[2], id, sizeof(id)) != CLI_OK)
			return CLI_FAIL;
		uint8_t *p = NULL;
		size_t len = 0;
		int r = zila_store_checkpoint_get(cli->store, id, &p, &len);
		if (r == ZILA_ENOTFOUND) {
			cli_err("no checkpoint of district '%s' is kept here; HQ makes one with 'zila checkpoint %s'", argv[2],
				argv[2]);
			return CLI_FAIL;
		}
		if (r == 0)
			r = zila_os_write_atomic(argv[3], p, len, 0600, &err);
		free(p);
		if (r != 0) {
			cli_err("cannot write '%s': %s", argv[3], zila_error_msg(&err, r));
			return CLI_FAIL;
		}
		printf("wrote the checkpoint of district '%s' to '%s' (%zu bytes)\n", argv[2], argv[3], len);
		return CLI_OK;
	}
	if (argc >= 2 && strcmp(argv[1], "apply") == 0) {
		if (argc != 3)
			return cli_usage("checkpoint", "checkpoint apply needs a file");
		struct zila_buf b;
		struct zila_ckpt_info ci;
		struct zila_apply_stats st;
		zila_buf_init(&b, FILE_MAX);
		int r = zila_os_read_file(argv[2], FILE_MAX, &b, NULL, &err);
		if (r == 0)
			r = zila_store_checkpoint_apply(cli->store, zila_buf_view(&b), &ci, &st, &err);
		zila_buf_release(&b);
		if (r != 0) {
			cli_err("'%s': %s", argv[2], zila_error_msg(&err, r));
			return CLI_FAIL;
		}
		char label[200];
		cli_district_label(cli, ci.part, label, sizeof(label));
		printf("merged the checkpoint of district '%s': %llu rows\n", label, (unsigned long long)ci.nrows);
		return CLI_OK;
	}
	for (int i = 1; i < argc; i++)
		if (argv[i][0] == '-')
			return cli_usage("checkpoint", "unknown option '%s'", argv[i]);
	if (!is_hq(cli)) {
		cli_err("only an HQ device makes checkpoints (laptops receive them from HQ when they sync)");
		return CLI_FAIL;
	}
	bool first = true;
	int rc = CLI_OK;
	if (cli->json)
		printf("[");
	if (argc == 1) {
		char **ids = NULL;
		size_t n = 0;
		if (all_districts(cli, &ids, &n) != 0) {
			cli_err("cannot read the replica's feeds");
			return CLI_FAIL;
		}
		for (size_t i = 0; i < n; i++) {
			if (ids[i] != NULL && make_one(cli, ids[i], &first) != CLI_OK)
				rc = CLI_FAIL;
			free(ids[i]);
		}
		free(ids);
		if (n == 0 && !cli->json)
			printf("no district has entries yet: nothing to checkpoint\n");
	}
	for (int i = 1; i < argc; i++) {
		char id[128];
		if (cli_district_resolve(cli, argv[i], id, sizeof(id)) != CLI_OK) {
			rc = CLI_FAIL;
			continue;
		}
		if (make_one(cli, id, &first) != CLI_OK)
			rc = CLI_FAIL;
	}
	if (cli->json)
		printf("]\n");
	return rc;
}
