/* The wall clock every part of zila reads. ZILA_CLOCK_SKEW (seconds, may be negative) moves
 * it, so that tests can run a replica whose clock is wrong; it is not meant for users. */
#ifndef ZILA_CLOCK_H
#define ZILA_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Milliseconds since 1970 as this machine's clock (moved by ZILA_CLOCK_SKEW) says. */
uint64_t zila_wall_ms(void);
/* The same in seconds. */
uint64_t zila_wall_s(void);
/* Writes a UTC date and time ("2026-11-21 10:04") for ms since 1970 into buf. */
void zila_format_time(uint64_t ms, char *buf, size_t n);
/* Writes a span of time in words ("5 years 3 days", "2 h 10 min", "40 s") into buf. */
void zila_format_span(uint64_t ms, char *buf, size_t n);

#endif
