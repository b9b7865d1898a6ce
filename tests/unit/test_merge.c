// SPDX-License-Identifier: MIT
/*
 * test_merge.c - the time-ordered merge: order across sources, ties in
 * arrival order, the watermark, late and forced records, the bound, and a
 * random shuffle within the delivery bound against a plain sort.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/merge.h"

#define MAXOUT 100000

struct sink {
	uint64_t ts[MAXOUT];
	uint32_t tag[MAXOUT];
	size_t n;
};

static struct sink sink;

static void on_out(void *ctx, const struct pkt *p, uint32_t tag)
{
	struct sink *s = ctx;

	assert_true(s->n < MAXOUT);
	s->ts[s->n] = p->ts_ns;
	s->tag[s->n++] = tag;
}

static void push(struct merge *m, uint64_t ts, uint32_t tag)
{
	struct pkt p;

	memset(&p, 0, sizeof(p));
	p.ts_ns = ts;
	p.size = tag;
	merge_push(m, &p, tag, on_out, &sink);
}

static void test_bad_bound(void **state)
{
	(void)state;
	assert_null(merge_new(0));
	assert_null(merge_new(MERGE_MAX_MAX_HELD + 1));
}

/* Two sources, each in order, interleaved in time: released in time order
 * only up to the watermark. */
static void test_two_sources(void **state)
{
	struct merge *m = merge_new(16);

	(void)state;
	sink.n = 0;
	push(m, 10, 0);
	push(m, 30, 0);
	push(m, 50, 0);
	push(m, 20, 1);
	push(m, 40, 1);
	assert_int_equal(sink.n, 0);
	assert_int_equal(merge_release(m, 35, on_out, &sink), 3);
	assert_int_equal(sink.n, 3);
	assert_int_equal(sink.ts[0], 10);
	assert_int_equal(sink.ts[1], 20);
	assert_int_equal(sink.ts[2], 30);
	assert_int_equal(merge_watermark(m), 35);
	assert_int_equal(merge_stats(m)->held, 2);
	assert_int_equal(merge_drain(m, on_out, &sink), 2);
	assert_int_equal(sink.ts[3], 40);
	assert_int_equal(sink.ts[4], 50);
	assert_int_equal(merge_stats(m)->late, 0);
	assert_int_equal(merge_stats(m)->released, 5);
	merge_free(m);
}

/* Equal times come out in arrival order (GSO segments share a time). */
static void test_ties_keep_arrival_order(void **state)
{
	struct merge *m = merge_new(64);
	uint32_t i;

	(void)state;
	sink.n = 0;
	for (i = 0; i < 40; i++)
		push(m, 100, i);
	merge_drain(m, on_out, &sink);
	for (i = 0; i < 40; i++)
		assert_int_equal(sink.tag[i], i);
	merge_free(m);
}

/* A record before the released watermark is late: out at once, counted. */
static void test_late(void **state)
{
	struct merge *m = merge_new(8);

	(void)state;
	sink.n = 0;
	push(m, 100, 0);
	merge_release(m, 200, on_out, &sink);
	push(m, 150, 1);
	assert_int_equal(sink.n, 2);
	assert_int_equal(sink.ts[1], 150);
	assert_int_equal(merge_stats(m)->late, 1);
	/* At the watermark is not late. */
	push(m, 200, 2);
	assert_int_equal(merge_stats(m)->late, 1);
	assert_int_equal(merge_stats(m)->held, 1);
	/* The watermark never moves back. */
	merge_release(m, 50, on_out, &sink);
	assert_int_equal(merge_watermark(m), 200);
	merge_free(m);
}

/* Full: the earliest goes out before its watermark, counted; what comes
 * after it in time is still in order. */
static void test_forced(void **state)
{
	struct merge *m = merge_new(3);

	(void)state;
	sink.n = 0;
	push(m, 30, 0);
	push(m, 10, 0);
	push(m, 20, 0);
	push(m, 40, 0);
	assert_int_equal(sink.n, 1);
	assert_int_equal(sink.ts[0], 10);
	assert_int_equal(merge_stats(m)->forced, 1);
	assert_int_equal(merge_stats(m)->held_max, 3);
	push(m, 5, 0); /* before the forced record: late */
	assert_int_equal(merge_stats(m)->late, 1);
	merge_drain(m, on_out, &sink);
	assert_int_equal(sink.ts[2], 20);
	assert_int_equal(sink.ts[3], 30);
	assert_int_equal(sink.ts[4], 40);
	merge_free(m);
}

struct arrival {
	uint64_t at; /* when the record reaches user space */
	uint64_t ts; /* its packet's time */
};

static int cmp_arrival(const void *a, const void *b)
{
	const struct arrival *x = a, *y = b;

	return x->at < y->at ? -1 : x->at > y->at;
}

/*
 * Records that reach user space up to `bound` after their time, in any
 * order (as per-CPU rings and per-flow batches deliver them), released
 * behind a watermark `bound` back: the output is the sorted input, nothing
 * late or forced.  Then the same with a bound too short: late records are
 * counted, none lost.
 */
static void run_shuffle(uint64_t bound, uint64_t wm_lag, uint64_t *late)
{
	enum { N = 50000 };
	static struct arrival in[N];
	static uint64_t want[N];
	struct merge *m = merge_new(N);
	uint64_t t = 1000000;
	size_t i;

	srand(7);
	sink.n = 0;
	for (i = 0; i < N; i++) {
		t += (uint64_t)(rand() % 50);
		in[i].ts = t;
		in[i].at = t + (uint64_t)(rand() % (int)bound);
		want[i] = t;
	}
	qsort(in, N, sizeof(in[0]), cmp_arrival);
	for (i = 0; i < N; i++) {
		merge_release(m, in[i].at - wm_lag, on_out, &sink);
		push(m, in[i].ts, 0);
	}
	merge_drain(m, on_out, &sink);
	assert_int_equal(sink.n, N);
	*late = merge_stats(m)->late;
	if (!*late)
		for (i = 0; i < N; i++)
			assert_int_equal(sink.ts[i], want[i]);
	assert_int_equal(merge_stats(m)->forced, 0);
	merge_free(m);
}

static void test_shuffle_within_bound(void **state)
{
	uint64_t late;

	(void)state;
	run_shuffle(5000, 5000, &late);
	assert_int_equal(late, 0);
	/* A watermark that trails by less than the delivery bound. */
	run_shuffle(5000, 1000, &late);
	assert_true(late > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_bound),
		cmocka_unit_test(test_two_sources),
		cmocka_unit_test(test_ties_keep_arrival_order),
		cmocka_unit_test(test_late),
		cmocka_unit_test(test_forced),
		cmocka_unit_test(test_shuffle_within_bound),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
