/* The operating system, in one place: atomic replacement of a file, new files that must not
 * exist yet (key files, 0600 / owner-only), whole small files read into memory, files mapped
 * read-only; the daemon's instance lock, the control channel's name and its client, the
 * blocking TCP client, the terminal, the default replica directory, signals, a worker thread.
 * Every layer that touches the system goes through here; src/os/os_posix.c implements it for
 * POSIX, src/os/os_win.c for Windows (the same behaviour, Windows' means). */
#ifndef ZILA_OS_H
#define ZILA_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "zila/buf.h"
#include "zila/err.h"

/* --- atomic writes ---------------------------------------------------------------- */

/* A file being written beside its final path (PATH.tmp) that replaces PATH only when
 * committed: a reader sees the old file or the whole new one, never a half one, and a
 * crash or a failed write leaves the old file as it was. */
struct zila_os_atomic;

/* Creates PATH.tmp with the given mode (a leftover one from an interrupted run is replaced).
 * *out is owned by the caller: zila_os_atomic_commit() or zila_os_atomic_abort(). */
int zila_os_atomic_open(struct zila_os_atomic **out, const char *path, unsigned mode,
			struct zila_error *err) ZILA_MUST_CHECK;
/* Appends len bytes; 0 or ZILA_EIO / ZILA_EFULL. Its shape is that of a send callback
 * (zila_session_send_fn, zila_bundle_sink_fn): pass the writer as ctx. */
int zila_os_atomic_write(void *a, const uint8_t *p, size_t len) ZILA_MUST_CHECK;
/* The code of the first write that failed (0: none), err saying why with the path: what a
 * caller reports when a writer that got the sink's code gave up. */
int zila_os_atomic_failed(const struct zila_os_atomic *a, struct zila_error *err);
/* The stdio stream being written, for writers that need one (borrowed until commit/abort). */
FILE *zila_os_atomic_stream(struct zila_os_atomic *a);
/* Flushes, syncs the file, renames it over PATH and syncs the directory; frees a (on
 * failure too, removing PATH.tmp). ZILA_EIO or ZILA_EFULL with err saying why. */
int zila_os_atomic_commit(struct zila_os_atomic *a, struct zila_error *err) ZILA_MUST_CHECK;
/* Removes PATH.tmp and frees a; PATH is untouched. NULL does nothing. */
void zila_os_atomic_abort(struct zila_os_atomic *a);
/* For a file that can be made again (a bundle, an export): commit skips the directory's
 * sync. A power cut right after may take the rename back (the old file, or none); it never
 * leaves half a file. The directory sync cost an incremental bundle 4.5 -> 27 ms here. */
void zila_os_atomic_remakeable(struct zila_os_atomic *a);

/* The whole of p written to PATH atomically, as above. */
int zila_os_write_atomic(const char *path, const void *p, size_t len, unsigned mode,
			 struct zila_error *err) ZILA_MUST_CHECK;

/* Creates PATH, which must not exist (ZILA_EEXIST), with mode (0600 for keys), writes p,
 * syncs it and its directory. On failure no file is left behind. */
int zila_os_write_new(const char *path, const void *p, size_t len, unsigned mode,
		      struct zila_error *err) ZILA_MUST_CHECK;

/* --- reading ---------------------------------------------------------------------- */

/* Appends the whole file at PATH to out (ZILA_ETOOBIG past max bytes, ZILA_ENOTFOUND when
 * it does not exist, ZILA_EIO otherwise). *mode_out (may be NULL) gets its permission bits,
 * so that a caller can warn about a key file others can read. */
int zila_os_read_file(const char *path, size_t max, struct zila_buf *out, unsigned *mode_out,
		      struct zila_error *err) ZILA_MUST_CHECK;

/* A file mapped read-only: p and len stay valid until zila_os_unmap(). */
struct zila_os_map {
	const uint8_t *p;
	size_t len;
	void *priv_;
};

/* Maps PATH (an empty file maps to len 0). m is cleared first. */
int zila_os_map(struct zila_os_map *m, const char *path, struct zila_error *err) ZILA_MUST_CHECK;
/* Unmaps; safe on a cleared or already unmapped map. */
void zila_os_unmap(struct zila_os_map *m);

/* --- directories and modes ----------------------------------------------------------- */

/* The command a person runs to make PATH private, for a message: "chmod 600 PATH";
 * on Windows an icacls line that leaves only the user. */
void zila_os_private_how(const char *path, char *out, size_t n);

/* Creates directory PATH with mode (0700) unless it exists; 0 either way. */
int zila_os_mkdir(const char *path, unsigned mode, struct zila_error *err) ZILA_MUST_CHECK;
/* PATH's permission bits (0600, 0755, ...); on Windows what its DACL amounts to: 0600 (0700
 * for a directory) when only this user may read it, 0644 (0755) when others may. */
int zila_os_mode(const char *path, unsigned *mode) ZILA_MUST_CHECK;
/* Makes a new private directory from tmpl, whose last six characters are XXXXXX (replaced). */
int zila_os_mkdtemp(char *tmpl) ZILA_MUST_CHECK;
/* Removes PATH and all below it (what `rm -rf` does); 0 also when PATH does not exist. */
int zila_os_rmtree(const char *path) ZILA_MUST_CHECK;
/* Copies the files directly in directory src into dst (made, private), as a backup does. */
int zila_os_copydir(const char *src, const char *dst) ZILA_MUST_CHECK;
/* --- files written in pieces (attachments' partial blobs, #25) ---------------------- */

/* Appends len bytes at the end of PATH (made 0600 when missing), without a sync: the caller
 * verifies what it kept before trusting it. On a failed write PATH is cut back to the size it
 * had, so it never keeps half an append. ZILA_EFULL, ZILA_EIO with err saying why. */
int zila_os_append(const char *path, const void *p, size_t len, struct zila_error *err) ZILA_MUST_CHECK;
/* Cuts PATH to len bytes (a resumed partial file keeps only what was verified). */
int zila_os_truncate(const char *path, uint64_t len) ZILA_MUST_CHECK;
/* Renames FROM over TO: a finished partial file becomes the whole one. With sync, FROM is
 * synced first and TO's directory after (durable); without, a power cut may leave TO short
 * or absent, for files checked whenever read and fetched again when damaged (received
 * blobs: 200 fsyncs made 100 photos of 300 KB take 2.7 s on loopback here). ZILA_EIO/
 * ZILA_EFULL with err saying why. */
int zila_os_finish(const char *from, const char *to, bool sync, struct zila_error *err) ZILA_MUST_CHECK;
/* Removes the file PATH; 0 also when it does not exist. */
int zila_os_remove(const char *path) ZILA_MUST_CHECK;
/* Calls fn with each name directly in DIR (not "." or ".."), in no set order, until fn
 * returns non-zero (returned). ZILA_ENOTFOUND when DIR does not exist. */
int zila_os_list(const char *dir, int (*fn)(void *ctx, const char *name), void *ctx) ZILA_MUST_CHECK;

/* Takes the group's and others' permissions off PATH if it has any (0644 -> 0600);
 * ZILA_ENOTFOUND when it does not exist. */
int zila_os_make_private(const char *path) ZILA_MUST_CHECK;

/* --- processes, paths, time --------------------------------------------------------- */

/* The default replica directory: $HOME/.zila on POSIX, %LOCALAPPDATA%\zila on Windows.
 * ZILA_ENOTFOUND when neither variable is set, ZILA_ETOOBIG when it does not fit in n. */
int zila_os_default_dir(char *out, size_t n) ZILA_MUST_CHECK;
/* PATH made absolute with links resolved (it must exist: ZILA_ENOTFOUND). */
int zila_os_realpath(const char *path, char *out, size_t n) ZILA_MUST_CHECK;
/* PATH's size and modification time (ns since 1970; as fine as the file system keeps it). */
int zila_os_stat(const char *path, uint64_t *size, int64_t *mtime_ns) ZILA_MUST_CHECK;
/* Whether PATH exists (a file or a directory). */
bool zila_os_exists(const char *path);
/* Bytes free to an unprivileged writer on the file system that holds dir (a directory). */
int zila_os_free_bytes(const char *dir, uint64_t *out) ZILA_MUST_CHECK;
/* This computer's name (cut to n-1 bytes); "laptop" when the system gives none. */
void zila_os_hostname(char *out, size_t n);
/* This process's id. */
long zila_os_pid(void);
/* Standard input and output carry bytes as they are: Windows' C library would otherwise turn
 * "\n" into "\r\n" in a vector file or a CSV written to stdout (and break its signature). */
void zila_os_stdio_binary(void);
/* Whether standard stream fd (0, 1, 2) is a terminal (a console on Windows). */
bool zila_os_isatty(int fd);
/* A clock that only goes forward, in ms, for deadlines. */
uint64_t zila_os_mono_ms(void);
/* Since the computer started, in ms, and an id of this boot (up to n-1 characters): false
 * when the system does not say (the caller then trusts no uptime). */
bool zila_os_uptime(uint64_t *ms, char *boot, size_t n);
void zila_os_sleep_ms(unsigned ms);

/* Reads a line from the terminal itself (not standard input) without echoing it, after
 * printing prompt there; the line ends are cut off. ZILA_ENOTFOUND when there is no terminal,
 * ZILA_EIO when it ends before a line. */
int zila_os_read_hidden(const char *prompt, char *buf, size_t n) ZILA_MUST_CHECK;

/* --- signals ------------------------------------------------------------------------- */

/* The signals that ask the daemon to stop (SIGTERM, SIGINT; on Windows Ctrl+C, Ctrl+Break
 * and the console's closing, which libuv reports as SIGINT, SIGBREAK, SIGHUP), n of them,
 * and the one that asks it to read its settings again (SIGHUP; 0 on Windows, where
 * `zila peer` and the control channel's reload do it). */
const int *zila_os_stop_signals(size_t *n);
int zila_os_reload_signal(void);
/* "SIGTERM", "SIGINT", "Ctrl+Break", ...: what a log line calls signal sig. */
const char *zila_os_signal_name(int sig);
/* A write to a closed socket returns an error instead of killing the process. */
void zila_os_ignore_sigpipe(void);
/* Raises the soft limit on open descriptors to the hard one (a service's soft limit is
 * often 1,024: each session of the daemon holds a socket); returns the limit now, 0 when
 * it is not known or there is none (Windows). */
unsigned long zila_os_raise_fd_limit(void);

/* --- the daemon's instance lock -------------------------------------------------------- */

struct zila_os_lock;
/* Takes the lock file PATH (made owner-only if new) for this process and writes its pid in
 * it. ZILA_EBUSY when another process holds it: holder (n bytes, may be NULL) gets the pid it
 * wrote, "" if none. The lock goes with the process, also when it is killed. */
int zila_os_lock_take(struct zila_os_lock **out, const char *path, char *holder, size_t n,
		      struct zila_error *err) ZILA_MUST_CHECK;
/* Releases and frees; NULL does nothing. */
void zila_os_lock_release(struct zila_os_lock *l);
/* Whether some process holds the lock file PATH now (false when there is no such file). */
bool zila_os_lock_held(const char *path);

/* --- connections: the control channel and the blocking TCP client ------------------------ */

/* What the daemon's control channel is bound to, for the replica directory dir: the socket
 * DIR/zila.sock on POSIX; on Windows a named pipe \\.\pipe\zila-HASH, HASH of the
 * directory's full path (what libuv's uv_pipe_bind takes on either). */
int zila_os_ctl_name(const char *dir, char *out, size_t n) ZILA_MUST_CHECK;
/* Before binding name for the replica directory dir: a stale socket file is removed and new
 * files made owner-only; zila_os_ctl_bound() after the bind (whatever its result; fd the
 * bound pipe's uv_fileno, or -1) makes the socket 0600, or 0660 when dir lets its group in
 * (0750, the Debian package's service replica), so that the group's members reach the daemon.
 * On Windows the service's pipe lets every signed-in user connect, and each client is checked
 * (zila_os_ctl_peer_ok); binding looks up the local group zila (the installer's). */
bool zila_os_ctl_binding(const char *dir, const char *name); /* true: it removed a stale socket file */
int zila_os_ctl_bound(const char *name, intptr_t fd) ZILA_MUST_CHECK;
/* Removes what binding left behind (the socket file). */
void zila_os_ctl_unbind(const char *name);
/* Whether the client on the accepted control connection fd (uv_fileno's) may use the daemon
 * at all. POSIX: the socket's mode already keeps others out, so true. Windows: the daemon's
 * own user; to the service (LocalSystem) also Administrators with full rights and members of
 * the local group zila. */
bool zila_os_ctl_peer_ok(intptr_t fd);
/* What the daemon answers a client peer_ok refused (static text: how to get access). */
const char *zila_os_ctl_refusal(void);
/* Whether that client runs as the daemon's own user or as root (Windows: an Administrator
 * with full rights), and so may stop it (a member of the group zila may ask for status and
 * syncs only). */
bool zila_os_ctl_peer_owner(intptr_t fd);
/* Whether that client may have a login link of the web interface: POSIX the owner (the web
 * interface acts with the replica's keys, which the group may not read); Windows also the
 * group zila's members (the Start menu's entry is how an office's clerk uses zila). */
bool zila_os_ctl_peer_web(intptr_t fd);

/* --- the installed service's replica, and other users' replica directories ---------------- */

/* The replica of the installed service: /var/lib/zila (the Debian package, run by the user
 * zila), %ProgramData%\zila on Windows (the installer's service). */
int zila_os_system_dir(char *out, size_t n) ZILA_MUST_CHECK;
/* A replica directory as its owner says who may use it, in names a person reads. */
struct zila_os_owner {
	bool exists; /* a directory is there (also one we may not enter) */
	bool mine;   /* it is ours (always on Windows, where the ACLs decide) */
	bool enter;  /* we may enter it */
	bool root;   /* we run as root */
	char owner[64], group[64], me[64];
};
void zila_os_dir_owner(const char *dir, struct zila_os_owner *o);
/* 0 when path may be read (write: written), ZILA_EAUTH when permission is denied,
 * ZILA_ENOTFOUND when it is not there, else ZILA_EIO. */
int zila_os_access(const char *path, bool write);

/* A blocking connection to the control channel or to a TCP peer; every call waits at most
 * until deadline (zila_os_mono_ms() time). */
struct zila_os_conn;
/* The daemon of replica dir: ZILA_ENOTFOUND when none runs, ZILA_EAUTH when it belongs to
 * another user, ZILA_ETOOBIG when the name is too long. */
int zila_os_ctl_dial(struct zila_os_conn **out, const char *dir) ZILA_MUST_CHECK;
/* host:port over TCP (Winsock is started on first use); err says why it failed. */
int zila_os_tcp_dial(struct zila_os_conn **out, const char *host, uint16_t port, uint64_t deadline,
		     struct zila_error *err) ZILA_MUST_CHECK;
/* Sends all len bytes: 0, ZILA_ETIMEDOUT or ZILA_EIO. */
int zila_os_conn_send(struct zila_os_conn *c, const void *p, size_t len, uint64_t deadline) ZILA_MUST_CHECK;
/* Receives up to cap bytes into p: *got 0 means the other side closed. ZILA_ETIMEDOUT,
 * ZILA_EIO. */
int zila_os_conn_recv(struct zila_os_conn *c, void *p, size_t cap, size_t *got, uint64_t deadline) ZILA_MUST_CHECK;
/* NULL does nothing. */
void zila_os_conn_close(struct zila_os_conn *c);
/* Bytes written to socket fd (uv_fileno's) that the kernel holds unsent; 0 when unknown. */
size_t zila_os_sock_unsent(intptr_t fd);

/* --- the system's service manager ------------------------------------------------------ */

/* Windows' Service Control Manager; on POSIX systemd runs the daemon (tools/zila.service), and
 * these return ZILA_EINVAL with err saying so. */
/* Registers the per-machine service NAME, started at boot as LocalSystem, running cmdline
 * (the full command line), restarted on failure; ZILA_EEXIST when it is there already. */
int zila_os_service_install(const char *name, const char *display, const char *cmdline,
			    struct zila_error *err) ZILA_MUST_CHECK;
/* Stops (waiting up to 30 s) and removes the service NAME; ZILA_ENOTFOUND when there is none. */
int zila_os_service_uninstall(const char *name, struct zila_error *err) ZILA_MUST_CHECK;
/* Runs as the service NAME that the SCM started: run(arg) is the service's work and returns
 * when it is done; the SCM's stop request calls stop(arg) on another thread, which must make
 * run return. Returns run's result, or ZILA_EINVAL when not started by the SCM. */
int zila_os_service_run(const char *name, int (*run)(void *arg), void (*stop)(void *arg), void *arg,
			struct zila_error *err) ZILA_MUST_CHECK;
/* How a person starts the installed service, for a message (static text). */
const char *zila_os_service_start_how(void);
/* How a person stops it (static text). */
const char *zila_os_service_stop_how(void);
/* This program's own path (for the service's command line). */
int zila_os_self_path(char *out, size_t n) ZILA_MUST_CHECK;
/* Appends standard error, unbuffered, to the file at path (made when missing): a service's
 * log. Works also when the process was started with no standard error at all (a Windows
 * service). Returns 0, or a negative code with standard error left as it was. */
int zila_os_stderr_to(const char *path) ZILA_MUST_CHECK;
/* Opens url in the user's browser, without putting it on a command line (it may hold a
 * secret: Windows hands the browser a page of this user's own that sends it on).
 * ZILA_ENOTFOUND when there is none to open it with (POSIX: always; the caller prints it). */
int zila_os_open_url(const char *url) ZILA_MUST_CHECK;
/* True when this process has a console window of its own that closes when it exits (Windows:
 * started from the Start menu or Explorer), so a message must wait to be read. */
bool zila_os_console_own(void);

/* --- a worker thread ----------------------------------------------------------------- */

/* One thread running fn(arg) until it returns, with a mutex and a condition to talk to it. */
struct zila_os_worker;
int zila_os_worker_start(struct zila_os_worker **out, void (*fn)(struct zila_os_worker *w, void *arg),
			 void *arg) ZILA_MUST_CHECK;
void zila_os_worker_lock(struct zila_os_worker *w);
void zila_os_worker_unlock(struct zila_os_worker *w);
/* With the lock held: waits for a signal (and may wake without one). */
void zila_os_worker_wait(struct zila_os_worker *w);
void zila_os_worker_signal(struct zila_os_worker *w);
/* Waits until fn has returned, and frees w. */
void zila_os_worker_join(struct zila_os_worker *w);

#endif
