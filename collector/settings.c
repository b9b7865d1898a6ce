// SPDX-License-Identifier: MIT
/* settings.c - config file and environment as argp arguments; see settings.h. */
#include "settings.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/conffile.h"
#include "core/log.h"

static int nopts(const struct argp_option *o)
{
	int n = 0;

	while (o[n].name || o[n].key || o[n].doc)
		n++;
	return n;
}

static int index_of_key(const struct settings *s, int key)
{
	int i;

	for (i = 0; i < s->nopts; i++)
		if (s->opts[i].name && s->opts[i].key == key)
			return i;
	return -1;
}

/* ---- reading ---- */

struct read_ctx {
	struct settings *s;
	const char *const *skip;
};

static bool skipped(const char *const *skip, const char *name)
{
	for (; skip && *skip; skip++)
		if (!strcmp(*skip, name))
			return true;
	return false;
}

static int index_of_name(const struct read_ctx *r, const char *name)
{
	int i;

	for (i = 0; i < r->s->nopts; i++)
		if (r->s->opts[i].name && !(r->s->opts[i].flags & OPTION_DOC) &&
		    !skipped(r->skip, r->s->opts[i].name) &&
		    conffile_name_eq(r->s->opts[i].name, name))
			return i;
	return -1;
}

static const char *lookup_cb(void *ctx, const char *key)
{
	int i = index_of_name(ctx, key);

	return i < 0 ? NULL : ((struct read_ctx *)ctx)->s->opts[i].name;
}

static int push(struct settings *s, char *arg, const char *origin)
{
	char *o = strdup(origin);

	if (!arg || !o)
		goto nomem;
	if (s->n == s->cap) {
		int cap = s->cap ? 2 * s->cap : 16;
		char **na = realloc(s->args, (size_t)cap * sizeof(*na)), **no;

		if (!na)
			goto nomem;
		s->args = na;
		no = realloc(s->origins, (size_t)cap * sizeof(*no));
		if (!no)
			goto nomem;
		s->origins = no;
		s->cap = cap;
	}
	s->args[s->n] = arg;
	s->origins[s->n++] = o;
	return 0;
nomem:
	free(arg);
	free(o);
	return -ENOMEM;
}

static int set_cb(void *ctx, const char *name, const char *value, const char *where, char *err,
		  size_t errlen)
{
	struct read_ctx *r = ctx;
	struct settings *s = r->s;
	int i = index_of_name(r, name);
	char *arg;
	bool b;

	if (!s->opts[i].arg) { /* a switch: the last word wins, applied after */
		if (conffile_bool(value, &b) < 0)
			return log_errbuf_ret(-EINVAL, err, errlen, "%s '%s': give true or false",
					      name, value);
		s->sw[i] = b;
		free(s->sworigin[i]);
		s->sworigin[i] = strdup(where);
		return 0;
	}
	if (asprintf(&arg, "--%s=%s", name, value) < 0)
		arg = NULL;
	if (push(s, arg, where) < 0)
		return log_errbuf_ret(-ENOMEM, err, errlen, "out of memory");
	return 0;
}

static void report_cb(void *ctx, const char *line)
{
	(void)ctx;
	log_error("%s", line);
}

int settings_read(struct settings *s, const struct argp_option *opts, const char *prog,
		  const char *path, const char *const *skip)
{
	struct read_ctx r = { s, skip };
	struct conffile_ops ops = { prog, lookup_cb, set_cb, report_cb };
	int bad = 0, rc, i;

	memset(s, 0, sizeof(*s));
	s->opts = opts;
	s->skip = skip;
	s->nopts = nopts(opts);
	s->values = calloc((size_t)s->nopts + 1, sizeof(*s->values));
	s->sw = malloc((size_t)s->nopts + 1);
	s->sworigin = calloc((size_t)s->nopts + 1, sizeof(*s->sworigin));
	if (!s->values || !s->sw || !s->sworigin) {
		log_error("out of memory");
		return -ENOMEM;
	}
	memset(s->sw, -1, (size_t)s->nopts + 1);
	if (path) {
		rc = conffile_load(path, &ops, &r);
		if (rc < 0)
			return rc;
		bad += rc;
	}
	bad += conffile_env(environ, &ops, &r);
	for (i = 0; i < s->nopts; i++) {
		char *arg;

		if (s->sw[i] != 1)
			continue;
		if (asprintf(&arg, "--%s", opts[i].name) < 0)
			arg = NULL;
		if (push(s, arg, s->sworigin[i]) < 0) {
			log_error("out of memory");
			return -ENOMEM;
		}
	}
	return bad;
}

char **settings_argv(const struct settings *s, int argc, char **argv, int *out_argc)
{
	char **v = calloc((size_t)(argc + s->n + 1), sizeof(*v));
	int i, n = 0;

	if (!v)
		return NULL;
	v[n++] = argv[0];
	for (i = 0; i < s->n; i++)
		v[n++] = s->args[i];
	for (i = 1; i < argc; i++)
		v[n++] = argv[i];
	*out_argc = n;
	return v;
}

/* ---- parsing through the program's parser ---- */

static struct {
	struct settings *s;
	argp_parser_t real;
	bool check, end_checks;
	FILE *err;
	char *errbuf;
	size_t errlen, seen;
	int errors;
} P;

/* Error text argp wrote since the last look: each "PROG: msg" line logged
 * with where the value came from ("Try ..." hints dropped). */
static void take_errors(const char *origin)
{
	char *line, *end, *msg;

	fflush(P.err);
	for (line = P.errbuf + P.seen; line < P.errbuf + P.errlen; line = end + 1) {
		end = memchr(line, '\n', (size_t)(P.errbuf + P.errlen - line));
		if (!end)
			end = P.errbuf + P.errlen;
		*end = '\0';
		msg = strstr(line, ": ");
		if (!strncmp(line, "Try `", 5) || !msg || memchr(line, ' ', (size_t)(msg - line)))
			continue;
		if (origin)
			log_error("%s: %s", origin, msg + 2);
		else
			log_error("%s", msg + 2);
		P.errors++;
	}
	P.seen = P.errlen;
}

static error_t wrap(int key, char *arg, struct argp_state *state)
{
	int idx = state->next - 1, i;
	error_t rc;

	if (key == ARGP_KEY_INIT && P.check)
		state->err_stream = P.err;
	if (key == ARGP_KEY_END && P.check && !P.end_checks)
		return 0;
	rc = P.real(key, arg, state);
	i = index_of_key(P.s, key);
	if (rc == 0 && i >= 0)
		P.s->values[i] = arg ? arg : "true";
	if (P.check)
		take_errors(key == ARGP_KEY_END	      ? NULL :
			    idx >= 1 && idx <= P.s->n ? P.s->origins[idx - 1] :
							"command line");
	return rc;
}

int settings_check(struct settings *s, const struct argp *argp, void *input, char **flags,
		   int nflags, bool end_checks)
{
	struct argp a = *argp;
	char **v, *argv0 = (char *)"flowpic-collector";
	int argc, i;

	v = calloc((size_t)(s->n + nflags + 2), sizeof(*v));
	if (!v) {
		log_error("out of memory");
		return 1;
	}
	v[0] = argv0;
	for (i = 0; i < s->n; i++)
		v[1 + i] = s->args[i];
	for (i = 0; i < nflags; i++)
		v[1 + s->n + i] = flags[i];
	argc = 1 + s->n + nflags;
	memset(&P, 0, sizeof(P));
	P.s = s;
	P.real = argp->parser;
	P.check = true;
	P.end_checks = end_checks;
	P.err = open_memstream(&P.errbuf, &P.errlen);
	if (!P.err) {
		free(v);
		log_error("out of memory");
		return 1;
	}
	a.parser = wrap;
	argp_parse(&a, argc, v, ARGP_NO_EXIT | ARGP_NO_HELP, NULL, input);
	fclose(P.err);
	free(P.errbuf);
	free(v);
	return P.errors;
}

error_t settings_parse(struct settings *s, const struct argp *argp, int argc, char **argv,
		       void *input)
{
	struct argp a = *argp;

	memset(&P, 0, sizeof(P));
	P.s = s;
	P.real = argp->parser;
	a.parser = wrap;
	return argp_parse(&a, argc, argv, 0, NULL, input);
}

void settings_print(const struct settings *s, FILE *out, const char *prog)
{
	int i;

	fprintf(out,
		"# %s settings given (file, environment, flags); the rest keep the "
		"defaults of --help\n",
		prog);
	for (i = 0; i < s->nopts; i++) {
		const char *v = s->values[i];

		if (!v || !s->opts[i].name || skipped(s->skip, s->opts[i].name))
			continue;
		if (!strcmp(s->opts[i].name, "token"))
			fputs("# token = (given; not shown)\n", out);
		else if (!s->opts[i].arg)
			fprintf(out, "%s = true\n", s->opts[i].name);
		else if (*v == ' ' || *v == '"' || (*v && v[strlen(v) - 1] == ' '))
			fprintf(out, "%s = \"%s\"\n", s->opts[i].name, v);
		else
			fprintf(out, "%s = %s\n", s->opts[i].name, v);
	}
}

int settings_diff(const struct settings *a, const struct settings *b, const char *const *reloadable,
		  char *out, size_t outlen)
{
	size_t len = 0;
	int i, n = 0;

	out[0] = '\0';
	for (i = 0; i < a->nopts && i < b->nopts; i++) {
		const char *x = a->values[i], *y = b->values[i];

		if (!a->opts[i].name || skipped(reloadable, a->opts[i].name))
			continue;
		if ((!x && !y) || (x && y && !strcmp(x, y)))
			continue;
		if (len < outlen)
			len += (size_t)snprintf(out + len, outlen - len, "%s%s", n ? ", " : "",
						a->opts[i].name);
		n++;
	}
	return n;
}

void settings_free(struct settings *s)
{
	int i;

	if (!s)
		return;
	settings_free(s->older);
	free(s->older);
	for (i = 0; i < s->n; i++) {
		free(s->args[i]);
		free(s->origins[i]);
	}
	for (i = 0; s->sworigin && i < s->nopts; i++)
		free(s->sworigin[i]);
	free(s->args);
	free(s->origins);
	free(s->values);
	free(s->sw);
	free(s->sworigin);
	memset(s, 0, sizeof(*s));
}
