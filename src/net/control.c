/* The local control socket DIR/zila.sock (on Windows a named pipe, zila_os_ctl_name): one
 * JSON request per line, JSON lines back. The socket's mode follows the replica directory's:
 * 0600, or 0660 when the directory lets its group in (0750, the Debian package's service
 * replica), so that the group's members reach the daemon and may ask for a web login
 * (zila_os_ctl_peer_web: the office's users work there); only the daemon's own user (or
 * root) may stop it (zila_os_ctl_peer_owner). On Windows each client is checked (zila_os_ctl_peer_ok: the
 * daemon's user; to the service also Administrators and the local group zila); one refused
 * gets one error line saying how to get access, and is closed. Requests: {"cmd":"status"}, {"cmd":"peers"},
 * {"cmd":"sync","peer":P,"wait":B}, {"cmd":"stop"}, {"cmd":"reload"}, {"cmd":"web-login"} (a
 * one-time login link of the web interface). A waiting sync streams {"progress":[...]} lines
 * and ends with a line holding "done":true. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "zila/log.h"
#include "zila/os.h"

struct ctl_write {
	uv_write_t req;
	struct ctl *ctl;
	size_t len;
	char data[];
};

static void ctl_closed(uv_handle_t *h)
{
	struct ctl *c = h->data;
	for (struct ctl **pp = &c->ct->ctls; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	zila_buf_release(&c->in);
	free(c);
}

static void ctl_close(struct ctl *c)
{
	if (c->closing)
		return;
	c->closing = true;
	c->waiting = false;
	uv_close((uv_handle_t *)&c->pipe, ctl_closed);
}

static void on_ctl_written(uv_write_t *req, int status)
{
	struct ctl_write *w = container_of(req, struct ctl_write, req);
	struct ctl *c = w->ctl;
	(void)status;
	free(w);
	c->nwrites--;
	if (c->nwrites == 0 && c->close_on_flush)
		ctl_close(c);
}

/* Sends obj (consumed) as one line. */
static void ctl_send(struct ctl *c, json_t *obj)
{
	char *s = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	if (s == NULL || c->closing)
		goto out;
	size_t n = strlen(s);
	struct ctl_write *w = malloc(sizeof(*w) + n + 1);
	if (w == NULL)
		goto out;
	memcpy(w->data, s, n);
	w->data[n] = '\n';
	w->len = n + 1;
	w->ctl = c;
	uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
	if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, on_ctl_written) != 0) {
		free(w);
		ctl_close(c);
		goto out;
	}
	c->nwrites++;
out:
	free(s);
}

static void control_progress(uv_timer_t *h);

static void ctl_error(struct ctl *c, const char *msg)
{
	ctl_send(c, json_pack("{s:b, s:s}", "ok", 0, "error", msg));
}

/* --- sync --------------------------------------------------------------------------------- */

static void send_final(struct ctl *c)
{
	json_t *res = json_array();
	bool all = true;
	for (size_t i = 0; i < c->nwait; i++) {
		if (!c->wait[i].done)
			snprintf(c->wait[i].reason, sizeof(c->wait[i].reason), "the daemon stopped before the sync ended");
		bool refused = c->wait[i].result == 0 && c->wait[i].refused[0] != '\0';
		json_array_append_new(res, json_pack("{s:s, s:b, s:s?, s:s?}", "peer", c->wait[i].key ? c->wait[i].addr : "?",
						     "ok", c->wait[i].result == 0, "error",
						     c->wait[i].result == 0 ? NULL : c->wait[i].reason, "refused",
						     refused ? c->wait[i].refused : NULL));
		/* A sync whose peer refused some of our entries did not get them there. */
		all = all && c->wait[i].result == 0 && !refused;
	}
	c->waiting = false;
	ctl_send(c, json_pack("{s:b, s:b, s:o}", "done", 1, "ok", all, "results", res));
}

static void do_sync(struct ctl *c, const char *peer, bool wait)
{
	struct control *ct = c->ct;
	struct ctl_target list[CTL_WAIT_MAX];
	char msg[400];
	int n = ct->hooks.sync(ct->hooks.ctx, peer, list, CTL_WAIT_MAX, msg, sizeof(msg));
	if (n < 0) {
		ctl_error(c, msg);
		return;
	}
	json_t *started = json_array();
	c->nwait = 0;
	for (int i = 0; i < n; i++) {
		json_array_append_new(started, json_string(list[i].addr));
		c->wait[c->nwait].key = list[i].key;
		snprintf(c->wait[c->nwait].addr, sizeof(c->wait[c->nwait].addr), "%s", list[i].addr);
		c->wait[c->nwait].after = list[i].after;
		c->wait[c->nwait].done = false;
		c->wait[c->nwait].result = ZILA_EINTERNAL;
		c->wait[c->nwait].reason[0] = '\0';
		c->wait[c->nwait].refused[0] = '\0';
		c->nwait++;
	}
	c->waiting = wait;
	ctl_send(c, json_pack("{s:b, s:o, s:b}", "ok", 1, "started", started, "wait", wait));
	if (wait && !uv_is_active((uv_handle_t *)&ct->progress_timer) && !ct->env->stopping)
		uv_timer_start(&ct->progress_timer, control_progress, 300, 300);
}

static void control_progress(uv_timer_t *h)
{
	struct control *ct = container_of(h, struct control, progress_timer);
	bool any = false;
	net_store_claim(ct->env);
	for (struct ctl *c = ct->ctls; c != NULL; c = c->next) {
		if (!c->waiting)
			continue;
		any = true;
		json_t *arr = json_array();
		for (size_t i = 0; i < c->nwait; i++) {
			json_t *o = json_object();
			json_object_set_new(o, "peer", json_string(c->wait[i].key ? c->wait[i].addr : "?"));
			json_object_set_new(o, "done", json_boolean(c->wait[i].done));
			if (!c->wait[i].done && c->wait[i].key != NULL)
				ct->hooks.progress(ct->hooks.ctx, c->wait[i].key, o);
			json_array_append_new(arr, o);
		}
		ctl_send(c, json_pack("{s:o}", "progress", arr));
	}
	if (!any)
		uv_timer_stop(h);
}

void control_target_done(struct control *ct, const void *key, uint64_t seqno, int result, const char *reason,
			 const char *refused)
{
	for (struct ctl *c = ct->ctls; c != NULL; c = c->next) {
		if (!c->waiting)
			continue;
		bool all = true;
		for (size_t i = 0; i < c->nwait; i++) {
			if (c->wait[i].key == key && !c->wait[i].done && seqno > c->wait[i].after) {
				c->wait[i].done = true;
				c->wait[i].result = result;
				snprintf(c->wait[i].reason, sizeof(c->wait[i].reason), "%s", result ? reason : "");
				snprintf(c->wait[i].refused, sizeof(c->wait[i].refused), "%s", result ? "" : refused);
			}
			all = all && c->wait[i].done;
		}
		if (all)
			send_final(c);
	}
}

void control_target_gone(struct control *ct, const void *key)
{
	for (struct ctl *c = ct->ctls; c != NULL; c = c->next) {
		for (size_t i = 0; i < c->nwait; i++) {
			if (c->wait[i].key != key)
				continue;
			c->wait[i].key = NULL;
			if (!c->wait[i].done) {
				c->wait[i].done = true;
				c->wait[i].result = ZILA_ENOTFOUND;
				snprintf(c->wait[i].reason, sizeof(c->wait[i].reason), "the peer was removed");
			}
		}
		if (c->waiting) {
			bool all = true;
			for (size_t i = 0; i < c->nwait; i++)
				all = all && c->wait[i].done;
			if (all)
				send_final(c);
		}
	}
}

/* --- requests ----------------------------------------------------------------------------- */

static void handle_line(struct ctl *c, const char *line, size_t len)
{
	struct control *ct = c->ct;
	json_error_t jerr;
	json_t *req = json_loadb(line, len, 0, &jerr);
	const char *cmd = req ? json_string_value(json_object_get(req, "cmd")) : NULL;
	if (cmd == NULL) {
		ctl_error(c, "a request is one JSON object with \"cmd\" per line");
	} else if (c->waiting) {
		ctl_error(c, "a sync is being waited for on this connection");
	} else if (strcmp(cmd, "status") == 0) {
		ctl_send(c, ct->hooks.status(ct->hooks.ctx));
	} else if (strcmp(cmd, "peers") == 0) {
		ctl_send(c, json_pack("{s:b, s:o}", "ok", 1, "peers", ct->hooks.peers(ct->hooks.ctx)));
	} else if (strcmp(cmd, "sync") == 0) {
		do_sync(c, json_string_value(json_object_get(req, "peer")), json_is_true(json_object_get(req, "wait")));
	} else if (strcmp(cmd, "web-login") == 0 && !c->web) {
		/* not reached where the OS layer lets every admitted caller in (zila_os_ctl_peer_web) */
		ctl_error(c, "you may not open this daemon's web interface; ask its administrator");
	} else if (strcmp(cmd, "web-login") == 0) {
		ctl_send(c, ct->hooks.web_login(ct->hooks.ctx));
	} else if (strcmp(cmd, "reload") == 0) {
		ct->hooks.reload(ct->hooks.ctx);
		ctl_send(c, json_pack("{s:b}", "ok", 1));
	} else if (strcmp(cmd, "stop") == 0 && !c->owner) {
		char msg[256];
		snprintf(msg, sizeof(msg), "only the daemon's own user may stop it; a service stops with %s",
			 zila_os_service_stop_how());
		ctl_error(c, msg);
	} else if (strcmp(cmd, "stop") == 0) {
		ctl_send(c, json_pack("{s:b, s:i}", "ok", 1, "pid", (int)zila_os_pid()));
		ct->hooks.stop(ct->hooks.ctx);
	} else {
		ctl_error(c, "unknown command");
	}
	json_decref(req);
}

static void ctl_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	static char tmp[4096];
	(void)h;
	(void)hint;
	*buf = uv_buf_init(tmp, sizeof(tmp));
}

static void ctl_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct ctl *c = s->data;
	if (nread < 0) {
		ctl_close(c);
		return;
	}
	if (nread == 0)
		return;
	if (zila_buf_put(&c->in, buf->base, (size_t)nread) != 0) {
		ctl_error(c, "request line too long");
		c->close_on_flush = true;
		uv_read_stop(s);
		return;
	}
	for (;;) {
		uint8_t *nl = memchr(c->in.p, '\n', c->in.len);
		if (nl == NULL)
			break;
		size_t n = (size_t)(nl - c->in.p);
		net_store_claim(c->ct->env); /* requests read the replica */
		handle_line(c, (const char *)c->in.p, n);
		if (c->closing)
			return;
		memmove(c->in.p, nl + 1, c->in.len - n - 1);
		c->in.len -= n + 1;
	}
}

static void on_ctl_connection(uv_stream_t *server, int status)
{
	struct control *d = container_of((uv_pipe_t *)server, struct control, pipe);
	if (status != 0 || d->env->stopping)
		return;
	struct ctl *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return;
	c->ct = d;
	zila_buf_init(&c->in, CONTROL_LINE_MAX);
	uv_pipe_init(d->env->loop, &c->pipe, 0);
	c->pipe.data = c;
	c->next = d->ctls;
	d->ctls = c;
	uv_os_fd_t fd;
	if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0 || uv_fileno((uv_handle_t *)&c->pipe, &fd) != 0) {
		ctl_close(c);
		return;
	}
	if (!zila_os_ctl_peer_ok((intptr_t)fd)) {
		/* Told why (and how to get in), then closed: no request of theirs is read. */
		ctl_error(c, zila_os_ctl_refusal());
		c->close_on_flush = true;
		if (c->nwrites == 0)
			ctl_close(c);
		return;
	}
	if (uv_read_start((uv_stream_t *)&c->pipe, ctl_alloc, ctl_read) != 0) {
		ctl_close(c);
		return;
	}
	c->owner = zila_os_ctl_peer_owner((intptr_t)fd);
	c->web = zila_os_ctl_peer_web((intptr_t)fd);
}

int control_start(struct control *d, const struct net_env *env, const char *dir, const struct control_hooks *hooks,
		  struct zila_error *err)
{
	int r;
	memset(d, 0, sizeof(*d));
	d->env = env;
	d->hooks = *hooks;
	uv_timer_init(env->loop, &d->progress_timer);
	d->timer = true;
	if (zila_os_ctl_name(dir, d->sock_path, sizeof(d->sock_path)) != 0)
		return zila_error_set(err, ZILA_EINVAL, "the replica path is too long for a control socket: '%s'", dir);
	/* We hold the lock: a socket still there is left over from a daemon that crashed. */
	if (zila_os_ctl_binding(dir, d->sock_path))
		zila_log(ZILA_LOG_INFO, "removed a stale control socket");
	uv_pipe_init(env->loop, &d->pipe, 0);
	d->open = true;
	r = uv_pipe_bind(&d->pipe, d->sock_path);
	uv_os_fd_t pfd = (uv_os_fd_t)-1;
	if (r == 0 && uv_fileno((uv_handle_t *)&d->pipe, &pfd) != 0)
		pfd = (uv_os_fd_t)-1;
	if (zila_os_ctl_bound(d->sock_path, (intptr_t)pfd) != 0 && r == 0)
		r = UV_EPERM;
	if (r == 0)
		r = uv_listen((uv_stream_t *)&d->pipe, 16, on_ctl_connection);
	if (r != 0)
		return zila_error_set(err, r, "cannot open the control socket '%s': %s", d->sock_path, uv_strerror(r));
	return 0;
}

void control_stop(struct control *d)
{
	if (d->open) {
		uv_close((uv_handle_t *)&d->pipe, NULL);
		d->open = false;
		zila_os_ctl_unbind(d->sock_path);
	}
	if (d->timer) {
		uv_close((uv_handle_t *)&d->progress_timer, NULL);
		d->timer = false;
	}
	for (struct ctl *c = d->ctls; c != NULL; c = c->next) {
		if (c->waiting)
			send_final(c);
		c->close_on_flush = true;
		if (c->nwrites == 0)
			ctl_close(c);
	}
}
