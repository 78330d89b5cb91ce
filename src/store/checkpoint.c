/* Checkpoints off the writer's path: a thread of the store copies the WAL into the database
 * file with a connection of its own while zila's connection goes on writing. */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "zila/log.h"
#include "zila/os.h"

/* WAL frames after which a commit asks for a checkpoint (SQLite's own default). */
#define CKPT_FRAMES 1000

struct ckpt {
	struct zila_os_worker *w;
	bool want, stop; /* under the worker's lock */
	char *path;
	sqlite3 *db;     /* the thread's own connection, opened on its first checkpoint */
};

static void run_checkpoint(struct ckpt *c)
{
	/* FULL: the WAL is synced before its frames are copied, and the database file after,
	 * so the WAL may restart over them even when zila's merges commit without fsyncs. */
	if (c->db == NULL) {
		if (sqlite3_open_v2(c->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
		    sqlite3_exec(c->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL) != SQLITE_OK) {
			zila_log(ZILA_LOG_DEBUG, "checkpoint: cannot open '%s': %s", c->path, sqlite3_errmsg(c->db));
			sqlite3_close(c->db);
			c->db = NULL;
			return;
		}
	}
	/* PASSIVE never waits for writers or readers; what it cannot copy now, the next does.
	 * A full disk or a busy file is not an error here: the WAL just stays longer. */
	int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		zila_log(ZILA_LOG_DEBUG, "checkpoint of '%s': %s", c->path, sqlite3_errmsg(c->db));
}

static void ckpt_main(struct zila_os_worker *w, void *arg)
{
	struct ckpt *c = arg;
	zila_os_worker_lock(w);
	for (;;) {
		while (!c->want && !c->stop)
			zila_os_worker_wait(w);
		if (c->stop)
			break;
		c->want = false;
		zila_os_worker_unlock(w);
		run_checkpoint(c);
		zila_os_worker_lock(w);
	}
	zila_os_worker_unlock(w);
}

static struct ckpt *ckpt_start(const char *path)
{
	struct ckpt *c = calloc(1, sizeof(*c));
	if (c == NULL || (c->path = strdup(path)) == NULL)
		goto fail;
	if (zila_os_worker_start(&c->w, ckpt_main, c) != 0)
		goto fail;
	return c;
fail:
	if (c != NULL)
		free(c->path);
	free(c);
	return NULL;
}

/* After every commit of zila's connection (SQLite's WAL hook, in place of its automatic
 * checkpoint, which would copy the WAL on the committing thread: in an incremental sync
 * that was a quarter of the sealing side's time). */
static int wal_hook(void *ctx, sqlite3 *db, const char *name, int nframes)
{
	struct zila_store *s = ctx;
	(void)db;
	(void)name;
	if (nframes < CKPT_FRAMES)
		return SQLITE_OK;
	if (s->ckpt == NULL && !s->ckpt_failed) {
		s->ckpt = ckpt_start(s->db_path);
		if (s->ckpt == NULL) {
			s->ckpt_failed = true;
			zila_log(ZILA_LOG_WARN, "cannot start a checkpoint thread; checkpointing on the writer's");
		}
	}
	if (s->ckpt != NULL) {
		zila_os_worker_lock(s->ckpt->w);
		s->ckpt->want = true;
		zila_os_worker_signal(s->ckpt->w);
		zila_os_worker_unlock(s->ckpt->w);
	} else if (!s->nosync) {
		/* What SQLite's automatic checkpoint does; never after a commit without fsyncs,
		 * whose frames a checkpoint without them would let the WAL overwrite. */
		(void)sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	}
	return SQLITE_OK;
}

void store_checkpoint_init(struct zila_store *s)
{
	sqlite3_wal_hook(s->db, wal_hook, s);
}

void store_checkpoint_stop(struct zila_store *s)
{
	struct ckpt *c = s->ckpt;
	if (c == NULL)
		return;
	zila_os_worker_lock(c->w);
	c->stop = true;
	zila_os_worker_signal(c->w);
	zila_os_worker_unlock(c->w);
	zila_os_worker_join(c->w);
	sqlite3_close(c->db);
	free(c->path);
	free(c);
	s->ckpt = NULL;
}
