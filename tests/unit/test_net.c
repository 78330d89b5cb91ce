/* Unit tests of the daemon's pure parts: beacons (seal/open, tamper, other organisation,
 * replay and staleness), HOST:PORT parsing (backoff: test_sched). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "zila/daemon.h"

static const uint64_t NOW = 1795000000000ULL;

static void make_beacon(struct zila_beacon *b, uint8_t who, uint64_t t)
{
	memset(b, 0, sizeof(*b));
	memset(b->device_pk, who, 32);
	b->port = 7400;
	b->time_ms = t;
}

static void test_beacon_roundtrip(void **state)
{
	(void)state;
	uint8_t root[32], key[32], pkt[ZILA_BEACON_LEN], pkt2[ZILA_BEACON_LEN];
	struct zila_beacon b, got;
	memset(root, 7, sizeof(root));
	zila_beacon_key(root, key);
	make_beacon(&b, 0x42, NOW);
	zila_beacon_seal(key, &b, pkt);
	assert_int_equal(zila_beacon_open(key, pkt, sizeof(pkt), &got), 0);
	assert_memory_equal(got.device_pk, b.device_pk, 32);
	assert_int_equal(got.port, 7400);
	assert_true(got.time_ms == NOW);
	/* Fresh nonce each time: two beacons with the same content differ entirely. */
	zila_beacon_seal(key, &b, pkt2);
	assert_memory_not_equal(pkt + 1, pkt2 + 1, ZILA_BEACON_LEN - 1);
	/* Nothing of the device key or port is visible. */
	for (size_t i = 0; i + 4 <= sizeof(pkt); i++)
		assert_false(memcmp(pkt + i, b.device_pk, 4) == 0);
}

static void test_beacon_refusals(void **state)
{
	(void)state;
	uint8_t root[32], other[32], key[32], okey[32], pkt[ZILA_BEACON_LEN];
	struct zila_beacon b, got;
	memset(root, 7, sizeof(root));
	memset(other, 8, sizeof(other));
	zila_beacon_key(root, key);
	zila_beacon_key(other, okey);
	assert_memory_not_equal(key, okey, 32);
	make_beacon(&b, 0x42, NOW);
	zila_beacon_seal(key, &b, pkt);
	assert_int_equal(zila_beacon_open(okey, pkt, sizeof(pkt), &got), ZILA_EAUTH);
	assert_int_equal(zila_beacon_open(key, pkt, sizeof(pkt) - 1, &got), ZILA_EFORMAT);
	for (size_t i = 0; i < sizeof(pkt); i++) {
		uint8_t bad[ZILA_BEACON_LEN];
		memcpy(bad, pkt, sizeof(bad));
		bad[i] ^= 0x01;
		int r = zila_beacon_open(key, bad, sizeof(bad), &got);
		assert_true(r == ZILA_EAUTH || r == ZILA_EVERSION);
		assert_int_equal(got.port, 0);
	}
}

static void test_beacon_replay_and_staleness(void **state)
{
	(void)state;
	struct zila_beacon_seen seen;
	struct zila_beacon b;
	uint8_t self[32];
	memset(self, 1, sizeof(self));
	zila_beacon_seen_init(&seen, self);
	make_beacon(&b, 1, NOW);
	assert_int_equal(zila_beacon_accept(&seen, &b, NOW), ZILA_EEXIST); /* our own */
	make_beacon(&b, 2, NOW);
	assert_int_equal(zila_beacon_accept(&seen, &b, NOW), 0);
	assert_int_equal(zila_beacon_accept(&seen, &b, NOW + 10), ZILA_EEXIST); /* replayed */
	b.time_ms = NOW + 30000;
	assert_int_equal(zila_beacon_accept(&seen, &b, NOW + 30000), 0); /* the next one */
	b.time_ms = NOW + 20000;
	assert_int_equal(zila_beacon_accept(&seen, &b, NOW + 40000), ZILA_EEXIST); /* older */
	make_beacon(&b, 3, NOW - ZILA_BEACON_WINDOW_MS - 1);
	assert_int_equal(zila_beacon_accept(&seen, &b, NOW), ZILA_EEXPIRED);
	make_beacon(&b, 3, NOW + ZILA_BEACON_WINDOW_MS + 1);
	assert_int_equal(zila_beacon_accept(&seen, &b, NOW), ZILA_EEXPIRED);
	/* A full table forgets old devices but keeps working. */
	for (unsigned i = 0; i < 3 * ZILA_BEACON_SEEN_MAX; i++) {
		make_beacon(&b, 9, NOW);
		memcpy(b.device_pk, &i, sizeof(i));
		b.device_pk[31] = 0xee;
		assert_int_equal(zila_beacon_accept(&seen, &b, NOW), 0);
	}
	assert_int_equal(seen.n, ZILA_BEACON_SEEN_MAX);
}

static void test_hostport(void **state)
{
	(void)state;
	char host[64];
	uint16_t port;
	assert_int_equal(zila_hostport_parse("127.0.0.1:7400", host, sizeof(host), &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 7400);
	assert_int_equal(zila_hostport_parse("hq.example.org:1", host, sizeof(host), &port), 0);
	assert_string_equal(host, "hq.example.org");
	assert_int_equal(zila_hostport_parse("[::1]:7400", host, sizeof(host), &port), 0);
	assert_string_equal(host, "::1");
	const char *bad[] = { "", "host", "host:", ":7400", "host:0", "host:65536", "host:74x", "::1:7400",
			      "[::1]7400", "host:-1", NULL };
	for (int i = 0; bad[i]; i++)
		assert_int_not_equal(zila_hostport_parse(bad[i], host, sizeof(host), &port), 0);
	char tiny[4];
	assert_int_not_equal(zila_hostport_parse("longhost:1", tiny, sizeof(tiny), &port), 0);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_beacon_roundtrip),
		cmocka_unit_test(test_beacon_refusals),
		cmocka_unit_test(test_beacon_replay_and_staleness),
		cmocka_unit_test(test_hostport),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
