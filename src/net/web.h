/* The local web interface's HTTP server (web.c): a listener on the daemon's loop, requests
 * parsed by llhttp, the login step (one-time tokens, session cookies), the Host, Origin and
 * CSRF checks, the embedded front end, and the status stream (SSE). What the answers say
 * comes from its owner (daemon.c) through struct web_hooks; web.c never calls the daemon.
 * The contract with the front end is proto/web/API.md. */
#ifndef ZILA_NET_WEB_H
#define ZILA_NET_WEB_H

#include <jansson.h>

#include "net_int.h"

#define WEB_PORT 7480
#define WEB_HEAD_MAX (16 * 1024)       /* request line and headers */
#define WEB_BODY_MAX (8u * 1024 * 1024) /* a request body (a CSV import) */
#define WEB_IDLE_MS 30000               /* a connection with no request this long is closed */
#define WEB_TOKEN_TTL_MS (5 * 60 * 1000) /* a login token not used this long expires */
#define WEB_SESSION_IDLE_MS (12ULL * 3600 * 1000)
#define WEB_TOKENS_MAX 16
#define WEB_SESSIONS_MAX 64
#define WEB_CONNS_MAX 128
#define WEB_PING_MS 20000 /* a comment line on an idle event stream */
#define WEB_TICK_MS 500   /* status pushed on the event streams at most this often */
#define WEB_SECRET_HEX 64 /* tokens, session ids and CSRF tokens: 32 random bytes in hex */

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
};

struct web_token {
	char token[WEB_SECRET_HEX + 1];
	uint64_t made_ms;
	bool used;
};

struct web_session {
	char id[WEB_SECRET_HEX + 1]; /* "" for a free slot */
	char csrf[WEB_SECRET_HEX + 1];
	uint64_t last_ms;
};

struct web_conn;

struct web {
	const struct net_env *env;
	struct web_hooks hooks;
	char listen[300];
	char hosts[4][300]; /* Host headers accepted: 127.0.0.1:P, localhost:P, [::1]:P, the listen address */
	size_t nhosts;
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
int web_start(struct web *w, const struct net_env *env, const char *listen, const struct web_hooks *hooks,
	      struct zila_error *err);
/* Closes the listener and every connection. */
void web_stop(struct web *w);
/* A new one-time login token into out (WEB_SECRET_HEX hex digits and a NUL); 0, or -1 when
 * the server does not run. */
int web_token_new(struct web *w, char out[WEB_SECRET_HEX + 1]);

#endif
