/*
 * refset_list.c - plain block lists into reference sets: domain lists, hosts files, Adblock
 * "||domain^" rules, address and CIDR lists, string and number lists, one entry a line.
 *
 * Every line ends in exactly one counter (added, refreshed, skipped, bad, unsupported,
 * wrong_type, dropped), and every line that is not loaded and not a comment is also reported to
 * the ch_diag with its line number, so that what a feed lost is visible. The loader never widens
 * an entry: an Adblock rule for a path, a wildcard or a port on a host is narrower than the host,
 * and storing the host would flag traffic the feed never listed, so it is counted as
 * unsupported_entry instead.
 *
 * Lines are classified with a few byte scans; the cost of loading is the set's (one hash and one
 * probe per entry, one allocation per new domain).
 */
#include "enrich/refset_int.h"

#include <stdio.h>

#include "core/mem.h"
#include "ingest/input.h"

#define DEFAULT_MAX_LINE 4096
/* Bytes that make a token a URL, a pattern or a filter rule rather than a host. */
#define FILTER_CHARS "/^$*|@=?&:%\\"

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

static void trim(const char **t, size_t *n)
{
    while (*n > 0 && is_ws(**t)) {
        (*t)++;
        (*n)--;
    }
    while (*n > 0 && is_ws((*t)[*n - 1]))
        (*n)--;
}

static bool has(const char *t, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(t + i, needle, m) == 0)
            return true;
    return false;
}

static bool has_any(const char *t, size_t n, const char *chars)
{
    for (size_t i = 0; i < n; i++)
        if (strchr(chars, t[i]) != NULL && t[i] != '\0')
            return true;
    return false;
}

/* A printable excerpt of input for messages: control bytes become '?', long text is cut. */
static const char *excerpt(const char *t, size_t n, char *out, size_t cap)
{
    size_t max = cap - 4, j = 0;
    for (size_t i = 0; i < n && j < max; i++)
        out[j++] = ((unsigned char)t[i] >= 0x20 && (unsigned char)t[i] < 0x7f) ? t[i] : '?';
    if (n > max) {
        memcpy(out + j, "...", 3);
        j += 3;
    }
    out[j] = '\0';
    return out;
}

typedef struct ctx {
    ch_refset *s;
    const ch_refset_load_opts *o;
    ch_diag *diag;
    ch_refset_load_stats *st;
    const char *name;
    uint64_t line_no;
    bool adblock; /* "[Adblock ...]" seen: plain lines are URL substrings, not hosts */
} ctx;

static void report(ctx *c, const char *reason, const char *why, const char *t, size_t n)
{
    char ex[80];
    if (c->diag != NULL)
        ch_diag_report(c->diag, CH_DS_UNKNOWN, c->name, c->line_no, UINT64_MAX, reason, "%s: '%s'",
                       why, excerpt(t, n, ex, sizeof ex));
}

static void unsupported(ctx *c, const char *why, const char *t, size_t n)
{
    c->st->unsupported++;
    report(c, "unsupported_entry", why, t, n);
}

static void bad(ctx *c, const char *why, const char *t, size_t n)
{
    c->st->bad++;
    report(c, "bad_entry", why, t, n);
}

static void wrong_type(ctx *c, const char *what, const char *t, size_t n)
{
    c->st->wrong_type++;
    report(c, "wrong_type", what, t, n);
}

/* Count the outcome of an add; only running out of memory stops the load. */
static int outcome(ctx *c, ch_refset *target, int rc, const ch_error *e, const char *t, size_t n)
{
    if (rc == 1) {
        c->st->added++;
    } else if (rc == 0) {
        c->st->refreshed++;
    } else if (rc == CH_ENOMEM) {
        return rc;
    } else if (rc == CH_ELIMIT && ch_refset_count(target) >= target->max_elems) {
        c->st->dropped++;
        report(c, "set_full", e->msg, t, n);
    } else {
        bad(c, e->msg, t, n);
    }
    return CH_OK;
}

static int add_ip(ctx *c, const ch_ip *net, unsigned prefix, const char *t, size_t n)
{
    ch_refset *target = c->s->type == CH_REFSET_IP ? c->s : c->o->ip_set;
    if (target == NULL || target->type != CH_REFSET_IP) {
        wrong_type(c, "address in a non-address set", t, n);
        return CH_OK;
    }
    ch_error e = {0};
    int rc = ch_refset_add_ip(target, net, prefix, &c->o->meta, &e);
    return outcome(c, target, rc, &e, t, n);
}

static int add_domain(ctx *c, const char *t, size_t n)
{
    if (c->s->type != CH_REFSET_DOMAIN) {
        wrong_type(c, "domain in a non-domain set", t, n);
        return CH_OK;
    }
    ch_error e = {0};
    int rc = ch_refset_add(c->s, t, n, &c->o->meta, &e);
    return outcome(c, c->s, rc, &e, t, n);
}

/* One token that should be an address, a CIDR or a domain; host: a name of a hosts-file line,
 * which is a host whatever the list's syntax. */
static int add_token(ctx *c, const char *t, size_t n, bool host)
{
    ch_ip net;
    unsigned prefix;
    if (ch__rs_parse_cidr(t, n, &net, &prefix, NULL) == CH_OK)
        return add_ip(c, &net, prefix, t, n);
    const char *d = t;
    size_t dn = n;
    if (dn >= 2 && d[0] == '*' && d[1] == '.') {
        d += 2;
        dn -= 2;
    }
    if (has_any(d, dn, FILTER_CHARS))
        unsupported(c, "URL, pattern or filter rule, not a domain or address", t, n);
    else if (c->adblock && !host)
        unsupported(c, "Adblock substring rule, not a whole host", t, n);
    else
        return add_domain(c, t, n);
    return CH_OK;
}

/* Options that change what a rule does rather than where it applies. */
static bool adblock_option_blocks(const char *opts, size_t n)
{
    static const char *const nonblocking[] = {
        "csp",    "redirect",  "redirect-rule", "removeparam",  "rewrite", "replace",
        "header", "badfilter", "permissions",   "urltransform", NULL};
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && opts[j] != ',')
            j++;
        size_t k = i;
        while (k < j && opts[k] != '=')
            k++;
        for (int x = 0; nonblocking[x] != NULL; x++)
            if (strlen(nonblocking[x]) == k - i && memcmp(nonblocking[x], opts + i, k - i) == 0)
                return false;
        i = j + 1;
    }
    return true;
}

/* "||host^$options": t is the line, h the text after "||". */
static int add_adblock(ctx *c, const char *t, size_t n)
{
    const char *h = t + 2;
    size_t hn = n - 2, i = 0;
    if (hn >= 2 && h[0] == '*' && h[1] == '.')
        i = 2;
    while (i < hn && strchr("^$/|*:?", h[i]) == NULL)
        i++;
    if (i == 0) {
        bad(c, "Adblock rule without a host", t, n);
        return CH_OK;
    }
    size_t rest = i;
    if (rest < hn && h[rest] == '^') {
        rest++;
        if (rest < hn && h[rest] == '|')
            rest++;
    }
    if (rest < hn && h[rest] != '$') {
        unsupported(c, "Adblock rule narrower than a whole host", t, n);
        return CH_OK;
    }
    if (rest < hn && !adblock_option_blocks(h + rest + 1, hn - rest - 1)) {
        unsupported(c, "Adblock rule that does not block its host", t, n);
        return CH_OK;
    }
    ch_ip net;
    unsigned prefix;
    if (ch__rs_parse_cidr(h, i, &net, &prefix, NULL) == CH_OK)
        return add_ip(c, &net, prefix, h, i);
    return add_domain(c, h, i);
}

static bool is_localhost_name(const char *t, size_t n)
{
    static const char *const names[] = {
        "localhost",
        "localhost.localdomain",
        "local",
        "broadcasthost",
        "ip6-localhost",
        "ip6-loopback",
        "ip6-localnet",
        "ip6-mcastprefix",
        "ip6-allnodes",
        "ip6-allrouters",
        "ip6-allhosts",
        "0.0.0.0",
        NULL,
    };
    for (int i = 0; names[i] != NULL; i++)
        if (strlen(names[i]) == n && memcmp(names[i], t, n) == 0)
            return true;
    return false;
}

static int line_ip_domain(ctx *c, const char *t, size_t n)
{
    if (t[0] == '#' || t[0] == '!' || (t[0] == '[' && t[n - 1] == ']')) {
        if (n >= 8 && memcmp(t, "[Adblock", 8) == 0)
            c->adblock = true;
        c->st->skipped++;
        return CH_OK;
    }
    if (n >= 2 && t[0] == '|' && t[1] == '|')
        return add_adblock(c, t, n);
    if (n >= 2 && t[0] == '@' && t[1] == '@') {
        unsupported(c, "Adblock exception rule", t, n);
        return CH_OK;
    }
    if (has(t, n, "##") || has(t, n, "#@#") || has(t, n, "#?#") || has(t, n, "#$#")) {
        unsupported(c, "Adblock cosmetic filter", t, n);
        return CH_OK;
    }
    const char *hash = memchr(t, '#', n);
    if (hash != NULL) {
        n = (size_t)(hash - t);
        trim(&t, &n);
        if (n == 0) {
            c->st->skipped++;
            return CH_OK;
        }
    }
    size_t i = 0;
    while (i < n && !is_ws(t[i]))
        i++;
    if (i == n)
        return add_token(c, t, n, false);
    /* Several fields: a hosts-file line "ADDRESS NAME [NAME...]". */
    ch_ip ip;
    if (!ch_ip_parse(t, i, &ip)) {
        if (c->adblock || has_any(t, n, FILTER_CHARS))
            unsupported(c, "filter rule, not a domain or address", t, n);
        else
            bad(c, "several fields and the first is not an address", t, n);
        return CH_OK;
    }
    while (i < n) {
        while (i < n && is_ws(t[i]))
            i++;
        size_t st = i;
        while (i < n && !is_ws(t[i]))
            i++;
        if (i == st)
            break;
        if (is_localhost_name(t + st, i - st)) {
            c->st->skipped++;
            continue;
        }
        int rc = add_token(c, t + st, i - st, true);
        if (rc != CH_OK)
            return rc;
    }
    return CH_OK;
}

/* One line, without its newline. Only running out of memory is an error. */
static int load_line(ctx *c, const char *line, size_t len)
{
    c->st->lines++;
    if (c->line_no <= 1 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
        line += 3;
        len -= 3;
    }
    trim(&line, &len);
    if (len == 0) {
        c->st->skipped++;
        return CH_OK;
    }
    ch_refset *s = c->s;
    ch_error e = {0};
    switch (s->type) {
    case CH_REFSET_STRING:
        if (line[0] == '#') {
            c->st->skipped++;
            return CH_OK;
        }
        return outcome(c, s, ch_refset_add(s, line, len, &c->o->meta, &e), &e, line, len);
    case CH_REFSET_NUMBER: {
        if (line[0] == '#') {
            c->st->skipped++;
            return CH_OK;
        }
        const char *hash = memchr(line, '#', len);
        if (hash != NULL) {
            len = (size_t)(hash - line);
            trim(&line, &len);
        }
        return outcome(c, s, ch_refset_add(s, line, len, &c->o->meta, &e), &e, line, len);
    }
    default:
        return line_ip_domain(c, line, len);
    }
}

static void ctx_init(ctx *c, ch_refset *s, const char *name, const ch_refset_load_opts *o,
                     ch_refset_load_opts *dflt, ch_diag *diag, ch_refset_load_stats *st)
{
    memset(dflt, 0, sizeof *dflt);
    dflt->meta = (ch_refset_meta)CH_REFSET_META_INIT;
    c->s = s;
    c->o = o ? o : dflt;
    c->diag = diag;
    c->st = st;
    c->name = name ? name : "-";
    c->line_no = 0;
    c->adblock = false;
}

static void too_long(ch_diag *diag, ch_refset_load_stats *st, const char *name, uint64_t line_no,
                     size_t max)
{
    st->lines++;
    st->bad++;
    if (diag != NULL)
        ch_diag_report(diag, CH_DS_UNKNOWN, name, line_no, UINT64_MAX, "line_too_long",
                       "line longer than %zu bytes", max);
}

int ch_refset_load_mem(ch_refset *s, const char *data, size_t len, const char *name,
                       const ch_refset_load_opts *o, ch_diag *diag, ch_refset_load_stats *stats,
                       ch_error *err)
{
    ch_refset_load_stats dummy = {0};
    ch_refset_load_stats *st = stats ? stats : &dummy;
    size_t max = o && o->max_line ? o->max_line : DEFAULT_MAX_LINE;
    ch_refset_load_opts dflt;
    ctx c;
    ctx_init(&c, s, name, o, &dflt, diag, st);
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(data + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - data) : len;
        size_t n = end - i;
        if (n > 0 && data[i + n - 1] == '\r')
            n--;
        c.line_no++;
        if (n > max) {
            too_long(diag, st, c.name, c.line_no, max);
        } else if (load_line(&c, data + i, n) != CH_OK) {
            return ch_error_set(err, CH_ENOMEM, "%s:%llu: out of memory", c.name,
                                (unsigned long long)c.line_no);
        }
        i = end + 1;
    }
    return CH_OK;
}

int ch_refset_load_list(ch_refset *s, ch_input *in, const ch_refset_load_opts *o, ch_diag *diag,
                        ch_refset_load_stats *stats, ch_error *err)
{
    ch_refset_load_stats dummy = {0};
    ch_refset_load_stats *st = stats ? stats : &dummy;
    size_t max = o && o->max_line ? o->max_line : DEFAULT_MAX_LINE;
    const char *name = ch_input_name(in);
    ch_refset_load_opts dflt;
    ctx c;
    ctx_init(&c, s, name, o, &dflt, diag, st);
    for (;;) {
        const char *line;
        size_t len;
        uint64_t line_no = 0;
        int r = ch_input_line(in, max, &line, &len, &line_no, err);
        if (r == 0)
            return CH_OK;
        if (r == CH_ELIMIT) {
            too_long(diag, st, name, line_no, max);
            continue;
        }
        if (r < 0)
            return r;
        c.line_no = line_no;
        if (load_line(&c, line, len) != CH_OK)
            return ch_error_set(err, CH_ENOMEM, "%s:%llu: out of memory", name,
                                (unsigned long long)line_no);
    }
}

int ch_refset_load_path(ch_refset *s, const char *path, const ch_refset_load_opts *o, ch_diag *diag,
                        ch_refset_load_stats *stats, ch_error *err)
{
    ch_input *in = NULL;
    int rc = ch_input_open(&in, path, CH_INPUT_DEFAULT_MAX_WINDOW, err);
    if (rc != CH_OK)
        return rc;
    rc = ch_refset_load_list(s, in, o, diag, stats, err);
    ch_input_close(in);
    return rc;
}
