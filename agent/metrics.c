// SPDX-License-Identifier: MIT
/* metrics.c - the agent's Prometheus metrics; see metrics.h. */
#include "metrics.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/metrics.h"
#include "rpc/http_metrics.h"

#define PREFIX "flowpic_agent_"

/* Every counter of the counters line: its HELP and whether it can go down
 * (a gauge).  Names as agent.c, live.c (capture_*), stream.c (stream.*) give them. */
static const struct {
	const char *name;
	bool gauge;
	const char *help;
} docs[] = {
	{ "packets", false, "packet records that reached the agent's packet path" },
	{ "packets_tcp", false, "TCP packet records that reached the packet path" },
	{ "packets_udp", false, "UDP packet records that reached the packet path" },
	{ "packets_ingress", false, "live: packet records from XDP (arriving)" },
	{ "packets_egress", false, "live: packet records from TC egress (leaving)" },
	{ "skipped_link_unsupported", false, "records skipped: link type not decoded" },
	{ "skipped_truncated", false, "records skipped: headers cut short" },
	{ "skipped_not_ip", false, "records skipped: not IP (ARP, LLDP, ...)" },
	{ "skipped_ip_malformed", false, "records skipped: bad IP header fields" },
	{ "skipped_fragment", false, "records skipped: IP fragments" },
	{ "skipped_icmp", false, "records skipped: ICMP and ICMPv6" },
	{ "skipped_other_l4", false, "records skipped: other IP protocols" },
	{ "skipped_l4_malformed", false, "records skipped: inconsistent TCP or UDP header" },
	{ "skipped_flow_table_full", false, "packets of new flows refused: --max-flows reached" },
	{ "skipped_csv_bad_line", false, "replay: samples CSV rows that do not parse" },
	{ "flows", false, "flows created" },
	{ "flows_active", true, "flows open now" },
	{ "flows_active_max", true, "most flows open at once" },
	{ "samples", false, "samples binned into pictures" },
	{ "oversize", false, "packets of 1500+ payload bytes (counted, not drawn)" },
	{ "reordered", false, "out-of-order packet times clamped (0 with the merge)" },
	{ "super_packets", false, "TCP records larger than their flow's segment size" },
	{ "super_segments", false, "wire segments the super-packets were counted as" },
	{ "samples_late", false, "samples for a block already handed out (0 with the merge)" },
	{ "cells_refused", false, "samples refused: the cell pool (--max-cells) was empty" },
	{ "cells_in_use_max", true, "most picture cells in use at once" },
	{ "blocks", false, "blocks handed out to the classifier" },
	{ "blocks_empty", false, "blocks lost whole to the cell pool" },
	{ "blocks_failed", false, "blocks the classifier refused" },
	{ "verdicts_block", false, "block verdicts given" },
	{ "verdicts_block_early", false, "block verdicts from partial blocks" },
	{ "verdicts_flow", false, "flow verdicts given" },
	{ "verdicts_flow_early", false, "flow verdicts of flows without a complete block" },
	{ "verdicts_flow_unknown", false, "flow verdicts unknown (sparse, other, disagree, ...)" },
	{ "flows_untracked", false, "flows whose block votes could not be kept" },
	{ "output_errors", false, "verdict lines that could not be written to stdout" },
	{ "samples_out_errors", false, "--samples-out rows that could not be written" },
	{ "stream_rejected", false,
	  "verdicts the stream did not take (submit ring full, or closing): lost" },
	{ "sweeps", false, "live: deadline sweeps run" },
	{ "capture_ingress_frames", false, "BPF: frames seen at XDP" },
	{ "capture_egress_skbs", false, "BPF: skbs seen at TC egress" },
	{ "capture_tcp_packets", false, "BPF: TCP packets recorded (wire segments)" },
	{ "capture_udp_packets", false, "BPF: UDP packets recorded" },
	{ "capture_gso_super_packets", false, "BPF: egress GSO super-packets" },
	{ "capture_skip_truncated", false, "BPF skip: headers cut short" },
	{ "capture_skip_not_ip", false, "BPF skip: not IP" },
	{ "capture_skip_ip_malformed", false, "BPF skip: bad IP header fields" },
	{ "capture_skip_fragment", false, "BPF skip: IP fragments" },
	{ "capture_skip_icmp", false, "BPF skip: ICMP and ICMPv6" },
	{ "capture_skip_other_l4", false, "BPF skip: other IP protocols" },
	{ "capture_skip_l4_malformed", false, "BPF skip: inconsistent TCP or UDP header" },
	{ "capture_lost_too_big", false, "capture loss: payload or header beyond the record" },
	{ "capture_lost_ring_full", false, "capture loss: ring buffer full (packets lost)" },
	{ "capture_flow_map_full", false, "BPF flow map full: sent as full records (no loss)" },
	{ "capture_flush_busy", false, "packets that met a batch flush: full records (no loss)" },
	{ "capture_ring_records", false, "ring records submitted" },
	{ "capture_ring_batches", false, "batch records submitted (batches design)" },
	{ "capture_delivered", false, "packets handed from the rings to the agent" },
	{ "capture_lost_bad_record", false, "capture loss: ring records that do not decode" },
	{ "capture_lost_unknown_slot", false, "capture loss: records for an unknown slot" },
	{ "capture_merge_late", false, "packets that arrived after their watermark" },
	{ "capture_merge_forced", false, "packets handed out early: the merge was full" },
	{ "capture_merge_held", true, "records the time-ordered merge holds now" },
	{ "capture_merge_held_max", true, "most records the merge held at once" },
	{ "capture_lost_total", false, "capture loss, all reasons (what to alert on)" },
	{ "loopback_egress_skipped", false, "loopback TC egress copies left out" },
	{ "stream.submitted", false, "verdicts handed to the stream" },
	{ "stream.rejected", false, "verdicts the stream refused (submit ring full)" },
	{ "stream.pictures", false, "block verdicts sent with their picture (--send-pictures)" },
	{ "stream.pictures_too_big", false,
	  "block verdicts sent without their picture: over 8192 non-zero pixels" },
	{ "stream.pictures_no_room", false,
	  "block verdicts sent without their picture: the picture buffer was full" },
	{ "stream.queued", true, "verdicts in memory waiting for the collector" },
	{ "stream.spooled", true, "verdicts in the spool now (the collector away or slow)" },
	{ "stream.spooled_total", false, "verdicts ever written to the spool" },
	{ "stream.replayed", false, "verdicts found in the spool at start" },
	{ "stream.sent", false, "verdicts written to the collector (resends count again)" },
	{ "stream.acked", false, "verdicts the collector acknowledged" },
	{ "stream.stored", false, "verdicts the collector newly stored" },
	{ "stream.duplicates", false, "verdicts the collector already had" },
	{ "stream.dropped", false, "verdicts lost: they did not fit under --spool-max-bytes" },
	{ "stream.spool_corrupt", false, "spool records unreadable (bad checksum, cut short)" },
	{ "stream.batches_sent", false, "batches written to the collector" },
	{ "stream.batches_acked", false, "batches the collector acknowledged" },
	{ "stream.connects", false, "connections that reached the Stream call" },
	{ "stream.reconnects", false, "connections after the first" },
	{ "stream.connect_failures", false, "connection attempts that failed" },
	{ "stream.refusals", false, "calls the collector ended with a non-OK status" },
	{ "stream.connected", true, "1 while connected to the collector" },
	{ "stream.spool_bytes", true, "the spool's size on disk now, bytes" },
	{ "stream.spool_max_bytes", true, "the spool's limit (--spool-max-bytes; 0: no spool)" },
};

/* Where the rule (the name, '.' as '_') would give two counters one metric:
 * "stream_rejected" is the agent's own (a superset), the stream's gets its reason. */
static const struct {
	const char *name, *metric;
} renamed[] = { { "stream.rejected", "stream_ring_full" } };

/* Live verdicts come a window (15 s) after a block starts, or up to
 * idle-timeout later for a flow that went quiet. */
static const double latency_bounds[] = { 0.5, 1, 2, 5, 10, 15, 16, 18, 20, 30, 60, 120, 300 };
/* Verdicts waiting for the collector: a batch is 500, the memory queue 64 batches. */
static const double backlog_bounds[] = { 0,	10,    100,    500,	1000,	 5000,
					 10000, 32000, 100000, 1000000, 10000000 };

static struct {
	struct http_metrics *http;
	pthread_t thread;
	bool running;
	struct metrics_hist latency; /* the agent's thread's own */
	struct metrics_hist backlog; /* sampled at publish, the agent's thread */
	pthread_mutex_t mu;	     /* guards the snapshot below */
	struct agent_counter snap[AGENT_MAX_COUNTERS];
	size_t nsnap;
	struct metrics_hist snap_latency, snap_backlog;
} m = { .mu = PTHREAD_MUTEX_INITIALIZER };

const char *agent_metrics_help(const char *name, bool *gauge, const char **metric)
{
	size_t i;

	*metric = name;
	*gauge = false;
	for (i = 0; i < sizeof(renamed) / sizeof(renamed[0]); i++)
		if (!strcmp(renamed[i].name, name))
			*metric = renamed[i].metric;
	for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++)
		if (!strcmp(docs[i].name, name)) {
			*gauge = docs[i].gauge;
			return docs[i].help;
		}
	return NULL;
}

static void hists_init(void)
{
	metrics_hist_init(&m.latency, latency_bounds,
			  sizeof(latency_bounds) / sizeof(latency_bounds[0]));
	metrics_hist_init(&m.backlog, backlog_bounds,
			  sizeof(backlog_bounds) / sizeof(backlog_bounds[0]));
	m.snap_latency = m.latency;
	m.snap_backlog = m.backlog;
}

/* HELP of a metrics_* counter: the listener's own list names them. */
static const char *listener_help(const char *name)
{
	struct http_metrics_stats zero = { 0 };
	struct http_metrics_stat st[HTTP_METRICS_NSTATS];
	size_t k, n = http_metrics_stats_list(&zero, st, HTTP_METRICS_NSTATS);

	for (k = 0; k < n; k++)
		if (!strcmp(st[k].name, name))
			return st[k].help;
	return NULL;
}

static int render_into(struct sbuf *b, const struct agent_counter *c, size_t n,
		       const struct metrics_hist *lat, const struct metrics_hist *backlog)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const char *metric, *help;
		char fallback[96];
		bool gauge;

		help = agent_metrics_help(c[i].name, &gauge, &metric);
		if (!help)
			help = listener_help(c[i].name);
		if (!help) {
			snprintf(fallback, sizeof(fallback),
				 "flowpic-agent counter %s (docs/agent.md)", c[i].name);
			help = fallback;
		}
		metrics_counter(b, PREFIX, metric, gauge, help, c[i].value);
	}
	metrics_histogram(b, PREFIX "verdict_latency_seconds",
			  "live: seconds from a block's start (the flow's first packet + k x "
			  "window) to its verdict; one observation per block verdict",
			  lat);
	metrics_histogram(b, PREFIX "stream_backlog_verdicts",
			  "verdicts waiting for the collector's acknowledgement (in memory and "
			  "in the spool), sampled once per sweep (live) or per counters refresh "
			  "(replay)",
			  backlog);
	return b->oom ? -ENOMEM : 0;
}

int agent_metrics_render_list(const struct agent_counter *c, size_t n, struct sbuf *b)
{
	if (!m.latency.n)
		hists_init();
	return render_into(b, c, n, &m.latency, &m.backlog);
}

/* The metrics thread: the latest snapshot, copied out under the mutex. */
static int render(void *ctx, char **body, size_t *len)
{
	struct agent_counter c[AGENT_MAX_COUNTERS];
	struct metrics_hist lat, backlog;
	struct sbuf b;
	size_t n;

	(void)ctx;
	pthread_mutex_lock(&m.mu);
	n = m.nsnap;
	memcpy(c, m.snap, n * sizeof(c[0]));
	lat = m.snap_latency;
	backlog = m.snap_backlog;
	pthread_mutex_unlock(&m.mu);
	memset(&b, 0, sizeof(b));
	if (render_into(&b, c, n, &lat, &backlog) < 0) {
		sbuf_free(&b);
		return -ENOMEM;
	}
	*body = b.p;
	*len = b.len;
	return 0;
}

void agent_metrics_block_latency(uint64_t block_start_ns, uint64_t now_ns)
{
	if (!m.http)
		return;
	metrics_hist_observe(&m.latency,
			     now_ns > block_start_ns ? (double)(now_ns - block_start_ns) / 1e9 : 0);
}

void agent_metrics_publish(const struct agent_counter *c, size_t n, bool sample)
{
	uint64_t backlog = 0;
	bool have = false;
	size_t i;

	if (!m.http)
		return;
	for (i = 0; i < n; i++)
		if (!strcmp(c[i].name, "stream.queued") || !strcmp(c[i].name, "stream.spooled")) {
			backlog += c[i].value;
			have = true;
		}
	if (sample && have)
		metrics_hist_observe(&m.backlog, (double)backlog);
	if (n > AGENT_MAX_COUNTERS)
		n = AGENT_MAX_COUNTERS;
	pthread_mutex_lock(&m.mu);
	memcpy(m.snap, c, n * sizeof(c[0]));
	m.nsnap = n;
	m.snap_latency = m.latency;
	m.snap_backlog = m.backlog;
	pthread_mutex_unlock(&m.mu);
}

void agent_metrics_counters(struct agent_counter *out, size_t *n, size_t max)
{
	struct http_metrics_stats st;
	struct http_metrics_stat l[HTTP_METRICS_NSTATS];
	size_t i, k;

	if (!m.http)
		return;
	http_metrics_get_stats(m.http, &st);
	k = http_metrics_stats_list(&st, l, HTTP_METRICS_NSTATS);
	for (i = 0; i < k && *n < max; i++)
		out[(*n)++] = (struct agent_counter){ l[i].name, l[i].value };
}

int agent_metrics_listen(const char *addr, char *err, size_t errlen)
{
	hists_init();
	m.http = http_metrics_new(addr, render, NULL, err, errlen);
	return m.http ? 0 : -EINVAL;
}

const char *agent_metrics_address(void)
{
	return m.http ? http_metrics_address(m.http) : NULL;
}

static void *serve(void *arg)
{
	(void)arg;
	while (!http_metrics_stopping(m.http))
		http_metrics_step(m.http, -1);
	return NULL;
}

int agent_metrics_start(char *err, size_t errlen)
{
	int rc;

	if (!m.http || m.running)
		return 0;
	rc = pthread_create(&m.thread, NULL, serve, NULL);
	if (rc) {
		snprintf(err, errlen, "--metrics-listen %s: cannot start its thread: %s",
			 http_metrics_address(m.http), strerror(rc));
		return -rc;
	}
	m.running = true;
	return 0;
}

void agent_metrics_stop(void)
{
	if (!m.http)
		return;
	if (m.running) {
		http_metrics_stop(m.http);
		pthread_join(m.thread, NULL);
		m.running = false;
	}
	http_metrics_free(m.http);
	m.http = NULL;
}
