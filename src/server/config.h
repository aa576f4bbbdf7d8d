/*
 * config.h - the configuration of `coinhound serve`: one YAML file (docs/SERVE.md documents
 * every key), read with libyaml's document API so that every complaint names FILE:LINE:COL.
 *
 * Loading checks shapes and values (a duration is "100ms", "15s", "20m", "1h"; a size is
 * "10GiB", "512MiB", "64KiB" or bytes; unknown keys are errors, since a misspelt key silently
 * ignored is a setting silently lost). ch_serve_config_check then checks the world: files
 * readable, directories usable, the listen address valid, plain HTTP only on loopback, token
 * files present and non-trivial. `serve --check-config` runs both; `serve` refuses to start
 * unless both pass. Relative paths are taken as given (relative to the working directory, as
 * the other commands take theirs); the systemd unit sets WorkingDirectory.
 *
 * Ownership: ch_serve_config_load fills a config whose strings it owns;
 * ch_serve_config_free releases them.
 */
#ifndef CH_SERVER_CONFIG_H
#define CH_SERVER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/error.h"
#include "ingest/journal.h"
#include "response/respond_config.h"

#define CH_SERVE_MAX_SPOOL 64
#define CH_SERVE_MAX_PULL 16
#define CH_SERVE_MAX_GEOIP 8
#define CH_SERVE_MAX_FILE (1u << 20)
#define CH_SERVE_DEFAULT_LISTEN "127.0.0.1:8440"

typedef struct ch_serve_pull {
    char *url, *collection, *token_file;
    char *user, *password_file; /* basic authentication instead of a bearer token */
    int64_t every_ms;
} ch_serve_pull;

typedef struct ch_serve_config {
    char *file; /* where it was read from */
    char *listen;
    char *tls_cert, *tls_key;
    char *db, *pack, *context;
    char *console; /* the web console's directory (scripts/install-web), NULL = none */
    char *geoip[CH_SERVE_MAX_GEOIP];
    size_t ngeoip;
    bool no_geoip;
    char *spool[CH_SERVE_MAX_SPOOL];
    size_t nspool;
    int64_t spool_rescan_ms;
    uint64_t spool_max_files;
    uint64_t spool_max_chunk;
    char *journal_dir;
    uint64_t journal_max_bytes, journal_segment_bytes;
    ch_journal_fsync fsync;
    unsigned fsync_interval_ms;
    int64_t lateness_ms;
    int64_t checkpoint_ms;
    char *ingest_token_file, *read_token_file;
    uint64_t max_body;
    unsigned max_connections;
    ch_serve_pull pull[CH_SERVE_MAX_PULL];
    size_t npull;
    char *retention; /* the event store's retention ("30d,10GB"), NULL = the store's saved one */
    bool no_store;   /* keep no events (the event store is off) */
    /* store_hot: "on" (true), "off" (false), "raw" or "auto", as `coinhound store hot` takes them;
     * NULL = the store's saved one. A static string. */
    const char *store_hot;
    unsigned threads;       /* the pipeline thread plus threads-1 parse workers; 0 = the CPUs */
    ch_resp_config respond; /* respond: (docs/RESPONSE.md) */
} ch_serve_config;

/* Read and validate the shape of FILE. CH_EPARSE/CH_ELIMIT with "FILE:LINE:COL: ..." */
int ch_serve_config_load(const char *path, ch_serve_config *c, ch_error *err);
/* The text form of the same (for tests and for `--check-config` on a string). */
int ch_serve_config_load_mem(const char *name, const char *text, size_t len, ch_serve_config *c,
                             ch_error *err);
/* Check what the config names exists and is safe to use (see the top). CH_EUSAGE, CH_EIO. */
int ch_serve_config_check(const ch_serve_config *c, ch_error *err);
void ch_serve_config_free(ch_serve_config *c);

/* "100ms", "15s", "20m", "1h", "2d" (a bare number is seconds). -1 when not a duration. */
int64_t ch_parse_duration_ms(const char *s);
/* "10GiB", "512MiB", "64KiB", "1GB", "1000" (bytes). 0 when not a size (or zero). */
uint64_t ch_parse_size(const char *s);

/* "host:port", "[v6]:port" or "port" (on 127.0.0.1). CH_EUSAGE when it is not. */
int ch_listen_parse(const char *listen, struct sockaddr_storage *ss, socklen_t *sl, bool *loopback,
                    ch_error *err);

/* Tokens, one a line ('#' comments and blank lines skipped), at least 16 bytes each: the whole
 * file text, NUL-separated, in *out (ch_free), count in *n. CH_EIO, CH_EUSAGE. */
int ch_token_file_load(const char *path, char **out, size_t *len, size_t *n, ch_error *err);

#endif
