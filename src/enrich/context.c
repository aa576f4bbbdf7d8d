/*
 * context.c - the business context (see context.h): a small YAML reader (libyaml's document
 * API, so that every node keeps its line and column for messages) and the export of its lists
 * as reference sets.
 *
 * A file is parsed into a fresh ch_context first and only then moved key by key onto the
 * target, so a bad file leaves the target untouched and overlaying is a pointer swap per key.
 * Lists are plain arrays: contexts are small (a few countries, tens of networks, at most
 * thousands of images) and read per offense, never per event; the per-event questions go
 * through the reference sets built by ch_context_apply, which cost the same whatever the size.
 */
#include "enrich/context.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "core/ip.h"
#include "core/mem.h"
#include "core/readfile.h"
#include "core/yaml_util.h"

typedef struct ctx_net {
    char *cidr; /* as written, masked form is the refset's business */
    char *name;
} ctx_net;

typedef struct ctx_image {
    char *ami;
    char *os;
} ctx_image;

typedef struct strvec {
    char **v;
    size_t n;
} strvec;

struct ch_context {
    strvec countries;
    ctx_net *nets;
    size_t nnets;
    ctx_image *imgs;
    size_t nimgs;
    strvec os_names;
    int64_t learning_ms;
    strvec
        allowlist_accounts; /* only_listed_images: accounts where unlisted images are not allowed */
    strvec protected;       /* protected_resources: trails, detectors, flow logs... */
    /* risk: the user risk model's parameters (docs/RISK.md); 0 = the model's default. */
    double risk_decay, risk_multiplier, risk_scale;
    strvec watchlist;
    /* Which keys this context sets (for overlaying one file onto another). */
    bool has_countries, has_networks, has_images, has_os, has_learning, has_allowlist,
        has_protected, has_risk;
};

static void strvec_free(strvec *s)
{
    for (size_t i = 0; i < s->n; i++)
        ch_free(s->v[i]);
    ch_free(s->v);
    s->v = NULL;
    s->n = 0;
}

static void nets_free(ch_context *c)
{
    for (size_t i = 0; i < c->nnets; i++) {
        ch_free(c->nets[i].cidr);
        ch_free(c->nets[i].name);
    }
    ch_free(c->nets);
    c->nets = NULL;
    c->nnets = 0;
}

static void imgs_free(ch_context *c)
{
    for (size_t i = 0; i < c->nimgs; i++) {
        ch_free(c->imgs[i].ami);
        ch_free(c->imgs[i].os);
    }
    ch_free(c->imgs);
    c->imgs = NULL;
    c->nimgs = 0;
}

int ch_context_new(ch_context **out)
{
    *out = ch_calloc(1, sizeof **out);
    if (*out == NULL)
        return CH_ENOMEM;
    (*out)->learning_ms = CH_CONTEXT_DEFAULT_LEARNING_MS;
    return 0;
}

void ch_context_free(ch_context *c)
{
    if (c == NULL)
        return;
    strvec_free(&c->countries);
    strvec_free(&c->os_names);
    strvec_free(&c->allowlist_accounts);
    strvec_free(&c->protected);
    strvec_free(&c->watchlist);
    nets_free(c);
    imgs_free(c);
    ch_free(c);
}

/* ---- YAML reading -------------------------------------------------------------------------- */

typedef struct reader {
    const char *file;
    yaml_document_t doc;
    ch_error *err;
    ch_context *c;
    ch_refset *scratch; /* validates network CIDRs */
} reader;

static int rfail(reader *R, const yaml_node_t *n, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int rfail(reader *R, const yaml_node_t *n, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = ch_yaml_vfail(R->err, R->file, NULL, n, code, fmt, ap);
    va_end(ap);
    return rc;
}

static yaml_node_t *node(reader *R, int i) { return yaml_document_get_node(&R->doc, i); }

/* A non-empty scalar without NUL bytes, at most max bytes, copied. */
static int want_text(reader *R, const yaml_node_t *n, const char *what, size_t max, char **out)
{
    size_t len;
    const char *s = ch_yaml_scalar(n, &len);
    if (s == NULL || len == 0)
        return rfail(R, n, CH_EPARSE, "expected %s (a non-empty string)", what);
    if (len > max || memchr(s, '\0', len) != NULL)
        return rfail(R, n, CH_ELIMIT, "%s is longer than %zu bytes or holds a NUL byte", what, max);
    if ((*out = ch_strndup(s, len)) == NULL)
        return ch_error_set(R->err, CH_ENOMEM, "out of memory");
    return 0;
}

static int want_seq(reader *R, const yaml_node_t *n, const char *key, size_t max)
{
    if (n == NULL || n->type != YAML_SEQUENCE_NODE)
        return rfail(R, n, CH_EPARSE, "'%s' expects a list", key);
    size_t cnt = ch_yaml_seq_len(n);
    if (cnt > max)
        return rfail(R, n, CH_ELIMIT, "'%s' holds more than %zu entries", key, max);
    return 0;
}

static int read_countries(reader *R, const yaml_node_t *n)
{
    int rc;
    if ((rc = want_seq(R, n, "business_countries", CH_CONTEXT_MAX_COUNTRIES)) < 0)
        return rc;
    size_t cnt = ch_yaml_seq_len(n);
    R->c->countries.v = ch_calloc(cnt ? cnt : 1, sizeof(char *));
    if (R->c->countries.v == NULL)
        return ch_error_set(R->err, CH_ENOMEM, "out of memory");
    for (size_t i = 0; i < cnt; i++) {
        yaml_node_t *it = node(R, n->data.sequence.items.start[i]);
        size_t len;
        const char *s = ch_yaml_scalar(it, &len);
        if (s == NULL || len != 2 || !((s[0] | 0x20) >= 'a' && (s[0] | 0x20) <= 'z') ||
            !((s[1] | 0x20) >= 'a' && (s[1] | 0x20) <= 'z'))
            return rfail(R, it, CH_EPARSE,
                         "expected a country as an ISO 3166-1 alpha-2 code such as GB");
        char *cc = ch_strndup(s, 2);
        if (cc == NULL)
            return ch_error_set(R->err, CH_ENOMEM, "out of memory");
        cc[0] = (char)(cc[0] & ~0x20);
        cc[1] = (char)(cc[1] & ~0x20);
        R->c->countries.v[R->c->countries.n++] = cc;
    }
    R->c->has_countries = true;
    return 0;
}

static int read_os_names(reader *R, const yaml_node_t *n)
{
    int rc;
    if ((rc = want_seq(R, n, "unauthorized_os", CH_CONTEXT_MAX_OS_NAMES)) < 0)
        return rc;
    size_t cnt = ch_yaml_seq_len(n);
    R->c->os_names.v = ch_calloc(cnt ? cnt : 1, sizeof(char *));
    if (R->c->os_names.v == NULL)
        return ch_error_set(R->err, CH_ENOMEM, "out of memory");
    for (size_t i = 0; i < cnt; i++) {
        yaml_node_t *it = node(R, n->data.sequence.items.start[i]);
        if ((rc = want_text(R, it, "an operating system name", 128,
                            &R->c->os_names.v[R->c->os_names.n])) < 0)
            return rc;
        R->c->os_names.n++;
    }
    R->c->has_os = true;
    return 0;
}

/* A list of non-empty strings (at most max of at most maxlen bytes) into *v. */
static int read_strlist(reader *R, const yaml_node_t *n, const char *key, const char *what,
                        size_t max, size_t maxlen, strvec *v)
{
    int rc;
    if ((rc = want_seq(R, n, key, max)) < 0)
        return rc;
    size_t cnt = ch_yaml_seq_len(n);
    v->v = ch_calloc(cnt ? cnt : 1, sizeof(char *));
    if (v->v == NULL)
        return ch_error_set(R->err, CH_ENOMEM, "out of memory");
    for (size_t i = 0; i < cnt; i++) {
        yaml_node_t *it = node(R, n->data.sequence.items.start[i]);
        if ((rc = want_text(R, it, what, maxlen, &v->v[v->n])) < 0)
            return rc;
        v->n++;
    }
    return 0;
}

/* only_listed_images: AWS account ids, 12 digits each. */
static int read_allowlist(reader *R, const yaml_node_t *n)
{
    int rc = read_strlist(R, n, "only_listed_images", "an AWS account id", CH_CONTEXT_MAX_ACCOUNTS,
                          12, &R->c->allowlist_accounts);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < R->c->allowlist_accounts.n; i++) {
        const char *a = R->c->allowlist_accounts.v[i];
        bool ok = strlen(a) == 12;
        for (size_t j = 0; ok && j < 12; j++)
            ok = a[j] >= '0' && a[j] <= '9';
        if (!ok)
            return rfail(R, node(R, n->data.sequence.items.start[i]), CH_EPARSE,
                         "expected an AWS account id (12 digits)");
    }
    R->c->has_allowlist = true;
    return 0;
}

/* An address or CIDR exactly as the business_networks set will read it: the set's own parser
 * (a scratch set, made on first use) decides, so that what loads always applies. */
static bool cidr_ok(reader *R, const char *s)
{
    if (R->scratch == NULL && ch_refset_new(&R->scratch, "scratch", CH_REFSET_IP, NULL, NULL) < 0)
        return false;
    ch_error e;
    bool ok = ch_refset_add(R->scratch, s, strlen(s), NULL, &e) >= 0;
    size_t cur = 0;
    const ch_refset_elem *el;
    while ((el = ch_refset_next(R->scratch, &cur)) != NULL)
        ch_refset_remove_elem(R->scratch, el);
    return ok;
}

static int read_networks(reader *R, const yaml_node_t *n)
{
    int rc;
    if ((rc = want_seq(R, n, "networks", CH_CONTEXT_MAX_NETWORKS)) < 0)
        return rc;
    size_t cnt = ch_yaml_seq_len(n);
    R->c->nets = ch_calloc(cnt ? cnt : 1, sizeof *R->c->nets);
    if (R->c->nets == NULL)
        return ch_error_set(R->err, CH_ENOMEM, "out of memory");
    for (size_t i = 0; i < cnt; i++) {
        yaml_node_t *it = node(R, n->data.sequence.items.start[i]);
        if (it == NULL || it->type != YAML_MAPPING_NODE)
            return rfail(R, it, CH_EPARSE, "expected a network as {cidr: 10.0.0.0/8, name: ...}");
        ctx_net *net = &R->c->nets[R->c->nnets++];
        for (yaml_node_pair_t *p = it->data.mapping.pairs.start; p < it->data.mapping.pairs.top;
             p++) {
            yaml_node_t *k = node(R, p->key), *v = node(R, p->value);
            if (ch_yaml_key_is(k, "cidr")) {
                ch_free(net->cidr);
                net->cidr = NULL;
                if ((rc = want_text(R, v, "a CIDR", 64, &net->cidr)) < 0)
                    return rc;
                if (!cidr_ok(R, net->cidr))
                    return rfail(R, v, CH_EPARSE,
                                 "expected an address or CIDR such as 172.31.0.0/16");
            } else if (ch_yaml_key_is(k, "name")) {
                ch_free(net->name);
                net->name = NULL;
                if ((rc = want_text(R, v, "a network name", 256, &net->name)) < 0)
                    return rc;
            } else {
                return rfail(R, k, CH_EPARSE, "unknown key in a network (expected cidr, name)");
            }
        }
        if (net->cidr == NULL)
            return rfail(R, it, CH_EPARSE, "a network needs a cidr");
    }
    R->c->has_networks = true;
    return 0;
}

typedef struct image_at {
    const char *ami;
    const yaml_node_t *key;
} image_at;

static int cmp_image_at(const void *a, const void *b)
{
    const image_at *x = a, *y = b;
    int c = strcmp(x->ami, y->ami);
    /* Equal ids: the later one in the file is the duplicate to name. */
    return c ? c : (x->key->start_mark.index < y->key->start_mark.index ? -1 : 1);
}

/* An AMI listed twice (perhaps with two OSes) is a mistake to name, not to resolve silently.
 * Sorting keeps this O(n log n) for the largest contexts. */
static int no_duplicate_images(reader *R, const yaml_node_t *n)
{
    size_t cnt = R->c->nimgs;
    if (cnt < 2)
        return 0;
    image_at *v = ch_malloc(cnt * sizeof *v);
    if (v == NULL)
        return ch_error_set(R->err, CH_ENOMEM, "out of memory");
    size_t i = 0;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        v[i].ami = R->c->imgs[i].ami;
        v[i].key = node(R, p->key);
        i++;
    }
    qsort(v, cnt, sizeof *v, cmp_image_at);
    int rc = 0;
    for (i = 1; i < cnt && rc == 0; i++)
        if (strcmp(v[i - 1].ami, v[i].ami) == 0)
            rc = rfail(R, v[i].key, CH_EPARSE, "image %s is listed twice", v[i].ami);
    ch_free(v);
    return rc;
}

static int read_images(reader *R, const yaml_node_t *n)
{
    if (n == NULL || n->type != YAML_MAPPING_NODE)
        return rfail(R, n, CH_EPARSE, "'images' expects a mapping of AMI id -> {os: ...}");
    size_t cnt = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    if (cnt > CH_CONTEXT_MAX_IMAGES)
        return rfail(R, n, CH_ELIMIT, "'images' holds more than %d entries", CH_CONTEXT_MAX_IMAGES);
    R->c->imgs = ch_calloc(cnt ? cnt : 1, sizeof *R->c->imgs);
    if (R->c->imgs == NULL)
        return ch_error_set(R->err, CH_ENOMEM, "out of memory");
    int rc;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(R, p->key), *v = node(R, p->value);
        ctx_image *img = &R->c->imgs[R->c->nimgs++];
        if ((rc = want_text(R, k, "an AMI id", 128, &img->ami)) < 0)
            return rc;
        if (v == NULL || v->type != YAML_MAPPING_NODE)
            return rfail(R, v, CH_EPARSE, "expected {os: \"...\"} for image %s", img->ami);
        for (yaml_node_pair_t *q = v->data.mapping.pairs.start; q < v->data.mapping.pairs.top;
             q++) {
            yaml_node_t *ik = node(R, q->key), *iv = node(R, q->value);
            if (!ch_yaml_key_is(ik, "os"))
                return rfail(R, ik, CH_EPARSE, "unknown key in image %s (expected os)", img->ami);
            ch_free(img->os);
            img->os = NULL;
            if ((rc = want_text(R, iv, "an operating system", 256, &img->os)) < 0)
                return rc;
        }
        if (img->os == NULL)
            return rfail(R, v, CH_EPARSE, "image %s needs an os", img->ami);
    }
    if ((rc = no_duplicate_images(R, n)) < 0)
        return rc;
    R->c->has_images = true;
    return 0;
}

/* "24h", "30m", "7d", "90s", "500ms", "2w" -> ms. */
static bool parse_duration(const char *s, size_t n, int64_t *ms)
{
    size_t i = 0;
    int64_t v = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        if (v > (INT64_MAX / 10 - 9) / 604800000LL)
            return false;
        v = v * 10 + (s[i++] - '0');
    }
    if (i == 0)
        return false;
    const char *u = s + i;
    size_t un = n - i;
    int64_t mul = un == 2 && memcmp(u, "ms", 2) == 0 ? 1
                  : un == 1 && *u == 's'             ? 1000
                  : un == 1 && *u == 'm'             ? 60000
                  : un == 1 && *u == 'h'             ? 3600000
                  : un == 1 && *u == 'd'             ? 86400000
                  : un == 1 && *u == 'w'             ? 604800000
                                                     : 0;
    if (mul == 0)
        return false;
    *ms = v * mul;
    return true;
}

/* A number in [lo, hi] from a scalar. */
static int want_number(reader *R, const yaml_node_t *n, double lo, double hi, double *out)
{
    size_t len;
    const char *s = ch_yaml_scalar(n, &len);
    char buf[64];
    char *end = NULL;
    if (s != NULL && len > 0 && len < sizeof buf) {
        memcpy(buf, s, len);
        buf[len] = '\0';
        *out = strtod(buf, &end);
    }
    if (s == NULL || len == 0 || len >= sizeof buf || end != buf + len || !(*out >= lo) ||
        !(*out <= hi))
        return rfail(R, n, CH_EPARSE, "expected a number from %g to %g", lo, hi);
    return 0;
}

/* risk: {decay_per_hour, watchlist_multiplier, scale, watchlist: [user names]} */
static int read_risk(reader *R, const yaml_node_t *n)
{
    if (n->type != YAML_MAPPING_NODE)
        return rfail(R, n, CH_EPARSE,
                     "expected a mapping (decay_per_hour, watchlist, watchlist_multiplier, "
                     "scale)");
    int rc = 0;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
         p < n->data.mapping.pairs.top && rc == 0; p++) {
        yaml_node_t *k = node(R, p->key), *v = node(R, p->value);
        if (ch_yaml_key_is(k, "decay_per_hour"))
            rc = want_number(R, v, 1e-9, 1, &R->c->risk_decay);
        else if (ch_yaml_key_is(k, "watchlist_multiplier"))
            rc = want_number(R, v, 1, 1000, &R->c->risk_multiplier);
        else if (ch_yaml_key_is(k, "scale"))
            rc = want_number(R, v, 1e-3, 1e12, &R->c->risk_scale);
        else if (ch_yaml_key_is(k, "watchlist")) {
            strvec_free(&R->c->watchlist);
            rc = read_strlist(R, v, "watchlist", "a user name", 4096, 512, &R->c->watchlist);
        } else
            return rfail(R, k, CH_EPARSE,
                         "unknown key (expected decay_per_hour, watchlist, "
                         "watchlist_multiplier, scale)");
    }
    if (rc == 0)
        R->c->has_risk = true;
    return rc;
}

static int read_root(reader *R, yaml_node_t *root)
{
    if (root->type != YAML_MAPPING_NODE)
        return rfail(R, root, CH_EPARSE,
                     "expected a mapping (business_countries, networks, "
                     "images, learning, unauthorized_os)");
    int rc = 0;
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = node(R, p->key), *v = node(R, p->value);
        bool dup = (ch_yaml_key_is(k, "business_countries") && R->c->has_countries) ||
                   (ch_yaml_key_is(k, "networks") && R->c->has_networks) ||
                   (ch_yaml_key_is(k, "images") && R->c->has_images) ||
                   (ch_yaml_key_is(k, "learning") && R->c->has_learning) ||
                   (ch_yaml_key_is(k, "unauthorized_os") && R->c->has_os) ||
                   (ch_yaml_key_is(k, "only_listed_images") && R->c->has_allowlist) ||
                   (ch_yaml_key_is(k, "protected_resources") && R->c->has_protected) ||
                   (ch_yaml_key_is(k, "risk") && R->c->has_risk);
        if (dup)
            return rfail(R, k, CH_EPARSE, "key given twice");
        if (ch_yaml_key_is(k, "business_countries")) {
            rc = read_countries(R, v);
        } else if (ch_yaml_key_is(k, "networks")) {
            rc = read_networks(R, v);
        } else if (ch_yaml_key_is(k, "images")) {
            rc = read_images(R, v);
        } else if (ch_yaml_key_is(k, "unauthorized_os")) {
            rc = read_os_names(R, v);
        } else if (ch_yaml_key_is(k, "only_listed_images")) {
            rc = read_allowlist(R, v);
        } else if (ch_yaml_key_is(k, "protected_resources")) {
            rc = read_strlist(R, v, "protected_resources", "a resource name, id or ARN",
                              CH_CONTEXT_MAX_PROTECTED, 2048, &R->c->protected);
            R->c->has_protected = rc == 0;
        } else if (ch_yaml_key_is(k, "risk")) {
            rc = read_risk(R, v);
        } else if (ch_yaml_key_is(k, "learning")) {
            size_t len;
            const char *s = ch_yaml_scalar(v, &len);
            if (s == NULL || !parse_duration(s, len, &R->c->learning_ms))
                return rfail(R, v, CH_EPARSE, "expected a duration such as 24h or 7d");
            R->c->has_learning = true;
        } else {
            return rfail(R, k, CH_EPARSE,
                         "unknown key (expected business_countries, networks, "
                         "images, learning, unauthorized_os, only_listed_images, "
                         "protected_resources, risk)");
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Move every key src sets onto dst (src keeps only what dst gave up, freed with it). */
static void overlay(ch_context *dst, ch_context *src)
{
#define SWAP(T, a, b)                                                                              \
    do {                                                                                           \
        T t_ = (a);                                                                                \
        (a) = (b);                                                                                 \
        (b) = t_;                                                                                  \
    } while (0)
    if (src->has_countries) {
        SWAP(strvec, dst->countries, src->countries);
        dst->has_countries = true;
    }
    if (src->has_os) {
        SWAP(strvec, dst->os_names, src->os_names);
        dst->has_os = true;
    }
    if (src->has_networks) {
        SWAP(ctx_net *, dst->nets, src->nets);
        SWAP(size_t, dst->nnets, src->nnets);
        dst->has_networks = true;
    }
    if (src->has_images) {
        SWAP(ctx_image *, dst->imgs, src->imgs);
        SWAP(size_t, dst->nimgs, src->nimgs);
        dst->has_images = true;
    }
    if (src->has_allowlist) {
        SWAP(strvec, dst->allowlist_accounts, src->allowlist_accounts);
        dst->has_allowlist = true;
    }
    if (src->has_protected) {
        SWAP(strvec, dst->protected, src->protected);
        dst->has_protected = true;
    }
    if (src->has_risk) {
        SWAP(strvec, dst->watchlist, src->watchlist);
        dst->risk_decay = src->risk_decay;
        dst->risk_multiplier = src->risk_multiplier;
        dst->risk_scale = src->risk_scale;
        dst->has_risk = true;
    }
    if (src->has_learning) {
        dst->learning_ms = src->learning_ms;
        dst->has_learning = true;
    }
#undef SWAP
}

int ch_context_load_mem(ch_context *c, const char *name, const char *text, size_t n, ch_error *err)
{
    reader R;
    memset(&R, 0, sizeof R);
    R.file = name ? name : "<memory>";
    R.err = err;
    int rc = 0;
    bool have_doc = false;
    yaml_parser_t parser;
    if (n > CH_CONTEXT_MAX_FILE)
        return ch_error_set(err, CH_ELIMIT, "%s: a context file is at most %u bytes", R.file,
                            CH_CONTEXT_MAX_FILE);
    if ((rc = ch_context_new(&R.c)) < 0)
        return ch_error_set(err, rc, "out of memory");
    if (!yaml_parser_initialize(&parser)) {
        ch_context_free(R.c);
        return ch_error_set(err, CH_ENOMEM, "%s: out of memory", R.file);
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, n);
    if (!yaml_parser_load(&parser, &R.doc)) {
        rc = ch_yaml_load_error(err, R.file, &parser);
        goto cleanup;
    }
    have_doc = true;
    yaml_node_t *root = yaml_document_get_root_node(&R.doc);
    /* An empty file says nothing: every default stands. */
    if (root != NULL && (rc = read_root(&R, root)) < 0)
        goto cleanup;
    overlay(c, R.c);
cleanup:
    if (have_doc)
        yaml_document_delete(&R.doc);
    yaml_parser_delete(&parser);
    ch_refset_free(R.scratch);
    ch_context_free(R.c);
    return rc;
}

int ch_context_load_path(ch_context *c, const char *path, ch_error *err)
{
    char *text = NULL;
    size_t len = 0;
    int rc = ch_read_file(path, CH_CONTEXT_MAX_FILE, &text, &len, err);
    if (rc == 0)
        rc = ch_context_load_mem(c, path, text, len, err);
    ch_free(text);
    return rc;
}

/* One OS name a line, '#' comments and blank lines skipped (the refset list format). */
static int read_os_list(ch_context *c, const char *path, ch_error *err)
{
    char *text = NULL;
    size_t len = 0;
    int rc = ch_read_file(path, 1u << 20, &text, &len, err);
    if (rc < 0)
        return rc;
    strvec v = {0};
    v.v = ch_calloc(CH_CONTEXT_MAX_OS_NAMES, sizeof(char *));
    if (v.v == NULL) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto cleanup;
    }
    unsigned lineno = 0;
    for (char *line = text, *next; line != NULL && *line; line = next) {
        lineno++;
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        while (*line == ' ' || *line == '\t')
            line++;
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
            line[--n] = '\0';
        if (n == 0 || *line == '#')
            continue;
        if (v.n == CH_CONTEXT_MAX_OS_NAMES) {
            rc = ch_error_set(err, CH_ELIMIT, "%s:%u:1: more than %d names", path, lineno,
                              CH_CONTEXT_MAX_OS_NAMES);
            goto cleanup;
        }
        if ((v.v[v.n] = ch_strndup(line, n)) == NULL) {
            rc = ch_error_set(err, CH_ENOMEM, "out of memory");
            goto cleanup;
        }
        v.n++;
    }
    strvec_free(&c->os_names);
    c->os_names = v;
    v.v = NULL;
    v.n = 0;
    c->has_os = true;
cleanup:
    strvec_free(&v);
    ch_free(text);
    return rc;
}

int ch_context_load_pack(ch_context *c, const char *pack_dir, ch_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/context.yaml", pack_dir);
    int rc = ch_context_load_path(c, path, err);
    if (rc < 0 && rc != CH_ENOTFOUND)
        return rc;
    if (c->has_os)
        return 0;
    static const char *const names[] = {"unauthorized_os.string.txt", "unauthorized_os.string"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(path, sizeof path, "%s/refsets/%s", pack_dir, names[i]);
        rc = read_os_list(c, path, err);
        if (rc != CH_ENOTFOUND)
            return rc;
    }
    return 0;
}

/* ---- lookups ------------------------------------------------------------------------------- */

size_t ch_context_country_count(const ch_context *c) { return c->countries.n; }
const char *ch_context_country(const ch_context *c, size_t i)
{
    return i < c->countries.n ? c->countries.v[i] : NULL;
}

bool ch_context_is_business_country(const ch_context *c, const char *iso2, size_t n)
{
    for (size_t i = 0; i < c->countries.n; i++)
        if (n == 2 && strncasecmp(c->countries.v[i], iso2, 2) == 0)
            return true;
    return false;
}

size_t ch_context_network_count(const ch_context *c) { return c->nnets; }
size_t ch_context_image_count(const ch_context *c) { return c->nimgs; }
int64_t ch_context_learning_ms(const ch_context *c) { return c->learning_ms; }

void ch_context_risk(const ch_context *c, double *decay_per_hour, double *watchlist_multiplier,
                     double *scale)
{
    *decay_per_hour = c->risk_decay;
    *watchlist_multiplier = c->risk_multiplier;
    *scale = c->risk_scale;
}

size_t ch_context_watchlist_count(const ch_context *c) { return c->watchlist.n; }
const char *ch_context_watchlist(const ch_context *c, size_t i)
{
    return i < c->watchlist.n ? c->watchlist.v[i] : NULL;
}

const char *ch_context_image_os(const ch_context *c, const char *ami, size_t n)
{
    for (size_t i = 0; i < c->nimgs; i++)
        if (strlen(c->imgs[i].ami) == n && memcmp(c->imgs[i].ami, ami, n) == 0)
            return c->imgs[i].os;
    return NULL;
}

static bool contains_nocase(const char *hay, size_t hn, const char *needle)
{
    size_t nn = strlen(needle);
    if (nn == 0 || nn > hn)
        return false;
    for (size_t i = 0; i + nn <= hn; i++)
        if (strncasecmp(hay + i, needle, nn) == 0)
            return true;
    return false;
}

bool ch_context_os_unauthorized(const ch_context *c, const char *os, size_t n)
{
    for (size_t i = 0; i < c->os_names.n; i++)
        if (contains_nocase(os, n, c->os_names.v[i]))
            return true;
    return false;
}

/* ---- export as reference sets -------------------------------------------------------------- */

/* The set of that name and type, made if absent, emptied if present. */
static int fresh_set(ch_refsets *sets, const char *name, ch_refset_type type, uint32_t flags,
                     ch_refset **out, ch_error *err)
{
    ch_refset_opts o = {0};
    o.flags = flags;
    ch_error se = {0};
    int rc = ch_refsets_ensure(sets, name, type, &o, out, &se);
    if (rc < 0)
        return ch_error_set(err, rc, "context set %s: %s", name, se.msg);
    size_t cur = 0;
    const ch_refset_elem *e;
    while ((e = ch_refset_next(*out, &cur)) != NULL)
        ch_refset_remove_elem(*out, e);
    return 0;
}

static int add_text(ch_refset *s, const char *text, const ch_refset_meta *m, ch_error *err)
{
    ch_error se = {0};
    int rc = ch_refset_add(s, text, strlen(text), m, &se);
    if (rc < 0)
        return ch_error_set(err, rc, "context set %s: %s: %s", ch_refset_name(s), text, se.msg);
    return 0;
}

int ch_context_apply(const ch_context *c, ch_refsets *sets, ch_error *err)
{
    ch_refset *countries, *nets, *known, *authorized, *unauthorized, *allow, *prot;
    int rc;
    if ((rc = fresh_set(sets, "business_countries", CH_REFSET_STRING, CH_REFSET_NOCASE, &countries,
                        err)) < 0 ||
        (rc = fresh_set(sets, "business_networks", CH_REFSET_IP, 0, &nets, err)) < 0 ||
        (rc = fresh_set(sets, "known_images", CH_REFSET_STRING, 0, &known, err)) < 0 ||
        (rc = fresh_set(sets, "authorized_images", CH_REFSET_STRING, 0, &authorized, err)) < 0 ||
        (rc = fresh_set(sets, "unauthorized_images", CH_REFSET_STRING, 0, &unauthorized, err)) <
            0 ||
        (rc = fresh_set(sets, "image_allowlist_accounts", CH_REFSET_STRING, 0, &allow, err)) < 0 ||
        (rc = fresh_set(sets, "protected_resources", CH_REFSET_STRING, 0, &prot, err)) < 0)
        return rc;
    ch_refset_meta m = CH_REFSET_META_INIT;
    m.source = "context";
    for (size_t i = 0; i < c->countries.n; i++)
        if ((rc = add_text(countries, c->countries.v[i], &m, err)) < 0)
            return rc;
    for (size_t i = 0; i < c->nnets; i++) {
        ch_refset_meta nm = m;
        nm.indicator = c->nets[i].name; /* lookups give the network's name back */
        if ((rc = add_text(nets, c->nets[i].cidr, &nm, err)) < 0)
            return rc;
    }
    for (size_t i = 0; i < c->nimgs; i++) {
        const ctx_image *img = &c->imgs[i];
        ch_refset_meta im = m;
        im.indicator = img->os;
        bool bad = ch_context_os_unauthorized(c, img->os, strlen(img->os));
        if ((rc = add_text(known, img->ami, &im, err)) < 0 ||
            (rc = add_text(bad ? unauthorized : authorized, img->ami, &im, err)) < 0)
            return rc;
    }
    for (size_t i = 0; i < c->allowlist_accounts.n; i++)
        if ((rc = add_text(allow, c->allowlist_accounts.v[i], &m, err)) < 0)
            return rc;
    for (size_t i = 0; i < c->protected.n; i++)
        if ((rc = add_text(prot, c->protected.v[i], &m, err)) < 0)
            return rc;
    return 0;
}

size_t ch_context_allowlist_account_count(const ch_context *c) { return c->allowlist_accounts.n; }
size_t ch_context_protected_count(const ch_context *c) { return c->protected.n; }
