/* USB bundles: the sync session's messages as one run of bytes, for replicas that meet no
 * network. One code path with the live session (proto/PROTOCOL.md, "Bundles"). Pure: the
 * bytes go out through a sink and come in as memory; files are the caller's (zila/os.h). */
#ifndef ZILA_BUNDLE_H
#define ZILA_BUNDLE_H

#include "zila/buf.h"
#include "zila/err.h"
#include "zila/store.h"
#include "zila/trust.h"

#define ZILA_BUNDLE_VERSION 4 /* the bundle inside the encryption: packed chunks (PROTOCOL.md) */
#define ZILA_BUNDLE_VERSION_OLD 2 /* entries as stored (zila before packed chunks): still read */
#define ZILA_BUNDLE_MIN (8 + 1 + 4 + 32) /* the bytes of an empty bundle */
#define ZILA_BUNDLE_SEALED_VERSION 3 /* an encrypted bundle (proto/ENTRY.md, "Bundle") */
#define ZILA_BUNDLE_CHUNK 65536      /* plaintext bytes per secretstream chunk */
#define ZILA_BUNDLE_FILES_VERSION 5  /* an encrypted bundle followed by attachments' files (ENTRY.md) */

/* Whom a bundle is encrypted to. */
enum zila_bundle_kind {
	ZILA_BUNDLE_PLAIN = 0,     /* version 2, not encrypted (an older zila's) */
	ZILA_BUNDLE_TO_DEVICE = 1, /* to one device's key (bundle create --for) */
	ZILA_BUNDLE_TO_ORG = 2,    /* to any enrolled device: the organisation's bundle key */
};

struct zila_bundle_to {
	enum zila_bundle_kind kind;      /* TO_DEVICE or TO_ORG */
	uint8_t device_pk[32];           /* TO_DEVICE: the receiver's Ed25519 key */
	uint8_t org_key[32];             /* TO_ORG: zila_org_bundle_key() of the secret */
};

/* The keys a receiver opens bundles with; any may be missing. */
struct zila_bundle_keys {
	const uint8_t *device_pk; /* 32 bytes: this device's Ed25519 key */
	const uint8_t *device_sk; /* 64 bytes: its secret key */
	const uint8_t *org_key;   /* 32 bytes: zila_org_bundle_key(), NULL without a secret */
};

/* A vector file: the text `zila vector` prints on the receiving laptop (proto/ENTRY.md,
 * "Vector file"). has_device: it names its replica's device key; has_sig: it ends with a
 * "# sig" line, and signed_ok says whether that verifies under the key over the bytes before it; made: its "# made" time
 * (Unix seconds, 0 when absent), whose age the caller judges. */
struct zila_vector_file {
	struct zila_vector v; /* sorted: zila_vector_get() works */
	bool has_device, has_cert, has_sig, signed_ok;
	uint8_t device[32];
	uint8_t cert[ZILA_CERT_LEN];
	uint64_t made;
};
/* Parses text; ZILA_EFORMAT (err names the line) when it is not one. */
int zila_vector_file_parse(struct zila_view text, struct zila_vector_file *out, struct zila_error *err) ZILA_MUST_CHECK;
void zila_vector_file_release(struct zila_vector_file *f);

/* Takes the next len bytes of a bundle (borrowed for the call); non-zero stops the writing
 * with that code. zila_os_atomic_write() and zila_buf_sink() have this shape. */
typedef int (*zila_bundle_sink_fn)(void *ctx, const uint8_t *p, size_t len);

/* Writes a bundle with every trust record and the entries `have` lacks (all when NULL)
 * within the read filter, through sink, from one read snapshot. Seals local changes first.
 * *nentries (may be NULL) gets the number of entries written. On failure the sink has had
 * part of a bundle: the caller discards it (zila_os_atomic_abort). */
int zila_bundle_write(struct zila_store *s, const struct zila_vector *have, zila_part_filter_fn filter,
		      void *filter_ctx, zila_bundle_sink_fn sink, void *sink_ctx, size_t *nentries,
		      struct zila_error *err) ZILA_MUST_CHECK;

/* zila_bundle_write, encrypted to `to` (proto/ENTRY.md, "Bundle"): a fresh file key sealed
 * to the device (crypto_box_seal to its X25519 form) or boxed under the organisation's key,
 * then the bundle in crypto_secretstream_xchacha20poly1305 chunks of ZILA_BUNDLE_CHUNK bytes,
 * the last tagged FINAL, the clear header authenticated with the first. Streams: memory use
 * does not grow with the bundle. to NULL writes a plaintext bundle (tests, benchmarks). */
int zila_bundle_write_to(struct zila_store *s, const struct zila_vector *have, zila_part_filter_fn filter,
			 void *filter_ctx, const struct zila_bundle_to *to, zila_bundle_sink_fn sink, void *sink_ctx,
			 size_t *nentries, struct zila_error *err) ZILA_MUST_CHECK;

struct zila_bundle_summary;

/* What bundle create --with-attachments asks for (NULL or blobs false: a version-3 bundle,
 * byte for byte as before). */
struct zila_bundle_opts {
	bool blobs;          /* carry the files of attachments (a version-5 bundle) */
	uint64_t blobs_max;  /* only files of at most this many bytes (0: any size) */
	/* Called once the rows are written and before any file is, with the summary so far
	 * (rows_bytes, nentries) and the files to come (nfiles, files_bytes: exact); non-zero
	 * stops the writing with that code (err set). May be NULL. */
	int (*plan)(void *ctx, const struct zila_bundle_summary *sum, struct zila_error *err);
	void *plan_ctx;
};

/* What a bundle holds, as written. */
struct zila_bundle_summary {
	size_t nentries;      /* entries */
	uint64_t rows_bytes;  /* the file's bytes up to the end of the rows (headers included) */
	uint64_t nfiles;      /* attachments' files carried */
	uint64_t files_bytes; /* the file's bytes after the rows: the files with their framing */
	uint64_t nabsent;     /* files rows refer to that are not held here (not carried) */
	uint64_t nlarge;      /* files over blobs_max (not carried) */
	uint64_t ndamaged;    /* files found damaged on this disk while written (removed, not carried) */
	uint64_t bytes;       /* the whole bundle */
};

/* zila_bundle_write_to with options: opts->blobs adds, after the rows, every file held here
 * that a live attachments row in a partition filter allows refers to (ENTRY.md, "Bundle
 * with files"), each in a secretstream of its own; to must not be NULL then. sum (may be
 * NULL) gets what was written. */
int zila_bundle_write_ex(struct zila_store *s, const struct zila_vector *have, zila_part_filter_fn filter,
			 void *filter_ctx, const struct zila_bundle_to *to, const struct zila_bundle_opts *opts,
			 zila_bundle_sink_fn sink, void *sink_ctx, struct zila_bundle_summary *sum,
			 struct zila_error *err) ZILA_MUST_CHECK;

/* What reading a version-5 bundle did with its files. */
struct zila_bundle_files {
	uint64_t nfiles;       /* files read in the bundle */
	uint64_t nstored;      /* verified chunk by chunk and kept */
	uint64_t stored_bytes; /* their bytes */
	uint64_t nheld;        /* held here already: skipped */
	uint64_t nother;       /* no live row this device may read refers to them: not kept */
	uint64_t nrefused;     /* damaged (a chunk that does not decrypt or match its hash): refused */
	uint64_t nmissing;     /* the bundle said it carried more than could be read (truncated) */
	char why[256];         /* the first refusal, in words ("" when none) */
};

/* The kind of the bundle in p (enum zila_bundle_kind), or ZILA_EFORMAT / ZILA_EVERSION /
 * ZILA_ESHORT when it is not one this zila reads. Looks at the clear header only. */
int zila_bundle_kind(const uint8_t *p, size_t len);

/* Decrypts an encrypted bundle (version 3, or the rows of a version 5) with keys into plain
 * (a version-4 or -2 bundle, its checksum not yet checked). Pure. A bundle for another device, for an organisation whose
 * key is not given, damaged, truncated or with bytes after its end fails with a message in
 * err that names the bundle (name) and says that nothing was applied. */
int zila_bundle_decrypt(const uint8_t *p, size_t len, const struct zila_bundle_keys *keys, const char *name,
			struct zila_buf *plain, struct zila_error *err) ZILA_MUST_CHECK;

/* Fully verifies the bundle in p (framing, checksum, every message's limits, every entry's
 * signature) before applying anything, then applies it as a session would: trust records
 * (checked with trust; NULL: none are kept), then the entries in acknowledged-size chunks,
 * each chunk one transaction. A truncated or altered bundle applies nothing. name (the
 * file's path) is what err's messages call the bundle. An encrypted bundle is decrypted
 * first, with this device's key or the organisation secret it holds (zila_bundle_decrypt);
 * a plaintext one (version 2, an older zila's) is read as before: zila_bundle_kind tells. */
int zila_bundle_read(struct zila_store *s, struct zila_trust_ctx *trust, const uint8_t *p, size_t len,
		     const char *name, struct zila_apply_stats *st, struct zila_error *err) ZILA_MUST_CHECK;
/* zila_bundle_read, then, for a version-5 bundle, its files: each one a live attachments row
 * in a partition this device's certificate may read refers to (any, without a certificate)
 * and not held yet is verified chunk by chunk against its id and kept; a damaged one is
 * refused and the next one read. Files never stop the rows: they are read only after the
 * rows applied. Returns the rows' result; files (may be NULL) says what became of the files
 * (nrefused or nmissing non-zero: some did not arrive). */
int zila_bundle_read_ex(struct zila_store *s, struct zila_trust_ctx *trust, const uint8_t *p, size_t len,
			const char *name, struct zila_apply_stats *st, struct zila_bundle_files *files,
			struct zila_error *err) ZILA_MUST_CHECK;

#endif
