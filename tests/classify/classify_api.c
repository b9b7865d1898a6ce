// SPDX-License-Identifier: MIT
/*
 * classify_api.c - the classification API driven directly, for the
 * differential test against `flowpic classify` (test_classify.sh).
 *
 *   classify_api [--model F] [--blocks] file|pcap|csv FILE...
 *	Each file through classifier_file / classifier_pcap_file /
 *	classifier_csv_file; prints the JSON lines `flowpic classify --json
 *	[--blocks]` prints for flows and blocks (core/flow_json.h), then
 *	"# error: ..." lines for files not read whole.  Exit 0, or 1 when a
 *	file could not be read at all, 3 when one was read in part.
 *
 *   classify_api [--model F] samples FILE
 *	The seed's Classifier on each flow's own samples: every flow of FILE
 *	(whose 5-tuple makes one flow only) is classified again from its
 *	packets alone with classifier_samples(); prints one line per flow
 *	"ID CLASS CONFIDENCE EARLY BLOCKS" from both ways and "mismatch" when
 *	they differ.  Exit 0 when all agree, 4 otherwise.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/classify.h"
#include "core/flow_json.h"
#include "core/log.h"
#include "core/source.h"

struct run {
	const char *file;
	bool several, blocks;
	/* samples mode: the flows of pass 1 */
	struct seen {
		struct flow_key key;
		uint64_t id, first_ns;
		struct flow_verdict v;
	} * flows;
	size_t nflows, cap;
};

static void on_block(void *ctx, const struct classifier *c, const struct flow *f,
		     const struct block_verdict *v)
{
	struct run *r = ctx;

	(void)f;
	if (r->blocks)
		block_verdict_json_line(stdout, c, v, r->several ? r->file : NULL);
}

static void on_flow(void *ctx, const struct classifier *c, const struct flow *f,
		    enum flow_end_reason why, const struct flow_verdict *v)
{
	struct run *r = ctx;

	if (r->flows) {
		if (r->nflows == r->cap) {
			fprintf(stderr, "classify_api: more than %zu flows\n", r->cap);
			exit(1);
		}
		r->flows[r->nflows++] = (struct seen){ f->key, f->id, f->first_ns, *v };
		return;
	}
	verdict_json_line(stdout, c, f, why, r->several ? r->file : NULL, v);
}

static bool same_endpoints(const struct pkt *p, const struct flow_key *k, bool *fwd)
{
	if (p->proto != k->proto)
		return false;
	if (!memcmp(p->src, k->a, 16) && !memcmp(p->dst, k->b, 16) && p->sport == k->port_a &&
	    p->dport == k->port_b) {
		*fwd = true;
		return true;
	}
	if (!memcmp(p->src, k->b, 16) && !memcmp(p->dst, k->a, 16) && p->sport == k->port_b &&
	    p->dport == k->port_a) {
		*fwd = false;
		return true;
	}
	return false;
}

/* The same 5-tuple, whichever side started. */
static bool same_tuple(const struct flow_key *x, const struct flow_key *y)
{
	if (x->proto != y->proto)
		return false;
	if (!memcmp(x->a, y->a, 16) && !memcmp(x->b, y->b, 16) && x->port_a == y->port_a &&
	    x->port_b == y->port_b)
		return true;
	return !memcmp(x->a, y->b, 16) && !memcmp(x->b, y->a, 16) && x->port_a == y->port_b &&
	       x->port_b == y->port_a;
}

static int samples_mode(struct classifier *c, const char *path)
{
	struct run r = { .file = path, .cap = 1 << 16 };
	struct classify_callbacks cb = { .flow = on_flow, .ctx = &r };
	struct classify_file_result res;
	struct classify_sample *smp;
	struct pkt *pk;
	size_t npk = 0, cappk = 1 << 16, i, j, n;
	uint64_t end_ns = 0;
	enum skip_reason why;
	enum source_status st;
	struct source *s;
	char err[512];
	int bad = 0;

	r.flows = calloc(r.cap, sizeof(*r.flows));
	pk = malloc(cappk * sizeof(*pk));
	if (!r.flows || !pk)
		return 1;
	if (classifier_file(c, path, NULL, &cb, &res)) {
		fprintf(stderr, "%s\n", res.error);
		return 1;
	}
	s = source_open(path, err, sizeof(err));
	if (!s) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	while ((st = source_next(s, &pk[npk], &why)) != SOURCE_END && st != SOURCE_ERROR) {
		if (st != SOURCE_PACKET)
			continue;
		if (pk[npk].ts_ns > end_ns)
			end_ns = pk[npk].ts_ns;
		if (++npk == cappk) {
			cappk *= 2;
			pk = realloc(pk, cappk * sizeof(*pk));
			if (!pk)
				return 1;
		}
	}
	source_close(s);
	smp = malloc(npk * sizeof(*smp) + 1);
	if (!smp)
		return 1;
	for (i = 0; i < r.nflows; i++) {
		const struct seen *f = &r.flows[i];
		struct flow_verdict v;
		size_t twins = 0;
		bool fwd;

		for (j = 0; j < r.nflows; j++)
			twins += same_tuple(&r.flows[j].key, &f->key);
		if (twins > 1)
			continue; /* idle timeout split the 5-tuple: not one flow */
		for (j = n = 0; j < npk; j++)
			if (same_endpoints(&pk[j], &f->key, &fwd))
				smp[n++] = (struct classify_sample){ pk[j].ts_ns, pk[j].size,
								     fwd ? FLOW_DIR_FWD :
									   FLOW_DIR_REV };
		/* Observed until the capture's end, like the flow in the file. */
		if (classifier_samples(c, smp, n, end_ns, NULL, 0, NULL, &v)) {
			printf("%" PRIu64 " samples failed\n", f->id);
			bad++;
			continue;
		}
		printf("%" PRIu64 " %s %.4f %d %u | %s %.4f %d %u", f->id,
		       classifier_class_name(c, f->v.cls), (double)f->v.confidence, f->v.early,
		       f->v.blocks, classifier_class_name(c, v.cls), (double)v.confidence, v.early,
		       v.blocks);
		if (v.cls != f->v.cls || v.early != f->v.early || v.blocks != f->v.blocks ||
		    v.confidence != f->v.confidence ||
		    memcmp(v.votes, f->v.votes, sizeof(v.votes))) {
			printf(" mismatch");
			bad++;
		}
		putchar('\n');
	}
	free(smp);
	free(pk);
	free(r.flows);
	return bad ? 4 : 0;
}

int main(int argc, char **argv)
{
	struct classifier_config cfg;
	struct classifier *c;
	struct run r = { 0 };
	struct classify_callbacks cb = { .block = on_block, .flow = on_flow, .ctx = &r };
	const char *mode;
	char err[512];
	int i = 1, status = 0;

	log_init("classify_api", LOG_WARN);
	classifier_config_default(&cfg);
	for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
		if (!strcmp(argv[i], "--model") && i + 1 < argc)
			cfg.model_path = argv[++i];
		else if (!strcmp(argv[i], "--blocks"))
			r.blocks = true;
		else
			goto usage;
	}
	if (argc - i < 2)
		goto usage;
	mode = argv[i++];
	c = classifier_new(&cfg, err, sizeof(err));
	if (!c) {
		fprintf(stderr, "classify_api: %s\n", err);
		return 1;
	}
	if (!strcmp(mode, "samples")) {
		status = samples_mode(c, argv[i]);
		classifier_free(c);
		return status;
	}
	r.several = argc - i > 1;
	for (; i < argc; i++) {
		struct classify_file_result res;
		int rc;

		r.file = argv[i];
		if (!strcmp(mode, "pcap"))
			rc = classifier_pcap_file(c, argv[i], NULL, &cb, &res);
		else if (!strcmp(mode, "csv"))
			rc = classifier_csv_file(c, argv[i], NULL, &cb, &res);
		else
			rc = classifier_file(c, argv[i], NULL, &cb, &res);
		if (rc) {
			printf("# error: %s\n", res.error);
			status = !res.opened || !res.counts.records ? 1 : status ? status : 3;
		}
	}
	classifier_free(c);
	return status;
usage:
	fprintf(stderr, "usage: classify_api [--model F] [--blocks] file|pcap|csv FILE...\n"
			"       classify_api [--model F] samples FILE\n");
	return 2;
}
