/* SPDX-License-Identifier: MIT */
/*
 * config.h - every setting of flowpic-agent, settable the same way from the
 * command line (--name VALUE) and from a config file (name = value).
 *
 * One table of settings drives both: the flag parser and the file parser
 * call config_set() with the setting's long name and its text, so a value
 * means the same thing wherever it is written and is checked by the same
 * code.  Flags are applied after the file, so they override it.
 *
 * Config file format (docs/agent.md; the parser is core/conffile.c, shared
 * with flowpic-collector): one "key = value" per line; blank
 * lines and lines whose first non-blank character is '#' are ignored; keys
 * are the long flag names ('-' and '_' are the same); the value is the rest
 * of the line with surrounding blanks removed, optionally in double quotes;
 * switches take true/false, yes/no, on/off or 1/0.  A key may appear once.
 * Every bad line is reported as "FILE:LINE: what is wrong".
 */
#ifndef FLOWPIC_AGENT_CONFIG_H
#define FLOWPIC_AGENT_CONFIG_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define AGENT_MAX_IFACES 16
#define AGENT_PATH_MAX 4096

/* Per-packet records or per-flow batches from the BPF programs (bpf/capture.h). */
enum agent_design { AGENT_DESIGN_DEFAULT = 0, AGENT_DESIGN_RECORDS, AGENT_DESIGN_BATCHES };

struct agent_config {
	/* input: live interfaces or one capture file (exactly one of the two) */
	char ifaces[AGENT_MAX_IFACES][IF_NAMESIZE];
	unsigned n_ifaces;
	char pcap[AGENT_PATH_MAX];

	/* model ("" = the embedded default) and the flow verdict rule (< 0: default) */
	char model[AGENT_PATH_MAX];
	float vote_ratio;
	float min_confidence;
	int64_t min_block_packets; /* < 0: the classifier's default */
	float reject_prob;	   /* < 0: off */
	float reject_energy;	   /* NAN: off */
	bool weight_packets;	   /* a voting block counts its packets, not 1 */

	/* flow table (window and resolution come from the model) */
	uint64_t idle_timeout_ns;
	uint32_t max_flows;
	uint32_t max_cells;

	/* live capture */
	enum agent_design design;
	bool xdp_generic;      /* force generic (skb) XDP */
	uint32_t ring_bytes;   /* 0: the capture library's default */
	uint32_t bpf_flows;    /* 0: the capture library's default */
	uint64_t batch_age_ns; /* 0: the capture library's default */
	uint64_t sweep_ns;     /* deadline sweep period */
	uint64_t lag_ns;       /* how far behind the clock the sweep stays
					 * (only without the merge: it has a watermark) */
	uint32_t merge_max;    /* 0: the capture library's default */
	bool no_merge;	       /* ring order, not time order */
	bool keep_caps;	       /* do not drop capabilities after attaching */
	char user[64];	       /* run as this user once attached ("" = flowpic or nobody) */

	/* output */
	char counters_file[AGENT_PATH_MAX]; /* "" = stderr */
	char samples_out[AGENT_PATH_MAX];   /* "" = none; else a samples CSV of every packet */
	uint64_t counters_every_ns;	    /* 0: only on SIGUSR1 and at exit */
	char metrics_listen[256];	    /* GET /metrics on HOST:PORT ("" = off) */
	bool no_block_verdicts;		    /* print only flow verdicts */
	int verbosity;			    /* -1 quiet, 0 warnings, 1 info, 2 debug */
	int log_format;			    /* enum log_format (core/log.h) */

	/* verdict stream to a collector (stream/; "" = none) */
	char collector[256]; /* HOST:PORT */
	bool collector_tls;  /* implied by a CA, certificate or server name */
	char collector_ca[AGENT_PATH_MAX];
	char collector_cert[AGENT_PATH_MAX];
	char collector_key[AGENT_PATH_MAX];
	char collector_server_name[256];
	char collector_token_file[AGENT_PATH_MAX];
	char agent_id[128];		/* "" = the host name */
	char spool_dir[AGENT_PATH_MAX]; /* "" = no spool */
	uint64_t spool_max_bytes;	/* 0 = the stream's default (1 GiB) */
	uint64_t collector_wait_ns;	/* at exit: wait this long for acknowledgements */
	bool send_pictures;		/* block verdicts carry their picture (Verdict.cells) */

	/* which settings were given (flag or file), by table index */
	uint64_t given;
};

/* Kinds of values, for the parsers and for --help. */
enum config_kind {
	CK_STRING,
	CK_PATH,
	CK_IFACES,
	CK_SECONDS,
	CK_UINT,
	CK_BOOL,
	CK_DESIGN,
	CK_LEVEL,
	CK_FRACTION,
	CK_REAL,
	CK_LOG_FORMAT
};

/* Where a text setting is stored. */
struct config_text {
	const char *name;
	size_t offset;
	size_t size;
};

struct config_setting {
	const char *name; /* long flag and config key */
	int key;	  /* argp key (short option letter or a private number) */
	enum config_kind kind;
	const char *arg; /* argument name in --help, NULL for switches */
	const char *doc;
	int group; /* --help section */
};

/* The table, ending with a zeroed entry. */
extern const struct config_setting config_settings[];

void config_default(struct agent_config *c);

/* The setting named name ('-' or '_'), or NULL. */
const struct config_setting *config_find(const char *name);
const struct config_setting *config_find_key(int key);

/*
 * Set one setting from text.  value may be NULL for a switch (= true).
 * 0, or -EINVAL with "what is wrong" in err (no file/flag prefix: the caller
 * adds where it came from).
 */
int config_set(struct agent_config *c, const struct config_setting *s, const char *value, char *err,
	       size_t errlen);

/*
 * Read a config file into c.  Each bad line is reported through report()
 * (one "FILE:LINE: what is wrong" line each) and the rest is still read.
 * Returns the number of bad lines, or a negative errno when the file cannot
 * be read (one line through report()).
 */
int config_load(struct agent_config *c, const char *path,
		void (*report)(void *ctx, const char *line), void *ctx);

/*
 * Apply the FLOWPIC_<KEY> variables of envp (core/conffile.h): after the
 * file, before the flags.  Returns the number of bad values, each reported
 * through report(); unknown FLOWPIC_ names get a warning line.
 */
int config_env(struct agent_config *c, char **envp, void (*report)(void *ctx, const char *line),
	       void *ctx);

/*
 * Check the settings together (after file and flags).  0, or -EINVAL with
 * one line in err.
 */
int config_check(const struct agent_config *c, char *err, size_t errlen);

/* Write the effective settings as a config file (--print-config). */
void config_print(FILE *out, const struct agent_config *c);

#endif
