/* zila join: on a laptop, record an invite code and the HQ address. The laptop proves the
 * code to HQ at its first contact (the network half lands with the daemon).
 *   zila join CODE --hq HOST:PORT */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_trust.h"

static bool host_port_ok(const char *s)
{
	const char *colon = strrchr(s, ':');
	if (colon == NULL || colon == s || colon[1] == '\0' || strlen(s) > 255)
		return false;
	char *end;
	long port = strtol(colon + 1, &end, 10);
	return *end == '\0' && port > 0 && port < 65536;
}

int cmd_join(struct cli *cli, int argc, char **argv);
int cmd_join(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "hq", required_argument, NULL, 'h' }, { NULL, 0, NULL, 0 } };
	const char *hq = NULL;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'h')
			hq = optarg;
		else
			return cli_usage("join", "unknown option '%s'", argv[optind - 1]);
	}
	/* The code may be typed as several words ("ABCD EFGH ..."): join them. */
	char code[128] = "";
	for (int i = optind; i < argc; i++) {
		if (strlen(code) + strlen(argv[i]) + 2 > sizeof(code))
			return cli_usage("join", "the invite code is too long");
		if (code[0])
			strcat(code, "-");
		strcat(code, argv[i]);
	}
	if (code[0] == '\0')
		return cli_usage("join", "join needs the invite CODE");
	if (hq == NULL)
		return cli_usage("join", "join needs --hq HOST:PORT");
	if (!host_port_ok(hq))
		return cli_usage("join", "HQ address '%s' is not HOST:PORT", hq);
	struct zila_invite inv;
	int r = zila_invite_parse(code, &inv);
	if (r == ZILA_ECHECK) {
		cli_err("invite code '%s' has a typo: its check characters do not match; read it again", code);
		return CLI_FAIL;
	}
	if (r == ZILA_EVERSION) {
		cli_err("invite code '%s' is from a newer zila; update this laptop", code);
		return CLI_FAIL;
	}
	if (r != 0) {
		cli_err("'%s' is not an invite code (%d characters in groups of four are expected)", code, 38);
		return CLI_FAIL;
	}
	struct zila_store *s = NULL;
	struct zila_trust_ctx tc;
	if (cli_trust_open(cli, &s, &tc) != CLI_OK)
		return CLI_FAIL;
	if (zila_trust_org(s, NULL) == 0) {
		cli_err("this replica already belongs to an organisation; see 'zila whoami'");
		zila_store_free(s);
		return CLI_FAIL;
	}
	char canon[ZILA_INVITE_CODE_LEN + 1], fp[2 * ZILA_INVITE_FP_LEN + 1];
	zila_invite_format(&inv, canon);
	zila_hex_encode(fp, inv.fp_prefix, ZILA_INVITE_FP_LEN);
	if ((r = zila_store_meta_set(s, ZILA_META_JOIN_CODE, canon)) != 0 ||
	    (r = zila_store_meta_set(s, ZILA_META_JOIN_HQ, hq)) != 0) {
		cli_err("cannot record the invite: %s", zila_strerror(r));
		zila_store_free(s);
		return CLI_FAIL;
	}
	zila_store_free(s);
	if (cli->json) {
		printf("{\"hq\":");
		cli_json_str(hq);
		printf(",\"organisation_fingerprint_prefix\":\"%s\",\"state\":\"pending\"}\n", fp);
	} else {
		printf("recorded the invite for the organisation whose fingerprint starts %s and HQ at '%s'.\n"
		       "This laptop enrols when it first reaches HQ; that network step comes with the daemon\n"
		       "and is not built yet. Until then use the USB path: zila enrol request FILE\n",
		       fp, hq);
	}
	return CLI_OK;
}
