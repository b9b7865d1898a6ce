// SPDX-License-Identifier: MIT
/*
 * cnn_golden.c - the C side of the golden vectors, driven by
 * model/tests/test_int8ref.py.
 *
 *   cnn_golden MODEL GOLDEN        every picture of GOLDEN through every path
 *                                  (reference, AVX2, dense and sparse first
 *                                  layer, pictures and cells) must give the
 *                                  logits the Python reference computed
 *   cnn_golden --reencode IN OUT   load IN, write model_encode() to OUT (the
 *                                  Python side checks the bytes are its own)
 *   cnn_golden --bench MODEL CELLS|GOLDEN [RUNS]
 *                                  microseconds per picture, each path, on a
 *                                  random picture of about CELLS non-zero
 *                                  pixels, or cycling through the pictures of
 *                                  a golden file (real held-out pictures):
 *                                  not a test, a measurement (bench/inference.py)
 *
 * GOLDEN: "FPGOLD01", u32 count, u32 picture bytes, u32 classes, u32 0, then
 * count records of picture bytes followed by the int8 logits.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cnn.h"
#include "core/cnn_kernels.h"

static const unsigned int flag_sets[] = {
	CNN_REF | CNN_DENSE_FIRST, CNN_REF | CNN_SPARSE_FIRST, CNN_REF,
	CNN_DENSE_FIRST,	   CNN_SPARSE_FIRST,	       0,
};
#define NSETS (sizeof(flag_sets) / sizeof(flag_sets[0]))

static void *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
		goto close_file;
	buf = malloc((size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	*len = (size_t)n;
close_file:
	fclose(f);
	return buf;
}

static struct model *load(const char *path)
{
	char err[256];
	struct model *m = model_load(path, err, sizeof(err));

	if (!m)
		fprintf(stderr, "cnn_golden: %s\n", err);
	return m;
}

/* One cell per non-zero pixel, in the direction the model reads it from. */
static size_t pic_cells(const struct model *m, const uint8_t *pic, struct cell *cells)
{
	uint8_t dir0 = m->dirs == MODEL_DIR_REV ? 1 : 0;
	uint32_t ch, y, x;
	size_t n = 0;

	for (ch = 0; ch < m->in_channels; ch++)
		for (y = 0; y < m->res; y++)
			for (x = 0; x < m->res; x++) {
				uint8_t v = pic[((size_t)ch * m->res + y) * m->res + x];

				if (v)
					cells[n++] = (struct cell){ (uint16_t)x, (uint16_t)y,
								    (uint8_t)(dir0 + ch), v };
			}
	return n;
}

static int check_one(struct cnn *const *c, const struct model *m, const uint8_t *pic,
		     const int8_t *want, struct cell *cells, uint32_t rec)
{
	size_t ncells = pic_cells(m, pic, cells), s;
	struct cnn_result r;
	uint32_t i;
	int pass;

	for (s = 0; s < NSETS; s++) {
		for (pass = 0; pass < 2; pass++) {
			if (pass ? cnn_run_sparse(c[s], cells, ncells, &r) : cnn_run(c[s], pic, &r))
				return -1;
			for (i = 0; i < m->n_classes; i++) {
				if (r.logits[i] == want[i])
					continue;
				fprintf(stderr,
					"cnn_golden: record %u, %s, flags %#x: logit %u is "
					"%d, golden %d\n",
					rec, pass ? "cells" : "picture", flag_sets[s], i,
					r.logits[i], want[i]);
				return -1;
			}
		}
	}
	return 0;
}

static int golden(const char *model_path, const char *golden_path)
{
	struct cnn *c[NSETS] = { 0 };
	uint32_t hdr[4], rec;
	struct cell *cells = NULL;
	struct model *m;
	uint8_t *buf;
	size_t len, s, rec_len;
	int rc = 1;

	m = load(model_path);
	buf = slurp(golden_path, &len);
	if (!m || !buf || len < 24 || memcmp(buf, "FPGOLD01", 8)) {
		fprintf(stderr, "cnn_golden: cannot use %s / %s\n", model_path, golden_path);
		goto free_all;
	}
	memcpy(hdr, buf + 8, 16);
	rec_len = (size_t)hdr[1] + hdr[2];
	if (hdr[1] != model_tensor_size(m, -1) || hdr[2] != m->n_classes ||
	    len != 24 + rec_len * hdr[0]) {
		fprintf(stderr, "cnn_golden: %s does not fit %s\n", golden_path, model_path);
		goto free_all;
	}
	cells = malloc(hdr[1] * sizeof(*cells) + 1);
	for (s = 0; s < NSETS; s++)
		if (!(c[s] = cnn_new(m, flag_sets[s])))
			goto free_all;
	for (rec = 0; rec < hdr[0]; rec++) {
		const uint8_t *r = buf + 24 + rec * rec_len;

		if (check_one(c, m, r, (const int8_t *)r + hdr[1], cells, rec))
			goto free_all;
	}
	printf("cnn_golden: %u pictures, %zu paths each, pictures and cells: all logits equal "
	       "(%s, avx2 %s)\n",
	       hdr[0], NSETS, m->name, cnn_avx2_supported() ? "available" : "not available");
	rc = 0;
free_all:
	for (s = 0; s < NSETS; s++)
		cnn_free(c[s]);
	free(cells);
	free(buf);
	model_free(m);
	return rc;
}

static int reencode(const char *in, const char *out)
{
	struct model *m = load(in);
	uint8_t *buf = NULL;
	size_t len;
	FILE *f;
	int rc = 1;

	if (!m || model_encode(m, &buf, &len))
		goto free_model;
	f = fopen(out, "wb");
	if (f && fwrite(buf, 1, len, f) == len)
		rc = 0;
	if (f && fclose(f))
		rc = 1;
free_model:
	free(buf);
	model_free(m);
	return rc;
}

/* ---- timing ---- */

static uint64_t rng = 0x2545f4914f6cdd1dULL;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 11);
}

/* This thread's CPU time: other work on a shared machine does not count. */
static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* Best of 5 repetitions of runs pictures (cycling through npics of them). */
static void bench_path(const struct model *m, unsigned int flags, const char *what,
		       const uint8_t *pics, size_t npics, int runs)
{
	size_t n = model_tensor_size(m, -1), *ncells = NULL, i;
	struct cell *cells = NULL;
	struct cnn *c = cnn_new(m, flags);
	struct cnn_result r = { 0 };
	double t0, best = 1e30;
	int k, rep;

	if (!c)
		return;
	if (!strcmp(what, "cells")) {
		cells = malloc(npics * n * sizeof(*cells) + 1);
		ncells = malloc(npics * sizeof(*ncells));
		if (!ncells) {
			free(cells);
			cells = NULL;
		}
		for (i = 0; cells && i < npics; i++)
			ncells[i] = pic_cells(m, pics + i * n, cells + i * n);
	}
	for (rep = 0; rep < 5; rep++) {
		t0 = now_us();
		for (k = 0; k < runs; k++) {
			i = (size_t)k % npics;
			if (cells)
				cnn_run_sparse(c, cells + i * n, ncells[i], &r);
			else
				cnn_run(c, pics + i * n, &r);
		}
		t0 = (now_us() - t0) / runs;
		best = t0 < best ? t0 : best;
	}
	printf("%-28s %-4s %10.2f us/picture  (class %u, %zu KiB scratch)\n", what, cnn_path(c),
	       best, r.cls, cnn_memory(c) / 1024);
	free(ncells);
	free(cells);
	cnn_free(c);
}

/* Pictures to time: those of a golden file, or one random picture of about
 * want_cells non-zero pixels. */
static uint8_t *bench_pictures(const struct model *m, const char *arg, size_t *npics)
{
	size_t n = model_tensor_size(m, -1), len, i;
	uint8_t *buf, *pic;
	uint32_t hdr[4];
	char *end;
	unsigned long want_cells = strtoul(arg, &end, 10);

	if (*arg && !*end) {
		pic = calloc(n, 1);
		for (i = 0; pic && i < want_cells; i++)
			pic[rnd() % n] = (uint8_t)(1 + rnd() % (rnd() % 4 ? 8 : 255));
		*npics = 1;
		return pic;
	}
	buf = slurp(arg, &len);
	if (!buf || len < 24 || memcmp(buf, "FPGOLD01", 8)) {
		fprintf(stderr, "cnn_golden: %s: not a golden file\n", arg);
		free(buf);
		return NULL;
	}
	memcpy(hdr, buf + 8, 16);
	if (hdr[0] == 0 || hdr[1] != n || hdr[2] != m->n_classes ||
	    len != 24 + ((size_t)hdr[1] + hdr[2]) * hdr[0]) {
		fprintf(stderr, "cnn_golden: %s does not fit %s\n", arg, m->name);
		free(buf);
		return NULL;
	}
	pic = malloc(n * hdr[0]);
	for (i = 0; pic && i < hdr[0]; i++)
		memcpy(pic + i * n, buf + 24 + i * (n + hdr[2]), n);
	free(buf);
	*npics = hdr[0];
	return pic;
}

static int bench(const char *path, const char *what, int runs)
{
	struct model *m = load(path);
	size_t npics = 0, n, i, nz = 0;
	uint8_t *pics;

	if (!m)
		return 1;
	pics = bench_pictures(m, what, &npics);
	if (!pics) {
		model_free(m);
		return 1;
	}
	n = model_tensor_size(m, -1);
	for (i = 0; i < npics * n; i++)
		nz += pics[i] != 0;
	printf("%s: %u x %u, %zu picture(s), %.1f non-zero pixels each\n", m->name, m->res, m->res,
	       npics, (double)nz / (double)npics);
	bench_path(m, CNN_REF | CNN_DENSE_FIRST, "picture, dense first layer", pics, npics, runs);
	bench_path(m, CNN_DENSE_FIRST, "picture, dense first layer", pics, npics, runs);
	bench_path(m, CNN_REF | CNN_SPARSE_FIRST, "picture, sparse first layer", pics, npics, runs);
	bench_path(m, CNN_SPARSE_FIRST, "picture, sparse first layer", pics, npics, runs);
	bench_path(m, CNN_REF, "cells", pics, npics, runs);
	bench_path(m, 0, "cells", pics, npics, runs);
	free(pics);
	model_free(m);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && argv[1][0] != '-')
		return golden(argv[1], argv[2]);
	if (argc == 4 && !strcmp(argv[1], "--reencode"))
		return reencode(argv[2], argv[3]);
	if ((argc == 4 || argc == 5) && !strcmp(argv[1], "--bench"))
		return bench(argv[2], argv[3], argc == 5 ? atoi(argv[4]) : 100);
	fprintf(stderr, "usage: cnn_golden MODEL GOLDEN | --reencode IN OUT | "
			"--bench MODEL CELLS|GOLDEN [RUNS]\n");
	return 2;
}
