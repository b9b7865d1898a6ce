/* SPDX-License-Identifier: MIT */
/*
 * agent.h - the agent's one downstream path: packet records (from the BPF
 * rings or from a capture file) -> flow table -> blocks -> int8 verdicts ->
 * JSON lines on stdout (core/flow_json.h, the same writer as
 * `flowpic classify --json`), and the counters of everything seen or lost.
 *
 * Live capture (live.c) and replay (replay.c) differ only in where struct
 * pkt comes from and in who moves the clock: in replay the packets' own
 * times do; live, a deadline sweep moves it with the wall clock so idle
 * flows end on time without a packet.  Live packets go in one at a time
 * through agent_packet(); replay reads the file with the loop of
 * `flowpic classify` (core/pipeline.h) straight into the flow table and
 * takes its counts (agent_take_counts()).
 */
#ifndef FLOWPIC_AGENT_AGENT_H
#define FLOWPIC_AGENT_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/classify.h"
#include "config.h"
#include "core/flow.h"
#include "core/pkt.h"

/* Exit statuses (docs/agent.md, --help). */
#define AGENT_EXIT_OK 0
#define AGENT_EXIT_FAILURE 1 /* a capture file could not be read at all, or a run-time failure */
#define AGENT_EXIT_USAGE 2   /* bad flag, config file or combination of settings */
#define AGENT_EXIT_PARTIAL 3 /* a capture file was read only in part (what was read is reported) */
#define AGENT_EXIT_MODEL 4   /* the model file would not load */
/* live capture could not start: no such interface, kernel lacks BTF, ring
 * buffers or XDP, attach refused */
#define AGENT_EXIT_CAPTURE 5
#define AGENT_EXIT_PRIVILEGE 6 /* missing capability (not root) */

/* A named counter of the counters line. */
struct agent_counter {
	const char *name;
	uint64_t value;
};

/* Largest number of counters in one line (userspace + BPF + stream). */
#define AGENT_MAX_COUNTERS 160

/* Counted by the agent itself (the flow table and classifier count the rest). */
struct agent_counts {
	uint64_t packets; /* packets handed to the flow table */
	uint64_t tcp, udp;
	uint64_t skipped[SKIP_REASON_COUNT]; /* records not turned into samples, by reason */
	uint64_t ingress, egress;	     /* live: records by direction */
	uint64_t verdicts_block;
	uint64_t verdicts_block_early;
	uint64_t verdicts_flow;
	uint64_t verdicts_flow_early;
	uint64_t verdicts_flow_unknown;
	uint64_t blocks_failed;	  /* classifier refused a block */
	uint64_t output_errors;	  /* stdout lines that could not be written */
	uint64_t samples_errors;  /* --samples-out rows that could not be written */
	uint64_t stream_rejected; /* verdicts the stream did not take */
	uint64_t sweeps;	  /* live deadline sweeps */
};

struct stream;

struct agent {
	const struct agent_config *cfg;
	struct classifier *cls;
	struct flow_table *ft;
	struct stream *stream; /* NULL: verdicts to stdout only */
	FILE *out;	       /* verdict lines */
	FILE *samples;	       /* --samples-out: every packet, as a samples CSV */
	struct agent_counts n;
	const char *ifname_of[AGENT_MAX_IFACES]; /* live: interface names, for the stream */
};

/*
 * Set up the flow table from the model (res, window) and the settings (idle
 * timeout, bounds).  0, or a negative errno with one line in err.
 */
int agent_init(struct agent *a, const struct agent_config *cfg, struct classifier *cls, FILE *out,
	       char *err, size_t errlen);
void agent_fini(struct agent *a);

/* --samples-out: one CSV row for a packet the flow table takes (live:
 * agent_packet(); replay: the pipeline's tap). */
void agent_sample_out(struct agent *a, const struct pkt *p);

/* A live packet: counted, then into the flow table. */
void agent_packet(struct agent *a, const struct pkt *p);

struct pipeline_counts;

/* Replay: the counts of the pipeline that read the file into a->ft become
 * the agent's packet and skip counters (what agent_packet() and agent_skip()
 * would have counted). */
void agent_take_counts(struct agent *a, const struct pipeline_counts *c);

/* A record a source read but could not turn into a packet. */
static inline void agent_skip(struct agent *a, enum skip_reason why)
{
	if (why > SKIP_NONE && why < SKIP_REASON_COUNT)
		a->n.skipped[why]++;
}

/* Move the clock without a packet (live deadline sweep). */
void agent_advance(struct agent *a, uint64_t now_ns);

/* End every flow: their blocks and flow verdicts are given now. */
void agent_flush(struct agent *a);

/*
 * The agent's counters (userspace: packets, skips, flow table, classifier,
 * output) appended to out[*n .. max).
 */
void agent_counters(const struct agent *a, struct agent_counter *out, size_t *n, size_t max);

/* One line {"counters":{"name":value,...}} and a newline, flushed. */
void agent_counters_write(FILE *f, const struct agent_counter *c, size_t n);

#endif
