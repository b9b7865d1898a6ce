/* SPDX-License-Identifier: MIT */
/*
 * store.h - where verdicts go: SQLite (a file, the default) or PostgreSQL (a
 * connection string; several collectors may share the database).
 *
 * Both stores keep one table of verdicts keyed by the verdict's identity
 * (agent_id, run_id, seq): a verdict resent after a reconnect hits the key
 * and is counted as a duplicate, never stored twice, whichever collector
 * receives it.  Batches are grouped into transactions: store_put_batch adds
 * one to the open transaction (buffered: nothing is written yet) and
 * store_commit writes them all and makes them durable; only then may the
 * batches be acknowledged.  A batch the database refuses fails alone (its
 * result says why); the others of the transaction are stored.  The schema
 * is in docs/collector.md.
 */
#ifndef FLOWPIC_COLLECTOR_STORE_H
#define FLOWPIC_COLLECTOR_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flowpic.pb-c.h"

struct store;

/* The collector's --db when none is given (query reads the same). */
#define STORE_DEFAULT_URL "sqlite:flowpic-verdicts.db"

struct store_options {
	bool sqlite_sync_full;	/* SQLite: fsync the WAL at every commit (default) */
	int busy_timeout_ms;	/* SQLite: give up on a lock held by another process after
				* this long in total (commits are retried meanwhile) */
	bool readonly;		/* queries only: never create the file or the schema */
	int retention_days;	/* drop verdicts of blocks older than this many days (0: keep) */
	bool dashboard_indexes; /* the dashboard's indexes too (--web-listen): slower writes */
};

struct store_batch_result {
	uint32_t stored;     /* verdicts new to the store */
	uint32_t duplicates; /* verdicts whose identity was already stored */
	uint32_t rejected;   /* invalid verdicts (seq 0): not stored */
	uint32_t counters;   /* agent counters written */
	int error;	     /* 0, or the batch was not stored: -EINVAL the database
			      * refused its values, -EIO another error (err says) */
	char err[240];
};

/* "sqlite:PATH", a plain PATH (SQLite), "postgresql://...", "postgres://..."
 * or "pg:CONNINFO" (libpq key=value).  Creates the schema if missing.
 * NULL and a one-line reason in err on failure. */
struct store *store_open(const char *url, const struct store_options *opt, char *err,
			 size_t errlen);
void store_close(struct store *s);
const char *store_kind(const struct store *s); /* "sqlite" or "postgresql" */

/* Add one batch to the current transaction (opened if none); the store
 * takes b and frees it (flowpic__v1__batch__free_unpacked) when done.  The
 * batch must carry an agent with a non-empty agent_id and have passed
 * batch_validate() (the caller's checks).  *idx is the batch's place in the
 * transaction: its result is store_results()[*idx] once store_commit()
 * returned 0.  0, or a negative errno (-ENOMEM) with err: then the
 * transaction is dropped and no batch in it is stored. */
int store_put_batch(struct store *s, Flowpic__V1__Batch *b, uint64_t now_ns, size_t *idx, char *err,
		    size_t errlen);

bool store_in_txn(const struct store *s);
/* Write and commit the open transaction (no-op if none).  0: committed,
 * each batch's result (stored, or its own error) in store_results();
 * -EBUSY: the SQLite file is locked by another process: nothing written,
 * the transaction is kept, call again later (after busy_timeout_ms of
 * trying it gives up with -EIO); -EIO or -ENOMEM with err: nothing of the
 * transaction stored, it is dropped. */
int store_commit(struct store *s, char *err, size_t errlen);
/* After a successful commit: the results of its batches, in put order. */
const struct store_batch_result *store_results(const struct store *s, size_t *n);
/* While a commit waits for a locked file: the monotonic ms of its next
 * attempt (store_commit gives -EAGAIN before then, touching nothing); 0
 * when not waiting. */
uint64_t store_retry_at(const struct store *s);

/* Query. */
#define STORE_FILTER_LIST_MAX 16
struct store_filter {
	const char *host;
	const char *agent_ids[STORE_FILTER_LIST_MAX]; /* any of these (none: any agent) */
	int n_agent_ids;
	const char *classes[STORE_FILTER_LIST_MAX]; /* any of these (none: any class) */
	int n_classes;
	const char *reason; /* "ok", "sparse", ... ("unspecified": from old agents) */
	bool has_since, has_until;
	uint64_t since_ns, until_ns; /* on the span's start: [since, until) */
	bool has_received_since;
	uint64_t received_since_ns; /* stored by the collector at or after */
	const char *addr;	    /* either end of the flow */
	const char *src, *dst;
	int port, sport, dport, proto; /* -1: any */
	uint64_t limit;		       /* 0: no limit */
	bool ascending;		       /* oldest first (default: newest first) */
};

/* The columns every query row has, in order (names as printed: the names
 * and meanings of flowpic's flow lines where both have a field, docs/json.md).
 * COL_PROTO: stored as the protocol number, printed "tcp", "udp" or "other". */
enum store_col_type { COL_TEXT, COL_INT, COL_REAL, COL_JSON, COL_PROTO };
struct store_col {
	const char *name;
	enum store_col_type type;
};
extern const struct store_col store_cols[];
extern const int store_ncols;

/* Called per row with the values as text (NULL for SQL NULL); nonzero stops. */
typedef int (*store_row_cb)(void *ctx, const char *const *vals);

/* Rows matching f; 0, or -EIO with err. */
int store_query(struct store *s, const struct store_filter *f, store_row_cb cb, void *ctx,
		char *err, size_t errlen);

/*
 * One stored verdict's picture (proto/flowpic.proto, Cells; stored as its
 * protobuf encoding in the verdicts table's cells column), for viewers:
 * pixel k of n is at the flat index index[k] = (plane * rows + row) * cols
 * + col (row: size bin, 0 the smallest packets, drawn at the bottom; col:
 * time bin, 0 the block's start, drawn left), indexes increasing, and holds
 * count[k] packets (1 .. 255).  planes: 2 for dirs 3 (split: 0 initiator ->
 * responder, 1 responder -> initiator), else 1.
 */
struct store_cells {
	uint32_t rows, cols, planes;
	uint32_t dirs;	    /* 0 both directions, 1 fwd, 2 rev, 3 split */
	uint64_t window_ns; /* the time axis: cols cover [start_ns, start_ns + window_ns) */
	size_t n;
	uint32_t *index; /* malloc'd: store_cells_free() */
	uint8_t *count;
};

/* The picture of verdict (agent_id, run_id, seq): 0 and *out (free it with
 * store_cells_free); -ENOENT: no such verdict; -ENODATA: it has no picture
 * (a FINAL verdict, an agent without --send-pictures, a store from before
 * pictures); -EBADMSG: what is stored does not decode; -EIO / -ENOMEM, with
 * err.  One primary-key lookup. */
int store_get_cells(struct store *s, const char *agent_id, uint64_t run_id, uint64_t seq,
		    struct store_cells *out, char *err, size_t errlen);
void store_cells_free(struct store_cells *c);
/* The picture dense, dst[(plane * rows + row) * cols + col] (planes * rows *
 * cols bytes, as `flowpic export --format npy` writes one): 0, or -ENOSPC
 * when len is smaller. */
int store_cells_dense(const struct store_cells *c, uint8_t *dst, size_t len);

/*
 * verdict_counts: the overview's counts, kept by both backends in the
 * transaction that stores the verdicts, from the verdicts new to the store
 * only (a duplicate is never counted).  A row: per_agent (1: of agent_id
 * and host; 0: over all agents, agent_id "" and host "" or, in PostgreSQL,
 * the writing connection, so collectors never wait for each other's row),
 * grain (s: 60, 3600 or 86400), stage, t_ns (start_ns rounded down to the
 * grain, from the epoch: days in UTC), class, reason, n.  docs/collector.md.
 */
#define STORE_COUNT_GRAINS 3
static inline uint64_t store_count_grain_ns(int g)
{
	return g == 0 ? 60000000000ULL : g == 1 ? 3600000000000ULL : 86400000000000ULL;
}

/* ---- shared by the backends (store.c, store_cells.c) ---- */

/* A verdict's picture (NULL: none) as stored: its protobuf encoding in
 * *buf (grown with realloc, *cap bytes; the caller frees it).  The length,
 * 0 for none, or -ENOMEM. */
long store_cells_blob(const Flowpic__V1__Cells *c, uint8_t **buf, size_t *cap);

/* One verdict flattened into the columns both schemas use. */
struct verdict_row {
	char src[46], dst[46]; /* INET6_ADDRSTRLEN; "" if the address is malformed */
	const char *direction; /* "outbound" ... */
	const char *stage;     /* "early" ... */
	const char *reason;    /* "ok", "other", "sparse", ... or "unspecified" */
	char probs[2048];      /* JSON object {"class":p,...} or array if classes differ */
};

void verdict_row_fill(struct verdict_row *r, const Flowpic__V1__Batch *b,
		      const Flowpic__V1__Verdict *v);

/* The WHERE ... ORDER BY ... LIMIT tail of a query and its parameters (text);
 * placeholders "?" (SQLite) or "$n" (PostgreSQL). */
struct store_sql {
	char sql[2048];
	const char *params[48];
	char pbuf[48][32];
	int nparams;
};
void store_build_query(const struct store *s, const struct store_filter *f, bool dollar,
		       struct store_sql *q);

/* Backends.  put_batch takes b (frees it when done) and fills what it knows
 * now (nothing, or rejected); commit fills the rest of each result.
 * Statuses as the store_ functions': 0, or a negative errno with err. */
struct store_ops {
	const char *kind;
	int (*put_batch)(struct store *s, Flowpic__V1__Batch *b, uint64_t now_ns, size_t idx,
			 struct store_batch_result *res, char *err, size_t errlen);
	int (*commit)(struct store *s, char *err, size_t errlen);
	int (*query)(struct store *s, const struct store_filter *f, store_row_cb cb, void *ctx,
		     char *err, size_t errlen);
	/* The cells column of one verdict: 0 and *blob (malloc'd; NULL for SQL
	 * NULL), -ENOENT no such verdict, -EIO with err. */
	int (*get_cells)(struct store *s, const char *agent_id, uint64_t run_id, uint64_t seq,
			 uint8_t **blob, size_t *len, char *err, size_t errlen);
	void (*close)(struct store *s);
};

struct store {
	const struct store_ops *ops;
	bool in_txn;
	bool no_reason; /* a read-only store from before the reason column:
				 * its verdicts read as reason "unspecified" */
	bool no_cells;	/* a read-only store from before the cells column: no pictures */
	struct store_batch_result *res; /* per batch of the transaction */
	size_t nres, capres;
	uint64_t retry_at_ms, backoff_ms; /* a commit that found the file locked */
};

struct store *store_sqlite_open(const char *path, const struct store_options *opt, char *err,
				size_t errlen);
struct store *store_pg_open(const char *conninfo, const struct store_options *opt, char *err,
			    size_t errlen);

#endif
