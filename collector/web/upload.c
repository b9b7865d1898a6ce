// SPDX-License-Identifier: MIT
/*
 * upload.c - captures uploaded to the dashboard, classified in a worker
 * thread as `flowpic classify --json --blocks` classifies a file, with each
 * block's picture as the agent sends it, and stored on request; see
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
#include <time.h>
#include <unistd.h>

#include "collector/json.h"
#include "collector/validate.h"
#include "core/classify.h"
#include "core/clock.h"
#include "core/flow_json.h"
#include "core/log.h"
#include "core/model_picture.h"
#include "core/summary_json.h"
#include "core/utf8.h"
#include "stream/encode.h"
#include "stream/stream.h"
#include "stream/verdict_of.h"
#include "upload.h"
#include "web_int.h"

#define UPLOAD_AGENT_ID "upload"
#define UPLOAD_NAME_MAX 256  /* bytes of the file name kept (?name=) */
#define UPLOAD_BATCH 500     /* verdicts per stored batch, as the agent's default */
#define UPLOAD_BUSY_MS 10000 /* SQLite: wait this long for the collector's lock */
#define UPLOAD_PIC_MAX STREAM_PICTURE_CELLS_MAX /* more pixels: the agent sends none */

/* One verdict to store: made and encoded as the agent makes and encodes
 * its own (stream/verdict_of.h, stream/encode.h), its picture encoded at
 * pic_off of the upload's (pic_len 0: none). */
struct up_verdict {
	struct stream_verdict v;
	size_t pic_off;
	uint32_t pic_len;
};

/* One block's picture in the answer: its JSON at off in the pictures text. */
struct up_pic {
	uint64_t flow_id, block_index;
	size_t off, len;
};

struct upload {
	int efd;
	bool busy; /* a worker runs (or its result waits) */
	pthread_t thread;
	int fd;	      /* the capture (a memfd), the worker's while busy */
	size_t slot;  /* the client waiting */
	uint64_t gen; /* ... if that slot still holds the same connection */
	bool gone;    /* the client went */
	/* The request, copied for the worker. */
	bool store;
	char name[UPLOAD_NAME_MAX];
	char user[sizeof(((struct session *)0)->user)];
	const char *db;
	struct web_stats *st;
	uint64_t last_run_id;
	/* The worker's result. */
	char *text; /* JSON lines, as the CLI prints them */
	size_t textlen;
	struct sbuf pics; /* the pictures' JSON, one after another */
	struct up_pic *pic;
	size_t npic, cappic;
	struct up_verdict *v; /* store: the verdicts in the agent's order */
	size_t nv, capv;
	struct sbuf cells;	       /* store: the pictures, encoded (flowpic.v1.Cells) */
	char iface[STREAM_IFNAME_MAX]; /* store: the verdicts' interface (the name) */
	bool oom;
	uint64_t window_ns; /* the flow table's: the pictures' time axis */
	uint64_t run_id, stored, duplicates;
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
	u->db = w->cfg.db;
	u->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (u->efd < 0) {
		snprintf(err, errlen, "web: eventfd: %s", strerror(errno));
		free(u);
		return -errno;
	}
	w->up = u;
	return 0;
}

/* The worker's results, before the next upload and at the end. */
static void result_free(struct upload *u)
{
	free(u->text);
	u->text = NULL;
	u->textlen = 0;
	sbuf_free(&u->pics);
	free(u->pic);
	u->pic = NULL;
	u->npic = u->cappic = 0;
	free(u->v);
	u->v = NULL;
	u->nv = u->capv = 0;
	sbuf_free(&u->cells);
	u->oom = false;
	u->stored = u->duplicates = 0;
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
	result_free(u);
	close(u->efd);
	free(u);
	w->up = NULL;
}

int upload_fd(const struct web *w)
{
	return w->up->efd;
}

/* store=0 (default) or 1: 0 or 1, or -1 for anything else. */
static int store_param(const struct client *c)
{
	char v[8];
	int n = http_param(c, "store", v, sizeof(v));

	if (n == -ENOENT || (n >= 0 && !strcmp(v, "0")))
		return 0;
	return n >= 0 && !strcmp(v, "1") ? 1 : -1;
}

int upload_prepare(struct web *w, struct client *c)
{
	char name[UPLOAD_NAME_MAX];
	int n;

	if (store_param(c) < 0) {
		WEB_BUMP(w, web_upload_refused);
		http_error(w, c, 400,
			   "store: give 0 (classify only) or 1 (also store the verdicts)");
		return -1;
	}
	n = http_param(c, "name", name, sizeof(name));
	if (n < 0 && n != -ENOENT) {
		WEB_BUMP(w, web_upload_refused);
		http_error(w, c, 400, "name: a file name of at most 255 bytes, URL-encoded");
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

/* ---- the worker: classify ---- */

struct run {
	struct upload *u;
	FILE *out;
	uint64_t window_ns;
	uint64_t flows;
	struct class_total total[CLASSIFY_MAX_CLASSES + 1];
	uint8_t *cellbuf; /* store: one picture being encoded */
};

/* Room for one more of n items of size sz in *arr (capacity *cap). */
static bool grow(void **arr, size_t *cap, size_t n, size_t sz)
{
	size_t c = *cap ? *cap * 2 : 256;
	void *p;

	if (n < *cap)
		return true;
	while (c < n + 1)
		c *= 2;
	p = realloc(*arr, c * sz);
	if (!p)
		return false;
	*arr = p;
	*cap = c;
	return true;
}

/* A new verdict to store (its stream_verdict for the caller to fill). */
static struct up_verdict *verdict_add(struct upload *u)
{
	struct up_verdict *v;

	if (u->oom || !grow((void **)&u->v, &u->capv, u->nv, sizeof(*u->v))) {
		u->oom = true;
		return NULL;
	}
	v = &u->v[u->nv++];
	v->pic_off = 0;
	v->pic_len = 0;
	return v;
}

/* The name (or "upload") as an agent's interface field holds it: its first
 * STREAM_IFNAME_MAX - 1 bytes, cut between characters. */
static void set_iface(struct upload *u, const char *name)
{
	size_t len = strlen(name), i = 0, k;

	while (i < len) {
		k = utf8_len((const unsigned char *)name + i, len - i);
		if (!k)
			k = 1; /* not UTF-8: a byte, as it came */
		if (i + k >= sizeof(u->iface))
			break;
		i += k;
	}
	memcpy(u->iface, name, i);
	u->iface[i] = '\0';
}

/* The upload's name, as an agent's interface (a file has no direction). */
static void verdict_where(struct upload *u, struct up_verdict *v)
{
	memcpy(v->v.interface, u->iface, sizeof(v->v.interface));
}

static void on_block(void *ctx, const struct classifier *c, const struct flow *f,
		     const struct block_verdict *v)
{
	struct run *r = ctx;

	(void)f;
	block_verdict_json_line(r->out, c, v, NULL);
}

/* The block's picture into the answer and, to store, the block verdict as
 * forward_block() sends it. */
static void on_picture(void *ctx, const struct classifier *c, const struct flow *f,
		       const struct block *b, const struct block_verdict *bv,
		       const struct model_picture *p)
{
	struct run *r = ctx;
	struct upload *u = r->u;
	struct store_cells sc = {
		.rows = p->res,
		.cols = p->res,
		.planes = p->planes,
		.dirs = p->dirs,
		.window_ns = r->window_ns,
		.n = p->n,
		.index = p->index,
		.count = p->count,
	};
	bool has = p->n <= p->cap && p->n <= UPLOAD_PIC_MAX;
	struct stream_cells cells = { 0 };
	struct up_verdict *v;
	struct up_pic *e;
	long n;

	if (!grow((void **)&u->pic, &u->cappic, u->npic, sizeof(*u->pic))) {
		u->oom = true;
		return;
	}
	e = &u->pic[u->npic++];
	e->flow_id = bv->flow_id;
	e->block_index = bv->index;
	e->off = u->pics.len;
	if (has)
		api_cells_json(&u->pics, &sc);
	else
		sbuf_puts(&u->pics, "null");
	e->len = u->pics.len - e->off;
	if (!u->store || !(v = verdict_add(u)))
		return;
	stream_verdict_of_block(&v->v, c, f, b, bv, r->window_ns);
	verdict_where(u, v);
	if (!has)
		return;
	cells.index = p->index;
	cells.count = p->count;
	cells.n = p->n;
	cells.rows = cells.cols = (uint16_t)p->res;
	cells.dirs = (uint8_t)p->dirs;
	cells.window_ns = r->window_ns;
	if (!r->cellbuf && !(r->cellbuf = malloc(STREAM_PICTURE_BYTES_MAX))) {
		u->oom = true;
		return;
	}
	n = encode_cells_check(&cells, NULL, 0) ?
		    -EINVAL :
		    encode_cells(r->cellbuf, STREAM_PICTURE_BYTES_MAX, &cells);
	if (n <= 0)
		return; /* stored without its picture, as the agent would send it */
	v->pic_off = u->cells.len;
	v->pic_len = (uint32_t)n;
	sbuf_add(&u->cells, (const char *)r->cellbuf, (size_t)n);
}

static void on_flow(void *ctx, const struct classifier *c, const struct flow *f,
		    enum flow_end_reason why, const struct flow_verdict *fv)
{
	struct run *r = ctx;
	struct up_verdict *v;

	verdict_json_line(r->out, c, f, why, NULL, fv);
	r->flows++;
	class_totals_add(r->total, c, f, fv);
	if (!r->u->store || !(v = verdict_add(r->u)))
		return;
	stream_verdict_of_flow(&v->v, c, f, fv);
	verdict_where(r->u, v);
}

/* ---- the worker: store ---- */

/* Verdicts [from, from + n) of the upload as Batch seq (1, 2, ...), encoded
 * by the agent's encoder and decoded as the collector decodes a gRPC
 * message: the store gets what it gets from an agent.  NULL with err on
 * failure. */
static Flowpic__V1__Batch *batch_make(struct upload *u, const struct encode_header *h, size_t from,
				      size_t n, uint64_t seq, char *err, size_t errlen)
{
	struct encode_verdict *ev = calloc(n ? n : 1, sizeof(*ev));
	Flowpic__V1__Batch *out = NULL;
	size_t i, pics = 0, cap;
	uint8_t *buf = NULL;
	long len;

	for (i = 0; ev && i < n; i++) {
		const struct up_verdict *v = &u->v[from + i];

		ev[i].seq = from + i + 1;
		ev[i].v = v->v;
		ev[i].pic = v->pic_len ? (const uint8_t *)u->cells.p + v->pic_off : NULL;
		ev[i].pic_len = v->pic_len;
		pics += v->pic_len;
	}
	cap = encode_batch_bound((unsigned)n, 0) + encode_pictures_bound((unsigned)n, pics);
	buf = ev ? malloc(cap) : NULL;
	if (!buf) {
		snprintf(err, errlen, "out of memory making the upload's batch %" PRIu64, seq);
		goto done;
	}
	len = encode_batch(buf, cap, h, seq, ev, (unsigned)n, NULL, 0, err, errlen);
	if (len < 0)
		goto done;
	out = flowpic__v1__batch__unpack(NULL, (size_t)len, buf);
	if (!out)
		snprintf(err, errlen, "upload batch %" PRIu64 ": does not decode", seq);
done:
	free(buf);
	free(ev);
	return out;
}

/* What every batch of the upload repeats: its agent and the model. */
static void header_make(struct upload *u, const struct classifier *c, struct encode_header *h)
{
	const struct model *m = classifier_model(c);
	unsigned i;

	memset(h, 0, sizeof(*h));
	snprintf(h->host, sizeof(h->host), "%s", u->user);
	snprintf(h->agent_id, sizeof(h->agent_id), "%s", UPLOAD_AGENT_ID);
	snprintf(h->version, sizeof(h->version), "flowpic-collector %s upload", FLOWPIC_VERSION);
	h->run_id = u->run_id;
	snprintf(h->model_name, sizeof(h->model_name), "%s", m->name);
	snprintf(h->model_version, sizeof(h->model_version), "%s", m->version);
	h->nclasses = m->n_classes < STREAM_MAX_CLASSES ? m->n_classes : STREAM_MAX_CLASSES;
	for (i = 0; i < h->nclasses; i++)
		snprintf(h->classes[i], sizeof(h->classes[i]), "%s", m->classes[i]);
}

#define UPLOAD_BUMP(u, name, n) __atomic_fetch_add(&(u)->st->name, (n), __ATOMIC_RELAXED)

/*
 * The upload's verdicts into the store through the path a gRPC batch takes
 * (batch_validate(), store_put_batch(), store_commit()), on a short-lived
 * writable connection of this worker: the gRPC loop never waits for it
 * (SQLite: its commits meet our lock as they meet any other writer's, and
 * retry), and the web thread's connection stays read-only.  One
 * transaction: all of the upload's verdicts or none.  0, or a negative
 * errno with err.
 */
static int store_upload(struct upload *u, const struct classifier *c, char *err, size_t errlen)
{
	struct store_options opt = {
		.sqlite_sync_full = true,
		.busy_timeout_ms = UPLOAD_BUSY_MS,
		.dashboard_indexes = true, /* made by the collector already: no-ops */
	};
	size_t nb = (u->nv + UPLOAD_BATCH - 1) / UPLOAD_BATCH, i, idx, nres;
	Flowpic__V1__Batch **b = calloc(nb ? nb : 1, sizeof(*b));
	const struct store_batch_result *res;
	uint64_t now = clock_real_ns();
	struct encode_header h;
	struct store *s = NULL;
	char verr[512];
	int rc = 0;

	if (!b) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	/* A new run per upload: its verdicts' identities are new. */
	u->run_id = now > u->last_run_id ? now : u->last_run_id + 1;
	u->last_run_id = u->run_id;
	header_make(u, c, &h);
	for (i = 0; i < nb && !rc; i++) {
		size_t from = i * UPLOAD_BATCH, n = u->nv - from;

		b[i] = batch_make(u, &h, from, n < UPLOAD_BATCH ? n : UPLOAD_BATCH, i + 1, err,
				  errlen);
		if (!b[i])
			rc = -ENOMEM;
		else if (batch_validate(b[i], verr, sizeof(verr)) != VALIDATE_OK) {
			snprintf(err, errlen, "refused as an agent's batch would be: %s", verr);
			rc = -EINVAL;
		}
	}
	if (rc)
		goto out;
	s = store_open(u->db, &opt, err, errlen);
	if (!s) {
		rc = -EIO;
		goto out;
	}
	for (i = 0; i < nb; i++) {
		Flowpic__V1__Batch *x = b[i];

		b[i] = NULL;
		rc = store_put_batch(s, x, now, &idx, err, errlen); /* takes x */
		if (rc < 0)
			goto out;
	}
	/* The file locked by the collector's own commit: try again shortly,
	 * up to UPLOAD_BUSY_MS in all (then -EIO). */
	while ((rc = store_commit(s, err, errlen)) == -EBUSY || rc == -EAGAIN) {
		uint64_t at = store_retry_at(s), t = clock_mono_ms();
		struct timespec ts = { 0, 10 * 1000000L };

		if (at > t && at - t < 1000)
			ts.tv_nsec = (long)(at - t) * 1000000L;
		nanosleep(&ts, NULL);
	}
	if (rc < 0)
		goto out;
	res = store_results(s, &nres);
	for (i = 0; i < nres; i++) {
		u->stored += res[i].stored;
		u->duplicates += res[i].duplicates;
		if (res[i].error && !rc) {
			rc = res[i].error;
			snprintf(err, errlen, "batch %zu of %zu refused by the store: %s", i + 1,
				 nres, res[i].err);
		}
	}
out:
	for (i = 0; i < nb; i++)
		if (b[i])
			flowpic__v1__batch__free_unpacked(b[i], NULL);
	free(b);
	if (s)
		store_close(s);
	return rc;
}

static void *work(void *arg)
{
	struct upload *u = arg;
	struct classifier_config cfg;
	struct classify_callbacks cb = { .block = on_block,
					 .picture = on_picture,
					 .flow = on_flow };
	struct classify_file_result res;
	struct flow_config fc;
	struct classifier *c;
	struct run *r = calloc(1, sizeof(*r));
	const char *name = u->name[0] ? u->name : UPLOAD_AGENT_ID, *msg;
	char path[64], err[512], why[UPLOAD_NAME_MAX + 520];
	uint64_t one = 1;
	int rc;

	set_iface(u, name);
	/* As `flowpic classify` does: the embedded model, its defaults, one
	 * worker thread, the model's pictures. */
	classifier_config_default(&cfg);
	cfg.workers = 1;
	c = r ? classifier_new(&cfg, err, sizeof(err)) : NULL;
	if (!c) {
		u->status = 500;
		snprintf(u->error, sizeof(u->error), "model: %s", r ? err : "out of memory");
		goto out;
	}
	flow_config_default(&fc);
	classifier_flow_config(c, &fc);
	r->u = u;
	r->window_ns = u->window_ns = fc.window_ns;
	r->out = open_memstream(&u->text, &u->textlen);
	if (!r->out) {
		u->status = 500;
		snprintf(u->error, sizeof(u->error), "out of memory");
		goto out;
	}
	cb.ctx = r;
	lseek(u->fd, 0, SEEK_SET);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", u->fd);
	rc = classifier_file(c, path, &fc, &cb, &res);
	/* What the CLI says, with the upload's name for our /proc path. */
	msg = strstr(res.error, ": ") ? strstr(res.error, ": ") + 2 : res.error;
	snprintf(why, sizeof(why), "%s: %s", name, msg);
	if (!res.opened || (rc && !res.partial) || (res.partial && res.counts.records == 0)) {
		fclose(r->out);
		u->status = 400;
		snprintf(u->error, sizeof(u->error), "not a capture flowpic reads: %s", msg);
		goto out;
	}
	/* The CLI's closing lines: the file's accounting, the classes. */
	file_summary_json_line(r->out, &(struct file_summary){ .path = name,
							       .kind = res.kind,
							       .linktype = res.linktype,
							       .counts = &res.counts,
							       .stats = &res.stats,
							       .partial = res.partial,
							       .error = why });
	classes_summary_json_line(r->out, c, r->flows, r->flows, r->total);
	if (fclose(r->out) || u->oom || u->pics.oom) {
		u->status = 500;
		snprintf(u->error, sizeof(u->error), "out of memory for the answer");
		goto out;
	}
	u->status = 200;
	if (res.partial) /* counted, not logged: a client could fill the log */
		UPLOAD_BUMP(u, web_upload_partial, 1);
	if (u->store) {
		rc = store_upload(u, c, err, sizeof(err));
		if (rc < 0) {
			/* The reason in the log, as for any store failure. */
			log_error("web: the upload %s of %s was not stored: %s", name, u->user,
				  err);
			UPLOAD_BUMP(u, web_upload_store_failed, 1);
			u->status = 500;
			snprintf(u->error, sizeof(u->error),
				 "the verdicts were classified but not stored (the reason is in "
				 "the collector's log)");
		}
		UPLOAD_BUMP(u, web_upload_stored, u->stored);
	}
out:
	classifier_free(c);
	if (r)
		free(r->cellbuf);
	free(r);
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
	result_free(u);
	/* The head is still in: its parameters were checked by upload_prepare(). */
	u->store = store_param(c) == 1;
	if (http_param(c, "name", u->name, sizeof(u->name)) < 0)
		u->name[0] = '\0';
	snprintf(u->user, sizeof(u->user), "%s", c->sess ? c->sess->user : "");
	u->st = &w->st;
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

static int pic_cmp(const void *x, const void *y)
{
	const struct up_pic *a = x, *b = y;

	if (a->flow_id != b->flow_id)
		return a->flow_id < b->flow_id ? -1 : 1;
	return a->block_index < b->block_index ? -1 : a->block_index > b->block_index;
}

/* {"lines":[...every line...],"pictures":{"FLOW_ID":[{"block_index":K,
 * "cells":{...}|null},...],...}[,"stored":{...}]} from the worker's. */
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
	sbuf_puts(&b, "],\"pictures\":{");
	qsort(u->pic, u->npic, sizeof(*u->pic), pic_cmp);
	for (i = 0; i < u->npic; i++) {
		const struct up_pic *p = &u->pic[i];

		if (!i || p->flow_id != p[-1].flow_id)
			sbuf_printf(&b, "%s\"%" PRIu64 "\":[", i ? "]," : "", p->flow_id);
		else
			sbuf_add(&b, ",", 1);
		sbuf_printf(&b, "{\"block_index\":%" PRIu64 ",\"cells\":", p->block_index);
		sbuf_add(&b, u->pics.p + p->off, p->len);
		sbuf_add(&b, "}", 1);
	}
	sbuf_puts(&b, u->npic ? "]}" : "}");
	if (u->store) {
		sbuf_puts(&b, ",\"stored\":{\"agent_id\":\"" UPLOAD_AGENT_ID "\",\"host\":");
		sbuf_json_str(&b, u->user, strlen(u->user));
		sbuf_puts(&b, ",\"interface\":");
		sbuf_json_str(&b, u->iface, strlen(u->iface));
		sbuf_printf(&b,
			    ",\"run_id\":%" PRIu64 ",\"verdicts\":%zu,\"stored\":%" PRIu64
			    ",\"duplicates\":%" PRIu64 "}",
			    u->run_id, u->nv, u->stored, u->duplicates);
	}
	sbuf_add(&b, "}", 1);
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
	result_free(u);
}
