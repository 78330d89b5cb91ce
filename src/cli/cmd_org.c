/* zila org: create the organisation at HQ, or show it.
 *   zila org init --name NAME [--passphrase-file FILE]
 *   zila org show */
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_trust.h"

static void print_org(struct cli *cli, struct zila_store *s)
{
	uint8_t root[32], fp[ZILA_FP_LEN];
	char *name = NULL, hex[2 * ZILA_FP_LEN + 1], id[ZILA_DEVICE_ID_LEN + 1];
	if (zila_trust_org(s, root) != 0) {
		printf(cli->json ? "{\"organisation\":null}\n" : "this replica belongs to no organisation\n");
		return;
	}
	if (zila_store_meta_get(s, ZILA_META_ORG_NAME, &name) != 0)
		name = NULL;
	zila_org_fingerprint(root, fp);
	zila_hex_encode(hex, fp, sizeof(fp));
	zila_device_id(zila_store_device_pk(s), id);
	if (cli->json) {
		printf("{\"organisation\":");
		cli_json_str(name ? name : "");
		printf(",\"fingerprint\":\"%s\",\"device\":\"%s\"}\n", hex, id);
	} else {
		printf("organisation: %s\nfingerprint:  %s\nthis device:  %s\n", name ? name : "(unnamed)", hex, id);
	}
	free(name);
}

int cmd_org(struct cli *cli, int argc, char **argv);
int cmd_org(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "name", required_argument, NULL, 'n' },
					      { "passphrase-file", required_argument, NULL, 'p' },
					      { NULL, 0, NULL, 0 } };
	const char *name = NULL, *pass_file = NULL;
	int c;
	if (argc < 2)
		return cli_usage("org", "org needs 'init' or 'show'");
	const char *verb = argv[1];
	optind = 2;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'n')
			name = optarg;
		else if (c == 'p')
			pass_file = optarg;
		else
			return cli_usage("org", "unknown option '%s'", argv[optind - 1]);
	}
	if (optind != argc)
		return cli_usage("org", "unexpected argument '%s'", argv[optind]);
	struct zila_store *s = NULL;
	struct zila_trust_ctx tc;
	if (strcmp(verb, "show") == 0) {
		if (name || pass_file)
			return cli_usage("org", "'org show' takes no options");
		if (cli_trust_open(cli, &s, &tc) != CLI_OK)
			return CLI_FAIL;
		print_org(cli, s);
		zila_store_free(s);
		return CLI_OK;
	}
	if (strcmp(verb, "init") != 0)
		return cli_usage("org", "'%s' is not an org command: use 'init' or 'show'", verb);
	if (name == NULL)
		return cli_usage("org", "org init needs --name NAME");
	if (name[0] == '\0' || strlen(name) > ZILA_NAME_MAX)
		return cli_usage("org", "organisation name '%s' must be 1 to %d bytes", name, ZILA_NAME_MAX);
	if (cli_trust_open(cli, &s, &tc) != CLI_OK)
		return CLI_FAIL;
	if (zila_trust_org(s, NULL) == 0) {
		cli_err("this replica already belongs to an organisation; see 'zila org show'");
		zila_store_free(s);
		return CLI_FAIL;
	}
	char *pass = NULL;
	size_t pass_len = 0;
	if (cli_read_passphrase(pass_file, true, &pass, &pass_len) != CLI_OK) {
		zila_store_free(s);
		return CLI_FAIL;
	}
	struct zila_error err;
	zila_error_clear(&err);
	int r = zila_trust_org_init(s, name, pass, pass_len, &zila_pwcost_default, cli_now(), &err);
	sodium_free(pass);
	if (r != 0) {
		cli_err("cannot create organisation '%s': %s", name, zila_error_msg(&err, r));
		zila_store_free(s);
		return CLI_FAIL;
	}
	if (!cli->json)
		printf("created organisation '%s'; this replica is its HQ.\n"
		       "The root key is in '%s/%s', protected by the passphrase: back both up.\n",
		       name, zila_store_dir(s), ZILA_ORG_KEY_FILE);
	print_org(cli, s);
	zila_store_free(s);
	return CLI_OK;
}
