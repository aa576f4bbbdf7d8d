/*
 * stix.c - STIX 2.1 bundles and TAXII object lists into reference sets, the indicator catalog
 * and (optionally) the intel store; and set elements back out as STIX indicators.
 *
 * Objects are visited twice: identities first, so that created_by_ref resolves whatever the
 * order of the bundle, then indicators. For each indicator the held version (catalog, else
 * store) decides whether it is new, newer (replace: remove what the old version contributed,
 * then add), revoked (remove, remember the revocation) or stale (ignore). The pattern is
 * compiled before anything is removed, so a newer version with a broken pattern leaves the old
 * one in place rather than leaving nothing.
 *
 * What each indicator contributed in memory is kept beside its catalog entry (set name and
 * normalized value, packed in one string), so a replacement removes exactly those elements; with
 * a store, the store's rows for the indicator are removed too and reported back so the memory
 * sets drop elements loaded from the store by an earlier run.
 *
 * The catalog is an open-addressing hash table over entries that never move (pointers handed
 * out stay valid); per indicator: one allocation for its strings, one for its contributions.
 * Cost per indicator is one pattern compile, one hash lookup, and its set adds: a 100k-indicator
 * bundle loads in well under a second in memory (bench/stix_bench.c), SQLite writes dominate
 * with a store.
 */
#include "intel/stix.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ip.h"
#include "core/timeparse.h"
#include "ingest/input.h"
#include "intel/intel_store.h"

/* ---- a string-keyed hash table (keys borrowed from the values) ---------------------------- */

typedef struct smap_slot {
    uint64_t h;
    const char *key; /* NULL = empty */
    void *val;
} smap_slot;

typedef struct smap {
    smap_slot *slots;
    size_t cap, n; /* cap is a power of two */
} smap;

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

static smap_slot *smap_find(const smap *m, const char *key, size_t len, uint64_t h)
{
    if (m->cap == 0)
        return NULL;
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        smap_slot *s = &m->slots[i];
        if (s->key == NULL)
            return s;
        if (s->h == h && strncmp(s->key, key, len) == 0 && s->key[len] == '\0')
            return s;
    }
}

static int smap_grow(smap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    smap_slot *ns = ch_calloc(cap, sizeof *ns);
    if (ns == NULL)
        return CH_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        smap_slot *o = &m->slots[i];
        if (o->key == NULL)
            continue;
        size_t j = o->h & (cap - 1);
        while (ns[j].key != NULL)
            j = (j + 1) & (cap - 1);
        ns[j] = *o;
    }
    ch_free(m->slots);
    m->slots = ns;
    m->cap = cap;
    return 0;
}

/* The slot for key (found or empty); NULL on allocation failure. */
static smap_slot *smap_slot_for(smap *m, const char *key, size_t len)
{
    if ((m->n + 1) * 2 > m->cap && smap_grow(m) < 0)
        return NULL;
    return smap_find(m, key, len, hash_bytes(key, len));
}

/* ---- the catalog --------------------------------------------------------------------------- */

typedef struct cat_entry {
    ch_intel_indicator ind;
    char *strs;    /* every string of ind, one allocation */
    char *contrib; /* "set\0value\0set\0value\0..." added in memory by this process */
    size_t contrib_len;
} cat_entry;

typedef struct ident {
    char *id;
    char *name;
} ident;

struct ch_intel_catalog {
    smap map; /* id -> cat_entry */
    cat_entry **ents;
    size_t n, cap;
    smap idmap; /* identity id -> ident */
    ident **ids;
    size_t nids, capids;
};

int ch_intel_catalog_new(ch_intel_catalog **out)
{
    *out = ch_calloc(1, sizeof **out);
    return *out ? 0 : CH_ENOMEM;
}

void ch_intel_catalog_free(ch_intel_catalog *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++) {
        ch_free(c->ents[i]->strs);
        ch_free(c->ents[i]->contrib);
        ch_free(c->ents[i]);
    }
    for (size_t i = 0; i < c->nids; i++) {
        ch_free(c->ids[i]->id);
        ch_free(c->ids[i]->name);
        ch_free(c->ids[i]);
    }
    ch_free(c->ents);
    ch_free(c->ids);
    ch_free(c->map.slots);
    ch_free(c->idmap.slots);
    ch_free(c);
}

size_t ch_intel_catalog_count(const ch_intel_catalog *c) { return c->n; }

static cat_entry *cat_get(const ch_intel_catalog *c, const char *id, size_t len)
{
    smap_slot *s = smap_find(&c->map, id, len, hash_bytes(id, len));
    return s != NULL && s->key != NULL ? s->val : NULL;
}

const ch_intel_indicator *ch_intel_indicator_lookup(const ch_intel_catalog *c, const char *id,
                                                    size_t len)
{
    cat_entry *e = c != NULL ? cat_get(c, id, len) : NULL;
    return e != NULL ? &e->ind : NULL;
}

static const char *nz(const char *s) { return s != NULL ? s : ""; }

/* Copy ind's strings into one allocation owned by e. */
static int entry_set(cat_entry *e, const ch_intel_indicator *ind)
{
    const char *src[8] = {nz(ind->id),     nz(ind->name),           nz(ind->types),
                          nz(ind->labels), nz(ind->created_by_ref), nz(ind->created_by),
                          nz(ind->feed),   nz(ind->pattern)};
    size_t lens[8], total = 0;
    for (int i = 0; i < 8; i++)
        total += (lens[i] = strlen(src[i])) + 1;
    char *strs = ch_malloc(total);
    if (strs == NULL)
        return CH_ENOMEM;
    const char *dst[8];
    char *p = strs;
    for (int i = 0; i < 8; i++) {
        memcpy(p, src[i], lens[i] + 1);
        dst[i] = p;
        p += lens[i] + 1;
    }
    ch_free(e->strs);
    e->strs = strs;
    e->ind = *ind;
    e->ind.id = dst[0];
    e->ind.name = dst[1];
    e->ind.types = dst[2];
    e->ind.labels = dst[3];
    e->ind.created_by_ref = dst[4];
    e->ind.created_by = dst[5];
    e->ind.feed = dst[6];
    e->ind.pattern = dst[7];
    return 0;
}

/* Put, returning the entry (new or replaced in place). The failures return their code spelled
 * out, not ch_error_set's result (the same value), so that the static analyzer, which cannot
 * see into error.c, knows *out is set whenever 0 is returned. */
static int cat_put(ch_intel_catalog *c, const ch_intel_indicator *ind, cat_entry **out,
                   ch_error *err)
{
    const char *id = nz(ind->id);
    size_t len = strlen(id);
    cat_entry *e = cat_get(c, id, len);
    if (e == NULL) {
        if (c->n >= CH_INTEL_CATALOG_MAX) {
            ch_error_set(err, CH_ELIMIT, "more than %u indicators", CH_INTEL_CATALOG_MAX);
            return CH_ELIMIT;
        }
        if (c->n == c->cap) {
            cat_entry **ne = ch_grow(c->ents, &c->cap, 64, sizeof *ne);
            if (ne == NULL)
                goto nomem;
            c->ents = ne;
        }
        e = ch_calloc(1, sizeof *e);
        if (e == NULL || entry_set(e, ind) < 0) {
            ch_free(e);
            goto nomem;
        }
        smap_slot *s = smap_slot_for(&c->map, id, len);
        if (s == NULL) {
            ch_free(e->strs);
            ch_free(e);
            goto nomem;
        }
        s->h = hash_bytes(id, len);
        s->key = e->ind.id;
        s->val = e;
        c->map.n++;
        c->ents[c->n++] = e;
    } else {
        /* The map's key points into the old strings: repoint it after the copy. */
        smap_slot *s = smap_find(&c->map, id, len, hash_bytes(id, len));
        if (entry_set(e, ind) < 0)
            goto nomem;
        s->key = e->ind.id;
    }
    if (out != NULL)
        *out = e;
    return 0;
nomem:
    ch_error_set(err, CH_ENOMEM, "out of memory");
    return CH_ENOMEM;
}

int ch_intel_catalog_put(ch_intel_catalog *c, const ch_intel_indicator *ind, ch_error *err)
{
    if (ind->id == NULL || ind->id[0] == '\0')
        return ch_error_set(err, CH_EUSAGE, "indicator without an id");
    return cat_put(c, ind, NULL, err);
}

int ch_intel_catalog_put_identity(ch_intel_catalog *c, const char *id, const char *name,
                                  ch_error *err)
{
    size_t len = strlen(id);
    smap_slot *s = smap_find(&c->idmap, id, len, hash_bytes(id, len));
    if (s != NULL && s->key != NULL) {
        ident *d = s->val;
        char *nn = ch_strdup(nz(name));
        if (nn == NULL)
            return ch_error_set(err, CH_ENOMEM, "out of memory");
        ch_free(d->name);
        d->name = nn;
        return 0;
    }
    if (c->nids >= CH_INTEL_CATALOG_MAX)
        return ch_error_set(err, CH_ELIMIT, "too many identities");
    if (c->nids == c->capids) {
        ident **ni = ch_grow(c->ids, &c->capids, 16, sizeof *ni);
        if (ni == NULL)
            return ch_error_set(err, CH_ENOMEM, "out of memory");
        c->ids = ni;
    }
    ident *d = ch_calloc(1, sizeof *d);
    if (d == NULL || (d->id = ch_strdup(id)) == NULL || (d->name = ch_strdup(nz(name))) == NULL ||
        (s = smap_slot_for(&c->idmap, id, len)) == NULL) {
        if (d != NULL) {
            ch_free(d->id);
            ch_free(d->name);
        }
        ch_free(d);
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    }
    s->h = hash_bytes(id, len);
    s->key = d->id;
    s->val = d;
    c->idmap.n++;
    c->ids[c->nids++] = d;
    return 0;
}

const char *ch_intel_catalog_identity(const ch_intel_catalog *c, const char *id, size_t len)
{
    smap_slot *s = smap_find(&c->idmap, id, len, hash_bytes(id, len));
    return s != NULL && s->key != NULL ? ((ident *)s->val)->name : NULL;
}

const ch_intel_indicator *ch_intel_catalog_next(const ch_intel_catalog *c, size_t *cursor)
{
    if (*cursor >= c->n)
        return NULL;
    return &c->ents[(*cursor)++]->ind;
}

/* ---- ingestion ----------------------------------------------------------------------------- */

enum { TGT_DOMAIN, TGT_IP, TGT_URL, TGT__N };

struct ch_stix_ctx {
    ch_refsets *sets;
    ch_intel_catalog *cat;
    ch_intel_store *store;
    char *feed;
    char *names[TGT__N];
    ch_refset *scratch[TGT__N]; /* empty sets of each type, to normalize values */
    bool store_ensured[TGT__N];
    int64_t now_ms;
    bool allow_catch_all;
    ch_stix_stats st;
    ch_arena arena; /* per indicator: compiled pattern */
    ch_buf contrib; /* per indicator: what it added */
    ch_json_parser *parser;
};

static const ch_refset_type tgt_type[TGT__N] = {CH_REFSET_DOMAIN, CH_REFSET_IP, CH_REFSET_STRING};

int ch_stix_ctx_new(ch_stix_ctx **out, ch_refsets *sets, ch_intel_catalog *catalog,
                    ch_intel_store *store, const ch_stix_opts *opts, ch_error *err)
{
    *out = NULL;
    if (sets == NULL || catalog == NULL)
        return ch_error_set(err, CH_EUSAGE, "a STIX ingest needs a set registry and a catalog");
    ch_stix_opts o = {0};
    if (opts != NULL)
        o = *opts;
    const char *names[TGT__N] = {
        o.domain_set ? o.domain_set : CH_STIX_DEFAULT_DOMAIN_SET,
        o.ip_set ? o.ip_set : CH_STIX_DEFAULT_IP_SET,
        o.url_set ? o.url_set : CH_STIX_DEFAULT_URL_SET,
    };
    ch_stix_ctx *c = ch_calloc(1, sizeof *c);
    if (c == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    c->sets = sets;
    c->cat = catalog;
    c->store = store;
    c->now_ms = o.now_ms;
    c->allow_catch_all = o.allow_catch_all;
    ch_arena_init(&c->arena, 16384);
    ch_buf_init(&c->contrib, 64u << 20);
    int rc = 0;
    if ((c->feed = ch_strdup(o.feed ? o.feed : CH_STIX_DEFAULT_FEED)) == NULL) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < TGT__N; i++) {
        if ((c->names[i] = ch_strdup(names[i])) == NULL) {
            rc = ch_error_set(err, CH_ENOMEM, "out of memory");
            goto fail;
        }
        if ((rc = ch_refset_new(&c->scratch[i], names[i], tgt_type[i], NULL, err)) < 0)
            goto fail;
    }
    *out = c;
    return 0;
fail:
    ch_stix_ctx_free(c);
    return rc;
}

void ch_stix_ctx_free(ch_stix_ctx *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < TGT__N; i++) {
        ch_free(c->names[i]);
        ch_refset_free(c->scratch[i]);
    }
    ch_free(c->feed);
    ch_arena_free(&c->arena);
    ch_buf_free(&c->contrib);
    ch_json_parser_free(c->parser);
    ch_free(c);
}

const ch_stix_stats *ch_stix_ctx_stats(const ch_stix_ctx *c) { return &c->st; }

static void count_kind(ch_stix_stats *st, const char *kind)
{
    for (uint32_t i = 0; i < st->nkinds; i++)
        if (strcmp(st->kinds[i].kind, kind) == 0) {
            st->kinds[i].count++;
            return;
        }
    if (st->nkinds < CH_STIX_STAT_KINDS) {
        snprintf(st->kinds[st->nkinds].kind, CH_STIX_KIND_MAX, "%s", kind);
        st->kinds[st->nkinds].count = 1;
        st->nkinds++;
    } else {
        st->kinds_other++;
    }
}

static bool get_str(ch_json_val o, const char *key, const char **s, size_t *n)
{
    ch_json_val v;
    return ch_json_obj_get(o, key, strlen(key), &v) && ch_json_get_str(v, s, n);
}

/* An array of strings joined by ',' into b (arena copy); "" when absent. */
static const char *join_list(ch_stix_ctx *c, ch_json_val o, const char *key)
{
    ch_json_val arr, v;
    ch_json_iter it;
    if (!ch_json_obj_get(o, key, strlen(key), &arr) || !ch_json_arr_iter(arr, &it))
        return "";
    ch_buf b;
    ch_buf_init(&b, 64u << 10);
    const char *s;
    size_t n;
    while (ch_json_arr_next(&it, &v))
        if (ch_json_get_str(v, &s, &n)) {
            if (b.len > 0)
                ch_buf_addc(&b, ',');
            ch_buf_add(&b, s, n);
        }
    const char *out = b.len ? ch_arena_strndup(&c->arena, b.data, b.len) : "";
    ch_buf_free(&b);
    return out != NULL ? out : "";
}

static const char *dup_str(ch_stix_ctx *c, ch_json_val o, const char *key)
{
    const char *s;
    size_t n;
    if (!get_str(o, key, &s, &n))
        return "";
    const char *d = ch_arena_strndup(&c->arena, s, n);
    return d != NULL ? d : "";
}

int ch_intel_normalize_in(ch_refset *scratch, const char *text, size_t len, char *out, size_t cap,
                          ch_error *err)
{
    int rc = ch_refset_add(scratch, text, len, NULL, err);
    if (rc < 0)
        return rc;
    size_t cur = 0;
    const ch_refset_elem *e = ch_refset_next(scratch, &cur);
    if (e == NULL)
        return ch_error_set(err, CH_ERR, "normalizing '%.*s' left no element", (int)len, text);
    size_t n = ch_refset_elem_text(scratch, e, out, cap);
    ch_refset_remove_elem(scratch, e);
    if (n >= cap)
        return ch_error_set(err, CH_ELIMIT, "value too long");
    return 0;
}

/* The host of a URL ("scheme://[user@]host[:port]/..."), or false. */
static bool url_host(const char *u, size_t n, const char **h, size_t *hl)
{
    const char *p = memchr(u, ':', n);
    if (p == NULL || (size_t)(p - u) + 3 > n || p[1] != '/' || p[2] != '/')
        return false;
    const char *s = p + 3, *end = u + n;
    const char *e = s;
    while (e < end && *e != '/' && *e != '?' && *e != '#')
        e++;
    const char *at = NULL;
    for (const char *q = s; q < e; q++)
        if (*q == '@')
            at = q;
    if (at != NULL)
        s = at + 1;
    if (s < e && *s == '[') {
        const char *rb = memchr(s, ']', (size_t)(e - s));
        if (rb == NULL)
            return false;
        *h = s + 1;
        *hl = (size_t)(rb - s - 1);
        return *hl > 0;
    }
    const char *colon = memchr(s, ':', (size_t)(e - s));
    if (colon != NULL)
        e = colon;
    *h = s;
    *hl = (size_t)(e - s);
    return *hl > 0;
}

typedef struct ind_work {
    ch_intel_indicator ind;
    ch_refset_meta meta;
    uint32_t added, refreshed;
} ind_work;

/* Add one value to a target set (memory, and store), recording the contribution. */
static int add_value(ch_stix_ctx *c, ind_work *w, int tgt, const char *v, size_t n,
                     const char *name, ch_diag *diag, ch_error *err)
{
    ch_refset *set;
    int rc = ch_refsets_ensure(c->sets, c->names[tgt], tgt_type[tgt], NULL, &set, err);
    if (rc < 0)
        return rc;
    char norm[CH_REFSET_STRING_MAX + 1];
    ch_error e2 = {0};
    uint64_t dropped = ch_refset_dropped(set);
    if ((rc = ch_intel_normalize_in(c->scratch[tgt], v, n, norm, sizeof norm, &e2)) < 0 ||
        (rc = ch_refset_add(set, v, n, &w->meta, &e2)) < 0) {
        if (rc == CH_ENOMEM)
            return ch_error_set(err, rc, "out of memory");
        if (rc == CH_ELIMIT && ch_refset_dropped(set) > dropped) {
            c->st.elements_dropped++;
            return 0;
        }
        c->st.bad++;
        count_kind(&c->st, "bad_value");
        if (diag != NULL)
            ch_diag_report(diag, CH_DS_UNKNOWN, name, 0, UINT64_MAX, "stix_bad_value",
                           "%s: %.*s: %s", w->ind.id, (int)(n > 200 ? 200 : n), v, e2.msg);
        return 0;
    }
    if (rc == 1) {
        w->added++;
        c->st.elements_added++;
    } else {
        w->refreshed++;
        c->st.elements_refreshed++;
    }
    if (c->store != NULL) {
        if (!c->store_ensured[tgt]) {
            if ((rc = ch_intel_store_set_ensure(c->store, c->names[tgt], tgt_type[tgt], 0, err)) <
                0)
                return rc;
            c->store_ensured[tgt] = true;
        }
        if ((rc = ch_intel_store_elem_put(c->store, c->names[tgt], norm, &w->meta, c->now_ms,
                                          err)) < 0)
            return rc;
    }
    if (ch_buf_adds(&c->contrib, c->names[tgt]) < 0 || ch_buf_addc(&c->contrib, '\0') < 0 ||
        ch_buf_adds(&c->contrib, norm) < 0 || ch_buf_addc(&c->contrib, '\0') < 0)
        return ch_error_set(err, CH_ELIMIT, "indicator %s contributes too much", w->ind.id);
    return 0;
}

static void remove_mem(ch_stix_ctx *c, const char *set, const char *value, const char *id)
{
    ch_refset *s = ch_refsets_get(c->sets, set, strlen(set));
    if (s != NULL && ch_refset_remove(s, value, strlen(value), NULL, id, NULL) > 0)
        c->st.elements_removed++;
}

typedef struct rm_arg {
    ch_stix_ctx *c;
    const char *id;
} rm_arg;

static int remove_row_cb(void *arg, const ch_intel_elem_row *row)
{
    rm_arg *a = arg;
    ch_refset *s = ch_refsets_get(a->c->sets, row->set, strlen(row->set));
    if (s != NULL)
        ch_refset_remove(s, row->value, strlen(row->value), NULL, a->id, NULL);
    return 0;
}

/* Remove everything the held version of id contributed. */
static int remove_old(ch_stix_ctx *c, cat_entry *old, const char *id, ch_error *err)
{
    if (old != NULL && old->contrib != NULL) {
        for (size_t i = 0; i < old->contrib_len;) {
            const char *set = old->contrib + i;
            const char *val = set + strlen(set) + 1;
            remove_mem(c, set, val, id);
            i = (size_t)(val + strlen(val) + 1 - old->contrib);
        }
        ch_free(old->contrib);
        old->contrib = NULL;
        old->contrib_len = 0;
    }
    if (c->store != NULL) {
        rm_arg a = {c, id};
        int rc = ch_intel_store_indicator_elems_remove(c->store, id, remove_row_cb, &a, err);
        if (rc < 0)
            return rc;
        if (old == NULL || old->ind.elements == 0)
            c->st.elements_removed += (uint64_t)rc;
    }
    return 0;
}

static void bad_object(ch_stix_ctx *c, ch_diag *diag, const char *name, const char *reason,
                       const char *id, const char *msg)
{
    c->st.bad++;
    if (diag != NULL)
        ch_diag_report(diag, CH_DS_UNKNOWN, name, 0, UINT64_MAX, reason, "%s: %s", id, msg);
}

const char *ch_stix_refusal_name(ch_stix_refusal r)
{
    static const char *const names[CH_STIX_REFUSE__N] = {
        "no spec_version",    "bad id",
        "bad timestamp",      "no valid_from",
        "wrong address type", "address as domain",
        "wildcard domain",    "catch-all network",
    };
    return (unsigned)r < CH_STIX_REFUSE__N ? names[r] : "?";
}

static void refuse(ch_stix_ctx *c, ch_diag *diag, const char *name, ch_stix_refusal why,
                   const char *id, const char *detail)
{
    c->st.refused[why]++;
    if (diag != NULL)
        ch_diag_report(diag, CH_DS_UNKNOWN, name, 0, UINT64_MAX, "stix_refused", "%s: %s%s%s", id,
                       ch_stix_refusal_name(why), detail ? ": " : "", detail ? detail : "");
}

/* "indicator--" and an RFC 4122 UUID (8-4-4-4-12 hex digits). */
static bool indicator_id_ok(const char *id, size_t n)
{
    if (n != 11 + 36 || memcmp(id, "indicator--", 11) != 0)
        return false;
    for (size_t i = 0; i < 36; i++) {
        char ch = id[11 + i];
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? ch != '-'
                 : !((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
                     (ch >= 'A' && ch <= 'F')))
            return false;
    }
    return true;
}

/* The microseconds past the millisecond of a timestamp member ("...:05.123456Z" -> 456); 0
 * when it has fewer digits. Digits past the sixth are not compared. */
static int32_t sub_ms(ch_json_val o, const char *key)
{
    const char *s;
    size_t n;
    if (!get_str(o, key, &s, &n))
        return 0;
    const char *dot = memchr(s, '.', n);
    if (dot == NULL)
        return 0;
    int32_t us = 0;
    size_t k = 0;
    for (const char *p = dot + 1; p < s + n && *p >= '0' && *p <= '9' && k < 6; p++, k++)
        if (k >= 3)
            us = us * 10 + (*p - '0');
    for (; k < 6; k++)
        if (k >= 3)
            us *= 10;
    return us;
}

/* A timestamp member: absent (true, *present false), or present and valid. */
static bool time_member(ch_json_val o, const char *key, int64_t *ms, bool *present)
{
    ch_json_val v;
    *present = ch_json_obj_get(o, key, strlen(key), &v);
    if (!*present)
        return true;
    const char *s;
    size_t n;
    return ch_json_get_str(v, &s, &n) && ch_time_parse_iso8601(s, n, ms);
}

/* Whether a comparison's value is what its object type says, before it reaches a set (which
 * would take an IPv6 address into an ip set as readily as an IPv4 one, or "*.example.org" as
 * example.org): -1 when it is, else the refusal. */
static int value_refusal(const ch_stix_ctx *c, const ch_stix_cmp *cmp)
{
    const char *v = cmp->value;
    size_t n = cmp->len;
    ch_ip ip;
    if (cmp->obs == CH_STIX_DOMAIN) {
        if (memchr(v, '*', n) != NULL)
            return CH_STIX_REFUSE_WILDCARD;
        size_t h = n;
        if (n >= 2 && v[0] == '[' && v[n - 1] == ']') /* "[2001:db8::1]" */
            v++, h -= 2;
        if (ch_ip_parse(v, h, &ip))
            return CH_STIX_REFUSE_ADDR_AS_DOMAIN;
        return -1;
    }
    if (cmp->obs != CH_STIX_IPV4 && cmp->obs != CH_STIX_IPV6)
        return -1;
    const char *slash = memchr(v, '/', n);
    size_t an = slash ? (size_t)(slash - v) : n;
    if (!ch_ip_parse(v, an, &ip))
        return -1; /* not an address at all: the set refuses it as a bad value */
    if (ip.family != (cmp->obs == CH_STIX_IPV4 ? 4 : 6))
        return CH_STIX_REFUSE_ADDR_FAMILY;
    if (slash != NULL && !c->allow_catch_all) {
        size_t k = 1;
        while (slash + k < v + n && slash[k] == '0')
            k++;
        if (k > 1 && slash + k == v + n) /* "/0", "/00" */
            return CH_STIX_REFUSE_CATCH_ALL;
    }
    return -1;
}

static int ingest_indicator(ch_stix_ctx *c, ch_json_val o, const char *name, ch_diag *diag,
                            ch_error *err)
{
    int rc = 0;
    ch_arena_reset(&c->arena);
    ch_buf_clear(&c->contrib);
    c->st.indicators++;
    ind_work w;
    memset(&w, 0, sizeof w);
    const char *id;
    size_t idlen;
    if (!get_str(o, "id", &id, &idlen) || idlen < 12 || memcmp(id, "indicator--", 11) != 0 ||
        idlen > 128) {
        bad_object(c, diag, name, "stix_bad_object", "indicator", "missing or bad id");
        return 0;
    }
    char idz[129];
    snprintf(idz, sizeof idz, "%.*s", (int)idlen, id);
    if (!indicator_id_ok(id, idlen)) {
        refuse(c, diag, name, CH_STIX_REFUSE_BAD_ID, idz, "not indicator--<UUID>");
        return 0;
    }
    {
        const char *sv;
        size_t svn;
        if (!get_str(o, "spec_version", &sv, &svn)) {
            refuse(c, diag, name, CH_STIX_REFUSE_NO_SPEC_VERSION, idz,
                   "STIX 2.1 objects carry spec_version");
            return 0;
        }
    }
    w.ind.id = ch_arena_strndup(&c->arena, id, idlen);
    if (w.ind.id == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    ch_json_val v;
    bool revoked = false;
    if (ch_json_obj_get(o, "revoked", 7, &v))
        ch_json_get_bool(v, &revoked);
    int64_t created = 0, modified = 0;
    bool has_created, has_modified;
    if (!time_member(o, "created", &created, &has_created) || !has_created ||
        !time_member(o, "modified", &modified, &has_modified)) {
        refuse(c, diag, name, CH_STIX_REFUSE_BAD_TIME, idz,
               "created is required, and created and modified must be timestamps");
        return 0;
    }
    if (!has_modified)
        modified = created;
    int32_t modified_sub = sub_ms(o, has_modified ? "modified" : "created");
    w.ind.created = created;
    w.ind.modified = modified;
    w.ind.modified_sub = modified_sub;
    w.ind.revoked = revoked;
    w.ind.feed = c->feed;

    /* The version held decides. */
    cat_entry *old = cat_get(c->cat, w.ind.id, idlen);
    bool have = old != NULL, old_revoked = false;
    int64_t old_mod = 0;
    int32_t old_sub = 0;
    if (have) {
        old_mod = old->ind.modified;
        old_sub = old->ind.modified_sub;
        old_revoked = old->ind.revoked;
    } else if (c->store != NULL) {
        rc = ch_intel_store_indicator_version(c->store, w.ind.id, &old_mod, &old_sub, &old_revoked,
                                              err);
        if (rc == 0)
            have = true;
        else if (rc != CH_ENOTFOUND)
            return rc;
    }
    if (have &&
        (old_revoked || modified < old_mod || (modified == old_mod && modified_sub <= old_sub))) {
        c->st.ignored_older++;
        return 0;
    }

    ch_stix_pattern pat;
    memset(&pat, 0, sizeof pat);
    const char *ptype = NULL, *ptext = NULL;
    size_t ptlen = 0, plen = 0;
    if (!revoked) {
        if (!get_str(o, "pattern", &ptext, &plen)) {
            bad_object(c, diag, name, "stix_bad_object", w.ind.id, "indicator without a pattern");
            return 0;
        }
        w.ind.pattern = ch_arena_strndup(&c->arena, ptext, plen);
        if (!get_str(o, "pattern_type", &ptype, &ptlen)) {
            ptype = "stix"; /* STIX 2.0 indicators have no pattern_type */
            ptlen = 4;
        }
        if (ptlen == 4 && memcmp(ptype, "stix", 4) == 0) {
            ch_error e2 = {0};
            int prc = ch_stix_pattern_compile(ptext, plen, &c->arena, &pat, &e2);
            if (prc == CH_ENOMEM)
                return ch_error_set(err, prc, "out of memory");
            if (prc < 0) {
                bad_object(c, diag, name, "stix_bad_pattern", w.ind.id, e2.msg);
                return 0;
            }
        } else {
            c->st.other_patterns++;
        }
    }
    w.ind.name = dup_str(c, o, "name");
    w.ind.types = join_list(c, o, "indicator_types");
    w.ind.labels = join_list(c, o, "labels");
    w.ind.created_by_ref = dup_str(c, o, "created_by_ref");
    const char *who =
        w.ind.created_by_ref[0]
            ? ch_intel_catalog_identity(c->cat, w.ind.created_by_ref, strlen(w.ind.created_by_ref))
            : NULL;
    char whobuf[256];
    if (who == NULL && w.ind.created_by_ref[0] && c->store != NULL &&
        ch_intel_store_identity_get(c->store, w.ind.created_by_ref, whobuf, sizeof whobuf, NULL) ==
            0)
        who = whobuf;
    w.ind.created_by = who != NULL ? who : "";
    int64_t conf = -1;
    if (ch_json_obj_get(o, "confidence", 10, &v) && ch_json_get_i64(v, &conf) &&
        (conf < 0 || conf > 100))
        conf = -1;
    w.ind.confidence = (int)conf;
    w.ind.valid_from = CH_REFSET_ALWAYS;
    w.ind.valid_until = CH_REFSET_NEVER;
    bool has_from, has_until;
    if (!time_member(o, "valid_from", &w.ind.valid_from, &has_from) ||
        !time_member(o, "valid_until", &w.ind.valid_until, &has_until)) {
        refuse(c, diag, name, CH_STIX_REFUSE_BAD_TIME, w.ind.id,
               "valid_from and valid_until must be timestamps");
        return 0;
    }
    if (!has_from && !revoked) {
        refuse(c, diag, name, CH_STIX_REFUSE_NO_VALID_FROM, w.ind.id, NULL);
        return 0;
    }
    if (!revoked && w.ind.valid_until <= w.ind.valid_from) {
        bad_object(c, diag, name, "stix_bad_object", w.ind.id,
                   "valid_until is not after valid_from");
        return 0;
    }

    /* From here on the new version is taken. */
    if (have) {
        if ((rc = remove_old(c, old, w.ind.id, err)) < 0)
            return rc;
        if (!revoked)
            c->st.replaced++;
    }
    if (revoked) {
        c->st.revoked++;
    } else {
        w.meta.source = c->feed;
        w.meta.indicator = w.ind.id;
        w.meta.first_seen = c->now_ms;
        w.meta.last_seen = c->now_ms;
        w.meta.valid_from = w.ind.valid_from;
        w.meta.expiry = w.ind.valid_until;
        for (size_t i = 0; i < pat.ncmps; i++) {
            const ch_stix_cmp *cmp = &pat.cmps[i];
            int why = value_refusal(c, cmp);
            if (why >= 0) {
                char val[256];
                snprintf(val, sizeof val, "%.*s", (int)(cmp->len > 200 ? 200 : cmp->len),
                         cmp->value);
                refuse(c, diag, name, (ch_stix_refusal)why, w.ind.id, val);
                pat.unsupported++;
                continue;
            }
            int tgt = cmp->obs == CH_STIX_DOMAIN ? TGT_DOMAIN
                      : cmp->obs == CH_STIX_URL  ? TGT_URL
                                                 : TGT_IP;
            if ((rc = add_value(c, &w, tgt, cmp->value, cmp->len, name, diag, err)) < 0)
                return rc;
            /* A URL names one resource, not its host: putting the host into the domain or ip
             * set would flag every other file of a shared host (raw.githubusercontent.com) and
             * its subdomains. The URL stays in the url set and is counted as not matched
             * against DNS or flows. */
            if (cmp->obs == CH_STIX_URL)
                c->st.url_only++;
        }
        for (uint32_t k = 0; k < pat.nkinds; k++)
            count_kind(&c->st, pat.kinds[k]);
        w.ind.unsupported = pat.unsupported;
        w.ind.elements = w.added + w.refreshed;
        if (w.ind.elements > 0) {
            c->st.loaded++;
            if (pat.unsupported > 0)
                c->st.partial++;
        } else if (pat.unsupported > 0 || pat.ncmps == 0) {
            if (ptlen == 4 && memcmp(ptype, "stix", 4) == 0)
                c->st.unsupported++;
        }
    }
    cat_entry *e;
    if ((rc = cat_put(c->cat, &w.ind, &e, err)) < 0)
        return rc;
    ch_free(e->contrib);
    e->contrib = NULL;
    e->contrib_len = 0;
    if (c->contrib.len > 0) {
        if ((e->contrib = ch_malloc(c->contrib.len)) == NULL)
            return ch_error_set(err, CH_ENOMEM, "out of memory");
        memcpy(e->contrib, c->contrib.data, c->contrib.len);
        e->contrib_len = c->contrib.len;
    }
    if (c->store != NULL && (rc = ch_intel_store_indicator_put(c->store, &e->ind, err)) < 0)
        return rc;
    return 0;
}

static bool type_is(ch_json_val o, const char *t)
{
    const char *s;
    size_t n;
    return get_str(o, "type", &s, &n) && n == strlen(t) && memcmp(s, t, n) == 0;
}

static int ingest_identity(ch_stix_ctx *c, ch_json_val o, ch_error *err)
{
    const char *id, *nm;
    size_t idl, nml;
    int rc;
    if (ch_json_typeof(o) != CH_JSON_OBJECT || !type_is(o, "identity") ||
        !get_str(o, "id", &id, &idl) || !get_str(o, "name", &nm, &nml) || idl > 128)
        return 0;
    char idb[129], nmb[256];
    snprintf(idb, sizeof idb, "%.*s", (int)idl, id);
    snprintf(nmb, sizeof nmb, "%.*s", (int)(nml > 255 ? 255 : nml), nm);
    if ((rc = ch_intel_catalog_put_identity(c->cat, idb, nmb, err)) < 0)
        return rc;
    if (c->store != NULL && (rc = ch_intel_store_identity_put(c->store, idb, nmb, err)) < 0)
        return rc;
    c->st.identities++;
    return 0;
}

static int ingest_object(ch_stix_ctx *c, ch_json_val o, const char *name, ch_diag *diag,
                         ch_error *err)
{
    c->st.objects++;
    if (ch_json_typeof(o) != CH_JSON_OBJECT) {
        bad_object(c, diag, name, "stix_bad_object", "object", "not a JSON object");
        return 0;
    }
    return type_is(o, "indicator") ? ingest_indicator(c, o, name, diag, err) : 0;
}

static int ingest_all(ch_stix_ctx *c, ch_json_val objects, const char *name, ch_diag *diag,
                      ch_error *err)
{
    ch_json_iter it;
    ch_json_val o;
    int rc;
    /* Pass 1: identities, so created_by_ref resolves whatever the order. */
    if (!ch_json_arr_iter(objects, &it))
        return ch_error_set(err, CH_EPARSE, "%s: \"objects\" is not an array", name);
    while (ch_json_arr_next(&it, &o))
        if ((rc = ingest_identity(c, o, err)) < 0)
            return rc;
    ch_json_arr_iter(objects, &it);
    while (ch_json_arr_next(&it, &o))
        if ((rc = ingest_object(c, o, name, diag, err)) < 0)
            return rc;
    return 0;
}

/* One STIX object given alone (a file holding one indicator): the same as a bundle of one. */
static int ingest_single(ch_stix_ctx *c, ch_json_val o, const char *name, ch_diag *diag,
                         ch_error *err)
{
    bool own = false;
    int rc;
    for (int i = 0; i < TGT__N; i++)
        c->store_ensured[i] = false;
    if (c->store != NULL && !ch_intel_store_in_transaction(c->store)) {
        if ((rc = ch_intel_store_begin(c->store, err)) < 0)
            return rc;
        own = true;
    }
    rc = ingest_identity(c, o, err);
    if (rc == 0)
        rc = ingest_object(c, o, name, diag, err);
    if (own) {
        if (rc < 0)
            ch_intel_store_rollback(c->store);
        else
            rc = ch_intel_store_commit(c->store, err);
    }
    return rc;
}

/* A STIX object by its shape: a string "type" and an "id" of that type ("indicator--..."). */
static bool is_stix_object(ch_json_val o)
{
    const char *t, *id;
    size_t tn, idn;
    return get_str(o, "type", &t, &tn) && get_str(o, "id", &id, &idn) && tn > 0 && idn > tn + 2 &&
           memcmp(id, t, tn) == 0 && id[tn] == '-' && id[tn + 1] == '-';
}

int ch_stix_ingest_objects(ch_stix_ctx *c, ch_json_val objects, const char *name, ch_diag *diag,
                           ch_error *err)
{
    if (name == NULL)
        name = "<stix>";
    if (ch_json_typeof(objects) != CH_JSON_ARRAY)
        return ch_error_set(err, CH_EPARSE, "%s: \"objects\" is not an array", name);
    bool own = false;
    int rc;
    for (int i = 0; i < TGT__N; i++)
        c->store_ensured[i] = false;
    if (c->store != NULL && !ch_intel_store_in_transaction(c->store)) {
        if ((rc = ch_intel_store_begin(c->store, err)) < 0)
            return rc;
        own = true;
    }
    rc = ingest_all(c, objects, name, diag, err);
    if (own) {
        if (rc < 0)
            ch_intel_store_rollback(c->store);
        else
            rc = ch_intel_store_commit(c->store, err);
    }
    return rc;
}

int ch_stix_ingest_bundle(ch_stix_ctx *c, ch_json_val bundle, const char *name, ch_diag *diag,
                          ch_error *err)
{
    if (name == NULL)
        name = "<stix>";
    ch_json_val objs;
    if (ch_json_typeof(bundle) != CH_JSON_OBJECT)
        return ch_error_set(err, CH_EPARSE, "%s: not a STIX bundle (not a JSON object)", name);
    bool has_objs = ch_json_obj_get(bundle, "objects", 7, &objs);
    if (!type_is(bundle, "bundle") && !has_objs) {
        if (is_stix_object(bundle))
            return ingest_single(c, bundle, name, diag, err);
        return ch_error_set(
            err, CH_EPARSE,
            "%s: not STIX (no bundle, no envelope, no object with a type and an id)", name);
    }
    if (!has_objs)
        return 0; /* an empty bundle may omit objects */
    return ch_stix_ingest_objects(c, objs, name, diag, err);
}

int ch_stix_ingest_mem(ch_stix_ctx *c, const char *data, size_t len, const char *name,
                       ch_diag *diag, ch_error *err)
{
    if (name == NULL)
        name = "<stix>";
    if (c->parser == NULL && (c->parser = ch_json_parser_new(1u << 30, 256)) == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    ch_json_val root;
    ch_error e2 = {0};
    int rc = ch_json_parse(c->parser, data, len, len, &root, &e2);
    if (rc < 0)
        return ch_error_set(err, rc, "%s: %s", name, e2.msg);
    return ch_stix_ingest_bundle(c, root, name, diag, err);
}

int ch_stix_ingest_path(ch_stix_ctx *c, const char *path, size_t max_doc, ch_diag *diag,
                        ch_error *err)
{
    if (max_doc == 0)
        max_doc = 1u << 30;
    ch_input *in = NULL;
    int rc = ch_input_open(&in, path, max_doc + 1, err);
    if (rc < 0)
        return rc;
    /* Read the whole document into the window (bounded by max_doc). */
    for (;;) {
        rc = ch_input_more(in, err);
        if (rc == CH_ELIMIT) {
            rc = ch_error_set(err, CH_ELIMIT, "%s: bundle larger than %zu bytes", path, max_doc);
            goto done;
        }
        if (rc < 0)
            goto done;
        if (rc == 0)
            break;
    }
    size_t n;
    const char *d = ch_input_data(in, &n);
    rc = ch_stix_ingest_mem(c, d, n, ch_input_name(in), diag, err);
done:
    ch_input_close(in);
    return rc;
}

bool ch_stix_looks_like_bundle(const char *data, size_t len)
{
    size_t i = 0;
    if (len >= 3 && (unsigned char)data[0] == 0xEF && (unsigned char)data[1] == 0xBB &&
        (unsigned char)data[2] == 0xBF)
        i = 3;
    while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n'))
        i++;
    /* Any JSON object: a bundle, an envelope or one STIX object. A block list never starts
     * with '{', and JSON read as one would load its punctuation as domains. */
    return i < len && data[i] == '{';
}

/* ---- writing STIX: SHA-1 for UUIDv5 ------------------------------------------------------- */

typedef struct sha1 {
    uint32_t h[5];
    uint64_t len;
    uint8_t blk[64];
    size_t n;
} sha1;

static uint32_t rol(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

static void sha1_block(sha1 *s, const uint8_t *p)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3], e = s->h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5A827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ED9EBA1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8F1BBCDC;
        } else {
            f = b ^ c ^ d;
            k = 0xCA62C1D6;
        }
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rol(b, 30);
        b = a;
        a = t;
    }
    s->h[0] += a;
    s->h[1] += b;
    s->h[2] += c;
    s->h[3] += d;
    s->h[4] += e;
}

static void sha1_init(sha1 *s)
{
    static const uint32_t h0[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    memcpy(s->h, h0, sizeof h0);
    s->len = 0;
    s->n = 0;
}

static void sha1_update(sha1 *s, const void *data, size_t n)
{
    const uint8_t *p = data;
    s->len += n;
    while (n > 0) {
        size_t k = 64 - s->n < n ? 64 - s->n : n;
        memcpy(s->blk + s->n, p, k);
        s->n += k;
        p += k;
        n -= k;
        if (s->n == 64) {
            sha1_block(s, s->blk);
            s->n = 0;
        }
    }
}

static void sha1_final(sha1 *s, uint8_t out[20])
{
    uint64_t bits = s->len * 8;
    uint8_t pad = 0x80, zero = 0;
    sha1_update(s, &pad, 1);
    while (s->n != 56)
        sha1_update(s, &zero, 1);
    uint8_t lb[8];
    for (int i = 0; i < 8; i++)
        lb[i] = (uint8_t)(bits >> (56 - 8 * i));
    sha1_update(s, lb, 8);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t)(s->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)s->h[i];
    }
}

void ch_stix_element_id(const char *set_name, const char *value, char out[48])
{
    /* coinhound's namespace UUID (random, fixed forever): 5c0e6d1a-3b7f-4f2e-9a51-c01a40d5e7b3 */
    static const uint8_t ns[16] = {0x5c, 0x0e, 0x6d, 0x1a, 0x3b, 0x7f, 0x4f, 0x2e,
                                   0x9a, 0x51, 0xc0, 0x1a, 0x40, 0xd5, 0xe7, 0xb3};
    sha1 s;
    uint8_t d[20];
    sha1_init(&s);
    sha1_update(&s, ns, 16);
    sha1_update(&s, set_name, strlen(set_name));
    sha1_update(&s, "\n", 1);
    sha1_update(&s, value, strlen(value));
    sha1_final(&s, d);
    d[6] = (uint8_t)((d[6] & 0x0f) | 0x50);
    d[8] = (uint8_t)((d[8] & 0x3f) | 0x80);
    static const char hx[] = "0123456789abcdef";
    char *p = out;
    memcpy(p, "indicator--", 11);
    p += 11;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hx[d[i] >> 4];
        *p++ = hx[d[i] & 15];
    }
    *p = '\0';
}

size_t ch_stix_format_time(int64_t ms, char out[CH_STIX_TIME_MAX])
{
    /* ch_time_format drops a zero fraction ("...:05Z"); STIX wants created and modified to
     * the millisecond (section 3.2), and a fixed width keeps every timestamp alike. */
    char t[40];
    size_t n = ch_time_format(ms, t);
    const char *dot = memchr(t, '.', n);
    size_t head = dot ? (size_t)(dot - t) : n - 1;
    int64_t frac = ms % 1000;
    if (frac < 0)
        frac += 1000;
    memcpy(out, t, head);
    return head + (size_t)snprintf(out + head, CH_STIX_TIME_MAX - head, ".%03dZ", (int)frac);
}

static int add_time(ch_buf *b, const char *key, int64_t ms)
{
    char t[CH_STIX_TIME_MAX];
    ch_stix_format_time(ms, t);
    return ch_buf_printf(b, ",\"%s\":\"%s\"", key, t);
}

int ch_stix_write_element(ch_buf *out, const char *set_name, ch_refset_type type, const char *value,
                          const ch_refset_meta *meta, int64_t now_ms)
{
    return ch_stix_write_element_ex(out, set_name, type, value, meta, now_ms, -1);
}

int ch_stix_write_element_ex(ch_buf *out, const char *set_name, ch_refset_type type,
                             const char *value, const ch_refset_meta *meta, int64_t now_ms,
                             int confidence)
{
    const char *obj;
    size_t vlen = strlen(value);
    const char *h;
    size_t hl;
    switch (type) {
    case CH_REFSET_DOMAIN:
        obj = "domain-name";
        break;
    case CH_REFSET_IP:
        obj = memchr(value, ':', vlen) != NULL ? "ipv6-addr" : "ipv4-addr";
        break;
    case CH_REFSET_STRING:
        if (!url_host(value, vlen, &h, &hl))
            return CH_EUSAGE;
        obj = "url";
        break;
    default:
        return CH_EUSAGE;
    }
    ch_refset_meta m = CH_REFSET_META_INIT;
    if (meta != NULL)
        m = *meta;
    int64_t created = m.first_seen > 0 ? m.first_seen : now_ms;
    int64_t modified = m.last_seen > created ? m.last_seen : created;
    int64_t vf = m.valid_from != CH_REFSET_ALWAYS ? m.valid_from : created;
    char id[48];
    ch_stix_element_id(set_name, value, id);
    /* The pattern: the value as a STIX string literal (quote and backslash escaped). */
    ch_buf pat;
    ch_buf_init(&pat, 2 * CH_REFSET_STRING_MAX + 64);
    int rc = ch_buf_printf(&pat, "[%s:value = '", obj);
    for (size_t i = 0; rc == 0 && i < vlen; i++) {
        if (value[i] == '\'' || value[i] == '\\')
            rc = ch_buf_addc(&pat, '\\');
        if (rc == 0)
            rc = ch_buf_addc(&pat, value[i]);
    }
    if (rc == 0)
        rc = ch_buf_adds(&pat, "']");
    if (rc < 0)
        goto done;
    size_t mark = out->len;
    if ((rc = ch_buf_printf(out, "{\"type\":\"indicator\",\"spec_version\":\"2.1\",\"id\":\"%s\"",
                            id)) < 0 ||
        (rc = add_time(out, "created", created)) < 0 ||
        (rc = add_time(out, "modified", modified)) < 0 || (rc = ch_buf_adds(out, ",\"name\":")) < 0)
        goto undo;
    char nm[CH_REFSET_NAME_MAX + CH_REFSET_STRING_MAX + 4];
    int nn = snprintf(nm, sizeof nm, "%s: %s", set_name, value);
    if ((rc = ch_buf_add_json_str(out, nm,
                                  nn < 0                   ? 0
                                  : (size_t)nn < sizeof nm ? (size_t)nn
                                                           : sizeof nm - 1)) < 0 ||
        (rc = ch_buf_adds(out, ",\"indicator_types\":[\"malicious-activity\"],\"pattern\":")) < 0 ||
        (rc = ch_buf_add_json_str(out, pat.data, pat.len)) < 0 ||
        (rc = ch_buf_adds(out, ",\"pattern_type\":\"stix\",\"pattern_version\":\"2.1\"")) < 0 ||
        (rc = add_time(out, "valid_from", vf)) < 0)
        goto undo;
    if (m.expiry != CH_REFSET_NEVER && m.expiry > vf &&
        (rc = add_time(out, "valid_until", m.expiry)) < 0)
        goto undo;
    if (confidence >= 0 && confidence <= 100 &&
        (rc = ch_buf_printf(out, ",\"confidence\":%d", confidence)) < 0)
        goto undo;
    if (m.source != NULL && m.source[0]) {
        /* STIX wants external_id, description or url beside source_name: the description says
         * what the reference is, the external_id (when known) which indicator listed it. */
        if ((rc = ch_buf_adds(out, ",\"external_references\":[{\"source_name\":")) < 0 ||
            (rc = ch_buf_add_json_str(out, m.source, strlen(m.source))) < 0 ||
            (rc = ch_buf_adds(out, ",\"description\":")) < 0)
            goto undo;
        char desc[CH_REFSET_NAME_MAX + 64];
        int dn =
            snprintf(desc, sizeof desc, "the source of this value in coinhound set %s", set_name);
        if ((rc = ch_buf_add_json_str(out, desc,
                                      dn < 0                     ? 0
                                      : (size_t)dn < sizeof desc ? (size_t)dn
                                                                 : sizeof desc - 1)) < 0)
            goto undo;
        if (m.indicator != NULL && m.indicator[0] &&
            ((rc = ch_buf_adds(out, ",\"external_id\":")) < 0 ||
             (rc = ch_buf_add_json_str(out, m.indicator, strlen(m.indicator))) < 0))
            goto undo;
        if ((rc = ch_buf_adds(out, "}]")) < 0)
            goto undo;
    }
    if ((rc = ch_buf_addc(out, '}')) < 0)
        goto undo;
    goto done;
undo:
    out->len = mark;
    if (out->data)
        out->data[mark] = '\0';
done:
    ch_buf_free(&pat);
    return rc;
}
