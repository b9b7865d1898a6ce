// SPDX-License-Identifier: MIT
/*
 * h2.c - HTTP/2 on the dashboard's listener (RFC 9113, with nghttp2): under
 * TLS by ALPN ("h2" before "http/1.1"), in plain text for a client that
 * opens with the connection preface (prior knowledge; the Upgrade: h2c
 * round trip is not offered, RFC 9113 deprecates it).
 *
 * The connection keeps its slot (CL_H2, the session in ngh); each request
 * stream takes a slot of its own.  A stream's header fields are written out
 * as the HTTP/1.1 head they stand for and parsed by http1_parse, so login,
 * CSRF, routing, uploads and the live feed are one code for both protocols.
 * An answer's body waits in the stream's out until nghttp2 pulls it
 * (read_body); the live feed is one DATA stream, resumed when lines come.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "live.h"
#include "upload.h"
#include "web_int.h"

#define H2_MAX_STREAMS 32	 /* a browser opens a dozen for a page */
#define H2_WINDOW (1 << 20)	 /* per stream: an upload does not wait for WINDOW_UPDATEs */
#define H2_CONN_WINDOW (8 << 20) /* the connection's */
#define H2_OUT_CHUNK 65536	 /* frames taken from nghttp2 per write */

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/* A request's header fields while they arrive. */
struct h2req {
	char method[16];
	struct sbuf target, authority, fields, cookie;
	size_t size;  /* names and values so far */
	bool too_big; /* over WEB_HEAD_MAX: answered 431 */
	bool bad;     /* a pseudo-header twice or too long: answered 400 */
};

int h2_preface(const char *buf, size_t len)
{
	size_t n = len < sizeof(preface) - 1 ? len : sizeof(preface) - 1;

	if (memcmp(buf, preface, n))
		return 0;
	return n == sizeof(preface) - 1 ? 1 : -EAGAIN;
}

static void hreq_free(struct client *c)
{
	if (!c->hreq)
		return;
	sbuf_free(&c->hreq->target);
	sbuf_free(&c->hreq->authority);
	sbuf_free(&c->hreq->fields);
	sbuf_free(&c->hreq->cookie);
	free(c->hreq);
	c->hreq = NULL;
}

static struct client *stream_client(nghttp2_session *s, int32_t id)
{
	return nghttp2_session_get_stream_user_data(s, id);
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct client *o = ud, *c;
	struct web *w = o->web;

	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	c = client_slot(w);
	if (c) {
		c->in = malloc(WEB_HEAD_MAX + WEB_BODY_MAX);
		c->hreq = calloc(1, sizeof(*c->hreq));
	}
	if (!c || !c->in || !c->hreq) {
		if (c) {
			free(c->in);
			free(c->hreq);
			c->in = NULL;
			c->hreq = NULL;
		}
		/* The client may retry it (RFC 9113, 8.7). */
		WEB_BUMP(w, web_h2_refused);
		return nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, f->hd.stream_id,
						 NGHTTP2_REFUSED_STREAM) ?
			       NGHTTP2_ERR_CALLBACK_FAILURE :
			       0;
	}
	c->h2 = o;
	c->stream_id = f->hd.stream_id;
	c->state = CL_HEAD;
	c->deadline_ms = web_now_ms() + WEB_TIMEOUT_MS;
	memcpy(c->peer, o->peer, sizeof(c->peer));
	memcpy(c->cert_cn, o->cert_cn, sizeof(c->cert_cn));
	o->nstreams++;
	nghttp2_session_set_stream_user_data(s, c->stream_id, c);
	return 0;
}

static bool name_is(const uint8_t *name, size_t len, const char *lit)
{
	return len == strlen(lit) && !memcmp(name, lit, len);
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
		     const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct client *c;
	struct h2req *r;

	(void)flags;
	(void)ud;
	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	c = stream_client(s, f->hd.stream_id);
	r = c ? c->hreq : NULL;
	if (!r || r->too_big || r->bad)
		return 0;
	r->size += nlen + vlen + 4;
	if (r->size > WEB_HEAD_MAX) {
		r->too_big = true;
		return 0;
	}
	/* nghttp2 has checked the fields (RFC 9113, 8.2): lowercase names, no
	 * CR, LF or NUL in values, pseudo-headers first and once each. */
	if (name_is(name, nlen, ":method")) {
		if (vlen >= sizeof(r->method)) {
			r->bad = true;
			return 0;
		}
		memcpy(r->method, value, vlen);
		r->method[vlen] = '\0';
	} else if (name_is(name, nlen, ":path")) {
		sbuf_add(&r->target, (const char *)value, vlen);
	} else if (name_is(name, nlen, ":authority")) {
		sbuf_add(&r->authority, (const char *)value, vlen);
	} else if (nlen && name[0] == ':') {
		return 0; /* :scheme */
	} else if (name_is(name, nlen, "cookie")) {
		/* Split cookies are one field again (RFC 9113, 8.2.3). */
		if (r->cookie.len)
			sbuf_puts(&r->cookie, "; ");
		sbuf_add(&r->cookie, (const char *)value, vlen);
	} else {
		sbuf_add(&r->fields, (const char *)name, nlen);
		sbuf_puts(&r->fields, ": ");
		sbuf_add(&r->fields, (const char *)value, vlen);
		sbuf_puts(&r->fields, "\r\n");
	}
	return 0;
}

/* The request's fields are all in: its HTTP/1.1 head into in[], parsed,
 * then on as any request (ended: no DATA will follow). */
static void start_request(struct web *w, struct client *c, bool ended)
{
	struct h2req *r = c->hreq;
	struct sbuf h = { 0 };
	int rc;

	c->req_ended = ended;
	if (r->too_big) {
		hreq_free(c);
		http_error(w, c, 431, "request head too large");
		return;
	}
	sbuf_printf(&h, "%s %.*s HTTP/1.1\r\n", r->method, (int)r->target.len,
		    r->target.p ? r->target.p : "");
	if (r->authority.len)
		sbuf_printf(&h, "Host: %.*s\r\n", (int)r->authority.len, r->authority.p);
	if (r->fields.len)
		sbuf_add(&h, r->fields.p, r->fields.len);
	if (r->cookie.len)
		sbuf_printf(&h, "Cookie: %.*s\r\n", (int)r->cookie.len, r->cookie.p);
	sbuf_puts(&h, "\r\n");
	rc = r->bad || !r->method[0] || !r->target.len || h.oom ? -EINVAL :
	     h.len > WEB_HEAD_MAX				? -E2BIG :
								  0;
	if (rc == 0) {
		memcpy(c->in, h.p, h.len);
		c->in_len = h.len;
		rc = http1_parse(c->in, c->in_len, &c->req);
	}
	sbuf_free(&h);
	hreq_free(c);
	if (rc == -E2BIG || rc == -EAGAIN) {
		http_error(w, c, 431, "request head too large");
		return;
	}
	if (rc < 0) {
		http_error(w, c, 400, "not a request the dashboard reads");
		return;
	}
	/* HTTP/2 ends a body with END_STREAM; the dashboard bounds bodies by
	 * the length they declare, before taking them. */
	if (!ended && !http1_field(&c->req, "Content-Length", NULL)) {
		http_error(w, c, 411, "send Content-Length with a body");
		return;
	}
	web_on_head(w, c);
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
		   void *ud)
{
	struct client *o = ud, *c = stream_client(s, id);
	struct web *w = o->web;

	(void)flags;
	if (!c || c->state != CL_BODY)
		return 0; /* answered before its body came: dropped */
	if (c->upload_fd >= 0) {
		if (upload_write(w, c, (const char *)data, len) < 0)
			return 0; /* answered */
	} else if (c->in_len + len > c->req.head_len + c->body_len) {
		http_error(w, c, 400, "body longer than its Content-Length");
		return 0;
	} else {
		memcpy(c->in + c->in_len, data, len);
		c->in_len += len;
	}
	web_body_check(w, c);
	return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct client *o = ud, *c;
	struct web *w = o->web;
	bool ended = f->hd.flags & NGHTTP2_FLAG_END_STREAM;

	if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
		return 0;
	c = stream_client(s, f->hd.stream_id);
	if (!c)
		return 0;
	o->deadline_ms = web_now_ms() + WEB_TIMEOUT_MS;
	if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
		start_request(w, c, ended);
		return 0;
	}
	if (!ended)
		return 0;
	c->req_ended = true;
	if (c->state == CL_BODY)
		http_error(w, c, 400, "body shorter than its Content-Length");
	return 0;
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
	struct client *o = ud, *c;

	if (f->hd.type == NGHTTP2_GOAWAY && f->goaway.error_code != NGHTTP2_NO_ERROR) {
		WEB_BUMP(o->web, web_h2_errors); /* the client broke the protocol */
		return 0;
	}
	if ((f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) ||
	    !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	c = stream_client(s, f->hd.stream_id);
	/* Answered before the whole body came (a refusal): the client is
	 * told to stop sending it (RFC 9113, 8.1). */
	if (c && !c->req_ended)
		nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_NO_ERROR);
	return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
	struct client *o = ud, *c = stream_client(s, id);

	(void)code;
	if (!c)
		return 0;
	c->stream_gone = true;
	client_close(o->web, c);
	return 0;
}

/* nghttp2 takes the answer's body from the stream's out. */
static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
			 uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct client *c = stream_client(s, id);
	size_t n;

	(void)src;
	(void)ud;
	if (!c)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	if (c->out_off == c->out.len && c->state == CL_SSE && c->sse_gap)
		live_drained(c);
	n = c->out.len - c->out_off;
	if (n > length)
		n = length;
	if (n)
		memcpy(buf, c->out.p + c->out_off, n);
	c->out_off += n;
	if (c->out_off == c->out.len) {
		sbuf_reset(&c->out);
		c->out_off = 0;
		if (c->state == CL_WRITE)
			*flags |= NGHTTP2_DATA_FLAG_EOF;
		else if (n == 0)
			return NGHTTP2_ERR_DEFERRED; /* the live feed: until more lines */
	} else if (c->out_off > (1u << 20)) {
		memmove(c->out.p, c->out.p + c->out_off, c->out.len - c->out_off);
		c->out.len -= c->out_off;
		c->out_off = 0;
	}
	return (ssize_t)n;
}

int h2_init(struct web *w, char *err, size_t errlen)
{
	nghttp2_session_callbacks *cb;

	if (nghttp2_session_callbacks_new(&cb)) {
		snprintf(err, errlen, "web: out of memory");
		return -ENOMEM;
	}
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	w->h2cbs = cb;
	return 0;
}

void h2_free(struct web *w)
{
	if (w->h2cbs)
		nghttp2_session_callbacks_del(w->h2cbs);
	w->h2cbs = NULL;
}

/* Bytes from the socket into the session: false when it was closed. */
static bool feed(struct web *w, struct client *c, const char *buf, size_t n)
{
	ssize_t rv;

	c->in_recv = true;
	rv = nghttp2_session_mem_recv(c->ngh, (const uint8_t *)buf, n);
	c->in_recv = false;
	if (rv < 0) {
		WEB_BUMP(w, web_h2_errors);
		log_debug("web: %s: HTTP/2: %s", c->peer, nghttp2_strerror((int)rv));
		client_close(w, c);
		return false;
	}
	return true;
}

void h2_start(struct web *w, struct client *c, const char *in, size_t n)
{
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, H2_MAX_STREAMS },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_WINDOW },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, WEB_HEAD_MAX },
	};

	if (nghttp2_session_server_new(&c->ngh, w->h2cbs, c) ||
	    nghttp2_submit_settings(c->ngh, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) ||
	    nghttp2_session_set_local_window_size(c->ngh, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW)) {
		WEB_BUMP(w, web_errors);
		client_close(w, c);
		return;
	}
	WEB_BUMP(w, web_h2_connections);
	c->state = CL_H2;
	c->web = w;
	c->deadline_ms = web_now_ms() + WEB_TIMEOUT_MS;
	if (n && !feed(w, c, in, n))
		return;
	c->in_len = 0;
	h2_read(w, c);
}

void h2_read(struct web *w, struct client *c)
{
	for (;;) {
		ssize_t n = client_io_read(c, c->in, WEB_HEAD_MAX + WEB_BODY_MAX);

		if (n == -EAGAIN)
			break;
		if (n <= 0) {
			client_close(w, c);
			return;
		}
		c->deadline_ms = web_now_ms() + WEB_TIMEOUT_MS;
		if (!feed(w, c, c->in, (size_t)n))
			return;
	}
	client_send(w, c); /* what the frames read made nghttp2 say */
}

bool h2_pull(struct web *w, struct client *c)
{
	bool added = false;

	sbuf_reset(&c->out);
	c->out_off = 0;
	while (c->out.len < H2_OUT_CHUNK) {
		const uint8_t *p;
		ssize_t n = nghttp2_session_mem_send(c->ngh, &p);

		if (n < 0) {
			WEB_BUMP(w, web_h2_errors);
			client_close(w, c);
			return false;
		}
		if (n == 0)
			break;
		sbuf_add(&c->out, (const char *)p, (size_t)n);
		added = true;
	}
	if (c->out.oom) {
		client_close(w, c);
		return false;
	}
	return added;
}

bool h2_finished(const struct client *c)
{
	return !nghttp2_session_want_read(c->ngh) && !nghttp2_session_want_write(c->ngh);
}

int h2_respond(struct web *w, struct client *c, int code, const char *fields, size_t len)
{
	nghttp2_data_provider dp = { .read_callback = read_body };
	nghttp2_nv nv[32];
	char status[4], *buf = malloc(len + 1), *p, *end;
	size_t n = 0;
	int rc;

	(void)w;
	if (!buf)
		return -ENOMEM;
	memcpy(buf, fields, len);
	buf[len] = '\0';
	snprintf(status, sizeof(status), "%03d", code % 1000);
	nv[n++] =
		(nghttp2_nv){ (uint8_t *)":status", (uint8_t *)status, 7, 3, NGHTTP2_NV_FLAG_NONE };
	/* "Name: value\r\n" lines; HTTP/2 names are lowercase (RFC 9113, 8.2.1). */
	for (p = buf; *p && n < sizeof(nv) / sizeof(nv[0]); p = end + 2) {
		char *colon = strchr(p, ':'), *q, *v;

		end = strstr(p, "\r\n");
		if (!end || !colon || colon > end)
			break;
		for (q = p; q < colon; q++)
			if (*q >= 'A' && *q <= 'Z')
				*q = (char)(*q - 'A' + 'a');
		for (v = colon + 1; *v == ' '; v++)
			;
		nv[n++] = (nghttp2_nv){ (uint8_t *)p, (uint8_t *)v, (size_t)(colon - p),
					(size_t)(end - v), NGHTTP2_NV_FLAG_NONE };
	}
	rc = nghttp2_submit_response(c->h2->ngh, c->stream_id, nv, n, &dp);
	free(buf);
	return rc ? -EIO : 0;
}

void h2_stream_kick(struct web *w, struct client *c)
{
	struct client *o = c->h2;

	/* Only a deferred body needs it; otherwise a harmless error. */
	nghttp2_session_resume_data(o->ngh, c->stream_id);
	if (!o->in_recv)
		client_send(w, o);
}

void h2_stream_release(struct web *w, struct client *c)
{
	struct client *o = c->h2;

	hreq_free(c);
	if (o->nstreams)
		o->nstreams--;
	if (!o->ngh)
		return;
	nghttp2_session_set_stream_user_data(o->ngh, c->stream_id, NULL);
	if (c->stream_gone)
		return;
	/* Timed out, or its answer could not be made: the stream is reset. */
	nghttp2_submit_rst_stream(o->ngh, NGHTTP2_FLAG_NONE, c->stream_id, NGHTTP2_CANCEL);
	if (!o->in_recv)
		client_send(w, o);
}

void h2_conn_release(struct web *w, struct client *c)
{
	size_t i;
	nghttp2_session *s = c->ngh;

	c->ngh = NULL; /* its streams go without a word on the wire */
	for (i = 0; i < WEB_MAX_CLIENTS; i++)
		if (w->c[i].state != CL_FREE && w->c[i].h2 == c)
			client_close(w, &w->c[i]);
	nghttp2_session_del(s);
}
