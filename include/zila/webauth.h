/* Who may log in to the web interface from the LAN: a password for the device and named
 * accounts with a role, kept as Argon2id hashes (libsodium's crypto_pwhash_str) in a file
 * beside the replica, DIR/web-auth.json, mode 0600. `zila web` writes it; the daemon reads it
 * at each login, so a change holds at once. No password is ever stored or logged. */
#ifndef ZILA_WEBAUTH_H
#define ZILA_WEBAUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "zila/err.h"

#define ZILA_WEBAUTH_FILE "web-auth.json"
#define ZILA_WEBAUTH_PASSWORD_MIN 8   /* characters a password needs at least */
#define ZILA_WEBAUTH_PASSWORD_MAX 256 /* and at most (bytes) */
#define ZILA_WEBAUTH_NAME_MAX 32      /* an account's name: [a-z0-9._-], 1..32 */
#define ZILA_WEBAUTH_ROLE_MAX 80      /* "admin", "viewer", "district:<id>"; "owner" for the password */

/* One account, as listed (no hash). */
struct zila_webauth_account {
	char name[ZILA_WEBAUTH_NAME_MAX + 1];
	char role[ZILA_WEBAUTH_ROLE_MAX + 1];
};

/* Whether role is one an account may have: "admin", "viewer" or "district:<id>" (id 1..64 of
 * [A-Za-z0-9._-]). */
bool zila_webauth_role_ok(const char *role);
/* Whether name is an account name: 1..ZILA_WEBAUTH_NAME_MAX of [a-z0-9._-]. */
bool zila_webauth_name_ok(const char *name);

/* Sets the device's password (hashed) in dir's file; password NULL removes it. Returns 0;
 * ZILA_EINVAL for a password too short or too long; ZILA_ENOTFOUND when clearing and none
 * was set; another code (err says why) when the file cannot be read or written. */
int zila_webauth_set_password(const char *dir, const char *password, struct zila_error *err) ZILA_MUST_CHECK;
/* Adds account name with role and password; ZILA_EEXIST when it exists, ZILA_EINVAL for a bad
 * name, role or password. */
int zila_webauth_account_add(const char *dir, const char *name, const char *role, const char *password,
			     struct zila_error *err) ZILA_MUST_CHECK;
/* A new password for account name; ZILA_ENOTFOUND when there is none. */
int zila_webauth_account_passwd(const char *dir, const char *name, const char *password,
				struct zila_error *err) ZILA_MUST_CHECK;
/* Removes account name; ZILA_ENOTFOUND when there is none. */
int zila_webauth_account_rm(const char *dir, const char *name, struct zila_error *err) ZILA_MUST_CHECK;
/* The accounts, sorted by name, into out (at most max); *n their number (may exceed max). */
int zila_webauth_accounts(const char *dir, struct zila_webauth_account *out, size_t max, size_t *n,
			  bool *has_password, struct zila_error *err) ZILA_MUST_CHECK;

/* A login's stored hash, looked up without checking it (cheap; the daemon's loop calls it):
 * name NULL or "" is the device's password ("owner"). Copies the hash and the role out.
 * When no such account exists, hash gets a decoy (checked as long, never matching) and the
 * return is ZILA_ENOTFOUND, so the caller spends the same time either way. */
int zila_webauth_lookup(const char *dir, const char *name, char *hash, size_t hash_len, char role[ZILA_WEBAUTH_ROLE_MAX + 1]);
/* Checks password against hash (slow by design: Argon2id; run it off the loop). true when it
 * matches. */
bool zila_webauth_verify(const char *hash, const char *password, size_t password_len);
/* Whether any login by password is set up (a password or an account). */
bool zila_webauth_any(const char *dir);

/* --- TLS (the interface on the LAN) --- */
#define ZILA_WEBTLS_CERT "web-tls-cert.pem" /* beside the replica, made on first use */
#define ZILA_WEBTLS_KEY "web-tls-key.pem"   /* its key, 0600 */
#define ZILA_WEBTLS_FP_LEN 95               /* "AB:CD:..." SHA-256 of the certificate */
#define ZILA_WEBTLS_PIN_LEN 51              /* "sha256//" + base64 SHA-256 of its public key */
/* Whether this build serves TLS (the Windows build does not: HQ runs Debian). */
bool zila_webtls_built(void);
/* The SHA-256 fingerprint of the certificate in file (PEM) and the pin of its public key (as
 * curl's --pinnedpubkey takes it); pin may be NULL. ZILA_ENOTFOUND when there is no file. */
int zila_webtls_fingerprint(const char *file, char fp[ZILA_WEBTLS_FP_LEN + 1], char *pin, size_t pin_len,
			    struct zila_error *err) ZILA_MUST_CHECK;

#endif
