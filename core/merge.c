// SPDX-License-Identifier: MIT
/* merge.c - time-ordered merge behind a watermark; see merge.h. */
#include "merge.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A held record.  72 bytes. */
struct ent {
	struct pkt p;
	uint32_t tag;
	uint32_t pad;
};

/* A heap node: the sort key next to the index, so sifting reads 16 bytes. */
struct node {
	uint64_t ts;
	uint32_t seq; /* arrival order, breaks ties (wraps: compared as a difference) */
	uint32_t idx; /* into ents */
};

struct merge {
	struct ent *ents;
	struct node *heap;
	uint32_t *free; /* stack of free ents */
	uint32_t nfree;
	uint32_t n; /* heap size */
	uint32_t max;
	uint32_t seq;
	uint64_t wm; /* released watermark */
	struct merge_stats st;
};

_Static_assert(sizeof(struct ent) == 72, "merge entry layout");
_Static_assert(sizeof(struct node) == 16, "merge heap node layout");

struct merge *merge_new(uint32_t max_held)
{
	struct merge *m;
	uint32_t i;

	if (!max_held || max_held > MERGE_MAX_MAX_HELD) {
		errno = EINVAL;
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	/* calloc of large sizes maps zero pages: memory is touched only as
	 * the merge fills, so a generous bound costs nothing when idle. */
	m->ents = calloc(max_held, sizeof(*m->ents));
	m->heap = calloc(max_held, sizeof(*m->heap));
	m->free = calloc(max_held, sizeof(*m->free));
	if (!m->ents || !m->heap || !m->free) {
		merge_free(m);
		errno = ENOMEM;
		return NULL;
	}
	/* Free slots popped from the top: 0, 1, 2 ... in order. */
	for (i = 0; i < max_held; i++)
		m->free[i] = max_held - 1 - i;
	m->nfree = max_held;
	m->max = max_held;
	return m;
}

void merge_free(struct merge *m)
{
	if (!m)
		return;
	free(m->ents);
	free(m->heap);
	free(m->free);
	free(m);
}

static inline int before(const struct node *a, const struct node *b)
{
	if (a->ts != b->ts)
		return a->ts < b->ts;
	return (int32_t)(a->seq - b->seq) < 0;
}

static void sift_up(struct merge *m, uint32_t i)
{
	struct node x = m->heap[i];

	while (i > 0) {
		uint32_t parent = (i - 1) / 2;

		if (!before(&x, &m->heap[parent]))
			break;
		m->heap[i] = m->heap[parent];
		i = parent;
	}
	m->heap[i] = x;
}

static void sift_down(struct merge *m, uint32_t i)
{
	struct node x = m->heap[i];
	uint32_t n = m->n;

	for (;;) {
		uint32_t c = 2 * i + 1;

		if (c >= n)
			break;
		if (c + 1 < n && before(&m->heap[c + 1], &m->heap[c]))
			c++;
		if (!before(&m->heap[c], &x))
			break;
		m->heap[i] = m->heap[c];
		i = c;
	}
	m->heap[i] = x;
}

/* Hand out the earliest held record. */
static void pop(struct merge *m, merge_out_fn out, void *ctx)
{
	uint32_t idx = m->heap[0].idx;

	if (m->heap[0].ts > m->wm)
		m->wm = m->heap[0].ts;
	m->n--;
	if (m->n) {
		m->heap[0] = m->heap[m->n];
		sift_down(m, 0);
	}
	m->st.held = m->n;
	m->st.released++;
	out(ctx, &m->ents[idx].p, m->ents[idx].tag);
	m->free[m->nfree++] = idx;
}

void merge_push(struct merge *m, const struct pkt *p, uint32_t tag, merge_out_fn out, void *ctx)
{
	uint32_t idx;

	m->st.pushed++;
	if (p->ts_ns < m->wm) {
		/* Its place in the order has been handed out already. */
		m->st.late++;
		m->st.released++;
		out(ctx, p, tag);
		return;
	}
	if (!m->nfree) {
		m->st.forced++;
		pop(m, out, ctx);
	}
	idx = m->free[--m->nfree];
	m->ents[idx].p = *p;
	m->ents[idx].tag = tag;
	m->heap[m->n] = (struct node){ p->ts_ns, m->seq++, idx };
	sift_up(m, m->n++);
	m->st.held = m->n;
	if (m->n > m->st.held_max)
		m->st.held_max = m->n;
}

uint64_t merge_release(struct merge *m, uint64_t watermark, merge_out_fn out, void *ctx)
{
	uint64_t k = 0;

	while (m->n && m->heap[0].ts < watermark) {
		pop(m, out, ctx);
		k++;
	}
	if (watermark > m->wm)
		m->wm = watermark;
	return k;
}

uint64_t merge_drain(struct merge *m, merge_out_fn out, void *ctx)
{
	uint64_t k = 0;

	while (m->n) {
		pop(m, out, ctx);
		k++;
	}
	return k;
}

uint64_t merge_watermark(const struct merge *m)
{
	return m->wm;
}

const struct merge_stats *merge_stats(const struct merge *m)
{
	return &m->st;
}
