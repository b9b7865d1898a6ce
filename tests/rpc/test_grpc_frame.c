// SPDX-License-Identifier: MIT
/*
 * test_grpc_frame.c - gRPC message reassembly: every cut of the byte stream,
 * several messages per DATA frame, the size limit, the compressed flag,
 * truncation, and grpc-message / grpc-status / grpc-timeout helpers.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rpc/grpc_frame.h"
#include "rpc/grpc_status.h"
#include "rpc/rpc_error.h"

struct got {
	int n;
	size_t lens[16];
	uint8_t data[16][300];
	int stop_at; /* refuse the n-th message (1-based); 0 never */
};

static int on_msg(void *ctx, const uint8_t *msg, size_t len)
{
	struct got *g = ctx;

	if (g->n >= 16)
		return -ENOSPC;
	g->lens[g->n] = len;
	memcpy(g->data[g->n], msg, len < 300 ? len : 300);
	g->n++;
	return g->stop_at && g->n == g->stop_at ? -ECANCELED : 0;
}

/* Three messages (300, 0 and 7 bytes) back to back. */
static size_t make_stream(uint8_t *out)
{
	size_t n = 0, i;

	grpc_frame_prefix(out + n, 300);
	n += 5;
	for (i = 0; i < 300; i++)
		out[n++] = (uint8_t)(i * 7);
	grpc_frame_prefix(out + n, 0);
	n += 5;
	grpc_frame_prefix(out + n, 7);
	n += 5;
	memcpy(out + n, "flowpic", 7);
	n += 7;
	return n;
}

static void check_three(const struct got *g)
{
	size_t i;

	assert_int_equal(g->n, 3);
	assert_int_equal(g->lens[0], 300);
	for (i = 0; i < 300; i++)
		assert_int_equal(g->data[0][i], (uint8_t)(i * 7));
	assert_int_equal(g->lens[1], 0);
	assert_int_equal(g->lens[2], 7);
	assert_memory_equal(g->data[2], "flowpic", 7);
}

static void test_prefix(void **state)
{
	uint8_t p[5];

	(void)state;
	grpc_frame_prefix(p, 0x01020304);
	assert_int_equal(p[0], 0);
	assert_int_equal(p[1], 1);
	assert_int_equal(p[2], 2);
	assert_int_equal(p[3], 3);
	assert_int_equal(p[4], 4);
}

static void test_whole(void **state)
{
	uint8_t s[400];
	size_t n = make_stream(s);
	struct grpc_reader r;
	struct got g = { 0 };

	(void)state;
	grpc_reader_init(&r, 1000);
	assert_int_equal(grpc_reader_feed(&r, s, n, on_msg, &g), 0);
	assert_int_equal(grpc_reader_finish(&r), 0);
	check_three(&g);
	assert_int_equal(r.messages, 3);
	grpc_reader_free(&r);
}

/* Every split into two frames, and one byte per frame. */
static void test_every_cut(void **state)
{
	uint8_t s[400];
	size_t n = make_stream(s), cut, i;

	(void)state;
	for (cut = 0; cut <= n; cut++) {
		struct grpc_reader r;
		struct got g = { 0 };

		grpc_reader_init(&r, 1000);
		assert_int_equal(grpc_reader_feed(&r, s, cut, on_msg, &g), 0);
		if (cut > 0 && cut < 305)
			assert_int_equal(grpc_reader_finish(&r), GRPC_FRAME_E_TRUNCATED);
		assert_int_equal(grpc_reader_feed(&r, s + cut, n - cut, on_msg, &g), 0);
		assert_int_equal(grpc_reader_finish(&r), 0);
		check_three(&g);
		grpc_reader_free(&r);
	}
	{
		struct grpc_reader r;
		struct got g = { 0 };

		grpc_reader_init(&r, 1000);
		for (i = 0; i < n; i++) {
			assert_int_equal(grpc_reader_feed(&r, s + i, 1, on_msg, &g), 0);
			if (i == 2)
				assert_int_equal(grpc_reader_partial(&r), 3);
		}
		check_three(&g);
		grpc_reader_free(&r);
	}
}

static void test_too_big(void **state)
{
	uint8_t s[400];
	size_t n = make_stream(s);
	struct grpc_reader r;
	struct got g = { 0 };

	(void)state;
	grpc_reader_init(&r, 299);
	/* Refused on the prefix alone, before the body arrives. */
	assert_int_equal(grpc_reader_feed(&r, s, 5, on_msg, &g), GRPC_FRAME_E_TOO_BIG);
	assert_int_equal(g.n, 0);
	/* Sticky: nothing after the error is read. */
	assert_int_equal(grpc_reader_feed(&r, s + 5, n - 5, on_msg, &g), GRPC_FRAME_E_TOO_BIG);
	assert_int_equal(g.n, 0);
	assert_int_equal(grpc_reader_finish(&r), GRPC_FRAME_E_TOO_BIG);
	assert_non_null(strstr(rpc_strerror(GRPC_FRAME_E_TOO_BIG), "limit"));
	grpc_reader_free(&r);

	/* Exactly at the limit is fine. */
	grpc_reader_init(&r, 300);
	assert_int_equal(grpc_reader_feed(&r, s, n, on_msg, &g), 0);
	check_three(&g);
	grpc_reader_free(&r);
}

static void test_flags(void **state)
{
	uint8_t s[12] = { 1, 0, 0, 0, 2, 'h', 'i' };
	struct grpc_reader r;
	struct got g = { 0 };

	(void)state;
	grpc_reader_init(&r, 100);
	assert_int_equal(grpc_reader_feed(&r, s, 7, on_msg, &g), GRPC_FRAME_E_COMPRESSED);
	assert_int_equal(g.n, 0);
	grpc_reader_free(&r);
	s[0] = 0x80;
	grpc_reader_init(&r, 100);
	assert_int_equal(grpc_reader_feed(&r, s, 7, on_msg, &g), GRPC_FRAME_E_BAD_FLAG);
	grpc_reader_free(&r);
}

static void test_callback_stop(void **state)
{
	uint8_t s[400];
	size_t n = make_stream(s);
	struct grpc_reader r;
	struct got g = { .stop_at = 2 };

	(void)state;
	grpc_reader_init(&r, 1000);
	assert_int_equal(grpc_reader_feed(&r, s, n, on_msg, &g), GRPC_FRAME_E_CALLBACK);
	assert_int_equal(g.n, 2);
	grpc_reader_free(&r);
}

/* A huge announced length costs only the bytes that arrived. */
static void test_lazy_buffer(void **state)
{
	uint8_t p[5];
	uint8_t body[10] = { 0 };
	struct grpc_reader r;
	struct got g = { 0 };

	(void)state;
	grpc_reader_init(&r, GRPC_DEFAULT_MAX_MESSAGE);
	grpc_frame_prefix(p, GRPC_DEFAULT_MAX_MESSAGE);
	assert_int_equal(grpc_reader_feed(&r, p, 5, on_msg, &g), 0);
	assert_int_equal(grpc_reader_feed(&r, body, 10, on_msg, &g), 0);
	assert_true(r.buf_cap <= 4096);
	assert_int_equal(grpc_reader_partial(&r), 15);
	grpc_reader_free(&r);
}

static void test_status(void **state)
{
	char buf[64];
	const char *enc;

	(void)state;
	assert_string_equal(grpc_status_name(GRPC_STATUS_UNAUTHENTICATED), "UNAUTHENTICATED");
	assert_string_equal(grpc_status_name(8), "RESOURCE_EXHAUSTED");
	assert_string_equal(grpc_status_name(17), "UNKNOWN_STATUS");
	assert_int_equal(grpc_status_parse("16", 2), 16);
	assert_int_equal(grpc_status_parse("1a", 2), -1);
	assert_int_equal(grpc_status_parse("", 0), -1);

	assert_int_equal(grpc_message_encode("bad token: 100% \xc3\xa9\n", buf, sizeof(buf)), 27);
	assert_string_equal(buf, "bad token: 100%25 %C3%A9%0A");
	enc = buf;
	{
		char dec[64];

		grpc_message_decode(enc, strlen(enc), dec, sizeof(dec));
		assert_string_equal(dec, "bad token: 100% \xc3\xa9\n");
		/* Malformed escapes pass through. */
		grpc_message_decode("50%zz%4", 7, dec, sizeof(dec));
		assert_string_equal(dec, "50%zz%4");
	}
	/* Cut only at a whole escape. */
	assert_int_equal(grpc_message_encode("ab%", buf, 5), 2);
	assert_string_equal(buf, "ab");

	assert_int_equal(grpc_timeout_parse("100m", 4), 100000000LL);
	assert_int_equal(grpc_timeout_parse("5S", 2), 5000000000LL);
	assert_int_equal(grpc_timeout_parse("5", 1), -1);
	assert_int_equal(grpc_timeout_parse("5x", 2), -1);
	assert_int_equal(grpc_timeout_parse("123456789S", 10), -1);
	assert_string_equal(rpc_strerror(-2), "No such file or directory");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prefix),	    cmocka_unit_test(test_whole),
		cmocka_unit_test(test_every_cut),   cmocka_unit_test(test_too_big),
		cmocka_unit_test(test_flags),	    cmocka_unit_test(test_callback_stop),
		cmocka_unit_test(test_lazy_buffer), cmocka_unit_test(test_status),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
