/* libFuzzer harness for the frame decoder after the handshake: arbitrary bytes fed, in
 * chunks, to a channel that completed a real handshake (its state copied per input). The
 * first byte is the chunk size; half the inputs start after the peer's stream header. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_common_trust.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fz_org org;
static struct zila_channel a, b_before, b_after; /* b before/after a's stream header */
static struct zila_buf first_frame;
static int ready;

static void setup(void)
{
	struct zila_channel_config ca, cb;
	struct zila_buf a2b, b2a, msg;
	fz_org_make(&org);
	fz_config(&org, &ca, &cb);
	if (zila_channel_init(&a, &ca) != 0 || zila_channel_init(&b_before, &cb) != 0)
		abort();
	zila_buf_init(&a2b, 1 << 17);
	zila_buf_init(&b2a, 1 << 17);
	zila_buf_init(&msg, 1 << 21);
	if (zila_channel_start(&a, &a2b) != 0 || fz_feed(&b_before, a2b.p, a2b.len, a2b.len, &b2a, &msg) != 0)
		abort();
	zila_buf_reset(&a2b);
	if (fz_feed(&a, b2a.p, b2a.len, b2a.len, &a2b, &msg) != 0)
		abort();
	/* a2b: message 3, then a's stream header (28 bytes). Feed only message 3 to b_before. */
	size_t m3 = a2b.len - 28;
	zila_buf_reset(&b2a);
	if (fz_feed(&b_before, a2b.p, m3, m3, &b2a, &msg) != 0)
		abort();
	b_after = b_before;
	zila_buf_init(&b_after.in, 4 + ZILA_FRAME_MAX);
	if (fz_feed(&b_after, a2b.p + m3, 28, 28, &b2a, &msg) != 0)
		abort();
	zila_buf_init(&first_frame, 1 << 16);
	if (zila_channel_send(&a, (const uint8_t *)"seed", 4, &first_frame) != 0)
		abort();
	zila_buf_release(&a2b);
	zila_buf_release(&b2a);
	zila_buf_release(&msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ready) {
		setup();
		ready = 1;
	}
	if (size < 1)
		return 0;
	size_t chunk = 1 + (data[0] >> 1);
	struct zila_channel ch = (data[0] & 1) ? b_after : b_before;
	data++;
	size--;
	/* The copy gets its own input buffer; the templates' stay untouched. */
	zila_buf_init(&ch.in, 4 + ZILA_FRAME_MAX);
	struct zila_buf out, msg;
	zila_buf_init(&out, 1 << 16);
	zila_buf_init(&msg, 1 << 21);
	(void)fz_feed(&ch, data, size, chunk, &out, &msg);
	(void)zila_channel_eof(&ch);
	zila_buf_release(&ch.in);
	zila_buf_release(&out);
	zila_buf_release(&msg);
	return 0;
}
