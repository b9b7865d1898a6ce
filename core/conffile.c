// SPDX-License-Identifier: MIT
/* conffile.c - config files and FLOWPIC_* variables; see conffile.h. */
#include "conffile.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

const char *const conffile_env_known[] = {
	"FLOWPIC_AGENT_ARGS",	  /* deploy/etc/agent.env: extra flags for the unit */
	"FLOWPIC_COLLECTOR_ARGS", /* deploy/etc/collector.env */
	"FLOWPIC_COLLECTOR",	  /* tests: the collector binary (the agent's key "collector") */
	"FLOWPIC_LOG_FORMAT",	  /* read by every program (core/log.c) */
	"FLOWPIC_CAPTURE_NO_TCX", /* bpf/capture.c: skip tcx links (tests) */
	"FLOWPIC_CNN_REF",	  /* core/cnn.c: the reference kernels */
	"FLOWPIC_BUILD_DIR",	  /* scripts/build.sh */
	"FLOWPIC_DATA_DIR",	  /* tests: the shared captures */
	"FLOWPIC_PYTHON",	  /* scripts: which python3 */
	"FLOWPIC_REQUET",	  /* bench/: the Requet captures */
	"FLOWPIC_LIMITS_REPORT",  /* tests/collector/test_limits.py */
	"FLOWPIC_STYLE_BASE",	  /* scripts/style-check.sh */
	NULL
};

bool conffile_name_eq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++) {
		char x = *a == '_' ? '-' : *a, y = *b == '_' ? '-' : *b;

		if (x != y)
			return false;
	}
	return *a == *b;
}

int conffile_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcasecmp(v, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcasecmp(v, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

static void reportf(const struct conffile_ops *ops, void *ctx, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void reportf(const struct conffile_ops *ops, void *ctx, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	ops->report(ctx, line);
}

/* Strip blanks at both ends, in place. */
static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		e--;
	*e = '\0';
	return s;
}

/* The keys already set by the file, with their lines (each key once). */
struct seen {
	const char **name;
	unsigned *line;
	size_t n, cap;
};

static unsigned seen_at(const struct seen *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (s->name[i] == name)
			return s->line[i];
	return 0;
}

static int seen_add(struct seen *s, const char *name, unsigned line)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 32;
		const char **nn = realloc(s->name, cap * sizeof(*nn));
		unsigned *nl;

		if (!nn)
			return -ENOMEM;
		s->name = nn;
		nl = realloc(s->line, cap * sizeof(*nl));
		if (!nl)
			return -ENOMEM;
		s->line = nl;
		s->cap = cap;
	}
	s->name[s->n] = name;
	s->line[s->n++] = line;
	return 0;
}

/* One line: 0 fine (or blank), -EINVAL bad (reported). */
static int load_line(const char *path, unsigned lineno, char *line, struct seen *seen,
		     const struct conffile_ops *ops, void *ctx)
{
	char *key, *val, *eq, err[512], where[512];
	const char *name;
	size_t n;

	key = trim(line);
	if (*key == '\0' || *key == '#')
		return 0;
	eq = strchr(key, '=');
	if (!eq) {
		reportf(ops, ctx, "%s:%u: expected 'key = value', got '%.60s'", path, lineno, key);
		return -EINVAL;
	}
	*eq = '\0';
	key = trim(key);
	val = trim(eq + 1);
	if (*key == '\0') {
		reportf(ops, ctx, "%s:%u: no key before '='", path, lineno);
		return -EINVAL;
	}
	name = ops->lookup(ctx, key);
	if (!name) {
		reportf(ops, ctx,
			"%s:%u: unknown key '%.60s' (keys are the long flags of "
			"%s --help)",
			path, lineno, key, ops->prog);
		return -EINVAL;
	}
	n = strlen(val);
	if (n >= 2 && val[0] == '"' && val[n - 1] == '"') {
		val[n - 1] = '\0';
		val++;
	} else if (val[0] == '"') {
		reportf(ops, ctx, "%s:%u: %s: unterminated quote", path, lineno, name);
		return -EINVAL;
	}
	if (*val == '\0') {
		reportf(ops, ctx, "%s:%u: %s: no value after '='", path, lineno, name);
		return -EINVAL;
	}
	if (seen_at(seen, name)) {
		reportf(ops, ctx, "%s:%u: %s is already set on line %u", path, lineno, name,
			seen_at(seen, name));
		return -EINVAL;
	}
	snprintf(where, sizeof(where), "%s:%u", path, lineno);
	if (ops->set(ctx, name, val, where, err, sizeof(err)) < 0) {
		reportf(ops, ctx, "%s:%u: %s", path, lineno, err);
		return -EINVAL;
	}
	if (seen_add(seen, name, lineno) < 0) {
		reportf(ops, ctx, "%s:%u: out of memory", path, lineno);
		return -EINVAL;
	}
	return 0;
}

int conffile_load(const char *path, const struct conffile_ops *ops, void *ctx)
{
	struct seen seen = { 0 };
	unsigned lineno = 0;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int bad = 0;
	FILE *f;

	f = fopen(path, "r");
	if (!f) {
		int e = errno;

		reportf(ops, ctx, "%s: cannot read the config file: %s", path, strerror(e));
		return -e;
	}
	while ((len = getline(&line, &cap, f)) >= 0) {
		lineno++;
		if ((size_t)len != strlen(line)) {
			reportf(ops, ctx, "%s:%u: NUL byte in the line", path, lineno);
			bad++;
			continue;
		}
		if (load_line(path, lineno, line, &seen, ops, ctx) < 0)
			bad++;
	}
	if (ferror(f)) {
		int e = errno ? errno : EIO;

		reportf(ops, ctx, "%s:%u: read error: %s", path, lineno + 1, strerror(e));
		bad = -e;
	}
	free(line);
	free(seen.name);
	free(seen.line);
	fclose(f);
	return bad;
}

static bool env_known(const char *var, size_t len)
{
	const char *const *k;

	for (k = conffile_env_known; *k; k++)
		if (strlen(*k) == len && !memcmp(*k, var, len))
			return true;
	return false;
}

int conffile_env(char **envp, const struct conffile_ops *ops, void *ctx)
{
	char key[128], err[512], where[160];
	int bad = 0;

	for (; envp && *envp; envp++) {
		const char *var = *envp, *eq = strchr(var, '='), *name;
		size_t len, i;

		if (strncmp(var, "FLOWPIC_", 8) || !eq)
			continue;
		len = (size_t)(eq - var);
		if (len - 8 >= sizeof(key)) {
			log_warn("environment variable %.60s...: no setting of %s (ignored)", var,
				 ops->prog);
			continue;
		}
		for (i = 8; i < len; i++)
			key[i - 8] = var[i] == '_' ? '-' : (char)tolower((unsigned char)var[i]);
		key[len - 8] = '\0';
		name = len > 8 ? ops->lookup(ctx, key) : NULL;
		if (!name) {
			if (!env_known(var, len))
				log_warn("environment variable %.*s: no setting of %s (ignored; "
					 "FLOWPIC_<KEY> with KEY a long flag of %s --help)",
					 (int)(len < 100 ? len : 100), var, ops->prog, ops->prog);
			continue;
		}
		if (!eq[1])
			continue; /* empty: unset */
		snprintf(where, sizeof(where), "%.*s", (int)len, var);
		if (ops->set(ctx, name, eq + 1, where, err, sizeof(err)) < 0) {
			reportf(ops, ctx, "%.*s: %s", (int)len, var, err);
			bad++;
		}
	}
	return bad;
}
