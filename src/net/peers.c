/* The daemon's records of the devices it meets, kept in the replica's peer table through
 * the store (zila_store_peer_seen(), zila_store_peer_synced()). */
#include <stdio.h>
#include <string.h>

#include "peers.h"
#include "zila/clock.h"
#include "zila/log.h"

static void noted(int r, const char *what)
{
	if (r != 0)
		zila_log(ZILA_LOG_WARN, "cannot record %s in the peer table: %s", what, zila_strerror(r));
}

void peers_seen(struct zila_store *s, const uint8_t device[32], const char *name, const char *district, const char *addr,
		const char *source)
{
	noted(zila_store_peer_seen(s, device, name, district, addr, source, (int64_t)zila_wall_s()), "a peer");
}

void peers_synced(struct zila_store *store, const uint8_t device[32], int result, const char *reason,
		  const struct zila_session_stats *s)
{
	struct zila_peer_session ps = {
		.result = result == 0 ? "ok" : reason,
		.sent = s ? (int64_t)s->entries_sent : 0,
		.received = s ? (int64_t)s->entries_received : 0,
		/* Our own clock's error is not the peer's: measured against HQ's time (as learnt), a
		 * peer is not blamed for our clock, and the warning goes once ours is set right. */
		.has_clock_offset = s && s->peer_now_ms,
		.clock_offset_ms = s ? s->clock_offset_ms : 0,
	};
	noted(zila_store_peer_synced(store, device, (int64_t)zila_wall_s(), &ps), "a session");
}

/* What local writes leave behind: captured changes not sealed yet, and our own sealed
 * entries (a session applying remote entries seals pending changes first, so a change may
 * already be sealed when we look). */
int64_t peers_own_sealed(struct zila_store *s)
{
	int64_t n = -1;
	return zila_store_own_entries(s, &n) == 0 ? n : -1;
}
