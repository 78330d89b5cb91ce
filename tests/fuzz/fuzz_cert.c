/* libFuzzer harness for the certificate parser and the other signed trust records:
 * certificate, revocation, enrolment request and certificate file decoders, then checks. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_common_trust.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fz_org org;
static int ready;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ready) {
		fz_org_make(&org);
		ready = 1;
	}
	struct zila_view v = zila_view_make(data, size);
	struct zila_cert c, issuer;
	if (zila_cert_decode(v, &c) == 0) {
		(void)zila_cert_verify(&c, org.root_pk, NULL, FZ_NOW);
		(void)zila_cert_may_write(&c, "d-1");
		(void)zila_cert_may_read(&c, "");
		struct zila_buf b;
		zila_buf_init(&b, ZILA_CERT_LEN);
		/* A certificate that parses re-encodes to the same bytes. */
		if (zila_cert_encode(&c, &b) != 0 || b.len != size || memcmp(b.p, data, size) != 0)
			abort();
		zila_buf_release(&b);
		if (zila_cert_decode(zila_view_make(org.b_cert, ZILA_CERT_LEN), &issuer) == 0)
			(void)zila_cert_verify(&c, org.root_pk, &issuer, FZ_NOW);
	}
	struct zila_revocation rv;
	if (zila_revocation_decode(v, &rv) == 0) {
		(void)zila_revocation_verify(&rv, org.root_pk, NULL, FZ_NOW);
		(void)zila_revocation_mark(&rv, "d-1");
		zila_revocation_release(&rv);
	}
	struct zila_enrol_req req;
	(void)zila_enrol_req_decode(v, &req);
	struct zila_cert_file f;
	(void)zila_cert_file_decode(v, FZ_NOW, &f);
	return 0;
}
