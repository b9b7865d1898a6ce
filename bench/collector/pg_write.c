// SPDX-License-Identifier: MIT
/*
 * pg_write.c - how fast can a batch of verdict rows go into PostgreSQL?
 * Issue 16 asks for batched writes, "COPY or multi-row INSERT, whichever
 * measures faster"; the collector (collector/store_pg.c) sends each
 * transaction's rows as one JSON parameter expanded by json_to_recordset.
 * This puts the same rows into a copy of the verdicts table (same columns,
 * key, daily partition and indexes) four ways, one transaction per batch:
 *
 *   json     the collector's way: INSERT ... SELECT FROM json_to_recordset($1)
 *            ORDER BY key ON CONFLICT DO NOTHING (one prepared statement)
 *   values   a multi-row INSERT ... VALUES (...),(...) ON CONFLICT DO NOTHING
 *            (literals: 29 parameters a row would pass libpq's 65535 limit
 *            at 2,260 rows)
 *   copy+ins COPY into a temporary table, then INSERT ... SELECT ... ON
 *            CONFLICT DO NOTHING (COPY itself cannot skip duplicates, which
 *            the exactly-once store needs)
 *   copy     COPY straight into the table: the floor, not usable as it is
 *            (a resent verdict would fail the whole batch)
 *
 * Prints one line per method and batch size: rows per second (median of the
 * batches' own rates), the server process's CPU per row (from /proc: run it
 * on the database's machine; steadier than wall time on a shared one) and
 * the client's.  The methods take turns batch by batch.  Keys never repeat,
 * so every row is new.
 *
 *   collector_pg_write 'postgresql:///postgres?host=/tmp/pg&user=flowpic' 100 1000 5000
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "core/sbuf.h"

#define COLS \
	"agent_id, run_id, seq, host, agent_version, interface, src_addr, dst_addr, src_port," \
	" dst_port, protocol, direction, flow_id, stage, start_ns, duration_ns, packets_fwd," \
	" packets_rev, bytes_fwd, bytes_rev, block_index, blocks, class, confidence, probs," \
	" model, model_version, received_ns, reason"

static const char *const schema[] = {
	"SET client_min_messages = warning",
	"DROP TABLE IF EXISTS w_verdicts",
	("CREATE TABLE w_verdicts ("
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
	 " PRIMARY KEY (agent_id, run_id, seq, start_ns)) PARTITION BY RANGE (start_ns)"),
	("CREATE TABLE w_verdicts_day PARTITION OF w_verdicts FOR VALUES FROM (0) TO"
	 " (9000000000000000000)"),
	"CREATE INDEX ON w_verdicts (start_ns)",
	"CREATE INDEX ON w_verdicts (class, start_ns)",
	"CREATE INDEX ON w_verdicts (agent_id, start_ns)",
	"CREATE INDEX ON w_verdicts (host, start_ns)",
	"CREATE INDEX ON w_verdicts (received_ns)",
};

static const char json_sql[] =
	"INSERT INTO w_verdicts (" COLS ") SELECT agent_id, run_id, seq, host, agent_version,"
	" interface, src, dst, sport, dport, proto, direction, flow_id, stage, start_ns,"
	" duration_ns, pf, pr, bf, br, block_index, blocks, class, confidence, probs, model,"
	" model_version, received_ns, reason"
	" FROM json_to_recordset($1::json) AS v(agent_id text, run_id bigint, seq bigint,"
	" host text, agent_version text, interface text, src text, dst text, sport integer,"
	" dport integer, proto integer, direction text, flow_id bigint, stage text,"
	" start_ns bigint, duration_ns bigint, pf bigint, pr bigint, bf bigint, br bigint,"
	" block_index bigint, blocks bigint, class text, confidence real, probs text,"
	" model text, model_version text, received_ns bigint, reason text)"
	" ORDER BY agent_id, run_id, seq ON CONFLICT DO NOTHING";

enum method { M_JSON, M_VALUES, M_COPY_INSERT, M_COPY, M_N };
static const char *const method_names[] = { "json (collector)", "multi-row VALUES", "COPY + INSERT",
					    "COPY alone (floor)" };

static uint64_t next_seq = 1;

static double now_s(int clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One row's values as the agent would send them. */
struct row {
	char agent[32], src[20], dst[20];
	uint64_t seq, start, flow;
};

static void row_make(struct row *r, uint64_t seq)
{
	r->seq = seq;
	r->flow = seq % 100;
	snprintf(r->agent, sizeof(r->agent), "fleet-%05" PRIu64, (seq / 1000) % 10000);
	snprintf(r->src, sizeof(r->src), "10.0.%" PRIu64 ".1", seq % 250);
	snprintf(r->dst, sizeof(r->dst), "198.51.0.%" PRIu64, r->flow);
	r->start = 1764230400000000000ull + seq * 1000ull;
}

/* The probabilities as the store keeps them (JSON text), and the same text
 * as a JSON string value. */
#define PROBS "{\"voip\":0.05,\"video\":0.05,\"file_transfer\":0.05,\"chat\":0.05,\"browsing\":0.8}"
#define PROBS_JSON \
	"{\\\"voip\\\":0.05,\\\"video\\\":0.05,\\\"file_transfer\\\":0.05,\\\"chat\\\":0.05," \
	"\\\"browsing\\\":0.8}"

static void add_json(struct sbuf *b, const struct row *r, bool first)
{
	char t[1024];
	int n = snprintf(t, sizeof(t),
			 "%s{\"agent_id\":\"%s\",\"run_id\":1,\"seq\":%" PRIu64
			 ",\"host\":\"h\",\"agent_version\":\"v\",\"interface\":\"eth0\","
			 "\"src\":\"%s\",\"dst\":\"%s\",\"sport\":%" PRIu64 ",\"dport\":443,"
			 "\"proto\":6,\"direction\":\"outbound\",\"flow_id\":%" PRIu64
			 ",\"stage\":\"block\",\"start_ns\":%" PRIu64
			 ",\"duration_ns\":15000000000,"
			 "\"pf\":100,\"pr\":80,\"bf\":10000,\"br\":8000,\"block_index\":1,"
			 "\"blocks\":1,\"class\":\"video\",\"confidence\":0.8,\"probs\":\"%s\","
			 "\"model\":\"lenet32\",\"model_version\":\"1\",\"received_ns\":%" PRIu64
			 ",\"reason\":\"ok\"}",
			 first ? "" : ",", r->agent, r->seq, r->src, r->dst, 32768 + r->flow,
			 r->flow, r->start, PROBS_JSON, r->start);

	sbuf_add(b, t, (size_t)n);
}

static void add_values(struct sbuf *b, const struct row *r, bool first)
{
	char t[1024];
	int n = snprintf(t, sizeof(t),
			 "%s('%s',1,%" PRIu64 ",'h','v','eth0','%s','%s',%" PRIu64
			 ",443,6,'outbound',%" PRIu64 ",'block',%" PRIu64
			 ",15000000000,100,80,10000,8000,1,1,'video',0.8,'%s','lenet32','1',%" PRIu64
			 ",'ok')",
			 first ? "" : ",", r->agent, r->seq, r->src, r->dst, 32768 + r->flow,
			 r->flow, r->start, PROBS, r->start);

	sbuf_add(b, t, (size_t)n);
}

static void add_copy(struct sbuf *b, const struct row *r)
{
	char t[1024];
	int n = snprintf(
		t, sizeof(t),
		"%s\t1\t%" PRIu64 "\th\tv\teth0\t%s\t%s\t%" PRIu64 "\t443\t6\toutbound\t%" PRIu64
		"\tblock\t%" PRIu64
		"\t15000000000\t100\t80\t10000\t8000\t1\t1\tvideo\t0.8\t%s\tlenet32\t1\t%" PRIu64
		"\tok\n",
		r->agent, r->seq, r->src, r->dst, 32768 + r->flow, r->flow, r->start, PROBS,
		r->start);

	sbuf_add(b, t, (size_t)n);
}

static int exec_ok(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;

	if (!ok)
		fprintf(stderr, "pg_write: %.60s...: %s", sql, PQerrorMessage(c));
	PQclear(r);
	return ok ? 0 : -1;
}

static int copy_in(PGconn *c, const char *table, const struct sbuf *b)
{
	char sql[512];
	PGresult *r;

	snprintf(sql, sizeof(sql), "COPY %s (" COLS ") FROM STDIN", table);
	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COPY_IN) {
		fprintf(stderr, "pg_write: COPY: %s", PQerrorMessage(c));
		PQclear(r);
		return -1;
	}
	PQclear(r);
	if (PQputCopyData(c, b->p, (int)b->len) != 1 || PQputCopyEnd(c, NULL) != 1)
		return -1;
	r = PQgetResult(c);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		fprintf(stderr, "pg_write: COPY: %s", PQerrorMessage(c));
		PQclear(r);
		return -1;
	}
	PQclear(r);
	while ((r = PQgetResult(c)))
		PQclear(r);
	return 0;
}

/* One batch of n rows in one transaction, the rows built inside the timing
 * (the collector builds its JSON per batch too). */
static int one_batch(PGconn *c, enum method m, unsigned n, struct sbuf *b)
{
	struct row r;
	unsigned i;
	int rc = 0;

	sbuf_reset(b);
	if (exec_ok(c, "BEGIN") < 0)
		return -1;
	if (m == M_JSON)
		sbuf_add(b, "[", 1);
	else if (m == M_VALUES)
		sbuf_puts(b, "INSERT INTO w_verdicts (" COLS ") VALUES ");
	for (i = 0; i < n; i++) {
		row_make(&r, next_seq++);
		if (m == M_JSON)
			add_json(b, &r, i == 0);
		else if (m == M_VALUES)
			add_values(b, &r, i == 0);
		else
			add_copy(b, &r);
	}
	if (m == M_JSON) {
		const char *p[1];
		PGresult *res;

		sbuf_add(b, "]", 1);
		sbuf_add(b, "", 1);
		p[0] = b->p;
		res = PQexecPrepared(c, "ins", 1, p, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			fprintf(stderr, "pg_write: json insert: %s", PQerrorMessage(c));
			rc = -1;
		}
		PQclear(res);
	} else if (m == M_VALUES) {
		sbuf_puts(b, " ON CONFLICT DO NOTHING");
		sbuf_add(b, "", 1);
		rc = exec_ok(c, b->p);
	} else if (m == M_COPY) {
		rc = copy_in(c, "w_verdicts", b);
	} else {
		rc = exec_ok(c, "CREATE TEMP TABLE IF NOT EXISTS w_stage (LIKE w_verdicts) "
				"ON COMMIT DELETE ROWS");
		if (!rc)
			rc = copy_in(c, "w_stage", b);
		if (!rc)
			rc = exec_ok(c, "INSERT INTO w_verdicts SELECT * FROM w_stage ORDER BY "
					"agent_id, run_id, seq ON CONFLICT DO NOTHING");
	}
	if (rc)
		return -1;
	return exec_ok(c, "COMMIT");
}

/* The server process's CPU seconds so far (same machine: /proc); 0 when
 * it cannot be read. */
static double backend_cpu_s(int pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;
	int i;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	p = p ? strrchr(buf, ')') : NULL;
	if (!p)
		return 0;
	/* After ")": state is field 3; utime and stime are fields 14 and 15. */
	for (i = 3, p += 2; i < 14 && p; i++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (!p || sscanf(p, "%lu %lu", &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	unsigned sizes[8], nsizes = 0, s, k, rounds = 5;
	unsigned rows_per_method = 60000;
	struct sbuf b = { 0 };
	PGconn *c;
	PGresult *r;
	int i, backend;

	if (argc < 2) {
		fprintf(stderr, "usage: %s CONNINFO [ROWS_PER_BATCH...] (default 100 1000 5000)\n",
			argv[0]);
		return 2;
	}
	for (i = 2; i < argc && nsizes < 8; i++) {
		long v = strtol(argv[i], NULL, 10);

		if (v < 1 || v > 100000) {
			fprintf(stderr, "pg_write: '%s': give rows per batch from 1 to 100000\n",
				argv[i]);
			return 2;
		}
		sizes[nsizes++] = (unsigned)v;
	}
	if (!nsizes) {
		sizes[0] = 100;
		sizes[1] = 1000;
		sizes[2] = 5000;
		nsizes = 3;
	}
	c = PQconnectdb(argv[1]);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "pg_write: %s", PQerrorMessage(c));
		return 1;
	}
	for (k = 0; k < sizeof(schema) / sizeof(schema[0]); k++)
		if (exec_ok(c, schema[k]) < 0)
			return 1;
	backend = PQbackendPID(c);
	r = PQprepare(c, "ins", json_sql, 1, NULL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		fprintf(stderr, "pg_write: prepare: %s", PQerrorMessage(c));
		return 1;
	}
	PQclear(r);
	printf("%-20s %6s %8s %12s %16s %16s\n", "method", "rows", "batches", "rows/s",
	       "server us/row", "client us/row");
	for (s = 0; s < nsizes; s++) {
		unsigned nb = rows_per_method / sizes[s] < rounds ? rounds :
								    rows_per_method / sizes[s];
		double *rate = calloc((size_t)nb * M_N, sizeof(*rate)), server[M_N] = { 0 },
		       client[M_N] = { 0 };
		unsigned j;

		if (!rate)
			return 1;
		/* One batch each first: plans, the temp table, the caches. */
		for (k = 0; k < M_N; k++)
			if (one_batch(c, (enum method)k, sizes[s], &b) < 0)
				return 1;
		/* The methods take turns, so the machine's other load and the
		 * table's growth fall on all of them alike. */
		for (j = 0; j < nb; j++) {
			for (k = 0; k < M_N; k++) {
				double t0 = now_s(CLOCK_MONOTONIC),
				       u0 = now_s(CLOCK_PROCESS_CPUTIME_ID),
				       b0 = backend_cpu_s(backend);

				if (one_batch(c, (enum method)k, sizes[s], &b) < 0)
					return 1;
				rate[k * nb + j] = sizes[s] / (now_s(CLOCK_MONOTONIC) - t0);
				client[k] += now_s(CLOCK_PROCESS_CPUTIME_ID) - u0;
				server[k] += backend_cpu_s(backend) - b0;
			}
		}
		for (k = 0; k < M_N; k++) {
			qsort(rate + k * nb, nb, sizeof(*rate), cmp_double);
			printf("%-20s %6u %8u %12.0f %16.2f %16.2f\n", method_names[k], sizes[s],
			       nb, rate[k * nb + nb / 2], server[k] * 1e6 / ((double)nb * sizes[s]),
			       client[k] * 1e6 / ((double)nb * sizes[s]));
		}
		fflush(stdout);
		free(rate);
	}
	exec_ok(c, "DROP TABLE w_verdicts");
	sbuf_free(&b);
	PQfinish(c);
	return 0;
}
