// SPDX-License-Identifier: MIT
/*
 * send.c - flowpic-send: stream verdict JSON lines to a collector through
 * libflowpic_stream, then print the stream's counters.  For tests,
 * benchmarks and operators (replaying a spool, checking a collector).
 */
#include <argp.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/number.h"
#include "stream.h"
#include "rpc/token.h"
#include "vjson.h"

const char *argp_program_version = "flowpic-send " FLOWPIC_VERSION;

#define EXIT_ACKED 0	  /* every verdict acknowledged */
#define EXIT_UNREADABLE 1 /* an input could not be read, or the stream not set up */
#define EXIT_USAGE 2
#define EXIT_KEPT 3	/* some verdicts wait in the spool (collector away / refused) */
#define EXIT_DROPPED 4	/* some verdicts were lost (spool limit; counted) */
#define EXIT_BADLINES 5 /* bad input lines (each reported; the rest was sent) */

enum {
	OPT_COLLECTOR = 256,
	OPT_TLS,
	OPT_CA,
	OPT_CERT,
	OPT_KEY,
	OPT_SERVER_NAME,
	OPT_TOKEN,
	OPT_TOKEN_FILE,
	OPT_AGENT_ID,
	OPT_HOST,
	OPT_RUN_ID,
	OPT_MODEL,
	OPT_MODEL_VERSION,
	OPT_CLASSES,
	OPT_BATCH,
	OPT_DELAY,
	OPT_QUEUE,
	OPT_SUBMIT,
	OPT_SPOOL,
	OPT_SPOOL_MAX,
	OPT_SEGMENT,
	OPT_FSYNC,
	OPT_BACKOFF_INITIAL,
	OPT_BACKOFF_MAX,
	OPT_CONNECT_TIMEOUT,
	OPT_ACK_TIMEOUT,
	OPT_TIMEOUT,
	OPT_RATE,
	OPT_REPEAT,
	OPT_JSON,
	OPT_INTERFACE,
};

struct send_opts {
	struct stream_config cfg;
	char token[RPC_TOKEN_MAX + 1];
	char *classes_buf;
	const char *classes[STREAM_MAX_CLASSES];
	unsigned timeout_ms;
	uint64_t rate; /* verdicts per second, 0: as fast as possible */
	uint64_t repeat;
	bool json;
	const char *interface;
	int verbose;
	char **files;
	int nfiles;
};

static const struct argp_option options[] = {
	{ NULL, 0, NULL, 0, "Collector:", 1 },
	{ "collector", OPT_COLLECTOR, "HOST:PORT", 0,
	  "the collector (or any gRPC server of proto/flowpic.proto); a comma list of "
	  "collectors sharing a store: a failed or dropped connection moves to the next",
	  1 },
	{ "tls", OPT_TLS, NULL, 0, "TLS (default: cleartext HTTP/2, h2c)", 1 },
	{ "ca", OPT_CA, "FILE", 0,
	  "CA certificate(s) to verify the collector (default: system's); implies --tls", 1 },
	{ "cert", OPT_CERT, "FILE", 0, "this agent's certificate for mutual TLS; implies --tls",
	  1 },
	{ "key", OPT_KEY, "FILE", 0, "the key of --cert", 1 },
	{ "server-name", OPT_SERVER_NAME, "NAME", 0,
	  "name to verify in the collector's certificate (default: HOST)", 1 },
	{ "token", OPT_TOKEN, "TOKEN", 0, "access token (authorization: Bearer TOKEN)", 1 },
	{ "token-file", OPT_TOKEN_FILE, "FILE", 0, "read the access token from FILE (first line)",
	  1 },
	{ NULL, 0, NULL, 0, "Identity and model (sent with every batch):", 2 },
	{ "agent-id", OPT_AGENT_ID, "ID", 0, "agent id (default: flowpic-send)", 2 },
	{ "host", OPT_HOST, "NAME", 0, "host name (default: this host's)", 2 },
	{ "run-id", OPT_RUN_ID, "N", 0, "run id (default: now in ns); verdict seq restarts with it",
	  2 },
	{ "model", OPT_MODEL, "NAME", 0, "model name", 2 },
	{ "model-version", OPT_MODEL_VERSION, "V", 0, "model version", 2 },
	{ "classes", OPT_CLASSES, "A,B,...", 0,
	  "the model's classes, in the order of probs (default: the names of the first line's \"probs\" object)",
	  2 },
	{ "interface", OPT_INTERFACE, "NAME", 0,
	  "interface (or file) of verdicts whose line has none", 2 },
	{ NULL, 0, NULL, 0, "Batches, queue and spool:", 3 },
	{ "batch", OPT_BATCH, "N", 0, "verdicts per batch at most (default 500)", 3 },
	{ "delay", OPT_DELAY, "MS", 0, "longest wait of a verdict in an open batch (default 1000)",
	  3 },
	{ "queue", OPT_QUEUE, "N", 0, "unacknowledged batches in memory (default 64)", 3 },
	{ "submit", OPT_SUBMIT, "N", 0, "verdicts in the submit ring (default 16384)", 3 },
	{ "spool", OPT_SPOOL, "DIR", 0,
	  "spool directory (default: none: what does not fit in memory is dropped)", 3 },
	{ "spool-max", OPT_SPOOL_MAX, "BYTES", 0, "spool size limit, K/M/G suffixes (default 1G)",
	  3 },
	{ "segment", OPT_SEGMENT, "BYTES", 0, "spool segment size (default 4M)", 3 },
	{ "fsync", OPT_FSYNC, "WHEN", 0, "batch (default), segment or never", 3 },
	{ NULL, 0, NULL, 0, "Timing:", 4 },
	{ "backoff-initial", OPT_BACKOFF_INITIAL, "MS", 0,
	  "first reconnection delay (default 1000)", 4 },
	{ "backoff-max", OPT_BACKOFF_MAX, "MS", 0, "longest reconnection delay (default 120000)",
	  4 },
	{ "connect-timeout", OPT_CONNECT_TIMEOUT, "MS", 0, "TCP+TLS set-up limit (default 20000)",
	  4 },
	{ "ack-timeout", OPT_ACK_TIMEOUT, "MS", 0,
	  "reconnect after this long without an acknowledgement (default 30000)", 4 },
	{ "timeout", OPT_TIMEOUT, "MS", 0,
	  "at the end, wait this long for acknowledgements before spooling the rest (default 10000)",
	  4 },
	{ "rate", OPT_RATE, "N", 0,
	  "submit at most N verdicts per second (default: as fast as possible)", 4 },
	{ "repeat", OPT_REPEAT, "N", 0, "send the input N times (benchmarks)", 4 },
	{ NULL, 0, NULL, 0, "Output:", 5 },
	{ "json", OPT_JSON, NULL, 0, "counters as one JSON line", 5 },
	{ "verbose", 'v', NULL, 0, "say more (twice: debug)", 5 },
	{ 0 }
};

static const char doc[] =
	"Stream verdicts (JSON lines, one per verdict) to a flowpic collector over gRPC, "
	"then print the stream's counters.\v"
	"FILE is a file of verdict JSON lines, or - (default) for standard input: the lines "
	"`flowpic classify --json` prints, or the minimal form with the proto's field names "
	"(docs/stream.md). \"summary\" lines are skipped; a malformed line is reported "
	"(FILE:LINE: what) and skipped, the rest is sent.\n\n"
	"Examples:\n"
	"  flowpic classify --json capture.pcap |\n"
	"      flowpic-send --collector collector:50051 --interface capture.pcap \\\n"
	"      --spool /var/spool/flowpic\n"
	"  flowpic-send --collector c1:50051,c2:50051,c3:50051 verdicts.jsonl\n"
	"  flowpic-send --collector localhost:50051 verdicts.jsonl --json\n"
	"  flowpic-send --collector collector.example:50051 --ca ca.pem --cert agent.pem --key agent.key \\\n"
	"      --token-file /etc/flowpic/token verdicts.jsonl\n"
	"  flowpic-send --collector collector:50051 --spool /var/spool/flowpic </dev/null   # replay a spool\n\n"
	"Exit status: 0 every verdict acknowledged; 1 an input or the set-up failed; 2 bad "
	"arguments; 3 some verdicts wait in the spool (collector away or refusing); 4 some "
	"verdicts were dropped (spool limit, counted); 5 bad input lines (reported, skipped).";

/* A byte count with an optional K, M or G suffix: 0, or -EINVAL. */
static int parse_bytes(const char *s, uint64_t *out)
{
	char buf[32];
	size_t n = strlen(s);
	uint64_t mul = 1, v;

	if (!n || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n + 1);
	switch (buf[n - 1]) {
	case 'K':
	case 'k':
		mul = 1ull << 10;
		break;
	case 'M':
	case 'm':
		mul = 1ull << 20;
		break;
	case 'G':
	case 'g':
		mul = 1ull << 30;
		break;
	default:
		break;
	}
	if (mul > 1)
		buf[n - 1] = '\0';
	if (number_parse_u64(buf, 1, UINT64_MAX / mul, &v))
		return -EINVAL;
	*out = v * mul;
	return 0;
}

static unsigned num(struct argp_state *st, const char *arg, uint64_t min, uint64_t max)
{
	uint64_t v;

	if (number_parse_u64(arg, min, max, &v))
		argp_error(st, "%s: expected a whole number from %" PRIu64 " to %" PRIu64, arg, min,
			   max);
	return (unsigned)v;
}

static error_t parse_opt(int key, char *arg, struct argp_state *st)
{
	struct send_opts *o = st->input;
	struct stream_config *c = &o->cfg;
	char err[256];
	uint64_t v;

	switch (key) {
	case OPT_COLLECTOR:
		c->target = arg;
		break;
	case OPT_TLS:
		c->tls = true;
		break;
	case OPT_CA:
		c->ca_file = arg;
		c->tls = true;
		break;
	case OPT_CERT:
		c->cert_file = arg;
		c->tls = true;
		break;
	case OPT_KEY:
		c->key_file = arg;
		break;
	case OPT_SERVER_NAME:
		c->server_name = arg;
		break;
	case OPT_TOKEN:
		if (!rpc_token_valid(arg))
			argp_error(st, "--token: 1 to %d visible ASCII characters, no spaces",
				   RPC_TOKEN_MAX);
		snprintf(o->token, sizeof(o->token), "%s", arg);
		c->token = o->token;
		break;
	case OPT_TOKEN_FILE:
		if (rpc_token_load(arg, o->token, sizeof(o->token), err, sizeof(err)) < 0)
			argp_error(st, "--token-file: %s", err);
		c->token = o->token;
		break;
	case OPT_AGENT_ID:
		c->agent_id = arg;
		break;
	case OPT_HOST:
		c->host = arg;
		break;
	case OPT_RUN_ID:
		if (number_parse_u64(arg, 1, UINT64_MAX, &v))
			argp_error(st, "--run-id %s: expected a positive whole number", arg);
		c->run_id = v;
		break;
	case OPT_MODEL:
		c->model_name = arg;
		break;
	case OPT_MODEL_VERSION:
		c->model_version = arg;
		break;
	case OPT_CLASSES: {
		char *save = NULL, *t;

		o->classes_buf = strdup(arg);
		c->nclasses = 0;
		for (t = strtok_r(o->classes_buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			if (c->nclasses == STREAM_MAX_CLASSES)
				argp_error(st, "--classes: at most %d", STREAM_MAX_CLASSES);
			o->classes[c->nclasses++] = t;
		}
		c->classes = o->classes;
		break;
	}
	case OPT_BATCH:
		c->batch_max = num(st, arg, 1, STREAM_BATCH_MAX);
		break;
	case OPT_DELAY:
		c->batch_delay_ms = num(st, arg, 0, 3600000);
		break;
	case OPT_QUEUE:
		c->queue_max = num(st, arg, 1, 1u << 20);
		break;
	case OPT_SUBMIT:
		c->submit_max = num(st, arg, 1, 1u << 24);
		break;
	case OPT_SPOOL:
		c->spool_dir = arg;
		break;
	case OPT_SPOOL_MAX:
		if (parse_bytes(arg, &c->spool_max_bytes) < 0)
			argp_error(st, "--spool-max %s: expected bytes, e.g. 512M", arg);
		break;
	case OPT_SEGMENT:
		if (parse_bytes(arg, &c->spool_segment_bytes) < 0)
			argp_error(st, "--segment %s: expected bytes, e.g. 4M", arg);
		break;
	case OPT_FSYNC:
		if (!strcmp(arg, "batch"))
			c->fsync = STREAM_FSYNC_BATCH;
		else if (!strcmp(arg, "segment"))
			c->fsync = STREAM_FSYNC_SEGMENT;
		else if (!strcmp(arg, "never"))
			c->fsync = STREAM_FSYNC_NEVER;
		else
			argp_error(st, "--fsync %s: expected batch, segment or never", arg);
		break;
	case OPT_BACKOFF_INITIAL:
		c->backoff_initial_ms = num(st, arg, 1, 3600000);
		break;
	case OPT_BACKOFF_MAX:
		c->backoff_max_ms = num(st, arg, 1, 3600000);
		break;
	case OPT_CONNECT_TIMEOUT:
		c->connect_timeout_ms = num(st, arg, 1, 3600000);
		break;
	case OPT_ACK_TIMEOUT:
		c->ack_timeout_ms = num(st, arg, 1, 3600000);
		break;
	case OPT_TIMEOUT:
		o->timeout_ms = num(st, arg, 0, 86400000);
		break;
	case OPT_RATE:
		o->rate = num(st, arg, 1, 100000000);
		break;
	case OPT_REPEAT:
		o->repeat = num(st, arg, 1, 1000000);
		break;
	case OPT_JSON:
		o->json = true;
		break;
	case OPT_INTERFACE:
		if (strlen(arg) >= STREAM_IFNAME_MAX)
			argp_error(st, "--interface: at most %d characters", STREAM_IFNAME_MAX - 1);
		o->interface = arg;
		break;
	case 'v':
		o->verbose++;
		break;
	case ARGP_KEY_ARGS:
		o->files = st->argv + st->next;
		o->nfiles = st->argc - st->next;
		break;
	case ARGP_KEY_END:
		if (!c->target)
			argp_error(st, "no collector: -c HOST:PORT");
		if (!!c->cert_file != !!c->key_file)
			argp_error(st, "--cert and --key go together");
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

struct feed {
	struct stream *s;
	struct send_opts *o;
	int failed; /* stream_new() failed (its negative errno): nothing more to do */
	uint64_t rate, submitted, bad, skipped, start_ns;
};

/*
 * The stream is made at the first verdict, so that the model's classes can
 * come from it ("probs":{"voip":...} of classify --json) when --classes is
 * not given; or at the end for a run that only replays the spool.  0, or the
 * negative errno of stream_new() (logged once).
 */
static int ensure_stream(struct feed *f, const struct vjson_classes *vc)
{
	const char *names[STREAM_MAX_CLASSES];
	struct stream_config cfg = f->o->cfg;
	char err[320];
	unsigned i;

	if (f->s || f->failed)
		return f->s ? 0 : f->failed;
	if (!cfg.nclasses && vc && vc->n) {
		for (i = 0; i < vc->n; i++)
			names[i] = vc->names[i];
		cfg.classes = names;
		cfg.nclasses = vc->n;
	}
	f->s = stream_new(&cfg, err, sizeof(err));
	if (!f->s) {
		f->failed = errno ? -errno : -EIO;
		log_error("%s", err);
		return f->failed;
	}
	f->start_ns = clock_mono_ns();
	return 0;
}

static void submit_paced(struct feed *f, const struct stream_verdict *v)
{
	if (f->rate) {
		uint64_t due = f->start_ns + f->submitted * 1000000000ull / f->rate;
		uint64_t now = clock_mono_ns();

		if (due > now) {
			struct timespec ts = { (time_t)((due - now) / 1000000000ull),
					       (long)((due - now) % 1000000000ull) };

			nanosleep(&ts, NULL);
		}
	}
	/* A tool may wait for room; the agent's packet path never does. */
	while (stream_submit(f->s, v, NULL) == -EAGAIN) {
		struct timespec ts = { 0, 200000 };

		nanosleep(&ts, NULL);
	}
	f->submitted++;
}

/* Submit the verdicts of one file ("-": stdin); bad lines are counted and
 * skipped.  0, or a negative errno (logged): the file cannot be read, or the
 * stream cannot start. */
static int feed_file(struct feed *f, const char *path, struct stream_verdict **cache,
		     size_t *ncache, size_t *capcache, bool keep)
{
	FILE *in = strcmp(path, "-") ? fopen(path, "r") : stdin;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	uint64_t lineno = 0;
	int ret = 0;

	if (!in) {
		ret = -errno;
		log_error("%s: cannot open: %s", path, strerror(-ret));
		return ret;
	}
	while ((n = getline(&line, &cap, in)) >= 0) {
		struct stream_verdict v;
		struct vjson_classes vc;
		char err[200];
		int r;

		lineno++;
		r = vjson_parse(line, (size_t)n, &v, &vc, err, sizeof(err));
		if (r < 0) {
			log_error("%s:%" PRIu64 ": %s; line skipped", path, lineno, err);
			f->bad++;
			continue;
		}
		if (r > 0) {
			f->skipped++;
			continue;
		}
		if (!v.interface[0] && f->o->interface)
			strcpy(v.interface, f->o->interface);
		ret = ensure_stream(f, &vc);
		if (ret < 0)
			break;
		if (keep) {
			if (*ncache == *capcache) {
				size_t nc = *capcache ? *capcache * 2 : 1024;
				struct stream_verdict *p = realloc(*cache, nc * sizeof(*p));

				if (!p) {
					log_error("out of memory keeping verdicts for --repeat");
					ret = -ENOMEM;
					break;
				}
				*cache = p;
				*capcache = nc;
			}
			(*cache)[(*ncache)++] = v;
		}
		submit_paced(f, &v);
	}
	if (ferror(in)) {
		int e = errno ? errno : EIO;

		log_error("%s: read error: %s", path, strerror(errno));
		ret = -e;
	}
	free(line);
	if (in != stdin)
		fclose(in);
	return ret;
}

static void print_counters(const struct stream_counters *c, const struct feed *f, bool json,
			   double secs)
{
	struct stream_counter list[32];
	size_t i, n = stream_counters_list(c, list, 32);

	if (json) {
		/* The agent's shape and names (docs/json.md). */
		printf("{\"seconds\":%.3f,\"counters\":{\"lines_bad\":%" PRIu64
		       ",\"lines_skipped\":%" PRIu64,
		       secs, f->bad, f->skipped);
		for (i = 0; i < n; i++)
			printf(",\"%s\":%" PRIu64, list[i].name, list[i].value);
		printf("},\"type\":\"counters\"}\n");
		return;
	}
	printf("%-24s %" PRIu64 "\n%-24s %" PRIu64 "\n", "lines.bad", f->bad, "lines.skipped",
	       f->skipped);
	for (i = 0; i < n; i++)
		printf("%-24s %" PRIu64 "\n", list[i].name, list[i].value);
	printf("%-24s %.3f\n", "seconds", secs);
}

int main(int argc, char **argv)
{
	struct send_opts o = { .timeout_ms = 10000, .repeat = 1 };
	struct argp argp = { options, parse_opt, "[FILE...]", doc, NULL, NULL, NULL };
	struct stream_verdict *cache = NULL;
	size_t ncache = 0, capcache = 0;
	struct stream_counters c;
	struct feed f = { 0 };
	uint64_t r, t0;
	int i, status = EXIT_ACKED;
	char *stdin_only[] = { (char *)"-" };

	log_init("flowpic-send", LOG_WARN);
	argp_err_exit_status = EXIT_USAGE;
	signal(SIGPIPE, SIG_IGN);
	stream_config_default(&o.cfg);
	o.cfg.agent_id = "flowpic-send";
	o.cfg.version = FLOWPIC_VERSION;
	if (argp_parse(&argp, argc, argv, 0, NULL, &o))
		return EXIT_USAGE;
	if (o.verbose)
		log_set_level(o.verbose > 1 ? LOG_DEBUG : LOG_INFO);
	if (!o.nfiles) {
		o.files = stdin_only;
		o.nfiles = 1;
	}
	t0 = clock_mono_ns();
	f.o = &o;
	f.rate = o.rate;
	for (i = 0; i < o.nfiles && !f.failed; i++)
		if (feed_file(&f, o.files[i], &cache, &ncache, &capcache, o.repeat > 1) < 0)
			status = EXIT_UNREADABLE;
	if (ensure_stream(&f, NULL) < 0) {
		free(cache);
		free(o.classes_buf);
		return EXIT_UNREADABLE;
	}
	for (r = 1; r < o.repeat; r++) {
		size_t k;

		for (k = 0; k < ncache; k++)
			submit_paced(&f, &cache[k]);
	}
	free(cache);
	stream_close(f.s, o.timeout_ms, &c);
	print_counters(&c, &f, o.json, (double)(clock_mono_ns() - t0) / 1e9);
	free(o.classes_buf);
	if (status != EXIT_ACKED)
		return status;
	if (c.dropped)
		return EXIT_DROPPED;
	if (c.spooled_now || c.acked < c.submitted + c.replayed)
		return EXIT_KEPT;
	return f.bad ? EXIT_BADLINES : EXIT_ACKED;
}
