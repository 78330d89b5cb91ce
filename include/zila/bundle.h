/* USB bundles: the sync session's messages as one run of bytes, for replicas that meet no
 * network. One code path with the live session (proto/PROTOCOL.md, "Bundles"). Pure: the
 * bytes go out through a sink and come in as memory; files are the caller's (zila/os.h). */
#ifndef ZILA_BUNDLE_H
#define ZILA_BUNDLE_H

#include "zila/err.h"
#include "zila/store.h"
#include "zila/trust.h"

#define ZILA_BUNDLE_VERSION 3
#define ZILA_BUNDLE_MIN (8 + 1 + 4 + 32) /* the bytes of an empty bundle */

/* Takes the next len bytes of a bundle (borrowed for the call); non-zero stops the writing
 * with that code. zila_os_atomic_write() and zila_buf_sink() have this shape. */
typedef int (*zila_bundle_sink_fn)(void *ctx, const uint8_t *p, size_t len);

/* Writes a bundle with every trust record and the entries `have` lacks (all when NULL)
 * within the read filter, through sink, from one read snapshot. Seals local changes first.
 * *nentries (may be NULL) gets the number of entries written. On failure the sink has had
 * part of a bundle: the caller discards it (zila_os_atomic_abort). */
int zila_bundle_write(struct zila_store *s, const struct zila_vector *have, zila_part_filter_fn filter,
		      void *filter_ctx, zila_bundle_sink_fn sink, void *sink_ctx, size_t *nentries,
		      struct zila_error *err) ZILA_MUST_CHECK;

/* Fully verifies the bundle in p (framing, checksum, every message's limits, every entry's
 * signature) before applying anything, then applies it as a session would: trust records
 * (checked with trust; NULL: none are kept), then the entries in acknowledged-size chunks,
 * each chunk one transaction. A truncated or altered bundle applies nothing. name (the
 * file's path) is what err's messages call the bundle. */
int zila_bundle_read(struct zila_store *s, struct zila_trust_ctx *trust, const uint8_t *p, size_t len,
		     const char *name, struct zila_apply_stats *st, struct zila_error *err) ZILA_MUST_CHECK;

#endif
