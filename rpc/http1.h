/* SPDX-License-Identifier: MIT */
/*
 * http1.h - the head of an HTTP/1.x request (request line and header
 * fields, RFC 9112), parsed in place: the /metrics listener and the
 * collector's web dashboard read requests with it.
 *
 * Lenient where clients differ harmlessly (a bare LF ends a line, as the
 * /metrics listener always accepted), strict where a sloppy parse is a
 * hazard: no NUL, no obsolete line folding, no space before a field's
 * colon, a version of exactly "HTTP/1.0" or "HTTP/1.1".
 */
#ifndef FLOWPIC_RPC_HTTP1_H
#define FLOWPIC_RPC_HTTP1_H

#include <stdbool.h>
#include <stddef.h>

#define HTTP1_MAX_HEADERS 48

struct http1_field {
	const char *name, *value; /* into the buffer parsed; not NUL-terminated */
	size_t name_len, value_len;
};

struct http1_request {
	const char *method, *target;
	size_t method_len, target_len;
	int minor; /* HTTP/1.<minor>: 0 or 1 */
	struct http1_field f[HTTP1_MAX_HEADERS];
	size_t nf;
	size_t head_len; /* the request line and fields, the empty line included */
};

/* Parse the head at the start of buf (len bytes).  0: r describes it (its
 * pointers into buf); -EAGAIN: not whole yet; -EINVAL: not an HTTP/1.x
 * request; -E2BIG: more than HTTP1_MAX_HEADERS fields. */
int http1_parse(const char *buf, size_t len, struct http1_request *r);

/* The value of the first field of this name (case-insensitive), or NULL. */
const char *http1_field(const struct http1_request *r, const char *name, size_t *len);

/* Is the method (and, with path, the target's path before any '?') this? */
bool http1_is(const struct http1_request *r, const char *method, const char *path);

#endif
