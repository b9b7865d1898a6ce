/* SPDX-License-Identifier: MIT */
/*
 * settings.h - flowpic-collector's settings from a config file (-c FILE)
 * and FLOWPIC_<KEY> environment variables (core/conffile.h), fed to its
 * argp parser as "--key=value" arguments placed before the command line's:
 * one parser checks every value, and later arguments win, so the
 * precedence is defaults < file < environment < flags.
 */
#ifndef FLOWPIC_COLLECTOR_SETTINGS_H
#define FLOWPIC_COLLECTOR_SETTINGS_H

#include <argp.h>
#include <stdbool.h>
#include <stdio.h>

struct settings {
	const struct argp_option *opts; /* the program's option table */
	int nopts;
	char **args;	/* "--key=value" from the file and the environment */
	char **origins; /* "FILE:LINE" or "FLOWPIC_KEY", per args[] */
	int n, cap;
	char **values;	 /* per option: the value the last parse gave it, or NULL */
	signed char *sw; /* per switch option: -1 not set, 0 false, 1 true */
	char **sworigin;
	struct settings *older;	 /* kept while options may point into them */
	const char *const *skip; /* option names that are not keys */
};

/* Read path (NULL: none) and the environment into s.  The number of bad
 * lines or variables (each logged), or a negative errno when the file
 * cannot be read (logged).  Keys are opts' long names but skip[]. */
int settings_read(struct settings *s, const struct argp_option *opts, const char *prog,
		  const char *path, const char *const *skip);

/* argv[0], s's arguments, then argv[1..argc): a new array (free() it; the
 * strings stay s's and argv's). */
char **settings_argv(const struct settings *s, int argc, char **argv, int *out_argc);

/* Parse s's arguments (and flags[0..nflags)) with argp into input without
 * exiting on errors: each error logged once with where its value came
 * from.  end_checks: also run the parser's ARGP_KEY_END checks (off when
 * the command line is not there yet).  The number of errors. */
int settings_check(struct settings *s, const struct argp *argp, void *input, char **flags,
		   int nflags, bool end_checks);

/* argp_parse() of argv into input as usual (exits on errors and --help),
 * recording each option's value in s->values. */
error_t settings_parse(struct settings *s, const struct argp *argp, int argc, char **argv,
		       void *input);

/* The values of the last parse as a config file (--print-config). */
void settings_print(const struct settings *s, FILE *out, const char *prog);

/* The options whose values differ between a and b, but reloadable[], as
 * "name, name" into out; 0 when none. */
int settings_diff(const struct settings *a, const struct settings *b, const char *const *reloadable,
		  char *out, size_t outlen);

void settings_free(struct settings *s);

#endif
