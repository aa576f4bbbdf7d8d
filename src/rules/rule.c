/*
 * rule.c - the rule loader: YAML (libyaml's document API, so every node keeps its line and
 * column) into the compiled, immutable ch_rule of rule.h, and a pack folder into a ruleset.
 *
 * The loader is strict on purpose: every key is known (a typo such as `withn:` is an error,
 * not a silently unbounded window), every number is range-checked, and each message carries
 * file:line:column and the rule id. A file is read whole (capped at CH_RULE_MAX_FILE) and the
 * document tree is walked once; nothing of the YAML survives loading. YAML aliases are only
 * ever read where a scalar or a fixed-shape mapping is expected, so an alias bomb cannot make
 * the walk explode.
 */
#include "rules/rule.h"

#include "core/timeparse.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

#include "core/mem.h"
#include "core/readfile.h"
#include "core/yaml_util.h"
#include "rules/sigma.h"

const char *ch_corr_type_name(ch_corr_type t)
{
    static const char *const names[] = {"none", "threshold", "distinct", "sequence", "first_seen"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

/* ---- `in $name` over a ch_refsets registry ------------------------------------------------ */

/* The event time of the evaluation in progress on this thread, so that reference-set lookups
 * honour time-to-live at the event's time (set by the engine before it evaluates). */
static _Thread_local int64_t tl_eval_time = INT64_MAX - 1;

void ch__rule_env_set_time(int64_t ms) { tl_eval_time = ms; }

static int env_resolve(void *user, const char *name, size_t n, void **handle, ch_error *err)
{
    ch_refset *s = ch_refsets_get((ch_refsets *)user, name, n);
    if (s == NULL)
        return ch_error_set(err, CH_ENOTFOUND, "unknown reference set $%.*s", (int)n, name);
    *handle = s;
    return 0;
}

static bool env_contains(void *user, void *handle, const ch_value *v, bool icase)
{
    (void)user;
    (void)icase;
    const ch_refset *s = handle;
    int64_t at = tl_eval_time;
    switch (v->type) {
    case CH_V_IP:
        return ch_refset_contains_ip(s, &v->u.ip, at, NULL);
    case CH_V_INT:
        if (ch_refset_type_of(s) == CH_REFSET_NUMBER)
            return ch_refset_contains_num(s, v->u.i, at, NULL);
        break;
    case CH_V_STR:
        switch (ch_refset_type_of(s)) {
        case CH_REFSET_DOMAIN:
            return ch_refset_contains_domain(s, v->u.s.p, v->u.s.n, at, NULL);
        case CH_REFSET_STRING:
            return ch_refset_contains_str(s, v->u.s.p, v->u.s.n, at, NULL);
        default:
            return ch_refset_contains(s, v->u.s.p, v->u.s.n, at, NULL);
        }
    case CH_V_NONE:
    case CH_V_OBJ:
        return false;
    default:
        break;
    }
    char buf[CH_VALUE_TEXT_MAX];
    ch_sv t = ch_value_text(v, buf);
    return ch_refset_contains(s, t.p, t.n, at, NULL);
}

void ch_rule_env_init(ch_expr_env *env, ch_refsets *refsets)
{
    memset(env, 0, sizeof *env);
    env->resolve = env_resolve;
    env->contains = env_contains;
    env->user = refsets;
}

/* ---- loader context ------------------------------------------------------------------------ */

typedef struct loader {
    const char *file;
    char id[128];
    yaml_document_t doc;
    const ch_expr_env *env;
    ch_refsets *refsets;
    ch_error *err;
    ch_rule *r;
} loader;

static int lfail(loader *L, const yaml_node_t *n, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int lfail(loader *L, const yaml_node_t *n, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = ch_yaml_vfail(L->err, L->file, L->id[0] ? L->id : "(rule)", n, code, fmt, ap);
    va_end(ap);
    return rc;
}

static yaml_node_t *node(loader *L, int i) { return yaml_document_get_node(&L->doc, i); }

static const char *node_kind(const yaml_node_t *n)
{
    if (n == NULL)
        return "nothing";
    switch (n->type) {
    case YAML_SCALAR_NODE:
        return "a scalar";
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_MAPPING_NODE:
        return "a mapping";
    default:
        return "nothing";
    }
}

static int want_str(loader *L, const yaml_node_t *n, const char *key, const char **s, size_t *len)
{
    *s = ch_yaml_scalar(n, len);
    if (*s == NULL || (len && *len == 0) || (!len && !**s))
        return lfail(L, n, CH_EPARSE, "expected a non-empty string for '%s', found %s", key,
                     node_kind(n));
    return 0;
}

static int want_int(loader *L, const yaml_node_t *n, const char *key, long lo, long hi, int *out)
{
    size_t len;
    const char *s = ch_yaml_scalar(n, &len);
    char *end = NULL;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (s == NULL || len == 0 || end != s + len || errno != 0 || v < lo || v > hi)
        return lfail(L, n, CH_EPARSE, "expected an integer %ld..%ld for '%s', found %s%s%s", lo, hi,
                     key, s ? "'" : "", s ? s : node_kind(n), s ? "'" : "");
    *out = (int)v;
    return 0;
}

static bool parse_duration(const char *s, size_t n, int64_t *ms)
{
    return ch_duration_parse(s, n, ms);
}

static int want_duration(loader *L, const yaml_node_t *n, const char *key, int64_t *ms)
{
    size_t len;
    const char *s = ch_yaml_scalar(n, &len);
    if (s == NULL || !parse_duration(s, len, ms) || *ms <= 0)
        return lfail(L, n, CH_EPARSE,
                     "expected a positive duration such as 30s, 10m, 1h or 7d for '%s'", key);
    return 0;
}

static int want_path(loader *L, const yaml_node_t *n, const char *key, ch_field_ref **out)
{
    const char *s;
    size_t len;
    int rc = want_str(L, n, key, &s, &len);
    if (rc < 0)
        return rc;
    ch_error fe = {0};
    rc = ch_field_resolve(s, len, out, &fe);
    if (rc < 0)
        return lfail(L, n, rc, "bad field path for '%s': %s", key, fe.msg);
    return 0;
}

/* The file position of an expression error: the expression's own "at L:C" moved by where the
 * scalar starts, for scalars on one line (plain or quoted). Block scalars keep the scalar's
 * start; the expression's own position stays in the message either way. */
static const yaml_node_t *expr_error_node(const yaml_node_t *n, const char *msg, yaml_node_t *tmp)
{
    const char *at = strstr(msg, " at ");
    unsigned l = 0, c = 0;
    if (at == NULL || sscanf(at, " at %u:%u", &l, &c) != 2 || l != 1 || c == 0 ||
        n->start_mark.line != n->end_mark.line)
        return n;
    yaml_scalar_style_t style = n->data.scalar.style;
    if (style != YAML_PLAIN_SCALAR_STYLE && style != YAML_SINGLE_QUOTED_SCALAR_STYLE &&
        style != YAML_DOUBLE_QUOTED_SCALAR_STYLE)
        return n;
    *tmp = *n;
    tmp->start_mark.column += (c - 1) + (style == YAML_PLAIN_SCALAR_STYLE ? 0 : 1);
    return tmp;
}

static int want_expr(loader *L, const yaml_node_t *n, const char *key, ch_expr **out)
{
    const char *s;
    size_t len;
    int rc = want_str(L, n, key, &s, &len);
    if (rc < 0)
        return rc;
    ch_error ee = {0};
    rc = ch_expr_compile_n(s, len, L->env, out, &ee);
    if (rc < 0) {
        yaml_node_t tmp;
        return lfail(L, expr_error_node(n, ee.msg, &tmp), rc, "in '%s': %s", key, ee.msg);
    }
    return 0;
}

/* A path or a list of paths. */
static int want_paths(loader *L, const yaml_node_t *n, const char *key, ch_field_ref **out,
                      uint32_t *nout)
{
    if (n != NULL && n->type == YAML_SEQUENCE_NODE) {
        size_t cnt = ch_yaml_seq_len(n);
        if (cnt == 0 || cnt > CH_RULE_MAX_BY)
            return lfail(L, n, CH_EPARSE, "expected 1 to %d paths for '%s'", CH_RULE_MAX_BY, key);
        for (size_t i = 0; i < cnt; i++) {
            int rc = want_path(L, node(L, n->data.sequence.items.start[i]), key, &out[i]);
            if (rc < 0)
                return rc;
            *nout = (uint32_t)(i + 1);
        }
        return 0;
    }
    int rc = want_path(L, n, key, &out[0]);
    if (rc == 0)
        *nout = 1;
    return rc;
}

/* Mapping iteration with a table of allowed keys and duplicate detection. */
typedef struct kv {
    const char *key;
    yaml_node_t *val, *knode;
} kv;

static int want_map(loader *L, const yaml_node_t *n, const char *what, const char *const *keys,
                    kv *out)
{
    if (n == NULL || n->type != YAML_MAPPING_NODE) {
        /* CH_EPARSE spelled out: the static analyzer does not follow the variadic lfail, and
         * would read out[] after a "success". */
        lfail(L, n, CH_EPARSE, "expected a mapping for %s, found %s", what, node_kind(n));
        return CH_EPARSE;
    }
    size_t nk = 0;
    while (keys[nk])
        nk++;
    for (size_t i = 0; i < nk; i++)
        out[i] = (kv){keys[i], NULL, NULL};
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(L, p->key);
        const char *ks = ch_yaml_scalar(k, NULL);
        if (ks == NULL)
            return lfail(L, k, CH_EPARSE, "expected a key name in %s", what);
        size_t i = 0;
        while (i < nk && strcmp(keys[i], ks) != 0)
            i++;
        if (i == nk) {
            char allowed[300] = "";
            for (size_t j = 0; j < nk; j++) {
                strncat(allowed, keys[j], sizeof allowed - strlen(allowed) - 1);
                if (j + 1 < nk)
                    strncat(allowed, ", ", sizeof allowed - strlen(allowed) - 1);
            }
            return lfail(L, k, CH_EPARSE, "unknown key '%.64s' in %s (expected one of: %s)", ks,
                         what, allowed);
        }
        if (out[i].val != NULL)
            return lfail(L, k, CH_EPARSE, "duplicate key '%s' in %s", ks, what);
        out[i].val = node(L, p->value);
        out[i].knode = k;
    }
    return 0;
}

/* ---- pieces of a rule ---------------------------------------------------------------------- */

static int load_sum(loader *L, const yaml_node_t *n)
{
    const char *s;
    size_t len;
    int rc = want_str(L, n, "sum", &s, &len);
    if (rc < 0)
        return rc;
    ch_rule *r = L->r;
    if (len > 7 && memcmp(s, "count(", 6) == 0 && s[len - 1] == ')') {
        r->sum_count = true;
        s += 6;
        len -= 7;
    }
    ch_error fe = {0};
    rc = ch_field_resolve(s, len, &r->sum, &fe);
    if (rc < 0)
        return lfail(L, n, rc, "bad field path for 'sum': %s", fe.msg);
    return 0;
}

static int load_steps(loader *L, const yaml_node_t *n)
{
    ch_rule *r = L->r;
    if (n == NULL || n->type != YAML_SEQUENCE_NODE || ch_yaml_seq_len(n) < 2 ||
        ch_yaml_seq_len(n) > CH_RULE_MAX_STEPS)
        return lfail(L, n, CH_EPARSE, "expected a list of 2 to %d steps for 'steps'",
                     CH_RULE_MAX_STEPS);
    static const char *const keys[] = {"where", "rule", "by", NULL};
    for (size_t i = 0; i < ch_yaml_seq_len(n); i++) {
        yaml_node_t *sn = node(L, n->data.sequence.items.start[i]);
        kv k[3];
        int rc = want_map(L, sn, "a sequence step", keys, k);
        if (rc < 0)
            return rc;
        ch_rule_step *st = &r->steps[i];
        r->nsteps = (uint32_t)(i + 1);
        if ((k[0].val != NULL) == (k[1].val != NULL))
            return lfail(L, sn, CH_EPARSE, "a step needs exactly one of 'where' or 'rule'");
        if (k[0].val != NULL && (rc = want_expr(L, k[0].val, "where", &st->where)) < 0)
            return rc;
        if (k[1].val != NULL) {
            const char *s;
            size_t len;
            if ((rc = want_str(L, k[1].val, "rule", &s, &len)) < 0)
                return rc;
            if ((st->rule_id = ch_strndup(s, len)) == NULL)
                return lfail(L, sn, CH_ENOMEM, "out of memory");
        }
        if (k[2].val != NULL && (rc = want_paths(L, k[2].val, "by", st->by, &st->nby)) < 0)
            return rc;
        if (k[2].val != NULL && st->nby != r->nby)
            return lfail(L, k[2].val, CH_EPARSE,
                         "a step's 'by' must name as many paths as the rule's 'by' (%u)", r->nby);
    }
    return 0;
}

static int load_correlate(loader *L, const yaml_node_t *n)
{
    static const char *const keys[] = {"type",   "by",    "field",    "count", "sum",
                                       "within", "steps", "learning", NULL};
    enum { K_TYPE, K_BY, K_FIELD, K_COUNT, K_SUM, K_WITHIN, K_STEPS, K_LEARNING };
    kv k[8];
    int rc = want_map(L, n, "'correlate'", keys, k);
    if (rc < 0)
        return rc;
    ch_rule *r = L->r;
    const char *t;
    if ((rc = want_str(L, k[K_TYPE].val, "type", &t, NULL)) < 0)
        return rc;
    bool found = false;
    for (int i = CH_CORR_NONE; i <= CH_CORR_FIRST_SEEN; i++)
        if (strcmp(t, ch_corr_type_name((ch_corr_type)i)) == 0) {
            r->type = (ch_corr_type)i;
            found = true;
        }
    if (!found)
        return lfail(L, k[K_TYPE].val, CH_EPARSE,
                     "unknown correlation type '%.64s' (expected none, threshold, distinct, "
                     "sequence or first_seen)",
                     t);
    /* Which keys each type takes: 1 required, 2 optional, 0 refused. */
    static const char allow[5][8] = {
        /*               type by field count sum within steps learning */
        [CH_CORR_NONE] = {1, 0, 0, 0, 0, 0, 0, 0},
        [CH_CORR_THRESHOLD] = {1, 2, 0, 1, 2, 1, 0, 0},
        [CH_CORR_DISTINCT] = {1, 2, 1, 1, 0, 1, 0, 0},
        [CH_CORR_SEQUENCE] = {1, 2, 2, 0, 0, 1, 1, 0},
        [CH_CORR_FIRST_SEEN] = {1, 2, 1, 0, 0, 0, 0, 2},
    };
    for (int i = 1; i < 8; i++) {
        if (allow[r->type][i] == 0 && k[i].val != NULL)
            return lfail(L, k[i].knode, CH_EPARSE, "'%s' does not apply to correlation type %s",
                         keys[i], t);
        if (allow[r->type][i] == 1 && k[i].val == NULL)
            return lfail(L, n, CH_EPARSE, "correlation type %s needs '%s'", t, keys[i]);
    }
    if (k[K_BY].val && (rc = want_paths(L, k[K_BY].val, "by", r->by, &r->nby)) < 0)
        return rc;
    if (k[K_FIELD].val && (rc = want_path(L, k[K_FIELD].val, "field", &r->field)) < 0)
        return rc;
    if (k[K_COUNT].val) {
        size_t len;
        const char *s = ch_yaml_scalar(k[K_COUNT].val, &len);
        char *end = NULL;
        double v = s ? strtod(s, &end) : 0;
        if (s == NULL || len == 0 || end != s + len || !(v >= 1 && v <= 1e9))
            return lfail(L, k[K_COUNT].val, CH_EPARSE, "expected a number 1..1e9 for 'count'");
        if (r->type == CH_CORR_DISTINCT && v > 1024)
            return lfail(L, k[K_COUNT].val, CH_EPARSE, "distinct counts at most 1024 values");
        r->count = v;
    }
    if (r->type == CH_CORR_THRESHOLD && k[K_SUM].val == NULL && r->count > 65536)
        return lfail(L, k[K_COUNT].val, CH_EPARSE,
                     "a threshold counts at most 65536 events (use 'sum' for larger amounts)");
    if (k[K_SUM].val && (rc = load_sum(L, k[K_SUM].val)) < 0)
        return rc;
    if (k[K_WITHIN].val && (rc = want_duration(L, k[K_WITHIN].val, "within", &r->within_ms)) < 0)
        return rc;
    if (k[K_LEARNING].val &&
        (rc = want_duration(L, k[K_LEARNING].val, "learning", &r->learning_ms)) < 0)
        return rc;
    if (k[K_STEPS].val && (rc = load_steps(L, k[K_STEPS].val)) < 0)
        return rc;
    return 0;
}

static int load_responses(loader *L, const yaml_node_t *n)
{
    ch_rule *r = L->r;
    if (n == NULL || n->type != YAML_SEQUENCE_NODE || ch_yaml_seq_len(n) > CH_RULE_MAX_RESPONSES)
        return lfail(L, n, CH_EPARSE, "expected a list of at most %d responses",
                     CH_RULE_MAX_RESPONSES);
    static const char *const kinds[] = {"refset", "derived", NULL};
    static const char *const rkeys[] = {"name", "field", "ttl", "type", NULL};
    static const char *const dkeys[] = {"action", NULL};
    for (size_t i = 0; i < ch_yaml_seq_len(n); i++) {
        yaml_node_t *rn = node(L, n->data.sequence.items.start[i]);
        kv k[2];
        int rc = want_map(L, rn, "a response", kinds, k);
        if (rc < 0)
            return rc;
        if ((k[0].val != NULL) == (k[1].val != NULL))
            return lfail(L, rn, CH_EPARSE, "a response is either {refset: ...} or {derived: ...}");
        ch_rule_response *resp = &r->responses[i];
        r->nresponses = (uint32_t)(i + 1);
        const char *s;
        size_t len;
        if (k[0].val != NULL) {
            kv rk[4];
            if ((rc = want_map(L, k[0].val, "'refset'", rkeys, rk)) < 0)
                return rc;
            resp->kind = CH_RESP_REFSET;
            resp->set_type = CH_REFSET_STRING;
            if ((rc = want_str(L, rk[0].val, "name", &s, &len)) < 0)
                return rc;
            if ((resp->name = ch_strndup(s, len)) == NULL)
                return lfail(L, rn, CH_ENOMEM, "out of memory");
            if ((rc = want_path(L, rk[1].val, "field", &resp->field)) < 0)
                return rc;
            if (rk[2].val && (rc = want_duration(L, rk[2].val, "ttl", &resp->ttl_ms)) < 0)
                return rc;
            if (rk[3].val) {
                if ((rc = want_str(L, rk[3].val, "type", &s, &len)) < 0)
                    return rc;
                if (ch_refset_type_from_name(s, len, &resp->set_type) < 0)
                    return lfail(L, rk[3].val, CH_EPARSE,
                                 "expected ip, domain, string or number for 'type'");
            }
            if (L->refsets != NULL) {
                ch_refset *set = NULL;
                ch_error se = {0};
                if ((rc = ch_refsets_ensure(L->refsets, resp->name, resp->set_type, NULL, &set,
                                            &se)) < 0)
                    return lfail(L, rk[0].val, rc, "reference set '%s': %s", resp->name, se.msg);
            }
        } else {
            kv dk[1];
            if ((rc = want_map(L, k[1].val, "'derived'", dkeys, dk)) < 0)
                return rc;
            resp->kind = CH_RESP_DERIVED;
            if ((rc = want_str(L, dk[0].val, "action", &s, &len)) < 0)
                return rc;
            if ((resp->name = ch_strndup(s, len)) == NULL)
                return lfail(L, rn, CH_ENOMEM, "out of memory");
        }
    }
    return 0;
}

static char *dir_of(const char *file)
{
    const char *slash = strrchr(file, '/');
    return slash ? ch_strndup(file, (size_t)(slash - file)) : ch_strdup(".");
}

static int test_path(loader *L, const yaml_node_t *n, const char *key, const char *dir, char **out)
{
    const char *ev;
    size_t evlen;
    int rc = want_str(L, n, key, &ev, &evlen);
    if (rc < 0)
        return rc;
    size_t plen = strlen(dir) + 1 + evlen + 1;
    if ((*out = ch_malloc(plen)) == NULL)
        return lfail(L, n, CH_ENOMEM, "out of memory");
    if (ev[0] == '/')
        snprintf(*out, plen, "%.*s", (int)evlen, ev);
    else
        snprintf(*out, plen, "%s/%.*s", dir, (int)evlen, ev);
    return 0;
}

/* `KEY: FILE` or `KEY: [FILE, ...]` (1 to CH_RULE_TEST_MAX_FILES), resolved against dir. */
static int test_files(loader *L, const yaml_node_t *n, const char *key, const char *dir, char **out,
                      uint32_t *nout)
{
    int rc;
    if (n != NULL && n->type == YAML_SEQUENCE_NODE) {
        if (ch_yaml_seq_len(n) == 0 || ch_yaml_seq_len(n) > CH_RULE_TEST_MAX_FILES)
            return lfail(L, n, CH_EPARSE, "expected 1 to %d files for '%s'", CH_RULE_TEST_MAX_FILES,
                         key);
        for (size_t j = 0; j < ch_yaml_seq_len(n); j++) {
            if ((rc = test_path(L, node(L, n->data.sequence.items.start[j]), key, dir, &out[j])) <
                0)
                return rc;
            *nout = (uint32_t)(j + 1);
        }
        return 0;
    }
    if ((rc = test_path(L, n, key, dir, &out[0])) < 0)
        return rc;
    *nout = 1;
    return 0;
}

static int load_tests(loader *L, const yaml_node_t *n)
{
    ch_rule *r = L->r;
    if (n == NULL || n->type != YAML_SEQUENCE_NODE || ch_yaml_seq_len(n) > CH_RULE_MAX_TESTS)
        return lfail(L, n, CH_EPARSE, "expected a list of at most %d test cases",
                     CH_RULE_MAX_TESTS);
    static const char *const keys[] = {"name", "events", "expect", "intel", "context", NULL};
    char *dir = dir_of(L->file);
    int rc = 0;
    if (dir == NULL)
        return lfail(L, n, CH_ENOMEM, "out of memory");
    for (size_t i = 0; i < ch_yaml_seq_len(n); i++) {
        yaml_node_t *tn = node(L, n->data.sequence.items.start[i]);
        kv k[5];
        if ((rc = want_map(L, tn, "a test case", keys, k)) < 0)
            goto cleanup;
        ch_rule_test *t = &r->tests[i];
        r->ntests = (uint32_t)(i + 1);
        t->line = (unsigned)tn->start_mark.line + 1;
        const char *s, *ex;
        size_t len;
        if ((rc = want_str(L, k[0].val, "name", &s, &len)) < 0 ||
            (rc = want_str(L, k[2].val, "expect", &ex, NULL)) < 0)
            goto cleanup;
        if (strcmp(ex, "fire") != 0 && strcmp(ex, "silent") != 0) {
            rc = lfail(L, k[2].val, CH_EPARSE, "expected 'fire' or 'silent' for 'expect'");
            goto cleanup;
        }
        t->expect_fire = ex[0] == 'f';
        if ((t->name = ch_strndup(s, len)) == NULL) {
            rc = lfail(L, tn, CH_ENOMEM, "out of memory");
            goto cleanup;
        }
        if ((rc = test_files(L, k[1].val, "events", dir, t->events, &t->nevents)) < 0)
            goto cleanup;
        if (k[3].val != NULL &&
            (rc = test_files(L, k[3].val, "intel", dir, t->intel, &t->nintel)) < 0)
            goto cleanup;
        if (k[4].val != NULL && (rc = test_path(L, k[4].val, "context", dir, &t->context)) < 0)
            goto cleanup;
    }
cleanup:
    ch_free(dir);
    return rc;
}

/* tags: Sigma's convention; attack.tNNNN and attack.tNNNN.NNN are kept as MITRE ATT&CK
 * technique ids (a malformed one is an error: a typo would drop the rule from the matrix). */
static int load_tags(loader *L, const yaml_node_t *n)
{
    ch_rule *r = L->r;
    if (n == NULL || n->type != YAML_SEQUENCE_NODE)
        return lfail(L, n, CH_EPARSE, "expected a list of tags for 'tags'");
    for (size_t i = 0; i < ch_yaml_seq_len(n); i++) {
        const yaml_node_t *tn = node(L, n->data.sequence.items.start[i]);
        const char *s;
        size_t len;
        int rc = want_str(L, tn, "tags", &s, &len);
        if (rc < 0)
            return rc;
        if (len < 8 || strncasecmp(s, "attack.t", 8) != 0 || !(s[8] >= '0' && s[8] <= '9'))
            continue; /* attack.execution, cve..., car...: not techniques */
        const char *t = s + 7;
        size_t tl = len - 7;
        bool ok = tl == 5 || tl == 9;
        for (size_t j = 1; ok && j < tl; j++)
            ok = j == 5 ? t[j] == '.' : (t[j] >= '0' && t[j] <= '9');
        if (!ok)
            return lfail(L, tn, CH_EPARSE,
                         "expected a MITRE ATT&CK technique tag such as attack.t1496 or "
                         "attack.t1496.001");
        if (r->nmitre == CH_RULE_MAX_MITRE)
            return lfail(L, tn, CH_ELIMIT, "at most %d ATT&CK technique tags", CH_RULE_MAX_MITRE);
        char *id = ch_strndup(t, tl);
        if (id == NULL)
            return lfail(L, tn, CH_ENOMEM, "out of memory");
        id[0] = 'T';
        r->mitre[r->nmitre++] = id;
    }
    return 0;
}

static int load_root(loader *L, yaml_node_t *root)
{
    static const char *const keys[] = {"id",         "title",     "severity", "credibility",
                                       "relevance",  "risk",      "where",    "correlate",
                                       "offense",    "responses", "tests",    "description",
                                       "references", "tags",      NULL};
    enum {
        K_ID,
        K_TITLE,
        K_SEV,
        K_CRED,
        K_REL,
        K_RISK,
        K_WHERE,
        K_CORR,
        K_OFF,
        K_RESP,
        K_TESTS,
        K_DESC,
        K_REFS,
        K_TAGS
    };
    kv k[14];
    /* Learn the id first, so that every message (even about keys before it) names the rule. */
    if (root->type == YAML_MAPPING_NODE)
        for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
             p++) {
            const char *ks = ch_yaml_scalar(node(L, p->key), NULL);
            size_t vl;
            const char *vs = ch_yaml_scalar(node(L, p->value), &vl);
            if (ks && vs && strcmp(ks, "id") == 0 && vl > 0 && vl <= 64)
                snprintf(L->id, sizeof L->id, "%.*s", (int)vl, vs);
        }
    int rc = want_map(L, root, "a rule", keys, k);
    if (rc < 0)
        return rc;
    ch_rule *r = L->r;
    const char *s;
    size_t len;
    if ((rc = want_str(L, k[K_ID].val, "id", &s, &len)) < 0)
        return rc;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.') ||
            len > 64)
            return lfail(L, k[K_ID].val, CH_EPARSE,
                         "expected an id of 1 to 64 letters, digits, '-', '_' or '.'");
    }
    snprintf(L->id, sizeof L->id, "%.*s", (int)len, s);
    if ((r->info.id = ch_strndup(s, len)) == NULL)
        return lfail(L, root, CH_ENOMEM, "out of memory");
    if ((rc = want_str(L, k[K_TITLE].val, "title", &s, &len)) < 0)
        return rc;
    if ((r->info.title = ch_strndup(s, len)) == NULL)
        return lfail(L, root, CH_ENOMEM, "out of memory");
    if ((rc = want_int(L, k[K_SEV].val, "severity", 0, 10, &r->info.severity)) < 0 ||
        (rc = want_int(L, k[K_CRED].val, "credibility", 0, 10, &r->info.credibility)) < 0 ||
        (rc = want_int(L, k[K_REL].val, "relevance", 0, 10, &r->info.relevance)) < 0)
        return rc;
    if (k[K_RISK].val && (rc = want_int(L, k[K_RISK].val, "risk", 0, 1000, &r->info.risk)) < 0)
        return rc;
    if (k[K_CORR].val && (rc = load_correlate(L, k[K_CORR].val)) < 0)
        return rc;
    if (k[K_WHERE].val == NULL && r->type != CH_CORR_SEQUENCE)
        return lfail(L, root, CH_EPARSE, "a rule needs 'where'");
    if (k[K_WHERE].val && (rc = want_expr(L, k[K_WHERE].val, "where", &r->where)) < 0)
        return rc;
    if (k[K_OFF].val) {
        static const char *const okeys[] = {"index", NULL};
        kv ok[1];
        if ((rc = want_map(L, k[K_OFF].val, "'offense'", okeys, ok)) < 0)
            return rc;
        if ((rc = want_path(L, ok[0].val, "index", &r->index)) < 0)
            return rc;
    }
    if (k[K_RESP].val && (rc = load_responses(L, k[K_RESP].val)) < 0)
        return rc;
    if (k[K_TESTS].val && (rc = load_tests(L, k[K_TESTS].val)) < 0)
        return rc;
    if (k[K_TAGS].val && (rc = load_tags(L, k[K_TAGS].val)) < 0)
        return rc;
    return 0;
}

int ch_rule_load_mem(const char *name, const char *text, size_t n, const ch_expr_env *env,
                     ch_refsets *refsets, ch_rule **out, ch_error *err)
{
    loader L;
    memset(&L, 0, sizeof L);
    L.file = name ? name : "<memory>";
    L.env = env;
    L.refsets = refsets;
    L.err = err;
    *out = NULL;
    int rc = 0;
    bool have_doc = false;
    yaml_parser_t parser;
    if (n > CH_RULE_MAX_FILE)
        return ch_error_set(err, CH_ELIMIT, "%s: a rule file is at most %u bytes", L.file,
                            CH_RULE_MAX_FILE);
    if (!yaml_parser_initialize(&parser))
        return ch_error_set(err, CH_ENOMEM, "%s: out of memory", L.file);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, n);
    L.r = ch_calloc(1, sizeof *L.r);
    if (L.r == NULL) {
        rc = ch_error_set(err, CH_ENOMEM, "%s: out of memory", L.file);
        goto cleanup;
    }
    L.r->learning_ms = -1;
    if (!yaml_parser_load(&parser, &L.doc)) {
        rc = ch_yaml_load_error(err, L.file, &parser);
        goto cleanup;
    }
    have_doc = true;
    yaml_node_t *root = yaml_document_get_root_node(&L.doc);
    if (root == NULL) {
        rc = ch_error_set(err, CH_EPARSE,
                          "%s:1:1: empty rule file (expected a mapping with id, "
                          "title, severity, ... )",
                          L.file);
        goto cleanup;
    }
    /* One rule a file: a second document is an error, not silently ignored. */
    yaml_document_t extra;
    if (yaml_parser_load(&parser, &extra)) {
        bool more = yaml_document_get_root_node(&extra) != NULL;
        yaml_document_delete(&extra);
        if (more) {
            rc = ch_error_set(err, CH_EPARSE,
                              "%s: one rule a file: a second YAML document "
                              "follows",
                              L.file);
            goto cleanup;
        }
    }
    if ((rc = load_root(&L, root)) < 0)
        goto cleanup;
    if ((L.r->file = ch_strdup(L.file)) == NULL) {
        rc = ch_error_set(err, CH_ENOMEM, "%s: out of memory", L.file);
        goto cleanup;
    }
    *out = L.r;
    L.r = NULL;
cleanup:
    if (have_doc)
        yaml_document_delete(&L.doc);
    yaml_parser_delete(&parser);
    ch_rule_free(L.r);
    return rc;
}

void ch_rule_free(ch_rule *r)
{
    if (r == NULL)
        return;
    ch_free((char *)r->info.id);
    ch_free((char *)r->info.title);
    ch_free(r->file);
    ch_expr_free(r->where);
    for (uint32_t i = 0; i < CH_RULE_MAX_BY; i++)
        ch_field_ref_free(r->by[i]);
    ch_field_ref_free(r->field);
    ch_field_ref_free(r->sum);
    for (uint32_t i = 0; i < r->nsteps; i++) {
        ch_expr_free(r->steps[i].where);
        ch_free(r->steps[i].rule_id);
        for (uint32_t j = 0; j < CH_RULE_MAX_BY; j++)
            ch_field_ref_free(r->steps[i].by[j]);
    }
    ch_field_ref_free(r->index);
    for (uint32_t i = 0; i < r->nresponses; i++) {
        ch_free(r->responses[i].name);
        ch_field_ref_free(r->responses[i].field);
    }
    for (uint32_t i = 0; i < r->ntests; i++) {
        ch_free(r->tests[i].name);
        for (uint32_t j = 0; j < r->tests[i].nevents; j++)
            ch_free(r->tests[i].events[j]);
        for (uint32_t j = 0; j < r->tests[i].nintel; j++)
            ch_free(r->tests[i].intel[j]);
        ch_free(r->tests[i].context);
    }
    for (uint32_t i = 0; i < r->nmitre; i++)
        ch_free(r->mitre[i]);
    ch_free(r);
}

/* ---- rulesets ------------------------------------------------------------------------------ */

int ch_ruleset_find(const ch_ruleset *rs, const char *id)
{
    for (uint32_t i = 0; i < rs->n; i++)
        if (strcmp(rs->rules[i]->info.id, id) == 0)
            return (int)i;
    return -1;
}

void ch_ruleset_free(ch_ruleset *rs)
{
    if (rs == NULL)
        return;
    for (uint32_t i = 0; i < rs->n; i++)
        ch_rule_free(rs->rules[i]);
    ch_free(rs->rules);
    ch_free(rs->pack);
    ch_free(rs);
}

/* Rule steps resolved to indices; a cycle of rule steps (A waits for B waits for A) would make
 * hits feed each other forever, so it is refused. */
static int link_steps(ch_ruleset *rs, ch_rule_msg_fn msg, void *ud, ch_error *err)
{
    int bad = 0;
    for (uint32_t i = 0; i < rs->n; i++) {
        ch_rule *r = rs->rules[i];
        for (uint32_t s = 0; s < r->nsteps; s++) {
            if (r->steps[s].rule_id == NULL)
                continue;
            int j = ch_ruleset_find(rs, r->steps[s].rule_id);
            if (j < 0 || (uint32_t)j == i) {
                ch_error_set(err, CH_EPARSE, "%s: %s: step %u names %s rule '%s'", r->file,
                             r->info.id, s + 1, j < 0 ? "an unknown" : "its own",
                             r->steps[s].rule_id);
                if (msg)
                    msg(ud, err->msg);
                bad++;
                continue;
            }
            r->steps[s].rule_idx = (uint32_t)j;
        }
    }
    if (bad)
        return CH_EPARSE;
    /* Cycle check: depth-first walk over rule-step edges, bounded by the rule count. */
    for (uint32_t i = 0; i < rs->n; i++) {
        uint32_t stack[64], depth = 0;
        stack[depth++] = i;
        uint32_t steps = 0;
        while (depth > 0 && steps++ < 100000) {
            ch_rule *r = rs->rules[stack[--depth]];
            for (uint32_t s = 0; s < r->nsteps; s++) {
                if (r->steps[s].rule_id == NULL)
                    continue;
                if (r->steps[s].rule_idx == i) {
                    ch_error_set(err, CH_EPARSE, "%s: %s: sequence steps form a cycle of rules",
                                 rs->rules[i]->file, rs->rules[i]->info.id);
                    if (msg)
                        msg(ud, err->msg);
                    return CH_EPARSE;
                }
                if (depth < 64)
                    stack[depth++] = r->steps[s].rule_idx;
            }
        }
    }
    return 0;
}

int ch_ruleset_from_rules(ch_rule **rules, uint32_t n, const char *pack, ch_refsets *refsets,
                          ch_ruleset **out, ch_error *err)
{
    *out = NULL;
    ch_ruleset *rs = ch_calloc(1, sizeof *rs);
    if (rs == NULL) {
        for (uint32_t i = 0; i < n; i++)
            ch_rule_free(rules[i]);
        ch_free(rules);
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    }
    rs->rules = rules;
    rs->n = n;
    rs->refsets = refsets;
    ch_rule_env_init(&rs->env, refsets);
    rs->pack = ch_strdup(pack ? pack : "");
    if (rs->pack == NULL) {
        ch_ruleset_free(rs);
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < n; i++) {
        rules[i]->info.pack = rs->pack;
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(rules[i]->info.id, rules[j]->info.id) == 0) {
                int rc = ch_error_set(err, CH_EPARSE, "%s: rule id %s is also used by %s",
                                      rules[i]->file, rules[i]->info.id, rules[j]->file);
                ch_ruleset_free(rs);
                return rc;
            }
    }
    int rc = link_steps(rs, NULL, NULL, err);
    if (rc < 0) {
        ch_ruleset_free(rs);
        return rc;
    }
    *out = rs;
    return 0;
}

/* ---- pack folders -------------------------------------------------------------------------- */

typedef struct pathlist {
    char **v;
    size_t n, cap;
} pathlist;

static int pl_add(pathlist *pl, const char *p)
{
    if (pl->n == pl->cap) {
        char **nv = ch_grow(pl->v, &pl->cap, 32, sizeof *nv);
        if (nv == NULL)
            return CH_ENOMEM;
        pl->v = nv;
    }
    if ((pl->v[pl->n] = ch_strdup(p)) == NULL)
        return CH_ENOMEM;
    pl->n++;
    return 0;
}

static void pl_free(pathlist *pl)
{
    for (size_t i = 0; i < pl->n; i++)
        ch_free(pl->v[i]);
    ch_free(pl->v);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

/* Files under dir (recursively when recurse, at most 16 levels), sorted, filtered by want. */
static int list_files(const char *dir, bool recurse, int depth, bool (*want)(const char *),
                      pathlist *pl)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return CH_EIO;
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char path[4096];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= sizeof path)
            continue;
        struct stat st;
        if (stat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (recurse && depth < 16 && strcmp(de->d_name, "tests") != 0)
                rc = list_files(path, recurse, depth + 1, want, pl);
        } else if (S_ISREG(st.st_mode) && want(de->d_name)) {
            rc = pl_add(pl, path);
        }
    }
    closedir(d);
    return rc;
}

static bool is_yaml(const char *n) { return ends_with(n, ".yml") || ends_with(n, ".yaml"); }
static bool is_any(const char *n)
{
    (void)n;
    return true;
}

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* PACK/refsets/NAME.TYPE[.txt] into the registry (a set already there is filled, not made). */
static int load_refsets(const char *dir, ch_refsets *refsets, ch_rule_msg_fn msg, void *ud,
                        ch_error *err)
{
    char sdir[4096];
    snprintf(sdir, sizeof sdir, "%s/refsets", dir);
    if (!is_dir(sdir))
        return 0;
    pathlist pl = {0};
    int rc = list_files(sdir, false, 0, is_any, &pl);
    int bad = 0;
    if (rc < 0) {
        rc = ch_error_set(err, rc, "%s: cannot list", sdir);
        goto cleanup;
    }
    if (pl.n > 1) /* an empty folder leaves pl.v NULL, which qsort must not be given */
        qsort(pl.v, pl.n, sizeof *pl.v, cmp_str);
    for (size_t i = 0; i < pl.n; i++) {
        const char *base = strrchr(pl.v[i], '/') + 1;
        char name[256];
        snprintf(name, sizeof name, "%s", base);
        if (ends_with(name, ".txt"))
            name[strlen(name) - 4] = '\0';
        char *dot = strrchr(name, '.');
        ch_refset_type type;
        if (dot == NULL || ch_refset_type_from_name(dot + 1, strlen(dot + 1), &type) < 0) {
            if (ends_with(base, ".md"))
                continue;
            ch_error_set(err, CH_EPARSE,
                         "%s: a reference set file is named NAME.TYPE[.txt] "
                         "with TYPE ip, domain, string or number",
                         pl.v[i]);
            if (msg)
                msg(ud, err->msg);
            bad++;
            continue;
        }
        *dot = '\0';
        ch_refset *set = NULL;
        ch_error se = {0};
        ch_refset_opts opts = {0};
        if (type == CH_REFSET_STRING)
            opts.flags = CH_REFSET_NOCASE;
        if ((rc = ch_refsets_ensure(refsets, name, type, &opts, &set, &se)) < 0 ||
            (rc = ch_refset_load_path(set, pl.v[i], NULL, NULL, NULL, &se)) < 0) {
            ch_error_set(err, rc, "%s: %s", pl.v[i], se.msg);
            if (msg)
                msg(ud, err->msg);
            bad++;
        }
    }
    rc = bad ? CH_EPARSE : 0;
cleanup:
    pl_free(&pl);
    return rc;
}

static int read_file(const char *path, char **out, size_t *len, ch_error *err)
{
    int rc = ch_read_file(path, CH_RULE_MAX_FILE, out, len, err);
    if (rc == CH_ELIMIT)
        ch_error_set(err, CH_ELIMIT, "%s: a rule file is at most %u bytes", path, CH_RULE_MAX_FILE);
    if (rc == CH_ENOTFOUND) { /* a rule file that vanished mid-load: an I/O failure here */
        rc = CH_EIO;
        if (err != NULL)
            err->code = CH_EIO;
    }
    return rc;
}

int ch_ruleset_load(const char *dir, ch_refsets *refsets, ch_rule_msg_fn msg, void *ud,
                    ch_ruleset **out, ch_error *err)
{
    *out = NULL;
    pathlist pl = {0};
    ch_rule **rules = NULL;
    uint32_t n = 0;
    int bad = 0, rc;
    ch_ruleset *rs = NULL;
    if (!is_dir(dir))
        return ch_error_set(err, CH_EIO, "%s: not a folder", dir);
    if (load_refsets(dir, refsets, msg, ud, err) < 0)
        bad++;
    char rdir[4096];
    snprintf(rdir, sizeof rdir, "%s/rules", dir);
    bool sub = is_dir(rdir);
    if ((rc = list_files(sub ? rdir : dir, sub, 0, is_yaml, &pl)) < 0) {
        rc = ch_error_set(err, rc, "%s: cannot list the rules", sub ? rdir : dir);
        goto cleanup;
    }
    if (pl.n > 1) /* no rule files leaves pl.v NULL, which qsort must not be given */
        qsort(pl.v, pl.n, sizeof *pl.v, cmp_str);
    if (pl.n > CH_RULESET_MAX_RULES) {
        rc = ch_error_set(err, CH_ELIMIT, "%s: more than %d rules", dir, CH_RULESET_MAX_RULES);
        goto cleanup;
    }
    rules = ch_calloc(pl.n ? pl.n : 1, sizeof *rules);
    if (rules == NULL) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto cleanup;
    }
    /* Expressions copy the env they are compiled with (expr.h), so a local one will do. */
    ch_expr_env env;
    ch_rule_env_init(&env, refsets);
    size_t cap = pl.n ? pl.n : 1;
    for (size_t i = 0; i < pl.n; i++) {
        char *text = NULL;
        size_t len = 0;
        ch_error fe = {0};
        ch_rule *r = NULL;
        ch_rule **many = NULL;
        uint32_t nmany = 0;
        rc = read_file(pl.v[i], &text, &len, &fe);
        /* Two formats, told apart by content: a Sigma file (sigma.h) may hold several rules. */
        if (rc == 0 && ch_sigma_sniff(text, len))
            rc = ch_sigma_load_mem(pl.v[i], text, len, &env, refsets, &many, &nmany, &fe);
        else if (rc == 0)
            rc = ch_rule_load_mem(pl.v[i], text, len, &env, refsets, &r, &fe);
        ch_free(text);
        if (rc == 0 && r != NULL) {
            many = &r;
            nmany = 1;
        }
        if (rc == 0 && n + nmany + (pl.n - i - 1) > cap) {
            size_t ncap = n + nmany + (pl.n - i - 1);
            ch_rule **nr =
                ncap > CH_RULESET_MAX_RULES ? NULL : ch_realloc(rules, ncap * sizeof *nr);
            if (nr == NULL) {
                rc = ch_error_set(&fe, CH_ELIMIT, "%s: more than %d rules or out of memory",
                                  pl.v[i], CH_RULESET_MAX_RULES);
                for (uint32_t j = 0; j < nmany; j++)
                    ch_rule_free(many[j]);
                if (many != &r)
                    ch_free(many);
                many = NULL;
            } else {
                rules = nr;
                cap = ncap;
            }
        }
        if (rc < 0) {
            if (msg)
                msg(ud, fe.msg);
            *err = fe;
            bad++;
            continue;
        }
        for (uint32_t j = 0; j < nmany; j++)
            rules[n++] = many[j];
        if (many != &r)
            ch_free(many);
    }
    if (bad) {
        for (uint32_t i = 0; i < n; i++)
            ch_rule_free(rules[i]);
        ch_free(rules);
        rules = NULL;
        rc = ch_error_set(err, CH_EPARSE, "%s: %d bad rule file%s or reference set%s", dir, bad,
                          bad == 1 ? "" : "s", bad == 1 ? "" : "s");
        goto cleanup;
    }
    const char *base = strrchr(dir, '/');
    char pack[256];
    snprintf(pack, sizeof pack, "%s", base && base[1] ? base + 1 : dir);
    rc = ch_ruleset_from_rules(rules, n, pack, refsets, &rs, err);
    rules = NULL;
    if (rc < 0) {
        if (msg)
            msg(ud, err->msg);
        goto cleanup;
    }
    *out = rs;
cleanup:
    pl_free(&pl);
    return rc;
}
