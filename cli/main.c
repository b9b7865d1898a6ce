// SPDX-License-Identifier: MIT
/*
 * main.c - `flowpic COMMAND ...`: the offline tool.  Each command has its own
 * argp parser and --help with examples.
 */
#include <argp.h>
#include <stdio.h>
#include <string.h>

#include "cmds.h"
#include "core/log.h"
#include "opts.h"

/* argp gives every command --version (-V): the same line as `flowpic --version`. */
const char *argp_program_version = "flowpic " FLOWPIC_VERSION;

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{ "flows", cmd_flows, "list the flows of captures or samples CSV files" },
	{ "export", cmd_export, "write samples as CSV, or blocks as FlowPic arrays for training" },
	{ "render", cmd_render, "draw one block of one flow as a PNG" },
	{ "classify", cmd_classify, "classify every flow (voip, video, ...) with the int8 CNN" },
};

static void usage(FILE *out)
{
	size_t i;

	fprintf(out, "Usage: flowpic COMMAND [OPTION...] FILE...\n"
		     "Classify traffic from packet sizes and times: flows, blocks, FlowPics and\n"
		     "verdicts from pcap, pcapng (gzip or xz too) and samples CSV files; '-' is\n"
		     "standard input.\n\nCommands:\n");
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\nExamples:\n"
		     "  flowpic flows capture.pcap\n"
		     "  flowpic flows --json capture.pcap.xz\n"
		     "  flowpic export capture.pcap --format npy --res 32 -o train/capture\n"
		     "  flowpic render capture.pcap --flow 3 -o flow3.png\n"
		     "  flowpic classify data/lab-mix.pcap.xz\n"
		     "  xz -dc capture.pcap.xz | flowpic classify -\n"
		     "\n`flowpic COMMAND --help` describes each command and its options;\n"
		     "`flowpic --version` (or `flowpic COMMAND --version`) prints the version.\n");
}

int main(int argc, char **argv)
{
	size_t i;

	log_init("flowpic", LOG_WARN);
	argp_err_exit_status = EXIT_USAGE;
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("%s\n", argp_program_version);
		return EXIT_OK;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		char name[32];

		if (strcmp(argv[1], commands[i].name))
			continue;
		/* argp names the program after argv[0]: "flowpic flows", as typed. */
		snprintf(name, sizeof(name), "flowpic %s", commands[i].name);
		argv[1] = name;
		return commands[i].run(argc - 1, argv + 1);
	}
	fprintf(stderr, "flowpic: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
