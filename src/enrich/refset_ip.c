/*
 * refset_ip.c - addresses and CIDRs in reference sets.
 *
 * One hash table per (family, prefix length), keyed by the masked network, and a bitmap of the
 * lengths in use. A lookup walks the bitmap from the longest length down, masks the address,
 * hashes and probes: at most 33 probes for IPv4 and 129 for IPv6, in practice as many as the set
 * has distinct lengths (block lists: /32 and /24, sometimes a few more). The first key whose
 * chain has an element valid at the event's time is the longest matching prefix; a longer
 * prefix that has expired falls through to the shorter ones, which a compressed trie would make
 * hard. Before probing, every table position is computed and prefetched so that the probes'
 * cache misses overlap instead of queueing.
 *
 * IPv4 sets also keep a map from each address bucket (about one bucket a key, /16 at most:
 * 512 KB) to the prefix lengths that cover some of it (a /12 is marked in every bucket it
 * spans), so that a lookup probes only those: in a block list typically /32 and /24, whatever
 * other lengths the set holds elsewhere. IPv4 tags are exact (a bijective mix of the masked
 * address), so a hit on an always-valid key reads its slot and nothing else.
 *
 * IPv4 is kept apart from IPv6 rather than folded into the mapped ::ffff:0:0/96 space, so that a
 * short IPv6 prefix (::/0, ::/64) never claims IPv4 addresses and an IPv4 CIDR never claims an
 * IPv6 address; only text written as a mapped address with a prefix of 96 or more is IPv4.
 */
#include "enrich/refset_int.h"

#include "core/mem.h"

static inline uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline uint64_t be64(const uint8_t *p) { return ((uint64_t)be32(p) << 32) | be32(p + 4); }

static inline uint32_t v4_mask(unsigned len) { return len ? 0xffffffffu << (32 - len) : 0; }

/* The tag of an IPv4 key is a bijective mix of the masked address (murmur3's finaliser over a
 * per-length salt): within one length's table, equal tags mean equal keys, so a tag match is a
 * key match and an IPv4 hit never needs to read the element to confirm it. */
static inline uint32_t v4_tag(uint32_t key, unsigned len)
{
    uint32_t h = key ^ (len * 0x9e3779b9u);
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

static inline uint64_t v4_hash(uint32_t key, unsigned len)
{
    return (uint64_t)v4_tag(key, len) << 32;
}

static inline void v6_masked(const uint8_t *b, unsigned len, uint64_t *hi, uint64_t *lo)
{
    uint64_t h = be64(b), l = be64(b + 8);
    if (len <= 64) {
        *hi = len ? h & (~0ull << (64 - len)) : 0;
        *lo = 0;
    } else {
        *hi = h;
        *lo = l & (~0ull << (128 - len));
    }
}

static inline uint64_t v6_hash(uint64_t hi, uint64_t lo, unsigned len)
{
    return ch__rs_hash64(hi ^ ch__rs_hash64(lo, CH__RS_S1 ^ len), CH__RS_S2);
}

int ch__rs_parse_cidr(const char *text, size_t len, ch_ip *net, unsigned *prefix, ch_error *err)
{
    const char *slash = memchr(text, '/', len);
    size_t alen = slash ? (size_t)(slash - text) : len;
    if (!ch_ip_parse(text, alen, net))
        return ch_error_set(err, CH_EPARSE, "not an IP address or CIDR");
    bool v6_text = memchr(text, ':', alen) != NULL;
    unsigned max = net->family == 4 && !v6_text ? 32 : 128;
    unsigned p = max;
    if (slash != NULL) {
        size_t i = alen + 1;
        if (i == len || len - i > 3)
            return ch_error_set(err, CH_EPARSE, "bad prefix length");
        p = 0;
        for (; i < len; i++) {
            if (text[i] < '0' || text[i] > '9')
                return ch_error_set(err, CH_EPARSE, "bad prefix length");
            p = p * 10 + (unsigned)(text[i] - '0');
        }
        if (p > max)
            return ch_error_set(err, CH_EPARSE, "prefix length %u above %u", p, max);
    }
    if (net->family == 4 && v6_text) {
        /* ::ffff:a.b.c.d/n: IPv4 when the prefix stays inside the mapped space. */
        if (p >= 96)
            p -= 96;
        else
            net->family = 6;
    }
    *prefix = p;
    return CH_OK;
}

int ch__rs_ip_key(ch_refset *s, const ch_ip *net, unsigned prefix, ch__rs_key *k, ch_error *err)
{
    if (s->type != CH_REFSET_IP)
        return ch_error_set(err, CH_EUSAGE, "set '%s' is not an ip set", s->name);
    memset(k, 0, sizeof *k);
    if (net->family == 4) {
        if (prefix > 32)
            return ch_error_set(err, CH_EPARSE, "prefix length %u above 32", prefix);
        uint32_t a = be32(net->b + 12) & v4_mask(prefix);
        memset(k->ip, 0, 10);
        k->ip[10] = k->ip[11] = 0xff;
        k->ip[12] = (uint8_t)(a >> 24);
        k->ip[13] = (uint8_t)(a >> 16);
        k->ip[14] = (uint8_t)(a >> 8);
        k->ip[15] = (uint8_t)a;
        k->hash = v4_hash(a, prefix);
        k->table = &s->v4[prefix];
    } else if (net->family == 6) {
        if (prefix > 128)
            return ch_error_set(err, CH_EPARSE, "prefix length %u above 128", prefix);
        uint64_t hi, lo;
        v6_masked(net->b, prefix, &hi, &lo);
        for (int i = 0; i < 8; i++) {
            k->ip[i] = (uint8_t)(hi >> (56 - 8 * i));
            k->ip[8 + i] = (uint8_t)(lo >> (56 - 8 * i));
        }
        k->hash = v6_hash(hi, lo, prefix);
        k->table = &s->v6[prefix];
    } else {
        return ch_error_set(err, CH_EPARSE, "no address");
    }
    k->family = net->family;
    k->len = prefix;
    return CH_OK;
}

void ch__rs_ip_elem_key(ch_refset *s, const ch_refset_elem *e, ch__rs_key *k)
{
    ch_ip net;
    memcpy(net.b, e->key.ip, 16);
    net.family = e->family;
    ch__rs_ip_key(s, &net, e->len, k, NULL);
}

/* Probe one table for key; the chain's first element valid at `at`, or NULL. */
static inline const ch_refset_elem *probe_v4(const ch_refset *s, const ch__rs_table *t, uint64_t h,
                                             int64_t at)
{
    uint32_t tag = ch__rs_tag(h), pos = ch__rs_home(t, tag);
    if (!ch__rs_filter_maybe(t, tag))
        return NULL;
    for (;;) {
        ch__rs_slot sl = t->slots[pos];
        if (sl.idx1 == 0)
            return NULL;
        if (sl.tag == tag) { /* exact: the key */
            if (sl.idx1 & CH__RS_SIMPLE)
                return ch__rs_elem(s, CH__RS_IDX1(sl.idx1) - 1);
            return ch__rs_chain_valid(s, sl.idx1, at);
        }
        pos = (pos + 1) & t->mask;
    }
}

static inline const ch_refset_elem *probe_v6(const ch_refset *s, const ch__rs_table *t, uint64_t hi,
                                             uint64_t lo, uint64_t h, int64_t at)
{
    uint32_t tag = ch__rs_tag(h), pos = ch__rs_home(t, tag);
    if (!ch__rs_filter_maybe(t, tag))
        return NULL;
    for (;;) {
        ch__rs_slot sl = t->slots[pos];
        if (sl.idx1 == 0)
            return NULL;
        if (sl.tag == tag) {
            const ch_refset_elem *e = ch__rs_elem(s, CH__RS_IDX1(sl.idx1) - 1);
            if (be64(e->key.ip) == hi && be64(e->key.ip + 8) == lo)
                return ch__rs_chain_valid(s, sl.idx1, at);
        }
        pos = (pos + 1) & t->mask;
    }
}

void ch__rs_v4map_mark(ch_refset *s, const uint8_t *ip, unsigned len)
{
    unsigned g = s->v4_map_bits;
    uint32_t a = be32(ip + 12), b = a >> (32 - g);
    if (len >= g) {
        s->v4_map[b] |= 1ull << len;
        return;
    }
    /* A prefix shorter than a bucket covers 2^(g-len) buckets: at most 65536 writes. */
    uint32_t span = 1u << (g - len);
    for (uint32_t i = 0; i < span; i++)
        s->v4_map[b + i] |= 1ull << len;
}

void ch__rs_v4map_rebuild(ch_refset *s)
{
    s->v4_map_stale = 0;
    ch_free(s->v4_map);
    s->v4_map = NULL;
    if (s->v4_keys < CH__RS_V4MAP_MIN / 2)
        return;
    /* About one bucket a key: the map costs 8 bytes a key and at most 512 KB. */
    unsigned g = 4;
    while (g < 16 && (1u << g) < s->v4_keys)
        g++;
    if ((s->v4_map = ch_calloc((size_t)1 << g, sizeof *s->v4_map)) == NULL)
        return; /* the map only saves probes: without it every length in use is probed */
    s->v4_map_bits = g;
    size_t cur = 0;
    const ch_refset_elem *e;
    while ((e = ch_refset_next(s, &cur)) != NULL)
        if (e->family == 4)
            ch__rs_v4map_mark(s, e->key.ip, e->len);
}

/* The lengths to probe for address a, as bits. */
static inline uint64_t v4_lengths(const ch_refset *s, uint32_t a)
{
    return s->v4_map != NULL ? s->v4_map[a >> (32 - s->v4_map_bits)] & s->v4_bits : s->v4_bits;
}

static const ch_refset_elem *lookup_v4(const ch_refset *s, uint32_t a, int64_t at)
{
    unsigned lens[33];
    uint64_t hs[33];
    unsigned n = 0;
    uint64_t bits = v4_lengths(s, a);
    /* Pass 1: hash every length in use, longest first, and prefetch its home slot. */
    for (; bits != 0; n++) {
        unsigned len = 63u - (unsigned)__builtin_clzll(bits);
        bits &= ~(1ull << len);
        const ch__rs_table *t = &s->v4[len];
        lens[n] = len;
        hs[n] = v4_hash(a & v4_mask(len), len);
        __builtin_prefetch(&t->slots[ch__rs_home(t, ch__rs_tag(hs[n]))]);
    }
    /* Pass 2: probe in that order; the first valid hit is the longest prefix. */
    for (unsigned i = 0; i < n; i++) {
        unsigned len = lens[i];
        const ch_refset_elem *e = probe_v4(s, &s->v4[len], hs[i], at);
        if (e != NULL)
            return e;
    }
    return NULL;
}

static const ch_refset_elem *lookup_v6(const ch_refset *s, const uint8_t *b, int64_t at)
{
    for (int w = 2; w >= 0; w--) {
        for (uint64_t bits = s->v6_bits[w]; bits != 0;) {
            unsigned bit = 63u - (unsigned)__builtin_clzll(bits);
            bits &= ~(1ull << bit);
            unsigned len = (unsigned)w * 64 + bit;
            uint64_t hi, lo;
            v6_masked(b, len, &hi, &lo);
            const ch_refset_elem *e = probe_v6(s, &s->v6[len], hi, lo, v6_hash(hi, lo, len), at);
            if (e != NULL)
                return e;
        }
    }
    return NULL;
}

bool ch_refset_contains_ip(const ch_refset *s, const ch_ip *ip, int64_t at_ms,
                           const ch_refset_elem **hit)
{
    const ch_refset_elem *e = NULL;
    if (s->type == CH_REFSET_IP && ip != NULL && s->count > 0) {
        if (ip->family == 4)
            e = lookup_v4(s, be32(ip->b + 12), at_ms);
        else if (ip->family == 6)
            e = lookup_v6(s, ip->b, at_ms);
    }
    if (hit != NULL)
        *hit = e;
    return e != NULL;
}

/* ---- batches ----------------------------------------------------------------------------- */

typedef struct v4q {
    uint32_t a;
    uint32_t n; /* lengths to probe */
    uint8_t lens[33];
    uint64_t hs[33];
    uint32_t ncand;
    bool over; /* more tag matches than fit: answered one by one */
    uint32_t cand[CH__RS_MAXCAND];
} v4q;

/* Hash every length to probe and prefetch every home slot. */
static void v4_stage_prefetch(const ch_refset *s, const ch_ip *ips, size_t m, v4q *g)
{
    for (size_t i = 0; i < m; i++) {
        v4q *q = &g[i];
        q->n = 0;
        if (ips[i].family != 4)
            continue;
        q->a = be32(ips[i].b + 12);
        uint64_t bits = v4_lengths(s, q->a);
        while (bits != 0) {
            unsigned len = 63u - (unsigned)__builtin_clzll(bits);
            bits &= ~(1ull << len);
            const ch__rs_table *t = &s->v4[len];
            uint64_t h = v4_hash(q->a & v4_mask(len), len);
            if (!ch__rs_filter_maybe(t, ch__rs_tag(h)))
                continue;
            q->lens[q->n] = (uint8_t)len;
            q->hs[q->n++] = h;
            __builtin_prefetch(&t->slots[ch__rs_home(t, ch__rs_tag(h))]);
        }
    }
}

/* Read the slots, note and prefetch the elements whose tags match, longest prefix first. */
static void v4_stage_slots(const ch_refset *s, size_t m, v4q *g)
{
    for (size_t i = 0; i < m; i++) {
        v4q *q = &g[i];
        q->ncand = 0;
        q->over = false;
        bool done = false;
        for (uint32_t j = 0; j < q->n && !q->over && !done; j++) {
            const ch__rs_table *t = &s->v4[q->lens[j]];
            uint32_t tag = ch__rs_tag(q->hs[j]), pos = ch__rs_home(t, tag);
            for (ch__rs_slot sl; (sl = t->slots[pos]).idx1 != 0; pos = (pos + 1) & t->mask) {
                if (sl.tag != tag)
                    continue;
                if (q->ncand == CH__RS_MAXCAND) {
                    q->over = true;
                    break;
                }
                q->cand[q->ncand++] = sl.idx1;
                /* Exact tags: this is the key. Valid always, it is the longest match. */
                if (sl.idx1 & CH__RS_SIMPLE)
                    done = true;
                else
                    ch__rs_prefetch_elem(s, CH__RS_IDX1(sl.idx1) - 1);
                break; /* no other slot holds this key */
            }
        }
    }
}

/* Compare: candidates come longest prefix first, so the first valid one is the answer. */
static size_t v4_stage_compare(const ch_refset *s, const ch_ip *ips, const int64_t *at_ms, size_t m,
                               const v4q *g, const ch_refset_elem **hits)
{
    size_t nhits = 0;
    for (size_t i = 0; i < m; i++) {
        const v4q *q = &g[i];
        const ch_refset_elem *e = NULL;
        if (ips[i].family == 6) {
            ch_refset_contains_ip(s, &ips[i], at_ms[i], &e);
        } else if (ips[i].family == 4) {
            for (uint32_t c = 0; c < q->ncand && e == NULL; c++)
                e = (q->cand[c] & CH__RS_SIMPLE) ? ch__rs_elem(s, CH__RS_IDX1(q->cand[c]) - 1)
                                                 : ch__rs_chain_valid(s, q->cand[c], at_ms[i]);
            if (e == NULL && q->over)
                ch_refset_contains_ip(s, &ips[i], at_ms[i], &e);
        }
        hits[i] = e;
        nhits += e != NULL;
    }
    return nhits;
}

size_t ch_refset_contains_ip_batch(const ch_refset *s, const ch_ip *ips, const int64_t *at_ms,
                                   size_t n, const ch_refset_elem **hits)
{
    if (s->type != CH_REFSET_IP || s->count == 0) {
        for (size_t i = 0; i < n; i++)
            hits[i] = NULL;
        return 0;
    }
    /* The pipeline of ch_refset_contains_dq_batch: prefetch group t, read the slots of group
     * t-1, compare group t-2. */
    v4q ring[3][CH__RS_BATCH];
    size_t groups = (n + CH__RS_BATCH - 1) / CH__RS_BATCH, nhits = 0;
    for (size_t t = 0; t < groups + 2; t++) {
        if (t < groups) {
            size_t b = t * CH__RS_BATCH;
            v4_stage_prefetch(s, ips + b, n - b < CH__RS_BATCH ? n - b : CH__RS_BATCH, ring[t % 3]);
        }
        if (t >= 2) {
            size_t b = (t - 2) * CH__RS_BATCH;
            nhits +=
                v4_stage_compare(s, ips + b, at_ms + b, n - b < CH__RS_BATCH ? n - b : CH__RS_BATCH,
                                 ring[(t - 2) % 3], hits + b);
        }
        if (t >= 1 && t - 1 < groups) {
            size_t b = (t - 1) * CH__RS_BATCH;
            v4_stage_slots(s, n - b < CH__RS_BATCH ? n - b : CH__RS_BATCH, ring[(t - 1) % 3]);
        }
    }
    return nhits;
}
