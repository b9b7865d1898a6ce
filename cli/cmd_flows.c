// SPDX-License-Identifier: MIT
/* cmd_flows.c - `flowpic flows FILE...`: one line per flow, and a summary. */
#include <argp.h>
#include <stdio.h>

#include "cmds.h"
#include "opts.h"
#include "output.h"

struct flows_args {
	struct common_opts common;
	char **files;
	int nfiles;
	bool json;
	const char *file; /* the file being read (for --json with several files) */
	bool header_done; /* table header printed for this file */
};

static const struct argp_option flows_options[] = {
	{ "json", 'j', NULL, 0, "JSON lines: one object per flow, then {\"summary\": {...}}", 2 },
	{ 0 }
};

static error_t flows_parse(int key, char *arg, struct argp_state *state)
{
	struct flows_args *a = state->input;

	(void)arg;
	switch (key) {
	case 'j':
		a->json = true;
		return 0;
	}
	return files_parse(key, state, &a->common, &a->files, &a->nfiles);
}

static const char flows_doc[] =
	"List the flows of captures (pcap, pcapng; gzip or xz compressed too) or samples CSV "
	"files ('-': standard input): one line per flow in the order flows end, then a summary "
	"that accounts for every record read (in a flow, or skipped with a reason). BLOCKS "
	"counts the blocks of the model's window (15 s), as classify judges them."
	"\v"
	"A flow is the bidirectional session of a 5-tuple; SRC is the side that sent first. "
	"BYTES counts IP bytes (from the IP length fields, so snap-length-truncated captures "
	"are measured right). START is UTC.\n\n"
	"Examples:\n"
	"  flowpic flows capture.pcap\n"
	"  flowpic flows --json capture.pcapng.gz | jq 'select(.packets > 1000)'\n"
	"  flowpic flows --idle-timeout 30 ../shared/data/requet/*.pcap.xz\n"
	"  tcpdump -i eth0 -w - | flowpic flows -\n\n" EXIT_CODES_DOC;

static void on_flow_end(void *ctx, const struct flow_table *ft, const struct flow *f,
			enum flow_end_reason why)
{
	struct flows_args *a = ctx;

	(void)ft;
	if (a->json) {
		flow_print_json(stdout, f, why, a->nfiles > 1 ? a->file : NULL);
		return;
	}
	/* The header comes with the first flow: an unreadable file prints nothing. */
	if (!a->header_done)
		flow_print_table_header(stdout);
	a->header_done = true;
	flow_print_table_row(stdout, f);
}

int cmd_flows(int argc, char **argv)
{
	static const struct argp argp = { flows_options,   flows_parse, "FILE...", flows_doc,
					  common_children, NULL,	NULL };
	struct flows_args a = { 0 };
	struct flow_events ev = { .flow_end = on_flow_end, .ctx = &a };
	int i, status = EXIT_OK;

	common_opts_init(&a.common);
	if (argp_parse(&argp, argc, argv, 0, NULL, &a))
		return EXIT_USAGE;
	status = common_resolve(&a.common, "flowpic flows");
	if (status)
		return status;
	for (i = 0; i < a.nfiles; i++) {
		struct file_run run;
		int rc;

		a.file = source_name(a.files[i]);
		a.header_done = false;
		rc = run_file(a.files[i], &a.common, &ev, NULL, &run);
		status = exit_worse(status, rc);
		/* Exit 1 means nothing could be read: the error line says it all. */
		if (rc == EXIT_UNREADABLE)
			continue;
		if (a.json)
			summary_print_json(stdout, &run);
		else
			summary_print_text(stdout, &run);
	}
	return status;
}
