// SPDX-License-Identifier: MIT
/* agent.c - packets -> flows -> blocks -> verdicts -> JSON lines; see agent.h. */
#include "agent.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "core/clock.h"
#include "core/csv.h"
#include "core/flow_json.h"
#include "forward.h"
#include "core/log.h"
#include "core/pipeline.h"
#include "metrics.h"

static void out_done(struct agent *a)
{
	/* Lines go out as they are made (a reader of the pipe sees them live);
	 * a failed write is counted, not fatal: the counters still come. */
	if (fflush(a->out) || ferror(a->out)) {
		a->n.output_errors++;
		clearerr(a->out);
	}
}

static void on_block(void *ctx, const struct flow_table *ft, const struct flow *f,
		     const struct block *b)
{
	struct agent *a = ctx;
	struct block_verdict v;
	int rc;

	rc = classifier_block(a->cls, ft, f, b, &v);
	if (rc == -EINVAL) {
		a->n.blocks_failed++;
		return;
	}
	a->n.verdicts_block++;
	if (v.early)
		a->n.verdicts_block_early++;
	/* Live times are the wall clock's: how long after its start a block is judged. */
	if (a->cfg->n_ifaces)
		agent_metrics_block_latency(b->start_ns, clock_real_ns());
	if (a->stream)
		forward_block(a, f, b, &v);
	if (a->cfg->no_block_verdicts)
		return;
	block_verdict_json_line(a->out, a->cls, &v, NULL);
	out_done(a);
}

static void on_flow_end(void *ctx, const struct flow_table *ft, const struct flow *f,
			enum flow_end_reason why)
{
	struct agent *a = ctx;
	struct flow_verdict v;

	classifier_flow_end(a->cls, ft, f, &v);
	a->n.verdicts_flow++;
	if (v.early)
		a->n.verdicts_flow_early++;
	if (v.cls == CLASSIFY_UNKNOWN)
		a->n.verdicts_flow_unknown++;
	if (a->stream)
		forward_flow(a, f, &v);
	verdict_json_line(a->out, a->cls, f, why, NULL, &v);
	out_done(a);
}

int agent_init(struct agent *a, const struct agent_config *cfg, struct classifier *cls, FILE *out,
	       char *err, size_t errlen)
{
	struct flow_events ev = { .block = on_block, .flow_end = on_flow_end, .ctx = a };
	struct flow_config fc;
	int rc;

	memset(a, 0, sizeof(*a));
	a->cfg = cfg;
	a->cls = cls;
	a->out = out;
	flow_config_default(&fc);
	fc.idle_timeout_ns = cfg->idle_timeout_ns;
	fc.max_flows = cfg->max_flows;
	fc.max_cells = cfg->max_cells;
	/* The model decides what a picture is: its resolution and window, and
	 * blocks follow each other as in training (hop = window). */
	classifier_flow_config(cls, &fc);
	rc = flow_config_check(&fc, err, errlen);
	if (rc < 0)
		return rc;
	a->ft = flow_table_new(&fc, &ev);
	if (!a->ft) {
		rc = errno ? -errno : -ENOMEM;
		snprintf(err, errlen, "cannot allocate the flow table (%u flows, %u cells): %s",
			 fc.max_flows, fc.max_cells, strerror(errno));
		return rc;
	}
	if (cfg->samples_out[0]) {
		a->samples = fopen(cfg->samples_out, "w");
		if (!a->samples) {
			rc = -errno;
			snprintf(err, errlen, "--samples-out %s: cannot create it: %s",
				 cfg->samples_out, strerror(-rc));
			flow_table_free(a->ft);
			a->ft = NULL;
			return rc;
		}
		csv_write_header(a->samples);
	}
	return 0;
}

void agent_fini(struct agent *a)
{
	flow_table_free(a->ft);
	a->ft = NULL;
	if (a->samples && (fclose(a->samples) || a->n.samples_errors))
		log_error("--samples-out %s: %llu rows could not be written (disk full?)",
			  a->cfg->samples_out, (unsigned long long)a->n.samples_errors);
	a->samples = NULL;
}

void agent_sample_out(struct agent *a, const struct pkt *p)
{
	if (!a->samples)
		return;
	csv_write_pkt(a->samples, p);
	if (ferror(a->samples)) {
		a->n.samples_errors++;
		clearerr(a->samples);
	}
}

void agent_packet(struct agent *a, const struct pkt *p)
{
	agent_sample_out(a, p);
	a->n.packets++;
	if (p->proto == 6)
		a->n.tcp++;
	else if (p->proto == 17)
		a->n.udp++;
	if (flow_table_add(a->ft, p) != SKIP_NONE)
		a->n.skipped[SKIP_FLOW_TABLE_FULL]++;
}

/* Every packet a source hands out is TCP or UDP, and the flow table refuses
 * one only when it is full: the same numbers agent_packet() keeps. */
void agent_take_counts(struct agent *a, const struct pipeline_counts *c)
{
	a->n.packets = c->tcp + c->udp;
	a->n.tcp = c->tcp;
	a->n.udp = c->udp;
	memcpy(a->n.skipped, c->skipped, sizeof(a->n.skipped));
}

void agent_advance(struct agent *a, uint64_t now_ns)
{
	a->n.sweeps++;
	flow_table_advance(a->ft, now_ns);
}

void agent_flush(struct agent *a)
{
	flow_table_flush(a->ft);
}

static void add(struct agent_counter *out, size_t *n, size_t max, const char *name, uint64_t v)
{
	if (*n < max)
		out[(*n)++] = (struct agent_counter){ name, v };
}

void agent_counters(const struct agent *a, struct agent_counter *out, size_t *n, size_t max)
{
	/* Skip reasons as "skipped_<reason>": names with static storage. */
	static const char *const skip_names[SKIP_REASON_COUNT] = {
		[SKIP_LINK_UNSUPPORTED] = "skipped_link_unsupported",
		[SKIP_TRUNCATED] = "skipped_truncated",
		[SKIP_NOT_IP] = "skipped_not_ip",
		[SKIP_IP_MALFORMED] = "skipped_ip_malformed",
		[SKIP_FRAGMENT] = "skipped_fragment",
		[SKIP_ICMP] = "skipped_icmp",
		[SKIP_OTHER_L4] = "skipped_other_l4",
		[SKIP_L4_MALFORMED] = "skipped_l4_malformed",
		[SKIP_FLOW_TABLE_FULL] = "skipped_flow_table_full",
		[SKIP_CSV_BAD_LINE] = "skipped_csv_bad_line",
	};
	const struct flow_stats *fs = flow_table_stats(a->ft);
	const struct classify_stats *cs = classifier_stats(a->cls);
	int i;

	_Static_assert(SKIP_REASON_COUNT == 11, "name every skip reason above");
	add(out, n, max, "packets", a->n.packets);
	add(out, n, max, "packets_tcp", a->n.tcp);
	add(out, n, max, "packets_udp", a->n.udp);
	if (a->cfg->n_ifaces) {
		add(out, n, max, "packets_ingress", a->n.ingress);
		add(out, n, max, "packets_egress", a->n.egress);
	}
	for (i = 1; i < SKIP_REASON_COUNT; i++)
		add(out, n, max, skip_names[i], a->n.skipped[i]);
	add(out, n, max, "flows", fs->flows);
	add(out, n, max, "flows_active", fs->flows_active);
	add(out, n, max, "flows_active_max", fs->flows_active_max);
	add(out, n, max, "samples", fs->samples);
	add(out, n, max, "oversize", fs->oversize);
	add(out, n, max, "reordered", fs->reordered);
	add(out, n, max, "super_packets", fs->super_packets);
	add(out, n, max, "super_segments", fs->super_segments);
	add(out, n, max, "samples_late", fs->samples_late);
	add(out, n, max, "cells_refused", fs->cells_refused);
	add(out, n, max, "cells_in_use_max", fs->cells_in_use_max);
	add(out, n, max, "blocks", fs->blocks);
	add(out, n, max, "blocks_empty", fs->blocks_empty);
	add(out, n, max, "blocks_failed", a->n.blocks_failed);
	add(out, n, max, "verdicts_block", a->n.verdicts_block);
	add(out, n, max, "verdicts_block_early", a->n.verdicts_block_early);
	add(out, n, max, "verdicts_flow", a->n.verdicts_flow);
	add(out, n, max, "verdicts_flow_early", a->n.verdicts_flow_early);
	add(out, n, max, "verdicts_flow_unknown", a->n.verdicts_flow_unknown);
	add(out, n, max, "flows_untracked", cs->flows_untracked);
	add(out, n, max, "output_errors", a->n.output_errors);
	if (a->samples)
		add(out, n, max, "samples_out_errors", a->n.samples_errors);
	if (a->cfg->collector[0])
		add(out, n, max, "stream_rejected", a->n.stream_rejected);
	if (a->cfg->n_ifaces)
		add(out, n, max, "sweeps", a->n.sweeps);
}

void agent_counters_write(FILE *f, const struct agent_counter *c, size_t n)
{
	size_t i;

	fputs("{\"counters\":{", f);
	for (i = 0; i < n; i++) {
		if (i)
			fputc(',', f);
		json_write_string(f, c[i].name);
		fprintf(f, ":%" PRIu64, c[i].value);
	}
	fputs("},\"type\":\"counters\"}\n", f);
	fflush(f);
}
