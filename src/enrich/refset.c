/*
 * refset.c - the body of a reference set: element storage, interned strings, hash tables, the
 * generic add/remove/expire/iterate, and string and number keys. Addresses and domains parse and
 * probe in refset_ip.c and refset_domain.c; the list loader is refset_list.c; the registry is
 * refset_registry.c.
 *
 * Elements live in a segmented array whose segment c holds 16 << c elements, so an index maps
 * to its element with one count-leading-zeros and elements never move as the set grows (lookup
 * results stay valid). Freed elements go on a free list and are reused before the array grows.
 * The last segment can be up to half empty; untouched pages of it cost address space, not RSS.
 * Domain and string elements are 128 bytes apart: the struct and a 48-byte inline key, so keys
 * up to 47 bytes (nearly every domain) need no allocation and sit in the second cache line of
 * their element; longer keys are one heap copy. Arrays of 2 MB and more are aligned for huge pages.
 *
 * Sources and indicator ids are interned per set with reference counts, so that a million
 * elements from one feed share one "coinblockerlists" and the strings go when the last element
 * naming them goes.
 *
 * Each key's slot carries a bit saying "one element, valid always" (CH__RS_SIMPLE), kept up to
 * date on every add, refresh and removal, so that lookups of plain block-list entries skip the
 * validity check. Big tables carry a small Bloom filter of their tags (refset_int.h).
 *
 * Expiry is a scan (ch_refset_expire), skipped outright while nothing can have expired: sets
 * are expired rarely (after a feed pull), and lookups check validity at the event's time anyway,
 * so a heap of expiries would cost 8+ bytes an element for little.
 */
#include "enrich/refset_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "core/mem.h"

/* ---- interned strings ------------------------------------------------------------------- */

struct ch__rs_istr {
    uint64_t hash;
    uint32_t refs;
    uint32_t len;
    char s[];
};

static const char ch__rs_empty[1] = "";

static ch__rs_istr *istr_of(const char *p)
{
    return (ch__rs_istr *)(void *)((char *)(uintptr_t)p - offsetof(ch__rs_istr, s));
}

/* Slot of an interned string equal to (p, n), or of the empty slot where it would go. */
static uint32_t istr_slot(const ch_refset *s, const char *p, size_t n, uint64_t h)
{
    uint32_t i = (uint32_t)h & s->istr_mask;
    for (;;) {
        ch__rs_istr *e = s->istr[i];
        if (e == NULL || (e->hash == h && e->len == n && memcmp(e->s, p, n) == 0))
            return i;
        i = (i + 1) & s->istr_mask;
    }
}

static int istr_grow(ch_refset *s)
{
    if (s->istr != NULL && s->istr_mask >= (1u << 30))
        return CH_ELIMIT; /* 2^31 distinct strings: more than the element cap can reference */
    uint32_t cap = s->istr ? (s->istr_mask + 1) * 2 : 16;
    ch__rs_istr **t = ch_calloc(cap, sizeof *t);
    if (t == NULL)
        return CH_ENOMEM;
    for (uint32_t i = 0; s->istr && i <= s->istr_mask; i++) {
        ch__rs_istr *e = s->istr[i];
        if (e == NULL)
            continue;
        uint32_t j = (uint32_t)e->hash & (cap - 1);
        while (t[j] != NULL)
            j = (j + 1) & (cap - 1);
        t[j] = e;
    }
    ch_free(s->istr);
    s->istr = t;
    s->istr_mask = cap - 1;
    return CH_OK;
}

/* The set's copy of str with one more reference; "" for NULL or empty; NULL when out of memory. */
static const char *istr_get(ch_refset *s, const char *str)
{
    if (str == NULL || str[0] == '\0')
        return ch__rs_empty;
    size_t n = strlen(str);
    if (n > UINT32_MAX / 2)
        return NULL;
    uint64_t h = ch__rs_hash(str, n, CH__RS_S2);
    if (s->istr == NULL || ((uint64_t)s->istr_count + 1) * 2 > (uint64_t)s->istr_mask + 1) {
        if (istr_grow(s) != CH_OK)
            return NULL;
    }
    uint32_t i = istr_slot(s, str, n, h);
    ch__rs_istr *e = s->istr[i];
    if (e == NULL) {
        e = ch_malloc(sizeof *e + n + 1);
        if (e == NULL)
            return NULL;
        e->hash = h;
        e->refs = 0;
        e->len = (uint32_t)n;
        memcpy(e->s, str, n + 1);
        s->istr[i] = e;
        s->istr_count++;
        s->istr_bytes += sizeof *e + n + 1;
    }
    e->refs++;
    return e->s;
}

/* The interned copy of str if the set has one (no reference taken); NULL when absent. */
static const char *istr_peek(const ch_refset *s, const char *str)
{
    if (str[0] == '\0')
        return ch__rs_empty;
    if (s->istr == NULL)
        return NULL;
    size_t n = strlen(str);
    uint64_t h = ch__rs_hash(str, n, CH__RS_S2);
    ch__rs_istr *e = s->istr[istr_slot(s, str, n, h)];
    return e ? e->s : NULL;
}

static void istr_put(ch_refset *s, const char *p)
{
    if (p == NULL || p == ch__rs_empty)
        return;
    ch__rs_istr *e = istr_of(p);
    if (--e->refs > 0)
        return;
    /* Delete with backward shift, as the key tables do. */
    uint32_t i = istr_slot(s, e->s, e->len, e->hash), j = i;
    for (;;) {
        j = (j + 1) & s->istr_mask;
        ch__rs_istr *x = s->istr[j];
        if (x == NULL)
            break;
        uint32_t k = (uint32_t)x->hash & s->istr_mask;
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            s->istr[i] = x;
            i = j;
        }
    }
    s->istr[i] = NULL;
    s->istr_count--;
    s->istr_bytes -= sizeof *e + e->len + 1;
    ch_free(e);
}

/* ---- big arrays ------------------------------------------------------------------------- */

#define HUGE_PAGE (2u << 20)

void *ch__rs_big_alloc(size_t n, bool zero, void **raw)
{
    if (n < HUGE_PAGE) {
        *raw = zero ? ch_calloc(1, n) : ch_malloc(n);
        return *raw;
    }
    /* calloc of this size is fresh mmap'd memory: zeroed without being touched. */
    *raw = zero ? ch_calloc(1, n + HUGE_PAGE) : ch_malloc(n + HUGE_PAGE);
    if (*raw == NULL)
        return NULL;
    uintptr_t p = ((uintptr_t)*raw + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
#ifdef MADV_HUGEPAGE
    madvise((void *)p, n & ~(size_t)(HUGE_PAGE - 1), MADV_HUGEPAGE); /* advice: failure is fine */
#endif
    return (void *)p;
}

/* ---- tables ----------------------------------------------------------------------------- */

/* (Re)build the filter of a big table from its tags; without memory, go without a filter. */
static void filter_build(ch__rs_table *t)
{
    uint64_t cap = (uint64_t)t->mask + 1;
    t->fstale = 0;
    if (t->slots == NULL || cap < CH__RS_FILTER_MIN) {
        ch_free(t->filter_raw);
        t->filter = t->filter_raw = NULL;
        return;
    }
    size_t words = (size_t)(cap / 64);
    if (t->filter == NULL) {
        t->filter = ch__rs_big_alloc(words * sizeof *t->filter, false, &t->filter_raw);
        if (t->filter == NULL)
            return;
        t->fmask = (uint32_t)(words - 1);
    }
    memset(t->filter, 0, words * sizeof *t->filter);
    for (uint64_t i = 0; i < cap; i++)
        if (t->slots[i].idx1 != 0)
            t->filter[ch__rs_filter_word(t, t->slots[i].tag)] |=
                ch__rs_filter_bits(t->slots[i].tag);
}

int ch__rs_table_reserve(ch__rs_table *t)
{
    uint64_t cap = t->slots ? (uint64_t)t->mask + 1 : 0;
    if ((uint64_t)(t->count + 1) * 2 <= cap)
        return CH_OK;
    uint64_t ncap = cap ? cap * 2 : 8;
    if (ncap > (1ull << 31))
        return CH_ELIMIT;
    void *raw;
    ch__rs_slot *ns = ch__rs_big_alloc((size_t)ncap * sizeof *ns, true, &raw);
    if (ns == NULL)
        return CH_ENOMEM;
    unsigned log2 = (unsigned)__builtin_ctzll(ncap);
    ch__rs_table nt = {ns, raw, (uint32_t)(ncap - 1), 32 - log2, 0, NULL, NULL, 0, 0};
    for (uint64_t i = 0; i < cap; i++)
        if (t->slots[i].idx1 != 0)
            ch__rs_table_insert(&nt, t->slots[i].tag, t->slots[i].idx1);
    ch_free(t->raw);
    ch_free(t->filter_raw);
    *t = nt;
    filter_build(t);
    return CH_OK;
}

void ch__rs_table_insert(ch__rs_table *t, uint32_t tag, uint32_t idx1)
{
    uint32_t pos = ch__rs_home(t, tag);
    while (t->slots[pos].idx1 != 0)
        pos = (pos + 1) & t->mask;
    t->slots[pos].tag = tag;
    t->slots[pos].idx1 = idx1;
    t->count++;
    if (t->filter != NULL)
        t->filter[ch__rs_filter_word(t, tag)] |= ch__rs_filter_bits(tag);
}

void ch__rs_table_delete(ch__rs_table *t, uint32_t pos)
{
    uint32_t i = pos, j = pos;
    for (;;) {
        j = (j + 1) & t->mask;
        if (t->slots[j].idx1 == 0)
            break;
        uint32_t k = ch__rs_home(t, t->slots[j].tag);
        /* Slot j may stay if its home lies cyclically in (i, j]. */
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            t->slots[i] = t->slots[j];
            i = j;
        }
    }
    t->slots[i].tag = 0;
    t->slots[i].idx1 = 0;
    t->count--;
    if (t->count == 0)
        ch__rs_table_free(t);
    else if (t->filter != NULL && ++t->fstale > t->count / 2 + 1024)
        filter_build(t);
}

void ch__rs_table_free(ch__rs_table *t)
{
    ch_free(t->raw);
    ch_free(t->filter_raw);
    memset(t, 0, sizeof *t);
}

size_t ch__rs_table_bytes(const ch__rs_table *t)
{
    size_t n = t->slots ? ((size_t)t->mask + 1) * sizeof(ch__rs_slot) : 0;
    return n + (t->filter ? ((size_t)t->fmask + 1) * sizeof(uint64_t) : 0);
}

/* ---- elements --------------------------------------------------------------------------- */

/* Segment c holds 16 << c elements and starts at index 16 * ((1 << c) - 1). */
static void seg_of(uint32_t idx, unsigned *c, size_t *off)
{
    uint64_t j = (uint64_t)idx + 16;
    unsigned k = 63u - (unsigned)__builtin_clzll(j) - 4u;
    *c = k;
    *off = (size_t)(j - (16ull << k));
}

static int elem_alloc(ch_refset *s, uint32_t *out)
{
    if (s->free_head != 0) {
        uint32_t idx = s->free_head - 1;
        s->free_head = ch__rs_elem(s, idx)->_next;
        *out = idx;
        return CH_OK;
    }
    if (s->hi >= CH_REFSET_HARD_MAX_ELEMS)
        return CH_ELIMIT;
    unsigned c;
    size_t off;
    seg_of(s->hi, &c, &off);
    if (off == 0 && s->chunks[c] == NULL) {
        s->chunks[c] = ch__rs_big_alloc((16u << c) * (size_t)s->stride, false, &s->chunks_raw[c]);
        if (s->chunks[c] == NULL)
            return CH_ENOMEM;
        s->nchunks = c + 1;
    }
    *out = s->hi++;
    return CH_OK;
}

static void elem_release(ch_refset *s, uint32_t idx)
{
    ch_refset_elem *e = ch__rs_elem(s, idx);
    istr_put(s, e->source);
    istr_put(s, e->indicator);
    if (e->_flags & CH__RS_OWNS_KEY) {
        s->str_bytes -= e->len + 1;
        ch_free((void *)(uintptr_t)e->key.str);
    }
    memset(e, 0, sizeof *e);
    e->_next = s->free_head;
    s->free_head = idx + 1;
    s->count--;
}

/* ---- keys ------------------------------------------------------------------------------- */

static bool key_eq(const ch_refset *s, const ch_refset_elem *e, const ch__rs_key *k)
{
    switch (s->type) {
    case CH_REFSET_IP:
        return e->family == k->family && e->len == k->len && memcmp(e->key.ip, k->ip, 16) == 0;
    case CH_REFSET_NUMBER:
        return e->key.num == k->num;
    default:
        return e->len == k->len && memcmp(e->key.str, k->str, k->len) == 0;
    }
}

uint32_t ch__rs_find(const ch_refset *s, const ch__rs_key *k)
{
    const ch__rs_table *t = k->table;
    if (t->slots == NULL)
        return UINT32_MAX;
    uint32_t tag = ch__rs_tag(k->hash), pos = ch__rs_home(t, tag);
    if (!ch__rs_filter_maybe(t, tag))
        return UINT32_MAX;
    for (;;) {
        ch__rs_slot sl = t->slots[pos];
        if (sl.idx1 == 0)
            return UINT32_MAX;
        if (sl.tag == tag && key_eq(s, ch__rs_elem(s, CH__RS_IDX1(sl.idx1) - 1), k))
            return pos;
        pos = (pos + 1) & t->mask;
    }
}

static void bit_set(uint64_t *bits, unsigned i) { bits[i >> 6] |= 1ull << (i & 63); }
static void bit_clear(uint64_t *bits, unsigned i) { bits[i >> 6] &= ~(1ull << (i & 63)); }

void ch__rs_key_added(ch_refset *s, const ch__rs_key *k)
{
    if (s->type == CH_REFSET_IP) {
        if (k->family == 4) {
            s->v4_bits |= 1ull << k->len;
            s->v4_keys++;
            if (s->v4_keys >= CH__RS_V4MAP_MIN &&
                (s->v4_map == NULL || (s->v4_keys > (1u << s->v4_map_bits) && s->v4_map_bits < 16)))
                ch__rs_v4map_rebuild(s); /* grows with the set: amortised O(1) a key */
            else if (s->v4_map != NULL)
                ch__rs_v4map_mark(s, k->ip, k->len);
        } else {
            bit_set(s->v6_bits, k->len);
        }
    } else if (s->type == CH_REFSET_DOMAIN) {
        s->label_refs[k->labels]++;
        bit_set(s->label_bits, k->labels);
    }
}

void ch__rs_key_removed(ch_refset *s, const ch__rs_key *k)
{
    /* An emptied table is freed by ch__rs_table_delete, which is what the bitmaps mirror. */
    if (s->type == CH_REFSET_IP) {
        if (k->table->count == 0) {
            if (k->family == 4)
                s->v4_bits &= ~(1ull << k->len);
            else
                bit_clear(s->v6_bits, k->len);
        }
        if (k->family == 4) {
            s->v4_keys--;
            if (s->v4_map != NULL && ++s->v4_map_stale > s->v4_keys / 2 + 1024)
                ch__rs_v4map_rebuild(s);
        }
    } else if (s->type == CH_REFSET_DOMAIN) {
        if (--s->label_refs[k->labels] == 0)
            bit_clear(s->label_bits, k->labels);
    }
}

/* idx1 of a chain head, with CH__RS_SIMPLE when the chain is one always-valid element. */
static uint32_t simple_idx1(const ch_refset *s, uint32_t head)
{
    const ch_refset_elem *e = ch__rs_elem(s, head - 1);
    bool simple =
        e->_next == 0 && e->valid_from == CH_REFSET_ALWAYS && e->expiry == CH_REFSET_NEVER;
    return simple ? head | CH__RS_SIMPLE : head;
}

static void set_head(const ch_refset *s, ch__rs_slot *sl, uint32_t head)
{
    sl->idx1 = simple_idx1(s, head);
}

int ch__rs_add_key(ch_refset *s, const ch__rs_key *k, const ch_refset_meta *meta, ch_error *err)
{
    ch_refset_meta m = CH_REFSET_META_INIT;
    if (meta != NULL)
        m = *meta;
    if (m.valid_from >= m.expiry)
        return ch_error_set(err, CH_EUSAGE, "empty validity window (valid_from >= expiry)");
    int rc = CH_OK;
    uint32_t idx = UINT32_MAX;
    char *kcopy = NULL;
    const char *src = istr_get(s, m.source);
    const char *ind = istr_get(s, m.indicator);
    if (src == NULL || ind == NULL) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto cleanup;
    }
    uint32_t pos = ch__rs_find(s, k);
    if (pos != UINT32_MAX) {
        for (uint32_t i1 = CH__RS_IDX1(k->table->slots[pos].idx1); i1 != 0;) {
            ch_refset_elem *e = ch__rs_elem(s, i1 - 1);
            if (e->source == src && e->indicator == ind) {
                if (m.first_seen < e->first_seen)
                    e->first_seen = m.first_seen;
                if (m.last_seen > e->last_seen)
                    e->last_seen = m.last_seen;
                e->valid_from = m.valid_from;
                e->expiry = m.expiry;
                if (m.expiry < s->min_expiry)
                    s->min_expiry = m.expiry;
                set_head(s, &k->table->slots[pos], CH__RS_IDX1(k->table->slots[pos].idx1));
                rc = 0;
                goto cleanup; /* the element keeps its own references */
            }
            i1 = e->_next;
        }
    }
    if (s->count >= s->max_elems) {
        s->dropped++;
        rc = ch_error_set(err, CH_ELIMIT, "set '%s' is full (%zu elements)", s->name, s->max_elems);
        goto cleanup;
    }
    if (pos == UINT32_MAX && (rc = ch__rs_table_reserve(k->table)) != CH_OK) {
        ch_error_set(err, rc, "cannot grow the table of set '%s'", s->name);
        goto cleanup;
    }
    if ((s->type == CH_REFSET_DOMAIN || s->type == CH_REFSET_STRING) && k->len >= CH__RS_INLINE) {
        kcopy = ch_strndup(k->str, k->len);
        if (kcopy == NULL) {
            rc = ch_error_set(err, CH_ENOMEM, "out of memory");
            goto cleanup;
        }
    }
    if ((rc = elem_alloc(s, &idx)) != CH_OK) {
        ch_error_set(err, rc, "cannot grow set '%s'", s->name);
        goto cleanup;
    }
    ch_refset_elem *e = ch__rs_elem(s, idx);
    memset(e, 0, sizeof *e);
    e->valid_from = m.valid_from;
    e->expiry = m.expiry;
    e->first_seen = m.first_seen;
    e->last_seen = m.last_seen;
    e->source = src;
    e->indicator = ind;
    e->len = k->len;
    e->_flags = CH__RS_LIVE;
    switch (s->type) {
    case CH_REFSET_IP:
        memcpy(e->key.ip, k->ip, 16);
        e->family = k->family;
        break;
    case CH_REFSET_NUMBER:
        e->key.num = k->num;
        break;
    default:
        e->_labels = (uint16_t)k->labels;
        if (kcopy != NULL) {
            /* Not inline: the inline area holds "" so that a NUL-terminated compare fails. */
            memset(e + 1, 0, CH__RS_INLINE);
            e->key.str = kcopy;
            e->_flags |= CH__RS_OWNS_KEY;
            s->str_bytes += k->len + 1;
            kcopy = NULL;
        } else {
            /* Zero-padded, so that a lookup compares all 48 bytes at once. */
            char *in = (char *)(e + 1);
            memset(in, 0, CH__RS_INLINE);
            /* String and domain keys always carry str; the analyzer loses the set's type
             * between the key's parse and here and follows a number key into this branch. */
            memcpy(in, k->str, k->len); // NOLINT(clang-analyzer-core.NonNullParamChecker)
            e->key.str = in;
        }
        break;
    }
    if (pos != UINT32_MAX) {
        /* Another source's element for the same key: the newest heads the chain. */
        e->_next = CH__RS_IDX1(k->table->slots[pos].idx1);
        set_head(s, &k->table->slots[pos], idx + 1);
    } else {
        ch__rs_table_insert(k->table, ch__rs_tag(k->hash), simple_idx1(s, idx + 1));
        ch__rs_key_added(s, k);
    }
    s->count++;
    if (m.expiry < s->min_expiry)
        s->min_expiry = m.expiry;
    return 1;

cleanup:
    ch_free(kcopy);
    istr_put(s, src);
    istr_put(s, ind);
    return rc;
}

/* Unlink the elements of the key at pos that satisfy match; returns how many. */
static int unlink_where(ch_refset *s, const ch__rs_key *k, uint32_t pos, const char *src,
                        const char *ind, const ch_refset_elem *only)
{
    int n = 0;
    uint32_t head = CH__RS_IDX1(k->table->slots[pos].idx1);
    uint32_t *link = &head;
    while (*link != 0) {
        uint32_t idx = *link - 1;
        ch_refset_elem *e = ch__rs_elem(s, idx);
        bool match =
            only ? e == only
                 : (src == NULL || e->source == src) && (ind == NULL || e->indicator == ind);
        if (match) {
            *link = e->_next;
            elem_release(s, idx);
            n++;
        } else {
            link = &e->_next;
        }
    }
    if (head == 0) {
        ch__rs_table_delete(k->table, pos);
        ch__rs_key_removed(s, k);
    } else {
        set_head(s, &k->table->slots[pos], head);
    }
    return n;
}

int ch__rs_remove_key(ch_refset *s, const ch__rs_key *k, const char *source, const char *indicator)
{
    const char *src = NULL, *ind = NULL;
    if (source != NULL && (src = istr_peek(s, source)) == NULL)
        return CH_ENOTFOUND;
    if (indicator != NULL && (ind = istr_peek(s, indicator)) == NULL)
        return CH_ENOTFOUND;
    uint32_t pos = ch__rs_find(s, k);
    if (pos == UINT32_MAX)
        return CH_ENOTFOUND;
    int n = unlink_where(s, k, pos, src, ind, NULL);
    return n > 0 ? n : CH_ENOTFOUND;
}

void ch__rs_elem_key(ch_refset *s, const ch_refset_elem *e, ch__rs_key *k)
{
    memset(k, 0, sizeof *k);
    switch (s->type) {
    case CH_REFSET_IP:
        ch__rs_ip_elem_key(s, e, k);
        break;
    case CH_REFSET_DOMAIN:
        ch__rs_domain_elem_key(s, e, k);
        break;
    case CH_REFSET_STRING:
        k->table = &s->keys;
        k->str = e->key.str;
        k->len = e->len;
        k->hash = ch__rs_hash(k->str, k->len, CH__RS_S1);
        break;
    case CH_REFSET_NUMBER:
        k->table = &s->keys;
        k->num = e->key.num;
        k->hash = ch__rs_hash64((uint64_t)k->num, CH__RS_S3);
        break;
    }
}

void ch_refset_remove_elem(ch_refset *s, const ch_refset_elem *e)
{
    if (s == NULL || e == NULL || !(e->_flags & CH__RS_LIVE))
        return;
    ch__rs_key k;
    ch__rs_elem_key(s, e, &k);
    uint32_t pos = ch__rs_find(s, &k);
    if (pos != UINT32_MAX)
        unlink_where(s, &k, pos, NULL, NULL, e);
}

/* ---- string and number keys --------------------------------------------------------------- */

static void fold_ascii(char *dst, const char *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = src[i];
        dst[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
}

/* String key; kbuf (CH_REFSET_STRING_MAX bytes) holds the folded copy for NOCASE sets. */
static int str_key(ch_refset *s, const char *text, size_t len, char *kbuf, ch__rs_key *k,
                   ch_error *err)
{
    if (len > s->max_entry)
        return ch_error_set(err, CH_ELIMIT, "entry longer than %zu bytes", s->max_entry);
    memset(k, 0, sizeof *k);
    k->table = &s->keys;
    if (s->flags & CH_REFSET_NOCASE) {
        fold_ascii(kbuf, text, len);
        text = kbuf;
    }
    k->str = text;
    k->len = (uint32_t)len;
    k->hash = ch__rs_hash(text, len, CH__RS_S1);
    return CH_OK;
}

static void num_key(ch_refset *s, int64_t v, ch__rs_key *k)
{
    memset(k, 0, sizeof *k);
    k->table = &s->keys;
    k->num = v;
    k->hash = ch__rs_hash64((uint64_t)v, CH__RS_S3);
}

static int parse_i64(const char *t, size_t n, int64_t *out, ch_error *err)
{
    size_t i = 0;
    bool neg = false;
    if (i < n && (t[i] == '-' || t[i] == '+'))
        neg = t[i++] == '-';
    if (i == n)
        return ch_error_set(err, CH_EPARSE, "not an integer");
    uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < n; i++) {
        if (t[i] < '0' || t[i] > '9')
            return ch_error_set(err, CH_EPARSE, "not an integer");
        unsigned d = (unsigned)(t[i] - '0');
        if (v > (lim - d) / 10)
            return ch_error_set(err, CH_EPARSE, "integer out of range");
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return CH_OK;
}

/* ---- public ----------------------------------------------------------------------------- */

const char *ch_refset_type_name(ch_refset_type t)
{
    switch (t) {
    case CH_REFSET_IP:
        return "ip";
    case CH_REFSET_DOMAIN:
        return "domain";
    case CH_REFSET_STRING:
        return "string";
    case CH_REFSET_NUMBER:
        return "number";
    }
    return "unknown";
}

int ch_refset_type_from_name(const char *s, size_t n, ch_refset_type *out)
{
    static const struct {
        const char *name;
        ch_refset_type t;
    } names[] = {
        {"ip", CH_REFSET_IP},         {"cidr", CH_REFSET_IP},       {"address", CH_REFSET_IP},
        {"domain", CH_REFSET_DOMAIN}, {"string", CH_REFSET_STRING}, {"str", CH_REFSET_STRING},
        {"number", CH_REFSET_NUMBER}, {"num", CH_REFSET_NUMBER},    {"port", CH_REFSET_NUMBER},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].name) == n && memcmp(names[i].name, s, n) == 0) {
            *out = names[i].t;
            return CH_OK;
        }
    return CH_EPARSE;
}

static bool name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > CH_REFSET_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-'))
            return false;
    }
    return true;
}

int ch_refset_new(ch_refset **out, const char *name, ch_refset_type type,
                  const ch_refset_opts *opts, ch_error *err)
{
    *out = NULL;
    ch_refset_opts o = {0};
    if (opts != NULL)
        o = *opts;
    if (name == NULL || !name_ok(name))
        return ch_error_set(err, CH_EUSAGE, "bad set name (1 to %d of A-Z a-z 0-9 _ . : -)",
                            CH_REFSET_NAME_MAX);
    if (type < CH_REFSET_IP || type > CH_REFSET_NUMBER)
        return ch_error_set(err, CH_EUSAGE, "set '%s': unknown type %d", name, (int)type);
    if (o.flags & ~(uint32_t)(CH_REFSET_NOCASE | CH_REFSET_EXACT))
        return ch_error_set(err, CH_EUSAGE, "set '%s': unknown flags", name);
    if ((o.flags & CH_REFSET_NOCASE) && type != CH_REFSET_STRING)
        return ch_error_set(err, CH_EUSAGE, "set '%s': nocase is for string sets", name);
    if ((o.flags & CH_REFSET_EXACT) && type != CH_REFSET_DOMAIN)
        return ch_error_set(err, CH_EUSAGE, "set '%s': exact is for domain sets", name);
    if (o.max_entry_len > CH_REFSET_STRING_MAX)
        return ch_error_set(err, CH_EUSAGE, "set '%s': max_entry_len above %d", name,
                            CH_REFSET_STRING_MAX);
    ch_refset *s = ch_calloc(1, sizeof *s);
    if (s == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    s->name = ch_strdup(name);
    if (s->name == NULL) {
        ch_free(s);
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    }
    s->type = type;
    s->flags = o.flags;
    s->max_elems = o.max_elems ? o.max_elems : CH_REFSET_DEFAULT_MAX_ELEMS;
    if (s->max_elems > CH_REFSET_HARD_MAX_ELEMS)
        s->max_elems = CH_REFSET_HARD_MAX_ELEMS;
    s->max_entry = type == CH_REFSET_DOMAIN ? CH_REFSET_DOMAIN_MAX
                   : o.max_entry_len        ? o.max_entry_len
                                            : CH_REFSET_DEFAULT_MAX_ENTRY;
    s->min_expiry = INT64_MAX;
    s->stride = type == CH_REFSET_DOMAIN || type == CH_REFSET_STRING
                    ? (uint32_t)CH__RS_STRIDE_STR
                    : (uint32_t)sizeof(ch_refset_elem);
    *out = s;
    return CH_OK;
}

void ch_refset_free(ch_refset *s)
{
    if (s == NULL)
        return;
    for (uint32_t i = 0; i < s->hi; i++) {
        ch_refset_elem *e = ch__rs_elem(s, i);
        if ((e->_flags & CH__RS_OWNS_KEY))
            ch_free((void *)(uintptr_t)e->key.str);
    }
    for (unsigned c = 0; c < s->nchunks; c++)
        ch_free(s->chunks_raw[c]);
    ch_free(s->v4_map);
    for (uint32_t i = 0; s->istr && i <= s->istr_mask; i++)
        ch_free(s->istr[i]);
    ch_free(s->istr);
    ch__rs_table_free(&s->keys);
    for (int i = 0; i < 33; i++)
        ch__rs_table_free(&s->v4[i]);
    for (int i = 0; i < 129; i++)
        ch__rs_table_free(&s->v6[i]);
    ch_free(s->name);
    ch_free(s);
}

const char *ch_refset_name(const ch_refset *s) { return s->name; }
ch_refset_type ch_refset_type_of(const ch_refset *s) { return s->type; }
uint32_t ch_refset_flags(const ch_refset *s) { return s->flags; }
size_t ch_refset_count(const ch_refset *s) { return s->count; }
uint64_t ch_refset_dropped(const ch_refset *s) { return s->dropped; }

size_t ch_refset_keys(const ch_refset *s)
{
    if (s->type != CH_REFSET_IP)
        return s->keys.count;
    size_t n = 0;
    for (int i = 0; i < 33; i++)
        n += s->v4[i].count;
    for (int i = 0; i < 129; i++)
        n += s->v6[i].count;
    return n;
}

size_t ch_refset_memory(const ch_refset *s)
{
    size_t n = sizeof *s + strlen(s->name) + 1;
    for (unsigned c = 0; c < s->nchunks; c++)
        n += s->chunks[c] ? (16u << c) * (size_t)s->stride : 0;
    n += s->v4_map ? ((size_t)1 << s->v4_map_bits) * sizeof(uint64_t) : 0;
    n += s->istr ? ((size_t)s->istr_mask + 1) * sizeof(void *) : 0;
    n += s->istr_bytes + s->str_bytes;
    n += ch__rs_table_bytes(&s->keys);
    for (int i = 0; i < 33; i++)
        n += ch__rs_table_bytes(&s->v4[i]);
    for (int i = 0; i < 129; i++)
        n += ch__rs_table_bytes(&s->v6[i]);
    return n;
}

int ch_refset_add(ch_refset *s, const char *text, size_t len, const ch_refset_meta *meta,
                  ch_error *err)
{
    ch__rs_key k;
    int rc;
    switch (s->type) {
    case CH_REFSET_IP: {
        ch_ip net;
        unsigned prefix;
        if ((rc = ch__rs_parse_cidr(text, len, &net, &prefix, err)) != CH_OK)
            return rc;
        return ch_refset_add_ip(s, &net, prefix, meta, err);
    }
    case CH_REFSET_DOMAIN: {
        char kbuf[CH_REFSET_DOMAIN_MAX + 1];
        if ((rc = ch__rs_domain_key(s, text, len, kbuf, &k, err)) != CH_OK)
            return rc;
        return ch__rs_add_key(s, &k, meta, err);
    }
    case CH_REFSET_STRING: {
        char kbuf[CH_REFSET_STRING_MAX];
        if ((rc = str_key(s, text, len, kbuf, &k, err)) != CH_OK)
            return rc;
        return ch__rs_add_key(s, &k, meta, err);
    }
    case CH_REFSET_NUMBER: {
        int64_t v;
        if ((rc = parse_i64(text, len, &v, err)) != CH_OK)
            return rc;
        return ch_refset_add_num(s, v, meta, err);
    }
    }
    return ch_error_set(err, CH_EUSAGE, "bad set");
}

int ch_refset_add_ip(ch_refset *s, const ch_ip *net, unsigned prefix, const ch_refset_meta *meta,
                     ch_error *err)
{
    ch__rs_key k;
    int rc = ch__rs_ip_key(s, net, prefix, &k, err);
    return rc != CH_OK ? rc : ch__rs_add_key(s, &k, meta, err);
}

int ch_refset_add_num(ch_refset *s, int64_t v, const ch_refset_meta *meta, ch_error *err)
{
    if (s->type != CH_REFSET_NUMBER)
        return ch_error_set(err, CH_EUSAGE, "set '%s' is not a number set", s->name);
    ch__rs_key k;
    num_key(s, v, &k);
    return ch__rs_add_key(s, &k, meta, err);
}

int ch_refset_remove(ch_refset *s, const char *text, size_t len, const char *source,
                     const char *indicator, ch_error *err)
{
    ch__rs_key k;
    int rc;
    switch (s->type) {
    case CH_REFSET_IP: {
        ch_ip net;
        unsigned prefix;
        if ((rc = ch__rs_parse_cidr(text, len, &net, &prefix, err)) != CH_OK)
            return rc;
        if ((rc = ch__rs_ip_key(s, &net, prefix, &k, err)) != CH_OK)
            return rc;
        return ch__rs_remove_key(s, &k, source, indicator);
    }
    case CH_REFSET_DOMAIN: {
        char kbuf[CH_REFSET_DOMAIN_MAX + 1];
        if ((rc = ch__rs_domain_key(s, text, len, kbuf, &k, err)) != CH_OK)
            return rc;
        return ch__rs_remove_key(s, &k, source, indicator);
    }
    case CH_REFSET_STRING: {
        char kbuf[CH_REFSET_STRING_MAX];
        if (len > s->max_entry)
            return CH_ENOTFOUND;
        if ((rc = str_key(s, text, len, kbuf, &k, err)) != CH_OK)
            return rc;
        return ch__rs_remove_key(s, &k, source, indicator);
    }
    case CH_REFSET_NUMBER: {
        int64_t v;
        if ((rc = parse_i64(text, len, &v, err)) != CH_OK)
            return rc;
        num_key(s, v, &k);
        return ch__rs_remove_key(s, &k, source, indicator);
    }
    }
    return ch_error_set(err, CH_EUSAGE, "bad set");
}

size_t ch_refset_expire(ch_refset *s, int64_t now_ms)
{
    if (now_ms < s->min_expiry)
        return 0;
    size_t n = 0;
    int64_t min = INT64_MAX;
    for (uint32_t i = 0; i < s->hi; i++) {
        ch_refset_elem *e = ch__rs_elem(s, i);
        if (!(e->_flags & CH__RS_LIVE))
            continue;
        if (e->expiry <= now_ms) {
            ch_refset_remove_elem(s, e);
            n++;
        } else if (e->expiry < min) {
            min = e->expiry;
        }
    }
    s->min_expiry = min;
    return n;
}

static const ch_refset_elem *probe_keys(const ch_refset *s, const ch__rs_key *k, int64_t at)
{
    uint32_t pos = ch__rs_find(s, k);
    if (pos == UINT32_MAX)
        return NULL;
    return ch__rs_chain_valid(s, k->table->slots[pos].idx1, at);
}

bool ch_refset_contains_str(const ch_refset *s, const char *str, size_t len, int64_t at_ms,
                            const ch_refset_elem **hit)
{
    const ch_refset_elem *e = NULL;
    if (s->type == CH_REFSET_STRING && s->count > 0 && len <= s->max_entry) {
        char kbuf[CH_REFSET_STRING_MAX];
        ch__rs_key k;
        /* str_key only writes the key and the buffer; the set is not modified. */
        if (str_key((ch_refset *)(uintptr_t)s, str, len, kbuf, &k, NULL) == CH_OK)
            e = probe_keys(s, &k, at_ms);
    }
    if (hit != NULL)
        *hit = e;
    return e != NULL;
}

bool ch_refset_contains_num(const ch_refset *s, int64_t v, int64_t at_ms,
                            const ch_refset_elem **hit)
{
    const ch_refset_elem *e = NULL;
    if (s->type == CH_REFSET_NUMBER && s->count > 0) {
        ch__rs_key k;
        num_key((ch_refset *)(uintptr_t)s, v, &k);
        e = probe_keys(s, &k, at_ms);
    }
    if (hit != NULL)
        *hit = e;
    return e != NULL;
}

bool ch_refset_contains(const ch_refset *s, const char *text, size_t len, int64_t at_ms,
                        const ch_refset_elem **hit)
{
    switch (s->type) {
    case CH_REFSET_IP: {
        ch_ip ip;
        if (ch_ip_parse(text, len, &ip))
            return ch_refset_contains_ip(s, &ip, at_ms, hit);
        break;
    }
    case CH_REFSET_DOMAIN:
        return ch_refset_contains_domain(s, text, len, at_ms, hit);
    case CH_REFSET_STRING:
        return ch_refset_contains_str(s, text, len, at_ms, hit);
    case CH_REFSET_NUMBER: {
        int64_t v;
        if (parse_i64(text, len, &v, NULL) == CH_OK)
            return ch_refset_contains_num(s, v, at_ms, hit);
        break;
    }
    }
    if (hit != NULL)
        *hit = NULL;
    return false;
}

const ch_refset_elem *ch_refset_next(const ch_refset *s, size_t *cursor)
{
    for (size_t i = *cursor; i < s->hi; i++) {
        const ch_refset_elem *e = ch__rs_elem(s, (uint32_t)i);
        if (e->_flags & CH__RS_LIVE) {
            *cursor = i + 1;
            return e;
        }
    }
    *cursor = s->hi;
    return NULL;
}

size_t ch_refset_elem_text(const ch_refset *s, const ch_refset_elem *e, char *buf, size_t cap)
{
    char tmp[64];
    const char *p = tmp;
    size_t n = 0;
    switch (s->type) {
    case CH_REFSET_IP: {
        ch_ip ip;
        memcpy(ip.b, e->key.ip, 16);
        ip.family = e->family;
        n = ch_ip_format(&ip, tmp);
        if (e->len != (e->family == 4 ? 32u : 128u))
            n += (size_t)snprintf(tmp + n, sizeof tmp - n, "/%u", e->len);
        break;
    }
    case CH_REFSET_NUMBER:
        n = (size_t)snprintf(tmp, sizeof tmp, "%lld", (long long)e->key.num);
        break;
    default:
        p = e->key.str;
        n = e->len;
        break;
    }
    if (cap > 0) {
        size_t c = n < cap - 1 ? n : cap - 1;
        memcpy(buf, p, c);
        buf[c] = '\0';
    }
    return n;
}
