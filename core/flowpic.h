/* SPDX-License-Identifier: MIT */
/*
 * flowpic.h - the FlowPic: a 2-D histogram of one block, x = time, y = size.
 *
 * The one definition of binning, used as packets arrive (flow.c) and by
 * every test: a sample at time t (ns since the block start, 0 <= t < window)
 * with payload size s (0 <= s < 1500) lands in
 *
 *     x = floor(t * res / window)      (column; time left to right)
 *     y = floor(s * res / 1500)        (row; size bottom to top)
 *
 * Cells count packets and saturate at 255.  A picture in memory is res*res
 * bytes, row-major by y: pic[y * res + x].
 */
#ifndef FLOWPIC_FLOWPIC_H
#define FLOWPIC_FLOWPIC_H

#include <stdint.h>

#include "flow.h"

static inline uint32_t flowpic_xbin(uint64_t t_ns, uint64_t window_ns, uint32_t res)
{
	/* t < window <= 2^42 ns (about 73 min) and res <= 2^11: no overflow. */
	return (uint32_t)(t_ns * res / window_ns);
}

static inline uint32_t flowpic_ybin(uint32_t size, uint32_t res)
{
	return size * res / PKT_MAX_SIZE;
}

static inline uint8_t flowpic_sat_add(uint8_t a, uint32_t b)
{
	uint32_t s = a + b;

	return s > 255 ? 255 : (uint8_t)s;
}

/* Which samples a picture shows. */
enum pic_dirs {
	PIC_BOTH,	/* both directions summed (default) */
	PIC_FWD,	/* initiator -> responder only */
	PIC_REV,	/* responder -> initiator only */
};

/* Draw a block into pic (res*res bytes, cleared first). */
void flowpic_draw(const struct flow_table *ft, const struct block *b, enum pic_dirs dirs,
		  uint8_t *pic);

/* Parse "both", "fwd", "rev"; -1 if none. */
int pic_dirs_parse(const char *s);
const char *pic_dirs_name(enum pic_dirs d);

#endif
