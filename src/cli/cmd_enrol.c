/* zila enrol: enrolment by USB stick, without a network.
 *   zila enrol request FILE [--name NAME]       (laptop: write a signed request)
 *   zila enrol sign REQ CERT [--district ID] [--role district|block] [--days N]   (HQ)
 *   zila enrol install CERT                     (laptop)
 *   zila enrol reissue DEVICE [CERT]             (HQ, after the HQ that certified DEVICE was revoked) */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_names.h"
#include "cli_trust.h"
#include "zila/os.h"

static int do_request(struct cli *cli, const char *file, const char *name)
{
	char host[ZILA_NAME_MAX + 1];
	if (name == NULL) {
		zila_os_hostname(host, sizeof(host));
		name = host;
	}
	struct zila_store *s = NULL;
	struct zila_trust_ctx tc;
	if (cli_trust_open(cli, &s, &tc) != CLI_OK)
		return CLI_FAIL;
	struct zila_enrol_req req;
	struct zila_buf b;
	memset(&req, 0, sizeof(req));
	snprintf(req.name, sizeof(req.name), "%s", name);
	zila_buf_init(&b, ZILA_ENROL_REQ_MAX);
	int r = zila_enrol_req_sign(&req, zila_store_device_sk(s), &b), rc = CLI_FAIL;
	char id[ZILA_DEVICE_ID_LEN + 1];
	zila_device_id(req.device_pk, id);
	zila_store_free(s);
	if (r != 0) {
		cli_err("device name '%s' must be 1 to %d bytes of text", name, ZILA_NAME_MAX);
		goto out;
	}
	if (cli_write_new_file(file, b.p, b.len, 0644) != CLI_OK)
		goto out;
	if (cli->json)
		printf("{\"request\":\"%s\",\"device\":\"%s\"}\n", file, id);
	else
		printf("wrote the enrolment request of device %s ('%s') to '%s'.\n"
		       "Take it to HQ: zila enrol sign %s CERTFILE\n",
		       id, req.name, file, file);
	rc = CLI_OK;
out:
	zila_buf_release(&b);
	return rc;
}

static int do_sign(struct cli *cli, const char *req_file, const char *cert_file, const char *district, int role,
		   uint32_t days)
{
	struct zila_buf rb, out;
	struct zila_enrol_req req;
	char answer[ZILA_DISTRICT_MAX + 2], id[ZILA_DEVICE_ID_LEN + 1];
	char did[ZILA_DISTRICT_MAX + 1], dname[160];
	int rc = CLI_FAIL, r;
	zila_buf_init(&rb, ZILA_ENROL_REQ_MAX);
	zila_buf_init(&out, ZILA_CERT_FILE_MAX);
	/* Refuse before signing: a certificate kept at HQ but never written would mislead. */
	if (access(cert_file, F_OK) == 0) {
		cli_err("'%s' already exists; choose another name", cert_file);
		goto out;
	}
	if (cli_read_file(req_file, ZILA_ENROL_REQ_MAX, &rb) != CLI_OK)
		goto out;
	if ((r = zila_enrol_req_decode(zila_buf_view(&rb), &req)) != 0) {
		cli_err("'%s' is not a valid enrolment request: %s", req_file, zila_strerror(r));
		goto out;
	}
	zila_device_id(req.device_pk, id);
	if (district == NULL) {
		fprintf(stderr, "device %s asks to be enrolled as '%s'.\n", id, req.name);
		if (cli_ask("district (name, code or id): ", answer, sizeof(answer)) != CLI_OK) {
			rc = cli_usage("enrol", "enrol sign needs --district NAME (no terminal to ask)");
			goto out;
		}
		district = answer;
	}
	if (cli_district_resolve(cli, district, did, sizeof(did)) != CLI_OK)
		goto out;
	cli_district_label(cli, did, dname, sizeof(dname));
	if (role == 0) {
		char rs[32];
		if (cli_ask("role (district or block) [district]: ", rs, sizeof(rs)) != CLI_OK)
			role = ZILA_ROLE_DISTRICT;
		else if (zila_role_parse(rs, &role) != 0 || role == ZILA_ROLE_HQ) {
			cli_err("role '%s' is not 'district' or 'block'", rs);
			goto out;
		}
	}
	struct zila_store *s = NULL;
	struct zila_trust_ctx tc;
	if (cli_trust_open(cli, &s, &tc) != CLI_OK)
		goto out;
	struct zila_error err;
	zila_error_clear(&err);
	r = zila_trust_issue(s, req.device_pk, req.name, role, did, cli_now(), days, &out, &err);
	zila_store_free(s);
	if (r != 0) {
		cli_err("cannot sign the request of device %s: %s", id, zila_error_msg(&err, r));
		goto out;
	}
	if (cli_write_new_file(cert_file, out.p, out.len, 0644) != CLI_OK)
		goto out;
	if (cli->json) {
		printf("{\"device\":\"%s\",\"district\":", id);
		cli_json_str(did);
		printf(",\"role\":\"%s\",\"certificate\":", zila_role_name(role));
		cli_json_str(cert_file);
		printf("}\n");
	} else {
		printf("enrolled device %s ('%s') as a %s device of district '%s' for %u days.\n"
		       "Take '%s' to the laptop: zila enrol install %s\n",
		       id, req.name, zila_role_name(role), dname, days, cert_file, cert_file);
	}
	rc = CLI_OK;
out:
	zila_buf_release(&rb);
	zila_buf_release(&out);
	return rc;
}

/* At an HQ: certify again a laptop whose certificate a revoked HQ device issued. */
static int do_reissue(struct cli *cli, const char *device, const char *file)
{
	struct zila_store *s = NULL;
	struct zila_trust_ctx tc;
	struct zila_buf out;
	struct zila_error err;
	uint8_t pk[32];
	char id[ZILA_DEVICE_ID_LEN + 1];
	int rc = CLI_FAIL, r;
	zila_buf_init(&out, ZILA_CERT_FILE_MAX);
	zila_error_clear(&err);
	if (cli_trust_open(cli, &s, &tc) != CLI_OK)
		goto out;
	if (cli_find_device(s, device, pk) != CLI_OK)
		goto out;
	zila_device_id(pk, id);
	if ((r = zila_trust_reissue(s, pk, cli_now(), file ? &out : NULL, &err)) != 0) {
		cli_err("cannot reissue the certificate of '%s': %s", id, zila_error_msg(&err, r));
		goto out;
	}
	if (file != NULL && cli_write_new_file(file, out.p, out.len, 0644) != CLI_OK)
		goto out;
	if (cli->json)
		printf("{\"reissued\":\"%s\"}\n", id);
	else
		printf("certified %s again with this HQ's key; it reaches the laptop with the next sync%s%s%s\n", id,
		       file ? " or by USB: 'zila enrol install " : "", file ? file : "", file ? "' there" : "");
	rc = CLI_OK;
out:
	zila_store_free(s);
	zila_buf_release(&out);
	return rc;
}

static int do_install(struct cli *cli, const char *file)
{
	struct zila_buf b;
	int rc = CLI_FAIL, r;
	zila_buf_init(&b, ZILA_CERT_FILE_MAX);
	if (cli_read_file(file, ZILA_CERT_FILE_MAX, &b) != CLI_OK)
		goto out;
	struct zila_store *s = NULL;
	struct zila_trust_ctx tc;
	if (cli_trust_open(cli, &s, &tc) != CLI_OK)
		goto out;
	struct zila_error err;
	zila_error_clear(&err);
	r = zila_trust_install_cert(s, zila_buf_view(&b), cli_now(), &err);
	struct zila_cert c;
	if (r == 0)
		r = zila_trust_cert_get(s, zila_store_device_pk(s), &c);
	zila_store_free(s);
	if (r != 0) {
		cli_err("cannot install '%s': %s", file, zila_error_msg(&err, r));
		goto out;
	}
	char date[32], dname[160];
	cli_date(date, c.not_after);
	cli_district_label(cli, c.scope_all ? "*" : c.district, dname, sizeof(dname));
	if (cli->json)
		printf("{\"installed\":true,\"role\":\"%s\",\"district\":\"%s\",\"expires\":%llu}\n", zila_role_name(c.role),
		       c.scope_all ? "*" : c.district, (unsigned long long)c.not_after);
	else
		printf("this device is enrolled as %s of %s until %s\n", zila_role_name(c.role),
		       dname, date);
	rc = CLI_OK;
out:
	zila_buf_release(&b);
	return rc;
}

int cmd_enrol(struct cli *cli, int argc, char **argv);
int cmd_enrol(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "name", required_argument, NULL, 'n' },
					      { "district", required_argument, NULL, 'd' },
					      { "role", required_argument, NULL, 'r' },
					      { "days", required_argument, NULL, 'D' },
					      { NULL, 0, NULL, 0 } };
	const char *name = NULL, *district = NULL;
	int role = 0, c;
	unsigned long days = 365;
	if (argc < 2)
		return cli_usage("enrol", "enrol needs 'request', 'sign', 'install' or 'reissue'");
	const char *verb = argv[1];
	optind = 2;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'n':
			name = optarg;
			break;
		case 'd':
			district = optarg;
			break;
		case 'r':
			if (zila_role_parse(optarg, &role) != 0 || role == ZILA_ROLE_HQ)
				return cli_usage("enrol", "role '%s' is not 'district' or 'block'", optarg);
			break;
		case 'D':
			days = strtoul(optarg, &end, 10);
			if (*end != '\0' || days == 0 || days > 3650)
				return cli_usage("enrol", "--days '%s' is not a number of days from 1 to 3650", optarg);
			break;
		default:
			return cli_usage("enrol", "unknown option '%s'", argv[optind - 1]);
		}
	}
	int nargs = argc - optind;
	if (strcmp(verb, "request") == 0) {
		if (nargs != 1 || district || role)
			return cli_usage("enrol", "enrol request needs one FILE (and optionally --name)");
		return do_request(cli, argv[optind], name);
	}
	if (strcmp(verb, "sign") == 0) {
		if (nargs != 2 || name)
			return cli_usage("enrol", "enrol sign needs REQUESTFILE and CERTFILE");
		return do_sign(cli, argv[optind], argv[optind + 1], district, role, (uint32_t)days);
	}
	if (strcmp(verb, "reissue") == 0) {
		if ((nargs != 1 && nargs != 2) || name || district || role)
			return cli_usage("enrol", "enrol reissue needs DEVICE (and optionally CERTFILE to write)");
		return do_reissue(cli, argv[optind], nargs == 2 ? argv[optind + 1] : NULL);
	}
	if (strcmp(verb, "install") == 0) {
		if (nargs != 1 || name || district || role)
			return cli_usage("enrol", "enrol install needs one CERTFILE");
		return do_install(cli, argv[optind]);
	}
	return cli_usage("enrol", "'%s' is not an enrol command: use 'request', 'sign' or 'install'", verb);
}
