// SPDX-License-Identifier: MIT
/*
 * replay.c - `flowpic-agent --pcap FILE`: a capture file (or samples CSV;
 * "-": standard input, a pipe read as a stream) read by the same loop as `flowpic classify` (core/pipeline.h) into the
 * agent's flow table, whose blocks and flows get the same verdict path as
 * live capture.  The clock is the packets' own, so the flows, blocks and
 * verdicts are exactly those of `flowpic classify --json` on the same file
 * and model.
 */
#include <errno.h>

#include "core/log.h"
#include "core/pipeline.h"
#include "run.h"
#include "core/source.h"

/* Every PIPELINE_STOP_EVERY records: SIGUSR1 (counters as of now),
 * SIGINT/SIGTERM (stop), --counters-every. */
static bool replay_stop(void *ctx, const struct pipeline_counts *c)
{
	struct run *r = ctx;

	agent_take_counts(&r->agent, c);
	run_signals(r);
	return r->stop;
}

/* --samples-out: the file's packets as the flow table takes them. */
static void replay_tap(void *ctx, const struct pkt *p)
{
	struct run *r = ctx;

	agent_sample_out(&r->agent, p);
}

int replay_run(struct run *r)
{
	struct pipeline_hooks hooks = { .stop = replay_stop, .ctx = r };
	struct pipeline_counts c = { 0 };
	char err[512];
	struct source *s;
	int status, rc;

	if (r->agent.samples)
		hooks.tap = replay_tap;
	status = run_stream_open(r);
	if (status)
		return status;
	s = source_open(r->cfg->pcap, err, sizeof(err));
	if (!s) {
		log_error("%s", err);
		return AGENT_EXIT_FAILURE;
	}
	r->started = true;
	log_info("replaying %s (%s)", source_name(r->cfg->pcap), source_kind_name(source_kind(s)));
	rc = pipeline_run(s, r->agent.ft, &c, &hooks);
	if (rc == -EIO) { /* what was read before stays and its flows end below */
		log_error("%s", source_error(s));
		status = AGENT_EXIT_PARTIAL;
	} else if (rc == -EINTR) {
		log_warn("stopped by signal %d after %llu records of %s: the flows read so far "
			 "end now",
			 r->stop_signal, (unsigned long long)c.records, source_name(r->cfg->pcap));
	}
	agent_take_counts(&r->agent, &c);
	agent_flush(&r->agent);
	source_close(s);
	return status;
}
