/* zila peer: configure the peers the daemon dials besides LAN ones, and the HQ address.
 *   zila peer add HOST:PORT | zila peer add --hq HOST:PORT
 *   zila peer remove HOST:PORT | zila peer remove --hq
 * Kept in the replica's settings (net.peers and trust.join_hq); a running daemon reloads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_ctl.h"
#include "cli_trust.h"
#include "zila/daemon.h"

static bool in_list(const char *list, const char *addr)
{
	size_t n = strlen(addr);
	for (const char *p = list; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t k = nl ? (size_t)(nl - p) : strlen(p);
		if (k == n && memcmp(p, addr, n) == 0)
			return true;
		p = nl ? nl + 1 : p + k;
	}
	return false;
}

/* The list without addr (or with it appended). *out is malloc'd. */
static int edit_list(const char *list, const char *addr, bool add, char **out)
{
	size_t cap = (list ? strlen(list) : 0) + strlen(addr) + 2;
	char *o = calloc(1, cap);
	if (o == NULL)
		return -1;
	for (const char *p = list; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t k = nl ? (size_t)(nl - p) : strlen(p);
		if (k > 0 && !(k == strlen(addr) && memcmp(p, addr, k) == 0)) {
			strncat(o, p, k);
			strcat(o, "\n");
		}
		p = nl ? nl + 1 : p + k;
	}
	if (add) {
		strcat(o, addr);
		strcat(o, "\n");
	}
	*out = o;
	return 0;
}

static void tell_daemon(struct cli *cli, bool *running)
{
	struct cli_ctl c;
	json_t *resp = NULL;
	*running = false;
	if (cli_ctl_open(cli, &c, true) != CLI_OK)
		return;
	if (cli_ctl_send(&c, json_pack("{s:s}", "cmd", "reload")) == CLI_OK && cli_ctl_recv(&c, &resp, 10000) == CLI_OK)
		*running = json_is_true(json_object_get(resp, "ok"));
	json_decref(resp);
	cli_ctl_close(&c);
}

int cmd_peer(struct cli *cli, int argc, char **argv);
int cmd_peer(struct cli *cli, int argc, char **argv)
{
	bool hq = false, add;
	const char *addr = NULL;
	char host[256];
	uint16_t port;
	if (argc < 2)
		return cli_usage("peer", "peer needs 'add' or 'remove'");
	if (strcmp(argv[1], "add") == 0)
		add = true;
	else if (strcmp(argv[1], "remove") == 0)
		add = false;
	else
		return cli_usage("peer", "unknown peer command '%s'", argv[1]);
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--hq") == 0)
			hq = true;
		else if (argv[i][0] == '-')
			return cli_usage("peer", "unknown option '%s'", argv[i]);
		else if (addr == NULL)
			addr = argv[i];
		else
			return cli_usage("peer", "unexpected argument '%s'", argv[i]);
	}
	if (addr == NULL && !(hq && !add))
		return cli_usage("peer", "peer %s needs HOST:PORT", argv[1]);
	if (addr != NULL && zila_hostport_parse(addr, host, sizeof(host), &port) != 0)
		return cli_usage("peer", "'%s' is not HOST:PORT (IPv6: [ADDR]:PORT)", addr);

	struct zila_store *s = NULL;
	struct zila_trust_ctx tc;
	char *list = NULL, *next = NULL;
	int r = CLI_FAIL;
	if (cli_trust_open(cli, &s, &tc) != CLI_OK)
		return CLI_FAIL;
	if (hq) {
		if (add && zila_store_meta_set(s, ZILA_META_JOIN_HQ, addr) != 0)
			goto out;
		static const char *const hq_key[] = { ZILA_META_JOIN_HQ };
		if (!add && zila_store_meta_del(s, hq_key, 1) != 0)
			goto out;
	} else {
		if (zila_store_meta_get(s, ZILA_META_NET_PEERS, &list) != 0)
			list = NULL;
		if (!add && !in_list(list, addr)) {
			cli_err("'%s' is not a configured peer; see 'zila peers'", addr);
			goto out;
		}
		if (add && in_list(list, addr)) {
			r = CLI_OK;
			goto done;
		}
		if (edit_list(list, addr, add, &next) != 0 || zila_store_meta_set(s, ZILA_META_NET_PEERS, next) != 0) {
			cli_err("cannot record the peer");
			goto out;
		}
	}
done:
	zila_store_free(s);
	s = NULL;
	bool running;
	tell_daemon(cli, &running);
	if (cli->json) {
		printf("{\"%s\":", add ? "added" : "removed");
		if (addr)
			cli_json_str(addr);
		else
			printf("null");
		printf(",\"hq\":%s,\"daemon_running\":%s}\n", hq ? "true" : "false", running ? "true" : "false");
	} else {
		if (hq && add)
			printf("HQ is at '%s'", addr);
		else if (hq)
			printf("removed the HQ address");
		else
			printf("%s peer '%s'", add ? "added" : "removed", addr);
		printf(add ? "; %s\n" : "%s\n",
		       add ? (running ? "the daemon syncs with it now" : "the daemon dials it when started")
			   : (running ? "; the daemon reloaded" : ""));
	}
	r = CLI_OK;
out:
	free(list);
	free(next);
	zila_store_free(s);
	return r;
}
