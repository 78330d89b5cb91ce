/* Entries a replica did not take: noted for their sender (the session's Ack says which and
 * why) and logged in groups, so that a refused entry offered again and again costs one log
 * line per 10 minutes, not one per session. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "store_int.h"
#include "zila/log.h"

#define REFUSAL_LOG_MS (10 * 60 * 1000ull)

static struct zila_refusal *feed_refusal(struct zila_apply_stats *st, const struct zila_entry_info *info)
{
	for (size_t i = 0; i < st->nrefusals; i++)
		if (memcmp(st->refusals[i].origin, info->origin, 32) == 0 && strcmp(st->refusals[i].part, info->part) == 0)
			return &st->refusals[i];
	return NULL;
}

/* Whether to log this refusal now; counts it when not. */
static bool log_due(struct zila_store *s, const struct zila_entry_info *info, int code, uint64_t *again)
{
	uint8_t key[16];
	crypto_generichash_state g;
	uint8_t seq[8], c[4];
	for (int i = 0; i < 8; i++)
		seq[i] = (uint8_t)(info->seq >> (56 - 8 * i));
	for (int i = 0; i < 4; i++)
		c[i] = (uint8_t)((uint32_t)code >> (24 - 8 * i));
	crypto_generichash_init(&g, NULL, 0, sizeof(key));
	crypto_generichash_update(&g, info->origin, 32);
	crypto_generichash_update(&g, (const uint8_t *)info->part, strlen(info->part) + 1);
	crypto_generichash_update(&g, seq, sizeof(seq));
	crypto_generichash_update(&g, c, sizeof(c));
	crypto_generichash_final(&g, key, sizeof(key));
	uint64_t now = store_now_ms(s);
	struct refusal_logged *slot = NULL, *oldest = &s->refusals_logged[0];
	size_t n = sizeof(s->refusals_logged) / sizeof(s->refusals_logged[0]);
	for (size_t i = 0; i < n; i++) {
		struct refusal_logged *x = &s->refusals_logged[i];
		if (x->at_ms != 0 && memcmp(x->key, key, sizeof(key)) == 0)
			slot = x;
		if (x->at_ms < oldest->at_ms)
			oldest = x;
	}
	*again = 0;
	if (slot != NULL && now >= slot->at_ms && now - slot->at_ms < REFUSAL_LOG_MS) {
		slot->again++;
		return false;
	}
	if (slot == NULL) {
		slot = oldest;
		memcpy(slot->key, key, sizeof(key));
		slot->again = 0;
	}
	*again = slot->again;
	slot->again = 0;
	slot->at_ms = now ? now : 1;
	return true;
}

void store_refusal(struct zila_store *s, struct zila_apply_stats *st, const struct zila_entry_info *info, int code,
		   const char *reason)
{
	/* The trust layer's messages name device, feed and seq first: the sender knows them. */
	const char *p = strncmp(reason, "device '", 8) == 0 ? strstr(reason, ": ") : NULL;
	if (p != NULL)
		reason = p + 2;
	struct zila_refusal *r = feed_refusal(st, info);
	if (r != NULL) {
		/* One line per feed: later entries of a refused feed wait behind the first. */
		if (info->seq > r->seq)
			r->nwaiting++;
		return;
	}
	if (st->nrefusals == ZILA_APPLY_REFUSALS) {
		st->nrefusals_more++;
	} else {
		r = &st->refusals[st->nrefusals++];
		memset(r, 0, sizeof(*r));
		memcpy(r->origin, info->origin, 32);
		snprintf(r->part, sizeof(r->part), "%s", info->part);
		r->seq = info->seq;
		r->code = code;
		snprintf(r->reason, sizeof(r->reason), "%s", reason);
	}
	uint64_t again;
	if (!log_due(s, info, code, &again))
		return;
	char hex[17], more[64] = "";
	zila_hex_encode(hex, info->origin, 8);
	if (again > 0)
		snprintf(more, sizeof(more), " (met %llu more times in the last 10 minutes)", (unsigned long long)again);
	zila_log(code == ZILA_EGAP ? ZILA_LOG_INFO : ZILA_LOG_WARN, "%s entry of device %s feed '%s' seq %llu: %s%s",
		 code == ZILA_EGAP ? "not taking" : "rejected", hex, info->part[0] ? info->part : "(org)",
		 (unsigned long long)info->seq, reason, more);
}
