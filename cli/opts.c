// SPDX-License-Identifier: MIT
/* opts.c - shared options and the per-file run; see opts.h. */
#include "opts.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/classify.h"
#include "core/log.h"
#include "core/number.h"

enum {
	OPT_WINDOW = 0x100,
	OPT_HOP,
	OPT_IDLE,
	OPT_MAX_FLOWS,
	OPT_MAX_CELLS,
	OPT_RES,
	OPT_MODEL,
};

static const struct argp_option common_options[] = {
	{ NULL, 0, NULL, 0, "Flows and blocks:", 1 },
	{ "model", OPT_MODEL, "FILE", 0,
	  "A model file (.fpcnn) instead of the embedded one: its window and "
	  "resolution are the defaults (classify judges with it)",
	  1 },
	{ "window", OPT_WINDOW, "SEC", 0, "Block length in seconds (default: the model's, 15)", 1 },
	{ "hop", OPT_HOP, "SEC", 0,
	  "Distance between block starts (default: the window; "
	  "smaller gives overlapping blocks)",
	  1 },
	{ "idle-timeout", OPT_IDLE, "SEC", 0, "A flow ends after this much silence (default 120)",
	  1 },
	{ "res", OPT_RES, "N", 0,
	  "FlowPic side in bins, 1-2048 (default: the model's, 32; the seed used 1500)", 1 },
	{ "max-flows", OPT_MAX_FLOWS, "N", 0,
	  "Flows tracked at once (default 65536); packets of "
	  "further flows are counted as flow_table_full",
	  1 },
	{ "max-cells", OPT_MAX_CELLS, "N", 0,
	  "Picture cells held by open blocks (default 4194304, "
	  "4 bytes each); samples beyond are counted as cells_refused",
	  1 },
	{ NULL, 0, NULL, 0, "Output:", 2 },
	{ "quiet", 'q', NULL, 0, "No progress and no warnings on stderr", 2 },
	{ "verbose", 'v', NULL, 0, "More messages on stderr", 2 },
	{ 0 }
};

int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	return number_parse_u64(s, min, max, out);
}

int parse_seconds(const char *s, uint64_t min_ns, uint64_t max_ns, uint64_t *out)
{
	int rc = number_parse_seconds(s, out);

	if (rc < 0)
		return rc;
	return *out < min_ns || *out > max_ns ? -EINVAL : 0;
}

void common_opts_init(struct common_opts *o)
{
	memset(o, 0, sizeof(*o));
	flow_config_default(&o->flow);
}

static error_t common_parse(int key, char *arg, struct argp_state *state)
{
	struct common_opts *o = state->input;
	struct flow_config *c = &o->flow;
	uint64_t v;

	switch (key) {
	case OPT_MODEL:
		o->model_path = arg;
		return 0;
	case OPT_WINDOW:
		if (parse_seconds(arg, 1000, 1ULL << 42, &c->window_ns))
			argp_error(state, "--window '%s': give seconds between 0.000001 and 4398",
				   arg);
		o->window_given = true;
		return 0;
	case OPT_HOP:
		if (parse_seconds(arg, 1000, 1ULL << 42, &c->hop_ns))
			argp_error(state, "--hop '%s': give seconds between 0.000001 and 4398",
				   arg);
		o->hop_given = true;
		return 0;
	case OPT_IDLE:
		if (parse_seconds(arg, 1000, 1ULL << 42, &c->idle_timeout_ns))
			argp_error(state,
				   "--idle-timeout '%s': give seconds between 0.000001 and 4398",
				   arg);
		return 0;
	case OPT_RES:
		if (parse_u64(arg, 1, FLOWPIC_MAX_RES, &v))
			argp_error(state, "--res '%s': give a whole number from 1 to %d", arg,
				   FLOWPIC_MAX_RES);
		c->res = (uint32_t)v;
		o->res_given = true;
		return 0;
	case OPT_MAX_FLOWS:
		if (parse_u64(arg, 1, 1u << 30, &v))
			argp_error(state,
				   "--max-flows '%s': give a whole number from 1 to 1073741824",
				   arg);
		c->max_flows = (uint32_t)v;
		return 0;
	case OPT_MAX_CELLS:
		if (parse_u64(arg, CELL_CHUNK_CELLS, 1u << 31, &v))
			argp_error(state,
				   "--max-cells '%s': give a whole number from %d to 2147483648",
				   arg, CELL_CHUNK_CELLS);
		c->max_cells = (uint32_t)v;
		return 0;
	case 'q':
		o->quiet = true;
		return 0;
	case 'v':
		o->verbose = true;
		return 0;
	case ARGP_KEY_END:
		/* The window, hop and resolution are checked once the model has
		 * filled in those not given (common_model_defaults). */
		log_set_level(o->quiet ? LOG_ERROR : o->verbose ? LOG_INFO : LOG_WARN);
		return 0;
	}
	return ARGP_ERR_UNKNOWN;
}

int common_model_defaults(struct common_opts *o, const char *cmd, const struct model *m)
{
	char err[128];

	if (!o->window_given)
		o->flow.window_ns = m->window_ns;
	if (!o->res_given)
		o->flow.res = m->res;
	if (!o->hop_given)
		o->flow.hop_ns = o->flow.window_ns;
	if (flow_config_check(&o->flow, err, sizeof(err))) {
		fprintf(stderr, "%s: %s\n", cmd, err);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

int common_resolve(struct common_opts *o, const char *cmd)
{
	const void *buf;
	struct model *m;
	char err[512];
	size_t len;
	int rc;

	if (o->model_path) {
		m = model_load(o->model_path, err, sizeof(err));
	} else {
		buf = classifier_default_model(&len);
		m = model_load_mem(buf, len, "embedded:model/default.fpcnn", err, sizeof(err));
	}
	if (!m) {
		fprintf(stderr, "%s: model %s\n", cmd, err);
		return EXIT_UNREADABLE;
	}
	rc = common_model_defaults(o, cmd, m);
	model_free(m);
	return rc;
}

const struct argp common_argp = { common_options, common_parse, NULL, NULL, NULL, NULL, NULL };

const struct argp_child common_children[] = { { &common_argp, 0, NULL, 0 }, { 0 } };

error_t files_parse(int key, struct argp_state *state, struct common_opts *common, char ***files,
		    int *nfiles)
{
	switch (key) {
	case ARGP_KEY_INIT:
		state->child_inputs[0] = common;
		return 0;
	case ARGP_KEY_ARGS: {
		int i, stdin_seen = 0;

		*files = state->argv + state->next;
		*nfiles = state->argc - state->next;
		for (i = 0; i < *nfiles; i++)
			if (!strcmp((*files)[i], "-") && stdin_seen++)
				argp_error(state,
					   "'-' (standard input) given twice: it is read once");
		return 0;
	}
	case ARGP_KEY_NO_ARGS:
		argp_error(state, "give at least one capture or CSV file ('-': standard input)");
		return 0;
	}
	return ARGP_ERR_UNKNOWN;
}

error_t file_parse(int key, char *arg, struct argp_state *state, struct common_opts *common,
		   const char **file)
{
	switch (key) {
	case ARGP_KEY_INIT:
		state->child_inputs[0] = common;
		return 0;
	case ARGP_KEY_ARG:
		if (*file)
			argp_error(state, "give one input file (got '%s' too)", arg);
		*file = arg;
		return 0;
	}
	return ARGP_ERR_UNKNOWN;
}

/* ---- progress on a terminal: stderr only, never stdout ---- */

/* Context of the pipeline hooks: progress state and the caller's tap. */
struct progress {
	const char *path;
	struct timespec last;
	bool shown;
	void (*tap)(void *ctx, const struct pkt *p);
	void *tap_ctx;
};

static void tap_forward(void *ctx, const struct pkt *p)
{
	struct progress *pr = ctx;

	pr->tap(pr->tap_ctx, p);
}

void progress_line(const char *path, const struct source *s, struct timespec *last, bool *shown)
{
	uint64_t size = source_file_size(s), pos = source_file_pos(s);
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if ((now.tv_sec - last->tv_sec) * 1000 + (now.tv_nsec - last->tv_nsec) / 1000000 < 250)
		return;
	*last = now;
	*shown = true;
	if (size)
		fprintf(stderr, "\r%s: %3.0f%%, %.1f M records ", path,
			100.0 * (double)pos / (double)size, (double)source_records(s) / 1e6);
	else
		fprintf(stderr, "\r%s: %.1f M records ", path, (double)source_records(s) / 1e6);
}

static void progress_show(void *ctx, const struct source *s)
{
	struct progress *pr = ctx;

	progress_line(pr->path, s, &pr->last, &pr->shown);
}

int run_file(const char *path, const struct common_opts *o, const struct flow_events *ev,
	     void (*tap)(void *ctx, const struct pkt *p), struct file_run *run)
{
	struct progress pr = { .path = path, .tap_ctx = ev->ctx };
	struct pipeline_hooks hooks = { .tap = tap, .ctx = &pr };
	bool show = !o->quiet && isatty(STDERR_FILENO);
	struct timespec start, end;
	struct flow_table *ft;
	struct source *s;
	double secs;
	int rc;

	memset(run, 0, sizeof(*run));
	run->path = source_name(path); /* "(stdin)" for "-", in messages and the summary */
	pr.path = run->path;
	s = source_open(path, run->error, sizeof(run->error));
	if (!s) {
		log_error("%s", run->error);
		return EXIT_UNREADABLE;
	}
	run->opened = true;
	run->kind = source_kind(s);
	run->linktype = source_linktype(s);
	log_info("%s: %s, link type %d, %.1f MB", run->path, source_kind_name(run->kind),
		 run->linktype, (double)source_file_size(s) / 1e6);
	ft = flow_table_new(&o->flow, ev);
	if (!ft) {
		snprintf(run->error, sizeof(run->error), "%s: cannot allocate the flow table: %s",
			 run->path, strerror(errno));
		log_error("%s", run->error);
		source_close(s);
		return EXIT_UNREADABLE;
	}
	clock_gettime(CLOCK_MONOTONIC, &pr.last);
	start = pr.last;
	hooks.progress = show ? progress_show : NULL;
	hooks.tap = tap ? tap_forward : NULL;
	pr.tap = tap;
	rc = pipeline_run(s, ft, &run->counts, &hooks);
	if (pr.shown)
		fprintf(stderr, "\r\033[K");
	if (rc) {
		run->partial = true;
		snprintf(run->error, sizeof(run->error), "%s", source_error(s));
		log_error("%s", run->error);
	}
	flow_table_flush(ft);
	run->stats = *flow_table_stats(ft);
	clock_gettime(CLOCK_MONOTONIC, &end);
	secs = (double)(end.tv_sec - start.tv_sec) + (double)(end.tv_nsec - start.tv_nsec) / 1e9;
	log_info("%s: %" PRIu64 " records, %" PRIu64 " flows in %.2f s (%.0f records/s); "
		 "most flows at once %" PRIu64 ", most cells %" PRIu64,
		 run->path, run->counts.records, run->stats.flows, secs,
		 secs > 0 ? (double)run->counts.records / secs : 0.0, run->stats.flows_active_max,
		 run->stats.cells_in_use_max);
	flow_table_free(ft);
	source_close(s);
	if (run->partial && run->counts.records == 0)
		return EXIT_UNREADABLE;
	return run->partial ? EXIT_PARTIAL : EXIT_OK;
}
