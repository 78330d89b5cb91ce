/* The JOIN exchange, shared by the daemon (conn.c) and the blocking client `zila join`. */
#ifndef ZILA_NET_JOIN_H
#define ZILA_NET_JOIN_H

#include "zila/buf.h"
#include "zila/channel.h"
#include "zila/store.h"
#include "zila/trust.h"

/* Initiator config from the code, HQ address and name recorded in the replica. */
int join_prepare(struct zila_store *s, struct zila_channel_config *cfg, struct zila_join_check *jc, uint64_t now,
		 struct zila_error *err);
/* HQ: redeems the invite for the joining peer; out gets the Message to send (Enrolment, or
 * an Error saying why when the return is non-zero). */
int join_answer(struct zila_store *s, const uint8_t invite_id[ZILA_INVITE_ID_LEN], const struct zila_channel_peer *pe,
		uint64_t now, struct zila_buf *out, struct zila_error *err);
/* Laptop: takes HQ's answer; installs the certificate (its root must be root_pk, the HQ the
 * handshake checked) and forgets the invite code. */
int join_take(struct zila_store *s, const uint8_t root_pk[32], const uint8_t *p, size_t len, uint64_t now,
	      struct zila_error *err);

#endif
