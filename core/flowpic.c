// SPDX-License-Identifier: MIT
/* flowpic.c - drawing a block's cells as a dense picture; see flowpic.h. */
#include "flowpic.h"

#include <string.h>

void flowpic_draw(const struct flow_table *ft, const struct block *b, enum pic_dirs dirs,
		  uint8_t *pic)
{
	uint32_t res = flow_table_config(ft)->res;
	struct cell_iter it;
	struct cell c;

	memset(pic, 0, (size_t)res * res);
	block_cells_begin(&it, ft, b);
	while (block_cells_next(&it, &c)) {
		uint8_t *px = &pic[(size_t)c.y * res + c.x];

		if ((dirs == PIC_FWD && c.dir != FLOW_DIR_FWD) ||
		    (dirs == PIC_REV && c.dir != FLOW_DIR_REV))
			continue;
		*px = flowpic_sat_add(*px, c.count);
	}
}

static const char *const dirs_names[] = { "both", "fwd", "rev" };

int pic_dirs_parse(const char *s)
{
	int i;

	for (i = 0; i < 3; i++)
		if (!strcmp(s, dirs_names[i]))
			return i;
	return -1;
}

const char *pic_dirs_name(enum pic_dirs d)
{
	return (unsigned)d < 3 ? dirs_names[d] : "unknown";
}
