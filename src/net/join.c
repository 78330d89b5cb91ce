/* Joining over the network: a laptop with an invite code dials HQ in JOIN mode, HQ redeems
 * the invite and answers with one Enrolment message (the certificate file). The message
 * steps are shared with the daemon; zila_net_join() is a small blocking client (os.h's
 * TCP connection, with a deadline) for `zila join`. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "join.h"
#include "zila/daemon.h"
#include "sync.pb-c.h"
#include "zila/pbuf.h"
#include "zila/clock.h"
#include "zila/os.h"

int join_prepare(struct zila_store *s, struct zila_channel_config *cfg, struct zila_join_check *jc, uint64_t now,
		 struct zila_error *err)
{
	char *code = NULL, *name = NULL;
	char host[64] = "laptop";
	struct zila_invite inv;
	int r = zila_store_meta_get(s, ZILA_META_JOIN_CODE, &code);
	if (r != 0 || code == NULL || code[0] == '\0') {
		r = zila_error_set(err, ZILA_ENOTFOUND, "no invite code is recorded; run 'zila join --hq HOST:PORT'");
		goto out;
	}
	if ((r = zila_invite_parse(code, &inv)) != 0) {
		zila_error_set(err, r, "the recorded invite code is not valid");
		goto out;
	}
	if (zila_store_meta_get(s, ZILA_META_NET_JOIN_NAME, &name) != 0 || name == NULL || name[0] == '\0') {
		free(name);
		name = NULL;
		zila_os_hostname(host, sizeof(host));
		host[ZILA_NAME_MAX] = '\0';
	}
	cfg->mode = ZILA_CHANNEL_JOIN;
	cfg->join_name = name ? name : host;
	zila_invite_psk(&inv, cfg->psk);
	zila_invite_id(&inv, cfg->invite_id);
	memset(jc, 0, sizeof(*jc));
	jc->invite = inv;
	jc->now = now;
	cfg->check = zila_channel_check_hq_for_invite;
	cfg->check_ctx = jc;
	/* The channel copies the name; free it once initialised (the caller does so right away). */
	static char keep[ZILA_NAME_MAX + 1];
	snprintf(keep, sizeof(keep), "%s", cfg->join_name);
	cfg->join_name = keep;
	r = 0;
out:
	sodium_memzero(&inv, sizeof(inv));
	if (code)
		sodium_memzero(code, strlen(code));
	free(code);
	free(name);
	return r;
}

static int pack(const Zila__Message *m, struct zila_buf *out)
{
	size_t n = zila__message__get_packed_size(m);
	int r = zila_buf_reserve(out, n);
	if (r != 0)
		return r;
	zila__message__pack(m, out->p + out->len);
	out->len += n;
	return 0;
}

int join_answer(struct zila_store *s, const uint8_t invite_id[ZILA_INVITE_ID_LEN], const struct zila_channel_peer *pe,
		uint64_t now, struct zila_buf *out, struct zila_error *err)
{
	struct zila_buf file;
	Zila__Message m = ZILA__MESSAGE__INIT;
	Zila__Enrolment e = ZILA__ENROLMENT__INIT;
	Zila__Error er = ZILA__ERROR__INIT;
	char reason[201];
	zila_buf_init(&file, ZILA_CERT_FILE_MAX);
	int r = zila_trust_redeem(s, invite_id, pe->sign_pk, pe->req.name, now, &file, err);
	if (r == 0) {
		e.cert_file.data = file.p;
		e.cert_file.len = file.len;
		m.body_case = ZILA__MESSAGE__BODY_ENROLMENT;
		m.enrolment = &e;
	} else {
		snprintf(reason, sizeof(reason), "%s", zila_error_msg(err, r));
		er.code = (uint32_t)-r;
		er.reason = reason;
		m.body_case = ZILA__MESSAGE__BODY_ERROR;
		m.error = &er;
	}
	int p = pack(&m, out);
	zila_buf_release(&file);
	return r != 0 ? r : p;
}

/* A peer's text for our log: bounded, printable ASCII only. */
static void clean(char *dst, size_t n, const char *src)
{
	size_t i = 0;
	for (; src != NULL && src[i] && i + 1 < n; i++)
		dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '?';
	dst[i] = '\0';
}

int join_take(struct zila_store *s, const uint8_t root_pk[32], const uint8_t *p, size_t len, uint64_t now,
	      struct zila_error *err)
{
	struct zila_cert_file f;
	char reason[201];
	int r;
	struct zila_pb_budget b;
	zila_pb_budget_init(&b, len);
	Zila__Message *m = zila__message__unpack(&b.alloc, len, p);
	if (m == NULL)
		return zila_error_set(err, ZILA_EPROTO, "HQ sent a malformed answer");
	if (m->body_case == ZILA__MESSAGE__BODY_ERROR) {
		clean(reason, sizeof(reason), m->error->reason);
		r = zila_error_set(err, ZILA_EAUTH, "HQ refused: %s", reason);
		goto out;
	}
	if (m->body_case != ZILA__MESSAGE__BODY_ENROLMENT) {
		r = zila_error_set(err, ZILA_EPROTO, "HQ sent no certificate");
		goto out;
	}
	struct zila_view v = zila_view_make(m->enrolment->cert_file.data, m->enrolment->cert_file.len);
	if ((r = zila_cert_file_decode(v, now, &f)) != 0) {
		char t[40];
		zila_format_time(now * 1000, t, sizeof(t));
		if (r == ZILA_EEXPIRED)
			zila_error_set(err, r,
				       "HQ's certificate is not valid at this computer's time (%s): if the clock is wrong, "
				       "set it right and join again",
				       t);
		else
			zila_error_set(err, r, "HQ's certificate file: %s", zila_strerror(r));
		goto out;
	}
	if (sodium_memcmp(f.root_pk, root_pk, 32) != 0) {
		r = zila_error_set(err, ZILA_ECERT, "the certificate is for another organisation than HQ's");
		goto out;
	}
	if ((r = zila_trust_install_cert(s, v, now, err)) != 0)
		goto out;
	/* The code is spent; the HQ address stays: it is where this laptop syncs. */
	static const char *const spent[] = { ZILA_META_JOIN_CODE, ZILA_META_NET_JOIN_NAME };
	int rd = zila_store_meta_del(s, spent, 2);
	if (rd != 0)
		zila_log(ZILA_LOG_WARN, "cannot forget the spent invite code: %s", zila_strerror(rd));
	r = 0;
out:
	zila__message__free_unpacked(m, NULL);
	return r;
}

/* --- the blocking client --------------------------------------------------------------- */

static int dial(struct zila_os_conn **c, const char *hq, uint64_t deadline, struct zila_error *err)
{
	char host[256];
	uint16_t pn;
	struct zila_error why;
	*c = NULL;
	if (zila_hostport_parse(hq, host, sizeof(host), &pn) != 0)
		return zila_error_set(err, ZILA_EINVAL, "HQ address '%s' is not HOST:PORT", hq);
	memset(&why, 0, sizeof(why));
	int r = zila_os_tcp_dial(c, host, pn, deadline, &why);
	if (r != 0 && strncmp(why.msg, "cannot resolve", 14) == 0)
		return zila_error_set(err, ZILA_EIO, "%s", why.msg);
	if (r != 0)
		return zila_error_set(err, ZILA_EIO, "cannot reach HQ at '%s': %s", hq, why.msg);
	return 0;
}

static int write_all(struct zila_os_conn *c, struct zila_buf *b, uint64_t deadline)
{
	int r = zila_os_conn_send(c, b->p, b->len, deadline);
	if (r != 0)
		return ZILA_EIO;
	zila_buf_reset(b);
	return 0;
}

int zila_net_join(struct zila_store *s, const char *hq, const char *name, unsigned timeout_ms, struct zila_error *err)
{
	struct zila_channel ch;
	struct zila_channel_config cfg;
	struct zila_join_check jc;
	struct zila_buf out, msg;
	uint8_t rbuf[16384];
	uint64_t deadline = zila_os_mono_ms() + timeout_ms;
	bool ch_init = false, established = false;
	struct zila_os_conn *fd = NULL;
	int r;
	zila_buf_init(&out, 1 << 20);
	zila_buf_init(&msg, ZILA_CHANNEL_MSG_MAX);
	memset(&cfg, 0, sizeof(cfg));
	if (name != NULL && name[0] != '\0' && (r = zila_store_meta_set(s, ZILA_META_NET_JOIN_NAME, name)) != 0) {
		zila_error_set(err, r, "cannot record the name");
		goto out;
	}
	cfg.initiator = true;
	cfg.sign_sk = zila_store_device_sk(s);
	uint64_t now = zila_wall_s();
	if ((r = join_prepare(s, &cfg, &jc, now, err)) != 0)
		goto out;
	if ((r = zila_channel_init(&ch, &cfg)) != 0) {
		zila_error_set(err, r, "cannot prepare the channel: %s", zila_strerror(r));
		goto out;
	}
	ch_init = true;
	if ((r = dial(&fd, hq, deadline, err)) != 0)
		goto out;
	if ((r = zila_channel_start(&ch, &out)) != 0 || (r = write_all(fd, &out, deadline)) != 0) {
		zila_error_set(err, ZILA_EIO, "cannot send to HQ at '%s'", hq);
		r = ZILA_EIO;
		goto out;
	}
	for (;;) {
		size_t n = 0;
		int rr = zila_os_conn_recv(fd, rbuf, sizeof(rbuf), &n, deadline);
		if (rr == ZILA_ETIMEDOUT) {
			r = zila_error_set(err, ZILA_EIO, "HQ at '%s' did not answer in time", hq);
			goto out;
		}
		if (rr != 0 || n == 0) {
			if (established)
				r = zila_error_set(err, ZILA_ECLOSED, "HQ closed the connection without a certificate");
			else
				r = zila_error_set(err, ZILA_EAUTH,
						   "HQ at '%s' refused the handshake: the invite is used, expired, or from another HQ", hq);
			goto out;
		}
		size_t off = 0;
		while (off < n) {
			size_t used = 0;
			enum zila_channel_event ev = ZILA_CHANNEL_NONE;
			zila_buf_reset(&msg);
			if ((r = zila_channel_feed(&ch, rbuf + off, n - off, &used, &out, &msg, &ev)) != 0) {
				zila_error_set(err, r, "handshake with HQ at '%s' failed: %s", hq,
					       r == ZILA_ECERT ? "it is not this organisation's HQ" : zila_strerror(r));
				goto out;
			}
			off += used;
			if (ev == ZILA_CHANNEL_ESTABLISHED)
				established = true;
			if (ev == ZILA_CHANNEL_MESSAGE) {
				if ((r = join_take(s, jc.root_pk, msg.p, msg.len, zila_wall_s(), err)) != 0)
					goto out;
				/* Best effort: tell HQ we are done. */
				if (zila_channel_close(&ch, &out) == 0)
					(void)write_all(fd, &out, zila_os_mono_ms() + 1000);
				r = 0;
				goto out;
			}
			if (ev == ZILA_CHANNEL_CLOSED) {
				r = zila_error_set(err, ZILA_ECLOSED, "HQ closed the connection without a certificate");
				goto out;
			}
			if (used == 0)
				break;
		}
		if (out.len > 0 && write_all(fd, &out, deadline) != 0) {
			r = zila_error_set(err, ZILA_EIO, "cannot send to HQ at '%s'", hq);
			goto out;
		}
	}
out:
	zila_os_conn_close(fd);
	if (ch_init)
		zila_channel_release(&ch);
	sodium_memzero(cfg.psk, sizeof(cfg.psk));
	sodium_memzero(&jc, sizeof(jc));
	zila_buf_release(&out);
	zila_buf_release(&msg);
	return r;
}
