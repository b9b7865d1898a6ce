/* SPDX-License-Identifier: MIT */
/*
 * bins.h - the one definition of FlowPic binning: which cell a sample lands
 * in.  A leaf: the flow table (flow.c) bins packets as they arrive, the
 * pictures (flowpic.h) and every test use the same two functions, and this
 * header needs nothing of either.
 *
 * A sample at time t (ns since the block start, 0 <= t < window) with
 * payload size s (0 <= s < 1500) lands in
 *
 *     x = floor(t * res / window)      (column; time left to right)
 *     y = floor(s * res / 1500)        (row; size bottom to top)
 */
#ifndef FLOWPIC_BINS_H
#define FLOWPIC_BINS_H

#include <stdint.h>

#include "pkt.h"

static inline uint32_t flowpic_xbin(uint64_t t_ns, uint64_t window_ns, uint32_t res)
{
	/* t < window <= 2^42 ns (about 73 min) and res <= 2^11: no overflow. */
	return (uint32_t)(t_ns * res / window_ns);
}

static inline uint32_t flowpic_ybin(uint32_t size, uint32_t res)
{
	return size * res / PKT_MAX_SIZE;
}

#endif
