/*
 * intel_match.c - threat-intelligence matching of events (see intel_match.h) and the loading of
 * intel files and stored sets for one run.
 *
 * The matcher is two arrays of set pointers, ip sets and domain sets, filled once before the run
 * and read-only afterwards, so matching allocates nothing and takes no lock. Per event the work
 * is bounded by (values checked) x (sets registered): at most 1 + 16 values (a DNS name and its
 * answers) and, per value, one constant-time lookup per set of its type. A name is prepared once
 * (lower-cased, split, every suffix hashed) and the prepared query is probed against every domain
 * set; the ch_refset_dq lives on the stack (about 1.4 KiB) and is only built when there is a
 * domain set to probe.
 *
 * Loading is the slow path and runs once: bundles are parsed whole (stix.h), lists line by line
 * (refset.h), stored sets row by row (intel_store.h). A file's kind is told from its first bytes
 * (ch_stix_looks_like_bundle), never from its name.
 */
#include "intel/intel_match.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/mem.h"
#include "ingest/input.h"
#include "intel/intel_store.h"
#include "intel/stix.h"

#define SNIFF_BYTES 65536 /* enough of a file to tell a bundle from a list, and a list's type */
#define SNIFF_LINES 500

typedef struct setlist {
    const ch_refset **v;
    size_t n, cap;
} setlist;

struct ch_intel_matcher {
    ch_refsets *sets;            /* borrowed */
    const ch_intel_catalog *cat; /* borrowed, may be NULL */
    setlist ip, dom;
    ch_intel_load_stats stats;
};

int ch_intel_matcher_new(ch_intel_matcher **out, ch_refsets *sets, const ch_intel_catalog *cat,
                         ch_error *err)
{
    *out = ch_calloc(1, sizeof **out);
    if (*out == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    (*out)->sets = sets;
    (*out)->cat = cat;
    return 0;
}

void ch_intel_matcher_free(ch_intel_matcher *m)
{
    if (m == NULL)
        return;
    ch_free(m->ip.v);
    ch_free(m->dom.v);
    ch_free(m);
}

size_t ch_intel_matcher_count(const ch_intel_matcher *m) { return m ? m->ip.n + m->dom.n : 0; }

const ch_intel_load_stats *ch_intel_matcher_load_stats(const ch_intel_matcher *m)
{
    return &m->stats;
}

int ch_intel_matcher_add_set(ch_intel_matcher *m, const ch_refset *set, ch_error *err)
{
    if (m == NULL || set == NULL)
        return ch_error_set(err, CH_EUSAGE, "no set to register as an intel set");
    ch_refset_type t = ch_refset_type_of(set);
    if (t != CH_REFSET_IP && t != CH_REFSET_DOMAIN)
        return 0;
    setlist *l = t == CH_REFSET_IP ? &m->ip : &m->dom;
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i] == set)
            return 0;
    if (m->ip.n + m->dom.n >= CH_REFSETS_MAX)
        return ch_error_set(err, CH_ELIMIT, "more than %d intel sets", CH_REFSETS_MAX);
    if (l->n == l->cap) {
        const ch_refset **v = ch_grow(l->v, &l->cap, 8, sizeof *v);
        if (v == NULL)
            return ch_error_set(err, CH_ENOMEM, "out of memory");
        l->v = v;
    }
    l->v[l->n++] = set;
    return 1;
}

int ch_intel_matcher_add_named(ch_intel_matcher *m, const char *name, ch_error *err)
{
    const ch_refset *s = m && m->sets ? ch_refsets_get(m->sets, name, strlen(name)) : NULL;
    if (s == NULL)
        return ch_error_set(err, CH_ENOTFOUND, "no reference set named '%.128s'", name);
    return ch_intel_matcher_add_set(m, s, err);
}

/* ---- matching ------------------------------------------------------------------------------ */

static void fill(const ch_intel_matcher *m, ch_event *ev, const ch_refset *s,
                 const ch_refset_elem *e, const char *field, ch_sv name, const ch_ip *ip)
{
    ch_threat *t = &ev->threat;
    t->set = ch_refset_name(s);
    t->field = field;
    t->atomic = name;
    if (ip != NULL)
        t->atomic_ip = *ip;
    t->feed = e->source;
    t->indicator_id = e->indicator;
    t->indicator_name = t->indicator_types = t->provider = "";
    t->confidence = -1;
    if (m->cat == NULL || e->indicator[0] == '\0')
        return;
    const ch_intel_indicator *ind =
        ch_intel_indicator_lookup(m->cat, e->indicator, strlen(e->indicator));
    if (ind == NULL)
        return;
    t->indicator_name = ind->name;
    t->indicator_types = ind->types;
    t->provider = ind->created_by;
    t->confidence = ind->confidence;
    if (t->feed[0] == '\0')
        t->feed = ind->feed;
}

static bool match_ip(const ch_intel_matcher *m, ch_event *ev, const ch_ip *ip, const char *field)
{
    const ch_refset_elem *e;
    for (size_t i = 0; i < m->ip.n; i++)
        if (ch_refset_contains_ip(m->ip.v[i], ip, ev->ts_ms, &e)) {
            fill(m, ev, m->ip.v[i], e, field, (ch_sv){NULL, 0}, ip);
            return true;
        }
    return false;
}

static bool match_name(const ch_intel_matcher *m, ch_event *ev, ch_sv name, const char *field)
{
    if (m->dom.n == 0 || name.n == 0)
        return false;
    ch_refset_dq q;
    ch_refset_dq_prepare(&q, name.p, name.n);
    const ch_refset_elem *e;
    for (size_t i = 0; i < m->dom.n; i++)
        if (ch_refset_contains_dq(m->dom.v[i], &q, ev->ts_ms, &e)) {
            fill(m, ev, m->dom.v[i], e, field, name, NULL);
            return true;
        }
    return false;
}

static bool match_dns(const ch_intel_matcher *m, ch_event *ev)
{
    if (match_name(m, ev, ev->dns_qname, "dns.question.name"))
        return true;
    for (unsigned i = 0; i < ev->dns_nanswers && i < CH_EVENT_MAX_ANSWERS; i++) {
        ch_sv a = ev->dns_answers[i];
        ch_ip ip;
        if (a.n == 0)
            continue;
        if (ch_ip_parse(a.p, a.n, &ip)) {
            if (m->ip.n && match_ip(m, ev, &ip, "dns.answers.data"))
                return true;
        } else if (match_name(m, ev, a, "dns.answers.data")) {
            return true;
        }
    }
    return false;
}

bool ch_intel_match(const ch_intel_matcher *m, ch_event *ev)
{
    if (m == NULL || (m->ip.n | m->dom.n) == 0)
        return false;
    memset(&ev->threat, 0, sizeof ev->threat);
    switch (ev->dataset) {
    case CH_DS_CLOUDTRAIL:
        return m->ip.n && ev->src_ip.family && match_ip(m, ev, &ev->src_ip, "source.ip");
    case CH_DS_ROUTE53:
        return match_dns(m, ev);
    case CH_DS_VPCFLOW:
        if (m->ip.n == 0)
            return false;
        if (ev->dst_ip.family && match_ip(m, ev, &ev->dst_ip, "destination.ip"))
            return true;
        return ev->src_ip.family && !ch_ip_is_internal(&ev->src_ip) &&
               match_ip(m, ev, &ev->src_ip, "source.ip");
    default:
        return false;
    }
}

int ch_threat_describe(const ch_threat *t, ch_buf *b)
{
    if (t == NULL || t->set == NULL)
        return 0;
    char ipt[48];
    ch_sv v = t->atomic;
    if (v.n == 0 && t->atomic_ip.family) {
        size_t n = ch_ip_format(&t->atomic_ip, ipt);
        v = (ch_sv){ipt, (uint32_t)n};
    }
    int rc = ch_buf_printf(b, "intel: %.*s (%s) in %.128s", (int)(v.n < 253 ? v.n : 253),
                           v.p ? v.p : "", t->field ? t->field : "?", t->set);
    const char *sep = " (";
#define PART(...)                                                                                  \
    do {                                                                                           \
        rc |= ch_buf_adds(b, sep);                                                                 \
        rc |= ch_buf_printf(b, __VA_ARGS__);                                                       \
        sep = ", ";                                                                                \
    } while (0)
    if (t->feed && t->feed[0])
        PART("feed %.128s", t->feed);
    if (t->indicator_id && t->indicator_id[0]) {
        PART("indicator %.128s", t->indicator_id);
        if (t->indicator_name && t->indicator_name[0])
            rc |= ch_buf_printf(b, " '%.200s'", t->indicator_name);
    }
    if (t->indicator_types && t->indicator_types[0])
        PART("types %.200s", t->indicator_types);
    if (t->provider && t->provider[0])
        PART("created by %.128s", t->provider);
    if (t->confidence >= 0)
        PART("confidence %d", t->confidence);
#undef PART
    if (sep[0] == ',')
        rc |= ch_buf_adds(b, ")");
    return rc ? CH_ENOMEM : 0;
}

/* ---- loading ------------------------------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ch_intel_set_name(const char *s, size_t n, char *out, size_t cap)
{
    if (n >= cap)
        n = cap - 1;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == ':' || c == '-';
        out[i] = ok ? c : '_';
    }
    out[n] = '\0';
    if (n == 0)
        snprintf(out, cap, "list");
}

/* The file's base name up to its first dot, made a valid set name ("list" when empty), and the
 * type its second part names (0 when none: "txt", "gz", ...). */
static void name_from_path(const char *path, char *out, size_t cap, ch_refset_type *declared)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strcspn(b, ".");
    *declared = 0;
    if (b[n] == '.') {
        const char *t = b + n + 1;
        size_t tn = strcspn(t, ".");
        ch_refset_type ty;
        if (tn > 0 && ch_refset_type_from_name(t, tn, &ty) == 0)
            *declared = ty;
    }
    ch_intel_set_name(b, n, out, cap);
}

static bool is_ip_or_cidr(const char *s, size_t n)
{
    const char *slash = memchr(s, '/', n);
    ch_ip ip;
    return ch_ip_parse(s, slash ? (size_t)(slash - s) : n, &ip);
}

ch_refset_type ch_intel_sniff_list_type(const char *d, size_t len)
{
    size_t ips = 0, names = 0;
    const char *p = d, *end = d + len;
    for (int lines = 0; p < end && lines < SNIFF_LINES; lines++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *s = p;
        while (s < le && (*s == ' ' || *s == '\t'))
            s++;
        const char *e = s;
        while (e < le && *e != ' ' && *e != '\t' && *e != '\r' && *e != '#')
            e++;
        if (e > s && *s != '#' && *s != '!' && *s != '[') {
            const char *r = e;
            while (r < le && (*r == ' ' || *r == '\t'))
                r++;
            bool hosts_line = r < le && *r != '#' && *r != '\r';
            if (!hosts_line && is_ip_or_cidr(s, (size_t)(e - s)))
                ips++;
            else
                names++;
        }
        p = nl ? nl + 1 : end;
    }
    return ips > 0 && names == 0 ? CH_REFSET_IP : CH_REFSET_DOMAIN;
}

static int register_named(ch_intel_matcher *m, const char *name, ch_error *err)
{
    const ch_refset *s = ch_refsets_get(m->sets, name, strlen(name));
    return s ? ch_intel_matcher_add_set(m, s, err) : 0;
}

static int load_bundle(ch_intel_matcher *m, ch_intel_catalog *cat, const char *path,
                       const char *feed, ch_diag *diag, ch_error *err)
{
    ch_stix_ctx *ctx = NULL;
    ch_stix_opts so = {feed, NULL, NULL, NULL, now_ms(), false};
    int rc = ch_stix_ctx_new(&ctx, m->sets, cat, NULL, &so, err);
    if (rc == 0)
        rc = ch_stix_ingest_path(ctx, path, 0, diag, err);
    if (ctx != NULL) {
        const ch_stix_stats *st = ch_stix_ctx_stats(ctx);
        m->stats.bundles++;
        m->stats.indicators += st->loaded;
        m->stats.stix_elements += st->elements_added;
        m->stats.bad += st->bad;
    }
    ch_stix_ctx_free(ctx);
    if (rc == 0 && (rc = register_named(m, CH_STIX_DEFAULT_DOMAIN_SET, err)) >= 0)
        rc = register_named(m, CH_STIX_DEFAULT_IP_SET, err);
    return rc < 0 ? rc : 0;
}

static int load_list(ch_intel_matcher *m, ch_input *in, ch_refset_type type, const char *name,
                     const char *feed, ch_diag *diag, ch_error *err)
{
    ch_refset *set = NULL, *strays = NULL;
    bool strays_new = false;
    char sname[CH_REFSET_NAME_MAX + 1];
    int rc = ch_refsets_ensure(m->sets, name, type, NULL, &set, err);
    if (rc < 0)
        return rc;
    if (type == CH_REFSET_DOMAIN) {
        /* Mixed lists are common (a pool's domains and its addresses): the addresses go to a
         * sibling ip set rather than being refused. It is dropped again when nothing lands. */
        snprintf(sname, sizeof sname, "%.*s_ips", CH_REFSET_NAME_MAX - 4, name);
        strays_new = ch_refsets_get(m->sets, sname, strlen(sname)) == NULL;
        if (ch_refsets_ensure(m->sets, sname, CH_REFSET_IP, NULL, &strays, NULL) < 0) {
            strays = NULL; /* a set of that name and another type: count addresses as wrong */
            strays_new = false;
        }
    }
    ch_refset_load_opts lo;
    memset(&lo, 0, sizeof lo);
    lo.meta = ch_refset_meta_make(feed, now_ms());
    lo.ip_set = strays;
    ch_refset_load_stats ls;
    memset(&ls, 0, sizeof ls);
    rc = ch_refset_load_list(set, in, &lo, diag, &ls, err);
    m->stats.lists++;
    m->stats.list_elements += ls.added;
    m->stats.bad += ls.bad;
    if (strays != NULL && strays_new && ch_refset_count(strays) == 0) {
        ch_refset_free(ch_refsets_take(m->sets, sname, strlen(sname)));
        strays = NULL;
    }
    if (rc < 0)
        return rc;
    if ((rc = ch_intel_matcher_add_set(m, set, err)) >= 0 && strays != NULL)
        rc = ch_intel_matcher_add_set(m, strays, err);
    return rc < 0 ? rc : 0;
}

static int load_file(ch_intel_matcher *m, ch_intel_catalog *cat, const char *path, ch_diag *diag,
                     ch_error *err)
{
    if (strcmp(path, "-") == 0)
        return ch_error_set(err, CH_EUSAGE, "intel files must be files, not standard input");
    char name[CH_REFSET_NAME_MAX + 1];
    ch_refset_type type;
    name_from_path(path, name, sizeof name, &type);
    ch_input *in = NULL;
    int rc = ch_input_open(&in, path, 0, err);
    if (rc < 0)
        return rc;
    long got = ch_input_fill(in, SNIFF_BYTES, err);
    if (got < 0) {
        rc = (int)got;
        goto cleanup;
    }
    size_t n;
    const char *d = ch_input_data(in, &n);
    m->stats.files++;
    if (ch_stix_looks_like_bundle(d, n)) {
        ch_input_close(in);
        in = NULL;
        rc = load_bundle(m, cat, path, name, diag, err);
        goto cleanup;
    }
    const ch_refset *have = ch_refsets_get(m->sets, name, strlen(name));
    if (type == 0)
        type = have ? ch_refset_type_of(have) : ch_intel_sniff_list_type(d, n);
    rc = load_list(m, in, type, name, name, diag, err);
cleanup:
    ch_input_close(in);
    return rc;
}

static int load_store(ch_intel_matcher *m, ch_intel_catalog *cat, ch_intel_store *st, ch_error *err)
{
    ch_intel_set_info *info = NULL;
    size_t n = 0;
    /* Every element, expired or not: lookups judge validity at each event's own time, and a
     * replay of last month's logs must see last month's indicators. */
    int rc = ch_intel_store_load_refsets(st, m->sets, INT64_MIN, err);
    if (rc < 0)
        return rc;
    m->stats.stored_elements += (uint64_t)rc;
    if (cat != NULL) {
        if ((rc = ch_intel_store_load_catalog(st, cat, err)) < 0)
            return rc;
        m->stats.stored_indicators += (uint64_t)rc;
    }
    if ((rc = ch_intel_store_set_list(st, &info, &n, err)) < 0)
        return rc;
    for (size_t i = 0; i < n && rc >= 0; i++)
        rc = register_named(m, info[i].name, err);
    ch_free(info);
    return rc < 0 ? rc : 0;
}

int ch_intel_matcher_load(ch_intel_matcher *m, ch_refsets *sets, ch_intel_catalog *cat,
                          const char *const *files, size_t nfiles, ch_intel_store *store_or_NULL,
                          ch_diag *diag, ch_error *err)
{
    if (m == NULL || sets == NULL || (nfiles > 0 && files == NULL))
        return ch_error_set(err, CH_EUSAGE, "intel load: no matcher or registry");
    if (m->sets == NULL)
        m->sets = sets;
    if (m->cat == NULL)
        m->cat = cat;
    if (m->sets != sets || (cat != NULL && m->cat != cat))
        return ch_error_set(err, CH_EUSAGE,
                            "intel load: the matcher was made over another registry or catalog");
    int rc = 0;
    /* The store first, so that a file given on the command line is loaded last and a newer
     * version of an indicator it holds replaces the stored one in the catalog. */
    if (store_or_NULL != NULL && (rc = load_store(m, cat, store_or_NULL, err)) < 0)
        return rc;
    for (size_t i = 0; i < nfiles; i++)
        if ((rc = load_file(m, cat, files[i], diag, err)) < 0) {
            if (err != NULL && strstr(err->msg, files[i]) == NULL) {
                char msg[sizeof err->msg];
                snprintf(msg, sizeof msg, "%s", err->msg);
                ch_error_set(err, rc, "%s: %s", files[i], msg);
            }
            return rc;
        }
    return 0;
}
