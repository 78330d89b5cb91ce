/* Shrinking phone photos (src/office/shrink.c): JPEGs made here with libjpeg itself. A large
 * photo comes out at most 1600 px on its long side, smaller, decodable, with its EXIF block
 * (the orientation tag) unchanged; a small JPEG, a JPEG that would not come out smaller and a
 * file that is not a JPEG are kept as they are, and say so; a JPEG cut short or damaged is
 * refused and nothing is kept. The Windows build cannot shrink and says so. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "zila/office/shrink.h"

#ifndef _WIN32
#include <jpeglib.h>

/* EXIF with one tag: Orientation (0x0112) = 6, "turn 90 degrees clockwise to show". */
static const uint8_t exif6[] = { 'E', 'x', 'i', 'f', 0, 0, 'M', 'M', 0, 0x2a, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3,
				 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0 };

/* A w x h photo-like JPEG (gradients and noise) at quality q, with the EXIF above if exif. */
static void make_jpeg(unsigned w, unsigned h, int q, bool exif, unsigned char **out, unsigned long *len)
{
	struct jpeg_compress_struct c;
	struct jpeg_error_mgr e;
	*out = NULL;
	*len = 0;
	c.err = jpeg_std_error(&e);
	jpeg_create_compress(&c);
	jpeg_mem_dest(&c, out, len);
	c.image_width = w;
	c.image_height = h;
	c.input_components = 3;
	c.in_color_space = JCS_RGB;
	jpeg_set_defaults(&c);
	jpeg_set_quality(&c, q, TRUE);
	if (exif)
		c.write_JFIF_header = FALSE;
	jpeg_start_compress(&c, TRUE);
	if (exif)
		jpeg_write_marker(&c, JPEG_APP0 + 1, exif6, sizeof(exif6));
	unsigned char *row = malloc((size_t)w * 3);
	uint32_t seed = 12345;
	while (c.next_scanline < h) {
		unsigned y = c.next_scanline;
		for (unsigned x = 0; x < w; x++) {
			seed = seed * 1103515245u + 12345u;
			unsigned n = (seed >> 16) & 31;
			row[x * 3] = (unsigned char)((x * 255 / w + n) & 255);
			row[x * 3 + 1] = (unsigned char)((y * 255 / h + n) & 255);
			row[x * 3 + 2] = (unsigned char)(((x + y) / 7 + n) & 255);
		}
		JSAMPROW rp = row;
		jpeg_write_scanlines(&c, &rp, 1);
	}
	jpeg_finish_compress(&c);
	jpeg_destroy_compress(&c);
	free(row);
}

struct seen {
	unsigned w, h;
	bool exif_same;
	long warnings;
};

/* Decodes p wholly: its size, whether its APP1 is exif6 byte for byte, libjpeg's warnings. */
static void look(const uint8_t *p, size_t len, struct seen *s)
{
	struct jpeg_decompress_struct d;
	struct jpeg_error_mgr e;
	memset(s, 0, sizeof(*s));
	d.err = jpeg_std_error(&e);
	jpeg_create_decompress(&d);
	jpeg_mem_src(&d, p, (unsigned long)len);
	jpeg_save_markers(&d, JPEG_APP0 + 1, 0xFFFF);
	assert_int_equal(jpeg_read_header(&d, TRUE), JPEG_HEADER_OK);
	for (jpeg_saved_marker_ptr m = d.marker_list; m != NULL; m = m->next)
		if (m->marker == JPEG_APP0 + 1 && m->data_length == sizeof(exif6) && memcmp(m->data, exif6, sizeof(exif6)) == 0)
			s->exif_same = true;
	jpeg_start_decompress(&d);
	s->w = d.output_width;
	s->h = d.output_height;
	unsigned char *row = malloc((size_t)d.output_width * (size_t)d.output_components);
	while (d.output_scanline < d.output_height) {
		JSAMPROW rp = row;
		jpeg_read_scanlines(&d, &rp, 1);
	}
	jpeg_finish_decompress(&d);
	s->warnings = e.num_warnings;
	jpeg_destroy_decompress(&d);
	free(row);
}

static void test_large_photo_shrinks_keeping_orientation(void **state)
{
	(void)state;
	unsigned char *jp;
	unsigned long jl;
	make_jpeg(2400, 1800, 95, true, &jp, &jl);
	struct zila_buf out;
	struct zila_shrink_result res;
	struct zila_error err;
	struct seen s;
	zila_buf_init(&out, ZILA_SHRINK_IN_MAX);
	zila_error_clear(&err);
	assert_int_equal(zila_shrink_jpeg(jp, jl, 0, 0, &out, &res, &err), 0);
	assert_true(res.jpeg);
	assert_true(res.shrunk);
	assert_int_equal(res.width, 2400);
	assert_int_equal(res.height, 1800);
	assert_true(res.out_width <= ZILA_SHRINK_LONG_SIDE && res.out_width >= ZILA_SHRINK_LONG_SIDE * 7 / 8);
	assert_true(out.len > 0 && out.len < jl);
	assert_non_null(strstr(res.note, "shrunk from 2400x1800"));
	assert_null(res.why);
	look(out.p, out.len, &s);
	assert_int_equal(s.w, res.out_width);
	assert_int_equal(s.h, res.out_height);
	assert_int_equal(s.w * 3, s.h * 4); /* the same shape */
	assert_true(s.exif_same);           /* the orientation tag still turns it the right way */
	assert_int_equal(s.warnings, 0);
	/* a tall photo: its long side is its height */
	unsigned char *tp;
	unsigned long tl;
	make_jpeg(1200, 3000, 92, false, &tp, &tl);
	zila_buf_reset(&out);
	assert_int_equal(zila_shrink_jpeg(tp, tl, 0, 0, &out, &res, &err), 0);
	assert_true(res.shrunk);
	assert_true(res.out_height <= ZILA_SHRINK_LONG_SIDE && res.out_height < res.out_width * 3);
	free(tp);
	free(jp);
	zila_buf_release(&out);
}

static void test_kept_as_they_are(void **state)
{
	(void)state;
	struct zila_buf out;
	struct zila_shrink_result res;
	struct zila_error err;
	zila_buf_init(&out, ZILA_SHRINK_IN_MAX);
	zila_error_clear(&err);
	/* a JPEG already small */
	unsigned char *jp;
	unsigned long jl;
	make_jpeg(1024, 768, 95, true, &jp, &jl);
	assert_int_equal(zila_shrink_jpeg(jp, jl, 0, 0, &out, &res, &err), 0);
	assert_true(res.jpeg);
	assert_false(res.shrunk);
	assert_int_equal(out.len, 0);
	assert_non_null(strstr(res.note, "already 1024x768"));
	assert_string_equal(res.why, "small");
	free(jp);
	/* a JPEG already compressed harder than quality 80: re-encoded it is no smaller */
	make_jpeg(1700, 1000, 10, false, &jp, &jl);
	assert_int_equal(zila_shrink_jpeg(jp, jl, 0, 0, &out, &res, &err), 0);
	assert_false(res.shrunk);
	assert_int_equal(out.len, 0);
	assert_non_null(strstr(res.note, "no fewer than"));
	assert_string_equal(res.why, "not_smaller");
	free(jp);
	/* not a JPEG */
	static const uint8_t png[] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13 };
	assert_int_equal(zila_shrink_jpeg(png, sizeof(png), 0, 0, &out, &res, &err), 0);
	assert_false(res.jpeg);
	assert_false(res.shrunk);
	assert_non_null(strstr(res.note, "not a JPEG"));
	assert_string_equal(res.why, "not_jpeg");
	assert_int_equal(out.len, 0);
	zila_buf_release(&out);
}

static void test_damaged_refused(void **state)
{
	(void)state;
	unsigned char *jp;
	unsigned long jl;
	make_jpeg(2400, 1800, 90, false, &jp, &jl);
	struct zila_buf out;
	struct zila_shrink_result res;
	struct zila_error err;
	zila_buf_init(&out, ZILA_SHRINK_IN_MAX);
	/* cut short (a transfer that stopped half way) */
	zila_error_clear(&err);
	assert_int_equal(zila_shrink_jpeg(jp, jl / 2, 0, 0, &out, &res, &err), ZILA_EFORMAT);
	assert_false(res.shrunk);
	assert_int_equal(out.len, 0);
	assert_non_null(strstr(zila_error_msg(&err, ZILA_EFORMAT), "damaged"));
	/* scribbled over in the middle of its data */
	memset(jp + jl / 2, 0xFF, 64);
	zila_error_clear(&err);
	assert_int_equal(zila_shrink_jpeg(jp, jl, 0, 0, &out, &res, &err), ZILA_EFORMAT);
	assert_int_equal(out.len, 0);
	/* a JPEG's first bytes and then nonsense */
	static const uint8_t junk[] = { 0xFF, 0xD8, 0xFF, 0xE0, 0, 16, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0,
					0x12, 0x34, 0x56 };
	zila_error_clear(&err);
	assert_int_equal(zila_shrink_jpeg(junk, sizeof(junk), 0, 0, &out, &res, &err), ZILA_EFORMAT);
	assert_non_null(strstr(zila_error_msg(&err, ZILA_EFORMAT), "does not decode"));
	assert_int_equal(out.len, 0);
	free(jp);
	zila_buf_release(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_large_photo_shrinks_keeping_orientation),
		cmocka_unit_test(test_kept_as_they_are),
		cmocka_unit_test(test_damaged_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
#else
/* The Windows build has no libjpeg-turbo: it says so rather than attach a photo unshrunk. */
static void test_not_in_this_build(void **state)
{
	(void)state;
	static const uint8_t jpg[] = { 0xFF, 0xD8, 0xFF, 0xE0, 0, 0 };
	struct zila_buf out;
	struct zila_shrink_result res;
	struct zila_error err;
	zila_buf_init(&out, 1024);
	zila_error_clear(&err);
	assert_false(zila_shrink_available());
	assert_int_equal(zila_shrink_jpeg(jpg, sizeof(jpg), 0, 0, &out, &res, &err), ZILA_EINVAL);
	assert_non_null(strstr(zila_error_msg(&err, ZILA_EINVAL), "cannot shrink"));
	assert_false(res.shrunk);
	zila_buf_release(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_not_in_this_build) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
#endif
