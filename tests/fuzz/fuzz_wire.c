/* Fuzzes the wire form of entries (packed chunks, proto/PROTOCOL.md): input byte 0 picks
 *  - even: the rest is a run of wire-form entries, read one by one as a receiver does
 *    (each result is checked like a received entry: nothing may crash or overrun);
 *  - odd: the rest is an entry body; it is sealed into a signed version 2 entry, sent
 *    through the wire form and back, and what comes back must verify exactly when the
 *    original does, never failing on the signature (the column form gives back the very
 *    body its author signed; a body it cannot take goes verbatim). */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "zila/store.h"

static struct zila_entry_coder *coder;
static uint8_t pk[32], sk[64];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (sodium_init() < 0 || zila_entry_coder_new(&coder) != 0)
		abort();
	crypto_sign_seed_keypair(pk, sk, (const uint8_t *)"zila fuzz wire   origin key seed");
	return 0;
}

static void read_run(const uint8_t *p, size_t n)
{
	struct zila_view in = zila_view_make(p, n);
	struct zila_buf out;
	zila_buf_init(&out, 4u << 20);
	while (in.len > 0) {
		struct zila_entry_info info;
		zila_buf_reset(&out);
		if (zila_entry_from_wire(coder, &in, &out) != 0)
			break;
		(void)zila_entry_verify(zila_buf_view(&out), &info);
	}
	zila_buf_release(&out);
}

static void round_trip(const uint8_t *body, size_t n)
{
	struct zila_buf e, msg, wire, back;
	uint8_t sig[64];
	zila_buf_init(&e, 4u << 20);
	zila_buf_init(&msg, 4u << 20);
	zila_buf_init(&wire, 8u << 20);
	zila_buf_init(&back, 4u << 20);
	/* head: version 2, origin, partition "d1", seq 1, hlc, schema 1, no deps */
	int r = zila_buf_put_u8(&e, ZILA_ENTRY_VERSION);
	r = r ? r : zila_buf_put(&e, pk, 32);
	r = r ? r : zila_buf_put_lenbytes(&e, "d1", 2);
	r = r ? r : zila_buf_put_varint(&e, 1);
	r = r ? r : zila_buf_put_u64be(&e, (uint64_t)1000 << 16);
	r = r ? r : zila_buf_put_varint(&e, 1);
	r = r ? r : zila_buf_put_varint(&e, 0);
	size_t head_len = e.len;
	uint8_t digest[32];
	crypto_generichash(digest, 32, body, n, NULL, 0);
	r = r ? r : zila_buf_put(&msg, e.p, head_len);
	r = r ? r : zila_buf_put(&msg, digest, 32);
	r = r ? r : zila_buf_put_u8(&e, 0);
	r = r ? r : zila_buf_put_lenbytes(&e, body, n);
	if (r == 0 && e.len + 64 <= ZILA_ENTRY_MAX + 4096) {
		crypto_sign_detached(sig, NULL, msg.p, msg.len, sk);
		if (zila_buf_put(&e, sig, 64) != 0 || zila_entry_to_wire(coder, zila_buf_view(&e), &wire) != 0)
			abort();
		struct zila_view w = zila_buf_view(&wire);
		struct zila_entry_info info;
		if (zila_entry_from_wire(coder, &w, &back) != 0 || w.len != 0)
			abort(); /* what a sender makes, a receiver reads */
		/* and it is the entry that was signed: it verifies exactly when the original does
		 * (a body that is not a body fails both ways, never the signature) */
		int r0 = zila_entry_verify(zila_buf_view(&e), &info);
		int r1 = zila_entry_verify(zila_buf_view(&back), &info);
		if (r0 != r1 || r1 == ZILA_ESIG)
			abort();
	}
	zila_buf_release(&e);
	zila_buf_release(&msg);
	zila_buf_release(&wire);
	zila_buf_release(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		round_trip(data + 1, size - 1);
	else
		read_run(data + 1, size - 1);
	return 0;
}
