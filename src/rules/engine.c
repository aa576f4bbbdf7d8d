/*
 * engine.c - what every correlation type shares (see engine.h for the semantics, engine_int.h
 * for how the files divide): dispatch, the key table and its expiry heap, window entries, keys
 * and values of an event, hits with their evidence and responses, and the per-event loop. The
 * correlation types themselves are corr_*.c, registered in the table below; the state file is
 * engine_state.c.
 *
 * State is one `eng_key` per (rule, key) in a chained hash table keyed by a 64-bit hash of the
 * rule index and the key text; what a key holds beyond its window entries belongs to its
 * correlation type (eng_key.ext). Keys that can expire sit in a binary min-heap by expiry time
 * (ties FIFO by insertion order), popped when the watermark passes them: expiry costs
 * O(log keys) per change, never a scan. Memory is accounted per allocation (approximate,
 * excluding allocator overhead).
 *
 * Per event, dispatch picks the rules of the event's dataset and action, and each rule's type
 * runs it through one indirect call (ch__corr_type.process): the loop never switches on the type.
 */
#include "rules/engine.h"

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/field.h"
#include "core/hash.h"
#include "core/heap.h"
#include "core/mem.h"
#include "core/timeparse.h"
#include "intel/intel_match.h"
#include "rules/engine_int.h"
#include "rules/expr.h"

/* ---- correlation types ----------------------------------------------------------------------- */

/* One line per correlation type; each is a file of its own (corr_*.c). */
static const ch__corr_type *const corr_types[] = {
    &ch__corr_none,     &ch__corr_threshold,  &ch__corr_distinct,
    &ch__corr_sequence, &ch__corr_first_seen,
};

const ch__corr_type *ch__corr_type_of(ch_corr_type t)
{
    for (size_t i = 0; i < sizeof corr_types / sizeof corr_types[0]; i++)
        if (corr_types[i]->type == t)
            return corr_types[i];
    return NULL;
}

/* ---- small helpers ------------------------------------------------------------------------- */

static int rl_add(eng_rlist *l, uint32_t v)
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

/* ---- dispatch ------------------------------------------------------------------------------ */

/* The action map's hash, on every event: eight bytes a step (core/hash.h), since event names
 * run 10 to 30 bytes. */
static inline uint64_t action_hash(uint8_t ds, ch_sv a)
{
    return ch_hash_words(((uint64_t)ds + 1) * 0x9E3779B97F4A7C15ull, a.p, a.n);
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

static eng_aslot *amap_slot(ch_engine *e, uint8_t ds, ch_sv a, bool create)
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
        eng_aslot *s = &e->amap[i];
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
    if (r->nsteps > 0) { /* a sequence: its steps (a rule-level where is ANDed with each) */
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
                    eng_aslot *s = amap_slot(e, ds, h.actions[k][a], true);
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
            eng_wait *nw = ch_realloc(e->waits[t], (e->nwaits[t] + 1) * sizeof *nw);
            if (nw == NULL)
                return CH_ENOMEM;
            nw[e->nwaits[t]++] = (eng_wait){i, s};
            e->waits[t] = nw;
        }
    }
    return 0;
}

/* ---- key table and heap -------------------------------------------------------------------- */

/* The heap is lazy: a key is pushed once with its expiry at that time; later changes only
 * update eng_key.expire_at (O(1) per event, no sift through a cold heap). When an element
 * reaches the top and the watermark has passed it, the key is freed if its current expiry has
 * passed too, pushed again with its current expiry if not, and dropped from the heap if it
 * no longer expires (first_seen). Keys are freed only here (and by ch_engine_free), so a heap
 * element never points at a freed key. */
static int heap_push(ch_engine *e, eng_key *k, int64_t at)
{
    if (e->heap_n == e->heap_cap) {
        size_t nc = e->heap_cap ? e->heap_cap * 2 : 64;
        eng_hent *nh = ch_realloc(e->heap, nc * sizeof *nh);
        if (nh == NULL)
            return CH_ENOMEM;
        ch__eng_account(e, (int64_t)((nc - e->heap_cap) * sizeof *nh));
        e->heap = nh;
        e->heap_cap = nc;
    }
    ch_heap_push(e->heap, &e->heap_n, (eng_hent){at, e->order++, k});
    k->in_heap = 1;
    return 0;
}

int ch__eng_expire_at(ch_engine *e, eng_key *k, int64_t at)
{
    k->expire_at = at;
    if (at == ENG_NO_TIME || k->in_heap)
        return 0;
    return heap_push(e, k, at);
}

void ch__eng_entry_free(ch_engine *e, eng_entry *en)
{
    if (en->text) {
        ch__eng_account(e, -(int64_t)en->tlen);
        ch_free(en->text);
        en->text = NULL;
    }
}

static void key_free(ch_engine *e, eng_key *k)
{
    for (uint32_t i = 0; i < k->nent; i++)
        ch__eng_entry_free(e, &k->ent[i]);
    ch__eng_account(e, -(int64_t)(k->cap * sizeof(eng_entry)));
    ch_free(k->ent);
    if (k->ext != NULL && e->corr != NULL) /* only a type with free_ext sets ext */
        e->corr[k->rule]->free_ext(e, k);
    ch__eng_account(e, -(int64_t)(sizeof *k + k->klen));
    ch_free(k);
    e->st.keys--;
}

static void key_unlink(ch_engine *e, eng_key *k)
{
    eng_key **pp = &e->tab[k->hash & (e->tab_cap - 1)];
    while (*pp != k)
        pp = &(*pp)->hnext;
    *pp = k->hnext;
    key_free(e, k);
}

static int tab_grow(ch_engine *e)
{
    size_t nc = e->tab_cap ? e->tab_cap * 2 : 1024;
    eng_key **nt = ch_calloc(nc, sizeof *nt);
    if (nt == NULL)
        return CH_ENOMEM;
    for (size_t i = 0; i < e->tab_cap; i++)
        for (eng_key *k = e->tab[i], *nx; k; k = nx) {
            nx = k->hnext;
            k->hnext = nt[k->hash & (nc - 1)];
            nt[k->hash & (nc - 1)] = k;
        }
    ch__eng_account(e, (int64_t)((nc - e->tab_cap) * sizeof *nt));
    ch_free(e->tab);
    e->tab = nt;
    e->tab_cap = nc;
    return 0;
}

/* Find or (create) the state of (rule, key). NULL when absent and not created, or refused by
 * a cap (counted) or memory. */
eng_key *ch__eng_key_get(ch_engine *e, uint32_t rule, const char *key, uint32_t klen, bool create)
{
    uint64_t h =
        ch_hash_mix64(ch_hash_fnv1a(ch_hash_fnv1a(CH_HASH_SEED, &rule, sizeof rule), key, klen));
    if (e->tab_cap) {
        for (eng_key *k = e->tab[h & (e->tab_cap - 1)]; k; k = k->hnext)
            if (k->hash == h && k->rule == rule && k->klen == klen &&
                memcmp(k->key, key, klen) == 0)
                return k;
    }
    if (!create)
        return NULL;
    size_t need = sizeof(eng_key) + klen;
    if (e->st.keys >= e->o.max_keys || e->st.bytes + need > e->o.max_bytes) {
        e->st.cap_hits++;
        return NULL;
    }
    if ((e->tab_cap == 0 || e->st.keys >= e->tab_cap) && tab_grow(e) < 0)
        return NULL;
    eng_key *k = ch_calloc(1, need);
    if (k == NULL)
        return NULL;
    k->hash = h;
    k->rule = rule;
    k->klen = klen;
    memcpy(k->key, key, klen);
    k->expire_at = ENG_NO_TIME;
    k->quiet_until = ENG_NO_TIME;
    k->consumed_until = ENG_NO_TIME;
    k->hnext = e->tab[h & (e->tab_cap - 1)];
    e->tab[h & (e->tab_cap - 1)] = k;
    ch__eng_account(e, (int64_t)need);
    if (++e->st.keys > e->st.keys_peak)
        e->st.keys_peak = e->st.keys;
    return k;
}

static void expire(ch_engine *e)
{
    int64_t wm = ch__eng_watermark(e);
    while (e->heap_n > 0 && e->heap[0].key < wm) {
        eng_key *k = ch_heap_pop(e->heap, &e->heap_n).item;
        k->in_heap = 0;
        if (k->expire_at == ENG_NO_TIME)
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
    if (e->max_ts == ENG_NO_TIME || now_ms > e->max_ts)
        e->max_ts = now_ms;
    e->st.watermark_ms = ch__eng_watermark(e);
    expire(e);
}

/* ---- keys and values of an event ----------------------------------------------------------- */

/* The key text: the first value of each path, joined by 0x1f. false when one is missing. */
bool ch__eng_make_key(ch_engine *e, ch_field_ref *const *by, uint32_t nby, const ch_event *ev,
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
        if (i > 0 && n < ENG_KEY_MAX)
            out[n++] = '\x1f';
        uint32_t c = t.n < ENG_KEY_MAX - n ? t.n : ENG_KEY_MAX - n;
        memcpy(out + n, t.p, c);
        n += c;
    }
    *len = n;
    return true;
}

typedef struct vals {
    uint32_t n;
    uint64_t vh[ENG_MAX_VALUES];
    char text[ENG_MAX_VALUES][ENG_VALUE_TEXT_MAX];
    uint32_t tlen[ENG_MAX_VALUES];
    double sum;
    uint64_t count;
} vals;

bool ch__eng_collect_value(void *ctx, const ch_value *v)
{
    eng_vals *vs = ctx;
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
    if (vs->n >= ENG_MAX_VALUES || v->type == CH_V_OBJ)
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
    uint32_t c = t.n < ENG_VALUE_TEXT_MAX - 1 ? t.n : ENG_VALUE_TEXT_MAX - 1;
    memcpy(vs->text[vs->n], t.p, c);
    vs->text[vs->n][c] = '\0';
    vs->tlen[vs->n] = c;
    vs->vh[vs->n++] = h;
    return false;
}

char *ch__eng_entry_text(ch_engine *e, const ch_event *ev, const char *val, uint32_t vlen,
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
    ch__eng_account(e, *tlen);
    return t;
}

/* ---- window entries ------------------------------------------------------------------------ */

int ch__eng_ent_reserve(ch_engine *e, eng_key *k)
{
    if (k->nent < k->cap)
        return 0;
    uint32_t nc = k->cap ? k->cap * 2 : 4;
    if (nc > e->o.max_entries)
        nc = e->o.max_entries;
    if (nc <= k->cap || e->st.bytes + (nc - k->cap) * sizeof(eng_entry) > e->o.max_bytes)
        return CH_ELIMIT;
    eng_entry *ne = ch_realloc(k->ent, nc * sizeof *ne);
    if (ne == NULL)
        return CH_ENOMEM;
    ch__eng_account(e, (int64_t)((nc - k->cap) * sizeof *ne));
    k->ent = ne;
    k->cap = nc;
    return 0;
}

/* ---- hits ---------------------------------------------------------------------------------- */

static int process_event(ch_engine *e, const ch_event *ev);

/* Rule ri fired on ev at ts: advance the steps of other rules that wait on its hits, later
 * steps first, so that one hit never advances two steps of the same rule. */
static void on_rule_hit(ch_engine *e, uint32_t ri, const ch_event *ev, int64_t ts)
{
    for (uint32_t w = e->nwaits[ri]; w-- > 0;) {
        const eng_wait *wt = &e->waits[ri][w];
        if (e->disabled[wt->rule])
            continue;
        e->corr[wt->rule]->on_rule_hit(e, wt->rule, wt->step, ev, ts);
    }
}

static void respond(ch_engine *e, const ch_rule *r, const ch_event *ev, int64_t ts)
{
    for (uint32_t i = 0; i < r->nresponses; i++) {
        const ch_rule_response *rp = &r->responses[i];
        if (rp->kind == CH_RESP_REFSET) {
            ch_refsets *reg = e->o.refsets != NULL ? e->o.refsets : e->rs->refsets;
            ch_refset *set = reg ? ch_refsets_get(reg, rp->name, strlen(rp->name)) : NULL;
            eng_vals vs;
            ch__eng_vals_init(&vs);
            if (set != NULL)
                ch_field_visit(rp->field, ev, &e->cache, ch__eng_collect_value, &vs);
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
        } else if (e->depth < ENG_MAX_DEPTH) {
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

int ch__eng_emit(ch_engine *e, uint32_t ri, const ch_event *ev, int64_t ts, eng_hitctx *hc)
{
    const ch_rule *r = e->rs->rules[ri];
    ch_rule_hit h;
    memset(&h, 0, sizeof h);
    h.rule = &r->info;
    h.ts_ms = ts;
    h.first_ms = hc->first == ENG_NO_TIME ? ts : hc->first;
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
    /* A threat-intelligence match on the firing event (intel/intel_match.h) names the
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
    if (e->nwaits[ri] > 0 && e->depth < ENG_MAX_DEPTH) {
        e->depth++;
        on_rule_hit(e, ri, ev, ts);
        e->depth--;
    }
    return 1;
}

void ch__eng_evidence_key(ch_engine *e, const ch_rule *r, const eng_key *k)
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

void ch__eng_evidence_dur(ch_buf *b, int64_t ms)
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

/* ---- per event ----------------------------------------------------------------------------- */

static int process_event(ch_engine *e, const ch_event *ev)
{
    int64_t wm = ch__eng_watermark(e);
    bool late = wm != ENG_NO_TIME && ev->ts_ms < wm;
    ch__rule_env_set_time(ev->ts_ms);
    /* e->cache needs no reset per event: a hit is checked against the event's own header. */
    unsigned ds = (unsigned)ev->dataset < CH_DS__COUNT ? (unsigned)ev->dataset : 0;
    int hits = 0;
    const eng_rlist *lists[2] = {&e->any[ds], NULL};
    eng_aslot *s = amap_slot(e, (uint8_t)ds, ev->action, false);
    if (s != NULL)
        lists[1] = &s->rules;
    for (int l = 0; l < 2; l++) {
        if (lists[l] == NULL)
            continue;
        for (uint32_t i = 0; i < lists[l]->n; i++) {
            uint32_t ri = lists[l]->v[i];
            if (e->disabled[ri])
                continue;
            int rc = e->corr[ri]->process(e, ri, ev, late);
            if (rc > 0)
                hits += rc;
        }
    }
    return hits;
}

int ch_engine_process(ch_engine *e, const ch_event *ev)
{
    e->st.events++;
    if (e->t0 == ENG_NO_TIME)
        e->t0 = ev->ts_ms;
    if (e->max_ts == ENG_NO_TIME || ev->ts_ms > e->max_ts) {
        e->max_ts = ev->ts_ms;
        e->st.watermark_ms = ch__eng_watermark(e);
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
    e->max_ts = e->t0 = ENG_NO_TIME;
    e->st.watermark_ms = ENG_NO_TIME;
    ch_buf_init(&e->evidence, 2048);
    e->scratch = ch_expr_scratch_new();
    e->rule_hits = ch_calloc(rs->n ? rs->n : 1, sizeof *e->rule_hits);
    e->rule_evals = ch_calloc(rs->n ? rs->n : 1, sizeof *e->rule_evals);
    e->corr = ch_calloc(rs->n ? rs->n : 1, sizeof *e->corr);
    e->disabled = ch_calloc(rs->n ? rs->n : 1, sizeof *e->disabled);
    if (e->scratch == NULL || e->rule_hits == NULL || e->rule_evals == NULL || e->corr == NULL ||
        e->disabled == NULL || build_dispatch(e) < 0) {
        ch_engine_free(e);
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < rs->n; i++) {
        const ch_rule *r = rs->rules[i];
        e->corr[i] = ch__corr_type_of(r->type);
        if (e->corr[i] == NULL) {
            ch_engine_free(e);
            return ch_error_set(err, CH_EUSAGE, "%s: correlation type %s has no engine support",
                                r->info.id, ch_corr_type_name(r->type));
        }
    }
    *out = e;
    return 0;
}

void ch_engine_free(ch_engine *e)
{
    if (e == NULL)
        return;
    for (size_t i = 0; i < e->tab_cap; i++)
        for (eng_key *k = e->tab[i], *nx; k; k = nx) {
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
    ch_free(e->corr);
    ch_free(e->disabled);
    ch_expr_scratch_free(e->scratch);
    ch_buf_free(&e->evidence);
    ch_free(e);
}

void ch_engine_stats_get(const ch_engine *e, ch_engine_stats *out) { *out = e->st; }
int64_t ch_engine_watermark(const ch_engine *e) { return ch__eng_watermark(e); }
uint64_t ch_engine_rule_hits(const ch_engine *e, uint32_t i)
{
    return i < e->rs->n ? e->rule_hits[i] : 0;
}
uint64_t ch_engine_rule_evals(const ch_engine *e, uint32_t i)
{
    return i < e->rs->n ? e->rule_evals[i] : 0;
}

void ch_engine_set_enabled(ch_engine *e, uint32_t i, bool enabled)
{
    if (i < e->rs->n)
        e->disabled[i] = !enabled;
}

bool ch_engine_enabled(const ch_engine *e, uint32_t i) { return i < e->rs->n && !e->disabled[i]; }
