/* SPDX-License-Identifier: MIT */
/*
 * cnn_kernels.h - the int8 arithmetic and the two sets of kernels under the
 * CNN engine: the reference kernels (cnn_ref.c) and the AVX2 kernels
 * (cnn_avx2.c).
 *
 * The engine (cnn.c) walks the model, owns the memory and picks one set per
 * cnn; the kernels are leaves: they include this header and model_file.h,
 * never cnn.h, and neither calls the engine or the other set.  Both offer
 * the same three entry points: one layer, the sparse first convolution's
 * scatter (axpy) and its outputs (sparse_out), and must give the same bits
 * (the tests compare them).  The tests call the kernels directly.
 */
#ifndef FLOWPIC_CNN_KERNELS_H
#define FLOWPIC_CNN_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model_file.h"

/*
 * The one requantization: clamp(floor((acc * mult + 2^(30 + shift)) /
 * 2^(31 + shift)), lo, 127), i.e. acc * mult / 2^(31 + shift) rounded to
 * nearest, ties up.  |acc| <= 2^30 (the loader's bound), mult < 2^31,
 * shift 0 .. 31; lo = 0 with ReLU, else -128.
 */
static inline int8_t cnn_requant(int32_t acc, int32_t mult, int32_t shift, int32_t lo)
{
	int total = 31 + shift;
	int64_t v = ((int64_t)acc * mult + ((int64_t)1 << (total - 1))) >> total;

	return (int8_t)(v < lo ? lo : v > 127 ? 127 : v);
}

static inline int32_t cnn_relu_lo(const struct model_layer *l)
{
	return l->relu ? 0 : -128;
}

/* ReLU in place: the same loop for both sets. */
static inline void cnn_relu_s8(int8_t *x, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		x[i] = x[i] < 0 ? 0 : x[i];
}

/* ---- reference kernels (cnn_ref.c): in and out are CHW int8 tensors of
 * the layer's shapes ---- */

void cnn_conv2d_s8_ref(const struct model_layer *l, const int8_t *in, int8_t *out);
void cnn_maxpool_s8_ref(const struct model_layer *l, const int8_t *in, int8_t *out);
void cnn_dense_s8_ref(const struct model_layer *l, const int8_t *in, int8_t *out);
/* Run layer l (any type; relu/flatten in place when in == out). */
void cnn_layer_ref(const struct model_layer *l, const int8_t *in, int8_t *out);
/* Sparse first convolution: d[0 .. n) += a * w[0 .. n). */
void cnn_axpy_ref(int32_t *d, const int32_t *w, int32_t a, uint32_t n);
/* The outputs out[c * npos] of first layer l for accumulators bias[c] + d[c],
 * then d[0 .. out_c) = 0. */
void cnn_sparse_out_ref(const struct model_layer *l, int32_t *d, int8_t *out, size_t npos);

/* ---- AVX2 kernels (cnn_avx2.c): false where the CPU (or the build) has none ---- */

struct cnn_avx2;
bool cnn_avx2_supported(void);
struct cnn_avx2 *cnn_avx2_new(const struct model *m);
void cnn_avx2_free(struct cnn_avx2 *a);
size_t cnn_avx2_memory(const struct cnn_avx2 *a);
/* Run layer i of the model (any type; relu/flatten in place when in == out). */
void cnn_avx2_layer(struct cnn_avx2 *a, uint32_t i, const int8_t *in, int8_t *out);
/* Sparse first convolution: d[0 .. n) += a * w[0 .. n), n a multiple of 8. */
void cnn_avx2_axpy(int32_t *d, const int32_t *w, int32_t a, uint32_t n);
/* The outputs out[c * npos] of layer 0 for accumulators bias[c] + d[c], 8
 * channels a group (d zero padded to a multiple of 8), then d = 0. */
void cnn_avx2_sparse_out(struct cnn_avx2 *a, int32_t *d, int8_t *out, size_t npos);

#endif
