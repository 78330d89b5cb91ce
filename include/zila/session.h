/* The sync session between two replicas, sans I/O: the caller feeds in each message the
 * channel decrypted and sends (encrypts) each message the session emits. Digests, then feed
 * heads where they differ, then both sides stream the entries the other lacks in causal order,
 * in acknowledged chunks with a bounded window. Wire contract: proto/PROTOCOL.md. */
#ifndef ZILA_SESSION_H
#define ZILA_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "zila/buf.h"
#include "zila/err.h"
#include "zila/store.h"
#include "zila/trust.h"

#define ZILA_SYNC_PORT 7400             /* default TCP port of the daemon */
#define ZILA_SESSION_VERSION 3 /* 3: checkpoints; 2: packed chunks, version 2 entries; 1 is refused */
#define ZILA_SESSION_VERSION_MIN 2 /* the oldest protocol spoken (no checkpoints to it) */
#define ZILA_SESSION_CHUNK (256 * 1024) /* entry bytes per chunk, default */
#define ZILA_SESSION_WINDOW 16          /* chunks we take unacknowledged (one transaction), default */
#define ZILA_SESSION_WINDOW_MAX 64
#define ZILA_SESSION_MSG_MAX (1024 * 1024 - 64) /* an encoded message, hard limit */
#define ZILA_SESSION_PARTS_MAX 4096     /* partitions in a Hello */
#define ZILA_SESSION_HEADS_MAX 100000   /* feed heads in a Heads message */

struct zila_session;

/* Emits one encoded message (at most ZILA_SESSION_MSG_MAX bytes, borrowed for the call) to be
 * sent to the peer in order; a non-zero return fails the session with that code. */
typedef int (*zila_session_send_fn)(void *ctx, const uint8_t *p, size_t len);

struct zila_session_config {
	struct zila_store *store; /* borrowed; the caller installs the trust hooks (admission) */
	struct zila_trust_ctx *trust; /* borrowed, for trust records; NULL: none exchanged */
	/* The peer's read scope: partitions we may send (and digest). NULL: every partition. */
	zila_part_filter_fn peer_may_read;
	void *peer_read_ctx;
	zila_session_send_fn send; /* required */
	void *send_ctx;
	size_t chunk_bytes; /* 0: ZILA_SESSION_CHUNK */
	unsigned window;    /* chunks we take before applying them in one transaction and
			     * acknowledging; advertised in Hello. 0: ZILA_SESSION_WINDOW */
	uint64_t now_ms;    /* our wall clock, sent in Hello (0: the store's clock) */
	uint64_t hq_now_ms; /* HQ's clock as we estimate it now (0: the store's reference clock) */
	bool is_hq;
	/* The peer is at the other end now (network, not a bundle): its Hello tells the time. */
	bool live;
	bool peer_is_hq; /* the peer's certificate, checked by the caller, is an HQ one */
	/* The peer's device key (borrowed for the session's life; NULL: not known). At HQ a
	 * completed session notes the checkpoints it holds (zila_store_ack_note). */
	const uint8_t *peer_device;
	/* Feeds the peer refused before (from its Acks), not offered to it again from seq on
	 * while its trust digest is still peer_trust: a change in its certificates or
	 * revocations may change its verdict, and then they are offered again. Borrowed for the
	 * session's life. */
	const struct zila_session_skip *skip;
	size_t nskip;
	/* The caller applies each received window (zila_session_pending) instead of the session
	 * applying it inline on store, in zila_session_receive: so that a daemon can apply it
	 * on a worker thread with a connection of its own while its loop goes on. */
	bool caller_applies;
	/* Chunks go out only when the caller asks (zila_session_send_more), each of the size it
	 * gives: a daemon sends about a second of its link's worth at a time, so a slow link
	 * carries small chunks that are applied and kept as they arrive. */
	bool paced;
	/* Neither take nor send keys by reference (PROTOCOL.md, "Packed chunks"): after a
	 * session with this peer failed on one (ZILA_EREF), the next sends keys whole. */
	bool no_refs;
	/* Live: offer the blob phase (attachments' bytes after Done, src/sync/blobx.c); it
	 * runs when the peer's Hello offers it too (zila_session_peer_blobs). */
	bool blobs;
	/* With blobs: offer and take entries after DONE, in the blob phase (PROTOCOL.md, "Rows
	 * in the blob phase"): zila_session_late_rows. */
	bool late_rows;
};

struct zila_session_skip {
	uint8_t origin[32];
	char part[ZILA_PART_MAX + 1];
	uint64_t seq;
	uint8_t peer_trust[16];
};

enum zila_session_state {
	ZILA_SESSION_NEW,       /* zila_session_start() not called yet */
	ZILA_SESSION_HELLO,     /* our Hello sent, waiting for the peer's */
	ZILA_SESSION_EXCHANGE,  /* trust records, heads and entries flowing */
	ZILA_SESSION_DONE,      /* both sides sent and applied everything: close the channel */
	ZILA_SESSION_FAILED,
};

struct zila_session_stats {
	uint64_t msgs_sent, msgs_received;
	uint64_t bytes_sent, bytes_received; /* encoded message bytes */
	uint64_t entries_sent, entries_received, entries_applied, entries_rejected;
	uint64_t entries_duplicate, entries_held;
	uint64_t conflicts, parked; /* overwritten values recorded, rows parked, while applying */
	uint64_t trust_sent, trust_received;
	uint64_t to_send;     /* entries the peer lacks, known once its heads arrived */
	bool to_send_known;   /* its heads arrived (or the sides are in step) */
	uint64_t parts_differ;
	bool in_step;         /* digests and trust were equal: nothing exchanged */
	bool peer_is_hq;
	uint64_t peer_now_ms; /* the peer's clock in its Hello */
	uint64_t peer_hq_now_ms;
	int64_t clock_offset_ms; /* peer's clock minus HQ's time as we knew it, at its Hello */
	uint64_t peer_done_entries; /* what the peer's Done announced */
	uint64_t to_receive;  /* entries the peer will send: said in its first chunk, or its Done; 0 until then */
	/* Entries the peer did not take, as its Acks said: the first of each feed (ours and
	 * relayed ones), with its reason. */
	struct zila_refusal refused[ZILA_APPLY_REFUSALS];
	size_t nrefused;
	uint64_t refused_more;  /* feeds refused beyond those listed */
	bool ref_failed;        /* a key sent by reference was not found (either side): the
				 * session failed; the next with this peer sets no_refs */
	int peer_error;         /* the code of the Error the peer ended the session with, 0: none
				 * (ZILA_EBUSY: another program held the peer's replica's write lock) */
	uint64_t feeds_skipped; /* feeds not offered: the peer refused them before (cfg.skip) */
	uint64_t forks;         /* feeds the peer holds to our head with other entries (PROTOCOL.md, "Forks") */
	/* Our own entries, in partitions the peer reads, that it holds once the session is DONE
	 * (what it had, and what we sent that it took), and the number it does not. */
	uint64_t own_at_peer, own_not_at_peer;
	/* Before DONE, own_at_peer counts what the peer held and what it acknowledged so far:
	 * an entry counts as delivered once its chunk is acknowledged (applied and committed). */
	uint64_t entries_acked;   /* entries of ours and relayed ones the peer acknowledged */
	uint64_t peer_read_bytes; /* the peer's last Progress: bytes it has read */
	/* Checkpoints of districts' states (protocol 3): sent whole, merged here, refused here;
	 * and their bytes each way. */
	uint64_t ckpts_sent, ckpts_applied, ckpts_refused;
	uint64_t ckpt_bytes_sent, ckpt_bytes_received;
	/* Entries after DONE, in the blob phase (zila_session_late_rows): ours sent, the
	 * peer's received. */
	uint64_t late_sent, late_received;
	uint8_t peer_trust[16]; /* the trust digest in the peer's Hello */
	bool has_peer_trust;
};

/* Creates a session (not started). *out is owned by the caller: zila_session_free(). */
int zila_session_new(struct zila_session **out, const struct zila_session_config *cfg,
		     struct zila_error *err) ZILA_MUST_CHECK;
void zila_session_free(struct zila_session *sess);

/* Emits our Hello. Both sides call it as soon as the channel is open. */
int zila_session_start(struct zila_session *sess, struct zila_error *err) ZILA_MUST_CHECK;
/* Handles one message from the peer (applying a window of entries when it is full, or leaving
 * it to the caller with cfg.caller_applies; answering, sending more chunks as the window
 * allows). Any error fails the session for good; err says why, for the log. A peer's
 * Error message fails it with ZILA_EPEER. */
int zila_session_receive(struct zila_session *sess, const uint8_t *p, size_t len,
			 struct zila_error *err) ZILA_MUST_CHECK;
/* --- the apply seam: a received window, applied by the caller ------------------------- */

/* True when a window of received entries waits to be applied: after zila_session_receive
 * when cfg.caller_applies is set. *entries (borrowed until zila_session_applied or free) and
 * *nentries are what to pass to zila_store_apply, on any connection to this replica. Until
 * the caller reports the result, the session takes no message (zila_session_receive fails
 * with ZILA_EINVAL). */
bool zila_session_pending(const struct zila_session *sess, const struct zila_view **entries, size_t *nentries);
/* Reports the pending window's apply: result is zila_store_apply's return, st its stats,
 * err its message. Acknowledges the window (with what was refused) and goes on; a failed
 * apply fails the session and tells the peer why. ZILA_EINVAL when no window waits. */
int zila_session_applied(struct zila_session *sess, int result, const struct zila_apply_stats *st,
			 struct zila_error *err) ZILA_MUST_CHECK;
/* Applies the pending window inline on cfg.store and reports it (does nothing when none
 * waits): what the session does itself without cfg.caller_applies. */
int zila_session_apply(struct zila_session *sess, struct zila_error *err) ZILA_MUST_CHECK;

/* --- live links: progress in small steps ------------------------------------------- */

/* Tells the peer we have read bytes_read bytes so far (a Progress message), if its Hello
 * offered to take them; else does nothing. The caller sends one about once a second while
 * reading and sending nothing else, so a slow link is not taken for a dead one. */
int zila_session_progress(struct zila_session *sess, uint64_t bytes_read, struct zila_error *err) ZILA_MUST_CHECK;
/* True when both Hellos offered the blob phase: after DONE the caller runs a zila_blobx on
 * the same channel (and hands it the blob messages that arrive before: zila_blobx_is_blob). */
bool zila_session_peer_blobs(const struct zila_session *sess);
/* True when the peer sends Progress messages: a silent peer is then a stopped one. */
bool zila_session_peer_progress(const struct zila_session *sess);
/* Both Hellos offered entries in the blob phase (cfg.late_rows; Hello flag bit 4). */
bool zila_session_peer_late(const struct zila_session *sess);
/* After DONE, with zila_session_peer_late: our own entries the peer lacks (sealed since the
 * session's outbox opened: the caller seals first) go out as more chunks of the session,
 * numbered on from its last, through zila_session_wants_to_send/send_more; the peer applies
 * and acknowledges each, and own_at_peer counts them once acknowledged. Entries of other
 * authors wait for the next session. *nentries: how many will go (0: none, or the peer does
 * not take them). Called again while some are on their way, it sends what was sealed since
 * after them. */
int zila_session_late_rows(struct zila_session *sess, uint64_t *nentries, struct zila_error *err) ZILA_MUST_CHECK;
/* After DONE: entries of ours from zila_session_late_rows not sent or not acknowledged yet. */
bool zila_session_late_unacked(const struct zila_session *sess);
/* Closes the window of received chunks now, before it is full, and acknowledges it once it
 * is applied (inline, or by the caller with cfg.caller_applies: zila_session_pending): a
 * slow link's rows are kept and shown as they arrive. Does nothing when no chunk waits. */
int zila_session_flush(struct zila_session *sess, struct zila_error *err) ZILA_MUST_CHECK;
/* With cfg.paced: true when a chunk (or Done) could go out now (the peer's window allows). */
bool zila_session_wants_to_send(const struct zila_session *sess);
/* With cfg.paced: sends one chunk of at most chunk_bytes of entries (0: cfg.chunk_bytes),
 * or Done at the end of the outbox, if the peer's window allows. */
int zila_session_send_more(struct zila_session *sess, size_t chunk_bytes, struct zila_error *err) ZILA_MUST_CHECK;

/* Emits an Error message (best effort) and fails the session. */
void zila_session_abort(struct zila_session *sess, int code, const char *reason);

/* The link ended before the session completed: applies, in one transaction, the whole
 * chunks received and not yet applied (each entry verified as always), so a cut loses at
 * most the chunk that was in flight; nothing is acknowledged. Does nothing unless entries
 * were flowing (a failed session keeps nothing more). *napplied: entries applied or held. */
int zila_session_salvage(struct zila_session *sess, uint64_t *napplied, struct zila_error *err) ZILA_MUST_CHECK;

enum zila_session_state zila_session_state(const struct zila_session *sess);
bool zila_session_done(const struct zila_session *sess);
const struct zila_session_stats *zila_session_stats(const struct zila_session *sess);
/* Bytes the session holds to pack and unpack chunks: zstd contexts, a chunk's wire form and
 * packed form, the entry coders' buffers (not the received entries waiting in a window). */
size_t zila_session_pack_bytes(const struct zila_session *sess);

/* --- bundles: the same messages, in a file ---------------------------------------- */

/* Emits, through send, the messages a peer holding `have` (NULL: nothing) would receive:
 * Trust (every record), the Entries it lacks within the read filter, then Done. */
int zila_session_export(struct zila_store *s, const struct zila_vector *have, zila_part_filter_fn filter,
			void *filter_ctx, zila_session_send_fn send, void *send_ctx, uint64_t *nentries,
			struct zila_error *err) ZILA_MUST_CHECK;

/* Receives exported messages one by one (as zila_session_receive does after the Hellos):
 * created with zila_session_new (cfg.send may ignore what it is given: Acks), then
 * zila_session_import_begin() instead of start. */
int zila_session_import_begin(struct zila_session *sess, struct zila_error *err) ZILA_MUST_CHECK;

/* --- messages, for tests and fuzzers ----------------------------------------------- */

/* Decodes and validates one message (limits, lengths, UTF-8 of names); 0 when it is well
 * formed. Used by the session on every message it receives. */
int zila_session_check_message(const uint8_t *p, size_t len, struct zila_error *err) ZILA_MUST_CHECK;
/* The same, and every entry it carries has its author's valid signature (ZILA_ESIG) and
 * layout: what a bundle reader checks before applying anything. Decodes the message once. */
int zila_session_verify_message(const uint8_t *p, size_t len, struct zila_error *err) ZILA_MUST_CHECK;

#endif
