/*
 * expr_eval.c - evaluation of a compiled expression against one event.
 *
 * A walk of the immutable tree: and/or short-circuit over their operands in source order,
 * a predicate visits the values of its field (core/field.h) and asks its operator about each
 * until one satisfies it. Negated predicates (!=, not in, not contains...) hold when the field
 * has at least one value and none satisfies the operator, which is the "missing field makes
 * every test false" rule for them. The walk allocates nothing; regex matching uses the
 * scratch's match data, JIT stack and match limit, made once per thread.
 *
 * Cost per predicate: one field read (a load for normalized slots, one object lookup per
 * segment for raw JSON paths), then the operator: a compare, a hash probe for lists, a
 * memmem, or a JIT regex run.
 */
#include <string.h>

#include "rules/expr_int.h"

ch_expr_scratch *ch_expr_scratch_new(void)
{
    ch_expr_scratch *s = ch_calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    ch_field_cache_init(&s->cache);
    /* One ovector pair is all a yes/no match needs, whatever the pattern. */
    s->md = pcre2_match_data_create(1, NULL);
    s->mctx = pcre2_match_context_create(NULL);
    s->jit = pcre2_jit_stack_create(32 * 1024, 512 * 1024, NULL);
    if (s->md == NULL || s->mctx == NULL) {
        ch_expr_scratch_free(s);
        return NULL;
    }
    pcre2_set_match_limit(s->mctx, CH_EXPR_REGEX_MATCH_LIMIT);
    pcre2_set_depth_limit(s->mctx, 10000);
    if (s->jit != NULL)
        pcre2_jit_stack_assign(s->mctx, NULL, s->jit);
    return s;
}

void ch_expr_scratch_free(ch_expr_scratch *s)
{
    if (s == NULL)
        return;
    pcre2_match_data_free(s->md);
    pcre2_match_context_free(s->mctx);
    pcre2_jit_stack_free(s->jit);
    ch_free(s);
}

uint64_t ch_expr_scratch_regex_errors(const ch_expr_scratch *s) { return s->regex_errors; }

typedef struct pred_ctx {
    const node *n;
    ch_expr_scratch *s;
    bool hit;
} pred_ctx;

static bool pred_visit(void *ctx, const ch_value *v)
{
    pred_ctx *c = ctx;
    if (c->n->op->test(c->n, v, c->s)) {
        c->hit = true;
        return true;
    }
    return false;
}

static bool stop_at_first(void *ctx, const ch_value *v)
{
    (void)ctx;
    (void)v;
    return true;
}

static bool eval_node(const node *n, const ch_event *ev, ch_expr_scratch *s)
{
    switch (n->kind) {
    case N_AND:
        for (uint32_t i = 0; i < n->nkids; i++)
            if (!eval_node(n->kids[i], ev, s))
                return false;
        return true;
    case N_OR:
        for (uint32_t i = 0; i < n->nkids; i++)
            if (eval_node(n->kids[i], ev, s))
                return true;
        return false;
    case N_NOT:
        return !eval_node(n->kids[0], ev, s);
    case N_PRED:
        break;
    }
    if (n->op->test == NULL) { /* exists */
        bool present = ch_field_visit(n->field, ev, &s->cache, stop_at_first, NULL) > 0;
        return present != n->neg;
    }
    pred_ctx c = {n, s, false};
    size_t seen = ch_field_visit(n->field, ev, &s->cache, pred_visit, &c);
    return n->neg ? (seen > 0 && !c.hit) : c.hit;
}

bool ch_expr_eval(const ch_expr *e, const ch_event *ev, ch_expr_scratch *s)
{
    if (s != NULL)
        return eval_node(e->root, ev, s);
    ch_expr_scratch *tmp = ch_expr_scratch_new();
    if (tmp == NULL)
        return false;
    bool r = eval_node(e->root, ev, tmp);
    ch_expr_scratch_free(tmp);
    return r;
}
