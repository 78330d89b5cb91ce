/* libFuzzer harness for the LAN beacon decoder: any datagram, opened with a fixed key and
 * with the key of the organisation whose beacons seed the corpus; what opens is checked
 * against the replay filter and sealed again. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "zila/daemon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t key[32];
	static struct zila_beacon_seen seen;
	static int ready;
	if (!ready) {
		uint8_t root[32], self[32];
		if (sodium_init() < 0)
			abort();
		memset(root, 7, sizeof(root)); /* the corpus' organisation secret */
		memset(self, 1, sizeof(self));
		zila_beacon_key(root, key);
		zila_beacon_seen_init(&seen, self);
		ready = 1;
	}
	struct zila_beacon b;
	int r = zila_beacon_open(key, data, size, &b);
	if (r != 0) {
		if (b.port != 0 || b.time_ms != 0)
			abort(); /* a refused beacon leaves nothing behind */
		return 0;
	}
	if (size != ZILA_BEACON_LEN || b.port == 0)
		abort();
	(void)zila_beacon_accept(&seen, &b, b.time_ms);
	uint8_t again[ZILA_BEACON_LEN];
	struct zila_beacon c;
	zila_beacon_seal(key, &b, again);
	if (zila_beacon_open(key, again, sizeof(again), &c) != 0 || memcmp(&b, &c, sizeof(b)) != 0)
		abort();
	return 0;
}
