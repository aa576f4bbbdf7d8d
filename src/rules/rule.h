/*
 * rule.h - correlation rules: loading them from YAML (one rule a file, libyaml) and the
 * compiled, immutable form the engine (engine.h) runs.
 *
 *     id: CJ-AUTH-01
 *     title: Successful console logins for one user from several countries
 *     severity: 7            # 0..10, like credibility and relevance (required)
 *     credibility: 8
 *     relevance: 8
 *     risk: 40               # added to the user's risk when the rule fires (0..1000, default 0)
 *     where: event.action == "ConsoleLogin" and event.outcome == "success"
 *     correlate: {type: distinct, by: [user.name], field: source.geo.country_iso_code,
 *                 count: 2, within: 1h}
 *     offense: {index: user.name}
 *     responses:
 *       - refset: {name: suspect_users, field: user.name, ttl: 7d}   # type: string by default
 *       - derived: {action: SuspiciousLogin}
 *     tags: [attack.t1078.004]  # MITRE ATT&CK techniques (attack.tNNNN[.NNN]); others ignored
 *     tests:
 *       - {name: GB then RU within 20 minutes, events: tests/two-countries.jsonl, expect: fire}
 *       - {name: launch then mining, events: [tests/ct.jsonl, tests/dns.log], expect: fire}
 *       - {name: listed pool, events: tests/dns.jsonl, intel: [tests/feed.json], expect: fire}
 *       - {name: strict account, events: tests/run.jsonl, context: tests/ctx.yaml, expect: fire}
 *
 * correlate (default {type: none}):
 *   none        every event that matches `where` fires.
 *   threshold   `count` matching events for one key within `within`; with `sum: PATH` the sum
 *               of PATH's numeric values instead (every value of a multi-valued path), and with
 *               `sum: count(PATH)` the number of values of PATH (RunInstances launches
 *               count(responseElements.instancesSet.items.instanceId) instances).
 *   distinct    `count` distinct values of `field` for one key within `within`.
 *   sequence    `steps` in event-time order for one key, first to last within `within`. A step
 *               is {where: EXPR} or {rule: ID} (another rule's hit), optionally with `by:` (a
 *               path or a list as long as the rule's `by`) read from the step's event instead of
 *               the rule's `by`, so that a step's own key field maps onto the common key. A
 *               rule-level `where` is optional and is ANDed with every expression step.
 *   first_seen  a value of `field` never seen before for the key, once `learning` (default: the
 *               engine's) has passed since the first event the engine saw; values seen during
 *               learning are remembered silently.
 * `by` is a list of paths (or one path); the key is the first value of each. An event missing a
 * `by` value does not take part. Durations are written as in expressions: 30s 10m 1h 7d 500ms.
 *
 * Rule files: every *.yml / *.yaml under PACK/rules/ (recursively), or directly in PACK when it
 * has no rules/ folder. Reference sets of a pack (PACK/refsets/NAME.TYPE[.txt], TYPE one of
 * ip, domain, string, number; one entry a line, see refset.h) are loaded by ch_ruleset_load
 * into the registry `in $NAME` resolves through, beside what the caller put there (the business
 * context's lists such as business_countries).
 *
 * Errors name the file, the rule, line and column (1-based) and what was expected; unknown keys
 * are errors so that typos never pass silently.
 *
 * Ownership: ch_ruleset_load allocates a ruleset, ch_ruleset_free releases it and every rule in
 * it. Rules are immutable once loaded and may be shared by several engines and threads. The
 * registry given to the loader is borrowed and must outlive the ruleset (compiled expressions
 * hold handles into it); the ruleset adds the pack's sets to it.
 */
#ifndef CH_RULES_RULE_H
#define CH_RULES_RULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/field.h"
#include "enrich/refset.h"
#include "rules/expr.h"
#include "rules/hit.h"

#define CH_RULE_MAX_FILE (1u << 20) /* bytes of one rule file */
#define CH_RULE_MAX_BY 8            /* paths in `by` */
#define CH_RULE_MAX_STEPS 16        /* steps of a sequence */
#define CH_RULE_MAX_RESPONSES 16
#define CH_RULE_MAX_TESTS 64
#define CH_RULE_MAX_MITRE 8
#define CH_RULESET_MAX_RULES 10000

typedef enum ch_corr_type {
    CH_CORR_NONE = 0,
    CH_CORR_THRESHOLD,
    CH_CORR_DISTINCT,
    CH_CORR_SEQUENCE,
    CH_CORR_FIRST_SEEN,
} ch_corr_type;

const char *ch_corr_type_name(ch_corr_type t);

typedef struct ch_rule_step {
    ch_expr *where;    /* expression step, or NULL */
    char *rule_id;     /* rule step: the id of the rule whose hits advance it, or NULL */
    uint32_t rule_idx; /* its index in the ruleset (resolved after loading all rules) */
    ch_field_ref *by[CH_RULE_MAX_BY]; /* step's own key paths (nby == 0: the rule's) */
    uint32_t nby;
} ch_rule_step;

typedef enum ch_response_kind { CH_RESP_REFSET = 1, CH_RESP_DERIVED } ch_response_kind;

typedef struct ch_rule_response {
    ch_response_kind kind;
    char *name;          /* refset: set name; derived: the derived event's event.action */
    ch_field_ref *field; /* refset: what to add */
    ch_refset_type set_type;
    int64_t ttl_ms; /* refset: 0 = never expires */
} ch_rule_response;

#define CH_RULE_TEST_MAX_FILES 8
typedef struct ch_rule_test {
    char *name;
    /* `events: FILE` or `events: [FILE, ...]`: paths resolved against the rule file's folder;
     * several files (CloudTrail + Route 53 + flows) are merged by event time when run. */
    char *events[CH_RULE_TEST_MAX_FILES];
    uint32_t nevents;
    /* `intel: FILE` or `intel: [FILE, ...]` (optional): STIX bundles or block lists loaded as
     * threat-intelligence sets for this case only (intel/intel_match.h), resolved like events. */
    char *intel[CH_RULE_TEST_MAX_FILES];
    uint32_t nintel;
    /* `context: FILE` (optional): a business context laid over the pack's context.yaml for
     * this case only (only_listed_images, protected_resources...), resolved like events. */
    char *context;
    bool expect_fire;
    unsigned line;
} ch_rule_test;

typedef struct ch_rule {
    ch_rule_info info; /* id, title, pack, severity, credibility, relevance, risk */
    char *file;        /* path it was loaded from */
    ch_expr *where;    /* NULL only for sequences without a rule-level where */
    ch_corr_type type;
    ch_field_ref *by[CH_RULE_MAX_BY];
    uint32_t nby;
    ch_field_ref *field; /* distinct, first_seen */
    ch_field_ref *sum;   /* threshold over a sum */
    bool sum_count;      /* sum: count(path) */
    double count;        /* threshold/distinct: how many (or how much) */
    int64_t within_ms;
    int64_t learning_ms; /* first_seen; -1 = the engine's default */
    ch_rule_step steps[CH_RULE_MAX_STEPS];
    uint32_t nsteps;
    ch_field_ref *index; /* offense index, or NULL */
    ch_rule_response responses[CH_RULE_MAX_RESPONSES];
    uint32_t nresponses;
    ch_rule_test tests[CH_RULE_MAX_TESTS];
    uint32_t ntests;
    /* MITRE ATT&CK techniques from `tags: [attack.t1496.001, ...]` (Sigma's convention), upper
     * case ("T1496.001"); other tags are accepted and not kept. */
    char *mitre[CH_RULE_MAX_MITRE];
    uint32_t nmitre;
} ch_rule;

typedef struct ch_ruleset {
    ch_rule **rules;
    uint32_t n;
    char *pack;          /* pack name: the folder's base name */
    ch_refsets *refsets; /* borrowed */
    ch_expr_env env;
} ch_ruleset;

/* Messages for each bad rule: "FILE:LINE:COL: RULE: what was expected". */
typedef void (*ch_rule_msg_fn)(void *ud, const char *msg);

/* An `in $name` resolver over a registry (contains = lookup at the event's time). */
void ch_rule_env_init(ch_expr_env *env, ch_refsets *refsets);
/* Internal (engine): the event time reference-set lookups use on this thread, so that
 * elements with a time-to-live match only while valid at the event's time. */
void ch__rule_env_set_time(int64_t ms);

/* Load one rule from text (name: the file, for messages and relative test paths). env is used
 * for `in $name`, refsets for refset responses (sets are created with ch_refsets_ensure).
 * Returns 0 or CH_EPARSE/CH_ELIMIT/CH_ENOMEM with err->msg "FILE:LINE:COL: RULE: ...". */
int ch_rule_load_mem(const char *name, const char *text, size_t n, const ch_expr_env *env,
                     ch_refsets *refsets, ch_rule **out, ch_error *err);
void ch_rule_free(ch_rule *r);

/* Load a pack (see above). Every bad rule is reported through msg (may be NULL) and counted;
 * the result is CH_EPARSE when any rule (or reference set) was bad, with *out NULL. Also
 * checks: unique ids, sequence steps naming existing rules (and no cycles through them). */
int ch_ruleset_load(const char *dir, ch_refsets *refsets, ch_rule_msg_fn msg, void *ud,
                    ch_ruleset **out, ch_error *err);
/* Build a ruleset from rules already loaded (takes ownership of rules[0..n) and the array, also
 * on failure). */
int ch_ruleset_from_rules(ch_rule **rules, uint32_t n, const char *pack, ch_refsets *refsets,
                          ch_ruleset **out, ch_error *err);
void ch_ruleset_free(ch_ruleset *rs);
/* Index of the rule with that id, or -1. */
int ch_ruleset_find(const ch_ruleset *rs, const char *id);

#endif
