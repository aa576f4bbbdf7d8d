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
#if defined(__x86_64__)
#include <emmintrin.h>
#endif

#include "rules/expr_index.h"
#include "rules/expr_int.h"

/*
 * Regex answers are memoized per scratch. A `matches` predicate usually reads a field whose
 * values repeat (CloudTrail's userAgent: the 64 commonest strings are 87% of a generated
 * corpus, and real trails are as skewed), while a pattern without a literal start, such as
 * '(^|[^a-z])(kali|parrot|pentoo)', makes the regex engine try every position of a 200-byte
 * string. So a two-way set-associative table remembers (pattern id, text) -> answer: a hit costs a
 * hash of the text and one compare, against a scan by PCRE2. The answer is a pure function of the
 * pattern and the text (fixed options and limits), so the memo never changes a result; a
 * match that failed with an error (match limit) is not remembered, so it is counted every
 * time as before. Pattern ids are process-unique (expr.c), so an entry can never answer for
 * a later expression compiled at the same address. Memory: RE_MEMO_SLOTS * 272 bytes (about
 * 136 KB) per scratch, allocated on its first regex; values longer than RE_MEMO_TEXT are not
 * memoized.
 */
#define RE_MEMO_SLOTS 512
#define RE_MEMO_TEXT 240

/* Keys apart from texts: the two keys of a set share one 64-byte block, so a lookup touches
 * one line of keys and then the text of the one way whose key matched. */
typedef struct re_memo_key {
    uint64_t re_id; /* 0: empty */
    uint64_t h;
    uint32_t n;
    bool hit;
    uint8_t mru; /* in a set's first way: which way was hit last */
    uint8_t pad[10];
} re_memo_key;

typedef struct re_memo {
    re_memo_key key[RE_MEMO_SLOTS];
    char text[RE_MEMO_SLOTS][RE_MEMO_TEXT];
} re_memo;

_Static_assert(sizeof(re_memo_key) == 32, "two keys fill one 64-byte block");

/* The scratch and what only this file uses, allocated together: ch_expr_scratch_new is the
 * only place a scratch is made. */
typedef struct scratch_block {
    ch_expr_scratch s;
    re_memo *memo;
} scratch_block;

/* Picks the slot only (an entry is confirmed by comparing the whole text), so for a long value
 * it mixes a sample: the first 16, the middle 8 and the last 16 bytes and the length, where
 * user agents and paths differ, instead of every byte. */
static inline uint64_t mix(uint64_t h, uint64_t w)
{
    h = (h ^ w) * 0xFF51AFD7ED558CCDull;
    return h ^ (h >> 32);
}

static uint64_t text_hash(const char *p, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n, w;
    if (n >= 8) {
        size_t at[5] = {0, n - 8, 8, n / 2 - 4, n - 16};
        for (int k = 0; k < (n >= 16 ? 5 : 2); k++) {
            memcpy(&w, p + at[k], 8);
            h = mix(h, w);
        }
        return h;
    }
    w = 0;
    for (size_t k = 0; k < n; k++)
        w = (w << 8) | (unsigned char)p[k];
    return mix(h, w);
}

/* The `matches` operator with the memo in front; same answer as n->op->test. */
static bool memo_match(const node *n, const ch_value *v, ch_expr_scratch *s)
{
    scratch_block *blk = (scratch_block *)s;
    if (v->type != CH_V_STR || v->u.s.n > RE_MEMO_TEXT)
        return n->op->test(n, v, s);
    if (blk->memo == NULL && (blk->memo = ch_calloc(1, sizeof *blk->memo)) == NULL)
        return n->op->test(n, v, s);
    re_memo *m = blk->memo;
    uint64_t id = (uint64_t)n->lit.i;
    ch_sv t = v->u.s;
    uint64_t h = text_hash(t.p, t.n) ^ (id * 0x9E3779B97F4A7C15ull);
    /* Two ways a set. A hit makes its way the set's most recent; a new answer goes into the
     * other way and stays least recent until it is hit in turn, so the stream of one-off
     * values (about one in ten user agents) cycles through one way while the common ones keep
     * the other. */
    size_t set = ((h ^ (h >> 23)) & (RE_MEMO_SLOTS / 2 - 1)) * 2;
    re_memo_key *k = &m->key[set];
    for (size_t w = 0; w < 2; w++) {
        if (k[w].re_id == id && k[w].h == h && k[w].n == t.n &&
            memcmp(m->text[set + w], t.p, t.n) == 0) {
            k[0].mru = (uint8_t)w;
            return k[w].hit;
        }
    }
    uint64_t errors = s->regex_errors;
    bool hit = n->op->test(n, v, s);
    if (s->regex_errors == errors) {
        size_t w = k[0].re_id == 0 ? 0 : 1u - k[0].mru;
        k[w].re_id = id;
        k[w].h = h;
        k[w].n = t.n;
        k[w].hit = hit;
        memcpy(m->text[set + w], t.p, t.n);
    }
    return hit;
}

ch_expr_scratch *ch_expr_scratch_new(void)
{
    scratch_block *blk = ch_calloc(1, sizeof *blk);
    if (blk == NULL)
        return NULL;
    ch_expr_scratch *s = &blk->s;
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
    ch_free(((scratch_block *)s)->memo);
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
    if (c->n->op == &ch__op_matches ? memo_match(c->n, v, c->s) : c->n->op->test(c->n, v, c->s)) {
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

typedef struct field_ctx {
    ch_sv want;
    bool icase, hit;
} field_ctx;

static bool field_visit(void *ctx, const ch_value *v)
{
    field_ctx *c = ctx;
    char buf[CH_VALUE_TEXT_MAX];
    ch_sv t = ch_value_text(v, buf);
    bool eq = t.n == c->want.n;
    for (uint32_t i = 0; eq && i < t.n; i++) {
        unsigned char a = (unsigned char)t.p[i], b = (unsigned char)c->want.p[i];
        if (c->icase) {
            a = (unsigned char)(a >= 'A' && a <= 'Z' ? a + 32 : a);
            b = (unsigned char)(b >= 'A' && b <= 'Z' ? b + 32 : b);
        }
        eq = a == b;
    }
    c->hit |= eq;
    return eq;
}

/* `a == b` between two fields: any value of a equal to b's first value (its text, so that a
 * number and its string compare equal). A missing side makes == and != both false. */
static bool eval_fields(const node *n, const ch_event *ev, ch_expr_scratch *s)
{
    ch_value rv;
    if (!ch_field_first(n->rfield, ev, &s->cache, &rv))
        return false;
    char rbuf[CH_VALUE_TEXT_MAX];
    ch_sv rt = ch_value_text(&rv, rbuf);
    char want[512];
    if (rt.n == 0 || rt.n > sizeof want)
        return false;
    memcpy(want, rt.p, rt.n); /* the next visit may reuse the cache rt points into */
    field_ctx c = {{want, rt.n}, n->icase, false};
    size_t seen = ch_field_visit(n->field, ev, &s->cache, field_visit, &c);
    return n->neg ? (seen > 0 && !c.hit) : c.hit;
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
        if (n->ds_fast)
            return (n->ds_mask >> ev->dataset) & 1u;
        break;
    }
    if (n->rfield != NULL)
        return eval_fields(n, ev, s);
    if (n->op->test == NULL) { /* exists */
        bool present = ch_field_visit(n->field, ev, &s->cache, stop_at_first, NULL) > 0;
        return present != n->neg;
    }
    pred_ctx c = {n, s, false};
    size_t seen = ch_field_visit(n->field, ev, &s->cache, pred_visit, &c);
    return n->neg ? (seen > 0 && !c.hit) : c.hit;
}

/* memmem for needles of 2 bytes or more: 16 places at a time whose first and last bytes are
 * the needle's (SSE2, in every x86-64), each then compared. glibc's memmem ran about 1.5 GB/s on
 * CloudTrail records, which made looking for an absent literal cost as much as the parse it
 * saves. */
static const char *find(const char *h, size_t hn, const char *nd, size_t m)
{
#if defined(__x86_64__)
    if (m >= 2 && hn >= m + 15) {
        const __m128i first = _mm_set1_epi8(nd[0]), last = _mm_set1_epi8(nd[m - 1]);
        size_t i = 0;
        for (; i + m - 1 + 16 <= hn; i += 16) {
            __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(h + i));
            __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(h + i + m - 1));
            unsigned mask = (unsigned)_mm_movemask_epi8(
                _mm_and_si128(_mm_cmpeq_epi8(a, first), _mm_cmpeq_epi8(b, last)));
            while (mask != 0) {
                unsigned k = (unsigned)__builtin_ctz(mask);
                if (memcmp(h + i + k + 1, nd + 1, m - 2) == 0)
                    return h + i + k;
                mask &= mask - 1;
            }
        }
        return memmem(h + i, hn - i, nd, m);
    }
#endif
    return memmem(h, hn, nd, m);
}

/* Whether the record's text holds the test's literal, one of its list's, or one of the literals
 * every match of its pattern holds. */
static bool text_holds(const node *n, const char *t, size_t tn)
{
    if (n->op == &ch__op_matches) {
        const ch_re_prefilter *pf = n->re_pf;
        for (int i = 0; i < pf->nlit; i++)
            if (find(t, tn, pf->lit[i], pf->len[i]) != NULL)
                return true;
        return false;
    }
    const ch_sv *m = &n->lit.s;
    size_t k = 1;
    if (n->op == &ch__op_in_list && !ch__vset_strings(n->set, &m, &k))
        return true;
    for (size_t i = 0; i < k; i++)
        if (find(t, tn, m[i].p, m[i].n) != NULL)
            return true;
    return false;
}

/* Whether the record's text holds the test's path's last key, between quotes (ch__expr_pred_key
 * says when its absence rules the test out). The key is looked for alone and its quotes checked
 * after: a needle that starts and ends with a quote has candidates at most places in JSON. */
static bool text_has_key(const node *n, const char *t, size_t tn)
{
    ch_sv k = ch_field_ref_last_key(n->field);
    for (size_t at = 1; at + k.n < tn;) {
        const char *h = find(t + at, tn - at, k.p, k.n);
        if (h == NULL || (size_t)(h - t) + k.n >= tn)
            return false;
        if (h[-1] == '"' && h[k.n] == '"')
            return true;
        at = (size_t)(h - t) + 1;
    }
    return false;
}

/* Kleene's three values over the tree: a test of a raw path is unknown (-1), and/or/not
 * combine as in SQL's NULL logic, so a 0 or 1 here is the answer whatever the raw paths hold.
 * With the record's text t (not NULL), a test ch__expr_pred_text takes is false when the text
 * lacks its literals. Without an event (ev NULL) the tests of normalized fields are unknown
 * too. */
static int eval3(const node *n, const ch_event *ev, const char *t, size_t tn, ch_expr_scratch *s)
{
    switch (n->kind) {
    case N_AND:
    case N_OR: {
        int stop = n->kind == N_OR, r = !stop;
        for (uint32_t i = 0; i < n->nkids; i++) {
            int k = eval3(n->kids[i], ev, t, tn, s);
            if (k == stop)
                return stop;
            if (k < 0)
                r = -1;
        }
        return r;
    }
    case N_NOT: {
        int k = eval3(n->kids[0], ev, t, tn, s);
        return k < 0 ? -1 : !k;
    }
    case N_PRED:
        break;
    }
    if (!ch__expr_pred_raw(n))
        return ev != NULL ? eval_node(n, ev, s) : -1;
    if (t == NULL)
        return -1;
    if (n->text_lit && !text_holds(n, t, tn))
        return 0;
    return n->text_key && !text_has_key(n, t, tn) ? 0 : -1;
}

int ch_expr_eval_typed(const ch_expr *e, const ch_event *ev, ch_expr_scratch *s)
{
    return eval3(e->root, ev, NULL, 0, s);
}

int ch_expr_eval_text(const ch_expr *e, const ch_event *ev, const char *text, size_t n,
                      ch_expr_scratch *s)
{
    /* An escape could spell a literal's characters otherwise (\u0041 for A). */
    return eval3(e->root, ev, memchr(text, '\\', n) != NULL ? NULL : text, n, s);
}

int ch_expr_eval_text_alone(const ch_expr *e, const char *text, size_t n, ch_expr_scratch *s)
{
    if (memchr(text, '\\', n) != NULL)
        return -1;
    return eval3(e->root, NULL, text, n, s);
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
