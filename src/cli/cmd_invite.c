/* zila invite: at HQ, make a one-time code a laptop uses to join.
 *   zila invite --district NAME|CODE|ID [--role district|block] [--expires 7d]
 * The district is looked up in the districts table; an unknown one is refused. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli_names.h"
#include "cli_trust.h"

int cmd_invite(struct cli *cli, int argc, char **argv);
int cmd_invite(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "district", required_argument, NULL, 'd' },
					      { "role", required_argument, NULL, 'r' },
					      { "expires", required_argument, NULL, 'e' },
					      { NULL, 0, NULL, 0 } };
	const char *district = NULL;
	int role = ZILA_ROLE_DISTRICT, c;
	uint64_t ttl = 7 * 86400;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'd') {
			district = optarg;
		} else if (c == 'r') {
			if (zila_role_parse(optarg, &role) != 0 || role == ZILA_ROLE_HQ)
				return cli_usage("invite", "role '%s' is not 'district' or 'block'", optarg);
		} else if (c == 'e') {
			if (cli_parse_duration(optarg, &ttl) != 0)
				return cli_usage("invite", "expiry '%s' is not a duration such as 7d, 12h or 30m", optarg);
		} else {
			return cli_usage("invite", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc)
		return cli_usage("invite", "unexpected argument '%s'", argv[optind]);
	if (district == NULL)
		return cli_usage("invite", "invite needs --district NAME (or its code or id)");
	char did[ZILA_DISTRICT_MAX + 1], dname[160];
	if (cli_district_resolve(cli, district, did, sizeof(did)) != CLI_OK)
		return CLI_FAIL;
	cli_district_label(cli, did, dname, sizeof(dname));
	struct zila_store *s = NULL;
	struct zila_trust_ctx tc;
	if (cli_trust_open(cli, &s, &tc) != CLI_OK)
		return CLI_FAIL;
	char code[ZILA_INVITE_CODE_LEN + 1], date[32];
	struct zila_error err;
	zila_error_clear(&err);
	uint64_t now = cli_now();
	int r = zila_trust_invite(s, did, role, now, now + ttl, code, &err);
	zila_store_free(s);
	if (r != 0) {
		cli_err("cannot make an invite for district '%s': %s", dname, zila_error_msg(&err, r));
		return CLI_FAIL;
	}
	cli_date(date, now + ttl);
	if (cli->json) {
		printf("{\"code\":\"%s\",\"district\":", code);
		cli_json_str(did);
		printf(",\"district_name\":");
		cli_json_str(dname);
		printf(",\"role\":\"%s\",\"expires\":%llu}\n", zila_role_name(role), (unsigned long long)(now + ttl));
	} else {
		printf("%s\n\nRead this code to the %s laptop of district '%s'; it works once, until %s.\n"
		       "On the laptop: zila join --hq HOST:PORT (and type the code when asked)\n",
		       code, zila_role_name(role), dname, date);
	}
	return CLI_OK;
}
