// SPDX-License-Identifier: MIT
/* http_metrics.c - the GET /metrics listener; see http_metrics.h. */
#include "http_metrics.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "hostport.h"
#include "http1.h"

#define TICK_MS 250    /* timeout resolution while a client is connected */
#define LINGER_MS 1000 /* answer sent: the client has this long to close first */
#define PAUSE_MS 1000  /* accept failed (fd limit): the listener rests this long */
#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

enum { TAG_LISTEN = 1, TAG_TIMER, TAG_STOP, TAG_CLIENT = 16 };

enum client_state { C_FREE, C_READ, C_WRITE, C_LINGER };

struct client {
	enum client_state state;
	int fd;
	size_t req_len;
	char req[HTTP_METRICS_MAX_REQUEST];
	char *out;
	size_t out_len, out_off;
	uint64_t deadline_ms;
};

struct http_metrics {
	int lfd, ep, tfd, efd;
	bool paused, timer_on;
	int stopping;
	uint64_t paused_ms;
	http_metrics_render_fn render;
	http_metrics_health_fn health; /* NULL: no /healthz */
	void *ctx;
	struct http_metrics_stats st;
	char addr[80];
	struct client c[HTTP_METRICS_MAX_CLIENTS];
};

static const struct {
	const char *name, *help;
	size_t off;
} stat_desc[HTTP_METRICS_NSTATS] = {
#define S(f, help) \
	{ \
		"metrics_" #f, help, offsetof(struct http_metrics_stats, f) \
	}
	S(scrapes, "GET /metrics requests answered with the metrics (200)"),
	S(health, "GET /healthz requests answered (200 serving, 503 not)"),
	S(err_busy, "metrics connections closed at once: the most clients were already connected"),
	S(err_not_found, "metrics requests for another path (404)"),
	S(err_method, "metrics requests with another method than GET (405)"),
	S(err_bad_request, "metrics requests that were not HTTP/1.x (400)"),
	S(err_too_large, "metrics requests larger than 4096 bytes (431)"),
	S(err_timeout,
	  "metrics connections closed because the request or the answer took over 5 s"),
	S(err_io,
	  "metrics listener failures: accept, read or write errors, rendering failed (500)"),
#undef S
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Stats are written by the serving thread and read by any. */
static void bump(uint64_t *counter)
{
	__atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}

void http_metrics_get_stats(const struct http_metrics *h, struct http_metrics_stats *out)
{
	size_t i;

	for (i = 0; i < HTTP_METRICS_NSTATS; i++)
		*(uint64_t *)((char *)out + stat_desc[i].off) =
			__atomic_load_n((const uint64_t *)((const char *)&h->st + stat_desc[i].off),
					__ATOMIC_RELAXED);
}

size_t http_metrics_stats_list(const struct http_metrics_stats *st, struct http_metrics_stat *out,
			       size_t max)
{
	size_t i;

	for (i = 0; i < HTTP_METRICS_NSTATS && i < max; i++)
		out[i] = (struct http_metrics_stat){ stat_desc[i].name, stat_desc[i].help,
						     *(const uint64_t *)((const char *)st +
									 stat_desc[i].off) };
	return i;
}

/* The timer ticks only while something waits for a deadline. */
static void timer_update(struct http_metrics *h)
{
	struct itimerspec its = { 0 };
	bool need = h->paused;
	size_t i;

	for (i = 0; i < HTTP_METRICS_MAX_CLIENTS && !need; i++)
		need = h->c[i].state != C_FREE;
	if (need == h->timer_on)
		return;
	if (need) {
		its.it_interval.tv_nsec = TICK_MS * 1000000L;
		its.it_value = its.it_interval;
	}
	timerfd_settime(h->tfd, 0, &its, NULL);
	h->timer_on = need;
}

static void client_close(struct http_metrics *h, struct client *c)
{
	epoll_ctl(h->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->out);
	c->out = NULL;
	c->fd = -1;
	c->state = C_FREE;
}

static void client_events(struct http_metrics *h, struct client *c, uint32_t ev)
{
	struct epoll_event e = { .events = ev, .data.u32 = TAG_CLIENT + (uint32_t)(c - h->c) };

	epoll_ctl(h->ep, EPOLL_CTL_MOD, c->fd, &e);
}

/* Write what the client takes; all written: half-close and linger. */
static void client_write(struct http_metrics *h, struct client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			client_events(h, c, EPOLLOUT);
			return;
		}
		if (n <= 0) {
			bump(&h->st.err_io);
			client_close(h, c);
			return;
		}
		c->out_off += (size_t)n;
	}
	/* A close with unread input would reset the connection and could
	 * discard the answer at the client: half-close, let it close first. */
	shutdown(c->fd, SHUT_WR);
	free(c->out);
	c->out = NULL;
	c->state = C_LINGER;
	c->deadline_ms = mono_ms() + LINGER_MS;
	client_events(h, c, EPOLLIN);
}

/* Status line, headers, body (NULL: a short text saying the status). */
static void respond(struct http_metrics *h, struct client *c, int code, const char *reason,
		    const char *extra, char *body, size_t blen)
{
	char head[256], text[64];
	int hl;

	if (!body) {
		blen = (size_t)snprintf(text, sizeof(text), "%d %s\n", code, reason);
		body = text;
	}
	hl = snprintf(head, sizeof(head),
		      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
		      "Connection: close\r\n\r\n",
		      code, reason, code == 200 ? CONTENT_TYPE : "text/plain; charset=utf-8", blen,
		      extra ? extra : "");
	c->out = malloc((size_t)hl + blen);
	if (!c->out) {
		bump(&h->st.err_io);
		client_close(h, c);
		return;
	}
	memcpy(c->out, head, (size_t)hl);
	memcpy(c->out + hl, body, blen);
	c->out_len = (size_t)hl + blen;
	c->out_off = 0;
	c->state = C_WRITE;
	c->deadline_ms = mono_ms() + HTTP_METRICS_TIMEOUT_MS;
	client_write(h, c);
}

/* The request is whole (c->req, NUL-terminated): answer it. */
static void handle(struct http_metrics *h, struct client *c)
{
	struct http1_request r;
	char *body = NULL;
	size_t blen = 0;

	if (http1_parse(c->req, c->req_len, &r) < 0) {
		bump(&h->st.err_bad_request);
		respond(h, c, 400, "Bad Request", NULL, NULL, 0);
		return;
	}
	if (!http1_is(&r, "GET", NULL)) {
		bump(&h->st.err_method);
		respond(h, c, 405, "Method Not Allowed", "Allow: GET\r\n", NULL, 0);
		return;
	}
	if (h->health && http1_is(&r, "GET", "/healthz")) {
		bool ok = h->health(h->ctx) == 1;

		bump(&h->st.health);
		respond(h, c, ok ? 200 : 503, ok ? "OK" : "Service Unavailable", NULL,
			ok ? "SERVING\n" : "NOT_SERVING\n", ok ? 8 : 12);
		return;
	}
	if (!http1_is(&r, "GET", "/metrics")) {
		bump(&h->st.err_not_found);
		respond(h, c, 404, "Not Found", NULL, NULL, 0);
		return;
	}
	if (h->render(h->ctx, &body, &blen) < 0 || !body) {
		free(body);
		bump(&h->st.err_io);
		respond(h, c, 500, "Internal Server Error", NULL, NULL, 0);
		return;
	}
	bump(&h->st.scrapes);
	respond(h, c, 200, "OK", NULL, body, blen);
	free(body);
}

static void client_read(struct http_metrics *h, struct client *c)
{
	for (;;) {
		char sink[512];
		ssize_t n;

		if (c->state == C_LINGER) {
			n = recv(c->fd, sink, sizeof(sink), 0);
			if (n > 0)
				continue;
			if (n < 0 && (errno == EINTR))
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				return;
			client_close(h, c); /* the client closed: done */
			return;
		}
		if (c->state != C_READ)
			return;
		n = recv(c->fd, c->req + c->req_len, sizeof(c->req) - 1 - c->req_len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			/* Closed or failed before a whole request: nothing to answer. */
			if (n < 0)
				bump(&h->st.err_io);
			else
				bump(&h->st.err_bad_request);
			client_close(h, c);
			return;
		}
		c->req_len += (size_t)n;
		c->req[c->req_len] = '\0';
		if (strlen(c->req) != c->req_len) {
			bump(&h->st.err_bad_request); /* a NUL byte */
			respond(h, c, 400, "Bad Request", NULL, NULL, 0);
			return;
		}
		if (strstr(c->req, "\r\n\r\n") || strstr(c->req, "\n\n")) {
			handle(h, c);
			return;
		}
		if (c->req_len == sizeof(c->req) - 1) {
			bump(&h->st.err_too_large);
			respond(h, c, 431, "Request Header Fields Too Large", NULL, NULL, 0);
			return;
		}
	}
}

static void listener_pause(struct http_metrics *h, bool pause)
{
	struct epoll_event e = { .events = pause ? 0 : EPOLLIN, .data.u32 = TAG_LISTEN };

	epoll_ctl(h->ep, EPOLL_CTL_MOD, h->lfd, &e);
	h->paused = pause;
	h->paused_ms = mono_ms();
}

static void accept_all(struct http_metrics *h)
{
	for (;;) {
		int fd = accept4(h->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct epoll_event e = { .events = EPOLLIN };
		size_t i;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				/* EMFILE and the like: the listener stays readable;
				 * polling it would spin. */
				bump(&h->st.err_io);
				listener_pause(h, true);
			}
			return;
		}
		for (i = 0; i < HTTP_METRICS_MAX_CLIENTS && h->c[i].state != C_FREE; i++)
			;
		if (i == HTTP_METRICS_MAX_CLIENTS) {
			bump(&h->st.err_busy);
			close(fd);
			continue;
		}
		e.data.u32 = TAG_CLIENT + (uint32_t)i;
		if (epoll_ctl(h->ep, EPOLL_CTL_ADD, fd, &e)) {
			bump(&h->st.err_io);
			close(fd);
			continue;
		}
		h->c[i] = (struct client){ .state = C_READ,
					   .fd = fd,
					   .deadline_ms = mono_ms() + HTTP_METRICS_TIMEOUT_MS };
	}
}

static void check_deadlines(struct http_metrics *h)
{
	uint64_t t = mono_ms();
	size_t i;

	if (h->paused && t - h->paused_ms >= PAUSE_MS)
		listener_pause(h, false);
	for (i = 0; i < HTTP_METRICS_MAX_CLIENTS; i++) {
		struct client *c = &h->c[i];

		if (c->state == C_FREE || t < c->deadline_ms)
			continue;
		if (c->state != C_LINGER)
			bump(&h->st.err_timeout);
		client_close(h, c);
	}
}

void http_metrics_step(struct http_metrics *h, int timeout_ms)
{
	struct epoll_event ev[HTTP_METRICS_MAX_CLIENTS + 3];
	uint64_t v;
	int n, i;

	n = epoll_wait(h->ep, ev, (int)(sizeof(ev) / sizeof(ev[0])), timeout_ms);
	for (i = 0; i < n; i++) {
		uint32_t tag = ev[i].data.u32;

		if (tag == TAG_LISTEN) {
			accept_all(h);
		} else if (tag == TAG_TIMER) {
			if (read(h->tfd, &v, sizeof(v)) < 0)
				v = 0;
			check_deadlines(h);
		} else if (tag == TAG_STOP) {
			if (read(h->efd, &v, sizeof(v)) < 0)
				v = 0;
			__atomic_store_n(&h->stopping, 1, __ATOMIC_RELAXED);
		} else if (tag >= TAG_CLIENT && tag < TAG_CLIENT + HTTP_METRICS_MAX_CLIENTS) {
			struct client *c = &h->c[tag - TAG_CLIENT];

			if (c->state == C_WRITE)
				client_write(h, c);
			else if (c->state != C_FREE)
				client_read(h, c);
		}
	}
	timer_update(h);
}

void http_metrics_stop(struct http_metrics *h)
{
	uint64_t one = 1;

	if (write(h->efd, &one, sizeof(one)) < 0)
		__atomic_store_n(&h->stopping, 1, __ATOMIC_RELAXED);
}

bool http_metrics_stopping(const struct http_metrics *h)
{
	return __atomic_load_n(&h->stopping, __ATOMIC_RELAXED) != 0;
}

int http_metrics_fd(const struct http_metrics *h)
{
	return h->ep;
}

void http_metrics_set_health(struct http_metrics *h, http_metrics_health_fn health)
{
	h->health = health;
}

const char *http_metrics_address(const struct http_metrics *h)
{
	return h->addr;
}

static int add_fd(int ep, int fd, uint32_t tag)
{
	struct epoll_event e = { .events = EPOLLIN, .data.u32 = tag };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
}

struct http_metrics *http_metrics_new(const char *listen_addr, http_metrics_render_fn render,
				      void *ctx, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	struct http_metrics *h = calloc(1, sizeof(*h));
	struct addrinfo *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[256], port[32], hbuf[NI_MAXHOST], pbuf[NI_MAXSERV];
	int one = 1, rc;
	size_t i;

	if (!h) {
		snprintf(err, errlen, "--metrics-listen %s: out of memory", listen_addr);
		return NULL;
	}
	h->lfd = h->ep = h->tfd = h->efd = -1;
	for (i = 0; i < HTTP_METRICS_MAX_CLIENTS; i++)
		h->c[i].fd = -1;
	h->render = render;
	h->ctx = ctx;
	if (rpc_hostport_parse(listen_addr, RPC_HOSTPORT_LISTEN, host, sizeof(host), port,
			       sizeof(port))) {
		snprintf(err, errlen,
			 "--metrics-listen %s: give HOST:PORT, [IPV6]:PORT or :PORT (loopback)",
			 listen_addr);
		goto fail;
	}
	/* Off the loopback only when asked by name: the metrics have no access control. */
	rc = getaddrinfo(*host ? host : "127.0.0.1", port, &hints, &ai);
	if (rc) {
		snprintf(err, errlen, "--metrics-listen %s: %s", listen_addr, gai_strerror(rc));
		goto fail;
	}
	h->lfd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (h->lfd < 0 || setsockopt(h->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(h->lfd, ai->ai_addr, ai->ai_addrlen) || listen(h->lfd, 16)) {
		snprintf(err, errlen, "--metrics-listen %s: %s", listen_addr, strerror(errno));
		goto fail;
	}
	if (getsockname(h->lfd, (struct sockaddr *)&ss, &sl) == 0 &&
	    getnameinfo((struct sockaddr *)&ss, sl, hbuf, sizeof(hbuf), pbuf, sizeof(pbuf),
			NI_NUMERICHOST | NI_NUMERICSERV) == 0)
		snprintf(h->addr, sizeof(h->addr), ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s",
			 hbuf, pbuf);
	h->ep = epoll_create1(EPOLL_CLOEXEC);
	h->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	h->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (h->ep < 0 || h->tfd < 0 || h->efd < 0 || add_fd(h->ep, h->lfd, TAG_LISTEN) ||
	    add_fd(h->ep, h->tfd, TAG_TIMER) || add_fd(h->ep, h->efd, TAG_STOP)) {
		snprintf(err, errlen, "--metrics-listen %s: epoll/timerfd/eventfd: %s", listen_addr,
			 strerror(errno));
		goto fail;
	}
	freeaddrinfo(ai);
	return h;
fail:
	if (ai)
		freeaddrinfo(ai);
	http_metrics_free(h);
	return NULL;
}

void http_metrics_free(struct http_metrics *h)
{
	size_t i;

	if (!h)
		return;
	for (i = 0; i < HTTP_METRICS_MAX_CLIENTS; i++)
		if (h->c[i].state != C_FREE)
			client_close(h, &h->c[i]);
	if (h->lfd >= 0)
		close(h->lfd);
	if (h->ep >= 0)
		close(h->ep);
	if (h->tfd >= 0)
		close(h->tfd);
	if (h->efd >= 0)
		close(h->efd);
	free(h);
}
