/* zila sync: ask the daemon to sync now with every known peer, one peer, or HQ; with
 * --wait, show progress (a bar on a terminal, plain lines otherwise) and the result.
 *   zila sync [PEER|hq] [--wait] [--timeout SECS] */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli_ctl.h"
#include "zila/os.h"

static const char *jstr(json_t *o, const char *k, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : dflt;
}

static void show_progress(json_t *arr, bool tty, char *last, size_t last_len)
{
	char line[1024] = "";
	size_t len = 0, i;
	json_t *p;
	uint64_t done = 0, total = 0;
	bool counting = false; /* a total is not known yet: no fraction is shown */
	json_array_foreach(arr, i, p)
	{
		long long sent = (long long)json_integer_value(json_object_get(p, "sent"));
		long long recv = (long long)json_integer_value(json_object_get(p, "received"));
		long long to_send = (long long)json_integer_value(json_object_get(p, "to_send"));
		json_t *tr = json_object_get(p, "to_receive");
		long long to_recv = (long long)json_integer_value(tr);
		bool finished = json_is_true(json_object_get(p, "done"));
		const char *state = finished ? "done" : jstr(p, "state", "waiting");
		int k;
		if (json_is_integer(tr))
			k = snprintf(line + len, sizeof(line) - len, "%s%s: %s, sent %lld of %lld entries, received %lld of %lld",
				     len ? "; " : "", jstr(p, "peer", "?"), state, sent, to_send, recv, to_recv);
		else
			k = snprintf(line + len, sizeof(line) - len, "%s%s: %s, sent %lld of %lld entries, received %lld",
				     len ? "; " : "", jstr(p, "peer", "?"), state, sent, to_send, recv);
		if (k > 0 && (size_t)k < sizeof(line) - len)
			len += (size_t)k;
		if (!finished && (!json_is_integer(tr) || !json_is_integer(json_object_get(p, "to_send"))))
			counting = true;
		done += (uint64_t)(sent + recv);
		total += (uint64_t)(to_send + (to_recv > recv ? to_recv : recv));
	}
	if (tty) {
		int width = 30, fill = total ? (int)((double)done / (double)total * width) : 0;
		char bar[64];
		if (fill > width)
			fill = width;
		if (counting) {
			snprintf(bar, sizeof(bar), "%-*s", width, "   counting what to send");
		} else {
			memset(bar, '#', (size_t)fill);
			memset(bar + fill, '-', (size_t)(width - fill));
			bar[width] = '\0';
		}
		fprintf(stderr, "\r[%s] %.100s\033[K", bar, line);
		fflush(stderr);
	} else if (strcmp(line, last) != 0) {
		printf("%s\n", line);
		fflush(stdout);
	}
	snprintf(last, last_len, "%s", line);
}

int cmd_sync(struct cli *cli, int argc, char **argv);
int cmd_sync(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "wait", no_argument, NULL, 'w' },
					      { "timeout", required_argument, NULL, 't' },
					      { NULL, 0, NULL, 0 } };
	bool wait = false;
	long timeout = 300;
	char *end;
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'w') {
			wait = true;
		} else if (c == 't') {
			timeout = strtol(optarg, &end, 10);
			if (*end != '\0' || timeout < 1)
				return cli_usage("sync", "timeout '%s' is not a number of seconds", optarg);
		} else {
			return cli_usage("sync", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (argc - optind > 1)
		return cli_usage("sync", "sync takes at most one PEER");
	const char *peer = optind < argc ? argv[optind] : NULL;

	struct cli_ctl ctl;
	json_t *resp = NULL;
	int r = cli_ctl_open(cli, &ctl, false);
	if (r != CLI_OK)
		return r;
	json_t *req = json_pack("{s:s, s:b}", "cmd", "sync", "wait", wait);
	if (peer)
		json_object_set_new(req, "peer", json_string(peer));
	if ((r = cli_ctl_send(&ctl, req)) != CLI_OK || (r = cli_ctl_recv(&ctl, &resp, 30000)) != CLI_OK)
		goto out;
	if (!json_is_true(json_object_get(resp, "ok"))) {
		cli_err("%s", jstr(resp, "error", "the daemon refused"));
		r = CLI_FAIL;
		goto out;
	}
	if (!wait) {
		if (cli->json) {
			char *s = json_dumps(json_object_get(resp, "started"), JSON_COMPACT);
			printf("{\"started\":%s}\n", s ? s : "[]");
			free(s);
		} else {
			size_t i;
			json_t *a;
			printf("sync started with");
			json_array_foreach(json_object_get(resp, "started"), i, a) printf("%s %s", i ? "," : "", json_string_value(a));
			printf("; 'zila status' shows how it went\n");
		}
		goto out;
	}
	bool tty = !cli->json && zila_os_isatty(2) && zila_os_isatty(1);
	char last[1024] = "";
	time_t deadline = time(NULL) + timeout;
	for (;;) {
		json_decref(resp);
		resp = NULL;
		int left = (int)(deadline - time(NULL));
		if (left <= 0 || (r = cli_ctl_recv(&ctl, &resp, left * 1000)) != CLI_OK) {
			if (left <= 0)
				cli_err("the sync did not end within %ld s; it goes on in the daemon", timeout);
			r = CLI_FAIL;
			goto out;
		}
		if (json_is_true(json_object_get(resp, "done")))
			break;
		if (!cli->json && json_is_array(json_object_get(resp, "progress")))
			show_progress(json_object_get(resp, "progress"), tty, last, sizeof(last));
	}
	if (tty && last[0])
		fprintf(stderr, "\r\033[K");
	bool all = json_is_true(json_object_get(resp, "ok"));
	if (cli->json) {
		json_object_del(resp, "done");
		char *s = json_dumps(resp, JSON_COMPACT);
		printf("%s\n", s ? s : "{}");
		free(s);
	} else {
		size_t i;
		json_t *res;
		json_array_foreach(json_object_get(resp, "results"), i, res)
		{
			if (json_is_true(json_object_get(res, "ok")) && json_is_string(json_object_get(res, "refused")))
				cli_err("synced with '%s', but it did not take all of this device's changes: %s",
					jstr(res, "peer", "?"), jstr(res, "refused", ""));
			else if (json_is_true(json_object_get(res, "ok")))
				printf("synced with %s\n", jstr(res, "peer", "?"));
			else
				cli_err("sync with '%s' failed: %s", jstr(res, "peer", "?"), jstr(res, "error", "unknown error"));
		}
	}
	r = all ? CLI_OK : CLI_FAIL;
out:
	json_decref(resp);
	cli_ctl_close(&ctl);
	return r;
}
