// SPDX-License-Identifier: MIT
/*
 * web.c - the dashboard's thread: its epoll loop, the listener, clients
 * (plain or TLS, HTTP/1.1 with keep-alive), reading requests, routing, and
 * the timers.  HTTP/2 connections hand their streams to h2.c, which feeds
 * them back through web_on_head() and web_body_check().  Bounded: 128
 * slots (connections and HTTP/2 streams), a 16 KiB head, a 64 KiB body
 * (uploads: --web-upload-max, into a memfd), 30 s to send a request or take
 * an answer.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "core/clock.h"
#include "core/log.h"
#include "live.h"
#include "queries.h"
#include "rpc/hostport.h"
#include "rpc/tls.h"
#include "upload.h"
#include "web_int.h"

enum { TAG_LISTEN = 1, TAG_STOP, TAG_TICK, TAG_LIVE, TAG_UPLOAD, TAG_CLIENT = 64 };

#define LINGER_MS 2000 /* answered and closing: the client has this long to close first */

uint64_t web_now_ms(void)
{
	return clock_mono_ms();
}

static void set_events(struct web *w, struct client *c)
{
	uint32_t ev = 0;
	bool pending = c->out.len > c->out_off;
	struct epoll_event e;

	switch (c->state) {
	case CL_TLS:
		ev = c->want_write ? EPOLLOUT : EPOLLIN;
		break;
	case CL_WRITE:
		ev = EPOLLOUT;
		break;
	case CL_WAIT:
		ev = 0;
		break;
	default:
		ev = EPOLLIN | (pending ? EPOLLOUT : 0);
		break;
	}
	e.events = ev;
	e.data.u64 = TAG_CLIENT + (uint64_t)(c - w->c);
	epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &e);
}

void client_close(struct web *w, struct client *c)
{
	if (c->state == CL_FREE)
		return;
	if (c->state == CL_SSE)
		live_unsubscribe(w, c);
	if (c->state == CL_WAIT || c->upload_fd >= 0)
		upload_forget(w, c);
	if (c->h2) {
		h2_stream_release(w, c); /* the socket is its connection's */
	} else {
		if (c->state == CL_H2)
			h2_conn_release(w, c);
		epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
		if (c->ssl)
			SSL_free(c->ssl);
		close(c->fd);
	}
	if (c->upload_fd >= 0)
		close(c->upload_fd);
	free(c->in);
	sbuf_free(&c->out);
	memset(c, 0, sizeof(*c));
	c->fd = c->upload_fd = -1;
	c->state = CL_FREE;
}

struct client *client_slot(struct web *w)
{
	size_t i;

	for (i = 0; i < WEB_MAX_CLIENTS; i++)
		if (w->c[i].state == CL_FREE) {
			struct client *c = &w->c[i];

			memset(c, 0, sizeof(*c));
			c->gen = ++w->next_gen;
			c->fd = c->upload_fd = -1;
			return c;
		}
	return NULL;
}

ssize_t client_io_read(struct client *c, void *buf, size_t n)
{
	size_t got = 0;
	ssize_t r;

	if (c->ssl) {
		int e;

		ERR_clear_error();
		if (SSL_read_ex(c->ssl, buf, n, &got) == 1)
			return (ssize_t)got;
		e = SSL_get_error(c->ssl, 0);
		c->want_write = e == SSL_ERROR_WANT_WRITE;
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			return -EAGAIN;
		return e == SSL_ERROR_ZERO_RETURN ? 0 : -EIO;
	}
	do
		r = recv(c->fd, buf, n, 0);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -EIO;
	return r;
}

static ssize_t io_write(struct client *c, const void *buf, size_t n)
{
	size_t put = 0;
	ssize_t r;

	if (c->ssl) {
		int e;

		ERR_clear_error();
		if (SSL_write_ex(c->ssl, buf, n, &put) == 1)
			return (ssize_t)put;
		e = SSL_get_error(c->ssl, 0);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			return -EAGAIN;
		return -EIO;
	}
	do
		r = send(c->fd, buf, n, MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -EIO;
	return r;
}

static void after_answer(struct web *w, struct client *c);

void client_send(struct web *w, struct client *c)
{
	bool again;

	if (c->h2) {
		h2_stream_kick(w, c);
		return;
	}
	do {
		while (c->out_off < c->out.len) {
			ssize_t n = io_write(c, c->out.p + c->out_off, c->out.len - c->out_off);

			if (n == -EAGAIN)
				break;
			if (n <= 0) {
				client_close(w, c);
				return;
			}
			c->out_off += (size_t)n;
		}
		/* Once the output drained, a live client is told what it missed
		 * (after the writes, or a gap waits for the next line or ping). */
		again = c->state == CL_SSE && c->sse_gap && live_drained(c);
		/* An HTTP/2 connection's frames are taken as the socket takes them. */
		if (c->state == CL_H2 && c->out_off == c->out.len) {
			again = h2_pull(w, c);
			if (c->state == CL_FREE)
				return;
		}
	} while (again);
	if (c->out_off == c->out.len) {
		sbuf_reset(&c->out);
		c->out_off = 0;
		if (c->state == CL_WRITE) {
			after_answer(w, c);
			return;
		}
		if (c->state == CL_H2 && h2_finished(c)) {
			client_close(w, c);
			return;
		}
	} else if (c->out_off > (1u << 20)) {
		/* Keep the buffer from growing without end under a slow reader. */
		memmove(c->out.p, c->out.p + c->out_off, c->out.len - c->out_off);
		c->out.len -= c->out_off;
		c->out_off = 0;
	}
	set_events(w, c);
}

static void client_read(struct web *w, struct client *c);

/* The answer is out: the next request, or close politely. */
static void after_answer(struct web *w, struct client *c)
{
	size_t used = c->req.head_len + (c->upload_fd >= 0 ? 0 : (size_t)c->body_len);

	if (c->upload_fd >= 0) {
		close(c->upload_fd);
		c->upload_fd = -1;
	}
	if (!c->keep_alive) {
		if (c->ssl)
			SSL_shutdown(c->ssl);
		shutdown(c->fd, SHUT_WR);
		c->state = CL_LINGER;
		c->deadline_ms = web_now_ms() + LINGER_MS;
		set_events(w, c);
		return;
	}
	/* Pipelined bytes after this request stay for the next. */
	if (used > c->in_len)
		used = c->in_len;
	memmove(c->in, c->in + used, c->in_len - used);
	c->in_len -= used;
	memset(&c->req, 0, sizeof(c->req));
	c->body_len = c->body_have = 0;
	c->state = CL_HEAD;
	c->deadline_ms = web_now_ms() + WEB_TIMEOUT_MS;
	set_events(w, c);
	client_read(w, c);
}

/* ---- routing ---- */

static bool path_is(const struct client *c, const char *p)
{
	size_t plen = strcspn(c->req.target, "? ");

	if (plen > c->req.target_len)
		plen = c->req.target_len;
	return plen == strlen(p) && !memcmp(c->req.target, p, plen);
}

static bool path_starts(const struct client *c, const char *p)
{
	size_t n = strlen(p);

	return c->req.target_len >= n && !memcmp(c->req.target, p, n);
}

/* Reachable without a session: the login page and its own files. */
static bool is_public(const struct client *c)
{
	return path_is(c, "/login") || path_starts(c, "/static/login.");
}

/* The request (head and body) is whole. */
static void dispatch(struct web *w, struct client *c)
{
	const char *body = c->in + c->req.head_len;
	bool get = http1_is(&c->req, "GET", NULL), post = http1_is(&c->req, "POST", NULL);

	if (post && path_is(c, "/login")) {
		auth_login(w, c, body, (size_t)c->body_len);
		return;
	}
	if (post && path_is(c, "/logout")) {
		auth_logout(w, c);
		return;
	}
	if (post && path_is(c, "/api/classify")) {
		upload_start(w, c);
		return;
	}
	if (!get) {
		http_error(w, c, 405, "this path takes GET");
		return;
	}
	if (path_is(c, "/api/session"))
		auth_session_json(w, c);
	else if (path_is(c, "/api/overview"))
		api_overview(w, c);
	else if (path_is(c, "/api/flows"))
		api_flows(w, c);
	else if (path_is(c, "/api/flow"))
		api_flow(w, c);
	else if (path_is(c, "/api/agents"))
		api_agents(w, c);
	else if (path_is(c, "/api/live"))
		live_subscribe(w, c);
	else if (c->api)
		http_error(w, c, 404, "no such API");
	else
		http_static(w, c);
}

/* The head is parsed: check who asks and for what before any body. */
void web_on_head(struct web *w, struct client *c)
{
	size_t n;
	const char *v;
	bool get = http1_is(&c->req, "GET", NULL), post = http1_is(&c->req, "POST", NULL);
	uint64_t len = 0;
	char num[24];

	c->api = path_starts(c, "/api/");
	c->sess = NULL;
	c->set_cookie[0] = '\0';
	v = http1_field(&c->req, "Connection", &n);
	c->keep_alive = c->req.minor == 1 ? !(v && n == 5 && !strncasecmp(v, "close", 5)) :
					    (v && n == 10 && !strncasecmp(v, "keep-alive", 10));
	if (http1_field(&c->req, "Transfer-Encoding", NULL)) {
		http_error(w, c, 400, "chunked bodies are not taken: send Content-Length");
		return;
	}
	v = http1_field(&c->req, "Content-Length", &n);
	if (v) {
		if (n == 0 || n >= sizeof(num) || strspn(v, "0123456789") < n) {
			http_error(w, c, 400, "bad Content-Length");
			return;
		}
		snprintf(num, sizeof(num), "%.*s", (int)n, v);
		len = strtoull(num, NULL, 10);
	}
	c->body_len = len;
	c->body_have = 0;
	if (!get && !post) {
		c->keep_alive = c->keep_alive && len == 0;
		http_error(w, c, 405, "GET or POST only");
		return;
	}
	if (!is_public(c)) {
		c->sess = auth_session(w, c);
		if (!c->sess) {
			WEB_BUMP(w, web_unauthorized);
			c->keep_alive = c->keep_alive && len == 0;
			if (c->api || post)
				http_answer(w, c, 401, "application/json",
					    "{\"error\":\"login required\"}", 26, NULL);
			else
				http_redirect(w, c, "/login");
			return;
		}
		if (post && !auth_csrf_ok(c, c->sess)) {
			WEB_BUMP(w, web_csrf_refused);
			c->keep_alive = c->keep_alive && len == 0;
			http_answer(w, c, 403, "application/json",
				    "{\"error\":\"missing or wrong X-CSRF-Token\"}", 41, NULL);
			return;
		}
	}
	if (post && path_is(c, "/api/classify")) {
		if (upload_prepare(w, c) < 0)
			return; /* answered (413, 503, 500) */
	} else if (len > WEB_BODY_MAX) {
		http_error(w, c, 413, "request body too large (64 KiB at most)");
		return;
	}
	c->state = CL_BODY;
	if (c->h2)
		web_body_check(w, c); /* its DATA frames bring the rest */
	else
		client_read(w, c);
}

/* Bytes of the body now in in[] after the head (an upload: moved to its
 * memfd).  true when the body is whole. */
static bool body_progress(struct web *w, struct client *c)
{
	size_t have = c->in_len - c->req.head_len;

	if (c->upload_fd >= 0) {
		if (have && upload_write(w, c, c->in + c->req.head_len, have) < 0)
			return false; /* answered and closing */
		c->in_len = c->req.head_len;
		return c->body_have >= c->body_len;
	}
	c->body_have = have;
	return c->body_have >= c->body_len;
}

void web_body_check(struct web *w, struct client *c)
{
	if (c->state != CL_BODY || !body_progress(w, c) || c->state != CL_BODY)
		return;
	c->state = CL_WRITE; /* until dispatch answers */
	dispatch(w, c);
}

static void client_read(struct web *w, struct client *c)
{
	if (c->state == CL_H2) {
		h2_read(w, c);
		return;
	}
	for (;;) {
		size_t cap;
		ssize_t n;
		int rc;

		if (c->state == CL_LINGER || c->state == CL_SSE) {
			char sink[4096];

			n = client_io_read(c, sink, sizeof(sink));
			if (n > 0)
				continue;
			if (n == -EAGAIN)
				break;
			client_close(w, c);
			return;
		}
		if (c->state == CL_HEAD && c->in_len) {
			rc = h2_preface(c->in, c->in_len);
			if (rc == 1) {
				h2_start(w, c, c->in, c->in_len);
				return;
			}
			rc = rc ? -EAGAIN : http1_parse(c->in, c->in_len, &c->req);
			if (rc == 0) {
				web_on_head(w, c);
				return;
			}
			if (rc == -EINVAL) {
				c->keep_alive = false;
				http_error(w, c, 400, "not an HTTP/1.1 request");
				return;
			}
			if (rc == -E2BIG || c->in_len >= WEB_HEAD_MAX) {
				c->keep_alive = false;
				http_error(w, c, 431, "request head too large");
				return;
			}
		}
		if (c->state == CL_BODY && body_progress(w, c)) {
			if (c->state == CL_BODY) {
				c->state = CL_WRITE; /* until dispatch answers */
				dispatch(w, c);
			}
			return;
		}
		if (c->state != CL_HEAD && c->state != CL_BODY)
			return;
		cap = c->state == CL_HEAD ? WEB_HEAD_MAX :
		      c->upload_fd >= 0	  ? WEB_HEAD_MAX + WEB_BODY_MAX :
					    c->req.head_len + (size_t)c->body_len;
		if (c->in_len >= cap)
			return; /* nothing more is read until the request is answered */
		n = client_io_read(c, c->in + c->in_len, cap - c->in_len);
		if (n == -EAGAIN)
			break;
		if (n <= 0) {
			client_close(w, c);
			return;
		}
		c->in_len += (size_t)n;
	}
	if (c->state != CL_FREE)
		set_events(w, c);
}

static void handshake(struct web *w, struct client *c)
{
	int rc, e;

	ERR_clear_error();
	rc = SSL_accept(c->ssl);
	if (rc == 1) {
		const unsigned char *proto = NULL;
		unsigned int plen = 0;

		c->state = CL_HEAD;
		c->want_write = false;
		if (w->cfg.client_ca && identity_peer_cn(c->ssl, c->cert_cn, sizeof(c->cert_cn)))
			c->cert_cn[0] = '\0';
		c->deadline_ms = web_now_ms() + WEB_TIMEOUT_MS;
		SSL_get0_alpn_selected(c->ssl, &proto, &plen);
		if (plen == 2 && !memcmp(proto, "h2", 2))
			h2_start(w, c, NULL, 0);
		else
			client_read(w, c);
		return;
	}
	e = SSL_get_error(c->ssl, rc);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		c->want_write = e == SSL_ERROR_WANT_WRITE;
		set_events(w, c);
		return;
	}
	WEB_BUMP(w, web_tls_handshake);
	client_close(w, c);
}

static void client_event(struct web *w, struct client *c, uint32_t ev)
{
	if (c->state == CL_TLS) {
		handshake(w, c);
		return;
	}
	if ((ev & EPOLLOUT) && c->out.len > c->out_off) {
		client_send(w, c);
		if (c->state == CL_FREE)
			return;
	}
	if ((ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) && c->state != CL_WRITE && c->state != CL_WAIT)
		client_read(w, c);
}

static void accept_all(struct web *w)
{
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		struct epoll_event e;
		struct client *c;
		char host[NI_MAXHOST], port[NI_MAXSERV];
		int fd = accept4(w->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return; /* EAGAIN, or the fd limit: the next wake-up tries again */
		}
		c = client_slot(w);
		if (!c) {
			WEB_BUMP(w, web_refused_busy);
			close(fd);
			continue;
		}
		c->fd = fd;
		c->in = malloc(WEB_HEAD_MAX + WEB_BODY_MAX);
		if (w->tls)
			c->ssl = SSL_new(w->tls);
		e.events = EPOLLIN;
		e.data.u64 = TAG_CLIENT + (uint64_t)(c - w->c);
		if (!c->in || (w->tls && (!c->ssl || !SSL_set_fd(c->ssl, fd))) ||
		    epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &e)) {
			if (c->ssl)
				SSL_free(c->ssl);
			free(c->in);
			close(fd);
			memset(c, 0, sizeof(*c));
			c->fd = c->upload_fd = -1;
			WEB_BUMP(w, web_errors);
			continue;
		}
		if (getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port, sizeof(port),
				NI_NUMERICHOST | NI_NUMERICSERV) == 0)
			snprintf(c->peer, sizeof(c->peer), "%s:%s", host, port);
		WEB_BUMP(w, web_connections);
		c->state = w->tls ? CL_TLS : CL_HEAD;
		c->deadline_ms = web_now_ms() + WEB_TIMEOUT_MS;
		if (w->tls)
			handshake(w, c);
	}
}

static void tick(struct web *w)
{
	uint64_t t = web_now_ms(), v;
	size_t i;

	if (read(w->tick_fd, &v, sizeof(v)) < 0)
		v = 0;
	for (i = 0; i < WEB_MAX_CLIENTS; i++) {
		struct client *c = &w->c[i];

		if (c->state == CL_FREE || c->state == CL_SSE || c->state == CL_WAIT ||
		    (c->state == CL_H2 && c->nstreams) || t < c->deadline_ms)
			continue;
		/* A connection idle between requests is closed without a count. */
		if (c->state != CL_LINGER && c->state != CL_H2 &&
		    !(c->state == CL_HEAD && c->in_len == 0 && !c->h2))
			WEB_BUMP(w, web_timeouts);
		client_close(w, c);
	}
	live_ping(w, t);
}

static void *web_main(void *arg)
{
	struct web *w = arg;
	struct epoll_event ev[64];

	for (;;) {
		int n = epoll_wait(w->ep, ev, 64, -1), i;

		if (n < 0 && errno != EINTR) {
			log_error("web: epoll_wait: %s", strerror(errno));
			break;
		}
		for (i = 0; i < n; i++) {
			uint64_t tag = ev[i].data.u64;

			if (tag == TAG_STOP)
				return NULL;
			if (tag == TAG_LISTEN)
				accept_all(w);
			else if (tag == TAG_TICK)
				tick(w);
			else if (tag == TAG_LIVE)
				live_fanout(w);
			else if (tag == TAG_UPLOAD)
				upload_done(w);
			else if (tag >= TAG_CLIENT && tag < TAG_CLIENT + WEB_MAX_CLIENTS &&
				 w->c[tag - TAG_CLIENT].state != CL_FREE)
				client_event(w, &w->c[tag - TAG_CLIENT], ev[i].events);
		}
	}
	return NULL;
}

/* ---- set-up ---- */

/* h2 for a client that offers it, else HTTP/1.1 (the server's order). */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	static const unsigned char protos[] = { 2,   'h', '2', 8,   'h', 't',
						't', 'p', '/', '1', '.', '1' };
	unsigned char *sel;

	(void)ssl;
	(void)arg;
	if (SSL_select_next_proto(&sel, outlen, protos, sizeof(protos), in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

/* A client certificate is asked for, not required: without one (or with
 * one that does not verify) the login form is there. */
static int accept_any(int ok, X509_STORE_CTX *ctx)
{
	(void)ok;
	(void)ctx;
	return 1;
}

const char *web_default_root(void)
{
	static const char built[] = FLOWPIC_SOURCE_DIR "/collector/web/static";
	struct stat sb;

	return stat(built, &sb) == 0 && S_ISDIR(sb.st_mode) ? built : WEB_ROOT_INSTALLED;
}

static int add_fd(struct web *w, int fd, uint64_t tag)
{
	struct epoll_event e = { .events = EPOLLIN, .data.u64 = tag };

	return epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &e);
}

static int listen_on(struct web *w, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	struct addrinfo *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[256], port[32], hb[NI_MAXHOST], pb[NI_MAXSERV];
	int one = 1, rc;

	if (rpc_hostport_parse(w->cfg.listen, RPC_HOSTPORT_LISTEN, host, sizeof(host), port,
			       sizeof(port))) {
		snprintf(err, errlen, "--web-listen %s: give HOST:PORT, [IPV6]:PORT or :PORT",
			 w->cfg.listen);
		return -EINVAL;
	}
	/* ":PORT" is loopback: beyond it only when a host is named. */
	rc = getaddrinfo(*host ? host : "127.0.0.1", port, &hints, &ai);
	if (rc) {
		snprintf(err, errlen, "--web-listen %s: %s", w->cfg.listen, gai_strerror(rc));
		return -EINVAL;
	}
	w->lfd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (w->lfd < 0 || setsockopt(w->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(w->lfd, ai->ai_addr, ai->ai_addrlen) || listen(w->lfd, 64)) {
		snprintf(err, errlen, "--web-listen %s: %s", w->cfg.listen, strerror(errno));
		freeaddrinfo(ai);
		return -errno;
	}
	freeaddrinfo(ai);
	if (getsockname(w->lfd, (struct sockaddr *)&ss, &sl) == 0 &&
	    getnameinfo((struct sockaddr *)&ss, sl, hb, sizeof(hb), pb, sizeof(pb),
			NI_NUMERICHOST | NI_NUMERICSERV) == 0)
		snprintf(w->addr, sizeof(w->addr), ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s",
			 hb, pb);
	return 0;
}

static void web_free(struct web *w)
{
	size_t i;

	for (i = 0; i < WEB_MAX_CLIENTS; i++)
		client_close(w, &w->c[i]);
	upload_free(w);
	live_free(w->live);
	webdb_close(w->db);
	store_close(w->store);
	token_map_free(w->tokens);
	SSL_CTX_free(w->tls);
	api_free(w);
	h2_free(w);
	if (w->lfd >= 0)
		close(w->lfd);
	if (w->ep >= 0)
		close(w->ep);
	if (w->stop_fd >= 0)
		close(w->stop_fd);
	if (w->tick_fd >= 0)
		close(w->tick_fd);
	if (w->rootfd >= 0)
		close(w->rootfd);
	explicit_bzero(w->sessions, sizeof(w->sessions));
	free(w);
}

struct web *web_start(const struct web_config *cfg, struct store *store, char *err, size_t errlen)
{
	struct store_options ro = { .readonly = true, .busy_timeout_ms = 2000 };
	struct itimerspec its = { { 1, 0 }, { 1, 0 } };
	struct web *w = calloc(1, sizeof(*w));
	size_t i;

	if (!w) {
		snprintf(err, errlen, "web: out of memory");
		return NULL;
	}
	w->cfg = *cfg;
	w->lfd = w->ep = w->stop_fd = w->tick_fd = w->rootfd = -1;
	for (i = 0; i < WEB_MAX_CLIENTS; i++)
		w->c[i].fd = w->c[i].upload_fd = -1;
	if (!w->cfg.root)
		w->cfg.root = web_default_root();
	if (!w->cfg.upload_max)
		w->cfg.upload_max = WEB_UPLOAD_MAX_DEFAULT;
	w->rootfd = open(w->cfg.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->rootfd < 0)
		log_warn("--web-root %s: %s: the pages will not be found", w->cfg.root,
			 strerror(errno));
	if (cfg->token_file) {
		w->tokens = token_map_load(cfg->token_file, err, errlen);
		if (!w->tokens)
			goto fail;
	}
	if (cfg->cert) {
		struct rpc_tls_config tc = { .cert_file = cfg->cert,
					     .key_file = cfg->key,
					     .ca_file = cfg->client_ca };

		w->tls = rpc_tls_server_ctx(&tc, err, errlen);
		if (!w->tls)
			goto fail;
		SSL_CTX_set_alpn_select_cb(w->tls, alpn_select, NULL);
		SSL_CTX_set_verify(w->tls, cfg->client_ca ? SSL_VERIFY_PEER : SSL_VERIFY_NONE,
				   cfg->client_ca ? accept_any : NULL);
	}
	if (listen_on(w, err, errlen) < 0)
		goto fail;
	w->store = store_open(cfg->db, &ro, err, errlen);
	if (!w->store)
		goto fail;
	w->db = webdb_open(cfg->db, err, errlen);
	if (!w->db)
		goto fail;
	w->live = live_new(store, &w->st, err, errlen);
	if (!w->live)
		goto fail;
	if (upload_init(w, err, errlen) < 0 || h2_init(w, err, errlen) < 0)
		goto fail;
	w->ep = epoll_create1(EPOLL_CLOEXEC);
	w->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	w->tick_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (w->ep < 0 || w->stop_fd < 0 || w->tick_fd < 0 ||
	    timerfd_settime(w->tick_fd, 0, &its, NULL) || add_fd(w, w->lfd, TAG_LISTEN) ||
	    add_fd(w, w->stop_fd, TAG_STOP) || add_fd(w, w->tick_fd, TAG_TICK) ||
	    add_fd(w, live_fd(w->live), TAG_LIVE) || add_fd(w, upload_fd(w), TAG_UPLOAD)) {
		snprintf(err, errlen, "web: epoll/eventfd/timerfd: %s", strerror(errno));
		goto fail;
	}
	if (pthread_create(&w->thread, NULL, web_main, w)) {
		snprintf(err, errlen, "web: cannot start its thread");
		goto fail;
	}
	w->running = true;
	return w;
fail:
	web_free(w);
	return NULL;
}

const char *web_address(const struct web *w)
{
	return w->addr;
}

void web_counters(const struct web *w, struct collector_counters *k)
{
#define X(name, kind, help) k->name = __atomic_load_n(&w->st.name, __ATOMIC_RELAXED);
	WEB_COUNTERS(X)
#undef X
}

void web_stop(struct web *w)
{
	uint64_t one = 1;

	if (!w)
		return;
	if (w->running) {
		if (write(w->stop_fd, &one, sizeof(one)) < 0)
			log_error("web: cannot stop its thread: %s", strerror(errno));
		pthread_join(w->thread, NULL);
	}
	web_free(w);
}
