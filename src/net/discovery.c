/* LAN discovery: a sealed UDP beacon broadcast on every IPv4 interface at start, every ~30 s
 * (with jitter) and when the interface list changes; beacons heard from other members add
 * the sender as a LAN peer and start a sync (the lower device key dials). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net_int.h"
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

static uint16_t listen_port(const struct daemon *d)
{
	char host[256];
	uint16_t port = ZILA_SYNC_PORT;
	if (zila_hostport_parse(d->listen_addr, host, sizeof(host), &port) != 0)
		port = ZILA_SYNC_PORT;
	return port;
}

static void send_to(struct daemon *d, const struct sockaddr_in *to, const uint8_t beacon[ZILA_BEACON_LEN])
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
static void iface_list(struct daemon *d, char *sig, size_t n, uv_interface_address_t **out, int *count)
{
	size_t len = 0;
	sig[0] = '\0';
	*out = NULL;
	*count = 0;
	if (uv_interface_addresses(out, count) != 0)
		return;
	(void)d;
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

void discovery_send_now(struct daemon *d)
{
	uv_interface_address_t *ifs = NULL;
	int n = 0;
	uint8_t beacon[ZILA_BEACON_LEN];
	struct zila_beacon b;
	if (!d->udp_open || d->stopping)
		return;
	memcpy(b.device_pk, zila_store_device_pk(d->store), 32);
	b.port = listen_port(d);
	b.time_ms = daemon_hq_ms(d);
	zila_beacon_seal(d->beacon_key, &b, beacon);
	iface_list(d, d->iface_sig, sizeof(d->iface_sig), &ifs, &n);
	/* --beacon-to replaces the interfaces' broadcast addresses: a test or a lab on loopback
	 * must not send a byte onto the host's real networks. */
	for (int i = 0; i < n && d->cfg.nbeacon_to == 0; i++) {
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
	for (size_t i = 0; i < d->cfg.nbeacon_to; i++) {
		char host[256];
		uint16_t port = d->beacon_port;
		struct sockaddr_in to;
		const char *spec = d->cfg.beacon_to[i];
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
	struct daemon *d = container_of(h, struct daemon, beacon_timer);
	discovery_send_now(d);
	/* 25..35 s: laptops started together drift apart. */
	uint64_t next = BEACON_INTERVAL_MS - 5000 + randombytes_uniform(10001);
	uv_timer_start(&d->beacon_timer, on_beacon_timer, next, 0);
}

static void on_iface_timer(uv_timer_t *h)
{
	struct daemon *d = container_of(h, struct daemon, iface_timer);
	char sig[sizeof(d->iface_sig)];
	uv_interface_address_t *ifs = NULL;
	int n = 0;
	iface_list(d, sig, sizeof(sig), &ifs, &n);
	uv_free_interface_addresses(ifs, n);
	if (strcmp(sig, d->iface_sig) == 0)
		return;
	zila_log(ZILA_LOG_INFO, "network interfaces changed: %s", sig[0] ? sig : "none");
	discovery_send_now(d);
	/* A laptop that just came online tries HQ at once rather than at the end of its backoff. */
	if (d->hq != NULL) {
		zila_backoff_reset(&d->hq->backoff);
		d->hq->next_ms = 0;
		d->hq->want = true;
		daemon_kick(d);
	}
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct daemon *d = container_of((uv_udp_t *)h, struct daemon, udp);
	(void)hint;
	*buf = uv_buf_init((char *)d->udp_buf, sizeof(d->udp_buf));
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *from, unsigned flags)
{
	struct daemon *d = container_of(h, struct daemon, udp);
	struct zila_beacon b;
	char ip[64], addr[300];
	(void)flags;
	if (nread <= 0 || from == NULL || from->sa_family != AF_INET || d->stopping)
		return;
	int r = zila_beacon_open(d->beacon_key, (const uint8_t *)buf->base, (size_t)nread, &b);
	uv_ip4_name((const struct sockaddr_in *)from, ip, sizeof(ip));
	if (r != 0) {
		zila_log(ZILA_LOG_DEBUG, "ignored a datagram from %s: %s", ip, zila_strerror(r));
		return;
	}
	r = zila_beacon_accept(&d->seen, &b, daemon_hq_ms(d));
	if (r == ZILA_EEXPIRED)
		zila_log(ZILA_LOG_WARN, "ignored a beacon from %s: its clock differs from ours by more than an hour", ip);
	if (r != 0)
		return;
	d->last_beacon_ms = uv_now(&d->loop);
	d->nbeacons_heard++;
	snprintf(addr, sizeof(addr), "%s:%u", ip, b.port);
	struct target *t = NULL;
	for (struct target *x = d->targets; x != NULL; x = x->next)
		if (x->has_device && memcmp(x->device, b.device_pk, 32) == 0)
			t = x;
	if (t == NULL)
		t = daemon_target_find(d, addr);
	bool fresh = t == NULL || uv_now(&d->loop) - t->heard_ms > LAN_FRESH_MS;
	if (t == NULL) {
		if ((t = daemon_target_add(d, addr, SRC_LAN)) == NULL)
			return;
		t->want = false;
		char id[ZILA_DEVICE_ID_LEN + 1];
		zila_device_id(b.device_pk, id);
		zila_log(ZILA_LOG_INFO, "found device %s at %s on the LAN", id, addr);
		/* Answer a newcomer at once (at most every 2 s) so it need not wait ~30 s to hear us. */
		if (uv_now(&d->loop) - d->last_answer_ms > 2000 || d->last_answer_ms == 0) {
			d->last_answer_ms = uv_now(&d->loop);
			discovery_send_now(d);
		}
	}
	if (t->source == SRC_LAN && strcmp(t->addr, addr) != 0 && t->conn == NULL)
		snprintf(t->addr, sizeof(t->addr), "%s", addr);
	t->has_device = true;
	memcpy(t->device, b.device_pk, 32);
	t->heard_ms = uv_now(&d->loop);
	/* Sync with a newly heard peer, and again when the last sync is old; the lower key dials
	 * so that two laptops do not dial each other at once. */
	bool due = fresh || t->last_ok + PERIODIC_MS / 1000 < daemon_wall();
	if (due && memcmp(zila_store_device_pk(d->store), b.device_pk, 32) < 0 && t->conn == NULL) {
		t->want = true;
		if (fresh) {
			zila_backoff_reset(&t->backoff);
			t->next_ms = 0;
		}
		daemon_kick(d);
	}
}

int discovery_start(struct daemon *d)
{
	struct sockaddr_in any;
	int r;
	if (!d->enrolled || d->beacon_port == 0 || d->udp_open || d->stopping)
		return 0;
	zila_beacon_seen_init(&d->seen, zila_store_device_pk(d->store));
	uv_ip4_addr("0.0.0.0", d->beacon_port, &any);
	uv_udp_init(&d->loop, &d->udp);
	d->udp_open = true;
	/* Several daemons on one host (tests, netns labs) share the port: broadcasts reach all. */
	if ((r = uv_udp_bind(&d->udp, (const struct sockaddr *)&any, UV_UDP_REUSEADDR)) != 0 ||
	    (r = uv_udp_set_broadcast(&d->udp, 1)) != 0 || (r = uv_udp_recv_start(&d->udp, on_alloc, on_recv)) != 0) {
		zila_log(ZILA_LOG_WARN, "no LAN discovery: udp port %u: %s", d->beacon_port, uv_strerror(r));
		uv_close((uv_handle_t *)&d->udp, NULL);
		d->udp_open = false;
		return r;
	}
	if (!d->beacon_timers) {
		uv_timer_init(&d->loop, &d->beacon_timer);
		uv_timer_init(&d->loop, &d->iface_timer);
		d->beacon_timers = true;
	}
	uv_timer_start(&d->beacon_timer, on_beacon_timer, 0, 0);
	uv_timer_start(&d->iface_timer, on_iface_timer, IFACE_POLL_MS, IFACE_POLL_MS);
	zila_log(ZILA_LOG_INFO, "LAN discovery on udp port %u", d->beacon_port);
	return 0;
}

void discovery_stop(struct daemon *d)
{
	if (d->udp_open) {
		uv_close((uv_handle_t *)&d->udp, NULL);
		d->udp_open = false;
	}
	if (d->beacon_timers) {
		uv_close((uv_handle_t *)&d->beacon_timer, NULL);
		uv_close((uv_handle_t *)&d->iface_timer, NULL);
		d->beacon_timers = false;
	}
}
