/*
 * expr_ops.c - the operators of the expression language, one registered test each, and the
 * compiled value sets behind `in [...]`.
 *
 * A test receives one value of the field and the predicate's pre-typed literal; the walk over
 * a field's values and the negated forms live in expr_eval.c, so an operator is only "does
 * this value satisfy me". Values of another type than the literal are converted only where
 * the language says so (a string holding a number against a number literal, a string holding
 * an address against an address literal, any value as text for the string operators).
 *
 * Sets are open-addressing hash tables built once at compile time: strings (FNV-1a, folded
 * to lower case for `in~`), integers, and networks grouped by prefix length so that a CIDR
 * list costs one hash probe per distinct prefix length, not one test per network. Members
 * that came from string literals are kept apart from typed ones, because a string value
 * equals a string member only textually ("05" is not in ["5"]), while a number value also
 * equals a string member that holds that number (port 443 is in ["443"]).
 */
#include <string.h>

#include "core/hash.h"
#include "rules/expr_int.h"

static inline unsigned char lower(unsigned char c) { return c >= 'A' && c <= 'Z' ? c | 0x20 : c; }

bool ch__sv_ieq(ch_sv a, ch_sv b)
{
    if (a.n != b.n)
        return false;
    for (uint32_t i = 0; i < a.n; i++)
        if (lower((unsigned char)a.p[i]) != (unsigned char)b.p[i])
            return false;
    return true;
}

static inline bool sv_eq(ch_sv a, ch_sv b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

/* ---- hashing ---- */

/* The project's one string hash (core/hash.h); case-insensitive sets hash the lowered text. */
static inline uint64_t hash_str(const char *p, size_t n, bool fold)
{
    return fold ? ch_hash_bytes_nocase(p, n) : ch_hash_bytes(p, n);
}

static uint64_t hash_net(const uint8_t b[16], uint8_t family)
{
    uint64_t a, c;
    memcpy(&a, b, 8);
    memcpy(&c, b + 8, 8);
    return ch_hash_mix64(a ^ ch_hash_mix64(c ^ family));
}

/* An index of slots holding entry number + 1 (0 = empty), sized to a power of two at least
 * twice the entry count, so probes stay short. */
typedef struct table {
    uint32_t mask, count;
    uint32_t *slot;
    uint64_t *hash;
} table;

static bool table_init(ch_arena *a, table *t, size_t n)
{
    size_t cap = 8;
    while (cap < n * 2)
        cap *= 2;
    t->mask = (uint32_t)(cap - 1);
    t->count = 0;
    t->slot = ch_arena_alloc(a, cap * sizeof *t->slot);
    t->hash = ch_arena_alloc(a, (n ? n : 1) * sizeof *t->hash);
    if (t->slot == NULL || t->hash == NULL)
        return false;
    memset(t->slot, 0, cap * sizeof *t->slot);
    return true;
}

/* ---- the set ---- */

typedef struct net_group {
    uint8_t family, prefix; /* prefix in the family's bits */
    table t;
    ch_ip *nets; /* masked */
} net_group;

typedef struct num_part {
    table ints;
    int64_t *iv;
    double *dv; /* members that are not integers: few, compared one by one */
    size_t ndv;
} num_part;

typedef struct net_part {
    net_group *groups;
    size_t ngroups;
} net_part;

struct vset {
    bool icase;
    table strs;
    ch_sv *sv;
    /* [0]: from typed literals, [1]: from string literals that read as a number/address */
    num_part nums[2];
    net_part nets[2];
    bool bools[2][2]; /* [origin][value] */
};

static void mask_ip(const ch_ip *ip, unsigned prefix, ch_ip *out)
{
    unsigned bits = ip->family == 4 ? prefix + 96 : prefix;
    *out = *ip;
    for (unsigned i = 0; i < 16; i++) {
        if (bits >= 8) {
            bits -= 8;
            continue;
        }
        out->b[i] &= (uint8_t)(0xff << (8 - bits)) & 0xff;
        bits = 0;
    }
}

static bool str_find(const vset *s, ch_sv v)
{
    if (s->strs.count == 0)
        return false;
    uint64_t h = hash_str(v.p, v.n, s->icase);
    for (uint32_t i = (uint32_t)h & s->strs.mask;; i = (i + 1) & s->strs.mask) {
        uint32_t e = s->strs.slot[i];
        if (e == 0)
            return false;
        if (s->strs.hash[e - 1] == h &&
            (s->icase ? ch__sv_ieq(v, s->sv[e - 1]) : sv_eq(v, s->sv[e - 1])))
            return true;
    }
}

static bool int_find(const num_part *p, int64_t v)
{
    if (p->ints.count == 0)
        return false;
    uint64_t h = ch_hash_mix64((uint64_t)v);
    for (uint32_t i = (uint32_t)h & p->ints.mask;; i = (i + 1) & p->ints.mask) {
        uint32_t e = p->ints.slot[i];
        if (e == 0)
            return false;
        if (p->iv[e - 1] == v)
            return true;
    }
}

static bool num_find(const num_part *p, bool is_int, int64_t i, double d)
{
    if (is_int && int_find(p, i))
        return true;
    if (!is_int && d >= -9.2e18 && d <= 9.2e18 && d == (double)(int64_t)d &&
        int_find(p, (int64_t)d))
        return true;
    for (size_t k = 0; k < p->ndv; k++)
        if (p->dv[k] == d)
            return true;
    return false;
}

static bool net_find(const net_part *p, const ch_ip *ip)
{
    for (size_t g = 0; g < p->ngroups; g++) {
        const net_group *ng = &p->groups[g];
        if (ng->family != ip->family)
            continue;
        ch_ip m;
        mask_ip(ip, ng->prefix, &m);
        uint64_t h = hash_net(m.b, m.family);
        for (uint32_t i = (uint32_t)h & ng->t.mask;; i = (i + 1) & ng->t.mask) {
            uint32_t e = ng->t.slot[i];
            if (e == 0)
                break;
            if (ng->t.hash[e - 1] == h && memcmp(ng->nets[e - 1].b, m.b, 16) == 0)
                return true;
        }
    }
    return false;
}

static bool add_str(vset *s, ch_sv v)
{
    uint64_t h = hash_str(v.p, v.n, s->icase);
    uint32_t i = (uint32_t)h & s->strs.mask;
    for (; s->strs.slot[i]; i = (i + 1) & s->strs.mask) {
        uint32_t e = s->strs.slot[i];
        if (s->strs.hash[e - 1] == h && sv_eq(v, s->sv[e - 1]))
            return true; /* duplicate */
    }
    s->sv[s->strs.count] = v;
    s->strs.hash[s->strs.count++] = h;
    s->strs.slot[i] = s->strs.count;
    return true;
}

static void add_num(num_part *p, bool is_int, int64_t iv, double d)
{
    if (!is_int) {
        p->dv[p->ndv++] = d;
        return;
    }
    uint64_t h = ch_hash_mix64((uint64_t)iv);
    uint32_t i = (uint32_t)h & p->ints.mask;
    for (; p->ints.slot[i]; i = (i + 1) & p->ints.mask)
        if (p->iv[p->ints.slot[i] - 1] == iv)
            return;
    p->iv[p->ints.count] = iv;
    p->ints.hash[p->ints.count++] = h;
    p->ints.slot[i] = p->ints.count;
}

static bool num_part_init(ch_arena *a, num_part *p, size_t n)
{
    p->iv = ch_arena_alloc(a, (n ? n : 1) * sizeof *p->iv);
    p->dv = ch_arena_alloc(a, (n ? n : 1) * sizeof *p->dv);
    p->ndv = 0;
    return p->iv && p->dv && table_init(a, &p->ints, n);
}

/* Networks of one origin: count per (family, prefix), then one table per group. */
static bool net_part_build(ch_arena *a, net_part *p, const lit *items, size_t n, int origin)
{
    uint32_t cnt[2 * 129] = {0};
    for (size_t k = 0; k < n; k++) {
        const lit *l = &items[k];
        bool take =
            origin == 0 ? (l->kind == L_IP || l->kind == L_CIDR) : (l->kind == L_STR && l->has_ip);
        if (!take)
            continue;
        unsigned pf = l->kind == L_CIDR ? l->prefix : (l->ip.family == 4 ? 32 : 128);
        cnt[(l->ip.family == 6) * 129 + pf]++;
    }
    size_t ng = 0;
    for (size_t k = 0; k < 2 * 129; k++)
        ng += cnt[k] != 0;
    p->ngroups = 0;
    p->groups = NULL;
    if (ng == 0)
        return true;
    p->groups = ch_arena_alloc(a, ng * sizeof *p->groups);
    if (p->groups == NULL)
        return false;
    /* Longer prefixes first: exact addresses, the common case, are probed first. */
    for (int fam = 1; fam >= 0; fam--)
        for (int pf = 128; pf >= 0; pf--) {
            uint32_t c = cnt[fam * 129 + pf];
            if (c == 0)
                continue;
            net_group *g = &p->groups[p->ngroups];
            g->family = fam ? 6 : 4;
            g->prefix = (uint8_t)pf;
            g->nets = ch_arena_alloc(a, c * sizeof *g->nets);
            if (g->nets == NULL || !table_init(a, &g->t, c))
                return false;
            for (size_t k = 0; k < n; k++) {
                const lit *l = &items[k];
                bool take = origin == 0 ? (l->kind == L_IP || l->kind == L_CIDR)
                                        : (l->kind == L_STR && l->has_ip);
                unsigned lpf = l->kind == L_CIDR ? l->prefix : (l->ip.family == 4 ? 32 : 128);
                if (!take || l->ip.family != g->family || lpf != (unsigned)pf)
                    continue;
                ch_ip m;
                mask_ip(&l->ip, lpf, &m);
                uint64_t h = hash_net(m.b, m.family);
                uint32_t i = (uint32_t)h & g->t.mask;
                bool dup = false;
                for (; g->t.slot[i]; i = (i + 1) & g->t.mask)
                    if (memcmp(g->nets[g->t.slot[i] - 1].b, m.b, 16) == 0) {
                        dup = true;
                        break;
                    }
                if (dup)
                    continue;
                g->nets[g->t.count] = m;
                g->t.hash[g->t.count++] = h;
                g->t.slot[i] = g->t.count;
            }
            p->ngroups++;
        }
    return true;
}

vset *ch__vset_build(ch_arena *a, const lit *items, size_t n, bool icase)
{
    vset *s = ch_arena_alloc(a, sizeof *s);
    if (s == NULL)
        return NULL;
    memset(s, 0, sizeof *s);
    s->icase = icase;
    s->sv = ch_arena_alloc(a, (n ? n : 1) * sizeof *s->sv);
    if (s->sv == NULL || !table_init(a, &s->strs, n) || !num_part_init(a, &s->nums[0], n) ||
        !num_part_init(a, &s->nums[1], n))
        return NULL;
    for (size_t k = 0; k < n; k++) {
        const lit *l = &items[k];
        switch (l->kind) {
        case L_STR:
            add_str(s, l->s);
            if (l->has_num)
                add_num(&s->nums[1], l->num_int, l->i, l->d);
            if (l->has_bool)
                s->bools[1][l->b] = true;
            break;
        case L_NUM:
            add_num(&s->nums[0], l->num_int, l->i, l->d);
            break;
        case L_BOOL:
            s->bools[0][l->b] = true;
            break;
        default:
            break;
        }
    }
    if (!net_part_build(a, &s->nets[0], items, n, 0) ||
        !net_part_build(a, &s->nets[1], items, n, 1))
        return NULL;
    return s;
}

bool ch__vset_strings(const vset *s, const ch_sv **out, size_t *n)
{
    if (s->nums[0].ints.count || s->nums[0].ndv || s->nets[0].ngroups || s->bools[0][0] ||
        s->bools[0][1])
        return false;
    *out = s->sv;
    *n = s->strs.count;
    return true;
}

static bool text_bool(ch_sv v, bool *b)
{
    if (ch__sv_ieq(v, CH_SV("true")))
        *b = true;
    else if (ch__sv_ieq(v, CH_SV("false")))
        *b = false;
    else
        return false;
    return true;
}

bool ch__vset_has(const vset *s, const ch_value *v)
{
    switch (v->type) {
    case CH_V_STR: {
        if (str_find(s, v->u.s))
            return true;
        const num_part *np = &s->nums[0];
        if (np->ints.count || np->ndv) {
            bool is_int;
            int64_t i;
            double d;
            if (ch_parse_number(v->u.s.p, v->u.s.n, &is_int, &i, &d) && num_find(np, is_int, i, d))
                return true;
        }
        if (s->nets[0].ngroups) {
            ch_ip ip;
            if (ch_ip_parse(v->u.s.p, v->u.s.n, &ip) && net_find(&s->nets[0], &ip))
                return true;
        }
        bool b;
        if ((s->bools[0][0] || s->bools[0][1]) && text_bool(v->u.s, &b))
            return s->bools[0][b];
        return false;
    }
    case CH_V_INT:
        return num_find(&s->nums[0], true, v->u.i, (double)v->u.i) ||
               num_find(&s->nums[1], true, v->u.i, (double)v->u.i);
    case CH_V_DBL:
        return num_find(&s->nums[0], false, 0, v->u.d) || num_find(&s->nums[1], false, 0, v->u.d);
    case CH_V_BOOL:
        return s->bools[0][v->u.b] || s->bools[1][v->u.b];
    case CH_V_IP:
        return net_find(&s->nets[0], &v->u.ip) || net_find(&s->nets[1], &v->u.ip);
    default:
        return false;
    }
}

/* ---- scalar comparisons ---- */

static int cmp_num(bool ai, int64_t a, double ad, bool bi, int64_t b, double bd)
{
    if (ai && bi)
        return (a > b) - (a < b);
    double x = ai ? (double)a : ad, y = bi ? (double)b : bd;
    if (x != x || y != y)
        return 2; /* NaN: incomparable */
    return (x > y) - (x < y);
}

/* Numeric view of a value against a number literal. */
static bool value_num(const ch_value *v, bool *is_int, int64_t *i, double *d)
{
    switch (v->type) {
    case CH_V_INT:
        *is_int = true;
        *i = v->u.i;
        *d = (double)v->u.i;
        return true;
    case CH_V_DBL:
        *is_int = false;
        *i = 0; /* unused when !is_int, but passed on by value */
        *d = v->u.d;
        return true;
    case CH_V_STR:
        return ch_parse_number(v->u.s.p, v->u.s.n, is_int, i, d);
    default:
        return false;
    }
}

static bool test_eq(const node *n, const ch_value *v, ch_expr_scratch *s)
{
    (void)s;
    const lit *l = &n->lit;
    switch (v->type) {
    case CH_V_STR:
        switch (l->kind) {
        case L_STR:
            return n->icase ? ch__sv_ieq(v->u.s, l->s) : sv_eq(v->u.s, l->s);
        case L_NUM: {
            bool is_int;
            int64_t i;
            double d;
            return ch_parse_number(v->u.s.p, v->u.s.n, &is_int, &i, &d) &&
                   cmp_num(is_int, i, d, l->num_int, l->i, l->d) == 0;
        }
        case L_BOOL: {
            bool b;
            return text_bool(v->u.s, &b) && b == l->b;
        }
        case L_IP: {
            ch_ip ip;
            return ch_ip_parse(v->u.s.p, v->u.s.n, &ip) && ch_ip_equal(&ip, &l->ip);
        }
        default:
            return false;
        }
    case CH_V_INT:
    case CH_V_DBL: {
        if (!l->has_num)
            return false;
        bool is_int;
        int64_t i;
        double d;
        value_num(v, &is_int, &i, &d);
        return cmp_num(is_int, i, d, l->num_int, l->i, l->d) == 0;
    }
    case CH_V_BOOL:
        return l->has_bool && l->b == v->u.b;
    case CH_V_IP:
        return l->has_ip && ch_ip_equal(&v->u.ip, &l->ip);
    default:
        return false;
    }
}

/* Sign of (v - literal), or 2 when they do not compare. Numbers compare numerically (a
 * string value against a number literal is read as a number); strings bytewise. */
static int order(const node *n, const ch_value *v)
{
    const lit *l = &n->lit;
    if (l->kind == L_NUM || (l->has_num && v->type != CH_V_STR)) {
        bool is_int;
        int64_t i;
        double d;
        if (!value_num(v, &is_int, &i, &d))
            return 2;
        return cmp_num(is_int, i, d, l->num_int, l->i, l->d);
    }
    if (l->kind == L_STR && v->type == CH_V_STR) {
        uint32_t m = v->u.s.n < l->s.n ? v->u.s.n : l->s.n;
        int c = m ? memcmp(v->u.s.p, l->s.p, m) : 0;
        if (c == 0)
            return (v->u.s.n > l->s.n) - (v->u.s.n < l->s.n);
        return c < 0 ? -1 : 1;
    }
    return 2;
}

static bool test_lt(const node *n, const ch_value *v, ch_expr_scratch *s)
{
    (void)s;
    return order(n, v) == -1;
}
static bool test_le(const node *n, const ch_value *v, ch_expr_scratch *s)
{
    (void)s;
    int c = order(n, v);
    return c == -1 || c == 0;
}
static bool test_gt(const node *n, const ch_value *v, ch_expr_scratch *s)
{
    (void)s;
    return order(n, v) == 1;
}
static bool test_ge(const node *n, const ch_value *v, ch_expr_scratch *s)
{
    (void)s;
    int c = order(n, v);
    return c == 1 || c == 0;
}

static bool test_in_list(const node *n, const ch_value *v, ch_expr_scratch *s)
{
    (void)s;
    return ch__vset_has(n->set, v);
}

static bool test_in_set(const node *n, const ch_value *v, ch_expr_scratch *s)
{
    (void)s;
    return n->env->contains(n->env->user, n->handle, v, n->icase);
}

/* ---- string operators: any value as text ---- */

static const char *find_icase(const char *h, size_t hn, const char *lower_needle, size_t nn)
{
    if (nn == 0)
        return h;
    if (hn < nn)
        return NULL;
    unsigned char f = (unsigned char)lower_needle[0];
    for (size_t i = 0; i + nn <= hn; i++) {
        if (lower((unsigned char)h[i]) != f)
            continue;
        size_t k = 1;
        while (k < nn && lower((unsigned char)h[i + k]) == (unsigned char)lower_needle[k])
            k++;
        if (k == nn)
            return h + i;
    }
    return NULL;
}

static bool test_contains(const node *n, const ch_value *v, ch_expr_scratch *s)
{
    (void)s;
    char buf[CH_VALUE_TEXT_MAX];
    ch_sv t = ch_value_text(v, buf);
    if (v->type == CH_V_OBJ)
        return false;
    if (n->icase)
        return find_icase(t.p, t.n, n->lit.s.p, n->lit.s.n) != NULL;
    return n->lit.s.n == 0 || memmem(t.p, t.n, n->lit.s.p, n->lit.s.n) != NULL;
}

static bool test_startswith(const node *n, const ch_value *v, ch_expr_scratch *s)
{
    (void)s;
    char buf[CH_VALUE_TEXT_MAX];
    ch_sv t = ch_value_text(v, buf);
    if (v->type == CH_V_OBJ || t.n < n->lit.s.n)
        return false;
    ch_sv head = {t.p, n->lit.s.n};
    return n->icase ? ch__sv_ieq(head, n->lit.s) : sv_eq(head, n->lit.s);
}

static bool test_endswith(const node *n, const ch_value *v, ch_expr_scratch *s)
{
    (void)s;
    char buf[CH_VALUE_TEXT_MAX];
    ch_sv t = ch_value_text(v, buf);
    if (v->type == CH_V_OBJ || t.n < n->lit.s.n)
        return false;
    ch_sv tail = {t.p + t.n - n->lit.s.n, n->lit.s.n};
    return n->icase ? ch__sv_ieq(tail, n->lit.s) : sv_eq(tail, n->lit.s);
}

static bool test_matches(const node *n, const ch_value *v, ch_expr_scratch *s)
{
    char buf[CH_VALUE_TEXT_MAX];
    ch_sv t = ch_value_text(v, buf);
    if (v->type == CH_V_OBJ)
        return false;
    if (n->re_pf != NULL && !ch__re_prefilter_may_match(n->re_pf, t.p, t.n))
        return false;
    int rc = pcre2_match(n->re, (PCRE2_SPTR)t.p, t.n, 0, 0, s->md, s->mctx);
    if (rc >= 0)
        return true;
    if (rc != PCRE2_ERROR_NOMATCH)
        s->regex_errors++;
    return false;
}

/* The registry. `!=`, `not in`, `not contains`... are these with the predicate negated. */
const op_def ch__op_eq = {"==", test_eq};
/* Two fields of one event compared (expr_eval.c does it: the test needs the event). */
const op_def ch__op_eq_field = {"==", NULL};
const op_def ch__op_lt = {"<", test_lt};
const op_def ch__op_le = {"<=", test_le};
const op_def ch__op_gt = {">", test_gt};
const op_def ch__op_ge = {">=", test_ge};
const op_def ch__op_in_list = {"in", test_in_list};
const op_def ch__op_in_set = {"in $", test_in_set};
const op_def ch__op_contains = {"contains", test_contains};
const op_def ch__op_startswith = {"startswith", test_startswith};
const op_def ch__op_endswith = {"endswith", test_endswith};
const op_def ch__op_matches = {"matches", test_matches};
const op_def ch__op_exists = {"exists", NULL};
