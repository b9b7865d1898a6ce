// SPDX-License-Identifier: MIT
/*
 * test_agent_metrics.c - every counter the agent's counters line can hold
 * (its own with every option on, the capture library's, the stream's, the
 * metrics listener's) has its own HELP in agent/metrics.c, and the
 * exposition of them all has each metric name once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/agent.h"
#include "agent/metrics.h"
#include "bpf/capture.h"
#include "core/classify.h"
#include "core/metrics.h"
#include "rpc/http_metrics.h"
#include "stream/stream.h"

static void test_every_counter_documented(void **state)
{
	struct agent_counter c[AGENT_MAX_COUNTERS + 64];
	struct stream_counter sc[64];
	struct stream_counters zero = { 0 };
	struct http_metrics_stats hz = { 0 };
	struct http_metrics_stat hs[HTTP_METRICS_NSTATS];
	struct classifier_config cc;
	struct agent_config cfg;
	struct classifier *cls;
	struct sbuf b;
	struct agent a;
	char err[256], *line, *dup = NULL;
	size_t n = 0, i, k, families = 0;
	unsigned j;

	(void)state;
	classifier_config_default(&cc);
	cls = classifier_new(&cc, err, sizeof(err));
	assert_non_null(cls);
	/* Every option that adds counters: live, samples, a collector. */
	config_default(&cfg);
	cfg.n_ifaces = 1;
	snprintf(cfg.collector, sizeof(cfg.collector), "127.0.0.1:1");
	assert_int_equal(agent_init(&a, &cfg, cls, stdout, err, sizeof(err)), 0);
	a.samples = stdout;
	agent_counters(&a, c, &n, AGENT_MAX_COUNTERS);
	a.samples = NULL;
	for (j = 0; j < CAPTURE_C_COUNT; j++) {
		static char names[CAPTURE_C_COUNT][48];

		if (!capture_counter_name(j))
			continue;
		snprintf(names[j], sizeof(names[j]), "capture_%s", capture_counter_name(j));
		c[n++] = (struct agent_counter){ names[j], j };
	}
	c[n++] = (struct agent_counter){ "capture_lost_total", 1 };
	c[n++] = (struct agent_counter){ "loopback_egress_skipped", 2 };
	k = stream_counters_list(&zero, sc, 64);
	for (i = 0; i < k; i++)
		c[n++] = (struct agent_counter){ sc[i].name, i };
	k = http_metrics_stats_list(&hz, hs, HTTP_METRICS_NSTATS);
	for (i = 0; i < k; i++)
		c[n++] = (struct agent_counter){ hs[i].name, i };
	assert_true(n <= AGENT_MAX_COUNTERS);

	for (i = 0; i < n; i++) {
		const char *metric;
		bool gauge;

		if (!strncmp(c[i].name, "metrics_", 8))
			continue; /* documented by the listener (rpc/http_metrics.c) */
		if (!agent_metrics_help(c[i].name, &gauge, &metric))
			fail_msg("counter '%s' has no HELP in agent/metrics.c", c[i].name);
	}

	memset(&b, 0, sizeof(b));
	assert_int_equal(agent_metrics_render_list(c, n, &b), 0);
	assert_null(strstr(b.p, "(docs/agent.md)")); /* the fallback HELP: none used */
	/* Each family once: no two counters made into the same name. */
	for (line = strstr(b.p, "# TYPE "); line; line = strstr(line + 1, "# TYPE ")) {
		size_t len = strcspn(line + 7, " ");
		char *other;

		families++;
		for (other = strstr(line + 1, "# TYPE "); other;
		     other = strstr(other + 1, "# TYPE "))
			if (!strncmp(other + 7, line + 7, len + 1))
				dup = line;
	}
	if (dup)
		fail_msg("metric family twice: %.60s", dup + 7);
	assert_int_equal(families, n + 2); /* + the two histograms */
	sbuf_free(&b);
	agent_fini(&a);
	classifier_free(cls);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_counter_documented),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
