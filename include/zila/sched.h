/* The daemon's scheduling policy, pure: which peer to dial and when (HQ, configured peers,
 * LAN peers heard by beacon), backoff after failures, what to relay after a session, which
 * LAN peers to trust an address from, when to forget them, and when a failed dial is worth a
 * log line. No libuv, no sockets, no clock reads: times are passed in (ms of a monotonic
 * clock), and the results are decisions the caller (src/net) carries out. */
#ifndef ZILA_SCHED_H
#define ZILA_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* --- backoff -------------------------------------------------------------------------- */

/* Exponential backoff with jitter: the n-th consecutive failure waits a random time in
 * [d/2, d], d = min(base * 2^(n-1), max). */
struct zila_backoff {
	uint32_t base_ms, max_ms;
	unsigned failures;
};
void zila_backoff_init(struct zila_backoff *b, uint32_t base_ms, uint32_t max_ms);
/* Records a failure; returns the delay before the next attempt. rnd is a random number. */
uint32_t zila_backoff_fail(struct zila_backoff *b, uint32_t rnd);
void zila_backoff_reset(struct zila_backoff *b);

/* --- the scheduler -------------------------------------------------------------------- */

#define ZILA_SCHED_BACKOFF_BASE_MS 1000
#define ZILA_SCHED_BACKOFF_MAX_MS (5 * 60 * 1000)
#define ZILA_SCHED_BEACON_INTERVAL_MS 30000
/* A LAN peer not heard for this many beacon intervals is not dialled and is forgotten. */
#define ZILA_SCHED_LAN_AGE_BEACONS 6
#define ZILA_SCHED_LAN_MAX 64        /* LAN peers learnt from beacons, at most */
#define ZILA_SCHED_LAN_GIVE_UP 3     /* failed dials after which a LAN peer is not dialled */
#define ZILA_SCHED_BUSY_RETRIES 5    /* quick retries of a peer that turned a handshake away */
#define ZILA_SCHED_BUSY_RETRY_MS 1200u /* a handshake token comes back every second */
#define ZILA_SCHED_STORE_RETRY_MAX_MS 30000 /* our replica's trouble: retried at least this often */
#define ZILA_SCHED_RESYNC_MS (5 * 60 * 1000) /* a LAN peer heard again is synced when the last sync is older */
#define ZILA_SCHED_LOG_EVERY_MS (10 * 60 * 1000) /* failed dials logged per peer, at most once per */
#define ZILA_SCHED_LOG_LAN_BURST 10 /* ...and of LAN peers not proven, at most this many per that time;
				      * as many lines for LAN peers found, per that time */
#define ZILA_SCHED_NETS_MAX 32

enum zila_sched_source { ZILA_SCHED_CONFIG, ZILA_SCHED_HQ, ZILA_SCHED_LAN };

/* One dial target. The scheduler allocates it through its config's alloc callback (so the
 * caller can embed it in a larger record) and hands it back through release; between, the
 * caller reads it and changes it only through the calls below. */
struct zila_sched_peer {
	struct zila_sched_peer *next; /* the scheduler's list, in the order added */
	char addr[300];               /* "HOST:PORT" */
	enum zila_sched_source source;
	bool has_device;
	uint8_t device[32];
	bool want;       /* a sync is wanted */
	bool again;      /* wanted again once the running session ends */
	bool dialing;    /* a connection we dialled runs (zila_sched_next .. zila_sched_ended) */
	bool verified;   /* a handshake at addr completed (LAN: its address is proven) */
	uint64_t next_ms;  /* not dialled before this time */
	uint64_t heard_ms; /* LAN: time of the last beacon */
	uint64_t ok_ms;    /* time of the last completed session, 0: never */
	struct zila_backoff backoff;
	unsigned busy_retries;
	/* A session ended by the peer because another program held its replica's write lock:
	 * what that program wrote the peer's merge seals after the peer made its offer (a
	 * session that waited for the lock and then completed brings none of it), and the
	 * peer does not dial us. The next session that completes is followed by one more. */
	bool peer_locked;
	bool logged;          /* a failed dial was logged since the last handshake, at logged_ms */
	uint64_t logged_ms;
	uint64_t nquiet;      /* failed dials not logged since */
};

/* The caller's side: allocation of peers, and what the scheduler asks of the world. */
struct zila_sched_config {
	uint8_t self[32];         /* our device key: of two LAN peers the lower key dials */
	unsigned max_sessions;    /* sessions running or dialled at most; 0: 64 */
	unsigned lan_max;         /* 0: ZILA_SCHED_LAN_MAX */
	uint32_t beacon_interval_ms; /* 0: ZILA_SCHED_BEACON_INTERVAL_MS */
	/* Returns a zeroed peer (NULL when out of memory); release frees it. */
	struct zila_sched_peer *(*alloc)(void *ctx);
	void (*release)(void *ctx, struct zila_sched_peer *p);
	/* Whether a session with the device runs already (it dialled us); may be NULL. */
	bool (*device_busy)(void *ctx, const uint8_t device[32]);
	void *ctx;
};

/* A network of ours (IPv4, host byte order): beacons are believed only from these. */
struct zila_sched_net {
	uint32_t addr, mask;
};

struct zila_sched {
	struct zila_sched_config cfg;
	struct zila_sched_peer *peers;
	struct zila_sched_peer *hq;
	size_t nlan;
	bool enrolled; /* members dial; a laptop not enrolled dials only HQ, and only to join */
	bool joining;
	struct zila_sched_net nets[ZILA_SCHED_NETS_MAX];
	size_t nnets;
	/* lines logged in the current window (ZILA_SCHED_LOG_EVERY_MS) and those not logged:
	 * failed dials of LAN peers whose address is not proven, LAN peers found */
	struct zila_sched_budget {
		bool open;
		uint64_t start_ms;
		unsigned n;
		uint64_t nquiet;
	} lan_fail_log, lan_found_log;
};

void zila_sched_init(struct zila_sched *s, const struct zila_sched_config *cfg);
/* "hq", "config" or "lan" (as status and the peer table say). */
const char *zila_sched_source_name(enum zila_sched_source src);
/* Releases every peer. */
void zila_sched_release(struct zila_sched *s);

/* The peer at addr, or NULL. */
struct zila_sched_peer *zila_sched_find(struct zila_sched *s, const char *addr);
/* Adds a peer at addr (wanted at once), or returns the one there with its source set; NULL
 * when out of memory. A LAN peer configured by hand stays (as configured). ZILA_SCHED_HQ
 * makes it the HQ peer. */
struct zila_sched_peer *zila_sched_add(struct zila_sched *s, const char *addr, enum zila_sched_source src,
				       uint64_t now_ms);
/* Removes p (release is called; p is invalid after). */
void zila_sched_remove(struct zila_sched *s, struct zila_sched_peer *p);
/* Whether a LAN peer was heard lately enough to be dialled (other peers: always). */
bool zila_sched_fresh(const struct zila_sched *s, const struct zila_sched_peer *p, uint64_t now_ms);

/* The next peer to dial now, or NULL. It is marked dialing; the caller dials it and calls
 * zila_sched_ended when that connection ends (or at once when the dial cannot start).
 * nsessions: sessions running or dialled now. LAN peers not heard lately are forgotten
 * here. *wake_ms is set to the earliest time a waiting peer becomes due (UINT64_MAX: none);
 * call again then, or after anything changes. */
struct zila_sched_peer *zila_sched_next(struct zila_sched *s, uint64_t now_ms, unsigned nsessions,
					uint64_t *wake_ms);

/* Who dials: a device not enrolled dials only HQ, and only when joining. */
void zila_sched_set_identity(struct zila_sched *s, bool enrolled, bool joining);
/* p cannot be dialled (its address is no HOST:PORT): not wanted until asked again. */
void zila_sched_unusable(struct zila_sched *s, struct zila_sched_peer *p);

/* Wants a sync with p now: backoff reset, or again after its running session. */
void zila_sched_want_now(struct zila_sched *s, struct zila_sched_peer *p);
/* Wants a sync with every peer but except_device's (NULL: none) and LAN peers not heard
 * lately, skipping those skip(ctx, p) says need none (skip may be NULL). Returns how many. */
size_t zila_sched_want_all(struct zila_sched *s, const uint8_t *except_device, uint64_t now_ms,
			   bool (*skip)(void *ctx, const struct zila_sched_peer *p), void *ctx);
/* What a peer's connection is doing, as zila_sched_covered asks. */
enum zila_sched_conn {
	ZILA_SCHED_CONN_NONE,     /* none runs: its last completed session counts */
	ZILA_SCHED_CONN_STARTING, /* dialled, in the handshake, or failing before a session: a
				   * session that starts seals and offers everything then */
	ZILA_SCHED_CONN_SESSION,  /* its session started (running, or closing after it): it
				   * offered what its start sealed */
};
/* Whether a peer needs no new session for our own sealed entries up to own (their count;
 * -1: unknown) and, when pending, for local changes not sealed yet: after a local change,
 * a peer with a session in flight that carries the work gets no second one. offered: the
 * own entries its session (CONN_SESSION) or its last completed one (CONN_NONE) offered. */
bool zila_sched_covered(enum zila_sched_conn conn, int64_t offered, int64_t own, bool pending);
/* Relay: after a session with from_device that brought applied entries or trust records,
 * what came goes on to every other peer. Returns the number of peers wanted (0: nothing to
 * relay). */
size_t zila_sched_relay(struct zila_sched *s, const uint8_t from_device[32], uint64_t applied, uint64_t trust,
			uint64_t now_ms);
/* The network changed: HQ is tried at once rather than at the end of its backoff. */
void zila_sched_net_changed(struct zila_sched *s);

/* How a connection we dialled to p ended. */
struct zila_sched_result {
	bool ok;            /* the session (or join) completed */
	bool duplicate;     /* closed for another session with the device: not a result */
	bool handshake;     /* the handshake completed (the address is proven) */
	bool busy_refused;  /* turned away unanswered soon after a completed sync */
	bool local_fault;   /* our own replica failed (full, locked): retried soon */
	bool joined;        /* a JOIN completed: sync as a member at once */
	bool ref_failed;    /* failed on a key sent by reference: the next session, with keys
			     * whole, goes at once (a user waiting waits for it) */
	bool peer_locked;   /* the peer ended it: another program held its replica's write lock */
	uint32_t rnd;       /* a random number for the jitter */
};
/* What the caller does next. */
struct zila_sched_after {
	uint32_t delay_ms;   /* the next attempt is not before now + delay_ms (0: when wanted) */
	bool busy_retry;     /* a quick retry of a busy peer (or after ref_failed) */
	bool once_more;      /* completed after the peer's replica was locked: synced again at once */
	bool gave_up;        /* a LAN peer that failed ZILA_SCHED_LAN_GIVE_UP times: not dialled again until heard anew */
	bool log;            /* a failed dial worth a log line (see zila_sched_log_failure) */
	uint64_t nquiet;     /* with log: failed dials to p not logged since its last line */
	uint64_t nquiet_lan; /* with log: failed dials to other unproven LAN peers not logged */
};
void zila_sched_ended(struct zila_sched *s, struct zila_sched_peer *p, const struct zila_sched_result *r,
		      uint64_t now_ms, struct zila_sched_after *out);

/* Outbound failures before a handshake (nobody there, refused, another organisation) are
 * logged once per peer per ZILA_SCHED_LOG_EVERY_MS, and those of LAN peers whose address no
 * handshake proved (beacons can be forged, and peers forgotten) at most
 * ZILA_SCHED_LOG_LAN_BURST times in all per that time. Returns true when this one is to be
 * logged, *nquiet and *nquiet_lan then being those of p and of such LAN peers not logged
 * since (they are counted). A completed handshake starts p afresh. */
bool zila_sched_log_failure(struct zila_sched *s, struct zila_sched_peer *p, uint64_t now_ms, uint64_t *nquiet,
			    uint64_t *nquiet_lan);

/* --- LAN peers from beacons ------------------------------------------------------------- */

/* Our networks: a beacon whose source address is in none of them is ignored (a datagram's
 * source can be forged; ours come from a network we are on). Up to ZILA_SCHED_NETS_MAX. */
void zila_sched_set_nets(struct zila_sched *s, const struct zila_sched_net *nets, size_t n);
/* Whether ip (IPv4, host byte order) is on one of our networks. */
bool zila_sched_on_net(const struct zila_sched *s, uint32_t ip);

/* What a beacon told us: the device, and its source address and the TCP port it names. The
 * address dialled is always the source's: a beacon names only a port. */
struct zila_sched_beacon {
	const uint8_t *device; /* 32 bytes */
	uint32_t ip;           /* the datagram's source, IPv4, host byte order */
	uint16_t port;
};
enum zila_sched_heard_result {
	ZILA_SCHED_HEARD_KNOWN, /* a peer we knew */
	ZILA_SCHED_HEARD_NEW,   /* a new LAN peer */
	ZILA_SCHED_HEARD_OFFNET, /* ignored: the source is not on a network of ours */
	ZILA_SCHED_HEARD_FULL,  /* ignored: ZILA_SCHED_LAN_MAX LAN peers whose address is proven */
	ZILA_SCHED_HEARD_NOMEM,
};
struct zila_sched_heard {
	enum zila_sched_heard_result result;
	struct zila_sched_peer *peer; /* KNOWN, NEW: the peer */
	bool dial;                    /* a sync with it is wanted now (we dial: our key is lower) */
	bool evicted;                 /* NEW: an unproven LAN peer heard longest ago made room */
	bool log;                     /* NEW: worth a log line (ZILA_SCHED_LOG_LAN_BURST per 10 min) */
	uint64_t nquiet;              /* with log: LAN peers found and not logged since the last line */
};
void zila_sched_heard(struct zila_sched *s, const struct zila_sched_beacon *b, uint64_t now_ms,
		      struct zila_sched_heard *out);
/* A handshake with p completed: its device is known and its address proven. */
void zila_sched_reached(struct zila_sched *s, struct zila_sched_peer *p, const uint8_t device[32]);

#endif
