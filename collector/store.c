// SPDX-License-Identifier: MIT
/*
 * store.c - the store front: picks the backend from the URL, flattens
 * verdicts into rows, and builds the query both backends run.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "store.h"

const struct store_col store_cols[] = {
	{ "agent_id", COL_TEXT },
	{ "run_id", COL_INT },
	{ "seq", COL_INT },
	{ "host", COL_TEXT },
	{ "interface", COL_TEXT },
	{ "src", COL_TEXT },
	{ "dst", COL_TEXT },
	{ "sport", COL_INT },
	{ "dport", COL_INT },
	{ "proto", COL_PROTO },
	{ "direction", COL_TEXT },
	{ "flow_id", COL_INT },
	{ "stage", COL_TEXT },
	{ "start_ns", COL_INT },
	{ "duration_ns", COL_INT },
	{ "packets_fwd", COL_INT },
	{ "packets_rev", COL_INT },
	{ "payload_bytes_fwd", COL_INT },
	{ "payload_bytes_rev", COL_INT },
	{ "block_index", COL_INT },
	{ "blocks", COL_INT },
	{ "class", COL_TEXT },
	{ "reason", COL_TEXT },
	{ "confidence", COL_REAL },
	{ "probs", COL_JSON },
	{ "model", COL_TEXT },
	{ "model_version", COL_TEXT },
	{ "received_ns", COL_INT },
};
const int store_ncols = sizeof(store_cols) / sizeof(store_cols[0]);

/* The SELECT list in the order of store_cols (table column names); %s is
 * the reason column, or a constant for a store from before it. */
static const char select_list[] =
	"SELECT agent_id, run_id, seq, host, interface, src_addr, dst_addr, src_port, dst_port, "
	"protocol, direction, flow_id, stage, start_ns, duration_ns, packets_fwd, packets_rev, "
	"bytes_fwd, bytes_rev, block_index, blocks, class, %s, confidence, probs, model, "
	"model_version, received_ns FROM verdicts";
#define REASON_COL "reason"
#define REASON_NONE "'unspecified'"

struct store *store_open(const char *url, const struct store_options *opt, char *err, size_t errlen)
{
	struct store_options def = { .sqlite_sync_full = true, .busy_timeout_ms = 5000 };

	if (!opt)
		opt = &def;
	if (!strncmp(url, "postgresql://", 13) || !strncmp(url, "postgres://", 11))
		return store_pg_open(url, opt, err, errlen);
	if (!strncmp(url, "pg:", 3))
		return store_pg_open(url + 3, opt, err, errlen);
	if (!strncmp(url, "sqlite:", 7))
		url += 7;
	if (!*url) {
		snprintf(err, errlen, "--db: give sqlite:PATH or postgresql://...");
		return NULL;
	}
	return store_sqlite_open(url, opt, err, errlen);
}

void store_close(struct store *s)
{
	if (s) {
		free(s->res);
		s->ops->close(s);
	}
}

const char *store_kind(const struct store *s)
{
	return s->ops->kind;
}

int store_put_batch(struct store *s, Flowpic__V1__Batch *b, uint64_t now_ns, size_t *idx, char *err,
		    size_t errlen)
{
	int rc;

	if (!s->in_txn)
		s->nres = 0;
	if (s->nres == s->capres) {
		size_t cap = s->capres ? s->capres * 2 : 256;
		struct store_batch_result *nr = realloc(s->res, cap * sizeof(*nr));

		if (!nr) {
			snprintf(err, errlen, "%s: out of memory", s->ops->kind);
			flowpic__v1__batch__free_unpacked(b, NULL);
			return -ENOMEM;
		}
		s->res = nr;
		s->capres = cap;
	}
	*idx = s->nres;
	memset(&s->res[*idx], 0, sizeof(s->res[0]));
	rc = s->ops->put_batch(s, b, now_ns, *idx, &s->res[*idx], err, errlen);
	if (rc < 0) {
		s->nres = 0;
		return rc;
	}
	s->nres++;
	return 0;
}

bool store_in_txn(const struct store *s)
{
	return s->in_txn;
}

int store_commit(struct store *s, char *err, size_t errlen)
{
	uint64_t t;
	int rc;

	if (!s->in_txn)
		return 0;
	t = clock_mono_ms();
	if (s->retry_at_ms && t < s->retry_at_ms) {
		snprintf(err, errlen, "%s: waiting to retry a locked database", s->ops->kind);
		return -EAGAIN;
	}
	rc = s->ops->commit(s, err, errlen);
	if (rc == -EBUSY) {
		/* Kept for a retry: 10 ms, doubling up to 200 ms between attempts. */
		s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : 10;
		if (s->backoff_ms > 200)
			s->backoff_ms = 200;
		s->retry_at_ms = t + s->backoff_ms;
		return rc;
	}
	s->retry_at_ms = s->backoff_ms = 0;
	if (rc < 0)
		s->nres = 0;
	return rc;
}

uint64_t store_retry_at(const struct store *s)
{
	return s->retry_at_ms;
}

const struct store_batch_result *store_results(const struct store *s, size_t *n)
{
	*n = s->nres;
	return s->res;
}

int store_query(struct store *s, const struct store_filter *f, store_row_cb cb, void *ctx,
		char *err, size_t errlen)
{
	return s->ops->query(s, f, cb, ctx, err, errlen);
}

static void addr_text(const ProtobufCBinaryData *a, char *out, size_t outlen)
{
	if (a->len == 4)
		inet_ntop(AF_INET, a->data, out, (socklen_t)outlen);
	else if (a->len == 16)
		inet_ntop(AF_INET6, a->data, out, (socklen_t)outlen);
	else
		out[0] = '\0';
}

static const char *direction_name(Flowpic__V1__Direction d)
{
	switch (d) {
	case FLOWPIC__V1__DIRECTION__DIRECTION_OUTBOUND:
		return "outbound";
	case FLOWPIC__V1__DIRECTION__DIRECTION_INBOUND:
		return "inbound";
	default:
		return "unspecified";
	}
}

static const char *reason_name(Flowpic__V1__Reason r)
{
	switch (r) {
	case FLOWPIC__V1__REASON__REASON_OK:
		return "ok";
	case FLOWPIC__V1__REASON__REASON_OTHER:
		return "other";
	case FLOWPIC__V1__REASON__REASON_SPARSE:
		return "sparse";
	case FLOWPIC__V1__REASON__REASON_DISAGREE:
		return "disagree";
	case FLOWPIC__V1__REASON__REASON_LOW_CONFIDENCE:
		return "low_confidence";
	case FLOWPIC__V1__REASON__REASON_UNTRACKED:
		return "untracked";
	default:
		return "unspecified"; /* an agent from before reasons, or a newer one */
	}
}

static const char *stage_name(Flowpic__V1__Stage s)
{
	switch (s) {
	case FLOWPIC__V1__STAGE__STAGE_EARLY:
		return "early";
	case FLOWPIC__V1__STAGE__STAGE_BLOCK:
		return "block";
	case FLOWPIC__V1__STAGE__STAGE_FINAL:
		return "final";
	default:
		return "unspecified";
	}
}

/* Does a class name need no JSON escaping (so it can go in with %s)? */
static bool plain_name(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f || *s == '"' ||
		    *s == '\\')
			return false;
	return true;
}

/* A probability with 4 decimals, trailing zeros dropped ("0.8", "0.0513",
 * "1"): printf's float formatting was a tenth of the collector's time. */
static size_t prob_text(float p, char *out, size_t cap)
{
	uint32_t v, frac;
	size_t n = 0;
	int d;

	if (p < 0 || p > 1)
		return (size_t)snprintf(out, cap, "%.4g", p);
	v = (uint32_t)(p * 10000.0f + 0.5f);
	out[n++] = (char)('0' + v / 10000);
	frac = v % 10000;
	if (frac) {
		out[n++] = '.';
		for (d = 1000; d > 0 && frac; d /= 10) {
			out[n++] = (char)('0' + frac / (uint32_t)d);
			frac %= (uint32_t)d;
		}
	}
	return n;
}

void verdict_row_fill(struct verdict_row *r, const Flowpic__V1__Batch *b,
		      const Flowpic__V1__Verdict *v)
{
	size_t i, n = 0, cap = sizeof(r->probs);
	bool named;

	r->src[0] = r->dst[0] = '\0';
	if (v->flow) {
		addr_text(&v->flow->src_addr, r->src, sizeof(r->src));
		addr_text(&v->flow->dst_addr, r->dst, sizeof(r->dst));
	}
	r->direction = direction_name(v->direction);
	r->stage = stage_name(v->stage);
	r->reason = reason_name(v->reason);
	/* Probabilities keyed by class name when the model names them all. */
	named = b->model && b->model->n_classes == v->n_probs;
	for (i = 0; named && i < v->n_probs; i++)
		named = plain_name(b->model->classes[i]) && strlen(b->model->classes[i]) < 40;
	r->probs[n++] = named ? '{' : '[';
	for (i = 0; i < v->n_probs && n + 64 < cap; i++) {
		float p = v->probs[i];

		if (p != p || p > 1e30f || p < -1e30f)
			p = 0; /* NaN/inf are not JSON */
		if (i)
			r->probs[n++] = ',';
		if (named) {
			size_t l = strlen(b->model->classes[i]);

			r->probs[n++] = '"';
			memcpy(r->probs + n, b->model->classes[i], l);
			n += l;
			r->probs[n++] = '"';
			r->probs[n++] = ':';
		}
		n += prob_text(p, r->probs + n, cap - n);
	}
	r->probs[n++] = named ? '}' : ']';
	r->probs[n] = '\0';
}

static void add_param(struct store_sql *q, bool dollar, const char *cond, const char *val)
{
	size_t n = strlen(q->sql);
	char ph[8];

	/* Numbered ("?1" in SQLite, "$1" in PostgreSQL): one value may appear twice. */
	snprintf(ph, sizeof(ph), "%c%d", dollar ? '$' : '?', q->nparams + 1);
	n += (size_t)snprintf(q->sql + n, sizeof(q->sql) - n, "%s",
			      q->nparams ? " AND " : " WHERE ");
	/* Each '@' in cond stands for the placeholder (the same parameter). */
	for (; *cond && n + sizeof(ph) < sizeof(q->sql); cond++) {
		if (*cond == '@')
			n += (size_t)snprintf(q->sql + n, sizeof(q->sql) - n, "%s", ph);
		else
			q->sql[n++] = *cond;
	}
	q->sql[n] = '\0';
	q->params[q->nparams++] = val;
}

/* "(col = ?1 OR col = ?2 ...)": any of the values (none: no condition). */
static void add_any(struct store_sql *q, bool dollar, const char *col, const char *const *vals,
		    int n)
{
	size_t len;
	int i;

	if (n <= 0)
		return;
	len = strlen(q->sql);
	snprintf(q->sql + len, sizeof(q->sql) - len, "%s(", q->nparams ? " AND " : " WHERE ");
	for (i = 0; i < n; i++) {
		len = strlen(q->sql);
		snprintf(q->sql + len, sizeof(q->sql) - len, "%s%s = %c%d", i ? " OR " : "", col,
			 dollar ? '$' : '?', q->nparams + 1);
		q->params[q->nparams++] = vals[i];
	}
	len = strlen(q->sql);
	snprintf(q->sql + len, sizeof(q->sql) - len, ")");
}

static void add_num(struct store_sql *q, bool dollar, const char *cond, uint64_t v)
{
	snprintf(q->pbuf[q->nparams], sizeof(q->pbuf[0]), "%" PRId64, (int64_t)v);
	add_param(q, dollar, cond, q->pbuf[q->nparams]);
}

void store_build_query(const struct store *s, const struct store_filter *f, bool dollar,
		       struct store_sql *q)
{
	const char *reason = s->no_reason ? REASON_NONE : REASON_COL;
	char cond[64];
	size_t n;

	memset(q, 0, sizeof(*q));
	snprintf(q->sql, sizeof(q->sql), select_list, reason);
	if (f->host)
		add_param(q, dollar, "host = @", f->host);
	add_any(q, dollar, "agent_id", f->agent_ids, f->n_agent_ids);
	add_any(q, dollar, "class", f->classes, f->n_classes);
	if (f->reason) {
		snprintf(cond, sizeof(cond), "%s = @", reason);
		add_param(q, dollar, cond, f->reason);
	}
	if (f->has_since)
		add_num(q, dollar, "start_ns >= @", f->since_ns);
	if (f->has_until)
		add_num(q, dollar, "start_ns < @", f->until_ns);
	if (f->has_received_since)
		add_num(q, dollar, "received_ns >= @", f->received_since_ns);
	if (f->addr)
		add_param(q, dollar, "(src_addr = @ OR dst_addr = @)", f->addr);
	if (f->src)
		add_param(q, dollar, "src_addr = @", f->src);
	if (f->dst)
		add_param(q, dollar, "dst_addr = @", f->dst);
	if (f->port >= 0)
		add_num(q, dollar, "(src_port = @ OR dst_port = @)", (uint64_t)f->port);
	if (f->sport >= 0)
		add_num(q, dollar, "src_port = @", (uint64_t)f->sport);
	if (f->dport >= 0)
		add_num(q, dollar, "dst_port = @", (uint64_t)f->dport);
	if (f->proto >= 0)
		add_num(q, dollar, "protocol = @", (uint64_t)f->proto);
	n = strlen(q->sql);
	n += (size_t)snprintf(q->sql + n, sizeof(q->sql) - n,
			      f->ascending ? " ORDER BY start_ns, agent_id, run_id, seq" :
					     " ORDER BY start_ns DESC, agent_id, run_id, seq DESC");
	if (f->limit)
		snprintf(q->sql + n, sizeof(q->sql) - n, " LIMIT %" PRIu64, f->limit);
}
