/*
 * pipeline.h - the one pipeline every mode drives: `analyze`, `rules test`, the pack tests and
 * `serve` open a ch_pipeline from a configuration and push records or events through it.
 *
 * The object assembles, in dependency order: GeoIP; the reference-set registry (the pack's
 * context, then the user's, then the threat intelligence of --intel files and of the store);
 * entity linking; the rules of the content pack; the correlation engine; offenses and user
 * risk; and the store (SQLite). The per-event chain is, for each event in event-time order:
 *
 *     identity -> duplicate? (skip, counted) -> GeoIP -> entity linking -> intel matching
 *              -> events writer (optional) -> correlation -> offenses and risk
 *
 * With read-ahead workers (ch_pipeline_prep) the identity, the GeoIP lookups and the events
 * writer's line are made on the workers, and the chain uses them with the same results.
 *
 * Idempotence: each record has an identity (a CloudTrail eventID with its account and region;
 * a flow or DNS record by its content), hashed to 64 bits and remembered in the store, so a
 * record read a second time, in this run or any later one, changes nothing.
 *
 * Durability: a checkpoint saves, in one SQLite transaction, the offenses, users and risk,
 * entity links, the correlation engine's state (windows, first-seen learning, sequences), the
 * values rule responses added to reference sets, the identities of the records processed since
 * the last checkpoint, and a position string per named input (a journal offset for `serve`).
 * Opening the pipeline on the same store restores all of it, so N runs over N slices of the
 * logs give the offenses of one run over all of them.
 *
 * Late events: an event older than the engine's watermark (the newest event time minus the
 * allowed lateness) still goes through enrichment, the events writer and the stateless rules;
 * stateful rules cannot take it. It is counted and the first ones are named through the
 * message callback, never dropped in silence.
 *
 * Errors: functions return 0 (or a count) or a negative CH_E* code with err set; nothing here
 * prints. Messages worth a person's attention (rule loader warnings, late events, GeoIP
 * unavailable) go to cfg->msg.
 *
 * Ownership: the pipeline borrows cfg's strings, diag and out until ch_pipeline_close; it owns
 * everything it opens. One pipeline is used by one thread at a time.
 */
#ifndef CH_PIPELINE_PIPELINE_H
#define CH_PIPELINE_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/diag.h"
#include "core/error.h"
#include "core/event.h"
#include "parse/source.h"
#include "rules/hit.h"

typedef struct ch_output ch_output;
typedef struct ch_pipeline ch_pipeline;

#define CH_PIPELINE_MAX_GEOIP 8
#define CH_PIPELINE_MAX_INTEL 64
/* Record identities remembered at most; past it records are processed without the duplicate
 * check and counted in dedupe_cap (a warning says so). 32M ids cost 512 MiB at most. */
#define CH_PIPELINE_MAX_SEEN (32u << 20)

typedef void (*ch_pipeline_msg_fn)(void *ud, const char *msg);

typedef struct ch_pipeline_config {
    const char *db;           /* the store; NULL = <data dir>/coinhound.db */
    bool no_store;            /* nothing read from or written to a store (rule tests) */
    const char *pack;         /* content pack directory; NULL = <content dir>/cryptojacking-aws */
    const char *context;      /* business context YAML over the pack's, or NULL */
    const char *const *intel; /* STIX bundles and block lists for this run */
    size_t nintel;
    /* GeoIP databases: ngeoip == 0 means the default (<data dir>/geoip/country.mmdb, or
     * $COINHOUND_GEOIP), which may be missing (a warning); given ones must open. */
    const char *const *geoip;
    size_t ngeoip;
    bool no_geoip;
    bool no_rules;          /* normalize and enrich only: no rules, offenses or store */
    int64_t lateness_ms;    /* allowed event-time lateness; 0 = the engine's default (5 min) */
    int64_t learning_ms;    /* first_seen learning; 0 = the context's */
    ch_diag *diag;          /* bad records are reported and counted here (required) */
    ch_output *out;         /* normalized events writer, or NULL */
    ch_pipeline_msg_fn msg; /* warnings for people; may be NULL */
    void *msg_ud;
    ch_hit_fn on_hit; /* told of every rule hit after offenses and risk took it; may be NULL */
    void *hit_ud;
    /* The event store (store/evstore.h) beside the SQLite store: on whenever the store is,
     * unless no_event_store (--no-store). retention "30d,10GB" (saved in the store), NULL =
     * the saved one. event_hot "on", "off" or "raw": how segments are sealed (store/evstore.h),
     * saved in the store as `coinhound store hot` saves it; NULL = the saved setting. */
    bool no_event_store;
    const char *event_retention;
    const char *event_hot;
} ch_pipeline_config;

typedef struct ch_pipeline_stats {
    uint64_t events;        /* events pushed */
    uint64_t processed;     /* of those, not duplicates */
    uint64_t duplicates;    /* records processed before (this run or an earlier one) */
    uint64_t dedupe_cap;    /* records past CH_PIPELINE_MAX_SEEN (not checked) */
    uint64_t late;          /* events older than the watermark when they arrived */
    int64_t late_max_ms;    /* the latest of them, behind the watermark */
    uint64_t write_errors;  /* events the writer could not write */
    uint64_t engine_errors; /* correlation out of memory */
    uint64_t restored_keys; /* correlation keys restored from the store at open */
    uint64_t restored_seen; /* record identities restored from the store at open */
    uint64_t refset_adds;   /* values rule responses added to reference sets */
    uint64_t checkpoints;
    double checkpoint_ms; /* duration of the last checkpoint */
} ch_pipeline_stats;

int ch_pipeline_open(const ch_pipeline_config *cfg, ch_pipeline **out, ch_error *err);
/* Close without a checkpoint (call ch_pipeline_checkpoint first to keep the run). */
void ch_pipeline_close(ch_pipeline *p);

/* One normalized event (it may be changed by enrichment). origin names where it came from in
 * messages (a path), may be NULL. Returns 1 when processed, 0 when it was a duplicate, or
 * CH_ENOMEM when correlation ran out of memory (the event was still counted). */
int ch_pipeline_push_event(ch_pipeline *p, ch_event *ev, const char *origin);

/* Every record in buf (any format `analyze` reads: JSON Lines, arrays, {"Records":[...]},
 * flow logs with a header, gzip'd or not). type NULL = detect from the content. Bad records go
 * to cfg->diag under origin. Returns the events pushed, or CH_EPARSE (format not recognised),
 * CH_ENOMEM. */
long ch_pipeline_push_buffer(ch_pipeline *p, const ch_source_type *type, const void *buf,
                             size_t len, const char *origin, ch_error *err);

/* How ch_pipeline_run_paths reads its inputs. Zeroed = defaults. */
typedef struct ch_pipeline_run_opts {
    const ch_source_type *forced; /* every input's type, or NULL to detect per file */
    size_t max_open;              /* inputs open at once in the merge (default 512) */
    size_t sort_memory;           /* bytes for sorting an unsorted file (default 256 MiB) */
    bool walk;                    /* expand directories recursively (in name order) */
    /* > 1: inputs are read and parsed ahead on threads - 1 workers (parse/merge.h); the chain
     * stays on the calling thread, so the results are those of one thread. 0 = 1. */
    unsigned threads;
    /* Called every 4096 events with the input being read, and once at the end with NULL. */
    void (*progress)(void *ud, const char *path, uint64_t files_opened, uint64_t files);
    void *progress_ud;
} ch_pipeline_run_opts;

typedef struct ch_merge_stats ch_merge_stats;

/* The part of the per-event chain that read-ahead workers can do as they read (ingest/
 * prefetch.h): the record identity, GeoIP with a cache per worker, the events writer's line;
 * push_event then uses what ev->prep says was done and does the rest, with the results of one
 * thread. ch_pipeline_run_paths sets it up with threads > 1; a caller with its own pool
 * (`serve`) may pass it to ch_prefetch_pool_new_prep. The pool must be freed before p is
 * closed, and p's GeoIP handle, store and writer must not change while it runs. */
typedef struct ch_prefetch_prep ch_prefetch_prep;
void ch_pipeline_prep(const ch_pipeline *p, ch_prefetch_prep *out);

/* Log files and (with walk) directories, '-' for stdin, merged by event time (parse/merge.h:
 * the k-way merge, unsorted files sorted first), every event pushed. Bad records and unreadable
 * inputs go to cfg->diag. merge (may be NULL) gets the merge's counters. Returns the events
 * pushed, or CH_ENOMEM. */
long ch_pipeline_run_paths(ch_pipeline *p, const char *const *paths, size_t n,
                           const ch_pipeline_run_opts *o, ch_merge_stats *merge, ch_error *err);

/* The same for a few files whose problems are errors (rule test cases): CH_EIO when a file
 * cannot be read, CH_EPARSE when one is not a recognised log, with the file named in err. */
long ch_pipeline_push_paths(ch_pipeline *p, const char *const *paths, size_t n, ch_error *err);

/* Move event time to now_ms when no events come (a server that is idle), so that windows
 * expire and the watermark moves. */
void ch_pipeline_advance(ch_pipeline *p, int64_t now_ms);

/* Save everything (see the top) in one transaction; input/position (both may be NULL) record
 * how far the named input was read. Nothing happens with no_store or no_rules. */
int ch_pipeline_checkpoint(ch_pipeline *p, const char *input, const char *position, ch_error *err);
/* The position last checkpointed for input into buf ("" when none). */
int ch_pipeline_position(ch_pipeline *p, const char *input, char *buf, size_t cap, ch_error *err);

/* Reload the pack, the context and the reference sets (for SIGHUP): a new ruleset under a new
 * engine into which the current correlation state is restored; offenses, risk and record
 * identities are kept. On failure the running configuration stays in place. */
int ch_pipeline_reload(ch_pipeline *p, ch_error *err);

void ch_pipeline_stats_get(const ch_pipeline *p, ch_pipeline_stats *out);

/* The open and hidden offenses as `"offenses":[...]` and users as `"users":[...]` (the shapes
 * of `analyze --format json`), appended to b without braces. flags: CH_OFFENSE_JSON_*. */
int ch_pipeline_report_json(const ch_pipeline *p, ch_buf *b, unsigned flags);

/* The parts, for reports and for the commands that need more than the chain (borrowed; NULL
 * when absent, e.g. with no_rules). */
typedef struct ch_geoip ch_geoip;
typedef struct ch_engine ch_engine;
typedef struct ch_ruleset ch_ruleset;
typedef struct ch_offenses ch_offenses;
typedef struct ch_risk ch_risk;
typedef struct ch_entity ch_entity;
typedef struct ch_intel_matcher ch_intel_matcher;
typedef struct ch_store ch_store;
typedef struct ch_refsets ch_refsets;
ch_geoip *ch_pipeline_geoip(const ch_pipeline *p);
ch_engine *ch_pipeline_engine(const ch_pipeline *p);
const ch_ruleset *ch_pipeline_rules(const ch_pipeline *p);
/* Turn rule id of the running ruleset on or off at once (CH_ENOTFOUND when no loaded rule has
 * it), keeping its correlation state; durable only through rules/rule_state.h, which open and
 * reload apply. Whether rule i of ch_pipeline_rules is enabled. */
int ch_pipeline_set_rule_enabled(ch_pipeline *p, const char *id, bool enabled, ch_error *err);
bool ch_pipeline_rule_enabled(const ch_pipeline *p, uint32_t i);
ch_offenses *ch_pipeline_offenses(const ch_pipeline *p);
ch_risk *ch_pipeline_risk(const ch_pipeline *p);
ch_entity *ch_pipeline_entity(const ch_pipeline *p);
typedef struct ch_lineage ch_lineage;
ch_lineage *ch_pipeline_lineage(const ch_pipeline *p);
ch_intel_matcher *ch_pipeline_intel(const ch_pipeline *p);
ch_store *ch_pipeline_store(const ch_pipeline *p);
ch_refsets *ch_pipeline_refsets(const ch_pipeline *p);
typedef struct ch_evstore ch_evstore;
ch_evstore *ch_pipeline_evstore(const ch_pipeline *p);

/* Values that rules added to address and domain sets are indicators learned from the logs:
 * the events stored before the addition must be searched for them too (store/retro.h,
 * ch_retro_hunt_rule_adds). ch_pipeline_hunt_take hands out up to cap values no hunt has
 * searched for yet (views valid until the next event) and marks them running; a checkpoint
 * taken while they run records them as hunted, so the hunt's own checkpoint commits both its
 * hits and the mark. ch_pipeline_hunt_done(ok) ends the run: false puts them back to wait for
 * the next hunt. Values learned before a checkpoint and not hunted when the process died are
 * still waiting after a restart. */
typedef struct ch_pipeline_add {
    const char *set, *value;
    const char *source; /* the rule that learned it */
    size_t len;
    int64_t first_seen;         /* the time of the event it was learned from */
    int64_t valid_from, expiry; /* the value's validity, as the rule gave it */
} ch_pipeline_add;
size_t ch_pipeline_hunt_take(ch_pipeline *p, ch_pipeline_add *out, size_t cap);
void ch_pipeline_hunt_done(ch_pipeline *p, bool ok);
bool ch_pipeline_hunt_pending(const ch_pipeline *p);
/* Hits that offenses or risk could not record (out of memory, caps). */
uint64_t ch_pipeline_sink_errors(const ch_pipeline *p);

/* The identity of a record (see the top): exposed for tests and the event store. Never 0. */
uint64_t ch_pipeline_record_id(const ch_event *ev);

#endif
