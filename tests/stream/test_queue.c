// SPDX-License-Identifier: MIT
/* test_queue.c - the memory queue: its bound, FIFO order, sent marks. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "stream/queue.h"

static struct qbatch mk(uint64_t seq, uint32_t verdicts)
{
	struct qbatch b = { .sequence = seq, .verdicts = verdicts, .len = 10 };

	b.payload = malloc(10);
	return b;
}

static void test_bound_and_order(void **state)
{
	struct queue q;
	struct qbatch b;
	uint64_t i;

	(void)state;
	assert_int_equal(queue_init(&q, 4), 0);
	for (i = 1; i <= 4; i++) {
		b = mk(i, (uint32_t)i);
		assert_int_equal(queue_push(&q, &b), 0);
	}
	assert_true(queue_full(&q));
	b = mk(5, 5);
	assert_int_equal(queue_push(&q, &b), -ENOSPC); /* refused: still the caller's */
	free(b.payload);
	assert_int_equal(q.n, 4);
	assert_int_equal(q.verdicts, 1 + 2 + 3 + 4);
	assert_int_equal(q.bytes, 40);
	/* Wrap around the ring several times: order kept. */
	for (i = 5; i <= 20; i++) {
		assert_int_equal(queue_head(&q)->sequence, i - 4);
		queue_pop(&q);
		b = mk(i, 1);
		assert_int_equal(queue_push(&q, &b), 0);
	}
	for (i = 17; i <= 20; i++) {
		assert_int_equal(queue_head(&q)->sequence, i);
		queue_pop(&q);
	}
	assert_null(queue_head(&q));
	assert_int_equal(q.verdicts, 0);
	queue_pop(&q); /* popping an empty queue does nothing */
	queue_free(&q);
}

static void test_sent_marks(void **state)
{
	struct queue q;
	struct qbatch b;
	uint64_t i;

	(void)state;
	assert_int_equal(queue_init(&q, 8), 0);
	for (i = 1; i <= 3; i++) {
		b = mk(i, 1);
		queue_push(&q, &b);
	}
	assert_int_equal(queue_next_unsent(&q)->sequence, 1);
	assert_int_equal(queue_next_unsent(&q)->sequence, 2);
	/* Acknowledged head: the next unsent is still 3. */
	queue_pop(&q);
	assert_int_equal(queue_next_unsent(&q)->sequence, 3);
	assert_null(queue_next_unsent(&q));
	b = mk(4, 1);
	queue_push(&q, &b);
	assert_int_equal(queue_next_unsent(&q)->sequence, 4);
	/* The connection broke: everything goes again, oldest first. */
	queue_unsend_all(&q);
	assert_false(queue_head(&q)->sent);
	assert_int_equal(queue_next_unsent(&q)->sequence, 2);
	queue_free(&q); /* frees the payloads still held (ASan checks) */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bound_and_order),
		cmocka_unit_test(test_sent_marks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
