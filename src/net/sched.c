/* The daemon's scheduling policy (zila/sched.h): whom to dial, when, with what backoff, what
 * to relay, which beacons to believe and when to forget a LAN peer. Pure: no libuv, no
 * sockets, no clock reads; the caller passes the time in and carries the decisions out. */
#include "zila/sched.h"

#include <stdio.h>
#include <string.h>

void zila_backoff_init(struct zila_backoff *b, uint32_t base_ms, uint32_t max_ms)
{
	b->base_ms = base_ms;
	b->max_ms = max_ms < base_ms ? base_ms : max_ms;
	b->failures = 0;
}

uint32_t zila_backoff_fail(struct zila_backoff *b, uint32_t rnd)
{
	uint64_t d = b->base_ms;
	if (b->failures < 63)
		b->failures++;
	for (unsigned i = 1; i < b->failures && d < b->max_ms; i++)
		d *= 2;
	if (d > b->max_ms)
		d = b->max_ms;
	/* Equal jitter: laptops that lost HQ together do not come back together. */
	uint64_t half = d / 2;
	return (uint32_t)(d - half + (half ? rnd % (half + 1) : 0));
}

void zila_backoff_reset(struct zila_backoff *b)
{
	b->failures = 0;
}

/* --- peers ------------------------------------------------------------------------------- */

void zila_sched_init(struct zila_sched *s, const struct zila_sched_config *cfg)
{
	memset(s, 0, sizeof(*s));
	s->cfg = *cfg;
	if (s->cfg.max_sessions == 0)
		s->cfg.max_sessions = 64;
	if (s->cfg.lan_max == 0)
		s->cfg.lan_max = ZILA_SCHED_LAN_MAX;
	if (s->cfg.beacon_interval_ms == 0)
		s->cfg.beacon_interval_ms = ZILA_SCHED_BEACON_INTERVAL_MS;
}

const char *zila_sched_source_name(enum zila_sched_source src)
{
	return src == ZILA_SCHED_HQ ? "hq" : src == ZILA_SCHED_LAN ? "lan" : "config";
}

void zila_sched_release(struct zila_sched *s)
{
	while (s->peers != NULL)
		zila_sched_remove(s, s->peers);
}

void zila_sched_set_identity(struct zila_sched *s, bool enrolled, bool joining)
{
	s->enrolled = enrolled;
	s->joining = joining;
}

struct zila_sched_peer *zila_sched_find(struct zila_sched *s, const char *addr)
{
	for (struct zila_sched_peer *p = s->peers; p != NULL; p = p->next)
		if (strcmp(p->addr, addr) == 0)
			return p;
	return NULL;
}

static struct zila_sched_peer *peer_new(struct zila_sched *s, const char *addr, enum zila_sched_source src)
{
	struct zila_sched_peer *p = s->cfg.alloc(s->cfg.ctx), **pp = &s->peers;
	if (p == NULL)
		return NULL;
	snprintf(p->addr, sizeof(p->addr), "%s", addr);
	p->source = src;
	p->want = true;
	zila_backoff_init(&p->backoff, ZILA_SCHED_BACKOFF_BASE_MS, ZILA_SCHED_BACKOFF_MAX_MS);
	while (*pp != NULL)
		pp = &(*pp)->next;
	*pp = p;
	if (src == ZILA_SCHED_LAN)
		s->nlan++;
	return p;
}

static void set_source(struct zila_sched *s, struct zila_sched_peer *p, enum zila_sched_source src)
{
	if (p->source == ZILA_SCHED_LAN && src != ZILA_SCHED_LAN)
		s->nlan--;
	else if (p->source != ZILA_SCHED_LAN && src == ZILA_SCHED_LAN)
		s->nlan++;
	p->source = src;
}

struct zila_sched_peer *zila_sched_add(struct zila_sched *s, const char *addr, enum zila_sched_source src,
				       uint64_t now_ms)
{
	struct zila_sched_peer *p = zila_sched_find(s, addr);
	(void)now_ms;
	if (p == NULL && (p = peer_new(s, addr, src)) == NULL)
		return NULL;
	/* Configured by hand (or HQ): dialled for ever, whatever a beacon said of it. */
	if (src != ZILA_SCHED_LAN || p->source == ZILA_SCHED_LAN)
		set_source(s, p, src);
	if (src == ZILA_SCHED_HQ)
		s->hq = p;
	else if (s->hq == p)
		s->hq = NULL;
	return p;
}

void zila_sched_remove(struct zila_sched *s, struct zila_sched_peer *p)
{
	for (struct zila_sched_peer **pp = &s->peers; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	if (p->source == ZILA_SCHED_LAN)
		s->nlan--;
	if (s->hq == p)
		s->hq = NULL;
	s->cfg.release(s->cfg.ctx, p);
}

static uint64_t lan_age_ms(const struct zila_sched *s)
{
	return (uint64_t)s->cfg.beacon_interval_ms * ZILA_SCHED_LAN_AGE_BEACONS;
}

bool zila_sched_fresh(const struct zila_sched *s, const struct zila_sched_peer *p, uint64_t now_ms)
{
	return p->source != ZILA_SCHED_LAN || now_ms - p->heard_ms <= lan_age_ms(s);
}

/* LAN peers not heard for ZILA_SCHED_LAN_AGE_BEACONS intervals are forgotten (not while a
 * connection to them runs: they go once it ends). */
static void forget_aged(struct zila_sched *s, uint64_t now_ms)
{
	for (struct zila_sched_peer *p = s->peers, *n; p != NULL; p = n) {
		n = p->next;
		if (!p->dialing && !zila_sched_fresh(s, p, now_ms))
			zila_sched_remove(s, p);
	}
}

/* --- dialling ------------------------------------------------------------------------------ */

struct zila_sched_peer *zila_sched_next(struct zila_sched *s, uint64_t now_ms, unsigned nsessions, uint64_t *wake_ms)
{
	/* HQ first, then the peers configured by hand, then LAN peers; each in the order added. */
	static const enum zila_sched_source order[] = { ZILA_SCHED_HQ, ZILA_SCHED_CONFIG, ZILA_SCHED_LAN };
	*wake_ms = UINT64_MAX;
	forget_aged(s, now_ms);
	if (nsessions >= s->cfg.max_sessions)
		return NULL; /* a session that ends calls again */
	for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
		for (struct zila_sched_peer *p = s->peers; p != NULL; p = p->next) {
			if (p->source != order[k] || !p->want || p->dialing)
				continue;
			if (!s->enrolled && !(p == s->hq && s->joining))
				continue;
			if (p->has_device && s->cfg.device_busy != NULL && s->cfg.device_busy(s->cfg.ctx, p->device))
				continue; /* it dialled us: its turn comes when that session ends */
			if (now_ms < p->next_ms) {
				if (p->next_ms < *wake_ms)
					*wake_ms = p->next_ms;
				continue;
			}
			p->dialing = true;
			return p;
		}
	}
	return NULL;
}

void zila_sched_unusable(struct zila_sched *s, struct zila_sched_peer *p)
{
	(void)s;
	p->dialing = false;
	p->want = false;
}

void zila_sched_want_now(struct zila_sched *s, struct zila_sched_peer *p)
{
	(void)s;
	if (p->dialing) {
		p->again = true;
	} else {
		p->want = true;
		p->next_ms = 0;
		zila_backoff_reset(&p->backoff);
	}
}

size_t zila_sched_want_all(struct zila_sched *s, const uint8_t *except_device, uint64_t now_ms,
			   bool (*skip)(void *ctx, const struct zila_sched_peer *p), void *ctx)
{
	size_t n = 0;
	for (struct zila_sched_peer *p = s->peers; p != NULL; p = p->next) {
		if (except_device != NULL && p->has_device && memcmp(p->device, except_device, 32) == 0)
			continue;
		if (!zila_sched_fresh(s, p, now_ms))
			continue;
		if (skip != NULL && skip(ctx, p))
			continue;
		if (p->dialing)
			p->again = true;
		else
			p->want = true;
		n++;
	}
	return n;
}

bool zila_sched_covered(enum zila_sched_conn conn, int64_t offered, int64_t own, bool pending)
{
	if (own < 0)
		return false;
	/* A session not started yet takes everything there is when it starts (the race seen in
	 * test_daemon: a notice during another's handshake or close made a second session). */
	if (conn == ZILA_SCHED_CONN_STARTING)
		return true;
	return !pending && offered >= own;
}

size_t zila_sched_relay(struct zila_sched *s, const uint8_t from_device[32], uint64_t applied, uint64_t trust,
			uint64_t now_ms)
{
	/* What came from this peer goes on to the others; a session that brought nothing new
	 * (in step, or only duplicates) wakes nobody. */
	if (applied == 0 && trust == 0)
		return 0;
	return zila_sched_want_all(s, from_device, now_ms, NULL, NULL);
}

void zila_sched_net_changed(struct zila_sched *s)
{
	if (s->hq == NULL)
		return;
	zila_backoff_reset(&s->hq->backoff);
	s->hq->next_ms = 0;
	s->hq->want = true;
}

/* Takes one line from budget b (burst lines per ZILA_SCHED_LOG_EVERY_MS): true, *nquiet
 * then being the lines not taken since; false when spent (counted). */
static bool budget_take(struct zila_sched_budget *b, uint64_t now_ms, unsigned burst, uint64_t *nquiet)
{
	if (!b->open || now_ms - b->start_ms >= ZILA_SCHED_LOG_EVERY_MS) {
		b->open = true;
		b->start_ms = now_ms;
		b->n = 0;
	}
	if (b->n >= burst) {
		b->nquiet++;
		return false;
	}
	b->n++;
	*nquiet = b->nquiet;
	b->nquiet = 0;
	return true;
}

bool zila_sched_log_failure(struct zila_sched *s, struct zila_sched_peer *p, uint64_t now_ms, uint64_t *nquiet,
			    uint64_t *nquiet_lan)
{
	*nquiet = *nquiet_lan = 0;
	if (p->logged && now_ms - p->logged_ms < ZILA_SCHED_LOG_EVERY_MS) {
		p->nquiet++;
		return false;
	}
	/* Made-up peers come and go (forgotten, pushed out): a budget for all of them. */
	if (p->source == ZILA_SCHED_LAN && !p->verified &&
	    !budget_take(&s->lan_fail_log, now_ms, ZILA_SCHED_LOG_LAN_BURST, nquiet_lan))
		return false;
	*nquiet = p->nquiet;
	p->nquiet = 0;
	p->logged = true;
	p->logged_ms = now_ms;
	return true;
}

void zila_sched_ended(struct zila_sched *s, struct zila_sched_peer *p, const struct zila_sched_result *r,
		      uint64_t now_ms, struct zila_sched_after *out)
{
	memset(out, 0, sizeof(*out));
	p->dialing = false;
	if (r->handshake)
		p->verified = true;
	if (r->duplicate)
		return; /* the other session with the device stands for this one */
	if (r->peer_locked)
		p->peer_locked = true;
	if (r->joined) {
		p->again = true; /* sync as a member at once */
		p->next_ms = 0;
	}
	if (!r->ok && r->ref_failed && p->busy_retries < ZILA_SCHED_BUSY_RETRIES) {
		/* The next session sends keys whole: nothing to wait for. */
		p->busy_retries++;
		p->want = true;
		p->next_ms = now_ms;
		out->busy_retry = true;
		return;
	}
	if (!r->ok && r->busy_refused && p->busy_retries < ZILA_SCHED_BUSY_RETRIES) {
		/* Turned away unanswered right after a completed sync: the peer is busy for a
		 * moment. Try again soon; a user waiting for this sync waits for that one. */
		p->busy_retries++;
		p->want = true;
		p->next_ms = now_ms + ZILA_SCHED_BUSY_RETRY_MS;
		out->busy_retry = true;
		out->delay_ms = ZILA_SCHED_BUSY_RETRY_MS;
		return;
	}
	if (r->ok) {
		p->busy_retries = 0;
		zila_backoff_reset(&p->backoff);
		p->want = p->again;
		p->again = false;
		if (p->peer_locked) {
			p->peer_locked = false;
			p->want = true;
			out->once_more = true;
		}
		p->ok_ms = now_ms;
		p->next_ms = 0;
		p->logged = false;
		p->nquiet = 0;
		return;
	}
	uint32_t delay = zila_backoff_fail(&p->backoff, r->rnd);
	if (r->local_fault && delay > ZILA_SCHED_STORE_RETRY_MAX_MS)
		delay = ZILA_SCHED_STORE_RETRY_MAX_MS;
	p->next_ms = now_ms + delay;
	out->delay_ms = delay;
	/* HQ and configured peers are retried for ever; a LAN peer that left gives up. */
	if (p->source == ZILA_SCHED_LAN && p->backoff.failures >= ZILA_SCHED_LAN_GIVE_UP) {
		p->want = false;
		out->gave_up = true;
	}
	/* A dial that reached nobody of ours is worth a line now and then, not each time. */
	if (r->handshake)
		out->log = true;
	else
		out->log = zila_sched_log_failure(s, p, now_ms, &out->nquiet, &out->nquiet_lan);
}

/* --- LAN peers ------------------------------------------------------------------------------ */

void zila_sched_set_nets(struct zila_sched *s, const struct zila_sched_net *nets, size_t n)
{
	s->nnets = n < ZILA_SCHED_NETS_MAX ? n : ZILA_SCHED_NETS_MAX;
	memcpy(s->nets, nets, s->nnets * sizeof(*nets));
}

bool zila_sched_on_net(const struct zila_sched *s, uint32_t ip)
{
	for (size_t i = 0; i < s->nnets; i++)
		if ((ip & s->nets[i].mask) == (s->nets[i].addr & s->nets[i].mask))
			return true;
	return false;
}

/* The LAN peer to drop for a newcomer: the one heard longest ago whose address no handshake
 * proved and that no connection uses; NULL when every one is proven. */
static struct zila_sched_peer *evictable(struct zila_sched *s)
{
	struct zila_sched_peer *v = NULL;
	for (struct zila_sched_peer *p = s->peers; p != NULL; p = p->next)
		if (p->source == ZILA_SCHED_LAN && !p->verified && !p->dialing && (v == NULL || p->heard_ms < v->heard_ms))
			v = p;
	return v;
}

void zila_sched_heard(struct zila_sched *s, const struct zila_sched_beacon *b, uint64_t now_ms,
		      struct zila_sched_heard *out)
{
	char addr[32];
	struct zila_sched_peer *p = NULL;
	memset(out, 0, sizeof(*out));
	/* Only the source is dialled, and only a source on a network we are on: a forged
	 * source elsewhere would have us dial any host. */
	if (!zila_sched_on_net(s, b->ip)) {
		out->result = ZILA_SCHED_HEARD_OFFNET;
		return;
	}
	snprintf(addr, sizeof(addr), "%u.%u.%u.%u:%u", (unsigned)(b->ip >> 24), (unsigned)(b->ip >> 16 & 255),
		 (unsigned)(b->ip >> 8 & 255), (unsigned)(b->ip & 255), (unsigned)b->port);
	forget_aged(s, now_ms);
	/* A configured peer's device is known from a handshake only; a LAN peer's from beacons. */
	for (struct zila_sched_peer *x = s->peers; x != NULL && p == NULL; x = x->next)
		if (x->has_device && memcmp(x->device, b->device, 32) == 0)
			p = x;
	if (p == NULL)
		p = zila_sched_find(s, addr);
	bool fresh = p == NULL || now_ms - p->heard_ms > lan_age_ms(s);
	if (p == NULL) {
		if (s->nlan >= s->cfg.lan_max) {
			struct zila_sched_peer *v = evictable(s);
			if (v == NULL) {
				out->result = ZILA_SCHED_HEARD_FULL;
				return;
			}
			zila_sched_remove(s, v);
			out->evicted = true;
		}
		if ((p = peer_new(s, addr, ZILA_SCHED_LAN)) == NULL) {
			out->result = ZILA_SCHED_HEARD_NOMEM;
			return;
		}
		p->want = false;
		out->result = ZILA_SCHED_HEARD_NEW;
		out->log = budget_take(&s->lan_found_log, now_ms, ZILA_SCHED_LOG_LAN_BURST, &out->nquiet);
	} else {
		out->result = ZILA_SCHED_HEARD_KNOWN;
	}
	out->peer = p;
	if (p->source == ZILA_SCHED_LAN) {
		/* A laptop that moved: the new address is not proven until a handshake there. */
		if (strcmp(p->addr, addr) != 0 && !p->dialing) {
			snprintf(p->addr, sizeof(p->addr), "%s", addr);
			p->verified = false;
		}
		/* A device named by a beacon only: a handshake at the address proves it. */
		p->has_device = true;
		memcpy(p->device, b->device, 32);
	}
	p->heard_ms = now_ms;
	/* Sync with a newly heard peer, and again when the last sync is old; the lower key dials
	 * so that two laptops do not dial each other at once. */
	bool due = fresh || p->ok_ms == 0 || now_ms - p->ok_ms > ZILA_SCHED_RESYNC_MS;
	if (due && memcmp(s->cfg.self, b->device, 32) < 0 && !p->dialing) {
		p->want = true;
		if (fresh) {
			zila_backoff_reset(&p->backoff);
			p->next_ms = 0;
		}
		out->dial = true;
	}
}

void zila_sched_reached(struct zila_sched *s, struct zila_sched_peer *p, const uint8_t device[32])
{
	(void)s;
	p->has_device = true;
	memcpy(p->device, device, 32);
	p->verified = true;
	p->logged = false;
	p->nquiet = 0;
}
