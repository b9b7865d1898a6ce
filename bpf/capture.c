// SPDX-License-Identifier: MIT
/* capture.c - load, attach and drain the capture programs; see capture.h. */
#include "capture.h"

#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/capability.h>
#include <linux/if_link.h>

#include "capture_abi.h"
#include "capture_bpf.skel.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/merge.h"

_Static_assert(sizeof(struct fp_key) == 44, "fp_key layout");
_Static_assert(sizeof(struct fp_rec_pkt) == 16, "fp_rec_pkt layout");
_Static_assert(sizeof(struct fp_rec_flow) == 72, "fp_rec_flow layout");
_Static_assert(sizeof(struct fp_pair) == 8, "fp_pair layout");
_Static_assert(sizeof(struct fp_rec_batch) == 64 + 8 * FP_BATCH_MAX, "fp_rec_batch layout");
_Static_assert((int)FP_C_COUNT == (int)CAPTURE_C_BPF_COUNT, "counter lists differ");
_Static_assert(FP_SKIP_TRUNCATED == SKIP_TRUNCATED && FP_SKIP_NOT_IP == SKIP_NOT_IP &&
		       FP_SKIP_IP_MALFORMED == SKIP_IP_MALFORMED &&
		       FP_SKIP_FRAGMENT == SKIP_FRAGMENT && FP_SKIP_ICMP == SKIP_ICMP &&
		       FP_SKIP_OTHER_L4 == SKIP_OTHER_L4 &&
		       FP_SKIP_L4_MALFORMED == SKIP_L4_MALFORMED,
	       "skip reasons differ from pkt.h");

/* tcx (kernel >= 6.6) attach type; libbpf 1.1's headers predate it. */
#define FP_BPF_TCX_EGRESS 47
/* The netlink (cls_bpf) fallback's filter identity: a restart removes a
 * filter a crashed run left behind by these. */
#define FP_TC_HANDLE 0xf10c
#define FP_TC_PRIO 0xf10c
/* Empty batch entries idle this long are deleted by the flush program. */
#define FP_IDLE_NS (10ULL * 1000000000ULL)
/* The merge's watermark trails what a drain proves by this much: a program
 * on another CPU may have read the clock but not yet committed its record
 * when the drain passed its ring (nanoseconds to microseconds). */
#define FP_MERGE_MARGIN_NS (5ULL * 1000000ULL)
/* The wall clock's offset is re-read at each poll but only taken when it
 * moved this much (a step of the clock): re-measuring it every poll would
 * jitter packet times by tens of ns and break their order. */
#define FP_CLOCK_STEP_NS 1000000LL

static const char *const counter_names[CAPTURE_C_COUNT] = {
	[CAPTURE_C_INGRESS] = "ingress_frames",
	[CAPTURE_C_EGRESS] = "egress_skbs",
	[CAPTURE_C_TCP] = "tcp_packets",
	[CAPTURE_C_UDP] = "udp_packets",
	[CAPTURE_C_GSO] = "gso_super_packets",
	[CAPTURE_C_TRUNCATED] = "skip_truncated",
	[CAPTURE_C_NOT_IP] = "skip_not_ip",
	[CAPTURE_C_IP_MALFORMED] = "skip_ip_malformed",
	[CAPTURE_C_FRAGMENT] = "skip_fragment",
	[CAPTURE_C_ICMP] = "skip_icmp",
	[CAPTURE_C_OTHER_L4] = "skip_other_l4",
	[CAPTURE_C_L4_MALFORMED] = "skip_l4_malformed",
	[CAPTURE_C_TOO_BIG] = "lost_too_big",
	[CAPTURE_C_RING_FULL] = "lost_ring_full",
	[CAPTURE_C_FLOW_MAP_FULL] = "flow_map_full",
	[CAPTURE_C_FLUSH_BUSY] = "flush_busy",
	[CAPTURE_C_RECORDS] = "ring_records",
	[CAPTURE_C_BATCHES] = "ring_batches",
	[CAPTURE_C_DELIVERED] = "delivered",
	[CAPTURE_C_BAD_RECORD] = "lost_bad_record",
	[CAPTURE_C_UNKNOWN_SLOT] = "lost_unknown_slot",
	[CAPTURE_C_MERGE_LATE] = "merge_late",
	[CAPTURE_C_MERGE_FORCED] = "merge_forced",
	[CAPTURE_C_MERGE_HELD] = "merge_held",
	[CAPTURE_C_MERGE_HELD_MAX] = "merge_held_max",
};

/* Records design: what userspace knows of a slot on one CPU's ring. */
struct slot_ent {
	struct fp_key key;
	uint32_t slot;
	uint32_t valid;
};

struct ring_ctx {
	struct capture *c;
	int cpu;
	uint64_t last_ts;	/* records: time of the previous record */
	struct slot_ent *slots; /* records: slot_mask + 1 entries */
};

struct iface {
	char name[IF_NAMESIZE];
	int ifindex;
	int xdp_fd;	 /* bpf_link */
	int tc_fd;	 /* bpf_link (tcx), or -1 */
	bool tc_netlink; /* cls_bpf filter via netlink instead */
	const char *mode;
};

struct capture {
	struct capture_bpf *skel;
	struct ring_buffer *rb;
	int epfd;
	int ncpu;
	int *ring_fds;
	struct ring_ctx *rctx;
	struct iface ifaces[CAPTURE_MAX_IFACES];
	unsigned int n_ifaces;
	enum capture_design design;
	uint32_t slot_mask;
	uint64_t batch_age_ns;
	uint64_t wakeup_bytes;		/* 0: eager wakeups */
	int64_t mono_to_real;		/* CLOCK_REALTIME - CLOCK_MONOTONIC, ns */
	struct merge *merge;		/* NULL: no_merge */
	uint64_t wm_mono;		/* CLOCK_MONOTONIC before which every packet is
					 * in the rings: from the last age flush, or
					 * capture_flush(), or a records ring drain */
	uint64_t last_flush;		/* CLOCK_MONOTONIC of the last age flush */
	uint64_t last_sweep;		/* ... and of the last flush of all CPUs */
	void *state_buf;		/* ncpu struct fp_cpu_state */
	uint64_t user[CAPTURE_C_COUNT]; /* userspace counters */
	capture_pkt_fn on_pkt;
	void *on_pkt_ctx;
	int delivered;
};

const char *capture_counter_name(unsigned int i)
{
	return i < CAPTURE_C_COUNT ? counter_names[i] : NULL;
}

bool capture_counter_is_loss(unsigned int i)
{
	return i == CAPTURE_C_TOO_BIG || i == CAPTURE_C_RING_FULL || i == CAPTURE_C_BAD_RECORD ||
	       i == CAPTURE_C_UNKNOWN_SLOT;
}

void capture_config_default(struct capture_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->design = CAPTURE_BATCHES;
	cfg->ring_bytes = 8u << 20;
	cfg->flow_map_size = 65536;
	cfg->batch_age_ms = 200;
}

/* BPF times are CLOCK_MONOTONIC; re-read the offset at each poll so a step
 * of the wall clock shows up within one poll. */
static void update_clock_offset(struct capture *c)
{
	uint64_t m0 = clock_mono_ns();
	uint64_t r = clock_real_ns();
	uint64_t m1 = clock_mono_ns();
	int64_t off = (int64_t)(r - (m0 + (m1 - m0) / 2));

	if (!c->mono_to_real || llabs(off - c->mono_to_real) >= FP_CLOCK_STEP_NS)
		c->mono_to_real = off;
}

/* libbpf's messages through the one logging module, at debug level (our own
 * error line says what failed). */
static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[512];
	size_t n;

	if (level == LIBBPF_DEBUG || log_get_level() < LOG_DEBUG)
		return 0;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	if (n && line[n - 1] == '\n')
		line[n - 1] = 0;
	log_debug("libbpf: %s", line);
	return 0;
}

/* ---- decoding ---------------------------------------------------------- */

/* A packet in time order (from the merge, or straight from a ring): its
 * CLOCK_MONOTONIC time becomes wall-clock time here. */
static void emit(void *ctx, const struct pkt *mp, uint32_t tag)
{
	struct capture *c = ctx;
	struct pkt p = *mp;

	p.ts_ns = (uint64_t)((int64_t)p.ts_ns + c->mono_to_real);
	c->on_pkt(c->on_pkt_ctx, &p, (int)(tag >> 1), (enum capture_dir)(tag & 1));
	c->delivered++;
}

static void hand_out(struct capture *c, const struct pkt *p, const struct fp_key *k)
{
	uint32_t tag = k->ifindex << 1 | (k->dir & 1);

	if (c->merge)
		merge_push(c->merge, p, tag, emit, c);
	else
		emit(c, p, tag);
}

static void deliver(struct capture *c, const struct fp_key *k, uint64_t mono, uint32_t size,
		    uint32_t hdr, uint32_t gso, uint8_t flags)
{
	struct pkt p;
	uint32_t left = size, i, segs;

	memset(&p, 0, sizeof(p));
	p.ts_ns = mono;
	memcpy(p.src, k->src, 16);
	memcpy(p.dst, k->dst, 16);
	p.sport = k->sport;
	p.dport = k->dport;
	p.proto = k->proto;
	if (!gso || size <= gso) {
		p.size = size;
		p.ip_len = hdr + size;
		p.tcp_flags = flags;
		hand_out(c, &p, k);
		return;
	}
	/* A GSO super-packet: the wire carries gso-sized segments, the last
	 * with the remainder; TCP segmentation keeps CWR on the first segment
	 * only and FIN/PSH on the last only. */
	segs = (size + gso - 1) / gso;
	for (i = 0; i < segs; i++) {
		p.size = left < gso ? left : gso;
		left -= p.size;
		p.ip_len = hdr + p.size;
		p.tcp_flags = flags;
		if (k->proto == 6) {
			if (i > 0)
				p.tcp_flags &= (uint8_t)~0x80;
			if (i + 1 < segs)
				p.tcp_flags &= (uint8_t)~0x09;
		}
		hand_out(c, &p, k);
	}
}

static int on_record(void *ctx, void *data, size_t size)
{
	struct ring_ctx *rc = ctx;
	struct capture *c = rc->c;
	const uint8_t *b = data;
	uint32_t i;

	if (size < 1 || b[0] >> 4 != FP_ABI_VERSION)
		goto bad;
	switch (b[0] & 0x0f) {
	case FP_REC_FLOW:
	case FP_REC_FULL: {
		const struct fp_rec_flow *r = data;

		if (size < sizeof(*r))
			goto bad;
		if ((b[0] & 0x0f) == FP_REC_FLOW && rc->slots) {
			struct slot_ent *e = &rc->slots[r->slot & c->slot_mask];

			e->key = r->key;
			e->slot = r->slot;
			e->valid = 1;
			rc->last_ts = r->ts_ns;
		}
		deliver(c, &r->key, r->ts_ns, r->size, r->hdr, r->gso_size, r->tcp_flags);
		return 0;
	}
	case FP_REC_PKT: {
		const struct fp_rec_pkt *r = data;
		struct slot_ent *e;

		if (size < sizeof(*r) || !rc->slots)
			goto bad;
		rc->last_ts += r->dt_ns;
		e = &rc->slots[r->slot & c->slot_mask];
		if (!e->valid || e->slot != r->slot) {
			c->user[CAPTURE_C_UNKNOWN_SLOT]++;
			return 0;
		}
		deliver(c, &e->key, rc->last_ts, r->size, r->hdr, r->gso_size, r->tcp_flags);
		return 0;
	}
	case FP_REC_BATCH: {
		const struct fp_rec_batch *r = data;

		if (size < sizeof(*r) || r->n > FP_BATCH_MAX)
			goto bad;
		for (i = 0; i < r->n; i++) {
			const struct fp_pair *q = &r->pairs[i];

			deliver(c, &r->key, r->ts0 + q->dt_ns, q->size, (uint32_t)q->hdr4 * 4, 0,
				q->tcp_flags);
		}
		return 0;
	}
	}
bad:
	c->user[CAPTURE_C_BAD_RECORD]++;
	return 0;
}

/* ---- flush (batches design) ---------------------------------------------- */

/*
 * Run the flush program on each CPU that holds pairs (all CPUs when `all`:
 * idle empty entries are deleted then too).  The program walks the whole
 * flow map (about 40 ns per bucket), so CPUs without pending pairs are
 * skipped by reading their `pending` count first.  Returns 0 when every
 * CPU was flushed, 1 when one stayed busy (its old pairs may still be in
 * the map), or a negative errno.
 */
static int run_flush(struct capture *c, uint64_t age_ns, bool all)
{
	uint64_t args[2] = { age_ns, FP_IDLE_NS };
	int fd = bpf_program__fd(c->skel->progs.fp_flush);
	int sfd = bpf_map__fd(c->skel->maps.cpu_state);
	struct fp_cpu_state *st = c->state_buf;
	uint32_t zero = 0;
	int cpu, tries, err, busy = 0;

	if (c->design != CAPTURE_BATCHES)
		return 0;
	if (bpf_map_lookup_elem(sfd, &zero, st))
		all = true;
	for (cpu = 0; cpu < c->ncpu; cpu++) {
		if (!all && !st[cpu].pending)
			continue;
		for (tries = 0; tries < 100; tries++) {
			LIBBPF_OPTS(bpf_test_run_opts, o, .ctx_in = args,
				    .ctx_size_in = sizeof(args), .flags = BPF_F_TEST_RUN_ON_CPU,
				    .cpu = (uint32_t)cpu);

			err = bpf_prog_test_run_opts(fd, &o);
			if (err == -ENXIO) /* CPU possible but offline */
				break;
			if (err)
				return err;
			if (o.retval == 0)
				break;
			/* retval 1: we interrupted a datapath program there. */
		}
		if (tries == 100)
			busy = 1;
	}
	return busy;
}

int capture_flush(struct capture *c)
{
	uint64_t t = clock_mono_ns();
	int e = run_flush(c, 0, false);

	/* Every packet before t is in the rings now: the next poll releases
	 * them all (no margin: this is the end of input or a deadline). */
	if (!e && t > c->wm_mono)
		c->wm_mono = t;
	return e < 0 ? e : 0;
}

uint64_t capture_watermark(const struct capture *c)
{
	uint64_t wm = c->merge ? merge_watermark(c->merge) : 0;

	return wm ? (uint64_t)((int64_t)wm + c->mono_to_real) : 0;
}

/* ---- open / attach ------------------------------------------------------- */

/* Whether cap is effective: 1 or 0; a negative errno if capget fails. */
static int have_cap(int cap)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d))
		return -errno;
	return (d[cap / 32].effective >> (cap % 32)) & 1;
}

static int check_caps(bool attach, char *err, size_t errlen)
{
	int sys = have_cap(CAP_SYS_ADMIN); /* covers BPF and PERFMON */
	char missing[64] = "";

	/* Name every missing one: granting them one failure at a time is tedious. */
	if (sys != 1 && have_cap(CAP_BPF) != 1)
		strcat(missing, ", CAP_BPF");
	if (sys != 1 && have_cap(CAP_PERFMON) != 1)
		strcat(missing, ", CAP_PERFMON");
	if (attach && have_cap(CAP_NET_ADMIN) != 1)
		strcat(missing, ", CAP_NET_ADMIN");
	if (!missing[0])
		return 0;
	log_errbuf(err, errlen,
		   "missing capability %s to %s the BPF programs: run as root (sudo %s ...) or give "
		   "the program the capabilities (setcap cap_bpf,cap_perfmon,cap_net_admin+ep %s)",
		   missing + 2, attach ? "load and attach" : "load", program_invocation_short_name,
		   program_invocation_short_name);
	return -EPERM;
}

static int attach_xdp(struct capture *c, struct iface *f, bool force_generic, char *err,
		      size_t errlen)
{
	int prog = bpf_program__fd(c->skel->progs.fp_xdp);
	int fd = -1, e = 0;

	if (!force_generic) {
		LIBBPF_OPTS(bpf_link_create_opts, o, .flags = XDP_FLAGS_DRV_MODE);

		fd = bpf_link_create(prog, f->ifindex, BPF_XDP, &o);
		if (fd >= 0) {
			f->mode = "native";
		} else {
			e = -fd;
			if (e == EBUSY || e == EEXIST)
				goto busy;
		}
	}
	if (fd < 0) {
		LIBBPF_OPTS(bpf_link_create_opts, o, .flags = XDP_FLAGS_SKB_MODE);

		fd = bpf_link_create(prog, f->ifindex, BPF_XDP, &o);
		if (fd < 0) {
			e = -fd;
			if (e == EBUSY || e == EEXIST)
				goto busy;
			log_errbuf(err, errlen, "cannot attach XDP to %s: %s", f->name,
				   strerror(e));
			return -e;
		}
		f->mode = "generic";
	}
	f->xdp_fd = fd;
	if (!strcmp(f->mode, "generic"))
		log_info("%s: XDP generic (skb) mode%s%s%s", f->name,
			 force_generic ? " (forced)" : " (native failed: ",
			 force_generic ? "" : strerror(e), force_generic ? "" : ")");
	return 0;
busy:
	log_errbuf(err, errlen,
		   "interface %s already has an XDP program (see 'ip link show %s'); "
		   "remove it or capture on another interface",
		   f->name, f->name);
	return -EBUSY;
}

static int attach_tc(struct capture *c, struct iface *f, char *err, size_t errlen)
{
	int prog = bpf_program__fd(c->skel->progs.fp_tc);
	LIBBPF_OPTS(bpf_link_create_opts, o);
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = f->ifindex, .attach_point = BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, tco, .handle = FP_TC_HANDLE, .priority = FP_TC_PRIO);
	int fd, e;

	/* tcx: a bpf_link, gone with the process (kernel >= 6.6).  The
	 * environment variable lets tests take the fallback on new kernels. */
	if (!getenv("FLOWPIC_CAPTURE_NO_TCX")) {
		fd = bpf_link_create(prog, f->ifindex, (enum bpf_attach_type)FP_BPF_TCX_EGRESS, &o);
		if (fd >= 0) {
			f->tc_fd = fd;
			return 0;
		}
	}
	/* Older kernels: a cls_bpf filter on clsact via netlink.  Not a link:
	 * remove a filter a crashed run left first (same handle/priority). */
	e = bpf_tc_hook_create(&hook);
	if (e && e != -EEXIST) {
		log_errbuf(err, errlen, "cannot create the clsact qdisc on %s: %s", f->name,
			   strerror(-e));
		return e;
	}
	{
		LIBBPF_OPTS(bpf_tc_opts, old, .handle = FP_TC_HANDLE, .priority = FP_TC_PRIO);

		bpf_tc_detach(&hook, &old);
	}
	tco.prog_fd = prog;
	e = bpf_tc_attach(&hook, &tco);
	if (e) {
		log_errbuf(err, errlen, "cannot attach the TC egress program to %s: %s", f->name,
			   strerror(-e));
		return e;
	}
	f->tc_netlink = true;
	return 0;
}

static void detach_tc_netlink(struct iface *f)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = f->ifindex, .attach_point = BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, o, .handle = FP_TC_HANDLE, .priority = FP_TC_PRIO);

	bpf_tc_detach(&hook, &o);
	f->tc_netlink = false;
}

/* Load the skeleton again with a verifier log and keep it in a file. */
static void save_verifier_log(const struct capture_config *cfg, struct capture *c, char *where,
			      size_t wlen)
{
	const char *path = cfg->verifier_log ? cfg->verifier_log : "/tmp/flowpic-verifier.log";
	size_t size = 64u << 20;
	char *buf = calloc(1, size);
	struct capture_bpf *skel;
	FILE *f;

	snprintf(where, wlen, "(no log)");
	if (!buf)
		return;
	{
		LIBBPF_OPTS(bpf_object_open_opts, o, .kernel_log_buf = buf, .kernel_log_size = size,
			    .kernel_log_level = 1);

		skel = capture_bpf__open_opts(&o);
	}
	if (skel) {
		skel->rodata->design = (uint32_t)c->design;
		skel->rodata->slot_mask = c->slot_mask;
		skel->rodata->batch_age_ns = c->batch_age_ns;
		skel->rodata->wakeup_bytes = c->wakeup_bytes;
		bpf_map__set_max_entries(skel->maps.rings, (uint32_t)c->ncpu);
		capture_bpf__load(skel);
		capture_bpf__destroy(skel);
	}
	f = fopen(path, "w");
	if (f) {
		fputs(buf, f);
		fclose(f);
		snprintf(where, wlen, "%s", path);
	}
	free(buf);
}

static int setup_rings(struct capture *c, uint32_t ring_bytes, char *err, size_t errlen)
{
	int outer = bpf_map__fd(c->skel->maps.rings);
	int i, fd, e;

	c->ring_fds = calloc((size_t)c->ncpu, sizeof(int));
	c->rctx = calloc((size_t)c->ncpu, sizeof(*c->rctx));
	if (!c->ring_fds || !c->rctx)
		return -ENOMEM;
	for (i = 0; i < c->ncpu; i++)
		c->ring_fds[i] = -1;
	for (i = 0; i < c->ncpu; i++) {
		uint32_t key = (uint32_t)i;

		fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "fp_ring", 0, 0, ring_bytes, NULL);
		if (fd < 0) {
			log_errbuf(err, errlen,
				   "cannot create a %u-byte ring buffer for CPU %d: %s "
				   "(try a smaller ring size)",
				   ring_bytes, i, strerror(-fd));
			return fd;
		}
		c->ring_fds[i] = fd;
		e = bpf_map_update_elem(outer, &key, &fd, BPF_ANY);
		if (e) {
			log_errbuf(err, errlen, "cannot install the ring of CPU %d: %s", i,
				   strerror(-e));
			return e;
		}
		c->rctx[i].c = c;
		c->rctx[i].cpu = i;
		if (c->design == CAPTURE_RECORDS) {
			c->rctx[i].slots =
				calloc((size_t)c->slot_mask + 1, sizeof(struct slot_ent));
			if (!c->rctx[i].slots)
				return -ENOMEM;
		}
		if (i == 0)
			c->rb = ring_buffer__new(fd, on_record, &c->rctx[0], NULL);
		else if (c->rb && ring_buffer__add(c->rb, fd, on_record, &c->rctx[i]))
			return -errno;
		if (!c->rb)
			return -errno;
	}
	return 0;
}

static uint32_t pow2_at_least(uint32_t v)
{
	uint32_t p = 1;

	while (p < v && p < (1u << 30))
		p <<= 1;
	return p;
}

int capture_config_check(const struct capture_config *cfg, char *err, size_t errlen)
{
	if (cfg->n_ifaces > CAPTURE_MAX_IFACES) {
		log_errbuf(err, errlen, "too many interfaces (%u, at most %d)", cfg->n_ifaces,
			   CAPTURE_MAX_IFACES);
		return -EINVAL;
	}
	if (cfg->ring_bytes < 4096 || (cfg->ring_bytes & (cfg->ring_bytes - 1))) {
		log_errbuf(err, errlen, "ring size %u is not a power of 2 >= 4096",
			   cfg->ring_bytes);
		return -EINVAL;
	}
	if (cfg->batch_age_ms < 1 || cfg->batch_age_ms > 2000) {
		log_errbuf(err, errlen, "batch age %u ms out of range 1..2000", cfg->batch_age_ms);
		return -EINVAL;
	}
	if (cfg->flow_map_size < 1 || cfg->flow_map_size > (1u << 24)) {
		log_errbuf(err, errlen, "flow map size %u out of range 1..16777216",
			   cfg->flow_map_size);
		return -EINVAL;
	}
	return 0;
}

/* The interfaces of cfg by name: their indexes. */
static int resolve_ifaces(struct capture *c, const struct capture_config *cfg, char *err,
			  size_t errlen)
{
	unsigned int i;

	for (i = 0; i < cfg->n_ifaces; i++) {
		struct iface *f = &c->ifaces[i];

		f->xdp_fd = f->tc_fd = -1;
		snprintf(f->name, sizeof(f->name), "%s", cfg->ifaces[i]);
		f->ifindex = (int)if_nametoindex(cfg->ifaces[i]);
		if (!f->ifindex || strlen(cfg->ifaces[i]) >= IF_NAMESIZE) {
			log_errbuf(err, errlen,
				   "interface '%s' does not exist: give one of the "
				   "names 'ip link show' lists",
				   cfg->ifaces[i]);
			return -ENODEV;
		}
	}
	return 0;
}

/* What the kernel and the process must have: BTF, capabilities, ring buffers. */
static int check_kernel(const struct capture_config *cfg, char *err, size_t errlen)
{
	int e;

	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		log_errbuf(err, errlen,
			   "this kernel has no BTF (/sys/kernel/btf/vmlinux: %s): the "
			   "BPF programs are CO-RE and need a kernel built with "
			   "CONFIG_DEBUG_INFO_BTF=y (Debian's 5.10+ kernels have it)",
			   strerror(errno));
		return -ENOTSUP;
	}
	e = check_caps(cfg->n_ifaces > 0, err, errlen);
	if (e)
		return e;
	/* Create one small ring buffer ourselves: libbpf's probe reports a
	 * refusal (EPERM from a seccomp filter, an LSM or a container without
	 * CAP_BPF) as "not supported", which would send the operator to
	 * upgrade a kernel that is fine. */
	e = bpf_map_create(BPF_MAP_TYPE_RINGBUF, NULL, 0, 0, (__u32)sysconf(_SC_PAGESIZE), NULL);
	if (e >= 0) {
		close(e);
		return 0;
	}
	e = -errno;
	if (e == -EPERM || e == -EACCES) {
		log_errbuf(err, errlen,
			   "the kernel refused to create a BPF map (%s) although the capabilities "
			   "are there: a seccomp filter (systemd SystemCallFilter= without bpf), "
			   "an LSM policy or a user namespace refuses bpf(); allow the bpf() "
			   "system call for flowpic-agent",
			   strerror(-e));
		return e;
	}
	if (e == -EINVAL) {
		log_errbuf(
			err, errlen,
			"this kernel has no BPF ring buffers (BPF_MAP_TYPE_RINGBUF "
			"needs Linux 5.8 or later): upgrade the kernel (6.6 or later recommended)");
		return -ENOTSUP;
	}
	/* Anything else says nothing certain about the kernel: the load will tell. */
	log_warn("cannot probe for BPF ring buffers (%s): trying anyway", strerror(-e));
	return 0;
}

/* Per-CPU state: the CPU count, the merge, the state buffer. */
static int alloc_state(struct capture *c, const struct capture_config *cfg, char *err,
		       size_t errlen)
{
	int e;

	c->ncpu = libbpf_num_possible_cpus();
	if (c->ncpu <= 0) {
		log_errbuf(err, errlen, "cannot count CPUs: %s", strerror(-c->ncpu));
		return c->ncpu;
	}
	if (!cfg->no_merge) {
		uint32_t held = cfg->merge_max_held ? cfg->merge_max_held : MERGE_DEFAULT_MAX_HELD;

		c->merge = merge_new(held);
		if (!c->merge) {
			e = -errno;
			log_errbuf(err, errlen,
				   "cannot set up the time-ordered merge of %u records: "
				   "%s (merge_max_held is 1..%u)",
				   held, strerror(-e), MERGE_MAX_MAX_HELD);
			return e;
		}
	}
	c->state_buf = calloc((size_t)c->ncpu, sizeof(struct fp_cpu_state));
	if (!c->state_buf) {
		log_errbuf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

/* Open, size and load the skeleton, then its rings. */
static int load_programs(struct capture *c, const struct capture_config *cfg, char *err,
			 size_t errlen)
{
	int e;

	c->skel = capture_bpf__open();
	if (!c->skel) {
		e = -errno;
		log_errbuf(err, errlen, "cannot open the embedded BPF object: %s", strerror(-e));
		return e;
	}
	c->skel->rodata->design = (uint32_t)c->design;
	c->skel->rodata->slot_mask = c->slot_mask;
	c->skel->rodata->batch_age_ns = c->batch_age_ns;
	c->skel->rodata->wakeup_bytes = c->wakeup_bytes;
	bpf_map__set_max_entries(c->skel->maps.rings, (uint32_t)c->ncpu);
	/* The other design's map: as small as the kernel allows. */
	if (c->design == CAPTURE_RECORDS) {
		bpf_map__set_max_entries(c->skel->maps.slots, cfg->flow_map_size);
		bpf_map__set_max_entries(c->skel->maps.batches, 1);
		bpf_program__set_autoload(c->skel->progs.fp_flush, false);
	} else {
		bpf_map__set_max_entries(c->skel->maps.slots, 1);
		bpf_map__set_max_entries(c->skel->maps.batches, cfg->flow_map_size);
	}
	e = capture_bpf__load(c->skel);
	if (e) {
		char where[PATH_MAX];

		save_verifier_log(cfg, c, where, sizeof(where));
		log_errbuf(err, errlen,
			   "the kernel refused the capture programs (%s); verifier log "
			   "in %s: report it with 'uname -r'",
			   strerror(-e), where);
		return e;
	}
	e = setup_rings(c, cfg->ring_bytes, err, errlen);
	if (e) {
		if (err && !err[0])
			log_errbuf(err, errlen, "cannot set up the ring buffers: %s", strerror(-e));
		return e;
	}
	c->epfd = ring_buffer__epoll_fd(c->rb);
	return 0;
}

/* XDP on every interface, TC egress unless no_egress; one line each. */
static int attach_all(struct capture *c, const struct capture_config *cfg, char *err, size_t errlen)
{
	unsigned int i;
	int e;

	for (i = 0; i < cfg->n_ifaces; i++) {
		struct iface *f = &c->ifaces[i];

		c->n_ifaces = i + 1;
		e = attach_xdp(c, f, cfg->force_generic_xdp, err, errlen);
		if (e)
			return e;
		if (!cfg->no_egress) {
			e = attach_tc(c, f, err, errlen);
			if (e)
				return e;
		}
		log_info("%s: capturing (ifindex %d): XDP ingress %s, TC egress %s, design %s",
			 f->name, f->ifindex, f->mode,
			 cfg->no_egress ? "off" :
			 f->tc_netlink	? "cls_bpf (netlink)" :
					  "tcx link",
			 c->design == CAPTURE_BATCHES ? "batches" : "records");
	}
	return 0;
}

struct capture *capture_open(const struct capture_config *cfg, char *err, size_t errlen)
{
	struct capture *c;
	int e;

	libbpf_set_print(libbpf_log);
	e = capture_config_check(cfg, err, errlen);
	if (e) {
		errno = -e;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		log_errbuf(err, errlen, "out of memory");
		return NULL;
	}
	c->epfd = -1;
	c->design = cfg->design;
	c->batch_age_ns = (uint64_t)cfg->batch_age_ms * 1000000ULL;
	c->slot_mask = pow2_at_least(cfg->flow_map_size) - 1;
	c->wakeup_bytes = cfg->eager_wakeup ? 0 : cfg->ring_bytes / 8;
	e = resolve_ifaces(c, cfg, err, errlen);
	if (!e)
		e = check_kernel(cfg, err, errlen);
	if (!e)
		e = alloc_state(c, cfg, err, errlen);
	if (!e)
		e = load_programs(c, cfg, err, errlen);
	if (!e)
		e = attach_all(c, cfg, err, errlen);
	if (e) {
		capture_close(c);
		errno = -e > 0 ? -e : EINVAL;
		return NULL;
	}
	update_clock_offset(c);
	c->last_flush = c->last_sweep = clock_mono_ns();
	return c;
}

int capture_fd(const struct capture *c)
{
	return c->epfd;
}

/* Hand out what the merge holds before the watermark the last flush or
 * drain proved. */
static void release(struct capture *c, uint64_t drained_from)
{
	if (!c->merge)
		return;
	if (c->design == CAPTURE_RECORDS && drained_from > FP_MERGE_MARGIN_NS &&
	    drained_from - FP_MERGE_MARGIN_NS > c->wm_mono)
		c->wm_mono = drained_from - FP_MERGE_MARGIN_NS;
	merge_release(c->merge, c->wm_mono, emit, c);
}

int capture_poll(struct capture *c, int timeout_ms, capture_pkt_fn on_pkt, void *ctx)
{
	uint64_t now, drained_from;
	int e;

	c->on_pkt = on_pkt;
	c->on_pkt_ctx = ctx;
	c->delivered = 0;
	update_clock_offset(c);
	/* Lazy wakeups: records below the wakeup mark wait for a poll. */
	if (c->wakeup_bytes && (timeout_ms < 0 || timeout_ms > 100))
		timeout_ms = 100;
	if (c->design == CAPTURE_BATCHES) {
		int half = (int)(c->batch_age_ns / 2000000ULL);

		/* Idle flows' batches go out only by a flush: wake for it. */
		if (half < 1)
			half = 1;
		if (timeout_ms < 0 || timeout_ms > half)
			timeout_ms = half;
		now = clock_mono_ns();
		if (now - c->last_flush >= c->batch_age_ns / 2) {
			bool sweep = now - c->last_sweep >= FP_IDLE_NS;

			e = run_flush(c, c->batch_age_ns, sweep);
			if (e < 0)
				return e;
			/* Batches older than the age are in the rings now, and
			 * younger ones hold only younger pairs. */
			if (!e && now - c->batch_age_ns > c->wm_mono + FP_MERGE_MARGIN_NS)
				c->wm_mono = now - c->batch_age_ns - FP_MERGE_MARGIN_NS;
			c->last_flush = now;
			if (sweep)
				c->last_sweep = now;
		}
	}
	if (timeout_ms != 0) {
		struct epoll_event ev;

		e = epoll_wait(c->epfd, &ev, 1, timeout_ms);
		if (e < 0)
			return -errno;
	}
	/* Records design: each CPU's ring is in time order, so a full drain
	 * proves every packet before its start delivered. */
	drained_from = clock_mono_ns();
	e = ring_buffer__consume(c->rb);
	if (e < 0)
		return e;
	release(c, drained_from);
	c->user[CAPTURE_C_DELIVERED] += (uint64_t)c->delivered;
	return c->delivered;
}

int capture_finish(struct capture *c, capture_pkt_fn on_pkt, void *ctx)
{
	int i, n, e, total = 0;

	for (i = 0; i < 64; i++) {
		e = capture_flush(c);
		if (e)
			return e;
		n = capture_poll(c, 0, on_pkt, ctx);
		if (n < 0)
			return n;
		total += n;
		if (!n)
			break;
	}
	if (c->merge) {
		c->delivered = 0;
		merge_drain(c->merge, emit, c);
		c->user[CAPTURE_C_DELIVERED] += (uint64_t)c->delivered;
		total += c->delivered;
	}
	return total;
}

void capture_counters(const struct capture *c, struct capture_counters *out)
{
	int fd = bpf_map__fd(c->skel->maps.counters);
	uint64_t *v = calloc((size_t)c->ncpu, sizeof(uint64_t));
	uint32_t i;
	int cpu;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < CAPTURE_C_COUNT; i++)
		out->v[i] = c->user[i];
	if (c->merge) {
		const struct merge_stats *ms = merge_stats(c->merge);

		out->v[CAPTURE_C_MERGE_LATE] = ms->late;
		out->v[CAPTURE_C_MERGE_FORCED] = ms->forced;
		out->v[CAPTURE_C_MERGE_HELD] = ms->held;
		out->v[CAPTURE_C_MERGE_HELD_MAX] = ms->held_max;
	}
	if (!v)
		return;
	for (i = 0; i < FP_C_COUNT; i++) {
		if (bpf_map_lookup_elem(fd, &i, v))
			continue;
		for (cpu = 0; cpu < c->ncpu; cpu++)
			out->v[i] += v[cpu];
	}
	free(v);
}

const char *capture_xdp_mode(const struct capture *c, unsigned int i)
{
	if (i >= c->n_ifaces || !c->ifaces[i].mode)
		return "";
	return c->ifaces[i].mode;
}

int capture_prog_fd(const struct capture *c, int which)
{
	return bpf_program__fd(which ? c->skel->progs.fp_tc : c->skel->progs.fp_xdp);
}

void capture_close(struct capture *c)
{
	unsigned int i;
	int cpu;

	if (!c)
		return;
	for (i = 0; i < c->n_ifaces; i++) {
		struct iface *f = &c->ifaces[i];

		if (f->xdp_fd >= 0)
			close(f->xdp_fd);
		if (f->tc_fd >= 0)
			close(f->tc_fd);
		if (f->tc_netlink)
			detach_tc_netlink(f);
	}
	ring_buffer__free(c->rb);
	if (c->ring_fds) {
		for (cpu = 0; cpu < c->ncpu; cpu++)
			if (c->ring_fds[cpu] >= 0)
				close(c->ring_fds[cpu]);
	}
	if (c->rctx) {
		for (cpu = 0; cpu < c->ncpu; cpu++)
			free(c->rctx[cpu].slots);
	}
	free(c->rctx);
	free(c->ring_fds);
	free(c->state_buf);
	merge_free(c->merge);
	capture_bpf__destroy(c->skel);
	free(c);
}
