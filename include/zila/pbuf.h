/* A bounded allocator for protobuf-c's decoder: a message of len bytes may make it allocate
 * at most ZILA_PB_BUDGET(len) bytes. Without one, a 1 MiB message of empty repeated
 * elements made it allocate about 60 times its size before the limits could refuse it. */
#ifndef ZILA_PBUF_H
#define ZILA_PBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* What a legitimate message needs is below 4 bytes per byte (a dense Heads message, decoded
 * with protobuf-c's scratch space); the rest is headroom. */
#define ZILA_PB_BUDGET(len) (8 * (size_t)(len) + 16 * 1024)

/* Pass &b->alloc to a generated *__unpack(). Memory it hands out is plain malloc memory, so
 * the message may be released with *__free_unpacked(m, NULL) after b is gone. */
struct zila_pb_budget {
	ProtobufCAllocator alloc;
	size_t used; /* bytes handed out so far (frees are not subtracted) */
	size_t max;
	bool refused; /* an allocation was refused: the decode failed for the budget */
};

/* Prepares a budget for decoding one message of len bytes. */
void zila_pb_budget_init(struct zila_pb_budget *b, size_t len);

/* Decodes refused for their budget since the process started (for tests and the log). */
uint64_t zila_pb_budget_refusals(void);

#endif
