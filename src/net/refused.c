/* What peers refused of the entries we offered (their Acks say which and why): not offered
 * to them again while their trust records stay the same, and, for HQ, kept in the replica
 * so that `zila status` and `zila sync hq --wait` tell the user in plain words. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "refused.h"
#include "zila/clock.h"
#include "zila/log.h"

/* Refusals that stay true until the peer's trust records change. A refusal for a clock
 * ("dated ahead") changes with time, and a gap with what the peer receives from others:
 * those are offered again. */
static bool lasting(int code)
{
	return code == ZILA_EEXPIRED || code == ZILA_ECERT || code == ZILA_EREVOKED || code == ZILA_ESCOPE ||
	       code == ZILA_ESIG || code == ZILA_ENOTENROLLED;
}

void refused_skips(const struct refused *rf, const uint8_t peer[32], struct zila_session_skip *skip, size_t *nskip)
{
	*nskip = 0;
	for (size_t i = 0; i < rf->n && *nskip < REFUSED_SKIPS; i++)
		if (memcmp(rf->mem[i].peer, peer, 32) == 0)
			skip[(*nskip)++] = rf->mem[i].skip;
}

static void remember(struct refused *rf, const uint8_t peer[32], const struct zila_refusal *r, const uint8_t trust[16])
{
	struct refused_mem *m = NULL;
	for (size_t i = 0; i < rf->n && m == NULL; i++)
		if (memcmp(rf->mem[i].peer, peer, 32) == 0 && memcmp(rf->mem[i].skip.origin, r->origin, 32) == 0 &&
		    strcmp(rf->mem[i].skip.part, r->part) == 0)
			m = &rf->mem[i];
	if (m == NULL) {
		if (rf->n < REFUSED_MEM) {
			m = &rf->mem[rf->n++];
		} else {
			m = &rf->mem[rf->next];
			rf->next = (rf->next + 1) % REFUSED_MEM;
		}
	}
	memset(m, 0, sizeof(*m));
	memcpy(m->peer, peer, 32);
	memcpy(m->skip.origin, r->origin, 32);
	memcpy(m->skip.part, r->part, sizeof(m->skip.part));
	m->skip.seq = r->seq;
	memcpy(m->skip.peer_trust, trust, sizeof(m->skip.peer_trust));
}

/* What the user does about a refusal by HQ, by its reason. */
static const char *advice(int code)
{
	switch (code) {
	case ZILA_EEXPIRED:
	case ZILA_ECERT:
		return "no certificate of this device was valid when they were written (it had expired, or the new one "
		       "had not begun). If HQ runs an older zila, which judges them by the newest certificate only, have "
		       "HQ updated and sync again. Otherwise HQ cannot take them, and this device's later changes there "
		       "wait behind them: show this to HQ, which can enrol the laptop again as a new device ('zila log' "
		       "lists the changes to enter again)";
	case ZILA_EREVOKED:
		return "HQ revoked this device, so its later changes are never taken: take the laptop to HQ; 'zila log' "
		       "lists the changes so that an enrolled device can enter them again";
	case ZILA_ESCOPE:
		return "they change rows outside this device's district, which HQ never takes: ask HQ to make those "
		       "changes, or to enrol this device for that district";
	case ZILA_EPROTO:
		return "they are dated too far ahead: set this computer's clock right; they are offered again at the "
		       "next sync";
	case ZILA_EGAP:
		return "HQ lacks an earlier entry of this device: sync again; if this stays, tell HQ";
	default:
		return "tell HQ; the logs of both sides name the entry";
	}
}

/* One refusal of HQ's in plain words; waiting: later entries of ours behind it. */
static void describe(char *out, size_t n, const char *part, uint64_t seq, int code, const char *reason,
		     uint64_t waiting)
{
	char more[80] = "";
	if (waiting > 0)
		snprintf(more, sizeof(more), " (and %" PRIu64 " later entr%s of it wait%s behind it)", waiting,
			 waiting == 1 ? "y" : "ies", waiting == 1 ? "s" : "");
	snprintf(out, n, "HQ refused entry %" PRIu64 " of this device's changes in '%s'%s: %s. What to do: %s",
		 seq, part[0] ? part : "(org-wide)", more, reason, advice(code));
}

/* Our own head of feed part (0 when unknown). */
static uint64_t own_head(const struct zila_vector *v, const uint8_t self[32], const char *part)
{
	for (size_t i = 0; v != NULL && i < v->nheads; i++)
		if (memcmp(v->heads[i].origin, self, 32) == 0 && strcmp(v->heads[i].part, part) == 0)
			return v->heads[i].seq;
	return 0;
}

void refused_learn(struct refused *rf, struct zila_store *s, bool is_hq, const uint8_t *peer,
		   const struct zila_session_stats *st, char *text, size_t text_len)
{
	const uint8_t *self = zila_store_device_pk(s);
	char lines[4096] = "", v[32];
	size_t len = 0, nown = 0;
	if (text != NULL && text_len > 0)
		text[0] = '\0';
	for (size_t i = 0; i < st->nrefused; i++) {
		const struct zila_refusal *r = &st->refused[i];
		if (peer != NULL && st->has_peer_trust && lasting(r->code))
			remember(rf, peer, r, st->peer_trust);
		if (memcmp(r->origin, self, 32) != 0)
			continue;
		nown++;
		int k = snprintf(lines + len, sizeof(lines) - len, "%" PRIu64 "\t%d\t%" PRIu64 "\t%s\t%s\n", r->seq, -r->code,
				 zila_wall_s(), r->part, r->reason);
		if (k > 0 && (size_t)k < sizeof(lines) - len)
			len += (size_t)k;
		if (text != NULL && text_len > 0 && text[0] == '\0')
			describe(text, text_len, r->part, r->seq, r->code, r->reason, 0);
	}
	if (!st->peer_is_hq)
		return;
	/* "Unsent to HQ" is what HQ has not taken, not what was sent. */
	snprintf(v, sizeof(v), "%" PRIu64, st->own_at_peer);
	if (zila_store_meta_set(s, ZILA_META_NET_OWN_HQ, v) != 0)
		zila_log(ZILA_LOG_WARN, "cannot record the sync in the replica");
	if (nown > 0) {
		if (zila_store_meta_set(s, ZILA_META_NET_HQ_REFUSED, lines) != 0)
			zila_log(ZILA_LOG_WARN, "cannot record what HQ refused in the replica");
	} else if (st->own_not_at_peer == 0) {
		if (zila_store_meta_set(s, ZILA_META_NET_HQ_REFUSED, "") != 0)
			zila_log(ZILA_LOG_WARN, "cannot record the sync in the replica");
	} else if (text != NULL && text_len > 0) {
		/* Not offered again (refused before): the waiter hears it all the same. */
		json_t *w = json_array();
		json_t *a = refused_status(s, is_hq, w);
		if (json_array_size(w) > 0)
			snprintf(text, text_len, "%s", json_string_value(json_array_get(w, 0)));
		json_decref(a);
		json_decref(w);
	}
}

json_t *refused_status(struct zila_store *s, bool is_hq, json_t *warn)
{
	json_t *arr = json_array();
	char *val = NULL;
	struct zila_vector v = { NULL, 0 };
	if (is_hq || zila_store_meta_get(s, ZILA_META_NET_HQ_REFUSED, &val) != 0 || val == NULL || val[0] == '\0')
		goto out;
	bool have_v = zila_store_vector(s, &v) == 0;
	for (char *line = val, *next; line != NULL && *line; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		unsigned long long seq, when;
		int code, n = 0;
		if (sscanf(line, "%llu\t%d\t%llu\t%n", &seq, &code, &when, &n) != 3 || n == 0)
			continue;
		char *part = line + n, *reason = strchr(part, '\t');
		if (reason == NULL)
			continue;
		*reason++ = '\0';
		uint64_t head = have_v ? own_head(&v, zila_store_device_pk(s), part) : 0;
		uint64_t waiting = head > seq ? head - seq : 0;
		char text[1024], at[40];
		describe(text, sizeof(text), part, seq, -code, reason, waiting);
		zila_format_time(when * 1000, at, sizeof(at));
		json_array_append_new(arr, json_pack("{s:s, s:I, s:I, s:i, s:s, s:s, s:s}", "part", part, "seq", (json_int_t)seq,
						     "waiting", (json_int_t)waiting, "code", -code, "reason", reason,
						     "at", at, "message", text));
		json_array_append_new(warn, json_string(text));
	}
out:
	zila_vector_release(&v);
	free(val);
	return arr;
}
