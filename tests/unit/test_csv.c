// SPDX-License-Identifier: MIT
/* test_csv.c - the samples CSV: exact round trip, header layouts, bad rows. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "core/csv.h"
#include "core/flow.h"

static struct csv_layout layout_of(const char *header)
{
	struct csv_layout lay;
	char line[256], err[128];

	snprintf(line, sizeof(line), "%s", header);
	assert_int_equal(csv_parse_header(line, &lay, err, sizeof(err)), 0);
	return lay;
}

/* The columns before tcp_mss: files written before them still read. */
#define V1_COLUMNS "time,proto,src,sport,dst,dport,size,ip_len,tcp_flags"

static void test_round_trip_exact(void **state)
{
	struct csv_layout lay = layout_of(CSV_HEADER);
	struct pkt in[2] = { 0 }, out;
	char buf[CSV_MAX_LINE], err[128];
	int i;

	(void)state;
	in[0].ts_ns = 1516220325884382123ULL;
	in[0].src[10] = in[0].src[11] = in[0].dst[10] = in[0].dst[11] = 0xff;
	in[0].src[12] = 192, in[0].src[13] = 168, in[0].src[15] = 7;
	in[0].dst[12] = 8, in[0].dst[15] = 8;
	in[0].sport = 65535, in[0].dport = 53, in[0].proto = 17;
	in[0].size = 1499, in[0].ip_len = 1527;
	in[1].ts_ns = 5; /* 0.000000005 s */
	in[1].src[0] = 0x20, in[1].src[1] = 0x01, in[1].src[15] = 1;
	in[1].dst[0] = 0xfe, in[1].dst[1] = 0x80, in[1].dst[15] = 2;
	in[1].sport = 1, in[1].dport = 443, in[1].proto = 6;
	in[1].size = 0, in[1].ip_len = 60, in[1].tcp_flags = 0x12, in[1].tcp_mss = 1460,
	in[1].tcp_ts = 1;
	for (i = 0; i < 2; i++) {
		FILE *f = fmemopen(buf, sizeof(buf), "w");

		assert_non_null(f);
		csv_write_pkt(f, &in[i]);
		fclose(f);
		assert_int_equal(csv_parse_row(buf, &lay, &out, err, sizeof(err)), SKIP_NONE);
		assert_memory_equal(&in[i], &out, sizeof(out));
	}
}

static void test_header_any_order_extra_columns(void **state)
{
	struct csv_layout lay = layout_of("label,size,dport,dst,sport,src,proto,time");
	char row[] = "video,100,443,10.0.0.2,5000,10.0.0.1,tcp,12.5\r\n";
	struct pkt p;
	char err[128];

	(void)state;
	assert_int_equal(csv_parse_row(row, &lay, &p, err, sizeof(err)), SKIP_NONE);
	assert_int_equal(p.ts_ns, 12500000000ULL);
	assert_int_equal(p.size, 100);
	assert_int_equal(p.proto, 6);
	assert_int_equal(p.sport, 5000);
	/* No ip_len column: estimated as size + IPv4 + TCP headers. */
	assert_int_equal(p.ip_len, 140);
}

static void test_header_errors(void **state)
{
	struct csv_layout lay;
	char missing[] = "time,proto,src,sport,dst,dport";
	char twice[] = "time,proto,src,sport,dst,dport,size,size";
	char err[128];

	(void)state;
	assert_int_equal(csv_parse_header(missing, &lay, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "'size'"));
	assert_int_equal(csv_parse_header(twice, &lay, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "twice"));
}

static void test_bad_rows(void **state)
{
	static const char *const bad[] = {
		"1.5,6,10.0.0.1,1,10.0.0.2,2",		       /* too few fields */
		"1.5,6,10.0.0.1,1,10.0.0.2,2,3,4,5,6",	       /* too many */
		"-1,6,10.0.0.1,1,10.0.0.2,2,3,43,0",	       /* negative time */
		"1.1234567891,6,10.0.0.1,1,10.0.0.2,2,3,43,0", /* 10 decimals */
		"1.,6,10.0.0.1,1,10.0.0.2,2,3,43,0",
		"x,6,10.0.0.1,1,10.0.0.2,2,3,43,0",
		"1,256,10.0.0.1,1,10.0.0.2,2,3,43,0",
		"1,6,10.0.0.300,1,10.0.0.2,2,3,43,0",
		"1,6,10.0.0.1,65536,10.0.0.2,2,3,43,0",
		"1,6,10.0.0.1,1,host,2,3,43,0",
		"1,6,10.0.0.1,1,10.0.0.2,2,-3,43,0",
		"1,6,10.0.0.1,1,10.0.0.2,2,3,43,0x100",
		"1,6,10.0.0.1,1,10.0.0.2,2,3,,0",
		"99999999999999999999,6,10.0.0.1,1,10.0.0.2,2,3,43,0",
	};
	struct csv_layout lay = layout_of(V1_COLUMNS);
	char row[256], err[128];
	struct pkt p;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(row, sizeof(row), "%s", bad[i]);
		err[0] = 0;
		assert_int_equal(csv_parse_row(row, &lay, &p, err, sizeof(err)), SKIP_CSV_BAD_LINE);
		assert_true(strlen(err) > 0);
	}
}

static void test_other_protocols_are_counted_not_bad(void **state)
{
	struct csv_layout lay = layout_of(V1_COLUMNS);
	char icmp[] = "1,1,10.0.0.1,0,10.0.0.2,0,56,84,0";
	char sctp[] = "1,132,10.0.0.1,1,10.0.0.2,2,56,84,0";
	char err[128];
	struct pkt p;

	(void)state;
	assert_int_equal(csv_parse_row(icmp, &lay, &p, err, sizeof(err)), SKIP_ICMP);
	assert_int_equal(csv_parse_row(sctp, &lay, &p, err, sizeof(err)), SKIP_OTHER_L4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_exact),
		cmocka_unit_test(test_header_any_order_extra_columns),
		cmocka_unit_test(test_header_errors),
		cmocka_unit_test(test_bad_rows),
		cmocka_unit_test(test_other_protocols_are_counted_not_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
