// SPDX-License-Identifier: MIT
/*
 * test_hostport.c - HOST:PORT parsing as the agent's --collector (connect)
 * and the collector's --listen take it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "rpc/hostport.h"

static char host[256], port[16];

static enum rpc_hostport_error parse(const char *spec, enum rpc_hostport_mode mode)
{
	memset(host, 'x', sizeof(host));
	memset(port, 'x', sizeof(port));
	return rpc_hostport_parse(spec, mode, host, sizeof(host), port, sizeof(port));
}

static void ok(const char *spec, enum rpc_hostport_mode mode, const char *h, const char *p)
{
	assert_int_equal(parse(spec, mode), RPC_HOSTPORT_OK);
	assert_string_equal(host, h);
	assert_string_equal(port, p);
}

static void test_connect_ok(void **state)
{
	(void)state;
	ok("127.0.0.1:50051", RPC_HOSTPORT_CONNECT, "127.0.0.1", "50051");
	ok("collector.example:1", RPC_HOSTPORT_CONNECT, "collector.example", "1");
	ok("localhost:65535", RPC_HOSTPORT_CONNECT, "localhost", "65535");
	ok("[::1]:50051", RPC_HOSTPORT_CONNECT, "::1", "50051");
	ok("[fe80::1%eth0]:443", RPC_HOSTPORT_CONNECT, "fe80::1%eth0", "443");
	/* Leading zeros: the port string is kept as given. */
	ok("h:000080", RPC_HOSTPORT_CONNECT, "h", "000080");
}

static void test_connect_errors(void **state)
{
	(void)state;
	assert_int_equal(parse(NULL, RPC_HOSTPORT_CONNECT), RPC_HOSTPORT_EMPTY);
	assert_int_equal(parse("", RPC_HOSTPORT_CONNECT), RPC_HOSTPORT_EMPTY);
	/* Brackets without "]:" after them. */
	assert_int_equal(parse("[::1", RPC_HOSTPORT_CONNECT), RPC_HOSTPORT_BRACKET);
	assert_int_equal(parse("[::1]", RPC_HOSTPORT_CONNECT), RPC_HOSTPORT_BRACKET);
	assert_int_equal(parse("[::1]50051", RPC_HOSTPORT_CONNECT), RPC_HOSTPORT_BRACKET);
	/* No colon, or an IPv6 literal without brackets. */
	assert_int_equal(parse("collector", RPC_HOSTPORT_CONNECT), RPC_HOSTPORT_COLON);
	assert_int_equal(parse("::1:50051", RPC_HOSTPORT_CONNECT), RPC_HOSTPORT_COLON);
	/* Missing or out-of-range ports, empty hosts. */
	assert_int_equal(parse("host:", RPC_HOSTPORT_CONNECT), RPC_HOSTPORT_BAD);
	assert_int_equal(parse("host:0", RPC_HOSTPORT_CONNECT), RPC_HOSTPORT_BAD);
	assert_int_equal(parse("host:65536", RPC_HOSTPORT_CONNECT), RPC_HOSTPORT_BAD);
	assert_int_equal(parse("host:99999999999999", RPC_HOSTPORT_CONNECT), RPC_HOSTPORT_BAD);
	assert_int_equal(parse("host:-1", RPC_HOSTPORT_CONNECT), RPC_HOSTPORT_BAD);
	assert_int_equal(parse("host:80x", RPC_HOSTPORT_CONNECT), RPC_HOSTPORT_BAD);
	assert_int_equal(parse("host:https", RPC_HOSTPORT_CONNECT), RPC_HOSTPORT_BAD);
	assert_int_equal(parse(":50051", RPC_HOSTPORT_CONNECT), RPC_HOSTPORT_BAD);
	assert_int_equal(parse("[]:50051", RPC_HOSTPORT_CONNECT), RPC_HOSTPORT_BAD);
	assert_int_equal(parse("[::1]:", RPC_HOSTPORT_CONNECT), RPC_HOSTPORT_BAD);
	/* A port string longer than its buffer. */
	assert_int_equal(parse("h:0000000000000080", RPC_HOSTPORT_CONNECT), RPC_HOSTPORT_BAD);
}

static void test_listen(void **state)
{
	(void)state;
	ok("127.0.0.1:50051", RPC_HOSTPORT_LISTEN, "127.0.0.1", "50051");
	ok("localhost:0", RPC_HOSTPORT_LISTEN, "localhost", "0");
	ok("[::1]:50051", RPC_HOSTPORT_LISTEN, "::1", "50051");
	/* The empty host: every address. */
	ok(":50051", RPC_HOSTPORT_LISTEN, "", "50051");
	ok("[]:50051", RPC_HOSTPORT_LISTEN, "", "50051");
	/* Split at the last colon; the port may be a service name. */
	ok("::1:50051", RPC_HOSTPORT_LISTEN, "::1", "50051");
	ok("0.0.0.0:https", RPC_HOSTPORT_LISTEN, "0.0.0.0", "https");

	assert_int_equal(parse(NULL, RPC_HOSTPORT_LISTEN), RPC_HOSTPORT_EMPTY);
	assert_int_equal(parse("", RPC_HOSTPORT_LISTEN), RPC_HOSTPORT_EMPTY);
	assert_int_equal(parse("50051", RPC_HOSTPORT_LISTEN), RPC_HOSTPORT_COLON);
	assert_int_equal(parse("[::1]50051", RPC_HOSTPORT_LISTEN), RPC_HOSTPORT_BRACKET);
	assert_int_equal(parse("host:", RPC_HOSTPORT_LISTEN), RPC_HOSTPORT_BAD);
	assert_int_equal(parse(":", RPC_HOSTPORT_LISTEN), RPC_HOSTPORT_BAD);
	assert_int_equal(parse("[::1]:", RPC_HOSTPORT_LISTEN), RPC_HOSTPORT_BAD);
}

static void test_sizes(void **state)
{
	char big[300], want[256], h[8], p[4];

	(void)state;
	/* A host of 255 characters fits 256 bytes, 256 do not. */
	memset(want, 'a', 255);
	want[255] = '\0';
	snprintf(big, sizeof(big), "%s:80", want);
	ok(big, RPC_HOSTPORT_CONNECT, want, "80");
	snprintf(big, sizeof(big), "a%s:80", want);
	assert_int_equal(parse(big, RPC_HOSTPORT_CONNECT), RPC_HOSTPORT_BAD);
	assert_int_equal(parse(big, RPC_HOSTPORT_LISTEN), RPC_HOSTPORT_BAD);
	/* The caller's buffer sizes count. */
	assert_int_equal(rpc_hostport_parse("1234567:80", RPC_HOSTPORT_CONNECT, h, sizeof(h), p,
					    sizeof(p)),
			 RPC_HOSTPORT_OK);
	assert_string_equal(h, "1234567");
	assert_int_equal(rpc_hostport_parse("12345678:80", RPC_HOSTPORT_CONNECT, h, sizeof(h), p,
					    sizeof(p)),
			 RPC_HOSTPORT_BAD);
	assert_int_equal(rpc_hostport_parse("h:1234", RPC_HOSTPORT_LISTEN, h, sizeof(h), p,
					    sizeof(p)),
			 RPC_HOSTPORT_BAD);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect_ok),
		cmocka_unit_test(test_connect_errors),
		cmocka_unit_test(test_listen),
		cmocka_unit_test(test_sizes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
