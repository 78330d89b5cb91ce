/* TLS for the web interface on the LAN (webtls.c: OpenSSL's libssl over memory BIOs, so the
 * daemon's loop never blocks on a socket read inside the library; webtls_none.c: a build
 * without TLS, the Windows one, which says so). Sans-I/O like the sync engine's channel:
 * ciphertext in, plaintext and ciphertext out. */
#ifndef ZILA_NET_WEBTLS_H
#define ZILA_NET_WEBTLS_H

#include <stdbool.h>
#include <stddef.h>

#include "zila/buf.h"
#include "zila/err.h"
#include "zila/webauth.h"

struct webtls_ctx;
struct webtls;

/* The server's certificate and key: cert and key files when given (both), else dir's
 * ZILA_WEBTLS_CERT and ZILA_WEBTLS_KEY, made self-signed on first use for names (host names
 * or IP addresses, NULL-terminated; localhost and 127.0.0.1 are always in). fp gets the
 * certificate's SHA-256 fingerprint (ZILA_WEBTLS_FP_LEN). */
int webtls_ctx_new(struct webtls_ctx **out, const char *dir, const char *cert, const char *key, const char *const *names,
		   char fp[ZILA_WEBTLS_FP_LEN + 1], struct zila_error *err) ZILA_MUST_CHECK;
void webtls_ctx_free(struct webtls_ctx *c);

/* One connection's TLS (server side). NULL when out of memory. */
struct webtls *webtls_new(struct webtls_ctx *c);
void webtls_free(struct webtls *t);
/* Takes n bytes read from the socket: the plaintext they carry is appended to plain, what
 * is to be sent back (handshake, alerts) to wire. 0, or -1 when the connection is to close
 * (a failed handshake, a broken record). */
int webtls_feed(struct webtls *t, const void *in, size_t n, struct zila_buf *plain, struct zila_buf *wire) ZILA_MUST_CHECK;
/* Encrypts n bytes of plaintext into wire; -1 on failure. */
int webtls_write(struct webtls *t, const void *p, size_t n, struct zila_buf *wire) ZILA_MUST_CHECK;

#endif
