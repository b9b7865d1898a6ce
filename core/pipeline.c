// SPDX-License-Identifier: MIT
/* pipeline.c - the source -> flow table loop; see pipeline.h. */
#include "pipeline.h"

#include <errno.h>

int pipeline_run(struct source *s, struct flow_table *ft, struct pipeline_counts *c,
		 const struct pipeline_hooks *hooks)
{
	enum source_status st;
	enum skip_reason why;
	struct pkt p;

	for (;;) {
		st = source_next(s, &p, &why);
		if (st == SOURCE_END)
			return 0;
		if (st == SOURCE_ERROR)
			return -EIO; /* source_error(s) says why; the caller tells it */
		c->records++;
		if (hooks && hooks->progress && (c->records & 0xffff) == 0)
			hooks->progress(hooks->ctx, s);
		if (st == SOURCE_PACKET) {
			if (p.proto == 6)
				c->tcp++;
			else
				c->udp++;
			if (hooks && hooks->tap)
				hooks->tap(hooks->ctx, &p);
			why = flow_table_add(ft, &p);
		}
		if (why == SKIP_NONE)
			c->in_flows++;
		else
			c->skipped[why]++;
		if (hooks && hooks->stop && c->records % PIPELINE_STOP_EVERY == 0 &&
		    hooks->stop(hooks->ctx, c))
			return -EINTR;
	}
}

uint64_t pipeline_skipped(const struct pipeline_counts *c)
{
	uint64_t n = 0;
	int r;

	for (r = 1; r < SKIP_REASON_COUNT; r++)
		n += c->skipped[r];
	return n;
}
