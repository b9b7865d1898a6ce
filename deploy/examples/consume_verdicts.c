// SPDX-License-Identifier: MIT
/*
 * consume_verdicts.c - an example consumer of the verdicts the collector
 * publishes to NATS JetStream (flowpic-collector --nats; docs/collector.md,
 * "Publishing to NATS JetStream").
 *
 *   flowpic-consume-verdicts [-s URL[,URL...]] [-S STREAM] [-d DURABLE] [-x SECONDS]
 *
 * A pull consumer on flowpic.v1.verdicts.>: each message's payload is a
 * flowpic.v1.Batch of one verdict (with its agent and model), printed as
 * one JSON line; each message is acked after it is printed.  -d names a
 * durable consumer (a restart goes on where it stopped); without it the
 * consumer is ephemeral and starts at the stream's first message.  -x: exit
 * after SECONDS without a message, printing the stream's message count.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

#include "flowpic.pb-c.h"

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void print_verdict(natsMsg *m)
{
	const char *id = "";
	Flowpic__V1__Batch *b;

	natsMsgHeader_Get(m, "Nats-Msg-Id", &id);
	b = flowpic__v1__batch__unpack(NULL, (size_t)natsMsg_GetDataLength(m),
				       (const uint8_t *)natsMsg_GetData(m));
	printf("{\"msg_id\":");
	json_str(id ? id : "");
	printf(",\"subject\":");
	json_str(natsMsg_GetSubject(m));
	if (b && b->agent && b->n_verdicts == 1) {
		const Flowpic__V1__Verdict *v = b->verdicts[0];

		printf(",\"agent_id\":");
		json_str(b->agent->agent_id);
		printf(",\"host\":");
		json_str(b->agent->host);
		printf(",\"run_id\":%" PRIu64 ",\"seq\":%" PRIu64 ",\"class\":", b->agent->run_id,
		       v->seq);
		json_str(v->class_name);
		printf(",\"confidence\":%.4f", v->confidence);
	} else {
		printf(",\"error\":\"payload is not a Batch of one verdict\"");
	}
	printf("}\n");
	if (b)
		flowpic__v1__batch__free_unpacked(b, NULL);
}

int main(int argc, char **argv)
{
	const char *servers = "nats://127.0.0.1:4222", *stream = "FLOWPIC_VERDICTS",
		   *durable = NULL;
	natsConnection *nc = NULL;
	natsSubscription *sub = NULL;
	natsOptions *opts = NULL;
	jsStreamInfo *si = NULL;
	jsSubOptions so;
	jsCtx *js = NULL;
	int64_t exit_idle_ms = 0, idle_ms = 0;
	const char *urls[16];
	char buf[1024], *save = NULL, *t;
	natsStatus s;
	int c, n = 0, tries, rc = 1;

	while ((c = getopt(argc, argv, "s:S:d:x:h")) != -1) {
		switch (c) {
		case 's':
			servers = optarg;
			break;
		case 'S':
			stream = optarg;
			break;
		case 'd':
			durable = optarg;
			break;
		case 'x':
			exit_idle_ms = (int64_t)(atof(optarg) * 1000);
			break;
		default:
			fprintf(stderr,
				"usage: %s [-s URL[,URL...]] [-S STREAM] [-d DURABLE] [-x SECONDS]\n",
				argv[0]);
			return c == 'h' ? 0 : 2;
		}
	}
	/* A comma-separated list: one entry per server. */
	snprintf(buf, sizeof(buf), "%s", servers);
	for (t = strtok_r(buf, ",", &save); t && n < 16; t = strtok_r(NULL, ",", &save))
		urls[n++] = t;
	s = natsOptions_Create(&opts);
	if (s == NATS_OK)
		s = natsOptions_SetServers(opts, urls, n);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(opts, -1);
	if (s == NATS_OK)
		s = natsConnection_Connect(&nc, opts);
	if (s == NATS_OK)
		s = natsConnection_JetStream(&js, nc, NULL);
	if (s == NATS_OK)
		s = jsSubOptions_Init(&so);
	/* Right after a node restarts the stream may still elect its leader:
	 * creating the consumer is retried for 10 s. */
	so.Stream = stream;
	for (tries = 0; s == NATS_OK && tries < 20; tries++) {
		s = js_PullSubscribe(&sub, js, "flowpic.v1.verdicts.>", durable, NULL, &so, NULL);
		if (s == NATS_OK)
			break;
		if (tries < 19) {
			s = NATS_OK;
			nats_Sleep(500);
		}
	}
	if (s != NATS_OK) {
		fprintf(stderr, "consume_verdicts: %s: %s (%s)\n", servers, natsStatus_GetText(s),
			nats_GetLastError(NULL));
		goto out;
	}
	while (!exit_idle_ms || idle_ms < exit_idle_ms) {
		natsMsgList list = { 0 };
		int i;

		s = natsSubscription_Fetch(&list, sub, 256, 1000, NULL);
		if (s == NATS_TIMEOUT || list.Count == 0) {
			idle_ms += 1000;
			natsMsgList_Destroy(&list);
			continue;
		}
		idle_ms = 0;
		for (i = 0; i < list.Count; i++) {
			print_verdict(list.Msgs[i]);
			natsMsg_Ack(list.Msgs[i], NULL);
		}
		fflush(stdout);
		natsMsgList_Destroy(&list);
	}
	for (tries = 0; tries < 20; tries++) {
		s = js_GetStreamInfo(&si, js, stream, NULL, NULL);
		if (s == NATS_OK)
			break;
		nats_Sleep(500);
	}
	if (s == NATS_OK) {
		printf("{\"event\":\"stream\",\"messages\":%" PRIu64 "}\n", si->State.Msgs);
		jsStreamInfo_Destroy(si);
		rc = 0;
	} else {
		fprintf(stderr, "consume_verdicts: stream %s: %s (%s)\n", stream,
			natsStatus_GetText(s), nats_GetLastError(NULL));
	}
out:
	natsSubscription_Destroy(sub);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	natsOptions_Destroy(opts);
	nats_CloseAndWait(1000);
	return rc;
}
