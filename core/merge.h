/* SPDX-License-Identifier: MIT */
/*
 * merge.h - a time-ordered merge of packet records that arrive out of order
 * from several sources (the live capture's per-CPU rings and per-flow
 * batches), in front of the flow table.
 *
 * Records are held in a min-heap on (time, arrival order) and released in
 * that order once the caller's watermark passes them: the watermark is a
 * time before which no source can still deliver a record (docs/capture.md
 * says how the capture library derives it from its flush and drain).  So
 * the flow table sees every flow's packets in time order, and a flow's
 * first packet is really its earliest: the initiator is the one a capture
 * file of the same traffic shows.
 *
 * Bounded: at most max_held records (92 bytes each, allocated once; pages
 * are touched only as the heap grows).  When it is full the earliest record
 * is released before its watermark (counted: `forced`).  A record earlier
 * than the watermark already released arrives too late to be put in order:
 * it is released at once and counted (`late`), never silently reordered.
 *
 * Not thread-safe; nothing is allocated after merge_new().
 */
#ifndef FLOWPIC_MERGE_H
#define FLOWPIC_MERGE_H

#include <stdint.h>

#include "pkt.h"

/* Default bound: ~0.4 s of records at 1.3 Mpps (46 MiB reserved). */
#define MERGE_DEFAULT_MAX_HELD (512u * 1024u)
#define MERGE_MAX_MAX_HELD (1u << 26)

/* Released records: the packet (time as pushed) and the caller's tag. */
typedef void (*merge_out_fn)(void *ctx, const struct pkt *p, uint32_t tag);

struct merge_stats {
	uint64_t pushed;   /* records taken */
	uint64_t released; /* records handed out (in order, forced or late) */
	uint64_t late;	   /* pushed with a time before the released watermark */
	uint64_t forced;   /* released before their watermark: merge full */
	uint64_t held;	   /* held now */
	uint64_t held_max; /* most held at once */
};

struct merge;

/* NULL and errno set (EINVAL: max_held 0 or > MERGE_MAX_MAX_HELD; ENOMEM). */
struct merge *merge_new(uint32_t max_held);
void merge_free(struct merge *m);

/* Take one record; may release (late, or the earliest when full). */
void merge_push(struct merge *m, const struct pkt *p, uint32_t tag, merge_out_fn out, void *ctx);

/* Release, in order, every held record with time < watermark; the
 * watermark never moves back.  Returns records released. */
uint64_t merge_release(struct merge *m, uint64_t watermark, merge_out_fn out, void *ctx);

/* Release everything held, in order (end of input). */
uint64_t merge_drain(struct merge *m, merge_out_fn out, void *ctx);

/* The highest watermark released so far (0 before the first). */
uint64_t merge_watermark(const struct merge *m);

const struct merge_stats *merge_stats(const struct merge *m);

#endif
