/* Vector files: the text `zila vector` prints on a receiving laptop, read by `zila bundle
 * create --for` on the sender (proto/ENTRY.md, "Vector file"). Pure: the caller reads the
 * file and judges the age; this parses and checks the signature line. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zila/bundle.h"

#define LINE_MAX_LEN 1023

void zila_vector_file_release(struct zila_vector_file *f)
{
	zila_vector_release(&f->v);
}

/* The signature over every byte before the last "# sig HEX" line, by the device named;
 * *has_sig: there is such a line, its HEX a signature. */
static bool signature_verifies(const uint8_t *p, size_t len, const uint8_t device[32], bool *has_sig)
{
	static const char tag[] = "\n# sig ";
	size_t at = SIZE_MAX;
	for (size_t i = 0; i + sizeof(tag) - 1 <= len; i++)
		if (memcmp(p + i, tag, sizeof(tag) - 1) == 0)
			at = i + 1;
	if (at == SIZE_MAX)
		return false;
	uint8_t sig[64];
	size_t hex_at = at + sizeof(tag) - 2, hex_len = 0;
	while (hex_at + hex_len < len && p[hex_at + hex_len] != '\n')
		hex_len++;
	if (zila_hex_decode(sig, 64, (const char *)p + hex_at, hex_len) != 0)
		return false;
	*has_sig = true;
	return crypto_sign_verify_detached(sig, p, at, device) == 0;
}

static int add_head(struct zila_vector *v, size_t *cap, const char *hex, const char *part, unsigned long long seq,
		    size_t lineno, struct zila_error *err)
{
	if (v->nheads == *cap) {
		size_t n = *cap ? *cap * 2 : 16;
		struct zila_feed_head *h = realloc(v->heads, n * sizeof(*h));
		if (h == NULL)
			return zila_error_set(err, ZILA_ENOMEM, "out of memory");
		v->heads = h;
		*cap = n;
	}
	struct zila_feed_head *h = &v->heads[v->nheads];
	memset(h, 0, sizeof(*h));
	if (zila_hex_decode(h->origin, 32, hex, strlen(hex)) != 0)
		return zila_error_set(err, ZILA_EFORMAT, "line %zu: '%s' is not a device key", lineno, hex);
	snprintf(h->part, sizeof(h->part), "%.64s", strcmp(part, "-") == 0 ? "" : part);
	h->seq = seq;
	v->nheads++;
	return 0;
}

/* One line (no newline, NUL-terminated). */
static int parse_line(struct zila_vector_file *f, size_t *cap, const char *line, size_t lineno, struct zila_error *err)
{
	char hex[80], part[128], devhex[80], certhex[2 * ZILA_CERT_LEN + 8];
	unsigned long long seq, made;
	if (sscanf(line, "# cert %561s", certhex) == 1) {
		if (zila_hex_decode(f->cert, ZILA_CERT_LEN, certhex, strlen(certhex)) != 0)
			return zila_error_set(err, ZILA_EFORMAT, "line %zu: the certificate is damaged", lineno);
		f->has_cert = true;
		return 0;
	}
	if (sscanf(line, "# made %llu", &made) == 1) {
		f->made = made;
		return 0;
	}
	if (sscanf(line, "# device %79s", devhex) == 1) {
		if (zila_hex_decode(f->device, 32, devhex, strlen(devhex)) != 0)
			return zila_error_set(err, ZILA_EFORMAT, "line %zu: '%s' is not a device key", lineno, devhex);
		f->has_device = true;
		return 0;
	}
	if (line[0] == '\0' || line[0] == '#')
		return 0;
	if (sscanf(line, "%79s %127s %llu", hex, part, &seq) != 3 || strlen(part) > ZILA_PART_MAX)
		return zila_error_set(err, ZILA_EFORMAT, "line %zu: expected 'DEVICE PARTITION SEQ'", lineno);
	return add_head(&f->v, cap, hex, part, seq, lineno, err);
}

int zila_vector_file_parse(struct zila_view text, struct zila_vector_file *out, struct zila_error *err)
{
	char line[LINE_MAX_LEN + 1];
	size_t cap = 0, lineno = 0;
	int r = 0;
	memset(out, 0, sizeof(*out));
	for (size_t at = 0; r == 0 && at < text.len;) {
		const uint8_t *nl = memchr(text.p + at, '\n', text.len - at);
		size_t n = nl != NULL ? (size_t)(nl - (text.p + at)) : text.len - at;
		lineno++;
		if (n > LINE_MAX_LEN) {
			r = zila_error_set(err, ZILA_EFORMAT, "line %zu is longer than %d characters", lineno,
					   LINE_MAX_LEN);
			break;
		}
		if (memchr(text.p + at, '\0', n) != NULL) {
			r = zila_error_set(err, ZILA_EFORMAT, "line %zu holds a NUL byte: this is not a vector file",
					   lineno);
			break;
		}
		memcpy(line, text.p + at, n);
		line[n] = '\0';
		if (n > 0 && line[n - 1] == '\r')
			line[n - 1] = '\0';
		r = parse_line(out, &cap, line, lineno, err);
		at += n + 1;
	}
	if (r == 0 && out->has_device)
		out->signed_ok = signature_verifies(text.p, text.len, out->device, &out->has_sig);
	if (r == 0) {
		/* sorted through the codec, so that lookups work */
		struct zila_buf b;
		struct zila_vector sorted;
		zila_buf_init(&b, 1u << 30);
		r = zila_vector_encode(&out->v, &b);
		r = r ? r : zila_vector_decode(zila_buf_view(&b), &sorted);
		zila_buf_release(&b);
		if (r != 0) {
			zila_error_set(err, r, "its feeds are not valid (%s)", zila_strerror(r));
		} else {
			zila_vector_release(&out->v);
			out->v = sorted;
		}
	}
	if (r != 0)
		zila_vector_file_release(out);
	return r;
}
