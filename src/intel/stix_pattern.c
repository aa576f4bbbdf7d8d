/*
 * stix_pattern.c - the STIX 2.1 patterning language, compiled down to what a reference set can
 * hold: a flat disjunction of equality tests on domain-name, ipv4-addr, ipv6-addr and url
 * values.
 *
 * A recursive-descent parser over the whole grammar (observation expressions with OR, AND,
 * FOLLOWEDBY and qualifiers; comparison expressions with OR, AND, parentheses, NOT, every
 * operator and literal kind), so that a pattern is either understood or rejected with the offset
 * of the error; nothing is guessed from substrings. Each sub-expression yields the list of
 * loadable comparisons it is equivalent to when taken alone. OR concatenates the lists. AND,
 * FOLLOWEDBY and qualifiers drop theirs (holding one side of an AND in a set would match more
 * than the indicator says), counting the operator as an unsupported kind. Comparisons on other
 * objects or with other operators are counted by kind and dropped.
 *
 * Cost: one pass, linear in the pattern; nodes come from the caller's arena. Depth is capped
 * (CH_STIX_DEPTH_MAX) because the parser recurses, and the number of comparisons too.
 */
#include <string.h>

#include "intel/stix.h"

typedef struct node {
    ch_stix_cmp cmp;
    struct node *next;
} node;

typedef struct list {
    node *head, *tail;
    size_t n;
} list;

typedef enum tok {
    T_EOF,
    T_LBRACK,
    T_RBRACK,
    T_LPAREN,
    T_RPAREN,
    T_COMMA,
    T_OP,     /* = != > < >= <= */
    T_WORD,   /* keywords and object path pieces */
    T_STRING, /* '...' */
    T_TYPED,  /* t'...' h'...' b'...' */
    T_NUMBER,
    T_COLON,
    T_DOT,
    T_STAR,
} tok;

typedef struct parser {
    const char *s;
    size_t len, pos;
    /* current token */
    tok t;
    size_t tstart, tlen;
    int depth;
    size_t ncmps_seen;
    ch_arena *a;
    ch_stix_pattern *out;
    ch_error *err;
    int rc;
} parser;

static int fail(parser *p, int code, const char *what)
{
    if (p->rc == 0)
        p->rc = ch_error_set(p->err, code, "pattern offset %zu: %s", p->tstart, what);
    return p->rc;
}

static bool is_word_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* Scan a quoted string body starting after the opening quote; sets pos after the closing one. */
static int scan_quoted(parser *p)
{
    while (p->pos < p->len) {
        char c = p->s[p->pos++];
        if (c == '\\') {
            if (p->pos >= p->len)
                break;
            char e = p->s[p->pos++];
            if (e != '\\' && e != '\'')
                return fail(p, CH_EPARSE, "bad escape in string");
        } else if (c == '\'') {
            return 0;
        }
    }
    return fail(p, CH_EPARSE, "unterminated string");
}

static int next(parser *p)
{
    while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                               p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
    p->tstart = p->pos;
    if (p->pos >= p->len) {
        p->t = T_EOF;
        p->tlen = 0;
        return 0;
    }
    char c = p->s[p->pos];
    switch (c) {
    case '[':
        p->t = T_LBRACK;
        p->pos++;
        break;
    case ']':
        p->t = T_RBRACK;
        p->pos++;
        break;
    case '(':
        p->t = T_LPAREN;
        p->pos++;
        break;
    case ')':
        p->t = T_RPAREN;
        p->pos++;
        break;
    case ',':
        p->t = T_COMMA;
        p->pos++;
        break;
    case ':':
        p->t = T_COLON;
        p->pos++;
        break;
    case '.':
        p->t = T_DOT;
        p->pos++;
        break;
    case '*':
        p->t = T_STAR;
        p->pos++;
        break;
    case '=':
        p->t = T_OP;
        p->pos++;
        break;
    case '!':
        if (p->pos + 1 < p->len && p->s[p->pos + 1] == '=') {
            p->t = T_OP;
            p->pos += 2;
            break;
        }
        return fail(p, CH_EPARSE, "unexpected '!'");
    case '<':
    case '>':
        p->t = T_OP;
        p->pos++;
        if (p->pos < p->len && p->s[p->pos] == '=')
            p->pos++;
        break;
    case '\'':
        p->t = T_STRING;
        p->pos++;
        if (scan_quoted(p) < 0)
            return p->rc;
        break;
    default:
        if ((c == 't' || c == 'h' || c == 'b') && p->pos + 1 < p->len && p->s[p->pos + 1] == '\'') {
            p->t = T_TYPED;
            p->pos += 2;
            if (scan_quoted(p) < 0)
                return p->rc;
        } else if (is_digit(c) ||
                   ((c == '-' || c == '+') && p->pos + 1 < p->len && is_digit(p->s[p->pos + 1]))) {
            p->t = T_NUMBER;
            p->pos++;
            while (p->pos < p->len && (is_digit(p->s[p->pos]) || p->s[p->pos] == '.'))
                p->pos++;
        } else if (is_word_char(c)) {
            p->t = T_WORD;
            while (p->pos < p->len && is_word_char(p->s[p->pos]))
                p->pos++;
        } else {
            return fail(p, CH_EPARSE, "unexpected character");
        }
    }
    p->tlen = p->pos - p->tstart;
    return 0;
}

static bool is_word(const parser *p, const char *w)
{
    size_t n = strlen(w);
    return p->t == T_WORD && p->tlen == n && memcmp(p->s + p->tstart, w, n) == 0;
}

static bool is_op(const parser *p, const char *op)
{
    size_t n = strlen(op);
    return p->t == T_OP && p->tlen == n && memcmp(p->s + p->tstart, op, n) == 0;
}

static void add_kind(parser *p, const char *kind, size_t n)
{
    ch_stix_pattern *o = p->out;
    if (n >= CH_STIX_KIND_MAX)
        n = CH_STIX_KIND_MAX - 1;
    for (uint32_t i = 0; i < o->nkinds; i++)
        if (strlen(o->kinds[i]) == n && memcmp(o->kinds[i], kind, n) == 0)
            return;
    if (o->nkinds < CH_STIX_PATTERN_KINDS) {
        memcpy(o->kinds[o->nkinds], kind, n);
        o->kinds[o->nkinds][n] = '\0';
        o->nkinds++;
    }
}

/* Drop a list (an AND side, a qualified observation): its comparisons become unsupported. */
static void drop(parser *p, list *l, const char *why)
{
    if (l->n > 0)
        p->out->unsupported += (uint32_t)l->n;
    add_kind(p, why, strlen(why));
    l->head = l->tail = NULL;
    l->n = 0;
}

static void join(list *a, list *b)
{
    if (b->n == 0)
        return;
    if (a->n == 0) {
        *a = *b;
        return;
    }
    a->tail->next = b->head;
    a->tail = b->tail;
    a->n += b->n;
}

/* Unescape the current T_STRING token into the arena. */
static int string_value(parser *p, const char **out, size_t *outlen)
{
    const char *b = p->s + p->tstart + 1;
    size_t n = p->tlen - 2;
    char *v = ch_arena_alloc(p->a, n + 1);
    if (v == NULL)
        return fail(p, CH_ENOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (b[i] == '\\' && i + 1 < n)
            i++;
        v[k++] = b[i];
    }
    v[k] = '\0';
    *out = v;
    *outlen = k;
    return 0;
}

static int add_cmp(parser *p, list *l, ch_stix_obs obs)
{
    if (++p->ncmps_seen > CH_STIX_CMPS_MAX)
        return fail(p, CH_ELIMIT, "too many comparisons");
    node *nd = ch_arena_alloc(p->a, sizeof *nd);
    if (nd == NULL)
        return fail(p, CH_ENOMEM, "out of memory");
    memset(nd, 0, sizeof *nd);
    nd->cmp.obs = obs;
    if (string_value(p, &nd->cmp.value, &nd->cmp.len) < 0)
        return p->rc;
    if (l->n == 0)
        l->head = nd;
    else
        l->tail->next = nd;
    l->tail = nd;
    l->n++;
    return 0;
}

/* A literal of any kind (the current token); advances past it. */
static int literal(parser *p)
{
    if (p->t == T_STRING || p->t == T_TYPED || p->t == T_NUMBER || is_word(p, "true") ||
        is_word(p, "false"))
        return next(p);
    return fail(p, CH_EPARSE, "expected a literal");
}

/* objectType ':' path. Fills kind ("file:hashes") and whether it is a loadable object. */
static int object_path(parser *p, char *kind, size_t cap, ch_stix_obs *obs)
{
    *obs = 0;
    if (p->t != T_WORD)
        return fail(p, CH_EPARSE, "expected an object type");
    size_t ts = p->tstart, tl = p->tlen;
    if (next(p) < 0)
        return p->rc;
    if (p->t != T_COLON)
        return fail(p, CH_EPARSE, "expected ':' after the object type");
    if (next(p) < 0)
        return p->rc;
    if (p->t != T_WORD && p->t != T_STRING)
        return fail(p, CH_EPARSE, "expected a property name");
    size_t ps = p->tstart, pl = p->tlen;
    bool only_value = p->t == T_WORD && pl == 5 && memcmp(p->s + ps, "value", 5) == 0;
    snprintf(kind, cap, "%.*s:%.*s", (int)(tl > 40 ? 40 : tl), p->s + ts, (int)(pl > 40 ? 40 : pl),
             p->s + ps);
    if (next(p) < 0)
        return p->rc;
    /* further components: .name, .'quoted', [n], [*] */
    for (;;) {
        if (p->t == T_DOT) {
            if (next(p) < 0)
                return p->rc;
            if (p->t != T_WORD && p->t != T_STRING)
                return fail(p, CH_EPARSE, "expected a property name after '.'");
            only_value = false;
            if (next(p) < 0)
                return p->rc;
        } else if (p->t == T_LBRACK) {
            if (next(p) < 0)
                return p->rc;
            if (p->t != T_NUMBER && p->t != T_STAR)
                return fail(p, CH_EPARSE, "expected an index or '*'");
            if (next(p) < 0)
                return p->rc;
            if (p->t != T_RBRACK)
                return fail(p, CH_EPARSE, "expected ']' after the index");
            only_value = false;
            if (next(p) < 0)
                return p->rc;
        } else {
            break;
        }
    }
    if (only_value) {
        const char *t = p->s + ts;
        if (tl == 11 && memcmp(t, "domain-name", 11) == 0)
            *obs = CH_STIX_DOMAIN;
        else if (tl == 9 && memcmp(t, "ipv4-addr", 9) == 0)
            *obs = CH_STIX_IPV4;
        else if (tl == 9 && memcmp(t, "ipv6-addr", 9) == 0)
            *obs = CH_STIX_IPV6;
        else if (tl == 3 && memcmp(t, "url", 3) == 0)
            *obs = CH_STIX_URL;
    }
    return 0;
}

static int comparison_or(parser *p, list *out);

/* propTest or '(' comparisonExpression ')' */
static int prop_test(parser *p, list *out)
{
    memset(out, 0, sizeof *out);
    if (p->t == T_LPAREN) {
        if (++p->depth > CH_STIX_DEPTH_MAX)
            return fail(p, CH_ELIMIT, "nesting too deep");
        if (next(p) < 0 || comparison_or(p, out) < 0)
            return p->rc;
        if (p->t != T_RPAREN)
            return fail(p, CH_EPARSE, "expected ')'");
        p->depth--;
        return next(p);
    }
    if (is_word(p, "EXISTS")) {
        char kind[CH_STIX_KIND_MAX];
        ch_stix_obs obs;
        if (next(p) < 0 || object_path(p, kind, sizeof kind, &obs) < 0)
            return p->rc;
        p->out->unsupported++;
        add_kind(p, "EXISTS", 6);
        return 0;
    }
    char kind[CH_STIX_KIND_MAX];
    ch_stix_obs obs;
    if (object_path(p, kind, sizeof kind, &obs) < 0)
        return p->rc;
    bool negated = false;
    if (is_word(p, "NOT")) {
        negated = true;
        if (next(p) < 0)
            return p->rc;
    }
    const char *opkind = NULL;
    if (is_op(p, "=")) {
        if (next(p) < 0)
            return p->rc;
        if (!negated && obs != 0 && p->t == T_STRING) {
            if (add_cmp(p, out, obs) < 0)
                return p->rc;
            return next(p);
        }
        opkind = negated ? "NOT" : NULL;
        if (literal(p) < 0)
            return p->rc;
    } else if (p->t == T_OP) {
        opkind = negated ? "NOT" : is_op(p, "!=") ? "!=" : "ordering";
        if (next(p) < 0 || literal(p) < 0)
            return p->rc;
    } else if (is_word(p, "IN")) {
        if (next(p) < 0)
            return p->rc;
        if (p->t != T_LPAREN)
            return fail(p, CH_EPARSE, "expected '(' after IN");
        if (next(p) < 0)
            return p->rc;
        list l = {0};
        bool all_strings = true;
        for (;;) {
            if (p->t == T_STRING && obs != 0 && !negated) {
                if (add_cmp(p, &l, obs) < 0)
                    return p->rc;
            } else {
                all_strings = false;
            }
            if (literal(p) < 0)
                return p->rc;
            if (p->t == T_COMMA) {
                if (next(p) < 0)
                    return p->rc;
                continue;
            }
            if (p->t != T_RPAREN)
                return fail(p, CH_EPARSE, "expected ',' or ')' in a set literal");
            break;
        }
        if (next(p) < 0)
            return p->rc;
        if (negated || obs == 0) {
            opkind = negated ? "NOT" : NULL;
        } else {
            if (!all_strings) {
                p->out->unsupported++;
                add_kind(p, "IN non-string", 13);
            }
            *out = l;
            return 0;
        }
    } else if (is_word(p, "ISSUBSET")) {
        if (next(p) < 0)
            return p->rc;
        if (!negated && (obs == CH_STIX_IPV4 || obs == CH_STIX_IPV6) && p->t == T_STRING) {
            if (add_cmp(p, out, obs) < 0)
                return p->rc;
            return next(p);
        }
        opkind = negated ? "NOT" : obs == 0 ? NULL : "ISSUBSET";
        if (literal(p) < 0)
            return p->rc;
    } else if (is_word(p, "LIKE") || is_word(p, "MATCHES") || is_word(p, "ISSUPERSET")) {
        opkind = is_word(p, "LIKE") ? "LIKE" : is_word(p, "MATCHES") ? "MATCHES" : "ISSUPERSET";
        if (negated)
            opkind = "NOT";
        if (next(p) < 0 || literal(p) < 0)
            return p->rc;
    } else {
        return fail(p, CH_EPARSE, "expected a comparison operator");
    }
    /* dropped comparison */
    p->out->unsupported++;
    if (opkind != NULL)
        add_kind(p, opkind, strlen(opkind));
    else
        add_kind(p, kind, strlen(kind));
    return 0;
}

typedef int (*level_fn)(parser *p, list *out);

/* `operand (WORD operand)*` where WORD joins what no set can hold exactly (AND, FOLLOWEDBY):
 * every side is dropped and counted under WORD, never widened into a looser match. */
static int dropping_join(parser *p, list *out, const char *word, level_fn operand)
{
    if (operand(p, out) < 0)
        return p->rc;
    bool joined = false;
    while (is_word(p, word)) {
        list r;
        if (next(p) < 0 || operand(p, &r) < 0)
            return p->rc;
        if (!joined)
            drop(p, out, word);
        joined = true;
        drop(p, &r, word);
    }
    return 0;
}

/* `operand (OR operand)*`: the union of what every side holds. */
static int or_join(parser *p, list *out, level_fn operand)
{
    if (operand(p, out) < 0)
        return p->rc;
    while (is_word(p, "OR")) {
        list r;
        if (next(p) < 0 || operand(p, &r) < 0)
            return p->rc;
        join(out, &r);
    }
    return 0;
}

static int comparison_and(parser *p, list *out) { return dropping_join(p, out, "AND", prop_test); }
static int comparison_or(parser *p, list *out) { return or_join(p, out, comparison_and); }

static int observations(parser *p, list *out);

/* Qualifiers after an observation expression; any of them drops it. */
static int qualifiers(parser *p, list *l)
{
    for (;;) {
        if (is_word(p, "WITHIN")) {
            if (next(p) < 0)
                return p->rc;
            if (p->t != T_NUMBER)
                return fail(p, CH_EPARSE, "expected a number after WITHIN");
            if (next(p) < 0)
                return p->rc;
            if (!is_word(p, "SECONDS"))
                return fail(p, CH_EPARSE, "expected SECONDS");
            drop(p, l, "WITHIN");
        } else if (is_word(p, "REPEATS")) {
            if (next(p) < 0)
                return p->rc;
            if (p->t != T_NUMBER)
                return fail(p, CH_EPARSE, "expected a number after REPEATS");
            if (next(p) < 0)
                return p->rc;
            if (!is_word(p, "TIMES"))
                return fail(p, CH_EPARSE, "expected TIMES");
            drop(p, l, "REPEATS");
        } else if (is_word(p, "START")) {
            if (next(p) < 0)
                return p->rc;
            if (p->t != T_TYPED && p->t != T_STRING)
                return fail(p, CH_EPARSE, "expected a timestamp after START");
            if (next(p) < 0)
                return p->rc;
            if (!is_word(p, "STOP"))
                return fail(p, CH_EPARSE, "expected STOP");
            if (next(p) < 0)
                return p->rc;
            if (p->t != T_TYPED && p->t != T_STRING)
                return fail(p, CH_EPARSE, "expected a timestamp after STOP");
            drop(p, l, "START/STOP");
        } else {
            return 0;
        }
        if (next(p) < 0)
            return p->rc;
    }
}

static int observation(parser *p, list *out)
{
    memset(out, 0, sizeof *out);
    if (++p->depth > CH_STIX_DEPTH_MAX)
        return fail(p, CH_ELIMIT, "nesting too deep");
    if (p->t == T_LBRACK) {
        if (next(p) < 0 || comparison_or(p, out) < 0)
            return p->rc;
        if (p->t != T_RBRACK)
            return fail(p, CH_EPARSE, "expected ']'");
    } else if (p->t == T_LPAREN) {
        if (next(p) < 0 || observations(p, out) < 0)
            return p->rc;
        if (p->t != T_RPAREN)
            return fail(p, CH_EPARSE, "expected ')'");
    } else {
        return fail(p, CH_EPARSE, "expected '[' or '('");
    }
    p->depth--;
    if (next(p) < 0)
        return p->rc;
    return qualifiers(p, out);
}

static int obs_and(parser *p, list *out) { return dropping_join(p, out, "AND", observation); }
static int obs_or(parser *p, list *out) { return or_join(p, out, obs_and); }

static int observations(parser *p, list *out)
{
    if (dropping_join(p, out, "FOLLOWEDBY", obs_or) < 0)
        return p->rc;
    return qualifiers(p, out);
}

int ch_stix_pattern_compile(const char *pat, size_t len, ch_arena *a, ch_stix_pattern *out,
                            ch_error *err)
{
    memset(out, 0, sizeof *out);
    if (len > CH_STIX_PATTERN_MAX)
        return ch_error_set(err, CH_ELIMIT, "pattern of %zu bytes is over the cap of %u", len,
                            CH_STIX_PATTERN_MAX);
    parser p = {.s = pat, .len = len, .a = a, .out = out, .err = err};
    list l = {0};
    if (next(&p) < 0 || observations(&p, &l) < 0)
        goto fail;
    if (p.t != T_EOF) {
        fail(&p, CH_EPARSE, "unexpected text after the pattern");
        goto fail;
    }
    if (l.n > 0) {
        out->cmps = ch_arena_alloc(a, l.n * sizeof *out->cmps);
        if (out->cmps == NULL) {
            fail(&p, CH_ENOMEM, "out of memory");
            goto fail;
        }
        size_t i = 0;
        for (node *nd = l.head; nd != NULL && i < l.n; nd = nd->next)
            out->cmps[i++] = nd->cmp;
        out->ncmps = i;
    }
    return 0;
fail:
    out->cmps = NULL;
    out->ncmps = 0;
    return p.rc;
}
