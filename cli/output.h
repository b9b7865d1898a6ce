/* SPDX-License-Identifier: MIT */
/*
 * output.h - how flows and the closing summary are printed: a table for
 * people, or JSON lines with plain field names for programs.  The JSON
 * field names are documented in docs/cli.md and kept stable; the flow and
 * verdict fields are written by core/flow_json.h.
 */
#ifndef FLOWPIC_CLI_OUTPUT_H
#define FLOWPIC_CLI_OUTPUT_H

#include <stdbool.h>
#include <stdio.h>

#include "core/flow.h"
#include "opts.h"

/* Time as "2018-01-17T10:22:13.123456Z" (UTC, microseconds). */
const char *fmt_time(uint64_t ns, char *buf, size_t len);

void flow_print_table_header(FILE *out);
void flow_print_table_row(FILE *out, const struct flow *f);
/* The `flows --json` line: core/flow_json.h writes it (shared with classify and the agent). */
void flow_print_json(FILE *out, const struct flow *f, enum flow_end_reason why, const char *file);

/* The accounting of one file: every record in a flow or skipped with a reason. */
void summary_print_json(FILE *out, const struct file_run *run);
void summary_print_text(FILE *out, const struct file_run *run);

#endif
