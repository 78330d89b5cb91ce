/* Connections with peers (conn.c): the table of them, one state machine each. The owner
 * (daemon.c) learns what happens through the callbacks of struct conn_hooks; conn.c never
 * calls it. */
#ifndef ZILA_NET_CONN_H
#define ZILA_NET_CONN_H

#include "net_int.h"
#include "refused.h"
#include "zila/buf.h"
#include "zila/channel.h"
#include "zila/session.h"

enum conn_state { CONN_DIALING, CONN_HANDSHAKE, CONN_SESSION, CONN_JOIN, CONN_CLOSING, CONN_CLOSED };
enum conn_event { EV_RESOLVED, EV_CONNECTED, EV_READ, EV_EOF, EV_WRITTEN, EV_TIMEOUT, EV_STOP };
enum noisy_kind { NOISY_CAP, NOISY_RATE, NOISY_ADDR, NOISY_EVICTED, NOISY_FAILED, NOISY_TIMEOUT, NOISY_KINDS };

struct conns;

struct conn {
	struct conn *next;
	struct conns *cs;
	enum conn_state state;
	bool initiator;
	uint8_t mode; /* enum zila_channel_mode */
	void *owner;  /* dialled: the owner's record of the target (cleared if it goes away) */
	uint64_t seqno; /* the owner's number of this dial */
	bool flaky;     /* dialled: commit every chunk (the last session was cut) */
	uint64_t last_ok; /* dialled: wall clock (s) of the last completed sync with the target */
	char source[8];   /* dialled: "hq", "config" or "lan" (the peer table) */
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_getaddrinfo_t gai_req;
	struct addrinfo *ai; /* the resolved address, until connected */
	uv_connect_t connect_req;
	uv_write_t write_req;
	uv_shutdown_t shutdown_req;
	int nopen; /* handles not yet closed */
	bool tcp_open, reading, writing, shut, gai_pending;
	struct zila_channel ch;
	bool ch_init;
	struct zila_session *sess;
	/* The blob phase after the rows (attachments, #25; both Hellos offered it): made with
	 * the session (the peer may start it first), started once the session is DONE. */
	struct zila_blobx *bx;
	bool blobs_started;
	bool blobs_logged; /* log_blobs said what the phase moved */
	uint64_t blobs_at_ms; /* when the blob phase started (loop time) */
	uint64_t blobs_checked_ms; /* we last looked for new local rows (blobs_yield) */
	int64_t own_offered; /* our own entries when the session started, after its seal */
	int64_t late_own;    /* ... and when it last sent new rows in the blob phase */
	struct zila_join_check jc;
	uint8_t invite_id[ZILA_INVITE_ID_LEN]; /* JOIN responder: the id message 1 named */
	struct zila_buf out, inflight, msg;
	size_t inflight_off, piece_len; /* inflight goes out in pieces: the one being written */
	uv_timer_t pace; /* a paced session's sender waits for its link to drain */
	/* The link as this end sees it: bytes the kernel took (written) and, of those, the ones
	 * still unacknowledged (the socket's queue) give what the link carried, and so its rate. */
	uint64_t written;
	uint64_t rate_at_ns, rate_delivered; /* the last sample */
	bool rate_busy;   /* the link had bytes queued since the last sample */
	double rate;      /* bytes/s the link carried while busy; 0 until known */
	size_t chunk_bytes; /* the size of the next chunk we send (about a second of link) */
	uint64_t last_out_ms;   /* we last sent a session message */
	uint64_t last_apply_ms; /* we last applied (or started the session) */
	uint64_t last_read_ms, last_write_ms; /* a byte arrived; the kernel took a piece */
	uint64_t progress_at;   /* bytes_in our last Progress told */
	uint64_t own_told;      /* own_at_peer the owner was last told of (hooks.delivered) */
	char addr[300]; /* the peer's address as text */
	bool has_peer;
	uint8_t peer_pk[32];
	char peer_name[ZILA_NAME_MAX + 1];
	char peer_district[ZILA_DISTRICT_MAX + 1];
	char blob_label[ZILA_NAME_MAX + ZILA_DISTRICT_MAX + 340]; /* the peer, for the blob phase's log */
	uint64_t started_ms;
	int result;          /* 0: the session completed */
	char reason[300];    /* why it failed, for the log and the waiters */
	bool duplicate;      /* closed because another session with the device runs */
	bool finished;       /* the owner was told the result */
	bool preauth;        /* inbound and not authenticated yet: counted in cs->npreauth */
	char ip[64];         /* the peer's address without the port (inbound) */
	uint64_t bytes_in;   /* bytes read from the peer */
	uint8_t first[16];   /* the first bytes it sent: what answered, when it is not zila */
	size_t nfirst;
	bool busy_refused;   /* the peer turned our handshake away unanswered, soon after a sync */
	/* A large received window is applied in slices of about APPLY_SLICE_BYTES, one per turn
	 * of the loop (apply_idle), so other peers' handshakes and sessions go on meanwhile;
	 * the connection reads nothing more until the window is applied, and bytes that came
	 * with the window's last message wait in held_in. */
	uv_idle_t apply_idle;
	bool applying;
	const struct zila_view *apply_v; /* the session's window, borrowed until applied */
	size_t apply_n, apply_next;
	uint64_t apply_defer_since; /* a slice waits for handshakes since (monotonic ms), or 0 */
	struct zila_apply_stats apply_st; /* of the slices so far */
	unsigned apply_progress;          /* Progress sent while applying the window */
	struct zila_buf held_in;
	/* The slice on the worker (net_lend): its entries [apply_next, slice_end) and result.
	 * A connection whose next step needs the store while a slice runs waits: its bytes in
	 * held_in (reads paused), a deadline, an end of stream or chunks to make noted here. */
	uv_work_t slice_req;
	size_t slice_end;
	int slice_r;
	struct zila_apply_stats slice_st;
	struct zila_error slice_err;
	bool wait_read, wait_timeout, wait_eof, wait_pump;
	bool free_later; /* closed while a slice ran: freed after it (its session's statements) */
	bool read_yield; /* reads paused for the rest of a turn that took long (on_read) */
	uint64_t read_yields; /* turns that left reads to the next (PUMP_TURN_MS) */
	int eof_status;
	uint64_t pump_yields; /* turns of the loop that left chunks to the next (PUMP_TURN_MS) */
	unsigned pace_wait_ms; /* the next wait for the link (PACE_FIRST_MS doubling to PACE_MS); 0: none yet */
	uint64_t pace_waits;   /* waits for the link (the pace timer) in the blob phase */
	size_t blob_queued_max; /* the most our own buffer held in the blob phase (BLOB_QUEUED_MAX) */
	struct zila_session_skip skip[REFUSED_SKIPS]; /* feeds not offered: refused before */
	size_t nskip;
	uint8_t rbuf[READ_CHUNK];
};

/* What the table tells its owner. Each is called from the loop; none may free c. */
struct conn_hooks {
	/* The handshake of c completed (c->has_peer and the peer's names are set). */
	void (*established)(void *ctx, struct conn *c);
	/* c's result is known (c->result, c->reason; c->sess's stats): once per connection
	 * that got past the refusals of conn_accept. Dialled connections that fail before a
	 * handshake are not logged here: the owner logs them (it knows how often). */
	void (*ended)(void *ctx, struct conn *c);
	/* HQ acknowledged more of our own entries in c's session (c->sess's own_at_peer grew):
	 * they count as delivered now, whatever becomes of the session. */
	void (*delivered)(void *ctx, struct conn *c);
	/* A connection was freed: a session slot may be free again. */
	void (*freed)(void *ctx);
	void *ctx;
};

struct rate_slot {
	char addr[64];
	double tokens;
	uint64_t at_ms;
};

/* The connection table. */
#define NOREF_MAX 64

struct conns {
	const struct net_env *env;
	struct conn_hooks hooks;
	const struct refused *refused; /* what peers refused before: not offered again */
	struct conn *list;
	unsigned n;
	unsigned npreauth; /* inbound connections still in the handshake */
	struct rate_slot rate[RATE_SLOTS];
	/* unauthenticated connections refused or failed in the current log window */
	uv_timer_t noisy_timer;
	unsigned noisy_logged;
	uint64_t noisy_quiet[NOISY_KINDS]; /* not logged one by one */
	/* Peers a session failed with on a key sent by reference (ZILA_EREF): later sessions
	 * with them send and take keys whole (until the daemon restarts). */
	uint8_t noref[NOREF_MAX][32];
	unsigned nnoref;
	/* the turn of the loop that made chunks last (its uv_now), and when it made its first
	 * (uv_hrtime): every connection's chunks in a turn share PUMP_TURN_MS (conn_pump) */
	uint64_t pump_turn_at, pump_turn_ns;
};

/* What to dial. */
struct conn_dial {
	const char *addr;   /* "HOST:PORT" */
	const char *name;   /* the peer's name if known, else "" */
	const char *source; /* "hq", "config" or "lan" */
	bool join;          /* JOIN mode: ask HQ for a certificate */
	bool flaky;
	uint64_t last_ok;
	void *owner;
	uint64_t seqno;
};

void conns_init(struct conns *cs, const struct net_env *env, const struct refused *rf, const struct conn_hooks *hooks);
/* Ends every connection (an authenticated close where a session runs) and closes the
 * table's timer; the loop then runs until the last close callback. */
void conns_stop(struct conns *cs);
/* Dials d; *out (may be NULL) gets the connection. Returns 0, also when the dial failed
 * later on (hooks.ended says so); ZILA_EINVAL (not HOST:PORT) or ZILA_ENOMEM at once, and
 * then no hook is called. */
int conn_dial(struct conns *cs, const struct conn_dial *d, struct conn **out);
/* Takes a connection waiting on the listener. */
void conn_accept(struct conns *cs, uv_stream_t *listener);
/* Sessions with this device send and take keys whole from now on (a session failed on a
 * key sent by reference). */
void conn_noref_add(struct conns *cs, const uint8_t device[32]);
/* Gives a handshake token back to the source address ip (a session from it completed). */
void conn_rate_refund(struct conns *cs, const char *ip);
void conn_event(struct conn *c, enum conn_event ev, const uint8_t *p, size_t len, int status);
const char *conn_state_name(enum conn_state s);
/* Sessions running or being dialled: open connections that are not unauthenticated inbound. */
unsigned conn_nsessions(const struct conns *cs);
/* The open connection with the authenticated device, or NULL; in_session: in CONN_SESSION only. */
struct conn *conn_with(const struct conns *cs, const uint8_t device[32], bool in_session);
/* The replica was written here (the daemon's file watch): sessions in the blob phase send
 * the new rows now, on their channel, or end the phase for them (an older peer). */
void conns_local_write(struct conns *cs);
/* The owner's record went away: c no longer reports it. */
void conn_disown(struct conn *c);

#endif
