/* zila bundle: carry changes on a USB stick.
 *   zila bundle create FILE [--for VECTORFILE | --all] [--with-attachments] [--attachments-below SIZE]
 *     (VECTORFILE: `zila vector` of the receiver)
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

/* Reads the text `zila vector` prints; *has_device says whether it named its replica, whose
 * signature over the file must verify, and the file be no older than VECTOR_MAX_AGE. */
static int read_vector(const char *path, struct zila_vector *v, uint8_t device[32], bool *has_device,
		       uint8_t cert[ZILA_CERT_LEN], bool *has_cert)
{
	struct zila_buf text;
	struct zila_error rerr;
	struct zila_vector_file f;
	v->heads = NULL;
	v->nheads = 0;
	zila_buf_init(&text, VECTOR_FILE_MAX);
	zila_error_clear(&rerr);
	if (zila_os_read_file(path, VECTOR_FILE_MAX, &text, NULL, &rerr) != 0) {
		cli_err("cannot read vector file '%s': %s", path, rerr.msg);
		zila_buf_release(&text);
		return CLI_FAIL;
	}
	int r = zila_vector_file_parse(zila_buf_view(&text), &f, &rerr);
	zila_buf_release(&text);
	if (r != 0) {
		cli_err("vector file '%s' %s", path, rerr.msg);
		return CLI_FAIL;
	}
	if (f.has_device && !f.signed_ok) {
		if (!f.has_sig)
			cli_err("vector file '%s' is not signed by the replica it names (made by an older zila, or "
				"edited): make it again with 'zila vector' on the receiving laptop; nothing is sent",
				path);
		else
			cli_err("vector file '%s' was not made by the device it names (its signature does not verify): "
				"nothing is sent to it",
				path);
		zila_vector_file_release(&f);
		return CLI_FAIL;
	}
	uint64_t now = zila_wall_s();
	if (f.has_device && (f.made + VECTOR_MAX_AGE < now || f.made > now + 86400)) {
		cli_err("vector file '%s' was made %s; make it again with 'zila vector' on the receiving laptop", path,
			f.made > now ? "in the future by this computer's clock" : "more than 30 days ago");
		zila_vector_file_release(&f);
		return CLI_FAIL;
	}
	*has_device = f.has_device;
	*has_cert = f.has_cert;
	if (f.has_device)
		memcpy(device, f.device, 32);
	if (f.has_cert)
		memcpy(cert, f.cert, ZILA_CERT_LEN);
	*v = f.v;
	return CLI_OK;
}

/* 500K, 2M, 1G (powers of 1024) or plain bytes. */
static int parse_size(const char *t, uint64_t *out)
{
	char *end = NULL;
	if (t[0] < '0' || t[0] > '9')
		return -1;
	unsigned long long v = strtoull(t, &end, 10);
	uint64_t mul = 1;
	if (*end == 'k' || *end == 'K')
		mul = 1024, end++;
	else if (*end == 'm' || *end == 'M')
		mul = 1024 * 1024, end++;
	else if (*end == 'g' || *end == 'G')
		mul = 1024ull * 1024 * 1024, end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end != '\0' || v == 0 || v > UINT64_MAX / mul)
		return -1;
	*out = (uint64_t)v * mul;
	return 0;
}

static void print_stats(const char *file, const struct zila_apply_stats *st)
{
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

static void print_files(const char *file, const struct zila_bundle_files *f)
{
	printf("files from '%s': %llu kept (%llu KiB), %llu here already", file, (unsigned long long)f->nstored,
	       (unsigned long long)(f->stored_bytes + 1023) / 1024, (unsigned long long)f->nheld);
	if (f->nother)
		printf(", %llu not for this device (no row it may read refers to them)", (unsigned long long)f->nother);
	printf("\n");
}

/* The directory that holds path (for its free space). */
static void dir_of(const char *path, char *out, size_t n)
{
	const char *slash = strrchr(path, '/');
#ifdef _WIN32
	const char *bs = strrchr(path, '\\');
	if (bs != NULL && (slash == NULL || bs > slash))
		slash = bs;
#endif
	if (slash == NULL)
		snprintf(out, n, ".");
	else if (slash == path)
		snprintf(out, n, "/");
	else
		snprintf(out, n, "%.*s", (int)(slash - path), path);
}

struct plan {
	const struct cli *cli;
	const char *path;
};

/* Before the files are written: how large the bundle will be, and whether it fits. */
static int plan_files(void *ctx, const struct zila_bundle_summary *sum, struct zila_error *err)
{
	struct plan *pl = ctx;
	char dir[4096];
	uint64_t free_bytes = 0;
	dir_of(pl->path, dir, sizeof(dir));
	bool known = zila_os_free_bytes(dir, &free_bytes) == 0;
	if (!pl->cli->json)
		fprintf(stderr, "bundle '%s': rows %llu KiB (%zu entries) written; now %llu files, %llu KiB: %llu KiB in all%s\n",
			pl->path, (unsigned long long)(sum->rows_bytes + 1023) / 1024, sum->nentries,
			(unsigned long long)sum->nfiles, (unsigned long long)(sum->files_bytes + 1023) / 1024,
			(unsigned long long)(sum->rows_bytes + sum->files_bytes + 1023) / 1024,
			known ? "" : " (the free space there is not known)");
	if (known && sum->files_bytes > free_bytes)
		return zila_error_set(err, ZILA_EFULL,
				      "bundle '%s' would not fit: its files need %llu KiB more and '%s' has %llu KiB free "
				      "(carry fewer with --attachments-below SIZE, or use a larger stick)",
				      pl->path, (unsigned long long)(sum->files_bytes + 1023) / 1024, dir,
				      (unsigned long long)free_bytes / 1024);
	return 0;
}

/* The bundle written to PATH.tmp, synced, then renamed into place: a failed or interrupted
 * create leaves no half bundle and an older one as it was. peer: the receiver's
 * certificate, whose read scope filters what is written (NULL: everything). */
static int bundle_create(struct zila_store *s, const char *path, const struct zila_vector *have,
			 struct zila_cert *peer, const struct zila_bundle_to *to, const struct zila_bundle_opts *opts,
			 struct zila_bundle_summary *sum, struct zila_error *err)
{
	struct zila_os_atomic *a;
	int r = zila_os_atomic_open(&a, path, 0666, err); /* as fopen does: the umask decides */
	if (r != 0)
		return r;
	zila_os_atomic_remakeable(a); /* the replica keeps everything: a lost bundle is made again */
	r = zila_bundle_write_ex(s, have, peer ? zila_trust_read_filter : NULL, peer, to, opts, zila_os_atomic_write, a,
				 sum, err);
	if (r != 0) {
		/* a failed write says why in the file's words (disk full); the store's own failures
		 * keep their message */
		if (zila_os_atomic_failed(a, NULL) != 0)
			r = zila_os_atomic_failed(a, err);
		zila_os_atomic_abort(a);
		if (opts != NULL && opts->blobs) {
			char why[sizeof(err->msg)];
			snprintf(why, sizeof(why), "%s", zila_error_msg(err, r));
			r = zila_error_set(err, r, "%s; no bundle was written (nothing half-written is left)", why);
		}
		return r;
	}
	return zila_os_atomic_commit(a, err);
}

static int bundle_apply(struct zila_store *s, struct zila_trust_ctx *tc, const char *path,
			struct zila_apply_stats *st, struct zila_bundle_files *files, bool *has_files,
			struct zila_error *err)
{
	struct zila_os_map m;
	int r = zila_os_map(&m, path, err);
	if (r != 0)
		return zila_error_set(err, r, "cannot read bundle '%s': %s", path, zila_error_msg(err, r));
	*has_files = m.len > 8 && m.p[8] == ZILA_BUNDLE_FILES_VERSION;
	r = zila_bundle_read_ex(s, tc, m.p, m.len, path, st, files, err);
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
					      { "with-attachments", no_argument, NULL, 'w' },
					      { "attachments-below", required_argument, NULL, 'b' },
					      { NULL, 0, NULL, 0 } };
	const char *for_path = NULL;
	bool all = false;
	struct zila_bundle_opts bopts;
	int c;
	memset(&bopts, 0, sizeof(bopts));
	if (argc < 2)
		return cli_usage("bundle", "bundle needs 'create' or 'apply'");
	const char *verb = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'f')
			for_path = optarg;
		else if (c == 'a')
			all = true;
		else if (c == 'w')
			bopts.blobs = true;
		else if (c == 'b') {
			bopts.blobs = true;
			/* files smaller than SIZE: at most SIZE - 1 bytes */
			if (parse_size(optarg, &bopts.blobs_max) != 0 || bopts.blobs_max-- < 2)
				return cli_usage("bundle", "--attachments-below takes a size such as 500K, 2M or 1048576, not '%s'",
						 optarg);
		} else
			return cli_usage("bundle", "unknown option");
	}
	if (optind != argc - 1)
		return cli_usage("bundle", "bundle %s needs one FILE", verb);
	const char *file = argv[optind];
	if (strcmp(verb, "create") != 0 && strcmp(verb, "apply") != 0)
		return cli_usage("bundle", "'%s' is not a bundle command: use 'create' or 'apply'", verb);
	if (strcmp(verb, "apply") == 0 && (for_path != NULL || all || bopts.blobs))
		return cli_usage("bundle", "--for, --all and --with-attachments go with 'bundle create'");
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
		struct zila_bundle_summary sum;
		struct plan pl = { cli, file };
		bool filtered = for_path != NULL;
		bopts.plan = plan_files;
		bopts.plan_ctx = &pl;
		r = bundle_create(s, file, filtered ? &have : NULL, filtered ? &peer : NULL, &to_key, &bopts, &sum, &err);
		sodium_memzero(&to_key, sizeof(to_key));
		if (r == 0) {
			size_t n = sum.nentries;
			if (cli->json) {
				printf("{\"file\":");
				cli_json_str(file);
				printf(",\"entries\":%zu,\"bytes\":%llu,\"rows_bytes\":%llu", n, (unsigned long long)sum.bytes,
				       (unsigned long long)sum.rows_bytes);
				if (bopts.blobs)
					printf(",\"files\":%llu,\"files_bytes\":%llu,\"files_not_here\":%llu,\"files_too_large\":%llu,"
					       "\"files_damaged_here\":%llu",
					       (unsigned long long)sum.nfiles, (unsigned long long)sum.files_bytes,
					       (unsigned long long)sum.nabsent, (unsigned long long)sum.nlarge,
					       (unsigned long long)sum.ndamaged);
				printf("}\n");
			} else if (!bopts.blobs) {
				printf("wrote %zu entr%s to '%s' (%llu KiB)\n", n, n == 1 ? "y" : "ies", file,
				       (unsigned long long)(sum.bytes + 1023) / 1024);
			} else {
				printf("wrote %zu entr%s (%llu KiB) and %llu file%s (%llu KiB) to '%s': %llu KiB in all\n", n,
				       n == 1 ? "y" : "ies", (unsigned long long)(sum.rows_bytes + 1023) / 1024,
				       (unsigned long long)sum.nfiles, sum.nfiles == 1 ? "" : "s",
				       (unsigned long long)(sum.files_bytes + 1023) / 1024, file,
				       (unsigned long long)(sum.bytes + 1023) / 1024);
				if (sum.nlarge)
					printf("left out: %llu files of %llu bytes or more (--attachments-below)\n",
					       (unsigned long long)sum.nlarge, (unsigned long long)bopts.blobs_max + 1);
				if (sum.nabsent)
					printf("left out: %llu files rows refer to that are not here yet ('zila attachment ls')\n",
					       (unsigned long long)sum.nabsent);
				if (sum.ndamaged)
					printf("left out: %llu files damaged on this disk (removed, to be fetched again)\n",
					       (unsigned long long)sum.ndamaged);
			}
		}
	} else if (r == 0) {
		struct zila_apply_stats st;
		struct zila_bundle_files files;
		bool has_files = false;
		r = bundle_apply(s, &tc, file, &st, &files, &has_files, &err);
		if (r == 0 && cli->json) {
			printf("{\"file\":");
			cli_json_str(file);
			printf(",\"received\":%zu,\"applied\":%zu,\"duplicate\":%zu,\"rejected\":%zu,\"held\":%zu,"
			       "\"gap\":%zu,\"conflicts\":%zu,\"parked\":%zu,\"trust\":%zu",
			       st.nreceived, st.napplied, st.nduplicate, st.nrejected, st.nheld, st.ngap, st.nconflicts, st.nparked,
			       st.ntrust);
			if (has_files)
				printf(",\"files\":{\"read\":%llu,\"kept\":%llu,\"kept_bytes\":%llu,\"here_already\":%llu,"
				       "\"not_for_this_device\":%llu,\"refused\":%llu,\"missing\":%llu}",
				       (unsigned long long)files.nfiles, (unsigned long long)files.nstored,
				       (unsigned long long)files.stored_bytes, (unsigned long long)files.nheld,
				       (unsigned long long)files.nother, (unsigned long long)files.nrefused,
				       (unsigned long long)files.nmissing);
			printf("}\n");
		} else if (r == 0) {
			print_stats(file, &st);
			if (has_files)
				print_files(file, &files);
		}
		/* the rows are in; files that did not come are said, and the exit says so too */
		if (r == 0 && (files.nrefused > 0 || files.nmissing > 0))
			r = zila_error_set(&err, ZILA_EFORMAT,
					   "%llu file%s of bundle '%s' did not arrive (%s); the rows were applied, and the "
					   "files come at the next sync or in a new bundle",
					   (unsigned long long)(files.nrefused + files.nmissing),
					   files.nrefused + files.nmissing == 1 ? "" : "s", file, files.why);
	}
	zila_store_free(s);
	zila_vector_release(&have);
	if (r != 0) {
		cli_err("%s", zila_error_msg(&err, r));
		return CLI_FAIL;
	}
	return CLI_OK;
}
