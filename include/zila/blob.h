/* Attachments (#25, proto/ATTACH.md): content-addressed blobs kept beside the replica
 * (DIR/blobs/ab/cdef...), referenced by rows of the tracked table `attachments`, which sync
 * like any rows. A blob's id commits to its size and the hashes of its 64 KiB chunks, so a
 * blob moves in chunks that are each verified on arrival and resume after a cut. */
#ifndef ZILA_BLOB_H
#define ZILA_BLOB_H

#include <stdbool.h>
#include <stdint.h>

#include "zila/buf.h"
#include "zila/err.h"
#include "zila/store.h"

#define ZILA_BLOB_CHUNK (64 * 1024) /* bytes per chunk (the last may be shorter) */
#define ZILA_BLOB_SIZE_MAX (256ull * 1024 * 1024) /* no blob is larger, whatever the settings */
#define ZILA_BLOB_CHUNKS_MAX (ZILA_BLOB_SIZE_MAX / ZILA_BLOB_CHUNK)
#define ZILA_BLOB_MAX_DEFAULT (10ull * 1024 * 1024)   /* setting attach.max_bytes */
#define ZILA_BLOB_QUOTA_DEFAULT (2048ull * 1024 * 1024) /* setting attach.quota_bytes, per district */

/* The blob id of bytes whose chunk hashes (nchunks x 32 bytes, BLAKE2b-256 of each chunk)
 * and size are given: BLAKE2b-256("zila-blob-1" || size, 8 bytes LE || chunk hashes). */
void zila_blob_id(const uint8_t *chunk_hashes, size_t nchunks, uint64_t size, uint8_t id[32]);
/* The chunk hashes of p (appended to out, ceil(len / ZILA_BLOB_CHUNK) x 32 bytes) and its id. */
int zila_blob_hash_mem(const uint8_t *p, size_t len, struct zila_buf *chunks, uint8_t id[32]) ZILA_MUST_CHECK;

/* --- adding ------------------------------------------------------------------------ */

struct zila_attach_req {
	const char *path;       /* the file to attach (required) */
	const char *name;       /* its name as shown (NULL: the file's base name) */
	const char *media_type; /* NULL: guessed from the name (image/jpeg, application/pdf, ...) */
	const char *district;   /* NULL: the owner row's district, else this device's */
	const char *table, *row, *column; /* the row it belongs to (may be NULL); column: set
					   * that column of the row to the attachment's id */
	const uint8_t *data;    /* the bytes themselves instead of path's (then name is required) */
	size_t data_len;
	const char *original_hash; /* the bytes were shrunk from a file of this blob id (hex) ... */
	uint64_t original_size;    /* ... and size; NULL, 0: not shrunk */
};

struct zila_attachment {
	char id[64];
	char district[ZILA_PART_MAX + 1];
	char hash[65];
	uint64_t size;
	char media_type[128];
	char name[256];
	char owner_table[128], owner_id[128], owner_column[128];
	char original_hash[65]; /* the file before it was shrunk ("": not shrunk) */
	enum { ZILA_BLOB_PRESENT, ZILA_BLOB_PARTIAL, ZILA_BLOB_MISSING } state;
	uint64_t have_bytes; /* verified bytes held (size when present) */
	bool asked;          /* a fetch was asked for (zila_blob_ask) */
	uint64_t original_size; /* the file's size before it was shrunk (0: not shrunk) */
	char added_on[32];      /* "2026-12-07T18:30:00Z" */
};

/* Stores the file's bytes (or rq->data) once (temp file, synced, renamed; a failed write leaves the
 * replica and the blob directory as they were) and inserts its `attachments` row through a
 * captured connection (sealed with the next seal, like any program's write). Refuses, with
 * err saying why in plain words: a file over attach.max_bytes (ZILA_ETOOBIG), a district
 * over attach.quota_bytes (ZILA_ELIMIT), an owner row that does not exist (ZILA_ENOTFOUND).
 * *out gets the row. */
int zila_blob_attach(struct zila_store *s, const struct zila_attach_req *rq, struct zila_attachment *out,
		     struct zila_error *err) ZILA_MUST_CHECK;
/* Stores bytes as a blob (no row); *id gets its id. For tests and bundles. */
int zila_blob_put(struct zila_store *s, const uint8_t *p, size_t len, uint8_t id[32], struct zila_error *err) ZILA_MUST_CHECK;

/* --- reading --------------------------------------------------------------------- */

typedef int (*zila_attachment_fn)(void *ctx, const struct zila_attachment *a);
/* Every live attachments row, with what is held of its bytes, in id order; stops at fn's
 * first non-zero return (returned). */
int zila_blob_list(struct zila_store *s, zila_attachment_fn fn, void *ctx, struct zila_error *err) ZILA_MUST_CHECK;
/* The attachment REF names: its row id, its hash, or a unique prefix of either (at least 6
 * characters). ZILA_ENOTFOUND or ZILA_EINVAL (ambiguous) with err saying so. */
int zila_blob_find(struct zila_store *s, const char *ref, struct zila_attachment *out, struct zila_error *err) ZILA_MUST_CHECK;
/* Copies blob hash (hex) to PATH (atomically), checking every byte against its id on the
 * way: ZILA_ENOTFOUND when it is not here, ZILA_EFORMAT when the copy here is damaged (it is
 * then removed, so that it is fetched again). */
int zila_blob_copy_out(struct zila_store *s, const char *hash, const char *path, struct zila_error *err) ZILA_MUST_CHECK;
/* Asks for blob hash (hex) to be fetched at the next sync whatever the link's policy. */
int zila_blob_ask(struct zila_store *s, const char *hash, struct zila_error *err) ZILA_MUST_CHECK;
/* Whether blob id is held whole. */
bool zila_blob_present(struct zila_store *s, const uint8_t id[32]);

#define ZILA_BLOB_STATS_FIRST 3 /* missing blobs zila_blob_stats names */
struct zila_blob_stats {
	uint64_t nref, ref_bytes;         /* distinct blobs live rows refer to */
	uint64_t nmissing, missing_bytes; /* of those, not held whole */
	uint64_t npartial, partial_bytes; /* of the missing, partly held (by the sizes of the files) */
	uint8_t first[ZILA_BLOB_STATS_FIRST][32]; /* the first missing ones, in the rows' order */
	unsigned nfirst;
};
/* Counts what live rows refer to and what of it is here. Fast with thousands missing: a
 * stat or two per blob, no byte read (partial copies are counted by their files' sizes). */
int zila_blob_stats(struct zila_store *s, struct zila_blob_stats *st, struct zila_error *err) ZILA_MUST_CHECK;

/* --- moving (the sync session's blob phase, src/sync/blobx.c) ---------------------- */

/* The blobs live rows refer to that are not held whole, in rowid order of the rows: id, size,
 * whether a fetch was asked for, and how many chunks a partial copy holds verified. */
typedef int (*zila_blob_want_fn)(void *ctx, const uint8_t id[32], uint64_t size, bool asked, uint32_t have_chunks);
int zila_blob_missing(struct zila_store *s, zila_blob_want_fn fn, void *ctx, struct zila_error *err) ZILA_MUST_CHECK;
/* Whether a peer reading the partitions filter allows (NULL: any) may have blob id: a live
 * attachments row in one of them refers to it (the scope rows are sent by) AND the blob is
 * held shown in that row's partition (below, "possession"). */
bool zila_blob_may_serve(struct zila_store *s, const uint8_t id[32], zila_part_filter_fn filter, void *ctx);
/* Whether a live attachments row in a partition filter allows (NULL: any) refers to blob id,
 * held shown or not (what a bundle's reader keeps a file by). */
bool zila_blob_named(struct zila_store *s, const uint8_t id[32], zila_part_filter_fn filter, void *ctx);

/* --- possession (proto/ATTACH.md, "Possession") ------------------------------------ *
 * A blob is served for a row only when it is held *shown* in the row's partition: it was
 * attached here in that partition, or its bytes came here from a device that may write the
 * partition and holds it shown there (a live session's manifest says so), or, once, when a
 * replica from before this rule was first opened (held then, and named by rows of a single
 * partition). Knowing a blob's hash is not enough to be served it. */

/* Records blob id as held shown in partition part. */
int zila_blob_held_add(struct zila_store *s, const uint8_t id[32], const char *part, struct zila_error *err) ZILA_MUST_CHECK;
/* Whether blob id is recorded as held shown in partition part. */
bool zila_blob_held_in(struct zila_store *s, const uint8_t id[32], const char *part);
/* For a file read from a bundle, which says nothing of where it was shown: when the live rows
 * naming blob id are all in one partition and filter allows it (NULL: any), records it held
 * shown there; else nothing (the network shows it later). */
int zila_blob_held_sole(struct zila_store *s, const uint8_t id[32], zila_part_filter_fn filter, void *ctx,
			struct zila_error *err) ZILA_MUST_CHECK;
typedef int (*zila_blob_part_fn)(void *ctx, const char *part);
/* The partitions filter allows (NULL: any) in which a live row refers to blob id and it is
 * held shown, each once, in order; stops at fn's first non-zero return (returned). */
int zila_blob_shown(struct zila_store *s, const uint8_t id[32], zila_part_filter_fn filter, void *fctx,
		    zila_blob_part_fn fn, void *ctx) ZILA_MUST_CHECK;
/* What a live session asks for: each blob live rows refer to that is not held whole
 * (present false), or held whole but not shown in some partition of a live row naming it
 * (present true), in rowid order of the rows, with the partitions of its live rows where it
 * is not shown (parts, borrowed for the call; nparts of them, at most ZILA_BLOB_PARTS_MAX). */
#define ZILA_BLOB_PARTS_MAX 64
typedef int (*zila_blob_need_fn)(void *ctx, const uint8_t id[32], uint64_t size, bool asked, uint32_t have_chunks,
				 bool present, const char *const *parts, size_t nparts);
int zila_blob_needed(struct zila_store *s, zila_blob_need_fn fn, void *ctx, struct zila_error *err) ZILA_MUST_CHECK;

/* For a bundle (zila bundle create --with-attachments): the blobs a live attachments row in a
 * partition filter allows (NULL: any) refers to and held shown in that partition, in hash order. fn gets each one held here
 * whole of at most max_size bytes (0: any size); *nabsent counts those not held here and
 * *nlarge those over max_size (either may be NULL). Stops at fn's first non-zero return. */
typedef int (*zila_blob_held_fn)(void *ctx, const uint8_t id[32], uint64_t size);
int zila_blob_readable(struct zila_store *s, zila_part_filter_fn filter, void *fctx, uint64_t max_size,
		       zila_blob_held_fn fn, void *ctx, uint64_t *nabsent, uint64_t *nlarge,
		       struct zila_error *err) ZILA_MUST_CHECK;

/* A held blob, mapped and checked against its id, to be sent in chunks. */
struct zila_blob_reader;
/* ZILA_ENOTFOUND when not held; ZILA_EFORMAT when the copy is damaged (removed). */
int zila_blob_reader_open(struct zila_store *s, const uint8_t id[32], struct zila_blob_reader **out,
			  struct zila_error *err) ZILA_MUST_CHECK;
uint64_t zila_blob_reader_size(const struct zila_blob_reader *rd);
/* The chunk hashes (borrowed until free): nchunks x 32 bytes. */
struct zila_view zila_blob_reader_manifest(const struct zila_blob_reader *rd);
/* Chunk i's bytes (borrowed until free); an empty view past the end. */
struct zila_view zila_blob_reader_chunk(const struct zila_blob_reader *rd, uint32_t i);
void zila_blob_reader_free(struct zila_blob_reader *rd);

/* A blob being received: chunks are verified one by one and appended to DIR/blobs/ab/...part
 * (the manifest kept beside it), so a cut keeps every verified chunk. */
struct zila_blob_writer;
/* Checks that the manifest (size, chunk hashes) makes id (ZILA_EFORMAT if not), keeps it,
 * and resumes a partial copy: *next is the first chunk still wanted. A blob held whole:
 * ZILA_EEXIST. */
int zila_blob_writer_open(struct zila_store *s, const uint8_t id[32], uint64_t size, const uint8_t *chunk_hashes,
			  size_t nchunks, struct zila_blob_writer **out, uint32_t *next, struct zila_error *err) ZILA_MUST_CHECK;
/* Adds chunk i (which must be the next one): ZILA_EFORMAT when its bytes do not match the
 * manifest (refused, nothing kept), ZILA_EFULL/ZILA_EIO from the disk. On the last chunk the
 * blob is synced and renamed into place. */
int zila_blob_writer_add(struct zila_blob_writer *w, uint32_t i, const uint8_t *p, size_t len,
			 struct zila_error *err) ZILA_MUST_CHECK;
bool zila_blob_writer_done(const struct zila_blob_writer *w);
void zila_blob_writer_free(struct zila_blob_writer *w);
/* How many chunks a partial copy of id holds verified (0: none), from its kept manifest. */
uint32_t zila_blob_part_chunks(struct zila_store *s, const uint8_t id[32]);

/* --- collecting -------------------------------------------------------------------- */

/* Removes blobs no live row refers to once they have been unreferenced since before
 * horizon_ms (zila_store_horizon_ms): the first pass that sees one unreferenced notes the
 * time; a blob referred to again is kept. Partial copies of such blobs go too. A blob held
 * shown in some partition is referred to only by live rows of those partitions (one held for
 * d1 that only d2's rows name is collected); one shown in none, by any live row. */
int zila_blob_collect(struct zila_store *s, int64_t horizon_ms, uint64_t *nremoved, uint64_t *bytes_removed,
		      struct zila_error *err) ZILA_MUST_CHECK;
/* zila_blob_collect one directory at a time (DIR/blobs/00 ... ff), for a caller that must not
 * hold its loop for long: does directory *next and advances it; the counts are added to.
 * Once *next reaches ZILA_BLOB_COLLECT_STEPS the pass is over: it then also forgets fetches
 * asked for (zila_blob_ask) that are done with, the blob being here or no live row referring
 * to it. */
#define ZILA_BLOB_COLLECT_STEPS 256
int zila_blob_collect_step(struct zila_store *s, int64_t horizon_ms, unsigned *next, uint64_t *nremoved,
			   uint64_t *bytes_removed, struct zila_error *err) ZILA_MUST_CHECK;

#endif
