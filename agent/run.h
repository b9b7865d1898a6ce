/* SPDX-License-Identifier: MIT */
/*
 * run.h - one run of the agent: the pipeline (agent.h), the signals that
 * steer it, and where its counters go.  main.c sets it up and calls
 * replay_run() or live_run(); those drive it from their sources with the
 * helpers of run.c, which know nothing of either source.
 */
#ifndef FLOWPIC_AGENT_RUN_H
#define FLOWPIC_AGENT_RUN_H

#include <stdbool.h>
#include <stdio.h>

#include "agent.h"

struct capture;

struct run {
	struct agent agent;
	const struct agent_config *cfg;
	int sigfd;    /* signalfd: SIGINT, SIGTERM, SIGUSR1 (blocked otherwise) */
	bool started; /* the file opened or the capture attached: counters at exit */
	bool stop;    /* SIGINT or SIGTERM seen */
	int stop_signal;
	FILE *counters_out;	   /* stderr or --counters-file */
	struct capture *cap;	   /* live only */
	uint64_t next_counters_ns; /* --counters-every: next periodic line (CLOCK_MONOTONIC) */
	/* The source's own counters appended to the agent's (live: the
	 * capture's), set by the source; NULL: none. */
	void (*source_counters)(struct run *r, struct agent_counter *out, size_t *n, size_t max);
};

/* run.c */

/* Read pending signals without waiting: SIGUSR1 writes the counters,
 * SIGINT/SIGTERM set stop. */
void run_signals(struct run *r);

/* Write the counters line now (userspace + BPF + stream). */
void run_counters_dump(struct run *r);

/*
 * Start the verdict stream when --collector is set (its own thread: live,
 * only after the capabilities are dropped, since they are per thread).
 * AGENT_EXIT_OK, or _USAGE with the error logged.
 */
int run_stream_open(struct run *r);
/* The same in two steps (live): prepare reads the token and TLS files (as
 * root), start opens the spool and starts the thread (as the user the agent
 * switched to).  After a failed start the stream is gone. */
int run_stream_prepare(struct run *r);
int run_stream_start(struct run *r);

/*
 * Flush the verdict stream, wait up to collector-wait for acknowledgements
 * and spool the rest (nothing without --collector).  AGENT_EXIT_OK, or
 * _FAILURE when verdicts could not be kept (logged).
 */
int run_stream_close(struct run *r);

/* The counters the verdict stream's batches carry, refreshed. */
void run_counters_publish(struct run *r);

/* Monotonic clock in ns. */
uint64_t run_mono_ns(void);

/* replay.c: replay cfg->pcap, an AGENT_EXIT_* status. */
int replay_run(struct run *r);

/* live.c: capture live on cfg->ifaces until SIGINT/SIGTERM: an AGENT_EXIT_* status. */
int live_run(struct run *r);

#endif
