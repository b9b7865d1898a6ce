// SPDX-License-Identifier: MIT
/*
 * cmd_classify.c - `flowpic classify FILE...`: a verdict per flow (and per
 * block with --blocks), then a summary per file and per class.
 *
 * The files go through classifier_file() with one worker thread: the file
 * is read and its flows tracked in this thread while the blocks are
 * classified in the other (--workers 0: all in one).  The tests check that
 * this gives, byte for byte, what the inline API gives.
 */
#include <argp.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/classify.h"
#include "cmds.h"
#include "core/cnn.h"
#include "core/flow_json.h"
#include "core/log.h"
#include "core/summary_json.h"
#include "opts.h"
#include "output.h"

enum out_format { OUT_TABLE, OUT_JSON, OUT_CSV };

struct classify_args {
	struct common_opts common;
	struct classifier_config ccfg;
	char **files;
	int nfiles;
	enum out_format fmt;
	bool blocks;		  /* print block verdicts too */
	bool wide;		  /* the table: every column, whole addresses */
	const char *class_filter; /* comma-separated class names, "unknown" too */
	uint64_t min_packets;
	bool early_only;
	/* while running */
	struct classifier *c;
	const char *file;
	bool header_done;
	bool progress_shown;
	struct timespec progress_last;
	uint32_t show_mask; /* bit per class, bit n_classes: unknown */
	uint64_t flows, shown;
	struct class_total total[CLASSIFY_MAX_CLASSES + 1]; /* per class, then unknown */
};

enum {
	OPT_CSV = 0x400,
	OPT_CLASS,
	OPT_MIN_PACKETS,
	OPT_BLOCKS,
	OPT_VOTE_RATIO,
	OPT_MIN_CONF,
	OPT_EARLY_ONLY,
	OPT_REF,
	OPT_CACHE,
	OPT_WORKERS,
	OPT_MIN_BLOCK,
	OPT_REJECT_PROB,
	OPT_REJECT_ENERGY,
	OPT_WEIGHT,
	OPT_WIDE,
};

static const struct argp_option classify_options[] = {
	{ "json", 'j', NULL, 0,
	  "JSON lines: a flow's fields as `flows --json` prints them, plus "
	  "class, confidence, probs, early, ...; then {\"summary\"} per file and "
	  "{\"classes\"} at the end",
	  2 },
	{ "csv", OPT_CSV, NULL, 0, "CSV: a header, then one row per flow (no summary)", 2 },
	{ "blocks", OPT_BLOCKS, NULL, 0, "Print each block's verdict too, before its flow's", 2 },
	{ "wide", OPT_WIDE, NULL, 0,
	  "The table with every column (bytes, start, votes, top class, reason) and whole "
	  "addresses; the default table fits 120 columns",
	  2 },
	{ NULL, 0, NULL, 0, "Filters (what is printed; the summary counts every flow):", 3 },
	{ "class", OPT_CLASS, "NAMES", 0,
	  "Only flows whose verdict is one of these "
	  "(comma-separated; 'unknown' too)",
	  3 },
	{ "min-packets", OPT_MIN_PACKETS, "N", 0,
	  "Only flows with at least N packets (a filter; "
	  "--min-block-packets sets the evidence a verdict needs)",
	  3 },
	{ "early", OPT_EARLY_ONLY, NULL, 0, "Only early verdicts (flows shorter than a block)", 3 },
	{ NULL, 0, NULL, 0, "Model and verdict rule:", 4 },
	{ "vote-ratio", OPT_VOTE_RATIO, "R", 0,
	  "Unknown when the runner-up class has more than "
	  "R x the votes of the top class (default 0.7, the seed's)",
	  4 },
	{ "min-confidence", OPT_MIN_CONF, "P", 0,
	  "Unknown when the top class's mean probability "
	  "is below P (default 2 / classes: 0.4 for 5)",
	  4 },
	{ "min-block-packets", OPT_MIN_BLOCK, "N", 0,
	  "Blocks of fewer than N packets (both "
	  "directions) do not vote (reason 'sparse'); a flow with no voting block is unknown "
	  "(sparse) (default 20; 0: every block votes)",
	  4 },
	{ "reject-prob", OPT_REJECT_PROB, "P", 0,
	  "A block whose top probability is below P is "
	  "'other': none of the classes (default 0: off)",
	  4 },
	{ "reject-energy", OPT_REJECT_ENERGY, "E", 0,
	  "A block whose energy (-logsumexp of its "
	  "logits) is above E is 'other' (default: off)",
	  4 },
	{ "weight-packets", OPT_WEIGHT, NULL, 0,
	  "A voting block counts its packets instead of 1 "
	  "(to measure; off by default)",
	  4 },
	{ "reference", OPT_REF, NULL, 0,
	  "Reference C kernels instead of AVX2 (same results, slower)", 4 },
	{ "cache", OPT_CACHE, "N", 0,
	  "Keep the verdicts of N small pictures (default 4096; 0: "
	  "run the model on every block; same results)",
	  4 },
	{ "workers", OPT_WORKERS, "N", 0,
	  "1 (default): classify in a second thread while the "
	  "file is read; 0: in one thread (same results)",
	  4 },
	{ 0 }
};

/* A number in [0, 1]; 0, or -EINVAL. */
static int parse_fraction(const char *s, float *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0 && v <= 1))
		return -EINVAL;
	*out = (float)v;
	return 0;
}

/* Any finite number (energies are negative as often as not), or "off";
 * 0, or -EINVAL. */
static int parse_energy(const char *s, float *out)
{
	char *end;
	double v;

	if (!strcmp(s, "off")) {
		*out = CLASSIFY_REJECT_ENERGY_OFF;
		return 0;
	}
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v))
		return -EINVAL;
	*out = (float)v;
	return 0;
}

static error_t classify_parse(int key, char *arg, struct argp_state *state)
{
	struct classify_args *a = state->input;
	uint64_t v;

	switch (key) {
	case 'j':
		a->fmt = OUT_JSON;
		return 0;
	case OPT_CSV:
		a->fmt = OUT_CSV;
		return 0;
	case OPT_BLOCKS:
		a->blocks = true;
		return 0;
	case OPT_WIDE:
		a->wide = true;
		return 0;
	case OPT_CLASS:
		a->class_filter = arg;
		return 0;
	case OPT_MIN_PACKETS:
		if (parse_u64(arg, 0, UINT64_MAX, &a->min_packets))
			argp_error(state, "--min-packets '%s': give a whole number", arg);
		return 0;
	case OPT_EARLY_ONLY:
		a->early_only = true;
		return 0;
	case OPT_VOTE_RATIO:
		if (parse_fraction(arg, &a->ccfg.vote_ratio))
			argp_error(state, "--vote-ratio '%s': give a number from 0 to 1", arg);
		return 0;
	case OPT_MIN_CONF:
		if (parse_fraction(arg, &a->ccfg.min_confidence))
			argp_error(state, "--min-confidence '%s': give a number from 0 to 1", arg);
		return 0;
	case OPT_MIN_BLOCK:
		if (parse_u64(arg, 0, UINT32_MAX, &v))
			argp_error(state, "--min-block-packets '%s': give a whole number", arg);
		a->ccfg.min_block_packets = (uint32_t)v;
		return 0;
	case OPT_REJECT_PROB:
		if (parse_fraction(arg, &a->ccfg.reject_prob))
			argp_error(state, "--reject-prob '%s': give a number from 0 to 1", arg);
		return 0;
	case OPT_REJECT_ENERGY:
		if (parse_energy(arg, &a->ccfg.reject_energy))
			argp_error(state, "--reject-energy '%s': give a number, or 'off'", arg);
		return 0;
	case OPT_WEIGHT:
		a->ccfg.weight_packets = true;
		return 0;
	case OPT_REF:
		a->ccfg.cnn_flags |= CNN_REF;
		return 0;
	case OPT_WORKERS:
		if (parse_u64(arg, 0, 1, &v))
			argp_error(state, "--workers '%s': give 0 or 1", arg);
		a->ccfg.workers = (uint32_t)v;
		return 0;
	case OPT_CACHE:
		if (parse_u64(arg, 0, 1u << 24, &v))
			argp_error(state, "--cache '%s': give a number of entries, 0 to 16777216",
				   arg);
		a->ccfg.cache_entries = (uint32_t)v;
		return 0;
	}
	return files_parse(key, state, &a->common, &a->files, &a->nfiles);
}

static const char classify_doc[] =
	"Classify every flow of captures (pcap, pcapng; gzip or xz compressed too) or samples "
	"CSV files ('-': standard input) with the int8 CNN: each block of a flow gets a verdict, and the blocks are "
	"combined into the flow's verdict, or 'unknown' (with a reason) when the flow is too "
	"sparse to judge, is none of the classes, its blocks disagree or the confidence is "
	"low. One line per flow in the order flows end, then a summary per file and per "
	"class."
	"\v"
	"A block of fewer than --min-block-packets packets does not vote (reason 'sparse'); "
	"a block rejected by --reject-prob or --reject-energy, or of the model's class "
	"'other', votes for no class (reason 'other'). The flow's verdict is voted by its "
	"complete blocks that are not sparse; a flow with none (shorter than one block) is "
	"voted by its partial blocks and marked EARLY ('early' in JSON). It is unknown when "
	"no block votes ('sparse'), when more than half the votes are 'other' ('other'), when "
	"the runner-up class got more than --vote-ratio of the top class's votes "
	"('disagree'), or when the top class's mean probability is below --min-confidence "
	"('low_confidence'). docs/classify.md has the details.\n\n"
	"The model (embedded default, or --model) sets the resolution and the window: "
	"--res or --window with another value is an error, whatever the value. The table "
	"fits 120 columns (a long IPv6 address loses its middle); --wide prints every "
	"column. '-' reads standard input (a pipe too: read once, never seeked).\n\n"
	"Examples:\n"
	"  flowpic classify data/lab-mix.pcap.xz\n"
	"  flowpic classify --json cap.pcapng.gz | jq 'select(.class == \"video\")'\n"
	"  flowpic classify --class voip,chat --min-packets 100 capture.pcap\n"
	"  flowpic classify --csv --model model.fpcnn samples.csv > verdicts.csv\n"
	"  flowpic classify --json --blocks capture.pcap   # block verdicts too\n"
	"  flowpic classify --min-block-packets 50 --reject-prob 0.5 capture.pcap\n"
	"  xz -dc data/demo.pcap.xz | flowpic classify -\n"
	"  tcpdump -i eth0 -w - udp | flowpic classify --json -\n\n" EXIT_CODES_DOC;

/* ---- filters ---- */

/* --class into a->show_mask: 0, or -EINVAL (said on stderr). */
static int filter_parse(struct classify_args *a)
{
	const struct model *m = classifier_model(a->c);
	char buf[512], *tok, *save;
	uint32_t i;

	if (!a->class_filter) {
		a->show_mask = UINT32_MAX;
		return 0;
	}
	snprintf(buf, sizeof(buf), "%s", a->class_filter);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, "unknown")) {
			a->show_mask |= 1u << m->n_classes;
			continue;
		}
		for (i = 0; i < m->n_classes; i++)
			if (!strcmp(tok, m->classes[i]))
				break;
		if (i == m->n_classes) {
			fprintf(stderr,
				"flowpic classify: --class '%s': not a class of the model "
				"(",
				tok);
			for (i = 0; i < m->n_classes; i++)
				fprintf(stderr, "%s, ", m->classes[i]);
			fprintf(stderr, "unknown)\n");
			return -EINVAL;
		}
		a->show_mask |= 1u << i;
	}
	return 0;
}

static uint32_t class_slot(const struct classify_args *a, uint32_t cls)
{
	uint32_t n = classifier_model(a->c)->n_classes;

	return cls < n ? cls : n;
}

static bool shown(const struct classify_args *a, const struct flow *f, const struct flow_verdict *v)
{
	if (!(a->show_mask & (1u << class_slot(a, v->cls))))
		return false;
	if (f->packets[0] + f->packets[1] < a->min_packets)
		return false;
	return !a->early_only || v->early;
}

/* ---- output ---- */

/*
 * The table fits 120 columns: endpoints in ENDPOINT_W columns (every IPv4
 * one; a longer IPv6 address loses its middle) and a short note.  --wide
 * prints every address whole and every verdict field.
 */
#define ENDPOINT_W 23

/* "addr:port", "[addr]:port" for IPv6; at most w columns (w 0: whole), the
 * address cut in its middle ("2001:db8:..:7334") when longer. */
static const char *endpoint(const uint8_t addr[16], uint16_t port, size_t w, char *buf, size_t len)
{
	char a[64], p[8];
	size_t n, keep, head;
	bool v6 = !pkt_addr_is_v4(addr);

	pkt_addr_str(addr, a, sizeof(a));
	snprintf(p, sizeof(p), ":%u", port);
	n = strlen(a) + strlen(p) + (v6 ? 2 : 0);
	if (w && n > w && v6) {
		/* Room for the address: w less brackets, port and "..". */
		keep = w - strlen(p) - 2 - 2;
		head = (keep + 1) / 2;
		snprintf(buf, len, "[%.*s..%s]%s", (int)head, a, a + strlen(a) - (keep - head), p);
		return buf;
	}
	snprintf(buf, len, "%s%s%s%s", v6 ? "[" : "", a, v6 ? "]" : "", p);
	return buf;
}

static void table_header(FILE *out, bool wide)
{
	if (wide)
		fprintf(out,
			"%6s %-5s %-47s %-47s %8s %11s %-27s %9s %6s %6s %6s  %-13s %-13s %5s  %-14s %s\n",
			"ID", "PROTO", "SRC", "DST", "PACKETS", "BYTES", "START", "DURATION",
			"BLOCKS", "VOTING", "SPARSE", "CLASS", "TOP", "CONF", "REASON", "NOTE");
	else
		fprintf(out, "%6s %-5s %-*s %-*s %8s %8s %-13s %4s  %s\n", "ID", "PROTO",
			ENDPOINT_W, "SRC", ENDPOINT_W, "DST", "PACKETS", "DURATION", "CLASS",
			"CONF", "NOTE");
}

static void table_row(FILE *out, const struct classify_args *a, const struct flow *f,
		      const struct flow_verdict *v)
{
	char src[80], dst[80], note[64], t[40];
	size_t w = a->wide ? 0 : ENDPOINT_W;
	double dur = (double)(f->last_ns - f->first_ns) / 1e9;

	endpoint(f->key.a, f->key.port_a, w, src, sizeof(src));
	endpoint(f->key.b, f->key.port_b, w, dst, sizeof(dst));
	if (a->wide) {
		/* The reason, then the early note: no trailing blanks. */
		snprintf(note, sizeof(note), v->early ? "%-14s EARLY: %u partial block%s" : "%s",
			 classify_reason_name(v->reason), v->blocks_voting,
			 v->blocks_voting == 1 ? "" : "s");
		fprintf(out,
			"%6" PRIu64 " %-5s %-47s %-47s %8" PRIu64 " %11" PRIu64
			" %-27s %9.3f %6u %6u %6u  %-13s %-13s %5.2f  %s\n",
			f->id, flow_proto_name(f->key.proto), src, dst,
			f->packets[0] + f->packets[1], f->ip_bytes[0] + f->ip_bytes[1],
			fmt_time(f->first_ns, t, sizeof(t)), dur, v->blocks, v->blocks_voting,
			v->blocks_sparse, classifier_class_name(a->c, v->cls),
			classifier_class_name(a->c, v->top), (double)v->confidence, note);
		return;
	}
	/* The note: the unknown reason, and whether the verdict is early. */
	snprintf(note, sizeof(note), "%s%s%s",
		 v->reason != CLASSIFY_OK ? classify_reason_name(v->reason) : "",
		 v->reason != CLASSIFY_OK && v->early ? ", " : "", v->early ? "early" : "");
	fprintf(out, "%6" PRIu64 " %-5s %-*s %-*s %8" PRIu64 " %8.1f %-13s %4.2f%s%s\n", f->id,
		flow_proto_name(f->key.proto), ENDPOINT_W, src, ENDPOINT_W, dst,
		f->packets[0] + f->packets[1], dur, classifier_class_name(a->c, v->cls),
		(double)v->confidence, note[0] ? "  " : "", note);
}

static void csv_field(FILE *out, const char *s)
{
	if (!strpbrk(s, ",\"\r\n")) {
		fputs(s, out);
		return;
	}
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', out);
		fputc(*s, out);
	}
	fputc('"', out);
}

static void csv_header(FILE *out, const struct classify_args *a)
{
	const struct model *m = classifier_model(a->c);
	uint32_t i;

	fputs("file,flow_id,proto,src,sport,dst,dport,packets,bytes,start_ns,duration,blocks,class,"
	      "confidence,early,reason,blocks_voting",
	      out);
	for (i = 0; i < m->n_classes; i++) {
		fputs(",prob_", out);
		csv_field(out, m->classes[i]);
	}
	fputc('\n', out);
}

static void csv_row(FILE *out, const struct classify_args *a, const struct flow *f,
		    const struct flow_verdict *v)
{
	const struct model *m = classifier_model(a->c);
	char ab[64], bb[64];
	uint32_t i;

	csv_field(out, a->file);
	fprintf(out, ",%" PRIu64 ",%s,%s,%u,%s,%u,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%.9f,%u,",
		f->id, flow_proto_name(f->key.proto), pkt_addr_str(f->key.a, ab, sizeof(ab)),
		f->key.port_a, pkt_addr_str(f->key.b, bb, sizeof(bb)), f->key.port_b,
		f->packets[0] + f->packets[1], f->ip_bytes[0] + f->ip_bytes[1], f->first_ns,
		(double)(f->last_ns - f->first_ns) / 1e9, v->blocks);
	csv_field(out, classifier_class_name(a->c, v->cls));
	fprintf(out, ",%.4f,%d,%s,%u", (double)v->confidence, v->early,
		classify_reason_name(v->reason), v->blocks_voting);
	for (i = 0; i < m->n_classes; i++)
		fprintf(out, ",%.4f", (double)v->prob[i]);
	fputc('\n', out);
}

/* ---- verdicts (called in the worker thread) ---- */

static void on_block(void *ctx, const struct classifier *c, const struct flow *f,
		     const struct block_verdict *v)
{
	struct classify_args *a = ctx;
	char t[40];

	if (!a->blocks || f->packets[0] + f->packets[1] < a->min_packets)
		return;
	if (a->fmt == OUT_JSON)
		block_verdict_json_line(stdout, c, v, a->nfiles > 1 ? a->file : NULL);
	else if (a->fmt == OUT_TABLE)
		printf("#   flow %" PRIu64 " block %" PRIu64 " %s: %s %.2f, %u packets%s%s%s\n",
		       f->id, v->index, fmt_time(v->start_ns, t, sizeof(t)),
		       classifier_class_name(c, v->cls), (double)v->confidence, v->samples,
		       v->reason != CLASSIFY_OK ? ", " : "",
		       v->reason != CLASSIFY_OK ? classify_reason_name(v->reason) : "",
		       v->early ? " (partial block: early)" : "");
}

static void on_flow(void *ctx, const struct classifier *c, const struct flow *f,
		    enum flow_end_reason why, const struct flow_verdict *v)
{
	struct classify_args *a = ctx;

	a->flows++;
	class_totals_add(a->total, c, f, v);
	if (!shown(a, f, v))
		return;
	a->shown++;
	switch (a->fmt) {
	case OUT_JSON:
		verdict_json_line(stdout, c, f, why, a->nfiles > 1 ? a->file : NULL, v);
		break;
	case OUT_CSV:
		csv_row(stdout, a, f, v);
		break;
	case OUT_TABLE:
		/* The header comes with the first flow: an unreadable file prints nothing. */
		if (!a->header_done)
			table_header(stdout, a->wide);
		a->header_done = true;
		table_row(stdout, a, f, v);
		break;
	}
}

/* Progress on a terminal (stderr only; the reading thread). */
static void on_progress(void *ctx, const struct source *s)
{
	struct classify_args *a = ctx;

	progress_line(a->file, s, &a->progress_last, &a->progress_shown);
}

/* One file; the exit status of run_file() (opts.h) and its accounting. */
static int classify_one(struct classify_args *a, const char *path, struct file_run *run)
{
	struct classify_callbacks cb = { .block = on_block, .flow = on_flow, .ctx = a };
	struct classify_file_result res;
	int rc;

	if (!a->common.quiet && isatty(STDERR_FILENO))
		cb.progress = on_progress;
	a->progress_shown = false;
	clock_gettime(CLOCK_MONOTONIC, &a->progress_last);
	rc = classifier_file(a->c, path, &a->common.flow, &cb, &res);
	if (a->progress_shown)
		fprintf(stderr, "\r\033[K");
	memset(run, 0, sizeof(*run));
	run->path = source_name(path);
	run->kind = res.kind;
	run->linktype = res.linktype;
	run->counts = res.counts;
	run->stats = res.stats;
	run->opened = res.opened;
	run->partial = res.partial;
	snprintf(run->error, sizeof(run->error), "%s", res.error);
	if (!res.opened) {
		log_error("%s", res.error);
		return EXIT_UNREADABLE;
	}
	if (rc && !res.partial) { /* opened, then refused (flow table) */
		log_error("%s", res.error);
		return EXIT_UNREADABLE;
	}
	if (res.partial)
		log_error("%s", res.error); /* reading stopped early */
	if (res.partial && res.counts.records == 0)
		return EXIT_UNREADABLE;
	return res.partial ? EXIT_PARTIAL : EXIT_OK;
}

/* ---- the closing summary per class ---- */

static void classes_print_text(const struct classify_args *a)
{
	const struct model *m = classifier_model(a->c);
	const struct classify_stats *st = classifier_stats(a->c);
	const struct classifier_config *cfg = classifier_config(a->c);
	uint32_t i, r;

	/* Short lines: the output fits 120 columns. */
	printf("# verdicts: %" PRIu64 " flows (%" PRIu64 " shown), %" PRIu64 " blocks (%" PRIu64
	       " partial, %" PRIu64 " sparse, %" PRIu64 " other)\n",
	       a->flows, a->shown, st->blocks, st->blocks_early, st->blocks_sparse,
	       st->blocks_other);
	printf("#   model %s: %s %s, %ux%u, %.9g s blocks\n", classifier_model_source(a->c),
	       m->name, m->version, m->res, m->res, (double)m->window_ns / 1e9);
	printf("#   rule: votes from %u packets; other below p %.2f; unknown below confidence "
	       "%.2f or runner-up over %.2f x top\n",
	       cfg->min_block_packets, (double)cfg->reject_prob, (double)cfg->min_confidence,
	       (double)cfg->vote_ratio);
	for (i = 0; i <= m->n_classes; i++) {
		const struct class_total *t = &a->total[i];

		/* A background class is never a verdict: its flows are unknown (other). */
		if (i < m->n_classes && !strcmp(m->classes[i], CLASSIFY_OTHER_NAME))
			continue;

		printf("#   %-14s %8" PRIu64 " flows %6.1f %%  %12" PRIu64 " packets",
		       i < m->n_classes ? m->classes[i] : "unknown", t->flows,
		       a->flows ? 100.0 * (double)t->flows / (double)a->flows : 0.0, t->packets);
		if (t->early)
			printf("  (%" PRIu64 " early)", t->early);
		putchar('\n');
	}
	if (a->total[m->n_classes].flows) {
		printf("#   unknown:");
		for (r = 1; r < CLASSIFY_REASON_COUNT; r++)
			printf("%s %" PRIu64 " %s", r > 1 ? "," : "", st->flows_unknown[r],
			       classify_reason_name(r));
		putchar('\n');
	}
	if (st->blocks_failed)
		printf("#   blocks not classified: %" PRIu64 "\n", st->blocks_failed);
}

/* The model fixes res and window: a different one given on the command
 * line would draw pictures the model was not trained on.  Whether an option
 * was given is what counts, not its value (a value equal to a default is
 * still checked).  0, or -EINVAL (said on stderr). */
static int check_flow_opts(struct classify_args *a)
{
	const struct model *m = classifier_model(a->c);
	const struct common_opts *o = &a->common;
	const struct flow_config *given = &o->flow;

	if (o->res_given && given->res != m->res) {
		fprintf(stderr, "flowpic classify: --res %u: the model %s takes %u x %u pictures\n",
			given->res, classifier_model_source(a->c), m->res, m->res);
		return -EINVAL;
	}
	if (o->window_given && given->window_ns != m->window_ns) {
		fprintf(stderr,
			"flowpic classify: --window %.9g: the model %s takes %.9g s blocks "
			"(leave --window out)\n",
			(double)given->window_ns / 1e9, classifier_model_source(a->c),
			(double)m->window_ns / 1e9);
		return -EINVAL;
	}
	if (o->hop_given && given->hop_ns != (o->window_given ? given->window_ns : m->window_ns)) {
		fprintf(stderr, "flowpic classify: --hop: blocks follow each other as in training "
				"(hop = window)\n");
		return -EINVAL;
	}
	classifier_flow_config(a->c, &a->common.flow);
	return 0;
}

int cmd_classify(int argc, char **argv)
{
	static const struct argp argp = { classify_options, classify_parse, "FILE...", classify_doc,
					  common_children,  NULL,	    NULL };
	struct classify_args *a;
	char err[512];
	int i, status = EXIT_OK;

	a = calloc(1, sizeof(*a));
	if (!a) {
		fprintf(stderr, "flowpic classify: out of memory\n");
		return EXIT_UNREADABLE;
	}
	common_opts_init(&a->common);
	classifier_config_default(&a->ccfg);
	a->ccfg.workers = 1;
	if (argp_parse(&argp, argc, argv, 0, NULL, a)) {
		free(a);
		return EXIT_USAGE;
	}
	a->ccfg.model_path = a->common.model_path;
	a->c = classifier_new(&a->ccfg, err, sizeof(err));
	if (!a->c) {
		fprintf(stderr, "flowpic classify: model %s\n", err);
		free(a);
		return EXIT_UNREADABLE;
	}
	if (filter_parse(a) < 0 || check_flow_opts(a) < 0) {
		status = EXIT_USAGE;
		goto out;
	}
	log_info("model %s: %s %s, %u classes, %ux%u, %.0f s blocks, %zu bytes in use",
		 classifier_model_source(a->c), classifier_model(a->c)->name,
		 classifier_model(a->c)->version, classifier_model(a->c)->n_classes,
		 classifier_model(a->c)->res, classifier_model(a->c)->res,
		 (double)classifier_model(a->c)->window_ns / 1e9, classifier_memory(a->c));
	if (a->fmt == OUT_CSV)
		csv_header(stdout, a);
	for (i = 0; i < a->nfiles; i++) {
		struct file_run run;
		int rc;

		a->file = source_name(a->files[i]);
		a->header_done = false;
		rc = classify_one(a, a->files[i], &run);
		status = exit_worse(status, rc);
		if (rc == EXIT_UNREADABLE || a->fmt == OUT_CSV)
			continue;
		if (a->fmt == OUT_JSON)
			summary_print_json(stdout, &run);
		else
			summary_print_text(stdout, &run);
	}
	if (a->fmt == OUT_JSON)
		classes_summary_json_line(stdout, a->c, a->flows, a->shown, a->total);
	else if (a->fmt == OUT_TABLE)
		classes_print_text(a);
out:
	classifier_free(a->c);
	free(a);
	return status;
}
