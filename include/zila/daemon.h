/* The zila daemon (src/net, libuv): TCP listener and dialer running the channel and the sync
 * session, LAN discovery by authenticated UDP beacons, HQ uplink with backoff, the peer table
 * and the local control socket. Also the pure parts tests and fuzzers drive without a loop
 * (beacons, addresses; the scheduling policy and backoff are in zila/sched.h) and the
 * blocking join client `zila join` uses. */
#ifndef ZILA_DAEMON_H
#define ZILA_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zila/err.h"
#include "zila/log.h"
#include "zila/sched.h"
#include "zila/store.h"

#define ZILA_BEACON_PORT 7401          /* default UDP port of LAN beacons */
#define ZILA_BEACON_VERSION 1
/* version(1) | nonce(24) | XChaCha20-Poly1305 of device_pk(32) port(2) time_ms(8) | tag(16) */
#define ZILA_BEACON_LEN (1 + 24 + 42 + 16)
#define ZILA_BEACON_WINDOW_MS (60 * 60 * 1000ULL) /* beacons further from our clock are stale */
#define ZILA_CONTROL_SOCK "zila.sock" /* in the replica directory, mode 0600 */
#define ZILA_LOCK_FILE "zila.lock"    /* flock()ed by the running daemon */

/* Daemon settings kept in the replica's settings (zila_store_meta_get; command-line options
 * override them). The HQ address is ZILA_META_JOIN_HQ (trust.h), set by `zila join --hq` or
 * `zila peer add --hq`. */
#define ZILA_META_NET_PEERS "net.peers"             /* configured peers, "HOST:PORT" per line */
#define ZILA_META_NET_LISTEN "net.listen"           /* "ADDR:PORT" */
#define ZILA_META_NET_BEACON_PORT "net.beacon_port" /* decimal; "0" turns beacons off */
#define ZILA_META_NET_JOIN_NAME "net.join_name"     /* the name `zila join` asks HQ for */
/* Bookkeeping of the daemon: own entries (zila_store_counts.own_entries) that a completed
 * session had delivered to HQ, and to any peer. */
#define ZILA_META_NET_OWN_HQ "net.own_synced_hq"
#define ZILA_META_NET_OWN_ANY "net.own_synced_any"
/* What HQ refused of this device's entries in its last sessions, one line per feed:
 * "SEQ<TAB>CODE<TAB>WHEN<TAB>PART<TAB>REASON" (code positive, when in seconds since 1970).
 * Cleared once HQ holds every entry of ours. */
#define ZILA_META_NET_HQ_REFUSED "net.hq_refused"

/* --- beacons -------------------------------------------------------------------------- */

/* What a beacon says: who (device key), where (TCP port; the address is the datagram's
 * source) and when (sender's clock, for staleness and replays). */
struct zila_beacon {
	uint8_t device_pk[32];
	uint16_t port;
	uint64_t time_ms;
};

/* The beacon key of an organisation: a KDF subkey of its secret (zila_org_beacon_key), so
 * only enrolled devices can open (or forge) a beacon; the root's public key is no help. */
void zila_beacon_key(const uint8_t org_secret[32], uint8_t key[32]);
/* Seals b under key with a fresh random nonce into out (ZILA_BEACON_LEN bytes). */
void zila_beacon_seal(const uint8_t key[32], const struct zila_beacon *b, uint8_t out[ZILA_BEACON_LEN]);
/* Opens a received datagram: ZILA_EFORMAT (length), ZILA_EVERSION, or ZILA_EAUTH when it
 * was not sealed with key (another organisation, tampered). *out is cleared first. */
int zila_beacon_open(const uint8_t key[32], const uint8_t *p, size_t len, struct zila_beacon *out) ZILA_MUST_CHECK;

/* Remembers recent beacons: rejects a beacon from ourselves, one outside the window around
 * now_ms, and one not newer than the last accepted from the same device (a replay).
 * Returns 0 to accept (and records it), ZILA_EEXIST (ours or replayed), ZILA_EEXPIRED. */
#define ZILA_BEACON_SEEN_MAX 256
struct zila_beacon_seen {
	uint8_t self[32];
	struct {
		uint8_t device[32];
		uint64_t time_ms;
	} last[ZILA_BEACON_SEEN_MAX];
	size_t n, next;
};
void zila_beacon_seen_init(struct zila_beacon_seen *seen, const uint8_t self[32]);
int zila_beacon_accept(struct zila_beacon_seen *seen, const struct zila_beacon *b, uint64_t now_ms) ZILA_MUST_CHECK;

/* --- addresses ------------------------------------------------------------------------ */

/* Parses "HOST:PORT" or "[V6]:PORT" (host at most host_len-1 bytes, port 1..65535). */
int zila_hostport_parse(const char *s, char *host, size_t host_len, uint16_t *port) ZILA_MUST_CHECK;

/* --- the web interface (src/net/web.c, proto/web/API.md) ----------------------------- */

#define ZILA_META_WEB_LISTEN "web.listen" /* "ADDR:PORT" of the web interface, "off": none */
#define ZILA_WEB_LISTEN "127.0.0.1:7480"  /* its default */

/* A request to the web API that the server does not answer itself (it answers the login,
 * the session's secrets, status, events and sync); everything is borrowed for the call. The
 * server has checked the Host header, the session and, for POST, PUT and DELETE, the CSRF
 * token before. */
struct zila_web_call {
	const char *method; /* "GET", "POST", "PUT", "DELETE" */
	const char *path;   /* "/api/tables/people/rows", percent-decoded */
	const char *query;  /* "q=ram&offset=50", as sent (the handler decodes), "" for none */
	const char *body;   /* the request body, NUL-terminated, body_len bytes */
	size_t body_len;
	const char *role;   /* the session's: "owner" (a one-time link or the device's password),
			     * else an account's "admin", "viewer" or "district:<id>" */
	const char *account; /* the account's name, "" for the owner */
};
/* The answer: status, body (malloc'd; the server frees it), its content type ("" for
 * application/json) and, for a download, the file name it is offered under. */
struct zila_web_answer {
	int status;
	char *body;
	size_t body_len;
	char ctype[64];
	char filename[128];
	bool inline_file; /* a file to show in the page (a photo), not to save: Content-Disposition inline */
};
typedef void (*zila_web_api_fn)(void *ctx, const struct zila_web_call *call, struct zila_web_answer *ans);

/* --- the daemon ----------------------------------------------------------------------- */

/* What an outside part the CLI wires into the daemon (the PostgreSQL mirror) says of itself
 * in `zila status`. */
struct zila_daemon_watch_state {
	bool connected;        /* it reaches what it writes to */
	bool loaded;           /* its first complete copy is done */
	int64_t behind;        /* entries of the replica it has still to copy; -1: not known */
	int64_t last_ok;       /* unix seconds it was last in step; 0: never */
	char target[160];      /* where it writes (never a password) */
	char last_error[320];  /* its last failure in plain words; empty: none since */
};
/* A part that follows the replica on a thread of its own: started once the daemon holds the
 * replica's lock (a non-zero return stops the daemon), told (without blocking) after each
 * session that applied entries, asked for its state by status (without blocking). All are
 * called on the daemon's loop; ctx is the caller's, valid until zila_daemon_run returns. */
struct zila_daemon_watch {
	const char *name; /* "mirror" in status */
	int (*start)(void *ctx);
	void (*changed)(void *ctx);
	void (*state)(void *ctx, struct zila_daemon_watch_state *out);
	void *ctx;
};

struct zila_daemon_config {
	const char *dir;         /* the replica directory */
	const char *listen;      /* "ADDR:PORT"; NULL: the setting, else 0.0.0.0:ZILA_SYNC_PORT */
	int beacon_port;         /* -1: the setting, else ZILA_BEACON_PORT; 0: no beacons */
	const char **beacon_to;  /* extra beacon destinations "ADDR[:PORT]" (tests, routed LANs) */
	size_t nbeacon_to;
	unsigned max_sessions;   /* 0: 64 */
	unsigned idle_timeout_ms; /* a session with no byte read or written (taken by the kernel)
				  * this long fails (conn.c: session_alive_until); 0: 60 s */
	bool verbose;            /* debug lines in the log */
	const char *web_listen;  /* the web interface: "ADDR:PORT", "off"; NULL: the setting
				  * ZILA_META_WEB_LISTEN, else ZILA_WEB_LISTEN */
	zila_web_api_fn web_api; /* the office's pages (NULL: only status, events and sync) */
	void *web_ctx;
	/* Uploads and file contents (POST /api/attachments, GET /api/attachments/ID/content):
	 * called on a worker thread with the same ctx, so a 10 MB photo never holds the loop; it
	 * must not share anything with web_api's calls but what neither changes. NULL: web_api
	 * answers them on the loop. */
	zila_web_api_fn web_api_files;
	const char *web_cert, *web_key; /* TLS certificate and key (PEM); NULL: self-signed, made once */
	const char *const *web_names;   /* more names the interface answers to (NULL-terminated) */
	bool web_plain_lan;             /* a LAN address without TLS (refused at HQ) */
	const struct zila_daemon_watch *watch; /* NULL: none (the PostgreSQL mirror at HQ) */
};

/* Runs the daemon until SIGTERM, SIGINT or `zila stop`. Logs through zila_log (the caller
 * installs the sink). Returns 0 after a clean shutdown; ZILA_EBUSY when another daemon
 * runs on this replica; another code (err says why) when it cannot start. */
int zila_daemon_run(const struct zila_daemon_config *cfg, struct zila_error *err) ZILA_MUST_CHECK;

/* The log sink the daemon uses: "zila[pid]: level: msg" on stderr, or with "<N>" syslog
 * priority prefixes when stderr is journald's (JOURNAL_STREAM set). */
void zila_daemon_log_sink(void *ctx, enum zila_log_level level, const char *msg);

/* --- joining -------------------------------------------------------------------------- */

/* Dials HQ at hq ("HOST:PORT") with the invite code recorded in the replica (the trust hooks
 * must be installed on s), asks for a certificate under name, installs it and forgets the
 * code. Blocks for at most timeout_ms. Returns 0; ZILA_EIO (or a libuv code) when HQ could not
 * be reached (the daemon retries); another code, err saying why, when HQ refused. */
int zila_net_join(struct zila_store *s, const char *hq, const char *name, unsigned timeout_ms,
		  struct zila_error *err) ZILA_MUST_CHECK;

#endif
