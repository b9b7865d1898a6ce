// SPDX-License-Identifier: MIT
/* verdict_of.c - a classifier's verdict as a stream verdict; see verdict_of.h. */
#include "verdict_of.h"

#include <stdio.h>
#include <string.h>

/* The classifier's reason as the stream carries it (flowpic.v1.Reason). */
static uint8_t stream_reason(enum classify_reason r)
{
	switch (r) {
	case CLASSIFY_OK:
		return STREAM_REASON_OK;
	case CLASSIFY_OTHER:
		return STREAM_REASON_OTHER;
	case CLASSIFY_SPARSE:
		return STREAM_REASON_SPARSE;
	case CLASSIFY_DISAGREE:
		return STREAM_REASON_DISAGREE;
	case CLASSIFY_LOW_CONFIDENCE:
		return STREAM_REASON_LOW_CONFIDENCE;
	case CLASSIFY_UNTRACKED:
		return STREAM_REASON_UNTRACKED;
	default:
		return STREAM_REASON_UNSPECIFIED;
	}
}

/* The parts that come from the flow's key. */
static void key(struct stream_verdict *sv, const struct flow *f)
{
	memset(sv, 0, sizeof(*sv));
	sv->flow_id = f->id;
	sv->protocol = f->key.proto;
	sv->src_port = f->key.port_a;
	sv->dst_port = f->key.port_b;
	memcpy(sv->src_addr, f->key.a, 16);
	memcpy(sv->dst_addr, f->key.b, 16);
}

/* The parts that come from the verdict (block or flow). */
static void judged(struct stream_verdict *sv, const struct classifier *c, uint32_t cls,
		   enum classify_reason reason, float confidence, const float *prob)
{
	const struct model *m = classifier_model(c);
	unsigned i;

	sv->reason = stream_reason(reason);
	sv->confidence = confidence;
	sv->nprobs = (uint8_t)m->n_classes;
	for (i = 0; i < m->n_classes; i++)
		sv->probs[i] = prob[i];
	snprintf(sv->class_name, sizeof(sv->class_name), "%s", classifier_class_name(c, cls));
}

void stream_verdict_of_block(struct stream_verdict *sv, const struct classifier *c,
			     const struct flow *f, const struct block *b,
			     const struct block_verdict *v, uint64_t window_ns)
{
	key(sv, f);
	sv->stage = v->early ? STREAM_STAGE_EARLY : STREAM_STAGE_BLOCK;
	sv->start_unix_ns = b->start_ns;
	/* A partial block spans to the flow's last packet. */
	sv->duration_ns = b->complete		   ? window_ns :
			  f->last_ns > b->start_ns ? f->last_ns - b->start_ns :
						     0;
	sv->packets_fwd = b->samples[0];
	sv->packets_rev = b->samples[1];
	sv->bytes_fwd = b->bytes[0];
	sv->bytes_rev = b->bytes[1];
	sv->block_index = v->index;
	judged(sv, c, v->cls, v->reason, v->confidence, v->prob);
}

void stream_verdict_of_flow(struct stream_verdict *sv, const struct classifier *c,
			    const struct flow *f, const struct flow_verdict *v)
{
	key(sv, f);
	sv->stage = STREAM_STAGE_FINAL;
	sv->start_unix_ns = f->first_ns;
	sv->duration_ns = f->last_ns - f->first_ns;
	sv->packets_fwd = f->packets[0];
	sv->packets_rev = f->packets[1];
	sv->bytes_fwd = f->payload[0];
	sv->bytes_rev = f->payload[1];
	sv->blocks = v->blocks;
	judged(sv, c, v->cls, v->reason, v->confidence, v->prob);
}
