// SPDX-License-Identifier: MIT
/*
 * call.c - one flowpic.v1.Collector/Stream call on one HTTP/2 stream: the
 * request headers checked (method, path, content-type, token, encoding),
 * gRPC messages reassembled and decoded into Batches for the store's next
 * group, one Ack per batch once its group committed, then the trailers with the
 * call's grpc-status.  Also the nghttp2 callbacks that drive it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowpic.pb-c.h"
#include "rpc/grpc_status.h"
#include "health.h"
#include "identity.h"
#include "core/log.h"
#include "rpc/rpc_error.h"
#include "server_int.h"
#include "rpc/token.h"
#include "validate.h"

int ackq_push(struct ackq *q, const struct ack *a)
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
			return -ENOMEM;
		q->a = na;
		q->cap = cap;
	}
put:
	q->a[q->len++] = *a;
	return 0;
}

size_t ackq_count(const struct ackq *q)
{
	return q->len - q->head;
}

static void ackq_free(struct ackq *q)
{
	free(q->a);
	memset(q, 0, sizeof(*q));
}

/* ---- calls (one per HTTP/2 stream) ---- */

void pending_unlink(struct server *s, struct call *st)
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

static void pending_link(struct server *s, struct call *st)
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

void call_free(struct call *st)
{
	struct h2conn *c = st->c;

	pending_unlink(c->srv, st);
	if (st->prev_in_conn)
		st->prev_in_conn->next_in_conn = st->next_in_conn;
	else
		c->calls = st->next_in_conn;
	if (st->next_in_conn)
		st->next_in_conn->prev_in_conn = st->prev_in_conn;
	c->acks_waiting -= ackq_count(&st->ready);
	c->unconsumed -= st->unconsumed;
	call_drop_partial(st);
	ackq_free(&st->uncommitted);
	ackq_free(&st->ready);
	free((char *)st->agent_id);
	free(st);
}

void call_drop_partial(struct call *st)
{
	st->c->srv->buffered -= st->buffered;
	st->buffered = 0;
	st->partial_since_ms = 0;
	grpc_reader_free(&st->rd);
}

void call_wake(struct call *st)
{
	if (st->deferred && st->started) {
		st->deferred = false;
		nghttp2_session_resume_data(st->c->h2, st->id);
	}
	st->c->dirty = true;
}

/* Decide the call's status; the data provider sends the trailers once the
 * acks already earned are out.  The first status wins. */
void call_fail(struct call *st, int status, uint64_t *counter, const char *fmt, ...)
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
	peer_warn(st->c->srv, "%s: stream %d: %s: ending the call with %s", st->c->peer, st->id,
		  st->message, grpc_status_name(status));
	call_wake(st);
}

/* ---- the gRPC call ---- */

/* Is the batch's agent_id one this call may write as?  true, or the call
 * is failed with PERMISSION_DENIED. */
static bool identity_ok(struct call *st, const Flowpic__V1__Batch *b)
{
	struct server *s = st->c->srv;
	char cn[257];

	if (st->agent_id && strcmp(b->agent->agent_id, st->agent_id)) {
		call_fail(st, GRPC_STATUS_PERMISSION_DENIED, &s->k.err_permission_denied,
			  "batch %" PRIu64 ": agent.agent_id is not %s, the agent of this token",
			  b->sequence, st->agent_id);
		return false;
	}
	if (s->cfg.agent_id_from_cert) {
		if (identity_peer_cn(st->c->ssl, cn, sizeof(cn)) < 0) {
			call_fail(st, GRPC_STATUS_PERMISSION_DENIED, &s->k.err_permission_denied,
				  "batch %" PRIu64
				  ": no client certificate CN to check agent.agent_id against",
				  b->sequence);
			return false;
		}
		if (strcmp(b->agent->agent_id, cn)) {
			call_fail(st, GRPC_STATUS_PERMISSION_DENIED, &s->k.err_permission_denied,
				  "batch %" PRIu64
				  ": agent.agent_id is not %s, the client certificate's CN",
				  b->sequence, cn);
			return false;
		}
	}
	return true;
}

/* grpc_msg_cb: one Batch into the open group (the next store transaction).
 * 0, or a negative errno when the call is failed (call_fail()). */
static int on_message(void *ctx, const uint8_t *msg, size_t len)
{
	struct call *st = ctx;
	struct server *s = st->c->srv;
	uint64_t *counter, sequence, busy_max;
	Flowpic__V1__Batch *b;
	size_t nverdicts;
	char err[512];
	struct ack a;
	long idx;
	int rc;

	if (health_call(st))
		return health_on_message(st, msg, len);
	b = flowpic__v1__batch__unpack(NULL, len, msg);
	if (!b) {
		call_fail(st, GRPC_STATUS_INVALID_ARGUMENT, &s->k.err_bad_protobuf,
			  "batch %" PRIu64 " of the call: malformed protobuf Batch (%zu bytes)",
			  st->batches + 1, len);
		return -EBADMSG;
	}
	/* Values that do not fit the store fail this call alone, before the
	 * batch can break a transaction other agents share. */
	switch (batch_validate(b, err, sizeof(err))) {
	case VALIDATE_OK:
		counter = NULL;
		break;
	case VALIDATE_OUT_OF_RANGE:
		counter = &s->k.err_out_of_range;
		break;
	case VALIDATE_NON_FINITE:
		counter = &s->k.err_non_finite;
		break;
	case VALIDATE_BAD_CELLS:
		counter = &s->k.err_bad_cells;
		break;
	default:
		counter = &s->k.err_bad_batch;
		break;
	}
	if (counter) {
		call_fail(st, GRPC_STATUS_INVALID_ARGUMENT, counter, "%s", err);
		flowpic__v1__batch__free_unpacked(b, NULL);
		return -EINVAL;
	}
	if (!identity_ok(st, b)) {
		flowpic__v1__batch__free_unpacked(b, NULL);
		return -EPERM;
	}
	/* The store is slow (a locked SQLite file, a database behind) and
	 * batches pile up: beyond a bound, refuse rather than buffer without
	 * end (the agent resends later).  Below it, a full next group pauses
	 * reading from the connections with calls instead (h2conn_read). */
	busy_max = 4ull * s->cfg.commit_max < 100000 ? 100000 : 4ull * s->cfg.commit_max;
	if (s->inflight && server_store_queued(s) + b->n_verdicts > busy_max) {
		call_fail(st, GRPC_STATUS_UNAVAILABLE, &s->k.err_store_busy,
			  "store busy: %" PRIu64 " verdicts wait for %s", server_store_queued(s),
			  server_store_locked(s) ? "a locked database" : "the store");
		flowpic__v1__batch__free_unpacked(b, NULL);
		return -EBUSY;
	}
	sequence = b->sequence;
	nverdicts = b->n_verdicts;
	/* Into the next group; the store thread writes it (store_thread.c). */
	idx = group_add(s, b); /* takes b */
	if (idx < 0) {
		call_fail(st, GRPC_STATUS_RESOURCE_EXHAUSTED, NULL,
			  "out of memory queueing a batch for the store");
		return (int)idx;
	}
	st->batches++;
	s->k.batches++;
	s->k.verdicts_received += nverdicts;
	memset(&a, 0, sizeof(a));
	a.sequence = sequence;
	a.group = s->open->id;
	a.txn_idx = (size_t)idx;
	a.received_ns = clock_mono_ns();
	rc = ackq_push(&st->uncommitted, &a);
	if (rc < 0) {
		call_fail(st, GRPC_STATUS_RESOURCE_EXHAUSTED, NULL,
			  "out of memory queueing an ack");
		return rc;
	}
	pending_link(s, st);
	return 0;
}

static ssize_t data_read(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t length,
			 uint32_t *flags, nghttp2_data_source *src, void *user)
{
	struct call *st = src->ptr;
	struct h2conn *c = user;
	size_t n = 0;

	(void)id;
	while (ackq_count(&st->ready) && n + ACK_MAX_LEN <= length) {
		struct ack *a = &st->ready.a[st->ready.head];
		Flowpic__V1__Ack m = FLOWPIC__V1__ACK__INIT;
		size_t sz;

		if (health_call(st)) {
			/* The reply owed: the store's status now (a probe may
			 * still run: then health_poll() wakes the call). */
			enum health_status hs = health_status(clock_mono_ms());

			if (hs == HEALTH_UNKNOWN)
				break;
			sz = health_encode(hs, buf + n + GRPC_PREFIX_LEN);
			grpc_frame_prefix(buf + n, (uint32_t)sz);
			n += GRPC_PREFIX_LEN + sz;
			st->ready.head++;
			c->acks_waiting--;
			continue;
		}

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
	if ((st->failed || st->client_done) && !ackq_count(&st->uncommitted) &&
	    !(health_call(st) && ackq_count(&st->ready))) {
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
static void call_start(struct call *st)
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
		nghttp2_nv h = { (uint8_t *)":status", (uint8_t *)code, 7, 3,
				 NGHTTP2_NV_FLAG_NONE };

		s->k.err_bad_request++;
		st->failed = true;
		peer_warn(
			s,
			"%s: stream %d: not a gRPC request (method, path or content-type): HTTP %s",
			st->c->peer, st->id, code);
		nghttp2_submit_response(st->c->h2, st->id, &h, 1, NULL);
		st->c->dirty = true;
		return;
	}
	hdrs[0] =
		(nghttp2_nv){ (uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE };
	hdrs[1] = (nghttp2_nv){ (uint8_t *)"content-type", (uint8_t *)GRPC_CONTENT_TYPE, 12,
				sizeof(GRPC_CONTENT_TYPE) - 1, NGHTTP2_NV_FLAG_NONE };
	hdrs[2] = (nghttp2_nv){ (uint8_t *)GRPC_HDR_ACCEPT_ENCODING, (uint8_t *)"identity",
				sizeof(GRPC_HDR_ACCEPT_ENCODING) - 1, 8, NGHTTP2_NV_FLAG_NONE };
	if (nghttp2_submit_response(st->c->h2, st->id, hdrs, 3, &dp)) {
		nghttp2_submit_rst_stream(st->c->h2, NGHTTP2_FLAG_NONE, st->id,
					  NGHTTP2_INTERNAL_ERROR);
		st->failed = true;
		return;
	}
	st->started = true;
	s->k.streams_opened++;
	if (st->auth_ok)
		st->c->authed = true;
	if (!st->path_ok)
		call_fail(st, GRPC_STATUS_UNIMPLEMENTED, &s->k.err_unknown_method,
			  "unknown method %s (this server has " COLLECTOR_PATH ")", st->path);
	else if (!st->auth_ok && !health_call(st)) /* probes need no token */
		call_fail(st, GRPC_STATUS_UNAUTHENTICATED, &s->k.err_unauthenticated,
			  "missing or wrong access token (authorization: Bearer ...)");
	else if (st->encoding_bad)
		call_fail(st, GRPC_STATUS_UNIMPLEMENTED, &s->k.err_compressed,
			  "grpc-encoding other than identity: no compression is supported");
	st->c->dirty = true;
}

static void frame_error(struct call *st, int err)
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
		call_fail(st, status, counter, "%s (%u bytes)", rpc_strerror(err),
			  s->cfg.max_message);
	else
		call_fail(st, status, counter, "%s", rpc_strerror(err));
}

/* ---- nghttp2 callbacks ---- */

static int on_begin_headers(nghttp2_session *h2, const nghttp2_frame *f, void *user)
{
	struct h2conn *c = user;
	struct call *st;

	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	st = calloc(1, sizeof(*st));
	if (!st)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	st->c = c;
	st->id = f->hd.stream_id;
	st->auth_ok = !c->srv->cfg.token && !c->srv->cfg.tokens;
	grpc_reader_init(&st->rd, c->srv->cfg.max_message);
	st->next_in_conn = c->calls;
	if (c->calls)
		c->calls->prev_in_conn = st;
	c->calls = st;
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
	struct h2conn *c = user;
	struct call *st;

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
		st->path_ok = hdr_is(value, valuelen, COLLECTOR_PATH) ||
			      hdr_is(value, valuelen, HEALTH_CHECK_PATH);
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
		const char *id = NULL;

		free((char *)st->agent_id);
		st->agent_id = NULL;
		if (c->srv->cfg.tokens) {
			st->auth_ok = token_map_check(c->srv->cfg.tokens, (const char *)value,
						      valuelen, &id);
			/* A copy: SIGHUP may free the map while the call runs. */
			if (st->auth_ok && id && !(st->agent_id = strdup(id)))
				st->auth_ok = false;
		} else if (c->srv->cfg.token)
			st->auth_ok =
				rpc_token_check(c->srv->cfg.token, (const char *)value, valuelen);
	} else if (hdr_is(name, namelen, GRPC_HDR_ENCODING)) {
		st->encoding_bad = !hdr_is(value, valuelen, "identity");
	}
	return 0;
}

static int on_frame_recv(nghttp2_session *h2, const nghttp2_frame *f, void *user)
{
	struct h2conn *c = user;
	struct call *st;
	int err;

	c->preface_done = true;
	if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
		return 0; /* PINGs, SETTINGS, ...: not activity for --idle-timeout */
	c->last_active_ms = clock_mono_ms();
	st = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id);
	if (!st)
		return 0;
	if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST)
		call_start(st);
	if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) {
		st->client_done = true;
		if (!st->failed && (err = grpc_reader_finish(&st->rd)) != 0)
			frame_error(st, err);
		call_wake(st);
	}
	return 0;
}

/* DATA into the call's reassembly.  The buffers of partial messages of all
 * calls stay within --max-buffered: the call whose growth went over ends
 * (its buffer freed at once).  A message is timed from its first byte
 * (--message-timeout, server.c). */
static void feed(struct call *st, const uint8_t *data, size_t len)
{
	struct server *s = st->c->srv;
	struct grpc_reader *r = &st->rd;
	uint64_t messages = r->messages;
	int err;

	err = grpc_reader_feed(r, data, len, on_message, st);
	if (err)
		frame_error(st, err);
	if (st->failed) {
		call_drop_partial(st);
		return;
	}
	if (!r->buf_have && r->buf_cap)
		grpc_reader_free(r); /* between messages: no buffer kept */
	s->buffered = s->buffered - st->buffered + r->buf_cap;
	st->buffered = r->buf_cap;
	if (!grpc_reader_partial(r))
		st->partial_since_ms = 0;
	else if (!st->partial_since_ms || r->messages != messages)
		st->partial_since_ms = clock_mono_ms();
	if (s->buffered > s->cfg.max_buffered) {
		call_fail(st, GRPC_STATUS_RESOURCE_EXHAUSTED, &s->k.err_memory_budget,
			  "partial messages of all calls over --max-buffered %" PRIu64 " bytes",
			  s->cfg.max_buffered);
		call_drop_partial(st);
	}
}

static int on_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data,
			 size_t len, void *user)
{
	struct call *st = nghttp2_session_get_stream_user_data(h2, id);
	struct h2conn *c = user;

	(void)flags;
	if (!st) {
		nghttp2_session_consume_connection(h2, len);
		return 0;
	}
	c->last_active_ms = clock_mono_ms();
	/* A refused call's body is read and dropped. */
	if (!st->failed && st->started)
		feed(st, data, len);
	/* Flow control is the back-pressure: while the peer leaves its acks
	 * unread, the window it used is not given back, so it must stop
	 * sending; we keep reading (its WINDOW_UPDATEs, PINGs). */
	if (h2conn_backlogged(c)) {
		st->unconsumed += len;
		c->unconsumed += len;
	} else {
		nghttp2_session_consume(h2, id, len);
	}
	return 0;
}

static int on_frame_send(nghttp2_session *h2, const nghttp2_frame *f, void *user)
{
	struct call *st;

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
	/* A wrong token ends the connection after its trailers (the client
	 * reads the status first): with this GOAWAY the session ends with the
	 * call, and h2conn_settle closes it once the peer has had its say. */
	if (st && st->status == GRPC_STATUS_UNAUTHENTICATED)
		nghttp2_submit_goaway(h2, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR, NULL, 0);
	return 0;
}

static int on_stream_close(nghttp2_session *h2, int32_t id, uint32_t code, void *user)
{
	struct h2conn *c = user;
	struct call *st = nghttp2_session_get_stream_user_data(h2, id);

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
	call_free(st);
	return 0;
}

/* Counted once per connection: err_http2_protocol is the number of
 * connections that sent malformed HTTP/2; each is logged once. */
void h2_error(struct h2conn *c, const char *what)
{
	if (c->logged_h2_error)
		return;
	c->logged_h2_error = true;
	c->srv->k.err_http2_protocol++;
	peer_warn(c->srv, "%s: malformed HTTP/2 (%s)", c->peer, what);
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

void call_set_callbacks(nghttp2_session_callbacks *cbs)
{
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
	nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
	nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, on_invalid_frame);
	nghttp2_session_callbacks_set_error_callback2(cbs, on_h2_error);
}
