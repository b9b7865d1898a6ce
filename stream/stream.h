/* SPDX-License-Identifier: MIT */
/*
 * stream.h - the agent side of the verdict stream (docs/stream.md).
 *
 * Verdicts go to flowpic-collector (or any gRPC server of
 * proto/flowpic.proto) as Batches on one long-lived Collector/Stream call:
 * gRPC over HTTP/2 (libnghttp2), cleartext h2c or TLS / mutual TLS
 * (OpenSSL), an optional bearer token.  Nothing is silently lost:
 *
 *   stream_submit()  ->  submit ring  ->  open batch  ->  memory queue (bounded)
 *                                                    \->  disk spool (bounded)
 *
 * A batch is cut when it holds batch_max verdicts or its oldest verdict is
 * batch_delay_ms old.  Batches wait in the memory queue until the collector
 * acknowledges them; when the collector is unreachable or the queue is full
 * they go to the spool directory, which is replayed in order when the
 * collector is back (also by the next run, after a restart).  Only a batch
 * that does not fit under spool_max_bytes is dropped, and counted.
 *
 * Threading: the stream runs its own thread (network, encoding, disk).  The
 * caller's packet path only calls stream_submit(), which copies the verdict
 * into a ring under a short mutex and never waits for I/O.  So the agent's
 * epoll loop needs no extra fd.  All functions are thread-safe.
 */
#ifndef FLOWPIC_STREAM_H
#define FLOWPIC_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bounds of a verdict (the nanopb bounds in proto/flowpic.options). */
#define STREAM_MAX_CLASSES 16  /* probs per verdict, classes per model */
#define STREAM_IFNAME_MAX 64   /* interface name incl. NUL */
#define STREAM_CLASS_MAX 32    /* class name incl. NUL */
#define STREAM_BATCH_MAX 10000 /* largest batch_max */

/*
 * Pictures (flowpic.v1.Cells, docs/stream.md "Pictures").  A picture is
 * encoded at stream_submit() into the picture buffer (picture_bytes, a FIFO
 * shared by the submit ring and the open batch) and freed when its batch is
 * encoded.  A batch is also cut once its pictures reach
 * STREAM_BATCH_PICTURE_BYTES, so a batch stays far below the collector's 4 MiB
 * message limit.  A verdict whose picture has more than STREAM_PICTURE_CELLS_MAX
 * pixels, or finds the buffer full, is sent without it (counted).
 */
#define STREAM_PICTURE_RES_MAX 2048   /* rows, cols (FLOWPIC_MAX_RES) */
#define STREAM_PICTURE_CELLS_MAX 8192 /* non-zero pixels: a full 2 x 64 x 64 */
#define STREAM_PICTURE_BYTES_MAX (STREAM_PICTURE_CELLS_MAX * 6 + 64) /* one, encoded */
#define STREAM_BATCH_PICTURE_BYTES (1u << 20)
#define STREAM_PICTURE_BYTES_DEFAULT (8u << 20) /* the agent's --send-pictures */

/* Mirrors flowpic.v1.Direction. */
enum stream_direction {
	STREAM_DIR_UNSPECIFIED = 0,
	STREAM_DIR_OUTBOUND = 1,
	STREAM_DIR_INBOUND = 2,
};

/* Mirrors flowpic.v1.Stage. */
enum stream_stage {
	STREAM_STAGE_UNSPECIFIED = 0,
	STREAM_STAGE_EARLY = 1,
	STREAM_STAGE_BLOCK = 2,
	STREAM_STAGE_FINAL = 3,
};

/* Mirrors flowpic.v1.Reason. */
enum stream_reason {
	STREAM_REASON_UNSPECIFIED = 0,
	STREAM_REASON_OK = 1,
	STREAM_REASON_OTHER = 2,
	STREAM_REASON_SPARSE = 3,
	STREAM_REASON_DISAGREE = 4,
	STREAM_REASON_LOW_CONFIDENCE = 5,
	STREAM_REASON_UNTRACKED = 6,
	STREAM_REASON_COUNT
};

/* Mirrors flowpic.v1.PictureDirs (and core/model_file.h enum model_dirs). */
enum stream_picture_dirs {
	STREAM_PIC_BOTH = 0,  /* one plane: both directions summed */
	STREAM_PIC_FWD = 1,   /* one plane: initiator -> responder */
	STREAM_PIC_REV = 2,   /* one plane: responder -> initiator */
	STREAM_PIC_SPLIT = 3, /* two planes: fwd, rev */
};

/*
 * A block's picture as the model judged it (flowpic.v1.Cells): its n
 * non-zero pixels by increasing flat index (plane * rows + row) * cols + col
 * (row: size bin, col: time bin; proto/flowpic.proto has the axes).
 * Borrowed: stream_submit() encodes it into the stream's picture buffer.
 */
struct stream_cells {
	const uint32_t *index; /* n flat indexes, strictly increasing */
	const uint8_t *count;  /* n packet counts, 1 .. 255 */
	uint32_t n;	       /* 0 .. STREAM_PICTURE_CELLS_MAX (more: sent without) */
	uint16_t rows, cols;   /* 0: no picture; else 1 .. STREAM_PICTURE_RES_MAX */
	uint8_t dirs;	       /* enum stream_picture_dirs */
	uint64_t window_ns;    /* the time axis */
};

/* "unspecified", "ok", "other", "sparse", "disagree", "low_confidence",
 * "untracked"; stream_reason_parse(): the value of a name, or -1. */
const char *stream_reason_name(unsigned r);
int stream_reason_parse(const char *name);

/*
 * One verdict (flowpic.v1.Verdict without seq: stream_submit() numbers
 * verdicts 1, 2, ... in submission order).  Addresses as in core/pkt.h: 16
 * bytes, IPv4 as IPv4-mapped IPv6 (sent as 4 bytes on the wire).
 */
struct stream_verdict {
	uint64_t flow_id;
	uint64_t start_unix_ns;
	uint64_t duration_ns;
	uint64_t packets_fwd, packets_rev;
	uint64_t bytes_fwd, bytes_rev; /* transport payload bytes */
	uint64_t block_index;
	uint32_t blocks;  /* FINAL: blocks combined */
	float confidence; /* 0 .. 1 */
	float probs[STREAM_MAX_CLASSES];
	uint8_t nprobs;		     /* 0 .. STREAM_MAX_CLASSES */
	uint8_t protocol;	     /* 6 TCP, 17 UDP */
	uint8_t direction;	     /* enum stream_direction */
	uint8_t stage;		     /* enum stream_stage */
	uint8_t reason;		     /* enum stream_reason */
	uint16_t src_port, dst_port; /* host order */
	uint8_t src_addr[16];	     /* initiator, network order */
	uint8_t dst_addr[16];
	char interface[STREAM_IFNAME_MAX];
	char class_name[STREAM_CLASS_MAX];
	struct stream_cells cells; /* EARLY, BLOCK: the picture (rows 0: none) */
};

/* When the spool calls fsync(2) (docs/stream.md, "Spool"). */
enum stream_fsync {
	STREAM_FSYNC_BATCH = 0, /* after every record: a spooled batch survives a power cut */
	STREAM_FSYNC_SEGMENT,	/* when a segment is closed (and at stream_close) */
	STREAM_FSYNC_NEVER,	/* leave it to the kernel: survives a crash of the agent only */
};

/* A named counter, as sent in Batch.counters (e.g. "stream.spooled"). */
#define STREAM_TARGETS_MAX 8

struct stream_counter {
	const char *name;
	uint64_t value;
};

struct stream_config {
	/* Collector: "host:port" ("[v6]:port" for IPv6 literals), or a comma list
	 * of them (at most STREAM_TARGETS_MAX): collectors sharing one store; a
	 * connection that fails or drops moves to the next, so an agent goes on
	 * with another collector while one is down or restarting. */
	const char *target;
	bool tls;		 /* false: cleartext HTTP/2 (h2c, prior knowledge) */
	const char *ca_file;	 /* TLS: CA bundle to verify the collector (NULL: system's) */
	const char *cert_file;	 /* mutual TLS: this agent's certificate (PEM) */
	const char *key_file;	 /* ... and its key */
	const char *server_name; /* TLS: name to verify and send as SNI (NULL: target host) */
	const char *token;	 /* "authorization: Bearer <token>" (NULL: none) */

	/* Identity (flowpic.v1.Agent) and model (flowpic.v1.Model), copied. */
	const char *host;     /* NULL: gethostname() */
	const char *agent_id; /* required */
	uint64_t run_id;      /* 0: now, ns since the epoch */
	const char *version;
	const char *model_name;
	const char *model_version;
	const char *const *classes;
	unsigned nclasses; /* 0 .. STREAM_MAX_CLASSES */

	/* Batching and memory bounds. */
	unsigned batch_max;	 /* verdicts per batch, 1 .. STREAM_BATCH_MAX (500) */
	unsigned batch_delay_ms; /* oldest verdict's longest wait in an open batch (1000) */
	unsigned submit_max;	 /* verdicts the submit ring holds (65536) */
	unsigned queue_max;	 /* unacknowledged batches kept in memory (64) */
	/* Encoded pictures the submit ring and the open batch hold, bytes (0:
	 * pictures are not sent: a verdict's cells are left out, counted in
	 * pictures_no_room); else at least STREAM_PICTURE_BYTES_MAX. */
	size_t picture_bytes;

	/* Spool (NULL dir: no spool; what would go there is dropped and counted). */
	const char *spool_dir;	      /* created if missing */
	uint64_t spool_max_bytes;     /* all segments together (1 GiB) */
	uint64_t spool_segment_bytes; /* a segment is closed past this size (4 MiB) */
	enum stream_fsync fsync;

	/* gRPC connection backoff (1000 ms, x1.6, jitter 0.2, 120000 ms). */
	unsigned backoff_initial_ms;
	double backoff_multiplier;
	double backoff_jitter;
	unsigned backoff_max_ms;
	unsigned connect_timeout_ms; /* TCP + TLS + HTTP/2 set-up (20000) */
	unsigned ack_timeout_ms;     /* unacknowledged data this long: reconnect (30000) */

	/*
	 * Optional: the agent's own counters, added to each batch's counters
	 * after the stream's.  Called from the stream's thread: read atomics.
	 * Returns how many it wrote (<= max); names must stay valid.
	 */
	size_t (*counters_fn)(void *ctx, struct stream_counter *out, size_t max);
	void *counters_ctx;
	/* Counters (the stream's and the agent's) go in the first batch, then
	 * in a batch at most this often (10000 ms; 0: in every batch), and in
	 * the batch cut when the stream closes.  Each is a row the collector
	 * upserts: in every batch they were most of its database's work
	 * (docs/scale.md). */
	unsigned counters_every_ms;
};

/*
 * Counters, cumulative since stream_new() unless "now".  Units are verdicts
 * unless named batches.  Invariant once the stream is closed (and no spool
 * record was corrupt):
 *   submitted + replayed = acked + spooled_now + dropped
 * (acked counts a resent verdict once; duplicates says how many of the acked
 * the collector had already stored).
 */
struct stream_counters {
	uint64_t submitted;	   /* taken by stream_submit() */
	uint64_t rejected;	   /* refused by stream_submit() (-EAGAIN, ring full): not taken */
	uint64_t pictures;	   /* taken with their picture (Verdict.cells) */
	uint64_t pictures_too_big; /* taken without it: over STREAM_PICTURE_CELLS_MAX pixels */
	uint64_t pictures_no_room; /* taken without it: the picture buffer was full (or 0) */
	uint64_t queued;	   /* now in memory: ring, open batch, memory queue */
	uint64_t spooled_now;	   /* now in the spool (includes a previous run's) */
	uint64_t spool_bytes;	   /* the spool's size on disk now */
	uint64_t spool_max_bytes;  /* its limit (0: no spool) */
	uint64_t spooled_total;	   /* ever written to the spool */
	uint64_t replayed;	   /* found in the spool at start (a previous run's) */
	uint64_t sent;		   /* written to the collector (a resend counts again) */
	uint64_t acked;		   /* acknowledged by the collector */
	uint64_t stored;	   /* ... of which the collector newly stored (Ack.stored) */
	uint64_t duplicates;	   /* ... of which it already had (Ack.duplicates) */
	uint64_t dropped;	   /* lost: did not fit under spool_max_bytes */
	uint64_t spool_corrupt; /* spool records (not verdicts) unreadable: bad checksum, cut short */
	uint64_t batches_sent;
	uint64_t batches_acked;
	uint64_t connects;	   /* connections that reached the Stream call */
	uint64_t reconnects;	   /* connections after the first */
	uint64_t connect_failures; /* attempts that failed (refused, TLS, timeout, ...) */
	uint64_t refusals;	   /* calls the collector ended with a non-OK grpc-status */
	bool connected;		   /* now */
};

/* Fill cfg with the defaults above (strings NULL). */
void stream_config_default(struct stream_config *cfg);

/*
 * Check cfg without acting on it: the collector address, the agent id, the
 * sizes, the header's text lengths, the token, a certificate with its key.
 * 0, or -EINVAL with one line in err (the line stream_new() would give).
 */
int stream_config_check(const struct stream_config *cfg, char *err, size_t errlen);

/*
 * stream_config_check(), then the TLS context, open (and index) the spool,
 * start the thread.  The first connection is made by the thread:
 * stream_new() does not wait for the collector.  NULL with one line in err
 * and errno set (EINVAL, ENOMEM, or the spool's) on failure.
 */
struct stream *stream_new(const struct stream_config *cfg, char *err, size_t errlen);

/*
 * stream_new() in two steps, for a process that changes user in between
 * (the agent: it reads the token and TLS files as root, then runs the
 * spool and the network as an unprivileged user).  stream_prepare(): the
 * checks, the TLS context (files read now), the buffers; no spool, no
 * thread, nothing may be submitted yet.  stream_start(): open the spool (as
 * the user of that moment) and start the thread; 0, or a negative errno
 * with err (s stays prepared: stream_close() frees it).
 */
struct stream *stream_prepare(const struct stream_config *cfg, char *err, size_t errlen);
int stream_start(struct stream *s, char *err, size_t errlen);

/*
 * Hand over one verdict (copied).  Never blocks on I/O.  0 and *seq (if not
 * NULL) = the verdict's seq; -EAGAIN: the submit ring is full (the stream's
 * thread is behind), the verdict was not taken (counted as rejected);
 * -EINVAL: bad verdict (nprobs, direction, stage, reason; a picture on a
 * FINAL verdict, or one whose sizes, indexes or counts are out of order or
 * range); -ESHUTDOWN: closing.  A picture too big or without room in the
 * picture buffer is left out, the verdict taken (counted: pictures_too_big,
 * pictures_no_room).
 */
int stream_submit(struct stream *s, const struct stream_verdict *v, uint64_t *seq);

/* Snapshot of the counters. */
void stream_counters(struct stream *s, struct stream_counters *c);

/* The counters as (name, value) pairs ("stream.submitted", ...); returns how many. */
size_t stream_counters_list(const struct stream_counters *c, struct stream_counter *out,
			    size_t max);

/* The last connection or collector error as one line ("" if none). */
void stream_last_error(struct stream *s, char *buf, size_t len);

/*
 * Cut the open batch, send and wait for acknowledgements up to timeout_ms,
 * then write what is still unacknowledged to the spool, stop the thread and
 * free s.  final (if not NULL) gets the last counters.  0, or -EIO if
 * something could not be kept (final->dropped says how many verdicts).
 */
int stream_close(struct stream *s, unsigned timeout_ms, struct stream_counters *final);

#endif
