// SPDX-License-Identifier: MIT
/* test_number.c - exact seconds and ranged whole numbers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/number.h"

static void test_seconds_exact(void **state)
{
	uint64_t ns;

	(void)state;
	assert_int_equal(number_parse_seconds("0.1", &ns), 0);
	assert_int_equal(ns, 100000000);
	assert_int_equal(number_parse_seconds("60", &ns), 0);
	assert_int_equal(ns, 60000000000ULL);
	assert_int_equal(number_parse_seconds("1516220325.884382123", &ns), 0);
	assert_int_equal(ns, 1516220325884382123ULL);
	assert_int_equal(number_parse_seconds("0.000000001", &ns), 0);
	assert_int_equal(ns, 1);
	/* Near the top of 64-bit ns (the check is conservative by 3 s). */
	assert_int_equal(number_parse_seconds("18446744069.999999999", &ns), 0);
	assert_int_equal(number_parse_seconds("184467440730", &ns), -EINVAL);
}

static void test_seconds_refused(void **state)
{
	static const char *const bad[] = { "",	 ".",  ".5",  "1.",   "1.0000000001", "-1", "+1",
					   " 1", "1 ", "1e3", "0x10", "1,5",	      "nan" };
	uint64_t ns;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(number_parse_seconds(bad[i], &ns), -EINVAL);
}

static void test_u64_ranges(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(number_parse_u64("0x12", 0, 255, &v), 0);
	assert_int_equal(v, 18);
	assert_int_equal(number_parse_u64("65535", 0, 65535, &v), 0);
	assert_int_equal(number_parse_u64("65536", 0, 65535, &v), -EINVAL);
	assert_int_equal(number_parse_u64("0", 1, 10, &v), -EINVAL);
	assert_int_equal(number_parse_u64("-1", 0, UINT64_MAX, &v), -EINVAL);
	assert_int_equal(number_parse_u64("18446744073709551616", 0, UINT64_MAX, &v), -EINVAL);
	assert_int_equal(number_parse_u64("12abc", 0, UINT64_MAX, &v), -EINVAL);
	assert_int_equal(number_parse_u64("", 0, UINT64_MAX, &v), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seconds_exact),
		cmocka_unit_test(test_seconds_refused),
		cmocka_unit_test(test_u64_ranges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
