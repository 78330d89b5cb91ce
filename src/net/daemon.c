/* The daemon's loop: the replica and its lock, identity and settings, the dial targets (HQ,
 * configured peers, LAN peers) and when to dial them, local-change detection, signals and a
 * clean shutdown. Connections live in conn.c, beacons in discovery.c, the control socket in
 * control.c. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "net_int.h"
#include "zila/clock.h"
#include "zila/log.h"

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
		fprintf(stderr, "zila[%ld]: %s: %s\n", (long)getpid(), names[level], msg);
}

uint64_t daemon_wall(void)
{
	return zila_wall_s();
}

uint64_t daemon_hq_ms(struct daemon *d)
{
	struct zila_clock ck;
	zila_store_clock(d->store, &ck);
	return ck.hq_est_ms;
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

/* --- targets ---------------------------------------------------------------------------- */

struct target *daemon_target_find(struct daemon *d, const char *addr)
{
	for (struct target *t = d->targets; t != NULL; t = t->next)
		if (strcmp(t->addr, addr) == 0)
			return t;
	return NULL;
}

struct target *daemon_target_add(struct daemon *d, const char *addr, enum target_source src)
{
	struct target *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->d = d;
	snprintf(t->addr, sizeof(t->addr), "%s", addr);
	t->source = src;
	t->want = true;
	zila_backoff_init(&t->backoff, HQ_BACKOFF_BASE_MS, HQ_BACKOFF_MAX_MS);
	t->next = d->targets;
	d->targets = t;
	return t;
}

static void target_free(struct daemon *d, struct target *t)
{
	for (struct target **pp = &d->targets; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	}
	if (t->conn != NULL)
		t->conn->target = NULL;
	if (d->hq == t)
		d->hq = NULL;
	control_target_gone(d, t);
	free(t);
}

static bool device_busy(struct daemon *d, const uint8_t device[32])
{
	for (struct conn *c = d->conns; c != NULL; c = c->next)
		if (c->has_peer && c->state != CONN_CLOSED && memcmp(c->peer_pk, device, 32) == 0)
			return true;
	return false;
}

static void on_kick(uv_timer_t *h)
{
	struct daemon *d = container_of(h, struct daemon, kick_timer);
	uint64_t now = uv_now(&d->loop), next = UINT64_MAX;
	unsigned max = d->cfg.max_sessions ? d->cfg.max_sessions : 64;
	if (d->stopping)
		return;
	for (struct target *t = d->targets; t != NULL; t = t->next) {
		if (!t->want || t->conn != NULL)
			continue;
		if (!d->enrolled && !(t == d->hq && d->joining))
			continue;
		if (t->source == SRC_LAN && now - t->heard_ms > LAN_FRESH_MS) {
			t->want = false;
			continue;
		}
		if (t->has_device && device_busy(d, t->device))
			continue; /* it dialled us: this target's turn comes when that session ends */
		if (now < t->next_ms) {
			if (t->next_ms < next)
				next = t->next_ms;
			continue;
		}
		if (conn_nsessions(d) >= max)
			break;
		int r = conn_dial(d, t);
		if (r != 0) {
			snprintf(t->last_error, sizeof(t->last_error), "bad address: %s", zila_strerror(r));
			t->want = false;
		}
	}
	if (next != UINT64_MAX)
		uv_timer_start(&d->kick_timer, on_kick, next - now, 0);
}

void daemon_kick(struct daemon *d)
{
	if (!d->stopping)
		uv_timer_start(&d->kick_timer, on_kick, 0, 0);
}

/* Whether t's session, running or last completed, offered our first own entries (a
 * session offers what its start sealed). */
static bool offered(struct daemon *d, const struct target *t, int64_t own)
{
	const struct conn *c = t->conn;
	for (const struct conn *x = d->conns; c == NULL && t->has_device && x != NULL; x = x->next)
		if (x->has_peer && x->state == CONN_SESSION && memcmp(x->peer_pk, t->device, 32) == 0)
			c = x; /* it dialled us */
	if (c != NULL)
		return c->state == CONN_SESSION && c->own_offered >= own;
	return t->own_offered >= own;
}

/* Wants a sync with every target but except_device's (and LAN peers not heard lately when
 * lan_fresh_only), skipping those offered our first own entries already (own >= 0). */
static void want_targets(struct daemon *d, const uint8_t *except_device, bool lan_fresh_only, int64_t own)
{
	uint64_t now = uv_now(&d->loop);
	for (struct target *t = d->targets; t != NULL; t = t->next) {
		if (except_device != NULL && t->has_device && memcmp(t->device, except_device, 32) == 0)
			continue;
		if (lan_fresh_only && t->source == SRC_LAN && now - t->heard_ms > LAN_FRESH_MS)
			continue;
		if (own >= 0 && offered(d, t, own))
			continue;
		if (t->conn != NULL)
			t->again = true;
		else
			t->want = true;
	}
	daemon_kick(d);
}

void daemon_want_all(struct daemon *d, const uint8_t *except_device, bool lan_fresh_only)
{
	want_targets(d, except_device, lan_fresh_only, -1);
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
	d->store_error_at = daemon_wall();
	zila_log(c->result == ZILA_EBUSY ? ZILA_LOG_WARN : ZILA_LOG_ERROR,
		 "%s; nothing of the unfinished batch was kept, %s %s retries later", d->store_error_msg,
		 c->target != NULL ? "the sync with" : "the peer at", c->addr);
}

#define BUSY_RETRIES 5      /* quick retries of a peer that turned a handshake away */
#define BUSY_RETRY_MS 1200u /* a handshake token comes back every second */

void daemon_session_ended(struct daemon *d, struct conn *c)
{
	const struct zila_session_stats *st = c->sess ? zila_session_stats(c->sess) : NULL;
	struct target *t = c->target;
	char lbl[400];
	bool ok = c->result == 0;
	uint64_t ms = uv_now(&d->loop) - c->started_ms;

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
	if (t != NULL && !c->duplicate)
		t->flaky = !ok && c->sess != NULL && !local_fault && c->result != ZILA_EPEER;
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
		if (t != NULL) {
			t->again = true; /* sync as a member at once */
			t->next_ms = 0;
		}
		discovery_start(d);
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
			if (zila_store_meta_set(d->store, ZILA_META_NET_OWN_ANY, v) != 0)
				zila_log(ZILA_LOG_WARN, "cannot record the sync in the replica");
		}
		/* What the peer refused of ours, and for HQ what it holds (status, sync --wait). */
		refused_learn(d, c, st);
		/* A session that completed gives its handshake token back: the limit is for
		 * handshakes and sessions that fail, and a laptop syncing often (its daemon, then
		 * its user) must never be turned away for it. */
		if (!c->initiator && c->ip[0] != '\0')
			conn_rate_refund(d, c->ip);
		/* What the session offered, the peer has: noticing the session's own seal later
		 * (on_debounce) dials nobody who took part. */
		for (struct target *x = d->targets; x != NULL; x = x->next)
			if (x == t || (x->has_device && c->has_peer && memcmp(x->device, c->peer_pk, 32) == 0))
				x->own_offered = c->own_offered > x->own_offered ? c->own_offered : x->own_offered;
		/* Relay: what came from this peer goes on to the others. */
		if (st->entries_applied > 0 || st->trust_received > 0)
			daemon_want_all(d, c->peer_pk, true);
	}
	if (c->has_peer && c->mode == ZILA_CHANNEL_MEMBER && !c->duplicate)
		peers_synced(d, c, st);
	if (t != NULL) {
		t->conn = NULL;
		if (c->duplicate) {
			/* Not a result: the other session with the device stands for this one. */
		} else if (!ok && c->busy_refused && t->busy_retries < BUSY_RETRIES) {
			/* Turned away unanswered right after a completed sync: the peer is busy for a
			 * moment. Try again soon; a user waiting for this sync waits for that one. */
			t->busy_retries++;
			t->want = true;
			t->next_ms = uv_now(&d->loop) + BUSY_RETRY_MS;
			snprintf(t->last_error, sizeof(t->last_error), "%s", c->reason);
			zila_log(ZILA_LOG_INFO, "%s is busy; trying again in %u ms", t->addr, BUSY_RETRY_MS);
			daemon_kick(d);
			return;
		} else if (ok) {
			t->busy_retries = 0;
			zila_backoff_reset(&t->backoff);
			t->want = t->again;
			t->again = false;
			t->last_ok = daemon_wall();
			t->last_error[0] = '\0';
			t->next_ms = 0;
		} else {
			uint32_t delay = zila_backoff_fail(&t->backoff, randombytes_random());
			if (local_fault && delay > STORE_RETRY_MAX_MS)
				delay = STORE_RETRY_MAX_MS;
			t->next_ms = uv_now(&d->loop) + delay;
			snprintf(t->last_error, sizeof(t->last_error), "%s", c->reason);
			if (!c->has_peer)
				t->reachable = false;
			/* HQ and configured peers are retried for ever; a LAN peer that left gives up. */
			if (t->source == SRC_LAN && t->backoff.failures >= 3)
				t->want = false;
			zila_log(local_fault ? ZILA_LOG_INFO : ZILA_LOG_DEBUG, "next attempt with %s in %u ms", t->addr,
				 delay);
		}
		if (!c->duplicate)
			control_target_done(d, t, c->seqno, c->result, c->reason);
	}
	daemon_kick(d);
}

/* --- identity and settings ---------------------------------------------------------------- */

int daemon_identity(struct daemon *d)
{
	struct zila_buf b;
	struct zila_cert issuer;
	char *name = NULL, *code = NULL, *hq = NULL;
	d->enrolled = d->has_cert = d->has_issuer = d->is_hq = false;
	d->org_name[0] = '\0';
	if (zila_trust_org(d->store, d->root_pk) == 0 &&
	    zila_trust_cert_get(d->store, zila_store_device_pk(d->store), &d->cert) == 0) {
		d->has_cert = true;
		zila_buf_init(&b, ZILA_CERT_LEN);
		if (zila_cert_encode(&d->cert, &b) == 0 && b.len == ZILA_CERT_LEN) {
			memcpy(d->cert_bytes, b.p, ZILA_CERT_LEN);
			d->enrolled = true;
		}
		zila_buf_reset(&b);
		if (memcmp(d->cert.issuer_pk, d->root_pk, 32) != 0 &&
		    zila_trust_cert_get(d->store, d->cert.issuer_pk, &issuer) == 0 && zila_cert_encode(&issuer, &b) == 0 &&
		    b.len == ZILA_CERT_LEN) {
			memcpy(d->issuer_bytes, b.p, ZILA_CERT_LEN);
			d->has_issuer = true;
		}
		zila_buf_release(&b);
		d->is_hq = d->cert.role == ZILA_ROLE_HQ;
		zila_beacon_key(d->root_pk, d->beacon_key);
		if (zila_store_meta_get(d->store, ZILA_META_ORG_NAME, &name) == 0 && name != NULL)
			snprintf(d->org_name, sizeof(d->org_name), "%s", name);
	}
	d->joining = !d->enrolled && zila_store_meta_get(d->store, ZILA_META_JOIN_CODE, &code) == 0 && code != NULL &&
		     code[0] != '\0' && zila_store_meta_get(d->store, ZILA_META_JOIN_HQ, &hq) == 0;
	free(name);
	free(code);
	free(hq);
	return d->enrolled || d->joining ? 0 : ZILA_ENOTENROLLED;
}

/* Reads HQ and the configured peers from the replica; targets that went away are dropped,
 * new ones are dialled. */
int daemon_reload(struct daemon *d)
{
	char *peers = NULL, *hq = NULL;
	(void)daemon_identity(d);
	if (zila_store_meta_get(d->store, ZILA_META_NET_PEERS, &peers) != 0)
		peers = NULL;
	if (d->is_hq || zila_store_meta_get(d->store, ZILA_META_JOIN_HQ, &hq) != 0 || hq == NULL || hq[0] == '\0') {
		free(hq);
		hq = NULL;
	}
	for (struct target *t = d->targets; t != NULL; t = t->next)
		if (t->source != SRC_LAN)
			t->removed = true;
	if (hq != NULL) {
		struct target *t = daemon_target_find(d, hq);
		if (t == NULL)
			t = daemon_target_add(d, hq, SRC_HQ);
		if (t != NULL) {
			t->removed = false;
			t->source = SRC_HQ;
			d->hq = t;
		}
	} else {
		d->hq = NULL;
	}
	for (char *line = peers, *next; line != NULL && *line; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		if (line[0] == '\0')
			continue;
		struct target *t = daemon_target_find(d, line);
		if (t == NULL)
			t = daemon_target_add(d, line, SRC_CONFIG);
		else if (t->source == SRC_LAN)
			t->source = SRC_CONFIG;
		if (t != NULL && t != d->hq)
			t->removed = false;
	}
	for (struct target *t = d->targets, *n; t != NULL; t = n) {
		n = t->next;
		if (t->removed) {
			zila_log(ZILA_LOG_INFO, "peer %s removed", t->addr);
			target_free(d, t);
		}
	}
	free(peers);
	free(hq);
	daemon_want_all(d, NULL, true);
	return 0;
}

/* --- local changes ------------------------------------------------------------------------ */

/* What local writes leave behind: captured changes not sealed yet, and our own sealed
 * entries (a session applying remote entries seals pending changes first, so a change may
 * already be sealed when we look). */
int64_t daemon_own_sealed(struct daemon *d)
{
	int64_t n = -1;
	return zila_store_own_entries(d->store, &n) == 0 ? n : -1;
}

static void on_debounce(uv_timer_t *h)
{
	struct daemon *d = container_of(h, struct daemon, debounce_timer);
	int64_t n = 0, own = daemon_own_sealed(d);
	bool pending = zila_store_pending(d->store, &n) == 0 && n > 0;
	if (!pending && own == d->own_sealed)
		return;
	zila_log(ZILA_LOG_DEBUG, "local changes (%lld unsealed, %lld own entries): syncing", (long long)n, (long long)own);
	d->own_sealed = own;
	if (pending || own < 0) {
		daemon_want_all(d, NULL, true);
		return;
	}
	/* Sealed, nothing pending: most often by a session's start, which offers them to its
	 * peer; only peers no session since has offered them to need one. */
	want_targets(d, NULL, true, own);
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
	if (nrows > 0)
		daemon_want_all(d, NULL, true);
}

static void on_periodic(uv_timer_t *h)
{
	struct daemon *d = container_of(h, struct daemon, periodic_timer);
	if (++d->nperiodic >= SWEEP_TICKS)
		daemon_sweep(d);
	daemon_want_all(d, NULL, true);
}

/* --- signals and shutdown ------------------------------------------------------------------- */

static void close_if(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

void daemon_stop(struct daemon *d, const char *why)
{
	if (d->stopping)
		return;
	d->stopping = true;
	zila_log(ZILA_LOG_INFO, "stopping (%s)", why);
	if (d->listening)
		close_if((uv_handle_t *)&d->listener);
	discovery_stop(d);
	control_stop(d);
	close_if((uv_handle_t *)&d->kick_timer);
	close_if((uv_handle_t *)&d->periodic_timer);
	close_if((uv_handle_t *)&d->debounce_timer);
	close_if((uv_handle_t *)&d->progress_timer);
	conn_noisy_flush(&d->noisy_timer);
	close_if((uv_handle_t *)&d->noisy_timer);
	if (d->fsev_open)
		close_if((uv_handle_t *)&d->fsev);
	close_if((uv_handle_t *)&d->sig_term);
	close_if((uv_handle_t *)&d->sig_int);
	close_if((uv_handle_t *)&d->sig_hup);
	/* Sessions end with an authenticated close; what they applied is committed. */
	for (struct conn *c = d->conns, *n; c != NULL; c = n) {
		n = c->next;
		conn_event(c, EV_STOP, NULL, 0, 0);
	}
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct daemon *d = h->data;
	if (signum == SIGHUP) {
		zila_log(ZILA_LOG_INFO, "SIGHUP: reloading settings and peers");
		daemon_reload(d);
		return;
	}
	daemon_stop(d, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void on_connection(uv_stream_t *s, int status)
{
	struct daemon *d = container_of((uv_tcp_t *)s, struct daemon, listener);
	if (status != 0) {
		zila_log(ZILA_LOG_WARN, "accept: %s", uv_strerror(status));
		return;
	}
	conn_accept(d);
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
	d->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (d->lock_fd < 0)
		return zila_error_set(err, ZILA_EIO, "cannot open '%s': %s", path, strerror(errno));
	if (flock(d->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		ssize_t n = read(d->lock_fd, pid, sizeof(pid) - 1);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		close(d->lock_fd);
		d->lock_fd = -1;
		return zila_error_set(err, ZILA_EBUSY, "a daemon already runs on '%s'%s%s%s", d->dir, pid[0] ? " (pid " : "",
				      pid, pid[0] ? ")" : "");
	}
	snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(d->lock_fd, 0) != 0 || pwrite(d->lock_fd, pid, strlen(pid), 0) < 0)
		zila_log(ZILA_LOG_DEBUG, "cannot write the pid to the lock file");
	return 0;
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

static void read_settings(struct daemon *d)
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
	d->beacon_port = ZILA_BEACON_PORT;
	if (d->cfg.beacon_port >= 0)
		d->beacon_port = (uint16_t)d->cfg.beacon_port;
	else if (zila_store_meta_get(d->store, ZILA_META_NET_BEACON_PORT, &v) == 0 && v != NULL)
		d->beacon_port = (uint16_t)strtoul(v, NULL, 10);
	free(v);
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
	if (d == NULL)
		return zila_error_set(err, ZILA_ENOMEM, "out of memory");
	d->cfg = *cfg;
	d->lock_fd = -1;
	if (realpath(cfg->dir, d->dir) == NULL) {
		r = zila_error_set(err, ZILA_ENOTFOUND, "no replica in '%s': run 'zila init' first", cfg->dir);
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);
	if ((r = take_lock(d, err)) != 0)
		goto out;
	if ((r = zila_store_open(&d->store, d->dir, err)) != 0)
		goto out;
	zila_trust_install(d->store, &d->trust);
	zila_store_set_busy(d->store, on_busy, d);
	read_settings(d);
	(void)daemon_identity(d);
	if ((r = uv_loop_init(&d->loop)) != 0) {
		zila_error_set(err, r, "cannot start the event loop: %s", uv_strerror(r));
		goto out;
	}
	loop_init = true;
	d->started_wall = (int64_t)daemon_wall();
	uv_timer_init(&d->loop, &d->kick_timer);
	uv_timer_init(&d->loop, &d->periodic_timer);
	uv_timer_init(&d->loop, &d->debounce_timer);
	uv_timer_init(&d->loop, &d->progress_timer);
	uv_timer_init(&d->loop, &d->noisy_timer);
	uv_signal_init(&d->loop, &d->sig_term);
	uv_signal_init(&d->loop, &d->sig_int);
	uv_signal_init(&d->loop, &d->sig_hup);
	d->sig_term.data = d->sig_int.data = d->sig_hup.data = d;
	uv_signal_start(&d->sig_term, on_signal, SIGTERM);
	uv_signal_start(&d->sig_int, on_signal, SIGINT);
	uv_signal_start(&d->sig_hup, on_signal, SIGHUP);
	if ((r = control_start(d, err)) != 0 || (r = start_listener(d, err)) != 0) {
		daemon_stop(d, "cannot start");
		uv_run(&d->loop, UV_RUN_DEFAULT);
		goto out;
	}
	if (uv_fs_event_init(&d->loop, &d->fsev) == 0) {
		d->fsev_open = true;
		if (uv_fs_event_start(&d->fsev, on_fs_event, d->dir, 0) != 0)
			zila_log(ZILA_LOG_WARN, "cannot watch '%s': local changes are noticed every 5 minutes only", d->dir);
	}
	uv_timer_start(&d->periodic_timer, on_periodic, PERIODIC_MS, PERIODIC_MS);
	daemon_sweep(d);
	d->own_sealed = daemon_own_sealed(d);

	char id[ZILA_DEVICE_ID_LEN + 1];
	zila_device_id(zila_store_device_pk(d->store), id);
	if (d->enrolled) {
		zila_log(ZILA_LOG_INFO, "device %s ('%s', %s of %s) of organisation '%s'", id, d->cert.name,
			 zila_role_name(d->cert.role), d->cert.scope_all ? "all districts" : d->cert.district, d->org_name);
		clock_warn(d);
	}
	else if (d->joining)
		zila_log(ZILA_LOG_INFO, "device %s is not enrolled yet: joining at the first contact with HQ", id);
	else
		zila_log(ZILA_LOG_WARN, "device %s is not enrolled: it syncs with nobody; see 'zila join'", id);
	zila_log(ZILA_LOG_INFO, "listening on tcp %s; control socket %s", d->listen_addr, d->sock_path);
	discovery_start(d);
	daemon_reload(d);
	if (d->hq != NULL)
		zila_log(ZILA_LOG_INFO, "HQ is at %s", d->hq->addr);

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
	while (d->targets != NULL) {
		struct target *t = d->targets;
		d->targets = t->next;
		free(t);
	}
	zila_store_free(d->store);
	if (d->lock_fd >= 0)
		close(d->lock_fd);
	sodium_memzero(d->beacon_key, sizeof(d->beacon_key));
	if (r == 0)
		zila_log(ZILA_LOG_INFO, "stopped");
	free(d);
	return r;
}
