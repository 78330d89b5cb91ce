/* zila revoke: at HQ, cut off a lost or stolen device. The signed revocation names the last
 * entry of each of its feeds still accepted, and travels with the data to every replica. */
#include <stdio.h>
#include <string.h>

#include "cli_trust.h"

int cmd_revoke(struct cli *cli, int argc, char **argv);
int cmd_revoke(struct cli *cli, int argc, char **argv)
{
	if (argc != 2)
		return cli_usage("revoke", "revoke needs one DEVICE (its id from 'zila devices')");
	struct zila_store *s = cli->store;
	uint8_t pk[32];
	int rc = CLI_FAIL;
	if (cli_find_device(s, argv[1], pk) != CLI_OK)
		goto out;
	struct zila_error err;
	struct zila_revocation rv;
	char id[ZILA_DEVICE_ID_LEN + 1];
	zila_error_clear(&err);
	zila_device_id(pk, id);
	int r = zila_trust_revoke(s, pk, cli_now(), &err);
	if (r != 0) {
		cli_err("cannot revoke device '%s': %s", id, zila_error_msg(&err, r));
		goto out;
	}
	if (zila_trust_revocation_get(s, pk, &rv) != 0) {
		cli_err("the revocation of device '%s' was not kept", id);
		goto out;
	}
	if (cli->json) {
		printf("{\"revoked\":\"%s\",\"feeds\":[", id);
		for (size_t i = 0; i < rv.nmarks; i++) {
			printf("%s{\"partition\":", i ? "," : "");
			cli_json_str(rv.marks[i].part);
			printf(",\"last_accepted\":%llu}", (unsigned long long)rv.marks[i].last_seq);
		}
		printf("]}\n");
	} else {
		printf("revoked device %s. Accepted from it, and no more:\n", id);
		for (size_t i = 0; i < rv.nmarks; i++)
			printf("  partition %-16s up to entry %llu\n", rv.marks[i].part[0] ? rv.marks[i].part : "(org-wide)",
			       (unsigned long long)rv.marks[i].last_seq);
		if (rv.nmarks == 0)
			printf("  nothing (HQ holds no entry of it)\n");
		printf("The revocation spreads with the next bundles and syncs.\n");
	}
	zila_revocation_release(&rv);
	rc = CLI_OK;
out:
	return rc;
}
