/* Fuzzes the bundle reader: framing, records and entries. The input's checksum is fixed
 * up half of the time, so the fuzzer also gets past it into record parsing. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zila/bundle.h"
#include "zila/store.h"

static struct zila_store *store;
static uint8_t *buf;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	char dir[] = "/tmp/zila-fuzz-bundle-XXXXXX";
	struct zila_error err;
	if (sodium_init() < 0 || mkdtemp(dir) == NULL)
		abort();
	char sub[80];
	snprintf(sub, sizeof(sub), "%s/r", dir);
	if (zila_store_create(sub, &err) != 0 || zila_store_open(&store, sub, &err) != 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a copy of its own, so that reading past the input is caught */
	bool fix = size > 0 && (data[0] & 1);
	size_t len = size + (fix ? 32 : 0);
	free(buf);
	if ((buf = malloc(len ? len : 1)) == NULL)
		abort();
	if (size > 0)
		memcpy(buf, data, size);
	if (fix)
		crypto_generichash(buf + size, 32, data, size, NULL, 0);
	struct zila_apply_stats st;
	struct zila_error err;
	(void)!zila_bundle_read(store, NULL, buf, len, "fuzz", &st, &err);
	return 0;
}
