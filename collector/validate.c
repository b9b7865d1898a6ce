// SPDX-License-Identifier: MIT
/*
 * validate.c - range, length and finiteness checks of a Batch (validate.h).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "validate.h"

/* A string field longer than VALIDATE_STR_MAX: its name, else NULL. */
static const char *long_str(const char *name, const char *v)
{
	return v && strnlen(v, VALIDATE_STR_MAX + 1) > VALIDATE_STR_MAX ? name : NULL;
}

static enum validate_fault verdict_check(const Flowpic__V1__Batch *b, const Flowpic__V1__Verdict *v,
					 char *err, size_t errlen)
{
	const Flowpic__V1__FlowKey *k = v->flow;
	const char *what;
	size_t i;

	what = long_str("interface", v->interface);
	if (!what)
		what = long_str("class_name", v->class_name);
	if (what) {
		snprintf(err, errlen,
			 "batch %" PRIu64 ", verdict seq %" PRIu64 ": %s over %d bytes",
			 b->sequence, v->seq, what, VALIDATE_STR_MAX);
		return VALIDATE_BAD_BATCH;
	}
	if (v->n_probs > VALIDATE_PROBS_MAX) {
		snprintf(err, errlen,
			 "batch %" PRIu64 ", verdict seq %" PRIu64
			 ": %zu probabilities (at most %d)",
			 b->sequence, v->seq, v->n_probs, VALIDATE_PROBS_MAX);
		return VALIDATE_BAD_BATCH;
	}
	if (k && (k->src_port > 65535 || k->dst_port > 65535 || k->protocol > 255)) {
		snprintf(err, errlen,
			 "batch %" PRIu64 ", verdict seq %" PRIu64
			 ": src_port %u, dst_port %u, protocol %u (ports 0..65535, protocol 0..255)",
			 b->sequence, v->seq, k->src_port, k->dst_port, k->protocol);
		return VALIDATE_OUT_OF_RANGE;
	}
	if (!isfinite(v->confidence)) {
		snprintf(err, errlen,
			 "batch %" PRIu64 ", verdict seq %" PRIu64
			 ": confidence is %s (not finite)",
			 b->sequence, v->seq, isnan(v->confidence) ? "NaN" : "infinite");
		return VALIDATE_NON_FINITE;
	}
	for (i = 0; i < v->n_probs; i++) {
		if (!isfinite(v->probs[i])) {
			snprintf(err, errlen,
				 "batch %" PRIu64 ", verdict seq %" PRIu64
				 ": probability %zu is %s (not finite)",
				 b->sequence, v->seq, i, isnan(v->probs[i]) ? "NaN" : "infinite");
			return VALIDATE_NON_FINITE;
		}
	}
	return VALIDATE_OK;
}

enum validate_fault batch_validate(const Flowpic__V1__Batch *b, char *err, size_t errlen)
{
	const Flowpic__V1__Agent *a = b->agent;
	const char *what = NULL;
	enum validate_fault f;
	size_t i;

	if (!a || !a->agent_id || !*a->agent_id) {
		snprintf(err, errlen,
			 "batch sequence %" PRIu64
			 ": no agent.agent_id (a verdict's identity needs it)",
			 b->sequence);
		return VALIDATE_BAD_BATCH;
	}
	what = long_str("agent.agent_id", a->agent_id);
	if (!what)
		what = long_str("agent.host", a->host);
	if (!what)
		what = long_str("agent.version", a->version);
	if (!what && b->model) {
		what = long_str("model.name", b->model->name);
		if (!what)
			what = long_str("model.version", b->model->version);
		for (i = 0; !what && i < b->model->n_classes; i++)
			what = long_str("model.classes", b->model->classes[i]);
	}
	for (i = 0; !what && i < b->n_counters; i++)
		what = long_str("counters.name", b->counters[i]->name);
	if (what) {
		snprintf(err, errlen, "batch %" PRIu64 ": %s over %d bytes", b->sequence, what,
			 VALIDATE_STR_MAX);
		return VALIDATE_BAD_BATCH;
	}
	if (b->model && b->model->n_classes > VALIDATE_PROBS_MAX) {
		snprintf(err, errlen, "batch %" PRIu64 ": %zu model classes (at most %d)",
			 b->sequence, b->model->n_classes, VALIDATE_PROBS_MAX);
		return VALIDATE_BAD_BATCH;
	}
	for (i = 0; i < b->n_verdicts; i++) {
		if (b->verdicts[i]->seq == 0)
			continue; /* refused on its own (Ack.rejected) */
		f = verdict_check(b, b->verdicts[i], err, errlen);
		if (f != VALIDATE_OK)
			return f;
	}
	return VALIDATE_OK;
}
