/* include/zila/office/pgmirror.h where libpq is not built: the Windows build (a district
 * laptop's), whose tools/windows/windows.mk compiles this file instead of pgmirror.c. The
 * mirror into PostgreSQL runs at HQ, on Linux; here every call says so plainly. */
#include <stdio.h>
#include <string.h>

#include "zila/office/pgmirror.h"

static int none(struct zila_error *err)
{
	return zila_error_set(err, ZILA_EINVAL,
			      "the PostgreSQL mirror is not in this build (it runs at HQ, on Linux)");
}

int zila_pgmirror_check_conninfo(const char *conninfo, struct zila_error *err)
{
	(void)conninfo;
	return none(err);
}

int zila_pgmirror_new(struct zila_pgmirror **out, const char *dir, const char *conninfo, struct zila_error *err)
{
	(void)dir;
	(void)conninfo;
	*out = NULL;
	return none(err);
}

int zila_pgmirror_step(struct zila_pgmirror *m, struct zila_error *err)
{
	(void)m;
	return none(err);
}

void zila_pgmirror_get_state(struct zila_pgmirror *m, struct zila_pgmirror_state *out)
{
	(void)m;
	memset(out, 0, sizeof(*out));
	out->behind = -1;
	snprintf(out->last_error, sizeof(out->last_error), "not in this build");
}

int zila_pgmirror_start(struct zila_pgmirror *m)
{
	(void)m;
	return ZILA_EINVAL;
}

void zila_pgmirror_kick(struct zila_pgmirror *m)
{
	(void)m;
}

void zila_pgmirror_free(struct zila_pgmirror *m)
{
	(void)m;
}
