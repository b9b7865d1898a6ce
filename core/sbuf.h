/* SPDX-License-Identifier: MIT */
/*
 * sbuf.h - a growable text buffer, always NUL-terminated: the collector's
 * query output and PostgreSQL documents, the Prometheus exposition of both
 * programs.  A failed allocation sets oom and keeps what was written, so a
 * writer checks once at the end.  A zeroed struct is an empty buffer.
 */
#ifndef FLOWPIC_CORE_SBUF_H
#define FLOWPIC_CORE_SBUF_H

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

#endif
