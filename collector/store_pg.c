// SPDX-License-Identifier: MIT
/*
 * store_pg.c - the fleet store: PostgreSQL through libpq.
 *
 * Several collectors may share one database, so everything here is safe
 * under concurrency: the schema is created under an advisory lock, a
 * verdict's identity is the primary key and rows go in with ON CONFLICT DO
 * NOTHING (whichever collector inserts first wins; the other counts a
 * duplicate), and counters are upserted keeping the newest batch's value.
 * A batch is one statement: its verdicts travel as one JSON array expanded
 * by json_to_recordset, so a round trip costs per batch, not per verdict.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "json.h"
#include "store.h"

static const char schema_sql[] =
	"SELECT pg_advisory_lock(7301985);"
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
	" received_ns BIGINT NOT NULL,"
	" PRIMARY KEY (agent_id, run_id, seq));"
	"CREATE INDEX IF NOT EXISTS verdicts_start ON verdicts (start_ns);"
	"CREATE TABLE IF NOT EXISTS agent_counters ("
	" agent_id TEXT NOT NULL, run_id BIGINT NOT NULL, name TEXT NOT NULL,"
	" value BIGINT NOT NULL, host TEXT NOT NULL, batch_seq BIGINT NOT NULL,"
	" updated_ns BIGINT NOT NULL,"
	" PRIMARY KEY (agent_id, run_id, name));"
	"SELECT pg_advisory_unlock(7301985);";

/* $1 agent_id $2 run_id $3 host $4 agent_version $5 model $6 model_version
 * $7 received_ns $8 the verdicts as a JSON array. */
static const char insert_sql[] =
	"INSERT INTO verdicts (agent_id, run_id, seq, host, agent_version, interface, src_addr,"
	" dst_addr, src_port, dst_port, protocol, direction, flow_id, stage, start_ns, duration_ns,"
	" packets_fwd, packets_rev, bytes_fwd, bytes_rev, block_index, blocks, class, confidence,"
	" probs, model, model_version, received_ns)"
	" SELECT $1, $2, x.seq, $3, $4, x.interface, x.src, x.dst, x.sport, x.dport, x.proto,"
	" x.direction, x.flow_id, x.stage, x.start_ns, x.duration_ns, x.pf, x.pr, x.bf, x.br,"
	" x.block_index, x.blocks, x.class, x.confidence, x.probs, $5, $6, $7"
	" FROM json_to_recordset($8::json) AS x(seq bigint, interface text, src text, dst text,"
	" sport integer, dport integer, proto integer, direction text, flow_id bigint, stage text,"
	" start_ns bigint, duration_ns bigint, pf bigint, pr bigint, bf bigint, br bigint,"
	" block_index bigint, blocks bigint, class text, confidence real, probs text)"
	" ON CONFLICT DO NOTHING";

/* $1 agent_id $2 run_id $3 host $4 batch_seq $5 updated_ns $6 [{name,value}].
 * DISTINCT ON: one batch naming a counter twice must not hit a row twice. */
static const char counter_sql[] =
	"INSERT INTO agent_counters (agent_id, run_id, name, value, host, batch_seq, updated_ns)"
	" SELECT DISTINCT ON (x.name) $1, $2, x.name, x.value, $3, $4, $5"
	" FROM json_to_recordset($6::json) AS x(name text, value bigint)"
	" WHERE x.name <> ''"
	" ON CONFLICT (agent_id, run_id, name) DO UPDATE SET value = EXCLUDED.value,"
	" host = EXCLUDED.host, batch_seq = EXCLUDED.batch_seq, updated_ns = EXCLUDED.updated_ns"
	" WHERE EXCLUDED.batch_seq >= agent_counters.batch_seq";

struct store_pg {
	struct store base;
	PGconn *conn;
	struct sbuf rows;
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

static int exec_cmd(struct store_pg *s, const char *sql, char *err, size_t errlen)
{
	PGresult *r = PQexec(s->conn, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;

	if (!ok)
		set_err(s, sql, r, err, errlen);
	PQclear(r);
	return ok ? 0 : -1;
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

	r = PQprepare(s->conn, "ins", insert_sql, 8, NULL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		set_err(s, "prepare insert", r, err, errlen);
		PQclear(r);
		return -1;
	}
	PQclear(r);
	r = PQprepare(s->conn, "ctr", counter_sql, 6, NULL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		set_err(s, "prepare counters", r, err, errlen);
		PQclear(r);
		return -1;
	}
	PQclear(r);
	return 0;
}

/* A dropped connection is re-established at the next batch (the agents
 * resend whatever was not acknowledged). */
static int ensure_conn(struct store_pg *s, char *err, size_t errlen)
{
	if (PQstatus(s->conn) == CONNECTION_OK)
		return 0;
	PQreset(s->conn);
	if (PQstatus(s->conn) != CONNECTION_OK) {
		set_err(s, "reconnect", NULL, err, errlen);
		return -1;
	}
	return prepare_all(s, err, errlen);
}

static void json_i64(struct sbuf *b, const char *key, uint64_t v)
{
	sbuf_printf(b, ",\"%s\":%" PRId64, key, (int64_t)v);
}

static int pg_put_batch(struct store *base, const Flowpic__V1__Batch *b, uint64_t now_ns,
			struct store_batch_result *res, char *err, size_t errlen)
{
	struct store_pg *s = (struct store_pg *)base;
	const Flowpic__V1__Agent *a = b->agent;
	char run[24], recv[24], bseq[24];
	const char *params[8];
	struct sbuf *j = &s->rows;
	struct verdict_row r;
	uint32_t valid = 0;
	PGresult *pr;
	size_t i;

	if (!s->base.in_txn) {
		if (ensure_conn(s, err, errlen) || exec_cmd(s, "BEGIN", err, errlen))
			return -1;
		s->base.in_txn = true;
	}
	snprintf(run, sizeof(run), "%" PRId64, (int64_t)a->run_id);
	snprintf(recv, sizeof(recv), "%" PRId64, (int64_t)now_ns);
	snprintf(bseq, sizeof(bseq), "%" PRId64, (int64_t)b->sequence);
	sbuf_reset(j);
	sbuf_add(j, "[", 1);
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
		sbuf_printf(j, "%s{\"seq\":%" PRId64 ",\"interface\":", valid ? "," : "",
			    (int64_t)v->seq);
		sbuf_json_str(j, v->interface, strlen(v->interface));
		sbuf_printf(j,
			    ",\"src\":\"%s\",\"dst\":\"%s\",\"sport\":%u,\"dport\":%u,\"proto\":%u,"
			    "\"direction\":\"%s\",\"stage\":\"%s\"",
			    r.src, r.dst, k ? k->src_port : 0, k ? k->dst_port : 0,
			    k ? k->protocol : 0, r.direction, r.stage);
		json_i64(j, "flow_id", v->flow_id);
		json_i64(j, "start_ns", sp ? sp->start_unix_ns : 0);
		json_i64(j, "duration_ns", sp ? sp->duration_ns : 0);
		json_i64(j, "pf", sp ? sp->packets_fwd : 0);
		json_i64(j, "pr", sp ? sp->packets_rev : 0);
		json_i64(j, "bf", sp ? sp->bytes_fwd : 0);
		json_i64(j, "br", sp ? sp->bytes_rev : 0);
		json_i64(j, "block_index", sp ? sp->block_index : 0);
		json_i64(j, "blocks", sp ? sp->blocks : 0);
		sbuf_puts(j, ",\"class\":");
		sbuf_json_str(j, v->class_name, strlen(v->class_name));
		sbuf_printf(j, ",\"confidence\":%.9g,\"probs\":", conf);
		sbuf_json_str(j, r.probs, strlen(r.probs));
		sbuf_add(j, "}", 1);
		valid++;
	}
	sbuf_add(j, "]", 1);
	if (j->oom) {
		snprintf(err, errlen, "postgresql: out of memory building a batch of %zu verdicts",
			 b->n_verdicts);
		pg_rollback(s);
		return -1;
	}
	if (valid) {
		params[0] = a->agent_id;
		params[1] = run;
		params[2] = a->host;
		params[3] = a->version;
		params[4] = b->model ? b->model->name : "";
		params[5] = b->model ? b->model->version : "";
		params[6] = recv;
		params[7] = j->p;
		pr = PQexecPrepared(s->conn, "ins", 8, params, NULL, NULL, 0);
		if (PQresultStatus(pr) != PGRES_COMMAND_OK) {
			set_err(s, "insert verdicts", pr, err, errlen);
			PQclear(pr);
			pg_rollback(s);
			return -1;
		}
		res->stored = (uint32_t)strtoul(PQcmdTuples(pr), NULL, 10);
		res->duplicates = valid - res->stored;
		PQclear(pr);
	}
	if (b->n_counters) {
		sbuf_reset(j);
		sbuf_add(j, "[", 1);
		for (i = 0; i < b->n_counters; i++) {
			sbuf_puts(j, i ? ",{\"name\":" : "{\"name\":");
			sbuf_json_str(j, b->counters[i]->name, strlen(b->counters[i]->name));
			sbuf_printf(j, ",\"value\":%" PRId64 "}", (int64_t)b->counters[i]->value);
		}
		sbuf_add(j, "]", 1);
		params[0] = a->agent_id;
		params[1] = run;
		params[2] = a->host;
		params[3] = bseq;
		params[4] = recv;
		params[5] = j->p;
		pr = PQexecPrepared(s->conn, "ctr", 6, params, NULL, NULL, 0);
		if (j->oom || PQresultStatus(pr) != PGRES_COMMAND_OK) {
			set_err(s, "upsert counters", pr, err, errlen);
			PQclear(pr);
			pg_rollback(s);
			return -1;
		}
		res->counters = (uint32_t)strtoul(PQcmdTuples(pr), NULL, 10);
		PQclear(pr);
	}
	return 0;
}

static int pg_commit(struct store *base, char *err, size_t errlen)
{
	struct store_pg *s = (struct store_pg *)base;

	if (exec_cmd(s, "COMMIT", err, errlen)) {
		pg_rollback(s);
		return -1;
	}
	s->base.in_txn = false;
	return 0;
}

static int pg_query(struct store *base, const struct store_filter *f, store_row_cb cb, void *ctx,
		    char *err, size_t errlen)
{
	struct store_pg *s = (struct store_pg *)base;
	const char *vals[64];
	struct store_sql q;
	PGresult *r;
	int i, row, rows;

	store_build_query(f, true, &q);
	r = PQexecParams(s->conn, q.sql, q.nparams, NULL, q.params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		set_err(s, "query", r, err, errlen);
		PQclear(r);
		return -1;
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

static void pg_close(struct store *base)
{
	struct store_pg *s = (struct store_pg *)base;

	if (s->conn) {
		if (s->base.in_txn)
			pg_rollback(s);
		PQfinish(s->conn);
	}
	sbuf_free(&s->rows);
	free(s);
}

static const struct store_ops pg_ops = {
	.kind = "postgresql",
	.put_batch = pg_put_batch,
	.commit = pg_commit,
	.query = pg_query,
	.close = pg_close,
};

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
	if (exec_cmd(s, "SET client_min_messages = warning", err, errlen))
		goto fail;
	if (!(opt && opt->readonly) && exec_cmd(s, schema_sql, err, errlen))
		goto fail;
	if (prepare_all(s, err, errlen))
		goto fail;
	return &s->base;
fail:
	pg_close(&s->base);
	return NULL;
}
