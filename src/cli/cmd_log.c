/* zila log: the audit trail from the feeds: who changed what, and when. With --table and
 * --id it shows one record's history with old and new values. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_names.h"
#include "zila/store.h"
#include "zila/trust.h"

/* Old values per column of the one record followed (--id). */
struct prev {
	char *col;
	struct zila_value v;
	uint8_t *bytes;
};

struct logctx {
	struct cli *cli;
	struct zila_store *s;
	uint8_t dev_pk[32];     /* the device of the last line, and its label */
	char dev[160];
	char part_id[ZILA_DISTRICT_MAX + 1]; /* the partition of the last line, and its name */
	char part[160];
	bool json, follow;
	size_t n;
	struct prev *prev;
	size_t nprev;
};

static struct prev *prev_find(struct logctx *l, const char *col)
{
	for (size_t i = 0; i < l->nprev; i++)
		if (strcmp(l->prev[i].col, col) == 0)
			return &l->prev[i];
	struct prev *np = realloc(l->prev, (l->nprev + 1) * sizeof(*np));
	if (np == NULL)
		return NULL;
	l->prev = np;
	memset(&np[l->nprev], 0, sizeof(*np));
	np[l->nprev].col = strdup(col);
	return &np[l->nprev++];
}

static void prev_set(struct prev *p, const struct zila_value *v)
{
	free(p->bytes);
	p->bytes = NULL;
	p->v = *v;
	if (v->type == ZILA_VAL_TEXT || v->type == ZILA_VAL_BLOB) {
		p->bytes = malloc(v->len + 1);
		if (p->bytes == NULL) {
			p->v.type = ZILA_VAL_NULL;
			return;
		}
		memcpy(p->bytes, v->p, v->len);
		p->v.p = p->bytes;
	}
}

static const char *op_name(int op)
{
	return op == ZILA_OP_UPSERT ? "insert" : op == ZILA_OP_UPDATE ? "update" : "delete";
}

static int on_change(void *ctx, const struct zila_change *c)
{
	struct logctx *l = ctx;
	char when[40];
	if (l->n == 0 || memcmp(l->dev_pk, c->entry->origin, 32) != 0) {
		memcpy(l->dev_pk, c->entry->origin, 32);
		cli_device_label(l->s, c->entry->origin, l->dev, sizeof(l->dev));
	}
	if (l->n == 0 || strcmp(l->part_id, c->entry->part) != 0) {
		snprintf(l->part_id, sizeof(l->part_id), "%s", c->entry->part);
		if (c->entry->part[0] == '\0')
			snprintf(l->part, sizeof(l->part), "(org-wide)");
		else
			cli_district_label(l->cli, c->entry->part, l->part, sizeof(l->part));
	}
	if (l->json) {
		char id[ZILA_DEVICE_ID_LEN + 1];
		struct zila_cert cert;
		zila_device_id(c->entry->origin, id);
		cli_hlc_time(when, c->entry->hlc);
		printf("%s{\"time\":\"%s\",\"hlc_ms\":%llu,\"device\":\"%s\",\"device_name\":", l->n ? ",\n" : "",
		       when, (unsigned long long)zila_hlc_ms(c->entry->hlc), id);
		cli_json_str(zila_trust_cert_get(l->s, c->entry->origin, &cert) == 0 ? cert.name : "");
		printf(",\"partition\":");
		cli_json_str(c->entry->part);
		printf(",\"seq\":%llu,\"table\":", (unsigned long long)c->entry->seq);
		cli_json_str(c->table);
		printf(",\"id\":");
		cli_print_value(&c->pk, true);
		printf(",\"op\":\"%s\",\"changes\":{", op_name(c->op));
		for (size_t i = 0; i < c->ncols; i++) {
			printf("%s", i ? "," : "");
			cli_json_str(c->cols[i]);
			printf(":");
			if (l->follow) {
				struct prev *p = prev_find(l, c->cols[i]);
				printf("{\"old\":");
				if (p && p->col)
					cli_print_value(&p->v, true);
				else
					printf("null");
				printf(",\"new\":");
				cli_print_value(&c->vals[i], true);
				printf("}");
				if (p)
					prev_set(p, &c->vals[i]);
			} else {
				cli_print_value(&c->vals[i], true);
			}
		}
		printf("}}");
	} else {
		cli_local_time(when, zila_hlc_ms(c->entry->hlc) / 1000);
		printf("%s  %s  %s #%llu  %s %s ", when, l->dev, l->part, (unsigned long long)c->entry->seq,
		       op_name(c->op), c->table);
		cli_print_value(&c->pk, false);
		printf("\n");
		for (size_t i = 0; i < c->ncols; i++) {
			printf("    %s: ", c->cols[i]);
			if (l->follow) {
				struct prev *p = prev_find(l, c->cols[i]);
				if (p && p->col && c->op == ZILA_OP_UPDATE) {
					cli_print_value(&p->v, false);
					printf(" -> ");
				}
				if (p)
					prev_set(p, &c->vals[i]);
			}
			cli_print_value(&c->vals[i], false);
			printf("\n");
		}
	}
	l->n++;
	return 0;
}

/* A laptop that merged a checkpoint or dropped old history says so: the rest is at HQ. */
static int gap_note(void *ctx, const char *part, uint64_t before_ms)
{
	struct logctx *l = ctx;
	char label[160], when[40];
	cli_district_label(l->cli, part, label, sizeof(label));
	cli_local_time(when, before_ms / 1000);
	fprintf(l->json ? stderr : stdout,
		"note: district '%s': this replica holds its history from %s on; what came before is kept at HQ "
		"(zila log there)\n",
		label, when);
	return 0;
}

int cmd_log(struct cli *cli, int argc, char **argv);
int cmd_log(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "table", required_argument, NULL, 't' },
					      { "id", required_argument, NULL, 'i' },
					      { NULL, 0, NULL, 0 } };
	const char *table = NULL, *id = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 't')
			table = optarg;
		else if (c == 'i')
			id = optarg;
		else
			return cli_usage("log", "unknown option");
	}
	if (optind != argc)
		return cli_usage("log", "unexpected argument '%s'", argv[optind]);
	struct zila_store *s = cli->store;
	struct zila_error err;
	struct logctx l = { .cli = cli, .s = s, .json = cli->json, .follow = id != NULL };
	zila_error_clear(&err);
	int r = zila_store_seal(s, NULL, &err);
	if (cli->json)
		printf("[");
	if (r == 0 && (r = zila_store_walk_changes(s, table, id, on_change, &l)) != 0)
		zila_error_set(&err, r, "cannot read the feeds: %s", zila_strerror(r));
	if (cli->json)
		printf("]\n");
	else if (r == 0 && l.n == 0)
		printf("no changes%s\n", table || id ? " match" : " yet");
	if (r == 0 && (r = zila_store_history_gaps(s, gap_note, &l)) != 0)
		zila_error_set(&err, r, "cannot read the checkpoints: %s", zila_strerror(r));
	for (size_t i = 0; i < l.nprev; i++) {
		free(l.prev[i].col);
		free(l.prev[i].bytes);
	}
	free(l.prev);
	if (r != 0) {
		cli_err("%s", zila_error_msg(&err, r));
		return CLI_FAIL;
	}
	return CLI_OK;
}
