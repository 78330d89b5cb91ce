/* What the daemon's parts share: the environment daemon.c sets up (loop, replica, trust,
 * identity, settings) and the limits. Each part has its own header (conn.h, discovery.h,
 * control.h, peers.h, refused.h, join.h) and owns its state; daemon.c holds the parts and
 * wires them with callbacks, so calls go from daemon.c to the parts, never back. Only
 * src/net includes this file. */
#ifndef ZILA_NET_INT_H
#define ZILA_NET_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "zila/daemon.h"
#include "zila/trust.h"

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Deadlines (ms) per connection state. */
#define DIAL_TIMEOUT_MS 10000
#define HANDSHAKE_TIMEOUT_MS 10000
#define SESSION_IDLE_MS 60000 /* default: no byte read or written for this long (conn.c) */
#define JOIN_TIMEOUT_MS 20000
#define CLOSING_TIMEOUT_MS 5000
/* Buffered bytes per connection: reading stops above READ_PAUSE_BYTES queued for writing;
 * OUT_MAX_BYTES is the hard limit (the session fails beyond it). */
#define READ_PAUSE_BYTES (2u << 20)
#define OUT_MAX_BYTES (64u << 20)
#define READ_CHUNK (64 * 1024)
/* Liveness and small steps on slow links (conn.c). Bytes go to the kernel in pieces of about
 * WRITE_PIECE_MS of the link (WRITE_PIECE … WRITE_PIECE_MAX), so a write completes as the
 * link drains. A receiving side tells the
 * sender what it has read (Progress) after PROGRESS_MS without sending anything else, when
 * it read PROGRESS_MIN_BYTES since its last Progress; a session whose peer takes Progress
 * is kept alive by bytes written at most one deadline past its peer's last word. Received
 * chunks are applied (and acknowledged) at least every APPLY_EVERY_MS. A paced sender keeps
 * about LINK_AHEAD_MS of its link's rate queued (at least LINK_QUEUE_MIN bytes), in chunks
 * of about CHUNK_LINK_MS of it (CHUNK_MIN … the session's chunk; CHUNK_FIRST until the rate
 * is known), and looks again while the link drains (PACE_FIRST_MS doubling to PACE_MS). */
#define WRITE_PIECE (32 * 1024)
#define WRITE_PIECE_MS 10
#define WRITE_PIECE_MAX (1024 * 1024)
#define PROGRESS_MS 1000
#define PROGRESS_MIN_BYTES 512
#define APPLY_EVERY_MS 1000
/* A received window larger than this is applied in slices of about this many bytes of
 * entries (an entry is never split: one of 16-256 KiB wire form is a slice alone), one
 * transaction each, the loop turning between them (conn.c), so that other peers'
 * handshakes do not wait for a window's seconds (#20). */
#define APPLY_SLICE_BYTES (32 * 1024)
#define APPLY_DEFER_MS 20 /* a slice waits at most this long for handshakes under way */
/* A window of more than this many bytes of entries is applied on the worker (net_lend)
 * even when it is one entry: some hundreds of rows, a few ms of apply; less stays on the
 * loop, where it costs less than the hop to the worker and back. */
#define APPLY_LOOP_BYTES (8 * 1024)
#define LINK_AHEAD_MS 2000
/* In the blob phase a paced sender keeps about this much of its link queued (at least
 * CHUNK_MIN), in pieces of chunks of about CHUNK_LINK_MS of it to a peer that takes pieces:
 * a row written meanwhile waits behind that much, not behind a 64 KiB chunk and 32 KiB
 * (12 s at 64 kbit/s). Above a round trip, so that the link stays full. */
#define BLOB_AHEAD_MS 1500
#define LINK_QUEUE_MIN (32 * 1024)
#define CHUNK_LINK_MS 1000
#define CHUNK_MIN (4 * 1024)
#define CHUNK_FIRST (16 * 1024)
#define PACE_MS 100
/* A paced sender's waits for its link start at PACE_FIRST_MS and double, while the link
 * still holds what it wants queued, up to PACE_MS: a LAN drains in a few ms (the first
 * wait, at a rate not yet known, was 100 ms of an idle gigabit link), a 2G link is looked
 * at every PACE_MS as before. */
#define PACE_FIRST_MS 2
/* In the blob phase messages are made only while less than this waits in our own buffer:
 * the kernel's socket buffer holds the link's share. Making BLOB_AHEAD_MS of a gigabit link
 * at once (190 MB, all the files there were) held the writes back while it was made, and
 * past OUT_MAX_BYTES would fail the session. */
#define BLOB_QUEUED_MAX WRITE_PIECE_MAX
#define PUMP_TURN_MS 10 /* a turn of the loop makes chunks for about this long at most (conn_pump) */
#define LINK_RATE_MAX 1e9 /* bytes/s: a measured rate is taken as at most this */
/* Inbound connections not authenticated yet (in the handshake) have their own limits and do
 * not count against max_sessions: at most PREAUTH_PER_ADDR per source address, at most
 * max_sessions in all (but at least PREAUTH_MAX and at most PREAUTH_CAP), the one waiting
 * longest closed to make room for a newcomer once it has waited PREAUTH_EVICT_MS (an honest
 * handshake takes a few round trips; a slow or replayed one waits for its deadline), else
 * the newcomer refused. A fan-in within the session cap never
 * has a handshake closed (#24: 50 laptops at once were told "connection reset by peer"). */
#define PREAUTH_MAX 32
#define PREAUTH_CAP 1024 /* 64 KiB of read buffer each: 64 MiB at most */
#define PREAUTH_EVICT_MS 500
#define PREAUTH_PER_ADDR 4
/* Refusals and failed handshakes of unauthenticated connections are logged one by one at
 * most NOISY_BURST times per NOISY_WINDOW_MS; the rest are counted in one line per window. */
#define NOISY_BURST 10
#define NOISY_WINDOW_MS 10000
/* Handshakes per source address: RATE_BURST at once, one more every RATE_REFILL_MS. */
#define RATE_SLOTS 128
#define RATE_BURST 10
#define RATE_REFILL_MS 1000
/* Schedules (whom to dial and when: zila/sched.h). */
#define PERIODIC_MS (5 * 60 * 1000)
#define IFACE_POLL_MS 3000
#define DEBOUNCE_MS 200
#define CONTROL_LINE_MAX 4096
#define CLOCK_WARN_MS (5 * 60 * 1000)
/* The replica's own trouble: the loop waits at most STORE_BUSY_WAIT_MS for another
 * program's write transaction, then the session fails and is retried with backoff, at
 * least every ZILA_SCHED_STORE_RETRY_MAX_MS (a lock or a full disk is usually cleared by a
 * person). */
#define STORE_BUSY_WAIT_MS 2000

/* Who this device is in its organisation, as the replica says (daemon.c reads it). */
struct net_identity {
	bool enrolled, is_hq, has_cert, has_issuer;
	bool joining; /* an invite code is recorded: join at the first contact with HQ */
	uint8_t root_pk[32];
	char org_name[ZILA_NAME_MAX + 1];
	struct zila_cert cert;
	uint8_t cert_bytes[ZILA_CERT_LEN], issuer_bytes[ZILA_CERT_LEN];
	uint8_t beacon_key[32];
	uint8_t psk[32]; /* the members' handshake key, from the organisation secret */
	/* Enrolled before organisation secrets existed: it syncs with nobody until it is
	 * enrolled again (enrolled is false then, so a new invite code can be used). */
	bool no_secret;
};

/* The environment of every part, owned by daemon.c; parts hold a const pointer to it and
 * only read it (the replica and trust context are used, not replaced). */
struct net_env {
	uv_loop_t *loop;
	struct zila_store *store;
	struct zila_trust_ctx *trust;
	const struct zila_daemon_config *cfg;
	struct net_identity id;
	bool stopping;
	struct net_lend *lend; /* NULL: slices are applied on the loop */
};

/* The replica lent to a worker thread (#20): a slice of a large received window is applied
 * off the loop (conn.c, uv_queue_work), and while it runs the loop touches neither the store
 * nor what the store keeps in memory. Connections whose next step needs the store wait
 * (their bytes held, their reads paused, their timers and chunks taken up after the slice);
 * an inbound handshake's first message needs only the identity in memory and goes on, so
 * other laptops' handshakes are answered while HQ applies. Anything else that needs the
 * store first takes it back: net_store_claim() waits for the slice's commit (at most one
 * slice, as before the worker). */
struct net_lend {
	bool lent;          /* a slice runs on the worker */
	bool queued;        /* a slice was queued and its result is not yet taken (slice_done):
			     * no other slice starts meanwhile, also when the loop claimed the
			     * store back, for that result is recorded in the store */
	const void *owner;  /* the connection whose slice it is */
	unsigned test_late_ms; /* ZILA_TEST_SLICE_LATE_MS: the worker returns this late after
				* its commit (tests: widens the window between a claim and the
				* slice's result) */
	bool done;          /* under mu: the worker is finished with the store */
	uv_mutex_t mu;
	uv_cond_t cv;
	uint64_t slices;    /* slices applied off the loop */
	uint64_t answered;  /* handshakes' first messages answered while a slice ran */
	uint64_t claims;    /* times the loop had to wait for a slice */
};
/* Whether a slice runs on the worker now (work that can wait a tick need not claim). */
static inline bool net_store_lent(const struct net_env *env)
{
	return env->lend != NULL && env->lend->lent;
}
/* Takes the store back from the worker (waits for the slice to commit); at once when it is
 * not lent. Every loop callback that may touch the store calls it first. */
void net_store_claim(const struct net_env *env);

#endif
