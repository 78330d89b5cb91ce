/* include/zila/office/shrink.h without libjpeg-turbo: the Windows build (tools/windows/windows.mk
 * compiles this file instead of shrink.c). A photo is attached as it is; asking to shrink one
 * is refused in plain words, so that nobody believes it was shrunk. */
#include <stdio.h>
#include <string.h>

#include "zila/office/shrink.h"

bool zila_shrink_available(void)
{
	return false;
}

int zila_shrink_jpeg(const uint8_t *p, size_t len, unsigned long_side, int quality, struct zila_buf *out,
		     struct zila_shrink_result *res, struct zila_error *err)
{
	(void)p;
	(void)len;
	(void)long_side;
	(void)quality;
	(void)out;
	memset(res, 0, sizeof(*res));
	return zila_error_set(err, ZILA_EINVAL,
			      "this build of zila cannot shrink photos (it was built without libjpeg-turbo): attach the file"
			      " without shrinking it");
}
