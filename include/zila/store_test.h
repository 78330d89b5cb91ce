/* TESTS ONLY: what the unit tests need of the store's inside. Nothing but tests/ (and the
 * store itself) includes this header; the rest of zila goes through zila/store.h and
 * zila/review.h (tools/check_layers.py refuses zila_store_db() anywhere else in src/). */
#ifndef ZILA_STORE_TEST_H
#define ZILA_STORE_TEST_H

#include <sqlite3.h>

#include "zila/store.h"

/* The store's own connection, borrowed for the store's lifetime. Triggers are off on it
 * (writes through it are not captured) and so are foreign keys. */
sqlite3 *zila_store_db(struct zila_store *s);

#endif
