/* Fuzzes the blob phase's decoder and state machine (proto/ATTACH.md): the input is a
 * sequence of messages (u16 big-endian length, bytes) fed to a started blob exchange over a
 * real replica that holds one blob and refers to another it lacks, serving between them. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zila/blobx.h"
#include "zila/log.h"

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
	char dir[] = "/tmp/zila-fuzz-blobx-XXXXXX";
	char sub[64], sql[512], hex[65];
	uint8_t id[32], bytes[70000];
	struct zila_error err;
	if (sodium_init() < 0 || mkdtemp(dir) == NULL)
		abort();
	snprintf(sub, sizeof(sub), "%s/r", dir);
	if (zila_store_create(sub, &err) != 0 || zila_store_open(&store, sub, &err) != 0)
		abort();
	zila_log_set_sink(NULL, NULL, ZILA_LOG_ERROR);
	memset(bytes, 7, sizeof(bytes));
	if (zila_blob_put(store, bytes, sizeof(bytes), id, &err) != 0)
		abort();
	zila_hex_encode(hex, id, 32);
	snprintf(sql, sizeof(sql),
		 "INSERT INTO states(id, name) VALUES ('s', 's'); INSERT INTO districts(id, state_id, name) VALUES ('d1', 's', 'd');"
		 " INSERT INTO attachments(id, district_id, hash, size) VALUES ('a1', 'd1', '%s', %zu),"
		 " ('a2', 'd1', '%064d', 5)",
		 hex, sizeof(bytes), 0);
	if (zila_store_exec_captured(store, sql, NULL, NULL, &err) != 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zila_blobx *bx = NULL;
	struct zila_blobx_config cfg;
	struct zila_error err;
	memset(&cfg, 0, sizeof(cfg));
	cfg.store = store;
	cfg.send = discard;
	cfg.fetch_all = true;
	(void)zila_blobx_is_blob(data, size);
	if (zila_blobx_new(&bx, &cfg, &err) != 0)
		abort();
	int r = zila_blobx_start(bx, &err);
	while (r == 0 && size >= 2) {
		size_t n = (size_t)data[0] << 8 | data[1];
		data += 2;
		size -= 2;
		if (n > size)
			n = size;
		r = zila_blobx_receive(bx, data, n, &err);
		if (r == 0 && zila_blobx_wants_to_send(bx))
			r = zila_blobx_send_more(bx, 1 << 16, &err);
		data += n;
		size -= n;
	}
	zila_blobx_free(bx);
	return 0;
}
