/*
 * expr_prefilter.c - the literals a regular expression's every match contains, so that a text
 * without any of them is answered "no" without running PCRE2.
 *
 * Why: a `matches` predicate whose pattern has no literal start, such as CJ-RECON-01's
 * '(^|[^a-z])(kali|parrot|pentoo)' on every CloudTrail event's user agent, makes PCRE2 try
 * every position of the text: about 6,000 instructions for a 150-byte user agent, 15M of the
 * rules' 43M on 20k records (docs/BENCHMARKS.md section 55). The memo in expr_eval.c answers
 * repeated texts, but a trail's one-off user agents (1,813 distinct in 20k generated records)
 * each still ran the regex. One pass over the text with a 256-entry table of the literals'
 * first bytes costs a few instructions a byte.
 *
 * How: a small recursive descent over the pattern source finds, for each sequence, the literal
 * runs and groups that a match must contain; an alternation needs one literal of each branch
 * (the union); a sequence keeps the requirement with the longest shortest literal. Anything
 * this reader does not fully understand (escapes other than punctuation and the class
 * shorthands, `(?` other than `(?:`, non-ASCII pattern bytes, a `{` that is not a quantifier)
 * gives no prefilter: the regex then runs as before. Sets whose shortest literal is under 3
 * bytes, or of more than CH_RE_PF_MAX literals, are not worth a scan and are dropped too.
 *
 * Correctness with PCRE2's options (expr.c: UTF, MATCH_INVALID_UTF, CASELESS for `matches~`):
 * a caseless match of an ASCII literal in an ASCII text is an ASCII case-insensitive match,
 * but Unicode case folding also matches 'k' with U+212A (KELVIN SIGN) and 's' with U+017F,
 * so a caseless prefilter sends any text with a byte >= 0x80 to PCRE2. A case-sensitive
 * literal is the same bytes in UTF-8 whatever surrounds it. A text the prefilter turns away
 * never reaches PCRE2, so it can no longer fail with a match-limit error: it is a plain "no".
 */
#include <string.h>

#include "rules/expr_int.h"

#define PF_MIN_LEN 3
#define PF_MAX_DEPTH 32

/* A set of literals (n >= 0), or no requirement known (n < 0). */
typedef struct lset {
    int n;
    uint8_t len[CH_RE_PF_MAX];
    char s[CH_RE_PF_MAX][CH_RE_PF_LEN];
} lset;

typedef struct pstate {
    const char *p, *end;
    bool icase;
    bool fail; /* something this reader does not understand: no prefilter at all */
    int depth;
} pstate;

static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c; }

static int shortest(const lset *s)
{
    int m = CH_RE_PF_LEN + 1;
    for (int i = 0; i < s->n; i++)
        if (s->len[i] < m)
            m = s->len[i];
    return s->n > 0 ? m : 0;
}

/* Keep in best whichever of best and cand needs the longer literal (then the fewer). */
static void consider(lset *best, const lset *cand)
{
    if (cand->n <= 0)
        return;
    int a = shortest(best), b = shortest(cand);
    if (best->n <= 0 || b > a || (b == a && cand->n < best->n))
        *best = *cand;
}

static void union_into(lset *a, const lset *b)
{
    if (a->n < 0 || b->n <= 0 || a->n + b->n > CH_RE_PF_MAX) {
        a->n = -1;
        return;
    }
    for (int i = 0; i < b->n; i++) {
        a->len[a->n] = b->len[i];
        memcpy(a->s[a->n], b->s[i], b->len[i]);
        a->n++;
    }
}

/* The current literal run becomes a candidate and starts again. */
static void flush(lset *best, char *run, int *rn)
{
    if (*rn > 0) {
        lset c = {.n = 1};
        c.len[0] = (uint8_t)*rn;
        memcpy(c.s[0], run, (size_t)*rn);
        consider(best, &c);
    }
    *rn = 0;
}

/* [...]: skipped whole; it is one character of unknown value. */
static void skip_class(pstate *ps)
{
    if (ps->p < ps->end && *ps->p == '^')
        ps->p++;
    if (ps->p < ps->end && *ps->p == ']')
        ps->p++;
    while (ps->p < ps->end) {
        char c = *ps->p++;
        if (c == ']')
            return;
        if (c == '\\') {
            if (ps->p >= ps->end)
                break;
            ps->p++;
        } else if (c == '[' && ps->p < ps->end && *ps->p == ':') {
            const char *q = ps->p + 1;
            while (q + 1 < ps->end && !(q[0] == ':' && q[1] == ']'))
                q++;
            if (q + 1 >= ps->end)
                break;
            ps->p = q + 2;
        }
    }
    ps->fail = true;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* A quantifier after an atom, if any: its minimum count (0 or 1 is all that matters), or -1
 * when there is none. A '{' that is not a well-formed quantifier fails the reader. */
static int quantifier(pstate *ps)
{
    if (ps->p >= ps->end)
        return -1;
    int min;
    char c = *ps->p;
    if (c == '*' || c == '?') {
        min = 0;
        ps->p++;
    } else if (c == '+') {
        min = 1;
        ps->p++;
    } else if (c == '{') {
        const char *q = ps->p + 1;
        unsigned lo = 0;
        bool digits = false;
        while (q < ps->end && is_digit(*q)) {
            lo = lo * 10 + (unsigned)(*q++ - '0');
            digits = true;
            if (lo > 100000)
                break;
        }
        if (q < ps->end && *q == ',') {
            q++;
            while (q < ps->end && is_digit(*q)) {
                q++;
                digits = true;
            }
        }
        if (!digits || q >= ps->end || *q != '}') {
            ps->fail = true;
            return -1;
        }
        ps->p = q + 1;
        min = lo > 0 ? 1 : 0;
    } else {
        return -1;
    }
    if (ps->p < ps->end && (*ps->p == '?' || *ps->p == '+')) /* lazy or possessive */
        ps->p++;
    return min;
}

static lset parse_alt(pstate *ps);

/* One branch: atoms up to '|', ')' or the end. */
static lset parse_seq(pstate *ps)
{
    lset best = {.n = -1};
    char run[CH_RE_PF_LEN];
    int rn = 0;
    bool run_full = false; /* run truncated: what follows is not contiguous with it */
    while (ps->p < ps->end && !ps->fail) {
        char c = *ps->p;
        if (c == '|' || c == ')')
            break;
        ps->p++;
        bool literal = false;
        char ch = 0;
        lset group = {.n = -1};
        bool is_group = false;
        if (c == '\\') {
            if (ps->p >= ps->end) {
                ps->fail = true;
                break;
            }
            char d = *ps->p++;
            if ((unsigned char)d >= 0x80) {
                ps->fail = true;
                break;
            }
            bool alnum = (d >= 'a' && d <= 'z') || (d >= 'A' && d <= 'Z') || is_digit(d);
            if (!alnum) {
                literal = true;
                ch = d;
            } else if (strchr("bBAzZG", d) != NULL) {
                flush(&best, run, &rn); /* zero-width: ends the run, consumes nothing */
                run_full = false;
                continue;
            } else if (strchr("dDsSwWhHvVNR", d) == NULL) {
                ps->fail = true; /* \x, \Q, \p, back-references... */
                break;
            }
        } else if (c == '[') {
            skip_class(ps);
        } else if (c == '.') {
            /* any character */
        } else if (c == '^' || c == '$') {
            flush(&best, run, &rn);
            run_full = false;
            continue;
        } else if (c == '(') {
            if (ps->p < ps->end && *ps->p == '?') {
                if (ps->p + 1 < ps->end && ps->p[1] == ':') {
                    ps->p += 2;
                } else {
                    ps->fail = true; /* lookaround, options, names: not read here */
                    break;
                }
            }
            if (++ps->depth > PF_MAX_DEPTH) {
                ps->fail = true;
                break;
            }
            group = parse_alt(ps);
            ps->depth--;
            if (ps->p >= ps->end || *ps->p != ')') {
                ps->fail = true;
                break;
            }
            ps->p++;
            is_group = true;
        } else if (c == '*' || c == '+' || c == '?' || c == '{' || (unsigned char)c >= 0x80) {
            ps->fail = true;
            break;
        } else {
            literal = true;
            ch = c;
        }
        if (ps->fail)
            break;
        int min = quantifier(ps);
        if (ps->fail)
            break;
        if (literal && min != 0) {
            if (rn < CH_RE_PF_LEN && !run_full)
                run[rn++] = ps->icase ? lower(ch) : ch;
            else
                run_full = true;
            if (min == 1) { /* repeated: one copy is required, what follows may not be next */
                flush(&best, run, &rn);
                run_full = false;
            }
            continue;
        }
        flush(&best, run, &rn);
        run_full = false;
        if (is_group && min != 0)
            consider(&best, &group);
    }
    flush(&best, run, &rn);
    return best;
}

static lset parse_alt(pstate *ps)
{
    lset all = parse_seq(ps);
    while (!ps->fail && ps->p < ps->end && *ps->p == '|') {
        ps->p++;
        lset b = parse_seq(ps);
        union_into(&all, &b);
    }
    return all;
}

bool ch__re_prefilter_build(const char *pat, size_t n, bool icase, ch_re_prefilter *out)
{
    pstate ps = {pat, pat + n, icase, false, 0};
    lset s = parse_alt(&ps);
    if (ps.fail || ps.p != ps.end || s.n <= 0 || shortest(&s) < PF_MIN_LEN)
        return false;
    memset(out, 0, sizeof *out);
    out->icase = icase;
    out->nlit = (uint8_t)s.n;
    for (int i = 0; i < s.n; i++) {
        out->len[i] = s.len[i];
        memcpy(out->lit[i], s.s[i], s.len[i]);
        unsigned char f = (unsigned char)s.s[i][0];
        out->first[f] = 1;
        if (icase && f >= 'a' && f <= 'z')
            out->first[f - 32] = 1;
    }
    if (icase)
        memset(out->first + 0x80, 2, 0x80);
    return true;
}

bool ch__re_prefilter_may_match(const ch_re_prefilter *pf, const char *t, size_t n)
{
    const unsigned char *u = (const unsigned char *)t;
    for (size_t i = 0; i < n; i++) {
        uint8_t f = pf->first[u[i]];
        if (f == 0)
            continue;
        if (f == 2)
            return true; /* non-ASCII under caseless matching: PCRE2 decides */
        char c0 = pf->icase ? lower((char)u[i]) : (char)u[i];
        for (int k = 0; k < pf->nlit; k++) {
            size_t ln = pf->len[k];
            if (pf->lit[k][0] != c0 || ln > n - i)
                continue;
            size_t j = 1;
            if (pf->icase)
                while (j < ln && lower(t[i + j]) == pf->lit[k][j])
                    j++;
            else
                while (j < ln && t[i + j] == pf->lit[k][j])
                    j++;
            if (j == ln)
                return true;
        }
    }
    return false;
}
