/* The CLI side of the control socket. */
#include "cli_names.h"
#include "cli_ctl.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "zila/clock.h"
#include "zila/daemon.h"

#define REPLY_MAX (16u << 20)

int cli_ctl_open(struct cli *cli, struct cli_ctl *c, bool quiet)
{
	struct sockaddr_un sa;
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", cli->dir, ZILA_CONTROL_SOCK);
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path)) {
		cli_err("the replica path '%s' is too long for a control socket", cli->dir);
		return CLI_FAIL;
	}
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;
		if (c->fd >= 0)
			close(c->fd);
		c->fd = -1;
		if (e == EACCES) {
			cli_err("cannot talk to the daemon of '%s': permission denied (it belongs to another user)", cli->dir);
			return CLI_FAIL;
		}
		struct stat st;
		if (quiet)
			return CLI_NODAEMON;
		/* The package's service replica, another user's: its daemon is systemd's to start. */
		if (strcmp(cli->dir, ZILA_SYSTEM_DIR) == 0 && stat(cli->dir, &st) == 0 && st.st_uid != geteuid())
			cli_err("no daemon is running on '%s'; it is a service: 'sudo systemctl start zila' "
				"(after 'sudo -u zila zila -d %s init' or join, once)", cli->dir, cli->dir);
		else
			cli_err("no daemon is running on '%s'; start it with 'zila -d %s daemon'", cli->dir, cli->dir);
		return CLI_NODAEMON;
	}
	return CLI_OK;
}

void cli_ctl_close(struct cli_ctl *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
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
	size_t n = strlen(s), off = 0;
	s[n] = '\0';
	int r = CLI_OK;
	while (off < n + 1) {
		const char *p = off < n ? s + off : "\n";
		size_t k = off < n ? n - off : 1;
		ssize_t w = send(c->fd, p, k, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			cli_err("cannot talk to the daemon: %s", strerror(errno));
			r = CLI_FAIL;
			break;
		}
		off += (size_t)w;
	}
	free(s);
	return r;
}

int cli_ctl_recv(struct cli_ctl *c, json_t **out, int timeout_ms)
{
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
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		int pr = poll(&pfd, 1, timeout_ms);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr == 0) {
			cli_err("the daemon did not answer in time");
			return CLI_FAIL;
		}
		ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			cli_err("the daemon closed the connection");
			return CLI_FAIL;
		}
		c->len += (size_t)n;
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
