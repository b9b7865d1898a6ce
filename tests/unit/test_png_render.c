// SPDX-License-Identifier: MIT
/*
 * test_png_render.c - cmocka tests for cli/png_render.c: render small
 * FlowPics, read the PNG back with libpng and check that cells land where a
 * reader expects them (time left to right, size bottom to top), that empty
 * cells are white and occupied ones dark, that large pictures stay 1:1, and
 * that errors come back as negative errno with a useful message.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <png.h>

#include "cli/png_render.h"

/* Grey levels: a single packet must be at least this dark (75% grey). */
#define DARK_MAX 191

struct fixture {
	char dir[64];
	char path[128];
};

struct image {
	uint8_t *px;
	uint32_t w, h;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_png_render.XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/pic.png", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* The simplified libpng read API: the file is 8-bit grey, read it as such.
 * 0, or -EIO (not a readable PNG) / -ENOMEM. */
static int read_png(const char *path, struct image *img)
{
	png_image pi;

	memset(&pi, 0, sizeof(pi));
	pi.version = PNG_IMAGE_VERSION;
	if (!png_image_begin_read_from_file(&pi, path))
		return -EIO;
	pi.format = PNG_FORMAT_GRAY;
	img->px = malloc(PNG_IMAGE_SIZE(pi));
	if (!img->px) {
		png_image_free(&pi);
		return -ENOMEM;
	}
	if (!png_image_finish_read(&pi, NULL, img->px, 0, NULL)) {
		free(img->px);
		return -EIO;
	}
	img->w = pi.width;
	img->h = pi.height;
	return 0;
}

static uint8_t pixel(const struct image *img, uint32_t x, uint32_t y)
{
	assert_true(x < img->w && y < img->h);
	return img->px[(size_t)y * img->w + x];
}

/* Every pixel of cell (cx, cy) has one grey level; return it. */
static uint8_t cell_grey(const struct image *img, const struct png_render_layout *lay, uint32_t res,
			 uint32_t cx, uint32_t cy)
{
	uint32_t x0 = lay->plot_x + cx * lay->scale;
	uint32_t y0 = lay->plot_y + (res - 1 - cy) * lay->scale;
	uint8_t v = pixel(img, x0, y0);
	uint32_t x, y;

	for (y = y0; y < y0 + lay->scale; y++)
		for (x = x0; x < x0 + lay->scale; x++)
			assert_int_equal(pixel(img, x, y), v);
	return v;
}

static void test_layout_scale(void **state)
{
	struct png_render_opts o = { .window_s = 60, .max_size = 1500 };
	struct png_render_layout lay;

	(void)state;
	assert_int_equal(png_render_layout(32, &o, &lay), 0);
	assert_int_equal(lay.scale, 15);
	assert_int_equal(png_render_layout(64, &o, &lay), 0);
	assert_int_equal(lay.scale, 8);
	assert_int_equal(png_render_layout(1, &o, &lay), 0);
	assert_int_equal(lay.scale, 480);
	assert_int_equal(png_render_layout(1500, &o, &lay), 0);
	assert_int_equal(lay.scale, 1);
	assert_int_equal(png_render_layout(2048, &o, &lay), 0);
	assert_int_equal(lay.scale, 1);
	assert_true(lay.plot_x + 2048 < lay.width && lay.plot_y + 2048 < lay.height);
}

static void test_corners(void **state)
{
	struct fixture *f = *state;
	struct png_render_opts o = { .window_s = 60, .max_size = 1500, .title = "corners" };
	struct png_render_layout lay;
	const uint32_t res = 32;
	uint8_t pic[32 * 32] = { 0 };
	struct image img;
	uint32_t x, y, s, pw, in_bl, in_tr;
	uint8_t bl, tr;
	char err[256] = "";

	pic[0 * res + 0] = 1;	  /* earliest time, smallest size: one packet */
	pic[31 * res + 31] = 255; /* latest time, largest size: saturated */
	assert_int_equal(png_render_flowpic(f->path, pic, res, &o, err, sizeof(err)), 0);
	assert_int_equal(png_render_layout(res, &o, &lay), 0);
	assert_int_equal(read_png(f->path, &img), 0);
	assert_int_equal(img.w, lay.width);
	assert_int_equal(img.h, lay.height);
	s = lay.scale;
	pw = res * s;

	bl = cell_grey(&img, &lay, res, 0, 0);
	tr = cell_grey(&img, &lay, res, 31, 31);
	assert_true(bl <= DARK_MAX);
	assert_true(tr < bl);

	/* (0,0) touches the left and bottom frame lines, (31,31) the right and top. */
	assert_int_equal(pixel(&img, lay.plot_x - 1, lay.plot_y + pw - 1), 0);
	assert_int_equal(pixel(&img, lay.plot_x, lay.plot_y + pw), 0);
	assert_int_equal(pixel(&img, lay.plot_x + pw, lay.plot_y), 0);
	assert_int_equal(pixel(&img, lay.plot_x + pw - 1, lay.plot_y - 1), 0);

	/* Everything else in the plot area is white: top-left and bottom-right too. */
	assert_int_equal(cell_grey(&img, &lay, res, 0, 31), 255);
	assert_int_equal(cell_grey(&img, &lay, res, 31, 0), 255);
	for (y = 0; y < pw; y++) {
		for (x = 0; x < pw; x++) {
			in_bl = x < s && y >= pw - s;
			in_tr = x >= pw - s && y < s;
			if (in_bl)
				assert_int_equal(pixel(&img, lay.plot_x + x, lay.plot_y + y), bl);
			else if (in_tr)
				assert_int_equal(pixel(&img, lay.plot_x + x, lay.plot_y + y), tr);
			else
				assert_int_equal(pixel(&img, lay.plot_x + x, lay.plot_y + y), 255);
		}
	}
	free(img.px);
}

static void test_large_is_one_to_one(void **state)
{
	struct fixture *f = *state;
	struct png_render_opts o = { .window_s = 15, .max_size = 1500 };
	const uint32_t res = 1500;
	uint8_t *pic = calloc((size_t)res * res, 1);
	struct image img;
	char err[256] = "";

	assert_non_null(pic);
	pic[(size_t)700 * res + 700] = 3;
	assert_int_equal(png_render_flowpic(f->path, pic, res, &o, err, sizeof(err)), 0);
	assert_int_equal(read_png(f->path, &img), 0);
	assert_true(img.w >= 1500);
	assert_true(img.h >= 1500);
	free(img.px);
	free(pic);
}

static void test_missing_dir(void **state)
{
	struct fixture *f = *state;
	struct png_render_opts o = { .window_s = 60, .max_size = 1500 };
	uint8_t pic[4] = { 0 };
	char path[192], err[256] = "";
	int ret;

	snprintf(path, sizeof(path), "%s/no/such/dir/out.png", f->dir);
	ret = png_render_flowpic(path, pic, 2, &o, err, sizeof(err));
	assert_true(ret < 0);
	assert_int_equal(ret, -ENOENT);
	assert_non_null(strstr(err, path));
	assert_int_equal(access(path, F_OK), -1);
}

static void test_bad_args(void **state)
{
	struct fixture *f = *state;
	struct png_render_opts o = { .window_s = 60, .max_size = 1500 };
	struct png_render_opts no_window = { .window_s = 0, .max_size = 1500 };
	struct png_render_opts no_size = { .window_s = 60, .max_size = 0 };
	uint8_t pic[4] = { 0 };
	char err[256];

	assert_int_equal(png_render_flowpic(f->path, pic, 0, &o, err, sizeof(err)), -EINVAL);
	assert_int_equal(png_render_flowpic(f->path, pic, 2049, &o, err, sizeof(err)), -EINVAL);
	assert_int_equal(png_render_flowpic(f->path, pic, 2, NULL, err, sizeof(err)), -EINVAL);
	assert_int_equal(png_render_flowpic(f->path, pic, 2, &no_window, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(png_render_flowpic(f->path, pic, 2, &no_size, NULL, 0), -EINVAL);
	assert_int_equal(png_render_flowpic(f->path, NULL, 2, &o, err, sizeof(err)), -EINVAL);
	assert_int_equal(png_render_flowpic(NULL, pic, 2, &o, err, sizeof(err)), -EINVAL);
	assert_int_equal(access(f->path, F_OK), -1);
}

/* One cell, long title, odd window: must render without tripping the sanitizers. */
static void test_odd_inputs(void **state)
{
	struct fixture *f = *state;
	struct png_render_opts o = { .window_s = 7.3,
				     .max_size = 1,
				     .title = "a title with unknown chars \x7f\xc3\xa9 that is "
					      "long enough to be wider than the tiny plot area" };
	uint8_t pic[1] = { 9 };
	struct image img;
	char err[256] = "";

	assert_int_equal(png_render_flowpic(f->path, pic, 1, &o, err, sizeof(err)), 0);
	assert_int_equal(read_png(f->path, &img), 0);
	free(img.px);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_scale),
		cmocka_unit_test_setup_teardown(test_corners, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_is_one_to_one, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_args, setup, teardown),
		cmocka_unit_test_setup_teardown(test_odd_inputs, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
