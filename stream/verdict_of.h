/* SPDX-License-Identifier: MIT */
/*
 * verdict_of.h - a classifier's verdict as the stream carries it (struct
 * stream_verdict): the agent sends these (agent/forward.c), and the
 * dashboard's stored uploads are made of the same (collector/web/upload.c),
 * so both give the collector the same rows for the same flow.
 *
 * The verdict's flow key, span, class, reason and probabilities are filled
 * (sv zeroed first); its direction, interface and picture are the caller's.
 */
#ifndef FLOWPIC_STREAM_VERDICT_OF_H
#define FLOWPIC_STREAM_VERDICT_OF_H

#include <stdint.h>

#include "core/classify.h"
#include "core/flow.h"
#include "stream.h"

/* A block's verdict (EARLY or BLOCK); window_ns: the blocks' length. */
void stream_verdict_of_block(struct stream_verdict *sv, const struct classifier *c,
			     const struct flow *f, const struct block *b,
			     const struct block_verdict *v, uint64_t window_ns);
/* A flow's verdict (FINAL). */
void stream_verdict_of_flow(struct stream_verdict *sv, const struct classifier *c,
			    const struct flow *f, const struct flow_verdict *v);

#endif
