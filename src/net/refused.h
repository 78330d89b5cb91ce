/* What peers refused of the entries we offered (their Acks say which and why): not offered
 * to them again while their trust records stay the same, and, for HQ, kept in the replica
 * so that `zila status` and `zila sync hq --wait` tell the user in plain words. */
#ifndef ZILA_NET_REFUSED_H
#define ZILA_NET_REFUSED_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "zila/daemon.h"
#include "zila/session.h"
#include "zila/store.h"

#define REFUSED_SKIPS 16 /* feeds skipped per session */
#define REFUSED_MEM 64   /* refusals remembered per daemon */

/* Feeds peers refused. A ring: the oldest is forgotten first. */
struct refused {
	struct refused_mem {
		uint8_t peer[32];
		struct zila_session_skip skip;
	} mem[REFUSED_MEM];
	size_t n, next;
};

/* The feeds not to offer the peer (device key) in a session: into skip (REFUSED_SKIPS
 * slots), their number into *nskip. */
void refused_skips(const struct refused *rf, const uint8_t peer[32], struct zila_session_skip *skip, size_t *nskip);
/* After a completed session with peer (NULL: not known): remembers what it refused, and
 * when the peer is HQ (is_hq: we are HQ), records in the replica how many of our entries HQ
 * holds and what it refused of ours (for status). text (text_len bytes, may be NULL) gets
 * the first refusal of ours in plain words, for sync --wait ("" when none). */
void refused_learn(struct refused *rf, struct zila_store *s, bool is_hq, const uint8_t *peer,
		   const struct zila_session_stats *st, char *text, size_t text_len);
/* For status: HQ's refusals of our entries (a JSON array, maybe empty) and, for each, a
 * warning in plain words with what to do, appended to warn. */
json_t *refused_status(struct zila_store *s, bool is_hq, json_t *warn);

#endif
