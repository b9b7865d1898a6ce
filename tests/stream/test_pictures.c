// SPDX-License-Identifier: MIT
/*
 * test_pictures.c - the stream's picture buffer (stream/stream.h, "Pictures"):
 * its size refused below one picture, pictures taken until it is full and
 * then verdicts taken without theirs (pictures_no_room), a picture of too
 * many pixels left out (pictures_too_big), bad pictures and pictures on
 * FINAL verdicts refused (-EINVAL).  On a prepared stream (no thread), so
 * nothing drains the buffer and every count is exact.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "stream/encode.h"
#include "stream/stream.h"

static uint32_t index_[STREAM_PICTURE_CELLS_MAX + 1];
static uint8_t count_[STREAM_PICTURE_CELLS_MAX + 1];

static void config(struct stream_config *cfg, size_t picture_bytes)
{
	stream_config_default(cfg);
	cfg->target = "127.0.0.1:9";
	cfg->agent_id = "pictures";
	cfg->submit_max = 1024;
	cfg->picture_bytes = picture_bytes;
}

/* A block verdict with a picture of n pixels (every pixel of a split 64 x 64, in order). */
static void verdict(struct stream_verdict *v, uint32_t n)
{
	uint32_t i;

	memset(v, 0, sizeof(*v));
	v->stage = STREAM_STAGE_BLOCK;
	v->protocol = 6;
	for (i = 0; i < n; i++) {
		index_[i] = i;
		count_[i] = 1;
	}
	v->cells = (struct stream_cells){ index_,	    count_,	   n, 64, 64,
					  STREAM_PIC_SPLIT, 15000000000ull };
}

static void test_buffer_size(void **state)
{
	struct stream_config cfg;
	struct stream *s;
	char err[320];

	(void)state;
	config(&cfg, STREAM_PICTURE_BYTES_MAX - 1);
	s = stream_prepare(&cfg, err, sizeof(err));
	assert_null(s);
	assert_non_null(strstr(err, "picture buffer"));
	config(&cfg, 0);
	s = stream_prepare(&cfg, err, sizeof(err));
	assert_non_null(s);
	stream_close(s, 0, NULL);
}

static void test_counts(void **state)
{
	struct stream_config cfg;
	struct stream_counters c;
	struct stream_verdict v;
	struct stream *s;
	size_t each, fit;
	char err[320];
	unsigned i;

	(void)state;
	config(&cfg, STREAM_PICTURE_BYTES_MAX);
	s = stream_prepare(&cfg, err, sizeof(err));
	assert_non_null(s);
	verdict(&v, 1000);
	each = encode_cells_size(&v.cells);
	fit = STREAM_PICTURE_BYTES_MAX / each;
	for (i = 0; i < fit + 3; i++)
		assert_int_equal(stream_submit(s, &v, NULL), 0);
	stream_counters(s, &c);
	assert_int_equal(c.submitted, fit + 3);
	assert_int_equal(c.pictures, fit);
	assert_int_equal(c.pictures_no_room, 3);
	assert_int_equal(c.pictures_too_big, 0);

	/* Too many pixels: taken, without its picture. */
	verdict(&v, STREAM_PICTURE_CELLS_MAX + 1);
	assert_int_equal(stream_submit(s, &v, NULL), 0);
	stream_counters(s, &c);
	assert_int_equal(c.pictures_too_big, 1);

	/* Not taken: a FINAL verdict with a picture, pixels out of order. */
	verdict(&v, 10);
	v.stage = STREAM_STAGE_FINAL;
	assert_int_equal(stream_submit(s, &v, NULL), -EINVAL);
	v.stage = STREAM_STAGE_EARLY;
	index_[3] = 2;
	assert_int_equal(stream_submit(s, &v, NULL), -EINVAL);
	stream_counters(s, &c);
	assert_int_equal(c.submitted, fit + 4);
	stream_close(s, 0, NULL);

	/* Pictures off: a verdict's picture is left out and counted. */
	config(&cfg, 0);
	s = stream_prepare(&cfg, err, sizeof(err));
	assert_non_null(s);
	verdict(&v, 10);
	assert_int_equal(stream_submit(s, &v, NULL), 0);
	stream_counters(s, &c);
	assert_int_equal(c.pictures, 0);
	assert_int_equal(c.pictures_no_room, 1);
	stream_close(s, 0, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buffer_size),
		cmocka_unit_test(test_counts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
