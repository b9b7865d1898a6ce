// SPDX-License-Identifier: MIT
/*
 * test_agent_unit.c - the agent's own logic without a capture: the packet
 * path and its counters (agent.c), with the embedded model, and the
 * capability check and drop (caps.c; the drop runs in a child process).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/agent.h"
#include "agent/caps.h"
#include "core/classify.h"

static struct classifier *cls;

static int setup(void **state)
{
	struct classifier_config cc;
	char err[256];

	(void)state;
	classifier_config_default(&cc);
	cls = classifier_new(&cc, err, sizeof(err));
	return cls ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	classifier_free(cls);
	return 0;
}

static struct pkt udp(uint64_t ts_ns, uint8_t host, uint16_t sport, uint32_t size)
{
	struct pkt p;

	memset(&p, 0, sizeof(p));
	p.ts_ns = ts_ns;
	p.src[10] = p.src[11] = p.dst[10] = p.dst[11] = 0xff;
	p.src[12] = 10, p.src[15] = host;
	p.dst[12] = 10, p.dst[15] = 200;
	p.sport = sport;
	p.dport = 5004;
	p.proto = 17;
	p.size = size;
	p.ip_len = size + 28;
	return p;
}

static uint64_t counter(const struct agent *a, const char *name)
{
	struct agent_counter c[AGENT_MAX_COUNTERS];
	size_t n = 0, i;

	agent_counters(a, c, &n, AGENT_MAX_COUNTERS);
	for (i = 0; i < n; i++)
		if (!strcmp(c[i].name, name))
			return c[i].value;
	fail_msg("no counter %s", name);
	return 0;
}

static unsigned count_lines(const char *s, const char *needle)
{
	unsigned n = 0;

	for (; (s = strstr(s, needle)); s++)
		n++;
	return n;
}

/* Two flows, one packet refused by a full table, skips: all counted, verdicts printed. */
static void test_packet_path(void **state)
{
	struct agent_config cfg;
	struct agent a;
	char err[256], *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	uint64_t t0 = 1700000000ULL * NS_PER_SEC;
	int i;

	(void)state;
	config_default(&cfg);
	cfg.max_flows = 2;
	assert_int_equal(agent_init(&a, &cfg, cls, out, err, sizeof(err)), 0);
	for (i = 0; i < 100; i++) {
		struct pkt p = udp(t0 + (uint64_t)i * 20000000, 1, 4000, 160);

		agent_packet(&a, &p);
	}
	for (i = 0; i < 10; i++) {
		struct pkt p = udp(t0 + (uint64_t)i * 100000000, 2, 4001, 1200);

		agent_packet(&a, &p);
	}
	{
		struct pkt p =
			udp(t0 + 5 * NS_PER_SEC, 3, 4002, 100); /* a third flow: table full */

		agent_packet(&a, &p);
	}
	agent_skip(&a, SKIP_ICMP);
	agent_skip(&a, SKIP_ICMP);
	agent_skip(&a, SKIP_FRAGMENT);
	agent_skip(&a, SKIP_REASON_COUNT); /* out of range: ignored */
	assert_int_equal(counter(&a, "packets"), 111);
	assert_int_equal(counter(&a, "packets_udp"), 111);
	assert_int_equal(counter(&a, "packets_tcp"), 0);
	assert_int_equal(counter(&a, "skipped_flow_table_full"), 1);
	assert_int_equal(counter(&a, "skipped_icmp"), 2);
	assert_int_equal(counter(&a, "skipped_fragment"), 1);
	assert_int_equal(counter(&a, "flows_active"), 2);
	assert_int_equal(counter(&a, "verdicts_flow"), 0);

	/* The clock moves past the idle timeout: both flows end, without a packet. */
	agent_advance(&a, t0 + 5 * NS_PER_SEC + cfg.idle_timeout_ns + 1);
	assert_int_equal(counter(&a, "flows_active"), 0);
	assert_int_equal(counter(&a, "verdicts_flow"), 2);
	/* Ended idle 120 s later: the blocks' 60 s windows passed, so they are
	 * complete (not early) although the flows were short. */
	assert_int_equal(counter(&a, "verdicts_flow_early"), 0);
	assert_int_equal(counter(&a, "verdicts_block"), 2);
	assert_int_equal(counter(&a, "verdicts_block_early"), 0);
	assert_int_equal(counter(&a, "samples"), 110);
	assert_int_equal(counter(&a, "output_errors"), 0);
	agent_flush(&a);
	fflush(out);
	assert_int_equal(count_lines(buf, "\"type\":\"block\""), 2);
	assert_int_equal(count_lines(buf, "\"end\":\"idle\""), 2);
	assert_non_null(
		strstr(buf,
		       "\"sport\":4000,\"dst\":\"10.0.0.200\",\"dport\":5004,\"packets\":100"));
	agent_fini(&a);
	fclose(out);
	free(buf);
}

/* --flow-verdicts-only: block verdicts counted, not printed. */
static void test_flow_verdicts_only(void **state)
{
	struct agent_config cfg;
	struct agent a;
	char err[256], *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	struct pkt p = udp(1700000000ULL * NS_PER_SEC, 1, 4000, 160);

	(void)state;
	config_default(&cfg);
	cfg.no_block_verdicts = true;
	assert_int_equal(agent_init(&a, &cfg, cls, out, err, sizeof(err)), 0);
	agent_packet(&a, &p);
	agent_flush(&a);
	fflush(out);
	assert_int_equal(counter(&a, "verdicts_block"), 1);
	assert_int_equal(counter(&a, "verdicts_block_early"), 1); /* input ended first */
	assert_int_equal(counter(&a, "verdicts_flow_early"), 1);
	assert_int_equal(count_lines(buf, "\"type\":\"block\""), 0);
	assert_int_equal(count_lines(buf, "\"end\":\"input\""), 1);
	agent_fini(&a);
	fclose(out);
	free(buf);
}

/* A verdict line that cannot be written is counted, and the run goes on. */
static void test_output_error(void **state)
{
	struct agent_config cfg;
	struct agent a;
	char err[256];
	FILE *out = fopen("/dev/full", "w");
	struct pkt p = udp(1700000000ULL * NS_PER_SEC, 1, 4000, 160);

	(void)state;
	assert_non_null(out);
	config_default(&cfg);
	assert_int_equal(agent_init(&a, &cfg, cls, out, err, sizeof(err)), 0);
	agent_packet(&a, &p);
	agent_flush(&a);
	assert_int_equal(counter(&a, "output_errors"), 2); /* block line, flow line */
	assert_int_equal(counter(&a, "verdicts_flow"), 1);
	agent_fini(&a);
	fclose(out);
}

/* The counters line: one JSON object, names quoted, values plain. */
static void test_counters_line(void **state)
{
	struct agent_counter c[] = { { "packets", 3 },
				     { "capture_lost_ring_full", 0 },
				     { "stream.acked", 18446744073709551615ULL } };
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);

	(void)state;
	agent_counters_write(out, c, 3);
	fclose(out);
	assert_string_equal(buf, "{\"counters\":{\"packets\":3,\"capture_lost_ring_full\":0,"
				 "\"stream.acked\":18446744073709551615},\"type\":\"counters\"}\n");
	free(buf);
}

/* Root: after the drop nothing is left, not even in the bounding set.  (The
 * check that the capabilities are there is the capture library's: the
 * agent.errors test runs it without them.)  Not root: nothing to drop. */
static void test_caps(void **state)
{
	char err[512];
	pid_t pid;
	int st;

	(void)state;
	if (geteuid() != 0)
		return;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char caps[256];
		FILE *f;
		char line[256];
		int ok_eff = 0, ok_bnd = 0;

		if (caps_drop_all(false, NULL, err, sizeof(err)))
			_exit(10);
		caps_describe(caps, sizeof(caps));
		if (strcmp(caps, "="))
			_exit(11);
		f = fopen("/proc/self/status", "r");
		while (f && fgets(line, sizeof(line), f)) {
			ok_eff |= !strcmp(line, "CapEff:\t0000000000000000\n");
			ok_bnd |= !strcmp(line, "CapBnd:\t0000000000000000\n");
		}
		if (!ok_eff || !ok_bnd)
			_exit(13);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);

	/* Keeping CAP_NET_ADMIN (kernels without tcx) keeps exactly that one. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char caps[256];

		if (caps_drop_all(true, NULL, err, sizeof(err)))
			_exit(10);
		caps_describe(caps, sizeof(caps));
		_exit(strcmp(caps, "cap_net_admin=ep") ? 11 : 0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);

	/* And with a switch to nobody: no uid 0 left anywhere, no capability
	 * (or exactly CAP_NET_ADMIN, kept across the switch). */
	for (int keep = 0; keep < 2; keep++) {
		struct caps_user u;

		assert_int_equal(caps_pick_user("nobody", &u, err, sizeof(err)), 1);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			char caps[256];
			uid_t r, e, sv;
			gid_t gr, ge, gs;

			if (caps_drop_all(keep, &u, err, sizeof(err)))
				_exit(10);
			caps_describe(caps, sizeof(caps));
			if (strcmp(caps, keep ? "cap_net_admin=ep" : "="))
				_exit(11);
			if (getresuid(&r, &e, &sv) || r != u.uid || e != u.uid || sv != u.uid ||
			    getresgid(&gr, &ge, &gs) || gr != u.gid || ge != u.gid || gs != u.gid ||
			    getgroups(0, NULL) != 0)
				_exit(12);
			if (setuid(0) == 0)
				_exit(13);
			_exit(0);
		}
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}
	assert_int_equal(caps_pick_user("fpt-no-such-user", &(struct caps_user){ 0 }, err,
					sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "no user 'fpt-no-such-user'"));
	assert_int_equal(caps_pick_user("root", &(struct caps_user){ 0 }, err, sizeof(err)),
			 -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_packet_path),  cmocka_unit_test(test_flow_verdicts_only),
		cmocka_unit_test(test_output_error), cmocka_unit_test(test_counters_line),
		cmocka_unit_test(test_caps),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
