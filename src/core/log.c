/* The process-wide log sink. */
#include "zila/log.h"

#include <stdarg.h>
#include <stdio.h>

static zila_log_fn sink_fn;
static void *sink_ctx;
static enum zila_log_level sink_level = ZILA_LOG_INFO;

void zila_log_set_sink(zila_log_fn fn, void *ctx, enum zila_log_level max_level)
{
	sink_fn = fn;
	sink_ctx = ctx;
	sink_level = max_level;
}

void zila_log(enum zila_log_level level, const char *fmt, ...)
{
	if (sink_fn == NULL || level > sink_level)
		return;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sink_fn(sink_ctx, level, msg);
}

void zila_log_stderr(void *ctx, enum zila_log_level level, const char *msg)
{
	static const char *names[] = { "error", "warn", "info", "debug" };
	(void)ctx;
	fprintf(stderr, "zila[%s]: %s\n", names[level], msg);
}
