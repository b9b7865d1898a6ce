// SPDX-License-Identifier: MIT
/*
 * store_pg.c - the fleet store: PostgreSQL through libpq.
 *
 * Several collectors may share one database, so everything here is safe
 * under concurrency: the schema is created under an advisory lock, a
 * verdict's identity is the primary key and rows go in with ON CONFLICT DO
 * NOTHING (whichever collector inserts first wins; the other counts a
 * duplicate), and counters are upserted keeping the newest batch's value.
 * A transaction's verdicts go in with COPY into a temporary table (one per
 * connection), then one INSERT ... SELECT ... ON CONFLICT DO NOTHING: COPY
 * alone cannot skip a duplicate, and this costs 28-35 % less server CPU per
 * row than the JSON statement it replaced (docs/scale.md, "COPY or INSERT").
 *
 * At fleet size the verdict table is partitioned by day of the block's start
 * (start_ns, part of the key: a resent verdict carries the same start, so it
 * still meets its first copy); each day's partition is made before the first
 * transaction that needs it, and --retention-days drops whole partitions.  A
 * database made before partitioning keeps its plain table (retention then
 * deletes rows).
 *
 * The overview's counts (verdict_counts, store.h) are added by the same
 * INSERT statement from the rows its INSERT returned, i.e. the verdicts new to the
 * store: a duplicate is never counted, and the counts commit or roll back
 * with the verdicts.  They are partitioned (and dropped) by day as the
 * verdicts are.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <time.h>

#include <libpq-fe.h>

#include "core/log.h"
#include "core/utf8.h"
#include "json.h"
#include "store.h"

/* One string is one implicit transaction: the transaction-level advisory lock
 * is held until the tables are committed, so a second collector starting at
 * the same moment waits and then finds them (a session lock released inside
 * the string would let it in before the commit, to fail "already exists"). */
static const char schema_sql[] =
	"SELECT pg_advisory_xact_lock(7301985);"
	"CREATE TABLE IF NOT EXISTS verdicts ("
	" agent_id TEXT NOT NULL, run_id BIGINT NOT NULL, seq BIGINT NOT NULL,"
	" host TEXT NOT NULL, agent_version TEXT NOT NULL, interface TEXT NOT NULL,"
	" src_addr TEXT NOT NULL, dst_addr TEXT NOT NULL, src_port INTEGER NOT NULL,"
	" dst_port INTEGER NOT NULL, protocol INTEGER NOT NULL, direction TEXT NOT NULL,"
	" flow_id BIGINT NOT NULL, stage TEXT NOT NULL, start_ns BIGINT NOT NULL,"
	" duration_ns BIGINT NOT NULL, packets_fwd BIGINT NOT NULL, packets_rev BIGINT NOT NULL,"
	" bytes_fwd BIGINT NOT NULL, bytes_rev BIGINT NOT NULL, block_index BIGINT NOT NULL,"
	" blocks BIGINT NOT NULL, class TEXT NOT NULL, confidence REAL NOT NULL,"
	" probs TEXT NOT NULL, model TEXT NOT NULL, model_version TEXT NOT NULL,"
	" received_ns BIGINT NOT NULL, reason TEXT NOT NULL DEFAULT 'unspecified',"
	" cells BYTEA,"
	" PRIMARY KEY (agent_id, run_id, seq, start_ns)) PARTITION BY RANGE (start_ns);"
	/* A store from before reasons: its rows read "unspecified". */
	"ALTER TABLE verdicts ADD COLUMN IF NOT EXISTS reason TEXT NOT NULL"
	" DEFAULT 'unspecified';"
	/* ... and from before pictures: its rows have none (NULL). */
	"ALTER TABLE verdicts ADD COLUMN IF NOT EXISTS cells BYTEA;"
	"CREATE INDEX IF NOT EXISTS verdicts_start ON verdicts (start_ns);"
	/* The filters of query (and of a dashboard): newest first within each. */
	"CREATE INDEX IF NOT EXISTS verdicts_class ON verdicts (class, start_ns);"
	"CREATE INDEX IF NOT EXISTS verdicts_agent ON verdicts (agent_id, start_ns);"
	"CREATE INDEX IF NOT EXISTS verdicts_host ON verdicts (host, start_ns);"
	"CREATE INDEX IF NOT EXISTS verdicts_received ON verdicts (received_ns);"
	"CREATE TABLE IF NOT EXISTS agent_counters ("
	" agent_id TEXT NOT NULL, run_id BIGINT NOT NULL, name TEXT NOT NULL,"
	" value BIGINT NOT NULL, host TEXT NOT NULL, batch_seq BIGINT NOT NULL,"
	" updated_ns BIGINT NOT NULL,"
	" PRIMARY KEY (agent_id, run_id, name));";

/* The dashboard's (--web-listen), under the schema's lock: its overview,
 * flow pages and address filter.  Each index costs write speed
 * (docs/dashboard.md, "Indexes"), so only a store that serves the dashboard
 * gets them. */
static const char dashboard_sql[] =
	"SELECT pg_advisory_xact_lock(7301985);"
	"CREATE INDEX IF NOT EXISTS verdicts_src ON verdicts (src_addr, start_ns);"
	"CREATE INDEX IF NOT EXISTS verdicts_dst ON verdicts (dst_addr, start_ns);"
	"CREATE INDEX IF NOT EXISTS verdicts_overview"
	" ON verdicts (stage, start_ns, class, reason, agent_id, host);"
	"CREATE INDEX IF NOT EXISTS verdicts_flow ON verdicts (agent_id, run_id, flow_id);";

/* The verdicts of the open transaction, COPYed in (text format, tab
 * separated, in this column order: put_batch writes the lines); b is the
 * batch's index in the transaction.  One per connection, made with it, and
 * emptied by every commit or rollback. */
static const char stage_sql[] =
	"CREATE TEMP TABLE IF NOT EXISTS verdicts_in (b integer, agent_id text, run_id bigint,"
	" host text, agent_version text, model text, model_version text, received_ns bigint,"
	" seq bigint, interface text, src_addr text, dst_addr text, src_port integer,"
	" dst_port integer, protocol integer, direction text, flow_id bigint, stage text,"
	" start_ns bigint, duration_ns bigint, packets_fwd bigint, packets_rev bigint,"
	" bytes_fwd bigint, bytes_rev bigint, block_index bigint, blocks bigint, class text,"
	" confidence real, probs text, reason text, cells bytea) ON COMMIT DELETE ROWS";

/* From verdicts_in to verdicts: every batch ($1 NULL) or batch $1 alone
 * (pg_commit_isolated).  Rows go in sorted by key: two collectors writing
 * overlapping verdicts then wait for each other in the same order and cannot
 * deadlock.  The result says, per batch, how many of its verdicts were new;
 * within the transaction the first batch carrying a verdict gets the credit. */
#define VERDICT_COLS \
	"agent_id, run_id, seq, host, agent_version, interface, src_addr, dst_addr, src_port," \
	" dst_port, protocol, direction, flow_id, stage, start_ns, duration_ns, packets_fwd," \
	" packets_rev, bytes_fwd, bytes_rev, block_index, blocks, class, confidence, probs," \
	" model, model_version, received_ns, reason, cells"

static const char insert_sql[] =
	"WITH ins AS (INSERT INTO verdicts (" VERDICT_COLS ")"
	"  SELECT " VERDICT_COLS " FROM verdicts_in WHERE $1::integer IS NULL OR b = $1"
	"  ORDER BY agent_id, run_id, seq"
	"  ON CONFLICT DO NOTHING RETURNING agent_id, run_id, seq, host, stage, class, reason,"
	"  start_ns),"
	/* Per agent and host, and over all agents under this connection's
	 * own name (no collector waits for another's row); in key order. */
	" cnt AS (INSERT INTO verdict_counts (per_agent, grain, stage, t_ns, class, reason,"
	"  agent_id, host, n)"
	"  SELECT p.per_agent, g.grain, i.stage, i.start_ns / (g.grain * 1000000000)"
	"  * (g.grain * 1000000000), i.class, i.reason,"
	"  CASE p.per_agent WHEN 1 THEN i.agent_id ELSE '' END,"
	"  CASE p.per_agent WHEN 1 THEN i.host ELSE pg_backend_pid()::text END, count(*)"
	"  FROM ins i CROSS JOIN (VALUES (60::bigint), (3600), (86400)) AS g(grain)"
	"  CROSS JOIN (VALUES (0), (1)) AS p(per_agent)"
	"  GROUP BY 1, 2, 3, 4, 5, 6, 7, 8 ORDER BY 1, 2, 3, 4, 5, 6, 7, 8"
	"  ON CONFLICT (per_agent, grain, stage, t_ns, class, reason, agent_id, host)"
	"  DO UPDATE SET n = verdict_counts.n + EXCLUDED.n),"
	" firsts AS (SELECT DISTINCT ON (agent_id, run_id, seq) b, agent_id, run_id, seq"
	"  FROM verdicts_in WHERE $1::integer IS NULL OR b = $1"
	"  ORDER BY agent_id, run_id, seq, b)"
	" SELECT f.b, count(*) FROM ins JOIN firsts f USING (agent_id, run_id, seq) GROUP BY f.b";

/* Counters ($2: b, name, value): the newest batch's value per counter, in
 * key order; never rolled back by an older batch arriving late. */
static const char counter_sql[] =
	"INSERT INTO agent_counters (agent_id, run_id, name, value, host, batch_seq, updated_ns)"
	" SELECT DISTINCT ON (bt.agent_id, bt.run_id, c.name) bt.agent_id, bt.run_id, c.name,"
	" c.value, bt.host, bt.sequence, bt.received_ns"
	" FROM json_to_recordset($2::json) AS c(b integer, name text, value bigint)"
	" JOIN json_to_recordset($1::json) AS bt(b integer, agent_id text, run_id bigint,"
	" host text, sequence bigint, received_ns bigint) USING (b)"
	" WHERE c.name <> ''"
	" ORDER BY bt.agent_id, bt.run_id, c.name, bt.sequence DESC"
	" ON CONFLICT (agent_id, run_id, name) DO UPDATE SET value = EXCLUDED.value,"
	" host = EXCLUDED.host, batch_seq = EXCLUDED.batch_seq, updated_ns = EXCLUDED.updated_ns"
	" WHERE EXCLUDED.batch_seq >= agent_counters.batch_seq";

/* Where one batch is in the transaction's buffers: its elements in the
 * JSON arrays (from the first '{' to the last '}') and its lines in the COPY
 * text; empty when start == end. */
struct pg_span {
	size_t b0, b1, r0, r1, c0, c1;
	uint32_t valid, rejected, counters; /* as put_batch counted them */
};

#define DAY_NS (86400LL * 1000000000LL)

struct store_pg {
	struct store base;
	PGconn *conn;
	bool partitioned;     /* verdicts (and verdict_counts) PARTITION BY RANGE */
	int64_t *days, *made; /* the transaction's days; days known to have a partition */
	size_t ndays, capdays, nmade, capmade;
	int retention_days;	       /* 0: keep everything */
	uint64_t expired_ns;	       /* when retention last ran */
	uint64_t txn_now_ns;	       /* the transaction's newest batch arrival */
	struct sbuf batches, counters; /* the open transaction's, as JSON */
	struct sbuf rows;	       /* its verdicts, as COPY text (stage_sql) */
	struct sbuf prefix;	       /* the batch's columns of each of its lines */
	size_t nrows, ncounters;
	struct pg_span *spans; /* per batch, to run one alone (pg_commit_isolated) */
	size_t capspans;
	struct sbuf one_b, one_c; /* one batch's documents */
	uint8_t *cells;		  /* one verdict's picture, encoded (store_cells_blob) */
	size_t cells_cap;
	char conninfo[1024];
};

static const struct store_ops pg_ops;

static void set_err(struct store_pg *s, const char *what, const PGresult *res, char *err,
		    size_t errlen)
{
	const char *m = res ? PQresultErrorMessage(res) : PQerrorMessage(s->conn);
	size_t n;

	n = (size_t)snprintf(err, errlen, "postgresql: %s: %s", what, m && *m ? m : "failed");
	/* libpq messages end in newlines and may span lines: keep one line. */
	for (n = 0; err[n]; n++)
		if (err[n] == '\n')
			err[n] = err[n + 1] ? ' ' : '\0';
}

/* Run sql: 0, or -EIO with the server's message in err. */
static int exec_cmd(struct store_pg *s, const char *sql, char *err, size_t errlen)
{
	PGresult *r = PQexec(s->conn, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;

	if (!ok)
		set_err(s, sql, r, err, errlen);
	PQclear(r);
	return ok ? 0 : -EIO;
}

static void pg_rollback(struct store_pg *s)
{
	char ignore[64];

	if (PQtransactionStatus(s->conn) != PQTRANS_IDLE)
		exec_cmd(s, "ROLLBACK", ignore, sizeof(ignore));
	s->base.in_txn = false;
}

static int prepare_all(struct store_pg *s, char *err, size_t errlen)
{
	PGresult *r;

	/* A new session (first connect or reconnect) has no temporary table. */
	if (exec_cmd(s, stage_sql, err, errlen) < 0)
		return -EIO;
	r = PQprepare(s->conn, "ins", insert_sql, 1, NULL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		set_err(s, "prepare insert", r, err, errlen);
		PQclear(r);
		return -EIO;
	}
	PQclear(r);
	r = PQprepare(s->conn, "ctr", counter_sql, 2, NULL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		set_err(s, "prepare counters", r, err, errlen);
		PQclear(r);
		return -EIO;
	}
	PQclear(r);
	return 0;
}

/* A dropped connection is re-established before the next transaction;
 * a transaction it broke is run again (pg_commit). */
static int ensure_conn(struct store_pg *s, char *err, size_t errlen)
{
	if (PQstatus(s->conn) == CONNECTION_OK)
		return 0;
	PQreset(s->conn);
	if (PQstatus(s->conn) != CONNECTION_OK) {
		set_err(s, "reconnect", NULL, err, errlen);
		return -EIO;
	}
	return prepare_all(s, err, errlen);
}

static void json_u(struct sbuf *b, const char *key, uint64_t v)
{
	sbuf_printf(b, ",\"%s\":%" PRId64, key, (int64_t)v);
}

static void json_s(struct sbuf *b, const char *key, const char *v)
{
	sbuf_printf(b, ",\"%s\":", key);
	sbuf_json_str(b, v ? v : "", v ? strlen(v) : 0);
}

/* The day (since 1970, UTC) of a time in ns; times are int64 (validate.c). */
static int64_t day_of(uint64_t ns)
{
	int64_t t = (int64_t)ns;

	return t >= 0 ? t / DAY_NS : -((-t + DAY_NS - 1) / DAY_NS);
}

static bool has_day(const int64_t *d, size_t n, int64_t day)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (d[i] == day)
			return true;
	return false;
}

/* Add day to the set (once): 0, or -ENOMEM. */
static int add_day(int64_t **d, size_t *n, size_t *cap, int64_t day)
{
	if (has_day(*d, *n, day))
		return 0;
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 16;
		int64_t *nd = realloc(*d, c * sizeof(*nd));

		if (!nd)
			return -ENOMEM;
		*d = nd;
		*cap = c;
	}
	(*d)[(*n)++] = day;
	return 0;
}

/* verdicts_pYYYYMMDD: the partition of one day. */
static void partition_name(int64_t day, char *out, size_t len)
{
	time_t t = (time_t)(day * 86400);
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(out, len, "verdicts_p%04d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

/* Every day of the transaction has its partition before the insert runs.
 * Under a transaction-level advisory lock (as schema_sql), so collectors
 * sharing the database make each once; IF NOT EXISTS for the one that
 * comes second. */
static int make_partitions(struct store_pg *s, char *err, size_t errlen)
{
	char sql[768], name[40];
	size_t i;
	int rc;

	for (i = 0; i < s->ndays; i++) {
		int64_t day = s->days[i];

		if (has_day(s->made, s->nmade, day))
			continue;
		partition_name(day, name, sizeof(name));
		snprintf(sql, sizeof(sql),
			 "SELECT pg_advisory_xact_lock(7301986);"
			 "CREATE TABLE IF NOT EXISTS %s PARTITION OF verdicts"
			 " FOR VALUES FROM (%lld) TO (%lld);"
			 "CREATE TABLE IF NOT EXISTS verdict_counts_p%s PARTITION OF verdict_counts"
			 " FOR VALUES FROM (%lld) TO (%lld);",
			 name, (long long)(day * DAY_NS), (long long)((day + 1) * DAY_NS),
			 name + 10, (long long)(day * DAY_NS), (long long)((day + 1) * DAY_NS));
		rc = exec_cmd(s, sql, err, errlen);
		if (rc < 0)
			return rc;
		if (add_day(&s->made, &s->nmade, &s->capmade, day) < 0)
			return -ENOMEM;
	}
	return 0;
}

/* Retention: drop the partitions (or, in a plain table, delete the rows) of
 * days wholly older than retention_days before now; at most once an hour. */
static int expire(struct store_pg *s, uint64_t now_ns, char *err, size_t errlen)
{
	int64_t cutoff = day_of(now_ns) - s->retention_days; /* days before this go */
	char sql[256], name[40];
	PGresult *r;
	int i, n, rc = 0;

	if (!s->retention_days ||
	    (s->expired_ns && now_ns - s->expired_ns < 3600ULL * 1000000000ULL))
		return 0;
	s->expired_ns = now_ns;
	if (!s->partitioned) {
		/* The counts' key leads with these columns: index ranges. */
		snprintf(sql, sizeof(sql),
			 "DELETE FROM verdicts WHERE start_ns < %lld;"
			 "DELETE FROM verdict_counts WHERE per_agent IN (0, 1)"
			 " AND grain IN (60, 3600, 86400)"
			 " AND stage IN ('early', 'block', 'final', 'unspecified') AND t_ns < %lld",
			 (long long)(cutoff * DAY_NS), (long long)(cutoff * DAY_NS));
		return exec_cmd(s, sql, err, errlen);
	}
	r = PQexec(s->conn,
		   "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
		   " WHERE i.inhparent IN ('verdicts'::regclass, 'verdict_counts'::regclass)"
		   " AND c.relname ~ '^verdict(s|_counts)_p[0-9]{8}$' ORDER BY 1");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		set_err(s, "list partitions", r, err, errlen);
		PQclear(r);
		return -EIO;
	}
	partition_name(cutoff, name, sizeof(name));
	n = PQntuples(r);
	for (i = 0; i < n && rc == 0; i++) {
		const char *rel = PQgetvalue(r, i, 0);
		size_t len = strlen(rel);

		/* Both tables' days: the names end in the date. */
		if (len < 8 || strcmp(rel + len - 8, name + 10) >= 0)
			continue;
		snprintf(sql, sizeof(sql), "DROP TABLE IF EXISTS %s", rel);
		rc = exec_cmd(s, sql, err, errlen);
	}
	PQclear(r);
	s->nmade = 0; /* a dropped day would be made again when needed */
	return rc;
}

/* A text field of a COPY line: backslash, tab, newline and carriage return
 * escaped (agents' strings may hold any of them, and a literal \N must not
 * read as NULL); invalid UTF-8 bytes become U+FFFD, as the JSON writers do,
 * so the server's encoding check refuses no batch for them. */
static void copy_text(struct sbuf *b, const char *str)
{
	const unsigned char *t = (const unsigned char *)(str ? str : "");
	size_t i = 0, n = strlen((const char *)t), l;

	while (i < n) {
		size_t run = i;

		while (run < n && t[run] < 0x80 && t[run] != '\\' && t[run] != '\t' &&
		       t[run] != '\n' && t[run] != '\r')
			run++;
		if (run > i) {
			sbuf_add(b, (const char *)t + i, run - i);
			i = run;
		} else if (t[i] < 0x80) {
			char e[2] = { '\\', t[i] == '\\' ? '\\' :
					    t[i] == '\t' ? 't' :
					    t[i] == '\n' ? 'n' :
							   'r' };

			sbuf_add(b, e, 2);
			i++;
		} else if ((l = utf8_len(t + i, n - i)) != 0) {
			sbuf_add(b, (const char *)t + i, l);
			i += l;
		} else {
			sbuf_add(b, "\xef\xbf\xbd", 3);
			i++;
		}
	}
}

/* The last column of a COPY line: the encoded picture as bytea's hex input
 * (\x..., its backslash escaped), or \N (NULL) for a verdict without one.
 * 0 or -ENOMEM. */
static int copy_cells(struct store_pg *s, struct sbuf *j, const Flowpic__V1__Cells *c)
{
	static const char hex[] = "0123456789abcdef";
	long n = store_cells_blob(c, &s->cells, &s->cells_cap);
	char pair[2];
	long i;

	if (n < 0)
		return (int)n;
	if (n == 0) {
		sbuf_add(j, "\\N", 2);
		return 0;
	}
	sbuf_add(j, "\\\\x", 3);
	for (i = 0; i < n; i++) {
		pair[0] = hex[s->cells[i] >> 4];
		pair[1] = hex[s->cells[i] & 15];
		sbuf_add(j, pair, 2);
	}
	return 0;
}

/* Nothing is sent yet: the batch joins the transaction's COPY text (its
 * verdicts) and JSON documents (its batch and counters). */
static int pg_put_batch(struct store *base, Flowpic__V1__Batch *b, uint64_t now_ns, size_t idx,
			struct store_batch_result *res, char *err, size_t errlen)
{
	struct store_pg *s = (struct store_pg *)base;
	const Flowpic__V1__Agent *a = b->agent;
	struct sbuf *j = &s->rows;
	struct verdict_row r;
	struct pg_span *pos;
	size_t i;

	if (!s->base.in_txn) {
		sbuf_reset(&s->batches);
		sbuf_reset(&s->rows);
		sbuf_reset(&s->counters);
		s->nrows = s->ncounters = 0;
		s->ndays = 0;
		s->base.in_txn = true;
	}
	s->txn_now_ns = now_ns;
	if (idx >= s->capspans) {
		size_t cap = s->capspans ? s->capspans * 2 : 256;
		struct pg_span *ns = realloc(s->spans, cap * sizeof(*ns));

		if (!ns) {
			snprintf(err, errlen, "postgresql: out of memory building a transaction");
			flowpic__v1__batch__free_unpacked(b, NULL);
			s->base.in_txn = false;
			return -ENOMEM;
		}
		s->spans = ns;
		s->capspans = cap;
	}
	pos = &s->spans[idx];
	sbuf_add(&s->batches, idx ? "," : "[", 1);
	pos->b0 = s->batches.len;
	pos->r0 = pos->r1 = s->rows.len;
	pos->c0 = pos->c1 = s->counters.len + 1;
	sbuf_printf(&s->batches, "{\"b\":%zu", idx);
	json_s(&s->batches, "agent_id", a->agent_id);
	json_u(&s->batches, "run_id", a->run_id);
	json_s(&s->batches, "host", a->host);
	json_s(&s->batches, "agent_version", a->version);
	json_s(&s->batches, "model", b->model ? b->model->name : "");
	json_s(&s->batches, "model_version", b->model ? b->model->version : "");
	json_u(&s->batches, "sequence", b->sequence);
	json_u(&s->batches, "received_ns", now_ns);
	sbuf_add(&s->batches, "}", 1);
	pos->b1 = s->batches.len;
	/* The batch's columns, the same on each of its lines. */
	sbuf_reset(&s->prefix);
	sbuf_printf(&s->prefix, "%zu\t", idx);
	copy_text(&s->prefix, a->agent_id);
	sbuf_printf(&s->prefix, "\t%" PRId64 "\t", (int64_t)a->run_id);
	copy_text(&s->prefix, a->host);
	sbuf_add(&s->prefix, "\t", 1);
	copy_text(&s->prefix, a->version);
	sbuf_add(&s->prefix, "\t", 1);
	copy_text(&s->prefix, b->model ? b->model->name : "");
	sbuf_add(&s->prefix, "\t", 1);
	copy_text(&s->prefix, b->model ? b->model->version : "");
	sbuf_printf(&s->prefix, "\t%" PRId64 "\t", (int64_t)now_ns);
	for (i = 0; i < b->n_verdicts; i++) {
		const Flowpic__V1__Verdict *v = b->verdicts[i];
		const Flowpic__V1__FlowKey *k = v->flow;
		const Flowpic__V1__Span *sp = v->span;
		float conf = v->confidence;

		if (v->seq == 0) {
			res->rejected++;
			continue;
		}
		if (conf != conf || conf > 1e30f || conf < -1e30f)
			conf = 0;
		verdict_row_fill(&r, b, v);
		if (s->partitioned && add_day(&s->days, &s->ndays, &s->capdays,
					      day_of(sp ? sp->start_unix_ns : 0)) < 0) {
			snprintf(err, errlen, "postgresql: out of memory building a transaction");
			flowpic__v1__batch__free_unpacked(b, NULL);
			s->base.in_txn = false;
			return -ENOMEM;
		}
		/* Columns in stage_sql's order; numbers as int64, as validate.c
		 * bounds them. */
		sbuf_add(j, s->prefix.p, s->prefix.len);
		sbuf_printf(j, "%" PRId64 "\t", (int64_t)v->seq);
		copy_text(j, v->interface);
		sbuf_add(j, "\t", 1);
		copy_text(j, r.src);
		sbuf_add(j, "\t", 1);
		copy_text(j, r.dst);
		sbuf_printf(j, "\t%u\t%u\t%u\t", k ? k->src_port : 0, k ? k->dst_port : 0,
			    k ? k->protocol : 0);
		copy_text(j, r.direction);
		sbuf_printf(j, "\t%" PRId64 "\t", (int64_t)v->flow_id);
		copy_text(j, r.stage);
		sbuf_printf(j,
			    "\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t%" PRId64
			    "\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t",
			    (int64_t)(sp ? sp->start_unix_ns : 0),
			    (int64_t)(sp ? sp->duration_ns : 0),
			    (int64_t)(sp ? sp->packets_fwd : 0),
			    (int64_t)(sp ? sp->packets_rev : 0), (int64_t)(sp ? sp->bytes_fwd : 0),
			    (int64_t)(sp ? sp->bytes_rev : 0), (int64_t)(sp ? sp->block_index : 0),
			    (int64_t)(sp ? sp->blocks : 0));
		copy_text(j, v->class_name);
		sbuf_printf(j, "\t%.9g\t", conf);
		copy_text(j, r.probs);
		sbuf_add(j, "\t", 1);
		copy_text(j, r.reason);
		sbuf_add(j, "\t", 1);
		if (copy_cells(s, j, v->cells) < 0) {
			snprintf(err, errlen, "postgresql: out of memory for a picture");
			flowpic__v1__batch__free_unpacked(b, NULL);
			s->base.in_txn = false;
			return -ENOMEM;
		}
		sbuf_add(j, "\n", 1);
		s->nrows++;
		res->duplicates++; /* valid verdicts, until the commit says which were new */
		pos->r1 = s->rows.len;
	}
	for (i = 0; i < b->n_counters; i++) {
		sbuf_printf(&s->counters, "%s{\"b\":%zu", s->ncounters ? "," : "[", idx);
		json_s(&s->counters, "name", b->counters[i]->name);
		json_u(&s->counters, "value", b->counters[i]->value);
		sbuf_add(&s->counters, "}", 1);
		s->ncounters++;
		res->counters++;
		pos->c1 = s->counters.len;
	}
	pos->valid = res->duplicates;
	pos->rejected = res->rejected;
	pos->counters = res->counters;
	flowpic__v1__batch__free_unpacked(b, NULL);
	if (s->batches.oom || s->rows.oom || s->counters.oom || s->prefix.oom) {
		snprintf(err, errlen, "postgresql: out of memory building a transaction");
		s->base.in_txn = false;
		return -ENOMEM;
	}
	return 0;
}

static bool retryable(const PGresult *r)
{
	const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

	/* deadlock_detected, serialization_failure: the whole transaction can
	 * simply run again. */
	return st && (!strcmp(st, "40P01") || !strcmp(st, "40001"));
}

/* COPY len bytes of lines into verdicts_in: NULL, or the failed result (the
 * caller clears it; its SQLSTATE says whose fault, as a statement's). */
static PGresult *copy_rows(struct store_pg *s, const char *p, size_t len)
{
	PGresult *r = PQexec(s->conn, "COPY verdicts_in FROM STDIN");
	size_t off = 0, n;
	int ok = 1;

	if (PQresultStatus(r) != PGRES_COPY_IN)
		return r;
	PQclear(r);
	/* In pieces: PQputCopyData takes an int length. */
	for (; off < len && ok == 1; off += n) {
		n = len - off < (1u << 20) ? len - off : (1u << 20);
		ok = PQputCopyData(s->conn, p + off, (int)n);
	}
	PQputCopyEnd(s->conn, ok == 1 ? NULL : "the collector failed to send its rows");
	r = PQgetResult(s->conn);
	if (!r)
		r = PQmakeEmptyPGresult(s->conn, PGRES_FATAL_ERROR);
	for (PGresult *more; (more = PQgetResult(s->conn));)
		PQclear(more);
	if (PQresultStatus(r) == PGRES_COMMAND_OK) {
		PQclear(r);
		return NULL;
	}
	return r;
}

/* The rows of every batch (b NULL) or of batch b: COPY, then the insert.
 * The insert's result, or the COPY's when that failed. */
static PGresult *insert_rows(struct store_pg *s, const char *p, size_t len, const char *b)
{
	const char *params[1] = { b };
	PGresult *r = copy_rows(s, p, len);

	return r ? r : PQexecPrepared(s->conn, "ins", 1, params, NULL, NULL, 0);
}

static int pg_commit_once(struct store_pg *s, bool *retry, char *err, size_t errlen)
{
	struct store_batch_result *res = s->base.res;
	const char *params[2];
	PGresult *r;
	int i, rc;

	*retry = false;
	rc = ensure_conn(s, err, errlen);
	if (rc < 0)
		return rc;
	rc = exec_cmd(s, "BEGIN", err, errlen);
	if (rc < 0) {
		/* The server restarted since the last commit: reconnect and
		 * run the transaction again (it is all in our JSON). */
		*retry = PQstatus(s->conn) != CONNECTION_OK;
		return rc;
	}
	params[0] = s->batches.p;
	if (s->nrows) {
		r = insert_rows(s, s->rows.p, s->rows.len, NULL);
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			*retry = retryable(r);
			set_err(s, "insert verdicts", r, err, errlen);
			PQclear(r);
			goto fail;
		}
		for (i = 0; i < PQntuples(r); i++) {
			size_t b = strtoul(PQgetvalue(r, i, 0), NULL, 10);
			uint32_t n = (uint32_t)strtoul(PQgetvalue(r, i, 1), NULL, 10);

			if (b < s->base.nres && n <= res[b].duplicates) {
				res[b].stored = n;
				res[b].duplicates -= n;
			}
		}
		PQclear(r);
	}
	if (s->ncounters) {
		params[1] = s->counters.p;
		r = PQexecPrepared(s->conn, "ctr", 2, params, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			*retry = retryable(r);
			set_err(s, "upsert counters", r, err, errlen);
			PQclear(r);
			goto fail;
		}
		PQclear(r);
	}
	r = PQexec(s->conn, "COMMIT");
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		*retry = retryable(r);
		set_err(s, "COMMIT", r, err, errlen);
		PQclear(r);
		goto fail;
	}
	PQclear(r);
	return 0;
fail:
	if (PQstatus(s->conn) != CONNECTION_OK)
		*retry = true;
	else
		pg_rollback(s);
	return -EIO;
}

/* The values of one batch are at fault (data exception, constraint): it
 * fails alone with INVALID_ARGUMENT; any other error of its statement is
 * still its own (UNAVAILABLE for that call only). */
static int batch_error(const PGresult *r)
{
	const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

	return st && (!strncmp(st, "22", 2) || !strncmp(st, "23", 2)) ? -EINVAL : -EIO;
}

/* "[" elements "]" of one batch, from the transaction's document. */
static const char *one_doc(struct sbuf *out, const struct sbuf *all, size_t from, size_t to)
{
	sbuf_reset(out);
	sbuf_add(out, "[", 1);
	if (to > from)
		sbuf_add(out, all->p + from, to - from);
	sbuf_add(out, "]", 1);
	return out->oom ? NULL : out->p;
}

/* Run one statement of one batch; PGRES_* status wanted. */
static PGresult *run_one(struct store_pg *s, const char *stmt, const char *p1, const char *p2)
{
	const char *params[2] = { p1, p2 };

	return PQexecPrepared(s->conn, stmt, 2, params, NULL, NULL, 0);
}

/* The group statement failed: run the batches one by one, each under its
 * own SAVEPOINT, so the one the database refuses is rolled back alone and
 * gets its own error; the others are committed.  Statuses as
 * pg_commit_once's. */
static int pg_commit_isolated(struct store_pg *s, bool *retry, char *err, size_t errlen)
{
	struct store_batch_result *res = s->base.res;
	size_t i;
	int rc;

	*retry = false;
	rc = ensure_conn(s, err, errlen);
	if (rc < 0)
		return rc;
	if (exec_cmd(s, "BEGIN", err, errlen) < 0) {
		*retry = PQstatus(s->conn) != CONNECTION_OK;
		return -EIO;
	}
	for (i = 0; i < s->base.nres; i++) {
		const struct pg_span *sp = &s->spans[i];
		const char *bdoc = one_doc(&s->one_b, &s->batches, sp->b0, sp->b1);
		const char *cdoc = one_doc(&s->one_c, &s->counters, sp->c0, sp->c1);
		PGresult *r = NULL;
		char bnum[24];
		int j;

		if (!bdoc || !cdoc) {
			snprintf(err, errlen, "postgresql: out of memory isolating a batch");
			goto fail;
		}
		if (exec_cmd(s, "SAVEPOINT b", err, errlen) < 0)
			goto fail;
		if (sp->r1 > sp->r0) {
			snprintf(bnum, sizeof(bnum), "%zu", i);
			r = insert_rows(s, s->rows.p + sp->r0, sp->r1 - sp->r0, bnum);
			if (PQresultStatus(r) == PGRES_TUPLES_OK) {
				for (j = 0; j < PQntuples(r); j++) {
					uint32_t n =
						(uint32_t)strtoul(PQgetvalue(r, j, 1), NULL, 10);

					if (n <= res[i].duplicates) {
						res[i].stored = n;
						res[i].duplicates -= n;
					}
				}
				PQclear(r);
				r = NULL;
			}
		}
		if (!r && sp->c1 > sp->c0) {
			r = run_one(s, "ctr", bdoc, cdoc);
			if (PQresultStatus(r) == PGRES_COMMAND_OK) {
				PQclear(r);
				r = NULL;
			}
		}
		if (r) {
			char ignore[64];

			if (retryable(r) || PQstatus(s->conn) != CONNECTION_OK) {
				set_err(s, "insert verdicts", r, err, errlen);
				PQclear(r);
				goto fail;
			}
			/* This batch alone: its own error, its rows undone. */
			set_err(s, "insert verdicts", r, res[i].err, sizeof(res[i].err));
			res[i].error = batch_error(r);
			res[i].stored = res[i].duplicates = res[i].counters = 0;
			PQclear(r);
			if (exec_cmd(s, "ROLLBACK TO SAVEPOINT b", ignore, sizeof(ignore)) < 0)
				goto fail;
		}
		if (exec_cmd(s, "RELEASE SAVEPOINT b", err, errlen) < 0)
			goto fail;
	}
	if (exec_cmd(s, "COMMIT", err, errlen) < 0)
		goto fail;
	return 0;
fail:
	if (PQstatus(s->conn) != CONNECTION_OK)
		*retry = true;
	else if (PQtransactionStatus(s->conn) != PQTRANS_IDLE)
		pg_rollback(s);
	return -EIO;
}

static int pg_commit(struct store *base, char *err, size_t errlen)
{
	struct store_pg *s = (struct store_pg *)base;
	struct store_batch_result *res = base->res;
	bool retry = true, isolate = false;
	int attempt, rc = -EIO;
	size_t i;

	if (s->batches.p)
		sbuf_add(&s->batches, "]", 1);
	if (s->ncounters)
		sbuf_add(&s->counters, "]", 1);
	if (ensure_conn(s, err, errlen) == 0 && make_partitions(s, err, errlen) < 0) {
		s->base.in_txn = false;
		return -EIO;
	}
	for (attempt = 0; attempt < 4; attempt++) {
		/* A retry starts from the verdict counts put_batch left. */
		for (i = 0; attempt && i < base->nres; i++) {
			memset(&res[i], 0, sizeof(res[i]));
			res[i].duplicates = s->spans[i].valid;
			res[i].rejected = s->spans[i].rejected;
			res[i].counters = s->spans[i].counters;
		}
		rc = isolate ? pg_commit_isolated(s, &retry, err, errlen) :
			       pg_commit_once(s, &retry, err, errlen);
		if (rc == 0)
			break;
		if (!retry) {
			/* Not the connection nor a deadlock: some batch's values.
			 * Once more, one batch at a time. */
			if (isolate || PQstatus(s->conn) != CONNECTION_OK)
				break;
			isolate = true;
		}
	}
	s->base.in_txn = false;
	if (rc == 0 && expire(s, s->txn_now_ns, err, errlen) < 0)
		log_warn("%s", err); /* the verdicts are stored: only the clean-up failed */
	return rc;
}

static int pg_query(struct store *base, const struct store_filter *f, store_row_cb cb, void *ctx,
		    char *err, size_t errlen)
{
	struct store_pg *s = (struct store_pg *)base;
	const char *vals[64];
	struct store_sql q;
	PGresult *r;
	int i, row, rows;

	store_build_query(base, f, true, &q);
	r = PQexecParams(s->conn, q.sql, q.nparams, NULL, q.params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		set_err(s, "query", r, err, errlen);
		PQclear(r);
		return -EIO;
	}
	rows = PQntuples(r);
	for (row = 0; row < rows; row++) {
		for (i = 0; i < store_ncols; i++)
			vals[i] = PQgetisnull(r, row, i) ? NULL : PQgetvalue(r, row, i);
		if (cb(ctx, vals))
			break;
	}
	PQclear(r);
	return 0;
}

/* One lookup by the key's leading columns; bytea in binary. */
static int pg_get_cells(struct store *base, const char *agent_id, uint64_t run_id, uint64_t seq,
			uint8_t **blob, size_t *len, char *err, size_t errlen)
{
	struct store_pg *s = (struct store_pg *)base;
	char run[24], sq[24];
	const char *params[3] = { agent_id, run, sq };
	PGresult *r;
	int rc = 0;

	*blob = NULL;
	*len = 0;
	snprintf(run, sizeof(run), "%" PRId64, (int64_t)run_id);
	snprintf(sq, sizeof(sq), "%" PRId64, (int64_t)seq);
	r = PQexecParams(
		s->conn,
		"SELECT cells FROM verdicts WHERE agent_id = $1 AND run_id = $2 AND seq = $3"
		" LIMIT 1",
		3, NULL, params, NULL, NULL, 1);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		set_err(s, "read a picture", r, err, errlen);
		rc = -EIO;
	} else if (PQntuples(r) == 0) {
		rc = -ENOENT;
	} else if (!PQgetisnull(r, 0, 0)) {
		int n = PQgetlength(r, 0, 0);

		*blob = malloc(n > 0 ? (size_t)n : 1);
		if (!*blob) {
			snprintf(err, errlen, "postgresql: out of memory");
			rc = -ENOMEM;
		} else {
			memcpy(*blob, PQgetvalue(r, 0, 0), (size_t)n);
			*len = (size_t)n;
		}
	}
	PQclear(r);
	return rc;
}

static void pg_close(struct store *base)
{
	struct store_pg *s = (struct store_pg *)base;

	if (s->conn) {
		if (s->base.in_txn)
			pg_rollback(s);
		PQfinish(s->conn);
	}
	sbuf_free(&s->batches);
	sbuf_free(&s->rows);
	sbuf_free(&s->counters);
	sbuf_free(&s->one_b);
	sbuf_free(&s->prefix);
	sbuf_free(&s->one_c);
	free(s->spans);
	free(s->days);
	free(s->made);
	free(s->cells);
	free(s);
}

static const struct store_ops pg_ops = {
	.kind = "postgresql",
	.put_batch = pg_put_batch,
	.commit = pg_commit,
	.query = pg_query,
	.get_cells = pg_get_cells,
	.close = pg_close,
};

/* verdict_counts, when the store has none (new, or from before it): made
 * (partitioned if verdicts is, with a partition per day verdicts has) and
 * filled from the stored verdicts, in one transaction under the schema's
 * lock, so of collectors starting together one does it and the others find
 * it done.  0, or -EIO with err. */
static const char counts_sql[] =
	"CREATE TABLE verdict_counts ("
	" per_agent SMALLINT NOT NULL, grain INTEGER NOT NULL, stage TEXT NOT NULL,"
	" t_ns BIGINT NOT NULL, class TEXT NOT NULL, reason TEXT NOT NULL,"
	" agent_id TEXT NOT NULL, host TEXT NOT NULL, n BIGINT NOT NULL,"
	" PRIMARY KEY (per_agent, grain, stage, t_ns, class, reason, agent_id, host))";

static const char counts_parts_sql[] =
	"DO $$ DECLARE r record; BEGIN"
	" FOR r IN SELECT substr(c.relname, 11) AS d,"
	"  extract(epoch FROM to_date(substr(c.relname, 11), 'YYYYMMDD'))::bigint / 86400 AS day"
	"  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
	"  WHERE i.inhparent = 'verdicts'::regclass AND c.relname ~ '^verdicts_p[0-9]{8}$' LOOP"
	"  EXECUTE format('CREATE TABLE verdict_counts_p%s PARTITION OF verdict_counts"
	"  FOR VALUES FROM (%s) TO (%s)', r.d, r.day * 86400000000000,"
	"  (r.day + 1) * 86400000000000);"
	" END LOOP; END $$";

/* The minutes from the verdicts, the longer grains from the minutes, the
 * rows over all agents from those per agent. */
static const char counts_fill_sql[] =
	"INSERT INTO verdict_counts SELECT 1, 60, stage, start_ns / 60000000000 * 60000000000,"
	" class, reason, agent_id, host, count(*) FROM verdicts GROUP BY 3, 4, 5, 6, 7, 8;"
	"INSERT INTO verdict_counts SELECT 1, g.grain, stage,"
	" t_ns / (g.grain * 1000000000) * (g.grain * 1000000000), class, reason, agent_id, host,"
	" sum(n) FROM verdict_counts CROSS JOIN (VALUES (3600::bigint), (86400)) AS g(grain)"
	" WHERE per_agent = 1 AND verdict_counts.grain = 60 GROUP BY 2, 3, 4, 5, 6, 7, 8;"
	"INSERT INTO verdict_counts SELECT 0, grain, stage, t_ns, class, reason, '',"
	" pg_backend_pid()::text, sum(n) FROM verdict_counts WHERE per_agent = 1"
	" GROUP BY 2, 3, 4, 5, 6;";

static int pg_add_counts(struct store_pg *s, char *err, size_t errlen)
{
	struct timespec t0, t1;
	PGresult *r;
	bool have, fill;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (exec_cmd(s, "BEGIN; SELECT pg_advisory_xact_lock(7301985)", err, errlen) < 0)
		return -EIO;
	r = PQexec(s->conn, "SELECT to_regclass('verdict_counts') IS NOT NULL,"
			    " EXISTS (SELECT 1 FROM verdicts)");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		set_err(s, "look for verdict_counts", r, err, errlen);
		PQclear(r);
		goto fail;
	}
	have = !strcmp(PQgetvalue(r, 0, 0), "t");
	fill = !have && !strcmp(PQgetvalue(r, 0, 1), "t");
	/* Warnings: a start that takes minutes says why. */
	if (fill)
		log_warn("postgresql: making verdict_counts from the stored verdicts (once; other"
			 " collectors wait for it)");
	PQclear(r);
	if (!have) {
		char sql[sizeof(counts_sql) + 64];

		snprintf(sql, sizeof(sql), "%s%s", counts_sql,
			 s->partitioned ? " PARTITION BY RANGE (t_ns)" : "");
		if (exec_cmd(s, sql, err, errlen) < 0 ||
		    (s->partitioned && exec_cmd(s, counts_parts_sql, err, errlen) < 0) ||
		    exec_cmd(s, counts_fill_sql, err, errlen) < 0)
			goto fail;
	}
	if (exec_cmd(s, "COMMIT", err, errlen) < 0)
		goto fail;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (fill)
		log_warn("postgresql: verdict_counts made from the stored verdicts in %.1f s",
			 (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
fail:
	pg_rollback(s);
	return -EIO;
}

/* Read-only on a store from before the reason (or cells) column: query
 * without it. */
static bool pg_has_column(struct store_pg *s, const char *name)
{
	const char *params[1] = { name };
	PGresult *r = PQexecParams(s->conn,
				   "SELECT 1 FROM information_schema.columns WHERE "
				   "table_name = 'verdicts' AND column_name = $1",
				   1, NULL, params, NULL, NULL, 0);
	bool found = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0;

	PQclear(r);
	return found;
}

static bool pg_has_reason(struct store_pg *s)
{
	return pg_has_column(s, "reason");
}

/* A table made before partitioning stays a plain table. */
static bool pg_is_partitioned(struct store_pg *s)
{
	PGresult *r = PQexec(s->conn, "SELECT relkind FROM pg_class WHERE oid = "
				      "to_regclass('verdicts')");
	bool p = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 &&
		 !strcmp(PQgetvalue(r, 0, 0), "p");

	PQclear(r);
	return p;
}

struct store *store_pg_open(const char *conninfo, const struct store_options *opt, char *err,
			    size_t errlen)
{
	struct store_pg *s = calloc(1, sizeof(*s));

	if (!s) {
		snprintf(err, errlen, "postgresql: out of memory");
		return NULL;
	}
	s->base.ops = &pg_ops;
	snprintf(s->conninfo, sizeof(s->conninfo), "%s", conninfo);
	s->conn = PQconnectdb(conninfo);
	if (PQstatus(s->conn) != CONNECTION_OK) {
		set_err(s, "connect", NULL, err, errlen);
		goto fail;
	}
	/* Quiet NOTICEs ("relation already exists, skipping") off stderr. */
	if (exec_cmd(s, "SET client_min_messages = warning", err, errlen) < 0)
		goto fail;
	if (!(opt && opt->readonly) && exec_cmd(s, schema_sql, err, errlen) < 0)
		goto fail;
	if (opt && !opt->readonly && opt->dashboard_indexes &&
	    exec_cmd(s, dashboard_sql, err, errlen) < 0)
		goto fail;
	s->partitioned = pg_is_partitioned(s);
	if (!(opt && opt->readonly) && pg_add_counts(s, err, errlen) < 0)
		goto fail;
	s->retention_days = opt ? opt->retention_days : 0;
	if (!(opt && opt->readonly) &&
	    expire(s, (uint64_t)time(NULL) * 1000000000ULL, err, errlen) < 0)
		goto fail;
	if (opt && opt->readonly)
		s->base.no_reason = !pg_has_reason(s);
	if (opt && opt->readonly)
		s->base.no_cells = !pg_has_column(s, "cells");
	/* The inserts name every column: a read-only store from before one
	 * (reason, cells) could not prepare them, and never runs them. */
	if (!(opt && opt->readonly) && prepare_all(s, err, errlen) < 0)
		goto fail;
	return &s->base;
fail:
	pg_close(&s->base);
	return NULL;
}
