/* The operating system's file work, in one place: atomic replacement of a file, new files
 * that must not exist yet (key files, 0600), whole small files read into memory, and files
 * mapped read-only. Every layer that touches a file goes through here; src/os/os_posix.c
 * implements it for POSIX, and a Windows build implements the same header. */
#ifndef ZILA_OS_H
#define ZILA_OS_H

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

/* Creates directory PATH with mode (0700) unless it exists; 0 either way. */
int zila_os_mkdir(const char *path, unsigned mode, struct zila_error *err) ZILA_MUST_CHECK;
/* Takes the group's and others' permissions off PATH if it has any (0644 -> 0600);
 * ZILA_ENOTFOUND when it does not exist. */
int zila_os_make_private(const char *path) ZILA_MUST_CHECK;

#endif
