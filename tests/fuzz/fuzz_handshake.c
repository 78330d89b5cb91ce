/* libFuzzer harness for the handshake: arbitrary bytes as message 1 (to a responder), as
 * message 2 (to an initiator that sent a real message 1) or as message 3 (to a responder
 * that answered a real message 1). The first byte picks the target and the chunk size. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_common_trust.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fz_org org;
static int ready;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ready) {
		fz_org_make(&org);
		ready = 1;
	}
	if (size < 1)
		return 0;
	unsigned target = data[0] % 3, chunk = 1 + (data[0] >> 2);
	data++;
	size--;
	struct zila_channel_config ca, cb;
	struct zila_channel a, b;
	struct zila_buf a2b, b2a, msg;
	fz_config(&org, &ca, &cb);
	if (zila_channel_init(&a, &ca) != 0 || zila_channel_init(&b, &cb) != 0)
		abort();
	zila_buf_init(&a2b, 1 << 17);
	zila_buf_init(&b2a, 1 << 17);
	zila_buf_init(&msg, 1 << 21);
	if (target == 0) {
		(void)fz_feed(&b, data, size, chunk, &b2a, &msg);
	} else {
		if (zila_channel_start(&a, &a2b) != 0)
			abort();
		if (target == 1) {
			(void)fz_feed(&a, data, size, chunk, &a2b, &msg);
		} else {
			if (fz_feed(&b, a2b.p, a2b.len, a2b.len, &b2a, &msg) != 0)
				abort();
			(void)fz_feed(&b, data, size, chunk, &b2a, &msg);
		}
	}
	zila_channel_release(&a);
	zila_channel_release(&b);
	zila_buf_release(&a2b);
	zila_buf_release(&b2a);
	zila_buf_release(&msg);
	return 0;
}
