// SPDX-License-Identifier: MIT
/*
 * api.c - the dashboard's JSON API (docs/dashboard.md, "API"): parameters
 * checked (a bad one is 400 naming it), the store asked (queries.h), the
 * answer written with every string JSON-escaped.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "collector/json.h"
#include "collector/query.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/number.h"
#include "queries.h"
#include "web_int.h"

#define PARAM_MAX 1024
#define OVERVIEW_BUCKETS_MAX 500
#define CLASSES_MAX 64
#define PER_AGENT_MAX 1000
#define STALE_NS (120ull * 1000000000ull)  /* health "stale": not seen for 2 min */
#define LOSING_NS (600ull * 1000000000ull) /* "losing": a loss counter grew within 10 min */

static const char *const std_classes[] = { "voip", "video",    "file_transfer",
					   "chat", "browsing", "unknown" };
#define NSTD (sizeof(std_classes) / sizeof(std_classes[0]))
static const char *const reasons[] = { "sparse",	 "other",     "disagree",
				       "low_confidence", "untracked", "unspecified" };
#define NREASONS (sizeof(reasons) / sizeof(reasons[0]))

/* A store failure: logged with its reason, the client told little. */
static void store_failed(struct web *w, struct client *c, const char *err)
{
	log_error("%s", err);
	http_error(w, c, 500, "the store could not be read (see the collector's log)");
}

static void bad(struct web *w, struct client *c, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* 400 with one line naming the parameter. */
static void bad(struct web *w, struct client *c, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	http_error(w, c, 400, msg);
}

/* An optional parameter: 1 given (in out), 0 absent, -1 answered 400. */
static int param(struct web *w, struct client *c, const char *key, char *out, size_t len)
{
	int n = http_param(c, key, out, len);

	if (n == -ENOENT)
		return 0;
	if (n < 0) {
		bad(w, c, "parameter %s: bad escape or too long", key);
		return -1;
	}
	return 1;
}

static int param_u64(struct web *w, struct client *c, const char *key, uint64_t min, uint64_t max,
		     uint64_t *out)
{
	char v[32];
	int rc = param(w, c, key, v, sizeof(v));

	if (rc <= 0)
		return rc;
	if (number_parse_u64(v, min, max, out)) {
		char msg[200];

		snprintf(msg, sizeof(msg),
			 "parameter %s: give a whole number from %" PRIu64 " to %" PRIu64, key, min,
			 max);
		http_error(w, c, 400, msg);
		return -1;
	}
	return 1;
}

static int param_prob(struct web *w, struct client *c, const char *key, double *out)
{
	char v[32], *end;
	int rc = param(w, c, key, v, sizeof(v));

	if (rc <= 0)
		return rc;
	*out = strtod(v, &end);
	if (end == v || *end || !(*out >= 0 && *out <= 1)) {
		bad(w, c, "parameter %s: give a number from 0 to 1", key);
		return -1;
	}
	return 1;
}

static bool std_class(const char *s)
{
	size_t i;

	for (i = 0; i < NSTD; i++)
		if (!strcmp(s, std_classes[i]))
			return true;
	return false;
}

/* A comma list into vals (pointing into buf): 0, or -1 answered 400. */
static int comma_list(struct web *w, struct client *c, const char *key, char *buf,
		      const char **vals, int *n, bool classes)
{
	char *item, *p = buf;

	*n = 0;
	while ((item = strsep(&p, ",")) != NULL) {
		if (!*item) {
			bad(w, c, "parameter %s: an empty name in the list", key);
			return -1;
		}
		if (classes && !std_class(item)) {
			bad(w, c,
			    "parameter %s: unknown class (voip, video, file_transfer, chat, "
			    "browsing, unknown)",
			    key);
			return -1;
		}
		if (*n == STORE_FILTER_LIST_MAX) {
			bad(w, c, "parameter %s: at most 16 names", key);
			return -1;
		}
		vals[(*n)++] = item;
	}
	return 0;
}

/* ---- /api/flows ---- */

struct flows_req {
	struct flows_filter ff;
	char cls[PARAM_MAX], agents[PARAM_MAX], host[PARAM_MAX], addr[64], reason[32];
	struct sbuf b;
	uint64_t rows, page; /* rows written; the page's size */
	bool more;	     /* a row beyond the page came */
};

static int flows_row(void *ctx, const char *const *vals, int nc)
{
	struct flows_req *r = ctx;

	if (nc < store_ncols)
		return 1;
	if (r->rows == r->page) {
		r->more = true; /* the one beyond the page: only says there is more */
		return 1;
	}
	if (r->rows)
		sbuf_add(&r->b, ",", 1);
	query_json_row(&r->b, vals, NULL);
	r->rows++;
	return 0;
}

static int parse_flows(struct web *w, struct client *c, struct flows_req *r)
{
	struct store_filter *f = &r->ff.f;
	char v[64];
	uint64_t n;
	double d;
	int rc;
	size_t i;

	f->port = f->sport = f->dport = f->proto = -1;
	if ((rc = param(w, c, "class", r->cls, sizeof(r->cls))) < 0 ||
	    (rc && comma_list(w, c, "class", r->cls, f->classes, &f->n_classes, true) < 0))
		return -1;
	if ((rc = param(w, c, "agent", r->agents, sizeof(r->agents))) < 0 ||
	    (rc && comma_list(w, c, "agent", r->agents, f->agent_ids, &f->n_agent_ids, false) < 0))
		return -1;
	if ((rc = param(w, c, "host", r->host, sizeof(r->host))) < 0)
		return -1;
	if (rc)
		f->host = r->host;
	if ((rc = param(w, c, "reason", r->reason, sizeof(r->reason))) < 0)
		return -1;
	if (rc)
		f->reason = r->reason;
	if ((rc = param(w, c, "addr", v, sizeof(v))) < 0)
		return -1;
	if (rc) {
		unsigned char a[16];

		/* The canonical text form, as the store keeps addresses. */
		if (inet_pton(AF_INET, v, a) == 1)
			inet_ntop(AF_INET, a, r->addr, sizeof(r->addr));
		else if (inet_pton(AF_INET6, v, a) == 1)
			inet_ntop(AF_INET6, a, r->addr, sizeof(r->addr));
		else {
			bad(w, c, "parameter %s: not an IPv4 or IPv6 address", "addr");
			return -1;
		}
		f->addr = r->addr;
	}
	if ((rc = param_u64(w, c, "port", 0, 65535, &n)) < 0)
		return -1;
	if (rc)
		f->port = (int)n;
	if ((rc = param(w, c, "proto", v, sizeof(v))) < 0)
		return -1;
	if (rc) {
		if (!strcasecmp(v, "tcp"))
			f->proto = 6;
		else if (!strcasecmp(v, "udp"))
			f->proto = 17;
		else if (!number_parse_u64(v, 0, 255, &n))
			f->proto = (int)n;
		else {
			bad(w, c, "parameter %s: give tcp, udp or a number", "proto");
			return -1;
		}
	}
	if ((rc = param_u64(w, c, "since", 0, INT64_MAX, &f->since_ns)) < 0)
		return -1;
	f->has_since = rc;
	if ((rc = param_u64(w, c, "until", 0, INT64_MAX, &f->until_ns)) < 0)
		return -1;
	f->has_until = rc;
	if ((rc = param_prob(w, c, "min_conf", &d)) < 0)
		return -1;
	r->ff.has_min_conf = rc;
	r->ff.min_conf = d;
	if ((rc = param_prob(w, c, "max_conf", &d)) < 0)
		return -1;
	r->ff.has_max_conf = rc;
	r->ff.max_conf = d;
	/* Stage: flow verdicts by default. */
	if ((rc = param(w, c, "stage", v, sizeof(v))) < 0)
		return -1;
	if (!rc || !strcmp(v, "final")) {
		r->ff.stages[0] = "final";
		r->ff.nstages = 1;
	} else if (!strcmp(v, "block")) {
		r->ff.stages[0] = "early";
		r->ff.stages[1] = "block";
		r->ff.nstages = 2;
	} else if (strcmp(v, "all")) {
		bad(w, c, "parameter %s: give all, final or block", "stage");
		return -1;
	}
	if ((rc = param(w, c, "sort", v, sizeof(v))) < 0)
		return -1;
	r->ff.sort = FLOWS_SORT_START;
	if (rc) {
		for (i = 0; i < FLOWS_SORT_COUNT && strcmp(v, flows_sort_names[i]); i++)
			;
		if (i == FLOWS_SORT_COUNT) {
			bad(w, c,
			    "parameter %s: give start_ns, received_ns, confidence, class or host",
			    "sort");
			return -1;
		}
		r->ff.sort = (int)i;
	}
	if ((rc = param(w, c, "order", v, sizeof(v))) < 0)
		return -1;
	if (rc && strcmp(v, "asc") && strcmp(v, "desc")) {
		bad(w, c, "parameter %s: give asc or desc", "order");
		return -1;
	}
	r->ff.ascending = rc && !strcmp(v, "asc");
	r->ff.limit = 50;
	if (param_u64(w, c, "limit", 1, 500, &r->ff.limit) < 0 ||
	    param_u64(w, c, "offset", 0, 100000000, &r->ff.offset) < 0)
		return -1;
	return 0;
}

void api_flows(struct web *w, struct client *c)
{
	struct flows_req *r = calloc(1, sizeof(*r));
	char err[1024];
	uint64_t limit;

	if (!r) {
		http_error(w, c, 500, "out of memory");
		return;
	}
	if (parse_flows(w, c, r) < 0)
		goto out;
	limit = r->page = r->ff.limit;
	r->ff.limit = limit + 1; /* one more: is there a next page? */
	sbuf_puts(&r->b, "{\"rows\":[");
	if (webdb_flows(w->db, w->store, &r->ff, flows_row, r, err, sizeof(err)) < 0) {
		store_failed(w, c, err);
		goto out;
	}
	sbuf_printf(&r->b, "],\"offset\":%" PRIu64 ",\"limit\":%" PRIu64 ",\"more\":%s}",
		    r->ff.offset, limit, r->more ? "true" : "false");
	http_json(w, c, &r->b);
out:
	sbuf_free(&r->b);
	free(r);
}

/* ---- /api/flow ---- */

struct flow_req {
	struct web *w;
	const char *agent_id;
	uint64_t run_id;
	struct sbuf blocks, final, extra;
	char classes[1024];
	uint64_t nblocks;
	int err;
	char errmsg[512];
};

/* The class names of a probs object {"voip":0.1,...} (names never need
 * escaping there: the store writes them so only when they do not). */
static void classes_of(const char *probs, char *out, size_t len)
{
	const char *p = probs;
	size_t n = 0;

	out[0] = '\0';
	if (!p || *p != '{')
		return;
	n += (size_t)snprintf(out, len, "[");
	while ((p = strchr(p, '"')) != NULL && n + 4 < len) {
		const char *q = strchr(p + 1, '"');

		if (!q)
			break;
		n += (size_t)snprintf(out + n, len - n, "%s\"%.*s\"", n > 1 ? "," : "",
				      (int)(q - p - 1), p + 1);
		p = strchr(q, ',');
		if (!p)
			break;
	}
	if (n + 2 < len)
		snprintf(out + n, len - n, "]");
	else
		out[0] = '\0';
}

void api_cells_json(struct sbuf *b, const struct store_cells *c)
{
	size_t i;

	sbuf_printf(b,
		    "{\"rows\":%u,\"cols\":%u,\"planes\":%u,\"window_ns\":%" PRIu64 ",\"index\":[",
		    c->rows, c->cols, c->planes, c->window_ns);
	for (i = 0; i < c->n; i++)
		sbuf_printf(b, "%s%u", i ? "," : "", c->index[i]);
	sbuf_puts(b, "],\"count\":[");
	for (i = 0; i < c->n; i++)
		sbuf_printf(b, "%s%u", i ? "," : "", c->count[i]);
	sbuf_puts(b, "]}");
}

/* ,"cells":{...} or ,"cells":null for one block verdict. */
static int cells_member(struct flow_req *r, uint64_t seq)
{
	struct store_cells cells;
	int rc = store_get_cells(r->w->store, r->agent_id, r->run_id, seq, &cells, r->errmsg,
				 sizeof(r->errmsg));

	sbuf_reset(&r->extra);
	if (rc == -ENOENT || rc == -ENODATA || rc == -EBADMSG) {
		sbuf_puts(&r->extra, ",\"cells\":null");
		return 0;
	}
	if (rc < 0)
		return rc;
	sbuf_puts(&r->extra, ",\"cells\":");
	api_cells_json(&r->extra, &cells);
	store_cells_free(&cells);
	return 0;
}

static int flow_row(void *ctx, const char *const *vals, int nc)
{
	struct flow_req *r = ctx;
	const char *stage = vals[12] ? vals[12] : "";

	if (nc < store_ncols)
		return 1;
	if (!r->classes[0])
		classes_of(vals[24], r->classes, sizeof(r->classes));
	if (!strcmp(stage, "final")) {
		sbuf_reset(&r->final);
		query_json_row(&r->final, vals, NULL);
		return 0;
	}
	r->err = cells_member(r, vals[2] ? strtoull(vals[2], NULL, 10) : 0);
	if (r->err < 0)
		return 1;
	if (r->nblocks++)
		sbuf_add(&r->blocks, ",", 1);
	query_json_row(&r->blocks, vals, r->extra.p);
	return 0;
}

void api_flow(struct web *w, struct client *c)
{
	struct flow_req r;
	char agent[PARAM_MAX], err[1024];
	uint64_t flow_id;
	struct sbuf b = { 0 };
	int rc;

	memset(&r, 0, sizeof(r));
	r.w = w;
	rc = param(w, c, "agent_id", agent, sizeof(agent));
	if (rc == 0) {
		bad(w, c, "parameter %s is required", "agent_id");
		return;
	}
	if (rc < 0)
		return;
	if ((rc = param_u64(w, c, "run_id", 0, INT64_MAX, &r.run_id)) < 0)
		return;
	if (rc == 0) {
		bad(w, c, "parameter %s is required", "run_id");
		return;
	}
	if ((rc = param_u64(w, c, "flow_id", 0, INT64_MAX, &flow_id)) < 0)
		return;
	if (rc == 0) {
		bad(w, c, "parameter %s is required", "flow_id");
		return;
	}
	r.agent_id = agent;
	rc = webdb_flow(w->db, w->store, agent, r.run_id, flow_id, flow_row, &r, err, sizeof(err));
	if (rc < 0 || r.err < 0) {
		store_failed(w, c, rc < 0 ? err : r.errmsg);
		goto out;
	}
	if (!r.nblocks && !r.final.len) {
		http_error(w, c, 404, "no such flow");
		goto out;
	}
	sbuf_puts(&b, "{\"final\":");
	sbuf_puts(&b, r.final.len ? r.final.p : "null");
	sbuf_puts(&b, ",\"blocks\":[");
	if (r.blocks.len)
		sbuf_add(&b, r.blocks.p, r.blocks.len);
	sbuf_printf(&b, "],\"classes\":%s}", r.classes[0] ? r.classes : "[]");
	http_json(w, c, &b);
out:
	sbuf_free(&b);
	sbuf_free(&r.blocks);
	sbuf_free(&r.final);
	sbuf_free(&r.extra);
}

/* ---- /api/overview ---- */

struct per_agent {
	char *agent_id, *host;
	uint64_t totals[CLASSES_MAX];
};

/* Counts are added up modulo 2^64: the store's rows subtract as well as add
 * (queries.h), and each sum ends at what counting the verdicts gives. */
struct overview {
	struct overview_filter o;
	uint64_t first; /* bucket number of buckets[0] */
	size_t nb;
	const char *classes[CLASSES_MAX];
	char *own[CLASSES_MAX]; /* the names beyond the standard ones, malloc'd */
	size_t nclasses;
	uint64_t *series; /* [bucket * CLASSES_MAX + class] */
	uint64_t totals[CLASSES_MAX];
	uint64_t unknown[NREASONS];
	struct per_agent *pa;
	size_t npa, cap;
	uint32_t *slots; /* pa index + 1 by hash of agent and host; 0: free */
	size_t nslots;	 /* a power of two, at least twice npa */
	bool oom;
};

/* Agents and hosts looked for while adding up: more than are shown, as
 * some add up to nothing in the range (a cell less its outside part). */
#define PER_AGENT_SEEN (4 * PER_AGENT_MAX)

/* The class's index (added when new; -1 beyond CLASSES_MAX). */
static int class_index(struct overview *ov, const char *name)
{
	size_t i;

	for (i = 0; i < ov->nclasses; i++)
		if (!strcmp(ov->classes[i], name))
			return (int)i;
	if (ov->nclasses == CLASSES_MAX)
		return -1;
	ov->own[ov->nclasses] = strdup(name);
	if (!ov->own[ov->nclasses]) {
		ov->oom = true;
		return -1;
	}
	ov->classes[ov->nclasses] = ov->own[ov->nclasses];
	return (int)ov->nclasses++;
}

static int series_row(void *ctx, const char *const *vals, int nc)
{
	struct overview *ov = ctx;
	uint64_t b;
	int k;

	if (nc < 3 || !vals[0] || !vals[2])
		return 0;
	b = strtoull(vals[0], NULL, 10);
	k = class_index(ov, vals[1] ? vals[1] : "");
	if (k >= 0 && b >= ov->first && b - ov->first < ov->nb)
		ov->series[(b - ov->first) * CLASSES_MAX + (size_t)k] +=
			(uint64_t)strtoll(vals[2], NULL, 10);
	return 0;
}

static size_t pa_hash(const char *agent, const char *host)
{
	uint64_t h = 14695981039346656037ull; /* FNV-1a */

	for (; *agent; agent++)
		h = (h ^ (unsigned char)*agent) * 1099511628211ull;
	h = (h ^ 0xff) * 1099511628211ull;
	for (; *host; host++)
		h = (h ^ (unsigned char)*host) * 1099511628211ull;
	return (size_t)h;
}

/* The slot of (agent, host): its entry's, or the free one it would take. */
static uint32_t *pa_slot(struct overview *ov, const char *agent, const char *host)
{
	size_t i = pa_hash(agent, host) & (ov->nslots - 1);

	for (;; i = (i + 1) & (ov->nslots - 1)) {
		uint32_t k = ov->slots[i];

		if (!k ||
		    (!strcmp(ov->pa[k - 1].agent_id, agent) && !strcmp(ov->pa[k - 1].host, host)))
			return &ov->slots[i];
	}
}

/* The entry of (agent, host), added when new; NULL past PER_AGENT_SEEN or
 * out of memory (oom set). */
static struct per_agent *pa_find(struct overview *ov, const char *agent, const char *host)
{
	struct per_agent *e;
	uint32_t *slot;
	size_t i;

	if (ov->nslots < 2 * (ov->npa + 1)) {
		size_t n = ov->nslots ? 2 * ov->nslots : 256;
		uint32_t *sl = calloc(n, sizeof(*sl));

		if (!sl) {
			ov->oom = true;
			return NULL;
		}
		free(ov->slots);
		ov->slots = sl;
		ov->nslots = n;
		for (i = 0; i < ov->npa; i++)
			*pa_slot(ov, ov->pa[i].agent_id, ov->pa[i].host) = (uint32_t)i + 1;
	}
	slot = pa_slot(ov, agent, host);
	if (*slot)
		return &ov->pa[*slot - 1];
	if (ov->npa == PER_AGENT_SEEN)
		return NULL;
	if (ov->npa == ov->cap) {
		size_t n = ov->cap ? 2 * ov->cap : 64;

		e = realloc(ov->pa, n * sizeof(*e));
		if (!e) {
			ov->oom = true;
			return NULL;
		}
		ov->pa = e;
		ov->cap = n;
	}
	e = &ov->pa[ov->npa];
	memset(e, 0, sizeof(*e));
	e->agent_id = strdup(agent);
	e->host = strdup(host);
	ov->npa++;
	if (!e->agent_id || !e->host) {
		ov->oom = true;
		return NULL;
	}
	*slot = (uint32_t)ov->npa;
	return e;
}

static int groups_row(void *ctx, const char *const *vals, int nc)
{
	struct overview *ov = ctx;
	const char *agent = vals[0] ? vals[0] : "", *host = vals[1] ? vals[1] : "";
	const char *cls = vals[2] ? vals[2] : "", *reason = vals[3] ? vals[3] : "";
	uint64_t n = nc >= 5 && vals[4] ? (uint64_t)strtoll(vals[4], NULL, 10) : 0;
	struct per_agent *e;
	size_t i;
	int k;

	if (ov->oom) /* the next statement's rows too */
		return 1;
	k = class_index(ov, cls);
	if (k < 0)
		return ov->oom;
	ov->totals[k] += n;
	if (!strcmp(cls, "unknown"))
		for (i = 0; i < NREASONS; i++)
			if (!strcmp(reason, reasons[i]))
				ov->unknown[i] += n;
	e = pa_find(ov, agent, host);
	if (e)
		e->totals[k] += n;
	return ov->oom;
}

static int pa_cmp(const void *a, const void *b)
{
	const struct per_agent *x = a, *y = b;
	int c = strcmp(x->agent_id, y->agent_id);

	return c ? c : strcmp(x->host, y->host);
}

/* The agents and hosts with verdicts in the range, by agent and host, at
 * most PER_AGENT_MAX. */
static void pa_finish(struct overview *ov)
{
	size_t i, k, n = 0;

	for (i = 0; i < ov->npa; i++) {
		for (k = 0; k < ov->nclasses && !ov->pa[i].totals[k]; k++)
			;
		if (k < ov->nclasses) {
			ov->pa[n++] = ov->pa[i];
			continue;
		}
		free(ov->pa[i].agent_id);
		free(ov->pa[i].host);
	}
	if (n > 1)
		qsort(ov->pa, n, sizeof(*ov->pa), pa_cmp);
	for (i = PER_AGENT_MAX; i < n; i++) {
		free(ov->pa[i].agent_id);
		free(ov->pa[i].host);
	}
	ov->npa = n < PER_AGENT_MAX ? n : PER_AGENT_MAX;
}

/* Bucket widths offered (seconds): a picked width is widened to the next. */
static const uint64_t widths[] = { 1,	  2,	 5,	 10,	 15,	  30,	   60,	    120,
				   300,	  600,	 900,	 1800,	 3600,	  7200,	   10800,   21600,
				   43200, 86400, 172800, 604800, 2592000, 7776000, 31536000 };

static uint64_t pick_bucket(uint64_t span_ns, uint64_t want_s)
{
	uint64_t b = want_s ? want_s : span_ns / 1000000000ull / 60; /* about 60 bars */
	size_t i;

	for (i = 0; i < sizeof(widths) / sizeof(widths[0]) && widths[i] < b; i++)
		;
	b = i < sizeof(widths) / sizeof(widths[0]) ? widths[i] : b;
	if (want_s)
		b = want_s;
	/* At most OVERVIEW_BUCKETS_MAX - 1 whole widths in the span. */
	while (span_ns / (b * 1000000000ull) >= OVERVIEW_BUCKETS_MAX - 1) {
		for (i = 0; i < sizeof(widths) / sizeof(widths[0]) && widths[i] <= b; i++)
			;
		b = i < sizeof(widths) / sizeof(widths[0]) ? widths[i] : b * 2;
	}
	return b * 1000000000ull;
}

static void overview_free(struct overview *ov)
{
	size_t i;

	for (i = 0; i < CLASSES_MAX; i++)
		free(ov->own[i]);
	for (i = 0; i < ov->npa; i++) {
		free(ov->pa[i].agent_id);
		free(ov->pa[i].host);
	}
	free(ov->pa);
	free(ov->slots);
	free(ov->series);
	free(ov);
}

static void class_counts(struct sbuf *b, const struct overview *ov, const uint64_t *n)
{
	size_t k;

	sbuf_add(b, "{", 1);
	for (k = 0; k < ov->nclasses; k++) {
		if (k)
			sbuf_add(b, ",", 1);
		sbuf_json_str(b, ov->classes[k], strlen(ov->classes[k]));
		sbuf_printf(b, ":%" PRIu64, n[k]);
	}
	sbuf_add(b, "}", 1);
}

static void overview_json(struct sbuf *b, const struct overview *ov)
{
	size_t i, k;

	sbuf_printf(b,
		    "{\"since\":%" PRIu64 ",\"until\":%" PRIu64 ",\"bucket_ns\":%" PRIu64
		    ",\"stage\":\"%s\",\"buckets\":[",
		    ov->o.since_ns, ov->o.until_ns, ov->o.bucket_ns,
		    ov->o.stage == OVERVIEW_STAGE_ALL	? "all" :
		    ov->o.stage == OVERVIEW_STAGE_FINAL ? "final" :
							  "block");
	for (i = 0; i < ov->nb; i++)
		sbuf_printf(b, "%s%" PRIu64, i ? "," : "", (ov->first + i) * ov->o.bucket_ns);
	sbuf_puts(b, "],\"classes\":[");
	for (k = 0; k < ov->nclasses; k++) {
		if (k)
			sbuf_add(b, ",", 1);
		sbuf_json_str(b, ov->classes[k], strlen(ov->classes[k]));
	}
	sbuf_puts(b, "],\"series\":{");
	for (k = 0; k < ov->nclasses; k++) {
		if (k)
			sbuf_add(b, ",", 1);
		sbuf_json_str(b, ov->classes[k], strlen(ov->classes[k]));
		sbuf_puts(b, ":[");
		for (i = 0; i < ov->nb; i++)
			sbuf_printf(b, "%s%" PRIu64, i ? "," : "", ov->series[i * CLASSES_MAX + k]);
		sbuf_add(b, "]", 1);
	}
	sbuf_puts(b, "},\"totals\":");
	class_counts(b, ov, ov->totals);
	sbuf_puts(b, ",\"unknown_reasons\":{");
	for (i = 0; i < NREASONS; i++)
		sbuf_printf(b, "%s\"%s\":%" PRIu64, i ? "," : "", reasons[i], ov->unknown[i]);
	sbuf_puts(b, "},\"per_agent\":[");
	for (i = 0; i < ov->npa; i++) {
		sbuf_puts(b, i ? ",{\"agent_id\":" : "{\"agent_id\":");
		sbuf_json_str(b, ov->pa[i].agent_id, strlen(ov->pa[i].agent_id));
		sbuf_puts(b, ",\"host\":");
		sbuf_json_str(b, ov->pa[i].host, strlen(ov->pa[i].host));
		sbuf_puts(b, ",\"totals\":");
		class_counts(b, ov, ov->pa[i].totals);
		sbuf_add(b, "}", 1);
	}
	sbuf_puts(b, "]}");
}

void api_overview(struct web *w, struct client *c)
{
	struct overview *ov = calloc(1, sizeof(*ov));
	char agent[PARAM_MAX], host[PARAM_MAX], v[32], err[1024];
	uint64_t now = clock_real_ns(), bucket_s = 0, lo = 0, hi = 0;
	struct sbuf b = { 0 };
	bool has_since;
	size_t k;
	int rc;

	if (!ov) {
		http_error(w, c, 500, "out of memory");
		return;
	}
	for (k = 0; k < NSTD; k++)
		ov->classes[k] = std_classes[k];
	ov->nclasses = NSTD;
	ov->o.until_ns = now;
	ov->o.since_ns = now > 3600000000000ull ? now - 3600000000000ull : 0;
	ov->o.stage = OVERVIEW_STAGE_FINAL;
	if ((rc = param_u64(w, c, "since", 0, INT64_MAX, &ov->o.since_ns)) < 0)
		goto out;
	has_since = rc;
	if (param_u64(w, c, "until", 1, INT64_MAX, &ov->o.until_ns) < 0 ||
	    param_u64(w, c, "bucket", 1, 31536000, &bucket_s) < 0)
		goto out;
	if ((rc = param(w, c, "stage", v, sizeof(v))) < 0)
		goto out;
	if (rc) {
		if (!strcmp(v, "all"))
			ov->o.stage = OVERVIEW_STAGE_ALL;
		else if (!strcmp(v, "block"))
			ov->o.stage = OVERVIEW_STAGE_BLOCK;
		else if (strcmp(v, "final")) {
			bad(w, c, "parameter %s: give all, final or block", "stage");
			goto out;
		}
	}
	if ((rc = param(w, c, "agent", agent, sizeof(agent))) < 0)
		goto out;
	ov->o.agent_id = rc ? agent : NULL;
	if ((rc = param(w, c, "host", host, sizeof(host))) < 0)
		goto out;
	ov->o.host = rc ? host : NULL;
	if (webdb_read_begin(w->db, err, sizeof(err)) < 0) {
		store_failed(w, c, err);
		goto out;
	}
	if (webdb_time_range(w->db, &lo, &hi, err, sizeof(err)) == 0 && hi) {
		ov->o.min_ns = lo;
		ov->o.max_ns = hi;
	}
	/* "All time" (since=0 or before the oldest verdict): from the oldest. */
	if (has_since && lo && ov->o.since_ns < lo)
		ov->o.since_ns = lo;
	if (ov->o.since_ns >= ov->o.until_ns) {
		bad(w, c, "parameter %s: must be before until", "since");
		goto out;
	}
	ov->o.bucket_ns = pick_bucket(ov->o.until_ns - ov->o.since_ns, bucket_s);
	ov->first = ov->o.since_ns / ov->o.bucket_ns;
	ov->nb = (size_t)((ov->o.until_ns - 1) / ov->o.bucket_ns - ov->first + 1);
	ov->series = calloc(ov->nb * CLASSES_MAX, sizeof(*ov->series));
	if (!ov->series) {
		http_error(w, c, 500, "out of memory");
		goto out;
	}
	if (webdb_overview_series(w->db, &ov->o, series_row, ov, err, sizeof(err)) < 0 ||
	    webdb_overview_groups(w->db, &ov->o, groups_row, ov, err, sizeof(err)) < 0) {
		store_failed(w, c, err);
		goto out;
	}
	webdb_read_end(w->db);
	if (ov->oom) {
		http_error(w, c, 500, "out of memory");
		goto out;
	}
	pa_finish(ov);
	overview_json(&b, ov);
	http_json(w, c, &b);
out:
	webdb_read_end(w->db);
	sbuf_free(&b);
	overview_free(ov);
}

/* ---- /api/agents ---- */

/* What /api/agents saw of an agent's loss counters, to tell growth. */
struct agent_seen {
	char *agent_id;
	uint64_t run_id, losses, grew_ns;
};

struct agent_row {
	char *agent_id;
	uint64_t verdicts, runs, last_ns;
	uint64_t vruns;	      /* runs with verdicts */
	uint64_t vrun;	      /* the newest of them, whose last verdict gave: */
	char *host, *version; /* NULL: no verdict */
	/* The newest run's counters */
	struct sbuf counters; /* "name":value,... */
	char *chost;	      /* their host (the last row's) */
	uint64_t run_id, losses, ncounters;
	char why[256]; /* the first loss counter with a value */
};

struct agents_req {
	struct agent_row *a;
	size_t n, last; /* last: the row found last (rows come by agent) */
	bool oom;
};

static struct agent_row *agent_find(struct agents_req *r, const char *id)
{
	size_t i;
	struct agent_row *n;

	if (r->last < r->n && !strcmp(r->a[r->last].agent_id, id))
		return &r->a[r->last];
	for (i = 0; i < r->n; i++)
		if (!strcmp(r->a[i].agent_id, id)) {
			r->last = i;
			return &r->a[i];
		}
	if (r->n == PER_AGENT_MAX)
		return NULL;
	n = realloc(r->a, (r->n + 1) * sizeof(*n));
	if (!n) {
		r->oom = true;
		return NULL;
	}
	r->a = n;
	memset(&n[r->n], 0, sizeof(n[0]));
	n[r->n].agent_id = strdup(id);
	if (!n[r->n].agent_id) {
		r->oom = true;
		return NULL;
	}
	r->last = r->n;
	return &r->a[r->n++];
}

static bool set_str(char **dst, const char *v)
{
	char *n = strdup(v ? v : "");

	if (!n)
		return false;
	free(*dst);
	*dst = n;
	return true;
}

/* A run of an agent: its verdicts are numbered 1 .. max seq; the newest
 * run's last verdict has the agent's host and version. */
static int runs_row(void *ctx, const char *const *vals, int nc)
{
	struct agents_req *r = ctx;
	struct agent_row *a = nc >= 6 && vals[0] ? agent_find(r, vals[0]) : NULL;
	uint64_t run, last;

	if (!a)
		return r->oom;
	run = vals[1] ? strtoull(vals[1], NULL, 10) : 0;
	last = vals[3] ? strtoull(vals[3], NULL, 10) : 0;
	a->verdicts += vals[2] ? strtoull(vals[2], NULL, 10) : 0;
	a->vruns++;
	if (last > a->last_ns)
		a->last_ns = last;
	if (!a->host || run >= a->vrun) {
		a->vrun = run;
		if (!set_str(&a->host, vals[4]) || !set_str(&a->version, vals[5]))
			r->oom = true;
	}
	return r->oom;
}

static int counter_agents_row(void *ctx, const char *const *vals, int nc)
{
	struct agents_req *r = ctx;
	struct agent_row *a = nc >= 3 && vals[0] ? agent_find(r, vals[0]) : NULL;
	uint64_t runs, last;

	if (a) {
		runs = vals[1] ? strtoull(vals[1], NULL, 10) : 0;
		last = vals[2] ? strtoull(vals[2], NULL, 10) : 0;
		if (runs > a->runs)
			a->runs = runs;
		if (last > a->last_ns)
			a->last_ns = last;
	}
	return r->oom;
}

/* A counter whose growth is a loss (docs/dashboard.md, "Agents"). */
static bool loss_counter(const char *name)
{
	return strstr(name, "lost") || strstr(name, "dropped") || strstr(name, "refused") ||
	       strstr(name, "_full");
}

/* A counter of an agent's newest run (by agent and name). */
static int counter_row(void *ctx, const char *const *vals, int nc)
{
	struct agents_req *r = ctx;
	struct agent_row *a = nc >= 6 && vals[0] ? agent_find(r, vals[0]) : NULL;
	const char *name;
	uint64_t v;

	if (!a)
		return r->oom;
	name = vals[2] ? vals[2] : "";
	v = vals[3] ? strtoull(vals[3], NULL, 10) : 0;
	a->run_id = vals[1] ? strtoull(vals[1], NULL, 10) : 0;
	if (vals[5] && !set_str(&a->chost, vals[5])) {
		r->oom = true;
		return 1;
	}
	if (a->ncounters++)
		sbuf_add(&a->counters, ",", 1);
	sbuf_json_str(&a->counters, name, strlen(name));
	sbuf_printf(&a->counters, ":%" PRIu64, v);
	if (loss_counter(name) && v) {
		a->losses += v;
		if (!a->why[0])
			snprintf(a->why, sizeof(a->why), "%.200s", name);
	}
	return 0;
}

/* Did the agent's losses grow lately?  Remembered between requests. */
static bool losing(struct web *w, const char *agent, uint64_t run_id, uint64_t losses, uint64_t now)
{
	struct agent_seen *s = NULL, *n;
	size_t i;

	for (i = 0; i < w->nseen; i++)
		if (!strcmp(w->seen[i].agent_id, agent))
			s = &w->seen[i];
	if (!s) {
		if (w->nseen == PER_AGENT_MAX)
			return losses > 0;
		n = realloc(w->seen, (w->nseen + 1) * sizeof(*n));
		if (!n)
			return losses > 0;
		w->seen = n;
		s = &n[w->nseen];
		s->agent_id = strdup(agent);
		if (!s->agent_id)
			return losses > 0;
		w->nseen++;
		/* First look: losses in the run so far count as growth now. */
		s->run_id = run_id;
		s->losses = losses;
		s->grew_ns = losses ? now : 0;
		return losses > 0;
	}
	if (run_id != s->run_id || losses < s->losses) {
		s->run_id = run_id;
		s->losses = 0;
	}
	if (losses > s->losses)
		s->grew_ns = now;
	s->losses = losses;
	return s->grew_ns && now - s->grew_ns < LOSING_NS;
}

void api_agents(struct web *w, struct client *c)
{
	struct agents_req r;
	struct sbuf b = { 0 };
	uint64_t now = clock_real_ns();
	char err[1024];
	size_t i;

	/* Three statements for all agents, whatever their number. */
	memset(&r, 0, sizeof(r));
	if (webdb_agent_runs_all(w->db, runs_row, &r, err, sizeof(err)) < 0 ||
	    webdb_counter_agents(w->db, counter_agents_row, &r, err, sizeof(err)) < 0 ||
	    webdb_agents_counters(w->db, counter_row, &r, err, sizeof(err)) < 0) {
		store_failed(w, c, err);
		goto out;
	}
	sbuf_puts(&b, "{\"agents\":[");
	for (i = 0; i < r.n && !r.oom; i++) {
		struct agent_row *a = &r.a[i];
		const char *health = "ok";
		/* The host of the newest verdict, else of the counters. */
		const char *host = a->host ? a->host : a->chost ? a->chost : "";
		const char *version = a->version ? a->version : "";
		char why[400] = "";

		if (a->vruns > a->runs)
			a->runs = a->vruns;
		if (a->last_ns + STALE_NS < now) {
			health = "stale";
			snprintf(why, sizeof(why), "not seen for %" PRIu64 " s",
				 (uint64_t)((now - a->last_ns) / 1000000000ull));
		} else if (losing(w, a->agent_id, a->run_id, a->losses, now)) {
			health = "losing";
			snprintf(why, sizeof(why), "%" PRIu64 " lost in its run (%s)", a->losses,
				 a->why);
		}
		sbuf_puts(&b, i ? ",{\"agent_id\":" : "{\"agent_id\":");
		sbuf_json_str(&b, a->agent_id, strlen(a->agent_id));
		sbuf_puts(&b, ",\"host\":");
		sbuf_json_str(&b, host, strlen(host));
		sbuf_puts(&b, ",\"version\":");
		sbuf_json_str(&b, version, strlen(version));
		sbuf_printf(&b,
			    ",\"last_seen_ns\":%" PRIu64 ",\"verdicts\":%" PRIu64
			    ",\"runs\":%" PRIu64 ",\"counters\":{",
			    a->last_ns, a->verdicts, a->runs);
		if (a->counters.len)
			sbuf_add(&b, a->counters.p, a->counters.len);
		sbuf_printf(&b, "},\"health\":\"%s\",\"why\":", health);
		sbuf_json_str(&b, why, strlen(why));
		sbuf_add(&b, "}", 1);
	}
	sbuf_puts(&b, "]}");
	if (r.oom)
		http_error(w, c, 500, "out of memory");
	else
		http_json(w, c, &b);
out:
	for (i = 0; i < r.n; i++) {
		free(r.a[i].agent_id);
		free(r.a[i].host);
		free(r.a[i].version);
		free(r.a[i].chost);
		sbuf_free(&r.a[i].counters);
	}
	free(r.a);
	sbuf_free(&b);
}

void api_free(struct web *w)
{
	size_t i;

	for (i = 0; i < w->nseen; i++)
		free(w->seen[i].agent_id);
	free(w->seen);
	w->seen = NULL;
	w->nseen = 0;
}
