// SPDX-License-Identifier: MIT
/*
 * main.c - `flowpic-collector [OPTION...]` serves the verdict stream;
 * `flowpic-collector query ...` reads what was stored.
 */
#include <argp.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "identity.h"
#include "core/log.h"
#include "core/number.h"
#include "query.h"
#include "server.h"
#include "store.h"
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
};

struct serve_opts {
	struct server_config srv;
	struct store_options store;
	const char *db;
	const char *cert, *key, *client_ca;
	char token[RPC_TOKEN_MAX + 1];
	struct token_map *tokens; /* --token-file */
	bool have_token, no_token;
	bool verbose, quiet;
};

static const struct argp_option serve_options[] = {
	{ "listen", 'l', "ADDR", 0,
	  "HOST:PORT, [IPV6]:PORT or :PORT (default 127.0.0.1:50051; port 0 = any)", 0 },
	{ "db", 'd', "URL", 0,
	  "sqlite:PATH (default " STORE_DEFAULT_URL ") or postgresql://USER@HOST/DB", 0 },
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
	{ 0, 0, 0, 0, "Output:", 5 },
	{ "verbose", 'v', 0, 0, "log connections too", 5 },
	{ "quiet", 'q', 0, 0, "log errors only", 5 },
	{ 0 }
};

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
	char err[512];
	uint64_t v;

	switch (key) {
	case 'l':
		o->srv.listen = arg;
		break;
	case 'd':
		o->db = arg;
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
		token_map_free(o->tokens);
		o->tokens = token_map_load(arg, err, sizeof(err));
		if (!o->tokens)
			argp_error(state, "%s", err);
		o->have_token = true;
		break;
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
	"  # the counters, as one JSON line on stdout\n"
	"  kill -USR1 $(pidof flowpic-collector)\n"
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

static int serve(int argc, char **argv)
{
	struct serve_opts o;
	struct argp argp = { serve_options, serve_parse, NULL, serve_doc, NULL, NULL, NULL };
	struct store *store = NULL;
	struct server *srv = NULL;
	SSL_CTX *tls = NULL;
	char err[1024];
	sigset_t set;
	int rc = 1;

	memset(&o, 0, sizeof(o));
	server_config_default(&o.srv);
	o.store.sqlite_sync_full = true;
	o.store.busy_timeout_ms = 5000;
	o.db = STORE_DEFAULT_URL;
	argp_parse(&argp, argc, argv, 0, NULL, &o);
	log_set_level(o.quiet ? LOG_ERROR : o.verbose ? LOG_DEBUG : LOG_WARN);

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
	store = store_open(o.db, &o.store, err, sizeof(err));
	if (!store) {
		log_error("%s", err);
		goto out;
	}
	srv = server_new(&o.srv, store, err, sizeof(err));
	if (!srv) {
		log_error("%s", err);
		goto out;
	}
	printf("{\"event\":\"listening\",\"address\":\"%s\",\"tls\":%s,\"mtls\":%s,\"token\":%s,"
	       "\"store\":\"%s\"}\n",
	       server_address(srv), tls ? "true" : "false", o.client_ca ? "true" : "false",
	       o.have_token ? "true" : "false", store_kind(store));
	fflush(stdout);
	if (!tls && !server_loopback(srv))
		log_warn("listening on %s without TLS: verdicts%s cross the network in cleartext, "
			 "readable and alterable on the way (give --tls-cert and --tls-key)",
			 server_address(srv), o.have_token ? " and the token" : "");
	rc = server_run(srv) < 0 ? 1 : 0;
	collector_counters_print(server_counters(srv), stdout);
out:
	server_free(srv);
	store_close(store);
	SSL_CTX_free(tls);
	token_map_free(o.tokens);
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
