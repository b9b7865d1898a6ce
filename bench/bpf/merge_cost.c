// SPDX-License-Identifier: MIT
/*
 * merge_cost.c - what the time-ordered merge (core/merge.c) costs per packet
 * and holds at a given packet rate, against handing the same packets out
 * unmerged, in one run.
 *
 * The arrival pattern is the batches design's: FLOWS flows spread over two
 * CPUs, each flow's packets gathered per (flow, CPU) into batches of 32 that
 * reach user space when full or when the oldest is batch-age old (the flush
 * every batch-age / 2), and the watermark trails the last flush by the batch
 * age.  Packets are generated for SECONDS of simulated time at RATE packets
 * per second; only the consumer's work is timed (thread CPU time).
 *
 * Usage: merge_cost [RATE [SECONDS [FLOWS]]]   (default 1000000 5 256)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/merge.h"

#define BATCH 32
#define AGE_NS 200000000ULL

struct batch {
	uint64_t ts0;
	uint32_t n;
	struct pkt p[BATCH];
};

static uint64_t sink_sum;

static void sink(void *ctx, const struct pkt *p, uint32_t tag)
{
	(void)ctx;
	sink_sum += p->ts_ns + p->size + tag;
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Hand a batch to the consumer: through the merge, or straight out. */
static void deliver(struct merge *m, struct batch *b, uint64_t *work)
{
	uint64_t t0 = cpu_ns();
	uint32_t i;

	for (i = 0; i < b->n; i++) {
		if (m)
			merge_push(m, &b->p[i], 0, sink, NULL);
		else
			sink(NULL, &b->p[i], 0);
	}
	*work += cpu_ns() - t0;
	b->n = 0;
}

/* One simulated run; returns consumer ns per packet. */
static double run(struct merge *m, uint64_t rate, uint64_t secs, uint32_t flows)
{
	struct batch *b = calloc((size_t)flows * 2, sizeof(*b));
	uint64_t n = rate * secs, i, gap = 1000000000ULL / rate, now = 0, next_flush = AGE_NS / 2;
	uint64_t work = 0, seed = 1;
	uint32_t k;

	if (!b) {
		perror("calloc");
		exit(1);
	}
	for (i = 0; i < n; i++) {
		struct batch *q;
		struct pkt *p;

		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		now += gap;
		/* A flow, and the CPU its packet arrived on. */
		q = &b[(seed >> 33) % ((uint64_t)flows * 2)];
		if (q->n && now - q->ts0 >= AGE_NS)
			deliver(m, q, &work);
		if (!q->n)
			q->ts0 = now;
		p = &q->p[q->n++];
		memset(p, 0, sizeof(*p));
		p->ts_ns = now;
		p->size = (uint32_t)(seed >> 50);
		if (q->n == BATCH)
			deliver(m, q, &work);
		if (now >= next_flush) {
			/* The flush: old batches out, then the watermark. */
			for (k = 0; k < flows * 2; k++)
				if (b[k].n && now - b[k].ts0 >= AGE_NS)
					deliver(m, &b[k], &work);
			if (m && now > AGE_NS) {
				uint64_t t0 = cpu_ns();

				merge_release(m, now - AGE_NS, sink, NULL);
				work += cpu_ns() - t0;
			}
			next_flush += AGE_NS / 2;
		}
	}
	for (k = 0; k < flows * 2; k++)
		if (b[k].n)
			deliver(m, &b[k], &work);
	if (m) {
		uint64_t t0 = cpu_ns();

		merge_drain(m, sink, NULL);
		work += cpu_ns() - t0;
	}
	free(b);
	return (double)work / (double)n;
}

int main(int argc, char **argv)
{
	uint64_t rate = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
	uint64_t secs = argc > 2 ? strtoull(argv[2], NULL, 10) : 5;
	uint32_t flows = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 10) : 256;
	struct merge *m;
	double base, merged;

	if (!rate || rate > 100000000 || !secs || secs > 60 || !flows || flows > 1000000) {
		fprintf(stderr, "usage: merge_cost [RATE 1-1e8 [SECONDS 1-60 [FLOWS]]]\n");
		return 2;
	}
	m = merge_new(MERGE_MAX_MAX_HELD);
	if (!m) {
		perror("merge_new");
		return 1;
	}
	base = run(NULL, rate, secs, flows);
	merged = run(m, rate, secs, flows);
	printf("| packets/s | flows | unmerged ns/packet | merged ns/packet | merge cost ns/packet "
	       "| held max | held max MiB | late | forced |\n|---|---|---|---|---|---|---|---|---|\n");
	printf("| %" PRIu64 " | %u | %.1f | %.1f | %.1f | %" PRIu64 " | %.1f | %" PRIu64
	       " | %" PRIu64 " |\n",
	       rate, flows, base, merged, merged - base, merge_stats(m)->held_max,
	       (double)merge_stats(m)->held_max * 92 / (1 << 20), merge_stats(m)->late,
	       merge_stats(m)->forced);
	merge_free(m);
	return sink_sum == 42 ? 3 : 0; /* keep the sink's work */
}
