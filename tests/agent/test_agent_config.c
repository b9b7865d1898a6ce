// SPDX-License-Identifier: MIT
/* test_agent_config.c - the agent's settings: flags and config file (agent/config.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/config.h"
#include "core/flow.h"

/* Lines reported by config_load, kept for the checks. */
struct reports {
	char line[16][1024];
	int n;
};

static void collect(void *ctx, const char *line)
{
	struct reports *r = ctx;

	if (r->n < 16)
		snprintf(r->line[r->n], sizeof(r->line[0]), "%s", line);
	r->n++;
}

/* A config file with this text; its path in path (a mkstemp name). */
static void write_file(char *path, const char *text)
{
	int fd;

	strcpy(path, "/tmp/fpt-agent-config-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static int set(struct agent_config *c, const char *name, const char *value, char *err)
{
	const struct config_setting *s = config_find(name);

	assert_non_null(s);
	return config_set(c, s, value, err, 256);
}

static void test_defaults(void **state)
{
	struct agent_config c;
	struct flow_config fc;

	(void)state;
	config_default(&c);
	flow_config_default(&fc);
	assert_int_equal(c.idle_timeout_ns, fc.idle_timeout_ns);
	assert_int_equal(c.max_flows, fc.max_flows);
	assert_int_equal(c.max_cells, fc.max_cells);
	assert_int_equal(c.sweep_ns, NS_PER_SEC);
	assert_int_equal(c.lag_ns, 2 * NS_PER_SEC);
	assert_int_equal(c.n_ifaces, 0);
	assert_int_equal(c.design, AGENT_DESIGN_DEFAULT);
	assert_false(c.xdp_generic);
	assert_int_equal(c.given, 0);
}

static void test_find(void **state)
{
	(void)state;
	assert_non_null(config_find("idle-timeout"));
	assert_ptr_equal(config_find("idle_timeout"), config_find("idle-timeout"));
	assert_null(config_find("idle"));
	assert_null(config_find("idle-timeout-x"));
	assert_null(config_find(""));
	assert_ptr_equal(config_find_key('i'), config_find("iface"));
	assert_null(config_find_key('Z'));
}

static void test_ifaces(void **state)
{
	struct agent_config c;
	char err[256], many[256] = "";
	int i;

	(void)state;
	config_default(&c);
	assert_int_equal(set(&c, "iface", "eth0", err), 0);
	assert_int_equal(c.n_ifaces, 1);
	assert_string_equal(c.ifaces[0], "eth0");
	assert_int_equal(set(&c, "iface", "eth0,wlan0,veth-x.10", err), 0);
	assert_int_equal(c.n_ifaces, 3);
	assert_string_equal(c.ifaces[2], "veth-x.10");

	assert_int_equal(set(&c, "iface", "eth0,,eth1", err), -EINVAL);
	assert_non_null(strstr(err, "empty interface name"));
	assert_int_equal(set(&c, "iface", "eth0,", err), -EINVAL);
	assert_non_null(strstr(err, "empty interface name"));
	assert_int_equal(set(&c, "iface", ",eth0", err), -EINVAL);
	assert_int_equal(set(&c, "iface", "", err), -EINVAL);
	assert_int_equal(set(&c, "iface", "abcdefghijklmnop", err), -EINVAL); /* 16 chars */
	assert_non_null(strstr(err, "longer than 15"));
	assert_int_equal(set(&c, "iface", "abcdefghijklmno", err), 0); /* 15 chars */
	for (i = 0; i < AGENT_MAX_IFACES + 1; i++)
		sprintf(many + strlen(many), "%se%d", i ? "," : "", i);
	assert_int_equal(set(&c, "iface", many, err), -EINVAL);
	assert_non_null(strstr(err, "more than 16"));
}

static void test_numbers(void **state)
{
	struct agent_config c;
	char err[256];

	(void)state;
	config_default(&c);
	assert_int_equal(set(&c, "idle-timeout", "30", err), 0);
	assert_int_equal(c.idle_timeout_ns, 30 * NS_PER_SEC);
	assert_int_equal(set(&c, "idle-timeout", "0.25", err), 0);
	assert_int_equal(c.idle_timeout_ns, NS_PER_SEC / 4);
	assert_int_equal(set(&c, "idle-timeout", "0", err), -EINVAL);
	assert_string_equal(err, "idle-timeout '0': give seconds from 0.000001 to 4398");
	assert_int_equal(set(&c, "idle-timeout", "abc", err), -EINVAL);
	assert_int_equal(set(&c, "idle-timeout", "10s", err), -EINVAL);
	assert_int_equal(set(&c, "idle-timeout", "-1", err), -EINVAL);
	assert_int_equal(c.idle_timeout_ns, NS_PER_SEC / 4);	    /* unchanged by the failures */
	assert_int_equal(set(&c, "sweep", "0.0001", err), -EINVAL); /* below 1 ms */
	assert_int_equal(set(&c, "sweep", "0.001", err), 0);
	assert_int_equal(set(&c, "sweep-lag", "0", err), 0);
	assert_int_equal(c.lag_ns, 0);
	assert_int_equal(set(&c, "counters-every", "60", err), 0);
	assert_int_equal(c.counters_every_ns, 60 * NS_PER_SEC);
	assert_int_equal(set(&c, "batch-age", "0.2", err), 0);
	assert_int_equal(c.batch_age_ns, 200000000);

	assert_int_equal(set(&c, "max-flows", "1000", err), 0);
	assert_int_equal(c.max_flows, 1000);
	assert_int_equal(set(&c, "max-flows", "0", err), -EINVAL);
	assert_string_equal(err, "max-flows '0': give a whole number from 1 to 1073741824");
	assert_int_equal(set(&c, "max-flows", "1e3", err), -EINVAL);
	assert_int_equal(set(&c, "max-flows", "99999999999999999999999", err), -EINVAL);
	assert_int_equal(set(&c, "max-cells", "29", err), -EINVAL);
	assert_int_equal(set(&c, "max-cells", "30", err), 0);
	assert_int_equal(set(&c, "ring-bytes", "4194304", err), 0);
	assert_int_equal(c.ring_bytes, 4194304);
	assert_int_equal(set(&c, "ring-bytes", "5000000", err), -EINVAL);
	assert_non_null(strstr(err, "power of two"));
	assert_int_equal(set(&c, "ring-bytes", "2048", err), -EINVAL);
	assert_int_equal(set(&c, "bpf-flows", "0x10000", err), 0);
	assert_int_equal(c.bpf_flows, 65536);
	assert_int_equal(set(&c, "idle-timeout", NULL, err), -EINVAL);
	assert_string_equal(err, "idle-timeout: give a value");
}

static void test_switches_and_words(void **state)
{
	struct agent_config c;
	char err[256];

	(void)state;
	config_default(&c);
	assert_int_equal(set(&c, "xdp-generic", NULL, err), 0);
	assert_true(c.xdp_generic);
	assert_int_equal(set(&c, "xdp-generic", "off", err), 0);
	assert_false(c.xdp_generic);
	assert_int_equal(set(&c, "xdp-generic", "YES", err), 0);
	assert_true(c.xdp_generic);
	assert_int_equal(set(&c, "xdp-generic", "0", err), 0);
	assert_false(c.xdp_generic);
	assert_int_equal(set(&c, "xdp-generic", "maybe", err), -EINVAL);
	assert_string_equal(err, "xdp-generic 'maybe': give true or false");
	assert_int_equal(set(&c, "keep-caps", "true", err), 0);
	assert_true(c.keep_caps);
	assert_int_equal(set(&c, "flow-verdicts-only", "1", err), 0);
	assert_true(c.no_block_verdicts);

	assert_int_equal(set(&c, "design", "batches", err), 0);
	assert_int_equal(c.design, AGENT_DESIGN_BATCHES);
	assert_int_equal(set(&c, "design", "records", err), 0);
	assert_int_equal(c.design, AGENT_DESIGN_RECORDS);
	assert_int_equal(set(&c, "design", "Records", err), -EINVAL);
	assert_int_equal(set(&c, "log-level", "debug", err), 0);
	assert_int_equal(c.verbosity, 2);
	assert_int_equal(set(&c, "log-level", "error", err), 0);
	assert_int_equal(c.verbosity, -1);
	assert_int_equal(set(&c, "log-level", "loud", err), -EINVAL);
	assert_true(c.vote_ratio < 0 && c.min_confidence < 0); /* defaults: the classifier's */
	assert_int_equal(set(&c, "min-confidence", "0.25", err), 0);
	assert_true(c.min_confidence == 0.25f);
	assert_int_equal(set(&c, "vote-ratio", "1.5", err), -EINVAL);
	assert_string_equal(err, "vote-ratio '1.5': give a number from 0 to 1");
	assert_int_equal(set(&c, "vote-ratio", "nan", err), -EINVAL);
	assert_int_equal(set(&c, "vote-ratio", "", err), -EINVAL);

	assert_int_equal(set(&c, "model", "/x/y.fpcnn", err), 0);
	assert_string_equal(c.model, "/x/y.fpcnn");
	assert_int_equal(set(&c, "pcap", "", err), -EINVAL);
	assert_string_equal(err, "pcap: empty file name");
}

static void test_collector(void **state)
{
	struct agent_config c;
	char err[256], longname[300];

	(void)state;
	config_default(&c);
	assert_int_equal(c.collector_wait_ns, 5 * NS_PER_SEC);
	assert_int_equal(set(&c, "iface", "lo", err), 0);
	assert_int_equal(set(&c, "spool-dir", "/var/spool/fp", err), 0);
	assert_int_equal(config_check(&c, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "collector settings without --collector HOST:PORT");
	assert_int_equal(set(&c, "collector", "collector.example:4317", err), 0);
	assert_int_equal(config_check(&c, err, sizeof(err)), 0);
	assert_int_equal(set(&c, "collector-cert", "/etc/fp/agent.pem", err), 0);
	assert_int_equal(config_check(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "both --collector-cert and --collector-key"));
	assert_int_equal(set(&c, "collector-key", "/etc/fp/agent.key", err), 0);
	assert_int_equal(config_check(&c, err, sizeof(err)), 0);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(set(&c, "collector", longname, err), -EINVAL);
	assert_string_equal(err, "collector: value longer than 255 bytes");
	assert_string_equal(c.collector, "collector.example:4317");
	assert_int_equal(set(&c, "agent-id", "", err), -EINVAL);
	assert_string_equal(err, "agent-id: empty value");
	assert_int_equal(set(&c, "spool-max-bytes", "1000", err), -EINVAL);
	assert_int_equal(set(&c, "spool-max-bytes", "10737418240", err), 0);
	assert_int_equal(c.spool_max_bytes, 10737418240ULL);
	assert_int_equal(set(&c, "collector-wait", "0", err), 0);
	assert_int_equal(c.collector_wait_ns, 0);
}

static void test_file_good(void **state)
{
	const char *text = "# flowpic-agent settings\n"
			   "\n"
			   "   # indented comment\n"
			   "iface = eth0,eth1\n"
			   "idle_timeout=30\n"
			   "\tmodel = \"/opt/models/a b.fpcnn\"  \n"
			   "xdp-generic = yes\r\n"
			   "counters-file = /var/log/fp # not a comment\n"
			   "design = batches"; /* no newline at the end */
	struct reports rep = { 0 };
	struct agent_config c;
	char path[64];

	(void)state;
	write_file(path, text);
	config_default(&c);
	assert_int_equal(config_load(&c, path, collect, &rep), 0);
	assert_int_equal(rep.n, 0);
	assert_int_equal(c.n_ifaces, 2);
	assert_string_equal(c.ifaces[1], "eth1");
	assert_int_equal(c.idle_timeout_ns, 30 * NS_PER_SEC);
	assert_string_equal(c.model, "/opt/models/a b.fpcnn");
	assert_true(c.xdp_generic);
	/* Only whole lines are comments: '#' inside a value is kept. */
	assert_string_equal(c.counters_file, "/var/log/fp # not a comment");
	assert_int_equal(c.design, AGENT_DESIGN_BATCHES);
	unlink(path);
}

static void test_file_bad_lines(void **state)
{
	const char *text = "iface = eth0\n"	/* 1 fine */
			   "idle-timeout 30\n"	/* 2 no '=' */
			   "colour = blue\n"	/* 3 unknown key */
			   "max-flows = lots\n" /* 4 bad value */
			   "iface = eth1\n"	/* 5 duplicate */
			   "= 5\n"		/* 6 no key */
			   "model =\n"		/* 7 no value */
			   "model = \"/x\n"	/* 8 unterminated quote */
			   "max-cells = 100\n"; /* 9 fine */
	struct reports rep = { 0 };
	struct agent_config c;
	char path[64], want[256];

	(void)state;
	write_file(path, text);
	config_default(&c);
	assert_int_equal(config_load(&c, path, collect, &rep), 7);
	assert_int_equal(rep.n, 7);
	snprintf(want, sizeof(want), "%s:2: expected 'key = value', got 'idle-timeout 30'", path);
	assert_string_equal(rep.line[0], want);
	snprintf(want, sizeof(want),
		 "%s:3: unknown key 'colour' (keys are the long flags of "
		 "flowpic-agent --help)",
		 path);
	assert_string_equal(rep.line[1], want);
	snprintf(want, sizeof(want),
		 "%s:4: max-flows 'lots': give a whole number from 1 to "
		 "1073741824",
		 path);
	assert_string_equal(rep.line[2], want);
	snprintf(want, sizeof(want), "%s:5: iface is already set on line 1", path);
	assert_string_equal(rep.line[3], want);
	snprintf(want, sizeof(want), "%s:6: no key before '='", path);
	assert_string_equal(rep.line[4], want);
	snprintf(want, sizeof(want), "%s:7: model: no value after '='", path);
	assert_string_equal(rep.line[5], want);
	snprintf(want, sizeof(want), "%s:8: model: unterminated quote", path);
	assert_string_equal(rep.line[6], want);
	/* Good lines around the bad ones still count. */
	assert_int_equal(c.n_ifaces, 1);
	assert_string_equal(c.ifaces[0], "eth0");
	assert_int_equal(c.max_cells, 100);
	unlink(path);
}

static void test_file_unreadable(void **state)
{
	struct reports rep = { 0 };
	struct agent_config c;

	(void)state;
	config_default(&c);
	assert_int_equal(config_load(&c, "/nonexistent/agent.conf", collect, &rep), -ENOENT);
	assert_int_equal(rep.n, 1);
	assert_string_equal(rep.line[0], "/nonexistent/agent.conf: cannot read the config file: "
					 "No such file or directory");
}

static void test_file_nul(void **state)
{
	static const char text[] = "iface = eth0\nmodel = a\0b\nmax-flows = 5\n";
	struct reports rep = { 0 };
	struct agent_config c;
	char path[64];
	FILE *f;

	(void)state;
	strcpy(path, "/tmp/fpt-agent-config-XXXXXX");
	close(mkstemp(path));
	f = fopen(path, "w");
	fwrite(text, 1, sizeof(text) - 1, f);
	fclose(f);
	config_default(&c);
	assert_int_equal(config_load(&c, path, collect, &rep), 1);
	assert_non_null(strstr(rep.line[0], ":2: NUL byte"));
	assert_int_equal(c.max_flows, 5);
	unlink(path);
}

static void test_check(void **state)
{
	struct agent_config c;
	char err[256];

	(void)state;
	config_default(&c);
	assert_int_equal(config_check(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "give --iface IF"));
	assert_int_equal(set(&c, "iface", "lo", err), 0);
	assert_int_equal(config_check(&c, err, sizeof(err)), 0);
	assert_int_equal(set(&c, "pcap", "x.pcap", err), 0);
	assert_int_equal(config_check(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not both"));
}

/* What config_print writes reads back as the same settings. */
static void test_print_roundtrip(void **state)
{
	struct agent_config a, b;
	struct reports rep = { 0 };
	char path[64], err[256];
	FILE *f;

	(void)state;
	config_default(&a);
	assert_int_equal(set(&a, "iface", "eth0,lo", err), 0);
	assert_int_equal(set(&a, "model", "/m/x.fpcnn", err), 0);
	assert_int_equal(set(&a, "idle-timeout", "12.5", err), 0);
	assert_int_equal(set(&a, "max-flows", "15", err), 0);
	assert_int_equal(set(&a, "design", "records", err), 0);
	assert_int_equal(set(&a, "ring-bytes", "1048576", err), 0);
	assert_int_equal(set(&a, "counters-every", "0.5", err), 0);
	assert_int_equal(set(&a, "log-level", "info", err), 0);
	assert_int_equal(set(&a, "xdp-generic", NULL, err), 0);
	assert_int_equal(set(&a, "vote-ratio", "0.35", err), 0);
	assert_int_equal(set(&a, "collector", "[::1]:4317", err), 0);
	assert_int_equal(set(&a, "collector-ca", "/etc/ca.pem", err), 0);
	assert_int_equal(set(&a, "agent-id", "edge 7", err), 0);
	assert_int_equal(set(&a, "spool-max-bytes", "2097152", err), 0);
	strcpy(path, "/tmp/fpt-agent-config-XXXXXX");
	close(mkstemp(path));
	f = fopen(path, "w");
	config_print(f, &a);
	fclose(f);
	config_default(&b);
	assert_int_equal(config_load(&b, path, collect, &rep), 0);
	b.given = a.given; /* print writes defaults too */
	assert_memory_equal(&a, &b, sizeof(a));
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_find),
		cmocka_unit_test(test_ifaces),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_switches_and_words),
		cmocka_unit_test(test_collector),
		cmocka_unit_test(test_file_good),
		cmocka_unit_test(test_file_bad_lines),
		cmocka_unit_test(test_file_unreadable),
		cmocka_unit_test(test_file_nul),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_print_roundtrip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
