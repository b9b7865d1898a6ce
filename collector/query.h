/* SPDX-License-Identifier: MIT */
/*
 * query.h - `flowpic-collector query`: stored verdicts by host, agent,
 * class, time range and flow, as JSON lines or a short table.
 */
#ifndef FLOWPIC_COLLECTOR_QUERY_H
#define FLOWPIC_COLLECTOR_QUERY_H

#include <stdint.h>

#include "core/sbuf.h"

int collector_query(int argc, char **argv);

/* "1764240000.5" (Unix seconds), "2026-11-27T10:00:00Z" (UTC), "-30m" /
 * "-2h" / "-1d" / "-10s" (before now) -> ns since the epoch.  0, -EINVAL
 * (not a time), or -ERANGE (beyond 2262, or more than 100 years before now). */
int query_parse_time(const char *s, uint64_t now_ns, uint64_t *out);

/* One stored verdict (vals: the store_cols values as text, NULL for SQL
 * NULL) as the JSON object `query` prints, without a newline: strings
 * escaped, numbers checked, "type":"verdict" last.  extra (NULL: none) is
 * inserted before "type": ",\"name\":value" members of the caller's (the
 * dashboard's block pictures).  Shared by query and the web API, so both
 * print a verdict the same way. */
void query_json_row(struct sbuf *b, const char *const *vals, const char *extra);

#endif
