/* The wall clock, with the skew tests use to play a laptop whose clock is wrong. */
#include "zila/clock.h"
#include "zila/os.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ZILA_CLOCK_SKEW_FILE names a file holding the skew, read again whenever it changes, so
 * that a test can set a running daemon's clock right (or wrong). */
static int64_t skew_file_ms(const char *path)
{
	static int64_t mtime;
	static uint64_t size = UINT64_MAX;
	static int64_t skew;
	uint64_t sz;
	int64_t mt;
	if (zila_os_stat(path, &sz, &mt) != 0) {
		size = UINT64_MAX;
		return skew = 0;
	}
	if (sz == size && mt == mtime)
		return skew;
	FILE *f = fopen(path, "r");
	long long v = 0;
	if (f != NULL) {
		if (fscanf(f, "%lld", &v) != 1)
			v = 0;
		fclose(f);
	}
	size = sz;
	mtime = mt;
	return skew = (int64_t)v * 1000;
}

static int64_t skew_ms(void)
{
	static int loaded;
	static int64_t skew;
	static const char *file;
	if (!loaded) {
		const char *v = getenv("ZILA_CLOCK_SKEW");
		if (v != NULL && *v != '\0')
			skew = strtoll(v, NULL, 10) * 1000;
		file = getenv("ZILA_CLOCK_SKEW_FILE");
		if (file != NULL && *file == '\0')
			file = NULL;
		loaded = 1;
	}
	return file != NULL ? skew + skew_file_ms(file) : skew;
}

/* This boot's id and the uptime, from the system; the boot id is read once: a process does
 * not outlive the boot it started in. */
bool zila_uptime(struct zila_uptime *out)
{
	static char id[40];
	static int state; /* 0: not read, 1: read, -1: none */
	uint64_t ms = 0;
	char now_id[40];
	memset(out, 0, sizeof(*out));
	if (!zila_os_uptime(&ms, now_id, sizeof(now_id)))
		return false;
	if (state == 0) {
		const char *env = getenv("ZILA_BOOT_ID"); /* for tests: a restart of the computer */
		snprintf(id, sizeof(id), "%s", env != NULL && *env != '\0' ? env : now_id);
		state = id[0] != '\0' ? 1 : -1;
	}
	if (state != 1)
		return false;
	snprintf(out->boot, sizeof(out->boot), "%s", id);
	out->ms = ms;
	/* for tests: time that passed (seconds) */
	const char *v = getenv("ZILA_UPTIME_SKEW");
	if (v != NULL && *v != '\0')
		out->ms += (uint64_t)strtoll(v, NULL, 10) * 1000;
	return true;
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
