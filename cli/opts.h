/* SPDX-License-Identifier: MIT */
/*
 * opts.h - options shared by the flowpic commands: the flow and block
 * settings (an argp child parser), range-checked number parsing, and the
 * loop that runs one file through the pipeline with progress on a terminal.
 */
#ifndef FLOWPIC_CLI_OPTS_H
#define FLOWPIC_CLI_OPTS_H

#include <argp.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "core/flow.h"
#include "core/model_file.h"
#include "core/pipeline.h"
#include "core/source.h"

/* Exit codes, said in every --help. */
#define EXIT_OK 0
#define EXIT_UNREADABLE 1 /* a file could not be read at all */
#define EXIT_USAGE 2	  /* bad arguments */
#define EXIT_PARTIAL 3	  /* a file was read only in part; what was read is reported */

#define EXIT_CODES_DOC \
	"Exit status: 0 all input read; 1 a file could not be read at all; 2 bad arguments; " \
	"3 a file was read only in part (truncated or corrupt: what was read is still reported)."

/* The worse of two exit statuses: unreadable > partial > ok. */
static inline int exit_worse(int a, int b)
{
	static const int rank[] = {
		[EXIT_OK] = 0, [EXIT_UNREADABLE] = 2, [EXIT_USAGE] = 3, [EXIT_PARTIAL] = 1
	};

	return rank[a] >= rank[b] ? a : b;
}

struct common_opts {
	struct flow_config flow;
	const char *model_path; /* --model FILE; NULL: the embedded model */
	/* Given on the command line: otherwise the model's (hop: the window). */
	bool window_given, hop_given, res_given;
	bool quiet; /* no progress, no warnings */
	bool verbose;
};

/* Parser for the shared options; its input is a struct common_opts. */
extern const struct argp common_argp;
/* A command's argp children: just common_argp. */
extern const struct argp_child common_children[];

/*
 * The keys a `COMMAND FILE...` parser shares: common gets the shared
 * options, files/nfiles the file list (at least one).  A command's parser
 * returns this for the keys it does not handle itself.
 */
error_t files_parse(int key, struct argp_state *state, struct common_opts *common, char ***files,
		    int *nfiles);

/*
 * The keys a `COMMAND FILE` parser (one input file) shares: common gets the
 * shared options, *file the file (a second one is an error).  The command
 * checks at ARGP_KEY_END that a file was given, and returns this for the
 * keys it does not handle itself.
 */
error_t file_parse(int key, char *arg, struct argp_state *state, struct common_opts *common,
		   const char **file);

void common_opts_init(struct common_opts *o);

/*
 * The window and resolution the options left open, from the model m (hop:
 * the window), then the flow settings checked.  EXIT_OK, or EXIT_USAGE with
 * a line on stderr naming cmd ("flowpic flows").
 */
int common_model_defaults(struct common_opts *o, const char *cmd, const struct model *m);
/*
 * The same with the model of --model (or the embedded one) loaded for it.
 * EXIT_OK, EXIT_USAGE, or EXIT_UNREADABLE when the model cannot be read.
 */
int common_resolve(struct common_opts *o, const char *cmd);

/* Whole-string number parsing with a range; 0, or -EINVAL (the caller says
 * what is wrong). */
int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* Seconds with optional decimals ("60", "0.5") -> ns, in [min_ns, max_ns];
 * 0, or -EINVAL. */
int parse_seconds(const char *s, uint64_t min_ns, uint64_t max_ns, uint64_t *out);

/*
 * The progress line of a file being read (stderr, "\r" without a newline):
 * at most every 250 ms after *last, which it updates; *shown says a line
 * was drawn (to be cleared with "\r\033[K").
 */
void progress_line(const char *path, const struct source *s, struct timespec *last, bool *shown);

/* One file through the pipeline. */
struct file_run {
	const char *path;
	enum source_kind kind;
	int linktype;
	struct pipeline_counts counts;
	struct flow_stats stats; /* of the flow table, after the flush */
	bool opened;		 /* the file was opened and recognised */
	bool partial;		 /* reading stopped early (message already logged) */
	char error[512];
};

/*
 * Open path, run it into a new flow table with the given events (and the
 * optional tap, which sees every decoded packet; its ctx is ev->ctx), flush.
 * Returns 0 (read whole), EXIT_PARTIAL, or EXIT_UNREADABLE (message logged).
 */
int run_file(const char *path, const struct common_opts *o, const struct flow_events *ev,
	     void (*tap)(void *ctx, const struct pkt *p), struct file_run *run);

#endif
