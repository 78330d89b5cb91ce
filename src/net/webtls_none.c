/* A build without TLS for the web interface (the Windows build: HQ, which serves its
 * interface on the LAN over TLS, runs Debian). Asking for TLS says so plainly. */
#include <stdio.h>

#include "webtls.h"

bool zila_webtls_built(void)
{
	return false;
}

int zila_webtls_fingerprint(const char *file, char fp[ZILA_WEBTLS_FP_LEN + 1], char *pin, size_t pin_len,
			    struct zila_error *err)
{
	fp[0] = '\0';
	if (pin != NULL && pin_len > 0)
		pin[0] = '\0';
	return zila_error_set(err, ZILA_ENOTFOUND, "this build of zila has no TLS ('%s' not read)", file);
}

int webtls_ctx_new(struct webtls_ctx **out, const char *dir, const char *cert, const char *key, const char *const *names,
		   char fp[ZILA_WEBTLS_FP_LEN + 1], struct zila_error *err)
{
	(void)dir;
	(void)cert;
	(void)key;
	(void)names;
	*out = NULL;
	fp[0] = '\0';
	return zila_error_set(err, ZILA_EINVAL,
			      "this build of zila (Windows) serves the web interface without TLS, so on loopback only "
			      "or with --web-plain-lan; HQ serves it over TLS from Debian");
}

void webtls_ctx_free(struct webtls_ctx *c)
{
	(void)c;
}

struct webtls *webtls_new(struct webtls_ctx *c)
{
	(void)c;
	return NULL;
}

void webtls_free(struct webtls *t)
{
	(void)t;
}

int webtls_feed(struct webtls *t, const void *in, size_t n, struct zila_buf *plain, struct zila_buf *wire)
{
	(void)t;
	(void)in;
	(void)n;
	(void)plain;
	(void)wire;
	return -1;
}

int webtls_write(struct webtls *t, const void *p, size_t n, struct zila_buf *wire)
{
	(void)t;
	(void)p;
	(void)n;
	(void)wire;
	return -1;
}
