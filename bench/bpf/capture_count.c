// SPDX-License-Identifier: MIT
/*
 * capture_count - attach the capture to interfaces, drain it, count what it
 * delivers, and print one JSON line at the end: packets per flow direction,
 * every counter, the consumer's CPU time after loading and peak memory.  The consumer the
 * benchmark (bench/bpf/run.sh) and the live test (tests/bpf/test_live.sh)
 * run; the agent is the real consumer.
 */
#include <argp.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bpf/capture.h"
#include "core/log.h"
#include "core/number.h"

static volatile sig_atomic_t stop;

struct opts {
	struct capture_config cfg;
	double seconds;
	int verbose;
	char ifbuf[512];
};

struct totals {
	uint64_t pkts, bytes, in, out, tcp, udp;
};

static void on_pkt(void *ctx, const struct pkt *p, int ifindex, enum capture_dir dir)
{
	struct totals *t = ctx;

	(void)ifindex;
	t->pkts++;
	t->bytes += p->size;
	if (dir == CAPTURE_INGRESS)
		t->in++;
	else
		t->out++;
	if (p->proto == 6)
		t->tcp++;
	else
		t->udp++;
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static const struct argp_option options[] = {
	{ "iface", 'i', "IF[,IF...]", 0, "Interfaces to capture on (required)", 0 },
	{ "design", 'd', "records|batches", 0, "Ring design (default: batches)", 0 },
	{ "generic", 'g', NULL, 0, "Force generic (skb) XDP", 0 },
	{ "no-egress", 'E', NULL, 0, "Ingress (XDP) only", 0 },
	{ "eager-wakeup", 'W', NULL, 0, "Wake the consumer at every record (kernel default)", 0 },
	{ "no-merge", 'M', NULL, 0, "Hand packets out in ring order (no time-ordered merge)", 0 },
	{ "ring", 'r', "BYTES", 0, "Per-CPU ring size, power of 2 (default 8388608)", 0 },
	{ "seconds", 's', "SECS", 0, "Stop after this long (default: at SIGINT/SIGTERM)", 0 },
	{ "verbose", 'v', NULL, 0, "Log more", 0 },
	{ 0 }
};

static error_t parse_opt(int key, char *arg, struct argp_state *st)
{
	struct opts *o = st->input;
	char *save = NULL, *tok;
	uint64_t v;

	switch (key) {
	case 'i':
		snprintf(o->ifbuf, sizeof(o->ifbuf), "%s", arg);
		for (tok = strtok_r(o->ifbuf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			if (o->cfg.n_ifaces >= CAPTURE_MAX_IFACES)
				argp_error(st, "at most %d interfaces", CAPTURE_MAX_IFACES);
			o->cfg.ifaces[o->cfg.n_ifaces++] = tok;
		}
		break;
	case 'd':
		if (!strcmp(arg, "records"))
			o->cfg.design = CAPTURE_RECORDS;
		else if (!strcmp(arg, "batches"))
			o->cfg.design = CAPTURE_BATCHES;
		else
			argp_error(st, "--design: '%s' is not records or batches", arg);
		break;
	case 'g':
		o->cfg.force_generic_xdp = true;
		break;
	case 'E':
		o->cfg.no_egress = true;
		break;
	case 'M':
		o->cfg.no_merge = true;
		break;
	case 'W':
		o->cfg.eager_wakeup = true;
		break;
	case 'r':
		if (number_parse_u64(arg, 4096, 1u << 30, &v))
			argp_error(st, "--ring: '%s' is not a size up to 1 GiB", arg);
		o->cfg.ring_bytes = (uint32_t)v;
		break;
	case 's':
		o->seconds = strtod(arg, NULL);
		if (!(o->seconds > 0))
			argp_error(st, "--seconds: '%s' is not a positive number", arg);
		break;
	case 'v':
		o->verbose = 1;
		break;
	case ARGP_KEY_END:
		if (!o->cfg.n_ifaces)
			argp_error(st, "--iface is required");
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	static const char doc[] =
		"Attach the flowpic capture, count what it delivers, print one JSON line.\v"
		"Examples:\n"
		"  capture_count -i eth0 -s 10\n"
		"  capture_count -i veth0 --design records --generic --seconds 5";
	struct argp argp = { options, parse_opt, NULL, doc, NULL, NULL, NULL };
	struct capture_counters cs;
	struct totals t = { 0 };
	struct rusage ru0, ru;
	struct opts o;
	char err[512];
	struct capture *c;
	double t0, t1;
	unsigned int i;
	int n;

	memset(&o, 0, sizeof(o));
	capture_config_default(&o.cfg);
	argp_parse(&argp, argc, argv, 0, NULL, &o);
	log_init("capture_count", o.verbose ? LOG_DEBUG : LOG_INFO);
	c = capture_open(&o.cfg, err, sizeof(err));
	if (!c) {
		log_error("%s", err);
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	/* The drain's CPU only: loading (the verifier) is not per packet. */
	getrusage(RUSAGE_SELF, &ru0);
	fprintf(stderr, "capture_count: ready\n");
	t0 = now_s();
	while (!stop && (o.seconds <= 0 || now_s() - t0 < o.seconds)) {
		n = capture_poll(c, 100, on_pkt, &t);
		if (n < 0 && n != -EINTR) {
			log_error("capture_poll: %s", strerror(-n));
			break;
		}
	}
	capture_flush(c);
	capture_poll(c, 0, on_pkt, &t);
	t1 = now_s();
	capture_counters(c, &cs);
	getrusage(RUSAGE_SELF, &ru);
	printf("{\"seconds\": %.3f, \"delivered\": %llu, \"payload_bytes\": %llu, "
	       "\"ingress\": %llu, \"egress\": %llu, \"tcp\": %llu, \"udp\": %llu, "
	       "\"cpu_user_s\": %.3f, \"cpu_sys_s\": %.3f, \"max_rss_kib\": %ld, \"counters\": {",
	       t1 - t0, (unsigned long long)t.pkts, (unsigned long long)t.bytes,
	       (unsigned long long)t.in, (unsigned long long)t.out, (unsigned long long)t.tcp,
	       (unsigned long long)t.udp,
	       (double)(ru.ru_utime.tv_sec - ru0.ru_utime.tv_sec) +
		       (double)(ru.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6,
	       (double)(ru.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
		       (double)(ru.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6,
	       ru.ru_maxrss);
	for (i = 0; i < CAPTURE_C_COUNT; i++)
		printf("%s\"%s\": %llu", i ? ", " : "", capture_counter_name(i),
		       (unsigned long long)cs.v[i]);
	printf("}}\n");
	capture_close(c);
	return 0;
}
