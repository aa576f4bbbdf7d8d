/*
 * engine.h - the correlation engine: runs a loaded ruleset (rule.h) over a stream of events
 * and reports rule hits (hit.h) through a callback.
 *
 * The ruleset is read-only; everything that changes lives in the engine (the windows, sequence
 * progress and first-seen tables of each rule and key), so several engines can share one
 * ruleset and a reload swaps the ruleset under a new engine (or restores saved state into it).
 *
 * Dispatch: rules are indexed by the dataset and event.action their `where` (and sequence
 * steps) require (ch_expr_dispatch_hints); an event meets only the rules of its dataset and
 * action, plus the rules without hints.
 *
 * Time: event time drives everything. The engine's clock is the largest event time seen; the
 * watermark is that minus the allowed lateness. An event older than the watermark is too late
 * for stateful rules (counted in `late`, still seen by `none` rules); within the lateness,
 * out-of-order events take their place in the windows. Windows slide: a threshold or distinct
 * rule fires when any window of length `within` that contains the new event holds enough. A key
 * whose newest entry fell out of every window that can still change is freed through a min-heap
 * ordered by expiry time (FIFO on ties), never by a scan of all keys.
 *
 * Firing (one hit per episode): when a threshold or distinct rule fires for a key, the events
 * of that window are consumed and the key stays quiet for `within` of event time after the
 * firing event; events during the quiet time still enter the window, so a burst that goes on
 * fires again once per `within`, each hit counting only events after the previous hit. A
 * sequence fires when its last step completes and starts over. Sequence steps are taken in
 * arrival order (each step no earlier in event time than the one before it), so a later step
 * that arrives before an earlier one is missed: inputs are merged by event time upstream.
 * first_seen fires once per new value (after learning). none fires on every matching event.
 *
 * A single event stamped far in the future moves the clock and makes later events late: the
 * engine trusts event time (CloudTrail's is the service's own clock).
 *
 * Memory: state is capped (max_bytes, max_keys, entries per key); when a cap refuses a new
 * key or entry it is counted in `cap_hits`, never silently.
 *
 * Ownership: ch_engine_new borrows the ruleset (it must outlive the engine) and the refsets
 * registry of the run (opts->refsets, else the ruleset's): rule responses add to the registry,
 * never to the ruleset, which stays read-only and shareable. ch_engine_free releases all state.
 * One engine is used by one thread at a time.
 */
#ifndef CH_RULES_ENGINE_H
#define CH_RULES_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/diag.h"
#include "core/error.h"
#include "core/event.h"
#include "rules/hit.h"
#include "enrich/refset.h"
#include "rules/rule.h"

typedef struct ch_engine_opts {
    int64_t lateness_ms;  /* allowed lateness; default 5 min (-1 = none: 0) */
    int64_t learning_ms;  /* first_seen learning when the rule gives none; default 24 h */
    uint64_t max_bytes;   /* state memory cap; default 512 MiB */
    uint64_t max_keys;    /* tracked (rule, key) pairs; default 4M */
    uint32_t max_entries; /* window entries / first-seen values per key; default 4096 */
    /* The run's reference-set registry that refset responses add to: run state owned by the
     * caller (the pipeline), not the compiled ruleset. NULL: the registry the ruleset was
     * compiled against (rules read their sets through it). */
    ch_refsets *refsets;
    /* Told of every value a refset response added, so that the caller can make it durable.
     * May be NULL. */
    void (*on_refset_add)(void *ud, const char *set, const char *value, size_t len,
                          const ch_refset_meta *meta);
    void *refset_ud;
} ch_engine_opts;

typedef struct ch_engine_stats {
    uint64_t events;      /* events given to ch_engine_process */
    uint64_t derived;     /* derived events re-entered */
    uint64_t evaluations; /* `where` (and step) evaluations */
    uint64_t hits;        /* hits reported */
    uint64_t late;        /* events too late for stateful rules */
    uint64_t no_key;      /* matching events without a value for `by` */
    uint64_t cap_hits;    /* keys or entries refused by a memory cap */
    uint64_t keys;        /* (rule, key) pairs tracked now */
    uint64_t keys_peak;
    uint64_t expired; /* keys freed by expiry */
    uint64_t bytes;   /* state memory now (approximate: structures and copies) */
    uint64_t bytes_peak;
    uint64_t response_errors; /* refset responses that could not add */
    int64_t watermark_ms;
} ch_engine_stats;

typedef struct ch_engine ch_engine;

/* opts may be NULL for the defaults. */
int ch_engine_new(const ch_ruleset *rs, const ch_engine_opts *opts, ch_hit_fn fn, void *ud,
                  ch_engine **out, ch_error *err);
void ch_engine_free(ch_engine *e);

/* Run every rule that can match ev; hits are delivered before this returns. Returns the number
 * of hits (>= 0) or CH_ENOMEM. */
int ch_engine_process(ch_engine *e, const ch_event *ev);

/* Move the clock to now_ms (if later) and expire what the watermark passed, e.g. when a server
 * sees no events for a while. ch_engine_process does this itself. */
void ch_engine_advance(ch_engine *e, int64_t now_ms);

void ch_engine_stats_get(const ch_engine *e, ch_engine_stats *out);
/* The clock minus the allowed lateness: an event older than this is late for stateful rules.
 * INT64_MIN before the first event. */
int64_t ch_engine_watermark(const ch_engine *e);
/* Hits and evaluations of rule i of the ruleset. */
uint64_t ch_engine_rule_hits(const ch_engine *e, uint32_t i);
uint64_t ch_engine_rule_evals(const ch_engine *e, uint32_t i);

/* Enable or disable rule i of the ruleset (all are enabled in a new engine). A disabled rule
 * is not evaluated: it neither fires nor advances its windows, and sequence steps waiting on
 * another rule's hits are not advanced for it; the state it already holds stays (saved and
 * restored as usual), so enabling it again resumes where it was. Run state, like the windows:
 * the ruleset stays read-only and shareable. */
void ch_engine_set_enabled(ch_engine *e, uint32_t i, bool enabled);
bool ch_engine_enabled(const ch_engine *e, uint32_t i);
/* Save the state (versioned binary: "CHENGST" + version, then clocks and each key's state by
 * rule id) and load it into a fresh engine over the same or a newer ruleset; state of rules
 * that no longer exist is skipped, state of a rule whose correlation changed is dropped.
 * CH_EIO on write/read failure, CH_EPARSE on a damaged or foreign file. */
int ch_engine_save(const ch_engine *e, FILE *f, ch_error *err);
int ch_engine_load(ch_engine *e, FILE *f, ch_error *err);

#endif
