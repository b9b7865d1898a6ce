/* SPDX-License-Identifier: MIT */
/*
 * server_int.h - what the collector's server files share (not an interface
 * for anyone else): connections (h2conn.c, struct h2conn: sockets, TLS, HTTP/2 I/O), gRPC
 * calls, one per HTTP/2 stream (call.c, struct call: requests, batches into the next group,
 * acks, trailers, the nghttp2 callbacks), the loop (server.c: accept, groups
 * cut and their results turned into acks, timeouts) and the store thread
 * (store_thread.c: writes and commits each group off the loop).
 */
#ifndef FLOWPIC_COLLECTOR_SERVER_INT_H
#define FLOWPIC_COLLECTOR_SERVER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#include "core/clock.h"
#include "rpc/grpc_frame.h"
#include "ratelog.h"
#include "server.h"

#define READ_CHUNK (64 * 1024)
#define READ_BUDGET (1024 * 1024) /* bytes per connection per wake-up: fairness */
#define OUT_MAX (1024 * 1024)	  /* buffered output beyond which the peer counts as slow */
#define LINGER_MS 1000		  /* a session ended: the peer has this long to close */
#define ACK_MAX_LEN 32		  /* a packed Ack plus its prefix, at most */

struct ack {
	uint64_t sequence;
	uint32_t stored, duplicates, rejected;
	uint64_t group;	      /* the group (store transaction) holding the batch */
	size_t txn_idx;	      /* the batch's place in that group */
	uint64_t received_ns; /* CLOCK_MONOTONIC when the batch arrived (metrics) */
	uint64_t pub_group;   /* --nats: stored, acked once this publish group is (0: not yet) */
};

struct ackq {
	struct ack *a;
	size_t len, cap, head; /* a[head..len) are queued */
};

/*
 * Groups: the batches of one store transaction.  The loop decodes and
 * checks batches and appends them to the open group; it cuts the group by
 * the --commit-max / --commit-delay rules and hands it to the store thread,
 * which puts the batches into the store, commits (retrying a locked SQLite
 * file) and fills the results.  One group at most is with the thread, so
 * transactions commit in the order their batches arrived; meanwhile the
 * next group fills.  The thread tells the loop through an eventfd.
 */
struct group_batch {
	Flowpic__V1__Batch *b; /* owned until the store takes it */
	uint64_t now_ns;       /* arrival (CLOCK_REALTIME): the rows' received_ns */
};

struct store_group {
	uint64_t id; /* 1, 2, ... in cut order; acks name it */
	struct group_batch *b;
	size_t n, cap;
	uint64_t verdicts;
	uint64_t start_ms; /* its first batch arrived (--commit-delay) */
	/* Filled by the store thread. */
	struct store_batch_result *res; /* per batch, in order (n) */
	size_t *sidx;			/* batch -> its index in the store's results */
	size_t capres;
	int rc;		   /* 0: committed (per-batch errors in res); < 0: none stored */
	char err[512];	   /* why, when rc < 0 */
	bool committed;	   /* a store transaction was committed (commits) */
	int64_t pub_group; /* --nats: publisher_commit()'s id, or < 0: backlog full */
	uint64_t work_ns;  /* the thread's time on it: puts, commit, retries */
};

struct store_thread {
	struct store *store;
	struct publisher *pub;
	pthread_t thr;
	bool started;
	int efd; /* readable: a group is done */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct store_group *work, *done; /* to the thread; back to the loop */
	bool stop;
	/* Read by the loop at any time. */
	_Atomic uint64_t retry_at_ms; /* != 0: waiting for a locked SQLite file */
	_Atomic uint64_t busy_retries;
};

struct h2conn;

struct call {
	struct h2conn *c;
	int32_t id;
	struct call *next_in_conn, *prev_in_conn;
	struct call *next_pending, *prev_pending;
	bool on_pending;
	/* Request headers. */
	bool method_post, path_ok, path_seen, ct_ok, auth_ok, encoding_bad;
	const char *agent_id; /* the token's agent: batches must carry it (NULL: any) */
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
	size_t buffered;	   /* rd's buffer, counted in the server's buffered */
	uint64_t partial_since_ms; /* a message began arriving (0: none pending) */
	struct ackq uncommitted, ready;
	uint64_t batches;
	size_t unconsumed; /* DATA bytes read but not yet given back as window */
};

enum h2conn_state { CONN_TLS_HANDSHAKE, CONN_H2 };

struct h2conn {
	struct server *srv;
	int fd;
	SSL *ssl;
	enum h2conn_state state;
	nghttp2_session *h2;
	char peer[64];
	struct h2conn *next, *prev;
	struct call *calls;
	uint8_t *out;
	size_t out_len, out_off, out_cap;
	uint64_t created_ms, stuck_since_ms;
	uint64_t last_active_ms; /* last HEADERS or DATA received: PINGs do not count */
	uint8_t source[9];	 /* the peer's address (IPv6: its /64); [0] = 0: none */
	uint32_t events;	 /* epoll mask registered */
	size_t acks_waiting;	 /* ready acks of all streams */
	size_t unconsumed;	 /* sum of the streams' unconsumed */
	bool closing, dirty, logged_h2_error, preface_done;
	bool authed;	/* a call with the right token came (or none is needed) */
	bool lingering; /* session over: waiting for the peer to close (h2conn_linger) */
	bool paused;	/* not read: the store's next group is full (h2conn_read) */
	uint64_t linger_since_ms;
};

struct server {
	struct server_config cfg;
	struct store *store;
	int lfd, ep, sfd;
	char addr[80];
	struct h2conn *conns;
	uint32_t nconns;
	struct call *pending;	      /* streams with acks waiting for a commit or JetStream */
	struct store_group *open;     /* filling: the next group (never NULL) */
	struct store_group *inflight; /* with the store thread (NULL: none) */
	struct store_group *spare;    /* a done group's buffers, for reuse */
	uint64_t next_group;
	bool paused; /* the open group is full: connections with calls not read */
	struct store_thread st;
	uint64_t last_timer_ms;
	bool accept_paused; /* accept4 failed (fd limit): the listener is not polled */
	uint64_t accept_paused_ms;
	size_t buffered;	 /* reassembly buffers of partial messages, all calls */
	struct ratelog peer_log; /* the lines peers can cause */
	struct collector_counters k;
	struct publisher *pub;	      /* --nats (NULL: off); &pub tags its eventfd in epoll */
	struct http_metrics *metrics; /* --metrics-listen (NULL: off); its epoll fd is mfd */
	void (*web_stats)(const void *ctx, struct collector_counters *k); /* --web-listen */
	const void *web_ctx;
	int mfd;
	nghttp2_session_callbacks *cbs;
	nghttp2_option *h2opt;
	uint8_t rbuf[READ_CHUNK];
};

/* call.c */
int ackq_push(struct ackq *q, const struct ack *a); /* 0, or -ENOMEM */
size_t ackq_count(const struct ackq *q);
void pending_unlink(struct server *s, struct call *st);
void call_free(struct call *st);
void call_wake(struct call *st);
/* Decide the call's status; the data provider sends the trailers once the
 * acks already earned are out.  The first status wins. */
void call_fail(struct call *st, int status, uint64_t *counter, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Counted once per connection (err_http2_protocol), logged once. */
void h2_error(struct h2conn *c, const char *what);
void call_set_callbacks(nghttp2_session_callbacks *cbs);

/* Release the reassembly buffer of a failed or stalled call (budget). */
void call_drop_partial(struct call *st);

/* server.c */
/* A warning a peer can cause: rate-limited (ratelog.h), counted when left out. */
void peer_warn(struct server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A connection closed: poll the listener again if accept4 had failed. */
void accept_resume(struct server *s);
/* The batch into the open group (which takes b): its index there, or
 * -ENOMEM (b freed). */
long group_add(struct server *s, Flowpic__V1__Batch *b);
/* The open group has reached --commit-max (it is cut at the end of the
 * step, or once the group with the store thread is done): connections with
 * calls are not read until then. */
bool server_store_full(struct server *s);
/* Verdicts waiting for the store (the open group and the one in flight),
 * and whether the thread waits for a locked SQLite file. */
uint64_t server_store_queued(const struct server *s);
bool server_store_locked(const struct server *s);

/* store_thread.c */
int store_thread_init(struct store_thread *t, struct store *store);
/* Hand g over (the thread is started on first use); one at a time. */
void store_thread_submit(struct store_thread *t, struct store_group *g);
/* The group done (clears the eventfd), or NULL; wait: block until it is. */
struct store_group *store_thread_take(struct store_thread *t, bool wait);
/* Stop and join the thread (none in flight); it starts again on a submit. */
void store_thread_join(struct store_thread *t);
void store_thread_free(struct store_thread *t);

/* h2conn.c */
bool h2conn_backlogged(const struct h2conn *c);
void h2conn_close(struct h2conn *c, const char *why);
int h2conn_flush(struct h2conn *c);
void h2conn_settle(struct h2conn *c);
void h2conn_read(struct h2conn *c);
void h2conn_resume(struct h2conn *c);
void h2conn_event(struct h2conn *c, uint32_t ev);
int h2conn_adopt(struct server *s, int fd, const char *peer);
void peer_name(const struct sockaddr_storage *ss, char *out, size_t len);

#endif
