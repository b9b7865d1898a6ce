/* SPDX-License-Identifier: MIT */
/*
 * validate.h - what a Batch must satisfy before it joins a transaction:
 * every value fits its column in both stores (a port in 0..65535, a
 * protocol in 0..255, strings of bounded length), and confidences and
 * probabilities are finite.  A batch that fails is refused whole
 * (INVALID_ARGUMENT for its call), before it can break a group commit.
 */
#ifndef FLOWPIC_COLLECTOR_VALIDATE_H
#define FLOWPIC_COLLECTOR_VALIDATE_H

#include <stddef.h>

#include "flowpic.pb-c.h"

#define VALIDATE_STR_MAX 1024	      /* bytes of any string field */
#define VALIDATE_PROBS_MAX 32	      /* probabilities per verdict, classes per model */
#define VALIDATE_PICTURE_RES_MAX 2048 /* Cells.rows, Cells.cols (the agent's largest) */

enum validate_fault {
	VALIDATE_OK = 0,
	VALIDATE_BAD_BATCH,    /* no agent_id, a string too long, too many probs */
	VALIDATE_OUT_OF_RANGE, /* a port or protocol beyond its range */
	VALIDATE_NON_FINITE,   /* NaN or infinite confidence or probability */
	VALIDATE_BAD_CELLS,    /* a picture (Verdict.cells) that does not describe one */
};

/* VALIDATE_OK, or the fault with one line in err naming the batch's
 * sequence, the verdict's seq and the field. */
enum validate_fault batch_validate(const Flowpic__V1__Batch *b, char *err, size_t errlen);

#endif
