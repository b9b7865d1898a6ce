// SPDX-License-Identifier: MIT
/* encode.c - nanopb encoding of Batch and decoding of Ack; see encode.h. */
#include "encode.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <pb_decode.h>
#include <pb_encode.h>

#include "flowpic.pb.h"

/* Tag + length prefix of a repeated submessage: 1 byte tag, up to 5 bytes length. */
#define SUBMSG_OVERHEAD 6
/* Verdict.cells: 1 byte tag, up to 3 bytes length (a picture is < 2 MiB). */
#define CELLS_OVERHEAD 4

struct verdicts_arg {
	const struct encode_verdict *v;
	unsigned n;
};

struct counters_arg {
	const struct stream_counter *c;
	unsigned n;
};

static const uint8_t v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* Addresses go out as 4 bytes for IPv4 (IPv4-mapped in memory), else 16. */
static void put_addr(pb_size_t *size, pb_byte_t bytes[16], const uint8_t a[16])
{
	if (!memcmp(a, v4_mapped, sizeof(v4_mapped))) {
		*size = 4;
		memcpy(bytes, a + 12, 4);
	} else {
		*size = 16;
		memcpy(bytes, a, 16);
	}
}

/* Bounded copy of a NUL-terminated field whose size the public struct fixes. */
static void put_str(char *dst, size_t cap, const char *src, size_t srccap)
{
	size_t n = strnlen(src, srccap);

	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Verdict.cells: the picture encoded at submit, copied as it is. */
static bool encode_pic(pb_ostream_t *os, const pb_field_t *field, void *const *arg)
{
	const struct encode_verdict *ev = *arg;

	if (!ev->pic)
		return true;
	return pb_encode_tag_for_field(os, field) && pb_encode_string(os, ev->pic, ev->pic_len);
}

static void fill_verdict(flowpic_v1_Verdict *m, const struct encode_verdict *ev)
{
	const struct stream_verdict *v = &ev->v;

	memset(m, 0, sizeof(*m));
	m->seq = ev->seq;
	put_str(m->interface, sizeof(m->interface), v->interface, sizeof(v->interface));
	m->has_flow = true;
	put_addr(&m->flow.src_addr.size, m->flow.src_addr.bytes, v->src_addr);
	put_addr(&m->flow.dst_addr.size, m->flow.dst_addr.bytes, v->dst_addr);
	m->flow.src_port = v->src_port;
	m->flow.dst_port = v->dst_port;
	m->flow.protocol = v->protocol;
	m->direction = (flowpic_v1_Direction)v->direction;
	m->flow_id = v->flow_id;
	m->stage = (flowpic_v1_Stage)v->stage;
	m->has_span = true;
	m->span.start_unix_ns = v->start_unix_ns;
	m->span.duration_ns = v->duration_ns;
	m->span.packets_fwd = v->packets_fwd;
	m->span.packets_rev = v->packets_rev;
	m->span.bytes_fwd = v->bytes_fwd;
	m->span.bytes_rev = v->bytes_rev;
	m->span.block_index = v->block_index;
	m->span.blocks = v->blocks;
	put_str(m->class_name, sizeof(m->class_name), v->class_name, sizeof(v->class_name));
	m->confidence = v->confidence;
	m->probs_count = v->nprobs <= STREAM_MAX_CLASSES ? v->nprobs : STREAM_MAX_CLASSES;
	memcpy(m->probs, v->probs, m->probs_count * sizeof(float));
	m->reason = (flowpic_v1_Reason)v->reason;
	m->cells.funcs.encode = encode_pic;
	m->cells.arg = (void *)ev;
}

static bool encode_verdicts(pb_ostream_t *os, const pb_field_t *field, void *const *arg)
{
	const struct verdicts_arg *a = *arg;
	flowpic_v1_Verdict m;
	unsigned i;

	for (i = 0; i < a->n; i++) {
		fill_verdict(&m, &a->v[i]);
		if (!pb_encode_tag_for_field(os, field) ||
		    !pb_encode_submessage(os, flowpic_v1_Verdict_fields, &m))
			return false;
	}
	return true;
}

static bool encode_counters(pb_ostream_t *os, const pb_field_t *field, void *const *arg)
{
	const struct counters_arg *a = *arg;
	flowpic_v1_Counter m;
	unsigned i;

	for (i = 0; i < a->n; i++) {
		memset(&m, 0, sizeof(m));
		if (a->c[i].name)
			put_str(m.name, sizeof(m.name), a->c[i].name, sizeof(m.name));
		m.value = a->c[i].value;
		if (!pb_encode_tag_for_field(os, field) ||
		    !pb_encode_submessage(os, flowpic_v1_Counter_fields, &m))
			return false;
	}
	return true;
}

/* The largest Verdict fill_verdict() can make, without its picture:
 * nanopb cannot size a message with a callback field, so it is measured on
 * one with every field at the largest value its stream_verdict member holds. */
static size_t verdict_bound(void)
{
	flowpic_v1_Verdict m;
	size_t size = 0;

	memset(&m, 0, sizeof(m));
	m.seq = m.flow_id = UINT64_MAX;
	memset(m.interface, 'i', sizeof(m.interface) - 1);
	m.has_flow = m.has_span = true;
	m.flow.src_addr.size = m.flow.dst_addr.size = 16;
	m.flow.src_port = m.flow.dst_port = UINT16_MAX;
	m.flow.protocol = UINT8_MAX;
	m.direction = (flowpic_v1_Direction)UINT8_MAX;
	m.stage = (flowpic_v1_Stage)UINT8_MAX;
	m.reason = (flowpic_v1_Reason)UINT8_MAX;
	m.span.start_unix_ns = m.span.duration_ns = m.span.packets_fwd = UINT64_MAX;
	m.span.packets_rev = m.span.bytes_fwd = m.span.bytes_rev = UINT64_MAX;
	m.span.block_index = UINT64_MAX;
	m.span.blocks = UINT32_MAX;
	memset(m.class_name, 'c', sizeof(m.class_name) - 1);
	m.confidence = 1;
	m.probs_count = STREAM_MAX_CLASSES;
	if (!pb_get_encoded_size(&size, flowpic_v1_Verdict_fields, &m))
		return 1024; /* cannot happen: no callback set */
	return size;
}

size_t encode_batch_bound(unsigned n, unsigned ncounters)
{
	return 64 + flowpic_v1_Agent_size + flowpic_v1_Model_size +
	       (size_t)n * (verdict_bound() + SUBMSG_OVERHEAD) +
	       (size_t)ncounters * (flowpic_v1_Counter_size + SUBMSG_OVERHEAD);
}

size_t encode_pictures_bound(unsigned n, size_t bytes)
{
	/* A verdict's length prefix grows by at most 3 bytes with its picture. */
	return bytes + (size_t)n * (CELLS_OVERHEAD + 3);
}

/* Pictures ------------------------------------------------------------- */

static unsigned planes(const struct stream_cells *c)
{
	return c->dirs == STREAM_PIC_SPLIT ? 2 : 1;
}

int encode_cells_check(const struct stream_cells *c, char *err, size_t errlen)
{
	uint64_t total = (uint64_t)planes(c) * c->rows * c->cols;
	uint32_t i;

	if (!c->rows || !c->cols || c->rows > STREAM_PICTURE_RES_MAX ||
	    c->cols > STREAM_PICTURE_RES_MAX || c->dirs > STREAM_PIC_SPLIT) {
		snprintf(err, errlen, "picture %ux%u, dirs %u: expected 1..%d bins, dirs 0..3",
			 c->rows, c->cols, c->dirs, STREAM_PICTURE_RES_MAX);
		return -EINVAL;
	}
	if (c->n > STREAM_PICTURE_CELLS_MAX) {
		snprintf(err, errlen, "picture of %u pixels: at most %d are sent", c->n,
			 STREAM_PICTURE_CELLS_MAX);
		return -E2BIG;
	}
	if (c->n && (!c->index || !c->count)) {
		snprintf(err, errlen, "picture of %u pixels without indexes or counts", c->n);
		return -EINVAL;
	}
	for (i = 0; i < c->n; i++) {
		if (c->index[i] >= total || (i && c->index[i] <= c->index[i - 1]) || !c->count[i]) {
			snprintf(err, errlen,
				 "picture pixel %u: index %u (previous %u, %" PRIu64
				 " pixels), count %u: expected increasing indexes and counts > 0",
				 i, c->index[i], i ? c->index[i - 1] : 0, total, c->count[i]);
			return -EINVAL;
		}
	}
	return 0;
}

/* index_delta: the first index, then the gaps (>= 1), one packed run. */
static bool encode_deltas(pb_ostream_t *os, const pb_field_t *field, void *const *arg)
{
	const struct stream_cells *c = *arg;
	pb_ostream_t sz = PB_OSTREAM_SIZING;
	uint32_t i;

	if (!c->n)
		return true;
	for (i = 0; i < c->n; i++)
		pb_encode_varint(&sz, i ? c->index[i] - c->index[i - 1] : c->index[0]);
	if (!pb_encode_tag(os, PB_WT_STRING, field->tag) || !pb_encode_varint(os, sz.bytes_written))
		return false;
	for (i = 0; i < c->n; i++)
		if (!pb_encode_varint(os, i ? c->index[i] - c->index[i - 1] : c->index[0]))
			return false;
	return true;
}

static bool encode_counts(pb_ostream_t *os, const pb_field_t *field, void *const *arg)
{
	const struct stream_cells *c = *arg;
	size_t len = 0;
	uint32_t i;

	if (!c->n)
		return true;
	for (i = 0; i < c->n; i++)
		len += c->count[i] < 128 ? 1 : 2;
	if (!pb_encode_tag(os, PB_WT_STRING, field->tag) || !pb_encode_varint(os, len))
		return false;
	for (i = 0; i < c->n; i++)
		if (!pb_encode_varint(os, c->count[i]))
			return false;
	return true;
}

static void fill_cells(flowpic_v1_Cells *m, const struct stream_cells *c)
{
	memset(m, 0, sizeof(*m));
	m->rows = c->rows;
	m->cols = c->cols;
	m->dirs = (flowpic_v1_PictureDirs)c->dirs;
	m->window_ns = c->window_ns;
	m->index_delta.funcs.encode = encode_deltas;
	m->index_delta.arg = (void *)c;
	m->count.funcs.encode = encode_counts;
	m->count.arg = (void *)c;
}

size_t encode_cells_size(const struct stream_cells *c)
{
	flowpic_v1_Cells m;
	size_t size = 0;

	fill_cells(&m, c);
	if (!pb_get_encoded_size(&size, flowpic_v1_Cells_fields, &m))
		return 0;
	return size;
}

long encode_cells(uint8_t *buf, size_t cap, const struct stream_cells *c)
{
	flowpic_v1_Cells m;
	pb_ostream_t os = pb_ostream_from_buffer(buf, cap);

	fill_cells(&m, c);
	if (!pb_encode(&os, flowpic_v1_Cells_fields, &m))
		return -ENOSPC;
	return (long)os.bytes_written;
}

long encode_batch(uint8_t *buf, size_t cap, const struct encode_header *h, uint64_t sequence,
		  const struct encode_verdict *v, unsigned n, const struct stream_counter *c,
		  unsigned ncounters, char *err, size_t errlen)
{
	struct verdicts_arg va = { v, n };
	struct counters_arg ca = { c, ncounters };
	/* The Batch struct holds no verdicts (callbacks): ~1.2 KiB on the stack. */
	flowpic_v1_Batch b = flowpic_v1_Batch_init_zero;
	pb_ostream_t os = pb_ostream_from_buffer(buf, cap);
	unsigned i;

	b.has_agent = true;
	put_str(b.agent.host, sizeof(b.agent.host), h->host, sizeof(h->host));
	put_str(b.agent.agent_id, sizeof(b.agent.agent_id), h->agent_id, sizeof(h->agent_id));
	put_str(b.agent.version, sizeof(b.agent.version), h->version, sizeof(h->version));
	b.agent.run_id = h->run_id;
	b.sequence = sequence;
	b.has_model = true;
	put_str(b.model.name, sizeof(b.model.name), h->model_name, sizeof(h->model_name));
	put_str(b.model.version, sizeof(b.model.version), h->model_version,
		sizeof(h->model_version));
	b.model.classes_count = h->nclasses;
	for (i = 0; i < h->nclasses && i < STREAM_MAX_CLASSES; i++)
		put_str(b.model.classes[i], sizeof(b.model.classes[i]), h->classes[i],
			sizeof(h->classes[i]));
	b.verdicts.funcs.encode = encode_verdicts;
	b.verdicts.arg = &va;
	b.counters.funcs.encode = encode_counters;
	b.counters.arg = &ca;
	if (!pb_encode(&os, flowpic_v1_Batch_fields, &b)) {
		snprintf(err, errlen, "encoding batch %llu (%u verdicts) into %zu bytes: %s",
			 (unsigned long long)sequence, n, cap, PB_GET_ERROR(&os));
		/* nanopb says "stream full" when the buffer is too small. */
		return strstr(PB_GET_ERROR(&os), "full") ? -ENOSPC : -EINVAL;
	}
	return (long)os.bytes_written;
}

int encode_decode_ack(const uint8_t *buf, size_t len, struct encode_ack *ack, char *err,
		      size_t errlen)
{
	flowpic_v1_Ack m = flowpic_v1_Ack_init_zero;
	pb_istream_t is = pb_istream_from_buffer(buf, len);

	if (!pb_decode(&is, flowpic_v1_Ack_fields, &m)) {
		snprintf(err, errlen, "Ack of %zu bytes does not decode: %s", len,
			 PB_GET_ERROR(&is));
		return -EBADMSG;
	}
	ack->sequence = m.sequence;
	ack->stored = m.stored;
	ack->duplicates = m.duplicates;
	return 0;
}

long encode_ack(uint8_t *buf, size_t cap, const struct encode_ack *ack)
{
	flowpic_v1_Ack m = flowpic_v1_Ack_init_zero;
	pb_ostream_t os = pb_ostream_from_buffer(buf, cap);

	m.sequence = ack->sequence;
	m.stored = ack->stored;
	m.duplicates = ack->duplicates;
	if (!pb_encode(&os, flowpic_v1_Ack_fields, &m))
		return -ENOSPC;
	return (long)os.bytes_written;
}
