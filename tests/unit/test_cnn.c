// SPDX-License-Identifier: MIT
/*
 * test_cnn.c - the int8 CNN engine: hand-computed tiny networks, the
 * requantization at its edges, the reference and AVX2 paths on many random
 * networks (layer by layer and end to end), the sparse first convolution
 * against the dense one, cells against pictures, LeNet-5 and FlowPic-like
 * shapes, and no allocation while classifying (malloc is wrapped: see
 * tests/unit/CMakeLists.txt).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cnn.h"
#include "core/cnn_kernels.h"

/* ---- counting allocations (-Wl,--wrap=...) ---- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);
int __real_posix_memalign(void **p, size_t align, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_aligned_alloc(size_t align, size_t n);
int __wrap_posix_memalign(void **p, size_t align, size_t n);

static unsigned long allocs;

void *__wrap_malloc(size_t n)
{
	allocs++;
	return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
	allocs++;
	return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
	allocs++;
	return __real_realloc(p, n);
}

void *__wrap_aligned_alloc(size_t align, size_t n)
{
	allocs++;
	return __real_aligned_alloc(align, n);
}

int __wrap_posix_memalign(void **p, size_t align, size_t n)
{
	allocs++;
	return __real_posix_memalign(p, align, n);
}

/* ---- random numbers (fixed seeds: failures reproduce) ---- */

static uint64_t rng = 88172645463325252ULL;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 11);
}

/* Uniform in [lo, hi]. */
static int32_t rnd_in(int32_t lo, int32_t hi)
{
	return lo + (int32_t)(rnd() % (uint32_t)(hi - lo + 1));
}

/* ---- building networks in memory ---- */

#define TN_MAX 16

struct tnet {
	struct model m;
	struct model_layer l[TN_MAX];
	char *cls[MODEL_MAX_CLASSES];
	char names[MODEL_MAX_CLASSES][12];
	int8_t *w[TN_MAX];
	int32_t *b[TN_MAX], *mult[TN_MAX], *shift[TN_MAX];
	bool extreme; /* random parameters at the limits sometimes */
};

static void tn_init(struct tnet *t, uint32_t res, enum model_dirs dirs)
{
	uint32_t c;

	memset(t, 0, sizeof(*t));
	t->m.name = "test";
	t->m.version = "0";
	t->m.res = res;
	t->m.dirs = dirs;
	t->m.in_channels = dirs == MODEL_DIR_SPLIT ? 2 : 1;
	t->m.window_ns = 60000000000ULL;
	t->m.size_max = 1500;
	t->m.input_scale = 1.0f / 16;
	for (c = 0; c < 256; c++)
		t->m.lut[c] = (int8_t)(c < 127 ? c : 127);
	t->m.layers = t->l;
	t->m.classes = t->cls;
	for (c = 0; c < MODEL_MAX_CLASSES; c++) {
		snprintf(t->names[c], sizeof(t->names[c]), "class%u", c);
		t->cls[c] = t->names[c];
	}
}

static void tn_free(struct tnet *t)
{
	int i;

	for (i = 0; i < TN_MAX; i++) {
		free(t->w[i]);
		free(t->b[i]);
		free(t->mult[i]);
		free(t->shift[i]);
	}
}

static struct model_layer *tn_add(struct tnet *t, enum model_layer_type type)
{
	uint32_t i = t->m.n_layers++;
	struct model_layer *l = &t->l[i];

	assert_true(i < TN_MAX);
	l->type = type;
	if (i == 0) {
		l->in_c = t->m.in_channels;
		l->in_h = l->in_w = t->m.res;
		l->out_scale = t->m.input_scale;
	} else {
		l->in_c = l[-1].out_c;
		l->in_h = l[-1].out_h;
		l->in_w = l[-1].out_w;
		l->out_scale = l[-1].out_scale;
	}
	l->out_c = l->in_c;
	l->out_h = l->in_h;
	l->out_w = l->in_w;
	return l;
}

static uint32_t isqrt(uint32_t v)
{
	uint32_t r = 0;

	while ((r + 1) * (r + 1) <= v)
		r++;
	return r;
}

/* Multiplier for outputs of about +-40 from K random products. */
static void tn_scale(struct tnet *t, uint32_t i, uint32_t c, uint32_t k)
{
	uint64_t denom = (uint64_t)60 * (isqrt(k) + 1) * (uint32_t)rnd_in(40, 250) / 100 + 1;
	int32_t shift = 0;

	if (t->extreme && rnd() % 6 == 0) {
		t->mult[i][c] = rnd() % 9 == 0 ? 0 : rnd_in(1 << 30, INT32_MAX);
		t->shift[i][c] = rnd_in(0, 31);
		return;
	}
	while (((uint64_t)1 << (shift + 1)) < denom)
		shift++;
	t->mult[i][c] = (int32_t)(((uint64_t)1 << (31 + shift)) / denom);
	if (t->mult[i][c] < (1 << 30))
		t->mult[i][c] = 1 << 30;
	t->shift[i][c] = shift;
}

static void tn_params(struct tnet *t, struct model_layer *l, bool random)
{
	uint32_t i = (uint32_t)(l - t->l), k = model_layer_k(l), c;
	int32_t bound = (int32_t)(MODEL_ACC_BOUND - (int64_t)k * 127 * 128);
	size_t n = (size_t)l->out_c * k, j;
	int32_t spread = 1500 * ((int32_t)isqrt(k) + 1);

	t->w[i] = calloc(n, 1);
	t->b[i] = calloc(l->out_c, 4);
	t->mult[i] = calloc(l->out_c, 4);
	t->shift[i] = calloc(l->out_c, 4);
	assert_non_null(t->w[i]);
	l->weight = t->w[i];
	l->bias = t->b[i];
	l->mult = t->mult[i];
	l->shift = t->shift[i];
	for (c = 0; c < l->out_c; c++) {
		t->mult[i][c] = 1 << 30;
		if (!random)
			continue;
		tn_scale(t, i, c, k);
		t->b[i][c] = rnd_in(-spread, spread);
		if (t->extreme && rnd() % 5 == 0)
			t->b[i][c] = rnd() % 2 ? bound : -bound;
	}
	for (j = 0; random && j < n; j++)
		t->w[i][j] = (int8_t)(t->extreme && rnd() % 4 == 0 ? (rnd() % 2 ? 127 : -127) :
								     rnd_in(-127, 127));
}

static struct model_layer *tn_conv(struct tnet *t, uint32_t oc, uint16_t kh, uint16_t kw,
				   uint16_t sh, uint16_t sw, const uint16_t pad[4], bool relu,
				   bool random)
{
	struct model_layer *l = tn_add(t, MODEL_CONV2D);

	l->out_c = oc;
	l->kh = kh;
	l->kw = kw;
	l->sh = sh;
	l->sw = sw;
	if (pad) {
		l->pad_top = pad[0];
		l->pad_left = pad[1];
		l->pad_bottom = pad[2];
		l->pad_right = pad[3];
	}
	l->out_h = (l->in_h + l->pad_top + l->pad_bottom - kh) / sh + 1;
	l->out_w = (l->in_w + l->pad_left + l->pad_right - kw) / sw + 1;
	l->relu = relu;
	l->out_scale = 1.0f / 8;
	tn_params(t, l, random);
	return l;
}

static struct model_layer *tn_pool(struct tnet *t, uint16_t kh, uint16_t kw, uint16_t sh,
				   uint16_t sw)
{
	struct model_layer *l = tn_add(t, MODEL_MAXPOOL);

	l->kh = kh;
	l->kw = kw;
	l->sh = sh;
	l->sw = sw;
	l->out_h = (l->in_h - kh) / sh + 1;
	l->out_w = (l->in_w - kw) / sw + 1;
	return l;
}

static struct model_layer *tn_dense(struct tnet *t, uint32_t out, bool relu, bool random)
{
	struct model_layer *l = tn_add(t, MODEL_DENSE);

	l->out_c = out;
	l->out_h = l->out_w = 1;
	l->relu = relu;
	l->out_scale = 0.25f;
	tn_params(t, l, random);
	return l;
}

static void tn_flatten(struct tnet *t)
{
	struct model_layer *l = tn_add(t, MODEL_FLATTEN);

	l->out_c = l->in_c * l->in_h * l->in_w;
	l->out_h = l->out_w = 1;
}

static void tn_done(struct tnet *t)
{
	char err[256];

	t->m.n_classes = (uint32_t)model_tensor_size(&t->m, (int)t->m.n_layers - 1);
	if (model_check(&t->m, err, sizeof(err)))
		fail_msg("test network refused: %s", err);
}

/* ---- running every way ---- */

static struct cnn *cnn_for(const struct model *m, unsigned int flags)
{
	struct cnn *c = cnn_new(m, flags);

	assert_non_null(c);
	return c;
}

static void run_flags(const struct model *m, unsigned int flags, const uint8_t *pic,
		      struct cnn_result *r)
{
	struct cnn *c = cnn_for(m, flags);

	assert_int_equal(cnn_run(c, pic, r), 0);
	cnn_free(c);
}

static void assert_logits(const struct model *m, const struct cnn_result *a,
			  const struct cnn_result *b, const char *what)
{
	uint32_t i;

	for (i = 0; i < m->n_classes; i++)
		if (a->logits[i] != b->logits[i])
			fail_msg("%s: logit %u is %d, reference %d", what, i, b->logits[i],
				 a->logits[i]);
	assert_int_equal(a->cls, b->cls);
}

static const unsigned int all_flags[] = {
	CNN_REF | CNN_DENSE_FIRST, CNN_REF | CNN_SPARSE_FIRST, CNN_REF,
	CNN_DENSE_FIRST,	   CNN_SPARSE_FIRST,	       0,
};
#define NFLAGS (sizeof(all_flags) / sizeof(all_flags[0]))

/* Every path on pic; returns the reference result. */
static void run_all(const struct model *m, const uint8_t *pic, struct cnn_result *ref)
{
	struct cnn_result r;
	char what[64];
	size_t i;

	run_flags(m, all_flags[0], pic, ref);
	for (i = 1; i < NFLAGS; i++) {
		run_flags(m, all_flags[i], pic, &r);
		snprintf(what, sizeof(what), "flags %#x", all_flags[i]);
		assert_logits(m, ref, &r, what);
	}
}

static void expect(const struct model *m, const uint8_t *pic, const int8_t *want)
{
	struct cnn_result r;
	uint32_t i;

	run_all(m, pic, &r);
	for (i = 0; i < m->n_classes; i++)
		if (r.logits[i] != want[i])
			fail_msg("output %u is %d, expected %d", i, r.logits[i], want[i]);
}

/* ---- hand-computed networks ---- */

static void test_requant_edges(void **state)
{
	(void)state;
	/* 2^30 / 2^31 = 0.5: ties go up. */
	assert_int_equal(cnn_requant(3, 1 << 30, 0, -128), 2);
	assert_int_equal(cnn_requant(-3, 1 << 30, 0, -128), -1);
	assert_int_equal(cnn_requant(5, 1 << 30, 0, -128), 3);
	assert_int_equal(cnn_requant(-5, 1 << 30, 0, -128), -2);
	assert_int_equal(cnn_requant(-6, 1 << 30, 0, -128), -3);
	assert_int_equal(cnn_requant(1000, 1 << 30, 0, -128), 127);
	assert_int_equal(cnn_requant(-1000, 1 << 30, 0, -128), -128);
	assert_int_equal(cnn_requant(-7, 1 << 30, 0, 0), 0);
	/* 1/128 */
	assert_int_equal(cnn_requant(12695, 1 << 30, 6, -128), 99);
	assert_int_equal(cnn_requant(64, 1 << 30, 6, -128), 1);
	assert_int_equal(cnn_requant(63, 1 << 30, 6, -128), 0);
	assert_int_equal(cnn_requant(-64, 1 << 30, 6, -128), 0);
	assert_int_equal(cnn_requant(-65, 1 << 30, 6, -128), -1);
	/* the extremes of the ranges */
	assert_int_equal(cnn_requant(1 << 30, INT32_MAX, 31, -128), 0);
	assert_int_equal(cnn_requant(1 << 30, INT32_MAX, 23, -128), 127);
	assert_int_equal(cnn_requant(-(1 << 30), INT32_MAX, 31, -128), 0);
	assert_int_equal(cnn_requant(-(1 << 30), INT32_MAX, 24, -128), -64);
	assert_int_equal(cnn_requant(1 << 30, 0, 0, -128), 0);
	assert_int_equal(cnn_requant(-(1 << 30), 1 << 30, 22, -128), -128);
	assert_int_equal(cnn_requant(-(1 << 30), 1 << 30, 23, -128), -64);
}

/* pic[y][x] = 4y + x + 1 on a 4 x 4 picture */
static void pic_4x4(uint8_t *pic)
{
	int i;

	for (i = 0; i < 16; i++)
		pic[i] = (uint8_t)(i + 1);
}

static void test_conv_hand(void **state)
{
	static const int8_t want[9] = { 22, 27, 32, 42, 47, 52, 62, 67, 72 };
	static const int8_t w[4] = { 1, 2, 3, 4 };
	struct tnet t;
	uint8_t pic[16];

	(void)state;
	/* acc = 1 p[y][x] + 2 p[y][x+1] + 3 p[y+1][x] + 4 p[y+1][x+1] = 40y + 10x + 44, / 2 */
	tn_init(&t, 4, MODEL_DIR_BOTH);
	tn_conv(&t, 1, 2, 2, 1, 1, NULL, false, false);
	memcpy(t.w[0], w, 4);
	tn_done(&t);
	pic_4x4(pic);
	expect(&t.m, pic, want);
	tn_free(&t);
}

static void test_conv_pad_stride_hand(void **state)
{
	/* 3x3 ones, padding 1, stride 2: sums 14, 30, 57, 99, halved with ties up */
	static const int8_t want[4] = { 7, 15, 29, 50 };
	static const uint16_t pad[4] = { 1, 1, 1, 1 };
	struct tnet t;
	uint8_t pic[16];

	(void)state;
	tn_init(&t, 4, MODEL_DIR_BOTH);
	tn_conv(&t, 1, 3, 3, 2, 2, pad, false, false);
	memset(t.w[0], 1, 9);
	tn_done(&t);
	pic_4x4(pic);
	expect(&t.m, pic, want);
	tn_free(&t);
}

static void test_conv_channels_hand(void **state)
{
	/* 2 input channels (split), 2 outputs, 1x1 kernels; relu on; 1/4 */
	static const int8_t want[8] = { 3, 3, 4, 4, 0, 0, 0, 0 };
	static const int8_t w[4] = { 1, 1, -1, -1 };
	struct tnet t;
	uint8_t pic[8] = { 1, 2, 3, 4, 10, 10, 10, 10 };

	(void)state;
	/* out0 = (1 + a + b) / 4 = (11 + a) / 4, out1 = relu((1 - a - b) / 4) */
	tn_init(&t, 2, MODEL_DIR_SPLIT);
	tn_conv(&t, 2, 1, 1, 1, 1, NULL, true, false);
	memcpy(t.w[0], w, 4);
	t.b[0][0] = t.b[0][1] = 1;
	t.shift[0][0] = t.shift[0][1] = 1;
	tn_done(&t);
	expect(&t.m, pic, want);
	tn_free(&t);
}

static void test_dense_hand(void **state)
{
	static const int8_t w[8] = { 1, -1, 2, 0, 0, 0, 0, 127 };
	static const int8_t want[2] = { 0, 99 };
	uint8_t pic[4] = { 3, 1, 4, 100 };
	struct cnn_result r;
	struct tnet t;

	(void)state;
	/* acc0 = 10 + 3 - 1 + 8 = 20, acc1 = -5 + 12700 = 12695; / 128 */
	tn_init(&t, 2, MODEL_DIR_BOTH);
	tn_flatten(&t);
	tn_dense(&t, 2, false, false);
	memcpy(t.w[1], w, 8);
	t.b[1][0] = 10;
	t.b[1][1] = -5;
	t.shift[1][0] = t.shift[1][1] = 6;
	tn_done(&t);
	expect(&t.m, pic, want);
	run_flags(&t.m, 0, pic, &r);
	assert_int_equal(r.cls, 1);
	assert_float_equal(r.logit[1], 99 * 0.25f, 1e-6);
	assert_float_equal(r.prob[0] + r.prob[1], 1.0f, 1e-6);
	/* softmax of (0, 24.75) */
	assert_float_equal(r.prob[0], 1.7832e-11f, 1e-14);
	tn_free(&t);
}

static void test_pool_hand(void **state)
{
	/* lut c -> c - 20 gives negatives; 2x2/2 then a 3x3/1 pool */
	static const int8_t want2[4] = { -14, -12, -6, -4 };
	static const int8_t want3[4] = { -9, -8, -5, -4 };
	struct tnet t;
	uint8_t pic[16];
	int c;

	(void)state;
	pic_4x4(pic);
	tn_init(&t, 4, MODEL_DIR_BOTH);
	for (c = 0; c < 256; c++)
		t.m.lut[c] = (int8_t)(c - 20 < 127 ? c - 20 : 127);
	tn_pool(&t, 2, 2, 2, 2);
	tn_done(&t);
	expect(&t.m, pic, want2);
	t.m.n_layers = 0;
	tn_pool(&t, 3, 3, 1, 1);
	tn_done(&t);
	expect(&t.m, pic, want3);
	tn_free(&t);
}

static void test_relu_layer_hand(void **state)
{
	static const int8_t want[4] = { 0, 0, 1, 2 };
	uint8_t pic[4] = { 0, 1, 2, 3 };
	struct tnet t;
	int c;

	(void)state;
	tn_init(&t, 2, MODEL_DIR_BOTH);
	for (c = 0; c < 256; c++)
		t.m.lut[c] = (int8_t)(c - 1 < 127 ? c - 1 : 127);
	tn_add(&t, MODEL_RELU);
	tn_done(&t);
	expect(&t.m, pic, want);
	tn_free(&t);
}

/* ---- random networks ---- */

static void random_conv(struct tnet *t, uint32_t *h, uint32_t *w)
{
	uint16_t kh = (uint16_t)rnd_in(1, *h < 6 ? (int32_t)*h : 6);
	uint16_t kw = rnd() % 3 ? kh : (uint16_t)rnd_in(1, *w < 6 ? (int32_t)*w : 6);
	uint16_t pad[4] = { 0 }, i;
	struct model_layer *l;

	if (kw > *w)
		kw = (uint16_t)*w;
	for (i = 0; rnd() % 2 && i < 4; i++)
		pad[i] = (uint16_t)rnd_in(0, (i % 2 ? kw : kh) - 1);
	l = tn_conv(t, (uint32_t)rnd_in(1, 21), kh, kw, (uint16_t)rnd_in(1, 3),
		    (uint16_t)rnd_in(1, 3), pad, rnd() % 2, true);
	*h = l->out_h;
	*w = l->out_w;
	if (rnd() % 2 && *h >= 2 && *w >= 2) {
		l = tn_pool(t, (uint16_t)rnd_in(1, *h < 3 ? (int32_t)*h : 3),
			    (uint16_t)rnd_in(1, *w < 3 ? (int32_t)*w : 3), (uint16_t)rnd_in(1, 3),
			    (uint16_t)rnd_in(1, 3));
		*h = l->out_h;
		*w = l->out_w;
	}
	if (rnd() % 4 == 0)
		tn_add(t, MODEL_RELU);
}

static void random_net(struct tnet *t)
{
	uint32_t res = (uint32_t)rnd_in(1, 40), h = res, w = res, n, i;
	enum model_dirs dirs = (enum model_dirs)rnd_in(0, 3);
	int c;

	tn_init(t, res, dirs);
	t->extreme = rnd() % 3 == 0;
	for (c = 0; c < 256; c++)
		t->m.lut[c] = (int8_t)rnd_in(-128, 127);
	if (rnd() % 5)
		t->m.lut[0] = 0;
	n = (uint32_t)rnd_in(0, 3);
	for (i = 0; i < n; i++)
		random_conv(t, &h, &w);
	if (rnd() % 2)
		tn_flatten(t);
	n = (uint32_t)rnd_in(0, 2);
	for (i = 0; i < n; i++)
		tn_dense(t, (uint32_t)rnd_in(1, 40), rnd() % 2, true);
	tn_dense(t, (uint32_t)rnd_in(2, 8), false, true);
	tn_done(t);
}

static void random_pic(uint8_t *pic, size_t n)
{
	uint32_t density = rnd() % 5, i;
	static const uint32_t per1024[5] = { 0, 10, 100, 500, 1024 };

	for (i = 0; i < n; i++) {
		pic[i] = 0;
		if (rnd() % 1024 < per1024[density])
			pic[i] = (uint8_t)(rnd() % 4 ? rnd_in(1, 8) : rnd_in(1, 255));
	}
}

static void fill_random(int8_t *x, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		x[i] = (int8_t)(rnd() % 8 == 0 ? (rnd() % 2 ? 127 : -128) : rnd_in(-128, 127));
}

/* Each layer of m: reference kernel and AVX2 kernel on the same random input. */
static void layers_differ(const struct model *m)
{
	struct cnn_avx2 *a = cnn_avx2_supported() ? cnn_avx2_new(m) : NULL;
	size_t in_n, out_n, j;
	int8_t *in, *o1, *o2;
	uint32_t i;

	if (!cnn_avx2_supported())
		return;
	assert_non_null(a);
	for (i = 0; i < m->n_layers; i++) {
		const struct model_layer *l = &m->layers[i];

		in_n = model_tensor_size(m, (int)i - 1);
		out_n = model_tensor_size(m, (int)i);
		in = malloc(in_n);
		o1 = malloc(out_n > in_n ? out_n : in_n);
		o2 = malloc(out_n > in_n ? out_n : in_n);
		fill_random(in, in_n);
		memcpy(o1, in, in_n);
		memcpy(o2, in, in_n);
		if (l->type == MODEL_CONV2D)
			cnn_conv2d_s8_ref(l, in, o1);
		else if (l->type == MODEL_MAXPOOL)
			cnn_maxpool_s8_ref(l, in, o1);
		else if (l->type == MODEL_DENSE)
			cnn_dense_s8_ref(l, in, o1);
		else if (l->type == MODEL_RELU)
			cnn_relu_s8(o1, out_n);
		cnn_avx2_layer(a, i, in, o2);
		for (j = 0; j < out_n; j++)
			if (o1[j] != o2[j])
				fail_msg("layer %u type %d: output %zu: avx2 %d, reference %d", i,
					 l->type, j, o2[j], o1[j]);
		free(in);
		free(o1);
		free(o2);
	}
	cnn_avx2_free(a);
}

static void test_random_layers(void **state)
{
	struct tnet t;
	int i;

	(void)state;
	if (!cnn_avx2_supported())
		skip();
	rng = 12345;
	for (i = 0; i < 300; i++) {
		random_net(&t);
		layers_differ(&t.m);
		tn_free(&t);
	}
}

/* Cells that make up pic under the model's direction mode: each pixel's count
 * split in up to 4 cells (one more over 255 for a saturated pixel), shuffled,
 * plus cells of the other direction for fwd / rev models. */
static size_t cells_of(const struct model *m, const uint8_t *pic, struct cell *cells)
{
	size_t n = 0, i;
	uint32_t ch, y, x, parts;

	for (ch = 0; ch < m->in_channels; ch++)
		for (y = 0; y < m->res; y++)
			for (x = 0; x < m->res; x++) {
				uint32_t v = pic[(ch * m->res + y) * m->res + x], part;
				uint8_t dir = (uint8_t)(m->dirs == MODEL_DIR_SPLIT ? ch :
							m->dirs == MODEL_DIR_REV   ? 1 :
							m->dirs == MODEL_DIR_FWD   ? 0 :
										     rnd() % 2);

				if (v == 255 && rnd() % 2)
					cells[n++] = (struct cell){ (uint16_t)x, (uint16_t)y, dir,
								    (uint8_t)rnd_in(1, 255) };
				for (parts = 0; v; parts++, v -= part) {
					part = parts == 3 ? v : (uint32_t)rnd_in(1, (int32_t)v);
					cells[n++] = (struct cell){ (uint16_t)x, (uint16_t)y, dir,
								    (uint8_t)part };
				}
				if ((m->dirs == MODEL_DIR_FWD || m->dirs == MODEL_DIR_REV) &&
				    rnd() % 8 == 0)
					cells[n++] = (struct cell){ (uint16_t)x, (uint16_t)y,
								    (uint8_t)!dir, 77 };
			}
	for (i = n; i > 1; i--) {
		size_t j = rnd() % i;
		struct cell tmp = cells[i - 1];

		cells[i - 1] = cells[j];
		cells[j] = tmp;
	}
	return n;
}

static void cells_agree_flags(const struct model *m, const uint8_t *pic,
			      const struct cnn_result *ref, const unsigned int *flags,
			      size_t nflags)
{
	size_t max = model_tensor_size(m, -1) * 6 + 1, n, i;
	struct cell *cells = malloc(max * sizeof(*cells));
	struct cnn_result r;
	char what[64];

	assert_non_null(cells);
	n = cells_of(m, pic, cells);
	assert_true(n <= max);
	for (i = 0; i < nflags; i++) {
		struct cnn *c = cnn_for(m, flags[i]);

		assert_int_equal(cnn_run_sparse(c, cells, n, &r), 0);
		snprintf(what, sizeof(what), "cells, flags %#x", flags[i]);
		assert_logits(m, ref, &r, what);
		/* Twice: the sparse scratch must be clean again after a run. */
		assert_int_equal(cnn_run_sparse(c, cells, n, &r), 0);
		assert_logits(m, ref, &r, what);
		cnn_free(c);
	}
	free(cells);
}

static void cells_agree(const struct model *m, const uint8_t *pic, const struct cnn_result *ref)
{
	cells_agree_flags(m, pic, ref, all_flags, NFLAGS);
}

static void test_random_end_to_end(void **state)
{
	struct cnn_result ref;
	struct tnet t;
	uint8_t *pic;
	int i, j;

	(void)state;
	rng = 777;
	for (i = 0; i < 200; i++) {
		random_net(&t);
		pic = malloc(model_tensor_size(&t.m, -1));
		for (j = 0; j < 3; j++) {
			random_pic(pic, model_tensor_size(&t.m, -1));
			run_all(&t.m, pic, &ref);
			cells_agree(&t.m, pic, &ref);
		}
		free(pic);
		tn_free(&t);
	}
}

/* ---- the shapes of the literature ---- */

static void lenet5(struct tnet *t, uint32_t res, enum model_dirs dirs)
{
	tn_init(t, res, dirs);
	tn_conv(t, 6, 5, 5, 1, 1, NULL, true, true);
	tn_pool(t, 2, 2, 2, 2);
	tn_conv(t, 16, 5, 5, 1, 1, NULL, true, true);
	tn_pool(t, 2, 2, 2, 2);
	tn_flatten(t);
	tn_dense(t, 120, true, true);
	tn_dense(t, 84, true, true);
	tn_dense(t, 5, false, true);
	tn_done(t);
}

/* FlowPic (Shapira & Shavitt): conv 10@10x10/5, pool 2, conv 20@10x10/5, pool 2, dense 64, 5. */
static void flowpic_net(struct tnet *t, uint32_t res)
{
	tn_init(t, res, MODEL_DIR_BOTH);
	tn_conv(t, 10, 10, 10, 5, 5, NULL, true, true);
	tn_pool(t, 2, 2, 2, 2);
	tn_conv(t, 20, 10, 10, 5, 5, NULL, true, true);
	tn_pool(t, 2, 2, 2, 2);
	tn_flatten(t);
	tn_dense(t, 64, true, true);
	tn_dense(t, 5, false, true);
	tn_done(t);
}

static void sparse_pic(uint8_t *pic, uint32_t res, uint32_t cells)
{
	uint32_t i;

	memset(pic, 0, (size_t)res * res);
	for (i = 0; i < cells; i++)
		pic[(size_t)(rnd() % res) * res + rnd() % res] = (uint8_t)rnd_in(1, 255);
}

static void test_lenet5(void **state)
{
	uint8_t pic[2 * 32 * 32];
	struct cnn_result ref;
	struct tnet t;
	int i;

	(void)state;
	rng = 4242;
	lenet5(&t, 32, MODEL_DIR_BOTH);
	layers_differ(&t.m);
	for (i = 0; i < 20; i++) {
		random_pic(pic, 32 * 32);
		run_all(&t.m, pic, &ref);
		cells_agree(&t.m, pic, &ref);
	}
	tn_free(&t);
	lenet5(&t, 32, MODEL_DIR_SPLIT);
	random_pic(pic, 2 * 32 * 32);
	run_all(&t.m, pic, &ref);
	cells_agree(&t.m, pic, &ref);
	tn_free(&t);
}

static void test_flowpic_small(void **state)
{
	struct cnn_result ref;
	struct tnet t;
	uint8_t *pic;
	int i;

	(void)state;
	rng = 99;
	flowpic_net(&t, 300);
	pic = malloc(300 * 300);
	layers_differ(&t.m);
	for (i = 0; i < 4; i++) {
		sparse_pic(pic, 300, (uint32_t)rnd_in(1, 600));
		run_all(&t.m, pic, &ref);
		cells_agree(&t.m, pic, &ref);
	}
	free(pic);
	tn_free(&t);
}

/* The paper's 1500 x 1500 net: the sparse first layer against the dense reference. */
static void test_flowpic_full(void **state)
{
	static const unsigned int sparse_flags[] = { CNN_REF, 0 };
	struct cnn_result ref, r;
	struct cnn *c;
	struct tnet t;
	uint8_t *pic;

	(void)state;
	rng = 1500;
	flowpic_net(&t, 1500);
	pic = malloc(1500 * 1500);
	sparse_pic(pic, 1500, 3000);
	run_flags(&t.m, CNN_REF | CNN_DENSE_FIRST, pic, &ref);
	run_flags(&t.m, CNN_DENSE_FIRST, pic, &r);
	assert_logits(&t.m, &ref, &r, "avx2 dense");
	c = cnn_for(&t.m, 0);
	assert_int_equal(cnn_run(c, pic, &r), 0);
	assert_logits(&t.m, &ref, &r, "sparse");
	cnn_free(c);
	cells_agree_flags(&t.m, pic, &ref, sparse_flags, 2);
	free(pic);
	tn_free(&t);
}

/* ---- no allocation while classifying ---- */

static void test_no_alloc(void **state)
{
	uint8_t pic[32 * 32];
	struct cell cells[64];
	struct cnn_result r;
	unsigned long before;
	struct cnn *c[3], *tmp;
	struct tnet t;
	int i, j;

	(void)state;
	rng = 5;
	lenet5(&t, 32, MODEL_DIR_BOTH);
	random_pic(pic, sizeof(pic));
	for (i = 0; i < 64; i++)
		cells[i] = (struct cell){ (uint16_t)(rnd() % 32), (uint16_t)(rnd() % 32), 0, 3 };
	c[0] = cnn_for(&t.m, CNN_REF);
	c[1] = cnn_for(&t.m, 0);
	c[2] = cnn_for(&t.m, CNN_DENSE_FIRST);
	before = allocs;
	tmp = cnn_new(&t.m, 0);
	assert_true(allocs > before); /* the wrapper counts */
	cnn_free(tmp);
	before = allocs;
	for (i = 0; i < 3; i++)
		for (j = 0; j < 10; j++) {
			assert_int_equal(cnn_run(c[i], pic, &r), 0);
			assert_int_equal(cnn_run_sparse(c[i], cells, 64, &r), 0);
		}
	assert_int_equal(allocs, before);
	for (i = 0; i < 3; i++)
		cnn_free(c[i]);
	tn_free(&t);
}

static void test_refusals(void **state)
{
	struct cell bad = { 32, 0, 0, 1 };
	struct cnn_result r;
	struct cnn *c;
	struct tnet t;

	(void)state;
	rng = 6;
	lenet5(&t, 32, MODEL_DIR_BOTH);
	c = cnn_for(&t.m, 0);
	assert_int_equal(cnn_run_sparse(c, &bad, 1, &r), -EINVAL);
	bad = (struct cell){ 0, 0, 2, 1 };
	assert_int_equal(cnn_run_sparse(c, &bad, 1, &r), -EINVAL);
	cnn_free(c);
	t.l[1].out_h = 13; /* shape chain broken */
	errno = 0;
	assert_null(cnn_new(&t.m, 0));
	assert_int_equal(errno, EINVAL);
	tn_free(&t);
}

static void test_env_forces_ref(void **state)
{
	struct cnn *c;
	struct tnet t;

	(void)state;
	rng = 7;
	lenet5(&t, 32, MODEL_DIR_BOTH);
	setenv(CNN_ENV_REF, "1", 1);
	c = cnn_for(&t.m, 0);
	assert_string_equal(cnn_path(c), "ref");
	cnn_free(c);
	unsetenv(CNN_ENV_REF);
	c = cnn_for(&t.m, 0);
	assert_string_equal(cnn_path(c), cnn_avx2_supported() ? "avx2" : "ref");
	cnn_free(c);
	tn_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_requant_edges),
		cmocka_unit_test(test_conv_hand),
		cmocka_unit_test(test_conv_pad_stride_hand),
		cmocka_unit_test(test_conv_channels_hand),
		cmocka_unit_test(test_dense_hand),
		cmocka_unit_test(test_pool_hand),
		cmocka_unit_test(test_relu_layer_hand),
		cmocka_unit_test(test_random_layers),
		cmocka_unit_test(test_random_end_to_end),
		cmocka_unit_test(test_lenet5),
		cmocka_unit_test(test_flowpic_small),
		cmocka_unit_test(test_flowpic_full),
		cmocka_unit_test(test_no_alloc),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_env_forces_ref),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
