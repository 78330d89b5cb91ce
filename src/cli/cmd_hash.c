/* zila hash: a content hash of every tracked row. */
#include <stdio.h>

#include "cli.h"
#include "zila/store.h"

int cmd_hash(struct cli *cli, int argc, char **argv);
int cmd_hash(struct cli *cli, int argc, char **argv)
{
	(void)argv;
	if (argc > 1)
		return cli_usage("hash", "hash takes no arguments");
	struct zila_store *s = cli->store;
	struct zila_error err;
	uint8_t h[32];
	char hex[65];
	zila_error_clear(&err);
	int r = zila_store_seal(s, NULL, &err);
	if (r == 0)
		r = zila_store_hash(s, h, &err);
	if (r != 0) {
		cli_err("%s", zila_error_msg(&err, r));
		return CLI_FAIL;
	}
	zila_hex_encode(hex, h, 32);
	if (cli->json)
		printf("{\"hash\":\"%s\"}\n", hex);
	else
		printf("%s\n", hex);
	return CLI_OK;
}
