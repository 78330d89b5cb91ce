/* LAN discovery: a sealed UDP beacon broadcast on every IPv4 interface at start, every ~30 s
 * (with jitter) and when the interface list changes; beacons heard from other members are
 * handed to the owner (whom to dial is the scheduler's to decide, zila/sched.h). */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "discovery.h"
#include "zila/clock.h"
#include "zila/log.h"

struct udp_send {
	uv_udp_send_t req;
	uint8_t buf[ZILA_BEACON_LEN];
};

static void on_sent(uv_udp_send_t *req, int status)
{
	(void)status;
	free(container_of(req, struct udp_send, req));
}

/* HQ's time as best known (ms): what beacons are dated and judged by. */
static uint64_t hq_ms(const struct discovery *d)
{
	struct zila_clock ck;
	zila_store_clock(d->env->store, &ck);
	return ck.hq_est_ms;
}

static void send_to(struct discovery *d, const struct sockaddr_in *to, const uint8_t beacon[ZILA_BEACON_LEN])
{
	struct udp_send *s = malloc(sizeof(*s));
	if (s == NULL)
		return;
	memcpy(s->buf, beacon, ZILA_BEACON_LEN);
	uv_buf_t b = uv_buf_init((char *)s->buf, ZILA_BEACON_LEN);
	int r = uv_udp_send(&s->req, &d->udp, &b, 1, (const struct sockaddr *)to, on_sent);
	if (r != 0) {
		char ip[64];
		uv_ip4_name(to, ip, sizeof(ip));
		zila_log(ZILA_LOG_DEBUG, "beacon to %s: %s", ip, uv_strerror(r));
		free(s);
		return;
	}
	d->nbeacons_sent++;
}

/* One line per usable interface; a change of this text is a network change. */
static void iface_list(char *sig, size_t n, uv_interface_address_t **out, int *count)
{
	size_t len = 0;
	sig[0] = '\0';
	*out = NULL;
	*count = 0;
	if (uv_interface_addresses(out, count) != 0)
		return;
	for (int i = 0; i < *count; i++) {
		uv_interface_address_t *a = &(*out)[i];
		char ip[64], mask[64];
		if (a->is_internal || a->address.address4.sin_family != AF_INET)
			continue;
		uv_ip4_name(&a->address.address4, ip, sizeof(ip));
		uv_ip4_name(&a->netmask.netmask4, mask, sizeof(mask));
		int k = snprintf(sig + len, n - len, "%s %s/%s;", a->name, ip, mask);
		if (k < 0 || (size_t)k >= n - len)
			break;
		len += (size_t)k;
	}
}

/* Tells the owner the networks beacons are believed from: every IPv4 interface's (the
 * loopback's too) and each --beacon-to host. */
static void tell_nets(struct discovery *d, const uv_interface_address_t *ifs, int n, bool changed)
{
	struct zila_sched_net nets[ZILA_SCHED_NETS_MAX];
	size_t k = 0;
	for (int i = 0; i < n && k < ZILA_SCHED_NETS_MAX; i++) {
		if (ifs[i].address.address4.sin_family != AF_INET)
			continue;
		nets[k].addr = ntohl(ifs[i].address.address4.sin_addr.s_addr);
		nets[k++].mask = ntohl(ifs[i].netmask.netmask4.sin_addr.s_addr);
	}
	for (size_t i = 0; i < d->env->cfg->nbeacon_to && k < ZILA_SCHED_NETS_MAX; i++) {
		char host[256];
		uint16_t port;
		struct in_addr a;
		const char *spec = d->env->cfg->beacon_to[i];
		if (zila_hostport_parse(spec, host, sizeof(host), &port) != 0)
			snprintf(host, sizeof(host), "%s", spec);
		if (uv_inet_pton(AF_INET, host, &a) == 0) {
			nets[k].addr = ntohl(a.s_addr);
			nets[k++].mask = 0xffffffffu;
		}
	}
	d->hooks.nets(d->hooks.ctx, nets, k, changed);
}

/* Reads the interfaces into *ifs (the caller frees them). When they changed since the last
 * look (whoever looked: a beacon sent, the poll), the owner learns the networks again, and
 * changed is said unless this is the first look. Returns whether they changed. */
static bool look_at_ifaces(struct discovery *d, uv_interface_address_t **ifs, int *n, bool first)
{
	char sig[sizeof(d->iface_sig)];
	iface_list(sig, sizeof(sig), ifs, n);
	if (!first && strcmp(sig, d->iface_sig) == 0)
		return false;
	memcpy(d->iface_sig, sig, sizeof(sig));
	if (!first)
		zila_log(ZILA_LOG_INFO, "network interfaces changed: %s", sig[0] ? sig : "none");
	tell_nets(d, *ifs, *n, !first);
	return true;
}

void discovery_send_now(struct discovery *d)
{
	uv_interface_address_t *ifs = NULL;
	int n = 0;
	uint8_t beacon[ZILA_BEACON_LEN];
	struct zila_beacon b;
	if (!d->udp_open || d->env->stopping)
		return;
	memcpy(b.device_pk, zila_store_device_pk(d->env->store), 32);
	b.port = d->listen_port;
	b.time_ms = hq_ms(d);
	zila_beacon_seal(d->env->id.beacon_key, &b, beacon);
	(void)look_at_ifaces(d, &ifs, &n, false);
	/* --beacon-to replaces the interfaces' broadcast addresses: a test or a lab on loopback
	 * must not send a byte onto the host's real networks. */
	for (int i = 0; i < n && d->env->cfg->nbeacon_to == 0; i++) {
		uv_interface_address_t *a = &ifs[i];
		if (a->is_internal || a->address.address4.sin_family != AF_INET)
			continue;
		struct sockaddr_in to;
		memset(&to, 0, sizeof(to));
		to.sin_family = AF_INET;
		to.sin_port = htons(d->beacon_port);
		to.sin_addr.s_addr = a->address.address4.sin_addr.s_addr | ~a->netmask.netmask4.sin_addr.s_addr;
		send_to(d, &to, beacon);
	}
	uv_free_interface_addresses(ifs, n);
	for (size_t i = 0; i < d->env->cfg->nbeacon_to; i++) {
		char host[256];
		uint16_t port = d->beacon_port;
		struct sockaddr_in to;
		const char *spec = d->env->cfg->beacon_to[i];
		if (zila_hostport_parse(spec, host, sizeof(host), &port) != 0) {
			/* No port given: the beacon port (a failed parse clears its outputs). */
			snprintf(host, sizeof(host), "%s", spec);
			port = d->beacon_port;
		}
		if (uv_ip4_addr(host, port, &to) == 0)
			send_to(d, &to, beacon);
	}
	sodium_memzero(&b, sizeof(b));
}

static void on_beacon_timer(uv_timer_t *h)
{
	struct discovery *d = container_of(h, struct discovery, beacon_timer);
	net_store_claim(d->env); /* a beacon carries the replica's clock */
	discovery_send_now(d);
	/* 25..35 s: laptops started together drift apart. */
	uint64_t next = ZILA_SCHED_BEACON_INTERVAL_MS - 5000 + randombytes_uniform(10001);
	uv_timer_start(&d->beacon_timer, on_beacon_timer, next, 0);
}

static void on_iface_timer(uv_timer_t *h)
{
	struct discovery *d = container_of(h, struct discovery, iface_timer);
	uv_interface_address_t *ifs = NULL;
	int n = 0;
	net_store_claim(d->env);
	bool changed = look_at_ifaces(d, &ifs, &n, false);
	uv_free_interface_addresses(ifs, n);
	if (changed)
		discovery_send_now(d);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct discovery *d = container_of((uv_udp_t *)h, struct discovery, udp);
	(void)hint;
	*buf = uv_buf_init((char *)d->udp_buf, sizeof(d->udp_buf));
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *from, unsigned flags)
{
	struct discovery *d = container_of(h, struct discovery, udp);
	struct zila_beacon b;
	char ip[64];
	(void)flags;
	if (nread <= 0 || from == NULL || from->sa_family != AF_INET || d->env->stopping)
		return;
	int r = zila_beacon_open(d->env->id.beacon_key, (const uint8_t *)buf->base, (size_t)nread, &b);
	uv_ip4_name((const struct sockaddr_in *)from, ip, sizeof(ip));
	if (r != 0) {
		zila_log(ZILA_LOG_DEBUG, "ignored a datagram from %s: %s", ip, zila_strerror(r));
		return;
	}
	net_store_claim(d->env); /* what is heard goes to the peer table */
	r = zila_beacon_accept(&d->seen, &b, hq_ms(d));
	if (r == ZILA_EEXPIRED)
		zila_log(ZILA_LOG_WARN, "ignored a beacon from %s: its clock differs from ours by more than an hour", ip);
	if (r != 0)
		return;
	d->last_beacon_ms = uv_now(d->env->loop);
	d->nbeacons_heard++;
	uint32_t src = ntohl(((const struct sockaddr_in *)from)->sin_addr.s_addr);
	/* Answer a newcomer at once (at most every 2 s) so it need not wait ~30 s to hear us. */
	if (d->hooks.heard(d->hooks.ctx, &b, src, ip) &&
	    (uv_now(d->env->loop) - d->last_answer_ms > 2000 || d->last_answer_ms == 0)) {
		d->last_answer_ms = uv_now(d->env->loop);
		discovery_send_now(d);
	}
}

void discovery_init(struct discovery *ds, const struct net_env *env, uint16_t beacon_port, uint16_t listen_port,
		    const struct discovery_hooks *hooks)
{
	memset(ds, 0, sizeof(*ds));
	ds->env = env;
	ds->beacon_port = beacon_port;
	ds->listen_port = listen_port;
	ds->hooks = *hooks;
}

int discovery_start(struct discovery *d)
{
	struct sockaddr_in any;
	uv_interface_address_t *ifs = NULL;
	int r, n = 0;
	if (!d->env->id.enrolled || d->beacon_port == 0 || d->udp_open || d->env->stopping)
		return 0;
	zila_beacon_seen_init(&d->seen, zila_store_device_pk(d->env->store));
	(void)look_at_ifaces(d, &ifs, &n, true);
	uv_free_interface_addresses(ifs, n);
	uv_ip4_addr("0.0.0.0", d->beacon_port, &any);
	uv_udp_init(d->env->loop, &d->udp);
	d->udp_open = true;
	/* Several daemons on one host (tests, netns labs) share the port: broadcasts reach all. */
	if ((r = uv_udp_bind(&d->udp, (const struct sockaddr *)&any, UV_UDP_REUSEADDR)) != 0 ||
	    (r = uv_udp_set_broadcast(&d->udp, 1)) != 0 || (r = uv_udp_recv_start(&d->udp, on_alloc, on_recv)) != 0) {
		zila_log(ZILA_LOG_WARN, "no LAN discovery: udp port %u: %s", d->beacon_port, uv_strerror(r));
		uv_close((uv_handle_t *)&d->udp, NULL);
		d->udp_open = false;
		return r;
	}
	if (!d->timers) {
		uv_timer_init(d->env->loop, &d->beacon_timer);
		uv_timer_init(d->env->loop, &d->iface_timer);
		d->timers = true;
	}
	uv_timer_start(&d->beacon_timer, on_beacon_timer, 0, 0);
	uv_timer_start(&d->iface_timer, on_iface_timer, IFACE_POLL_MS, IFACE_POLL_MS);
	zila_log(ZILA_LOG_INFO, "LAN discovery on udp port %u", d->beacon_port);
	return 0;
}

void discovery_stop(struct discovery *d)
{
	if (d->udp_open) {
		uv_close((uv_handle_t *)&d->udp, NULL);
		d->udp_open = false;
	}
	if (d->timers) {
		uv_close((uv_handle_t *)&d->beacon_timer, NULL);
		uv_close((uv_handle_t *)&d->iface_timer, NULL);
		d->timers = false;
	}
}
