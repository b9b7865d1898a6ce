/* SPDX-License-Identifier: MIT */
/*
 * forward.h - the verdicts also go to a collector (--collector): each block
 * and flow verdict becomes a flowpic.v1.Verdict handed to the stream library
 * (stream/stream.h: its own thread, batches, acknowledgements, spool).
 * stream_submit() never blocks, so the packet path never waits for the
 * network; a verdict it refuses is counted (stream_rejected).
 *
 * Direction: a flow whose initiator is one of this host's addresses (read
 * at start) is outbound, one whose responder is, inbound; otherwise (a
 * replayed file, forwarded traffic) unspecified.
 */
#ifndef FLOWPIC_AGENT_FORWARD_H
#define FLOWPIC_AGENT_FORWARD_H

#include <stddef.h>

#include "agent.h"

/* Start the stream (--collector and its settings): forward_prepare() then
 * forward_start().  0, or a negative errno with one line in err. */
int forward_open(struct agent *a, const struct agent_config *cfg, const char *where, char *err,
		 size_t errlen);
/* The token and TLS files read, the stream set up (stream_prepare()); then,
 * possibly as another user, the spool opened and the thread started.  After
 * a failed start, forward_close() frees the prepared stream. */
int forward_prepare(struct agent *a, const struct agent_config *cfg, char *err, size_t errlen);
int forward_start(struct agent *a, const struct agent_config *cfg, const char *where, char *err,
		  size_t errlen);

void forward_block(struct agent *a, const struct flow *f, const struct block *b,
		   const struct block_verdict *v);
void forward_flow(struct agent *a, const struct flow *f, const struct flow_verdict *v);

/* The counters the stream's batches carry: a snapshot the stream's thread copies. */
void forward_publish(struct agent *a, const struct agent_counter *c, size_t n);

/* The stream's counters ("stream.acked", ...) appended. */
void forward_counters(struct agent *a, struct agent_counter *out, size_t *n, size_t max);

/* Flush, wait up to wait_ns for acknowledgements, spool the rest, stop.
 * 0, or -EIO when verdicts could not be kept (logged; counted as
 * stream.dropped). */
int forward_close(struct agent *a, uint64_t wait_ns);

#endif
