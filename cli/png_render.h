/* SPDX-License-Identifier: MIT */
/*
 * png_render.h - write a FlowPic as a PNG a person can read: time left to
 * right, size bottom to top, a frame with tick marks, numeric tick labels and
 * axis titles with units, and an optional title line on top.
 *
 * The output is an 8-bit greyscale PNG.  Each cell becomes a square of
 * scale x scale pixels: white for 0 packets, darker for more on a log scale,
 * so that a single packet is still clearly visible (grey 168 of 255 or
 * darker).  Text uses a small built-in bitmap font, so no font files are
 * needed.  The title is also stored whole in a tEXt chunk (key "Title").
 */
#ifndef FLOWPIC_PNG_RENDER_H
#define FLOWPIC_PNG_RENDER_H

#include <stddef.h>
#include <stdint.h>

/* Largest picture side accepted, in cells. */
#define PNG_RENDER_MAX_RES 2048

/* Titles longer than this many characters are cut; keeps the image bounded. */
#define PNG_RENDER_TITLE_MAX 160

struct png_render_opts {
	double window_s;   /* the block's time span, s; the x axis runs 0..window_s */
	unsigned max_size; /* top of the size axis, bytes (1500) */
	const char *title; /* one line drawn above the picture, may be NULL; ASCII only */
};

/*
 * Where the picture lands in the image, for callers and tests that need to
 * find a cell's pixels.  Cell (x, y) of a res x res picture covers columns
 * plot_x + x * scale .. plot_x + (x + 1) * scale - 1 and rows
 * plot_y + (res - 1 - y) * scale .. plot_y + (res - y) * scale - 1: row
 * numbers grow downwards, so size bin y = 0 is the bottom-most band.
 * The 1-pixel black frame sits just outside this area.
 */
struct png_render_layout {
	uint32_t width;	 /* whole image, px */
	uint32_t height; /* whole image, px */
	uint32_t plot_x; /* left-most column of the plot area (earliest time bin), px */
	uint32_t plot_y; /* top-most row of the plot area (largest size bin), px */
	uint32_t scale;	 /* px per cell on both axes: ceil(480 / res), at least 1 */
};

/*
 * Compute the layout png_render_flowpic() uses for the same res and opts.
 * Returns 0, or -EINVAL if res is outside 1..PNG_RENDER_MAX_RES or opts is
 * unusable (NULL, window_s outside 1e-6..1e9 s, max_size 0).
 */
int png_render_layout(uint32_t res, const struct png_render_opts *opts,
		      struct png_render_layout *lay);

/*
 * pic: res * res uint8 counts, row-major by y: pic[y * res + x], y = 0 is the
 * smallest size bin (drawn at the bottom), x = 0 the earliest time bin (drawn
 * at the left).  Writes the PNG to path, replacing any file there; a failed
 * write leaves no file behind.
 * Returns 0, or a negative errno with a one-line reason in err (which may be
 * NULL or errlen 0 if the caller does not want it), e.g.
 * "cannot open out.png: Permission denied".
 */
int png_render_flowpic(const char *path, const uint8_t *pic, uint32_t res,
		       const struct png_render_opts *opts, char *err, size_t errlen);

#endif /* FLOWPIC_PNG_RENDER_H */
