/* zila sql: run SQL against the replica as an application would (changes are captured).
 * With no SQL, reads statements from standard input (interactive on a terminal). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sqlite3.h>

#include "cli.h"
#include "zila/store.h"
#include "zila/os.h"

struct out {
	bool json, header_done;
	size_t rows;
};

static int print_row(void *ctx, int n, char **vals, char **names)
{
	struct out *o = ctx;
	if (o->json) {
		printf("%s{", o->rows ? ",\n" : "");
		for (int i = 0; i < n; i++) {
			printf("%s", i ? "," : "");
			cli_json_str(names[i]);
			printf(":");
			if (vals[i])
				cli_json_str(vals[i]);
			else
				printf("null");
		}
		printf("}");
	} else {
		for (int i = 0; i < n; i++)
			printf("%s%s", i ? "|" : "", vals[i] ? vals[i] : "");
		printf("\n");
	}
	o->rows++;
	return 0;
}

static int run(struct zila_store *s, const char *sql, struct out *o)
{
	struct zila_error err;
	zila_error_clear(&err);
	int r = zila_store_exec_captured(s, sql, print_row, o, &err);
	if (r != 0) {
		/* zila's own refusals (a trigger's) already say "zila: " for plain sqlite3 users */
		const char *msg = zila_error_msg(&err, r);
		cli_err("%s", strncmp(msg, "zila: ", 6) == 0 ? msg + 6 : msg);
		return CLI_FAIL;
	}
	return CLI_OK;
}

int cmd_sql(struct cli *cli, int argc, char **argv);
int cmd_sql(struct cli *cli, int argc, char **argv)
{
	struct zila_store *s = cli->store;
	struct out o = { cli->json, false, 0 };
	int r = CLI_OK;
	if (cli->json)
		printf("[");
	if (argc > 1) {
		/* The arguments form one SQL text. */
		size_t n = 0;
		for (int i = 1; i < argc; i++)
			n += strlen(argv[i]) + 1;
		char *sql = malloc(n + 1);
		if (sql == NULL)
			return CLI_FAIL;
		sql[0] = '\0';
		for (int i = 1; i < argc; i++) {
			strcat(sql, argv[i]);
			strcat(sql, " ");
		}
		r = run(s, sql, &o);
		free(sql);
	} else {
		bool tty = zila_os_isatty(0);
		char *acc = NULL, *line = NULL;
		size_t acc_len = 0, cap = 0;
		if (tty)
			fprintf(stderr, "zila sql: statements end with ';', Ctrl-D quits\n");
		for (;;) {
			if (tty)
				fprintf(stderr, acc_len ? "  ...> " : "zila> ");
			ssize_t got = getline(&line, &cap, stdin);
			if (got < 0)
				break;
			char *na = realloc(acc, acc_len + (size_t)got + 1);
			if (na == NULL) {
				r = CLI_FAIL;
				break;
			}
			acc = na;
			memcpy(acc + acc_len, line, (size_t)got + 1);
			acc_len += (size_t)got;
			if (sqlite3_complete(acc)) {
				int rr = run(s, acc, &o);
				if (rr != CLI_OK && !tty) {
					r = rr;
					break;
				}
				acc_len = 0;
				acc[0] = '\0';
			}
		}
		if (r == CLI_OK && acc_len > 0 && strspn(acc, " \t\r\n") != acc_len)
			r = run(s, acc, &o);
		free(acc);
		free(line);
	}
	if (cli->json)
		printf("]\n");
	return r;
}
