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
#include "stream/stream.h"
#include "upload.h"
#include "web_int.h"

#define UPLOAD_AGENT_ID "upload"
#define UPLOAD_NAME_MAX 256  /* bytes of the file name kept (?name=) */
#define UPLOAD_BATCH 500     /* verdicts per stored batch, as the agent's default */
#define UPLOAD_BUSY_MS 10000 /* SQLite: wait this long for the collector's lock */
#define UPLOAD_PIC_MAX STREAM_PICTURE_CELLS_MAX /* more pixels: the agent sends none */

/* One verdict to store, as the agent would send it (agent/forward.c). */
struct up_verdict {
	uint64_t flow_id, block_index, start_ns, duration_ns;
	uint64_t packets[2], bytes[2]; /* fwd, rev: payload bytes */
	uint32_t blocks;	       /* FINAL: blocks combined */
	uint32_t cls;
	enum classify_reason reason;
	Flowpic__V1__Stage stage;
	uint8_t proto;
	uint16_t sport, dport;
	uint8_t src[16], dst[16];
	float confidence;
	float prob[CLASSIFY_MAX_CLASSES];
	bool pic; /* a picture: pic_n pixels from pic_off of the upload's */
	size_t pic_off;
	uint32_t pic_n;
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
	uint32_t *px_index; /* store: the pictures' pixels */
	uint8_t *px_count;
	size_t npx, cappx;
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
	free(u->px_index);
	free(u->px_count);
	u->px_index = NULL;
	u->px_count = NULL;
	u->npx = u->cappx = 0;
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

static struct up_verdict *verdict_add(struct upload *u, const struct flow *f)
{
	struct up_verdict *v;

	if (u->oom || !grow((void **)&u->v, &u->capv, u->nv, sizeof(*u->v))) {
		u->oom = true;
		return NULL;
	}
	v = &u->v[u->nv++];
	memset(v, 0, sizeof(*v));
	v->flow_id = f->id;
	v->proto = f->key.proto;
	v->sport = f->key.port_a;
	v->dport = f->key.port_b;
	memcpy(v->src, f->key.a, 16);
	memcpy(v->dst, f->key.b, 16);
	return v;
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
	struct up_verdict *v;
	struct up_pic *e;
	uint32_t i;

	(void)c;
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
	if (!u->store)
		return;
	v = verdict_add(u, f);
	if (!v)
		return;
	v->stage = bv->early ? FLOWPIC__V1__STAGE__STAGE_EARLY : FLOWPIC__V1__STAGE__STAGE_BLOCK;
	v->start_ns = b->start_ns;
	/* A partial block spans to the flow's last packet. */
	v->duration_ns = b->complete		  ? r->window_ns :
			 f->last_ns > b->start_ns ? f->last_ns - b->start_ns :
						    0;
	v->packets[0] = b->samples[0];
	v->packets[1] = b->samples[1];
	v->bytes[0] = b->bytes[0];
	v->bytes[1] = b->bytes[1];
	v->block_index = bv->index;
	v->cls = bv->cls;
	v->reason = bv->reason;
	v->confidence = bv->confidence;
	memcpy(v->prob, bv->prob, sizeof(v->prob));
	if (!has)
		return;
	if (u->npx + p->n > u->cappx) {
		size_t cap = u->cappx ? u->cappx : 4096;
		uint32_t *ix;
		uint8_t *ct;

		while (cap < u->npx + p->n)
			cap *= 2;
		ix = realloc(u->px_index, cap * sizeof(*ix));
		if (ix)
			u->px_index = ix;
		ct = ix ? realloc(u->px_count, cap) : NULL;
		if (!ct) {
			u->oom = true;
			return;
		}
		u->px_count = ct;
		u->cappx = cap;
	}
	for (i = 0; i < p->n; i++) {
		u->px_index[u->npx + i] = p->index[i];
		u->px_count[u->npx + i] = p->count[i];
	}
	v->pic = true;
	v->pic_off = u->npx;
	v->pic_n = p->n;
	u->npx += p->n;
}

static void on_flow(void *ctx, const struct classifier *c, const struct flow *f,
		    enum flow_end_reason why, const struct flow_verdict *fv)
{
	struct run *r = ctx;
	struct up_verdict *v;

	verdict_json_line(r->out, c, f, why, NULL, fv);
	r->flows++;
	class_totals_add(r->total, c, f, fv);
	if (!r->u->store || !(v = verdict_add(r->u, f)))
		return;
	/* As forward_flow() sends it. */
	v->stage = FLOWPIC__V1__STAGE__STAGE_FINAL;
	v->start_ns = f->first_ns;
	v->duration_ns = f->last_ns - f->first_ns;
	v->packets[0] = f->packets[0];
	v->packets[1] = f->packets[1];
	v->bytes[0] = f->payload[0];
	v->bytes[1] = f->payload[1];
	v->blocks = fv->blocks;
	v->cls = fv->cls;
	v->reason = fv->reason;
	v->confidence = fv->confidence;
	memcpy(v->prob, fv->prob, sizeof(v->prob));
}

/* ---- the worker: store ---- */

static Flowpic__V1__Reason pb_reason(enum classify_reason r)
{
	switch (r) {
	case CLASSIFY_OK:
		return FLOWPIC__V1__REASON__REASON_OK;
	case CLASSIFY_OTHER:
		return FLOWPIC__V1__REASON__REASON_OTHER;
	case CLASSIFY_SPARSE:
		return FLOWPIC__V1__REASON__REASON_SPARSE;
	case CLASSIFY_DISAGREE:
		return FLOWPIC__V1__REASON__REASON_DISAGREE;
	case CLASSIFY_LOW_CONFIDENCE:
		return FLOWPIC__V1__REASON__REASON_LOW_CONFIDENCE;
	case CLASSIFY_UNTRACKED:
		return FLOWPIC__V1__REASON__REASON_UNTRACKED;
	default:
		return FLOWPIC__V1__REASON__REASON_UNSPECIFIED;
	}
}

static const uint8_t v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* 4 bytes for IPv4 (IPv4-mapped in memory), else 16: as the agent sends them. */
static ProtobufCBinaryData pb_addr(const uint8_t a[16])
{
	bool v4 = !memcmp(a, v4_mapped, sizeof(v4_mapped));

	return (ProtobufCBinaryData){ v4 ? 4 : 16, (uint8_t *)(v4 ? a + 12 : a) };
}

/* Verdicts [from, from + n) of the upload as Batch seq (1, 2, ...), packed
 * and unpacked again: the store gets what it gets from a gRPC call.  NULL
 * with err on failure. */
static Flowpic__V1__Batch *batch_make(struct upload *u, const struct classifier *c, size_t from,
				      size_t n, uint64_t seq, char *err, size_t errlen)
{
	const struct model *m = classifier_model(c);
	Flowpic__V1__Agent agent = FLOWPIC__V1__AGENT__INIT;
	Flowpic__V1__Model model = FLOWPIC__V1__MODEL__INIT;
	Flowpic__V1__Batch b = FLOWPIC__V1__BATCH__INIT;
	Flowpic__V1__Verdict *pv = calloc(n, sizeof(*pv)), **pp = calloc(n, sizeof(*pp));
	Flowpic__V1__FlowKey *key = calloc(n, sizeof(*key));
	Flowpic__V1__Span *span = calloc(n, sizeof(*span));
	Flowpic__V1__Cells *cells = calloc(n, sizeof(*cells));
	uint32_t *delta = calloc(u->npx ? u->npx : 1, sizeof(*delta));
	uint32_t *count = calloc(u->npx ? u->npx : 1, sizeof(*count));
	Flowpic__V1__Batch *out = NULL;
	uint8_t *buf = NULL;
	size_t i, len;
	uint32_t k;

	if (!pv || !pp || !key || !span || !cells || !delta || !count)
		goto oom;
	agent.host = u->user;
	agent.agent_id = UPLOAD_AGENT_ID;
	agent.run_id = u->run_id;
	agent.version = "flowpic-collector " FLOWPIC_VERSION " upload";
	model.name = m->name;
	model.version = m->version;
	model.n_classes = m->n_classes;
	model.classes = m->classes;
	b.agent = &agent;
	b.sequence = seq;
	b.model = &model;
	b.n_verdicts = n;
	b.verdicts = pp;
	for (i = 0; i < n; i++) {
		const struct up_verdict *v = &u->v[from + i];
		Flowpic__V1__Verdict *x = &pv[i];

		flowpic__v1__verdict__init(x);
		flowpic__v1__flow_key__init(&key[i]);
		flowpic__v1__span__init(&span[i]);
		pp[i] = x;
		x->seq = from + i + 1;
		x->interface = u->name;
		key[i].src_addr = pb_addr(v->src);
		key[i].dst_addr = pb_addr(v->dst);
		key[i].src_port = v->sport;
		key[i].dst_port = v->dport;
		key[i].protocol = v->proto;
		x->flow = &key[i];
		x->direction = FLOWPIC__V1__DIRECTION__DIRECTION_UNSPECIFIED; /* a file */
		x->flow_id = v->flow_id;
		x->stage = v->stage;
		span[i].start_unix_ns = v->start_ns;
		span[i].duration_ns = v->duration_ns;
		span[i].packets_fwd = v->packets[0];
		span[i].packets_rev = v->packets[1];
		span[i].bytes_fwd = v->bytes[0];
		span[i].bytes_rev = v->bytes[1];
		span[i].block_index = v->block_index;
		span[i].blocks = v->blocks;
		x->span = &span[i];
		x->class_name = (char *)classifier_class_name(c, v->cls);
		x->confidence = v->confidence;
		x->n_probs = m->n_classes;
		x->probs = (float *)v->prob;
		x->reason = pb_reason(v->reason);
		if (v->pic) {
			Flowpic__V1__Cells *cl = &cells[i];

			flowpic__v1__cells__init(cl);
			cl->rows = cl->cols = m->res;
			cl->dirs = (Flowpic__V1__PictureDirs)m->dirs;
			cl->window_ns = u->window_ns;
			cl->n_index_delta = cl->n_count = v->pic_n;
			cl->index_delta = delta + v->pic_off;
			cl->count = count + v->pic_off;
			for (k = 0; k < v->pic_n; k++) {
				uint32_t at = u->px_index[v->pic_off + k];

				/* The first index, then the gaps (stream/encode.c). */
				delta[v->pic_off + k] = k ? at - u->px_index[v->pic_off + k - 1] :
							    at;
				count[v->pic_off + k] = u->px_count[v->pic_off + k];
			}
			x->cells = cl;
		}
	}
	len = flowpic__v1__batch__get_packed_size(&b);
	buf = malloc(len ? len : 1);
	if (!buf)
		goto oom;
	flowpic__v1__batch__pack(&b, buf);
	out = flowpic__v1__batch__unpack(NULL, len, buf);
	if (!out)
		snprintf(err, errlen, "upload batch %" PRIu64 ": does not decode", seq);
	goto done;
oom:
	snprintf(err, errlen, "out of memory making the upload's batch %" PRIu64, seq);
done:
	free(buf);
	free(count);
	free(delta);
	free(cells);
	free(span);
	free(key);
	free(pp);
	free(pv);
	return out;
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
	for (i = 0; i < nb && !rc; i++) {
		size_t from = i * UPLOAD_BATCH, n = u->nv - from;

		b[i] = batch_make(u, c, from, n < UPLOAD_BATCH ? n : UPLOAD_BATCH, i + 1, err,
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
		sbuf_json_str(&b, u->name[0] ? u->name : UPLOAD_AGENT_ID,
			      strlen(u->name[0] ? u->name : UPLOAD_AGENT_ID));
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
