/* Fuzzes the sync session's message decoder and state machine: the input is a sequence of
 * messages (u16 big-endian length, bytes) fed to a started session over a real replica. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zila/log.h"
#include "zila/session.h"

static struct zila_store *store;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int discard(void *ctx, const uint8_t *p, size_t len)
{
	(void)ctx;
	(void)p;
	return len > ZILA_SESSION_MSG_MAX ? ZILA_ETOOBIG : 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	char dir[] = "/tmp/zila-fuzz-session-XXXXXX";
	char sub[64];
	struct zila_error err;
	if (sodium_init() < 0 || mkdtemp(dir) == NULL)
		abort();
	snprintf(sub, sizeof(sub), "%s/r", dir);
	if (zila_store_create(sub, &err) != 0 || zila_store_open(&store, sub, &err) != 0)
		abort();
	zila_log_set_sink(NULL, NULL, ZILA_LOG_ERROR);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zila_session *s = NULL;
	struct zila_session_config cfg;
	struct zila_error err;
	memset(&cfg, 0, sizeof(cfg));
	cfg.store = store;
	cfg.send = discard;
	cfg.now_ms = 1800000000000ull;
	/* Half of the inputs leave its windows to the caller (the daemon's way), applied here. */
	cfg.caller_applies = (size & 2) != 0;
	/* And some live ones offer the blob phase with rows in it: Entries and Acks after Done. */
	cfg.live = cfg.blobs = cfg.late_rows = (size & 5) == 4;
	/* The whole input as one message first: the decoder alone. */
	(void)!zila_session_check_message(data, size, &err);
	(void)!zila_session_verify_message(data, size, &err);
	if (zila_session_new(&s, &cfg, &err) != 0)
		abort();
	/* Even inputs play the live session, odd ones a bundle being read. */
	int r = (size & 1) ? zila_session_import_begin(s, &err) : zila_session_start(s, &err);
	while (r == 0 && size >= 2) {
		size_t n = (size_t)data[0] << 8 | data[1];
		data += 2;
		size -= 2;
		if (n > size)
			n = size;
		r = zila_session_receive(s, data, n, &err);
		if (r == 0 && cfg.caller_applies)
			r = zila_session_apply(s, &err);
		data += n;
		size -= n;
	}
	zila_session_free(s);
	return 0;
}
