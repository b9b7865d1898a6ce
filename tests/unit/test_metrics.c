// SPDX-License-Identifier: MIT
/* test_metrics.c - the Prometheus text exposition (core/metrics.h). */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/metrics.h"

static void test_names(void **state)
{
	char n[64];

	(void)state;
	assert_int_equal(metrics_name(n, sizeof(n), "flowpic_agent_", "stream.acked", "_total"), 0);
	assert_string_equal(n, "flowpic_agent_stream_acked_total");
	/* Already a _total: not twice. */
	assert_int_equal(metrics_name(n, sizeof(n), "p_", "capture_lost_total", "_total"), 0);
	assert_string_equal(n, "p_capture_lost_total");
	/* Anything outside [a-zA-Z0-9_:] becomes '_'; a leading digit gets '_' before it. */
	assert_int_equal(metrics_name(n, sizeof(n), NULL, "9x-y z\xc3\xa9", NULL), 0);
	assert_string_equal(n, "_9x_y_z__");
	assert_int_equal(metrics_name(n, 8, "flowpic_", "x", NULL), -ENAMETOOLONG);
	assert_int_equal(metrics_name(n, sizeof(n), NULL, "", NULL), -ENAMETOOLONG);
}

static void test_counter_gauge(void **state)
{
	struct sbuf b;

	(void)state;
	memset(&b, 0, sizeof(b));
	assert_int_equal(metrics_counter(&b, "fp_", "bytes_in", false, "bytes read", 42), 0);
	assert_int_equal(metrics_counter(&b, "fp_", "connections_open", true, "open now", 7), 0);
	assert_string_equal(b.p, "# HELP fp_bytes_in_total bytes read\n"
				 "# TYPE fp_bytes_in_total counter\n"
				 "fp_bytes_in_total 42\n"
				 "# HELP fp_connections_open open now\n"
				 "# TYPE fp_connections_open gauge\n"
				 "fp_connections_open 7\n");
	/* The largest counter is written whole (no float rounding). */
	sbuf_free(&b);
	metrics_counter(&b, NULL, "x", true, "h", UINT64_MAX);
	assert_non_null(strstr(b.p, "\nx 18446744073709551615\n"));
	sbuf_free(&b);
}

static void test_escaping(void **state)
{
	struct metrics_label l[2] = { { "path", "C:\\dir\n\"q\"" }, { "v", "" } };
	struct sbuf b;

	(void)state;
	memset(&b, 0, sizeof(b));
	/* HELP: backslash and newline escaped, a double quote is not. */
	metrics_family(&b, "m", METRICS_GAUGE, "a \\ b\nc \"d\"");
	/* Label values: backslash, double quote and newline escaped. */
	metrics_sample(&b, "m", l, 2, 1);
	assert_string_equal(b.p, "# HELP m a \\\\ b\\nc \"d\"\n"
				 "# TYPE m gauge\n"
				 "m{path=\"C:\\\\dir\\n\\\"q\\\"\",v=\"\"} 1\n");
	sbuf_free(&b);
}

static void test_histogram(void **state)
{
	static const double bounds[] = { 0.005, 0.1, 1, 10 };
	struct metrics_hist h;
	struct sbuf b;

	(void)state;
	assert_int_equal(metrics_hist_init(&h, bounds, 4), 0);
	metrics_hist_observe(&h, 0.005); /* le is inclusive */
	metrics_hist_observe(&h, 0.05);
	metrics_hist_observe(&h, 0.5);
	metrics_hist_observe(&h, 0.5);
	metrics_hist_observe(&h, 100);
	memset(&b, 0, sizeof(b));
	metrics_histogram(&b, "lat_seconds", "latency", &h);
	assert_string_equal(b.p, "# HELP lat_seconds latency\n"
				 "# TYPE lat_seconds histogram\n"
				 "lat_seconds_bucket{le=\"0.005\"} 1\n"
				 "lat_seconds_bucket{le=\"0.1\"} 2\n"
				 "lat_seconds_bucket{le=\"1\"} 4\n"
				 "lat_seconds_bucket{le=\"10\"} 4\n"
				 "lat_seconds_bucket{le=\"+Inf\"} 5\n"
				 "lat_seconds_sum 101.055\n"
				 "lat_seconds_count 5\n");
	sbuf_free(&b);
	/* Bounds must increase and be finite, and fit. */
	assert_int_equal(metrics_hist_init(&h, (const double[]){ 1, 1 }, 2), -EINVAL);
	assert_int_equal(metrics_hist_init(&h, (const double[]){ 1, INFINITY }, 2), -EINVAL);
	assert_int_equal(metrics_hist_init(&h, bounds, METRICS_HIST_MAX + 1), -EINVAL);
}

static void test_doubles(void **state)
{
	char s[40];

	(void)state;
	metrics_format_double(s, sizeof(s), 10);
	assert_string_equal(s, "10");
	metrics_format_double(s, sizeof(s), 0.1);
	assert_string_equal(s, "0.1");
	metrics_format_double(s, sizeof(s), 0.0025);
	assert_string_equal(s, "0.0025");
	metrics_format_double(s, sizeof(s), 1e6);
	assert_string_equal(s, "1000000");
	metrics_format_double(s, sizeof(s), 1.0 / 3);
	assert_true(strtod(s, NULL) == 1.0 / 3);
	metrics_format_double(s, sizeof(s), INFINITY);
	assert_string_equal(s, "+Inf");
	metrics_format_double(s, sizeof(s), NAN);
	assert_string_equal(s, "NaN");
}

static void test_buf_grows(void **state)
{
	struct sbuf b;
	int i;

	(void)state;
	memset(&b, 0, sizeof(b));
	for (i = 0; i < 2000; i++)
		metrics_counter(&b, "flowpic_agent_", "packets", false, "packet records",
				(uint64_t)i);
	assert_false(b.oom);
	assert_int_equal(strlen(b.p), b.len);
	assert_non_null(strstr(b.p, "flowpic_agent_packets_total 1999\n"));
	sbuf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),	 cmocka_unit_test(test_counter_gauge),
		cmocka_unit_test(test_escaping), cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_doubles),	 cmocka_unit_test(test_buf_grows),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
