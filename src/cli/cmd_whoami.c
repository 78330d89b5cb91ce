/* zila whoami: this device's id (readable aloud), organisation and role. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_names.h"
#include "cli_trust.h"

int cmd_whoami(struct cli *cli, int argc, char **argv);
int cmd_whoami(struct cli *cli, int argc, char **argv)
{
	(void)argv;
	if (argc > 1)
		return cli_usage("whoami", "whoami takes no arguments");
	struct zila_store *s = cli->store;
	char id[ZILA_DEVICE_ID_LEN + 1], fph[2 * ZILA_FP_LEN + 1] = "", date[32] = "";
	char *org = NULL, *hq = NULL;
	uint8_t root[32], fp[ZILA_FP_LEN];
	struct zila_cert c;
	zila_device_id(zila_store_device_pk(s), id);
	bool in_org = zila_trust_org(s, root) == 0;
	bool has_cert = zila_trust_cert_get(s, zila_store_device_pk(s), &c) == 0;
	if (in_org) {
		zila_org_fingerprint(root, fp);
		zila_hex_encode(fph, fp, sizeof(fp));
		if (zila_store_meta_get(s, ZILA_META_ORG_NAME, &org) != 0)
			org = NULL;
	}
	bool pending = !in_org && zila_store_meta_get(s, ZILA_META_JOIN_HQ, &hq) == 0;
	uint8_t secret[ZILA_ORG_SECRET_LEN];
	bool has_secret = in_org && zila_trust_org_secret(s, secret) == 0;
	sodium_memzero(secret, sizeof(secret));
	if (has_cert)
		cli_date(date, c.not_after);
	if (cli->json) {
		printf("{\"device\":\"%s\",\"organisation\":", id);
		if (in_org)
			cli_json_str(org ? org : "");
		else
			printf("null");
		printf(",\"fingerprint\":\"%s\"", fph);
		if (has_cert) {
			printf(",\"name\":");
			cli_json_str(c.name);
			printf(",\"role\":\"%s\",\"scope\":", zila_role_name(c.role));
			cli_json_str(c.scope_all ? "*" : c.district);
			printf(",\"expires\":%llu", (unsigned long long)c.not_after);
		}
		printf(",\"join_pending\":%s,\"org_secret\":%s}\n", pending ? "true" : "false",
		       has_secret ? "true" : "false");
	} else {
		printf("device:       %s\n", id);
		if (in_org) {
			printf("organisation: %s\nfingerprint:  %s\n", org ? org : "(unnamed)", fph);
			char dname[160];
			if (has_cert)
				cli_district_label(cli, c.scope_all ? "*" : c.district, dname, sizeof(dname));
			if (has_cert)
				printf("role:         %s of %s (%s), until %s\n", zila_role_name(c.role), dname, c.name, date);
			else
				printf("role:         none (no certificate for this device)\n");
			if (has_cert && !has_secret)
				printf("warning:      %s\n", ZILA_NO_SECRET_MSG);
		} else if (pending) {
			printf("organisation: not enrolled yet; joining through HQ at '%s'\n", hq);
		} else {
			printf("organisation: not enrolled (works locally, exchanges nothing)\n");
		}
	}
	free(org);
	free(hq);
	return CLI_OK;
}
