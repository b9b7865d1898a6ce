// SPDX-License-Identifier: MIT
/* model_picture.c - a block's picture as the model judges it; see model_picture.h. */
#include "model_picture.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cnn.h"
#include "flowpic.h"

int model_picture_init(struct model_picture *p, const struct model *m, uint32_t cap)
{
	memset(p, 0, sizeof(*p));
	p->res = m->res;
	p->planes = m->in_channels;
	p->dirs = m->dirs;
	p->plane_len = (size_t)m->in_channels * m->res * m->res;
	p->cap = cap && cap < p->plane_len ? cap : (uint32_t)p->plane_len;
	p->plane = calloc(p->plane_len, 1);
	p->index = calloc(p->cap, sizeof(*p->index));
	p->count = calloc(p->cap, 1);
	if (!p->plane || !p->index || !p->count) {
		model_picture_free(p);
		return -ENOMEM;
	}
	return 0;
}

void model_picture_free(struct model_picture *p)
{
	free(p->plane);
	free(p->index);
	free(p->count);
	memset(p, 0, sizeof(*p));
}

/* One cell into the plane; a pixel seen for the first time is listed. */
static void add(struct model_picture *p, const struct cell *cl)
{
	int ch = cnn_cell_channel(p->dirs, cl);
	uint32_t px;

	/* Outside the picture: the classifier refused the block before. */
	if (ch < 0 || !cl->count || cl->x >= p->res || cl->y >= p->res)
		return;
	px = ((uint32_t)ch * p->res + cl->y) * p->res + cl->x;
	if (!p->plane[px]) {
		if (p->n < p->cap)
			p->index[p->n] = px;
		p->n++;
	}
	p->plane[px] = flowpic_sat_add(p->plane[px], cl->count);
}

static int cmp_u32(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;

	return a < b ? -1 : a > b;
}

/* The listed pixels sorted with their counts, and the plane zeroed again. */
static void finish(struct model_picture *p)
{
	uint32_t i;

	if (p->n > p->cap) {
		memset(p->plane, 0, p->plane_len);
		return;
	}
	qsort(p->index, p->n, sizeof(*p->index), cmp_u32);
	for (i = 0; i < p->n; i++) {
		p->count[i] = p->plane[p->index[i]];
		p->plane[p->index[i]] = 0;
	}
}

void model_picture_block(struct model_picture *p, const struct flow_table *ft,
			 const struct block *b)
{
	struct cell_iter it;
	struct cell cl;

	p->n = 0;
	block_cells_begin(&it, ft, b);
	while (block_cells_next(&it, &cl))
		add(p, &cl);
	finish(p);
}

void model_picture_cells(struct model_picture *p, const struct cell *cells, size_t n)
{
	size_t i;

	p->n = 0;
	for (i = 0; i < n; i++)
		add(p, &cells[i]);
	finish(p);
}
