// SPDX-License-Identifier: MIT
/*
 * cnn_ref.c - the reference int8 kernels; see cnn_kernels.h.
 *
 * The reference kernels are the definition in C: plain loops over CHW
 * tensors, one cnn_requant() per output, no cleverness.  The AVX2 kernels
 * (cnn_avx2.c) must agree with them bit for bit, and the tests check it.
 * The engine (cnn.c) runs these where AVX2 is not there or not wanted; it
 * owns the tensors, this file only reads and writes them.
 */
#include "cnn_kernels.h"

#include <stddef.h>
#include <stdint.h>

static int32_t conv_acc(const struct model_layer *l, const int8_t *in, uint32_t oc, uint32_t oy,
			uint32_t ox)
{
	const int8_t *w = l->weight + (size_t)oc * l->in_c * l->kh * l->kw;
	int32_t acc = l->bias[oc];
	uint32_t ic, ky, kx;

	for (ic = 0; ic < l->in_c; ic++) {
		for (ky = 0; ky < l->kh; ky++) {
			int64_t iy = (int64_t)oy * l->sh + ky - l->pad_top;

			for (kx = 0; kx < l->kw; kx++) {
				int64_t ix = (int64_t)ox * l->sw + kx - l->pad_left;
				int8_t wv = w[(ic * l->kh + ky) * l->kw + kx];

				if (iy < 0 || iy >= l->in_h || ix < 0 || ix >= l->in_w)
					continue; /* padding: activation 0 */
				acc += wv * in[((size_t)ic * l->in_h + (size_t)iy) * l->in_w +
					       (size_t)ix];
			}
		}
	}
	return acc;
}

void cnn_conv2d_s8_ref(const struct model_layer *l, const int8_t *in, int8_t *out)
{
	int32_t lo = cnn_relu_lo(l);
	uint32_t oc, oy, ox;

	for (oc = 0; oc < l->out_c; oc++)
		for (oy = 0; oy < l->out_h; oy++)
			for (ox = 0; ox < l->out_w; ox++)
				*out++ = cnn_requant(conv_acc(l, in, oc, oy, ox), l->mult[oc],
						     l->shift[oc], lo);
}

static int8_t pool_max(const struct model_layer *l, const int8_t *plane, uint32_t oy, uint32_t ox)
{
	const int8_t *top = plane + (size_t)oy * l->sh * l->in_w + (size_t)ox * l->sw;
	uint32_t ky, kx;
	int8_t m = -128;

	for (ky = 0; ky < l->kh; ky++)
		for (kx = 0; kx < l->kw; kx++)
			m = top[ky * l->in_w + kx] > m ? top[ky * l->in_w + kx] : m;
	return m;
}

void cnn_maxpool_s8_ref(const struct model_layer *l, const int8_t *in, int8_t *out)
{
	uint32_t c, oy, ox;

	for (c = 0; c < l->out_c; c++)
		for (oy = 0; oy < l->out_h; oy++)
			for (ox = 0; ox < l->out_w; ox++)
				*out++ = pool_max(l, in + (size_t)c * l->in_h * l->in_w, oy, ox);
}

void cnn_dense_s8_ref(const struct model_layer *l, const int8_t *in, int8_t *out)
{
	uint32_t k = model_layer_k(l), oc, i;
	int32_t lo = cnn_relu_lo(l);

	for (oc = 0; oc < l->out_c; oc++) {
		const int8_t *w = l->weight + (size_t)oc * k;
		int32_t acc = l->bias[oc];

		for (i = 0; i < k; i++)
			acc += w[i] * in[i];
		out[oc] = cnn_requant(acc, l->mult[oc], l->shift[oc], lo);
	}
}

void cnn_layer_ref(const struct model_layer *l, const int8_t *in, int8_t *out)
{
	switch (l->type) {
	case MODEL_CONV2D:
		cnn_conv2d_s8_ref(l, in, out);
		break;
	case MODEL_MAXPOOL:
		cnn_maxpool_s8_ref(l, in, out);
		break;
	case MODEL_DENSE:
		cnn_dense_s8_ref(l, in, out);
		break;
	case MODEL_RELU:
		cnn_relu_s8(out, (size_t)l->out_c * l->out_h * l->out_w);
		break;
	case MODEL_FLATTEN:
		break;
	}
}

/* ---- the sparse first convolution's inner loops (the engine's, cnn.c) ---- */

void cnn_axpy_ref(int32_t *d, const int32_t *w, int32_t a, uint32_t n)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		d[i] += a * w[i];
}

void cnn_sparse_out_ref(const struct model_layer *l, int32_t *d, int8_t *out, size_t npos)
{
	int32_t lo = cnn_relu_lo(l);
	uint32_t oc;

	for (oc = 0; oc < l->out_c; oc++) {
		out[oc * npos] = cnn_requant(l->bias[oc] + d[oc], l->mult[oc], l->shift[oc], lo);
		d[oc] = 0;
	}
}
