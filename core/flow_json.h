/* SPDX-License-Identifier: MIT */
/*
 * flow_json.h - the one JSON-lines writer for flows and verdicts, shared by
 * `flowpic flows --json`, `flowpic classify --json` and the agent, so they
 * print the same fields with the same names (docs/cli.md lists them).
 *
 * A flow line is {"file":...,"flow_id":...,...,"end":"idle"|"input","type":"flow"}; a verdict
 * line is the same flow fields, then "end", then the verdict's fields
 * ("class", "top", "confidence", "reason", "early", "blocks_voting",
 * "blocks_sparse", "votes_other", "probs", "votes"; the flow's "blocks" is
 * already among the flow fields).
 * Numbers are plain JSON numbers; probabilities have 4 decimals.
 */
#ifndef FLOWPIC_FLOW_JSON_H
#define FLOWPIC_FLOW_JSON_H

#include <stdio.h>

#include "classify.h"
#include "flow.h"

/* A JSON string: quotes, backslashes and control bytes escaped. */
void json_write_string(FILE *out, const char *s);

/* "tcp", "udp" or "other". */
const char *flow_proto_name(uint8_t proto);

/* "{" and the flow's fields, no closing brace (file NULL: no "file" field). */
void flow_json_fields(FILE *out, const struct flow *f, const char *file);

/* The whole `flowpic flows --json` line, with its newline. */
void flow_json_line(FILE *out, const struct flow *f, enum flow_end_reason why, const char *file);

/* The verdict's fields, each preceded by a comma (after flow_json_fields). */
void verdict_json_fields(FILE *out, const struct classifier *c, const struct flow_verdict *v);

/* The whole `flowpic classify --json` line of a flow, with its newline. */
void verdict_json_line(FILE *out, const struct classifier *c, const struct flow *f,
		       enum flow_end_reason why, const char *file, const struct flow_verdict *v);

/* One block verdict: {"block":{"flow":ID,"index":K,...,"class":...,"top":...,
 * "reason":...,"energy":...}} and a newline. */
void block_verdict_json_line(FILE *out, const struct classifier *c, const struct block_verdict *v,
			     const char *file);

#endif
