/* zila status: what the running daemon knows: this device, HQ, peers, what is waiting to be
 * sent, conflicts and clock warnings.
 *   zila status */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_names.h"
#include "cli_ctl.h"
#include "zila/store.h"
#include "zila/trust.h"

static long long jint(json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

static const char *jstr(json_t *o, const char *k, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : dflt;
}

/* HQ: a device that holds the collection of deleted rows back (a lost laptop not revoked).
 * Read here, from the replica, not by the daemon: it walks the deleted rows (0.25 s at 1M
 * rows), which the daemon's loop would pay for every status and every second of an open web
 * page's status stream. */
static bool held_line(struct cli *cli, json_t *st, char *msg, size_t n)
{
	struct zila_store *s = NULL;
	struct zila_held_list l;
	struct zila_error err;
	size_t nheld = 0, ndevs = 0;
	zila_error_clear(&err);
	/* quietly: the daemon's status already says the clock's and certificate's warnings,
	 * and one who may ask the daemon need not be able to open the replica */
	if (strcmp(jstr(st, "role", ""), "hq") != 0 || zila_store_open(&s, cli->dir, &err) != 0)
		return false;
	int r = zila_trust_collect_held(s, &l, &err);
	if (r != 0) {
		snprintf(msg, n, "cannot read what holds the collection of deleted rows back: %s", zila_error_msg(&err, r));
	} else {
		zila_held_list_count(&l, &nheld, &ndevs);
		zila_held_list_release(&l);
		snprintf(msg, n, "deleted rows of %zu district%s wait for %zu device%s: see 'zila history'", nheld,
			 nheld == 1 ? "" : "s", ndevs, ndevs == 1 ? "" : "s");
	}
	zila_store_free(s);
	return r != 0 || nheld > 0;
}

int cmd_status(struct cli *cli, int argc, char **argv);
int cmd_status(struct cli *cli, int argc, char **argv)
{
	(void)argv;
	if (argc > 1)
		return cli_usage("status", "status takes no arguments");
	json_t *st = NULL;
	int r = cli_ctl_call(cli, json_pack("{s:s}", "cmd", "status"), &st);
	if (r != CLI_OK)
		return r;
	char said[300];
	if (cli->json) {
		json_object_del(st, "ok");
		if (held_line(cli, st, said, sizeof(said)))
			json_object_set_new(st, "collection_held", json_string(said));
		char *s = json_dumps(st, JSON_COMPACT);
		printf("%s\n", s ? s : "{}");
		free(s);
		json_decref(st);
		return CLI_OK;
	}
	char when[48], dname[160];
	printf("device:     %s", jstr(st, "device", "?"));
	cli_district_label(cli, jstr(st, "scope", "?"), dname, sizeof(dname));
	if (json_string_value(json_object_get(st, "scope_name")) != NULL) /* the daemon read it */
		snprintf(dname, sizeof(dname), "%s", jstr(st, "scope_name", "?"));
	if (json_is_true(json_object_get(st, "enrolled")))
		printf(" '%s', %s of %s, organisation '%s'\n", jstr(st, "name", "?"), jstr(st, "role", "?"), dname,
		       jstr(st, "organisation", "?"));
	else if (json_is_true(json_object_get(st, "joining")))
		printf(", not enrolled yet: joins at the first contact with HQ\n");
	else
		printf(", not enrolled\n");
	printf("daemon:     running (pid %lld), tcp %s", jint(st, "pid"), jstr(st, "listen", "?"));
	if (jint(st, "beacon_port") > 0) {
		json_t *lb = json_object_get(st, "last_beacon_s");
		printf(", LAN beacons on udp %lld", jint(st, "beacon_port"));
		if (json_is_integer(lb))
			printf(" (last heard %lld s ago)\n", (long long)json_integer_value(lb));
		else
			printf(" (none heard yet: no laptop nearby, or the network blocks them; 'zila peer add HOST:PORT' reaches one by address)\n");
	} else {
		printf(", no LAN discovery\n");
	}
	json_t *web = json_object_get(st, "web");
	if (json_is_object(web)) {
		printf("web:        %s/ (%s)\n", jstr(web, "url", "?"),
		       json_is_true(json_object_get(web, "lan")) ? "the LAN logs in with a password" : "this computer: 'zila open'");
		if (json_is_string(json_object_get(web, "fingerprint")))
			printf("            TLS certificate SHA-256 %s\n", jstr(web, "fingerprint", ""));
	}
	json_t *hq = json_object_get(st, "hq");
	if (json_is_object(hq)) {
		cli_ago(when, sizeof(when), json_integer_value(json_object_get(hq, "last_sync")));
		printf("HQ:         %s, %s, last sync %s", jstr(hq, "address", "?"),
		       json_is_true(json_object_get(hq, "reachable")) ? "reachable" : "not reached", when);
		if (json_is_string(json_object_get(hq, "last_error")))
			printf(" (last attempt: %s", jstr(hq, "last_error", ""));
		if (json_is_integer(json_object_get(hq, "next_attempt_s")))
			printf("; next in %lld s", jint(hq, "next_attempt_s"));
		if (json_is_string(json_object_get(hq, "last_error")))
			printf(")");
		printf("\n");
	} else if (json_is_true(json_object_get(st, "enrolled")) && strcmp(jstr(st, "role", ""), "hq") != 0) {
		printf("HQ:         no address set ('zila peer add --hq HOST:PORT')\n");
	}
	json_t *l = json_object_get(st, "local");
	if (json_is_object(l)) {
		printf("local:      %lld changes not sealed yet, %lld entries of ours not sent to any peer",
		       jint(l, "unsealed"), jint(l, "unsent"));
		if (json_is_integer(json_object_get(l, "unsent_to_hq")))
			printf(" (%lld not yet taken by HQ)", jint(l, "unsent_to_hq"));
		printf("\n");
		printf("            %lld entries held; %lld conflicts and %lld parked rows to review ('zila conflicts')\n",
		       jint(l, "entries"), jint(l, "conflicts"), jint(l, "parked"));
		if (jint(l, "held") > 0)
			printf("            %lld entries (%lld KiB) wait for a newer schema; the most from one device: "
			       "%lld (it may park %d)\n",
			       jint(l, "held"), (jint(l, "held_bytes") + 1023) / 1024, jint(l, "held_most"), ZILA_HELD_MAX);
	}
	json_t *at = json_object_get(st, "attachments");
	if (json_is_object(at) && jint(at, "referenced") > 0) {
		printf("attachments: %lld referred to (%lld KiB); ", jint(at, "referenced"),
		       (jint(at, "referenced_bytes") + 1023) / 1024);
		if (jint(at, "missing") == 0)
			printf("all here\n");
		else
			printf("%lld not here yet (%lld KiB, %lld KiB of it held in part)%s\n", jint(at, "missing"),
			       (jint(at, "missing_bytes") + 1023) / 1024, (jint(at, "partial_bytes") + 1023) / 1024,
			       jint(at, "moving_bytes") > 0 ? "; coming now" : "; 'zila attachment ls' lists them");
		json_t *few = json_object_get(at, "missing_first");
		if (jint(at, "missing") > 0 && json_array_size(few) > 0) {
			size_t i;
			json_t *one;
			printf("             not here:");
			json_array_foreach(few, i, one)
			{
				const char *name = json_string_value(json_object_get(one, "name"));
				printf("%s %s (%s, %lld KiB)", i ? "," : "", name && name[0] ? name : json_string_value(json_object_get(one, "id")),
				       json_string_value(json_object_get(one, "district")), (jint(one, "size") + 1023) / 1024);
			}
			long long more = jint(at, "missing") - (long long)json_array_size(few);
			if (more > 0)
				printf(" and %lld more ('zila attachment ls --missing')", more);
			printf("\n");
		}
		if (jint(at, "moving_bytes") > 0)
			printf("             moving now: %lld KiB received, %lld KiB to come\n", (jint(at, "moved_bytes") + 1023) / 1024,
			       (jint(at, "moving_bytes") + 1023) / 1024);
	}
	json_t *mi = json_object_get(st, "mirror");
	if (json_is_object(mi)) {
		printf("mirror:     PostgreSQL %s, %s", jstr(mi, "target", "?"),
		       json_is_true(json_object_get(mi, "connected")) ? "connected" : "not connected");
		if (!json_is_true(json_object_get(mi, "loaded")))
			printf(", first copy not done yet");
		else if (json_is_integer(json_object_get(mi, "behind")))
			printf(", behind by %lld entries", jint(mi, "behind"));
		cli_ago(when, sizeof(when), json_integer_value(json_object_get(mi, "last_ok")));
		printf(", last in step %s", when);
		if (json_is_string(json_object_get(mi, "last_error")))
			printf(" (last error: %s)", jstr(mi, "last_error", ""));
		printf("\n");
	}
	if (held_line(cli, st, said, sizeof(said)))
		printf("collection: %s\n", said);
	printf("peers:\n");
	cli_print_peers(json_object_get(st, "peers"));
	size_t i;
	json_t *w;
	json_array_foreach(json_object_get(st, "warnings"), i, w) printf("warning: %s\n", json_string_value(w));
	json_decref(st);
	return CLI_OK;
}
