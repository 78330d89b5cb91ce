/* Trust: the organisation root, device certificates, revocations, invite codes, enrolment
 * requests and readable device ids. The codecs need only libsodium; the functions taking a
 * struct zila_store keep certificates and revocations in the replica and enforce them.
 * Byte layouts: proto/TRUST.md. */
#ifndef ZILA_TRUST_H
#define ZILA_TRUST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zila/buf.h"
#include "zila/err.h"
#include "zila/store.h"

#define ZILA_ORG_KEY_FILE "org.key"
#define ZILA_FP_LEN 32             /* organisation fingerprint bytes */
#define ZILA_NAME_MAX 32           /* device or organisation name bytes */
#define ZILA_DISTRICT_MAX ZILA_PART_MAX
#define ZILA_CERT_LEN 277          /* a version-1 certificate, signature included */
#define ZILA_DEVICE_ID_LEN 22      /* "XXXX-XXXX-XXXX-XXXX-CC" */
#define ZILA_INVITE_CODE_LEN 47    /* formatted, with hyphens */
#define ZILA_INVITE_SECRET_LEN 12
#define ZILA_INVITE_FP_LEN 8       /* fingerprint prefix carried by an invite code */
#define ZILA_INVITE_ID_LEN 8
#define ZILA_REVOKE_FEEDS_MAX 4096
#define ZILA_ENROL_REQ_MAX 256

/* Trust record types kept in the replica (zila_store_trust_put; and in bundles and sessions). A certificate and a
 * revocation are kept under the device's key; an earlier certificate of a device (one a
 * newer certificate replaced) under ZILA_TRUST_PAST_ID_LEN bytes: the device's key, its
 * not-before (8 bytes, big-endian) and the first 8 bytes of BLAKE2b-256 of its bytes. */
enum { ZILA_TRUST_CERT = 1, ZILA_TRUST_REVOKE = 2, ZILA_TRUST_CERT_PAST = 3 };
#define ZILA_TRUST_PAST_ID_LEN 48
#define ZILA_TRUST_HISTORY_MAX 64 /* certificates of one device consulted */

enum zila_role { ZILA_ROLE_HQ = 1, ZILA_ROLE_DISTRICT = 2, ZILA_ROLE_BLOCK = 3 };

/* "hq", "district", "block"; NULL for an unknown role. */
const char *zila_role_name(int role);
/* Parses a role name; ZILA_EINVAL when unknown. */
int zila_role_parse(const char *s, int *role) ZILA_MUST_CHECK;

/* --- identities ------------------------------------------------------------------- */

/* The organisation fingerprint: BLAKE2b-256 of "zila-org-fp-v1" || root public key. */
void zila_org_fingerprint(const uint8_t root_pk[32], uint8_t fp[ZILA_FP_LEN]);
/* A device id a person can read aloud: 80 bits of BLAKE2b over the device key in Crockford
 * base32, grouped by four, and two check characters: "7K2M-Q9XD-4HRT-0WAB-3F". */
void zila_device_id(const uint8_t device_pk[32], char out[ZILA_DEVICE_ID_LEN + 1]);
/* Checks a typed device id (case, hyphens, spaces, I/L/O confusions forgiven): 0 when it
 * names device_pk, ZILA_ECHECK when its check characters do not match, ZILA_EFORMAT when it
 * is not a device id, ZILA_ENOTFOUND when it is valid but names another device. */
int zila_device_id_match(const char *typed, const uint8_t device_pk[32]) ZILA_MUST_CHECK;

/* Crockford base32 without padding: out gets ceil(8n/5) characters and a NUL. */
void zila_base32_encode(char *out, const uint8_t *p, size_t n);
/* Decodes exactly n bytes from s (hyphens and spaces skipped, case and I/L/O forgiven). */
int zila_base32_decode(uint8_t *out, size_t n, const char *s) ZILA_MUST_CHECK;

/* --- certificates ----------------------------------------------------------------- */

struct zila_cert {
	uint8_t version;                      /* 1 */
	uint8_t org_fp[ZILA_FP_LEN];
	uint8_t device_pk[32];                /* Ed25519 */
	char name[ZILA_NAME_MAX + 1];         /* NUL-terminated, UTF-8 */
	uint8_t role;                         /* enum zila_role */
	bool scope_all;                       /* may read and write every partition */
	char district[ZILA_DISTRICT_MAX + 1]; /* else this district (and read the org-wide one) */
	uint64_t not_before, not_after;       /* seconds since 1970, inclusive */
	uint8_t issuer_pk[32];                /* the root, or an HQ device the root certified */
	uint8_t sig[64];
};

/* Fills cert->issuer_pk from issuer_sk, signs and encodes into out (ZILA_CERT_LEN bytes).
 * Names and districts are checked (length, UTF-8, no control characters). */
int zila_cert_sign(struct zila_cert *cert, const uint8_t issuer_sk[64], struct zila_buf *out) ZILA_MUST_CHECK;
/* Encodes an already signed certificate (its fields and signature) into out. */
int zila_cert_encode(const struct zila_cert *cert, struct zila_buf *out) ZILA_MUST_CHECK;
/* Parses exactly ZILA_CERT_LEN bytes (layout only: no signature check). */
int zila_cert_decode(struct zila_view in, struct zila_cert *out) ZILA_MUST_CHECK;
/* Checks cert against the organisation with root_pk at time now (seconds): fingerprint,
 * signature, validity. When the issuer is not the root, issuer must be its certificate: an
 * HQ certificate with scope all, itself signed by the root and valid at now. Returns 0,
 * ZILA_ECERT (other organisation, wrong issuer), ZILA_ESIG or ZILA_EEXPIRED. */
int zila_cert_verify(const struct zila_cert *cert, const uint8_t root_pk[32],
		     const struct zila_cert *issuer, uint64_t now) ZILA_MUST_CHECK;
/* Whether cert allows writing, or reading, partition part ("" is org-wide: every certificate
 * may read it, only scope all may write it). */
bool zila_cert_may_write(const struct zila_cert *cert, const char *part);
bool zila_cert_may_read(const struct zila_cert *cert, const char *part);

/* --- revocations ------------------------------------------------------------------ */

struct zila_revoke_mark {
	char part[ZILA_PART_MAX + 1];
	uint64_t last_seq; /* the last entry of (device, part) still accepted */
};

struct zila_revocation {
	uint8_t version; /* 1 */
	uint8_t org_fp[ZILA_FP_LEN];
	uint8_t device_pk[32];
	uint64_t created; /* seconds since 1970 */
	struct zila_revoke_mark *marks; /* owned: zila_revocation_release() */
	size_t nmarks;
	uint8_t issuer_pk[32];
	uint8_t sig[64];
};

void zila_revocation_release(struct zila_revocation *rv);
int zila_revocation_sign(struct zila_revocation *rv, const uint8_t issuer_sk[64],
			 struct zila_buf *out) ZILA_MUST_CHECK;
/* Parses a revocation; marks are allocated (at most ZILA_REVOKE_FEEDS_MAX). */
int zila_revocation_decode(struct zila_view in, struct zila_revocation *out) ZILA_MUST_CHECK;
/* Like zila_cert_verify (the issuer rules are the same). */
int zila_revocation_verify(const struct zila_revocation *rv, const uint8_t root_pk[32],
			   const struct zila_cert *issuer, uint64_t now) ZILA_MUST_CHECK;
/* The last accepted sequence number for part (0 when the revocation does not name it). */
uint64_t zila_revocation_mark(const struct zila_revocation *rv, const char *part);

/* --- invite codes ----------------------------------------------------------------- */

struct zila_invite {
	uint8_t version; /* 1 */
	uint8_t fp_prefix[ZILA_INVITE_FP_LEN];
	uint8_t secret[ZILA_INVITE_SECRET_LEN];
};

/* A new invite for the organisation with fingerprint fp (fresh random secret). */
void zila_invite_new(struct zila_invite *inv, const uint8_t fp[ZILA_FP_LEN]);
/* Formats the code: Crockford base32 of version, fingerprint prefix and secret, then four
 * check characters, in groups of four: 47 characters with hyphens. */
void zila_invite_format(const struct zila_invite *inv, char out[ZILA_INVITE_CODE_LEN + 1]);
/* Parses a typed code; ZILA_ECHECK on a typo, ZILA_EFORMAT/ZILA_EVERSION otherwise. */
int zila_invite_parse(const char *code, struct zila_invite *out) ZILA_MUST_CHECK;
/* The invite's public id (hash of the secret): what HQ stores and the handshake names. */
void zila_invite_id(const struct zila_invite *inv, uint8_t id[ZILA_INVITE_ID_LEN]);
/* The handshake pre-shared key for enrolling with this invite. */
void zila_invite_psk(const struct zila_invite *inv, uint8_t psk[32]);

/* --- the organisation secret ------------------------------------------------------ */

/* 32 random bytes made at `zila org init` that only enrolled devices hold (DIR/org.secret,
 * 0600). Every key that keeps outsiders out derives from it (crypto_kdf, context
 * "zila-org"): never from the root's public key, which bundles carry in clear. */
#define ZILA_ORG_SECRET_LEN 32
#define ZILA_ORG_SECRET_FILE "org.secret"
#define ZILA_ORG_SECRET_BOX_LEN 72 /* nonce (24) || crypto_box of the secret (32 + 16) */

/* What a device enrolled before organisation secrets existed is told (daemon log, status,
 * sync, bundles): it exchanges nothing until it is enrolled again. */
#define ZILA_NO_SECRET_MSG                                                                              \
	"this device was enrolled before organisation secrets existed and holds none, so it syncs with "   \
	"nobody: enrol it again (its data stays): 'zila join --hq HOST:PORT' with a new invite code from " \
	"HQ, or 'zila enrol request' and 'zila enrol install' by USB stick"

/* The handshake pre-shared key of an organisation's members (subkey 1). */
void zila_org_psk(const uint8_t secret[ZILA_ORG_SECRET_LEN], uint8_t psk[32]);
/* The LAN beacon key (subkey 2). */
void zila_org_beacon_key(const uint8_t secret[ZILA_ORG_SECRET_LEN], uint8_t key[32]);
/* The key of bundles for any enrolled device (subkey 3). */
void zila_org_bundle_key(const uint8_t secret[ZILA_ORG_SECRET_LEN], uint8_t key[32]);
/* Boxes the secret for device_pk from the issuer (crypto_box over the X25519 forms of their
 * Ed25519 keys, random nonce): only that device can open it, and only the issuer can have
 * made it. 0 or ZILA_EINVAL (a key with no X25519 form). */
int zila_org_secret_box(const uint8_t secret[ZILA_ORG_SECRET_LEN], const uint8_t issuer_sk[64],
			const uint8_t device_pk[32], uint8_t box[ZILA_ORG_SECRET_BOX_LEN]) ZILA_MUST_CHECK;
/* Opens a box made by zila_org_secret_box; ZILA_EAUTH when it is not the issuer's for this
 * device (secret is then zeroed). */
int zila_org_secret_unbox(const uint8_t box[ZILA_ORG_SECRET_BOX_LEN], const uint8_t issuer_pk[32],
			  const uint8_t device_sk[64], uint8_t secret[ZILA_ORG_SECRET_LEN]) ZILA_MUST_CHECK;

/* --- enrolment requests ----------------------------------------------------------- */

struct zila_enrol_req {
	uint8_t device_pk[32];
	char name[ZILA_NAME_MAX + 1];
	uint8_t sig[64]; /* by the device key: it holds the key it asks a certificate for */
};

int zila_enrol_req_sign(struct zila_enrol_req *req, const uint8_t device_sk[64],
			struct zila_buf *out) ZILA_MUST_CHECK;
/* Parses and checks the self-signature. */
int zila_enrol_req_decode(struct zila_view in, struct zila_enrol_req *out) ZILA_MUST_CHECK;

/* A certificate file: the organisation's root key and name, the certificate, the issuer's
 * certificate when the issuer is an HQ device, and the revocations the issuer knew when it
 * signed (#15 item 13: a laptop enrolled by USB learns them at once). */
#define ZILA_CERT_FILE_REVOCATIONS 256 /* revocations a certificate file carries, at most */
#define ZILA_CERT_FILE_MAX (1u << 20)  /* bytes of a certificate file, at most */
struct zila_cert_file {
	uint8_t root_pk[32];
	char org_name[ZILA_NAME_MAX + 1];
	struct zila_cert cert;
	bool has_issuer;
	struct zila_cert issuer;
	/* Encoded revocations (zila_revocation_decode layout): on encode the caller's, on
	 * decode borrowed from the input (valid while it is), each one checked for layout only;
	 * the installer verifies them as trust records. */
	size_t nrevocations;
	struct zila_view revocations[ZILA_CERT_FILE_REVOCATIONS];
	/* The organisation secret boxed to cert's device by cert's issuer (a section after the
	 * certificates, proto/TRUST.md): zila_org_secret_unbox with cert.issuer_pk. */
	bool has_secret_box;
	uint8_t secret_box[ZILA_ORG_SECRET_BOX_LEN];
};
int zila_cert_file_encode(const struct zila_cert_file *f, struct zila_buf *out) ZILA_MUST_CHECK;
/* Parses and checks that cert (and issuer) verify against root_pk at now. */
int zila_cert_file_decode(struct zila_view in, uint64_t now, struct zila_cert_file *out) ZILA_MUST_CHECK;

/* --- the organisation root key ---------------------------------------------------- */

/* Key derivation cost; tests may use the minimum, the CLI uses MODERATE. */
struct zila_pwcost {
	unsigned long long ops;
	size_t mem;
};
extern const struct zila_pwcost zila_pwcost_default;
extern const struct zila_pwcost zila_pwcost_min;

/* Creates a root key pair and writes it to path (mode 0600, ZILA_EEXIST if present): the
 * secret key encrypted under an Argon2id key of the passphrase. root_pk gets the public key;
 * when sk_out is not NULL, *sk_out gets the secret key in sodium_malloc'd memory (sodium_free). */
int zila_org_key_create(const char *path, const char *pass, size_t pass_len,
			const struct zila_pwcost *cost, uint8_t root_pk[32], uint8_t **sk_out) ZILA_MUST_CHECK;
/* Decrypts the root key: *sk_out is sodium_malloc'd (free with sodium_free), root_pk gets
 * the public key. ZILA_EPASSPHRASE when the passphrase is wrong. */
int zila_org_key_unlock(const char *path, const char *pass, size_t pass_len, uint8_t **sk_out,
			uint8_t root_pk[32]) ZILA_MUST_CHECK;

/* --- the trust layer in a replica ------------------------------------------------- */

/* Replica settings kept by the trust layer (zila_store_meta_get). */
#define ZILA_META_ORG_PK "trust.org_pk"
#define ZILA_META_ORG_NAME "trust.org_name"
#define ZILA_META_JOIN_CODE "trust.join_code"
#define ZILA_META_JOIN_HQ "trust.join_hq"
#define ZILA_META_INVITE_PREFIX "trust.invite."
#define ZILA_META_ORG_SECRET_MADE "trust.org_secret_made" /* at the root's HQ: the secret was made */

/* The organisation secret this device holds (DIR/org.secret). At the HQ that holds the root
 * key file (org.key) and a certificate from the root, a missing secret is made once (so an
 * HQ set up before secrets existed gets one; one that lost the file after making it gets
 * ZILA_ENOTFOUND and restores it from a backup). ZILA_ENOTFOUND when this device has none:
 * it was enrolled before secrets existed and must be enrolled again (README, "Security"). */
int zila_trust_org_secret(struct zila_store *s, uint8_t secret[ZILA_ORG_SECRET_LEN]) ZILA_MUST_CHECK;
/* A device made an HQ by the root key (zila org add-hq) takes the organisation secret kept
 * beside the root key file key_file (org.secret, backed up with org.key), unless it holds
 * one. It never makes one of its own: ZILA_ENOTFOUND (err says what to copy where) when
 * there is none to take. */
int zila_trust_org_secret_adopt(struct zila_store *s, const char *key_file, struct zila_error *err) ZILA_MUST_CHECK;

/* Whether the replica belongs to an organisation; root_pk (may be NULL) gets its key. */
int zila_trust_org(struct zila_store *s, uint8_t root_pk[32]) ZILA_MUST_CHECK;
/* Finds the certificate, or revocation, kept for device_pk (ZILA_ENOTFOUND). */
int zila_trust_cert_get(struct zila_store *s, const uint8_t device_pk[32], struct zila_cert *out) ZILA_MUST_CHECK;
int zila_trust_revocation_get(struct zila_store *s, const uint8_t device_pk[32],
			      struct zila_revocation *out) ZILA_MUST_CHECK;
/* The certificate that was device_pk's at time t (seconds): of every certificate kept for
 * it (the current one and earlier ones), the newest whose not-before is at most t; a newer
 * certificate ends an older one's say. Whether t is within its validity is left to the
 * caller (zila_cert_verify). ZILA_ENOTFOUND when the replica holds no certificate of the
 * device, ZILA_EEXPIRED when all of them start after t. */
int zila_trust_cert_at(struct zila_store *s, const uint8_t device_pk[32], uint64_t t,
		       struct zila_cert *out) ZILA_MUST_CHECK;
/* Whether this device's own certificate covers time t (seconds; the time it dates changes
 * by): when it has expired, has not begun, or expires within 14 days, msg gets a warning in
 * plain words with what to do and the return is true; else msg is "" and the return false
 * (also for a replica that is not enrolled). */
#define ZILA_CERT_WARN_DAYS 14
bool zila_trust_own_cert_warning(struct zila_store *s, uint64_t t, char *msg, size_t n);
/* Keeps a trust record that zila_trust_check_record accepted: a certificate (type 1 or 3)
 * becomes the device's current one when it is newer (by not-before, then bytes) than the
 * one held, which is kept as an earlier certificate; else it is kept as an earlier one. A
 * revocation replaces the one held. */
int zila_trust_keep(struct zila_store *s, uint8_t type, struct zila_view bytes) ZILA_MUST_CHECK;
/* Whether exactly this record is kept already (a certificate as current or earlier). */
bool zila_trust_held(struct zila_store *s, uint8_t type, struct zila_view bytes);
/* Calls fn for every certificate kept in the replica (in key order); a non-zero return from
 * fn stops the walk and is returned. */
int zila_trust_cert_each(struct zila_store *s, int (*fn)(void *ctx, const struct zila_cert *c), void *ctx) ZILA_MUST_CHECK;
/* At HQ: collects deleted rows (zila_store_collect) with, for each district it keeps a
 * checkpoint of, the devices that may hold it: every device whose certificate may read it
 * but this one, and but a revoked one whose entries up to its revocation's marks are all
 * here. *ndropped counts the rows dropped. */
int zila_trust_collect(struct zila_store *s, size_t *ndropped, struct zila_error *err) ZILA_MUST_CHECK;
/* At HQ: what holds collection back, by zila_trust_collect's rule (the same holders,
 * zila_store_collect_held): the districts whose deleted rows wait, and the devices that hold them
 * back and why. Reads only; out released with zila_held_list_release. */
int zila_trust_collect_held(struct zila_store *s, struct zila_held_list *out, struct zila_error *err) ZILA_MUST_CHECK;
/* Checks a certificate with its issuer looked up in the replica. */
int zila_trust_cert_check(struct zila_store *s, const uint8_t root_pk[32], const struct zila_cert *c,
			  uint64_t now, struct zila_error *err) ZILA_MUST_CHECK;

/* Makes this replica the HQ of a new organisation: creates dir/org.key with the passphrase,
 * records the organisation and issues this device an HQ certificate (scope all). */
int zila_trust_org_init(struct zila_store *s, const char *name, const char *pass, size_t pass_len,
			const struct zila_pwcost *cost, uint64_t now, struct zila_error *err) ZILA_MUST_CHECK;

/* Issues a certificate for device_pk, signed by this HQ device (delegated by the root), and
 * keeps it. valid_days from now. The encoded certificate file goes to out when not NULL,
 * with the organisation secret boxed to the device. */
int zila_trust_issue(struct zila_store *s, const uint8_t device_pk[32], const char *name, int role,
		     const char *district, uint64_t now, uint32_t valid_days, struct zila_buf *file_out,
		     struct zila_error *err) ZILA_MUST_CHECK;
/* Installs a certificate file on this device: it must name this device's key. The
 * organisation secret it carries is opened and kept in DIR/org.secret (0600). */
int zila_trust_install_cert(struct zila_store *s, struct zila_view file, uint64_t now,
			    struct zila_error *err) ZILA_MUST_CHECK;
/* Signs and keeps a revocation of device_pk naming, per feed of that device, the last
 * entry this replica holds. An HQ device revokes district and block devices only (an HQ
 * device, itself included, is revoked with the root key: zila_trust_root_revoke). */
int zila_trust_revoke(struct zila_store *s, const uint8_t device_pk[32], uint64_t now,
		      struct zila_error *err) ZILA_MUST_CHECK;

/* The root key's own acts (#15 item 12; proto/TRUST.md, "Keys"), root_sk from
 * zila_org_key_unlock. root_hq: signs an HQ certificate (scope all, ten years) for this
 * device and keeps it, recording the organisation (named org_name, may be NULL) if this
 * replica has none: a new HQ, or a renewal. root_revoke: signs and keeps a revocation of any
 * device, an HQ device included, with marks as zila_trust_revoke's. */
int zila_trust_root_hq(struct zila_store *s, const uint8_t root_sk[64], const char *name, const char *org_name,
		       uint64_t now, struct zila_error *err) ZILA_MUST_CHECK;
int zila_trust_root_revoke(struct zila_store *s, const uint8_t root_sk[64], const uint8_t device_pk[32], uint64_t now,
			   struct zila_error *err) ZILA_MUST_CHECK;
/* At an HQ device: certifies again, with this device's key, a device whose certificate a
 * revoked HQ device issued (same name, role, district and end), valid from just before that
 * revocation so nothing the device wrote since is refused. The file goes to file_out when
 * not NULL. The caller chooses the devices: a copy of the revoked key may have certified
 * laptops the organisation never had ('zila devices' shows which this HQ did not issue). */
int zila_trust_reissue(struct zila_store *s, const uint8_t device_pk[32], uint64_t now, struct zila_buf *file_out,
		       struct zila_error *err) ZILA_MUST_CHECK;
/* Whether this device (an HQ) issued certificate c: 1 when its register lists it, 0 when c
 * names this device as issuer but the register does not (a copy of its key signed it, or it
 * predates the register), ZILA_ENOTFOUND when another key issued c. */
int zila_trust_issued_here(struct zila_store *s, const struct zila_cert *c) ZILA_MUST_CHECK;

/* Records a new invite (district, role, expiry) at HQ and returns its code. */
int zila_trust_invite(struct zila_store *s, const char *district, int role, uint64_t now, uint64_t expires,
		      char code[ZILA_INVITE_CODE_LEN + 1], struct zila_error *err) ZILA_MUST_CHECK;
/* At HQ, at first contact: finds the unused, unexpired invite with this id, marks it used
 * and issues the certificate for device_pk (file in out). Works once per invite. */
int zila_trust_redeem(struct zila_store *s, const uint8_t id[ZILA_INVITE_ID_LEN], const uint8_t device_pk[32],
		      const char *name, uint64_t now, struct zila_buf *file_out, struct zila_error *err) ZILA_MUST_CHECK;
/* At HQ: the psk for an invite id (ZILA_ENOTFOUND when unknown, used or expired). */
int zila_trust_invite_psk(struct zila_store *s, const uint8_t id[ZILA_INVITE_ID_LEN], uint64_t now,
			  uint8_t psk[32]) ZILA_MUST_CHECK;

/* Enforcement: installs the store hooks (admit entries, verify trust records) backed by this
 * replica's organisation. ctx is caller-owned storage that must outlive the hooks. */
#define ZILA_TRUST_CACHE 16
struct zila_trust_ctx {
	struct zila_store *s;
	uint64_t (*now)(void *clock_ctx); /* seconds; NULL for the wall clock */
	void *clock_ctx;
	struct zila_store_hooks hooks; /* filled by zila_trust_install() */
	/* Certificate chains whose signatures verified (a hash of root, certificate and issuer
	 * bytes), so that a bundle of many entries costs one verification per author. */
	uint8_t verified[ZILA_TRUST_CACHE][32];
	unsigned nverified, next_verified;
	/* This device's own certificate, read again when older than 10 s: what it may read. */
	struct zila_cert own;
	bool own_held;
	uint64_t own_at;
};
void zila_trust_install(struct zila_store *s, struct zila_trust_ctx *ctx);
/* The time ctx judges by: its clock, else the wall clock (seconds). */
uint64_t zila_trust_now(struct zila_trust_ctx *ctx);
/* The admit decision for one entry, as the hook makes it (exposed for tests and sync). */
int zila_trust_admit(struct zila_trust_ctx *ctx, const struct zila_entry_info *e, struct zila_error *err) ZILA_MUST_CHECK;
/* The checkpoint decision, as the hook makes it: its signer held a valid HQ certificate
 * (scope all) when it was made and was not revoked then; this device may read its district. */
int zila_trust_check_checkpoint(struct zila_trust_ctx *ctx, const struct zila_ckpt_info *ci, struct zila_error *err)
	ZILA_MUST_CHECK;
/* The trust_record decision, as the hook makes it. */
int zila_trust_check_record(struct zila_trust_ctx *ctx, uint8_t type, struct zila_view bytes,
			    struct zila_error *err) ZILA_MUST_CHECK;

/* Read scope for zila_bundle_write (bundle create --for): a zila_part_filter_fn whose ctx is a
 * struct zila_cert (the recipient's). */
bool zila_trust_read_filter(void *cert, const char *part);
/* Write scope, alike: whether the certificate (a struct zila_cert) may write partition part. */
bool zila_trust_write_filter(void *cert, const char *part);

#endif
