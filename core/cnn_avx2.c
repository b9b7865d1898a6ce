// SPDX-License-Identifier: MIT
/*
 * cnn_avx2.c - the AVX2 kernels: the same integer results as the reference
 * kernels in cnn_ref.c, faster.  Only these functions are compiled for AVX2
 * (target attribute), so the rest of the build runs on any x86-64, and
 * cnn_new() (cnn.c) picks this path at run time when the CPU has AVX2.
 * A leaf like cnn_ref.c: it includes cnn_kernels.h, not the engine's cnn.h.
 * Over 700 lines on purpose: one kernel per layer kind, each with its own
 * remainder handling next to its vector loop, as the reference beside it.
 *
 * Multiplies are int16 x int16 -> int32 pair sums (vpmaddwd) on int8 values
 * widened to 16 bits: each pair sum is at most 2 * 128 * 127 in magnitude,
 * far from saturation, and int32 accumulation cannot overflow because the
 * loader bounds |bias| + K * 127 * 128 by 2^30.  vpmaddubsw, whose 16-bit
 * sums saturate, is not used.
 *
 * Convolution: per tile of 16 output positions, gather the input patches
 * as int16 pairs (im2col; with stride 1, straight from 16 contiguous input
 * bytes per patch element), then for each group of 4 output channels
 * broadcast a weight pair and multiply-accumulate 16 positions at once.
 * Dense: dot products of the widened input with 4 weight rows at a time.
 * Max-pool: vertical maxima of 32 bytes, then pairs for the 2x2/2 case.
 * The sparse first convolution (the engine's, cnn.c) uses axpy and
 * requantization helpers from here.
 * The requantization is cnn_requant() on 8 lanes: 32 x 32 -> 64-bit
 * products, the rounding constant, and the shift done as "high half of
 * 2z" (exact floor(z / 2^31), as |z| < 2^62) then an arithmetic shift.
 */
#include "cnn_kernels.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>

#define AVX2 __attribute__((target("avx2")))
#define TILE 16 /* output positions per convolution tile */
#define OCB 4	/* output channels per microkernel */

struct avx2_layer {
	int32_t *wpair; /* conv: [kp][ocpad] pairs (w[2j], w[2j+1]) as int16 */
	int8_t *wpad;	/* dense: [ocpad][kpad], zero padded */
	int32_t *bias;	/* [ocpad], zero padded */
	int32_t *off;	/* conv: [2 kp] offset of patch element k from the patch origin */
	uint32_t k, kp, kpad, ocpad;
};

struct cnn_avx2 {
	const struct model *m;
	struct avx2_layer *layers;
	int8_t *gather;	     /* conv: [TILE][kpad] one patch per position */
	int32_t *patch;	     /* conv: [kp][TILE] int16 pairs */
	int32_t *acc;	     /* conv: [ocpad][TILE] */
	int16_t *xw;	     /* dense: the input widened, [kpad] */
	int8_t *row;	     /* maxpool: vertical maximum of one output row */
	struct rq *first;    /* layer 0 conv2d, 8 channels a group: the sparse outputs */
	int32_t *first_bias; /* [8 groups], zero padded */
	size_t memory;
};

bool cnn_avx2_supported(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2");
}

static uint32_t round_up(uint32_t v, uint32_t a)
{
	return (v + a - 1) / a * a;
}

static void *zalloc(struct cnn_avx2 *a, size_t size)
{
	size_t n = (size + 63) / 64 * 64;
	void *p = aligned_alloc(64, n ? n : 64);

	if (p) {
		memset(p, 0, n ? n : 64);
		a->memory += n;
	}
	return p;
}

/* ---- preparing the weights ---- */

/* off[k] for k = (ic, ky, kx); an odd k's partner repeats the last (its weight is 0). */
static int prep_offsets(struct cnn_avx2 *a, struct avx2_layer *al, const struct model_layer *l)
{
	uint32_t k;

	al->off = zalloc(a, (size_t)al->kp * 2 * 4);
	if (!al->off)
		return -ENOMEM;
	for (k = 0; k < al->k; k++) {
		uint32_t kx = k % l->kw, ky = k / l->kw % l->kh, ic = k / l->kw / l->kh;

		al->off[k] = (int32_t)(((size_t)ic * l->in_h + ky) * l->in_w + kx);
	}
	if (al->k % 2)
		al->off[al->k] = al->off[al->k - 1];
	return 0;
}

static int prep_conv(struct cnn_avx2 *a, struct avx2_layer *al, const struct model_layer *l)
{
	uint32_t oc, j;

	al->wpair = zalloc(a, (size_t)al->kp * al->ocpad * 4);
	if (!al->wpair)
		return -ENOMEM;
	for (oc = 0; oc < l->out_c; oc++) {
		const int8_t *w = l->weight + (size_t)oc * al->k;

		for (j = 0; j < al->kp; j++) {
			uint16_t lo = (uint16_t)w[2 * j];
			uint16_t hi = 2 * j + 1 < al->k ? (uint16_t)w[2 * j + 1] : 0;

			al->wpair[(size_t)j * al->ocpad + oc] = (int32_t)(lo | (uint32_t)hi << 16);
		}
	}
	return prep_offsets(a, al, l);
}

static int prep_dense(struct cnn_avx2 *a, struct avx2_layer *al, const struct model_layer *l)
{
	uint32_t oc;

	al->wpad = zalloc(a, (size_t)al->ocpad * al->kpad);
	if (!al->wpad)
		return -ENOMEM;
	for (oc = 0; oc < l->out_c; oc++)
		memcpy(al->wpad + (size_t)oc * al->kpad, l->weight + (size_t)oc * al->k, al->k);
	return 0;
}

struct scratch_need {
	size_t gather, patch, acc, xw, row;
};

static int prep_layer(struct cnn_avx2 *a, uint32_t i, struct scratch_need *need)
{
	const struct model_layer *l = &a->m->layers[i];
	struct avx2_layer *al = &a->layers[i];
	size_t v;

	if (l->type == MODEL_MAXPOOL) {
		v = (size_t)l->in_w + 64;
		need->row = v > need->row ? v : need->row;
		return 0;
	}
	if (l->type != MODEL_CONV2D && l->type != MODEL_DENSE)
		return 0;
	al->k = model_layer_k(l);
	al->kp = (al->k + 1) / 2;
	al->kpad = round_up(al->k + 1, 32); /* room for the odd k's zero partner */
	al->ocpad = round_up(l->out_c, OCB);
	al->bias = zalloc(a, (size_t)al->ocpad * 4);
	if (!al->bias)
		return -ENOMEM;
	memcpy(al->bias, l->bias, (size_t)l->out_c * 4);
	if (l->type == MODEL_DENSE) {
		v = (size_t)al->kpad * 2;
		need->xw = v > need->xw ? v : need->xw;
		return prep_dense(a, al, l);
	}
	v = (size_t)TILE * al->kpad;
	need->gather = v > need->gather ? v : need->gather;
	v = (size_t)al->kp * TILE * 4;
	need->patch = v > need->patch ? v : need->patch;
	v = (size_t)al->ocpad * TILE * 4;
	need->acc = v > need->acc ? v : need->acc;
	return prep_conv(a, al, l);
}

static int prep_first(struct cnn_avx2 *a);

struct cnn_avx2 *cnn_avx2_new(const struct model *m)
{
	struct scratch_need need = { 0 };
	struct cnn_avx2 *a;
	uint32_t i;

	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->m = m;
	a->layers = calloc(m->n_layers, sizeof(*a->layers));
	if (!a->layers)
		goto free_avx2;
	for (i = 0; i < m->n_layers; i++)
		if (prep_layer(a, i, &need))
			goto free_avx2;
	a->gather = zalloc(a, need.gather + 16); /* patch_one() copies 16 bytes */
	a->patch = zalloc(a, need.patch);
	a->acc = zalloc(a, need.acc);
	a->xw = zalloc(a, need.xw);
	a->row = zalloc(a, need.row);
	if (!a->gather || !a->patch || !a->acc || !a->xw || !a->row || prep_first(a))
		goto free_avx2;
	return a;
free_avx2:
	cnn_avx2_free(a);
	errno = ENOMEM;
	return NULL;
}

void cnn_avx2_free(struct cnn_avx2 *a)
{
	uint32_t i;

	if (!a)
		return;
	for (i = 0; a->layers && i < a->m->n_layers; i++) {
		free(a->layers[i].wpair);
		free(a->layers[i].wpad);
		free(a->layers[i].bias);
		free(a->layers[i].off);
	}
	free(a->layers);
	free(a->gather);
	free(a->patch);
	free(a->acc);
	free(a->xw);
	free(a->row);
	free(a->first);
	free(a->first_bias);
	free(a);
}

size_t cnn_avx2_memory(const struct cnn_avx2 *a)
{
	return a->memory;
}

/* ---- requantization, 8 lanes at a time ---- */

/* Parameters of 8 lanes; "even" / "odd": for lanes 0, 2, 4, 6 / 1, 3, 5, 7 in 64 bits. */
struct rq {
	__m256i mult_even, mult_odd, round_even, round_odd, shift, lo, hi;
};

/* The same parameters in every lane. */
AVX2 static inline void rq_set(struct rq *q, int32_t mult, int32_t shift, int32_t lo)
{
	q->mult_even = q->mult_odd = _mm256_set1_epi32(mult);
	q->round_even = q->round_odd = _mm256_set1_epi64x((int64_t)1 << (30 + shift));
	q->shift = _mm256_set1_epi32(shift);
	q->lo = _mm256_set1_epi32(lo);
	q->hi = _mm256_set1_epi32(127);
}

/* Lane i: channel c0 + i of l (channels past out_c: multiplier 0). */
AVX2 static void rq_lanes(struct rq *q, const struct model_layer *l, uint32_t c0)
{
	int32_t m[8] = { 0 }, sh[8] = { 0 };
	uint32_t i;

	for (i = 0; i < 8 && c0 + i < l->out_c; i++) {
		m[i] = l->mult[c0 + i];
		sh[i] = l->shift[c0 + i];
	}
	q->mult_even = _mm256_loadu_si256((const __m256i *)m);
	q->mult_odd = _mm256_srli_epi64(q->mult_even, 32);
	q->round_even = _mm256_set_epi64x((int64_t)1 << (30 + sh[6]), (int64_t)1 << (30 + sh[4]),
					  (int64_t)1 << (30 + sh[2]), (int64_t)1 << (30 + sh[0]));
	q->round_odd = _mm256_set_epi64x((int64_t)1 << (30 + sh[7]), (int64_t)1 << (30 + sh[5]),
					 (int64_t)1 << (30 + sh[3]), (int64_t)1 << (30 + sh[1]));
	q->shift = _mm256_loadu_si256((const __m256i *)sh);
	q->lo = _mm256_set1_epi32(cnn_relu_lo(l));
	q->hi = _mm256_set1_epi32(127);
}

/* Requantization parameters and biases of a first conv2d layer, 8 channels a group. */
AVX2 static int prep_first(struct cnn_avx2 *a)
{
	const struct model_layer *l = &a->m->layers[0];
	uint32_t g, ng = (l->out_c + 7) / 8;

	if (l->type != MODEL_CONV2D)
		return 0;
	a->first = zalloc(a, ng * sizeof(*a->first));
	a->first_bias = zalloc(a, (size_t)ng * 8 * 4);
	if (!a->first || !a->first_bias)
		return -ENOMEM;
	for (g = 0; g < ng; g++)
		rq_lanes(&a->first[g], l, 8 * g);
	memcpy(a->first_bias, l->bias, (size_t)l->out_c * 4);
	return 0;
}

/*
 * z = acc * mult + 2^(30 + shift) in 64 bits, |z| < 2^62; (z << 1) keeps
 * its value, and its high 32 bits are floor(z / 2^31); an arithmetic shift
 * by shift then gives floor(z / 2^(31 + shift)), as cnn_requant().
 */
AVX2 static inline __m256i rq8(const struct rq *q, __m256i acc)
{
	__m256i even = _mm256_add_epi64(_mm256_mul_epi32(acc, q->mult_even), q->round_even);
	__m256i odd = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(acc, 32), q->mult_odd),
				       q->round_odd);
	__m256i r;

	even = _mm256_srli_epi64(_mm256_slli_epi64(even, 1), 32);
	odd = _mm256_slli_epi64(odd, 1);
	r = _mm256_blend_epi32(even, odd, 0xaa);
	r = _mm256_srav_epi32(r, q->shift);
	return _mm256_min_epi32(_mm256_max_epi32(r, q->lo), q->hi);
}

/* 16 int32 in -128 .. 127 (lanes of r0 then r1) to n <= 16 bytes. */
AVX2 static inline void store16(int8_t *dst, __m256i r0, __m256i r1, uint32_t n)
{
	__m256i p = _mm256_permute4x64_epi64(_mm256_packs_epi32(r0, r1), 0xd8);
	int8_t tmp[16];

	p = _mm256_packs_epi16(p, p);
	p = _mm256_permute4x64_epi64(p, 0x08);
	if (n == 16) {
		_mm_storeu_si128((__m128i *)dst, _mm256_castsi256_si128(p));
		return;
	}
	_mm_storeu_si128((__m128i *)tmp, _mm256_castsi256_si128(p));
	memcpy(dst, tmp, n);
}

/* ---- convolution ---- */

/*
 * One position's patch in (ic, ky, kx) order into g[0 .. k), zero where
 * padded.  Rows of up to 16 bytes inside the input are copied 16 (or 8)
 * bytes at a time: the bytes past a row's end are overwritten by the next
 * row, or lie in g's slack past k (never used as data).
 */
AVX2 static void patch_one(const struct model_layer *l, const int8_t *in, uint32_t pos, int8_t *g)
{
	uint32_t kw = l->kw, kh = l->kh, in_w = l->in_w, in_h = l->in_h, ic, ky, kx;
	int64_t iy0 = (int64_t)(pos / l->out_w) * l->sh - l->pad_top;
	int64_t ix0 = (int64_t)(pos % l->out_w) * l->sw - l->pad_left;
	bool inside_x = ix0 >= 0 && ix0 + kw <= in_w;
	uint32_t copy = !inside_x		     ? 0 :
			kw <= 8 && ix0 + 8 <= in_w   ? 8 :
			kw <= 16 && ix0 + 16 <= in_w ? 16 :
						       0;

	for (ic = 0; ic < l->in_c; ic++, in += (size_t)in_h * in_w) {
		for (ky = 0; ky < kh; ky++, g += kw) {
			int64_t iy = iy0 + ky;
			const int8_t *row;

			if (iy < 0 || iy >= in_h) {
				memset(g, 0, kw);
				continue;
			}
			row = in + (size_t)iy * in_w;
			if (copy == 8) {
				memcpy(g, row + ix0, 8);
			} else if (copy == 16) {
				memcpy(g, row + ix0, 16);
			} else if (inside_x) {
				for (kx = 0; kx < kw; kx++)
					g[kx] = row[ix0 + kx];
			} else {
				for (kx = 0; kx < kw; kx++) {
					int64_t ix = ix0 + kx;

					g[kx] = ix >= 0 && ix < in_w ? row[ix] : 0;
				}
			}
		}
	}
}

/* Transpose 8 x 8 int32: r[i] lane j <- r[j] lane i. */
AVX2 static inline void transpose8(__m256i r[8])
{
	__m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]), t1 = _mm256_unpackhi_epi32(r[0], r[1]);
	__m256i t2 = _mm256_unpacklo_epi32(r[2], r[3]), t3 = _mm256_unpackhi_epi32(r[2], r[3]);
	__m256i t4 = _mm256_unpacklo_epi32(r[4], r[5]), t5 = _mm256_unpackhi_epi32(r[4], r[5]);
	__m256i t6 = _mm256_unpacklo_epi32(r[6], r[7]), t7 = _mm256_unpackhi_epi32(r[6], r[7]);
	__m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
	__m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
	__m256i u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6);
	__m256i u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7);

	r[0] = _mm256_permute2x128_si256(u0, u4, 0x20);
	r[1] = _mm256_permute2x128_si256(u1, u5, 0x20);
	r[2] = _mm256_permute2x128_si256(u2, u6, 0x20);
	r[3] = _mm256_permute2x128_si256(u3, u7, 0x20);
	r[4] = _mm256_permute2x128_si256(u0, u4, 0x31);
	r[5] = _mm256_permute2x128_si256(u1, u5, 0x31);
	r[6] = _mm256_permute2x128_si256(u2, u6, 0x31);
	r[7] = _mm256_permute2x128_si256(u3, u7, 0x31);
}

/*
 * Patches of positions pos0 .. pos0 + n - 1 as int16 pairs, P[j][p]: each
 * position's patch is gathered as bytes (g, kpad apart), then blocks of 8
 * positions x 8 pairs are widened and transposed.  Bytes past k + 1 in g
 * only feed pairs j >= kp, which are not stored.
 */
AVX2 static void im2col_tile(const struct avx2_layer *al, const struct model_layer *l,
			     const int8_t *in, uint32_t pos0, uint32_t n, int8_t *g, int32_t *P)
{
	uint32_t p, j, jj, pb;
	__m256i r[8];

	for (p = 0; p < TILE; p++) {
		int8_t *gp = g + (size_t)p * al->kpad;

		if (p < n)
			patch_one(l, in, pos0 + p, gp);
		else
			memset(gp, 0, al->k);
		gp[al->k] = 0; /* the odd k's partner */
	}
	for (pb = 0; pb < TILE; pb += 8) {
		for (j = 0; j < al->kp; j += 8) {
			for (p = 0; p < 8; p++)
				r[p] = _mm256_cvtepi8_epi16(_mm_loadu_si128((
					const __m128i *)(g + (size_t)(pb + p) * al->kpad + 2 * j)));
			transpose8(r);
			for (jj = 0; jj < 8 && j + jj < al->kp; jj++)
				_mm256_storeu_si256((__m256i *)(P + (j + jj) * TILE + pb), r[jj]);
		}
	}
}

#define MADD(acc, p, w) acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, w))

/* acc[oc][p] = bias[oc] + sum_j P[j][p] . w[j][oc], 4 channels x 16 positions at a time. */
AVX2 static void gemm_tile(const struct avx2_layer *al, const int32_t *P, int32_t *acc)
{
	uint32_t ob, j;

	for (ob = 0; ob < al->ocpad; ob += OCB) {
		__m256i a00 = _mm256_set1_epi32(al->bias[ob]), a01 = a00;
		__m256i a10 = _mm256_set1_epi32(al->bias[ob + 1]), a11 = a10;
		__m256i a20 = _mm256_set1_epi32(al->bias[ob + 2]), a21 = a20;
		__m256i a30 = _mm256_set1_epi32(al->bias[ob + 3]), a31 = a30;
		const int32_t *w = al->wpair + ob;

		for (j = 0; j < al->kp; j++, w += al->ocpad) {
			__m256i p0 = _mm256_loadu_si256((const __m256i *)(P + j * TILE));
			__m256i p1 = _mm256_loadu_si256((const __m256i *)(P + j * TILE + 8));
			__m256i w0 = _mm256_set1_epi32(w[0]), w1 = _mm256_set1_epi32(w[1]);
			__m256i w2 = _mm256_set1_epi32(w[2]), w3 = _mm256_set1_epi32(w[3]);

			MADD(a00, p0, w0);
			MADD(a01, p1, w0);
			MADD(a10, p0, w1);
			MADD(a11, p1, w1);
			MADD(a20, p0, w2);
			MADD(a21, p1, w2);
			MADD(a30, p0, w3);
			MADD(a31, p1, w3);
		}
		_mm256_storeu_si256((__m256i *)(acc + ob * TILE), a00);
		_mm256_storeu_si256((__m256i *)(acc + ob * TILE + 8), a01);
		_mm256_storeu_si256((__m256i *)(acc + (ob + 1) * TILE), a10);
		_mm256_storeu_si256((__m256i *)(acc + (ob + 1) * TILE + 8), a11);
		_mm256_storeu_si256((__m256i *)(acc + (ob + 2) * TILE), a20);
		_mm256_storeu_si256((__m256i *)(acc + (ob + 2) * TILE + 8), a21);
		_mm256_storeu_si256((__m256i *)(acc + (ob + 3) * TILE), a30);
		_mm256_storeu_si256((__m256i *)(acc + (ob + 3) * TILE + 8), a31);
	}
}

/*
 * Stride 1, a tile within one output row, the whole patch inside the input:
 * patch element k of positions p = 0 .. 15 is in[base + off[k] + p], 16
 * contiguous bytes, so pairs are built for all 16 positions at once.  Loads
 * for positions past n read bytes of the input tensor (base + off + 16 stays
 * inside it: checked by the caller) whose results are not stored.
 */
AVX2 static void im2col_row(const struct avx2_layer *al, const int8_t *in, size_t base, int32_t *P)
{
	const int8_t *o = in + base;
	uint32_t j;

	for (j = 0; j < al->kp; j++, P += TILE) {
		__m256i lo = _mm256_cvtepi8_epi16(
			_mm_loadu_si128((const __m128i *)(o + al->off[2 * j])));
		__m256i hi = _mm256_cvtepi8_epi16(
			_mm_loadu_si128((const __m128i *)(o + al->off[2 * j + 1])));
		__m256i a = _mm256_unpacklo_epi16(lo, hi), b = _mm256_unpackhi_epi16(lo, hi);

		_mm256_storeu_si256((__m256i *)P, _mm256_permute2x128_si256(a, b, 0x20));
		_mm256_storeu_si256((__m256i *)(P + 8), _mm256_permute2x128_si256(a, b, 0x31));
	}
}

/* Can positions ox0 .. ox0 + n - 1 of output row oy use im2col_row()? */
static bool row_fits(const struct avx2_layer *al, const struct model_layer *l, uint32_t oy,
		     uint32_t ox0, uint32_t n, size_t *base)
{
	int64_t iy0 = (int64_t)oy * l->sh - l->pad_top, ix0 = (int64_t)ox0 - l->pad_left;

	if (l->sw != 1 || iy0 < 0 || iy0 + l->kh > l->in_h || ix0 < 0 ||
	    ix0 + n - 1 + l->kw > l->in_w)
		return false;
	*base = (size_t)iy0 * l->in_w + (size_t)ix0;
	return *base + (size_t)al->off[2 * al->kp - 1] + 16 <= (size_t)l->in_c * l->in_h * l->in_w;
}

/* Positions pos0 .. pos0 + n - 1 (n <= TILE): patches, products, requantized outputs. */
AVX2 static void conv_tile(struct cnn_avx2 *a, const struct avx2_layer *al,
			   const struct model_layer *l, const int8_t *in, int8_t *out,
			   uint32_t pos0, uint32_t n)
{
	uint32_t npos = l->out_h * l->out_w, oc;
	size_t base;
	struct rq q;

	if (row_fits(al, l, pos0 / l->out_w, pos0 % l->out_w, n, &base) &&
	    pos0 / l->out_w == (pos0 + n - 1) / l->out_w)
		im2col_row(al, in, base, a->patch);
	else
		im2col_tile(al, l, in, pos0, n, a->gather, a->patch);
	gemm_tile(al, a->patch, a->acc);
	for (oc = 0; oc < l->out_c; oc++) {
		const int32_t *acc = a->acc + oc * TILE;

		rq_set(&q, l->mult[oc], l->shift[oc], cnn_relu_lo(l));
		store16(out + (size_t)oc * npos + pos0,
			rq8(&q, _mm256_loadu_si256((const __m256i *)acc)),
			rq8(&q, _mm256_loadu_si256((const __m256i *)(acc + 8))), n);
	}
}

/* Stride 1: tiles along output rows (im2col_row() then applies); else across them. */
AVX2 static void conv2d(struct cnn_avx2 *a, const struct avx2_layer *al,
			const struct model_layer *l, const int8_t *in, int8_t *out)
{
	uint32_t npos = l->out_h * l->out_w, pos0, oy, ox0;

	if (l->sw != 1) {
		for (pos0 = 0; pos0 < npos; pos0 += TILE)
			conv_tile(a, al, l, in, out, pos0, npos - pos0 < TILE ? npos - pos0 : TILE);
		return;
	}
	for (oy = 0; oy < l->out_h; oy++)
		for (ox0 = 0; ox0 < l->out_w; ox0 += TILE)
			conv_tile(a, al, l, in, out, oy * l->out_w + ox0,
				  l->out_w - ox0 < TILE ? l->out_w - ox0 : TILE);
}

/* ---- dense ---- */

AVX2 static void widen(const int8_t *in, uint32_t k, uint32_t kpad, int16_t *xw)
{
	uint32_t i = 0;

	for (; i + 16 <= k; i += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(in + i));

		_mm256_storeu_si256((__m256i *)(xw + i), _mm256_cvtepi8_epi16(v));
	}
	for (; i < k; i++)
		xw[i] = in[i];
	for (; i < kpad; i++)
		xw[i] = 0;
}

/* The four lane sums of a0 .. a3. */
AVX2 static inline __m128i hsum4(__m256i a0, __m256i a1, __m256i a2, __m256i a3)
{
	__m256i s = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));

	return _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
}

AVX2 static void dense(struct cnn_avx2 *a, const struct avx2_layer *al, const struct model_layer *l,
		       const int8_t *in, int8_t *out)
{
	int32_t lo = cnn_relu_lo(l), sums[OCB];
	uint32_t ob, k, c;

	widen(in, al->k, al->kpad, a->xw);
	for (ob = 0; ob < al->ocpad; ob += OCB) {
		const int8_t *w0 = al->wpad + (size_t)ob * al->kpad, *w1 = w0 + al->kpad;
		const int8_t *w2 = w1 + al->kpad, *w3 = w2 + al->kpad;
		__m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;

		for (k = 0; k < al->kpad; k += 16) {
			__m256i x = _mm256_loadu_si256((const __m256i *)(a->xw + k));

#define W16(w) _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)((w) + k)))
			MADD(a0, x, W16(w0));
			MADD(a1, x, W16(w1));
			MADD(a2, x, W16(w2));
			MADD(a3, x, W16(w3));
#undef W16
		}
		_mm_storeu_si128((__m128i *)sums, hsum4(a0, a1, a2, a3));
		for (c = 0; c < OCB && ob + c < l->out_c; c++)
			out[ob + c] = cnn_requant(al->bias[ob + c] + sums[c], l->mult[ob + c],
						  l->shift[ob + c], lo);
	}
}

/* ---- max-pool ---- */

AVX2 static inline void vmax32(const int8_t *top, uint32_t w, uint32_t kh, int8_t *row, uint32_t x)
{
	__m256i v = _mm256_loadu_si256((const __m256i *)(top + x));
	uint32_t ky;

	for (ky = 1; ky < kh; ky++)
		v = _mm256_max_epi8(v, _mm256_loadu_si256((const __m256i *)(top + ky * w + x)));
	_mm256_storeu_si256((__m256i *)(row + x), v);
}

AVX2 static inline void vmax16(const int8_t *top, uint32_t w, uint32_t kh, int8_t *row, uint32_t x)
{
	__m128i v = _mm_loadu_si128((const __m128i *)(top + x));
	uint32_t ky;

	for (ky = 1; ky < kh; ky++)
		v = _mm_max_epi8(v, _mm_loadu_si128((const __m128i *)(top + ky * w + x)));
	_mm_storeu_si128((__m128i *)(row + x), v);
}

/* row[x] = max over the kh input rows from top, x < w; the last chunk overlaps. */
AVX2 static void vmax_rows(const int8_t *top, uint32_t w, uint32_t kh, int8_t *row)
{
	uint32_t x = 0, ky;

	if (w >= 32) {
		for (; x + 32 <= w; x += 32)
			vmax32(top, w, kh, row, x);
		if (x < w)
			vmax32(top, w, kh, row, w - 32);
		return;
	}
	if (w >= 16) {
		vmax16(top, w, kh, row, 0);
		vmax16(top, w, kh, row, w - 16);
		return;
	}
	for (; x < w; x++) {
		int8_t m = top[x];

		for (ky = 1; ky < kh; ky++)
			m = top[ky * w + x] > m ? top[ky * w + x] : m;
		row[x] = m;
	}
}

/* out[ox .. ox + 16) = max(row[2 ox], row[2 ox + 1]) ... from 32 bytes. */
AVX2 static inline void hmax16(const int8_t *row, int8_t *out, uint32_t ox)
{
	__m256i v = _mm256_loadu_si256((const __m256i *)(row + 2 * ox));
	__m256i m = _mm256_max_epi16(_mm256_srai_epi16(_mm256_slli_epi16(v, 8), 8),
				     _mm256_srai_epi16(v, 8));

	m = _mm256_permute4x64_epi64(_mm256_packs_epi16(m, m), 0x08);
	_mm_storeu_si128((__m128i *)(out + ox), _mm256_castsi256_si128(m));
}

AVX2 static inline void hmax8(const int8_t *row, int8_t *out, uint32_t ox)
{
	__m128i v = _mm_loadu_si128((const __m128i *)(row + 2 * ox));
	__m128i m = _mm_max_epi16(_mm_srai_epi16(_mm_slli_epi16(v, 8), 8), _mm_srai_epi16(v, 8));

	_mm_storel_epi64((__m128i *)(out + ox), _mm_packs_epi16(m, m));
}

/* The 2-wide, stride-2 horizontal maximum of a row; outputs done (0 if too short).
 * 2 ow <= the row's width, so every load stays in the row. */
AVX2 static uint32_t hmax_2x2(const int8_t *row, uint32_t ow, int8_t *out)
{
	uint32_t ox = 0;

	if (ow >= 16) {
		for (; ox + 16 <= ow; ox += 16)
			hmax16(row, out, ox);
		if (ox < ow)
			hmax16(row, out, ow - 16);
		return ow;
	}
	if (ow >= 8) {
		hmax8(row, out, 0);
		hmax8(row, out, ow - 8);
		return ow;
	}
	return 0;
}

AVX2 static void maxpool(struct cnn_avx2 *a, const struct model_layer *l, const int8_t *in,
			 int8_t *out)
{
	uint32_t c, oy, ox, kx;

	for (c = 0; c < l->out_c; c++) {
		const int8_t *plane = in + (size_t)c * l->in_h * l->in_w;

		for (oy = 0; oy < l->out_h; oy++, out += l->out_w) {
			vmax_rows(plane + (size_t)oy * l->sh * l->in_w, l->in_w, l->kh, a->row);
			ox = l->kw == 2 && l->sw == 2 ? hmax_2x2(a->row, l->out_w, out) : 0;
			for (; ox < l->out_w; ox++) {
				const int8_t *r = a->row + ox * l->sw;
				int8_t m = r[0];

				for (kx = 1; kx < l->kw; kx++)
					m = r[kx] > m ? r[kx] : m;
				out[ox] = m;
			}
		}
	}
}

/* ---- the sparse first convolution's inner loops (see cnn.c) ---- */

AVX2 void cnn_avx2_axpy(int32_t *d, const int32_t *w, int32_t a, uint32_t n)
{
	__m256i av = _mm256_set1_epi32(a);
	uint32_t i;

	for (i = 0; i < n; i += 8) {
		__m256i p = _mm256_mullo_epi32(av, _mm256_loadu_si256((const __m256i *)(w + i)));
		__m256i s = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(d + i)), p);

		_mm256_storeu_si256((__m256i *)(d + i), s);
	}
}

AVX2 void cnn_avx2_sparse_out(struct cnn_avx2 *a, int32_t *d, int8_t *out, size_t npos)
{
	const struct model_layer *l = &a->m->layers[0];
	uint32_t g, c, n;
	int8_t tmp[16];

	for (g = 0; 8 * g < l->out_c; g++, d += 8, out += 8 * npos) {
		__m256i acc = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)d),
					       _mm256_loadu_si256(
						       (const __m256i *)(a->first_bias + 8 * g)));
		__m256i r = rq8(&a->first[g], acc);

		/* lanes 0-3 land in bytes 0-3, lanes 4-7 in bytes 16-19 */
		r = _mm256_packs_epi32(r, r);
		r = _mm256_packs_epi16(r, r);
		r = _mm256_permutevar8x32_epi32(r, _mm256_setr_epi32(0, 4, 0, 0, 0, 0, 0, 0));
		_mm_storeu_si128((__m128i *)tmp, _mm256_castsi256_si128(r));
		n = l->out_c - 8 * g < 8 ? l->out_c - 8 * g : 8;
		for (c = 0; c < n; c++)
			out[c * npos] = tmp[c];
		_mm256_storeu_si256((__m256i *)d, _mm256_setzero_si256());
	}
}

AVX2 void cnn_avx2_layer(struct cnn_avx2 *a, uint32_t i, const int8_t *in, int8_t *out)
{
	const struct model_layer *l = &a->m->layers[i];

	switch (l->type) {
	case MODEL_CONV2D:
		conv2d(a, &a->layers[i], l, in, out);
		break;
	case MODEL_MAXPOOL:
		maxpool(a, l, in, out);
		break;
	case MODEL_DENSE:
		dense(a, &a->layers[i], l, in, out);
		break;
	case MODEL_RELU:
		cnn_relu_s8(out, (size_t)l->out_c * l->out_h * l->out_w);
		break;
	case MODEL_FLATTEN:
		break;
	}
}

#else /* no x86: the reference path only */

bool cnn_avx2_supported(void)
{
	return false;
}

struct cnn_avx2 *cnn_avx2_new(const struct model *m)
{
	(void)m;
	errno = ENOTSUP;
	return NULL;
}

void cnn_avx2_free(struct cnn_avx2 *a)
{
	(void)a;
}

size_t cnn_avx2_memory(const struct cnn_avx2 *a)
{
	(void)a;
	return 0;
}

void cnn_avx2_axpy(int32_t *d, const int32_t *w, int32_t a, uint32_t n)
{
	(void)d;
	(void)w;
	(void)a;
	(void)n;
}

void cnn_avx2_sparse_out(struct cnn_avx2 *a, int32_t *d, int8_t *out, size_t npos)
{
	(void)a;
	(void)d;
	(void)out;
	(void)npos;
}

void cnn_avx2_layer(struct cnn_avx2 *a, uint32_t i, const int8_t *in, int8_t *out)
{
	(void)a;
	(void)i;
	(void)in;
	(void)out;
}

#endif
