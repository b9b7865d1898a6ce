// SPDX-License-Identifier: MIT
/*
 * cmd_export.c - `flowpic export FILE`: the samples as CSV, or every block as
 * a FlowPic in NumPy files for training (docs/export.md).  This is the only
 * way model/ gets FlowPics, so training and inference share one definition.
 */
#include <argp.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmds.h"
#include "core/csv.h"
#include "core/flowpic.h"
#include "core/log.h"
#include "npy.h"
#include "opts.h"
#include "output.h"

enum export_format { FMT_CSV, FMT_DENSE, FMT_SPARSE };
enum export_dirs { DIRS_BOTH = PIC_BOTH, DIRS_FWD = PIC_FWD, DIRS_REV = PIC_REV, DIRS_SPLIT };

struct export_args {
	struct common_opts common;
	const char *file;
	const char *out;
	enum export_format format;
	enum export_dirs dirs;
	bool complete_only;
	uint64_t min_samples;
	/* while running */
	FILE *csv; /* samples CSV, or the blocks index */
	struct npy_writer *npy;
	uint8_t *pic;	     /* scratch: one or two pictures */
	int write_err;	     /* first write error, -errno */
	char final[2][4096]; /* output paths; written as PATH.part, renamed when done */
	int nfinal;
	uint64_t blocks_written;
};

enum {
	OPT_FORMAT = 0x200,
	OPT_DIRECTION,
	OPT_COMPLETE_ONLY,
	OPT_MIN_SAMPLES,
	OPT_AUG_SCALE,
	OPT_AUG_SHIFT,
	OPT_AUG_DROP,
	OPT_AUG_SEED,
	OPT_AUG_SIZE_JITTER,
	OPT_AUG_MSS,
};

static const struct argp_option export_options[] = {
	{ "output", 'o', "OUT", 0,
	  "Output: the CSV file (default or '-': stdout), or the prefix of the "
	  "NumPy files (required for npy and sparse)",
	  2 },
	{ "format", OPT_FORMAT, "FMT", 0,
	  "csv (samples, default), npy (dense pictures), or sparse "
	  "(non-zero cells)",
	  2 },
	{ "direction", OPT_DIRECTION, "DIRS", 0,
	  "Samples in a picture: both (default), fwd "
	  "(initiator to responder), rev, or split (two channels: fwd, rev)",
	  2 },
	{ "complete-only", OPT_COMPLETE_ONLY, NULL, 0, "Only blocks whose whole window was seen",
	  2 },
	{ "min-samples", OPT_MIN_SAMPLES, "N", 0, "Only blocks with at least N samples (default 1)",
	  2 },
	{ NULL, 0, NULL, 0, "Training augmentation (per flow, reproducible from the seed):", 3 },
	{ "aug-time-scale", OPT_AUG_SCALE, "MIN:MAX", 0,
	  "Multiply flow time by a factor drawn "
	  "in [MIN, MAX] per flow, e.g. 0.5:1.5 (\"change RTT\")",
	  3 },
	{ "aug-time-shift", OPT_AUG_SHIFT, "SEC", 0,
	  "Delay each flow by a time drawn in [0, SEC): "
	  "block boundaries fall elsewhere",
	  3 },
	{ "aug-drop", OPT_AUG_DROP, "P", 0,
	  "Leave out each packet with probability P, e.g. 0.05 "
	  "(packet loss)",
	  3 },
	{ "aug-size-jitter", OPT_AUG_SIZE_JITTER, "BYTES", 0,
	  "Add to each packet's size a number of bytes drawn in [-BYTES, BYTES] "
	  "(other headers, options, padding)",
	  3 },
	{ "aug-mss", OPT_AUG_MSS, "MIN:MAX", 0,
	  "Re-cut each TCP flow's payload into segments of a size drawn in "
	  "[MIN, MAX] bytes per flow, e.g. 1200:1448 (another path MTU)",
	  3 },
	{ "aug-seed", OPT_AUG_SEED, "N", 0, "Seed of the draws (default 1); a new seed, a new copy",
	  3 },
	{ 0 }
};

/* "MIN:MAX" -> the two halves (lo is a copy; the result points into arg),
 * or NULL without a colon or with a MIN too long. */
static const char *split_range(const char *arg, char *lo, size_t lo_size)
{
	const char *colon = strchr(arg, ':');

	if (!colon || (size_t)(colon - arg) >= lo_size)
		return NULL;
	memcpy(lo, arg, (size_t)(colon - arg));
	lo[colon - arg] = 0;
	return colon + 1;
}

/* "0.5:1.5" -> scale_min 500, scale_max 1500 (thousandths). */
static int parse_scale_range(const char *arg, struct flow_augment *aug)
{
	char lo[32];
	const char *hi = split_range(arg, lo, sizeof(lo));
	uint64_t a, b;

	/* Seconds parsing reads a decimal exactly: 1.5 -> 1500000000. */
	if (!hi || parse_seconds(lo, 1000000, 100 * NS_PER_SEC, &a) ||
	    parse_seconds(hi, 1000000, 100 * NS_PER_SEC, &b) || a > b)
		return -EINVAL;
	aug->scale_min = (uint32_t)(a / 1000000);
	aug->scale_max = (uint32_t)(b / 1000000);
	return 0;
}

/* "1200:1448" -> mss_min 1200, mss_max 1448. */
static int parse_mss_range(const char *arg, struct flow_augment *aug)
{
	char lo[32];
	const char *hi = split_range(arg, lo, sizeof(lo));
	uint64_t a, b;

	if (!hi || parse_u64(lo, 64, 65535, &a) || parse_u64(hi, 64, 65535, &b) || a > b)
		return -EINVAL;
	aug->mss_min = (uint16_t)a;
	aug->mss_max = (uint16_t)b;
	return 0;
}

static error_t export_parse(int key, char *arg, struct argp_state *state)
{
	struct export_args *a = state->input;
	uint64_t v;
	int d;

	switch (key) {
	case 'o':
		a->out = arg;
		return 0;
	case OPT_FORMAT:
		if (!strcmp(arg, "csv"))
			a->format = FMT_CSV;
		else if (!strcmp(arg, "npy"))
			a->format = FMT_DENSE;
		else if (!strcmp(arg, "sparse"))
			a->format = FMT_SPARSE;
		else
			argp_error(state, "--format '%s': give csv, npy or sparse", arg);
		return 0;
	case OPT_DIRECTION:
		d = pic_dirs_parse(arg);
		if (d >= 0)
			a->dirs = (enum export_dirs)d;
		else if (!strcmp(arg, "split"))
			a->dirs = DIRS_SPLIT;
		else
			argp_error(state, "--direction '%s': give both, fwd, rev or split", arg);
		return 0;
	case OPT_COMPLETE_ONLY:
		a->complete_only = true;
		return 0;
	case OPT_MIN_SAMPLES:
		if (parse_u64(arg, 1, UINT32_MAX, &a->min_samples))
			argp_error(state, "--min-samples '%s': give a whole number from 1", arg);
		return 0;
	case OPT_AUG_SCALE:
		if (parse_scale_range(arg, &a->common.flow.aug))
			argp_error(state,
				   "--aug-time-scale '%s': give MIN:MAX, 0.001 <= MIN <= MAX <= 100",
				   arg);
		return 0;
	case OPT_AUG_SHIFT:
		if (parse_seconds(arg, 1, 1ULL << 42, &a->common.flow.aug.shift_ns))
			argp_error(state,
				   "--aug-time-shift '%s': give seconds above 0, at most 4398",
				   arg);
		return 0;
	case OPT_AUG_DROP:
		if (parse_seconds(arg, 0, 999999999, &v)) /* a fraction, 9 decimals */
			argp_error(state, "--aug-drop '%s': give a probability from 0 to below 1",
				   arg);
		a->common.flow.aug.drop_ppm = (uint32_t)(v / 1000);
		return 0;
	case OPT_AUG_SIZE_JITTER:
		if (parse_u64(arg, 0, PKT_MAX_SIZE - 1, &v))
			argp_error(state, "--aug-size-jitter '%s': give bytes from 0 to %d", arg,
				   PKT_MAX_SIZE - 1);
		a->common.flow.aug.size_jitter = (uint32_t)v;
		return 0;
	case OPT_AUG_MSS:
		if (parse_mss_range(arg, &a->common.flow.aug))
			argp_error(state,
				   "--aug-mss '%s': give MIN:MAX bytes, 64 <= MIN <= MAX <= 65535",
				   arg);
		return 0;
	case OPT_AUG_SEED:
		if (parse_u64(arg, 0, UINT64_MAX, &a->common.flow.aug.seed))
			argp_error(state, "--aug-seed '%s': give a whole number", arg);
		return 0;
	case ARGP_KEY_END:
		if (!a->file)
			argp_error(state, "give the capture or CSV file to export");
		if (a->format != FMT_CSV && (!a->out || !strcmp(a->out, "-")))
			argp_error(state,
				   "--format npy and sparse need -o PREFIX (files, not stdout)");
		return 0;
	}
	return file_parse(key, arg, state, &a->common, &a->file);
}

static const char export_doc[] =
	"Export a capture's samples as CSV, or its blocks as FlowPics for training. The blocks "
	"are the model's (its window and resolution) unless --window or --res say otherwise. "
	"Files are written as NAME.part and renamed to NAME when the input was read; an input "
	"that cannot be read, a failed write or an interrupt (SIGINT, SIGTERM, SIGHUP, SIGPIPE) "
	"leaves no file and no NAME.part (an existing NAME is kept as it was)."
	"\v"
	"csv: one row per TCP/UDP packet (time,proto,src,sport,dst,dport,size,ip_len,tcp_flags; "
	"docs/csv.md). Reading that CSV back gives exactly the FlowPics of the capture.\n"
	"npy: PREFIX.npy, uint8 [N, RES, RES] (or [N, 2, RES, RES] with --direction split), "
	"pics[i, y, x] with y the size bin (0 = smallest) and x the time bin; and "
	"PREFIX.index.csv, one row per picture (pic,flow,block,proto,src,sport,dst,dport,start_ns,"
	"samples,bytes,complete).\n"
	"sparse: PREFIX.cells.npy, int32 [M, 5] rows (pic, channel, y, x, count), for large "
	"resolutions such as the seed's 1500; and the same PREFIX.index.csv.\n\n"
	"Examples:\n"
	"  flowpic export capture.pcap -o samples.csv\n"
	"  flowpic export capture.pcap --format npy -o train/cap1\n"
	"  flowpic export samples.csv --format sparse --res 1500 -o big\n"
	"  # an augmented copy:\n"
	"  flowpic export cap.pcap --format npy --aug-time-scale 0.5:1.5 \\\n"
	"      --aug-drop 0.05 --aug-seed 2 -o train/cap-aug2\n"
	"  xz -dc cap.pcap.xz | flowpic export - --format npy -o train/cap1\n"
	"  python3 -c 'import numpy; print(numpy.load(\"train/cap1.npy\").shape)'\n\n" EXIT_CODES_DOC;

static void write_sample(void *ctx, const struct pkt *p)
{
	struct export_args *a = ctx;

	csv_write_pkt(a->csv, p);
}

/* Samples and bytes of the directions the picture shows. */
static uint32_t drawn_samples(const struct export_args *a, const struct block *b)
{
	if (a->dirs == DIRS_FWD || a->dirs == DIRS_REV)
		return b->samples[a->dirs == DIRS_FWD ? FLOW_DIR_FWD : FLOW_DIR_REV];
	return block_samples(b);
}

static uint64_t drawn_bytes(const struct export_args *a, const struct block *b)
{
	if (a->dirs == DIRS_FWD || a->dirs == DIRS_REV)
		return b->bytes[a->dirs == DIRS_FWD ? FLOW_DIR_FWD : FLOW_DIR_REV];
	return (uint64_t)b->bytes[0] + b->bytes[1];
}

static void write_index_row(struct export_args *a, const struct flow *f, const struct block *b)
{
	char s[64], d[64];

	fprintf(a->csv,
		"%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%u,%s,%u,%s,%u,%" PRIu64 ",%u,%" PRIu64
		",%d\n",
		a->blocks_written, f->id, b->index, f->key.proto,
		pkt_addr_str(f->key.a, s, sizeof(s)), f->key.port_a,
		pkt_addr_str(f->key.b, d, sizeof(d)), f->key.port_b, b->start_ns,
		drawn_samples(a, b), drawn_bytes(a, b), b->complete ? 1 : 0);
}

static int write_sparse(struct export_args *a, const struct flow_table *ft, const struct block *b)
{
	struct cell_iter it;
	struct cell c;
	int rc = 0;

	block_cells_begin(&it, ft, b);
	while (!rc && block_cells_next(&it, &c)) {
		int32_t row[5] = { (int32_t)a->blocks_written, 0, c.y, c.x, c.count };

		if ((a->dirs == DIRS_FWD && c.dir != FLOW_DIR_FWD) ||
		    (a->dirs == DIRS_REV && c.dir != FLOW_DIR_REV))
			continue;
		if (a->dirs == DIRS_SPLIT)
			row[1] = c.dir;
		/* Repeated cells are written as they are; readers add them
		 * (np.add.at), saturating at 255 as the dense pictures do. */
		rc = npy_append(a->npy, row);
	}
	return rc;
}

static void on_block(void *ctx, const struct flow_table *ft, const struct flow *f,
		     const struct block *b)
{
	struct export_args *a = ctx;
	uint32_t res = flow_table_config(ft)->res;
	int rc = 0;

	if (a->write_err || (a->complete_only && !b->complete) ||
	    drawn_samples(a, b) < a->min_samples)
		return;
	if (a->format == FMT_SPARSE) {
		rc = write_sparse(a, ft, b);
	} else if (a->dirs == DIRS_SPLIT) {
		flowpic_draw(ft, b, PIC_FWD, a->pic);
		flowpic_draw(ft, b, PIC_REV, a->pic + (size_t)res * res);
		rc = npy_append(a->npy, a->pic);
	} else {
		flowpic_draw(ft, b, (enum pic_dirs)a->dirs, a->pic);
		rc = npy_append(a->npy, a->pic);
	}
	if (rc) {
		a->write_err = rc;
		return;
	}
	write_index_row(a, f, b);
	a->blocks_written++;
}

/*
 * The .part files being written, for the signal handler: an interrupted
 * export (SIGINT, SIGTERM, SIGHUP, SIGPIPE) removes them and dies of the
 * signal, so it leaves no output at all (only SIGKILL can leave PATH.part;
 * never a partial PATH).
 */
static char part_files[2][4200];
static volatile sig_atomic_t part_count;

static void on_fatal_signal(int sig)
{
	int i;

	for (i = 0; i < part_count; i++)
		unlink(part_files[i]); /* async-signal-safe */
	signal(sig, SIG_DFL);
	raise(sig);
}

/* A signal ignored when we started (SIGINT of a background job) stays ignored. */
static void catch_fatal_signals(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGPIPE };
	struct sigaction sa = { .sa_handler = on_fatal_signal }, old;
	size_t i;

	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&sa.sa_mask, sigs[i]);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (!sigaction(sigs[i], NULL, &old) && old.sa_handler != SIG_IGN)
			sigaction(sigs[i], &sa, NULL);
}

/* PATH.part, remembering PATH: an export that fails leaves what was there. */
static const char *part_path(struct export_args *a, const char *path)
{
	int i = a->nfinal++;

	snprintf(a->final[i], sizeof(a->final[0]), "%s", path);
	snprintf(part_files[i], sizeof(part_files[0]), "%s.part", path);
	part_count = a->nfinal; /* after the name is whole: the handler may run */
	return part_files[i];
}

static int open_outputs(struct export_args *a, uint32_t res)
{
	char path[4096];
	uint32_t dense[3] = { res, res, 0 }, split[3] = { 2, res, res }, cells[1] = { 5 };

	if (a->format == FMT_CSV) {
		if (!a->out || !strcmp(a->out, "-")) {
			a->csv = stdout;
		} else {
			a->csv = fopen(part_path(a, a->out), "w");
			if (!a->csv) {
				int e = errno;

				log_error("cannot create %s: %s", a->out, strerror(e));
				return -e;
			}
		}
		csv_write_header(a->csv);
		return 0;
	}
	snprintf(path, sizeof(path), "%s.%s", a->out,
		 a->format == FMT_SPARSE ? "cells.npy" : "npy");
	if (a->format == FMT_SPARSE)
		a->npy = npy_open(part_path(a, path), "<i4", 4, cells, 1);
	else if (a->dirs == DIRS_SPLIT)
		a->npy = npy_open(part_path(a, path), "|u1", 1, split, 3);
	else
		a->npy = npy_open(part_path(a, path), "|u1", 1, dense, 2);
	if (!a->npy) {
		int e = errno;

		log_error("cannot create %s: %s", path, strerror(e));
		return -e;
	}
	snprintf(path, sizeof(path), "%s.index.csv", a->out);
	a->csv = fopen(part_path(a, path), "w");
	if (!a->csv) {
		int e = errno;

		log_error("cannot create %s: %s", path, strerror(e));
		return -e;
	}
	fputs("pic,flow,block,proto,src,sport,dst,dport,start_ns,samples,bytes,complete\n", a->csv);
	a->pic = malloc(2 * (size_t)res * res);
	if (!a->pic) {
		log_error("out of memory for a %ux%u picture", res, res);
		return -ENOMEM;
	}
	return 0;
}

/* Close the outputs; keep them (rename PATH.part to PATH) only when keep. */
static int close_outputs(struct export_args *a, bool keep)
{
	char part[4200];
	int rc = a->write_err, i, e;

	if (a->npy && (e = npy_close(a->npy)) && !rc)
		rc = e;
	if (a->csv && (ferror(a->csv) | (a->csv != stdout ? fclose(a->csv) : fflush(a->csv))) &&
	    !rc)
		rc = -EIO;
	free(a->pic);
	for (i = 0; i < a->nfinal; i++) {
		snprintf(part, sizeof(part), "%s.part", a->final[i]);
		if (keep && !rc) {
			if (rename(part, a->final[i]) && !rc)
				rc = -errno;
		} else {
			unlink(part);
		}
	}
	part_count = 0;
	return rc;
}

int cmd_export(int argc, char **argv)
{
	static const struct argp argp = { export_options,  export_parse, "FILE", export_doc,
					  common_children, NULL,	 NULL };
	struct export_args a = { .min_samples = 1 };
	struct flow_events ev = { .block = on_block, .ctx = &a };
	struct file_run run;
	int status, rc;

	common_opts_init(&a.common);
	a.common.flow.aug.seed = 1;
	if (argp_parse(&argp, argc, argv, 0, NULL, &a))
		return EXIT_USAGE;
	status = common_resolve(&a.common, "flowpic export");
	if (status)
		return status;
	catch_fatal_signals();
	if (open_outputs(&a, a.common.flow.res) < 0) {
		close_outputs(&a, false);
		return EXIT_UNREADABLE;
	}
	if (a.format == FMT_CSV)
		ev.block = NULL;
	status = run_file(a.file, &a.common, &ev, a.format == FMT_CSV ? write_sample : NULL, &run);
	rc = close_outputs(&a, status != EXIT_UNREADABLE);
	if (rc) {
		log_error("writing the export of %s failed: %s", source_name(a.file),
			  strerror(-rc));
		return EXIT_UNREADABLE;
	}
	if (run.opened && !a.common.quiet)
		summary_print_text(stderr, &run);
	if (run.opened && a.format != FMT_CSV && !a.common.quiet)
		fprintf(stderr, "# wrote %" PRIu64 " pictures to %s.*\n", a.blocks_written, a.out);
	return status;
}
