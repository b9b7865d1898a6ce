// SPDX-License-Identifier: MIT
/*
 * model_file.c - reading, checking and writing .fpcnn model files; see
 * model_file.h and docs/model-format.md.
 *
 * Loading goes from the outside in: magic, version, header size, file size,
 * CRC-32, then the strings, the layer table and every tensor's place in the
 * file, and last the meaning (model_check(): shapes chain from the input to
 * the logits, quantization parameters in range, no int32 overflow possible).
 * The file is copied once into a 64-byte aligned buffer that the model's
 * tensor pointers point into.
 *
 * Over 700 lines on purpose: every check of an untrusted file, each with its
 * own one-line message, and the writer that must produce what they accept.
 */
#include "model_file.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "log.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "model files are little-endian and read in place");
_Static_assert(sizeof(float) == 4, "f32 on disk");

#define HEADER_SIZE 384
#define LAYER_SIZE 80
#define MAX_FILE_SIZE ((uint64_t)1 << 30)
#define MAX_DIM 65535
#define MAX_ELEMS ((uint64_t)1 << 28)

/* On-disk header: every field little-endian. */
struct fpcnn_header {
	char magic[8];
	uint32_t version;
	uint32_t header_size;
	uint64_t file_size; /* including the trailing CRC-32 */
	uint32_t n_classes;
	uint32_t n_layers;
	uint32_t res;
	uint32_t in_channels;
	uint64_t window_ns;
	uint32_t size_max;
	uint8_t dirs;
	uint8_t reserved0[3];
	float input_scale;
	uint32_t reserved1;
	uint64_t strings_off;
	uint64_t strings_size;
	uint64_t layers_off;
	uint64_t data_off;
	uint64_t data_size;
	uint8_t reserved2[24];
	int8_t lut[256];
};
_Static_assert(sizeof(struct fpcnn_header) == HEADER_SIZE, "header is 384 bytes");
_Static_assert(offsetof(struct fpcnn_header, window_ns) == 40, "header layout");
_Static_assert(offsetof(struct fpcnn_header, strings_off) == 64, "header layout");
_Static_assert(offsetof(struct fpcnn_header, lut) == 128, "header layout");

/* On-disk layer record. */
struct fpcnn_layer {
	uint8_t type;
	uint8_t flags; /* bit 0: ReLU */
	uint16_t reserved;
	uint32_t in_c, in_h, in_w;
	uint32_t out_c, out_h, out_w;
	uint16_t kh, kw, sh, sw;
	uint16_t pad_top, pad_left, pad_bottom, pad_right;
	float out_scale;
	uint64_t weight_off;
	uint64_t bias_off;
	uint64_t mult_off;
	uint64_t shift_off;
};
_Static_assert(sizeof(struct fpcnn_layer) == LAYER_SIZE, "layer record is 80 bytes");
_Static_assert(offsetof(struct fpcnn_layer, kh) == 28, "layer layout");
_Static_assert(offsetof(struct fpcnn_layer, weight_off) == 48, "layer layout");

#define LAYER_FLAG_RELU 1u

static const char *const type_names[] = { "?", "conv2d", "maxpool", "dense", "relu", "flatten" };
static const char *const dirs_names[] = { "both", "fwd", "rev", "split" };

const char *model_dirs_name(enum model_dirs d)
{
	return (unsigned)d < 4 ? dirs_names[d] : "unknown";
}

static const char *type_name(unsigned int t)
{
	return t < 6 ? type_names[t] : "unknown";
}

/* One line into err (log_errbuf), and the -EINVAL the checks return. */
#define fail(err, errlen, ...) log_errbuf_ret(-EINVAL, err, errlen, __VA_ARGS__)

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

size_t model_tensor_size(const struct model *m, int i)
{
	const struct model_layer *l;

	if (i < 0)
		return (size_t)m->in_channels * m->res * m->res;
	l = &m->layers[i];
	return (size_t)l->out_c * l->out_h * l->out_w;
}

/* Before the dimensions are checked the product may not fit 32 bits. */
static uint64_t layer_k64(const struct model_layer *l)
{
	if (l->type == MODEL_CONV2D)
		return (uint64_t)l->in_c * l->kh * l->kw;
	if (l->type == MODEL_DENSE)
		return (uint64_t)l->in_c * l->in_h * l->in_w;
	return 0;
}

uint32_t model_layer_k(const struct model_layer *l)
{
	return (uint32_t)layer_k64(l);
}

static bool has_params(enum model_layer_type t)
{
	return t == MODEL_CONV2D || t == MODEL_DENSE;
}

static size_t weight_count(const struct model_layer *l)
{
	return has_params(l->type) ? (size_t)l->out_c * model_layer_k(l) : 0;
}

/* ---- model_check(): the meaning of a model, wherever it came from ---- */

static bool scale_ok(float s)
{
	return isfinite(s) && s > 0;
}

static int check_out_shape(const struct model_layer *l, uint32_t h, uint32_t w, uint32_t c,
			   char *err, size_t errlen)
{
	if (l->out_c != c || l->out_h != h || l->out_w != w)
		return fail(err, errlen,
			    "output %ux%ux%u, expected %ux%ux%u from its input and "
			    "parameters",
			    l->out_c, l->out_h, l->out_w, c, h, w);
	return 0;
}

static int check_window(const struct model_layer *l, bool pads, char *err, size_t errlen)
{
	uint32_t ph = (uint32_t)l->pad_top + l->pad_bottom;
	uint32_t pw = (uint32_t)l->pad_left + l->pad_right;

	if (!l->kh || !l->kw || !l->sh || !l->sw)
		return fail(err, errlen, "kernel %ux%u, stride %ux%u: all must be at least 1",
			    l->kh, l->kw, l->sh, l->sw);
	if (!pads && (ph || pw))
		return fail(err, errlen, "padding is only for conv2d");
	if (l->pad_top >= l->kh || l->pad_bottom >= l->kh || l->pad_left >= l->kw ||
	    l->pad_right >= l->kw)
		return fail(err, errlen, "padding %u,%u,%u,%u must be below the kernel %ux%u",
			    l->pad_top, l->pad_left, l->pad_bottom, l->pad_right, l->kh, l->kw);
	if (l->in_h + ph < l->kh || l->in_w + pw < l->kw)
		return fail(err, errlen, "kernel %ux%u larger than the (padded) input %ux%u", l->kh,
			    l->kw, l->in_h + ph, l->in_w + pw);
	return check_out_shape(l, (l->in_h + ph - l->kh) / l->sh + 1,
			       (l->in_w + pw - l->kw) / l->sw + 1,
			       l->type == MODEL_CONV2D ? l->out_c : l->in_c, err, errlen);
}

static int check_no_window(const struct model_layer *l, char *err, size_t errlen)
{
	if (l->kh || l->kw || l->sh || l->sw || l->pad_top || l->pad_left || l->pad_bottom ||
	    l->pad_right)
		return fail(err, errlen, "kernel, stride and padding must be 0 for %s",
			    type_name(l->type));
	return 0;
}

static int check_geometry(const struct model_layer *l, char *err, size_t errlen)
{
	switch (l->type) {
	case MODEL_CONV2D:
		return check_window(l, true, err, errlen);
	case MODEL_MAXPOOL:
		return check_window(l, false, err, errlen);
	case MODEL_DENSE:
		if (check_no_window(l, err, errlen))
			return -EINVAL;
		return check_out_shape(l, 1, 1, l->out_c, err, errlen);
	case MODEL_RELU:
		if (check_no_window(l, err, errlen))
			return -EINVAL;
		return check_out_shape(l, l->in_h, l->in_w, l->in_c, err, errlen);
	case MODEL_FLATTEN:
		if (check_no_window(l, err, errlen))
			return -EINVAL;
		return check_out_shape(l, 1, 1, l->in_c * l->in_h * l->in_w, err, errlen);
	}
	return fail(err, errlen, "unknown layer type %u", (unsigned int)l->type);
}

static int check_dims(const struct model_layer *l, char *err, size_t errlen)
{
	uint64_t in = (uint64_t)l->in_c * l->in_h * l->in_w;
	uint64_t out = (uint64_t)l->out_c * l->out_h * l->out_w;

	if (!l->in_c || !l->in_h || !l->in_w || !l->out_c || !l->out_h || !l->out_w)
		return fail(err, errlen, "a dimension is 0");
	if (l->in_c > MAX_DIM || l->in_h > MAX_DIM || l->in_w > MAX_DIM || l->out_c > MAX_DIM ||
	    l->out_h > MAX_DIM || l->out_w > MAX_DIM || in > MAX_ELEMS || out > MAX_ELEMS)
		return fail(err, errlen, "tensor too large (dimensions up to %u, %llu elements)",
			    MAX_DIM, (unsigned long long)MAX_ELEMS);
	if (has_params(l->type) && layer_k64(l) * l->out_c > MAX_ELEMS)
		return fail(err, errlen, "too many weights");
	return 0;
}

static int check_weights(const struct model_layer *l, char *err, size_t errlen)
{
	size_t i, n = weight_count(l);

	for (i = 0; i < n; i++)
		if (l->weight[i] == -128)
			return fail(err, errlen, "weight %zu is -128 (weights are -127 .. 127)", i);
	return 0;
}

static int check_channel(const struct model_layer *l, uint32_t c, char *err, size_t errlen)
{
	int64_t m = l->mult[c], b = l->bias[c];
	int64_t bound = MODEL_ACC_BOUND - (int64_t)model_layer_k(l) * 127 * 128;

	if (m != 0 && (m < (1L << 30) || m > INT32_MAX))
		return fail(err, errlen, "channel %u: multiplier %lld outside 0 or [2^30, 2^31)", c,
			    (long long)m);
	if (l->shift[c] < 0 || l->shift[c] > 31)
		return fail(err, errlen, "channel %u: shift %d outside 0 .. 31", c,
			    (int)l->shift[c]);
	if (b > bound || b < -bound)
		return fail(err, errlen,
			    "channel %u: |bias| %lld + K %u * 127 * 128 exceeds 2^30 "
			    "(int32 accumulator bound)",
			    c, (long long)(b < 0 ? -b : b), model_layer_k(l));
	return 0;
}

static int check_params(const struct model_layer *l, float in_scale, char *err, size_t errlen)
{
	uint32_t c;

	if (!scale_ok(l->out_scale))
		return fail(err, errlen, "output scale %g is not a positive number",
			    (double)l->out_scale);
	if (!has_params(l->type)) {
		if (l->relu)
			return fail(err, errlen, "the ReLU flag is only for conv2d and dense");
		if (l->out_scale != in_scale)
			return fail(err, errlen, "output scale %g differs from its input's %g",
				    (double)l->out_scale, (double)in_scale);
		return 0;
	}
	if (!l->weight || !l->bias || !l->mult || !l->shift)
		return fail(err, errlen, "tensors missing");
	if (layer_k64(l) * 127 * 128 > (uint64_t)MODEL_ACC_BOUND)
		return fail(err, errlen,
			    "K %u inputs per output: K * 127 * 128 exceeds 2^30 "
			    "(int32 accumulator bound)",
			    model_layer_k(l));
	if (check_weights(l, err, errlen))
		return -EINVAL;
	for (c = 0; c < l->out_c; c++)
		if (check_channel(l, c, err, errlen))
			return -EINVAL;
	return 0;
}

static int check_layer(const struct model *m, uint32_t i, char *err, size_t errlen)
{
	const struct model_layer *l = &m->layers[i];
	uint32_t c = m->in_channels, h = m->res, w = m->res;
	float in_scale = m->input_scale;
	char why[200];

	if (i > 0) {
		c = l[-1].out_c;
		h = l[-1].out_h;
		w = l[-1].out_w;
		in_scale = l[-1].out_scale;
	}
	if (l->in_c != c || l->in_h != h || l->in_w != w)
		return fail(err, errlen,
			    "layer %u (%s): input %ux%ux%u does not match the %s "
			    "%ux%ux%u",
			    i, type_name(l->type), l->in_c, l->in_h, l->in_w,
			    i ? "previous output" : "model input", c, h, w);
	if (check_dims(l, why, sizeof(why)) || check_geometry(l, why, sizeof(why)) ||
	    check_params(l, in_scale, why, sizeof(why)))
		return fail(err, errlen, "layer %u (%s): %s", i, type_name(l->type), why);
	return 0;
}

static int check_strings(const struct model *m, char *err, size_t errlen)
{
	uint32_t i, j;

	if (!m->name || !*m->name)
		return fail(err, errlen, "model name is empty");
	if (!m->version)
		return fail(err, errlen, "model version missing");
	for (i = 0; i < m->n_classes; i++) {
		if (!m->classes[i] || !*m->classes[i])
			return fail(err, errlen, "class %u has no name", i);
		for (j = 0; j < i; j++)
			if (!strcmp(m->classes[i], m->classes[j]))
				return fail(err, errlen, "class name \"%s\" appears twice",
					    m->classes[i]);
	}
	return 0;
}

static int check_input(const struct model *m, char *err, size_t errlen)
{
	if (m->n_classes < 1 || m->n_classes > MODEL_MAX_CLASSES)
		return fail(err, errlen, "%u classes (1 .. %u)", m->n_classes, MODEL_MAX_CLASSES);
	if (m->n_layers < 1 || m->n_layers > MODEL_MAX_LAYERS)
		return fail(err, errlen, "%u layers (1 .. %u)", m->n_layers, MODEL_MAX_LAYERS);
	if (m->res < 1 || m->res > 2048)
		return fail(err, errlen, "input resolution %u (1 .. 2048)", m->res);
	if ((unsigned int)m->dirs > MODEL_DIR_SPLIT)
		return fail(err, errlen, "direction mode %u unknown", (unsigned int)m->dirs);
	if (m->in_channels != (m->dirs == MODEL_DIR_SPLIT ? 2u : 1u))
		return fail(err, errlen, "%u input channels with direction \"%s\"", m->in_channels,
			    model_dirs_name(m->dirs));
	if (!m->window_ns)
		return fail(err, errlen, "window is 0");
	if (!m->size_max || m->size_max > 65535)
		return fail(err, errlen, "size axis maximum %u (1 .. 65535)", m->size_max);
	if (!scale_ok(m->input_scale))
		return fail(err, errlen, "input scale %g is not a positive number",
			    (double)m->input_scale);
	return 0;
}

int model_check(const struct model *m, char *err, size_t errlen)
{
	uint32_t i;

	if (check_input(m, err, errlen) || check_strings(m, err, errlen))
		return -EINVAL;
	for (i = 0; i < m->n_layers; i++)
		if (check_layer(m, i, err, errlen))
			return -EINVAL;
	if (model_tensor_size(m, (int)m->n_layers - 1) != m->n_classes)
		return fail(err, errlen, "the last layer gives %zu values for %u classes",
			    model_tensor_size(m, (int)m->n_layers - 1), m->n_classes);
	return 0;
}

/* ---- the file: where things are ---- */

struct loader {
	const uint8_t *buf;
	uint64_t len;
	struct fpcnn_header h;
	char *err;
	size_t errlen;
};

static int check_envelope(struct loader *ld)
{
	const struct fpcnn_header *h = &ld->h;
	uint64_t len = ld->len;
	uint32_t crc, want;

	if (memcmp(ld->buf, MODEL_MAGIC, len < 8 ? len : 8))
		return fail(ld->err, ld->errlen, "not a flowpic model file (bad magic)");
	if (len < 12)
		return fail(ld->err, ld->errlen, "truncated (%llu bytes)", (unsigned long long)len);
	memcpy(&ld->h.version, ld->buf + 8, 4);
	if (h->version != MODEL_FORMAT_VERSION) {
		log_errbuf(ld->err, ld->errlen,
			   "format version %u, this flowpic reads version %u: %s", h->version,
			   MODEL_FORMAT_VERSION,
			   h->version > MODEL_FORMAT_VERSION ? "update flowpic" :
							       "re-export the model");
		return -ENOTSUP;
	}
	if (len < HEADER_SIZE)
		return fail(ld->err, ld->errlen, "truncated (%llu bytes, the header alone is %d)",
			    (unsigned long long)len, HEADER_SIZE);
	memcpy(&ld->h, ld->buf, HEADER_SIZE);
	if (h->header_size != HEADER_SIZE)
		return fail(ld->err, ld->errlen, "header size %u, version 1 has %d", h->header_size,
			    HEADER_SIZE);
	if (h->file_size > len)
		return fail(ld->err, ld->errlen, "truncated (%llu of %llu bytes)",
			    (unsigned long long)len, (unsigned long long)h->file_size);
	if (h->file_size < len)
		return fail(ld->err, ld->errlen,
			    "%llu bytes, but the header says %llu "
			    "(trailing data?)",
			    (unsigned long long)len, (unsigned long long)h->file_size);
	memcpy(&want, ld->buf + len - 4, 4);
	crc = (uint32_t)crc32(crc32(0, Z_NULL, 0), ld->buf, (uInt)(len - 4));
	if (crc != want) {
		log_errbuf(ld->err, ld->errlen, "checksum mismatch (file corrupted?)");
		return -EBADMSG;
	}
	return 0;
}

/* [off, off + size) inside [lo, hi) and aligned to align. */
static bool region_ok(uint64_t off, uint64_t size, uint64_t lo, uint64_t hi, uint64_t align)
{
	return off >= lo && off <= hi && size <= hi - off && off % align == 0;
}

static int check_header(struct loader *ld)
{
	const struct fpcnn_header *h = &ld->h;
	uint64_t end = ld->len - 4;
	uint8_t zero[24] = { 0 };

	if (h->dirs > MODEL_DIR_SPLIT || h->reserved0[0] || h->reserved0[1] || h->reserved0[2] ||
	    h->reserved1 || memcmp(h->reserved2, zero, sizeof(zero)))
		return fail(ld->err, ld->errlen, "unknown values in reserved header fields");
	if (h->n_classes < 1 || h->n_classes > MODEL_MAX_CLASSES)
		return fail(ld->err, ld->errlen, "%u classes (1 .. %u)", h->n_classes,
			    MODEL_MAX_CLASSES);
	if (h->n_layers < 1 || h->n_layers > MODEL_MAX_LAYERS)
		return fail(ld->err, ld->errlen, "%u layers (1 .. %u)", h->n_layers,
			    MODEL_MAX_LAYERS);
	if (!region_ok(h->strings_off, h->strings_size, HEADER_SIZE, end, 1))
		return fail(ld->err, ld->errlen, "string table at %llu (+%llu) is outside the file",
			    (unsigned long long)h->strings_off,
			    (unsigned long long)h->strings_size);
	if (!region_ok(h->layers_off, (uint64_t)h->n_layers * LAYER_SIZE, HEADER_SIZE, end, 8))
		return fail(ld->err, ld->errlen,
			    "layer table at %llu is outside the file or not "
			    "8-byte aligned",
			    (unsigned long long)h->layers_off);
	if (!region_ok(h->data_off, h->data_size, HEADER_SIZE, end, MODEL_ALIGN))
		return fail(ld->err, ld->errlen,
			    "tensor data at %llu (+%llu) is outside the file "
			    "or not %d-byte aligned",
			    (unsigned long long)h->data_off, (unsigned long long)h->data_size,
			    MODEL_ALIGN);
	return 0;
}

static bool utf8_ok(const uint8_t *s, size_t n)
{
	size_t i = 0, k;

	while (i < n) {
		uint8_t c = s[i];
		size_t more = c < 0x80		 ? 0 :
			      (c & 0xe0) == 0xc0 ? 1 :
			      (c & 0xf0) == 0xe0 ? 2 :
			      (c & 0xf8) == 0xf0 ? 3 :
						   9;

		if (more == 9 || (more == 1 && c < 0xc2) || i + more >= n)
			return false;
		for (k = 1; k <= more; k++)
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
		i += more + 1;
	}
	return true;
}

/* Strings: name, version, then the class names, each NUL-terminated. */
static int load_strings(struct loader *ld, struct model *m)
{
	char *p = (char *)m->mem + ld->h.strings_off;
	char *end = p + ld->h.strings_size;
	uint32_t i, want = 2 + ld->h.n_classes;
	char *s[MODEL_MAX_CLASSES + 2];

	for (i = 0; i < want; i++) {
		char *nul = memchr(p, 0, (size_t)(end - p));

		if (!nul)
			return fail(ld->err, ld->errlen,
				    "string table: %u of %u strings, or one is not terminated", i,
				    want);
		if (!utf8_ok((const uint8_t *)p, (size_t)(nul - p)))
			return fail(ld->err, ld->errlen, "string table: string %u is not UTF-8", i);
		s[i] = p;
		p = nul + 1;
	}
	if (p != end)
		return fail(ld->err, ld->errlen,
			    "string table: %zu bytes after the last class "
			    "name",
			    (size_t)(end - p));
	m->name = s[0];
	m->version = s[1];
	memcpy(m->classes, s + 2, ld->h.n_classes * sizeof(char *));
	return 0;
}

static int tensor_at(struct loader *ld, struct model *m, uint32_t i, const char *what, uint64_t off,
		     uint64_t size, const void **out)
{
	const struct fpcnn_header *h = &ld->h;

	if (!region_ok(off, size, h->data_off, h->data_off + h->data_size, MODEL_ALIGN))
		return fail(ld->err, ld->errlen,
			    "layer %u: %s at %llu (+%llu) is outside the "
			    "tensor data or not %d-byte aligned",
			    i, what, (unsigned long long)off, (unsigned long long)size,
			    MODEL_ALIGN);
	*out = (const uint8_t *)m->mem + off;
	return 0;
}

static void layer_from_disk(struct model_layer *l, const struct fpcnn_layer *d)
{
	l->type = (enum model_layer_type)d->type;
	l->relu = d->flags & LAYER_FLAG_RELU;
	l->in_c = d->in_c;
	l->in_h = d->in_h;
	l->in_w = d->in_w;
	l->out_c = d->out_c;
	l->out_h = d->out_h;
	l->out_w = d->out_w;
	l->kh = d->kh;
	l->kw = d->kw;
	l->sh = d->sh;
	l->sw = d->sw;
	l->pad_top = d->pad_top;
	l->pad_left = d->pad_left;
	l->pad_bottom = d->pad_bottom;
	l->pad_right = d->pad_right;
	l->out_scale = d->out_scale;
}

static int load_tensors(struct loader *ld, struct model *m, uint32_t i, const struct fpcnn_layer *d)
{
	struct model_layer *l = &m->layers[i];
	uint64_t n = l->out_c;
	char why[160];
	int rc;

	if (!has_params(l->type)) {
		if (d->weight_off || d->bias_off || d->mult_off || d->shift_off)
			return fail(ld->err, ld->errlen, "layer %u (%s) has tensor offsets", i,
				    type_name(l->type));
		return 0;
	}
	if (check_dims(l, why, sizeof(why)))
		return fail(ld->err, ld->errlen, "layer %u (%s): %s", i, type_name(l->type), why);
	rc = tensor_at(ld, m, i, "weights", d->weight_off, weight_count(l),
		       (const void **)&l->weight);
	rc = rc ? rc : tensor_at(ld, m, i, "biases", d->bias_off, 4 * n, (const void **)&l->bias);
	rc = rc ? rc :
		  tensor_at(ld, m, i, "multipliers", d->mult_off, 4 * n, (const void **)&l->mult);
	rc = rc ? rc : tensor_at(ld, m, i, "shifts", d->shift_off, 4 * n, (const void **)&l->shift);
	return rc;
}

static int load_layers(struct loader *ld, struct model *m)
{
	struct fpcnn_layer d;
	uint32_t i;

	for (i = 0; i < m->n_layers; i++) {
		memcpy(&d, ld->buf + ld->h.layers_off + (uint64_t)i * LAYER_SIZE, LAYER_SIZE);
		if (d.type < MODEL_CONV2D || d.type > MODEL_FLATTEN)
			return fail(ld->err, ld->errlen, "layer %u: unknown type %u", i, d.type);
		if (d.reserved || (d.flags & ~LAYER_FLAG_RELU))
			return fail(ld->err, ld->errlen, "layer %u: unknown flags or reserved bits",
				    i);
		layer_from_disk(&m->layers[i], &d);
		if (load_tensors(ld, m, i, &d))
			return -EINVAL;
	}
	return 0;
}

static void model_from_header(struct model *m, const struct fpcnn_header *h)
{
	m->n_classes = h->n_classes;
	m->res = h->res;
	m->in_channels = h->in_channels;
	m->dirs = (enum model_dirs)h->dirs;
	m->window_ns = h->window_ns;
	m->size_max = h->size_max;
	m->input_scale = h->input_scale;
	memcpy(m->lut, h->lut, sizeof(m->lut));
	m->n_layers = h->n_layers;
}

static struct model *model_alloc(uint32_t n_layers, uint32_t n_classes)
{
	struct model *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->layers = calloc(n_layers, sizeof(*m->layers));
	m->classes = calloc(n_classes, sizeof(*m->classes));
	if (!m->layers || !m->classes) {
		model_free(m);
		return NULL;
	}
	return m;
}

static int parse(struct loader *ld, struct model **out, void *mem)
{
	struct model *m;
	int rc;

	rc = check_envelope(ld);
	rc = rc ? rc : check_header(ld);
	if (rc)
		return rc;
	m = model_alloc(ld->h.n_layers, ld->h.n_classes);
	if (!m) {
		log_errbuf(ld->err, ld->errlen, "out of memory");
		return -ENOMEM;
	}
	m->mem = mem;
	m->mem_len = ld->len;
	model_from_header(m, &ld->h);
	rc = load_strings(ld, m);
	rc = rc ? rc : load_layers(ld, m);
	rc = rc ? rc : model_check(m, ld->err, ld->errlen);
	if (rc) {
		m->mem = NULL;
		model_free(m);
		return rc;
	}
	*out = m;
	return 0;
}

/* Takes mem (len bytes, 64-byte aligned) in all cases. */
static struct model *load_owned(void *mem, size_t len, const char *name, char *err, size_t errlen)
{
	char why[256];
	struct loader ld = { .buf = mem, .len = len, .err = why, .errlen = sizeof(why) };
	struct model *m = NULL;
	int rc;

	rc = parse(&ld, &m, mem);
	if (rc) {
		snprintf(err, errlen, "%s: %s", name, why);
		free(mem);
		errno = -rc;
		return NULL;
	}
	return m;
}

static void *aligned_buf(size_t len)
{
	void *p;

	if (posix_memalign(&p, 64, len ? len : 1)) {
		errno = ENOMEM;
		return NULL;
	}
	return p;
}

struct model *model_load_mem(const void *buf, size_t len, const char *name, char *err,
			     size_t errlen)
{
	void *mem;

	if (len > MAX_FILE_SIZE) {
		snprintf(err, errlen, "%s: %zu bytes, larger than any model (1 GiB)", name, len);
		errno = EINVAL;
		return NULL;
	}
	mem = aligned_buf(len);
	if (!mem) {
		snprintf(err, errlen, "%s: out of memory", name);
		return NULL;
	}
	memcpy(mem, buf, len);
	return load_owned(mem, len, name, err, errlen);
}

static int read_all(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, (uint8_t *)buf + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO; /* shrank while read */
		got += (size_t)n;
	}
	return 0;
}

/* The whole file in an aligned buffer, or NULL with errno set. */
static void *read_file(int fd, size_t *len)
{
	struct stat st;
	void *mem;
	int rc;

	if (fstat(fd, &st))
		return NULL;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > MAX_FILE_SIZE) {
		errno = EFBIG;
		return NULL;
	}
	mem = aligned_buf((size_t)st.st_size);
	if (!mem)
		return NULL;
	rc = read_all(fd, mem, (size_t)st.st_size);
	if (rc) {
		free(mem);
		errno = -rc;
		return NULL;
	}
	*len = (size_t)st.st_size;
	return mem;
}

struct model *model_load(const char *path, char *err, size_t errlen)
{
	size_t len = 0;
	void *mem;
	int fd, e;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		goto fail;
	mem = read_file(fd, &len);
	e = errno;
	close(fd);
	errno = e;
	if (!mem)
		goto fail;
	return load_owned(mem, len, path, err, errlen);
fail:
	e = errno;
	snprintf(err, errlen, "%s: cannot read: %s", path,
		 e == EFBIG ? "not a regular file of at most 1 GiB" : strerror(e));
	errno = e;
	return NULL;
}

void model_free(struct model *m)
{
	if (!m)
		return;
	free(m->layers);
	free(m->classes);
	free(m->mem);
	free(m);
}

/* ---- writing: the canonical layout ---- */

struct layout {
	uint64_t strings_size;
	uint64_t layers_off;
	uint64_t data_off;
	uint64_t data_end;
	uint64_t off[MODEL_MAX_LAYERS][4]; /* weight, bias, mult, shift */
};

static void plan(const struct model *m, struct layout *lo)
{
	uint64_t pos;
	uint32_t i, c;

	lo->strings_size = strlen(m->name) + strlen(m->version) + 2;
	for (c = 0; c < m->n_classes; c++)
		lo->strings_size += strlen(m->classes[c]) + 1;
	lo->layers_off = align_up(HEADER_SIZE + lo->strings_size, 8);
	lo->data_off = align_up(lo->layers_off + (uint64_t)m->n_layers * LAYER_SIZE, MODEL_ALIGN);
	pos = lo->data_off;
	for (i = 0; i < m->n_layers; i++) {
		const struct model_layer *l = &m->layers[i];
		uint64_t sizes[4] = { weight_count(l), 4u * l->out_c, 4u * l->out_c,
				      4u * l->out_c };

		for (c = 0; c < 4; c++) {
			lo->off[i][c] = 0;
			if (!has_params(l->type))
				continue;
			lo->off[i][c] = pos;
			pos = align_up(pos + sizes[c], MODEL_ALIGN);
		}
	}
	lo->data_end = pos;
}

static void put_header(const struct model *m, const struct layout *lo, uint8_t *buf)
{
	struct fpcnn_header h;

	memset(&h, 0, sizeof(h));
	memcpy(h.magic, MODEL_MAGIC, 8);
	h.version = MODEL_FORMAT_VERSION;
	h.header_size = HEADER_SIZE;
	h.file_size = lo->data_end + 4;
	h.n_classes = m->n_classes;
	h.n_layers = m->n_layers;
	h.res = m->res;
	h.in_channels = m->in_channels;
	h.window_ns = m->window_ns;
	h.size_max = m->size_max;
	h.dirs = (uint8_t)m->dirs;
	h.input_scale = m->input_scale;
	h.strings_off = HEADER_SIZE;
	h.strings_size = lo->strings_size;
	h.layers_off = lo->layers_off;
	h.data_off = lo->data_off;
	h.data_size = lo->data_end - lo->data_off;
	memcpy(h.lut, m->lut, sizeof(h.lut));
	memcpy(buf, &h, sizeof(h));
}

static void put_strings(const struct model *m, uint8_t *p)
{
	uint32_t c;

	p = (uint8_t *)stpcpy((char *)p, m->name) + 1;
	p = (uint8_t *)stpcpy((char *)p, m->version) + 1;
	for (c = 0; c < m->n_classes; c++)
		p = (uint8_t *)stpcpy((char *)p, m->classes[c]) + 1;
}

static void put_layer(const struct model_layer *l, const uint64_t off[4], uint8_t *buf,
		      uint8_t *rec)
{
	struct fpcnn_layer d = {
		.type = (uint8_t)l->type,
		.flags = l->relu ? LAYER_FLAG_RELU : 0,
		.in_c = l->in_c,
		.in_h = l->in_h,
		.in_w = l->in_w,
		.out_c = l->out_c,
		.out_h = l->out_h,
		.out_w = l->out_w,
		.kh = l->kh,
		.kw = l->kw,
		.sh = l->sh,
		.sw = l->sw,
		.pad_top = l->pad_top,
		.pad_left = l->pad_left,
		.pad_bottom = l->pad_bottom,
		.pad_right = l->pad_right,
		.out_scale = l->out_scale,
		.weight_off = off[0],
		.bias_off = off[1],
		.mult_off = off[2],
		.shift_off = off[3],
	};

	memcpy(rec, &d, sizeof(d));
	if (!has_params(l->type))
		return;
	memcpy(buf + off[0], l->weight, weight_count(l));
	memcpy(buf + off[1], l->bias, 4u * l->out_c);
	memcpy(buf + off[2], l->mult, 4u * l->out_c);
	memcpy(buf + off[3], l->shift, 4u * l->out_c);
}

int model_encode(const struct model *m, uint8_t **out, size_t *len)
{
	struct layout *lo;
	uint8_t *buf;
	uint32_t i, crc;
	char why[256];
	int rc = -ENOMEM;

	if (model_check(m, why, sizeof(why)))
		return -EINVAL;
	lo = malloc(sizeof(*lo));
	if (!lo)
		return -ENOMEM;
	plan(m, lo);
	buf = calloc(1, lo->data_end + 4);
	if (!buf)
		goto free_layout;
	put_header(m, lo, buf);
	put_strings(m, buf + HEADER_SIZE);
	for (i = 0; i < m->n_layers; i++)
		put_layer(&m->layers[i], lo->off[i], buf, buf + lo->layers_off + i * LAYER_SIZE);
	crc = (uint32_t)crc32(crc32(0, Z_NULL, 0), buf, (uInt)lo->data_end);
	memcpy(buf + lo->data_end, &crc, 4);
	*out = buf;
	*len = lo->data_end + 4;
	rc = 0;
free_layout:
	free(lo);
	return rc;
}
