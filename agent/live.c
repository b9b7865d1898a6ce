// SPDX-License-Identifier: MIT
/*
 * live.c - `flowpic-agent --iface IF[,IF...]`: attach through bpf/capture.h,
 * drop every capability and switch to an unprivileged user (--user), then
 * one epoll loop over the rings, the signals and
 * the deadline sweep.
 *
 * What live capture needs (the interfaces, BTF, ring buffers, capabilities)
 * is checked by capture_open() alone, before it loads anything: it says
 * what is missing in one line and sets errno, which only sorts it here into
 * the agent's exit status.
 *
 * The sweep: flow time only moves with packets, so without it a flow that
 * goes silent would end only when some later packet arrives.  Every --sweep
 * the wall clock, less --sweep-lag (packets may still wait in the rings or
 * in per-flow batches for up to batch-age), is given to the flow table.
 */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bpf/capture.h"
#include "caps.h"
#include "core/clock.h"
#include "core/log.h"
#include "run.h"

/* Counter names with the "capture_" prefix, made once. */
static char cap_names[CAPTURE_C_COUNT][48];
/* The capture's counters when it closed: the last counters line comes after. */
static struct capture_counters cap_final;
static bool cap_final_valid;

/* Loopback interfaces captured (ifindex), and their egress records skipped. */
static int loopback_ifindex[AGENT_MAX_IFACES];
static unsigned n_loopback;
static uint64_t loopback_egress;

/* The capture's counters (run->source_counters): live, or as they were at
 * the close, for the last counters line. */
static void live_counters(struct run *r, struct agent_counter *out, size_t *n, size_t max)
{
	struct capture_counters cc;
	uint64_t loss = 0;
	unsigned i;

	if (r->cap)
		capture_counters(r->cap, &cc);
	else if (cap_final_valid)
		cc = cap_final;
	else
		return;
	for (i = 0; i < CAPTURE_C_COUNT && *n < max; i++) {
		const char *name = capture_counter_name(i);

		if (!name)
			continue;
		if (!cap_names[i][0])
			snprintf(cap_names[i], sizeof(cap_names[i]), "capture_%s", name);
		out[(*n)++] = (struct agent_counter){ cap_names[i], cc.v[i] };
		if (capture_counter_is_loss(i))
			loss += cc.v[i];
	}
	if (*n < max)
		out[(*n)++] = (struct agent_counter){ "capture_lost_total", loss };
	if (*n < max && n_loopback)
		out[(*n)++] = (struct agent_counter){ "loopback_egress_skipped", loopback_egress };
}

static bool is_loopback(int ifindex)
{
	unsigned i;

	for (i = 0; i < n_loopback; i++)
		if (loopback_ifindex[i] == ifindex)
			return true;
	return false;
}

static void find_loopbacks(const struct agent_config *cfg)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	unsigned i;

	n_loopback = 0;
	for (i = 0; fd >= 0 && i < cfg->n_ifaces; i++) {
		struct ifreq ifr = { 0 };

		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", cfg->ifaces[i]);
		if (!ioctl(fd, SIOCGIFFLAGS, &ifr) && (ifr.ifr_flags & IFF_LOOPBACK))
			loopback_ifindex[n_loopback++] = (int)if_nametoindex(cfg->ifaces[i]);
	}
	if (fd >= 0)
		close(fd);
}

static void on_pkt(void *ctx, const struct pkt *p, int ifindex, enum capture_dir dir)
{
	struct run *r = ctx;

	/* What a loopback interface sends it also receives: the same packet at
	 * TC egress and then at XDP.  Keep the ingress copy only. */
	if (dir == CAPTURE_EGRESS && n_loopback && is_loopback(ifindex)) {
		loopback_egress++;
		return;
	}
	if (dir == CAPTURE_EGRESS)
		r->agent.n.egress++;
	else
		r->agent.n.ingress++;
	agent_packet(&r->agent, p);
}

/*
 * capture_open() failed: its errno -> the agent's exit status.  Its err line
 * says what is missing and what to do (ENODEV no such interface; ENOTSUP no
 * BTF or no ring buffers; EPERM a missing capability; EBUSY XDP already
 * attached; else the verifier or an attach refused); the agent only adds
 * its own way out where there is one.
 */
static int capture_failed(int e, const char *err)
{
	/* The kernel lacks what the BPF programs need: capture files still work. */
	if (e == ENOTSUP) {
		log_error("%s; use --pcap to classify a capture instead", err);
		return AGENT_EXIT_CAPTURE;
	}
	log_error("%s", err);
	return e == EPERM ? AGENT_EXIT_PRIVILEGE : AGENT_EXIT_CAPTURE;
}

/* 0, or a negative errno (errno set too). */
static int epoll_add(int ep, int fd, uint32_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = tag };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

/* A timerfd ticking every period_ns, or a negative errno. */
static int sweep_timer(uint64_t period_ns)
{
	struct itimerspec its = {
		.it_interval = { (time_t)(period_ns / NS_PER_SEC), (long)(period_ns % NS_PER_SEC) },
	};
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);

	its.it_value = its.it_interval;
	if (fd < 0)
		return -errno;
	if (timerfd_settime(fd, 0, &its, NULL)) {
		int e = errno;

		close(fd);
		errno = e; /* for the caller's message */
		return -e;
	}
	return fd;
}

/* The running kernel is at least major.minor. */
static bool kernel_at_least(int major, int minor)
{
	struct utsname u;
	int ma = 0, mi = 0;

	if (uname(&u) || sscanf(u.release, "%d.%d", &ma, &mi) != 2)
		return false;
	return ma > major || (ma == major && mi >= minor);
}

enum { TAG_CAPTURE, TAG_SIGNAL, TAG_SWEEP };

/* The flow table's clock: the merge's watermark (every packet before it
 * has been handed over), or without the merge the wall clock less the lag. */
static void sweep(struct run *r)
{
	uint64_t now = clock_real_ns(), wm = capture_watermark(r->cap);

	if (wm)
		agent_advance(&r->agent, wm);
	else if (!r->cfg->no_merge)
		return; /* nothing proved delivered yet */
	else if (now > r->cfg->lag_ns)
		agent_advance(&r->agent, now - r->cfg->lag_ns);
}

/*
 * The epoll loop until SIGINT/SIGTERM: AGENT_EXIT_OK or _FAILURE.  The timer
 * ticks every tick_ns: the sweep period, or half the batch age when shorter
 * (the batches design pushes out an idle flow's batch only from a poll).
 */
static int loop(struct run *r, uint64_t tick_ns)
{
	int ep, tfd = -1, status = AGENT_EXIT_FAILURE;
	uint64_t next_sweep = run_mono_ns() + r->cfg->sweep_ns;
	struct epoll_event evs[4];

	ep = epoll_create1(EPOLL_CLOEXEC);
	tfd = sweep_timer(tick_ns);
	if (ep < 0 || tfd < 0 || epoll_add(ep, capture_fd(r->cap), TAG_CAPTURE) < 0 ||
	    epoll_add(ep, r->sigfd, TAG_SIGNAL) < 0 || epoll_add(ep, tfd, TAG_SWEEP) < 0) {
		log_error("cannot set up the event loop: %s", strerror(errno));
		goto out;
	}
	while (!r->stop) {
		int i, n = epoll_wait(ep, evs, 4, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("epoll_wait: %s", strerror(errno));
			goto out;
		}
		for (i = 0; i < n; i++) {
			uint64_t ticks;
			int rc;

			switch (evs[i].data.u32) {
			case TAG_CAPTURE:
				rc = capture_poll(r->cap, 0, on_pkt, r);
				if (rc < 0 && rc != -EINTR) {
					log_error("reading the capture rings: %s", strerror(-rc));
					goto out;
				}
				break;
			case TAG_SIGNAL:
				run_signals(r);
				break;
			case TAG_SWEEP:
				if (read(tfd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
					log_warn("sweep timer: %s", strerror(errno));
				/* Batches older than batch-age are pushed out by a poll. */
				rc = capture_poll(r->cap, 0, on_pkt, r);
				if (rc < 0 && rc != -EINTR) {
					log_error("reading the capture rings: %s", strerror(-rc));
					goto out;
				}
				if (run_mono_ns() < next_sweep)
					break;
				next_sweep += r->cfg->sweep_ns;
				sweep(r);
				run_signals(r); /* --counters-every, counters for the stream */
				break;
			}
		}
	}
	log_info("signal %d: ending every flow and detaching", r->stop_signal);
	status = AGENT_EXIT_OK;
out:
	if (tfd >= 0)
		close(tfd);
	if (ep >= 0)
		close(ep);
	return status;
}

/* Everything still in the BPF maps and rings, then every flow ends. */
static void drain(struct run *r)
{
	int rc = capture_finish(r->cap, on_pkt, r);

	if (rc < 0)
		log_warn("flushing the BPF batches: %s (their packets are not counted)",
			 strerror(-rc));
	agent_flush(&r->agent);
}

int live_run(struct run *r)
{
	const struct agent_config *cfg = r->cfg;
	struct capture_config cc;
	char err[1024], caps[256];
	struct caps_user user;
	int switch_to = 0;
	uint64_t tick;
	unsigned i;
	int status;

	find_loopbacks(cfg);
	capture_config_default(&cc);
	for (i = 0; i < cfg->n_ifaces; i++)
		cc.ifaces[i] = cfg->ifaces[i];
	cc.n_ifaces = cfg->n_ifaces;
	if (cfg->design == AGENT_DESIGN_RECORDS)
		cc.design = CAPTURE_RECORDS;
	else if (cfg->design == AGENT_DESIGN_BATCHES)
		cc.design = CAPTURE_BATCHES;
	cc.force_generic_xdp = cfg->xdp_generic;
	cc.merge_max_held = cfg->merge_max;
	cc.no_merge = cfg->no_merge;
	if (cfg->ring_bytes)
		cc.ring_bytes = cfg->ring_bytes;
	if (cfg->bpf_flows)
		cc.flow_map_size = cfg->bpf_flows;
	if (cfg->batch_age_ns) {
		uint64_t ms = (cfg->batch_age_ns + 999999) / 1000000;

		cc.batch_age_ms = (uint32_t)(ms > 2000 ? 2000 : ms);
	}
	/* Whom to become once attached: known before anything is loaded. */
	if (!cfg->keep_caps) {
		switch_to = caps_pick_user(cfg->user, &user, err, sizeof(err));
		if (switch_to < 0) {
			log_error("%s", err);
			return AGENT_EXIT_USAGE;
		}
	}
	r->cap = capture_open(&cc, err, sizeof(err));
	if (!r->cap)
		return capture_failed(errno, err);
	/* capture_open() logged each interface with its XDP mode. */
	r->started = true;
	r->source_counters = live_counters;
	/* The token and TLS files are read while still root... */
	status = run_stream_prepare(r);
	if (status)
		goto fail;
	if (!cfg->keep_caps) {
		/* Without tcx (Linux < 6.6) TC egress is a netlink filter whose
		 * removal at exit needs CAP_NET_ADMIN; a bpf_link needs nothing. */
		bool keep_net_admin = !kernel_at_least(6, 6);

		if (caps_drop_all(keep_net_admin, switch_to > 0 ? &user : NULL, err, sizeof(err))) {
			log_error("%s: refusing to run with privileges it does not need; use "
				  "--keep-caps to run anyway",
				  err);
			status = AGENT_EXIT_FAILURE;
			goto fail;
		}
		caps_describe(caps, sizeof(caps));
		if (switch_to > 0)
			log_info("running as user %s (uid %u, gid %u)", user.name,
				 (unsigned)user.uid, (unsigned)user.gid);
		log_info("capabilities dropped (now '%s')", caps);
	}
	/* ... the spool is opened as the new user, and the stream's thread
	 * (network, TLS) starts only now: threads keep the capabilities they
	 * were created with. */
	status = run_stream_start(r);
	if (status)
		goto fail;
	tick = cfg->sweep_ns;
	if (cc.design == CAPTURE_BATCHES && (uint64_t)cc.batch_age_ms * 500000 < tick)
		tick = (uint64_t)cc.batch_age_ms * 500000;
	if (tick < 1000000)
		tick = 1000000;
	status = loop(r, tick);
	drain(r);
	capture_counters(r->cap, &cap_final);
	cap_final_valid = true;
	capture_close(r->cap);
	r->cap = NULL;
	return status;
fail:
	run_stream_close(r);
	capture_close(r->cap);
	r->cap = NULL;
	r->started = false;
	return status;
}
