/*
 * serve.h - `coinhound serve` as a library: sources (HTTP ingest, Firehose, spool
 * directories) -> journal -> pipeline -> offenses, with the health, metrics and offenses
 * routes. The CLI (src/cli/cmd_serve.c) adds signals, logging and the intel pulls.
 *
 * The threading story, in one place:
 *   - HTTP: libmicrohttpd, a thread per connection (capped). An ingest or Firehose handler
 *     parses its body to count and classify the records (the same parsers the pipeline uses),
 *     appends the batch to the journal and waits for the group commit; only then does it
 *     answer. It never touches the pipeline. GET /api/v1/offenses takes the pipeline lock for
 *     the time it takes to write the JSON.
 *   - spool: one thread polls the spool directories and appends chunks to the journal; it owns
 *     the spool ledger and saves it every second with the journal position it reflects.
 *   - pipeline: one thread reads the journal from the last checkpoint, pushes every record
 *     through the pipeline (under the pipeline lock, one journal entry at a time), tracks a
 *     watermark per dataset, and checkpoints every `checkpoint` interval (one SQLite
 *     transaction with the journal position); then journal segments behind both the
 *     checkpoint and the spool ledger are removed. It also performs reloads (SIGHUP), since the
 *     pipeline is one thread's.
 *   - parse workers (config `threads` - 1, the same pool `analyze --threads` uses): each
 *     journal entry is parsed, normalized, given its record identity and GeoIP-enriched on a
 *     worker ahead of the pipeline thread (pipeline.h, ch_pipeline_prep), with the results of
 *     one thread.
 *   - the caller's thread waits for signals and calls ch_serve_drain then ch_serve_close.
 * Backpressure: a full journal answers 503 with Retry-After and pauses the spool; the pipeline
 * is never blocked by a client, and clients are never told "accepted" before the journal has
 * the records on disk (per the fsync policy).
 *
 * Ownership: ch_serve_open borrows the config until ch_serve_close, which frees everything.
 */
#ifndef CH_SERVER_SERVE_H
#define CH_SERVER_SERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "server/config.h"

/* A line for people: level "info", "warn" or "error"; event a stable snake_case word
 * ("journal_recovered", "checkpoint_failed", ...); msg the sentence. */
typedef void (*ch_serve_log_fn)(void *ud, const char *level, const char *event, const char *msg);

typedef struct ch_serve ch_serve;

/* Open the journal (reporting a damaged tail), the pipeline, the spool ledger; start the
 * pipeline, spool and HTTP threads. */
int ch_serve_open(const ch_serve_config *cfg, ch_serve_log_fn log, void *log_ud, ch_serve **out,
                  ch_error *err);
uint16_t ch_serve_port(const ch_serve *s);

/* The route table (static, NULL-method terminated): for the OpenAPI check, the fuzzer and the
 * docs. Body limits of 0 on ingest routes are the config's max_body at run time. */
struct ch_route;
const struct ch_route *ch_serve_routes(void);
/* Ask the pipeline thread to reload the pack, the context and the reference sets. */
void ch_serve_reload(ch_serve *s);
/* The intel pull scheduler (cli/cmd_serve.c runs it) as GET /api/v1/intel/feeds and
 * POST /api/v1/intel/pull see it: the status of configured feed i, and a request to pull feed i
 * (or every feed, i < 0) as soon as the scheduler can, whatever its backoff. */
typedef struct ch_serve_feed_status {
    int64_t last_ms;         /* when the last pull ended; 0 = never */
    int64_t next_ms;         /* when the next is due; 0 = now */
    bool running;            /* a pull of this feed is under way */
    bool ok;                 /* the last pull's result (false before the first) */
    unsigned fails;          /* failures in a row */
    uint64_t pulls;          /* pulls since start, good or bad */
    uint64_t added, removed; /* reference-set elements the last good pull added / removed */
    uint64_t indicators;     /* indicators the last good pull read */
    char error[512];         /* the last failure's reason ("" after a good pull) */
} ch_serve_feed_status;
typedef struct ch_serve_intel_hook {
    void (*status)(void *ud, size_t i, ch_serve_feed_status *out);
    void (*pull_now)(void *ud, long i);
    void *ud;
} ch_serve_intel_hook;
/* Install (or with NULL remove) the hook; it must outlive the server or be removed first. */
void ch_serve_set_intel(ch_serve *s, const ch_serve_intel_hook *h);
/* Stop taking records (HTTP answers 503, the spool stops), let the pipeline read the journal
 * to its end, checkpoint, and stop the threads. */
int ch_serve_drain(ch_serve *s, ch_error *err);
void ch_serve_close(ch_serve *s);

#endif
