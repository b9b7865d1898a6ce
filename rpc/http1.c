// SPDX-License-Identifier: MIT
/* http1.c - HTTP/1.x request heads; see http1.h. */
#include "http1.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

/* RFC 9110 5.6.2: the characters of a token (method, field name). */
static bool tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* The line at p (end: one past the buffer): its length without the line
 * ending, *next after it; -1 when no line end is there yet. */
static long line_at(const char *p, const char *end, const char **next)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	size_t n;

	if (!nl)
		return -1;
	n = (size_t)(nl - p);
	if (n && p[n - 1] == '\r')
		n--;
	*next = nl + 1;
	return (long)n;
}

static int request_line(const char *p, size_t n, struct http1_request *r)
{
	const char *sp1 = memchr(p, ' ', n), *sp2;
	size_t i;

	if (!sp1 || sp1 == p)
		return -EINVAL;
	sp2 = memchr(sp1 + 1, ' ', n - (size_t)(sp1 + 1 - p));
	if (!sp2 || sp2 == sp1 + 1 || (size_t)(p + n - (sp2 + 1)) != 8 ||
	    (memcmp(sp2 + 1, "HTTP/1.1", 8) && memcmp(sp2 + 1, "HTTP/1.0", 8)))
		return -EINVAL;
	for (i = 0; p + i < sp1; i++)
		if (!tchar((unsigned char)p[i]))
			return -EINVAL;
	/* The target: visible ASCII only (no controls, no spaces, no 8-bit). */
	for (i = 1; sp1 + i < sp2; i++)
		if ((unsigned char)sp1[i] <= 0x20 || (unsigned char)sp1[i] >= 0x7f)
			return -EINVAL;
	r->method = p;
	r->method_len = (size_t)(sp1 - p);
	r->target = sp1 + 1;
	r->target_len = (size_t)(sp2 - sp1 - 1);
	r->minor = sp2[8] - '0';
	return 0;
}

static int field_line(const char *p, size_t n, struct http1_request *r)
{
	const char *colon = memchr(p, ':', n), *v, *e = p + n;
	size_t i;

	if (!colon || colon == p)
		return -EINVAL;
	for (i = 0; p + i < colon; i++)
		if (!tchar((unsigned char)p[i]))
			return -EINVAL; /* also a space before the colon, or folding */
	for (v = colon + 1; v < e && (*v == ' ' || *v == '\t'); v++)
		;
	while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	for (i = 0; v + i < e; i++)
		if (((unsigned char)v[i] < 0x20 && v[i] != '\t') || v[i] == 0x7f)
			return -EINVAL;
	if (r->nf == HTTP1_MAX_HEADERS)
		return -E2BIG;
	r->f[r->nf++] = (struct http1_field){ p, v, (size_t)(colon - p), (size_t)(e - v) };
	return 0;
}

int http1_parse(const char *buf, size_t len, struct http1_request *r)
{
	const char *p = buf, *end = buf + len, *next;
	bool first = true;
	long n;
	int rc;

	memset(r, 0, sizeof(*r));
	for (;;) {
		n = line_at(p, end, &next);
		if (n < 0)
			return memchr(p, '\0', (size_t)(end - p)) ? -EINVAL : -EAGAIN;
		/* The head only: a body after it may hold any byte. */
		if (memchr(p, '\0', (size_t)(next - p)))
			return -EINVAL;
		if (first) {
			/* RFC 9112 2.2: empty lines before the request line are skipped. */
			if (n == 0 && p - buf < 8) {
				p = next;
				continue;
			}
			rc = request_line(p, (size_t)n, r);
			first = false;
		} else if (n == 0) {
			r->head_len = (size_t)(next - buf);
			return 0;
		} else {
			rc = field_line(p, (size_t)n, r);
		}
		if (rc < 0)
			return rc;
		p = next;
	}
}

const char *http1_field(const struct http1_request *r, const char *name, size_t *len)
{
	size_t i, n = strlen(name);

	for (i = 0; i < r->nf; i++)
		if (r->f[i].name_len == n && !strncasecmp(r->f[i].name, name, n)) {
			if (len)
				*len = r->f[i].value_len;
			return r->f[i].value;
		}
	return NULL;
}

bool http1_is(const struct http1_request *r, const char *method, const char *path)
{
	size_t plen;

	if (r->method_len != strlen(method) || memcmp(r->method, method, r->method_len))
		return false;
	if (!path)
		return true;
	plen = strcspn(r->target, "? ");
	if (plen > r->target_len)
		plen = r->target_len;
	return plen == strlen(path) && !memcmp(r->target, path, plen);
}
