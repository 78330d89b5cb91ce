/* Unit tests of the daemon's scheduling policy (zila/sched.h), driven without an event loop:
 * dialling order and the session cap, backoff growth and reset, busy retries, relay, LAN
 * peers from beacons (source network, who dials, the cap, ageing) and failed-dial logging. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "zila/sched.h"

static const uint64_t T0 = 1000000; /* ms of the test's monotonic clock */

struct world {
	size_t nalloc, nfree;
	uint8_t busy[32]; /* a device with a session running, all zero: none */
};

static struct zila_sched_peer *w_alloc(void *ctx)
{
	struct world *w = ctx;
	w->nalloc++;
	return calloc(1, sizeof(struct zila_sched_peer));
}

static void w_release(void *ctx, struct zila_sched_peer *p)
{
	struct world *w = ctx;
	w->nfree++;
	free(p);
}

static bool w_busy(void *ctx, const uint8_t device[32])
{
	struct world *w = ctx;
	return memcmp(w->busy, device, 32) == 0;
}

/* A member with device key 0x80.. on 10.0.0.0/24 and 127.0.0.0/8. */
static void setup(struct zila_sched *s, struct world *w, unsigned max_sessions)
{
	struct zila_sched_config cfg;
	const struct zila_sched_net nets[] = { { 0x0a000005, 0xffffff00 }, { 0x7f000001, 0xff000000 } };
	memset(w, 0, sizeof(*w));
	memset(&cfg, 0, sizeof(cfg));
	memset(cfg.self, 0x80, 32);
	cfg.max_sessions = max_sessions;
	cfg.alloc = w_alloc;
	cfg.release = w_release;
	cfg.device_busy = w_busy;
	cfg.ctx = w;
	zila_sched_init(s, &cfg);
	zila_sched_set_identity(s, true, false);
	zila_sched_set_nets(s, nets, 2);
}

static void teardown(struct zila_sched *s, struct world *w)
{
	zila_sched_release(s);
	assert_int_equal(w->nalloc, w->nfree);
}

/* Each test's scheduler: a member allowing 64 sessions (setup again for other caps). */
struct fixture {
	struct zila_sched s;
	struct world w;
};

static int fx_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -1;
	setup(&f->s, &f->w, 0);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fixture *f = *state;
	teardown(&f->s, &f->w);
	free(f);
	return 0;
}

static struct zila_sched_result failed(void)
{
	struct zila_sched_result r;
	memset(&r, 0, sizeof(r));
	return r;
}

static struct zila_sched_result completed(void)
{
	struct zila_sched_result r = failed();
	r.ok = r.handshake = true;
	return r;
}

/* Ends p's connection with r at now. */
static struct zila_sched_after end(struct zila_sched *s, struct zila_sched_peer *p, struct zila_sched_result r,
				   uint64_t now)
{
	struct zila_sched_after a;
	zila_sched_ended(s, p, &r, now, &a);
	return a;
}

/* A beacon of device key dev from ip:port (IPv4, host byte order). */
static struct zila_sched_heard hear_dev(struct zila_sched *s, const uint8_t dev[32], uint32_t ip, uint16_t port,
					uint64_t now)
{
	struct zila_sched_heard h;
	struct zila_sched_beacon b = { dev, ip, port };
	zila_sched_heard(s, &b, now, &h);
	return h;
}

/* The same, the device key being 32 bytes `who`. */
static struct zila_sched_heard hear(struct zila_sched *s, uint8_t who, uint32_t ip, uint16_t port, uint64_t now)
{
	uint8_t dev[32];
	memset(dev, who, 32);
	return hear_dev(s, dev, ip, port, now);
}

static size_t npeers(const struct zila_sched *s, enum zila_sched_source src)
{
	size_t n = 0;
	for (const struct zila_sched_peer *p = s->peers; p != NULL; p = p->next)
		n += p->source == src;
	return n;
}

static void test_backoff(void **state)
{
	(void)state;
	struct zila_backoff b;
	zila_backoff_init(&b, 1000, 300000);
	uint32_t lo[] = { 500, 1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 150000, 150000 };
	uint32_t hi[] = { 1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 256000, 300000, 300000 };
	for (size_t i = 0; i < sizeof(lo) / sizeof(lo[0]); i++) {
		uint32_t d = zila_backoff_fail(&b, randombytes_random());
		assert_true(d >= lo[i] && d <= hi[i]);
	}
	/* Jitter spreads the delays. */
	uint32_t a = zila_backoff_fail(&b, 0), c = zila_backoff_fail(&b, 149999);
	assert_int_equal(a, 150000);
	assert_int_equal(c, 299999);
	for (int i = 0; i < 100; i++)
		assert_true(zila_backoff_fail(&b, randombytes_random()) <= 300000);
	zila_backoff_reset(&b);
	assert_true(zila_backoff_fail(&b, 0) == 500);
}

static void test_dial_order_and_cap(void **state)
{
	struct fixture *f = *state;
	struct zila_sched *s = &f->s;
	struct world *w = &f->w;
	uint64_t wake;
	zila_sched_release(s);
	setup(s, w, 3);
	struct zila_sched_heard h = hear(s, 0x90, 0x0a000007, 7400, T0);
	assert_int_equal(h.result, ZILA_SCHED_HEARD_NEW);
	assert_true(h.dial);
	struct zila_sched_peer *c1 = zila_sched_add(s, "10.0.0.2:7400", ZILA_SCHED_CONFIG, T0);
	struct zila_sched_peer *hq = zila_sched_add(s, "hq.example:7400", ZILA_SCHED_HQ, T0);
	struct zila_sched_peer *c2 = zila_sched_add(s, "10.0.0.3:7400", ZILA_SCHED_CONFIG, T0);
	assert_ptr_equal(s->hq, hq);
	/* HQ first, then configured peers in the order added, then the LAN peer. */
	assert_ptr_equal(zila_sched_next(s, T0, 0, &wake), hq);
	assert_ptr_equal(zila_sched_next(s, T0, 1, &wake), c1);
	assert_ptr_equal(zila_sched_next(s, T0, 2, &wake), c2);
	/* The session cap: three run, the LAN peer waits for one to end. */
	assert_null(zila_sched_next(s, T0, 3, &wake));
	assert_true(hq->dialing && c1->dialing && c2->dialing && !h.peer->dialing);
	end(s, c1, completed(), T0 + 10);
	assert_ptr_equal(zila_sched_next(s, T0 + 10, 2, &wake), h.peer);
	assert_null(zila_sched_next(s, T0 + 10, 3, &wake));
	assert_true(wake == UINT64_MAX);
	/* A peer that dialled us (a session with its device runs) is not dialled meanwhile. */
	end(s, h.peer, completed(), T0 + 20);
	zila_sched_want_now(s, h.peer);
	memset(w->busy, 0x90, 32);
	assert_null(zila_sched_next(s, T0 + 20, 2, &wake));
	memset(w->busy, 0, 32);
	assert_ptr_equal(zila_sched_next(s, T0 + 20, 2, &wake), h.peer);
	/* The same address added again is the same peer; configuring it by hand keeps it. */
	assert_ptr_equal(zila_sched_add(s, "10.0.0.7:7400", ZILA_SCHED_CONFIG, T0), h.peer);
	assert_int_equal(h.peer->source, ZILA_SCHED_CONFIG);
	assert_int_equal(s->nlan, 0);
}

static void test_not_enrolled(void **state)
{
	struct fixture *f = *state;
	struct zila_sched *s = &f->s;
	uint64_t wake;
	zila_sched_set_identity(s, false, false);
	struct zila_sched_peer *c = zila_sched_add(s, "10.0.0.2:7400", ZILA_SCHED_CONFIG, T0);
	struct zila_sched_peer *hq = zila_sched_add(s, "10.0.0.1:7400", ZILA_SCHED_HQ, T0);
	assert_null(zila_sched_next(s, T0, 0, &wake)); /* a device not enrolled syncs with nobody */
	zila_sched_set_identity(s, false, true);
	assert_ptr_equal(zila_sched_next(s, T0, 0, &wake), hq); /* joining: HQ only */
	assert_null(zila_sched_next(s, T0, 1, &wake));
	/* The join completed: HQ is synced with as a member at once. */
	struct zila_sched_result r = completed();
	r.joined = true;
	end(s, hq, r, T0 + 5);
	zila_sched_set_identity(s, true, false);
	assert_ptr_equal(zila_sched_next(s, T0 + 5, 0, &wake), hq);
	assert_ptr_equal(zila_sched_next(s, T0 + 5, 1, &wake), c);
}

static void test_backoff_growth_and_reset(void **state)
{
	struct fixture *f = *state;
	struct zila_sched *s = &f->s;
	uint64_t wake, now = T0;
	struct zila_sched_peer *hq = zila_sched_add(s, "10.0.0.1:7400", ZILA_SCHED_HQ, T0);
	struct zila_sched_result r = failed();
	uint32_t prev = 0;
	for (int i = 0; i < 12; i++) {
		assert_ptr_equal(zila_sched_next(s, now, 0, &wake), hq);
		r.rnd = UINT32_MAX; /* the top of each jitter range: the delay doubles until the cap */
		struct zila_sched_after a = end(s, hq, r, now);
		uint32_t want = 1000u << i;
		if (want > ZILA_SCHED_BACKOFF_MAX_MS || i > 10)
			want = ZILA_SCHED_BACKOFF_MAX_MS;
		assert_true(a.delay_ms >= want / 2 && a.delay_ms <= want);
		assert_true(a.delay_ms >= prev / 2);
		prev = a.delay_ms;
		assert_true(hq->want && !a.gave_up); /* HQ is retried for ever */
		/* Not before the delay: the caller is told when to look again. */
		assert_null(zila_sched_next(s, now + a.delay_ms - 1, 0, &wake));
		assert_true(wake == now + a.delay_ms);
		now += a.delay_ms;
	}
	assert_int_equal(prev, ZILA_SCHED_BACKOFF_MAX_MS / 2 + UINT32_MAX % (ZILA_SCHED_BACKOFF_MAX_MS / 2 + 1));
	/* A completed session resets it: the next failure waits a second at most. */
	assert_ptr_equal(zila_sched_next(s, now, 0, &wake), hq);
	struct zila_sched_after a = end(s, hq, completed(), now);
	assert_int_equal(a.delay_ms, 0);
	assert_false(hq->want); /* nothing more wanted */
	zila_sched_want_now(s, hq);
	assert_ptr_equal(zila_sched_next(s, now, 0, &wake), hq);
	a = end(s, hq, failed(), now);
	assert_true(a.delay_ms >= 500 && a.delay_ms <= 1000);
	/* Asked for by hand (zila sync), or the network changed: at once, backoff reset. */
	for (int i = 0; i < 5; i++) {
		now += 400000;
		assert_ptr_equal(zila_sched_next(s, now, 0, &wake), hq);
		end(s, hq, failed(), now);
	}
	assert_null(zila_sched_next(s, now, 0, &wake));
	zila_sched_net_changed(s);
	assert_ptr_equal(zila_sched_next(s, now, 0, &wake), hq);
	a = end(s, hq, failed(), now);
	assert_true(a.delay_ms <= 1000);
	/* Wanted again while a session runs: dialled again once it ends. */
	now += 2000;
	assert_ptr_equal(zila_sched_next(s, now, 0, &wake), hq);
	zila_sched_want_now(s, hq);
	assert_true(hq->again);
	end(s, hq, completed(), now);
	assert_true(hq->want && !hq->again);
	assert_ptr_equal(zila_sched_next(s, now, 0, &wake), hq);
	/* Our own replica's trouble is retried within 30 s whatever the backoff. */
	struct zila_sched_result lf = failed();
	lf.local_fault = true;
	lf.rnd = UINT32_MAX;
	hq->backoff.failures = 20;
	a = end(s, hq, lf, now);
	assert_int_equal(a.delay_ms, ZILA_SCHED_STORE_RETRY_MAX_MS);
}

static void test_busy_and_duplicate(void **state)
{
	struct fixture *f = *state;
	struct zila_sched *s = &f->s;
	uint64_t wake;
	struct zila_sched_peer *p = zila_sched_add(s, "10.0.0.2:7400", ZILA_SCHED_CONFIG, T0);
	struct zila_sched_result busy = failed();
	busy.busy_refused = true;
	for (unsigned i = 0; i < ZILA_SCHED_BUSY_RETRIES; i++) {
		assert_ptr_equal(zila_sched_next(s, T0 + i * 2000, 0, &wake), p);
		struct zila_sched_after a = end(s, p, busy, T0 + i * 2000);
		assert_true(a.busy_retry);
		assert_int_equal(a.delay_ms, ZILA_SCHED_BUSY_RETRY_MS);
		assert_int_equal(p->backoff.failures, 0);
	}
	/* Quick retries are few: then the backoff as for any failure. */
	assert_ptr_equal(zila_sched_next(s, T0 + 20000, 0, &wake), p);
	struct zila_sched_after a = end(s, p, busy, T0 + 20000);
	assert_false(a.busy_retry);
	assert_int_equal(p->backoff.failures, 1);
	/* Closed for another session with the device: not a result, nothing changes. */
	assert_ptr_equal(zila_sched_next(s, T0 + 30000, 0, &wake), p);
	struct zila_sched_result dup = failed();
	dup.duplicate = true;
	a = end(s, p, dup, T0 + 30000);
	assert_int_equal(a.delay_ms, 0);
	assert_int_equal(p->backoff.failures, 1);
	assert_false(p->dialing);
}

static bool skip_c(void *ctx, const struct zila_sched_peer *p)
{
	return p == ctx;
}

static void test_relay(void **state)
{
	struct fixture *f = *state;
	struct zila_sched *s = &f->s;
	uint64_t wake;
	struct zila_sched_peer *hq = zila_sched_add(s, "10.0.0.1:7400", ZILA_SCHED_HQ, T0);
	struct zila_sched_peer *c = zila_sched_add(s, "10.0.0.2:7400", ZILA_SCHED_CONFIG, T0);
	struct zila_sched_peer *old = hear(s, 0x91, 0x0a000008, 7400, T0 - 170000).peer;
	struct zila_sched_peer *a = hear(s, 0x90, 0x0a000007, 7400, T0).peer;
	uint8_t from[32];
	memset(from, 0x90, 32);
	for (struct zila_sched_peer *p = s->peers; p != NULL; p = p->next)
		p->want = false;
	/* A session that brought nothing new wakes nobody. */
	assert_int_equal(zila_sched_relay(s, from, 0, 0, T0), 0);
	assert_null(zila_sched_next(s, T0, 0, &wake));
	/* HQ runs a session: it is synced again after it. */
	zila_sched_want_now(s, hq);
	assert_ptr_equal(zila_sched_next(s, T0, 0, &wake), hq);
	/* Entries from a: on to HQ (again) and c, not back to a; the LAN peer not heard for
	 * almost its age is still wanted, one past its age is not. */
	assert_int_equal(zila_sched_relay(s, from, 5, 0, T0 + 5000), 3);
	assert_true(hq->again && c->want && old->want);
	assert_false(a->want);
	/* Trust records alone are relayed too. */
	c->want = old->want = hq->again = false;
	assert_int_equal(zila_sched_relay(s, from, 0, 1, T0 + 20000), 2);
	assert_false(old->want); /* past its age */
	/* want_all: every fresh peer but those the caller skips. */
	c->want = hq->again = false;
	assert_int_equal(zila_sched_want_all(s, NULL, T0 + 20000, skip_c, c), 2);
	assert_true(hq->again && a->want && !c->want);
}

static void test_lan_beacons(void **state)
{
	struct fixture *f = *state;
	struct zila_sched *s = &f->s;
	uint64_t wake;
	/* A forged source outside our networks: nothing learnt, nobody dialled. */
	struct zila_sched_heard h = hear(s, 0x90, 0xc0a80101, 22, T0);
	assert_int_equal(h.result, ZILA_SCHED_HEARD_OFFNET);
	assert_null(s->peers);
	assert_false(zila_sched_on_net(s, 0x0a000105));
	assert_true(zila_sched_on_net(s, 0x0a0000fe));
	assert_true(zila_sched_on_net(s, 0x7f000001));
	/* A higher key: we dial it, at the beacon's source address and the port it names. */
	h = hear(s, 0x90, 0x0a000007, 7400, T0);
	assert_int_equal(h.result, ZILA_SCHED_HEARD_NEW);
	assert_true(h.dial);
	assert_string_equal(h.peer->addr, "10.0.0.7:7400");
	assert_false(h.peer->verified);
	/* A lower key dials us: known, not dialled. */
	h = hear(s, 0x10, 0x0a000008, 7400, T0);
	assert_int_equal(h.result, ZILA_SCHED_HEARD_NEW);
	assert_false(h.dial);
	assert_false(h.peer->want);
	/* Heard again soon after a completed sync: no new sync. */
	struct zila_sched_peer *p = zila_sched_next(s, T0, 0, &wake);
	assert_string_equal(p->addr, "10.0.0.7:7400");
	uint8_t dev[32];
	memset(dev, 0x90, 32);
	zila_sched_reached(s, p, dev);
	end(s, p, completed(), T0 + 100);
	h = hear(s, 0x90, 0x0a000007, 7400, T0 + 30000);
	assert_int_equal(h.result, ZILA_SCHED_HEARD_KNOWN);
	assert_false(h.dial);
	assert_true(p->verified);
	/* ...and again once the last sync is old (it beacons every 30 s meanwhile). */
	for (uint64_t t = T0 + 60000; t < T0 + 100 + ZILA_SCHED_RESYNC_MS; t += 30000)
		assert_false(hear(s, 0x90, 0x0a000007, 7400, t).dial);
	h = hear(s, 0x90, 0x0a000007, 7400, T0 + 100 + ZILA_SCHED_RESYNC_MS + 1);
	assert_true(h.dial);
	/* The device moved (DHCP): followed, but the new address is not proven. */
	h = hear(s, 0x90, 0x0a000009, 7401, T0 + 400000);
	assert_ptr_equal(h.peer, p);
	assert_string_equal(p->addr, "10.0.0.9:7401");
	assert_false(p->verified);
	/* A beacon at a configured peer's address does not make it a LAN peer. */
	struct zila_sched_peer *c = zila_sched_add(s, "10.0.0.2:7400", ZILA_SCHED_CONFIG, T0);
	h = hear(s, 0x95, 0x0a000002, 7400, T0 + 400000);
	assert_ptr_equal(h.peer, c);
	assert_int_equal(c->source, ZILA_SCHED_CONFIG);
	assert_false(c->has_device); /* only a handshake names its device */
	/* A peer configured by name whose handshake named its device: its beacons are its own,
	 * not a new LAN peer's. */
	struct zila_sched_peer *named = zila_sched_add(s, "office.example:7400", ZILA_SCHED_CONFIG, T0);
	memset(dev, 0x96, 32);
	zila_sched_reached(s, named, dev);
	size_t nlan = s->nlan;
	h = hear(s, 0x96, 0x0a00000c, 7400, T0 + 400000);
	assert_int_equal(h.result, ZILA_SCHED_HEARD_KNOWN);
	assert_ptr_equal(h.peer, named);
	assert_string_equal(named->addr, "office.example:7400");
	assert_int_equal(s->nlan, nlan);
}

static void test_lan_failures_give_up(void **state)
{
	struct fixture *f = *state;
	struct zila_sched *s = &f->s;
	uint64_t wake, now = T0;
	struct zila_sched_peer *p = hear(s, 0x90, 0x0a000007, 7400, now).peer;
	for (unsigned i = 1; i <= ZILA_SCHED_LAN_GIVE_UP; i++) {
		assert_ptr_equal(zila_sched_next(s, now, 0, &wake), p);
		struct zila_sched_after a = end(s, p, failed(), now);
		assert_true(a.gave_up == (i == ZILA_SCHED_LAN_GIVE_UP));
		now += a.delay_ms;
	}
	assert_false(p->want);
	assert_null(zila_sched_next(s, now + 10000, 0, &wake));
}

static void test_lan_ageing(void **state)
{
	struct fixture *f = *state;
	struct zila_sched *s = &f->s;
	struct world *w = &f->w;
	uint64_t wake;
	const uint64_t age = (uint64_t)ZILA_SCHED_BEACON_INTERVAL_MS * ZILA_SCHED_LAN_AGE_BEACONS;
	struct zila_sched_peer *a = hear(s, 0x90, 0x0a000007, 7400, T0).peer;
	struct zila_sched_peer *b = hear(s, 0x91, 0x0a000008, 7400, T0).peer;
	zila_sched_add(s, "10.0.0.2:7400", ZILA_SCHED_CONFIG, T0);
	/* b keeps beaconing; a falls silent. a is dialled while it was heard lately. */
	hear(s, 0x91, 0x0a000008, 7400, T0 + age);
	assert_int_equal(zila_sched_next(s, T0 + age, 0, &wake)->source, ZILA_SCHED_CONFIG);
	assert_ptr_equal(zila_sched_next(s, T0 + age, 1, &wake), a);
	/* Past its age while our dial to it runs: kept until that ends. */
	assert_ptr_equal(zila_sched_next(s, T0 + age + 1, 2, &wake), b);
	assert_int_equal(npeers(s, ZILA_SCHED_LAN), 2);
	end(s, a, failed(), T0 + age + 1);
	/* Then forgotten; b (heard) and the configured peer stay. */
	assert_null(zila_sched_next(s, T0 + age + 2, 2, &wake));
	assert_int_equal(npeers(s, ZILA_SCHED_LAN), 1);
	assert_int_equal(s->nlan, 1);
	assert_int_equal(npeers(s, ZILA_SCHED_CONFIG), 1);
	assert_int_equal(w->nfree, 1);
	assert_ptr_equal(s->peers, b);
	/* Heard again later: a new peer, dialled afresh. */
	struct zila_sched_heard h = hear(s, 0x90, 0x0a000007, 7400, T0 + 2 * age);
	assert_int_equal(h.result, ZILA_SCHED_HEARD_NEW);
	assert_true(h.dial);
}

static void test_lan_cap(void **state)
{
	struct fixture *f = *state;
	struct zila_sched *s = &f->s;
	uint64_t wake;
	zila_sched_add(s, "10.0.0.2:7400", ZILA_SCHED_CONFIG, T0);
	/* Beacons from ZILA_SCHED_LAN_MAX devices (forged ones, say): all learnt. */
	for (unsigned i = 0; i < ZILA_SCHED_LAN_MAX; i++) {
		uint8_t dev[32];
		memset(dev, 0xa0, 32);
		dev[0] = (uint8_t)i;
		struct zila_sched_heard h = hear_dev(s, dev, 0x0a000000 + 10 + i, (uint16_t)(1000 + i), T0 + i);
		assert_int_equal(h.result, ZILA_SCHED_HEARD_NEW);
	}
	assert_int_equal(s->nlan, ZILA_SCHED_LAN_MAX);
	/* One more: the unproven one heard longest ago makes room. */
	struct zila_sched_heard h = hear(s, 0x99, 0x0a0000fa, 7400, T0 + 1000);
	assert_int_equal(h.result, ZILA_SCHED_HEARD_NEW);
	assert_true(h.evicted);
	assert_int_equal(s->nlan, ZILA_SCHED_LAN_MAX);
	assert_null(zila_sched_find(s, "10.0.0.10:1000"));
	assert_non_null(zila_sched_find(s, "10.0.0.11:1001"));
	/* Peers whose address a handshake proved are never pushed out: when all are, a newcomer
	 * is ignored until one ages out. */
	uint8_t dev[32];
	memset(dev, 0x42, 32);
	for (struct zila_sched_peer *p = s->peers; p != NULL; p = p->next)
		if (p->source == ZILA_SCHED_LAN)
			zila_sched_reached(s, p, dev);
	h = hear(s, 0x9a, 0x0a0000fb, 7400, T0 + 2000);
	assert_int_equal(h.result, ZILA_SCHED_HEARD_FULL);
	assert_null(h.peer);
	assert_int_equal(s->nlan, ZILA_SCHED_LAN_MAX);
	/* The configured peer never counted and is still dialled. */
	assert_int_equal(zila_sched_next(s, T0 + 2000, 0, &wake)->source, ZILA_SCHED_CONFIG);
}

static void test_failure_log_limit(void **state)
{
	struct fixture *f = *state;
	struct zila_sched *s = &f->s;
	uint64_t wake, now = T0;
	struct zila_sched_peer *p = zila_sched_add(s, "10.0.0.2:7400", ZILA_SCHED_CONFIG, T0);
	struct zila_sched_peer *q = zila_sched_add(s, "10.0.0.3:7400", ZILA_SCHED_CONFIG, T0);
	/* The first failed dial is logged; those within 10 minutes are only counted. */
	unsigned nlogged = 0, nquiet = 0;
	for (int i = 0; i < 40; i++) {
		p->next_ms = q->next_ms = 0;
		assert_ptr_equal(zila_sched_next(s, now, 0, &wake), p);
		struct zila_sched_after a = end(s, p, failed(), now);
		if (a.log) {
			nlogged++;
			nquiet += (unsigned)a.nquiet;
		}
		now += 20000; /* 40 failures in 800 s */
	}
	assert_int_equal(nlogged, 2); /* at T0 and at T0 + 600 s */
	assert_int_equal(nquiet, 29); /* the second line counts the 29 between */
	assert_int_equal(p->nquiet, 9);
	/* Per peer: another peer's first failure is logged. */
	assert_ptr_equal(zila_sched_next(s, now, 0, &wake), q);
	assert_true(end(s, q, failed(), now).log);
	/* A failure after a completed handshake is always logged (it reached one of ours). */
	struct zila_sched_result r = failed();
	r.handshake = true;
	p->next_ms = 0;
	assert_ptr_equal(zila_sched_next(s, now, 0, &wake), p);
	assert_true(end(s, p, r, now).log);
	/* A completed session starts afresh. */
	p->next_ms = 0;
	zila_sched_want_now(s, p);
	assert_ptr_equal(zila_sched_next(s, now, 0, &wake), p);
	end(s, p, completed(), now);
	zila_sched_want_now(s, p);
	assert_ptr_equal(zila_sched_next(s, now + 1, 0, &wake), p);
	struct zila_sched_after a = end(s, p, failed(), now + 1);
	assert_true(a.log);
	assert_int_equal(a.nquiet, 0);
}

static void test_failure_log_lan_budget(void **state)
{
	struct fixture *f = *state;
	struct zila_sched *s = &f->s;
	uint64_t wake, now = T0;
	/* 30 LAN peers nobody answers for (forged beacons, say): the first ten failures are
	 * logged, the rest only counted; a peer whose address a handshake proved still is. */
	unsigned nlogged = 0;
	for (unsigned i = 0; i < 30; i++) {
		struct zila_sched_peer *p = hear(s, (uint8_t)(0x90 + i), 0x0a000010 + i, 7400, now).peer;
		assert_ptr_equal(zila_sched_next(s, now, 0, &wake), p);
		nlogged += end(s, p, failed(), now).log;
	}
	assert_int_equal(nlogged, ZILA_SCHED_LOG_LAN_BURST);
	assert_int_equal(s->lan_fail_log.nquiet, 30 - ZILA_SCHED_LOG_LAN_BURST);
	struct zila_sched_peer *v = hear(s, 0xf0, 0x0a000070, 7400, now).peer;
	uint8_t dev[32];
	memset(dev, 0xf0, 32);
	zila_sched_reached(s, v, dev);
	assert_ptr_equal(zila_sched_next(s, now, 0, &wake), v);
	assert_true(end(s, v, failed(), now).log);
	/* Ten minutes on, the next line says how many were not logged. */
	now += ZILA_SCHED_LOG_EVERY_MS;
	struct zila_sched_heard h = hear(s, 0xf1, 0x0a000071, 7400, now);
	assert_ptr_equal(zila_sched_next(s, now, 0, &wake), h.peer);
	struct zila_sched_after a = end(s, h.peer, failed(), now);
	assert_true(a.log);
	assert_int_equal(a.nquiet_lan, 30 - ZILA_SCHED_LOG_LAN_BURST);
	/* "Found device" lines have their own budget: 31 peers were found in the first window,
	 * ten of them logged; the first of the next window counts the 21 others. */
	assert_true(h.log);
	assert_int_equal(h.nquiet, 31 - ZILA_SCHED_LOG_LAN_BURST);
}

struct in_flight {
	enum zila_sched_conn conn;
	int64_t offered, own;
	bool pending;
};

static bool skip_in_flight(void *ctx, const struct zila_sched_peer *p)
{
	const struct in_flight *f = ctx;
	(void)p;
	return zila_sched_covered(f->conn, f->offered, f->own, f->pending);
}

/* After a local change, a peer with a session in flight gets no second session for the
 * same work (#24's race in test_daemon: the notice of the seal a session's start made came
 * while that session was closing, or a write's notice came during its handshake, and a
 * second session followed and sent the entry again). */
static void test_covered_in_flight(void **state)
{
	(void)state;
	/* dialled or in the handshake: its start seals and offers everything, pending too */
	assert_true(zila_sched_covered(ZILA_SCHED_CONN_STARTING, 0, 7, true));
	assert_true(zila_sched_covered(ZILA_SCHED_CONN_STARTING, 0, 7, false));
	/* its session started (running or closing) and offered what its start sealed */
	assert_true(zila_sched_covered(ZILA_SCHED_CONN_SESSION, 7, 7, false));
	assert_false(zila_sched_covered(ZILA_SCHED_CONN_SESSION, 6, 7, false)); /* sealed after its start */
	assert_false(zila_sched_covered(ZILA_SCHED_CONN_SESSION, 7, 7, true));  /* written after its start */
	/* none runs: the last completed session counts */
	assert_true(zila_sched_covered(ZILA_SCHED_CONN_NONE, 7, 7, false));
	assert_false(zila_sched_covered(ZILA_SCHED_CONN_NONE, 6, 7, false));
	assert_false(zila_sched_covered(ZILA_SCHED_CONN_NONE, 7, 7, true));
	/* our own count unknown: every peer */
	assert_false(zila_sched_covered(ZILA_SCHED_CONN_STARTING, 0, -1, false));
	assert_false(zila_sched_covered(ZILA_SCHED_CONN_SESSION, 7, -1, false));

	/* Through want_all as the daemon calls it: HQ, dialled for a write and still in the
	 * handshake, is not wanted again when the write's notice comes once more; nor when the
	 * notice of its start's seal comes while its session closes. */
	struct zila_sched s;
	struct world w;
	struct in_flight f = { ZILA_SCHED_CONN_STARTING, 0, 7, true };
	uint64_t wake;
	setup(&s, &w, 64);
	struct zila_sched_peer *hq = zila_sched_add(&s, "hq:7400", ZILA_SCHED_HQ, T0);
	assert_ptr_equal(zila_sched_next(&s, T0, 0, &wake), hq);
	assert_int_equal(zila_sched_want_all(&s, NULL, T0 + 10, skip_in_flight, &f), 0);
	f = (struct in_flight){ ZILA_SCHED_CONN_SESSION, 8, 8, false };
	assert_int_equal(zila_sched_want_all(&s, NULL, T0 + 20, skip_in_flight, &f), 0);
	assert_false(hq->again);
	struct zila_sched_result res = { .ok = true, .handshake = true };
	struct zila_sched_after after;
	zila_sched_ended(&s, hq, &res, T0 + 30, &after);
	assert_false(hq->want); /* no second session */
	/* a write after its start: one more session, after this one */
	assert_ptr_equal(zila_sched_next(&s, T0 + 40, 0, &wake), NULL);
	hq->want = true;
	assert_ptr_equal(zila_sched_next(&s, T0 + 50, 0, &wake), hq);
	f = (struct in_flight){ ZILA_SCHED_CONN_SESSION, 9, 9, true };
	assert_int_equal(zila_sched_want_all(&s, NULL, T0 + 60, skip_in_flight, &f), 1);
	assert_true(hq->again);
	teardown(&s, &w);
}

/* A session that failed on a key sent by reference is followed at once by one with keys
 * whole, which a user waiting for the sync waits for (at most ZILA_SCHED_BUSY_RETRIES). */
static void test_ref_failed_again_at_once(void **state)
{
	(void)state;
	struct zila_sched s;
	struct world w;
	uint64_t wake;
	setup(&s, &w, 64);
	struct zila_sched_peer *hq = zila_sched_add(&s, "hq:7400", ZILA_SCHED_HQ, T0);
	assert_ptr_equal(zila_sched_next(&s, T0, 0, &wake), hq);
	struct zila_sched_result res = { .handshake = true, .ref_failed = true };
	struct zila_sched_after after;
	zila_sched_ended(&s, hq, &res, T0 + 10, &after);
	assert_true(after.busy_retry);
	assert_int_equal(after.delay_ms, 0);
	assert_ptr_equal(zila_sched_next(&s, T0 + 10, 0, &wake), hq);
	teardown(&s, &w);
}

/* HQ ended a session because another program held its replica's write lock (test_busy.sh
 * phase 2): what that program wrote, HQ's merge seals once the lock is gone, after the
 * offer of the session that then completes; HQ does not dial a laptop. The laptop syncs
 * once more at once after that session, and only once. */
static void test_once_more_after_peer_locked(void **state)
{
	(void)state;
	struct zila_sched s;
	struct world w;
	uint64_t wake;
	setup(&s, &w, 64);
	struct zila_sched_peer *hq = zila_sched_add(&s, "hq:7400", ZILA_SCHED_HQ, T0);
	assert_ptr_equal(zila_sched_next(&s, T0, 0, &wake), hq);
	struct zila_sched_result res = { .handshake = true, .peer_locked = true };
	struct zila_sched_after after;
	zila_sched_ended(&s, hq, &res, T0 + 10, &after);
	assert_false(after.once_more);
	assert_true(after.delay_ms > 0);
	uint64_t t = T0 + 10 + after.delay_ms;
	assert_ptr_equal(zila_sched_next(&s, t, 0, &wake), hq);
	zila_sched_ended(&s, hq, &(struct zila_sched_result){ .ok = true, .handshake = true }, t + 10, &after);
	assert_true(after.once_more);
	assert_ptr_equal(zila_sched_next(&s, t + 10, 0, &wake), hq);
	zila_sched_ended(&s, hq, &(struct zila_sched_result){ .ok = true, .handshake = true }, t + 20, &after);
	assert_false(after.once_more);
	assert_null(zila_sched_next(&s, t + 20, 0, &wake));
	teardown(&s, &w);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff),
		cmocka_unit_test_setup_teardown(test_dial_order_and_cap, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_not_enrolled, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_backoff_growth_and_reset, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_busy_and_duplicate, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_relay, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_lan_beacons, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_lan_failures_give_up, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_lan_ageing, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_lan_cap, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_failure_log_limit, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_failure_log_lan_budget, fx_setup, fx_teardown),
		cmocka_unit_test(test_covered_in_flight),
		cmocka_unit_test(test_ref_failed_again_at_once),
		cmocka_unit_test(test_once_more_after_peer_locked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
