// SPDX-License-Identifier: MIT
/*
 * server.c - the loop: listening socket, signals, accepting connections,
 * groups cut for the store thread and the acks their results release,
 * timeouts.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "rpc/grpc_status.h"
#include "rpc/hostport.h"
#include "core/log.h"
#include "health.h"
#include "publish.h"
#include "server_int.h"

void server_config_default(struct server_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->listen = "127.0.0.1:50051";
	cfg->max_message = GRPC_DEFAULT_MAX_MESSAGE;
	cfg->max_streams = 16;
	cfg->max_connections = 1024;
	cfg->max_per_source = 64;
	cfg->max_buffered = 256ull << 20;
	cfg->message_timeout_ms = 30000;
	cfg->max_pending_acks = 4096;
	cfg->idle_timeout_ms = 600000;
	cfg->slow_timeout_ms = 30000;
	cfg->handshake_timeout_ms = 10000;
	cfg->commit_max = 20000;
	cfg->commit_delay_ms = 50;
}

void peer_warn(struct server *s, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (log_get_level() < LOG_WARN)
		return;
	if (!ratelog_allow(&s->peer_log, clock_mono_ms())) {
		s->k.log_suppressed++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_warn("%s", line);
}

static void listener_events(struct server *s, uint32_t ev)
{
	struct epoll_event e = { .events = ev, .data.ptr = &s->lfd };

	epoll_ctl(s->ep, EPOLL_CTL_MOD, s->lfd, &e);
}

static void accept_pause(struct server *s)
{
	if (s->accept_paused)
		return;
	listener_events(s, 0);
	s->accept_paused = true;
	s->accept_paused_ms = clock_mono_ms();
}

void accept_resume(struct server *s)
{
	if (!s->accept_paused)
		return;
	listener_events(s, EPOLLIN);
	s->accept_paused = false;
}

static void accept_all(struct server *s)
{
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		char peer[64];
		int fd;

		fd = accept4(s->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			/* EMFILE, ENFILE, ENOBUFS: the listener stays readable, so
			 * polling it would spin; wait for a close or a second. */
			s->k.err_accept++;
			peer_warn(s,
				  "accept: %s: not accepting for 1 s or until a connection closes",
				  strerror(errno));
			accept_pause(s);
			return;
		}
		peer_name(&ss, peer, sizeof(peer));
		h2conn_adopt(s, fd, peer);
	}
}

int server_adopt(struct server *s, int fd, const char *peer)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	return h2conn_adopt(s, fd, peer);
}

unsigned server_connections(const struct server *s)
{
	return s->nconns;
}

/* ---- groups, commits and acks ---- */

static struct store_group *group_new(struct server *s)
{
	struct store_group *g = s->spare;

	if (g)
		s->spare = NULL;
	else if (!(g = calloc(1, sizeof(*g))))
		return NULL;
	g->n = 0;
	g->verdicts = 0;
	g->id = ++s->next_group;
	return g;
}

static void group_free(struct store_group *g)
{
	size_t i;

	if (!g)
		return;
	for (i = 0; i < g->n; i++)
		if (g->b[i].b)
			flowpic__v1__batch__free_unpacked(g->b[i].b, NULL);
	free(g->b);
	free(g->res);
	free(g->sidx);
	free(g);
}

long group_add(struct server *s, Flowpic__V1__Batch *b)
{
	struct store_group *g = s->open;

	if (g->n == g->cap) {
		size_t cap = g->cap ? 2 * g->cap : 256;
		struct group_batch *nb = realloc(g->b, cap * sizeof(*nb));

		if (!nb) {
			flowpic__v1__batch__free_unpacked(b, NULL);
			return -ENOMEM;
		}
		g->b = nb;
		g->cap = cap;
	}
	if (!g->n)
		g->start_ms = clock_mono_ms();
	g->b[g->n].b = b;
	g->b[g->n].now_ns = clock_real_ns();
	g->verdicts += b->n_verdicts;
	return (long)g->n++;
}

bool server_store_full(struct server *s)
{
	if (s->open->verdicts < s->cfg.commit_max)
		return false;
	if (!s->paused) {
		s->paused = true;
		s->k.store_paused++;
	}
	return true;
}

uint64_t server_store_queued(const struct server *s)
{
	return s->open->verdicts + (s->inflight ? s->inflight->verdicts : 0);
}

bool server_store_locked(const struct server *s)
{
	return atomic_load(&s->st.retry_at_ms) != 0;
}

/* Does the call wait for a result of group gid? */
static bool waits_for(const struct call *st, uint64_t gid)
{
	size_t i;

	for (i = st->uncommitted.head; i < st->uncommitted.len; i++)
		if (st->uncommitted.a[i].group == gid)
			return true;
	return false;
}

/* Group gid failed: the calls waiting for it end UNAVAILABLE; the reason
 * goes to the log only (it may carry another agent's values). */
static void fail_group(struct server *s, uint64_t gid)
{
	struct call *st, *next;

	for (st = s->pending; st; st = next) {
		next = st->next_pending;
		if (!waits_for(st, gid))
			continue;
		st->uncommitted.len = st->uncommitted.head = 0;
		call_fail(st, GRPC_STATUS_UNAVAILABLE, NULL,
			  "store failed (see the collector's log)");
		pending_unlink(s, st);
	}
}

/* Connections with output owed: written now. */
static void flush_dirty(struct server *s)
{
	struct h2conn *c, *cn;

	for (c = s->conns; c; c = cn) {
		cn = c->next;
		if (!c->dirty || c->state != CONN_H2)
			continue;
		if (h2conn_flush(c) < 0)
			h2conn_close(c, "write failed");
		else
			h2conn_settle(c);
	}
}

/* --nats: the call's stored acks whose publish group JetStream has
 * acknowledged go out, in order; the call leaves the pending list when
 * none is held. */
static void release_published(struct server *s, struct call *st, uint64_t done)
{
	struct ackq *q = &st->uncommitted;
	size_t first = q->head;

	while (q->head < q->len && q->a[q->head].pub_group && q->a[q->head].pub_group <= done) {
		if (ackq_push(&st->ready, &q->a[q->head]) == 0)
			st->c->acks_waiting++;
		q->head++;
	}
	if (q->head == q->len) {
		q->len = q->head = 0;
		pending_unlink(s, st);
	} else if (q->head == first) {
		return; /* nothing new for the peer */
	}
	call_wake(st);
}

/* The publisher's eventfd: acks JetStream has earned. */
static void publish_done(struct server *s)
{
	uint64_t done = publisher_done(s->pub);
	struct call *st, *next;

	for (st = s->pending; st; st = next) {
		next = st->next_pending;
		release_published(s, st, done);
	}
	flush_dirty(s);
}

int server_set_publisher(struct server *s, struct publisher *p)
{
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = &s->pub };

	if (s->st.started)
		return -EBUSY; /* the publisher is the store thread's */
	if (epoll_ctl(s->ep, EPOLL_CTL_ADD, publisher_fd(p), &e))
		return -errno;
	s->pub = p;
	s->st.pub = p;
	return 0;
}

/* The store thread's counters and the groups waiting, into the loop's. */
static void store_counters(struct server *s)
{
	s->k.store_busy_retries = atomic_load(&s->st.busy_retries);
	s->k.store_inflight = s->inflight ? 1 : 0;
	s->k.store_queued_batches = s->open->n;
	s->k.store_queued_verdicts = s->open->verdicts;
}

/* The open group has room again: the connections paused are read again. */
static void release_held(struct server *s)
{
	struct h2conn *c;

	if (!s->paused || server_store_full(s))
		return;
	s->paused = false;
	for (c = s->conns; c; c = c->next)
		h2conn_resume(c);
}

/* The open group to the store thread. */
static void cut_group(struct server *s)
{
	struct store_group *g = group_new(s);

	if (!g)
		return; /* out of memory: the open group waits for the next try */
	s->inflight = s->open;
	s->open = g;
	store_thread_submit(&s->st, s->inflight);
	release_held(s);
	store_counters(s);
}

/* A group came back from the store thread: its results become acks (or,
 * with --nats, acks held for JetStream), counters and call errors. */
static void group_done(struct server *s, struct store_group *g)
{
	const struct store_batch_result *r;
	struct call *st, *next;
	int64_t group = g->pub_group; /* --nats: < 0: the backlog was full */
	uint64_t done;
	size_t i;

	if (g == s->inflight)
		s->inflight = NULL;
	metrics_hist_observe(&s->k.store_commit, (double)g->work_ns / 1e9);
	s->k.store_thread_ms += g->work_ns / 1000000;
	if (g->rc < 0) {
		log_error("%s", g->err);
		s->k.err_store++;
		fail_group(s, g->id);
		goto out;
	}
	if (g->committed)
		s->k.commits++;
	for (i = 0; i < g->n; i++) {
		r = &g->res[i];
		s->k.verdicts_stored += r->stored;
		s->k.verdicts_duplicate += r->duplicates;
		s->k.verdicts_rejected += r->rejected;
		s->k.counters_stored += r->counters;
		if (r->error) {
			s->k.err_store_batch++;
			log_error("%s", r->err);
		}
	}
	done = s->pub ? publisher_done(s->pub) : 0;
	for (st = s->pending; st; st = next) {
		struct ackq *q = &st->uncommitted;

		next = st->next_pending;
		for (i = q->head; i < q->len; i++) {
			struct ack *a = &q->a[i];

			if (a->group != g->id) {
				if (a->group > g->id)
					break; /* the open group's, and all after it */
				continue;      /* stored earlier, waiting for JetStream */
			}
			r = a->txn_idx < g->n ? &g->res[a->txn_idx] : NULL;
			if (r && r->error) {
				/* The database refused this batch alone: its call
				 * ends with its own error; acks after it are not sent
				 * (the agent resends them: duplicates). */
				call_fail(st,
					  r->error == -EINVAL ? GRPC_STATUS_INVALID_ARGUMENT :
					  r->error == -ENOMEM ? GRPC_STATUS_RESOURCE_EXHAUSTED :
								GRPC_STATUS_UNAVAILABLE,
					  NULL, "batch %" PRIu64 " not stored: %s", a->sequence,
					  r->err);
				q->len = i;
				break;
			}
			if (r && group < 0) {
				/* Stored, not published: the resend is a duplicate
				 * in the store and is published then. */
				call_fail(st, GRPC_STATUS_UNAVAILABLE, &s->k.err_nats_backlog,
					  "batch %" PRIu64
					  " stored but not published: JetStream backlog full",
					  a->sequence);
				q->len = i;
				break;
			}
			if (r) {
				a->stored = r->stored;
				a->duplicates = r->duplicates;
				a->rejected = r->rejected;
				metrics_hist_observe(&s->k.store_latency,
						     (double)(clock_mono_ns() - a->received_ns) /
							     1e9);
			}
			if (a->rejected)
				peer_warn(s,
					  "%s: stream %d: batch %" PRIu64
					  ": %u verdicts with seq 0 refused",
					  st->c->peer, st->id, a->sequence, a->rejected);
			if (s->pub) {
				if (r)
					a->pub_group = (uint64_t)group;
				continue;
			}
			if (ackq_push(&st->ready, a) == 0)
				st->c->acks_waiting++;
		}
		if (s->pub) {
			release_published(s, st, done);
			continue;
		}
		/* Without --nats the call's acks before the open group's are all
		 * this group's: they are out. */
		q->head = i < q->len ? i : q->len;
		if (q->head == q->len) {
			q->len = q->head = 0;
			pending_unlink(s, st);
		}
		call_wake(st);
	}
out:
	group_free(s->spare);
	s->spare = g;
	release_held(s);
	store_counters(s);
	flush_dirty(s);
}

/* The store thread's eventfd. */
static void store_done(struct server *s)
{
	struct store_group *g = store_thread_take(&s->st, false);

	if (g)
		group_done(s, g);
}

/* Shutting down (or a test's end): the group in flight, then the open one,
 * committed and acknowledged; the thread joined. */
static void store_drain(struct server *s)
{
	struct store_group *g;

	if (s->inflight && (g = store_thread_take(&s->st, true)) != NULL)
		group_done(s, g);
	if (s->open->n) {
		cut_group(s);
		if (s->inflight && (g = store_thread_take(&s->st, true)) != NULL)
			group_done(s, g);
	}
	store_thread_join(&s->st);
	store_counters(s);
}

/* Connections with output owed (streams woken by errors or ends) or with
 * decrypted input OpenSSL holds that epoll cannot announce. */
static void sweep(struct server *s)
{
	struct h2conn *c, *cn;

	for (c = s->conns; c; c = cn) {
		cn = c->next;
		if (c->state != CONN_H2 || c->lingering)
			continue;
		if (c->ssl && SSL_has_pending(c->ssl) && !c->paused) {
			h2conn_read(c);
			continue;
		}
		if (c->dirty) {
			if (h2conn_flush(c) < 0)
				h2conn_close(c, "write failed");
			else
				h2conn_settle(c);
		}
	}
}

/* Close politely: a GOAWAY first (if HTTP/2 started), so the peer knows
 * which calls were seen. */
static void goaway_close(struct h2conn *c)
{
	if (c->h2) {
		nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE,
				      nghttp2_session_get_last_proc_stream_id(c->h2),
				      NGHTTP2_NO_ERROR, NULL, 0);
		h2conn_flush(c);
	}
	h2conn_close(c, NULL);
}

/* Calls whose message stopped arriving half-way: their buffers are given
 * back.  Not while we hold the peer's window (the slow timeout judges it). */
static void check_messages(struct h2conn *c, uint64_t t)
{
	struct server *s = c->srv;
	struct call *st;

	if (c->unconsumed || c->paused)
		return;
	for (st = c->calls; st; st = st->next_in_conn) {
		if (!st->partial_since_ms || st->failed ||
		    t - st->partial_since_ms <= s->cfg.message_timeout_ms)
			continue;
		call_fail(st, GRPC_STATUS_RESOURCE_EXHAUSTED, &s->k.err_message_timeout,
			  "message incomplete after %" PRIu64
			  " ms (%zu of %u bytes; --message-timeout)",
			  t - st->partial_since_ms, grpc_reader_partial(&st->rd),
			  st->rd.msg_len + GRPC_PREFIX_LEN);
		call_drop_partial(st);
	}
}

static void check_timeouts(struct server *s)
{
	uint64_t t = clock_mono_ms();
	struct h2conn *c, *next;

	ratelog_flush(&s->peer_log, t);
	if (s->accept_paused && t - s->accept_paused_ms >= 1000)
		accept_resume(s);
	for (c = s->conns; c; c = next) {
		next = c->next;
		if (c->lingering) {
			if (t - c->linger_since_ms > LINGER_MS)
				h2conn_close(c, "HTTP/2 session ended");
			continue;
		}
		if ((c->state == CONN_TLS_HANDSHAKE || !c->preface_done) &&
		    t - c->created_ms > s->cfg.handshake_timeout_ms) {
			s->k.err_idle_timeout++;
			peer_warn(s, "%s: no %s within %" PRIu64 " ms: closing", c->peer,
				  c->state == CONN_TLS_HANDSHAKE ? "TLS handshake" :
								   "HTTP/2 preface",
				  s->cfg.handshake_timeout_ms);
			h2conn_close(c, NULL);
		} else if (!c->authed && t - c->created_ms > s->cfg.handshake_timeout_ms) {
			/* A slot held without a token: PINGs keep nothing open. */
			s->k.err_auth_timeout++;
			peer_warn(s,
				  "%s: no call with the right token within %" PRIu64 " ms: closing",
				  c->peer, s->cfg.handshake_timeout_ms);
			goaway_close(c);
		} else if (c->stuck_since_ms && t - c->stuck_since_ms > s->cfg.slow_timeout_ms) {
			s->k.err_slow_client++;
			peer_warn(s,
				  "%s: slow client: not reading its acks for %" PRIu64
				  " ms (%zu acks, %zu bytes waiting): closing",
				  c->peer, t - c->stuck_since_ms, c->acks_waiting,
				  c->out_len - c->out_off);
			h2conn_close(c, NULL);
		} else if (t - c->last_active_ms > s->cfg.idle_timeout_ms) {
			s->k.err_idle_timeout++;
			log_info("%s: no call traffic for %" PRIu64 " ms: closing", c->peer,
				 t - c->last_active_ms);
			goaway_close(c);
		} else {
			check_messages(c, t);
			if (c->dirty) {
				if (h2conn_flush(c) < 0)
					h2conn_close(c, "write failed");
				else
					h2conn_settle(c);
			}
		}
	}
}

/* ---- set-up and the loop ---- */

/* GET /metrics: the counters as they are now (the loop's own thread). */
static int metrics_render(void *ctx, char **body, size_t *len)
{
	struct server *s = ctx;
	struct sbuf b;

	memset(&b, 0, sizeof(b));
	collector_counters_metrics(&s->k, &b);
	if (b.oom) {
		sbuf_free(&b);
		return -ENOMEM;
	}
	*body = b.p;
	*len = b.len;
	return 0;
}

/* GET /healthz on the metrics listener: the store's health as the gRPC
 * health service sees it (the last probe's answer while one runs). */
static int healthz(void *ctx)
{
	(void)ctx;
	return health_status_last(clock_mono_ms()) == HEALTH_SERVING;
}

void server_set_web(struct server *s, void (*stats)(const void *ctx, struct collector_counters *k),
		    const void *ctx)
{
	s->web_stats = stats;
	s->web_ctx = ctx;
}

const char *server_metrics_address(const struct server *s)
{
	return s->metrics ? http_metrics_address(s->metrics) : NULL;
}

struct server *server_new(const struct server_config *cfg, struct store *store, char *err,
			  size_t errlen)
{
	struct server *s = calloc(1, sizeof(*s));
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	struct addrinfo *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct epoll_event e;
	char host[256], port[16];
	sigset_t set;
	int one = 1, rc;

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->cfg = *cfg;
	s->store = store;
	s->lfd = s->ep = s->sfd = s->mfd = -1;
	s->st.efd = -1;
	collector_counters_init(&s->k);
	s->open = group_new(s);
	if (!s->open || store_thread_init(&s->st, store) < 0) {
		snprintf(err, errlen, "store thread: %s",
			 s->open ? strerror(errno) : "out of memory");
		goto fail_early;
	}
	if (rpc_hostport_parse(cfg->listen, RPC_HOSTPORT_LISTEN, host, sizeof(host), port,
			       sizeof(port))) {
		snprintf(err, errlen, "--listen %s: give HOST:PORT, [IPV6]:PORT or :PORT",
			 cfg->listen);
		goto fail;
	}
	rc = getaddrinfo(*host ? host : NULL, port, &hints, &ai);
	if (rc) {
		snprintf(err, errlen, "--listen %s: %s", cfg->listen, gai_strerror(rc));
		goto fail;
	}
	s->lfd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->lfd < 0 || setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(s->lfd, ai->ai_addr, ai->ai_addrlen) || listen(s->lfd, 512)) {
		snprintf(err, errlen, "--listen %s: %s", cfg->listen, strerror(errno));
		goto fail;
	}
	if (getsockname(s->lfd, (struct sockaddr *)&ss, &sl) == 0)
		peer_name(&ss, s->addr, sizeof(s->addr));
	s->ep = epoll_create1(EPOLL_CLOEXEC);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR1);
	s->sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (s->ep < 0 || s->sfd < 0) {
		snprintf(err, errlen, "epoll/signalfd: %s", strerror(errno));
		goto fail;
	}
	e.events = EPOLLIN;
	e.data.ptr = &s->lfd;
	epoll_ctl(s->ep, EPOLL_CTL_ADD, s->lfd, &e);
	e.data.ptr = &s->sfd;
	epoll_ctl(s->ep, EPOLL_CTL_ADD, s->sfd, &e);
	e.data.ptr = &s->st;
	epoll_ctl(s->ep, EPOLL_CTL_ADD, s->st.efd, &e);
	if (cfg->metrics_listen) {
		/* One descriptor in the loop: the listener's own epoll. */
		s->metrics = http_metrics_new(cfg->metrics_listen, metrics_render, s, err, errlen);
		if (!s->metrics)
			goto fail;
		http_metrics_set_health(s->metrics, healthz);
		s->mfd = http_metrics_fd(s->metrics);
		e.data.ptr = &s->mfd;
		epoll_ctl(s->ep, EPOLL_CTL_ADD, s->mfd, &e);
	}

	if (nghttp2_session_callbacks_new(&s->cbs) || nghttp2_option_new(&s->h2opt)) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	call_set_callbacks(s->cbs);
	/* Bound what a peer can make us hold: header lists and reserved streams. */
	nghttp2_option_set_max_send_header_block_length(s->h2opt, 16384);
	nghttp2_option_set_max_reserved_remote_streams(s->h2opt, 0);
	/* Windows are given back as acks are taken (on_data_chunk). */
	nghttp2_option_set_no_auto_window_update(s->h2opt, 1);
	freeaddrinfo(ai);
	return s;
fail:
	if (ai)
		freeaddrinfo(ai);
fail_early:
	server_free(s);
	return NULL;
}

const char *server_address(const struct server *s)
{
	return s->addr;
}

bool server_loopback(const struct server *s)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getsockname(s->lfd, (struct sockaddr *)&ss, &sl))
		return false;
	if (ss.ss_family == AF_INET)
		return ((const uint8_t *)&((struct sockaddr_in *)&ss)->sin_addr)[0] == 127;
	if (ss.ss_family == AF_INET6) {
		const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;

		return IN6_IS_ADDR_LOOPBACK(a) ||
		       (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

const struct collector_counters *server_counters(const struct server *s)
{
	return &s->k;
}

int server_step(struct server *s, int max_wait_ms)
{
	struct epoll_event ev[64];
	bool cuttable = s->open->n && !s->inflight;
	int n, i, timeout = cuttable ? 0 : max_wait_ms;
	bool stop = false;
	uint64_t t;

	/* A health probe of PostgreSQL runs: back soon to drive it. */
	if (health_busy() && timeout > 5)
		timeout = 5;

	n = epoll_wait(s->ep, ev, 64, timeout);
	if (n < 0) {
		int e = errno;

		if (e == EINTR)
			return 0;
		log_error("epoll_wait: %s", strerror(e));
		return -e;
	}
	/* The dashboard's counters, current before they are printed or scraped. */
	if (s->web_stats)
		s->web_stats(s->web_ctx, &s->k);
	store_counters(s);
	for (i = 0; i < n; i++) {
		void *p = ev[i].data.ptr;

		if (p == &s->lfd) {
			accept_all(s);
		} else if (p == &s->pub) {
			publish_done(s);
		} else if (p == &s->st) {
			store_done(s);
		} else if (p == &s->mfd) {
			http_metrics_step(s->metrics, 0);
			http_metrics_get_stats(s->metrics, &s->k.metrics);
		} else if (p == &s->sfd) {
			struct signalfd_siginfo si;

			while (read(s->sfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGUSR1)
					collector_counters_print(&s->k, stdout);
				else
					stop = true;
			}
		} else {
			h2conn_event(p, ev[i].events);
		}
	}
	t = clock_mono_ms();
	/* Group commit: when no input waits, or the group is big or old; one
	 * group at a time with the store thread, the next filling meanwhile. */
	if (s->open->n && !s->inflight &&
	    (n == 0 || s->open->verdicts >= s->cfg.commit_max ||
	     t - s->open->start_ms >= s->cfg.commit_delay_ms))
		cut_group(s);
	if (s->pub)
		publisher_counters(s->pub, &s->k);
	health_poll(s, t);
	sweep(s);
	if (t - s->last_timer_ms >= 200) {
		s->last_timer_ms = t;
		check_timeouts(s);
	}
	return stop ? 1 : 0;
}

void server_close_all(struct server *s)
{
	store_drain(s);
	if (s->pub) {
		/* What is stored gets its JetStream ack for a while; the
		 * rest is resent by the agents. */
		publisher_flush(s->pub, 5000);
		publish_done(s);
		publisher_counters(s->pub, &s->k);
	}
	while (s->conns)
		goaway_close(s->conns);
}

int server_run(struct server *s)
{
	int rc;

	while ((rc = server_step(s, 200)) == 0)
		;
	/* Shutting down: the groups committed and acknowledged; then GOAWAY. */
	server_close_all(s);
	return rc < 0 ? rc : 0;
}

void server_free(struct server *s)
{
	if (!s)
		return;
	while (s->conns)
		h2conn_close(s->conns, NULL);
	/* A group still with the thread: waited for (its calls are gone). */
	if (s->inflight)
		group_free(store_thread_take(&s->st, true));
	store_thread_free(&s->st);
	group_free(s->open);
	group_free(s->spare);
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->ep >= 0)
		close(s->ep);
	if (s->sfd >= 0)
		close(s->sfd);
	http_metrics_free(s->metrics);
	if (s->cbs)
		nghttp2_session_callbacks_del(s->cbs);
	if (s->h2opt)
		nghttp2_option_del(s->h2opt);
	free(s);
}
