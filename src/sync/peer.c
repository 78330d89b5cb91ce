/* Peer checks and psk choice for the channel, backed by a replica's trust records. */
#include "zila/channel.h"

#include <string.h>

/* Whether this replica holds a certificate of device_pk, valid now, from an issuer that is
 * not revoked. */
static bool reissued(struct zila_trust_ctx *t, const uint8_t root_pk[32], const uint8_t device_pk[32], uint64_t now)
{
	struct zila_cert held;
	struct zila_revocation rv;
	if (zila_trust_cert_get(t->s, device_pk, &held) != 0 || zila_trust_cert_check(t->s, root_pk, &held, now, NULL) != 0)
		return false;
	if (zila_trust_revocation_get(t->s, held.issuer_pk, &rv) == 0) {
		zila_revocation_release(&rv);
		return false;
	}
	return true;
}

int zila_channel_check_member(void *ctx, const struct zila_channel_peer *peer, struct zila_error *err)
{
	struct zila_trust_ctx *t = ctx;
	uint8_t root_pk[32];
	char id[ZILA_DEVICE_ID_LEN + 1];
	struct zila_revocation rv;
	const struct zila_cert *ip = NULL;
	uint64_t now = zila_trust_now(t);
	int r;

	zila_device_id(peer->sign_pk, id);
	/* A joining laptop has no certificate yet: the invite psk it used is its proof, and the
	 * caller redeems the invite (once) after the handshake. */
	if (peer->joining)
		return 0;
	if (!peer->has_cert)
		return zila_error_set(err, ZILA_ECERT, "device '%s' showed no certificate", id);
	if ((r = zila_trust_org(t->s, root_pk)) != 0)
		return zila_error_set(err, ZILA_ENOTENROLLED, "this replica is not enrolled");
	if (peer->has_issuer) {
		/* The issuer's certificate travelled with the peer's: check the chain as shown. */
		ip = &peer->issuer;
		if ((r = zila_cert_verify(&peer->cert, root_pk, ip, now)) != 0)
			return zila_error_set(err, r, "device '%s': certificate %s", id, zila_strerror(r));
	} else if ((r = zila_trust_cert_check(t->s, root_pk, &peer->cert, now, err)) != 0) {
		return r;
	}
	r = zila_trust_revocation_get(t->s, peer->sign_pk, &rv);
	if (r == 0) {
		zila_revocation_release(&rv);
		return zila_error_set(err, ZILA_EREVOKED, "device '%s' is revoked", id);
	}
	/* An HQ device that vouched for the peer may itself be revoked: then only a certificate
	 * this replica holds from an HQ that is not (zila_trust_reissue) lets it in, and the
	 * session hands it that certificate. */
	if (ip != NULL && zila_trust_revocation_get(t->s, ip->device_pk, &rv) == 0) {
		zila_revocation_release(&rv);
		if (!reissued(t, root_pk, peer->sign_pk, now))
			return zila_error_set(err, ZILA_EREVOKED,
					      "device '%s' was certified by a revoked HQ device and not certified again", id);
	}
	return 0;
}

int zila_channel_psk_replica(void *ctx, uint8_t mode, const uint8_t invite_id[ZILA_INVITE_ID_LEN], uint8_t psk[32])
{
	struct zila_trust_ctx *t = ctx;
	uint8_t secret[ZILA_ORG_SECRET_LEN];
	int r;
	if (mode == ZILA_CHANNEL_JOIN)
		return zila_trust_invite_psk(t->s, invite_id, zila_trust_now(t), psk);
	if (mode != ZILA_CHANNEL_MEMBER)
		return ZILA_EPROTO;
	if ((r = zila_trust_org(t->s, NULL)) != 0)
		return ZILA_ENOTENROLLED;
	/* From the secret only members hold: the root's public key is no key. */
	if ((r = zila_trust_org_secret(t->s, secret)) != 0)
		return ZILA_ENOTENROLLED;
	zila_org_psk(secret, psk);
	sodium_memzero(secret, sizeof(secret));
	return 0;
}

int zila_channel_check_hq_for_invite(void *ctx, const struct zila_channel_peer *peer, struct zila_error *err)
{
	struct zila_join_check *jc = ctx;
	const struct zila_cert *c = &peer->cert;
	int r;
	if (!peer->has_cert || c->role != ZILA_ROLE_HQ || !c->scope_all)
		return zila_error_set(err, ZILA_ECERT, "the peer is not the organisation's HQ");
	/* HQ's certificate is signed by the root itself; the code carries the start of the
	 * root's fingerprint, so a look-alike organisation is refused. */
	if (memcmp(c->org_fp, jc->invite.fp_prefix, ZILA_INVITE_FP_LEN) != 0)
		return zila_error_set(err, ZILA_ECERT, "HQ belongs to another organisation than the invite's");
	if ((r = zila_cert_verify(c, c->issuer_pk, NULL, jc->now)) != 0)
		return zila_error_set(err, r, "HQ certificate: %s", zila_strerror(r));
	memcpy(jc->root_pk, c->issuer_pk, 32);
	return 0;
}
