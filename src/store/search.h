/*
 * search.h - searching the event store in the rules' expression language.
 *
 *     ch_search_new(&opts, &s, &err)      compile (errors at line:column), plan
 *     ch_search_run(s, store, &err)       run to the end, or until cancelled / a bound hit
 *     ch_search_progress(s, &p)           from any thread, while it runs
 *     ch_search_cancel(s)                 from any thread
 *     ch_search_result(s, i, ...)         the kept matches, in the asked order
 *
 * A search is a handle so that an asynchronous caller (the REST routes of a later issue: POST
 * starts a thread on ch_search_run, GET reads ch_search_progress, DELETE calls
 * ch_search_cancel) is a thin layer; the CLI runs it in place. It is bounded in memory (the
 * kept matches and the aggregation groups) and in time, and says which bound it hit.
 *
 * Plan: per segment, first the time range (from the name, then the header), then the
 * indexes: every positive test on an indexed field (==, in [...], in $set, CIDR, suffix,
 * any operator) is run on the segment's terms and yields the records that can match; and/or
 * combine them; a test the index cannot answer keeps all records. Only candidate records
 * are decompressed and evaluated with the full expression, so the answer is the scan's.
 *
 * Ownership: the handle owns its compiled expression and its results; opts' strings are
 * copied; opts.env must outlive the handle; decoded results borrow from the handle.
 */
#ifndef CH_STORE_SEARCH_H
#define CH_STORE_SEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/event.h"
#include "rules/expr.h"
#include "store/evstore.h"

#define CH_SEARCH_MAX_GROUP_FIELDS 4
#define CH_SEARCH_DEFAULT_LIMIT 1000
#define CH_SEARCH_DEFAULT_MEMORY ((size_t)512 << 20)
#define CH_SEARCH_MAX_BUCKETS 100000
#define CH_SEARCH_MAX_THREADS 8

/* Called for every match (retro-hunt): the event is valid during the call. */
typedef void (*ch_search_match_fn)(void *ud, const ch_event *ev, uint64_t rid);

typedef struct ch_search_opts {
    const char *expr;
    const ch_expr_env *env;      /* for $sets; may be NULL */
    int64_t from_ms, to_ms;      /* inclusive; 0 and 0 mean unbounded */
    bool asc;                    /* oldest first (default newest first) */
    uint64_t limit;              /* matches kept; 0 = CH_SEARCH_DEFAULT_LIMIT */
    const char *count_by;        /* "f[,g...]": count matches per value combination */
    const char *top;             /* "f": most frequent values (limit of them) */
    int64_t histogram_ms;        /* > 0: matches per bucket of this width */
    bool explain;                /* record per segment what was read and why */
    bool no_index;               /* scan every record (benchmarks, and checking the index) */
    size_t max_memory;           /* 0 = CH_SEARCH_DEFAULT_MEMORY */
    int64_t max_ms;              /* 0 = no time bound */
    ch_search_match_fn on_match; /* optional: every match, nothing kept */
    /* on_match reads only normalized fields: the event it gets has no original record, which
     * a format 3 segment then never decompresses (retro-hunts) */
    bool match_typed_only;
    void *match_ud;
    /* Segments read at once, each on a thread of its own; 0 = one per CPU (at most
     * CH_SEARCH_MAX_THREADS). A search with on_match reads on one. The answer does not depend on
     * it; with a limit, segments read side by side may be read where one thread would have
     * stopped before them. */
    unsigned threads;
} ch_search_opts;

typedef enum ch_search_state {
    CH_SEARCH_READY = 0,
    CH_SEARCH_RUNNING,
    CH_SEARCH_DONE,
    CH_SEARCH_CANCELLED,
    CH_SEARCH_TIMEOUT, /* max_ms passed: results are partial */
    CH_SEARCH_MEMORY,  /* max_memory hit: results are partial */
    CH_SEARCH_FAILED,
} ch_search_state;

const char *ch_search_state_name(ch_search_state st);

typedef struct ch_search_progress {
    ch_search_state state;
    uint64_t segments_total, segments_done, segments_skipped, segments_damaged;
    uint64_t events_scanned; /* records decoded and evaluated */
    uint64_t events_matched;
    double elapsed_ms;
} ch_search_progress;

int ch_search_new(const ch_search_opts *opts, ch_search **out, ch_error *err);
void ch_search_free(ch_search *s);
int ch_search_run(ch_search *s, ch_evstore *store, ch_error *err);
void ch_search_cancel(ch_search *s);
void ch_search_progress_get(const ch_search *s, ch_search_progress *out);

/* Kept matches, in order. ev is valid until the next call or free. */
size_t ch_search_nresults(const ch_search *s);
int ch_search_result(ch_search *s, size_t i, const ch_event **ev, uint64_t *rid, ch_error *err);

/* Aggregations: groups in descending count (ties by key). key holds the group's values
 * joined with '\x1f' (the ASCII unit separator) for count-by over several fields. */
size_t ch_search_ngroups(const ch_search *s);
void ch_search_group(const ch_search *s, size_t i, const char **key, uint64_t *count);
/* Names of the grouping fields (count_by or top) and how many. */
size_t ch_search_group_fields(const ch_search *s, const char *const **names);
size_t ch_search_nbuckets(const ch_search *s);
void ch_search_bucket(const ch_search *s, size_t i, int64_t *start_ms, uint64_t *count);

/* --explain text (one line per decision), and the damaged segments met (one per line). */
const char *ch_search_explain(const ch_search *s);
const char *ch_search_damaged(const ch_search *s);

/* Parse "2026-01-05T10:00:00Z", "2026-01-05", a number of ms, or "-7d" / "7d" (ago, from
 * now_ms). CH_EPARSE with the reason. */
int ch_search_parse_time(const char *s, int64_t now_ms, int64_t *out, ch_error *err);

#endif
