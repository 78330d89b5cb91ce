/* Fuzzes the vector file reader (`zila bundle create --for`, src/sync/vecfile.c): any text
 * must parse or be refused with a reason, never crash; a file signed by the device it names
 * must verify, and the same file with any byte before its signature line changed must not. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zila/bundle.h"

static uint8_t pk[32], sk[64];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		abort();
	crypto_sign_seed_keypair(pk, sk, (const uint8_t *)"zila fuzz vector device key seed");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zila_vector_file f;
	struct zila_error err;
	/* as it comes */
	if (zila_vector_file_parse(zila_view_make(data, size), &f, &err) == 0)
		zila_vector_file_release(&f);
	else if (err.msg[0] == '\0')
		abort(); /* a refusal says why */

	/* signed by the device it names: the input's lines (naming no device or signature of their
	 * own: scanf's spaces match none, so "#device" is a device line too) as feeds */
	if (size == 0 || size > 4096 || memmem(data, size, "sig", 3) != NULL || memmem(data, size, "device", 6) != NULL)
		return 0;
	struct zila_buf b;
	char hex[65], sighex[129];
	uint8_t sig[64];
	zila_buf_init(&b, 1 << 16);
	zila_hex_encode(hex, pk, 32);
	int r = zila_buf_put(&b, "# device ", 9);
	r = r ? r : zila_buf_put(&b, hex, 64);
	r = r ? r : zila_buf_put(&b, "\n# made 1700000000\n", 19);
	r = r ? r : zila_buf_put(&b, data, size);
	r = r ? r : zila_buf_put(&b, "\n", 1);
	if (r == 0) {
		crypto_sign_detached(sig, NULL, b.p, b.len, sk);
		zila_hex_encode(sighex, sig, 64);
		r = zila_buf_put(&b, "# sig ", 6);
		r = r ? r : zila_buf_put(&b, sighex, 128);
		r = r ? r : zila_buf_put(&b, "\n", 1);
	}
	if (r == 0 && zila_vector_file_parse(zila_buf_view(&b), &f, &err) == 0) {
		if (!f.has_device || !f.signed_ok)
			abort(); /* a file its device signed verifies */
		zila_vector_file_release(&f);
		/* one byte of the signed part changed: it does not verify (or is refused) */
		size_t at = 64 + (size_t)data[0] % (b.len - 64 - 136);
		b.p[at] ^= 0x01;
		if (zila_vector_file_parse(zila_buf_view(&b), &f, &err) == 0) {
			if (f.has_device && f.signed_ok && memcmp(f.device, pk, 32) == 0 && at >= 9 + 64)
				abort();
			zila_vector_file_release(&f);
		}
	}
	zila_buf_release(&b);
	return 0;
}
