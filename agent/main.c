// SPDX-License-Identifier: MIT
/*
 * main.c - flowpic-agent: settings (flags over a config file), the model,
 * the signalfd and where the counters go; then live capture (live.c) or
 * replay (replay.c), which run with the helpers of run.c.
 */
#include <argp.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "caps.h"
#include "core/classify.h"
#include "config.h"
#include "core/log.h"
#include "metrics.h"
#include "run.h"

#ifndef FLOWPIC_VERSION
#define FLOWPIC_VERSION "0"
#endif

/* Flags that are not settings. */
enum { OPT_CONFIG = 'c', OPT_QUIET = 'q', OPT_VERBOSE = 'v', OPT_PRINT_CONFIG = 0x200 };

/* A flag as given, applied after the config file so that flags win. */
struct given_flag {
	const struct config_setting *s;
	const char *arg;
};

struct args {
	const char *config_path;
	bool print_config;
	struct given_flag *flags;
	int nflags;
};

static const char doc[] =
	"Classify live traffic: eBPF (XDP ingress, TC egress) records packet sizes and times "
	"per 5-tuple; each flow's blocks become FlowPics that the int8 CNN classifies. Verdicts "
	"are JSON lines on stdout (the fields of `flowpic classify --json`): one per block and "
	"a combined one when the flow ends. --pcap replays a capture through the same path."
	"\v"
	"Every setting can also be written in a config file (-c FILE) as 'key = value', the "
	"key being the long flag name, or given as an environment variable FLOWPIC_<KEY> "
	"(upper case, '_' for '-'): defaults < file < environment < flags. SIGHUP opens "
	"the counters file again (after logrotate moved it). Counters, one JSON line "
	"{\"counters\":{...}}, go to stderr (or --counters-file) on SIGUSR1 and at exit. "
	"SIGINT/SIGTERM end every flow (their verdicts are printed, marked early when a block "
	"is partial), detach and exit 0. Live capture needs CAP_BPF, CAP_PERFMON and "
	"CAP_NET_ADMIN (root); all are dropped once attached, and the agent then runs as --user "
	"(default flowpic, else nobody): its --spool-dir must be that user's, mode 0700.\n\n"
	"Examples:\n"
	"  flowpic-agent --iface eth0\n"
	"  flowpic-agent --iface eth0,wlan0 --model lab.fpcnn > verdicts.jsonl\n"
	"  flowpic-agent --iface eth0 --collector fp.example:50051 --collector-ca ca.pem \\\n"
	"      --spool-dir /var/spool/flowpic\n"
	"  flowpic-agent --pcap capture.pcap.xz --flow-verdicts-only\n"
	"  flowpic-agent -c /etc/flowpic/agent.conf --counters-every 60\n"
	"  kill -USR1 $(pidof flowpic-agent)    # counters line now\n"
	"  flowpic-agent -c agent.conf --print-config   # the settings in effect\n\n"
	"Exit status: 0 done (end of the capture file, or SIGINT/SIGTERM); 1 the capture file "
	"could not be read at all, or a run-time failure; 2 bad flag, config file or "
	"combination; 3 the capture file was read only in part (what was read is reported); "
	"4 the model would not load; 5 live capture could not start (no such interface, kernel "
	"without BTF, ring buffers or XDP, attach refused); 6 missing capability (not root). "
	"See docs/agent.md.";

static error_t parse_opt(int key, char *arg, struct argp_state *state)
{
	struct args *a = state->input;
	const struct config_setting *s;

	switch (key) {
	case OPT_CONFIG:
		a->config_path = arg;
		return 0;
	case OPT_PRINT_CONFIG:
		a->print_config = true;
		return 0;
	case OPT_QUIET:
		a->flags[a->nflags++] = (struct given_flag){ config_find("log-level"), "error" };
		return 0;
	case OPT_VERBOSE:
		a->flags[a->nflags++] = (struct given_flag){ config_find("log-level"), "info" };
		return 0;
	case ARGP_KEY_ARG:
		argp_error(state, "unexpected argument '%s' (give a capture file with --pcap)",
			   arg);
		return 0;
	}
	s = config_find_key(key);
	if (!s)
		return ARGP_ERR_UNKNOWN;
	a->flags[a->nflags++] = (struct given_flag){ s, arg };
	return 0;
}

/* The argp option table from the settings table, plus the flags of main. */
static struct argp_option *build_options(void)
{
	static const struct argp_option extra[] = {
		{ NULL, 0, NULL, 0, "Input (one of):", 1 },
		{ NULL, 0, NULL, 0, "Model, flows and blocks:", 2 },
		{ NULL, 0, NULL, 0, "Live capture:", 3 },
		{ NULL, 0, NULL, 0, "Output:", 4 },
		{ "quiet", OPT_QUIET, NULL, 0, "Errors only on stderr (log-level = error)", 4 },
		{ "verbose", OPT_VERBOSE, NULL, 0, "Progress messages on stderr (log-level = info)",
		  4 },
		{ NULL, 0, NULL, 0, "Settings:", 5 },
		{ NULL, 0, NULL, 0,
		  "Verdict stream to a collector (optional; docs/stream.md):", 6 },
		{ "config", OPT_CONFIG, "FILE", 0,
		  "Read settings from FILE (key = value lines; "
		  "flags override it)",
		  5 },
		{ "print-config", OPT_PRINT_CONFIG, NULL, 0,
		  "Print the settings in effect as a "
		  "config file and exit",
		  5 },
	};
	size_t n = 0, i, nset = 0;
	struct argp_option *o;

	while (config_settings[nset].name)
		nset++;
	o = calloc(nset + sizeof(extra) / sizeof(extra[0]) + 1, sizeof(*o));
	if (!o)
		return NULL;
	for (i = 0; i < sizeof(extra) / sizeof(extra[0]); i++)
		o[n++] = extra[i];
	for (i = 0; i < nset; i++) {
		const struct config_setting *s = &config_settings[i];

		o[n++] = (struct argp_option){ s->name, s->key,
					       s->arg,	s->arg ? 0 : OPTION_ARG_OPTIONAL,
					       s->doc,	s->group };
		/* A switch takes an optional =false on the command line. */
		if (!s->arg)
			o[n - 1].arg = "BOOL";
	}
	return o;
}

static void report_line(void *ctx, const char *line)
{
	(void)ctx;
	log_error("%s", line);
}

/* Settings from defaults, the config file, then the flags.  AGENT_EXIT_OK or _USAGE. */
static int load_settings(int argc, char **argv, struct agent_config *cfg, struct args *a)
{
	struct argp_option *opts = build_options();
	struct argp argp = { opts, parse_opt, NULL, doc, NULL, NULL, NULL };
	char err[600];
	int i, bad = 0;

	a->flags = calloc((size_t)argc + 1, sizeof(*a->flags));
	if (!opts || !a->flags) {
		log_error("out of memory");
		free(opts);
		return AGENT_EXIT_FAILURE;
	}
	argp_program_version = "flowpic-agent " FLOWPIC_VERSION;
	argp_err_exit_status = AGENT_EXIT_USAGE;
	if (argp_parse(&argp, argc, argv, 0, NULL, a)) {
		free(opts);
		return AGENT_EXIT_USAGE;
	}
	free(opts);
	config_default(cfg);
	if (a->config_path) {
		int rc = config_load(cfg, a->config_path, report_line, NULL);

		if (rc < 0)
			return AGENT_EXIT_USAGE;
		bad += rc;
	}
	/* FLOWPIC_<KEY> variables: over the file, under the flags. */
	bad += config_env(cfg, environ, report_line, NULL);
	for (i = 0; i < a->nflags; i++) {
		if (config_set(cfg, a->flags[i].s, a->flags[i].arg, err, sizeof(err)) < 0) {
			log_error("--%s", err);
			bad++;
		}
	}
	if (bad)
		return AGENT_EXIT_USAGE;
	if (!a->print_config && config_check(cfg, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return AGENT_EXIT_USAGE;
	}
	return AGENT_EXIT_OK;
}

/* SIGINT, SIGTERM and SIGUSR1 arrive through a signalfd read by the loops.
 * The signalfd, or a negative errno. */
static int signals_setup(void)
{
	sigset_t set;
	int fd;

	signal(SIGPIPE, SIG_IGN); /* a closed stdout is counted (output_errors), not fatal */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return -errno;
	fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* SIGHUP: a thread of its own waits for it (blocked everywhere else) and
 * opens the counters file again by its name, in place of the old
 * descriptor (dup3), so the loops of run.c go on writing to the same FILE
 * and logrotate can move the file away. */
static pthread_t hup_thread;
static const char *hup_path;
static int hup_fd = -1;

static void *hup_main(void *arg)
{
	char err[256];
	sigset_t set;
	int sig, fd;

	(void)arg;
	/* Capabilities are per thread: this one needs none and must not keep
	 * any past the main thread's drop once attached.  As root, the switch
	 * to --user (glibc makes every thread change uid, which needs
	 * CAP_SETUID here too) clears the rest; the bounding set it keeps. */
	if (geteuid() == 0) {
		int v;

		for (v = 0; v <= CAP_LAST_CAP; v++)
			prctl(PR_CAPBSET_DROP, v, 0, 0, 0);
	} else if (caps_drop_all(false, NULL, err, sizeof(err)) < 0) {
		log_warn("SIGHUP thread: %s", err);
	}
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	for (;;) {
		if (sigwait(&set, &sig))
			continue;
		if (hup_fd < 0) {
			log_info("SIGHUP: nothing to reopen (the counters go to stderr)");
			continue;
		}
		fd = open(hup_path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640);
		if (fd < 0 || dup3(fd, hup_fd, O_CLOEXEC) < 0)
			log_error("SIGHUP: %s: cannot open the counters file again: %s; still "
				  "writing to the old one",
				  hup_path, strerror(errno));
		else
			log_info("SIGHUP: %s opened again", hup_path);
		if (fd >= 0)
			close(fd);
	}
	return NULL;
}

/* Block SIGHUP (threads made later inherit it) and start its thread. */
static int hup_start(const struct agent_config *cfg, FILE *counters)
{
	sigset_t set;
	int rc;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL))
		return -EINVAL;
	hup_path = cfg->counters_file;
	hup_fd = cfg->counters_file[0] ? fileno(counters) : -1;
	rc = pthread_create(&hup_thread, NULL, hup_main, NULL);
	if (rc) {
		log_warn("SIGHUP will not reopen the counters file: %s", strerror(rc));
		return -rc;
	}
	return 0;
}

static void hup_stop(void)
{
	pthread_cancel(hup_thread);
	pthread_join(hup_thread, NULL);
}

static const enum log_level levels[] = { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

int main(int argc, char **argv)
{
	struct classifier_config ccfg;
	struct agent_config cfg;
	struct args args = { 0 };
	struct classifier *cls = NULL;
	struct run r = { .sigfd = -1 };
	bool hup_started = false;
	char err[600];
	int status;

	log_init("flowpic-agent", LOG_WARN);
	config_default(&cfg);
	/* The settings' errors come out in the log format they ask for. */
	log_hold();
	status = load_settings(argc, argv, &cfg, &args);
	free(args.flags);
	log_set_format((enum log_format)cfg.log_format);
	log_release();
	if (status)
		return status;
	if (args.print_config) {
		config_print(stdout, &cfg);
		return AGENT_EXIT_OK;
	}
	log_set_level(levels[cfg.verbosity + 1]);
	r.cfg = &cfg;
	r.counters_out = stderr;
	if (cfg.counters_file[0]) {
		/* Opened as root: a symbolic link planted in its place would make
		 * the agent append to (or create) any file it points to. */
		int fd = open(cfg.counters_file,
			      O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640);

		r.counters_out = fd >= 0 ? fdopen(fd, "a") : NULL;
		if (!r.counters_out) {
			int e = errno;

			if (fd >= 0)
				close(fd);
			if (e == ELOOP)
				log_error("%s: the counters file is a symbolic link; refusing to "
					  "follow it: give the real file as --counters-file",
					  cfg.counters_file);
			else
				log_error("%s: cannot open the counters file: %s; give a writable "
					  "--counters-file",
					  cfg.counters_file, strerror(e));
			return AGENT_EXIT_USAGE;
		}
		setvbuf(r.counters_out, NULL, _IOLBF, 0);
	}
	r.sigfd = signals_setup();
	if (r.sigfd < 0) {
		log_error("cannot set up signal handling: %s", strerror(-r.sigfd));
		status = AGENT_EXIT_FAILURE;
		goto out_counters;
	}
	hup_started = hup_start(&cfg, r.counters_out) == 0;
	r.next_counters_ns = run_mono_ns() + cfg.counters_every_ns;

	classifier_config_default(&ccfg);
	ccfg.model_path = cfg.model[0] ? cfg.model : NULL;
	if (cfg.vote_ratio >= 0)
		ccfg.vote_ratio = cfg.vote_ratio;
	if (cfg.min_confidence >= 0)
		ccfg.min_confidence = cfg.min_confidence;
	if (cfg.min_block_packets >= 0)
		ccfg.min_block_packets = (uint32_t)cfg.min_block_packets;
	if (cfg.reject_prob >= 0)
		ccfg.reject_prob = cfg.reject_prob;
	if (!isnan(cfg.reject_energy))
		ccfg.reject_energy = cfg.reject_energy;
	ccfg.weight_packets = cfg.weight_packets;
	cls = classifier_new(&ccfg, err, sizeof(err));
	if (!cls) {
		log_error("%s: give --model a flowpic model file (.fpcnn, docs/model-format.md), "
			  "or leave --model out for the built-in model",
			  err);
		status = AGENT_EXIT_MODEL;
		goto out_sig;
	}
	log_info("model %s: %s %s, %u classes, %ux%u, window %.3f s", classifier_model_source(cls),
		 classifier_model(cls)->name, classifier_model(cls)->version,
		 classifier_model(cls)->n_classes, classifier_model(cls)->res,
		 classifier_model(cls)->res, (double)classifier_model(cls)->window_ns / 1e9);
	/* Bound now, served from the run's start (run_stream_start()). */
	if (cfg.metrics_listen[0]) {
		if (agent_metrics_listen(cfg.metrics_listen, err, sizeof(err)) < 0) {
			log_error("%s", err);
			status = AGENT_EXIT_USAGE;
			goto out_cls;
		}
		log_info("metrics on http://%s/metrics", agent_metrics_address());
	}
	if (agent_init(&r.agent, &cfg, cls, stdout, err, sizeof(err)) < 0) {
		log_error("%s", err);
		status = AGENT_EXIT_USAGE;
		goto out_cls;
	}
	status = cfg.n_ifaces ? live_run(&r) : replay_run(&r);
	if (run_stream_close(&r) && status == AGENT_EXIT_OK)
		status = AGENT_EXIT_FAILURE;
	/* The last counters: after every flow ended, so they add up.  A run
	 * that never started has nothing to count: its error line says it all. */
	if (r.started)
		run_counters_dump(&r);
	agent_fini(&r.agent);
out_cls:
	agent_metrics_stop();
	classifier_free(cls);
out_sig:
	if (hup_started)
		hup_stop();
	close(r.sigfd);
out_counters:
	if (r.counters_out != stderr)
		fclose(r.counters_out);
	return status;
}
