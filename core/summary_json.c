// SPDX-License-Identifier: MIT
/* summary_json.c - the summary JSON lines; see summary_json.h. */
#include "summary_json.h"

#include <inttypes.h>

#include "flow_json.h"

void file_summary_json_line(FILE *out, const struct file_summary *r)
{
	const struct pipeline_counts *c = r->counts;
	const struct flow_stats *s = r->stats;
	int i, first = 1;

	fputs("{\"file\":", out);
	json_write_string(out, r->path);
	fprintf(out,
		",\"format\":\"%s\",\"linktype\":%d,\"complete\":%s,\"records\":%" PRIu64
		",\"in_flows\":%" PRIu64 ",\"skipped_total\":%" PRIu64 ",\"tcp\":%" PRIu64
		",\"udp\":%" PRIu64 ",\"skipped\":{",
		source_kind_name(r->kind), r->linktype, r->partial ? "false" : "true", c->records,
		c->in_flows, pipeline_skipped(c), c->tcp, c->udp);
	for (i = 1; i < SKIP_REASON_COUNT; i++) {
		fprintf(out, "%s\"%s\":%" PRIu64, first ? "" : ",", skip_reason_name(i),
			c->skipped[i]);
		first = 0;
	}
	fprintf(out,
		"},\"flows\":%" PRIu64 ",\"flows_active_max\":%" PRIu64 ",\"blocks\":%" PRIu64
		",\"samples\":%" PRIu64 ",\"oversize\":%" PRIu64 ",\"cells_refused\":%" PRIu64
		",\"reordered\":%" PRIu64 ",\"cells_in_use_max\":%" PRIu64
		",\"blocks_empty\":%" PRIu64 ",\"aug_dropped\":%" PRIu64
		",\"super_packets\":%" PRIu64 ",\"super_segments\":%" PRIu64,
		s->flows, s->flows_active_max, s->blocks, s->samples, s->oversize, s->cells_refused,
		s->reordered, s->cells_in_use_max, s->blocks_empty, s->aug_dropped,
		s->super_packets, s->super_segments);
	if (r->partial) {
		fputs(",\"error\":", out);
		json_write_string(out, r->error);
	}
	fputs(",\"type\":\"summary\"}\n", out);
}

void class_totals_add(struct class_total *t, const struct classifier *c, const struct flow *f,
		      const struct flow_verdict *v)
{
	uint32_t n = classifier_model(c)->n_classes;
	struct class_total *x = &t[v->cls < n ? v->cls : n];

	x->flows++;
	x->early += v->early;
	x->packets += f->packets[0] + f->packets[1];
}

void classes_summary_json_line(FILE *out, const struct classifier *c, uint64_t flows,
			       uint64_t shown, const struct class_total *total)
{
	const struct model *m = classifier_model(c);
	const struct classify_stats *st = classifier_stats(c);
	uint32_t i, r;

	fputs("{\"model\":", out);
	json_write_string(out, classifier_model_source(c));
	fprintf(out,
		",\"flows\":%" PRIu64 ",\"shown\":%" PRIu64 ",\"blocks\":%" PRIu64
		",\"blocks_early\":%" PRIu64 ",\"blocks_sparse\":%" PRIu64
		",\"blocks_other\":%" PRIu64 ",\"blocks_cached\":%" PRIu64
		",\"blocks_failed\":%" PRIu64 ",\"per_class\":{",
		flows, shown, st->blocks, st->blocks_early, st->blocks_sparse, st->blocks_other,
		st->blocks_cached, st->blocks_failed);
	for (i = 0; i <= m->n_classes; i++) {
		const struct class_total *t = &total[i];

		if (i)
			fputc(',', out);
		json_write_string(out, i < m->n_classes ? m->classes[i] : "unknown");
		fprintf(out,
			":{\"flows\":%" PRIu64 ",\"early\":%" PRIu64 ",\"packets\":%" PRIu64 "}",
			t->flows, t->early, t->packets);
	}
	fputs("},\"unknown_reasons\":{", out);
	for (r = 1; r < CLASSIFY_REASON_COUNT; r++)
		fprintf(out, "%s\"%s\":%" PRIu64, r > 1 ? "," : "", classify_reason_name(r),
			st->flows_unknown[r]);
	fputs("},\"type\":\"summary\"}\n", out);
}
