/* Fuzzes the reader of the files after a bundle's rows (version 5, proto/ENTRY.md "Bundle
 * with files"): records, heads, chunks, the trailer. The rows are a real bundle of the
 * harness's own replica, encrypted by the spec with a key the harness knows. An input whose
 * first byte is odd is the content of a file the harness frames and encrypts itself (its id
 * made from its chunks, a row referring to it), with at most one flipped byte or cut and a
 * trailer count taken from the input: a clean one must be kept whole, a damaged one never
 * kept. Otherwise the input follows the rows as it is. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zila/blob.h"
#include "zila/bundle.h"
#include "zila/os.h"
#include "zila/store.h"

#define SS_HEADER crypto_secretstream_xchacha20poly1305_HEADERBYTES
#define SS_ABYTES crypto_secretstream_xchacha20poly1305_ABYTES

static struct zila_store *store;
static char dir[80];
static struct zila_buf rows; /* the replica's own bundle, plaintext */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	char top[] = "/tmp/zila-fuzz-files-XXXXXX";
	struct zila_error err;
	if (sodium_init() < 0 || mkdtemp(top) == NULL)
		abort();
	snprintf(dir, sizeof(dir), "%s/r", top);
	if (zila_store_create(dir, &err) != 0 || zila_store_open(&store, dir, &err) != 0 ||
	    zila_store_exec_captured(store,
				     "INSERT INTO states(id, name) VALUES ('s1', 'S');"
				     "INSERT INTO districts(id, state_id, name) VALUES ('d1', 's1', 'One')",
				     NULL, NULL, &err) != 0)
		abort();
	zila_buf_init(&rows, 64u << 20);
	if (zila_bundle_write(store, NULL, NULL, NULL, zila_buf_sink, &rows, NULL, &err) != 0)
		abort();
	return 0;
}

static void put_be(uint8_t *p, uint64_t x, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(x >> (8 * (n - 1 - i)));
}

struct out {
	uint8_t *p;
	size_t len, cap;
};

static void out_put(struct out *o, const void *p, size_t n)
{
	if (o->len + n > o->cap) {
		o->cap = (o->len + n) * 2;
		if ((o->p = realloc(o->p, o->cap)) == NULL)
			abort();
	}
	memcpy(o->p + o->len, p, n);
	o->len += n;
}

static void ss_msg(struct out *o, crypto_secretstream_xchacha20poly1305_state *st, const uint8_t *m, size_t n,
		   const uint8_t *ad, size_t ad_len, unsigned char tag)
{
	uint8_t *ct = malloc(n + SS_ABYTES + 4);
	unsigned long long clen;
	if (ct == NULL)
		abort();
	crypto_secretstream_xchacha20poly1305_push(st, ct + 4, &clen, m, n, ad, ad_len, tag);
	put_be(ct, clen, 4);
	out_put(o, ct, (size_t)clen + 4);
	free(ct);
}

/* The rows, version 5, to this replica's device key; *key gets the file key. */
static void seal_rows(struct out *o, uint8_t *key)
{
	crypto_secretstream_xchacha20poly1305_state st;
	uint8_t head[8 + 2 + 32 + crypto_box_SEALBYTES + 32 + SS_HEADER], xpk[32];
	crypto_secretstream_xchacha20poly1305_keygen(key);
	memcpy(head, "ZILABNDL", 8);
	head[8] = ZILA_BUNDLE_FILES_VERSION;
	head[9] = ZILA_BUNDLE_TO_DEVICE;
	memcpy(head + 10, zila_store_device_pk(store), 32);
	if (crypto_sign_ed25519_pk_to_curve25519(xpk, head + 10) != 0 || crypto_box_seal(head + 42, key, 32, xpk) != 0)
		abort();
	crypto_secretstream_xchacha20poly1305_init_push(&st, head + 42 + crypto_box_SEALBYTES + 32, key);
	out_put(o, head, sizeof(head));
	for (size_t off = 0; off < rows.len;) {
		size_t k = rows.len - off < ZILA_BUNDLE_CHUNK ? rows.len - off : ZILA_BUNDLE_CHUNK;
		ss_msg(o, &st, rows.p + off, k, off == 0 ? head : NULL, off == 0 ? sizeof(head) : 0,
		       off + k == rows.len ? crypto_secretstream_xchacha20poly1305_TAG_FINAL : 0);
		off += k;
	}
}

/* One file's record (ENTRY.md): its own stream under key, head, chunks. */
static void file_record(struct out *o, const uint8_t *key, const uint8_t *p, size_t n, uint8_t id[32])
{
	crypto_secretstream_xchacha20poly1305_state st;
	struct zila_buf ch;
	struct out rec = { 0 };
	uint8_t hdr[SS_HEADER], len8[8];
	zila_buf_init(&ch, ZILA_BLOB_CHUNKS_MAX * 32);
	if (zila_blob_hash_mem(p, n, &ch, id) != 0)
		abort();
	size_t nch = ch.len / 32;
	uint8_t *head = malloc(40 + ch.len);
	if (head == NULL)
		abort();
	memcpy(head, id, 32);
	put_be(head + 32, n, 8);
	if (ch.len > 0)
		memcpy(head + 40, ch.p, ch.len);
	crypto_secretstream_xchacha20poly1305_init_push(&st, hdr, key);
	out_put(&rec, hdr, sizeof(hdr));
	ss_msg(&rec, &st, head, 40 + ch.len, NULL, 0, nch == 0 ? crypto_secretstream_xchacha20poly1305_TAG_FINAL : 0);
	for (size_t i = 0; i < nch; i++) {
		size_t off = i * ZILA_BLOB_CHUNK, k = n - off < ZILA_BLOB_CHUNK ? n - off : ZILA_BLOB_CHUNK;
		ss_msg(&rec, &st, p + off, k, NULL, 0, i + 1 == nch ? crypto_secretstream_xchacha20poly1305_TAG_FINAL : 0);
	}
	put_be(len8, rec.len, 8);
	out_put(o, len8, 8);
	out_put(o, rec.p, rec.len);
	free(rec.p);
	free(head);
	zila_buf_release(&ch);
}

static void trailer(struct out *o, const uint8_t *key, uint32_t nfiles, uint64_t bytes)
{
	crypto_secretstream_xchacha20poly1305_state st;
	uint8_t end[8 + SS_HEADER] = { 0 }, tr[12];
	crypto_secretstream_xchacha20poly1305_init_push(&st, end + 8, key);
	out_put(o, end, sizeof(end));
	put_be(tr, nfiles, 4);
	put_be(tr + 4, bytes, 8);
	ss_msg(o, &st, tr, sizeof(tr), NULL, 0, crypto_secretstream_xchacha20poly1305_TAG_FINAL);
}

static void forget(const uint8_t id[32])
{
	char hex[65], path[200];
	zila_hex_encode(hex, id, 32);
	static const char *const suffix[] = { "", ".part", ".man" };
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/blobs/%.2s/%s%s", dir, hex, hex + 2, suffix[i]);
		(void)!zila_os_remove(path);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct out o = { 0 };
	uint8_t key[32], id[32];
	struct zila_apply_stats st;
	struct zila_bundle_files f;
	struct zila_error err;
	bool made = size >= 4 && (data[0] & 1), clean = false;
	size_t rows_end;
	seal_rows(&o, key);
	rows_end = o.len;
	if (made) {
		/* the content: the input after 4 bytes, repeated to data[1] * 1031 bytes (up to 4 chunks) */
		size_t n = (size_t)data[1] * 1031, m = size - 4;
		uint8_t *p = malloc(n ? n : 1);
		if (p == NULL)
			abort();
		for (size_t i = 0; i < n; i++)
			p[i] = m ? data[4 + i % m] : (uint8_t)i;
		file_record(&o, key, p, n, id);
		trailer(&o, key, 1 + (data[2] & 1), n);
		free(p);
		char hex[65], *sql;
		zila_hex_encode(hex, id, 32);
		if ((sql = malloc(300)) == NULL)
			abort();
		snprintf(sql, 300, "INSERT OR IGNORE INTO attachments (id, district_id, hash, size) VALUES ('%.32s', 'd1', '%s', %zu)",
			 hex, hex, n);
		zila_error_clear(&err);
		if (zila_store_exec_captured(store, sql, NULL, NULL, &err) != 0)
			abort();
		free(sql);
		size_t files_len = o.len - rows_end, where = rows_end + (((size_t)data[2] << 8 | data[3]) % files_len);
		if (data[0] & 4)
			o.p[where] ^= (uint8_t)(1u << (data[0] >> 5));
		else if (data[0] & 8)
			o.len = where;
		else
			clean = !(data[2] & 1); /* the trailer counts what came */
	} else {
		out_put(&o, data, size);
	}
	zila_error_clear(&err);
	int r = zila_bundle_read_ex(store, NULL, o.p, o.len, "fuzz", &st, &f, &err);
	if (r != 0)
		abort(); /* the rows come before any byte the fuzzer touched */
	if (made && clean && (f.nstored != 1 || f.nrefused + f.nmissing != 0 || !zila_blob_present(store, id)))
		abort(); /* a file made by the spec is kept whole */
	if (made && !clean && f.nstored + f.nheld + f.nother > 0 && f.nrefused + f.nmissing == 0)
		abort(); /* a flipped byte, a cut or a wrong count never passes unsaid */
	if (made)
		forget(id);
	free(o.p);
	return 0;
}
