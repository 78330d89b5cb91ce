/* The reference clock: HQ's time as this replica learnt it, and the time what it writes is
 * dated by. The rule and its reasons are in proto/PROTOCOL.md, "Clocks". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "zila/clock.h"
#include "zila/log.h"

#define META_REF "clock.reference"
#define META_SEEN "clock.seen_ms"
#define META_OFFSET "clock.offset_ms"
#define META_LEARNT "clock.learnt_wall_ms"
#define META_UP "clock.learnt_up_ms"
#define META_BOOT "clock.boot"
#define META_HEARD "clock.heard_ms"
#define SAVE_SEEN_MS (60 * 1000)  /* a newer HQ time is written down once it moved this much */
#define SAVE_OFFSET_MS 1000       /* an offset, once it is this far from what is written */

static bool meta_i64(struct zila_store *s, const char *key, int64_t *out)
{
	char *v = NULL, *end;
	if (zila_store_meta_get(s, key, &v) != 0)
		return false;
	long long x = strtoll(v, &end, 10);
	bool ok = *v != '\0' && *end == '\0';
	free(v);
	if (ok)
		*out = x;
	return ok;
}

void store_clock_load(struct zila_store *s)
{
	int64_t x;
	char *boot = NULL;
	s->clk_ref = meta_i64(s, META_REF, &x) && x == 1;
	s->clk_seen = meta_i64(s, META_SEEN, &x) && x > 0 ? (uint64_t)x : 0;
	s->clk_saved_seen = s->clk_seen;
	s->clk_heard = meta_i64(s, META_HEARD, &x) && x > 0 ? (uint64_t)x : 0;
	s->clk_learnt_wall = meta_i64(s, META_LEARNT, &x) && x > 0 ? (uint64_t)x : 0;
	/* learnt at 0: dropped (save_offset) */
	s->clk_has_offset = s->clk_learnt_wall > 0 && meta_i64(s, META_OFFSET, &x);
	s->clk_offset = s->clk_has_offset ? x : 0;
	s->clk_learnt_up = meta_i64(s, META_UP, &x) && x > 0 ? (uint64_t)x : 0;
	s->clk_boot[0] = '\0';
	if (zila_store_meta_get(s, META_BOOT, &boot) == 0)
		snprintf(s->clk_boot, sizeof(s->clk_boot), "%s", boot);
	free(boot);
	s->clk_dirty = false;
}

static uint64_t add_ms(uint64_t t, int64_t d)
{
	if (d < 0 && (uint64_t)-d > t)
		return 0;
	return d < 0 ? t - (uint64_t)-d : t + (uint64_t)d;
}

static int64_t diff_ms(uint64_t a, uint64_t b)
{
	return a >= b ? (int64_t)(a - b) : -(int64_t)(b - a);
}

/* Forgets the offset: it no longer says anything about this clock. */
static void drop_offset(struct zila_store *s)
{
	s->clk_has_offset = false;
	s->clk_offset = 0;
	s->clk_dirty = true;
}

/* HQ's clock minus this computer's, now that it reads wall; false when nothing learnt
 * holds. An offset says what HQ's time was when it was learnt (learnt_wall + offset):
 * - in the same boot, the time that has really passed since is known (uptime), so HQ's
 *   time now is known whatever was done to this clock meanwhile: set right, either way,
 *   while zila ran or while it did not;
 * - after a restart of the computer, what passed is not known. A clock that now reads
 *   before the time the offset was learnt was set back; a clock said to be behind that
 *   now reads at least the latest time HQ is known to have reached was set forward (or
 *   ran on that long): either way the offset no longer holds, and the clock is believed
 *   (dates stay clamped at or past that HQ time). Otherwise the offset is kept and counts
 *   from this boot on. */
static bool offset_now(struct zila_store *s, uint64_t wall, int64_t *off)
{
	struct zila_uptime u;
	*off = 0;
	if (!s->clk_has_offset)
		return false;
	uint64_t hq_then = add_ms(s->clk_learnt_wall, s->clk_offset);
	bool up = s->uptime(s->uptime_ctx, &u);
	if (up && s->clk_boot[0] != '\0' && strcmp(u.boot, s->clk_boot) == 0 && u.ms >= s->clk_learnt_up) {
		*off = diff_ms(hq_then + (u.ms - s->clk_learnt_up), wall);
		return true;
	}
	uint64_t hq_known = hq_then > s->clk_seen ? hq_then : s->clk_seen;
	if (wall + ZILA_CLOCK_WARN_MS < s->clk_learnt_wall ||
	    (s->clk_offset > 0 && wall + ZILA_CLOCK_WARN_MS >= hq_known)) {
		drop_offset(s);
		return false;
	}
	*off = s->clk_offset;
	if (up) {
		s->clk_learnt_wall = wall;
		s->clk_learnt_up = u.ms;
		snprintf(s->clk_boot, sizeof(s->clk_boot), "%s", u.boot);
		s->clk_dirty = true;
	}
	return true;
}

/* The latest HQ time known to have passed: HQ's word (its Hello, its signed entries, the
 * certificate it issued), or a colleague's when that is later (bounded, see hear). */
static uint64_t seen_ms_of(const struct zila_store *s)
{
	return s->clk_heard > s->clk_seen ? s->clk_heard : s->clk_seen;
}

/* The date of a change this computer's clock said was made at wall_then: what it says
 * mapped to HQ's time by what is known now, within the bounds every date keeps (never
 * before the last HQ time known, never more than ZILA_CLOCK_LEAD_MS past it), and never
 * past now. */
static uint64_t stamp_of(struct zila_store *s, uint64_t wall, uint64_t wall_then)
{
	int64_t off;
	bool has = offset_now(s, wall, &off);
	uint64_t t = add_ms(wall_then < wall ? wall_then : wall, has ? off : 0), seen = seen_ms_of(s);
	if (s->clk_ref || seen == 0)
		return t;
	if (t < seen)
		return seen;
	if (t > seen + ZILA_CLOCK_LEAD_MS)
		return seen + ZILA_CLOCK_LEAD_MS;
	return t;
}

uint64_t store_stamp_ms(struct zila_store *s)
{
	uint64_t wall = store_now_ms(s);
	return stamp_of(s, wall, wall);
}

uint64_t store_stamp_at(struct zila_store *s, uint64_t wall_then)
{
	return stamp_of(s, store_now_ms(s), wall_then);
}

void zila_store_clock(struct zila_store *s, struct zila_clock *out)
{
	memset(out, 0, sizeof(*out));
	out->wall_ms = store_now_ms(s);
	out->stamp_ms = store_stamp_ms(s);
	out->seen_ms = seen_ms_of(s);
	out->hq_seen_ms = s->clk_seen;
	out->heard_ms = s->clk_heard;
	out->is_reference = s->clk_ref;
	int64_t off = 0;
	out->has_offset = !s->clk_ref && offset_now(s, out->wall_ms, &off);
	out->offset_ms = off;
	uint64_t t = add_ms(out->wall_ms, off);
	out->hq_est_ms = t;
	if (s->clk_ref)
		out->state = ZILA_CLOCK_OK;
	else if (out->seen_ms == 0 && !out->has_offset)
		out->state = ZILA_CLOCK_NONE;
	else if (out->has_offset && off < -(int64_t)ZILA_CLOCK_WARN_MS)
		out->state = ZILA_CLOCK_AHEAD;
	else if (out->has_offset && off > (int64_t)ZILA_CLOCK_WARN_MS)
		out->state = ZILA_CLOCK_BEHIND;
	else if (out->seen_ms != 0 && t > out->seen_ms + ZILA_CLOCK_LEAD_MS)
		out->state = ZILA_CLOCK_STALE;
	else if (out->seen_ms != 0 && t + ZILA_CLOCK_WARN_MS < out->seen_ms)
		out->state = ZILA_CLOCK_BEHIND;
	else
		out->state = ZILA_CLOCK_OK;
}

static int save_i64(struct zila_store *s, const char *key, int64_t v)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%lld", (long long)v);
	return zila_store_meta_set(s, key, buf);
}

int zila_store_clock_reference(struct zila_store *s)
{
	int r = zila_store_meta_set(s, META_REF, "1");
	if (r == 0) {
		s->clk_ref = true;
		s->clk_has_offset = false;
		s->clk_offset = 0;
	}
	return r;
}

/* Writes the offset down as memory has it (dropped: an offset of no use to anyone). */
static int save_offset(struct zila_store *s)
{
	int r;
	if (!s->clk_has_offset) {
		r = zila_store_meta_set(s, META_LEARNT, "0");
	} else if ((r = save_i64(s, META_OFFSET, s->clk_offset)) == 0 &&
		   (r = save_i64(s, META_LEARNT, (int64_t)s->clk_learnt_wall)) == 0 &&
		   (r = save_i64(s, META_UP, (int64_t)s->clk_learnt_up)) == 0) {
		r = zila_store_meta_set(s, META_BOOT, s->clk_boot);
	}
	if (r == 0)
		s->clk_dirty = false;
	return r;
}

int zila_store_clock_learn(struct zila_store *s, uint64_t seen_ms, bool has_offset, int64_t offset_ms)
{
	if (s->clk_ref)
		return 0;
	uint64_t wall = store_now_ms(s);
	int r = 0;
	if (seen_ms > s->clk_seen)
		s->clk_seen = seen_ms;
	if (has_offset) {
		/* HQ says what its clock reads: what anyone else told of it, and any "HQ time known
		 * to have passed" beyond it (written down by an older zila that believed a
		 * colleague), no longer hold. */
		if (s->clk_heard != 0) {
			s->clk_heard = 0;
			if ((r = zila_store_meta_set(s, META_HEARD, "0")) != 0)
				return r;
		}
		uint64_t hq_now = add_ms(wall, offset_ms);
		if (s->clk_seen > hq_now + ZILA_CLOCK_WARN_MS) {
			zila_log(ZILA_LOG_WARN, "clock: HQ's time is %llu ms before what this replica believed had "
				 "passed; HQ's word holds", (unsigned long long)(s->clk_seen - hq_now));
			s->clk_seen = hq_now;
			s->clk_saved_seen = 0;
		}
		/* Kept as it was learnt unless what is known already says otherwise by a second:
		 * what was written down then goes on holding. */
		int64_t known;
		bool had = offset_now(s, wall, &known);
		if (!had || s->clk_dirty || known - offset_ms > SAVE_OFFSET_MS || offset_ms - known > SAVE_OFFSET_MS) {
			struct zila_uptime u;
			bool up = s->uptime(s->uptime_ctx, &u);
			s->clk_has_offset = true;
			s->clk_offset = offset_ms;
			s->clk_learnt_wall = wall;
			s->clk_learnt_up = up ? u.ms : 0;
			snprintf(s->clk_boot, sizeof(s->clk_boot), "%s", up ? u.boot : "");
			s->clk_dirty = true;
		}
	}
	if (s->clk_seen >= s->clk_saved_seen + SAVE_SEEN_MS) {
		if ((r = save_i64(s, META_SEEN, (int64_t)s->clk_seen)) != 0)
			return r;
		s->clk_saved_seen = s->clk_seen;
	}
	if (s->clk_dirty && (has_offset || !s->clk_has_offset))
		r = save_offset(s);
	return r;
}

int zila_store_clock_hear(struct zila_store *s, uint64_t seen_ms)
{
	if (s->clk_ref || seen_ms <= seen_ms_of(s))
		return 0;
	/* No further than the lead past what this replica itself can vouch for (its clock, moved
	 * by HQ's offset), and never past a time HQ itself said had not come yet. */
	uint64_t wall = store_now_ms(s);
	int64_t off;
	bool has = offset_now(s, wall, &off);
	uint64_t cap = add_ms(wall, has ? off : 0) + ZILA_CLOCK_LEAD_MS;
	if (seen_ms > cap) {
		char said[40];
		zila_format_time(seen_ms, said, sizeof(said));
		zila_log(ZILA_LOG_WARN, "clock: a laptop says HQ's time has passed %s, more than the lead (2 days) "
			 "past this replica's own; believed only that far until HQ is reached", said);
		seen_ms = cap;
	}
	if (seen_ms <= seen_ms_of(s))
		return 0;
	bool save = seen_ms >= s->clk_heard + SAVE_SEEN_MS;
	s->clk_heard = seen_ms;
	return save ? save_i64(s, META_HEARD, (int64_t)seen_ms) : 0;
}

void zila_clock_describe(const struct zila_clock *c, char *buf, size_t n)
{
	char wall[40], hq[40], seen[40], stamp[40], span[48];
	buf[0] = '\0';
	zila_format_time(c->wall_ms, wall, sizeof(wall));
	zila_format_time(c->stamp_ms, stamp, sizeof(stamp));
	zila_format_time(c->seen_ms, seen, sizeof(seen));
	switch (c->state) {
	case ZILA_CLOCK_AHEAD:
	case ZILA_CLOCK_BEHIND:
		if (c->has_offset) {
			uint64_t off = (uint64_t)(c->offset_ms < 0 ? -c->offset_ms : c->offset_ms);
			zila_format_span(off, span, sizeof(span));
			zila_format_time(add_ms(c->wall_ms, c->offset_ms), hq, sizeof(hq));
			snprintf(buf, n,
				 "this computer's clock is wrong: it is %s %s HQ's (it says %s, HQ's time is about %s). "
				 "zila dates your changes by HQ's time; please set the clock right.",
				 span, c->offset_ms < 0 ? "ahead of" : "behind", wall, hq);
		} else {
			snprintf(buf, n,
				 "this computer's clock is behind: it says %s, but HQ's time had already reached %s. "
				 "Your changes are dated %s until the clock is set right or this laptop syncs with HQ.",
				 wall, seen, stamp);
		}
		break;
	case ZILA_CLOCK_STALE:
		zila_format_span(c->wall_ms > c->seen_ms ? c->wall_ms - c->seen_ms : 0, span, sizeof(span));
		snprintf(buf, n,
			 "no news of HQ's time since %s, %s ago by this computer's clock (which says %s): either this "
			 "laptop has been out of touch that long or its clock is ahead. Changes made now count as made "
			 "on %s at the latest; sync with HQ or a colleague's laptop to set this right.",
			 seen, span, wall, stamp);
		break;
	default:
		break;
	}
}
