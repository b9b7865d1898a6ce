// SPDX-License-Identifier: MIT
/*
 * run.c - what replay and live capture share while they run: the signals
 * (SIGUSR1, SIGINT/SIGTERM, --counters-every), the counters line, and the
 * verdict stream's start and end.  It knows neither source: a source adds
 * its own counters through run->source_counters.
 */
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "core/clock.h"
#include "forward.h"
#include "core/log.h"
#include "metrics.h"
#include "run.h"

uint64_t run_mono_ns(void)
{
	return clock_mono_ns();
}

/* The agent's counters, then the source's: what both the line and the
 * stream's batches carry. */
static void counters_collect(struct run *r, struct agent_counter *c, size_t *n)
{
	agent_counters(&r->agent, c, n, AGENT_MAX_COUNTERS);
	if (r->source_counters)
		r->source_counters(r, c, n, AGENT_MAX_COUNTERS);
	agent_metrics_counters(c, n, AGENT_MAX_COUNTERS);
}

void run_counters_dump(struct run *r)
{
	struct agent_counter c[AGENT_MAX_COUNTERS];
	size_t n = 0;

	counters_collect(r, c, &n);
	forward_counters(&r->agent, c, &n, AGENT_MAX_COUNTERS);
	/* A scrape from now on sees exactly what this line says. */
	agent_metrics_publish(c, n, false);
	agent_counters_write(r->counters_out, c, n);
}

void run_counters_publish(struct run *r)
{
	struct agent_counter c[AGENT_MAX_COUNTERS];
	size_t n = 0;

	if (!r->agent.stream && !agent_metrics_address())
		return;
	counters_collect(r, c, &n);
	forward_publish(&r->agent, c, n);
	if (agent_metrics_address()) {
		forward_counters(&r->agent, c, &n, AGENT_MAX_COUNTERS);
		agent_metrics_publish(c, n, true);
	}
}

/* Where the verdicts come from, as the collector shows it. */
static void stream_where(const struct agent_config *cfg, char *where, size_t len)
{
	unsigned i;

	where[0] = '\0';
	for (i = 0; i < cfg->n_ifaces; i++)
		snprintf(where + strlen(where), len - strlen(where), "%s%s", i ? "," : "",
			 cfg->ifaces[i]);
	if (!cfg->n_ifaces)
		snprintf(where, len, "%s", cfg->pcap);
}

int run_stream_prepare(struct run *r)
{
	const struct agent_config *cfg = r->cfg;
	char err[600];

	if (!cfg->collector[0])
		return AGENT_EXIT_OK;
	if (forward_prepare(&r->agent, cfg, err, sizeof(err)) < 0) {
		log_error("collector %s: %s", cfg->collector, err);
		return AGENT_EXIT_USAGE;
	}
	return AGENT_EXIT_OK;
}

int run_stream_start(struct run *r)
{
	const struct agent_config *cfg = r->cfg;
	char where[256], err[600];

	/* The metrics thread starts here too: live, after the capability drop. */
	if (agent_metrics_start(err, sizeof(err)) < 0) {
		log_error("%s", err);
		return AGENT_EXIT_FAILURE;
	}
	if (!r->agent.stream)
		return AGENT_EXIT_OK;
	stream_where(cfg, where, sizeof(where));
	if (forward_start(&r->agent, cfg, where, err, sizeof(err)) < 0) {
		log_error("collector %s: %s", cfg->collector, err);
		forward_close(&r->agent, 0);
		return AGENT_EXIT_USAGE;
	}
	return AGENT_EXIT_OK;
}

int run_stream_open(struct run *r)
{
	int status = run_stream_prepare(r);

	return status ? status : run_stream_start(r);
}

int run_stream_close(struct run *r)
{
	if (!r->agent.stream)
		return AGENT_EXIT_OK;
	if (forward_close(&r->agent, r->cfg->collector_wait_ns) < 0)
		return AGENT_EXIT_FAILURE;
	return AGENT_EXIT_OK;
}

void run_signals(struct run *r)
{
	struct signalfd_siginfo si;

	while (read(r->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGUSR1) {
			run_counters_dump(r);
		} else if (!r->stop) {
			r->stop = true;
			r->stop_signal = (int)si.ssi_signo;
		}
	}
	run_counters_publish(r);
	if (r->cfg->counters_every_ns && run_mono_ns() >= r->next_counters_ns) {
		run_counters_dump(r);
		r->next_counters_ns = run_mono_ns() + r->cfg->counters_every_ns;
	}
}
