/*
 * expr_index.c - the tree view of expr_index.h: accessors over expr_int.h's nodes, so the
 * store's planner needs no knowledge of the compiler's internals.
 */
#include "rules/expr_index.h"

#include <string.h>

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

/* Does some test under n satisfy is? */
static bool any_pred(const node *n, bool (*is)(const node *))
{
    if (n->kind == N_PRED)
        return is(n);
    for (uint32_t i = 0; i < n->nkids; i++)
        if (any_pred(n->kids[i], is))
            return true;
    return false;
}

bool ch_expr_uses_raw(const ch_expr *e) { return any_pred(e->root, ch__expr_pred_raw); }

/* A test that reads a normalized slot on either side (or the dataset's bit). */
static bool pred_reads_slot(const node *n)
{
    return n->ds_fast || n->field == NULL || ch_field_ref_info(n->field) != NULL ||
           (n->rfield != NULL && ch_field_ref_info(n->rfield) != NULL);
}

bool ch_expr_raw_only(const ch_expr *e) { return !any_pred(e->root, pred_reads_slot); }

/* Whether normalized fields alone (and with text, the record's text: a test ch__expr_pred_text or
 * ch__expr_pred_key takes, as mark_text_tests found, can be false) can make n false (want 0) or
 * true (want 1) for some event: the static shape of the answers of ch_expr_eval_typed and
 * ch_expr_eval_text. */
static bool decides(const node *n, int want, bool text, bool typed)
{
    switch (n->kind) {
    case N_PRED:
        return (typed && !ch__expr_pred_raw(n)) ||
               (text && want == 0 && (n->text_lit || n->text_key));
    case N_NOT:
        return decides(n->kids[0], !want, text, typed);
    case N_AND:
    case N_OR: {
        /* one kid decides the short-circuit answer; the other answer needs every kid */
        bool one = (n->kind == N_AND) == (want == 0);
        for (uint32_t i = 0; i < n->nkids; i++)
            if (decides(n->kids[i], want, text, typed) == one)
                return one;
        return !one;
    }
    }
    return false;
}

bool ch_expr_typed_can_reject(const ch_expr *e) { return decides(e->root, 0, false, true); }

/* A literal whose absence from a record's JSON text (one without a backslash) proves that no
 * value there equals, holds, starts or ends with it: text that no number, boolean or address
 * reads as, since those compare by value (1e2 == 100), and with a character outside a number's
 * own, since a number's text as the test sees it need not be its text in the record; four
 * bytes at least. */
static bool text_safe(ch_sv t)
{
    /* Shorter literals are in most records (a CloudTrail record is 1.3 KB of JSON): looking for
     * them would cost more than the parses it saves. */
    if (t.n < 4 || ch__sv_ieq(t, CH_SV("true")) || ch__sv_ieq(t, CH_SV("false")))
        return false;
    ch_ip ip;
    if (ch_ip_parse(t.p, t.n, &ip))
        return false;
    for (size_t i = 0; i < t.n; i++)
        if (strchr("0123456789+-.eE", t.p[i]) == NULL || t.p[i] == '\0')
            return true;
    return false;
}

bool ch__expr_pred_text(const node *n)
{
    if (n->kind != N_PRED || !ch__expr_pred_raw(n) || n->neg || n->icase || n->rfield != NULL)
        return false;
    if (n->op == &ch__op_eq)
        return n->lit.kind == L_STR && !n->lit.has_num && !n->lit.has_bool && !n->lit.has_ip &&
               text_safe(n->lit.s);
    if (n->op == &ch__op_contains || n->op == &ch__op_startswith || n->op == &ch__op_endswith)
        return n->lit.kind == L_STR && text_safe(n->lit.s);
    if (n->op == &ch__op_matches) {
        /* Every match holds one of the prefilter's literals (expr_prefilter.c): a text without
         * any of them holds no value that matches. Not for a caseless pattern, whose literals
         * the text could spell in other cases. */
        const ch_re_prefilter *pf = n->re_pf;
        if (pf == NULL || pf->icase || pf->nlit == 0)
            return false;
        for (int i = 0; i < pf->nlit; i++)
            if (!text_safe((ch_sv){pf->lit[i], pf->len[i]}))
                return false;
        return true;
    }
    const ch_sv *m;
    size_t k;
    if (n->op != &ch__op_in_list || n->set == NULL || !ch__vset_strings(n->set, &m, &k) || k == 0)
        return false;
    for (size_t i = 0; i < k; i++)
        if (!text_safe(m[i]))
            return false;
    return true;
}

/* A raw path's test that is false when the path has no value (every test but `not exists`;
 * not a compare of two fields, whose other side may be a slot), on a path whose last key a JSON
 * text without a backslash must spell as it is, between quotes, to hold it: no quote, backslash
 * or control character in it, which JSON writes escaped. Its record's text lacking that key
 * rules it out, whatever the operator: a number's compare, a regular expression, `!=`
 * (docs/BENCHMARKS.md section 73). */
bool ch__expr_pred_key(const node *n)
{
    if (n->kind != N_PRED || !ch__expr_pred_raw(n) || n->rfield != NULL || n->field == NULL ||
        (n->op->test == NULL && n->neg))
        return false;
    ch_sv k = ch_field_ref_last_key(n->field);
    if (k.n == 0)
        return false;
    for (size_t i = 0; i < k.n; i++)
        if (k.p[i] == '"' || k.p[i] == '\\' || (unsigned char)k.p[i] < 0x20)
            return false;
    return true;
}

static bool pred_text_or_key(const node *n) { return n->text_lit || n->text_key; }

/* Only where a test of the text can make the difference: without one, the normalized fields
 * decide alone. */
bool ch_expr_text_can_reject(const ch_expr *e)
{
    return any_pred(e->root, pred_text_or_key) && decides(e->root, 0, true, true);
}

bool ch_expr_text_alone_can_reject(const ch_expr *e)
{
    return any_pred(e->root, pred_text_or_key) && decides(e->root, 0, true, false);
}
