/* The trust layer inside a replica: the organisation, certificates and revocations kept as
 * the store's trust records, HQ operations (issue, revoke, invite, redeem) and enforcement hooks. */
#include "zila/trust.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "zila/clock.h"
#include "zila/log.h"
#include "zila/os.h"

#define HQ_VALID_DAYS 3650
#define DAY 86400ull

uint64_t zila_trust_now(struct zila_trust_ctx *ctx)
{
	if (ctx->now != NULL)
		return ctx->now(ctx->clock_ctx);
	/* The time this replica dates by: HQ's time as best known, bounded (store.h). */
	struct zila_clock c;
	zila_store_clock(ctx->s, &c);
	return c.stamp_ms / 1000;
}

int zila_trust_org(struct zila_store *s, uint8_t root_pk[32])
{
	char *hex = NULL;
	uint8_t pk[32];
	int r = zila_store_meta_get(s, ZILA_META_ORG_PK, &hex);
	if (r != 0)
		goto out;
	if ((r = zila_hex_decode(pk, 32, hex, strlen(hex))) != 0)
		goto out;
	if (root_pk != NULL)
		memcpy(root_pk, pk, 32);
out:
	free(hex);
	return r;
}

/* The bytes of the trust record (type, device_pk), malloc'd into *out. */
static int record_get(struct zila_store *s, uint8_t type, const uint8_t device_pk[32], uint8_t **out, size_t *len)
{
	return zila_store_trust_get(s, type, zila_view_make(device_pk, 32), out, len);
}

int zila_trust_cert_get(struct zila_store *s, const uint8_t device_pk[32], struct zila_cert *out)
{
	uint8_t *p = NULL;
	size_t n;
	int r = record_get(s, ZILA_TRUST_CERT, device_pk, &p, &n);
	memset(out, 0, sizeof(*out));
	if (r == 0)
		r = zila_cert_decode(zila_view_make(p, n), out);
	/* A record filed under another device's key is never believed. */
	if (r == 0 && sodium_memcmp(out->device_pk, device_pk, 32) != 0)
		r = ZILA_ECERT;
	free(p);
	return r;
}

int zila_trust_revocation_get(struct zila_store *s, const uint8_t device_pk[32], struct zila_revocation *out)
{
	uint8_t *p = NULL;
	size_t n;
	int r = record_get(s, ZILA_TRUST_REVOKE, device_pk, &p, &n);
	memset(out, 0, sizeof(*out));
	if (r == 0)
		r = zila_revocation_decode(zila_view_make(p, n), out);
	if (r == 0 && sodium_memcmp(out->device_pk, device_pk, 32) != 0) {
		zila_revocation_release(out);
		r = ZILA_ECERT;
	}
	free(p);
	return r;
}

struct cert_walk {
	int (*fn)(void *ctx, const struct zila_cert *c);
	void *ctx;
	const uint8_t *device_pk; /* certs_of: only this device's */
	struct zila_cert *out;
	size_t max, n;
};

static int each_cert(void *ctx, uint8_t type, struct zila_view id, struct zila_view bytes)
{
	struct cert_walk *w = ctx;
	struct zila_cert c;
	(void)type;
	if (bytes.len == 0 || zila_cert_decode(bytes, &c) != 0)
		return 0;
	/* Skip records filed under another device's key. */
	if (id.len != 32 || memcmp(id.p, c.device_pk, 32) != 0)
		return 0;
	return w->fn(w->ctx, &c);
}

int zila_trust_cert_each(struct zila_store *s, int (*fn)(void *ctx, const struct zila_cert *c), void *ctx)
{
	struct cert_walk w = { .fn = fn, .ctx = ctx };
	return zila_store_trust_find(s, ZILA_TRUST_CERT, zila_view_make(NULL, 0), each_cert, &w);
}

static int collect_cert(void *ctx, uint8_t type, struct zila_view id, struct zila_view bytes)
{
	struct cert_walk *w = ctx;
	if (w->n == w->max || id.len != (type == ZILA_TRUST_CERT ? 32 : ZILA_TRUST_PAST_ID_LEN))
		return 0;
	/* A record filed under another device's key is never believed. */
	if (bytes.len == 0 || zila_cert_decode(bytes, &w->out[w->n]) != 0 ||
	    sodium_memcmp(w->out[w->n].device_pk, w->device_pk, 32) != 0)
		return 0;
	w->n++;
	return 0;
}

/* Every certificate kept for device_pk (current and earlier), at most max, into out. */
static int certs_of(struct zila_store *s, const uint8_t device_pk[32], struct zila_cert *out, size_t max, size_t *n)
{
	struct cert_walk w = { .device_pk = device_pk, .out = out, .max = max };
	struct zila_view key = zila_view_make(device_pk, 32);
	int r = zila_store_trust_find(s, ZILA_TRUST_CERT, key, collect_cert, &w);
	r = r ? r : zila_store_trust_find(s, ZILA_TRUST_CERT_PAST, key, collect_cert, &w);
	*n = w.n;
	return r;
}

/* Which of two certificates of a device is newer: by not-before, then by bytes, so that
 * every replica calls the same one current. */
static bool cert_newer(const struct zila_cert *a, const struct zila_cert *b)
{
	if (a->not_before != b->not_before)
		return a->not_before > b->not_before;
	return memcmp(a->sig, b->sig, sizeof(a->sig)) > 0;
}

int zila_trust_cert_at(struct zila_store *s, const uint8_t device_pk[32], uint64_t t, struct zila_cert *out)
{
	struct zila_cert *all = calloc(ZILA_TRUST_HISTORY_MAX, sizeof(*all));
	size_t n = 0;
	int r = all == NULL ? ZILA_ENOMEM : certs_of(s, device_pk, all, ZILA_TRUST_HISTORY_MAX, &n);
	const struct zila_cert *best = NULL;
	memset(out, 0, sizeof(*out));
	if (r != 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (all[i].not_before <= t && (best == NULL || cert_newer(&all[i], best)))
			best = &all[i];
	r = n == 0 ? ZILA_ENOTFOUND : best == NULL ? ZILA_EEXPIRED : 0;
	if (best != NULL)
		*out = *best;
out:
	free(all);
	return r;
}

static void past_id(const struct zila_cert *c, struct zila_view bytes, uint8_t id[ZILA_TRUST_PAST_ID_LEN])
{
	uint8_t h[32];
	memcpy(id, c->device_pk, 32);
	for (int i = 0; i < 8; i++)
		id[32 + i] = (uint8_t)(c->not_before >> (56 - 8 * i));
	crypto_generichash(h, sizeof(h), bytes.p, bytes.len, NULL, 0);
	memcpy(id + 40, h, 8);
}

bool zila_trust_held(struct zila_store *s, uint8_t type, struct zila_view bytes)
{
	struct zila_cert c;
	struct zila_revocation rv;
	uint8_t id[ZILA_TRUST_PAST_ID_LEN];
	if (type == ZILA_TRUST_REVOKE) {
		memset(&rv, 0, sizeof(rv));
		if (zila_revocation_decode(bytes, &rv) != 0)
			return false;
		memcpy(id, rv.device_pk, 32);
		zila_revocation_release(&rv);
		return zila_store_trust_held(s, type, zila_view_make(id, 32), bytes);
	}
	if ((type != ZILA_TRUST_CERT && type != ZILA_TRUST_CERT_PAST) || zila_cert_decode(bytes, &c) != 0)
		return false;
	past_id(&c, bytes, id);
	return zila_store_trust_held(s, ZILA_TRUST_CERT, zila_view_make(c.device_pk, 32), bytes) ||
	       zila_store_trust_held(s, ZILA_TRUST_CERT_PAST, zila_view_make(id, sizeof(id)), bytes);
}

/* Files a certificate: the newest of a device is its current one (type 1), the others are
 * kept as earlier ones, each judging the entries of its own time (zila_trust_cert_at). */
static int keep_cert(struct zila_store *s, const struct zila_cert *c, struct zila_view bytes)
{
	uint8_t *held_bytes = NULL, id[ZILA_TRUST_PAST_ID_LEN];
	size_t held_len = 0;
	struct zila_cert held;
	int r = record_get(s, ZILA_TRUST_CERT, c->device_pk, &held_bytes, &held_len);
	if (r == ZILA_ENOTFOUND) {
		r = zila_store_trust_put(s, ZILA_TRUST_CERT, zila_view_make(c->device_pk, 32), bytes);
		goto out;
	}
	if (r != 0)
		goto out;
	if (held_len == bytes.len && memcmp(held_bytes, bytes.p, bytes.len) == 0)
		goto out;
	struct zila_view hv = zila_view_make(held_bytes, held_len);
	if (zila_cert_decode(hv, &held) != 0 || sodium_memcmp(held.device_pk, c->device_pk, 32) != 0) {
		/* Not a certificate of this device: nothing worth keeping. */
		r = zila_store_trust_put(s, ZILA_TRUST_CERT, zila_view_make(c->device_pk, 32), bytes);
		goto out;
	}
	if (cert_newer(c, &held)) {
		past_id(&held, hv, id);
		if ((r = zila_store_trust_put(s, ZILA_TRUST_CERT_PAST, zila_view_make(id, sizeof(id)), hv)) == 0)
			r = zila_store_trust_put(s, ZILA_TRUST_CERT, zila_view_make(c->device_pk, 32), bytes);
	} else {
		past_id(c, bytes, id);
		r = zila_store_trust_put(s, ZILA_TRUST_CERT_PAST, zila_view_make(id, sizeof(id)), bytes);
	}
out:
	free(held_bytes);
	return r;
}

/* The partitions this device's current certificate may write, for its triggers (#16). */
static int own_scope(struct zila_store *s, const struct zila_cert *own)
{
	const char *part = own->scope_all ? "" : own->district;
	return strcmp(part, zila_store_write_scope(s)) == 0 ? 0 : zila_store_set_write_scope(s, part);
}

/* --- revocations of authors and of their issuers (#15 items 12, 13) ------------------ */

/* Whether entry e stands under revocation rv: not past its author's mark, and not dated at or
 * after the revocation of the HQ device that issued c, the author's certificate of the
 * entry's time (NULL: none known). Signed data only, so every replica judges alike.
 * ZILA_EREVOKED with the reason in why, else 0. */
static int past_mark(const struct zila_revocation *rv, const struct zila_entry_info *e, const struct zila_cert *c,
		     char *why, size_t n)
{
	if (sodium_memcmp(rv->device_pk, e->origin, 32) == 0) {
		uint64_t mark = zila_revocation_mark(rv, e->part);
		if (e->seq > mark) {
			snprintf(why, n, "revoked after seq %" PRIu64, mark);
			return ZILA_EREVOKED;
		}
	}
	if (c != NULL && sodium_memcmp(rv->device_pk, c->issuer_pk, 32) == 0 && zila_hlc_ms(e->hlc) / 1000 >= rv->created) {
		snprintf(why, n, "dated after the revocation of the HQ device that certified its author");
		return ZILA_EREVOKED;
	}
	return 0;
}

/* past_mark() under the revocations this replica holds of the author and of its issuer. */
static int revoked_past(struct zila_store *s, const struct zila_entry_info *e, const struct zila_cert *c, char *why,
			size_t n)
{
	struct zila_revocation rv;
	int r = 0;
	if (zila_trust_revocation_get(s, e->origin, &rv) == 0) {
		r = past_mark(&rv, e, NULL, why, n);
		zila_revocation_release(&rv);
	}
	if (r == 0 && c != NULL && zila_trust_revocation_get(s, c->issuer_pk, &rv) == 0) {
		r = past_mark(&rv, e, c, why, n);
		zila_revocation_release(&rv);
	}
	return r;
}

struct cut_ctx {
	struct zila_store *s;
	const struct zila_revocation *rv; /* the one being kept */
};

static bool entry_stands(void *ctx, const struct zila_entry_info *e)
{
	struct cut_ctx *cc = ctx;
	struct zila_cert c;
	char why[160];
	bool have = zila_trust_cert_at(cc->s, e->origin, zila_hlc_ms(e->hlc) / 1000, &c) == 0;
	return past_mark(cc->rv, e, have ? &c : NULL, why, sizeof(why)) == 0 &&
	       revoked_past(cc->s, e, have ? &c : NULL, why, sizeof(why)) == 0;
}

struct issued_walk {
	const uint8_t *issuer;
	uint8_t (*pks)[32];
	size_t n, cap;
	int r;
};

static int collect_issued_pk(struct issued_walk *w, const uint8_t pk[32])
{
	for (size_t i = 0; i < w->n; i++)
		if (memcmp(w->pks[i], pk, 32) == 0)
			return 0;
	if (w->n == w->cap) {
		size_t ncap = w->cap ? 2 * w->cap : 16;
		uint8_t(*np)[32] = realloc(w->pks, ncap * sizeof(*np));
		if (np == NULL)
			return w->r = ZILA_ENOMEM;
		w->pks = np;
		w->cap = ncap;
	}
	memcpy(w->pks[w->n++], pk, 32);
	return 0;
}

static int collect_issued(void *ctx, uint8_t type, struct zila_view id, struct zila_view bytes)
{
	struct issued_walk *w = ctx;
	struct zila_cert c;
	(void)type;
	(void)id;
	if (zila_cert_decode(bytes, &c) != 0 || sodium_memcmp(c.issuer_pk, w->issuer, 32) != 0)
		return 0;
	return collect_issued_pk(w, c.device_pk);
}

/* Before a revocation is kept: what this replica took past its mark is undone (the
 * revoked device's entries past its marks; if it is an HQ device, the entries of the devices
 * it certified dated at or after the revocation), so that the rows are those of a replica
 * that learnt the revocation first (proto/TRUST.md, "Entries past a mark"). */
static int undo_past(struct zila_store *s, const struct zila_revocation *rv)
{
	struct cut_ctx cc = { s, rv };
	struct issued_walk w = { .issuer = rv->device_pk };
	struct zila_error err;
	size_t ncut = 0;
	zila_error_clear(&err);
	/* the revoked device, then every device it certified: one cut, one remaking */
	int r = collect_issued_pk(&w, rv->device_pk);
	r = r ? r : zila_store_trust_find(s, ZILA_TRUST_CERT, zila_view_make(NULL, 0), collect_issued, &w);
	r = r ? r : zila_store_trust_find(s, ZILA_TRUST_CERT_PAST, zila_view_make(NULL, 0), collect_issued, &w);
	r = r ? r : w.r;
	r = r ? r : zila_store_cut(s, (const uint8_t(*)[32])w.pks, w.n, entry_stands, &cc, &ncut, &err);
	if (r != 0)
		zila_log(ZILA_LOG_WARN, "cannot undo a revoked device's entries: %s", zila_error_msg(&err, r));
	free(w.pks);
	return r;
}

int zila_trust_keep(struct zila_store *s, uint8_t type, struct zila_view bytes)
{
	if (type == ZILA_TRUST_CERT || type == ZILA_TRUST_CERT_PAST) {
		struct zila_cert c, own;
		int r = zila_cert_decode(bytes, &c);
		r = r ? r : keep_cert(s, &c, bytes);
		/* this device's own: its triggers refuse what it may not write (#16) */
		if (r == 0 && sodium_memcmp(c.device_pk, zila_store_device_pk(s), 32) == 0 &&
		    zila_trust_cert_get(s, c.device_pk, &own) == 0)
			r = own_scope(s, &own);
		return r;
	}
	if (type == ZILA_TRUST_REVOKE) {
		struct zila_revocation rv;
		memset(&rv, 0, sizeof(rv));
		int r = zila_revocation_decode(bytes, &rv);
		/* undone first: if that fails, the revocation is not kept and comes again */
		r = r ? r : undo_past(s, &rv);
		if (r == 0)
			r = zila_store_trust_put(s, type, zila_view_make(rv.device_pk, 32), bytes);
		zila_revocation_release(&rv);
		return r;
	}
	return ZILA_EFORMAT;
}

/* The issuer's certificate that vouched at time t (an HQ device renews its own too). */
static int check_with_issuer(struct zila_store *s, const uint8_t root_pk[32], const uint8_t issuer_pk[32], uint64_t t,
			     struct zila_cert *issuer, const struct zila_cert **ip)
{
	*ip = NULL;
	if (sodium_memcmp(issuer_pk, root_pk, 32) == 0)
		return 0;
	int r = zila_trust_cert_at(s, issuer_pk, t, issuer);
	if (r == ZILA_EEXPIRED)
		r = zila_trust_cert_get(s, issuer_pk, issuer); /* its verify says "expired" */
	if (r == 0)
		*ip = issuer;
	return r == ZILA_ENOTFOUND ? 0 : r;
}

int zila_trust_cert_check(struct zila_store *s, const uint8_t root_pk[32], const struct zila_cert *c, uint64_t now,
			  struct zila_error *err)
{
	struct zila_cert issuer;
	const struct zila_cert *ip;
	char id[ZILA_DEVICE_ID_LEN + 1];
	int r = check_with_issuer(s, root_pk, c->issuer_pk, now, &issuer, &ip);
	if (r == 0)
		r = zila_cert_verify(c, root_pk, ip, now);
	if (r != 0) {
		zila_device_id(c->device_pk, id);
		zila_error_set(err, r, "certificate of device '%s': %s", id, zila_strerror(r));
	}
	return r;
}

/* Certificates a device held before keep their say over the entries of their time. */
static int put_record(struct zila_store *s, uint8_t type, const uint8_t device_pk[32], struct zila_view bytes)
{
	(void)device_pk;
	return zila_trust_keep(s, type, bytes);
}

bool zila_trust_own_cert_warning(struct zila_store *s, uint64_t t, char *msg, size_t n)
{
	struct zila_cert own;
	char when[40];
	msg[0] = '\0';
	if (zila_trust_org(s, NULL) != 0 || zila_trust_cert_get(s, zila_store_device_pk(s), &own) != 0)
		return false;
	if (t > own.not_after) {
		zila_format_time(own.not_after * 1000, when, sizeof(when));
		snprintf(msg, n,
			 "this device's certificate expired on %s: changes made here now are refused by HQ and by every "
			 "peer, and hold back this device's later changes; ask HQ to renew it ('zila enrol sign' at HQ, "
			 "'zila enrol install' here) before making changes",
			 when);
	} else if (t < own.not_before) {
		zila_format_time(own.not_before * 1000, when, sizeof(when));
		snprintf(msg, n, "this device's certificate is valid only from %s: changes made here before then are refused",
			 when);
	} else if (own.not_after - t < ZILA_CERT_WARN_DAYS * DAY) {
		zila_format_time(own.not_after * 1000, when, sizeof(when));
		snprintf(msg, n,
			 "this device's certificate expires on %s: ask HQ to renew it before then ('zila enrol request' "
			 "here, 'zila enrol sign' at HQ, 'zila enrol install' here)",
			 when);
	}
	return msg[0] != '\0';
}

static int adopt_register(struct zila_store *s, uint64_t now);

/* --- the organisation secret (DIR/org.secret: "ZILASEC1" || 32 bytes, 0600) ------------ */

#define SECRET_MAGIC "ZILASEC1"
#define SECRET_FILE_LEN (8 + ZILA_ORG_SECRET_LEN)

static void secret_path(struct zila_store *s, char *path, size_t n)
{
	snprintf(path, n, "%s/%s", zila_store_dir(s), ZILA_ORG_SECRET_FILE);
}

/* Writes the secret file; replace: over one that is there (a certificate file that brings
 * the secret to a device that had another, e.g. a replica restored from a backup). */
static int secret_keep(struct zila_store *s, const uint8_t secret[ZILA_ORG_SECRET_LEN], bool replace,
		       struct zila_error *err)
{
	char path[4096];
	uint8_t b[SECRET_FILE_LEN];
	secret_path(s, path, sizeof(path));
	memcpy(b, SECRET_MAGIC, 8);
	memcpy(b + 8, secret, ZILA_ORG_SECRET_LEN);
	int r = replace ? zila_os_write_atomic(path, b, sizeof(b), 0600, err) : zila_os_write_new(path, b, sizeof(b), 0600, err);
	sodium_memzero(b, sizeof(b));
	return r;
}

/* Whether this device is the HQ that holds the root key file, which makes the secret. */
static bool root_hq(struct zila_store *s)
{
	uint8_t root_pk[32];
	struct zila_cert own;
	char path[4096];
	struct zila_buf b;
	if (zila_trust_org(s, root_pk) != 0 || zila_trust_cert_get(s, zila_store_device_pk(s), &own) != 0)
		return false;
	if (own.role != ZILA_ROLE_HQ || !own.scope_all || sodium_memcmp(own.issuer_pk, root_pk, 32) != 0)
		return false;
	snprintf(path, sizeof(path), "%s/%s", zila_store_dir(s), ZILA_ORG_KEY_FILE);
	zila_buf_init(&b, 4096);
	int r = zila_os_read_file(path, 4096, &b, NULL, NULL);
	zila_buf_release(&b);
	return r == 0;
}

int zila_trust_org_secret(struct zila_store *s, uint8_t secret[ZILA_ORG_SECRET_LEN])
{
	char path[4096];
	struct zila_buf b;
	int r;
	memset(secret, 0, ZILA_ORG_SECRET_LEN);
	secret_path(s, path, sizeof(path));
	for (int attempt = 0; attempt < 2; attempt++) {
		zila_buf_init(&b, SECRET_FILE_LEN);
		r = zila_os_read_file(path, SECRET_FILE_LEN, &b, NULL, NULL);
		if (r == 0 && (b.len != SECRET_FILE_LEN || memcmp(b.p, SECRET_MAGIC, 8) != 0))
			r = ZILA_EFORMAT;
		if (r == 0)
			memcpy(secret, b.p + 8, ZILA_ORG_SECRET_LEN);
		sodium_memzero(b.p, b.len);
		zila_buf_release(&b);
		if (r != ZILA_ENOTFOUND || attempt > 0 || !root_hq(s))
			break;
		/* An HQ made before organisation secrets existed gets one now; every laptop it
		 * enrolled before must be enrolled again to hold it. An HQ that made one and lost
		 * the file does not make another, which would cut off every laptop: it is restored
		 * from a backup (the replica remembers that one was made). */
		char *made = NULL;
		int m = zila_store_meta_get(s, ZILA_META_ORG_SECRET_MADE, &made);
		free(made);
		if (m != ZILA_ENOTFOUND) {
			r = m == 0 ? ZILA_ENOTFOUND : m;
			break;
		}
		uint8_t fresh[ZILA_ORG_SECRET_LEN];
		randombytes_buf(fresh, sizeof(fresh));
		r = secret_keep(s, fresh, false, NULL);
		sodium_memzero(fresh, sizeof(fresh));
		if (r == 0)
			r = zila_store_meta_set(s, ZILA_META_ORG_SECRET_MADE, "1");
		if (r != 0 && r != ZILA_EEXIST)
			break; /* else read what another process made */
	}
	return r;
}

int zila_trust_org_secret_adopt(struct zila_store *s, const char *key_file, struct zila_error *err)
{
	char own[4096], path[4096];
	struct zila_buf b;
	int r;
	secret_path(s, own, sizeof(own));
	zila_buf_init(&b, SECRET_FILE_LEN);
	r = zila_os_read_file(own, SECRET_FILE_LEN, &b, NULL, NULL);
	zila_buf_release(&b);
	/* from here on this device never makes a secret of its own: that would split it from
	 * every laptop of the organisation */
	if (zila_store_meta_set(s, ZILA_META_ORG_SECRET_MADE, "1") != 0)
		return zila_error_set(err, ZILA_EDB, "cannot record the organisation secret");
	if (r == 0)
		return 0; /* it has one (an HQ renewing its own certificate) */
	const char *slash = strrchr(key_file, '/');
	if (slash == NULL)
		snprintf(path, sizeof(path), "%s", ZILA_ORG_SECRET_FILE);
	else
		snprintf(path, sizeof(path), "%.*s/%s", (int)(slash - key_file), key_file, ZILA_ORG_SECRET_FILE);
	zila_buf_init(&b, SECRET_FILE_LEN);
	r = zila_os_read_file(path, SECRET_FILE_LEN, &b, NULL, NULL);
	if (r == 0 && (b.len != SECRET_FILE_LEN || memcmp(b.p, SECRET_MAGIC, 8) != 0))
		r = ZILA_EFORMAT;
	if (r == 0)
		r = secret_keep(s, b.p + 8, false, err);
	else if (r == ZILA_ENOTFOUND)
		zila_error_set(err, r,
			       "there is no organisation secret beside the root key ('%s'): copy the organisation's "
			       "'%s' (backed up with '%s') to '%s'; until then this HQ can neither sync nor enrol",
			       path, ZILA_ORG_SECRET_FILE, ZILA_ORG_KEY_FILE, own);
	else
		zila_error_set(err, r, "cannot read the organisation secret '%s': %s", path, zila_strerror(r));
	if (b.p != NULL)
		sodium_memzero(b.p, b.len);
	zila_buf_release(&b);
	return r;
}

/* This device's HQ certificate, which lets it issue certificates for the root. */
static int own_hq_cert(struct zila_store *s, uint8_t root_pk[32], struct zila_cert *own, uint64_t now,
		       struct zila_error *err)
{
	int r = zila_trust_org(s, root_pk);
	if (r != 0)
		return zila_error_set(err, ZILA_ENOTENROLLED, "this replica belongs to no organisation");
	if ((r = zila_trust_cert_get(s, zila_store_device_pk(s), own)) != 0)
		return zila_error_set(err, ZILA_ENOTENROLLED, "this device has no certificate");
	if (own->role != ZILA_ROLE_HQ || !own->scope_all || sodium_memcmp(own->issuer_pk, root_pk, 32) != 0)
		return zila_error_set(err, ZILA_ECERT, "this device is not the organisation's HQ");
	if ((r = zila_cert_verify(own, root_pk, NULL, now)) != 0)
		return zila_error_set(err, r, "the HQ certificate of this device: %s", zila_strerror(r));
	return 0;
}

int zila_trust_org_init(struct zila_store *s, const char *name, const char *pass, size_t pass_len,
			const struct zila_pwcost *cost, uint64_t now, struct zila_error *err)
{
	int r = ZILA_EINTERNAL;
	uint8_t root_pk[32], *root_sk = NULL;
	char path[4096], hex[65];
	struct zila_cert c;
	struct zila_buf b;
	zila_buf_init(&b, ZILA_CERT_LEN);
	memset(&c, 0, sizeof(c));

	if (zila_trust_org(s, NULL) == 0) {
		r = zila_error_set(err, ZILA_EEXIST, "this replica already belongs to an organisation");
		goto out;
	}
	if (strlen(name) == 0 || strlen(name) > ZILA_NAME_MAX) {
		r = zila_error_set(err, ZILA_EINVAL, "organisation name must be 1 to %d bytes", ZILA_NAME_MAX);
		goto out;
	}
	snprintf(path, sizeof(path), "%s/%s", zila_store_dir(s), ZILA_ORG_KEY_FILE);
	if ((r = zila_org_key_create(path, pass, pass_len, cost, root_pk, &root_sk)) != 0) {
		zila_error_set(err, r, "cannot create '%s': %s", path, zila_strerror(r));
		goto out;
	}
	c.version = 1;
	zila_org_fingerprint(root_pk, c.org_fp);
	memcpy(c.device_pk, zila_store_device_pk(s), 32);
	snprintf(c.name, sizeof(c.name), "hq");
	c.role = ZILA_ROLE_HQ;
	c.scope_all = true;
	c.not_before = now - 3600; /* an hour of slack for clocks that lag */
	c.not_after = now + HQ_VALID_DAYS * DAY;
	if ((r = zila_cert_sign(&c, root_sk, &b)) != 0) {
		zila_error_set(err, r, "organisation name or certificate invalid");
		goto out;
	}
	zila_hex_encode(hex, root_pk, 32);
	if ((r = zila_store_meta_set(s, ZILA_META_ORG_NAME, name)) != 0 || (r = zila_store_meta_set(s, ZILA_META_ORG_PK, hex)) != 0 ||
	    (r = put_record(s, ZILA_TRUST_CERT, c.device_pk, zila_buf_view(&b))) != 0 ||
	    (r = zila_store_clock_reference(s)) != 0 || (r = adopt_register(s, now)) != 0) {
		zila_error_set(err, r, "cannot record the organisation: %s", zila_strerror(r));
		goto out;
	}
	uint8_t secret[ZILA_ORG_SECRET_LEN];
	r = zila_trust_org_secret(s, secret); /* made now: this is the root's HQ */
	sodium_memzero(secret, sizeof(secret));
	if (r != 0) {
		zila_error_set(err, r, "cannot make the organisation secret '%s/%s': %s", zila_store_dir(s),
			       ZILA_ORG_SECRET_FILE, zila_strerror(r));
		goto out;
	}
out:
	sodium_free(root_sk);
	zila_buf_release(&b);
	return r;
}

static int org_name(struct zila_store *s, char out[ZILA_NAME_MAX + 1])
{
	char *v = NULL;
	int r = zila_store_meta_get(s, ZILA_META_ORG_NAME, &v);
	out[0] = '\0';
	if (r == 0)
		snprintf(out, ZILA_NAME_MAX + 1, "%s", v);
	free(v);
	return r == ZILA_ENOTFOUND ? 0 : r;
}

/* --- what an HQ device issued (#15 item 12) ---------------------------------------- */

#define META_ISSUED "trust.issued."             /* + hex of the first 16 signature bytes */
#define META_ISSUED_SINCE "trust.issued_since" /* when this HQ's register began */

static void issued_key(const struct zila_cert *c, char out[64])
{
	char hex[33];
	zila_hex_encode(hex, c->sig, 16);
	snprintf(out, 64, "%s%s", META_ISSUED, hex);
}

static int register_issued(struct zila_store *s, const struct zila_cert *c)
{
	char key[64];
	issued_key(c, key);
	return zila_store_meta_set(s, key, "1");
}

int zila_trust_issued_here(struct zila_store *s, const struct zila_cert *c)
{
	char key[64], *v = NULL;
	if (sodium_memcmp(c->issuer_pk, zila_store_device_pk(s), 32) != 0)
		return ZILA_ENOTFOUND;
	issued_key(c, key);
	int r = zila_store_meta_get(s, key, &v);
	free(v);
	return r == 0 ? 1 : r == ZILA_ENOTFOUND ? 0 : r;
}

static int adopt_one(void *ctx, uint8_t type, struct zila_view id, struct zila_view bytes)
{
	struct zila_store *s = ctx;
	struct zila_cert c;
	(void)type;
	(void)id;
	if (zila_cert_decode(bytes, &c) != 0 || sodium_memcmp(c.issuer_pk, zila_store_device_pk(s), 32) != 0)
		return 0;
	return register_issued(s, &c);
}

/* An HQ replica made before the register kept one: what it holds of its own issuing is
 * taken as issued here, once (README, "Security"). */
static int adopt_register(struct zila_store *s, uint64_t now)
{
	char *v = NULL, val[24];
	int r = zila_store_meta_get(s, META_ISSUED_SINCE, &v);
	free(v);
	if (r != ZILA_ENOTFOUND)
		return r;
	r = zila_store_trust_find(s, ZILA_TRUST_CERT, zila_view_make(NULL, 0), adopt_one, s);
	r = r ? r : zila_store_trust_find(s, ZILA_TRUST_CERT_PAST, zila_view_make(NULL, 0), adopt_one, s);
	snprintf(val, sizeof(val), "%" PRIu64, now);
	return r ? r : zila_store_meta_set(s, META_ISSUED_SINCE, val);
}

struct rev_walk {
	struct zila_buf *b;
	size_t off[ZILA_CERT_FILE_REVOCATIONS], len[ZILA_CERT_FILE_REVOCATIONS], n;
};

static int collect_rev(void *ctx, uint8_t type, struct zila_view id, struct zila_view bytes)
{
	struct rev_walk *w = ctx;
	(void)type;
	(void)id;
	/* what does not fit comes with the first sync */
	if (w->n == ZILA_CERT_FILE_REVOCATIONS || w->b->len + bytes.len > w->b->max)
		return 0;
	w->off[w->n] = w->b->len;
	w->len[w->n] = bytes.len;
	if (zila_buf_put(w->b, bytes.p, bytes.len) != 0)
		return 0;
	w->n++;
	return 0;
}

/* The certificate file of f: with the root key, the organisation's name and every
 * revocation this replica holds (as many as fit), so that a laptop enrolled by USB refuses
 * what HQ has revoked from the start (#15 item 13). */
static int write_file(struct zila_store *s, const uint8_t root_pk[32], struct zila_cert_file *f, struct zila_buf *file_out,
		      struct zila_error *err)
{
	if (file_out == NULL)
		return 0;
	struct rev_walk *w = calloc(1, sizeof(*w));
	struct zila_buf revs;
	zila_buf_init(&revs, ZILA_CERT_FILE_MAX / 4);
	int r = w == NULL ? ZILA_ENOMEM : 0;
	if (r == 0) {
		w->b = &revs;
		r = zila_store_trust_find(s, ZILA_TRUST_REVOKE, zila_view_make(NULL, 0), collect_rev, w);
	}
	if (r == 0) {
		for (size_t i = 0; i < w->n; i++)
			f->revocations[i] = zila_view_make(revs.p + w->off[i], w->len[i]);
		f->nrevocations = w->n;
		memcpy(f->root_pk, root_pk, 32);
		r = org_name(s, f->org_name);
	}
	/* the organisation secret, boxed by this issuer to the certificate's device */
	uint8_t secret[ZILA_ORG_SECRET_LEN];
	int rs = r ? r : zila_trust_org_secret(s, secret);
	if (rs == 0)
		rs = zila_org_secret_box(secret, zila_store_device_sk(s), f->cert.device_pk, f->secret_box);
	sodium_memzero(secret, sizeof(secret));
	f->has_secret_box = rs == 0;
	if (r == 0 && rs == ZILA_ENOTFOUND) {
		r = zila_error_set(err, rs,
				   "this HQ device holds no organisation secret to give: '%s/%s' is missing; restore "
				   "it from the backup kept with '%s' (a new one would cut off every enrolled laptop)",
				   zila_store_dir(s), ZILA_ORG_SECRET_FILE, ZILA_ORG_KEY_FILE);
	} else if (r == 0 && rs != 0) {
		r = zila_error_set(err, rs, "cannot give the organisation secret: %s", zila_strerror(rs));
	} else {
		r = r ? r : zila_cert_file_encode(f, file_out);
		if (r != 0)
			zila_error_set(err, r, "cannot encode the certificate file: %s", zila_strerror(r));
	}
	f->nrevocations = 0;
	zila_buf_release(&revs);
	free(w);
	return r;
}

int zila_trust_issue(struct zila_store *s, const uint8_t device_pk[32], const char *name, int role, const char *district,
		     uint64_t now, uint32_t valid_days, struct zila_buf *file_out, struct zila_error *err)
{
	int r;
	uint8_t root_pk[32];
	struct zila_cert_file f;
	struct zila_buf b;
	zila_buf_init(&b, ZILA_CERT_LEN);
	memset(&f, 0, sizeof(f));

	if ((r = own_hq_cert(s, root_pk, &f.issuer, now, err)) != 0)
		goto out;
	if (role != ZILA_ROLE_DISTRICT && role != ZILA_ROLE_BLOCK) {
		r = zila_error_set(err, ZILA_EINVAL, "an HQ device issues district and block certificates only");
		goto out;
	}
	if (district == NULL || district[0] == '\0' || strlen(district) > ZILA_DISTRICT_MAX) {
		r = zila_error_set(err, ZILA_EINVAL, "a district id of 1 to %d bytes is needed", ZILA_DISTRICT_MAX);
		goto out;
	}
	if (strlen(name) > ZILA_NAME_MAX) {
		r = zila_error_set(err, ZILA_EINVAL, "device name '%s' is longer than %d bytes", name, ZILA_NAME_MAX);
		goto out;
	}
	f.has_issuer = true;
	f.cert.version = 1;
	memcpy(f.cert.org_fp, f.issuer.org_fp, ZILA_FP_LEN);
	memcpy(f.cert.device_pk, device_pk, 32);
	snprintf(f.cert.name, sizeof(f.cert.name), "%s", name);
	f.cert.role = (uint8_t)role;
	snprintf(f.cert.district, sizeof(f.cert.district), "%s", district);
	f.cert.not_before = now - 3600;
	f.cert.not_after = now + (uint64_t)valid_days * DAY;
	/* The certificate cannot outlive the HQ certificate that vouches for it. */
	if (f.cert.not_after > f.issuer.not_after)
		f.cert.not_after = f.issuer.not_after;
	if ((r = zila_cert_sign(&f.cert, zila_store_device_sk(s), &b)) != 0) {
		zila_error_set(err, r, "device name or district is not valid text");
		goto out;
	}
	if ((r = put_record(s, ZILA_TRUST_CERT, device_pk, zila_buf_view(&b))) != 0 ||
	    (r = register_issued(s, &f.cert)) != 0) {
		zila_error_set(err, r, "cannot keep the certificate: %s", zila_strerror(r));
		goto out;
	}
	if ((r = write_file(s, root_pk, &f, file_out, err)) != 0)
		goto out;
	r = 0;
out:
	zila_buf_release(&b);
	return r;
}

int zila_trust_install_cert(struct zila_store *s, struct zila_view file, uint64_t now, struct zila_error *err)
{
	int r;
	struct zila_cert_file f;
	uint8_t have[32], secret[ZILA_ORG_SECRET_LEN];
	char hex[65];
	struct zila_buf b;
	zila_buf_init(&b, 2 * ZILA_CERT_LEN);

	if ((r = zila_cert_file_decode(file, now, &f)) != 0) {
		char t[40];
		zila_format_time(now * 1000, t, sizeof(t));
		if (r == ZILA_EEXPIRED)
			zila_error_set(err, r,
				       "the certificate is not valid at this computer's time (%s): if the clock is wrong, "
				       "set it right and install the certificate again",
				       t);
		else
			zila_error_set(err, r, "certificate file: %s", zila_strerror(r));
		goto out;
	}
	if (sodium_memcmp(f.cert.device_pk, zila_store_device_pk(s), 32) != 0) {
		r = zila_error_set(err, ZILA_ECERT, "the certificate is for another device");
		goto out;
	}
	r = zila_trust_org(s, have);
	if (r == 0 && sodium_memcmp(have, f.root_pk, 32) != 0) {
		r = zila_error_set(err, ZILA_ECERT, "the certificate is from another organisation");
		goto out;
	}
	/* The secret is opened before anything is kept: a file whose box its issuer did not
	 * make for this device installs nothing. */
	if (f.has_secret_box &&
	    zila_org_secret_unbox(f.secret_box, f.cert.issuer_pk, zila_store_device_sk(s), secret) != 0) {
		r = zila_error_set(err, ZILA_EAUTH,
				   "the organisation secret in the certificate file was not sealed to this device by its "
				   "issuer: ask HQ for the file again; nothing was installed");
		goto out;
	}
	zila_hex_encode(hex, f.root_pk, 32);
	if ((r = zila_store_meta_set(s, ZILA_META_ORG_PK, hex)) != 0 ||
	    (f.org_name[0] && (r = zila_store_meta_set(s, ZILA_META_ORG_NAME, f.org_name)) != 0))
		goto dberr;
	if (f.has_issuer) {
		if ((r = zila_cert_encode(&f.issuer, &b)) != 0 ||
		    (r = put_record(s, ZILA_TRUST_CERT, f.issuer.device_pk, zila_buf_view(&b))) != 0)
			goto dberr;
		zila_buf_reset(&b);
	}
	if (f.has_secret_box) {
		uint8_t held[ZILA_ORG_SECRET_LEN];
		int h = zila_trust_org_secret(s, held);
		bool same = h == 0 && sodium_memcmp(held, secret, sizeof(secret)) == 0;
		r = same ? 0 : secret_keep(s, secret, h != ZILA_ENOTFOUND, err);
		sodium_memzero(held, sizeof(held));
		if (r != 0) {
			char why[sizeof(err->msg)];
			snprintf(why, sizeof(why), "%s", zila_error_msg(err, r));
			r = zila_error_set(err, r, "cannot keep the organisation secret: %s", why);
			goto out;
		}
	}
	/* HQ signed the certificate an hour after its not_before: a time HQ had reached. */
	if ((r = zila_cert_encode(&f.cert, &b)) != 0 ||
	    (r = put_record(s, ZILA_TRUST_CERT, f.cert.device_pk, zila_buf_view(&b))) != 0 ||
	    (r = zila_store_clock_learn(s, (f.cert.not_before + 3600) * 1000, false, 0)) != 0)
		goto dberr;
	/* The revocations HQ knew when it signed: checked as any trust record (#15 item 13). */
	struct zila_trust_ctx tc;
	memset(&tc, 0, sizeof(tc));
	tc.s = s;
	for (size_t i = 0; i < f.nrevocations; i++) {
		struct zila_error why;
		zila_error_clear(&why);
		if (zila_trust_held(s, ZILA_TRUST_REVOKE, f.revocations[i]))
			continue;
		if (zila_trust_check_record(&tc, ZILA_TRUST_REVOKE, f.revocations[i], &why) != 0) {
			zila_log(ZILA_LOG_WARN, "a revocation in the certificate file was not kept: %s",
				 zila_error_msg(&why, ZILA_ECERT));
			continue;
		}
		if ((r = zila_trust_keep(s, ZILA_TRUST_REVOKE, f.revocations[i])) != 0)
			goto dberr;
	}
	r = 0;
	goto out;
dberr:
	zila_error_set(err, r, "cannot keep the certificate: %s", zila_strerror(r));
out:
	sodium_memzero(secret, sizeof(secret));
	zila_buf_release(&b);
	return r;
}

/* The sequence heads this replica holds for the feeds of device_pk. */
static int collect_marks(struct zila_store *s, const uint8_t device_pk[32], struct zila_revocation *rv)
{
	struct zila_vector v = { 0 };
	int r = zila_store_vector(s, &v);
	if (r != 0)
		return r;
	size_t n = 0;
	for (size_t i = 0; i < v.nheads; i++)
		if (memcmp(v.heads[i].origin, device_pk, 32) == 0)
			n++;
	if (n > ZILA_REVOKE_FEEDS_MAX) {
		r = ZILA_ETOOBIG;
		goto out;
	}
	if (n > 0 && (rv->marks = calloc(n, sizeof(*rv->marks))) == NULL) {
		r = ZILA_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < v.nheads; i++) {
		if (memcmp(v.heads[i].origin, device_pk, 32) != 0)
			continue;
		memcpy(rv->marks[rv->nmarks].part, v.heads[i].part, sizeof(rv->marks[0].part));
		rv->marks[rv->nmarks].last_seq = v.heads[i].seq;
		rv->nmarks++;
	}
out:
	zila_vector_release(&v);
	return r;
}

/* Signs with signer_sk (the root's, or this HQ device's) and keeps a revocation of device_pk
 * naming, per feed of that device, the last entry this replica holds. */
static int revoke_with(struct zila_store *s, const uint8_t signer_sk[64], const uint8_t fp[ZILA_FP_LEN],
		       const uint8_t device_pk[32], uint64_t now, struct zila_error *err)
{
	int r;
	struct zila_revocation rv;
	struct zila_buf b;
	memset(&rv, 0, sizeof(rv));
	zila_buf_init(&b, 1 << 20);
	rv.version = 1;
	memcpy(rv.org_fp, fp, ZILA_FP_LEN);
	memcpy(rv.device_pk, device_pk, 32);
	rv.created = now;
	if ((r = collect_marks(s, device_pk, &rv)) != 0) {
		zila_error_set(err, r, "cannot read the device's feeds: %s", zila_strerror(r));
		goto out;
	}
	if ((r = zila_revocation_sign(&rv, signer_sk, &b)) != 0 ||
	    (r = put_record(s, ZILA_TRUST_REVOKE, device_pk, zila_buf_view(&b))) != 0) {
		zila_error_set(err, r, "cannot keep the revocation: %s", zila_strerror(r));
		goto out;
	}
	r = 0;
out:
	zila_revocation_release(&rv);
	zila_buf_release(&b);
	return r;
}

int zila_trust_revoke(struct zila_store *s, const uint8_t device_pk[32], uint64_t now, struct zila_error *err)
{
	int r;
	uint8_t root_pk[32];
	struct zila_cert own, target;

	if ((r = own_hq_cert(s, root_pk, &own, now, err)) != 0)
		return r;
	if (sodium_memcmp(device_pk, zila_store_device_pk(s), 32) == 0 ||
	    (zila_trust_cert_get(s, device_pk, &target) == 0 && target.role == ZILA_ROLE_HQ))
		return zila_error_set(err, ZILA_EINVAL,
				      "an HQ device is revoked with the organisation's root key: 'zila org revoke'");
	return revoke_with(s, zila_store_device_sk(s), own.org_fp, device_pk, now, err);
}

/* The organisation this root key makes, recorded in a replica that has none yet. */
static int root_org(struct zila_store *s, const uint8_t root_pk[32], const char *org_name_in, struct zila_error *err)
{
	uint8_t have[32];
	char hex[65];
	int r = zila_trust_org(s, have);
	if (r == 0)
		return sodium_memcmp(have, root_pk, 32) == 0
			       ? 0
			       : zila_error_set(err, ZILA_ECERT, "this replica belongs to another organisation than the root key's");
	if (r != ZILA_ENOTFOUND)
		return zila_error_set(err, r, "cannot read the organisation: %s", zila_strerror(r));
	zila_hex_encode(hex, root_pk, 32);
	if ((r = zila_store_meta_set(s, ZILA_META_ORG_PK, hex)) != 0 ||
	    (org_name_in != NULL && org_name_in[0] && (r = zila_store_meta_set(s, ZILA_META_ORG_NAME, org_name_in)) != 0))
		return zila_error_set(err, r, "cannot record the organisation: %s", zila_strerror(r));
	return 0;
}

int zila_trust_root_hq(struct zila_store *s, const uint8_t root_sk[64], const char *name, const char *org_name_in,
		       uint64_t now, struct zila_error *err)
{
	uint8_t root_pk[32];
	struct zila_cert c;
	struct zila_buf b;
	int r;
	zila_buf_init(&b, ZILA_CERT_LEN);
	memset(&c, 0, sizeof(c));
	crypto_sign_ed25519_sk_to_pk(root_pk, root_sk);
	if (org_name_in != NULL && strlen(org_name_in) > ZILA_NAME_MAX) {
		r = zila_error_set(err, ZILA_EINVAL, "organisation name must be 1 to %d bytes", ZILA_NAME_MAX);
		goto out;
	}
	if ((r = root_org(s, root_pk, org_name_in, err)) != 0)
		goto out;
	c.version = 1;
	zila_org_fingerprint(root_pk, c.org_fp);
	memcpy(c.device_pk, zila_store_device_pk(s), 32);
	snprintf(c.name, sizeof(c.name), "%s", name != NULL && name[0] ? name : "hq");
	c.role = ZILA_ROLE_HQ;
	c.scope_all = true;
	c.not_before = now - 3600;
	c.not_after = now + HQ_VALID_DAYS * DAY;
	if ((r = zila_cert_sign(&c, root_sk, &b)) != 0) {
		zila_error_set(err, r, "device name '%s' must be 1 to %d bytes of text", c.name, ZILA_NAME_MAX);
		goto out;
	}
	if ((r = put_record(s, ZILA_TRUST_CERT, c.device_pk, zila_buf_view(&b))) != 0 ||
	    (r = zila_store_clock_reference(s)) != 0 || (r = adopt_register(s, now)) != 0) {
		zila_error_set(err, r, "cannot keep the certificate: %s", zila_strerror(r));
		goto out;
	}
	r = 0;
out:
	zila_buf_release(&b);
	return r;
}

int zila_trust_root_revoke(struct zila_store *s, const uint8_t root_sk[64], const uint8_t device_pk[32], uint64_t now,
			   struct zila_error *err)
{
	uint8_t root_pk[32], have[32], fp[ZILA_FP_LEN];
	crypto_sign_ed25519_sk_to_pk(root_pk, root_sk);
	if (zila_trust_org(s, have) != 0 || sodium_memcmp(have, root_pk, 32) != 0)
		return zila_error_set(err, ZILA_ECERT, "this replica does not belong to the root key's organisation");
	zila_org_fingerprint(root_pk, fp);
	return revoke_with(s, root_sk, fp, device_pk, now, err);
}

int zila_trust_reissue(struct zila_store *s, const uint8_t device_pk[32], uint64_t now, struct zila_buf *file_out,
		       struct zila_error *err)
{
	uint8_t root_pk[32];
	struct zila_cert_file f;
	struct zila_revocation rv;
	struct zila_buf b;
	int r;
	char id[ZILA_DEVICE_ID_LEN + 1];
	memset(&f, 0, sizeof(f));
	zila_buf_init(&b, ZILA_CERT_LEN);
	zila_device_id(device_pk, id);
	if ((r = own_hq_cert(s, root_pk, &f.issuer, now, err)) != 0)
		goto out;
	if ((r = zila_trust_cert_get(s, device_pk, &f.cert)) != 0) {
		r = zila_error_set(err, ZILA_ENOTFOUND, "no certificate of device '%s' is known here", id);
		goto out;
	}
	if (sodium_memcmp(f.cert.issuer_pk, root_pk, 32) == 0 || f.cert.role == ZILA_ROLE_HQ) {
		r = zila_error_set(err, ZILA_EINVAL, "device '%s' is certified by the root, not by an HQ device", id);
		goto out;
	}
	if (zila_trust_revocation_get(s, f.cert.issuer_pk, &rv) != 0) {
		r = zila_error_set(err, ZILA_EINVAL,
				   "the HQ device that certified '%s' is not revoked: nothing to reissue", id);
		goto out;
	}
	uint64_t cut = rv.created;
	zila_revocation_release(&rv);
	if (zila_trust_revocation_get(s, device_pk, &rv) == 0) {
		zila_revocation_release(&rv);
		r = zila_error_set(err, ZILA_EREVOKED, "device '%s' is revoked itself", id);
		goto out;
	}
	/* The same device, district and end, vouched for by this HQ from before the revocation
	 * (so nothing the laptop wrote since is refused), and never before this HQ's own start:
	 * newer than the old one, it judges every entry from its start (zila_trust_cert_at). An
	 * installer takes not-before + 1 h as a time HQ has reached (zila_trust_install_cert):
	 * an hour and a second before the revocation keeps that in the past. */
	uint64_t nb = cut > 3601 ? cut - 3601 : 0;
	if (nb < f.issuer.not_before)
		nb = f.issuer.not_before;
	if (nb <= f.cert.not_before)
		nb = f.cert.not_before + 1;
	if (nb >= cut) {
		r = zila_error_set(err, ZILA_EINVAL,
				   "this HQ's certificate starts after the revocation of the one it replaces: ask for an HQ "
				   "certificate from before it ('zila org add-hq')");
		goto out;
	}
	f.cert.not_before = nb;
	if (f.cert.not_after > f.issuer.not_after)
		f.cert.not_after = f.issuer.not_after;
	if (f.cert.not_after < nb)
		f.cert.not_after = nb;
	f.has_issuer = true;
	if ((r = zila_cert_sign(&f.cert, zila_store_device_sk(s), &b)) != 0 ||
	    (r = put_record(s, ZILA_TRUST_CERT, device_pk, zila_buf_view(&b))) != 0 ||
	    (r = register_issued(s, &f.cert)) != 0) {
		zila_error_set(err, r, "cannot keep the certificate: %s", zila_strerror(r));
		goto out;
	}
	r = write_file(s, root_pk, &f, file_out, err);
out:
	zila_buf_release(&b);
	return r;
}

/* --- invites ----------------------------------------------------------------------- */

/* The meta value of an invite: "1 ROLE EXPIRES USED SECRETHEX DISTRICT". */
struct invite_rec {
	int role;
	uint64_t expires;
	int used;
	uint8_t secret[ZILA_INVITE_SECRET_LEN];
	char district[ZILA_DISTRICT_MAX + 1];
};

static void invite_key(char *out, size_t n, const uint8_t id[ZILA_INVITE_ID_LEN])
{
	char hex[2 * ZILA_INVITE_ID_LEN + 1];
	zila_hex_encode(hex, id, ZILA_INVITE_ID_LEN);
	snprintf(out, n, "%s%s", ZILA_META_INVITE_PREFIX, hex);
}

static int invite_save(struct zila_store *s, const uint8_t id[ZILA_INVITE_ID_LEN], const struct invite_rec *rec)
{
	char key[64], hex[2 * ZILA_INVITE_SECRET_LEN + 1], val[256];
	invite_key(key, sizeof(key), id);
	zila_hex_encode(hex, rec->secret, ZILA_INVITE_SECRET_LEN);
	snprintf(val, sizeof(val), "1 %d %" PRIu64 " %d %s %s", rec->role, rec->expires, rec->used, hex, rec->district);
	int r = zila_store_meta_set(s, key, val);
	sodium_memzero(val, sizeof(val));
	sodium_memzero(hex, sizeof(hex));
	return r;
}

static int invite_load(struct zila_store *s, const uint8_t id[ZILA_INVITE_ID_LEN], struct invite_rec *rec)
{
	char key[64], hex[2 * ZILA_INVITE_SECRET_LEN + 1], *val = NULL;
	int r, ver, n = 0;
	unsigned long long exp;
	memset(rec, 0, sizeof(*rec));
	invite_key(key, sizeof(key), id);
	if ((r = zila_store_meta_get(s, key, &val)) != 0)
		goto out;
	r = ZILA_EFORMAT;
	if (sscanf(val, "%d %d %llu %d %24s %n", &ver, &rec->role, &exp, &rec->used, hex, &n) != 5 || ver != 1 || n == 0)
		goto out;
	rec->expires = exp;
	if (zila_hex_decode(rec->secret, ZILA_INVITE_SECRET_LEN, hex, strlen(hex)) != 0)
		goto out;
	snprintf(rec->district, sizeof(rec->district), "%s", val + n);
	r = 0;
out:
	if (val != NULL) {
		sodium_memzero(val, strlen(val));
		free(val);
	}
	return r;
}

int zila_trust_invite(struct zila_store *s, const char *district, int role, uint64_t now, uint64_t expires,
		      char code[ZILA_INVITE_CODE_LEN + 1], struct zila_error *err)
{
	int r;
	uint8_t root_pk[32], id[ZILA_INVITE_ID_LEN];
	struct zila_cert own;
	struct zila_invite inv;
	struct invite_rec rec;
	memset(&rec, 0, sizeof(rec));
	code[0] = '\0';

	if ((r = own_hq_cert(s, root_pk, &own, now, err)) != 0)
		goto out;
	if (role != ZILA_ROLE_DISTRICT && role != ZILA_ROLE_BLOCK) {
		r = zila_error_set(err, ZILA_EINVAL, "an invite is for a district or block device");
		goto out;
	}
	if (district == NULL || district[0] == '\0' || strlen(district) > ZILA_DISTRICT_MAX ||
	    strpbrk(district, " \t\r\n") != NULL) {
		r = zila_error_set(err, ZILA_EINVAL, "a district id of 1 to %d bytes, without spaces, is needed",
				   ZILA_DISTRICT_MAX);
		goto out;
	}
	zila_invite_new(&inv, own.org_fp);
	zila_invite_id(&inv, id);
	rec.role = role;
	rec.expires = expires;
	memcpy(rec.secret, inv.secret, sizeof(rec.secret));
	snprintf(rec.district, sizeof(rec.district), "%s", district);
	if ((r = invite_save(s, id, &rec)) != 0) {
		zila_error_set(err, r, "cannot record the invite: %s", zila_strerror(r));
		goto out;
	}
	zila_invite_format(&inv, code);
	r = 0;
out:
	sodium_memzero(&inv, sizeof(inv));
	sodium_memzero(&rec, sizeof(rec));
	return r;
}

static int invite_usable(struct zila_store *s, const uint8_t id[ZILA_INVITE_ID_LEN], uint64_t now, struct invite_rec *rec)
{
	int r = invite_load(s, id, rec);
	if (r != 0)
		return r;
	/* Used and expired invites look the same as unknown ones to the peer. */
	if (rec->used || now > rec->expires)
		return ZILA_ENOTFOUND;
	return 0;
}

int zila_trust_invite_psk(struct zila_store *s, const uint8_t id[ZILA_INVITE_ID_LEN], uint64_t now, uint8_t psk[32])
{
	struct invite_rec rec;
	struct zila_invite inv;
	uint8_t root_pk[32], fp[ZILA_FP_LEN];
	int r;
	memset(psk, 0, 32);
	if ((r = invite_usable(s, id, now, &rec)) != 0 || (r = zila_trust_org(s, root_pk)) != 0)
		goto out;
	zila_org_fingerprint(root_pk, fp);
	inv.version = 1;
	memcpy(inv.fp_prefix, fp, ZILA_INVITE_FP_LEN);
	memcpy(inv.secret, rec.secret, sizeof(inv.secret));
	zila_invite_psk(&inv, psk);
out:
	sodium_memzero(&rec, sizeof(rec));
	sodium_memzero(&inv, sizeof(inv));
	return r;
}

int zila_trust_redeem(struct zila_store *s, const uint8_t id[ZILA_INVITE_ID_LEN], const uint8_t device_pk[32],
		      const char *name, uint64_t now, struct zila_buf *file_out, struct zila_error *err)
{
	struct invite_rec rec;
	int r = invite_usable(s, id, now, &rec);
	if (r != 0) {
		zila_error_set(err, ZILA_ENOTFOUND, "the invite is unknown, used or expired");
		r = ZILA_ENOTFOUND;
		goto out;
	}
	/* Spend the invite first: a failure later must not let it be used twice. */
	rec.used = 1;
	if ((r = invite_save(s, id, &rec)) != 0) {
		zila_error_set(err, r, "cannot record the invite: %s", zila_strerror(r));
		goto out;
	}
	r = zila_trust_issue(s, device_pk, name, rec.role, rec.district, now, 365, file_out, err);
out:
	sodium_memzero(&rec, sizeof(rec));
	return r;
}

/* --- enforcement ------------------------------------------------------------------- */

/* The certificate check of zila_trust_admit, with signatures remembered: what a signature
 * proves does not depend on time, so a cache hit only re-checks the validity windows. */
static int cert_check_cached(struct zila_trust_ctx *ctx, const uint8_t root_pk[32], const struct zila_cert *c,
			     uint64_t t)
{
	struct zila_cert issuer;
	const struct zila_cert *ip;
	struct zila_buf b;
	uint8_t key[32];
	int r = check_with_issuer(ctx->s, root_pk, c->issuer_pk, t, &issuer, &ip);
	if (r != 0)
		return r;
	zila_buf_init(&b, 2 * ZILA_CERT_LEN + 32);
	if ((r = zila_buf_put(&b, root_pk, 32)) != 0 || (r = zila_cert_encode(c, &b)) != 0 ||
	    (ip != NULL && (r = zila_cert_encode(ip, &b)) != 0)) {
		zila_buf_release(&b);
		return r;
	}
	crypto_generichash(key, sizeof(key), b.p, b.len, NULL, 0);
	zila_buf_release(&b);
	for (unsigned i = 0; i < ctx->nverified; i++) {
		if (sodium_memcmp(ctx->verified[i], key, 32) != 0)
			continue;
		if (t < c->not_before || t > c->not_after || (ip != NULL && (t < ip->not_before || t > ip->not_after)))
			return ZILA_EEXPIRED;
		return 0;
	}
	if ((r = zila_cert_verify(c, root_pk, ip, t)) != 0)
		return r;
	memcpy(ctx->verified[ctx->next_verified], key, 32);
	ctx->next_verified = (ctx->next_verified + 1) % ZILA_TRUST_CACHE;
	if (ctx->nverified < ZILA_TRUST_CACHE)
		ctx->nverified++;
	return 0;
}

int zila_trust_admit(struct zila_trust_ctx *ctx, const struct zila_entry_info *e, struct zila_error *err)
{
	struct zila_store *s = ctx->s;
	uint8_t root_pk[32];
	struct zila_cert c;
	struct zila_revocation rv;
	char id[ZILA_DEVICE_ID_LEN + 1];
	int r;
	bool by_hq = false;
	uint64_t t = zila_hlc_ms(e->hlc) / 1000;

	memset(&rv, 0, sizeof(rv));
	zila_device_id(e->origin, id);
	if ((r = zila_trust_org(s, root_pk)) != 0) {
		r = zila_error_set(err, ZILA_ENOTENROLLED, "device '%s' feed '%s' seq %" PRIu64 ": this replica is not enrolled",
				   id, e->part, e->seq);
		goto out;
	}
	if ((r = zila_trust_cert_get(s, e->origin, &c)) != 0) {
		r = zila_error_set(err, ZILA_ECERT, "device '%s' feed '%s' seq %" PRIu64 ": unknown device (no certificate)",
				   id, e->part, e->seq);
		goto out;
	}
	/* A replica dates nothing past the latest HQ time it knows plus the lead (store.h), and
	 * learns the sender's HQ time before its entries: anything later than that, or than our
	 * own estimate of HQ's clock, by the lead and a day is a broken clock. */
	struct zila_clock ck;
	zila_store_clock(s, &ck);
	uint64_t ours = ctx->now != NULL ? zila_trust_now(ctx) : (ck.stamp_ms > ck.hq_est_ms ? ck.stamp_ms : ck.hq_est_ms) / 1000;
	by_hq = c.role == ZILA_ROLE_HQ && c.scope_all; /* HQ's clock is the reference */
	if (!by_hq && t > ours + ZILA_CLOCK_LEAD_MS / 1000 + DAY) {
		r = zila_error_set(err, ZILA_EPROTO,
				   "device '%s' feed '%s' seq %" PRIu64 ": dated more than the clock lead and a day ahead",
				   id, e->part, e->seq);
		goto out;
	}
	/* The certificate the device held when the entry was written (an earlier one, if it
	 * was renewed since) must have been valid then. */
	struct zila_cert then;
	/* The current certificate is the newest: it is the one of any time from its start. */
	int rt = t >= c.not_before ? 0 : zila_trust_cert_at(s, e->origin, t, &then);
	if (rt != 0 && rt != ZILA_EEXPIRED) {
		r = zila_error_set(err, rt, "device '%s': certificates unreadable", id);
		goto out;
	}
	if (rt == 0 && t < c.not_before)
		c = then;
	if ((r = rt != 0 ? rt : cert_check_cached(ctx, root_pk, &c, t)) != 0) {
		zila_error_set(err, r, "device '%s' feed '%s' seq %" PRIu64 ": certificate %s", id, e->part, e->seq,
			       r == ZILA_EEXPIRED ? "not valid at the entry's time" : zila_strerror(r));
		goto out;
	}
	if (!zila_cert_may_write(&c, e->part)) {
		r = zila_error_set(err, ZILA_ESCOPE, "device '%s' feed '%s' seq %" PRIu64 ": partition outside its write scope",
				   id, e->part, e->seq);
		goto out;
	}
	/* Nothing this device may not read is taken in, whoever sends it (a bundle made for
	 * another device, or for HQ, by a laptop that named HQ in its --for file). */
	uint64_t now = zila_trust_now(ctx);
	if (ctx->own_at == 0 || now < ctx->own_at || now - ctx->own_at > 10) {
		ctx->own_held = zila_trust_cert_get(s, zila_store_device_pk(s), &ctx->own) == 0;
		ctx->own_at = now ? now : 1;
	}
	if (ctx->own_held && !zila_cert_may_read(&ctx->own, e->part)) {
		r = zila_error_set(err, ZILA_ESCOPE,
				   "device '%s' feed '%s' seq %" PRIu64 ": this device may not read partition '%s'", id,
				   e->part, e->seq, e->part);
		goto out;
	}
	/* Its own revocation's mark, and that of the HQ device that certified it (#15 item 12). */
	char why[160];
	if ((r = revoked_past(s, e, &c, why, sizeof(why))) != 0) {
		zila_error_set(err, r, "device '%s' feed '%s' seq %" PRIu64 ": %s", id, e->part, e->seq, why);
		goto out;
	}
	r = 0;
out:
	/* An entry HQ wrote is dated by HQ's clock (which follows what it receives by at most a
	 * day): a day before it, HQ's time had surely passed. Signed, so a bundle teaches it too.
	 * Learnt at once; if it cannot be written down now (a full disk, a lock), a later
	 * entry or session writes it: the entry itself is good. */
	if (r == 0 && by_hq && t > DAY && zila_store_clock_learn(s, (t - DAY) * 1000, false, 0) != 0)
		zila_log(ZILA_LOG_DEBUG, "HQ's time learnt from an entry is not written down yet");
	zila_revocation_release(&rv);
	return r;
}

/* ZILA_EREVOKED when issuer (not the root) is revoked at or before t. */
static int issuer_revoked_at(struct zila_store *s, const uint8_t root_pk[32], const uint8_t issuer_pk[32], uint64_t t)
{
	struct zila_revocation rv;
	int r = 0;
	if (sodium_memcmp(issuer_pk, root_pk, 32) == 0 || zila_trust_revocation_get(s, issuer_pk, &rv) != 0)
		return 0;
	if (t >= rv.created)
		r = ZILA_EREVOKED;
	zila_revocation_release(&rv);
	return r;
}

int zila_trust_check_record(struct zila_trust_ctx *ctx, uint8_t type, struct zila_view bytes, struct zila_error *err)
{
	struct zila_store *s = ctx->s;
	uint8_t root_pk[32];
	struct zila_cert c, issuer;
	const struct zila_cert *ip;
	struct zila_revocation rv;
	int r;
	memset(&rv, 0, sizeof(rv));

	if ((r = zila_trust_org(s, root_pk)) != 0) {
		r = zila_error_set(err, ZILA_ENOTENROLLED, "trust record refused: this replica is not enrolled");
		goto out;
	}
	if (type == ZILA_TRUST_CERT || type == ZILA_TRUST_CERT_PAST) {
		if ((r = zila_cert_decode(bytes, &c)) != 0) {
			zila_error_set(err, r, "certificate: %s", zila_strerror(r));
			goto out;
		}
		/* Checked inside its own validity window: an expired certificate still vouches for
		 * the entries written while it was valid. */
		if ((r = zila_trust_cert_check(s, root_pk, &c, c.not_before, err)) != 0)
			goto out;
		/* A revoked HQ device certifies nothing from its revocation on (#15 item 12). */
		if ((r = issuer_revoked_at(s, root_pk, c.issuer_pk, c.not_before)) != 0) {
			zila_error_set(err, r, "certificate issued by a revoked HQ device after its revocation");
			goto out;
		}
		/* An older certificate than the one held is kept too (zila_trust_keep): it judges
		 * the entries written while the device held it. The newest one stays current. */
	} else if (type == ZILA_TRUST_REVOKE) {
		if ((r = zila_revocation_decode(bytes, &rv)) != 0) {
			zila_error_set(err, r, "revocation: %s", zila_strerror(r));
			goto out;
		}
		if ((r = check_with_issuer(s, root_pk, rv.issuer_pk, rv.created, &issuer, &ip)) != 0 ||
		    (r = zila_revocation_verify(&rv, root_pk, ip, rv.created)) != 0) {
			zila_error_set(err, r, "revocation: %s", zila_strerror(r));
			goto out;
		}
		/* An HQ device is revoked by the root alone (a copy of its key must not revoke the
		 * HQ that replaces it), and a revoked HQ device revokes nothing after its own. */
		struct zila_cert target;
		if (sodium_memcmp(rv.issuer_pk, root_pk, 32) != 0 && zila_trust_cert_get(s, rv.device_pk, &target) == 0 &&
		    target.role == ZILA_ROLE_HQ) {
			r = zila_error_set(err, ZILA_ECERT, "revocation: an HQ device is revoked with the root key only");
			goto out;
		}
		if ((r = issuer_revoked_at(s, root_pk, rv.issuer_pk, rv.created)) != 0) {
			zila_error_set(err, r, "revocation signed by a revoked HQ device after its revocation");
			goto out;
		}
		/* A second revocation of a device must not widen the first one's marks. */
		struct zila_revocation old;
		if (zila_trust_revocation_get(s, rv.device_pk, &old) == 0) {
			bool wider = false;
			for (size_t i = 0; i < rv.nmarks; i++)
				if (rv.marks[i].last_seq > zila_revocation_mark(&old, rv.marks[i].part))
					wider = true;
			zila_revocation_release(&old);
			if (wider) {
				r = zila_error_set(err, ZILA_EEXIST, "revocation wider than the one held");
				goto out;
			}
		}
	} else {
		r = zila_error_set(err, ZILA_EFORMAT, "unknown trust record type %u", type);
		goto out;
	}
	r = 0;
out:
	zila_revocation_release(&rv);
	return r;
}

int zila_trust_check_checkpoint(struct zila_trust_ctx *ctx, const struct zila_ckpt_info *ci, struct zila_error *err)
{
	struct zila_store *s = ctx->s;
	uint8_t root_pk[32];
	struct zila_cert c;
	char id[ZILA_DEVICE_ID_LEN + 1];
	uint64_t t = zila_hlc_ms(ci->hlc) / 1000;
	int r;
	zila_device_id(ci->signer, id);
	if ((r = zila_trust_org(s, root_pk)) != 0)
		return zila_error_set(err, ZILA_ENOTENROLLED, "this replica is not enrolled");
	if (zila_trust_cert_get(s, ci->signer, &c) != 0)
		return zila_error_set(err, ZILA_ECERT, "its signer '%s' is an unknown device (no certificate)", id);
	struct zila_cert then;
	if (t < c.not_before && zila_trust_cert_at(s, ci->signer, t, &then) == 0)
		c = then;
	if (c.role != ZILA_ROLE_HQ || !c.scope_all)
		return zila_error_set(err, ZILA_ECERT, "its signer '%s' is not an HQ device (only HQ makes checkpoints)", id);
	if ((r = cert_check_cached(ctx, root_pk, &c, t)) != 0)
		return zila_error_set(err, r, "its signer '%s' had no valid HQ certificate when it was made: %s", id,
				      zila_strerror(r));
	if ((r = issuer_revoked_at(s, root_pk, ci->signer, t)) != 0)
		return zila_error_set(err, r, "its signer '%s' was revoked before it was made", id);
	struct zila_cert own;
	if (zila_trust_cert_get(s, zila_store_device_pk(s), &own) == 0 && !zila_cert_may_read(&own, ci->part))
		return zila_error_set(err, ZILA_ESCOPE, "this device may not read district '%s'", ci->part);
	return 0;
}

static int hook_checkpoint(void *ctx, struct zila_store *s, const struct zila_ckpt_info *ci, struct zila_error *err)
{
	(void)s;
	return zila_trust_check_checkpoint(ctx, ci, err);
}

static int hook_admit(void *ctx, struct zila_store *s, const struct zila_entry_info *e, struct zila_error *err)
{
	(void)s;
	return zila_trust_admit(ctx, e, err);
}

static int hook_record(void *ctx, struct zila_store *s, uint8_t type, struct zila_view bytes, struct zila_error *err)
{
	(void)s;
	return zila_trust_check_record(ctx, type, bytes, err);
}

void zila_trust_install(struct zila_store *s, struct zila_trust_ctx *ctx)
{
	ctx->s = s;
	ctx->nverified = ctx->next_verified = 0;
	ctx->own_at = 0;
	ctx->hooks.admit = hook_admit;
	ctx->hooks.trust_record = hook_record;
	ctx->hooks.checkpoint = hook_checkpoint;
	ctx->hooks.ctx = ctx;
	zila_store_set_hooks(s, &ctx->hooks);
	/* HQ's clock is the reference; a replica made HQ before the clock rule learns it here. */
	struct zila_clock ck;
	struct zila_cert own;
	uint8_t root_pk[32];
	zila_store_clock(s, &ck);
	if (!ck.is_reference && zila_trust_org(s, root_pk) == 0 &&
	    zila_trust_cert_get(s, zila_store_device_pk(s), &own) == 0 && own.role == ZILA_ROLE_HQ && own.scope_all &&
	    sodium_memcmp(own.issuer_pk, root_pk, 32) == 0 && zila_store_clock_reference(s) != 0)
		zila_log(ZILA_LOG_WARN, "cannot mark this HQ replica's clock as the reference");
	/* an HQ replica made before it kept a register of what it issued starts one */
	if (zila_trust_org(s, root_pk) == 0 && zila_trust_cert_get(s, zila_store_device_pk(s), &own) == 0 &&
	    own.role == ZILA_ROLE_HQ && sodium_memcmp(own.issuer_pk, root_pk, 32) == 0 &&
	    adopt_register(s, zila_trust_now(ctx)) != 0)
		zila_log(ZILA_LOG_WARN, "cannot start the register of certificates this HQ issued");
	/* and a replica enrolled before its triggers refused what it may not write, its scope */
	if (zila_trust_cert_get(s, zila_store_device_pk(s), &own) == 0 && own_scope(s, &own) != 0)
		zila_log(ZILA_LOG_WARN, "cannot set this device's write scope");
}

bool zila_trust_read_filter(void *cert, const char *part)
{
	return zila_cert_may_read(cert, part);
}

bool zila_trust_write_filter(void *cert, const char *part)
{
	return zila_cert_may_write(cert, part);
}
