/* SPDX-License-Identifier: MIT */
/*
 * metrics.h - the agent's Prometheus metrics (--metrics-listen; docs/deploy.md,
 * "Metrics"): every counter of the counters line as flowpic_agent_<name>_total
 * (or a gauge), and two histograms, served on GET /metrics by a thread of
 * its own (rpc/http_metrics.h).
 *
 * The packet path never waits for it: the agent's thread publishes the
 * counters it already gathers for the counters line and the stream's
 * batches (run.c) into a snapshot under a short mutex, every sweep (live)
 * or every few thousand records (replay), and at every counters line; the
 * metrics thread serves the latest snapshot.  The list it serves is the
 * very list the counters line prints, so the two cannot diverge.
 *
 * One listener per process: the state lives in metrics.c.
 */
#ifndef FLOWPIC_AGENT_METRICS_H
#define FLOWPIC_AGENT_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent.h"

/* Bind the listener (before the capture is loaded, so a bad address stops
 * the agent early).  0, or a negative errno with one line in err. */
int agent_metrics_listen(const char *addr, char *err, size_t errlen);
/* The address bound, or NULL when off. */
const char *agent_metrics_address(void);

/* Start serving (a thread: live, only after the capabilities are dropped,
 * since threads keep those they were created with).  No-op when off.
 * 0, or a negative errno with one line in err. */
int agent_metrics_start(char *err, size_t errlen);

/* Stop the thread and close the listener. */
void agent_metrics_stop(void);

/* A block verdict, live: seconds from the block's start (its first packet
 * for a flow's first block) to now (CLOCK_REALTIME ns both).  Agent thread. */
void agent_metrics_block_latency(uint64_t block_start_ns, uint64_t now_ns);

/*
 * The counters now (the counters line's list, "stream.*" included), for the
 * next scrapes.  sample: also add one observation of the stream backlog
 * (stream.queued + stream.spooled) to its histogram.  Agent thread.
 */
void agent_metrics_publish(const struct agent_counter *c, size_t n, bool sample);

/* The listener's own counters (metrics_scrapes, metrics_err_*) appended,
 * when it is on. */
void agent_metrics_counters(struct agent_counter *out, size_t *n, size_t max);

/* The Prometheus text of a counters list and the histograms (what a scrape
 * gets; exposed for the unit test).  0, or -ENOMEM. */
struct sbuf;
int agent_metrics_render_list(const struct agent_counter *c, size_t n, struct sbuf *b);

/* The HELP text of a counter name, whether it is a gauge, and the name its
 * metric is made from (the name itself but where that would collide); NULL
 * when the name is not documented (the unit test checks that none is). */
const char *agent_metrics_help(const char *name, bool *gauge, const char **metric);

#endif
