/* What the daemon reports of itself: the objects of `zila status` and `zila peers` (sent on
 * the control socket), from its records, its connections and the peer table. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon_int.h"
#include "zila/blobx.h"
#include "zila/clock.h"
#include "zila/log.h"
#include "zila/os.h"

static json_t *opt_int(bool known, long long v)
{
	return known ? json_integer(v) : json_null();
}

static const char *target_state(struct daemon *d, const struct target *t)
{
	if (t->conn != NULL)
		return conn_state_name(t->conn->state);
	if (t->sp.want && t->sp.next_ms > uv_now(&d->loop))
		return "waiting to retry";
	if (t->sp.want)
		return "due";
	return "idle";
}

static void add_progress(json_t *o, const struct conn *c)
{
	const struct zila_session_stats *st = c->sess ? zila_session_stats(c->sess) : NULL;
	json_object_set_new(o, "state", json_string(conn_state_name(c->state)));
	if (st != NULL) {
		/* Sent is what the peer applied and acknowledged; on a slow link more is on its way. */
		json_object_set_new(o, "sent", json_integer((json_int_t)st->entries_acked));
		json_object_set_new(o, "in_flight", json_integer((json_int_t)(st->entries_sent - st->entries_acked)));
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
	if (c->bx != NULL && c->blobs_started) {
		/* the blob phase after the rows (#25): bytes of attachments come and go */
		const struct zila_blobx_stats *bs = zila_blobx_stats(c->bx);
		json_t *b = json_object();
		json_object_set_new(b, "received_bytes", json_integer((json_int_t)bs->received_bytes));
		json_object_set_new(b, "pending_bytes", json_integer((json_int_t)bs->pending_bytes));
		json_object_set_new(b, "sent_bytes", json_integer((json_int_t)bs->served_bytes));
		json_object_set_new(o, "attachments", b);
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
	else if (t != NULL && t->sp.has_device)
		dev = t->sp.device;
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
	const char *addr = t ? t->sp.addr : row ? row->addr : NULL;
	json_object_set_new(o, "address", addr ? json_string(addr) : json_null());
	const char *src = t ? zila_sched_source_name(t->sp.source) : row ? row->source : NULL;
	json_object_set_new(o, "source", json_string(src ? src : "inbound"));
	bool has_row = row != NULL;
	json_object_set_new(o, "last_seen", opt_int(has_row && row->has_last_seen, has_row ? row->last_seen : 0));
	json_object_set_new(o, "last_sync", opt_int(has_row && row->has_last_sync, has_row ? row->last_sync : 0));
	const char *res = row ? row->last_result : NULL;
	if (t != NULL && t->last_error[0])
		res = t->last_error;
	json_object_set_new(o, "last_result", res ? json_string(res) : json_null());
	json_object_set_new(o, "clock_offset_ms",
			    opt_int(has_row && row->has_clock_offset, has_row ? row->clock_offset_ms : 0));
	struct conn *c = dev ? conn_with(&d->conns, dev, false) : NULL;
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
	if (t != NULL && t->sp.want && t->conn == NULL && t->sp.next_ms > uv_now(&d->loop))
		json_object_set_new(o, "next_attempt_s",
				    json_integer((json_int_t)((t->sp.next_ms - uv_now(&d->loop)) / 1000)));
	return o;
}

struct peers_walk {
	struct daemon *d;
	json_t *arr;
	struct target *hq;
	bool with_hq;
	int64_t entries;
};

static int peer_row(void *ctx, const struct zila_peer_record *p)
{
	struct peers_walk *w = ctx;
	struct target *t = NULL;
	if (p->device != NULL) {
		for (struct zila_sched_peer *x = w->d->sched.peers; x != NULL; x = x->next)
			if (x->has_device && memcmp(x->device, p->device, 32) == 0 && !target_of(x)->listed)
				t = target_of(x);
	}
	/* A target not met since the daemon started knows no device yet: HQ is the row HQ was
	 * recorded as, a configured peer the row at its address (else each showed twice, once
	 * as "never"). */
	for (struct zila_sched_peer *x = w->d->sched.peers; t == NULL && x != NULL; x = x->next) {
		struct target *c = target_of(x);
		if (x->has_device || c->listed)
			continue;
		if ((c == w->hq && p->source != NULL && strcmp(p->source, "hq") == 0) ||
		    (c != w->hq && p->addr != NULL && strcmp(p->addr, x->addr) == 0))
			t = c;
	}
	if (t != NULL)
		t->listed = true;
	if (!w->with_hq && t != NULL && t == w->hq)
		return 0;
	json_array_append_new(w->arr, peer_json(w->d, t, p, w->entries));
	return 0;
}

/* The latest completed sync with a device recorded as HQ. */
static int hq_last_sync(void *ctx, const struct zila_peer_record *p)
{
	int64_t *last = ctx;
	if (p->source != NULL && strcmp(p->source, "hq") == 0 && p->has_last_sync && p->last_sync > *last)
		*last = p->last_sync;
	return 0;
}

json_t *peers_json(struct daemon *d, bool with_hq)
{
	struct zila_store_counts counts;
	struct peers_walk w = { d, json_array(), target_of(d->sched.hq), with_hq, 0 };
	if (zila_store_counts(d->store, &counts) != 0)
		memset(&counts, 0, sizeof(counts));
	w.entries = counts.entries;
	for (struct zila_sched_peer *p = d->sched.peers; p != NULL; p = p->next)
		target_of(p)->listed = false;
	int r = zila_store_peer_each(d->store, peer_row, &w);
	if (r != 0)
		zila_log(ZILA_LOG_WARN, "cannot read the peer table: %s", zila_strerror(r));
	for (struct zila_sched_peer *p = d->sched.peers; p != NULL; p = p->next) {
		struct target *t = target_of(p);
		if (!t->listed && (with_hq || t != w.hq))
			json_array_append_new(w.arr, peer_json(d, t, NULL, counts.entries));
		t->listed = false;
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

bool status_held(struct daemon *d, char *msg, size_t n)
{
	struct zila_held_list l;
	struct zila_error err;
	size_t nheld = 0, ndevs = 0;
	zila_error_clear(&err);
	int r = zila_trust_collect_held(d->store, &l, &err);
	if (r != 0) {
		snprintf(msg, n, "cannot read what holds the collection of deleted rows back: %s", zila_error_msg(&err, r));
		return true;
	}
	zila_held_list_count(&l, &nheld, &ndevs);
	zila_held_list_release(&l);
	snprintf(msg, n, "deleted rows of %zu district%s wait for %zu device%s: see 'zila history'", nheld,
		 nheld == 1 ? "" : "s", ndevs, ndevs == 1 ? "" : "s");
	return nheld > 0;
}

json_t *status_json(struct daemon *d)
{
	char id[ZILA_DEVICE_ID_LEN + 1];
	struct zila_store_counts counts;
	json_t *o = json_object(), *warn = json_array();
	const struct net_identity *me = &d->env.id;
	zila_device_id(zila_store_device_pk(d->store), id);
	json_object_set_new(o, "ok", json_true());
	json_object_set_new(o, "device", json_string(id));
	json_object_set_new(o, "pid", json_integer(zila_os_pid()));
	json_object_set_new(o, "enrolled", json_boolean(me->enrolled));
	json_object_set_new(o, "joining", json_boolean(me->joining));
	if (me->enrolled) {
		json_object_set_new(o, "name", json_string(me->cert.name));
		json_object_set_new(o, "organisation", json_string(me->org_name));
		json_object_set_new(o, "role", json_string(zila_role_name(me->cert.role)));
		json_object_set_new(o, "scope", json_string(me->cert.scope_all ? "*" : me->cert.district));
		/* The name too: a member of the service replica's group may not read the database. */
		char dname[128] = "";
		if (!me->cert.scope_all)
			zila_store_district_name(d->store, me->cert.district, dname, sizeof(dname));
		if (dname[0] != '\0')
			json_object_set_new(o, "scope_name", json_string(dname));
	}
	json_object_set_new(o, "listen", json_string(d->listen_addr));
	if (d->web_listen[0] != '\0') {
		char base[400];
		web_base_url(&d->web, base, sizeof(base));
		json_object_set_new(o, "web", json_pack("{s:s, s:b, s:b, s:o}", "url", base, "lan", d->web.lan, "tls",
							d->web.tls != NULL, "fingerprint",
							d->web.tls ? json_string(d->web.fingerprint) : json_null()));
	}
	json_object_set_new(o, "beacon_port", json_integer(d->disc.udp_open ? d->disc.beacon_port : 0));
	json_object_set_new(o, "beacons_heard", json_integer((json_int_t)d->disc.nbeacons_heard));
	json_object_set_new(o, "last_beacon_s", opt_int(d->disc.last_beacon_ms != 0,
							 (long long)((uv_now(&d->loop) - d->disc.last_beacon_ms) / 1000)));
	json_object_set_new(o, "uptime_s", json_integer((json_int_t)zila_wall_s() - d->started_wall));
	struct zila_clock ck;
	zila_store_clock(d->store, &ck);
	if (d->sched.hq != NULL) {
		struct target *t = target_of(d->sched.hq);
		json_t *h = json_object();
		json_object_set_new(h, "address", json_string(t->sp.addr));
		json_object_set_new(h, "reachable", json_boolean(t->reachable));
		json_object_set_new(h, "state", json_string(target_state(d, t)));
		/* Since the start, else as the peer table kept it: a restart forgets nothing. */
		int64_t last = (int64_t)t->last_ok;
		if (last == 0 && zila_store_peer_each(d->store, hq_last_sync, &last) != 0)
			last = 0;
		json_object_set_new(h, "last_sync", opt_int(last != 0, (long long)last));
		json_object_set_new(h, "last_error", t->last_error[0] ? json_string(t->last_error) : json_null());
		if (t->sp.want && t->conn == NULL && t->sp.next_ms > uv_now(&d->loop))
			json_object_set_new(h, "next_attempt_s",
					    json_integer((json_int_t)((t->sp.next_ms - uv_now(&d->loop)) / 1000)));
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
				    me->is_hq ? json_null()
					     : json_integer(counts.own_entries > hq ? counts.own_entries - hq : 0));
		json_object_set_new(l, "entries", json_integer(counts.entries));
		json_object_set_new(l, "own_entries", json_integer(counts.own_entries));
		json_object_set_new(l, "conflicts", json_integer(counts.conflicts));
		json_object_set_new(l, "parked", json_integer(counts.parked));
		json_object_set_new(l, "orphans", json_integer(counts.orphans));
		json_object_set_new(l, "held", json_integer(counts.held));
		json_object_set_new(l, "held_bytes", json_integer(counts.held_bytes));
		json_object_set_new(l, "held_most", json_integer(counts.held_most));
		json_object_set_new(o, "local", l);
	}
	/* Attachments (#25): what rows refer to and is not here yet, and what is on its way. */
	struct zila_blob_stats bst;
	if (zila_blob_stats(d->store, &bst, NULL) == 0) {
		json_t *a = json_object();
		uint64_t coming = 0, done = 0;
		for (const struct conn *c = d->conns.list; c != NULL; c = c->next)
			if (c->bx != NULL && c->blobs_started) {
				coming += zila_blobx_stats(c->bx)->pending_bytes;
				done += zila_blobx_stats(c->bx)->received_bytes;
			}
		json_object_set_new(a, "referenced", json_integer((json_int_t)bst.nref));
		json_object_set_new(a, "referenced_bytes", json_integer((json_int_t)bst.ref_bytes));
		json_object_set_new(a, "missing", json_integer((json_int_t)bst.nmissing));
		json_object_set_new(a, "missing_bytes", json_integer((json_int_t)bst.missing_bytes));
		json_object_set_new(a, "partial", json_integer((json_int_t)bst.npartial));
		json_object_set_new(a, "partial_bytes", json_integer((json_int_t)bst.partial_bytes));
		json_object_set_new(a, "moving_bytes", json_integer((json_int_t)coming));
		json_object_set_new(a, "moved_bytes", json_integer((json_int_t)done));
		/* a few by name; `zila attachment ls --missing` lists them all */
		json_t *few = json_array();
		for (unsigned k = 0; k < bst.nfirst; k++) {
			struct zila_attachment at;
			char hex[65];
			zila_hex_encode(hex, bst.first[k], 32);
			if (zila_blob_find(d->store, hex, &at, NULL) != 0)
				continue;
			json_array_append_new(few, json_pack("{s:s, s:s, s:s, s:I, s:I}", "id", at.id, "name", at.name,
							     "district", at.district, "size", (json_int_t)at.size, "have",
							     (json_int_t)at.have_bytes));
		}
		json_object_set_new(a, "missing_first", few);
		json_object_set_new(o, "attachments", a);
	}
	json_object_set_new(o, "replica", json_string(d->dir));
	json_object_set_new(o, "last_error", d->store_error ? json_string(d->store_error_msg) : json_null());
	json_object_set_new(o, "last_error_at", opt_int(d->store_error != 0, (long long)d->store_error_at));
	json_object_set_new(o, "busy_waits", json_integer((json_int_t)d->nbusy_waits));
	if (d->store_error != 0) {
		json_array_append_new(warn, json_sprintf("%s; syncs are retried%s", d->store_error_msg,
							 d->store_error == ZILA_EFULL ? " once space is freed" : ""));
	}
	/* No LAN beacon heard is no warning: a laptop alone on its uplink is not "isolated" (#24);
	 * status says "none heard yet" beside the beacon port. */
	if (me->no_secret && !me->joining)
		json_array_append_new(warn, json_string(ZILA_NO_SECRET_MSG));
	else if (!me->enrolled && !me->joining)
		json_array_append_new(warn, json_string("not enrolled: this device syncs with nobody (see 'zila join')"));
	json_object_set_new(o, "hq_refused", refused_status(d->store, me->is_hq, warn));
	if (d->cfg.watch != NULL && d->cfg.watch->state != NULL) {
		struct zila_daemon_watch_state ws;
		json_t *w = json_object();
		memset(&ws, 0, sizeof(ws));
		d->cfg.watch->state(d->cfg.watch->ctx, &ws);
		json_object_set_new(w, "target", json_string(ws.target));
		json_object_set_new(w, "connected", json_boolean(ws.connected));
		json_object_set_new(w, "loaded", json_boolean(ws.loaded));
		json_object_set_new(w, "behind", opt_int(ws.behind >= 0, ws.behind));
		json_object_set_new(w, "last_ok", opt_int(ws.last_ok != 0, ws.last_ok));
		json_object_set_new(w, "last_error", ws.last_error[0] ? json_string(ws.last_error) : json_null());
		json_object_set_new(o, d->cfg.watch->name, w);
		if (ws.last_error[0])
			json_array_append_new(warn, json_sprintf("the %s is not in step: %s", d->cfg.watch->name, ws.last_error));
	}
	json_t *forks = json_array();
	struct fork_ctx fc = { d, forks, warn };
	if (zila_store_fork_each(d->store, fork_json, &fc) != 0)
		zila_log(ZILA_LOG_WARN, "cannot read the forks this replica saw");
	json_object_set_new(o, "forks", forks);
	if (!me->is_hq && zila_trust_own_cert_warning(d->store, ck.stamp_ms / 1000, said, sizeof(said)))
		json_array_append_new(warn, json_string(said));
	/* rows written here out of scope (not sent), a table whose capture was armed again */
	if (zila_store_notices(d->store, add_warning, warn) != 0)
		json_array_append_new(warn, json_string("cannot read what this replica holds out of its write scope"));
	json_object_set_new(o, "warnings", warn);
	return o;
}


void status_target_progress(struct daemon *d, struct target *t, json_t *o)
{
	if (t->conn != NULL)
		add_progress(o, t->conn);
	else
		json_object_set_new(o, "state", json_string(target_state(d, t)));
}
