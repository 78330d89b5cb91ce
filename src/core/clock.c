/* The wall clock, with the skew tests use to play a laptop whose clock is wrong. */
#include "zila/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int64_t skew_ms(void)
{
	static int loaded;
	static int64_t skew;
	if (!loaded) {
		const char *v = getenv("ZILA_CLOCK_SKEW");
		if (v != NULL && *v != '\0')
			skew = strtoll(v, NULL, 10) * 1000;
		loaded = 1;
	}
	return skew;
}

uint64_t zila_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + skew_ms();
	return ms > 0 ? (uint64_t)ms : 0;
}

uint64_t zila_wall_s(void)
{
	return zila_wall_ms() / 1000;
}

void zila_format_time(uint64_t ms, char *buf, size_t n)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	if (gmtime_r(&t, &tm) == NULL || strftime(buf, n, "%Y-%m-%d %H:%M UTC", &tm) == 0)
		snprintf(buf, n, "%llu s after 1970", (unsigned long long)(ms / 1000));
}

void zila_format_span(uint64_t ms, char *buf, size_t n)
{
	uint64_t s = ms / 1000, day = 86400;
	if (s >= 365 * day)
		snprintf(buf, n, "%llu year%s %llu day%s", (unsigned long long)(s / (365 * day)),
			 s / (365 * day) == 1 ? "" : "s", (unsigned long long)(s % (365 * day) / day),
			 s % (365 * day) / day == 1 ? "" : "s");
	else if (s >= 2 * day)
		snprintf(buf, n, "%llu days", (unsigned long long)(s / day));
	else if (s >= 3600)
		snprintf(buf, n, "%llu h %llu min", (unsigned long long)(s / 3600), (unsigned long long)(s % 3600 / 60));
	else if (s >= 60)
		snprintf(buf, n, "%llu min", (unsigned long long)(s / 60));
	else
		snprintf(buf, n, "%llu s", (unsigned long long)s);
}
