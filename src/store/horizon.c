/* The history horizon (#20 part 2): before it, history every replica has moved past may be
 * collected. A minimal version for attachments' collection (#25); #20's takes its place. */
#include "store_int.h"
#include "zila/clock.h"

int64_t zila_store_horizon_ms(struct zila_store *s)
{
	int64_t days = store_meta_int(s, "history_days", 90);
	if (days < 0)
		days = 0;
	return (int64_t)zila_wall_ms() - days * 86400 * 1000;
}
