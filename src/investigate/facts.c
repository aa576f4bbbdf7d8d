/*
 * facts.c - the pending facts of facts.h and their upsert into the store.
 *
 * Pending facts of the three types (edge, node, first) live in one pointer array with one
 * open-addressing index (core/hindex.h) over a binary key: the type letter, the offense pointer
 * and the identifying strings separated by NUL bytes. A fact's strings share one allocation.
 * Saving sorts the array in primary-key order (O(n log n) compares, far less than the b-tree
 * work it saves), walks it once with three prepared statements and frees everything: memory
 * holds one checkpoint interval of changes, never the history. With worker threads the sort of
 * the graph facts runs on a thread of its own while the checkpoint saves everything else
 * (ch_facts_save_prepare): grouped by offense address, as the ids are set by that save.
 *
 * The users' firsts' thread (ch_facts_writer_start): the upserts were most of a checkpoint (55%
 * of the merge thread's instructions in a 2-thread run of the hard corpus, all of it after the
 * last event, with the workers idle), and the firsts' index probes, a cache miss or two each,
 * a tenth of a 2-thread run at 300k records (docs/BENCHMARKS.md section 39). Firsts need no
 * offense id and their upsert is idempotent (the earlier time wins, a tie keeps the row there),
 * so they are kept in a set of their own (fs) and, with the thread, the merge thread only
 * copies each event's firsts into a batch (user, id, time, kinds and values) and hands batches
 * over; the thread puts them into fs in the same order, sorts the firsts that are new, or that
 * an earlier event moved back, in runs while events come, and writes them when it stops (the
 * runs merged) on its own connection, in one transaction committed before the checkpoint's;
 * it then copies its WAL frames into the database file while the checkpoint runs (a passive
 * WAL checkpoint; its connection's automatic one is off). The checkpoint then writes
 * the graph facts and what the thread did not. The store ends with the rows of one write at the
 * checkpoint: a row is (the interval's earliest time, the id of the interval's first sight),
 * and each later write of it carries an earlier time than the one before, which the upsert
 * takes whole, so the last write decides, and it is the row one write would make. The two
 * sets have a cap each (CH_FACTS_MAX_PENDING), whatever the number of threads.
 */
#include "investigate/facts.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/hash.h"
#include "core/hindex.h"
#include "core/ip.h"
#include "core/json.h"
#include "core/mem.h"

enum { T_EDGE = 'E', T_NODE = 'N', T_FIRST = 'F' };

typedef struct fact {
    char *mem; /* key (klen bytes), then fields, each NUL-terminated */
    uint32_t klen;
    uint32_t off[4]; /* fields: edge kind,src,dst; node id,kind,label,attrs; first
                        user,kind,value,event */
    uint32_t mlen;   /* bytes of mem */
    uint8_t type;
    bool sent; /* a first whose row the writer has (not saved by the checkpoint) */
    ch_offense *o;
    int64_t first, last;
    uint64_t count;
} fact;

/* Dirty firsts written at once by the firsts' thread (about 5,500 instructions of SQLite each). */
#define FIRSTS_BATCH 4096
/* Firsts the merge thread hands over at once, and batches in flight before it waits. */
#define TUPLES_BATCH 2048
#define FIRSTS_CACHE "-131072" /* KiB: the firsts' connection's page cache, at most */
#define TUPLES_QUEUED 8
/* Dirty firsts the firsts' thread sorts at once while events come (see sort_runs). */
#define DIRTY_RUN 32768

/* One event's firsts as the merge thread hands them over: an ev_firsts, then the user, the
 * event id and the values' bytes. */
typedef struct ev_firsts {
    int64_t ts;
    uint32_t un, idn;
    uint32_t vn[5];
    uint8_t kind[5]; /* indexes into first_kinds */
    uint8_t n;
} ev_firsts;

typedef struct tuples {
    ch_buf b;
    size_t n;
    struct tuples *next;
} tuples;

typedef struct firsts_writer {
    ch_sql sql; /* its own connection to the store's file */
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    tuples *head, *tail; /* under mu: batches to take, oldest first */
    size_t queued;       /* under mu */
    /* under mu: batches the thread has put, for the merge thread to fill again. A new batch's
     * buffer grew by reallocation into fresh pages, 1,700 page faults on the merge thread in a
     * 300k-record run. */
    tuples *spare;
    size_t nspare;
    bool stop;      /* under mu */
    bool committed; /* under mu: the thread is done with the set, its results are final */
} firsts_writer;

typedef struct off_count {
    ch_offense *o;
    uint32_t edges;
} off_count;

struct ch_facts {
    fact **v;
    size_t n, cap;
    /* Each fact and its strings are one bump allocation, all freed at the save: a malloc and a
     * calloc per fact, and their frees, were a third of put()'s instructions. */
    ch_arena arena;
    ch_hindex ix;
    off_count **oc;
    size_t noc, capoc;
    ch_hindex oix;
    ch_buf ab; /* attribute text, reused from event to event (no allocation per event) */
    ch_facts_stats st;
    ch_facts_image_os_fn image_os;
    void *image_os_ud;
    /* The users' firsts live in a set of their own (fs, a ch_facts used for firsts only), put
     * into by this thread, or by the firsts' thread (w) from the tuples handed to it (tb: the
     * batch being filled). */
    struct ch_facts *fs;
    firsts_writer *w;
    firsts_writer *draining; /* stopped, still copying its WAL frames (writer_reap) */
    tuples *tb;
    /* In fs while w runs: written ahead on direct (w's connection); dirty: the firsts new or
     * moved back since they were written, in the order they changed. */
    ch_sql *direct;
    bool direct_tx; /* the thread's transaction is open */
    int direct_rc;  /* the first failure of a write ahead; then the checkpoint writes them */
    ch_error direct_err;
    uint64_t direct_saved;
    fact **dirty;
    size_t ndirty, capdirty;
    size_t dsorted; /* dirty[0..dsorted) is sorted in runs of DIRTY_RUN (sort_runs) */
    /* The graph facts by (type, offense, strings) (ch_facts_save_prepare): sorted[0..nsorted),
     * by the thread sorter while sorting. */
    fact **sorted;
    size_t nsorted;
    pthread_t sorter;
    bool sorting;
};

void ch_facts_set_image_os(ch_facts *f, ch_facts_image_os_fn fn, void *ud)
{
    f->image_os = fn;
    f->image_os_ud = ud;
}

static ch_facts *facts_alloc(void)
{
    ch_facts *f = ch_calloc(1, sizeof *f);
    if (f == NULL)
        return NULL;
    ch_buf_init(&f->ab, 1 << 16);
    ch_arena_init(&f->arena, 1 << 20);
    return f;
}

int ch_facts_new(ch_facts **out, ch_error *err)
{
    *out = facts_alloc();
    if (*out == NULL || ((*out)->fs = facts_alloc()) == NULL) {
        ch_facts_free(*out);
        *out = NULL;
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    }
    return 0;
}

static void reset(ch_facts *f)
{
    ch_arena_reset(&f->arena);
    f->n = 0;
    ch_hindex_clear(&f->ix);
    for (size_t i = 0; i < f->noc; i++)
        ch_free(f->oc[i]);
    f->noc = 0;
    ch_hindex_clear(&f->oix);
    f->ndirty = 0;
    f->dsorted = 0;
}

static int writer_join(ch_facts *f);
static void writer_reap(ch_facts *f);

void ch_facts_free(ch_facts *f)
{
    if (f == NULL)
        return;
    writer_join(f);
    writer_reap(f);
    ch_facts_save_abandon(f);
    ch_facts_free(f->fs);
    reset(f);
    ch_arena_free(&f->arena);
    ch_free(f->dirty);
    ch_free(f->v);
    ch_free(f->oc);
    ch_hindex_free(&f->ix);
    ch_hindex_free(&f->oix);
    ch_buf_free(&f->ab);
    ch_free(f);
}

static const char *fld(const fact *x, int i) { return x->mem + x->off[i]; }

typedef struct keyv {
    const char *p;
    size_t n;
} keyv;

static bool fact_eq(const void *item, const void *key)
{
    const fact *x = item;
    const keyv *k = key;
    return x->klen == k->n && memcmp(x->mem, k->p, k->n) == 0;
}

static bool oc_eq(const void *item, const void *key)
{
    return ((const off_count *)item)->o == *(ch_offense *const *)key;
}

/* The offense's count of new edges this interval, made when missing (NULL: out of memory). */
static off_count *count_of(ch_facts *f, ch_offense *o)
{
    uint64_t h = ch_hash_bytes(&o, sizeof o);
    off_count *c = ch_hindex_find(&f->oix, h, oc_eq, &o);
    if (c != NULL)
        return c;
    if (ch_hindex_reserve(&f->oix, f->noc + 1, 16) < 0)
        return NULL;
    if (f->noc == f->capoc) {
        off_count **nv = ch_grow(f->oc, &f->capoc, 16, sizeof *nv);
        if (nv == NULL)
            return NULL;
        f->oc = nv;
    }
    if ((c = ch_calloc(1, sizeof *c)) == NULL)
        return NULL;
    c->o = o;
    f->oc[f->noc++] = c;
    ch_hindex_set(&f->oix, ch_hindex_probe(&f->oix, h, oc_eq, &o), h, c);
    return c;
}

/* x (a first of the firsts' thread's set) is new or moved back since it was written: the
 * thread writes it when it stops, at the checkpoint. Not earlier: a write transaction held from
 * the first batch to the checkpoint kept a second `analyze` on the same store waiting past
 * SQLite's busy timeout (integration_test_pipeline_state's two concurrent writers), and a
 * transaction per batch rewrote the touched pages to the WAL batch after batch. */
static int mark_dirty(ch_facts *f, fact *x)
{
    if (f->ndirty == f->capdirty) {
        fact **nv = ch_grow(f->dirty, &f->capdirty, FIRSTS_BATCH, sizeof *nv);
        if (nv == NULL) {
            x->sent = false; /* the checkpoint saves it */
            return 0;
        }
        f->dirty = nv;
    }
    x->sent = false;
    f->dirty[f->ndirty++] = x;
    return 0;
}

/* A fact's key (the type letter, the offense pointer, the identifying strings each ending in a
 * NUL) and its hash; drop: a field is too long to keep. */
typedef struct fkey {
    char b[4 * CH_FACTS_MAX_STR + 32];
    size_t n;
    uint64_t h;
    bool drop;
} fkey;

static void key_make(fkey *k, uint8_t type, ch_offense *o, const ch_sv *fields, int nf, int nid)
{
    k->drop = false;
    for (int i = 0; i < nf && i < 3; i++)
        if (fields[i].n > CH_FACTS_MAX_STR) {
            k->drop = true;
            return;
        }
    size_t kn = 0;
    k->b[kn++] = (char)type;
    memcpy(k->b + kn, &o, sizeof o);
    kn += sizeof o;
    for (int i = 0; i < nid; i++) {
        if (fields[i].n)
            memcpy(k->b + kn, fields[i].p, fields[i].n);
        kn += fields[i].n;
        k->b[kn++] = '\0';
    }
    k->n = kn;
    /* Eight bytes a step: every CloudTrail event puts three or four facts (its user's firsts). */
    k->h = ch_hash_words(CH_HASH_SEED, k->b, kn);
}

/* Start loading the slot where k's probe begins: the index of a long run is larger than the
 * caches, and an event's three to five firsts are independent probes whose misses can overlap
 * instead of following one another. */
static void key_prefetch(const ch_facts *f, const fkey *k)
{
    if (f->ix.cap != 0 && !k->drop)
        __builtin_prefetch(&f->ix.slots[k->h & (f->ix.cap - 1)]);
}

static int put_key(ch_facts *f, const fkey *kk, uint8_t type, ch_offense *o, const ch_sv *fields,
                   int nf, int64_t ts);

/* Add or widen a fact. nid: how many of the fields identify it (the rest are data, kept from the
 * first time it was seen in this interval). */
static int put(ch_facts *f, uint8_t type, ch_offense *o, const ch_sv *fields, int nf, int nid,
               int64_t ts)
{
    fkey k;
    key_make(&k, type, o, fields, nf, nid);
    return put_key(f, &k, type, o, fields, nf, ts);
}

static int put_key(ch_facts *f, const fkey *kk, uint8_t type, ch_offense *o, const ch_sv *fields,
                   int nf, int64_t ts)
{
    if (kk->drop) {
        f->st.dropped++;
        return 0;
    }
    const char *key = kk->b;
    size_t kn = kk->n;
    uint64_t h = kk->h;
    keyv k = {key, kn};
    fact *x = ch_hindex_find(&f->ix, h, fact_eq, &k);
    if (x != NULL) {
        if (ts < x->first) {
            x->first = ts;
            /* A first the writer had, moved back by a late event: written again, with the id
             * it keeps (the interval's first sight), it ends as the one write of one thread. */
            if (type == T_FIRST && x->sent && f->direct != NULL && mark_dirty(f, x) < 0)
                return CH_ENOMEM;
        }
        if (ts > x->last)
            x->last = ts;
        x->count++;
        return 0;
    }
    if (f->n >= CH_FACTS_MAX_PENDING) {
        f->st.dropped++;
        return 0;
    }
    if (type == T_EDGE) {
        off_count *c = count_of(f, o);
        if (c == NULL)
            return CH_ENOMEM;
        if (c->edges >= CH_FACTS_MAX_EDGES_PER_OFFENSE) {
            f->st.dropped++;
            return 0;
        }
        c->edges++;
    }
    if (ch_hindex_reserve(&f->ix, f->n + 1, 256) < 0)
        return CH_ENOMEM;
    if (f->n == f->cap) {
        fact **nv = ch_grow(f->v, &f->cap, 256, sizeof *nv);
        if (nv == NULL)
            return CH_ENOMEM;
        f->v = nv;
    }
    size_t total = kn;
    for (int i = 0; i < nf; i++)
        total += fields[i].n + 1;
    x = ch_arena_alloc(&f->arena, sizeof *x + total);
    if (x == NULL)
        return CH_ENOMEM;
    *x = (fact){0};
    char *mem = (char *)(x + 1);
    memcpy(mem, key, kn);
    size_t w = kn;
    for (int i = 0; i < nf; i++) {
        x->off[i] = (uint32_t)w;
        if (fields[i].n)
            memcpy(mem + w, fields[i].p, fields[i].n);
        mem[w + fields[i].n] = '\0';
        w += fields[i].n + 1;
    }
    for (int i = nf; i < 4; i++)
        x->off[i] = (uint32_t)(w - 1); /* an empty string: the last NUL */
    x->mem = mem;
    x->mlen = (uint32_t)total;
    x->klen = (uint32_t)kn;
    x->type = type;
    x->o = o;
    x->first = x->last = ts;
    x->count = 1;
    f->v[f->n++] = x;
    ch_hindex_set(&f->ix, ch_hindex_probe(&f->ix, h, fact_eq, &k), h, x);
    type == T_EDGE ? f->st.edges++ : type == T_NODE ? f->st.nodes++ : f->st.firsts++;
    if (type == T_FIRST && f->direct != NULL)
        return mark_dirty(f, x);
    return 0;
}

/* Widen the pending fact of this key (hash h) to ts, if there is one: true. */
static bool seen_widen(ch_facts *f, const char *key, size_t kn, uint64_t h, int64_t ts)
{
    keyv k = {key, kn};
    fact *x = ch_hindex_find(&f->ix, h, fact_eq, &k);
    if (x == NULL)
        return false;
    if (ts < x->first)
        x->first = ts;
    if (ts > x->last)
        x->last = ts;
    x->count++;
    return true;
}

/* Widen the node (o, id) when it is pending already: true. Most events of an offense's principal
 * show nodes the interval has seen, whose attributes (kept from their first sight) would be
 * built only to be thrown away. */
static bool node_seen(ch_facts *f, ch_offense *o, ch_sv id, int64_t ts)
{
    char key[CH_FACTS_MAX_STR + 64];
    if (id.n > CH_FACTS_MAX_STR)
        return false; /* put() counts it as dropped */
    size_t kn = 0;
    key[kn++] = (char)T_NODE;
    memcpy(key + kn, &o, sizeof o);
    kn += sizeof o;
    memcpy(key + kn, id.p, id.n);
    kn += id.n;
    key[kn++] = '\0';
    return seen_widen(f, key, kn, ch_hash_words(CH_HASH_SEED, key, kn), ts);
}

/* ---- building facts from events ------------------------------------------------------------ */

typedef struct idbuf {
    char b[CH_FACTS_MAX_STR + 32];
    uint32_t n;
} idbuf;

/* The length printf's "%.*s" would take: up to n bytes, stopping at a NUL (a JSON string may
 * hold an escaped one). Ids and keys keep that form, so stored facts stay comparable. */
static size_t cstr_len(const char *p, size_t n)
{
    const char *z = n ? memchr(p, '\0', n) : NULL;
    return z ? (size_t)(z - p) : n;
}

/* "kind:value" (value cut at CH_FACTS_MAX_STR): built with copies, since snprintf cost about a
 * thousand instructions a call and every event of an offense's principal makes several ids. */
static ch_sv make_id(idbuf *ib, const char *kind, ch_sv v)
{
    size_t kn = strlen(kind);
    size_t vn = v.p ? cstr_len(v.p, v.n > CH_FACTS_MAX_STR ? CH_FACTS_MAX_STR : v.n) : 0;
    if (kn > sizeof ib->b - 2 - vn)
        kn = sizeof ib->b - 2 - vn; /* kinds are short literals: never taken */
    memcpy(ib->b, kind, kn);
    ib->b[kn] = ':';
    if (vn)
        memcpy(ib->b + kn + 1, v.p, vn);
    ib->n = (uint32_t)(kn + 1 + vn);
    ib->b[ib->n] = '\0';
    return (ch_sv){ib->b, ib->n};
}

static int node(ch_facts *f, ch_offense *o, ch_sv id, const char *kind, ch_sv label,
                const char *attrs, int64_t ts)
{
    ch_sv fl[4] = {id,
                   {kind, (uint32_t)strlen(kind)},
                   label,
                   {attrs ? attrs : "{}", (uint32_t)strlen(attrs ? attrs : "{}")}};
    return put(f, T_NODE, o, fl, 4, 1, ts);
}

static int edge(ch_facts *f, ch_offense *o, const char *kind, ch_sv from, ch_sv to, int64_t ts)
{
    ch_sv fl[3] = {{kind, (uint32_t)strlen(kind)}, from, to};
    return put(f, T_EDGE, o, fl, 3, 3, ts);
}

/* A JSON object of string attributes: pairs of (name, value), value.p NULL = left out. */
static void attrs_json(ch_buf *b, const char *const *names, const ch_sv *vals, size_t n)
{
    ch_buf_clear(b);
    ch_buf_addc(b, '{');
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        if (vals[i].p == NULL || vals[i].n == 0)
            continue;
        if (any)
            ch_buf_addc(b, ',');
        ch_buf_add_json_str(b, names[i], strlen(names[i]));
        ch_buf_addc(b, ':');
        ch_buf_add_json_str(b, vals[i].p, vals[i].n > 256 ? 256 : vals[i].n);
        any = true;
    }
    ch_buf_addc(b, '}');
}

/* An address node's attributes: its country and AS. */
static void address_attrs(ch_buf *ab, ch_sv addr, const ch_ip *ip, const ch_geo *g)
{
    char asn[24] = "";
    if (g->asn)
        snprintf(asn, sizeof asn, "AS%u", g->asn);
    static const char *const names[] = {"address", "country", "asn", "as_org", "scope"};
    ch_sv vals[5] = {addr,
                     {g->country, (uint32_t)strlen(g->country)},
                     {asn, (uint32_t)strlen(asn)},
                     g->as_org,
                     ch_ip_is_internal(ip) ? CH_SV("internal") : CH_SV("external")};
    attrs_json(ab, names, vals, 5);
}

/* ip:ADDR with its country and AS. */
static int address_node(ch_facts *f, ch_offense *o, const ch_ip *ip, const ch_geo *g, idbuf *id,
                        ch_buf *ab, int64_t ts)
{
    char txt[64];
    size_t tn = ch_ip_format(ip, txt);
    ch_sv addr = {txt, (uint32_t)tn};
    make_id(id, "ip", addr);
    if (node_seen(f, o, (ch_sv){id->b, id->n}, ts))
        return 0;
    address_attrs(ab, addr, ip, g);
    return node(f, o, (ch_sv){id->b, id->n}, "address", addr, ab->data, ts);
}

static ch_sv sv_of(const char *s) { return (ch_sv){s ? s : "", (uint32_t)(s ? strlen(s) : 0)}; }

/* The indicator an event's value matched, linked from the node of that value. */
static int indicator(ch_facts *f, ch_offense *o, const ch_event *ev, ch_sv from, ch_buf *ab)
{
    const ch_threat *t = &ev->threat;
    if (t->set == NULL)
        return 0;
    char conf[16] = "";
    if (t->confidence >= 0)
        snprintf(conf, sizeof conf, "%d", t->confidence);
    char key[CH_FACTS_MAX_STR];
    int kn = snprintf(key, sizeof key, "%s|%s", t->feed && *t->feed ? t->feed : t->set,
                      t->indicator_id && *t->indicator_id ? t->indicator_id : "-");
    idbuf id = {.n = 0};
    ch_sv iid = make_id(&id, "indicator", (ch_sv){key, (uint32_t)(kn < (int)sizeof key ? kn : 0)});
    static const char *const names[] = {"feed", "set",        "indicator_id",
                                        "name", "confidence", "types"};
#define S(x) sv_of(x)
    ch_sv vals[6] = {S(t->feed),
                     S(t->set),
                     S(t->indicator_id),
                     S(t->indicator_name),
                     (ch_sv){conf, (uint32_t)strlen(conf)},
                     S(t->indicator_types)};
    ch_sv label = t->indicator_name && *t->indicator_name ? S(t->indicator_name)
                  : t->feed && *t->feed                   ? S(t->feed)
                                                          : S(t->set);
#undef S
    attrs_json(ab, names, vals, 6);
    int rc = node(f, o, iid, "indicator", label, ab->data, ev->ts_ms);
    return rc < 0 ? rc : edge(f, o, "listed_in", from, iid, ev->ts_ms);
}

static bool str_at(ch_json_val obj, const char *k, ch_sv *out)
{
    ch_json_val v;
    const char *s;
    size_t n;
    if (!ch_json_obj_get(obj, k, strlen(k), &v) || !ch_json_get_str(v, &s, &n) || n == 0 ||
        n > CH_FACTS_MAX_STR)
        return false;
    *out = (ch_sv){s, (uint32_t)n};
    return true;
}

static bool items(ch_json_val obj, const char *name, ch_json_iter *it)
{
    ch_json_val set, arr;
    return ch_json_obj_get(obj, name, strlen(name), &set) &&
           (ch_json_obj_get(set, "items", 5, &arr) || ch_json_obj_get(set, "item", 4, &arr)) &&
           ch_json_arr_iter(arr, it);
}

static const char *principal_kind(const ch_event *ev)
{
    if (ch_sv_eq(ev->user_type, "Root", 4))
        return "root";
    if (ch_sv_eq(ev->user_type, "AssumedRole", 11))
        return "role";
    if (ch_sv_eq(ev->user_type, "AWSService", 10))
        return "service";
    return "user";
}

/* The launched instances of a RunInstances response. */
static int launches(ch_facts *f, ch_offense *o, const ch_event *ev, ch_sv pid, ch_buf *ab)
{
    ch_json_val resp;
    ch_json_iter it;
    if (!ev->has_raw_doc || !ch_json_obj_get(ev->raw_doc, "responseElements", 16, &resp) ||
        !items(resp, "instancesSet", &it))
        return 0;
    ch_json_val item;
    int rc = 0;
    while (rc >= 0 && ch_json_arr_next(&it, &item)) {
        ch_sv inst, type = {0}, image = {0}, pip = {0};
        if (!str_at(item, "instanceId", &inst))
            continue;
        (void)str_at(item, "instanceType", &type);
        (void)str_at(item, "imageId", &image);
        (void)str_at(item, "privateIpAddress", &pip);
        ch_sv platform = {0};
        (void)str_at(item, "platform", &platform);
        const char *os =
            f->image_os && image.n ? f->image_os(f->image_os_ud, image.p, image.n) : NULL;
        if (os != NULL && os[0] != '\0')
            platform = (ch_sv){os, (uint32_t)strnlen(os, CH_FACTS_MAX_STR)};
        idbuf iid = {.n = 0};
        ch_sv nid = make_id(&iid, "instance", inst);
        static const char *const names[] = {"instance_id", "type",   "image",
                                            "os",          "region", "launched_by"};
        ch_sv vals[6] = {inst, type, image, platform, ev->region, ev->user_name};
        attrs_json(ab, names, vals, 6);
        if ((rc = node(f, o, nid, "instance", inst, ab->data, ev->ts_ms)) < 0 ||
            (rc = edge(f, o, "launched", pid, nid, ev->ts_ms)) < 0)
            break;
        ch_json_iter nit;
        ch_json_val ni;
        bool had_eni = false;
        if (items(item, "networkInterfaceSet", &nit)) {
            while (rc >= 0 && ch_json_arr_next(&nit, &ni)) {
                ch_sv eni, eip = {0};
                if (!str_at(ni, "networkInterfaceId", &eni))
                    continue;
                had_eni = true;
                (void)str_at(ni, "privateIpAddress", &eip);
                idbuf eid = {.n = 0}, aid = {.n = 0};
                ch_sv enid = make_id(&eid, "eni", eni);
                if ((rc = node(f, o, enid, "interface", eni, "{}", ev->ts_ms)) < 0 ||
                    (rc = edge(f, o, "interface", nid, enid, ev->ts_ms)) < 0)
                    break;
                if (eip.n) {
                    ch_sv aidv = make_id(&aid, "pip", eip);
                    if ((rc = node(f, o, aidv, "private_address", eip, "{}", ev->ts_ms)) < 0 ||
                        (rc = edge(f, o, "private_ip", enid, aidv, ev->ts_ms)) < 0)
                        break;
                }
            }
        }
        if (rc >= 0 && !had_eni && pip.n) {
            idbuf aid = {.n = 0};
            ch_sv aidv = make_id(&aid, "pip", pip);
            if ((rc = node(f, o, aidv, "private_address", pip, "{}", ev->ts_ms)) >= 0)
                rc = edge(f, o, "private_ip", nid, aidv, ev->ts_ms);
        }
    }
    return rc;
}

static const char *const lineage_actions[] = {
    "CreateUser",       "CreateLoginProfile", "UpdateLoginProfile", "CreateAccessKey",
    "AttachUserPolicy", "PutUserPolicy",      "AddUserToGroup",
};

/* The facts every CloudTrail event of an offense's principal puts (its principal, access key,
 * address, user agent and region, and the edges to them), keys made before the first probe: the
 * index of a run's graph facts is larger than the caches and these probes were a cache miss or
 * two each, one after another, an eighth of the merge thread's time (docs/BENCHMARKS.md section
 * 69). Their slots, then the facts in them, are loaded together first (plan_load). */
enum { P_PRINCIPAL, P_KEY, P_USED_KEY, P_ADDR, P_FROM, P_UA, P_AGENT, P_REGION, P_IN_REGION, P_N };

typedef struct plan {
    ch_offense *o;
    fkey k[P_N];
    ch_sv fl[P_N][4]; /* node(): id, kind, label, attributes; edge(): kind, from, to */
    uint8_t type[P_N];
    bool on[P_N];
} plan;

/* A node's attributes are "{}" unless plan_attrs sets them before plan_put. */
static void plan_node(plan *pl, int i, ch_sv id, const char *kind, ch_sv label)
{
    ch_sv fl[4] = {id, {kind, (uint32_t)strlen(kind)}, label, CH_SV("{}")};
    key_make(&pl->k[i], T_NODE, pl->o, fl, 4, 1);
    memcpy(pl->fl[i], fl, sizeof fl);
    pl->type[i] = T_NODE;
    pl->on[i] = true;
}

/* As node() takes them. */
static void plan_attrs(plan *pl, int i, const char *attrs)
{
    pl->fl[i][3] = sv_of(attrs ? attrs : "{}");
}

static void plan_edge(plan *pl, int i, const char *kind, ch_sv from, ch_sv to)
{
    ch_sv fl[3] = {{kind, (uint32_t)strlen(kind)}, from, to};
    key_make(&pl->k[i], T_EDGE, pl->o, fl, 3, 3);
    memcpy(pl->fl[i], fl, sizeof fl);
    pl->type[i] = T_EDGE;
    pl->on[i] = true;
}

static void plan_load(const ch_facts *f, const plan *pl)
{
    if (f->ix.cap == 0)
        return;
    for (int i = 0; i < P_N; i++)
        if (pl->on[i])
            key_prefetch(f, &pl->k[i]);
    /* A fact's header and the key after it span two lines. */
    size_t mask = f->ix.cap - 1;
    for (int i = 0; i < P_N; i++) {
        const fkey *k = &pl->k[i];
        if (!pl->on[i] || k->drop)
            continue;
        const ch_hindex_slot *sl = &f->ix.slots[k->h & mask];
        if (sl->item != NULL && sl->h == k->h) {
            __builtin_prefetch(sl->item);
            __builtin_prefetch((const char *)sl->item + 64);
        }
    }
}

/* node_seen with the node's key made. */
static bool key_seen(ch_facts *f, const fkey *k, int64_t ts)
{
    /* A dropped key was never put: put_key counts it as dropped. */
    return !k->drop && seen_widen(f, k->b, k->n, k->h, ts);
}

/* node() or edge() of planned fact i. */
static int plan_put(ch_facts *f, const plan *pl, int i, int64_t ts)
{
    return put_key(f, &pl->k[i], pl->type[i], pl->o, pl->fl[i], pl->type[i] == T_NODE ? 4 : 3, ts);
}

static int cloudtrail(ch_facts *f, ch_offense *o, const ch_event *ev, ch_buf *ab)
{
    idbuf pidb = {.n = 0}, kidb = {.n = 0}, aidb = {.n = 0}, uidb = {.n = 0}, ridb = {.n = 0};
    const char *pk = principal_kind(ev);
    int64_t ts = ev->ts_ms;
    ch_sv pid = make_id(&pidb, pk, ev->user_name), kid = {0}, aid = {0}, uid = {0}, rid = {0};
    char txt[64];
    ch_sv addr = {txt, 0}, ua = ev->user_agent;
    if (ua.n > 200)
        ua.n = 200;
    plan pl;
    pl.o = o;
    memset(pl.on, 0, sizeof pl.on);
    plan_node(&pl, P_PRINCIPAL, pid, pk, ev->user_name);
    if (ev->access_key.n) {
        kid = make_id(&kidb, "key", ev->access_key);
        plan_node(&pl, P_KEY, kid, "access_key", ev->access_key);
        plan_edge(&pl, P_USED_KEY, "used_key", pid, kid);
    }
    if (ev->src_ip.family) {
        addr.n = (uint32_t)ch_ip_format(&ev->src_ip, txt);
        aid = make_id(&aidb, "ip", addr);
        plan_node(&pl, P_ADDR, aid, "address", addr);
        plan_edge(&pl, P_FROM, "from", pid, aid);
    }
    if (ev->user_agent.n) {
        uid = make_id(&uidb, "ua", ua);
        plan_node(&pl, P_UA, uid, "user_agent", ua);
        plan_edge(&pl, P_AGENT, "agent", pid, uid);
    }
    if (ev->region.n) {
        rid = make_id(&ridb, "region", ev->region);
        plan_node(&pl, P_REGION, rid, "region", ev->region);
        plan_edge(&pl, P_IN_REGION, "in_region", pid, rid);
    }
    plan_load(f, &pl);

    int rc = 0;
    if (!key_seen(f, &pl.k[P_PRINCIPAL], ts)) {
        static const char *const pnames[] = {"name", "type", "account", "session"};
        ch_sv pvals[4] = {ev->user_name, ev->user_type, ev->account_id, ev->session_name};
        attrs_json(ab, pnames, pvals, 4);
        plan_attrs(&pl, P_PRINCIPAL, ab->data);
        rc = plan_put(f, &pl, P_PRINCIPAL, ts);
    }
    if (rc >= 0 && pl.on[P_KEY] && (rc = plan_put(f, &pl, P_KEY, ts)) >= 0)
        rc = plan_put(f, &pl, P_USED_KEY, ts);
    if (rc >= 0 && pl.on[P_ADDR]) {
        if (!key_seen(f, &pl.k[P_ADDR], ts)) {
            address_attrs(ab, addr, &ev->src_ip, &ev->src_geo);
            plan_attrs(&pl, P_ADDR, ab->data);
            rc = plan_put(f, &pl, P_ADDR, ts);
        }
        if (rc >= 0)
            rc = plan_put(f, &pl, P_FROM, ts);
        if (rc >= 0)
            rc = indicator(f, o, ev, aid, ab);
    }
    if (rc >= 0 && pl.on[P_UA] && (rc = plan_put(f, &pl, P_UA, ts)) >= 0)
        rc = plan_put(f, &pl, P_AGENT, ts);
    if (rc >= 0 && pl.on[P_REGION] && (rc = plan_put(f, &pl, P_REGION, ts)) >= 0)
        rc = plan_put(f, &pl, P_IN_REGION, ts);
    idbuf id = {.n = 0};
    if (rc < 0 || ev->outcome != CH_OUTCOME_SUCCESS || ev->action.p == NULL)
        return rc;
    if (ch_sv_eq(ev->action, "RunInstances", 12))
        return launches(f, o, ev, pid, ab);
    /* The action before the document: a lookup in it is a cache miss on this (the merge)
     * thread, which did not parse it (see ch_images_observe). */
    ch_json_val req;
    ch_sv target;
    for (size_t i = 0; i < sizeof lineage_actions / sizeof *lineage_actions; i++) {
        if (!ch_sv_eq(ev->action, lineage_actions[i], strlen(lineage_actions[i])))
            continue;
        if (!ev->has_raw_doc || !ch_json_obj_get(ev->raw_doc, "requestParameters", 17, &req) ||
            !str_at(req, "userName", &target) ||
            (target.n == ev->user_name.n && memcmp(target.p, ev->user_name.p, target.n) == 0))
            return rc;
        ch_sv tid = make_id(&id, "user", target);
        if ((rc = node(f, o, tid, "user", target, "{}", ev->ts_ms)) >= 0)
            rc = edge(f, o, lineage_actions[i], pid, tid, ev->ts_ms);
        return rc;
    }
    return rc;
}

/* The acting end of a DNS query or flow: the instance, else its interface. */
static ch_sv actor(const ch_event *ev, idbuf *id)
{
    if (ev->instance_id.n)
        return make_id(id, "instance", ev->instance_id);
    if (ev->interface_id.n)
        return make_id(id, "eni", ev->interface_id);
    return (ch_sv){0};
}

static int network(ch_facts *f, ch_offense *o, const ch_event *ev, ch_buf *ab)
{
    idbuf aidb = {.n = 0}, id = {.n = 0};
    ch_sv aid = actor(ev, &aidb);
    if (aid.n == 0)
        return 0;
    bool inst = ev->instance_id.n > 0;
    int rc = node(f, o, aid, inst ? "instance" : "interface",
                  inst ? ev->instance_id : ev->interface_id, "{}", ev->ts_ms);
    if (rc < 0)
        return rc;
    if (ev->dataset == CH_DS_ROUTE53 && ev->dns_qname.n) {
        ch_sv did = make_id(&id, "domain", ev->dns_qname);
        if ((rc = node(f, o, did, "domain", ev->dns_qname, "{}", ev->ts_ms)) >= 0 &&
            (rc = edge(f, o, "queried", aid, did, ev->ts_ms)) >= 0)
            rc = indicator(f, o, ev, did, ab);
        return rc;
    }
    if (ev->dataset != CH_DS_VPCFLOW)
        return 0;
    /* The remote end: the side that is not the instance's own (internal) address. */
    const ch_ip *remote = &ev->dst_ip;
    const ch_geo *g = &ev->dst_geo;
    uint16_t port = ev->dst_port;
    if (remote->family == 0 || ch_ip_is_internal(remote)) {
        remote = &ev->src_ip;
        g = &ev->src_geo;
        port = ev->src_port;
    }
    if (remote->family == 0 || ch_ip_is_internal(remote))
        return 0;
    if ((rc = address_node(f, o, remote, g, &id, ab, ev->ts_ms)) < 0)
        return rc;
    char kind[48];
    snprintf(kind, sizeof kind, "%.*s/%u", (int)(ev->transport.n < 16 ? ev->transport.n : 16),
             ev->transport.n ? ev->transport.p : "ip", (unsigned)port);
    if ((rc = edge(f, o, kind, aid, (ch_sv){id.b, id.n}, ev->ts_ms)) < 0)
        return rc;
    return indicator(f, o, ev, (ch_sv){id.b, id.n}, ab);
}

static const char *const first_kinds[] = {"login_country", "country", "region", "api",
                                          "instance_type"};

/* An event's firsts into the firsts' set fs: keys and hashes first, their slots prefetched, then
 * the probes (see key_prefetch). */
static int put_firsts(ch_facts *fs, ch_sv user, ch_sv id, int64_t ts, const uint8_t *kind,
                      const ch_sv *vals, int n)
{
    fkey keys[5];
    ch_sv fl[5][4];
    for (int i = 0; i < n; i++) {
        const char *k = first_kinds[kind[i]];
        fl[i][0] = user;
        fl[i][1] = (ch_sv){k, (uint32_t)strlen(k)};
        fl[i][2] = vals[i];
        fl[i][3] = id;
        if (vals[i].n == 0)
            continue; /* nothing to remember */
        key_make(&keys[i], T_FIRST, NULL, fl[i], 4, 3);
        key_prefetch(fs, &keys[i]);
    }
    for (int i = 0; i < n; i++) {
        int rc;
        if (vals[i].n != 0 && (rc = put_key(fs, &keys[i], T_FIRST, NULL, fl[i], 4, ts)) < 0)
            return rc;
    }
    return 0;
}

static void tuples_push(ch_facts *f);
static tuples *tuples_take(firsts_writer *w);

static int firsts(ch_facts *f, const ch_event *ev)
{
    if (ev->dataset != CH_DS_CLOUDTRAIL || ev->user_name.n == 0 || ev->action.p == NULL ||
        ev->outcome != CH_OUTCOME_SUCCESS)
        return 0;
    /* The event's firsts, in this order: (kind, value). */
    uint8_t kind[5];
    ch_sv vals[5];
    int n = 0;
    ch_sv country = {ev->src_geo.country, (uint32_t)strlen(ev->src_geo.country)};
    if (ch_sv_eq(ev->action, "ConsoleLogin", 12)) {
        kind[n] = 0;
        vals[n++] = country;
    }
    kind[n] = 1;
    vals[n++] = country;
    kind[n] = 2;
    vals[n++] = ev->region;
    /* API as "service:Action": the same name in two services is two APIs. */
    char api[CH_FACTS_MAX_STR];
    ch_sv svc = ev->provider;
    const char *dot = svc.n ? memchr(svc.p, '.', svc.n) : NULL;
    if (dot != NULL)
        svc.n = (uint32_t)(dot - svc.p);
    size_t sn = svc.p ? cstr_len(svc.p, svc.n < 64 ? svc.n : 64) : 0;
    size_t acn = cstr_len(ev->action.p, ev->action.n < 200 ? ev->action.n : 200);
    if (sn)
        memcpy(api, svc.p, sn);
    api[sn] = ':';
    memcpy(api + sn + 1, ev->action.p, acn);
    kind[n] = 3;
    vals[n++] = (ch_sv){api, (uint32_t)(sn + 1 + acn)};
    ch_json_val req;
    ch_sv type;
    if (ch_sv_eq(ev->action, "RunInstances", 12) && ev->has_raw_doc &&
        ch_json_obj_get(ev->raw_doc, "requestParameters", 17, &req) &&
        str_at(req, "instanceType", &type)) {
        kind[n] = 4;
        vals[n++] = type;
    }
    if (f->w == NULL)
        return put_firsts(f->fs, ev->user_name, ev->id, ev->ts_ms, kind, vals, n);
    /* The firsts' thread puts them (and writes them ahead): a copy of what it needs. */
    if (f->tb == NULL && (f->tb = tuples_take(f->w)) == NULL)
        return CH_ENOMEM;
    ev_firsts h = {.ts = ev->ts_ms, .un = ev->user_name.n, .idn = ev->id.n, .n = (uint8_t)n};
    for (int i = 0; i < n; i++) {
        h.kind[i] = kind[i];
        h.vn[i] = vals[i].n;
    }
    ch_buf *b = &f->tb->b;
    int rc = ch_buf_add(b, &h, sizeof h);
    if (rc >= 0 && h.un)
        rc = ch_buf_add(b, ev->user_name.p, h.un);
    if (rc >= 0 && h.idn)
        rc = ch_buf_add(b, ev->id.p, h.idn);
    for (int i = 0; i < n && rc >= 0; i++)
        if (vals[i].n)
            rc = ch_buf_add(b, vals[i].p, vals[i].n);
    if (rc < 0)
        return CH_ENOMEM;
    if (++f->tb->n >= TUPLES_BATCH)
        tuples_push(f);
    return 0;
}

int ch_facts_event(ch_facts *f, const ch_event *ev, ch_offense *o)
{
    int rc = firsts(f, ev);
    if (rc < 0 || o == NULL)
        return rc;
    if (ev->dataset == CH_DS_CLOUDTRAIL && ev->user_name.n)
        return cloudtrail(f, o, ev, &f->ab);
    return network(f, o, ev, &f->ab);
}

int ch_facts_hit(ch_facts *f, const ch_rule_hit *hit, ch_offense *o)
{
    if (o == NULL || hit->rule == NULL || hit->rule->id == NULL)
        return 0;
    const ch_event *ev = hit->event;
    idbuf rid = {.n = 0}, tid = {.n = 0};
    ch_sv rn = make_id(&rid, "rule", (ch_sv){hit->rule->id, (uint32_t)strlen(hit->rule->id)});
    char sev[8];
    snprintf(sev, sizeof sev, "%d", hit->rule->severity);
    ch_buf ab;
    ch_buf_init(&ab, 1 << 16);
    static const char *const names[] = {"title", "severity", "evidence"};
    ch_sv vals[3] = {{hit->rule->title ? hit->rule->title : "",
                      (uint32_t)(hit->rule->title ? strlen(hit->rule->title) : 0)},
                     {sev, (uint32_t)strlen(sev)},
                     {hit->evidence ? hit->evidence : "",
                      (uint32_t)(hit->evidence ? strlen(hit->evidence) : 0)}};
    attrs_json(&ab, names, vals, 3);
    int rc = node(f, o, rn, "rule", (ch_sv){hit->rule->id, (uint32_t)strlen(hit->rule->id)},
                  ab.data, hit->ts_ms);
    ch_buf_free(&ab);
    if (rc < 0 || ev == NULL)
        return rc;
    /* The rule points at what it fired on: the instance of a DNS query or flow, else the
     * principal, else the index value (a source address for a spray). */
    ch_sv target = {0};
    if (ev->dataset != CH_DS_CLOUDTRAIL && (ev->instance_id.n || ev->interface_id.n))
        target = actor(ev, &tid);
    else if (ev->user_name.n)
        target = make_id(&tid, principal_kind(ev), ev->user_name);
    else if (hit->index_value.n)
        target = make_id(&tid, "value", hit->index_value);
    if (target.n == 0)
        return 0;
    if (ev->user_name.n == 0 && ev->dataset == CH_DS_CLOUDTRAIL &&
        (rc = node(f, o, target, "value", hit->index_value, "{}", hit->ts_ms)) < 0)
        return rc;
    return edge(f, o, "fired_on", rn, target, hit->ts_ms);
}

/* ---- the store --------------------------------------------------------------------------- */

static const char *const migrations[] = {
    /* 0 -> 1: the investigation facts (facts.h). */
    "CREATE TABLE graph_nodes ("
    " offense_id INTEGER NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL, label TEXT NOT NULL,"
    " attrs TEXT NOT NULL, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,"
    " count INTEGER NOT NULL, PRIMARY KEY (offense_id, id)) WITHOUT ROWID;"
    "CREATE TABLE graph_edges ("
    " offense_id INTEGER NOT NULL, kind TEXT NOT NULL, src TEXT NOT NULL, dst TEXT NOT NULL,"
    " first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, count INTEGER NOT NULL,"
    " PRIMARY KEY (offense_id, src, dst, kind)) WITHOUT ROWID;"
    "CREATE TABLE user_firsts ("
    " user TEXT NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL, ts INTEGER NOT NULL,"
    " event_id TEXT NOT NULL, PRIMARY KEY (user, kind, value)) WITHOUT ROWID;"
    "CREATE INDEX user_firsts_ts ON user_firsts (user, ts);",
    /* 1 -> 2: the (user, ts) index goes. Every first a run saves paid a second b-tree insert
     * for it, and its only reader (a user's timeline, src/uba/timeline.c) reads one user's
     * firsts through the primary key and sorts them (docs/BENCHMARKS.md section 35). */
    "DROP INDEX user_firsts_ts;",
};

static const ch_sql_schema schema = {
    .component = "investigate",
    .migrations = migrations,
    .version = (int)(sizeof migrations / sizeof migrations[0]),
};

int ch_facts_schema(ch_sql *c, ch_error *err) { return ch_sql_migrate(c, &schema, err); }

static int64_t offense_id(const fact *x) { return x->o != NULL ? x->o->id : 0; }

static int cmp_i64(int64_t a, int64_t b) { return (a > b) - (a < b); }

/* Facts in the order of their table's primary key (type first: one statement after the other).
 * SQLite compares TEXT with memcmp, shorter first on a tie, which strcmp matches for strings
 * without NUL bytes (a string with one only lands out of order, which costs time, not
 * correctness). */
/* Two graph facts of one type and offense by their strings. */
static int strings_cmp(const fact *a, const fact *b)
{
    if (a->type == T_NODE) /* (offense_id, id) */
        return strcmp(fld(a, 0), fld(b, 0));
    static const int order[] = {1, 2, 0}; /* edges: (offense_id, src, dst, kind) */
    int c;
    for (int i = 0; i < 3; i++)
        if ((c = strcmp(fld(a, order[i]), fld(b, order[i]))) != 0)
            return c;
    return 0;
}

static int fact_cmp(const void *pa, const void *pb)
{
    const fact *a = *(const fact *const *)pa, *b = *(const fact *const *)pb;
    if (a->type != b->type)
        return a->type < b->type ? -1 : 1;
    if (a->type == T_FIRST) { /* (user, kind, value): the key's "user\0kind\0value\0" after
                                 its type and (NULL) offense, in that order already: one memcmp */
        size_t skip = 1 + sizeof(ch_offense *);
        size_t an = a->klen - skip, bn = b->klen - skip;
        int c = memcmp(a->mem + skip, b->mem + skip, an < bn ? an : bn);
        return c != 0 ? c : (an > bn) - (an < bn);
    }
    int c = cmp_i64(offense_id(a), offense_id(b));
    return c != 0 ? c : strings_cmp(a, b);
}

/* The three upserts, by type (edges, firsts, nodes: the order fact_cmp puts them in). */
typedef struct upsert {
    uint8_t type;
    int ncols;
    const char *table;
    const char *conflict;
} upsert;

static const upsert upserts[3] = {
    {T_EDGE, 7, "graph_edges",
     " ON CONFLICT (offense_id, src, dst, kind) DO UPDATE SET"
     " first_seen = min(first_seen, excluded.first_seen),"
     " last_seen = max(last_seen, excluded.last_seen), count = count + excluded.count"},
    {T_FIRST, 5, "user_firsts",
     " ON CONFLICT (user, kind, value) DO UPDATE SET ts = excluded.ts,"
     " event_id = excluded.event_id WHERE excluded.ts < ts"},
    {T_NODE, 8, "graph_nodes",
     " ON CONFLICT (offense_id, id) DO UPDATE SET"
     " attrs = CASE WHEN length(excluded.attrs) > length(attrs) THEN excluded.attrs"
     " ELSE attrs END, first_seen = min(first_seen, excluded.first_seen),"
     " last_seen = max(last_seen, excluded.last_seen), count = count + excluded.count"},
};

/* Rows per statement: one statement execution (its program's start and halt, the reset, the
 * step) per row was about a third of an upsert's instructions; 32 rows a statement take most of
 * that away (measured: 17.6k -> 11.3k instructions a row for user_firsts). Each row is still
 * its own upsert: a VALUES list applies ON CONFLICT row by row. */
#define SAVE_BATCH 32

static int prepare_upsert(ch_sql *c, const upsert *u, int rows, sqlite3_stmt **st, ch_error *err)
{
    ch_buf b;
    ch_buf_init(&b, 1 << 16);
    int rc = ch_buf_printf(&b, "INSERT INTO %s VALUES ", u->table);
    for (int r = 0; r < rows && rc >= 0; r++) {
        rc = ch_buf_adds(&b, r ? ",(?" : "(?");
        for (int k = 1; k < u->ncols && rc >= 0; k++)
            rc = ch_buf_adds(&b, ",?");
        if (rc >= 0)
            rc = ch_buf_addc(&b, ')');
    }
    if (rc >= 0)
        rc = ch_buf_adds(&b, u->conflict);
    if (rc < 0)
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
    else
        rc = ch_sql_prepare(c->db, c->path, b.data, st, err);
    ch_buf_free(&b);
    return rc;
}

/* Bind x's row from parameter k on; the next free parameter. */
static int bind_fact(sqlite3_stmt *st, int k, const fact *x)
{
    if (x->type != T_FIRST)
        sqlite3_bind_int64(st, k++, x->o->id);
    int nf = x->type == T_NODE ? 4 : 3;
    for (int j = 0; j < nf; j++)
        sqlite3_bind_text(st, k++, fld(x, j), -1, SQLITE_STATIC);
    if (x->type == T_FIRST) { /* user, kind, value, ts, event id */
        sqlite3_bind_int64(st, k++, x->first);
        sqlite3_bind_text(st, k++, fld(x, 3), -1, SQLITE_STATIC);
    } else {
        sqlite3_bind_int64(st, k++, x->first);
        sqlite3_bind_int64(st, k++, x->last);
        sqlite3_bind_int64(st, k++, (sqlite3_int64)x->count);
    }
    return k;
}

/* Upsert v[0..n) (sorted by fact_cmp) in one transaction of c; *saved counts the rows. */
static int write_rows(ch_sql *c, fact *const *v, size_t n, uint64_t *saved, ch_error *err)
{
    sqlite3_stmt *one[3] = {NULL, NULL, NULL}, *many[3] = {NULL, NULL, NULL};
    const fact *batch[SAVE_BATCH];
    int rc = ch_sql_begin(c, err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n;) {
        uint8_t type = v[i]->type;
        int t = type == T_EDGE ? 0 : type == T_FIRST ? 1 : 2;
        int nb = 0;
        while (i < n && v[i]->type == type && nb < SAVE_BATCH) {
            const fact *x = v[i++];
            if (x->type != T_FIRST && (x->o == NULL || x->o->id <= 0))
                continue; /* an offense the store did not keep */
            batch[nb++] = x;
        }
        bool full = nb == SAVE_BATCH;
        sqlite3_stmt **st = full ? &many[t] : &one[t];
        if (nb > 0 && *st == NULL &&
            (rc = prepare_upsert(c, &upserts[t], full ? SAVE_BATCH : 1, st, err)) < 0)
            goto done;
        for (int r = 0; r < nb;) {
            int k = 1;
            do
                k = bind_fact(*st, k, batch[r++]);
            while (full && r < nb);
            if (sqlite3_step(*st) != SQLITE_DONE) {
                rc = ch_sql_error(c->db, c->path, err, "saving investigation facts");
                sqlite3_reset(*st);
                goto done;
            }
            sqlite3_reset(*st);
        }
        *saved += (uint64_t)nb;
    }
done:
    for (int t = 0; t < 3; t++) {
        sqlite3_finalize(one[t]);
        sqlite3_finalize(many[t]);
    }
    if (rc < 0) {
        ch_sql_rollback(c);
        return rc;
    }
    return ch_sql_commit(c, err);
}

/* Graph facts by type, offense (its address: the ids are not known yet, and ch_store_save may
 * be setting them meanwhile, so the sorter never reads them) and strings, as fact_cmp orders
 * them within one offense. */
static int group_cmp(const void *pa, const void *pb)
{
    const fact *a = *(const fact *const *)pa, *b = *(const fact *const *)pb;
    if (a->type != b->type)
        return a->type < b->type ? -1 : 1;
    if (a->o != b->o)
        return (uintptr_t)a->o < (uintptr_t)b->o ? -1 : 1;
    return strings_cmp(a, b);
}

static void *sorter_main(void *arg)
{
    ch_facts *f = arg;
    pthread_setname_np(pthread_self(), "ch-facts-sort");
    qsort(f->sorted, f->nsorted, sizeof *f->sorted, group_cmp);
    return NULL;
}

void ch_facts_save_prepare(ch_facts *f)
{
    /* Below a few thousand facts the thread's start costs about what the sort does. */
    if (f->sorting || f->sorted != NULL || f->n < 4096)
        return;
    if ((f->sorted = ch_malloc(f->n * sizeof *f->sorted)) == NULL)
        return;
    memcpy(f->sorted, f->v, f->n * sizeof *f->v);
    f->nsorted = f->n;
    f->sorting = pthread_create(&f->sorter, NULL, sorter_main, f) == 0;
    if (!f->sorting) {
        ch_free(f->sorted);
        f->sorted = NULL;
    }
}

void ch_facts_save_abandon(ch_facts *f)
{
    if (f->sorting)
        pthread_join(f->sorter, NULL);
    f->sorting = false;
    ch_free(f->sorted);
    f->sorted = NULL;
    f->nsorted = 0;
}

/* One offense's facts of one type in f->sorted: [start, start + n). */
typedef struct group {
    size_t start, n;
    uint8_t type;
    int64_t id;
} group;

static int grp_cmp(const void *pa, const void *pb)
{
    const group *a = pa, *b = pb;
    if (a->type != b->type)
        return a->type < b->type ? -1 : 1;
    return cmp_i64(a->id, b->id);
}

/* v gets the sorted graph facts in fact_cmp order: their groups by offense id, now that the ids
 * are known. false when two groups share an id (two offenses that joined one stored offense:
 * their facts interleave) or memory is short; the caller sorts v whole then. */
static bool take_sorted(ch_facts *f, fact **v)
{
    fact **s = f->sorted;
    size_t n = f->nsorted, ng = 0;
    for (size_t i = 0; i < n; i++)
        ng += i == 0 || s[i]->type != s[i - 1]->type || s[i]->o != s[i - 1]->o;
    group *g = ch_malloc((ng + 1) * sizeof *g);
    if (g == NULL)
        return false;
    ng = 0;
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || s[i]->type != s[i - 1]->type || s[i]->o != s[i - 1]->o)
            g[ng++] = (group){i, 0, s[i]->type, offense_id(s[i])};
        g[ng - 1].n++;
    }
    qsort(g, ng, sizeof *g, grp_cmp);
    bool ok = true;
    for (size_t i = 1; i < ng && ok; i++)
        ok = g[i].type != g[i - 1].type || g[i].id != g[i - 1].id;
    size_t k = 0;
    for (size_t i = 0; i < ng && ok; i++) {
        memcpy(v + k, s + g[i].start, g[i].n * sizeof *v);
        k += g[i].n;
    }
    ch_free(g);
    return ok;
}

int ch_facts_save(ch_facts *f, ch_sql *c, ch_error *err)
{
    ch_facts *fs = f->fs;
    bool sorted = false;
    if (f->sorting) {
        pthread_join(f->sorter, NULL);
        f->sorting = false;
    }
    if (f->n == 0 && fs->n == 0)
        return 0;
    /* The graph facts and the firsts not written ahead (ch_facts_writer_stop waited for the
     * firsts' thread), in an array of their own: reset frees through each set's v. */
    size_t n = 0;
    fact **v = ch_malloc((f->n + fs->n + 1) * sizeof *v);
    if (v == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    if (f->sorted != NULL && f->nsorted == f->n && take_sorted(f, v)) {
        /* Edges, then the firsts (sorted here, few when their thread ran), then nodes. */
        size_t ne = 0, nf = 0;
        while (ne < f->n && v[ne]->type == T_EDGE)
            ne++;
        memmove(v + ne + fs->n, v + ne, (f->n - ne) * sizeof *v);
        for (size_t i = 0; i < fs->n; i++)
            if (!fs->v[i]->sent)
                v[ne + nf++] = fs->v[i];
        qsort(v + ne, nf, sizeof *v, fact_cmp);
        if (nf < fs->n)
            memmove(v + ne + nf, v + ne + fs->n, (f->n - ne) * sizeof *v);
        n = f->n + nf;
        sorted = true;
    } else {
        for (size_t i = 0; i < f->n; i++)
            v[n++] = f->v[i];
        for (size_t i = 0; i < fs->n; i++)
            if (!fs->v[i]->sent)
                v[n++] = fs->v[i];
    }
    ch_facts_save_abandon(f);
    /* In key order, each upsert lands next to the one before: SQLite finds the page it just
     * wrote, and a fresh table grows at its right edge (cheap splits) instead of splitting
     * pages in the middle. In the order facts came (by event), the b-tree balancing alone took
     * a third of the upserts' instructions on a corpus where most users' firsts are new. The
     * pending facts are found through their index, not their place in the array. */
    if (!sorted)
        qsort(v, n, sizeof *v, fact_cmp);
    int rc = write_rows(c, v, n, &f->st.saved, err);
    ch_free(v);
    if (rc < 0)
        return rc;
    reset(f);
    reset(fs);
    return 0;
}

/* ---- the users' firsts' thread -----------------------------------------------------------------
 */

static void tuples_free(tuples *t)
{
    if (t == NULL)
        return;
    ch_buf_free(&t->b);
    ch_free(t);
}

/* Sort the dirty firsts that fill whole runs of DIRTY_RUN, while events still come: the
 * thread waits for batches most of a run, and sorting all of an interval's firsts at once, at
 * the stop, was a fifth of the checkpoint's serial part on a corpus where most firsts are new
 * (674,000 of them in 300k hard records: docs/BENCHMARKS.md section 50). A first is put into
 * dirty once an interval (mark_dirty), and its key never changes, so a sorted run stays sorted
 * whatever happens to the first's time later. */
static void sort_runs(ch_facts *fs)
{
    while (fs->ndirty - fs->dsorted >= DIRTY_RUN) {
        qsort(fs->dirty + fs->dsorted, DIRTY_RUN, sizeof *fs->dirty, fact_cmp);
        fs->dsorted += DIRTY_RUN;
    }
}

/* Merge the sorted runs a[lo..mid) and a[mid..hi) into b[lo..hi). Keys are distinct (the set's
 * index holds one fact per key), so the merged order is the one qsort would give. */
static void merge2(fact *const *a, fact **b, size_t lo, size_t mid, size_t hi)
{
    size_t i = lo, j = mid, k = lo;
    while (i < mid && j < hi)
        b[k++] = fact_cmp(&a[i], &a[j]) < 0 ? a[i++] : a[j++];
    while (i < mid)
        b[k++] = a[i++];
    while (j < hi)
        b[k++] = a[j++];
}

/* All of fs->dirty in fact_cmp order: the runs sort_runs left, the tail sorted, then merged in
 * pairs (log2 of the runs' count passes of n compares, against log2(n) for one qsort). */
static void sort_dirty(ch_facts *fs)
{
    size_t n = fs->ndirty;
    qsort(fs->dirty + fs->dsorted, n - fs->dsorted, sizeof *fs->dirty, fact_cmp);
    fs->dsorted = n;
    if (n <= DIRTY_RUN)
        return;
    fact **tmp = ch_malloc(n * sizeof *tmp);
    if (tmp == NULL) { /* one sort of the whole, in place */
        qsort(fs->dirty, n, sizeof *fs->dirty, fact_cmp);
        return;
    }
    fact **src = fs->dirty, **dst = tmp;
    for (size_t w = DIRTY_RUN; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            merge2(src, dst, lo, mid, hi);
        }
        fact **t = src;
        src = dst;
        dst = t;
    }
    if (src != fs->dirty)
        memcpy(fs->dirty, src, n * sizeof *src);
    ch_free(tmp);
}

/* Write the dirty firsts of fs ahead, on its thread's connection (fs->direct). */
static void write_dirty(ch_facts *fs)
{
    if (fs->ndirty == 0 || fs->direct_rc < 0)
        return;
    /* One transaction from the first write to the stop: a transaction per batch wrote every
     * page a batch touched to the WAL again (each batch's users are spread over the table),
     * which made the thread's system time larger than all of the run's user time. */
    if (!fs->direct_tx) {
        if ((fs->direct_rc = ch_sql_begin(fs->direct, &fs->direct_err)) < 0)
            return;
        fs->direct_tx = true;
    }
    sort_dirty(fs);
    fs->direct_rc =
        write_rows(fs->direct, fs->dirty, fs->ndirty, &fs->direct_saved, &fs->direct_err);
    if (fs->direct_rc < 0)
        return; /* they stay unsent: the checkpoint writes them */
    for (size_t i = 0; i < fs->ndirty; i++)
        fs->dirty[i]->sent = true;
    fs->ndirty = 0;
    fs->dsorted = 0;
}

/* Put a batch of events' firsts into fs (on the firsts' thread). */
static void tuples_put(ch_facts *fs, const tuples *t)
{
    const char *p = t->b.data, *end = p + t->b.len;
    while (p < end) {
        ev_firsts h;
        memcpy(&h, p, sizeof h);
        p += sizeof h;
        ch_sv user = {p, h.un};
        p += h.un;
        ch_sv id = {p, h.idn};
        p += h.idn;
        ch_sv vals[5];
        for (int i = 0; i < h.n; i++) {
            vals[i] = (ch_sv){p, h.vn[i]};
            p += h.vn[i];
        }
        if (put_firsts(fs, user, id, h.ts, h.kind, vals, h.n) < 0 && fs->direct_rc == 0)
            fs->direct_rc = ch_error_set(&fs->direct_err, CH_ENOMEM, "out of memory");
    }
    sort_runs(fs);
}

static void *writer_main(void *arg)
{
    ch_facts *f = arg;
    firsts_writer *w = f->w;
    pthread_setname_np(pthread_self(), "ch-firsts"); /* for perf, top and /proc */
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->head == NULL && !w->stop)
            pthread_cond_wait(&w->cv, &w->mu);
        tuples *t = w->head;
        if (t == NULL) /* stop, and nothing left */
            break;
        w->head = t->next;
        if (w->head == NULL)
            w->tail = NULL;
        w->queued--;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        tuples_put(f->fs, t);
        pthread_mutex_lock(&w->mu);
        if (w->nspare < TUPLES_QUEUED) {
            ch_buf_clear(&t->b);
            t->n = 0;
            t->next = w->spare;
            w->spare = t;
            w->nspare++;
        } else {
            tuples_free(t);
        }
    }
    pthread_mutex_unlock(&w->mu);
    ch_facts *fs = f->fs;
    write_dirty(fs); /* all of the interval's firsts, before the checkpoint's transaction */
    if (fs->direct_tx) {
        ch_error cerr;
        int rc = ch_sql_commit(fs->direct, &cerr); /* rolls back after a failed write */
        if (rc < 0 && fs->direct_rc == 0) {
            fs->direct_rc = rc;
            fs->direct_err = cerr;
        }
        fs->direct_tx = false;
    }
    /* From here fs and the results are writer_join's. */
    pthread_mutex_lock(&w->mu);
    w->committed = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    /* Copy the frames this thread committed from the WAL into the database file while the
     * checkpoint's transaction runs on the merge thread (a passive checkpoint never waits for
     * a writer, and a writer never waits for it). With SQLite's automatic checkpoint at the
     * commit above (the connection's is off), the merge thread waited for this copy and its
     * two syncs: 155 of the thread's 1,858 ms on 300k hard records (docs/BENCHMARKS.md
     * section 50). */
    (void)sqlite3_wal_checkpoint_v2(w->sql.db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    return NULL;
}

/* A batch to fill: a spare one, or a new one. NULL when out of memory. */
static tuples *tuples_take(firsts_writer *w)
{
    pthread_mutex_lock(&w->mu);
    tuples *t = w->spare;
    if (t != NULL) {
        w->spare = t->next;
        w->nspare--;
        t->next = NULL;
    }
    pthread_mutex_unlock(&w->mu);
    if (t == NULL && (t = ch_calloc(1, sizeof *t)) != NULL)
        ch_buf_init(&t->b, (size_t)1 << 30);
    return t;
}

/* Hand the batch being filled to the firsts' thread; wait while it is TUPLES_QUEUED behind. */
static void tuples_push(ch_facts *f)
{
    firsts_writer *w = f->w;
    tuples *t = f->tb;
    if (w == NULL || t == NULL || t->n == 0)
        return;
    f->tb = NULL;
    pthread_mutex_lock(&w->mu);
    while (w->queued >= TUPLES_QUEUED)
        pthread_cond_wait(&w->cv, &w->mu);
    if (w->tail != NULL)
        w->tail->next = t;
    else
        w->head = t;
    w->tail = t;
    w->queued++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int ch_facts_writer_start(ch_facts *f, const char *path, ch_error *err)
{
    if (f->w != NULL)
        return 0;
    writer_reap(f);
    firsts_writer *w = ch_calloc(1, sizeof *w);
    if (w == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    /* Opened here, used by the thread only, closed after the join. */
    int rc = ch_sql_connect_one_thread(&w->sql, path, false, &schema, err);
    /* Each batch's firsts are spread over the table (users in name order), so the thread's one
     * transaction touches the same pages batch after batch: with SQLite's default 2 MB cache
     * they were spilled to the WAL again and again. FIRSTS_CACHE holds the tables of a large run
     * (a million firsts). */
    if (rc == 0)
        rc = ch_sql_exec(w->sql.db, w->sql.path, "PRAGMA cache_size = " FIRSTS_CACHE, err);
    /* A statement of 32 upserts that touches pages the transaction changed before keeps their
     * old content in a statement journal, a temporary file by default: 210,000 writes of a page
     * in a 100k-record run of the hard corpus. In memory it is a statement's pages at most. */
    if (rc == 0)
        rc = ch_sql_exec(w->sql.db, w->sql.path, "PRAGMA temp_store = MEMORY", err);
    if (rc == 0) /* the thread copies its frames itself, after the stop (writer_main) */
        sqlite3_wal_autocheckpoint(w->sql.db, 0);
    if (rc < 0) {
        ch_sql_close(&w->sql);
        ch_free(w);
        return rc;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    /* From here the firsts' set is the thread's until ch_facts_writer_stop. Firsts already in it
     * (from before the start) are the checkpoint's: they are not dirty. */
    f->w = w;
    f->fs->direct = &w->sql;
    f->fs->direct_rc = 0;
    if (pthread_create(&w->th, NULL, writer_main, f) != 0) {
        f->w = NULL;
        f->fs->direct = NULL;
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        ch_sql_close(&w->sql);
        ch_free(w);
        return ch_error_set(err, CH_ENOMEM, "cannot start the investigation facts' writer");
    }
    return 0;
}

/* Hand over what is left, let the thread put and write it, and stop it. On a failure of its
 * writes every first of the interval goes back to the checkpoint (upserting one again changes
 * nothing). Returns that failure. */
static int writer_join(ch_facts *f)
{
    firsts_writer *w = f->w;
    if (w == NULL)
        return 0;
    tuples_push(f);
    tuples_free(f->tb);
    f->tb = NULL;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_broadcast(&w->cv);
    while (!w->committed)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
    ch_facts *fs = f->fs;
    int rc = fs->direct_rc;
    if (rc < 0) {
        f->direct_err = fs->direct_err;
        for (size_t i = 0; i < fs->n; i++)
            fs->v[i]->sent = false;
    }
    f->st.saved += fs->direct_saved;
    fs->direct_saved = 0;
    fs->direct = NULL;
    fs->direct_rc = 0;
    fs->ndirty = 0;
    fs->dsorted = 0;
    f->w = NULL;
    f->draining = w;
    return rc;
}

/* Wait for a stopped thread's WAL copy to end, and close its connection. */
static void writer_reap(ch_facts *f)
{
    firsts_writer *w = f->draining;
    if (w == NULL)
        return;
    pthread_join(w->th, NULL);
    while (w->spare != NULL) {
        tuples *t = w->spare;
        w->spare = t->next;
        tuples_free(t);
    }
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    ch_sql_close(&w->sql);
    ch_free(w);
    f->draining = NULL;
}

int ch_facts_writer_stop(ch_facts *f, ch_error *err)
{
    int rc = writer_join(f);
    if (rc < 0 && err != NULL)
        *err = f->direct_err;
    return rc;
}

void ch_facts_stats_get(const ch_facts *f, ch_facts_stats *out)
{
    *out = f->st;
    out->firsts = f->fs->st.firsts;
    out->dropped += f->fs->st.dropped;
}
