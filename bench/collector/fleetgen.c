// SPDX-License-Identifier: MIT
/*
 * fleetgen.c - a fleet of simulated agents for flowpic-collector (issue 16).
 *
 * N agents, each its own TCP (+TLS) connection, HTTP/2 session and
 * Collector.Stream call, with its own agent_id and run_id.  Each agent
 * produces verdicts at a host's rate (--flows flows, one verdict per flow
 * per --block seconds: 100/15 = 6.7 verdicts/s) and cuts one batch per
 * --interval (the agent stream's batch_delay_ms, 1 s), with the --counters
 * counters a real batch carries: in every batch, or (--counters-every, as
 * the agent's counters_every_ms does) in the first and then at most that
 * often.  Connections are opened at most
 * --ramp per second (the TLS handshakes), the measurement window starts
 * --warmup seconds after the last one and lasts --duration seconds.
 *
 * Latency of a batch: from the moment it is handed to its connection
 * ("submit", what stream_submit's batch reaches once cut) to its Ack, which
 * the collector sends after the store's commit (and after JetStream's ack
 * with --nats).  Every verdict carries its batch's submit time as
 * span.start_unix_ns (CLOCK_REALTIME, with duration_ns the block, 15 s), so
 * a reader of the store or of the bus can tell each verdict's age; with
 * --nats this program subscribes to flowpic.v1.verdicts.> itself and
 * measures submit-to-published per verdict.
 *
 * One thread drives every connection (epoll, non-blocking sockets and
 * OpenSSL); the NATS subscriber has libnats' own thread.  Output: JSON event
 * lines while it runs ({"event":"connected"}, "window_start", "window_end",
 * so a harness can sample CPU over the window), then one result line.
 */
#include <argp.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>
#include <nghttp2/nghttp2.h>

#include "core/number.h"
#include "flowpic.pb-c.h"
#include "rpc/grpc_frame.h"
#include "rpc/grpc_status.h"
#include "rpc/tls.h"
#include "rpc/token.h"

#define MAX_TARGETS 16
#define QMAX 64	       /* unacknowledged batches per agent, as the stream's queue_max */
#define BATCH_MAX 500  /* verdicts per batch at most, as the stream's batch_max */
#define TICK_MS 10     /* the send wheel's slot */
#define HIST_US 100    /* latency histogram resolution */
#define HIST_N 1200000 /* ... up to 120 s */
#define RETRY_MS 2000  /* a failed agent connects again after this (+ jitter) */

/* The counters a replaying flowpic-agent sends with every batch (56). */
static const char *const counter_names[] = { "blocks",
					     "blocks_empty",
					     "blocks_failed",
					     "cells_in_use_max",
					     "cells_refused",
					     "flows",
					     "flows_active",
					     "flows_active_max",
					     "flows_untracked",
					     "output_errors",
					     "oversize",
					     "packets",
					     "packets_tcp",
					     "packets_udp",
					     "reordered",
					     "samples",
					     "samples_late",
					     "skipped_csv_bad_line",
					     "skipped_flow_table_full",
					     "skipped_fragment",
					     "skipped_icmp",
					     "skipped_ip_malformed",
					     "skipped_l4_malformed",
					     "skipped_link_unsupported",
					     "skipped_not_ip",
					     "skipped_other_l4",
					     "skipped_truncated",
					     "stream.acked",
					     "stream.batches_acked",
					     "stream.batches_sent",
					     "stream.connect_failures",
					     "stream.connected",
					     "stream.connects",
					     "stream.dropped",
					     "stream.duplicates",
					     "stream.queued",
					     "stream.reconnects",
					     "stream.refusals",
					     "stream.rejected",
					     "stream.replayed",
					     "stream.sent",
					     "stream.spool_bytes",
					     "stream.spool_corrupt",
					     "stream.spool_max_bytes",
					     "stream.spooled",
					     "stream.spooled_total",
					     "stream.stored",
					     "stream.submitted",
					     "stream_rejected",
					     "super_packets",
					     "super_segments",
					     "verdicts_block",
					     "verdicts_block_early",
					     "verdicts_flow",
					     "verdicts_flow_early",
					     "verdicts_flow_unknown" };
#define NCOUNTER_NAMES (sizeof(counter_names) / sizeof(counter_names[0]))
_Static_assert(NCOUNTER_NAMES == 56, "the replaying agent's 56 counters");

static const char *classes[] = { "voip", "video", "file_transfer", "chat", "browsing" };

struct opts {
	const char *targets, *token, *ca, *server_name, *nats, *id_prefix;
	uint64_t agents, duration_s, warmup_s, ramp, flows, block_s, interval_ms, counters, drain_s,
		run_id, counters_every_ms;
	double rate_mult;
};

enum agent_state { A_WAIT, A_CONNECTING, A_TLS, A_LIVE, A_ENDING };

struct inflight {
	uint64_t t_ns; /* submit, CLOCK_MONOTONIC */
	uint32_t n;
	bool measured; /* submitted inside the window */
};

struct agent {
	uint32_t idx, target;
	int fd;
	SSL *ssl;
	nghttp2_session *h2;
	int32_t sid;
	enum agent_state st;
	uint32_t events;
	uint64_t seq, batch_seq, block;
	uint64_t counters_ms; /* when its last batch with counters went (0: none yet) */
	double due;	      /* verdicts owed, fractional */
	uint8_t *body;
	size_t body_len, body_off, body_cap;
	uint8_t *out;
	size_t out_len, out_off, out_cap;
	struct inflight q[QMAX];
	unsigned qh, qn;
	struct grpc_reader rd;
	int status; /* grpc-status of the call, -1 until the trailers */
	bool deferred, eof, queued;
	uint64_t retry_at_ms;
};

/* One batch's protobuf-c messages, filled and packed by make_batch. */
struct scratch {
	Flowpic__V1__Verdict v[BATCH_MAX], *vp[BATCH_MAX];
	Flowpic__V1__FlowKey fk[BATCH_MAX];
	Flowpic__V1__Span sp[BATCH_MAX];
	uint8_t src[BATCH_MAX][4], dst[BATCH_MAX][4];
	Flowpic__V1__Counter cs[NCOUNTER_NAMES], *csp[NCOUNTER_NAMES];
	float probs[5];
};

struct hist {
	uint32_t *b;
	uint64_t n, max_us;
};

struct fleet {
	struct opts o;
	struct agent *a;
	struct sockaddr_storage addr[MAX_TARGETS];
	socklen_t addrlen[MAX_TARGETS];
	char host[MAX_TARGETS][256], authority[MAX_TARGETS][300];
	unsigned ntargets;
	SSL_CTX *ctx;
	int ep;
	char auth[RPC_TOKEN_MAX + 16];
	nghttp2_session_callbacks *cbs;
	uint32_t *openq; /* agents waiting to connect (FIFO ring) */
	size_t oq_head, oq_len;
	uint64_t t0_ms, win_start_ms, win_end_ms, slots_done;
	bool window, ended, stopping;
	double per_agent_s; /* verdicts per second per agent */
	uint32_t live;
	/* counts */
	uint64_t connects, connect_failures, tls_failures, call_failures, conn_closed, queue_full,
		b_offered, v_offered, b_acked, v_acked, v_stored, v_dups, b_unacked, v_unacked,
		b_total, v_total, b_acked_total;
	char last_error[256];
	struct hist ack;
	struct scratch *scratch;
	/* the NATS subscriber (its own thread) */
	natsConnection *nc;
	natsSubscription *sub;
	struct hist pub;
	_Atomic int64_t win_rt0, win_rt1; /* the window in CLOCK_REALTIME ns (0: not yet) */
	_Atomic uint64_t pub_msgs, pub_bad;
};

static struct fleet F;

/* ---- clocks and histograms ---- */

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t mono_ms(void)
{
	return mono_ns() / 1000000ull;
}

static int64_t real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static int hist_init(struct hist *h)
{
	h->b = calloc(HIST_N, sizeof(*h->b));
	return h->b ? 0 : -ENOMEM;
}

static void hist_add(struct hist *h, uint64_t us)
{
	uint64_t i = us / HIST_US;

	h->b[i < HIST_N ? i : HIST_N - 1]++;
	h->n++;
	if (us > h->max_us)
		h->max_us = us;
}

/* The q-quantile in ms (the upper edge of its bucket); 0 when empty. */
static double hist_q(const struct hist *h, double q)
{
	uint64_t want = (uint64_t)ceil(q * (double)h->n), seen = 0, i;

	if (!h->n)
		return 0;
	if (want < 1)
		want = 1;
	for (i = 0; i < HIST_N; i++) {
		seen += h->b[i];
		if (seen >= want)
			return (double)((i + 1) * HIST_US) / 1000.0;
	}
	return (double)h->max_us / 1000.0;
}

/* ---- batches ---- */

static int buf_reserve(uint8_t **p, size_t *cap, size_t need)
{
	size_t c = *cap ? *cap : 4096;
	uint8_t *n;

	if (need <= *cap)
		return 0;
	while (c < need)
		c *= 2;
	n = realloc(*p, c);
	if (!n)
		return -ENOMEM;
	*p = n;
	*cap = c;
	return 0;
}

/* Append one encoded Batch of n verdicts to the agent's request body.
 * 0, or -ENOMEM. */
static int make_batch(struct agent *ag, uint32_t n, int64_t submit_rt)
{
	struct scratch *x = F.scratch;
	Flowpic__V1__Verdict *v = x->v, **vp = x->vp;
	Flowpic__V1__FlowKey *fk = x->fk;
	Flowpic__V1__Span *sp = x->sp;
	Flowpic__V1__Counter *cs = x->cs, **csp = x->csp;
	uint8_t(*src)[4] = x->src, (*dst)[4] = x->dst;
	float *probs = x->probs;
	Flowpic__V1__Batch b = FLOWPIC__V1__BATCH__INIT;
	Flowpic__V1__Agent a = FLOWPIC__V1__AGENT__INIT;
	Flowpic__V1__Model m = FLOWPIC__V1__MODEL__INIT;
	char agent_id[64], host[64];
	size_t sz, i, nc = F.o.counters;
	uint64_t now_ms = mono_ms();

	/* --counters-every: the first batch, then at most that often. */
	if (F.o.counters_every_ms && ag->counters_ms &&
	    now_ms - ag->counters_ms < F.o.counters_every_ms)
		nc = 0;
	else if (nc)
		ag->counters_ms = now_ms;

	snprintf(agent_id, sizeof(agent_id), "%s%05" PRIu32, F.o.id_prefix, ag->idx);
	snprintf(host, sizeof(host), "host-%05" PRIu32, ag->idx);
	a.host = host;
	a.agent_id = agent_id;
	a.run_id = F.o.run_id + ag->idx;
	a.version = "fleetgen";
	m.name = "lenet32";
	m.version = "1";
	m.n_classes = 5;
	m.classes = (char **)classes;
	b.agent = &a;
	b.model = &m;
	b.sequence = ++ag->batch_seq;
	b.n_verdicts = n;
	b.verdicts = vp;
	for (i = 0; i < n; i++) {
		uint64_t seq = ++ag->seq, flow = seq % F.o.flows;

		v[i] = (Flowpic__V1__Verdict)FLOWPIC__V1__VERDICT__INIT;
		fk[i] = (Flowpic__V1__FlowKey)FLOWPIC__V1__FLOW_KEY__INIT;
		sp[i] = (Flowpic__V1__Span)FLOWPIC__V1__SPAN__INIT;
		src[i][0] = 10;
		src[i][1] = (uint8_t)(ag->idx >> 8);
		src[i][2] = (uint8_t)ag->idx;
		src[i][3] = 1;
		dst[i][0] = 198;
		dst[i][1] = 51;
		dst[i][2] = (uint8_t)(flow >> 8);
		dst[i][3] = (uint8_t)flow;
		fk[i].src_addr.data = src[i];
		fk[i].src_addr.len = 4;
		fk[i].dst_addr.data = dst[i];
		fk[i].dst_addr.len = 4;
		fk[i].src_port = (uint32_t)(32768 + flow);
		fk[i].dst_port = 443;
		fk[i].protocol = flow % 4 ? 6 : 17;
		/* The submit time, for readers of the store and the bus. */
		sp[i].start_unix_ns = (uint64_t)submit_rt;
		sp[i].duration_ns = F.o.block_s * 1000000000ull;
		sp[i].packets_fwd = 100 + seq % 900;
		sp[i].packets_rev = 80 + seq % 700;
		sp[i].bytes_fwd = 10000 + seq % 90000;
		sp[i].bytes_rev = 8000 + seq % 70000;
		sp[i].block_index = seq / F.o.flows;
		sp[i].blocks = 1;
		v[i].seq = seq;
		v[i].interface = "eth0";
		v[i].flow = &fk[i];
		v[i].direction = FLOWPIC__V1__DIRECTION__DIRECTION_OUTBOUND;
		v[i].flow_id = flow + 1;
		v[i].stage = FLOWPIC__V1__STAGE__STAGE_BLOCK;
		v[i].span = &sp[i];
		v[i].class_name = (char *)classes[flow % 5];
		v[i].confidence = 0.8f;
		v[i].n_probs = 5;
		v[i].probs = probs;
		v[i].reason = FLOWPIC__V1__REASON__REASON_OK;
		vp[i] = &v[i];
	}
	for (i = 0; i < nc; i++) {
		cs[i] = (Flowpic__V1__Counter)FLOWPIC__V1__COUNTER__INIT;
		cs[i].name = (char *)counter_names[i];
		cs[i].value = ag->seq * (i + 1);
		csp[i] = &cs[i];
	}
	b.n_counters = nc;
	b.counters = csp;
	sz = flowpic__v1__batch__get_packed_size(&b);
	if (buf_reserve(&ag->body, &ag->body_cap, ag->body_len + GRPC_PREFIX_LEN + sz) < 0)
		return -ENOMEM;
	grpc_frame_prefix(ag->body + ag->body_len, (uint32_t)sz);
	flowpic__v1__batch__pack(&b, ag->body + ag->body_len + GRPC_PREFIX_LEN);
	ag->body_len += GRPC_PREFIX_LEN + sz;
	return 0;
}

/* ---- connections ---- */

static void set_events(struct agent *ag, uint32_t ev)
{
	struct epoll_event e = { .events = ev, .data.ptr = ag };

	if (ev == ag->events)
		return;
	epoll_ctl(F.ep, ag->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, ag->fd, &e);
	ag->events = ev;
}

static void enqueue_open(struct agent *ag, uint64_t at_ms)
{
	size_t n = F.o.agents;

	if (ag->queued)
		return;
	ag->queued = true;
	ag->retry_at_ms = at_ms;
	F.openq[(F.oq_head + F.oq_len) % n] = ag->idx;
	F.oq_len++;
}

static void note_error(struct agent *ag, const char *what)
{
	snprintf(F.last_error, sizeof(F.last_error), "agent %" PRIu32 ": %s", ag->idx, what);
}

/* Tear the connection down; unacknowledged batches are counted lost and the
 * agent connects again later (unless the run is ending). */
static void agent_drop(struct agent *ag, bool failed)
{
	if (ag->st == A_LIVE || ag->st == A_ENDING)
		F.live--;
	while (ag->qn) {
		struct inflight *f = &ag->q[ag->qh];

		if (f->measured) {
			F.b_unacked++;
			F.v_unacked += f->n;
		}
		ag->qh = (ag->qh + 1) % QMAX;
		ag->qn--;
	}
	if (ag->h2)
		nghttp2_session_del(ag->h2);
	ag->h2 = NULL;
	if (ag->ssl && !failed && SSL_is_init_finished(ag->ssl))
		SSL_shutdown(ag->ssl); /* close_notify: a clean end, not an I/O error */
	if (ag->ssl)
		SSL_free(ag->ssl);
	ag->ssl = NULL;
	if (ag->fd >= 0) {
		epoll_ctl(F.ep, EPOLL_CTL_DEL, ag->fd, NULL);
		close(ag->fd);
	}
	ag->fd = -1;
	ag->events = 0;
	ag->body_len = ag->body_off = 0;
	ag->out_len = ag->out_off = 0;
	ag->deferred = ag->eof = false;
	grpc_reader_free(&ag->rd);
	ag->st = A_WAIT;
	if (failed && !F.stopping)
		enqueue_open(ag, mono_ms() + RETRY_MS + (uint64_t)(rand() % 1000));
}

static ssize_t body_read(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
			 nghttp2_data_source *src, void *user)
{
	struct agent *ag = src->ptr;
	size_t n = ag->body_len - ag->body_off;

	(void)h2;
	(void)id;
	(void)user;
	if (!n) {
		ag->body_len = ag->body_off = 0;
		if (ag->eof) {
			*flags |= NGHTTP2_DATA_FLAG_EOF;
			return 0;
		}
		ag->deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	if (n > len)
		n = len;
	memcpy(buf, ag->body + ag->body_off, n);
	ag->body_off += n;
	return (ssize_t)n;
}

static int on_ack(void *ctx, const uint8_t *msg, size_t len)
{
	struct agent *ag = ctx;
	Flowpic__V1__Ack *a = flowpic__v1__ack__unpack(NULL, len, msg);
	struct inflight *f;

	if (!a)
		return -EBADMSG;
	if (ag->qn) {
		f = &ag->q[ag->qh];
		if (f->measured) {
			hist_add(&F.ack, (mono_ns() - f->t_ns) / 1000);
			F.b_acked++;
			F.v_acked += f->n;
			F.v_stored += a->stored;
			F.v_dups += a->duplicates;
		}
		F.b_acked_total++;
		ag->qh = (ag->qh + 1) % QMAX;
		ag->qn--;
	}
	flowpic__v1__ack__free_unpacked(a, NULL);
	return 0;
}

static int on_data(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
		   void *user)
{
	struct agent *ag = nghttp2_session_get_stream_user_data(h2, id);

	(void)flags;
	(void)user;
	if (!ag)
		return 0;
	return grpc_reader_feed(&ag->rd, data, len, on_ack, ag) < 0 ? NGHTTP2_ERR_CALLBACK_FAILURE :
								      0;
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
		     const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
	struct agent *ag = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id);

	(void)flags;
	(void)user;
	if (!ag)
		return 0;
	if (nlen == 11 && !memcmp(name, GRPC_HDR_STATUS, 11)) {
		ag->status = grpc_status_parse((const char *)value, vlen);
	} else if (nlen == 12 && !memcmp(name, GRPC_HDR_MESSAGE, 12)) {
		char m[200];

		grpc_message_decode((const char *)value, vlen, m, sizeof(m));
		note_error(ag, m);
	}
	return 0;
}

static int on_close(nghttp2_session *h2, int32_t id, uint32_t code, void *user)
{
	struct agent *ag = nghttp2_session_get_stream_user_data(h2, id);

	(void)code;
	(void)user;
	if (ag) {
		if (ag->status != 0 && !F.stopping)
			F.call_failures++;
		ag->st = A_ENDING; /* dropped once this read is processed */
		ag->sid = -1;
	}
	return 0;
}

/* Write what nghttp2 has and what is left over; 0, or -EIO. */
static int agent_flush(struct agent *ag)
{
	for (;;) {
		const uint8_t *p;
		ssize_t n;

		if (ag->out_off == ag->out_len) {
			ag->out_off = ag->out_len = 0;
			n = nghttp2_session_mem_send(ag->h2, &p);
			if (n < 0)
				return -EIO;
			if (n == 0)
				break;
			if (buf_reserve(&ag->out, &ag->out_cap, (size_t)n) < 0)
				return -EIO;
			memcpy(ag->out, p, (size_t)n);
			ag->out_len = (size_t)n;
		}
		while (ag->out_off < ag->out_len) {
			int r = SSL_write(ag->ssl, ag->out + ag->out_off,
					  (int)(ag->out_len - ag->out_off));

			if (r > 0) {
				ag->out_off += (size_t)r;
				continue;
			}
			r = SSL_get_error(ag->ssl, r);
			if (r == SSL_ERROR_WANT_WRITE || r == SSL_ERROR_WANT_READ) {
				set_events(ag, EPOLLIN | EPOLLOUT);
				return 0;
			}
			return -EIO;
		}
	}
	set_events(ag, EPOLLIN);
	return 0;
}

/* TLS done: the HTTP/2 session and the call.  0, or -EIO. */
static int agent_start_call(struct agent *ag)
{
	nghttp2_settings_entry iv[] = { { NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
					{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20 } };
	nghttp2_data_provider dp = { .source.ptr = ag, .read_callback = body_read };
	nghttp2_nv hdrs[8];
	size_t nh = 0;

#define NV(n, v) \
	hdrs[nh++] = (nghttp2_nv) \
	{ \
		(uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), 0 \
	}
	if (nghttp2_session_client_new(&ag->h2, F.cbs, ag))
		return -EIO;
	nghttp2_submit_settings(ag->h2, NGHTTP2_FLAG_NONE, iv, 2);
	NV(":method", "POST");
	NV(":scheme", "https");
	NV(":path", "/flowpic.v1.Collector/Stream");
	NV(":authority", F.authority[ag->target]);
	NV("content-type", "application/grpc");
	NV("te", "trailers");
	NV("user-agent", "flowpic-fleetgen");
	if (F.o.token)
		NV("authorization", F.auth);
#undef NV
	ag->status = -1;
	grpc_reader_init(&ag->rd, 1 << 20);
	ag->sid = nghttp2_submit_request(ag->h2, NULL, hdrs, nh, &dp, ag);
	if (ag->sid < 0)
		return -EIO;
	ag->st = A_LIVE;
	F.live++;
	F.connects++;
	return agent_flush(ag);
}

static void agent_handshake(struct agent *ag)
{
	int r = SSL_connect(ag->ssl);
	char err[300];

	if (r == 1) {
		if (!rpc_tls_alpn_is_h2(ag->ssl)) {
			F.tls_failures++;
			note_error(ag, "TLS: no ALPN h2");
			agent_drop(ag, true);
			return;
		}
		if (agent_start_call(ag) < 0) {
			F.call_failures++;
			agent_drop(ag, true);
		}
		return;
	}
	r = SSL_get_error(ag->ssl, r);
	if (r == SSL_ERROR_WANT_READ) {
		set_events(ag, EPOLLIN);
	} else if (r == SSL_ERROR_WANT_WRITE) {
		set_events(ag, EPOLLOUT);
	} else {
		F.tls_failures++;
		note_error(ag, rpc_tls_errors("TLS handshake", err, sizeof(err)));
		agent_drop(ag, true);
	}
}

static void agent_connected(struct agent *ag)
{
	int e = 0, one = 1;
	socklen_t l = sizeof(e);

	if (getsockopt(ag->fd, SOL_SOCKET, SO_ERROR, &e, &l) || e) {
		F.connect_failures++;
		note_error(ag, strerror(e ? e : errno));
		agent_drop(ag, true);
		return;
	}
	setsockopt(ag->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	ag->ssl = SSL_new(F.ctx);
	if (!ag->ssl || !SSL_set_fd(ag->ssl, ag->fd) ||
	    rpc_tls_client_prepare(ag->ssl,
				   F.o.server_name ? F.o.server_name : F.host[ag->target]) < 0) {
		F.tls_failures++;
		agent_drop(ag, true);
		return;
	}
	ag->st = A_TLS;
	agent_handshake(ag);
}

static void agent_open(struct agent *ag)
{
	ag->target = ag->idx % F.ntargets;
	ag->fd =
		socket(F.addr[ag->target].ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ag->fd < 0) {
		F.connect_failures++;
		note_error(ag, strerror(errno));
		agent_drop(ag, true);
		return;
	}
	ag->st = A_CONNECTING;
	if (connect(ag->fd, (struct sockaddr *)&F.addr[ag->target], F.addrlen[ag->target]) &&
	    errno != EINPROGRESS) {
		F.connect_failures++;
		note_error(ag, strerror(errno));
		agent_drop(ag, true);
		return;
	}
	set_events(ag, EPOLLOUT);
}

static void agent_event(struct agent *ag, uint32_t ev)
{
	uint8_t buf[16384];

	if (ag->st == A_CONNECTING) {
		agent_connected(ag);
		return;
	}
	if (ag->st == A_TLS) {
		agent_handshake(ag);
		return;
	}
	if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		for (;;) {
			int r = SSL_read(ag->ssl, buf, sizeof(buf));

			if (r <= 0) {
				r = SSL_get_error(ag->ssl, r);
				if (r == SSL_ERROR_WANT_READ || r == SSL_ERROR_WANT_WRITE)
					break;
				if (!F.stopping) {
					F.conn_closed++;
					note_error(ag, "connection closed by the collector");
				}
				agent_drop(ag, true);
				return;
			}
			if (nghttp2_session_mem_recv(ag->h2, buf, (size_t)r) < 0) {
				F.call_failures++;
				note_error(ag, "HTTP/2 error");
				agent_drop(ag, true);
				return;
			}
		}
	}
	if (ag->st == A_ENDING) {
		agent_drop(ag, ag->status != 0 && !F.stopping);
		return;
	}
	if (agent_flush(ag) < 0) {
		F.conn_closed++;
		agent_drop(ag, true);
	}
}

/* The agent's batch of this interval, if it is connected. */
static void agent_tick(struct agent *ag, uint64_t now)
{
	uint32_t n;

	if (ag->st != A_LIVE)
		return;
	ag->due += F.per_agent_s * (double)F.o.interval_ms / 1000.0;
	n = (uint32_t)ag->due;
	ag->due -= n;
	while (n) {
		uint32_t k = n > BATCH_MAX ? BATCH_MAX : n;
		struct inflight *f;

		n -= k;
		F.b_total++;
		F.v_total += k;
		if (F.window) {
			F.b_offered++;
			F.v_offered += k;
		}
		if (ag->qn == QMAX) {
			F.queue_full++; /* an agent would spool it */
			continue;
		}
		if (make_batch(ag, k, real_ns()) < 0) {
			note_error(ag, "out of memory");
			continue;
		}
		f = &ag->q[(ag->qh + ag->qn) % QMAX];
		f->t_ns = now;
		f->n = k;
		f->measured = F.window;
		ag->qn++;
		if (ag->deferred) {
			ag->deferred = false;
			nghttp2_session_resume_data(ag->h2, ag->sid);
		}
	}
	if (agent_flush(ag) < 0) {
		F.conn_closed++;
		agent_drop(ag, true);
	}
}

/* ---- the NATS subscriber ---- */

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
	int64_t now = real_ns(), w0 = atomic_load(&F.win_rt0), w1 = atomic_load(&F.win_rt1);
	Flowpic__V1__Batch *b;
	size_t i;

	(void)nc;
	(void)sub;
	(void)closure;
	b = flowpic__v1__batch__unpack(NULL, (size_t)natsMsg_GetDataLength(m),
				       (const uint8_t *)natsMsg_GetData(m));
	if (!b || !b->agent) {
		atomic_fetch_add(&F.pub_bad, 1);
	} else if (!strncmp(b->agent->agent_id, F.o.id_prefix, strlen(F.o.id_prefix))) {
		for (i = 0; i < b->n_verdicts; i++) {
			int64_t t = (int64_t)b->verdicts[i]->span->start_unix_ns;

			if (!w0 || t < w0 || (w1 && t > w1))
				continue;
			atomic_fetch_add(&F.pub_msgs, 1);
			hist_add(&F.pub, now > t ? (uint64_t)(now - t) / 1000 : 0);
		}
	}
	if (b)
		flowpic__v1__batch__free_unpacked(b, NULL);
	natsMsg_Destroy(m);
}

static int nats_start(void)
{
	natsOptions *opts = NULL;
	natsStatus s;
	const char *servers[16];
	char *copy = strdup(F.o.nats), *tok, *save = NULL;
	int n = 0;

	for (tok = strtok_r(copy, ",", &save); tok && n < 16; tok = strtok_r(NULL, ",", &save))
		servers[n++] = tok;
	s = natsOptions_Create(&opts);
	if (s == NATS_OK)
		s = natsOptions_SetServers(opts, servers, n);
	if (s == NATS_OK)
		s = natsOptions_SetName(opts, "flowpic-fleetgen");
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(opts, -1);
	if (s == NATS_OK)
		s = natsConnection_Connect(&F.nc, opts);
	if (s == NATS_OK)
		s = natsConnection_Subscribe(&F.sub, F.nc, "flowpic.v1.verdicts.>", on_msg, NULL);
	if (s == NATS_OK)
		s = natsSubscription_SetPendingLimits(F.sub, 10000000, 1 << 30);
	natsOptions_Destroy(opts);
	free(copy);
	if (s != NATS_OK) {
		fprintf(stderr, "fleetgen: NATS %s: %s\n", F.o.nats, natsStatus_GetText(s));
		return -EIO;
	}
	return 0;
}

/* ---- set-up ---- */

static int resolve_targets(void)
{
	char *copy = strdup(F.o.targets), *tok, *save = NULL;

	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		const char *colon = strrchr(tok, ':');
		struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
		unsigned i = F.ntargets;

		if (!colon || i == MAX_TARGETS) {
			fprintf(stderr, "fleetgen: --targets '%s': give HOST:PORT, at most %d\n",
				tok, MAX_TARGETS);
			free(copy);
			return -EINVAL;
		}
		if (tok[0] == '[')
			snprintf(F.host[i], sizeof(F.host[i]), "%.*s", (int)(colon - tok - 2),
				 tok + 1);
		else
			snprintf(F.host[i], sizeof(F.host[i]), "%.*s", (int)(colon - tok), tok);
		snprintf(F.authority[i], sizeof(F.authority[i]), "%s", tok);
		if (getaddrinfo(F.host[i], colon + 1, &hints, &ai)) {
			fprintf(stderr, "fleetgen: cannot resolve %s\n", tok);
			free(copy);
			return -EHOSTUNREACH;
		}
		memcpy(&F.addr[i], ai->ai_addr, ai->ai_addrlen);
		F.addrlen[i] = ai->ai_addrlen;
		freeaddrinfo(ai);
		F.ntargets++;
	}
	free(copy);
	return F.ntargets ? 0 : -EINVAL;
}

/* Room for every agent's socket (and epoll, NATS, stdio). */
static int raise_nofile(uint64_t need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return -errno;
	if (rl.rlim_cur >= need)
		return 0;
	if (rl.rlim_max < need) {
		rl.rlim_max = need; /* root (CAP_SYS_RESOURCE) may raise the hard limit */
		rl.rlim_cur = need;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
			return 0;
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < need) {
		fprintf(stderr,
			"fleetgen: RLIMIT_NOFILE is %" PRIu64 ", %" PRIu64
			" needed: run as root or raise it (ulimit -Hn)\n",
			(uint64_t)rl.rlim_cur, need);
		return -EMFILE;
	}
	return 0;
}

static double cpu_self_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static void event(const char *name)
{
	printf("{\"event\":\"%s\",\"t\":%.3f,\"live\":%" PRIu32 "}\n", name,
	       (double)(mono_ms() - F.t0_ms) / 1000.0, F.live);
	fflush(stdout);
}

/* ---- options ---- */

enum {
	OPT_CA = 1000,
	OPT_SERVER_NAME,
	OPT_TOKEN_FILE,
	OPT_WARMUP,
	OPT_FLOWS,
	OPT_BLOCK,
	OPT_INTERVAL,
	OPT_COUNTERS,
	OPT_COUNTERS_EVERY,
	OPT_DRAIN,
	OPT_NATS,
	OPT_RUN_ID,
	OPT_ID_PREFIX,
};

static const struct argp_option options[] = {
	{ "targets", 't', "HOST:PORT[,...]", 0,
	  "collectors; agent i goes to the (i mod count)-th (default 127.0.0.1:50051)", 0 },
	{ "agents", 'n', "N", 0, "agents, each its own connection and call (default 100)", 0 },
	{ "duration", 'd', "SECONDS", 0, "the measured window (default 30)", 0 },
	{ "warmup", OPT_WARMUP, "SECONDS", 0,
	  "after the last connection, before the window (default 5)", 0 },
	{ "ramp", 'r', "N", 0, "connections opened per second at most (default 200)", 0 },
	{ "rate-mult", 'x', "X", 0,
	  "verdict rate of each agent x X (default 1; 0: connections held idle, the call open)",
	  0 },
	{ "flows", OPT_FLOWS, "N", 0, "flows per host (default 100)", 0 },
	{ "block", OPT_BLOCK, "SECONDS", 0, "one verdict per flow per block (default 15)", 0 },
	{ "interval", OPT_INTERVAL, "MS", 0,
	  "a batch per agent this often (default 1000: the stream's batch_delay_ms)", 0 },
	{ "counters", OPT_COUNTERS, "N", 0,
	  "counters in every batch, 0..56 (default 56, what a replaying agent sends)", 0 },
	{ "counters-every", OPT_COUNTERS_EVERY, "MS", 0,
	  "counters only in an agent's first batch, then at most this often (the agent's "
	  "counters_every_ms, 10000 by default there; here default 0: every batch)",
	  0 },
	{ "drain", OPT_DRAIN, "SECONDS", 0,
	  "after the window, wait this long for the window's acks (default 15)", 0 },
	{ "token", 'k', "TOKEN", 0, "access token", 0 },
	{ "token-file", OPT_TOKEN_FILE, "FILE", 0, "access token from a file", 0 },
	{ "ca", OPT_CA, "PEM", 0, "TLS on: the collectors' CA (default: cleartext h2c)", 0 },
	{ "server-name", OPT_SERVER_NAME, "NAME", 0, "TLS: the name to verify (default: host)", 0 },
	{ "nats", OPT_NATS, "URL[,URL...]", 0,
	  "subscribe to flowpic.v1.verdicts.> there: submit-to-published latency", 0 },
	{ "run-id", OPT_RUN_ID, "N", 0, "run_id of agent 0, +i for agent i (default: now)", 0 },
	{ "id-prefix", OPT_ID_PREFIX, "TEXT", 0, "agent_id prefix (default fleet-)", 0 },
	{ 0 }
};

static error_t parse(int key, char *arg, struct argp_state *state)
{
	struct opts *o = state->input;
	uint64_t *dst = NULL, lo = 1, hi = 1000000;
	char token_buf[RPC_TOKEN_MAX + 1], err[300];
	static char token_kept[RPC_TOKEN_MAX + 1];

	switch (key) {
	case 't':
		o->targets = arg;
		return 0;
	case 'k':
		o->token = arg;
		return 0;
	case OPT_TOKEN_FILE:
		if (rpc_token_load(arg, token_buf, sizeof(token_buf), err, sizeof(err)) < 0)
			argp_error(state, "%s", err);
		memcpy(token_kept, token_buf, sizeof(token_kept));
		o->token = token_kept;
		return 0;
	case OPT_CA:
		o->ca = arg;
		return 0;
	case OPT_SERVER_NAME:
		o->server_name = arg;
		return 0;
	case OPT_NATS:
		o->nats = arg;
		return 0;
	case OPT_ID_PREFIX:
		o->id_prefix = arg;
		return 0;
	case 'x': {
		char *end;

		errno = 0;
		o->rate_mult = strtod(arg, &end);
		if (errno || end == arg || *end || !(o->rate_mult >= 0 && o->rate_mult <= 1000))
			argp_error(state, "--rate-mult '%s': give a number from 0 to 1000", arg);
		return 0;
	}
	case 'n':
		dst = &o->agents;
		hi = 200000;
		break;
	case 'd':
		dst = &o->duration_s;
		hi = 86400;
		break;
	case OPT_WARMUP:
		dst = &o->warmup_s;
		lo = 0;
		hi = 3600;
		break;
	case 'r':
		dst = &o->ramp;
		break;
	case OPT_FLOWS:
		dst = &o->flows;
		break;
	case OPT_BLOCK:
		dst = &o->block_s;
		hi = 3600;
		break;
	case OPT_INTERVAL:
		dst = &o->interval_ms;
		lo = TICK_MS;
		hi = 60000;
		break;
	case OPT_COUNTERS:
		dst = &o->counters;
		lo = 0;
		hi = NCOUNTER_NAMES;
		break;
	case OPT_COUNTERS_EVERY:
		dst = &o->counters_every_ms;
		lo = 0;
		hi = 3600000;
		break;
	case OPT_DRAIN:
		dst = &o->drain_s;
		lo = 0;
		hi = 3600;
		break;
	case OPT_RUN_ID:
		dst = &o->run_id;
		hi = UINT64_MAX / 2;
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	if (number_parse_u64(arg, lo, hi, dst))
		argp_error(state, "'%s': give a whole number from %" PRIu64 " to %" PRIu64, arg, lo,
			   hi);
	return 0;
}

/* ---- the run ---- */

static void open_some(uint64_t now)
{
	uint64_t allowed = F.o.ramp * TICK_MS / 1000 + 1;

	while (F.oq_len && allowed) {
		struct agent *ag = &F.a[F.openq[F.oq_head]];

		if (ag->retry_at_ms > now)
			break; /* FIFO: the rest are later still */
		F.oq_head = (F.oq_head + 1) % F.o.agents;
		F.oq_len--;
		ag->queued = false;
		agent_open(ag);
		allowed--;
	}
}

static void send_slots(uint64_t now_ms, uint64_t now_ns)
{
	uint64_t nslots = F.o.interval_ms / TICK_MS, due = (now_ms - F.t0_ms) / TICK_MS, i;

	if (F.o.rate_mult == 0)
		return;
	for (; F.slots_done < due; F.slots_done++) {
		uint64_t slot = F.slots_done % nslots;

		for (i = slot; i < F.o.agents; i += nslots)
			agent_tick(&F.a[i], now_ns);
	}
}

static void print_result(double ramp_s, double window_s, double cpu)
{
	printf("{\"agents\":%" PRIu64 ",\"collectors\":%u,\"tls\":%s,\"rate_mult\":%g,"
	       "\"verdicts_per_agent_s\":%.3f,\"counters_per_batch\":%" PRIu64 ","
	       "\"counters_every_ms\":%" PRIu64 ","
	       "\"ramp_s\":%.2f,\"window_s\":%.2f,\"live_at_end\":%" PRIu32 ","
	       "\"connects\":%" PRIu64 ",\"connect_failures\":%" PRIu64 ",\"tls_failures\":%" PRIu64
	       ",\"call_failures\":%" PRIu64 ",\"connections_closed\":%" PRIu64 ","
	       "\"batches_offered\":%" PRIu64 ",\"verdicts_offered\":%" PRIu64
	       ",\"batches_acked\":%" PRIu64 ",\"verdicts_acked\":%" PRIu64
	       ",\"verdicts_stored\":%" PRIu64 ",\"verdicts_duplicate\":%" PRIu64
	       ",\"batches_unacked\":%" PRIu64 ",\"verdicts_unacked\":%" PRIu64
	       ",\"batches_queue_full\":%" PRIu64 ","
	       "\"offered_per_s\":%.0f,\"acked_per_s\":%.0f,"
	       "\"ack_p50_ms\":%.1f,\"ack_p99_ms\":%.1f,\"ack_max_ms\":%.1f,",
	       F.o.agents, F.ntargets, F.ctx ? "true" : "false", F.o.rate_mult, F.per_agent_s,
	       F.o.counters, F.o.counters_every_ms, ramp_s, window_s, F.live, F.connects,
	       F.connect_failures, F.tls_failures, F.call_failures, F.conn_closed, F.b_offered,
	       F.v_offered, F.b_acked, F.v_acked, F.v_stored, F.v_dups, F.b_unacked, F.v_unacked,
	       F.queue_full, window_s > 0 ? (double)F.v_offered / window_s : 0,
	       window_s > 0 ? (double)F.v_acked / window_s : 0, hist_q(&F.ack, 0.5),
	       hist_q(&F.ack, 0.99), (double)F.ack.max_us / 1000.0);
	if (F.o.nats)
		printf("\"published\":%" PRIu64 ",\"pub_p50_ms\":%.1f,\"pub_p99_ms\":%.1f,"
		       "\"pub_max_ms\":%.1f,\"pub_bad\":%" PRIu64 ",",
		       (uint64_t)atomic_load(&F.pub_msgs), hist_q(&F.pub, 0.5),
		       hist_q(&F.pub, 0.99), (double)F.pub.max_us / 1000.0,
		       (uint64_t)atomic_load(&F.pub_bad));
	printf("\"gen_cpu_s\":%.2f,\"last_error\":\"", cpu);
	for (const char *p = F.last_error; *p; p++)
		if (*p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
			putchar(*p);
	printf("\",\"type\":\"summary\"}\n");
}

int main(int argc, char **argv)
{
	static const char doc[] =
		"Simulate a fleet of flowpic agents streaming to flowpic-collector: N TLS "
		"connections, each its own Collector.Stream call at a host's verdict rate; "
		"measure submit-to-ack (stored) latency and, with --nats, submit-to-published."
		"\v"
		"Examples:\n"
		"  fleetgen --targets 127.0.0.1:50051 --ca ca.pem --token-file tok --agents 1000\n"
		"  fleetgen -t 127.0.0.1:50051,127.0.0.1:50052 --ca ca.pem -k tok -n 10000 -r 300 "
		"-d 60\n"
		"  fleetgen -t 127.0.0.1:50051 --ca ca.pem -k tok -n 10000 --rate-mult 0   "
		"# idle\n"
		"  fleetgen ... --nats nats://127.0.0.1:4222     # + submit-to-published\n\n"
		"Output: {\"event\":...} lines (connected, window_start, window_end), then one "
		"summary line.  Exit 0 when every batch of the window was acknowledged.";
	struct argp argp = { options, parse, NULL, doc, NULL, NULL, NULL };
	struct epoll_event ev[256];
	uint64_t i, now, t_connected = 0, drain_end = 0, t_last_progress;
	double cpu0 = 0, ramp_s = 0, window_s = 0;
	char err[512];

	F.o.targets = "127.0.0.1:50051";
	F.o.agents = 100;
	F.o.duration_s = 30;
	F.o.warmup_s = 5;
	F.o.ramp = 200;
	F.o.rate_mult = 1;
	F.o.flows = 100;
	F.o.block_s = 15;
	F.o.interval_ms = 1000;
	F.o.counters = NCOUNTER_NAMES;
	F.o.drain_s = 15;
	F.o.id_prefix = "fleet-";
	F.o.run_id = (uint64_t)real_ns();
	argp_parse(&argp, argc, argv, 0, NULL, &F.o);
	signal(SIGPIPE, SIG_IGN);
	srand((unsigned)F.o.run_id);
	F.per_agent_s = (double)F.o.flows / (double)F.o.block_s * F.o.rate_mult;
	if (resolve_targets() < 0 || raise_nofile(F.o.agents + 256) < 0)
		return 2;
	if (F.o.token)
		rpc_token_header(F.o.token, F.auth, sizeof(F.auth));
	if (F.o.ca) {
		struct rpc_tls_config tc = { .ca_file = F.o.ca };

		F.ctx = rpc_tls_client_ctx(&tc, err, sizeof(err));
		if (!F.ctx) {
			fprintf(stderr, "fleetgen: %s\n", err);
			return 1;
		}
	} else {
		fprintf(stderr, "fleetgen: cleartext (h2c) is not supported here: give --ca\n");
		return 2;
	}
	F.a = calloc(F.o.agents, sizeof(*F.a));
	F.openq = calloc(F.o.agents, sizeof(*F.openq));
	F.ep = epoll_create1(EPOLL_CLOEXEC);
	F.scratch = calloc(1, sizeof(*F.scratch));
	if (F.scratch)
		memcpy(F.scratch->probs, (float[5]){ 0.05f, 0.05f, 0.05f, 0.05f, 0.8f },
		       sizeof(F.scratch->probs));
	if (!F.a || !F.openq || !F.scratch || F.ep < 0 || hist_init(&F.ack) < 0 ||
	    hist_init(&F.pub) < 0) {
		fprintf(stderr, "fleetgen: out of memory for %" PRIu64 " agents\n", F.o.agents);
		return 1;
	}
	nghttp2_session_callbacks_new(&F.cbs);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(F.cbs, on_data);
	nghttp2_session_callbacks_set_on_header_callback(F.cbs, on_header);
	nghttp2_session_callbacks_set_on_stream_close_callback(F.cbs, on_close);
	if (F.o.nats && nats_start() < 0)
		return 1;
	F.t0_ms = t_last_progress = mono_ms();
	for (i = 0; i < F.o.agents; i++) {
		F.a[i].idx = (uint32_t)i;
		F.a[i].fd = -1;
		F.a[i].due = (double)rand() / RAND_MAX;
		enqueue_open(&F.a[i], 0);
	}
	for (;;) {
		int n = epoll_wait(F.ep, ev, 256, TICK_MS), k;

		for (k = 0; k < n; k++)
			agent_event(ev[k].data.ptr, ev[k].events);
		now = mono_ms();
		open_some(now);
		if (!F.stopping)
			send_slots(now, mono_ns());
		if (!t_connected && F.live == F.o.agents) {
			t_connected = now;
			ramp_s = (double)(now - F.t0_ms) / 1000.0;
			event("connected");
		}
		/* The window opens after the warm-up even if some agents never
		 * connected (their failures are counted). */
		if (!F.window && !F.win_end_ms &&
		    ((t_connected && now >= t_connected + F.o.warmup_s * 1000) ||
		     now >= F.t0_ms + (F.o.agents / F.o.ramp + 30 + F.o.warmup_s) * 1000)) {
			if (!t_connected)
				ramp_s = (double)(now - F.t0_ms) / 1000.0;
			F.window = true;
			F.win_start_ms = now;
			atomic_store(&F.win_rt0, real_ns());
			cpu0 = cpu_self_s();
			event("window_start");
		}
		if (F.window && now >= F.win_start_ms + F.o.duration_s * 1000) {
			F.window = false;
			F.win_end_ms = now;
			atomic_store(&F.win_rt1, real_ns());
			window_s = (double)(now - F.win_start_ms) / 1000.0;
			cpu0 = cpu_self_s() - cpu0;
			event("window_end");
			F.stopping = true;
			drain_end = now + F.o.drain_s * 1000;
		}
		if (F.stopping) {
			uint64_t waiting = 0;

			for (i = 0; i < F.o.agents; i++) {
				unsigned j;

				for (j = 0; j < F.a[i].qn; j++)
					waiting += F.a[i].q[(F.a[i].qh + j) % QMAX].measured;
			}
			if (!waiting || now >= drain_end)
				break;
		}
		if (now - t_last_progress >= 5000) {
			t_last_progress = now;
			fprintf(stderr,
				"fleetgen: %.0f s: %" PRIu32 " live, %" PRIu64
				" batches acked, %" PRIu64 " connect/TLS/call failures\n",
				(double)(now - F.t0_ms) / 1000.0, F.live, F.b_acked_total,
				F.connect_failures + F.tls_failures + F.call_failures);
		}
	}
	/* End every call as an agent does (END_STREAM, then the trailers), for
	 * at most 3 s; whatever is still in flight then was not acknowledged
	 * within the drain. */
	for (i = 0; i < F.o.agents; i++) {
		struct agent *ag = &F.a[i];

		if (ag->st != A_LIVE)
			continue;
		ag->eof = true;
		if (ag->deferred) {
			ag->deferred = false;
			nghttp2_session_resume_data(ag->h2, ag->sid);
		}
		if (agent_flush(ag) < 0)
			agent_drop(ag, false);
	}
	drain_end = mono_ms() + 3000;
	while (F.live && mono_ms() < drain_end) {
		int n = epoll_wait(F.ep, ev, 256, TICK_MS), k;

		for (k = 0; k < n; k++)
			agent_event(ev[k].data.ptr, ev[k].events);
	}
	for (i = 0; i < F.o.agents; i++)
		agent_drop(&F.a[i], false);
	if (F.o.nats) {
		nats_Sleep(1000); /* the last publishes of the window */
		natsSubscription_Unsubscribe(F.sub);
		natsSubscription_Destroy(F.sub);
		natsConnection_Destroy(F.nc);
		nats_Close();
	}
	print_result(ramp_s, window_s, cpu0);
	nghttp2_session_callbacks_del(F.cbs);
	SSL_CTX_free(F.ctx);
	for (i = 0; i < F.o.agents; i++) {
		free(F.a[i].body);
		free(F.a[i].out);
	}
	free(F.a);
	free(F.openq);
	free(F.scratch);
	free(F.ack.b);
	free(F.pub.b);
	close(F.ep);
	if (F.o.rate_mult == 0)
		return t_connected ? 0 : 1;
	return F.b_unacked == 0 && F.b_acked > 0 ? 0 : 1;
}
