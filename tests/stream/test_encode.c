// SPDX-License-Identifier: MIT
/*
 * test_encode.c - nanopb encoding of Batch (stream/encode.c) proved by an
 * independent decoder: protobuf-c's code generated from the same
 * proto/flowpic.proto.  Also: encoding allocates nothing, the size bound
 * holds at the largest batch, a small buffer is refused, Acks both ways;
 * pictures (Verdict.cells) as encoded at submit, and their checks.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "stream/encode.h"
#include "flowpic.pb-c.h"

/* Allocation counter: encode_batch() must not allocate. */
static int counting, allocs;
void *__real_malloc(size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_malloc(size_t n)
{
	if (counting)
		allocs++;
	return __real_malloc(n);
}

static void header(struct encode_header *h)
{
	static const char *const cls[] = { "voip", "video", "file_transfer", "chat", "browsing" };
	unsigned i;

	memset(h, 0, sizeof(*h));
	strcpy(h->host, "host-a");
	strcpy(h->agent_id, "agent-7");
	strcpy(h->version, "0.1.0");
	h->run_id = 1795767794000000123ull;
	strcpy(h->model_name, "lenet32");
	strcpy(h->model_version, "v1");
	for (i = 0; i < 5; i++)
		strcpy(h->classes[i], cls[i]);
	h->nclasses = 5;
}

static void verdict(struct encode_verdict *ev, uint64_t seq, bool v6)
{
	struct stream_verdict *v = &ev->v;
	unsigned i;

	memset(ev, 0, sizeof(*ev));
	ev->seq = seq;
	if (v6) {
		v->src_addr[0] = 0x20;
		v->src_addr[1] = 0x01;
		v->src_addr[15] = (uint8_t)seq;
		v->dst_addr[0] = 0xfe;
		v->dst_addr[1] = 0x80;
		v->dst_addr[15] = 1;
	} else {
		v->src_addr[10] = v->src_addr[11] = 0xff;
		v->src_addr[12] = 10;
		v->src_addr[15] = (uint8_t)seq;
		v->dst_addr[10] = v->dst_addr[11] = 0xff;
		v->dst_addr[12] = 192;
		v->dst_addr[13] = 168;
		v->dst_addr[15] = 1;
	}
	v->src_port = 40000;
	v->dst_port = 443;
	v->protocol = v6 ? 17 : 6;
	v->direction = STREAM_DIR_INBOUND;
	v->stage = STREAM_STAGE_BLOCK;
	v->flow_id = 1000 + seq;
	v->start_unix_ns = 1795767794793470000ull + seq; /* beyond a double's precision */
	v->duration_ns = 60000000000ull;
	v->packets_fwd = UINT64_MAX;
	v->packets_rev = 2;
	v->bytes_fwd = 3;
	v->bytes_rev = 4;
	v->block_index = 5;
	v->blocks = 6;
	v->confidence = 0.5f;
	v->nprobs = STREAM_MAX_CLASSES;
	for (i = 0; i < STREAM_MAX_CLASSES; i++)
		v->probs[i] = (float)i / 16.0f;
	/* The longest strings the bounds allow. */
	memset(v->interface, 'i', STREAM_IFNAME_MAX - 1);
	memset(v->class_name, 'c', STREAM_CLASS_MAX - 1);
}

static void check_verdict(const Flowpic__V1__Verdict *m, const struct encode_verdict *ev, bool v6)
{
	const struct stream_verdict *v = &ev->v;
	unsigned i;

	assert_int_equal(m->seq, ev->seq);
	assert_string_equal(m->interface, v->interface);
	assert_non_null(m->flow);
	assert_int_equal(m->flow->src_addr.len, v6 ? 16 : 4);
	assert_memory_equal(m->flow->src_addr.data, v6 ? v->src_addr : v->src_addr + 12,
			    v6 ? 16 : 4);
	assert_memory_equal(m->flow->dst_addr.data, v6 ? v->dst_addr : v->dst_addr + 12,
			    v6 ? 16 : 4);
	assert_int_equal(m->flow->src_port, 40000);
	assert_int_equal(m->flow->dst_port, 443);
	assert_int_equal(m->flow->protocol, v6 ? 17 : 6);
	assert_int_equal(m->direction, FLOWPIC__V1__DIRECTION__DIRECTION_INBOUND);
	assert_int_equal(m->stage, FLOWPIC__V1__STAGE__STAGE_BLOCK);
	assert_int_equal(m->flow_id, v->flow_id);
	assert_non_null(m->span);
	assert_true(m->span->start_unix_ns == v->start_unix_ns);
	assert_true(m->span->duration_ns == 60000000000ull);
	assert_true(m->span->packets_fwd == UINT64_MAX);
	assert_int_equal(m->span->packets_rev, 2);
	assert_int_equal(m->span->bytes_fwd, 3);
	assert_int_equal(m->span->bytes_rev, 4);
	assert_int_equal(m->span->block_index, 5);
	assert_int_equal(m->span->blocks, 6);
	assert_string_equal(m->class_name, v->class_name);
	assert_true(m->confidence == 0.5f);
	assert_int_equal(m->n_probs, STREAM_MAX_CLASSES);
	for (i = 0; i < STREAM_MAX_CLASSES; i++)
		assert_true(m->probs[i] == v->probs[i]);
}

static void test_round_trip(void **state)
{
	struct encode_header h;
	struct encode_verdict v[4];
	struct stream_counter c[2] = { { "stream.submitted", 4 },
				       { "lost.ring_full", 1ull << 40 } };
	size_t cap = encode_batch_bound(4, 2);
	uint8_t *buf = malloc(cap);
	Flowpic__V1__Batch *b;
	char err[200];
	long len;
	unsigned i;

	(void)state;
	header(&h);
	for (i = 0; i < 4; i++)
		verdict(&v[i], i + 1, i & 1);
	counting = 1;
	allocs = 0;
	len = encode_batch(buf, cap, &h, 42, v, 4, c, 2, err, sizeof(err));
	counting = 0;
	assert_true(len > 0);
	assert_int_equal(allocs, 0);
	b = flowpic__v1__batch__unpack(NULL, (size_t)len, buf);
	assert_non_null(b);
	assert_int_equal(b->sequence, 42);
	assert_non_null(b->agent);
	assert_string_equal(b->agent->host, "host-a");
	assert_string_equal(b->agent->agent_id, "agent-7");
	assert_string_equal(b->agent->version, "0.1.0");
	assert_true(b->agent->run_id == 1795767794000000123ull);
	assert_non_null(b->model);
	assert_string_equal(b->model->name, "lenet32");
	assert_string_equal(b->model->version, "v1");
	assert_int_equal(b->model->n_classes, 5);
	assert_string_equal(b->model->classes[2], "file_transfer");
	assert_int_equal(b->n_verdicts, 4);
	for (i = 0; i < 4; i++)
		check_verdict(b->verdicts[i], &v[i], i & 1);
	assert_int_equal(b->n_counters, 2);
	assert_string_equal(b->counters[1]->name, "lost.ring_full");
	assert_true(b->counters[1]->value == 1ull << 40);
	flowpic__v1__batch__free_unpacked(b, NULL);
	free(buf);
}

/* The empty batch and zero fields: proto3 leaves defaults out, the decoder fills them. */
static void test_empty_batch(void **state)
{
	struct encode_header h;
	uint8_t buf[2048];
	Flowpic__V1__Batch *b;
	char err[200];
	long len;

	(void)state;
	memset(&h, 0, sizeof(h));
	strcpy(h.agent_id, "a");
	len = encode_batch(buf, sizeof(buf), &h, 1, NULL, 0, NULL, 0, err, sizeof(err));
	assert_true(len > 0);
	b = flowpic__v1__batch__unpack(NULL, (size_t)len, buf);
	assert_non_null(b);
	assert_int_equal(b->n_verdicts, 0);
	assert_string_equal(b->agent->agent_id, "a");
	assert_string_equal(b->agent->host, "");
	flowpic__v1__batch__free_unpacked(b, NULL);
}

/* The largest batch with every field at its bound fits encode_batch_bound(). */
static void test_bound(void **state)
{
	struct encode_header h;
	unsigned n = STREAM_BATCH_MAX, i;
	struct encode_verdict *v = calloc(n, sizeof(*v));
	struct stream_counter c[84];
	size_t cap = encode_batch_bound(n, 84);
	uint8_t *buf = malloc(cap);
	char name[64];
	char err[200];
	long len;

	(void)state;
	memset(&h, 'x', sizeof(h));
	h.host[sizeof(h.host) - 1] = h.agent_id[sizeof(h.agent_id) - 1] = '\0';
	h.version[sizeof(h.version) - 1] = h.model_name[sizeof(h.model_name) - 1] = '\0';
	h.model_version[sizeof(h.model_version) - 1] = '\0';
	for (i = 0; i < STREAM_MAX_CLASSES; i++)
		h.classes[i][STREAM_CLASS_MAX - 1] = '\0';
	h.nclasses = STREAM_MAX_CLASSES;
	h.run_id = UINT64_MAX;
	memset(name, 'n', sizeof(name));
	name[63] = '\0';
	for (i = 0; i < 84; i++)
		c[i] = (struct stream_counter){ name, UINT64_MAX };
	for (i = 0; i < n; i++) {
		verdict(&v[i], UINT64_MAX - i, true);
		v[i].v.flow_id = v[i].v.start_unix_ns = v[i].v.duration_ns = UINT64_MAX;
		v[i].v.packets_rev = v[i].v.bytes_fwd = v[i].v.bytes_rev = UINT64_MAX;
		v[i].v.block_index = UINT64_MAX;
		v[i].v.blocks = UINT32_MAX;
		v[i].v.src_port = v[i].v.dst_port = 65535;
		v[i].v.protocol = 255;
	}
	counting = 1;
	allocs = 0;
	len = encode_batch(buf, cap, &h, UINT64_MAX, v, n, c, 84, err, sizeof(err));
	counting = 0;
	assert_true(len > 0);
	assert_true((size_t)len <= cap);
	assert_int_equal(allocs, 0);
	/* One byte short of what it needs: refused, with a message. */
	len = encode_batch(buf, (size_t)len - 1, &h, UINT64_MAX, v, n, c, 84, err, sizeof(err));
	assert_int_equal(len, -ENOSPC);
	assert_non_null(strstr(err, "encoding batch"));
	free(buf);
	free(v);
}

static void test_ack(void **state)
{
	Flowpic__V1__Ack a = FLOWPIC__V1__ACK__INIT;
	struct encode_ack got, mine = { 7, 3, 4 };
	uint8_t buf[64];
	size_t len;
	long n;
	char err[200];
	static const uint8_t garbage[] = { 0x08, 0xff, 0xff }; /* varint cut short */
	Flowpic__V1__Ack *back;

	(void)state;
	a.sequence = 1ull << 50;
	a.stored = 500;
	a.duplicates = 1;
	len = flowpic__v1__ack__pack(&a, buf);
	assert_int_equal(encode_decode_ack(buf, len, &got, err, sizeof(err)), 0);
	assert_true(got.sequence == 1ull << 50);
	assert_int_equal(got.stored, 500);
	assert_int_equal(got.duplicates, 1);
	assert_int_equal(encode_decode_ack(garbage, sizeof(garbage), &got, err, sizeof(err)),
			 -EBADMSG);
	assert_non_null(strstr(err, "does not decode"));
	n = encode_ack(buf, sizeof(buf), &mine);
	assert_true(n > 0);
	back = flowpic__v1__ack__unpack(NULL, (size_t)n, buf);
	assert_non_null(back);
	assert_int_equal(back->sequence, 7);
	assert_int_equal(back->stored, 3);
	assert_int_equal(back->duplicates, 4);
	flowpic__v1__ack__free_unpacked(back, NULL);
}

/* A picture: every step-th pixel of planes x res x res, counts cycling 1 .. 255. */
static void picture(struct stream_cells *c, uint32_t *index, uint8_t *count, uint16_t res,
		    uint8_t dirs, uint32_t step, uint32_t n)
{
	uint32_t i;

	for (i = 0; i < n; i++) {
		index[i] = i * step;
		count[i] = (uint8_t)(1 + (i * 37) % 255);
	}
	*c = (struct stream_cells){ index, count, n, res, res, dirs, 15000000000ull };
}

/* Pictures: encoded at submit (encode_cells), carried in Verdict.cells as
 * they are, decoded by protobuf-c: the same pixels, deltas, axes. */
static void test_pictures(void **state)
{
	static uint32_t index[STREAM_PICTURE_CELLS_MAX];
	static uint8_t count[STREAM_PICTURE_CELLS_MAX];
	static uint8_t pics[3][STREAM_PICTURE_BYTES_MAX];
	struct stream_cells c[3];
	struct encode_verdict v[4];
	struct encode_header h;
	Flowpic__V1__Batch *b;
	size_t total = 0, cap;
	uint8_t *buf;
	char err[200];
	long len;
	unsigned i, k;

	(void)state;
	header(&h);
	/* A split 32 x 32 picture, every third pixel; an empty one; the
	 * largest: 8192 pixels spread over a split 2048 x 2048, count 255. */
	picture(&c[0], index, count, 32, STREAM_PIC_SPLIT, 3, 600);
	c[1] = (struct stream_cells){ NULL, NULL, 0, 32, 32, STREAM_PIC_BOTH, 15000000000ull };
	for (i = 0; i < 3; i++) {
		verdict(&v[i], i + 1, false);
		if (i == 2) {
			static uint32_t big_index[STREAM_PICTURE_CELLS_MAX];
			static uint8_t big_count[STREAM_PICTURE_CELLS_MAX];

			picture(&c[2], big_index, big_count, 2048, STREAM_PIC_SPLIT, 1024,
				STREAM_PICTURE_CELLS_MAX);
			memset(big_count, 255, sizeof(big_count));
			big_index[0] = 1023; /* the largest first index of this spacing */
		}
		assert_int_equal(encode_cells_check(&c[i], err, sizeof(err)), 0);
		len = encode_cells(pics[i], sizeof(pics[i]), &c[i]);
		assert_true(len > 0);
		assert_int_equal((size_t)len, encode_cells_size(&c[i]));
		assert_true(len <= STREAM_PICTURE_BYTES_MAX);
		v[i].pic = pics[i];
		v[i].pic_len = (uint32_t)len;
		total += (size_t)len;
	}
	/* A 1-byte delta and a 1-byte count (2 from 128 on) per pixel. */
	assert_true(v[0].pic_len < 600 * 3 + 32);
	verdict(&v[3], 4, true); /* no picture */
	cap = encode_batch_bound(4, 0) + encode_pictures_bound(4, total);
	buf = malloc(cap);
	counting = 1;
	allocs = 0;
	len = encode_batch(buf, cap, &h, 9, v, 4, NULL, 0, err, sizeof(err));
	counting = 0;
	assert_true(len > 0);
	assert_int_equal(allocs, 0);
	b = flowpic__v1__batch__unpack(NULL, (size_t)len, buf);
	assert_non_null(b);
	assert_int_equal(b->n_verdicts, 4);
	for (i = 0; i < 3; i++) {
		const Flowpic__V1__Cells *m = b->verdicts[i]->cells;
		uint64_t at = 0;

		check_verdict(b->verdicts[i], &v[i], false);
		assert_non_null(m);
		assert_int_equal(m->rows, c[i].rows);
		assert_int_equal(m->cols, c[i].cols);
		assert_int_equal(m->dirs, c[i].dirs);
		assert_true(m->window_ns == 15000000000ull);
		assert_int_equal(m->n_index_delta, c[i].n);
		assert_int_equal(m->n_count, c[i].n);
		for (k = 0; k < c[i].n; k++) {
			at += m->index_delta[k];
			assert_int_equal(at, c[i].index[k]);
			assert_int_equal(m->count[k], c[i].count[k]);
		}
	}
	assert_null(b->verdicts[3]->cells);
	flowpic__v1__batch__free_unpacked(b, NULL);
	free(buf);
}

/* Pictures that do not describe one are refused with a line; too many pixels is -E2BIG. */
static void test_cells_check(void **state)
{
	static uint32_t index[STREAM_PICTURE_CELLS_MAX + 1];
	static uint8_t count[STREAM_PICTURE_CELLS_MAX + 1];
	struct stream_cells c;
	char err[200];

	(void)state;
	picture(&c, index, count, 32, STREAM_PIC_BOTH, 1, 1024);
	assert_int_equal(encode_cells_check(&c, err, sizeof(err)), 0);
	c.n = 1025; /* index 1024 is outside 32 x 32 */
	index[1024] = 1024;
	count[1024] = 1;
	assert_int_equal(encode_cells_check(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "pixel 1024"));
	c.dirs = STREAM_PIC_SPLIT; /* two planes: it fits */
	assert_int_equal(encode_cells_check(&c, err, sizeof(err)), 0);
	index[5] = index[4]; /* not increasing */
	assert_int_equal(encode_cells_check(&c, err, sizeof(err)), -EINVAL);
	index[5] = 5;
	count[7] = 0;
	assert_int_equal(encode_cells_check(&c, err, sizeof(err)), -EINVAL);
	count[7] = 1;
	c.rows = 0;
	assert_int_equal(encode_cells_check(&c, err, sizeof(err)), -EINVAL);
	c.rows = 32;
	c.dirs = 4;
	assert_int_equal(encode_cells_check(&c, err, sizeof(err)), -EINVAL);
	picture(&c, index, count, 2048, STREAM_PIC_BOTH, 1, STREAM_PICTURE_CELLS_MAX + 1);
	assert_int_equal(encode_cells_check(&c, err, sizeof(err)), -E2BIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip), cmocka_unit_test(test_empty_batch),
		cmocka_unit_test(test_bound),	   cmocka_unit_test(test_ack),
		cmocka_unit_test(test_pictures),   cmocka_unit_test(test_cells_check),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
