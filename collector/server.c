// SPDX-License-Identifier: MIT
/*
 * server.c - epoll loop, connections (TLS or cleartext), HTTP/2 sessions
 * (nghttp2, memory-buffer I/O), gRPC calls, group commit and acks.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>

#include "flowpic.pb-c.h"
#include "grpc_frame.h"
#include "grpc_status.h"
#include "log.h"
#include "rpc_error.h"
#include "server.h"
#include "tls.h"
#include "token.h"

#define READ_CHUNK (64 * 1024)
#define READ_BUDGET (1024 * 1024)	/* bytes per connection per wake-up: fairness */
#define OUT_MAX (1024 * 1024)		/* buffered output beyond which reading pauses */
#define ACK_MAX_LEN 32			/* a packed Ack plus its prefix, at most */

struct ack {
	uint64_t sequence;
	uint32_t stored, duplicates, rejected;
	size_t txn_idx;		/* the batch's place in the store's transaction */
};

struct ackq {
	struct ack *a;
	size_t len, cap, head;	/* a[head..len) are queued */
};

struct conn;

struct stream {
	struct conn *c;
	int32_t id;
	struct stream *next_in_conn, *prev_in_conn;
	struct stream *next_pending, *prev_pending;
	bool on_pending;
	/* Request headers. */
	bool method_post, path_ok, path_seen, ct_ok, auth_ok, encoding_bad;
	char path[96];
	/* State. */
	bool started;		/* headers validated, response submitted */
	bool client_done;	/* END_STREAM received */
	bool failed;		/* status decided: no more input read */
	bool deferred;		/* the data provider is waiting */
	bool trailers_sent;
	int status;
	char message[200];
	struct grpc_reader rd;
	struct ackq uncommitted, ready;
	uint64_t batches;
	size_t unconsumed;	/* DATA bytes read but not yet given back as window */
};

enum conn_state { CONN_TLS_HANDSHAKE, CONN_H2 };

struct conn {
	struct server *srv;
	int fd;
	SSL *ssl;
	enum conn_state state;
	nghttp2_session *h2;
	char peer[64];
	struct conn *next, *prev;
	struct stream *streams;
	uint8_t *out;
	size_t out_len, out_off, out_cap;
	uint64_t created_ms, last_io_ms, stuck_since_ms;
	uint32_t events;	/* epoll mask registered */
	size_t acks_waiting;	/* ready acks of all streams */
	size_t unconsumed;	/* sum of the streams' unconsumed */
	bool closing, dirty, logged_h2_error, preface_done;
};

struct server {
	struct server_config cfg;
	struct store *store;
	int lfd, ep, sfd;
	char addr[80];
	struct conn *conns;
	uint32_t nconns;
	struct stream *pending;	/* streams with acks waiting for the commit */
	uint64_t txn_verdicts, txn_start_ms;
	uint64_t last_timer_ms;
	struct collector_counters k;
	nghttp2_session_callbacks *cbs;
	nghttp2_option *h2opt;
	uint8_t rbuf[READ_CHUNK];
};

/* ---- time, small helpers ---- */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void server_config_default(struct server_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->listen = "127.0.0.1:50051";
	cfg->max_message = GRPC_DEFAULT_MAX_MESSAGE;
	cfg->max_streams = 16;
	cfg->max_connections = 1024;
	cfg->max_pending_acks = 4096;
	cfg->idle_timeout_ms = 600000;
	cfg->slow_timeout_ms = 30000;
	cfg->handshake_timeout_ms = 10000;
	cfg->commit_max = 20000;
	cfg->commit_delay_ms = 50;
}

static int ackq_push(struct ackq *q, const struct ack *a)
{
	if (q->head > 0 && q->head == q->len)
		q->head = q->len = 0;
	if (q->len == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 16;
		struct ack *na;

		if (q->head > 0) { /* compact before growing */
			memmove(q->a, q->a + q->head, (q->len - q->head) * sizeof(*q->a));
			q->len -= q->head;
			q->head = 0;
			if (q->len < q->cap)
				goto put;
		}
		na = realloc(q->a, cap * sizeof(*na));
		if (!na)
			return -1;
		q->a = na;
		q->cap = cap;
	}
put:
	q->a[q->len++] = *a;
	return 0;
}

static size_t ackq_count(const struct ackq *q)
{
	return q->len - q->head;
}

static void ackq_free(struct ackq *q)
{
	free(q->a);
	memset(q, 0, sizeof(*q));
}

/* ---- streams ---- */

static void pending_unlink(struct server *s, struct stream *st)
{
	if (!st->on_pending)
		return;
	if (st->prev_pending)
		st->prev_pending->next_pending = st->next_pending;
	else
		s->pending = st->next_pending;
	if (st->next_pending)
		st->next_pending->prev_pending = st->prev_pending;
	st->next_pending = st->prev_pending = NULL;
	st->on_pending = false;
}

static void pending_link(struct server *s, struct stream *st)
{
	if (st->on_pending)
		return;
	st->prev_pending = NULL;
	st->next_pending = s->pending;
	if (s->pending)
		s->pending->prev_pending = st;
	s->pending = st;
	st->on_pending = true;
}

static void stream_free(struct stream *st)
{
	struct conn *c = st->c;

	pending_unlink(c->srv, st);
	if (st->prev_in_conn)
		st->prev_in_conn->next_in_conn = st->next_in_conn;
	else
		c->streams = st->next_in_conn;
	if (st->next_in_conn)
		st->next_in_conn->prev_in_conn = st->prev_in_conn;
	c->acks_waiting -= ackq_count(&st->ready);
	c->unconsumed -= st->unconsumed;
	grpc_reader_free(&st->rd);
	ackq_free(&st->uncommitted);
	ackq_free(&st->ready);
	free(st);
}

static void stream_wake(struct stream *st)
{
	if (st->deferred && st->started) {
		st->deferred = false;
		nghttp2_session_resume_data(st->c->h2, st->id);
	}
	st->c->dirty = true;
}

/* Decide the call's status; the data provider sends the trailers once the
 * acks already earned are out.  The first status wins. */
static void stream_fail(struct stream *st, int status, uint64_t *counter, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void stream_fail(struct stream *st, int status, uint64_t *counter, const char *fmt, ...)
{
	va_list ap;

	if (st->failed)
		return;
	st->failed = true;
	st->status = status;
	va_start(ap, fmt);
	vsnprintf(st->message, sizeof(st->message), fmt, ap);
	va_end(ap);
	if (counter)
		(*counter)++;
	log_warn("%s: stream %d: %s: ending the call with %s", st->c->peer, st->id, st->message,
		 grpc_status_name(status));
	stream_wake(st);
}

/* ---- the gRPC call ---- */

static int on_message(void *ctx, const uint8_t *msg, size_t len)
{
	struct stream *st = ctx;
	struct server *s = st->c->srv;
	Flowpic__V1__Batch *b;
	char err[512];
	struct ack a;
	size_t idx;

	b = flowpic__v1__batch__unpack(NULL, len, msg);
	if (!b) {
		stream_fail(st, GRPC_STATUS_INVALID_ARGUMENT, &s->k.err_bad_protobuf,
			    "batch %" PRIu64 " of the call: malformed protobuf Batch (%zu bytes)",
			    st->batches + 1, len);
		return -1;
	}
	if (!b->agent || !b->agent->agent_id || !*b->agent->agent_id) {
		stream_fail(st, GRPC_STATUS_INVALID_ARGUMENT, &s->k.err_bad_batch,
			    "batch sequence %" PRIu64 ": no agent.agent_id (a verdict's identity needs it)",
			    b->sequence);
		flowpic__v1__batch__free_unpacked(b, NULL);
		return -1;
	}
	if (!store_in_txn(s->store))
		s->txn_start_ms = now_ms();
	if (store_put_batch(s->store, b, wall_ns(), &idx, err, sizeof(err))) {
		struct stream *p, *next;

		/* The transaction is gone: every batch waiting for it is lost,
		 * so every call with such a batch ends UNAVAILABLE (the agents
		 * resend what was not acknowledged). */
		log_error("%s", err);
		s->k.err_store++;
		stream_fail(st, GRPC_STATUS_UNAVAILABLE, NULL, "store failed: %s", err);
		for (p = s->pending; p; p = next) {
			next = p->next_pending;
			p->uncommitted.len = p->uncommitted.head = 0;
			stream_fail(p, GRPC_STATUS_UNAVAILABLE, NULL, "store failed: %s", err);
			pending_unlink(s, p);
		}
		s->txn_verdicts = 0;
		flowpic__v1__batch__free_unpacked(b, NULL);
		return -1;
	}
	st->batches++;
	s->k.batches++;
	s->k.verdicts_received += b->n_verdicts;
	s->txn_verdicts += b->n_verdicts;
	memset(&a, 0, sizeof(a));
	a.sequence = b->sequence;
	a.txn_idx = idx;
	flowpic__v1__batch__free_unpacked(b, NULL);
	if (ackq_push(&st->uncommitted, &a)) {
		stream_fail(st, GRPC_STATUS_RESOURCE_EXHAUSTED, NULL, "out of memory queueing an ack");
		return -1;
	}
	pending_link(s, st);
	return 0;
}

static ssize_t data_read(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t length,
			 uint32_t *flags, nghttp2_data_source *src, void *user)
{
	struct stream *st = src->ptr;
	struct conn *c = user;
	size_t n = 0;

	(void)id;
	while (ackq_count(&st->ready) && n + ACK_MAX_LEN <= length) {
		struct ack *a = &st->ready.a[st->ready.head];
		Flowpic__V1__Ack m = FLOWPIC__V1__ACK__INIT;
		size_t sz;

		m.sequence = a->sequence;
		m.stored = a->stored;
		m.duplicates = a->duplicates;
		m.rejected = a->rejected;
		sz = flowpic__v1__ack__get_packed_size(&m);
		grpc_frame_prefix(buf + n, (uint32_t)sz);
		flowpic__v1__ack__pack(&m, buf + n + GRPC_PREFIX_LEN);
		n += GRPC_PREFIX_LEN + sz;
		st->ready.head++;
		c->acks_waiting--;
		c->srv->k.acks_sent++;
	}
	if (n)
		return (ssize_t)n;
	if ((st->failed || st->client_done) && !ackq_count(&st->uncommitted)) {
		char msg[sizeof(st->message) * 3 + 1], code[12];
		nghttp2_nv tr[2];
		size_t ntr = 1;

		if (!st->failed)
			st->status = GRPC_STATUS_OK;
		snprintf(code, sizeof(code), "%d", st->status);
		tr[0] = (nghttp2_nv){ (uint8_t *)GRPC_HDR_STATUS, (uint8_t *)code,
				      sizeof(GRPC_HDR_STATUS) - 1, strlen(code),
				      NGHTTP2_NV_FLAG_NONE };
		if (st->status != GRPC_STATUS_OK) {
			grpc_message_encode(st->message, msg, sizeof(msg));
			tr[1] = (nghttp2_nv){ (uint8_t *)GRPC_HDR_MESSAGE, (uint8_t *)msg,
					      sizeof(GRPC_HDR_MESSAGE) - 1, strlen(msg),
					      NGHTTP2_NV_FLAG_NONE };
			ntr = 2;
		}
		/* nghttp2 copies the trailer fields. */
		if (nghttp2_submit_trailer(h2, st->id, tr, ntr) == 0) {
			*flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
			st->trailers_sent = true;
			return 0;
		}
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	st->deferred = true;
	return NGHTTP2_ERR_DEFERRED;
}

/* The request headers are complete: check them and answer with the
 * response headers; the body (acks, then trailers) comes from data_read. */
static void stream_start(struct stream *st)
{
	struct server *s = st->c->srv;
	nghttp2_data_provider dp = { .source.ptr = st, .read_callback = data_read };
	nghttp2_nv hdrs[3];
	const char *code = "200";

	if (!st->method_post || !st->path_seen)
		code = "405";
	else if (!st->ct_ok)
		code = "415"; /* the gRPC spec's answer to a non-gRPC content-type */
	if (strcmp(code, "200")) {
		nghttp2_nv h = { (uint8_t *)":status", (uint8_t *)code, 7, 3, NGHTTP2_NV_FLAG_NONE };

		s->k.err_bad_request++;
		st->failed = true;
		log_warn("%s: stream %d: not a gRPC request (method, path or content-type): HTTP %s",
			 st->c->peer, st->id, code);
		nghttp2_submit_response(st->c->h2, st->id, &h, 1, NULL);
		st->c->dirty = true;
		return;
	}
	hdrs[0] = (nghttp2_nv){ (uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE };
	hdrs[1] = (nghttp2_nv){ (uint8_t *)"content-type", (uint8_t *)GRPC_CONTENT_TYPE, 12,
				sizeof(GRPC_CONTENT_TYPE) - 1, NGHTTP2_NV_FLAG_NONE };
	hdrs[2] = (nghttp2_nv){ (uint8_t *)GRPC_HDR_ACCEPT_ENCODING, (uint8_t *)"identity",
				sizeof(GRPC_HDR_ACCEPT_ENCODING) - 1, 8, NGHTTP2_NV_FLAG_NONE };
	if (nghttp2_submit_response(st->c->h2, st->id, hdrs, 3, &dp)) {
		nghttp2_submit_rst_stream(st->c->h2, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
		st->failed = true;
		return;
	}
	st->started = true;
	s->k.streams_opened++;
	if (!st->path_ok)
		stream_fail(st, GRPC_STATUS_UNIMPLEMENTED, &s->k.err_unknown_method,
			    "unknown method %s (this server has " COLLECTOR_PATH ")", st->path);
	else if (!st->auth_ok)
		stream_fail(st, GRPC_STATUS_UNAUTHENTICATED, &s->k.err_unauthenticated,
			    "missing or wrong access token (authorization: Bearer ...)");
	else if (st->encoding_bad)
		stream_fail(st, GRPC_STATUS_UNIMPLEMENTED, &s->k.err_compressed,
			    "grpc-encoding other than identity: no compression is supported");
	st->c->dirty = true;
}

static void frame_error(struct stream *st, int err)
{
	struct server *s = st->c->srv;
	uint64_t *counter = &s->k.err_grpc_frame;
	int status = GRPC_STATUS_INTERNAL;

	if (err == GRPC_FRAME_E_CALLBACK)
		return; /* on_message decided */
	if (err == GRPC_FRAME_E_TOO_BIG) {
		counter = &s->k.err_message_too_big;
		status = GRPC_STATUS_RESOURCE_EXHAUSTED;
	} else if (err == GRPC_FRAME_E_COMPRESSED) {
		counter = &s->k.err_compressed;
		status = GRPC_STATUS_UNIMPLEMENTED;
	} else if (err == GRPC_FRAME_E_TRUNCATED) {
		counter = &s->k.err_truncated;
	}
	if (err == GRPC_FRAME_E_TOO_BIG)
		stream_fail(st, status, counter, "%s (%u bytes)", rpc_strerror(err),
			    s->cfg.max_message);
	else
		stream_fail(st, status, counter, "%s", rpc_strerror(err));
}

/* ---- nghttp2 callbacks ---- */

static int on_begin_headers(nghttp2_session *h2, const nghttp2_frame *f, void *user)
{
	struct conn *c = user;
	struct stream *st;

	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	st = calloc(1, sizeof(*st));
	if (!st)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	st->c = c;
	st->id = f->hd.stream_id;
	st->auth_ok = c->srv->cfg.token == NULL;
	grpc_reader_init(&st->rd, c->srv->cfg.max_message);
	st->next_in_conn = c->streams;
	if (c->streams)
		c->streams->prev_in_conn = st;
	c->streams = st;
	nghttp2_session_set_stream_user_data(h2, st->id, st);
	return 0;
}

static bool hdr_is(const uint8_t *name, size_t len, const char *want)
{
	return len == strlen(want) && !memcmp(name, want, len);
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name,
		     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
		     void *user)
{
	struct conn *c = user;
	struct stream *st;

	(void)flags;
	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	st = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id);
	if (!st)
		return 0;
	if (hdr_is(name, namelen, ":method")) {
		st->method_post = valuelen == 4 && !memcmp(value, "POST", 4);
	} else if (hdr_is(name, namelen, ":path")) {
		size_t n = valuelen < sizeof(st->path) - 1 ? valuelen : sizeof(st->path) - 1;
		size_t i;

		st->path_seen = true;
		st->path_ok = hdr_is(value, valuelen, COLLECTOR_PATH);
		memcpy(st->path, value, n);
		st->path[n] = '\0';
		for (i = 0; i < n; i++) /* the path goes into a log line */
			if ((unsigned char)st->path[i] < 0x21 || (unsigned char)st->path[i] > 0x7e)
				st->path[i] = '?';
	} else if (hdr_is(name, namelen, "content-type")) {
		/* "application/grpc", "application/grpc+proto", "application/grpc;..." */
		st->ct_ok = valuelen >= 16 && !memcmp(value, GRPC_CONTENT_TYPE, 16) &&
			    (valuelen == 16 || value[16] == '+' || value[16] == ';');
	} else if (hdr_is(name, namelen, GRPC_HDR_AUTHORIZATION)) {
		if (c->srv->cfg.token)
			st->auth_ok = rpc_token_check(c->srv->cfg.token, (const char *)value, valuelen);
	} else if (hdr_is(name, namelen, GRPC_HDR_ENCODING)) {
		st->encoding_bad = !hdr_is(value, valuelen, "identity");
	}
	return 0;
}

static int on_frame_recv(nghttp2_session *h2, const nghttp2_frame *f, void *user)
{
	struct conn *c = user;
	struct stream *st;
	int err;

	c->preface_done = true;
	if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
		return 0;
	st = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id);
	if (!st)
		return 0;
	if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST)
		stream_start(st);
	if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) {
		st->client_done = true;
		if (!st->failed && (err = grpc_reader_finish(&st->rd)) != 0)
			frame_error(st, err);
		stream_wake(st);
	}
	return 0;
}

static bool conn_backlogged(const struct conn *c);

static int on_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data,
			 size_t len, void *user)
{
	struct stream *st = nghttp2_session_get_stream_user_data(h2, id);
	struct conn *c = user;
	int err;

	(void)flags;
	if (!st) {
		nghttp2_session_consume_connection(h2, len);
		return 0;
	}
	/* A refused call's body is read and dropped. */
	if (!st->failed && st->started) {
		err = grpc_reader_feed(&st->rd, data, len, on_message, st);
		if (err)
			frame_error(st, err);
	}
	/* Flow control is the back-pressure: while the peer leaves its acks
	 * unread, the window it used is not given back, so it must stop
	 * sending; we keep reading (its WINDOW_UPDATEs, PINGs). */
	if (conn_backlogged(c)) {
		st->unconsumed += len;
		c->unconsumed += len;
	} else {
		nghttp2_session_consume(h2, id, len);
	}
	return 0;
}

static void h2_error(struct conn *c, const char *what);

static int on_frame_send(nghttp2_session *h2, const nghttp2_frame *f, void *user)
{
	struct stream *st;

	/* nghttp2 found a connection error itself (some, like a bad frame
	 * size, reach no other callback): its GOAWAY says which. */
	if (f->hd.type == NGHTTP2_GOAWAY && f->goaway.error_code != NGHTTP2_NO_ERROR) {
		char what[96];

		snprintf(what, sizeof(what), "answered with GOAWAY %s",
			 nghttp2_http2_strerror(f->goaway.error_code));
		h2_error(user, what);
		return 0;
	}
	if (f->hd.type != NGHTTP2_HEADERS || !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	st = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id);
	/* The response is complete but the client still sends: tell it to stop
	 * (RFC 9113 8.1: RST_STREAM with NO_ERROR). */
	if (st && !st->client_done)
		nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
	return 0;
}

static int on_stream_close(nghttp2_session *h2, int32_t id, uint32_t code, void *user)
{
	struct conn *c = user;
	struct stream *st = nghttp2_session_get_stream_user_data(h2, id);

	if (!st)
		return 0;
	if (st->unconsumed) {
		nghttp2_session_consume_connection(h2, st->unconsumed);
		c->unconsumed -= st->unconsumed;
		st->unconsumed = 0;
	}
	if (st->trailers_sent && st->status == GRPC_STATUS_OK)
		c->srv->k.streams_ok++;
	else if (!st->trailers_sent && code != NGHTTP2_NO_ERROR)
		c->srv->k.streams_reset_by_peer++;
	nghttp2_session_set_stream_user_data(h2, id, NULL);
	stream_free(st);
	return 0;
}

/* Counted once per connection: err_http2_protocol is the number of
 * connections that sent malformed HTTP/2; each is logged once. */
static void h2_error(struct conn *c, const char *what)
{
	if (c->logged_h2_error)
		return;
	c->logged_h2_error = true;
	c->srv->k.err_http2_protocol++;
	log_warn("%s: malformed HTTP/2 (%s)", c->peer, what);
}

static int on_invalid_frame(nghttp2_session *h2, const nghttp2_frame *f, int lib_err, void *user)
{
	char what[160];

	(void)h2;
	snprintf(what, sizeof(what), "invalid frame of type %u on stream %d: %s", f->hd.type,
		 f->hd.stream_id, nghttp2_strerror(lib_err));
	h2_error(user, what);
	return 0;
}

static int on_h2_error(nghttp2_session *h2, int lib_err, const char *msg, size_t len, void *user)
{
	char what[200];

	(void)h2;
	snprintf(what, sizeof(what), "%.*s [%s]", (int)(len < 150 ? len : 150), msg,
		 nghttp2_strerror(lib_err));
	h2_error(user, what);
	return 0;
}

/* ---- connections ---- */

static void conn_set_events(struct conn *c, uint32_t ev)
{
	struct epoll_event e = { .events = ev, .data.ptr = c };

	if (ev == c->events)
		return;
	if (epoll_ctl(c->srv->ep, EPOLL_CTL_MOD, c->fd, &e) == 0)
		c->events = ev;
}

static void conn_close(struct conn *c, const char *why)
{
	struct server *s = c->srv;

	if (why)
		log_info("%s: connection closed: %s", c->peer, why);
	while (c->streams) {
		if (c->h2)
			nghttp2_session_set_stream_user_data(c->h2, c->streams->id, NULL);
		stream_free(c->streams);
	}
	if (c->h2)
		nghttp2_session_del(c->h2);
	if (c->ssl) {
		if (c->state == CONN_H2)
			SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c->out);
	free(c);
	s->nconns--;
	s->k.connections_open--;
	s->k.connections_closed++;
}

/* Raw write: bytes written, 0 would block, -1 error. */
static ssize_t conn_write(struct conn *c, const uint8_t *p, size_t n)
{
	if (c->ssl) {
		int r;

		ERR_clear_error();
		r = SSL_write(c->ssl, p, (int)(n > INT32_MAX ? INT32_MAX : n));
		if (r > 0)
			return r;
		r = SSL_get_error(c->ssl, r);
		return r == SSL_ERROR_WANT_WRITE || r == SSL_ERROR_WANT_READ ? 0 : -1;
	}
	for (;;) {
		ssize_t r = send(c->fd, p, n, MSG_NOSIGNAL);

		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
	}
}

static int out_append(struct conn *c, const uint8_t *p, size_t n)
{
	if (c->out_off > 0 && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_len + n > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 16384;
		uint8_t *nb;

		if (c->out_off) {
			memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
			c->out_len -= c->out_off;
			c->out_off = 0;
		}
		while (cap < c->out_len + n)
			cap *= 2;
		if (cap != c->out_cap) {
			nb = realloc(c->out, cap);
			if (!nb)
				return -1;
			c->out = nb;
			c->out_cap = cap;
		}
	}
	memcpy(c->out + c->out_len, p, n);
	c->out_len += n;
	return 0;
}

/* Everything nghttp2 wants to send, as far as the socket takes it.
 * 0 ok (maybe blocked), -1 the connection must close. */
static void release_windows(struct conn *c);

static int conn_flush(struct conn *c)
{
	uint64_t t = now_ms();

	c->dirty = false;
	for (;;) {
		const uint8_t *p;
		ssize_t n, w;

		release_windows(c);
		if (c->out_off < c->out_len) {
			w = conn_write(c, c->out + c->out_off, c->out_len - c->out_off);
			if (w < 0) {
				c->srv->k.err_io++;
				return -1;
			}
			c->out_off += (size_t)w;
			c->srv->k.bytes_out += (uint64_t)w;
			if (w > 0)
				c->last_io_ms = t;
			if (c->out_off < c->out_len)
				break;
			c->out_off = c->out_len = 0;
		}
		if (!c->h2)
			break;
		n = nghttp2_session_mem_send(c->h2, &p);
		if (n < 0) {
			log_warn("%s: HTTP/2 send: %s", c->peer, nghttp2_strerror((int)n));
			return -1;
		}
		if (n == 0)
			break;
		w = conn_write(c, p, (size_t)n);
		if (w < 0) {
			c->srv->k.err_io++;
			return -1;
		}
		c->srv->k.bytes_out += (uint64_t)w;
		if (w > 0)
			c->last_io_ms = t;
		if (w < n && out_append(c, p + w, (size_t)(n - w)))
			return -1;
	}
	return 0;
}

/* The peer is not taking what we owe it: acks or bytes pile up. */
static bool conn_backlogged(const struct conn *c)
{
	return c->out_len - c->out_off > OUT_MAX || c->acks_waiting > c->srv->cfg.max_pending_acks;
}

/* The backlog cleared: give the peer its window back. */
static void release_windows(struct conn *c)
{
	struct stream *st;

	if (!c->unconsumed || !c->h2 || conn_backlogged(c))
		return;
	for (st = c->streams; st; st = st->next_in_conn) {
		if (st->unconsumed) {
			nghttp2_session_consume(c->h2, st->id, st->unconsumed);
			st->unconsumed = 0;
		}
	}
	c->unconsumed = 0;
}

/* After I/O: close if done, else set the epoll mask; track stuck time. */
static void conn_settle(struct conn *c)
{
	bool blocked = c->out_off < c->out_len;

	if (c->state == CONN_H2 && !nghttp2_session_want_read(c->h2) &&
	    !nghttp2_session_want_write(c->h2) && !blocked) {
		conn_close(c, "HTTP/2 session ended");
		return;
	}
	/* Always read: back-pressure is the HTTP/2 window (on_data_chunk). */
	conn_set_events(c, EPOLLIN | (blocked ? EPOLLOUT : 0));
	if (blocked || conn_backlogged(c)) {
		if (!c->stuck_since_ms)
			c->stuck_since_ms = now_ms();
	} else {
		c->stuck_since_ms = 0;
	}
}

static int conn_start_h2(struct conn *c)
{
	struct server *s = c->srv;
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, s->cfg.max_streams },
		/* Big windows: batches stream in without waiting for WINDOW_UPDATEs. */
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20 },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 16384 },
	};

	if (nghttp2_session_server_new2(&c->h2, s->cbs, c, s->h2opt))
		return -1;
	if (nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) ||
	    nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, 8 << 20))
		return -1;
	c->state = CONN_H2;
	return 0;
}

static void conn_handshake(struct conn *c)
{
	int r, e;
	char err[512];

	ERR_clear_error();
	r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		if (!rpc_tls_alpn_is_h2(c->ssl)) {
			c->srv->k.err_tls_no_h2++;
			log_warn("%s: TLS peer did not negotiate ALPN h2: gRPC needs HTTP/2", c->peer);
			conn_close(c, NULL);
			return;
		}
		c->last_io_ms = now_ms();
		if (conn_start_h2(c)) {
			conn_close(c, "cannot start HTTP/2 session");
			return;
		}
		if (conn_flush(c)) {
			conn_close(c, "write failed");
			return;
		}
		conn_settle(c);
		return;
	}
	e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ) {
		conn_set_events(c, EPOLLIN);
		return;
	}
	if (e == SSL_ERROR_WANT_WRITE) {
		conn_set_events(c, EPOLLOUT);
		return;
	}
	c->srv->k.err_tls_handshake++;
	rpc_tls_errors("TLS handshake failed", err, sizeof(err));
	if (SSL_get_verify_result(c->ssl) != X509_V_OK)
		log_warn("%s: %s (client certificate: %s)", c->peer, err, rpc_tls_verify_result(c->ssl));
	else
		log_warn("%s: %s", c->peer, err);
	conn_close(c, NULL);
}

/* Read what the socket has (up to the budget) into nghttp2. */
static void conn_read(struct conn *c)
{
	struct server *s = c->srv;
	size_t total = 0;

	while (total < READ_BUDGET) {
		ssize_t n, used;

		if (c->ssl) {
			int r, e;

			ERR_clear_error();
			r = SSL_read(c->ssl, s->rbuf, sizeof(s->rbuf));
			if (r <= 0) {
				e = SSL_get_error(c->ssl, r);
				if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
					break;
				if (e == SSL_ERROR_ZERO_RETURN) {
					conn_close(c, "peer closed");
					return;
				}
				s->k.err_io++;
				conn_close(c, "TLS read failed");
				return;
			}
			n = r;
		} else {
			n = recv(c->fd, s->rbuf, sizeof(s->rbuf), 0);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					break;
				s->k.err_io++;
				conn_close(c, strerror(errno));
				return;
			}
			if (n == 0) {
				conn_close(c, "peer closed");
				return;
			}
		}
		total += (size_t)n;
		s->k.bytes_in += (uint64_t)n;
		c->last_io_ms = now_ms();
		used = nghttp2_session_mem_recv(c->h2, s->rbuf, (size_t)n);
		if (used < 0) {
			h2_error(c, nghttp2_strerror((int)used));
			if (used != NGHTTP2_ERR_BAD_CLIENT_MAGIC) {
				nghttp2_session_terminate_session(c->h2, NGHTTP2_PROTOCOL_ERROR);
				conn_flush(c);
			}
			conn_close(c, NULL);
			return;
		}
		/* Acks and window updates out as we go. */
		if (conn_flush(c)) {
			conn_close(c, "write failed");
			return;
		}
	}
	if (conn_flush(c)) {
		conn_close(c, "write failed");
		return;
	}
	conn_settle(c);
}

static void conn_event(struct conn *c, uint32_t ev)
{
	if (c->state == CONN_TLS_HANDSHAKE) {
		conn_handshake(c);
		return;
	}
	if (ev & (EPOLLERR | EPOLLHUP) && !(ev & EPOLLIN)) {
		conn_close(c, "socket error or hang-up");
		return;
	}
	if (ev & EPOLLOUT) {
		if (conn_flush(c)) {
			conn_close(c, "write failed");
			return;
		}
	}
	if (ev & EPOLLIN) {
		conn_read(c);
		return;
	}
	conn_settle(c);
}

static void peer_name(const struct sockaddr_storage *ss, char *out, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)ss;

		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		port = ntohs(a->sin_port);
		snprintf(out, len, "%s:%u", host, port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)ss;

		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		port = ntohs(a->sin6_port);
		snprintf(out, len, "[%s]:%u", host, port);
	} else {
		snprintf(out, len, "unknown peer");
	}
}

/* A connected socket becomes a connection (TLS or h2c as configured).
 * 0, or -1 (fd closed). */
static int conn_adopt(struct server *s, int fd, const char *peer)
{
	struct epoll_event e;
	struct conn *c;
	int one = 1;

	if (s->nconns >= s->cfg.max_connections) {
		s->k.err_refused_max_connections++;
		log_warn("%s: refused: %u connections open (--max-connections)", peer, s->nconns);
		close(fd);
		return -1;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->srv = s;
	c->fd = fd;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	c->created_ms = c->last_io_ms = now_ms();
	if (s->cfg.tls) {
		c->ssl = SSL_new(s->cfg.tls);
		if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1)
			goto fail;
		SSL_set_accept_state(c->ssl);
		c->state = CONN_TLS_HANDSHAKE;
	} else if (conn_start_h2(c)) {
		goto fail;
	}
	e.events = EPOLLIN;
	e.data.ptr = c;
	if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &e))
		goto fail;
	c->events = EPOLLIN;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
	s->k.connections_accepted++;
	s->k.connections_open++;
	log_debug("%s: connected", peer);
	if (c->h2 && conn_flush(c)) {
		conn_close(c, "write failed");
		return -1;
	}
	return 0;
fail:
	if (c->h2)
		nghttp2_session_del(c->h2);
	SSL_free(c->ssl);
	close(fd);
	free(c);
	return -1;
}

static void accept_all(struct server *s)
{
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		char peer[64];
		int fd;

		fd = accept4(s->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_warn("accept: %s", strerror(errno));
			return;
		}
		peer_name(&ss, peer, sizeof(peer));
		conn_adopt(s, fd, peer);
	}
}

int server_adopt(struct server *s, int fd, const char *peer)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		close(fd);
		return -1;
	}
	return conn_adopt(s, fd, peer);
}

unsigned server_connections(const struct server *s)
{
	return s->nconns;
}

/* ---- commit and acks ---- */

static void commit_and_ack(struct server *s)
{
	const struct store_batch_result *res = NULL;
	struct stream *st, *next;
	size_t i, nres = 0;
	struct conn *c, *cn;
	char err[512];

	if (store_in_txn(s->store)) {
		if (store_commit(s->store, err, sizeof(err))) {
			log_error("%s", err);
			s->k.err_store++;
			for (st = s->pending; st; st = next) {
				next = st->next_pending;
				st->uncommitted.len = st->uncommitted.head = 0;
				stream_fail(st, GRPC_STATUS_UNAVAILABLE, NULL, "store failed: %s", err);
				pending_unlink(s, st);
			}
			s->txn_verdicts = 0;
			goto flush;
		}
		s->k.commits++;
		res = store_results(s->store, &nres);
	}
	for (i = 0; i < nres; i++) {
		s->k.verdicts_stored += res[i].stored;
		s->k.verdicts_duplicate += res[i].duplicates;
		s->k.verdicts_rejected += res[i].rejected;
		s->k.counters_stored += res[i].counters;
	}
	s->txn_verdicts = 0;
	for (st = s->pending; st; st = next) {
		next = st->next_pending;
		for (i = st->uncommitted.head; i < st->uncommitted.len; i++) {
			struct ack *a = &st->uncommitted.a[i];

			if (a->txn_idx < nres) {
				a->stored = res[a->txn_idx].stored;
				a->duplicates = res[a->txn_idx].duplicates;
				a->rejected = res[a->txn_idx].rejected;
			}
			if (a->rejected)
				log_warn("%s: stream %d: batch %" PRIu64 ": %u verdicts with seq 0 refused",
					 st->c->peer, st->id, a->sequence, a->rejected);
			if (ackq_push(&st->ready, a) == 0)
				st->c->acks_waiting++;
		}
		st->uncommitted.len = st->uncommitted.head = 0;
		pending_unlink(s, st);
		stream_wake(st);
	}
flush:
	for (c = s->conns; c; c = cn) {
		cn = c->next;
		if (!c->dirty || c->state != CONN_H2)
			continue;
		if (conn_flush(c))
			conn_close(c, "write failed");
		else
			conn_settle(c);
	}
}

/* Connections with output owed (streams woken by errors or ends) or with
 * decrypted input OpenSSL holds that epoll cannot announce. */
static void sweep(struct server *s)
{
	struct conn *c, *cn;

	for (c = s->conns; c; c = cn) {
		cn = c->next;
		if (c->state != CONN_H2)
			continue;
		if (c->ssl && SSL_has_pending(c->ssl)) {
			conn_read(c);
			continue;
		}
		if (c->dirty) {
			if (conn_flush(c))
				conn_close(c, "write failed");
			else
				conn_settle(c);
		}
	}
}

static void check_timeouts(struct server *s)
{
	uint64_t t = now_ms();
	struct conn *c, *next;

	for (c = s->conns; c; c = next) {
		next = c->next;
		if ((c->state == CONN_TLS_HANDSHAKE || !c->preface_done) &&
		    t - c->created_ms > s->cfg.handshake_timeout_ms) {
			s->k.err_idle_timeout++;
			log_warn("%s: no %s within %" PRIu64 " ms: closing", c->peer,
				 c->state == CONN_TLS_HANDSHAKE ? "TLS handshake" : "HTTP/2 preface",
				 s->cfg.handshake_timeout_ms);
			conn_close(c, NULL);
		} else if (c->stuck_since_ms && t - c->stuck_since_ms > s->cfg.slow_timeout_ms) {
			s->k.err_slow_client++;
			log_warn("%s: slow client: not reading its acks for %" PRIu64
				 " ms (%zu acks, %zu bytes waiting): closing",
				 c->peer, t - c->stuck_since_ms, c->acks_waiting, c->out_len - c->out_off);
			conn_close(c, NULL);
		} else if (t - c->last_io_ms > s->cfg.idle_timeout_ms) {
			s->k.err_idle_timeout++;
			log_info("%s: idle for %" PRIu64 " ms: closing", c->peer, t - c->last_io_ms);
			if (c->h2) {
				nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE,
						      nghttp2_session_get_last_proc_stream_id(c->h2),
						      NGHTTP2_NO_ERROR, NULL, 0);
				conn_flush(c);
			}
			conn_close(c, NULL);
		}
	}
}

/* ---- set-up and the loop ---- */

static int parse_listen(const char *spec, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char *colon;

	if (spec[0] == '[') {
		const char *end = strchr(spec, ']');

		if (!end || end[1] != ':')
			return -1;
		snprintf(host, hostlen, "%.*s", (int)(end - spec - 1), spec + 1);
		snprintf(port, portlen, "%s", end + 2);
		return 0;
	}
	colon = strrchr(spec, ':');
	if (!colon)
		return -1;
	snprintf(host, hostlen, "%.*s", (int)(colon - spec), spec);
	snprintf(port, portlen, "%s", colon + 1);
	return *port ? 0 : -1;
}

struct server *server_new(const struct server_config *cfg, struct store *store, char *err,
			  size_t errlen)
{
	struct server *s = calloc(1, sizeof(*s));
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	struct addrinfo *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct epoll_event e;
	char host[256], port[16];
	sigset_t set;
	int one = 1, rc;

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->cfg = *cfg;
	s->store = store;
	s->lfd = s->ep = s->sfd = -1;
	if (parse_listen(cfg->listen, host, sizeof(host), port, sizeof(port))) {
		snprintf(err, errlen, "--listen %s: give HOST:PORT, [IPV6]:PORT or :PORT", cfg->listen);
		goto fail;
	}
	rc = getaddrinfo(*host ? host : NULL, port, &hints, &ai);
	if (rc) {
		snprintf(err, errlen, "--listen %s: %s", cfg->listen, gai_strerror(rc));
		goto fail;
	}
	s->lfd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->lfd < 0 || setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(s->lfd, ai->ai_addr, ai->ai_addrlen) || listen(s->lfd, 512)) {
		snprintf(err, errlen, "--listen %s: %s", cfg->listen, strerror(errno));
		goto fail;
	}
	if (getsockname(s->lfd, (struct sockaddr *)&ss, &sl) == 0)
		peer_name(&ss, s->addr, sizeof(s->addr));
	s->ep = epoll_create1(EPOLL_CLOEXEC);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR1);
	s->sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (s->ep < 0 || s->sfd < 0) {
		snprintf(err, errlen, "epoll/signalfd: %s", strerror(errno));
		goto fail;
	}
	e.events = EPOLLIN;
	e.data.ptr = &s->lfd;
	epoll_ctl(s->ep, EPOLL_CTL_ADD, s->lfd, &e);
	e.data.ptr = &s->sfd;
	epoll_ctl(s->ep, EPOLL_CTL_ADD, s->sfd, &e);

	if (nghttp2_session_callbacks_new(&s->cbs) || nghttp2_option_new(&s->h2opt)) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	nghttp2_session_callbacks_set_on_begin_headers_callback(s->cbs, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(s->cbs, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(s->cbs, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(s->cbs, on_data_chunk);
	nghttp2_session_callbacks_set_on_frame_send_callback(s->cbs, on_frame_send);
	nghttp2_session_callbacks_set_on_stream_close_callback(s->cbs, on_stream_close);
	nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(s->cbs, on_invalid_frame);
	nghttp2_session_callbacks_set_error_callback2(s->cbs, on_h2_error);
	/* Bound what a peer can make us hold: header lists and reserved streams. */
	nghttp2_option_set_max_send_header_block_length(s->h2opt, 16384);
	nghttp2_option_set_max_reserved_remote_streams(s->h2opt, 0);
	/* Windows are given back as acks are taken (on_data_chunk). */
	nghttp2_option_set_no_auto_window_update(s->h2opt, 1);
	freeaddrinfo(ai);
	return s;
fail:
	if (ai)
		freeaddrinfo(ai);
	server_free(s);
	return NULL;
}

const char *server_address(const struct server *s)
{
	return s->addr;
}

const struct collector_counters *server_counters(const struct server *s)
{
	return &s->k;
}

int server_step(struct server *s, int max_wait_ms)
{
	struct epoll_event ev[64];
	int n, i, timeout = store_in_txn(s->store) ? 0 : max_wait_ms;
	bool stop = false;
	uint64_t t;

	n = epoll_wait(s->ep, ev, 64, timeout);
	if (n < 0) {
		if (errno == EINTR)
			return 0;
		log_error("epoll_wait: %s", strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++) {
		void *p = ev[i].data.ptr;

		if (p == &s->lfd) {
			accept_all(s);
		} else if (p == &s->sfd) {
			struct signalfd_siginfo si;

			while (read(s->sfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGUSR1)
					collector_counters_print(&s->k, stdout);
				else
					stop = true;
			}
		} else {
			conn_event(p, ev[i].events);
		}
	}
	t = now_ms();
	/* Group commit: when no input waits, or the group is big or old. */
	if (store_in_txn(s->store) || s->pending) {
		if (n == 0 || s->txn_verdicts >= s->cfg.commit_max ||
		    t - s->txn_start_ms >= s->cfg.commit_delay_ms || stop)
			commit_and_ack(s);
	}
	sweep(s);
	if (t - s->last_timer_ms >= 200) {
		s->last_timer_ms = t;
		check_timeouts(s);
	}
	return stop ? 1 : 0;
}

void server_close_all(struct server *s)
{
	commit_and_ack(s);
	while (s->conns) {
		struct conn *c = s->conns;

		if (c->h2) {
			nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE,
					      nghttp2_session_get_last_proc_stream_id(c->h2),
					      NGHTTP2_NO_ERROR, NULL, 0);
			conn_flush(c);
		}
		conn_close(c, NULL);
	}
}

int server_run(struct server *s)
{
	int rc;

	while ((rc = server_step(s, 200)) == 0)
		;
	/* Shutting down: what is stored is acknowledged; then GOAWAY. */
	server_close_all(s);
	return rc < 0 ? -1 : 0;
}

void server_free(struct server *s)
{
	if (!s)
		return;
	while (s->conns)
		conn_close(s->conns, NULL);
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->ep >= 0)
		close(s->ep);
	if (s->sfd >= 0)
		close(s->sfd);
	if (s->cbs)
		nghttp2_session_callbacks_del(s->cbs);
	if (s->h2opt)
		nghttp2_option_del(s->h2opt);
	free(s);
}
