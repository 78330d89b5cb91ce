/* The local control socket DIR/zila.sock (mode 0600): one JSON request per line, JSON lines
 * back. Requests: {"cmd":"status"}, {"cmd":"peers"}, {"cmd":"sync","peer":P,"wait":B},
 * {"cmd":"stop"}, {"cmd":"reload"}. A waiting sync streams {"progress":[...]} lines and
 * ends with a line holding "done":true. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "net_int.h"
#include "zila/clock.h"
#include "zila/log.h"

struct ctl_write {
	uv_write_t req;
	struct ctl *ctl;
	size_t len;
	char data[];
};

static void ctl_closed(uv_handle_t *h)
{
	struct ctl *c = h->data;
	struct daemon *d = c->d;
	for (struct ctl **pp = &d->ctls; *pp; pp = &(*pp)->next) {
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

/* --- what the daemon knows --------------------------------------------------------------- */

static json_t *opt_int(bool known, long long v)
{
	return known ? json_integer(v) : json_null();
}

static struct conn *conn_with(struct daemon *d, const uint8_t device[32])
{
	for (struct conn *c = d->conns; c != NULL; c = c->next)
		if (c->has_peer && c->state != CONN_CLOSED && memcmp(c->peer_pk, device, 32) == 0)
			return c;
	return NULL;
}

static const char *target_state(struct daemon *d, const struct target *t)
{
	if (t->conn != NULL)
		return conn_state_name(t->conn->state);
	if (t->want && t->next_ms > uv_now(&d->loop))
		return "waiting to retry";
	if (t->want)
		return "due";
	return "idle";
}

static void add_progress(json_t *o, const struct conn *c)
{
	const struct zila_session_stats *st = c->sess ? zila_session_stats(c->sess) : NULL;
	json_object_set_new(o, "state", json_string(conn_state_name(c->state)));
	if (st != NULL) {
		json_object_set_new(o, "sent", json_integer((json_int_t)st->entries_sent));
		json_object_set_new(o, "received", json_integer((json_int_t)st->entries_received));
		if (st->to_send_known || st->in_step)
			json_object_set_new(o, "to_send", json_integer((json_int_t)st->to_send));
		json_object_set_new(o, "pending_out", json_integer((json_int_t)(st->to_send > st->entries_sent
											? st->to_send - st->entries_sent
											: 0)));
		/* Unknown (absent) until the peer said how many it sends: no fraction is made up. */
		if (st->to_receive || st->peer_done_entries || st->in_step)
			json_object_set_new(o, "to_receive", json_integer((json_int_t)st->to_receive));
	}
}

static json_t *peer_json(struct daemon *d, const struct target *t, const struct zila_peer_record *row,
			 int64_t entries_now)
{
	json_t *o = json_object();
	char id[ZILA_DEVICE_ID_LEN + 1];
	const uint8_t *dev = NULL;
	if (row != NULL && row->device != NULL)
		dev = row->device;
	else if (t != NULL && t->has_device)
		dev = t->device;
	if (dev != NULL) {
		zila_device_id(dev, id);
		json_object_set_new(o, "device", json_string(id));
	} else {
		json_object_set_new(o, "device", json_null());
	}
	const char *name = row ? row->name : NULL;
	if (name == NULL && t != NULL && t->name[0])
		name = t->name;
	json_object_set_new(o, "name", name ? json_string(name) : json_null());
	const char *district = row ? row->district : NULL;
	json_object_set_new(o, "district", district ? json_string(district) : json_null());
	const char *addr = t ? t->addr : row ? row->addr : NULL;
	json_object_set_new(o, "address", addr ? json_string(addr) : json_null());
	const char *src = t ? source_name(t->source) : row ? row->source : NULL;
	json_object_set_new(o, "source", json_string(src ? src : "inbound"));
	bool has_row = row != NULL;
	json_object_set_new(o, "last_seen", opt_int(has_row && row->has_last_seen, has_row ? row->last_seen : 0));
	json_object_set_new(o, "last_sync", opt_int(has_row && row->has_last_sync, has_row ? row->last_sync : 0));
	const char *res = row ? row->last_result : NULL;
	if (t != NULL && t->last_error[0])
		res = t->last_error;
	json_object_set_new(o, "last_result", res ? json_string(res) : json_null());
	json_object_set_new(o, "clock_offset_ms", opt_int(has_row && row->has_clock_offset,
							  has_row ? row->clock_offset_ms : 0));
	struct conn *c = dev ? conn_with(d, dev) : NULL;
	if (c == NULL && t != NULL)
		c = t->conn;
	if (c != NULL) {
		add_progress(o, c);
	} else {
		json_object_set_new(o, "state", json_string(t ? target_state(d, t) : "idle"));
		/* Entries we gained since the last completed sync: at most what it lacks. */
		bool known = has_row && row->has_entries_at_sync;
		int64_t at = known ? row->entries_at_sync : 0;
		json_object_set_new(o, "pending_out", opt_int(known, entries_now > at ? entries_now - at : 0));
	}
	if (t != NULL && t->want && t->conn == NULL && t->next_ms > uv_now(&d->loop))
		json_object_set_new(o, "next_attempt_s", json_integer((json_int_t)((t->next_ms - uv_now(&d->loop)) / 1000)));
	return o;
}

struct peers_walk {
	struct daemon *d;
	json_t *arr;
	bool with_hq;
	int64_t entries;
};

static int peer_row(void *ctx, const struct zila_peer_record *p)
{
	struct peers_walk *w = ctx;
	struct target *t = NULL;
	if (p->device != NULL) {
		for (struct target *x = w->d->targets; x != NULL; x = x->next)
			if (x->has_device && memcmp(x->device, p->device, 32) == 0 && !x->removed)
				t = x;
	}
	if (t != NULL)
		t->removed = true;
	if (!w->with_hq && t != NULL && t == w->d->hq)
		return 0;
	json_array_append_new(w->arr, peer_json(w->d, t, p, w->entries));
	return 0;
}

static json_t *peers_json(struct daemon *d, bool with_hq)
{
	struct peers_walk w = { d, json_array(), with_hq, 0 };
	struct zila_store_counts counts;
	if (zila_store_counts(d->store, &counts) != 0)
		memset(&counts, 0, sizeof(counts));
	w.entries = counts.entries;
	for (struct target *t = d->targets; t != NULL; t = t->next)
		t->removed = false; /* reused as "listed" below */
	int r = zila_store_peer_each(d->store, peer_row, &w);
	if (r != 0)
		zila_log(ZILA_LOG_WARN, "cannot read the peer table: %s", zila_strerror(r));
	for (struct target *t = d->targets; t != NULL; t = t->next) {
		if (!t->removed && (with_hq || t != d->hq))
			json_array_append_new(w.arr, peer_json(d, t, NULL, counts.entries));
		t->removed = false;
	}
	return w.arr;
}

static int64_t meta_int(struct daemon *d, const char *key)
{
	char *v = NULL;
	int64_t n = 0;
	if (zila_store_meta_get(d->store, key, &v) == 0 && v != NULL)
		n = strtoll(v, NULL, 10);
	free(v);
	return n;
}

static void add_warning(void *ctx, const char *msg)
{
	json_array_append_new(ctx, json_string(msg));
}

/* A fork this replica saw (PROTOCOL.md, "Forks"), and what to do about it in words. */
struct fork_ctx {
	struct daemon *d;
	json_t *list, *warn;
};

static int fork_json(void *ctx, const struct zila_fork *f)
{
	struct fork_ctx *fc = ctx;
	char id[ZILA_DEVICE_ID_LEN + 1];
	struct zila_cert c;
	bool named = zila_trust_cert_get(fc->d->store, f->origin, &c) == 0;
	zila_device_id(f->origin, id);
	json_t *o = json_object();
	json_object_set_new(o, "device", json_string(id));
	json_object_set_new(o, "name", named ? json_string(c.name) : json_null());
	json_object_set_new(o, "partition", json_string(f->part));
	json_object_set_new(o, "seq", json_integer((json_int_t)f->seq));
	json_object_set_new(o, "seen_at", json_integer((json_int_t)f->seen_at));
	json_object_set_new(o, "own", json_boolean(f->own));
	json_array_append_new(fc->list, o);
	if (f->own)
		json_array_append_new(fc->warn,
				      json_sprintf("this laptop's changes in partition '%s' forked at or before #%llu: "
						   "another replica holds other changes under the same numbers (was it "
						   "restored from an old backup?). Others no longer accept its changes: ask "
						   "HQ to revoke this device and enrol the laptop again",
						   f->part, (unsigned long long)f->seq));
	else
		json_array_append_new(fc->warn,
				      json_sprintf("device %s ('%s') signed two different histories of its changes in "
						   "partition '%s' (at or before #%llu): restored from an old backup, or "
						   "tampered with. Nothing more from it is accepted here; HQ: revoke it "
						   "('zila revoke %s') and enrol the laptop again",
						   id, named ? c.name : "?", f->part, (unsigned long long)f->seq, id));
	return 0;
}

static json_t *status_json(struct daemon *d)
{
	char id[ZILA_DEVICE_ID_LEN + 1];
	struct zila_store_counts counts;
	json_t *o = json_object(), *warn = json_array();
	zila_device_id(zila_store_device_pk(d->store), id);
	json_object_set_new(o, "ok", json_true());
	json_object_set_new(o, "device", json_string(id));
	json_object_set_new(o, "pid", json_integer(getpid()));
	json_object_set_new(o, "enrolled", json_boolean(d->enrolled));
	json_object_set_new(o, "joining", json_boolean(d->joining));
	if (d->enrolled) {
		json_object_set_new(o, "name", json_string(d->cert.name));
		json_object_set_new(o, "organisation", json_string(d->org_name));
		json_object_set_new(o, "role", json_string(zila_role_name(d->cert.role)));
		json_object_set_new(o, "scope", json_string(d->cert.scope_all ? "*" : d->cert.district));
	}
	json_object_set_new(o, "listen", json_string(d->listen_addr));
	json_object_set_new(o, "beacon_port", json_integer(d->udp_open ? d->beacon_port : 0));
	json_object_set_new(o, "beacons_heard", json_integer((json_int_t)d->nbeacons_heard));
	json_object_set_new(o, "last_beacon_s", opt_int(d->last_beacon_ms != 0,
							 (long long)((uv_now(&d->loop) - d->last_beacon_ms) / 1000)));
	json_object_set_new(o, "uptime_s", json_integer((json_int_t)daemon_wall() - d->started_wall));
	struct zila_clock ck;
	zila_store_clock(d->store, &ck);
	if (d->hq != NULL) {
		struct target *t = d->hq;
		json_t *h = json_object();
		json_object_set_new(h, "address", json_string(t->addr));
		json_object_set_new(h, "reachable", json_boolean(t->reachable));
		json_object_set_new(h, "state", json_string(target_state(d, t)));
		json_object_set_new(h, "last_sync", opt_int(t->last_ok != 0, (long long)t->last_ok));
		json_object_set_new(h, "last_error", t->last_error[0] ? json_string(t->last_error) : json_null());
		if (t->want && t->conn == NULL && t->next_ms > uv_now(&d->loop))
			json_object_set_new(h, "next_attempt_s",
					    json_integer((json_int_t)((t->next_ms - uv_now(&d->loop)) / 1000)));
		json_object_set_new(h, "clock_offset_ms", opt_int(ck.has_offset, ck.offset_ms));
		json_object_set_new(o, "hq", h);
	} else {
		json_object_set_new(o, "hq", json_null());
	}
	/* The clock this replica dates its changes by (PROTOCOL.md, "Clocks"). */
	static const char *const states[] = { "ok", "none", "ahead", "behind", "stale" };
	char said[768];
	json_t *cj = json_object();
	zila_clock_describe(&ck, said, sizeof(said));
	json_object_set_new(cj, "state", json_string(states[ck.state]));
	json_object_set_new(cj, "wall_ms", json_integer((json_int_t)ck.wall_ms));
	json_object_set_new(cj, "dated_ms", json_integer((json_int_t)ck.stamp_ms));
	json_object_set_new(cj, "hq_seen_ms", opt_int(ck.seen_ms != 0, (long long)ck.seen_ms));
	json_object_set_new(cj, "hq_offset_ms", opt_int(ck.has_offset, ck.offset_ms));
	json_object_set_new(cj, "reference", json_boolean(ck.is_reference));
	json_object_set_new(cj, "message", said[0] ? json_string(said) : json_null());
	json_object_set_new(o, "clock", cj);
	if (said[0])
		json_array_append_new(warn, json_string(said));
	json_t *peers = peers_json(d, false);
	size_t i;
	json_t *p;
	json_array_foreach(peers, i, p)
	{
		json_t *off = json_object_get(p, "clock_offset_ms");
		if (json_is_integer(off) && llabs((long long)json_integer_value(off)) > CLOCK_WARN_MS) {
			char w[300];
			json_t *nm = json_object_get(p, "name");
			snprintf(w, sizeof(w), "the clock of peer '%s' differs from HQ's time by %lld s",
				 json_is_string(nm) ? json_string_value(nm) : "?",
				 (long long)(json_integer_value(off) / 1000));
			json_array_append_new(warn, json_string(w));
		}
	}
	json_object_set_new(o, "peers", peers);
	if (zila_store_counts(d->store, &counts) == 0) {
		json_t *l = json_object();
		int64_t any = meta_int(d, ZILA_META_NET_OWN_ANY), hq = meta_int(d, ZILA_META_NET_OWN_HQ);
		json_object_set_new(l, "unsealed", json_integer(counts.pending));
		json_object_set_new(l, "unsent", json_integer(counts.own_entries > any ? counts.own_entries - any : 0));
		/* HQ holds everything HQ wrote; elsewhere, what HQ has taken (not what was sent). */
		json_object_set_new(l, "unsent_to_hq",
				    d->is_hq ? json_null()
					     : json_integer(counts.own_entries > hq ? counts.own_entries - hq : 0));
		json_object_set_new(l, "entries", json_integer(counts.entries));
		json_object_set_new(l, "own_entries", json_integer(counts.own_entries));
		json_object_set_new(l, "conflicts", json_integer(counts.conflicts));
		json_object_set_new(l, "parked", json_integer(counts.parked));
		json_object_set_new(l, "held", json_integer(counts.held));
		json_object_set_new(o, "local", l);
	}
	json_object_set_new(o, "replica", json_string(d->dir));
	json_object_set_new(o, "last_error", d->store_error ? json_string(d->store_error_msg) : json_null());
	json_object_set_new(o, "last_error_at", opt_int(d->store_error != 0, (long long)d->store_error_at));
	json_object_set_new(o, "busy_waits", json_integer((json_int_t)d->nbusy_waits));
	if (d->store_error != 0) {
		json_array_append_new(warn, json_sprintf("%s; syncs are retried%s", d->store_error_msg,
							 d->store_error == ZILA_EFULL ? " once space is freed" : ""));
	}
	if (d->enrolled && d->udp_open && d->last_beacon_ms == 0 && daemon_wall() - (uint64_t)d->started_wall > 60)
		json_array_append_new(warn, json_string("no LAN beacon heard since the start: Wi-Fi client isolation or a "
							"firewall may block them; add peers with 'zila peer add HOST:PORT'"));
	if (!d->enrolled && !d->joining)
		json_array_append_new(warn, json_string("not enrolled: this device syncs with nobody (see 'zila join')"));
	json_object_set_new(o, "hq_refused", refused_status(d, warn));
	json_t *forks = json_array();
	struct fork_ctx fc = { d, forks, warn };
	if (zila_store_fork_each(d->store, fork_json, &fc) != 0)
		zila_log(ZILA_LOG_WARN, "cannot read the forks this replica saw");
	json_object_set_new(o, "forks", forks);
	if (!d->is_hq && zila_trust_own_cert_warning(d->store, ck.stamp_ms / 1000, said, sizeof(said)))
		json_array_append_new(warn, json_string(said));
	/* rows written here out of scope (not sent), a table whose capture was armed again */
	if (zila_store_notices(d->store, add_warning, warn) != 0)
		json_array_append_new(warn, json_string("cannot read what this replica holds out of its write scope"));
	json_object_set_new(o, "warnings", warn);
	return o;
}

/* --- sync --------------------------------------------------------------------------------- */

static struct target *find_peer(struct daemon *d, const char *name)
{
	for (struct target *t = d->targets; t != NULL; t = t->next)
		if (strcmp(t->addr, name) == 0 || (t->name[0] && strcmp(t->name, name) == 0) ||
		    (t->has_device && zila_device_id_match(name, t->device) == 0))
			return t;
	return NULL;
}

static void want_now(struct target *t)
{
	if (t->conn != NULL) {
		t->again = true;
	} else {
		t->want = true;
		t->next_ms = 0;
		zila_backoff_reset(&t->backoff);
	}
}

static void send_final(struct ctl *c)
{
	json_t *res = json_array();
	bool all = true;
	for (size_t i = 0; i < c->nwait; i++) {
		if (!c->wait[i].done)
			snprintf(c->wait[i].reason, sizeof(c->wait[i].reason), "the daemon stopped before the sync ended");
		bool refused = c->wait[i].result == 0 && c->wait[i].refused[0] != '\0';
		json_array_append_new(res, json_pack("{s:s, s:b, s:s?, s:s?}", "peer", c->wait[i].t ? c->wait[i].t->addr : "?",
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
	struct daemon *d = c->d;
	json_t *started = json_array();
	struct target *list[32];
	size_t n = 0;
	if (!d->enrolled && !d->joining) {
		json_decref(started);
		ctl_error(c, "this device is not enrolled: it syncs with nobody (see 'zila join')");
		return;
	}
	if (peer == NULL) {
		for (struct target *t = d->targets; t != NULL && n < 32; t = t->next)
			if (t->source != SRC_LAN || uv_now(&d->loop) - t->heard_ms <= LAN_FRESH_MS)
				list[n++] = t;
		if (n == 0) {
			json_decref(started);
			ctl_error(c, "no peer is known: add one with 'zila peer add HOST:PORT', set HQ, or wait for a LAN beacon");
			return;
		}
	} else if (strcmp(peer, "hq") == 0) {
		if (d->hq == NULL) {
			json_decref(started);
			ctl_error(c, d->is_hq ? "this device is HQ" : "no HQ address is set: 'zila peer add --hq HOST:PORT'");
			return;
		}
		list[n++] = d->hq;
	} else {
		struct target *t = find_peer(d, peer);
		if (t == NULL) {
			char m[400];
			snprintf(m, sizeof(m), "no peer '%s' with an address is known; see 'zila peers'", peer);
			json_decref(started);
			ctl_error(c, m);
			return;
		}
		list[n++] = t;
	}
	c->nwait = 0;
	for (size_t i = 0; i < n; i++) {
		want_now(list[i]);
		json_array_append_new(started, json_string(list[i]->addr));
		c->wait[c->nwait].t = list[i];
		c->wait[c->nwait].after = list[i]->nstarted;
		c->wait[c->nwait].done = false;
		c->wait[c->nwait].result = ZILA_EINTERNAL;
		c->wait[c->nwait].reason[0] = '\0';
		c->wait[c->nwait].refused[0] = '\0';
		c->nwait++;
	}
	daemon_kick(d);
	c->waiting = wait;
	ctl_send(c, json_pack("{s:b, s:o, s:b}", "ok", 1, "started", started, "wait", wait));
	if (wait && !uv_is_active((uv_handle_t *)&d->progress_timer) && !d->stopping)
		uv_timer_start(&d->progress_timer, control_progress, 300, 300);
}

static void control_progress(uv_timer_t *h)
{
	struct daemon *d = container_of(h, struct daemon, progress_timer);
	bool any = false;
	for (struct ctl *c = d->ctls; c != NULL; c = c->next) {
		if (!c->waiting)
			continue;
		any = true;
		json_t *arr = json_array();
		for (size_t i = 0; i < c->nwait; i++) {
			struct target *t = c->wait[i].t;
			json_t *o = json_object();
			json_object_set_new(o, "peer", json_string(t ? t->addr : "?"));
			json_object_set_new(o, "done", json_boolean(c->wait[i].done));
			if (!c->wait[i].done && t != NULL && t->conn != NULL)
				add_progress(o, t->conn);
			else if (!c->wait[i].done && t != NULL)
				json_object_set_new(o, "state", json_string(target_state(d, t)));
			json_array_append_new(arr, o);
		}
		ctl_send(c, json_pack("{s:o}", "progress", arr));
	}
	if (!any)
		uv_timer_stop(h);
}

void control_target_done(struct daemon *d, struct target *t, uint64_t seqno, int result, const char *reason)
{
	for (struct ctl *c = d->ctls; c != NULL; c = c->next) {
		if (!c->waiting)
			continue;
		bool all = true;
		for (size_t i = 0; i < c->nwait; i++) {
			if (c->wait[i].t == t && !c->wait[i].done && seqno > c->wait[i].after) {
				c->wait[i].done = true;
				c->wait[i].result = result;
				snprintf(c->wait[i].reason, sizeof(c->wait[i].reason), "%s", result ? reason : "");
				snprintf(c->wait[i].refused, sizeof(c->wait[i].refused), "%s", result ? "" : t->refused);
			}
			all = all && c->wait[i].done;
		}
		if (all)
			send_final(c);
	}
}

void control_target_gone(struct daemon *d, struct target *t)
{
	for (struct ctl *c = d->ctls; c != NULL; c = c->next) {
		for (size_t i = 0; i < c->nwait; i++) {
			if (c->wait[i].t != t)
				continue;
			c->wait[i].t = NULL;
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
	struct daemon *d = c->d;
	json_error_t jerr;
	json_t *req = json_loadb(line, len, 0, &jerr);
	const char *cmd = req ? json_string_value(json_object_get(req, "cmd")) : NULL;
	if (cmd == NULL) {
		ctl_error(c, "a request is one JSON object with \"cmd\" per line");
	} else if (c->waiting) {
		ctl_error(c, "a sync is being waited for on this connection");
	} else if (strcmp(cmd, "status") == 0) {
		ctl_send(c, status_json(d));
	} else if (strcmp(cmd, "peers") == 0) {
		ctl_send(c, json_pack("{s:b, s:o}", "ok", 1, "peers", peers_json(d, true)));
	} else if (strcmp(cmd, "sync") == 0) {
		do_sync(c, json_string_value(json_object_get(req, "peer")), json_is_true(json_object_get(req, "wait")));
	} else if (strcmp(cmd, "reload") == 0) {
		daemon_reload(d);
		ctl_send(c, json_pack("{s:b}", "ok", 1));
	} else if (strcmp(cmd, "stop") == 0) {
		ctl_send(c, json_pack("{s:b, s:i}", "ok", 1, "pid", (int)getpid()));
		daemon_stop(d, "zila stop");
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
		handle_line(c, (const char *)c->in.p, n);
		if (c->closing)
			return;
		memmove(c->in.p, nl + 1, c->in.len - n - 1);
		c->in.len -= n + 1;
	}
}

static void on_ctl_connection(uv_stream_t *server, int status)
{
	struct daemon *d = container_of((uv_pipe_t *)server, struct daemon, control);
	if (status != 0 || d->stopping)
		return;
	struct ctl *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return;
	c->d = d;
	zila_buf_init(&c->in, CONTROL_LINE_MAX);
	uv_pipe_init(&d->loop, &c->pipe, 0);
	c->pipe.data = c;
	c->next = d->ctls;
	d->ctls = c;
	if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0 ||
	    uv_read_start((uv_stream_t *)&c->pipe, ctl_alloc, ctl_read) != 0)
		ctl_close(c);
}

int control_start(struct daemon *d, struct zila_error *err)
{
	int r;
	snprintf(d->sock_path, sizeof(d->sock_path), "%s/%s", d->dir, ZILA_CONTROL_SOCK);
	if (strlen(d->sock_path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return zila_error_set(err, ZILA_EINVAL, "the replica path is too long for a control socket: '%s'",
				      d->sock_path);
	/* We hold the lock: a socket still there is left over from a daemon that crashed. */
	if (unlink(d->sock_path) == 0)
		zila_log(ZILA_LOG_INFO, "removed a stale control socket");
	uv_pipe_init(&d->loop, &d->control, 0);
	d->control_open = true;
	mode_t old = umask(0177);
	r = uv_pipe_bind(&d->control, d->sock_path);
	umask(old);
	if (r == 0 && chmod(d->sock_path, 0600) != 0)
		r = UV_EPERM;
	if (r == 0)
		r = uv_listen((uv_stream_t *)&d->control, 16, on_ctl_connection);
	if (r != 0)
		return zila_error_set(err, r, "cannot open the control socket '%s': %s", d->sock_path, uv_strerror(r));
	return 0;
}

void control_stop(struct daemon *d)
{
	if (d->control_open) {
		uv_close((uv_handle_t *)&d->control, NULL);
		d->control_open = false;
		unlink(d->sock_path);
	}
	for (struct ctl *c = d->ctls; c != NULL; c = c->next) {
		if (c->waiting)
			send_final(c);
		c->close_on_flush = true;
		if (c->nwrites == 0)
			ctl_close(c);
	}
}
