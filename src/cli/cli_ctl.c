/* The CLI side of the control socket. */
#include "cli_names.h"
#include "cli_ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "zila/clock.h"
#include "zila/daemon.h"
#include "zila/os.h"

#define REPLY_MAX (16u << 20)

int cli_ctl_open(struct cli *cli, struct cli_ctl *c, bool quiet)
{
	memset(c, 0, sizeof(*c));
	int r = zila_os_ctl_dial(&c->conn, cli->dir);
	if (r == ZILA_ETOOBIG) {
		cli_err("the replica path '%s' is too long for a control socket", cli->dir);
		return CLI_FAIL;
	}
	if (r == ZILA_EAUTH) {
		cli_err("cannot talk to the daemon of '%s': permission denied (it belongs to another user)", cli->dir);
		return CLI_FAIL;
	}
	if (r != 0) {
		if (quiet)
			return CLI_NODAEMON;
		/* The service's replica: its daemon is systemd's (Windows: the SCM's) to start. */
		if (cli_is_service_dir(cli->dir))
			cli_err("no daemon is running on '%s'; it is a service: %s", cli->dir, zila_os_service_start_how());
		else
			cli_err("no daemon is running on '%s'; start it with 'zila -d %s daemon'", cli->dir, cli->dir);
		return CLI_NODAEMON;
	}
	return CLI_OK;
}

void cli_ctl_close(struct cli_ctl *c)
{
	zila_os_conn_close(c->conn);
	c->conn = NULL;
	free(c->buf);
	c->buf = NULL;
	c->len = c->cap = 0;
}

int cli_ctl_send(struct cli_ctl *c, json_t *req)
{
	char *s = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (s == NULL)
		return CLI_FAIL;
	size_t n = strlen(s);
	char *line = realloc(s, n + 1);
	if (line == NULL) {
		free(s);
		return CLI_FAIL;
	}
	line[n] = '\n';
	int r = CLI_OK;
	if (zila_os_conn_send(c->conn, line, n + 1, UINT64_MAX) != 0) {
		/* A daemon that let us not in said why before it closed (Windows: not in the local
		 * group zila), maybe before our request was written. */
		json_t *why = NULL;
		if (cli_ctl_recv(c, &why, 2000) == CLI_OK) {
			const char *e = json_string_value(json_object_get(why, "error"));
			cli_err("%s", e ? e : "cannot talk to the daemon: the connection broke");
			json_decref(why);
		}
		r = CLI_FAIL;
	}
	free(line);
	return r;
}

int cli_ctl_recv(struct cli_ctl *c, json_t **out, int timeout_ms)
{
	uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : zila_os_mono_ms() + (uint64_t)timeout_ms;
	*out = NULL;
	for (;;) {
		char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;
		if (nl != NULL) {
			size_t n = (size_t)(nl - c->buf);
			json_error_t jerr;
			*out = json_loadb(c->buf, n, 0, &jerr);
			memmove(c->buf, nl + 1, c->len - n - 1);
			c->len -= n + 1;
			if (*out == NULL) {
				cli_err("the daemon sent a malformed answer");
				return CLI_FAIL;
			}
			return CLI_OK;
		}
		if (c->len + 4096 > c->cap) {
			if (c->cap >= REPLY_MAX) {
				cli_err("the daemon's answer is too long");
				return CLI_FAIL;
			}
			size_t cap = c->cap ? c->cap * 2 : 65536;
			char *b = realloc(c->buf, cap);
			if (b == NULL) {
				cli_err("out of memory");
				return CLI_FAIL;
			}
			c->buf = b;
			c->cap = cap;
		}
		size_t n = 0;
		int r = zila_os_conn_recv(c->conn, c->buf + c->len, c->cap - c->len, &n, deadline);
		if (r == ZILA_ETIMEDOUT) {
			cli_err("the daemon did not answer in time");
			return CLI_FAIL;
		}
		if (r != 0 || n == 0) {
			cli_err("the daemon closed the connection");
			return CLI_FAIL;
		}
		c->len += n;
	}
}

int cli_ctl_call(struct cli *cli, json_t *req, json_t **out)
{
	struct cli_ctl c;
	*out = NULL;
	int r = cli_ctl_open(cli, &c, false);
	if (r != CLI_OK) {
		json_decref(req);
		return r;
	}
	if ((r = cli_ctl_send(&c, req)) == CLI_OK && (r = cli_ctl_recv(&c, out, 30000)) == CLI_OK &&
	    !json_is_true(json_object_get(*out, "ok"))) {
		const char *e = json_string_value(json_object_get(*out, "error"));
		cli_err("%s", e ? e : "the daemon refused the request");
		r = CLI_FAIL;
	}
	cli_ctl_close(&c);
	return r;
}

void cli_ago(char *out, size_t n, int64_t when)
{
	int64_t now = (int64_t)zila_wall_s(), d = now - when;
	if (when <= 0) {
		snprintf(out, n, "never");
	} else if (d >= 0 && d < 120) {
		snprintf(out, n, "%lld s ago", (long long)d);
	} else if (d >= 0 && d < 7200) {
		snprintf(out, n, "%lld min ago", (long long)(d / 60));
	} else if (d >= 0 && d < 48 * 3600) {
		snprintf(out, n, "%lld h ago", (long long)(d / 3600));
	} else {
		char t[40];
		cli_local_time(t, (uint64_t)when);
		snprintf(out, n, "%s", t);
	}
}

static const char *jstr(json_t *o, const char *k, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : dflt;
}

static void count_or_dash(char *out, size_t n, json_t *v)
{
	if (json_is_integer(v))
		snprintf(out, n, "%lld", (long long)json_integer_value(v));
	else
		snprintf(out, n, "?");
}

void cli_print_peers(json_t *peers)
{
	size_t i;
	json_t *p;
	if (json_array_size(peers) == 0) {
		printf("  (none known: LAN peers appear when their beacons are heard; add others with 'zila peer add')\n");
		return;
	}
	printf("  %-16s %-22s %-7s %-14s %-14s %-9s %s\n", "NAME", "ADDRESS", "SOURCE", "LAST SEEN", "LAST SYNC",
	       "PENDING", "STATE");
	json_array_foreach(peers, i, p)
	{
		char seen[40], sync[40], pend[24], state[200];
		cli_ago(seen, sizeof(seen), json_integer_value(json_object_get(p, "last_seen")));
		cli_ago(sync, sizeof(sync), json_integer_value(json_object_get(p, "last_sync")));
		count_or_dash(pend, sizeof(pend), json_object_get(p, "pending_out"));
		snprintf(state, sizeof(state), "%s", jstr(p, "state", "idle"));
		json_t *nx = json_object_get(p, "next_attempt_s");
		if (json_is_integer(nx))
			snprintf(state, sizeof(state), "retry in %lld s", (long long)json_integer_value(nx));
		printf("  %-16s %-22s %-7s %-14s %-14s %-9s %s", jstr(p, "name", jstr(p, "device", "?")),
		       jstr(p, "address", "-"), jstr(p, "source", "?"), seen, sync, pend, state);
		const char *res = jstr(p, "last_result", NULL);
		if (res != NULL && strcmp(res, "ok") != 0)
			printf(" (last: %s)", res);
		printf("\n");
	}
	printf("  PENDING: entries this replica gained since the last completed sync with the peer (at most what it lacks)\n");
}
