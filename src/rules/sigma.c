/*
 * sigma.c - Sigma detection and correlation rules translated into coinhound rules (sigma.h).
 *
 * A file is read as a stream of YAML documents (libyaml's document API, for line and column
 * in every message). Pass 1 translates each detection document into an expression of the rule
 * language; pass 2 resolves correlation documents against them (a temporal correlation adds a
 * derived response to the rules it names); pass 3 writes each document as the JSON text of a
 * coinhound rule and loads it with ch_rule_load_mem, so that validation, compilation and the
 * test cases are the YAML loader's own. The cost is a few string copies per rule at load time.
 *
 * Field names are quoted with backquotes in the generated expression, so any Sigma field name
 * (CloudTrail paths, names with '-') is one path. Values are emitted as JSON string literals;
 * wildcards become anchored, case-insensitive regular expressions.
 */
#include "rules/sigma.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "core/buf.h"
#include "core/mem.h"
#include "core/yaml_util.h"

#define GEN_MAX (1u << 20)          /* bytes of one generated rule */
#define SIGMA_COUNT_MAX 1000000000L /* a threshold, as rules/rule.c bounds count */

typedef enum src_kind { SRC_NONE = 0, SRC_CLOUDTRAIL, SRC_DNS, SRC_NETWORK } src_kind;

typedef struct sdoc {
    yaml_document_t doc;
    yaml_node_t *root;
    const char *id, *name, *title, *level;
    yaml_node_t *tags, *tests, *detection, *correlation, *logsource;
    src_kind kind;
    ch_buf expr;    /* detection: the translated condition */
    bool temporal;  /* referenced by a temporal correlation: derive SigmaMatch.ID */
    char idbuf[80]; /* id used for the generated rule */
} sdoc;

typedef struct sctx {
    const char *file;
    ch_error *err;
    sdoc *d; /* the document being translated (for messages) */
} sctx;

static int sfail(sctx *S, const yaml_node_t *n, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int sfail(sctx *S, const yaml_node_t *n, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = ch_yaml_vfail(S->err, S->file, S->d ? S->d->idbuf : NULL, n, code, fmt, ap);
    va_end(ap);
    return rc;
}

static yaml_node_t *nd(sdoc *d, int i) { return yaml_document_get_node(&d->doc, i); }

static yaml_node_t *map_get(sdoc *d, yaml_node_t *m, const char *key)
{
    if (m == NULL || m->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++)
        if (ch_yaml_key_is(nd(d, p->key), key))
            return nd(d, p->value);
    return NULL;
}

static const char *map_str(sdoc *d, yaml_node_t *m, const char *key)
{
    return ch_yaml_scalar(map_get(d, m, key), NULL);
}

bool ch_sigma_sniff(const char *text, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || text[i - 1] == '\n') {
            size_t left = n - i;
            if ((left >= 10 && memcmp(text + i, "detection:", 10) == 0) ||
                (left >= 12 && memcmp(text + i, "correlation:", 12) == 0))
                return true;
        }
    }
    return false;
}

/* ---- fields and values ---------------------------------------------------------------------- */

static src_kind logsource_kind(sdoc *d)
{
    const char *product = map_str(d, d->logsource, "product");
    const char *service = map_str(d, d->logsource, "service");
    const char *category = map_str(d, d->logsource, "category");
    if (product && strcmp(product, "aws") == 0 && service && strcmp(service, "cloudtrail") == 0 &&
        category == NULL)
        return SRC_CLOUDTRAIL;
    if (category && strcmp(category, "dns") == 0 && service == NULL)
        return SRC_DNS;
    if (category &&
        (strcmp(category, "network_connection") == 0 || strcmp(category, "firewall") == 0) &&
        service == NULL)
        return SRC_NETWORK;
    return SRC_NONE;
}

/* The coinhound path of a Sigma field, or NULL when the logsource has no mapping for it. */
static const char *map_field(src_kind k, const char *f)
{
    static const char *const dns[][2] = {{"query", "dns.question.name"},
                                         {"answer", "dns.answers"},
                                         {"record_type", "dns.question.type"},
                                         {"src_ip", "source.ip"},
                                         {"dst_ip", "destination.ip"}};
    static const char *const net[][2] = {{"DestinationIp", "destination.ip"},
                                         {"dst_ip", "destination.ip"},
                                         {"DestinationPort", "destination.port"},
                                         {"dst_port", "destination.port"},
                                         {"SourceIp", "source.ip"},
                                         {"src_ip", "source.ip"},
                                         {"SourcePort", "source.port"},
                                         {"src_port", "source.port"}};
    if (k == SRC_CLOUDTRAIL)
        return f; /* events carry the raw CloudTrail record: the Sigma name is its path */
    const char *const(*t)[2] = k == SRC_DNS ? dns : net;
    size_t nt = k == SRC_DNS ? sizeof dns / sizeof *dns : sizeof net / sizeof *net;
    for (size_t i = 0; i < nt; i++)
        if (strcmp(t[i][0], f) == 0)
            return t[i][1];
    return NULL;
}

static int add_field(ch_buf *b, const char *path)
{
    int rc = ch_buf_addc(b, '`');
    if (rc == 0)
        rc = ch_buf_adds(b, path);
    if (rc == 0)
        rc = ch_buf_addc(b, '`');
    return rc;
}

static bool has_wildcard(const char *s)
{
    for (const char *p = s; *p; p++) {
        if (*p == '\\' && (p[1] == '*' || p[1] == '?' || p[1] == '\\')) {
            p++;
            continue;
        }
        if (*p == '*' || *p == '?')
            return true;
    }
    return false;
}

/* A Sigma value with wildcards as a regular expression (unanchored; the caller anchors). */
static int glob_regex(ch_buf *re, const char *s)
{
    int rc = 0;
    for (const char *p = s; *p && rc == 0; p++) {
        if (*p == '\\' && (p[1] == '*' || p[1] == '?' || p[1] == '\\')) {
            p++;
            rc = ch_buf_addc(re, '\\');
            if (rc == 0)
                rc = ch_buf_addc(re, *p);
        } else if (*p == '*') {
            rc = ch_buf_adds(re, ".*");
        } else if (*p == '?') {
            rc = ch_buf_addc(re, '.');
        } else {
            if (strchr(".^$|()[]{}+\\/", *p) != NULL)
                rc = ch_buf_addc(re, '\\');
            if (rc == 0)
                rc = ch_buf_addc(re, *p);
        }
    }
    return rc;
}

/* Unescape Sigma's \* \? \\ for a value without wildcards. */
static int add_plain(ch_buf *b, const char *s)
{
    ch_buf t;
    ch_buf_init(&t, GEN_MAX);
    int rc = 0;
    for (const char *p = s; *p && rc == 0; p++) {
        if (*p == '\\' && (p[1] == '*' || p[1] == '?' || p[1] == '\\'))
            p++;
        rc = ch_buf_addc(&t, *p);
    }
    if (rc == 0)
        rc = ch_buf_add_json_str(b, t.data ? t.data : "", t.len);
    ch_buf_free(&t);
    return rc;
}

enum {
    M_CONTAINS = 1 << 0,
    M_STARTS = 1 << 1,
    M_ENDS = 1 << 2,
    M_ALL = 1 << 3,
    M_RE = 1 << 4,
    M_CIDR = 1 << 5,
    M_EXISTS = 1 << 6,
    M_GT = 1 << 7,
    M_GTE = 1 << 8,
    M_LT = 1 << 9,
    M_LTE = 1 << 10,
    M_FIELDREF = 1 << 11,
};

static bool is_int(const char *s)
{
    if (s == NULL)
        return false;
    if (*s == '-')
        s++;
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* One `field|mods: value` test for one scalar value. */
static int one_value(sctx *S, ch_buf *b, const char *path, unsigned mods, yaml_node_t *v)
{
    size_t len;
    const char *s = ch_yaml_scalar(v, &len);
    if (s == NULL)
        return sfail(S, v, CH_EPARSE, "expected a value (a string, number or boolean)");
    if (memchr(s, '\0', len) != NULL)
        return sfail(S, v, CH_EPARSE, "a value holds a NUL byte");
    bool plain = v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    int rc = 0;
    if (mods & M_EXISTS) {
        bool yes = strcmp(s, "true") == 0;
        if (!yes && strcmp(s, "false") != 0)
            return sfail(S, v, CH_EPARSE, "|exists expects true or false");
        if ((rc = add_field(b, path)) == 0)
            rc = ch_buf_adds(b, yes ? " exists" : " not exists");
        return rc;
    }
    if (mods & (M_GT | M_GTE | M_LT | M_LTE)) {
        char *end;
        strtod(s, &end);
        if (len == 0 || *end != '\0')
            return sfail(S, v, CH_EPARSE, "a numeric comparison expects a number");
        const char *op = mods & M_GT ? " > " : mods & M_GTE ? " >= " : mods & M_LT ? " < " : " <= ";
        if ((rc = add_field(b, path)) == 0 && (rc = ch_buf_adds(b, op)) == 0)
            rc = ch_buf_adds(b, s);
        return rc;
    }
    if (plain && (len == 0 || strcmp(s, "null") == 0 || strcmp(s, "~") == 0)) {
        if ((rc = add_field(b, path)) == 0)
            rc = ch_buf_adds(b, " not exists");
        return rc;
    }
    if (mods & M_CIDR) {
        for (size_t i = 0; i < len; i++)
            if (!strchr("0123456789abcdefABCDEF:./", s[i]))
                return sfail(S, v, CH_EPARSE, "|cidr expects an address block such as 10.0.0.0/8");
        if ((rc = add_field(b, path)) == 0 && (rc = ch_buf_adds(b, " in ")) == 0)
            rc = ch_buf_adds(b, s);
        return rc;
    }
    if (mods & M_RE) {
        if ((rc = add_field(b, path)) == 0 && (rc = ch_buf_adds(b, " matches ")) == 0)
            rc = ch_buf_add_json_str(b, s, len);
        return rc;
    }
    if (plain && !(mods & (M_CONTAINS | M_STARTS | M_ENDS)) &&
        (is_int(s) || strcmp(s, "true") == 0 || strcmp(s, "false") == 0)) {
        if ((rc = add_field(b, path)) == 0 && (rc = ch_buf_adds(b, " == ")) == 0)
            rc = ch_buf_adds(b, s);
        return rc;
    }
    if (has_wildcard(s)) {
        ch_buf re;
        ch_buf_init(&re, GEN_MAX);
        if (!(mods & (M_CONTAINS | M_ENDS)))
            rc = ch_buf_addc(&re, '^');
        if (rc == 0)
            rc = glob_regex(&re, s);
        if (rc == 0 && !(mods & (M_CONTAINS | M_STARTS)))
            rc = ch_buf_addc(&re, '$');
        if (rc == 0 && (rc = add_field(b, path)) == 0 && (rc = ch_buf_adds(b, " matches~ ")) == 0)
            rc = ch_buf_add_json_str(b, re.data, re.len);
        ch_buf_free(&re);
        return rc;
    }
    const char *op = mods & M_CONTAINS ? " contains~ "
                     : mods & M_STARTS ? " startswith~ "
                     : mods & M_ENDS   ? " endswith~ "
                                       : " =~ ";
    if ((rc = add_field(b, path)) == 0 && (rc = ch_buf_adds(b, op)) == 0)
        rc = add_plain(b, s);
    return rc;
}

/* Every value a plain name (letters, digits, '_'; no wildcard, no null): a scalar or a list. */
static bool exact_names(sdoc *d, yaml_node_t *v)
{
    size_t nv = v->type == YAML_SEQUENCE_NODE ? ch_yaml_seq_len(v) : v->type == YAML_SCALAR_NODE;
    if (nv == 0)
        return false;
    for (size_t i = 0; i < nv; i++) {
        yaml_node_t *it =
            v->type == YAML_SEQUENCE_NODE ? nd(d, v->data.sequence.items.start[i]) : v;
        size_t len;
        const char *s = ch_yaml_scalar(it, &len);
        if (s == NULL || len == 0 || len > 128)
            return false;
        for (size_t j = 0; j < len; j++) {
            char c = s[j];
            if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '_'))
                return false;
        }
    }
    return true;
}

/* `field|fieldref: other` -> `field =~ other` (both mapped; Sigma compares case-insensitively
 * like its other plain values); a list is one comparison per field, OR (AND with |all). */
static int fieldref(sctx *S, sdoc *d, ch_buf *b, const char *path, unsigned mods, yaml_node_t *v)
{
    if (v->type != YAML_SEQUENCE_NODE && v->type != YAML_SCALAR_NODE)
        return sfail(S, v, CH_EPARSE, "|fieldref expects a field name or a list of them");
    size_t nv = v->type == YAML_SEQUENCE_NODE ? ch_yaml_seq_len(v) : 1;
    if (nv == 0)
        return sfail(S, v, CH_EPARSE, "an empty list of values matches nothing");
    int rc = ch_buf_addc(b, '(');
    for (size_t i = 0; rc == 0 && i < nv; i++) {
        yaml_node_t *it =
            v->type == YAML_SEQUENCE_NODE ? nd(d, v->data.sequence.items.start[i]) : v;
        const char *s = ch_yaml_scalar(it, NULL);
        if (s == NULL || *s == '\0')
            return sfail(S, it, CH_EPARSE, "|fieldref expects a field name");
        const char *rp = map_field(d->kind, s);
        if (rp == NULL)
            return sfail(S, it, CH_EPARSE,
                         "not supported: field '%s' has no mapping for this logsource", s);
        if (i > 0)
            rc = ch_buf_adds(b, mods & M_ALL ? " and " : " or ");
        if (rc == 0 && (rc = add_field(b, path)) == 0 && (rc = ch_buf_adds(b, " =~ ")) == 0)
            rc = add_field(b, rp);
    }
    return rc == 0 ? ch_buf_addc(b, ')') : rc;
}

/* `field|mod|mod: value-or-list` */
static int one_item(sctx *S, sdoc *d, ch_buf *b, yaml_node_t *k, yaml_node_t *v)
{
    const char *key = ch_yaml_scalar(k, NULL);
    if (key == NULL || *key == '\0')
        return sfail(S, k, CH_EPARSE, "expected a field name");
    char field[512];
    const char *bar = strchr(key, '|');
    size_t fl = bar ? (size_t)(bar - key) : strlen(key);
    if (fl == 0)
        return sfail(S, k, CH_EPARSE, "not supported: a modifier without a field name");
    if (fl >= sizeof field)
        return sfail(S, k, CH_ELIMIT, "field name longer than %zu bytes", sizeof field - 1);
    memcpy(field, key, fl);
    field[fl] = '\0';
    unsigned mods = 0;
    static const struct {
        const char *name;
        unsigned bit;
    } known[] = {{"contains", M_CONTAINS},
                 {"startswith", M_STARTS},
                 {"endswith", M_ENDS},
                 {"all", M_ALL},
                 {"re", M_RE},
                 {"cidr", M_CIDR},
                 {"exists", M_EXISTS},
                 {"gt", M_GT},
                 {"gte", M_GTE},
                 {"lt", M_LT},
                 {"lte", M_LTE},
                 {"fieldref", M_FIELDREF}};
    for (const char *p = bar; p != NULL;) {
        const char *q = strchr(p + 1, '|');
        size_t ml = q ? (size_t)(q - p - 1) : strlen(p + 1);
        bool found = false;
        for (size_t i = 0; i < sizeof known / sizeof *known; i++)
            if (strlen(known[i].name) == ml && strncmp(known[i].name, p + 1, ml) == 0) {
                mods |= known[i].bit;
                found = true;
            }
        if (!found)
            return sfail(S, k, CH_EPARSE, "not supported: modifier '%.*s'", (int)ml, p + 1);
        p = q;
    }
    unsigned kinds = mods & (M_CONTAINS | M_STARTS | M_ENDS | M_RE | M_CIDR | M_EXISTS | M_GT |
                             M_GTE | M_LT | M_LTE | M_FIELDREF);
    if (kinds & (kinds - 1))
        return sfail(S, k, CH_EPARSE, "not supported: these modifiers together");
    int rc;
    /* eventName is event.action: AWS spells each name one way, so an exact comparison means
     * what Sigma's case-insensitive one does, and lets the engine index the rule by action. */
    if (d->kind == SRC_CLOUDTRAIL && mods == 0 && strcmp(field, "eventName") == 0 &&
        exact_names(d, v)) {
        if ((rc = ch_buf_adds(b, "event.action in [")) < 0)
            return rc;
        size_t nv = v->type == YAML_SEQUENCE_NODE ? ch_yaml_seq_len(v) : 1;
        for (size_t i = 0; i < nv; i++) {
            yaml_node_t *it =
                v->type == YAML_SEQUENCE_NODE ? nd(d, v->data.sequence.items.start[i]) : v;
            size_t len;
            const char *s = ch_yaml_scalar(it, &len);
            if ((i && (rc = ch_buf_addc(b, ',')) < 0) || (rc = ch_buf_add_json_str(b, s, len)) < 0)
                return rc;
        }
        return ch_buf_addc(b, ']');
    }
    const char *path = map_field(d->kind, field);
    if (path == NULL)
        return sfail(S, k, CH_EPARSE, "not supported: field '%s' has no mapping for this logsource",
                     field);
    if (mods & M_FIELDREF) /* the value names another field of the same event */
        return fieldref(S, d, b, path, mods, v);
    if (v->type == YAML_SEQUENCE_NODE) {
        size_t nv = ch_yaml_seq_len(v);
        if (nv == 0)
            return sfail(S, v, CH_EPARSE, "an empty list of values matches nothing");
        if ((rc = ch_buf_addc(b, '(')) < 0)
            return rc;
        for (size_t i = 0; i < nv; i++) {
            if (i && (rc = ch_buf_adds(b, mods & M_ALL ? " and " : " or ")) < 0)
                return rc;
            if ((rc = one_value(S, b, path, mods, nd(d, v->data.sequence.items.start[i]))) < 0)
                return rc;
        }
        return ch_buf_addc(b, ')');
    }
    if (v->type != YAML_SCALAR_NODE)
        return sfail(S, v, CH_EPARSE, "expected a value or a list of values");
    return one_value(S, b, path, mods, v);
}

static int selection_map(sctx *S, sdoc *d, ch_buf *b, yaml_node_t *m)
{
    int rc = ch_buf_addc(b, '(');
    bool first = true;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start;
         rc == 0 && p < m->data.mapping.pairs.top; p++) {
        if (!first)
            rc = ch_buf_adds(b, " and ");
        first = false;
        if (rc == 0)
            rc = one_item(S, d, b, nd(d, p->key), nd(d, p->value));
    }
    if (first && rc == 0)
        return sfail(S, m, CH_EPARSE, "an empty selection");
    return rc < 0 ? rc : ch_buf_addc(b, ')');
}

static int selection(sctx *S, sdoc *d, ch_buf *b, yaml_node_t *n)
{
    if (n->type == YAML_MAPPING_NODE)
        return selection_map(S, d, b, n);
    if (n->type == YAML_SEQUENCE_NODE) {
        int rc = ch_buf_addc(b, '(');
        for (size_t i = 0; rc == 0 && i < ch_yaml_seq_len(n); i++) {
            yaml_node_t *it = nd(d, n->data.sequence.items.start[i]);
            if (it->type != YAML_MAPPING_NODE)
                return sfail(S, it, CH_EPARSE,
                             "not supported: keyword search (values without a field name)");
            if (i)
                rc = ch_buf_adds(b, " or ");
            if (rc == 0)
                rc = selection_map(S, d, b, it);
        }
        return rc < 0 ? rc : ch_buf_addc(b, ')');
    }
    return sfail(S, n, CH_EPARSE, "not supported: keyword search (values without a field name)");
}

/* ---- conditions ------------------------------------------------------------------------------ */

typedef struct selx {
    const char *name;
    ch_buf expr;
} selx;

static int cond_group(sctx *S, yaml_node_t *cn, ch_buf *b, selx *sel, size_t nsel, bool all,
                      const char *pat)
{
    int rc = ch_buf_addc(b, '(');
    size_t hit = 0;
    for (size_t i = 0; rc == 0 && i < nsel; i++) {
        bool match = pat == NULL ? sel[i].name[0] != '_' : fnmatch(pat, sel[i].name, 0) == 0;
        if (!match)
            continue;
        if (hit++)
            rc = ch_buf_adds(b, all ? " and " : " or ");
        if (rc == 0)
            rc = ch_buf_add(b, sel[i].expr.data, sel[i].expr.len);
    }
    if (rc == 0 && hit == 0)
        return sfail(S, cn, CH_EPARSE, "condition: no selection matches '%s'", pat ? pat : "them");
    return rc < 0 ? rc : ch_buf_addc(b, ')');
}

static int condition(sctx *S, yaml_node_t *cn, const char *c, ch_buf *b, selx *sel, size_t nsel)
{
    int rc = 0;
    const char *p = c;
    if (c == NULL)
        return sfail(S, cn, CH_EPARSE, "expected a condition");
    if (strchr(c, '|') != NULL)
        return sfail(S, cn, CH_EPARSE,
                     "not supported: aggregation in the condition ('| count()...'; use a "
                     "correlation rule)");
    while (*p && rc == 0) {
        if (*p == ' ' || *p == '\t' || *p == '\n') {
            p++;
            continue;
        }
        if (*p == '(' || *p == ')') {
            rc = ch_buf_addc(b, *p++);
            continue;
        }
        const char *s = p;
        while (*p && !strchr(" \t\n()", *p))
            p++;
        char word[256];
        size_t wl = (size_t)(p - s);
        if (wl >= sizeof word)
            return sfail(S, cn, CH_ELIMIT, "condition: a name longer than %zu bytes",
                         sizeof word - 1);
        memcpy(word, s, wl);
        word[wl] = '\0';
        if (strcmp(word, "and") == 0 || strcmp(word, "or") == 0 || strcmp(word, "not") == 0) {
            rc = ch_buf_printf(b, " %s ", word);
        } else if (strcmp(word, "1") == 0 || strcmp(word, "all") == 0 || strcmp(word, "any") == 0) {
            bool all = strcmp(word, "all") == 0;
            while (*p == ' ' || *p == '\t')
                p++;
            if (strncmp(p, "of", 2) != 0 || (p[2] != ' ' && p[2] != '\t'))
                return sfail(S, cn, CH_EPARSE, "condition: expected 'of' after '%s'", word);
            p += 2;
            while (*p == ' ' || *p == '\t')
                p++;
            const char *ps = p;
            while (*p && !strchr(" \t\n()", *p))
                p++;
            char pat[256];
            size_t pl = (size_t)(p - ps);
            if (pl == 0 || pl >= sizeof pat)
                return sfail(S, cn, CH_EPARSE, "condition: expected a name pattern or 'them'");
            memcpy(pat, ps, pl);
            pat[pl] = '\0';
            rc = cond_group(S, cn, b, sel, nsel, all, strcmp(pat, "them") == 0 ? NULL : pat);
        } else {
            size_t i;
            for (i = 0; i < nsel; i++)
                if (strcmp(sel[i].name, word) == 0)
                    break;
            if (i == nsel)
                return sfail(S, cn, CH_EPARSE, "condition: unknown selection '%s'", word);
            rc = ch_buf_add(b, sel[i].expr.data, sel[i].expr.len);
        }
    }
    return rc;
}

static int translate_detection(sctx *S, sdoc *d)
{
    yaml_node_t *det = d->detection;
    if (det->type != YAML_MAPPING_NODE)
        return sfail(S, det, CH_EPARSE, "expected 'detection' to be a mapping");
    size_t cap = (size_t)(det->data.mapping.pairs.top - det->data.mapping.pairs.start);
    selx *sel = ch_calloc(cap ? cap : 1, sizeof *sel);
    if (sel == NULL)
        return ch_error_set(S->err, CH_ENOMEM, "out of memory");
    size_t nsel = 0;
    yaml_node_t *cond = NULL;
    int rc = 0;
    for (yaml_node_pair_t *p = det->data.mapping.pairs.start;
         rc == 0 && p < det->data.mapping.pairs.top; p++) {
        yaml_node_t *k = nd(d, p->key), *v = nd(d, p->value);
        const char *name = ch_yaml_scalar(k, NULL);
        if (name == NULL) {
            rc = sfail(S, k, CH_EPARSE, "expected a selection name");
        } else if (strcmp(name, "condition") == 0) {
            cond = v;
        } else if (strcmp(name, "timeframe") == 0) {
            rc = sfail(S, k, CH_EPARSE,
                       "not supported: 'timeframe' in a detection (use a correlation rule)");
        } else {
            sel[nsel].name = name;
            ch_buf_init(&sel[nsel].expr, GEN_MAX);
            nsel++;
            rc = selection(S, d, &sel[nsel - 1].expr, v);
        }
    }
    if (rc == 0 && cond == NULL)
        rc = sfail(S, det, CH_EPARSE, "a detection needs a 'condition'");
    /* The logsource is a dataset: the rule never looks at the others (and is indexed so). */
    if (rc == 0)
        rc = ch_buf_printf(&d->expr, "event.dataset == \"%s\" and (",
                           d->kind == SRC_CLOUDTRAIL ? "cloudtrail"
                           : d->kind == SRC_DNS      ? "route53resolver"
                                                     : "vpcflow");
    if (rc == 0 && cond != NULL) {
        if (cond->type == YAML_SCALAR_NODE) {
            rc = condition(S, cond, ch_yaml_scalar(cond, NULL), &d->expr, sel, nsel);
        } else if (cond->type == YAML_SEQUENCE_NODE && ch_yaml_seq_len(cond) > 0) {
            for (size_t i = 0; rc == 0 && i < ch_yaml_seq_len(cond); i++) {
                yaml_node_t *c = nd(d, cond->data.sequence.items.start[i]);
                const char *cs = ch_yaml_scalar(c, NULL);
                if (cs == NULL)
                    rc = sfail(S, c, CH_EPARSE, "expected a condition");
                if (rc == 0)
                    rc = ch_buf_adds(&d->expr, i ? " or (" : "(");
                if (rc == 0)
                    rc = condition(S, c, cs, &d->expr, sel, nsel);
                if (rc == 0)
                    rc = ch_buf_addc(&d->expr, ')');
            }
        } else {
            rc = sfail(S, cond, CH_EPARSE, "expected a condition or a list of conditions");
        }
    }
    if (rc == 0)
        rc = ch_buf_addc(&d->expr, ')');
    for (size_t i = 0; i < nsel; i++)
        ch_buf_free(&sel[i].expr);
    ch_free(sel);
    if (rc < 0 && rc != CH_EPARSE && rc != CH_ELIMIT && S->err->msg[0] == '\0')
        ch_error_set(S->err, rc, "%s: out of memory", S->file);
    return rc;
}

/* ---- generated rule text -------------------------------------------------------------------- */

static int severity_of(const char *level)
{
    static const struct {
        const char *n;
        int s;
    } lv[] = {{"informational", 1}, {"low", 3}, {"medium", 5}, {"high", 7}, {"critical", 9}};
    for (size_t i = 0; level && i < sizeof lv / sizeof *lv; i++)
        if (strcmp(level, lv[i].n) == 0)
            return lv[i].s;
    return 5;
}

/* A YAML node as JSON (flow YAML): scalars as strings, except plain numbers and booleans. */
static int emit_node(sdoc *d, ch_buf *b, yaml_node_t *n, int depth)
{
    int rc = 0;
    if (depth > 16)
        return CH_ELIMIT;
    if (n->type == YAML_SCALAR_NODE) {
        size_t len;
        const char *s = ch_yaml_scalar(n, &len);
        if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
            (is_int(s) || strcmp(s, "true") == 0 || strcmp(s, "false") == 0))
            return ch_buf_adds(b, s);
        return ch_buf_add_json_str(b, s, len);
    }
    if (n->type == YAML_SEQUENCE_NODE) {
        rc = ch_buf_addc(b, '[');
        for (size_t i = 0; rc == 0 && i < ch_yaml_seq_len(n); i++) {
            if (i)
                rc = ch_buf_addc(b, ',');
            if (rc == 0)
                rc = emit_node(d, b, nd(d, n->data.sequence.items.start[i]), depth + 1);
        }
        return rc < 0 ? rc : ch_buf_addc(b, ']');
    }
    rc = ch_buf_addc(b, '{');
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
         rc == 0 && p < n->data.mapping.pairs.top; p++) {
        if (p != n->data.mapping.pairs.start)
            rc = ch_buf_addc(b, ',');
        if (rc == 0)
            rc = emit_node(d, b, nd(d, p->key), depth + 1);
        if (rc == 0)
            rc = ch_buf_addc(b, ':');
        if (rc == 0)
            rc = emit_node(d, b, nd(d, p->value), depth + 1);
    }
    return rc < 0 ? rc : ch_buf_addc(b, '}');
}

static int emit_head(sdoc *d, ch_buf *b)
{
    int sev = severity_of(d->level);
    static const int risk[] = {0, 0, 0, 5, 0, 10, 0, 20, 0, 40};
    int rc = ch_buf_adds(b, "{\"id\":");
    if (rc == 0)
        rc = ch_buf_add_json_str(b, d->idbuf, strlen(d->idbuf));
    if (rc == 0)
        rc = ch_buf_adds(b, ",\"title\":");
    const char *t = d->title ? d->title : d->idbuf;
    if (rc == 0)
        rc = ch_buf_add_json_str(b, t, strlen(t));
    if (rc == 0)
        rc = ch_buf_printf(b, ",\"severity\":%d,\"credibility\":5,\"relevance\":5,\"risk\":%d", sev,
                           risk[sev]);
    if (rc == 0 && d->tags != NULL && d->tags->type == YAML_SEQUENCE_NODE) {
        rc = ch_buf_adds(b, ",\"tags\":");
        if (rc == 0)
            rc = emit_node(d, b, d->tags, 0);
    }
    if (rc == 0 && d->tests != NULL) {
        rc = ch_buf_adds(b, ",\"tests\":");
        if (rc == 0)
            rc = emit_node(d, b, d->tests, 0);
    }
    if (rc == 0)
        rc = ch_buf_adds(b, ",\"offense\":{\"index\":\"user.name\"}");
    return rc;
}

static sdoc *find_ref(sdoc *docs, size_t n, const char *ref)
{
    for (size_t i = 0; i < n; i++)
        if (docs[i].detection != NULL && ((docs[i].id && strcmp(docs[i].id, ref) == 0) ||
                                          (docs[i].name && strcmp(docs[i].name, ref) == 0)))
            return &docs[i];
    return NULL;
}

static bool timespan_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 2 || !strchr("smhdw", s[n - 1]))
        return false;
    for (size_t i = 0; i + 1 < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static int emit_by(sctx *S, sdoc *d, ch_buf *b, yaml_node_t *gb, src_kind kind)
{
    int rc = ch_buf_adds(b, "\"by\":[");
    if (gb == NULL || gb->type != YAML_SEQUENCE_NODE || ch_yaml_seq_len(gb) == 0) {
        /* No group-by: one group for everything (cloud.provider is "aws" on every event). */
        rc = rc < 0 ? rc : ch_buf_adds(b, "\"cloud.provider\"");
        return rc < 0 ? rc : ch_buf_addc(b, ']');
    }
    for (size_t i = 0; rc == 0 && i < ch_yaml_seq_len(gb); i++) {
        yaml_node_t *f = nd(d, gb->data.sequence.items.start[i]);
        const char *fs = ch_yaml_scalar(f, NULL);
        const char *path = fs ? map_field(kind, fs) : NULL;
        if (path == NULL)
            return sfail(S, f, CH_EPARSE,
                         "not supported: group-by field '%s' has no mapping for the logsource",
                         fs ? fs : "?");
        if (i)
            rc = ch_buf_addc(b, ',');
        if (rc == 0)
            rc = ch_buf_add_json_str(b, path, strlen(path));
    }
    return rc < 0 ? rc : ch_buf_addc(b, ']');
}

static int gen_correlation(sctx *S, sdoc *docs, size_t ndocs, sdoc *d, ch_buf *b)
{
    yaml_node_t *c = d->correlation;
    if (c->type != YAML_MAPPING_NODE)
        return sfail(S, c, CH_EPARSE, "expected 'correlation' to be a mapping");
    const char *type = map_str(d, c, "type");
    yaml_node_t *rules = map_get(d, c, "rules"), *cond = map_get(d, c, "condition");
    const char *timespan = map_str(d, c, "timespan");
    if (type == NULL)
        return sfail(S, c, CH_EPARSE, "a correlation needs a 'type'");
    bool ec = strcmp(type, "event_count") == 0, vc = strcmp(type, "value_count") == 0;
    bool tp = strcmp(type, "temporal") == 0, to = strcmp(type, "temporal_ordered") == 0;
    if (!ec && !vc && !tp && !to)
        return sfail(S, c, CH_EPARSE, "not supported: correlation type '%s'", type);
    if (!timespan_ok(timespan))
        return sfail(S, c, CH_EPARSE, "a correlation needs a 'timespan' such as 5m or 1h");
    if (rules == NULL || rules->type != YAML_SEQUENCE_NODE || ch_yaml_seq_len(rules) == 0 ||
        ch_yaml_seq_len(rules) > CH_RULE_MAX_STEPS)
        return sfail(S, c, CH_EPARSE, "'rules' expects a list of 1 to %d rule ids or names",
                     CH_RULE_MAX_STEPS);
    sdoc *refs[CH_RULE_MAX_STEPS] = {0};
    size_t nref = ch_yaml_seq_len(rules);
    for (size_t i = 0; i < nref; i++) {
        yaml_node_t *rn = nd(d, rules->data.sequence.items.start[i]);
        const char *ref = ch_yaml_scalar(rn, NULL);
        if (ref == NULL || (refs[i] = find_ref(docs, ndocs, ref)) == NULL)
            return sfail(S, rn, CH_EPARSE,
                         "not supported: rule '%s' is not a detection in this file (a correlation "
                         "and its rules are loaded from one file)",
                         ref ? ref : "?");
        if (refs[i]->kind != refs[0]->kind)
            return sfail(S, rn, CH_EPARSE, "not supported: rules of different logsources");
    }
    if (refs[0] == NULL)
        return sfail(S, c, CH_EPARSE, "'rules' names no rule");
    long count = 0;
    const char *vfield = NULL;
    if (ec || vc) {
        const char *gte = map_str(d, cond, "gte"), *gt = map_str(d, cond, "gt");
        if (cond == NULL || cond->type != YAML_MAPPING_NODE || (gte == NULL) == (gt == NULL))
            return sfail(S, cond ? cond : c, CH_EPARSE,
                         "not supported: a condition other than one 'gte' or 'gt' threshold");
        for (yaml_node_pair_t *p = cond->data.mapping.pairs.start; p < cond->data.mapping.pairs.top;
             p++) {
            const char *k = ch_yaml_scalar(nd(d, p->key), NULL);
            if (k && strcmp(k, "gte") != 0 && strcmp(k, "gt") != 0 && strcmp(k, "field") != 0)
                return sfail(S, nd(d, p->key), CH_EPARSE, "not supported: condition '%s'", k);
        }
        const char *cs = gte ? gte : gt;
        /* Bounded as a rule's own count is (1..1e9), before 'gt' adds one: strtol saturates
         * at LONG_MAX, and LONG_MAX + 1 overflows. */
        errno = 0;
        long v = is_int(cs) ? strtol(cs, NULL, 10) : -1;
        if (errno == ERANGE || v < (gt ? 0 : 1) || v > SIGMA_COUNT_MAX - (gt ? 1 : 0))
            return sfail(S, cond, CH_EPARSE, "the condition expects a whole number from 1 to %ld",
                         SIGMA_COUNT_MAX);
        count = v + (gt ? 1 : 0);
        if (vc) {
            const char *f = map_str(d, cond, "field");
            if (f == NULL || (vfield = map_field(refs[0]->kind, f)) == NULL)
                return sfail(S, cond, CH_EPARSE,
                             "value_count needs a 'field' that maps for the logsource");
        }
    }
    int rc = emit_head(d, b);
    if (rc < 0)
        return rc;
    if (ec || vc || tp) {
        rc = ch_buf_adds(b, ",\"where\":");
        ch_buf w;
        ch_buf_init(&w, GEN_MAX);
        for (size_t i = 0; rc == 0 && i < nref; i++) {
            if (i)
                rc = ch_buf_adds(&w, " or ");
            if (rc == 0 && tp)
                rc = ch_buf_printf(&w, "event.action == \"SigmaMatch.%s\"", refs[i]->idbuf);
            else if (rc == 0)
                rc = ch_buf_printf(&w, "(%.*s)", (int)refs[i]->expr.len, refs[i]->expr.data);
            if (tp)
                refs[i]->temporal = true;
        }
        if (rc == 0)
            rc = ch_buf_add_json_str(b, w.data, w.len);
        ch_buf_free(&w);
    }
    if (rc == 0)
        rc = ch_buf_adds(b, ",\"correlate\":{");
    if (rc == 0 && ec)
        rc = ch_buf_printf(b, "\"type\":\"threshold\",\"count\":%ld,", count);
    if (rc == 0 && vc) {
        rc = ch_buf_printf(b, "\"type\":\"distinct\",\"count\":%ld,\"field\":", count);
        if (rc == 0)
            rc = ch_buf_add_json_str(b, vfield, strlen(vfield));
        if (rc == 0)
            rc = ch_buf_addc(b, ',');
    }
    if (rc == 0 && tp)
        rc = ch_buf_printf(b, "\"type\":\"distinct\",\"count\":%zu,\"field\":\"event.action\",",
                           nref);
    if (rc == 0 && to) {
        rc = ch_buf_adds(b, "\"type\":\"sequence\",\"steps\":[");
        for (size_t i = 0; rc == 0 && i < nref; i++)
            rc = ch_buf_printf(b, "%s{\"rule\":\"%s\"}", i ? "," : "", refs[i]->idbuf);
        if (rc == 0)
            rc = ch_buf_adds(b, "],");
    }
    if (rc == 0)
        rc = ch_buf_printf(b, "\"within\":\"%s\",", timespan);
    if (rc == 0)
        rc = emit_by(S, d, b, map_get(d, c, "group-by"), refs[0]->kind);
    if (rc == 0)
        rc = ch_buf_adds(b, "}}");
    return rc;
}

static int gen_detection(sdoc *d, ch_buf *b)
{
    int rc = emit_head(d, b);
    if (rc == 0)
        rc = ch_buf_adds(b, ",\"where\":");
    if (rc == 0)
        rc = ch_buf_add_json_str(b, d->expr.data, d->expr.len);
    if (rc == 0 && d->temporal)
        rc = ch_buf_printf(b, ",\"responses\":[{\"derived\":{\"action\":\"SigmaMatch.%s\"}}]",
                           d->idbuf);
    if (rc == 0)
        rc = ch_buf_addc(b, '}');
    return rc;
}

/* ---- loading --------------------------------------------------------------------------------- */

static int read_doc(sctx *S, sdoc *d, size_t index)
{
    d->root = yaml_document_get_root_node(&d->doc);
    ch_buf_init(&d->expr, GEN_MAX);
    if (d->root == NULL || d->root->type != YAML_MAPPING_NODE)
        return sfail(S, d->root, CH_EPARSE, "expected a Sigma rule (a mapping)");
    d->id = map_str(d, d->root, "id");
    d->name = map_str(d, d->root, "name");
    d->title = map_str(d, d->root, "title");
    d->level = map_str(d, d->root, "level");
    d->tags = map_get(d, d->root, "tags");
    d->tests = map_get(d, d->root, "tests");
    d->detection = map_get(d, d->root, "detection");
    d->correlation = map_get(d, d->root, "correlation");
    d->logsource = map_get(d, d->root, "logsource");
    const char *id = d->id ? d->id : d->name;
    if (id != NULL && strlen(id) <= 64)
        snprintf(d->idbuf, sizeof d->idbuf, "%s", id);
    else
        snprintf(d->idbuf, sizeof d->idbuf, "sigma-%zu", index + 1);
    S->d = d;
    if ((d->detection == NULL) == (d->correlation == NULL))
        return sfail(S, d->root, CH_EPARSE,
                     "expected a Sigma rule with either 'detection' or 'correlation'");
    if (d->detection != NULL) {
        if ((d->kind = logsource_kind(d)) == SRC_NONE)
            return sfail(S, d->logsource ? d->logsource : d->root, CH_EPARSE,
                         "not supported: logsource (coinhound reads product: aws, service: "
                         "cloudtrail; category: dns; category: network_connection or firewall)");
        return translate_detection(S, d);
    }
    return 0;
}

int ch_sigma_load_mem(const char *name, const char *text, size_t n, const ch_expr_env *env,
                      ch_refsets *refsets, ch_rule ***out, uint32_t *nout, ch_error *err)
{
    sctx S = {name ? name : "<memory>", err, NULL};
    sdoc *docs = NULL;
    size_t ndocs = 0;
    ch_rule **rules = NULL;
    uint32_t nr = 0;
    ch_buf gen;
    ch_buf_init(&gen, GEN_MAX);
    int rc = 0;
    yaml_parser_t parser;
    *out = NULL;
    *nout = 0;
    memset(err, 0, sizeof *err);
    if (n > CH_RULE_MAX_FILE)
        return ch_error_set(err, CH_ELIMIT, "%s: a rule file is at most %u bytes", S.file,
                            CH_RULE_MAX_FILE);
    if (!yaml_parser_initialize(&parser))
        return ch_error_set(err, CH_ENOMEM, "%s: out of memory", S.file);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, n);
    docs = ch_calloc(CH_SIGMA_MAX_DOCS, sizeof *docs);
    if (docs == NULL) {
        rc = ch_error_set(err, CH_ENOMEM, "%s: out of memory", S.file);
        goto cleanup;
    }
    for (;;) {
        if (ndocs == CH_SIGMA_MAX_DOCS) {
            rc = ch_error_set(err, CH_ELIMIT, "%s: more than %d documents", S.file,
                              CH_SIGMA_MAX_DOCS);
            goto cleanup;
        }
        if (!yaml_parser_load(&parser, &docs[ndocs].doc)) {
            rc = ch_yaml_load_error(err, S.file, &parser);
            goto cleanup;
        }
        if (yaml_document_get_root_node(&docs[ndocs].doc) == NULL) {
            yaml_document_delete(&docs[ndocs].doc);
            break;
        }
        ndocs++;
        if ((rc = read_doc(&S, &docs[ndocs - 1], ndocs - 1)) < 0)
            goto cleanup;
    }
    if (ndocs == 0) {
        rc = ch_error_set(err, CH_EPARSE, "%s:1:1: empty Sigma file", S.file);
        goto cleanup;
    }
    rules = ch_calloc(ndocs, sizeof *rules);
    if (rules == NULL) {
        rc = ch_error_set(err, CH_ENOMEM, "%s: out of memory", S.file);
        goto cleanup;
    }
    /* Correlations first: a temporal one gives the detections it names a derived response. */
    char **texts = ch_calloc(ndocs, sizeof *texts);
    if (texts == NULL) {
        rc = ch_error_set(err, CH_ENOMEM, "%s: out of memory", S.file);
        goto cleanup;
    }
    for (size_t i = 0; rc == 0 && i < ndocs; i++) {
        if (docs[i].correlation == NULL)
            continue;
        S.d = &docs[i];
        ch_buf_clear(&gen);
        if ((rc = gen_correlation(&S, docs, ndocs, &docs[i], &gen)) == 0 &&
            (texts[i] = ch_strndup(gen.data, gen.len)) == NULL)
            rc = CH_ENOMEM;
    }
    for (size_t i = 0; rc == 0 && i < ndocs; i++) {
        if (docs[i].detection == NULL)
            continue;
        ch_buf_clear(&gen);
        if ((rc = gen_detection(&docs[i], &gen)) == 0 &&
            (texts[i] = ch_strndup(gen.data, gen.len)) == NULL)
            rc = CH_ENOMEM;
    }
    if (rc < 0 && err->msg[0] == '\0')
        ch_error_set(err, rc, "%s: %s", S.file,
                     rc == CH_ELIMIT ? "a translated rule is too large" : "out of memory");
    /* Detections before the correlations that name them (sequence steps resolve by id). */
    for (int pass = 0; rc == 0 && pass < 2; pass++)
        for (size_t i = 0; rc == 0 && i < ndocs; i++) {
            if ((pass == 0) != (docs[i].detection != NULL))
                continue;
            ch_error le = {0};
            ch_rule *r = NULL;
            rc = ch_rule_load_mem(S.file, texts[i], strlen(texts[i]), env, refsets, &r, &le);
            if (rc < 0) {
                ch_error_set(err, rc, "%s (in the rule translated from Sigma document %zu)", le.msg,
                             i + 1);
                break;
            }
            rules[nr++] = r;
        }
    for (size_t i = 0; i < ndocs; i++)
        ch_free(texts[i]);
    ch_free(texts);
    if (rc == 0) {
        *out = rules;
        *nout = nr;
        rules = NULL;
    }
cleanup:
    if (rules != NULL) {
        for (uint32_t i = 0; i < nr; i++)
            ch_rule_free(rules[i]);
        ch_free(rules);
    }
    for (size_t i = 0; docs != NULL && i < ndocs; i++) {
        ch_buf_free(&docs[i].expr);
        yaml_document_delete(&docs[i].doc);
    }
    ch_free(docs);
    ch_buf_free(&gen);
    yaml_parser_delete(&parser);
    return rc;
}
