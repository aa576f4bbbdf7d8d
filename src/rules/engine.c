/*
 * engine.c - dispatch, correlation state and hits (see engine.h for the semantics).
 *
 * State is one `kstate` per (rule, key) in a chained hash table keyed by a 64-bit hash of the
 * rule index and the key text. Threshold and distinct keep a small array of window entries
 * sorted by event time (events arrive nearly sorted, so an insert is a short move from the
 * back); the fire check is a two-pointer pass over the entries within `within` of the new event,
 * O(entries in 2 x within). first_seen keeps its values sorted by hash (binary search). A
 * sequence keeps, per completed-step count, the latest start time of a partial match (an NFA
 * with one slot per state: a later start can only be better), with the event ids that got it
 * there. Keys that can expire sit in a binary min-heap by expiry time (ties FIFO by insertion
 * order), popped when the watermark passes them: expiry costs O(log keys) per change, never a
 * scan. Memory is accounted per allocation (approximate, excluding allocator overhead).
 */
#include "rules/engine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/field.h"
#include "core/hash.h"
#include "core/heap.h"
#include "core/mem.h"
#include "core/timeparse.h"
#include "enrich/intel_match.h"
#include "rules/expr.h"

#define KEY_MAX 1024       /* bytes of a key text */
#define VALUE_TEXT_MAX 128 /* bytes of a value kept for evidence */
#define MAX_VALUES_PER_EVENT 64
#define MAX_DEPTH 4 /* derived events and rule steps feeding each other */
#define NO_TIME INT64_MIN

typedef struct entry {
    int64_t ts;
    double w;
    uint64_t vh;
    char *text; /* "EVENTID\0VALUE\0" (either may be empty), or NULL */
    uint32_t tlen;
} entry;

typedef struct seqst {
    uint32_t n;     /* steps */
    int64_t *start; /* [n]: start[i] for partial matches that completed i steps (i >= 1) */
    int64_t *last;  /* [n]: time of their latest step */
    char **ids;     /* [n * n]: ids[i * n + j], j < i */
} seqst;

typedef struct kstate {
    struct kstate *hnext;
    uint64_t hash;
    uint32_t rule;
    uint32_t in_heap; /* has an element in the heap (maybe with an older expiry) */
    int64_t expire_at;
    int64_t quiet_until;
    int64_t consumed_until;
    entry *ent;
    uint32_t nent, cap;
    seqst *seq;
    uint32_t klen;
    char key[];
} kstate;

/* A heap element (core/heap.h): key = expiry time, order = insertion count, item = kstate. */
typedef ch_heap_elem hent;

typedef struct rlist {
    uint32_t *v;
    uint32_t n, cap;
} rlist;

typedef struct aslot {
    uint8_t used;
    uint8_t ds;
    ch_sv action;
    rlist rules;
} aslot;

typedef struct seqwait { /* sequence rules with a step on rule i */
    uint32_t rule, step;
} seqwait;

struct ch_engine {
    const ch_ruleset *rs;
    ch_engine_opts o;
    ch_hit_fn fn;
    void *ud;
    ch_expr_scratch *scratch;
    ch_field_cache cache;

    rlist any[CH_DS__COUNT]; /* rules with no action constraint, per dataset */
    aslot *amap;             /* (dataset, action) -> rules */
    size_t amap_cap;
    uint64_t amap_sig[4]; /* action_sig of every action in amap: most events' is not */
    seqwait **waits;      /* per rule: sequence steps waiting on its hits */
    uint32_t *nwaits;

    kstate **tab;
    size_t tab_cap;
    hent *heap;
    size_t heap_n, heap_cap;
    uint64_t order;

    int64_t max_ts, t0;
    uint64_t *rule_hits, *rule_evals;
    ch_engine_stats st;
    ch_buf evidence;
    int depth;
};

/* ---- small helpers ------------------------------------------------------------------------- */

static int rl_add(rlist *l, uint32_t v)
{
    if (l->n == l->cap) {
        uint32_t nc = l->cap ? l->cap * 2 : 4;
        uint32_t *nv = ch_realloc(l->v, nc * sizeof *nv);
        if (nv == NULL)
            return CH_ENOMEM;
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = v;
    return 0;
}

static void account(ch_engine *e, int64_t delta)
{
    e->st.bytes = (uint64_t)((int64_t)e->st.bytes + delta);
    if (e->st.bytes > e->st.bytes_peak)
        e->st.bytes_peak = e->st.bytes;
}

static int64_t watermark(const ch_engine *e)
{
    return e->max_ts == NO_TIME ? NO_TIME : e->max_ts - e->o.lateness_ms;
}

/* ---- dispatch ------------------------------------------------------------------------------ */

/* The action map's hash, on every event: eight bytes a step (the last word overlapping) rather
 * than FNV's byte a step, since event names run 10 to 30 bytes. */
static uint64_t action_hash(uint8_t ds, ch_sv a)
{
    uint64_t h = ((uint64_t)ds + 1) * 0x9E3779B97F4A7C15ull ^ a.n, w;
    size_t i = 0;
    for (; i + 8 <= a.n; i += 8) {
        memcpy(&w, a.p + i, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
    }
    if (i < a.n) {
        if (a.n >= 8) {
            memcpy(&w, a.p + a.n - 8, 8);
        } else {
            w = 0;
            for (size_t k = 0; k < a.n; k++)
                w = (w << 8) | (unsigned char)a.p[k];
        }
        h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
        h ^= h >> 29;
    }
    return h;
}

/* Eight bits from an action's length and end bytes. A pack names a few dozen actions while
 * an account's trail carries hundreds, so most events' actions are absent from the map; the
 * signature set turns away about nine in ten of those before any hashing or probing. */
static inline unsigned action_sig(ch_sv a)
{
    if (a.n == 0)
        return 0;
    return ((unsigned)a.n * 31u + (unsigned char)a.p[0] * 7u + (unsigned char)a.p[a.n - 1]) & 255u;
}

static aslot *amap_slot(ch_engine *e, uint8_t ds, ch_sv a, bool create)
{
    if (e->amap_cap == 0)
        return NULL;
    unsigned sig = action_sig(a);
    if (create)
        e->amap_sig[sig >> 6] |= 1ull << (sig & 63);
    else if (!((e->amap_sig[sig >> 6] >> (sig & 63)) & 1))
        return NULL;
    uint64_t h = action_hash(ds, a);
    for (size_t i = h & (e->amap_cap - 1);; i = (i + 1) & (e->amap_cap - 1)) {
        aslot *s = &e->amap[i];
        if (!s->used) {
            if (!create)
                return NULL;
            s->used = 1;
            s->ds = ds;
            s->action = a;
            return s;
        }
        if (s->ds == ds && s->action.n == a.n && memcmp(s->action.p, a.p, a.n) == 0)
            return s;
    }
}

typedef struct rhints {
    bool any;          /* no constraint at all */
    uint32_t datasets; /* when constrained */
    bool by_action;
    const ch_sv *actions[CH_RULE_MAX_STEPS + 1];
    size_t nactions[CH_RULE_MAX_STEPS + 1];
    int nlists;
    bool never;
} rhints;

/* Union of the hints of the expressions a rule evaluates per event. */
static void rule_hints(const ch_rule *r, rhints *h)
{
    memset(h, 0, sizeof *h);
    const ch_expr *xs[CH_RULE_MAX_STEPS + 1];
    int nx = 0;
    if (r->type == CH_CORR_SEQUENCE) {
        for (uint32_t i = 0; i < r->nsteps; i++)
            if (r->steps[i].where)
                xs[nx++] = r->steps[i].where;
    } else if (r->where) {
        xs[nx++] = r->where;
    }
    if (nx == 0) {
        h->never = true; /* a sequence of rule steps only: driven by hits */
        return;
    }
    bool all_action = true;
    h->datasets = 0;
    for (int i = 0; i < nx; i++) {
        ch_expr_hints eh;
        ch_expr_dispatch_hints(xs[i], &eh);
        h->datasets |= eh.by_dataset ? eh.datasets : ((1u << CH_DS__COUNT) - 1);
        if (!eh.by_action)
            all_action = false;
        h->actions[i] = eh.actions;
        h->nactions[i] = eh.nactions;
    }
    h->nlists = nx;
    h->by_action = all_action;
}

static int build_dispatch(ch_engine *e)
{
    const ch_ruleset *rs = e->rs;
    size_t nact = 0;
    rhints h;
    for (uint32_t i = 0; i < rs->n; i++) {
        rule_hints(rs->rules[i], &h);
        if (h.by_action)
            for (int k = 0; k < h.nlists; k++)
                nact += h.nactions[k] * CH_DS__COUNT;
    }
    e->amap_cap = 16;
    while (e->amap_cap < nact * 2 + 16)
        e->amap_cap *= 2;
    e->amap = ch_calloc(e->amap_cap, sizeof *e->amap);
    if (e->amap == NULL)
        return CH_ENOMEM;
    for (uint32_t i = 0; i < rs->n; i++) {
        rule_hints(rs->rules[i], &h);
        if (h.never)
            continue;
        for (unsigned ds = 0; ds < CH_DS__COUNT; ds++) {
            if (!(h.datasets & (1u << ds)))
                continue;
            if (!h.by_action) {
                if (rl_add(&e->any[ds], i) < 0)
                    return CH_ENOMEM;
                continue;
            }
            for (int k = 0; k < h.nlists; k++)
                for (size_t a = 0; a < h.nactions[k]; a++) {
                    aslot *s = amap_slot(e, ds, h.actions[k][a], true);
                    /* The same rule may list an action twice (two steps): add it once. */
                    if (s->rules.n > 0 && s->rules.v[s->rules.n - 1] == i)
                        continue;
                    if (rl_add(&s->rules, i) < 0)
                        return CH_ENOMEM;
                }
        }
    }
    e->waits = ch_calloc(rs->n ? rs->n : 1, sizeof *e->waits);
    e->nwaits = ch_calloc(rs->n ? rs->n : 1, sizeof *e->nwaits);
    if (e->waits == NULL || e->nwaits == NULL)
        return CH_ENOMEM;
    for (uint32_t i = 0; i < rs->n; i++) {
        const ch_rule *r = rs->rules[i];
        for (uint32_t s = 0; s < r->nsteps; s++) {
            if (r->steps[s].rule_id == NULL)
                continue;
            uint32_t t = r->steps[s].rule_idx;
            seqwait *nw = ch_realloc(e->waits[t], (e->nwaits[t] + 1) * sizeof *nw);
            if (nw == NULL)
                return CH_ENOMEM;
            nw[e->nwaits[t]++] = (seqwait){i, s};
            e->waits[t] = nw;
        }
    }
    return 0;
}

/* ---- key table and heap -------------------------------------------------------------------- */

/* The heap is lazy: a key is pushed once with its expiry at that time; later changes only
 * update kstate.expire_at (O(1) per event, no sift through a cold heap). When an element
 * reaches the top and the watermark has passed it, the key is freed if its current expiry has
 * passed too, pushed again with its current expiry if not, and dropped from the heap if it
 * no longer expires (first_seen). Keys are freed only here (and by ch_engine_free), so a heap
 * element never points at a freed key. */
static int heap_push(ch_engine *e, kstate *k, int64_t at)
{
    if (e->heap_n == e->heap_cap) {
        size_t nc = e->heap_cap ? e->heap_cap * 2 : 64;
        hent *nh = ch_realloc(e->heap, nc * sizeof *nh);
        if (nh == NULL)
            return CH_ENOMEM;
        account(e, (int64_t)((nc - e->heap_cap) * sizeof *nh));
        e->heap = nh;
        e->heap_cap = nc;
    }
    ch_heap_push(e->heap, &e->heap_n, (hent){at, e->order++, k});
    k->in_heap = 1;
    return 0;
}

/* Set the key's expiry (NO_TIME: never). */
static int heap_set(ch_engine *e, kstate *k, int64_t at)
{
    k->expire_at = at;
    if (at == NO_TIME || k->in_heap)
        return 0;
    return heap_push(e, k, at);
}

static void entry_free(ch_engine *e, entry *en)
{
    if (en->text) {
        account(e, -(int64_t)en->tlen);
        ch_free(en->text);
        en->text = NULL;
    }
}

static void seq_free(ch_engine *e, seqst *s)
{
    if (s == NULL)
        return;
    for (uint32_t i = 0; i < s->n * s->n; i++)
        if (s->ids[i]) {
            account(e, -(int64_t)(strlen(s->ids[i]) + 1));
            ch_free(s->ids[i]);
        }
    account(e, -(int64_t)(sizeof *s + s->n * (2 * sizeof(int64_t) + s->n * sizeof(char *))));
    ch_free(s->start);
    ch_free(s->last);
    ch_free(s->ids);
    ch_free(s);
}

static void key_free(ch_engine *e, kstate *k)
{
    for (uint32_t i = 0; i < k->nent; i++)
        entry_free(e, &k->ent[i]);
    account(e, -(int64_t)(k->cap * sizeof(entry)));
    ch_free(k->ent);
    seq_free(e, k->seq);
    account(e, -(int64_t)(sizeof *k + k->klen));
    ch_free(k);
    e->st.keys--;
}

static void key_unlink(ch_engine *e, kstate *k)
{
    kstate **pp = &e->tab[k->hash & (e->tab_cap - 1)];
    while (*pp != k)
        pp = &(*pp)->hnext;
    *pp = k->hnext;
    key_free(e, k);
}

static int tab_grow(ch_engine *e)
{
    size_t nc = e->tab_cap ? e->tab_cap * 2 : 1024;
    kstate **nt = ch_calloc(nc, sizeof *nt);
    if (nt == NULL)
        return CH_ENOMEM;
    for (size_t i = 0; i < e->tab_cap; i++)
        for (kstate *k = e->tab[i], *nx; k; k = nx) {
            nx = k->hnext;
            k->hnext = nt[k->hash & (nc - 1)];
            nt[k->hash & (nc - 1)] = k;
        }
    account(e, (int64_t)((nc - e->tab_cap) * sizeof *nt));
    ch_free(e->tab);
    e->tab = nt;
    e->tab_cap = nc;
    return 0;
}

/* Find or (create) the state of (rule, key). NULL when absent and not created, or refused by
 * a cap (counted) or memory. */
static kstate *key_get(ch_engine *e, uint32_t rule, const char *key, uint32_t klen, bool create)
{
    uint64_t h =
        ch_hash_mix64(ch_hash_fnv1a(ch_hash_fnv1a(CH_HASH_SEED, &rule, sizeof rule), key, klen));
    if (e->tab_cap) {
        for (kstate *k = e->tab[h & (e->tab_cap - 1)]; k; k = k->hnext)
            if (k->hash == h && k->rule == rule && k->klen == klen &&
                memcmp(k->key, key, klen) == 0)
                return k;
    }
    if (!create)
        return NULL;
    size_t need = sizeof(kstate) + klen;
    if (e->st.keys >= e->o.max_keys || e->st.bytes + need > e->o.max_bytes) {
        e->st.cap_hits++;
        return NULL;
    }
    if ((e->tab_cap == 0 || e->st.keys >= e->tab_cap) && tab_grow(e) < 0)
        return NULL;
    kstate *k = ch_calloc(1, need);
    if (k == NULL)
        return NULL;
    k->hash = h;
    k->rule = rule;
    k->klen = klen;
    memcpy(k->key, key, klen);
    k->expire_at = NO_TIME;
    k->quiet_until = NO_TIME;
    k->consumed_until = NO_TIME;
    k->hnext = e->tab[h & (e->tab_cap - 1)];
    e->tab[h & (e->tab_cap - 1)] = k;
    account(e, (int64_t)need);
    if (++e->st.keys > e->st.keys_peak)
        e->st.keys_peak = e->st.keys;
    return k;
}

static void expire(ch_engine *e)
{
    int64_t wm = watermark(e);
    while (e->heap_n > 0 && e->heap[0].key < wm) {
        kstate *k = ch_heap_pop(e->heap, &e->heap_n).item;
        k->in_heap = 0;
        if (k->expire_at == NO_TIME)
            continue;
        if (k->expire_at < wm) {
            key_unlink(e, k);
            e->st.expired++;
        } else {
            heap_push(e, k, k->expire_at);
        }
    }
}

void ch_engine_advance(ch_engine *e, int64_t now_ms)
{
    if (e->max_ts == NO_TIME || now_ms > e->max_ts)
        e->max_ts = now_ms;
    e->st.watermark_ms = watermark(e);
    expire(e);
}

/* ---- keys and values of an event ----------------------------------------------------------- */

/* The key text: the first value of each path, joined by 0x1f. false when one is missing. */
static bool make_key(ch_engine *e, ch_field_ref *const *by, uint32_t nby, const ch_event *ev,
                     char *out, uint32_t *len)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < nby; i++) {
        ch_value v;
        if (!ch_field_first(by[i], ev, &e->cache, &v))
            return false;
        char buf[CH_VALUE_TEXT_MAX];
        ch_sv t = ch_value_text(&v, buf);
        if (t.n == 0)
            return false;
        if (i > 0 && n < KEY_MAX)
            out[n++] = '\x1f';
        uint32_t c = t.n < KEY_MAX - n ? t.n : KEY_MAX - n;
        memcpy(out + n, t.p, c);
        n += c;
    }
    *len = n;
    return true;
}

typedef struct vals {
    uint32_t n;
    uint64_t vh[MAX_VALUES_PER_EVENT];
    char text[MAX_VALUES_PER_EVENT][VALUE_TEXT_MAX];
    uint32_t tlen[MAX_VALUES_PER_EVENT];
    double sum;
    uint64_t count;
} vals;

static bool collect_value(void *ctx, const ch_value *v)
{
    vals *vs = ctx;
    vs->count++;
    switch (v->type) {
    case CH_V_INT:
        vs->sum += (double)v->u.i;
        break;
    case CH_V_DBL:
        vs->sum += v->u.d;
        break;
    case CH_V_STR: {
        bool is_int;
        int64_t i;
        double d;
        if (ch_parse_number(v->u.s.p, v->u.s.n, &is_int, &i, &d))
            vs->sum += d;
        break;
    }
    default:
        break;
    }
    if (vs->n >= MAX_VALUES_PER_EVENT || v->type == CH_V_OBJ)
        return false;
    char buf[CH_VALUE_TEXT_MAX];
    ch_sv t = ch_value_text(v, buf);
    if (t.n == 0)
        return false;
    /* Saved with the state (entry.vh) and compared after a reload: plain FNV-1a, fixed. */
    uint64_t h = ch_hash_fnv1a(CH_HASH_SEED, t.p, t.n);
    for (uint32_t i = 0; i < vs->n; i++)
        if (vs->vh[i] == h)
            return false;
    uint32_t c = t.n < VALUE_TEXT_MAX - 1 ? t.n : VALUE_TEXT_MAX - 1;
    memcpy(vs->text[vs->n], t.p, c);
    vs->text[vs->n][c] = '\0';
    vs->tlen[vs->n] = c;
    vs->vh[vs->n++] = h;
    return false;
}

static char *entry_text(ch_engine *e, const ch_event *ev, const char *val, uint32_t vlen,
                        uint32_t *tlen)
{
    uint32_t idn = ev->id.n < 128 ? ev->id.n : 128;
    if (idn == 0 && vlen == 0)
        return NULL;
    char *t = ch_malloc(idn + vlen + 2);
    if (t == NULL)
        return NULL;
    if (idn)
        memcpy(t, ev->id.p, idn);
    t[idn] = '\0';
    if (vlen)
        memcpy(t + idn + 1, val, vlen);
    t[idn + 1 + vlen] = '\0';
    *tlen = idn + vlen + 2;
    account(e, *tlen);
    return t;
}

/* ---- hits ---------------------------------------------------------------------------------- */

static int process_event(ch_engine *e, const ch_event *ev);
static int seq_on_hit(ch_engine *e, uint32_t target, const ch_event *ev, int64_t ts);

typedef struct hitctx {
    ch_sv ids[CH_HIT_MAX_EVENT_IDS];
    uint32_t nids;
    uint64_t count;
    int64_t first;
} hitctx;

static void hc_add_id(hitctx *hc, const char *id)
{
    if (id && *id && hc->nids < CH_HIT_MAX_EVENT_IDS)
        hc->ids[hc->nids++] = (ch_sv){id, (uint32_t)strlen(id)};
}

static void respond(ch_engine *e, const ch_rule *r, const ch_event *ev, int64_t ts)
{
    for (uint32_t i = 0; i < r->nresponses; i++) {
        const ch_rule_response *rp = &r->responses[i];
        if (rp->kind == CH_RESP_REFSET) {
            ch_refsets *reg = e->o.refsets != NULL ? e->o.refsets : e->rs->refsets;
            ch_refset *set = reg ? ch_refsets_get(reg, rp->name, strlen(rp->name)) : NULL;
            vals vs;
            memset(&vs, 0, sizeof vs);
            if (set != NULL)
                ch_field_visit(rp->field, ev, &e->cache, collect_value, &vs);
            ch_refset_meta m = ch_refset_meta_make(r->info.id, ts);
            m.valid_from = ts;
            if (rp->ttl_ms > 0)
                m.expiry = ts + rp->ttl_ms;
            for (uint32_t v = 0; v < vs.n; v++) {
                ch_error err;
                if (ch_refset_add(set, vs.text[v], vs.tlen[v], &m, &err) < 0)
                    e->st.response_errors++;
                else if (e->o.on_refset_add != NULL)
                    e->o.on_refset_add(e->o.refset_ud, rp->name, vs.text[v], vs.tlen[v], &m);
            }
            if (set == NULL)
                e->st.response_errors++;
        } else if (e->depth < MAX_DEPTH) {
            /* A derived event: the firing event's fields (so keys and raw paths still read),
             * relabelled as coinhound's own. */
            ch_event d = *ev;
            d.ts_ms = ts;
            d.dataset = CH_DS_UNKNOWN;
            d.action = (ch_sv){rp->name, (uint32_t)strlen(rp->name)};
            d.provider = CH_SV("coinhound");
            d.category = CH_SV("rule");
            d.type = CH_SV("info");
            e->st.derived++;
            e->depth++;
            process_event(e, &d);
            e->depth--;
        }
    }
}

static int emit(ch_engine *e, uint32_t ri, const ch_event *ev, int64_t ts, hitctx *hc)
{
    const ch_rule *r = e->rs->rules[ri];
    ch_rule_hit h;
    memset(&h, 0, sizeof h);
    h.rule = &r->info;
    h.ts_ms = ts;
    h.first_ms = hc->first == NO_TIME ? ts : hc->first;
    char ibuf[CH_VALUE_TEXT_MAX];
    if (r->index != NULL) {
        h.index_field = ch_field_ref_path(r->index);
        ch_value v;
        if (ch_field_first(r->index, ev, &e->cache, &v)) {
            h.index_value = ch_value_text(&v, ibuf);
            if (h.index_value.n == 0)
                h.index_value.p = NULL;
        }
    }
    h.user = ev->user_name;
    if (hc->nids == 0 && ev->id.n)
        hc->ids[hc->nids++] = ev->id;
    h.event_ids = hc->ids;
    h.nevent_ids = hc->nids;
    h.event_count = hc->count ? hc->count : 1;
    /* A threat-intelligence match on the firing event (enrich/intel_match.h) names the
     * indicator, feed and confidence, whatever the rule: that is what an analyst checks first. */
    if (ev->threat.set != NULL) {
        if (e->evidence.len)
            ch_buf_adds(&e->evidence, "; ");
        ch_threat_describe(&ev->threat, &e->evidence);
    }
    h.evidence = e->evidence.data ? e->evidence.data : "";
    h.event = ev;
    e->st.hits++;
    e->rule_hits[ri]++;
    if (e->fn)
        e->fn(&h, e->ud);
    respond(e, r, ev, ts);
    if (e->nwaits[ri] > 0 && e->depth < MAX_DEPTH) {
        e->depth++;
        seq_on_hit(e, ri, ev, ts);
        e->depth--;
    }
    return 1;
}

static void ev_begin(ch_engine *e) { ch_buf_clear(&e->evidence); }

static void key_text_add(ch_engine *e, const ch_rule *r, const kstate *k)
{
    if (r->nby == 0)
        return;
    ch_buf_adds(&e->evidence, " for ");
    const char *p = k->key, *end = k->key + k->klen;
    for (uint32_t i = 0; i < r->nby && p <= end; i++) {
        const char *q = memchr(p, '\x1f', (size_t)(end - p));
        if (q == NULL || i + 1 == r->nby)
            q = end;
        ch_buf_printf(&e->evidence, "%s%s=%.*s", i ? ", " : "", ch_field_ref_path(r->by[i]),
                      (int)(q - p), p);
        p = q + 1;
    }
}

static void dur_text(ch_buf *b, int64_t ms)
{
    if (ms % 86400000 == 0)
        ch_buf_printf(b, "%lldd", (long long)(ms / 86400000));
    else if (ms % 3600000 == 0)
        ch_buf_printf(b, "%lldh", (long long)(ms / 3600000));
    else if (ms % 60000 == 0)
        ch_buf_printf(b, "%lldm", (long long)(ms / 60000));
    else if (ms % 1000 == 0)
        ch_buf_printf(b, "%llds", (long long)(ms / 1000));
    else
        ch_buf_printf(b, "%lldms", (long long)ms);
}

/* ---- threshold and distinct ---------------------------------------------------------------- */

static int ent_reserve(ch_engine *e, kstate *k)
{
    if (k->nent < k->cap)
        return 0;
    uint32_t nc = k->cap ? k->cap * 2 : 4;
    if (nc > e->o.max_entries)
        nc = e->o.max_entries;
    if (nc <= k->cap || e->st.bytes + (nc - k->cap) * sizeof(entry) > e->o.max_bytes)
        return CH_ELIMIT;
    entry *ne = ch_realloc(k->ent, nc * sizeof *ne);
    if (ne == NULL)
        return CH_ENOMEM;
    account(e, (int64_t)((nc - k->cap) * sizeof *ne));
    k->ent = ne;
    k->cap = nc;
    return 0;
}

static void ent_remove(ch_engine *e, kstate *k, uint32_t i)
{
    entry_free(e, &k->ent[i]);
    memmove(&k->ent[i], &k->ent[i + 1], (k->nent - i - 1) * sizeof(entry));
    k->nent--;
}

/* Insert keeping event-time order (stable: equal times keep arrival order). When full, the
 * oldest entry makes room (counted as a cap hit). */
static int ent_insert(ch_engine *e, kstate *k, const entry *en)
{
    int rc = ent_reserve(e, k);
    if (rc == CH_ELIMIT) {
        e->st.cap_hits++;
        if (k->nent == 0 || k->ent[0].ts > en->ts)
            return CH_ELIMIT;
        ent_remove(e, k, 0);
    } else if (rc < 0) {
        return rc;
    }
    uint32_t i = k->nent;
    while (i > 0 && k->ent[i - 1].ts > en->ts)
        i--;
    memmove(&k->ent[i + 1], &k->ent[i], (k->nent - i) * sizeof(entry));
    k->ent[i] = *en;
    k->nent++;
    return 0;
}

static void ent_prune(ch_engine *e, kstate *k, int64_t before)
{
    uint32_t n = 0;
    while (n < k->nent && k->ent[n].ts < before)
        entry_free(e, &k->ent[n++]);
    if (n) {
        memmove(k->ent, k->ent + n, (k->nent - n) * sizeof(entry));
        k->nent -= n;
    }
}

/* A window [ts_i, ts_i + within] containing t with enough weight: returns true with [*lo, *hi)
 * the entries in it. */
static bool window_find(const kstate *k, int64_t t, int64_t within, double need, uint32_t *lo,
                        uint32_t *hi)
{
    uint32_t i = 0, j = 0;
    double sum = 0;
    while (i < k->nent && k->ent[i].ts < t - within)
        i++;
    j = i;
    for (; i < k->nent && k->ent[i].ts <= t; i++) {
        while (j < k->nent && k->ent[j].ts <= k->ent[i].ts + within)
            sum += k->ent[j++].w;
        if (sum >= need - 1e-9) {
            *lo = i;
            *hi = j;
            return true;
        }
        sum -= k->ent[i].w;
    }
    return false;
}

static int window_rule(ch_engine *e, uint32_t ri, const ch_event *ev, const char *key,
                       uint32_t klen)
{
    const ch_rule *r = e->rs->rules[ri];
    int64_t ts = ev->ts_ms;
    vals vs;
    memset(&vs, 0, sizeof vs);
    double w = 1;
    if (r->type == CH_CORR_THRESHOLD && r->sum != NULL) {
        ch_field_visit(r->sum, ev, &e->cache, collect_value, &vs);
        w = r->sum_count ? (double)vs.count : vs.sum;
        if (!(w > 0) || !isfinite(w))
            return 0;
    } else if (r->type == CH_CORR_DISTINCT) {
        ch_field_visit(r->field, ev, &e->cache, collect_value, &vs);
        if (vs.n == 0)
            return 0;
    }
    kstate *k = key_get(e, ri, key, klen, true);
    if (k == NULL)
        return 0;
    if (k->consumed_until != NO_TIME && ts <= k->consumed_until)
        return 0; /* belongs to a window that already fired */
    int64_t wm = watermark(e);
    if (wm != NO_TIME)
        ent_prune(e, k, wm - r->within_ms);
    if (r->type == CH_CORR_DISTINCT) {
        for (uint32_t v = 0; v < vs.n; v++) {
            entry en = {ts, 1, vs.vh[v], NULL, 0};
            for (uint32_t i = 0; i < k->nent; i++)
                if (k->ent[i].vh == en.vh) {
                    if (k->ent[i].ts >= ts)
                        goto next_value;
                    ent_remove(e, k, i);
                    break;
                }
            en.text = entry_text(e, ev, vs.text[v], vs.tlen[v], &en.tlen);
            if (ent_insert(e, k, &en) < 0)
                entry_free(e, &en);
        next_value:;
        }
    } else {
        entry en = {ts, w, 0, NULL, 0};
        en.text = entry_text(e, ev, NULL, 0, &en.tlen);
        if (ent_insert(e, k, &en) < 0)
            entry_free(e, &en);
    }
    int64_t newest = k->nent ? k->ent[k->nent - 1].ts : ts;
    int64_t exp = newest + r->within_ms;
    if (k->quiet_until != NO_TIME && k->quiet_until > exp)
        exp = k->quiet_until;
    heap_set(e, k, exp);
    if (k->quiet_until != NO_TIME && ts < k->quiet_until)
        return 0;
    uint32_t lo, hi;
    if (!window_find(k, ts, r->within_ms, r->count, &lo, &hi))
        return 0;
    hitctx hc;
    memset(&hc, 0, sizeof hc);
    hc.first = k->ent[lo].ts;
    double total = 0;
    for (uint32_t i = lo; i < hi; i++) {
        total += k->ent[i].w;
        hc.count++;
        hc_add_id(&hc, k->ent[i].text);
    }
    ev_begin(e);
    if (r->type == CH_CORR_DISTINCT) {
        ch_buf_printf(&e->evidence, "%llu distinct %s", (unsigned long long)hc.count,
                      ch_field_ref_path(r->field));
    } else if (r->sum != NULL) {
        ch_buf_printf(&e->evidence, "%s%s%s = %.15g over %llu events",
                      r->sum_count ? "count(" : "sum of ", ch_field_ref_path(r->sum),
                      r->sum_count ? ")" : "", total, (unsigned long long)hc.count);
    } else {
        ch_buf_printf(&e->evidence, "%llu events", (unsigned long long)hc.count);
    }
    key_text_add(e, r, k);
    ch_buf_adds(&e->evidence, " within ");
    dur_text(&e->evidence, r->within_ms);
    if (r->type == CH_CORR_DISTINCT) {
        ch_buf_adds(&e->evidence, ":");
        for (uint32_t i = lo; i < hi && i < lo + 16; i++) {
            const char *t = k->ent[i].text;
            ch_buf_printf(&e->evidence, "%s %s", i > lo ? "," : "", t ? t + strlen(t) + 1 : "");
        }
    }
    /* The episode: its entries are consumed and the key stays quiet for `within`. Ids borrow
     * from the entries, so they are freed only after the hit was delivered. */
    int64_t hi_ts = k->ent[hi - 1].ts;
    k->quiet_until = ts + r->within_ms;
    k->consumed_until = hi_ts;
    int rc = emit(e, ri, ev, ts, &hc);
    /* emit may have re-entered the engine (derived events) but never for this rule's own key
     * state with a freed pointer: keys are freed only by expire(), which runs at the top. */
    ent_prune(e, k, hi_ts + 1);
    heap_set(e, k, k->quiet_until > ts + r->within_ms ? k->quiet_until : ts + r->within_ms);
    return rc;
}

/* ---- first_seen ---------------------------------------------------------------------------- */

static int first_seen_rule(ch_engine *e, uint32_t ri, const ch_event *ev, const char *key,
                           uint32_t klen)
{
    const ch_rule *r = e->rs->rules[ri];
    vals vs;
    memset(&vs, 0, sizeof vs);
    ch_field_visit(r->field, ev, &e->cache, collect_value, &vs);
    if (vs.n == 0)
        return 0;
    kstate *k = key_get(e, ri, key, klen, true);
    if (k == NULL)
        return 0;
    int64_t learning = r->learning_ms >= 0 ? r->learning_ms : e->o.learning_ms;
    bool learn = ev->ts_ms < e->t0 + learning;
    uint32_t nnew = 0, newv[MAX_VALUES_PER_EVENT];
    for (uint32_t v = 0; v < vs.n; v++) {
        /* binary search by hash */
        uint32_t lo = 0, hi = k->nent;
        while (lo < hi) {
            uint32_t mid = (lo + hi) / 2;
            if (k->ent[mid].vh < vs.vh[v])
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < k->nent && k->ent[lo].vh == vs.vh[v]) {
            if (ev->ts_ms > k->ent[lo].ts)
                k->ent[lo].ts = ev->ts_ms;
            continue;
        }
        int rc = ent_reserve(e, k);
        if (rc < 0) {
            e->st.cap_hits++;
            continue;
        }
        memmove(&k->ent[lo + 1], &k->ent[lo], (k->nent - lo) * sizeof(entry));
        k->ent[lo] = (entry){ev->ts_ms, 1, vs.vh[v], NULL, 0};
        k->nent++;
        newv[nnew++] = v;
    }
    if (learn || nnew == 0)
        return 0;
    hitctx hc;
    memset(&hc, 0, sizeof hc);
    hc.first = ev->ts_ms;
    hc.count = 1;
    ev_begin(e);
    ch_buf_printf(&e->evidence, "first %s", ch_field_ref_path(r->field));
    key_text_add(e, r, k);
    ch_buf_adds(&e->evidence, ":");
    for (uint32_t i = 0; i < nnew && i < 16; i++)
        ch_buf_printf(&e->evidence, "%s %s", i ? "," : "", vs.text[newv[i]]);
    return emit(e, ri, ev, ev->ts_ms, &hc);
}

/* ---- sequence ------------------------------------------------------------------------------ */

static seqst *seq_new(ch_engine *e, uint32_t n)
{
    seqst *s = ch_calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->n = n;
    s->start = ch_malloc(n * sizeof *s->start);
    s->last = ch_malloc(n * sizeof *s->last);
    s->ids = ch_calloc((size_t)n * n, sizeof *s->ids);
    if (s->start == NULL || s->last == NULL || s->ids == NULL) {
        ch_free(s->start);
        ch_free(s->last);
        ch_free(s->ids);
        ch_free(s);
        return NULL;
    }
    for (uint32_t i = 0; i < n; i++)
        s->start[i] = s->last[i] = NO_TIME;
    account(e, (int64_t)(sizeof *s + n * (2 * sizeof(int64_t) + n * sizeof(char *))));
    return s;
}

static void seq_clear_slot(ch_engine *e, seqst *s, uint32_t i)
{
    for (uint32_t j = 0; j < s->n; j++) {
        char **p = &s->ids[i * s->n + j];
        if (*p) {
            account(e, -(int64_t)(strlen(*p) + 1));
            ch_free(*p);
            *p = NULL;
        }
    }
    s->start[i] = s->last[i] = NO_TIME;
}

static char *dup_id(ch_engine *e, const char *p, size_t n)
{
    if (n == 0)
        return NULL;
    if (n > 128)
        n = 128;
    char *c = ch_strndup(p, n);
    if (c)
        account(e, (int64_t)n + 1);
    return c;
}

/* The event ev (at ts) completed step j for key (k). */
static int seq_advance(ch_engine *e, uint32_t ri, kstate *k, uint32_t j, const ch_event *ev,
                       int64_t ts)
{
    const ch_rule *r = e->rs->rules[ri];
    uint32_t n = r->nsteps;
    if (k->seq == NULL && (k->seq = seq_new(e, n)) == NULL)
        return CH_ENOMEM;
    seqst *s = k->seq;
    int64_t wm = watermark(e);
    /* Partial matches whose start left the window can never complete. */
    for (uint32_t i = 1; i < n; i++)
        if (s->start[i] != NO_TIME && wm != NO_TIME && s->start[i] < wm - r->within_ms)
            seq_clear_slot(e, s, i);
    int fired = 0;
    if (j == 0) {
        if (s->start[1] == NO_TIME || ts >= s->start[1]) {
            seq_clear_slot(e, s, 1);
            s->start[1] = s->last[1] = ts;
            s->ids[1 * n + 0] = dup_id(e, ev->id.p, ev->id.n);
        }
    } else if (s->start[j] != NO_TIME && ts >= s->last[j] && ts - s->start[j] <= r->within_ms) {
        if (j + 1 == n) {
            hitctx hc;
            memset(&hc, 0, sizeof hc);
            hc.first = s->start[j];
            hc.count = n;
            for (uint32_t i = 0; i < j; i++)
                hc_add_id(&hc, s->ids[j * n + i]);
            char idbuf[129];
            snprintf(idbuf, sizeof idbuf, "%.*s", (int)(ev->id.n < 128 ? ev->id.n : 128),
                     ev->id.p ? ev->id.p : "");
            hc_add_id(&hc, idbuf);
            ev_begin(e);
            ch_buf_printf(&e->evidence, "%u steps in order", n);
            key_text_add(e, r, k);
            ch_buf_adds(&e->evidence, " within ");
            dur_text(&e->evidence, ts - s->start[j]);
            ch_buf_adds(&e->evidence, " (limit ");
            dur_text(&e->evidence, r->within_ms);
            ch_buf_adds(&e->evidence, ")");
            /* Copy the ids out before the state is reset: the hit borrows them. */
            char ids[CH_RULE_MAX_STEPS][129];
            for (uint32_t i = 0; i < hc.nids; i++) {
                snprintf(ids[i], sizeof ids[i], "%.*s", (int)hc.ids[i].n, hc.ids[i].p);
                hc.ids[i] = (ch_sv){ids[i], (uint32_t)strlen(ids[i])};
            }
            for (uint32_t i = 1; i < n; i++)
                seq_clear_slot(e, s, i);
            heap_set(e, k, ts); /* nothing in progress: free once the watermark passes */
            fired = emit(e, ri, ev, ts, &hc);
            return fired;
        }
        if (s->start[j + 1] == NO_TIME || s->start[j] >= s->start[j + 1]) {
            int64_t st0 = s->start[j];
            char *moved[CH_RULE_MAX_STEPS] = {0};
            for (uint32_t i = 0; i < j; i++)
                moved[i] = s->ids[j * n + i]
                               ? dup_id(e, s->ids[j * n + i], strlen(s->ids[j * n + i]))
                               : NULL;
            seq_clear_slot(e, s, j + 1);
            s->start[j + 1] = st0;
            s->last[j + 1] = ts;
            for (uint32_t i = 0; i < j; i++)
                s->ids[(j + 1) * n + i] = moved[i];
            s->ids[(j + 1) * n + j] = dup_id(e, ev->id.p, ev->id.n);
        }
    }
    int64_t best = NO_TIME;
    for (uint32_t i = 1; i < n; i++)
        if (s->start[i] != NO_TIME && s->start[i] > best)
            best = s->start[i];
    heap_set(e, k, best == NO_TIME ? NO_TIME : best + r->within_ms);
    if (best == NO_TIME) /* nothing in progress: the key is free */
        heap_set(e, k, ts);
    return fired;
}

static int seq_step(ch_engine *e, uint32_t ri, uint32_t j, const ch_event *ev, int64_t ts)
{
    const ch_rule *r = e->rs->rules[ri];
    const ch_rule_step *st = &r->steps[j];
    char key[KEY_MAX];
    uint32_t klen = 0;
    bool ok = st->nby ? make_key(e, st->by, st->nby, ev, key, &klen)
                      : make_key(e, r->by, r->nby, ev, key, &klen);
    if (!ok) {
        e->st.no_key++;
        return 0;
    }
    kstate *k = key_get(e, ri, key, klen, j == 0);
    if (k == NULL)
        return 0;
    return seq_advance(e, ri, k, j, ev, ts);
}

static int seq_on_hit(ch_engine *e, uint32_t target, const ch_event *ev, int64_t ts)
{
    int hits = 0;
    for (uint32_t w = 0; w < e->nwaits[target]; w++) {
        /* Later steps first, so one hit never advances two steps of the same rule. */
        uint32_t idx = e->nwaits[target] - 1 - w;
        int rc = seq_step(e, e->waits[target][idx].rule, e->waits[target][idx].step, ev, ts);
        if (rc > 0)
            hits += rc;
    }
    return hits;
}

/* ---- per event ----------------------------------------------------------------------------- */

static bool eval(ch_engine *e, uint32_t ri, const ch_expr *x, const ch_event *ev)
{
    e->st.evaluations++;
    e->rule_evals[ri]++;
    return ch_expr_eval(x, ev, e->scratch);
}

static int run_rule(ch_engine *e, uint32_t ri, const ch_event *ev, bool late)
{
    const ch_rule *r = e->rs->rules[ri];
    if (r->type == CH_CORR_SEQUENCE) {
        if (late) {
            e->st.late++;
            return 0;
        }
        if (r->where && !eval(e, ri, r->where, ev))
            return 0;
        int hits = 0;
        for (uint32_t j = r->nsteps; j-- > 0;)
            if (r->steps[j].where && eval(e, ri, r->steps[j].where, ev)) {
                int rc = seq_step(e, ri, j, ev, ev->ts_ms);
                if (rc > 0)
                    hits += rc;
            }
        return hits;
    }
    if (!eval(e, ri, r->where, ev))
        return 0;
    if (r->type == CH_CORR_NONE) {
        hitctx hc;
        memset(&hc, 0, sizeof hc);
        hc.first = ev->ts_ms;
        hc.count = 1;
        ev_begin(e);
        ch_buf_printf(&e->evidence, "%.*s", (int)(ev->action.n < 200 ? ev->action.n : 200),
                      ev->action.p ? ev->action.p : "");
        if (ev->user_name.n)
            ch_buf_printf(&e->evidence, " by %.*s",
                          (int)(ev->user_name.n < 200 ? ev->user_name.n : 200), ev->user_name.p);
        return emit(e, ri, ev, ev->ts_ms, &hc);
    }
    if (late) {
        e->st.late++;
        return 0;
    }
    char key[KEY_MAX];
    uint32_t klen = 0;
    if (!make_key(e, r->by, r->nby, ev, key, &klen)) {
        e->st.no_key++;
        return 0;
    }
    if (r->type == CH_CORR_FIRST_SEEN)
        return first_seen_rule(e, ri, ev, key, klen);
    return window_rule(e, ri, ev, key, klen);
}

static int process_event(ch_engine *e, const ch_event *ev)
{
    int64_t wm = watermark(e);
    bool late = wm != NO_TIME && ev->ts_ms < wm;
    ch__rule_env_set_time(ev->ts_ms);
    /* e->cache needs no reset per event: a hit is checked against the event's own header. */
    unsigned ds = (unsigned)ev->dataset < CH_DS__COUNT ? (unsigned)ev->dataset : 0;
    int hits = 0;
    const rlist *lists[2] = {&e->any[ds], NULL};
    aslot *s = amap_slot(e, (uint8_t)ds, ev->action, false);
    if (s != NULL)
        lists[1] = &s->rules;
    for (int l = 0; l < 2; l++) {
        if (lists[l] == NULL)
            continue;
        for (uint32_t i = 0; i < lists[l]->n; i++) {
            int rc = run_rule(e, lists[l]->v[i], ev, late);
            if (rc > 0)
                hits += rc;
        }
    }
    return hits;
}

int ch_engine_process(ch_engine *e, const ch_event *ev)
{
    e->st.events++;
    if (e->t0 == NO_TIME)
        e->t0 = ev->ts_ms;
    if (e->max_ts == NO_TIME || ev->ts_ms > e->max_ts) {
        e->max_ts = ev->ts_ms;
        e->st.watermark_ms = watermark(e);
        expire(e);
    }
    e->depth = 0;
    return process_event(e, ev);
}

/* ---- lifetime and stats -------------------------------------------------------------------- */

int ch_engine_new(const ch_ruleset *rs, const ch_engine_opts *opts, ch_hit_fn fn, void *ud,
                  ch_engine **out, ch_error *err)
{
    *out = NULL;
    ch_engine *e = ch_calloc(1, sizeof *e);
    if (e == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    e->rs = rs;
    e->fn = fn;
    e->ud = ud;
    e->o.lateness_ms = 5 * 60000;
    e->o.learning_ms = 24 * 3600000LL;
    e->o.max_bytes = 512ull << 20;
    e->o.max_keys = 4u << 20;
    e->o.max_entries = 4096;
    if (opts != NULL) {
        if (opts->lateness_ms > 0)
            e->o.lateness_ms = opts->lateness_ms;
        else if (opts->lateness_ms < 0)
            e->o.lateness_ms = 0;
        if (opts->learning_ms > 0)
            e->o.learning_ms = opts->learning_ms;
        if (opts->max_bytes)
            e->o.max_bytes = opts->max_bytes;
        if (opts->max_keys)
            e->o.max_keys = opts->max_keys;
        if (opts->max_entries)
            e->o.max_entries = opts->max_entries;
        e->o.refsets = opts->refsets;
        e->o.on_refset_add = opts->on_refset_add;
        e->o.refset_ud = opts->refset_ud;
    }
    e->max_ts = e->t0 = NO_TIME;
    e->st.watermark_ms = NO_TIME;
    ch_buf_init(&e->evidence, 2048);
    e->scratch = ch_expr_scratch_new();
    e->rule_hits = ch_calloc(rs->n ? rs->n : 1, sizeof *e->rule_hits);
    e->rule_evals = ch_calloc(rs->n ? rs->n : 1, sizeof *e->rule_evals);
    if (e->scratch == NULL || e->rule_hits == NULL || e->rule_evals == NULL ||
        build_dispatch(e) < 0) {
        ch_engine_free(e);
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    }
    *out = e;
    return 0;
}

void ch_engine_free(ch_engine *e)
{
    if (e == NULL)
        return;
    for (size_t i = 0; i < e->tab_cap; i++)
        for (kstate *k = e->tab[i], *nx; k; k = nx) {
            nx = k->hnext;
            key_free(e, k);
        }
    ch_free(e->tab);
    ch_free(e->heap);
    for (int d = 0; d < CH_DS__COUNT; d++)
        ch_free(e->any[d].v);
    for (size_t i = 0; i < e->amap_cap; i++)
        ch_free(e->amap[i].rules.v);
    ch_free(e->amap);
    if (e->waits)
        for (uint32_t i = 0; i < e->rs->n; i++)
            ch_free(e->waits[i]);
    ch_free(e->waits);
    ch_free(e->nwaits);
    ch_free(e->rule_hits);
    ch_free(e->rule_evals);
    ch_expr_scratch_free(e->scratch);
    ch_buf_free(&e->evidence);
    ch_free(e);
}

void ch_engine_stats_get(const ch_engine *e, ch_engine_stats *out) { *out = e->st; }
int64_t ch_engine_watermark(const ch_engine *e) { return watermark(e); }
uint64_t ch_engine_rule_hits(const ch_engine *e, uint32_t i)
{
    return i < e->rs->n ? e->rule_hits[i] : 0;
}
uint64_t ch_engine_rule_evals(const ch_engine *e, uint32_t i)
{
    return i < e->rs->n ? e->rule_evals[i] : 0;
}

/* ---- save and load ------------------------------------------------------------------------- */

/* Format (host byte order: the state moves between restarts of one server, not machines):
 *   "CHENGST\0" u32 version(1) i64 max_ts i64 t0 u64 nkeys
 *   per key: u16 idlen, id, u8 type, u32 klen, key, i64 quiet_until, i64 consumed_until,
 *            u32 nent, per entry {i64 ts, f64 w, u64 vh, u32 tlen, text},
 *            u32 nseq (0 = none), per slot i < nseq {i64 start, i64 last, per j < nseq {u32 len,
 * id}} "CHEND\0\0\0" Rules are named by id, so a reload with rules added, removed or reordered
 * keeps what it can. */
#define ST_MAGIC "CHENGST"
#define ST_END "CHEND\0\0"
#define ST_VERSION 1u

static bool w_(FILE *f, const void *p, size_t n) { return n == 0 || fwrite(p, n, 1, f) == 1; }
#define W(f, v) w_(f, &(v), sizeof(v))

int ch_engine_save(const ch_engine *e, FILE *f, ch_error *err)
{
    bool ok = w_(f, ST_MAGIC, 8);
    uint32_t ver = ST_VERSION;
    ok = ok && W(f, ver) && W(f, e->max_ts) && W(f, e->t0) && W(f, e->st.keys);
    for (size_t b = 0; ok && b < e->tab_cap; b++)
        for (const kstate *k = e->tab[b]; ok && k; k = k->hnext) {
            const ch_rule *r = e->rs->rules[k->rule];
            uint16_t idlen = (uint16_t)strlen(r->info.id);
            uint8_t type = (uint8_t)r->type;
            ok = W(f, idlen) && w_(f, r->info.id, idlen) && W(f, type) && W(f, k->klen) &&
                 w_(f, k->key, k->klen) && W(f, k->quiet_until) && W(f, k->consumed_until) &&
                 W(f, k->nent);
            for (uint32_t i = 0; ok && i < k->nent; i++) {
                const entry *en = &k->ent[i];
                uint32_t tl = en->text ? en->tlen : 0;
                ok = W(f, en->ts) && W(f, en->w) && W(f, en->vh) && W(f, tl) && w_(f, en->text, tl);
            }
            uint32_t nseq = k->seq ? k->seq->n : 0;
            ok = ok && W(f, nseq);
            for (uint32_t i = 0; ok && i < nseq; i++) {
                ok = W(f, k->seq->start[i]) && W(f, k->seq->last[i]);
                for (uint32_t j = 0; ok && j < nseq; j++) {
                    const char *id = k->seq->ids[i * nseq + j];
                    uint32_t l = id ? (uint32_t)strlen(id) : 0;
                    ok = W(f, l) && w_(f, id, l);
                }
            }
        }
    ok = ok && w_(f, ST_END, 8) && fflush(f) == 0;
    return ok ? 0 : ch_error_set(err, CH_EIO, "cannot write the engine state");
}

static bool r_(FILE *f, void *p, size_t n) { return n == 0 || fread(p, n, 1, f) == 1; }
#define R(f, v) r_(f, &(v), sizeof(v))

int ch_engine_load(ch_engine *e, FILE *f, ch_error *err)
{
    char magic[8];
    uint32_t ver;
    int64_t max_ts, t0;
    uint64_t nkeys;
    char key[KEY_MAX];
    if (!r_(f, magic, 8) || memcmp(magic, ST_MAGIC, 8) != 0 || !R(f, ver))
        return ch_error_set(err, CH_EPARSE, "not a coinhound engine state");
    if (ver != ST_VERSION)
        return ch_error_set(err, CH_EPARSE, "engine state version %u (expected %u)", ver,
                            ST_VERSION);
    if (!R(f, max_ts) || !R(f, t0) || !R(f, nkeys))
        goto trunc;
    if (e->max_ts == NO_TIME || max_ts > e->max_ts)
        e->max_ts = max_ts;
    if (e->t0 == NO_TIME || (t0 != NO_TIME && t0 < e->t0))
        e->t0 = t0;
    e->st.watermark_ms = watermark(e);
    for (uint64_t n = 0; n < nkeys; n++) {
        uint16_t idlen;
        uint8_t type;
        uint32_t klen, nent, nseq;
        char id[CH_RULE_MAX_FILE > 65536 ? 65537 : 65537];
        int64_t quiet, consumed;
        if (!R(f, idlen) || !r_(f, id, idlen) || !R(f, type) || !R(f, klen) || klen > KEY_MAX ||
            !r_(f, key, klen) || !R(f, quiet) || !R(f, consumed) || !R(f, nent))
            goto trunc;
        id[idlen] = '\0';
        int ri = ch_ruleset_find(e->rs, id);
        const ch_rule *r = ri >= 0 ? e->rs->rules[ri] : NULL;
        kstate *k = NULL;
        if (r != NULL && (uint8_t)r->type == type)
            k = key_get(e, (uint32_t)ri, key, klen, true);
        if (k) {
            k->quiet_until = quiet;
            k->consumed_until = consumed;
        }
        for (uint32_t i = 0; i < nent; i++) {
            entry en = {0, 0, 0, NULL, 0};
            uint32_t tl;
            if (!R(f, en.ts) || !R(f, en.w) || !R(f, en.vh) || !R(f, tl) || tl > 4096)
                goto trunc;
            if (tl) {
                en.text = ch_malloc(tl);
                if (en.text == NULL)
                    return ch_error_set(err, CH_ENOMEM, "out of memory");
                if (!r_(f, en.text, tl)) {
                    ch_free(en.text);
                    goto trunc;
                }
                en.text[tl - 1] = '\0';
                en.tlen = tl;
                account(e, tl);
            }
            if (k == NULL || ent_reserve(e, k) < 0) {
                entry_free(e, &en);
                continue;
            }
            k->ent[k->nent++] = en; /* saved in order (time, or hash for first_seen) */
        }
        if (!R(f, nseq) || nseq > CH_RULE_MAX_STEPS)
            goto trunc;
        seqst *s = NULL;
        if (nseq && k && r->nsteps == nseq && (s = k->seq = seq_new(e, nseq)) == NULL)
            return ch_error_set(err, CH_ENOMEM, "out of memory");
        for (uint32_t i = 0; i < nseq; i++) {
            int64_t st0, last;
            if (!R(f, st0) || !R(f, last))
                goto trunc;
            if (s) {
                s->start[i] = st0;
                s->last[i] = last;
            }
            for (uint32_t j = 0; j < nseq; j++) {
                uint32_t l;
                char idb[256];
                if (!R(f, l) || l > 128 || !r_(f, idb, l))
                    goto trunc;
                if (s && l)
                    s->ids[i * nseq + j] = dup_id(e, idb, l);
            }
        }
        if (k == NULL)
            continue;
        /* Expiry as the processing paths would have set it. */
        int64_t exp = NO_TIME;
        if (r->type == CH_CORR_THRESHOLD || r->type == CH_CORR_DISTINCT) {
            exp = k->nent ? k->ent[k->nent - 1].ts + r->within_ms : NO_TIME;
            if (k->quiet_until != NO_TIME && (exp == NO_TIME || k->quiet_until > exp))
                exp = k->quiet_until;
        } else if (r->type == CH_CORR_SEQUENCE && k->seq) {
            for (uint32_t i = 1; i < k->seq->n; i++)
                if (k->seq->start[i] != NO_TIME && k->seq->start[i] + r->within_ms > exp)
                    exp = k->seq->start[i] + r->within_ms;
        }
        heap_set(e, k, exp);
    }
    if (!r_(f, magic, 8) || memcmp(magic, ST_END, 8) != 0)
        goto trunc;
    return 0;
trunc:
    return ch_error_set(err, CH_EPARSE, "engine state is truncated or damaged");
}
