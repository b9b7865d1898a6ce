/* SPDX-License-Identifier: MIT */
/*
 * model_file.h - the versioned int8 CNN model file (.fpcnn): load, check, write.
 *
 * A model file carries everything the classifier needs and nothing it has to
 * guess: the classes and their names, the input spec (picture resolution,
 * window, size axis, direction handling, the count -> int8 lookup table and
 * its scale), the layer table, and the int8/int32 tensors, with a CRC-32 over
 * the whole file.  docs/model-format.md is the byte-level definition; the
 * Python writer (model/flowpic_model/modelfile.py) produces the same bytes.
 *
 * The loader checks everything before anything is used: magic, version, size,
 * checksum, strings, offsets and alignment of every tensor, the shape chain
 * from the input to the logits, the quantization parameters, and the int32
 * accumulator bound of every layer.  A bad file is refused with one line
 * naming the file and what is wrong, NULL is returned and errno set.
 */
#ifndef FLOWPIC_MODEL_FILE_H
#define FLOWPIC_MODEL_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MODEL_MAGIC "FPCNN\0\0\0"
#define MODEL_FORMAT_VERSION 1
#define MODEL_MAX_CLASSES 256
#define MODEL_MAX_LAYERS 64
#define MODEL_ALIGN 32
/* |bias| + K * 127 * 128 must stay within this: see docs/model-format.md. */
#define MODEL_ACC_BOUND ((int64_t)1 << 30)

enum model_layer_type {
	MODEL_CONV2D = 1,
	MODEL_MAXPOOL = 2,
	MODEL_DENSE = 3,
	MODEL_RELU = 4,
	MODEL_FLATTEN = 5,
};

/* Which samples feed the input channels. */
enum model_dirs {
	MODEL_DIR_BOTH = 0,  /* 1 channel, both directions summed */
	MODEL_DIR_FWD = 1,   /* 1 channel, initiator -> responder */
	MODEL_DIR_REV = 2,   /* 1 channel, responder -> initiator */
	MODEL_DIR_SPLIT = 3, /* 2 channels: fwd, rev */
};

/*
 * One layer.  Activations are CHW int8 tensors.  Conv weights are
 * [out_c][in_c][kh][kw], dense weights [out_c][in_c * in_h * in_w] (the
 * input flattened in CHW order), as PyTorch stores them.
 */
struct model_layer {
	enum model_layer_type type;
	bool relu; /* conv/dense: clamp the output at 0 */
	uint32_t in_c, in_h, in_w;
	uint32_t out_c, out_h, out_w;
	uint16_t kh, kw, sh, sw;			   /* conv, maxpool */
	uint16_t pad_top, pad_left, pad_bottom, pad_right; /* conv */
	float out_scale;				   /* real value of one output step */
	const int8_t *weight;				   /* conv, dense */
	const int32_t *bias;				   /* [out_c] */
	const int32_t *mult;				   /* [out_c], 0 or in [2^30, 2^31) */
	const int32_t *shift; /* [out_c], 0 .. 31: total shift 31 + shift */
};

struct model {
	char *name;    /* e.g. "lenet5-32" */
	char *version; /* the model's own version, e.g. "2024.1" */
	uint32_t n_classes;
	char **classes;	      /* n_classes UTF-8 names */
	uint32_t res;	      /* input side, time and size bins */
	uint32_t in_channels; /* 1, or 2 for MODEL_DIR_SPLIT */
	enum model_dirs dirs;
	uint64_t window_ns;
	uint32_t size_max; /* size axis maximum (1500) */
	float input_scale; /* real value of one input activation step */
	int8_t lut[256];   /* packet count -> input activation */
	uint32_t n_layers;
	struct model_layer *layers;
	void *mem; /* the checked copy of the file the pointers point into */
	size_t mem_len;
};

/*
 * Load and check a model.  On failure: NULL, errno set (EINVAL bad content,
 * EBADMSG checksum mismatch, ENOTSUP other format version, ENOMEM, or the
 * I/O error), and one line "<name>: <what is wrong>" in err.
 */
struct model *model_load(const char *path, char *err, size_t errlen);
struct model *model_load_mem(const void *buf, size_t len, const char *name, char *err,
			     size_t errlen);
void model_free(struct model *m);

/* Elements of the tensor after layer i (i = -1: the input). */
size_t model_tensor_size(const struct model *m, int i);

/* Reduction length K of a conv or dense layer: inputs per output. */
uint32_t model_layer_k(const struct model_layer *l);

/* The canonical file for m (what the Python writer produces), in a buffer
 * from malloc().  0, or -EINVAL / -ENOMEM. */
int model_encode(const struct model *m, uint8_t **buf, size_t *len);

/* Check a model built in memory (the rules the loader applies): 0, or
 * -EINVAL with the reason in err. */
int model_check(const struct model *m, char *err, size_t errlen);

const char *model_dirs_name(enum model_dirs d);

#endif
