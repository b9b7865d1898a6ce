// SPDX-License-Identifier: MIT
/*
 * classify_file.c - every flow of a whole file: classifier_file(),
 * classifier_pcap_file() and classifier_csv_file(); see classify.h.
 *
 * The driver opens the source, sizes a flow table for the model and runs
 * the reading loop (pipeline.h), classifying each block and ended flow
 * through the incremental API (classifier_block(), classifier_flow_end())
 * and handing the verdicts to the caller's callbacks.  With workers = 1 the
 * classification moves to one worker thread behind a bounded queue, in the
 * same order, so the verdicts are the same.  The classifier itself
 * (classify.c) knows nothing of files or threads.
 */
#include "classify.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classify_int.h"
#include "model_picture.h"
#include "source.h"

/* ---- classifying inline ---- */

struct file_ctx {
	struct classifier *c;
	const struct classify_callbacks *cb;
	struct model_picture *pic; /* cb->picture set: its buffers */
};

static void file_block(void *ctx, const struct flow_table *ft, const struct flow *f,
		       const struct block *b)
{
	struct file_ctx *x = ctx;
	struct block_verdict v;

	if (classifier_block(x->c, ft, f, b, &v) == -EINVAL)
		return;
	if (x->cb && x->cb->block)
		x->cb->block(x->cb->ctx, x->c, f, &v);
	if (x->pic) {
		model_picture_block(x->pic, ft, b);
		x->cb->picture(x->cb->ctx, x->c, f, b, &v, x->pic);
	}
}

static void file_flow_end(void *ctx, const struct flow_table *ft, const struct flow *f,
			  enum flow_end_reason why)
{
	struct file_ctx *x = ctx;
	struct flow_verdict v;

	classifier_flow_end(x->c, ft, f, &v);
	if (x->cb && x->cb->flow)
		x->cb->flow(x->cb->ctx, x->c, f, why, &v);
}

static void file_progress(void *ctx, const struct source *s)
{
	const struct file_ctx *x = ctx;

	x->cb->progress(x->cb->ctx, s);
}

/* ---- classifying while reading: one worker thread ----
 *
 * The reading thread runs the source and the flow table; each block's
 * distinct cells and each ended flow go, copied, through a bounded queue to
 * the worker, which classifies them in order and calls the callbacks.  So
 * the results and their order are those of the inline path; only the
 * thread differs.  Memory is fixed per file: ASYNC_JOBS jobs and an arena of
 * cells that holds at least four of the largest blocks.
 */

#define ASYNC_JOBS 1024

enum job_kind { JOB_BLOCK, JOB_FLOW, JOB_END };

struct job {
	enum job_kind kind;
	enum flow_end_reason why;
	bool bad; /* block: a cell outside the model's picture */
	uint32_t ncells;
	uint64_t cell_pos;  /* arena position of its cells (monotonic) */
	uint64_t arena_end; /* arena position released when it is done */
	struct block b;
	struct flow f;
};

struct async {
	struct classifier *c;
	const struct classify_callbacks *cb;
	struct model_picture *pic;     /* cb->picture set: its buffers (the worker's) */
	uint32_t res;		       /* the model's */
	uint32_t max_flows, max_cells; /* max_cells: a block's most distinct cells */
	struct job *jobs;
	struct cell *arena;
	uint64_t arena_cap;
	uint8_t *plane;	     /* the reading thread's dedupe plane */
	uint64_t head, tail; /* jobs queued / done (monotonic) */
	uint64_t arena_head, arena_tail;
	bool worker_waits, reader_waits; /* who sleeps on data / space */
	pthread_mutex_t mu;
	pthread_cond_t data, space;
	pthread_t thread;
};

/* Reading thread: wait for a job slot and, for a block, max_cells of
 * contiguous arena at *pos. */
static struct job *async_reserve(struct async *a, uint32_t need, uint64_t *pos)
{
	uint64_t p = a->arena_head, off = p % a->arena_cap;

	if (off + need > a->arena_cap)
		p += a->arena_cap - off; /* the cells of one block stay contiguous */
	pthread_mutex_lock(&a->mu);
	while (a->head - a->tail == ASYNC_JOBS || p + need - a->arena_tail > a->arena_cap) {
		a->reader_waits = true;
		pthread_cond_wait(&a->space, &a->mu);
	}
	pthread_mutex_unlock(&a->mu);
	*pos = p;
	return &a->jobs[a->head % ASYNC_JOBS];
}

static void async_publish(struct async *a, struct job *j)
{
	a->arena_head = j->arena_end;
	pthread_mutex_lock(&a->mu);
	a->head++;
	/* Wake a sleeping worker with a batch of jobs, not for each one:
	 * fewer switches; the end and a full queue always wake it. */
	if (a->worker_waits &&
	    (a->head - a->tail >= ASYNC_JOBS / 16 || j->kind == JOB_END || a->reader_waits)) {
		a->worker_waits = false;
		pthread_cond_signal(&a->data);
	}
	pthread_mutex_unlock(&a->mu);
}

static void async_block(void *ctx, const struct flow_table *ft, const struct flow *f,
			const struct block *b)
{
	struct async *a = ctx;
	uint64_t pos;
	struct job *j = async_reserve(a, a->max_cells, &pos);
	long n = classify_cells_dedupe(a->res, a->plane, ft, b, &a->arena[pos % a->arena_cap]);

	j->kind = JOB_BLOCK;
	j->bad = n < 0;
	j->ncells = n < 0 ? 0 : (uint32_t)n;
	j->cell_pos = pos;
	j->arena_end = pos + j->ncells;
	j->b = *b;
	j->f = *f;
	async_publish(a, j);
}

static void async_flow_end(void *ctx, const struct flow_table *ft, const struct flow *f,
			   enum flow_end_reason why)
{
	struct async *a = ctx;
	uint64_t pos;
	struct job *j = async_reserve(a, 0, &pos);

	(void)ft;
	j->kind = JOB_FLOW;
	j->why = why;
	j->arena_end = a->arena_head;
	j->f = *f;
	async_publish(a, j);
}

static void *async_worker(void *arg)
{
	struct async *a = arg;
	struct classifier *c = a->c;
	struct block_verdict bv;
	struct flow_verdict fv;
	enum job_kind kind;
	struct job *j;

	do {
		pthread_mutex_lock(&a->mu);
		while (a->tail == a->head) {
			a->worker_waits = true;
			pthread_cond_wait(&a->data, &a->mu);
		}
		j = &a->jobs[a->tail % ASYNC_JOBS];
		pthread_mutex_unlock(&a->mu);
		kind = j->kind;
		if (kind == JOB_BLOCK) {
			memset(&bv, 0, sizeof(bv));
			bv.flow_id = j->f.id;
			if (!classify_cells(c, &a->arena[j->cell_pos % a->arena_cap],
					    j->bad ? -EINVAL : (long)j->ncells, &j->b, &bv)) {
				classify_vote(c, a->max_flows, &bv);
				if (a->cb && a->cb->block)
					a->cb->block(a->cb->ctx, c, &j->f, &bv);
				/* The block's distinct cells: the same picture
				 * (saturating sums of the same counts). */
				if (a->pic) {
					model_picture_cells(a->pic,
							    &a->arena[j->cell_pos % a->arena_cap],
							    j->ncells);
					a->cb->picture(a->cb->ctx, c, &j->f, &j->b, &bv, a->pic);
				}
			}
		} else if (kind == JOB_FLOW) {
			classifier_flow_end(c, NULL, &j->f, &fv);
			if (a->cb && a->cb->flow)
				a->cb->flow(a->cb->ctx, c, &j->f, j->why, &fv);
		}
		pthread_mutex_lock(&a->mu);
		a->arena_tail = j->arena_end;
		a->tail++;
		if (a->reader_waits) {
			a->reader_waits = false;
			pthread_cond_signal(&a->space);
		}
		pthread_mutex_unlock(&a->mu);
	} while (kind != JOB_END);
	return NULL;
}

static void async_free(struct async *a)
{
	free(a->jobs);
	free(a->arena);
	free(a->plane);
	free(a);
}

/* NULL when the thread or its memory cannot be had: classify inline then. */
static struct async *async_start(struct classifier *c, const struct classify_callbacks *cb,
				 struct model_picture *pic, uint32_t max_flows)
{
	struct async *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->c = c;
	a->cb = cb;
	a->pic = pic;
	a->max_flows = max_flows;
	a->res = classifier_model(c)->res;
	a->max_cells = (uint32_t)CLASSIFY_MAX_CELLS(a->res);
	a->arena_cap = 4 * (uint64_t)a->max_cells < 65536 ? 65536 : 4 * (uint64_t)a->max_cells;
	a->jobs = malloc(ASYNC_JOBS * sizeof(*a->jobs));
	a->arena = malloc(a->arena_cap * sizeof(*a->arena));
	a->plane = calloc(a->max_cells, 1);
	if (!a->jobs || !a->arena || !a->plane)
		goto fail;
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->data, NULL);
	pthread_cond_init(&a->space, NULL);
	if (pthread_create(&a->thread, NULL, async_worker, a))
		goto fail_sync;
	return a;

fail_sync:
	pthread_cond_destroy(&a->space);
	pthread_cond_destroy(&a->data);
	pthread_mutex_destroy(&a->mu);
fail:
	async_free(a);
	return NULL;
}

/* Queue the end, wait for the worker to finish everything, free. */
static void async_stop(struct async *a)
{
	uint64_t pos;
	struct job *j = async_reserve(a, 0, &pos);

	j->kind = JOB_END;
	j->arena_end = a->arena_head;
	async_publish(a, j);
	pthread_join(a->thread, NULL);
	pthread_cond_destroy(&a->space);
	pthread_cond_destroy(&a->data);
	pthread_mutex_destroy(&a->mu);
	async_free(a);
}

/* want: -1 any kind, 0 a capture, 1 a CSV. */
static int classify_path(struct classifier *c, const char *path, const struct flow_config *base,
			 const struct classify_callbacks *cb, struct classify_file_result *res,
			 int want)
{
	struct file_ctx x = { .c = c, .cb = cb };
	struct flow_events ev = { .block = file_block, .flow_end = file_flow_end, .ctx = &x };
	struct pipeline_hooks hooks = { .ctx = &x };
	struct async *as = NULL;
	struct model_picture pic;
	struct flow_config cfg;
	struct flow_table *ft;
	struct source *s;
	char why[256];
	int rc;

	memset(res, 0, sizeof(*res));
	errno = 0;
	s = source_open(path, res->error, sizeof(res->error));
	if (!s)
		return errno ? -errno : -EINVAL;
	res->kind = source_kind(s);
	res->linktype = source_linktype(s);
	if (want >= 0 && (res->kind == SOURCE_CSV) != (want == 1)) {
		snprintf(res->error, sizeof(res->error), "%s: is a %s file, not a %s",
			 source_name(path), source_kind_name(res->kind),
			 want ? "samples CSV" : "pcap or pcapng capture");
		source_close(s);
		return -EINVAL;
	}
	if (base)
		cfg = *base;
	else
		flow_config_default(&cfg);
	classifier_flow_config(c, &cfg);
	if (flow_config_check(&cfg, why, sizeof(why))) {
		snprintf(res->error, sizeof(res->error), "%s: flow table: %s", source_name(path),
			 why);
		source_close(s);
		return -EINVAL;
	}
	if (cb && cb->picture) {
		if (model_picture_init(&pic, classifier_model(c), 0) < 0) {
			snprintf(res->error, sizeof(res->error),
				 "%s: out of memory for the model's pictures", source_name(path));
			source_close(s);
			return -ENOMEM;
		}
		x.pic = &pic;
	}
	if (classifier_config(c)->workers)
		as = async_start(c, cb, x.pic, cfg.max_flows);
	if (as) {
		ev.block = async_block;
		ev.flow_end = async_flow_end;
		ev.ctx = as;
	}
	ft = flow_table_new(&cfg, &ev);
	if (!ft) {
		rc = -errno;
		snprintf(res->error, sizeof(res->error), "%s: cannot allocate the flow table: %s",
			 source_name(path), strerror(errno));
		if (as)
			async_stop(as);
		if (x.pic)
			model_picture_free(x.pic);
		source_close(s);
		return rc;
	}
	res->opened = true;
	hooks.progress = cb && cb->progress ? file_progress : NULL;
	rc = pipeline_run(s, ft, &res->counts, &hooks);
	if (rc) {
		res->partial = true;
		snprintf(res->error, sizeof(res->error), "%s", source_error(s));
	}
	flow_table_flush(ft);
	if (as)
		async_stop(as);
	res->stats = *flow_table_stats(ft);
	flow_table_free(ft);
	if (x.pic)
		model_picture_free(x.pic);
	source_close(s);
	return rc;
}

int classifier_file(struct classifier *c, const char *path, const struct flow_config *base,
		    const struct classify_callbacks *cb, struct classify_file_result *res)
{
	return classify_path(c, path, base, cb, res, -1);
}

int classifier_pcap_file(struct classifier *c, const char *path, const struct flow_config *base,
			 const struct classify_callbacks *cb, struct classify_file_result *res)
{
	return classify_path(c, path, base, cb, res, 0);
}

int classifier_csv_file(struct classifier *c, const char *path, const struct flow_config *base,
			const struct classify_callbacks *cb, struct classify_file_result *res)
{
	return classify_path(c, path, base, cb, res, 1);
}
