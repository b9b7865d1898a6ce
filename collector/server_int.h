/* SPDX-License-Identifier: MIT */
/*
 * server_int.h - what the collector's server files share (not an interface
 * for anyone else): connections (conn.c: sockets, TLS, HTTP/2 I/O), gRPC
 * calls on their streams (call.c: requests, batches into the store, acks,
 * trailers, the nghttp2 callbacks) and the loop (server.c: accept, group
 * commit, timeouts).
 */
#ifndef FLOWPIC_COLLECTOR_SERVER_INT_H
#define FLOWPIC_COLLECTOR_SERVER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#include "clock.h"
#include "grpc_frame.h"
#include "server.h"

#define READ_CHUNK (64 * 1024)
#define READ_BUDGET (1024 * 1024) /* bytes per connection per wake-up: fairness */
#define OUT_MAX (1024 * 1024)	  /* buffered output beyond which the peer counts as slow */
#define ACK_MAX_LEN 32		  /* a packed Ack plus its prefix, at most */

struct ack {
	uint64_t sequence;
	uint32_t stored, duplicates, rejected;
	size_t txn_idx; /* the batch's place in the store's transaction */
};

struct ackq {
	struct ack *a;
	size_t len, cap, head; /* a[head..len) are queued */
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
	bool started;	  /* headers validated, response submitted */
	bool client_done; /* END_STREAM received */
	bool failed;	  /* status decided: no more input read */
	bool deferred;	  /* the data provider is waiting */
	bool trailers_sent;
	int status;
	char message[200];
	struct grpc_reader rd;
	struct ackq uncommitted, ready;
	uint64_t batches;
	size_t unconsumed; /* DATA bytes read but not yet given back as window */
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
	uint32_t events;     /* epoll mask registered */
	size_t acks_waiting; /* ready acks of all streams */
	size_t unconsumed;   /* sum of the streams' unconsumed */
	bool closing, dirty, logged_h2_error, preface_done;
};

struct server {
	struct server_config cfg;
	struct store *store;
	int lfd, ep, sfd;
	char addr[80];
	struct conn *conns;
	uint32_t nconns;
	struct stream *pending; /* streams with acks waiting for the commit */
	uint64_t txn_verdicts, txn_start_ms;
	uint64_t last_timer_ms;
	struct collector_counters k;
	nghttp2_session_callbacks *cbs;
	nghttp2_option *h2opt;
	uint8_t rbuf[READ_CHUNK];
};

/* call.c */
int ackq_push(struct ackq *q, const struct ack *a); /* 0, or -ENOMEM */
size_t ackq_count(const struct ackq *q);
void pending_unlink(struct server *s, struct stream *st);
void stream_free(struct stream *st);
void stream_wake(struct stream *st);
/* Decide the call's status; the data provider sends the trailers once the
 * acks already earned are out.  The first status wins. */
void stream_fail(struct stream *st, int status, uint64_t *counter, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Counted once per connection (err_http2_protocol), logged once. */
void h2_error(struct conn *c, const char *what);
void call_set_callbacks(nghttp2_session_callbacks *cbs);

/* conn.c */
bool conn_backlogged(const struct conn *c);
void conn_close(struct conn *c, const char *why);
int conn_flush(struct conn *c);
void conn_settle(struct conn *c);
void conn_read(struct conn *c);
void conn_event(struct conn *c, uint32_t ev);
int conn_adopt(struct server *s, int fd, const char *peer);
void peer_name(const struct sockaddr_storage *ss, char *out, size_t len);

#endif
