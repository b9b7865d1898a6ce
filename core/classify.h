/* SPDX-License-Identifier: MIT */
/*
 * classify.h - verdicts from the int8 CNN: per block, per flow, per file.
 *
 * The seed offered three ways to use the model; all three are here, on the
 * one pipeline (source -> flow table -> blocks -> cnn):
 *
 *   Classifier          one flow's samples (classifier_samples) or one
 *                       dense FlowPic (classifier_picture)
 *   PcapClassifier      every flow of a pcap/pcapng file (classifier_pcap_file)
 *   FlowCsvClassifier   every flow of a samples CSV (classifier_csv_file)
 *
 * classifier_file() takes either; the type comes from the content (source.h).
 * "-" is standard input, read as a stream (never seeked); messages call it
 * "(stdin)".
 *
 * Incremental use (the agent, the CLI): the caller owns the flow table and
 * calls classifier_block() from its block event and classifier_flow_end()
 * from its flow-end event.  Memory is fixed when the first block of a table
 * arrives: one accumulator per tracked flow (struct classify_acc, 288 bytes,
 * plus 12 bytes of index and free list), sized from the table's max_flows;
 * pages are touched only as flows are tracked.  Per classifier: the engine,
 * a cell list and a dedupe plane sized from the model's resolution (14 KiB
 * at 32 x 32).  Nothing is allocated per packet or per inference.  A classifier is not
 * thread-safe: use one per thread (one per flow table).
 *
 * Per block: a verdict with the class probabilities (softmax of the int8
 * logits times the last layer's scale), bit for bit the Python reference
 * (model/flowpic_model/int8ref.py) on the same picture.
 *
 * Per block, a reason (docs/classify.md): SPARSE when it has fewer than
 * min_block_packets packets (both directions): it does not vote and has no
 * class; OTHER when it is rejected (max probability below reject_prob, or
 * energy above reject_energy) or its top class is the model's background
 * class "other": it votes 'other', for no class; else OK, a class.
 *
 * Per flow, the combined verdict (docs/classify.md):
 *   - voting blocks: the flow's complete blocks that are not sparse; a flow
 *     with none votes with its partial blocks that are not sparse (a flow
 *     shorter than one window) and its verdict is EARLY (flow_verdict.early);
 *   - each voting block counts 1, or its packets with weight_packets;
 *   - top = the class with the most votes (ties: the larger summed
 *     probability), second = the runner-up; 'other' votes are no class;
 *   - confidence = the mean probability of top over the voting blocks;
 *   - UNKNOWN, in this order, when: no block votes (SPARSE: too few packets,
 *     or no block at all); more than half the votes are 'other' (OTHER);
 *     votes[second] > vote_ratio * votes[top] (DISAGREE; 0.7 as the seed);
 *     confidence < min_confidence (LOW_CONFIDENCE; default twice chance,
 *     2 / n_classes: 0.4 for 5 classes).
 *
 * Example (every flow of a file, embedded model):
 *
 *	static void on_flow(void *ctx, const struct classifier *c,
 *			    const struct flow *f, enum flow_end_reason why,
 *			    const struct flow_verdict *v)
 *	{
 *		printf("%lu %s %.2f%s\n", f->id, classifier_class_name(c, v->cls),
 *		       v->confidence, v->early ? " (early)" : "");
 *	}
 *
 *	struct classifier_config cfg;
 *	struct classify_callbacks cb = { .flow = on_flow };
 *	struct classify_file_result res;
 *	char err[256];
 *
 *	classifier_config_default(&cfg);
 *	struct classifier *c = classifier_new(&cfg, err, sizeof(err));
 *	if (!c)
 *		errx(1, "%s", err);
 *	if (classifier_file(c, "capture.pcap", NULL, &cb, &res) < 0)
 *		warnx("%s", res.error);	// what was read is still classified
 *	classifier_free(c);
 *
 * Live (the agent): classifier_flow_config(c, &fcfg) before
 * flow_table_new(&fcfg, &ev), then in the events:
 *
 *	block:    classifier_block(c, ft, f, b, &bv);     // bv.early: partial block
 *	flow_end: classifier_flow_end(c, ft, f, &fv);
 */
#ifndef FLOWPIC_CLASSIFY_H
#define FLOWPIC_CLASSIFY_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flow.h"
#include "model_file.h"
#include "pipeline.h"

/* Classes a classifier takes (a model with more is refused): keeps the
 * per-flow state small. */
#define CLASSIFY_MAX_CLASSES 16
/* The class index of an unknown flow verdict. */
#define CLASSIFY_UNKNOWN UINT32_MAX

/* Defaults of the unknown rule. */
#define CLASSIFY_VOTE_RATIO 0.7f /* the seed's: runner-up votes > 0.7 x top -> unknown */
/* min_confidence below 0: twice chance, 2 / n_classes of the model (0.4 for
 * 5 classes; 0.5 for models of fewer than 4 classes).  Not 0.5: int8 logits times a small output scale give soft
 * probabilities (docs/classify.md has the numbers). */
#define CLASSIFY_MIN_CONFIDENCE_AUTO (-1.0f)
/* Minimum evidence: blocks of fewer packets (both directions) do not vote.
 * Chosen on held-out real captures (docs/classify.md). */
#define CLASSIFY_MIN_BLOCK_PACKETS 20
/* Rejection off: no probability is below 0, no energy above +inf. */
#define CLASSIFY_REJECT_PROB_OFF 0.0f
/* reject_prob below 0: CLASSIFY_REJECT_PROB_OPEN_SET for a model with a
 * class named `other` (an open-set model), off for one without (a closed
 * five-class model's probabilities were never calibrated against
 * background).  0.6 was chosen for the default model on a development slice
 * of real captures never trained on and never reported on (docs/model-real.md). */
#define CLASSIFY_REJECT_PROB_AUTO (-1.0f)
#define CLASSIFY_REJECT_PROB_OPEN_SET 0.6f
#define CLASSIFY_REJECT_ENERGY_OFF INFINITY
/* A model class of this name is background: never a verdict (reason other). */
#define CLASSIFY_OTHER_NAME "other"

struct classifier_config {
	const char *model_path;	    /* NULL: the embedded default (model/default.fpcnn) */
	float vote_ratio;	    /* 0 .. 1 */
	float min_confidence;	    /* 0 .. 1, or CLASSIFY_MIN_CONFIDENCE_AUTO */
	uint32_t min_block_packets; /* blocks with fewer packets do not vote
					 * (CLASSIFY_MIN_BLOCK_PACKETS; 0: all vote) */
	float reject_prob;	    /* a block whose top probability is below
					 * this is 'other' (0 .. 1; 0: off;
					 * CLASSIFY_REJECT_PROB_AUTO by default) */
	float reject_energy;	    /* a block whose energy is above this is
					 * 'other' (CLASSIFY_REJECT_ENERGY_OFF: off) */
	bool weight_packets;	    /* a voting block counts its packets, not 1
					 * (off by default: to be measured) */
	unsigned int cnn_flags;	    /* enum cnn_flags (cnn.h): CNN_REF, ... */
	uint32_t cache_entries;	    /* verdicts of small pictures kept (default
					 * CLASSIFY_CACHE_ENTRIES; 0: none) */
	uint32_t workers;	    /* classifier_file(): 1 = classify in a second
					 * thread while the file is read (the same
					 * verdicts, callbacks in the same order, from
					 * that thread); 0 (default) = in the caller's */
};

/*
 * Most blocks are tiny (a handshake, a DNS exchange: the median block of the
 * Requet captures has 2 cells) and the same tiny pictures recur, so the
 * verdicts of pictures of at most CLASSIFY_CACHE_CELLS pixels are kept in a
 * direct-mapped table keyed by the exact pixels: a hit gives the very logits
 * inference would (the arithmetic is exact), without running it.
 */
#define CLASSIFY_CACHE_CELLS 8
#define CLASSIFY_CACHE_ENTRIES 4096

void classifier_config_default(struct classifier_config *cfg);

/* Why a verdict (flow or block) is what it is.  The numbers are internal;
 * the names are what JSON, CSV, the stream and the collector carry. */
enum classify_reason {
	CLASSIFY_OK = 0,	 /* a class */
	CLASSIFY_OTHER,		 /* none of the classes: the blocks (more than half
					 * of the votes, for a flow) were rejected or of
					 * the model's background class "other" */
	CLASSIFY_SPARSE,	 /* too little evidence: a block of fewer than
					 * min_block_packets packets; a flow with no
					 * voting block (or no block at all) */
	CLASSIFY_DISAGREE,	 /* unknown: runner-up votes > vote_ratio x top */
	CLASSIFY_LOW_CONFIDENCE, /* unknown: confidence < min_confidence */
	CLASSIFY_UNTRACKED,	 /* unknown: a capacity failure: the flow's blocks
					 * were classified but their votes not kept
					 * (accumulator table full or not allocated) */
	CLASSIFY_REASON_COUNT
};

/* "ok", "other", "sparse", "disagree", "low_confidence", "untracked". */
const char *classify_reason_name(enum classify_reason r);
/* The reason of a name; -1 if none. */
int classify_reason_parse(const char *name);

struct block_verdict {
	uint64_t flow_id;
	uint64_t index;			     /* block k of the flow */
	uint64_t start_ns;		     /* capture time of the block start */
	uint32_t samples;		     /* packets drawn, both directions */
	uint32_t cls;			     /* top when reason is OK, else
						 * CLASSIFY_UNKNOWN: no class */
	uint32_t top;			     /* argmax (lowest index on ties) */
	enum classify_reason reason;	     /* OK, SPARSE (does not vote) or OTHER
						 * (votes for no class) */
	float confidence;		     /* prob[top] */
	float energy;			     /* -logsumexp(logits x output scale) */
	bool early;			     /* the block is partial (!complete): its
						 * window did not pass within the input */
	int8_t logits[CLASSIFY_MAX_CLASSES]; /* exact int8 logits */
	float prob[CLASSIFY_MAX_CLASSES];    /* softmax; n_classes entries used */
};

struct flow_verdict {
	uint64_t flow_id;
	uint32_t cls; /* class, or CLASSIFY_UNKNOWN */
	uint32_t top; /* most voted class, even when unknown
						 * (CLASSIFY_UNKNOWN when no block) */
	enum classify_reason reason;
	float confidence;		      /* mean prob[top] over the voting blocks */
	bool early;			      /* voted with partial blocks only */
	uint32_t blocks;		      /* blocks classified */
	uint32_t blocks_sparse;		      /* of which too sparse to vote */
	uint32_t blocks_voting;		      /* of which voted (complete, or partial if
						 * early; not sparse) */
	uint32_t votes[CLASSIFY_MAX_CLASSES]; /* votes per class: voting blocks, or
						 * their packets (weight_packets) */
	uint32_t votes_other;		      /* votes for no class (reason other) */
	float prob[CLASSIFY_MAX_CLASSES];     /* mean probabilities over the voting blocks */
};

/* Per-flow state between blocks: internal, public for its size.  Votes are
 * floats: a block's weight is 1, or its packets (weight_packets). */
struct classify_acc {
	uint64_t flow_id;		      /* 0: free slot */
	float votes[2][CLASSIFY_MAX_CLASSES]; /* [complete][class] */
	float psum[2][CLASSIFY_MAX_CLASSES];  /* [complete][class] summed probabilities
						 * (times the weight) */
	float other[2];			      /* [complete] votes for no class */
	uint32_t blocks[2];		      /* [complete] classified */
	uint32_t voting[2];		      /* [complete] of which not sparse */
};
_Static_assert(sizeof(struct classify_acc) <= 320, "per-flow classify state stays small");

struct classify_stats {
	uint64_t blocks;	/* classified */
	uint64_t blocks_early;	/* of which partial */
	uint64_t blocks_sparse; /* of which too sparse to vote */
	uint64_t blocks_other;	/* of which rejected or background */
	uint64_t blocks_cached; /* of which from the verdict cache */
	uint64_t blocks_failed; /* inference refused the block (cell outside
						 * the picture: a flow table not configured by
						 * classifier_flow_config) */
	uint64_t flows;		/* flow verdicts given */
	uint64_t flows_early;
	uint64_t flows_class[CLASSIFY_MAX_CLASSES];    /* flow verdicts per class */
	uint64_t flows_unknown[CLASSIFY_REASON_COUNT]; /* per reason ([CLASSIFY_OK] unused) */
	uint64_t flows_untracked; /* verdicts 'untracked': the accumulator table
						 * could not be allocated, or was full (a
						 * second, larger flow table on one classifier) */
};

struct classifier;
struct model_picture;

/*
 * Load the model (cfg->model_path, or the embedded default), check it, and
 * size the inference engine.  NULL on failure with one line in err
 * ("FILE: what is wrong") and errno set.
 */
struct classifier *classifier_new(const struct classifier_config *cfg, char *err, size_t errlen);
void classifier_free(struct classifier *c);

const struct model *classifier_model(const struct classifier *c);
/* The thresholds in use (min_confidence resolved from AUTO). */
const struct classifier_config *classifier_config(const struct classifier *c);
/* Class name; "unknown" for CLASSIFY_UNKNOWN or an index out of range. */
const char *classifier_class_name(const struct classifier *c, uint32_t cls);
/* The model's source: its path, or "embedded:model/default.fpcnn". */
const char *classifier_model_source(const struct classifier *c);
const struct classify_stats *classifier_stats(const struct classifier *c);
/* Bytes allocated (engine, cell buffers, verdict cache, accumulator table). */
size_t classifier_memory(const struct classifier *c);

/* The embedded default model file (model/default.fpcnn at build time). */
const void *classifier_default_model(size_t *len);

/*
 * Set cfg's resolution and window (and hop = window) from the model, so
 * blocks are the pictures the model was trained on.  Other fields kept.
 */
void classifier_flow_config(const struct classifier *c, struct flow_config *cfg);

/*
 * Classify one block from its cells (call from the flow table's block
 * event; the cells are only valid then) and add it to its flow's votes.
 * out may be NULL.  0, -EINVAL (cells outside the model's picture: the
 * table's res differs), or -ENOMEM (the accumulator table could not be
 * allocated: the block verdict is still given, the flow is counted in
 * flows_untracked).
 */
int classifier_block(struct classifier *c, const struct flow_table *ft, const struct flow *f,
		     const struct block *b, struct block_verdict *out);

/*
 * The combined verdict of a flow (call from the flow-end event; the flow's
 * blocks were all handed out before it).  Frees the flow's accumulator.
 */
void classifier_flow_end(struct classifier *c, const struct flow_table *ft, const struct flow *f,
			 struct flow_verdict *out);

/* Forget every flow's votes (a new table, without flow ends). */
void classifier_reset(struct classifier *c);

/*
 * The seed's Classifier on one dense FlowPic: in_channels planes of
 * res x res counts as cnn_run() takes them (pic[(ch * res + y) * res + x]).
 * The verdict's flow_id and index are 0, early false.  0 or -errno.
 */
int classifier_picture(struct classifier *c, const uint8_t *pic, struct block_verdict *out);

/* One sample of a flow: time, transport payload bytes, direction. */
struct classify_sample {
	uint64_t ts_ns;
	uint32_t size;
	uint8_t dir; /* enum flow_dir */
};

/*
 * The seed's Classifier on one flow's samples (times in any origin,
 * non-decreasing): cut into the model's blocks exactly as a capture would be
 * (one flow; its time starts at the first sample), each block classified,
 * the verdicts combined.  end_ns is when observing the flow stopped (the
 * end of the capture): blocks whose window passed by then are complete; 0
 * means at the last sample, so the last block is partial.  blocks may be
 * NULL; otherwise up to max_blocks block verdicts are stored and *nblocks
 * (may be NULL) says how many blocks there were.  0 or -errno (-ENOMEM).
 */
int classifier_samples(struct classifier *c, const struct classify_sample *s, size_t n,
		       uint64_t end_ns, struct block_verdict *blocks, size_t max_blocks,
		       size_t *nblocks, struct flow_verdict *out);

/* ---- whole files ---- */

struct classify_callbacks {
	/* Each block verdict (optional). */
	void (*block)(void *ctx, const struct classifier *c, const struct flow *f,
		      const struct block_verdict *v);
	/* Each flow and its combined verdict, in the order flows end. */
	void (*flow)(void *ctx, const struct classifier *c, const struct flow *f,
		     enum flow_end_reason why, const struct flow_verdict *v);
	/* Each block's picture as the model judged it (optional;
	 * core/model_picture.h, every pixel listed), right after block for
	 * the same block b (its cells not readable here); b and p are valid
	 * during the call only. */
	void (*picture)(void *ctx, const struct classifier *c, const struct flow *f,
			const struct block *b, const struct block_verdict *v,
			const struct model_picture *p);
	/* About every 65536 records, for progress (optional). */
	void (*progress)(void *ctx, const struct source *s);
	void *ctx;
};

struct classify_file_result {
	enum source_kind kind;
	int linktype;
	struct pipeline_counts counts; /* every record: in a flow or skipped by reason */
	struct flow_stats stats;       /* the flow table's, after the flush */
	bool opened;		       /* the file was recognised */
	bool partial;		       /* reading stopped early; error says why */
	char error[512];	       /* one line "FILE: what is wrong", or "" */
};

/*
 * Classify every flow of a pcap, pcapng or samples CSV file (gzip/xz too;
 * the type from the content).  base gives the flow table's other settings
 * (idle timeout, max_flows, max_cells; NULL: defaults); res and window come
 * from the model.  Returns 0 when the whole file was read, -EIO when reading
 * stopped early (what was read is classified and given to the callbacks;
 * res->partial), or -errno when the file could not be opened or recognised
 * (res->opened false).  The message is in res->error either way (and
 * logged through log.h when reading stops early, as pipeline_run() does).
 */
int classifier_file(struct classifier *c, const char *path, const struct flow_config *base,
		    const struct classify_callbacks *cb, struct classify_file_result *res);
/* The same, refusing a file of the other kind with -EINVAL and a message. */
int classifier_pcap_file(struct classifier *c, const char *path, const struct flow_config *base,
			 const struct classify_callbacks *cb, struct classify_file_result *res);
int classifier_csv_file(struct classifier *c, const char *path, const struct flow_config *base,
			const struct classify_callbacks *cb, struct classify_file_result *res);

#endif
