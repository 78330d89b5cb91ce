/* The daemon's records of the devices it meets, kept in the replica's peer table
 * (zila_store_peer_seen(), zila_store_peer_synced()). */
#include <stdio.h>
#include <string.h>

#include "net_int.h"
#include "zila/log.h"

const char *source_name(enum target_source s)
{
	return s == SRC_HQ ? "hq" : s == SRC_LAN ? "lan" : "config";
}

static void noted(int r, const char *what)
{
	if (r != 0)
		zila_log(ZILA_LOG_WARN, "cannot record %s in the peer table: %s", what, zila_strerror(r));
}

void peers_seen(struct daemon *d, const uint8_t device[32], const char *name, const char *district, const char *addr,
		const char *source)
{
	noted(zila_store_peer_seen(d->store, device, name, district, addr, source, (int64_t)daemon_wall()), "a peer");
}

void peers_synced(struct daemon *d, const struct conn *c, const struct zila_session_stats *s)
{
	struct zila_peer_session ps = {
		.result = c->result == 0 ? "ok" : c->reason,
		.sent = s ? (int64_t)s->entries_sent : 0,
		.received = s ? (int64_t)s->entries_received : 0,
		/* Our own clock's error is not the peer's: measured against HQ's time (as learnt), a
		 * peer is not blamed for our clock, and the warning goes once ours is set right. */
		.has_clock_offset = s && s->peer_now_ms,
		.clock_offset_ms = s ? s->clock_offset_ms : 0,
	};
	noted(zila_store_peer_synced(d->store, c->peer_pk, (int64_t)daemon_wall(), &ps), "a session");
}
