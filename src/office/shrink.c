/* Shrinking phone photos on the way in (include/zila/office/shrink.h): libjpeg-turbo decodes
 * the JPEG already scaled down by its DCT (N/8), one row at a time straight into the encoder,
 * so a 12-megapixel photo never sits whole in memory. The EXIF block is copied unchanged, so
 * its orientation tag still turns the picture the right way, and so is the colour profile. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "zila/office/shrink.h"

struct jerr {
	struct jpeg_error_mgr pub;
	jmp_buf jb;
	char msg[JMSG_LENGTH_MAX]; /* libjpeg's first complaint */
};

/* What the work keeps outside the function that calls setjmp, so that a longjmp finds it as it
 * was (no volatile needed). */
struct job {
	const uint8_t *p;
	size_t len;
	unsigned long_side;
	int quality;
	struct jerr je;
	struct jpeg_decompress_struct din;
	struct jpeg_compress_struct cout;
	bool din_made, cout_made;
	unsigned char *mem; /* the encoder's output (jpeg_mem_dest: malloc'd) */
	unsigned long mem_len;
	JSAMPLE *row;
	struct zila_shrink_result *res;
	struct zila_buf *out;
	struct zila_error *err;
};

static void on_error(j_common_ptr ci)
{
	struct jerr *e = (struct jerr *)ci->err;
	if (e->msg[0] == '\0')
		(*ci->err->format_message)(ci, e->msg);
	longjmp(e->jb, 1);
}

/* libjpeg would print warnings on stderr; library code never prints: the first is kept. */
static void on_message(j_common_ptr ci)
{
	struct jerr *e = (struct jerr *)ci->err;
	if (e->msg[0] == '\0')
		(*ci->err->format_message)(ci, e->msg);
}

static bool is_exif(const jpeg_saved_marker_ptr m)
{
	return m->marker == JPEG_APP0 + 1 && m->data_length >= 6 && memcmp(m->data, "Exif\0\0", 6) == 0;
}

static bool is_icc(const jpeg_saved_marker_ptr m)
{
	return m->marker == JPEG_APP0 + 2 && m->data_length >= 12 && memcmp(m->data, "ICC_PROFILE\0", 12) == 0;
}

static int work(struct job *j)
{
	struct zila_shrink_result *res = j->res;
	if (setjmp(j->je.jb))
		return zila_error_set(j->err, ZILA_EFORMAT,
				      "the photo is a JPEG that does not decode (%s): it may be damaged or cut short; nothing"
				      " was attached",
				      j->je.msg[0] ? j->je.msg : "libjpeg gave no reason");
	j->din.err = jpeg_std_error(&j->je.pub);
	j->je.pub.error_exit = on_error;
	j->je.pub.output_message = on_message;
	jpeg_create_decompress(&j->din);
	j->din_made = true;
	jpeg_mem_src(&j->din, j->p, (unsigned long)j->len);
	jpeg_save_markers(&j->din, JPEG_APP0 + 1, 0xFFFF);
	jpeg_save_markers(&j->din, JPEG_APP0 + 2, 0xFFFF);
	(void)jpeg_read_header(&j->din, TRUE);
	unsigned w = j->din.image_width, h = j->din.image_height, lg = w > h ? w : h;
	res->width = w;
	res->height = h;
	if ((uint64_t)w * h > ZILA_SHRINK_PIXELS_MAX)
		return zila_error_set(j->err, ZILA_ETOOBIG,
				      "the photo has %ux%u pixels, more than zila shrinks (%llu million): nothing was attached",
				      w, h, (unsigned long long)(ZILA_SHRINK_PIXELS_MAX / 1000000));
	if (lg <= j->long_side) {
		snprintf(res->note, sizeof(res->note), "not shrunk: already %ux%u pixels, at most %u on its long side", w, h,
			 j->long_side);
		res->why = "small";
		return 0;
	}
	if (j->din.jpeg_color_space == JCS_CMYK || j->din.jpeg_color_space == JCS_YCCK) {
		snprintf(res->note, sizeof(res->note), "not shrunk: a CMYK JPEG (made for print, not by a phone)");
		res->why = "cmyk";
		return 0;
	}
	j->din.out_color_space = j->din.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
	/* The DCT scales by N/8 as it decodes: the largest N that fits the long side. */
	unsigned num = (unsigned)((uint64_t)8 * j->long_side / lg);
	num = num < 1 ? 1 : num > 8 ? 8 : num;
	for (;;) {
		j->din.scale_num = num;
		j->din.scale_denom = 8;
		jpeg_calc_output_dimensions(&j->din);
		unsigned olg = j->din.output_width > j->din.output_height ? j->din.output_width : j->din.output_height;
		if (olg <= j->long_side || num == 1)
			break;
		num--;
	}
	(void)jpeg_start_decompress(&j->din);
	j->cout.err = &j->je.pub;
	jpeg_create_compress(&j->cout);
	j->cout_made = true;
	jpeg_mem_dest(&j->cout, &j->mem, &j->mem_len);
	j->cout.image_width = j->din.output_width;
	j->cout.image_height = j->din.output_height;
	j->cout.input_components = j->din.output_components;
	j->cout.in_color_space = j->din.out_color_space;
	jpeg_set_defaults(&j->cout);
	jpeg_set_quality(&j->cout, j->quality, TRUE);
	j->cout.optimize_coding = TRUE;
	bool exif = false;
	for (jpeg_saved_marker_ptr m = j->din.marker_list; m != NULL; m = m->next)
		exif = exif || is_exif(m);
	if (exif)
		j->cout.write_JFIF_header = FALSE; /* EXIF's APP1 comes first after SOI */
	jpeg_start_compress(&j->cout, TRUE);
	for (jpeg_saved_marker_ptr m = j->din.marker_list; m != NULL; m = m->next)
		if (is_exif(m) || is_icc(m))
			jpeg_write_marker(&j->cout, m->marker, m->data, m->data_length);
	j->row = malloc((size_t)j->din.output_width * (size_t)j->din.output_components);
	if (j->row == NULL)
		return zila_error_set(j->err, ZILA_ENOMEM, "out of memory shrinking the photo");
	while (j->din.output_scanline < j->din.output_height) {
		JSAMPROW rp = j->row;
		if (jpeg_read_scanlines(&j->din, &rp, 1) != 1)
			return zila_error_set(j->err, ZILA_EFORMAT, "the photo's JPEG data ends early: nothing was attached");
		(void)jpeg_write_scanlines(&j->cout, &rp, 1);
	}
	jpeg_finish_compress(&j->cout);
	(void)jpeg_finish_decompress(&j->din);
	if (j->je.pub.num_warnings > 0)
		return zila_error_set(j->err, ZILA_EFORMAT,
				      "the photo is a damaged JPEG (%s): nothing was attached; attach it without shrinking to keep"
				      " it as it is",
				      j->je.msg);
	if (j->mem_len >= j->len) {
		snprintf(res->note, sizeof(res->note),
			 "not shrunk: at %ux%u it would take %lu bytes, no fewer than the %zu it has", j->din.output_width,
			 j->din.output_height, j->mem_len, j->len);
		res->why = "not_smaller";
		return 0;
	}
	if (zila_buf_put(j->out, j->mem, j->mem_len) != 0)
		return zila_error_set(j->err, ZILA_ENOMEM, "out of memory shrinking the photo");
	res->shrunk = true;
	res->out_width = j->din.output_width;
	res->out_height = j->din.output_height;
	snprintf(res->note, sizeof(res->note), "shrunk from %ux%u pixels (%zu bytes) to %ux%u (%lu bytes)", w, h, j->len,
		 res->out_width, res->out_height, j->mem_len);
	return 0;
}

bool zila_shrink_available(void)
{
	return true;
}

int zila_shrink_jpeg(const uint8_t *p, size_t len, unsigned long_side, int quality, struct zila_buf *out,
		     struct zila_shrink_result *res, struct zila_error *err)
{
	memset(res, 0, sizeof(*res));
	if (len < 4 || p[0] != 0xFF || p[1] != 0xD8 || p[2] != 0xFF) {
		snprintf(res->note, sizeof(res->note), "not shrunk: not a JPEG (only JPEG photos are shrunk)");
		res->why = "not_jpeg";
		return 0;
	}
	res->jpeg = true;
	if (len > ZILA_SHRINK_IN_MAX)
		return zila_error_set(err, ZILA_ETOOBIG, "the photo is %zu bytes, more than zila shrinks (%u): nothing was attached",
				      len, ZILA_SHRINK_IN_MAX);
	struct job *j = calloc(1, sizeof(*j));
	if (j == NULL)
		return zila_error_set(err, ZILA_ENOMEM, "out of memory shrinking the photo");
	j->p = p;
	j->len = len;
	j->long_side = long_side ? long_side : ZILA_SHRINK_LONG_SIDE;
	j->quality = quality > 0 && quality <= 100 ? quality : ZILA_SHRINK_QUALITY;
	j->res = res;
	j->out = out;
	j->err = err;
	int r = work(j);
	if (r != 0) {
		res->shrunk = false;
		res->note[0] = '\0';
		res->why = NULL;
	}
	if (j->cout_made)
		jpeg_destroy_compress(&j->cout);
	if (j->din_made)
		jpeg_destroy_decompress(&j->din);
	free(j->mem);
	free(j->row);
	free(j);
	return r;
}
