/* SPDX-License-Identifier: MIT */
/*
 * summary_json.h - the two "type":"summary" JSON lines of `flowpic classify
 * --json`: a file's accounting (every record in a flow or skipped with its
 * reason, the flow table's counts; `flows`, `export` and `render` print it
 * too) and the verdicts per class at the end.  The CLI and the collector's
 * upload (docs/dashboard.md) print them with these writers, so both give
 * the same bytes; the fields are in docs/json.md.
 */
#ifndef FLOWPIC_SUMMARY_JSON_H
#define FLOWPIC_SUMMARY_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "classify.h"
#include "flow.h"
#include "pipeline.h"
#include "source.h"

/* One file read. */
struct file_summary {
	const char *path; /* as named ("(stdin)" for "-") */
	enum source_kind kind;
	int linktype;
	const struct pipeline_counts *counts;
	const struct flow_stats *stats; /* of the flow table, after the flush */
	bool partial;			/* reading stopped early: error says why */
	const char *error;
};

/* {"file":...,"format":...,"records":...,...,"type":"summary"} and a newline. */
void file_summary_json_line(FILE *out, const struct file_summary *s);

/* Flow verdicts of one class: t[cls] per class of the model, t[n_classes]
 * the unknown ones (CLASSIFY_MAX_CLASSES + 1 entries). */
struct class_total {
	uint64_t flows, early, packets;
};

/* Count flow f's verdict v in t. */
void class_totals_add(struct class_total *t, const struct classifier *c, const struct flow *f,
		      const struct flow_verdict *v);

/* {"model":...,"flows":N,"shown":N,"blocks":...,"per_class":{...},
 * "unknown_reasons":{...},"type":"summary"} and a newline: flows verdicts
 * given, shown of them printed, t their totals, the rest from c's stats. */
void classes_summary_json_line(FILE *out, const struct classifier *c, uint64_t flows,
			       uint64_t shown, const struct class_total *t);

#endif
