// SPDX-License-Identifier: MIT
/* conn.c - TCP/TLS + HTTP/2 client session + one gRPC call; see conn.h. */
#include "conn.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>

#include "rpc/grpc_frame.h"
#include "core/log.h"
#include "rpc/grpc_status.h"
#include "rpc/rpc_error.h"
#include "rpc/tls.h"

/* Acks are tiny; anything bigger than this from the collector is an error. */
#define CONN_MAX_RESPONSE (64u * 1024)
/* Our receive window: acks only, but trailers and pings must never stall. */
#define CONN_WINDOW (1u << 20)

struct conn {
	struct conn_params p;
	struct conn_callbacks cb;
	void *ctx;
	struct addrinfo *ai_list, *ai;
	int fd;
	enum conn_phase phase;
	SSL *ssl;
	bool ssl_want_write; /* OpenSSL needs the socket writable to go on */
	nghttp2_session *h2;
	int32_t stream_id;
	const uint8_t *out; /* bytes from nghttp2_session_mem_send not yet written */
	size_t out_len, out_off;
	/* The message being copied into DATA frames: prefix, then payload. */
	uint8_t prefix[GRPC_PREFIX_LEN];
	const uint8_t *msg;
	size_t msg_len, msg_off; /* msg_off counts the prefix too */
	bool have_msg, finishing, eof_sent;
	struct grpc_reader reader;
	int http_status;
	int grpc_status;
	bool content_type_ok, established;
	char grpc_message[256];
	char err[320];
};

static void set_err(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	if (c->err[0])
		return; /* the first cause is the one worth reporting */
	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
}

/* Start connecting to the next address that takes it: 0, or a negative
 * errno (the last address's, or -EHOSTUNREACH) with c->err set. */
static int try_connect(struct conn *c)
{
	int e = EHOSTUNREACH;

	for (; c->ai; c->ai = c->ai->ai_next) {
		int one = 1;

		c->fd = socket(c->ai->ai_family, c->ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			       c->ai->ai_protocol);
		if (c->fd < 0) {
			e = errno;
			continue;
		}
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(c->fd, c->ai->ai_addr, c->ai->ai_addrlen) == 0 || errno == EINPROGRESS)
			return 0;
		e = errno;
		set_err(c, "connecting to %s:%s: %s", c->p.host, c->p.port, strerror(e));
		close(c->fd);
		c->fd = -1;
	}
	set_err(c, "connecting to %s:%s: no address to try", c->p.host, c->p.port);
	return -e;
}

/* nghttp2 callbacks ------------------------------------------------------ */

static ssize_t data_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
			 uint32_t *flags, nghttp2_data_source *src, void *user)
{
	struct conn *c = user;
	size_t done = 0;

	(void)s;
	(void)id;
	(void)src;
	while (done < length) {
		size_t total, n;

		if (!c->have_msg) {
			const uint8_t *m;
			size_t len;

			if (!c->cb.next(c->ctx, &m, &len))
				break;
			c->msg = m;
			c->msg_len = len;
			c->msg_off = 0;
			c->have_msg = true;
			grpc_frame_prefix(c->prefix, (uint32_t)len);
		}
		total = GRPC_PREFIX_LEN + c->msg_len;
		n = total - c->msg_off;
		if (n > length - done)
			n = length - done;
		/* Copy across the prefix / payload boundary in at most two pieces. */
		while (n) {
			size_t k;

			if (c->msg_off < GRPC_PREFIX_LEN) {
				k = GRPC_PREFIX_LEN - c->msg_off;
				if (k > n)
					k = n;
				memcpy(buf + done, c->prefix + c->msg_off, k);
			} else {
				k = n;
				memcpy(buf + done, c->msg + (c->msg_off - GRPC_PREFIX_LEN), k);
			}
			done += k;
			c->msg_off += k;
			n -= k;
		}
		if (c->msg_off == total)
			c->have_msg = false;
	}
	if (!done && !c->have_msg) {
		if (c->finishing) {
			*flags |= NGHTTP2_DATA_FLAG_EOF;
			c->eof_sent = true;
			return 0;
		}
		return NGHTTP2_ERR_DEFERRED;
	}
	return (ssize_t)done;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
		     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
		     void *user)
{
	struct conn *c = user;

	(void)s;
	(void)flags;
	if (f->hd.type != NGHTTP2_HEADERS || f->hd.stream_id != c->stream_id)
		return 0;
	if (namelen == 7 && !memcmp(name, ":status", 7)) {
		c->http_status = atoi((const char *)value);
	} else if (namelen == 12 && !memcmp(name, "content-type", 12)) {
		/* "application/grpc" or "application/grpc+proto" etc. */
		c->content_type_ok = valuelen >= 16 && !memcmp(value, GRPC_CONTENT_TYPE, 16);
	} else if (namelen == 11 && !memcmp(name, GRPC_HDR_STATUS, 11)) {
		c->grpc_status = grpc_status_parse((const char *)value, valuelen);
		if (c->grpc_status < 0)
			c->grpc_status = GRPC_STATUS_UNKNOWN;
	} else if (namelen == 12 && !memcmp(name, GRPC_HDR_MESSAGE, 12)) {
		grpc_message_decode((const char *)value, valuelen, c->grpc_message,
				    sizeof(c->grpc_message));
	}
	return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
	struct conn *c = user;

	(void)s;
	if (f->hd.type == NGHTTP2_GOAWAY) {
		set_err(c, "collector %s sent GOAWAY (%s)", c->p.authority,
			nghttp2_http2_strerror(f->goaway.error_code));
		return 0;
	}
	if (f->hd.type != NGHTTP2_HEADERS || f->hd.stream_id != c->stream_id)
		return 0;
	/* Trailers with a refusal: that is the reason, whatever follows (a
	 * collector closes the connection after UNAUTHENTICATED, with a GOAWAY
	 * that may arrive before this stream is closed on our side). */
	if ((f->hd.flags & NGHTTP2_FLAG_END_STREAM) && c->grpc_status > 0)
		set_err(c, "collector %s ended the call: grpc-status %d (%s)%s%s", c->p.authority,
			c->grpc_status, grpc_status_name(c->grpc_status),
			c->grpc_message[0] ? ": " : "", c->grpc_message);
	if (f->headers.cat == NGHTTP2_HCAT_RESPONSE && !c->established) {
		if (c->http_status != 200) {
			set_err(c, "collector %s answered HTTP %d to %s (not a gRPC server?)",
				c->p.authority, c->http_status, CONN_PATH);
			return 0;
		}
		if (!c->content_type_ok) {
			set_err(c, "collector %s answered without content-type %s", c->p.authority,
				GRPC_CONTENT_TYPE);
			return 0;
		}
		if (c->grpc_status < 0 && !(f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
			c->established = true;
			if (c->cb.established)
				c->cb.established(c->ctx);
		}
	}
	return 0;
}

static int on_message(void *user, const uint8_t *msg, size_t len)
{
	struct conn *c = user;

	return c->cb.message(c->ctx, msg, len);
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
		   void *user)
{
	struct conn *c = user;
	int r;

	(void)flags;
	if (id != c->stream_id)
		return 0;
	r = grpc_reader_feed(&c->reader, data, len, on_message, c);
	if (r) {
		set_err(c, "collector %s: bad response message: %s", c->p.authority,
			r == GRPC_FRAME_E_CALLBACK ? "refused (see above)" : rpc_strerror(r));
		nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
	}
	return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *user)
{
	struct conn *c = user;

	(void)s;
	if (id != c->stream_id)
		return 0;
	if (c->grpc_status > 0)
		set_err(c, "collector %s ended the call: grpc-status %d (%s)%s%s", c->p.authority,
			c->grpc_status, grpc_status_name(c->grpc_status),
			c->grpc_message[0] ? ": " : "", c->grpc_message);
	else if (c->grpc_status < 0 && code)
		set_err(c, "collector %s reset the call (%s)", c->p.authority,
			nghttp2_http2_strerror(code));
	else if (c->grpc_status < 0)
		set_err(c, "collector %s ended the call without grpc-status", c->p.authority);
	else
		set_err(c, "collector %s ended the call (grpc-status 0)", c->p.authority);
	c->phase = CONN_DONE;
	return 0;
}

/* ------------------------------------------------------------------------ */

/* The HTTP/2 session and the call's request: 0, or a negative errno
 * (-ENOMEM, -EPROTO) with c->err set. */
static int h2_start(struct conn *c)
{
	nghttp2_session_callbacks *cbs;
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, CONN_WINDOW },
	};
	nghttp2_data_provider prd = { .source.ptr = c, .read_callback = data_read };
	nghttp2_nv hdrs[8];
	size_t n = 0;
	int r;

#define NV(k, v) \
	hdrs[n++] = (nghttp2_nv){ (uint8_t *)(k), (uint8_t *)(v), strlen(k), strlen(v), \
				  NGHTTP2_NV_FLAG_NONE }
	NV(":method", "POST");
	NV(":scheme", c->ssl ? "https" : "http");
	NV(":path", CONN_PATH);
	NV(":authority", c->p.authority);
	NV("content-type", GRPC_CONTENT_TYPE);
	NV("te", "trailers");
	NV("user-agent", c->p.user_agent ? c->p.user_agent : "flowpic-stream");
	if (c->p.authorization)
		NV(GRPC_HDR_AUTHORIZATION, c->p.authorization);
#undef NV
	if (nghttp2_session_callbacks_new(&cbs))
		return -ENOMEM;
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
	r = nghttp2_session_client_new(&c->h2, cbs, c);
	nghttp2_session_callbacks_del(cbs);
	if (r) {
		set_err(c, "HTTP/2 session: %s", nghttp2_strerror(r));
		return -ENOMEM;
	}
	nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
	nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW);
	c->stream_id = nghttp2_submit_request(c->h2, NULL, hdrs, n, &prd, c);
	if (c->stream_id < 0) {
		set_err(c, "HTTP/2 request: %s", nghttp2_strerror(c->stream_id));
		return -EPROTO;
	}
	c->phase = CONN_H2;
	return 0;
}

struct conn *conn_open(const struct conn_params *p, const struct conn_callbacks *cb, void *ctx,
		       char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC };
	struct conn *c = calloc(1, sizeof(*c));
	int r;

	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->p = *p;
	c->cb = *cb;
	c->ctx = ctx;
	c->fd = -1;
	c->grpc_status = -1;
	grpc_reader_init(&c->reader, CONN_MAX_RESPONSE);
	r = getaddrinfo(p->host, p->port, &hints, &c->ai_list);
	if (r) {
		snprintf(err, errlen, "collector %s: cannot resolve %s: %s", p->authority, p->host,
			 gai_strerror(r));
		goto err_free;
	}
	c->ai = c->ai_list;
	if (try_connect(c) < 0) {
		snprintf(err, errlen, "%s", c->err);
		goto err_free;
	}
	c->phase = CONN_TCP;
	return c;

err_free:
	conn_free(c);
	return NULL;
}

void conn_free(struct conn *c)
{
	if (!c)
		return;
	if (c->h2)
		nghttp2_session_del(c->h2);
	if (c->ssl)
		SSL_free(c->ssl);
	if (c->fd >= 0)
		close(c->fd);
	if (c->ai_list)
		freeaddrinfo(c->ai_list);
	grpc_reader_free(&c->reader);
	free(c);
}

int conn_fd(const struct conn *c)
{
	return c->fd;
}

enum conn_phase conn_get_phase(const struct conn *c)
{
	return c->phase;
}

short conn_events(const struct conn *c)
{
	switch (c->phase) {
	case CONN_TCP:
		return POLLOUT;
	case CONN_TLS:
		return c->ssl_want_write ? POLLOUT : POLLIN;
	case CONN_H2:
		if (c->out_off < c->out_len || c->ssl_want_write ||
		    nghttp2_session_want_write(c->h2))
			return POLLIN | POLLOUT;
		return POLLIN;
	default:
		return 0;
	}
}

static bool is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr) >>
			24) == 127;
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a =
			&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;

		return IN6_IS_ADDR_LOOPBACK(a) ||
		       (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

/* The token in cleartext beyond this host: anyone on the path can read it
 * and write as this agent.  Said once per process, not per reconnection. */
static void warn_cleartext_token(const struct conn *c)
{
	static bool warned;
	char addr[INET6_ADDRSTRLEN] = "?";
	const struct sockaddr *sa = c->ai->ai_addr;

	if (warned || c->p.tls || !c->p.authorization || is_loopback(sa))
		return;
	warned = true;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, addr,
			  sizeof(addr));
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
			  addr, sizeof(addr));
	log_warn("collector %s (%s): the access token goes in cleartext over the network "
		 "(no TLS): anyone on the path can read it; give the collector's CA to use TLS",
		 c->p.authority, addr);
}

/* The TCP connect finished (or failed: the next address): 0, or a negative
 * errno with c->err set. */
static int tcp_done(struct conn *c)
{
	int e = 0, rc;
	socklen_t len = sizeof(e);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
		e = errno;
	if (e) {
		c->err[0] = '\0';
		set_err(c, "connecting to %s: %s", c->p.authority, strerror(e));
		close(c->fd);
		c->fd = -1;
		c->ai = c->ai->ai_next;
		if (!c->ai)
			return -e;
		rc = try_connect(c);
		if (rc < 0)
			return rc;
		return 0; /* the next address */
	}
	c->err[0] = '\0';
	warn_cleartext_token(c);
	if (!c->p.tls)
		return h2_start(c);
	c->ssl = SSL_new(c->p.tls);
	if (!c->ssl || rpc_tls_client_prepare(c->ssl, c->p.server_name) < 0 ||
	    SSL_set_fd(c->ssl, c->fd) != 1) {
		char buf[256];

		set_err(c, "%s", rpc_tls_errors("TLS set-up", buf, sizeof(buf)));
		return -EPROTO;
	}
	c->phase = CONN_TLS;
	return 0;
}

/* One step of the TLS handshake: 0 (done or waiting), or -EPROTO with c->err
 * set. */
static int tls_step(struct conn *c)
{
	int r;

	ERR_clear_error();
	r = SSL_connect(c->ssl);
	if (r == 1) {
		c->ssl_want_write = false;
		if (!rpc_tls_alpn_is_h2(c->ssl)) {
			set_err(c, "collector %s: TLS peer did not agree on ALPN h2",
				c->p.authority);
			return -EPROTO;
		}
		return h2_start(c);
	}
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		c->ssl_want_write = false;
		return 0;
	case SSL_ERROR_WANT_WRITE:
		c->ssl_want_write = true;
		return 0;
	default: {
		char buf[256];
		long v = SSL_get_verify_result(c->ssl);

		rpc_tls_errors("TLS handshake", buf, sizeof(buf));
		if (v != X509_V_OK)
			set_err(c, "collector %s: TLS handshake: certificate not accepted: %s",
				c->p.authority, X509_verify_cert_error_string(v));
		else
			set_err(c, "collector %s: %s", c->p.authority, buf);
		return -EPROTO;
	}
	}
}

/* Read what the socket has into the HTTP/2 session.  0, or a negative errno
 * (-ECONNRESET closed by the collector, -EPROTO TLS or HTTP/2, -errno of
 * read()) with c->err set. */
static int do_read(struct conn *c)
{
	uint8_t buf[16384];
	int rc;

	for (;;) {
		ssize_t n;

		if (c->ssl) {
			int r;

			ERR_clear_error();
			r = SSL_read(c->ssl, buf, sizeof(buf));
			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);
				char eb[256];

				if (e == SSL_ERROR_WANT_READ)
					return 0;
				if (e == SSL_ERROR_WANT_WRITE) {
					c->ssl_want_write = true;
					return 0;
				}
				if (e == SSL_ERROR_ZERO_RETURN) {
					set_err(c, "collector %s closed the connection",
						c->p.authority);
					return -ECONNRESET;
				}
				set_err(c, "collector %s: %s", c->p.authority,
					rpc_tls_errors("TLS read", eb, sizeof(eb)));
				return -EPROTO;
			}
			n = r;
		} else {
			n = read(c->fd, buf, sizeof(buf));
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN)
					return 0;
				rc = -errno;
				set_err(c, "collector %s: read: %s", c->p.authority, strerror(-rc));
				return rc;
			}
			if (n == 0) {
				set_err(c, "collector %s closed the connection", c->p.authority);
				return -ECONNRESET;
			}
		}
		n = nghttp2_session_mem_recv(c->h2, buf, (size_t)n);
		if (n < 0) {
			set_err(c, "collector %s: HTTP/2: %s", c->p.authority,
				nghttp2_strerror((int)n));
			return -EPROTO;
		}
		if (c->phase == CONN_DONE)
			return 0;
	}
}

/* Write what nghttp2 has to send.  0, or a negative errno (-EPROTO TLS or
 * HTTP/2, -errno of send()) with c->err set. */
static int do_write(struct conn *c)
{
	int rc;

	for (;;) {
		ssize_t n;

		if (c->out_off == c->out_len) {
			n = nghttp2_session_mem_send(c->h2, &c->out);
			if (n < 0) {
				set_err(c, "HTTP/2: %s", nghttp2_strerror((int)n));
				return -EPROTO;
			}
			c->out_len = (size_t)n;
			c->out_off = 0;
			if (!n)
				return 0;
		}
		if (c->ssl) {
			int r;

			ERR_clear_error();
			r = SSL_write(c->ssl, c->out + c->out_off, (int)(c->out_len - c->out_off));
			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);
				char eb[256];

				if (e == SSL_ERROR_WANT_WRITE) {
					c->ssl_want_write = true;
					return 0;
				}
				if (e == SSL_ERROR_WANT_READ)
					return 0;
				set_err(c, "collector %s: %s", c->p.authority,
					rpc_tls_errors("TLS write", eb, sizeof(eb)));
				return -EPROTO;
			}
			c->ssl_want_write = false;
			n = r;
		} else {
			n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN)
					return 0;
				rc = -errno;
				set_err(c, "collector %s: write: %s", c->p.authority,
					strerror(-rc));
				return rc;
			}
		}
		c->out_off += (size_t)n;
	}
}

int conn_process(struct conn *c, short revents)
{
	int rc;

	if (c->phase == CONN_TCP) {
		if (!(revents & (POLLOUT | POLLERR | POLLHUP)))
			return 0;
		rc = tcp_done(c);
		if (rc < 0)
			return rc;
		if (c->phase == CONN_TCP)
			return 0;
		revents = POLLOUT;
	}
	if (c->phase == CONN_TLS) {
		rc = tls_step(c);
		if (rc < 0)
			return rc;
		if (c->phase == CONN_TLS)
			return 0;
		revents = POLLIN | POLLOUT;
	}
	if (c->phase == CONN_H2) {
		if ((revents & (POLLIN | POLLHUP | POLLERR)) || c->ssl_want_write) {
			bool ww = c->ssl_want_write;

			c->ssl_want_write = false;
			rc = do_read(c);
			if (rc < 0)
				return rc;
			c->ssl_want_write = c->ssl_want_write || ww;
		}
		if (c->phase == CONN_H2) {
			rc = do_write(c);
			if (rc < 0)
				return rc;
		}
		if (c->phase == CONN_H2 && !nghttp2_session_want_read(c->h2) &&
		    !nghttp2_session_want_write(c->h2)) {
			set_err(c, "collector %s: HTTP/2 session ended", c->p.authority);
			return -ECONNRESET;
		}
	}
	if (c->phase == CONN_DONE) {
		/* Flush what is left (e.g. our GOAWAY-free end), then report. */
		return -ECONNRESET;
	}
	return 0;
}

void conn_resume(struct conn *c)
{
	if (c->phase == CONN_H2 && c->stream_id > 0)
		nghttp2_session_resume_data(c->h2, c->stream_id);
}

void conn_finish(struct conn *c)
{
	c->finishing = true;
	conn_resume(c);
}

const char *conn_error(const struct conn *c)
{
	return c->err[0] ? c->err : "connection ended";
}

int conn_grpc_status(const struct conn *c)
{
	return c->grpc_status;
}
