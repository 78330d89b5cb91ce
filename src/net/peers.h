/* The daemon's records of the devices it meets, in the replica's peer table (the store's). */
#ifndef ZILA_NET_PEERS_H
#define ZILA_NET_PEERS_H

#include <stdint.h>

#include "zila/session.h"
#include "zila/store.h"

/* A peer whose handshake completed: device, names from its certificate, address, and
 * where we know it from ("hq", "config", "lan" or "inbound"). */
void peers_seen(struct zila_store *s, const uint8_t device[32], const char *name, const char *district,
		const char *addr, const char *source);
/* A session with device ended: result 0 (completed) or why not (reason); st may be NULL. */
void peers_synced(struct zila_store *s, const uint8_t device[32], int result, const char *reason,
		  const struct zila_session_stats *st);
/* Our own sealed entries: the sum of our feeds' heads (-1 on failure). */
int64_t peers_own_sealed(struct zila_store *s);

#endif
