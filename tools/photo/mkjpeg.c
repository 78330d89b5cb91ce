/* zila_mkjpeg: writes a photo-like JPEG (gradients and noise) for the tests of shrinking
 * (tests/integration/test_shrink.sh), as a phone would: W x H pixels at quality Q, with an
 * EXIF orientation tag (6) when asked.
 * usage: zila_mkjpeg W H Q [exif] > FILE */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

static const unsigned char exif6[] = { 'E', 'x', 'i', 'f', 0, 0, 'M', 'M', 0, 0x2a, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3,
				       0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0 };

int main(int argc, char **argv)
{
	if (argc < 4 || atoi(argv[1]) <= 0 || atoi(argv[2]) <= 0 || atoi(argv[3]) <= 0) {
		fprintf(stderr, "usage: zila_mkjpeg W H Q [exif] > FILE\n");
		return 2;
	}
	unsigned w = (unsigned)atoi(argv[1]), h = (unsigned)atoi(argv[2]);
	bool exif = argc > 4 && strcmp(argv[4], "exif") == 0;
	struct jpeg_compress_struct c;
	struct jpeg_error_mgr e;
	c.err = jpeg_std_error(&e);
	jpeg_create_compress(&c);
	jpeg_stdio_dest(&c, stdout);
	c.image_width = w;
	c.image_height = h;
	c.input_components = 3;
	c.in_color_space = JCS_RGB;
	jpeg_set_defaults(&c);
	jpeg_set_quality(&c, atoi(argv[3]), TRUE);
	if (exif)
		c.write_JFIF_header = FALSE;
	jpeg_start_compress(&c, TRUE);
	if (exif)
		jpeg_write_marker(&c, JPEG_APP0 + 1, exif6, sizeof(exif6));
	unsigned char *row = malloc((size_t)w * 3);
	if (row == NULL)
		return 1;
	unsigned s = 1;
	while (c.next_scanline < h) {
		unsigned y = c.next_scanline;
		for (unsigned x = 0; x < w; x++) {
			s = s * 1103515245u + 12345u;
			unsigned n = (s >> 16) & 31;
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
	return 0;
}
