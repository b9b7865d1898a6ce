// SPDX-License-Identifier: MIT
/*
 * upload.c - captures uploaded to the dashboard, classified in a worker
 * thread as `flowpic classify --json --blocks` classifies a file; see
 * upload.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/classify.h"
#include "core/flow_json.h"
#include "core/log.h"
#include "upload.h"
#include "web_int.h"

struct upload {
	int efd;
	bool busy; /* a worker runs (or its result waits) */
	pthread_t thread;
	int fd;	      /* the capture (a memfd), the worker's while busy */
	size_t slot;  /* the client waiting */
	uint64_t gen; /* ... if that slot still holds the same connection */
	bool gone;    /* the client went */
	/* The worker's result. */
	char *text; /* JSON lines, as the CLI prints them */
	size_t textlen;
	int status; /* 200, or 400 (not a capture) / 500 */
	char error[600];
};

int upload_init(struct web *w, char *err, size_t errlen)
{
	struct upload *u = calloc(1, sizeof(*u));

	if (!u) {
		snprintf(err, errlen, "web: out of memory");
		return -ENOMEM;
	}
	u->fd = -1;
	u->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (u->efd < 0) {
		snprintf(err, errlen, "web: eventfd: %s", strerror(errno));
		free(u);
		return -errno;
	}
	w->up = u;
	return 0;
}

void upload_free(struct web *w)
{
	struct upload *u = w->up;

	if (!u)
		return;
	if (u->busy)
		pthread_join(u->thread, NULL);
	if (u->fd >= 0)
		close(u->fd);
	free(u->text);
	close(u->efd);
	free(u);
	w->up = NULL;
}

int upload_fd(const struct web *w)
{
	return w->up->efd;
}

int upload_prepare(struct web *w, struct client *c)
{
	char store[8];

	/* Storing an upload's verdicts is not done yet: say so, store nothing. */
	if (http_param(c, "store", store, sizeof(store)) > 0 && strcmp(store, "0")) {
		WEB_BUMP(w, web_upload_refused);
		http_error(w, c, 400, "store=1: storing an upload's verdicts is not available yet");
		return -1;
	}
	if (c->body_len > w->cfg.upload_max) {
		char msg[120];

		snprintf(msg, sizeof(msg),
			 "capture of %" PRIu64 " bytes: the limit is %" PRIu64
			 " (--web-upload-max)",
			 c->body_len, w->cfg.upload_max);
		http_error(w, c, 413, msg);
		return -1;
	}
	if (c->body_len == 0) {
		WEB_BUMP(w, web_upload_refused);
		http_error(w, c, 400, "no capture in the body");
		return -1;
	}
	if (w->up->busy) {
		WEB_BUMP(w, web_upload_refused);
		c->keep_alive = false;
		http_error(w, c, 503, "another capture is being classified: try again");
		return -1;
	}
	c->upload_fd = memfd_create("flowpic-upload", MFD_CLOEXEC);
	if (c->upload_fd < 0) {
		c->keep_alive = false;
		http_error(w, c, 500, "cannot keep the upload (memfd)");
		return -1;
	}
	return 0;
}

int upload_write(struct web *w, struct client *c, const char *buf, size_t n)
{
	/* Bytes past the declared length are not the capture's. */
	if (n > c->body_len - c->body_have)
		n = (size_t)(c->body_len - c->body_have);
	while (n) {
		ssize_t k = write(c->upload_fd, buf, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			c->keep_alive = false;
			http_error(w, c, 500, "cannot keep the upload (memfd write)");
			return -1;
		}
		buf += k;
		n -= (size_t)k;
		c->body_have += (uint64_t)k;
	}
	return 0;
}

/* ---- the worker ---- */

struct run {
	FILE *out;
	bool failed;
};

static void on_block(void *ctx, const struct classifier *c, const struct flow *f,
		     const struct block_verdict *v)
{
	struct run *r = ctx;

	(void)f;
	block_verdict_json_line(r->out, c, v, NULL);
}

static void on_flow(void *ctx, const struct classifier *c, const struct flow *f,
		    enum flow_end_reason why, const struct flow_verdict *v)
{
	struct run *r = ctx;

	verdict_json_line(r->out, c, f, why, NULL, v);
}

static void *work(void *arg)
{
	struct upload *u = arg;
	struct classifier_config cfg;
	struct classify_callbacks cb = { .block = on_block, .flow = on_flow };
	struct classify_file_result res;
	struct flow_config fc;
	struct classifier *c;
	struct run r = { 0 };
	char path[64], err[512];
	uint64_t one = 1;
	int rc;

	/* As `flowpic classify` does: the embedded model, its defaults, one
	 * worker thread, the model's pictures. */
	classifier_config_default(&cfg);
	cfg.workers = 1;
	c = classifier_new(&cfg, err, sizeof(err));
	if (!c) {
		u->status = 500;
		snprintf(u->error, sizeof(u->error), "model: %s", err);
		goto out;
	}
	flow_config_default(&fc);
	classifier_flow_config(c, &fc);
	r.out = open_memstream(&u->text, &u->textlen);
	if (!r.out) {
		u->status = 500;
		snprintf(u->error, sizeof(u->error), "out of memory");
		goto out;
	}
	cb.ctx = &r;
	lseek(u->fd, 0, SEEK_SET);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", u->fd);
	rc = classifier_file(c, path, &fc, &cb, &res);
	fclose(r.out);
	if (!res.opened || (rc && !res.partial) || (res.partial && res.counts.records == 0)) {
		/* What the CLI says, without our /proc path. */
		const char *why = strstr(res.error, ": ");

		u->status = 400;
		snprintf(u->error, sizeof(u->error), "not a capture flowpic reads: %s",
			 why ? why + 2 : res.error);
		goto out;
	}
	u->status = 200;
out:
	classifier_free(c);
	if (write(u->efd, &one, sizeof(one)) < 0)
		log_error("web: upload eventfd: %s", strerror(errno));
	return NULL;
}

void upload_start(struct web *w, struct client *c)
{
	struct upload *u = w->up;

	u->fd = c->upload_fd;
	c->upload_fd = -1;
	u->slot = (size_t)(c - w->c);
	u->gen = c->gen;
	u->gone = false;
	u->status = 0;
	u->error[0] = '\0';
	free(u->text);
	u->text = NULL;
	u->textlen = 0;
	if (pthread_create(&u->thread, NULL, work, u)) {
		close(u->fd);
		u->fd = -1;
		http_error(w, c, 500, "cannot start the classification");
		return;
	}
	u->busy = true;
	c->state = CL_WAIT;
	c->keep_alive = false;
	/* No deadline while waiting: a large capture takes its time. */
	client_send(w, c);
}

void upload_forget(struct web *w, struct client *c)
{
	struct upload *u = w->up;

	if (u->busy && u->slot == (size_t)(c - w->c) && u->gen == c->gen)
		u->gone = true;
}

/* {"lines":[...every line...],"pictures":{}} from the worker's lines. */
static void answer(struct web *w, struct client *c, struct upload *u)
{
	struct sbuf b = { 0 };
	size_t i = 0;
	bool first = true;

	sbuf_puts(&b, "{\"lines\":[");
	while (i < u->textlen) {
		const char *nl = memchr(u->text + i, '\n', u->textlen - i);
		size_t end = nl ? (size_t)(nl - u->text) : u->textlen;

		if (end > i) {
			if (!first)
				sbuf_add(&b, ",", 1);
			sbuf_add(&b, u->text + i, end - i);
			first = false;
		}
		i = end + 1;
	}
	/* Block pictures of uploads: not drawn yet (docs/dashboard.md). */
	sbuf_puts(&b, "],\"pictures\":{}}");
	WEB_BUMP(w, web_uploads);
	c->state = CL_WRITE;
	http_json(w, c, &b);
	sbuf_free(&b);
}

void upload_done(struct web *w)
{
	struct upload *u = w->up;
	struct client *c;
	uint64_t v;

	if (read(u->efd, &v, sizeof(v)) < 0 || !u->busy)
		return;
	pthread_join(u->thread, NULL);
	u->busy = false;
	close(u->fd);
	u->fd = -1;
	c = &w->c[u->slot];
	if (!u->gone && c->state == CL_WAIT && c->gen == u->gen) {
		c->state = CL_WRITE;
		if (u->status == 200) {
			answer(w, c, u);
		} else {
			if (u->status == 400)
				WEB_BUMP(w, web_upload_refused);
			http_error(w, c, u->status, u->error);
		}
	}
	free(u->text);
	u->text = NULL;
	u->textlen = 0;
}
