/* TLS for the web interface with OpenSSL's libssl: each connection's SSL object reads from
 * and writes to memory BIOs that web.c fills from and drains to its libuv socket, so the
 * library never touches the socket and never blocks the loop. A self-signed certificate
 * (ECDSA P-256, 10 years) is made on first use when none is given. */
#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "webtls.h"
#include "zila/os.h"

struct webtls_ctx {
	SSL_CTX *ctx;
};

struct webtls {
	SSL *ssl;
	BIO *in, *out; /* the network side: in is filled with what was read, out drained to the socket */
};

bool zila_webtls_built(void)
{
	return true;
}

static const char *ossl_why(void)
{
	static char buf[256];
	unsigned long e = ERR_get_error();
	if (e == 0)
		return "unknown error";
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return buf;
}

/* The PEM text of a BIO into a new file of mode (an existing one is replaced). */
static int bio_to_file(BIO *b, const char *path, unsigned mode, struct zila_error *err)
{
	char *p = NULL;
	long n = BIO_get_mem_data(b, &p);
	if (n <= 0)
		return zila_error_set(err, ZILA_EINTERNAL, "cannot write '%s'", path);
	return zila_os_write_atomic(path, p, (size_t)n, mode, err);
}

static int make_self_signed(const char *cert_path, const char *key_path, const char *const *names,
			    struct zila_error *err)
{
	int r = ZILA_EINTERNAL;
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	BIO *kb = BIO_new(BIO_s_mem()), *cb = BIO_new(BIO_s_mem());
	char san[2048] = "DNS:localhost,IP:127.0.0.1,IP:::1";
	char host[256];
	if (pk == NULL || x == NULL || kb == NULL || cb == NULL) {
		r = zila_error_set(err, ZILA_ENOMEM, "cannot make a TLS key: %s", ossl_why());
		goto out;
	}
	for (size_t i = 0; names != NULL && names[i] != NULL; i++) {
		unsigned char tmp[16];
		bool ip = inet_pton(AF_INET, names[i], tmp) == 1 || inet_pton(AF_INET6, names[i], tmp) == 1;
		if (strcmp(names[i], "0.0.0.0") == 0 || strcmp(names[i], "::") == 0 || strcmp(names[i], "localhost") == 0 ||
		    strcmp(names[i], "127.0.0.1") == 0 || strcmp(names[i], "::1") == 0)
			continue;
		size_t len = strlen(san);
		snprintf(san + len, sizeof(san) - len, ",%s:%s", ip ? "IP" : "DNS", names[i]);
	}
	zila_os_hostname(host, sizeof(host));
	ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), (uint64_t)randombytes_random() << 16 | 1);
	X509_set_version(x, 2);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 24 * 3600);
	X509_set_pubkey(x, pk);
	X509_NAME *nm = X509_get_subject_name(x);
	char cn[300];
	snprintf(cn, sizeof(cn), "zila web interface on %s", host[0] ? host : "this computer");
	X509_NAME_add_entry_by_txt(nm, "O", MBSTRING_UTF8, (const unsigned char *)"zila", -1, -1, 0);
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, nm);
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
	X509_EXTENSION *bc = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
	if (ext == NULL || bc == NULL || !X509_add_ext(x, ext, -1) || !X509_add_ext(x, bc, -1) ||
	    !X509_sign(x, pk, EVP_sha256())) {
		X509_EXTENSION_free(ext);
		X509_EXTENSION_free(bc);
		r = zila_error_set(err, ZILA_EINTERNAL, "cannot make the TLS certificate: %s", ossl_why());
		goto out;
	}
	X509_EXTENSION_free(ext);
	X509_EXTENSION_free(bc);
	if (!PEM_write_bio_PrivateKey(kb, pk, NULL, NULL, 0, NULL, NULL) || !PEM_write_bio_X509(cb, x)) {
		r = zila_error_set(err, ZILA_EINTERNAL, "cannot write the TLS certificate: %s", ossl_why());
		goto out;
	}
	if ((r = bio_to_file(kb, key_path, 0600, err)) != 0 || (r = bio_to_file(cb, cert_path, 0644, err)) != 0)
		goto out;
	r = 0;
out:
	BIO_free(kb);
	BIO_free(cb);
	X509_free(x);
	EVP_PKEY_free(pk);
	return r;
}

static int fingerprint_of(X509 *x, char fp[ZILA_WEBTLS_FP_LEN + 1], char *pin, size_t pin_len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	if (!X509_digest(x, EVP_sha256(), md, &n) || n != 32)
		return ZILA_EINTERNAL;
	for (unsigned i = 0; i < 32; i++)
		snprintf(fp + i * 3, 4, "%02X%s", md[i], i + 1 < 32 ? ":" : "");
	if (pin != NULL && pin_len > 0) {
		unsigned char *der = NULL;
		int len = i2d_PUBKEY(X509_get0_pubkey(x), &der);
		if (len <= 0)
			return ZILA_EINTERNAL;
		crypto_hash_sha256(md, der, (unsigned long long)len);
		OPENSSL_free(der);
		char b64[64];
		sodium_bin2base64(b64, sizeof(b64), md, 32, sodium_base64_VARIANT_ORIGINAL);
		snprintf(pin, pin_len, "sha256//%s", b64);
	}
	return 0;
}

int zila_webtls_fingerprint(const char *file, char fp[ZILA_WEBTLS_FP_LEN + 1], char *pin, size_t pin_len,
			    struct zila_error *err)
{
	fp[0] = '\0';
	if (pin != NULL && pin_len > 0)
		pin[0] = '\0';
	if (!zila_os_exists(file))
		return zila_error_set(err, ZILA_ENOTFOUND, "no certificate '%s'", file);
	BIO *b = BIO_new_file(file, "r");
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	int r = x == NULL ? zila_error_set(err, ZILA_EFORMAT, "'%s' is not a PEM certificate: %s", file, ossl_why())
			  : fingerprint_of(x, fp, pin, pin_len);
	X509_free(x);
	BIO_free(b);
	return r;
}

int webtls_ctx_new(struct webtls_ctx **out, const char *dir, const char *cert, const char *key, const char *const *names,
		   char fp[ZILA_WEBTLS_FP_LEN + 1], struct zila_error *err)
{
	char cpath[4200], kpath[4200];
	int r = ZILA_EINTERNAL;
	*out = NULL;
	fp[0] = '\0';
	if ((cert == NULL) != (key == NULL))
		return zila_error_set(err, ZILA_EINVAL, "a certificate needs its key: give both --web-cert and --web-key");
	if (cert != NULL) {
		snprintf(cpath, sizeof(cpath), "%s", cert);
		snprintf(kpath, sizeof(kpath), "%s", key);
	} else {
		snprintf(cpath, sizeof(cpath), "%s/%s", dir, ZILA_WEBTLS_CERT);
		snprintf(kpath, sizeof(kpath), "%s/%s", dir, ZILA_WEBTLS_KEY);
		if (!zila_os_exists(cpath) || !zila_os_exists(kpath)) {
			if ((r = make_self_signed(cpath, kpath, names, err)) != 0)
				return r;
		}
	}
	struct webtls_ctx *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return zila_error_set(err, ZILA_ENOMEM, "out of memory");
	c->ctx = SSL_CTX_new(TLS_server_method());
	if (c->ctx == NULL) {
		r = zila_error_set(err, ZILA_ENOMEM, "cannot start TLS: %s", ossl_why());
		goto fail;
	}
	SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(c->ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(c->ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_use_certificate_chain_file(c->ctx, cpath) != 1) {
		r = zila_error_set(err, ZILA_EFORMAT, "cannot use the certificate '%s': %s", cpath, ossl_why());
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(c->ctx, kpath, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(c->ctx) != 1) {
		r = zila_error_set(err, ZILA_EFORMAT, "cannot use the key '%s' (is it the certificate's?): %s", kpath,
				   ossl_why());
		goto fail;
	}
	if (fingerprint_of(SSL_CTX_get0_certificate(c->ctx), fp, NULL, 0) != 0) {
		r = zila_error_set(err, ZILA_EINTERNAL, "cannot read the certificate's fingerprint");
		goto fail;
	}
	*out = c;
	return 0;
fail:
	webtls_ctx_free(c);
	return r;
}

void webtls_ctx_free(struct webtls_ctx *c)
{
	if (c == NULL)
		return;
	SSL_CTX_free(c->ctx);
	free(c);
}

struct webtls *webtls_new(struct webtls_ctx *c)
{
	struct webtls *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->ssl = SSL_new(c->ctx);
	t->in = BIO_new(BIO_s_mem());
	t->out = BIO_new(BIO_s_mem());
	if (t->ssl == NULL || t->in == NULL || t->out == NULL) {
		BIO_free(t->in);
		BIO_free(t->out);
		SSL_free(t->ssl);
		free(t);
		return NULL;
	}
	BIO_set_mem_eof_return(t->in, -1); /* an empty input is "more to come", not the end */
	SSL_set_bio(t->ssl, t->in, t->out);  /* the SSL owns both now */
	SSL_set_accept_state(t->ssl);
	return t;
}

void webtls_free(struct webtls *t)
{
	if (t == NULL)
		return;
	SSL_free(t->ssl);
	free(t);
}

static int drain(struct webtls *t, struct zila_buf *wire)
{
	char buf[16384];
	int n;
	while ((n = BIO_read(t->out, buf, sizeof(buf))) > 0)
		if (zila_buf_put(wire, buf, (size_t)n) != 0)
			return -1;
	return 0;
}

int webtls_feed(struct webtls *t, const void *in, size_t n, struct zila_buf *plain, struct zila_buf *wire)
{
	if (n > 0 && BIO_write(t->in, in, (int)n) != (int)n)
		return -1;
	char buf[16384];
	for (;;) {
		int k = SSL_read(t->ssl, buf, sizeof(buf));
		if (k > 0) {
			if (zila_buf_put(plain, buf, (size_t)k) != 0)
				return -1;
			continue;
		}
		int e = SSL_get_error(t->ssl, k);
		ERR_clear_error();
		if (drain(t, wire) != 0)
			return -1;
		if (e == SSL_ERROR_WANT_READ)
			return 0;
		return -1; /* a closed or broken connection: the alert, if any, is in wire */
	}
}

int webtls_write(struct webtls *t, const void *p, size_t n, struct zila_buf *wire)
{
	const char *c = p;
	while (n > 0) {
		int chunk = n > 16384 ? 16384 : (int)n;
		int k = SSL_write(t->ssl, c, chunk);
		if (k <= 0) {
			ERR_clear_error();
			return -1;
		}
		c += k;
		n -= (size_t)k;
		if (drain(t, wire) != 0)
			return -1;
	}
	return drain(t, wire);
}
