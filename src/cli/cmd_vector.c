/* zila vector: the replica's version vector, one feed per line:
 *   DEVICE-KEY-HEX PARTITION SEQ     (PARTITION is '-' for the org-wide partition)
 * after a first line "# device DEVICE-KEY-HEX" naming this replica. The same text is what
 * `zila bundle create --for FILE` reads. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "zila/store.h"
#include "zila/trust.h"

int cmd_vector(struct cli *cli, int argc, char **argv);
int cmd_vector(struct cli *cli, int argc, char **argv)
{
	(void)argv;
	if (argc > 1)
		return cli_usage("vector", "vector takes no arguments");
	struct zila_store *s = cli->store;
	struct zila_error err;
	struct zila_vector v = { 0 };
	zila_error_clear(&err);
	int r = zila_store_seal(s, NULL, &err);
	if (r == 0 && (r = zila_store_vector(s, &v)) != 0)
		zila_error_set(&err, r, "cannot read the version vector");
	uint8_t self[32];
	memcpy(self, zila_store_device_pk(s), 32);
	/* An enrolled replica adds its certificate, so a laptop that has not met it yet can
	 * check it and send it what it may read. */
	struct zila_cert cert;
	struct zila_buf cb;
	zila_buf_init(&cb, 4096);
	bool has_cert = zila_trust_cert_get(s, self, &cert) == 0 && zila_cert_encode(&cert, &cb) == 0;
	if (r != 0) {
		cli_err("%s", zila_error_msg(&err, r));
		return CLI_FAIL;
	}
	if (cli->json) {
		printf("[");
	} else {
		char me[65];
		zila_hex_encode(me, self, 32);
		printf("# device %s\n", me);
		if (has_cert) {
			char hex[2 * ZILA_CERT_LEN + 1];
			zila_hex_encode(hex, cb.p, cb.len < ZILA_CERT_LEN ? cb.len : ZILA_CERT_LEN);
			printf("# cert %s\n", hex);
		}
	}
	for (size_t i = 0; i < v.nheads; i++) {
		char hex[65];
		zila_hex_encode(hex, v.heads[i].origin, 32);
		if (cli->json) {
			printf("%s{\"device\":\"%s\",\"partition\":", i ? "," : "", hex);
			cli_json_str(v.heads[i].part);
			printf(",\"seq\":%llu}", (unsigned long long)v.heads[i].seq);
		} else {
			printf("%s %s %llu\n", hex, v.heads[i].part[0] ? v.heads[i].part : "-",
			       (unsigned long long)v.heads[i].seq);
		}
	}
	if (cli->json)
		printf("]\n");
	zila_vector_release(&v);
	zila_buf_release(&cb);
	return CLI_OK;
}
