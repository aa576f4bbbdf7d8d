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
 * Big IPv4 sets also keep a 256 KB map from each /16 to the lengths of 16 and more present
 * under it, so that a lookup probes only those (in a block list, typically /32 and /24) and the
 * short lengths, whose tables are small enough to stay in cache.
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

static inline uint64_t be64(const uint8_t *p)
{
    return ((uint64_t)be32(p) << 32) | be32(p + 4);
}

static inline uint32_t v4_mask(unsigned len) { return len ? 0xffffffffu << (32 - len) : 0; }

/* One 64x64->128 multiply: the key is at most 38 bits and the top 32 bits of the folded product
 * (tag and home slot) depend on all of them. */
static inline uint64_t v4_hash(uint32_t key, unsigned len)
{
    return ch__rs_mum((((uint64_t)len << 32) | key) ^ CH__RS_S0, CH__RS_S1);
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

int ch__rs_ip_key(ch_refset *s, const ch_ip *net, unsigned prefix, ch__rs_key *k,
                  ch_error *err)
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
static inline const ch_refset_elem *probe_v4(const ch_refset *s, const ch__rs_table *t,
                                             uint32_t key, uint64_t h, int64_t at)
{
    uint32_t tag = ch__rs_tag(h), pos = ch__rs_home(t, tag);
    for (;;) {
        ch__rs_slot sl = t->slots[pos];
        if (sl.idx1 == 0)
            return NULL;
        if (sl.tag == tag) {
            const ch_refset_elem *e = ch__rs_elem(s, sl.idx1 - 1);
            if (be32(e->key.ip + 12) == key)
                return ch__rs_chain_valid(s, sl.idx1, at);
        }
        pos = (pos + 1) & t->mask;
    }
}

static inline const ch_refset_elem *probe_v6(const ch_refset *s, const ch__rs_table *t,
                                             uint64_t hi, uint64_t lo, uint64_t h, int64_t at)
{
    uint32_t tag = ch__rs_tag(h), pos = ch__rs_home(t, tag);
    for (;;) {
        ch__rs_slot sl = t->slots[pos];
        if (sl.idx1 == 0)
            return NULL;
        if (sl.tag == tag) {
            const ch_refset_elem *e = ch__rs_elem(s, sl.idx1 - 1);
            if (be64(e->key.ip) == hi && be64(e->key.ip + 8) == lo)
                return ch__rs_chain_valid(s, sl.idx1, at);
        }
        pos = (pos + 1) & t->mask;
    }
}

void ch__rs_v4map_rebuild(ch_refset *s)
{
    s->v4_map_stale = 0;
    if (s->v4_long_keys < CH__RS_V4MAP_MIN / 2) {
        ch_free(s->v4_map);
        s->v4_map = NULL;
        return;
    }
    if (s->v4_map == NULL && (s->v4_map = ch_malloc(65536 * sizeof *s->v4_map)) == NULL)
        return; /* the map only saves probes: without it every length in use is probed */
    memset(s->v4_map, 0, 65536 * sizeof *s->v4_map);
    size_t cur = 0;
    const ch_refset_elem *e;
    while ((e = ch_refset_next(s, &cur)) != NULL)
        if (e->family == 4 && e->len >= 16)
            s->v4_map[(e->key.ip[12] << 8) | e->key.ip[13]] |= 1u << (e->len - 16);
}

static const ch_refset_elem *lookup_v4(const ch_refset *s, uint32_t a, int64_t at)
{
    unsigned lens[33];
    uint64_t hs[33];
    unsigned n = 0;
    uint64_t bits = s->v4_bits;
    if (s->v4_map != NULL)
        bits &= ((uint64_t)s->v4_map[a >> 16] << 16) | 0xffffu;
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
        const ch_refset_elem *e = probe_v4(s, &s->v4[len], a & v4_mask(len), hs[i], at);
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
            const ch_refset_elem *e =
                probe_v6(s, &s->v6[len], hi, lo, v6_hash(hi, lo, len), at);
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
    uint32_t n;          /* lengths to probe */
    uint8_t lens[33];
    uint64_t hs[33];
    uint32_t ncand;
    bool over;           /* more tag matches than fit: answered one by one */
    uint32_t cand[CH__RS_MAXCAND];
} v4q;

size_t ch_refset_contains_ip_batch(const ch_refset *s, const ch_ip *ips, const int64_t *at_ms,
                                   size_t n, const ch_refset_elem **hits)
{
    size_t nhits = 0;
    if (s->type != CH_REFSET_IP || s->count == 0) {
        for (size_t i = 0; i < n; i++)
            hits[i] = NULL;
        return 0;
    }
    v4q g[CH__RS_BATCH];
    for (size_t base = 0; base < n; base += CH__RS_BATCH) {
        size_t m = n - base < CH__RS_BATCH ? n - base : CH__RS_BATCH;
        /* 1: hash every length to probe, prefetch every home slot. */
        for (size_t i = 0; i < m; i++) {
            const ch_ip *ip = &ips[base + i];
            v4q *q = &g[i];
            q->n = 0;
            if (ip->family != 4)
                continue;
            q->a = be32(ip->b + 12);
            uint64_t bits = s->v4_bits;
            if (s->v4_map != NULL)
                bits &= ((uint64_t)s->v4_map[q->a >> 16] << 16) | 0xffffu;
            for (; bits != 0; q->n++) {
                unsigned len = 63u - (unsigned)__builtin_clzll(bits);
                bits &= ~(1ull << len);
                const ch__rs_table *t = &s->v4[len];
                q->lens[q->n] = (uint8_t)len;
                q->hs[q->n] = v4_hash(q->a & v4_mask(len), len);
                __builtin_prefetch(&t->slots[ch__rs_home(t, ch__rs_tag(q->hs[q->n]))]);
            }
        }
        /* 2: read the slots, prefetch the elements whose tags match. */
        for (size_t i = 0; i < m; i++) {
            v4q *q = &g[i];
            q->ncand = 0;
            q->over = false;
            for (uint32_t j = 0; j < q->n; j++) {
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
                    ch__rs_prefetch_elem(s, sl.idx1 - 1);
                }
            }
        }
        /* 3: compare, longest prefix first (candidates are in probe order). */
        for (size_t i = 0; i < m; i++) {
            const ch_ip *ip = &ips[base + i];
            v4q *q = &g[i];
            const ch_refset_elem *e = NULL;
            if (ip->family == 6) {
                ch_refset_contains_ip(s, ip, at_ms[base + i], &e);
            } else {
                /* Candidates come longest prefix first: the first valid one is the answer. */
                for (uint32_t c = 0; c < q->ncand && e == NULL; c++) {
                    const ch_refset_elem *x = ch__rs_elem(s, q->cand[c] - 1);
                    if (be32(x->key.ip + 12) == (q->a & v4_mask(x->len)))
                        e = ch__rs_chain_valid(s, q->cand[c], at_ms[base + i]);
                }
                if (e == NULL && q->over)
                    ch_refset_contains_ip(s, ip, at_ms[base + i], &e);
            }
            hits[base + i] = e;
            nhits += e != NULL;
        }
    }
    return nhits;
}
