// SPDX-License-Identifier: MIT
/*
 * counters.c - the counters as one JSON line, and as Prometheus text: both
 * walk the same table (COLLECTOR_COUNTERS, then the metrics listener's).
 */
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

#include "counters.h"

#define COUNTER false
#define GAUGE true

/* Commits are grouped (--commit-delay, 50 ms) and fsync'ed: ms to seconds. */
static const double store_bounds[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
				       0.25,  0.5,    1,     2.5,  5,	  10,	30 };

void collector_counters_init(struct collector_counters *c)
{
	memset(c, 0, sizeof(*c));
	metrics_hist_init(&c->store_latency, store_bounds,
			  sizeof(store_bounds) / sizeof(store_bounds[0]));
	metrics_hist_init(&c->store_commit, store_bounds,
			  sizeof(store_bounds) / sizeof(store_bounds[0]));
}

static const char *sep(bool *first)
{
	const char *s = *first ? "" : ",";

	*first = false;
	return s;
}

void collector_counters_print(const struct collector_counters *c, FILE *out)
{
	struct http_metrics_stat ms[HTTP_METRICS_NSTATS];
	size_t i, n = http_metrics_stats_list(&c->metrics, ms, HTTP_METRICS_NSTATS);
	bool first = true;

	/* The same shape as the agent's and flowpic-send's (docs/json.md). */
	fputs("{\"counters\":{", out);
#define X(name, kind, help) fprintf(out, "%s\"" #name "\":%" PRIu64, sep(&first), c->name);
	COLLECTOR_COUNTERS(X)
#undef X
	for (i = 0; i < n; i++)
		fprintf(out, ",\"%s\":%" PRIu64, ms[i].name, ms[i].value);
	fputs("},\"type\":\"counters\"}\n", out);
	fflush(out);
}

void collector_counters_metrics(const struct collector_counters *c, struct sbuf *b)
{
	struct http_metrics_stat ms[HTTP_METRICS_NSTATS];
	size_t i, n = http_metrics_stats_list(&c->metrics, ms, HTTP_METRICS_NSTATS);

#define X(name, kind, help) metrics_counter(b, "flowpic_collector_", #name, kind, help, c->name);
	COLLECTOR_COUNTERS(X)
#undef X
	for (i = 0; i < n; i++)
		metrics_counter(b, "flowpic_collector_", ms[i].name, false, ms[i].help,
				ms[i].value);
	metrics_histogram(b, "flowpic_collector_verdict_store_seconds",
			  "seconds from a batch's receipt to the commit that stored its verdicts "
			  "(the wire carries no verdict time, so receipt is the start); one "
			  "observation per batch stored",
			  &c->store_latency);
	metrics_histogram(b, "flowpic_collector_store_commit_seconds",
			  "seconds the store thread took to write and commit one group of "
			  "batches (its puts, the commit, retries of a locked SQLite file); one "
			  "observation per group",
			  &c->store_commit);
}
