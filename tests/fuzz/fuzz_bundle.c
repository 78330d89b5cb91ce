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
static char path[128];

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
	snprintf(path, sizeof(path), "%s/in.bndl", dir);
	if (zila_store_create(sub, &err) != 0 || zila_store_open(&store, sub, &err) != 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FILE *f = fopen(path, "wb");
	if (f == NULL)
		abort();
	bool fix = size > 0 && (data[0] & 1);
	if (size > 0 && fwrite(data, 1, size, f) != size)
		abort();
	if (fix) {
		uint8_t h[32];
		crypto_generichash(h, 32, data, size, NULL, 0);
		if (fwrite(h, 1, 32, f) != 32)
			abort();
	}
	fclose(f);
	struct zila_apply_stats st;
	struct zila_error err;
	(void)!zila_bundle_apply(store, NULL, path, &st, &err);
	return 0;
}
