/* Bounded byte buffers and borrowed views: the only way zila code reads or writes wire
 * bytes. Every get checks the remaining length first and fails with ZILA_ESHORT. */
#ifndef ZILA_BUF_H
#define ZILA_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zila/err.h"

/* A borrowed, read-only run of bytes; the owner of p says how long it stays valid.
 * The get functions consume from the front. */
struct zila_view {
	const uint8_t *p;
	size_t len;
};

/* A growable buffer that never grows past max bytes (ZILA_ETOOBIG instead). */
struct zila_buf {
	uint8_t *p;
	size_t len;
	size_t cap;
	size_t max;
};

#define ZILA_VARINT_MAX 10

/* Prepares an empty buffer that may grow to max bytes; allocates nothing yet. */
void zila_buf_init(struct zila_buf *b, size_t max);
/* Frees the storage (wiping it first) and leaves b empty; safe to call twice. */
void zila_buf_release(struct zila_buf *b);
/* Empties the buffer, keeping its storage. */
void zila_buf_reset(struct zila_buf *b);
/* Makes room for n more bytes. */
int zila_buf_reserve(struct zila_buf *b, size_t n) ZILA_MUST_CHECK;
int zila_buf_put(struct zila_buf *b, const void *p, size_t n) ZILA_MUST_CHECK;
int zila_buf_put_u8(struct zila_buf *b, uint8_t v) ZILA_MUST_CHECK;
int zila_buf_put_u16be(struct zila_buf *b, uint16_t v) ZILA_MUST_CHECK;
int zila_buf_put_u32be(struct zila_buf *b, uint32_t v) ZILA_MUST_CHECK;
int zila_buf_put_u64be(struct zila_buf *b, uint64_t v) ZILA_MUST_CHECK;
/* LEB128 unsigned varint. */
int zila_buf_put_varint(struct zila_buf *b, uint64_t v) ZILA_MUST_CHECK;
/* A varint length followed by the bytes. */
int zila_buf_put_lenbytes(struct zila_buf *b, const void *p, size_t n) ZILA_MUST_CHECK;
/* Appends len bytes to the zila_buf ctx: a sink or send callback (zila_bundle_sink_fn) that
 * collects bytes in memory. */
int zila_buf_sink(void *ctx, const uint8_t *p, size_t len) ZILA_MUST_CHECK;
/* A view of the buffer's current contents, valid until the buffer next changes. */
struct zila_view zila_buf_view(const struct zila_buf *b);

struct zila_view zila_view_make(const void *p, size_t len);
int zila_view_get_u8(struct zila_view *v, uint8_t *out) ZILA_MUST_CHECK;
int zila_view_get_u16be(struct zila_view *v, uint16_t *out) ZILA_MUST_CHECK;
int zila_view_get_u32be(struct zila_view *v, uint32_t *out) ZILA_MUST_CHECK;
int zila_view_get_u64be(struct zila_view *v, uint64_t *out) ZILA_MUST_CHECK;
/* Rejects overlong and over-64-bit encodings with ZILA_EFORMAT. */
int zila_view_get_varint(struct zila_view *v, uint64_t *out) ZILA_MUST_CHECK;
/* Takes n bytes; *out points into v's storage. */
int zila_view_get_bytes(struct zila_view *v, size_t n, const uint8_t **out) ZILA_MUST_CHECK;
/* A varint length (at most max, else ZILA_ETOOBIG) and that many bytes, as a sub-view. */
int zila_view_get_lenbytes(struct zila_view *v, size_t max, struct zila_view *out) ZILA_MUST_CHECK;
/* Copies n bytes out. */
int zila_view_get_copy(struct zila_view *v, void *dst, size_t n) ZILA_MUST_CHECK;

/* True when p[0..n) is well-formed UTF-8 (RFC 3629: shortest forms, no surrogates, nothing
 * past U+10FFFF) without a NUL byte. The one check every decoder and importer uses. */
bool zila_utf8_valid(const uint8_t *p, size_t n);

/* Lowercase hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void zila_hex_encode(char *out, const uint8_t *p, size_t n);
/* Parses exactly 2n hex digits; returns 0 or ZILA_EFORMAT. */
int zila_hex_decode(uint8_t *out, size_t n, const char *hex, size_t hex_len) ZILA_MUST_CHECK;

#endif
