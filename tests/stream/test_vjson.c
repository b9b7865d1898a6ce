// SPDX-License-Identifier: MIT
/* test_vjson.c - flowpic-send's verdict lines: both forms, skips, and errors with positions. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "stream/vjson.h"

static int parse(const char *s, struct stream_verdict *v, char *err)
{
	return vjson_parse(s, strlen(s), v, NULL, err, 200);
}

static void test_minimal_form(void **state)
{
	struct stream_verdict v;
	char err[200];
	static const uint8_t src[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1 };

	(void)state;
	assert_int_equal(
		parse("{\"interface\":\"eth0\",\"flow\":{\"src_addr\":\"10.0.0.1\","
		      "\"dst_addr\":\"2001:db8::2\",\"src_port\":5060,\"dst_port\":443,"
		      "\"protocol\":17},\"direction\":\"DIRECTION_INBOUND\",\"flow_id\":9,"
		      "\"stage\":\"early\",\"span\":{\"start_unix_ns\":1795767794793470001,"
		      "\"duration_ns\":15000000000,\"packets_fwd\":1,\"packets_rev\":2,"
		      "\"bytes_fwd\":3,\"bytes_rev\":4,\"block_index\":2,\"blocks\":0},"
		      "\"class_name\":\"chat\",\"confidence\":0.25,\"probs\":[0.25,0.5,0.25],"
		      "\"seq\":77}",
		      &v, err),
		0);
	assert_string_equal(v.interface, "eth0");
	assert_memory_equal(v.src_addr, src, 16);
	assert_int_equal(v.dst_addr[0], 0x20);
	assert_int_equal(v.dst_addr[15], 2);
	assert_int_equal(v.src_port, 5060);
	assert_int_equal(v.protocol, 17);
	assert_int_equal(v.direction, STREAM_DIR_INBOUND);
	assert_int_equal(v.stage, STREAM_STAGE_EARLY);
	assert_int_equal(v.flow_id, 9);
	assert_true(v.start_unix_ns == 1795767794793470001ull); /* exact, not via double */
	assert_true(v.duration_ns == 15000000000ull);
	assert_int_equal(v.block_index, 2);
	assert_string_equal(v.class_name, "chat");
	assert_true(v.confidence == 0.25f);
	assert_int_equal(v.nprobs, 3);
	assert_true(v.probs[1] == 0.5f);
}

static void test_classify_form(void **state)
{
	struct stream_verdict v;
	char err[200];

	(void)state;
	assert_int_equal(
		parse("{\"file\":\"a.pcap\",\"flow_id\":3,\"proto\":\"udp\",\"src\":\"10.77.0.1\","
		      "\"sport\":59640,\"dst\":\"10.77.0.2\",\"dport\":5004,\"start\":"
		      "1795767794.793470000,\"start_ns\":1795767794793470000,\"duration\":"
		      "62.121961000,\"blocks\":2,\"end\":\"input\",\"class\":\"voip\","
		      "\"confidence\":0.9,\"probs\":[0.9,0.1],\"early\":true,\"reason\":\"vote\"}",
		      &v, err),
		0);
	assert_string_equal(v.interface, "a.pcap");
	assert_int_equal(v.flow_id, 3);
	assert_int_equal(v.protocol, 17);
	assert_int_equal(v.src_port, 59640);
	assert_true(v.start_unix_ns == 1795767794793470000ull);
	assert_true(v.duration_ns == 62121961000ull);
	assert_int_equal(v.stage, STREAM_STAGE_EARLY);
	assert_int_equal(v.blocks, 2);
	/* A reason this build does not know is sent as unspecified. */
	assert_int_equal(v.reason, STREAM_REASON_UNSPECIFIED);
	/* The reasons as classify --json prints them, the proto's names, numbers;
	 * the old "no_blocks" is "sparse". */
	assert_int_equal(parse("{\"class\":\"unknown\",\"reason\":\"sparse\"}", &v, err), 0);
	assert_int_equal(v.reason, STREAM_REASON_SPARSE);
	assert_int_equal(parse("{\"class\":\"unknown\",\"reason\":\"other\"}", &v, err), 0);
	assert_int_equal(v.reason, STREAM_REASON_OTHER);
	assert_int_equal(parse("{\"class\":\"unknown\",\"reason\":\"REASON_LOW_CONFIDENCE\"}", &v,
			       err),
			 0);
	assert_int_equal(v.reason, STREAM_REASON_LOW_CONFIDENCE);
	assert_int_equal(parse("{\"class\":\"unknown\",\"reason\":4}", &v, err), 0);
	assert_int_equal(v.reason, STREAM_REASON_DISAGREE);
	assert_int_equal(parse("{\"class\":\"unknown\",\"reason\":\"no_blocks\"}", &v, err), 0);
	assert_int_equal(v.reason, STREAM_REASON_SPARSE);
	assert_int_equal(parse("{\"class\":\"video\",\"reason\":\"ok\"}", &v, err), 0);
	assert_int_equal(v.reason, STREAM_REASON_OK);
	assert_string_equal(stream_reason_name(STREAM_REASON_UNTRACKED), "untracked");
	assert_int_equal(parse("{\"class\":\"video\",\"reason\":true}", &v, err), -EINVAL);
	/* The probabilities as classify --json prints them: an object in class order. */
	{
		struct vjson_classes vc;

		assert_int_equal(vjson_parse("{\"class\":\"voip\",\"probs\":{\"voip\":0.5,"
					     "\"video\":0.25,\"chat\":0.25},\"votes\":{\"voip\":1,"
					     "\"video\":0}}",
					     91, &v, &vc, err, sizeof(err)),
				 0);
		assert_int_equal(v.nprobs, 3);
		assert_true(v.probs[1] == 0.25f);
		assert_int_equal(vc.n, 3);
		assert_string_equal(vc.names[2], "chat");
	}
	/* A block verdict line: its "type" (last) makes it a block, not a flow. */
	assert_int_equal(parse("{\"flow_id\":4,\"block_index\":1,\"class\":\"video\","
			       "\"confidence\":0.5,\"early\":false,\"type\":\"block\"}",
			       &v, err),
			 0);
	assert_int_equal(v.flow_id, 4);
	assert_int_equal(v.block_index, 1);
	assert_int_equal(v.stage, STREAM_STAGE_BLOCK);
}

static void test_skips_and_errors(void **state)
{
	struct stream_verdict v;
	char err[200];

	(void)state;
	assert_int_equal(parse("{\"file\":\"x\",\"flows\":3,\"class\":\"no\",\"type\":\"summary\"}",
			       &v, err),
			 1);
	assert_int_equal(parse("   \n", &v, err), 1);
	assert_int_equal(
		parse("{\"model\":\"m\",\"per_class\":{\"voip\":{\"early\":0}},\"type\":\"summary\"}",
		      &v, err),
		1);
	/* Counters, events and log lines are not verdicts either. */
	assert_int_equal(parse("{\"counters\":{\"packets\":1},\"type\":\"counters\"}", &v, err), 1);
	assert_int_equal(parse("{\"ts\":\"x\",\"msg\":\"m\",\"type\":\"log\"}", &v, err), 1);
	/* The wire's bytes are payload bytes: read from payload_bytes_*, not
	 * from a flow line's bytes_* (IP bytes). */
	assert_int_equal(parse("{\"class\":\"video\",\"bytes_fwd\":100,\"payload_bytes_fwd\":60,"
			       "\"payload_bytes_rev\":7,\"type\":\"flow\"}",
			       &v, err),
			 0);
	assert_true(v.bytes_fwd == 60 && v.bytes_rev == 7);
	assert_int_equal(v.stage, STREAM_STAGE_FINAL);
	assert_int_equal(parse("{\"class\":\"video\",\"src\":\"10.0.0\"}", &v, err), -EINVAL);
	assert_string_equal(err, "\"src\": not an IPv4 or IPv6 address at byte 32");
	assert_int_equal(parse("{\"class\":\"video\",\"probs\":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}",
			       &v, err),
			 -EINVAL);
	assert_non_null(strstr(err, "at most 16"));
	assert_int_equal(parse("{\"class\":\"video\",\"confidence\":1.5}", &v, err), -EINVAL);
	assert_non_null(strstr(err, "\"confidence\": unexpected value"));
	assert_int_equal(parse("{\"class\":\"video\"", &v, err), -EINVAL);
	assert_non_null(strstr(err, "expected ',' or '}'"));
	assert_int_equal(parse("{\"flow_id\":1}", &v, err), -EINVAL);
	assert_non_null(strstr(err, "not a verdict"));
	assert_int_equal(parse("{\"class\":\"v\"} x", &v, err), -EINVAL);
	assert_non_null(strstr(err, "text after the object at byte 15"));
	assert_int_equal(parse("{\"class\":\"v\",\"a\":[[[[[[[[[[1]]]]]]]]]]}", &v, err), -EINVAL);
	assert_non_null(strstr(err, "nested too deep"));
	assert_int_equal(parse("{\"class\":\"a\\u0041\\n\"}", &v, err), 0);
	assert_string_equal(v.class_name, "aA\n");
}

/* The line is len bytes, not a C string: one that ends right before an
 * unmapped page is parsed without reading past it (fuzz_vjson found the
 * number scan and the \u escape reading on to a NUL). */
static void test_no_read_past_end(void **state)
{
	static const char *const lines[] = {
		"{\"class_name\":\"video\",\"confidence\":1",
		"{\"class_name\":\"video\",\"flow_id\":12345",
		"{\"class_name\":\"vid\\u00",
		"{\"class_name\":\"vid\\u0041\"",
		"{\"class_name\":\"video\",\"start\":1e5",
	};
	long page = sysconf(_SC_PAGESIZE);
	struct stream_verdict v;
	char err[200];
	size_t i;
	char *mem;

	(void)state;
	mem = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		   0);
	assert_true(mem != MAP_FAILED);
	assert_int_equal(mprotect(mem + page, (size_t)page, PROT_NONE), 0);
	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		size_t n = strlen(lines[i]);
		char *at = mem + page - n;

		memcpy(at, lines[i], n);
		assert_int_equal(vjson_parse(at, n, &v, NULL, err, sizeof(err)), -EINVAL);
	}
	munmap(mem, (size_t)page * 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimal_form),
		cmocka_unit_test(test_classify_form),
		cmocka_unit_test(test_skips_and_errors),
		cmocka_unit_test(test_no_read_past_end),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
