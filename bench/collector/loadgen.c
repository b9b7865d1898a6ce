// SPDX-License-Identifier: MIT
/*
 * loadgen.c - a gRPC load generator for flowpic-collector: one connection,
 * one Collector.Stream call, N batches of M synthetic verdicts with at most
 * W batches unacknowledged; prints one JSON line (verdicts, acks, seconds,
 * verdicts per second, final grpc-status).  HTTP/2 is nghttp2, framing and
 * TLS come from rpc/, messages from the protobuf-c code of proto/flowpic.proto.
 * The real agent sender lives in stream/; this exists so the benchmark
 * measures the collector, not a client in Python.
 */
#include <argp.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "flowpic.pb-c.h"
#include "rpc/grpc_frame.h"
#include "rpc/grpc_status.h"
#include "core/number.h"
#include "rpc/tls.h"
#include "rpc/token.h"

struct opts {
	const char *target, *token, *agent_id, *ca, *cert, *key, *server_name;
	uint64_t batches, per_batch, inflight, run_id;
};

struct gen {
	struct opts o;
	int fd;
	SSL *ssl;
	nghttp2_session *h2;
	int32_t sid;
	uint64_t next_batch, acked, stored, dups;
	uint8_t *msg; /* the encoded batch being sent */
	size_t msg_len, msg_off;
	struct grpc_reader rd;
	int status; /* grpc-status, -1 until the trailers */
	char message[256];
	bool closed, deferred;
};

static const char *classes[] = { "voip", "video", "file_transfer", "chat", "browsing" };

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Batch k (1-based) carries verdicts (k-1)*M+1 .. k*M.  0, or -ENOMEM. */
static int encode_batch(struct gen *g, uint64_t k)
{
	Flowpic__V1__Batch b = FLOWPIC__V1__BATCH__INIT;
	Flowpic__V1__Agent a = FLOWPIC__V1__AGENT__INIT;
	Flowpic__V1__Model m = FLOWPIC__V1__MODEL__INIT;
	size_t n = g->o.per_batch, i, sz;
	Flowpic__V1__Verdict *v = calloc(n, sizeof(*v));
	Flowpic__V1__Verdict **vp = calloc(n, sizeof(*vp));
	Flowpic__V1__FlowKey *fk = calloc(n, sizeof(*fk));
	Flowpic__V1__Span *sp = calloc(n, sizeof(*sp));
	uint8_t(*addr)[4] = calloc(n, 4);
	static const uint8_t dst[4] = { 192, 0, 2, 1 };
	float probs[5];

	if (!v || !vp || !fk || !sp || !addr)
		return -ENOMEM;
	a.host = "loadgen";
	a.agent_id = (char *)g->o.agent_id;
	a.run_id = g->o.run_id;
	a.version = "bench";
	m.name = "lenet32";
	m.version = "1";
	m.n_classes = 5;
	m.classes = (char **)classes;
	b.agent = &a;
	b.model = &m;
	b.sequence = k;
	b.n_verdicts = n;
	b.verdicts = vp;
	for (i = 0; i < n; i++) {
		uint64_t seq = (k - 1) * n + i + 1;

		flowpic__v1__verdict__init(&v[i]);
		flowpic__v1__flow_key__init(&fk[i]);
		flowpic__v1__span__init(&sp[i]);
		addr[i][0] = 10;
		addr[i][1] = (uint8_t)(seq >> 16);
		addr[i][2] = (uint8_t)(seq >> 8);
		addr[i][3] = (uint8_t)seq;
		fk[i].src_addr.data = addr[i];
		fk[i].src_addr.len = 4;
		fk[i].dst_addr.data = (uint8_t *)dst;
		fk[i].dst_addr.len = 4;
		fk[i].src_port = 40000 + seq % 20000;
		fk[i].dst_port = 443;
		fk[i].protocol = 6;
		sp[i].start_unix_ns = 1764230400000000000ull + seq * 1000000ull;
		sp[i].duration_ns = 60000000000ull;
		sp[i].packets_fwd = seq % 1000;
		sp[i].packets_rev = seq % 700;
		sp[i].bytes_fwd = seq % 100000;
		sp[i].bytes_rev = seq % 70000;
		v[i].seq = seq;
		v[i].interface = "eth0";
		v[i].flow = &fk[i];
		v[i].direction = FLOWPIC__V1__DIRECTION__DIRECTION_OUTBOUND;
		v[i].flow_id = seq;
		v[i].stage = FLOWPIC__V1__STAGE__STAGE_BLOCK;
		v[i].span = &sp[i];
		v[i].class_name = (char *)classes[seq % 5];
		v[i].confidence = 0.8f;
		v[i].n_probs = 5;
		v[i].probs = probs;
		vp[i] = &v[i];
	}
	probs[0] = probs[1] = probs[2] = probs[3] = 0.05f;
	probs[4] = 0.8f;
	sz = flowpic__v1__batch__get_packed_size(&b);
	free(g->msg);
	g->msg = malloc(sz + GRPC_PREFIX_LEN);
	if (g->msg) {
		grpc_frame_prefix(g->msg, (uint32_t)sz);
		flowpic__v1__batch__pack(&b, g->msg + GRPC_PREFIX_LEN);
		g->msg_len = sz + GRPC_PREFIX_LEN;
		g->msg_off = 0;
	}
	free(v);
	free(vp);
	free(fk);
	free(sp);
	free(addr);
	return g->msg ? 0 : -1;
}

static ssize_t body_read(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
			 nghttp2_data_source *src, void *user)
{
	struct gen *g = user;
	size_t n;

	(void)h2;
	(void)id;
	(void)src;
	if (g->msg_off == g->msg_len) {
		if (g->next_batch > g->o.batches) {
			*flags |= NGHTTP2_DATA_FLAG_EOF;
			return 0;
		}
		if (g->next_batch - 1 - g->acked >= g->o.inflight) {
			g->deferred = true;
			return NGHTTP2_ERR_DEFERRED;
		}
		if (encode_batch(g, g->next_batch) < 0)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		g->next_batch++;
	}
	n = g->msg_len - g->msg_off;
	if (n > len)
		n = len;
	memcpy(buf, g->msg + g->msg_off, n);
	g->msg_off += n;
	return (ssize_t)n;
}

/* grpc_msg_cb: 0, or -EBADMSG for a malformed Ack. */
static int on_ack(void *ctx, const uint8_t *msg, size_t len)
{
	struct gen *g = ctx;
	Flowpic__V1__Ack *a = flowpic__v1__ack__unpack(NULL, len, msg);

	if (!a)
		return -EBADMSG;
	g->acked++;
	g->stored += a->stored;
	g->dups += a->duplicates;
	flowpic__v1__ack__free_unpacked(a, NULL);
	if (g->deferred) {
		g->deferred = false;
		nghttp2_session_resume_data(g->h2, g->sid);
	}
	return 0;
}

static int on_data(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
		   void *user)
{
	struct gen *g = user;

	(void)h2;
	(void)flags;
	(void)id;
	return grpc_reader_feed(&g->rd, data, len, on_ack, g) < 0 ? NGHTTP2_ERR_CALLBACK_FAILURE :
								    0;
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
		     const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
	struct gen *g = user;

	(void)h2;
	(void)f;
	(void)flags;
	if (nlen == 11 && !memcmp(name, GRPC_HDR_STATUS, 11))
		g->status = grpc_status_parse((const char *)value, vlen);
	else if (nlen == 12 && !memcmp(name, GRPC_HDR_MESSAGE, 12))
		grpc_message_decode((const char *)value, vlen, g->message, sizeof(g->message));
	return 0;
}

static int on_close(nghttp2_session *h2, int32_t id, uint32_t code, void *user)
{
	struct gen *g = user;

	(void)h2;
	(void)id;
	(void)code;
	g->closed = true;
	return 0;
}

static ssize_t io_send(struct gen *g, const uint8_t *p, size_t n)
{
	if (g->ssl) {
		int r = SSL_write(g->ssl, p, (int)n);

		if (r > 0)
			return r;
		r = SSL_get_error(g->ssl, r);
		return r == SSL_ERROR_WANT_WRITE || r == SSL_ERROR_WANT_READ ? 0 : -1;
	}
	for (;;) {
		ssize_t r = send(g->fd, p, n, MSG_NOSIGNAL);

		if (r >= 0 || errno != EINTR)
			return r < 0 && (errno == EAGAIN) ? 0 : r;
	}
}

static ssize_t io_recv(struct gen *g, uint8_t *p, size_t n)
{
	if (g->ssl) {
		int r = SSL_read(g->ssl, p, (int)n);

		if (r > 0)
			return r;
		r = SSL_get_error(g->ssl, r);
		return r == SSL_ERROR_WANT_READ || r == SSL_ERROR_WANT_WRITE ? -2 : -1;
	}
	for (;;) {
		ssize_t r = recv(g->fd, p, n, 0);

		if (r >= 0 || errno != EINTR)
			return r < 0 && errno == EAGAIN ? -2 : r;
	}
}

/* "host:port" or "[v6]:port"; every address of the host is tried.  The
 * connected socket, or a negative errno (-EINVAL: no port, -EHOSTUNREACH: no
 * address, else the last connect's). */
static int connect_to(const char *target)
{
	char host[256], port[16];
	const char *colon = strrchr(target, ':');
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai, *a;
	int fd = -1, one = 1, e = EHOSTUNREACH;

	if (!colon)
		return -EINVAL;
	if (target[0] == '[')
		snprintf(host, sizeof(host), "%.*s", (int)(colon - target - 2), target + 1);
	else
		snprintf(host, sizeof(host), "%.*s", (int)(colon - target), target);
	snprintf(port, sizeof(port), "%s", colon + 1);
	if (getaddrinfo(host, port, &hints, &ai))
		return -EHOSTUNREACH;
	for (a = ai; a; a = a->ai_next) {
		fd = socket(a->ai_family, SOCK_STREAM, 0);
		if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) == 0)
			break;
		e = errno;
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd < 0)
		return -e;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static const struct argp_option options[] = {
	{ "target", 't', "HOST:PORT", 0, "collector address (default 127.0.0.1:50051)", 0 },
	{ "token", 'k', "TOKEN", 0, "access token", 0 },
	{ "batches", 'b', "N", 0, "batches to send (default 1000)", 0 },
	{ "per-batch", 'm', "M", 0, "verdicts per batch (default 500)", 0 },
	{ "inflight", 'w', "W", 0,
	  "batches sent but not yet acknowledged, at most (default 64, as an agent's queue)", 0 },
	{ "agent-id", 'a', "ID", 0, "agent_id (default loadgen)", 0 },
	{ "run-id", 'r', "N", 0, "run_id (default: now)", 0 },
	{ "ca", 1000, "PEM", 0, "TLS: the server's CA", 0 },
	{ "cert", 1001, "PEM", 0, "mutual TLS: our certificate", 0 },
	{ "key", 1002, "PEM", 0, "mutual TLS: our key", 0 },
	{ "server-name", 1003, "NAME", 0, "TLS: the name to verify (default: the host)", 0 },
	{ 0 }
};

static error_t parse(int key, char *arg, struct argp_state *state)
{
	struct opts *o = state->input;
	uint64_t *dst = NULL;

	switch (key) {
	case 't':
		o->target = arg;
		return 0;
	case 'k':
		o->token = arg;
		return 0;
	case 'a':
		o->agent_id = arg;
		return 0;
	case 1000:
		o->ca = arg;
		return 0;
	case 1001:
		o->cert = arg;
		return 0;
	case 1002:
		o->key = arg;
		return 0;
	case 1003:
		o->server_name = arg;
		return 0;
	case 'b':
		dst = &o->batches;
		break;
	case 'm':
		dst = &o->per_batch;
		break;
	case 'w':
		dst = &o->inflight;
		break;
	case 'r':
		dst = &o->run_id;
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	if (number_parse_u64(arg, 1, UINT64_MAX / 2, dst))
		argp_error(state, "-%c '%s': give a whole number from 1", key, arg);
	return 0;
}

int main(int argc, char **argv)
{
	static const char doc[] =
		"Stream synthetic verdicts to flowpic-collector as fast as it acknowledges them."
		"\n\nExample:\n  loadgen --target 127.0.0.1:50051 --token tok --batches 400 --per-batch 500";
	struct argp argp = { options, parse, NULL, doc, NULL, NULL, NULL };
	struct gen g;
	nghttp2_session_callbacks *cbs;
	nghttp2_data_provider dp = { .read_callback = body_read };
	nghttp2_settings_entry iv[] = { { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20 } };
	char auth[RPC_TOKEN_MAX + 16], err[512], authority[300];
	nghttp2_nv hdrs[8];
	size_t nh = 0;
	uint8_t buf[65536];
	SSL_CTX *ctx = NULL;
	double t0, t1;

	memset(&g, 0, sizeof(g));
	g.o.target = "127.0.0.1:50051";
	g.o.agent_id = "loadgen";
	g.o.batches = 1000;
	g.o.per_batch = 500;
	g.o.inflight = 64;
	g.o.run_id = (uint64_t)time(NULL) * 1000000000ull;
	g.status = -1;
	argp_parse(&argp, argc, argv, 0, NULL, &g.o);
	grpc_reader_init(&g.rd, 1 << 20);
	g.fd = connect_to(g.o.target);
	if (g.fd < 0) {
		fprintf(stderr, "loadgen: cannot connect to %s\n", g.o.target);
		return 1;
	}
	snprintf(authority, sizeof(authority), "%s", g.o.target);
	if (g.o.ca) {
		struct rpc_tls_config tc = { .ca_file = g.o.ca,
					     .cert_file = g.o.cert,
					     .key_file = g.o.key };
		char host[256];

		snprintf(host, sizeof(host), "%.*s", (int)(strrchr(g.o.target, ':') - g.o.target),
			 g.o.target);
		ctx = rpc_tls_client_ctx(&tc, err, sizeof(err));
		if (!ctx) {
			fprintf(stderr, "loadgen: %s\n", err);
			return 1;
		}
		g.ssl = SSL_new(ctx);
		SSL_set_fd(g.ssl, g.fd);
		rpc_tls_client_prepare(g.ssl, g.o.server_name ? g.o.server_name : host);
		if (SSL_connect(g.ssl) != 1 || !rpc_tls_alpn_is_h2(g.ssl)) {
			fprintf(stderr, "loadgen: %s\n",
				rpc_tls_errors("TLS handshake", err, sizeof(err)));
			return 1;
		}
	}
	nghttp2_session_callbacks_new(&cbs);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_close);
	nghttp2_session_client_new(&g.h2, cbs, &g);
	nghttp2_session_callbacks_del(cbs);
	nghttp2_submit_settings(g.h2, NGHTTP2_FLAG_NONE, iv, 1);
	nghttp2_session_set_local_window_size(g.h2, NGHTTP2_FLAG_NONE, 0, 1 << 24);
#define NV(n, v) \
	hdrs[nh++] = (nghttp2_nv){ (uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), 0 }
	NV(":method", "POST");
	NV(":scheme", g.ssl ? "https" : "http");
	NV(":path", "/flowpic.v1.Collector/Stream");
	NV(":authority", authority);
	NV("content-type", "application/grpc");
	NV("te", "trailers");
	if (g.o.token) {
		rpc_token_header(g.o.token, auth, sizeof(auth));
		NV("authorization", auth);
	}
	g.next_batch = 1;
	g.sid = nghttp2_submit_request(g.h2, NULL, hdrs, nh, &dp, NULL);
	t0 = now_s();
	while (!g.closed) {
		const uint8_t *p;
		ssize_t n;
		struct pollfd pfd = { .fd = g.fd, .events = POLLIN };

		while ((n = nghttp2_session_mem_send(g.h2, &p)) > 0) {
			ssize_t off = 0;

			while (off < n) {
				ssize_t w = io_send(&g, p + off, (size_t)(n - off));

				if (w < 0) {
					fprintf(stderr, "loadgen: send failed\n");
					return 1;
				}
				off += w;
			}
		}
		if (g.closed)
			break;
		if (!(g.ssl && SSL_pending(g.ssl)) && poll(&pfd, 1, 30000) <= 0) {
			fprintf(stderr, "loadgen: no answer for 30 s\n");
			return 1;
		}
		n = io_recv(&g, buf, sizeof(buf));
		if (n == -2)
			continue;
		if (n <= 0) {
			fprintf(stderr, "loadgen: connection closed by the collector\n");
			break;
		}
		if (nghttp2_session_mem_recv(g.h2, buf, (size_t)n) < 0) {
			fprintf(stderr, "loadgen: HTTP/2 error\n");
			return 1;
		}
	}
	t1 = now_s();
	printf("{\"verdicts\":%" PRIu64 ",\"batches\":%" PRIu64 ",\"acks\":%" PRIu64
	       ",\"stored\":%" PRIu64 ",\"duplicates\":%" PRIu64 ",\"seconds\":%.3f,"
	       "\"verdicts_per_s\":%.0f,\"grpc_status\":%d,\"grpc_message\":\"%s\"}\n",
	       g.o.batches * g.o.per_batch, g.o.batches, g.acked, g.stored, g.dups, t1 - t0,
	       (double)(g.stored + g.dups) / (t1 - t0), g.status, g.message);
	nghttp2_session_del(g.h2);
	if (g.ssl)
		SSL_free(g.ssl);
	SSL_CTX_free(ctx);
	close(g.fd);
	free(g.msg);
	grpc_reader_free(&g.rd);
	return g.status == 0 && g.acked == g.o.batches ? 0 : 1;
}
