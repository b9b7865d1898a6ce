// SPDX-License-Identifier: MIT
/* flow_json.c - JSON lines for flows and verdicts; see flow_json.h. */
#include "flow_json.h"

#include <inttypes.h>

#include "pkt.h"
#include "utf8.h"

void json_write_string(FILE *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n;

	fputc('"', out);
	while (*p) {
		if (*p == '"' || *p == '\\') {
			fprintf(out, "\\%c", *p++);
		} else if (*p < 0x20 || *p == 0x7f) {
			fprintf(out, "\\u%04x", *p++);
		} else if (*p < 0x80) {
			fputc(*p++, out);
		} else if ((n = utf8_len(p, 4)) != 0) { /* NUL ends a sequence early */
			fwrite(p, 1, n, out);
			p += n;
		} else {
			fputs("\\ufffd", out); /* not UTF-8 (a file name): JSON text must be */
			p++;
		}
	}
	fputc('"', out);
}

const char *flow_proto_name(uint8_t proto)
{
	return proto == 6 ? "tcp" : proto == 17 ? "udp" : "other";
}

void flow_json_fields(FILE *out, const struct flow *f, const char *file)
{
	char a[64], b[64];

	fputc('{', out);
	if (file) {
		fputs("\"file\":", out);
		json_write_string(out, file);
		fputc(',', out);
	}
	fprintf(out,
		"\"flow_id\":%" PRIu64 ",\"proto\":\"%s\",\"src\":\"%s\",\"sport\":%u,"
		"\"dst\":\"%s\",\"dport\":%u,\"packets\":%" PRIu64 ",\"bytes\":%" PRIu64
		",\"payload_bytes\":%" PRIu64 ",\"packets_fwd\":%" PRIu64
		",\"packets_rev\":%" PRIu64 ",\"bytes_fwd\":%" PRIu64 ",\"bytes_rev\":%" PRIu64
		",\"payload_bytes_fwd\":%" PRIu64 ",\"payload_bytes_rev\":%" PRIu64
		",\"start\":%" PRIu64 ".%09" PRIu64 ",\"start_ns\":%" PRIu64
		",\"duration\":%.9f,\"blocks\":%u,\"oversize\":%" PRIu64 ",\"reordered\":%" PRIu64
		",\"cells_refused\":%" PRIu64,
		f->id, flow_proto_name(f->key.proto), pkt_addr_str(f->key.a, a, sizeof(a)),
		f->key.port_a, pkt_addr_str(f->key.b, b, sizeof(b)), f->key.port_b,
		f->packets[0] + f->packets[1], f->ip_bytes[0] + f->ip_bytes[1],
		f->payload[0] + f->payload[1], f->packets[0], f->packets[1], f->ip_bytes[0],
		f->ip_bytes[1], f->payload[0], f->payload[1], f->first_ns / NS_PER_SEC,
		f->first_ns % NS_PER_SEC, f->first_ns, (double)(f->last_ns - f->first_ns) / 1e9,
		f->blocks, f->oversize, f->reordered, f->cells_refused);
}

static void end_field(FILE *out, enum flow_end_reason why)
{
	fprintf(out, ",\"end\":\"%s\"", why == FLOW_END_IDLE ? "idle" : "input");
}

void flow_json_line(FILE *out, const struct flow *f, enum flow_end_reason why, const char *file)
{
	flow_json_fields(out, f, file);
	end_field(out, why);
	fputs(",\"type\":\"flow\"}\n", out);
}

/* {"voip":0.0123,...} over the model's classes. */
static void probs_object(FILE *out, const struct classifier *c, const float *p)
{
	const struct model *m = classifier_model(c);
	uint32_t i;

	fputc('{', out);
	for (i = 0; i < m->n_classes; i++) {
		if (i)
			fputc(',', out);
		json_write_string(out, m->classes[i]);
		fprintf(out, ":%.4f", (double)p[i]);
	}
	fputc('}', out);
}

void verdict_json_fields(FILE *out, const struct classifier *c, const struct flow_verdict *v)
{
	const struct model *m = classifier_model(c);
	uint32_t i;

	fputs(",\"class\":", out);
	json_write_string(out, classifier_class_name(c, v->cls));
	fputs(",\"top\":", out);
	json_write_string(out, classifier_class_name(c, v->top));
	fprintf(out,
		",\"confidence\":%.4f,\"reason\":\"%s\",\"early\":%s,\"blocks_voting\":%u"
		",\"blocks_sparse\":%u,\"votes_other\":%u,\"probs\":",
		(double)v->confidence, classify_reason_name(v->reason), v->early ? "true" : "false",
		v->blocks_voting, v->blocks_sparse, v->votes_other);
	probs_object(out, c, v->prob);
	fputs(",\"votes\":{", out);
	for (i = 0; i < m->n_classes; i++) {
		if (i)
			fputc(',', out);
		json_write_string(out, m->classes[i]);
		fprintf(out, ":%u", v->votes[i]);
	}
	fputc('}', out);
}

void verdict_json_line(FILE *out, const struct classifier *c, const struct flow *f,
		       enum flow_end_reason why, const char *file, const struct flow_verdict *v)
{
	flow_json_fields(out, f, file);
	end_field(out, why);
	verdict_json_fields(out, c, v);
	fputs(",\"type\":\"flow\"}\n", out);
}

void block_verdict_json_line(FILE *out, const struct classifier *c, const struct block_verdict *v,
			     const char *file)
{
	const struct model *m = classifier_model(c);
	uint32_t i;

	fputc('{', out);
	if (file) {
		fputs("\"file\":", out);
		json_write_string(out, file);
		fputc(',', out);
	}
	fprintf(out,
		"\"flow_id\":%" PRIu64 ",\"block_index\":%" PRIu64 ",\"start_ns\":%" PRIu64
		",\"samples\":%u,\"early\":%s,\"class\":",
		v->flow_id, v->index, v->start_ns, v->samples, v->early ? "true" : "false");
	json_write_string(out, classifier_class_name(c, v->cls));
	fputs(",\"top\":", out);
	json_write_string(out, classifier_class_name(c, v->top));
	fprintf(out, ",\"reason\":\"%s\",\"confidence\":%.4f,\"energy\":%.4f,\"probs\":",
		classify_reason_name(v->reason), (double)v->confidence, (double)v->energy);
	probs_object(out, c, v->prob);
	fputs(",\"logits\":[", out);
	for (i = 0; i < m->n_classes; i++)
		fprintf(out, "%s%d", i ? "," : "", v->logits[i]);
	fputs("],\"type\":\"block\"}\n", out);
}
