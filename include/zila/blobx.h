/* The blob phase of a live sync, sans I/O (proto/ATTACH.md): after the rows (both sides'
 * Done), each side asks for the attachments' blobs it lacks and wants by the link's policy,
 * and serves the peer's asks within the peer's read scope, in verified 64 KiB chunks that
 * resume after a cut. Bytes in, bytes out, store calls; the caller paces the sending. */
#ifndef ZILA_BLOBX_H
#define ZILA_BLOBX_H

#include <stdbool.h>
#include <stdint.h>

#include "zila/blob.h"
#include "zila/session.h"

#define ZILA_BLOBX_ASKS_MAX 4096 /* asks in one BlobWant */

struct zila_blobx;

struct zila_blobx_config {
	struct zila_store *store; /* borrowed */
	/* The peer's read scope: it is served a blob only if a live attachments row in a
	 * partition it may read refers to it (NULL: every partition). */
	zila_part_filter_fn peer_may_read;
	void *peer_read_ctx;
	/* The peer's write scope (NULL: every partition): what its manifests may show a blob held
	 * in, and whom we ask to show a blob we hold already (ATTACH.md, "Possession"). */
	zila_part_filter_fn peer_may_write;
	void *peer_write_ctx;
	const char *peer_name; /* for the log (borrowed for the exchange's life; NULL: "the peer") */
	zila_session_send_fn send; /* required */
	void *send_ctx;
	/* What we ask for: every blob we lack (a LAN, HQ), else only those asked for
	 * (zila attachment get) and those of at most fetch_below bytes (a slow uplink). */
	bool fetch_all;
	uint64_t fetch_below;
};

struct zila_blobx_stats {
	uint64_t asked, asked_bytes;        /* blobs we asked for, their sizes */
	uint64_t received, received_bytes; /* blobs completed here, chunk bytes taken */
	uint64_t chunks_bad;                /* chunks refused: not matching their hash */
	uint64_t refused_by_peer;           /* our asks the peer refused (not held, scope) */
	uint64_t served, served_bytes;      /* blobs and chunk bytes we sent */
	uint64_t refused_scope, refused_missing; /* asks we refused */
	uint64_t refused_unshown;           /* asks we refused: named by a row it may read, not shown held there */
	uint64_t shown, shown_bytes;        /* blobs the peer showed it holds (possession recorded), their bytes */
	uint64_t wanted_left;               /* blobs we lack and did not ask for (policy) */
	uint64_t pending_bytes;             /* of our asks, bytes still to come */
};

/* *out is the caller's: zila_blobx_free(). Messages may be received at once (the peer may
 * finish its rows first); nothing is sent before zila_blobx_start. */
int zila_blobx_new(struct zila_blobx **out, const struct zila_blobx_config *cfg, struct zila_error *err) ZILA_MUST_CHECK;
void zila_blobx_free(struct zila_blobx *bx);
/* Sets what we ask for (cfg.fetch_all, cfg.fetch_below) before zila_blobx_start: the
 * caller knows the link's rate only once the rows went. */
void zila_blobx_policy(struct zila_blobx *bx, bool fetch_all, uint64_t fetch_below);
/* After the rows (the session is DONE): asks for what we lack (BlobWant), or says BlobDone. */
int zila_blobx_start(struct zila_blobx *bx, struct zila_error *err) ZILA_MUST_CHECK;
/* True for a message of the blob phase (the caller hands it to zila_blobx_receive, not to
 * the session). Looks only at the message's first byte. */
bool zila_blobx_is_blob(const uint8_t *p, size_t len);
/* Takes one blob message: an ask is queued; a manifest or a chunk is verified and kept; a
 * chunk that does not match is refused (counted) and the blob asked for once more. A
 * malformed message, or one out of order, fails with ZILA_EFORMAT/ZILA_EPROTO; a full disk
 * with ZILA_EFULL. */
int zila_blobx_receive(struct zila_blobx *bx, const uint8_t *p, size_t len, struct zila_error *err) ZILA_MUST_CHECK;
/* True when started and an ask of the peer waits to be served. */
bool zila_blobx_wants_to_send(const struct zila_blobx *bx);
/* Sends about `bytes` of the peer's asks (at least one message): manifests, chunks, refusals. */
int zila_blobx_send_more(struct zila_blobx *bx, size_t bytes, struct zila_error *err) ZILA_MUST_CHECK;
/* Both sides want nothing more and every ask of the peer was served: close the channel. */
bool zila_blobx_done(const struct zila_blobx *bx);
/* We sent BlobDone and serve nothing now: the peer may be finished, and close, as soon as
 * what we sent reaches it (a message sent now may come after its close). */
bool zila_blobx_peer_may_finish(const struct zila_blobx *bx);
const struct zila_blobx_stats *zila_blobx_stats(const struct zila_blobx *bx);

#endif
