/* SPDX-License-Identifier: MIT */
/*
 * json.h - JSON string escaping into a text buffer (core/sbuf.h), and JSON
 * checks, for query output, the dashboard's answers, and what PostgreSQL
 * takes as JSON (a transaction's batches and counters; its verdicts go by
 * COPY, collector/store_pg.c).
 */
#ifndef FLOWPIC_COLLECTOR_JSON_H
#define FLOWPIC_COLLECTOR_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "core/sbuf.h"

/* A JSON string, quotes included; invalid UTF-8 bytes become U+FFFD. */
void sbuf_json_str(struct sbuf *b, const char *s, size_t n);

/* Is s exactly one JSON number ("-1.5e3"; not "inf", "NaN", "Infinity")? */
bool json_is_number(const char *s);
/* Is s exactly one JSON value (RFC 8259; nesting at most 32 deep)? */
bool json_is_valid(const char *s);

#endif
