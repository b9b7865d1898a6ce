/* SPDX-License-Identifier: MIT */
/*
 * classify_int.h - what classify.c lends classify_file.c; not installed,
 * not for other callers.
 *
 * The whole-file driver's worker thread (classify_file.c) splits a block's
 * classification in two: the reading thread deduplicates its cells into a
 * queue, the worker runs the model on them and adds the vote.  Those two
 * halves are classifier_block()'s own steps, so they live in classify.c
 * beside it and are declared here; struct classifier stays private to
 * classify.c.
 */
#ifndef FLOWPIC_CLASSIFY_INT_H
#define FLOWPIC_CLASSIFY_INT_H

#include <stddef.h>
#include <stdint.h>

#include "classify.h"

/* Distinct (x, y, dir) cells of a block at resolution res, at most. */
#define CLASSIFY_MAX_CELLS(res) (2 * (size_t)(res) * (res))

/*
 * A block's distinct cells (x, y, dir) with their counts summed (saturating
 * at 255), through plane (CLASSIFY_MAX_CELLS(res) bytes, all 0 before and
 * after), into out: how many, or -EINVAL when a cell lies outside the
 * model's picture (a table not configured by classifier_flow_config()).
 */
long classify_cells_dedupe(uint32_t res, uint8_t *plane, const struct flow_table *ft,
			   const struct block *b, struct cell *out);

/* The block verdict of n deduplicated cells (n < 0: the -EINVAL of
 * classify_cells_dedupe(), counted as a failed block). */
int classify_cells(struct classifier *c, const struct cell *cells, long n, const struct block *b,
		   struct block_verdict *v);

/* Add a block verdict to its flow's votes (the table sized for max_flows). */
int classify_vote(struct classifier *c, uint32_t max_flows, const struct block_verdict *v);

#endif
