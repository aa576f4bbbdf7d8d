/*
 * compact.c - the records of a compaction's input segments, handed to the builder of the
 * segment that replaces them, ordered by the entity an investigation pivots on.
 *
 * Why the order: a lookup that prints an entity's events inflates one 256-record original
 * frame per block that holds a match (segment.c). In arrival order a user's events in an
 * hour of a busy account are spread one to a block, so printing 1,827 events of one user over
 * 12M inflated 1,796 frames (docs/BENCHMARKS.md section 64). Ordered by the entity and then by
 * time, an entity's events in a segment share a few blocks. The key of a record is the first
 * of user.name, dns.question.name, network.interface.id and source.ip it has: the user for
 * CloudTrail, the domain for DNS logs (a retro-hunt looks up domains), the interface for flow
 * logs. Ties keep time order, then input order, so a record stored twice stays in its place.
 * Nothing reads a segment's records in time order: a search sorts what it keeps, and the
 * segment's time bounds, not its ordinals, decide what it skips.
 *
 * COINHOUND_STORE_CLUSTER=off keeps the input order (the benchmarks compare the two), and
 * COINHOUND_STORE_CLUSTER_BUDGET=BYTES sets the budget below (the tests make an hour exceed it).
 *
 * Memory: per record its key, time and length (about 70 bytes with the key), and the records'
 * bytes: copied during the first read of the inputs when their headers say they fit in
 * CLUSTER_BUDGET (a merge of serve's, at most 16 MiB of segment files, does); otherwise the
 * first read only sorts, the sorted order is cut into ranges of that many bytes, and each range
 * reads the inputs again, so a large hour (an analyze run's) costs reads, not memory. The
 * buffer is faulted in at once (ch_mem_populate): copied into at random, it faulted page by
 * page, a third of the merge's system time.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "store/store_int.h"

#define CLUSTER_BUDGET ((size_t)256 << 20)

/* One input record: its key at koff in the keys buffer (kp once they stop moving), time,
 * stored bytes (len) at aoff in the arena, and its number in input order (r). */
typedef struct crec {
    const char *kp;
    uint64_t koff, aoff;
    int64_t ts;
    uint32_t klen, len, r;
    uint32_t in, ord; /* its input and ordinal there, for errors */
} crec;

static int crec_cmp(const void *a, const void *b)
{
    const crec *x = a, *y = b;
    size_t n = x->klen < y->klen ? x->klen : y->klen;
    int c = n ? memcmp(x->kp, y->kp, n) : 0;
    if (c != 0)
        return c;
    if (x->klen != y->klen)
        return x->klen < y->klen ? -1 : 1;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->r < y->r ? -1 : x->r > y->r;
}

static size_t cluster_budget(void)
{
    const char *v = getenv("COINHOUND_STORE_CLUSTER_BUDGET");
    char *end;
    unsigned long long b = v ? strtoull(v, &end, 10) : 0;
    return v && *end == '\0' && b > 0 && b < SIZE_MAX ? (size_t)b : CLUSTER_BUDGET;
}

static bool cluster_on(void)
{
    const char *v = getenv("COINHOUND_STORE_CLUSTER");
    return v == NULL || strcmp(v, "off") != 0;
}

typedef struct merge {
    const char *const *inputs;
    size_t ninputs;
    ch_seg_builder *b;
    void *cctx;
    atomic_bool *abort;
    ch_ev_decoded *d;
} merge;

static int add_one(merge *m, const ch_event *ev, uint64_t rid, ch_error *err)
{
    if (ch__segb_add(m->b, ev, rid) < 0)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    ch_seg_block *full = ch__segb_full(m->b);
    if (full == NULL)
        return 0;
    if (atomic_load(m->abort))
        return ch_error_set(err, CH_ERR, "compaction stopped: the store is closing");
    return ch__segb_compress(full, m->cctx, err);
}

/* The reason in err, prefixed with the input's path. */
static int in_input(const char *path, int rc, ch_error *err)
{
    char why[sizeof err->msg];
    snprintf(why, sizeof why, "%s", err->msg);
    return ch_error_set(err, rc, "%s: %s", path, why);
}

/* One input record as its two parts (t, then o: together the one-record form ch__ev_decode
 * reads; formats 1 and 2 give the whole record as t and nothing as o). */
typedef struct part2 {
    const uint8_t *t, *o;
    size_t tn, on;
    bool split;
    uint32_t in, ord; /* the input's number, and the record's ordinal in it */
    const char *path; /* the input's */
} part2;

typedef int (*visit_fn)(void *ctx, uint32_t r, const part2 *rec, const ch_ev_decoded *d,
                        ch_error *err);

/* Every input record, in input order, to fn (which returns 0 to go on); with decode, its typed
 * part decoded into m->d first (the key and the time are typed slots). */
static int visit_inputs(merge *m, bool decode, visit_fn fn, void *ctx, ch_error *err)
{
    int rc = 0;
    uint32_t r = 0;
    for (size_t i = 0; i < m->ninputs && rc == 0; i++) {
        ch_seg *sg = NULL;
        if ((rc = ch__seg_open(m->inputs[i], &sg, err)) < 0)
            break;
        uint32_t nrec = ch__seg_meta(sg)->nrec;
        bool split = ch__seg_format(sg) == CH_SEG_FORMAT_SPLIT;
        for (uint32_t o = 0; o < nrec && rc == 0; o++, r++) {
            part2 p = {.split = split, .in = (uint32_t)i, .ord = o, .path = m->inputs[i]};
            if ((rc = ch__seg_typed(sg, o, &p.t, &p.tn, err)) < 0 ||
                (split && (rc = ch__seg_orig(sg, o, &p.o, &p.on, err)) < 0))
                rc = in_input(p.path, rc, err);
            else if (decode && (split ? ch__ev_decode_parts(p.t, p.tn, NULL, 0, m->d)
                                      : ch__ev_decode(p.t, p.tn, m->d)) < 0)
                rc = ch_error_set(err, CH_EPARSE, "%s: record %u does not decode", p.path, o);
            else if (p.tn + p.on > UINT32_MAX)
                rc = ch_error_set(err, CH_EPARSE, "%s: record %u is %zu bytes", p.path, o,
                                  p.tn + p.on);
            else
                rc = fn(ctx, r, &p, m->d, err);
            if (rc == 0 && (o & 255) == 255 && atomic_load(m->abort))
                rc = ch_error_set(err, CH_ERR, "compaction stopped: the store is closing");
        }
        ch__seg_close(sg);
    }
    return rc;
}

typedef struct clus {
    crec *v;
    size_t n, cap;
    ch_buf keys;
    int kf[4];     /* the key's fields, in order of preference */
    uint8_t *buf;  /* the records' bytes: all of them (pos NULL), or range lo..hi's */
    uint32_t *pos; /* ranges: input number -> place in the sorted order */
    size_t lo, hi;
    bool copy;                /* the first read copies every record (one range) */
    uint64_t used, cap_bytes; /* then: bytes copied so far, and buf's size */
} clus;

static void put(uint8_t *dst, const part2 *p)
{
    memcpy(dst, p->t, p->tn);
    if (p->on)
        memcpy(dst + p->tn, p->o, p->on);
}

static int collect(void *ctx, uint32_t r, const part2 *p, const ch_ev_decoded *d, ch_error *err)
{
    clus *c = ctx;
    if (c->n == c->cap) {
        crec *nv = ch_grow(c->v, &c->cap, 4096, sizeof *nv);
        if (nv == NULL)
            return ch_error_set(err, CH_ENOMEM, "out of memory");
        c->v = nv;
    }
    crec *e = &c->v[c->n];
    memset(e, 0, sizeof *e);
    e->koff = c->keys.len;
    for (int i = 0; i < 4; i++) {
        char tb[64];
        ch_sv t;
        if (c->kf[i] < 0 || ch__ix_terms(&d->ev, c->kf[i], tb, &t) == 0)
            continue;
        if (ch_buf_add(&c->keys, t.p, t.n) < 0)
            return ch_error_set(err, CH_ENOMEM, "out of memory");
        e->klen = t.n;
        break;
    }
    e->ts = d->ev.ts_ms;
    e->len = (uint32_t)(p->tn + p->on);
    e->r = r;
    e->in = p->in;
    e->ord = p->ord;
    if (c->copy) {
        /* The inputs' raw byte counts bound what is copied; a segment that says otherwise is
         * damaged. */
        if (e->len > c->cap_bytes - c->used)
            return ch_error_set(err, CH_EPARSE, "an input holds more bytes than its header says");
        e->aoff = c->used;
        put(c->buf + c->used, p);
        c->used += e->len;
    }
    c->n++;
    return 0;
}

static int fill_range(void *ctx, uint32_t r, const part2 *p, const ch_ev_decoded *d, ch_error *err)
{
    (void)d;
    clus *c = ctx;
    uint32_t at = r < c->n ? c->pos[r] : UINT32_MAX;
    if (at < c->lo || at >= c->hi)
        return 0;
    if (p->tn + p->on != c->v[at].len)
        return ch_error_set(err, CH_EPARSE, "%s: record %u changed between two reads", p->path,
                            p->ord);
    put(c->buf + c->v[at].aoff, p);
    return 0;
}

/* Records lo..hi of the sorted order, whose bytes are at c->buf + aoff, to the builder. */
static int add_sorted(merge *m, const clus *c, size_t lo, size_t hi, ch_error *err)
{
    int rc = 0;
    for (size_t i = lo; i < hi && rc == 0; i++) {
        if (ch__ev_decode(c->buf + c->v[i].aoff, c->v[i].len, m->d) < 0)
            rc = ch_error_set(err, CH_EPARSE, "%s: record %u does not decode",
                              m->inputs[c->v[i].in], c->v[i].ord);
        else
            rc = add_one(m, &m->d->ev, m->d->rid, err);
    }
    return rc;
}

/* Input order: each record decoded whole and handed on as it comes. */
static int add_in_order(void *ctx, uint32_t r, const part2 *p, const ch_ev_decoded *d,
                        ch_error *err)
{
    (void)r;
    (void)d;
    merge *m = ctx;
    if ((p->split ? ch__ev_decode_parts(p->t, p->tn, p->o, p->on, m->d)
                  : ch__ev_decode(p->t, p->tn, m->d)) < 0)
        return ch_error_set(err, CH_EPARSE, "%s: record %u does not decode", p->path, p->ord);
    return add_one(m, &m->d->ev, m->d->rid, err);
}

/* The inputs' record bytes, from their headers (length prefixes included: a bound). */
static int inputs_bytes(const merge *m, uint64_t *total, ch_error *err)
{
    *total = 0;
    for (size_t i = 0; i < m->ninputs; i++) {
        ch_seg *sg = NULL;
        int rc = ch__seg_open(m->inputs[i], &sg, err);
        if (rc < 0)
            return rc;
        *total += ch__seg_meta(sg)->raw_bytes;
        ch__seg_close(sg);
    }
    return 0;
}

static uint8_t *new_buf(uint64_t n)
{
    uint8_t *p = n < SIZE_MAX ? ch_malloc(n ? (size_t)n : 1) : NULL;
    if (p != NULL)
        ch_mem_populate(p, (size_t)n); /* written at random: a fault a page is dear */
    return p;
}

/* The ranges: records lo.. of the sorted order while their bytes fit in budget (one at
 * least), each placed at aoff; the largest range's bytes. */
static uint64_t cut_ranges(clus *c, size_t budget)
{
    uint64_t most = 0;
    for (size_t lo = 0, hi; lo < c->n; lo = hi) {
        uint64_t sum = 0;
        for (hi = lo; hi < c->n && (hi == lo || sum + c->v[hi].len <= budget); hi++) {
            c->v[hi].aoff = sum;
            sum += c->v[hi].len;
        }
        most = sum > most ? sum : most;
    }
    return most;
}

static int merge_clustered(merge *m, ch_error *err)
{
    clus c;
    memset(&c, 0, sizeof c);
    ch_buf_init(&c.keys, (size_t)1 << 32);
    static const char *const kfields[4] = {"user.name", "dns.question.name", "network.interface.id",
                                           "source.ip"};
    for (int i = 0; i < 4; i++)
        c.kf[i] = ch__ix_field(kfields[i]);
    size_t budget = cluster_budget();
    uint64_t total = 0;
    int rc = inputs_bytes(m, &total, err);
    bool one = total <= budget;
    if (rc == 0 && one && (c.buf = new_buf(total)) == NULL)
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
    c.cap_bytes = total;
    c.copy = one;
    if (rc == 0)
        rc = visit_inputs(m, true, collect, &c, err);
    if (rc == 0) {
        for (size_t i = 0; i < c.n; i++)
            c.v[i].kp = c.keys.data + c.v[i].koff;
        if (c.n > 1)
            qsort(c.v, c.n, sizeof *c.v, crec_cmp);
        if (one)
            rc = add_sorted(m, &c, 0, c.n, err);
    }
    if (rc == 0 && !one && c.n > 0) {
        uint64_t most = cut_ranges(&c, budget);
        c.pos = ch_malloc(c.n * sizeof *c.pos);
        if (c.pos == NULL || (c.buf = new_buf(most)) == NULL)
            rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        for (size_t i = 0; rc == 0 && i < c.n; i++)
            c.pos[c.v[i].r] = (uint32_t)i;
        for (c.lo = 0; rc == 0 && c.lo < c.n; c.lo = c.hi) {
            /* a range's first record is at offset 0 (every record has bytes) */
            for (c.hi = c.lo + 1; c.hi < c.n && c.v[c.hi].aoff != 0; c.hi++)
                ;
            rc = visit_inputs(m, false, fill_range, &c, err);
            if (rc == 0)
                rc = add_sorted(m, &c, c.lo, c.hi, err);
        }
    }
    ch_free(c.buf);
    ch_free(c.pos);
    ch_free(c.v);
    ch_buf_free(&c.keys);
    return rc;
}

int ch__compact_merge(const char *const *inputs, size_t ninputs, ch_seg_builder *b, void *cctx,
                      atomic_bool *abort, ch_error *err)
{
    merge m = {inputs, ninputs, b, cctx, abort, ch_malloc(sizeof(ch_ev_decoded))};
    if (m.d == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    int rc =
        cluster_on() ? merge_clustered(&m, err) : visit_inputs(&m, false, add_in_order, &m, err);
    ch_free(m.d);
    return rc;
}
