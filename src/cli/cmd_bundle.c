/* zila bundle: carry changes on a USB stick.
 *   zila bundle create FILE [--for VECTORFILE | --all]   (VECTORFILE: `zila vector` of the receiver)
 *   zila bundle apply FILE */
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "zila/bundle.h"
#include "zila/clock.h"
#include "zila/os.h"
#include "zila/store.h"
#include "zila/trust.h"

#define VECTOR_FILE_MAX (256u << 20)
#define VECTOR_MAX_AGE (30 * 86400) /* a vector file older than this is made again */

/* The signature line `zila vector` ends its text with: the named device's word that it made
 * the file (cmd_vector.c). Refused, in words, when missing, wrong or stale. */
static int check_signed(const char *path, const struct zila_buf *b, const uint8_t device[32], uint64_t made)
{
	static const char tag[] = "\n# sig ";
	const uint8_t *p = b->p;
	size_t at = SIZE_MAX;
	for (size_t i = 0; i + sizeof(tag) - 1 <= b->len; i++)
		if (memcmp(p + i, tag, sizeof(tag) - 1) == 0)
			at = i + 1;
	uint8_t sig[64];
	size_t hex_at = at + sizeof(tag) - 2, hex_len = 0;
	while (at != SIZE_MAX && hex_at + hex_len < b->len && p[hex_at + hex_len] != '\n')
		hex_len++;
	if (at == SIZE_MAX || zila_hex_decode(sig, 64, (const char *)p + hex_at, hex_len) != 0) {
		cli_err("vector file '%s' is not signed by the replica it names (made by an older zila, or edited): "
			"make it again with 'zila vector' on the receiving laptop; nothing is sent", path);
		return CLI_FAIL;
	}
	if (crypto_sign_verify_detached(sig, p, at, device) != 0) {
		cli_err("vector file '%s' was not made by the device it names (its signature does not verify): "
			"nothing is sent to it", path);
		return CLI_FAIL;
	}
	uint64_t now = zila_wall_s();
	if (made + VECTOR_MAX_AGE < now || made > now + 86400) {
		cli_err("vector file '%s' was made %s; make it again with 'zila vector' on the receiving laptop",
			path, made > now ? "in the future by this computer's clock" : "more than 30 days ago");
		return CLI_FAIL;
	}
	return CLI_OK;
}

/* Reads the text `zila vector` prints; *has_device says whether it named its replica, whose
 * signature over the file it checks. */
static int read_vector(const char *path, struct zila_vector *v, uint8_t device[32], bool *has_device,
		       uint8_t cert[ZILA_CERT_LEN], bool *has_cert)
{
	struct zila_buf text;
	struct zila_error rerr;
	char line[1024];
	size_t cap = 0, lineno = 0;
	unsigned long long made = 0;
	int r = CLI_OK;
	v->heads = NULL;
	v->nheads = 0;
	zila_buf_init(&text, VECTOR_FILE_MAX);
	zila_error_clear(&rerr);
	if (zila_os_read_file(path, VECTOR_FILE_MAX, &text, NULL, &rerr) != 0) {
		cli_err("cannot read vector file '%s': %s", path, rerr.msg);
		zila_buf_release(&text);
		return CLI_FAIL;
	}
	FILE *f = fmemopen(text.p, text.len ? text.len : 1, "r");
	if (f == NULL) {
		cli_err("cannot read vector file '%s'", path);
		zila_buf_release(&text);
		return CLI_FAIL;
	}
	while (text.len > 0 && fgets(line, sizeof(line), f) != NULL) {
		char hex[80], part[128];
		unsigned long long seq;
		lineno++;
		char devhex[80], certhex[2 * ZILA_CERT_LEN + 8];
		if (sscanf(line, "# cert %561s", certhex) == 1) {
			if (zila_hex_decode(cert, ZILA_CERT_LEN, certhex, strlen(certhex)) != 0) {
				cli_err("vector file '%s' line %zu: the certificate is damaged", path, lineno);
				r = CLI_FAIL;
				break;
			}
			*has_cert = true;
			continue;
		}
		if (sscanf(line, "# made %llu", &made) == 1 || strncmp(line, "# sig ", 6) == 0)
			continue;
		if (sscanf(line, "# device %79s", devhex) == 1) {
			if (zila_hex_decode(device, 32, devhex, strlen(devhex)) != 0) {
				cli_err("vector file '%s' line %zu: '%s' is not a device key", path, lineno, devhex);
				r = CLI_FAIL;
				break;
			}
			*has_device = true;
			continue;
		}
		if (line[0] == '\n' || line[0] == '#')
			continue;
		if (sscanf(line, "%79s %127s %llu", hex, part, &seq) != 3 || strlen(part) > ZILA_PART_MAX) {
			cli_err("vector file '%s' line %zu: expected 'DEVICE PARTITION SEQ'", path, lineno);
			r = CLI_FAIL;
			break;
		}
		if (v->nheads == cap) {
			cap = cap ? cap * 2 : 16;
			struct zila_feed_head *h = realloc(v->heads, cap * sizeof(*h));
			if (h == NULL) {
				r = CLI_FAIL;
				break;
			}
			v->heads = h;
		}
		struct zila_feed_head *h = &v->heads[v->nheads];
		memset(h, 0, sizeof(*h));
		if (zila_hex_decode(h->origin, 32, hex, strlen(hex)) != 0) {
			cli_err("vector file '%s' line %zu: '%s' is not a device key", path, lineno, hex);
			r = CLI_FAIL;
			break;
		}
		snprintf(h->part, sizeof(h->part), "%.64s", strcmp(part, "-") == 0 ? "" : part);
		h->seq = seq;
		v->nheads++;
	}
	fclose(f);
	if (r == CLI_OK && *has_device)
		r = check_signed(path, &text, device, made);
	zila_buf_release(&text);
	if (r == CLI_OK) {
		/* Sort through the codec so lookups work. */
		struct zila_buf b;
		struct zila_vector sorted;
		zila_buf_init(&b, 1u << 30);
		if (zila_vector_encode(v, &b) != 0 || zila_vector_decode(zila_buf_view(&b), &sorted) != 0) {
			cli_err("vector file '%s' is not valid", path);
			r = CLI_FAIL;
		} else {
			zila_vector_release(v);
			*v = sorted;
		}
		zila_buf_release(&b);
	}
	if (r != CLI_OK)
		zila_vector_release(v);
	return r;
}

static void print_stats(const struct cli *cli, const char *file, const struct zila_apply_stats *st)
{
	if (cli->json) {
		printf("{\"file\":");
		cli_json_str(file);
		printf(",\"received\":%zu,\"applied\":%zu,\"duplicate\":%zu,\"rejected\":%zu,\"held\":%zu,"
		       "\"gap\":%zu,\"conflicts\":%zu,\"parked\":%zu,\"trust\":%zu}\n",
		       st->nreceived, st->napplied, st->nduplicate, st->nrejected, st->nheld, st->ngap,
		       st->nconflicts, st->nparked, st->ntrust);
		return;
	}
	printf("applied %zu of %zu entries from '%s' (%zu already held", st->napplied, st->nreceived, file,
	       st->nduplicate);
	if (st->nrejected)
		printf(", %zu rejected", st->nrejected);
	if (st->nheld)
		printf(", %zu held for a newer schema", st->nheld);
	if (st->ngap)
		printf(", %zu waiting for earlier entries", st->ngap);
	printf(")\n");
	if (st->nconflicts || st->nparked)
		printf("%zu overwritten values and %zu parked rows to review: see 'zila conflicts'\n",
		       st->nconflicts, st->nparked);
}

/* The bundle written to PATH.tmp, synced, then renamed into place: a failed or interrupted
 * create leaves no half bundle and an older one as it was. peer: the receiver's
 * certificate, whose read scope filters what is written (NULL: everything). */
static int bundle_create(struct zila_store *s, const char *path, const struct zila_vector *have,
			 struct zila_cert *peer, const struct zila_bundle_to *to, size_t *n, struct zila_error *err)
{
	struct zila_os_atomic *a;
	int r = zila_os_atomic_open(&a, path, 0666, err); /* as fopen does: the umask decides */
	if (r != 0)
		return r;
	zila_os_atomic_remakeable(a); /* the replica keeps everything: a lost bundle is made again */
	r = zila_bundle_write_to(s, have, peer ? zila_trust_read_filter : NULL, peer, to, zila_os_atomic_write, a, n,
				 err);
	if (r != 0) {
		/* a failed write says why in the file's words (disk full); the store's own failures
		 * keep their message */
		if (zila_os_atomic_failed(a, NULL) != 0)
			r = zila_os_atomic_failed(a, err);
		zila_os_atomic_abort(a);
		return r;
	}
	return zila_os_atomic_commit(a, err);
}

static int bundle_apply(struct zila_store *s, struct zila_trust_ctx *tc, const char *path,
			struct zila_apply_stats *st, struct zila_error *err)
{
	struct zila_os_map m;
	int r = zila_os_map(&m, path, err);
	if (r != 0)
		return zila_error_set(err, r, "cannot read bundle '%s': %s", path, zila_error_msg(err, r));
	r = zila_bundle_read(s, tc, m.p, m.len, path, st, err);
	/* Old laptops' bundles are read as before (every entry is still verified); whoever held
	 * the stick could read them, which is told. */
	if (r == 0 && zila_bundle_kind(m.p, m.len) == ZILA_BUNDLE_PLAIN)
		fprintf(stderr,
			"zila: warning: bundle '%s' was not encrypted (made by a zila from before encrypted bundles): "
			"whoever held the stick could read it; update the laptop that made it\n",
			path);
	zila_os_unmap(&m);
	return r;
}

int cmd_bundle(struct cli *cli, int argc, char **argv);
int cmd_bundle(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "for", required_argument, NULL, 'f' },
					      { "all", no_argument, NULL, 'a' },
					      { NULL, 0, NULL, 0 } };
	const char *for_path = NULL;
	bool all = false;
	int c;
	if (argc < 2)
		return cli_usage("bundle", "bundle needs 'create' or 'apply'");
	const char *verb = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'f')
			for_path = optarg;
		else if (c == 'a')
			all = true;
		else
			return cli_usage("bundle", "unknown option");
	}
	if (optind != argc - 1)
		return cli_usage("bundle", "bundle %s needs one FILE", verb);
	const char *file = argv[optind];
	if (strcmp(verb, "create") != 0 && strcmp(verb, "apply") != 0)
		return cli_usage("bundle", "'%s' is not a bundle command: use 'create' or 'apply'", verb);
	if (strcmp(verb, "apply") == 0 && (for_path != NULL || all))
		return cli_usage("bundle", "--for and --all go with 'bundle create'");
	if (for_path != NULL && all)
		return cli_usage("bundle", "--for and --all: one or the other");
	struct zila_vector have = { 0 };
	uint8_t to[32], to_cert[ZILA_CERT_LEN];
	bool has_to = false, has_cert = false;
	if (for_path != NULL && read_vector(for_path, &have, to, &has_to, to_cert, &has_cert) != CLI_OK)
		return CLI_FAIL;
	struct zila_store *s = NULL;
	if (cli_open_store(cli, &s) != CLI_OK) {
		zila_vector_release(&have);
		return CLI_FAIL;
	}
	struct zila_error err;
	zila_error_clear(&err);
	/* A replica of an organisation checks every entry it receives against the
	 * organisation (certificate, scope, revocation) and sends a peer only the partitions
	 * its certificate may read. A replica that is not enrolled works on its own and
	 * exchanges nothing: it neither writes nor reads bundles. */
	struct zila_trust_ctx tc;
	uint8_t root[32];
	struct zila_cert own, peer;
	if (zila_trust_org(s, root) != 0 || zila_trust_cert_get(s, zila_store_device_pk(s), &own) != 0) {
		zila_store_free(s);
		zila_vector_release(&have);
		cli_err("this replica is not enrolled in an organisation: it works on its own and exchanges nothing.\n"
			"Enrol it first: 'zila join --hq HOST:PORT' with an invite code from HQ, or 'zila enrol request' by USB stick");
		return CLI_FAIL;
	}
	memset(&tc, 0, sizeof(tc));
	zila_trust_install(s, &tc);
	int r = 0;
	/* Whoever holds the file reads it: one for no one in particular holds only what any
	 * enrolled laptop may read, unless asked for everything (#15 item 3). */
	if (strcmp(verb, "create") == 0 && for_path == NULL && own.scope_all && !all)
		r = zila_error_set(&err, ZILA_EINVAL,
				   "this replica holds every district, and a bundle for no one in particular would carry "
				   "them all to whoever finds the stick: make it for its receiver with --for VECTORFILE "
				   "(`zila vector` on the receiving laptop), or say --all (another HQ replica, a backup)");
	if (strcmp(verb, "create") == 0 && for_path != NULL) {
		if (!has_to)
			r = zila_error_set(&err, ZILA_EINVAL,
					   "vector file '%s' does not name its replica; make it with 'zila vector' on the receiving laptop",
					   for_path);
		else if (has_cert && zila_trust_cert_get(s, to, &peer) != 0) {
			/* A receiver this replica has not met: its certificate comes with its vector;
			 * it is checked against the organisation and kept, like one from a bundle. */
			struct zila_view cv = zila_view_make(to_cert, ZILA_CERT_LEN);
			struct zila_cert vc;
			if (zila_cert_decode(cv, &vc) == 0 && memcmp(vc.device_pk, to, 32) == 0 &&
			    zila_trust_check_record(&tc, ZILA_TRUST_CERT, cv, &err) == 0 &&
			    zila_trust_keep(s, ZILA_TRUST_CERT, cv) == 0)
				zila_error_clear(&err);
			else if (err.code == 0)
				zila_error_set(&err, ZILA_ECERT, "the certificate in '%s' is not valid", for_path);
		}
		if (r == 0 && err.code != 0) {
			char why[sizeof(err.msg)];
			snprintf(why, sizeof(why), "%s", zila_error_msg(&err, err.code));
			r = zila_error_set(&err, err.code,
					   "the replica that wrote '%s' is not enrolled in this organisation (%s); nothing is sent to it",
					   for_path, why);
		}
		else if (r == 0 && zila_trust_cert_get(s, to, &peer) != 0)
			r = zila_error_set(&err, ZILA_ECERT,
					   "the replica that wrote '%s' is not enrolled in this organisation; nothing is sent to it",
					   for_path);
		struct zila_revocation rv;
		if (r == 0 && zila_trust_revocation_get(s, to, &rv) == 0)
			r = zila_error_set(&err, ZILA_EREVOKED, "the replica that wrote '%s' is revoked; nothing is sent to it",
					   for_path);
	}
	/* On the stick a bundle is encrypted: to the receiver's key (--for, from its signed
	 * vector file), else to the organisation secret that only enrolled devices hold. */
	struct zila_bundle_to to_key;
	memset(&to_key, 0, sizeof(to_key));
	if (r == 0 && strcmp(verb, "create") == 0 && for_path != NULL) {
		to_key.kind = ZILA_BUNDLE_TO_DEVICE;
		memcpy(to_key.device_pk, to, 32);
	} else if (r == 0 && strcmp(verb, "create") == 0) {
		uint8_t secret[ZILA_ORG_SECRET_LEN];
		to_key.kind = ZILA_BUNDLE_TO_ORG;
		if (zila_trust_org_secret(s, secret) == 0)
			zila_org_bundle_key(secret, to_key.org_key);
		else
			r = zila_error_set(&err, ZILA_ENOTENROLLED,
					   "a bundle for any enrolled device is encrypted to the organisation secret, and "
					   "this device holds none: make it for its receiver with --for VECTORFILE, or: %s",
					   ZILA_NO_SECRET_MSG);
		sodium_memzero(secret, sizeof(secret));
	}
	if (r == 0 && strcmp(verb, "create") == 0) {
		size_t n = 0;
		bool filtered = for_path != NULL;
		r = bundle_create(s, file, filtered ? &have : NULL, filtered ? &peer : NULL, &to_key, &n, &err);
		sodium_memzero(&to_key, sizeof(to_key));
		if (r == 0) {
			if (cli->json) {
				printf("{\"file\":");
				cli_json_str(file);
				printf(",\"entries\":%zu}\n", n);
			} else {
				printf("wrote %zu entr%s to '%s'\n", n, n == 1 ? "y" : "ies", file);
			}
		}
	} else if (r == 0) {
		struct zila_apply_stats st;
		r = bundle_apply(s, &tc, file, &st, &err);
		if (r == 0)
			print_stats(cli, file, &st);
	}
	zila_store_free(s);
	zila_vector_release(&have);
	if (r != 0) {
		cli_err("%s", zila_error_msg(&err, r));
		return CLI_FAIL;
	}
	return CLI_OK;
}
