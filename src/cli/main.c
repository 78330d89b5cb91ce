/* zila's entry point: global options, then dispatch to one subcommand. */
#include <stdarg.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "cli.h"
#include "cli_trust.h"
#include "zila/log.h"
#include "zila/store.h"
#include "zila/trust.h"
#include "zila/os.h"

static const struct cli_command *find_command(const char *name)
{
	for (const struct cli_command *c = cli_commands; c->name != NULL; c++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

static void verr(const char *fmt, va_list ap)
{
	fputs("zila: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void cli_err(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	verr(fmt, ap);
	va_end(ap);
}

static void print_usage(FILE *f, const struct cli_command *c)
{
	const char *u = c->usage;
	fprintf(f, "usage: ");
	while (*u) {
		const char *nl = strchr(u, '\n');
		size_t n = nl ? (size_t)(nl - u) : strlen(u);
		fprintf(f, "%.*s\n", (int)n, u);
		u += n;
		if (*u == '\n') {
			u++;
			if (*u)
				fprintf(f, "   or: ");
		}
	}
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	verr(fmt, ap);
	va_end(ap);
	const struct cli_command *c = find_command(cmd);
	if (c != NULL)
		print_usage(stderr, c);
	return CLI_USAGE;
}

/* A command's --help: usage, summary, and the details when it has some. */
static void print_help(const struct cli_command *c)
{
	print_usage(stdout, c);
	printf("\n%s\n", c->summary);
	for (const struct cli_details *d = cli_details; d->name != NULL; d++)
		if (strcmp(d->name, c->name) == 0)
			printf("\n%s\n", d->text);
}

bool cli_wants_help(const char *cmd, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			const struct cli_command *c = find_command(cmd);
			if (c != NULL)
				print_help(c);
			return true;
		}
	}
	return false;
}

int cli_open_store(struct cli *cli, struct zila_store **out)
{
	struct zila_error err;
	zila_error_clear(&err);
	int r = zila_store_open(out, cli->dir, &err);
	if (r != 0) {
		cli_err("%s", zila_error_msg(&err, r));
		return CLI_FAIL;
	}
	/* Said plainly whatever the command: a wrong clock misdates every change made here. */
	struct zila_clock ck;
	char said[768];
	zila_store_clock(*out, &ck);
	zila_clock_describe(&ck, said, sizeof(said));
	if (said[0] != '\0')
		fprintf(stderr, "zila: warning: %s\n", said);
	/* So is a certificate that lapsed or is about to: what is written meanwhile is refused. */
	if (zila_trust_own_cert_warning(*out, ck.stamp_ms / 1000, said, sizeof(said)))
		fprintf(stderr, "zila: warning: %s\n", said);
	return CLI_OK;
}

void cli_json_str(const char *s)
{
	json_t *j = json_string_nocheck(s != NULL ? s : "");
	if (j != NULL)
		json_dumpf(j, stdout, JSON_ENCODE_ANY);
	json_decref(j);
}

static int cmd_help_list(void)
{
	printf("usage: zila [-d DIR] [--json] [-v] <command> [options]\n\n"
	       "zila keeps an organisation's records in step across offline laptops.\n\n"
	       "commands:\n");
	for (const struct cli_command *c = cli_commands; c->name != NULL; c++)
		printf("  %-12s %s\n", c->name, c->summary);
	printf("\nThe replica directory is -d DIR, else $ZILA_DIR, else ~/.zila when it exists, else the\n"
	       "installed service's replica (/var/lib/zila) when it exists (members of its group zila reach its\n"
	       "daemon: status, peers, sync; on Windows, %%ProgramData%%\\zila, also open), else ~/.zila.\n"
	       "Exit codes: 0 success, 1 the operation failed, 2 misuse, 3 the daemon is not running.\n"
	       "Run 'zila help COMMAND' or 'zila COMMAND --help' for a command's options.\n");
	return CLI_OK;
}

int main(int argc, char **argv)
{
	struct cli cli = { 0 };
	static char dirbuf[4096];

	zila_os_stdio_binary();
	if (sodium_init() < 0) {
		cli_err("cannot initialise libsodium");
		return CLI_FAIL;
	}
	cli.dir = cli_default_dir(dirbuf, sizeof(dirbuf));

	/* -d DIR, --json and -v may stand anywhere before "--"; strip them out. */
	int n = 1;
	bool dashdash = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!dashdash && strcmp(a, "--") == 0)
			dashdash = true;
		if (!dashdash && (strcmp(a, "-d") == 0 || strcmp(a, "--dir") == 0)) {
			if (i + 1 >= argc) {
				cli_err("option '%s' needs a directory", a);
				return CLI_USAGE;
			}
			cli.dir = argv[++i];
			continue;
		}
		if (!dashdash && strncmp(a, "--dir=", 6) == 0) {
			cli.dir = a + 6;
			continue;
		}
		if (!dashdash && strcmp(a, "--json") == 0) {
			cli.json = true;
			continue;
		}
		if (!dashdash && (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0)) {
			cli.verbose = true;
			continue;
		}
		argv[n++] = argv[i];
	}
	argc = n;
	argv[argc] = NULL;
	zila_log_set_sink(zila_log_stderr, NULL, cli.verbose ? ZILA_LOG_DEBUG : ZILA_LOG_WARN);

	if (argc < 2)
		return cmd_help_list(), CLI_USAGE;
	const char *name = argv[1];
	if (strcmp(name, "help") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
		if (argc > 2) {
			const struct cli_command *c = find_command(argv[2]);
			if (c == NULL) {
				cli_err("'%s' is not a zila command; see 'zila help'", argv[2]);
				return CLI_USAGE;
			}
			print_help(c);
			return CLI_OK;
		}
		return cmd_help_list();
	}
	if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
		printf("zila %s\n", ZILA_VERSION);
		return CLI_OK;
	}
	const struct cli_command *c = find_command(name);
	if (c == NULL) {
		cli_err("'%s' is not a zila command; see 'zila help'", name);
		return CLI_USAGE;
	}
	if (cli_wants_help(name, argc - 1, argv + 1))
		return CLI_OK;
	if (cli_check_reach(&cli, name, c->flags) != CLI_OK)
		return CLI_FAIL;
	if ((c->flags & CLI_TRUST) && cli_trust_open(&cli, &cli.store, &cli.tc) != CLI_OK)
		return CLI_FAIL;
	if ((c->flags & CLI_TRUST) == 0 && (c->flags & CLI_STORE) && cli_open_store(&cli, &cli.store) != CLI_OK)
		return CLI_FAIL;
	int r = c->fn(&cli, argc - 1, argv + 1);
	zila_store_free(cli.store);
	return r;
}
