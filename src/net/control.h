/* The local control socket (control.c): one JSON request per line, JSON lines back, and the
 * clients waiting for a sync. What the answers say comes from the owner (daemon.c) through
 * struct control_hooks; control.c never calls it. */
#ifndef ZILA_NET_CONTROL_H
#define ZILA_NET_CONTROL_H

#include <jansson.h>

#include "net_int.h"
#include "zila/buf.h"

#define CTL_WAIT_MAX 32 /* peers one sync request waits for */

/* A sync the owner started for a client: the owner's key for the peer (its record), its
 * address, and the number of its dial after which the sync waited for has ended. */
struct ctl_target {
	const void *key;
	char addr[300];
	uint64_t after;
};

struct control_hooks {
	json_t *(*status)(void *ctx);  /* the status object (returned to the caller to send) */
	json_t *(*peers)(void *ctx);   /* the array of peers */
	/* Starts a sync with peer (NULL: all, "hq": HQ, else an address, name or device id):
	 * fills out (at most max) and returns how many, or -1 with msg set to why not. */
	int (*sync)(void *ctx, const char *peer, struct ctl_target *out, size_t max, char *msg, size_t msg_len);
	/* Adds the state of key's sync to o (its progress while it runs). */
	void (*progress)(void *ctx, const void *key, json_t *o);
	/* A one-time login link of the web interface: {"ok":true,"url":...} or {"error":...}. */
	json_t *(*web_login)(void *ctx);
	void (*reload)(void *ctx);
	void (*stop)(void *ctx); /* called after the answer was queued */
	void *ctx;
};

/* A client of the control socket. */
struct ctl {
	struct ctl *next;
	struct control *ct;
	uv_pipe_t pipe;
	struct zila_buf in;
	bool closing, close_on_flush;
	bool owner;       /* runs as the daemon's user or root (SO_PEERCRED): may stop it */
	bool web;         /* may have a web login link (zila_os_ctl_peer_web) */
	unsigned nwrites; /* responses being written */
	/* sync --wait: the targets waited for and the session number each must pass */
	size_t nwait;
	struct {
		const void *key; /* NULL once the peer went away */
		char addr[300];
		uint64_t after;
		bool done;
		int result;
		char reason[300];
		char refused[600];
	} wait[CTL_WAIT_MAX];
	bool waiting;
};

struct control {
	const struct net_env *env;
	struct control_hooks hooks;
	char sock_path[PATH_MAX + 16];
	uv_pipe_t pipe;
	bool open, timer;
	struct ctl *ctls;
	uv_timer_t progress_timer;
};

/* Opens DIR/zila.sock (mode 0600). On failure err says why; control_stop is still to be
 * called. */
int control_start(struct control *ct, const struct net_env *env, const char *dir, const struct control_hooks *hooks,
		  struct zila_error *err);
/* Closes the socket; waiting clients get their final line first. */
void control_stop(struct control *ct);
/* The dial number seqno of key's peer ended with result (reason; refused: what the peer
 * refused of ours, in plain words, or ""): waiting clients hear of it. */
void control_target_done(struct control *ct, const void *key, uint64_t seqno, int result, const char *reason,
			 const char *refused);
/* key's peer went away: clients waiting for it are told. */
void control_target_gone(struct control *ct, const void *key);

#endif
