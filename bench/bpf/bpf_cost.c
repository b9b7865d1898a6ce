// SPDX-License-Identifier: MIT
/*
 * bpf_cost - BPF cost per packet with bpf_prog_test_run_opts(repeat): the
 * capture's XDP and TC programs in each design against an empty XDP
 * program, on a 64-byte UDP frame of one flow and of 256 flows, then the
 * userspace cost of decoding what the rings hold.  One table row per line.
 *
 * bpf_cost --stress SECONDS: the ring under the fastest producer this host
 * has: the XDP program run back to back by bpf_prog_test_run (256 flows) on
 * CPU 0 while the consumer drains the default 8 MiB rings on CPU 1; the
 * rate reached and what was lost, per design.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf/capture.h"
#include "empty_bpf.skel.h"
#include "core/log.h"

#define NFLOWS 256

static unsigned char frames[NFLOWS][64];

static void make_frames(void)
{
	unsigned int k;

	for (k = 0; k < NFLOWS; k++) {
		unsigned char *f = frames[k];

		memset(f, 0, 64);
		memset(f, 0x02, 6);
		memset(f + 6, 0x04, 6);
		f[12] = 0x08;
		f[14] = 0x45;
		f[16] = 0;
		f[17] = 50; /* IPv4 total 50: 20 + 8 + 22 payload */
		f[22] = 64;
		f[23] = 17;
		f[26] = 10, f[29] = 1;
		f[30] = 10, f[33] = 2;
		f[34] = (unsigned char)((10000 + k) >> 8);
		f[35] = (unsigned char)(10000 + k);
		f[36] = 0x13, f[37] = 0x8c;
		f[38] = 0, f[39] = 30; /* UDP length 30 */
	}
}

/* ns per run over `flows` frames, repeat runs each. */
static double run(int fd, unsigned int flows, unsigned int repeat)
{
	unsigned long long total = 0;
	unsigned int k;

	for (k = 0; k < flows; k++) {
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frames[k], .data_size_in = 64,
			    .repeat = repeat);

		if (bpf_prog_test_run_opts(fd, &o)) {
			perror("bpf_prog_test_run_opts");
			exit(1);
		}
		total += o.duration; /* mean ns per repetition */
	}
	return (double)total / flows;
}

static unsigned long long delivered;

static void on_pkt(void *ctx, const struct pkt *p, int ifindex, enum capture_dir dir)
{
	(void)ctx, (void)p, (void)ifindex, (void)dir;
	delivered++;
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

struct producer {
	int fd;
	double seconds;
	unsigned long long runs;
	volatile int done;
};

static void *produce(void *arg)
{
	struct producer *p = arg;
	double t0 = now_ns();
	unsigned int k = 0;

	pin(0);
	while (now_ns() - t0 < p->seconds * 1e9) {
		LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frames[k % NFLOWS], .data_size_in = 64,
			    .repeat = 100000);

		if (bpf_prog_test_run_opts(p->fd, &o))
			break;
		p->runs += 100000;
		k++;
	}
	p->done = 1;
	return NULL;
}

static int stress(double seconds)
{
	struct capture_config cfg;
	struct capture_counters cs;
	char err[512];
	int d;

	printf("| design | producer Mpps (CPU 0) | delivered | lost | lost %% | consumer CPU %% (CPU 1) |\n");
	printf("|---|---|---|---|---|---|\n");
	for (d = 0; d < 2; d++) {
		struct producer p = { 0 };
		struct timespec c0, c1;
		struct capture *c;
		pthread_t th;
		double t0, t1, cpu;

		capture_config_default(&cfg);
		cfg.design = (enum capture_design)d;
		c = capture_open(&cfg, err, sizeof(err));
		if (!c) {
			fprintf(stderr, "bpf_cost: %s\n", err);
			return 1;
		}
		pin(1);
		p.fd = capture_prog_fd(c, 0);
		p.seconds = seconds;
		delivered = 0;
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
		t0 = now_ns();
		pthread_create(&th, NULL, produce, &p);
		while (!p.done)
			capture_poll(c, 10, on_pkt, NULL);
		pthread_join(th, NULL);
		t1 = now_ns();
		capture_flush(c);
		while (capture_poll(c, 0, on_pkt, NULL) > 0)
			;
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
		cpu = (double)(c1.tv_sec - c0.tv_sec) * 1e9 + (double)(c1.tv_nsec - c0.tv_nsec);
		capture_counters(c, &cs);
		printf("| %s | %.2f | %llu | %llu | %.3f | %.0f |\n", d ? "batches" : "records",
		       (double)p.runs / ((t1 - t0) / 1e3), delivered,
		       (unsigned long long)cs.v[CAPTURE_C_RING_FULL],
		       100.0 * (double)cs.v[CAPTURE_C_RING_FULL] / (double)(p.runs ? p.runs : 1),
		       100.0 * cpu / (t1 - t0));
		capture_close(c);
	}
	return 0;
}

int main(int argc, char **argv)
{
	unsigned int repeat = argc > 1 ? (unsigned int)atoi(argv[1]) : 1000000;
	struct empty_bpf *e;
	struct capture_config cfg;
	struct capture_counters cs;
	char err[512];
	int d, which;
	double flush_ns = 0;

	log_init("bpf_cost", LOG_WARN);
	make_frames();
	if (argc > 2 && !strcmp(argv[1], "--stress"))
		return stress(atof(argv[2]));
	e = empty_bpf__open_and_load();
	if (!e) {
		fprintf(stderr, "bpf_cost: cannot load the empty program (root needed)\n");
		return 1;
	}
	printf("| program | design | flows | ns/packet (BPF) | x empty | ns/packet (userspace decode) | lost |\n");
	printf("|---|---|---|---|---|---|---|\n");
	for (unsigned int fl = 1; fl <= NFLOWS; fl *= NFLOWS) {
		double base = run(bpf_program__fd(e->progs.empty_xdp), fl, repeat / fl);

		printf("| empty XDP | - | %u | %.1f | 1.00 | - | - |\n", fl, base);
		for (d = 0; d < 2; d++) {
			for (which = 0; which < 2; which++) {
				struct capture *c;
				double ns, t0, t1;

				capture_config_default(&cfg);
				cfg.design = (enum capture_design)d;
				cfg.ring_bytes = 1u << 27;
				c = capture_open(&cfg, err, sizeof(err));
				if (!c) {
					fprintf(stderr, "bpf_cost: %s\n", err);
					return 1;
				}
				ns = run(capture_prog_fd(c, which), fl, repeat / fl);
				delivered = 0;
				t0 = now_ns();
				while (capture_poll(c, 0, on_pkt, NULL) > 0)
					;
				t1 = now_ns();
				/* What is left: partial batches (flushed, timed below). */
				{
					double f0 = now_ns();

					capture_flush(c);
					if (d == 1 && which == 1)
						flush_ns = now_ns() - f0;
				}
				while (capture_poll(c, 0, on_pkt, NULL) > 0)
					;
				capture_counters(c, &cs);
				printf("| capture %s | %s | %u | %.1f | %.2f | %.1f | %llu |\n",
				       which ? "TC" : "XDP", d ? "batches" : "records", fl, ns,
				       ns / base, delivered ? (t1 - t0) / (double)delivered : 0.0,
				       (unsigned long long)(cs.v[CAPTURE_C_RING_FULL] +
							    cs.v[CAPTURE_C_TOO_BIG]));
				capture_close(c);
			}
		}
	}
	printf("\nbatches: one forced flush of both CPUs with the default flow map "
	       "(65536 entries): %.2f ms\n",
	       flush_ns / 1e6);
	empty_bpf__destroy(e);
	return 0;
}
