/* SPDX-License-Identifier: MIT */
/*
 * web_int.h - what the dashboard's files share (not an interface for
 * anyone else): the server and its clients (web.c: thread, epoll loop,
 * sockets, TLS), answers and static files (http.c), sessions and CSRF
 * (auth.c), the JSON API (api.c), the store queries (queries.h), the live
 * feed (live.h), uploads (upload.c) and HTTP/2 (h2.c).  Everything here runs in the web
 * thread but for what live.h and upload.c say.
 */
#ifndef FLOWPIC_COLLECTOR_WEB_INT_H
#define FLOWPIC_COLLECTOR_WEB_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#include "collector/identity.h"
#include "core/sbuf.h"
#include "rpc/http1.h"
#include "web.h"

#define WEB_MAX_CLIENTS 128 /* connections and HTTP/2 streams */
#define WEB_MAX_SSE 16
#define WEB_MAX_SESSIONS 1024
#define WEB_SESSION_S 43200	  /* a session lasts 12 h (the cookie's Max-Age) */
#define WEB_HEAD_MAX 16384	  /* request line and headers */
#define WEB_BODY_MAX 65536	  /* a body that is not an upload */
#define WEB_TIMEOUT_MS 30000	  /* a request must arrive, an answer be taken, within */
#define WEB_SSE_PING_MS 15000	  /* ": ping" to SSE clients this often */
#define WEB_SSE_OUT_MAX (4 << 20) /* an SSE client's unsent output, at most */
#define WEB_STATIC_MAX (16 << 20) /* a static file, at most */

/* The answer's headers on every response (docs/dashboard.md, "Security"). */
#define WEB_CSP \
	"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " \
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

struct web_stats {
#define X(name, kind, help) uint64_t name;
	WEB_COUNTERS(X)
#undef X
};
#define WEB_BUMP(w, name) __atomic_fetch_add(&(w)->st.name, 1, __ATOMIC_RELAXED)

enum client_state {
	CL_FREE,
	CL_TLS,	   /* TLS handshake */
	CL_HEAD,   /* reading a request's head */
	CL_BODY,   /* reading its body (into in[], or the upload's memfd) */
	CL_WAIT,   /* the upload is being classified */
	CL_WRITE,  /* sending the answer */
	CL_SSE,	   /* the live feed: open until the client goes */
	CL_LINGER, /* answered with Connection: close: waiting for the client to close */
	CL_H2,	   /* an HTTP/2 connection: its requests are streams in slots of their own */
};

struct session {
	char id[65];   /* 256 random bits, hex: the fp_session cookie */
	char csrf[65]; /* the X-CSRF-Token every POST must carry */
	char user[65];
	const char *via; /* "token" or "cert" */
	uint64_t expires_ms;
};

struct client {
	enum client_state state;
	uint64_t gen; /* which connection this slot holds (an upload's answer finds it) */
	int fd;
	SSL *ssl;
	char peer[64];
	char *in; /* WEB_HEAD_MAX + WEB_BODY_MAX bytes */
	size_t in_len;
	struct http1_request req; /* points into in */
	uint64_t body_len, body_have;
	int upload_fd;	 /* a memfd receiving an upload, or -1 */
	struct sbuf out; /* the answer, from out_off on still to send */
	size_t out_off;
	bool keep_alive;      /* after this answer, read the next request */
	bool want_write;      /* TLS: the last call wants the socket writable */
	uint64_t deadline_ms; /* CL_TLS, CL_HEAD, CL_BODY, CL_WRITE, CL_LINGER */
	uint64_t ping_ms;     /* CL_SSE: the next ": ping" */
	uint64_t sse_gap;     /* CL_SSE: verdicts this client missed, not yet told */
	char cert_cn[128];    /* a verified client certificate's CN ("": none) */
	/* The request being answered, from the head: */
	const struct session *sess;
	char set_cookie[256]; /* a Set-Cookie line to add ("": none) */
	bool api;	      /* /api/...: no-store, JSON errors */
	/* HTTP/2 (h2.c).  A stream's slot: */
	struct client *h2; /* its connection's slot (NULL: not a stream) */
	int32_t stream_id;
	struct h2req *hreq; /* the head while it arrives */
	bool req_ended;	    /* the client's side ended (END_STREAM) */
	bool stream_gone;   /* nghttp2 closed the stream */
	/* A connection's slot (CL_H2): */
	nghttp2_session *ngh;
	struct web *web;   /* for nghttp2's callbacks */
	unsigned nstreams; /* slots its streams hold */
	bool in_recv;	   /* inside nghttp2_session_mem_recv: send after it */
};

struct live;
struct upload;
struct webdb;

struct web {
	struct web_config cfg;
	int lfd, ep, stop_fd, tick_fd, rootfd;
	SSL_CTX *tls;
	struct token_map *tokens;
	struct store *store; /* read-only: store_build_query, pictures */
	struct webdb *db;    /* read-only: the dashboard's own queries */
	struct live *live;
	struct upload *up;
	pthread_t thread;
	bool running;
	char addr[80];
	struct web_stats st;
	int nsse;
	uint64_t next_gen;
	struct session sessions[WEB_MAX_SESSIONS];
	struct client c[WEB_MAX_CLIENTS];
	/* /api/agents: loss counters seen, to tell when they grow (api.c). */
	struct agent_seen *seen;
	size_t nseen;
	nghttp2_session_callbacks *h2cbs;
};

/* web.c */
void client_send(struct web *w, struct client *c); /* write what out holds */
void client_close(struct web *w, struct client *c);
uint64_t web_now_ms(void);
/* A free slot, zeroed (fd -1, a new gen), or NULL: all are taken. */
struct client *client_slot(struct web *w);
/* >0 bytes read, 0 the peer closed, -EAGAIN, -EIO. */
ssize_t client_io_read(struct client *c, void *buf, size_t n);
/* A request's head is in c->req: check it and go on to its body. */
void web_on_head(struct web *w, struct client *c);
/* More of the body is in: answer once it is whole. */
void web_body_check(struct web *w, struct client *c);

/* http.c: answers.  Every answer carries the security headers; code 4xx
 * and 5xx answers of http_error count in the web_* counter of the code. */
/* The status and headers (no Content-Length with len SIZE_MAX: a stream
 * that ends when the connection or the HTTP/2 stream does). */
int http_head(struct web *w, struct client *c, int code, const char *type, size_t len,
	      const char *extra);
void http_answer(struct web *w, struct client *c, int code, const char *type, const char *body,
		 size_t len, const char *extra);
void http_json(struct web *w, struct client *c, struct sbuf *body);
void http_error(struct web *w, struct client *c, int code, const char *msg);
void http_redirect(struct web *w, struct client *c, const char *location);
const char *http_reason(int code);
/* The query parameter key of the request's target, URL-decoded into out:
 * its length, -ENOENT (absent), -EINVAL (bad escape, NUL, too long). */
int http_param(const struct client *c, const char *key, char *out, size_t outlen);
/* The same for an application/x-www-form-urlencoded body. */
int http_form(const char *body, size_t len, const char *key, char *out, size_t outlen);
/* GET of a page or a static file. */
void http_static(struct web *w, struct client *c);

/* auth.c */
/* The session of the request's cookie (also made for a verified client
 * certificate), or NULL. */
const struct session *auth_session(struct web *w, struct client *c);
bool auth_csrf_ok(const struct client *c, const struct session *s);
void auth_login(struct web *w, struct client *c, const char *body, size_t len);
void auth_logout(struct web *w, struct client *c);
void auth_session_json(struct web *w, struct client *c);

/* api.c */
void api_overview(struct web *w, struct client *c);
void api_flows(struct web *w, struct client *c);
void api_flow(struct web *w, struct client *c);
void api_agents(struct web *w, struct client *c);
void api_free(struct web *w);
/* A picture as /api/flow's "cells" (and the upload's pictures) have it:
 * {"rows","cols","planes","window_ns","index":[...],"count":[...]}. */
void api_cells_json(struct sbuf *b, const struct store_cells *c);

/* h2.c */
int h2_init(struct web *w, char *err, size_t errlen);
void h2_free(struct web *w);
/* 1: buf starts with the client's connection preface; -EAGAIN: with a
 * part of it, wait for more; 0: not HTTP/2. */
int h2_preface(const char *buf, size_t len);
/* Speak HTTP/2 on c from now on (the n bytes at in already read). */
void h2_start(struct web *w, struct client *c, const char *in, size_t n);
/* The connection's socket is readable. */
void h2_read(struct web *w, struct client *c);
/* The connection's output drained: more frames from nghttp2 into out
 * (true: some were added).  c may be closed after (state CL_FREE). */
bool h2_pull(struct web *w, struct client *c);
/* The connection has nothing more to say or hear: close it. */
bool h2_finished(const struct client *c);
/* Submit a stream's status and headers ("Name: value\r\n" lines). */
int h2_respond(struct web *w, struct client *c, int code, const char *fields, size_t len);
/* A stream's out grew: have nghttp2 send it. */
void h2_stream_kick(struct web *w, struct client *c);
/* Before a stream's slot is freed: reset it if open, detach it. */
void h2_stream_release(struct web *w, struct client *c);
/* Before a connection's slot is freed: its streams, its session. */
void h2_conn_release(struct web *w, struct client *c);

#endif
