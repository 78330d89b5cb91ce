/* Shrinking phone photos on the way in (#25): a JPEG larger than ZILA_SHRINK_LONG_SIDE pixels
 * on its long side is decoded scaled down and encoded again at ZILA_SHRINK_QUALITY, keeping
 * its EXIF block (so its orientation tag, and the camera's other data) and its colour
 * profile. Other files, JPEGs already that small and JPEGs that would come out no smaller are
 * left as they are, and the answer says which. libjpeg-turbo (src/office/shrink.c); a build
 * without it (Windows) compiles src/office/shrink_none.c, which says so plainly. */
#ifndef ZILA_OFFICE_SHRINK_H
#define ZILA_OFFICE_SHRINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zila/buf.h"
#include "zila/err.h"

#define ZILA_SHRINK_LONG_SIDE 1600  /* pixels on the long side, at most, after shrinking */
#define ZILA_SHRINK_QUALITY 80      /* libjpeg's quality scale, 1..100 */
#define ZILA_SHRINK_PIXELS_MAX (120ull * 1000 * 1000) /* a larger image is refused, not decoded */
#define ZILA_SHRINK_IN_MAX (64u * 1024 * 1024) /* the largest file given to be shrunk */

struct zila_shrink_result {
	bool shrunk;       /* out holds the smaller JPEG */
	bool jpeg;         /* the input is a JPEG */
	unsigned width, height;         /* the input's pixels (0 when not a JPEG) */
	unsigned out_width, out_height; /* the output's (shrunk only) */
	char note[200];    /* in plain words what was done, or why the file is kept as it is */
	const char *why;   /* kept as it is: "not_jpeg", "small", "cmyk" or "not_smaller" (a word a
			    * page translates); NULL when shrunk or refused */
};

/* Whether this build can shrink (false: built without libjpeg-turbo). */
bool zila_shrink_available(void);

/* Shrinks the photo p (len bytes) into out (appended; the caller's buffer), when it is a JPEG
 * larger than long_side pixels on its long side and the result is smaller than p; res says
 * what was done. Returns 0 whether or not it shrank; ZILA_EFORMAT for a JPEG that does not
 * decode cleanly (damaged or cut short: nothing is kept, err says so), ZILA_ETOOBIG for one of
 * more than ZILA_SHRINK_PIXELS_MAX pixels, ZILA_EINVAL when this build cannot shrink, and
 * ZILA_ENOMEM. quality is 1..100 (0: ZILA_SHRINK_QUALITY), long_side 0: ZILA_SHRINK_LONG_SIDE. */
int zila_shrink_jpeg(const uint8_t *p, size_t len, unsigned long_side, int quality, struct zila_buf *out,
		     struct zila_shrink_result *res, struct zila_error *err) ZILA_MUST_CHECK;

#endif
