// SPDX-License-Identifier: MIT
/* config.c - the agent's settings, from flags and from a config file; see config.h. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/conffile.h"
#include "core/flow.h"
#include "core/log.h"
#include "core/merge.h"
#include "core/number.h"

/* Bounds shared by the checks and the messages. */
#define SEC_MIN_NS 1000ULL	/* 1 us */
#define SEC_MAX_NS (1ULL << 42) /* about 73 minutes */
#define RING_MIN (4u << 10)
#define RING_MAX (1u << 30)

const struct config_setting config_settings[] = {
	{ "iface", 'i', CK_IFACES, "IF[,IF...]",
	  "Capture live on these interfaces (XDP ingress + TC egress)", 1 },
	{ "pcap", 'r', CK_PATH, "FILE",
	  "Replay a capture (pcap, pcapng, samples CSV; gz/xz; '-': standard input) through the "
	  "same path",
	  1 },
	{ "model", 'm', CK_PATH, "FILE",
	  "int8 model file (.fpcnn); default: the model built into the program. Its "
	  "resolution and window set the blocks'",
	  2 },
	{ "vote-ratio", 0x104, CK_FRACTION, "R",
	  "A flow is unknown when the runner-up class has "
	  "more than R x the top class's votes (default 0.7, as `flowpic classify`)",
	  2 },
	{ "min-confidence", 0x105, CK_FRACTION, "P",
	  "A flow is unknown when the top class's mean "
	  "probability is below P (default: twice chance, as `flowpic classify`)",
	  2 },
	{ "min-block-packets", 0x106, CK_UINT, "N",
	  "Blocks of fewer than N packets (both "
	  "directions) do not vote; a flow with no voting block is unknown (sparse) (default: "
	  "the classifier's, as `flowpic classify --min-block-packets`)",
	  2 },
	{ "reject-prob", 0x107, CK_FRACTION, "P",
	  "A block whose top probability is below P is "
	  "'other', none of the classes (default: off)",
	  2 },
	{ "reject-energy", 0x108, CK_REAL, "E",
	  "A block whose energy (-logsumexp of its logits) "
	  "is above E is 'other' (default: off)",
	  2 },
	{ "weight-packets", 0x109, CK_BOOL, NULL,
	  "A voting block counts its packets, not 1 "
	  "(to measure; default false)",
	  2 },
	{ "idle-timeout", 0x100, CK_SECONDS, "SEC",
	  "A flow ends after this much silence "
	  "(default 120)",
	  2 },
	{ "max-flows", 0x102, CK_UINT, "N",
	  "Flows tracked at once (default 65536); packets of "
	  "further flows are counted as flow_table_full",
	  2 },
	{ "max-cells", 0x103, CK_UINT, "N",
	  "Picture cells held by open blocks (default "
	  "4194304, 4 bytes each); samples beyond are counted as cells_refused",
	  2 },
	{ "design", 0x110, CK_DESIGN, "records|batches",
	  "What the BPF programs send: one "
	  "compact record per packet, or per-flow batches (default: the capture library's)",
	  3 },
	{ "xdp-generic", 0x111, CK_BOOL, NULL,
	  "Force generic (skb) XDP even where the driver "
	  "has native XDP",
	  3 },
	{ "ring-bytes", 0x112, CK_UINT, "N",
	  "Ring buffer size per CPU in bytes, a power of two "
	  "(default: the capture library's)",
	  3 },
	{ "bpf-flows", 0x113, CK_UINT, "N",
	  "Flows the BPF flow map holds (default: the capture "
	  "library's)",
	  3 },
	{ "batch-age", 0x114, CK_SECONDS, "SEC",
	  "Per-flow batches are sent at latest this old "
	  "(batches design; default: the capture library's)",
	  3 },
	{ "sweep", 0x115, CK_SECONDS, "SEC",
	  "Deadline sweep period: idle flows end on time "
	  "even when no packet arrives (default 1)",
	  3 },
	{ "sweep-lag", 0x116, CK_SECONDS, "SEC",
	  "The sweep stays this far behind the clock, so "
	  "packets still in the rings or batches are not late (default 2)",
	  3 },
	{ "merge-max", 0x118, CK_UINT, "N",
	  "Records the time-ordered merge of the rings holds "
	  "(default 524288, 92 bytes each: 0.4 s at 1.3 Mpps); beyond, the earliest is "
	  "handed out early and counted as capture_merge_forced",
	  3 },
	{ "no-merge", 0x119, CK_BOOL, NULL,
	  "Hand packets to the flow table in ring order, not "
	  "time order (benchmarks and tests only: pictures then differ from a capture's)",
	  3 },
	{ "keep-caps", 0x117, CK_BOOL, NULL,
	  "Keep all capabilities (and root) after attaching (default: "
	  "drop them all and switch to --user)",
	  3 },
	{ "user", 0x11a, CK_STRING, "NAME",
	  "After attaching, run as this user (default: flowpic if it exists, else nobody; "
	  "no switch when not started as root or with --keep-caps)",
	  3 },
	{ "counters-file", 0x120, CK_PATH, "FILE",
	  "Append the counters line here instead of "
	  "stderr",
	  4 },
	{ "counters-every", 0x121, CK_SECONDS, "SEC",
	  "Also write the counters this often "
	  "(default: only on SIGUSR1 and at exit)",
	  4 },
	{ "samples-out", 0x124, CK_PATH, "FILE",
	  "Also write every packet the flow table "
	  "receives as a samples CSV (docs/csv.md; sizes and times only, no payload): "
	  "`flowpic classify FILE` then gives these verdicts again",
	  4 },
	{ "flow-verdicts-only", 0x122, CK_BOOL, NULL,
	  "Print flow verdicts only, not one line "
	  "per block",
	  4 },
	{ "metrics-listen", 0x126, CK_STRING, "HOST:PORT",
	  "Serve Prometheus metrics (the counters and histograms) on GET /metrics "
	  "here; :PORT is 127.0.0.1 (default: off; docs/deploy.md)",
	  4 },
	{ "log-level", 0x123, CK_LEVEL, "LEVEL",
	  "error, warn (default), info or debug; -q is "
	  "error, -v info",
	  4 },
	{ "log-format", 0x125, CK_LOG_FORMAT, "text|json",
	  "stderr lines as text (default) or JSON objects with a timestamp (also "
	  "FLOWPIC_LOG_FORMAT)",
	  4 },
	{ "collector", 0x130, CK_STRING, "HOST:PORT",
	  "Also stream the verdicts to this collector "
	  "(gRPC, proto/flowpic.proto; cleartext HTTP/2 unless a TLS setting is given); "
	  "a comma list of collectors sharing a store: a failed connection moves to the next",
	  6 },
	{ "collector-tls", 0x131, CK_BOOL, NULL, "TLS to the collector", 6 },
	{ "collector-ca", 0x132, CK_PATH, "FILE",
	  "CA certificate(s) to verify the collector "
	  "(default: the system's); implies TLS",
	  6 },
	{ "collector-cert", 0x133, CK_PATH, "FILE", "This agent's certificate, for mutual TLS", 6 },
	{ "collector-key", 0x134, CK_PATH, "FILE", "The key of --collector-cert", 6 },
	{ "collector-server-name", 0x135, CK_STRING, "NAME",
	  "Name to verify in the collector's "
	  "certificate (default: HOST); implies TLS",
	  6 },
	{ "collector-token-file", 0x136, CK_PATH, "FILE",
	  "Access token (first line of FILE), "
	  "sent as authorization: Bearer",
	  6 },
	{ "agent-id", 0x137, CK_STRING, "ID",
	  "This agent's id at the collector (default: the "
	  "host name)",
	  6 },
	{ "spool-dir", 0x138, CK_PATH, "DIR",
	  "Keep verdicts here while the collector is away "
	  "(default: none; what does not fit in memory is dropped and counted)",
	  6 },
	{ "spool-max-bytes", 0x139, CK_UINT, "N", "Spool size limit (default 1073741824)", 6 },
	{ "collector-wait", 0x13a, CK_SECONDS, "SEC",
	  "At exit, wait this long for the collector "
	  "to acknowledge; the rest goes to the spool (default 5)",
	  6 },
	{ "send-pictures", 0x13b, CK_BOOL, NULL,
	  "Each block verdict also carries the FlowPic the model judged (Verdict.cells, "
	  "about 2 bytes per non-zero pixel; docs/stream.md, \"Pictures\"; default false)",
	  6 },
	{ 0 }
};

#define TEXT(n, field) \
	{ \
		n, offsetof(struct agent_config, field), sizeof(((struct agent_config *)0)->field) \
	}
/* Text and file settings: where each is stored. */
static const struct config_text texts[] = { TEXT("pcap", pcap),
					    TEXT("model", model),
					    TEXT("counters-file", counters_file),
					    TEXT("samples-out", samples_out),
					    TEXT("metrics-listen", metrics_listen),
					    TEXT("collector", collector),
					    TEXT("collector-ca", collector_ca),
					    TEXT("collector-cert", collector_cert),
					    TEXT("collector-key", collector_key),
					    TEXT("collector-server-name", collector_server_name),
					    TEXT("collector-token-file", collector_token_file),
					    TEXT("agent-id", agent_id),
					    TEXT("spool-dir", spool_dir),
					    TEXT("user", user),
					    { 0 } };

void config_default(struct agent_config *c)
{
	struct flow_config fc;

	memset(c, 0, sizeof(*c));
	flow_config_default(&fc);
	c->idle_timeout_ns = fc.idle_timeout_ns;
	c->max_flows = fc.max_flows;
	c->max_cells = fc.max_cells;
	c->sweep_ns = NS_PER_SEC;
	c->lag_ns = 2 * NS_PER_SEC;
	c->collector_wait_ns = 5 * NS_PER_SEC;
	c->vote_ratio = -1;
	c->min_confidence = -1;
	c->min_block_packets = -1;
	c->reject_prob = -1;
	c->reject_energy = NAN;
}

const struct config_setting *config_find(const char *name)
{
	const struct config_setting *s;

	for (s = config_settings; s->name; s++)
		if (conffile_name_eq(s->name, name))
			return s;
	return NULL;
}

const struct config_setting *config_find_key(int key)
{
	const struct config_setting *s;

	for (s = config_settings; s->name; s++)
		if (s->key == key)
			return s;
	return NULL;
}

/* One line into err (log_errbuf), and the -EINVAL the setters return. */
#define fail(err, errlen, ...) log_errbuf_ret(-EINVAL, err, errlen, __VA_ARGS__)

/* ns as the shortest decimal seconds: 1000 -> "0.000001", 2e9 -> "2". */
static const char *fmt_seconds(uint64_t ns, char *buf, size_t len)
{
	size_t n;

	snprintf(buf, len, "%" PRIu64 ".%09" PRIu64, ns / NS_PER_SEC, ns % NS_PER_SEC);
	n = strlen(buf);
	while (buf[n - 1] == '0')
		buf[--n] = '\0';
	if (buf[n - 1] == '.')
		buf[n - 1] = '\0';
	return buf;
}

static int set_ifaces(struct agent_config *c, const char *name, const char *v, char *err,
		      size_t errlen)
{
	const char *p = v;

	c->n_ifaces = 0;
	while (*p) {
		size_t n = strcspn(p, ",");

		if (n == 0)
			return fail(err, errlen, "%s '%s': empty interface name", name, v);
		if (n >= IF_NAMESIZE)
			return fail(err, errlen,
				    "%s '%s': interface name longer than %d characters", name, v,
				    IF_NAMESIZE - 1);
		if (c->n_ifaces == AGENT_MAX_IFACES)
			return fail(err, errlen, "%s '%s': more than %d interfaces", name, v,
				    AGENT_MAX_IFACES);
		memcpy(c->ifaces[c->n_ifaces], p, n);
		c->ifaces[c->n_ifaces][n] = '\0';
		c->n_ifaces++;
		p += n;
		if (*p == ',' && *++p == '\0')
			return fail(err, errlen, "%s '%s': empty interface name", name, v);
	}
	if (c->n_ifaces == 0)
		return fail(err, errlen, "%s: give at least one interface name", name);
	return 0;
}

static int set_text(struct agent_config *c, const struct config_setting *s, const char *v,
		    char *err, size_t errlen)
{
	const char *what = s->kind == CK_PATH ? "file name" : "value";
	const struct config_text *t;
	size_t n = strlen(v);

	for (t = texts; t->name && strcmp(t->name, s->name); t++)
		;
	if (!t->name)
		return fail(err, errlen, "%s: no such text setting", s->name);
	if (n == 0)
		return fail(err, errlen, "%s: empty %s", s->name, what);
	if (n >= t->size)
		return fail(err, errlen, "%s: %s longer than %zu bytes", s->name, what,
			    t->size - 1);
	memcpy((char *)c + t->offset, v, n + 1);
	return 0;
}

/* The field a seconds setting goes to, with its range. */
static uint64_t *seconds_field(struct agent_config *c, const char *name, uint64_t *min)
{
	*min = SEC_MIN_NS;
	if (!strcmp(name, "idle-timeout"))
		return &c->idle_timeout_ns;
	if (!strcmp(name, "batch-age"))
		return &c->batch_age_ns;
	if (!strcmp(name, "sweep")) {
		*min = NS_PER_SEC / 1000;
		return &c->sweep_ns;
	}
	*min = 0;
	if (!strcmp(name, "collector-wait"))
		return &c->collector_wait_ns;
	if (!strcmp(name, "sweep-lag"))
		return &c->lag_ns;
	if (!strcmp(name, "counters-every"))
		return &c->counters_every_ns;
	return NULL;
}

static int set_uint(struct agent_config *c, const char *name, const char *v, char *err,
		    size_t errlen)
{
	uint64_t x, min, max;
	uint32_t *dst;

	if (!strcmp(name, "spool-max-bytes")) {
		if (number_parse_u64(v, 1 << 20, 1ULL << 50, &c->spool_max_bytes))
			return fail(err, errlen,
				    "%s '%s': give a whole number of bytes from 1048576 "
				    "to 1125899906842624",
				    name, v);
		return 0;
	}
	if (!strcmp(name, "min-block-packets")) {
		if (number_parse_u64(v, 0, UINT32_MAX, &x))
			return fail(err, errlen, "%s '%s': give a whole number from 0 to %u", name,
				    v, UINT32_MAX);
		c->min_block_packets = (int64_t)x;
		return 0;
	}
	if (!strcmp(name, "max-flows")) {
		dst = &c->max_flows, min = 1, max = 1u << 30;
	} else if (!strcmp(name, "max-cells")) {
		dst = &c->max_cells, min = CELL_CHUNK_CELLS, max = 1u << 31;
	} else if (!strcmp(name, "ring-bytes")) {
		dst = &c->ring_bytes, min = RING_MIN, max = RING_MAX;
	} else if (!strcmp(name, "bpf-flows")) {
		dst = &c->bpf_flows, min = 1, max = 1u << 24;
	} else if (!strcmp(name, "merge-max")) {
		dst = &c->merge_max, min = 1, max = MERGE_MAX_MAX_HELD;
	} else {
		return fail(err, errlen, "%s: no such number setting", name);
	}
	if (number_parse_u64(v, min, max, &x))
		return fail(err, errlen,
			    "%s '%s': give a whole number from %" PRIu64 " to %" PRIu64, name, v,
			    min, max);
	if (!strcmp(name, "ring-bytes") && (x & (x - 1)))
		return fail(err, errlen, "%s '%s': give a power of two (e.g. 4194304)", name, v);
	*dst = (uint32_t)x;
	return 0;
}

int config_set(struct agent_config *c, const struct config_setting *s, const char *value, char *err,
	       size_t errlen)
{
	const char *v = value ? value : "true", *p;
	uint64_t ns, min, *dst;
	bool b;
	int rc;

	_Static_assert(sizeof(config_settings) / sizeof(config_settings[0]) <= 64,
		       "'given' holds one bit per setting");
	if (s->kind != CK_BOOL && !value)
		return fail(err, errlen, "%s: give a value", s->name);
	/* No setting takes one, and echoed back it would break the one-line
	 * message (a newline) or drive the terminal (an escape). */
	for (p = v; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return fail(err, errlen, "%s: control character 0x%02x in the value",
				    s->name, (unsigned)(unsigned char)*p);
	switch (s->kind) {
	case CK_IFACES:
		rc = set_ifaces(c, s->name, v, err, errlen);
		if (rc < 0)
			return rc;
		break;
	case CK_PATH:
	case CK_STRING:
		rc = set_text(c, s, v, err, errlen);
		if (rc < 0)
			return rc;
		break;
	case CK_SECONDS:
		dst = seconds_field(c, s->name, &min);
		if (!dst)
			return fail(err, errlen, "%s: no such seconds setting", s->name);
		if (number_parse_seconds(v, &ns) || ns < min || ns > SEC_MAX_NS) {
			char lo[32];

			return fail(err, errlen, "%s '%s': give seconds from %s to %llu", s->name,
				    v, fmt_seconds(min, lo, sizeof(lo)), SEC_MAX_NS / NS_PER_SEC);
		}
		*dst = ns;
		break;
	case CK_UINT:
		rc = set_uint(c, s->name, v, err, errlen);
		if (rc < 0)
			return rc;
		break;
	case CK_BOOL:
		if (conffile_bool(v, &b) < 0)
			return fail(err, errlen, "%s '%s': give true or false", s->name, v);
		if (!strcmp(s->name, "xdp-generic"))
			c->xdp_generic = b;
		else if (!strcmp(s->name, "keep-caps"))
			c->keep_caps = b;
		else if (!strcmp(s->name, "no-merge"))
			c->no_merge = b;
		else if (!strcmp(s->name, "weight-packets"))
			c->weight_packets = b;
		else if (!strcmp(s->name, "flow-verdicts-only"))
			c->no_block_verdicts = b;
		else if (!strcmp(s->name, "collector-tls"))
			c->collector_tls = b;
		else if (!strcmp(s->name, "send-pictures"))
			c->send_pictures = b;
		else
			return fail(err, errlen, "%s: no such switch", s->name);
		break;
	case CK_DESIGN:
		if (!strcmp(v, "records"))
			c->design = AGENT_DESIGN_RECORDS;
		else if (!strcmp(v, "batches"))
			c->design = AGENT_DESIGN_BATCHES;
		else
			return fail(err, errlen, "%s '%s': give records or batches", s->name, v);
		break;
	case CK_FRACTION: {
		char *end;
		double d;

		errno = 0;
		d = strtod(v, &end);
		if (errno || end == v || *end || !(d >= 0 && d <= 1))
			return fail(err, errlen, "%s '%s': give a number from 0 to 1", s->name, v);
		if (!strcmp(s->name, "vote-ratio"))
			c->vote_ratio = (float)d;
		else if (!strcmp(s->name, "reject-prob"))
			c->reject_prob = (float)d;
		else
			c->min_confidence = (float)d;
		break;
	}
	case CK_REAL: {
		char *end;
		double d;

		errno = 0;
		d = strtod(v, &end);
		if (errno || end == v || *end || !isfinite(d))
			return fail(err, errlen, "%s '%s': give a number", s->name, v);
		c->reject_energy = (float)d;
		break;
	}
	case CK_LOG_FORMAT: {
		enum log_format f;

		if (log_parse_format(v, &f) < 0)
			return fail(err, errlen, "%s '%s': give text or json", s->name, v);
		c->log_format = (int)f;
		break;
	}
	case CK_LEVEL:
		if (!strcmp(v, "error"))
			c->verbosity = -1;
		else if (!strcmp(v, "warn"))
			c->verbosity = 0;
		else if (!strcmp(v, "info"))
			c->verbosity = 1;
		else if (!strcmp(v, "debug"))
			c->verbosity = 2;
		else
			return fail(err, errlen, "%s '%s': give error, warn, info or debug",
				    s->name, v);
		break;
	}
	c->given |= 1ULL << (s - config_settings);
	return 0;
}

struct load_ctx {
	struct agent_config *c;
	void (*report)(void *ctx, const char *line);
	void *ctx;
};

static const char *lookup_cb(void *ctx, const char *key)
{
	const struct config_setting *s = config_find(key);

	(void)ctx;
	return s ? s->name : NULL;
}

static int set_cb(void *ctx, const char *name, const char *value, const char *where, char *err,
		  size_t errlen)
{
	struct load_ctx *l = ctx;

	(void)where;
	return config_set(l->c, config_find(name), value, err, errlen);
}

static void report_cb(void *ctx, const char *line)
{
	struct load_ctx *l = ctx;

	l->report(l->ctx, line);
}

static const struct conffile_ops agent_ops = { "flowpic-agent", lookup_cb, set_cb, report_cb };

int config_load(struct agent_config *c, const char *path,
		void (*report)(void *ctx, const char *line), void *ctx)
{
	struct load_ctx l = { c, report, ctx };

	return conffile_load(path, &agent_ops, &l);
}

int config_env(struct agent_config *c, char **envp, void (*report)(void *ctx, const char *line),
	       void *ctx)
{
	struct load_ctx l = { c, report, ctx };

	return conffile_env(envp, &agent_ops, &l);
}

int config_check(const struct agent_config *c, char *err, size_t errlen)
{
	if (c->n_ifaces && c->pcap[0])
		return fail(err, errlen, "give either --iface (live) or --pcap (replay), not both");
	if (!c->n_ifaces && !c->pcap[0])
		return fail(err, errlen,
			    "give --iface IF to capture live or --pcap FILE to replay "
			    "(see --help)");
	if (!c->collector[0] && (c->collector_tls || c->collector_ca[0] || c->collector_cert[0] ||
				 c->collector_key[0] || c->collector_server_name[0] ||
				 c->collector_token_file[0] || c->spool_dir[0] || c->send_pictures))
		return fail(err, errlen, "collector settings without --collector HOST:PORT");
	if (!c->collector_cert[0] != !c->collector_key[0])
		return fail(err, errlen,
			    "give both --collector-cert and --collector-key (mutual TLS), "
			    "or neither");
	return 0;
}

static void print_seconds(FILE *out, const char *name, uint64_t ns)
{
	char buf[32];

	fprintf(out, "%s = %s\n", name, fmt_seconds(ns, buf, sizeof(buf)));
}

void config_print(FILE *out, const struct agent_config *c)
{
	static const char *const levels[] = { "error", "warn", "info", "debug" };
	unsigned i;

	fputs("# flowpic-agent effective settings\n", out);
	if (c->n_ifaces) {
		fputs("iface = ", out);
		for (i = 0; i < c->n_ifaces; i++)
			fprintf(out, "%s%s", i ? "," : "", c->ifaces[i]);
		fputc('\n', out);
	}
	if (c->pcap[0])
		fprintf(out, "pcap = \"%s\"\n", c->pcap);
	if (c->model[0])
		fprintf(out, "model = \"%s\"\n", c->model);
	if (c->vote_ratio >= 0)
		fprintf(out, "vote-ratio = %.7g\n", (double)c->vote_ratio);
	if (c->min_confidence >= 0)
		fprintf(out, "min-confidence = %.7g\n", (double)c->min_confidence);
	if (c->min_block_packets >= 0)
		fprintf(out, "min-block-packets = %" PRId64 "\n", c->min_block_packets);
	if (c->reject_prob >= 0)
		fprintf(out, "reject-prob = %.7g\n", (double)c->reject_prob);
	if (!isnan(c->reject_energy))
		fprintf(out, "reject-energy = %.7g\n", (double)c->reject_energy);
	if (c->weight_packets)
		fputs("weight-packets = true\n", out);
	print_seconds(out, "idle-timeout", c->idle_timeout_ns);
	fprintf(out, "max-flows = %u\nmax-cells = %u\n", c->max_flows, c->max_cells);
	if (c->design)
		fprintf(out, "design = %s\n",
			c->design == AGENT_DESIGN_RECORDS ? "records" : "batches");
	fprintf(out, "xdp-generic = %s\n", c->xdp_generic ? "true" : "false");
	if (c->ring_bytes)
		fprintf(out, "ring-bytes = %u\n", c->ring_bytes);
	if (c->bpf_flows)
		fprintf(out, "bpf-flows = %u\n", c->bpf_flows);
	if (c->batch_age_ns)
		print_seconds(out, "batch-age", c->batch_age_ns);
	print_seconds(out, "sweep", c->sweep_ns);
	print_seconds(out, "sweep-lag", c->lag_ns);
	if (c->merge_max)
		fprintf(out, "merge-max = %u\n", c->merge_max);
	if (c->no_merge)
		fputs("no-merge = true\n", out);
	fprintf(out, "keep-caps = %s\n", c->keep_caps ? "true" : "false");
	if (c->user[0])
		fprintf(out, "user = \"%s\"\n", c->user);
	if (c->counters_file[0])
		fprintf(out, "counters-file = \"%s\"\n", c->counters_file);
	if (c->samples_out[0])
		fprintf(out, "samples-out = \"%s\"\n", c->samples_out);
	if (c->counters_every_ns)
		print_seconds(out, "counters-every", c->counters_every_ns);
	if (c->metrics_listen[0])
		fprintf(out, "metrics-listen = \"%s\"\n", c->metrics_listen);
	fprintf(out, "flow-verdicts-only = %s\n", c->no_block_verdicts ? "true" : "false");
	fprintf(out, "log-level = %s\n", levels[c->verbosity + 1]);
	fprintf(out, "log-format = %s\n", c->log_format == LOG_FORMAT_JSON ? "json" : "text");
	if (c->collector[0]) {
		const struct config_text *t;

		for (t = texts; t->name; t++)
			if (!strncmp(t->name, "collector", 9) || !strcmp(t->name, "agent-id") ||
			    !strcmp(t->name, "spool-dir"))
				if (((const char *)c + t->offset)[0])
					fprintf(out, "%s = \"%s\"\n", t->name,
						(const char *)c + t->offset);
		fprintf(out, "collector-tls = %s\n", c->collector_tls ? "true" : "false");
		if (c->spool_max_bytes)
			fprintf(out, "spool-max-bytes = %" PRIu64 "\n", c->spool_max_bytes);
		print_seconds(out, "collector-wait", c->collector_wait_ns);
		fprintf(out, "send-pictures = %s\n", c->send_pictures ? "true" : "false");
	}
}
