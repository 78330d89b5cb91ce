/* Bounded byte buffers and bounds-checked readers. */
#include "zila/buf.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

void zila_buf_init(struct zila_buf *b, size_t max)
{
	b->p = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

void zila_buf_release(struct zila_buf *b)
{
	if (b->p != NULL) {
		sodium_memzero(b->p, b->cap);
		free(b->p);
	}
	b->p = NULL;
	b->len = 0;
	b->cap = 0;
}

void zila_buf_reset(struct zila_buf *b)
{
	b->len = 0;
}

int zila_buf_reserve(struct zila_buf *b, size_t n)
{
	if (n > b->max || b->len > b->max - n)
		return ZILA_ETOOBIG;
	size_t need = b->len + n;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	if (cap > b->max)
		cap = b->max;
	uint8_t *p = realloc(b->p, cap);
	if (p == NULL)
		return ZILA_ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

int zila_buf_put(struct zila_buf *b, const void *p, size_t n)
{
	int r = zila_buf_reserve(b, n);
	if (r != 0)
		return r;
	if (n > 0)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

int zila_buf_put_u8(struct zila_buf *b, uint8_t v)
{
	return zila_buf_put(b, &v, 1);
}

int zila_buf_put_u16be(struct zila_buf *b, uint16_t v)
{
	uint8_t t[2] = { (uint8_t)(v >> 8), (uint8_t)v };
	return zila_buf_put(b, t, 2);
}

int zila_buf_put_u32be(struct zila_buf *b, uint32_t v)
{
	uint8_t t[4];
	for (int i = 0; i < 4; i++)
		t[i] = (uint8_t)(v >> (24 - 8 * i));
	return zila_buf_put(b, t, 4);
}

int zila_buf_put_u64be(struct zila_buf *b, uint64_t v)
{
	uint8_t t[8];
	for (int i = 0; i < 8; i++)
		t[i] = (uint8_t)(v >> (56 - 8 * i));
	return zila_buf_put(b, t, 8);
}

int zila_buf_put_varint(struct zila_buf *b, uint64_t v)
{
	uint8_t t[ZILA_VARINT_MAX];
	size_t n = 0;
	do {
		uint8_t c = v & 0x7f;
		v >>= 7;
		t[n++] = (uint8_t)(c | (v ? 0x80 : 0));
	} while (v);
	return zila_buf_put(b, t, n);
}

int zila_buf_put_lenbytes(struct zila_buf *b, const void *p, size_t n)
{
	int r = zila_buf_put_varint(b, n);
	if (r == 0)
		r = zila_buf_put(b, p, n);
	return r;
}

int zila_buf_sink(void *ctx, const uint8_t *p, size_t len)
{
	return zila_buf_put(ctx, p, len);
}

struct zila_view zila_buf_view(const struct zila_buf *b)
{
	struct zila_view v = { b->p, b->len };
	return v;
}

struct zila_view zila_view_make(const void *p, size_t len)
{
	struct zila_view v = { p, len };
	return v;
}

int zila_view_get_bytes(struct zila_view *v, size_t n, const uint8_t **out)
{
	*out = NULL;
	if (v->len < n)
		return ZILA_ESHORT;
	*out = v->p;
	v->p += n;
	v->len -= n;
	return 0;
}

int zila_view_get_copy(struct zila_view *v, void *dst, size_t n)
{
	const uint8_t *p;
	int r = zila_view_get_bytes(v, n, &p);
	if (r == 0 && n > 0)
		memcpy(dst, p, n);
	return r;
}

int zila_view_get_u8(struct zila_view *v, uint8_t *out)
{
	*out = 0;
	return zila_view_get_copy(v, out, 1);
}

int zila_view_get_u16be(struct zila_view *v, uint16_t *out)
{
	const uint8_t *p;
	*out = 0;
	int r = zila_view_get_bytes(v, 2, &p);
	if (r == 0)
		*out = (uint16_t)((p[0] << 8) | p[1]);
	return r;
}

int zila_view_get_u32be(struct zila_view *v, uint32_t *out)
{
	const uint8_t *p;
	*out = 0;
	int r = zila_view_get_bytes(v, 4, &p);
	if (r == 0)
		*out = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
	return r;
}

int zila_view_get_u64be(struct zila_view *v, uint64_t *out)
{
	const uint8_t *p;
	*out = 0;
	int r = zila_view_get_bytes(v, 8, &p);
	if (r == 0)
		for (int i = 0; i < 8; i++)
			*out = (*out << 8) | p[i];
	return r;
}

int zila_view_get_varint(struct zila_view *v, uint64_t *out)
{
	uint64_t x = 0;
	*out = 0;
	for (size_t i = 0; i < ZILA_VARINT_MAX; i++) {
		if (i >= v->len)
			return ZILA_ESHORT;
		uint8_t c = v->p[i];
		if (i == 9 && c > 1)
			return ZILA_EFORMAT;
		x |= (uint64_t)(c & 0x7f) << (7 * i);
		if (!(c & 0x80)) {
			if (c == 0 && i > 0)
				return ZILA_EFORMAT; /* overlong: not canonical */
			v->p += i + 1;
			v->len -= i + 1;
			*out = x;
			return 0;
		}
	}
	return ZILA_EFORMAT;
}

int zila_view_get_lenbytes(struct zila_view *v, size_t max, struct zila_view *out)
{
	uint64_t n;
	const uint8_t *p;
	out->p = NULL;
	out->len = 0;
	int r = zila_view_get_varint(v, &n);
	if (r != 0)
		return r;
	if (n > max)
		return ZILA_ETOOBIG;
	r = zila_view_get_bytes(v, (size_t)n, &p);
	if (r == 0) {
		out->p = p;
		out->len = (size_t)n;
	}
	return r;
}

void zila_hex_encode(char *out, const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int zila_hex_decode(uint8_t *out, size_t n, const char *hex, size_t hex_len)
{
	if (hex_len != 2 * n)
		return ZILA_EFORMAT;
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return ZILA_EFORMAT;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

bool zila_utf8_valid(const uint8_t *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint8_t c = p[i];
		size_t k;
		uint32_t cp;
		if (c < 0x80) {
			if (c == 0)
				return false;
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			k = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			k = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			k = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i <= k)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((p[i + j] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + j] & 0x3f);
		}
		if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}
