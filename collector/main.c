// SPDX-License-Identifier: MIT
/*
 * main.c - `flowpic-collector [OPTION...]` serves the verdict stream;
 * `flowpic-collector query ...` reads what was stored.
 */
#include <argp.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "health.h"
#include "identity.h"
#include "core/log.h"
#include "core/number.h"
#include "publish.h"
#include "query.h"
#include "reload.h"
#include "server.h"
#include "settings.h"
#include "store.h"
#include "web/web.h"
#include "rpc/tls.h"
#include "rpc/token.h"

const char *argp_program_version = "flowpic-collector " FLOWPIC_VERSION;

enum {
	OPT_TLS_CERT = 1000,
	OPT_TLS_KEY,
	OPT_CLIENT_CA,
	OPT_TOKEN,
	OPT_TOKEN_FILE,
	OPT_MAX_MESSAGE,
	OPT_MAX_STREAMS,
	OPT_MAX_CONNECTIONS,
	OPT_MAX_PENDING_ACKS,
	OPT_IDLE_TIMEOUT,
	OPT_SLOW_TIMEOUT,
	OPT_HANDSHAKE_TIMEOUT,
	OPT_COMMIT_MAX,
	OPT_COMMIT_DELAY,
	OPT_SQLITE_SYNC,
	OPT_RETENTION_DAYS,
	OPT_INSECURE_NO_TOKEN,
	OPT_BUSY_TIMEOUT,
	OPT_AGENT_ID_FROM_CERT,
	OPT_MAX_PER_SOURCE,
	OPT_MAX_BUFFERED,
	OPT_MESSAGE_TIMEOUT,
	OPT_METRICS_LISTEN,
	OPT_NATS,
	OPT_NATS_STREAM,
	OPT_NATS_REPLICAS,
	OPT_NATS_CREDS,
	OPT_NATS_CA,
	OPT_NATS_CERT,
	OPT_NATS_KEY,
	OPT_NATS_BACKLOG,
	OPT_WEB_LISTEN,
	OPT_WEB_TOKEN_FILE,
	OPT_WEB_ROOT,
	OPT_WEB_UPLOAD_MAX,
};

/* Settings of the config file and the log (not options of the server). */
enum { OPT_CONFIG = 'c', OPT_PRINT_CONFIG = 2000, OPT_LOG_LEVEL, OPT_LOG_FORMAT };

struct serve_opts {
	struct server_config srv;
	struct store_options store;
	const char *db;
	struct publish_config nats; /* nats.servers NULL: not publishing */
	struct web_config web;	    /* web.listen NULL: no dashboard */
	const char *cert, *key, *client_ca;
	char token[RPC_TOKEN_MAX + 1];
	const char *token_file;
	struct token_map *tokens; /* --token-file, loaded after the options */
	bool have_token, no_token;
	bool verbose, quiet;
	int log_level, log_format; /* -1: not given */
	const char *config_path;
	bool print_config;
};

static const struct argp_option serve_options[] = {
	{ "listen", 'l', "ADDR", 0,
	  "HOST:PORT, [IPV6]:PORT or :PORT (default 127.0.0.1:50051; port 0 = any)", 0 },
	{ "db", 'd', "URL", 0,
	  "sqlite:PATH (default " STORE_DEFAULT_URL "), postgresql://USER@HOST/DB, or none "
	  "(with --nats: store nothing, only publish)",
	  0 },
	{ 0, 0, 0, 0,
	  "TLS (without --tls-cert the server speaks cleartext h2c, for local use):", 1 },
	{ "tls-cert", OPT_TLS_CERT, "PEM", 0, "server certificate chain", 1 },
	{ "tls-key", OPT_TLS_KEY, "PEM", 0, "its private key", 1 },
	{ "client-ca", OPT_CLIENT_CA, "PEM", 0,
	  "mutual TLS: agents must show a certificate signed by this CA", 1 },
	{ 0, 0, 0, 0, "Access token (agents send authorization: Bearer TOKEN):", 2 },
	{ "token", OPT_TOKEN, "TOKEN", 0, "the token (visible in ps: prefer --token-file)", 2 },
	{ "token-file", OPT_TOKEN_FILE, "FILE", 0,
	  "tokens, one per line: TOKEN (any agent) or TOKEN AGENT_ID (only that agent_id)", 2 },
	{ "agent-id-from-cert", OPT_AGENT_ID_FROM_CERT, 0, 0,
	  "with --client-ca: a batch's agent_id must be the client certificate's CN", 2 },
	{ "no-token", OPT_INSECURE_NO_TOKEN, 0, 0,
	  "accept agents without a token (say so explicitly)", 2 },
	{ 0, 0, 0, 0, "Limits:", 3 },
	{ "max-message", OPT_MAX_MESSAGE, "BYTES", 0, "largest gRPC message (default 4194304)", 3 },
	{ "max-streams", OPT_MAX_STREAMS, "N", 0, "concurrent calls per connection (default 16)",
	  3 },
	{ "max-connections", OPT_MAX_CONNECTIONS, "N", 0,
	  "connections at once (default 1024; lowered to fit the fd limit)", 3 },
	{ "max-per-source", OPT_MAX_PER_SOURCE, "N", 0,
	  "connections at once from one address, IPv6: one /64 (default 64)", 3 },
	{ "max-buffered", OPT_MAX_BUFFERED, "BYTES", 0,
	  "partial messages buffered, all calls together (default 268435456)", 3 },
	{ "message-timeout", OPT_MESSAGE_TIMEOUT, "SECONDS", 0,
	  "a message begun must arrive whole within this (default 30)", 3 },
	{ "max-pending-acks", OPT_MAX_PENDING_ACKS, "N", 0,
	  "acks a connection may leave unread before its HTTP/2 window is held back (default 4096)",
	  3 },
	{ "idle-timeout", OPT_IDLE_TIMEOUT, "SECONDS", 0,
	  "close a connection without call traffic this long; PINGs do not count (default 600)",
	  3 },
	{ "slow-timeout", OPT_SLOW_TIMEOUT, "SECONDS", 0,
	  "close a client not reading its acks this long (default 30)", 3 },
	{ "handshake-timeout", OPT_HANDSHAKE_TIMEOUT, "SECONDS", 0,
	  "TLS handshake, HTTP/2 preface and, with a token, the first call with it (default 10)",
	  3 },
	{ 0, 0, 0, 0, "Storage:", 4 },
	{ "commit-max", OPT_COMMIT_MAX, "N", 0, "verdicts per transaction at most (default 20000)",
	  4 },
	{ "commit-delay", OPT_COMMIT_DELAY, "SECONDS", 0,
	  "a transaction stays open at most this long (default 0.05)", 4 },
	{ "sqlite-sync", OPT_SQLITE_SYNC, "full|normal", 0,
	  "full (default): each commit is fsync'ed before its acks; normal: safe against a collector crash, not a power cut",
	  4 },
	{ "retention-days", OPT_RETENTION_DAYS, "DAYS", 0,
	  "drop verdicts of blocks older than DAYS days (PostgreSQL: whole daily partitions; "
	  "checked at start and hourly; default: keep everything)",
	  4 },
	{ "busy-timeout", OPT_BUSY_TIMEOUT, "SECONDS", 0,
	  "SQLite locked by another process: retry commits this long before failing them (default 5)",
	  4 },
	{ 0, 0, 0, 0, "Publishing to NATS JetStream (default off; docs/collector.md):", 5 },
	{ "nats", OPT_NATS, "URL[,URL...]", 0,
	  "publish every stored verdict to JetStream (subject flowpic.v1.verdicts.<agent_id>); "
	  "a batch is acked once JetStream acknowledged all of its verdicts",
	  5 },
	{ "nats-stream", OPT_NATS_STREAM, "NAME", 0,
	  "the stream (default " PUBLISH_STREAM_DEFAULT "; created if missing)", 5 },
	{ "nats-replicas", OPT_NATS_REPLICAS, "N", 0, "replicas of a stream we create (default 1)",
	  5 },
	{ "nats-creds", OPT_NATS_CREDS, "FILE", 0, "NATS user credentials (JWT and NKey seed)", 5 },
	{ "nats-ca", OPT_NATS_CA, "FILE", 0,
	  "TLS to NATS: CA certificate(s) that sign the servers' (a tls:// URL without it: the "
	  "system's)",
	  5 },
	{ "nats-cert", OPT_NATS_CERT, "FILE", 0,
	  "TLS client certificate for NATS (with --nats-key)", 5 },
	{ "nats-key", OPT_NATS_KEY, "FILE", 0, "the key of --nats-cert", 5 },
	{ "nats-backlog", OPT_NATS_BACKLOG, "N", 0,
	  "verdicts published and not yet acknowledged, at most; beyond it batches end "
	  "UNAVAILABLE (default 100000)",
	  5 },
	{ 0, 0, 0, 0, "Output:", 6 },
	{ "metrics-listen", OPT_METRICS_LISTEN, "ADDR", 0,
	  "serve Prometheus metrics on GET /metrics at HOST:PORT (:PORT = 127.0.0.1; default off; "
	  "docs/deploy.md)",
	  6 },
	{ "verbose", 'v', 0, 0, "log connections too (info; --log-level debug for more)", 6 },
	{ "quiet", 'q', 0, 0, "log errors only", 6 },
	{ "log-level", OPT_LOG_LEVEL, "LEVEL", 0,
	  "error, warn (default), info or debug (-q is error, -v info)", 6 },
	{ "log-format", OPT_LOG_FORMAT, "text|json", 0,
	  "stderr lines as text (default) or JSON objects with a timestamp", 6 },
	{ 0, 0, 0, 0, "Web dashboard (default off; docs/dashboard.md):", 7 },
	{ "web-listen", OPT_WEB_LISTEN, "ADDR", 0,
	  "serve the dashboard at HOST:PORT (:PORT = 127.0.0.1), HTTP/1.1 and h2; "
	  "HTTPS with --tls-cert",
	  7 },
	{ "web-token-file", OPT_WEB_TOKEN_FILE, "FILE", 0,
	  "viewer tokens, one per line: TOKEN [NAME] (with --client-ca a client certificate "
	  "logs in too)",
	  7 },
	{ "web-root", OPT_WEB_ROOT, "DIR", 0,
	  "the pages (default: the source tree's collector/web/static, else " WEB_ROOT_INSTALLED
	  ")",
	  7 },
	{ "web-upload-max", OPT_WEB_UPLOAD_MAX, "BYTES", 0,
	  "largest capture to classify by upload (default 67108864)", 7 },
	{ 0, 0, 0, 0,
	  "Settings (every option above can be a line 'key = value' of the config file, or "
	  "FLOWPIC_<KEY> in the environment: defaults < file < environment < flags):",
	  8 },
	{ "config", OPT_CONFIG, "FILE", 0, "read settings from FILE", 8 },
	{ "print-config", OPT_PRINT_CONFIG, 0, 0,
	  "print the settings given (file, environment, flags) as a config file and exit", 8 },
	{ 0 }
};

/* Not keys of the config file. */
static const char *const not_keys[] = { "config", "print-config", NULL };

static int num(struct argp_state *state, const char *opt, const char *arg, uint64_t min,
	       uint64_t max, uint64_t *out)
{
	if (number_parse_u64(arg, min, max, out))
		argp_error(state, "%s '%s': give a whole number from %llu to %llu", opt, arg,
			   (unsigned long long)min, (unsigned long long)max);
	return 0;
}

static uint64_t secs_ms(struct argp_state *state, const char *opt, const char *arg)
{
	uint64_t ns;

	if (number_parse_seconds(arg, &ns) || ns < 1000000 || ns > 86400ull * 1000000000)
		argp_error(state, "%s '%s': give seconds from 0.001 to 86400", opt, arg);
	return ns / 1000000;
}

static error_t serve_parse(int key, char *arg, struct argp_state *state)
{
	struct serve_opts *o = state->input;
	uint64_t v;

	switch (key) {
	case 'l':
		o->srv.listen = arg;
		break;
	case 'd':
		o->db = arg;
		break;
	case OPT_METRICS_LISTEN:
		o->srv.metrics_listen = arg;
		break;
	case OPT_NATS:
		o->nats.servers = arg;
		break;
	case OPT_NATS_STREAM:
		o->nats.stream = arg;
		break;
	case OPT_NATS_REPLICAS:
		num(state, "--nats-replicas", arg, 1, 5, &v);
		o->nats.replicas = (int)v;
		break;
	case OPT_WEB_LISTEN:
		o->web.listen = arg;
		break;
	case OPT_WEB_TOKEN_FILE:
		o->web.token_file = arg;
		break;
	case OPT_WEB_ROOT:
		o->web.root = arg;
		break;
	case OPT_WEB_UPLOAD_MAX:
		num(state, "--web-upload-max", arg, 1, 1ull << 40, &o->web.upload_max);
		break;
	case OPT_NATS_CREDS:
		o->nats.creds = arg;
		break;
	case OPT_NATS_CA:
		o->nats.ca = arg;
		break;
	case OPT_NATS_CERT:
		o->nats.cert = arg;
		break;
	case OPT_NATS_KEY:
		o->nats.key = arg;
		break;
	case OPT_NATS_BACKLOG:
		num(state, "--nats-backlog", arg, 1, 100000000, &v);
		o->nats.backlog_max = v;
		break;
	case OPT_TLS_CERT:
		o->cert = arg;
		break;
	case OPT_TLS_KEY:
		o->key = arg;
		break;
	case OPT_CLIENT_CA:
		o->client_ca = arg;
		break;
	case OPT_TOKEN:
		if (!rpc_token_valid(arg))
			argp_error(state, "--token: 1 to %d visible ASCII characters, no spaces",
				   RPC_TOKEN_MAX);
		snprintf(o->token, sizeof(o->token), "%s", arg);
		o->have_token = true;
		break;
	case OPT_TOKEN_FILE:
		o->token_file = arg; /* read once every option is known (and on SIGHUP) */
		o->have_token = true;
		break;
	case OPT_CONFIG:
		o->config_path = arg;
		break;
	case OPT_PRINT_CONFIG:
		o->print_config = true;
		break;
	case OPT_LOG_LEVEL: {
		enum log_level l;

		if (log_parse_level(arg, &l) < 0)
			argp_error(state, "--log-level '%s': give error, warn, info or debug", arg);
		o->log_level = (int)l;
		break;
	}
	case OPT_LOG_FORMAT: {
		enum log_format f;

		if (log_parse_format(arg, &f) < 0)
			argp_error(state, "--log-format '%s': give text or json", arg);
		o->log_format = (int)f;
		break;
	}
	case OPT_AGENT_ID_FROM_CERT:
		o->srv.agent_id_from_cert = true;
		break;
	case OPT_BUSY_TIMEOUT:
		o->store.busy_timeout_ms = (int)secs_ms(state, "--busy-timeout", arg);
		break;
	case OPT_INSECURE_NO_TOKEN:
		o->no_token = true;
		break;
	case OPT_MAX_MESSAGE:
		num(state, "--max-message", arg, 64, 1u << 30, &v);
		o->srv.max_message = (uint32_t)v;
		break;
	case OPT_MAX_STREAMS:
		num(state, "--max-streams", arg, 1, 1000, &v);
		o->srv.max_streams = (uint32_t)v;
		break;
	case OPT_MAX_CONNECTIONS:
		num(state, "--max-connections", arg, 1, 100000, &v);
		o->srv.max_connections = (uint32_t)v;
		break;
	case OPT_MAX_PER_SOURCE:
		num(state, "--max-per-source", arg, 1, 100000, &v);
		o->srv.max_per_source = (uint32_t)v;
		break;
	case OPT_MAX_BUFFERED:
		num(state, "--max-buffered", arg, 65536, 1ull << 40, &v);
		o->srv.max_buffered = v;
		break;
	case OPT_MESSAGE_TIMEOUT:
		o->srv.message_timeout_ms = secs_ms(state, "--message-timeout", arg);
		break;
	case OPT_MAX_PENDING_ACKS:
		num(state, "--max-pending-acks", arg, 1, 1000000, &v);
		o->srv.max_pending_acks = (uint32_t)v;
		break;
	case OPT_IDLE_TIMEOUT:
		o->srv.idle_timeout_ms = secs_ms(state, "--idle-timeout", arg);
		break;
	case OPT_SLOW_TIMEOUT:
		o->srv.slow_timeout_ms = secs_ms(state, "--slow-timeout", arg);
		break;
	case OPT_HANDSHAKE_TIMEOUT:
		o->srv.handshake_timeout_ms = secs_ms(state, "--handshake-timeout", arg);
		break;
	case OPT_COMMIT_MAX:
		num(state, "--commit-max", arg, 1, 10000000, &v);
		o->srv.commit_max = (uint32_t)v;
		break;
	case OPT_COMMIT_DELAY:
		o->srv.commit_delay_ms = secs_ms(state, "--commit-delay", arg);
		break;
	case OPT_RETENTION_DAYS:
		num(state, "--retention-days", arg, 1, 36500, &v);
		o->store.retention_days = (int)v;
		break;
	case OPT_SQLITE_SYNC:
		if (!strcmp(arg, "full"))
			o->store.sqlite_sync_full = true;
		else if (!strcmp(arg, "normal"))
			o->store.sqlite_sync_full = false;
		else
			argp_error(state, "--sqlite-sync '%s': give full or normal", arg);
		break;
	case 'v':
		o->verbose = true;
		break;
	case 'q':
		o->quiet = true;
		break;
	case ARGP_KEY_ARG:
		argp_error(state, "unexpected argument '%s' (commands: query)", arg);
		break;
	case ARGP_KEY_END:
		if (!o->have_token && !o->no_token)
			argp_error(
				state,
				"give --token-file FILE (or --token), or --no-token to accept any agent");
		if (o->have_token && o->no_token)
			argp_error(state, "--no-token and a token contradict each other");
		if (!!o->cert != !!o->key)
			argp_error(state, "--tls-cert and --tls-key go together");
		if (o->client_ca && !o->cert)
			argp_error(state,
				   "--client-ca needs --tls-cert and --tls-key (mutual TLS is TLS)");
		if (o->srv.agent_id_from_cert && !o->client_ca)
			argp_error(state, "--agent-id-from-cert needs --client-ca (mutual TLS)");
		if (!strcmp(o->db, "none") && !o->nats.servers)
			argp_error(state, "--db none stores nothing: give --nats to publish");
		if (!!o->nats.cert != !!o->nats.key)
			argp_error(state, "--nats-cert and --nats-key go together");
		if ((o->nats.ca || o->nats.cert) && !o->nats.servers)
			argp_error(state, "--nats-ca, --nats-cert: give --nats");
		if (o->web.listen && !strcmp(o->db, "none"))
			argp_error(state, "--web-listen shows the store: not with --db none");
		if (o->web.listen && !o->web.token_file && !o->client_ca)
			argp_error(state, "--web-listen: give --web-token-file (viewer tokens), or "
					  "--client-ca to log in with client certificates");
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

static const char serve_doc[] =
	"Receive verdicts from flowpic agents over gRPC (flowpic.v1.Collector/Stream, "
	"proto/flowpic.proto) and store each verdict once.\n"
	"\nflowpic-collector query [OPTION...] reads the store (query --help).\n"
	"\nExamples:\n"
	"  # production: TLS, agents with certificates of our CA, a token\n"
	"  flowpic-collector --listen :50051 --db sqlite:/var/lib/flowpic/v.db \\\n"
	"      --tls-cert server.pem --tls-key server.key \\\n"
	"      --client-ca agents-ca.pem --token-file /etc/flowpic/token\n"
	"  # local cleartext h2c, for tests\n"
	"  flowpic-collector --listen 127.0.0.1:50051 --no-token\n"
	"  # a fleet: collectors sharing one PostgreSQL database\n"
	"  flowpic-collector --db postgresql://flowpic@db/flowpic --token-file tok\n"
	"  # publish to a JetStream cluster over mutual TLS\n"
	"  flowpic-collector --db postgresql://flowpic@db/flowpic --token-file tok \\\n"
	"      --nats tls://n1:4222,tls://n2:4222 --nats-ca nats-ca.pem \\\n"
	"      --nats-cert collector.pem --nats-key collector.key\n"
	"  # the dashboard on http://127.0.0.1:8080/ (viewers log in with a token)\n"
	"  flowpic-collector --listen :50051 --db sqlite:v.db --token-file tok \\\n"
	"      --web-listen 127.0.0.1:8080 --web-token-file viewers.token\n"
	"  # the counters, as one JSON line on stdout\n"
	"  kill -USR1 $(pidof flowpic-collector)\n"
	"\nSettings also come from a config file (-c FILE: 'key = value', keys the long "
	"options) and FLOWPIC_<KEY> variables; flags win.  SIGHUP reloads the tokens and the "
	"log level.  grpc.health.v1.Health/Check answers SERVING while the store is reachable "
	"(no token needed).\n"
	"\nOn start it prints {\"event\":\"listening\",...} on stdout; on SIGUSR1 and at exit "
	"its counters.  Errors are one line each on stderr.  Exit status: 0 stopped by "
	"SIGINT/SIGTERM; 1 could not start (store, TLS, address); 2 bad arguments."
	"\vdocs/collector.md describes the wire, the schema, the limits and the counters.";

/* Descriptors kept for what is not a connection: the store's files, TLS
 * files, logs, the listener, epoll, signalfd. */
#define FD_RESERVE 32

/* Take the hard fd limit, and lower --max-connections to what it allows, so
 * that accept4 does not hit EMFILE in normal use (server.c copes if it does). */
static void fit_fd_limit(struct server_config *cfg)
{
	struct rlimit rl;
	uint64_t room;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		struct rlimit up = { rl.rlim_max, rl.rlim_max };

		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			rl = up;
	}
	room = rl.rlim_cur > 2 * FD_RESERVE ? rl.rlim_cur - FD_RESERVE : rl.rlim_cur / 2;
	if (room < 1)
		room = 1;
	if (cfg->max_connections > room) {
		log_warn("--max-connections %u lowered to %" PRIu64
			 ": the fd limit (RLIMIT_NOFILE) is %" PRIu64
			 " and %d are kept for the rest",
			 cfg->max_connections, room, (uint64_t)rl.rlim_cur, FD_RESERVE);
		cfg->max_connections = (uint32_t)room;
	}
}

static void serve_defaults(struct serve_opts *o)
{
	memset(o, 0, sizeof(*o));
	server_config_default(&o->srv);
	o->store.sqlite_sync_full = true;
	o->store.busy_timeout_ms = 5000;
	o->db = STORE_DEFAULT_URL;
	o->nats.stream = PUBLISH_STREAM_DEFAULT;
	o->nats.replicas = 1;
	o->nats.backlog_max = PUBLISH_BACKLOG_DEFAULT;
	o->log_level = o->log_format = -1;
	o->web.upload_max = WEB_UPLOAD_MAX_DEFAULT;
}

static void apply_log(const struct serve_opts *o)
{
	log_set_level(o->log_level >= 0 ? (enum log_level)o->log_level :
		      o->quiet		? LOG_ERROR :
		      o->verbose	? LOG_INFO :
					  LOG_WARN);
	log_set_format(o->log_format >= 0 ? (enum log_format)o->log_format : LOG_FORMAT_TEXT);
}

/* The command line alone: -c, and its own values checked (the checks of
 * the whole wait for the file and the environment). */
static error_t early_parse(int key, char *arg, struct argp_state *state)
{
	return key == ARGP_KEY_END ? 0 : serve_parse(key, arg, state);
}

static const struct argp serve_argp = { serve_options, serve_parse, NULL, serve_doc,
					NULL,	       NULL,	    NULL };

/* Defaults < config file < FLOWPIC_* < flags into o, with set keeping the
 * strings o points to.  0, or the exit status. */
static int serve_settings(int argc, char **argv, struct serve_opts *o, struct settings *set)
{
	struct argp early = { serve_options, early_parse, NULL, serve_doc, NULL, NULL, NULL };
	struct serve_opts flags, merged;
	int ac, rc, bad = 0;
	char **av;

	/* Errors come out in the log format asked for (a flag wins). */
	log_hold();
	serve_defaults(&flags);
	argp_parse(&early, argc, argv, 0, NULL, &flags);
	rc = settings_read(set, serve_options, "flowpic-collector", flags.config_path, not_keys);
	serve_defaults(&merged);
	if (rc >= 0)
		bad = settings_check(set, &serve_argp, &merged, NULL, 0, false);
	if (flags.log_format >= 0 || merged.log_format >= 0)
		log_set_format((enum log_format)(flags.log_format >= 0 ? flags.log_format :
									 merged.log_format));
	log_release();
	if (rc != 0 || bad)
		return 2;
	av = settings_argv(set, argc, argv, &ac);
	if (!av) {
		log_error("out of memory");
		return 1;
	}
	serve_defaults(o);
	settings_parse(set, &serve_argp, ac, av, o);
	free(av);
	return 0;
}

static volatile sig_atomic_t hup;

static void on_hup(int sig)
{
	(void)sig;
	hup = 1;
}

/* What may change without a restart: the log level and format, the tokens
 * (token, token-file, no-token).  The rest is compared and named. */
static const char *const reloadable[] = { "log-level", "log-format", "verbose",	 "quiet",
					  "token",     "token-file", "no-token", NULL };

/* SIGHUP: the config file, the environment and the flags again. */
static void reload(struct server *srv, struct serve_opts *o, struct settings *cur, int argc,
		   char **argv)
{
	struct settings *ns = calloc(1, sizeof(*ns)), *old = malloc(sizeof(*old));
	struct token_map *tm = NULL;
	struct serve_opts n;
	char changed[512], err[512];

	if (!ns || !old) {
		log_error("SIGHUP: out of memory: settings not reloaded");
		goto out;
	}
	serve_defaults(&n);
	if (settings_read(ns, serve_options, "flowpic-collector", o->config_path, not_keys) ||
	    settings_check(ns, &serve_argp, &n, argv + 1, argc - 1, true)) {
		log_error("SIGHUP: settings not reloaded (errors above): the running ones stay");
		settings_free(ns);
		goto out;
	}
	if (n.token_file) {
		tm = token_map_load(n.token_file, err, sizeof(err));
		if (!tm) {
			log_error("SIGHUP: %s: the tokens in use stay", err);
			settings_free(ns);
			goto out;
		}
	}
	if (settings_diff(cur, ns, reloadable, changed, sizeof(changed)))
		log_warn("SIGHUP: %s changed: takes effect at the next start", changed);
	snprintf(o->token, sizeof(o->token), "%s", n.token);
	server_set_auth(srv, n.have_token && !tm ? o->token : NULL, tm);
	token_map_free(o->tokens);
	o->tokens = tm;
	o->have_token = n.have_token;
	apply_log(&n);
	printf("{\"event\":\"reloaded\",\"token\":%s,\"tokens\":%zu,\"log_level\":\"%s\","
	       "\"type\":\"event\"}\n",
	       n.have_token ? "true" : "false", tm ? token_map_size(tm) : (size_t)n.have_token,
	       log_level_name(log_get_level()));
	fflush(stdout);
	/* o's strings may point into the settings in use: kept until exit. */
	*old = *cur;
	*cur = *ns;
	cur->older = old;
	old = NULL;
out:
	free(ns);
	free(old);
}

/* The dashboard's counters into the collector's (server_set_web). */
static void web_stats(const void *ctx, struct collector_counters *k)
{
	web_counters(ctx, k);
}

static int run(struct server *srv, struct serve_opts *o, struct settings *set, int argc,
	       char **argv)
{
	int rc;

	while ((rc = server_step(srv, 200)) == 0) {
		if (hup) {
			hup = 0;
			reload(srv, o, set, argc, argv);
		}
	}
	/* Shutting down: what is stored is acknowledged; then GOAWAY. */
	server_close_all(srv);
	return rc < 0 ? rc : 0;
}

static int serve(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_hup, .sa_flags = SA_RESTART };
	struct serve_opts o;
	struct settings settings;
	struct store *store = NULL;
	struct server *srv = NULL;
	struct publisher *pub = NULL;
	struct web *web = NULL;
	SSL_CTX *tls = NULL;
	char err[1024];
	sigset_t set;
	int rc = 1;

	rc = serve_settings(argc, argv, &o, &settings);
	if (rc) {
		settings_free(&settings);
		return rc;
	}
	rc = 1;
	apply_log(&o);
	if (o.print_config) {
		settings_print(&settings, stdout, "flowpic-collector");
		settings_free(&settings);
		return 0;
	}
	if (o.token_file) {
		o.tokens = token_map_load(o.token_file, err, sizeof(err));
		if (!o.tokens) {
			log_error("%s", err);
			settings_free(&settings);
			return 2;
		}
	}
	/* SIGHUP reloads (reload()); its flag is read by the loop. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGHUP, &sa, NULL);

	/* Signals arrive through the server's signalfd. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	fit_fd_limit(&o.srv);

	if (o.cert) {
		struct rpc_tls_config tc = { .cert_file = o.cert,
					     .key_file = o.key,
					     .ca_file = o.client_ca };

		tls = rpc_tls_server_ctx(&tc, err, sizeof(err));
		if (!tls) {
			log_error("%s", err);
			goto out;
		}
		o.srv.tls = tls;
	}
	o.srv.token = o.have_token && !o.tokens ? o.token : NULL;
	o.srv.tokens = o.tokens;
	if (!strcmp(o.db, "none")) {
		/* Bridge mode: nothing to store, so nothing for health to probe. */
		store = store_none_open();
		if (!store) {
			log_error("out of memory");
			goto out;
		}
	} else {
		o.store.dashboard_indexes = o.web.listen != NULL;
		store = store_open(o.db, &o.store, err, sizeof(err));
		if (!store) {
			log_error("%s", err);
			goto out;
		}
		if (health_setup(o.db) < 0) {
			log_error("out of memory");
			goto out;
		}
	}
	srv = server_new(&o.srv, store, err, sizeof(err));
	if (!srv) {
		log_error("%s", err);
		goto out;
	}
	if (o.nats.servers) {
		pub = publisher_open(&o.nats, err, sizeof(err));
		if (!pub) {
			log_error("%s", err);
			goto out;
		}
		rc = server_set_publisher(srv, pub);
		if (rc < 0) {
			log_error("nats: epoll: %s", strerror(-rc));
			rc = 1;
			goto out;
		}
	}
	printf("{\"event\":\"listening\",\"address\":\"%s\",\"tls\":%s,\"mtls\":%s,\"token\":%s,"
	       "\"store\":\"%s\",\"nats\":%s,\"type\":\"event\"}\n",
	       server_address(srv), tls ? "true" : "false", o.client_ca ? "true" : "false",
	       o.have_token ? "true" : "false", store_kind(store), pub ? "true" : "false");
	fflush(stdout);
	if (server_metrics_address(srv)) {
		printf("{\"event\":\"metrics\",\"address\":\"%s\",\"type\":\"event\"}\n",
		       server_metrics_address(srv));
		fflush(stdout);
	}
	if (o.web.listen) {
		o.web.db = o.db;
		o.web.cert = o.cert;
		o.web.key = o.key;
		o.web.client_ca = o.client_ca;
		web = web_start(&o.web, store, err, sizeof(err));
		if (!web) {
			log_error("%s", err);
			rc = 1;
			goto out;
		}
		server_set_web(srv, web_stats, web);
		printf("{\"event\":\"web\",\"address\":\"%s\",\"url\":\"%s://%s/\",\"type\":"
		       "\"event\"}\n",
		       web_address(web), tls ? "https" : "http", web_address(web));
		fflush(stdout);
	}
	if (!tls && !server_loopback(srv))
		log_warn("listening on %s without TLS: verdicts%s cross the network in cleartext, "
			 "readable and alterable on the way (give --tls-cert and --tls-key)",
			 server_address(srv), o.have_token ? " and the token" : "");
	rc = run(srv, &o, &settings, argc, argv) < 0 ? 1 : 0;
	collector_counters_print(server_counters(srv), stdout);
out:
	/* The dashboard first: it taps the store, and its thread reads it. */
	if (srv)
		server_set_web(srv, NULL, NULL);
	web_stop(web);
	server_free(srv);
	publisher_close(pub);
	store_close(store);
	SSL_CTX_free(tls);
	token_map_free(o.tokens);
	settings_free(&settings);
	health_teardown();
	return rc;
}

int main(int argc, char **argv)
{
	log_init("flowpic-collector", LOG_WARN);
	argp_err_exit_status = 2;
	if (argc >= 2 && !strcmp(argv[1], "query")) {
		argv[1] = "flowpic-collector query";
		return collector_query(argc - 1, argv + 1);
	}
	return serve(argc, argv);
}
