/* zila mirror: HQ's merged state into PostgreSQL (zila/office/pgmirror.h): the setting the
 * daemon reads, and one pass by hand (a first load, a check, the benchmark).
 *   zila mirror set CONNINFO | off | show | once [CONNINFO] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "zila/office/pgmirror.h"
#include "zila/store.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The setting, or NULL (malloc'd). */
static int setting(struct cli *cli, char **out)
{
	struct zila_store *s = NULL;
	*out = NULL;
	if (cli_open_store(cli, &s) != CLI_OK)
		return CLI_FAIL;
	int r = zila_store_meta_get(s, ZILA_META_MIRROR_PG, out);
	zila_store_free(s);
	if (r != 0 && r != ZILA_ENOTFOUND) {
		cli_err("cannot read the replica's settings: %s", zila_strerror(r));
		return CLI_FAIL;
	}
	return CLI_OK;
}

static int once(struct cli *cli, const char *conninfo)
{
	struct zila_pgmirror *m = NULL;
	struct zila_pgmirror_state st;
	struct zila_error err;
	zila_error_clear(&err);
	int r = zila_pgmirror_new(&m, cli->dir, conninfo, &err);
	if (r != 0) {
		cli_err("%s", zila_error_msg(&err, r));
		return CLI_USAGE;
	}
	double t0 = now_s();
	r = zila_pgmirror_step(m, &err);
	double dt = now_s() - t0;
	zila_pgmirror_get_state(m, &st);
	zila_pgmirror_free(m);
	if (r != 0) {
		cli_err("the mirror is not in step: %s", zila_error_msg(&err, r));
		return CLI_FAIL;
	}
	if (cli->json)
		printf("{\"rows\":%lld,\"seconds\":%.3f,\"mark\":%lld,\"target\":\"%s\"}\n", (long long)st.rows, dt,
		       (long long)st.mark, st.target);
	else
		printf("mirrored %lld rows to %s in %.2f s (%.0f rows/s); in step up to entry %lld\n", (long long)st.rows,
		       st.target, dt, dt > 0 ? (double)st.rows / dt : 0.0, (long long)st.mark);
	return CLI_OK;
}

int cmd_mirror(struct cli *cli, int argc, char **argv);
int cmd_mirror(struct cli *cli, int argc, char **argv)
{
	struct zila_error err;
	struct zila_store *s = NULL;
	char *cur = NULL;
	zila_error_clear(&err);
	if (argc < 2)
		return cli_usage("mirror", "say set, off, show or once");
	const char *verb = argv[1];
	if (strcmp(verb, "once") == 0 && argc <= 3) {
		if (argc == 3)
			return once(cli, argv[2]);
		if (setting(cli, &cur) != CLI_OK)
			return CLI_FAIL;
		if (cur == NULL) {
			cli_err("no PostgreSQL connection string set ('zila mirror set CONNINFO')");
			return CLI_FAIL;
		}
		int r = once(cli, cur);
		free(cur);
		return r;
	}
	if (strcmp(verb, "show") == 0 && argc == 2) {
		if (setting(cli, &cur) != CLI_OK)
			return CLI_FAIL;
		printf("%s\n", cur ? cur : "(none: the daemon mirrors nothing)");
		free(cur);
		return CLI_OK;
	}
	if ((strcmp(verb, "set") == 0 && argc == 3) || (strcmp(verb, "off") == 0 && argc == 2)) {
		bool set = verb[1] == 'e';
		if (set && zila_pgmirror_check_conninfo(argv[2], &err) != 0)
			return cli_usage("mirror", "%s", err.msg);
		if (cli_open_store(cli, &s) != CLI_OK)
			return CLI_FAIL;
		static const char *const keys[] = { ZILA_META_MIRROR_PG };
		int r = set ? zila_store_meta_set(s, ZILA_META_MIRROR_PG, argv[2]) : zila_store_meta_del(s, keys, 1);
		zila_store_free(s);
		if (r != 0) {
			cli_err("cannot write the replica's settings: %s", zila_strerror(r));
			return CLI_FAIL;
		}
		printf(set ? "the daemon mirrors into PostgreSQL from its next start\n"
			   : "the daemon mirrors nothing from its next start\n");
		return CLI_OK;
	}
	return cli_usage("mirror", "say set CONNINFO, off, show or once [CONNINFO]");
}
