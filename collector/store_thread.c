// SPDX-License-Identifier: MIT
/*
 * store_thread.c - the store's writer, off the loop: one thread owns the
 * writable store connection (SQLite or PostgreSQL) and, with --nats, the
 * publisher's staging.  It takes one group at a time from the loop, puts its
 * batches into a transaction, commits it (a locked SQLite file: retried on
 * the store's back-off until --busy-timeout, the loop serving everyone
 * meanwhile), fills each batch's result and hands the group back through an
 * eventfd; the loop turns the results into acks (server.c).
 *
 * The store's operations run on this thread only, the dashboard's live-feed
 * tap (web/live.c) included: its per-transaction state is this thread's,
 * its ring has a mutex.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "publish.h"
#include "server_int.h"

int store_thread_init(struct store_thread *t, struct store *store)
{
	memset(t, 0, sizeof(*t));
	t->store = store;
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cv, NULL);
	t->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	return t->efd < 0 ? -errno : 0;
}

/* Results for n batches: 0, or -ENOMEM. */
static int group_results(struct store_group *g)
{
	if (g->n > g->capres) {
		struct store_batch_result *r = realloc(g->res, g->n * sizeof(*r));
		size_t *x;

		if (!r)
			return -ENOMEM;
		g->res = r;
		x = realloc(g->sidx, g->n * sizeof(*x));
		if (!x)
			return -ENOMEM;
		g->sidx = x;
		g->capres = g->n;
	}
	memset(g->res, 0, g->n * sizeof(*g->res));
	return 0;
}

/* Sleep until the store's next attempt at a locked file (monotonic ms). */
static void sleep_until(uint64_t at_ms)
{
	struct timespec ts = { .tv_sec = (time_t)(at_ms / 1000),
			       .tv_nsec = (long)(at_ms % 1000) * 1000000 };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* The group's batches into one transaction, committed. */
static void run_group(struct store_thread *t, struct store_group *g)
{
	const struct store_batch_result *res;
	uint64_t t0 = clock_mono_ns();
	size_t i, nres, put = 0;
	bool waiting = false;
	int rc = 0;

	g->rc = 0;
	g->committed = false;
	g->pub_group = 0;
	g->err[0] = '\0';
	if (group_results(g) < 0) {
		rc = -ENOMEM;
		snprintf(g->err, sizeof(g->err), "store: out of memory for a group's results");
	}
	for (i = 0; i < g->n; i++) {
		Flowpic__V1__Batch *b = g->b[i].b;

		g->b[i].b = NULL;
		if (rc < 0) {
			flowpic__v1__batch__free_unpacked(b, NULL);
			continue;
		}
		g->sidx[i] = SIZE_MAX;
		/* --nats: its messages, kept until the commit tells what was stored. */
		if (t->pub && publisher_stage(t->pub, b) < 0) {
			g->res[i].error = -ENOMEM;
			snprintf(g->res[i].err, sizeof(g->res[i].err),
				 "out of memory keeping a batch to publish");
			flowpic__v1__batch__free_unpacked(b, NULL);
			continue;
		}
		rc = store_put_batch(t->store, b, g->b[i].now_ns, &g->sidx[i], g->err,
				     sizeof(g->err)); /* takes b */
		if (rc == 0)
			put++;
	}
	if (rc == 0 && put) {
		for (;;) {
			rc = store_commit(t->store, g->err, sizeof(g->err));
			if (rc != -EBUSY && rc != -EAGAIN)
				break;
			/* A locked SQLite file: the transaction is kept; try again
			 * on the store's back-off, up to --busy-timeout. */
			if (rc == -EBUSY) {
				atomic_fetch_add(&t->busy_retries, 1);
				if (!waiting)
					log_warn("%s", g->err);
				waiting = true;
			}
			atomic_store(&t->retry_at_ms, store_retry_at(t->store));
			sleep_until(store_retry_at(t->store));
		}
		atomic_store(&t->retry_at_ms, 0);
		if (rc == 0) {
			g->committed = true;
			res = store_results(t->store, &nres);
			for (i = 0; i < g->n; i++)
				if (g->sidx[i] < nres)
					g->res[i] = res[g->sidx[i]];
			if (t->pub)
				g->pub_group = publisher_commit(t->pub, res, nres);
		}
	}
	if (rc < 0 && t->pub)
		publisher_drop(t->pub);
	g->rc = rc;
	g->work_ns = clock_mono_ns() - t0;
}

static void *run(void *arg)
{
	struct store_thread *t = arg;
	uint64_t one = 1;

	pthread_mutex_lock(&t->mu);
	for (;;) {
		struct store_group *g;

		while (!t->work && !t->stop)
			pthread_cond_wait(&t->cv, &t->mu);
		if (!t->work)
			break;
		g = t->work;
		t->work = NULL;
		pthread_mutex_unlock(&t->mu);
		run_group(t, g);
		pthread_mutex_lock(&t->mu);
		t->done = g;
		pthread_cond_broadcast(&t->cv);
		if (write(t->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_error("store thread: eventfd: %s", strerror(errno));
	}
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

void store_thread_submit(struct store_thread *t, struct store_group *g)
{
	int rc;

	if (!t->started) {
		t->stop = false;
		rc = pthread_create(&t->thr, NULL, run, t);
		if (rc) {
			/* No thread: this group is written on the loop instead. */
			log_error("store thread: %s: committing on the loop", strerror(rc));
			run_group(t, g);
			pthread_mutex_lock(&t->mu);
			t->done = g;
			pthread_mutex_unlock(&t->mu);
			if (write(t->efd, &(uint64_t){ 1 }, sizeof(uint64_t)) < 0)
				log_error("store thread: eventfd: %s", strerror(errno));
			return;
		}
		t->started = true;
	}
	pthread_mutex_lock(&t->mu);
	t->work = g;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
}

struct store_group *store_thread_take(struct store_thread *t, bool wait)
{
	struct store_group *g;
	uint64_t v;

	pthread_mutex_lock(&t->mu);
	while (wait && !t->done && (t->work || t->started))
		pthread_cond_wait(&t->cv, &t->mu);
	g = t->done;
	t->done = NULL;
	pthread_mutex_unlock(&t->mu);
	if (g && read(t->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_error("store thread: eventfd: %s", strerror(errno));
	return g;
}

void store_thread_join(struct store_thread *t)
{
	if (!t->started)
		return;
	pthread_mutex_lock(&t->mu);
	t->stop = true;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
	pthread_join(t->thr, NULL);
	t->started = false;
}

void store_thread_free(struct store_thread *t)
{
	if (t->efd < 0 && !t->store)
		return;
	store_thread_join(t);
	if (t->efd >= 0)
		close(t->efd);
	pthread_mutex_destroy(&t->mu);
	pthread_cond_destroy(&t->cv);
	t->efd = -1;
	t->store = NULL;
}
