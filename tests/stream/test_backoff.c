// SPDX-License-Identifier: MIT
/* test_backoff.c - gRPC connection backoff: the sequence, the cap, jitter bounds, reset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "stream/backoff.h"

static void test_sequence(void **state)
{
	/* 1 s x 1.6 without jitter: 1000, 1600, 2560, 4096, 6553.6, ... up to 120 s. */
	static const unsigned want[] = { 1000,	1600,  2560,  4096,   6554,   10486, 16777,
					 26844, 42950, 68719, 109951, 120000, 120000 };
	struct backoff b;
	unsigned i;

	(void)state;
	backoff_init(&b, 1000, 1.6, 0.0, 120000, 1);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_int_equal(backoff_next(&b), want[i]);
	backoff_reset(&b);
	assert_int_equal(backoff_next(&b), 1000);
	assert_int_equal(backoff_next(&b), 1600);
}

static void test_jitter(void **state)
{
	struct backoff b;
	double base = 1000, sum[2] = { 0, 0 };
	unsigned i, k, lo = 0, hi = 0;
	const unsigned rounds = 2000;

	(void)state;
	backoff_init(&b, 1000, 1.6, 0.2, 120000, 12345);
	/* Every delay within +-20 % of its base; the spread covers both sides. */
	for (k = 0; k < rounds; k++) {
		backoff_reset(&b);
		base = 1000;
		for (i = 0; i < 14; i++) {
			unsigned d = backoff_next(&b);

			assert_true(d >= (unsigned)(0.8 * base) && d <= (unsigned)(1.2 * base + 1));
			if (i == 0) {
				lo += d < 900;
				hi += d > 1100;
				sum[0] += d;
			}
			if (i == 13)
				sum[1] += d;
			base = base * 1.6 > 120000 ? 120000 : base * 1.6;
		}
	}
	assert_true(lo > rounds / 8 && hi > rounds / 8);
	/* Mean of the first delay near 1000, of the capped ones near 120000. */
	assert_true(sum[0] / rounds > 980 && sum[0] / rounds < 1020);
	assert_true(sum[1] / rounds > 117600 && sum[1] / rounds < 122400);
}

static void test_seeds_differ(void **state)
{
	struct backoff a, b;
	unsigned i, same = 0;

	(void)state;
	/* Agents restarted together must not retry in lock step. */
	backoff_init(&a, 1000, 1.6, 0.2, 120000, 1);
	backoff_init(&b, 1000, 1.6, 0.2, 120000, 2);
	for (i = 0; i < 10; i++)
		same += backoff_next(&a) == backoff_next(&b);
	assert_true(same < 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sequence),
		cmocka_unit_test(test_jitter),
		cmocka_unit_test(test_seeds_differ),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
