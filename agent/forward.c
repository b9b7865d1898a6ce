// SPDX-License-Identifier: MIT
/* forward.c - verdicts to a collector through stream/; see forward.h. */
#include "forward.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/model_picture.h"
#include "stream/stream.h"
#include "stream/verdict_of.h"
#include "rpc/token.h"

#ifndef FLOWPIC_VERSION
#define FLOWPIC_VERSION "0"
#endif

#define MAX_LOCAL 64

/* One stream per process: the state lives here, not in struct agent. */
static struct {
	char where[STREAM_IFNAME_MAX]; /* interface(s) or replayed file */
	uint8_t local[MAX_LOCAL][16];  /* this host's addresses, IPv4-mapped */
	unsigned n_local;
	char token[RPC_TOKEN_MAX + 1];
	char agent_id[256];
	bool tls;
	const char *classes[STREAM_MAX_CLASSES];
	struct stream_counters final; /* after stream_close() */
	bool closed;
	/* counters snapshot for the batches (read by the stream's thread) */
	pthread_mutex_t mu;
	struct stream_counter snap[AGENT_MAX_COUNTERS];
	size_t nsnap;
	/* --send-pictures: one block's picture at a time, as the model sees it
	 * (at most STREAM_PICTURE_CELLS_MAX pixels: more are too many to send). */
	struct model_picture pic;
	bool pictures;
} fw = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void local_addresses(void)
{
	struct ifaddrs *ifa, *i;

	fw.n_local = 0;
	if (getifaddrs(&ifa)) {
		log_warn("cannot list this host's addresses (%s): verdict directions will be "
			 "unspecified",
			 strerror(errno));
		return;
	}
	for (i = ifa; i && fw.n_local < MAX_LOCAL; i = i->ifa_next) {
		uint8_t *a = fw.local[fw.n_local];

		if (!i->ifa_addr)
			continue;
		if (i->ifa_addr->sa_family == AF_INET) {
			memset(a, 0, 10);
			a[10] = a[11] = 0xff;
			memcpy(a + 12, &((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr, 4);
			fw.n_local++;
		} else if (i->ifa_addr->sa_family == AF_INET6) {
			memcpy(a, &((struct sockaddr_in6 *)(void *)i->ifa_addr)->sin6_addr, 16);
			fw.n_local++;
		}
	}
	freeifaddrs(ifa);
}

static bool is_local(const uint8_t addr[16])
{
	unsigned i;

	for (i = 0; i < fw.n_local; i++)
		if (!memcmp(fw.local[i], addr, 16))
			return true;
	return false;
}

static size_t counters_fn(void *ctx, struct stream_counter *out, size_t max)
{
	size_t n;

	(void)ctx;
	pthread_mutex_lock(&fw.mu);
	n = fw.nsnap < max ? fw.nsnap : max;
	memcpy(out, fw.snap, n * sizeof(*out));
	pthread_mutex_unlock(&fw.mu);
	return n;
}

void forward_publish(struct agent *a, const struct agent_counter *c, size_t n)
{
	size_t i;

	if (!a->stream)
		return;
	pthread_mutex_lock(&fw.mu);
	for (i = 0; i < n && i < AGENT_MAX_COUNTERS; i++)
		fw.snap[i] = (struct stream_counter){ c[i].name, c[i].value };
	fw.nsnap = i;
	pthread_mutex_unlock(&fw.mu);
}

static void pictures_free(void)
{
	model_picture_free(&fw.pic);
	fw.pictures = false;
}

/* The picture buffers, sized once from the model: 0, or -ENOMEM with err. */
static int pictures_init(const struct model *m, char *err, size_t errlen)
{
	if (model_picture_init(&fw.pic, m, STREAM_PICTURE_CELLS_MAX) < 0) {
		snprintf(err, errlen, "--send-pictures: out of memory for a %u x %u x %u picture",
			 m->in_channels, m->res, m->res);
		return -ENOMEM;
	}
	fw.pictures = true;
	return 0;
}

/*
 * The block's picture exactly as the classifier's model judged it
 * (core/model_picture.h).  More pixels than can be sent: out->n says how
 * many, the arrays are not read (the stream counts it in pictures_too_big).
 */
static void block_picture(const struct agent *a, const struct block *b, struct stream_cells *out)
{
	model_picture_block(&fw.pic, a->ft, b);
	out->index = fw.pic.index;
	out->count = fw.pic.count;
	out->n = fw.pic.n;
	out->rows = out->cols = (uint16_t)fw.pic.res;
	out->dirs = (uint8_t)fw.pic.dirs;
	out->window_ns = flow_table_config(a->ft)->window_ns;
}

int forward_prepare(struct agent *a, const struct agent_config *cfg, char *err, size_t errlen)
{
	const struct model *m = classifier_model(a->cls);
	struct stream_config sc;
	char terr[256];
	unsigned i;
	int rc;

	stream_config_default(&sc);
	sc.target = cfg->collector;
	sc.tls = cfg->collector_tls || cfg->collector_ca[0] || cfg->collector_cert[0] ||
		 cfg->collector_server_name[0];
	sc.ca_file = cfg->collector_ca[0] ? cfg->collector_ca : NULL;
	sc.cert_file = cfg->collector_cert[0] ? cfg->collector_cert : NULL;
	sc.key_file = cfg->collector_key[0] ? cfg->collector_key : NULL;
	sc.server_name = cfg->collector_server_name[0] ? cfg->collector_server_name : NULL;
	if (cfg->collector_token_file[0]) {
		rc = rpc_token_load(cfg->collector_token_file, fw.token, sizeof(fw.token), terr,
				    sizeof(terr));
		if (rc < 0) {
			snprintf(err, errlen, "%s", terr);
			return rc;
		}
		sc.token = fw.token;
	}
	if (cfg->agent_id[0]) {
		sc.agent_id = cfg->agent_id;
	} else {
		static char host[256];

		if (gethostname(host, sizeof(host) - 1))
			snprintf(host, sizeof(host), "flowpic-agent");
		sc.agent_id = host;
	}
	sc.version = "flowpic-agent " FLOWPIC_VERSION;
	sc.model_name = m->name;
	sc.model_version = m->version;
	if (m->n_classes > STREAM_MAX_CLASSES) {
		snprintf(err, errlen,
			 "the model has %u classes; the verdict stream carries at most %d",
			 m->n_classes, STREAM_MAX_CLASSES);
		return -EINVAL;
	}
	for (i = 0; i < m->n_classes; i++)
		fw.classes[i] = m->classes[i];
	sc.classes = fw.classes;
	sc.nclasses = m->n_classes;
	sc.spool_dir = cfg->spool_dir[0] ? cfg->spool_dir : NULL;
	if (cfg->spool_max_bytes)
		sc.spool_max_bytes = cfg->spool_max_bytes;
	sc.counters_fn = counters_fn;
	if (cfg->send_pictures) {
		rc = pictures_init(m, err, errlen);
		if (rc < 0)
			return rc;
		sc.picture_bytes = STREAM_PICTURE_BYTES_DEFAULT;
	}
	a->stream = stream_prepare(&sc, err, errlen);
	if (!a->stream) {
		rc = errno ? -errno : -EIO;
		pictures_free();
		return rc;
	}
	snprintf(fw.agent_id, sizeof(fw.agent_id), "%s", sc.agent_id);
	fw.tls = sc.tls;
	return 0;
}

int forward_start(struct agent *a, const struct agent_config *cfg, const char *where, char *err,
		  size_t errlen)
{
	int rc = stream_start(a->stream, err, errlen);

	if (rc < 0)
		return rc;
	snprintf(fw.where, sizeof(fw.where), "%s", where);
	if (cfg->n_ifaces)
		local_addresses();
	log_info("streaming verdicts to %s as '%s'%s%s%s", cfg->collector, fw.agent_id,
		 fw.tls ? " over TLS" : "", cfg->spool_dir[0] ? ", spool " : "", cfg->spool_dir);
	return 0;
}

int forward_open(struct agent *a, const struct agent_config *cfg, const char *where, char *err,
		 size_t errlen)
{
	int rc = forward_prepare(a, cfg, err, errlen);

	if (rc == 0)
		rc = forward_start(a, cfg, where, err, errlen);
	return rc;
}

/* Where the verdict was seen: the parts the agent adds, then off to the stream. */
static void submit(struct agent *a, const struct flow *f, struct stream_verdict *sv)
{
	if (is_local(f->key.a))
		sv->direction = STREAM_DIR_OUTBOUND;
	else if (is_local(f->key.b))
		sv->direction = STREAM_DIR_INBOUND;
	memcpy(sv->interface, fw.where, sizeof(sv->interface));
	if (stream_submit(a->stream, sv, NULL))
		a->n.stream_rejected++;
}

void forward_block(struct agent *a, const struct flow *f, const struct block *b,
		   const struct block_verdict *v)
{
	struct stream_verdict sv;

	stream_verdict_of_block(&sv, a->cls, f, b, v, flow_table_config(a->ft)->window_ns);
	if (fw.pictures)
		block_picture(a, b, &sv.cells);
	submit(a, f, &sv);
}

void forward_flow(struct agent *a, const struct flow *f, const struct flow_verdict *v)
{
	struct stream_verdict sv;

	stream_verdict_of_flow(&sv, a->cls, f, v);
	submit(a, f, &sv);
}

void forward_counters(struct agent *a, struct agent_counter *out, size_t *n, size_t max)
{
	struct stream_counter sc[32];
	struct stream_counters c;
	size_t i, k;

	if (a->stream)
		stream_counters(a->stream, &c);
	else if (fw.closed)
		c = fw.final;
	else
		return;
	k = stream_counters_list(&c, sc, sizeof(sc) / sizeof(sc[0]));
	for (i = 0; i < k && *n < max; i++)
		out[(*n)++] = (struct agent_counter){ sc[i].name, sc[i].value };
}

int forward_close(struct agent *a, uint64_t wait_ns)
{
	uint64_t ms = wait_ns / 1000000;
	int rc;

	if (!a->stream)
		return 0;
	rc = stream_close(a->stream, (unsigned)(ms > 3600000 ? 3600000 : ms), &fw.final);
	a->stream = NULL;
	pictures_free();
	fw.closed = true;
	if (fw.final.spooled_now)
		log_warn("%llu verdicts wait in the spool for the collector (sent by the next run)",
			 (unsigned long long)fw.final.spooled_now);
	if (rc < 0) {
		log_error("%llu verdicts could not be kept (spool full or none): counted as "
			  "stream.dropped",
			  (unsigned long long)fw.final.dropped);
		return rc;
	}
	return 0;
}
