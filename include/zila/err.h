/* zila error codes: 0 is success, negative is failure. libuv's UV_E* codes pass through
 * unchanged; zila's own codes live below -10000, where libuv never goes. */
#ifndef ZILA_ERR_H
#define ZILA_ERR_H

#include <stddef.h>

#if defined(__GNUC__)
#define ZILA_MUST_CHECK __attribute__((warn_unused_result))
#ifndef ZILA_PRINTF /* the Windows build's src/os/os_win.h names mingw's C99 printf */
#define ZILA_PRINTF(a, b) __attribute__((format(printf, a, b)))
#endif
#else
#define ZILA_MUST_CHECK
#define ZILA_PRINTF(a, b)
#endif

/* X(name, number, message) */
#define ZILA_ERRNO_MAP(X)                                                                \
	X(EINTERNAL, -10001, "internal error")                                                \
	X(ENOMEM, -10002, "out of memory")                                                    \
	X(EINVAL, -10003, "invalid argument")                                                 \
	X(ESHORT, -10004, "input is truncated")                                               \
	X(ETOOBIG, -10005, "input exceeds a size limit")                                      \
	X(EFORMAT, -10006, "malformed input")                                                 \
	X(EVERSION, -10007, "unsupported format version")                                     \
	X(ESIG, -10008, "signature does not verify")                                          \
	X(EDB, -10009, "database error")                                                      \
	X(EIO, -10010, "input/output error")                                                  \
	X(ENOTFOUND, -10011, "not found")                                                     \
	X(EEXIST, -10012, "already exists")                                                   \
	X(EUNTRACKABLE, -10013, "table cannot be tracked")                                    \
	X(EGAP, -10014, "entries are missing before this one")                                \
	X(ESCOPE, -10015, "outside the author's scope")                                       \
	X(EREVOKED, -10016, "device is revoked")                                              \
	X(ECERT, -10017, "certificate is not valid")                                          \
	X(EBUSY, -10018, "database is busy")                                                  \
	X(EAUTH, -10019, "authentication failed")                                             \
	X(ECLOSED, -10020, "session is closed")                                               \
	X(ENOTENROLLED, -10021, "device is not enrolled")                                     \
	X(ESCHEMA, -10022, "schema mismatch")                                                 \
	X(EFULL, -10023, "disk is full")                                                      \
	X(ECHECK, -10024, "check characters do not match")                                    \
	X(EEXPIRED, -10025, "expired")                                                        \
	X(EPASSPHRASE, -10026, "wrong passphrase")                                            \
	X(EPROTO, -10027, "protocol violation")                                               \
	X(EPEER, -10028, "the peer ended the session with an error")                          \
	X(ETIMEDOUT, -10029, "timed out")                                                     \
	X(ELIMIT, -10030, "a limit was reached")                                              \
	X(EFORKED, -10031, "its author signed two histories of a feed (a fork)")               \
	X(EREF, -10032, "a key the peer sent by reference is not held here")

enum zila_errno {
#define ZILA_ERR_ENUM(name, num, msg) ZILA_##name = (num),
	ZILA_ERRNO_MAP(ZILA_ERR_ENUM)
#undef ZILA_ERR_ENUM
};

/* A caller-provided place for a human-readable message that says more than the code. */
struct zila_error {
	int code;
	char msg[512];
};

/* Returns a static, lowercase message for a zila or libuv code; never NULL. */
const char *zila_strerror(int code);

/* Records code and a formatted message in err (err may be NULL); returns code, so that
 * callers can write `return zila_error_set(err, ZILA_EINVAL, "...")`. */
int zila_error_set(struct zila_error *err, int code, const char *fmt, ...) ZILA_PRINTF(3, 4);

/* Clears err (may be NULL). */
void zila_error_clear(struct zila_error *err);

/* The message in err, or zila_strerror(code) when none was recorded. */
const char *zila_error_msg(const struct zila_error *err, int code);

#endif
