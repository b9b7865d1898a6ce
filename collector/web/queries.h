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
	/* The oldest and newest start_ns stored (max_ns 0: not known): where
	 * a range holds nothing, so what it costs to read. */
	uint64_t min_ns, max_ns;
	int stage;		     /* OVERVIEW_STAGE_... */
	const char *agent_id, *host; /* NULL: any */
};
enum { OVERVIEW_STAGE_ALL, OVERVIEW_STAGE_FINAL, OVERVIEW_STAGE_BLOCK };
/* The overview's counts are added and subtracted (queries.c): its reads go
 * in one read transaction, so they see one state of the store.  0 or -EIO
 * with err; end it whatever happened since. */
int webdb_read_begin(struct webdb *d, char *err, size_t errlen);
void webdb_read_end(struct webdb *d);
/* Rows (bucket = start_ns / bucket_ns, class, count); count may be
 * negative, and a (bucket, class) come in several rows: add them up. */
int webdb_overview_series(struct webdb *d, const struct overview_filter *o, webdb_row_fn cb,
			  void *ctx, char *err, size_t errlen);
/* Rows (agent_id, host, class, reason, count), as the series'. */
int webdb_overview_groups(struct webdb *d, const struct overview_filter *o, webdb_row_fn cb,
			  void *ctx, char *err, size_t errlen);
/* The oldest and newest start_ns stored (0, 0 when empty). */
int webdb_time_range(struct webdb *d, uint64_t *min_ns, uint64_t *max_ns, char *err, size_t errlen);

/* /api/agents.  Rows (agent_id, run_id, its highest seq, that verdict's
 * received_ns, host and agent_version) of every run of the agents with
 * verdicts (at most 1000 agents, the first by agent_id), an agent's rows
 * together: lookups by the key, whatever the number of verdicts. */
int webdb_agent_runs_all(struct webdb *d, webdb_row_fn cb, void *ctx, char *err, size_t errlen);
/* Rows (agent_id, runs, last updated_ns) of the agents' counters. */
int webdb_counter_agents(struct webdb *d, webdb_row_fn cb, void *ctx, char *err, size_t errlen);
/* Rows (agent_id, run_id, name, value, updated_ns, host) of each agent's
 * newest run's counters, by agent_id and name. */
int webdb_agents_counters(struct webdb *d, webdb_row_fn cb, void *ctx, char *err, size_t errlen);

#endif
