/* LAN discovery (discovery.c): sealed UDP beacons sent on every IPv4 interface, and those of
 * other members heard. What a beacon means (whom to dial) is the owner's to decide: it is
 * told through struct discovery_hooks. */
#ifndef ZILA_NET_DISCOVERY_H
#define ZILA_NET_DISCOVERY_H

#include "net_int.h"
#include "zila/sched.h"

struct discovery_hooks {
	/* A beacon from a member, neither ours nor a replay; ip is the datagram's source (IPv4,
	 * host byte order; ip_text the same as text). Returns true when the sender is new to
	 * the owner: it is answered at once (at most every 2 s). */
	bool (*heard)(void *ctx, const struct zila_beacon *b, uint32_t ip, const char *ip_text);
	/* The networks we are on (IPv4), at the start and whenever they change (changed). */
	void (*nets)(void *ctx, const struct zila_sched_net *nets, size_t n, bool changed);
	void *ctx;
};

struct discovery {
	const struct net_env *env;
	struct discovery_hooks hooks;
	uint16_t beacon_port; /* 0: no beacons */
	uint16_t listen_port; /* the TCP port beacons name */
	uv_udp_t udp;
	bool udp_open;
	uv_timer_t beacon_timer, iface_timer;
	bool timers;
	char iface_sig[1024];
	struct zila_beacon_seen seen;
	uint64_t last_beacon_ms; /* loop time a valid beacon was last heard, 0: never */
	uint64_t nbeacons_sent, nbeacons_heard;
	uint64_t last_answer_ms; /* loop time we last answered a newcomer's beacon */
	uint8_t udp_buf[512];
};

void discovery_init(struct discovery *ds, const struct net_env *env, uint16_t beacon_port, uint16_t listen_port,
		    const struct discovery_hooks *hooks);
/* Starts sending and hearing beacons when enrolled and beacons are on (else does nothing).
 * Returns 0 or a libuv code (logged: discovery is then off). */
int discovery_start(struct discovery *ds);
void discovery_stop(struct discovery *ds);
void discovery_send_now(struct discovery *ds);

#endif
