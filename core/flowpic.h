/* SPDX-License-Identifier: MIT */
/*
 * flowpic.h - the FlowPic: a 2-D histogram of one block, x = time, y = size.
 *
 * A sample lands in cell (flowpic_xbin(), flowpic_ybin()): the one
 * definition of binning is bins.h, which the flow table (flow.c) uses as
 * packets arrive without depending on this file.
 *
 * Cells count packets and saturate at 255.  A picture in memory is res*res
 * bytes, row-major by y: pic[y * res + x].
 */
#ifndef FLOWPIC_FLOWPIC_H
#define FLOWPIC_FLOWPIC_H

#include <stdint.h>

#include "bins.h"
#include "flow.h"

static inline uint8_t flowpic_sat_add(uint8_t a, uint32_t b)
{
	uint32_t s = a + b;

	return s > 255 ? 255 : (uint8_t)s;
}

/* Which samples a picture shows. */
enum pic_dirs {
	PIC_BOTH, /* both directions summed (default) */
	PIC_FWD,  /* initiator -> responder only */
	PIC_REV,  /* responder -> initiator only */
};

/* Draw a block into pic (res*res bytes, cleared first). */
void flowpic_draw(const struct flow_table *ft, const struct block *b, enum pic_dirs dirs,
		  uint8_t *pic);

/* Parse "both", "fwd", "rev"; -1 if none. */
int pic_dirs_parse(const char *s);
const char *pic_dirs_name(enum pic_dirs d);

#endif
