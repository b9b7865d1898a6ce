/* SPDX-License-Identifier: MIT */
/*
 * cnn.h - int8 CNN inference on FlowPics: exact integer arithmetic, no
 * allocation per picture, a plain C reference path and an AVX2 path that
 * gives the same bits.  The engine is cnn.c; the kernels of the two paths
 * are cnn_ref.c and cnn_avx2.c (declared in cnn_kernels.h).
 *
 * cnn_new() sizes everything from the model once: one arena holding the
 * largest pair of consecutive activation tensors, the scratch of the sparse
 * first convolution, and the AVX2 path's repacked weights.  cnn_run() on a
 * dense picture and cnn_run_sparse() on a block's cells then allocate
 * nothing.  A cnn is not thread-safe: use one per thread (they may share the
 * model, which must outlive them).
 *
 * The arithmetic (docs/model-format.md, "Arithmetic") is integer only:
 * int8 activations and weights, int32 accumulators and biases, and one
 * fixed-point requantization per output, cnn_requant() (cnn_kernels.h).
 * The Python side (model/flowpic_model/int8ref.py) implements the same
 * definition, and golden vectors from it are reproduced bit for bit.
 *
 * The first convolution of a nearly empty picture is computed by scattering
 * each non-zero input pixel into the accumulators it reaches (work per
 * packet cell, not per pixel); every output it does not reach is the
 * requantized bias.  This needs the lookup table to map count 0 to 0.
 */
#ifndef FLOWPIC_CNN_H
#define FLOWPIC_CNN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flow.h"
#include "model_file.h"

enum cnn_flags {
	CNN_REF = 1 << 0,	   /* reference kernels even where AVX2 is available */
	CNN_DENSE_FIRST = 1 << 1,  /* never the sparse first convolution */
	CNN_SPARSE_FIRST = 1 << 2, /* sparse first convolution whatever the density */
};

/* Environment: FLOWPIC_CNN_REF=1 forces the reference path like CNN_REF. */
#define CNN_ENV_REF "FLOWPIC_CNN_REF"

/* The sparse first convolution is used when the non-zero input pixels times
 * the outputs each reaches are at most 1/CNN_SPARSE_DIV of the outputs. */
#define CNN_SPARSE_DIV 2

struct cnn_result {
	uint32_t cls;			  /* argmax of logits, lowest index on ties */
	int8_t logits[MODEL_MAX_CLASSES]; /* exact: what the golden vectors hold */
	float logit[MODEL_MAX_CLASSES];	  /* logits * the last layer's scale */
	float prob[MODEL_MAX_CLASSES];	  /* softmax of logit */
};

struct cnn;

/* NULL and errno set (EINVAL model not checked, ENOMEM) on failure. */
struct cnn *cnn_new(const struct model *m, unsigned int flags);
void cnn_free(struct cnn *c);

/* "avx2" or "ref". */
const char *cnn_path(const struct cnn *c);

/* Bytes allocated by cnn_new() besides the struct (arena, scratch, repacked weights). */
size_t cnn_memory(const struct cnn *c);

/*
 * Classify one picture: in_channels planes of res x res counts,
 * pic[(ch * res + y) * res + x] (y = size bin, x = time bin; channel 0 =
 * fwd, 1 = rev for a "split" model).  0, or -errno.
 */
int cnn_run(struct cnn *c, const uint8_t *pic, struct cnn_result *out);

/*
 * Classify one block from its cells (struct cell of flow.h, as
 * block_cells_next() gives them; the same x, y, dir may repeat: counts add,
 * saturating at 255).  The model's direction mode picks the cells and the
 * channel: both = all cells in channel 0, fwd / rev = only those, split =
 * channel dir.  0, or -EINVAL for a cell outside the picture.
 */
int cnn_run_sparse(struct cnn *c, const struct cell *cells, size_t n, struct cnn_result *out);

/* Channel of a cell under the model's direction mode, or -1 to leave it out. */
static inline int cnn_cell_channel(enum model_dirs dirs, const struct cell *cl)
{
	switch (dirs) {
	case MODEL_DIR_BOTH:
		return 0;
	case MODEL_DIR_FWD:
		return cl->dir == FLOW_DIR_FWD ? 0 : -1;
	case MODEL_DIR_REV:
		return cl->dir == FLOW_DIR_REV ? 0 : -1;
	case MODEL_DIR_SPLIT:
		return cl->dir;
	}
	return -1;
}

#endif
