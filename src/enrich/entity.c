/*
 * entity.c - the link table of entity.h.
 *
 * Links of the three kinds share one table so that one cap bounds them all: a slot array that
 * grows by doubling up to the cap, a chained hash (bucket heads and per-slot next indices, so
 * growing the buckets re-links slots without moving them) and an intrusive LRU list through
 * the slots. A link's key and strings live in one allocation made when it is learned and freed
 * when it is replaced, evicted or expired; enrichment only points events at those bytes.
 *
 * Keys are the kind's letter, ':' and the id: "i:i-0abc...", "e:eni-0abc...", and for
 * addresses "a:ACCOUNT|10.0.1.7", since private address spaces of accounts overlap.
 */
#include "enrich/entity.h"

#include <string.h>

#include "core/hash.h"
#include "core/ip.h"
#include "core/json.h"
#include "core/mem.h"

enum {
    K_INSTANCE = CH_ENTITY_LINK_INSTANCE,
    K_INTERFACE = CH_ENTITY_LINK_INTERFACE,
    K_ADDRESS = CH_ENTITY_LINK_ADDRESS
};

/* Fields of an instance link; interface and address links use F_TARGET only. */
enum { F_INSTANCE, F_USER, F_KEY, F_IMAGE, F_ACCOUNT, F_REGION, F_INVOKED, F__COUNT };
#define F_TARGET F_INSTANCE

#define NIL 0u /* indices are stored +1 so that 0 means none */

/* A field as an offset into the link's allocation (0 = absent: the key is always first), so
 * that interface and address links, which use one field, do not pay for seven views. */
typedef struct fld {
    uint16_t off, len;
} fld;

typedef struct link {
    char *mem; /* key, then each field, one allocation */
    uint32_t klen, hash;
    uint32_t hnext;      /* next slot in the bucket chain (+1) */
    uint32_t prev, next; /* LRU neighbours (+1); head is the most recently used */
    int64_t touched_ms;  /* event time it was learned or last used */
    int64_t launch_ms;
    uint32_t bytes; /* size of mem */
    uint8_t kind;
    bool live;
    fld f[F__COUNT];
} link;

static ch_sv F(const link *l, int i)
{
    return l->f[i].off ? (ch_sv){l->mem + l->f[i].off, l->f[i].len} : (ch_sv){NULL, 0};
}

struct ch_entity {
    link *slots;
    uint32_t nslots, slots_cap, cap; /* slots in use (incl. free), allocated, the bound */
    uint32_t *buckets;               /* heads (+1) */
    uint32_t nbuckets;               /* power of two */
    uint32_t free_head;              /* free slot list through hnext (+1) */
    uint32_t lru_head, lru_tail;     /* (+1) */
    int64_t ttl_ms;
    int64_t newest_ms; /* latest event time learned or used at, INT64_MIN before any */
    size_t str_bytes;
    ch_entity_stats st;
};

/* 32 bits of core/hash.h's hash: the buckets never number more than the link cap (2^32). */
static uint32_t hash_bytes(const char *p, size_t n) { return (uint32_t)ch_hash_bytes(p, n); }

int ch_entity_new(size_t cap, int64_t ttl_ms, ch_entity **out, ch_error *err)
{
    *out = NULL;
    if (cap == 0)
        cap = CH_ENTITY_DEFAULT_CAP;
    if (cap > CH_ENTITY_MAX_CAP)
        return ch_error_set(err, CH_EUSAGE, "entity table: at most %u links", CH_ENTITY_MAX_CAP);
    ch_entity *t = ch_calloc(1, sizeof *t);
    if (t == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    t->cap = (uint32_t)cap;
    t->ttl_ms = ttl_ms == 0 ? CH_ENTITY_DEFAULT_TTL_MS : ttl_ms;
    t->newest_ms = INT64_MIN;
    t->nbuckets = 64;
    t->buckets = ch_calloc(t->nbuckets, sizeof *t->buckets);
    if (t->buckets == NULL) {
        ch_free(t);
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    }
    *out = t;
    return 0;
}

void ch_entity_free(ch_entity *t)
{
    if (t == NULL)
        return;
    for (uint32_t i = 0; i < t->nslots; i++)
        ch_free(t->slots[i].mem);
    ch_free(t->slots);
    ch_free(t->buckets);
    ch_free(t);
}

/* ---- LRU and hash chains ------------------------------------------------------------------- */

/* The analyzer cannot see that a slot index always comes from a live slot of a non-empty table
 * (find() returns >= 0 only when one matched), so it follows t->slots == NULL here. */
// NOLINTBEGIN(clang-analyzer-core.NullDereference)
static void lru_unlink(ch_entity *t, uint32_t i)
{
    link *l = &t->slots[i];
    if (l->prev)
        t->slots[l->prev - 1].next = l->next;
    else
        t->lru_head = l->next;
    if (l->next)
        t->slots[l->next - 1].prev = l->prev;
    else
        t->lru_tail = l->prev;
    l->prev = l->next = NIL;
}

static void lru_push_head(ch_entity *t, uint32_t i)
{
    link *l = &t->slots[i];
    l->prev = NIL;
    l->next = t->lru_head;
    if (t->lru_head)
        t->slots[t->lru_head - 1].prev = i + 1;
    t->lru_head = i + 1;
    if (!t->lru_tail)
        t->lru_tail = i + 1;
}

static void chain_unlink(ch_entity *t, uint32_t i)
{
    link *l = &t->slots[i];
    uint32_t *pp = &t->buckets[l->hash & (t->nbuckets - 1)];
    while (*pp && *pp != i + 1)
        pp = &t->slots[*pp - 1].hnext;
    if (*pp)
        *pp = l->hnext;
    l->hnext = NIL;
}

// NOLINTEND(clang-analyzer-core.NullDereference)

static void remove_slot(ch_entity *t, uint32_t i)
{
    link *l = &t->slots[i];
    chain_unlink(t, i);
    lru_unlink(t, i);
    t->str_bytes -= l->bytes;
    ch_free(l->mem);
    memset(l, 0, sizeof *l);
    l->hnext = t->free_head;
    t->free_head = i + 1;
    t->st.links--;
}

static int64_t find(const ch_entity *t, const char *key, size_t klen, uint32_t h)
{
    for (uint32_t j = t->buckets[h & (t->nbuckets - 1)]; j; j = t->slots[j - 1].hnext) {
        const link *l = &t->slots[j - 1];
        if (l->hash == h && l->klen == klen && memcmp(l->mem, key, klen) == 0)
            return (int64_t)j - 1;
    }
    return -1;
}

static int grow_buckets(ch_entity *t)
{
    uint32_t nb = t->nbuckets * 2;
    uint32_t *b = ch_calloc(nb, sizeof *b);
    if (b == NULL)
        return CH_ENOMEM;
    for (uint32_t i = 0; i < t->nslots; i++) {
        link *l = &t->slots[i];
        if (!l->live)
            continue;
        uint32_t k = l->hash & (nb - 1);
        l->hnext = b[k];
        b[k] = i + 1;
    }
    ch_free(t->buckets);
    t->buckets = b;
    t->nbuckets = nb;
    return 0;
}

/* A free slot index, evicting the least recently used link when the table is full. */
static int64_t take_slot(ch_entity *t)
{
    if (t->free_head) {
        uint32_t i = t->free_head - 1;
        t->free_head = t->slots[i].hnext;
        t->slots[i].hnext = NIL;
        return i;
    }
    if (t->nslots < t->cap) {
        if (t->nslots == t->slots_cap) {
            uint32_t nc = t->slots_cap ? t->slots_cap * 2 : 256;
            if (nc > t->cap)
                nc = t->cap;
            link *s = ch_realloc(t->slots, (size_t)nc * sizeof *s);
            if (s == NULL)
                return CH_ENOMEM;
            memset(s + t->slots_cap, 0, (size_t)(nc - t->slots_cap) * sizeof *s);
            t->slots = s;
            t->slots_cap = nc;
        }
        return t->nslots++;
    }
    uint32_t victim = t->lru_tail - 1;
    remove_slot(t, victim);
    t->st.evicted++;
    t->free_head = t->slots[victim].hnext;
    t->slots[victim].hnext = NIL;
    return victim;
}

/* Learn or refresh a link: key (kind letter included) and fields are copied. */
static int put(ch_entity *t, const char *key, size_t klen, const ch_sv *fields, int64_t now,
               int64_t launch_ms, uint8_t kind)
{
    size_t total = klen + 1;
    for (int f = 0; f < F__COUNT; f++)
        total += fields[f].p ? fields[f].n + 1 : 0;
    char *mem = ch_malloc(total);
    if (mem == NULL)
        return CH_ENOMEM;
    uint32_t h = hash_bytes(key, klen);
    int64_t at = find(t, key, klen, h);
    if (at >= 0)
        remove_slot(t, (uint32_t)at);
    int64_t si = take_slot(t);
    if (si < 0) {
        ch_free(mem);
        return (int)si;
    }
    uint32_t i = (uint32_t)si;
    link *l = &t->slots[i];
    memset(l, 0, sizeof *l);
    l->mem = mem;
    memcpy(mem, key, klen);
    mem[klen] = '\0';
    char *w = mem + klen + 1;
    for (int f = 0; f < F__COUNT; f++) {
        if (fields[f].p == NULL)
            continue;
        if (fields[f].n)
            memcpy(w, fields[f].p, fields[f].n);
        w[fields[f].n] = '\0';
        l->f[f] = (fld){(uint16_t)(w - mem), (uint16_t)fields[f].n};
        w += fields[f].n + 1;
    }
    l->klen = (uint32_t)klen;
    l->bytes = (uint32_t)total;
    l->hash = h;
    l->touched_ms = now;
    if (now > t->newest_ms)
        t->newest_ms = now;
    l->launch_ms = launch_ms;
    l->kind = kind;
    l->live = true;
    uint32_t b = h & (t->nbuckets - 1);
    l->hnext = t->buckets[b];
    t->buckets[b] = i + 1;
    lru_push_head(t, i);
    t->str_bytes += total;
    t->st.links++;
    if (t->st.links > t->nbuckets && t->nbuckets < (1u << 30))
        (void)grow_buckets(t); /* a failed grow only lengthens chains */
    return 0;
}

/* The live link of that key at event time now (dropping it if expired), refreshed, or NULL. */
static link *get(ch_entity *t, const char *key, size_t klen, int64_t now)
{
    int64_t at = find(t, key, klen, hash_bytes(key, klen));
    if (at < 0)
        return NULL;
    uint32_t i = (uint32_t)at;
    link *l = &t->slots[i];
    if (t->ttl_ms >= 0 && now != INT64_MAX && now - l->touched_ms > t->ttl_ms) {
        remove_slot(t, i);
        t->st.expired++;
        return NULL;
    }
    if (now != INT64_MAX && now > l->touched_ms)
        l->touched_ms = now;
    if (now != INT64_MAX && now > t->newest_ms)
        t->newest_ms = now;
    if (t->lru_head != i + 1) {
        lru_unlink(t, i);
        lru_push_head(t, i);
    }
    return l;
}

/* ---- keys ---------------------------------------------------------------------------------- */

typedef struct keybuf {
    char b[CH_ENTITY_MAX_STR * 2 + 64];
    size_t n;
} keybuf;

static bool make_key(keybuf *k, uint8_t kind, ch_sv a, ch_sv b)
{
    if (a.n > CH_ENTITY_MAX_STR || b.n > CH_ENTITY_MAX_STR)
        return false;
    k->b[0] = (char)kind;
    k->b[1] = ':';
    k->n = 2;
    if (a.n) {
        memcpy(k->b + k->n, a.p, a.n);
        k->n += a.n;
    }
    if (b.p != NULL) {
        k->b[k->n++] = '|';
        if (b.n) {
            memcpy(k->b + k->n, b.p, b.n);
            k->n += b.n;
        }
    }
    return true;
}

static bool str_member(ch_json_val obj, const char *name, ch_sv *out)
{
    ch_json_val v;
    const char *s;
    size_t n;
    if (!ch_json_obj_get(obj, name, strlen(name), &v) || !ch_json_get_str(v, &s, &n) || n == 0 ||
        n > CH_ENTITY_MAX_STR)
        return false;
    *out = (ch_sv){s, (uint32_t)n};
    return true;
}

/* obj.name.items as an iterator. EC2 writes some sets with "item" instead (a network
 * interface's privateIpAddressesSet), so both are read. */
static bool items_of(ch_json_val obj, const char *name, ch_json_iter *it)
{
    ch_json_val set, items;
    if (!ch_json_obj_get(obj, name, strlen(name), &set))
        return false;
    return (ch_json_obj_get(set, "items", 5, &items) || ch_json_obj_get(set, "item", 4, &items)) &&
           ch_json_arr_iter(items, it);
}

/* ---- learning ------------------------------------------------------------------------------ */

static int link_to(ch_entity *t, uint8_t kind, ch_sv a, ch_sv b, ch_sv instance, int64_t now,
                   int64_t launch)
{
    keybuf k;
    if (!make_key(&k, kind, a, b)) {
        t->st.bad++;
        return 0;
    }
    ch_sv f[F__COUNT] = {{0}};
    f[F_TARGET] = instance;
    int rc = put(t, k.b, k.n, f, now, launch, kind);
    if (rc == 0)
        kind == K_INTERFACE ? t->st.interfaces++ : t->st.addresses++;
    return rc;
}

static int link_address(ch_entity *t, const ch_event *ev, ch_sv ip, ch_sv instance)
{
    ch_ip addr;
    char canon[64];
    if (!ch_ip_parse(ip.p, ip.n, &addr)) {
        t->st.bad++;
        return 0;
    }
    size_t n = ch_ip_format(&addr, canon);
    return link_to(t, K_ADDRESS, ev->account_id, (ch_sv){canon, (uint32_t)n}, instance, ev->ts_ms,
                   ev->ts_ms);
}

int ch_entity_observe(ch_entity *t, const ch_event *ev)
{
    if (ev->dataset != CH_DS_CLOUDTRAIL || ev->outcome != CH_OUTCOME_SUCCESS ||
        !ch_sv_eq(ev->action, "RunInstances", 12) || !ev->has_raw_doc)
        return 0;
    ch_json_val resp;
    ch_json_iter it;
    if (!ch_json_obj_get(ev->raw_doc, "responseElements", 16, &resp) ||
        !items_of(resp, "instancesSet", &it))
        return 0;
    t->st.launches++;
    int learned = 0, rc;
    ch_json_val item;
    while (ch_json_arr_next(&it, &item)) {
        ch_sv inst = {0}, image = {0};
        if (!str_member(item, "instanceId", &inst)) {
            t->st.bad++;
            continue;
        }
        (void)str_member(item, "imageId", &image);
        ch_sv f[F__COUNT] = {{0}};
        f[F_INSTANCE] = inst;
        f[F_USER] = ev->user_name;
        f[F_KEY] = ev->access_key;
        f[F_IMAGE] = image;
        f[F_ACCOUNT] = ev->account_id;
        f[F_REGION] = ev->region;
        f[F_INVOKED] = ev->invoked_by;
        for (int i = 0; i < F__COUNT; i++)
            if (f[i].n > CH_ENTITY_MAX_STR)
                f[i] = (ch_sv){0};
        keybuf k;
        make_key(&k, K_INSTANCE, inst, (ch_sv){0});
        if ((rc = put(t, k.b, k.n, f, ev->ts_ms, ev->ts_ms, K_INSTANCE)) < 0)
            return rc;
        t->st.instances++;
        learned++;
        ch_sv ip;
        if (str_member(item, "privateIpAddress", &ip) && (rc = link_address(t, ev, ip, inst)) < 0)
            return rc;
        ch_json_iter nit;
        ch_json_val ni;
        if (!items_of(item, "networkInterfaceSet", &nit))
            continue;
        while (ch_json_arr_next(&nit, &ni)) {
            ch_sv eni;
            if (str_member(ni, "networkInterfaceId", &eni) &&
                (rc = link_to(t, K_INTERFACE, eni, (ch_sv){0}, inst, ev->ts_ms, ev->ts_ms)) < 0)
                return rc;
            /* Secondary addresses as well as the primary one. */
            ch_json_iter ait;
            ch_json_val pa;
            if (items_of(ni, "privateIpAddressesSet", &ait)) {
                while (ch_json_arr_next(&ait, &pa))
                    if (str_member(pa, "privateIpAddress", &ip) &&
                        (rc = link_address(t, ev, ip, inst)) < 0)
                        return rc;
            } else if (str_member(ni, "privateIpAddress", &ip) &&
                       (rc = link_address(t, ev, ip, inst)) < 0) {
                return rc;
            }
        }
    }
    return learned;
}

/* ---- enrichment ---------------------------------------------------------------------------- */

static link *instance_link(ch_entity *t, ch_sv inst, int64_t now)
{
    keybuf k;
    if (inst.n == 0 || !make_key(&k, K_INSTANCE, inst, (ch_sv){0}))
        return NULL;
    return get(t, k.b, k.n, now);
}

/* Follow an interface or address link to its instance. */
static link *via(ch_entity *t, uint8_t kind, ch_sv a, ch_sv b, int64_t now)
{
    keybuf k;
    if (!make_key(&k, kind, a, b))
        return NULL;
    link *l = get(t, k.b, k.n, now);
    return l ? instance_link(t, F(l, F_TARGET), now) : NULL;
}

static link *via_address(ch_entity *t, const ch_event *ev, const ch_ip *ip)
{
    if (ip->family == 0 || !ch_ip_is_internal(ip))
        return NULL;
    char canon[64];
    size_t n = ch_ip_format(ip, canon);
    return via(t, K_ADDRESS, ev->account_id, (ch_sv){canon, (uint32_t)n}, ev->ts_ms);
}

bool ch_entity_enrich(ch_entity *t, ch_event *ev)
{
    if ((ev->dataset != CH_DS_ROUTE53 && ev->dataset != CH_DS_VPCFLOW) || ev->user_name.n > 0)
        return false;
    link *l = NULL;
    uint64_t *by = NULL;
    bool tried = false;
    if (ev->instance_id.n) {
        tried = true;
        if ((l = instance_link(t, ev->instance_id, ev->ts_ms)) != NULL)
            by = &t->st.by_instance;
    }
    if (l == NULL && ev->dataset == CH_DS_VPCFLOW && ev->interface_id.n) {
        tried = true;
        if ((l = via(t, K_INTERFACE, ev->interface_id, (ch_sv){0}, ev->ts_ms)) != NULL)
            by = &t->st.by_interface;
    }
    if (l == NULL && (ev->src_ip.family || ev->dst_ip.family)) {
        tried = true;
        if ((l = via_address(t, ev, &ev->src_ip)) == NULL)
            l = via_address(t, ev, &ev->dst_ip);
        if (l != NULL)
            by = &t->st.by_address;
    }
    if (l == NULL) {
        if (tried)
            t->st.misses++;
        return false;
    }
    (*by)++;
    t->st.enriched++;
    ev->user_name = F(l, F_USER);
    if (ev->access_key.n == 0)
        ev->access_key = F(l, F_KEY);
    if (ev->invoked_by.n == 0)
        ev->invoked_by = F(l, F_INVOKED);
    ev->instance_id = F(l, F_INSTANCE);
    return true;
}

bool ch_entity_process(ch_entity *t, ch_event *ev)
{
    (void)ch_entity_observe(t, ev);
    return ch_entity_enrich(t, ev);
}

bool ch_entity_lookup(ch_entity *t, const char *instance_id, size_t n, int64_t at_ms,
                      ch_entity_instance *out)
{
    link *l = instance_link(t, (ch_sv){instance_id, (uint32_t)n}, at_ms);
    if (l == NULL)
        return false;
    out->instance_id = F(l, F_INSTANCE);
    out->user_name = F(l, F_USER);
    out->access_key = F(l, F_KEY);
    out->image_id = F(l, F_IMAGE);
    out->account_id = F(l, F_ACCOUNT);
    out->region = F(l, F_REGION);
    out->invoked_by = F(l, F_INVOKED);
    out->launch_ms = l->launch_ms;
    return true;
}

/* ---- persistence -------------------------------------------------------------------------- */

int ch_entity_export(const ch_entity *t, size_t max, ch_entity_link_fn fn, void *ud)
{
    size_t n = 0;
    for (uint32_t j = t->lru_head; j && (max == 0 || n < max); j = t->slots[j - 1].next, n++) {
        const link *l = &t->slots[j - 1];
        ch_entity_link e = {0};
        e.kind = (char)l->kind;
        e.key = (ch_sv){l->mem + 2, l->klen - 2}; /* past "k:" */
        e.instance_id = F(l, F_INSTANCE);
        e.user_name = F(l, F_USER);
        e.access_key = F(l, F_KEY);
        e.image_id = F(l, F_IMAGE);
        e.account_id = F(l, F_ACCOUNT);
        e.region = F(l, F_REGION);
        e.invoked_by = F(l, F_INVOKED);
        e.launch_ms = l->launch_ms;
        e.last_used_ms = l->touched_ms;
        int rc = fn(ud, &e);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int ch_entity_import(ch_entity *t, const ch_entity_link *l, int64_t now_ms)
{
    uint8_t kind = (uint8_t)l->kind;
    if (kind != K_INSTANCE && kind != K_INTERFACE && kind != K_ADDRESS)
        return 0;
    /* An address key is "ACCOUNT|address", each part within the string bound. */
    if (l->key.n == 0 || l->key.n > CH_ENTITY_MAX_STR * 2 + 1 || l->instance_id.n == 0)
        return 0;
    ch_sv f[F__COUNT] = {{0}};
    f[F_INSTANCE] = l->instance_id;
    if (kind == K_INSTANCE) {
        f[F_USER] = l->user_name;
        f[F_KEY] = l->access_key;
        f[F_IMAGE] = l->image_id;
        f[F_ACCOUNT] = l->account_id;
        f[F_REGION] = l->region;
        f[F_INVOKED] = l->invoked_by;
    }
    for (int i = 0; i < F__COUNT; i++) {
        if (f[i].n > CH_ENTITY_MAX_STR)
            return 0;
        if (f[i].n == 0)
            f[i] = (ch_sv){0}; /* absent, as observe leaves it */
    }
    int64_t newest = now_ms > t->newest_ms ? now_ms : t->newest_ms;
    if (t->ttl_ms >= 0 && newest != INT64_MIN && newest - l->last_used_ms > t->ttl_ms)
        return 0;
    keybuf k;
    k.b[0] = (char)kind;
    k.b[1] = ':';
    memcpy(k.b + 2, l->key.p, l->key.n);
    k.n = l->key.n + 2;
    int64_t at = find(t, k.b, k.n, hash_bytes(k.b, k.n));
    if (at >= 0 && t->slots[at].touched_ms >= l->last_used_ms)
        return 0; /* the run already knows a newer link of that key */
    int rc = put(t, k.b, k.n, f, l->last_used_ms, l->launch_ms, kind);
    if (rc < 0)
        return rc;
    t->st.restored++;
    return 1;
}

void ch_entity_stats_get(const ch_entity *t, ch_entity_stats *out) { *out = t->st; }

size_t ch_entity_memory(const ch_entity *t)
{
    return sizeof *t + (size_t)t->slots_cap * sizeof(link) +
           (size_t)t->nbuckets * sizeof(uint32_t) + t->str_bytes;
}
