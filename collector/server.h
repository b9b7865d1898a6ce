/* SPDX-License-Identifier: MIT */
/*
 * server.h - the collector's gRPC server: one epoll loop for every agent's
 * connection, and a store thread that writes.  HTTP/2 is libnghttp2 (h2 over
 * TLS with ALPN, or h2c with prior knowledge for local use); the gRPC call is
 * flowpic.v1.Collector/Stream.
 *
 * Each call is a stream of Batch messages up and Ack messages down.  A batch
 * is decoded and checked by the loop and goes into the next group of
 * batches; the loop cuts the group (when no input is waiting, after
 * commit_max verdicts, or after commit_delay) and the store thread writes it
 * as one transaction, while the loop goes on serving handshakes, pings and
 * reads and fills the next group.  A batch is acknowledged only after its
 * group committed.  Any fault (bad HTTP/2, bad gRPC framing, a bad
 * protobuf, an oversized message, a wrong token, a client that stops
 * reading) ends that stream or that connection with a gRPC status or a
 * GOAWAY, one log line and a counter; the other agents go on.
 */
#ifndef FLOWPIC_COLLECTOR_SERVER_H
#define FLOWPIC_COLLECTOR_SERVER_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "counters.h"
#include "store.h"

#define COLLECTOR_PATH "/flowpic.v1.Collector/Stream"

struct server_config {
	const char *listen;   /* "HOST:PORT", "[V6]:PORT" or ":PORT"; port 0 = any free */
	SSL_CTX *tls;	      /* NULL: cleartext h2c (prior knowledge) */
	const char *token;    /* NULL: no token required */
	uint32_t max_message; /* bytes of one gRPC message */
	uint32_t max_streams; /* concurrent calls per connection */
	uint32_t max_connections;
	uint32_t max_per_source;       /* connections from one address (IPv6: one /64) */
	uint64_t max_buffered;	       /* bytes of partial messages buffered, all calls */
	uint64_t message_timeout_ms;   /* a message must arrive whole within this */
	uint32_t max_pending_acks;     /* per connection; beyond: its window is held back */
	uint64_t idle_timeout_ms;      /* no call traffic (HEADERS, DATA) this long: closed */
	uint64_t slow_timeout_ms;      /* output or acks stuck for this long: closed */
	uint64_t handshake_timeout_ms; /* TLS, HTTP/2 preface, first authenticated call */
	uint32_t commit_max;	       /* verdicts per transaction at most */
	uint64_t commit_delay_ms;      /* a transaction stays open at most this long */

	/* GET /metrics (Prometheus) on this HOST:PORT (NULL: off; ":PORT" is loopback). */
	const char *metrics_listen;

	/* Who may write as which agent (identity.h). */
	const struct token_map *tokens; /* per-agent tokens; NULL: token above */
	bool agent_id_from_cert;	/* agent_id = the client certificate's CN */
};

void server_config_default(struct server_config *cfg);

struct server;

/* Bind and listen.  NULL and a one-line reason in err on failure. */
struct server *server_new(const struct server_config *cfg, struct store *store, char *err,
			  size_t errlen);
/* The address actually bound ("127.0.0.1:40123"). */
const char *server_address(const struct server *s);
/* The /metrics address bound, or NULL when off. */
const char *server_metrics_address(const struct server *s);
/* Bound to a loopback address only (127.0.0.0/8, ::1)? */
bool server_loopback(const struct server *s);
/* Run until SIGINT/SIGTERM (blocked by the caller and read here through a
 * signalfd).  SIGUSR1 prints the counters.  0, or a negative errno on a
 * fatal error (logged). */
int server_run(struct server *s);
const struct collector_counters *server_counters(const struct server *s);

/* --web-listen: the dashboard's counters (web_*), copied into the
 * collector's at each step of the loop by stats(ctx, k) (NULL: none). */
void server_set_web(struct server *s, void (*stats)(const void *ctx, struct collector_counters *k),
		    const void *ctx);

/* The loop in pieces, for tests and fuzzing: one round of waiting at most
 * max_wait_ms, events, a group cut for the store thread, timers (1: a stop
 * signal came, 0, or a negative errno: fatal); a connected socket of ours to
 * serve (0, or a negative errno and fd closed); how many connections are
 * open; commit the groups waiting (the store thread joined), ack and close
 * them all. */
int server_step(struct server *s, int max_wait_ms);
int server_adopt(struct server *s, int fd, const char *peer);
unsigned server_connections(const struct server *s);
void server_close_all(struct server *s);
void server_free(struct server *s);

#endif
