/* SPDX-License-Identifier: MIT */
/*
 * flow.h - the flow table: packets -> bidirectional flows -> blocks.
 *
 * A flow is the bidirectional session of one 5-tuple: the endpoint that sent
 * the first packet is the initiator (side a), and every sample carries a
 * direction bit (0 = a->b, 1 = b->a).  The FlowPic can then be drawn from
 * both directions (the default), from one of them (the paper's
 * unidirectional flows), or as two channels; see flowpic.h.
 *
 * A flow ends after idle_timeout of capture time without a packet, or when
 * the input ends.  Its time is shifted to start at 0 at its first packet.
 * Block k covers [k*hop, k*hop + window) of flow time; with hop == window
 * (the default) blocks are the seed's consecutive 60 s intervals.  A block
 * holds the sparse cells of its FlowPic at the configured resolution,
 * binned as packets arrive; it is handed to the caller when its window has
 * passed or its flow ends, then freed.
 *
 * A TCP record larger than the segment size the flow's SYNs announced (a
 * TSO super-packet a host capture saw before segmentation, or a GRO
 * aggregate) is counted as the wire segments it stands for: full segments
 * and the remainder, at its time, as the live capture does with gso_size.
 *
 * Memory is fixed at flow_table_new(): max_flows flow slots and a pool of
 * max_cells cells.  Nothing is allocated per packet.  What the bounds refuse
 * is counted (stats.flows_refused, stats.cells_refused).
 */
#ifndef FLOWPIC_FLOW_H
#define FLOWPIC_FLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pkt.h"

#define NS_PER_SEC ((uint64_t)1000000000)
/* Overlapping blocks one flow may have open at once: window / hop <= this. */
#define FLOW_MAX_OPEN_BLOCKS 4
/* Flow time stops here (146 years; with --aug-time-scale, sooner): later
 * packets are drawn at this time, so block arithmetic cannot overflow. */
#define FLOW_MAX_TIME_NS (1ULL << 62)
/* Largest picture side: cell coordinates are 11 bits. */
#define FLOWPIC_MAX_RES 2048

struct flow_config {
	uint64_t window_ns;	    /* block length; default 60 s */
	uint64_t hop_ns;	    /* distance between block starts; default = window */
	uint64_t idle_timeout_ns;   /* flow ends after this much silence; default 120 s */
	uint32_t max_flows;	    /* flows tracked at once; default 65536 */
	uint32_t max_cells;	    /* cells held by open blocks; default 4 Mi (16 MiB) */
	uint32_t res;		    /* picture side, time and size bins; default 32 */
	struct flow_augment {	    /* training augmentation; all 0: none */
		uint64_t seed;	    /* draws are a function of (seed, flow id) */
		uint32_t scale_min; /* flow time x factor in [min, max] / 1000 ("change RTT") */
		uint32_t scale_max;
		uint64_t shift_ns; /* flow time + uniform [0, shift) (block boundaries move) */
		uint32_t drop_ppm; /* samples dropped with this probability / 1e6 (packet loss) */
		uint32_t size_jitter; /* sample size + uniform [-J, J] bytes (headers, padding) */
		uint16_t mss_min;     /* TCP: payload re-cut into segments of a size drawn */
		uint16_t mss_max;     /* in [min, max] per flow (another path MTU); 0: off */
	} aug;
};

/* Fill with the defaults above. */
void flow_config_default(struct flow_config *cfg);

/* 0, or -EINVAL with a one-line reason in err. */
int flow_config_check(const struct flow_config *cfg, char *err, size_t errlen);

/* Initiator (a) and responder (b) of a session. */
struct flow_key {
	uint8_t a[16];
	uint8_t b[16];
	uint16_t port_a;
	uint16_t port_b;
	uint8_t proto;
	uint8_t pad[3];
};
_Static_assert(sizeof(struct flow_key) == 40, "flow_key has explicit padding");

enum flow_dir { FLOW_DIR_FWD = 0, FLOW_DIR_REV = 1 };

/* What a flow's handshake showed (struct flow.tcp_syn). */
#define FLOW_SYN_TS 0x01 /* the SYN offered timestamps */
#define FLOW_SYNACK_SEEN 0x02
#define FLOW_SYNACK_TS 0x04 /* the SYN-ACK carries them: they are in use */

/* One block's cells are a list of chunks from the table's pool. */
#define CELL_CHUNK_CELLS 30
#define CELL_NONE UINT32_MAX

struct block {
	uint64_t index;		/* k: covers flow time [k * hop, k * hop + window) */
	uint64_t start_t;	/* k * hop: flow time of its start, ns */
	uint64_t start_ns;	/* capture time of its start: flow's first packet + start_t
				 * (nominal when augmentation scales or shifts time) */
	uint64_t col_end_ns;	/* block time at which the time bin passes col */
	uint32_t samples[2];	/* samples binned, per direction (cells_refused not included) */
	uint32_t bytes[2];	/* their payload bytes, per direction (saturating) */
	uint32_t cells_refused; /* samples lost because the cell pool was empty */
	uint32_t head;		/* first chunk, CELL_NONE when empty */
	uint32_t tail;		/* last chunk */
	uint16_t col;		/* time bin of the latest sample */
	bool complete;		/* its whole window passed within the capture */
	uint8_t pad[1];
};
_Static_assert(sizeof(struct block) == 64, "block layout");

/* Samples and payload bytes of a block, both directions. */
static inline uint32_t block_samples(const struct block *b)
{
	return b->samples[0] + b->samples[1];
}

struct flow {
	struct flow_key key;
	uint32_t hash; /* internal: next to the key, read on every probe */
	uint32_t pad0;
	uint64_t id;		/* 1, 2, ... in order of first packet */
	uint64_t first_ns;	/* first packet */
	uint64_t last_ns;	/* last packet (never decreases) */
	uint64_t packets[2];	/* per direction, every packet of the stream */
	uint64_t ip_bytes[2];	/* per direction, IP length sum */
	uint64_t payload[2];	/* per direction, transport payload sum */
	uint64_t oversize;	/* packets with size >= PKT_MAX_SIZE: counted, not drawn */
	uint64_t reordered;	/* packets earlier than the flow's last (time clamped) */
	uint64_t cells_refused; /* samples lost from pictures: cell pool empty */
	uint32_t blocks;	/* blocks handed out so far */
	/* internal: table bookkeeping */
	uint64_t next_event_ns; /* flow time of the next block to close or open */
	uint32_t lru_prev, lru_next;
	uint8_t nopen;	       /* open blocks in open[] (oldest first) */
	uint8_t tcp_syn;       /* TCP handshake seen: FLOW_SYN_* bits */
	uint16_t tcp_mss;      /* TCP: the smallest MSS its SYNs announced (0: none) */
	uint64_t next_block;   /* lowest block index not yet opened */
	uint32_t aug_scale;    /* this flow's time factor x 1000 (1000 without augmentation) */
	uint64_t aug_shift_ns; /* this flow's time shift */
	uint16_t aug_mss;      /* TCP: this flow's drawn segment size (0: not re-cut) */
	uint16_t aug_carry[2]; /* per direction: payload bytes re-cut but not yet sent */
	struct block open[FLOW_MAX_OPEN_BLOCKS];
};

/* The TCP segment size a flow's handshake set (0: not known): larger
 * records are TSO/GRO super-packets, counted as the segments they were. */
uint32_t flow_tcp_segment(const struct flow *f);

enum flow_end_reason { FLOW_END_IDLE, FLOW_END_INPUT };

struct flow_table;

/* Called for each finished block (cells valid only during the call) and each ended flow. */
struct flow_events {
	void (*block)(void *ctx, const struct flow_table *ft, const struct flow *f,
		      const struct block *b);
	void (*flow_end)(void *ctx, const struct flow_table *ft, const struct flow *f,
			 enum flow_end_reason why);
	void *ctx;
};

struct flow_stats {
	uint64_t packets;	/* packets accepted into flows */
	uint64_t samples;	/* binned into a block */
	uint64_t oversize;	/* size >= PKT_MAX_SIZE */
	uint64_t cells_refused; /* cell pool empty */
	uint64_t reordered;	/* time clamped to the flow's last packet */
	uint64_t flows;		/* flows created */
	uint64_t flows_refused; /* packets of new flows refused: table full */
	uint64_t flows_active;	/* now */
	uint64_t flows_active_max;
	uint64_t blocks;	   /* blocks handed out */
	uint64_t cells_in_use_max; /* most cells reserved at once (chunks of CELL_CHUNK_CELLS) */
	uint64_t blocks_empty;	   /* blocks not handed out: every sample refused (cell pool) */
	uint64_t aug_dropped;	   /* samples dropped by augmentation (on purpose) */
	uint64_t samples_late;	   /* arrived for a block flow_table_advance() had handed out */
	uint64_t super_packets;	   /* TSO/GRO records split into their wire segments */
	uint64_t super_segments;   /* the segments they became: a flow's packets
				 * add up to packets - super_packets + super_segments */
};

/* NULL and errno set (EINVAL bad config, ENOMEM) on failure. */
struct flow_table *flow_table_new(const struct flow_config *cfg, const struct flow_events *ev);
void flow_table_free(struct flow_table *ft);

/* Account one packet.  Returns SKIP_NONE or SKIP_FLOW_TABLE_FULL. */
enum skip_reason flow_table_add(struct flow_table *ft, const struct pkt *p);

/* Move capture time on without a packet (live use): ends idle flows and
 * hands out the blocks whose window has passed. */
void flow_table_advance(struct flow_table *ft, uint64_t now_ns);

/* End every flow (end of input), handing out their open blocks. */
void flow_table_flush(struct flow_table *ft);

const struct flow_stats *flow_table_stats(const struct flow_table *ft);
const struct flow_config *flow_table_config(const struct flow_table *ft);

/* A cell of a block's sparse picture. */
struct cell {
	uint16_t x;    /* time bin, 0 .. res-1 */
	uint16_t y;    /* size bin, 0 .. res-1 */
	uint8_t dir;   /* enum flow_dir */
	uint8_t count; /* packets, saturating at 255 */
};

struct cell_iter {
	const struct flow_table *ft;
	uint32_t chunk;
	uint32_t pos;
};

/* Iterate a block's cells in time order.  The same (x, y, dir) may appear
 * more than once: counts add, saturating at 255. */
void block_cells_begin(struct cell_iter *it, const struct flow_table *ft, const struct block *b);
bool block_cells_next(struct cell_iter *it, struct cell *out);

_Static_assert(sizeof(struct flow) <= 512, "a tracked flow stays under 1 KiB with its hash slots");

#endif
