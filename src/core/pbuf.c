/* The bounded allocator for protobuf-c's decoder (include/zila/pbuf.h). */
#include <stdatomic.h>
#include <stdlib.h>

#include "zila/pbuf.h"

static _Atomic uint64_t nrefused;

static void *budget_alloc(void *ctx, size_t size)
{
	struct zila_pb_budget *b = ctx;
	if (size > b->max - b->used) {
		if (!b->refused)
			atomic_fetch_add(&nrefused, 1);
		b->refused = true;
		return NULL;
	}
	b->used += size;
	return malloc(size);
}

static void budget_free(void *ctx, void *p)
{
	(void)ctx;
	free(p);
}

void zila_pb_budget_init(struct zila_pb_budget *b, size_t len)
{
	b->alloc.alloc = budget_alloc;
	b->alloc.free = budget_free;
	b->alloc.allocator_data = b;
	b->used = 0;
	b->max = ZILA_PB_BUDGET(len);
	b->refused = false;
}

uint64_t zila_pb_budget_refusals(void)
{
	return atomic_load(&nrefused);
}
