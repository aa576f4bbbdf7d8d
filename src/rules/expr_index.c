/*
 * expr_index.c - the tree view of expr_index.h: accessors over expr_int.h's nodes, so the
 * store's planner needs no knowledge of the compiler's internals.
 */
#include "rules/expr_index.h"

#include "rules/expr_int.h"

const ch_expr_node *ch_expr_root(const ch_expr *e) { return e->root; }

ch_expr_node_kind ch_expr_node_type(const ch_expr_node *n)
{
    switch (n->kind) {
    case N_AND:
        return CH_EXPR_AND;
    case N_OR:
        return CH_EXPR_OR;
    case N_NOT:
        return CH_EXPR_NOT;
    default:
        return CH_EXPR_PRED;
    }
}

size_t ch_expr_node_nkids(const ch_expr_node *n) { return n->kind == N_PRED ? 0 : n->nkids; }

const ch_expr_node *ch_expr_node_kid(const ch_expr_node *n, size_t i) { return n->kids[i]; }

const char *ch_expr_pred_index_field(const ch_expr_node *n)
{
    if (n->kind != N_PRED || n->neg || n->op->test == NULL || n->ds_fast || n->field == NULL)
        return NULL;
    return ch_field_ref_path(n->field);
}

bool ch_expr_pred_test(const ch_expr_node *n, const ch_value *v, ch_expr_scratch *s)
{
    return n->op->test != NULL && n->op->test(n, v, s);
}

bool ch_expr_pred_eq_literal(const ch_expr_node *n, ch_value *out)
{
    if (n->kind != N_PRED || n->neg || n->op != &ch__op_eq || n->icase || n->ds_fast ||
        n->field == NULL)
        return false;
    if (n->lit.kind == L_STR) {
        out->type = CH_V_STR;
        out->u.s = n->lit.s;
        return true;
    }
    if (n->lit.kind == L_IP) {
        out->type = CH_V_IP;
        out->u.ip = n->lit.ip;
        return true;
    }
    return false;
}

size_t ch_expr_node_offset(const ch_expr_node *n) { return (size_t)n->pos + 1; }

bool ch__expr_pred_raw(const node *n)
{
    return !n->ds_fast && ((n->field != NULL && ch_field_ref_info(n->field) == NULL) ||
                           (n->rfield != NULL && ch_field_ref_info(n->rfield) == NULL));
}

static bool uses_raw(const node *n)
{
    if (n->kind == N_PRED)
        return ch__expr_pred_raw(n);
    for (uint32_t i = 0; i < n->nkids; i++)
        if (uses_raw(n->kids[i]))
            return true;
    return false;
}

bool ch_expr_uses_raw(const ch_expr *e) { return uses_raw(e->root); }

/* Whether normalized fields alone can make n false (want 0) or true (want 1) for some event:
 * the static shape of ch_expr_eval_typed's answers. */
static bool typed_decides(const node *n, int want)
{
    switch (n->kind) {
    case N_PRED:
        return !ch__expr_pred_raw(n);
    case N_NOT:
        return typed_decides(n->kids[0], !want);
    case N_AND:
    case N_OR: {
        /* one kid decides the short-circuit answer; the other answer needs every kid */
        bool one = (n->kind == N_AND) == (want == 0);
        for (uint32_t i = 0; i < n->nkids; i++)
            if (typed_decides(n->kids[i], want) == one)
                return one;
        return !one;
    }
    }
    return false;
}

bool ch_expr_typed_can_reject(const ch_expr *e) { return typed_decides(e->root, 0); }
