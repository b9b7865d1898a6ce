// SPDX-License-Identifier: MIT
/*
 * test_model_file.c - the .fpcnn model file: a round trip through
 * model_encode() and the loaders, and every refusal: truncation at every
 * length, every flipped byte, bad magic, other versions, offsets outside the
 * file, misaligned tensors, broken shape chains, class count, quantization
 * parameters out of range.  Each refusal is NULL, errno, and one line naming
 * the file and the fault.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "core/model_file.h"

#define NAME "model.fpcnn"
#define HEADER 384
#define LAYER 80

/* A small model with every layer type: 8x8 split input, conv 3@3x3 pad 1,
 * relu, pool 2, flatten, dense 4 relu, dense 3 classes. */
struct fixture {
	struct model m;
	struct model_layer l[6];
	char *classes[3];
	int8_t w0[3 * 2 * 9], w4[4 * 48], w5[3 * 4];
	int32_t b[3][4], mult[3][4], shift[3][4];
	uint8_t *buf;
	size_t len;
};

static void layer_shape(struct model_layer *l, uint32_t c, uint32_t h, uint32_t w)
{
	l->in_c = c;
	l->in_h = h;
	l->in_w = w;
}

static void set_params(struct model_layer *l, int8_t *w, int32_t *b, int32_t *mult, int32_t *shift,
		       size_t nw)
{
	size_t i;

	for (i = 0; i < nw; i++)
		w[i] = (int8_t)((int)(i * 37 % 255) - 127);
	for (i = 0; i < l->out_c; i++) {
		b[i] = (int32_t)i * 100 - 50;
		mult[i] = (1 << 30) + (int32_t)i * 12345;
		shift[i] = (int32_t)(i + 3);
	}
	l->weight = w;
	l->bias = b;
	l->mult = mult;
	l->shift = shift;
}

static void fixture_build(struct fixture *f)
{
	static char *names[3] = { "voip", "video", "file_transfer" };
	struct model_layer *l = f->l;
	int c;

	memset(f, 0, sizeof(*f));
	f->m.name = "fixture";
	f->m.version = "1.2.3";
	f->m.n_classes = 3;
	memcpy(f->classes, names, sizeof(names));
	f->m.classes = f->classes;
	f->m.res = 8;
	f->m.in_channels = 2;
	f->m.dirs = MODEL_DIR_SPLIT;
	f->m.window_ns = 15000000000ULL;
	f->m.size_max = 1500;
	f->m.input_scale = 0.0078125f;
	for (c = 0; c < 256; c++)
		f->m.lut[c] = (int8_t)(c / 2);
	f->m.n_layers = 6;
	f->m.layers = f->l;

	l[0] = (struct model_layer){ .type = MODEL_CONV2D,
				     .relu = false,
				     .out_c = 3,
				     .out_h = 8,
				     .out_w = 8,
				     .kh = 3,
				     .kw = 3,
				     .sh = 1,
				     .sw = 1,
				     .pad_top = 1,
				     .pad_left = 1,
				     .pad_bottom = 1,
				     .pad_right = 1,
				     .out_scale = 0.5f };
	layer_shape(&l[0], 2, 8, 8);
	set_params(&l[0], f->w0, f->b[0], f->mult[0], f->shift[0], sizeof(f->w0));
	l[1] = (struct model_layer){
		.type = MODEL_RELU, .out_c = 3, .out_h = 8, .out_w = 8, .out_scale = 0.5f
	};
	layer_shape(&l[1], 3, 8, 8);
	l[2] = (struct model_layer){ .type = MODEL_MAXPOOL,
				     .out_c = 3,
				     .out_h = 4,
				     .out_w = 4,
				     .kh = 2,
				     .kw = 2,
				     .sh = 2,
				     .sw = 2,
				     .out_scale = 0.5f };
	layer_shape(&l[2], 3, 8, 8);
	l[3] = (struct model_layer){
		.type = MODEL_FLATTEN, .out_c = 48, .out_h = 1, .out_w = 1, .out_scale = 0.5f
	};
	layer_shape(&l[3], 3, 4, 4);
	l[4] = (struct model_layer){ .type = MODEL_DENSE,
				     .relu = true,
				     .out_c = 4,
				     .out_h = 1,
				     .out_w = 1,
				     .out_scale = 0.25f };
	layer_shape(&l[4], 48, 1, 1);
	set_params(&l[4], f->w4, f->b[1], f->mult[1], f->shift[1], sizeof(f->w4));
	l[5] = (struct model_layer){
		.type = MODEL_DENSE, .out_c = 3, .out_h = 1, .out_w = 1, .out_scale = 0.125f
	};
	layer_shape(&l[5], 4, 1, 1);
	set_params(&l[5], f->w5, f->b[2], f->mult[2], f->shift[2], sizeof(f->w5));
	assert_int_equal(model_encode(&f->m, &f->buf, &f->len), 0);
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static void fix_crc(uint8_t *buf, size_t len)
{
	put32(buf + len - 4, (uint32_t)crc32(crc32(0, Z_NULL, 0), buf, (uInt)(len - 4)));
}

/* Refused with errno e and the line NAME ": " what (a prefix of the reason). */
static void refused(const uint8_t *buf, size_t len, int e, const char *what)
{
	char err[256], want[256];
	struct model *m;

	errno = 0;
	m = model_load_mem(buf, len, NAME, err, sizeof(err));
	if (m) {
		model_free(m);
		fail_msg("accepted (%s expected)", what);
	}
	snprintf(want, sizeof(want), NAME ": %s", what);
	if (strncmp(err, want, strlen(want)))
		fail_msg("message \"%s\", expected it to start \"%s\"", err, want);
	assert_null(strchr(err, '\n'));
	assert_int_equal(errno, e);
}

/* Patch a copy of the fixture, fix its CRC, expect a refusal. */
static void patched(const struct fixture *f, size_t off, const void *bytes, size_t n,
		    const char *what)
{
	uint8_t *buf = malloc(f->len);

	memcpy(buf, f->buf, f->len);
	memcpy(buf + off, bytes, n);
	fix_crc(buf, f->len);
	refused(buf, f->len, EINVAL, what);
	free(buf);
}

static size_t layer_off(const struct fixture *f, int i)
{
	return (size_t)get64(f->buf + 80) + (size_t)i * LAYER;
}

static void assert_same_model(const struct model *a, const struct model *b)
{
	uint32_t i;

	assert_string_equal(a->name, b->name);
	assert_string_equal(a->version, b->version);
	assert_int_equal(a->n_classes, b->n_classes);
	for (i = 0; i < a->n_classes; i++)
		assert_string_equal(a->classes[i], b->classes[i]);
	assert_int_equal(a->res, b->res);
	assert_int_equal(a->in_channels, b->in_channels);
	assert_int_equal(a->dirs, b->dirs);
	assert_int_equal(a->window_ns, b->window_ns);
	assert_int_equal(a->size_max, b->size_max);
	assert_true(a->input_scale == b->input_scale);
	assert_memory_equal(a->lut, b->lut, 256);
	assert_int_equal(a->n_layers, b->n_layers);
	for (i = 0; i < a->n_layers; i++) {
		const struct model_layer *x = &a->layers[i], *y = &b->layers[i];

		assert_int_equal(x->type, y->type);
		assert_int_equal(x->relu, y->relu);
		assert_int_equal(x->out_c * x->out_h * x->out_w, y->out_c * y->out_h * y->out_w);
		assert_int_equal(x->kh + x->kw + x->sh + x->sw, y->kh + y->kw + y->sh + y->sw);
		assert_true(x->out_scale == y->out_scale);
		if (x->type != MODEL_CONV2D && x->type != MODEL_DENSE)
			continue;
		assert_memory_equal(x->weight, y->weight, x->out_c * model_layer_k(x));
		assert_memory_equal(x->bias, y->bias, 4 * x->out_c);
		assert_memory_equal(x->mult, y->mult, 4 * x->out_c);
		assert_memory_equal(x->shift, y->shift, 4 * x->out_c);
		assert_int_equal((uintptr_t)y->weight % MODEL_ALIGN, 0);
	}
}

static void test_round_trip(void **state)
{
	char err[256], path[] = "/tmp/test_model_file.XXXXXX";
	struct fixture f;
	struct model *m, *m2;
	uint8_t *again;
	size_t len;
	FILE *fp;
	int fd;

	(void)state;
	fixture_build(&f);
	m = model_load_mem(f.buf, f.len, NAME, err, sizeof(err));
	if (!m)
		fail_msg("%s", err);
	assert_same_model(&f.m, m);
	/* Canonical: encoding what was loaded gives the same bytes. */
	assert_int_equal(model_encode(m, &again, &len), 0);
	assert_int_equal(len, f.len);
	assert_memory_equal(again, f.buf, len);
	free(again);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	fp = fdopen(fd, "wb");
	assert_int_equal(fwrite(f.buf, 1, f.len, fp), f.len);
	fclose(fp);
	m2 = model_load(path, err, sizeof(err));
	if (!m2)
		fail_msg("%s", err);
	assert_same_model(m, m2);
	unlink(path);
	model_free(m2);
	model_free(m);
	free(f.buf);
}

static void test_truncated(void **state)
{
	struct fixture f;
	size_t len;

	(void)state;
	fixture_build(&f);
	for (len = 0; len < f.len; len++)
		refused(f.buf, len, EINVAL, "truncated");
	free(f.buf);
}

static void test_trailing(void **state)
{
	struct fixture f;
	uint8_t *buf;
	char want[96];

	(void)state;
	fixture_build(&f);
	buf = calloc(1, f.len + 1);
	memcpy(buf, f.buf, f.len);
	snprintf(want, sizeof(want), "%zu bytes, but the header says %zu (trailing data?)",
		 f.len + 1, f.len);
	refused(buf, f.len + 1, EINVAL, want);
	free(buf);
	free(f.buf);
}

/* Every byte flipped: magic, version, header size, file size, or the checksum. */
static void test_flipped(void **state)
{
	struct fixture f;
	size_t i;

	(void)state;
	fixture_build(&f);
	for (i = 0; i < f.len; i++) {
		f.buf[i] ^= 0x10;
		if (i < 8)
			refused(f.buf, f.len, EINVAL, "not a flowpic model file (bad magic)");
		else if (i < 12)
			refused(f.buf, f.len, ENOTSUP, "format version");
		else if (i < 16)
			refused(f.buf, f.len, EINVAL, "header size");
		else if (i < 24)
			refused(f.buf, f.len, EINVAL, i == 16 ? "" : "truncated");
		else
			refused(f.buf, f.len, EBADMSG, "checksum mismatch (file corrupted?)");
		f.buf[i] ^= 0x10;
	}
	free(f.buf);
}

static void test_version(void **state)
{
	struct fixture f;
	char err[256];

	(void)state;
	fixture_build(&f);
	put32(f.buf + 8, 3);
	refused(f.buf, f.len, ENOTSUP,
		"format version 3, this flowpic reads version 1: update flowpic");
	put32(f.buf + 8, 0);
	refused(f.buf, f.len, ENOTSUP,
		"format version 0, this flowpic reads version 1: re-export the model");
	memcpy(f.buf, "GIF89a\0\0", 8);
	refused(f.buf, f.len, EINVAL, "not a flowpic model file (bad magic)");
	assert_null(model_load("/nonexistent/m.fpcnn", err, sizeof(err)));
	assert_int_equal(errno, ENOENT);
	assert_string_equal(err, "/nonexistent/m.fpcnn: cannot read: No such file or directory");
	free(f.buf);
}

static void test_offsets(void **state)
{
	uint8_t v8[8];
	struct fixture f;
	uint64_t past;

	(void)state;
	fixture_build(&f);
	past = f.len + 64;
	put64(v8, past);
	patched(&f, layer_off(&f, 0) + 48, v8, 8, "layer 0: weights at");
	patched(&f, layer_off(&f, 5) + 72, v8, 8, "layer 5: shifts at");
	patched(&f, 64, v8, 8, "string table at");
	patched(&f, 80, v8, 8, "layer table at");
	patched(&f, 88, v8, 8, "tensor data at");
	put64(v8, get64(f.buf + layer_off(&f, 4) + 56) + 4);
	patched(&f, layer_off(&f, 4) + 56, v8, 8, "layer 4: biases at");
	put64(v8, get64(f.buf + 96) + 1000);
	patched(&f, 96, v8, 8, "tensor data at");
	/* A tensor offset on a layer that has none. */
	put64(v8, get64(f.buf + 88));
	patched(&f, layer_off(&f, 1) + 48, v8, 8, "layer 1 (relu) has tensor offsets");
	free(f.buf);
}

static void test_shapes(void **state)
{
	uint8_t v4[4];
	struct fixture f;

	(void)state;
	fixture_build(&f);
	put32(v4, 4);
	patched(&f, layer_off(&f, 1) + 4, v4, 4,
		"layer 1 (relu): input 4x8x8 does not match the previous output 3x8x8");
	put32(v4, 5);
	patched(&f, layer_off(&f, 2) + 20, v4, 4, "layer 2 (maxpool): output 3x5x4, expected");
	patched(&f, layer_off(&f, 0) + 8, v4, 4,
		"layer 0 (conv2d): input 2x5x8 does not match the model input 2x8x8");
	put32(v4, 1);
	patched(&f, 36, v4, 4, "1 input channels with direction \"split\"");
	put32(v4, 47);
	patched(&f, layer_off(&f, 3) + 16, v4, 4, "layer 3 (flatten): output 47x1x1");
	/* The last dense layer gives 3 values: with 2 classes the strings are one too
	 * many, with the name dropped they would be counted wrong the other way. */
	put32(v4, 2);
	patched(&f, 24, v4, 4, "string table: 14 bytes after the last class name");
	v4[0] = 9;
	patched(&f, layer_off(&f, 0), v4, 1, "layer 0: unknown type 9");
	v4[0] = MODEL_CONV2D;
	v4[1] = 2;
	patched(&f, layer_off(&f, 0), v4, 2, "layer 0: unknown flags");
	free(f.buf);
}

static void test_params(void **state)
{
	uint8_t v4[4], w = 0x80;
	struct fixture f;
	uint64_t mult, shift, bias, weight;

	(void)state;
	fixture_build(&f);
	weight = get64(f.buf + layer_off(&f, 4) + 48);
	bias = get64(f.buf + layer_off(&f, 4) + 56);
	mult = get64(f.buf + layer_off(&f, 4) + 64);
	shift = get64(f.buf + layer_off(&f, 4) + 72);
	put32(v4, 1000);
	patched(&f, mult + 4, v4, 4, "layer 4 (dense): channel 1: multiplier 1000");
	put32(v4, 32);
	patched(&f, shift + 8, v4, 4, "layer 4 (dense): channel 2: shift 32");
	put32(v4, 1 << 30);
	patched(&f, bias, v4, 4, "layer 4 (dense): channel 0: |bias| 1073741824");
	patched(&f, weight + 7, &w, 1, "layer 4 (dense): weight 7 is -128");
	put32(v4, 0x7fc00000); /* NaN */
	patched(&f, layer_off(&f, 5) + 44, v4, 4, "layer 5 (dense): output scale nan");
	put32(v4, 0x3f800000); /* 1.0 where 0.5 is the input's */
	patched(&f, layer_off(&f, 2) + 44, v4, 4,
		"layer 2 (maxpool): output scale 1 differs from its input's 0.5");
	put32(v4, 0);
	patched(&f, 56, v4, 4, "input scale 0");
	free(f.buf);
}

static void test_strings(void **state)
{
	struct fixture f;

	(void)state;
	fixture_build(&f);
	/* "fixture\0" "1.2.3\0" "voip\0" "video\0" "file_transfer\0" */
	patched(&f, HEADER + 14, "\xff", 1, "string table: string 2 is not UTF-8");
	patched(&f, HEADER + 16, "\xc3\x28", 2, "string table: string 2 is not UTF-8");
	patched(&f, HEADER + 38, "x", 1, "string table: 4 of 5 strings");
	free(f.buf);
}

static void test_check_in_memory(void **state)
{
	struct fixture f;
	char err[256];
	uint8_t *buf;
	size_t len;

	(void)state;
	fixture_build(&f);
	free(f.buf);
	f.m.n_classes = 2;
	assert_int_equal(model_check(&f.m, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "the last layer gives 3 values for 2 classes");
	assert_int_equal(model_encode(&f.m, &buf, &len), -EINVAL);
	f.m.n_classes = 3;
	f.classes[1] = "voip";
	assert_int_equal(model_check(&f.m, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "class name \"voip\" appears twice");
	f.classes[1] = "";
	assert_int_equal(model_check(&f.m, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "class 1 has no name");
	f.classes[1] = "video";
	f.m.name = "";
	assert_int_equal(model_check(&f.m, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "model name is empty");
	f.m.name = "fixture";
	f.l[0].pad_top = 3;
	assert_int_equal(model_check(&f.m, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "layer 0 (conv2d): padding 3,1,1,1 must be below the kernel 3x3");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip), cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_trailing),   cmocka_unit_test(test_flipped),
		cmocka_unit_test(test_version),	   cmocka_unit_test(test_offsets),
		cmocka_unit_test(test_shapes),	   cmocka_unit_test(test_params),
		cmocka_unit_test(test_strings),	   cmocka_unit_test(test_check_in_memory),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
