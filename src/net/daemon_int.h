/* The daemon's own records (daemon.c, and status.c which reports them): the parts it holds
 * and wires, and its record of each dial target. Only daemon.c and status.c include this. */
#ifndef ZILA_NET_DAEMON_INT_H
#define ZILA_NET_DAEMON_INT_H

#include <jansson.h>

#include "conn.h"
#include "control.h"
#include "discovery.h"
#include "net_int.h"
#include "refused.h"
#include "web.h"
#include "zila/sched.h"

/* A dial target: the scheduler's part (whom and when) and what the daemon knows of it. */
struct target {
	struct zila_sched_peer sp;
	struct daemon *d;
	struct conn *conn;   /* the connection we dialled, if any */
	char name[ZILA_NAME_MAX + 1];
	uint64_t nstarted;   /* sessions dialled so far (for waiters) */
	bool reachable;      /* the last dial got through the handshake */
	bool flaky;          /* the last session was cut after it started: commit every chunk */
	uint64_t last_ok;    /* wall clock (s) of the last completed sync, 0: never */
	int64_t own_offered; /* our own entries when that sync started (peers_own_sealed) */
	char last_error[300];
	char refused[600]; /* what the peer refused of ours in the last session, for waiters */
	bool listed;       /* status.c: listed already */
};

static inline struct target *target_of(struct zila_sched_peer *p)
{
	return p != NULL ? container_of(p, struct target, sp) : NULL;
}

struct daemon {
	uv_loop_t loop;
	struct net_env env;
	struct zila_daemon_config cfg;
	char dir[PATH_MAX];
	struct zila_os_lock *lock; /* the instance lock (zila.lock) */
	struct zila_store *store;
	struct zila_trust_ctx trust;
	struct net_lend lend; /* the replica lent to the apply worker (conn.c) */
	bool lend_init;
	bool compact_told; /* a table VACUUM would number again kept compaction off: logged once */
	/* the parts */
	struct zila_sched sched;
	struct conns conns;
	struct discovery disc;
	struct control ctl;
	struct refused refused;
	struct web web;
	char web_listen[300]; /* "" when the web interface is off */
	bool web_explicit;    /* given by flag or setting (else the default, which may be taken) */
	/* TCP */
	char listen_addr[300];
	uv_tcp_t listener;
	bool listening;
	/* timers and local changes */
	uv_timer_t kick_timer, periodic_timer, debounce_timer;
	uv_fs_event_t fsev;
	bool fsev_open;
	int clock_state_said; /* the clock state last logged (zila_clock_state + 1; 0: none) */
	int64_t own_sealed;   /* own entries when local changes were last looked at */
	unsigned nperiodic;   /* periodic ticks since the last sweep (daemon_sweep) */
	/* collecting unreferenced attachments (#25), a directory of DIR/blobs per tick of
	 * collect_timer, so that the loop is never held for long */
	uv_timer_t collect_timer;
	bool collecting;
	unsigned collect_next;
	uint64_t collect_n, collect_bytes;
	uint64_t held_said_s; /* wall clock (s) when the devices holding collection back were last logged */
	/* the replica's last failure (disk full, locked, I/O), shown by status until a session
	 * commits again */
	int store_error;
	char store_error_msg[PATH_MAX + 512];
	uint64_t store_error_at;   /* wall clock (s) */
	uint64_t busy_start_ms;    /* uv_hrtime in ms when the current lock wait began */
	uint64_t busy_gave_up_ms;  /* uv_hrtime in ms when a wait last gave up, 0: never */
	uint64_t nbusy_waits;      /* waits for another program's lock, since the start */
	uv_signal_t sigs[4]; /* zila_os_stop_signals() and zila_os_reload_signal() */
	size_t nsigs;
	int64_t started_wall;
};

/* status.c: what `zila status` and `zila peers` show. */
json_t *status_json(struct daemon *d);
/* HQ: "deleted rows of N districts wait for M devices: see 'zila history'" in msg, true when
 * some device holds the collection of deleted rows back (zila_trust_collect_held). */
bool status_held(struct daemon *d, char *msg, size_t n);
json_t *peers_json(struct daemon *d, bool with_hq);
/* The state of t's sync (its progress while a session runs) into o. */
void status_target_progress(struct daemon *d, struct target *t, json_t *o);

#endif
