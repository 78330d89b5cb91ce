/* zila devices: the enrolled devices this replica knows, with roles, scopes, expiry and
 * revocations. */
#include <stdio.h>
#include <string.h>

#include "cli_names.h"
#include "cli_trust.h"

struct list_ctx {
	struct cli *cli;
	struct zila_store *s;
	size_t n;
};

static int print_one(void *ctx, const struct zila_cert *c)
{
	struct list_ctx *l = ctx;
	char id[ZILA_DEVICE_ID_LEN + 1], date[32];
	struct zila_revocation rv;
	bool revoked = zila_trust_revocation_get(l->s, c->device_pk, &rv) == 0;
	bool self = memcmp(c->device_pk, zila_store_device_pk(l->s), 32) == 0;
	bool expired = cli_now() > c->not_after;
	/* who vouched for it: the root, or an HQ device (revoked?); at an HQ, whether the
	 * certificates its key signed are in its register of what it issued (#15 item 12) */
	uint8_t root_pk[32];
	char issuer[ZILA_DEVICE_ID_LEN + 1] = "root";
	bool by_root = zila_trust_org(l->s, root_pk) == 0 && memcmp(root_pk, c->issuer_pk, 32) == 0;
	bool issuer_revoked = false;
	int here = zila_trust_issued_here(l->s, c);
	if (!by_root) {
		zila_device_id(c->issuer_pk, issuer);
		struct zila_revocation irv;
		if (zila_trust_revocation_get(l->s, c->issuer_pk, &irv) == 0) {
			issuer_revoked = true;
			zila_revocation_release(&irv);
		}
	}
	zila_device_id(c->device_pk, id);
	cli_date(date, c->not_after);
	if (l->cli->json) {
		printf("%s{\"device\":\"%s\",\"name\":", l->n ? "," : "", id);
		cli_json_str(c->name);
		printf(",\"role\":\"%s\",\"scope\":", zila_role_name(c->role));
		cli_json_str(c->scope_all ? "*" : c->district);
		printf(",\"expires\":%llu,\"expired\":%s,\"revoked\":%s,\"self\":%s,\"issuer\":\"%s\","
		       "\"issuer_revoked\":%s",
		       (unsigned long long)c->not_after, expired ? "true" : "false", revoked ? "true" : "false",
		       self ? "true" : "false", issuer, issuer_revoked ? "true" : "false");
		if (here >= 0)
			printf(",\"issued_here\":%s", here == 1 ? "true" : "false");
		printf("}");
	} else {
		char dname[160];
		if (c->scope_all)
			snprintf(dname, sizeof(dname), "all");
		else
			cli_district_label(l->cli, c->district, dname, sizeof(dname));
		printf("%-22s  %-20s  %-8s  %-16s  %-10s  %-22s%s%s%s%s%s\n", id, c->name, zila_role_name(c->role), dname,
		       date, issuer, issuer_revoked ? " (issuer REVOKED)" : "",
		       here == 0 ? " NOT ISSUED BY THIS HQ" : "", expired ? " (expired)" : "", revoked ? " REVOKED" : "",
		       self ? "  <- this device" : "");
	}
	if (revoked)
		zila_revocation_release(&rv);
	l->n++;
	return 0;
}

int cmd_devices(struct cli *cli, int argc, char **argv);
int cmd_devices(struct cli *cli, int argc, char **argv)
{
	(void)argv;
	if (argc > 1)
		return cli_usage("devices", "devices takes no arguments");
	struct zila_store *s = cli->store;
	struct list_ctx l = { cli, s, 0 };
	if (cli->json)
		printf("[");
	else
		printf("%-22s  %-20s  %-8s  %-16s  %-10s  %s\n", "DEVICE", "NAME", "ROLE", "SCOPE", "EXPIRES", "ISSUER");
	int r = zila_trust_cert_each(s, print_one, &l);
	if (cli->json)
		printf("]\n");
	else if (r == 0 && l.n == 0)
		printf("(no enrolled devices known here)\n");
	if (r != 0) {
		cli_err("cannot list devices: %s", zila_strerror(r));
		return CLI_FAIL;
	}
	return CLI_OK;
}
