/*
 * expr.h - the expression language that selects events, in rules and in search.
 *
 *     event.action == "ConsoleLogin" and event.outcome == "success"
 *         and source.geo.country_iso_code not in $business_countries
 *
 * An expression is compiled once (ch_expr_compile): field paths are resolved (core/field.h),
 * literals typed and pre-parsed, lists built into hash sets, regular expressions compiled
 * with the PCRE2 JIT, named sets resolved through the caller's ch_expr_env. The compiled form
 * is an immutable tree; ch_expr_eval walks it per event and never parses anything.
 *
 * The language (this comment is its reference; `coinhound help` can print it):
 *   field paths  user.name, requestParameters.instanceType, `odd path`, tcp-flags
 *   literals     "str\n" (JSON escapes)  'raw\d+' (no escapes)  42  -1.5  true false
 *                10m 24h 7d 30s 500ms 2w (durations, in ms)  10.0.0.1  10.0.0.0/8  2001:db8::/32
 *   comparison   == != < <= > >=          =~ !~ (case-insensitive == and !=)
 *   membership   in [v, ...]   in $name   in 10.0.0.0/8   not in ...   in~ (case-insensitive)
 *   strings      contains startswith endswith matches "regex"   with ~ for case-insensitive
 *                (contains~ "kali"); "not" before any of them negates it (not contains)
 *   presence     exists   not exists
 *   logic        not > and > or (also ! && ||, and AND OR NOT), parentheses, # comments
 * Keywords (and, or, not, in, exists, contains, startswith, endswith, matches, true, false)
 * are reserved; a raw field with such a name goes between backquotes. Sigma maps as: a plain
 * value -> =~, |contains -> contains~, |startswith/|endswith -> startswith~/endswith~,
 * |re -> matches, |cidr -> in, a list of values -> in~ [...] (Sigma is case-insensitive).
 * Semantics: a field with several values (an array in the record, dns.answers) matches when
 * any value matches; its negated forms (!=, !~, not in, not contains, ...) match when the
 * field is present and no value matches. A missing field makes every test false except
 * `not exists` (and an explicit `not (...)` around it). Numbers compare numerically, also
 * against strings that hold numbers when the literal is a number; addresses compare as
 * addresses (CIDR containment with `in`); strings compare bytewise, case-insensitive forms
 * fold ASCII only. Time fields (@timestamp) accept ISO 8601 string literals.
 *
 * Ownership: ch_expr_compile allocates the expression, ch_expr_free releases it. A compiled
 * expression is read-only and may be evaluated by several threads at once, each with its
 * own ch_expr_scratch. The env's user pointer and the handles its resolver returns must
 * outlive the expression (release is called for each handle by ch_expr_free).
 */
#ifndef CH_RULES_EXPR_H
#define CH_RULES_EXPR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/event.h"
#include "core/field.h"

#define CH_EXPR_MAX_LEN 65536             /* bytes of source */
#define CH_EXPR_MAX_DEPTH 128             /* nesting of parentheses and `not` */
#define CH_EXPR_MAX_LIST 100000           /* elements of one [...] list */
#define CH_EXPR_MAX_REGEX 4096            /* bytes of one regular expression */
#define CH_EXPR_REGEX_MATCH_LIMIT 1000000 /* PCRE2 match limit: a runaway regex is a non-match */

/* How names after `in $` are found. The resolver runs at compile time; contains runs per
 * value at evaluation time (from several threads if the caller evaluates in parallel, and
 * for each value of a multi-valued field). */
typedef struct ch_expr_env {
    /* Look up name[0..n) and set *handle. Return 0, or CH_ENOTFOUND (the compile error then
     * says the set is unknown), or another negative code with err filled. */
    int (*resolve)(void *user, const char *name, size_t n, void **handle, ch_error *err);
    /* Is v in the set? icase is true for `in~`. */
    bool (*contains)(void *user, void *handle, const ch_value *v, bool icase);
    /* Optional: called once per resolved handle when the expression is freed. */
    void (*release)(void *user, void *handle);
    void *user;
} ch_expr_env;

typedef struct ch_expr ch_expr;

/* Compile src (NUL-terminated, or src[0..n) for the _n form). env may be NULL when the
 * expression uses no `$name`. On failure returns CH_EPARSE (or CH_ELIMIT for a cap,
 * CH_ENOMEM) and err->msg names what was expected and where, 1-based line:column counted in
 * characters: "expected a value after '==' at 1:17, found ')'". The caller prefixes the file
 * and rule. */
int ch_expr_compile(const char *src, const ch_expr_env *env, ch_expr **out, ch_error *err);
int ch_expr_compile_n(const char *src, size_t n, const ch_expr_env *env, ch_expr **out,
                      ch_error *err);
void ch_expr_free(ch_expr *e);

/* The source text the expression was compiled from. */
const char *ch_expr_source(const ch_expr *e);

/* Per-thread evaluation state: PCRE2 match data and JIT stack, the field cache, counters.
 * One scratch serves any number of expressions, but one thread at a time. */
typedef struct ch_expr_scratch ch_expr_scratch;
ch_expr_scratch *ch_expr_scratch_new(void); /* NULL when out of memory */
void ch_expr_scratch_free(ch_expr_scratch *s);
/* Regex matches abandoned because they hit CH_EXPR_REGEX_MATCH_LIMIT or another PCRE2
 * error (each counted as a non-match). */
uint64_t ch_expr_scratch_regex_errors(const ch_expr_scratch *s);

/* Does ev match? s must come from ch_expr_scratch_new (NULL works but is slow: a scratch is
 * created and freed for the call). */
bool ch_expr_eval(const ch_expr *e, const ch_event *ev, ch_expr_scratch *s);

/* What an event must carry for e to match, so that a rule engine can index its rules and an
 * event meets only the rules that can match it. Derived from the top-level conjunction
 * (and, through `or`, the union over branches that all constrain):
 * `event.dataset == "x"` / `in [...]` and `event.action == "X"` / `in [...]`. */
typedef struct ch_expr_hints {
    bool by_dataset;      /* only events of the datasets in `datasets` can match */
    uint32_t datasets;    /* bit (1u << ch_dataset) per dataset; 0: nothing can match */
    bool by_action;       /* only events whose event.action is in `actions` can match */
    size_t nactions;      /* 0 with by_action: nothing can match */
    const ch_sv *actions; /* exact bytes; borrowed from e, valid until ch_expr_free */
} ch_expr_hints;
void ch_expr_dispatch_hints(const ch_expr *e, ch_expr_hints *out);

#endif
