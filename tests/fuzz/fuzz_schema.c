/* Fuzzes schema entries (#17). Every input's body is decoded and its statement classified
 * (zila_schema_decode, zila_schema_classify: thousands a second); and every 32nd input
 * (the replica's state depends on the inputs before it anyway) becomes a signed org-wide schema entry that a real
 * replica applies. Byte 0 chooses the body: bit 0, a well-formed body whose statement and
 * partition column are the rest of the input (split at the first NUL), so that the fuzzer
 * works on what a replica accepts as a schema change and runs; else the rest is the body
 * after the schema table's name, malformed as it likes. Bits 1-2 move the entry's schema
 * version off the next one. The replica is made anew every RENEW inputs, in memory-backed
 * storage. Every input must be applied, held or refused, never break the replica. */
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zila/schema.h"
#include "zila/store.h"

#define RENEW 200

static struct zila_store *store;
static uint8_t pk[32], sk[64];
static uint64_t seq, ninputs;
static char dir[64];

static void renew(void)
{
	char sub[96], cmd[128];
	struct zila_error err;
	zila_store_free(store);
	store = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s/r'", dir);
	if (system(cmd) != 0)
		abort();
	snprintf(sub, sizeof(sub), "%s/r", dir);
	if (zila_store_create(sub, &err) != 0 || zila_store_open(&store, sub, &err) != 0)
		abort();
	seq = 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(dir, sizeof(dir), "%s/zila-fuzz-schema-XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (sodium_init() < 0 || mkdtemp(dir) == NULL)
		abort();
	renew();
	crypto_sign_seed_keypair(pk, sk, (const uint8_t *)"zila fuzz schema origin key seed");
	return 0;
}

static int put_text(struct zila_buf *b, const uint8_t *p, size_t n)
{
	int r = zila_buf_put_u8(b, 3); /* TEXT */
	return r ? r : zila_buf_put_lenbytes(b, p, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zila_buf b, body;
	uint8_t sig[64];
	if (size < 1 || size > 70000)
		return 0;
	bool apply = ++ninputs % 32 == 0;
	if (apply && ninputs % (32 * RENEW) == 0)
		renew();
	uint64_t v = zila_schema_version(store) + 1 + ((data[0] >> 1) & 3);
	if (((data[0] >> 1) & 3) == 3)
		v = zila_schema_version(store); /* one applied already */
	zila_buf_init(&b, 4u << 20);
	zila_buf_init(&body, 4u << 20);
	int r = zila_buf_put_varint(&body, 1);
	r = r ? r : zila_buf_put_lenbytes(&body, "zila_schema", 11);
	if (data[0] & 1) {
		const uint8_t *nul = memchr(data + 1, 0, size - 1);
		size_t sql_len = nul ? (size_t)(nul - data - 1) : size - 1;
		r = r ? r : zila_buf_put_varint(&body, 2);
		r = r ? r : zila_buf_put_lenbytes(&body, "sql", 3);
		r = r ? r : zila_buf_put_lenbytes(&body, "partition", 9);
		r = r ? r : zila_buf_put_varint(&body, 1);
		r = r ? r : zila_buf_put_varint(&body, 0);
		r = r ? r : zila_buf_put_u8(&body, 1);
		r = r ? r : zila_buf_put_u8(&body, 1); /* INTEGER */
		r = r ? r : zila_buf_put_varint(&body, v << 1);
		r = r ? r : put_text(&body, data + 1, sql_len);
		if (nul != NULL)
			r = r ? r : put_text(&body, nul + 1, size - 1 - sql_len - 1);
		else
			r = r ? r : zila_buf_put_u8(&body, 0); /* NULL: org-wide */
	} else {
		r = r ? r : zila_buf_put(&body, data + 1, size - 1);
	}
	r = r ? r : zila_buf_put_u8(&b, 1);
	r = r ? r : zila_buf_put(&b, pk, 32);
	r = r ? r : zila_buf_put_lenbytes(&b, "", 0);
	r = r ? r : zila_buf_put_varint(&b, ++seq);
	r = r ? r : zila_buf_put_u64be(&b, (seq + 1000) << 16);
	r = r ? r : zila_buf_put_varint(&b, v);
	r = r ? r : zila_buf_put_varint(&b, 0);
	r = r ? r : zila_buf_put_u8(&b, 0);
	r = r ? r : zila_buf_put_lenbytes(&b, body.p, body.len);
	/* the decoder and the classifier alone */
	char *sql = NULL, *pcol = NULL;
	struct zila_error cerr;
	if (r == 0 && zila_schema_decode(zila_buf_view(&body), (uint32_t)v, &sql, &pcol) == 0) {
		int rc = zila_schema_classify(sql, &cerr);
		if (rc != 0 && rc != ZILA_EINVAL)
			abort();
	}
	free(sql);
	free(pcol);
	if (r == 0 && !apply)
		r = 1; /* not applied to the replica this time */
	if (r == 0) {
		crypto_sign_detached(sig, NULL, b.p, b.len, sk);
		r = zila_buf_put(&b, sig, 64);
	}
	if (r == 0) {
		struct zila_view view = zila_buf_view(&b);
		struct zila_apply_stats st;
		struct zila_error err;
		if (zila_store_apply(store, &view, 1, &st, &err) != 0)
			abort(); /* bad input must be refused or held, never break the database */
		if (st.napplied == 0 && st.nheld == 0)
			seq--; /* rejected: the feed did not move */
		/* the replica still opens its tables and seals */
		if (zila_store_seal(store, NULL, &err) != 0)
			abort();
	} else {
		seq--;
	}
	zila_buf_release(&b);
	zila_buf_release(&body);
	return 0;
}
