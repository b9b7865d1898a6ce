// SPDX-License-Identifier: MIT
/*
 * classify.c - block and flow verdicts, incrementally; see classify.h.
 *
 * The classifier's lifecycle, its accumulator table (one per tracked flow),
 * the verdict cache of small pictures, the block and flow votes, and one
 * flow's samples.  Whole files (the reading loop and its worker thread)
 * are classify_file.c, on classifier_block() and classifier_flow_end() and
 * the two steps of classify_int.h.
 *
 * Over 700 lines on purpose: the five parts above share the classifier's
 * private state and one block path (dedupe, cache, infer, vote).
 */
#include "classify.h"

#include <errno.h>
#include <math.h> /* isnan, INFINITY: macros; the core links no libm */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classify_int.h"
#include "cnn.h"

#define EMBEDDED_NAME "embedded:model/default.fpcnn"

struct classifier {
	struct classifier_config cfg;
	struct model *m;
	struct cnn *cnn;
	char source[512];
	/* One block's cells, deduplicated through plane (0 between blocks):
	 * at most 2 * res * res distinct (x, y, dir). */
	struct cell *cells;
	uint8_t *plane;
	size_t plane_len;
	/* Flow accumulators: accs[cap] in use by id, found through an
	 * open-addressing index of 2 * cap slots (acc index + 1, 0 = empty),
	 * free ones on a stack. */
	struct classify_acc *accs;
	uint32_t *slots;
	uint32_t *free_stack;
	uint32_t cap, nslots, nfree;
	bool alloc_failed;
	uint32_t other_cls; /* the class named "other", or CLASSIFY_UNKNOWN */
	float out_scale;    /* the last layer's: logits to real values */
	/* Verdicts of small pictures (classify.h): cache_mask + 1 entries. */
	struct cache_entry *cache;
	uint32_t cache_mask;
	struct classify_stats stats;
};

/* A picture of at most CLASSIFY_CACHE_CELLS pixels and its verdict.  A
 * pixel is (channel << 30 | y << 19 | x << 8 | count): x, y < 2048. */
struct cache_entry {
	uint32_t key[CLASSIFY_CACHE_CELLS];
	uint8_t n; /* pixels in key; 0: empty */
	uint8_t cls;
	int8_t logits[CLASSIFY_MAX_CLASSES];
	float prob[CLASSIFY_MAX_CLASSES];
};

static const char *const reason_names[CLASSIFY_REASON_COUNT] = {
	[CLASSIFY_OK] = "ok",
	[CLASSIFY_OTHER] = "other",
	[CLASSIFY_SPARSE] = "sparse",
	[CLASSIFY_DISAGREE] = "disagree",
	[CLASSIFY_LOW_CONFIDENCE] = "low_confidence",
	[CLASSIFY_UNTRACKED] = "untracked",
};

const char *classify_reason_name(enum classify_reason r)
{
	return (unsigned int)r < CLASSIFY_REASON_COUNT ? reason_names[r] : "?";
}

int classify_reason_parse(const char *name)
{
	int r;

	for (r = 0; r < CLASSIFY_REASON_COUNT; r++)
		if (!strcmp(name, reason_names[r]))
			return r;
	return -1;
}

void classifier_config_default(struct classifier_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->vote_ratio = CLASSIFY_VOTE_RATIO;
	cfg->min_confidence = CLASSIFY_MIN_CONFIDENCE_AUTO;
	cfg->cache_entries = CLASSIFY_CACHE_ENTRIES;
	cfg->min_block_packets = CLASSIFY_MIN_BLOCK_PACKETS;
	cfg->reject_prob = CLASSIFY_REJECT_PROB_AUTO;
	cfg->reject_energy = CLASSIFY_REJECT_ENERGY_OFF;
}

/* What the flow table can draw for the model: the table's size axis is
 * fixed at PKT_MAX_SIZE bytes and one count per cell up to 255. */
static int model_fits(const struct model *m, char *err, size_t errlen)
{
	if (m->n_classes < 1 || m->n_classes > CLASSIFY_MAX_CLASSES) {
		snprintf(err, errlen, "%u classes: the classifier takes 1 to %d", m->n_classes,
			 CLASSIFY_MAX_CLASSES);
		return -ENOTSUP;
	}
	if (m->size_max != PKT_MAX_SIZE) {
		snprintf(err, errlen, "size axis up to %u bytes: the flow table draws up to %d",
			 m->size_max, PKT_MAX_SIZE);
		return -ENOTSUP;
	}
	if (m->res < 1 || m->res > FLOWPIC_MAX_RES || m->window_ns < 1000 ||
	    m->window_ns > (1ULL << 42)) {
		snprintf(err, errlen,
			 "resolution %u or window %llu ns outside what the flow "
			 "table draws (1-%d, 1 us-4398 s)",
			 m->res, (unsigned long long)m->window_ns, FLOWPIC_MAX_RES);
		return -ENOTSUP;
	}
	return 0;
}

/* The model's background class, if it has one: its blocks are no class. */
static uint32_t other_class(const struct model *m)
{
	uint32_t i;

	for (i = 0; i < m->n_classes; i++)
		if (!strcmp(m->classes[i], CLASSIFY_OTHER_NAME))
			return i;
	return CLASSIFY_UNKNOWN;
}

struct classifier *classifier_new(const struct classifier_config *cfg, char *err, size_t errlen)
{
	struct classifier *c;
	char why[256];
	size_t len;
	const void *buf;
	int rc;

	if (cfg->workers > 1) {
		snprintf(err, errlen, "classifier: workers must be 0 or 1");
		errno = EINVAL;
		return NULL;
	}
	if (cfg->vote_ratio < 0 || cfg->vote_ratio > 1 ||
	    (cfg->min_confidence < 0 && cfg->min_confidence != CLASSIFY_MIN_CONFIDENCE_AUTO) ||
	    cfg->min_confidence > 1 || cfg->vote_ratio != cfg->vote_ratio ||
	    cfg->min_confidence != cfg->min_confidence) {
		snprintf(err, errlen,
			 "classifier: vote ratio and minimum confidence must be 0 to 1");
		errno = EINVAL;
		return NULL;
	}
	/* NaN energy would reject nothing silently: refuse it with the rest. */
	if (!((cfg->reject_prob >= 0 && cfg->reject_prob <= 1) ||
	      cfg->reject_prob == CLASSIFY_REJECT_PROB_AUTO) ||
	    isnan(cfg->reject_energy)) {
		snprintf(err, errlen,
			 "classifier: rejection probability must be 0 to 1, "
			 "energy a number");
		errno = EINVAL;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		goto fail_nomem;
	c->cfg = *cfg;
	if (cfg->model_path) {
		snprintf(c->source, sizeof(c->source), "%s", cfg->model_path);
		c->m = model_load(cfg->model_path, err, errlen);
	} else {
		snprintf(c->source, sizeof(c->source), "%s", EMBEDDED_NAME);
		buf = classifier_default_model(&len);
		c->m = model_load_mem(buf, len, EMBEDDED_NAME, err, errlen);
	}
	c->cfg.model_path = NULL; /* the caller's string need not outlive us */
	if (!c->m) {
		rc = -errno;
		goto fail_free;
	}
	rc = model_fits(c->m, why, sizeof(why));
	if (rc) {
		snprintf(err, errlen, "%s: %s", c->source, why);
		goto fail_model;
	}
	if (c->cfg.min_confidence == CLASSIFY_MIN_CONFIDENCE_AUTO)
		c->cfg.min_confidence = c->m->n_classes >= 4 ? 2.0f / (float)c->m->n_classes : 0.5f;
	c->other_cls = other_class(c->m);
	if (c->cfg.reject_prob == CLASSIFY_REJECT_PROB_AUTO)
		c->cfg.reject_prob = c->other_cls != CLASSIFY_UNKNOWN ?
					     CLASSIFY_REJECT_PROB_OPEN_SET :
					     CLASSIFY_REJECT_PROB_OFF;
	c->out_scale = c->m->layers[c->m->n_layers - 1].out_scale;
	c->cnn = cnn_new(c->m, cfg->cnn_flags);
	if (!c->cnn) {
		rc = -errno;
		snprintf(err, errlen, "%s: cannot set up the inference engine: %s", c->source,
			 strerror(errno));
		goto fail_model;
	}
	c->plane_len = CLASSIFY_MAX_CELLS(c->m->res);
	c->plane = calloc(c->plane_len, 1);
	c->cells = calloc(c->plane_len, sizeof(*c->cells));
	if (cfg->cache_entries) {
		uint32_t n = 1;

		while (n < cfg->cache_entries && n < (1u << 24))
			n <<= 1;
		c->cache = calloc(n, sizeof(*c->cache));
		c->cache_mask = n - 1;
	}
	if (!c->plane || !c->cells || (cfg->cache_entries && !c->cache)) {
		rc = -ENOMEM;
		snprintf(err, errlen, "%s: out of memory for the cell buffers", c->source);
		goto fail_cnn;
	}
	return c;

fail_cnn:
	free(c->cache);
	free(c->plane);
	free(c->cells);
	cnn_free(c->cnn);
fail_model:
	model_free(c->m);
fail_free:
	free(c);
	errno = -rc;
	return NULL;
fail_nomem:
	snprintf(err, errlen, "classifier: out of memory");
	errno = ENOMEM;
	return NULL;
}

static void accs_free(struct classifier *c)
{
	free(c->accs);
	free(c->slots);
	free(c->free_stack);
	c->accs = NULL;
	c->slots = c->free_stack = NULL;
	c->cap = c->nslots = c->nfree = 0;
}

void classifier_free(struct classifier *c)
{
	if (!c)
		return;
	accs_free(c);
	free(c->cache);
	free(c->plane);
	free(c->cells);
	cnn_free(c->cnn);
	model_free(c->m);
	free(c);
}

const struct model *classifier_model(const struct classifier *c)
{
	return c->m;
}

const struct classifier_config *classifier_config(const struct classifier *c)
{
	return &c->cfg;
}

const char *classifier_class_name(const struct classifier *c, uint32_t cls)
{
	return cls < c->m->n_classes ? c->m->classes[cls] : "unknown";
}

const char *classifier_model_source(const struct classifier *c)
{
	return c->source;
}

const struct classify_stats *classifier_stats(const struct classifier *c)
{
	return &c->stats;
}

size_t classifier_memory(const struct classifier *c)
{
	return cnn_memory(c->cnn) + c->m->mem_len + c->plane_len * (1 + sizeof(struct cell)) +
	       (c->cache ? ((size_t)c->cache_mask + 1) * sizeof(struct cache_entry) : 0) +
	       (size_t)c->cap * (sizeof(struct classify_acc) + sizeof(uint32_t)) +
	       (size_t)c->nslots * sizeof(uint32_t);
}

void classifier_flow_config(const struct classifier *c, struct flow_config *cfg)
{
	cfg->res = c->m->res;
	cfg->window_ns = c->m->window_ns;
	cfg->hop_ns = c->m->window_ns;
}

/* ---- the accumulator table ---- */

static uint32_t id_hash(uint64_t id)
{
	id ^= id >> 33;
	id *= 0xff51afd7ed558ccdULL;
	id ^= id >> 33;
	return (uint32_t)id;
}

/* Size for a table of max_flows, once, while no flow is tracked. */
static int accs_size(struct classifier *c, uint32_t max_flows)
{
	uint32_t n = 16, i;

	if (c->cap >= max_flows)
		return 0;
	if (c->cap && c->nfree != c->cap)
		return -EBUSY; /* flows tracked: keep what there is */
	while (n < 2 * (uint64_t)max_flows)
		n <<= 1;
	accs_free(c);
	/* calloc of large sizes maps zero pages: touched as flows come. */
	c->accs = calloc(max_flows, sizeof(*c->accs));
	c->slots = calloc(n, sizeof(*c->slots));
	c->free_stack = malloc((size_t)max_flows * sizeof(*c->free_stack));
	if (!c->accs || !c->slots || !c->free_stack) {
		accs_free(c);
		return -ENOMEM;
	}
	c->cap = max_flows;
	c->nslots = n;
	/* Pop order 0, 1, 2, ...: low accumulators first. */
	for (i = 0; i < max_flows; i++)
		c->free_stack[i] = max_flows - 1 - i;
	c->nfree = max_flows;
	return 0;
}

/* Slot of id in the index, or of the empty slot where it would go. */
static uint32_t accs_slot(const struct classifier *c, uint64_t id)
{
	uint32_t mask = c->nslots - 1, s = id_hash(id) & mask;

	while (c->slots[s] && c->accs[c->slots[s] - 1].flow_id != id)
		s = (s + 1) & mask;
	return s;
}

static struct classify_acc *accs_find(struct classifier *c, uint64_t id, bool create)
{
	uint32_t s, a;

	if (!c->nslots)
		return NULL;
	s = accs_slot(c, id);
	if (c->slots[s])
		return &c->accs[c->slots[s] - 1];
	if (!create || !c->nfree)
		return NULL;
	a = c->free_stack[--c->nfree];
	memset(&c->accs[a], 0, sizeof(c->accs[a]));
	c->accs[a].flow_id = id;
	c->slots[s] = a + 1;
	return &c->accs[a];
}

/* Remove id's slot, shifting later entries of its probe run back
 * (linear probing without tombstones). */
static void accs_remove(struct classifier *c, struct classify_acc *acc)
{
	uint32_t mask = c->nslots - 1, s = accs_slot(c, acc->flow_id), j, home;

	c->free_stack[c->nfree++] = (uint32_t)(acc - c->accs);
	acc->flow_id = 0;
	c->slots[s] = 0;
	for (j = (s + 1) & mask; c->slots[j]; j = (j + 1) & mask) {
		home = id_hash(c->accs[c->slots[j] - 1].flow_id) & mask;
		/* Move j to the hole s unless its home lies cyclically in (s, j]. */
		if (s <= j ? (home > s && home <= j) : (home > s || home <= j))
			continue;
		c->slots[s] = c->slots[j];
		c->slots[j] = 0;
		s = j;
	}
}

void classifier_reset(struct classifier *c)
{
	uint32_t i;

	if (!c->cap)
		return;
	memset(c->slots, 0, (size_t)c->nslots * sizeof(*c->slots));
	for (i = 0; i < c->cap; i++)
		c->free_stack[i] = c->cap - 1 - i;
	c->nfree = c->cap;
}

/* ---- blocks ---- */

static void verdict_from_result(const struct classifier *c, const struct cnn_result *r,
				struct block_verdict *v)
{
	uint32_t i;

	memset(v->logits, 0, sizeof(v->logits));
	memset(v->prob, 0, sizeof(v->prob));
	for (i = 0; i < c->m->n_classes; i++) {
		v->logits[i] = r->logits[i];
		v->prob[i] = r->prob[i];
	}
	v->cls = r->cls;
	v->confidence = r->prob[r->cls];
}

/* ---- the verdict cache ---- */

/*
 * The cache key of a block's distinct cells: the pixels the model sees
 * (channel, y, x; both directions of one pixel merged for a one-channel
 * model), sorted, with their counts.  0 when the picture has more than
 * CLASSIFY_CACHE_CELLS pixels (not cached), else the number of pixels.
 */
static unsigned int cache_key(const struct classifier *c, const struct cell *cells, size_t n,
			      uint32_t key[CLASSIFY_CACHE_CELLS])
{
	uint32_t tmp[2 * CLASSIFY_CACHE_CELLS], v;
	unsigned int m = 0, i, j, k = 0;
	int ch;

	if (n > 2 * CLASSIFY_CACHE_CELLS)
		return 0;
	for (i = 0; i < n; i++) {
		ch = cnn_cell_channel(c->m->dirs, &cells[i]);
		if (ch < 0)
			continue;
		v = (uint32_t)ch << 30 | (uint32_t)cells[i].y << 19 | (uint32_t)cells[i].x << 8 |
		    cells[i].count;
		/* insertion sort on the pixel (count bits below it) */
		for (j = m; j > 0 && (tmp[j - 1] >> 8) > (v >> 8); j--)
			tmp[j] = tmp[j - 1];
		tmp[j] = v;
		m++;
	}
	for (i = 0; i < m; i++) {
		if (k && (key[k - 1] >> 8) == (tmp[i] >> 8)) {
			unsigned int sum = (key[k - 1] & 0xff) + (tmp[i] & 0xff);

			key[k - 1] = (key[k - 1] & ~0xffu) | (sum > 255 ? 255 : sum);
			continue;
		}
		if (k == CLASSIFY_CACHE_CELLS)
			return 0;
		key[k++] = tmp[i];
	}
	/* An empty picture (every cell of a direction the model leaves out)
	 * is one key too: 0 pixels, stored as n = 0xff. */
	return k ? k : 0xff;
}

static struct cache_entry *cache_slot(const struct classifier *c, const uint32_t *key,
				      unsigned int k)
{
	uint64_t h = 0x9e3779b97f4a7c15ULL * (k + 1);
	unsigned int i;

	for (i = 0; i < (k == 0xff ? 0 : k); i++)
		h = (h ^ key[i]) * 0xff51afd7ed558ccdULL;
	return &c->cache[(h >> 32) & c->cache_mask];
}

/* A block's distinct cells through plane; see classify_int.h. */
long classify_cells_dedupe(uint32_t res, uint8_t *plane, const struct flow_table *ft,
			   const struct block *b, struct cell *out)
{
	struct cell_iter it;
	struct cell cl;
	size_t n = 0, i, px;
	bool bad = false;
	unsigned int sum;

	block_cells_begin(&it, ft, b);
	while (block_cells_next(&it, &cl)) {
		if (cl.x >= res || cl.y >= res || cl.dir > 1) {
			bad = true;
			continue;
		}
		if (!cl.count)
			continue;
		px = ((size_t)cl.dir * res + cl.y) * res + cl.x;
		if (!plane[px])
			out[n++] = cl;
		sum = plane[px] + cl.count;
		plane[px] = sum > 255 ? 255 : (uint8_t)sum;
	}
	for (i = 0; i < n; i++) {
		px = ((size_t)out[i].dir * res + out[i].y) * res + out[i].x;
		out[i].count = plane[px];
		plane[px] = 0;
	}
	return bad ? -EINVAL : (long)n;
}

/* ln x for x > 0 without libm (the core library does without it, as
 * cnn.c's exp does): x = m 2^e, m in [1, 2), ln m = 2 atanh((m-1)/(m+1)). */
static float ln_pos(float x)
{
	union {
		float f;
		uint32_t u;
	} b = { .f = x };
	int e = (int)((b.u >> 23) & 0xff) - 127;
	double u, u2, term, sum = 0;
	int k;

	b.u = (b.u & 0x7fffff) | (127u << 23);	   /* m in [1, 2) */
	u = ((double)b.f - 1) / ((double)b.f + 1); /* [0, 1/3) */
	u2 = u * u;
	term = u;
	for (k = 1; k <= 23; k += 2) {
		sum += term / k;
		term *= u2;
	}
	return (float)(e * 0.6931471805599453 + 2 * sum);
}

/*
 * The energy score of a block: -logsumexp of its real logits.  Low when
 * some class fits well; high when none does (what the model was not
 * trained on), which the max probability alone does not always show.
 * The softmax has it already: prob[top] = 1 / sum exp(z - z_top), so
 * logsumexp = z_top - ln prob[top].
 */
static float block_energy(const struct classifier *c, const struct block_verdict *v)
{
	return ln_pos(v->prob[v->top]) - (float)v->logits[v->top] * c->out_scale;
}

/*
 * A block's reason, from its packets and logits: sparse (no vote), other
 * (a vote for no class: rejected, or the background class), or ok.  sized:
 * the block's packet count is known (not for classifier_picture()).
 */
static void block_judge(struct classifier *c, struct block_verdict *v, bool sized)
{
	v->top = v->cls;
	v->energy = block_energy(c, v);
	if (sized && v->samples < c->cfg.min_block_packets)
		v->reason = CLASSIFY_SPARSE;
	else if (v->top == c->other_cls || v->confidence < c->cfg.reject_prob ||
		 v->energy > c->cfg.reject_energy)
		v->reason = CLASSIFY_OTHER;
	else
		v->reason = CLASSIFY_OK;
	if (v->reason != CLASSIFY_OK)
		v->cls = CLASSIFY_UNKNOWN;
	c->stats.blocks_sparse += v->reason == CLASSIFY_SPARSE;
	c->stats.blocks_other += v->reason == CLASSIFY_OTHER;
}

/* Run the model (or the cache) on a block's distinct cells. */
static int infer_cells(struct classifier *c, const struct cell *cells, size_t n,
		       const struct block *b, struct block_verdict *v)
{
	uint32_t key[CLASSIFY_CACHE_CELLS];
	struct cache_entry *e;
	struct cnn_result r;
	unsigned int k;

	k = c->cache ? cache_key(c, cells, n, key) : 0;
	e = k ? cache_slot(c, key, k) : NULL;
	if (e && e->n == k && !memcmp(e->key, key, (k == 0xff ? 0 : k) * sizeof(key[0]))) {
		memset(v->logits, 0, sizeof(v->logits));
		memset(v->prob, 0, sizeof(v->prob));
		memcpy(v->logits, e->logits, c->m->n_classes);
		memcpy(v->prob, e->prob, c->m->n_classes * sizeof(float));
		v->cls = e->cls;
		v->confidence = e->prob[e->cls];
		c->stats.blocks_cached++;
	} else {
		if (cnn_run_sparse(c->cnn, cells, n, &r)) {
			c->stats.blocks_failed++;
			return -EINVAL;
		}
		verdict_from_result(c, &r, v);
		if (e) {
			e->n = (uint8_t)k;
			memcpy(e->key, key, (k == 0xff ? 0 : k) * sizeof(key[0]));
			memcpy(e->logits, v->logits, c->m->n_classes);
			memcpy(e->prob, v->prob, c->m->n_classes * sizeof(float));
			e->cls = (uint8_t)v->cls;
		}
	}
	v->index = b->index;
	v->start_ns = b->start_ns;
	v->samples = block_samples(b);
	v->early = !b->complete;
	c->stats.blocks++;
	c->stats.blocks_early += v->early;
	block_judge(c, v, true);
	return 0;
}

int classify_cells(struct classifier *c, const struct cell *cells, long n, const struct block *b,
		   struct block_verdict *v)
{
	if (n < 0) {
		c->stats.blocks_failed++;
		return -EINVAL;
	}
	return infer_cells(c, cells, (size_t)n, b, v);
}

static int infer_block(struct classifier *c, const struct flow_table *ft, const struct block *b,
		       struct block_verdict *v)
{
	long n = classify_cells_dedupe(c->m->res, c->plane, ft, b, c->cells);

	return classify_cells(c, c->cells, n, b, v);
}

/*
 * What a block weighs in its flow's vote: 1, or its packets with
 * weight_packets (a block of 300 packets is more evidence than one of 20).
 */
static float block_weight(const struct classifier *c, const struct block_verdict *v)
{
	return c->cfg.weight_packets ? (float)v->samples : 1.0f;
}

static void acc_add(const struct classifier *c, struct classify_acc *a,
		    const struct block_verdict *v)
{
	int k = !v->early;
	float w = block_weight(c, v);
	uint32_t i;

	a->blocks[k]++;
	if (v->reason == CLASSIFY_SPARSE)
		return; /* too little evidence to count either way */
	a->voting[k]++;
	if (v->reason == CLASSIFY_OTHER)
		a->other[k] += w;
	else
		a->votes[k][v->cls] += w;
	for (i = 0; i < c->m->n_classes; i++)
		a->psum[k][i] += w * v->prob[i];
}

/* Is class i ahead of class j: more votes, then the larger summed probability,
 * then the lower index. */
static bool ahead(const float *votes, const float *psum, uint32_t i, uint32_t j)
{
	if (votes[i] != votes[j])
		return votes[i] > votes[j];
	if (psum[i] != psum[j])
		return psum[i] > psum[j];
	return i < j;
}

/* The most voted class other than skip and the background class, or
 * CLASSIFY_UNKNOWN when there is none. */
static uint32_t leader(const struct classifier *c, const float *votes, const float *psum,
		       uint32_t skip)
{
	uint32_t i, best = CLASSIFY_UNKNOWN;

	for (i = 0; i < c->m->n_classes; i++) {
		if (i == skip || i == c->other_cls)
			continue;
		if (best == CLASSIFY_UNKNOWN || ahead(votes, psum, i, best))
			best = i;
	}
	return best;
}

/* The unknown rule, in the order docs/classify.md gives it. */
static enum classify_reason flow_reason(const struct classifier *c, const float *votes, float other,
					float total, uint32_t top, uint32_t second,
					float confidence)
{
	if (other * 2 > total || top == CLASSIFY_UNKNOWN)
		return CLASSIFY_OTHER;
	if (second != CLASSIFY_UNKNOWN && votes[second] > 0 &&
	    votes[second] > c->cfg.vote_ratio * votes[top])
		return CLASSIFY_DISAGREE;
	if (confidence < c->cfg.min_confidence)
		return CLASSIFY_LOW_CONFIDENCE;
	return CLASSIFY_OK;
}

static void acc_combine(struct classifier *c, const struct classify_acc *a, uint64_t flow_id,
			struct flow_verdict *v)
{
	/* Complete blocks vote when any of them can; else the partial ones. */
	int k = a->voting[1] ? 1 : 0;
	const float *votes = a->votes[k], *psum = a->psum[k];
	uint32_t i, top, second;
	float total = a->other[k];

	memset(v, 0, sizeof(*v));
	v->flow_id = flow_id;
	v->blocks = a->blocks[0] + a->blocks[1];
	v->blocks_sparse = v->blocks - a->voting[0] - a->voting[1];
	v->cls = v->top = CLASSIFY_UNKNOWN;
	c->stats.flows++;
	if (!a->voting[k]) {
		/* No block with enough packets, or no block at all (only
		 * oversize packets).  Early when what there is is partial. */
		v->reason = CLASSIFY_SPARSE;
		v->early = !a->blocks[1] && a->blocks[0];
		goto count;
	}
	v->early = k == 0;
	v->blocks_voting = a->voting[k];
	for (i = 0; i < c->m->n_classes; i++)
		total += votes[i];
	top = leader(c, votes, psum, CLASSIFY_UNKNOWN);
	second = top == CLASSIFY_UNKNOWN ? top : leader(c, votes, psum, top);
	for (i = 0; i < c->m->n_classes; i++) {
		v->votes[i] = (uint32_t)(votes[i] + 0.5f);
		v->prob[i] = psum[i] / total;
	}
	v->votes_other = (uint32_t)(a->other[k] + 0.5f);
	v->top = top;
	v->confidence = top == CLASSIFY_UNKNOWN ? 0 : v->prob[top];
	v->reason = flow_reason(c, votes, a->other[k], total, top, second, v->confidence);
	if (v->reason == CLASSIFY_OK)
		v->cls = top;
count:
	c->stats.flows_early += v->early;
	if (v->reason == CLASSIFY_OK)
		c->stats.flows_class[v->cls]++;
	else
		c->stats.flows_unknown[v->reason]++;
}

/* Add a block verdict to its flow's votes. */
int classify_vote(struct classifier *c, uint32_t max_flows, const struct block_verdict *v)
{
	struct classify_acc *a;

	if (!c->alloc_failed && accs_size(c, max_flows) == -ENOMEM)
		c->alloc_failed = true; /* counted per flow below; not retried per block */
	a = accs_find(c, v->flow_id, true);
	if (!a) /* counted at the flow's end (flows_untracked) */
		return c->alloc_failed ? -ENOMEM : 0;
	acc_add(c, a, v);
	return 0;
}

int classifier_block(struct classifier *c, const struct flow_table *ft, const struct flow *f,
		     const struct block *b, struct block_verdict *out)
{
	struct block_verdict local, *v = out ? out : &local;
	int rc;

	memset(v, 0, sizeof(*v));
	v->flow_id = f->id;
	rc = infer_block(c, ft, b, v);
	if (rc)
		return rc;
	return classify_vote(c, flow_table_config(ft)->max_flows, v);
}

void classifier_flow_end(struct classifier *c, const struct flow_table *ft, const struct flow *f,
			 struct flow_verdict *out)
{
	static const struct classify_acc none;
	struct classify_acc *a = accs_find(c, f->id, false);

	(void)ft;
	if (!a && f->blocks) {
		/* Blocks were handed out, but their votes were not kept. */
		memset(out, 0, sizeof(*out));
		out->flow_id = f->id;
		out->cls = out->top = CLASSIFY_UNKNOWN;
		out->reason = CLASSIFY_UNTRACKED; /* capacity, not evidence */
		out->blocks = f->blocks;
		c->stats.flows++;
		c->stats.flows_unknown[CLASSIFY_UNTRACKED]++;
		c->stats.flows_untracked++;
		return;
	}
	acc_combine(c, a ? a : &none, f->id, out);
	if (a)
		accs_remove(c, a);
}

int classifier_picture(struct classifier *c, const uint8_t *pic, struct block_verdict *out)
{
	struct cnn_result r;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = cnn_run(c->cnn, pic, &r);
	if (rc)
		return rc;
	verdict_from_result(c, &r, out);
	c->stats.blocks++;
	block_judge(c, out, false);
	return 0;
}

/* ---- one flow's samples ---- */

struct samples_ctx {
	struct classifier *c;
	struct classify_acc acc;
	struct block_verdict *blocks;
	size_t max_blocks, nblocks;
	int rc;
};

static void samples_block(void *ctx, const struct flow_table *ft, const struct flow *f,
			  const struct block *b)
{
	struct samples_ctx *s = ctx;
	struct block_verdict v = { .flow_id = 1 };
	int rc;

	(void)f;
	rc = infer_block(s->c, ft, b, &v);
	if (rc) {
		s->rc = rc;
		return;
	}
	acc_add(s->c, &s->acc, &v);
	if (s->blocks && s->nblocks < s->max_blocks)
		s->blocks[s->nblocks] = v;
	s->nblocks++;
}

int classifier_samples(struct classifier *c, const struct classify_sample *smp, size_t n,
		       uint64_t end_ns, struct block_verdict *blocks, size_t max_blocks,
		       size_t *nblocks, struct flow_verdict *out)
{
	struct samples_ctx s = { .c = c, .blocks = blocks, .max_blocks = max_blocks };
	struct flow_events ev = { .block = samples_block, .ctx = &s };
	struct flow_config cfg;
	struct flow_table *ft;
	struct pkt p;
	uint8_t rev0;
	size_t i;

	flow_config_default(&cfg);
	classifier_flow_config(c, &cfg);
	cfg.max_flows = 1;
	/* The longest gap the table takes; a longer one starts a new flow in the
	 * table, whose blocks still count for this verdict. */
	cfg.idle_timeout_ns = 1ULL << 42;
	/* Every sample may open a cell, every open block holds a partial chunk. */
	cfg.max_cells = (uint32_t)(n + 2 * CELL_CHUNK_CELLS * FLOW_MAX_OPEN_BLOCKS > (1u << 31) ?
					   (1u << 31) :
					   n + 2 * CELL_CHUNK_CELLS * FLOW_MAX_OPEN_BLOCKS);
	ft = flow_table_new(&cfg, &ev);
	if (!ft)
		return -errno;
	/* Side a sends the first forward sample.  When the first sample is
	 * reverse, it goes out as a TCP SYN+ACK from b: the table then takes
	 * its destination (a) as the initiator, as for a capture that missed
	 * the SYN, so every direction is kept. */
	rev0 = n ? smp[0].dir : 0;
	memset(&p, 0, sizeof(p));
	p.proto = rev0 ? 6 : 17;
	for (i = 0; i < n; i++) {
		bool fwd = smp[i].dir == FLOW_DIR_FWD;

		memset(p.src, 0, 16);
		memset(p.dst, 0, 16);
		p.src[10] = p.src[11] = p.dst[10] = p.dst[11] = 0xff;
		p.src[12] = p.dst[12] = 10;
		p.src[15] = fwd ? 1 : 2;
		p.dst[15] = fwd ? 2 : 1;
		p.sport = fwd ? 40000 : 443;
		p.dport = fwd ? 443 : 40000;
		p.ts_ns = smp[i].ts_ns;
		p.size = smp[i].size;
		p.ip_len = smp[i].size + 40;
		p.tcp_flags = i == 0 && rev0 ? 0x12 : p.proto == 6 ? 0x10 : 0;
		flow_table_add(ft, &p);
	}
	/* Time moves on to the end of the observation: the blocks whose
	 * window passed are complete, as in a capture that went on. */
	if (end_ns)
		flow_table_advance(ft, end_ns);
	flow_table_flush(ft);
	flow_table_free(ft);
	if (nblocks)
		*nblocks = s.nblocks;
	acc_combine(c, &s.acc, 1, out);
	return s.rc;
}
