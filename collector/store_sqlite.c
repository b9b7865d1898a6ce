// SPDX-License-Identifier: MIT
/*
 * store_sqlite.c - the default store: one SQLite file in WAL mode, prepared
 * statements, many batches per transaction.
 *
 * Dedup is the primary key (agent_id, run_id, seq) with INSERT OR IGNORE:
 * sqlite3_changes() says per verdict whether it was new.  The table is
 * WITHOUT ROWID so the key is the table: an agent's verdicts arrive in seq
 * order and go in as appends to its key range.
 *
 * Batches are only kept by put_batch; the commit writes them all in one
 * BEGIN IMMEDIATE ... COMMIT.  The writer waits for a lock held by another
 * process (a query, sqlite3) at most BUSY_STEP_MS per attempt: a locked file
 * makes the commit return -EBUSY with the batches kept, and the collector's
 * store thread retries later (counting each retry), up to busy_timeout_ms in
 * total; the loop goes on serving meanwhile.  Each batch has its own
 * SAVEPOINT: a batch the database refuses is rolled back alone.
 *
 * The overview's counts (verdict_counts, store_counts.h) are added inside
 * the batch's SAVEPOINT from the verdicts INSERT OR IGNORE found new: a
 * resent verdict is counted once, a refused batch not at all.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/clock.h"
#include "core/log.h"
#include "store.h"

#define BUSY_STEP_MS 20 /* the longest a commit waits for a lock at a time */

static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS verdicts ("
	" agent_id TEXT NOT NULL, run_id INTEGER NOT NULL, seq INTEGER NOT NULL,"
	" host TEXT NOT NULL, agent_version TEXT NOT NULL, interface TEXT NOT NULL,"
	" src_addr TEXT NOT NULL, dst_addr TEXT NOT NULL, src_port INTEGER NOT NULL,"
	" dst_port INTEGER NOT NULL, protocol INTEGER NOT NULL, direction TEXT NOT NULL,"
	" flow_id INTEGER NOT NULL, stage TEXT NOT NULL, start_ns INTEGER NOT NULL,"
	" duration_ns INTEGER NOT NULL, packets_fwd INTEGER NOT NULL, packets_rev INTEGER NOT NULL,"
	" bytes_fwd INTEGER NOT NULL, bytes_rev INTEGER NOT NULL, block_index INTEGER NOT NULL,"
	" blocks INTEGER NOT NULL, class TEXT NOT NULL, confidence REAL NOT NULL,"
	" probs TEXT NOT NULL, model TEXT NOT NULL, model_version TEXT NOT NULL,"
	" received_ns INTEGER NOT NULL, reason TEXT NOT NULL DEFAULT 'unspecified',"
	" cells BLOB,"
	" PRIMARY KEY (agent_id, run_id, seq)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS verdicts_start ON verdicts (start_ns);"
	"CREATE TABLE IF NOT EXISTS agent_counters ("
	" agent_id TEXT NOT NULL, run_id INTEGER NOT NULL, name TEXT NOT NULL,"
	" value INTEGER NOT NULL, host TEXT NOT NULL, batch_seq INTEGER NOT NULL,"
	" updated_ns INTEGER NOT NULL,"
	" PRIMARY KEY (agent_id, run_id, name)) WITHOUT ROWID;";

/* The overview's counts: docs/collector.md, "Storage". */
static const char counts_sql[] =
	"CREATE TABLE verdict_counts ("
	" per_agent INTEGER NOT NULL, grain INTEGER NOT NULL, stage TEXT NOT NULL,"
	" t_ns INTEGER NOT NULL, class TEXT NOT NULL, reason TEXT NOT NULL,"
	" agent_id TEXT NOT NULL, host TEXT NOT NULL, n INTEGER NOT NULL,"
	" PRIMARY KEY (per_agent, grain, stage, t_ns, class, reason, agent_id, host))"
	" WITHOUT ROWID";

static const char count_sql[] =
	"INSERT INTO verdict_counts VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
	" ON CONFLICT (per_agent, grain, stage, t_ns, class, reason, agent_id, host)"
	" DO UPDATE SET n = n + excluded.n";

/* The dashboard's (--web-listen): its overview, flow pages and commonest
 * filters.  Each index costs write speed (docs/dashboard.md, "Indexes"), so
 * only a store that serves the dashboard gets them. */
static const char dashboard_sql[] =
	"CREATE INDEX IF NOT EXISTS verdicts_class ON verdicts (class, start_ns);"
	"CREATE INDEX IF NOT EXISTS verdicts_agent ON verdicts (agent_id, start_ns);"
	"CREATE INDEX IF NOT EXISTS verdicts_host ON verdicts (host, start_ns);"
	"CREATE INDEX IF NOT EXISTS verdicts_overview"
	" ON verdicts (stage, start_ns, class, reason, agent_id, host);"
	"CREATE INDEX IF NOT EXISTS verdicts_flow ON verdicts (agent_id, run_id, flow_id);";

static const char insert_sql[] =
	"INSERT OR IGNORE INTO verdicts VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"
	" ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28,"
	" ?29, ?30)";

/* Counters are cumulative: keep the value of the newest batch, whatever
 * order batches arrive in after a resend. */
static const char counter_sql[] =
	"INSERT INTO agent_counters VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
	" ON CONFLICT (agent_id, run_id, name) DO UPDATE SET value = excluded.value,"
	" host = excluded.host, batch_seq = excluded.batch_seq, updated_ns = excluded.updated_ns"
	" WHERE excluded.batch_seq >= agent_counters.batch_seq";

/* One batch's new verdicts counted by (minute, stage, class, reason): its
 * agent and host are the batch's.  Stage and reason are static names; cls
 * points into the batch, which lives until the transaction ends. */
struct counts_key {
	uint64_t minute_ns;
	const char *stage, *cls, *reason;
	uint64_t n;
};
struct counts_acc {
	struct counts_key *keys;
	size_t n, cap;
};

/* Count one verdict: 0 or -ENOMEM.  A batch has few keys (its minutes times
 * its classes), so a look back from the newest is enough. */
static int counts_add(struct counts_acc *a, uint64_t start_ns, const char *stage, const char *cls,
		      const char *reason)
{
	uint64_t m = start_ns / 60000000000ULL * 60000000000ULL;
	size_t i;

	for (i = a->n; i-- > 0;) {
		struct counts_key *k = &a->keys[i];

		if (k->minute_ns == m && k->stage == stage && k->reason == reason &&
		    !strcmp(k->cls, cls)) {
			k->n++;
			return 0;
		}
	}
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		struct counts_key *nk = realloc(a->keys, cap * sizeof(*nk));

		if (!nk)
			return -ENOMEM;
		a->keys = nk;
		a->cap = cap;
	}
	a->keys[a->n++] = (struct counts_key){ m, stage, cls, reason, 1 };
	return 0;
}

struct sq_batch {
	Flowpic__V1__Batch *b;
	uint64_t now_ns;
};

struct store_sqlite {
	struct store base;
	sqlite3 *db;
	sqlite3_stmt *ins, *ctr, *cnt, *begin, *commit, *rollback, *save, *release, *rollback_to;
	uint8_t *cells; /* one verdict's picture, encoded (store_cells_blob) */
	size_t cells_cap;
	struct counts_acc acc;	  /* one batch's new verdicts, counted */
	struct sq_batch *batches; /* the open transaction, written at commit */
	size_t nbatches, capbatches;
	uint64_t busy_since_ms; /* first commit attempt that found the file locked */
	int busy_timeout_ms;
	int retention_days;  /* 0: keep everything */
	uint64_t expired_ns; /* when retention last ran */
	char path[512];
};

static const struct store_ops sqlite_ops;

static void set_err(struct store_sqlite *s, const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "sqlite %s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

/* Step a statement that returns no rows: SQLITE_DONE or the error code. */
static int step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc;
}

static bool is_busy(int rc)
{
	return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
}

/* Errors of one batch's values, not of the database: only that batch fails. */
static bool is_batch_fault(int rc)
{
	rc &= 0xff;
	return rc == SQLITE_CONSTRAINT || rc == SQLITE_TOOBIG || rc == SQLITE_MISMATCH ||
	       rc == SQLITE_RANGE;
}

static void sq_rollback(struct store_sqlite *s)
{
	if (!sqlite3_get_autocommit(s->db))
		step_done(s->rollback);
}

/* The transaction is over (committed or given up): free its batches. */
static void sq_drop(struct store_sqlite *s)
{
	size_t i;

	for (i = 0; i < s->nbatches; i++)
		flowpic__v1__batch__free_unpacked(s->batches[i].b, NULL);
	s->nbatches = 0;
	s->busy_since_ms = 0;
	s->base.in_txn = false;
}

static void bind_str(sqlite3_stmt *st, int i, const char *v)
{
	sqlite3_bind_text(st, i, v ? v : "", -1, SQLITE_STATIC);
}

static int sq_put_batch(struct store *base, Flowpic__V1__Batch *b, uint64_t now_ns, size_t idx,
			struct store_batch_result *res, char *err, size_t errlen)
{
	struct store_sqlite *s = (struct store_sqlite *)base;

	(void)idx;
	(void)res;
	if (s->nbatches == s->capbatches) {
		size_t cap = s->capbatches ? s->capbatches * 2 : 64;
		struct sq_batch *nb = realloc(s->batches, cap * sizeof(*nb));

		if (!nb) {
			snprintf(err, errlen, "sqlite %s: out of memory", s->path);
			flowpic__v1__batch__free_unpacked(b, NULL);
			sq_drop(s);
			return -ENOMEM;
		}
		s->batches = nb;
		s->capbatches = cap;
	}
	s->batches[s->nbatches++] = (struct sq_batch){ b, now_ns };
	s->base.in_txn = true;
	return 0;
}

/* The batch's counts (its new verdicts, in s->acc) added to verdict_counts:
 * per agent and host, and over all agents (agent_id and host ""), at each
 * grain.  SQLITE_DONE or the error code. */
static int sq_write_counts(struct store_sqlite *s, const char *agent_id, const char *host,
			   char *err, size_t errlen)
{
	sqlite3_stmt *st = s->cnt;
	size_t i, g;
	int per, rc = SQLITE_DONE;

	for (i = 0; i < s->acc.n && rc == SQLITE_DONE; i++) {
		const struct counts_key *k = &s->acc.keys[i];

		for (g = 0; g < STORE_COUNT_GRAINS && rc == SQLITE_DONE; g++) {
			for (per = 1; per >= 0 && rc == SQLITE_DONE; per--) {
				sqlite3_bind_int(st, 1, per);
				sqlite3_bind_int64(st, 2,
						   (int64_t)(store_count_grain_ns((int)g) /
							     1000000000ULL));
				bind_str(st, 3, k->stage);
				sqlite3_bind_int64(st, 4,
						   (int64_t)(k->minute_ns /
							     store_count_grain_ns((int)g) *
							     store_count_grain_ns((int)g)));
				bind_str(st, 5, k->cls);
				bind_str(st, 6, k->reason);
				bind_str(st, 7, per ? agent_id : "");
				bind_str(st, 8, per ? host : "");
				sqlite3_bind_int64(st, 9, (int64_t)k->n);
				rc = step_done(st);
			}
		}
	}
	if (rc != SQLITE_DONE)
		set_err(s, "add to verdict_counts", err, errlen);
	s->acc.n = 0;
	return rc;
}

/* One batch's rows, inside the open transaction: SQLITE_DONE or the error
 * code (the statement's message in err). */
static int sq_write_batch(struct store_sqlite *s, const struct sq_batch *q,
			  struct store_batch_result *res, char *err, size_t errlen)
{
	const Flowpic__V1__Batch *b = q->b;
	const Flowpic__V1__Agent *a = b->agent;
	const char *model = b->model ? b->model->name : "";
	const char *model_ver = b->model ? b->model->version : "";
	sqlite3_stmt *st = s->ins;
	struct verdict_row r;
	int rc = SQLITE_DONE;
	long blob;
	size_t i;

	/* Per-batch values bound once: bindings persist across resets. */
	bind_str(st, 1, a->agent_id);
	sqlite3_bind_int64(st, 2, (int64_t)a->run_id);
	bind_str(st, 4, a->host);
	bind_str(st, 5, a->version);
	bind_str(st, 26, model);
	bind_str(st, 27, model_ver);
	sqlite3_bind_int64(st, 28, (int64_t)q->now_ns);
	for (i = 0; i < b->n_verdicts; i++) {
		const Flowpic__V1__Verdict *v = b->verdicts[i];
		const Flowpic__V1__FlowKey *k = v->flow;
		const Flowpic__V1__Span *sp = v->span;

		if (v->seq == 0) {
			res->rejected++;
			continue;
		}
		verdict_row_fill(&r, b, v);
		sqlite3_bind_int64(st, 3, (int64_t)v->seq);
		bind_str(st, 6, v->interface);
		sqlite3_bind_text(st, 7, r.src, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 8, r.dst, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 9, k ? k->src_port : 0);
		sqlite3_bind_int64(st, 10, k ? k->dst_port : 0);
		sqlite3_bind_int64(st, 11, k ? k->protocol : 0);
		sqlite3_bind_text(st, 12, r.direction, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 13, (int64_t)v->flow_id);
		sqlite3_bind_text(st, 14, r.stage, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 15, sp ? (int64_t)sp->start_unix_ns : 0);
		sqlite3_bind_int64(st, 16, sp ? (int64_t)sp->duration_ns : 0);
		sqlite3_bind_int64(st, 17, sp ? (int64_t)sp->packets_fwd : 0);
		sqlite3_bind_int64(st, 18, sp ? (int64_t)sp->packets_rev : 0);
		sqlite3_bind_int64(st, 19, sp ? (int64_t)sp->bytes_fwd : 0);
		sqlite3_bind_int64(st, 20, sp ? (int64_t)sp->bytes_rev : 0);
		sqlite3_bind_int64(st, 21, sp ? (int64_t)sp->block_index : 0);
		sqlite3_bind_int64(st, 22, sp ? sp->blocks : 0);
		bind_str(st, 23, v->class_name);
		/* A float's 7 digits, not the double's 17 ("0.8", not 0.800000011920929). */
		sqlite3_bind_double(st, 24, round((double)v->confidence * 1e6) / 1e6);
		sqlite3_bind_text(st, 25, r.probs, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 29, r.reason, -1, SQLITE_STATIC);
		blob = store_cells_blob(v->cells, &s->cells, &s->cells_cap);
		if (blob < 0) {
			snprintf(err, errlen, "sqlite %s: out of memory for a picture", s->path);
			rc = SQLITE_NOMEM;
			break;
		}
		if (blob > 0)
			sqlite3_bind_blob(st, 30, s->cells, (int)blob, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 30);
		rc = step_done(st);
		if (rc != SQLITE_DONE) {
			set_err(s, "insert verdict", err, errlen);
			break;
		}
		if (sqlite3_changes(s->db) > 0) {
			res->stored++;
			if (counts_add(&s->acc, sp ? sp->start_unix_ns : 0, r.stage,
				       v->class_name ? v->class_name : "", r.reason) < 0) {
				snprintf(err, errlen, "sqlite %s: out of memory counting", s->path);
				rc = SQLITE_NOMEM;
				break;
			}
		} else {
			res->duplicates++;
		}
	}
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_DONE)
		rc = sq_write_counts(s, a->agent_id, a->host, err, errlen);
	s->acc.n = 0;
	for (i = 0; rc == SQLITE_DONE && i < b->n_counters; i++) {
		const Flowpic__V1__Counter *c = b->counters[i];

		if (!c->name || !*c->name)
			continue;
		bind_str(s->ctr, 1, a->agent_id);
		sqlite3_bind_int64(s->ctr, 2, (int64_t)a->run_id);
		bind_str(s->ctr, 3, c->name);
		sqlite3_bind_int64(s->ctr, 4, (int64_t)c->value);
		bind_str(s->ctr, 5, a->host);
		sqlite3_bind_int64(s->ctr, 6, (int64_t)b->sequence);
		sqlite3_bind_int64(s->ctr, 7, (int64_t)q->now_ns);
		rc = step_done(s->ctr);
		if (rc != SQLITE_DONE)
			set_err(s, "upsert counter", err, errlen);
		else
			res->counters++;
	}
	return rc;
}

/* The file is locked: -EBUSY (keep the batches, retry later) until
 * busy_timeout_ms have passed since the first attempt, then -EIO. */
static int sq_busy(struct store_sqlite *s, const char *what, char *err, size_t errlen)
{
	uint64_t t = clock_mono_ms();

	sq_rollback(s);
	if (!s->busy_since_ms)
		s->busy_since_ms = t;
	if (t - s->busy_since_ms < (uint64_t)s->busy_timeout_ms) {
		snprintf(err, errlen, "sqlite %s: %s: database is locked (retrying)", s->path,
			 what);
		return -EBUSY;
	}
	snprintf(err, errlen,
		 "sqlite %s: %s: database locked by another process for %" PRIu64 " ms: giving up",
		 s->path, what, t - s->busy_since_ms);
	sq_drop(s);
	return -EIO;
}

/* Retention: delete the verdicts of blocks from days wholly older than
 * retention_days before now (an index on start_ns); at most once an hour.
 * A failure is logged: the verdicts stay until the next try. */
static void sq_expire(struct store_sqlite *s, uint64_t now_ns)
{
	const uint64_t day = 86400ULL * 1000000000ULL;
	char sql[320], *msg = NULL;

	if (!s->retention_days ||
	    (s->expired_ns && now_ns - s->expired_ns < 3600ULL * 1000000000ULL))
		return;
	s->expired_ns = now_ns;
	snprintf(sql, sizeof(sql), "DELETE FROM verdicts WHERE start_ns < %" PRIu64,
		 (now_ns / day - (uint64_t)s->retention_days) * day);
	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK)
		log_warn("sqlite %s: retention: %s", s->path, msg ? msg : "failed");
	sqlite3_free(msg);
	msg = NULL;
	/* The counts of the same days (whole days: every grain's rows go
	 * together); the key's leading columns listed, so it is index ranges. */
	snprintf(sql, sizeof(sql),
		 "DELETE FROM verdict_counts WHERE per_agent IN (0, 1) AND grain IN (60, 3600, 86400)"
		 " AND stage IN ('early', 'block', 'final', 'unspecified') AND t_ns < %" PRIu64,
		 (now_ns / day - (uint64_t)s->retention_days) * day);
	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK)
		log_warn("sqlite %s: retention of verdict_counts: %s", s->path,
			 msg ? msg : "failed");
	sqlite3_free(msg);
}

static int sq_commit(struct store *base, char *err, size_t errlen)
{
	struct store_sqlite *s = (struct store_sqlite *)base;
	struct store_batch_result *res = base->res;
	size_t i;
	int rc;

	rc = step_done(s->begin);
	if (is_busy(rc))
		return sq_busy(s, "BEGIN", err, errlen);
	if (rc != SQLITE_DONE) {
		set_err(s, "BEGIN", err, errlen);
		sq_drop(s);
		return -EIO;
	}
	for (i = 0; i < s->nbatches; i++) {
		memset(&res[i], 0, sizeof(res[i]));
		if (step_done(s->save) != SQLITE_DONE) {
			set_err(s, "SAVEPOINT", err, errlen);
			goto fail;
		}
		rc = sq_write_batch(s, &s->batches[i], &res[i], err, errlen);
		if (is_busy(rc))
			return sq_busy(s, "write", err, errlen);
		if (rc != SQLITE_DONE && !is_batch_fault(rc))
			goto fail;
		if (rc != SQLITE_DONE) {
			/* This batch alone is refused: undo its rows, keep the others. */
			/* The agent is told the database's reason, not our path. */
			snprintf(res[i].err, sizeof(res[i].err), "sqlite: %s",
				 sqlite3_errmsg(s->db));
			memset(&res[i], 0, offsetof(struct store_batch_result, error));
			res[i].error = -EINVAL;
			if (step_done(s->rollback_to) != SQLITE_DONE)
				goto fail;
		}
		if (step_done(s->release) != SQLITE_DONE) {
			set_err(s, "RELEASE", err, errlen);
			goto fail;
		}
	}
	rc = step_done(s->commit);
	if (is_busy(rc))
		return sq_busy(s, "COMMIT", err, errlen);
	if (rc != SQLITE_DONE) {
		set_err(s, "COMMIT", err, errlen);
		goto fail;
	}
	sq_drop(s);
	sq_expire(s, clock_real_ns());
	return 0;
fail:
	sq_rollback(s);
	sq_drop(s);
	return -EIO;
}

static int sq_query(struct store *base, const struct store_filter *f, store_row_cb cb, void *ctx,
		    char *err, size_t errlen)
{
	struct store_sqlite *s = (struct store_sqlite *)base;
	const char *vals[64];
	struct store_sql q;
	sqlite3_stmt *st;
	int i, rc;

	store_build_query(base, f, false, &q);
	if (sqlite3_prepare_v2(s->db, q.sql, -1, &st, NULL) != SQLITE_OK) {
		set_err(s, "query", err, errlen);
		return -EIO;
	}
	for (i = 0; i < q.nparams; i++)
		sqlite3_bind_text(st, i + 1, q.params[i], -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		for (i = 0; i < store_ncols; i++)
			vals[i] = (const char *)sqlite3_column_text(st, i);
		if (cb(ctx, vals))
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		set_err(s, "query", err, errlen);
		sqlite3_finalize(st);
		return -EIO;
	}
	sqlite3_finalize(st);
	return 0;
}

/* One primary-key lookup of the cells column. */
static int sq_get_cells(struct store *base, const char *agent_id, uint64_t run_id, uint64_t seq,
			uint8_t **blob, size_t *len, char *err, size_t errlen)
{
	struct store_sqlite *s = (struct store_sqlite *)base;
	sqlite3_stmt *st;
	int rc;

	*blob = NULL;
	*len = 0;
	if (sqlite3_prepare_v2(s->db,
			       "SELECT cells FROM verdicts WHERE agent_id = ?1 AND run_id = ?2"
			       " AND seq = ?3",
			       -1, &st, NULL) != SQLITE_OK) {
		set_err(s, "read a picture", err, errlen);
		return -EIO;
	}
	bind_str(st, 1, agent_id);
	sqlite3_bind_int64(st, 2, (int64_t)run_id);
	sqlite3_bind_int64(st, 3, (int64_t)seq);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_finalize(st);
		return -ENOENT;
	}
	if (rc != SQLITE_ROW) {
		set_err(s, "read a picture", err, errlen);
		sqlite3_finalize(st);
		return -EIO;
	}
	if (sqlite3_column_type(st, 0) != SQLITE_NULL) {
		const void *p = sqlite3_column_blob(st, 0);
		int n = sqlite3_column_bytes(st, 0);

		*blob = malloc(n > 0 ? (size_t)n : 1);
		if (!*blob) {
			sqlite3_finalize(st);
			snprintf(err, errlen, "sqlite %s: out of memory", s->path);
			return -ENOMEM;
		}
		if (n > 0)
			memcpy(*blob, p, (size_t)n);
		*len = n > 0 ? (size_t)n : 0;
	}
	sqlite3_finalize(st);
	return 0;
}

static void sq_close(struct store *base)
{
	struct store_sqlite *s = (struct store_sqlite *)base;

	if (s->db && s->rollback)
		sq_rollback(s);
	sq_drop(s);
	free(s->batches);
	free(s->cells);
	free(s->acc.keys);
	sqlite3_finalize(s->ins);
	sqlite3_finalize(s->ctr);
	sqlite3_finalize(s->cnt);
	sqlite3_finalize(s->begin);
	sqlite3_finalize(s->commit);
	sqlite3_finalize(s->rollback);
	sqlite3_finalize(s->save);
	sqlite3_finalize(s->release);
	sqlite3_finalize(s->rollback_to);
	sqlite3_close(s->db);
	free(s);
}

static const struct store_ops sqlite_ops = {
	.kind = "sqlite",
	.put_batch = sq_put_batch,
	.commit = sq_commit,
	.query = sq_query,
	.get_cells = sq_get_cells,
	.close = sq_close,
};

/* Does the verdicts table have this column (a store made before it has
 * not)? */
static bool has_column(struct store_sqlite *s, const char *name)
{
	sqlite3_stmt *st;
	bool found = false;

	if (sqlite3_prepare_v2(s->db, "PRAGMA table_info(verdicts)", -1, &st, NULL) != SQLITE_OK)
		return false;
	while (sqlite3_step(st) == SQLITE_ROW)
		if (!strcmp((const char *)sqlite3_column_text(st, 1), name))
			found = true;
	sqlite3_finalize(st);
	return found;
}

static bool has_reason(struct store_sqlite *s)
{
	return has_column(s, "reason");
}

/* A store from before the reason column gets it, last, as a new store
 * has it: the insert's column order is the same for both.  Its old rows
 * read "unspecified", as verdicts of old agents do.  Then the cells column
 * (pictures) the same way, after it: old rows have none (NULL). */
static int add_reason(struct store_sqlite *s, char *err, size_t errlen)
{
	if (!has_reason(s) && sqlite3_exec(s->db,
					   "ALTER TABLE verdicts ADD COLUMN reason TEXT NOT NULL "
					   "DEFAULT 'unspecified'",
					   NULL, NULL, NULL) != SQLITE_OK) {
		set_err(s, "add the reason column", err, errlen);
		return -EIO;
	}
	if (!has_column(s, "cells") &&
	    sqlite3_exec(s->db, "ALTER TABLE verdicts ADD COLUMN cells BLOB", NULL, NULL, NULL) !=
		    SQLITE_OK) {
		set_err(s, "add the cells column", err, errlen);
		return -EIO;
	}
	return 0;
}

/* A store without verdict_counts (new, or from before it) gets it, filled
 * from the verdicts it holds, in one transaction: a crash midway leaves
 * neither, and the next start does it again. */
static int add_counts(struct store_sqlite *s, char *err, size_t errlen)
{
	char sql[1024];
	uint64_t t0 = clock_mono_ms();
	sqlite3_int64 changes0;
	sqlite3_stmt *st;
	size_t g;
	int rc;

	rc = sqlite3_prepare_v2(s->db, "SELECT 1 FROM verdict_counts LIMIT 0", -1, &st, NULL);
	sqlite3_finalize(st);
	if (rc == SQLITE_OK)
		return 0;
	changes0 = sqlite3_total_changes64(s->db);
	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		set_err(s, "add verdict_counts", err, errlen);
		return -EIO;
	}
	if (sqlite3_exec(s->db, counts_sql, NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	for (g = 0; g < STORE_COUNT_GRAINS; g++) {
		long long w =
			(long long)(store_count_grain_ns((int)g) / 1000000000ULL) * 1000000000LL;

		snprintf(
			sql, sizeof(sql),
			"INSERT INTO verdict_counts SELECT 1, %lld, stage, start_ns / %lld * %lld, class,"
			" reason, agent_id, host, count(*) FROM verdicts GROUP BY 3, 4, 5, 6, 7, 8;"
			"INSERT INTO verdict_counts SELECT 0, grain, stage, t_ns, class, reason, '', '',"
			" sum(n) FROM verdict_counts WHERE per_agent = 1 AND grain = %lld"
			" GROUP BY 2, 3, 4, 5, 6",
			(long long)(store_count_grain_ns((int)g) / 1000000000ULL), w, w,
			(long long)(store_count_grain_ns((int)g) / 1000000000ULL));
		if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
			goto fail;
	}
	if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	/* A store that had verdicts: a warning, so a start that took minutes
	 * says why. */
	if (sqlite3_total_changes64(s->db) > changes0)
		log_warn("sqlite %s: verdict_counts made from the stored verdicts in %.1f s (%lld"
			 " rows)",
			 s->path, (double)(clock_mono_ms() - t0) / 1000.0,
			 (long long)(sqlite3_total_changes64(s->db) - changes0));
	return 0;
fail:
	set_err(s, "add verdict_counts", err, errlen);
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -EIO;
}

static int prep(struct store_sqlite *s, const char *sql, sqlite3_stmt **st, char *err,
		size_t errlen)
{
	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK) {
		set_err(s, "prepare", err, errlen);
		return -EIO;
	}
	return 0;
}

/* A new store file is created 0600 (verdicts say who talks to whom); SQLite
 * gives its -wal and -shm files the database file's mode.  An existing
 * file keeps its mode.  0, or -errno with err. */
static int create_private(struct store_sqlite *s, char *err, size_t errlen)
{
	int fd;

	if (s->path[0] == ':' || !strncmp(s->path, "file:", 5))
		return 0; /* ":memory:" and URIs: nothing to create here */
	fd = open(s->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 && errno != EEXIST) {
		int e = errno;

		snprintf(err, errlen, "sqlite %s: create: %s", s->path, strerror(e));
		return -e;
	}
	if (fd >= 0)
		close(fd);
	return 0;
}

struct store *store_sqlite_open(const char *path, const struct store_options *opt, char *err,
				size_t errlen)
{
	struct store_sqlite *s = calloc(1, sizeof(*s));
	char pragmas[160];
	int flags;

	if (!s) {
		snprintf(err, errlen, "sqlite %s: out of memory", path);
		return NULL;
	}
	s->base.ops = &sqlite_ops;
	snprintf(s->path, sizeof(s->path), "%s", path);
	flags = opt->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	if (!opt->readonly && create_private(s, err, errlen) < 0)
		goto fail;
	if (sqlite3_open_v2(path, &s->db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		set_err(s, opt->readonly ? "open (does the file exist?)" : "open", err, errlen);
		goto fail;
	}
	sqlite3_busy_timeout(s->db, opt->busy_timeout_ms);
	if (opt->readonly) {
		sqlite3_stmt *st;

		/* A file without our table is not a verdict store. */
		if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM verdicts LIMIT 0", -1, &st, NULL) !=
		    SQLITE_OK) {
			set_err(s, "not a flowpic verdict store", err, errlen);
			goto fail;
		}
		sqlite3_finalize(st);
		s->base.no_reason = !has_reason(s);
		s->base.no_cells = !has_column(s, "cells");
		return &s->base;
	}
	/* WAL: queries read while the collector writes.  FULL: a commit is on
	 * disk before its batches are acknowledged. */
	snprintf(pragmas, sizeof(pragmas),
		 "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA temp_store=MEMORY;",
		 opt->sqlite_sync_full ? "FULL" : "NORMAL");
	if (sqlite3_exec(s->db, pragmas, NULL, NULL, NULL) != SQLITE_OK) {
		set_err(s, "set WAL mode", err, errlen);
		goto fail;
	}
	if (sqlite3_exec(s->db, schema_sql, NULL, NULL, NULL) != SQLITE_OK) {
		set_err(s, "create schema", err, errlen);
		goto fail;
	}
	if (opt->dashboard_indexes &&
	    sqlite3_exec(s->db, dashboard_sql, NULL, NULL, NULL) != SQLITE_OK) {
		set_err(s, "create the dashboard's indexes", err, errlen);
		goto fail;
	}
	if (add_reason(s, err, errlen) < 0 || add_counts(s, err, errlen) < 0)
		goto fail;
	if (prep(s, insert_sql, &s->ins, err, errlen) < 0 ||
	    prep(s, counter_sql, &s->ctr, err, errlen) < 0 ||
	    prep(s, count_sql, &s->cnt, err, errlen) < 0 ||
	    prep(s, "BEGIN IMMEDIATE", &s->begin, err, errlen) < 0 ||
	    prep(s, "COMMIT", &s->commit, err, errlen) < 0 ||
	    prep(s, "ROLLBACK", &s->rollback, err, errlen) < 0 ||
	    prep(s, "SAVEPOINT b", &s->save, err, errlen) < 0 ||
	    prep(s, "RELEASE b", &s->release, err, errlen) < 0 ||
	    prep(s, "ROLLBACK TO b", &s->rollback_to, err, errlen) < 0)
		goto fail;
	s->retention_days = opt->readonly ? 0 : opt->retention_days;
	sq_expire(s, clock_real_ns());
	/* From now on a commit never waits long for a lock at a time (sq_busy). */
	s->busy_timeout_ms = opt->busy_timeout_ms;
	sqlite3_busy_timeout(s->db, opt->busy_timeout_ms < BUSY_STEP_MS ? opt->busy_timeout_ms :
									  BUSY_STEP_MS);
	return &s->base;
fail:
	sq_close(&s->base);
	return NULL;
}
