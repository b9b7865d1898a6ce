// SPDX-License-Identifier: MIT
/*
 * replay.c - `flowpic-agent --pcap FILE`: the packets of a capture file (or
 * samples CSV) through the same agent_packet() as live capture.  The clock
 * is the packets' own, so the flows, blocks and verdicts are exactly those
 * of `flowpic classify --json` on the same file and model.
 */
#include <errno.h>

#include "log.h"
#include "run.h"
#include "source.h"

/* Signals are looked at every this many records (a syscall each time). */
#define REPLAY_SIGNAL_EVERY 4096

int replay_run(struct run *r)
{
	struct agent *a = &r->agent;
	enum source_status st;
	enum skip_reason why;
	char err[512];
	struct source *s;
	struct pkt p;
	uint64_t n = 0;
	int status = AGENT_EXIT_OK;

	status = run_stream_open(r);
	if (status)
		return status;
	s = source_open(r->cfg->pcap, err, sizeof(err));
	if (!s) {
		log_error("%s", err);
		return AGENT_EXIT_FAILURE;
	}
	r->started = true;
	log_info("replaying %s (%s)", r->cfg->pcap, source_kind_name(source_kind(s)));
	while ((st = source_next(s, &p, &why)) != SOURCE_END) {
		if (st == SOURCE_ERROR) {
			/* What was read before stays: its flows still end below. */
			log_error("%s", source_error(s));
			status = AGENT_EXIT_PARTIAL;
			break;
		}
		if (st == SOURCE_PACKET)
			agent_packet(a, &p);
		else
			agent_skip(a, why);
		if (++n % REPLAY_SIGNAL_EVERY == 0) {
			run_signals(r);
			if (r->stop) {
				log_warn("stopped by signal %d after %llu records of %s: the flows "
					 "read so far end now", r->stop_signal, (unsigned long long)n,
					 r->cfg->pcap);
				break;
			}
		}
	}
	agent_flush(a);
	source_close(s);
	return status;
}
