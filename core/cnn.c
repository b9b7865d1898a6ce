// SPDX-License-Identifier: MIT
/*
 * cnn.c - the CNN engine: memory, the choice of kernels, the sparse first
 * convolution, and the walk through a model's layers; see cnn.h.
 *
 * cnn_new() picks one set of kernels per cnn (cnn_kernels.h): AVX2
 * (cnn_avx2.c) where the CPU has it, else, or when asked, the reference
 * (cnn_ref.c).  Both are leaves: this file calls them, they never call back.
 *
 * Activations live in one arena of the size of the largest pair of
 * consecutive tensors: a layer reads from one end and writes to the other,
 * the next layer the other way round; ReLU and flatten work in place.
 */
#include "cnn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cnn_kernels.h"

/* Scratch of the sparse first convolution: every array is all zero between runs. */
struct sparse {
	int32_t *delta;	 /* [out_h * out_w][ocpad]: sum of scattered products */
	uint8_t *mark;	 /* [out_h * out_w]: 1 where delta was touched */
	uint8_t *counts; /* [in_c * res * res]: merged counts of cnn_run_sparse() */
	int32_t *wscat;	 /* [in_c][kh][kw][ocpad]: weights, output channel innermost */
	uint32_t ocpad;	 /* out_c rounded up to 8, zero padded */
	size_t taps;	 /* outputs an input pixel reaches, at most */
};

struct cnn {
	const struct model *m;
	unsigned int flags;
	bool sparse_ok;	       /* first layer conv2d and lut[0] == 0 */
	struct cnn_avx2 *avx2; /* NULL: reference kernels */
	int8_t *arena;
	size_t arena_size;
	size_t memory;
	struct sparse sp;
};

static bool in_place(const struct model_layer *l)
{
	return l->type == MODEL_RELU || l->type == MODEL_FLATTEN;
}

static size_t arena_size(const struct model *m)
{
	size_t best = model_tensor_size(m, -1), in = best, out;
	uint32_t i;

	for (i = 0; i < m->n_layers; i++) {
		out = model_tensor_size(m, (int)i);
		if (!in_place(&m->layers[i]) && in + out > best)
			best = in + out;
		in = out;
	}
	return best;
}

static int sparse_alloc(struct cnn *c)
{
	const struct model_layer *l = &c->m->layers[0];
	size_t npos = (size_t)l->out_h * l->out_w, k, nk = model_layer_k(l);
	struct sparse *s = &c->sp;
	uint32_t oc;

	s->ocpad = (l->out_c + 7) / 8 * 8;
	s->taps = (size_t)((l->kh + l->sh - 1) / l->sh) * ((l->kw + l->sw - 1) / l->sw);
	s->delta = calloc(npos * s->ocpad, sizeof(*s->delta));
	s->mark = calloc(npos, 1);
	s->wscat = calloc(nk * s->ocpad, sizeof(*s->wscat));
	if (!s->delta || !s->mark || !s->wscat)
		return -ENOMEM;
	for (oc = 0; oc < l->out_c; oc++)
		for (k = 0; k < nk; k++)
			s->wscat[k * s->ocpad + oc] = l->weight[oc * nk + k];
	c->memory += npos * (s->ocpad * 4 + 1) + nk * s->ocpad * 4;
	return 0;
}

static void sparse_free(struct sparse *s)
{
	free(s->delta);
	free(s->mark);
	free(s->counts);
	free(s->wscat);
}

static bool use_avx2(unsigned int flags)
{
	const char *env = getenv(CNN_ENV_REF);

	if (flags & CNN_REF)
		return false;
	if (env && *env && strcmp(env, "0"))
		return false;
	return cnn_avx2_supported();
}

struct cnn *cnn_new(const struct model *m, unsigned int flags)
{
	struct cnn *c;
	char why[256];

	if (model_check(m, why, sizeof(why))) {
		errno = EINVAL;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		goto fail;
	c->m = m;
	c->flags = flags;
	c->arena_size = arena_size(m);
	c->memory = c->arena_size;
	c->arena = aligned_alloc(64, (c->arena_size + 63) / 64 * 64);
	if (!c->arena)
		goto free_cnn;
	c->sp.counts = calloc(model_tensor_size(m, -1), 1);
	if (!c->sp.counts)
		goto free_cnn;
	c->memory += model_tensor_size(m, -1);
	c->sparse_ok = m->layers[0].type == MODEL_CONV2D && m->lut[0] == 0;
	if (c->sparse_ok && sparse_alloc(c))
		goto free_cnn;
	if (use_avx2(flags)) {
		c->avx2 = cnn_avx2_new(m);
		if (!c->avx2)
			goto free_cnn;
		c->memory += cnn_avx2_memory(c->avx2);
	}
	return c;
free_cnn:
	cnn_free(c);
fail:
	errno = ENOMEM;
	return NULL;
}

void cnn_free(struct cnn *c)
{
	if (!c)
		return;
	cnn_avx2_free(c->avx2);
	sparse_free(&c->sp);
	free(c->arena);
	free(c);
}

const char *cnn_path(const struct cnn *c)
{
	return c->avx2 ? "avx2" : "ref";
}

size_t cnn_memory(const struct cnn *c)
{
	return c->memory;
}

/* ---- sparse first convolution ---- */

/* Add input pixel (ch, iy, ix) with activation a into every output it reaches. */
static void scatter(struct cnn *c, uint32_t ch, uint32_t iy, uint32_t ix, int32_t a)
{
	const struct model_layer *l = &c->m->layers[0];
	uint32_t ty = iy + l->pad_top, tx = ix + l->pad_left, ky, kx;
	struct sparse *s = &c->sp;

	for (ky = ty % l->sh; ky < l->kh && ky <= ty; ky += l->sh) {
		uint32_t oy = (ty - ky) / l->sh;

		if (oy >= l->out_h)
			continue;
		for (kx = tx % l->sw; kx < l->kw && kx <= tx; kx += l->sw) {
			uint32_t ox = (tx - kx) / l->sw, pos = oy * l->out_w + ox;
			const int32_t *w;
			int32_t *d;

			if (ox >= l->out_w)
				continue;
			w = s->wscat + ((size_t)(ch * l->kh + ky) * l->kw + kx) * s->ocpad;
			d = s->delta + (size_t)pos * s->ocpad;
			s->mark[pos] = 1;
			if (c->avx2)
				cnn_avx2_axpy(d, w, a, s->ocpad);
			else
				cnn_axpy_ref(d, w, a, s->ocpad);
		}
	}
}

/* Eight bytes at p are all zero (skipping empty stretches). */
static bool zero8(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return !v;
}

/* The outputs of touched position pos, resetting its scratch. */
static void sparse_out(struct cnn *c, size_t pos, int8_t *out, size_t npos)
{
	int32_t *d = c->sp.delta + pos * c->sp.ocpad;

	c->sp.mark[pos] = 0;
	if (c->avx2)
		cnn_avx2_sparse_out(c->avx2, d, out + pos, npos);
	else
		cnn_sparse_out_ref(&c->m->layers[0], d, out + pos, npos);
}

/* Outputs nobody reached are the requantized bias.  The touched ones are
 * found in position order (the writes then go forward in each plane). */
static void sparse_finish(struct cnn *c, int8_t *out)
{
	const struct model_layer *l = &c->m->layers[0];
	size_t npos = (size_t)l->out_h * l->out_w, pos;
	int32_t lo = cnn_relu_lo(l);
	uint32_t oc;

	for (oc = 0; oc < l->out_c; oc++)
		memset(out + oc * npos, cnn_requant(l->bias[oc], l->mult[oc], l->shift[oc], lo),
		       npos);
	for (pos = 0; pos < npos; pos++) {
		if (pos + 8 <= npos && pos % 8 == 0 && zero8(c->sp.mark + pos)) {
			pos += 7;
			continue;
		}
		if (c->sp.mark[pos])
			sparse_out(c, pos, out, npos);
	}
}

static void sparse_from_pic(struct cnn *c, const uint8_t *pic, int8_t *out)
{
	const struct model *m = c->m;
	size_t i, n = model_tensor_size(m, -1), plane = (size_t)m->res * m->res;

	for (i = 0; i < n; i++) {
		if (i + 8 <= n && i % 8 == 0 && zero8(pic + i)) {
			i += 7;
			continue;
		}
		if (pic[i])
			scatter(c, (uint32_t)(i / plane), (uint32_t)(i % plane / m->res),
				(uint32_t)(i % m->res), m->lut[pic[i]]);
	}
	sparse_finish(c, out);
}

/* Non-zero bytes of p[0 .. n), counting stops above limit. */
static size_t nonzero(const uint8_t *p, size_t n, size_t limit)
{
	size_t i, nz = 0;

	for (i = 0; i < n && nz <= limit; i++) {
		if (i + 8 <= n && i % 8 == 0 && zero8(p + i)) {
			i += 7;
			continue;
		}
		nz += p[i] != 0;
	}
	return nz;
}

/* ---- running the layers ---- */

static int8_t *out_place(struct cnn *c, const int8_t *in, int i)
{
	if (in_place(&c->m->layers[i]))
		return (int8_t *)in;
	if (in == c->arena)
		return c->arena + c->arena_size - model_tensor_size(c->m, i);
	return c->arena;
}

static const int8_t *run_layers(struct cnn *c, const int8_t *in, uint32_t from)
{
	uint32_t i;

	for (i = from; i < c->m->n_layers; i++) {
		int8_t *out = out_place(c, in, (int)i);

		if (c->avx2)
			cnn_avx2_layer(c->avx2, i, in, out);
		else
			cnn_layer_ref(&c->m->layers[i], in, out);
		in = out;
	}
	return in;
}

/* e^x for x <= 0 without libm: 2^n * e^(f ln 2), f in [0, 1), Taylor to degree 11. */
static float exp_neg(float x)
{
	double t = (double)x * 1.4426950408889634, f, p = 1, term = 1;
	union {
		double d;
		uint64_t u;
	} two_n;
	int64_t n;
	int k;

	if (x < -700)
		return 0;
	n = (int64_t)t - (t < (double)(int64_t)t);
	f = (t - (double)n) * 0.6931471805599453;
	for (k = 1; k <= 11; k++) {
		term *= f / k;
		p += term;
	}
	two_n.u = (uint64_t)(n + 1023) << 52;
	return (float)(p * two_n.d);
}

static void finish(const struct cnn *c, const int8_t *logits, struct cnn_result *out)
{
	const struct model *m = c->m;
	float scale = m->layers[m->n_layers - 1].out_scale, sum = 0;
	uint32_t i;

	out->cls = 0;
	for (i = 0; i < m->n_classes; i++) {
		out->logits[i] = logits[i];
		out->logit[i] = logits[i] * scale;
		if (logits[i] > logits[out->cls])
			out->cls = i;
	}
	for (i = 0; i < m->n_classes; i++) {
		out->prob[i] = exp_neg(out->logit[i] - out->logit[out->cls]);
		sum += out->prob[i];
	}
	for (i = 0; i < m->n_classes; i++)
		out->prob[i] /= sum;
}

/*
 * Sparse when the scattered products cost less than the dense convolution:
 * at most 1/CNN_SPARSE_DIV as many (input pixel, output) pairs as outputs.
 * nz: non-zero input pixels (a bound), or counted here from pic.
 */
static bool want_sparse(const struct cnn *c, const uint8_t *pic, size_t nz)
{
	const struct model_layer *l = &c->m->layers[0];
	size_t limit;

	if (!c->sparse_ok || (c->flags & CNN_DENSE_FIRST))
		return false;
	if (c->flags & CNN_SPARSE_FIRST)
		return true;
	limit = (size_t)l->out_h * l->out_w / CNN_SPARSE_DIV / c->sp.taps;
	if (pic)
		nz = nonzero(pic, model_tensor_size(c->m, -1), limit);
	return nz <= limit;
}

int cnn_run(struct cnn *c, const uint8_t *pic, struct cnn_result *out)
{
	size_t i, n = model_tensor_size(c->m, -1);
	int8_t *first;

	if (want_sparse(c, pic, 0)) {
		first = out_place(c, c->arena, 0);
		sparse_from_pic(c, pic, first);
		finish(c, run_layers(c, first, 1), out);
		return 0;
	}
	for (i = 0; i < n; i++)
		c->arena[i] = c->m->lut[pic[i]];
	finish(c, run_layers(c, c->arena, 0), out);
	return 0;
}

static int cells_check(const struct model *m, const struct cell *cells, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (cells[i].x >= m->res || cells[i].y >= m->res || cells[i].dir > 1)
			return -EINVAL;
	return 0;
}

/* A cell's input channel (< 0: not in this model's picture) and pixel index. */
static inline int cell_pixel(const struct model *m, const struct cell *cell, size_t *px)
{
	int ch = cnn_cell_channel(m->dirs, cell);

	*px = ((size_t)(ch < 0 ? 0 : ch) * m->res + cell->y) * m->res + cell->x;
	return ch;
}

/* Add a cell's count to its pixel's merged count, saturating at 255. */
static inline uint8_t pixel_add(struct cnn *c, size_t px, uint8_t count)
{
	unsigned int sum = c->sp.counts[px] + count;

	c->sp.counts[px] = sum > 255 ? 255 : (uint8_t)sum;
	return c->sp.counts[px];
}

/* Merge the cells' counts into sp.counts, saturating at 255. */
static void cells_merge(struct cnn *c, const struct cell *cells, size_t n)
{
	size_t i, px;

	for (i = 0; i < n; i++)
		if (cell_pixel(c->m, &cells[i], &px) >= 0)
			pixel_add(c, px, cells[i].count);
}

/* Scatter each merged pixel once (clearing it as it goes). */
static void cells_scatter(struct cnn *c, const struct cell *cells, size_t n)
{
	const struct model *m = c->m;
	size_t i, px;

	for (i = 0; i < n; i++) {
		int ch = cell_pixel(m, &cells[i], &px);

		if (ch < 0 || !c->sp.counts[px])
			continue;
		scatter(c, (uint32_t)ch, cells[i].y, cells[i].x, m->lut[c->sp.counts[px]]);
		c->sp.counts[px] = 0;
	}
}

/* Dense input from cells (models without a sparse first layer, or forced). */
static void cells_dense(struct cnn *c, const struct cell *cells, size_t n)
{
	const struct model *m = c->m;
	size_t i, px, npx = model_tensor_size(m, -1);

	for (i = 0; i < npx; i++)
		c->arena[i] = m->lut[0];
	/* The arena holds activations: count the merged sum in a side plane. */
	for (i = 0; i < n; i++)
		if (cell_pixel(m, &cells[i], &px) >= 0)
			c->arena[px] = m->lut[pixel_add(c, px, cells[i].count)];
	for (i = 0; i < n; i++)
		if (cell_pixel(m, &cells[i], &px) >= 0)
			c->sp.counts[px] = 0;
}

int cnn_run_sparse(struct cnn *c, const struct cell *cells, size_t n, struct cnn_result *out)
{
	int8_t *first;

	if (cells_check(c->m, cells, n))
		return -EINVAL;
	if (!want_sparse(c, NULL, n)) {
		cells_dense(c, cells, n);
		finish(c, run_layers(c, c->arena, 0), out);
		return 0;
	}
	cells_merge(c, cells, n);
	cells_scatter(c, cells, n);
	first = out_place(c, c->arena, 0);
	sparse_finish(c, first);
	finish(c, run_layers(c, first, 1), out);
	return 0;
}
