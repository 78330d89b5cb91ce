/* zila import: a spreadsheet (CSV) into one table of the replica, create-or-update, all or
 * nothing unless --skip-bad. The work is in src/office/import.c; this file reads the file,
 * shows progress, and reports. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <sqlite3.h>

#include "cli.h"
#include "cli_db.h"
#include "cli_trust.h"
#include "zila/office/csvio.h"
#include "zila/os.h"

#define SHOW_REJECTS 20
#define SHOW_CHANGES 1000 /* rows a dry run shows */
#define PROGRESS_MIN_BYTES (1024 * 1024)
#define CHUNK (256 * 1024)

struct shown {
	uint64_t row, line;
	char reason[512];
};

struct import_ctx {
	FILE *rejects;           /* --skip-bad FILE (the stream of rejects_file), or NULL */
	struct zila_os_atomic *rejects_file;
	const char *rejects_path;
	bool rejects_header;
	int rejects_err;
	struct shown shown[SHOW_REJECTS];
	size_t nshown;
	uint64_t nchanges; /* rows a dry run showed */
	json_t *changes;   /* --json: the rows a dry run shows, as objects */
};

/* A value as staff read it: quoted, line breaks as spaces, "(empty)" for NULL. */
static void print_value(const char *v)
{
	if (v == NULL) {
		fputs("(empty)", stdout);
		return;
	}
	putchar('\'');
	for (const char *p = v; *p; p++)
		putchar(*p == '\n' || *p == '\r' ? ' ' : *p);
	putchar('\'');
}

static json_t *json_text(const char *v)
{
	return v != NULL ? json_string(v) : json_null();
}

/* --json: {"row":N,"op":"create"|"update","id":ID,"name":NAME,"columns":{COL:{"old":...,
 * "new":...}}}, "id" and "old" only for an update. */
static void json_change(struct import_ctx *c, const struct zila_csv_change *ch)
{
	json_t *o = json_object(), *cols = json_object();
	if (o == NULL || cols == NULL) {
		json_decref(o);
		json_decref(cols);
		return;
	}
	json_object_set_new(o, "row", json_integer((json_int_t)ch->row));
	json_object_set_new(o, "op", json_string(ch->created ? "create" : "update"));
	if (!ch->created)
		json_object_set_new(o, "id", json_text(ch->id));
	json_object_set_new(o, "name", json_text(ch->name));
	for (size_t i = 0; i < ch->ncols; i++) {
		json_t *v = json_object();
		if (v == NULL)
			break;
		if (!ch->created)
			json_object_set_new(v, "old", json_text(ch->old_values[i]));
		json_object_set_new(v, "new", json_text(ch->new_values[i]));
		json_object_set_new(cols, ch->columns[i], v);
	}
	json_object_set_new(o, "columns", cols);
	json_array_append_new(c->changes, o);
}

/* A dry run shows, row by row, what the import would create and what it would change. */
static void on_change(void *ctx, const struct zila_csv_change *ch)
{
	struct import_ctx *c = ctx;
	if (c->nchanges++ >= SHOW_CHANGES)
		return;
	if (c->changes != NULL) {
		json_change(c, ch);
		return;
	}
	if (ch->created)
		printf("row %" PRIu64 ": new%s%s\n", ch->row, ch->name ? ": " : "",
		       ch->name ? ch->name : "");
	else
		printf("row %" PRIu64 ": change %s%s(id %s)\n", ch->row, ch->name ? ch->name : "",
		       ch->name ? " " : "", ch->id);
	for (size_t i = 0; i < ch->ncols; i++) {
		printf("    %s: ", ch->columns[i]);
		if (!ch->created) {
			print_value(ch->old_values[i]);
			fputs(" -> ", stdout);
		}
		print_value(ch->new_values[i]);
		putchar('\n');
	}
}

static void on_reject(void *ctx, const struct zila_csv_reject *rj)
{
	struct import_ctx *c = ctx;
	if (c->nshown < SHOW_REJECTS) {
		c->shown[c->nshown].row = rj->row;
		c->shown[c->nshown].line = rj->line;
		snprintf(c->shown[c->nshown].reason, sizeof(c->shown[c->nshown].reason), "%s",
			 rj->reason);
		c->nshown++;
	}
	if (c->rejects == NULL || c->rejects_err != 0)
		return;
	/* The rejects file is the original header and rows plus a zila_reject column, which
	 * import ignores: fix the rows in the spreadsheet and import the file again. */
	size_t n = rj->nheader > rj->nfields ? rj->nheader : rj->nfields;
	const char **f = calloc(n + 1, sizeof(*f));
	size_t *l = calloc(n + 1, sizeof(*l));
	char why[600];
	if (f == NULL || l == NULL) {
		c->rejects_err = ZILA_ENOMEM;
		goto out;
	}
	if (!c->rejects_header) {
		fputs("\xef\xbb\xbf", c->rejects);
		for (size_t i = 0; i < rj->nheader; i++) {
			f[i] = rj->header[i];
			l[i] = rj->header_lens[i];
		}
		for (size_t i = rj->nheader; i < n; i++) {
			f[i] = "";
			l[i] = 0;
		}
		f[n] = "zila_reject";
		l[n] = strlen(f[n]);
		c->rejects_err = zila_csv_write_row(c->rejects, f, l, n + 1);
		c->rejects_header = true;
	}
	for (size_t i = 0; i < n; i++) {
		f[i] = i < rj->nfields ? rj->fields[i] : NULL;
		l[i] = i < rj->nfields ? rj->field_lens[i] : 0;
	}
	snprintf(why, sizeof(why), "row %" PRIu64 ": %s", rj->row, rj->reason);
	f[n] = why;
	l[n] = strlen(why);
	if (c->rejects_err == 0)
		c->rejects_err = zila_csv_write_row(c->rejects, f, l, n + 1);
out:
	free(f);
	free(l);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void progress(uint64_t done, uint64_t total, const struct zila_csv_stats *st)
{
	int width = 30;
	int fill = total ? (int)((double)done / (double)total * width) : 0;
	if (fill > width)
		fill = width;
	fprintf(stderr, "\r[");
	for (int i = 0; i < width; i++)
		fputc(i < fill ? '#' : '.', stderr);
	fprintf(stderr, "] %3d%%  %" PRIu64 " rows", total ? (int)(done * 100 / total) : 0,
		st->nrows);
	fflush(stderr);
}

static int parse_map(char *arg, struct zila_csv_map *m)
{
	char *eq = strrchr(arg, '=');
	if (eq == NULL || eq == arg)
		return -1;
	*eq = '\0';
	m->header = arg;
	m->column = eq + 1;
	return 0;
}

/* The district this laptop's certificate lets it write ("" for HQ, or before enrolment):
 * the district of every row that names none. */
static int own_district(struct cli *cli, char out[ZILA_DISTRICT_MAX + 1])
{
	struct zila_store *s = NULL;
	struct zila_trust_ctx tc;
	struct zila_cert c;
	out[0] = '\0';
	if (cli_trust_open(cli, &s, &tc) != CLI_OK)
		return CLI_FAIL;
	if (zila_trust_cert_get(s, zila_store_device_pk(s), &c) == 0 && !c.scope_all)
		snprintf(out, ZILA_DISTRICT_MAX + 1, "%s", c.district);
	zila_store_free(s);
	return CLI_OK;
}

int cmd_import(struct cli *cli, int argc, char **argv);
int cmd_import(struct cli *cli, int argc, char **argv)
{
	int rc = CLI_FAIL;
	const char *file = NULL, *table = NULL, *skip_bad = NULL;
	bool dry_run = false, quiet = false;
	char delim = 0;
	struct zila_csv_map *maps = calloc((size_t)argc, sizeof(*maps));
	size_t nmaps = 0;
	struct import_ctx ctx = { 0 };
	struct zila_csv_import *im = NULL;
	sqlite3 *db = NULL;
	FILE *in = NULL;
	uint8_t *buf = NULL;
	struct zila_error err;
	struct zila_csv_stats st = { 0 };
	bool bar = false;
	zila_error_clear(&err);

	if (maps == NULL) {
		cli_err("out of memory");
		goto out;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool has_val = i + 1 < argc;
		if (strcmp(a, "--table") == 0 || strcmp(a, "-t") == 0) {
			if (!has_val) {
				rc = cli_usage("import", "option '%s' needs a table name", a);
				goto out;
			}
			table = argv[++i];
		} else if (strncmp(a, "--table=", 8) == 0) {
			table = a + 8;
		} else if (strcmp(a, "--map") == 0) {
			if (!has_val || parse_map(argv[i + 1], &maps[nmaps]) != 0) {
				rc = cli_usage("import", "option '--map' needs HEADER=COLUMN");
				goto out;
			}
			nmaps++;
			i++;
		} else if (strcmp(a, "--dry-run") == 0 || strcmp(a, "-n") == 0) {
			dry_run = true;
		} else if (strcmp(a, "--skip-bad") == 0) {
			if (!has_val) {
				rc = cli_usage("import", "option '--skip-bad' needs a file for the "
							 "rejected rows");
				goto out;
			}
			skip_bad = argv[++i];
		} else if (strcmp(a, "--delimiter") == 0) {
			if (!has_val) {
				rc = cli_usage("import", "option '--delimiter' needs a character");
				goto out;
			}
			const char *d = argv[++i];
			if (strcmp(d, "tab") == 0 || strcmp(d, "\\t") == 0)
				delim = '\t';
			else if (strlen(d) == 1)
				delim = d[0];
			else {
				rc = cli_usage("import", "bad delimiter '%s'", d);
				goto out;
			}
		} else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
			quiet = true;
		} else if (a[0] == '-' && a[1] != '\0') {
			rc = cli_usage("import", "unknown option '%s'", a);
			goto out;
		} else if (file == NULL) {
			file = a;
		} else {
			rc = cli_usage("import", "more than one file given ('%s')", a);
			goto out;
		}
	}
	if (file == NULL) {
		rc = cli_usage("import", "no file given");
		goto out;
	}
	if (table == NULL) {
		rc = cli_usage("import", "no table given (--table TABLE)");
		goto out;
	}

	bool is_stdin = strcmp(file, "-") == 0;
	in = is_stdin ? stdin : fopen(file, "rb");
	if (in == NULL) {
		cli_err("cannot read '%s': %s", file, cli_errno_msg(errno));
		goto out;
	}
	uint64_t total = 0;
	struct stat sb;
	if (!is_stdin && fstat(fileno(in), &sb) == 0 && S_ISREG(sb.st_mode))
		total = (uint64_t)sb.st_size;
	bar = !quiet && !cli->json && total >= PROGRESS_MIN_BYTES && zila_os_isatty(2);

	if (skip_bad != NULL) {
		ctx.rejects_path = skip_bad;
		/* replaced whole when the import ends: an older rejects file stays until then */
		if (zila_os_atomic_open(&ctx.rejects_file, skip_bad, 0666, &err) != 0) {
			cli_err("%s", err.msg);
			goto out;
		}
		ctx.rejects = zila_os_atomic_stream(ctx.rejects_file);
	}
	char own[ZILA_DISTRICT_MAX + 1];
	rc = own_district(cli, own);
	if (rc != CLI_OK)
		goto out;
	rc = cli_open_db(cli, true, &db);
	if (rc != CLI_OK)
		goto out;
	rc = CLI_FAIL;
	/* one big transaction: a larger page cache keeps it from spilling to disk early */
	sqlite3_exec(db, "PRAGMA cache_size = -65536", NULL, NULL, NULL);

	if (dry_run && cli->json && (ctx.changes = json_array()) == NULL) {
		cli_err("out of memory");
		goto out;
	}
	struct zila_csv_import_opts opts = {
		.table = table,
		.map = maps,
		.nmap = nmaps,
		.dry_run = dry_run,
		.skip_bad = skip_bad != NULL,
		.delim = delim,
		.own_district = own[0] != '\0' ? own : NULL,
		.on_reject = on_reject,
		.on_change = dry_run ? on_change : NULL,
		.ctx = &ctx,
	};
	int r = zila_csv_import_new(&im, db, &opts, &err);
	if (r != 0) {
		cli_err("cannot import into '%s': %s", table, zila_error_msg(&err, r));
		goto out;
	}
	buf = malloc(CHUNK);
	if (buf == NULL) {
		cli_err("out of memory");
		goto out;
	}
	uint64_t done = 0;
	double last = 0;
	size_t n;
	while ((n = fread(buf, 1, CHUNK, in)) > 0) {
		r = zila_csv_import_feed(im, buf, n, &err);
		if (r != 0)
			break;
		done += n;
		if (bar && now_s() - last > 0.1) {
			zila_csv_import_stats(im, &st);
			progress(done, total, &st);
			last = now_s();
		}
	}
	if (r == 0 && ferror(in)) {
		if (bar)
			fputs("\r\033[K", stderr);
		cli_err("cannot read '%s': %s", file, cli_errno_msg(errno));
		goto out;
	}
	if (r == 0)
		r = zila_csv_import_finish(im, &st, &err);
	else
		zila_csv_import_stats(im, &st);
	if (bar)
		fputs("\r\033[K", stderr);

	if (ctx.nchanges > SHOW_CHANGES && !cli->json)
		printf("... and %" PRIu64 " more rows to create or change\n",
		       ctx.nchanges - SHOW_CHANGES);
	for (size_t i = 0; i < ctx.nshown; i++)
		fprintf(stderr, "%s: row %" PRIu64 ": %s\n", file, ctx.shown[i].row,
			ctx.shown[i].reason);
	if (st.nrejected > ctx.nshown)
		fprintf(stderr, "... and %" PRIu64 " more bad rows\n", st.nrejected - ctx.nshown);
	if (ctx.rejects_file != NULL) {
		struct zila_error werr;
		int fr = ctx.rejects_err;
		if (fr != 0)
			zila_os_atomic_abort(ctx.rejects_file);
		else
			fr = zila_os_atomic_commit(ctx.rejects_file, &werr);
		ctx.rejects_file = NULL;
		ctx.rejects = NULL;
		if (fr != 0) {
			cli_err("cannot write '%s': %s", skip_bad,
				ctx.rejects_err != 0 ? zila_strerror(fr) : zila_error_msg(&werr, fr));
			r = r ? r : ZILA_EIO;
		} else if (st.nrejected > 0 && r == 0) {
			fprintf(stderr, "%" PRIu64 " rejected rows written to '%s'\n", st.nrejected,
				skip_bad);
		}
	}

	if (cli->json) {
		printf("{\"table\":");
		cli_json_str(table);
		printf(",\"dry_run\":%s,\"ok\":%s,\"rows\":%" PRIu64 ",\"created\":%" PRIu64
		       ",\"updated\":%" PRIu64 ",\"unchanged\":%" PRIu64 ",\"rejected\":%" PRIu64
		       ",\"rejects\":[",
		       dry_run ? "true" : "false", r == 0 ? "true" : "false", st.nrows, st.ncreated,
		       st.nupdated, st.nunchanged, st.nrejected);
		for (size_t i = 0; i < ctx.nshown; i++) {
			printf("%s{\"row\":%" PRIu64 ",\"line\":%" PRIu64 ",\"reason\":", i ? "," : "",
			       ctx.shown[i].row, ctx.shown[i].line);
			cli_json_str(ctx.shown[i].reason);
			putchar('}');
		}
		printf("]");
		if (ctx.changes != NULL) {
			char *js = json_dumps(ctx.changes, JSON_COMPACT);
			printf(",\"changes\":%s", js != NULL ? js : "[]");
			free(js);
			if (ctx.nchanges > SHOW_CHANGES)
				printf(",\"changes_not_shown\":%" PRIu64, ctx.nchanges - SHOW_CHANGES);
		}
		if (r != 0) {
			printf(",\"error\":");
			cli_json_str(zila_error_msg(&err, r));
		}
		printf("}\n");
	} else if (r == 0) {
		printf("%s%s: %" PRIu64 " rows: %" PRIu64 " %s, %" PRIu64 " %s, %" PRIu64
		       " unchanged, %" PRIu64 " rejected\n",
		       dry_run ? "dry run, nothing written; " : "", table, st.nrows, st.ncreated,
		       dry_run ? "to create" : "created", st.nupdated,
		       dry_run ? "to update" : "updated", st.nunchanged, st.nrejected);
	}
	if (r != 0) {
		if (st.nrejected > 0 && skip_bad == NULL)
			cli_err("%s (fix the rows, or import the rest with --skip-bad FILE)",
				zila_error_msg(&err, r));
		else
			cli_err("cannot import '%s': %s", file, zila_error_msg(&err, r));
		goto out;
	}
	rc = CLI_OK;
out:
	zila_csv_import_free(im);
	json_decref(ctx.changes);
	zila_os_atomic_abort(ctx.rejects_file);
	if (in != NULL && in != stdin)
		fclose(in);
	sqlite3_close(db);
	free(buf);
	free(maps);
	return rc;
}
