/* The OS layer (include/zila/os.h): an atomic write replaces a file whole or not at all (a
 * write that fails leaves the old file as it was, and no temp file), new files refuse to
 * overwrite and keep their mode, whole-file reads are bounded, maps show the bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "zila/os.h"

static char dir[64];

static void path_of(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", dir, name);
}

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

static bool exists(const char *path)
{
	return zila_os_exists(path);
}

/* The permission bits of path as the OS layer sees them; Wine turns a DACL into unix mode
 * bits and back, so under it (ZILA_TEST_NO_ACL, set by make check-windows) they are not
 * checked: README "Windows", what Wine cannot prove. */
static void assert_mode(const char *path, unsigned want)
{
	unsigned mode = 0;
	if (getenv("ZILA_TEST_NO_ACL") != NULL)
		return;
	assert_int_equal(zila_os_mode(path, &mode), 0);
	assert_int_equal(mode, want);
}

static void test_atomic_write(void **state)
{
	(void)state;
	char path[128], tmp[140];
	struct zila_error err;
	struct zila_os_atomic *a;
	path_of(path, sizeof(path), "f");
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	assert_int_equal(zila_os_write_atomic(path, "old", 3, 0644, &err), 0);
	assert_file(path, "old");
	assert_false(exists(tmp));

	/* Given up half way: the old file stays, the temp file goes. */
	assert_int_equal(zila_os_atomic_open(&a, path, 0644, &err), 0);
	assert_int_equal(zila_os_atomic_write(a, (const uint8_t *)"new, half", 9), 0);
	zila_os_atomic_abort(a);
	assert_file(path, "old");
	assert_false(exists(tmp));

	/* A write the file system refuses: test_os_full.c (a file size limit, POSIX only). */
	static uint8_t big[256 * 1024];
	memset(big, 'x', sizeof(big));
	assert_int_equal(zila_os_write_atomic(path, big, 10, 0644, &err), 0);
	assert_file(path, "xxxxxxxxxx");

	/* A temp file left by an interrupted run is replaced, not a reason to fail. */
	assert_int_equal(zila_os_write_new(tmp, "stale", 5, 0600, &err), 0);
	assert_int_equal(zila_os_write_atomic(path, "newer", 5, 0644, &err), 0);
	assert_file(path, "newer");
	assert_false(exists(tmp));

	/* The stream form: what export writes with stdio. */
	assert_int_equal(zila_os_atomic_open(&a, path, 0644, &err), 0);
	fprintf(zila_os_atomic_stream(a), "a,b\n1,2\n");
	assert_int_equal(zila_os_atomic_commit(a, &err), 0);
	assert_file(path, "a,b\n1,2\n");

	/* No directory: a clear message naming the file. */
	char nowhere[160];
	snprintf(nowhere, sizeof(nowhere), "%s/no/such/f", dir);
	assert_int_not_equal(zila_os_write_atomic(nowhere, "x", 1, 0644, &err), 0);
	assert_non_null(strstr(err.msg, nowhere));
}

static void test_new_files(void **state)
{
	(void)state;
	char path[128];
	struct zila_error err;
	path_of(path, sizeof(path), "key");
	assert_int_equal(zila_os_write_new(path, "secret", 6, 0600, &err), 0);
	assert_mode(path, 0600);
	assert_int_equal(zila_os_write_new(path, "other", 5, 0600, &err), ZILA_EEXIST);
	assert_file(path, "secret");

	unsigned mode = 0;
	struct zila_buf b;
	zila_buf_init(&b, 64);
	assert_int_equal(zila_os_read_file(path, 5, &b, &mode, &err), ZILA_ETOOBIG);
	zila_buf_reset(&b);
	assert_int_equal(zila_os_read_file(path, 6, &b, &mode, &err), 0);
	if (getenv("ZILA_TEST_NO_ACL") == NULL) /* see assert_mode */
		assert_int_equal(mode, 0600);
	zila_buf_release(&b);
	path_of(path, sizeof(path), "missing");
	zila_buf_init(&b, 64);
	assert_int_equal(zila_os_read_file(path, 6, &b, NULL, &err), ZILA_ENOTFOUND);
	zila_buf_release(&b);
	assert_int_equal(zila_os_make_private(path), ZILA_ENOTFOUND);

	path_of(path, sizeof(path), "open");
	assert_int_equal(zila_os_write_new(path, "x", 1, 0644, &err), 0);
	assert_int_equal(chmod(path, 0664), 0);
	assert_int_equal(zila_os_make_private(path), 0);
	assert_mode(path, 0600);
}

static void test_map(void **state)
{
	(void)state;
	char path[128];
	struct zila_error err;
	struct zila_os_map m;
	path_of(path, sizeof(path), "m");
	assert_int_equal(zila_os_write_atomic(path, "mapped bytes", 12, 0644, &err), 0);
	assert_int_equal(zila_os_map(&m, path, &err), 0);
	assert_int_equal(m.len, 12);
	assert_memory_equal(m.p, "mapped bytes", 12);
	zila_os_unmap(&m);
	zila_os_unmap(&m); /* twice is harmless */
	path_of(path, sizeof(path), "empty");
	assert_int_equal(zila_os_write_atomic(path, "", 0, 0644, &err), 0);
	assert_int_equal(zila_os_map(&m, path, &err), 0);
	assert_int_equal(m.len, 0);
	zila_os_unmap(&m);
	path_of(path, sizeof(path), "absent");
	assert_int_equal(zila_os_map(&m, path, &err), ZILA_ENOTFOUND);
	assert_null(m.p);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/zila-os-XXXXXX");
	if (zila_os_mkdtemp(dir) != 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_atomic_write),
		cmocka_unit_test(test_new_files),
		cmocka_unit_test(test_map),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	if (zila_os_rmtree(dir) != 0)
		return 1;
	return r;
}
