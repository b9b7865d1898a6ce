/* SPDX-License-Identifier: MIT */
/*
 * counters.h - the collector's own counters: connections, calls, batches,
 * verdicts stored and duplicated, and every error by reason.  Printed as one
 * JSON line on SIGUSR1 and at exit (docs/collector.md lists them).
 */
#ifndef FLOWPIC_COLLECTOR_COUNTERS_H
#define FLOWPIC_COLLECTOR_COUNTERS_H

#include <stdint.h>
#include <stdio.h>

/* X-macro: one place names every counter, in print order. */
#define COLLECTOR_COUNTERS(X) \
	X(connections_accepted) \
	X(connections_open) \
	X(connections_closed) \
	X(streams_opened) \
	X(streams_ok) \
	X(batches) \
	X(verdicts_received) \
	X(verdicts_stored) \
	X(verdicts_duplicate) \
	X(verdicts_rejected) \
	X(counters_stored) \
	X(acks_sent) \
	X(commits) \
	X(bytes_in) \
	X(bytes_out) \
	X(err_refused_max_connections) \
	X(err_refused_per_source) \
	X(err_accept) \
	X(err_tls_handshake) \
	X(err_tls_no_h2) \
	X(err_http2_protocol) \
	X(err_bad_request) \
	X(err_unknown_method) \
	X(err_unauthenticated) \
	X(err_grpc_frame) \
	X(err_message_too_big) \
	X(err_compressed) \
	X(err_truncated) \
	X(err_bad_protobuf) \
	X(err_bad_batch) \
	X(err_out_of_range) \
	X(err_non_finite) \
	X(err_permission_denied) \
	X(err_store) \
	X(err_store_batch) \
	X(err_store_busy) \
	X(store_busy_retries) \
	X(err_idle_timeout) \
	X(err_auth_timeout) \
	X(err_memory_budget) \
	X(err_message_timeout) \
	X(err_slow_client) \
	X(err_io) \
	X(streams_reset_by_peer) \
	X(log_suppressed)

struct collector_counters {
#define X(name) uint64_t name;
	COLLECTOR_COUNTERS(X)
#undef X
};

/* {"event":"counters","connections_accepted":N,...}\n, one fflush'ed line. */
void collector_counters_print(const struct collector_counters *c, FILE *out);

#endif
