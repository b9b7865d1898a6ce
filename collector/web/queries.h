/* SPDX-License-Identifier: MIT */
/*
 * queries.h - the dashboard's read-only queries, on SQLite and PostgreSQL
 * alike: a connection of the web thread's own (never the loop's), SQL with
 * numbered parameter markers and every value from a request bound as a
 * parameter (no SQL is built from input: column names and directions come
 * from fixed tables).
 *
 * The verdict rows of /api/flows and /api/flow are those of
 * `flowpic-collector query`: the same SELECT list and filter conditions
 * (store_build_query()), with the dashboard's further conditions, order and
 * paging appended; the row values go to query_json_row() like query's.
 */
#ifndef FLOWPIC_COLLECTOR_WEB_QUERIES_H
#define FLOWPIC_COLLECTOR_WEB_QUERIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collector/store.h"

struct webdb;

/* The store's URL (as --db) opened read-only.  NULL and a reason in err. */
struct webdb *webdb_open(const char *url, char *err, size_t errlen);
void webdb_close(struct webdb *d);

/* Row values as text (NULL: SQL NULL); nonzero stops. */
typedef int (*webdb_row_fn)(void *ctx, const char *const *vals, int ncols);

/* /api/flows: query's filter and more. */
struct flows_filter {
	struct store_filter f; /* host, agents, classes, time, addr, port, proto */
	const char *stages[2]; /* any of these (none: any stage) */
	int nstages;
	bool has_min_conf, has_max_conf;
	double min_conf, max_conf;
	int sort; /* FLOWS_SORT_... */
	bool ascending;
	uint64_t limit, offset;
};
enum {
	FLOWS_SORT_START,
	FLOWS_SORT_RECEIVED,
	FLOWS_SORT_CONFIDENCE,
	FLOWS_SORT_CLASS,
	FLOWS_SORT_HOST,
	FLOWS_SORT_COUNT
};
/* The sort names of the API, by FLOWS_SORT_ value. */
extern const char *const flows_sort_names[FLOWS_SORT_COUNT];

/* Verdict rows (store_cols) of a filter; 0 or -EIO with err. */
int webdb_flows(struct webdb *d, const struct store *st, const struct flows_filter *ff,
		webdb_row_fn cb, void *ctx, char *err, size_t errlen);
/* Every verdict of one flow (store_cols), by stage then block_index. */
int webdb_flow(struct webdb *d, const struct store *st, const char *agent_id, uint64_t run_id,
	       uint64_t flow_id, webdb_row_fn cb, void *ctx, char *err, size_t errlen);

/* /api/overview. */
struct overview_filter {
	uint64_t since_ns, until_ns, bucket_ns;
	int stage;		     /* OVERVIEW_STAGE_... */
	const char *agent_id, *host; /* NULL: any */
};
enum { OVERVIEW_STAGE_ALL, OVERVIEW_STAGE_FINAL, OVERVIEW_STAGE_BLOCK };
/* Rows (bucket = start_ns / bucket_ns, class, count). */
int webdb_overview_series(struct webdb *d, const struct overview_filter *o, webdb_row_fn cb,
			  void *ctx, char *err, size_t errlen);
/* Rows (agent_id, host, class, reason, count). */
int webdb_overview_groups(struct webdb *d, const struct overview_filter *o, webdb_row_fn cb,
			  void *ctx, char *err, size_t errlen);
/* The oldest and newest start_ns stored (0, 0 when empty). */
int webdb_time_range(struct webdb *d, uint64_t *min_ns, uint64_t *max_ns, char *err, size_t errlen);

/* /api/agents.  Rows (agent_id): the agents with verdicts (at most 1000, by
 * agent_id). */
int webdb_agents(struct webdb *d, webdb_row_fn cb, void *ctx, char *err, size_t errlen);
/* Rows (run_id, its highest seq, its last verdict's received_ns) of one
 * agent's runs: lookups by the key, whatever the number of verdicts. */
int webdb_agent_runs(struct webdb *d, const char *agent_id, webdb_row_fn cb, void *ctx, char *err,
		     size_t errlen);
/* Rows (agent_id, runs, last updated_ns) of the agents' counters. */
int webdb_counter_agents(struct webdb *d, webdb_row_fn cb, void *ctx, char *err, size_t errlen);
/* One row (host, agent_version) of the agent's newest verdict. */
int webdb_agent_latest(struct webdb *d, const char *agent_id, webdb_row_fn cb, void *ctx, char *err,
		       size_t errlen);
/* Rows (run_id, name, value, updated_ns, host) of the agent's newest run. */
int webdb_agent_counters(struct webdb *d, const char *agent_id, webdb_row_fn cb, void *ctx,
			 char *err, size_t errlen);

#endif
