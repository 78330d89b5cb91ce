/* Fuzzes the entry body decoder and the merge: each input becomes the body of a signed
 * entry (so it gets past the signature check) and is applied to a real replica. The replica
 * lives in memory-backed storage (/dev/shm when there is one: a commit's fsync costs
 * nothing there) and is made anew every RENEW inputs, so that it does not grow without end:
 * thousands of inputs a second instead of tens. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zila/store.h"

#define RENEW 20000

static struct zila_store *store;
static uint8_t pk[32], sk[64];
static uint64_t seq, ninputs;
static char dir[64];

/* A new, empty replica in dir (the old one removed). */
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
	snprintf(dir, sizeof(dir), "%s/zila-fuzz-entry-XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (sodium_init() < 0 || mkdtemp(dir) == NULL)
		abort();
	renew();
	crypto_sign_seed_keypair(pk, sk, (const uint8_t *)"zila fuzz entry origin key seed!");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zila_buf b;
	uint8_t sig[64];
	if (size < 1)
		return 0;
	if (++ninputs % RENEW == 0)
		renew();
	const char *part = (data[0] & 1) ? "d1" : "";
	zila_buf_init(&b, 4u << 20);
	int r = zila_buf_put_u8(&b, 1);
	r = r ? r : zila_buf_put(&b, pk, 32);
	r = r ? r : zila_buf_put_lenbytes(&b, part, strlen(part));
	r = r ? r : zila_buf_put_varint(&b, ++seq);
	r = r ? r : zila_buf_put_u64be(&b, (seq + 1000) << 16);
	r = r ? r : zila_buf_put_varint(&b, 1);
	r = r ? r : zila_buf_put_varint(&b, 0);
	r = r ? r : zila_buf_put_u8(&b, (data[0] & 2) ? 1 : 0); /* codec: raw or zstd */
	r = r ? r : zila_buf_put_lenbytes(&b, data + 1, size - 1);
	if (r == 0) {
		crypto_sign_detached(sig, NULL, b.p, b.len, sk);
		r = zila_buf_put(&b, sig, 64);
	}
	if (r == 0) {
		struct zila_view v = zila_buf_view(&b);
		struct zila_apply_stats st;
		struct zila_error err;
		if (zila_store_apply(store, &v, 1, &st, &err) != 0)
			abort(); /* bad input must be rejected, never break the database */
		if (st.napplied == 0 && st.nheld == 0)
			seq--; /* rejected: the feed did not move */
	}
	zila_buf_release(&b);
	return 0;
}
