/* SPDX-License-Identifier: MIT */
/*
 * conn.h - one connection to the collector carrying one Collector/Stream
 * call: TCP (non-blocking), TLS (OpenSSL, ALPN h2) or cleartext h2c with
 * prior knowledge, an HTTP/2 client session (libnghttp2, memory I/O), and
 * the gRPC call on it (headers, 5-byte framed messages, trailers).
 *
 * Driven by its owner's poll loop: conn_events() says what to wait for,
 * conn_process() does what can be done without blocking.  Messages to send
 * are pulled from the owner (next()) when HTTP/2 flow control allows; each
 * response message is handed to the owner (message()).
 */
#ifndef FLOWPIC_STREAM_CONN_H
#define FLOWPIC_STREAM_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#define CONN_PATH "/flowpic.v1.Collector/Stream"

struct conn_callbacks {
	/* The next message to send: 1 and *msg, *len (valid until acknowledged), or 0. */
	int (*next)(void *ctx, const uint8_t **msg, size_t *len);
	/* A response message (an Ack): 0, or a negative errno that ends the
	 * connection. */
	int (*message)(void *ctx, const uint8_t *msg, size_t len);
	/* The collector answered the call (HTTP 200, application/grpc): it is up. */
	void (*established)(void *ctx);
};

struct conn_params {
	const char *host; /* to connect to */
	const char *port;
	const char *authority;	   /* :authority, "host:port" */
	SSL_CTX *tls;		   /* NULL: h2c */
	const char *server_name;   /* TLS: SNI and name verified */
	const char *authorization; /* header value ("Bearer ..."), NULL: none */
	const char *user_agent;
};

enum conn_phase { CONN_TCP, CONN_TLS, CONN_H2, CONN_DONE };

struct conn;

/* Start connecting (DNS is resolved here, blocking).  NULL and err on failure. */
struct conn *conn_open(const struct conn_params *p, const struct conn_callbacks *cb, void *ctx,
		       char *err, size_t errlen);
void conn_free(struct conn *c);

int conn_fd(const struct conn *c);
short conn_events(const struct conn *c);
enum conn_phase conn_get_phase(const struct conn *c);

/*
 * Make progress after poll() said revents.  0: go on; a negative errno: the
 * connection is over (-ECONNRESET: ended by the collector; conn_error() says
 * why: network, TLS, HTTP/2, or the collector's grpc-status).
 */
int conn_process(struct conn *c, short revents);

/* New messages are ready to send. */
void conn_resume(struct conn *c);

/* Send END_STREAM once every message is out (a clean end of the call). */
void conn_finish(struct conn *c);

/* Why the connection ended, one line. */
const char *conn_error(const struct conn *c);

/* The call's grpc-status (-1: none received) and whether the call ended cleanly (status 0). */
int conn_grpc_status(const struct conn *c);

#endif
