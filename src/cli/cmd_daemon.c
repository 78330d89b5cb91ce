/* zila daemon: run the sync daemon in the foreground, logging to stderr.
 *   zila daemon [--listen ADDR:PORT] [--beacon-port N] [--beacon-to ADDR[:PORT]]...
 *               [--max-sessions N] [--idle-timeout SECS] [--web ADDR:PORT|off] [--postgres CONNINFO]
 *               [--foreground]
 * The daemon serves the web interface's pages (src/office/web.c) through a handler the CLI
 * wires here: net and office do not see each other. The PostgreSQL mirror (--postgres, else
 * the setting 'zila mirror set') runs on a thread of its own, told after each session that
 * applied entries. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "zila/daemon.h"
#include "zila/log.h"
#include "zila/office/pgmirror.h"
#include "zila/office/web.h"
#include "zila/trust.h"

#define BEACON_TO_MAX 16
#define WEB_NAMES_MAX 8

/* The web server's requests for pages, answered by the office layer. */
static void web_api(void *ctx, const struct zila_web_call *call, struct zila_web_answer *ans)
{
	struct zila_office_reply rep;
	zila_office_web_handle_as(ctx, call->role, call->method, call->path, call->query, call->body, call->body_len, &rep);
	ans->status = rep.status;
	ans->body = rep.body;
	ans->body_len = rep.body_len;
	snprintf(ans->ctype, sizeof(ans->ctype), "%s", rep.ctype);
	snprintf(ans->filename, sizeof(ans->filename), "%s", rep.filename);
}

/* Uploads and file contents, on a worker thread (the office opens a store for each). */
static void web_api_files(void *ctx, const struct zila_web_call *call, struct zila_web_answer *ans)
{
	struct zila_office_reply rep;
	zila_office_web_files_as(ctx, call->role, call->method, call->path, call->query, call->body, call->body_len, &rep);
	ans->status = rep.status;
	ans->body = rep.body;
	ans->body_len = rep.body_len;
	ans->inline_file = rep.inline_file;
	snprintf(ans->ctype, sizeof(ans->ctype), "%s", rep.ctype);
	snprintf(ans->filename, sizeof(ans->filename), "%s", rep.filename);
}

/* The pages' own handle on the replica and who this device is (its certificate). NULL when
 * the replica does not open: the daemon then says why. */
static struct zila_office_web *open_pages(struct cli *cli, struct zila_store **s, struct zila_trust_ctx *tc)
{
	struct zila_error err;
	struct zila_office_web *w = NULL;
	struct zila_cert c;
	char id[ZILA_DEVICE_ID_LEN + 1], *org = NULL;
	zila_error_clear(&err);
	if (zila_store_open(s, cli->dir, &err) != 0)
		return NULL;
	memset(tc, 0, sizeof(*tc));
	zila_trust_install(*s, tc);
	zila_device_id(zila_store_device_pk(*s), id);
	bool has_cert = zila_trust_cert_get(*s, zila_store_device_pk(*s), &c) == 0;
	if (zila_store_meta_get(*s, ZILA_META_ORG_NAME, &org) != 0)
		org = NULL;
	/* Not enrolled: the replica is nobody's district, and its owner sees all of it. */
	struct zila_office_who who = {
		.device_id = id,
		.name = has_cert ? c.name : id,
		.district = has_cert && !c.scope_all ? c.district : NULL,
		.org = org,
		.hq = !has_cert || c.role == ZILA_ROLE_HQ,
	};
	if (zila_office_web_new(&w, cli->dir, *s, &who, &err) != 0) {
		cli_err("the web interface's pages: %s", zila_error_msg(&err, ZILA_EDB));
		w = NULL;
	}
	free(org);
	return w;
}

static int mirror_start(void *ctx)
{
	return zila_pgmirror_start(ctx);
}

static void mirror_changed(void *ctx)
{
	zila_pgmirror_kick(ctx);
}

static void mirror_state(void *ctx, struct zila_daemon_watch_state *out)
{
	struct zila_pgmirror_state st;
	zila_pgmirror_get_state(ctx, &st);
	out->connected = st.connected;
	out->loaded = st.loaded;
	out->behind = st.behind;
	out->last_ok = st.last_ok;
	snprintf(out->target, sizeof(out->target), "%s", st.target);
	snprintf(out->last_error, sizeof(out->last_error), "%s", st.last_error);
}

/* The mirror's connection string: the flag, else the setting; NULL: none (malloc'd). */
static int mirror_conninfo(struct cli *cli, const char *flag, char **out)
{
	struct zila_store *s = NULL;
	*out = NULL;
	if (flag != NULL)
		return (*out = strdup(flag)) != NULL ? CLI_OK : CLI_FAIL;
	struct zila_error err;
	zila_error_clear(&err);
	int r = zila_store_open(&s, cli->dir, &err);
	if (r != 0) {
		cli_err("%s", zila_error_msg(&err, r));
		return CLI_FAIL;
	}
	r = zila_store_meta_get(s, ZILA_META_MIRROR_PG, out);
	zila_store_free(s);
	if (r != 0 && r != ZILA_ENOTFOUND) {
		cli_err("cannot read the replica's settings: %s", zila_strerror(r));
		return CLI_FAIL;
	}
	return CLI_OK;
}

int cmd_daemon(struct cli *cli, int argc, char **argv);
int cmd_daemon(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "listen", required_argument, NULL, 'l' },
					      { "beacon-port", required_argument, NULL, 'b' },
					      { "beacon-to", required_argument, NULL, 't' },
					      { "max-sessions", required_argument, NULL, 'm' },
					      { "idle-timeout", required_argument, NULL, 'i' },
					      { "foreground", no_argument, NULL, 'f' },
					      { "web", required_argument, NULL, 'w' },
					      { "postgres", required_argument, NULL, 'p' },
					      { "web-cert", required_argument, NULL, 'C' },
					      { "web-key", required_argument, NULL, 'K' },
					      { "web-name", required_argument, NULL, 'N' },
					      { "web-plain-lan", no_argument, NULL, 'P' },
					      { NULL, 0, NULL, 0 } };
	struct zila_daemon_config cfg;
	const char *to[BEACON_TO_MAX], *postgres = NULL, *names[WEB_NAMES_MAX + 1] = { NULL };
	size_t nnames = 0;
	char host[256], *end;
	uint16_t port;
	long v;
	int c;
	memset(&cfg, 0, sizeof(cfg));
	cfg.dir = cli->dir;
	cfg.beacon_port = -1;
	cfg.beacon_to = to;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			if (zila_hostport_parse(optarg, host, sizeof(host), &port) != 0)
				return cli_usage("daemon", "listen address '%s' is not ADDR:PORT", optarg);
			cfg.listen = optarg;
			break;
		case 'b':
			v = strtol(optarg, &end, 10);
			if (*end != '\0' || v < 0 || v > 65535)
				return cli_usage("daemon", "beacon port '%s' is not 0..65535 (0 turns beacons off)", optarg);
			cfg.beacon_port = (int)v;
			break;
		case 't':
			if (cfg.nbeacon_to >= BEACON_TO_MAX)
				return cli_usage("daemon", "at most %d --beacon-to addresses", BEACON_TO_MAX);
			to[cfg.nbeacon_to++] = optarg;
			break;
		case 'm':
			v = strtol(optarg, &end, 10);
			if (*end != '\0' || v < 1 || v > 10000)
				return cli_usage("daemon", "max sessions '%s' is not 1..10000", optarg);
			cfg.max_sessions = (unsigned)v;
			break;
		case 'i':
			v = strtol(optarg, &end, 10);
			if (*end != '\0' || v < 1 || v > 86400)
				return cli_usage("daemon", "idle timeout '%s' is not 1..86400 seconds", optarg);
			cfg.idle_timeout_ms = (unsigned)v * 1000;
			break;
		case 'f':
			break;
		case 'w':
			if (strcmp(optarg, "off") != 0 && zila_hostport_parse(optarg, host, sizeof(host), &port) != 0)
				return cli_usage("daemon", "web address '%s' is not ADDR:PORT (or off)", optarg);
			cfg.web_listen = optarg;
			break;
		case 'p':
			postgres = optarg;
			break;
		case 'C':
			cfg.web_cert = optarg;
			break;
		case 'K':
			cfg.web_key = optarg;
			break;
		case 'N':
			if (nnames >= WEB_NAMES_MAX || strlen(optarg) == 0 || strlen(optarg) > 253 || strpbrk(optarg, " /:@[]") != NULL)
				return cli_usage("daemon", "--web-name '%s': a host name (at most %d of them)", optarg, WEB_NAMES_MAX);
			names[nnames++] = optarg;
			cfg.web_names = names;
			break;
		case 'P':
			cfg.web_plain_lan = true;
			break;
		default:
			return cli_usage("daemon", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage("daemon", "unexpected argument '%s'", argv[optind]);
	if ((cfg.web_cert == NULL) != (cfg.web_key == NULL))
		return cli_usage("daemon", "a certificate needs its key: give both --web-cert FILE and --web-key FILE");
	cfg.verbose = cli->verbose;
	zila_log_set_sink(zila_daemon_log_sink, NULL, cli->verbose ? ZILA_LOG_DEBUG : ZILA_LOG_INFO);
	struct zila_error err;
	struct zila_pgmirror *mirror = NULL;
	struct zila_daemon_watch watch = { "mirror", mirror_start, mirror_changed, mirror_state, NULL };
	char *conninfo = NULL;
	zila_error_clear(&err);
	if (postgres != NULL && zila_pgmirror_check_conninfo(postgres, &err) != 0)
		return cli_usage("daemon", "%s", err.msg);
	if (mirror_conninfo(cli, postgres, &conninfo) != CLI_OK)
		return CLI_FAIL;
	int r = 0;
	if (conninfo != NULL) {
		r = zila_pgmirror_new(&mirror, cli->dir, conninfo, &err);
		free(conninfo);
		if (r != 0) {
			zila_pgmirror_free(mirror);
			cli_err("%s", zila_error_msg(&err, r));
			return CLI_FAIL;
		}
		watch.ctx = mirror;
		cfg.watch = &watch;
	}
	struct zila_store *pages_store = NULL;
	struct zila_trust_ctx pages_tc;
	struct zila_office_web *pages = NULL;
	if (cfg.web_listen == NULL || strcmp(cfg.web_listen, "off") != 0)
		pages = open_pages(cli, &pages_store, &pages_tc);
	cfg.web_api = pages ? web_api : NULL;
	cfg.web_api_files = pages ? web_api_files : NULL;
	cfg.web_ctx = pages;
	r = zila_daemon_run(&cfg, &err);
	zila_pgmirror_free(mirror);
	zila_office_web_free(pages);
	zila_store_free(pages_store);
	if (r != 0) {
		cli_err("%s", zila_error_msg(&err, r));
		return CLI_FAIL;
	}
	return CLI_OK;
}
