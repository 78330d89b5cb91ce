/* Unit tests of the web interface's logins by password (zila/webauth.h): the device's
 * password and accounts kept as Argon2id hashes in web-auth.json, names and roles
 * checked, a lookup of a name with no account giving a decoy that never matches. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "zila/buf.h"
#include "zila/os.h"
#include "zila/webauth.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/zila-webauth-XXXXXX");
	return zila_os_mkdtemp(dir) == 0 && sodium_init() >= 0 ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	return zila_os_rmtree(dir) == 0 ? 0 : -1;
}

/* The whole file as a C string (malloc'd). */
static char *file_text(void)
{
	char path[128];
	struct zila_buf b;
	struct zila_error err;
	snprintf(path, sizeof(path), "%s/%s", dir, ZILA_WEBAUTH_FILE);
	zila_buf_init(&b, 1 << 20);
	assert_int_equal(zila_os_read_file(path, 1 << 20, &b, NULL, &err), 0);
	char *s = calloc(1, b.len + 1);
	memcpy(s, b.p, b.len);
	zila_buf_release(&b);
	return s;
}

static void test_names_and_roles(void **state)
{
	(void)state;
	assert_true(zila_webauth_name_ok("gaya.clerk-1"));
	assert_false(zila_webauth_name_ok(""));
	assert_false(zila_webauth_name_ok("Gaya"));   /* lower case only: the page lowers what is typed */
	assert_false(zila_webauth_name_ok("a b"));
	assert_false(zila_webauth_name_ok("abcdefghijklmnopqrstuvwxyz0123456")); /* 33 */
	assert_true(zila_webauth_role_ok("admin"));
	assert_true(zila_webauth_role_ok("viewer"));
	assert_true(zila_webauth_role_ok("district:d2"));
	assert_false(zila_webauth_role_ok("district:"));
	assert_false(zila_webauth_role_ok("district:a b"));
	assert_false(zila_webauth_role_ok("owner")); /* the device's password's, never an account's */
	assert_false(zila_webauth_role_ok("root"));
}

static void test_password(void **state)
{
	(void)state;
	struct zila_error err;
	char hash[256], role[ZILA_WEBAUTH_ROLE_MAX + 1];
	assert_false(zila_webauth_any(dir));
	assert_int_equal(zila_webauth_set_password(dir, "short", &err), ZILA_EINVAL);
	assert_int_equal(zila_webauth_set_password(dir, NULL, &err), ZILA_ENOTFOUND);
	assert_int_equal(zila_webauth_set_password(dir, "office password", &err), 0);
	assert_true(zila_webauth_any(dir));
	/* (its mode, 0600, is checked by test_web_lan.sh: on Windows an owner-only ACL stands for it) */
	char *text = file_text();
	assert_non_null(strstr(text, "$argon2id$"));
	assert_null(strstr(text, "office password"));
	free(text);
	assert_int_equal(zila_webauth_lookup(dir, NULL, hash, sizeof(hash), role), 0);
	assert_string_equal(role, "owner");
	assert_true(zila_webauth_verify(hash, "office password", 15));
	assert_false(zila_webauth_verify(hash, "office passwore", 15));
	assert_false(zila_webauth_verify(hash, "", 0));
	/* a new password: the old one no longer matches */
	assert_int_equal(zila_webauth_set_password(dir, "another password", &err), 0);
	assert_int_equal(zila_webauth_lookup(dir, "", hash, sizeof(hash), role), 0);
	assert_false(zila_webauth_verify(hash, "office password", 15));
	assert_int_equal(zila_webauth_set_password(dir, NULL, &err), 0);
	assert_false(zila_webauth_any(dir));
	/* gone: the lookup gives a decoy hash, checked like any, matching nothing */
	assert_int_equal(zila_webauth_lookup(dir, NULL, hash, sizeof(hash), role), ZILA_ENOTFOUND);
	assert_non_null(strstr(hash, "$argon2id$"));
	assert_string_equal(role, "");
	assert_false(zila_webauth_verify(hash, "another password", 16));
}

static void test_accounts(void **state)
{
	(void)state;
	struct zila_error err;
	struct zila_webauth_account a[4];
	size_t n = 0;
	bool pw = true;
	char hash[256], role[ZILA_WEBAUTH_ROLE_MAX + 1];
	assert_int_equal(zila_webauth_account_add(dir, "vera", "viewer", "viewer pass 1", &err), 0);
	assert_int_equal(zila_webauth_account_add(dir, "gaya", "district:d2", "gaya pass 1", &err), 0);
	assert_int_equal(zila_webauth_account_add(dir, "gaya", "admin", "gaya pass 2", &err), ZILA_EEXIST);
	assert_int_equal(zila_webauth_account_add(dir, "Bad Name", "admin", "gaya pass 2", &err), ZILA_EINVAL);
	assert_int_equal(zila_webauth_account_add(dir, "boss", "boss", "gaya pass 2", &err), ZILA_EINVAL);
	assert_int_equal(zila_webauth_account_add(dir, "x", "admin", "short", &err), ZILA_EINVAL);
	assert_true(zila_webauth_any(dir));
	assert_int_equal(zila_webauth_accounts(dir, a, 4, &n, &pw, &err), 0);
	assert_int_equal(n, 2);
	assert_false(pw);
	assert_string_equal(a[0].name, "gaya"); /* sorted by name */
	assert_string_equal(a[0].role, "district:d2");
	assert_string_equal(a[1].name, "vera");
	assert_int_equal(zila_webauth_lookup(dir, "gaya", hash, sizeof(hash), role), 0);
	assert_string_equal(role, "district:d2");
	assert_true(zila_webauth_verify(hash, "gaya pass 1", 11));
	assert_false(zila_webauth_verify(hash, "viewer pass 1", 13)); /* another account's password */
	assert_int_equal(zila_webauth_account_passwd(dir, "gaya", "gaya pass 2", &err), 0);
	assert_int_equal(zila_webauth_lookup(dir, "gaya", hash, sizeof(hash), role), 0);
	assert_false(zila_webauth_verify(hash, "gaya pass 1", 11));
	assert_true(zila_webauth_verify(hash, "gaya pass 2", 11));
	assert_int_equal(zila_webauth_account_passwd(dir, "nobody", "gaya pass 2", &err), ZILA_ENOTFOUND);
	/* a name with no account: a decoy, no role */
	assert_int_equal(zila_webauth_lookup(dir, "nobody", hash, sizeof(hash), role), ZILA_ENOTFOUND);
	assert_string_equal(role, "");
	assert_int_equal(zila_webauth_account_rm(dir, "gaya", &err), 0);
	assert_int_equal(zila_webauth_account_rm(dir, "gaya", &err), ZILA_ENOTFOUND);
	assert_int_equal(zila_webauth_lookup(dir, "gaya", hash, sizeof(hash), role), ZILA_ENOTFOUND);
	assert_int_equal(zila_webauth_accounts(dir, a, 4, &n, &pw, &err), 0);
	assert_int_equal(n, 1);
	char *text = file_text();
	assert_null(strstr(text, "pass 1"));
	assert_null(strstr(text, "pass 2"));
	free(text);
}

static void test_unreadable_file(void **state)
{
	(void)state;
	struct zila_error err;
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", dir, ZILA_WEBAUTH_FILE);
	assert_int_equal(zila_os_write_atomic(path, "not json", 8, 0600, &err), 0);
	assert_int_equal(zila_webauth_set_password(dir, "office password", &err), ZILA_EFORMAT);
	assert_false(zila_webauth_any(dir)); /* an unreadable file lets nobody in */
	char fp[ZILA_WEBTLS_FP_LEN + 1];
	snprintf(path, sizeof(path), "%s/none.pem", dir);
	assert_int_equal(zila_webtls_fingerprint(path, fp, NULL, 0, &err), ZILA_ENOTFOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_and_roles),
		cmocka_unit_test_setup_teardown(test_password, setup, teardown),
		cmocka_unit_test_setup_teardown(test_accounts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreadable_file, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
