/*
 * expr_index.h - a read-only view of a compiled expression's tree for index planners.
 *
 * The event store (store/search.c) answers `field == v`, `in [...]`, `in $set`, CIDR and
 * suffix tests from per-segment term dictionaries: it walks the tree, and for each positive
 * test on a field it indexes it runs the test itself on every term of the dictionary (a few
 * thousand terms instead of millions of events). Running the compiled operator keeps the
 * index's answer identical to the scan's, whatever the operator. Negated tests, `exists`
 * and anything under `not` cannot narrow a candidate set; the planner treats them as "all".
 *
 * Ownership: nodes borrow from the expression and live as long as it.
 */
#ifndef CH_RULES_EXPR_INDEX_H
#define CH_RULES_EXPR_INDEX_H

#include <stdbool.h>
#include <stddef.h>

#include "rules/expr.h"

typedef struct node ch_expr_node;

typedef enum ch_expr_node_kind {
    CH_EXPR_AND,
    CH_EXPR_OR,
    CH_EXPR_NOT,
    CH_EXPR_PRED,
} ch_expr_node_kind;

const ch_expr_node *ch_expr_root(const ch_expr *e);
ch_expr_node_kind ch_expr_node_type(const ch_expr_node *n);
size_t ch_expr_node_nkids(const ch_expr_node *n);
const ch_expr_node *ch_expr_node_kid(const ch_expr_node *n, size_t i);
/* The field path of a test that an index may answer (a positive value test: not negated,
 * not `exists`), or NULL. */
const char *ch_expr_pred_index_field(const ch_expr_node *n);
/* The test of a predicate node on one value, before negation. */
bool ch_expr_pred_test(const ch_expr_node *n, const ch_value *v, ch_expr_scratch *s);
/* The literal of a positive, case-sensitive `==` test against a string or an address (into
 * out, as CH_V_STR or CH_V_IP), so that a planner can look the one term up in a sorted
 * dictionary instead of testing every term; false for any other test. */
bool ch_expr_pred_eq_literal(const ch_expr_node *n, ch_value *out);
/* 1-based column of the node in its source, for --explain. */
size_t ch_expr_node_offset(const ch_expr_node *n);
/* Does some test read a path that is not a normalized slot (so the record must be parsed)? */
bool ch_expr_uses_raw(const ch_expr *e);
/* Does every test read raw paths alone (no normalized slot on either side of any test)? Then an
 * event holding only its original record (ch__ev_decode_orig) gets the full answer, and a
 * search need not decode a record's normalized fields to rule it out. */
bool ch_expr_raw_only(const ch_expr *e);
/* The expression's answer on ev from its normalized fields alone (Kleene logic, every test of a
 * raw path unknown): 1 true or 0 false whatever the raw paths hold, -1 when they decide. Lets a
 * search skip inflating and parsing a record's original JSON when its normalized fields already
 * rule it out (`event.action == "RunInstances" and requestParameters.instanceType == "x"`).
 * ch_expr_typed_can_reject: whether it can ever answer 0 (a test of a raw path alone cannot),
 * so that a search asks only when it may save work. */
int ch_expr_eval_typed(const ch_expr *e, const ch_event *ev, ch_expr_scratch *s);
bool ch_expr_typed_can_reject(const ch_expr *e);
/* The same with the record's original JSON text too: a case-sensitive ==, contains,
 * startswith, endswith or `in [...]` of a raw path, with text literals, is false when the text
 * holds none of its literals and no backslash (an escape could spell one otherwise); and any
 * test of a raw path but `not exists` (a number's compare, a regular expression, !=) is false
 * when such a text lacks the path's last key between quotes (the path then has no value). Lets
 * a search skip parsing records that cannot match (`requestParameters.instanceType ==
 * "p3.16xlarge"`: most records lack the literal; `requestParameters.maxCount > 5`: most lack the
 * key). ch_expr_text_can_reject: whether it can ever answer 0. */
int ch_expr_eval_text(const ch_expr *e, const ch_event *ev, const char *text, size_t n,
                      ch_expr_scratch *s);
bool ch_expr_text_can_reject(const ch_expr *e);
/* The same from the text alone, every test of a normalized field unknown too: lets a search
 * rule a record out before it decodes the record's normalized fields (a raw path's scan spent
 * a fifth of its time decoding rows that the text then rejected). -1 also for a text with a
 * backslash. ch_expr_text_alone_can_reject: whether it can ever answer 0. */
int ch_expr_eval_text_alone(const ch_expr *e, const char *text, size_t n, ch_expr_scratch *s);
bool ch_expr_text_alone_can_reject(const ch_expr *e);

#endif
