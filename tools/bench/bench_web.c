/* The web interface's member list and search for a generated district (zila_gen: 20,000
 * people with Devanagari names), on a district laptop: time to the first page and to a
 * search result (English name, Hindi name, phone), goal < 100 ms each, and a member's page
 * with its history. First through the pages' handler in this process, then end to end: the
 * real daemon (ZILA_BIN, build/zila) serving HTTP on loopback, with its RSS while the
 * interface is in use.
 *   bench_web [PEOPLE]   (default 20,000); ZILA_GEN (build/tools/zila_gen), ZILA_BIN */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>
#include <time.h>

#include "zila/log.h"
#include "zila/office/web.h"
#include "zila/store.h"
#include "zila/trust.h"

#define NOW_S ((uint64_t)time(NULL))

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "bench_web: %s: %s\n", what, msg);
	exit(1);
}

static struct zila_store *open_store(const char *dir)
{
	struct zila_store *s;
	struct zila_error err;
	zila_error_clear(&err);
	if (zila_store_open(&s, dir, &err) != 0)
		die("open", err.msg);
	return s;
}

static sqlite3 *open_db(const char *dir)
{
	char path[256];
	sqlite3 *db;
	snprintf(path, sizeof(path), "%s/zila.db", dir);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		die("open", path);
	sqlite3_busy_timeout(db, 5000);
	return db;
}

#define GOAL_MS 100.0
#define RUNS 15

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static struct zila_office_web *pages;

/* One request to the pages' handler: ms; the answer's status must be 200. */
static double call(const char *path, const char *query, char **body)
{
	struct zila_office_reply rep;
	double t0 = now();
	zila_office_web_handle(pages, "GET", path, query, "", 0, &rep);
	double ms = (now() - t0) * 1000;
	if (rep.status != 200)
		die(path, rep.body ? rep.body : "no answer");
	if (body)
		*body = rep.body;
	else
		free(rep.body);
	return ms;
}

static void report(const char *what, double first, double *runs, int n)
{
	qsort(runs, (size_t)n, sizeof(*runs), cmp_d);
	double med = runs[n / 2], worst = runs[n - 1];
	printf("%-34s first %7.1f ms, median %7.1f ms, worst %7.1f ms  %s\n", what, first, med, worst,
	       first < GOAL_MS && worst < GOAL_MS ? "(goal < 100 ms met)" : "(goal < 100 ms MISSED)");
}

static void measure(const char *what, const char *path, const char *query)
{
	double runs[RUNS];
	double first = call(path, query, NULL);
	for (int i = 0; i < RUNS; i++)
		runs[i] = call(path, query, NULL);
	report(what, first, runs, RUNS);
}

/* --- end to end: HTTP to the daemon -------------------------------------------------------- */

static int port_web;

/* Sends one request and reads the whole answer; returns its status, ms in *ms. */
static int http(const char *method, const char *path, const char *cookie, const char *body, double *ms,
		char *out, size_t outn)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port_web);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	char req[4096];
	int n = snprintf(req, sizeof(req),
			 "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n%s%s%sContent-Type: "
			 "application/json\r\nContent-Length: %zu\r\n\r\n%s",
			 method, path, port_web, cookie ? "Cookie: zila_session=" : "", cookie ? cookie : "",
			 cookie ? "\r\n" : "", body ? strlen(body) : 0, body ? body : "");
	double t0 = now();
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || write(fd, req, (size_t)n) != n)
		die("http", strerror(errno));
	size_t have = 0;
	char *all = malloc(1 << 20);
	size_t cap = 1 << 20;
	for (;;) {
		if (have == cap) {
			cap *= 2;
			all = realloc(all, cap);
		}
		ssize_t k = read(fd, all + have, cap - have);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		have += (size_t)k;
	}
	*ms = (now() - t0) * 1000;
	close(fd);
	int status = 0;
	if (have > 12)
		status = atoi(all + 9);
	if (out) {
		size_t m = have < outn - 1 ? have : outn - 1;
		memcpy(out, all, m);
		out[m] = '\0';
	}
	free(all);
	return status;
}

static long rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			kib = strtol(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return kib;
}

static void http_measure(const char *what, const char *path, const char *cookie)
{
	double runs[RUNS], first;
	if (http("GET", path, cookie, NULL, &first, NULL, 0) != 200)
		die(what, "not 200");
	for (int i = 0; i < RUNS; i++)
		if (http("GET", path, cookie, NULL, &runs[i], NULL, 0) != 200)
			die(what, "not 200");
	report(what, first, runs, RUNS);
}

static void end_to_end(const char *zila, const char *dir, const char *q_en)
{
	int base = 20000 + (int)(getpid() * 7 % 20000);
	port_web = base + 1;
	char listen[64], web[64];
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", base);
	snprintf(web, sizeof(web), "127.0.0.1:%d", port_web);
	pid_t pid = fork();
	if (pid == 0) {
		if (freopen("/dev/null", "w", stderr) == NULL)
			_exit(127);
		execl(zila, zila, "-d", dir, "daemon", "--listen", listen, "--beacon-port", "0", "--web", web, (char *)NULL);
		_exit(127);
	}
	char cmd[600], url[400] = "";
	snprintf(cmd, sizeof(cmd), "'%s' -d '%s' --json open 2>/dev/null", zila, dir);
	for (int i = 0; i < 100 && url[0] == '\0'; i++) {
		usleep(100000);
		FILE *p = popen(cmd, "r");
		if (p && fgets(url, sizeof(url), p) == NULL)
			url[0] = '\0';
		if (p)
			pclose(p);
	}
	char *t = strstr(url, "#t=");
	if (t == NULL)
		die("daemon", "no login link (is build/zila built? ZILA_BIN)");
	char token[80], body[200], ans[4096], cookie[80];
	snprintf(token, sizeof(token), "%.64s", t + 3);
	snprintf(body, sizeof(body), "{\"token\":\"%s\"}", token);
	double ms;
	long rss0 = rss_kib(pid);
	if (http("POST", "/api/login", NULL, body, &ms, ans, sizeof(ans)) != 200)
		die("login", ans);
	char *c = strstr(ans, "zila_session=");
	if (c == NULL)
		die("login", "no cookie");
	snprintf(cookie, sizeof(cookie), "%.64s", c + 13);
	printf("-- end to end: HTTP to the daemon on loopback (a new connection per request)\n");
	http_measure("GET members, first page (50)", "/api/tables/people/rows?limit=50", cookie);
	char path[300];
	snprintf(path, sizeof(path), "/api/tables/people/rows?q=%s&limit=50", q_en);
	http_measure("search by English name", path, cookie);
	http_measure("a page deep in the list", "/api/tables/people/rows?limit=50&offset=15000", cookie);
	for (int i = 0; i < 50; i++)
		(void)http("GET", "/api/tables", cookie, NULL, &ms, NULL, 0);
	long rss1 = rss_kib(pid);
	printf("daemon RSS: %ld KiB before the interface was used, %ld KiB while in use\n", rss0, rss1);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

int main(int argc, char **argv)
{
	long people = argc > 1 ? strtol(argv[1], NULL, 10) : 20000;
	const char *gen = getenv("ZILA_GEN") ? getenv("ZILA_GEN") : "build/tools/zila_gen";
	const char *zila = getenv("ZILA_BIN") ? getenv("ZILA_BIN") : "build/zila";
	char base[128], hq[160], lap[160], cmd[600], did[64], q_en[64] = "", q_hi[200] = "", q_ph[16] = "";
	struct zila_error err;
	snprintf(base, sizeof(base), "%s/zila-bench-web-XXXXXX", getenv("ZILA_BENCH_DIR") ? getenv("ZILA_BENCH_DIR") : "/tmp");
	zila_error_clear(&err);
	if (people < 100 || sodium_init() < 0 || mkdtemp(base) == NULL)
		die("setup", "PEOPLE must be at least 100; tmp");
	zila_log_set_sink(NULL, NULL, ZILA_LOG_ERROR);
	snprintf(hq, sizeof(hq), "%s/hq", base);
	snprintf(lap, sizeof(lap), "%s/lap", base);
	if (zila_store_create(hq, &err) != 0 || zila_store_create(lap, &err) != 0)
		die("create", err.msg);
	/* The laptop holds the generated district, written by an application, sealed. */
	snprintf(cmd, sizeof(cmd), "'%s' --districts 1 --people-per-district %ld --db '%s/zila.db'", gen, people, lap);
	if (system(cmd) != 0)
		die("zila_gen", "failed (build it with make build/tools/zila_gen, or set ZILA_GEN)");
	sqlite3 *db = open_db(lap);
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, "SELECT district_id, substr(name, 1, 5), substr(name_local, 1, 3), substr(phone, 3, 5) "
				   "FROM people ORDER BY id LIMIT 1 OFFSET 777",
			       -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW)
		die("district", sqlite3_errmsg(db));
	snprintf(did, sizeof(did), "%s", (const char *)sqlite3_column_text(st, 0));
	for (const char *p = (const char *)sqlite3_column_text(st, 1); *p; p++) /* a query string */
		snprintf(q_en + strlen(q_en), sizeof(q_en) - strlen(q_en), *p == ' ' ? "+" : "%c", *p);
	for (const unsigned char *p = sqlite3_column_text(st, 2); *p; p++)
		snprintf(q_hi + strlen(q_hi), sizeof(q_hi) - strlen(q_hi), "%%%02X", *p);
	snprintf(q_ph, sizeof(q_ph), "%s", (const char *)sqlite3_column_text(st, 3));
	sqlite3_finalize(st);
	sqlite3_close(db);
	struct zila_store *h = open_store(hq), *l = open_store(lap);
	struct zila_buf file;
	zila_buf_init(&file, 65536);
	if (zila_trust_org_init(h, "Bench", "pass", 4, &zila_pwcost_min, NOW_S, &err) != 0 ||
	    zila_trust_issue(h, zila_store_device_pk(l), "laptop", ZILA_ROLE_DISTRICT, did, NOW_S, 365, &file, &err) != 0 ||
	    zila_trust_install_cert(l, zila_buf_view(&file), NOW_S, &err) != 0)
		die("enrol", err.msg);
	zila_buf_release(&file);
	if (zila_store_seal(l, NULL, &err) != 0)
		die("seal", err.msg);
	zila_store_free(h);

	printf("== bench_web: a district laptop with %ld people (zila_gen), the member list and search\n", people);
	struct zila_office_who who = { .device_id = "bench", .name = "laptop", .district = did, .org = "Bench" };
	if (zila_office_web_new(&pages, lap, l, &who, &err) != 0)
		die("pages", err.msg);
	char query[300], *one = NULL;
	printf("-- the pages' handler in this process\n");
	printf("%-34s %7.1f ms (once per replica: makes the list's local sort index)\n", "the first listing ever",
	       call("/api/tables/people/rows", "limit=50", NULL));
	zila_office_web_free(pages);
	if (zila_office_web_new(&pages, lap, l, &who, &err) != 0) /* the interface opened again */
		die("pages", err.msg);
	measure("GET members, first page (50)", "/api/tables/people/rows", "limit=50");
	snprintf(query, sizeof(query), "q=%s&limit=50", q_en);
	measure("search by English name", "/api/tables/people/rows", query);
	snprintf(query, sizeof(query), "q=%s&limit=50", q_hi);
	measure("search by Hindi name", "/api/tables/people/rows", query);
	snprintf(query, sizeof(query), "q=%s&limit=50", q_ph);
	measure("search by phone digits", "/api/tables/people/rows", query);
	measure("a page deep in the list", "/api/tables/people/rows", "limit=50&offset=15000");
	(void)call("/api/tables/people/rows", "limit=1", &one);
	char *id = strstr(one, "\"id\":\"");
	char path[200];
	snprintf(path, sizeof(path), "/api/tables/people/rows/%.32s", id ? id + 6 : "x");
	free(one);
	measure("one member with its history", path, "");
	zila_office_web_free(pages);
	zila_store_free(l);
	end_to_end(zila, lap, q_en);
	if (getenv("ZILA_BENCH_KEEP"))
		printf("kept %s\n", base);
	else {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
		if (system(cmd) != 0)
			return 1;
	}
	return 0;
}
