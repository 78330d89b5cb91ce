/* The web interface's logins by password: DIR/web-auth.json (0600) holds the device's
 * password and the accounts as Argon2id hash strings, never a password. Read whole and
 * rewritten whole (atomically) on every change; small (a few hundred accounts at most). */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zila/buf.h"
#include "zila/os.h"
#include "zila/webauth.h"

#define AUTH_MAX (1024 * 1024)
/* Checked when a name has no account, so that a wrong name costs what a wrong password does
 * (the hash of 32 random bytes nobody kept). */
static const char decoy[] = "$argon2id$v=19$m=65536,t=2,p=1$MTYvRT78fK4myZJgP8cBxg$HF6PPtuyh0KABl1DYHC34CzZ6phJs71AHvDqIf9ii4g";

static void auth_path(const char *dir, char *out, size_t n)
{
	snprintf(out, n, "%s/%s", dir, ZILA_WEBAUTH_FILE);
}

bool zila_webauth_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > ZILA_WEBAUTH_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') || name[i] == '.' ||
		      name[i] == '_' || name[i] == '-'))
			return false;
	return true;
}

bool zila_webauth_role_ok(const char *role)
{
	if (strcmp(role, "admin") == 0 || strcmp(role, "viewer") == 0)
		return true;
	if (strncmp(role, "district:", 9) != 0)
		return false;
	const char *id = role + 9;
	size_t n = strlen(id);
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') || (id[i] >= '0' && id[i] <= '9') ||
		      id[i] == '.' || id[i] == '_' || id[i] == '-'))
			return false;
	return true;
}

/* The file as JSON into *out ({} when there is none). */
static int auth_load(const char *dir, json_t **out, struct zila_error *err)
{
	char path[4200];
	struct zila_buf b;
	*out = NULL;
	auth_path(dir, path, sizeof(path));
	zila_buf_init(&b, AUTH_MAX);
	int r = zila_os_read_file(path, AUTH_MAX, &b, NULL, err);
	if (r == ZILA_ENOTFOUND) {
		zila_buf_release(&b);
		*out = json_object();
		return *out ? 0 : zila_error_set(err, ZILA_ENOMEM, "out of memory");
	}
	if (r != 0) {
		zila_buf_release(&b);
		return r;
	}
	json_error_t je;
	*out = json_loadb((const char *)b.p, b.len, 0, &je);
	zila_buf_release(&b);
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return zila_error_set(err, ZILA_EFORMAT, "'%s' is not a web login file zila can read", path);
	}
	return 0;
}

static int auth_save(const char *dir, json_t *o, struct zila_error *err)
{
	char path[4200];
	auth_path(dir, path, sizeof(path));
	json_object_set_new(o, "version", json_integer(1));
	char *s = json_dumps(o, JSON_INDENT(1) | JSON_SORT_KEYS);
	if (s == NULL)
		return zila_error_set(err, ZILA_ENOMEM, "out of memory");
	int r = zila_os_write_atomic(path, s, strlen(s), 0600, err);
	free(s);
	return r;
}

static int hash_of(const char *password, char out[crypto_pwhash_STRBYTES], struct zila_error *err)
{
	size_t n = strlen(password);
	if (n < ZILA_WEBAUTH_PASSWORD_MIN)
		return zila_error_set(err, ZILA_EINVAL, "a password needs at least %d characters", ZILA_WEBAUTH_PASSWORD_MIN);
	if (n > ZILA_WEBAUTH_PASSWORD_MAX)
		return zila_error_set(err, ZILA_EINVAL, "a password may have at most %d bytes", ZILA_WEBAUTH_PASSWORD_MAX);
	if (crypto_pwhash_str(out, password, n, crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
		return zila_error_set(err, ZILA_ENOMEM, "out of memory hashing the password");
	return 0;
}

int zila_webauth_set_password(const char *dir, const char *password, struct zila_error *err)
{
	char h[crypto_pwhash_STRBYTES];
	json_t *o = NULL;
	int r = auth_load(dir, &o, err);
	if (r != 0)
		goto out;
	if (password == NULL) {
		if (json_object_get(o, "password") == NULL) {
			r = zila_error_set(err, ZILA_ENOTFOUND, "no password is set");
			goto out;
		}
		json_object_del(o, "password");
	} else {
		if ((r = hash_of(password, h, err)) != 0)
			goto out;
		json_object_set_new(o, "password", json_string(h));
	}
	r = auth_save(dir, o, err);
out:
	json_decref(o);
	return r;
}

static json_t *accounts_of(json_t *o)
{
	json_t *a = json_object_get(o, "accounts");
	if (!json_is_object(a)) {
		a = json_object();
		json_object_set_new(o, "accounts", a);
	}
	return a;
}

int zila_webauth_account_add(const char *dir, const char *name, const char *role, const char *password,
			     struct zila_error *err)
{
	char h[crypto_pwhash_STRBYTES];
	json_t *o = NULL;
	int r;
	if (!zila_webauth_name_ok(name))
		return zila_error_set(err, ZILA_EINVAL,
				      "'%s' is not an account name: 1 to %d of a-z, 0-9, '.', '_', '-'", name,
				      ZILA_WEBAUTH_NAME_MAX);
	if (!zila_webauth_role_ok(role))
		return zila_error_set(err, ZILA_EINVAL, "'%s' is not a role: admin, viewer or district:<id>", role);
	if ((r = auth_load(dir, &o, err)) != 0)
		goto out;
	json_t *a = accounts_of(o);
	if (json_object_get(a, name) != NULL) {
		r = zila_error_set(err, ZILA_EEXIST, "an account '%s' exists already ('zila web account passwd %s')", name, name);
		goto out;
	}
	if ((r = hash_of(password, h, err)) != 0)
		goto out;
	json_object_set_new(a, name, json_pack("{s:s, s:s}", "role", role, "hash", h));
	r = auth_save(dir, o, err);
out:
	json_decref(o);
	return r;
}

int zila_webauth_account_passwd(const char *dir, const char *name, const char *password, struct zila_error *err)
{
	char h[crypto_pwhash_STRBYTES];
	json_t *o = NULL;
	int r = auth_load(dir, &o, err);
	if (r != 0)
		goto out;
	json_t *acc = json_object_get(accounts_of(o), name);
	if (!json_is_object(acc)) {
		r = zila_error_set(err, ZILA_ENOTFOUND, "no account '%s'", name);
		goto out;
	}
	if ((r = hash_of(password, h, err)) != 0)
		goto out;
	json_object_set_new(acc, "hash", json_string(h));
	r = auth_save(dir, o, err);
out:
	json_decref(o);
	return r;
}

int zila_webauth_account_rm(const char *dir, const char *name, struct zila_error *err)
{
	json_t *o = NULL;
	int r = auth_load(dir, &o, err);
	if (r != 0)
		goto out;
	if (json_object_del(accounts_of(o), name) != 0) {
		r = zila_error_set(err, ZILA_ENOTFOUND, "no account '%s'", name);
		goto out;
	}
	r = auth_save(dir, o, err);
out:
	json_decref(o);
	return r;
}

static int cmp_acc(const void *a, const void *b)
{
	return strcmp(((const struct zila_webauth_account *)a)->name, ((const struct zila_webauth_account *)b)->name);
}

int zila_webauth_accounts(const char *dir, struct zila_webauth_account *out, size_t max, size_t *n,
			  bool *has_password, struct zila_error *err)
{
	json_t *o = NULL;
	*n = 0;
	*has_password = false;
	int r = auth_load(dir, &o, err);
	if (r != 0)
		return r;
	*has_password = json_is_string(json_object_get(o, "password"));
	const char *k;
	json_t *v;
	json_object_foreach(accounts_of(o), k, v)
	{
		const char *role = json_string_value(json_object_get(v, "role"));
		if (*n < max) {
			snprintf(out[*n].name, sizeof(out[*n].name), "%s", k);
			snprintf(out[*n].role, sizeof(out[*n].role), "%s", role ? role : "?");
		}
		(*n)++;
	}
	qsort(out, *n < max ? *n : max, sizeof(*out), cmp_acc);
	json_decref(o);
	return 0;
}

int zila_webauth_lookup(const char *dir, const char *name, char *hash, size_t hash_len, char role[ZILA_WEBAUTH_ROLE_MAX + 1])
{
	struct zila_error err;
	json_t *o = NULL;
	const char *h = NULL, *rl = NULL;
	zila_error_clear(&err);
	if (auth_load(dir, &o, &err) == 0) {
		if (name == NULL || name[0] == '\0') {
			h = json_string_value(json_object_get(o, "password"));
			rl = "owner";
		} else {
			json_t *acc = json_object_get(json_object_get(o, "accounts"), name);
			h = json_string_value(json_object_get(acc, "hash"));
			rl = json_string_value(json_object_get(acc, "role"));
		}
	}
	int r = h != NULL && rl != NULL && strlen(h) < hash_len ? 0 : ZILA_ENOTFOUND;
	snprintf(hash, hash_len, "%s", r == 0 ? h : decoy);
	snprintf(role, ZILA_WEBAUTH_ROLE_MAX + 1, "%s", r == 0 ? rl : "");
	json_decref(o);
	return r;
}

bool zila_webauth_verify(const char *hash, const char *password, size_t password_len)
{
	if (password_len == 0 || password_len > ZILA_WEBAUTH_PASSWORD_MAX)
		return false;
	return crypto_pwhash_str_verify(hash, password, password_len) == 0;
}

bool zila_webauth_any(const char *dir)
{
	struct zila_webauth_account a[1];
	size_t n = 0;
	bool pw = false;
	struct zila_error err;
	zila_error_clear(&err);
	if (zila_webauth_accounts(dir, a, 1, &n, &pw, &err) != 0)
		return false;
	return pw || n > 0;
}
