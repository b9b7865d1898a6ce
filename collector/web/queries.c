// SPDX-License-Identifier: MIT
/*
 * queries.c - the dashboard's read-only queries on SQLite or PostgreSQL;
 * see queries.h.  SQL is written once with SQLite's numbered parameter markers
 * ("?3"), turned into PostgreSQL's ("$3") when that is the store.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "queries.h"

#define QARGS_MAX 64
#define SQL_MAX 4096

struct webdb {
	sqlite3 *lite; /* one of the two */
	PGconn *pg;
	bool counts;	  /* the store has verdict_counts (else the overview counts verdicts) */
	bool ix_overview; /* SQLite: the store has verdicts_overview */
	char name[256];	  /* for messages: the path, or "postgresql" */
};

/* Parameters, as text; SQLite binds the numbers as integers or reals. */
struct qargs {
	int n;
	const char *v[QARGS_MAX];
	char kind[QARGS_MAX]; /* 't' text, 'i' integer, 'r' real */
	char buf[QARGS_MAX][40];
};

const char *const flows_sort_names[FLOWS_SORT_COUNT] = { "start_ns", "received_ns", "confidence",
							 "class", "host" };

/* The ORDER BY of each sort, newest first / oldest first; the ties end in
 * the verdict's identity, as query's order does. */
static const char *const sort_desc[FLOWS_SORT_COUNT] = {
	"start_ns DESC, agent_id, run_id, seq DESC",
	"received_ns DESC, start_ns DESC, agent_id, run_id, seq DESC",
	"confidence DESC, start_ns DESC, agent_id, run_id, seq DESC",
	"class DESC, start_ns DESC, agent_id, run_id, seq DESC",
	"host DESC, start_ns DESC, agent_id, run_id, seq DESC",
};
static const char *const sort_asc[FLOWS_SORT_COUNT] = {
	"start_ns, agent_id, run_id, seq",
	"received_ns, start_ns, agent_id, run_id, seq",
	"confidence, start_ns, agent_id, run_id, seq",
	"class, start_ns, agent_id, run_id, seq",
	"host, start_ns, agent_id, run_id, seq",
};

static void arg_text(struct qargs *a, const char *v)
{
	a->kind[a->n] = 't';
	a->v[a->n++] = v;
}

static void arg_int(struct qargs *a, int64_t v)
{
	snprintf(a->buf[a->n], sizeof(a->buf[0]), "%" PRId64, v);
	a->kind[a->n] = 'i';
	a->v[a->n] = a->buf[a->n];
	a->n++;
}

static void arg_real(struct qargs *a, double v)
{
	snprintf(a->buf[a->n], sizeof(a->buf[0]), "%.17g", v);
	a->kind[a->n] = 'r';
	a->v[a->n] = a->buf[a->n];
	a->n++;
}

struct webdb *webdb_open(const char *url, char *err, size_t errlen)
{
	struct webdb *d = calloc(1, sizeof(*d));
	const char *conninfo = NULL;
	PGresult *r;

	if (!d) {
		snprintf(err, errlen, "web: out of memory");
		return NULL;
	}
	if (!strncmp(url, "postgresql://", 13) || !strncmp(url, "postgres://", 11))
		conninfo = url;
	else if (!strncmp(url, "pg:", 3))
		conninfo = url + 3;
	if (conninfo) {
		snprintf(d->name, sizeof(d->name), "postgresql");
		d->pg = PQconnectdb(conninfo);
		if (PQstatus(d->pg) != CONNECTION_OK) {
			snprintf(err, errlen, "web: postgresql: %s", PQerrorMessage(d->pg));
			goto fail;
		}
		/* Read-only, and no query holds the web thread for long. */
		r = PQexec(d->pg, "SET default_transaction_read_only = on;"
				  "SET statement_timeout = '20s'");
		PQclear(r);
		r = PQexec(d->pg, "SELECT to_regclass('verdict_counts') IS NOT NULL");
		d->counts = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
			    !strcmp(PQgetvalue(r, 0, 0), "t");
		PQclear(r);
		return d;
	}
	if (!strncmp(url, "sqlite:", 7))
		url += 7;
	snprintf(d->name, sizeof(d->name), "%s", url);
	if (sqlite3_open_v2(url, &d->lite, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		snprintf(err, errlen, "web: sqlite %s: %s", url,
			 d->lite ? sqlite3_errmsg(d->lite) : "out of memory");
		goto fail;
	}
	/* Readers wait for a checkpoint's lock a moment at most. */
	sqlite3_busy_timeout(d->lite, 2000);
	{
		sqlite3_stmt *st = NULL;

		d->counts = sqlite3_prepare_v2(d->lite, "SELECT 1 FROM verdict_counts LIMIT 0", -1,
					       &st, NULL) == SQLITE_OK;
		sqlite3_finalize(st);
		st = NULL;
		d->ix_overview = sqlite3_prepare_v2(d->lite,
						    "SELECT 1 FROM verdicts INDEXED BY"
						    " verdicts_overview WHERE stage = '' LIMIT 0",
						    -1, &st, NULL) == SQLITE_OK;
		sqlite3_finalize(st);
	}
	return d;
fail:
	webdb_close(d);
	return NULL;
}

void webdb_close(struct webdb *d)
{
	if (!d)
		return;
	if (d->lite)
		sqlite3_close(d->lite);
	if (d->pg)
		PQfinish(d->pg);
	free(d);
}

/* "?N" parameter markers as "$N" (no literal of ours holds a '?'). */
static void to_dollar(const char *in, char *out, size_t len)
{
	size_t n = 0;

	for (; *in && n + 1 < len; in++)
		out[n++] = *in == '?' ? '$' : *in;
	out[n] = '\0';
}

static int exec_pg(struct webdb *d, const char *sql, const struct qargs *a, webdb_row_fn cb,
		   void *ctx, char *err, size_t errlen)
{
	const char *vals[64];
	char q[SQL_MAX];
	PGresult *r;
	int row, rows, i, nc;

	to_dollar(sql, q, sizeof(q));
	if (PQstatus(d->pg) != CONNECTION_OK)
		PQreset(d->pg); /* the server restarted: once per query */
	r = PQexecParams(d->pg, q, a->n, NULL, a->v, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "web: postgresql: %s", PQerrorMessage(d->pg));
		err[strcspn(err, "\n")] = '\0';
		PQclear(r);
		return -EIO;
	}
	rows = PQntuples(r);
	nc = PQnfields(r);
	if (nc > 64)
		nc = 64;
	for (row = 0; row < rows; row++) {
		for (i = 0; i < nc; i++)
			vals[i] = PQgetisnull(r, row, i) ? NULL : PQgetvalue(r, row, i);
		if (cb(ctx, vals, nc))
			break;
	}
	PQclear(r);
	return 0;
}

static int exec_lite(struct webdb *d, const char *sql, const struct qargs *a, webdb_row_fn cb,
		     void *ctx, char *err, size_t errlen)
{
	const char *vals[64];
	sqlite3_stmt *st;
	int i, nc, rc;

	if (sqlite3_prepare_v2(d->lite, sql, -1, &st, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "web: sqlite %s: %s", d->name, sqlite3_errmsg(d->lite));
		return -EIO;
	}
	for (i = 0; i < a->n; i++) {
		if (a->kind[i] == 'i')
			sqlite3_bind_int64(st, i + 1, strtoll(a->v[i], NULL, 10));
		else if (a->kind[i] == 'r')
			sqlite3_bind_double(st, i + 1, strtod(a->v[i], NULL));
		else
			sqlite3_bind_text(st, i + 1, a->v[i], -1, SQLITE_STATIC);
	}
	nc = sqlite3_column_count(st);
	if (nc > 64)
		nc = 64;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		for (i = 0; i < nc; i++)
			vals[i] = (const char *)sqlite3_column_text(st, i);
		if (cb(ctx, vals, nc))
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		snprintf(err, errlen, "web: sqlite %s: %s", d->name, sqlite3_errmsg(d->lite));
		sqlite3_finalize(st);
		return -EIO;
	}
	sqlite3_finalize(st);
	return 0;
}

static int exec(struct webdb *d, const char *sql, const struct qargs *a, webdb_row_fn cb, void *ctx,
		char *err, size_t errlen)
{
	return d->pg ? exec_pg(d, sql, a, cb, ctx, err, errlen) :
		       exec_lite(d, sql, a, cb, ctx, err, errlen);
}

/* Append " WHERE " or " AND " and cond, with '@' standing for the next
 * parameter's marker. */
static void cond(char *sql, size_t len, bool *where, const struct qargs *a, const char *c)
{
	size_t n = strlen(sql);

	n += (size_t)snprintf(sql + n, len - n, "%s", *where ? " AND " : " WHERE ");
	*where = true;
	for (; *c && n + 8 < len; c++) {
		if (*c == '@')
			n += (size_t)snprintf(sql + n, len - n, "?%d", a->n);
		else
			sql[n++] = *c;
	}
	sql[n] = '\0';
}

/* query's SELECT and filter for f (store_build_query), without its ORDER
 * BY, and its parameters into a.  *where: a WHERE is there. */
static int query_base(const struct store *st, const struct store_filter *f, char *sql, size_t len,
		      struct qargs *a, bool *where, char *err, size_t errlen)
{
	struct store_filter g = *f;
	struct store_sql *q = malloc(sizeof(*q));
	char *order;
	int i;

	if (!q) {
		snprintf(err, errlen, "web: out of memory");
		return -ENOMEM;
	}
	g.limit = 0;
	g.ascending = false;
	store_build_query(st, &g, false, q);
	order = strstr(q->sql, " ORDER BY ");
	if (!order || q->nparams > QARGS_MAX - 8 || (size_t)(order - q->sql) >= len) {
		snprintf(err, errlen, "web: the store's query is not as expected");
		free(q);
		return -EIO;
	}
	*order = '\0';
	snprintf(sql, len, "%s", q->sql);
	*where = strstr(sql, " WHERE ") != NULL;
	a->n = 0;
	for (i = 0; i < q->nparams; i++) {
		/* The store's values are text: copied, q goes. */
		a->kind[i] = 't';
		a->v[i] = strdup(q->params[i] ? q->params[i] : "");
		if (!a->v[i]) {
			while (i-- > 0)
				free((char *)a->v[i]);
			free(q);
			snprintf(err, errlen, "web: out of memory");
			return -ENOMEM;
		}
		a->n++;
	}
	free(q);
	return 0;
}

static void base_free(struct qargs *a, int nbase)
{
	int i;

	for (i = 0; i < nbase; i++)
		free((char *)a->v[i]);
}

int webdb_flows(struct webdb *d, const struct store *st, const struct flows_filter *ff,
		webdb_row_fn cb, void *ctx, char *err, size_t errlen)
{
	struct qargs a;
	char sql[SQL_MAX];
	size_t n;
	bool where;
	int nbase, i, rc;

	rc = query_base(st, &ff->f, sql, sizeof(sql), &a, &where, err, errlen);
	if (rc < 0)
		return rc;
	nbase = a.n;
	if (ff->nstages) {
		n = strlen(sql);
		snprintf(sql + n, sizeof(sql) - n, "%s(", where ? " AND " : " WHERE ");
		where = true;
		for (i = 0; i < ff->nstages; i++) {
			arg_text(&a, ff->stages[i]);
			n = strlen(sql);
			snprintf(sql + n, sizeof(sql) - n, "%sstage = ?%d", i ? " OR " : "", a.n);
		}
		n = strlen(sql);
		snprintf(sql + n, sizeof(sql) - n, ")");
	}
	if (ff->has_min_conf) {
		arg_real(&a, ff->min_conf);
		cond(sql, sizeof(sql), &where, &a, "confidence >= @");
	}
	if (ff->has_max_conf) {
		arg_real(&a, ff->max_conf);
		cond(sql, sizeof(sql), &where, &a, "confidence <= @");
	}
	n = strlen(sql);
	arg_int(&a, (int64_t)ff->limit);
	arg_int(&a, (int64_t)ff->offset);
	/* An address matches few verdicts: sort those, rather than walk the
	 * time index newest first looking for them (PostgreSQL's choice with
	 * a LIMIT: seconds on 10 million verdicts). */
	snprintf(sql + n, sizeof(sql) - n, " ORDER BY %s%s LIMIT ?%d OFFSET ?%d",
		 ff->f.addr && ff->sort == FLOWS_SORT_START ?
			 (ff->ascending ? "start_ns + 0, " : "start_ns + 0 DESC, ") :
			 "",
		 (ff->ascending ? sort_asc : sort_desc)[ff->sort], a.n - 1, a.n);
	rc = exec(d, sql, &a, cb, ctx, err, errlen);
	base_free(&a, nbase);
	return rc;
}

int webdb_flow(struct webdb *d, const struct store *st, const char *agent_id, uint64_t run_id,
	       uint64_t flow_id, webdb_row_fn cb, void *ctx, char *err, size_t errlen)
{
	struct store_filter f;
	struct qargs a;
	char sql[SQL_MAX];
	size_t n;
	bool where;
	int nbase, rc;

	memset(&f, 0, sizeof(f));
	f.port = f.sport = f.dport = f.proto = -1;
	f.agent_ids[0] = agent_id;
	f.n_agent_ids = 1;
	rc = query_base(st, &f, sql, sizeof(sql), &a, &where, err, errlen);
	if (rc < 0)
		return rc;
	nbase = a.n;
	arg_int(&a, (int64_t)run_id);
	cond(sql, sizeof(sql), &where, &a, "run_id = @");
	arg_int(&a, (int64_t)flow_id);
	cond(sql, sizeof(sql), &where, &a, "flow_id = @");
	n = strlen(sql);
	snprintf(sql + n, sizeof(sql) - n, " ORDER BY block_index, seq LIMIT 100000");
	rc = exec(d, sql, &a, cb, ctx, err, errlen);
	base_free(&a, nbase);
	return rc;
}

/*
 * The overview counts [since, until) from verdict_counts (store.h): the
 * range is cut into whole days, then whole hours, then whole minutes, read
 * from those grains' rows, and the partial minutes at its edges, counted
 * from the verdicts themselves; so the answer is exactly what counting the
 * verdicts gives.  A partial cell at an edge is read either as its finer
 * pieces, or as the whole cell less the finer pieces of the part outside
 * the range, whichever holds less: past the newest verdict (until = now) or
 * before the oldest (all time) that part holds nothing, so a week's
 * overview reads the rows of its days and no hour (SQLite, 10 million
 * verdicts: 5x fewer rows).  The series reads only grains that divide its
 * bucket, so a cell and its outside part fall in one bucket (a bucket that
 * is not whole minutes: the verdicts alone).  A store without verdict_counts
 * is counted from the verdicts.
 */
struct piece {
	int grain; /* 0 .. STORE_COUNT_GRAINS - 1, or -1: the verdicts */
	bool minus;
	uint64_t lo, hi;
};
#define PIECES_MAX 32

struct cut {
	const struct overview_filter *o;
	struct piece p[PIECES_MAX];
	size_t n;
	bool full;
};

/* The length of [lo, hi) within the stored verdicts' span: what reading
 * it costs, roughly. */
static uint64_t held(const struct overview_filter *o, uint64_t lo, uint64_t hi)
{
	if (o->max_ns) {
		if (lo < o->min_ns)
			lo = o->min_ns;
		if (hi > o->max_ns + 1)
			hi = o->max_ns + 1;
	}
	return hi > lo ? hi - lo : 0;
}

static void add(struct cut *c, int grain, bool minus, uint64_t lo, uint64_t hi)
{
	if (lo >= hi)
		return;
	if (c->n == PIECES_MAX) {
		c->full = true;
		return;
	}
	c->p[c->n++] = (struct piece){ grain, minus, lo, hi };
}

static void split(struct cut *c, uint64_t lo, uint64_t hi, int top, bool minus);

/* [lo, hi) within the cell [clo, chi) of grain top: its finer pieces, or
 * the cell less the finer pieces of [clo, lo) and [hi, chi).  A cell costs
 * about what a piece of the next finer grain's length does. */
static void part(struct cut *c, uint64_t lo, uint64_t hi, uint64_t clo, uint64_t chi, int top,
		 bool minus)
{
	uint64_t cell = top ? store_count_grain_ns(top - 1) : 1000000000ULL;

	if (lo >= hi)
		return;
	if (held(c->o, clo, lo) + held(c->o, hi, chi) + cell < held(c->o, lo, hi)) {
		add(c, top, minus, clo, chi);
		split(c, clo, lo, top - 1, !minus);
		split(c, hi, chi, top - 1, !minus);
	} else {
		split(c, lo, hi, top - 1, minus);
	}
}

static void split(struct cut *c, uint64_t lo, uint64_t hi, int top, bool minus)
{
	uint64_t g, a, b;

	if (lo >= hi)
		return;
	if (top < 0) {
		add(c, -1, minus, lo, hi);
		return;
	}
	g = store_count_grain_ns(top);
	a = (lo + g - 1) / g * g;
	b = hi / g * g;
	if (a > b) { /* within one cell */
		part(c, lo, hi, b, a, top, minus);
		return;
	}
	part(c, lo, a, a - g, a, top, minus);
	add(c, top, minus, a, b);
	part(c, b, hi, b, b + g, top, minus);
}

static int cut(const struct overview_filter *o, int top, struct cut *c, char *err, size_t errlen)
{
	c->o = o;
	c->n = 0;
	c->full = false;
	split(c, o->since_ns, o->until_ns, top, false);
	if (c->full) {
		snprintf(err, errlen, "web: overview: the range cut into too many pieces");
		return -EIO;
	}
	return 0;
}

/* The stages of a view: every stage named even for "all", as the index led
 * by stage (verdicts_overview) and verdict_counts' key want it. */
static const char *const stage_names[] = { "early", "block", "final", "unspecified" };

static const char *stage_cond(int stage)
{
	if (stage == OVERVIEW_STAGE_FINAL)
		return "stage = 'final'";
	if (stage == OVERVIEW_STAGE_BLOCK)
		return "stage IN ('early', 'block')";
	return "stage IN ('early', 'block', 'final', 'unspecified')";
}

/* The view's stages in stage_names: [*first, *first + return). */
static int stage_range(int stage, int *first)
{
	*first = stage == OVERVIEW_STAGE_FINAL ? 2 : 0;
	return stage == OVERVIEW_STAGE_ALL ? 4 : stage == OVERVIEW_STAGE_FINAL ? 1 : 2;
}

/* Append to sql the piece's conditions but the stage, each after " AND ",
 * on verdicts (start_ns) or verdict_counts (per: its rows per agent, 1, or
 * over all agents, 0). */
static void piece_conds(const struct overview_filter *o, const struct piece *p, int per, char *sql,
			size_t len, struct qargs *a)
{
	bool where = true;

	if (p->grain >= 0) {
		arg_int(a, per);
		cond(sql, len, &where, a, "per_agent = @");
		arg_int(a, (int64_t)(store_count_grain_ns(p->grain) / 1000000000ULL));
		cond(sql, len, &where, a, "grain = @");
	}
	arg_int(a, (int64_t)p->lo);
	cond(sql, len, &where, a, p->grain >= 0 ? "t_ns >= @" : "start_ns >= @");
	arg_int(a, (int64_t)p->hi);
	cond(sql, len, &where, a, p->grain >= 0 ? "t_ns < @" : "start_ns < @");
	if (o->agent_id) {
		arg_text(a, o->agent_id);
		cond(sql, len, &where, a, "agent_id = @");
	}
	if (o->host) {
		arg_text(a, o->host);
		cond(sql, len, &where, a, "host = @");
	}
}

/*
 * One piece's statement, its rows (key, count), key: "t_ns / ?1, class"
 * (the series: ?1 the bucket) or "agent_id, host, class, reason"; the
 * count negated for a piece that is subtracted.  verdict_counts' rows come
 * as they are where rows is set (the caller adds them up), else summed.
 */
static void piece_sql(const struct webdb *d, const struct overview_filter *o, const struct piece *p,
		      bool series, bool rows, char *sql, size_t len, struct qargs *a)
{
	const char *key = series ? "t_ns / ?1, class" : "agent_id, host, class, reason";
	const char *group = series ? " GROUP BY 1, 2" : " GROUP BY 1, 2, 3, 4";
	const char *minus = p->minus ? "-" : "";
	int per = series && !o->agent_id && !o->host ? 0 : 1, first, k, ns;
	char conds[1024] = "";
	size_t n;

	if (p->grain < 0) {
		/* SQLite would rather skip-scan verdicts_agent once per agent. */
		snprintf(sql, len, "SELECT %s, %scount(*) FROM verdicts%s WHERE %s",
			 series ? "start_ns / ?1, class" : key, minus,
			 d->lite && d->ix_overview ? " INDEXED BY verdicts_overview" : "",
			 stage_cond(o->stage));
		piece_conds(o, p, per, sql, len, a);
		strncat(sql, group, len - strlen(sql) - 1);
		return;
	}
	if (d->lite) {
		/* The IN is a seek per stage in the key. */
		snprintf(sql, len, "SELECT %s, %s%s FROM verdict_counts WHERE %s", key, minus,
			 rows ? "n" : "sum(n)", stage_cond(o->stage));
		piece_conds(o, p, per, sql, len, a);
		if (!rows)
			strncat(sql, group, len - strlen(sql) - 1);
		return;
	}
	/* PostgreSQL 15 takes a stage IN (...) after the key's first columns
	 * as a filter, not a seek (a day's minutes read for a few of them, when
	 * the table has no statistics yet): one equality per stage, in a
	 * UNION ALL. */
	piece_conds(o, p, per, conds, sizeof(conds), a);
	snprintf(sql, len, "SELECT %s, %ssum(n) FROM (", key, minus);
	ns = stage_range(o->stage, &first);
	for (k = first; k < first + ns; k++) {
		n = strlen(sql);
		snprintf(sql + n, len - n,
			 "%sSELECT t_ns, class, reason, agent_id, host, n FROM verdict_counts"
			 " WHERE stage = '%s'%s",
			 k > first ? " UNION ALL " : "", stage_names[k], conds);
	}
	n = strlen(sql);
	snprintf(sql + n, len - n, ") c%s", group);
}

/* The coarsest grain whose rows each fall in one bucket: -1 for none. */
static int series_top(const struct webdb *d, uint64_t bucket_ns)
{
	int g;

	for (g = d->counts ? STORE_COUNT_GRAINS - 1 : -1; g >= 0; g--)
		if (bucket_ns % store_count_grain_ns(g) == 0)
			return g;
	return -1;
}

int webdb_overview_series(struct webdb *d, const struct overview_filter *o, webdb_row_fn cb,
			  void *ctx, char *err, size_t errlen)
{
	struct cut c;
	size_t i;
	int rc = cut(o, series_top(d, o->bucket_ns), &c, err, errlen);

	for (i = 0; i < c.n && rc == 0; i++) {
		struct qargs a = { 0 };
		char sql[SQL_MAX];

		/* Rows (bucket, class, count): a bucket's may come in several. */
		arg_int(&a, (int64_t)o->bucket_ns);
		piece_sql(d, o, &c.p[i], true, false, sql, sizeof(sql), &a);
		rc = exec(d, sql, &a, cb, ctx, err, errlen);
	}
	return rc;
}

int webdb_overview_groups(struct webdb *d, const struct overview_filter *o, webdb_row_fn cb,
			  void *ctx, char *err, size_t errlen)
{
	struct cut c;
	size_t i;
	int rc = cut(o, d->counts ? STORE_COUNT_GRAINS - 1 : -1, &c, err, errlen);

	for (i = 0; i < c.n && rc == 0; i++) {
		struct qargs a = { 0 };
		char sql[SQL_MAX];

		/* SQLite's GROUP BY sorts: the caller adds up the rows of a
		 * group faster (PostgreSQL's hash aggregate costs less than
		 * sending them). */
		piece_sql(d, o, &c.p[i], false, d->lite != NULL, sql, sizeof(sql), &a);
		rc = exec(d, sql, &a, cb, ctx, err, errlen);
	}
	return rc;
}

int webdb_read_begin(struct webdb *d, char *err, size_t errlen)
{
	PGresult *r;

	if (d->lite) {
		if (sqlite3_exec(d->lite, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
			snprintf(err, errlen, "web: sqlite %s: %s", d->name,
				 sqlite3_errmsg(d->lite));
			return -EIO;
		}
		return 0;
	}
	if (PQstatus(d->pg) != CONNECTION_OK)
		PQreset(d->pg);
	r = PQexec(d->pg, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		snprintf(err, errlen, "web: postgresql: %s", PQerrorMessage(d->pg));
		err[strcspn(err, "\n")] = '\0';
		PQclear(r);
		return -EIO;
	}
	PQclear(r);
	return 0;
}

void webdb_read_end(struct webdb *d)
{
	if (d->lite) {
		if (!sqlite3_get_autocommit(d->lite))
			sqlite3_exec(d->lite, "COMMIT", NULL, NULL, NULL);
		return;
	}
	if (PQtransactionStatus(d->pg) == PQTRANS_INTRANS)
		PQclear(PQexec(d->pg, "COMMIT"));
	else if (PQtransactionStatus(d->pg) == PQTRANS_INERROR)
		PQclear(PQexec(d->pg, "ROLLBACK"));
}

static int one_u64(void *ctx, const char *const *vals, int nc)
{
	if (nc > 0 && vals[0])
		*(uint64_t *)ctx = strtoull(vals[0], NULL, 10);
	return 1;
}

int webdb_time_range(struct webdb *d, uint64_t *min_ns, uint64_t *max_ns, char *err, size_t errlen)
{
	struct qargs a = { 0 };
	int rc;

	/* Two statements: SQLite answers each from the index, not both at once. */
	*min_ns = *max_ns = 0;
	rc = exec(d, "SELECT min(start_ns) FROM verdicts", &a, one_u64, min_ns, err, errlen);
	if (rc == 0)
		rc = exec(d, "SELECT max(start_ns) FROM verdicts", &a, one_u64, max_ns, err,
			  errlen);
	return rc;
}

/* The agents with verdicts, by a loose index scan of the key: one lookup
 * per agent, not a pass over every verdict. */
static const char agents_sql[] =
	"WITH RECURSIVE a(id) AS (SELECT min(agent_id) FROM verdicts UNION ALL"
	" SELECT (SELECT min(agent_id) FROM verdicts WHERE agent_id > a.id) FROM a"
	" WHERE a.id IS NOT NULL) SELECT id FROM a WHERE id IS NOT NULL LIMIT 1000";

/* One agent's runs by a loose scan of the key, each run's last verdict by
 * one lookup (seq counts an agent's verdicts 1, 2, ... per run). */
static const char agent_runs_sql[] =
	"WITH RECURSIVE r(run) AS (SELECT min(run_id) FROM verdicts WHERE agent_id = ?1"
	" UNION ALL SELECT (SELECT min(run_id) FROM verdicts WHERE agent_id = ?1 AND"
	" run_id > r.run) FROM r WHERE r.run IS NOT NULL)"
	" SELECT v.agent_id, v.run_id, v.seq, v.received_ns, v.host, v.agent_version"
	" FROM r JOIN verdicts v ON v.agent_id = ?1 AND v.run_id = r.run"
	" AND v.seq = (SELECT max(seq) FROM verdicts WHERE agent_id = ?1 AND run_id = r.run)"
	" WHERE r.run IS NOT NULL LIMIT 10000";

/* PostgreSQL: every agent's runs in one statement, a walk of the key's
 * (agent_id, run_id) pairs and each pair's last verdict.  A statement per
 * agent cost more to plan than to run (the daily partitions): 200 agents
 * took a second.  na numbers the agents, for the same limit. */
static const char runs_pg_sql[] =
	"WITH RECURSIVE k(agent_id, run_id, na) AS ("
	"(SELECT agent_id, run_id, 1 FROM verdicts ORDER BY agent_id, run_id LIMIT 1)"
	" UNION ALL SELECT n.agent_id, n.run_id, k.na + (n.agent_id <> k.agent_id)::int FROM k"
	" CROSS JOIN LATERAL (SELECT agent_id, run_id FROM verdicts v"
	" WHERE (v.agent_id, v.run_id) > (k.agent_id, k.run_id) ORDER BY agent_id, run_id"
	" LIMIT 1) n WHERE k.na <= 1000)"
	" SELECT k.agent_id, k.run_id, l.seq, l.received_ns, l.host, l.agent_version FROM k"
	" CROSS JOIN LATERAL (SELECT seq, received_ns, host, agent_version FROM verdicts v"
	" WHERE v.agent_id = k.agent_id AND v.run_id = k.run_id ORDER BY seq DESC LIMIT 1) l"
	" WHERE k.na <= 1000 LIMIT 1000000";

struct ids {
	char **v;
	size_t n;
	bool oom;
};

static int ids_row(void *ctx, const char *const *vals, int nc)
{
	struct ids *ids = ctx;
	char **n;

	if (nc < 1 || !vals[0])
		return 0;
	n = realloc(ids->v, (ids->n + 1) * sizeof(*n));
	if (n)
		ids->v = n;
	if (!n || !(n[ids->n] = strdup(vals[0]))) {
		ids->oom = true;
		return 1;
	}
	ids->n++;
	return 0;
}

/* Passes rows on, and remembers that the callback said stop. */
struct relay {
	webdb_row_fn cb;
	void *ctx;
	bool stop;
};

static int relay_row(void *ctx, const char *const *vals, int nc)
{
	struct relay *r = ctx;

	r->stop = r->cb(r->ctx, vals, nc) != 0;
	return r->stop;
}

int webdb_agent_runs_all(struct webdb *d, webdb_row_fn cb, void *ctx, char *err, size_t errlen)
{
	struct relay rl = { cb, ctx, false };
	struct ids ids = { 0 };
	struct qargs a = { 0 };
	size_t i;
	int rc;

	if (d->pg)
		return exec(d, runs_pg_sql, &a, cb, ctx, err, errlen);
	rc = exec(d, agents_sql, &a, ids_row, &ids, err, errlen);
	if (rc == 0 && ids.oom) {
		snprintf(err, errlen, "web: out of memory");
		rc = -ENOMEM;
	}
	for (i = 0; i < ids.n && rc == 0 && !rl.stop; i++) {
		a.n = 0;
		arg_text(&a, ids.v[i]);
		rc = exec(d, agent_runs_sql, &a, relay_row, &rl, err, errlen);
	}
	for (i = 0; i < ids.n; i++)
		free(ids.v[i]);
	free(ids.v);
	return rc;
}

int webdb_counter_agents(struct webdb *d, webdb_row_fn cb, void *ctx, char *err, size_t errlen)
{
	struct qargs a = { 0 };

	return exec(d,
		    "SELECT agent_id, count(DISTINCT run_id), max(updated_ns) FROM agent_counters"
		    " GROUP BY agent_id ORDER BY agent_id LIMIT 1000",
		    &a, cb, ctx, err, errlen);
}

int webdb_agents_counters(struct webdb *d, webdb_row_fn cb, void *ctx, char *err, size_t errlen)
{
	struct qargs a = { 0 };

	/* One statement for every agent: on PostgreSQL a statement per agent
	 * costs a round trip and a plan each. */
	return exec(d,
		    "SELECT c.agent_id, c.run_id, c.name, c.value, c.updated_ns, c.host"
		    " FROM (SELECT agent_id, (SELECT run_id FROM agent_counters i"
		    " WHERE i.agent_id = g.agent_id ORDER BY updated_ns DESC LIMIT 1) AS run_id"
		    " FROM (SELECT DISTINCT agent_id FROM agent_counters ORDER BY agent_id"
		    " LIMIT 1000) g) n JOIN agent_counters c ON c.agent_id = n.agent_id"
		    " AND c.run_id = n.run_id ORDER BY c.agent_id, c.name LIMIT 1000000",
		    &a, cb, ctx, err, errlen);
}
