/*
 * expr.c - parser and compiler of the expression language, dispatch hints, lifetime.
 *
 * Recursive descent over the grammar
 *     or    := and ('or' and)*
 *     and   := unary ('and' unary)*
 *     unary := 'not' unary | '(' or ')' | pred
 *     pred  := path ( 'exists' | ['not'] word-op value | cmp-op value )
 * with one token of lookahead. Recursion happens only through '(' and 'not', and both count
 * against CH_EXPR_MAX_DEPTH, so a hostile input (100,000 parentheses) is an error, not a
 * stack overflow. Chains of and/or are loops that build one n-ary node, so long rules do not
 * deepen the tree that ch_expr_eval walks.
 *
 * Compilation happens as the parser goes: a predicate leaves the parser with its field
 * resolved, its literal typed (and checked against the field's declared type when the field
 * is a normalized slot, so that `source.port == "https"` is an error at load time rather than
 * a rule that never fires), its list built into a hash set, its regex JIT-compiled. All of it
 * lives in the expression's arena, except field refs and PCRE2 codes, which are recorded in
 * the expression as they are made so that one ch_expr_free releases everything, also after
 * an error halfway through.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/timeparse.h"
#include "rules/expr_int.h"

typedef struct parser {
    lexer lx;
    tok t; /* lookahead */
    ch_expr *e;
    ch_error *err;
    unsigned depth;
} parser;

static int advance(parser *p) { return ch__expr_lex(&p->lx, &p->t); }

/* "<what> at L:C, found X" at token t. */
static int perr(parser *p, const tok *t, int code, const char *what)
{
    unsigned l, c;
    char d[64];
    ch__expr_linecol(p->lx.src, p->lx.n, t->pos, &l, &c);
    return ch_error_set(p->err, code, "%s at %u:%u, found %s", what, l, c,
                        ch__expr_tok_desc(&p->lx, t, d, sizeof d));
}

/* "<what> at L:C" at byte pos, with an optional detail after. */
static int perr_at(parser *p, size_t pos, int code, const char *what, const char *detail)
{
    unsigned l, c;
    ch__expr_linecol(p->lx.src, p->lx.n, pos, &l, &c);
    return ch_error_set(p->err, code, "%s at %u:%u%s%s", what, l, c, detail ? ": " : "",
                        detail ? detail : "");
}

/* Grow one of the expression's owner lists by one slot. */
static int push(void ***arr, size_t *n, size_t *cap, void *item)
{
    if (*n == *cap) {
        void **na = ch_grow(*arr, cap, 8, sizeof *na);
        if (na == NULL)
            return CH_ENOMEM;
        *arr = na;
    }
    (*arr)[(*n)++] = item;
    return 0;
}

static node *new_node(parser *p, node_kind k, uint32_t pos)
{
    node *n = ch_arena_alloc(&p->e->arena, sizeof *n);
    if (n == NULL) {
        ch_error_set(p->err, CH_ENOMEM, "out of memory");
        return NULL;
    }
    memset(n, 0, sizeof *n);
    n->kind = k;
    n->pos = pos;
    return n;
}

static void lower_ascii(char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 'A' && s[i] <= 'Z')
            s[i] = (char)(s[i] | 0x20);
}

/* A literal from token t (already checked to be a value token). */
static void lit_from_tok(const tok *t, bool icase, lit *l)
{
    memset(l, 0, sizeof *l);
    switch (t->k) {
    case T_STR:
        l->kind = L_STR;
        if (icase)
            lower_ascii(t->str, t->slen);
        l->s = (ch_sv){t->str, t->slen};
        l->has_num = ch_parse_number(t->str, t->slen, &l->num_int, &l->i, &l->d);
        l->has_ip = ch_ip_parse(t->str, t->slen, &l->ip);
        if (ch__sv_ieq(l->s, CH_SV("true")) || ch__sv_ieq(l->s, CH_SV("false"))) {
            l->has_bool = true;
            l->b = (t->str[0] | 0x20) == 't';
        }
        break;
    case T_NUM:
    case T_DUR:
        l->kind = L_NUM;
        l->has_num = true;
        l->num_int = t->is_int;
        l->i = t->i;
        l->d = t->d;
        break;
    case T_TRUE:
    case T_FALSE:
        l->kind = L_BOOL;
        l->has_bool = true;
        l->b = t->k == T_TRUE;
        break;
    case T_IP:
    case T_CIDR:
        l->kind = t->k == T_IP ? L_IP : L_CIDR;
        l->has_ip = t->k == T_IP;
        l->ip = t->ip;
        l->prefix = t->prefix;
        break;
    default:
        break;
    }
}

static bool is_value(tok_kind k)
{
    return k == T_STR || k == T_NUM || k == T_DUR || k == T_TRUE || k == T_FALSE || k == T_IP ||
           k == T_CIDR;
}

/* "expected a value after '=='" with a hint when the author forgot the quotes. */
static int expected_value(parser *p, const char *opname)
{
    char what[96];
    snprintf(what, sizeof what, "expected a value after '%s'", opname);
    int rc = perr(p, &p->t, CH_EPARSE, what);
    if (p->t.k == T_IDENT && p->err != NULL) {
        size_t l = strlen(p->err->msg);
        snprintf(p->err->msg + l, sizeof p->err->msg - l, " (strings need quotes)");
    }
    return rc;
}

static const char *type_word(ch_vtype t)
{
    switch (t) {
    case CH_V_INT:
    case CH_V_DBL:
        return "numbers";
    case CH_V_IP:
        return "addresses";
    case CH_V_BOOL:
        return "booleans";
    default:
        return "strings";
    }
}

/* Check (and for time fields convert) a literal against a normalized field's type. */
static int check_typed(parser *p, const node *n, const tok *vt, lit *l)
{
    const ch_field_info *fi = ch_field_ref_info(n->field);
    if (fi == NULL || fi->type == CH_V_NONE)
        return 0;
    bool ok = true;
    switch (fi->type) {
    case CH_V_INT:
    case CH_V_DBL:
        if (fi->is_time && l->kind == L_STR && !l->has_num) {
            int64_t ms;
            if (ch_time_parse_iso8601(l->s.p, l->s.n, &ms)) {
                l->kind = L_NUM;
                l->has_num = l->num_int = true;
                l->i = ms;
                l->d = (double)ms;
            }
        }
        ok = l->has_num;
        break;
    case CH_V_IP:
        ok = l->has_ip || l->kind == L_CIDR;
        break;
    case CH_V_BOOL:
        ok = l->has_bool;
        break;
    case CH_V_STR:
        ok = l->kind == L_STR || l->kind == L_NUM;
        break;
    default:
        break;
    }
    if (ok)
        return 0;
    char what[160];
    snprintf(what, sizeof what, "'%s' holds %s, so this value can never match", fi->name,
             type_word(fi->type));
    return perr(p, vt, CH_EPARSE, what);
}

static int add_ref(parser *p, const tok *t, node *n)
{
    ch_field_ref *r = NULL;
    ch_error ferr;
    int rc = ch_field_resolve(t->str, t->slen, &r, &ferr);
    if (rc < 0)
        return perr_at(p, t->pos, rc, "invalid field path", ferr.msg);
    rc = push(&p->e->refs, &p->e->nrefs, &p->e->caprefs, r);
    if (rc < 0) {
        ch_field_ref_free(r);
        return ch_error_set(p->err, rc, "out of memory");
    }
    n->field = r;
    return 0;
}

static int compile_regex(parser *p, node *n, const tok *vt)
{
    if (vt->slen > CH_EXPR_MAX_REGEX)
        return perr_at(p, vt->pos, CH_ELIMIT, "regular expression too long", NULL);
    int ecode;
    PCRE2_SIZE eoff;
    uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_NEVER_BACKSLASH_C |
                    (n->icase ? PCRE2_CASELESS : 0);
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)vt->str, vt->slen, opts, &ecode, &eoff, NULL);
    if (re == NULL) {
        PCRE2_UCHAR msg[128];
        char d[200];
        pcre2_get_error_message(ecode, msg, sizeof msg);
        snprintf(d, sizeof d, "%s at offset %zu of the pattern", (const char *)msg, (size_t)eoff);
        return perr_at(p, vt->pos, CH_EPARSE, "invalid regular expression", d);
    }
    if (push(&p->e->res, &p->e->nres, &p->e->capres, re) < 0) {
        pcre2_code_free(re);
        return ch_error_set(p->err, CH_ENOMEM, "out of memory");
    }
    /* JIT when the platform has it; the interpreter gives the same answers otherwise. */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    n->re = re;
    /* Texts without any literal the pattern needs are answered without PCRE2 (expr_prefilter.c);
     * out of arena memory simply means no prefilter. */
    ch_re_prefilter pf;
    if (ch__re_prefilter_build(vt->str, vt->slen, n->icase, &pf)) {
        ch_re_prefilter *keep = ch_arena_alloc(&p->e->arena, sizeof *keep);
        if (keep != NULL) {
            *keep = pf;
            n->re_pf = keep;
        }
    }
    /* A process-unique number for the compiled pattern (lit is otherwise unused by `matches`):
     * the scratch's memo of answers (expr_eval.c) keys on it, and unlike the node's or the
     * code's address it is never reused after the expression is freed. */
    static _Atomic uint64_t next_re_id = 1;
    n->lit.i = (int64_t)atomic_fetch_add(&next_re_id, 1);
    return 0;
}

/* [v, v, ...] after `in`; the '[' is the lookahead. Trailing comma allowed. */
static int parse_list(parser *p, node *n)
{
    tok open = p->t;
    lit *items = NULL;
    size_t cnt = 0, cap = 0;
    int rc = advance(p);
    while (rc == 0 && p->t.k != T_RB) {
        if (!is_value(p->t.k)) {
            rc = p->t.k == T_EOF ? perr(p, &p->t, CH_EPARSE, "expected a value or ']' in the list")
                                 : expected_value(p, cnt ? "," : "[");
            break;
        }
        if (cnt == CH_EXPR_MAX_LIST) {
            char what[64];
            snprintf(what, sizeof what, "list longer than %d values", CH_EXPR_MAX_LIST);
            rc = perr_at(p, p->t.pos, CH_ELIMIT, what, NULL);
            break;
        }
        if (cnt == cap) {
            lit *ni = ch_grow(items, &cap, 16, sizeof *ni);
            if (ni == NULL) {
                rc = ch_error_set(p->err, CH_ENOMEM, "out of memory");
                break;
            }
            items = ni;
        }
        lit_from_tok(&p->t, n->icase, &items[cnt++]);
        if ((rc = advance(p)) < 0)
            break;
        if (p->t.k == T_COMMA) {
            rc = advance(p);
        } else if (p->t.k != T_RB) {
            unsigned l, c;
            ch__expr_linecol(p->lx.src, p->lx.n, open.pos, &l, &c);
            char what[96];
            snprintf(what, sizeof what, "expected ',' or ']' (for the '[' at %u:%u)", l, c);
            rc = perr(p, &p->t, CH_EPARSE, what);
        }
    }
    if (rc == 0) {
        n->set = ch__vset_build(&p->e->arena, items, cnt, n->icase);
        if (n->set == NULL)
            rc = ch_error_set(p->err, CH_ENOMEM, "out of memory");
        else
            rc = advance(p);
    }
    ch_free(items);
    return rc;
}

static int parse_set_ref(parser *p, node *n)
{
    ch_expr *e = p->e;
    if (!e->has_env || e->env.resolve == NULL || e->env.contains == NULL) {
        char what[128];
        snprintf(what, sizeof what, "named set $%.64s cannot be used here (no sets are defined)",
                 p->t.str);
        return perr_at(p, p->t.pos, CH_EPARSE, what, NULL);
    }
    void *h = NULL;
    ch_error rerr = {0, ""};
    int rc = e->env.resolve(e->env.user, p->t.str, p->t.slen, &h, &rerr);
    if (rc < 0) {
        char what[128];
        snprintf(what, sizeof what, "unknown set $%.64s", p->t.str);
        return perr_at(p, p->t.pos, rc == CH_ENOTFOUND ? CH_EPARSE : rc, what,
                       rc == CH_ENOTFOUND || rerr.msg[0] == '\0' ? NULL : rerr.msg);
    }
    if (push(&e->handles, &e->nhandles, &e->caphandles, h) < 0) {
        if (e->env.release)
            e->env.release(e->env.user, h);
        return ch_error_set(p->err, CH_ENOMEM, "out of memory");
    }
    n->op = &ch__op_in_set;
    n->env = &e->env;
    n->handle = h;
    return advance(p);
}

/* What follows `in`: a list, a named set, or one address or network. */
static int parse_in(parser *p, node *n)
{
    if (p->t.k == T_LB) {
        n->op = &ch__op_in_list;
        return parse_list(p, n);
    }
    if (p->t.k == T_SET)
        return parse_set_ref(p, n);
    if (p->t.k == T_IP || p->t.k == T_CIDR) {
        lit one;
        lit_from_tok(&p->t, false, &one);
        n->op = &ch__op_in_list;
        n->set = ch__vset_build(&p->e->arena, &one, 1, false);
        if (n->set == NULL)
            return ch_error_set(p->err, CH_ENOMEM, "out of memory");
        return advance(p);
    }
    char what[96];
    snprintf(what, sizeof what, "expected '[', '$name' or a network after '%s'",
             ch__expr_tok_name(T_IN, n->icase));
    return perr(p, &p->t, CH_EPARSE, what);
}

static node *parse_or(parser *p);

/* A field path and its test. The path is the lookahead. */
static node *parse_pred(parser *p)
{
    if (p->t.k != T_IDENT) {
        perr(p, &p->t, CH_EPARSE,
             p->t.k == T_EOF ? "expected a condition" : "expected a field name, 'not' or '('");
        return NULL;
    }
    tok ft = p->t;
    node *n = new_node(p, N_PRED, ft.pos);
    if (n == NULL || add_ref(p, &ft, n) < 0 || advance(p) < 0)
        return NULL;
    if (p->t.k == T_NOT) {
        n->neg = true;
        if (advance(p) < 0)
            return NULL;
        tok_kind k = p->t.k;
        if (k != T_EXISTS && k != T_IN && k != T_CONTAINS && k != T_STARTSWITH && k != T_ENDSWITH &&
            k != T_MATCHES) {
            perr(p, &p->t, CH_EPARSE,
                 "expected 'exists', 'in', 'contains', 'startswith', 'endswith' or 'matches' "
                 "after 'not'");
            return NULL;
        }
    }
    tok opt = p->t;
    n->icase = opt.icase;
    const char *opname = ch__expr_tok_name(opt.k, opt.icase);
    switch (opt.k) {
    case T_EXISTS:
        n->op = &ch__op_exists;
        return advance(p) < 0 ? NULL : n;
    case T_IN:
        if (advance(p) < 0 || parse_in(p, n) < 0)
            return NULL;
        return n;
    case T_CONTAINS:
    case T_STARTSWITH:
    case T_ENDSWITH:
    case T_MATCHES: {
        n->op = opt.k == T_CONTAINS     ? &ch__op_contains
                : opt.k == T_STARTSWITH ? &ch__op_startswith
                : opt.k == T_ENDSWITH   ? &ch__op_endswith
                                        : &ch__op_matches;
        if (advance(p) < 0)
            return NULL;
        if (p->t.k != T_STR) {
            char what[96];
            snprintf(what, sizeof what, "expected a string after '%s'", opname);
            perr(p, &p->t, CH_EPARSE, what);
            return NULL;
        }
        tok vt = p->t;
        if (opt.k == T_MATCHES) {
            if (compile_regex(p, n, &vt) < 0)
                return NULL;
        } else {
            lit_from_tok(&vt, n->icase, &n->lit);
        }
        return advance(p) < 0 ? NULL : n;
    }
    case T_EQ:
    case T_NE:
    case T_IEQ:
    case T_INE:
    case T_LT:
    case T_LE:
    case T_GT:
    case T_GE: {
        bool ordering = opt.k >= T_LT && opt.k <= T_GE;
        n->icase = opt.k == T_IEQ || opt.k == T_INE;
        n->neg = opt.k == T_NE || opt.k == T_INE;
        n->op = opt.k == T_LT   ? &ch__op_lt
                : opt.k == T_LE ? &ch__op_le
                : opt.k == T_GT ? &ch__op_gt
                : opt.k == T_GE ? &ch__op_ge
                                : &ch__op_eq;
        if (advance(p) < 0)
            return NULL;
        /* `user.name != requestParameters.userName`: another field of the same event. Only a
         * dotted path (or a backquoted one) is taken as a field, so that a forgotten pair of
         * quotes (`user.name == alice`) stays an error rather than a comparison with a field
         * that does not exist. */
        if (p->t.k == T_IDENT && !ordering &&
            (memchr(p->t.str, '.', p->t.slen) != NULL ||
             (p->t.pos < p->lx.n && p->lx.src[p->t.pos] == '`'))) {
            tok rt = p->t;
            node tmp = {0};
            if (add_ref(p, &rt, &tmp) < 0)
                return NULL;
            n->rfield = tmp.field;
            n->op = &ch__op_eq_field;
            return advance(p) < 0 ? NULL : n;
        }
        if (!is_value(p->t.k)) {
            expected_value(p, opname);
            return NULL;
        }
        tok vt = p->t;
        if (vt.k == T_CIDR) {
            perr(p, &vt, CH_EPARSE, "a network needs 'in' (as in source.ip in 10.0.0.0/8)");
            return NULL;
        }
        if (ordering && (vt.k == T_IP || vt.k == T_TRUE || vt.k == T_FALSE)) {
            char what[96];
            snprintf(what, sizeof what, "'%s' compares numbers, durations, times or strings",
                     opname);
            perr(p, &vt, CH_EPARSE, what);
            return NULL;
        }
        if (n->icase && vt.k != T_STR) {
            char what[96];
            snprintf(what, sizeof what, "'%s' compares strings; use '%s' for other values", opname,
                     opt.k == T_IEQ ? "==" : "!=");
            perr(p, &vt, CH_EPARSE, what);
            return NULL;
        }
        lit_from_tok(&vt, n->icase, &n->lit);
        if (check_typed(p, n, &vt, &n->lit) < 0)
            return NULL;
        return advance(p) < 0 ? NULL : n;
    }
    default: {
        char what[CH_FIELD_MAX_PATH + 64];
        snprintf(what, sizeof what, "expected an operator after '%.*s'", (int)ft.slen, ft.str);
        perr(p, &p->t, CH_EPARSE, what);
        if (p->err != NULL) {
            size_t l = strlen(p->err->msg);
            snprintf(p->err->msg + l, sizeof p->err->msg - l,
                     " (==, !=, <, <=, >, >=, =~, !~, in, contains, startswith, endswith, "
                     "matches, exists)");
        }
        return NULL;
    }
    }
}

static node *parse_unary(parser *p)
{
    tok t = p->t;
    if (t.k != T_NOT && t.k != T_LP)
        return parse_pred(p);
    if (++p->depth > CH_EXPR_MAX_DEPTH) {
        char what[64];
        snprintf(what, sizeof what, "expression nests deeper than %d levels", CH_EXPR_MAX_DEPTH);
        perr_at(p, t.pos, CH_ELIMIT, what, NULL);
        return NULL;
    }
    node *r = NULL;
    if (advance(p) < 0)
        return NULL;
    if (t.k == T_NOT) {
        node *kid = parse_unary(p);
        if (kid == NULL || (r = new_node(p, N_NOT, t.pos)) == NULL)
            return NULL;
        r->kids = ch_arena_alloc(&p->e->arena, sizeof *r->kids);
        if (r->kids == NULL) {
            ch_error_set(p->err, CH_ENOMEM, "out of memory");
            return NULL;
        }
        r->kids[0] = kid;
        r->nkids = 1;
    } else {
        r = parse_or(p);
        if (r == NULL)
            return NULL;
        if (p->t.k != T_RP) {
            unsigned l, c;
            char what[96];
            ch__expr_linecol(p->lx.src, p->lx.n, t.pos, &l, &c);
            snprintf(what, sizeof what, "expected ')' (for the '(' at %u:%u)", l, c);
            perr(p, &p->t, CH_EPARSE, what);
            return NULL;
        }
        if (advance(p) < 0)
            return NULL;
    }
    p->depth--;
    return r;
}

/* One n-ary and/or node over operands joined by `op`; nested nodes of the same kind are
 * flattened, so (a and b) and c is one node of three. */
static node *parse_chain(parser *p, tok_kind op, node_kind kind, node *(*sub)(parser *))
{
    uint32_t pos = p->t.pos;
    node *first = sub(p);
    if (first == NULL || p->t.k != op)
        return first;
    node **kids = NULL;
    size_t n = 0, cap = 0;
    node *r = NULL, *cur = first;
    for (;;) {
        size_t add = cur->kind == kind ? cur->nkids : 1;
        if (kids == NULL || n + add > cap) { /* kids is never NULL at the memcpy */
            size_t nc = cap ? cap * 2 : 8;
            while (nc < n + add)
                nc *= 2;
            node **nk = ch_realloc(kids, nc * sizeof *nk);
            if (nk == NULL) {
                ch_error_set(p->err, CH_ENOMEM, "out of memory");
                goto cleanup;
            }
            kids = nk;
            cap = nc;
        }
        if (cur->kind == kind) {
            memcpy(kids + n, cur->kids, cur->nkids * sizeof *kids);
            n += cur->nkids;
        } else {
            kids[n++] = cur;
        }
        if (p->t.k != op)
            break;
        if (advance(p) < 0 || (cur = sub(p)) == NULL)
            goto cleanup;
    }
    if ((r = new_node(p, kind, pos)) == NULL)
        goto cleanup;
    r->kids = ch_arena_alloc(&p->e->arena, n * sizeof *r->kids);
    if (r->kids == NULL) {
        ch_error_set(p->err, CH_ENOMEM, "out of memory");
        r = NULL;
        goto cleanup;
    }
    memcpy(r->kids, kids, n * sizeof *kids);
    r->nkids = (uint32_t)n;
cleanup:
    ch_free(kids);
    return r;
}

static node *parse_and(parser *p) { return parse_chain(p, T_AND, N_AND, parse_unary); }
static node *parse_or(parser *p) { return parse_chain(p, T_OR, N_OR, parse_and); }

/* ---- dispatch hints ---- */

/* A constraint on event.dataset or event.action: "any" or a finite set of values. */
typedef struct hint {
    bool ds_by;
    uint32_t ds;
    bool act_by;
    size_t nact;
    const ch_sv *act;
} hint;

static bool sv_in(const ch_sv *a, size_t n, ch_sv v)
{
    for (size_t i = 0; i < n; i++)
        if (a[i].n == v.n && memcmp(a[i].p, v.p, v.n) == 0)
            return true;
    return false;
}

static void mark_text_tests(node *n)
{
    for (uint32_t i = 0; i < n->nkids; i++)
        mark_text_tests(n->kids[i]);
    if (n->kind == N_PRED) {
        n->text_lit = ch__expr_pred_text(n);
        n->text_key = ch__expr_pred_key(n);
    }
}

static int hint_of(ch_expr *e, const node *n, hint *h);

static int hint_pred(const node *n, hint *h)
{
    const ch_field_info *fi = ch_field_ref_info(n->field);
    if (fi == NULL || n->neg)
        return 0;
    bool is_ds = strcmp(fi->name, "event.dataset") == 0;
    bool is_act = strcmp(fi->name, "event.action") == 0;
    if (!is_ds && !is_act)
        return 0;
    const ch_sv *vals = NULL;
    size_t nv = 0;
    if (n->op == &ch__op_eq && n->lit.kind == L_STR) {
        vals = &n->lit.s;
        nv = 1;
    } else if (n->op == &ch__op_in_list) {
        if (!ch__vset_strings(n->set, &vals, &nv))
            return 0;
    } else {
        return 0;
    }
    if (is_ds) {
        /* Dataset names are lower case, so a case-insensitive test pins them too. */
        h->ds_by = true;
        h->ds = 0;
        for (size_t i = 0; i < nv; i++) {
            char low[32];
            if (vals[i].n >= sizeof low)
                continue;
            memcpy(low, vals[i].p, vals[i].n);
            lower_ascii(low, vals[i].n);
            ch_dataset d = ch_dataset_from_name(low, vals[i].n);
            if (d != CH_DS_UNKNOWN && (n->icase || memcmp(low, vals[i].p, vals[i].n) == 0))
                h->ds |= 1u << d;
        }
        return 0;
    }
    if (n->icase) /* the action's case variants are unknown: no hint */
        return 0;
    h->act_by = true;
    h->act = vals;
    h->nact = nv;
    return 0;
}

/* Mark the dataset tests that can be answered from ev->dataset (see node.ds_fast): only when
 * every value names a known dataset, so that `== "unknown"` keeps its string meaning. */
static void mark_dataset_tests(node *n)
{
    if (n->kind != N_PRED) {
        for (uint32_t i = 0; i < n->nkids; i++)
            mark_dataset_tests(n->kids[i]);
        return;
    }
    const ch_field_info *fi = ch_field_ref_info(n->field);
    if (fi == NULL || n->neg || strcmp(fi->name, "event.dataset") != 0)
        return;
    const ch_sv *vals = NULL;
    size_t nv = 0;
    if (n->op == &ch__op_eq && n->lit.kind == L_STR) {
        vals = &n->lit.s;
        nv = 1;
    } else if (n->op != &ch__op_in_list || !ch__vset_strings(n->set, &vals, &nv)) {
        return;
    }
    uint32_t mask = 0;
    for (size_t i = 0; i < nv; i++) {
        char low[32];
        if (vals[i].n >= sizeof low)
            return;
        memcpy(low, vals[i].p, vals[i].n);
        if (n->icase)
            lower_ascii(low, vals[i].n);
        ch_dataset d = ch_dataset_from_name(low, vals[i].n);
        if (d == CH_DS_UNKNOWN)
            return;
        mask |= 1u << d;
    }
    n->ds_fast = true;
    n->ds_mask = mask;
}

static int hint_of(ch_expr *e, const node *n, hint *h)
{
    memset(h, 0, sizeof *h);
    if (n->kind == N_PRED)
        return hint_pred(n, h);
    if (n->kind == N_NOT)
        return 0;
    bool conj = n->kind == N_AND;
    hint acc;
    memset(&acc, 0, sizeof acc);
    for (uint32_t i = 0; i < n->nkids; i++) {
        hint k;
        int rc = hint_of(e, n->kids[i], &k);
        if (rc < 0)
            return rc;
        if (conj) {
            if (k.ds_by) {
                acc.ds = acc.ds_by ? (acc.ds & k.ds) : k.ds;
                acc.ds_by = true;
            }
            if (k.act_by) {
                if (!acc.act_by) {
                    acc = (hint){acc.ds_by, acc.ds, true, k.nact, k.act};
                } else {
                    /* Intersection, in the arena (small lists: quadratic is fine). */
                    ch_sv *out = ch_arena_alloc(&e->arena, (acc.nact ? acc.nact : 1) * sizeof *out);
                    size_t m = 0;
                    if (out == NULL)
                        return CH_ENOMEM;
                    for (size_t j = 0; j < acc.nact; j++)
                        if (sv_in(k.act, k.nact, acc.act[j]))
                            out[m++] = acc.act[j];
                    acc.act = out;
                    acc.nact = m;
                }
            }
        } else {
            /* A disjunction constrains only when every branch does. */
            if (i == 0) {
                acc = k;
                continue;
            }
            acc.ds_by = acc.ds_by && k.ds_by;
            acc.ds = acc.ds_by ? (acc.ds | k.ds) : 0;
            if (acc.act_by && k.act_by) {
                ch_sv *out = ch_arena_alloc(&e->arena, (acc.nact + k.nact + 1) * sizeof *out);
                if (out == NULL)
                    return CH_ENOMEM;
                memcpy(out, acc.act, acc.nact * sizeof *out);
                size_t m = acc.nact;
                for (size_t j = 0; j < k.nact; j++)
                    if (!sv_in(out, m, k.act[j]))
                        out[m++] = k.act[j];
                acc.act = out;
                acc.nact = m;
            } else {
                acc.act_by = false;
                acc.act = NULL;
                acc.nact = 0;
            }
        }
    }
    *h = acc;
    return 0;
}

/* ---- lifetime ---- */

int ch_expr_compile_n(const char *src, size_t n, const ch_expr_env *env, ch_expr **out,
                      ch_error *err)
{
    int rc = 0;
    ch_expr *e = NULL;
    ch_error local;
    if (err == NULL) /* the parser reads codes back from the error it set */
        err = &local;
    ch_error_clear(err);
    *out = NULL;
    if (src == NULL)
        return ch_error_set(err, CH_EUSAGE, "no expression");
    if (n > CH_EXPR_MAX_LEN)
        return ch_error_set(err, CH_ELIMIT, "expression longer than %d bytes", CH_EXPR_MAX_LEN);
    e = ch_calloc(1, sizeof *e);
    if (e == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    ch_arena_init(&e->arena, 4096);
    if (env != NULL) {
        e->env = *env;
        e->has_env = true;
    }
    e->src = ch_strndup(src, n);
    if (e->src == NULL) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto cleanup;
    }
    parser p = {.lx = {e->src, n, 0, &e->arena, err}, .e = e, .err = err};
    if ((rc = advance(&p)) < 0)
        goto cleanup;
    if (p.t.k == T_EOF) {
        rc = perr(&p, &p.t, CH_EPARSE, "expected a condition");
        goto cleanup;
    }
    e->root = parse_or(&p);
    if (e->root == NULL) {
        rc = err->code < 0 ? err->code : CH_EPARSE;
        goto cleanup;
    }
    if (p.t.k != T_EOF) {
        rc = perr(&p, &p.t, CH_EPARSE,
                  p.t.k == T_RP ? "unmatched ')'" : "expected 'and', 'or' or the end");
        goto cleanup;
    }
    hint h;
    if ((rc = hint_of(e, e->root, &h)) < 0) {
        ch_error_set(err, rc, "out of memory");
        goto cleanup;
    }
    e->hints = (ch_expr_hints){h.ds_by, h.ds, h.act_by, h.nact, h.act};
    mark_dataset_tests(e->root);
    mark_text_tests(e->root);
    *out = e;
    return 0;
cleanup:
    ch_expr_free(e);
    return rc;
}

int ch_expr_compile(const char *src, const ch_expr_env *env, ch_expr **out, ch_error *err)
{
    *out = NULL;
    if (src == NULL)
        return ch_error_set(err, CH_EUSAGE, "no expression");
    return ch_expr_compile_n(src, strlen(src), env, out, err);
}

void ch_expr_free(ch_expr *e)
{
    if (e == NULL)
        return;
    for (size_t i = 0; i < e->nrefs; i++)
        ch_field_ref_free(e->refs[i]);
    for (size_t i = 0; i < e->nres; i++)
        pcre2_code_free(e->res[i]);
    if (e->env.release != NULL)
        for (size_t i = 0; i < e->nhandles; i++)
            e->env.release(e->env.user, e->handles[i]);
    ch_free(e->refs);
    ch_free(e->res);
    ch_free(e->handles);
    ch_free(e->src);
    ch_arena_free(&e->arena);
    ch_free(e);
}

const char *ch_expr_source(const ch_expr *e) { return e->src; }

void ch_expr_dispatch_hints(const ch_expr *e, ch_expr_hints *out) { *out = e->hints; }
