// SPDX-License-Identifier: MIT
/*
 * fuzz_agent_config.c - libFuzzer target for flowpic-agent's settings
 * (agent/config.c): byte 0 even, the rest is a config file (read from a
 * memfd through its /proc path); odd, byte 1 picks a setting and the rest is
 * its value (config_set, as a flag).  Each bad line is reported as one line;
 * a file read without a bad line, printed with config_print() and read
 * again, must print the same (the printed form means what it says).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "agent/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void report(void *ctx, const char *line)
{
	(void)ctx;
	if (!line[0] || strchr(line, '\n'))
		abort();
}

/* Load size bytes of text as a config file into c: the bad lines' count. */
static int load(struct agent_config *c, const void *text, size_t size)
{
	char path[64];
	int fd = memfd_create("agent.conf", MFD_CLOEXEC), rc;

	if (fd < 0 || write(fd, text, size) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	rc = config_load(c, path, report, NULL);
	close(fd);
	return rc;
}

static char *print(const struct agent_config *c, size_t *len)
{
	char *out = NULL;
	FILE *f = open_memstream(&out, len);

	if (!f)
		abort();
	config_print(f, c);
	fclose(f);
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct agent_config c, again;
	char err[600] = "";
	size_t n, n2;
	char *p1, *p2;

	if (size < 2 || size > 1 << 16)
		return 0;
	config_default(&c);
	if (data[0] & 1) {
		size_t nset = 0;
		char *v = strndup((const char *)data + 2, size - 2);

		while (config_settings[nset].name)
			nset++;
		if (!v)
			return 0;
		if (config_set(&c, &config_settings[data[1] % nset], v, err, sizeof(err)) < 0 &&
		    (!err[0] || strchr(err, '\n')))
			abort();
		free(v);
		config_check(&c, err, sizeof(err));
		return 0;
	}
	if (load(&c, data + 1, size - 1) != 0)
		return 0;
	config_check(&c, err, sizeof(err));
	p1 = print(&c, &n);
	config_default(&again);
	if (load(&again, p1, n) != 0)
		abort(); /* what it printed, it must read */
	p2 = print(&again, &n2);
	if (n != n2 || memcmp(p1, p2, n))
		abort();
	free(p1);
	free(p2);
	return 0;
}
