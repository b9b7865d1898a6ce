// SPDX-License-Identifier: MIT
/* cmd_render.c - `flowpic render FILE --flow ID --block N -o pic.png`. */
#include <argp.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "core/flowpic.h"
#include "core/log.h"
#include "opts.h"
#include "output.h"
#include "png_render.h"

struct render_args {
	struct common_opts common;
	const char *file;
	const char *out;
	uint64_t flow_id;
	uint64_t block;
	enum pic_dirs dirs;
	/* while running */
	uint8_t *pic;
	bool found;
	bool flow_seen;
	uint32_t flow_blocks;
	char title[160];
};

enum { OPT_FLOW = 0x300, OPT_BLOCK, OPT_DIRECTION };

static const struct argp_option render_options[] = {
	{ "flow", OPT_FLOW, "ID", 0, "The flow, by the ID that `flowpic flows` prints", 2 },
	{ "block", OPT_BLOCK, "N", 0, "Its block, from 0 (default 0)", 2 },
	{ "output", 'o', "PNG", 0, "The PNG file to write", 2 },
	{ "direction", OPT_DIRECTION, "DIRS", 0, "both (default), fwd or rev", 2 },
	{ 0 }
};

static error_t render_parse(int key, char *arg, struct argp_state *state)
{
	struct render_args *a = state->input;
	int d;

	switch (key) {
	case OPT_FLOW:
		if (parse_u64(arg, 1, UINT64_MAX, &a->flow_id))
			argp_error(state,
				   "--flow '%s': give a flow ID from `flowpic flows` (1 or more)",
				   arg);
		return 0;
	case OPT_BLOCK:
		if (parse_u64(arg, 0, UINT64_MAX, &a->block))
			argp_error(state, "--block '%s': give a block number from 0", arg);
		return 0;
	case 'o':
		a->out = arg;
		return 0;
	case OPT_DIRECTION:
		d = pic_dirs_parse(arg);
		if (d < 0)
			argp_error(state, "--direction '%s': give both, fwd or rev", arg);
		a->dirs = (enum pic_dirs)d;
		return 0;
	case ARGP_KEY_END:
		if (!a->file)
			argp_error(state, "give the capture or CSV file");
		if (!a->flow_id)
			argp_error(state, "give --flow ID (see `flowpic flows FILE`)");
		if (!a->out)
			argp_error(state, "give -o FILE.png");
		return 0;
	}
	return file_parse(key, arg, state, &a->common, &a->file);
}

static const char render_doc[] =
	"Draw one block of one flow as a PNG: time left to right, size bottom to top, darker "
	"cells hold more packets."
	"\v"
	"Examples:\n"
	"  flowpic flows capture.pcap            # find the flow's ID\n"
	"  flowpic render capture.pcap --flow 3 --block 0 -o flow3.png\n"
	"  flowpic render capture.pcap --flow 3 --res 1500 --direction rev -o big.png\n\n" EXIT_CODES_DOC;

static void on_block(void *ctx, const struct flow_table *ft, const struct flow *f,
		     const struct block *b)
{
	struct render_args *a = ctx;
	char src[64], dst[64];

	if (f->id != a->flow_id || b->index != a->block || a->found)
		return;
	a->found = true;
	flowpic_draw(ft, b, a->dirs, a->pic);
	snprintf(a->title, sizeof(a->title),
		 "flow %" PRIu64 " block %" PRIu64 ": %s %s:%u - %s:%u, "
		 "%u pkts%s",
		 f->id, b->index, f->key.proto == 6 ? "tcp" : "udp",
		 pkt_addr_str(f->key.a, src, sizeof(src)), f->key.port_a,
		 pkt_addr_str(f->key.b, dst, sizeof(dst)), f->key.port_b,
		 a->dirs == PIC_BOTH ? block_samples(b) : b->samples[a->dirs == PIC_FWD ? 0 : 1],
		 b->complete ? "" : " (partial)");
}

static void on_flow_end(void *ctx, const struct flow_table *ft, const struct flow *f,
			enum flow_end_reason why)
{
	struct render_args *a = ctx;

	(void)ft;
	(void)why;
	if (f->id == a->flow_id) {
		a->flow_seen = true;
		a->flow_blocks = f->blocks;
	}
}

int cmd_render(int argc, char **argv)
{
	static const struct argp argp = { render_options,  render_parse, "FILE", render_doc,
					  common_children, NULL,	 NULL };
	struct render_args a = { 0 };
	struct flow_events ev = { .block = on_block, .flow_end = on_flow_end, .ctx = &a };
	struct png_render_opts po = { 0 };
	struct file_run run;
	char err[256];
	uint32_t res;
	int status;

	common_opts_init(&a.common);
	if (argp_parse(&argp, argc, argv, 0, NULL, &a))
		return EXIT_USAGE;
	res = a.common.flow.res;
	a.pic = malloc((size_t)res * res);
	if (!a.pic) {
		log_error("out of memory for a %ux%u picture", res, res);
		return EXIT_UNREADABLE;
	}
	status = run_file(a.file, &a.common, &ev, NULL, &run);
	if (!a.found) {
		if (run.opened && !a.flow_seen)
			log_error("%s has no flow %" PRIu64 " (it has %" PRIu64
				  " flows; see `flowpic flows %s`)",
				  a.file, a.flow_id, run.stats.flows, a.file);
		else if (run.opened)
			log_error("flow %" PRIu64 " of %s has no block %" PRIu64
				  " (it has %u block%s, from 0)",
				  a.flow_id, a.file, a.block, a.flow_blocks,
				  a.flow_blocks == 1 ? "" : "s");
		free(a.pic);
		return exit_worse(status, EXIT_UNREADABLE);
	}
	po.window_s = (double)a.common.flow.window_ns / 1e9;
	po.max_size = PKT_MAX_SIZE;
	po.title = a.title;
	if (png_render_flowpic(a.out, a.pic, res, &po, err, sizeof(err))) {
		log_error("%s", err);
		free(a.pic);
		return EXIT_UNREADABLE;
	}
	free(a.pic);
	return status;
}
