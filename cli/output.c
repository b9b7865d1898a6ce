// SPDX-License-Identifier: MIT
/* output.c - tables and JSON lines; see output.h. */
#include "output.h"

#include <inttypes.h>
#include <time.h>

#include "core/flow_json.h"
#include "core/pkt.h"
#include "core/summary_json.h"

const char *fmt_time(uint64_t ns, char *buf, size_t len)
{
	time_t sec = (time_t)(ns / NS_PER_SEC);
	struct tm tm;
	char date[32];

	gmtime_r(&sec, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%06" PRIu64 "Z", date, ns % NS_PER_SEC / 1000);
	return buf;
}

void flow_print_table_header(FILE *out)
{
	fprintf(out, "%6s %-5s %-39s %5s %-39s %5s %8s %11s %-27s %10s %6s\n", "ID", "PROTO", "SRC",
		"SPORT", "DST", "DPORT", "PACKETS", "BYTES", "START", "DURATION", "BLOCKS");
}

void flow_print_table_row(FILE *out, const struct flow *f)
{
	char a[64], b[64], t[40];

	fprintf(out,
		"%6" PRIu64 " %-5s %-39s %5u %-39s %5u %8" PRIu64 " %11" PRIu64
		" %-27s %10.3f %6u\n",
		f->id, flow_proto_name(f->key.proto), pkt_addr_str(f->key.a, a, sizeof(a)),
		f->key.port_a, pkt_addr_str(f->key.b, b, sizeof(b)), f->key.port_b,
		f->packets[0] + f->packets[1], f->ip_bytes[0] + f->ip_bytes[1],
		fmt_time(f->first_ns, t, sizeof(t)), (double)(f->last_ns - f->first_ns) / 1e9,
		f->blocks);
}

void flow_print_json(FILE *out, const struct flow *f, enum flow_end_reason why, const char *file)
{
	flow_json_line(out, f, why, file);
}

void summary_print_json(FILE *out, const struct file_run *r)
{
	const struct file_summary fs = {
		.path = r->path,
		.kind = r->kind,
		.linktype = r->linktype,
		.counts = &r->counts,
		.stats = &r->stats,
		.partial = r->partial,
		.error = r->error,
	};

	file_summary_json_line(out, &fs);
}

void summary_print_text(FILE *out, const struct file_run *r)
{
	const struct pipeline_counts *c = &r->counts;
	const struct flow_stats *s = &r->stats;
	int i;

	fprintf(out, "# %s (%s): %" PRIu64 " records%s\n", r->path, source_kind_name(r->kind),
		c->records, r->partial ? " (read only in part)" : "");
	fprintf(out,
		"#   in flows  %12" PRIu64 "  (tcp %" PRIu64 ", udp %" PRIu64 "; %" PRIu64
		" flows, %" PRIu64 " blocks)\n",
		c->in_flows, c->tcp, c->udp, s->flows, s->blocks);
	fprintf(out, "#     drawn   %12" PRIu64 "\n", s->samples);
	fprintf(out, "#     %d B or more %6" PRIu64 "  (in flows, not in pictures)\n", PKT_MAX_SIZE,
		s->oversize);
	if (s->cells_refused)
		fprintf(out, "#     cells refused %6" PRIu64 "  (raise --max-cells)\n",
			s->cells_refused);
	if (s->aug_dropped)
		fprintf(out, "#     left out by --aug-drop %" PRIu64 "\n", s->aug_dropped);
	if (s->super_packets)
		fprintf(out,
			"#     TSO/GRO records split %" PRIu64 " (into %" PRIu64
			" wire segments)\n",
			s->super_packets, s->super_segments);
	fprintf(out, "#   skipped   %12" PRIu64 "\n", pipeline_skipped(c));
	for (i = 1; i < SKIP_REASON_COUNT; i++)
		if (c->skipped[i])
			fprintf(out, "#     %-16s %7" PRIu64 "\n", skip_reason_name(i),
				c->skipped[i]);
}
