// SPDX-License-Identifier: MIT
/* queue.c - bounded FIFO of batches awaiting acknowledgement; see queue.h. */
#include "queue.h"

#include <errno.h>
#include <stdlib.h>

int queue_init(struct queue *q, size_t cap)
{
	q->q = calloc(cap ? cap : 1, sizeof(*q->q));
	if (!q->q)
		return -ENOMEM;
	q->cap = cap ? cap : 1;
	q->head = q->n = q->unsent = 0;
	q->verdicts = q->bytes = 0;
	return 0;
}

void queue_free(struct queue *q)
{
	while (q->n)
		queue_pop(q);
	free(q->q);
	q->q = NULL;
}

bool queue_full(const struct queue *q)
{
	return q->n == q->cap;
}

int queue_push(struct queue *q, const struct qbatch *b)
{
	struct qbatch *slot;

	if (queue_full(q))
		return -ENOSPC;
	slot = &q->q[(q->head + q->n) % q->cap];
	*slot = *b;
	slot->sent = false;
	q->n++;
	q->verdicts += b->verdicts;
	q->bytes += b->len;
	return 0;
}

struct qbatch *queue_at(struct queue *q, size_t i)
{
	return i < q->n ? &q->q[(q->head + i) % q->cap] : NULL;
}

struct qbatch *queue_head(struct queue *q)
{
	return queue_at(q, 0);
}

void queue_pop(struct queue *q)
{
	struct qbatch *b = queue_head(q);

	if (!b)
		return;
	q->verdicts -= b->verdicts;
	q->bytes -= b->len;
	free(b->payload);
	b->payload = NULL;
	q->head = (q->head + 1) % q->cap;
	q->n--;
	if (q->unsent)
		q->unsent--;
}

struct qbatch *queue_next_unsent(struct queue *q)
{
	struct qbatch *b = queue_at(q, q->unsent);

	if (b) {
		b->sent = true;
		q->unsent++;
	}
	return b;
}

void queue_unsend_all(struct queue *q)
{
	size_t i;

	for (i = 0; i < q->n; i++)
		queue_at(q, i)->sent = false;
	q->unsent = 0;
}
