/* zila join: on a laptop, record an invite code and the HQ address, then dial HQ with the
 * code, receive the certificate and install it. When HQ cannot be reached the code stays
 * recorded and the daemon joins at its first contact with HQ.
 *   zila join [-|CODE] --hq HOST:PORT [--name NAME] [--timeout SECS]
 * The code is a secret while it is valid: it is typed at a prompt (no CODE) or read from
 * stdin (-), not taken from argv, which `ps` and the shell's history show to others. */
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_ctl.h"
#include "cli_trust.h"
#include "zila/daemon.h"
#include "zila/os.h"

static bool host_port_ok(const char *s)
{
	const char *colon = strrchr(s, ':');
	if (colon == NULL || colon == s || colon[1] == '\0' || strlen(s) > 255)
		return false;
	char *end;
	long port = strtol(colon + 1, &end, 10);
	return *end == '\0' && port > 0 && port < 65536;
}

/* The code from the first line of stdin (from_stdin, or no terminal to ask on) or typed at
 * a prompt. Prints its own errors. */
static int read_code(bool from_stdin, char *code, size_t n)
{
	if (!from_stdin && zila_os_isatty(0)) {
		if (cli_prompt_hidden("invite code: ", "no terminal to ask for the invite code; pipe it in: "
				      "'zila join - --hq HOST:PORT'", code, n) != CLI_OK)
			return CLI_FAIL;
	} else if (fgets(code, (int)n, stdin) == NULL) {
		code[0] = '\0';
	}
	code[strcspn(code, "\r\n")] = '\0';
	for (char *p = code; *p; p++)
		if (*p == '\t')
			*p = ' ';
	if (strspn(code, " ") == strlen(code)) {
		cli_err(from_stdin || !zila_os_isatty(0) ? "no invite code on standard input"
							       : "no invite code was typed");
		return CLI_FAIL;
	}
	return CLI_OK;
}

int cmd_join(struct cli *cli, int argc, char **argv);
int cmd_join(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "hq", required_argument, NULL, 'h' },
					      { "name", required_argument, NULL, 'n' },
					      { "timeout", required_argument, NULL, 't' },
					      { NULL, 0, NULL, 0 } };
	const char *hq = NULL, *name = NULL;
	long timeout = 20;
	char *end;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'h') {
			hq = optarg;
		} else if (c == 'n') {
			name = optarg;
			if (strlen(name) == 0 || strlen(name) > ZILA_NAME_MAX)
				return cli_usage("join", "a name has 1 to %d bytes", ZILA_NAME_MAX);
		} else if (c == 't') {
			timeout = strtol(optarg, &end, 10);
			if (*end != '\0' || timeout < 1 || timeout > 3600)
				return cli_usage("join", "timeout '%s' is not 1..3600 seconds", optarg);
		} else {
			return cli_usage("join", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (hq == NULL)
		return cli_usage("join", "join needs --hq HOST:PORT");
	if (!host_port_ok(hq))
		return cli_usage("join", "HQ address '%s' is not HOST:PORT", hq);
	char code[128] = "";
	bool from_stdin = optind + 1 == argc && strcmp(argv[optind], "-") == 0;
	if (optind == argc || from_stdin) {
		if (read_code(from_stdin, code, sizeof(code)) != CLI_OK)
			return CLI_FAIL;
	} else {
		/* The code may be typed as several words ("ABCD EFGH ..."): join them. */
		for (int i = optind; i < argc; i++) {
			if (strlen(code) + strlen(argv[i]) + 2 > sizeof(code))
				return cli_usage("join", "the invite code is too long");
			if (code[0])
				strcat(code, "-");
			strcat(code, argv[i]);
		}
		fprintf(stderr, "zila: warning: an invite code on the command line is visible to other users "
				"('ps') and stays in the shell's history; next time type it at the prompt "
				"('zila join --hq %s') or pipe it in ('zila join - --hq %s')\n", hq, hq);
	}
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
	uint8_t root[32], fp[ZILA_FP_LEN], secret[ZILA_ORG_SECRET_LEN];
	if (zila_trust_org(s, root) == 0) {
		/* A laptop enrolled before organisation secrets joins again to get one; its
		 * replica and its data stay. */
		zila_org_fingerprint(root, fp);
		int hs = zila_trust_org_secret(s, secret);
		sodium_memzero(secret, sizeof(secret));
		if (hs != ZILA_ENOTFOUND) {
			cli_err("this replica already belongs to an organisation; see 'zila whoami'");
			zila_store_free(s);
			return CLI_FAIL;
		}
		if (memcmp(fp, inv.fp_prefix, ZILA_INVITE_FP_LEN) != 0) {
			cli_err("this replica belongs to another organisation than the invite code's; see 'zila whoami'");
			zila_store_free(s);
			return CLI_FAIL;
		}
	}
	char canon[ZILA_INVITE_CODE_LEN + 1], fphex[2 * ZILA_INVITE_FP_LEN + 1];
	zila_invite_format(&inv, canon);
	zila_hex_encode(fphex, inv.fp_prefix, ZILA_INVITE_FP_LEN);
	if ((r = zila_store_meta_set(s, ZILA_META_JOIN_CODE, canon)) != 0 ||
	    (r = zila_store_meta_set(s, ZILA_META_JOIN_HQ, hq)) != 0) {
		cli_err("cannot record the invite: %s", zila_strerror(r));
		zila_store_free(s);
		return CLI_FAIL;
	}
	struct zila_error err;
	zila_error_clear(&err);
	r = zila_net_join(s, hq, name, (unsigned)timeout * 1000, &err);
	if (r == ZILA_EIO) {
		/* Unreachable: keep the code; the daemon joins when it reaches HQ. */
		zila_store_free(s);
		if (cli->json) {
			printf("{\"hq\":");
			cli_json_str(hq);
			printf(",\"organisation_fingerprint_prefix\":\"%s\",\"state\":\"pending\",\"reason\":", fphex);
			cli_json_str(zila_error_msg(&err, r));
			printf("}\n");
		} else {
			printf("recorded the invite for the organisation whose fingerprint starts %s.\n"
			       "HQ at '%s' is not reachable now (%s).\n"
			       "The daemon joins at its first contact with HQ: start it with 'zila daemon'.\n",
			       fphex, hq, zila_error_msg(&err, r));
		}
		return CLI_OK;
	}
	if (r != 0) {
		zila_store_free(s);
		cli_err("HQ at '%s' did not enrol this laptop: %s", hq, zila_error_msg(&err, r));
		return CLI_FAIL;
	}
	struct zila_cert cert;
	char id[ZILA_DEVICE_ID_LEN + 1], *org = NULL;
	zila_device_id(zila_store_device_pk(s), id);
	if (zila_trust_cert_get(s, zila_store_device_pk(s), &cert) != 0)
		memset(&cert, 0, sizeof(cert));
	if (zila_store_meta_get(s, ZILA_META_ORG_NAME, &org) != 0)
		org = NULL;
	zila_store_free(s);
	/* A daemon already running picks the certificate up now. */
	struct cli_ctl ctl;
	json_t *resp = NULL;
	bool running = false;
	if (cli_ctl_open(cli, &ctl, true) == CLI_OK) {
		running = cli_ctl_send(&ctl, json_pack("{s:s}", "cmd", "reload")) == CLI_OK &&
			  cli_ctl_recv(&ctl, &resp, 10000) == CLI_OK;
		json_decref(resp);
		cli_ctl_close(&ctl);
	}
	if (cli->json) {
		printf("{\"device\":\"%s\",\"name\":", id);
		cli_json_str(cert.name);
		printf(",\"organisation\":");
		cli_json_str(org ? org : "");
		printf(",\"role\":\"%s\",\"scope\":", zila_role_name(cert.role) ? zila_role_name(cert.role) : "");
		cli_json_str(cert.scope_all ? "*" : cert.district);
		printf(",\"hq\":");
		cli_json_str(hq);
		printf(",\"state\":\"enrolled\"}\n");
	} else {
		printf("joined: this laptop is now enrolled\n"
		       "device:       %s\n"
		       "organisation: %s\n"
		       "role:         %s of %s (%s)\n"
		       "%s\n",
		       id, org ? org : "(unnamed)", zila_role_name(cert.role) ? zila_role_name(cert.role) : "?",
		       cert.scope_all ? "all districts" : cert.district, cert.name,
		       running ? "The running daemon now syncs with HQ." : "Start 'zila daemon': it syncs with HQ and LAN peers.");
	}
	free(org);
	return CLI_OK;
}
