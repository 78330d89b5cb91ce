/* Small printing helpers shared by the subcommands. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "zila/buf.h"
#include "zila/store.h"

void cli_print_value(const struct zila_value *v, bool json)
{
	switch (v->type) {
	case ZILA_VAL_INT:
		printf("%lld", (long long)v->i);
		break;
	case ZILA_VAL_REAL:
		printf("%.17g", v->d);
		break;
	case ZILA_VAL_TEXT:
		if (json) {
			char *s = malloc(v->len + 1);
			if (s == NULL)
				return;
			memcpy(s, v->p, v->len);
			s[v->len] = '\0';
			cli_json_str(s);
			free(s);
		} else {
			fwrite(v->p, 1, v->len, stdout);
		}
		break;
	case ZILA_VAL_BLOB: {
		printf(json ? "\"x'" : "x'");
		for (size_t i = 0; i < v->len; i++)
			printf("%02x", v->p[i]);
		printf(json ? "'\"" : "'");
		break;
	}
	default:
		printf(json ? "null" : "NULL");
	}
}

void cli_short_device(char out[17], const uint8_t *key)
{
	zila_hex_encode(out, key, 8);
}

void cli_hlc_time(char out[32], uint64_t hlc)
{
	time_t t = (time_t)(zila_hlc_ms(hlc) / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%d %H:%M:%S", &tm);
}
