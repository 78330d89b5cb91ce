/* Logging: library code reports events through a sink the program installs; with no sink
 * installed nothing is printed. Never pass keys or secrets to these functions. */
#ifndef ZILA_LOG_H
#define ZILA_LOG_H

#include "zila/err.h"

enum zila_log_level { ZILA_LOG_ERROR, ZILA_LOG_WARN, ZILA_LOG_INFO, ZILA_LOG_DEBUG };

typedef void (*zila_log_fn)(void *ctx, enum zila_log_level level, const char *msg);

/* Installs the sink (NULL removes it) and the most verbose level that reaches it. */
void zila_log_set_sink(zila_log_fn fn, void *ctx, enum zila_log_level max_level);
void zila_log(enum zila_log_level level, const char *fmt, ...) ZILA_PRINTF(2, 3);
/* A sink that writes "zila[level]: msg" lines to stderr. */
void zila_log_stderr(void *ctx, enum zila_log_level level, const char *msg);

#endif
