/* USB bundles: the sync session's messages written to a file, for replicas that meet no
 * network. One code path with the live session (proto/PROTOCOL.md, "Bundles"). */
#ifndef ZILA_BUNDLE_H
#define ZILA_BUNDLE_H

#include "zila/err.h"
#include "zila/store.h"
#include "zila/trust.h"

#define ZILA_BUNDLE_VERSION 2

/* Writes a bundle with every trust record and the entries `have` lacks (all when NULL)
 * within the read filter. Seals local changes first; written to PATH.tmp, synced, then
 * renamed into place. *nentries (may be NULL) gets the number of entries written. */
int zila_bundle_create(struct zila_store *s, const char *path, const struct zila_vector *have,
		       zila_part_filter_fn filter, void *filter_ctx, size_t *nentries,
		       struct zila_error *err) ZILA_MUST_CHECK;

/* Reads and fully verifies a bundle (framing, checksum, every message's limits, every entry's
 * signature) before applying anything, then applies it as a session would: trust records
 * (checked with trust; NULL: none are kept), then the entries in acknowledged-size chunks,
 * each chunk one transaction. A truncated or altered bundle applies nothing. */
int zila_bundle_apply(struct zila_store *s, struct zila_trust_ctx *trust, const char *path,
		      struct zila_apply_stats *st, struct zila_error *err) ZILA_MUST_CHECK;

#endif
