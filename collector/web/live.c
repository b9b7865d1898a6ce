// SPDX-License-Identifier: MIT
/*
 * live.c - the live feed: a tap on the store's operations (the store
 * thread's: collector/store_thread.c), the ring between the threads, and
 * the SSE clients (the web thread); see live.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "collector/query.h"
#include "core/log.h"
#include "live.h"
#include "web_int.h"

/* The names of store_cols, in order, that render() fills: checked at start
 * so a column added to the store cannot be silently left out. */
static const char *const cols[] = {
	"agent_id",
	"run_id",
	"seq",
	"host",
	"interface",
	"src",
	"dst",
	"sport",
	"dport",
	"proto",
	"direction",
	"flow_id",
	"stage",
	"start_ns",
	"duration_ns",
	"packets_fwd",
	"packets_rev",
	"payload_bytes_fwd",
	"payload_bytes_rev",
	"block_index",
	"blocks",
	"class",
	"reason",
	"confidence",
	"probs",
	"model",
	"model_version",
	"received_ns",
};
#define NCOLS (sizeof(cols) / sizeof(cols[0]))

struct staged {
	size_t idx; /* the batch's place in the transaction */
	char *line;
};

struct live {
	/* The tap: the store's own operations, and ours in their place. */
	struct store_ops ops;
	const struct store_ops *orig;
	struct store *store;
	/* Store thread only: the open transaction's rendered verdicts. */
	struct staged *stg;
	size_t nstg, capstg;
	struct sbuf buf;
	/* Both threads. */
	atomic_int clients; /* SSE clients: render nothing without one */
	pthread_mutex_t mu;
	char *ring[LIVE_RING_MAX]; /* ring[(head + i) % MAX], i < count */
	size_t head, count;
	uint64_t dropped; /* since the web thread last took the ring */
	int efd;
	struct web_stats *st;
};

static struct live *tap_of(const struct store *s)
{
	return (struct live *)((char *)s->ops - offsetof(struct live, ops));
}

static void bump(struct live *l, uint64_t *counter, uint64_t n)
{
	(void)l;
	__atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

/* One verdict as `query` prints it: the values as the store gives them
 * back (confidence rounded to 6 decimals, as both stores keep it). */
static char *render(struct live *l, const Flowpic__V1__Batch *b, const Flowpic__V1__Verdict *v,
		    uint64_t now_ns)
{
	const Flowpic__V1__Agent *a = b->agent;
	const Flowpic__V1__FlowKey *k = v->flow;
	const Flowpic__V1__Span *sp = v->span;
	char num[NCOLS][32];
	const char *vals[NCOLS];
	struct verdict_row r;
	size_t i;

#define S(i, s) (vals[i] = (s) ? (s) : "")
#define N(i, fmt, x) (snprintf(num[i], sizeof(num[i]), fmt, x), vals[i] = num[i])
	verdict_row_fill(&r, b, v);
	S(0, a->agent_id);
	N(1, "%" PRIu64, (uint64_t)a->run_id);
	N(2, "%" PRIu64, (uint64_t)v->seq);
	S(3, a->host);
	S(4, v->interface);
	S(5, r.src);
	S(6, r.dst);
	N(7, "%u", k ? k->src_port : 0);
	N(8, "%u", k ? k->dst_port : 0);
	N(9, "%u", k ? k->protocol : 0);
	S(10, r.direction);
	N(11, "%" PRIu64, (uint64_t)v->flow_id);
	S(12, r.stage);
	N(13, "%" PRIu64, sp ? (uint64_t)sp->start_unix_ns : 0);
	N(14, "%" PRIu64, sp ? (uint64_t)sp->duration_ns : 0);
	N(15, "%" PRIu64, sp ? (uint64_t)sp->packets_fwd : 0);
	N(16, "%" PRIu64, sp ? (uint64_t)sp->packets_rev : 0);
	N(17, "%" PRIu64, sp ? (uint64_t)sp->bytes_fwd : 0);
	N(18, "%" PRIu64, sp ? (uint64_t)sp->bytes_rev : 0);
	N(19, "%" PRIu64, sp ? (uint64_t)sp->block_index : 0);
	N(20, "%" PRIu64, sp ? (uint64_t)sp->blocks : 0);
	S(21, v->class_name);
	S(22, r.reason);
	N(23, "%.15g", round((double)v->confidence * 1e6) / 1e6);
	S(24, r.probs);
	S(25, b->model ? b->model->name : "");
	S(26, b->model ? b->model->version : "");
	N(27, "%" PRIu64, now_ns);
#undef S
#undef N
	for (i = 0; i < NCOLS; i++)
		if (!vals[i])
			vals[i] = "";
	sbuf_reset(&l->buf);
	query_json_row(&l->buf, vals, NULL);
	return l->buf.oom ? NULL : strdup(l->buf.p);
}

static void stage_drop(struct live *l)
{
	size_t i;

	for (i = 0; i < l->nstg; i++)
		free(l->stg[i].line);
	l->nstg = 0;
}

static void stage_batch(struct live *l, const Flowpic__V1__Batch *b, uint64_t now_ns, size_t idx)
{
	size_t i;

	for (i = 0; i < b->n_verdicts; i++) {
		char *line;

		if (b->verdicts[i]->seq == 0)
			continue; /* refused by the store */
		if (l->nstg == l->capstg) {
			size_t cap = l->capstg ? 2 * l->capstg : 1024;
			struct staged *n = realloc(l->stg, cap * sizeof(*n));

			if (!n) {
				bump(l, &l->st->web_live_dropped, b->n_verdicts - i);
				return;
			}
			l->stg = n;
			l->capstg = cap;
		}
		line = render(l, b, b->verdicts[i], now_ns);
		if (!line) {
			bump(l, &l->st->web_live_dropped, 1);
			continue;
		}
		l->stg[l->nstg++] = (struct staged){ idx, line };
	}
}

static int tap_put_batch(struct store *s, Flowpic__V1__Batch *b, uint64_t now_ns, size_t idx,
			 struct store_batch_result *res, char *err, size_t errlen)
{
	struct live *l = tap_of(s);
	int rc;

	if (atomic_load_explicit(&l->clients, memory_order_relaxed) > 0 && b->agent)
		stage_batch(l, b, now_ns, idx);
	rc = l->orig->put_batch(s, b, now_ns, idx, res, err, errlen); /* takes b */
	if (rc < 0)
		stage_drop(l); /* the transaction is dropped */
	return rc;
}

/* The transaction committed: the verdicts of the batches that stored
 * something into the ring, oldest out when full. */
static void publish(struct live *l, const struct store_batch_result *res, size_t nres)
{
	uint64_t pushed = 0, dropped = 0, one = 1;
	size_t i;

	pthread_mutex_lock(&l->mu);
	for (i = 0; i < l->nstg; i++) {
		size_t k = l->stg[i].idx;

		if (k >= nres || res[k].error || res[k].stored == 0)
			continue; /* refused, or all duplicates: nothing new to show */
		if (l->count == LIVE_RING_MAX) {
			free(l->ring[l->head]);
			l->head = (l->head + 1) % LIVE_RING_MAX;
			l->count--;
			l->dropped++;
			dropped++;
		}
		l->ring[(l->head + l->count) % LIVE_RING_MAX] = l->stg[i].line;
		l->stg[i].line = NULL;
		l->count++;
		pushed++;
	}
	pthread_mutex_unlock(&l->mu);
	if (pushed) {
		bump(l, &l->st->web_live_verdicts, pushed);
		if (write(l->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_warn("web: live feed eventfd: %s", strerror(errno));
	}
	if (dropped)
		bump(l, &l->st->web_live_dropped, dropped);
}

static int tap_commit(struct store *s, char *err, size_t errlen)
{
	struct live *l = tap_of(s);
	int rc = l->orig->commit(s, err, errlen);

	if (rc == -EBUSY)
		return rc; /* kept for a retry: so are the lines */
	if (rc == 0 && l->nstg)
		publish(l, s->res, s->nres);
	stage_drop(l);
	return rc;
}

struct live *live_new(struct store *store, struct web_stats *st, char *err, size_t errlen)
{
	struct live *l;
	size_t i;

	if ((size_t)store_ncols != NCOLS) {
		snprintf(err, errlen, "web: the live feed knows %zu columns, the store has %d",
			 NCOLS, store_ncols);
		return NULL;
	}
	for (i = 0; i < NCOLS; i++)
		if (strcmp(cols[i], store_cols[i].name)) {
			snprintf(err, errlen, "web: live feed column %zu is %s, the store's %s", i,
				 cols[i], store_cols[i].name);
			return NULL;
		}
	l = calloc(1, sizeof(*l));
	if (!l) {
		snprintf(err, errlen, "web: out of memory");
		return NULL;
	}
	l->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->efd < 0) {
		snprintf(err, errlen, "web: eventfd: %s", strerror(errno));
		free(l);
		return NULL;
	}
	pthread_mutex_init(&l->mu, NULL);
	l->st = st;
	l->store = store;
	l->orig = store->ops;
	l->ops = *store->ops;
	l->ops.put_batch = tap_put_batch;
	l->ops.commit = tap_commit;
	store->ops = &l->ops;
	return l;
}

void live_free(struct live *l)
{
	if (!l)
		return;
	l->store->ops = l->orig;
	stage_drop(l);
	free(l->stg);
	while (l->count) {
		free(l->ring[l->head]);
		l->head = (l->head + 1) % LIVE_RING_MAX;
		l->count--;
	}
	sbuf_free(&l->buf);
	pthread_mutex_destroy(&l->mu);
	close(l->efd);
	free(l);
}

int live_fd(const struct live *l)
{
	return l->efd;
}

/* ---- the web thread's side ---- */

static void sse_gap(struct client *c)
{
	sbuf_printf(&c->out, "event: gap\ndata: {\"dropped\":%" PRIu64 "}\n\n", c->sse_gap);
	c->sse_gap = 0;
}

void live_subscribe(struct web *w, struct client *c)
{
	if (w->nsse >= WEB_MAX_SSE) {
		WEB_BUMP(w, web_sse_refused);
		http_error(w, c, 503, "too many live feed clients: close another page");
		return;
	}
	w->nsse++;
	atomic_store(&w->live->clients, w->nsse);
	__atomic_store_n(&w->st.web_sse_clients, (uint64_t)w->nsse, __ATOMIC_RELAXED);
	/* No length: the stream ends when either side closes. */
	c->keep_alive = false;
	c->state = CL_SSE;
	if (http_head(w, c, 200, "text/event-stream; charset=utf-8", SIZE_MAX, NULL) < 0) {
		client_close(w, c); /* unsubscribes */
		return;
	}
	sbuf_puts(&c->out, "retry: 2000\n\n");
	c->sse_gap = 0;
	c->ping_ms = web_now_ms() + WEB_SSE_PING_MS;
	client_send(w, c);
}

void live_unsubscribe(struct web *w, struct client *c)
{
	(void)c;
	if (w->nsse > 0)
		w->nsse--;
	atomic_store(&w->live->clients, w->nsse);
	__atomic_store_n(&w->st.web_sse_clients, (uint64_t)w->nsse, __ATOMIC_RELAXED);
}

void live_fanout(struct web *w)
{
	struct live *l = w->live;
	char **lines = NULL;
	uint64_t v, dropped;
	size_t n, i, k;

	if (read(l->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	/* Take the lines out under the lock; write them out after it. */
	pthread_mutex_lock(&l->mu);
	n = l->count;
	dropped = l->dropped;
	lines = n ? malloc(n * sizeof(*lines)) : NULL;
	if (lines || !n) {
		for (i = 0; i < n; i++)
			lines[i] = l->ring[(l->head + i) % LIVE_RING_MAX];
		l->head = l->count = 0;
		l->dropped = 0;
	}
	pthread_mutex_unlock(&l->mu);
	if (n && !lines)
		return; /* out of memory: left in the ring for the next wake-up */
	for (k = 0; k < WEB_MAX_CLIENTS; k++) {
		struct client *c = &w->c[k];

		if (c->state != CL_SSE)
			continue;
		c->sse_gap += dropped;
		for (i = 0; i < n; i++) {
			if (c->out.len - c->out_off > WEB_SSE_OUT_MAX) {
				/* Not reading: what it misses is counted and told. */
				c->sse_gap++;
				WEB_BUMP(w, web_live_dropped);
				continue;
			}
			if (c->sse_gap)
				sse_gap(c);
			sbuf_puts(&c->out, "event: verdict\ndata: ");
			sbuf_puts(&c->out, lines[i]);
			sbuf_puts(&c->out, "\n\n");
		}
		if (c->sse_gap && c->out.len - c->out_off <= WEB_SSE_OUT_MAX)
			sse_gap(c);
		client_send(w, c);
	}
	for (i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
}

bool live_drained(struct client *c)
{
	/* Lines it missed while it did not read: told once it reads again. */
	if (!c->sse_gap || c->out.len - c->out_off > WEB_SSE_OUT_MAX / 2)
		return false;
	sse_gap(c);
	return true;
}

void live_ping(struct web *w, uint64_t now_ms)
{
	size_t k;

	for (k = 0; k < WEB_MAX_CLIENTS; k++) {
		struct client *c = &w->c[k];

		if (c->state != CL_SSE || now_ms < c->ping_ms)
			continue;
		c->ping_ms = now_ms + WEB_SSE_PING_MS;
		if (c->out.len - c->out_off <= WEB_SSE_OUT_MAX) {
			sbuf_puts(&c->out, ": ping\n\n");
			client_send(w, c);
		}
	}
}
