/* zila vector: the replica's version vector, one feed per line:
 *   DEVICE-KEY-HEX PARTITION SEQ     (PARTITION is '-' for the org-wide partition)
 * after lines "# device DEVICE-KEY-HEX" naming this replica, "# made SECONDS" and its
 * certificate ("# cert HEX"), and before a last line "# sig HEX": the device's Ed25519
 * signature over everything before it. The same text is what `zila bundle create --for FILE`
 * reads, and it believes only a file its device signed. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "zila/clock.h"
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
		for (size_t i = 0; i < v.nheads; i++) {
			char hex[65];
			zila_hex_encode(hex, v.heads[i].origin, 32);
			printf("%s{\"device\":\"%s\",\"partition\":", i ? "," : "", hex);
			cli_json_str(v.heads[i].part);
			printf(",\"seq\":%llu}", (unsigned long long)v.heads[i].seq);
		}
		printf("]\n");
	} else {
		/* The text, then this device's signature over it: `bundle create --for` sends a
		 * replica only what the device that signed the file may read (#15 item 3). */
		char me[65], line[2 * ZILA_CERT_LEN + 64];
		struct zila_buf t;
		zila_buf_init(&t, (size_t)1 << 30);
		zila_hex_encode(me, self, 32);
		int n = snprintf(line, sizeof(line), "# device %s\n# made %llu\n", me, (unsigned long long)zila_wall_s());
		r = zila_buf_put(&t, line, (size_t)n);
		if (has_cert) {
			char hex[2 * ZILA_CERT_LEN + 1];
			zila_hex_encode(hex, cb.p, cb.len < ZILA_CERT_LEN ? cb.len : ZILA_CERT_LEN);
			n = snprintf(line, sizeof(line), "# cert %s\n", hex);
			r = r ? r : zila_buf_put(&t, line, (size_t)n);
		}
		for (size_t i = 0; r == 0 && i < v.nheads; i++) {
			char hex[65];
			zila_hex_encode(hex, v.heads[i].origin, 32);
			n = snprintf(line, sizeof(line), "%s %s %llu\n", hex, v.heads[i].part[0] ? v.heads[i].part : "-",
				     (unsigned long long)v.heads[i].seq);
			r = zila_buf_put(&t, line, (size_t)n);
		}
		uint8_t sig[64];
		char sighex[129];
		if (r == 0) {
			crypto_sign_detached(sig, NULL, t.p, t.len, zila_store_device_sk(s));
			zila_hex_encode(sighex, sig, 64);
			fwrite(t.p, 1, t.len, stdout);
			printf("# sig %s\n", sighex);
		}
		zila_buf_release(&t);
		if (r != 0) {
			cli_err("cannot write the vector: %s", zila_strerror(r));
			zila_vector_release(&v);
			zila_buf_release(&cb);
			return CLI_FAIL;
		}
	}
	zila_vector_release(&v);
	zila_buf_release(&cb);
	return CLI_OK;
}
