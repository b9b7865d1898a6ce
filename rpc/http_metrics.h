/* SPDX-License-Identifier: MIT */
/*
 * http_metrics.h - the /metrics listener of both programs: a minimal
 * HTTP/1.1 server that answers GET /metrics with a text the caller renders
 * (Prometheus exposition, core/metrics.h) and nothing else.
 *
 * Bounded in every way a client could abuse: a request (line and headers)
 * of at most HTTP_METRICS_MAX_REQUEST bytes, HTTP_METRICS_TIMEOUT_MS to
 * send it and as long to take the answer, at most HTTP_METRICS_MAX_CLIENTS
 * connections at once (more are closed at once), one request per
 * connection (Connection: close).  With a health callback
 * (http_metrics_set_health()), GET /healthz answers 200 "SERVING" or 503
 * "NOT_SERVING", for probes that speak HTTP (a Kubernetes httpGet probe:
 * the kubelet's gRPC probe cannot do TLS).  Answers: 200, 404 for another path, 405
 * for another method, 400 for what is not an HTTP/1.x request, 431 for a
 * request too large, 500 when rendering failed.  Each refusal is counted
 * (struct http_metrics_stats), never logged: a client cannot flood the log.
 *
 * Never blocks: every socket is non-blocking, and the whole server is one
 * epoll descriptor (http_metrics_fd()) that the caller polls in its own
 * loop (the collector) or in a thread of its own (the agent), calling
 * http_metrics_step() when it is readable.  Timeouts use a timerfd inside
 * it, so they fire without the caller keeping time.
 */
#ifndef FLOWPIC_RPC_HTTP_METRICS_H
#define FLOWPIC_RPC_HTTP_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_METRICS_MAX_CLIENTS 4
#define HTTP_METRICS_MAX_REQUEST 4096
#define HTTP_METRICS_TIMEOUT_MS 5000

/* What the listener did; cumulative.  Updated atomically: any thread may read. */
struct http_metrics_stats {
	uint64_t scrapes;	  /* 200 answers */
	uint64_t health;	  /* GET /healthz answered (200 or 503) */
	uint64_t err_busy;	  /* connections closed at once: HTTP_METRICS_MAX_CLIENTS open */
	uint64_t err_not_found;	  /* 404: another path */
	uint64_t err_method;	  /* 405: another method */
	uint64_t err_bad_request; /* 400: not an HTTP/1.x request */
	uint64_t err_too_large;	  /* 431: request over HTTP_METRICS_MAX_REQUEST */
	uint64_t err_timeout;	  /* request not whole, or answer not taken, in time */
	uint64_t err_io;	  /* accept, read or write failed; 500 (rendering failed) */
};
#define HTTP_METRICS_NSTATS 9

/* One of the stats with its counters-line name ("metrics_scrapes", ...) and help. */
struct http_metrics_stat {
	const char *name;
	const char *help;
	uint64_t value;
};

/* The stats as (name, help, value), in a fixed order; returns how many (<= max). */
size_t http_metrics_stats_list(const struct http_metrics_stats *st, struct http_metrics_stat *out,
			       size_t max);

/*
 * The answer's body: a malloc'd text in *body (the server frees it) and
 * its length.  0, or a negative errno (the client gets 500).  Called from
 * whichever thread calls http_metrics_step().
 */
typedef int (*http_metrics_render_fn)(void *ctx, char **body, size_t *len);

struct http_metrics;

/*
 * Listen on "HOST:PORT", "[V6]:PORT" or ":PORT" (":PORT" is loopback,
 * 127.0.0.1; port 0: any free port).  NULL and one line in err on failure
 * ("--metrics-listen ADDR: ...").
 */
struct http_metrics *http_metrics_new(const char *listen, http_metrics_render_fn render, void *ctx,
				      char *err, size_t errlen);
/* GET /healthz: 1 healthy (200), 0 not (503).  Without it /healthz is 404. */
typedef int (*http_metrics_health_fn)(void *ctx);
void http_metrics_set_health(struct http_metrics *h, http_metrics_health_fn health);

/* The address bound ("127.0.0.1:9101"). */
const char *http_metrics_address(const struct http_metrics *h);
/* The descriptor to poll for EPOLLIN. */
int http_metrics_fd(const struct http_metrics *h);
/* Handle what is ready, waiting at most timeout_ms for it (-1: until
 * something happens or http_metrics_stop()). */
void http_metrics_step(struct http_metrics *h, int timeout_ms);
/* From any thread: make step() return, and stopping() true. */
void http_metrics_stop(struct http_metrics *h);
bool http_metrics_stopping(const struct http_metrics *h);
/* A snapshot of the stats (any thread). */
void http_metrics_get_stats(const struct http_metrics *h, struct http_metrics_stats *out);
/* Close every connection and the listener. */
void http_metrics_free(struct http_metrics *h);

#endif
