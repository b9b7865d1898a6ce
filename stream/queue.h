/* SPDX-License-Identifier: MIT */
/*
 * queue.h - the bounded memory queue of encoded batches waiting for their
 * acknowledgement, oldest first.  A FIFO ring of fixed capacity; a batch is
 * marked sent when it goes out and forgotten when acknowledged.
 */
#ifndef FLOWPIC_STREAM_QUEUE_H
#define FLOWPIC_STREAM_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct qbatch {
	uint64_t sequence;
	uint32_t verdicts;
	uint32_t len;
	uint8_t *payload; /* owned (malloc'd) */
	bool sent;
};

struct queue {
	struct qbatch *q;
	size_t cap, head, n;
	size_t unsent;	   /* index (from head) of the first batch not sent */
	uint64_t verdicts; /* in all batches held */
	uint64_t bytes;
};

int queue_init(struct queue *q, size_t cap);
/* Free every batch and the ring. */
void queue_free(struct queue *q);
bool queue_full(const struct queue *q);
/* Take ownership of b->payload; -ENOSPC when full (nothing taken). */
int queue_push(struct queue *q, const struct qbatch *b);
/* The oldest batch, NULL if empty. */
struct qbatch *queue_head(struct queue *q);
/* The i-th oldest (0 = head). */
struct qbatch *queue_at(struct queue *q, size_t i);
/* Forget the oldest batch (acknowledged): frees its payload. */
void queue_pop(struct queue *q);
/* The next batch to send (marks it sent), NULL if all are out. */
struct qbatch *queue_next_unsent(struct queue *q);
/* The connection broke: everything is to be sent again. */
void queue_unsend_all(struct queue *q);

#endif
