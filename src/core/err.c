/* Error codes and messages shared by every layer. */
#include "zila/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

const char *zila_strerror(int code)
{
	switch (code) {
	case 0:
		return "success";
#define ZILA_ERR_CASE(name, num, msg)                                                    \
	case num:                                                                        \
		return msg;
		ZILA_ERRNO_MAP(ZILA_ERR_CASE)
#undef ZILA_ERR_CASE
	default:
		break;
	}
	if (code < 0 && code > -10000)
		return uv_strerror(code);
	return "unknown error";
}

int zila_error_set(struct zila_error *err, int code, const char *fmt, ...)
{
	if (err == NULL)
		return code;
	err->code = code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

void zila_error_clear(struct zila_error *err)
{
	if (err == NULL)
		return;
	err->code = 0;
	err->msg[0] = '\0';
}

const char *zila_error_msg(const struct zila_error *err, int code)
{
	if (err != NULL && err->msg[0] != '\0')
		return err->msg;
	return zila_strerror(code);
}
