/* The wall clock every part of zila reads. ZILA_CLOCK_SKEW (seconds, may be negative) moves
 * it, so that tests can run a replica whose clock is wrong, and ZILA_CLOCK_SKEW_FILE (a file
 * holding seconds, read again when it changes) moves it while a daemon runs;
 * ZILA_UPTIME_SKEW (seconds) says that much more time really passed, and ZILA_BOOT_ID plays
 * a restart of the computer. None of them is meant for users. */
#ifndef ZILA_CLOCK_H
#define ZILA_CLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Milliseconds since 1970 as this machine's clock (moved by ZILA_CLOCK_SKEW) says. */
uint64_t zila_wall_ms(void);
/* How long this computer has run since it started (counting sleep), and which start
 * that was: time that really passed, whatever was done to the wall clock meanwhile. */
struct zila_uptime {
	uint64_t ms;
	char boot[40]; /* an id of this boot, "" when unknown */
};
/* Fills out; false where the system cannot tell (then out is zero). */
bool zila_uptime(struct zila_uptime *out);
/* The same in seconds. */
uint64_t zila_wall_s(void);
/* Writes a UTC date and time ("2026-11-21 10:04") for ms since 1970 into buf. */
void zila_format_time(uint64_t ms, char *buf, size_t n);
/* Writes a span of time in words ("5 years 3 days", "2 h 10 min", "40 s") into buf. */
void zila_format_span(uint64_t ms, char *buf, size_t n);

#endif
