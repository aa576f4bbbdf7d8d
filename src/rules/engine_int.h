/*
 * engine_int.h - the inside of the correlation engine (engine.h), for its own files only: the
 * engine object, the state of one (rule, key), the helpers every correlation type shares, and
 * the table through which the correlation types register.
 *
 * A correlation type is one file (corr_none.c, corr_window.c, corr_first_seen.c,
 * corr_sequence.c), as Suricata keeps one keyword per detect-*.c: it fills a ch__corr_type with
 * what a rule of that type does with an event that dispatch selected, what it does when a rule
 * it waits on fires (sequences), and how the part of a key's state that is its own is saved,
 * restored, freed and expired. What every type shares stays in engine.c: dispatch, the key table
 * and its expiry heap, window entries, hits with their evidence and responses, and the
 * per-event loop. engine_state.c writes and reads the state file.
 * Adding a correlation type is adding its file, its ch_corr_type value (rule.h, with the
 * loader's parsing) and its line in engine.c's table; nothing in the per-event loop switches
 * on the type.
 *
 * The helpers that run per event per rule (accounting, the watermark, evaluation) are static
 * inline here: the split into files must not cost the hot path a call each.
 */
#ifndef CH_RULES_ENGINE_INT_H
#define CH_RULES_ENGINE_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/field.h"
#include "core/heap.h"
#include "rules/engine.h"
#include "rules/expr.h"

#define ENG_KEY_MAX 1024       /* bytes of a key text */
#define ENG_VALUE_TEXT_MAX 128 /* bytes of a value kept for evidence */
#define ENG_MAX_VALUES 64      /* distinct values taken from one event */
#define ENG_MAX_DEPTH 4        /* derived events and rule steps feeding each other */
#define ENG_NO_TIME INT64_MIN

/* One window entry (threshold, distinct) or remembered value (first_seen). */
typedef struct eng_entry {
    int64_t ts;
    double w;
    uint64_t vh;
    char *text; /* "EVENTID\0VALUE\0" (either may be empty), or NULL */
    uint32_t tlen;
} eng_entry;

/* The state of one (rule, key): a node of the engine's chained hash table. */
typedef struct eng_key {
    struct eng_key *hnext;
    uint64_t hash;
    uint32_t rule;
    uint32_t in_heap; /* has an element in the heap (maybe with an older expiry) */
    int64_t expire_at;
    int64_t quiet_until;
    int64_t consumed_until;
    eng_entry *ent; /* sorted by time (window) or by value hash (first_seen) */
    uint32_t nent, cap;
    void *ext; /* the correlation type's own state (a sequence's progress), or NULL */
    uint32_t klen;
    char key[];
} eng_key;

/* ---- correlation types ----------------------------------------------------------------------- */

typedef struct ch__corr_type {
    ch_corr_type type;
    /* Rule ri met ev through dispatch (late: ev is older than the watermark; the type counts it
     * in stats.late if it refuses late events). Returns the hits (>= 0). */
    int (*process)(ch_engine *e, uint32_t ri, const ch_event *ev, bool late);
    /* Step `step` of rule ri is another rule's hit, and that rule fired on ev at ts. NULL when
     * the type has no rule steps. Returns the hits. */
    int (*on_rule_hit)(ch_engine *e, uint32_t ri, uint32_t step, const ch_event *ev, int64_t ts);
    /* The state file, after a key's entries (engine_state.c): write the type's own state of k;
     * read it back into k, or only skip it when k is NULL (its rule is gone or changed type):
     * 0, CH_EPARSE (truncated or damaged) or CH_ENOMEM. NULL: the type has none, written as a
     * u32 0 (version 1 of the file has that field for every key). */
    bool (*save)(FILE *f, const eng_key *k);
    int (*load)(ch_engine *e, const ch_rule *r, eng_key *k, FILE *f);
    /* Free k->ext (NULL: the type keeps none). */
    void (*free_ext)(ch_engine *e, eng_key *k);
    /* When a key restored from a state file expires, as processing would have set it
     * (ENG_NO_TIME: never). NULL: never. */
    int64_t (*expiry)(const ch_rule *r, const eng_key *k);
} ch__corr_type;

extern const ch__corr_type ch__corr_none;
extern const ch__corr_type ch__corr_threshold;
extern const ch__corr_type ch__corr_distinct;
extern const ch__corr_type ch__corr_first_seen;
extern const ch__corr_type ch__corr_sequence;

/* The registered type for t, or NULL. */
const ch__corr_type *ch__corr_type_of(ch_corr_type t);

/* ---- the engine ------------------------------------------------------------------------------ */

typedef ch_heap_elem eng_hent; /* key = expiry time, order = insertion count, item = eng_key */

typedef struct eng_rlist {
    uint32_t *v;
    uint32_t n, cap;
} eng_rlist;

typedef struct eng_aslot {
    uint8_t used;
    uint8_t ds;
    ch_sv action;
    eng_rlist rules;
} eng_aslot;

typedef struct eng_wait { /* a rule step waiting on another rule's hits */
    uint32_t rule, step;
} eng_wait;

struct ch_engine {
    const ch_ruleset *rs;
    const ch__corr_type **corr; /* per rule: its type */
    ch_engine_opts o;
    ch_hit_fn fn;
    void *ud;
    ch_expr_scratch *scratch;
    ch_field_cache cache;

    eng_rlist any[CH_DS__COUNT]; /* rules with no action constraint, per dataset */
    eng_aslot *amap;             /* (dataset, action) -> rules */
    size_t amap_cap;
    uint64_t amap_sig[4]; /* action_sig of every action in amap: most events' is not */
    eng_wait **waits;     /* per rule: steps waiting on its hits */
    uint32_t *nwaits;

    eng_key **tab;
    size_t tab_cap;
    eng_hent *heap;
    size_t heap_n, heap_cap;
    uint64_t order;

    int64_t max_ts, t0;
    uint64_t *rule_hits, *rule_evals;
    bool *disabled; /* per rule: run state set by ch_engine_set_enabled, never the ruleset */
    ch_engine_stats st;
    ch_buf evidence;
    int depth;
};

static inline void ch__eng_account(ch_engine *e, int64_t delta)
{
    e->st.bytes = (uint64_t)((int64_t)e->st.bytes + delta);
    if (e->st.bytes > e->st.bytes_peak)
        e->st.bytes_peak = e->st.bytes;
}

static inline int64_t ch__eng_watermark(const ch_engine *e)
{
    return e->max_ts == ENG_NO_TIME ? ENG_NO_TIME : e->max_ts - e->o.lateness_ms;
}

static inline bool ch__eng_eval(ch_engine *e, uint32_t ri, const ch_expr *x, const ch_event *ev)
{
    e->st.evaluations++;
    e->rule_evals[ri]++;
    return ch_expr_eval(x, ev, e->scratch);
}

/* The state file's primitives: n bytes in host order (the state moves between restarts of one
 * server, not between machines); false on a short write or read. */
static inline bool ch__eng_put(FILE *f, const void *p, size_t n)
{
    return n == 0 || fwrite(p, n, 1, f) == 1;
}
static inline bool ch__eng_get(FILE *f, void *p, size_t n)
{
    return n == 0 || fread(p, n, 1, f) == 1;
}

/* ---- keys and their state (engine.c) --------------------------------------------------------- */

/* Find or (create) the state of (rule, key). NULL when absent and not created, or refused by
 * a cap (counted) or memory. Keys are freed only by expiry and ch_engine_free, so a pointer
 * stays valid for the rest of the event. */
eng_key *ch__eng_key_get(ch_engine *e, uint32_t rule, const char *key, uint32_t klen, bool create);
/* Set the key's expiry (ENG_NO_TIME: never); the key is freed once the watermark passes it. */
int ch__eng_expire_at(ch_engine *e, eng_key *k, int64_t at);

/* The key text: the first value of each path, joined by 0x1f. false when one is missing. */
bool ch__eng_make_key(ch_engine *e, ch_field_ref *const *by, uint32_t nby, const ch_event *ev,
                      char *out, uint32_t *len);
/* The common start of a keyed rule (threshold, distinct, first_seen): its `where` matched, the
 * event is not late (else counted) and has a value for every `by` path (else counted). Inline:
 * it runs for every such rule on every event that dispatch gives it. */
static inline bool ch__eng_select(ch_engine *e, uint32_t ri, const ch_event *ev, bool late,
                                  char *key, uint32_t *klen)
{
    const ch_rule *r = e->rs->rules[ri];
    if (!ch__eng_eval(e, ri, r->where, ev))
        return false;
    if (late) {
        e->st.late++;
        return false;
    }
    if (!ch__eng_make_key(e, r->by, r->nby, ev, key, klen)) {
        e->st.no_key++;
        return false;
    }
    return true;
}

/* Room for one more entry (CH_ELIMIT at the entry or memory cap, CH_ENOMEM). */
int ch__eng_ent_reserve(ch_engine *e, eng_key *k);
void ch__eng_entry_free(ch_engine *e, eng_entry *en);
/* "EVENTID\0VALUE\0" for an entry (accounted), or NULL when both are empty. */
char *ch__eng_entry_text(ch_engine *e, const ch_event *ev, const char *val, uint32_t vlen,
                         uint32_t *tlen);

/* Values of a path in one event: distinct texts and their hashes, and the numeric sum. */
typedef struct eng_vals {
    uint32_t n;
    uint64_t vh[ENG_MAX_VALUES];
    char text[ENG_MAX_VALUES][ENG_VALUE_TEXT_MAX];
    uint32_t tlen[ENG_MAX_VALUES];
    double sum;
    uint64_t count;
} eng_vals;

/* Ready for ch__eng_collect_value: only the counters. The arrays (9 KB) are written before they
 * are read (entries [0, n)), and zeroing them cost every keyed event of a window or first-seen
 * rule a 9 KB memset. */
static inline void ch__eng_vals_init(eng_vals *vs)
{
    vs->n = 0;
    vs->sum = 0;
    vs->count = 0;
}

/* A ch_field_visit callback filling an eng_vals (ch__eng_vals_init by the caller). */
bool ch__eng_collect_value(void *ctx, const ch_value *v);

/* ---- hits (engine.c) ------------------------------------------------------------------------- */

typedef struct eng_hitctx {
    ch_sv ids[CH_HIT_MAX_EVENT_IDS];
    uint32_t nids;
    uint64_t count;
    int64_t first;
} eng_hitctx;

static inline void ch__eng_hit_add_id(eng_hitctx *hc, const char *id)
{
    if (id && *id && hc->nids < CH_HIT_MAX_EVENT_IDS)
        hc->ids[hc->nids++] = (ch_sv){id, (uint32_t)strlen(id)};
}

/* Evidence is built in e->evidence before ch__eng_emit: begin clears it. */
static inline void ch__eng_evidence_begin(ch_engine *e) { ch_buf_clear(&e->evidence); }
/* " for PATH=VALUE, ..." naming the key of k (nothing when the rule has no `by`). */
void ch__eng_evidence_key(ch_engine *e, const ch_rule *r, const eng_key *k);
/* A duration as a rule writes it: 1h, 10m, 30s, 500ms. */
void ch__eng_evidence_dur(ch_buf *b, int64_t ms);

/* Report a hit of rule ri on ev at ts with the evidence built so far, then run the rule's
 * responses and the steps waiting on it. Returns 1. */
int ch__eng_emit(ch_engine *e, uint32_t ri, const ch_event *ev, int64_t ts, eng_hitctx *hc);

#endif
