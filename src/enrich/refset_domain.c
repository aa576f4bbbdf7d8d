/*
 * refset_domain.c - domains in reference sets, matched on label boundaries.
 *
 * A domain's hash is built label by label from the right, each label's hash chained onto its
 * parent's: hash("pool.supportxmr.com") = H("pool", H("supportxmr", H("com", root))).
 * So one right-to-left pass over a query yields the hash of every label-boundary suffix, and an
 * entry hashes to exactly the value of the same suffix inside any longer name; "notsupportxmr"
 * is a different label, so "notsupportxmr.com" never meets "supportxmr.com". The set keeps a
 * bitmap of the label counts of its entries, and a lookup probes only suffixes of those counts,
 * longest first (the most specific listed domain wins): a block list of 2- and 3-label names
 * costs two probes per query, whatever its size. Hash tags rule out almost every non-matching
 * probe without touching the entry; a tag match is confirmed by comparing the bytes.
 *
 * Preparing a query is one pass over the name a word at a time (lower-casing and finding the
 * dots with bit tricks), then one chained multiply per label.
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
    /* One pass, a word at a time: lower-case into q->name and note where the dots are. */
    uint8_t dots[CH_REFSET_DOMAIN_MAX + 1];
    unsigned nd = 0;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t x;
        memcpy(&x, name + i, 8);
        x = ch__rs_lower8(x);
        memcpy(q->name + i, &x, 8);
        for (uint64_t z = ch__rs_bytes_eq(x, '.'); z != 0; z &= z - 1)
            dots[nd++] = (uint8_t)(i + ((unsigned)__builtin_ctzll(z) >> 3));
    }
    for (; i < len; i++) {
        char c = lower(name[i]);
        q->name[i] = c;
        if (c == '.')
            dots[nd++] = (uint8_t)i;
    }
    q->name[len] = '\0';
    q->len = (uint32_t)len;
    q->nlabels = 0;
    if (len == 0)
        return;
    /* Labels right to left, each hashed onto its parent. */
    uint64_t h = CH__RS_DOMAIN_ROOT;
    size_t end = len;
    for (unsigned d = nd + 1; d-- > 0 && q->nlabels < CH_REFSET_DQ_MAX_LABELS;) {
        size_t st = d > 0 ? (size_t)dots[d - 1] + 1 : 0;
        h = ch__rs_label_hash(q->name + st, end - st, h);
        q->hash[q->nlabels] = h;
        q->start[q->nlabels] = (uint8_t)st;
        q->nlabels++;
        end = st > 0 ? st - 1 : 0;
    }
}

static inline bool has_labels(const ch_refset *s, unsigned n)
{
    return (s->label_bits[n >> 6] >> (n & 63)) & 1;
}

static inline const ch_refset_elem *probe(const ch_refset *s, const ch_refset_dq *q, unsigned k,
                                          int64_t at)
{
    const ch__rs_table *t = &s->keys;
    uint32_t tag = ch__rs_tag(q->hash[k]), pos = ch__rs_home(t, tag);
    const char *suffix = q->name + q->start[k];
    uint32_t slen = q->len - q->start[k];
    for (;;) {
        ch__rs_slot sl = t->slots[pos];
        if (sl.idx1 == 0)
            return NULL;
        if (sl.tag == tag) {
            const ch_refset_elem *e = ch__rs_elem(s, sl.idx1 - 1);
            if (e->len == slen && memcmp(e->key.str, suffix, slen) == 0)
                return ch__rs_chain_valid(s, sl.idx1, at);
        }
        pos = (pos + 1) & t->mask;
    }
}

bool ch_refset_contains_dq(const ch_refset *s, const ch_refset_dq *q, int64_t at_ms,
                           const ch_refset_elem **hit)
{
    const ch_refset_elem *e = NULL;
    if (s->type == CH_REFSET_DOMAIN && s->count > 0 && q->nlabels > 0) {
        const ch__rs_table *t = &s->keys;
        if (s->flags & CH_REFSET_EXACT) {
            unsigned k = q->nlabels - 1;
            if (q->start[k] == 0 && has_labels(s, k + 1))
                e = probe(s, q, k, at_ms);
        } else {
            /* Prefetch every suffix's home slot first so that the misses overlap. */
            for (unsigned k = q->nlabels; k-- > 0;)
                if (has_labels(s, k + 1))
                    __builtin_prefetch(&t->slots[ch__rs_home(t, ch__rs_tag(q->hash[k]))]);
            for (unsigned k = q->nlabels; k-- > 0;) {
                if (has_labels(s, k + 1) && (e = probe(s, q, k, at_ms)) != NULL)
                    break;
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

typedef struct dqc {
    uint32_t ncand;
    bool over;
    uint32_t cand[CH__RS_MAXCAND];
    uint8_t k[CH__RS_MAXCAND];
} dqc;

/* Suffixes of q that can be in the set: k from kmax down to kmin. */
static inline bool dq_range(const ch_refset *s, const ch_refset_dq *q, unsigned *kmin,
                            unsigned *kmax)
{
    if (q->nlabels == 0)
        return false;
    *kmax = q->nlabels - 1;
    *kmin = 0;
    if (s->flags & CH_REFSET_EXACT) {
        if (q->start[*kmax] != 0)
            return false;
        *kmin = *kmax;
    }
    return true;
}

size_t ch_refset_contains_dq_batch(const ch_refset *s, const ch_refset_dq *const *qs,
                                   const int64_t *at_ms, size_t n, const ch_refset_elem **hits)
{
    size_t nhits = 0;
    if (s->type != CH_REFSET_DOMAIN || s->count == 0) {
        for (size_t i = 0; i < n; i++)
            hits[i] = NULL;
        return 0;
    }
    const ch__rs_table *t = &s->keys;
    dqc g[CH__RS_BATCH];
    for (size_t base = 0; base < n; base += CH__RS_BATCH) {
        size_t m = n - base < CH__RS_BATCH ? n - base : CH__RS_BATCH;
        unsigned kmin, kmax;
        /* 1: prefetch the home slot of every suffix that can be in the set. */
        for (size_t i = 0; i < m; i++) {
            const ch_refset_dq *q = qs[base + i];
            if (!dq_range(s, q, &kmin, &kmax))
                continue;
            for (unsigned k = kmax + 1; k-- > kmin;)
                if (has_labels(s, k + 1))
                    __builtin_prefetch(&t->slots[ch__rs_home(t, ch__rs_tag(q->hash[k]))]);
        }
        /* 2: read the slots, prefetch the elements whose tags match, longest suffix first. */
        for (size_t i = 0; i < m; i++) {
            const ch_refset_dq *q = qs[base + i];
            dqc *c = &g[i];
            c->ncand = 0;
            c->over = false;
            if (!dq_range(s, q, &kmin, &kmax))
                continue;
            for (unsigned k = kmax + 1; k-- > kmin && !c->over;) {
                if (!has_labels(s, k + 1))
                    continue;
                uint32_t tag = ch__rs_tag(q->hash[k]), pos = ch__rs_home(t, tag);
                for (ch__rs_slot sl; (sl = t->slots[pos]).idx1 != 0; pos = (pos + 1) & t->mask) {
                    if (sl.tag != tag)
                        continue;
                    if (c->ncand == CH__RS_MAXCAND) {
                        c->over = true;
                        break;
                    }
                    c->k[c->ncand] = (uint8_t)k;
                    c->cand[c->ncand++] = sl.idx1;
                    ch__rs_prefetch_elem(s, sl.idx1 - 1);
                }
            }
        }
        /* 3: compare. */
        for (size_t i = 0; i < m; i++) {
            const ch_refset_dq *q = qs[base + i];
            dqc *c = &g[i];
            const ch_refset_elem *e = NULL;
            /* Candidates come longest suffix first: the first valid one is the answer. */
            for (uint32_t j = 0; j < c->ncand && e == NULL; j++) {
                const ch_refset_elem *x = ch__rs_elem(s, c->cand[j] - 1);
                uint32_t st = q->start[c->k[j]];
                if (x->len == q->len - st && memcmp(x->key.str, q->name + st, x->len) == 0)
                    e = ch__rs_chain_valid(s, c->cand[j], at_ms[base + i]);
            }
            if (e == NULL && c->over)
                ch_refset_contains_dq(s, q, at_ms[base + i], &e);
            hits[base + i] = e;
            nhits += e != NULL;
        }
    }
    return nhits;
}
