/*
 * expr_lex.c - the tokenizer of the expression language.
 *
 * Literals are decoded here, once: string escapes, numbers, durations (to ms), IPv4/IPv6
 * addresses and CIDRs (to bytes). Field paths are words of [A-Za-z0-9_@.-] starting with a
 * letter, '_' or '@' ('-' is allowed inside because flow-log columns are named tcp-flags);
 * anything else goes between backquotes. Addresses are told from paths by shape: a run of
 * hex digits, dots and colons that holds a colon is IPv6, four dotted decimals are IPv4.
 *
 * The lexer is linear in the source and allocates decoded strings from the expression's
 * arena (at most the source's size in total).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "rules/expr_int.h"

void ch__expr_linecol(const char *src, size_t n, size_t pos, unsigned *line, unsigned *col)
{
    unsigned l = 1, c = 1;
    for (size_t i = 0; i < pos && i < n; i++) {
        unsigned char ch = (unsigned char)src[i];
        if (ch == '\n') {
            l++;
            c = 1;
        } else if ((ch & 0xC0) != 0x80) { /* count characters, not UTF-8 continuation bytes */
            c++;
        }
    }
    *line = l;
    *col = c;
}

static int lex_error(lexer *lx, size_t pos, int code, const char *what, const char *detail)
{
    unsigned l, c;
    ch__expr_linecol(lx->src, lx->n, pos, &l, &c);
    return ch_error_set(lx->err, code, "%s at %u:%u%s", what, l, c, detail ? detail : "");
}

static const struct {
    const char *word;
    tok_kind k;
    bool tilde; /* may take a '~' suffix */
} keywords[] = {
    {"and", T_AND, false},
    {"AND", T_AND, false},
    {"or", T_OR, false},
    {"OR", T_OR, false},
    {"not", T_NOT, false},
    {"NOT", T_NOT, false},
    {"in", T_IN, true},
    {"exists", T_EXISTS, false},
    {"contains", T_CONTAINS, true},
    {"startswith", T_STARTSWITH, true},
    {"endswith", T_ENDSWITH, true},
    {"matches", T_MATCHES, true},
    {"true", T_TRUE, false},
    {"false", T_FALSE, false},
};

const char *ch__expr_tok_name(tok_kind k, bool icase)
{
    switch (k) {
    case T_EQ:
        return "==";
    case T_NE:
        return "!=";
    case T_IEQ:
        return "=~";
    case T_INE:
        return "!~";
    case T_LT:
        return "<";
    case T_LE:
        return "<=";
    case T_GT:
        return ">";
    case T_GE:
        return ">=";
    case T_IN:
        return icase ? "in~" : "in";
    case T_CONTAINS:
        return icase ? "contains~" : "contains";
    case T_STARTSWITH:
        return icase ? "startswith~" : "startswith";
    case T_ENDSWITH:
        return icase ? "endswith~" : "endswith";
    case T_MATCHES:
        return icase ? "matches~" : "matches";
    case T_EXISTS:
        return "exists";
    case T_NOT:
        return "not";
    case T_AND:
        return "and";
    case T_OR:
        return "or";
    default:
        return "?";
    }
}

const char *ch__expr_tok_desc(const lexer *lx, const tok *t, char *buf, size_t cap)
{
    if (t->k == T_EOF)
        return "end of input";
    size_t n = t->len > 40 ? 40 : t->len;
    /* Show control bytes as '?' so that a message stays one printable line. */
    char tmp[41];
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)lx->src[t->pos + i];
        tmp[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    tmp[n] = '\0';
    snprintf(buf, cap, "'%s%s'", tmp, t->len > 40 ? "..." : "");
    return buf;
}

static bool is_word_start(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '@';
}
static bool is_word(int c)
{
    return is_word_start(c) || (c >= '0' && c <= '9') || c == '.' || c == '-';
}
static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_hex(int c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static bool hex4(const char *s, size_t avail, uint32_t *out)
{
    uint32_t v = 0;
    if (avail < 4)
        return false;
    for (int i = 0; i < 4; i++) {
        int c = (unsigned char)s[i];
        if (!is_hex(c))
            return false;
        v = v * 16 + (uint32_t)(is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    *out = v;
    return true;
}

/* "..." with JSON escapes; a decoded string is never longer than its source. */
static int lex_dq_string(lexer *lx, tok *t)
{
    size_t st = lx->pos, i = st + 1, k = 0;
    /* Find the closing quote first, so that the decoded copy is sized to this string and
     * not to the rest of the source. */
    size_t j = st + 1;
    while (j < lx->n && lx->src[j] != '"')
        j += lx->src[j] == '\\' ? 2 : 1;
    if (j >= lx->n)
        return lex_error(lx, st, CH_EPARSE, "unterminated string starting", NULL);
    char *o = ch_arena_alloc(lx->arena, j - st);
    if (o == NULL)
        return ch_error_set(lx->err, CH_ENOMEM, "out of memory");
    for (;;) {
        if (i >= lx->n)
            return lex_error(lx, st, CH_EPARSE, "unterminated string starting", NULL);
        char c = lx->src[i];
        if (c == '"') {
            i++;
            break;
        }
        if (c != '\\') {
            o[k++] = c;
            i++;
            continue;
        }
        if (i + 1 >= lx->n)
            return lex_error(lx, st, CH_EPARSE, "unterminated string starting", NULL);
        char e = lx->src[i + 1];
        switch (e) {
        case '"':
            o[k++] = '"';
            break;
        case '\\':
            o[k++] = '\\';
            break;
        case '/':
            o[k++] = '/';
            break;
        case 'b':
            o[k++] = '\b';
            break;
        case 'f':
            o[k++] = '\f';
            break;
        case 'n':
            o[k++] = '\n';
            break;
        case 'r':
            o[k++] = '\r';
            break;
        case 't':
            o[k++] = '\t';
            break;
        case 'u': {
            uint32_t cp, lo;
            if (!hex4(lx->src + i + 2, lx->n - (i + 2), &cp))
                return lex_error(lx, i, CH_EPARSE, "expected four hex digits after '\\u'", NULL);
            i += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (i + 2 + 6 > lx->n || lx->src[i + 2] != '\\' || lx->src[i + 3] != 'u' ||
                    !hex4(lx->src + i + 4, lx->n - (i + 4), &lo) || lo < 0xDC00 || lo > 0xDFFF)
                    return lex_error(lx, i - 4, CH_EPARSE,
                                     "expected a low surrogate '\\uDC00'..'\\uDFFF' after", NULL);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return lex_error(lx, i - 4, CH_EPARSE, "lone low surrogate", NULL);
            }
            /* \uXXXX is 6 source bytes for at most 3 output bytes, a pair 12 for 4. */
            k += (size_t)put_utf8(o + k, cp);
            break;
        }
        default: {
            char d[96];
            snprintf(d, sizeof d, " (use single quotes for a raw string, as in matches '\\d+')");
            char what[48];
            unsigned char ec = (unsigned char)e;
            if (ec >= 0x20 && ec < 0x7f)
                snprintf(what, sizeof what, "unknown escape '\\%c' in string", e);
            else
                snprintf(what, sizeof what, "unknown escape '\\x%02x' in string", ec);
            return lex_error(lx, i, CH_EPARSE, what, d);
        }
        }
        i += 2;
    }
    o[k] = '\0';
    t->k = T_STR;
    t->str = o;
    t->slen = (uint32_t)k;
    t->len = (uint32_t)(i - st);
    lx->pos = i;
    return 0;
}

/* '...' raw: no escapes at all, for regular expressions. */
static int lex_sq_string(lexer *lx, tok *t, char quote, tok_kind k)
{
    size_t st = lx->pos;
    const char *end = memchr(lx->src + st + 1, quote, lx->n - st - 1);
    if (end == NULL)
        return lex_error(lx, st, CH_EPARSE,
                         quote == '`' ? "unterminated `quoted field path` starting"
                                      : "unterminated string starting",
                         NULL);
    size_t n = (size_t)(end - (lx->src + st + 1));
    if (k == T_IDENT && n == 0)
        return lex_error(lx, st, CH_EPARSE, "empty `quoted field path`", NULL);
    t->str = ch_arena_strndup(lx->arena, lx->src + st + 1, n);
    if (t->str == NULL)
        return ch_error_set(lx->err, CH_ENOMEM, "out of memory");
    t->k = k;
    t->slen = (uint32_t)n;
    t->len = (uint32_t)(n + 2);
    lx->pos = st + n + 2;
    return 0;
}

static int lex_prefix(lexer *lx, size_t *i, unsigned max, uint8_t *prefix, size_t st)
{
    size_t j = *i + 1, ds = j;
    unsigned v = 0;
    while (j < lx->n && is_digit((unsigned char)lx->src[j]) && j - ds < 4)
        v = v * 10 + (unsigned)(lx->src[j++] - '0');
    if (j == ds || v > max || (j < lx->n && is_word((unsigned char)lx->src[j]))) {
        char d[48];
        snprintf(d, sizeof d, " (0..%u)", max);
        return lex_error(lx, st, CH_EPARSE, "invalid CIDR prefix length", d);
    }
    *prefix = (uint8_t)v;
    *i = j;
    return 0;
}

/* An address (and /prefix) starting at st spanning [st, e). */
static int lex_address(lexer *lx, tok *t, size_t st, size_t e, bool v6)
{
    if (!ch_ip_parse(lx->src + st, e - st, &t->ip) ||
        (v6 && t->ip.family != 6 && t->ip.family != 4))
        return lex_error(lx, st, CH_EPARSE, v6 ? "invalid IPv6 address" : "invalid IPv4 address",
                         NULL);
    t->k = T_IP;
    if (e < lx->n && lx->src[e] == '/') {
        int rc = lex_prefix(lx, &e, t->ip.family == 4 ? 32 : 128, &t->prefix, st);
        if (rc < 0)
            return rc;
        t->k = T_CIDR;
    }
    if (e < lx->n && (is_word((unsigned char)lx->src[e]) || lx->src[e] == ':'))
        return lex_error(lx, st, CH_EPARSE, v6 ? "invalid IPv6 address" : "invalid IPv4 address",
                         NULL);
    t->len = (uint32_t)(e - st);
    lx->pos = e;
    return 0;
}

static const struct {
    const char *unit;
    double ms;
} units[] = {{"ms", 1}, {"s", 1e3}, {"m", 60e3}, {"h", 3600e3}, {"d", 86400e3}, {"w", 604800e3}};

static int lex_number(lexer *lx, tok *t, size_t st)
{
    size_t i = st;
    if (lx->src[i] == '-')
        i++;
    while (i < lx->n && is_digit((unsigned char)lx->src[i]))
        i++;
    if (i + 1 < lx->n && lx->src[i] == '.' && is_digit((unsigned char)lx->src[i + 1])) {
        i++;
        while (i < lx->n && is_digit((unsigned char)lx->src[i]))
            i++;
    }
    if (i < lx->n && (lx->src[i] == 'e' || lx->src[i] == 'E')) {
        size_t j = i + 1;
        if (j < lx->n && (lx->src[j] == '+' || lx->src[j] == '-'))
            j++;
        if (j < lx->n && is_digit((unsigned char)lx->src[j])) {
            while (j < lx->n && is_digit((unsigned char)lx->src[j]))
                j++;
            i = j;
        }
    }
    size_t numend = i;
    if (!ch_parse_number(lx->src + st, numend - st, &t->is_int, &t->i, &t->d))
        return lex_error(lx, st, CH_EPARSE, "invalid number", NULL);
    t->k = T_NUM;
    /* A unit right after the digits makes a duration. */
    size_t ue = i;
    while (ue < lx->n && ((lx->src[ue] >= 'a' && lx->src[ue] <= 'z') ||
                          (lx->src[ue] >= 'A' && lx->src[ue] <= 'Z')))
        ue++;
    if (ue > i) {
        size_t k;
        for (k = 0; k < sizeof units / sizeof units[0]; k++)
            if (strlen(units[k].unit) == ue - i && memcmp(units[k].unit, lx->src + i, ue - i) == 0)
                break;
        if (k == sizeof units / sizeof units[0])
            return lex_error(lx, i, CH_EPARSE, "unknown duration unit",
                             " (use ms, s, m, h, d or w, as in 10m)");
        double ms = t->d * units[k].ms;
        if (!isfinite(ms) || fabs(ms) > 9.2e18)
            return lex_error(lx, st, CH_EPARSE, "duration out of range", NULL);
        t->k = T_DUR;
        t->is_int = true;
        t->i = (int64_t)llround(ms);
        t->d = (double)t->i;
        i = ue;
    }
    if (i < lx->n && (is_word((unsigned char)lx->src[i]) || lx->src[i] == ':'))
        return lex_error(lx, st, CH_EPARSE, "invalid number", NULL);
    t->len = (uint32_t)(i - st);
    lx->pos = i;
    return 0;
}

/* Token starting with a digit, ':' or a hex letter: an address, a number or (for letters
 * without a colon in the run) a word. Returns 1 when it is a word for the caller. */
static int lex_numeric(lexer *lx, tok *t, size_t st)
{
    size_t e = st;
    bool colon = false;
    while (e < lx->n &&
           (is_hex((unsigned char)lx->src[e]) || lx->src[e] == ':' || lx->src[e] == '.')) {
        colon |= lx->src[e] == ':';
        e++;
    }
    if (colon)
        return lex_address(lx, t, st, e, true);
    if (!is_digit((unsigned char)lx->src[st]))
        return 1;
    /* Four dotted decimals: IPv4. */
    size_t j = st;
    int dots = 0;
    while (j < lx->n && (is_digit((unsigned char)lx->src[j]) || lx->src[j] == '.')) {
        dots += lx->src[j] == '.';
        j++;
    }
    if (dots == 3)
        return lex_address(lx, t, st, j, false);
    return lex_number(lx, t, st);
}

static int lex_word(lexer *lx, tok *t, size_t st)
{
    size_t e = st;
    while (e < lx->n && is_word((unsigned char)lx->src[e]))
        e++;
    size_t n = e - st;
    t->len = (uint32_t)n;
    for (size_t k = 0; k < sizeof keywords / sizeof keywords[0]; k++) {
        if (strlen(keywords[k].word) != n || memcmp(keywords[k].word, lx->src + st, n) != 0)
            continue;
        t->k = keywords[k].k;
        if (keywords[k].tilde && e < lx->n && lx->src[e] == '~') {
            t->icase = true;
            e++;
            t->len++;
        }
        lx->pos = e;
        return 0;
    }
    t->k = T_IDENT;
    t->str = ch_arena_strndup(lx->arena, lx->src + st, n);
    if (t->str == NULL)
        return ch_error_set(lx->err, CH_ENOMEM, "out of memory");
    t->slen = (uint32_t)n;
    lx->pos = e;
    return 0;
}

int ch__expr_lex(lexer *lx, tok *t)
{
    memset(t, 0, sizeof *t);
    /* Whitespace and # comments. */
    for (;;) {
        while (lx->pos < lx->n && (lx->src[lx->pos] == ' ' || lx->src[lx->pos] == '\t' ||
                                   lx->src[lx->pos] == '\n' || lx->src[lx->pos] == '\r'))
            lx->pos++;
        if (lx->pos < lx->n && lx->src[lx->pos] == '#') {
            while (lx->pos < lx->n && lx->src[lx->pos] != '\n')
                lx->pos++;
            continue;
        }
        break;
    }
    size_t st = lx->pos;
    t->pos = (uint32_t)st;
    if (st >= lx->n) {
        t->k = T_EOF;
        return 0;
    }
    char c = lx->src[st];
    char c1 = st + 1 < lx->n ? lx->src[st + 1] : '\0';
    t->len = 1;
    switch (c) {
    case '(':
        t->k = T_LP;
        break;
    case ')':
        t->k = T_RP;
        break;
    case '[':
        t->k = T_LB;
        break;
    case ']':
        t->k = T_RB;
        break;
    case ',':
        t->k = T_COMMA;
        break;
    case '=':
        if (c1 == '=')
            t->k = T_EQ;
        else if (c1 == '~')
            t->k = T_IEQ;
        else
            return lex_error(lx, st, CH_EPARSE, "unexpected '='", " (use '==' to compare)");
        t->len = 2;
        break;
    case '!':
        if (c1 == '=' || c1 == '~') {
            t->k = c1 == '=' ? T_NE : T_INE;
            t->len = 2;
        } else {
            t->k = T_NOT;
        }
        break;
    case '<':
    case '>':
        t->k = c == '<' ? (c1 == '=' ? T_LE : T_LT) : (c1 == '=' ? T_GE : T_GT);
        t->len = c1 == '=' ? 2 : 1;
        break;
    case '&':
    case '|':
        if (c1 != c)
            return lex_error(lx, st, CH_EPARSE, c == '&' ? "unexpected '&'" : "unexpected '|'",
                             c == '&' ? " (use 'and' or '&&')" : " (use 'or' or '||')");
        t->k = c == '&' ? T_AND : T_OR;
        t->len = 2;
        break;
    case '"':
        return lex_dq_string(lx, t);
    case '\'':
        return lex_sq_string(lx, t, '\'', T_STR);
    case '`':
        return lex_sq_string(lx, t, '`', T_IDENT);
    case '$': {
        size_t e = st + 1;
        while (e < lx->n && is_word((unsigned char)lx->src[e]))
            e++;
        if (e == st + 1)
            return lex_error(lx, st, CH_EPARSE, "expected a set name after '$'", NULL);
        t->k = T_SET;
        t->str = ch_arena_strndup(lx->arena, lx->src + st + 1, e - st - 1);
        if (t->str == NULL)
            return ch_error_set(lx->err, CH_ENOMEM, "out of memory");
        t->slen = (uint32_t)(e - st - 1);
        t->len = (uint32_t)(e - st);
        lx->pos = e;
        return 0;
    }
    case '-':
        if (!is_digit((unsigned char)c1))
            return lex_error(lx, st, CH_EPARSE, "unexpected '-'", NULL);
        return lex_number(lx, t, st);
    default:
        if (is_hex((unsigned char)c) || c == ':') {
            int rc = lex_numeric(lx, t, st);
            if (rc <= 0)
                return rc;
        }
        if (is_word_start((unsigned char)c))
            return lex_word(lx, t, st);
        {
            unsigned char uc = (unsigned char)c;
            char what[48];
            if (uc >= 0x20 && uc < 0x7f)
                snprintf(what, sizeof what, "unexpected character '%c'", c);
            else
                snprintf(what, sizeof what, "unexpected byte 0x%02x", uc);
            return lex_error(lx, st, CH_EPARSE, what, NULL);
        }
    }
    lx->pos = st + t->len;
    return 0;
}
