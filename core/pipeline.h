/* SPDX-License-Identifier: MIT */
/*
 * pipeline.h - run one source through a flow table and account for every
 * record read: it became part of a flow, or it was skipped with a reason.
 * The one loop shared by the CLI commands and the agent's replay.
 */
#ifndef FLOWPIC_PIPELINE_H
#define FLOWPIC_PIPELINE_H

#include <stdbool.h>
#include <stdint.h>

#include "flow.h"
#include "pkt.h"
#include "source.h"

struct pipeline_counts {
	uint64_t records;		     /* frames or CSV rows read */
	uint64_t in_flows;		     /* accepted by the flow table */
	uint64_t tcp, udp;		     /* decoded TCP / UDP packets (accepted or refused) */
	uint64_t skipped[SKIP_REASON_COUNT]; /* by reason; [SKIP_NONE] unused */
};

/* The stop hook is asked every this many records (the agent reads its
 * signals there: a syscall each time, so not at every record). */
#define PIPELINE_STOP_EVERY 4096

/* Optional hooks: progress about every 65536 records (for a terminal), a
 * tap that sees every decoded packet before the flow table (CSV export), and
 * stop, asked every PIPELINE_STOP_EVERY records with the counts so far: true
 * ends the run there (the agent's replay on SIGINT/SIGTERM). */
struct pipeline_hooks {
	void (*progress)(void *ctx, const struct source *s);
	void (*tap)(void *ctx, const struct pkt *p);
	bool (*stop)(void *ctx, const struct pipeline_counts *c);
	void *ctx;
};

/*
 * Read s to its end into ft (the caller flushes ft).  Returns 0 when the
 * whole input was read, -EIO when reading stopped early (source_error()
 * says why; the caller logs it, or counts it as the dashboard's uploads do),
 * -EINTR when the stop hook asked to stop.  Either way everything read
 * before is kept.
 */
int pipeline_run(struct source *s, struct flow_table *ft, struct pipeline_counts *c,
		 const struct pipeline_hooks *hooks);

/* Records skipped for any reason. */
uint64_t pipeline_skipped(const struct pipeline_counts *c);

#endif
