/* The local web interface's HTTP server: llhttp parses, this file checks (Host, Origin,
 * session cookie, CSRF token) and answers the login, the status, its event stream and the
 * embedded front end; the office's pages are answered through web_hooks.api. The rules are
 * in proto/web/API.md. */
#include <llhttp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "web.h"
#include "zila/buf.h"
#include "zila/log.h"

enum conn_state { C_READING, C_WAITING, C_SSE, C_CLOSING }; /* C_WAITING: a password check runs */

struct web_conn {
	struct web_conn *next;
	struct web *w;
	uv_tcp_t tcp;
	llhttp_t parser;
	enum conn_state state;
	struct zila_buf url, field, value, body;
	size_t head_bytes;
	bool too_big;
	bool upload; /* POST /api/attachments: a larger body, answered on a worker thread */
	/* the headers the checks need */
	char host[300], origin[300], csrf[WEB_SECRET_HEX + 8], session[WEB_SECRET_HEX + 8];
	unsigned nwrites; /* writes in flight, and a password check (the connection outlives both) */
	uint64_t last_ms;
	char peer[64];     /* the source address, for the wrong-password waits */
	struct webtls *tls; /* NULL: plain HTTP */
	bool tls_seen;      /* the first bytes came (a plain HTTP request on the TLS port is refused) */
	struct zila_buf plain, wire;
};

struct web_write {
	uv_write_t req;
	struct web_conn *c;
	char *p;
};

static uint64_t now_ms(const struct web *w)
{
	return uv_now(w->env->loop);
}

static void random_hex(char out[WEB_SECRET_HEX + 1])
{
	uint8_t b[WEB_SECRET_HEX / 2];
	randombytes_buf(b, sizeof(b));
	sodium_bin2hex(out, WEB_SECRET_HEX + 1, b, sizeof(b));
	sodium_memzero(b, sizeof(b));
}

/* Equal secrets, in constant time; an empty or wrongly sized one never matches. */
static bool secret_eq(const char *a, const char *b)
{
	return strlen(a) == WEB_SECRET_HEX && strlen(b) == WEB_SECRET_HEX && sodium_memcmp(a, b, WEB_SECRET_HEX) == 0;
}

/* --- connections ----------------------------------------------------------------------------- */

static void on_closed(uv_handle_t *h)
{
	struct web_conn *c = h->data;
	zila_buf_release(&c->url);
	zila_buf_release(&c->field);
	zila_buf_release(&c->value);
	zila_buf_release(&c->body);
	zila_buf_release(&c->plain);
	zila_buf_release(&c->wire);
	webtls_free(c->tls);
	free(c);
}

static void conn_close(struct web_conn *c)
{
	if (c->state == C_CLOSING && uv_is_closing((uv_handle_t *)&c->tcp))
		return;
	c->state = C_CLOSING;
	if (c->nwrites > 0)
		return; /* closed when the last write completes */
	struct web *w = c->w;
	for (struct web_conn **pp = &w->conns; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			w->nconns--;
			break;
		}
	uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_written(uv_write_t *req, int status)
{
	struct web_write *wr = container_of(req, struct web_write, req);
	struct web_conn *c = wr->c;
	free(wr->p);
	free(wr);
	c->nwrites--;
	if (status != 0 && c->state != C_CLOSING)
		c->state = C_CLOSING;
	if (c->state == C_CLOSING && c->nwrites == 0)
		conn_close(c);
}

static void send_raw(struct web_conn *c, char *p, size_t len)
{
	struct web_write *wr = malloc(sizeof(*wr));
	if (wr == NULL) {
		free(p);
		conn_close(c);
		return;
	}
	wr->c = c;
	wr->p = p;
	uv_buf_t b = uv_buf_init(p, (unsigned)len);
	c->nwrites++;
	if (uv_write(&wr->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) {
		c->nwrites--;
		free(p);
		free(wr);
		conn_close(c);
	}
}

/* Sends p (malloc'd, taken), through TLS when the connection has it. */
static void send_bytes(struct web_conn *c, char *p, size_t len)
{
	if (c->tls == NULL) {
		send_raw(c, p, len);
		return;
	}
	c->wire.len = 0;
	int r = webtls_write(c->tls, p, len, &c->wire);
	free(p);
	if (r != 0) {
		conn_close(c);
		return;
	}
	char *q = malloc(c->wire.len ? c->wire.len : 1);
	if (q == NULL) {
		conn_close(c);
		return;
	}
	memcpy(q, c->wire.p, c->wire.len);
	send_raw(c, q, c->wire.len);
}

static const char *reason_phrase(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 421: return "Misdirected Request";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 503: return "Service Unavailable";
	default: return status < 500 ? "Bad Request" : "Internal Server Error";
	}
}

#define SECURITY_HEADERS                                                                                        \
	"Content-Security-Policy: default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; " \
	"frame-ancestors 'none'\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n"

/* Sends one answer; extra is more header lines ("Name: value\r\n"), may be NULL. */
static void respond(struct web_conn *c, int status, const char *ctype, const char *extra, const void *body,
		    size_t len, bool head_only)
{
	if (c->state == C_CLOSING)
		return;
	bool keep = llhttp_should_keep_alive(&c->parser) && !c->too_big && status < 500;
	char head[2048];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: %s\r\n"
			 "%s%sConnection: %s\r\n\r\n",
			 status, reason_phrase(status), ctype, len,
			 strncmp(ctype, "application/json", 16) == 0 ? "no-store" : "no-cache", SECURITY_HEADERS,
			 extra ? extra : "", keep ? "keep-alive" : "close");
	if (n < 0 || (size_t)n >= sizeof(head)) {
		conn_close(c);
		return;
	}
	size_t blen = head_only ? 0 : len;
	char *p = malloc((size_t)n + blen + 1);
	if (p == NULL) {
		conn_close(c);
		return;
	}
	memcpy(p, head, (size_t)n);
	if (blen)
		memcpy(p + n, body, blen);
	send_bytes(c, p, (size_t)n + blen);
	if (!keep)
		c->state = C_CLOSING; /* closed when the answer is written */
}

static void respond_json(struct web_conn *c, int status, json_t *o, const char *extra)
{
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (s == NULL) {
		static const char oom[] = "{\"error\":\"out of memory\",\"code\":\"internal\"}";
		respond(c, 500, "application/json; charset=utf-8", NULL, oom, sizeof(oom) - 1, false);
		return;
	}
	respond(c, status, "application/json; charset=utf-8", extra, s, strlen(s), false);
	free(s);
}

static void respond_error(struct web_conn *c, int status, const char *code, const char *msg)
{
	respond_json(c, status, json_pack("{s:s, s:s}", "error", msg, "code", code), NULL);
}

/* --- sessions and tokens --------------------------------------------------------------------- */

int web_token_new(struct web *w, char out[WEB_SECRET_HEX + 1])
{
	out[0] = '\0';
	if (!w->listening)
		return -1;
	uint64_t now = now_ms(w);
	struct web_token *slot = &w->tokens[0];
	for (size_t i = 0; i < WEB_TOKENS_MAX; i++) {
		struct web_token *t = &w->tokens[i];
		bool free_slot = t->token[0] == '\0' || t->used || now - t->made_ms > WEB_TOKEN_TTL_MS;
		if (free_slot) {
			slot = t;
			break;
		}
		if (t->made_ms < slot->made_ms)
			slot = t; /* else the oldest makes room */
	}
	random_hex(slot->token);
	slot->made_ms = now;
	slot->used = false;
	memcpy(out, slot->token, WEB_SECRET_HEX + 1);
	return 0;
}

static struct web_session *session_of(struct web *w, const char *id)
{
	uint64_t now = now_ms(w);
	for (size_t i = 0; i < WEB_SESSIONS_MAX; i++) {
		struct web_session *s = &w->sessions[i];
		if (s->id[0] == '\0' || !secret_eq(s->id, id))
			continue;
		if (now - s->last_ms > WEB_SESSION_IDLE_MS || now - s->made_ms > WEB_SESSION_MAX_MS) {
			sodium_memzero(s, sizeof(*s));
			return NULL;
		}
		s->last_ms = now;
		return s;
	}
	return NULL;
}

static struct web_session *session_new(struct web *w, const char *role, const char *account)
{
	struct web_session *slot = &w->sessions[0];
	for (size_t i = 0; i < WEB_SESSIONS_MAX; i++) {
		if (w->sessions[i].id[0] == '\0') {
			slot = &w->sessions[i];
			break;
		}
		if (w->sessions[i].last_ms < slot->last_ms)
			slot = &w->sessions[i];
	}
	random_hex(slot->id);
	random_hex(slot->csrf);
	slot->last_ms = slot->made_ms = now_ms(w);
	slot->by_password = false;
	snprintf(slot->role, sizeof(slot->role), "%s", role);
	snprintf(slot->account, sizeof(slot->account), "%s", account);
	return slot;
}

/* What a password session logged in with (its hash and role), as a short digest. */
static void cred_of(const char *hash, const char *role, uint8_t out[16])
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, 16);
	crypto_generichash_update(&st, (const unsigned char *)hash, strlen(hash) + 1);
	crypto_generichash_update(&st, (const unsigned char *)role, strlen(role) + 1);
	crypto_generichash_final(&st, out, 16);
}

/* A password session holds while its account (or the device's password) is as it was. */
static bool session_still_valid(const struct web *w, const struct web_session *s)
{
	char hash[256], role[ZILA_WEBAUTH_ROLE_MAX + 1];
	uint8_t cred[16];
	if (!s->by_password)
		return true;
	if (zila_webauth_lookup(w->dir, s->account, hash, sizeof(hash), role) != 0)
		return false;
	cred_of(hash, role, cred);
	return sodium_memcmp(cred, s->cred, sizeof(cred)) == 0;
}

/* The session cookie: Secure when the interface speaks TLS. */
static struct web_session *login_ok(struct web_conn *c, const char *role, const char *account)
{
	struct web *w = c->w;
	struct web_session *s = session_new(w, role, account);
	char cookie[WEB_SECRET_HEX + 128];
	snprintf(cookie, sizeof(cookie), "Set-Cookie: zila_session=%s; Path=/; HttpOnly; SameSite=Strict%s\r\n", s->id,
		 w->tls ? "; Secure" : "");
	respond_json(c, 200, json_pack("{s:b, s:s}", "ok", 1, "csrf", s->csrf), cookie);
	return s;
}

/* The wrong-password record of addr (NULL: none; make: a slot for it, the oldest reused). */
static struct web_fail *fail_of(struct web *w, const char *addr, bool make)
{
	uint64_t now = now_ms(w);
	struct web_fail *old = &w->fails[0];
	for (size_t i = 0; i < WEB_FAILS_MAX; i++) {
		struct web_fail *f = &w->fails[i];
		if (f->addr[0] != '\0' && now - f->last_ms > WEB_FAIL_FORGET_MS && now >= f->until_ms)
			memset(f, 0, sizeof(*f));
		if (f->addr[0] != '\0' && strcmp(f->addr, addr) == 0)
			return f;
		if (f->addr[0] == '\0' || (old->addr[0] != '\0' && f->last_ms < old->last_ms))
			old = f;
	}
	if (!make)
		return NULL;
	memset(old, 0, sizeof(*old));
	snprintf(old->addr, sizeof(old->addr), "%s", addr);
	return old;
}

struct web_verify {
	uv_work_t req;
	struct web_conn *c;
	char hash[256];
	char role[ZILA_WEBAUTH_ROLE_MAX + 1];
	char account[ZILA_WEBAUTH_NAME_MAX + 1];
	char *pw; /* sodium_malloc'd */
	size_t pw_len;
	bool found, ok;
};

static void verify_work(uv_work_t *req)
{
	struct web_verify *v = container_of(req, struct web_verify, req);
	/* The check runs whether or not the name exists (its hash is then a decoy): a wrong name
	 * and a wrong password take the same time. */
	bool ok = zila_webauth_verify(v->hash, v->pw, v->pw_len);
	v->ok = ok && v->found;
}

static void verify_done(uv_work_t *req, int status)
{
	struct web_verify *v = container_of(req, struct web_verify, req);
	struct web_conn *c = v->c;
	struct web *w = c->w;
	net_store_claim(w->env);
	sodium_free(v->pw);
	w->nverify--;
	c->nwrites--;
	if (c->state != C_WAITING) { /* closed meanwhile */
		if (c->state == C_CLOSING && c->nwrites == 0)
			conn_close(c);
		free(v);
		return;
	}
	c->state = C_READING;
	if (status == 0 && v->ok) {
		struct web_fail *f = fail_of(w, c->peer, false);
		if (f != NULL)
			memset(f, 0, sizeof(*f));
		zila_log(ZILA_LOG_INFO, "web: %s%s%s logged in with a password from %s", v->account[0] ? "account '" : "the owner",
			 v->account, v->account[0] ? "'" : "", c->peer);
		struct web_session *s = login_ok(c, v->role, v->account);
		s->by_password = true;
		cred_of(v->hash, v->role, s->cred);
	} else {
		struct web_fail *f = fail_of(w, c->peer, true);
		uint64_t now = now_ms(w);
		f->n++;
		f->last_ms = now;
		/* A slip or two costs nothing but the check's own time; then each wrong one doubles the
		 * wait before the next try: 1 s, 2 s, 4 s, ... at most WEB_FAIL_WAIT_MAX_MS. */
		unsigned k = f->n > WEB_FAIL_FREE ? f->n - WEB_FAIL_FREE : 0;
		uint64_t wait = k == 0 ? 0 : k > 20 ? WEB_FAIL_WAIT_MAX_MS : 1000ULL << (k - 1);
		f->until_ms = now + (wait < WEB_FAIL_WAIT_MAX_MS ? wait : WEB_FAIL_WAIT_MAX_MS);
		zila_log(ZILA_LOG_WARN, "web: a wrong name or password from %s (%u in a row; the next try waits %llu s)", c->peer,
			 f->n, (unsigned long long)(wait / 1000));
		respond_error(c, 401, "bad_password", "wrong name or password");
	}
	free(v);
	if (c->state == C_READING && llhttp_get_errno(&c->parser) == HPE_PAUSED)
		llhttp_resume(&c->parser);
}

/* POST /api/login {"password": P, "name"?: N}: checked off the loop (Argon2id), after the
 * wait that earlier wrong passwords from this address earned. */
static void login_password(struct web_conn *c, const char *name, const char *pw)
{
	struct web *w = c->w;
	if (!zila_webauth_any(w->dir)) {
		respond_error(c, 400, "no_password",
			      "no password is set for this interface: on this computer run 'zila open', or set one with "
			      "'zila web password'");
		return;
	}
	struct web_fail *f = fail_of(w, c->peer, false);
	uint64_t now = now_ms(w);
	if (f != NULL && now < f->until_ms) {
		unsigned secs = (unsigned)((f->until_ms - now + 999) / 1000);
		char extra[64], msg[160];
		snprintf(extra, sizeof(extra), "Retry-After: %u\r\n", secs);
		snprintf(msg, sizeof(msg), "too many wrong passwords from this computer: try again in %u s", secs);
		respond_json(c, 429, json_pack("{s:s, s:s, s:i}", "error", msg, "code", "slow_down", "retry_after", secs),
			     extra);
		return;
	}
	if (w->nverify >= WEB_VERIFY_MAX) {
		respond_error(c, 503, "busy", "too many logins at once: try again in a moment");
		return;
	}
	struct web_verify *v = calloc(1, sizeof(*v));
	size_t n = strlen(pw);
	if (v == NULL || n > ZILA_WEBAUTH_PASSWORD_MAX || (v->pw = sodium_malloc(n + 1)) == NULL) {
		free(v);
		respond_error(c, n > ZILA_WEBAUTH_PASSWORD_MAX ? 401 : 503, n > ZILA_WEBAUTH_PASSWORD_MAX ? "bad_password" : "busy",
			      n > ZILA_WEBAUTH_PASSWORD_MAX ? "wrong name or password" : "out of memory");
		return;
	}
	memcpy(v->pw, pw, n + 1);
	v->pw_len = n;
	v->c = c;
	v->found = zila_webauth_lookup(w->dir, name, v->hash, sizeof(v->hash), v->role) == 0;
	snprintf(v->account, sizeof(v->account), "%s", name ? name : "");
	if (uv_queue_work(w->env->loop, &v->req, verify_work, verify_done) != 0) {
		sodium_free(v->pw);
		free(v);
		respond_error(c, 503, "busy", "cannot check the password now: try again");
		return;
	}
	w->nverify++;
	c->nwrites++; /* the connection waits for the check */
	c->state = C_WAITING;
}

/* POST /api/login {"token": T}: a token is good once, for WEB_TOKEN_TTL_MS; or a password. */
static void do_login(struct web_conn *c)
{
	struct web *w = c->w;
	json_t *req = json_loadb((const char *)c->body.p, c->body.len, 0, NULL);
	const char *tok = json_string_value(json_object_get(req, "token"));
	const char *pw = json_string_value(json_object_get(req, "password"));
	const char *name = json_string_value(json_object_get(req, "name"));
	if (tok == NULL && pw != NULL) {
		login_password(c, name, pw);
		json_decref(req); /* jansson frees the password's copy; the body buffer is reused */
		sodium_memzero(c->body.p, c->body.len);
		return;
	}
	if (tok == NULL) {
		json_decref(req);
		respond_error(c, 400, "invalid", "the login needs a token ('zila open') or a password");
		return;
	}
	struct web_token *hit = NULL;
	for (size_t i = 0; i < WEB_TOKENS_MAX; i++)
		if (w->tokens[i].token[0] != '\0' && secret_eq(w->tokens[i].token, tok))
			hit = &w->tokens[i];
	json_decref(req);
	if (hit == NULL || now_ms(w) - hit->made_ms > WEB_TOKEN_TTL_MS) {
		respond_error(c, 401, "bad_token", "this login link is not valid (or older than 5 minutes): run 'zila open' again");
		return;
	}
	if (hit->used) {
		respond_error(c, 401, "token_used", "this login link was used already: run 'zila open' again");
		return;
	}
	hit->used = true;
	zila_log(ZILA_LOG_INFO, "web: a login with a one-time token");
	login_ok(c, "owner", "");
}

/* --- requests -------------------------------------------------------------------------------- */

static bool host_ok(const struct web *w, const char *host)
{
	for (size_t i = 0; i < w->nhosts; i++)
		if (strcasecmp(w->hosts[i], host) == 0)
			return true;
	return false;
}

/* The Origin header, when a browser sent one, is the page's own: http(s)://HOST. */
static bool origin_ok(const struct web *w, const char *origin)
{
	if (origin[0] == '\0')
		return true;
	const char *scheme = w->tls ? "https://" : "http://";
	size_t n = strlen(scheme);
	if (strncmp(origin, scheme, n) != 0)
		return false;
	return host_ok(w, origin + n);
}

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Percent-decodes the path in place; false for a %00 or a bad escape. */
static bool path_decode(char *s)
{
	char *o = s;
	for (char *p = s; *p; p++) {
		if (*p == '%') {
			int a = hexval((unsigned char)p[1]), b = a < 0 ? -1 : hexval((unsigned char)p[2]);
			if (b < 0 || (a == 0 && b == 0))
				return false;
			*o++ = (char)(a * 16 + b);
			p += 2;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	return true;
}

static const struct zila_web_asset *asset_find(const char *path)
{
	for (size_t i = 0; i < zila_web_nassets; i++)
		if (strcmp(zila_web_assets[i].path, path) == 0)
			return &zila_web_assets[i];
	return NULL;
}

static void serve_static(struct web_conn *c, const char *path, bool head)
{
	const struct zila_web_asset *a = asset_find(strcmp(path, "/") == 0 ? "/index.html" : path);
	if (a == NULL)
		a = asset_find("/index.html"); /* the front end's own routes */
	if (a == NULL) {
		static const char page[] =
			"<!doctype html><meta charset=utf-8><title>zila</title><p>The web interface of zila was not "
			"built into this program (build it with <code>make web</code>, then <code>make</code>). The "
			"API under /api/ works.</p>";
		respond(c, 200, "text/html; charset=utf-8", NULL, page, sizeof(page) - 1, head);
		return;
	}
	respond(c, 200, a->ctype, NULL, a->data, a->len, head);
}

static void sse_send(struct web_conn *c, const char *text)
{
	char *p = strdup(text);
	if (p == NULL) {
		conn_close(c);
		return;
	}
	send_bytes(c, p, strlen(p));
}

static char *status_event(struct web *w)
{
	json_t *o = w->hooks.status(w->hooks.ctx);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (s == NULL)
		return NULL;
	size_t n = strlen(s) + 32;
	char *ev = malloc(n);
	if (ev != NULL)
		snprintf(ev, n, "event: status\ndata: %s\n\n", s);
	free(s);
	return ev;
}

static void start_sse(struct web_conn *c)
{
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
				   "Cache-Control: no-store\r\n" SECURITY_HEADERS "Connection: keep-alive\r\n\r\n";
	sse_send(c, head);
	c->state = C_SSE;
	char *ev = status_event(c->w);
	if (ev != NULL)
		send_bytes(c, ev, strlen(ev));
}

static void do_sync(struct web_conn *c)
{
	json_t *req = c->body.len ? json_loadb((const char *)c->body.p, c->body.len, 0, NULL) : NULL;
	const char *peer = json_string_value(json_object_get(req, "peer"));
	char msg[400] = "";
	if (c->w->hooks.sync(c->w->hooks.ctx, peer, msg, sizeof(msg)) < 0)
		respond_error(c, 409, "sync", msg[0] ? msg : "no peer to sync with");
	else
		respond_json(c, 202, json_pack("{s:b}", "started", 1), NULL);
	json_decref(req);
}

/* A file name for Content-Disposition: filename="..." keeps letters, digits and ._- of it (the
 * rest '_'), filename*=UTF-8''... the name itself, percent-encoded (RFC 6266): no quote, no line
 * break, nothing of a header can come from a name a peer chose. */
static void disposition(const struct zila_web_answer *ans, char *out, size_t n)
{
	char plain[sizeof(ans->filename)], enc[sizeof(ans->filename) * 3 + 1];
	size_t k = 0, e = 0;
	for (const unsigned char *p = (const unsigned char *)ans->filename; *p && k < sizeof(plain) - 1; p++) {
		bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
			  *p == '_' || *p == '-';
		plain[k++] = ok ? (char)*p : '_';
		if (ok) {
			enc[e++] = (char)*p;
		} else {
			static const char hx[] = "0123456789ABCDEF";
			enc[e++] = '%';
			enc[e++] = hx[*p >> 4];
			enc[e++] = hx[*p & 15];
		}
	}
	plain[k] = enc[e] = '\0';
	snprintf(out, n, "Content-Disposition: %s; filename=\"%s\"; filename*=UTF-8''%s\r\n%s",
		 ans->inline_file ? "inline" : "attachment", plain, enc,
		 /* a file of a peer's is never a page of ours: no script of it runs here */
		 strncmp(ans->ctype, "text/csv", 8) == 0 ? "" : "Content-Security-Policy: sandbox\r\n");
}

/* Sends the office's answer (and frees its body). */
static void send_answer(struct web_conn *c, struct zila_web_answer *ans)
{
	char extra[900] = "";
	if (ans->filename[0])
		disposition(ans, extra, sizeof(extra));
	if (ans->body == NULL) {
		respond_error(c, ans->status >= 400 ? ans->status : 500, "internal", "the request could not be answered");
		return;
	}
	respond(c, ans->status, ans->ctype[0] ? ans->ctype : "application/json; charset=utf-8", extra, ans->body,
		ans->body_len, false);
	free(ans->body);
	ans->body = NULL;
}

/* The office's pages: through the hook; GET /api/session gets the CSRF token added. */
static void do_api(struct web_conn *c, const char *method, const char *path, const char *query,
		   const struct web_session *s)
{
	struct web *w = c->w;
	if (w->hooks.api == NULL) {
		respond_error(c, 404, "not_found", "this daemon serves no pages");
		return;
	}
	if (zila_buf_put(&c->body, "", 1) != 0) { /* NUL-terminate for the handler */
		respond_error(c, 413, "too_big", "the request is too big");
		return;
	}
	struct zila_web_call call = { method, path, query, (const char *)c->body.p, c->body.len - 1, s->role, s->account };
	struct zila_web_answer ans;
	memset(&ans, 0, sizeof(ans));
	ans.status = 500;
	w->hooks.api(w->hooks.api_ctx, &call, &ans);
	if (strcmp(path, "/api/session") == 0 && ans.status == 200) {
		json_t *o = json_loadb(ans.body ? ans.body : "", ans.body_len, 0, NULL);
		json_object_set_new(o, "csrf", json_string(s->csrf));
		json_object_set_new(o, "account", json_pack("{s:s, s:s}", "name", s->account, "role", s->role));
		free(ans.body);
		respond_json(c, 200, o, NULL);
		return;
	}
	send_answer(c, &ans);
}

/* The office's answers to uploads and file contents: on a worker thread, so that a 10 MB photo
 * (hashed, perhaps shrunk, written and synced to disk) never holds the loop. The connection
 * waits (C_WAITING) and outlives the job, as for a password check. */
struct web_job {
	uv_work_t req;
	struct web_conn *c;
	zila_web_api_fn fn;
	void *ctx;
	char method[8];
	char *path, *query;
	char role[ZILA_WEBAUTH_ROLE_MAX + 1];
	char account[ZILA_WEBAUTH_NAME_MAX + 1];
	struct zila_web_answer ans;
};

static void job_work(uv_work_t *req)
{
	struct web_job *j = container_of(req, struct web_job, req);
	struct web_conn *c = j->c;
	/* The body stays the connection's: nothing touches it while the connection waits. */
	struct zila_web_call call = { j->method, j->path, j->query, (const char *)c->body.p, c->body.len - 1, j->role,
				      j->account };
	j->fn(j->ctx, &call, &j->ans);
}

static void job_free(struct web_job *j)
{
	free(j->ans.body);
	free(j->path);
	free(j->query);
	free(j);
}

static void job_done(uv_work_t *req, int status)
{
	struct web_job *j = container_of(req, struct web_job, req);
	struct web_conn *c = j->c;
	net_store_claim(c->w->env);
	c->nwrites--;
	if (c->state != C_WAITING) { /* closed meanwhile */
		if (c->state == C_CLOSING && c->nwrites == 0)
			conn_close(c);
		job_free(j);
		return;
	}
	c->state = C_READING;
	if (status != 0)
		respond_error(c, 503, "busy", "the request was cancelled: try again");
	else
		send_answer(c, &j->ans);
	j->ans.body = NULL; /* send_answer freed it */
	job_free(j);
	if (c->body.cap > WEB_BODY_MAX + 1)
		zila_buf_release(&c->body); /* an upload's megabytes go back at once */
	if (c->state == C_READING && llhttp_get_errno(&c->parser) == HPE_PAUSED)
		llhttp_resume(&c->parser);
}

static void do_api_files(struct web_conn *c, const char *method, const char *path, const char *query,
			 const struct web_session *s)
{
	struct web *w = c->w;
	struct web_job *j = calloc(1, sizeof(*j));
	if (j == NULL || zila_buf_put(&c->body, "", 1) != 0 || (j->path = strdup(path)) == NULL ||
	    (j->query = strdup(query)) == NULL) {
		if (j != NULL)
			job_free(j);
		respond_error(c, 503, "busy", "out of memory: try again");
		return;
	}
	j->c = c;
	j->fn = w->hooks.api_files;
	j->ctx = w->hooks.api_ctx;
	snprintf(j->method, sizeof(j->method), "%s", method);
	snprintf(j->role, sizeof(j->role), "%s", s->role);
	snprintf(j->account, sizeof(j->account), "%s", s->account);
	j->ans.status = 500;
	if (uv_queue_work(w->env->loop, &j->req, job_work, job_done) != 0) {
		job_free(j);
		respond_error(c, 503, "busy", "cannot take the file now: try again");
		return;
	}
	c->nwrites++; /* the connection waits for the job */
	c->state = C_WAITING;
}

/* Uploads and file contents go to the worker: POST /api/attachments, GET /api/attachments/ID/content. */
static bool is_file_request(const char *method, const char *path)
{
	static const char pre[] = "/api/attachments";
	size_t n = sizeof(pre) - 1, len = strlen(path);
	if (strncmp(path, pre, n) != 0)
		return false;
	if (strcmp(method, "POST") == 0)
		return path[n] == '\0';
	return strcmp(method, "GET") == 0 && len > n + 8 && path[n] == '/' && strcmp(path + len - 8, "/content") == 0;
}

static void handle(struct web_conn *c)
{
	struct web *w = c->w;
	const char *method = llhttp_method_name((llhttp_method_t)c->parser.method);
	bool get = strcmp(method, "GET") == 0, head = strcmp(method, "HEAD") == 0;
	bool changes = strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 || strcmp(method, "DELETE") == 0;
	if (zila_buf_put(&c->url, "", 1) != 0) {
		respond_error(c, 431, "too_big", "the request line is too long");
		return;
	}
	char *path = (char *)c->url.p;
	char *hash = strchr(path, '#');
	if (hash != NULL)
		*hash = '\0';
	char *q = strchr(path, '?');
	const char *query = "";
	if (q != NULL) {
		*q = '\0';
		query = q + 1;
	}
	/* DNS rebinding: a page of another name that resolves to us must get nothing. */
	if (!host_ok(w, c->host)) {
		zila_log(ZILA_LOG_DEBUG, "web: refused a request for host '%.60s'", c->host);
		respond_error(c, 421, "host", "this interface answers only at its own address (127.0.0.1, localhost or its configured name)");
		return;
	}
	if (path[0] != '/' || !path_decode(path) || strstr(path, "/..") != NULL) {
		respond_error(c, 400, "invalid", "bad path");
		return;
	}
	if (strncmp(path, "/api/", 5) != 0) {
		if (get || head)
			serve_static(c, path, head);
		else
			respond_error(c, 405, "method", "only GET here");
		return;
	}
	if (changes && !origin_ok(w, c->origin)) {
		respond_error(c, 403, "csrf", "a request from another site is refused");
		return;
	}
	if (strcmp(path, "/api/login") == 0) {
		if (strcmp(method, "POST") == 0)
			do_login(c);
		else
			respond_error(c, 405, "method", "POST the one-time token here");
		return;
	}
	struct web_session *s = c->session[0] ? session_of(w, c->session) : NULL;
	if (s != NULL && !session_still_valid(w, s)) {
		sodium_memzero(s, sizeof(*s)); /* its account was removed, or its password or role changed */
		s = NULL;
	}
	if (s == NULL) {
		respond_error(c, 401, "not_logged_in",
			      w->lan ? "not logged in: log in with the password, or run 'zila open' on the computer itself"
				     : "not logged in: run 'zila open' for a login link");
		return;
	}
	if (changes && !secret_eq(s->csrf, c->csrf)) {
		respond_error(c, 403, "csrf", "the request lacks this page's CSRF token: reload the page");
		return;
	}
	if (strcmp(path, "/api/logout") == 0 && changes) {
		sodium_memzero(s, sizeof(*s));
		respond_json(c, 200, json_pack("{s:b}", "ok", 1),
			     "Set-Cookie: zila_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0\r\n");
	} else if (strcmp(path, "/api/status") == 0 && get) {
		respond_json(c, 200, w->hooks.status(w->hooks.ctx), NULL);
	} else if (strcmp(path, "/api/events") == 0 && get) {
		start_sse(c);
	} else if (strcmp(path, "/api/sync") == 0 && strcmp(method, "POST") == 0) {
		do_sync(c);
	} else if (w->hooks.api_files != NULL && is_file_request(method, path)) {
		do_api_files(c, method, path, query, s);
	} else {
		do_api(c, method, path, query, s);
	}
}

/* --- llhttp's callbacks ---------------------------------------------------------------------- */

static struct web_conn *conn_of(llhttp_t *p)
{
	return container_of(p, struct web_conn, parser);
}

static int head_put(struct web_conn *c, struct zila_buf *b, const char *at, size_t len)
{
	c->head_bytes += len;
	if (c->head_bytes > WEB_HEAD_MAX || zila_buf_put(b, at, len) != 0) {
		c->too_big = true;
		return -1;
	}
	return 0;
}

static int on_message_begin(llhttp_t *p)
{
	struct web_conn *c = conn_of(p);
	c->url.len = c->field.len = c->value.len = c->body.len = 0;
	c->head_bytes = 0;
	c->upload = false;
	if (c->body.cap > WEB_BODY_MAX + 1)
		zila_buf_release(&c->body); /* an earlier upload's megabytes (one refused before the worker) */
	c->body.max = WEB_BODY_MAX + 1;
	c->host[0] = c->origin[0] = c->csrf[0] = c->session[0] = '\0';
	return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
	return head_put(conn_of(p), &conn_of(p)->url, at, len);
}

static int on_field(llhttp_t *p, const char *at, size_t len)
{
	return head_put(conn_of(p), &conn_of(p)->field, at, len);
}

static int on_value(llhttp_t *p, const char *at, size_t len)
{
	return head_put(conn_of(p), &conn_of(p)->value, at, len);
}

static void copy_value(char *dst, size_t n, const struct zila_buf *v)
{
	size_t len = v->len < n - 1 ? v->len : n - 1;
	memcpy(dst, v->p, len);
	dst[len] = '\0';
}

/* The session id out of a Cookie header ("a=b; zila_session=ID; c=d"). */
static void cookie_session(struct web_conn *c, const struct zila_buf *v)
{
	static const char name[] = "zila_session=";
	const char *p = (const char *)v->p, *end = p + v->len;
	while (p < end) {
		while (p < end && (*p == ' ' || *p == ';'))
			p++;
		const char *e = memchr(p, ';', (size_t)(end - p));
		if (e == NULL)
			e = end;
		if ((size_t)(e - p) > sizeof(name) - 1 && memcmp(p, name, sizeof(name) - 1) == 0) {
			size_t n = (size_t)(e - p) - (sizeof(name) - 1);
			if (n < sizeof(c->session)) {
				memcpy(c->session, p + sizeof(name) - 1, n);
				c->session[n] = '\0';
			}
		}
		p = e;
	}
}

static int on_value_complete(llhttp_t *p)
{
	struct web_conn *c = conn_of(p);
	const char *f = (const char *)c->field.p;
	size_t fl = c->field.len;
#define IS(name) (fl == sizeof(name) - 1 && strncasecmp(f, name, fl) == 0)
	if (IS("host")) {
		if (c->host[0] != '\0')
			c->host[0] = '\x01'; /* two Host headers: matches nothing */
		else
			copy_value(c->host, sizeof(c->host), &c->value);
	} else if (IS("origin")) {
		copy_value(c->origin, sizeof(c->origin), &c->value);
	} else if (IS("x-csrf-token")) {
		copy_value(c->csrf, sizeof(c->csrf), &c->value);
	} else if (IS("cookie")) {
		cookie_session(c, &c->value);
	}
#undef IS
	c->field.len = c->value.len = 0;
	return 0;
}

static int on_headers_complete(llhttp_t *p)
{
	struct web_conn *c = conn_of(p);
	static const char up[] = "/api/attachments";
	size_t n = sizeof(up) - 1;
	/* an upload: its path alone, or with a query */
	c->upload = p->method == HTTP_POST && c->url.len >= n && memcmp(c->url.p, up, n) == 0 &&
		    (c->url.len == n || c->url.p[n] == '?');
	if (c->upload)
		c->body.max = WEB_UPLOAD_MAX + 1;
	if (p->content_length > (c->upload ? WEB_UPLOAD_MAX : WEB_BODY_MAX)) {
		c->too_big = true;
		return -1;
	}
	return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
	struct web_conn *c = conn_of(p);
	if (zila_buf_put(&c->body, at, len) != 0) {
		c->too_big = true;
		return -1;
	}
	return 0;
}

static int on_message_complete(llhttp_t *p)
{
	struct web_conn *c = conn_of(p);
	handle(c);
	/* One request at a time: the parser goes on with the next only while this one's answer
	 * did not end the connection (an event stream keeps it). */
	return c->state == C_READING ? 0 : HPE_PAUSED;
}

static llhttp_settings_t settings;

/* --- the socket ------------------------------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	static char tmp[64 * 1024];
	(void)h;
	(void)hint;
	*buf = uv_buf_init(tmp, sizeof(tmp));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct web_conn *c = s->data;
	if (nread < 0) {
		conn_close(c);
		return;
	}
	if (nread == 0 || c->state != C_READING)
		return;
	net_store_claim(c->w->env); /* pages and the API read the replica */
	c->last_ms = now_ms(c->w);
	const char *data = buf->base;
	size_t len = (size_t)nread;
	if (c->tls != NULL) {
		if (!c->tls_seen && (unsigned char)data[0] != 0x16) {
			/* Not a TLS handshake: a plain HTTP request on the TLS port. Said in plain words, unencrypted. */
			static const char msg[] = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
						  "Connection: close\r\nContent-Length: 73\r\n\r\n"
						  "This address speaks HTTPS only: open it with https:// instead of http://\n";
			char *p = malloc(sizeof(msg) - 1);
			c->state = C_CLOSING;
			if (p != NULL) {
				memcpy(p, msg, sizeof(msg) - 1);
				send_raw(c, p, sizeof(msg) - 1);
			}
			if (c->nwrites == 0)
				conn_close(c);
			return;
		}
		c->tls_seen = true;
		c->plain.len = c->wire.len = 0;
		int r = webtls_feed(c->tls, data, len, &c->plain, &c->wire);
		if (c->wire.len > 0) {
			char *p = malloc(c->wire.len);
			if (p != NULL) {
				memcpy(p, c->wire.p, c->wire.len);
				send_raw(c, p, c->wire.len);
			}
		}
		if (r != 0) {
			c->state = C_CLOSING;
			if (c->nwrites == 0)
				conn_close(c);
			return;
		}
		if (c->plain.len == 0)
			return;
		data = (const char *)c->plain.p;
		len = c->plain.len;
	}
	llhttp_errno_t e = llhttp_execute(&c->parser, data, len);
	if (e == HPE_OK || e == HPE_PAUSED)
		return;
	if (c->too_big)
		respond_error(c, c->head_bytes > WEB_HEAD_MAX ? 431 : 413, "too_big",
			      c->head_bytes > WEB_HEAD_MAX ? "the request's headers are too long"
			      : c->upload ? "the file is too big to upload (at most 32 MiB)"
					  : "the request is too big (at most 8 MiB)");
	else
		respond_error(c, 400, "invalid", "not an HTTP request this server understands");
	c->state = C_CLOSING;
	if (c->nwrites == 0)
		conn_close(c);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct web *w = container_of((uv_tcp_t *)server, struct web, listener);
	if (status != 0 || w->env->stopping)
		return;
	struct web_conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return;
	c->w = w;
	zila_buf_init(&c->url, WEB_HEAD_MAX);
	zila_buf_init(&c->field, WEB_HEAD_MAX);
	zila_buf_init(&c->value, WEB_HEAD_MAX);
	zila_buf_init(&c->body, WEB_BODY_MAX + 1);
	zila_buf_init(&c->plain, WEB_BODY_MAX + WEB_HEAD_MAX);
	zila_buf_init(&c->wire, WEB_BODY_MAX + WEB_HEAD_MAX);
	llhttp_init(&c->parser, HTTP_REQUEST, &settings);
	uv_tcp_init(w->env->loop, &c->tcp);
	c->tcp.data = c;
	c->last_ms = now_ms(w);
	c->next = w->conns;
	w->conns = c;
	w->nconns++;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
		conn_close(c);
		return;
	}
	struct sockaddr_storage peer;
	int plen = sizeof(peer);
	snprintf(c->peer, sizeof(c->peer), "?");
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&peer, &plen) == 0)
		uv_ip_name((struct sockaddr *)&peer, c->peer, sizeof(c->peer));
	if (w->tls != NULL && (c->tls = webtls_new(w->tls)) == NULL) {
		conn_close(c);
		return;
	}
	if (w->nconns > WEB_CONNS_MAX) {
		/* Make room: the connection idle longest goes. */
		struct web_conn *old = NULL;
		for (struct web_conn *o = w->conns; o != NULL; o = o->next)
			if (o != c && o->state != C_CLOSING && (old == NULL || o->last_ms < old->last_ms))
				old = o;
		if (old != NULL)
			conn_close(old);
	}
	uv_tcp_nodelay(&c->tcp, 1);
	if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
		conn_close(c);
}

/* Idle connections close; event streams get the status when it changed, and a comment line
 * now and then so that nothing between closes them. */
static void on_tick(uv_timer_t *h)
{
	struct web *w = container_of(h, struct web, timer);
	uint64_t now = now_ms(w);
	bool any_sse = false;
	struct web_conn *next;
	for (struct web_conn *c = w->conns; c != NULL; c = next) {
		next = c->next;
		if (c->state == C_SSE)
			any_sse = true;
		else if (c->state == C_READING && c->nwrites == 0 && now - c->last_ms > WEB_IDLE_MS)
			conn_close(c);
	}
	if (!any_sse)
		return;
	net_store_claim(w->env); /* the status is read from the replica */
	char *ev = status_event(w);
	bool changed = ev != NULL && (w->last_status == NULL || strcmp(ev, w->last_status) != 0);
	bool ping = now - w->last_ping_ms > WEB_PING_MS;
	for (struct web_conn *c = w->conns; c != NULL; c = c->next) {
		if (c->state != C_SSE || c->nwrites > 4) /* a reader that does not keep up misses a beat */
			continue;
		if (changed)
			sse_send(c, ev);
		else if (ping)
			sse_send(c, ": ping\n\n");
	}
	if (ping || changed)
		w->last_ping_ms = now;
	if (changed) {
		free(w->last_status);
		w->last_status = ev;
	} else {
		free(ev);
	}
}

static bool is_loopback(const char *host)
{
	return strcmp(host, "127.0.0.1") == 0 || strcmp(host, "::1") == 0;
}

static bool is_wildcard(const char *host)
{
	return strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0;
}

/* A Host header the interface answers to: "name:port", and "name" alone on the scheme's own port. */
static void host_add(struct web *w, const char *name, uint16_t port)
{
	bool v6 = strchr(name, ':') != NULL;
	for (int bare = 0; bare < 2 && w->nhosts < WEB_HOSTS_MAX; bare++) {
		if (bare && port != (w->tls ? 443 : 80))
			break;
		if (bare)
			snprintf(w->hosts[w->nhosts++], sizeof(w->hosts[0]), v6 ? "[%s]" : "%s", name);
		else
			snprintf(w->hosts[w->nhosts++], sizeof(w->hosts[0]), v6 ? "[%s]:%u" : "%s:%u", name, port);
	}
}

int web_start(struct web *w, const struct net_env *env, const char *listen, const struct web_opts *opts,
	      const struct web_hooks *hooks, struct zila_error *err)
{
	char host[256];
	uint16_t port;
	struct sockaddr_storage ss;
	memset(w, 0, sizeof(*w));
	w->env = env;
	w->hooks = *hooks;
	llhttp_settings_init(&settings);
	settings.on_message_begin = on_message_begin;
	settings.on_url = on_url;
	settings.on_header_field = on_field;
	settings.on_header_value = on_value;
	settings.on_header_value_complete = on_value_complete;
	settings.on_headers_complete = on_headers_complete;
	settings.on_body = on_body;
	settings.on_message_complete = on_message_complete;
	snprintf(w->listen, sizeof(w->listen), "%s", listen);
	snprintf(w->dir, sizeof(w->dir), "%s", opts->dir ? opts->dir : ".");
	if (zila_hostport_parse(listen, host, sizeof(host), &port) != 0)
		return zila_error_set(err, ZILA_EINVAL, "web address '%s' is not ADDR:PORT", listen);
	if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
	    uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)
		return zila_error_set(err, ZILA_EINVAL, "web address '%s' is not a numeric IP address", listen);
	w->lan = !is_loopback(host);
	/* The LAN gets the interface only behind a password, and over TLS unless the owner says
	 * otherwise for a district office (never at HQ). */
	if (w->lan && !zila_webauth_any(w->dir))
		return zila_error_set(err, ZILA_EINVAL,
				      "the web interface serves '%s' (not this computer alone) only with a password: set one "
				      "with 'zila web password' (or accounts: 'zila web account add'), then start the daemon again",
				      listen);
	if (w->lan && opts->plain_lan && opts->hq)
		return zila_error_set(err, ZILA_EINVAL,
				      "HQ serves its web interface on the LAN over TLS only: leave out --web-plain-lan");
	bool tls = opts->cert != NULL || (w->lan && !opts->plain_lan);
	if (tls) {
		const char *names[WEB_HOSTS_MAX + 2];
		size_t nn = 0;
		names[nn++] = host;
		for (size_t i = 0; opts->names != NULL && opts->names[i] != NULL && nn < WEB_HOSTS_MAX; i++)
			names[nn++] = opts->names[i];
		uv_interface_address_t *ifs = NULL;
		int nifs = 0;
		char ips[WEB_HOSTS_MAX][64];
		if (is_wildcard(host) && uv_interface_addresses(&ifs, &nifs) == 0) {
			for (int i = 0; i < nifs && nn < WEB_HOSTS_MAX; i++) {
				uv_ip_name((const struct sockaddr *)&ifs[i].address, ips[nn], sizeof(ips[0]));
				if (strchr(ips[nn], '%') == NULL) { /* a link-local v6 with a zone: not in a certificate */
					names[nn] = ips[nn];
					nn++;
				}
			}
			uv_free_interface_addresses(ifs, nifs);
		}
		names[nn] = NULL;
		int r = webtls_ctx_new(&w->tls, w->dir, opts->cert, opts->key, names, w->fingerprint, err);
		if (r != 0)
			return r;
	}
	host_add(w, "127.0.0.1", port);
	host_add(w, "localhost", port);
	host_add(w, "::1", port);
	if (w->lan && !is_wildcard(host))
		host_add(w, host, port);
	if (is_wildcard(host)) {
		/* Any of this computer's addresses: a literal address cannot be a rebinding name. */
		uv_interface_address_t *ifs = NULL;
		int nifs = 0;
		if (uv_interface_addresses(&ifs, &nifs) == 0) {
			for (int i = 0; i < nifs; i++) {
				char ip[64];
				uv_ip_name((const struct sockaddr *)&ifs[i].address, ip, sizeof(ip));
				if (!is_loopback(ip) && strchr(ip, '%') == NULL)
					host_add(w, ip, port);
			}
			uv_free_interface_addresses(ifs, nifs);
		}
	}
	for (size_t i = 0; opts->names != NULL && opts->names[i] != NULL; i++)
		host_add(w, opts->names[i], port);
	if (w->lan && opts->plain_lan)
		zila_log(ZILA_LOG_WARN, "web: the interface on '%s' is plain HTTP (--web-plain-lan): passwords and pages "
					"cross the LAN unencrypted",
			 listen);
	uv_tcp_init(env->loop, &w->listener);
	uv_timer_init(env->loop, &w->timer);
	w->listening = w->timer_on = true;
	int r;
	if ((r = uv_tcp_bind(&w->listener, (struct sockaddr *)&ss, 0)) != 0 ||
	    (r = uv_listen((uv_stream_t *)&w->listener, 64, on_connection)) != 0)
		return zila_error_set(err, r, "cannot serve the web interface on '%s': %s", listen, uv_strerror(r));
	uv_timer_start(&w->timer, on_tick, WEB_TICK_MS, WEB_TICK_MS);
	return 0;
}

void web_base_url(const struct web *w, char *out, size_t n)
{
	char host[256];
	uint16_t port = WEB_PORT;
	if (zila_hostport_parse(w->listen, host, sizeof(host), &port) != 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	if (strcmp(host, "0.0.0.0") == 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	else if (strcmp(host, "::") == 0)
		snprintf(host, sizeof(host), "::1");
	snprintf(out, n, strchr(host, ':') ? "%s://[%s]:%u" : "%s://%s:%u", w->tls ? "https" : "http", host, port);
}

void web_stop(struct web *w)
{
	if (w->listening && !uv_is_closing((uv_handle_t *)&w->listener))
		uv_close((uv_handle_t *)&w->listener, NULL);
	if (w->timer_on && !uv_is_closing((uv_handle_t *)&w->timer))
		uv_close((uv_handle_t *)&w->timer, NULL);
	w->listening = w->timer_on = false;
	struct web_conn *next;
	for (struct web_conn *c = w->conns; c != NULL; c = next) {
		next = c->next;
		c->state = C_CLOSING;
		if (c->nwrites == 0)
			conn_close(c);
	}
	free(w->last_status);
	w->last_status = NULL;
	sodium_memzero(w->tokens, sizeof(w->tokens));
	sodium_memzero(w->sessions, sizeof(w->sessions));
	webtls_ctx_free(w->tls); /* every connection's SSL holds its own reference to the context */
	w->tls = NULL;
}
