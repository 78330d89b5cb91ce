/* The daemon's pure parts: LAN beacons (sealed with a key only members hold), the replay and
 * staleness filter, and HOST:PORT parsing. No libuv, no I/O. */
#include "zila/daemon.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "zila/trust.h"

#define BEACON_BODY 42

static const uint8_t beacon_ad[] = "zila-beacon-v1";


void zila_beacon_key(const uint8_t org_secret[32], uint8_t key[32])
{
	zila_org_beacon_key(org_secret, key);
}

static void put_be(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get_be(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

void zila_beacon_seal(const uint8_t key[32], const struct zila_beacon *b, uint8_t out[ZILA_BEACON_LEN])
{
	uint8_t body[BEACON_BODY], ad[sizeof(beacon_ad)];
	unsigned long long clen;
	memcpy(body, b->device_pk, 32);
	put_be(body + 32, b->port, 2);
	put_be(body + 34, b->time_ms, 8);
	out[0] = ZILA_BEACON_VERSION;
	randombytes_buf(out + 1, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	/* The version byte is authenticated along with a fixed label. */
	memcpy(ad, beacon_ad, sizeof(beacon_ad));
	ad[sizeof(ad) - 1] = out[0];
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + 25, &clen, body, sizeof(body), ad, sizeof(ad), NULL,
						   out + 1, key);
}

int zila_beacon_open(const uint8_t key[32], const uint8_t *p, size_t len, struct zila_beacon *out)
{
	uint8_t body[BEACON_BODY], ad[sizeof(beacon_ad)];
	unsigned long long mlen;
	memset(out, 0, sizeof(*out));
	if (len != ZILA_BEACON_LEN)
		return ZILA_EFORMAT;
	if (p[0] != ZILA_BEACON_VERSION)
		return ZILA_EVERSION;
	memcpy(ad, beacon_ad, sizeof(beacon_ad));
	ad[sizeof(ad) - 1] = p[0];
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(body, &mlen, NULL, p + 25, len - 25, ad, sizeof(ad), p + 1,
						       key) != 0 ||
	    mlen != BEACON_BODY)
		return ZILA_EAUTH;
	memcpy(out->device_pk, body, 32);
	out->port = (uint16_t)get_be(body + 32, 2);
	out->time_ms = get_be(body + 34, 8);
	if (out->port == 0) {
		memset(out, 0, sizeof(*out));
		return ZILA_EFORMAT;
	}
	return 0;
}

void zila_beacon_seen_init(struct zila_beacon_seen *seen, const uint8_t self[32])
{
	memset(seen, 0, sizeof(*seen));
	memcpy(seen->self, self, 32);
}

int zila_beacon_accept(struct zila_beacon_seen *seen, const struct zila_beacon *b, uint64_t now_ms)
{
	if (sodium_memcmp(b->device_pk, seen->self, 32) == 0)
		return ZILA_EEXIST;
	uint64_t d = b->time_ms > now_ms ? b->time_ms - now_ms : now_ms - b->time_ms;
	if (d > ZILA_BEACON_WINDOW_MS)
		return ZILA_EEXPIRED;
	for (size_t i = 0; i < seen->n; i++) {
		if (memcmp(seen->last[i].device, b->device_pk, 32) != 0)
			continue;
		if (b->time_ms <= seen->last[i].time_ms)
			return ZILA_EEXIST;
		seen->last[i].time_ms = b->time_ms;
		return 0;
	}
	/* A new device: a full table forgets the oldest slot (round robin). */
	size_t i = seen->n < ZILA_BEACON_SEEN_MAX ? seen->n++ : seen->next++ % ZILA_BEACON_SEEN_MAX;
	memcpy(seen->last[i].device, b->device_pk, 32);
	seen->last[i].time_ms = b->time_ms;
	return 0;
}

int zila_hostport_parse(const char *s, char *host, size_t host_len, uint16_t *port)
{
	const char *colon, *h = s;
	size_t hl;
	if (host_len)
		host[0] = '\0';
	*port = 0;
	if (s == NULL || s[0] == '\0')
		return ZILA_EINVAL;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || close[1] != ':')
			return ZILA_EINVAL;
		h = s + 1;
		hl = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return ZILA_EINVAL;
		hl = (size_t)(colon - s);
		if (memchr(s, ':', hl) != NULL) /* a bare IPv6 address needs brackets */
			return ZILA_EINVAL;
	}
	if (hl == 0 || hl >= host_len)
		return ZILA_EINVAL;
	char *end;
	if (colon[1] < '0' || colon[1] > '9')
		return ZILA_EINVAL;
	long p = strtol(colon + 1, &end, 10);
	if (*end != '\0' || p < 1 || p > 65535)
		return ZILA_EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	*port = (uint16_t)p;
	return 0;
}
