/* SPDX-License-Identifier: MIT */
/*
 * model_picture.h - a block's picture exactly as the classifier's model
 * judges it, as a sparse list: each cell in the channel the model's
 * direction mode gives it (cnn_cell_channel()), the counts of one pixel
 * added and saturated at 255 (as classify.c and cnn.c do), the non-zero
 * pixels listed by increasing flat index (channel * res + y) * res + x.
 *
 * The agent sends it with its block verdicts (--send-pictures), the
 * dashboard shows it for an uploaded capture: one picture, one builder.
 * The buffers are sized once from the model; nothing is allocated per
 * picture.
 */
#ifndef FLOWPIC_MODEL_PICTURE_H
#define FLOWPIC_MODEL_PICTURE_H

#include <stddef.h>
#include <stdint.h>

#include "flow.h"
#include "model_file.h"

struct model_picture {
	uint32_t res;	 /* rows = cols: the model's resolution */
	uint32_t planes; /* the model's input channels (2 for MODEL_DIR_SPLIT) */
	enum model_dirs dirs;
	uint32_t n;	 /* non-zero pixels; more than cap: index and count unset */
	uint32_t cap;	 /* pixels index and count hold */
	uint32_t *index; /* n flat indexes, increasing */
	uint8_t *count;	 /* n counts, 1 .. 255 */
	uint8_t *plane;	 /* planes * res * res counts, all 0 between pictures */
	size_t plane_len;
};

/* Buffers for m's pictures, listing at most cap pixels (0: every pixel of
 * the picture).  0, or -ENOMEM (p is then empty, model_picture_free() safe). */
int model_picture_init(struct model_picture *p, const struct model *m, uint32_t cap);
void model_picture_free(struct model_picture *p);

/* The picture of block b of table ft (its cells are only valid in the
 * table's block event).  Cells outside the picture are left out: the
 * classifier refused such a block. */
void model_picture_block(struct model_picture *p, const struct flow_table *ft,
			 const struct block *b);

/* The same from a list of cells (x, y, dir, count; repeated pixels are
 * added up as above). */
void model_picture_cells(struct model_picture *p, const struct cell *cells, size_t n);

#endif
