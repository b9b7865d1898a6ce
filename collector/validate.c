// SPDX-License-Identifier: MIT
/*
 * validate.c - range, length and finiteness checks of a Batch (validate.h).
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "validate.h"

/* A string field longer than VALIDATE_STR_MAX: its name, else NULL. */
static const char *long_str(const char *name, const char *v)
{
	return v && strnlen(v, VALIDATE_STR_MAX + 1) > VALIDATE_STR_MAX ? name : NULL;
}

/* "batch B, verdict seq S: cells: " and the rest: VALIDATE_BAD_CELLS. */
__attribute__((format(printf, 5, 6))) static enum validate_fault
cells_fail(const Flowpic__V1__Batch *b, const Flowpic__V1__Verdict *v, char *err, size_t errlen,
	   const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(err, errlen,
		     "batch %" PRIu64 ", verdict seq %" PRIu64 ": cells: ", b->sequence, v->seq);
	if (n > 0 && (size_t)n < errlen) {
		va_start(ap, fmt);
		vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return VALIDATE_BAD_CELLS;
}

/*
 * A verdict's picture (proto/flowpic.proto, Cells): only on a block verdict
 * (EARLY, BLOCK); rows and cols 1 .. VALIDATE_PICTURE_RES_MAX; known dirs;
 * a count (1 .. 255) per index; indexes strictly increasing (each delta
 * after the first at least 1) and inside the picture's planes.
 */
static enum validate_fault cells_check(const Flowpic__V1__Batch *b, const Flowpic__V1__Verdict *v,
				       char *err, size_t errlen)
{
	const Flowpic__V1__Cells *c = v->cells;
	uint64_t total, at = 0;
	size_t i;

	if (v->stage != FLOWPIC__V1__STAGE__STAGE_EARLY &&
	    v->stage != FLOWPIC__V1__STAGE__STAGE_BLOCK)
		return cells_fail(
			b, v, err, errlen,
			"on a verdict of stage %d (only EARLY and BLOCK verdicts have a picture)",
			(int)v->stage);
	if (c->rows < 1 || c->rows > VALIDATE_PICTURE_RES_MAX || c->cols < 1 ||
	    c->cols > VALIDATE_PICTURE_RES_MAX)
		return cells_fail(b, v, err, errlen, "rows %u, cols %u (each 1 to %d)", c->rows,
				  c->cols, VALIDATE_PICTURE_RES_MAX);
	if ((unsigned)c->dirs > FLOWPIC__V1__PICTURE_DIRS__PICTURE_DIRS_SPLIT)
		return cells_fail(b, v, err, errlen, "dirs %d (0 both, 1 fwd, 2 rev, 3 split)",
				  (int)c->dirs);
	if (c->n_index_delta != c->n_count)
		return cells_fail(b, v, err, errlen,
				  "%zu index_delta but %zu count (one count per pixel)",
				  c->n_index_delta, c->n_count);
	total = (uint64_t)(c->dirs == FLOWPIC__V1__PICTURE_DIRS__PICTURE_DIRS_SPLIT ? 2 : 1) *
		c->rows * c->cols;
	for (i = 0; i < c->n_index_delta; i++) {
		if (i && c->index_delta[i] == 0)
			return cells_fail(b, v, err, errlen,
					  "index_delta[%zu] is 0 (indexes must strictly increase)",
					  i);
		at += c->index_delta[i];
		if (at >= total)
			return cells_fail(b, v, err, errlen,
					  "pixel %zu at index %" PRIu64 ", outside the %" PRIu64
					  " pixels of %u x %u%s",
					  i, at, total, c->rows, c->cols,
					  total > (uint64_t)c->rows * c->cols ? " x 2" : "");
		if (c->count[i] < 1 || c->count[i] > 255)
			return cells_fail(b, v, err, errlen, "count[%zu] is %u (1 to 255)", i,
					  c->count[i]);
	}
	return VALIDATE_OK;
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
	if (v->cells)
		return cells_check(b, v, err, errlen);
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
