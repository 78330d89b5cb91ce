/* zila web: who may log in to the web interface from the LAN, and how it is served.
 *   zila web                                   (the address, password, accounts, TLS fingerprint)
 *   zila web password [--clear] [--password-file FILE]
 *   zila web account add NAME --role admin|viewer|district:<id> [--password-file FILE]
 *   zila web account ls | rm NAME | passwd NAME [--password-file FILE]
 * Passwords are asked twice on the terminal without echo (the OS layer's hidden read), or
 * read from the first line of a file; only their Argon2id hashes are kept, in
 * DIR/web-auth.json (0600, zila/webauth.h), which the daemon reads at each login. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_ctl.h"
#include "cli_trust.h"
#include "zila/os.h"
#include "zila/store.h"
#include "zila/webauth.h"

#define ACCOUNTS_MAX 512

/* A password into buf (n bytes): the first line of file, or asked twice. */
static int read_password(const char *file, char *buf, size_t n)
{
	buf[0] = '\0';
	if (file != NULL) {
		struct zila_buf fb;
		struct zila_error err;
		zila_error_clear(&err);
		zila_buf_init(&fb, 4096);
		int r = zila_os_read_file(file, 4096, &fb, NULL, &err);
		if (r != 0) {
			zila_buf_release(&fb);
			cli_err("%s", zila_error_msg(&err, r));
			return CLI_FAIL;
		}
		size_t k = 0;
		while (k < fb.len && k + 1 < n && fb.p[k] != '\n' && fb.p[k] != '\r' && fb.p[k] != '\0')
			k++;
		memcpy(buf, fb.p, k);
		buf[k] = '\0';
		sodium_memzero(fb.p, fb.len);
		zila_buf_release(&fb);
		return CLI_OK;
	}
	static const char no_tty[] = "no terminal to ask for the password; use --password-file FILE";
	char *again = sodium_malloc(n);
	if (again == NULL) {
		cli_err("out of memory");
		return CLI_FAIL;
	}
	int r = cli_prompt_hidden("new password: ", no_tty, buf, n);
	if (r == CLI_OK)
		r = cli_prompt_hidden("the same again: ", no_tty, again, n);
	if (r == CLI_OK && strcmp(buf, again) != 0) {
		cli_err("the two passwords differ: nothing changed");
		r = CLI_FAIL;
	}
	sodium_free(again);
	return r;
}

/* The replica's device may give an account this role: its scope is at most the device's. */
static int role_in_scope(struct cli *cli, const char *role)
{
	struct zila_cert c;
	if (strncmp(role, "district:", 9) != 0 || cli->store == NULL ||
	    zila_trust_cert_get(cli->store, zila_store_device_pk(cli->store), &c) != 0 || c.scope_all)
		return CLI_OK;
	if (strcmp(c.district, role + 9) != 0) {
		cli_err("this laptop holds district '%s' only: an account for '%s' would see nothing", c.district, role + 9);
		return CLI_USAGE;
	}
	return CLI_OK;
}

static int show(struct cli *cli)
{
	struct zila_webauth_account *a = calloc(ACCOUNTS_MAX, sizeof(*a));
	size_t n = 0;
	bool pw = false;
	struct zila_error err;
	char fp[ZILA_WEBTLS_FP_LEN + 1] = "", pin[ZILA_WEBTLS_PIN_LEN + 8] = "", path[4200];
	zila_error_clear(&err);
	if (a == NULL) {
		cli_err("out of memory");
		return CLI_FAIL;
	}
	int r = zila_webauth_accounts(cli->dir, a, ACCOUNTS_MAX, &n, &pw, &err);
	if (r != 0) {
		free(a);
		cli_err("%s", zila_error_msg(&err, r));
		return CLI_FAIL;
	}
	/* The running daemon's address and certificate, else the certificate made here before. */
	json_t *st = NULL, *web = NULL;
	struct cli_ctl ctl;
	if (cli_ctl_open(cli, &ctl, true) == CLI_OK) {
		if (cli_ctl_send(&ctl, json_pack("{s:s}", "cmd", "status")) == CLI_OK && cli_ctl_recv(&ctl, &st, 5000) == CLI_OK)
			web = json_object_get(st, "web");
		cli_ctl_close(&ctl);
	}
	const char *dfp = json_string_value(json_object_get(web, "fingerprint"));
	snprintf(path, sizeof(path), "%s/%s", cli->dir, ZILA_WEBTLS_CERT);
	if (zila_webtls_fingerprint(path, fp, pin, sizeof(pin), &err) != 0 || (dfp != NULL && strcmp(dfp, fp) != 0)) {
		pin[0] = '\0';
		snprintf(fp, sizeof(fp), "%s", dfp ? dfp : "");
	}
	const char *url = json_string_value(json_object_get(web, "url"));
	if (cli->json) {
		json_t *o = json_pack("{s:o, s:b, s:[], s:o, s:o}", "url", url ? json_string(url) : json_null(), "password", pw,
				      "accounts", "fingerprint", fp[0] ? json_string(fp) : json_null(), "pin",
				      pin[0] ? json_string(pin) : json_null());
		for (size_t i = 0; i < n && i < ACCOUNTS_MAX; i++)
			json_array_append_new(json_object_get(o, "accounts"),
					      json_pack("{s:s, s:s}", "name", a[i].name, "role", a[i].role));
		char *s = json_dumps(o, JSON_COMPACT);
		printf("%s\n", s ? s : "{}");
		free(s);
		json_decref(o);
	} else {
		if (url != NULL)
			printf("web interface: %s/ (%s)\n", url,
			       json_is_true(json_object_get(web, "lan")) ? "open to the LAN with a password" : "this computer only");
		else
			printf("web interface: the daemon does not run (or serves no web interface)\n");
		printf("password: %s\n", pw ? "set ('zila web password --clear' removes it)" : "none ('zila web password' sets one)");
		printf("accounts: %zu\n", n);
		for (size_t i = 0; i < n && i < ACCOUNTS_MAX; i++)
			printf("  %-20s %s\n", a[i].name, a[i].role);
		if (fp[0]) {
			printf("TLS certificate SHA-256: %s\n", fp);
			if (pin[0])
				printf("its public key (curl --pinnedpubkey): %s\n", pin);
			printf("  (staff check that their browser shows this fingerprint before typing a password)\n");
		}
	}
	json_decref(st);
	free(a);
	return CLI_OK;
}

int cmd_web(struct cli *cli, int argc, char **argv);
int cmd_web(struct cli *cli, int argc, char **argv)
{
	const char *file = NULL, *role = NULL;
	bool clear = false;
	const char *pos[4] = { NULL };
	size_t npos = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--password-file") == 0 && i + 1 < argc)
			file = argv[++i];
		else if (strcmp(argv[i], "--role") == 0 && i + 1 < argc)
			role = argv[++i];
		else if (strcmp(argv[i], "--clear") == 0)
			clear = true;
		else if (argv[i][0] == '-' || npos == 4)
			return cli_usage("web", "unknown option '%s'", argv[i]);
		else
			pos[npos++] = argv[i];
	}
	if (npos == 0)
		return show(cli);
	struct zila_error err;
	zila_error_clear(&err);
	char *pw = sodium_malloc(ZILA_WEBAUTH_PASSWORD_MAX + 2);
	int r = CLI_FAIL, e = 0;
	if (pw == NULL) {
		cli_err("out of memory");
		return CLI_FAIL;
	}
	const char *verb = pos[0], *sub = npos > 1 ? pos[1] : "", *name = npos > 2 ? pos[2] : NULL;
	if (strcmp(verb, "password") == 0 && npos == 1) {
		if (clear) {
			e = zila_webauth_set_password(cli->dir, NULL, &err);
			if (e == 0)
				printf("the web interface's password is removed: the LAN no longer gets in with it\n");
		} else {
			if ((r = read_password(file, pw, ZILA_WEBAUTH_PASSWORD_MAX + 2)) != CLI_OK)
				goto out;
			e = zila_webauth_set_password(cli->dir, pw, &err);
			if (e == 0)
				printf("the web interface's password is set; the LAN gets in with it once the daemon serves "
				       "a LAN address ('zila daemon --web 0.0.0.0:7480')\n");
		}
	} else if (strcmp(verb, "account") == 0 && strcmp(sub, "add") == 0 && name != NULL && npos == 3) {
		if (role == NULL) {
			r = cli_usage("web", "an account needs --role admin, viewer or district:<id>");
			goto out;
		}
		if (!zila_webauth_role_ok(role)) {
			r = cli_usage("web", "'%s' is not a role: admin, viewer or district:<id>", role);
			goto out;
		}
		if (!zila_webauth_name_ok(name)) {
			r = cli_usage("web", "'%s' is not an account name: 1 to %d of a-z, 0-9, '.', '_', '-'", name,
				      ZILA_WEBAUTH_NAME_MAX);
			goto out;
		}
		if ((r = role_in_scope(cli, role)) != CLI_OK)
			goto out;
		if ((r = read_password(file, pw, ZILA_WEBAUTH_PASSWORD_MAX + 2)) != CLI_OK)
			goto out;
		e = zila_webauth_account_add(cli->dir, name, role, pw, &err);
		if (e == 0)
			printf("account '%s' (%s) added\n", name, role);
	} else if (strcmp(verb, "account") == 0 && strcmp(sub, "passwd") == 0 && name != NULL && npos == 3) {
		if ((r = read_password(file, pw, ZILA_WEBAUTH_PASSWORD_MAX + 2)) != CLI_OK)
			goto out;
		e = zila_webauth_account_passwd(cli->dir, name, pw, &err);
		if (e == 0)
			printf("account '%s' has a new password (its open sessions end)\n", name);
	} else if (strcmp(verb, "account") == 0 && strcmp(sub, "rm") == 0 && name != NULL && npos == 3) {
		e = zila_webauth_account_rm(cli->dir, name, &err);
		if (e == 0)
			printf("account '%s' removed\n", name);
	} else if (strcmp(verb, "account") == 0 && strcmp(sub, "ls") == 0 && npos == 2) {
		r = show(cli);
		goto out;
	} else {
		r = cli_usage("web", "say password, account add|ls|rm|passwd, or nothing to show the settings");
		goto out;
	}
	if (e != 0) {
		cli_err("%s", zila_error_msg(&err, e));
		r = e == ZILA_EINVAL || e == ZILA_EEXIST || e == ZILA_ENOTFOUND ? CLI_FAIL : CLI_FAIL;
		goto out;
	}
	r = CLI_OK;
out:
	sodium_free(pw);
	return r;
}
