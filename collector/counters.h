/* SPDX-License-Identifier: MIT */
/*
 * counters.h - the collector's own counters: connections, calls, batches,
 * verdicts stored and duplicated, and every error by reason.  Printed as one
 * JSON line on SIGUSR1 and at exit (docs/collector.md lists them), and served
 * as Prometheus metrics (--metrics-listen; docs/deploy.md, "Metrics") from
 * the same table, so the two always name the same counters.
 */
#ifndef FLOWPIC_COLLECTOR_COUNTERS_H
#define FLOWPIC_COLLECTOR_COUNTERS_H

#include <stdint.h>
#include <stdio.h>

#include "core/metrics.h"
#include "rpc/http_metrics.h"

/*
 * X-macro: one place names every counter, in print order, with its kind
 * (COUNTER: only grows, flowpic_collector_NAME_total; GAUGE: can go down,
 * flowpic_collector_NAME) and its HELP text.
 */
#define COLLECTOR_COUNTERS(X) \
	X(connections_accepted, COUNTER, "TCP connections accepted") \
	X(connections_open, GAUGE, "connections open now") \
	X(connections_closed, COUNTER, "connections closed") \
	X(streams_opened, COUNTER, "gRPC calls (HTTP/2 streams) opened") \
	X(streams_ok, COUNTER, "calls ended with grpc-status OK") \
	X(batches, COUNTER, "batches received and put into a transaction") \
	X(verdicts_received, COUNTER, "verdicts in the batches received") \
	X(verdicts_stored, COUNTER, "verdicts new to the store, committed") \
	X(verdicts_duplicate, COUNTER, "verdicts already stored (resends), committed") \
	X(verdicts_rejected, COUNTER, \
	  "verdicts refused as invalid (seq 0), counted in Ack.rejected") \
	X(counters_stored, COUNTER, "agent counters stored with the batches") \
	X(acks_sent, COUNTER, "acknowledgements sent") \
	X(commits, COUNTER, "store transactions committed") \
	X(bytes_in, COUNTER, "HTTP/2 bytes read from agents (TLS records excluded)") \
	X(bytes_out, COUNTER, "HTTP/2 bytes written to agents (TLS records excluded)") \
	X(err_refused_max_connections, COUNTER, \
	  "connections closed at once: --max-connections reached") \
	X(err_refused_per_source, COUNTER, \
	  "connections closed at once: --max-per-source reached for the address") \
	X(err_accept, COUNTER, "accept4 failures (fd limit): the listener paused") \
	X(err_tls_handshake, COUNTER, "TLS handshakes that failed") \
	X(err_tls_no_h2, COUNTER, "TLS connections without ALPN h2") \
	X(err_http2_protocol, COUNTER, "connections ended for HTTP/2 protocol errors") \
	X(err_bad_request, COUNTER, \
	  "requests refused with HTTP 405 or 415 (not POST, not application/grpc)") \
	X(err_unknown_method, COUNTER, "calls to another gRPC method (UNIMPLEMENTED)") \
	X(err_unauthenticated, COUNTER, "calls with a wrong or missing token (UNAUTHENTICATED)") \
	X(err_grpc_frame, COUNTER, "gRPC messages with a bad flag byte (INTERNAL)") \
	X(err_message_too_big, COUNTER, "gRPC messages over --max-message (RESOURCE_EXHAUSTED)") \
	X(err_compressed, COUNTER, "compressed messages or grpc-encoding (UNIMPLEMENTED)") \
	X(err_truncated, COUNTER, "calls that ended inside a message (INTERNAL)") \
	X(err_bad_protobuf, COUNTER, "messages that are not a Batch (INVALID_ARGUMENT)") \
	X(err_bad_batch, COUNTER, \
	  "batches without agent_id, with an over-long string or too many probabilities (INVALID_ARGUMENT)") \
	X(err_out_of_range, COUNTER, \
	  "batches with a port or protocol out of range (INVALID_ARGUMENT)") \
	X(err_non_finite, COUNTER, \
	  "batches with a NaN or infinite confidence or probability (INVALID_ARGUMENT)") \
	X(err_bad_cells, COUNTER, \
	  "batches with a picture (Verdict.cells) out of range or order (INVALID_ARGUMENT)") \
	X(err_permission_denied, COUNTER, \
	  "batches whose agent_id is not the token's or certificate's (PERMISSION_DENIED)") \
	X(err_store, COUNTER, \
	  "store transactions that failed (disk full, database gone): their calls end UNAVAILABLE") \
	X(err_store_batch, COUNTER, "batches the database refused alone (INVALID_ARGUMENT)") \
	X(err_store_busy, COUNTER, \
	  "batches refused while verdicts pile up behind a slow store or a locked SQLite file " \
	  "(UNAVAILABLE)") \
	X(store_busy_retries, COUNTER, "commits retried because the SQLite file was locked") \
	X(store_inflight, GAUGE, \
	  "groups of batches with the store thread, being written and committed (0 or 1)") \
	X(store_queued_batches, GAUGE, \
	  "batches waiting for the store thread: the next group, filling") \
	X(store_queued_verdicts, GAUGE, "verdicts in those batches") \
	X(store_paused, COUNTER, \
	  "times the next group reached --commit-max while one was written: connections " \
	  "with calls not read until it went to the store thread") \
	X(store_thread_ms, COUNTER, \
	  "milliseconds the store thread spent writing groups (rate / 1000: its busy share)") \
	X(err_idle_timeout, COUNTER, \
	  "connections closed by --idle-timeout or --handshake-timeout") \
	X(err_auth_timeout, COUNTER, \
	  "connections closed: no call with the right token within --handshake-timeout") \
	X(err_memory_budget, COUNTER, \
	  "calls ended because partial messages exceeded --max-buffered") \
	X(err_message_timeout, COUNTER, \
	  "calls ended because a message was not whole within --message-timeout") \
	X(err_slow_client, COUNTER, \
	  "connections closed because the client left its output or acks unread (--slow-timeout)") \
	X(err_io, COUNTER, "connections closed on a socket read or write error") \
	X(streams_reset_by_peer, COUNTER, "calls the agent cancelled (RST_STREAM)") \
	X(log_suppressed, COUNTER, "warning lines left out by the log rate limit") \
	X(nats_published, COUNTER, "verdicts JetStream acknowledged (--nats)") \
	X(nats_duplicates, COUNTER, \
	  "of those, acknowledged as duplicates: already in the stream's duplicate window") \
	X(nats_errors, COUNTER, \
	  "publishes that failed or were not acknowledged in time: sent again (--nats)") \
	X(nats_backlog, GAUGE, "verdicts published but not yet acknowledged by JetStream") \
	X(err_nats_backlog, COUNTER, \
	  "calls ended UNAVAILABLE: their commit would pass --nats-backlog") \
	WEB_COUNTERS(X)

/* The dashboard's (--web-listen; collector/web/, docs/dashboard.md): kept by
 * its thread, copied into these at each step of the loop (web_counters()). */
#define WEB_COUNTERS(X) \
	X(web_connections, COUNTER, "dashboard connections accepted") \
	X(web_refused_busy, COUNTER, \
	  "dashboard connections closed at once: all 128 slots (connections and " \
	  "HTTP/2 streams) were taken") \
	X(web_requests, COUNTER, "dashboard requests answered") \
	X(web_logins, COUNTER, "dashboard logins (a viewer token or a client certificate)") \
	X(web_login_failed, COUNTER, \
	  "dashboard logins refused: a wrong token or a foreign Origin") \
	X(web_unauthorized, COUNTER, \
	  "dashboard requests without a valid session (401, or 303 to /login for pages)") \
	X(web_csrf_refused, COUNTER, "dashboard POSTs without the session's X-CSRF-Token (403)") \
	X(web_bad_request, COUNTER, "dashboard requests malformed or with bad parameters (400)") \
	X(web_not_found, COUNTER, "dashboard requests for no such page, file or flow (404)") \
	X(web_method, COUNTER, "dashboard requests with a method the path does not take (405)") \
	X(web_too_large, COUNTER, \
	  "dashboard requests too large: headers (431), a body or an upload (413)") \
	X(web_errors, COUNTER, "dashboard answers 500: a store query failed (the reason logged)") \
	X(web_timeouts, COUNTER, \
	  "dashboard connections closed: a request not whole or an answer not taken in 30 s") \
	X(web_tls_handshake, COUNTER, "dashboard TLS handshakes that failed") \
	X(web_h2_connections, COUNTER, \
	  "dashboard connections speaking HTTP/2 (ALPN h2, or the preface in plain text)") \
	X(web_h2_refused, COUNTER, \
	  "dashboard HTTP/2 streams refused (REFUSED_STREAM): all 128 slots were taken") \
	X(web_h2_errors, COUNTER, "dashboard HTTP/2 connections closed on a protocol error") \
	X(web_sse_clients, GAUGE, "live feed (SSE) clients connected now") \
	X(web_sse_refused, COUNTER, "live feed clients refused: 16 were connected (503)") \
	X(web_live_verdicts, COUNTER, "verdicts handed to the live feed") \
	X(web_live_dropped, COUNTER, \
	  "live verdicts dropped: the ring was full, or a client too slow (a gap event)") \
	X(web_uploads, COUNTER, "captures uploaded and classified") \
	X(web_upload_refused, COUNTER, \
	  "uploads refused: another one running (503), or not a capture the CLI reads (400)") \
	X(web_upload_partial, COUNTER, \
	  "uploads that ended early (a truncated capture): classified as far as they went") \
	X(web_upload_stored, COUNTER, "verdicts of uploads stored (store=1; agent upload)") \
	X(web_upload_store_failed, COUNTER, \
	  "uploads whose verdicts could not be stored (store=1; nothing of them stored)")

struct collector_counters {
#define X(name, kind, help) uint64_t name;
	COLLECTOR_COUNTERS(X)
#undef X
	/* The /metrics listener's own (metrics_*), copied after each of its steps. */
	struct http_metrics_stats metrics;
	/* Seconds from a batch's receipt to the commit that stored it. */
	struct metrics_hist store_latency;
	/* Seconds the store thread took per group: puts, commit, retries. */
	struct metrics_hist store_commit;
};

/* Zero c and set up its histogram. */
void collector_counters_init(struct collector_counters *c);

/* {"event":"counters","connections_accepted":N,...}\n, one fflush'ed line. */
void collector_counters_print(const struct collector_counters *c, FILE *out);

/* The same counters as Prometheus text (core/metrics.h), plus the histogram. */
void collector_counters_metrics(const struct collector_counters *c, struct sbuf *b);

#endif
