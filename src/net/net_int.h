/* The daemon's inside: the daemon, its dial targets, connections and control clients. One
 * owner per object; libuv handles are embedded and their owner is freed after the last
 * close callback. Only src/net includes this file. */
#ifndef ZILA_NET_INT_H
#define ZILA_NET_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include <uv.h>

#include "zila/buf.h"
#include "zila/channel.h"
#include "zila/daemon.h"
#include "zila/session.h"
#include "zila/trust.h"

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Deadlines (ms) per connection state. */
#define DIAL_TIMEOUT_MS 10000
#define HANDSHAKE_TIMEOUT_MS 10000
#define SESSION_IDLE_MS 60000 /* default: no byte read or written for this long */
#define JOIN_TIMEOUT_MS 20000
#define CLOSING_TIMEOUT_MS 5000
/* Buffered bytes per connection: reading stops above READ_PAUSE_BYTES queued for writing;
 * OUT_MAX_BYTES is the hard limit (the session fails beyond it). */
#define READ_PAUSE_BYTES (2u << 20)
#define OUT_MAX_BYTES (64u << 20)
#define READ_CHUNK (64 * 1024)
/* Inbound connections not authenticated yet (in the handshake) have their own limits and do
 * not count against max_sessions: at most PREAUTH_PER_ADDR per source address, at most
 * PREAUTH_MAX in all, the one waiting longest closed to make room for a newcomer (an honest
 * handshake takes a few round trips; a slow or replayed one waits for its deadline). */
#define PREAUTH_MAX 32
#define PREAUTH_PER_ADDR 4
/* Refusals and failed handshakes of unauthenticated connections are logged one by one at
 * most NOISY_BURST times per NOISY_WINDOW_MS; the rest are counted in one line per window. */
#define NOISY_BURST 10
#define NOISY_WINDOW_MS 10000
/* Handshakes per source address: RATE_BURST at once, one more every RATE_REFILL_MS. */
#define RATE_SLOTS 128
#define RATE_BURST 10
#define RATE_REFILL_MS 1000
/* Schedules. */
#define HQ_BACKOFF_BASE_MS 1000
#define HQ_BACKOFF_MAX_MS (5 * 60 * 1000)
#define PERIODIC_MS (5 * 60 * 1000)
#define BEACON_INTERVAL_MS 30000
#define IFACE_POLL_MS 3000
#define DEBOUNCE_MS 200
#define LAN_FRESH_MS (3 * 60 * 1000) /* a LAN peer not heard for this long is not dialled */
#define CONTROL_LINE_MAX 4096
#define CLOCK_WARN_MS (5 * 60 * 1000)
/* The replica's own trouble: the loop waits at most STORE_BUSY_WAIT_MS for another
 * program's write transaction, then the session fails and is retried with backoff, at
 * least every STORE_RETRY_MAX_MS (a lock or a full disk is usually cleared by a person). */
#define STORE_BUSY_WAIT_MS 2000
#define STORE_RETRY_MAX_MS 30000

enum target_source { SRC_CONFIG, SRC_HQ, SRC_LAN };
enum noisy_kind { NOISY_CAP, NOISY_RATE, NOISY_ADDR, NOISY_EVICTED, NOISY_FAILED, NOISY_TIMEOUT, NOISY_KINDS };

/* An address the daemon dials: a configured peer, HQ, or a LAN peer heard by beacon. */
#define REFUSED_SKIPS 16 /* feeds skipped per session */
#define REFUSED_MEM 64   /* refusals remembered per daemon */

struct target {
	struct target *next;
	struct daemon *d;
	char addr[300]; /* "HOST:PORT" */
	enum target_source source;
	bool has_device;
	uint8_t device[32];
	char name[ZILA_NAME_MAX + 1];
	bool want;          /* a sync is wanted */
	bool again;         /* wanted again while a session ran */
	uint64_t next_ms;   /* loop time before which it is not dialled */
	struct zila_backoff backoff;
	struct conn *conn;  /* the connection we dialled, if any */
	uint64_t nstarted;  /* sessions dialled so far (for waiters) */
	uint64_t heard_ms;  /* loop time of the last beacon (LAN) */
	bool reachable;     /* the last dial got through the handshake */
	bool flaky;         /* the last session was cut after it started: commit every chunk */
	uint64_t last_ok;   /* wall clock (s) of the last completed sync, 0: never */
	int64_t own_offered; /* our own entries when that sync started (daemon_own_sealed) */
	char last_error[300];
	char refused[600]; /* what the peer refused of ours in the last session, for waiters */
	unsigned busy_retries; /* quick retries after busy refusals (conn.busy_refused) */
	bool removed;
};

enum conn_state { CONN_DIALING, CONN_HANDSHAKE, CONN_SESSION, CONN_JOIN, CONN_CLOSING, CONN_CLOSED };
enum conn_event { EV_RESOLVED, EV_CONNECTED, EV_READ, EV_EOF, EV_WRITTEN, EV_TIMEOUT, EV_STOP };

struct conn {
	struct conn *next;
	struct daemon *d;
	enum conn_state state;
	bool initiator;
	uint8_t mode; /* enum zila_channel_mode */
	struct target *target; /* dialled: the target (cleared if it goes away) */
	uint64_t seqno;        /* target->nstarted when dialled */
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
	int64_t own_offered; /* our own entries when the session started, after its seal */
	struct zila_join_check jc;
	uint8_t invite_id[ZILA_INVITE_ID_LEN]; /* JOIN responder: the id message 1 named */
	struct zila_buf out, inflight, msg;
	char addr[300]; /* the peer's address as text */
	bool has_peer;
	uint8_t peer_pk[32];
	char peer_name[ZILA_NAME_MAX + 1];
	char peer_district[ZILA_DISTRICT_MAX + 1];
	uint64_t started_ms;
	int result;          /* 0: the session completed */
	char reason[300];    /* why it failed, for the log and the waiters */
	bool duplicate;      /* closed because another session with the device runs */
	bool finished;       /* conn_finished() ran */
	bool preauth;        /* inbound and not authenticated yet: counted in d->npreauth */
	char ip[64];         /* the peer's address without the port (inbound) */
	uint64_t bytes_in;   /* bytes read from the peer */
	bool busy_refused;   /* the peer turned our handshake away unanswered, soon after a sync */
	struct zila_session_skip skip[REFUSED_SKIPS]; /* feeds not offered: refused before */
	size_t nskip;
	uint8_t rbuf[READ_CHUNK];
};

/* A client of the control socket. */
struct ctl {
	struct ctl *next;
	struct daemon *d;
	uv_pipe_t pipe;
	struct zila_buf in;
	bool closing, close_on_flush;
	unsigned nwrites; /* responses being written */
	/* sync --wait: the targets waited for and the session number each must pass */
	size_t nwait;
	struct {
		struct target *t;
		uint64_t after;
		bool done;
		int result;
		char reason[300];
		char refused[600];
	} wait[32];
	bool waiting;
};

struct rate_slot {
	char addr[64];
	double tokens;
	uint64_t at_ms;
};

struct daemon {
	uv_loop_t loop;
	struct zila_daemon_config cfg;
	char dir[PATH_MAX];
	char sock_path[PATH_MAX + 16];
	int lock_fd;
	struct zila_store *store;
	struct zila_trust_ctx trust;
	bool stopping;
	/* identity */
	bool enrolled, is_hq, has_cert, has_issuer;
	uint8_t root_pk[32];
	char org_name[ZILA_NAME_MAX + 1];
	struct zila_cert cert;
	uint8_t cert_bytes[ZILA_CERT_LEN], issuer_bytes[ZILA_CERT_LEN];
	uint8_t beacon_key[32];
	bool joining; /* an invite code is recorded: join at the first contact with HQ */
	/* TCP */
	char listen_addr[300];
	uv_tcp_t listener;
	bool listening;
	unsigned nconns;
	unsigned npreauth; /* inbound connections still in the handshake */
	struct rate_slot rate[RATE_SLOTS];
	/* unauthenticated connections refused or failed in the current log window */
	uv_timer_t noisy_timer;
	unsigned noisy_logged;
	uint64_t noisy_quiet[NOISY_KINDS]; /* not logged one by one */
	/* beacons */
	uint16_t beacon_port;
	uv_udp_t udp;
	bool udp_open;
	uv_timer_t beacon_timer, iface_timer;
	char iface_sig[1024];
	struct zila_beacon_seen seen;
	uint64_t last_beacon_ms; /* loop time a valid beacon was last heard, 0: never */
	uint64_t nbeacons_sent, nbeacons_heard;
	uint64_t last_answer_ms; /* loop time we last answered a newcomer's beacon */
	uint8_t udp_buf[512];
	bool beacon_timers;
	/* dialling */
	struct target *targets;
	struct target *hq;
	struct conn *conns;
	uv_timer_t kick_timer, periodic_timer, debounce_timer, progress_timer;
	uv_fs_event_t fsev;
	bool fsev_open;
	int clock_state_said; /* the clock state last logged (zila_clock_state + 1; 0: none) */
	int64_t own_sealed; /* own entries when local changes were last looked at */
	unsigned nperiodic; /* periodic ticks since the last sweep (daemon_sweep) */
	/* the replica's last failure (disk full, locked, I/O), shown by status until a session
	 * commits again */
	int store_error;
	char store_error_msg[PATH_MAX + 512];
	uint64_t store_error_at; /* wall clock (s) */
	uint64_t busy_start_ms;  /* uv_hrtime in ms when the current lock wait began */
	uint64_t busy_gave_up_ms; /* uv_hrtime in ms when a wait last gave up, 0: never */
	uint64_t nbusy_waits;    /* waits for another program's lock, since the start */
	/* control */
	uv_pipe_t control;
	bool control_open;
	struct ctl *ctls;
	uv_signal_t sig_term, sig_int, sig_hup;
	int64_t started_wall;
	/* Feeds peers refused (refused.c): not offered to that peer again while its trust
	 * records stay the same. A ring: the oldest is forgotten first. */
	struct refused_mem {
		uint8_t peer[32];
		struct zila_session_skip skip;
	} refused[REFUSED_MEM];
	size_t nrefused, next_refused;
};

/* refused.c */
/* The feeds not to offer the peer (device key) in a session: into c->skip. */
void refused_skips(struct daemon *d, struct conn *c);
/* After a completed session: remembers what the peer refused, and when the peer is HQ,
 * records in the replica how many of our entries HQ holds and what it refused of ours (for
 * status), and the target's refused text (for sync --wait). */
void refused_learn(struct daemon *d, struct conn *c, const struct zila_session_stats *st);
/* For status: HQ's refusals of our entries (a JSON array, maybe empty) and, for each, a
 * warning in plain words with what to do, appended to warn. */
json_t *refused_status(struct daemon *d, json_t *warn);

/* daemon.c */
uint64_t daemon_wall(void);
/* HQ's time as best known (ms): this computer's clock moved by the offset learnt from HQ;
 * what beacons are dated and judged by. */
uint64_t daemon_hq_ms(struct daemon *d);
void daemon_kick(struct daemon *d);
void daemon_stop(struct daemon *d, const char *why);
int daemon_reload(struct daemon *d);
void daemon_want_all(struct daemon *d, const uint8_t *except_device, bool lan_fresh_only);
/* Our own sealed entries: the sum of our feeds' heads (-1 on failure). */
int64_t daemon_own_sealed(struct daemon *d);
struct target *daemon_target_find(struct daemon *d, const char *addr);
struct target *daemon_target_add(struct daemon *d, const char *addr, enum target_source src);
int daemon_identity(struct daemon *d);
void daemon_session_ended(struct daemon *d, struct conn *c);

/* conn.c */
int conn_dial(struct daemon *d, struct target *t);
/* Gives a handshake token back to the source address ip (a session from it completed). */
void conn_rate_refund(struct daemon *d, const char *ip);
void conn_accept(struct daemon *d);
void conn_event(struct conn *c, enum conn_event ev, const uint8_t *p, size_t len, int status);
const char *conn_state_name(enum conn_state s);
void conn_noisy_flush(uv_timer_t *h);
/* Sessions running or being dialled: open connections that are not unauthenticated inbound. */
unsigned conn_nsessions(const struct daemon *d);

/* discovery.c */
int discovery_start(struct daemon *d);
void discovery_stop(struct daemon *d);
void discovery_send_now(struct daemon *d);

/* control.c */
int control_start(struct daemon *d, struct zila_error *err);
void control_stop(struct daemon *d);
void control_target_done(struct daemon *d, struct target *t, uint64_t seqno, int result, const char *reason);
void control_target_gone(struct daemon *d, struct target *t);

/* join.c: the JOIN exchange, shared by the daemon and the blocking client */
/* Initiator config from the code, HQ address and name recorded in the replica. */
int join_prepare(struct zila_store *s, struct zila_channel_config *cfg, struct zila_join_check *jc, uint64_t now,
		 struct zila_error *err);
/* HQ: redeems the invite for the joining peer; out gets the Message to send (Enrolment, or
 * an Error saying why when the return is non-zero). */
int join_answer(struct zila_store *s, const uint8_t invite_id[ZILA_INVITE_ID_LEN], const struct zila_channel_peer *pe,
		uint64_t now, struct zila_buf *out, struct zila_error *err);
/* Laptop: takes HQ's answer; installs the certificate (its root must be root_pk, the HQ the
 * handshake checked) and forgets the invite code. */
int join_take(struct zila_store *s, const uint8_t root_pk[32], const uint8_t *p, size_t len, uint64_t now,
	      struct zila_error *err);

/* peers.c: the replica's peer table */
void peers_seen(struct daemon *d, const uint8_t device[32], const char *name, const char *district,
		const char *addr, const char *source);
void peers_synced(struct daemon *d, const struct conn *c, const struct zila_session_stats *st);
const char *source_name(enum target_source s);

#endif
