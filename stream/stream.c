// SPDX-License-Identifier: MIT
/*
 * stream.c - the verdict stream: submit ring, batches, memory queue, spool,
 * one connection at a time with backoff; see stream.h.
 *
 * Order: every batch in the memory queue is older than every batch in the
 * spool (a batch goes to the memory queue only while the spool is empty),
 * so sending the queue first and then the spool keeps the order of the
 * run, and acknowledgements (which come back in order) match the queue's
 * head first, then the spool's oldest record in flight.
 */
#include "stream.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "core/clock.h"
#include "conn.h"
#include "encode.h"
#include "rpc/hostport.h"
#include "core/log.h"
#include "queue.h"
#include "spool.h"
#include "rpc/tls.h"
#include "rpc/token.h"

/* Spool records read and sent but not yet acknowledged (each holds its payload). */
#define SFLIGHT_MAX 32
/* Counters of the agent added to a batch, at most. */
#define AGENT_COUNTERS_MAX 64
#define OWN_COUNTERS 24
/* The collector address, split. */
#define TARGET_HOST_CAP 256
#define TARGET_PORT_CAP 16

struct sflight {
	struct spool_record rec;
};

struct stream {
	/* Set up by stream_new, read-only afterwards. */
	char host[TARGET_HOST_CAP], port[TARGET_PORT_CAP], authority[300], server_name[256];
	char targets[STREAM_TARGETS_MAX][300];	   /* the collector list (stream_config.target) */
	unsigned ntargets, target_idx, round_left; /* round_left: others to try before backoff */
	bool own_server_name;			   /* no cfg->server_name: each target's host */
	char authorization[RPC_TOKEN_MAX + 16];
	struct conn_params cp;
	SSL_CTX *tls;
	struct encode_header hdr;
	unsigned batch_max, batch_delay_ms, connect_timeout_ms, ack_timeout_ms;
	size_t (*counters_fn)(void *ctx, struct stream_counter *out, size_t max);
	void *counters_ctx;
	unsigned counters_every_ms;
	uint64_t counters_sent_ms; /* when a batch last carried them (0: never) */
	pthread_t thread;
	bool started; /* stream_start() ran: the thread is there */
	int evfd;
	char *spool_dir; /* opened by stream_start() */
	uint64_t spool_max, spool_seg;
	enum stream_fsync fsync;

	/* Shared with stream_submit() / stream_counters(): under lock. */
	pthread_mutex_t lock;
	struct encode_verdict *ring;
	unsigned ring_cap, ring_head, ring_n;
	uint64_t next_seq;
	uint64_t submitted, rejected;
	/* The picture buffer: a FIFO of encoded pictures, in positions that only
	 * grow (byte p is pic[p % pic_cap]); [pic_head, pic_tail) is in use by
	 * the ring and the open batch.  A picture never wraps: one that would
	 * starts the next lap, the end of this one left unused. */
	uint8_t *pic;
	size_t pic_cap;
	uint64_t pic_head, pic_tail;
	uint64_t pictures, pictures_too_big, pictures_no_room;
	bool closing;
	uint64_t close_deadline;    /* ms, monotonic */
	struct stream_counters pub; /* the thread's counters as last published */
	char last_error[320];

	/* The thread's own. */
	struct stream_counters tc;
	struct encode_verdict *open;
	unsigned open_n;
	uint64_t open_since;
	size_t open_pic_bytes; /* the open batch's pictures */
	uint64_t open_pic_end; /* the picture buffer position after them (0: none) */
	uint8_t *encbuf;
	size_t enccap;
	uint64_t next_batch;
	struct queue mq;
	struct spool *spool;
	struct sflight fl[SFLIGHT_MAX];
	unsigned fl_head, fl_n;
	struct conn *conn;
	bool unreachable, had_connection, established, finishing;
	uint64_t retry_at, conn_started, last_progress;
	struct backoff bo;
	char logged_error[320];
	char drop_logged;
};

void stream_config_default(struct stream_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->batch_max = 500;
	cfg->batch_delay_ms = 1000;
	cfg->submit_max = 16384;
	cfg->queue_max = 64;
	cfg->spool_max_bytes = 1ull << 30;
	cfg->spool_segment_bytes = 4ull << 20;
	cfg->fsync = STREAM_FSYNC_BATCH;
	cfg->backoff_initial_ms = 1000;
	cfg->backoff_multiplier = 1.6;
	cfg->backoff_jitter = 0.2;
	cfg->backoff_max_ms = 120000;
	cfg->connect_timeout_ms = 20000;
	cfg->ack_timeout_ms = 30000;
	cfg->counters_every_ms = 10000;
}

size_t stream_counters_list(const struct stream_counters *c, struct stream_counter *out, size_t max)
{
	const struct stream_counter all[] = {
		{ "stream.submitted", c->submitted },
		{ "stream.rejected", c->rejected },
		{ "stream.pictures", c->pictures },
		{ "stream.pictures_too_big", c->pictures_too_big },
		{ "stream.pictures_no_room", c->pictures_no_room },
		{ "stream.queued", c->queued },
		{ "stream.spooled", c->spooled_now },
		{ "stream.spooled_total", c->spooled_total },
		{ "stream.replayed", c->replayed },
		{ "stream.sent", c->sent },
		{ "stream.acked", c->acked },
		{ "stream.stored", c->stored },
		{ "stream.duplicates", c->duplicates },
		{ "stream.dropped", c->dropped },
		{ "stream.spool_corrupt", c->spool_corrupt },
		{ "stream.spool_bytes", c->spool_bytes },
		{ "stream.spool_max_bytes", c->spool_max_bytes },
		{ "stream.batches_sent", c->batches_sent },
		{ "stream.batches_acked", c->batches_acked },
		{ "stream.connects", c->connects },
		{ "stream.reconnects", c->reconnects },
		{ "stream.connect_failures", c->connect_failures },
		{ "stream.refusals", c->refusals },
		{ "stream.connected", c->connected },
	};
	size_t i, n = sizeof(all) / sizeof(all[0]);

	_Static_assert(sizeof(all) / sizeof(all[0]) <= OWN_COUNTERS, "OWN_COUNTERS too small");
	for (i = 0; i < n && i < max; i++)
		out[i] = all[i];
	return i;
}

/* The thread's view -> what stream_counters() returns.  Under lock. */
static void fill_counters(struct stream *s, struct stream_counters *c)
{
	*c = s->pub;
	c->submitted = s->submitted;
	c->rejected = s->rejected;
	c->pictures = s->pictures;
	c->pictures_too_big = s->pictures_too_big;
	c->pictures_no_room = s->pictures_no_room;
	c->queued += s->ring_n;
}

void stream_counters(struct stream *s, struct stream_counters *c)
{
	pthread_mutex_lock(&s->lock);
	fill_counters(s, c);
	pthread_mutex_unlock(&s->lock);
}

void stream_last_error(struct stream *s, char *buf, size_t len)
{
	pthread_mutex_lock(&s->lock);
	snprintf(buf, len, "%s", s->last_error);
	pthread_mutex_unlock(&s->lock);
}

/* Make the thread's counters visible. */
static void publish(struct stream *s)
{
	struct spool_stats st = { 0 };

	if (s->spool)
		spool_get_stats(s->spool, &st);
	s->tc.queued = s->open_n + s->mq.verdicts;
	s->tc.spooled_now = st.verdicts;
	s->tc.spool_corrupt = st.corrupt;
	s->tc.spool_bytes = st.bytes;
	s->tc.spool_max_bytes = s->spool ? s->spool_max : 0;
	s->tc.connected = s->established;
	pthread_mutex_lock(&s->lock);
	s->pub = s->tc;
	pthread_mutex_unlock(&s->lock);
}

static void set_error(struct stream *s, const char *msg)
{
	pthread_mutex_lock(&s->lock);
	snprintf(s->last_error, sizeof(s->last_error), "%s", msg);
	pthread_mutex_unlock(&s->lock);
	/* The same failure again and again (collector down) is logged once. */
	if (strcmp(msg, s->logged_error)) {
		log_warn("%s", msg);
		snprintf(s->logged_error, sizeof(s->logged_error), "%s", msg);
	} else {
		log_debug("%s", msg);
	}
}

/* Sending --------------------------------------------------------------- */

static int next_msg(void *ctx, const uint8_t **msg, size_t *len)
{
	struct stream *s = ctx;
	struct qbatch *b;
	bool idle = s->mq.unsent == 0 && s->fl_n == 0;

	b = queue_next_unsent(&s->mq);
	if (b) {
		*msg = b->payload;
		*len = b->len;
		s->tc.sent += b->verdicts;
	} else if (s->spool && s->fl_n < SFLIGHT_MAX) {
		struct sflight *f = &s->fl[(s->fl_head + s->fl_n) % SFLIGHT_MAX];
		int r = spool_read(s->spool, &f->rec);

		if (r) {
			if (r != -ENOENT)
				log_error("spool: reading a batch back: %s", strerror(-r));
			return 0;
		}
		s->fl_n++;
		*msg = f->rec.payload;
		*len = f->rec.len;
		s->tc.sent += f->rec.verdicts;
	} else {
		return 0;
	}
	s->tc.batches_sent++;
	if (idle)
		s->last_progress = clock_mono_ms();
	return 1;
}

/* The connection works (first acknowledgement, or the transport said so). */
static void mark_established(struct stream *s)
{
	s->established = true;
	s->unreachable = false;
	s->tc.connects++;
	if (s->had_connection)
		s->tc.reconnects++;
	s->had_connection = true;
}

/* conn_callbacks.message: an Ack for the oldest batch out.  0, or a negative
 * errno (-EBADMSG, -EPROTO) that ends the connection (set_error() says why). */
static int on_ack(void *ctx, const uint8_t *msg, size_t len)
{
	struct stream *s = ctx;
	struct encode_ack ack;
	struct qbatch *b = queue_head(&s->mq);
	uint64_t expect;
	uint32_t verdicts;
	char err[200];
	int rc;

	rc = encode_decode_ack(msg, len, &ack, err, sizeof(err));
	if (rc < 0) {
		set_error(s, err);
		return rc;
	}
	if (b && b->sent) {
		expect = b->sequence;
		verdicts = b->verdicts;
	} else if (s->fl_n) {
		expect = s->fl[s->fl_head].rec.sequence;
		verdicts = s->fl[s->fl_head].rec.verdicts;
	} else {
		snprintf(err, sizeof(err),
			 "collector acknowledged batch %" PRIu64 " but none is outstanding",
			 ack.sequence);
		set_error(s, err);
		return -EPROTO;
	}
	if (ack.sequence != expect) {
		snprintf(err, sizeof(err),
			 "collector acknowledged batch %" PRIu64 ", expected %" PRIu64
			 " (acknowledgements come in order)",
			 ack.sequence, expect);
		set_error(s, err);
		return -EPROTO;
	}
	if (b && b->sent) {
		queue_pop(&s->mq);
	} else {
		spool_record_free(&s->fl[s->fl_head].rec);
		s->fl_head = (s->fl_head + 1) % SFLIGHT_MAX;
		s->fl_n--;
		spool_ack(s->spool);
		/* A slot for the next spool record: the call may have been deferred on it. */
		if (s->conn)
			conn_resume(s->conn);
	}
	s->tc.acked += verdicts;
	s->tc.stored += ack.stored;
	s->tc.duplicates += ack.duplicates;
	s->tc.batches_acked++;
	s->last_progress = clock_mono_ms();
	/* An acknowledgement proves the connection works. */
	if (!s->established)
		mark_established(s);
	backoff_reset(&s->bo);
	return 0;
}

static void on_established(void *ctx)
{
	struct stream *s = ctx;

	if (s->established)
		return;
	mark_established(s);
	backoff_reset(&s->bo);
	log_info("connected to collector %s", s->authority);
}

static const struct conn_callbacks conn_cbs = {
	.next = next_msg,
	.message = on_ack,
	.established = on_established,
};

static int parse_target(const char *target, char *host, char *port, char *err, size_t errlen);

/* The next collector of the list: the connection parameters point at these
 * buffers, so the next conn_open() uses it. */
static void next_target(struct stream *s)
{
	char err[160];

	s->target_idx = (s->target_idx + 1) % s->ntargets;
	parse_target(s->targets[s->target_idx], s->host, s->port, err, sizeof(err));
	snprintf(s->authority, sizeof(s->authority), "%s", s->targets[s->target_idx]);
	if (s->own_server_name && s->tls)
		snprintf(s->server_name, sizeof(s->server_name), "%s", s->host);
	log_info("next collector: %s", s->authority);
}

static void conn_down(struct stream *s, const char *why)
{
	int st = s->conn ? conn_grpc_status(s->conn) : -1;
	unsigned delay;
	char msg[400];

	if (s->finishing && st == 0) {
		/* The clean end of the call at close. */
		conn_free(s->conn);
		s->conn = NULL;
		s->established = false;
		return;
	}

	if (!s->established)
		s->tc.connect_failures++;
	if (st > 0)
		s->tc.refusals++;
	if (s->established)
		s->round_left = s->ntargets - 1; /* a working collector went: try the others */
	if (s->ntargets > 1 && s->round_left > 0) {
		/* Another collector of the list, at once (a short pause only). */
		s->round_left--;
		next_target(s);
		delay = 100;
	} else {
		if (s->ntargets > 1) {
			/* Every collector failed: back off, then start the round again. */
			s->round_left = s->ntargets - 1;
			next_target(s);
		}
		delay = backoff_next(&s->bo);
	}
	snprintf(msg, sizeof(msg), "%s%s", why,
		 s->mq.n || s->fl_n || (s->spool && !spool_is_empty(s->spool)) ?
			 "; batches kept (memory queue / spool), retrying with backoff" :
			 "; retrying with backoff");
	set_error(s, msg);
	log_debug("next attempt in %u ms", delay);
	conn_free(s->conn);
	s->conn = NULL;
	s->established = false;
	s->unreachable = true;
	queue_unsend_all(&s->mq);
	while (s->fl_n) {
		spool_record_free(&s->fl[s->fl_head].rec);
		s->fl_head = (s->fl_head + 1) % SFLIGHT_MAX;
		s->fl_n--;
	}
	s->fl_head = 0;
	if (s->spool)
		spool_rewind(s->spool);
	s->retry_at = clock_mono_ms() + delay;
}

static void conn_up(struct stream *s)
{
	char err[320];

	s->conn = conn_open(&s->cp, &conn_cbs, s, err, sizeof(err));
	s->conn_started = clock_mono_ms();
	s->established = false;
	if (!s->conn) {
		conn_down(s, err);
		return;
	}
	s->last_progress = s->conn_started;
}

/* Batches --------------------------------------------------------------- */

static void place(struct stream *s, uint64_t seq, uint32_t n, const uint8_t *buf, size_t len)
{
	/* Memory while the collector is reachable, the queue has room and the
	 * spool is empty (order); without a spool, memory while it has room. */
	bool mem = !queue_full(&s->mq) &&
		   (!s->spool || (!s->unreachable && spool_is_empty(s->spool)));
	int r;

	if (mem) {
		struct qbatch b = { .sequence = seq, .verdicts = n, .len = (uint32_t)len };

		b.payload = malloc(len ? len : 1);
		if (b.payload) {
			memcpy(b.payload, buf, len);
			queue_push(&s->mq, &b);
			goto placed;
		}
		log_error("batch %" PRIu64 ": out of memory for %zu bytes", seq, len);
	}
	if (!s->spool) {
		if (!(s->drop_logged & 1))
			log_error("memory queue full and no spool: dropping batches (each counted "
				  "in stream.dropped)");
		s->drop_logged |= 1;
		s->tc.dropped += n;
		return;
	}
	r = spool_append(s->spool, seq, n, buf, (uint32_t)len);
	if (r) {
		if (!(s->drop_logged & 2))
			log_error("spool: %s: dropping batches, each counted in stream.dropped",
				  r == -ENOSPC ? "its byte limit is reached" : strerror(-r));
		s->drop_logged |= 2;
		s->tc.dropped += n;
		return;
	}
	s->tc.spooled_total += n;
placed:
	if (s->conn)
		conn_resume(s->conn);
}

static void cut_batch(struct stream *s)
{
	struct stream_counter cs[OWN_COUNTERS + AGENT_COUNTERS_MAX];
	uint64_t now = clock_mono_ms();
	size_t nc = 0;
	bool with;
	uint64_t seq;
	long len;
	char err[200];

	if (!s->open_n)
		return;
	publish(s);
	pthread_mutex_lock(&s->lock);
	with = !s->counters_every_ms || !s->counters_sent_ms || s->closing ||
	       now - s->counters_sent_ms >= s->counters_every_ms;
	if (with) {
		struct stream_counters snap;

		fill_counters(s, &snap);
		nc = stream_counters_list(&snap, cs, OWN_COUNTERS);
		s->counters_sent_ms = now ? now : 1;
	}
	pthread_mutex_unlock(&s->lock);
	if (with && s->counters_fn) {
		size_t k = s->counters_fn(s->counters_ctx, cs + nc, AGENT_COUNTERS_MAX);

		nc += k <= AGENT_COUNTERS_MAX ? k : AGENT_COUNTERS_MAX;
	}
	seq = ++s->next_batch;
	len = encode_batch(s->encbuf, s->enccap, &s->hdr, seq, s->open, s->open_n, cs, (unsigned)nc,
			   err, sizeof(err));
	/* The pictures are in the encoding (or lost with it): their room is free. */
	if (s->open_pic_end) {
		pthread_mutex_lock(&s->lock);
		s->pic_head = s->open_pic_end;
		pthread_mutex_unlock(&s->lock);
		s->open_pic_end = 0;
	}
	s->open_pic_bytes = 0;
	if (len < 0) {
		/* Cannot happen with enccap from encode_batch_bound(): say so loudly. */
		log_error("%s; %u verdicts dropped", err, s->open_n);
		s->tc.dropped += s->open_n;
	} else {
		place(s, seq, s->open_n, s->encbuf, (size_t)len);
	}
	s->open_n = 0;
}

/*
 * Move submitted verdicts into the open batch, cutting full batches.  At
 * most DRAIN_CHUNK verdicts per hold of the lock, so that stream_submit()
 * never waits long behind the thread.
 */
#define DRAIN_CHUNK 64
static void drain_ring(struct stream *s)
{
	for (;;) {
		unsigned take, first, k;
		bool full = false;

		pthread_mutex_lock(&s->lock);
		take = s->ring_n;
		if (take > s->batch_max - s->open_n)
			take = s->batch_max - s->open_n;
		if (take > DRAIN_CHUNK)
			take = DRAIN_CHUNK;
		/* A batch's pictures stop at STREAM_BATCH_PICTURE_BYTES (and
		 * the verdict that reaches it). */
		for (k = 0; k < take && s->pic; k++) {
			const struct encode_verdict *ev =
				&s->ring[(s->ring_head + k) % s->ring_cap];

			if (!ev->pic)
				continue;
			s->open_pic_bytes += ev->pic_len;
			s->open_pic_end = ev->pic_end;
			if (s->open_pic_bytes >= STREAM_BATCH_PICTURE_BYTES) {
				take = k + 1;
				full = true;
			}
		}
		first = take;
		if (s->ring_head + first > s->ring_cap)
			first = s->ring_cap - s->ring_head;
		memcpy(s->open + s->open_n, s->ring + s->ring_head, first * sizeof(*s->open));
		memcpy(s->open + s->open_n + first, s->ring, (take - first) * sizeof(*s->open));
		s->ring_head = (s->ring_head + take) % s->ring_cap;
		s->ring_n -= take;
		pthread_mutex_unlock(&s->lock);
		if (!take)
			return;
		if (!s->open_n)
			s->open_since = clock_mono_ms();
		s->open_n += take;
		if (s->open_n == s->batch_max || full)
			cut_batch(s);
	}
}

static bool all_done(struct stream *s)
{
	bool ring_empty;

	pthread_mutex_lock(&s->lock);
	ring_empty = s->ring_n == 0;
	pthread_mutex_unlock(&s->lock);
	return ring_empty && !s->open_n && !s->mq.n && (!s->spool || spool_is_empty(s->spool));
}

/* At the end: what is still in memory goes to the spool, ahead of what is there. */
static void spill(struct stream *s)
{
	struct spool_batch *b;
	size_t i, n = s->mq.n, done = 0;
	uint64_t lost = 0;

	if (!n)
		return;
	b = calloc(n, sizeof(*b));
	if (s->spool && b) {
		for (i = 0; i < n; i++) {
			struct qbatch *q = queue_at(&s->mq, i);

			b[i] = (struct spool_batch){ q->sequence, q->verdicts, q->len, q->payload };
		}
		done = spool_prepend(s->spool, b, n);
		for (i = 0; i < done; i++)
			s->tc.spooled_total += b[i].verdicts;
	}
	for (i = done; i < n; i++)
		lost += queue_at(&s->mq, i)->verdicts;
	if (lost) {
		log_error("closing: %" PRIu64 " verdicts not acknowledged could not be kept (%s)",
			  lost, s->spool ? "spool full" : "no spool");
		s->tc.dropped += lost;
	}
	free(b);
	while (s->mq.n)
		queue_pop(&s->mq);
}

static void *stream_thread(void *arg)
{
	struct stream *s = arg;
	sigset_t pipe;

	/* A collector that goes away mid-write must not kill the agent with
	 * SIGPIPE (OpenSSL writes with write(2)): the write fails with EPIPE. */
	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, NULL);

	for (;;) {
		struct pollfd pfd[2];
		uint64_t now, deadline;
		bool closing;
		int nfd = 1, timeout;

		drain_ring(s);
		now = clock_mono_ms();
		pthread_mutex_lock(&s->lock);
		closing = s->closing;
		pthread_mutex_unlock(&s->lock);
		if (s->open_n && (closing || now >= s->open_since + s->batch_delay_ms))
			cut_batch(s);
		if (closing && now >= s->close_deadline)
			break;
		if (closing && all_done(s)) {
			/* End the call cleanly: END_STREAM, then the collector's trailers. */
			if (!s->conn || !s->established)
				break;
			if (!s->finishing) {
				s->finishing = true;
				conn_finish(s->conn);
			}
		}
		if (!s->conn && now >= s->retry_at)
			conn_up(s);
		if (s->conn) {
			enum conn_phase ph = conn_get_phase(s->conn);
			bool waiting = s->mq.unsent || s->fl_n;

			if (ph != CONN_H2 && now >= s->conn_started + s->connect_timeout_ms) {
				char why[400];

				snprintf(why, sizeof(why),
					 "collector %s: no connection after %u ms", s->authority,
					 s->connect_timeout_ms);
				conn_down(s, why);
			} else if (waiting && now >= s->last_progress + s->ack_timeout_ms) {
				char why[400];

				snprintf(why, sizeof(why),
					 "collector %s: no acknowledgement for %u ms", s->authority,
					 s->ack_timeout_ms);
				conn_down(s, why);
			}
		}
		publish(s);

		deadline = now + 1000;
		if (s->open_n && s->open_since + s->batch_delay_ms < deadline)
			deadline = s->open_since + s->batch_delay_ms;
		if (!s->conn && s->retry_at < deadline)
			deadline = s->retry_at;
		if (closing && s->close_deadline < deadline)
			deadline = s->close_deadline;
		timeout = deadline > now ? (int)(deadline - now) : 0;
		pfd[0] = (struct pollfd){ .fd = s->evfd, .events = POLLIN };
		if (s->conn) {
			pfd[1] = (struct pollfd){ .fd = conn_fd(s->conn),
						  .events = conn_events(s->conn) };
			nfd = 2;
		}
		if (poll(pfd, (nfds_t)nfd, timeout) < 0 && errno != EINTR) {
			log_error("stream: poll: %s", strerror(errno));
			continue;
		}
		if (pfd[0].revents & POLLIN) {
			uint64_t v;

			if (read(s->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				log_debug("stream: eventfd: %s", strerror(errno));
		}
		if (s->conn) {
			if (nfd == 2 && pfd[1].revents) {
				if (conn_process(s->conn, pfd[1].revents) < 0)
					conn_down(s, conn_error(s->conn));
			} else if (conn_get_phase(s->conn) == CONN_H2) {
				/* New batches may have been resumed into the session. */
				if (conn_process(s->conn, 0) < 0)
					conn_down(s, conn_error(s->conn));
			}
		}
	}
	conn_free(s->conn);
	s->conn = NULL;
	s->established = false;
	while (s->fl_n) {
		spool_record_free(&s->fl[s->fl_head].rec);
		s->fl_head = (s->fl_head + 1) % SFLIGHT_MAX;
		s->fl_n--;
	}
	spill(s);
	publish(s);
	return NULL;
}

/* Set-up ---------------------------------------------------------------- */

/* The header's text fields, for the length checks. */
#define HDR_CAP(field) sizeof(((struct encode_header *)0)->field)

/* src (NULL: "") fits in cap bytes with its NUL: 0, or -EINVAL with err. */
static int check_len(const char *src, size_t cap, const char *what, char *err, size_t errlen)
{
	size_t n = src ? strlen(src) : 0;

	if (n >= cap) {
		snprintf(err, errlen, "%s is %zu bytes long, at most %zu fit", what, n, cap - 1);
		return -EINVAL;
	}
	return 0;
}

/* src (NULL: "") into dst[cap]; checked by check_len() before. */
static void put_str(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

/* A comma list of collectors into out[STREAM_TARGETS_MAX] (each checked by
 * parse_target): their number, or -EINVAL with err. */
static int split_targets(const char *list, char out[][300], char *err, size_t errlen);

/* target -> host[TARGET_HOST_CAP], port[TARGET_PORT_CAP]: 0, or -EINVAL with
 * err. */
static int parse_target(const char *target, char *host, char *port, char *err, size_t errlen)
{
	switch (rpc_hostport_parse(target, RPC_HOSTPORT_CONNECT, host, TARGET_HOST_CAP, port,
				   TARGET_PORT_CAP)) {
	case RPC_HOSTPORT_OK:
		return 0;
	case RPC_HOSTPORT_EMPTY:
		snprintf(err, errlen, "no collector address (HOST:PORT)");
		return -EINVAL;
	case RPC_HOSTPORT_BRACKET:
		snprintf(err, errlen, "collector address %s: expected [IPv6]:PORT", target);
		return -EINVAL;
	case RPC_HOSTPORT_COLON:
		snprintf(err, errlen, "collector address %s: expected HOST:PORT", target);
		return -EINVAL;
	default:
		snprintf(err, errlen, "collector address %s: expected HOST:PORT (port 1-65535)",
			 target);
		return -EINVAL;
	}
}

static int split_targets(const char *list, char out[][300], char *err, size_t errlen)
{
	char host[TARGET_HOST_CAP], port[TARGET_PORT_CAP];
	const char *p = list ? list : "";
	int n = 0;

	do {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		if (n == STREAM_TARGETS_MAX) {
			snprintf(err, errlen, "collector list %s: at most %d collectors", list,
				 STREAM_TARGETS_MAX);
			return -EINVAL;
		}
		if (len >= 300) {
			snprintf(err, errlen, "collector address %.40s...: too long", p);
			return -EINVAL;
		}
		memcpy(out[n], p, len);
		out[n][len] = '\0';
		if (parse_target(out[n], host, port, err, errlen) < 0)
			return -EINVAL;
		n++;
		p = comma ? comma + 1 : NULL;
	} while (p);
	return n;
}

int stream_config_check(const struct stream_config *cfg, char *err, size_t errlen)
{
	char targets[STREAM_TARGETS_MAX][300];
	unsigned i;

	if (split_targets(cfg->target, targets, err, errlen) < 0)
		return -EINVAL;
	if (!cfg->agent_id || !*cfg->agent_id) {
		snprintf(err, errlen, "no agent id");
		return -EINVAL;
	}
	if (cfg->batch_max < 1 || cfg->batch_max > STREAM_BATCH_MAX) {
		snprintf(err, errlen, "batch size %u: expected 1 to %d", cfg->batch_max,
			 STREAM_BATCH_MAX);
		return -EINVAL;
	}
	if (cfg->submit_max < 1 || cfg->queue_max < 1 || cfg->nclasses > STREAM_MAX_CLASSES) {
		snprintf(err, errlen, "submit ring, queue: at least 1; classes: at most %d",
			 STREAM_MAX_CLASSES);
		return -EINVAL;
	}
	if (cfg->picture_bytes &&
	    (cfg->picture_bytes < STREAM_PICTURE_BYTES_MAX || cfg->picture_bytes > (1ull << 30))) {
		snprintf(err, errlen, "picture buffer of %zu bytes: 0 (off) or %d to %llu",
			 cfg->picture_bytes, STREAM_PICTURE_BYTES_MAX, 1ull << 30);
		return -EINVAL;
	}
	if ((cfg->host && check_len(cfg->host, HDR_CAP(host), "host name", err, errlen) < 0) ||
	    check_len(cfg->agent_id, HDR_CAP(agent_id), "agent id", err, errlen) < 0 ||
	    check_len(cfg->version, HDR_CAP(version), "agent version", err, errlen) < 0 ||
	    check_len(cfg->model_name, HDR_CAP(model_name), "model name", err, errlen) < 0 ||
	    check_len(cfg->model_version, HDR_CAP(model_version), "model version", err, errlen) < 0)
		return -EINVAL;
	for (i = 0; i < cfg->nclasses; i++)
		if (check_len(cfg->classes[i], STREAM_CLASS_MAX, "class name", err, errlen) < 0)
			return -EINVAL;
	if (cfg->token && !rpc_token_valid(cfg->token)) {
		snprintf(err, errlen,
			 "access token: expected 1 to %d visible ASCII "
			 "characters, no spaces",
			 RPC_TOKEN_MAX);
		return -EINVAL;
	}
	if (cfg->tls && !!cfg->cert_file != !!cfg->key_file) {
		snprintf(err, errlen, "mutual TLS needs both a certificate and its key");
		return -EINVAL;
	}
	return 0;
}

static void stream_free(struct stream *s)
{
	queue_free(&s->mq);
	spool_close(s->spool);
	if (s->tls)
		SSL_CTX_free(s->tls);
	if (s->evfd >= 0)
		close(s->evfd);
	free(s->ring);
	free(s->pic);
	free(s->open);
	free(s->encbuf);
	free(s->spool_dir);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* The batch header every batch carries, from a checked cfg. */
static void header_init(struct stream *s, const struct stream_config *cfg)
{
	unsigned i;

	if (cfg->host)
		put_str(s->hdr.host, sizeof(s->hdr.host), cfg->host);
	else if (gethostname(s->hdr.host, sizeof(s->hdr.host) - 1) < 0)
		snprintf(s->hdr.host, sizeof(s->hdr.host), "unknown");
	put_str(s->hdr.agent_id, sizeof(s->hdr.agent_id), cfg->agent_id);
	put_str(s->hdr.version, sizeof(s->hdr.version), cfg->version);
	put_str(s->hdr.model_name, sizeof(s->hdr.model_name), cfg->model_name);
	put_str(s->hdr.model_version, sizeof(s->hdr.model_version), cfg->model_version);
	for (i = 0; i < cfg->nclasses; i++)
		put_str(s->hdr.classes[i], STREAM_CLASS_MAX, cfg->classes[i]);
	s->hdr.nclasses = cfg->nclasses;
	s->hdr.run_id = cfg->run_id ? cfg->run_id : clock_real_ns();
}

/* Address, token and TLS context of the connections to come.  0, or -EINVAL
 * with err (the TLS files). */
static int conn_params_init(struct stream *s, const struct stream_config *cfg, char *err,
			    size_t errlen)
{
	int n = split_targets(cfg->target, s->targets, err, errlen);

	if (n < 0)
		return -EINVAL;
	s->ntargets = (unsigned)n;
	s->target_idx = 0;
	s->round_left = s->ntargets - 1;
	s->own_server_name = !cfg->server_name;
	parse_target(s->targets[0], s->host, s->port, err, errlen);
	snprintf(s->authority, sizeof(s->authority), "%s", s->targets[0]);
	if (cfg->token)
		rpc_token_header(cfg->token, s->authorization, sizeof(s->authorization));
	if (cfg->tls) {
		struct rpc_tls_config tc = {
			.cert_file = cfg->cert_file,
			.key_file = cfg->key_file,
			.ca_file = cfg->ca_file,
			.server_name = cfg->server_name ? cfg->server_name : s->host,
		};

		snprintf(s->server_name, sizeof(s->server_name), "%s", tc.server_name);
		s->tls = rpc_tls_client_ctx(&tc, err, errlen);
		if (!s->tls)
			return -EINVAL;
	}
	s->cp = (struct conn_params){
		.host = s->host,
		.port = s->port,
		.authority = s->authority,
		.tls = s->tls,
		.server_name = s->server_name,
		.authorization = cfg->token ? s->authorization : NULL,
		.user_agent = "flowpic-stream/" FLOWPIC_STREAM_VERSION,
	};
	return 0;
}

/* Submit ring, open batch, encoding buffer, memory queue.  0, or -ENOMEM
 * with err. */
static int buffers_init(struct stream *s, const struct stream_config *cfg, char *err, size_t errlen)
{
	s->ring_cap = cfg->submit_max;
	s->ring = calloc(s->ring_cap, sizeof(*s->ring));
	s->open = calloc(s->batch_max, sizeof(*s->open));
	s->enccap = encode_batch_bound(s->batch_max, OWN_COUNTERS + AGENT_COUNTERS_MAX);
	if (cfg->picture_bytes) {
		/* A batch's pictures: below the cut, plus the one that reached it. */
		s->enccap += encode_pictures_bound(s->batch_max, STREAM_BATCH_PICTURE_BYTES - 1 +
									 STREAM_PICTURE_BYTES_MAX);
		s->pic_cap = cfg->picture_bytes;
		s->pic = malloc(s->pic_cap);
	}
	s->encbuf = malloc(s->enccap);
	s->spool_dir = cfg->spool_dir ? strdup(cfg->spool_dir) : NULL;
	if (!s->ring || !s->open || !s->encbuf || (cfg->spool_dir && !s->spool_dir) ||
	    (cfg->picture_bytes && !s->pic) || queue_init(&s->mq, cfg->queue_max) < 0) {
		snprintf(err, errlen,
			 "out of memory (submit ring of %u verdicts, picture buffer of %zu bytes)",
			 cfg->submit_max, cfg->picture_bytes);
		return -ENOMEM;
	}
	s->spool_max = cfg->spool_max_bytes;
	s->spool_seg = cfg->spool_segment_bytes ? cfg->spool_segment_bytes : 4ull << 20;
	s->fsync = cfg->fsync;
	return 0;
}

struct stream *stream_prepare(const struct stream_config *cfg, char *err, size_t errlen)
{
	struct stream *s;
	int r;

	r = stream_config_check(cfg, err, errlen);
	if (r < 0) {
		errno = -r;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	s->evfd = -1;
	pthread_mutex_init(&s->lock, NULL);
	header_init(s, cfg);
	r = conn_params_init(s, cfg, err, errlen);
	if (r < 0)
		goto err_free;
	s->batch_max = cfg->batch_max;
	s->batch_delay_ms = cfg->batch_delay_ms;
	s->connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 20000;
	s->ack_timeout_ms = cfg->ack_timeout_ms ? cfg->ack_timeout_ms : 30000;
	s->counters_fn = cfg->counters_fn;
	s->counters_ctx = cfg->counters_ctx;
	s->counters_every_ms = cfg->counters_every_ms;
	backoff_init(&s->bo, cfg->backoff_initial_ms, cfg->backoff_multiplier, cfg->backoff_jitter,
		     cfg->backoff_max_ms, s->hdr.run_id ^ (uint64_t)getpid());
	r = buffers_init(s, cfg, err, errlen);
	if (r < 0)
		goto err_free;
	s->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->evfd < 0) {
		r = -errno;
		snprintf(err, errlen, "eventfd: %s", strerror(-r));
		goto err_free;
	}
	s->next_seq = 1;
	return s;

err_free:
	stream_free(s);
	errno = -r;
	return NULL;
}

int stream_start(struct stream *s, char *err, size_t errlen)
{
	struct spool_stats st;
	int r;

	if (s->spool_dir) {
		s->spool =
			spool_open(s->spool_dir, s->spool_max, s->spool_seg, s->fsync, err, errlen);
		if (!s->spool)
			return errno ? -errno : -EIO;
		spool_get_stats(s->spool, &st);
		s->tc.replayed = st.found_verdicts;
	}
	publish(s);
	r = pthread_create(&s->thread, NULL, stream_thread, s);
	if (r) {
		snprintf(err, errlen, "cannot start the stream thread: %s", strerror(r));
		return -r;
	}
	s->started = true;
	return 0;
}

struct stream *stream_new(const struct stream_config *cfg, char *err, size_t errlen)
{
	struct stream *s = stream_prepare(cfg, err, errlen);
	int r;

	if (!s)
		return NULL;
	r = stream_start(s, err, errlen);
	if (r < 0) {
		stream_free(s);
		errno = -r;
		return NULL;
	}
	return s;
}

static const char *const reason_names[STREAM_REASON_COUNT] = {
	"unspecified", "ok", "other", "sparse", "disagree", "low_confidence", "untracked",
};

const char *stream_reason_name(unsigned r)
{
	return r < STREAM_REASON_COUNT ? reason_names[r] : "unspecified";
}

/* The names classify --json prints, or the proto's (REASON_SPARSE). */
int stream_reason_parse(const char *name)
{
	int r;

	if (!strncmp(name, "REASON_", 7)) {
		for (r = 0; r < STREAM_REASON_COUNT; r++)
			if (!strcasecmp(name + 7, reason_names[r]))
				return r;
		return -1;
	}
	for (r = 0; r < STREAM_REASON_COUNT; r++)
		if (!strcmp(name, reason_names[r]))
			return r;
	return -1;
}

/* Room for len contiguous bytes in the picture buffer (under lock): their
 * position, or UINT64_MAX when it is full. */
static uint64_t pic_reserve(struct stream *s, size_t len)
{
	uint64_t p = s->pic_tail, off = p % s->pic_cap;

	if (off + len > s->pic_cap)
		p += s->pic_cap - off; /* would wrap: the next lap */
	if (p + len - s->pic_head > s->pic_cap)
		return UINT64_MAX;
	s->pic_tail = p + len;
	return p;
}

/* The verdict's picture into the picture buffer, encoded (under lock); or
 * counted as left out. */
static void pic_put(struct stream *s, struct encode_verdict *slot, int check, size_t len)
{
	uint64_t p;

	slot->pic = NULL;
	slot->pic_len = 0;
	slot->pic_end = 0;
	if (check == -E2BIG) {
		s->pictures_too_big++;
		return;
	}
	p = s->pic ? pic_reserve(s, len) : UINT64_MAX;
	if (p == UINT64_MAX) {
		s->pictures_no_room++;
		return;
	}
	/* len is the checked picture's encoded size: it fits. */
	if (encode_cells(s->pic + p % s->pic_cap, len, &slot->v.cells) != (long)len) {
		s->pictures_no_room++;
		return;
	}
	slot->pic = s->pic + p % s->pic_cap;
	slot->pic_len = (uint32_t)len;
	slot->pic_end = p + len;
	s->pictures++;
}

int stream_submit(struct stream *s, const struct stream_verdict *v, uint64_t *seq)
{
	struct encode_verdict *slot;
	bool wake, has_pic = v->cells.rows || v->cells.cols;
	size_t pic_len = 0;
	char err[200];
	int check = 0;

	if (v->nprobs > STREAM_MAX_CLASSES || v->direction > STREAM_DIR_INBOUND ||
	    v->stage > STREAM_STAGE_FINAL || v->reason >= STREAM_REASON_COUNT)
		return -EINVAL;
	if (has_pic) {
		/* Only block verdicts have a picture; a bad one is the caller's bug. */
		if (v->stage != STREAM_STAGE_EARLY && v->stage != STREAM_STAGE_BLOCK)
			return -EINVAL;
		check = encode_cells_check(&v->cells, err, sizeof(err));
		if (check == -EINVAL) {
			log_debug("stream_submit: %s", err);
			return -EINVAL;
		}
		if (!check)
			pic_len = encode_cells_size(&v->cells);
	}
	pthread_mutex_lock(&s->lock);
	if (s->closing) {
		pthread_mutex_unlock(&s->lock);
		return -ESHUTDOWN;
	}
	if (s->ring_n == s->ring_cap) {
		s->rejected++;
		pthread_mutex_unlock(&s->lock);
		return -EAGAIN;
	}
	slot = &s->ring[(s->ring_head + s->ring_n) % s->ring_cap];
	slot->v = *v;
	slot->seq = s->next_seq++;
	slot->pic = NULL;
	if (has_pic)
		pic_put(s, slot, check, pic_len);
	/* The caller's arrays are not ours to keep. */
	memset(&slot->v.cells, 0, sizeof(slot->v.cells));
	if (seq)
		*seq = slot->seq;
	/* Wake the thread once per burst, and when a batch is full. */
	wake = s->ring_n == 0 || s->ring_n + 1 == s->batch_max;
	s->ring_n++;
	s->submitted++;
	pthread_mutex_unlock(&s->lock);
	if (wake) {
		uint64_t one = 1;

		if (write(s->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_debug("stream: eventfd: %s", strerror(errno));
	}
	return 0;
}

int stream_close(struct stream *s, unsigned timeout_ms, struct stream_counters *final)
{
	uint64_t one = 1;
	struct stream_counters c;

	if (!s)
		return 0;
	if (!s->started) { /* prepared only: nothing was submitted */
		if (final)
			memset(final, 0, sizeof(*final));
		stream_free(s);
		return 0;
	}
	pthread_mutex_lock(&s->lock);
	s->closing = true;
	s->close_deadline = clock_mono_ms() + timeout_ms;
	pthread_mutex_unlock(&s->lock);
	if (write(s->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_debug("stream: eventfd: %s", strerror(errno));
	pthread_join(s->thread, NULL);
	pthread_mutex_lock(&s->lock);
	fill_counters(s, &c);
	pthread_mutex_unlock(&s->lock);
	if (final)
		*final = c;
	stream_free(s);
	return c.dropped ? -EIO : 0;
}
