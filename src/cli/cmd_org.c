/* zila org: create the organisation at HQ, show it, and the root key's own acts.
 *   zila org init --name NAME [--passphrase-file FILE]
 *   zila org show
 *   zila org add-hq [--org-key FILE] [--passphrase-file FILE] [--name DEVICE] [--org-name NAME]
 *   zila org revoke DEVICE [--org-key FILE] [--passphrase-file FILE] */
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

/* The root key's acts: an HQ certificate for this replica's device (a new HQ, or a
 * renewal), or the revocation of any device, an HQ device included (#15 item 12). */
static int root_act(struct cli *cli, const char *device, const char *key_file, const char *pass_file, const char *name,
		    const char *org_name)
{
	struct zila_store *s = NULL;
	struct zila_trust_ctx tc;
	char path[4096], *pass = NULL, id[ZILA_DEVICE_ID_LEN + 1];
	size_t pass_len = 0;
	uint8_t root_pk[32], *root_sk = NULL, pk[32];
	struct zila_error err;
	int rc = CLI_FAIL, r;
	zila_error_clear(&err);
	if (name != NULL && (name[0] == '\0' || strlen(name) > ZILA_NAME_MAX))
		return cli_usage("org", "device name '%s' must be 1 to %d bytes", name, ZILA_NAME_MAX);
	if (org_name != NULL && (org_name[0] == '\0' || strlen(org_name) > ZILA_NAME_MAX))
		return cli_usage("org", "organisation name '%s' must be 1 to %d bytes", org_name, ZILA_NAME_MAX);
	if (cli_trust_open(cli, &s, &tc) != CLI_OK)
		return CLI_FAIL;
	if (key_file == NULL) {
		snprintf(path, sizeof(path), "%s/%s", zila_store_dir(s), ZILA_ORG_KEY_FILE);
		key_file = path;
	}
	if (device != NULL && cli_find_device(s, device, pk) != CLI_OK)
		goto out;
	if (cli_read_passphrase(pass_file, false, &pass, &pass_len) != CLI_OK)
		goto out;
	r = zila_org_key_unlock(key_file, pass, pass_len, &root_sk, root_pk);
	sodium_free(pass);
	if (r != 0) {
		cli_err("cannot unlock the root key '%s': %s", key_file,
			r == ZILA_EPASSPHRASE ? "wrong passphrase" : zila_strerror(r));
		goto out;
	}
	if (device == NULL) {
		r = zila_trust_root_hq(s, root_sk, name, org_name, cli_now(), &err);
		if (r != 0) {
			cli_err("cannot make this device an HQ: %s", zila_error_msg(&err, r));
			goto out;
		}
		if ((r = zila_trust_org_secret_adopt(s, key_file, &err)) != 0) {
			cli_err("this device is an HQ now, but %s", zila_error_msg(&err, r));
			goto out;
		}
		zila_device_id(zila_store_device_pk(s), id);
		if (cli->json)
			printf("{\"hq\":\"%s\"}\n", id);
		else
			printf("this device (%s) is now an HQ of the organisation, certified by the root key.\n"
			       "If it replaces a lost or stolen HQ: sync it with a district laptop first, then revoke the old "
			       "one ('zila org revoke DEVICE') and reissue the laptops it certified ('zila enrol reissue').\n",
			       id);
	} else {
		zila_device_id(pk, id);
		r = zila_trust_root_revoke(s, root_sk, pk, cli_now(), &err);
		if (r != 0) {
			cli_err("cannot revoke device '%s': %s", id, zila_error_msg(&err, r));
			goto out;
		}
		if (cli->json)
			printf("{\"revoked\":\"%s\",\"by\":\"root\"}\n", id);
		else
			printf("revoked device %s with the root key; the revocation spreads with the next bundles and syncs.\n"
			       "Laptops it certified are refused from now on until reissued ('zila enrol reissue' at an HQ).\n",
			       id);
	}
	rc = CLI_OK;
out:
	sodium_free(root_sk);
	zila_store_free(s);
	return rc;
}

int cmd_org(struct cli *cli, int argc, char **argv);
int cmd_org(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "name", required_argument, NULL, 'n' },
					      { "passphrase-file", required_argument, NULL, 'p' },
					      { "org-key", required_argument, NULL, 'k' },
					      { "org-name", required_argument, NULL, 'o' },
					      { NULL, 0, NULL, 0 } };
	const char *name = NULL, *pass_file = NULL, *key_file = NULL, *org_name = NULL;
	int c;
	if (argc < 2)
		return cli_usage("org", "org needs 'init', 'show', 'add-hq' or 'revoke'");
	const char *verb = argv[1];
	optind = 2;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'n')
			name = optarg;
		else if (c == 'p')
			pass_file = optarg;
		else if (c == 'k')
			key_file = optarg;
		else if (c == 'o')
			org_name = optarg;
		else
			return cli_usage("org", "unknown option '%s'", argv[optind - 1]);
	}
	struct zila_store *s = NULL;
	struct zila_trust_ctx tc;
	if (strcmp(verb, "add-hq") == 0 || strcmp(verb, "revoke") == 0) {
		bool revoke = verb[0] == 'r';
		if (revoke && (optind + 1 != argc || name || org_name))
			return cli_usage("org", "org revoke needs one DEVICE (and optionally --org-key, --passphrase-file)");
		if (!revoke && optind != argc)
			return cli_usage("org", "unexpected argument '%s'", argv[optind]);
		return root_act(cli, revoke ? argv[optind] : NULL, key_file, pass_file, name, org_name);
	}
	if (key_file || org_name)
		return cli_usage("org", "--org-key and --org-name are for 'add-hq' and 'revoke'");
	if (optind != argc)
		return cli_usage("org", "unexpected argument '%s'", argv[optind]);
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
		return cli_usage("org", "'%s' is not an org command: use 'init', 'show', 'add-hq' or 'revoke'", verb);
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
