// SPDX-License-Identifier: MIT
/*
 * flow.c - the flow table and its blocks; see flow.h.
 *
 * Over 700 lines on purpose: the table (hashing, LRU, idle expiry), the
 * blocks (open, bin, hand out) and the cell pool share one per-packet path
 * whose pieces are static inline and call each other; split into files they
 * would need a private header exporting the table's insides.
 */
#include "flow.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "bins.h"

#define NONE UINT32_MAX

/* A cell packed in 32 bits: x 11 | y 11 | dir 1 | count 8. */
#define CELL_X(c) ((c)&0x7ffu)
#define CELL_Y(c) (((c) >> 11) & 0x7ffu)
#define CELL_DIR(c) (((c) >> 22) & 1u)
#define CELL_COUNT(c) ((c) >> 23)
#define CELL_PACK(x, y, d, n) \
	((uint32_t)(x) | (uint32_t)(y) << 11 | (uint32_t)(d) << 22 | (uint32_t)(n) << 23)

struct cell_chunk {
	uint32_t next;
	uint32_t n;
	uint32_t cells[CELL_CHUNK_CELLS];
};
_Static_assert(sizeof(struct cell_chunk) == 128, "two chunks per cache line pair");

struct flow_table {
	struct flow_config cfg;
	struct flow_events ev;
	struct flow *flows; /* cfg.max_flows slots */
	uint32_t *slots;    /* open addressing: flow index + 1, 0 = empty */
	uint32_t slot_mask;
	uint32_t free_head;	     /* freed flows, linked through lru_next */
	uint32_t flows_hw;	     /* flows[] never used from here on */
	uint32_t lru_head, lru_tail; /* active flows, least recently seen first */
	uint64_t now_ns;	     /* latest capture time seen */
	uint64_t next_id;
	uint64_t seed; /* hash seed: flooding one bucket needs to know it */
	struct cell_chunk *chunks;
	uint32_t nchunks;
	uint32_t chunk_free; /* freed chunks, linked through next */
	uint32_t chunks_hw;  /* chunks[] never used from here on */
	uint32_t chunks_used;
	struct flow_stats stats;
};

void flow_config_default(struct flow_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->window_ns = 60 * NS_PER_SEC;
	cfg->hop_ns = cfg->window_ns;
	cfg->idle_timeout_ns = 120 * NS_PER_SEC;
	cfg->max_flows = 65536;
	cfg->max_cells = 4u << 20;
	cfg->res = 32;
}

int flow_config_check(const struct flow_config *cfg, char *err, size_t errlen)
{
	/* window * res must stay below 2^64 in flowpic_xbin(). */
	if (cfg->window_ns < 1000 || cfg->window_ns > (1ULL << 42)) {
		snprintf(err, errlen, "window must be between 1 us and 4398 s");
		return -EINVAL;
	}
	if (cfg->hop_ns == 0 || cfg->hop_ns > cfg->window_ns) {
		snprintf(err, errlen, "hop must be above 0 and at most the window");
		return -EINVAL;
	}
	if ((cfg->window_ns + cfg->hop_ns - 1) / cfg->hop_ns > FLOW_MAX_OPEN_BLOCKS) {
		snprintf(err, errlen,
			 "window / hop must be at most %d (overlapping blocks per flow)",
			 FLOW_MAX_OPEN_BLOCKS);
		return -EINVAL;
	}
	if (cfg->idle_timeout_ns == 0 || cfg->idle_timeout_ns > (1ULL << 42)) {
		snprintf(err, errlen, "idle timeout must be above 0 and at most 4398 s");
		return -EINVAL;
	}
	if (cfg->max_flows == 0 || cfg->max_flows > (1u << 30)) {
		snprintf(err, errlen, "max flows must be between 1 and 2^30");
		return -EINVAL;
	}
	if (cfg->max_cells < CELL_CHUNK_CELLS || cfg->max_cells > (1u << 31)) {
		snprintf(err, errlen, "max cells must be between %d and 2^31", CELL_CHUNK_CELLS);
		return -EINVAL;
	}
	if (cfg->aug.scale_min > cfg->aug.scale_max || cfg->aug.scale_max > 100000 ||
	    (cfg->aug.scale_max && !cfg->aug.scale_min) || cfg->aug.drop_ppm >= 1000000 ||
	    cfg->aug.shift_ns > (1ULL << 42) || cfg->aug.size_jitter >= PKT_MAX_SIZE ||
	    cfg->aug.mss_min > cfg->aug.mss_max || (cfg->aug.mss_max && cfg->aug.mss_min < 64)) {
		snprintf(err, errlen,
			 "augmentation: time scale must be 0.001-100 with min <= max, "
			 "drop below 1, shift at most 4398 s, size jitter below %d, "
			 "MSS 64-65535 with min <= max",
			 PKT_MAX_SIZE);
		return -EINVAL;
	}
	if (cfg->res < 1 || cfg->res > FLOWPIC_MAX_RES) {
		snprintf(err, errlen, "resolution must be between 1 and %d", FLOWPIC_MAX_RES);
		return -EINVAL;
	}
	return 0;
}

struct flow_table *flow_table_new(const struct flow_config *cfg, const struct flow_events *ev)
{
	struct flow_table *ft;
	char msg[128];
	uint64_t nslots = 2;

	if (flow_config_check(cfg, msg, sizeof(msg))) {
		errno = EINVAL;
		return NULL;
	}
	ft = calloc(1, sizeof(*ft));
	if (!ft)
		return NULL;
	ft->cfg = *cfg;
	ft->ev = *ev;
	while (nslots < 2ULL * cfg->max_flows)
		nslots <<= 1;
	ft->slot_mask = (uint32_t)(nslots - 1);
	ft->nchunks = (cfg->max_cells + CELL_CHUNK_CELLS - 1) / CELL_CHUNK_CELLS;
	ft->flows = calloc(cfg->max_flows, sizeof(*ft->flows));
	ft->slots = calloc(nslots, sizeof(*ft->slots));
	ft->chunks = malloc((size_t)ft->nchunks * sizeof(*ft->chunks));
	if (!ft->flows || !ft->slots || !ft->chunks) {
		flow_table_free(ft);
		errno = ENOMEM;
		return NULL;
	}
	/* Free lists start empty and the pools are handed out from a high-water
	 * mark, so memory is touched only as flows and cells are used. */
	ft->free_head = NONE;
	ft->chunk_free = NONE;
	ft->lru_head = ft->lru_tail = NONE;
	ft->next_id = 1;
	if (getrandom(&ft->seed, sizeof(ft->seed), GRND_NONBLOCK) != sizeof(ft->seed))
		ft->seed = 0x9e3779b97f4a7c15ULL;
	return ft;
}

void flow_table_free(struct flow_table *ft)
{
	if (!ft)
		return;
	free(ft->chunks);
	free(ft->slots);
	free(ft->flows);
	free(ft);
}

const struct flow_stats *flow_table_stats(const struct flow_table *ft)
{
	return &ft->stats;
}

const struct flow_config *flow_table_config(const struct flow_table *ft)
{
	return &ft->cfg;
}

/* ---- hashing: both directions of a session hash alike ---- */

static inline uint64_t mix(uint64_t h, uint64_t w)
{
	h ^= w;
	h *= 0x9e3779b97f4a7c15ULL;
	return h ^ (h >> 29);
}

static inline uint64_t load64(const uint8_t *p)
{
	uint64_t w;

	memcpy(&w, p, 8);
	return w;
}

static inline uint64_t endpoint_hash(uint64_t seed, const uint8_t *addr, uint16_t port)
{
	return mix(mix(seed, load64(addr)), load64(addr + 8) ^ port);
}

/* The sum of the two endpoints' hashes is the same in both directions, and
 * needs no comparison to put the endpoints in order. */
static inline uint32_t session_hash(const struct flow_table *ft, const struct pkt *p)
{
	uint64_t h = endpoint_hash(ft->seed, p->src, p->sport) +
		     endpoint_hash(ft->seed, p->dst, p->dport);

	return (uint32_t)(mix(h, p->proto) >> 32);
}

static inline bool addr_eq(const uint8_t *a, const uint8_t *b)
{
	return load64(a) == load64(b) && load64(a + 8) == load64(b + 8);
}

/* splitmix64: the augmentation's draws, reproducible from (seed, flow, n). */
static uint64_t splitmix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Flow of the packet and its direction, or NULL. */
static struct flow *lookup(struct flow_table *ft, const struct pkt *p, uint32_t hash,
			   enum flow_dir *dir)
{
	uint32_t pos = hash & ft->slot_mask;

	for (; ft->slots[pos]; pos = (pos + 1) & ft->slot_mask) {
		struct flow *f = &ft->flows[ft->slots[pos] - 1];
		const struct flow_key *k = &f->key;

		if (f->hash != hash || k->proto != p->proto)
			continue;
		if (k->port_a == p->sport && k->port_b == p->dport && addr_eq(k->a, p->src) &&
		    addr_eq(k->b, p->dst)) {
			*dir = FLOW_DIR_FWD;
			return f;
		}
		if (k->port_a == p->dport && k->port_b == p->sport && addr_eq(k->a, p->dst) &&
		    addr_eq(k->b, p->src)) {
			*dir = FLOW_DIR_REV;
			return f;
		}
	}
	return NULL;
}

static void slot_remove(struct flow_table *ft, uint32_t idx)
{
	uint32_t mask = ft->slot_mask;
	uint32_t i = ft->flows[idx].hash & mask, j;

	while (ft->slots[i] != idx + 1)
		i = (i + 1) & mask;
	/* Backward-shift deletion keeps every probe chain unbroken. */
	for (j = (i + 1) & mask; ft->slots[j]; j = (j + 1) & mask) {
		uint32_t home = ft->flows[ft->slots[j] - 1].hash & mask;

		if (((j - home) & mask) >= ((j - i) & mask)) {
			ft->slots[i] = ft->slots[j];
			i = j;
		}
	}
	ft->slots[i] = 0;
}

/* ---- LRU list of active flows ---- */

static void lru_unlink(struct flow_table *ft, uint32_t idx)
{
	struct flow *f = &ft->flows[idx];

	if (f->lru_prev != NONE)
		ft->flows[f->lru_prev].lru_next = f->lru_next;
	else
		ft->lru_head = f->lru_next;
	if (f->lru_next != NONE)
		ft->flows[f->lru_next].lru_prev = f->lru_prev;
	else
		ft->lru_tail = f->lru_prev;
}

static void lru_append(struct flow_table *ft, uint32_t idx);

/*
 * Keep the list sorted by last_ns, so expiry can stop at the first flow
 * that is not idle.  Captures merged from several queues are a little out
 * of order across flows: walk back from the tail (a step or two).
 */
static void lru_insert_sorted(struct flow_table *ft, uint32_t idx)
{
	struct flow *f = &ft->flows[idx];
	uint32_t after = ft->lru_tail;

	while (after != NONE && ft->flows[after].last_ns > f->last_ns)
		after = ft->flows[after].lru_prev;
	if (after == ft->lru_tail) {
		lru_append(ft, idx);
		return;
	}
	f->lru_prev = after;
	if (after == NONE) {
		f->lru_next = ft->lru_head;
		ft->lru_head = idx;
	} else {
		f->lru_next = ft->flows[after].lru_next;
		ft->flows[after].lru_next = idx;
	}
	ft->flows[f->lru_next].lru_prev = idx;
}

static void lru_append(struct flow_table *ft, uint32_t idx)
{
	struct flow *f = &ft->flows[idx];

	f->lru_prev = ft->lru_tail;
	f->lru_next = NONE;
	if (ft->lru_tail != NONE)
		ft->flows[ft->lru_tail].lru_next = idx;
	else
		ft->lru_head = idx;
	ft->lru_tail = idx;
}

/* ---- cells ---- */

static void chunks_release(struct flow_table *ft, struct block *b)
{
	uint32_t c = b->head;

	while (c != NONE) {
		uint32_t next = ft->chunks[c].next;

		ft->chunks[c].next = ft->chunk_free;
		ft->chunk_free = c;
		ft->chunks_used--;
		c = next;
	}
	b->head = b->tail = NONE;
}

static int chunk_take(struct flow_table *ft, struct block *b)
{
	uint32_t c = ft->chunk_free;

	if (c != NONE)
		ft->chunk_free = ft->chunks[c].next;
	else if (ft->chunks_hw < ft->nchunks)
		c = ft->chunks_hw++;
	else
		return -ENOBUFS;
	ft->chunks[c].next = NONE;
	ft->chunks[c].n = 0;
	if (b->tail == NONE)
		b->head = c;
	else
		ft->chunks[b->tail].next = c;
	b->tail = c;
	ft->chunks_used++;
	if ((uint64_t)ft->chunks_used * CELL_CHUNK_CELLS > ft->stats.cells_in_use_max)
		ft->stats.cells_in_use_max = (uint64_t)ft->chunks_used * CELL_CHUNK_CELLS;
	return 0;
}

/*
 * Count one sample in a block.  Time only moves forward within a block, so
 * a cell that already holds this (x, y, dir) can only be in the current
 * column at the tail: search back while x matches.  A cell found is swapped
 * to the end (order within a column carries no meaning), so the few sizes
 * that dominate a flow (ACKs, full segments) are found at once.  Across a
 * chunk boundary a second entry may be made for the same cell; readers add
 * them.
 */
static int block_count(struct flow_table *ft, struct block *b, uint32_t x, uint32_t y, uint32_t dir)
{
	struct cell_chunk *ch;
	uint32_t i;

	if (b->tail != NONE) {
		ch = &ft->chunks[b->tail];
		for (i = ch->n; i-- > 0;) {
			uint32_t c = ch->cells[i];

			if (CELL_X(c) != x)
				break;
			if (CELL_Y(c) == y && CELL_DIR(c) == dir) {
				if (CELL_COUNT(c) < 255)
					c += 1u << 23;
				ch->cells[i] = ch->cells[ch->n - 1];
				ch->cells[ch->n - 1] = c;
				return 0;
			}
		}
	}
	if (b->tail == NONE || ft->chunks[b->tail].n == CELL_CHUNK_CELLS) {
		if (chunk_take(ft, b))
			return -ENOBUFS;
	}
	ch = &ft->chunks[b->tail];
	ch->cells[ch->n++] = CELL_PACK(x, y, dir, 1);
	return 0;
}

void block_cells_begin(struct cell_iter *it, const struct flow_table *ft, const struct block *b)
{
	it->ft = ft;
	it->chunk = b->head;
	it->pos = 0;
}

bool block_cells_next(struct cell_iter *it, struct cell *out)
{
	const struct cell_chunk *ch;
	uint32_t c;

	while (it->chunk != NONE) {
		ch = &it->ft->chunks[it->chunk];
		if (it->pos < ch->n) {
			c = ch->cells[it->pos++];
			out->x = (uint16_t)CELL_X(c);
			out->y = (uint16_t)CELL_Y(c);
			out->dir = (uint8_t)CELL_DIR(c);
			out->count = (uint8_t)CELL_COUNT(c);
			return true;
		}
		it->chunk = ch->next;
		it->pos = 0;
	}
	return false;
}

/* ---- blocks and flows ---- */

/* Hand out the oldest open block of f and free it. */
static void block_emit_oldest(struct flow_table *ft, struct flow *f, bool complete)
{
	struct block b = f->open[0];

	memmove(&f->open[0], &f->open[1], (size_t)(f->nopen - 1) * sizeof(f->open[0]));
	f->nopen--;
	b.complete = complete;
	if (block_samples(&b) == 0) {
		/* Every sample was refused (cell pool empty): nothing to hand out. */
		ft->stats.blocks_empty++;
	} else {
		f->blocks++;
		ft->stats.blocks++;
		if (ft->ev.block)
			ft->ev.block(ft->ev.ctx, ft, f, &b);
	}
	chunks_release(ft, &b);
}

/*
 * Flow time of capture time ts (>= the flow's first packet): 0 at the first
 * packet, then scaled and shifted when augmenting; capped at
 * FLOW_MAX_TIME_NS so that no block arithmetic can overflow.
 */
static uint64_t flow_time(const struct flow *f, uint64_t ts)
{
	unsigned __int128 t = ts - f->first_ns;

	if (f->aug_scale != 1000)
		t = t * f->aug_scale / 1000;
	t += f->aug_shift_ns;
	return t > FLOW_MAX_TIME_NS ? FLOW_MAX_TIME_NS : (uint64_t)t;
}

static void flow_end(struct flow_table *ft, uint32_t idx, enum flow_end_reason why)
{
	struct flow *f = &ft->flows[idx];
	uint64_t now = flow_time(f, ft->now_ns);

	/* Complete: the block's whole window passed (in flow time) by now. */
	while (f->nopen)
		block_emit_oldest(ft, f, f->open[0].start_t + ft->cfg.window_ns <= now);
	if (ft->ev.flow_end)
		ft->ev.flow_end(ft->ev.ctx, ft, f, why);
	slot_remove(ft, idx);
	lru_unlink(ft, idx);
	f->lru_next = ft->free_head;
	ft->free_head = idx;
	ft->stats.flows_active--;
}

static void expire_idle(struct flow_table *ft)
{
	while (ft->lru_head != NONE) {
		struct flow *f = &ft->flows[ft->lru_head];

		if (ft->now_ns - f->last_ns <= ft->cfg.idle_timeout_ns)
			break;
		flow_end(ft, ft->lru_head, FLOW_END_IDLE);
	}
}

/* Note when flow_blocks_advance() or close_due_blocks() must next run. */
static void next_event(const struct flow_config *c, struct flow *f)
{
	f->next_event_ns = f->next_block * c->hop_ns;
	if (f->nopen && f->open[0].start_t + c->window_ns < f->next_event_ns)
		f->next_event_ns = f->open[0].start_t + c->window_ns;
}

/* Hand out the blocks whose window has passed by now, without waiting for
 * the flow's next packet (live capture: a verdict on time for a flow that
 * went quiet).  A packet that later arrives for such a block, timed before
 * now, is counted as late (flow_stats.samples_late). */
static void close_due_blocks(struct flow_table *ft)
{
	uint32_t idx;

	for (idx = ft->lru_head; idx != NONE; idx = ft->flows[idx].lru_next) {
		struct flow *f = &ft->flows[idx];
		uint64_t t = flow_time(f, ft->now_ns);

		if (!f->nopen || f->open[0].start_t + ft->cfg.window_ns > t)
			continue;
		while (f->nopen && f->open[0].start_t + ft->cfg.window_ns <= t)
			block_emit_oldest(ft, f, true);
		next_event(&ft->cfg, f);
	}
}

void flow_table_advance(struct flow_table *ft, uint64_t now_ns)
{
	if (now_ns > ft->now_ns)
		ft->now_ns = now_ns;
	expire_idle(ft);
	close_due_blocks(ft);
}

void flow_table_flush(struct flow_table *ft)
{
	while (ft->lru_head != NONE)
		flow_end(ft, ft->lru_head, FLOW_END_INPUT);
}

static struct flow *flow_create(struct flow_table *ft, const struct pkt *p, uint32_t hash)
{
	uint32_t idx = ft->free_head, pos;
	struct flow *f;

	if (idx != NONE)
		ft->free_head = ft->flows[idx].lru_next;
	else if (ft->flows_hw < ft->cfg.max_flows)
		idx = ft->flows_hw++;
	else
		return NULL;
	f = &ft->flows[idx];
	memset(f, 0, sizeof(*f));
	/* A SYN-ACK first means the capture missed the SYN: the initiator is
	 * the packet's destination. */
	if (p->proto == 6 && (p->tcp_flags & 0x12) == 0x12) {
		memcpy(f->key.a, p->dst, 16);
		memcpy(f->key.b, p->src, 16);
		f->key.port_a = p->dport;
		f->key.port_b = p->sport;
	} else {
		memcpy(f->key.a, p->src, 16);
		memcpy(f->key.b, p->dst, 16);
		f->key.port_a = p->sport;
		f->key.port_b = p->dport;
	}
	f->key.proto = p->proto;
	f->id = ft->next_id++;
	f->aug_scale = 1000;
	if (ft->cfg.aug.scale_max) {
		uint64_t span = ft->cfg.aug.scale_max - ft->cfg.aug.scale_min + 1;

		f->aug_scale = ft->cfg.aug.scale_min +
			       (uint32_t)(splitmix(ft->cfg.aug.seed ^ splitmix(f->id)) % span);
	}
	if (ft->cfg.aug.shift_ns)
		f->aug_shift_ns =
			splitmix(ft->cfg.aug.seed ^ splitmix(f->id) ^ 1) % ft->cfg.aug.shift_ns;
	if (ft->cfg.aug.mss_max && p->proto == 6)
		f->aug_mss = (uint16_t)(ft->cfg.aug.mss_min +
					splitmix(ft->cfg.aug.seed ^ splitmix(f->id) ^ 1ULL << 63) %
						(ft->cfg.aug.mss_max - ft->cfg.aug.mss_min + 1u));
	f->first_ns = f->last_ns = p->ts_ns;
	f->hash = hash;
	for (pos = hash & ft->slot_mask; ft->slots[pos]; pos = (pos + 1) & ft->slot_mask)
		;
	ft->slots[pos] = idx + 1;
	lru_append(ft, idx);
	ft->stats.flows++;
	if (++ft->stats.flows_active > ft->stats.flows_active_max)
		ft->stats.flows_active_max = ft->stats.flows_active;
	return f;
}

/* Close the blocks whose window ended before flow time t, open those that
 * start by t, and note when this must next be done. */
static void flow_blocks_advance(struct flow_table *ft, struct flow *f, uint64_t t)
{
	const struct flow_config *c = &ft->cfg;
	uint64_t k, kmin, klast = t / c->hop_ns;

	while (f->nopen && f->open[0].start_t + c->window_ns <= t)
		block_emit_oldest(ft, f, true);
	kmin = t >= c->window_ns ? (t - c->window_ns) / c->hop_ns + 1 : 0;
	for (k = kmin > f->next_block ? kmin : f->next_block; k <= klast; k++) {
		struct block *b = &f->open[f->nopen++];

		memset(b, 0, sizeof(*b));
		b->index = k;
		b->start_t = k * c->hop_ns;
		b->start_ns = f->first_ns + b->start_t;
		b->head = b->tail = NONE;
		f->next_block = k + 1;
	}
	next_event(c, f);
}

/*
 * Time bin of block time tb.  Packets come in bursts, so most fall in the
 * block's current column: the division of flowpic_xbin() is done only when
 * tb reaches the column's end, ceil((col + 1) * window / res).
 */
static inline uint32_t block_col(const struct flow_config *c, struct block *b, uint64_t tb)
{
	if (tb >= b->col_end_ns) {
		b->col = (uint16_t)flowpic_xbin(tb, c->window_ns, c->res);
		b->col_end_ns = ((uint64_t)(b->col + 1) * c->window_ns + c->res - 1) / c->res;
	}
	return b->col;
}

/* Bin one sample at flow time t into every block whose window holds t. */
static void flow_sample(struct flow_table *ft, struct flow *f, uint64_t t, uint32_t size,
			uint32_t dir)
{
	const struct flow_config *c = &ft->cfg;
	uint32_t y = flowpic_ybin(size, c->res);
	int i, lost = 0, binned = 0;

	if (t >= f->next_event_ns)
		flow_blocks_advance(ft, f, t);
	for (i = 0; i < f->nopen; i++) {
		struct block *b = &f->open[i];
		uint32_t x;

		if (t < b->start_t)
			break; /* open blocks are in time order: none after holds t */
		binned = 1;
		x = block_col(c, b, t - b->start_t);
		if (block_count(ft, b, x, y, dir)) {
			b->cells_refused++;
			lost = 1;
			continue;
		}
		b->samples[dir]++;
		b->bytes[dir] = b->bytes[dir] + size < b->bytes[dir] ? UINT32_MAX :
								       b->bytes[dir] + size;
	}
	if (!binned) {
		/* Its block was handed out early by flow_table_advance(). */
		ft->stats.samples_late++;
	} else if (lost) {
		f->cells_refused++;
		ft->stats.cells_refused++;
	} else {
		ft->stats.samples++;
	}
}

/* A SYN or SYN-ACK: the smaller MSS, and whether timestamps are in use. */
static void flow_handshake(struct flow *f, const struct pkt *p)
{
	if (p->tcp_mss && (!f->tcp_mss || p->tcp_mss < f->tcp_mss))
		f->tcp_mss = p->tcp_mss;
	if (p->tcp_flags & 0x10) {
		f->tcp_syn |= FLOW_SYNACK_SEEN;
		if (p->tcp_ts)
			f->tcp_syn |= FLOW_SYNACK_TS;
	} else if (p->tcp_ts) {
		f->tcp_syn |= FLOW_SYN_TS;
	}
}

uint32_t flow_tcp_segment(const struct flow *f)
{
	/* Timestamps are in use when the SYN-ACK answers the SYN's offer with
	 * them (the SYN alone when its answer was not captured); each segment
	 * then carries 12 bytes of options (Linux: gso_size = mss_cache). */
	bool ts = f->tcp_syn & FLOW_SYNACK_SEEN ? f->tcp_syn & FLOW_SYNACK_TS :
						  f->tcp_syn & FLOW_SYN_TS;

	if (!f->tcp_mss)
		return 0;
	return ts && f->tcp_mss > 12 ? f->tcp_mss - 12u : f->tcp_mss;
}

/* Count one wire packet of f and draw it. */
static void flow_packet(struct flow_table *ft, struct flow *f, enum flow_dir dir, uint64_t ts,
			uint32_t size, uint32_t ip_len)
{
	f->packets[dir]++;
	f->ip_bytes[dir] += ip_len;
	f->payload[dir] += size;
	if (size >= PKT_MAX_SIZE) {
		f->oversize++;
		ft->stats.oversize++;
		return;
	}
	if (ft->cfg.aug.drop_ppm &&
	    splitmix(ft->cfg.aug.seed ^ splitmix(f->id) ^ (f->packets[0] + f->packets[1]) << 1) %
			    1000000 <
		    ft->cfg.aug.drop_ppm) {
		ft->stats.aug_dropped++;
		return;
	}
	if (ft->cfg.aug.size_jitter) {
		uint32_t j = ft->cfg.aug.size_jitter;
		int64_t jittered = (int64_t)size - j +
				   (int64_t)(splitmix(ft->cfg.aug.seed ^ splitmix(f->id) ^
						      (f->packets[0] + f->packets[1]) << 1 ^ 1) %
					     (2u * j + 1));

		size = jittered < 1		? 1 :
		       jittered >= PKT_MAX_SIZE ? PKT_MAX_SIZE - 1 :
						  (uint32_t)jittered;
	}
	flow_sample(ft, f, flow_time(f, ts), size, dir);
}

/* Training augmentation: the flow's TCP payload as a sender with another
 * segment size would have cut it.  Full segments (above the drawn size) are
 * re-cut into segments of that size, the remainder carried to the next; a
 * smaller segment ends a write and takes the carry with it.  The byte count
 * is kept; each new segment's header is the original's. */
static void flow_packet_recut(struct flow_table *ft, struct flow *f, enum flow_dir dir, uint64_t ts,
			      uint32_t size, uint32_t ip_len)
{
	uint32_t mss = f->aug_mss, hdr = ip_len - size;
	uint32_t left = f->aug_carry[dir] + size;
	bool full = size > mss;

	while (left > mss || (!full && left)) {
		uint32_t n = left < mss ? left : mss;

		flow_packet(ft, f, dir, ts, n, hdr + n);
		left -= n;
	}
	f->aug_carry[dir] = (uint16_t)left;
}

/* One segment on the wire: drawn, or re-cut first when augmenting the MSS. */
static void flow_segment(struct flow_table *ft, struct flow *f, enum flow_dir dir, uint64_t ts,
			 uint32_t size, uint32_t ip_len)
{
	if (f->aug_mss && size)
		flow_packet_recut(ft, f, dir, ts, size, ip_len);
	else
		flow_packet(ft, f, dir, ts, size, ip_len);
}

enum skip_reason flow_table_add(struct flow_table *ft, const struct pkt *p)
{
	uint32_t hash = session_hash(ft, p);
	enum flow_dir dir = FLOW_DIR_FWD;
	uint64_t ts = p->ts_ns;
	struct flow *f;
	uint32_t idx, seg;

	if (ts > ft->now_ns)
		ft->now_ns = ts;
	expire_idle(ft);
	f = lookup(ft, p, hash, &dir);
	if (f && ts > f->last_ns && ts - f->last_ns > ft->cfg.idle_timeout_ns) {
		/* Reordered input can leave an idle flow unexpired: end it now. */
		flow_end(ft, (uint32_t)(f - ft->flows), FLOW_END_IDLE);
		f = NULL;
	}
	if (!f) {
		f = flow_create(ft, p, hash);
		if (!f) {
			ft->stats.flows_refused++;
			return SKIP_FLOW_TABLE_FULL;
		}
		if (!addr_eq(f->key.a, p->src) || f->key.port_a != p->sport)
			dir = FLOW_DIR_REV;
	}
	idx = (uint32_t)(f - ft->flows);
	ft->stats.packets++;
	if (p->proto == 6 && (p->tcp_flags & 0x02))
		flow_handshake(f, p);
	if (ts < f->last_ns) {
		/* Out of order within the flow: clamp, so time never runs back. */
		ts = f->last_ns;
		f->reordered++;
		ft->stats.reordered++;
	}
	f->last_ns = ts;
	if (ft->lru_tail != idx) {
		lru_unlink(ft, idx);
		lru_insert_sorted(ft, idx);
	}
	seg = flow_tcp_segment(f);
	if (seg && p->size > seg) {
		uint32_t left = p->size, hdr = p->ip_len - p->size;

		ft->stats.super_packets++;
		while (left) {
			uint32_t n = left < seg ? left : seg;

			flow_segment(ft, f, dir, ts, n, hdr + n);
			ft->stats.super_segments++;
			left -= n;
		}
		return SKIP_NONE;
	}
	flow_segment(ft, f, dir, ts, p->size, p->ip_len);
	return SKIP_NONE;
}
