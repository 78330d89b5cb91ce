/* Helpers shared by the trust commands: passphrases, files, durations, device lookup. */
#include "cli_trust.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "zila/os.h"
#include "zila/clock.h"

#define PASS_MAX 1024
#define PASS_FILE_MAX (64 * 1024)

int cli_trust_open(struct cli *cli, struct zila_store **s, struct zila_trust_ctx *tc)
{
	if (cli_open_store(cli, s) != CLI_OK)
		return CLI_FAIL;
	memset(tc, 0, sizeof(*tc));
	zila_trust_install(*s, tc);
	return CLI_OK;
}

uint64_t cli_now(void)
{
	return zila_wall_s();
}

int cli_prompt_hidden(const char *what, const char *no_tty, char *buf, size_t n)
{
	int r = zila_os_read_hidden(what, buf, n);
	if (r == ZILA_ENOTFOUND)
		cli_err("%s", no_tty);
	return r == 0 ? CLI_OK : CLI_FAIL;
}

int cli_read_passphrase(const char *file, bool confirm, char **out, size_t *len)
{
	char *a = sodium_malloc(PASS_MAX), *b = sodium_malloc(PASS_MAX);
	int r = CLI_FAIL;
	*out = NULL;
	*len = 0;
	if (a == NULL || b == NULL) {
		cli_err("out of memory");
		goto out;
	}
	if (file != NULL) {
		/* its first line; the copy read is wiped when released */
		struct zila_buf fb;
		struct zila_error err;
		zila_buf_init(&fb, PASS_FILE_MAX);
		int fr = zila_os_read_file(file, PASS_FILE_MAX, &fb, NULL, &err);
		if (fr != 0) {
			zila_buf_release(&fb);
			cli_err("%s", zila_error_msg(&err, fr));
			goto out;
		}
		size_t n = 0;
		while (n < fb.len && n + 1 < PASS_MAX && fb.p[n] != '\n' && fb.p[n] != '\r' && fb.p[n] != '\0')
			n++;
		memcpy(a, fb.p, n);
		a[n] = '\0';
		zila_buf_release(&fb);
	} else {
		static const char no_tty[] = "no terminal to ask for the passphrase; use --passphrase-file";
		if (cli_prompt_hidden("passphrase: ", no_tty, a, PASS_MAX) != CLI_OK)
			goto out;
		if (confirm) {
			if (cli_prompt_hidden("passphrase again: ", no_tty, b, PASS_MAX) != CLI_OK)
				goto out;
			if (strcmp(a, b) != 0) {
				cli_err("the passphrases differ");
				goto out;
			}
		}
	}
	if (strlen(a) < 8) {
		cli_err("passphrase too short: use at least 8 characters");
		goto out;
	}
	*len = strlen(a);
	*out = a;
	a = NULL;
	r = CLI_OK;
out:
	sodium_free(a);
	sodium_free(b);
	return r;
}

int cli_read_file(const char *path, size_t max, struct zila_buf *out)
{
	struct zila_error err;
	int r = zila_os_read_file(path, max, out, NULL, &err);
	if (r != 0) {
		cli_err("%s", zila_error_msg(&err, r));
		return CLI_FAIL;
	}
	return CLI_OK;
}

int cli_write_new_file(const char *path, const void *p, size_t n, unsigned mode)
{
	struct zila_error err;
	int r = zila_os_write_new(path, p, n, mode, &err);
	if (r == ZILA_EEXIST) {
		cli_err("'%s' already exists; choose another name", path);
		return CLI_FAIL;
	}
	if (r != 0) {
		cli_err("%s", zila_error_msg(&err, r));
		return CLI_FAIL;
	}
	return CLI_OK;
}

int cli_parse_duration(const char *s, uint64_t *secs)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s || errno != 0 || v > 36500ull * 86400)
		return -1;
	unsigned long long mul = 1;
	if (*end == 'd')
		mul = 86400;
	else if (*end == 'h')
		mul = 3600;
	else if (*end == 'm')
		mul = 60;
	else if (*end == 's')
		mul = 1;
	else if (*end != '\0')
		return -1;
	if (*end != '\0' && end[1] != '\0')
		return -1;
	if (v * mul > 36500ull * 86400 || v == 0)
		return -1;
	*secs = v * mul;
	return 0;
}

void cli_date(char out[32], uint64_t secs)
{
	time_t t = (time_t)secs;
	struct tm tm;
	if (localtime_r(&t, &tm) == NULL || strftime(out, 32, "%Y-%m-%d", &tm) == 0)
		snprintf(out, 32, "?");
}

int cli_ask(const char *question, char *answer, size_t n)
{
	if (!zila_os_isatty(0))
		return CLI_FAIL;
	fprintf(stderr, "%s", question);
	if (fgets(answer, (int)n, stdin) == NULL)
		return CLI_FAIL;
	answer[strcspn(answer, "\r\n")] = '\0';
	return answer[0] ? CLI_OK : CLI_FAIL;
}

struct find_ctx {
	const char *typed;
	uint8_t pk[32];
	int nfound;
	bool typo;
};

static int find_one(void *ctx, const struct zila_cert *c)
{
	struct find_ctx *f = ctx;
	int r = zila_device_id_match(f->typed, c->device_pk);
	if (r == 0) {
		memcpy(f->pk, c->device_pk, 32);
		f->nfound++;
	} else if (r == ZILA_ECHECK) {
		f->typo = true;
	}
	return 0;
}

int cli_find_device(struct zila_store *s, const char *typed, uint8_t pk[32])
{
	struct find_ctx f;
	memset(&f, 0, sizeof(f));
	f.typed = typed;
	if (strlen(typed) == 64 && zila_hex_decode(pk, 32, typed, 64) == 0) {
		struct zila_cert c;
		if (zila_trust_cert_get(s, pk, &c) == 0)
			return CLI_OK;
		cli_err("no enrolled device has the key '%s'", typed);
		return CLI_FAIL;
	}
	if (zila_trust_cert_each(s, find_one, &f) != 0) {
		cli_err("cannot read the device list");
		return CLI_FAIL;
	}
	if (f.nfound == 1) {
		memcpy(pk, f.pk, 32);
		return CLI_OK;
	}
	if (f.typo)
		cli_err("device id '%s' has a typo (its check characters do not match); see 'zila devices'", typed);
	else
		cli_err("no enrolled device has the id '%s'; see 'zila devices'", typed);
	return CLI_FAIL;
}
