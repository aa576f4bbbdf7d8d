/*
 * refset_int.h - the inside of reference sets, shared by refset.c (elements, strings, tables,
 * registry), refset_ip.c, refset_domain.c and refset_list.c. Nothing here is part of the
 * contract in refset.h.
 *
 * Tables are open addressing with linear probing over 8-byte slots {tag, index + 1}. The tag is
 * the top 32 bits of the key's 64-bit hash and the home slot is the tag's top log2(capacity)
 * bits, so a table can grow and delete (backward shift, no tombstones) from the slots alone,
 * without ever going back to the key. A probe compares tags first and touches the element only
 * on a tag match, so a miss costs one or two cache lines of slots and no element.
 */
#ifndef CH_ENRICH_REFSET_INT_H
#define CH_ENRICH_REFSET_INT_H

#include <stdint.h>
#include <string.h>

#include "enrich/refset.h"

/* ---- hashing: a wyhash-style multiply-mix, written out here ------------------------------- */

#define CH__RS_S0 0xa0761d6478bd642full
#define CH__RS_S1 0xe7037ed1a0b428dbull
#define CH__RS_S2 0x8ebc6af09c88c6e3ull
#define CH__RS_S3 0x589965cc75374cc3ull
#define CH__RS_DOMAIN_ROOT 0x2d358dccaa6c78a5ull /* seed of the rightmost label */

static inline uint64_t ch__rs_mum(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t ch__rs_r8(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint64_t ch__rs_r4(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline uint64_t ch__rs_hash(const void *key, size_t len, uint64_t seed)
{
    const uint8_t *p = key;
    uint64_t a, b;
    seed ^= ch__rs_mum(seed ^ CH__RS_S0, CH__RS_S1);
    if (len <= 16) {
        if (len >= 4) {
            size_t m = (len >> 3) << 2;
            a = (ch__rs_r4(p) << 32) | ch__rs_r4(p + m);
            b = (ch__rs_r4(p + len - 4) << 32) | ch__rs_r4(p + len - 4 - m);
        } else if (len > 0) {
            a = ((uint64_t)p[0] << 16) | ((uint64_t)p[len >> 1] << 8) | p[len - 1];
            b = 0;
        } else {
            a = b = 0;
        }
    } else {
        size_t i = len;
        while (i > 16) {
            seed = ch__rs_mum(ch__rs_r8(p) ^ CH__RS_S1, ch__rs_r8(p + 8) ^ seed);
            p += 16;
            i -= 16;
        }
        a = ch__rs_r8(p + i - 16);
        b = ch__rs_r8(p + i - 8);
    }
    return ch__rs_mum(CH__RS_S1 ^ len, ch__rs_mum(a ^ CH__RS_S1, b ^ seed));
}

/* Mask of the first n bytes of a word, n = 0..8. */
static inline uint64_t ch__rs_bytes_mask(size_t n)
{
    return n >= 8 ? ~0ull : (1ull << (8 * n)) - 1;
}

/* The end of a label's hash from its first 16 bytes (zero past its end) and its length; labels
 * longer than 16 bytes fold their head in 16-byte blocks first. */
static inline uint64_t ch__rs_label_mix(uint64_t a, uint64_t b, size_t len, uint64_t seed,
                                        uint64_t parent)
{
    uint64_t own = ch__rs_mum(a ^ CH__RS_S1 ^ seed, b ^ CH__RS_S0 ^ len);
    return ((parent << 25) | (parent >> 39)) ^ own;
}

static inline uint64_t ch__rs_label_head(const uint8_t **p, size_t *len)
{
    uint64_t seed = CH__RS_S3;
    while (*len > 16) {
        seed = ch__rs_mum(ch__rs_r8(*p) ^ CH__RS_S1, ch__rs_r8(*p + 8) ^ seed);
        *p += 16;
        *len -= 16;
    }
    return seed;
}

/* One label of a domain, chained onto its parent's hash. Each label gets one multiply of its
 * own, independent of the others, so the labels of a name are mixed in parallel; the chain step
 * is a rotation and an xor, which keeps the order of labels ("a.b" and "b.a" differ) for one
 * cycle of latency. Chain collisions are as unlikely as 64-bit collisions of the label mixes,
 * and a collision costs a string compare, never a wrong answer: every hit compares the key.
 * This version reads only the label's bytes (entries); ch__rs_label_hash_padded gives the same
 * value reading 16 bytes at once (queries, whose buffer is padded). */
static inline uint64_t ch__rs_label_hash(const void *label, size_t len, uint64_t parent)
{
    const uint8_t *p = label;
    size_t total = len;
    uint64_t seed = ch__rs_label_head(&p, &len);
    uint8_t tmp[16] = {0};
    memcpy(tmp, p, len);
    return ch__rs_label_mix(ch__rs_r8(tmp), ch__rs_r8(tmp + 8), total, seed, parent);
}

static inline uint64_t ch__rs_label_hash_padded(const void *label, size_t len, uint64_t parent)
{
    const uint8_t *p = label;
    size_t total = len;
    uint64_t seed = ch__rs_label_head(&p, &len);
    uint64_t a = ch__rs_r8(p) & ch__rs_bytes_mask(len);
    uint64_t b = ch__rs_r8(p + 8) & ch__rs_bytes_mask(len > 8 ? len - 8 : 0);
    return ch__rs_label_mix(a, b, total, seed, parent);
}

static inline uint64_t ch__rs_hash64(uint64_t v, uint64_t seed)
{
    return ch__rs_mum(ch__rs_mum(v ^ CH__RS_S0, seed ^ CH__RS_S1) ^ CH__RS_S2, v ^ CH__RS_S3);
}

/* ---- tables ----------------------------------------------------------------------------- */

typedef struct ch__rs_slot {
    uint32_t tag;
    uint32_t idx1; /* head element index + 1 (0 = empty), | CH__RS_SIMPLE */
} ch__rs_slot;

/* In a slot: the key has exactly one element and it is valid at all times (the usual block-list
 * entry), so a hit needs no look at the element's validity. */
#define CH__RS_SIMPLE 0x80000000u
#define CH__RS_IDX1(x) ((x) & ~CH__RS_SIMPLE)

typedef struct ch__rs_table {
    ch__rs_slot *slots; /* NULL while empty */
    void *raw;          /* what to free (slots may be aligned inside it) */
    uint32_t mask;      /* capacity - 1 */
    uint32_t shift;     /* 32 - log2(capacity): home = tag >> shift */
    uint32_t count;     /* occupied slots (distinct keys) */
    /* Big tables (CH__RS_FILTER_MIN slots and up) keep a blocked Bloom filter of their tags, one
     * byte a slot (1/8 of the table, so it stays in L2/L3 when the table does not): a probe for
     * an absent key is answered there. Built from the tags alone, it is rebuilt on growth and
     * when deletions have left too many stale bits. */
    uint64_t *filter;
    void *filter_raw;
    uint32_t fmask;  /* filter words - 1 */
    uint32_t fstale; /* deletions since the filter was built */
} ch__rs_table;

#define CH__RS_FILTER_MIN (1u << 17)

static inline uint32_t ch__rs_filter_word(const ch__rs_table *t, uint32_t tag)
{
    return (uint32_t)(((uint64_t)tag * 0x9e3779b97f4a7c15ull) >> 32) & t->fmask;
}

static inline uint64_t ch__rs_filter_bits(uint32_t tag)
{
    uint64_t y = (uint64_t)tag * 0xc2b2ae3d27d4eb4full;
    return (1ull << (y >> 58)) | (1ull << ((y >> 52) & 63)) | (1ull << ((y >> 46) & 63));
}

/* False when the key of this tag is certainly absent. */
static inline bool ch__rs_filter_maybe(const ch__rs_table *t, uint32_t tag)
{
    if (t->filter == NULL)
        return true;
    uint64_t bits = ch__rs_filter_bits(tag);
    return (t->filter[ch__rs_filter_word(t, tag)] & bits) == bits;
}

static inline uint32_t ch__rs_tag(uint64_t h) { return (uint32_t)(h >> 32); }

static inline uint32_t ch__rs_home(const ch__rs_table *t, uint32_t tag)
{
    return t->shift >= 32 ? 0 : tag >> t->shift;
}

/* Make room for one more key (grow past half full). */
int ch__rs_table_reserve(ch__rs_table *t);
/* Insert a key known to be absent (idx1 as stored in the slot). Reserve first. */
void ch__rs_table_insert(ch__rs_table *t, uint32_t tag, uint32_t idx1);
/* Delete the slot at pos (backward shift). */
void ch__rs_table_delete(ch__rs_table *t, uint32_t pos);
void ch__rs_table_free(ch__rs_table *t);
size_t ch__rs_table_bytes(const ch__rs_table *t);

/* Large arrays (2 MB and up) are 2 MB-aligned and advised to use transparent huge pages, so that
 * random probes into a big set do not each pay a TLB miss. *raw is what to ch_free. */
void *ch__rs_big_alloc(size_t n, bool zero, void **raw);

/* ---- the set ---------------------------------------------------------------------------- */

#define CH__RS_SEGMENTS 28 /* segment c holds 16 << c elements: 28 cover 2^30 and more */
/* Domain and string elements carry their key inline after the struct when it fits, so that a
 * hit reads the key from the element's own cache lines instead of one more heap block. 48 bytes
 * make the stride 128: in the 2 MB-aligned segments of a big set the inline key is then the
 * second half of one cache line, and one line read confirms a hit (at 32, a quarter of the keys
 * straddled two lines and 32..47-byte names took a heap block, one more dependent miss). */
#define CH__RS_INLINE 48
#define CH__RS_STRIDE_STR (sizeof(ch_refset_elem) + CH__RS_INLINE)
/* IPv4 sets with this many keys keep a map of the prefix lengths present in each bucket. */
#define CH__RS_V4MAP_MIN 16
#define CH__RS_LIVE 1u
#define CH__RS_OWNS_KEY 2u /* key.str is a heap copy */

typedef struct ch__rs_istr ch__rs_istr;

struct ch_refset {
    char *name;
    ch_refset_type type;
    uint32_t flags;
    size_t max_elems;
    size_t max_entry;

    /* Elements in segments that never move; stride bytes apart. */
    char *chunks[CH__RS_SEGMENTS];
    void *chunks_raw[CH__RS_SEGMENTS];
    uint32_t nchunks;
    uint32_t stride;
    uint32_t hi;        /* indices below hi have been used */
    uint32_t free_head; /* free list of indices (index + 1) */
    size_t count;
    uint64_t dropped;
    int64_t min_expiry; /* lower bound of live expiries */
    size_t str_bytes;   /* heap bytes of key strings */

    /* Interned source and indicator strings, with reference counts. */
    ch__rs_istr **istr;
    uint32_t istr_mask, istr_count;
    size_t istr_bytes;

    /* domain, string and number keys */
    ch__rs_table keys;
    uint32_t label_refs[CH_REFSET_DQ_MAX_LABELS + 1]; /* domain keys per label count */
    uint64_t label_bits[3];

    /* ip keys: one table per prefix length */
    ch__rs_table v4[33];
    ch__rs_table v6[129];
    uint64_t v4_bits;
    uint64_t v6_bits[3];
    /* v4_map[a >> (32 - v4_map_bits)] bit L: a key of length L may cover addresses of that
     * bucket (a key shorter than v4_map_bits is marked in every bucket it spans). About one
     * bucket a key, at most 2^16 (512 KB). Bits are set on add and go stale on removal; the map
     * is rebuilt when stale bits pile up or the set outgrows it. */
    uint64_t *v4_map;
    uint32_t v4_map_bits;
    uint32_t v4_map_stale;
    uint32_t v4_keys; /* IPv4 keys */
};

/* Segment c starts at index 16 * ((1 << c) - 1): one count-leading-zeros finds it. */
static inline ch_refset_elem *ch__rs_elem(const ch_refset *s, uint32_t idx)
{
    uint64_t j = (uint64_t)idx + 16;
    unsigned c = 59u - (unsigned)__builtin_clzll(j);
    return (ch_refset_elem *)(void *)(s->chunks[c] + (j - (16ull << c)) * s->stride);
}

static inline bool ch__rs_valid_at(const ch_refset_elem *e, int64_t at)
{
    return e->valid_from <= at && at < e->expiry;
}

/* Batched lookups work on groups of this many queries, with this many tag matches a query. */
#define CH__RS_BATCH 16
#define CH__RS_MAXCAND 4

static inline void ch__rs_prefetch_elem(const ch_refset *s, uint32_t idx)
{
    const char *e = (const char *)ch__rs_elem(s, idx);
    __builtin_prefetch(e);
    __builtin_prefetch(e + s->stride - 1);
}

/* The inline key of a domain or string element ("" when the key is on the heap). */
static inline const char *ch__rs_inline(const ch_refset_elem *e) { return (const char *)(e + 1); }

/* First element of a key's chain valid at `at`, or NULL. */
static inline const ch_refset_elem *ch__rs_chain_valid(const ch_refset *s, uint32_t idx1,
                                                       int64_t at)
{
    idx1 = CH__RS_IDX1(idx1);
    while (idx1 != 0) {
        const ch_refset_elem *e = ch__rs_elem(s, idx1 - 1);
        if (ch__rs_valid_at(e, at))
            return e;
        idx1 = e->_next;
    }
    return NULL;
}

/* A key as the tables see it: parsed, normalized, hashed, with its table. */
typedef struct ch__rs_key {
    ch__rs_table *table;
    uint64_t hash;
    const char *str; /* domain (normalized) and string (folded when NOCASE) */
    uint32_t len;    /* str bytes; ip: prefix in the family's bits */
    uint32_t labels; /* domain label count */
    uint8_t family;  /* ip: 4 or 6 */
    uint8_t ip[16];  /* ip: masked network */
    int64_t num;
} ch__rs_key;

/* Slot of the key in its table, or UINT32_MAX. */
uint32_t ch__rs_find(const ch_refset *s, const ch__rs_key *k);
/* Add an element for the key. Returns 1 new, 0 refreshed, < 0 error. */
int ch__rs_add_key(ch_refset *s, const ch__rs_key *k, const ch_refset_meta *meta, ch_error *err);
/* Remove the key's elements matching source/indicator (NULL = any): count or CH_ENOTFOUND. */
int ch__rs_remove_key(ch_refset *s, const ch__rs_key *k, const char *source, const char *indicator);

/* Per type, in refset_ip.c and refset_domain.c. They fill k from text or values; the string
 * buffers they point k->str at belong to the caller (kbuf). */
int ch__rs_parse_cidr(const char *text, size_t len, ch_ip *net, unsigned *prefix, ch_error *err);
int ch__rs_ip_key(ch_refset *s, const ch_ip *net, unsigned prefix, ch__rs_key *k, ch_error *err);
int ch__rs_domain_key(ch_refset *s, const char *text, size_t len, char *kbuf, ch__rs_key *k,
                      ch_error *err);
/* The key of an existing element (for removal by element). */
void ch__rs_elem_key(ch_refset *s, const ch_refset_elem *e, ch__rs_key *k);
void ch__rs_ip_elem_key(ch_refset *s, const ch_refset_elem *e, ch__rs_key *k);
void ch__rs_domain_elem_key(ch_refset *s, const ch_refset_elem *e, ch__rs_key *k);
/* Normalize a domain entry into out (at least CH_REFSET_DOMAIN_MAX + 1 bytes): lower-cased,
 * "*." / "." prefix and one trailing dot dropped, charset and label lengths checked. Returns
 * the length or CH_EPARSE with the reason; *labels gets the label count. */
int ch__rs_domain_normalize(const char *text, size_t len, char *out, unsigned *labels,
                            ch_error *err);
/* Hash of a normalized domain, label by label from the right (as ch_refset_dq_prepare does). */
uint64_t ch__rs_domain_hash(const char *name, size_t len);

/* Rebuild the IPv4 length map from the elements (or drop it when the set is small); mark one
 * key in it. */
void ch__rs_v4map_rebuild(ch_refset *s);
void ch__rs_v4map_mark(ch_refset *s, const uint8_t *ip, unsigned len);
/* Table bookkeeping when a key appears or goes (bitmaps of lengths and label counts). */
void ch__rs_key_added(ch_refset *s, const ch__rs_key *k);
void ch__rs_key_removed(ch_refset *s, const ch__rs_key *k);

#endif
