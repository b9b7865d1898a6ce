// SPDX-License-Identifier: MIT
/*
 * http.c - the dashboard's answers (status, the security headers on every
 * one, JSON errors), request parameters, and the pages and static files.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collector/json.h"
#include "web_int.h"

const char *http_reason(int code)
{
	switch (code) {
	case 200:
		return "OK";
	case 303:
		return "See Other";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 411:
		return "Length Required";
	case 413:
		return "Content Too Large";
	case 431:
		return "Request Header Fields Too Large";
	case 503:
		return "Service Unavailable";
	default:
		return "Internal Server Error";
	}
}

int http_head(struct web *w, struct client *c, int code, const char *type, size_t len,
	      const char *extra)
{
	struct sbuf f = { 0 };
	int rc = 0;

	WEB_BUMP(w, web_requests);
	sbuf_printf(&f, "Content-Type: %s\r\n", type);
	if (len != SIZE_MAX)
		sbuf_printf(&f, "Content-Length: %zu\r\n", len);
	sbuf_printf(&f,
		    "Content-Security-Policy: " WEB_CSP "\r\n"
		    "X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n"
		    "X-Frame-Options: DENY\r\nCache-Control: %s\r\n%s%s",
		    c->api || code >= 300 ? "no-store" : "no-cache", c->set_cookie,
		    extra ? extra : "");
	c->set_cookie[0] = '\0';
	if (f.oom)
		rc = -ENOMEM;
	else if (c->h2)
		rc = h2_respond(w, c, code, f.p, f.len);
	else
		sbuf_printf(&c->out, "HTTP/1.1 %d %s\r\n%sConnection: %s\r\n\r\n", code,
			    http_reason(code), f.p, c->keep_alive ? "keep-alive" : "close");
	sbuf_free(&f);
	return rc;
}

void http_answer(struct web *w, struct client *c, int code, const char *type, const char *body,
		 size_t len, const char *extra)
{
	if (http_head(w, c, code, type, len, extra) < 0) {
		client_close(w, c);
		return;
	}
	if (body && len)
		sbuf_add(&c->out, body, len);
	c->state = CL_WRITE;
	c->deadline_ms = web_now_ms() + WEB_TIMEOUT_MS;
	client_send(w, c);
}

void http_json(struct web *w, struct client *c, struct sbuf *body)
{
	if (body->oom) {
		http_error(w, c, 500, "out of memory");
		return;
	}
	http_answer(w, c, 200, "application/json", body->p, body->len, NULL);
}

void http_error(struct web *w, struct client *c, int code, const char *msg)
{
	struct sbuf b = { 0 };

	switch (code) {
	case 400:
		WEB_BUMP(w, web_bad_request);
		break;
	case 404:
		WEB_BUMP(w, web_not_found);
		break;
	case 405:
		WEB_BUMP(w, web_method);
		break;
	case 413:
	case 431:
		WEB_BUMP(w, web_too_large);
		break;
	case 500:
		WEB_BUMP(w, web_errors);
		break;
	default:
		break; /* 401, 403, 503: counted where refused */
	}
	/* After a refused body, what follows on the connection is not a request. */
	if (code == 413 || code == 431 || code == 400)
		c->keep_alive = false;
	sbuf_puts(&b, "{\"error\":");
	sbuf_json_str(&b, msg, strlen(msg));
	sbuf_puts(&b, "}");
	http_answer(w, c, code, "application/json", b.oom ? "{}" : b.p, b.oom ? 2 : b.len,
		    code == 405 ? "Allow: GET, POST\r\n" : NULL);
	sbuf_free(&b);
}

void http_redirect(struct web *w, struct client *c, const char *location)
{
	char extra[300];

	snprintf(extra, sizeof(extra), "Location: %s\r\n", location);
	http_answer(w, c, 303, "text/plain; charset=utf-8", "", 0, extra);
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* key=value pairs separated by '&' in s[0..len): the value of key,
 * decoded ('+' is a space, %XX a byte). */
static int find_param(const char *s, size_t len, const char *key, char *out, size_t outlen)
{
	size_t klen = strlen(key), i = 0;

	while (i < len) {
		size_t end = i, o = 0, j;

		while (end < len && s[end] != '&')
			end++;
		if (end - i > klen && !memcmp(s + i, key, klen) && s[i + klen] == '=') {
			for (j = i + klen + 1; j < end; j++) {
				int ch = (unsigned char)s[j];

				if (ch == '+') {
					ch = ' ';
				} else if (ch == '%') {
					int hi, lo;

					if (j + 2 >= end)
						return -EINVAL;
					hi = hexval(s[j + 1]);
					lo = hexval(s[j + 2]);
					if (hi < 0 || lo < 0)
						return -EINVAL;
					ch = hi * 16 + lo;
					j += 2;
				}
				if (ch == 0 || o + 1 >= outlen)
					return -EINVAL;
				out[o++] = (char)ch;
			}
			out[o] = '\0';
			return (int)o;
		}
		i = end + 1;
	}
	return -ENOENT;
}

int http_param(const struct client *c, const char *key, char *out, size_t outlen)
{
	const char *q = memchr(c->req.target, '?', c->req.target_len);

	if (!q)
		return -ENOENT;
	q++;
	return find_param(q, c->req.target_len - (size_t)(q - c->req.target), key, out, outlen);
}

int http_form(const char *body, size_t len, const char *key, char *out, size_t outlen)
{
	return find_param(body, len, key, out, outlen);
}

static const char *content_type(const char *name)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
		{ ".html", "text/html; charset=utf-8" },
		{ ".js", "text/javascript; charset=utf-8" },
		{ ".css", "text/css; charset=utf-8" },
		{ ".json", "application/json" },
		{ ".svg", "image/svg+xml" },
		{ ".png", "image/png" },
		{ ".ico", "image/x-icon" },
		{ ".woff2", "font/woff2" },
		{ ".txt", "text/plain; charset=utf-8" },
	};
	const char *dot = strrchr(name, '.');
	size_t i;

	for (i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcmp(dot, types[i].ext))
			return types[i].type;
	return "application/octet-stream";
}

/* A regular file (dirfd -1: path absolute), read whole: 200, or 404. */
static void send_file(struct web *w, struct client *c, int dirfd, const char *path,
		      const char *type)
{
	struct stat sb;
	char *buf = NULL;
	size_t got = 0;
	int fd = dirfd >= 0 ? openat(dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) :
			      open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &sb) || !S_ISREG(sb.st_mode) || sb.st_size > WEB_STATIC_MAX) {
		if (fd >= 0)
			close(fd);
		http_error(w, c, 404, "no such file");
		return;
	}
	buf = malloc((size_t)sb.st_size + 1);
	while (buf && got < (size_t)sb.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)sb.st_size - got);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (!buf || got != (size_t)sb.st_size) {
		free(buf);
		http_error(w, c, 500, "could not read the file");
		return;
	}
	http_answer(w, c, 200, type, buf, got, NULL);
	free(buf);
}

/* A name in the static directory: [A-Za-z0-9._-], not starting with '.'. */
static bool static_name_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > 128 || s[0] == '.')
		return false;
	for (i = 0; i < n; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
			return false;
	}
	return true;
}

void http_static(struct web *w, struct client *c)
{
	static const struct {
		const char *path, *file;
	} pages[] = {
		{ "/", "overview.html" },	  { "/flows", "flows.html" },
		{ "/flow", "flow.html" },	  { "/agents", "agents.html" },
		{ "/classify", "classify.html" }, { "/login", "login.html" },
	};
	size_t plen = strcspn(c->req.target, "? "), i;
	char name[160];

	if (plen > c->req.target_len)
		plen = c->req.target_len;
	for (i = 0; i < sizeof(pages) / sizeof(pages[0]); i++)
		if (plen == strlen(pages[i].path) && !memcmp(c->req.target, pages[i].path, plen)) {
			send_file(w, c, w->rootfd, pages[i].file, content_type(pages[i].file));
			return;
		}
	if (plen == strlen("/static/vendor/chart.js") &&
	    !memcmp(c->req.target, "/static/vendor/chart.js", plen)) {
		send_file(w, c, -1, w->cfg.chart_js ? w->cfg.chart_js : WEB_CHART_JS,
			  "text/javascript; charset=utf-8");
		return;
	}
	if (plen > 8 && !memcmp(c->req.target, "/static/", 8) &&
	    static_name_ok(c->req.target + 8, plen - 8)) {
		snprintf(name, sizeof(name), "%.*s", (int)(plen - 8), c->req.target + 8);
		send_file(w, c, w->rootfd, name, content_type(name));
		return;
	}
	http_error(w, c, 404, "no such page");
}
