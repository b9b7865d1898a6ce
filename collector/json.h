/* SPDX-License-Identifier: MIT */
/*
 * json.h - a growable text buffer and JSON string escaping, for query output
 * and the rows handed to PostgreSQL as one JSON document per batch.
 */
#ifndef FLOWPIC_COLLECTOR_JSON_H
#define FLOWPIC_COLLECTOR_JSON_H

#include <stdbool.h>
#include <stddef.h>

struct sbuf {
	char *p;
	size_t len;
	size_t cap;
	bool oom; /* an append failed: the contents are incomplete */
};

void sbuf_reset(struct sbuf *b);
void sbuf_free(struct sbuf *b);
void sbuf_add(struct sbuf *b, const char *s, size_t n);
void sbuf_puts(struct sbuf *b, const char *s);
void sbuf_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string, quotes included; invalid UTF-8 bytes become U+FFFD. */
void sbuf_json_str(struct sbuf *b, const char *s, size_t n);

/* Is s exactly one JSON number ("-1.5e3"; not "inf", "NaN", "Infinity")? */
bool json_is_number(const char *s);
/* Is s exactly one JSON value (RFC 8259; nesting at most 32 deep)? */
bool json_is_valid(const char *s);

#endif
