/* The local web interface's HTTP server (web.c): a listener on the daemon's loop, requests
 * parsed by llhttp, the login step (one-time tokens, session cookies), the Host, Origin and
 * CSRF checks, the embedded front end, and the status stream (SSE). What the answers say
 * comes from its owner (daemon.c) through struct web_hooks; web.c never calls the daemon.
 * The contract with the front end is proto/web/API.md. */
#ifndef ZILA_NET_WEB_H
#define ZILA_NET_WEB_H

#include <jansson.h>

#include "net_int.h"
#include "webtls.h"
#include "zila/webauth.h"

#define WEB_PORT 7480
#define WEB_HEAD_MAX (16 * 1024)       /* request line and headers */
#define WEB_BODY_MAX (8u * 1024 * 1024) /* a request body (a CSV import) */
#define WEB_UPLOAD_MAX (32u * 1024 * 1024) /* the body of an upload (POST /api/attachments): a photo before
					    * it is shrunk; the office's own limit (attach.max_bytes) comes after */
#define WEB_IDLE_MS 30000               /* a connection with no request this long is closed */
#define WEB_TOKEN_TTL_MS (5 * 60 * 1000) /* a login token not used this long expires */
#define WEB_SESSION_IDLE_MS (12ULL * 3600 * 1000)
#define WEB_TOKENS_MAX 16
#define WEB_SESSIONS_MAX 64
#define WEB_CONNS_MAX 128
#define WEB_PING_MS 20000 /* a comment line on an idle event stream */
#define WEB_TICK_MS 500   /* status pushed on the event streams at most this often */
#define WEB_SECRET_HEX 64 /* tokens, session ids and CSRF tokens: 32 random bytes in hex */
#define WEB_SESSION_MAX_MS (24ULL * 3600 * 1000) /* a session ends this long after its login */
#define WEB_HOSTS_MAX 32
#define WEB_FAILS_MAX 256     /* source addresses whose wrong passwords are remembered */
#define WEB_FAIL_FORGET_MS (3600ULL * 1000) /* an address with no wrong password this long starts again */
#define WEB_FAIL_WAIT_MAX_MS (15ULL * 60 * 1000) /* the longest wait after wrong passwords */
#define WEB_FAIL_FREE 2       /* wrong passwords in a row before the waits begin (typing slips) */
#define WEB_VERIFY_MAX 4      /* password checks (64 MiB of Argon2id each) at once */

/* One file of the front end, embedded in the binary (build/gen/web_assets.c, made by
 * tools/webapi/embed_dir.sh from build/web/dist). */
struct zila_web_asset {
	const char *path; /* "/index.html" */
	const char *ctype;
	const unsigned char *data;
	size_t len;
};
extern const struct zila_web_asset zila_web_assets[];
extern const size_t zila_web_nassets;

struct web_hooks {
	json_t *(*status)(void *ctx); /* the status object, the caller's to free */
	/* Starts a sync with peer (NULL: everyone, "hq": HQ); -1 with msg set when it cannot. */
	int (*sync)(void *ctx, const char *peer, char *msg, size_t msg_len);
	void *ctx;
	/* Every other /api/ request (the office's pages), from the daemon's configuration. */
	zila_web_api_fn api;
	void *api_ctx;
	/* Uploads and file contents, on a worker thread (NULL: through api, on the loop). */
	zila_web_api_fn api_files;
};

struct web_token {
	char token[WEB_SECRET_HEX + 1];
	uint64_t made_ms;
	bool used;
};

struct web_session {
	char id[WEB_SECRET_HEX + 1]; /* "" for a free slot */
	char csrf[WEB_SECRET_HEX + 1];
	uint64_t last_ms, made_ms;
	char role[ZILA_WEBAUTH_ROLE_MAX + 1];    /* "owner" (a one-time link, the password), an account's */
	char account[ZILA_WEBAUTH_NAME_MAX + 1]; /* "" but for an account */
	bool by_password;
	uint8_t cred[16]; /* of the hash and role it logged in with: a change or removal ends it */
};

/* Wrong passwords from one source address: each doubles the wait before the next try. */
struct web_fail {
	char addr[64]; /* "" for a free slot */
	unsigned n;
	uint64_t last_ms, until_ms;
};

/* How the interface is served, besides its address (all borrowed for web_start's call). */
struct web_opts {
	const char *dir;                /* the replica directory: its web-auth.json, its certificate */
	const char *cert, *key;         /* TLS certificate and key files; NULL: made in dir when TLS is on */
	const char *const *names;       /* more Host names accepted (NULL-terminated), may be NULL */
	bool plain_lan;                 /* a LAN address without TLS (--web-plain-lan) */
	bool hq;                        /* this device is HQ: the LAN only with TLS */
};

struct web_conn;

struct web {
	const struct net_env *env;
	struct web_hooks hooks;
	char listen[300];
	char dir[4096];
	char hosts[WEB_HOSTS_MAX][300]; /* Host headers accepted: loopback names, the listen address, --web-name */
	size_t nhosts;
	bool lan;                       /* listens on a non-loopback address */
	struct webtls_ctx *tls;         /* NULL: plain HTTP */
	char fingerprint[ZILA_WEBTLS_FP_LEN + 1];
	struct web_fail fails[WEB_FAILS_MAX];
	unsigned nverify;
	uv_tcp_t listener;
	uv_timer_t timer;
	bool listening, timer_on;
	struct web_conn *conns;
	size_t nconns;
	struct web_token tokens[WEB_TOKENS_MAX];
	struct web_session sessions[WEB_SESSIONS_MAX];
	char *last_status; /* what the event streams last got */
	uint64_t last_ping_ms;
};

/* Listens on listen ("ADDR:PORT"). On failure err says why; web_stop is still to be called. */
int web_start(struct web *w, const struct net_env *env, const char *listen, const struct web_opts *opts,
	      const struct web_hooks *hooks, struct zila_error *err);
/* The link's base for `zila open`: "http://127.0.0.1:7480" or "https://ADDR:PORT". */
void web_base_url(const struct web *w, char *out, size_t n);
/* Closes the listener and every connection. */
void web_stop(struct web *w);
/* A new one-time login token into out (WEB_SECRET_HEX hex digits and a NUL); 0, or -1 when
 * the server does not run. */
int web_token_new(struct web *w, char out[WEB_SECRET_HEX + 1]);

#endif
