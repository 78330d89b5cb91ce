/* The OS layer's atomic write when the file system refuses a write (here a file size limit,
 * as a full disk would): the commit fails, says why, and the old file is as it was. POSIX
 * only (setrlimit); the rest of the OS layer's tests, test_os.c, run on Windows too. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "zila/os.h"

static char dir[64];

static void assert_file(const char *path, const char *want)
{
	struct zila_buf b;
	struct zila_error err;
	zila_buf_init(&b, 1 << 20);
	assert_int_equal(zila_os_read_file(path, 1 << 20, &b, NULL, &err), 0);
	assert_int_equal(b.len, strlen(want));
	assert_memory_equal(b.p, want, b.len);
	zila_buf_release(&b);
}

static void test_write_refused(void **state)
{
	(void)state;
	char path[128], tmp[140];
	struct zila_error err;
	struct zila_os_atomic *a;
	snprintf(path, sizeof(path), "%s/f", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	assert_int_equal(zila_os_write_atomic(path, "old", 3, 0644, &err), 0);

	/* A write the file system refuses (here a file size limit, as a full disk would): the
	 * commit fails, says why, and the old file is as it was. */
	static uint8_t big[256 * 1024];
	memset(big, 'x', sizeof(big));
	struct rlimit old_lim, lim;
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old_lim), 0);
	lim = old_lim;
	lim.rlim_cur = 64 * 1024; /* the soft limit only: it can be raised again */
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	assert_int_equal(zila_os_atomic_open(&a, path, 0644, &err), 0);
	int wr = zila_os_atomic_write(a, big, sizeof(big));
	int cr = zila_os_atomic_commit(a, &err);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old_lim), 0);
	signal(SIGXFSZ, SIG_DFL);
	assert_true(wr != 0 || cr != 0);
	assert_int_not_equal(cr, 0);
	assert_non_null(strstr(err.msg, "cannot write"));
	assert_file(path, "old");
	assert_false(zila_os_exists(tmp));
	assert_int_equal(zila_os_write_atomic(path, big, 10, 0644, &err), 0);
	assert_file(path, "xxxxxxxxxx");
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/zila-os-full-XXXXXX");
	if (zila_os_mkdtemp(dir) != 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_refused),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	if (zila_os_rmtree(dir) != 0)
		return 1;
	return r;
}
