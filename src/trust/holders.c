/* Which devices may hold each district, for collecting deleted rows at HQ (proto/CHECKPOINT.md,
 * "Collecting deleted rows"): every device whose certificate may read it, but this one, and
 * but a revoked one whose entries up to its revocation's marks are all here. */
#include "zila/trust.h"

#include <stdlib.h>
#include <string.h>

#include "zila/log.h"

struct walk {
	struct zila_cert *certs;
	size_t n, cap;
	char (*parts)[ZILA_PART_MAX + 1];
	size_t nparts, pcap;
};

static int add_cert(void *ctx, const struct zila_cert *c)
{
	struct walk *w = ctx;
	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 16;
		struct zila_cert *n = realloc(w->certs, cap * sizeof(*n));
		if (n == NULL)
			return ZILA_ENOMEM;
		w->certs = n;
		w->cap = cap;
	}
	w->certs[w->n++] = *c;
	return 0;
}

static int add_part(void *ctx, const struct zila_ckpt_info *c, size_t len)
{
	struct walk *w = ctx;
	(void)len;
	if (w->nparts == w->pcap) {
		size_t cap = w->pcap ? 2 * w->pcap : 16;
		char(*n)[ZILA_PART_MAX + 1] = realloc(w->parts, cap * sizeof(*n));
		if (n == NULL)
			return ZILA_ENOMEM;
		w->parts = n;
		w->pcap = cap;
	}
	memcpy(w->parts[w->nparts++], c->part, sizeof(c->part));
	return 0;
}

/* A revoked device holds nothing back once every entry of it the marks accept is here: the
 * rest is refused everywhere. */
static bool settled(const struct zila_revocation *rv, const struct zila_vector *v, const char *part)
{
	return zila_vector_get(v, rv->device_pk, part) >= zila_revocation_mark(rv, part);
}

/* The holders of every partition a checkpoint is kept of (the rule above): h[w->nparts],
 * pointing into devs, both the caller's to free with w's arrays. */
static int holders_of(struct zila_store *s, struct walk *w, struct zila_holders **hp, uint8_t (**devp)[32],
		      struct zila_error *err)
{
	struct zila_vector v = { 0 };
	size_t ndevs = 0;
	memset(w, 0, sizeof(*w));
	*hp = NULL;
	*devp = NULL;
	int r = zila_store_checkpoint_each(s, add_part, w);
	r = r ? r : zila_trust_cert_each(s, add_cert, w);
	r = r ? r : zila_store_vector(s, &v);
	if (r != 0) {
		r = r == ZILA_ENOMEM ? zila_error_set(err, r, "out of memory")
				     : zila_error_set(err, r, "cannot read the devices and checkpoints");
		goto out;
	}
	struct zila_holders *h = calloc(w->nparts + 1, sizeof(*h));
	uint8_t(*devs)[32] = calloc(w->nparts * (w->n + 1) + 1, sizeof(*devs));
	*hp = h;
	*devp = devs;
	if (h == NULL || devs == NULL) {
		r = zila_error_set(err, ZILA_ENOMEM, "out of memory");
		goto out;
	}
	const uint8_t *self = zila_store_device_pk(s);
	for (size_t i = 0; i < w->nparts; i++) {
		h[i].part = w->parts[i];
		h[i].devices = (const uint8_t(*)[32])devs + ndevs;
		for (size_t k = 0; k < w->n; k++) {
			const struct zila_cert *c = &w->certs[k];
			if (memcmp(c->device_pk, self, 32) == 0 || !zila_cert_may_read(c, w->parts[i]))
				continue;
			struct zila_revocation rv;
			memset(&rv, 0, sizeof(rv));
			if (zila_trust_revocation_get(s, c->device_pk, &rv) == 0) {
				bool done = settled(&rv, &v, w->parts[i]);
				zila_revocation_release(&rv);
				if (done)
					continue;
			}
			memcpy(devs[ndevs++], c->device_pk, 32);
			h[i].ndevices++;
		}
	}
out:
	zila_vector_release(&v);
	return r;
}

int zila_trust_collect(struct zila_store *s, size_t *ndropped, struct zila_error *err)
{
	struct walk w;
	struct zila_holders *h = NULL;
	uint8_t(*devs)[32] = NULL;
	*ndropped = 0;
	int r = holders_of(s, &w, &h, &devs, err);
	if (r == 0 && w.nparts > 0)
		r = zila_store_collect(s, h, w.nparts, ndropped, err);
	free(h);
	free(devs);
	free(w.certs);
	free(w.parts);
	return r;
}

int zila_trust_collect_held(struct zila_store *s, struct zila_held_list *out, struct zila_error *err)
{
	struct walk w;
	struct zila_holders *h = NULL;
	uint8_t(*devs)[32] = NULL;
	memset(out, 0, sizeof(*out));
	int r = holders_of(s, &w, &h, &devs, err);
	r = r ? r : zila_store_collect_held(s, h, w.nparts, out, err);
	/* a revoked holder: HQ lacks some of its entries up to the marks (else it holds nothing) */
	for (size_t i = 0; r == 0 && i < out->nparts; i++)
		for (size_t k = 0; k < out->parts[i].nholds; k++) {
			struct zila_hold *o = &out->parts[i].holds[k];
			struct zila_revocation rv;
			memset(&rv, 0, sizeof(rv));
			if (zila_trust_revocation_get(s, o->device, &rv) == 0) {
				o->revoked = true;
				zila_revocation_release(&rv);
			}
		}
	free(h);
	free(devs);
	free(w.certs);
	free(w.parts);
	return r;
}
