// SPDX-License-Identifier: MIT
/*
 * png_render.c - draw a FlowPic into a greyscale canvas with a frame, ticks,
 * tick labels and axis titles, then write it with libpng; see png_render.h.
 *
 * Drawing happens into a plain width x height byte buffer (0 = black,
 * 255 = white); only the final write touches libpng, and every libpng call
 * that may longjmp sits in one small function so no caller local is live
 * across setjmp.
 */
#include "png_render.h"

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <png.h>

#include "core/log.h"

/* The plot area is scaled up to at least this width, px. */
#define PLOT_MIN_PX 480

/* Font: 5 columns x 8 rows (7 above the baseline, 1 descender), drawn 2x. */
#define FONT_W 5
#define FONT_H 8
#define FONT_CAP 7
#define FONT_SCALE 2
#define GLYPH_ADV ((FONT_W + 1) * FONT_SCALE) /* 12 px per character */
#define TEXT_H (FONT_H * FONT_SCALE)	      /* 16 px line height */
#define CAP_H (FONT_CAP * FONT_SCALE)	      /* 14 px digit height */

/* Margins, px. */
#define PAD 10	    /* image edge to the outermost text */
#define GAP 10	    /* between a tick label row and an axis title */
#define TICK_LEN 6  /* tick marks point outwards from the frame */
#define LABEL_GAP 4 /* tick end to its label */

/* A dark grey, never lighter than this for a non-zero cell (168 at 1 packet). */
#define INK_MAX 192.0

#define WINDOW_MIN_S 1e-6
#define WINDOW_MAX_S 1e9
#define MAX_TICKS 8
#define LABEL_LEN 32

/* Bit 4 is the left-most column; rows top to bottom, row 7 is below the baseline. */
struct glyph {
	char ch;
	uint8_t rows[FONT_H];
};

static const struct glyph font[] = {
	{ ' ', { 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 } },
	{ '0', { 0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e, 0x00 } },
	{ '1', { 0x04, 0x0c, 0x14, 0x04, 0x04, 0x04, 0x1f, 0x00 } },
	{ '2', { 0x0e, 0x11, 0x01, 0x06, 0x08, 0x10, 0x1f, 0x00 } },
	{ '3', { 0x1e, 0x01, 0x01, 0x0e, 0x01, 0x01, 0x1e, 0x00 } },
	{ '4', { 0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02, 0x00 } },
	{ '5', { 0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e, 0x00 } },
	{ '6', { 0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e, 0x00 } },
	{ '7', { 0x1f, 0x01, 0x02, 0x04, 0x04, 0x08, 0x08, 0x00 } },
	{ '8', { 0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e, 0x00 } },
	{ '9', { 0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c, 0x00 } },
	{ 'A', { 0x0e, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11, 0x00 } },
	{ 'B', { 0x1e, 0x11, 0x11, 0x1e, 0x11, 0x11, 0x1e, 0x00 } },
	{ 'C', { 0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e, 0x00 } },
	{ 'D', { 0x1c, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1c, 0x00 } },
	{ 'E', { 0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f, 0x00 } },
	{ 'F', { 0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x10, 0x00 } },
	{ 'G', { 0x0e, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0f, 0x00 } },
	{ 'H', { 0x11, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11, 0x00 } },
	{ 'I', { 0x0e, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e, 0x00 } },
	{ 'J', { 0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0c, 0x00 } },
	{ 'K', { 0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11, 0x00 } },
	{ 'L', { 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f, 0x00 } },
	{ 'M', { 0x11, 0x1b, 0x15, 0x15, 0x11, 0x11, 0x11, 0x00 } },
	{ 'N', { 0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11, 0x00 } },
	{ 'O', { 0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e, 0x00 } },
	{ 'P', { 0x1e, 0x11, 0x11, 0x1e, 0x10, 0x10, 0x10, 0x00 } },
	{ 'Q', { 0x0e, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0d, 0x00 } },
	{ 'R', { 0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11, 0x00 } },
	{ 'S', { 0x0f, 0x10, 0x10, 0x0e, 0x01, 0x01, 0x1e, 0x00 } },
	{ 'T', { 0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x00 } },
	{ 'U', { 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e, 0x00 } },
	{ 'V', { 0x11, 0x11, 0x11, 0x11, 0x11, 0x0a, 0x04, 0x00 } },
	{ 'W', { 0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0a, 0x00 } },
	{ 'X', { 0x11, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0x11, 0x00 } },
	{ 'Y', { 0x11, 0x11, 0x0a, 0x04, 0x04, 0x04, 0x04, 0x00 } },
	{ 'Z', { 0x1f, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1f, 0x00 } },
	{ 'a', { 0x00, 0x00, 0x0e, 0x01, 0x0f, 0x11, 0x0f, 0x00 } },
	{ 'b', { 0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1e, 0x00 } },
	{ 'c', { 0x00, 0x00, 0x0e, 0x10, 0x10, 0x11, 0x0e, 0x00 } },
	{ 'd', { 0x01, 0x01, 0x0d, 0x13, 0x11, 0x11, 0x0f, 0x00 } },
	{ 'e', { 0x00, 0x00, 0x0e, 0x11, 0x1f, 0x10, 0x0e, 0x00 } },
	{ 'f', { 0x06, 0x09, 0x08, 0x1c, 0x08, 0x08, 0x08, 0x00 } },
	{ 'g', { 0x00, 0x00, 0x0f, 0x11, 0x11, 0x0f, 0x01, 0x0e } },
	{ 'h', { 0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11, 0x00 } },
	{ 'i', { 0x04, 0x00, 0x0c, 0x04, 0x04, 0x04, 0x0e, 0x00 } },
	{ 'j', { 0x02, 0x00, 0x06, 0x02, 0x02, 0x02, 0x12, 0x0c } },
	{ 'k', { 0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12, 0x00 } },
	{ 'l', { 0x0c, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e, 0x00 } },
	{ 'm', { 0x00, 0x00, 0x1a, 0x15, 0x15, 0x11, 0x11, 0x00 } },
	{ 'n', { 0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11, 0x00 } },
	{ 'o', { 0x00, 0x00, 0x0e, 0x11, 0x11, 0x11, 0x0e, 0x00 } },
	{ 'p', { 0x00, 0x00, 0x1e, 0x11, 0x11, 0x1e, 0x10, 0x10 } },
	{ 'q', { 0x00, 0x00, 0x0f, 0x11, 0x11, 0x0f, 0x01, 0x01 } },
	{ 'r', { 0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10, 0x00 } },
	{ 's', { 0x00, 0x00, 0x0f, 0x10, 0x0e, 0x01, 0x1e, 0x00 } },
	{ 't', { 0x08, 0x08, 0x1c, 0x08, 0x08, 0x09, 0x06, 0x00 } },
	{ 'u', { 0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0d, 0x00 } },
	{ 'v', { 0x00, 0x00, 0x11, 0x11, 0x11, 0x0a, 0x04, 0x00 } },
	{ 'w', { 0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0a, 0x00 } },
	{ 'x', { 0x00, 0x00, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0x00 } },
	{ 'y', { 0x00, 0x00, 0x11, 0x11, 0x11, 0x0f, 0x01, 0x0e } },
	{ 'z', { 0x00, 0x00, 0x1f, 0x02, 0x04, 0x08, 0x1f, 0x00 } },
	{ '(', { 0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02, 0x00 } },
	{ ')', { 0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08, 0x00 } },
	{ '[', { 0x0e, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0e, 0x00 } },
	{ ']', { 0x0e, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0e, 0x00 } },
	{ '.', { 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x0c, 0x00 } },
	{ ',', { 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x04, 0x08 } },
	{ ':', { 0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x0c, 0x00, 0x00 } },
	{ ';', { 0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x04, 0x08, 0x00 } },
	{ '-', { 0x00, 0x00, 0x00, 0x0e, 0x00, 0x00, 0x00, 0x00 } },
	{ '+', { 0x00, 0x04, 0x04, 0x1f, 0x04, 0x04, 0x00, 0x00 } },
	{ '=', { 0x00, 0x00, 0x1f, 0x00, 0x1f, 0x00, 0x00, 0x00 } },
	{ '/', { 0x01, 0x02, 0x02, 0x04, 0x08, 0x08, 0x10, 0x00 } },
	{ '_', { 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1f, 0x00 } },
	{ '%', { 0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03, 0x00 } },
	{ '#', { 0x0a, 0x0a, 0x1f, 0x0a, 0x1f, 0x0a, 0x0a, 0x00 } },
	{ '\'', { 0x04, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00 } },
};

/* Drawn for any character the table lacks, so a gap is never silent. */
static const uint8_t unknown_glyph[FONT_H] = { 0x1f, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1f, 0x00 };

struct canvas {
	uint8_t *px; /* w * h bytes, row-major, 0 = black, 255 = white */
	int w, h;
};

/* Tick i sits at i * step for i = 0..n, label printed with `decimals` digits. */
struct ticks {
	double step;
	unsigned n;
	int decimals;
};

/* Everything the drawing needs, derived from res and opts only. */
struct geom {
	struct png_render_layout lay;
	uint32_t res;
	int plot_w, plot_h; /* px, res * scale */
	struct ticks xt, yt;
	double xspan, yspan; /* s, bytes */
	size_t title_len;    /* characters drawn, after the cut */
	int ylabel_w;	     /* widest y tick label, px */
};

static const uint8_t *glyph_rows(char ch)
{
	size_t i;

	for (i = 0; i < sizeof(font) / sizeof(font[0]); i++)
		if (font[i].ch == ch)
			return font[i].rows;
	return unknown_glyph;
}

static int text_width(size_t len)
{
	return len ? (int)len * GLYPH_ADV - FONT_SCALE : 0;
}

/* Ink a FONT_SCALE-sized square; anything off the canvas is clipped. */
static void put_dot(struct canvas *cv, int x, int y)
{
	int dx, dy;

	for (dy = 0; dy < FONT_SCALE; dy++) {
		for (dx = 0; dx < FONT_SCALE; dx++) {
			if (x + dx < 0 || x + dx >= cv->w || y + dy < 0 || y + dy >= cv->h)
				continue;
			cv->px[(size_t)(y + dy) * cv->w + x + dx] = 0;
		}
	}
}

/*
 * Upright text: (x, y) is the top-left corner of the first glyph.
 * Rotated text reads bottom to top (90 degrees anticlockwise): (x, y) is the
 * bottom-left corner, glyph tops face left.
 */
static void draw_text(struct canvas *cv, int x, int y, const char *s, size_t len, int rotated)
{
	const uint8_t *rows;
	size_t i;
	int r, c;

	for (i = 0; i < len; i++) {
		rows = glyph_rows(s[i]);
		for (r = 0; r < FONT_H; r++) {
			for (c = 0; c < FONT_W; c++) {
				if (!(rows[r] & (0x10 >> c)))
					continue;
				if (rotated)
					put_dot(cv, x + r * FONT_SCALE,
						y - (int)i * GLYPH_ADV - (c + 1) * FONT_SCALE);
				else
					put_dot(cv, x + (int)i * GLYPH_ADV + c * FONT_SCALE,
						y + r * FONT_SCALE);
			}
		}
	}
}

static void fill_rect(struct canvas *cv, int x0, int y0, int x1, int y1, uint8_t v)
{
	int x, y;

	for (y = y0; y <= y1; y++)
		for (x = x0; x <= x1; x++)
			if (x >= 0 && x < cv->w && y >= 0 && y < cv->h)
				cv->px[(size_t)y * cv->w + x] = v;
}

/*
 * Pick a tick step m * 10^k, m in {1, 1.5, 2, 2.5, 3, 5}, giving 2..8
 * intervals.  Prefer steps that put a tick on the axis end, then about four
 * intervals, then fewer: 60 s -> 15 s, 1500 B -> 500 B, 1 s -> 0.25 s.
 */
static void nice_ticks(double span, struct ticks *t)
{
	static const double mant[] = { 1, 1.5, 2, 2.5, 3, 5 };
	double step, q, p10;
	unsigned best = ~0u, score, n;
	int k, k0 = (int)floor(log10(span)), m, d;

	t->step = span;
	t->n = 1;
	for (k = k0 - 2; k <= k0; k++) {
		p10 = pow(10.0, k);
		for (m = 0; m < (int)(sizeof(mant) / sizeof(mant[0])); m++) {
			step = mant[m] * p10;
			q = span / step;
			n = (unsigned)floor(q + 1e-9);
			if (n < 2 || n > MAX_TICKS)
				continue;
			score = (fabs(q - round(q)) < 1e-6 ? 0 : 100) +
				2 * (unsigned)abs((int)n - 4) + (n > 4);
			if (score < best) {
				best = score;
				t->step = step;
				t->n = n;
			}
		}
	}
	/* Fewest decimals that print the step exactly (0.25 -> 2). */
	for (d = 0; d < 9; d++) {
		q = t->step * pow(10.0, d);
		if (fabs(q - round(q)) < 1e-6 * q)
			break;
	}
	t->decimals = d;
}

static int tick_label(const struct ticks *t, unsigned i, char *buf)
{
	int n = snprintf(buf, LABEL_LEN, "%.*f", t->decimals, i * t->step);

	return n < 0 ? 0 : (n >= LABEL_LEN ? LABEL_LEN - 1 : n);
}

static int check_opts(uint32_t res, const struct png_render_opts *opts, char *err, size_t errlen)
{
	if (res < 1 || res > PNG_RENDER_MAX_RES) {
		log_errbuf(err, errlen, "picture resolution %u is outside 1..%u", res,
			   PNG_RENDER_MAX_RES);
		return -EINVAL;
	}
	if (!opts) {
		log_errbuf(err, errlen, "no render options");
		return -EINVAL;
	}
	if (!(opts->window_s >= WINDOW_MIN_S && opts->window_s <= WINDOW_MAX_S)) {
		log_errbuf(err, errlen, "time window %g s is outside %g..%g s", opts->window_s,
			   WINDOW_MIN_S, WINDOW_MAX_S);
		return -EINVAL;
	}
	if (!opts->max_size) {
		log_errbuf(err, errlen, "size axis top is 0 bytes");
		return -EINVAL;
	}
	return 0;
}

static int widest_label(const struct ticks *t)
{
	char buf[LABEL_LEN];
	int w, best = 0;
	unsigned i;

	for (i = 0; i <= t->n; i++) {
		w = text_width((size_t)tick_label(t, i, buf));
		if (w > best)
			best = w;
	}
	return best;
}

static void compute_geom(uint32_t res, const struct png_render_opts *opts, struct geom *g)
{
	struct png_render_layout *lay = &g->lay;
	char buf[LABEL_LEN];
	int left, top, right, bottom, w, last_w;

	memset(g, 0, sizeof(*g));
	g->res = res;
	g->xspan = opts->window_s;
	g->yspan = opts->max_size;
	lay->scale = res >= PLOT_MIN_PX ? 1 : (PLOT_MIN_PX + res - 1) / res;
	g->plot_w = g->plot_h = (int)(res * lay->scale);
	nice_ticks(g->xspan, &g->xt);
	nice_ticks(g->yspan, &g->yt);
	g->ylabel_w = widest_label(&g->yt);
	if (opts->title)
		g->title_len = strnlen(opts->title, PNG_RENDER_TITLE_MAX);

	/* Left: rotated axis title, tick labels, tick, frame. */
	left = PAD + TEXT_H + GAP + g->ylabel_w + LABEL_GAP + TICK_LEN + 1;
	/* Top: room for half the top y label, plus the title line. */
	top = PAD + CAP_H / 2 + 1 + (g->title_len ? TEXT_H + GAP : 0);
	bottom = 1 + TICK_LEN + LABEL_GAP + TEXT_H + GAP + TEXT_H + PAD;
	/* Right: the last x label is centred on the frame and sticks out by half. */
	last_w = text_width((size_t)tick_label(&g->xt, g->xt.n, buf));
	right = 1 + (last_w / 2 + PAD > 2 * PAD ? last_w / 2 + PAD : 2 * PAD);

	w = left + g->plot_w + right;
	if (text_width(g->title_len) + 2 * PAD > w)
		w = text_width(g->title_len) + 2 * PAD;
	lay->plot_x = (uint32_t)left;
	lay->plot_y = (uint32_t)top;
	lay->width = (uint32_t)w;
	lay->height = (uint32_t)(top + g->plot_h + bottom);
}

int png_render_layout(uint32_t res, const struct png_render_opts *opts,
		      struct png_render_layout *lay)
{
	struct geom g;
	int ret;

	if (!lay)
		return -EINVAL;
	ret = check_opts(res, opts, NULL, 0);
	if (ret)
		return ret;
	compute_geom(res, opts, &g);
	*lay = g.lay;
	return 0;
}

/* 0 packets -> white; 1 -> 168, 255 -> 0: log(1 + c) / log(256) of INK_MAX. */
static void make_palette(uint8_t lut[256])
{
	int c;

	lut[0] = 255;
	for (c = 1; c < 256; c++)
		lut[c] = (uint8_t)lround(INK_MAX * (1.0 - log1p(c) / log(256.0)));
}

static void draw_cells(struct canvas *cv, const struct geom *g, const uint8_t *pic)
{
	uint32_t s = g->lay.scale, res = g->res, x, y, k;
	uint8_t lut[256];
	uint8_t *row, *dst;

	make_palette(lut);
	for (y = 0; y < res; y++) {
		/* Size bin y = 0 is the bottom band of the plot. */
		row = cv->px + (size_t)(g->lay.plot_y + (res - 1 - y) * s) * cv->w + g->lay.plot_x;
		for (x = 0; x < res; x++)
			memset(row + (size_t)x * s, lut[pic[(size_t)y * res + x]], s);
		for (k = 1; k < s; k++) {
			dst = row + (size_t)k * cv->w;
			memcpy(dst, row, (size_t)g->plot_w);
		}
	}
}

/* Frame lines sit one pixel outside the plot area on every side. */
static void draw_frame(struct canvas *cv, const struct geom *g)
{
	int x0 = (int)g->lay.plot_x - 1, y0 = (int)g->lay.plot_y - 1;
	int x1 = (int)g->lay.plot_x + g->plot_w, y1 = (int)g->lay.plot_y + g->plot_h;

	fill_rect(cv, x0, y0, x1, y0, 0);
	fill_rect(cv, x0, y1, x1, y1, 0);
	fill_rect(cv, x0, y0, x0, y1, 0);
	fill_rect(cv, x1, y0, x1, y1, 0);
}

/* Value 0 maps onto the left frame line, the span onto the right one. */
static void draw_xaxis(struct canvas *cv, const struct geom *g)
{
	int base = (int)g->lay.plot_y + g->plot_h + 1, px, len, top;
	char buf[LABEL_LEN];
	unsigned i;

	for (i = 0; i <= g->xt.n; i++) {
		px = (int)g->lay.plot_x - 1 +
		     (int)lround(i * g->xt.step / g->xspan * (g->plot_w + 1));
		fill_rect(cv, px, base, px, base + TICK_LEN - 1, 0);
		len = tick_label(&g->xt, i, buf);
		draw_text(cv, px - text_width((size_t)len) / 2, base + TICK_LEN + LABEL_GAP, buf,
			  (size_t)len, 0);
	}
	top = base + TICK_LEN + LABEL_GAP + TEXT_H + GAP;
	draw_text(cv, (int)g->lay.plot_x + (g->plot_w - text_width(8)) / 2, top, "time (s)", 8, 0);
}

/* Value 0 maps onto the bottom frame line, the span onto the top one. */
static void draw_yaxis(struct canvas *cv, const struct geom *g)
{
	int edge = (int)g->lay.plot_x - 2, py, len, bottom;
	int y1 = (int)g->lay.plot_y + g->plot_h;
	char buf[LABEL_LEN];
	unsigned i;

	for (i = 0; i <= g->yt.n; i++) {
		py = y1 - (int)lround(i * g->yt.step / g->yspan * (g->plot_h + 1));
		fill_rect(cv, edge - TICK_LEN + 1, py, edge, py, 0);
		len = tick_label(&g->yt, i, buf);
		draw_text(cv, edge - TICK_LEN + 1 - LABEL_GAP - text_width((size_t)len),
			  py - CAP_H / 2, buf, (size_t)len, 0);
	}
	bottom = (int)g->lay.plot_y + (g->plot_h + text_width(8)) / 2;
	draw_text(cv, PAD, bottom, "size (B)", 8, 1);
}

/* Centred over the plot when it fits, else kept inside the image. */
static void draw_title(struct canvas *cv, const struct geom *g, const char *title)
{
	int tw = text_width(g->title_len);
	int x = (int)g->lay.plot_x + (g->plot_w - tw) / 2;

	if (x + tw > cv->w - PAD)
		x = cv->w - PAD - tw;
	if (x < PAD)
		x = PAD;
	draw_text(cv, x, PAD, title, g->title_len, 0);
}

struct png_err_ctx {
	char *err;
	size_t errlen;
	const char *path;
	int sys_errno; /* errno when libpng gave up, 0 if not an I/O failure */
};

static void png_error_cb(png_structp png, png_const_charp msg)
{
	struct png_err_ctx *ctx = png_get_error_ptr(png);

	/* libpng's "Write Error" hides why fwrite failed; errno still knows. */
	ctx->sys_errno = errno;
	if (ctx->sys_errno)
		log_errbuf(ctx->err, ctx->errlen, "cannot write %s: libpng: %s (%s)", ctx->path,
			   msg, strerror(ctx->sys_errno));
	else
		log_errbuf(ctx->err, ctx->errlen, "cannot write %s: libpng: %s", ctx->path, msg);
	png_longjmp(png, 1);
}

/* Warnings do not spoil the file; stay quiet rather than print to stderr. */
static void png_warn_cb(png_structp png, png_const_charp msg)
{
	(void)png;
	(void)msg;
}

/*
 * All libpng calls that can longjmp.  Nothing written after setjmp is read
 * after the jump, so no local needs volatile.
 */
static int png_emit(png_structp png, png_infop info, FILE *fp, const struct canvas *cv,
		    const char *title)
{
	int y;

	if (setjmp(png_jmpbuf(png)))
		return -EIO;
	png_init_io(png, fp);
	png_set_IHDR(png, info, (png_uint_32)cv->w, (png_uint_32)cv->h, 8, PNG_COLOR_TYPE_GRAY,
		     PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	if (title && *title) {
		/* The whole title as a tEXt chunk: what programs (and the tests)
		 * read, uncut; the drawn line is for people. */
		png_text t = { .compression = PNG_TEXT_COMPRESSION_NONE,
			       .key = (png_charp) "Title",
			       .text = (png_charp)title,
			       .text_length = strlen(title) };

		png_set_text(png, info, &t, 1);
	}
	png_write_info(png, info);
	for (y = 0; y < cv->h; y++)
		png_write_row(png, cv->px + (size_t)y * cv->w);
	png_write_end(png, NULL);
	return 0;
}

/* Only a half-written regular file is removed; never a device such as /dev/stdout. */
static int is_regular(FILE *fp)
{
	struct stat st;

	return !fstat(fileno(fp), &st) && S_ISREG(st.st_mode);
}

static int write_png(const char *path, const struct canvas *cv, const char *title, char *err,
		     size_t errlen)
{
	struct png_err_ctx ctx = { err, errlen, path, 0 };
	png_structp png;
	png_infop info;
	int regular;
	FILE *fp;
	int ret;

	fp = fopen(path, "wb");
	if (!fp) {
		ret = -errno;
		log_errbuf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return ret;
	}
	regular = is_regular(fp);
	png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, png_error_cb, png_warn_cb);
	if (!png) {
		ret = -ENOMEM;
		log_errbuf(err, errlen, "cannot write %s: out of memory", path);
		goto close_file;
	}
	info = png_create_info_struct(png);
	if (!info) {
		ret = -ENOMEM;
		log_errbuf(err, errlen, "cannot write %s: out of memory", path);
		goto destroy_png;
	}
	errno = 0;
	ret = png_emit(png, info, fp, cv, title);
	if (ret && ctx.sys_errno)
		ret = -ctx.sys_errno;
destroy_png:
	png_destroy_write_struct(&png, info ? &info : NULL);
close_file:
	/* fclose flushes: a full disk may only show up here. */
	if (fclose(fp) && !ret) {
		ret = -errno;
		log_errbuf(err, errlen, "cannot write %s: %s", path, strerror(errno));
	}
	if (ret && regular)
		remove(path);
	return ret;
}

int png_render_flowpic(const char *path, const uint8_t *pic, uint32_t res,
		       const struct png_render_opts *opts, char *err, size_t errlen)
{
	struct canvas cv;
	struct geom g;
	int ret;

	if (!path || !pic) {
		log_errbuf(err, errlen, "no %s given", path ? "picture" : "output path");
		return -EINVAL;
	}
	ret = check_opts(res, opts, err, errlen);
	if (ret)
		return ret;
	compute_geom(res, opts, &g);
	cv.w = (int)g.lay.width;
	cv.h = (int)g.lay.height;
	cv.px = malloc((size_t)cv.w * (size_t)cv.h);
	if (!cv.px) {
		log_errbuf(err, errlen, "cannot render %s: out of memory", path);
		return -ENOMEM;
	}
	memset(cv.px, 255, (size_t)cv.w * (size_t)cv.h);
	draw_cells(&cv, &g, pic);
	draw_frame(&cv, &g);
	draw_xaxis(&cv, &g);
	draw_yaxis(&cv, &g);
	if (g.title_len)
		draw_title(&cv, &g, opts->title);
	ret = write_png(path, &cv, opts->title, err, errlen);
	free(cv.px);
	return ret;
}
