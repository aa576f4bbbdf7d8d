/*
 * refset_domain.c - domains in reference sets, matched on label boundaries.
 *
 * A domain's hash is built label by label from the right, each label's mix chained onto its
 * parent's hash: hash("pool.supportxmr.com") = C("pool", C("supportxmr", C("com", root))).
 * So one right-to-left pass over a query yields the hash of every label-boundary suffix, and an
 * entry hashes to exactly the value of the same suffix inside any longer name; "notsupportxmr"
 * is a different label, so "notsupportxmr.com" never meets "supportxmr.com". The set keeps a
 * bitmap of the label counts of its entries, and a lookup probes only suffixes of those counts,
 * longest first (the most specific listed domain wins): a block list of 2- and 3-label names
 * costs two probes per query, whatever its size. Hash tags rule out almost every non-matching
 * probe without touching the entry; a tag match is confirmed by comparing the bytes.
 *
 * Preparing a query is one branch-free pass over the name, eight bytes at a time (lower-casing
 * it into a zero-padded buffer and noting the dots as bits), then one multiply per label, the
 * labels independent of each other and chained by a rotation. The padding lets a label be read
 * as two words and a short key be compared as one 48-byte block against the zero-padded inline
 * key of its element.
 *
 * Cost (bench/refset_bench.c, 1M names): a lookup one by one is about 20 ns of preparing and
 * 30 ns of probing, plus, on a hit, two dependent DRAM reads (the slot, then the element's
 * line holding the key) that nothing but batching can overlap; misses are mostly answered by the
 * Bloom filter. Batches run a four-stage pipeline (filter words, slots, elements, compare) over
 * flat lists of the probes that survive the filter.
 *
 * Entries must look like DNS names (letters, digits, '-', '_', labels of 1..63 bytes, 253 in
 * all) so that junk lines of a feed are reported instead of stored. Queries are taken as they
 * come (any bytes between the dots), since an attacker chooses them: only ASCII case is folded.
 */
#include "enrich/refset_int.h"

static inline char lower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c; }

int ch__rs_domain_normalize(const char *text, size_t len, char *out, unsigned *labels,
                            ch_error *err)
{
    if (len >= 2 && text[0] == '*' && text[1] == '.') {
        text += 2;
        len -= 2;
    } else if (len >= 1 && text[0] == '.') {
        text++;
        len--;
    }
    if (len > 0 && text[len - 1] == '.')
        len--;
    if (len == 0)
        return ch_error_set(err, CH_EPARSE, "empty domain");
    if (len > CH_REFSET_DOMAIN_MAX)
        return ch_error_set(err, CH_EPARSE, "domain longer than %d bytes", CH_REFSET_DOMAIN_MAX);
    unsigned n = 1;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        char c = lower(text[i]);
        if (c == '.') {
            if (label == 0)
                return ch_error_set(err, CH_EPARSE, "empty label in domain");
            n++;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_') {
            if (++label > 63)
                return ch_error_set(err, CH_EPARSE, "domain label longer than 63 bytes");
        } else {
            unsigned char u = (unsigned char)c;
            if (u >= 0x21 && u < 0x7f)
                return ch_error_set(err, CH_EPARSE, "character '%c' not allowed in a domain", c);
            return ch_error_set(err, CH_EPARSE, "byte 0x%02x not allowed in a domain", u);
        }
        out[i] = c;
    }
    if (label == 0)
        return ch_error_set(err, CH_EPARSE, "empty label in domain");
    out[len] = '\0';
    *labels = n;
    return (int)len;
}

uint64_t ch__rs_domain_hash(const char *name, size_t len)
{
    uint64_t h = CH__RS_DOMAIN_ROOT;
    size_t end = len;
    for (;;) {
        size_t st = end;
        while (st > 0 && name[st - 1] != '.')
            st--;
        h = ch__rs_label_hash(name + st, end - st, h);
        if (st == 0)
            return h;
        end = st - 1;
    }
}

int ch__rs_domain_key(ch_refset *s, const char *text, size_t len, char *kbuf, ch__rs_key *k,
                      ch_error *err)
{
    if (s->type != CH_REFSET_DOMAIN)
        return ch_error_set(err, CH_EUSAGE, "set '%s' is not a domain set", s->name);
    unsigned labels;
    int n = ch__rs_domain_normalize(text, len, kbuf, &labels, err);
    if (n < 0)
        return n;
    memset(k, 0, sizeof *k);
    k->table = &s->keys;
    k->str = kbuf;
    k->len = (uint32_t)n;
    k->labels = labels;
    k->hash = ch__rs_domain_hash(kbuf, (size_t)n);
    return CH_OK;
}

void ch__rs_domain_elem_key(ch_refset *s, const ch_refset_elem *e, ch__rs_key *k)
{
    memset(k, 0, sizeof *k);
    k->table = &s->keys;
    k->str = e->key.str;
    k->len = e->len;
    k->labels = e->_labels;
    k->hash = ch__rs_domain_hash(e->key.str, e->len);
}

/* Eight name bytes as a little-endian word (as every hash here reads them): ASCII upper case
 * folded to lower case with no branch a byte (SWAR: the high bit of each byte computes the
 * ranges), and one bit a '.' byte ORed into *dots at bit `at` onwards. Bytes of 0x80 and up pass
 * unchanged. */
static inline uint64_t lower8(uint64_t x, uint64_t *dots, size_t at)
{
    const uint64_t ones = 0x0101010101010101ull, hi = ones << 7, lo7 = ~hi;
    uint64_t t = x & lo7;
    uint64_t ge_a = t + ones * (0x80 - 'A'); /* high bit: t >= 'A' (no carry out of a byte) */
    uint64_t gt_z = t + ones * (0x7f - 'Z'); /* high bit: t > 'Z' */
    x |= (ge_a & ~gt_z & ~x & hi) >> 2;      /* 0x80 >> 2 = 0x20, the case bit */
    uint64_t y = x ^ (ones * '.');
    uint64_t dot = ~((((y & lo7) + lo7) | y)) & hi; /* high bit: the byte is '.', exactly */
    *dots |= (((dot >> 7) * 0x0102040810204080ull) >> 56) << at;
    return x;
}

void ch_refset_dq_prepare(ch_refset_dq *q, const char *name, size_t len)
{
    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len > CH_REFSET_DOMAIN_MAX) {
        /* Keep the rightmost labels that fit: no entry is longer, so no match is lost. */
        size_t off = len - CH_REFSET_DOMAIN_MAX;
        while (off < len && name[off - 1] != '.')
            off++;
        name += off;
        len -= off;
    }
    /* One pass, eight bytes at a time: lower-case into q->name and note the dots as bits. */
    uint64_t dotw[4] = {0, 0, 0, 0}; /* bit i: name[i] is a dot (len <= 253) */
    const uint8_t *in = (const uint8_t *)name;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w = lower8(ch__rs_r8(in + i), &dotw[i >> 6], i & 63);
        memcpy(q->name + i, &w, 8);
    }
    if (i < len) {
        /* The last 1..7 bytes, read without going past the caller's buffer. */
        uint64_t w = 0;
        if (len >= 8)
            w = ch__rs_r8(in + len - 8) >> (8 * (8 - (len - i)));
        else
            memcpy(&w, in, len);
        w = lower8(w, &dotw[i >> 6], i & 63);
        memcpy(q->name + i, &w, 8);
    }
    memset(q->name + len, 0, 48); /* NUL and the padding the 48-byte compare relies on */
    q->len = (uint32_t)len;
    q->nlabels = 0;
    if (len == 0)
        return;
    /* Labels right to left, each hashed onto its parent; the next dot to the left is the highest
     * bit left in the dot words. */
    uint64_t h = CH__RS_DOMAIN_ROOT;
    size_t end = len, w = (len - 1) >> 6;
    uint64_t bits = dotw[w];
    for (;;) {
        while (bits == 0 && w > 0)
            bits = dotw[--w];
        size_t st = 0;
        if (bits != 0) {
            unsigned b = 63u - (unsigned)__builtin_clzll(bits);
            bits &= ~(1ull << b);
            st = w * 64 + b + 1;
        }
        h = ch__rs_label_hash_padded(q->name + st, end - st, h);
        q->hash[q->nlabels] = h;
        q->start[q->nlabels] = (uint8_t)st;
        if (++q->nlabels == CH_REFSET_DQ_MAX_LABELS || st == 0)
            return;
        end = st - 1;
    }
}

static inline bool has_labels(const ch_refset *s, unsigned n)
{
    return (s->label_bits[n >> 6] >> (n & 63)) & 1;
}

/* The suffixes of q worth probing, as bits: bit k = the suffix of k + 1 labels, present in the set
 * as a label count. Only for queries of at most 63 labels (others go through probe_slow). */
static inline uint64_t probe_mask(const ch_refset *s, const ch_refset_dq *q)
{
    uint64_t m = (s->label_bits[0] >> 1) | (s->label_bits[1] << 63);
    m &= q->nlabels >= 64 ? ~0ull : (1ull << q->nlabels) - 1;
    if (s->flags & CH_REFSET_EXACT)
        m &= q->start[q->nlabels - 1] == 0 ? 1ull << (q->nlabels - 1) : 0;
    return m;
}

/* Whether element e (from a slot holding idx1) has the key suffix. A short key of an always-valid
 * element is compared in place, NUL included, without reading the rest of the element. */
static inline bool match(const ch_refset_elem *e, uint32_t idx1, const char *suffix, uint32_t slen)
{
    /* Both sides are zero-padded past their NUL: one fixed-size compare, inlined. */
    if ((idx1 & CH__RS_SIMPLE) && slen - 1u < CH__RS_INLINE - 1u) /* 1 <= slen < 48 */
        return memcmp(ch__rs_inline(e), suffix, CH__RS_INLINE) == 0;
    return e->len == slen && memcmp(e->key.str, suffix, slen) == 0;
}

static inline const ch_refset_elem *probe(const ch_refset *s, const ch_refset_dq *q, unsigned k,
                                          int64_t at)
{
    const ch__rs_table *t = &s->keys;
    uint32_t tag = ch__rs_tag(q->hash[k]), pos = ch__rs_home(t, tag);
    if (!ch__rs_filter_maybe(t, tag))
        return NULL;
    const char *suffix = q->name + q->start[k];
    uint32_t slen = q->len - q->start[k];
    for (;;) {
        ch__rs_slot sl = t->slots[pos];
        if (sl.idx1 == 0)
            return NULL;
        if (sl.tag == tag) {
            const ch_refset_elem *e = ch__rs_elem(s, CH__RS_IDX1(sl.idx1) - 1);
            if (match(e, sl.idx1, suffix, slen))
                return (sl.idx1 & CH__RS_SIMPLE) ? e : ch__rs_chain_valid(s, sl.idx1, at);
        }
        pos = (pos + 1) & t->mask;
    }
}

/* Queries of 64 labels and more: every suffix, longest first. */
static const ch_refset_elem *probe_slow(const ch_refset *s, const ch_refset_dq *q, int64_t at)
{
    if ((s->flags & CH_REFSET_EXACT) && q->start[q->nlabels - 1] != 0)
        return NULL;
    unsigned kmin = (s->flags & CH_REFSET_EXACT) ? q->nlabels - 1 : 0;
    for (unsigned k = q->nlabels; k-- > kmin;) {
        const ch_refset_elem *e;
        if (has_labels(s, k + 1) && (e = probe(s, q, k, at)) != NULL)
            return e;
    }
    return NULL;
}

bool ch_refset_contains_dq(const ch_refset *s, const ch_refset_dq *q, int64_t at_ms,
                           const ch_refset_elem **hit)
{
    const ch_refset_elem *e = NULL;
    if (s->type == CH_REFSET_DOMAIN && s->count > 0 && q->nlabels > 0) {
        const ch__rs_table *t = &s->keys;
        if (q->nlabels >= 64) {
            e = probe_slow(s, q, at_ms);
        } else {
            uint64_t m = probe_mask(s, q);
            /* Prefetch every suffix's home slot first so that the misses overlap. */
            for (uint64_t b = m; b != 0; b &= b - 1)
                __builtin_prefetch(
                    &t->slots[ch__rs_home(t, ch__rs_tag(q->hash[__builtin_ctzll(b)]))]);
            while (m != 0 && e == NULL) {
                unsigned k = 63u - (unsigned)__builtin_clzll(m);
                m &= ~(1ull << k);
                e = probe(s, q, k, at_ms);
            }
        }
    }
    if (hit != NULL)
        *hit = e;
    return e != NULL;
}

bool ch_refset_contains_domain(const ch_refset *s, const char *name, size_t len, int64_t at_ms,
                               const ch_refset_elem **hit)
{
    if (s->type != CH_REFSET_DOMAIN || s->count == 0) {
        if (hit != NULL)
            *hit = NULL;
        return false;
    }
    ch_refset_dq q;
    ch_refset_dq_prepare(&q, name, len);
    return ch_refset_contains_dq(s, &q, at_ms, hit);
}

/* ---- batches ----------------------------------------------------------------------------- */

/* A group of up to CH__RS_BATCH queries on its way through the pipeline. After the filter, the
 * suffixes still worth a probe are a flat list (each query's longest first), and the tag matches
 * found in the slots another, so that the later stages loop over work that exists instead of
 * branching on every query (half of them, or nearly all in DNS traffic, are gone after the
 * filter). A query with more probes or candidates than the lists hold is answered by the single
 * lookup ("over"). */
#define DQ_PROBES (CH__RS_BATCH * 8)
#define DQ_CANDS (CH__RS_BATCH * CH__RS_MAXCAND)
_Static_assert(CH__RS_BATCH <= 32, "dq_group.over has a bit a query");

typedef struct dq_probe {
    uint32_t tag;
    uint8_t qi, k; /* query in the group, suffix */
} dq_probe;

typedef struct dq_cand {
    uint32_t idx1; /* as in the slot */
    uint8_t qi, k;
} dq_cand;

typedef struct dq_group {
    uint64_t mask[CH__RS_BATCH]; /* suffixes to probe, before the filter */
    uint32_t over;               /* bit qi: answer that query one by one */
    uint32_t nprobe, ncand;
    dq_probe probe[DQ_PROBES];
    dq_cand cand[DQ_CANDS];
} dq_group;

/* Stage 0: the suffixes worth probing, and their Bloom filter words prefetched (a filter an
 * eighth of a big table is still larger than L2: reading it cold would stall every query). */
static void dq_stage_filter(const ch_refset *s, const ch_refset_dq *const *qs, size_t m,
                            dq_group *g)
{
    const ch__rs_table *t = &s->keys;
    g->over = 0;
    for (size_t i = 0; i < m; i++) {
        const ch_refset_dq *q = qs[i];
        uint64_t mask = 0;
        if (q->nlabels >= 64)
            g->over |= 1u << i;
        else if (q->nlabels > 0)
            mask = probe_mask(s, q);
        g->mask[i] = mask;
        if (t->filter != NULL)
            for (uint64_t b = mask; b != 0; b &= b - 1)
                __builtin_prefetch(
                    &t->filter[ch__rs_filter_word(t, ch__rs_tag(q->hash[__builtin_ctzll(b)]))]);
    }
}

/* Stage 1: the suffixes the filter lets through become probes, and their slots are prefetched.
 * No branch on the filter's answer: a probe is always written and kept only if it may exist. */
static void dq_stage_prefetch(const ch_refset *s, const ch_refset_dq *const *qs, size_t m,
                              dq_group *g)
{
    const ch__rs_table *t = &s->keys;
    uint32_t np = 0;
    for (size_t i = 0; i < m; i++) {
        const ch_refset_dq *q = qs[i];
        for (uint64_t b = g->mask[i]; b != 0;) {
            unsigned k = 63u - (unsigned)__builtin_clzll(b);
            b &= ~(1ull << k);
            if (np == DQ_PROBES) {
                g->over |= 1u << i;
                break;
            }
            uint32_t tag = ch__rs_tag(q->hash[k]);
            g->probe[np] = (dq_probe){tag, (uint8_t)i, (uint8_t)k};
            bool maybe = ch__rs_filter_maybe(t, tag);
            __builtin_prefetch(maybe ? (const void *)&t->slots[ch__rs_home(t, tag)]
                                     : (const void *)g);
            np += maybe;
        }
    }
    g->nprobe = np;
}

/* Stage 2: read the slots; every tag match becomes a candidate and its key is prefetched. */
static void dq_stage_slots(const ch_refset *s, const ch_refset_dq *const *qs, dq_group *g)
{
    const ch__rs_table *t = &s->keys;
    uint32_t nc = 0;
    for (uint32_t p = 0; p < g->nprobe; p++) {
        const dq_probe *pr = &g->probe[p];
        for (uint32_t pos = ch__rs_home(t, pr->tag);; pos = (pos + 1) & t->mask) {
            ch__rs_slot sl = t->slots[pos];
            if (sl.idx1 == 0)
                break;
            if (sl.tag != pr->tag)
                continue;
            if (nc == DQ_CANDS) {
                g->over |= 1u << pr->qi;
                break;
            }
            g->cand[nc++] = (dq_cand){sl.idx1, pr->qi, pr->k};
            const ch_refset_dq *q = qs[pr->qi];
            const ch_refset_elem *e = ch__rs_elem(s, CH__RS_IDX1(sl.idx1) - 1);
            if ((sl.idx1 & CH__RS_SIMPLE) && q->len - q->start[pr->k] < CH__RS_INLINE) {
                __builtin_prefetch(ch__rs_inline(e));
                __builtin_prefetch(ch__rs_inline(e) + CH__RS_INLINE - 1);
            } else {
                ch__rs_prefetch_elem(s, CH__RS_IDX1(sl.idx1) - 1);
            }
        }
    }
    g->ncand = nc;
}

/* Stage 3: each query's first candidate that is its suffix and valid at its time is the answer
 * (candidates are in the order the single lookup would try them). */
static size_t dq_stage_compare(const ch_refset *s, const ch_refset_dq *const *qs,
                               const int64_t *at_ms, size_t m, const dq_group *g,
                               const ch_refset_elem **hits)
{
    for (size_t i = 0; i < m; i++)
        hits[i] = NULL;
    size_t nhits = 0;
    for (uint32_t j = 0; j < g->ncand; j++) {
        const dq_cand *c = &g->cand[j];
        if (hits[c->qi] != NULL || ((g->over >> c->qi) & 1))
            continue;
        const ch_refset_dq *q = qs[c->qi];
        const ch_refset_elem *x = ch__rs_elem(s, CH__RS_IDX1(c->idx1) - 1);
        uint32_t st = q->start[c->k];
        if (match(x, c->idx1, q->name + st, q->len - st)) {
            const ch_refset_elem *e =
                (c->idx1 & CH__RS_SIMPLE) ? x : ch__rs_chain_valid(s, c->idx1, at_ms[c->qi]);
            hits[c->qi] = e;
            nhits += e != NULL;
        }
    }
    for (uint32_t o = g->over; o != 0; o &= o - 1) {
        unsigned i = (unsigned)__builtin_ctz(o);
        nhits += ch_refset_contains_dq(s, qs[i], at_ms[i], &hits[i]);
    }
    return nhits;
}

size_t ch_refset_contains_dq_batch(const ch_refset *s, const ch_refset_dq *const *qs,
                                   const int64_t *at_ms, size_t n, const ch_refset_elem **hits)
{
    if (s->type != CH_REFSET_DOMAIN || s->count == 0) {
        for (size_t i = 0; i < n; i++)
            hits[i] = NULL;
        return 0;
    }
    /* A software pipeline over groups: at step t, group t prefetches its filter words, group
     * t-1 checks them and prefetches its slots, group t-2 reads the slots and prefetches the
     * elements, group t-3 compares. Each load gets a whole step to land. */
    enum { STAGES = 4 };
    dq_group ring[STAGES];
    size_t groups = (n + CH__RS_BATCH - 1) / CH__RS_BATCH, nhits = 0;
    for (size_t t = 0; t < groups + STAGES - 1; t++) {
        for (size_t st = STAGES; st-- > 0;) {
            if (t < st || t - st >= groups)
                continue;
            size_t gi = t - st, b = gi * CH__RS_BATCH;
            size_t m = n - b < CH__RS_BATCH ? n - b : CH__RS_BATCH;
            dq_group *g = &ring[gi % STAGES];
            switch (st) {
            case 0:
                dq_stage_filter(s, qs + b, m, g);
                break;
            case 1:
                dq_stage_prefetch(s, qs + b, m, g);
                break;
            case 2:
                dq_stage_slots(s, qs + b, g);
                break;
            default:
                nhits += dq_stage_compare(s, qs + b, at_ms + b, m, g, hits + b);
                break;
            }
        }
    }
    return nhits;
}
