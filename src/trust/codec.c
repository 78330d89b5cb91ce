/* Trust codecs: Crockford base32, device ids, fingerprints, certificates, revocations,
 * invite codes, enrolment requests and certificate files (layouts in proto/TRUST.md). */
#include "zila/trust.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static const char *const role_names[] = { NULL, "hq", "district", "block" };

const char *zila_role_name(int role)
{
	return role >= ZILA_ROLE_HQ && role <= ZILA_ROLE_BLOCK ? role_names[role] : NULL;
}

int zila_role_parse(const char *s, int *role)
{
	*role = 0;
	for (int i = ZILA_ROLE_HQ; i <= ZILA_ROLE_BLOCK; i++) {
		if (strcmp(s, role_names[i]) == 0) {
			*role = i;
			return 0;
		}
	}
	return ZILA_EINVAL;
}

/* --- base32 ------------------------------------------------------------------------ */

void zila_base32_encode(char *out, const uint8_t *p, size_t n)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8) | p[i];
		bits += 8;
		while (bits >= 5) {
			out[o++] = b32[(acc >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	if (bits > 0)
		out[o++] = b32[(acc << (5 - bits)) & 31];
	out[o] = '\0';
}

static int b32val(char c)
{
	if (c >= 'a' && c <= 'z')
		c = (char)(c - 'a' + 'A');
	if (c == 'O')
		return 0;
	if (c == 'I' || c == 'L')
		return 1;
	const char *q = c ? strchr(b32, c) : NULL;
	return q ? (int)(q - b32) : -1;
}

/* Collects the base32 symbols of s (skipping hyphens and spaces) into sym; returns their
 * count, or -1 on a character that is not base32. */
static long symbols(const char *s, uint8_t *sym, size_t max)
{
	size_t n = 0;
	for (; *s; s++) {
		if (*s == '-' || *s == ' ')
			continue;
		int v = b32val(*s);
		if (v < 0 || n >= max)
			return -1;
		sym[n++] = (uint8_t)v;
	}
	return (long)n;
}

static int unpack(uint8_t *out, size_t n, const uint8_t *sym, size_t nsym)
{
	if (nsym != (8 * n + 4) / 5)
		return ZILA_EFORMAT;
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;
	for (size_t i = 0; i < nsym; i++) {
		acc = (acc << 5) | sym[i];
		bits += 5;
		if (bits >= 8) {
			out[o++] = (uint8_t)(acc >> (bits - 8));
			bits -= 8;
		}
	}
	/* Padding bits must be zero so that every value has one spelling. */
	if ((acc & ((1u << bits) - 1)) != 0)
		return ZILA_EFORMAT;
	return 0;
}

int zila_base32_decode(uint8_t *out, size_t n, const char *s)
{
	uint8_t sym[256];
	long nsym = symbols(s, sym, sizeof(sym));
	if (nsym < 0)
		return ZILA_EFORMAT;
	return unpack(out, n, sym, (size_t)nsym);
}

/* Appends s to out in groups of four separated by hyphens. */
static void group4(char *out, const char *s)
{
	size_t o = 0;
	for (size_t i = 0; s[i]; i++) {
		if (i > 0 && i % 4 == 0)
			out[o++] = '-';
		out[o++] = s[i];
	}
	out[o] = '\0';
}

/* Luhn mod 32 over base32 symbols: catches every single substitution and most swaps of
 * neighbours, the typos of someone reading a code aloud. */
static uint8_t luhn32(const uint8_t *sym, size_t n)
{
	unsigned factor = 2, sum = 0;
	for (size_t i = n; i-- > 0;) {
		unsigned add = factor * sym[i];
		sum += add / 32 + add % 32;
		factor = factor == 2 ? 1 : 2;
	}
	return (uint8_t)((32 - sum % 32) % 32);
}

/* nchars check symbols: one Luhn mod 32 symbol over the data symbols, then symbols from a
 * domain-separated hash of the bytes p (5 bits each). */
static void check_symbols(uint8_t *chk, size_t nchars, const char *domain, const uint8_t *p, size_t n)
{
	uint8_t h[8], sym[256];
	char enc[256];
	crypto_generichash_state st;
	zila_base32_encode(enc, p, n);
	size_t nsym = strlen(enc);
	for (size_t i = 0; i < nsym; i++)
		sym[i] = (uint8_t)(strchr(b32, enc[i]) - b32);
	chk[0] = luhn32(sym, nsym);
	crypto_generichash_init(&st, NULL, 0, sizeof(h));
	crypto_generichash_update(&st, (const uint8_t *)domain, strlen(domain));
	crypto_generichash_update(&st, p, n);
	crypto_generichash_final(&st, h, sizeof(h));
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | h[i];
	for (size_t i = 1; i < nchars; i++)
		chk[i] = (uint8_t)((v >> (64 - 5 * i)) & 31);
	sodium_memzero(enc, sizeof(enc));
	sodium_memzero(sym, sizeof(sym));
}

/* --- identities -------------------------------------------------------------------- */

void zila_org_fingerprint(const uint8_t root_pk[32], uint8_t fp[ZILA_FP_LEN])
{
	static const char dom[] = "zila-org-fp-v1";
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, ZILA_FP_LEN);
	crypto_generichash_update(&st, (const uint8_t *)dom, sizeof(dom) - 1);
	crypto_generichash_update(&st, root_pk, 32);
	crypto_generichash_final(&st, fp, ZILA_FP_LEN);
}

#define DEVID_BYTES 10
#define DEVID_CHECK 2

static void device_id_bytes(const uint8_t pk[32], uint8_t id[DEVID_BYTES])
{
	static const char dom[] = "zila-device-id-v1";
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, DEVID_BYTES);
	crypto_generichash_update(&st, (const uint8_t *)dom, sizeof(dom) - 1);
	crypto_generichash_update(&st, pk, 32);
	crypto_generichash_final(&st, id, DEVID_BYTES);
}

void zila_device_id(const uint8_t device_pk[32], char out[ZILA_DEVICE_ID_LEN + 1])
{
	uint8_t id[DEVID_BYTES], chk[DEVID_CHECK];
	char raw[16 + DEVID_CHECK + 1];
	device_id_bytes(device_pk, id);
	zila_base32_encode(raw, id, sizeof(id));
	check_symbols(chk, DEVID_CHECK, "zila-device-id-check", id, sizeof(id));
	for (size_t i = 0; i < DEVID_CHECK; i++)
		raw[16 + i] = b32[chk[i]];
	raw[16 + DEVID_CHECK] = '\0';
	group4(out, raw);
}

int zila_device_id_match(const char *typed, const uint8_t device_pk[32])
{
	uint8_t sym[64], id[DEVID_BYTES], want[DEVID_BYTES], chk[DEVID_CHECK];
	long n = symbols(typed, sym, sizeof(sym));
	if (n != 16 + DEVID_CHECK)
		return ZILA_EFORMAT;
	if (unpack(id, sizeof(id), sym, 16) != 0)
		return ZILA_EFORMAT;
	check_symbols(chk, DEVID_CHECK, "zila-device-id-check", id, sizeof(id));
	if (memcmp(chk, sym + 16, DEVID_CHECK) != 0)
		return ZILA_ECHECK;
	device_id_bytes(device_pk, want);
	return memcmp(id, want, sizeof(id)) == 0 ? 0 : ZILA_ENOTFOUND;
}

/* --- text checks ------------------------------------------------------------------- */

/* 1..max bytes of UTF-8 without control characters. */
static bool text_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return zila_utf8_valid((const uint8_t *)s, n);
}

/* A fixed field: length byte and max bytes zero-padded. */
static int put_fixed(struct zila_buf *b, const char *s, size_t max)
{
	uint8_t field[ZILA_PART_MAX] = { 0 };
	size_t n = strlen(s);
	int r;
	if (n > max || max > sizeof(field))
		return ZILA_EINVAL;
	memcpy(field, s, n);
	if ((r = zila_buf_put_u8(b, (uint8_t)n)) != 0)
		return r;
	return zila_buf_put(b, field, max);
}

static int get_fixed(struct zila_view *v, char *out, size_t max, bool may_be_empty)
{
	uint8_t n;
	const uint8_t *p;
	int r;
	if ((r = zila_view_get_u8(v, &n)) != 0 || (r = zila_view_get_bytes(v, max, &p)) != 0)
		return r;
	if (n > max)
		return ZILA_EFORMAT;
	for (size_t i = n; i < max; i++)
		if (p[i] != 0)
			return ZILA_EFORMAT;
	memcpy(out, p, n);
	out[n] = '\0';
	if (n == 0 ? !may_be_empty : (memchr(out, 0, n) != NULL || !text_ok(out, max)))
		return ZILA_EFORMAT;
	return 0;
}

static int sign_with(const char *domain, const uint8_t *p, size_t n, const uint8_t sk[64], uint8_t sig[64])
{
	struct zila_buf m;
	int r;
	zila_buf_init(&m, n + 64);
	if ((r = zila_buf_put(&m, domain, strlen(domain))) == 0 && (r = zila_buf_put(&m, p, n)) == 0)
		crypto_sign_detached(sig, NULL, m.p, m.len, sk);
	zila_buf_release(&m);
	return r;
}

static int verify_with(const char *domain, const uint8_t *p, size_t n, const uint8_t pk[32], const uint8_t sig[64])
{
	struct zila_buf m;
	int r;
	zila_buf_init(&m, n + 64);
	if ((r = zila_buf_put(&m, domain, strlen(domain))) == 0 && (r = zila_buf_put(&m, p, n)) == 0)
		r = crypto_sign_verify_detached(sig, m.p, m.len, pk) == 0 ? 0 : ZILA_ESIG;
	zila_buf_release(&m);
	return r;
}

/* --- certificates ------------------------------------------------------------------ */

#define CERT_SIGNED_LEN (ZILA_CERT_LEN - 64)
#define CERT_DOMAIN "zila-cert-v1"

static int cert_body(const struct zila_cert *c, struct zila_buf *b)
{
	int r;
	if ((r = zila_buf_put_u8(b, c->version)) != 0 || (r = zila_buf_put(b, c->org_fp, ZILA_FP_LEN)) != 0 ||
	    (r = zila_buf_put(b, c->device_pk, 32)) != 0 || (r = zila_buf_put_u8(b, c->role)) != 0 ||
	    (r = zila_buf_put_u8(b, c->scope_all ? 1 : 0)) != 0 || (r = put_fixed(b, c->name, ZILA_NAME_MAX)) != 0 ||
	    (r = put_fixed(b, c->scope_all ? "" : c->district, ZILA_DISTRICT_MAX)) != 0 ||
	    (r = zila_buf_put_u64be(b, c->not_before)) != 0 || (r = zila_buf_put_u64be(b, c->not_after)) != 0 ||
	    (r = zila_buf_put(b, c->issuer_pk, 32)) != 0)
		return r;
	return 0;
}

int zila_cert_sign(struct zila_cert *cert, const uint8_t issuer_sk[64], struct zila_buf *out)
{
	int r = ZILA_EINVAL;
	struct zila_buf b;
	zila_buf_init(&b, ZILA_CERT_LEN);
	if (cert->version != 1 || zila_role_name(cert->role) == NULL || !text_ok(cert->name, ZILA_NAME_MAX) ||
	    (!cert->scope_all && !text_ok(cert->district, ZILA_DISTRICT_MAX)) || cert->not_after < cert->not_before)
		goto out;
	crypto_sign_ed25519_sk_to_pk(cert->issuer_pk, issuer_sk);
	if ((r = cert_body(cert, &b)) != 0)
		goto out;
	if (b.len != CERT_SIGNED_LEN) {
		r = ZILA_EINTERNAL;
		goto out;
	}
	if ((r = sign_with(CERT_DOMAIN, b.p, b.len, issuer_sk, cert->sig)) != 0)
		goto out;
	if ((r = zila_buf_put(&b, cert->sig, 64)) != 0 || (r = zila_buf_put(out, b.p, b.len)) != 0)
		goto out;
	r = 0;
out:
	zila_buf_release(&b);
	return r;
}

int zila_cert_encode(const struct zila_cert *cert, struct zila_buf *out)
{
	struct zila_buf b;
	int r;
	zila_buf_init(&b, ZILA_CERT_LEN);
	if ((r = cert_body(cert, &b)) == 0 && (r = zila_buf_put(&b, cert->sig, 64)) == 0)
		r = zila_buf_put(out, b.p, b.len);
	zila_buf_release(&b);
	return r;
}

int zila_cert_decode(struct zila_view in, struct zila_cert *out)
{
	int r = ZILA_EFORMAT;
	uint8_t flags;
	memset(out, 0, sizeof(*out));
	if (in.len < 1)
		return ZILA_ESHORT;
	if (in.p[0] != 1)
		return ZILA_EVERSION;
	if (in.len != ZILA_CERT_LEN)
		return in.len < ZILA_CERT_LEN ? ZILA_ESHORT : ZILA_EFORMAT;
	if ((r = zila_view_get_u8(&in, &out->version)) != 0 || (r = zila_view_get_copy(&in, out->org_fp, ZILA_FP_LEN)) != 0 ||
	    (r = zila_view_get_copy(&in, out->device_pk, 32)) != 0 || (r = zila_view_get_u8(&in, &out->role)) != 0 ||
	    (r = zila_view_get_u8(&in, &flags)) != 0 || (r = get_fixed(&in, out->name, ZILA_NAME_MAX, false)) != 0 ||
	    (r = get_fixed(&in, out->district, ZILA_DISTRICT_MAX, true)) != 0 ||
	    (r = zila_view_get_u64be(&in, &out->not_before)) != 0 || (r = zila_view_get_u64be(&in, &out->not_after)) != 0 ||
	    (r = zila_view_get_copy(&in, out->issuer_pk, 32)) != 0 || (r = zila_view_get_copy(&in, out->sig, 64)) != 0)
		goto out;
	r = ZILA_EFORMAT;
	if (zila_role_name(out->role) == NULL || flags > 1)
		goto out;
	out->scope_all = flags & 1;
	/* Scope all carries no district; a district scope carries one. */
	if (out->scope_all != (out->district[0] == '\0'))
		goto out;
	r = 0;
out:
	return r;
}

/* Signature, fingerprint and validity of c against a known signer key. */
static int cert_check_one(const struct zila_cert *c, const uint8_t fp[ZILA_FP_LEN], const uint8_t signer[32],
			  uint64_t now)
{
	struct zila_buf b;
	int r;
	if (sodium_memcmp(c->org_fp, fp, ZILA_FP_LEN) != 0)
		return ZILA_ECERT;
	zila_buf_init(&b, ZILA_CERT_LEN);
	r = cert_body(c, &b);
	if (r == 0)
		r = verify_with(CERT_DOMAIN, b.p, b.len, signer, c->sig);
	zila_buf_release(&b);
	if (r != 0)
		return r == ZILA_ESIG ? ZILA_ESIG : ZILA_ECERT;
	if (now < c->not_before || now > c->not_after)
		return ZILA_EEXPIRED;
	return 0;
}

/* The issuer rule shared by certificates and revocations. */
static int issuer_ok(const uint8_t issuer_pk[32], const uint8_t root_pk[32], const uint8_t fp[ZILA_FP_LEN],
		     const struct zila_cert *issuer, uint64_t now)
{
	if (sodium_memcmp(issuer_pk, root_pk, 32) == 0)
		return 0;
	if (issuer == NULL || sodium_memcmp(issuer->device_pk, issuer_pk, 32) != 0)
		return ZILA_ECERT;
	if (issuer->role != ZILA_ROLE_HQ || !issuer->scope_all || sodium_memcmp(issuer->issuer_pk, root_pk, 32) != 0)
		return ZILA_ECERT;
	return cert_check_one(issuer, fp, root_pk, now);
}

int zila_cert_verify(const struct zila_cert *cert, const uint8_t root_pk[32], const struct zila_cert *issuer,
		     uint64_t now)
{
	uint8_t fp[ZILA_FP_LEN];
	int r;
	zila_org_fingerprint(root_pk, fp);
	if (cert->version != 1 || sodium_memcmp(cert->org_fp, fp, ZILA_FP_LEN) != 0)
		return ZILA_ECERT;
	if ((r = issuer_ok(cert->issuer_pk, root_pk, fp, issuer, now)) != 0)
		return r;
	/* Only the root makes an HQ device or a certificate for every partition: an HQ device's
	 * key (unencrypted on its disk) certifies district and block devices only (#15 item 12). */
	if (sodium_memcmp(cert->issuer_pk, root_pk, 32) != 0 && (cert->role == ZILA_ROLE_HQ || cert->scope_all))
		return ZILA_ECERT;
	return cert_check_one(cert, fp, cert->issuer_pk, now);
}

bool zila_cert_may_write(const struct zila_cert *cert, const char *part)
{
	if (cert->scope_all)
		return true;
	return part[0] != '\0' && strcmp(part, cert->district) == 0;
}

bool zila_cert_may_read(const struct zila_cert *cert, const char *part)
{
	return cert->scope_all || part[0] == '\0' || strcmp(part, cert->district) == 0;
}

/* --- revocations ------------------------------------------------------------------- */

#define REVOKE_DOMAIN "zila-revoke-v1"

void zila_revocation_release(struct zila_revocation *rv)
{
	free(rv->marks);
	rv->marks = NULL;
	rv->nmarks = 0;
}

static int revocation_body(const struct zila_revocation *rv, struct zila_buf *b)
{
	int r;
	if (rv->nmarks > ZILA_REVOKE_FEEDS_MAX)
		return ZILA_ETOOBIG;
	if ((r = zila_buf_put_u8(b, rv->version)) != 0 || (r = zila_buf_put(b, rv->org_fp, ZILA_FP_LEN)) != 0 ||
	    (r = zila_buf_put(b, rv->device_pk, 32)) != 0 || (r = zila_buf_put_u64be(b, rv->created)) != 0 ||
	    (r = zila_buf_put_u16be(b, (uint16_t)rv->nmarks)) != 0)
		return r;
	for (size_t i = 0; i < rv->nmarks; i++) {
		size_t n = strlen(rv->marks[i].part);
		if (n > ZILA_PART_MAX)
			return ZILA_EINVAL;
		if ((r = zila_buf_put_u8(b, (uint8_t)n)) != 0 || (r = zila_buf_put(b, rv->marks[i].part, n)) != 0 ||
		    (r = zila_buf_put_u64be(b, rv->marks[i].last_seq)) != 0)
			return r;
	}
	return zila_buf_put(b, rv->issuer_pk, 32);
}

#define REVOKE_MAX (1 + ZILA_FP_LEN + 32 + 8 + 2 + ZILA_REVOKE_FEEDS_MAX * (1 + ZILA_PART_MAX + 8) + 32 + 64)

int zila_revocation_sign(struct zila_revocation *rv, const uint8_t issuer_sk[64], struct zila_buf *out)
{
	int r;
	struct zila_buf b;
	zila_buf_init(&b, REVOKE_MAX);
	crypto_sign_ed25519_sk_to_pk(rv->issuer_pk, issuer_sk);
	if ((r = revocation_body(rv, &b)) != 0 || (r = sign_with(REVOKE_DOMAIN, b.p, b.len, issuer_sk, rv->sig)) != 0 ||
	    (r = zila_buf_put(&b, rv->sig, 64)) != 0 || (r = zila_buf_put(out, b.p, b.len)) != 0)
		goto out;
out:
	zila_buf_release(&b);
	return r;
}

int zila_revocation_decode(struct zila_view in, struct zila_revocation *out)
{
	int r;
	uint16_t n;
	memset(out, 0, sizeof(*out));
	if (in.len < 1)
		return ZILA_ESHORT;
	if (in.p[0] != 1)
		return ZILA_EVERSION;
	if (in.len > REVOKE_MAX)
		return ZILA_ETOOBIG;
	if ((r = zila_view_get_u8(&in, &out->version)) != 0 || (r = zila_view_get_copy(&in, out->org_fp, ZILA_FP_LEN)) != 0 ||
	    (r = zila_view_get_copy(&in, out->device_pk, 32)) != 0 || (r = zila_view_get_u64be(&in, &out->created)) != 0 ||
	    (r = zila_view_get_u16be(&in, &n)) != 0)
		goto out;
	if (n > ZILA_REVOKE_FEEDS_MAX) {
		r = ZILA_ETOOBIG;
		goto out;
	}
	/* Each mark takes at least 9 bytes: check before allocating. */
	if ((size_t)n * 9 > in.len) {
		r = ZILA_ESHORT;
		goto out;
	}
	if (n > 0 && (out->marks = calloc(n, sizeof(*out->marks))) == NULL) {
		r = ZILA_ENOMEM;
		goto out;
	}
	out->nmarks = n;
	for (size_t i = 0; i < n; i++) {
		uint8_t l;
		const uint8_t *p;
		if ((r = zila_view_get_u8(&in, &l)) != 0)
			goto out;
		if (l > ZILA_PART_MAX) {
			r = ZILA_EFORMAT;
			goto out;
		}
		if ((r = zila_view_get_bytes(&in, l, &p)) != 0 || (r = zila_view_get_u64be(&in, &out->marks[i].last_seq)) != 0)
			goto out;
		memcpy(out->marks[i].part, p, l);
		out->marks[i].part[l] = '\0';
		if (memchr(p, 0, l) != NULL) {
			r = ZILA_EFORMAT;
			goto out;
		}
	}
	if ((r = zila_view_get_copy(&in, out->issuer_pk, 32)) != 0 || (r = zila_view_get_copy(&in, out->sig, 64)) != 0)
		goto out;
	r = in.len == 0 ? 0 : ZILA_EFORMAT;
out:
	if (r != 0)
		zila_revocation_release(out);
	return r;
}

int zila_revocation_verify(const struct zila_revocation *rv, const uint8_t root_pk[32], const struct zila_cert *issuer,
			   uint64_t now)
{
	uint8_t fp[ZILA_FP_LEN];
	struct zila_buf b;
	int r;
	zila_org_fingerprint(root_pk, fp);
	if (rv->version != 1 || sodium_memcmp(rv->org_fp, fp, ZILA_FP_LEN) != 0)
		return ZILA_ECERT;
	if ((r = issuer_ok(rv->issuer_pk, root_pk, fp, issuer, now)) != 0)
		return r;
	zila_buf_init(&b, REVOKE_MAX);
	r = revocation_body(rv, &b);
	if (r == 0)
		r = verify_with(REVOKE_DOMAIN, b.p, b.len, rv->issuer_pk, rv->sig);
	zila_buf_release(&b);
	return r;
}

uint64_t zila_revocation_mark(const struct zila_revocation *rv, const char *part)
{
	for (size_t i = 0; i < rv->nmarks; i++)
		if (strcmp(rv->marks[i].part, part) == 0)
			return rv->marks[i].last_seq;
	return 0;
}

/* --- invite codes ------------------------------------------------------------------ */

#define INVITE_BYTES (1 + ZILA_INVITE_FP_LEN + ZILA_INVITE_SECRET_LEN)
#define INVITE_DATA_CHARS ((8 * INVITE_BYTES + 4) / 5)
#define INVITE_CHECK 4

static void invite_bytes(const struct zila_invite *inv, uint8_t b[INVITE_BYTES])
{
	b[0] = inv->version;
	memcpy(b + 1, inv->fp_prefix, ZILA_INVITE_FP_LEN);
	memcpy(b + 1 + ZILA_INVITE_FP_LEN, inv->secret, ZILA_INVITE_SECRET_LEN);
}

void zila_invite_new(struct zila_invite *inv, const uint8_t fp[ZILA_FP_LEN])
{
	inv->version = 1;
	memcpy(inv->fp_prefix, fp, ZILA_INVITE_FP_LEN);
	randombytes_buf(inv->secret, sizeof(inv->secret));
}

void zila_invite_format(const struct zila_invite *inv, char out[ZILA_INVITE_CODE_LEN + 1])
{
	uint8_t b[INVITE_BYTES], chk[INVITE_CHECK];
	char raw[INVITE_DATA_CHARS + INVITE_CHECK + 1];
	invite_bytes(inv, b);
	zila_base32_encode(raw, b, sizeof(b));
	check_symbols(chk, INVITE_CHECK, "zila-invite-check", b, sizeof(b));
	for (size_t i = 0; i < INVITE_CHECK; i++)
		raw[INVITE_DATA_CHARS + i] = b32[chk[i]];
	raw[INVITE_DATA_CHARS + INVITE_CHECK] = '\0';
	group4(out, raw);
	sodium_memzero(b, sizeof(b));
	sodium_memzero(raw, sizeof(raw));
}

int zila_invite_parse(const char *code, struct zila_invite *out)
{
	uint8_t sym[128], b[INVITE_BYTES], chk[INVITE_CHECK];
	int r = ZILA_EFORMAT;
	memset(out, 0, sizeof(*out));
	long n = symbols(code, sym, sizeof(sym));
	if (n != INVITE_DATA_CHARS + INVITE_CHECK)
		goto out;
	/* Non-zero padding bits can only come from a mistyped last symbol. */
	if (unpack(b, sizeof(b), sym, INVITE_DATA_CHARS) != 0) {
		r = ZILA_ECHECK;
		goto out;
	}
	check_symbols(chk, INVITE_CHECK, "zila-invite-check", b, sizeof(b));
	if (memcmp(chk, sym + INVITE_DATA_CHARS, INVITE_CHECK) != 0) {
		r = ZILA_ECHECK;
		goto out;
	}
	if (b[0] != 1) {
		r = ZILA_EVERSION;
		goto out;
	}
	out->version = b[0];
	memcpy(out->fp_prefix, b + 1, ZILA_INVITE_FP_LEN);
	memcpy(out->secret, b + 1 + ZILA_INVITE_FP_LEN, ZILA_INVITE_SECRET_LEN);
	r = 0;
out:
	sodium_memzero(b, sizeof(b));
	sodium_memzero(sym, sizeof(sym));
	return r;
}

static void kdf32(uint8_t out[32], const char *domain, const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, 32);
	crypto_generichash_update(&st, (const uint8_t *)domain, strlen(domain));
	crypto_generichash_update(&st, a, a_len);
	if (b_len > 0)
		crypto_generichash_update(&st, b, b_len);
	crypto_generichash_final(&st, out, 32);
	sodium_memzero(&st, sizeof(st));
}

void zila_invite_id(const struct zila_invite *inv, uint8_t id[ZILA_INVITE_ID_LEN])
{
	uint8_t h[32];
	kdf32(h, "zila-invite-id-v1", inv->secret, sizeof(inv->secret), NULL, 0);
	memcpy(id, h, ZILA_INVITE_ID_LEN);
}

void zila_invite_psk(const struct zila_invite *inv, uint8_t psk[32])
{
	kdf32(psk, "zila-invite-psk-v1", inv->secret, sizeof(inv->secret), inv->fp_prefix, ZILA_INVITE_FP_LEN);
}

/* Every organisation key comes from the secret only enrolled devices hold, never from the
 * root's public key (which every bundle and certificate file carries in clear). */
static void org_subkey(uint8_t out[32], uint64_t id, const uint8_t secret[ZILA_ORG_SECRET_LEN])
{
	crypto_kdf_derive_from_key(out, 32, id, "zila-org", secret);
}

void zila_org_psk(const uint8_t secret[ZILA_ORG_SECRET_LEN], uint8_t psk[32])
{
	org_subkey(psk, 1, secret);
}

void zila_org_beacon_key(const uint8_t secret[ZILA_ORG_SECRET_LEN], uint8_t key[32])
{
	org_subkey(key, 2, secret);
}

void zila_org_bundle_key(const uint8_t secret[ZILA_ORG_SECRET_LEN], uint8_t key[32])
{
	org_subkey(key, 3, secret);
}

int zila_org_secret_box(const uint8_t secret[ZILA_ORG_SECRET_LEN], const uint8_t issuer_sk[64],
			const uint8_t device_pk[32], uint8_t box[ZILA_ORG_SECRET_BOX_LEN])
{
	uint8_t xsk[32], xpk[32];
	int r = ZILA_EINVAL;
	if (crypto_sign_ed25519_sk_to_curve25519(xsk, issuer_sk) != 0 ||
	    crypto_sign_ed25519_pk_to_curve25519(xpk, device_pk) != 0)
		goto out;
	randombytes_buf(box, crypto_box_NONCEBYTES);
	if (crypto_box_easy(box + crypto_box_NONCEBYTES, secret, ZILA_ORG_SECRET_LEN, box, xpk, xsk) != 0)
		goto out;
	r = 0;
out:
	sodium_memzero(xsk, sizeof(xsk));
	return r;
}

int zila_org_secret_unbox(const uint8_t box[ZILA_ORG_SECRET_BOX_LEN], const uint8_t issuer_pk[32],
			  const uint8_t device_sk[64], uint8_t secret[ZILA_ORG_SECRET_LEN])
{
	uint8_t xsk[32], xpk[32];
	int r = ZILA_EAUTH;
	if (crypto_sign_ed25519_sk_to_curve25519(xsk, device_sk) != 0 ||
	    crypto_sign_ed25519_pk_to_curve25519(xpk, issuer_pk) != 0)
		goto out;
	if (crypto_box_open_easy(secret, box + crypto_box_NONCEBYTES, ZILA_ORG_SECRET_BOX_LEN - crypto_box_NONCEBYTES,
				 box, xpk, xsk) != 0)
		goto out;
	r = 0;
out:
	if (r != 0)
		sodium_memzero(secret, ZILA_ORG_SECRET_LEN);
	sodium_memzero(xsk, sizeof(xsk));
	return r;
}

/* --- enrolment requests and certificate files -------------------------------------- */

static const char req_magic[8] = { 'Z', 'I', 'L', 'A', 'R', 'E', 'Q', '1' };
static const char cf_magic[8] = { 'Z', 'I', 'L', 'A', 'C', 'R', 'T', '1' };
/* Certificate file flags (proto/TRUST.md): an issuer certificate follows; revocations follow. */
#define CF_ISSUER 0x01
#define CF_REVOCATIONS 0x04
#define CF_SECTION_ORG_SECRET 1 /* the organisation secret boxed to the device by its issuer */
#define ENROL_DOMAIN "zila-enrol-v1"

int zila_enrol_req_sign(struct zila_enrol_req *req, const uint8_t device_sk[64], struct zila_buf *out)
{
	int r = ZILA_EINVAL;
	struct zila_buf b;
	zila_buf_init(&b, ZILA_ENROL_REQ_MAX);
	if (!text_ok(req->name, ZILA_NAME_MAX))
		goto out;
	crypto_sign_ed25519_sk_to_pk(req->device_pk, device_sk);
	size_t n = strlen(req->name);
	if ((r = zila_buf_put(&b, req_magic, 8)) != 0 || (r = zila_buf_put(&b, req->device_pk, 32)) != 0 ||
	    (r = zila_buf_put_u8(&b, (uint8_t)n)) != 0 || (r = zila_buf_put(&b, req->name, n)) != 0 ||
	    (r = sign_with(ENROL_DOMAIN, b.p, b.len, device_sk, req->sig)) != 0 ||
	    (r = zila_buf_put(&b, req->sig, 64)) != 0 || (r = zila_buf_put(out, b.p, b.len)) != 0)
		goto out;
out:
	zila_buf_release(&b);
	return r;
}

/* The head both USB files start with: 8 bytes of magic, a 32-byte key, a name (u8 length,
 * UTF-8 without control characters; empty only when may_be_empty). */
static int get_file_head(struct zila_view *in, const char magic[8], uint8_t key[32],
			 char name[ZILA_NAME_MAX + 1], bool may_be_empty)
{
	const uint8_t *p;
	uint8_t n;
	int r;
	if ((r = zila_view_get_bytes(in, 8, &p)) != 0)
		return r;
	if (memcmp(p, magic, 8) != 0)
		return ZILA_EFORMAT;
	if ((r = zila_view_get_copy(in, key, 32)) != 0 || (r = zila_view_get_u8(in, &n)) != 0)
		return r;
	if (n > ZILA_NAME_MAX)
		return ZILA_EFORMAT;
	if ((r = zila_view_get_bytes(in, n, &p)) != 0)
		return r;
	memcpy(name, p, n);
	name[n] = '\0';
	if (memchr(p, 0, n) != NULL || ((n > 0 || !may_be_empty) && !text_ok(name, ZILA_NAME_MAX)))
		return ZILA_EFORMAT;
	return 0;
}

int zila_enrol_req_decode(struct zila_view in, struct zila_enrol_req *out)
{
	int r;
	struct zila_view all = in;
	memset(out, 0, sizeof(*out));
	if ((r = get_file_head(&in, req_magic, out->device_pk, out->name, false)) != 0)
		goto out;
	if ((r = zila_view_get_copy(&in, out->sig, 64)) != 0)
		goto out;
	if (in.len != 0) {
		r = ZILA_EFORMAT;
		goto out;
	}
	r = verify_with(ENROL_DOMAIN, all.p, all.len - 64, out->device_pk, out->sig);
out:
	return r;
}

int zila_cert_file_encode(const struct zila_cert_file *f, struct zila_buf *out)
{
	int r;
	struct zila_cert c = f->cert, i = f->issuer;
	struct zila_buf b;
	zila_buf_init(&b, 2 * ZILA_CERT_LEN + 3 + ZILA_ORG_SECRET_BOX_LEN);
	size_t n = strlen(f->org_name);
	r = ZILA_EINVAL;
	if (n > ZILA_NAME_MAX)
		goto out;
	if (f->nrevocations > ZILA_CERT_FILE_REVOCATIONS)
		goto out;
	uint8_t flags = (f->has_issuer ? CF_ISSUER : 0) | (f->nrevocations ? CF_REVOCATIONS : 0);
	if ((r = zila_buf_put(out, cf_magic, 8)) != 0 || (r = zila_buf_put(out, f->root_pk, 32)) != 0 ||
	    (r = zila_buf_put_u8(out, (uint8_t)n)) != 0 || (r = zila_buf_put(out, f->org_name, n)) != 0 ||
	    (r = zila_buf_put_u8(out, flags)) != 0)
		goto out;
	/* Re-encode the signed certificates byte for byte from their fields. */
	if ((r = cert_body(&c, &b)) != 0 || (r = zila_buf_put(&b, c.sig, 64)) != 0)
		goto out;
	if (f->has_issuer && ((r = cert_body(&i, &b)) != 0 || (r = zila_buf_put(&b, i.sig, 64)) != 0))
		goto out;
	if ((r = zila_buf_put(out, b.p, b.len)) != 0)
		goto out;
	/* Revocations: count (2 bytes), then each as length (4 bytes) and bytes. */
	if (f->nrevocations && (r = zila_buf_put_u16be(out, (uint16_t)f->nrevocations)) != 0)
		goto out;
	for (size_t k = 0; r == 0 && k < f->nrevocations; k++) {
		r = f->revocations[k].len > REVOKE_MAX ? ZILA_ETOOBIG : 0;
		r = r ? r : zila_buf_put_u32be(out, (uint32_t)f->revocations[k].len);
		r = r ? r : zila_buf_put(out, f->revocations[k].p, f->revocations[k].len);
	}
	/* Sections last: type (1 byte), length (2 bytes), bytes. */
	if (r == 0 && f->has_secret_box &&
	    ((r = zila_buf_put_u8(out, CF_SECTION_ORG_SECRET)) != 0 ||
	     (r = zila_buf_put_u16be(out, ZILA_ORG_SECRET_BOX_LEN)) != 0 ||
	     (r = zila_buf_put(out, f->secret_box, ZILA_ORG_SECRET_BOX_LEN)) != 0))
		goto out;
	if (r == 0 && out->len > ZILA_CERT_FILE_MAX)
		r = ZILA_ETOOBIG;
out:
	zila_buf_release(&b);
	return r;
}

/* The revocations section of a certificate file: each checked for layout, kept as a view. */
static int get_revocations(struct zila_view *in, struct zila_cert_file *out)
{
	uint16_t n;
	int r = zila_view_get_u16be(in, &n);
	if (r != 0)
		return r;
	if (n == 0 || n > ZILA_CERT_FILE_REVOCATIONS)
		return ZILA_EFORMAT;
	for (uint16_t k = 0; k < n; k++) {
		uint32_t len;
		const uint8_t *p;
		struct zila_revocation rv;
		if ((r = zila_view_get_u32be(in, &len)) != 0)
			return r;
		if (len > REVOKE_MAX || len > in->len)
			return len > REVOKE_MAX ? ZILA_EFORMAT : ZILA_ESHORT;
		if ((r = zila_view_get_bytes(in, len, &p)) != 0)
			return r;
		memset(&rv, 0, sizeof(rv));
		r = zila_revocation_decode(zila_view_make(p, len), &rv);
		zila_revocation_release(&rv);
		if (r != 0)
			return r;
		out->revocations[out->nrevocations++] = zila_view_make(p, len);
	}
	return 0;
}

int zila_cert_file_decode(struct zila_view in, uint64_t now, struct zila_cert_file *out)
{
	int r;
	const uint8_t *p;
	uint8_t flags;
	memset(out, 0, sizeof(*out));
	if ((r = get_file_head(&in, cf_magic, out->root_pk, out->org_name, true)) != 0)
		goto out;
	if ((r = zila_view_get_u8(&in, &flags)) != 0)
		goto out;
	if ((flags & ~(CF_ISSUER | CF_REVOCATIONS)) != 0) {
		r = ZILA_EFORMAT;
		goto out;
	}
	out->has_issuer = flags & CF_ISSUER;
	if ((r = zila_view_get_bytes(&in, ZILA_CERT_LEN, &p)) != 0 ||
	    (r = zila_cert_decode(zila_view_make(p, ZILA_CERT_LEN), &out->cert)) != 0)
		goto out;
	if (out->has_issuer && ((r = zila_view_get_bytes(&in, ZILA_CERT_LEN, &p)) != 0 ||
				(r = zila_cert_decode(zila_view_make(p, ZILA_CERT_LEN), &out->issuer)) != 0))
		goto out;
	if ((flags & CF_REVOCATIONS) && (r = get_revocations(&in, out)) != 0)
		goto out;
	while (in.len != 0) {
		uint8_t type;
		uint16_t slen;
		if ((r = zila_view_get_u8(&in, &type)) != 0 || (r = zila_view_get_u16be(&in, &slen)) != 0)
			goto out;
		/* One known section, at most once: a file has exactly one encoding. */
		if (type != CF_SECTION_ORG_SECRET || out->has_secret_box || slen != ZILA_ORG_SECRET_BOX_LEN) {
			r = ZILA_EFORMAT;
			goto out;
		}
		if ((r = zila_view_get_copy(&in, out->secret_box, ZILA_ORG_SECRET_BOX_LEN)) != 0)
			goto out;
		out->has_secret_box = true;
	}
	r = zila_cert_verify(&out->cert, out->root_pk, out->has_issuer ? &out->issuer : NULL, now);
out:
	return r;
}
