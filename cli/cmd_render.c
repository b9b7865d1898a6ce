// SPDX-License-Identifier: MIT
/*
 * cmd_render.c - `flowpic render FILE --flow ID --block N -o pic.png`: the
 * block drawn as the model judges it (the model's window and resolution
 * unless --window or --res say otherwise), with its verdict in the title.
 */
#include <argp.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "core/classify.h"
#include "core/flow_json.h"
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
	struct classifier *c;
	bool judged; /* the blocks are the model's: the block gets a verdict */
	uint8_t *pic;
	bool found;
	bool flow_seen;
	uint32_t flow_blocks;
	char title[PNG_RENDER_TITLE_MAX + 1];
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
	"cells hold more packets. The blocks are the model's (its window and resolution); "
	"the title starts with the block's verdict: its class and confidence, or 'unknown' "
	"with the reason. With another --window or --res the block is drawn but not judged "
	"('no verdict')."
	"\v"
	"Examples:\n"
	"  flowpic flows capture.pcap        # find the flow's ID\n"
	"  flowpic render capture.pcap --flow 3 --block 0 -o flow3.png\n"
	"  flowpic render cap.pcap --flow 3 --res 1500 --direction rev -o big.png\n"
	"  xz -dc cap.pcap.xz | flowpic render - --flow 3 -o flow3.png\n\n" EXIT_CODES_DOC;

/* "video 0.93", "unknown (sparse; top chat 0.41)", or why there is none. */
static void verdict_text(const struct render_args *a, const struct block_verdict *v, bool have,
			 char *buf, size_t len)
{
	const struct model *m = classifier_model(a->c);

	if (!a->judged)
		snprintf(buf, len, "no verdict (%.9g s x %u blocks; the model judges %.9g s x %u)",
			 (double)a->common.flow.window_ns / 1e9, a->common.flow.res,
			 (double)m->window_ns / 1e9, m->res);
	else if (!have)
		snprintf(buf, len, "no verdict (the block could not be classified)");
	else if (v->reason == CLASSIFY_OK)
		snprintf(buf, len, "%s %.2f", classifier_class_name(a->c, v->cls),
			 (double)v->confidence);
	else if (v->reason == CLASSIFY_SPARSE)
		snprintf(buf, len, "unknown (sparse: %u packets, a vote needs %u)", v->samples,
			 classifier_config(a->c)->min_block_packets);
	else
		snprintf(buf, len, "unknown (%s; top %s %.2f)", classify_reason_name(v->reason),
			 classifier_class_name(a->c, v->top), (double)v->confidence);
}

static void on_block(void *ctx, const struct flow_table *ft, const struct flow *f,
		     const struct block *b)
{
	struct render_args *a = ctx;
	char src[64], dst[64], verdict[96];
	struct block_verdict v;
	bool have = false;

	if (f->id != a->flow_id || b->index != a->block || a->found)
		return;
	a->found = true;
	flowpic_draw(ft, b, a->dirs, a->pic);
	if (a->judged)
		have = classifier_block(a->c, ft, f, b, &v) != -EINVAL;
	verdict_text(a, &v, have, verdict, sizeof(verdict));
	/* The verdict first: a long title is cut at its end. */
	snprintf(a->title, sizeof(a->title),
		 "%s: flow %" PRIu64 " block %" PRIu64 ", %s %s:%u - %s:%u, "
		 "%u pkts%s",
		 verdict, f->id, b->index, flow_proto_name(f->key.proto),
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
	struct classifier_config ccfg;
	const struct model *m;
	struct file_run run;
	char err[512];
	uint32_t res;
	int status;

	common_opts_init(&a.common);
	if (argp_parse(&argp, argc, argv, 0, NULL, &a))
		return EXIT_USAGE;
	classifier_config_default(&ccfg);
	ccfg.model_path = a.common.model_path;
	ccfg.cache_entries = 0; /* one block */
	a.c = classifier_new(&ccfg, err, sizeof(err));
	if (!a.c) {
		fprintf(stderr, "flowpic render: model %s\n", err);
		return EXIT_UNREADABLE;
	}
	m = classifier_model(a.c);
	status = common_model_defaults(&a.common, "flowpic render", m);
	if (status) {
		classifier_free(a.c);
		return status;
	}
	a.judged = a.common.flow.res == m->res && a.common.flow.window_ns == m->window_ns &&
		   a.common.flow.hop_ns == m->window_ns;
	res = a.common.flow.res;
	a.pic = malloc((size_t)res * res);
	if (!a.pic) {
		log_error("out of memory for a %ux%u picture", res, res);
		classifier_free(a.c);
		return EXIT_UNREADABLE;
	}
	status = run_file(a.file, &a.common, &ev, NULL, &run);
	if (!a.found) {
		if (run.opened && !a.flow_seen)
			log_error("%s has no flow %" PRIu64 " (it has %" PRIu64
				  " flows; see `flowpic flows %s`)",
				  run.path, a.flow_id, run.stats.flows, a.file);
		else if (run.opened)
			log_error("flow %" PRIu64 " of %s has no block %" PRIu64
				  " (it has %u block%s, from 0)",
				  a.flow_id, run.path, a.block, a.flow_blocks,
				  a.flow_blocks == 1 ? "" : "s");
		free(a.pic);
		classifier_free(a.c);
		return exit_worse(status, EXIT_UNREADABLE);
	}
	log_info("%s: %s", a.out, a.title);
	po.window_s = (double)a.common.flow.window_ns / 1e9;
	po.max_size = PKT_MAX_SIZE;
	po.title = a.title;
	if (png_render_flowpic(a.out, a.pic, res, &po, err, sizeof(err))) {
		log_error("%s", err);
		free(a.pic);
		classifier_free(a.c);
		return EXIT_UNREADABLE;
	}
	free(a.pic);
	classifier_free(a.c);
	return status;
}
