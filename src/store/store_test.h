/* Tests only: what the unit tests need of the store's inside. Nothing outside tests/
 * includes this header; the rest of zila goes through include/zila/store.h. */
#ifndef ZILA_STORE_TEST_H
#define ZILA_STORE_TEST_H

#include <sqlite3.h>

#include "zila/store.h"

/* The store's own connection, borrowed for the store's lifetime. Triggers are off on it
 * (writes through it are not captured) and so are foreign keys. */
sqlite3 *zila_store_db(struct zila_store *s);

#endif
