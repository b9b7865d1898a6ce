// SPDX-License-Identifier: MIT
/*
 * stream_bench.c - agent-side cost of the verdict stream: CPU time of the
 * whole process (the caller's submits and the stream thread's batching,
 * nanopb encoding, HTTP/2, TLS) per 1,000 verdicts streamed to a gRPC
 * server and acknowledged; and, as the baseline, nanopb encoding alone.
 *
 *   stream_bench encode N BATCH
 *   stream_bench stream N BATCH HOST:PORT [CA-FILE]
 * Prints one JSON line.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "stream/encode.h"
#include "stream/stream.h"

static uint64_t ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t cpu_ns(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru); /* every thread of the process */
	return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000ull +
	       ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000ull;
}

/* A realistic verdict: IPv4 flow, five classes, block stage. */
static void make(struct stream_verdict *v, uint64_t i)
{
	memset(v, 0, sizeof(*v));
	v->src_addr[10] = v->src_addr[11] = v->dst_addr[10] = v->dst_addr[11] = 0xff;
	v->src_addr[12] = 10;
	v->src_addr[15] = (uint8_t)i;
	v->dst_addr[12] = 192;
	v->dst_addr[15] = (uint8_t)(i >> 8);
	v->src_port = (uint16_t)(1024 + i % 60000);
	v->dst_port = 443;
	v->protocol = 6;
	v->direction = STREAM_DIR_OUTBOUND;
	v->stage = STREAM_STAGE_BLOCK;
	v->flow_id = i;
	v->start_unix_ns = 1795767794793470000ull + i * 1000;
	v->duration_ns = 60000000000ull;
	v->packets_fwd = 1000 + i % 77;
	v->packets_rev = 2000 + i % 91;
	v->bytes_fwd = 100000 + i;
	v->bytes_rev = 9000000 + i;
	v->block_index = i % 10;
	v->blocks = 1;
	v->confidence = 0.8125f;
	v->nprobs = 5;
	v->probs[0] = 0.0625f;
	v->probs[1] = 0.8125f;
	v->probs[2] = 0.0625f;
	v->probs[3] = 0.03125f;
	v->probs[4] = 0.03125f;
	strcpy(v->interface, "eth0");
	strcpy(v->class_name, "video");
}

static int bench_encode(uint64_t n, unsigned batch)
{
	struct encode_header h = { .host = "bench",
				   .agent_id = "bench",
				   .run_id = 1,
				   .model_name = "lenet32",
				   .nclasses = 0 };
	struct encode_verdict *v = calloc(batch, sizeof(*v));
	size_t cap = encode_batch_bound(batch, 0);
	uint8_t *buf = malloc(cap);
	uint64_t i, bytes = 0, c0, w0, seq = 0;
	char err[200];

	if (!v || !buf)
		return 1;
	for (i = 0; i < batch; i++)
		make(&v[i].v, i);
	c0 = cpu_ns();
	w0 = ns(CLOCK_MONOTONIC);
	for (i = 0; i < n; i += batch) {
		unsigned k, m = n - i < batch ? (unsigned)(n - i) : batch;
		long len;

		/* What the stream thread does per batch: copy the verdicts in, encode. */
		for (k = 0; k < m; k++)
			v[k].seq = ++seq;
		len = encode_batch(buf, cap, &h, i / batch + 1, v, m, NULL, 0, err, sizeof(err));
		if (len < 0) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		bytes += (uint64_t)len;
	}
	printf("{\"mode\":\"encode\",\"verdicts\":%" PRIu64 ",\"acked\":%" PRIu64
	       ",\"cpu_ns\":%" PRIu64 ",\"wall_ns\":%" PRIu64 ",\"bytes\":%" PRIu64
	       ",\"submit_ns\":0}\n",
	       n, n, cpu_ns() - c0, ns(CLOCK_MONOTONIC) - w0, bytes);
	free(v);
	free(buf);
	return 0;
}

static int bench_stream(uint64_t n, unsigned batch, const char *target, const char *ca)
{
	struct stream_config cfg;
	struct stream_counters c;
	static struct stream_verdict pre[1024];
	struct stream *s;
	char err[320];
	uint64_t i, c0, w0, t0, submit_ns;

	stream_config_default(&cfg);
	cfg.target = target;
	cfg.agent_id = "bench";
	cfg.batch_max = batch;
	cfg.batch_delay_ms = 50;
	cfg.submit_max = 1u << 16;
	/* Room for everything: the bench measures sending, not the spool or drops. */
	cfg.queue_max = (unsigned)(n / batch + 2);
	if (ca) {
		cfg.tls = true;
		cfg.ca_file = ca;
	}
	c0 = cpu_ns();
	w0 = ns(CLOCK_MONOTONIC);
	s = stream_new(&cfg, err, sizeof(err));
	if (!s) {
		fprintf(stderr, "stream_bench: %s\n", err);
		return 1;
	}
	/* The caller's CPU for the submits alone: verdicts made beforehand,
	 * waits for room (-EAGAIN) sleep, so this thread's CPU is the submits. */
	for (i = 0; i < 1024; i++)
		make(&pre[i], i);
	t0 = ns(CLOCK_THREAD_CPUTIME_ID);
	for (i = 0; i < n; i++) {
		pre[i % 1024].flow_id = i;
		while (stream_submit(s, &pre[i % 1024], NULL) == -EAGAIN) {
			struct timespec ts = { 0, 100000 };

			nanosleep(&ts, NULL);
		}
	}
	submit_ns = ns(CLOCK_THREAD_CPUTIME_ID) - t0;
	stream_close(s, 120000, &c);
	printf("{\"mode\":\"stream\",\"verdicts\":%" PRIu64 ",\"acked\":%" PRIu64
	       ",\"cpu_ns\":%" PRIu64 ",\"wall_ns\":%" PRIu64 ",\"bytes\":0,\"submit_ns\":%" PRIu64
	       ",\"rejected\":%" PRIu64 ",\"reconnects\":%" PRIu64 "}\n",
	       n, c.acked, cpu_ns() - c0, ns(CLOCK_MONOTONIC) - w0, submit_ns, c.rejected,
	       c.reconnects);
	return c.acked == n ? 0 : 1;
}

int main(int argc, char **argv)
{
	uint64_t n;
	unsigned batch;

	if (argc < 4) {
		fprintf(stderr,
			"usage: stream_bench encode N BATCH | stream N BATCH HOST:PORT [CA]\n");
		return 2;
	}
	n = strtoull(argv[2], NULL, 10);
	batch = (unsigned)strtoul(argv[3], NULL, 10);
	if (!n || !batch || batch > STREAM_BATCH_MAX)
		return 2;
	if (!strcmp(argv[1], "encode"))
		return bench_encode(n, batch);
	if (!strcmp(argv[1], "stream") && argc >= 5)
		return bench_stream(n, batch, argv[4], argc > 5 ? argv[5] : NULL);
	return 2;
}
