// SPDX-License-Identifier: MIT
/*
 * publish.c - stored verdicts onto NATS JetStream; see publish.h.
 *
 * The store thread (server_int.h) stages each batch's messages as it puts
 * it into the store and hands them over as one group when the transaction
 * commits; the loop only reads the "done" mark.
 * The publisher thread takes the groups in order: it sends a group's
 * messages with js_PublishMsgAsync, waits for their acks (bounded), takes
 * back what got an error or no ack and sends it again, with the same
 * Nats-Msg-Id, until JetStream has acknowledged all of them; then it moves
 * the "done" mark to the group's id and pokes the eventfd.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "core/clock.h"
#include "core/log.h"
#include "publish.h"

struct pub_entry {
	const char *subject, *msgid;
	const uint8_t *data;
	int len;
	/* the strings and the payload follow */
};

struct pub_group {
	uint64_t id;
	struct pub_entry **e;
	size_t n;
	struct pub_group *next;
};

struct publisher {
	struct publish_config cfg;
	natsOptions *opts;
	natsConnection *nc;
	jsCtx *js;
	uint64_t backlog_max;
	int efd;
	/* The store thread's: the open transaction's messages, batch k's from bstart[k]. */
	struct pub_entry **stg;
	size_t nstg, capstg;
	size_t *bstart;
	size_t nb, capb;
	uint64_t next_id;
	/* Shared with the thread. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct pub_group *head, *tail;
	bool stop, started;
	bool stream_ready; /* the stream exists (the thread's, once started) */
	uint64_t stream_warned_ns;
	pthread_t thr;
	/* Messages back from the ack handler (no ack but an error). */
	pthread_mutex_t fmu;
	natsMsg **failed;
	size_t nfailed, capfailed;
	_Atomic uint64_t done, backlog, published, duplicates, errors;
};

/* ---- messages ---- */

/* A subject token: no '.', '*', '>', space or control character. */
static void subject_token(char *out, const char *in)
{
	for (; *in; in++, out++)
		*out = (*in == '.' || *in == '*' || *in == '>' || (unsigned char)*in <= ' ' ||
			*in == 0x7f) ?
			       '_' :
			       *in;
	*out = 0;
}

/* A header value: no CR or LF. */
static void header_value(char *out)
{
	for (; *out; out++)
		if (*out == '\r' || *out == '\n')
			*out = '_';
}

static struct pub_entry *entry_new(const Flowpic__V1__Batch *b, Flowpic__V1__Verdict *v)
{
	Flowpic__V1__Batch one = FLOWPIC__V1__BATCH__INIT;
	size_t id_len = strlen(b->agent->agent_id), len, subj, mid;
	struct pub_entry *e;
	char *p;

	one.agent = b->agent;
	one.sequence = b->sequence;
	one.model = b->model;
	one.n_verdicts = 1;
	one.verdicts = &v;
	len = flowpic__v1__batch__get_packed_size(&one);
	subj = sizeof(PUBLISH_SUBJECT_PREFIX) + id_len;
	mid = id_len + 2 * 21 + 1;
	e = malloc(sizeof(*e) + subj + mid + len);
	if (!e)
		return NULL;
	p = (char *)(e + 1);
	memcpy(p, PUBLISH_SUBJECT_PREFIX, sizeof(PUBLISH_SUBJECT_PREFIX) - 1);
	subject_token(p + sizeof(PUBLISH_SUBJECT_PREFIX) - 1, b->agent->agent_id);
	e->subject = p;
	p += subj;
	snprintf(p, mid, "%s/%" PRIu64 "/%" PRIu64, b->agent->agent_id, b->agent->run_id, v->seq);
	header_value(p);
	e->msgid = p;
	p += mid;
	flowpic__v1__batch__pack(&one, (uint8_t *)p);
	e->data = (const uint8_t *)p;
	e->len = (int)len;
	return e;
}

static void group_free(struct pub_group *g)
{
	size_t i;

	for (i = 0; i < g->n; i++)
		free(g->e[i]);
	free(g->e);
	free(g);
}

/* ---- the thread ---- */

static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	struct publisher *p = closure;

	(void)js;
	if (pa) {
		atomic_fetch_add(&p->published, 1);
		if (pa->Duplicate)
			atomic_fetch_add(&p->duplicates, 1);
		natsMsg_Destroy(msg);
		return;
	}
	/* An error (no stream leader, no responders...): kept to send again. */
	atomic_fetch_add(&p->errors, 1);
	pthread_mutex_lock(&p->fmu);
	if (p->nfailed < p->capfailed) /* room for the whole group: send_group */
		p->failed[p->nfailed++] = msg;
	else
		natsMsg_Destroy(msg);
	pthread_mutex_unlock(&p->fmu);
	(void)pae;
}

/* Sleep ms unless stopped; true: stopped. */
static bool nap(struct publisher *p, int ms)
{
	struct timespec ts;
	bool stop;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	ts.tv_sec += ms / 1000 + ts.tv_nsec / 1000000000;
	ts.tv_nsec %= 1000000000;
	pthread_mutex_lock(&p->mu);
	if (!p->stop)
		pthread_cond_timedwait(&p->cv, &p->mu, &ts);
	stop = p->stop;
	pthread_mutex_unlock(&p->mu);
	return stop;
}

/* Send the group until every message is acknowledged.  true: done;
 * false: stopped first, or out of memory. */
static bool send_group(struct publisher *p, const struct pub_group *g)
{
	natsMsg **to_send = calloc(g->n ? g->n : 1, sizeof(*to_send));
	size_t nsend = 0, i;
	int backoff = 100;
	bool ok = false;

	if (!to_send)
		return false;
	/* Each message fails at most once a round: the handler never allocates. */
	pthread_mutex_lock(&p->fmu);
	if (p->capfailed < g->n) {
		natsMsg **n = realloc(p->failed, g->n * sizeof(*n));

		if (n) {
			p->failed = n;
			p->capfailed = g->n;
		}
	}
	pthread_mutex_unlock(&p->fmu);
	if (p->capfailed < g->n)
		goto out;
	for (i = 0; i < g->n; i++) {
		natsMsg *m = NULL;

		if (natsMsg_Create(&m, g->e[i]->subject, NULL, (const char *)g->e[i]->data,
				   g->e[i]->len) != NATS_OK ||
		    natsMsgHeader_Set(m, "Nats-Msg-Id", g->e[i]->msgid) != NATS_OK) {
			natsMsg_Destroy(m);
			goto out;
		}
		to_send[nsend++] = m;
	}
	while (nsend) {
		jsPubOptions po;
		natsMsgList pend = { 0 };
		natsStatus s;
		size_t kept = 0;

		for (i = 0; i < nsend; i++) {
			if (js_PublishMsgAsync(p->js, &to_send[i], NULL) != NATS_OK) {
				atomic_fetch_add(&p->errors, 1);
				to_send[kept++] = to_send[i]; /* still ours: sent again below */
			}
		}
		nsend = kept;
		jsPubOptions_Init(&po);
		po.MaxWait = PUBLISH_ACK_WAIT_MS;
		s = js_PublishAsyncComplete(p->js, &po);
		if (s != NATS_OK && js_PublishAsyncGetPendingList(&pend, p->js) == NATS_OK) {
			/* No ack in time (a node gone with them): ours again. */
			atomic_fetch_add(&p->errors, (uint64_t)pend.Count);
			for (i = 0; i < (size_t)pend.Count; i++) {
				to_send[nsend++] = pend.Msgs[i];
				pend.Msgs[i] = NULL;
			}
			natsMsgList_Destroy(&pend);
		}
		pthread_mutex_lock(&p->fmu);
		for (i = 0; i < p->nfailed; i++)
			to_send[nsend++] = p->failed[i];
		p->nfailed = 0;
		pthread_mutex_unlock(&p->fmu);
		if (!nsend)
			break;
		if (nap(p, backoff))
			goto out;
		backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
	}
	ok = true;
out:
	for (i = 0; i < nsend; i++)
		natsMsg_Destroy(to_send[i]);
	free(to_send);
	return ok;
}

static int ensure_stream(struct publisher *p, const struct publish_config *cfg, char *err,
			 size_t errlen);

/* The stream, from the thread when the collector started before any server
 * answered; a refusal is logged at most every 30 s (and counted). */
static bool stream_try(struct publisher *p)
{
	char err[512];
	uint64_t now = clock_mono_ns();

	if (natsConnection_Status(p->nc) != NATS_CONN_STATUS_CONNECTED)
		return false;
	if (ensure_stream(p, &p->cfg, err, sizeof(err)) == 0) {
		p->stream_ready = true;
		return true;
	}
	atomic_fetch_add(&p->errors, 1);
	if (!p->stream_warned_ns || now - p->stream_warned_ns >= 30000000000ull) {
		log_warn("nats: %s; retrying (acks are held)", err);
		p->stream_warned_ns = now;
	}
	return false;
}

static void *run(void *arg)
{
	struct publisher *p = arg;

	for (;;) {
		struct pub_group *g;
		uint64_t one = 1;

		pthread_mutex_lock(&p->mu);
		while (!p->head && !p->stop)
			pthread_cond_wait(&p->cv, &p->mu);
		g = p->stop ? NULL : p->head;
		pthread_mutex_unlock(&p->mu);
		if (!g)
			break;
		if (!p->stream_ready && !stream_try(p)) {
			if (nap(p, 1000))
				break;
			continue; /* not connected yet, or the stream refused: later */
		}
		if (!send_group(p, g)) {
			if (nap(p, 1000))
				break;
			continue; /* out of memory: the group again */
		}
		pthread_mutex_lock(&p->mu);
		p->head = g->next;
		if (!p->head)
			p->tail = NULL;
		atomic_store(&p->done, g->id);
		atomic_fetch_sub(&p->backlog, (uint64_t)g->n);
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
		group_free(g);
		if (write(p->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_error("nats: eventfd: %s", strerror(errno));
	}
	return NULL;
}

/* ---- set-up ---- */

static void on_disconnected(natsConnection *nc, void *closure)
{
	(void)closure;
	if (natsConnection_IsClosed(nc))
		return; /* ours: shutting down */
	log_warn("nats: disconnected: reconnecting (publishes are held and sent again)");
}

static void on_connected(natsConnection *nc, void *closure)
{
	char url[256];

	(void)closure;
	if (natsConnection_GetConnectedUrl(nc, url, sizeof(url)) != NATS_OK)
		snprintf(url, sizeof(url), "?");
	log_warn("nats: connected to %s", url);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
	char url[256];

	(void)closure;
	if (natsConnection_GetConnectedUrl(nc, url, sizeof(url)) != NATS_OK)
		snprintf(url, sizeof(url), "?");
	log_warn("nats: reconnected to %s", url);
}

/* The stream, created if missing (subjects flowpic.v1.verdicts.>). */
static int ensure_stream(struct publisher *p, const struct publish_config *cfg, char *err,
			 size_t errlen)
{
	jsStreamInfo *si = NULL;
	jsStreamConfig sc;
	jsErrCode jerr = 0;
	const char *subjects[] = { PUBLISH_SUBJECT_PREFIX ">" };
	natsStatus s;

	s = js_GetStreamInfo(&si, p->js, cfg->stream, NULL, &jerr);
	if (s == NATS_OK) {
		jsStreamInfo_Destroy(si);
		return 0;
	}
	if (s != NATS_NOT_FOUND) {
		snprintf(err, errlen, "--nats %s: stream %s: %s", cfg->servers, cfg->stream,
			 nats_GetLastError(NULL));
		return -EIO;
	}
	jsStreamConfig_Init(&sc);
	sc.Name = cfg->stream;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Storage = js_FileStorage;
	sc.Replicas = cfg->replicas;
	sc.Duplicates = (int64_t)PUBLISH_DUP_WINDOW_S * 1000000000;
	s = js_AddStream(&si, p->js, &sc, NULL, &jerr);
	if (s != NATS_OK) {
		snprintf(err, errlen, "--nats %s: creating stream %s (%d replicas): %s",
			 cfg->servers, cfg->stream, cfg->replicas, nats_GetLastError(NULL));
		return -EIO;
	}
	jsStreamInfo_Destroy(si);
	log_info("nats: created stream %s (%s>, %d replicas)", cfg->stream, PUBLISH_SUBJECT_PREFIX,
		 cfg->replicas);
	return 0;
}

/* "A,B,C" into urls (pointing into buf); 0, or -EINVAL. */
static int split_servers(const char *in, char *buf, const char **urls, int *n)
{
	char *save = NULL, *t;

	if (strlen(in) >= 1024)
		return -EINVAL;
	strcpy(buf, in);
	*n = 0;
	for (t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (*n == PUBLISH_SERVERS_MAX)
			return -EINVAL;
		urls[(*n)++] = t;
	}
	return *n ? 0 : -EINVAL;
}

struct publisher *publisher_open(const struct publish_config *cfg, char *err, size_t errlen)
{
	struct publisher *p = calloc(1, sizeof(*p));
	const char *urls[PUBLISH_SERVERS_MAX];
	char list[1024];
	jsOptions jo;
	bool connected;
	int n;
	natsStatus s;

	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->backlog_max = cfg->backlog_max;
	p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	pthread_mutex_init(&p->mu, NULL);
	pthread_mutex_init(&p->fmu, NULL);
	pthread_cond_init(&p->cv, NULL);
	if (p->efd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	/* Reconnect forever, fast: a cluster node going away is routine. */
	if (split_servers(cfg->servers, list, urls, &n) < 0) {
		snprintf(err, errlen,
			 "--nats %s: give 1 to %d URLs of at most %zu bytes, comma-separated",
			 cfg->servers, PUBLISH_SERVERS_MAX, sizeof(list) - 1);
		goto fail;
	}
	s = natsOptions_Create(&p->opts);
	if (s == NATS_OK)
		s = natsOptions_SetServers(p->opts, urls, n);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(p->opts, -1);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(p->opts, 100);
	if (s == NATS_OK)
		s = natsOptions_SetName(p->opts, "flowpic-collector");
	if (s == NATS_OK)
		s = natsOptions_SetDisconnectedCB(p->opts, on_disconnected, NULL);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectedCB(p->opts, on_reconnected, NULL);
	if (s == NATS_OK && cfg->creds)
		s = natsOptions_SetUserCredentialsFromFiles(p->opts, cfg->creds, NULL);
	if (s == NATS_OK && (cfg->ca || cfg->cert))
		s = natsOptions_SetSecure(p->opts, true);
	if (s == NATS_OK && cfg->ca)
		s = natsOptions_LoadCATrustedCertificates(p->opts, cfg->ca);
	if (s == NATS_OK && cfg->cert)
		s = natsOptions_LoadCertificatesChain(p->opts, cfg->cert, cfg->key);
	if (s != NATS_OK) {
		snprintf(err, errlen, "--nats %s: %s", cfg->servers, nats_GetLastError(NULL));
		goto fail;
	}
	p->cfg = *cfg;
	s = natsConnection_Connect(&p->nc, p->opts);
	connected = s == NATS_OK;
	if (!connected) {
		/* Started before the servers (a reboot, a cluster restart), or
		 * refused by them: say why once, then keep trying. */
		char why[256];

		snprintf(why, sizeof(why), "%s", nats_GetLastError(NULL));
		s = natsOptions_SetRetryOnFailedConnect(p->opts, true, on_connected, NULL);
		if (s == NATS_OK)
			s = natsConnection_Connect(&p->nc, p->opts);
		if (s == NATS_NOT_YET_CONNECTED)
			log_warn("--nats %s: not connected (%s): trying on in the background; "
				 "acks wait for JetStream, at most --nats-backlog verdicts",
				 cfg->servers, why[0] ? why : "no server reachable");
		else if (s == NATS_OK)
			connected = true;
	}
	if (!connected && s != NATS_NOT_YET_CONNECTED) {
		snprintf(err, errlen, "--nats %s: cannot connect: %s", cfg->servers,
			 nats_GetLastError(NULL));
		goto fail;
	}
	jsOptions_Init(&jo);
	jo.PublishAsync.AckHandler = on_ack;
	jo.PublishAsync.AckHandlerClosure = p;
	/* The backlog bound is ours: the library never stalls a publish. */
	jo.PublishAsync.MaxPending = (int64_t)cfg->backlog_max + 1;
	s = natsConnection_JetStream(&p->js, p->nc, &jo);
	if (s != NATS_OK) {
		snprintf(err, errlen, "--nats %s: JetStream: %s", cfg->servers,
			 nats_GetLastError(NULL));
		goto fail;
	}
	/* Connected now: a stream the server refuses is a start-up error. */
	if (connected) {
		if (ensure_stream(p, cfg, err, errlen) < 0)
			goto fail;
		p->stream_ready = true;
	}
	if (pthread_create(&p->thr, NULL, run, p)) {
		snprintf(err, errlen, "nats: cannot start the publisher thread");
		goto fail;
	}
	p->started = true;
	return p;
fail:
	publisher_close(p);
	return NULL;
}

void publisher_close(struct publisher *p)
{
	struct pub_group *g;
	size_t i;

	if (!p)
		return;
	if (p->started) {
		pthread_mutex_lock(&p->mu);
		p->stop = true;
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
		pthread_join(p->thr, NULL);
	}
	jsCtx_Destroy(p->js);
	natsConnection_Destroy(p->nc);
	natsOptions_Destroy(p->opts);
	while ((g = p->head)) {
		p->head = g->next;
		group_free(g);
	}
	publisher_drop(p);
	for (i = 0; i < p->nfailed; i++)
		natsMsg_Destroy(p->failed[i]);
	free(p->failed);
	free(p->stg);
	free(p->bstart);
	if (p->efd >= 0)
		close(p->efd);
	pthread_mutex_destroy(&p->mu);
	pthread_mutex_destroy(&p->fmu);
	pthread_cond_destroy(&p->cv);
	free(p);
	/* The library's own threads and memory (one publisher per process). */
	nats_CloseAndWait(2000);
}

int publisher_fd(const struct publisher *p)
{
	return p->efd;
}

/* ---- the store thread's side ---- */

int publisher_stage(struct publisher *p, const Flowpic__V1__Batch *b)
{
	size_t i, first = p->nstg;

	if (p->nb == p->capb) {
		size_t cap = p->capb ? 2 * p->capb : 64;
		size_t *n = realloc(p->bstart, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		p->bstart = n;
		p->capb = cap;
	}
	for (i = 0; i < b->n_verdicts; i++) {
		struct pub_entry *e;

		if (!b->verdicts[i]->seq)
			continue; /* refused by the store (Ack.rejected) */
		if (p->nstg == p->capstg) {
			size_t cap = p->capstg ? 2 * p->capstg : 1024;
			struct pub_entry **n = realloc(p->stg, cap * sizeof(*n));

			if (!n)
				goto nomem;
			p->stg = n;
			p->capstg = cap;
		}
		e = entry_new(b, b->verdicts[i]);
		if (!e)
			goto nomem;
		p->stg[p->nstg++] = e;
	}
	p->bstart[p->nb++] = first;
	return 0;
nomem:
	while (p->nstg > first)
		free(p->stg[--p->nstg]);
	return -ENOMEM;
}

void publisher_drop(struct publisher *p)
{
	while (p->nstg)
		free(p->stg[--p->nstg]);
	p->nb = 0;
}

int64_t publisher_commit(struct publisher *p, const struct store_batch_result *res, size_t nres)
{
	struct pub_group *g = calloc(1, sizeof(*g));
	uint64_t id;
	size_t k, i;

	if (nres != p->nb)
		log_error("nats: %zu batches staged, %zu committed: publishing what matches", p->nb,
			  nres);
	if (!g || atomic_load(&p->backlog) + p->nstg > p->backlog_max) {
		free(g);
		publisher_drop(p);
		return -ENOBUFS;
	}
	/* The entries move to the group: those of batches the store refused
	 * are freed instead. */
	g->e = p->stg;
	for (k = 0; k < p->nb; k++) {
		size_t end = k + 1 < p->nb ? p->bstart[k + 1] : p->nstg;
		bool ok = k < nres && !res[k].error;

		for (i = p->bstart[k]; i < end; i++) {
			if (ok)
				g->e[g->n++] = p->stg[i];
			else
				free(p->stg[i]);
		}
	}
	p->stg = NULL;
	p->nstg = p->capstg = p->nb = 0;
	id = g->id = ++p->next_id;
	atomic_fetch_add(&p->backlog, (uint64_t)g->n);
	pthread_mutex_lock(&p->mu);
	if (p->tail)
		p->tail->next = g;
	else
		p->head = g;
	p->tail = g;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	/* Not g->id: once unlocked, the thread may have sent and freed g. */
	return (int64_t)id;
}

uint64_t publisher_done(struct publisher *p)
{
	uint64_t v;

	if (read(p->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_error("nats: eventfd: %s", strerror(errno));
	return atomic_load(&p->done);
}

void publisher_flush(struct publisher *p, int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	ts.tv_sec += ts.tv_nsec / 1000000000;
	ts.tv_nsec %= 1000000000;
	pthread_mutex_lock(&p->mu);
	while (p->head && !p->stop)
		if (pthread_cond_timedwait(&p->cv, &p->mu, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&p->mu);
}

void publisher_counters(const struct publisher *p, struct collector_counters *k)
{
	k->nats_published = atomic_load(&p->published);
	k->nats_duplicates = atomic_load(&p->duplicates);
	k->nats_errors = atomic_load(&p->errors);
	k->nats_backlog = atomic_load(&p->backlog);
}

/* ---- --db none ---- */

static int none_put(struct store *s, Flowpic__V1__Batch *b, uint64_t now_ns, size_t idx,
		    struct store_batch_result *res, char *err, size_t errlen)
{
	size_t i;

	(void)now_ns;
	(void)idx;
	(void)err;
	(void)errlen;
	for (i = 0; i < b->n_verdicts; i++)
		if (!b->verdicts[i]->seq)
			res->rejected++;
	res->stored = (uint32_t)b->n_verdicts - res->rejected;
	flowpic__v1__batch__free_unpacked(b, NULL);
	s->in_txn = true;
	return 0;
}

static int none_commit(struct store *s, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	s->in_txn = false;
	return 0;
}

static int none_query(struct store *s, const struct store_filter *f, store_row_cb cb, void *ctx,
		      char *err, size_t errlen)
{
	(void)s;
	(void)f;
	(void)cb;
	(void)ctx;
	snprintf(err, errlen, "--db none: nothing is stored to query");
	return -EIO;
}

static int none_get_cells(struct store *s, const char *agent_id, uint64_t run_id, uint64_t seq,
			  uint8_t **blob, size_t *len, char *err, size_t errlen)
{
	(void)s;
	(void)agent_id;
	(void)run_id;
	(void)seq;
	(void)blob;
	(void)len;
	snprintf(err, errlen, "--db none: nothing is stored");
	return -ENOENT;
}

static void none_close(struct store *s)
{
	free(s);
}

static const struct store_ops none_ops = { "none",     none_put,       none_commit,
					   none_query, none_get_cells, none_close };

struct store *store_none_open(void)
{
	struct store *s = calloc(1, sizeof(*s));

	if (s)
		s->ops = &none_ops;
	return s;
}
