// SPDX-License-Identifier: MIT
/*
 * linkem.c - a userspace link emulator for the traffic lab.
 *
 * The lab's kernel has no netem qdisc, so the network conditions of a
 * session (one-way delay, jitter, random or bursty loss, a rate limit with a
 * finite bottleneck buffer) are made here instead.  linkem runs in the router
 * namespace and bridges two interfaces with one AF_PACKET socket each: every
 * frame read on --a goes out on --b ("up", client to server) and every frame
 * read on --b goes out on --a ("down").  Each direction is a FIFO: a frame
 * waits for the serialization of the frames ahead of it (the rate), then for
 * its propagation delay plus jitter, and is never released before the frame
 * ahead of it, so jitter does not reorder (and, drawn fresh per frame, piles
 * frames up behind the slowest; --jitter-corr-ms makes the jitter wander in
 * time instead, as a queue's does, so close frames see close delays).
 * Frames live in a byte ring per direction, allocated once from the queue
 * limit, the rate and the delay; nothing is allocated per frame.  The sockets
 * read and write a virtio-net header with each frame, so a frame whose TCP or
 * UDP checksum the sender left to offload (as veth senders do) crosses with
 * its checksum still to be done, like on a plain veth, instead of arriving
 * corrupt.  On SIGTERM or SIGINT linkem prints its counters as one JSON line
 * on stdout and exits.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <math.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

#define FRAME_MAX 65536u		       /* bytes: the largest frame forwarded */
#define VNET_LEN sizeof(struct virtio_net_hdr) /* bytes ahead of each frame */
/* frames read per socket per wakeup, so one busy direction cannot starve the other */
#define RX_BATCH 64
#define SOCKBUF_BYTES (8 << 20)	      /* socket buffers: absorb bursts of 8 MiB */
#define RETRY_NS 250000ull	      /* 250 us: wait before resending a refused frame */
#define RETRY_MAX 40		      /* refused 40 times (10 ms): drop it */
#define NO_RATE_BPS 125000000.0	      /* bytes/s: no rate? size the ring for 1 Gbit/s */
#define NO_RATE_HOLD (64.0 * 1048576) /* bytes: but hold at most 64 MiB in flight */
#define RING_MIN (1u << 20)	      /* bytes: every ring holds at least 1 MiB */
#define RING_MAX (1ull << 30)	      /* bytes: refuse configurations needing over 1 GiB */
#define QUEUE_DEFAULT_S 0.1	      /* s: the default bottleneck buffer at the rate */
#define QUEUE_DEFAULT_MIN 16384.0     /* bytes: and at least 16 KiB */
#define NAME_MAX_LEN 64
#define NSEC_PER_SEC 1000000000ull

/* ---- options ---- */

enum param { P_DELAY, P_JITTER, P_JCORR, P_LOSS, P_BURST, P_RATE, P_QUEUE, P_COUNT };
enum which { W_BOTH, W_UP, W_DOWN, W_COUNT };

struct param_spec {
	const char *name;
	double min, max;
	bool integer;
	const char *unit;
};

static const struct param_spec param_specs[P_COUNT] = {
	[P_DELAY] = { "delay-ms", 0, 10000, false, "ms" },
	[P_JITTER] = { "jitter-ms", 0, 10000, false, "ms" },
	[P_JCORR] = { "jitter-corr-ms", 0, 100000, false, "ms" },
	[P_LOSS] = { "loss", 0, 100, false, "percent" },
	[P_BURST] = { "loss-burst", 0, 1000, false, "frames" },
	[P_RATE] = { "rate", 0, 10000000, true, "kbit/s" },
	[P_QUEUE] = { "queue", 1514, 268435456, true, "bytes" },
};

static const char *const which_suffix[W_COUNT] = { "", "-up", "-down" };

enum {
	OPT_A = 0x100,
	OPT_B,
	OPT_NAME,
	OPT_SEED,
	OPT_JITTER_DIST,
	OPT_PARAM = 0x200, /* + param * W_COUNT + which */
};

#define PARAM_OPTS(str, p) \
	{ str, required_argument, NULL, OPT_PARAM + (p)*W_COUNT + W_BOTH }, \
		{ str "-up", required_argument, NULL, OPT_PARAM + (p)*W_COUNT + W_UP }, \
	{ \
		str "-down", required_argument, NULL, OPT_PARAM + (p)*W_COUNT + W_DOWN \
	}

static const struct option long_options[] = { { "a", required_argument, NULL, OPT_A },
					      { "b", required_argument, NULL, OPT_B },
					      { "name", required_argument, NULL, OPT_NAME },
					      { "seed", required_argument, NULL, OPT_SEED },
					      { "jitter-dist", required_argument, NULL,
						OPT_JITTER_DIST },
					      { "help", no_argument, NULL, 'h' },
					      PARAM_OPTS("delay-ms", P_DELAY),
					      PARAM_OPTS("jitter-ms", P_JITTER),
					      PARAM_OPTS("jitter-corr-ms", P_JCORR),
					      PARAM_OPTS("loss", P_LOSS),
					      PARAM_OPTS("loss-burst", P_BURST),
					      PARAM_OPTS("rate", P_RATE),
					      PARAM_OPTS("queue", P_QUEUE),
					      { NULL, 0, NULL, 0 } };

struct config {
	const char *if_a, *if_b;
	const char *name; /* the profile's name, echoed in the JSON */
	double val[W_COUNT][P_COUNT];
	bool set[W_COUNT][P_COUNT];
	uint64_t seed;
	bool seed_set;
	bool jitter_uniform;
};

static const char usage_text[] =
	"Usage: linkem --a IF --b IF [OPTION...]\n"
	"Bridge two interfaces of this network namespace, emulating a link: every frame\n"
	"read on --a is sent on --b (\"up\") and every frame read on --b is sent on --a\n"
	"(\"down\"), after its serialization at the rate, its one-way delay and jitter,\n"
	"unless random loss or a full queue drops it.  Frames of one direction leave in\n"
	"the order they came.  On SIGTERM or SIGINT, prints the counters of both\n"
	"directions as one JSON line on stdout and exits.  Needs CAP_NET_RAW.\n"
	"\n"
	"  --a IF, --b IF          the two interfaces (a: client side, b: server side)\n"
	"  --delay-ms MS           one-way delay, 0..10000 ms (default 0)\n"
	"  --jitter-ms MS          delay variation, 0..10000 ms (default 0): the standard\n"
	"                          deviation (normal, clipped at 3 sigma) or the half width\n"
	"                          (uniform) around the delay; never below 0 ms\n"
	"  --jitter-corr-ms MS     correlation time of the jitter, 0..100000 ms: frames\n"
	"                          this far apart have delays correlated by 1/e, so\n"
	"                          close frames see about the same delay, as behind a\n"
	"                          real queue; 0: a fresh draw per frame (default)\n"
	"  --jitter-dist DIST      normal (default) or uniform, both directions\n"
	"  --loss PCT              random loss, 0..100 percent of frames (default 0)\n"
	"  --loss-burst N          mean length of loss bursts in frames, 1..1000 (Gilbert\n"
	"                          model with the same average loss); 0: independent\n"
	"                          losses (default)\n"
	"  --rate KBIT             link rate, 0..10000000 kbit/s; 0: unlimited (default)\n"
	"  --queue BYTES           bottleneck buffer ahead of the rate, 1514..268435456\n"
	"                          bytes (default: 100 ms at the rate, at least 16 KiB);\n"
	"                          a frame that would overflow it is dropped\n"
	"  --seed N                seed of the random numbers, 0..2^64-1 (default: from\n"
	"                          the clock; printed in the JSON)\n"
	"  --name NAME             a label for the JSON (letters, digits, . _ -)\n"
	"  --help                  this text\n"
	"\n"
	"Each of --delay-ms, --jitter-ms, --jitter-corr-ms, --loss, --loss-burst, --rate\n"
	"and --queue sets both directions; add -up (a to b) or -down (b to a) for one\n"
	"direction, which wins over the plain option whatever the order.\n"
	"\n"
	"Examples:\n"
	"  ip netns exec router linkem --a rc --b rs --delay-ms 20 --jitter-ms 2\n"
	"  linkem --a rc --b rs --delay-ms 300 --rate-down 20000 --rate-up 3000 --seed 7\n"
	"  linkem --a rc --b rs --delay-ms 40 --loss-up 2 --loss-burst-up 4 --queue 64000\n"
	"\n"
	"Output (one line): {\"name\":..,\"seed\":..,\"up\":{\"received\":..,\"frames\":..,\n"
	"  \"bytes\":..,\"lost\":..,\"queue_drops\":..,\"queue_max_bytes\":..,\"pending\":..,\n"
	"  \"send_errors\":..,\"too_big\":..,\"kernel_drops\":..},\"down\":{...}}\n"
	"where received = frames + lost + queue_drops + pending + send_errors + too_big.\n"
	"Exit status: 0 after a signal, 1 if an interface or socket fails, 2 for usage.\n";

/* ---- per-direction state ---- */

struct link {
	uint64_t delay_ns;
	uint64_t jitter_ns;    /* standard deviation (normal) or half width (uniform) */
	double jitter_corr_ns; /* correlation time of the jitter; 0: independent */
	uint64_t rate_kbit;    /* 0: unlimited */
	uint64_t queue_bytes;  /* bottleneck buffer, only with a rate */
	double loss;	       /* probability a frame is lost, 0..1 */
	double enter_burst;    /* Gilbert: P(good -> bad) per frame */
	double leave_burst;    /* Gilbert: P(bad -> good) per frame */
	bool gilbert;
	bool uniform;
};

struct counters {
	uint64_t received;	  /* frames read */
	uint64_t frames;	  /* frames sent on */
	uint64_t bytes;		  /* bytes sent on, whole frames */
	uint64_t lost;		  /* dropped by random loss */
	uint64_t queue_drops;	  /* dropped by a full bottleneck buffer (or ring) */
	uint64_t queue_max_bytes; /* deepest bottleneck buffer seen */
	uint64_t send_errors;	  /* refused by the other interface */
	uint64_t too_big;	  /* over FRAME_MAX bytes */
	uint64_t kernel_drops;	  /* lost in the socket before linkem read them */
};

/* One frame in a ring: this header, its virtio-net header, the frame, padded to 8 bytes. */
struct frame_hdr {
	uint64_t release_ns;
	uint32_t len;  /* bytes of the frame, without the virtio-net header */
	uint32_t wrap; /* 1: no frame here, continue at offset 0 */
};

struct ring {
	uint8_t *buf;
	size_t cap;	   /* bytes, a multiple of 8 */
	size_t head, tail; /* offsets: next frame out, next free byte */
	size_t used;	   /* bytes between head and tail, padding included */
	uint64_t count;	   /* frames held */
};

struct prng {
	uint64_t s[4];
};

struct direction {
	const char *name; /* "up" or "down" */
	const char *in_if, *out_if;
	int in_fd, out_fd;
	struct link link;
	struct ring ring;
	struct prng rng;
	bool in_burst;	       /* Gilbert state: losing */
	double jitter_x;       /* correlated jitter: a standard normal wandering in time */
	uint64_t jitter_at_ns; /* when jitter_x was drawn; 0: never */
	uint64_t tx_end_ns;    /* when the last admitted frame is fully serialized */
	uint64_t last_release_ns;
	uint64_t retry_at_ns; /* a refused send is retried then */
	unsigned int retries;
	struct counters n;
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* ---- random numbers: xoshiro256**, seeded through splitmix64 ---- */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void prng_seed(struct prng *r, uint64_t seed, uint64_t stream)
{
	uint64_t x = seed ^ (stream * 0xd1b54a32d192ed03ull);

	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t prng_next(struct prng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

/* Uniform in [0, 1), 53 bits. */
static double prng_uniform(struct prng *r)
{
	return (double)(prng_next(r) >> 11) * 0x1.0p-53;
}

/* Standard normal (Box-Muller; the second value is not kept, for simplicity). */
static double prng_normal(struct prng *r)
{
	double u1 = 1.0 - prng_uniform(r); /* (0, 1]: log() stays finite */
	double u2 = prng_uniform(r);

	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* ---- the ring: frames leave in the order they came, so a byte FIFO holds them ---- */

static size_t frame_space(size_t len)
{
	return (sizeof(struct frame_hdr) + VNET_LEN + len + 7) & ~(size_t)7;
}

static int ring_init(struct ring *r, size_t cap)
{
	memset(r, 0, sizeof(*r));
	r->cap = (cap + 7) & ~(size_t)7;
	r->buf = malloc(r->cap);
	return r->buf ? 0 : -1;
}

static void ring_free(struct ring *r)
{
	free(r->buf);
	r->buf = NULL;
}

/* Where a frame needing `need` bytes goes, or SIZE_MAX if the ring is full. */
static size_t ring_slot(struct ring *r, size_t need)
{
	if (r->used == 0)
		r->head = r->tail = 0;
	if (r->tail < r->head)
		return r->head - r->tail >= need ? r->tail : SIZE_MAX;
	if (r->tail == r->head && r->used)
		return SIZE_MAX;
	if (r->cap - r->tail >= need)
		return r->tail;
	if (r->head < need)
		return SIZE_MAX;
	/* Skip the end of the buffer: mark it when a header fits there. */
	if (r->cap - r->tail >= sizeof(struct frame_hdr))
		((struct frame_hdr *)(r->buf + r->tail))->wrap = 1;
	r->used += r->cap - r->tail;
	r->tail = 0;
	return 0;
}

/* frame: the virtio-net header, then len bytes of frame */
static bool ring_push(struct ring *r, const uint8_t *frame, size_t len, uint64_t release_ns)
{
	size_t need = frame_space(len);
	size_t at = ring_slot(r, need);
	struct frame_hdr *h;

	if (at == SIZE_MAX)
		return false;
	h = (struct frame_hdr *)(r->buf + at);
	h->release_ns = release_ns;
	h->len = (uint32_t)len;
	h->wrap = 0;
	memcpy(h + 1, frame, VNET_LEN + len);
	r->tail = at + need == r->cap ? 0 : at + need;
	r->used += need;
	r->count++;
	return true;
}

static const struct frame_hdr *ring_peek(struct ring *r)
{
	const struct frame_hdr *h;

	if (!r->count)
		return NULL;
	if (r->cap - r->head < sizeof(*h) || ((const struct frame_hdr *)(r->buf + r->head))->wrap) {
		r->used -= r->cap - r->head;
		r->head = 0;
	}
	return (const struct frame_hdr *)(r->buf + r->head);
}

static void ring_pop(struct ring *r)
{
	const struct frame_hdr *h = ring_peek(r);
	size_t need = frame_space(h->len);

	r->head = r->head + need == r->cap ? 0 : r->head + need;
	r->used -= need;
	r->count--;
}

/* ---- option parsing ---- */

static int parse_param(const char *opt, const char *arg, enum param p, double *out)
{
	const struct param_spec *s = &param_specs[p];
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (errno || end == arg || *end || !isfinite(v) || v < s->min || v > s->max ||
	    (s->integer && v != floor(v))) {
		fprintf(stderr,
			"linkem: --%s %s: give %s from %.15g to %.15g (%s); "
			"see linkem --help\n",
			opt, arg, s->integer ? "a whole number" : "a number", s->min, s->max,
			s->unit);
		return -1;
	}
	if (p == P_BURST && v > 0 && v < 1) {
		fprintf(stderr, "linkem: --%s %s: a mean burst is 0 (off) or at least 1 frame\n",
			opt, arg);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_seed(const char *arg, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno || end == arg || *end || arg[0] == '-' || arg[0] == '+') {
		fprintf(stderr,
			"linkem: --seed %s: give a whole number from 0 to "
			"18446744073709551615\n",
			arg);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_name(const char *arg)
{
	size_t n = strlen(arg);

	if (n == 0 || n > NAME_MAX_LEN ||
	    strspn(arg, "abcdefghijklmnopqrstuvwxyz"
			"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != n) {
		fprintf(stderr, "linkem: --name %s: use 1 to %d letters, digits, '.', '_' or '-'\n",
			arg, NAME_MAX_LEN);
		return -1;
	}
	return 0;
}

static int parse_jitter_dist(const char *arg, bool *uniform)
{
	if (!strcmp(arg, "normal") || !strcmp(arg, "uniform")) {
		*uniform = arg[0] == 'u';
		return 0;
	}
	fprintf(stderr, "linkem: --jitter-dist %s: give normal or uniform\n", arg);
	return -1;
}

static int parse_one(struct config *c, int key, const char *arg, const char *opt)
{
	switch (key) {
	case OPT_A:
		c->if_a = arg;
		return 0;
	case OPT_B:
		c->if_b = arg;
		return 0;
	case OPT_NAME:
		c->name = arg;
		return parse_name(arg);
	case OPT_SEED:
		c->seed_set = true;
		return parse_seed(arg, &c->seed);
	case OPT_JITTER_DIST:
		return parse_jitter_dist(arg, &c->jitter_uniform);
	}
	if (key >= OPT_PARAM && key < OPT_PARAM + P_COUNT * W_COUNT) {
		int p = (key - OPT_PARAM) / W_COUNT, w = (key - OPT_PARAM) % W_COUNT;

		c->set[w][p] = true;
		return parse_param(opt, arg, (enum param)p, &c->val[w][p]);
	}
	fprintf(stderr, "Try 'linkem --help'.\n");
	return -1;
}

static int check_interfaces(const struct config *c)
{
	if (!c->if_a || !c->if_b) {
		fprintf(stderr, "linkem: give both interfaces: --a IF --b IF "
				"(see linkem --help)\n");
		return -1;
	}
	if (!strcmp(c->if_a, c->if_b)) {
		fprintf(stderr, "linkem: --a and --b are both %s: give two different interfaces\n",
			c->if_a);
		return -1;
	}
	return 0;
}

/* 0: run; 1: --help was printed; -1: usage error (already reported). */
static int parse_args(int argc, char **argv, struct config *c)
{
	int key, idx;

	opterr = 1;
	while ((key = getopt_long(argc, argv, "h", long_options, &idx)) != -1) {
		if (key == 'h') {
			fputs(usage_text, stdout);
			return 1;
		}
		if (parse_one(c, key, optarg, key == '?' ? "" : long_options[idx].name))
			return -1;
	}
	if (optind < argc) {
		fprintf(stderr,
			"linkem: unexpected argument '%s': every setting is an option "
			"(see linkem --help)\n",
			argv[optind]);
		return -1;
	}
	return check_interfaces(c);
}

/* ---- from options to one direction's link ---- */

static enum which which_set(const struct config *c, enum which w, enum param p)
{
	return c->set[w][p] ? w : W_BOTH;
}

static double cfg_value(const struct config *c, enum which w, enum param p, double dflt)
{
	enum which s = which_set(c, w, p);

	return c->set[s][p] ? c->val[s][p] : dflt;
}

static void set_gilbert(struct link *l, double burst)
{
	/*
	 * Two states: good (no loss) and bad (every frame lost).  A burst
	 * lasts 1/leave frames on average; entering at enter = p * leave /
	 * (1 - p) makes the long-run loss p, as with independent losses.
	 */
	l->gilbert = true;
	l->leave_burst = 1.0 / burst;
	l->enter_burst = l->loss * l->leave_burst / (1.0 - l->loss);
}

static int check_gilbert(const struct config *c, enum which w, double burst)
{
	double max_loss = 100.0 * burst / (1.0 + burst);
	double loss = cfg_value(c, w, P_LOSS, 0);

	if (loss <= max_loss && loss < 100)
		return 0;
	fprintf(stderr,
		"linkem: --loss%s %g with --loss-burst%s %g: a mean burst of %g frames "
		"allows at most %.1f%% loss; lower the loss or lengthen the bursts\n",
		which_suffix[which_set(c, w, P_LOSS)], loss, which_suffix[which_set(c, w, P_BURST)],
		burst, burst, max_loss < 100 ? max_loss : 99.9);
	return -1;
}

static int link_from_config(const struct config *c, enum which w, struct link *l)
{
	double rate = cfg_value(c, w, P_RATE, 0);
	double burst = cfg_value(c, w, P_BURST, 0);
	double queue_dflt = fmax(QUEUE_DEFAULT_MIN, rate * 125.0 * QUEUE_DEFAULT_S);

	memset(l, 0, sizeof(*l));
	l->delay_ns = (uint64_t)llround(cfg_value(c, w, P_DELAY, 0) * 1e6);
	l->jitter_ns = (uint64_t)llround(cfg_value(c, w, P_JITTER, 0) * 1e6);
	l->jitter_corr_ns = cfg_value(c, w, P_JCORR, 0) * 1e6;
	l->rate_kbit = (uint64_t)rate;
	l->queue_bytes = (uint64_t)cfg_value(c, w, P_QUEUE, fmin(queue_dflt, 268435456.0));
	l->loss = cfg_value(c, w, P_LOSS, 0) / 100.0;
	l->uniform = c->jitter_uniform;
	if (burst > 0) {
		if (check_gilbert(c, w, burst))
			return -1;
		set_gilbert(l, burst);
	}
	if (!l->rate_kbit && c->set[which_set(c, w, P_QUEUE)][P_QUEUE])
		fprintf(stderr, "linkem: warning: --queue%s has no effect without --rate%s\n",
			which_suffix[which_set(c, w, P_QUEUE)], which_suffix[w]);
	return 0;
}

/*
 * Bytes a direction may hold: the bottleneck buffer, plus what is in flight
 * (rate x the longest delay), doubled for the headers and padding of small
 * frames, plus room to wrap around with the largest frame.
 */
static double ring_need(const struct link *l)
{
	double jitter_max = l->uniform ? (double)l->jitter_ns : 3.0 * (double)l->jitter_ns;
	double hold_s = ((double)l->delay_ns + jitter_max) / 1e9;
	double in_flight, queue = 0;

	if (l->rate_kbit) {
		in_flight = (double)l->rate_kbit * 125.0 * hold_s;
		queue = (double)l->queue_bytes;
	} else {
		in_flight = fmin(NO_RATE_BPS * hold_s, NO_RATE_HOLD);
	}
	return fmax(RING_MIN, 2.0 * (queue + in_flight) + 2.0 * frame_space(FRAME_MAX));
}

static int direction_init(struct direction *d, const struct config *c, enum which w)
{
	double need;

	if (link_from_config(c, w, &d->link))
		return -1;
	need = ring_need(&d->link);
	if (need > (double)RING_MAX) {
		fprintf(stderr,
			"linkem: the %s direction would hold %.0f MB (rate x (delay + "
			"jitter) + queue); lower --rate%s, --delay-ms%s or --queue%s\n",
			d->name, need / 1e6, which_suffix[w], which_suffix[w], which_suffix[w]);
		return -1;
	}
	if (ring_init(&d->ring, (size_t)need)) {
		fprintf(stderr,
			"linkem: cannot allocate %.0f MB for the %s direction: free "
			"memory or lower its rate, delay or queue\n",
			need / 1e6, d->name);
		return -1;
	}
	prng_seed(&d->rng, c->seed, (uint64_t)w);
	return 0;
}

/* ---- sockets ---- */

static void set_sockbuf(int fd, int force, int plain)
{
	int size = SOCKBUF_BYTES;

	/* FORCE passes the rmem_max/wmem_max limits with CAP_NET_ADMIN. */
	if (setsockopt(fd, SOL_SOCKET, force, &size, sizeof(size)))
		setsockopt(fd, SOL_SOCKET, plain, &size, sizeof(size));
}

static int port_options(int fd, const char *ifname, int ifindex)
{
	struct packet_mreq mr = { .mr_ifindex = ifindex, .mr_type = PACKET_MR_PROMISC };
	int one = 1;

	if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one))) {
		fprintf(stderr,
			"linkem: cannot ignore outgoing frames on %s (%s): linkem needs "
			"Linux 4.20 or later\n",
			ifname, strerror(errno));
		return -1;
	}
	if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one))) {
		fprintf(stderr,
			"linkem: cannot get checksum offload state on %s (PACKET_VNET_HDR: "
			"%s): linkem needs a kernel with virtio-net headers on packet sockets\n",
			ifname, strerror(errno));
		return -1;
	}
	if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr))) {
		fprintf(stderr,
			"linkem: cannot make %s promiscuous (%s): run as root or with "
			"CAP_NET_RAW\n",
			ifname, strerror(errno));
		return -1;
	}
	/* linkem is the queue: frames go straight to the driver (best effort). */
	setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one));
	set_sockbuf(fd, SO_RCVBUFFORCE, SO_RCVBUF);
	set_sockbuf(fd, SO_SNDBUFFORCE, SO_SNDBUF);
	return 0;
}

static int open_port(const char *ifname, int *fd_out)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	int ifindex = (int)if_nametoindex(ifname);
	int fd;

	if (!ifindex) {
		fprintf(stderr,
			"linkem: no interface %s in this network namespace: check "
			"'ip link', or run linkem inside it (ip netns exec NS linkem ...)\n",
			ifname);
		return -1;
	}
	/* Protocol 0 receives nothing until bind() names the one interface. */
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr,
			"linkem: cannot open a packet socket for %s (%s): run as root "
			"or with CAP_NET_RAW\n",
			ifname, strerror(errno));
		return -1;
	}
	if (port_options(fd, ifname, ifindex))
		goto close_fd;
	sll.sll_ifindex = ifindex;
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll))) {
		fprintf(stderr,
			"linkem: cannot bind a packet socket to %s (%s): is the "
			"interface still there?\n",
			ifname, strerror(errno));
		goto close_fd;
	}
	*fd_out = fd;
	return 0;

close_fd:
	close(fd);
	return -1;
}

static uint64_t kernel_drops(int fd)
{
	struct tpacket_stats st = { 0 };
	socklen_t len = sizeof(st);

	if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &len))
		return 0;
	return st.tp_drops;
}

/* ---- the datapath ---- */

/*
 * A standard normal for the jitter of a frame at `now`.  Correlated jitter is
 * an Ornstein-Uhlenbeck process sampled at the frames: over dt it keeps
 * rho = exp(-dt / corr) of its value and draws the rest, so its distribution
 * stays standard normal whatever the spacing of the frames.
 */
static double jitter_normal(struct direction *d, uint64_t now)
{
	double rho;

	if (d->link.jitter_corr_ns <= 0)
		return prng_normal(&d->rng);
	if (!d->jitter_at_ns) {
		d->jitter_x = prng_normal(&d->rng);
	} else {
		rho = exp(-(double)(now - d->jitter_at_ns) / d->link.jitter_corr_ns);
		d->jitter_x = rho * d->jitter_x + sqrt(1.0 - rho * rho) * prng_normal(&d->rng);
	}
	d->jitter_at_ns = now;
	return d->jitter_x;
}

static uint64_t sample_delay(struct direction *d, uint64_t now)
{
	const struct link *l = &d->link;
	double z, ns;

	if (!l->jitter_ns)
		return l->delay_ns;
	z = jitter_normal(d, now);
	if (l->uniform) /* the normal's CDF makes it uniform: 2 Phi(z) - 1 */
		z = erf(z / M_SQRT2);
	else
		z = fmax(-3.0, fmin(3.0, z));
	ns = (double)l->delay_ns + z * (double)l->jitter_ns;
	return ns > 0 ? (uint64_t)ns : 0;
}

static bool lose(struct direction *d)
{
	const struct link *l = &d->link;
	bool lost;

	if (!l->gilbert)
		return l->loss > 0 && prng_uniform(&d->rng) < l->loss;
	lost = d->in_burst;
	if (d->in_burst)
		d->in_burst = prng_uniform(&d->rng) >= l->leave_burst;
	else
		d->in_burst = prng_uniform(&d->rng) < l->enter_burst;
	return lost;
}

/*
 * Serialize the frame behind the ones ahead of it at the rate: *tx_end is
 * when its last bit is sent.  False if the bottleneck buffer cannot take it;
 * the buffer holds the bytes not yet serialized, (tx_end - now) x rate.
 */
static bool serialize(struct direction *d, size_t len, uint64_t now, uint64_t *tx_end)
{
	const struct link *l = &d->link;
	uint64_t backlog = 0, start;

	*tx_end = now;
	if (!l->rate_kbit)
		return true;
	if (d->tx_end_ns > now) /* ns x kbit/s / 8e6 = bytes */
		backlog = (d->tx_end_ns - now) * l->rate_kbit / 8000000u;
	if (backlog + len > l->queue_bytes)
		return false;
	if (backlog + len > d->n.queue_max_bytes)
		d->n.queue_max_bytes = backlog + len;
	start = d->tx_end_ns > now ? d->tx_end_ns : now;
	/* len bytes x 8 bit / (rate x 1000 bit/s) = len x 8e6 / rate ns */
	d->tx_end_ns = start + (uint64_t)len * 8000000u / l->rate_kbit;
	*tx_end = d->tx_end_ns;
	return true;
}

/* frame: a virtio-net header, then the len bytes of the frame read at now */
static void admit(struct direction *d, const uint8_t *frame, size_t len, uint64_t now)
{
	uint64_t tx_end, release;

	d->n.received++;
	if (len > FRAME_MAX) {
		d->n.too_big++;
		return;
	}
	if (!serialize(d, len, now, &tx_end)) {
		d->n.queue_drops++;
		return;
	}
	/* Lost on the wire: it took its serialization time all the same. */
	if (lose(d)) {
		d->n.lost++;
		return;
	}
	release = tx_end + sample_delay(d, now);
	if (release < d->last_release_ns) /* no reordering */
		release = d->last_release_ns;
	if (!ring_push(&d->ring, frame, len, release)) {
		d->n.queue_drops++;
		return;
	}
	d->last_release_ns = release;
}

/* Send the frames whose time has come; a refused one waits RETRY_NS. */
static void release_due(struct direction *d, uint64_t now)
{
	const struct frame_hdr *h;
	ssize_t n;

	while ((h = ring_peek(&d->ring)) && h->release_ns <= now && d->retry_at_ns <= now) {
		n = send(d->out_fd, h + 1, VNET_LEN + h->len, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == ENOBUFS) && d->retries < RETRY_MAX) {
			d->retries++;
			d->retry_at_ns = now + RETRY_NS;
			return;
		}
		if (n < 0) {
			d->n.send_errors++;
		} else {
			d->n.frames++;
			d->n.bytes += h->len;
		}
		d->retries = 0;
		d->retry_at_ns = 0;
		ring_pop(&d->ring);
	}
}

static uint64_t next_event(struct direction *d)
{
	const struct frame_hdr *h = ring_peek(&d->ring);

	if (!h)
		return UINT64_MAX;
	return h->release_ns > d->retry_at_ns ? h->release_ns : d->retry_at_ns;
}

static int drain(struct direction *d, uint8_t *buf)
{
	struct sockaddr_ll from;
	socklen_t fromlen;
	ssize_t n;

	for (int i = 0; i < RX_BATCH; i++) {
		fromlen = sizeof(from);
		n = recvfrom(d->in_fd, buf, VNET_LEN + FRAME_MAX, MSG_TRUNC,
			     (struct sockaddr *)&from, &fromlen);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr,
				"linkem: reading %s failed (%s): the interface went "
				"down or away; stopping\n",
				d->in_if, strerror(errno));
			return -1;
		}
		if (from.sll_pkttype == PACKET_OUTGOING || (size_t)n < VNET_LEN)
			continue;
		admit(d, buf, (size_t)n - VNET_LEN, now_ns());
	}
	return 0;
}

static struct timespec *poll_timeout(struct direction dirs[2], struct timespec *ts)
{
	uint64_t next = next_event(&dirs[0]), now;

	if (next_event(&dirs[1]) < next)
		next = next_event(&dirs[1]);
	if (next == UINT64_MAX)
		return NULL;
	now = now_ns();
	next = next > now ? next - now : 0;
	ts->tv_sec = (time_t)(next / NSEC_PER_SEC);
	ts->tv_nsec = (long)(next % NSEC_PER_SEC);
	return ts;
}

static int port_error(const struct direction *d)
{
	int err = 0;
	socklen_t len = sizeof(err);

	getsockopt(d->in_fd, SOL_SOCKET, SO_ERROR, &err, &len);
	fprintf(stderr,
		"linkem: socket on %s failed (%s): the interface went down or away; "
		"stopping\n",
		d->in_if, err ? strerror(err) : "poll error");
	return -1;
}

/* dirs[i] reads the socket of pfd[i]: up reads a, down reads b. */
static int forward(struct direction dirs[2], const sigset_t *waitmask, uint8_t *buf)
{
	struct pollfd pfd[2] = {
		{ .fd = dirs[0].in_fd, .events = POLLIN },
		{ .fd = dirs[1].in_fd, .events = POLLIN },
	};
	struct timespec ts;

	while (!stop_signal) {
		uint64_t now = now_ns();

		release_due(&dirs[0], now);
		release_due(&dirs[1], now);
		if (ppoll(pfd, 2, poll_timeout(dirs, &ts), waitmask) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "linkem: poll failed (%s)\n", strerror(errno));
			return -1;
		}
		for (int i = 0; i < 2; i++) {
			if (pfd[i].revents & (POLLERR | POLLHUP | POLLNVAL))
				return port_error(&dirs[i]);
			if ((pfd[i].revents & POLLIN) && drain(&dirs[i], buf))
				return -1;
		}
	}
	return 0;
}

/* ---- report ---- */

static void print_direction(const struct direction *d)
{
	const struct counters *n = &d->n;

	printf("\"%s\":{\"received\":%" PRIu64 ",\"frames\":%" PRIu64 ",\"bytes\":%" PRIu64
	       ",\"lost\":%" PRIu64 ",\"queue_drops\":%" PRIu64 ",\"queue_max_bytes\":%" PRIu64
	       ",\"pending\":%" PRIu64 ",\"send_errors\":%" PRIu64 ",\"too_big\":%" PRIu64
	       ",\"kernel_drops\":%" PRIu64 "}",
	       d->name, n->received, n->frames, n->bytes, n->lost, n->queue_drops,
	       n->queue_max_bytes, d->ring.count, n->send_errors, n->too_big, n->kernel_drops);
}

static void print_report(const struct config *c, const struct direction dirs[2])
{
	printf("{");
	if (c->name)
		printf("\"name\":\"%s\",", c->name);
	printf("\"seed\":%" PRIu64 ",", c->seed);
	print_direction(&dirs[0]);
	printf(",");
	print_direction(&dirs[1]);
	printf("}\n");
	fflush(stdout);
}

/* ---- setup ---- */

/* Block the stop signals except inside ppoll(), so none is missed. */
static void setup_signals(sigset_t *waitmask)
{
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t stops;

	sigemptyset(&sa.sa_mask);
	sigemptyset(&stops);
	sigaddset(&stops, SIGTERM);
	sigaddset(&stops, SIGINT);
	sigaddset(&stops, SIGHUP);
	sigprocmask(SIG_BLOCK, &stops, waitmask);
	sigdelset(waitmask, SIGTERM);
	sigdelset(waitmask, SIGINT);
	sigdelset(waitmask, SIGHUP);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static void default_seed(struct config *c)
{
	struct timespec ts;

	if (c->seed_set)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	c->seed = (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
	c->seed ^= (uint64_t)getpid() << 32;
}

int main(int argc, char **argv)
{
	static struct config cfg;
	static struct direction dirs[2] = {
		{ .name = "up", .in_fd = -1, .out_fd = -1 },
		{ .name = "down", .in_fd = -1, .out_fd = -1 },
	};
	static uint8_t buf[VNET_LEN + FRAME_MAX];
	sigset_t waitmask;
	int fd_a, fd_b, rc, r;

	r = parse_args(argc, argv, &cfg);
	if (r)
		return r > 0 ? 0 : 2;
	default_seed(&cfg);
	rc = 2;
	if (direction_init(&dirs[0], &cfg, W_UP) || direction_init(&dirs[1], &cfg, W_DOWN))
		goto free_rings;
	rc = 1;
	/* Timers fire on time to the microsecond, not 50 us late (the default slack). */
	prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	setup_signals(&waitmask);
	if (open_port(cfg.if_a, &fd_a))
		goto free_rings;
	if (open_port(cfg.if_b, &fd_b))
		goto close_a;
	dirs[0].in_if = dirs[1].out_if = cfg.if_a;
	dirs[1].in_if = dirs[0].out_if = cfg.if_b;
	dirs[0].in_fd = dirs[1].out_fd = fd_a;
	dirs[1].in_fd = dirs[0].out_fd = fd_b;

	rc = forward(dirs, &waitmask, buf) ? 1 : 0;
	dirs[0].n.kernel_drops = kernel_drops(fd_a);
	dirs[1].n.kernel_drops = kernel_drops(fd_b);
	print_report(&cfg, dirs);

	close(fd_b);
close_a:
	close(fd_a);
free_rings:
	ring_free(&dirs[1].ring);
	ring_free(&dirs[0].ring);
	return rc;
}
