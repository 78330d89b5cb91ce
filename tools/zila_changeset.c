/* zila_changeset: what SQLite's session extension would send for the same changes, the
 * yardstick of the link bench's bytes per changed row (#24). Runs SQL on a database with
 * a session attached to the named tables and prints the changeset's size, raw and
 * compressed with zstd. */
#define SQLITE_ENABLE_SESSION 1
#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <zstd.h>

static const char usage[] = "usage: zila_changeset DB SQLFILE TABLE...\n"
			    "Runs SQLFILE on DB (change a copy: it is written) with a session on each TABLE,\n"
			    "then prints 'changeset BYTES zstd19 BYTES'.\n";

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	size_t cap = 1 << 16, n = 0;
	char *p = malloc(cap + 1);
	size_t k;
	while (p != NULL && (k = fread(p + n, 1, cap - n, f)) > 0) {
		n += k;
		if (n == cap) {
			char *q = realloc(p, 2 * cap + 1);
			if (q == NULL) {
				free(p);
				p = NULL;
				break;
			}
			p = q;
			cap *= 2;
		}
	}
	fclose(f);
	if (p != NULL)
		p[n] = '\0';
	return p;
}

int main(int argc, char **argv)
{
	sqlite3 *db = NULL;
	sqlite3_session *ses = NULL;
	void *cs = NULL;
	int ncs = 0, rc = 1;
	char *sql = NULL, *errmsg = NULL;
	if (argc < 4) {
		fputs(usage, stderr);
		return 2;
	}
	if ((sql = slurp(argv[2])) == NULL) {
		fprintf(stderr, "zila_changeset: cannot read '%s'\n", argv[2]);
		return 1;
	}
	if (sqlite3_open(argv[1], &db) != SQLITE_OK || sqlite3session_create(db, "main", &ses) != SQLITE_OK) {
		fprintf(stderr, "zila_changeset: cannot open '%s' with a session: %s\n", argv[1], sqlite3_errmsg(db));
		goto out;
	}
	for (int i = 3; i < argc; i++)
		if (sqlite3session_attach(ses, argv[i]) != SQLITE_OK) {
			fprintf(stderr, "zila_changeset: cannot watch table '%s'\n", argv[i]);
			goto out;
		}
	if (sqlite3_exec(db, sql, NULL, NULL, &errmsg) != SQLITE_OK) {
		fprintf(stderr, "zila_changeset: %s\n", errmsg ? errmsg : sqlite3_errmsg(db));
		goto out;
	}
	if (sqlite3session_changeset(ses, &ncs, &cs) != SQLITE_OK) {
		fprintf(stderr, "zila_changeset: no changeset\n");
		goto out;
	}
	size_t bound = ZSTD_compressBound((size_t)ncs);
	void *z = malloc(bound);
	size_t nz = z != NULL ? ZSTD_compress(z, bound, cs, (size_t)ncs, 19) : 0;
	if (z == NULL || ZSTD_isError(nz)) {
		fprintf(stderr, "zila_changeset: cannot compress\n");
		free(z);
		goto out;
	}
	printf("changeset %d zstd19 %zu\n", ncs, nz);
	free(z);
	rc = 0;
out:
	sqlite3_free(cs);
	sqlite3_free(errmsg);
	if (ses != NULL)
		sqlite3session_delete(ses);
	sqlite3_close(db);
	free(sql);
	return rc;
}
