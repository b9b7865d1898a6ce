// SPDX-License-Identifier: MIT
/*
 * test_classify.c - the classification API (core/classify.h) with small
 * hand-made models whose verdicts are known: a 2 x 2 picture and a dense
 * layer where class a lights on early small packets, b on early large
 * ones, c on late small ones.  So each block's class is chosen by its
 * samples, and the flow rule (votes, vote ratio, confidence, early, sparse
 * blocks and flows, rejection, the background class "other", votes weighted
 * by packets) can be checked exactly.  Also: the embedded model, bad model
 * files, samples vs CSV file vs live table (the same verdicts), bad CSV
 * rows, and no allocation per block once the accumulators exist.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/classify.h"
#include "core/flow_json.h"
#include "core/model_file.h"

/* ---- counting allocations (linked with --wrap) ---- */

static unsigned long allocs;
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);

void *__wrap_malloc(size_t n)
{
	allocs++;
	return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t m)
{
	allocs++;
	return __real_calloc(n, m);
}

void *__wrap_realloc(void *p, size_t n)
{
	allocs++;
	return __real_realloc(p, n);
}

/* ---- the hand-made models ---- */

#define SEC NS_PER_SEC
#define T0 (1700000000 * SEC)
enum { A, B, C };

static char tmpdir[] = "/tmp/fpt-classify-XXXXXX";

/* res 2, one channel (both directions), flatten, dense 4 -> 3.  Pixel
 * (x, y) is time half x, size half y: a = (0, 0), b = (0, 1), c = (1, 0).
 * One packet gives logit 50 * scale for its class, 0 for the others. */
static char *write_model(const char *name, float out_scale, uint32_t extra_classes,
			 const char *third)
{
	static char *names[CLASSIFY_MAX_CLASSES + 8] = { "a", "b", "c" };
	static char more[CLASSIFY_MAX_CLASSES + 8][8];
	uint32_t n = 3 + extra_classes, i;
	int8_t *w = calloc(4 * n, 1);
	int32_t *bias = calloc(n, 4), *mult = calloc(n, 4), *shift = calloc(n, 4);
	struct model_layer l[2];
	struct model m;
	char err[256], *path;
	uint8_t *buf;
	size_t len;
	FILE *f;

	names[2] = (char *)(third ? third : "c");
	for (i = 3; i < n; i++) {
		snprintf(more[i], sizeof(more[i]), "x%u", i);
		names[i] = more[i];
	}
	memset(&m, 0, sizeof(m));
	memset(l, 0, sizeof(l));
	m.name = "hand";
	m.version = "1";
	m.n_classes = n;
	m.classes = names;
	m.res = 2;
	m.in_channels = 1;
	m.dirs = MODEL_DIR_BOTH;
	m.window_ns = 60 * SEC;
	m.size_max = 1500;
	m.input_scale = 1.0f / 16;
	for (i = 0; i < 256; i++)
		m.lut[i] = (int8_t)(i < 127 ? i : 127);
	m.n_layers = 2;
	m.layers = l;
	l[0].type = MODEL_FLATTEN;
	l[0].in_c = 1;
	l[0].in_h = l[0].in_w = 2;
	l[0].out_c = 4;
	l[0].out_h = l[0].out_w = 1;
	l[0].out_scale = m.input_scale;
	l[1].type = MODEL_DENSE;
	l[1].in_c = 4;
	l[1].in_h = l[1].in_w = 1;
	l[1].out_c = n;
	l[1].out_h = l[1].out_w = 1;
	l[1].out_scale = out_scale;
	/* pixel index y * 2 + x */
	w[A * 4 + 0] = 100;
	w[B * 4 + 2] = 100;
	w[C * 4 + 1] = 100;
	for (i = 0; i < n; i++)
		mult[i] = 1 << 30; /* out = acc / 2 */
	l[1].weight = w;
	l[1].bias = bias;
	l[1].mult = mult;
	l[1].shift = shift;
	if (model_check(&m, err, sizeof(err)))
		fail_msg("hand model refused: %s", err);
	assert_int_equal(model_encode(&m, &buf, &len), 0);
	assert_true(asprintf(&path, "%s/%s", tmpdir, name) > 0);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	fclose(f);
	free(buf);
	free(w);
	free(bias);
	free(mult);
	free(shift);
	return path;
}

static char *sharp_path, *soft_path, *many_path, *bg_path;

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(tmpdir))
		return -1;
	sharp_path = write_model("sharp.fpcnn", 0.25f, 0, NULL); /* one packet: logit 12.5 */
	soft_path = write_model("soft.fpcnn", 0.01f, 0, NULL);	 /* one packet: logit 0.5 */
	many_path = write_model("many.fpcnn", 0.25f, CLASSIFY_MAX_CLASSES, NULL);
	/* class c is the background class: never a verdict */
	bg_path = write_model("bg.fpcnn", 0.25f, 0, CLASSIFY_OTHER_NAME);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	free(sharp_path);
	free(soft_path);
	free(many_path);
	free(bg_path);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd);
}

/* The hand-made flows have one packet per block: the vote rule is tested
 * with every block voting (min_block_packets 0); the evidence rule with
 * open_cfg(). */
static struct classifier *open_cfg(struct classifier_config *cfg)
{
	struct classifier *c;
	char err[256];

	c = classifier_new(cfg, err, sizeof(err));
	if (!c)
		fail_msg("classifier_new: %s", err);
	return c;
}

static struct classifier *open_model(const char *path, float ratio, float min_conf)
{
	struct classifier_config cfg;
	struct classifier *c;
	char err[256];

	classifier_config_default(&cfg);
	cfg.min_block_packets = 0;
	cfg.model_path = path;
	if (ratio >= 0)
		cfg.vote_ratio = ratio;
	if (min_conf >= 0)
		cfg.min_confidence = min_conf;
	c = classifier_new(&cfg, err, sizeof(err));
	if (!c)
		fail_msg("classifier_new: %s", err);
	return c;
}

/* Samples of a flow whose block k has class seq[k], then one packet in
 * block n so that blocks 0 .. n-1 are complete (the last one is partial).
 * Flow time starts at the first packet: a 1500-byte packet (counted, never
 * drawn) at T0 sets it whatever the first class is. */
static size_t flow_of(const char *seq, struct classify_sample *s, bool tail)
{
	size_t n = 0, k;

	s[n++] = (struct classify_sample){ T0, PKT_MAX_SIZE, FLOW_DIR_FWD };

	for (k = 0; seq[k]; k++) {
		uint64_t t = T0 + k * 60 * SEC;

		switch (seq[k]) {
		case 'a':
			s[n++] = (struct classify_sample){ t + 1 * SEC, 100, FLOW_DIR_FWD };
			break;
		case 'b':
			s[n++] = (struct classify_sample){ t + 2 * SEC, 1000, FLOW_DIR_REV };
			break;
		case 'c':
			s[n++] = (struct classify_sample){ t + 40 * SEC, 100, FLOW_DIR_FWD };
			break;
		case 'd': /* late and large: no class lights, logits 0 */
			s[n++] = (struct classify_sample){ t + 40 * SEC, 1000, FLOW_DIR_FWD };
			break;
		}
	}
	if (tail)
		s[n++] = (struct classify_sample){ T0 + k * 60 * SEC + SEC, 1000, FLOW_DIR_FWD };
	return n;
}

static void verdict_of(struct classifier *c, const char *seq, bool tail, struct flow_verdict *v)
{
	struct classify_sample s[80];
	struct block_verdict bv[64];
	size_t n = flow_of(seq, s, tail), nb, k;

	assert_int_equal(classifier_samples(c, s, n, 0, bv, 64, &nb, v), 0);
	assert_int_equal(nb, strlen(seq) + tail);
	for (k = 0; k < strlen(seq); k++) {
		assert_int_equal(bv[k].cls, (uint32_t)(seq[k] - 'a'));
		assert_int_equal(bv[k].index, k);
		assert_int_equal(bv[k].early, tail ? false : k + 1 == strlen(seq));
	}
}

/* ---- tests ---- */

static void test_embedded(void **state)
{
	struct classifier_config cfg;
	struct flow_config fc;
	struct classifier *c;
	const struct model *m;
	char err[256];
	size_t len;

	(void)state;
	assert_non_null(classifier_default_model(&len));
	assert_true(len > 64);
	classifier_config_default(&cfg);
	c = classifier_new(&cfg, err, sizeof(err));
	assert_non_null(c);
	m = classifier_model(c);
	assert_true(m->n_classes >= 2 && m->n_classes <= CLASSIFY_MAX_CLASSES);
	flow_config_default(&fc);
	fc.res = 7;
	classifier_flow_config(c, &fc);
	assert_int_equal(fc.res, m->res);
	assert_int_equal(fc.window_ns, m->window_ns);
	assert_int_equal(fc.hop_ns, m->window_ns);
	assert_string_equal(classifier_model_source(c), "embedded:model/default.fpcnn");
	assert_string_equal(classifier_class_name(c, CLASSIFY_UNKNOWN), "unknown");
	assert_string_equal(classifier_class_name(c, 0), m->classes[0]);
	/* the automatic minimum confidence: twice chance */
	assert_float_equal(classifier_config(c)->min_confidence,
			   m->n_classes >= 4 ? 2.0f / (float)m->n_classes : 0.5f, 1e-6);
	classifier_free(c);
}

static void test_votes(void **state)
{
	struct classifier *c = open_model(sharp_path, -1, -1);
	struct flow_verdict v;

	(void)state;
	verdict_of(c, "aaa", true, &v);
	assert_int_equal(v.cls, A);
	assert_int_equal(v.reason, CLASSIFY_OK);
	assert_false(v.early);
	assert_int_equal(v.blocks, 4);
	assert_int_equal(v.blocks_voting, 3); /* the partial tail does not vote */
	assert_int_equal(v.votes[A], 3);
	assert_true(v.confidence > 0.99f);
	/* 1 vote against 2: 1 <= 0.7 x 2, a wins */
	verdict_of(c, "aba", true, &v);
	assert_int_equal(v.cls, A);
	assert_int_equal(v.votes[B], 1);
	/* 1 against 1: disagree; top is the larger summed probability (equal:
	 * lower index) */
	verdict_of(c, "ba", true, &v);
	assert_int_equal(v.cls, CLASSIFY_UNKNOWN);
	assert_int_equal(v.reason, CLASSIFY_DISAGREE);
	assert_int_equal(v.top, A);
	/* 7 against 10 is not more than 0.7: c wins; 8 against 10 is */
	verdict_of(c, "cacacacacacacaccc", true, &v);
	assert_int_equal(v.cls, C);
	verdict_of(c, "cacacacacacacacacc", true, &v);
	assert_int_equal(v.cls, CLASSIFY_UNKNOWN);
	assert_int_equal(v.reason, CLASSIFY_DISAGREE);
	assert_int_equal(v.top, C);
	/* three classes: the runner-up counts, not the sum of the others */
	verdict_of(c, "aaaabbc", true, &v);
	assert_int_equal(v.cls, A);
	classifier_free(c);

	/* vote ratio 1: only a tie is unknown */
	c = open_model(sharp_path, 1.0f, -1);
	verdict_of(c, "cacacacacacacacacac", true, &v);
	assert_int_equal(v.cls, C);
	classifier_free(c);
}

static void test_early(void **state)
{
	struct classifier *c = open_model(sharp_path, -1, -1);
	const struct classify_stats *st = classifier_stats(c);
	struct flow_verdict v;

	(void)state;
	/* one partial block: an early verdict */
	verdict_of(c, "b", false, &v);
	assert_int_equal(v.cls, B);
	assert_true(v.early);
	assert_int_equal(v.blocks_voting, 1);
	assert_int_equal(st->flows_early, 1);
	assert_int_equal(st->blocks_early, 1);
	/* the observation went on past the block: it is complete, not early */
	{
		struct classify_sample s[4];
		size_t n = flow_of("b", s, false), nb;
		struct block_verdict bv[2];

		assert_int_equal(classifier_samples(c, s, n, T0 + 61 * SEC, bv, 2, &nb, &v), 0);
		assert_int_equal(nb, 1);
		assert_false(bv[0].early);
		assert_false(v.early);
		assert_int_equal(v.cls, B);
		assert_int_equal(classifier_samples(c, s, n, T0 + 59 * SEC, bv, 2, &nb, &v), 0);
		assert_true(v.early);
	}
	/* complete blocks exist: they vote, the partial one does not */
	verdict_of(c, "aab", false, &v);
	assert_int_equal(v.cls, A);
	assert_false(v.early);
	assert_int_equal(v.blocks_voting, 2);
	assert_int_equal(v.votes[B], 0);
	classifier_free(c);
}

static void test_low_confidence(void **state)
{
	struct classifier *c = open_model(soft_path, -1, -1);
	struct flow_verdict v;

	(void)state;
	/* logits (0.5, 0, 0): p = 0.45 < 0.5 (3 classes: 0.5) */
	verdict_of(c, "aa", true, &v);
	assert_int_equal(v.cls, CLASSIFY_UNKNOWN);
	assert_int_equal(v.reason, CLASSIFY_LOW_CONFIDENCE);
	assert_int_equal(v.top, A);
	assert_float_equal(v.confidence, 0.4519f, 1e-3);
	assert_float_equal(v.prob[A] + v.prob[B] + v.prob[C], 1.0f, 1e-5);
	assert_int_equal(classifier_stats(c)->flows_unknown[CLASSIFY_LOW_CONFIDENCE], 1);
	classifier_free(c);

	c = open_model(soft_path, -1, 0.4f);
	verdict_of(c, "aa", true, &v);
	assert_int_equal(v.cls, A);
	classifier_free(c);
}

/*
 * Like flow_of(), with reps[k] packets in block k (at the same pixel, 1 ms
 * apart), and a tail of tail_reps packets (0: none).  s holds enough.
 */
static size_t flow_reps(const char *seq, const unsigned *reps, unsigned tail_reps,
			struct classify_sample *s)
{
	static const struct {
		uint64_t at;
		uint32_t size;
	} px[] = {
		['a' - 'a'] = { 1, 100 },
		['b' - 'a'] = { 2, 1000 },
		['c' - 'a'] = { 40, 100 },
		['d' - 'a'] = { 40, 1000 },
	};
	size_t n = 0, k;
	unsigned r;

	s[n++] = (struct classify_sample){ T0, PKT_MAX_SIZE, FLOW_DIR_FWD };
	for (k = 0; seq[k]; k++)
		for (r = 0; r < reps[k]; r++)
			s[n++] = (struct classify_sample){
				T0 + (k * 60 + px[seq[k] - 'a'].at) * SEC + r * 1000000ULL,
				px[seq[k] - 'a'].size, FLOW_DIR_FWD
			};
	for (r = 0; r < tail_reps; r++)
		s[n++] = (struct classify_sample){ T0 + (k * 60 + 1) * SEC + r * 1000000ULL, 1000,
						   FLOW_DIR_FWD };
	return n;
}

static void verdict_reps(struct classifier *c, const char *seq, const unsigned *reps,
			 unsigned tail_reps, struct block_verdict *bv, size_t *nb,
			 struct flow_verdict *v)
{
	struct classify_sample s[400];

	assert_int_equal(classifier_samples(c, s, flow_reps(seq, reps, tail_reps, s), 0, bv, 16, nb,
					    v),
			 0);
}

/* Minimum evidence: blocks below min_block_packets do not vote. */
static void test_sparse(void **state)
{
	struct classifier_config cfg;
	struct classifier *c;
	struct block_verdict bv[16];
	struct flow_verdict v;
	size_t nb;

	(void)state;
	classifier_config_default(&cfg);
	assert_int_equal(cfg.min_block_packets, CLASSIFY_MIN_BLOCK_PACKETS);
	cfg.model_path = sharp_path;
	cfg.min_block_packets = 3;
	c = open_cfg(&cfg);
	/* every block below 3 packets: unknown (sparse), blocks still reported */
	verdict_reps(c, "aaa", (unsigned[]){ 2, 1, 2 }, 1, bv, &nb, &v);
	assert_int_equal(nb, 4);
	assert_int_equal(v.cls, CLASSIFY_UNKNOWN);
	assert_int_equal(v.reason, CLASSIFY_SPARSE);
	assert_string_equal(classify_reason_name(v.reason), "sparse");
	assert_int_equal(v.blocks, 4);
	assert_int_equal(v.blocks_sparse, 4);
	assert_int_equal(v.blocks_voting, 0);
	assert_false(v.early);
	assert_int_equal(bv[0].reason, CLASSIFY_SPARSE);
	assert_int_equal(bv[0].cls, CLASSIFY_UNKNOWN);
	assert_int_equal(bv[0].top, A); /* what the model said, for the record */
	assert_int_equal(bv[0].samples, 2);
	/* b, b are sparse, a has 3 packets: a alone votes (every block: b) */
	verdict_reps(c, "abb", (unsigned[]){ 3, 2, 2 }, 1, bv, &nb, &v);
	assert_int_equal(v.cls, A);
	assert_int_equal(v.reason, CLASSIFY_OK);
	assert_int_equal(v.blocks_voting, 1);
	assert_int_equal(v.blocks_sparse, 3);
	assert_int_equal(v.votes[B], 0);
	assert_int_equal(bv[0].reason, CLASSIFY_OK);
	assert_int_equal(bv[0].cls, A);
	/* exactly N packets vote */
	verdict_reps(c, "b", (unsigned[]){ 3 }, 1, bv, &nb, &v);
	assert_int_equal(v.cls, B);
	assert_false(v.early);
	/* early: a flow shorter than a window votes with its partial block, if
	 * it has N packets; else it is sparse, and still early */
	verdict_reps(c, "c", (unsigned[]){ 3 }, 0, bv, &nb, &v);
	assert_int_equal(v.cls, C);
	assert_true(v.early);
	assert_int_equal(v.blocks_voting, 1);
	verdict_reps(c, "c", (unsigned[]){ 2 }, 0, bv, &nb, &v);
	assert_int_equal(v.cls, CLASSIFY_UNKNOWN);
	assert_int_equal(v.reason, CLASSIFY_SPARSE);
	assert_true(v.early);
	/* complete blocks all sparse, the partial one is not: it votes, early */
	verdict_reps(c, "aab", (unsigned[]){ 1, 1, 5 }, 0, bv, &nb, &v);
	assert_int_equal(v.cls, B);
	assert_true(v.early);
	assert_int_equal(v.blocks_voting, 1);
	assert_int_equal(classifier_stats(c)->flows_unknown[CLASSIFY_SPARSE], 2);
	assert_true(classifier_stats(c)->blocks_sparse >= 9);
	classifier_free(c);
	/* the same flow with every block voting: b wins */
	c = open_model(sharp_path, -1, -1);
	verdict_reps(c, "abb", (unsigned[]){ 3, 2, 2 }, 1, bv, &nb, &v);
	assert_int_equal(v.cls, B);
	classifier_free(c);
}

/* Rejection: a low max probability or a high energy is 'other'; more than
 * half of the votes 'other' makes the flow unknown (other). */
static void test_other(void **state)
{
	struct classifier_config cfg;
	struct classifier *c;
	struct block_verdict bv[16];
	struct flow_verdict v;
	size_t nb;

	(void)state;
	classifier_config_default(&cfg);
	cfg.min_block_packets = 0;
	cfg.model_path = soft_path;
	/* soft model: 1 packet p = 0.452 (rejected), 3 packets p = 0.640 */
	cfg.reject_prob = 0.5f;
	c = open_cfg(&cfg);
	verdict_reps(c, "aaa", (unsigned[]){ 1, 1, 3 }, 1, bv, &nb, &v);
	assert_int_equal(bv[0].reason, CLASSIFY_OTHER);
	assert_int_equal(bv[0].cls, CLASSIFY_UNKNOWN);
	assert_int_equal(bv[0].top, A);
	assert_int_equal(bv[2].reason, CLASSIFY_OK);
	assert_int_equal(v.cls, CLASSIFY_UNKNOWN);
	assert_int_equal(v.reason, CLASSIFY_OTHER);
	assert_int_equal(v.votes_other, 2);
	assert_int_equal(v.votes[A], 1);
	assert_int_equal(v.blocks_voting, 3);
	assert_int_equal(v.top, A);
	/* one of three: a class */
	verdict_reps(c, "aaa", (unsigned[]){ 1, 3, 3 }, 1, bv, &nb, &v);
	assert_int_equal(v.cls, A);
	assert_int_equal(v.votes_other, 1);
	assert_float_equal(v.confidence, (0.4519f + 2 * 0.6403f) / 3, 1e-3);
	/* exactly half is not more than half */
	verdict_reps(c, "aa", (unsigned[]){ 1, 3 }, 1, bv, &nb, &v);
	assert_int_equal(v.reason, CLASSIFY_OK);
	assert_int_equal(v.cls, A);
	assert_int_equal(classifier_stats(c)->flows_unknown[CLASSIFY_OTHER], 1);
	/* 4 voting blocks and the 3 partial tails (1 packet each) */
	assert_int_equal(classifier_stats(c)->blocks_other, 7);
	classifier_free(c);

	/* energy: a picture no class lights (logits 0) has -log 3; one that
	 * lights a has about -12.5 */
	classifier_config_default(&cfg);
	cfg.min_block_packets = 0;
	cfg.model_path = sharp_path;
	cfg.reject_energy = -5.0f;
	c = open_cfg(&cfg);
	verdict_reps(c, "dda", (unsigned[]){ 1, 1, 1 }, 1, bv, &nb, &v);
	assert_float_equal(bv[0].energy, -logf(3), 1e-5);
	assert_float_equal(bv[2].energy, -12.5f, 1e-3);
	assert_int_equal(bv[0].reason, CLASSIFY_OTHER);
	assert_int_equal(bv[2].reason, CLASSIFY_OK);
	assert_int_equal(v.reason, CLASSIFY_OTHER);
	verdict_reps(c, "ada", (unsigned[]){ 1, 1, 1 }, 1, bv, &nb, &v);
	assert_int_equal(v.cls, A);
	classifier_free(c);
	/* no rejection by default: logits 0 still give a class */
	c = open_model(sharp_path, -1, 0.2f);
	verdict_reps(c, "dd", (unsigned[]){ 1, 1 }, 1, bv, &nb, &v);
	assert_int_equal(bv[0].reason, CLASSIFY_OK);
	assert_int_equal(v.cls, A);
	classifier_free(c);
	/* bad thresholds are refused */
	classifier_config_default(&cfg);
	cfg.reject_prob = 1.5f;
	{
		char err[256];

		assert_null(classifier_new(&cfg, err, sizeof(err)));
		assert_non_null(strstr(err, "rejection"));
		cfg.reject_prob = 0;
		cfg.reject_energy = NAN;
		assert_null(classifier_new(&cfg, err, sizeof(err)));
	}
}

/* A model with a background class "other": its blocks are no class. */
static void test_background_class(void **state)
{
	struct classifier *c = open_model(bg_path, -1, -1);
	struct block_verdict bv[16];
	struct flow_verdict v;
	size_t nb;

	(void)state;
	verdict_reps(c, "cca", (unsigned[]){ 1, 1, 1 }, 1, bv, &nb, &v);
	assert_int_equal(bv[0].reason, CLASSIFY_OTHER);
	assert_int_equal(bv[0].cls, CLASSIFY_UNKNOWN);
	assert_int_equal(bv[0].top, C);
	assert_string_equal(classifier_class_name(c, bv[0].top), "other");
	assert_int_equal(v.cls, CLASSIFY_UNKNOWN);
	assert_int_equal(v.reason, CLASSIFY_OTHER);
	assert_int_equal(v.top, A); /* never the background class */
	assert_int_equal(v.votes[C], 0);
	assert_int_equal(v.votes_other, 2);
	/* all of it background: still no class as top */
	verdict_reps(c, "cc", (unsigned[]){ 1, 1 }, 1, bv, &nb, &v);
	assert_int_equal(v.reason, CLASSIFY_OTHER);
	assert_true(v.top != C);
	/* a minority of background: the class */
	verdict_reps(c, "aac", (unsigned[]){ 1, 1, 1 }, 1, bv, &nb, &v);
	assert_int_equal(v.cls, A);
	assert_int_equal(v.votes_other, 1);
	classifier_free(c);
}

/* Votes weighted by packets (off by default). */
static void test_weight(void **state)
{
	struct classifier_config cfg;
	struct classifier *c;
	struct block_verdict bv[16];
	struct flow_verdict v;
	size_t nb;

	(void)state;
	/* unweighted: 1 block against 1, disagree */
	c = open_model(sharp_path, -1, -1);
	assert_false(classifier_config(c)->weight_packets);
	verdict_reps(c, "ab", (unsigned[]){ 1, 5 }, 1, bv, &nb, &v);
	assert_int_equal(v.reason, CLASSIFY_DISAGREE);
	classifier_free(c);
	/* weighted: 1 packet against 5, b */
	classifier_config_default(&cfg);
	cfg.min_block_packets = 0;
	cfg.model_path = sharp_path;
	cfg.weight_packets = true;
	c = open_cfg(&cfg);
	verdict_reps(c, "ab", (unsigned[]){ 1, 5 }, 1, bv, &nb, &v);
	assert_int_equal(v.cls, B);
	assert_int_equal(v.votes[A], 1);
	assert_int_equal(v.votes[B], 5);
	assert_int_equal(v.blocks_voting, 2);
	assert_float_equal(v.confidence, 5.0f / 6, 1e-3); /* the weighted mean */
	/* 4 against 5 is more than 0.7: disagree */
	verdict_reps(c, "ab", (unsigned[]){ 4, 5 }, 1, bv, &nb, &v);
	assert_int_equal(v.reason, CLASSIFY_DISAGREE);
	assert_int_equal(v.top, B);
	classifier_free(c);
}

static void test_no_blocks(void **state)
{
	struct classifier *c = open_model(sharp_path, -1, -1);
	struct classify_sample s[2] = { { T0, 1500, 0 }, { T0 + SEC, 9000, 1 } };
	struct flow_verdict v;
	size_t nb = 99;

	(void)state;
	/* only packets of 1500 bytes or more: in the flow, never drawn */
	assert_int_equal(classifier_samples(c, s, 2, 0, NULL, 0, &nb, &v), 0);
	assert_int_equal(nb, 0);
	assert_int_equal(v.cls, CLASSIFY_UNKNOWN);
	assert_int_equal(v.reason, CLASSIFY_SPARSE);
	assert_int_equal(v.top, CLASSIFY_UNKNOWN);
	assert_string_equal(classify_reason_name(v.reason), "sparse");
	assert_int_equal(classify_reason_parse("sparse"), CLASSIFY_SPARSE);
	assert_int_equal(classify_reason_parse("no_blocks"), -1);
	classifier_free(c);
}

static void test_picture(void **state)
{
	struct classifier *c = open_model(sharp_path, -1, -1);
	uint8_t pic[4] = { 0, 0, 0, 3 }; /* (1, 1): no class lights: logits 0 */
	struct block_verdict v;

	(void)state;
	assert_int_equal(classifier_picture(c, pic, &v), 0);
	assert_int_equal(v.cls, A); /* ties: lowest index */
	assert_float_equal(v.confidence, 1.0f / 3, 1e-6);
	pic[2] = 1;
	assert_int_equal(classifier_picture(c, pic, &v), 0);
	assert_int_equal(v.cls, B);
	assert_int_equal(v.logits[B], 50);
	classifier_free(c);
}

static void test_bad_models(void **state)
{
	struct classifier_config cfg;
	char err[512], path[256], cmd[600];
	FILE *f;
	long len;
	uint8_t *buf;

	(void)state;
	classifier_config_default(&cfg);
	snprintf(path, sizeof(path), "%s/missing.fpcnn", tmpdir);
	cfg.model_path = path;
	assert_null(classifier_new(&cfg, err, sizeof(err)));
	assert_non_null(strstr(err, path));
	assert_null(strchr(err, '\n'));

	/* truncated */
	f = fopen(sharp_path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	buf = malloc((size_t)len);
	assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	snprintf(path, sizeof(path), "%s/cut.fpcnn", tmpdir);
	f = fopen(path, "wb");
	fwrite(buf, 1, (size_t)len / 2, f);
	fclose(f);
	err[0] = 0;
	assert_null(classifier_new(&cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "cut.fpcnn"));
	assert_null(strchr(err, '\n'));

	/* one byte changed: the checksum */
	buf[len / 2] ^= 0x40;
	snprintf(path, sizeof(path), "%s/flip.fpcnn", tmpdir);
	f = fopen(path, "wb");
	fwrite(buf, 1, (size_t)len, f);
	fclose(f);
	err[0] = 0;
	assert_null(classifier_new(&cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "flip.fpcnn"));
	free(buf);

	/* more classes than the classifier keeps per flow */
	cfg.model_path = many_path;
	assert_null(classifier_new(&cfg, err, sizeof(err)));
	assert_int_equal(errno, ENOTSUP);
	assert_non_null(strstr(err, "classes"));

	/* thresholds out of range */
	classifier_config_default(&cfg);
	cfg.vote_ratio = 1.5f;
	assert_null(classifier_new(&cfg, err, sizeof(err)));
	assert_int_equal(errno, EINVAL);
	snprintf(cmd, sizeof(cmd), "%s", err);
	assert_non_null(strstr(cmd, "vote ratio"));
}

/* Write samples as the project's CSV, with bad rows in between. */
static void write_csv(const char *path, const struct classify_sample *s, size_t n, bool bad)
{
	FILE *f = fopen(path, "w");
	size_t i;

	assert_non_null(f);
	fprintf(f, "# flowpic samples v1\ntime,proto,src,sport,dst,dport,size\n");
	for (i = 0; i < n; i++) {
		bool fwd = s[i].dir == FLOW_DIR_FWD;

		fprintf(f, "%llu.%09llu,17,%s,%u,%s,%u,%u\n",
			(unsigned long long)(s[i].ts_ns / SEC),
			(unsigned long long)(s[i].ts_ns % SEC), fwd ? "10.0.0.1" : "10.0.0.2",
			fwd ? 40000 : 443, fwd ? "10.0.0.2" : "10.0.0.1", fwd ? 443 : 40000,
			s[i].size);
		if (bad && i == 1)
			fprintf(f, "not-a-time,17,10.0.0.1,1,10.0.0.2,2,5\n"
				   "1700000000.5,17,10.0.0.1,99999,10.0.0.2,2,5\n");
	}
	fclose(f);
}

struct collected {
	struct flow_verdict v[8];
	struct block_verdict b[64];
	int nflows, nblocks;
};

static void on_file_block(void *ctx, const struct classifier *c, const struct flow *f,
			  const struct block_verdict *v)
{
	struct collected *x = ctx;

	(void)c;
	assert_int_equal(v->flow_id, f->id);
	if (x->nblocks < 64)
		x->b[x->nblocks++] = *v;
}

static void on_file_flow(void *ctx, const struct classifier *c, const struct flow *f,
			 enum flow_end_reason why, const struct flow_verdict *v)
{
	struct collected *x = ctx;

	(void)c;
	(void)why;
	assert_int_equal(v->flow_id, f->id);
	if (x->nflows < 8)
		x->v[x->nflows++] = *v;
}

static void test_csv_file(void **state)
{
	struct classifier *c = open_model(sharp_path, -1, -1);
	struct collected x;
	struct classify_callbacks cb = { .block = on_file_block, .flow = on_file_flow, .ctx = &x };
	struct classify_file_result res;
	struct classify_sample s[64];
	struct block_verdict bv[64];
	struct flow_verdict v;
	char path[256];
	size_t n = flow_of("abbcb", s, true), nb, k;

	(void)state;
	memset(&x, 0, sizeof(x)); /* compared with memcmp: padding too */
	assert_int_equal(classifier_samples(c, s, n, 0, bv, 64, &nb, &v), 0);
	snprintf(path, sizeof(path), "%s/flow.csv", tmpdir);
	write_csv(path, s, n, true);
	assert_int_equal(classifier_csv_file(c, path, NULL, &cb, &res), 0);
	assert_true(res.opened);
	assert_false(res.partial);
	assert_int_equal(res.kind, SOURCE_CSV);
	/* the bad rows are counted, the rest classified */
	assert_int_equal(res.counts.skipped[SKIP_CSV_BAD_LINE], 2);
	assert_int_equal(res.counts.in_flows, n);
	/* the same verdicts as from the samples */
	assert_int_equal(x.nflows, 1);
	assert_int_equal(x.nblocks, (int)nb);
	for (k = 0; k < nb; k++) {
		assert_int_equal(x.b[k].cls, bv[k].cls);
		assert_int_equal(x.b[k].early, bv[k].early);
		assert_memory_equal(x.b[k].logits, bv[k].logits, sizeof(bv[k].logits));
	}
	assert_int_equal(x.v[0].cls, B);
	assert_int_equal(x.v[0].cls, v.cls);
	assert_int_equal(x.v[0].blocks_voting, v.blocks_voting);
	assert_float_equal(x.v[0].confidence, v.confidence, 1e-6);

	/* the same with a worker thread: the same verdicts, in the same order */
	{
		struct classifier_config cfg;
		struct collected y;
		struct classify_callbacks cby = { .block = on_file_block,
						  .flow = on_file_flow,
						  .ctx = &y };
		struct classifier *cw;
		char err[256];

		memset(&y, 0, sizeof(y));
		classifier_config_default(&cfg);
		cfg.model_path = sharp_path;
		cfg.min_block_packets = 0; /* as open_model() */
		cfg.workers = 1;
		cw = classifier_new(&cfg, err, sizeof(err));
		assert_non_null(cw);
		assert_int_equal(classifier_file(cw, path, NULL, &cby, &res), 0);
		assert_int_equal(y.nflows, x.nflows);
		assert_int_equal(y.nblocks, x.nblocks);
		assert_memory_equal(y.b, x.b, sizeof(x.b[0]) * (size_t)x.nblocks);
		assert_memory_equal(y.v, x.v, sizeof(x.v[0]) * (size_t)x.nflows);
		assert_int_equal(classifier_stats(cw)->blocks, (uint64_t)x.nblocks);
		classifier_free(cw);
		cfg.workers = 2;
		assert_null(classifier_new(&cfg, err, sizeof(err)));
	}
	/* the wrong kind for the seed-named helpers; a missing file */
	assert_int_equal(classifier_pcap_file(c, path, NULL, &cb, &res), -EINVAL);
	assert_non_null(strstr(res.error, "not a pcap"));
	assert_false(res.opened);
	snprintf(path, sizeof(path), "%s/none.pcap", tmpdir);
	assert_true(classifier_file(c, path, NULL, &cb, &res) < 0);
	assert_false(res.opened);
	assert_non_null(strstr(res.error, "none.pcap"));
	classifier_free(c);
}

/* The live way: a flow table's events, many flows ending in any order,
 * and no allocation per block or flow once the accumulators exist. */
struct live {
	struct classifier *c;
	uint64_t flows, wrong, blocks;
	unsigned long allocs_after_first;
	bool first_done;
};

static void live_block(void *ctx, const struct flow_table *ft, const struct flow *f,
		       const struct block *b)
{
	struct live *l = ctx;
	struct block_verdict v;
	unsigned long before = allocs;

	assert_int_equal(classifier_block(l->c, ft, f, b, &v), 0);
	if (l->first_done)
		l->allocs_after_first += allocs - before;
	l->first_done = true;
	l->blocks++;
}

static void live_end(void *ctx, const struct flow_table *ft, const struct flow *f,
		     enum flow_end_reason why)
{
	struct live *l = ctx;
	struct flow_verdict v;
	unsigned long before = allocs;
	uint32_t want = f->key.port_a % 3;

	(void)why;
	classifier_flow_end(l->c, ft, f, &v);
	l->allocs_after_first += allocs - before;
	l->flows++;
	if (v.cls != want || v.early)
		l->wrong++;
}

struct live_pkt {
	uint64_t ts;
	uint32_t flow;
	uint32_t size;
};

static int live_pkt_cmp(const void *a, const void *b)
{
	const struct live_pkt *x = a, *y = b;

	return x->ts < y->ts ? -1 : x->ts > y->ts;
}

static void test_live_table(void **state)
{
	enum { NFLOWS = 3000 };
	struct live l = { .c = open_model(sharp_path, -1, -1) };
	struct flow_events ev = { .block = live_block, .flow_end = live_end, .ctx = &l };
	struct live_pkt *pk = calloc(NFLOWS * 7, sizeof(*pk));
	struct flow_config cfg;
	struct flow_table *ft;
	size_t n = 0, j;
	struct pkt p;
	uint32_t i, k;

	(void)state;
	assert_non_null(pk);
	flow_config_default(&cfg);
	classifier_flow_config(l.c, &cfg);
	cfg.max_flows = 300;
	cfg.idle_timeout_ns = 100 * SEC;
	/* 3000 flows, one starting every 1.25 s (about 270 alive at once),
	 * each with 2-4 complete blocks of class port % 3 and a tail packet;
	 * they end by idle timeout in another order than they started. */
	for (i = 0; i < NFLOWS; i++) {
		uint64_t start = T0 + (uint64_t)i * 1250000000ULL + i;
		uint32_t nblocks = 2 + i % 3, cls = (40000 + i) % 3;

		pk[n++] = (struct live_pkt){ start, i, PKT_MAX_SIZE }; /* sets flow time 0 */
		for (k = 0; k < nblocks; k++) {
			uint64_t at = cls == A ? 1 : cls == B ? 2 : 40;

			pk[n++] = (struct live_pkt){ start + (k * 60 + at) * SEC, i,
						     cls == B ? 1000 : 100 };
		}
		pk[n++] = (struct live_pkt){ start + (nblocks * 60 + 1) * SEC, i, 1000 };
	}
	qsort(pk, n, sizeof(*pk), live_pkt_cmp);
	ft = flow_table_new(&cfg, &ev);
	assert_non_null(ft);
	memset(&p, 0, sizeof(p));
	p.src[10] = p.src[11] = p.dst[10] = p.dst[11] = 0xff;
	p.src[12] = 10;
	p.dst[12] = 10;
	p.dst[15] = 1;
	p.proto = 17;
	p.dport = 53;
	for (j = 0; j < n; j++) {
		p.ts_ns = pk[j].ts;
		p.size = pk[j].size;
		p.src[14] = (uint8_t)(pk[j].flow >> 8);
		p.src[15] = (uint8_t)pk[j].flow;
		p.sport = (uint16_t)(40000 + pk[j].flow);
		assert_int_equal(flow_table_add(ft, &p), SKIP_NONE);
	}
	flow_table_flush(ft);
	assert_int_equal(flow_table_stats(ft)->flows_refused, 0);
	assert_int_equal(l.flows, NFLOWS);
	assert_int_equal(l.wrong, 0);
	assert_int_equal(l.allocs_after_first, 0);
	assert_int_equal(classifier_stats(l.c)->flows_untracked, 0);
	flow_table_free(ft);
	free(pk);
	classifier_free(l.c);
}

static void test_json_lines(void **state)
{
	struct classifier *c = open_model(sharp_path, -1, -1);
	struct classify_sample s[8];
	struct block_verdict bv[8];
	struct flow_verdict v;
	struct flow f;
	char *text = NULL;
	size_t len = 0, nb;
	FILE *out;

	(void)state;
	assert_int_equal(classifier_samples(c, s, flow_of("aa", s, true), 0, bv, 8, &nb, &v), 0);
	memset(&f, 0, sizeof(f));
	f.id = 7;
	f.key.proto = 17;
	f.blocks = 3;
	out = open_memstream(&text, &len);
	verdict_json_line(out, c, &f, FLOW_END_INPUT, "a\"b.pcap", &v);
	block_verdict_json_line(out, c, &bv[0], NULL);
	fclose(out);
	assert_non_null(strstr(text, "{\"file\":\"a\\\"b.pcap\",\"flow_id\":7,\"proto\":\"udp\""));
	assert_non_null(strstr(text, ",\"end\":\"input\",\"class\":\"a\",\"top\":\"a\","
				     "\"confidence\":1.0000,\"reason\":\"ok\",\"early\":false,"
				     "\"blocks_voting\":2,\"blocks_sparse\":0,\"votes_other\":0,"
				     "\"probs\":{\"a\":1.0000,\"b\":0.0000,"
				     "\"c\":0.0000},\"votes\":{\"a\":2,\"b\":0,\"c\":0},"
				     "\"type\":\"flow\"}\n"));
	assert_non_null(strstr(text, "{\"flow_id\":1,\"block_index\":0,"));
	assert_non_null(strstr(text, "\"class\":\"a\",\"top\":\"a\",\"reason\":\"ok\","
				     "\"confidence\":1.0000,\"energy\":-12.5000,"));
	assert_non_null(strstr(text, "\"logits\":[50,0,0],\"type\":\"block\"}\n"));
	free(text);
	classifier_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_embedded),   cmocka_unit_test(test_votes),
		cmocka_unit_test(test_early),	   cmocka_unit_test(test_low_confidence),
		cmocka_unit_test(test_no_blocks),  cmocka_unit_test(test_sparse),
		cmocka_unit_test(test_other),	   cmocka_unit_test(test_background_class),
		cmocka_unit_test(test_weight),	   cmocka_unit_test(test_picture),
		cmocka_unit_test(test_bad_models), cmocka_unit_test(test_csv_file),
		cmocka_unit_test(test_live_table), cmocka_unit_test(test_json_lines),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
