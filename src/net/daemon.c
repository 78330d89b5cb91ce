/* The daemon: owns the loop, the replica and its lock, identity and settings, and holds the
 * parts it wires together: the scheduler (zila/sched.h: whom to dial, when), connections
 * (conn.c), beacons (discovery.c) and the control socket (control.c), which report here
 * through callbacks. Also local-change detection, signals and a clean shutdown. Calls go
 * from here to the parts, never back. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon_int.h"
#include "zila/blob.h"
#include "peers.h"
#include "zila/clock.h"
#include "zila/log.h"
#include "zila/os.h"

/* --- logging -------------------------------------------------------------------------- */

void zila_daemon_log_sink(void *ctx, enum zila_log_level level, const char *msg)
{
	static const char *names[] = { "error", "warn", "info", "debug" };
	static const int prio[] = { 3, 4, 6, 7 };
	(void)ctx;
	const char *js = getenv("JOURNAL_STREAM");
	if (js != NULL && js[0] != '\0')
		fprintf(stderr, "<%d>%s: %s\n", prio[level], names[level], msg);
	else
		fprintf(stderr, "zila[%ld]: %s: %s\n", zila_os_pid(), names[level], msg);
}

/* Logs what is wrong with this computer's clock, once each time that changes. */
static void clock_warn(struct daemon *d)
{
	struct zila_clock ck;
	char said[768];
	zila_store_clock(d->store, &ck);
	if ((int)ck.state + 1 == d->clock_state_said)
		return;
	d->clock_state_said = (int)ck.state + 1;
	zila_clock_describe(&ck, said, sizeof(said));
	if (said[0])
		zila_log(ZILA_LOG_WARN, "%s", said);
	else if (ck.state == ZILA_CLOCK_OK && ck.has_offset)
		zila_log(ZILA_LOG_INFO, "this computer's clock agrees with HQ's (within %lld ms)",
			 (long long)(ck.offset_ms < 0 ? -ck.offset_ms : ck.offset_ms));
}

/* --- targets: the scheduler's peers ---------------------------------------------------------- */

static struct zila_sched_peer *target_alloc(void *ctx)
{
	struct target *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->d = ctx;
	return &t->sp;
}

static void target_release(void *ctx, struct zila_sched_peer *p)
{
	struct daemon *d = ctx;
	struct target *t = target_of(p);
	if (t->conn != NULL)
		conn_disown(t->conn);
	control_target_gone(&d->ctl, t);
	free(t);
}

static bool device_busy(void *ctx, const uint8_t device[32])
{
	struct daemon *d = ctx;
	return conn_with(&d->conns, device, false) != NULL;
}

static void dial(struct daemon *d, struct target *t)
{
	struct conn *c = NULL;
	struct conn_dial req = {
		.addr = t->sp.addr,
		.name = t->name,
		.source = zila_sched_source_name(t->sp.source),
		.join = &t->sp == d->sched.hq && d->env.id.joining,
		.flaky = t->flaky,
		.last_ok = t->last_ok,
		.owner = t,
		.seqno = t->nstarted + 1,
	};
	t->nstarted++;
	int r = conn_dial(&d->conns, &req, &c);
	if (r != 0) {
		t->nstarted--;
		snprintf(t->last_error, sizeof(t->last_error), "bad address: %s", zila_strerror(r));
		zila_sched_unusable(&d->sched, &t->sp);
		return;
	}
	/* A dial that failed at once has ended already (on_ended ran). */
	if (c != NULL && !c->finished)
		t->conn = c;
}

static void on_kick(uv_timer_t *h)
{
	struct daemon *d = container_of(h, struct daemon, kick_timer);
	uint64_t now = uv_now(&d->loop), wake;
	struct zila_sched_peer *p;
	if (d->env.stopping)
		return;
	while ((p = zila_sched_next(&d->sched, now, conn_nsessions(&d->conns), &wake)) != NULL)
		dial(d, target_of(p));
	if (wake != UINT64_MAX)
		uv_timer_start(&d->kick_timer, on_kick, wake - now, 0);
}

static void daemon_kick(struct daemon *d)
{
	if (!d->env.stopping)
		uv_timer_start(&d->kick_timer, on_kick, 0, 0);
}

struct offered_ctx {
	struct daemon *d;
	int64_t own;
	bool pending;
};

/* Whether p's session in flight, or its last completed one, carries our own entries up to
 * o->own (and changes not sealed yet when o->pending): zila_sched_covered decides. */
static bool offered(void *ctx, const struct zila_sched_peer *p)
{
	struct offered_ctx *o = ctx;
	const struct target *t = target_of((struct zila_sched_peer *)p);
	const struct conn *c = t->conn;
	enum zila_sched_conn state = ZILA_SCHED_CONN_NONE;
	int64_t offered_own = t->own_offered;
	if (c == NULL && p->has_device)
		c = conn_with(&o->d->conns, p->device, true); /* it dialled us */
	if (c != NULL && c->mode == ZILA_CHANNEL_MEMBER && c->state != CONN_CLOSED) {
		if (c->sess != NULL && (c->state == CONN_SESSION || c->state == CONN_CLOSING)) {
			state = ZILA_SCHED_CONN_SESSION;
			offered_own = c->own_offered;
		} else if (c->state != CONN_JOIN) {
			state = ZILA_SCHED_CONN_STARTING;
		}
	}
	return zila_sched_covered(state, offered_own, o->own, o->pending);
}

/* Wants a sync with every peer but except_device's (and LAN peers not heard lately),
 * skipping those a session in flight or the last one carries our own entries up to own
 * (and, pending, changes not sealed yet) for; own < 0: every peer. */
static void want_targets(struct daemon *d, const uint8_t *except_device, int64_t own, bool pending)
{
	struct offered_ctx o = { d, own, pending };
	zila_sched_want_all(&d->sched, except_device, uv_now(&d->loop), own >= 0 ? offered : NULL, &o);
	daemon_kick(d);
}

static void want_all(struct daemon *d, const uint8_t *except_device)
{
	want_targets(d, except_device, -1, false);
}

/* Failures of our own replica rather than of the peer or the link. */
static bool store_failure(int code)
{
	return code == ZILA_EFULL || code == ZILA_EBUSY || code == ZILA_EDB || code == ZILA_EIO || code == ZILA_ENOMEM;
}

static void note_store_error(struct daemon *d, const struct conn *c)
{
	const char *fmt = c->result == ZILA_EFULL   ? "disk full: no space left on device for the replica '%s/%s' (%s)"
			  : c->result == ZILA_EBUSY ? "the replica '%s/%s' is locked by another program (%s)"
						    : "cannot write the replica '%s/%s' (%s)";
	snprintf(d->store_error_msg, sizeof(d->store_error_msg), fmt, d->dir, ZILA_DB_FILE, c->reason);
	d->store_error = c->result;
	d->store_error_at = zila_wall_s();
	zila_log(c->result == ZILA_EBUSY ? ZILA_LOG_WARN : ZILA_LOG_ERROR,
		 "%s; nothing of the unfinished batch was kept, %s %s retries later", d->store_error_msg,
		 c->owner != NULL ? "the sync with" : "the peer at", c->addr);
}

/* --- what the parts report ------------------------------------------------------------------ */

static int daemon_identity(struct daemon *d);

/* conn.c: a handshake completed. */
static void on_established(void *ctx, struct conn *c)
{
	struct daemon *d = ctx;
	struct target *t = c->owner;
	(void)d;
	if (t == NULL)
		return;
	t->reachable = true;
	zila_sched_reached(&d->sched, &t->sp, c->peer_pk);
	snprintf(t->name, sizeof(t->name), "%s", c->peer_name);
}

/* conn.c: HQ acknowledged more of our entries in a session still running: status counts
 * them as delivered now (a cut later takes nothing back from HQ). */
static void on_delivered(void *ctx, struct conn *c)
{
	struct daemon *d = ctx;
	const struct zila_session_stats *st = zila_session_stats(c->sess);
	char *v = NULL, n[32];
	if (d->env.id.is_hq)
		return;
	int64_t held = 0;
	if (zila_store_meta_get(d->store, ZILA_META_NET_OWN_HQ, &v) == 0 && v != NULL)
		held = strtoll(v, NULL, 10);
	free(v);
	if ((int64_t)st->own_at_peer <= held)
		return;
	snprintf(n, sizeof(n), "%llu", (unsigned long long)st->own_at_peer);
	if (zila_store_meta_note(d->store, ZILA_META_NET_OWN_HQ, n) != 0)
		zila_log(ZILA_LOG_WARN, "cannot record what HQ holds in the replica");
}

/* conn.c: a connection's result is known. */
static void on_ended(void *ctx, struct conn *c)
{
	struct daemon *d = ctx;
	const struct zila_session_stats *st = c->sess ? zila_session_stats(c->sess) : NULL;
	struct target *t = c->owner;
	char lbl[400];
	bool ok = c->result == 0, joined = false;
	uint64_t now = uv_now(&d->loop), ms = now - c->started_ms;

	if (zila_store_in_transaction(d->store))
		zila_log(ZILA_LOG_WARN, "a transaction is still open on the replica after a session");
	/* What arrived, also of a session that failed: entries applied stay applied, and a
	 * duplicate means the peer resent something we had committed. */
	bool local_fault = !ok && !c->duplicate && store_failure(c->result);
	if (local_fault)
		note_store_error(d, c);
	else if (ok && c->mode == ZILA_CHANNEL_MEMBER && d->store_error != 0) {
		zila_log(ZILA_LOG_INFO, "the replica is written again (last error: %s)", zila_strerror(d->store_error));
		d->store_error = 0;
		d->store_error_msg[0] = '\0';
	}
	/* A cut link makes the next session commit every chunk; our own replica's trouble,
	 * or the peer's that it told us of, says nothing about the link. */
	bool ref_failed = st != NULL && st->ref_failed;
	if (t != NULL && !c->duplicate)
		t->flaky = !ok && c->sess != NULL && !local_fault && c->result != ZILA_EPEER && !ref_failed;
	if (ref_failed && c->has_peer) {
		conn_noref_add(&d->conns, c->peer_pk);
		zila_log(ZILA_LOG_INFO, "a key sent by reference in the session with %s was not found: sessions with it send keys whole",
			 c->addr);
	}
	if (st != NULL && st->entries_applied > 0 && d->cfg.watch != NULL && d->cfg.watch->changed != NULL)
		d->cfg.watch->changed(d->cfg.watch->ctx);
	if (st != NULL && st->entries_received > 0)
		zila_log(ZILA_LOG_INFO, "session with %s %s: received %llu entries, applied %llu, duplicate %llu",
			 c->addr, ok ? "completed" : "ended early", (unsigned long long)st->entries_received,
			 (unsigned long long)st->entries_applied, (unsigned long long)st->entries_duplicate);
	if (c->peer_name[0])
		snprintf(lbl, sizeof(lbl), "'%s' (%s)", c->peer_name, c->addr);
	else
		snprintf(lbl, sizeof(lbl), "%s", c->addr);
	if (ok && c->mode == ZILA_CHANNEL_JOIN && c->initiator) {
		zila_log(ZILA_LOG_INFO, "joined the organisation through HQ at %s", c->addr);
		if (daemon_identity(d) != 0)
			zila_log(ZILA_LOG_ERROR, "the certificate from HQ did not install");
		joined = true;
		discovery_start(&d->disc);
	} else if (ok && st != NULL) {
		zila_log(ZILA_LOG_INFO,
			 "synced with %s in %llu ms: sent %llu entries, received %llu (applied %llu, rejected %llu)%s",
			 lbl, (unsigned long long)ms, (unsigned long long)st->entries_sent,
			 (unsigned long long)st->entries_received, (unsigned long long)st->entries_applied,
			 (unsigned long long)st->entries_rejected, st->in_step ? ", already in step" : "");
		if (st->entries_rejected > 0)
			zila_log(ZILA_LOG_WARN, "%llu entries from %s were not taken (each refusal is logged once per 10 minutes, with its reason)",
				 (unsigned long long)st->entries_rejected, lbl);
		if (st->peer_now_ms != 0 && (st->clock_offset_ms > CLOCK_WARN_MS || st->clock_offset_ms < -CLOCK_WARN_MS))
			zila_log(ZILA_LOG_WARN, "the clock of %s differs from HQ's time by %lld s", lbl,
				 (long long)(st->clock_offset_ms / 1000));
		clock_warn(d);
		/* Our own entries delivered: what `zila status` calls unsent is what remains. */
		struct zila_store_counts counts;
		char v[32];
		if (zila_store_counts(d->store, &counts) == 0) {
			snprintf(v, sizeof(v), "%lld", (long long)counts.own_entries);
			if (zila_store_meta_note(d->store, ZILA_META_NET_OWN_ANY, v) != 0)
				zila_log(ZILA_LOG_WARN, "cannot record the sync in the replica");
		}
		/* What the peer refused of ours, and for HQ what it holds (status, sync --wait). */
		refused_learn(&d->refused, d->store, d->env.id.is_hq, c->has_peer ? c->peer_pk : NULL, st,
			      t != NULL ? t->refused : NULL, t != NULL ? sizeof(t->refused) : 0);
		/* A session that completed gives its handshake token back: the limit is for
		 * handshakes and sessions that fail, and a laptop syncing often (its daemon, then
		 * its user) must never be turned away for it. */
		if (!c->initiator && c->ip[0] != '\0')
			conn_rate_refund(&d->conns, c->ip);
		/* What the session offered, the peer has: noticing the session's own seal later
		 * (on_debounce) dials nobody who took part. */
		for (struct zila_sched_peer *p = d->sched.peers; p != NULL; p = p->next) {
			struct target *x = target_of(p);
			if (x == t || (p->has_device && c->has_peer && memcmp(p->device, c->peer_pk, 32) == 0))
				x->own_offered = c->own_offered > x->own_offered ? c->own_offered : x->own_offered;
		}
		/* Relay: what came from this peer goes on to the others. */
		if (zila_sched_relay(&d->sched, c->peer_pk, st->entries_applied, st->trust_received, now) > 0)
			daemon_kick(d);
	}
	if (c->has_peer && c->mode == ZILA_CHANNEL_MEMBER && !c->duplicate)
		peers_synced(d->store, c->peer_pk, c->result, c->reason, st);
	if (t != NULL) {
		struct zila_sched_result res = {
			.ok = ok,
			.duplicate = c->duplicate,
			.handshake = c->has_peer,
			.busy_refused = c->busy_refused,
			.local_fault = local_fault,
			.joined = joined,
			.ref_failed = ref_failed,
			.peer_locked = st != NULL && st->peer_error == ZILA_EBUSY,
			.rnd = randombytes_random(),
		};
		struct zila_sched_after after;
		t->conn = NULL;
		zila_sched_ended(&d->sched, &t->sp, &res, now, &after);
		if (c->duplicate) {
			/* Not a result: the other session with the device stands for this one. */
		} else if (after.busy_retry) {
			/* A user waiting for this sync waits for the quick retry. */
			snprintf(t->last_error, sizeof(t->last_error), "%s", c->reason);
			if (ref_failed)
				zila_log(ZILA_LOG_INFO, "syncing with %s again at once, keys whole", t->sp.addr);
			else
				zila_log(ZILA_LOG_INFO, "%s is busy; trying again in %u ms", t->sp.addr, after.delay_ms);
			daemon_kick(d);
			return;
		} else if (ok) {
			t->last_ok = zila_wall_s();
			t->last_error[0] = '\0';
			if (after.once_more) {
				zila_log(ZILA_LOG_INFO, "syncing with %s once more: its replica was locked by another program, "
					 "and what that program wrote there is sealed after this session's offer", lbl);
				daemon_kick(d);
			}
		} else {
			snprintf(t->last_error, sizeof(t->last_error), "%s", c->reason);
			if (!c->has_peer)
				t->reachable = false;
			/* A dial that reached nobody of ours: a line now and then, not one per attempt
			 * (forged beacons must not fill the log). */
			if (!c->has_peer && after.log) {
				char quiet[200] = "";
				if (after.nquiet > 0 || after.nquiet_lan > 0)
					snprintf(quiet, sizeof(quiet),
						 " (not logged since the last line: %llu failed attempts with it, %llu with other LAN peers)",
						 (unsigned long long)after.nquiet, (unsigned long long)after.nquiet_lan);
				zila_log(ZILA_LOG_WARN, "%s with %s: %s%s", c->mode == ZILA_CHANNEL_JOIN ? "join" : "sync", lbl,
					 c->reason, quiet);
			}
			zila_log(local_fault ? ZILA_LOG_INFO : ZILA_LOG_DEBUG, "next attempt with %s in %u ms", t->sp.addr,
				 after.delay_ms);
		}
		if (!c->duplicate)
			control_target_done(&d->ctl, t, c->seqno, c->result, c->reason, t->refused);
	}
	daemon_kick(d);
}

static void on_conn_freed(void *ctx)
{
	daemon_kick(ctx);
}

/* discovery.c: a beacon from a member. */
static bool on_heard(void *ctx, const struct zila_beacon *b, uint32_t ip, const char *ip_text)
{
	struct daemon *d = ctx;
	struct zila_sched_beacon sb = { b->device_pk, ip, b->port };
	struct zila_sched_heard h;
	char id[ZILA_DEVICE_ID_LEN + 1];
	zila_sched_heard(&d->sched, &sb, uv_now(&d->loop), &h);
	switch (h.result) {
	case ZILA_SCHED_HEARD_OFFNET:
		zila_log(ZILA_LOG_DEBUG, "ignored a beacon from %s: not on a network of this computer", ip_text);
		return false;
	case ZILA_SCHED_HEARD_FULL:
		zila_log(ZILA_LOG_DEBUG, "ignored a beacon from %s: %u LAN peers are known already", ip_text,
			 (unsigned)d->sched.nlan);
		return false;
	case ZILA_SCHED_HEARD_NOMEM:
		return false;
	case ZILA_SCHED_HEARD_NEW:
		zila_device_id(b->device_pk, id);
		if (h.log && h.nquiet > 0)
			zila_log(ZILA_LOG_INFO, "found device %s at %s on the LAN (and %llu more since the last line)", id,
				 h.peer->addr, (unsigned long long)h.nquiet);
		else if (h.log)
			zila_log(ZILA_LOG_INFO, "found device %s at %s on the LAN", id, h.peer->addr);
		break;
	case ZILA_SCHED_HEARD_KNOWN:
		break;
	}
	if (h.dial)
		daemon_kick(d);
	return h.result == ZILA_SCHED_HEARD_NEW;
}

/* discovery.c: the networks we are on. */
static void on_nets(void *ctx, const struct zila_sched_net *nets, size_t n, bool changed)
{
	struct daemon *d = ctx;
	zila_sched_set_nets(&d->sched, nets, n);
	/* A laptop that just came online tries HQ at once rather than at the end of its backoff. */
	if (changed && d->sched.hq != NULL) {
		zila_sched_net_changed(&d->sched);
		daemon_kick(d);
	}
}

/* --- identity and settings ---------------------------------------------------------------- */

static int daemon_identity(struct daemon *dm)
{
	struct net_identity *d = &dm->env.id;
	struct zila_store *store = dm->store;
	struct zila_buf b;
	struct zila_cert issuer;
	char *name = NULL, *code = NULL, *hq = NULL;
	d->enrolled = d->has_cert = d->has_issuer = d->is_hq = d->no_secret = false;
	d->org_name[0] = '\0';
	if (zila_trust_org(store, d->root_pk) == 0 &&
	    zila_trust_cert_get(store, zila_store_device_pk(store), &d->cert) == 0) {
		d->has_cert = true;
		zila_buf_init(&b, ZILA_CERT_LEN);
		if (zila_cert_encode(&d->cert, &b) == 0 && b.len == ZILA_CERT_LEN) {
			memcpy(d->cert_bytes, b.p, ZILA_CERT_LEN);
			d->enrolled = true;
		}
		zila_buf_reset(&b);
		if (memcmp(d->cert.issuer_pk, d->root_pk, 32) != 0 &&
		    zila_trust_cert_get(store, d->cert.issuer_pk, &issuer) == 0 && zila_cert_encode(&issuer, &b) == 0 &&
		    b.len == ZILA_CERT_LEN) {
			memcpy(d->issuer_bytes, b.p, ZILA_CERT_LEN);
			d->has_issuer = true;
		}
		zila_buf_release(&b);
		d->is_hq = d->cert.role == ZILA_ROLE_HQ;
		uint8_t secret[ZILA_ORG_SECRET_LEN];
		if (zila_trust_org_secret(store, secret) == 0) {
			zila_org_psk(secret, d->psk);
			zila_beacon_key(secret, d->beacon_key);
		} else if (d->enrolled) {
			d->enrolled = false;
			d->no_secret = true;
		}
		sodium_memzero(secret, sizeof(secret));
		if (zila_store_meta_get(store, ZILA_META_ORG_NAME, &name) == 0 && name != NULL)
			snprintf(d->org_name, sizeof(d->org_name), "%s", name);
	}
	d->joining = !d->enrolled && zila_store_meta_get(store, ZILA_META_JOIN_CODE, &code) == 0 && code != NULL &&
		     code[0] != '\0' && zila_store_meta_get(store, ZILA_META_JOIN_HQ, &hq) == 0;
	free(name);
	free(code);
	free(hq);
	zila_sched_set_identity(&dm->sched, d->enrolled, d->joining);
	return d->enrolled || d->joining ? 0 : ZILA_ENOTENROLLED;
}

/* Reads HQ and the configured peers from the replica; peers that went away are dropped,
 * new ones are dialled. */
static int daemon_reload(struct daemon *d)
{
	char *peers = NULL, *hq = NULL;
	uint64_t now = uv_now(&d->loop);
	(void)daemon_identity(d);
	/* Enrolled by 'zila join' while running (the service): beacons start now, not at a restart. */
	(void)discovery_start(&d->disc);
	if (zila_store_meta_get(d->store, ZILA_META_NET_PEERS, &peers) != 0)
		peers = NULL;
	if (d->env.id.is_hq || zila_store_meta_get(d->store, ZILA_META_JOIN_HQ, &hq) != 0 || hq == NULL || hq[0] == '\0') {
		free(hq);
		hq = NULL;
	}
	/* Peers no longer configured go (LAN peers stay: beacons and age decide for them). */
	for (struct zila_sched_peer *p = d->sched.peers, *n; p != NULL; p = n) {
		n = p->next;
		if (p->source == ZILA_SCHED_LAN || (hq != NULL && strcmp(p->addr, hq) == 0))
			continue;
		bool listed = false;
		size_t len = strlen(p->addr);
		for (const char *line = peers; line != NULL && *line && !listed; line = strchr(line, '\n'), line = line ? line + 1 : NULL)
			listed = strncmp(line, p->addr, len) == 0 && (line[len] == '\n' || line[len] == '\0');
		if (!listed) {
			zila_log(ZILA_LOG_INFO, "peer %s removed", p->addr);
			zila_sched_remove(&d->sched, p);
		}
	}
	if (hq != NULL)
		(void)zila_sched_add(&d->sched, hq, ZILA_SCHED_HQ, now);
	else
		d->sched.hq = NULL;
	for (char *line = peers, *next; line != NULL && *line; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		if (line[0] == '\0' || (hq != NULL && strcmp(line, hq) == 0))
			continue;
		(void)zila_sched_add(&d->sched, line, ZILA_SCHED_CONFIG, now);
	}
	free(peers);
	free(hq);
	want_all(d, NULL);
	return 0;
}

/* --- local changes ------------------------------------------------------------------------ */

static void on_debounce(uv_timer_t *h)
{
	struct daemon *d = container_of(h, struct daemon, debounce_timer);
	/* A slice being applied writes the WAL too: look again after it, not wait for it. */
	if (net_store_lent(&d->env)) {
		uv_timer_start(&d->debounce_timer, on_debounce, DEBOUNCE_MS, 0);
		return;
	}
	/* Sessions moving files take the rows on their channel first (#25): then they carry them,
	 * and no new session is wanted for them. */
	conns_local_write(&d->conns);
	int64_t n = 0, own = peers_own_sealed(d->store);
	bool pending = zila_store_pending(d->store, &n) == 0 && n > 0;
	if (!pending && own == d->own_sealed)
		return;
	zila_log(ZILA_LOG_DEBUG, "local changes (%lld unsealed, %lld own entries): syncing", (long long)n, (long long)own);
	/* A watcher (HQ's PostgreSQL mirror) copies what entries say: local writes are sealed
	 * now, not at the next session (which, at HQ, waits for a laptop to call). */
	if (pending && d->cfg.watch != NULL) {
		struct zila_error err;
		size_t nsealed = 0;
		zila_error_clear(&err);
		int r = zila_store_seal(d->store, &nsealed, &err);
		if (r != 0)
			zila_log(ZILA_LOG_WARN, "cannot seal local changes now: %s", zila_error_msg(&err, r));
		else if (nsealed > 0 && d->cfg.watch->changed != NULL)
			d->cfg.watch->changed(d->cfg.watch->ctx);
	}
	d->own_sealed = own;
	/* Sealed by a session's start, most often, which offers them to its peer; pending, a
	 * session that has not started yet will seal them. Only peers no such session carries
	 * them to need one: never a second session with a peer while one is in flight. */
	want_targets(d, NULL, own, pending);
}

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
	struct daemon *d = container_of(h, struct daemon, fsev);
	(void)events;
	/* Writes by any process land in zila.db-wal (or zila.db): wait for a quiet moment. */
	if (status == 0 && filename != NULL && strncmp(filename, ZILA_DB_FILE, strlen(ZILA_DB_FILE)) == 0)
		uv_timer_start(&d->debounce_timer, on_debounce, DEBOUNCE_MS, 0);
}

/* Rows a writer inserted at a rowid of its own choosing below a table's high-water rowid
 * are found only by comparing every row with its state (zila_store_sweep): at the start
 * and every SWEEP_TICKS periodic ticks. A busy replica is swept at a later tick. */
#define SWEEP_TICKS 12 /* an hour */

/* Unreferenced attachments go once the history horizon passes the time they were first seen
 * so (#25): at start and hourly, one directory of DIR/blobs per tick. */
#define COLLECT_TICK_MS 20

static void on_collect(uv_timer_t *h)
{
	struct daemon *d = container_of(h, struct daemon, collect_timer);
	struct zila_error err;
	/* the next tick: a step is not worth waiting for a slice */
	if (net_store_lent(&d->env) || zila_store_in_transaction(d->store))
		return;
	zila_error_clear(&err);
	int r = zila_blob_collect_step(d->store, zila_store_horizon_ms(d->store), &d->collect_next, &d->collect_n,
				       &d->collect_bytes, &err);
	if (r != 0)
		zila_log(ZILA_LOG_WARN, "cannot collect attachments now (again in an hour): %s", zila_error_msg(&err, r));
	if (r != 0 || d->collect_next >= ZILA_BLOB_COLLECT_STEPS) {
		uv_timer_stop(&d->collect_timer);
		d->collecting = false;
		if (d->collect_n > 0)
			zila_log(ZILA_LOG_INFO,
				 "removed %llu attachments (%llu bytes) no row has referred to since the history horizon",
				 (unsigned long long)d->collect_n, (unsigned long long)d->collect_bytes);
	}
}

static void collect_start(struct daemon *d)
{
	if (d->collecting || d->env.stopping)
		return;
	d->collecting = true;
	d->collect_next = 0;
	d->collect_n = d->collect_bytes = 0;
	uv_timer_start(&d->collect_timer, on_collect, 0, COLLECT_TICK_MS);
}

static void daemon_sweep(struct daemon *d)
{
	struct zila_error err;
	size_t nrows = 0;
	zila_error_clear(&err);
	int r = zila_store_sweep(d->store, NULL, &nrows, &err);
	if (r != 0) {
		zila_log(ZILA_LOG_WARN, "cannot sweep the replica now: %s", zila_error_msg(&err, r));
		return;
	}
	d->nperiodic = 0;
	collect_start(d);
	if (nrows > 0)
		want_all(d, NULL);
	/* HQ checkpoints districts whose history outgrew their state; a laptop drops the
	 * history older than its horizon that a checkpoint covers (proto/CHECKPOINT.md) */
	size_t made = 0, dropped = 0;
	r = zila_store_history_upkeep(d->store, d->env.id.is_hq, &made, &dropped, &err);
	if (r != 0)
		zila_log(ZILA_LOG_WARN, "cannot keep the history bounded now: %s", zila_error_msg(&err, r));
	else if (made > 0 || dropped > 0)
		zila_log(ZILA_LOG_INFO, "made %zu checkpoint(s), dropped %zu entries older than the horizon", made, dropped);
	/* HQ drops deleted rows every device of their district has a checkpoint past */
	if (d->env.id.is_hq && (r = zila_trust_collect(d->store, &dropped, &err)) != 0)
		zila_log(ZILA_LOG_WARN, "cannot collect deleted rows now: %s", zila_error_msg(&err, r));
}

static void on_periodic(uv_timer_t *h)
{
	struct daemon *d = container_of(h, struct daemon, periodic_timer);
	net_store_claim(&d->env);
	if (++d->nperiodic >= SWEEP_TICKS)
		daemon_sweep(d);
	want_all(d, NULL);
}

/* --- the control socket's requests ----------------------------------------------------------- */

static json_t *ctl_status(void *ctx)
{
	return status_json(ctx);
}

static json_t *ctl_peers(void *ctx)
{
	return peers_json(ctx, true);
}

static struct target *find_peer(struct daemon *d, const char *name)
{
	for (struct zila_sched_peer *p = d->sched.peers; p != NULL; p = p->next)
		if (strcmp(p->addr, name) == 0 || (target_of(p)->name[0] && strcmp(target_of(p)->name, name) == 0) ||
		    (p->has_device && zila_device_id_match(name, p->device) == 0))
			return target_of(p);
	return NULL;
}

static int ctl_sync(void *ctx, const char *peer, struct ctl_target *out, size_t max, char *msg, size_t msg_len)
{
	struct daemon *d = ctx;
	struct target *list[CTL_WAIT_MAX];
	size_t n = 0;
	if (d->env.id.no_secret && !d->env.id.joining) {
		snprintf(msg, msg_len, "%s", ZILA_NO_SECRET_MSG);
		return -1;
	}
	if (!d->env.id.enrolled && !d->env.id.joining) {
		snprintf(msg, msg_len, "this device is not enrolled: it syncs with nobody (see 'zila join')");
		return -1;
	}
	if (max > CTL_WAIT_MAX)
		max = CTL_WAIT_MAX;
	if (peer == NULL) {
		for (struct zila_sched_peer *p = d->sched.peers; p != NULL && n < max; p = p->next)
			if (zila_sched_fresh(&d->sched, p, uv_now(&d->loop)))
				list[n++] = target_of(p);
		if (n == 0) {
			snprintf(msg, msg_len,
				 "no peer is known: add one with 'zila peer add HOST:PORT', set HQ, or wait for a LAN beacon");
			return -1;
		}
	} else if (strcmp(peer, "hq") == 0) {
		if (d->sched.hq == NULL) {
			snprintf(msg, msg_len, "%s",
				 d->env.id.is_hq ? "this device is HQ" : "no HQ address is set: 'zila peer add --hq HOST:PORT'");
			return -1;
		}
		list[n++] = target_of(d->sched.hq);
	} else {
		struct target *t = find_peer(d, peer);
		if (t == NULL) {
			snprintf(msg, msg_len, "no peer '%s' with an address is known; see 'zila peers'", peer);
			return -1;
		}
		list[n++] = t;
	}
	for (size_t i = 0; i < n; i++) {
		zila_sched_want_now(&d->sched, &list[i]->sp);
		out[i].key = list[i];
		snprintf(out[i].addr, sizeof(out[i].addr), "%s", list[i]->sp.addr);
		out[i].after = list[i]->nstarted;
	}
	daemon_kick(d);
	return (int)n;
}

static void ctl_progress(void *ctx, const void *key, json_t *o)
{
	status_target_progress(ctx, (struct target *)key, o);
}

static json_t *ctl_web_login(void *ctx)
{
	struct daemon *d = ctx;
	char tok[WEB_SECRET_HEX + 1], url[WEB_SECRET_HEX + 512];
	if (d->web_listen[0] == '\0' || web_token_new(&d->web, tok) != 0)
		return json_pack("{s:b, s:s}", "ok", 0, "error",
				 "the web interface is off (setting web.listen, or 'zila daemon --web ADDR:PORT')");
	/* The token goes in the fragment, which a browser never sends, so no log ever holds it. */
	char base[400];
	web_base_url(&d->web, base, sizeof(base));
	snprintf(url, sizeof(url), "%s/login#t=%s", base, tok);
	json_t *o = json_pack("{s:b, s:s}", "ok", 1, "url", url);
	sodium_memzero(tok, sizeof(tok));
	sodium_memzero(url, sizeof(url));
	return o;
}

/* The web interface's "sync now": every peer, or HQ. */
static int web_sync(void *ctx, const char *peer, char *msg, size_t msg_len)
{
	struct ctl_target t[CTL_WAIT_MAX];
	return ctl_sync(ctx, peer, t, CTL_WAIT_MAX, msg, msg_len) < 0 ? -1 : 0;
}

static void daemon_stop(struct daemon *d, const char *why);

static void ctl_reload(void *ctx)
{
	daemon_reload(ctx);
}

static void ctl_stop(void *ctx)
{
	daemon_stop(ctx, "zila stop");
}

/* --- signals and shutdown ------------------------------------------------------------------- */

static void close_if(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void daemon_stop(struct daemon *d, const char *why)
{
	if (d->env.stopping)
		return;
	d->env.stopping = true;
	zila_log(ZILA_LOG_INFO, "stopping (%s)", why);
	if (d->listening)
		close_if((uv_handle_t *)&d->listener);
	discovery_stop(&d->disc);
	control_stop(&d->ctl);
	web_stop(&d->web);
	close_if((uv_handle_t *)&d->kick_timer);
	close_if((uv_handle_t *)&d->periodic_timer);
	close_if((uv_handle_t *)&d->debounce_timer);
	close_if((uv_handle_t *)&d->collect_timer);
	if (d->fsev_open)
		close_if((uv_handle_t *)&d->fsev);
	for (size_t i = 0; i < d->nsigs; i++)
		close_if((uv_handle_t *)&d->sigs[i]);
	/* Sessions end with an authenticated close; what they applied is committed. */
	conns_stop(&d->conns);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct daemon *d = h->data;
	net_store_claim(&d->env);
	if (signum == zila_os_reload_signal()) {
		zila_log(ZILA_LOG_INFO, "%s: reloading settings and peers", zila_os_signal_name(signum));
		daemon_reload(d);
		return;
	}
	daemon_stop(d, zila_os_signal_name(signum));
}

static void on_connection(uv_stream_t *s, int status)
{
	struct daemon *d = container_of((uv_tcp_t *)s, struct daemon, listener);
	if (status != 0) {
		zila_log(ZILA_LOG_WARN, "accept: %s", uv_strerror(status));
		return;
	}
	conn_accept(&d->conns, s);
}

/* --- start -------------------------------------------------------------------------------- */

/* SQLite calls this while another connection holds the write lock: wait a little (the
 * loop stalls meanwhile, so not long), say so once, then let the statement fail with
 * SQLITE_BUSY; the session fails and is retried with backoff, nothing is skipped. */
static int on_busy(void *ctx, int count)
{
	struct daemon *d = ctx;
	uint64_t now = uv_hrtime() / 1000000u;
	/* Another statement of the same lock episode (the peer table, then the session's
	 * batch) fails at once: the loop has waited long enough already. */
	if (count == 0 && d->busy_gave_up_ms != 0 && now - d->busy_gave_up_ms < STORE_BUSY_WAIT_MS)
		return 0;
	if (count == 0) {
		d->busy_start_ms = now;
		d->nbusy_waits++;
		zila_log(ZILA_LOG_INFO, "the replica '%s/%s' is locked by another program's write transaction: waiting",
			 d->dir, ZILA_DB_FILE);
	}
	if (now - d->busy_start_ms >= STORE_BUSY_WAIT_MS) {
		zila_log(ZILA_LOG_WARN, "the replica '%s/%s' is still locked after %llu ms: giving up for now", d->dir,
			 ZILA_DB_FILE, (unsigned long long)(now - d->busy_start_ms));
		d->busy_gave_up_ms = now;
		return 0;
	}
	uv_sleep(count < 5 ? 10 : 50);
	return 1;
}

static int take_lock(struct daemon *d, struct zila_error *err)
{
	char path[PATH_MAX + 32], pid[32] = "";
	snprintf(path, sizeof(path), "%s/%s", d->dir, ZILA_LOCK_FILE);
	int r = zila_os_lock_take(&d->lock, path, pid, sizeof(pid), err);
	if (r == ZILA_EBUSY)
		return zila_error_set(err, ZILA_EBUSY, "a daemon already runs on '%s'%s%s%s", d->dir, pid[0] ? " (pid " : "",
				      pid, pid[0] ? ")" : "");
	return r;
}

static int start_listener(struct daemon *d, struct zila_error *err)
{
	char host[256];
	uint16_t port;
	struct sockaddr_storage ss;
	int r = zila_hostport_parse(d->listen_addr, host, sizeof(host), &port);
	if (r != 0)
		return zila_error_set(err, ZILA_EINVAL, "listen address '%s' is not ADDR:PORT", d->listen_addr);
	if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
	    uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)
		return zila_error_set(err, ZILA_EINVAL, "listen address '%s' is not a numeric IP address", d->listen_addr);
	uv_tcp_init(&d->loop, &d->listener);
	d->listening = true;
	if ((r = uv_tcp_bind(&d->listener, (struct sockaddr *)&ss, 0)) != 0 ||
	    (r = uv_listen((uv_stream_t *)&d->listener, 128, on_connection)) != 0)
		return zila_error_set(err, r, "cannot listen on '%s': %s", d->listen_addr, uv_strerror(r));
	return 0;
}

/* The web interface: an address given (flag or setting) must work; the default one may be
 * taken (several daemons on one machine: tests, a lab), and then the daemon runs without. */
static int start_web(struct daemon *d, const struct web_hooks *wh, struct zila_error *err)
{
	if (d->web_listen[0] == '\0')
		return 0;
	const struct web_opts wo = { d->cfg.dir, d->cfg.web_cert, d->cfg.web_key, d->cfg.web_names, d->cfg.web_plain_lan,
				     d->env.id.is_hq };
	int r = web_start(&d->web, &d->env, d->web_listen, &wo, wh, err);
	if (r != 0 && !d->web_explicit) {
		zila_log(ZILA_LOG_WARN, "%s: running without the web interface", zila_error_msg(err, r));
		web_stop(&d->web);
		d->web_listen[0] = '\0';
		zila_error_clear(err);
		r = 0;
	}
	return r;
}

static void read_settings(struct daemon *d, uint16_t *beacon_port)
{
	char *v = NULL;
	if (d->cfg.listen != NULL)
		snprintf(d->listen_addr, sizeof(d->listen_addr), "%s", d->cfg.listen);
	else if (zila_store_meta_get(d->store, ZILA_META_NET_LISTEN, &v) == 0 && v != NULL && v[0])
		snprintf(d->listen_addr, sizeof(d->listen_addr), "%s", v);
	else
		snprintf(d->listen_addr, sizeof(d->listen_addr), "0.0.0.0:%d", ZILA_SYNC_PORT);
	free(v);
	v = NULL;
	d->web_explicit = true;
	if (d->cfg.web_listen != NULL)
		snprintf(d->web_listen, sizeof(d->web_listen), "%s", d->cfg.web_listen);
	else if (zila_store_meta_get(d->store, ZILA_META_WEB_LISTEN, &v) == 0 && v != NULL && v[0])
		snprintf(d->web_listen, sizeof(d->web_listen), "%s", v);
	else {
		snprintf(d->web_listen, sizeof(d->web_listen), "%s", ZILA_WEB_LISTEN);
		d->web_explicit = false;
	}
	if (strcmp(d->web_listen, "off") == 0)
		d->web_listen[0] = '\0';
	free(v);
	v = NULL;
	*beacon_port = ZILA_BEACON_PORT;
	if (d->cfg.beacon_port >= 0)
		*beacon_port = (uint16_t)d->cfg.beacon_port;
	else if (zila_store_meta_get(d->store, ZILA_META_NET_BEACON_PORT, &v) == 0 && v != NULL)
		*beacon_port = (uint16_t)strtoul(v, NULL, 10);
	free(v);
}

/* The TCP port beacons name: the listen address's. */
static uint16_t listen_port(const struct daemon *d)
{
	char host[256];
	uint16_t port = ZILA_SYNC_PORT;
	if (zila_hostport_parse(d->listen_addr, host, sizeof(host), &port) != 0)
		port = ZILA_SYNC_PORT;
	return port;
}

static void walk_close(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h)) {
		zila_log(ZILA_LOG_ERROR, "handle of type %s still open at exit", uv_handle_type_name(uv_handle_get_type(h)));
		uv_close(h, NULL);
	}
}

int zila_daemon_run(const struct zila_daemon_config *cfg, struct zila_error *err)
{
	struct daemon *d = calloc(1, sizeof(*d));
	int r;
	bool loop_init = false;
	uint16_t beacon_port = 0;
	if (d == NULL)
		return zila_error_set(err, ZILA_ENOMEM, "out of memory");
	d->cfg = *cfg;
	d->env.loop = &d->loop;
	d->env.trust = &d->trust;
	d->env.cfg = &d->cfg;
	/* Slices of large windows are applied on a worker thread (net_lend): without its lock
	 * they are applied on the loop as before. */
	if (uv_mutex_init(&d->lend.mu) == 0) {
		if (uv_cond_init(&d->lend.cv) == 0) {
			const char *late = getenv("ZILA_TEST_SLICE_LATE_MS");
			d->lend_init = true;
			d->env.lend = &d->lend;
			d->lend.test_late_ms = late != NULL ? (unsigned)strtoul(late, NULL, 10) : 0;
		} else {
			uv_mutex_destroy(&d->lend.mu);
		}
	}
	if (zila_os_realpath(cfg->dir, d->dir, sizeof(d->dir)) != 0) {
		r = zila_error_set(err, ZILA_ENOTFOUND, "no replica in '%s': run 'zila init' first", cfg->dir);
		goto out;
	}
	zila_os_ignore_sigpipe();
	unsigned long nfd = zila_os_raise_fd_limit();
	if (nfd != 0 && nfd < 4u * (cfg->max_sessions ? cfg->max_sessions : 64) + 64)
		zila_log(ZILA_LOG_WARN, "only %lu open files allowed (ulimit -n): fewer sessions than --max-sessions %u "
			 "may run at once", nfd, cfg->max_sessions ? cfg->max_sessions : 64);
	if ((r = take_lock(d, err)) != 0)
		goto out;
	if ((r = zila_store_open(&d->store, d->dir, err)) != 0)
		goto out;
	d->env.store = d->store;
	zila_trust_install(d->store, &d->trust);
	zila_store_set_busy(d->store, on_busy, d);
	struct zila_sched_config scfg = {
		.max_sessions = cfg->max_sessions,
		.alloc = target_alloc,
		.release = target_release,
		.device_busy = device_busy,
		.ctx = d,
	};
	memcpy(scfg.self, zila_store_device_pk(d->store), 32);
	zila_sched_init(&d->sched, &scfg);
	read_settings(d, &beacon_port);
	(void)daemon_identity(d);
	if ((r = uv_loop_init(&d->loop)) != 0) {
		zila_error_set(err, r, "cannot start the event loop: %s", uv_strerror(r));
		goto out;
	}
	loop_init = true;
	d->started_wall = (int64_t)zila_wall_s();
	const struct conn_hooks ch = { on_established, on_ended, on_delivered, on_conn_freed, d };
	const struct discovery_hooks dh = { on_heard, on_nets, d };
	const struct control_hooks cth = { ctl_status, ctl_peers, ctl_sync, ctl_progress, ctl_web_login,
					   ctl_reload, ctl_stop, d };
	const struct web_hooks wh = { ctl_status, web_sync, d, cfg->web_api, cfg->web_ctx, cfg->web_api_files };
	conns_init(&d->conns, &d->env, &d->refused, &ch);
	discovery_init(&d->disc, &d->env, beacon_port, listen_port(d), &dh);
	uv_timer_init(&d->loop, &d->kick_timer);
	uv_timer_init(&d->loop, &d->periodic_timer);
	uv_timer_init(&d->loop, &d->debounce_timer);
	uv_timer_init(&d->loop, &d->collect_timer);
	size_t nstop;
	const int *stop = zila_os_stop_signals(&nstop);
	for (size_t i = 0; i <= nstop && d->nsigs < sizeof(d->sigs) / sizeof(d->sigs[0]); i++) {
		int sig = i < nstop ? stop[i] : zila_os_reload_signal();
		if (sig == 0)
			continue;
		uv_signal_t *h = &d->sigs[d->nsigs++];
		uv_signal_init(&d->loop, h);
		h->data = d;
		if (uv_signal_start(h, on_signal, sig) != 0)
			zila_log(ZILA_LOG_DEBUG, "cannot watch %s", zila_os_signal_name(sig));
	}
	if ((r = control_start(&d->ctl, &d->env, d->dir, &cth, err)) != 0 || (r = start_listener(d, err)) != 0 ||
	    (r = start_web(d, &wh, err)) != 0) {
		daemon_stop(d, "cannot start");
		uv_run(&d->loop, UV_RUN_DEFAULT);
		goto out;
	}
	if (uv_fs_event_init(&d->loop, &d->fsev) == 0) {
		d->fsev_open = true;
		if (uv_fs_event_start(&d->fsev, on_fs_event, d->dir, 0) != 0)
			zila_log(ZILA_LOG_WARN, "cannot watch '%s': local changes are noticed every 5 minutes only", d->dir);
	}
	/* Started once this daemon holds the replica's lock: a second daemon refused above never
	 * starts a second mirror. */
	if (cfg->watch != NULL && cfg->watch->start != NULL && (r = cfg->watch->start(cfg->watch->ctx)) != 0) {
		zila_error_set(err, r, "cannot start the %s: %s", cfg->watch->name, zila_strerror(r));
		daemon_stop(d, "cannot start");
		uv_run(&d->loop, UV_RUN_DEFAULT);
		goto out;
	}
	uv_timer_start(&d->periodic_timer, on_periodic, PERIODIC_MS, PERIODIC_MS);
	daemon_sweep(d);
	d->own_sealed = peers_own_sealed(d->store);

	char id[ZILA_DEVICE_ID_LEN + 1];
	const struct net_identity *me = &d->env.id;
	zila_device_id(zila_store_device_pk(d->store), id);
	if (me->enrolled) {
		zila_log(ZILA_LOG_INFO, "device %s ('%s', %s of %s) of organisation '%s'", id, me->cert.name,
			 zila_role_name(me->cert.role), me->cert.scope_all ? "all districts" : me->cert.district, me->org_name);
		clock_warn(d);
	}
	else if (me->joining)
		zila_log(ZILA_LOG_INFO, "device %s is not enrolled yet: joining at the first contact with HQ", id);
	else if (me->no_secret)
		zila_log(ZILA_LOG_ERROR, "device %s: %s", id, ZILA_NO_SECRET_MSG);
	else
		zila_log(ZILA_LOG_WARN, "device %s is not enrolled: it syncs with nobody; see 'zila join'", id);
	zila_log(ZILA_LOG_INFO, "listening on tcp %s; control socket %s", d->listen_addr, d->ctl.sock_path);
	if (d->web_listen[0]) {
		char base[400];
		web_base_url(&d->web, base, sizeof(base));
		zila_log(ZILA_LOG_INFO, "web interface on %s/ ('zila open' for a login link%s)", base,
			 d->web.lan ? "; from the LAN with a password" : "");
		if (d->web.tls != NULL)
			zila_log(ZILA_LOG_INFO, "web interface's TLS certificate: SHA-256 %s", d->web.fingerprint);
	}
	discovery_start(&d->disc);
	daemon_reload(d);
	if (d->sched.hq != NULL)
		zila_log(ZILA_LOG_INFO, "HQ is at %s", d->sched.hq->addr);

	uv_run(&d->loop, UV_RUN_DEFAULT);
	r = 0;
out:
	if (loop_init) {
		if (uv_loop_close(&d->loop) != 0) {
			uv_walk(&d->loop, walk_close, NULL);
			uv_run(&d->loop, UV_RUN_DEFAULT);
			if (uv_loop_close(&d->loop) != 0 && r == 0)
				r = zila_error_set(err, ZILA_EINTERNAL, "the event loop did not close");
		}
	}
	if (d->sched.cfg.release != NULL)
		zila_sched_release(&d->sched);
	net_store_claim(&d->env);
	if (d->lend_init) {
		uv_cond_destroy(&d->lend.cv);
		uv_mutex_destroy(&d->lend.mu);
	}
	zila_store_free(d->store);
	zila_os_lock_release(d->lock);
	sodium_memzero(d->env.id.beacon_key, sizeof(d->env.id.beacon_key));
	sodium_memzero(d->env.id.psk, sizeof(d->env.id.psk));
	if (r == 0)
		zila_log(ZILA_LOG_INFO, "stopped");
	free(d);
	return r;
}
