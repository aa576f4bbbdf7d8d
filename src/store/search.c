/*
 * search.c - one search over an event store: compile, plan per segment, evaluate, keep.
 *
 * Cost: a segment outside the time range costs a directory entry; one whose indexes exclude
 * every record costs its header and its index frame (a few KB); otherwise each candidate
 * record costs its block's decompression (shared by the block's records) and a decode that
 * points views into the bytes, then the compiled expression. Only an expression that reads a
 * raw path parses the record's JSON. Over a format 3 segment (segment.c) a search whose
 * expression and grouping read only normalized fields decompresses only the typed stream, and
 * the original records only of the blocks holding a match it keeps (or hands to an on_match
 * that asked for them). A count whose expression the index answers exactly (== tests on
 * indexed fields) and whose grouping fields are indexed decompresses no block at all: the
 * grouping field's postings give each match's group (count_from_index). Kept matches are
 * copies of their stored bytes, at most `limit` of them (with limit-many more as slack before
 * a sort trims them), so memory is bounded by the limit, not by the matches; aggregation
 * groups are bounded by max_memory.
 *
 * Thread use: ch_search_run is called on one thread; ch_search_cancel and
 * ch_search_progress_get may be called from others (the counters are atomics). The store may
 * read segments on several threads (opts.threads), each into a shard: a search compiled again
 * from the same options, whose state and counters are the root's (R()). Kept matches sort by
 * time, then record identity, then their segment's place in the reading order and arrival, so
 * that the shards' merged and sorted are the one-thread answer; their groups and buckets are
 * summed. A shard hands its kept matches to the root after each segment; whoever cuts kept
 * matches to the limit publishes the limit-th time (shared_worst), which lets every shard skip
 * segments, and stop reading one, that cannot improve the merged matches.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "core/ip.h"
#include "core/json.h"
#include "core/leb.h"
#include "core/mem.h"
#include "core/timeparse.h"
#include "rules/expr_index.h"
#include "store/search_int.h"

typedef struct kept {
    int64_t ts;
    /* Among equal times: the record's identity (a hash of the record, the same wherever it is
     * stored), so that the order does not depend on how segments were sealed, merged or read;
     * then arrival (a record stored twice) */
    uint64_t rid;
    uint64_t seq;
    uint8_t *rec;
    size_t n;
} kept;

typedef struct group {
    char *key;
    uint64_t count;
} group;

struct ch_search {
    ch_search_opts o;
    char *expr_src, *count_by_src, *top_src;
    ch_expr *expr;
    ch_expr_scratch *scratch;
    ch_field_cache gcache;
    bool uses_raw;
    /* uses_raw, and normalized fields alone can rule a record out (ch_expr_typed_can_reject):
     * a record's original part is inflated and parsed only once they have not */
    bool typed_first;
    /* uses_raw, and the record's JSON text can rule a record out before it is parsed
     * (ch_expr_text_can_reject) */
    bool text_first;
    /* text_first, not typed_first, and the text alone can rule a record out
     * (ch_expr_text_alone_can_reject): a split segment's original part is read first */
    bool text_alone;
    /* The text's tests asked in the current segment, the records they ruled out, and whether
     * they are off for the rest of it: a test that rarely rules a record out (a raw path whose
     * key every record holds) costs each record a search of its text for nothing. */
    uint32_t text_asked, text_ruled_out;
    bool text_off;
    bool need_orig; /* the expression or a grouping field reads the original record */
    /* uses_raw, and no test reads a normalized slot (ch_expr_raw_only): over a segment inside
     * the time range (seg_inside) a record's original part alone answers the expression */
    bool raw_only, seg_inside;
    /* Counts come from the indexes alone (count_from_index): an exact expression, and every
     * grouping field indexed; gfield[i] is grouping field i's index field. */
    bool ix_count;
    int gfield[CH_SEARCH_MAX_GROUP_FIELDS];
    uint32_t *ixterm; /* count_from_index's scratch: a term per candidate and grouping field */
    size_t capixterm;
    ch_json_parser *jp;
    ch_json_lazy *jl; /* raw paths of records not (yet) matched: read_raw */
    ZSTD_DCtx *dctx;  /* shared by the segments it reads */
    /* when ch_search_run began: progress is read from other threads while it runs */
    _Atomic int64_t t0_ns;
    /* grouping */
    char *gnames[CH_SEARCH_MAX_GROUP_FIELDS];
    const char *gnames_c[CH_SEARCH_MAX_GROUP_FIELDS];
    ch_field_ref *grefs[CH_SEARCH_MAX_GROUP_FIELDS];
    size_t ngroupf;
    group *groups; /* open addressing */
    size_t gcap, gcount;
    group *gsorted;
    /* histogram */
    int64_t *bstart;
    uint64_t *bcount;
    size_t nb, capb;
    /* kept matches */
    kept *keep;
    size_t nkeep, capkeep;
    uint64_t seq;
    bool trimmed; /* cut to the limit once: its limit-th time is in R(s)->shared_worst */
    size_t mem;
    ch_ev_decoded *dec, *out;
    uint32_t *cand;
    size_t capcand;
    ch_buf explain, damaged;
    _Atomic int state;
    _Atomic bool cancel;
    _Atomic uint64_t seg_total, seg_done, seg_skipped, seg_damaged, scanned, matched;
    /* Records scanned and not yet added to R(s)->scanned: a shared counter added to once a
     * record was a locked add on a line both CPUs write, 2-3% of a two-thread scan (section
     * 73); ch__search_segment adds them every 256 records and at its end. */
    uint64_t unscanned;
    /* A shard (ch__search_shard_new) reads segments on a thread of its own into its own kept
     * matches, groups and text; its state, counters and cancel flag are the root's. */
    ch_search *root;
    /* The root's: the best limit-th time kept (newest first: the latest such time; --sort asc:
     * the earliest), by the root or by any shard. One shard's limit-th match is a bound for
     * all: an event older than it cannot enter the merged matches either. A search that reads
     * alone keeps its own limit-th time here too, so this is the one bound every test asks. */
    _Atomic int64_t shared_worst;
};

/* Where state, counters and the cancel flag live. */
static ch_search *R(ch_search *s) { return s->root ? s->root : s; }

const char *ch_search_state_name(ch_search_state st)
{
    static const char *const n[] = {"ready",   "running", "done",  "cancelled",
                                    "timeout", "memory",  "failed"};
    return (unsigned)st < sizeof n / sizeof *n ? n[st] : "unknown";
}

static int64_t mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static char *dup_or_null(const char *s) { return s ? ch_strdup(s) : NULL; }

static int split_fields(ch_search *s, const char *list, ch_error *err)
{
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0)
            return ch_error_set(err, CH_EUSAGE, "empty field name in '%s'", list);
        if (s->ngroupf == CH_SEARCH_MAX_GROUP_FIELDS)
            return ch_error_set(err, CH_ELIMIT, "at most %d fields to count by",
                                CH_SEARCH_MAX_GROUP_FIELDS);
        size_t k = s->ngroupf;
        if ((s->gnames[k] = ch_malloc(n + 1)) == NULL)
            return ch_error_set(err, CH_ENOMEM, "out of memory");
        memcpy(s->gnames[k], p, n);
        s->gnames[k][n] = '\0';
        s->gnames_c[k] = s->gnames[k];
        int rc = ch_field_resolve(p, n, &s->grefs[k], err);
        if (rc < 0) {
            ch_free(s->gnames[k]); /* not counted in ngroupf yet: ch_search_free would miss it */
            s->gnames[k] = NULL;
            return rc;
        }
        s->ngroupf++;
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

static bool exact(const ch_expr_node *n);

int ch_search_new(const ch_search_opts *opts, ch_search **out, ch_error *err)
{
    ch_search *s = ch_calloc(1, sizeof *s);
    if (s == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    s->o = *opts;
    atomic_init(&s->shared_worst, opts->asc ? INT64_MAX : INT64_MIN);
    ch_buf_init(&s->explain, (size_t)64 << 20);
    ch_buf_init(&s->damaged, (size_t)16 << 20);
    int rc = 0;
    if (s->o.limit == 0)
        s->o.limit = CH_SEARCH_DEFAULT_LIMIT;
    if (s->o.max_memory == 0)
        s->o.max_memory = CH_SEARCH_DEFAULT_MEMORY;
    if (s->o.from_ms == 0 && s->o.to_ms == 0) {
        s->o.from_ms = INT64_MIN;
        s->o.to_ms = INT64_MAX;
    }
    s->expr_src = dup_or_null(opts->expr ? opts->expr : "");
    s->count_by_src = dup_or_null(opts->count_by);
    s->top_src = dup_or_null(opts->top);
    s->dec = ch_malloc(sizeof *s->dec);
    s->out = ch_malloc(sizeof *s->out);
    if (s->expr_src == NULL || (opts->count_by && !s->count_by_src) || (opts->top && !s->top_src) ||
        s->dec == NULL || s->out == NULL) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto fail;
    }
    if (opts->count_by && opts->top) {
        rc = ch_error_set(err, CH_EUSAGE, "--count-by and --top cannot be combined");
        goto fail;
    }
    if (opts->histogram_ms < 0) {
        rc = ch_error_set(err, CH_EUSAGE, "histogram bucket must be positive");
        goto fail;
    }
    if ((rc = ch_expr_compile(s->expr_src, opts->env, &s->expr, err)) < 0)
        goto fail;
    if ((s->scratch = ch_expr_scratch_new()) == NULL) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto fail;
    }
    s->uses_raw = ch_expr_uses_raw(s->expr);
    s->typed_first = s->uses_raw && ch_expr_typed_can_reject(s->expr);
    s->text_first = s->uses_raw && ch_expr_text_can_reject(s->expr);
    s->text_alone = s->text_first && !s->typed_first && ch_expr_text_alone_can_reject(s->expr);
    s->raw_only = s->uses_raw && ch_expr_raw_only(s->expr);
    if ((s->count_by_src && (rc = split_fields(s, s->count_by_src, err)) < 0) ||
        (s->top_src && (rc = split_fields(s, s->top_src, err)) < 0))
        goto fail;
    s->need_orig = s->uses_raw;
    for (size_t i = 0; i < s->ngroupf; i++)
        if (ch_field_ref_info(s->grefs[i]) == NULL)
            s->need_orig = true; /* a raw path to count by */
    if (s->top_src && s->ngroupf != 1) {
        rc = ch_error_set(err, CH_EUSAGE, "--top takes one field");
        goto fail;
    }
    s->ix_count = (s->ngroupf > 0 || s->o.histogram_ms > 0) && s->o.on_match == NULL &&
                  !s->uses_raw && !s->o.no_index && exact(ch_expr_root(s->expr));
    for (size_t i = 0; i < s->ngroupf && s->ix_count; i++) {
        s->gfield[i] = ch__ix_field(s->gnames[i]);
        s->ix_count = s->gfield[i] >= 0 && ch_field_ref_info(s->grefs[i]) != NULL;
    }
    *out = s;
    return 0;
fail:
    ch_search_free(s);
    return rc;
}

static void keep_free(ch_search *s)
{
    for (size_t i = 0; i < s->nkeep; i++)
        ch_free(s->keep[i].rec);
    ch_free(s->keep);
    s->keep = NULL;
    s->nkeep = s->capkeep = 0;
}

void ch_search_free(ch_search *s)
{
    if (s == NULL)
        return;
    ch_expr_free(s->expr);
    ch_expr_scratch_free(s->scratch);
    ch_json_parser_free(s->jp);
    ch_json_lazy_free(s->jl);
    ZSTD_freeDCtx(s->dctx);
    ch_free(s->expr_src);
    ch_free(s->count_by_src);
    ch_free(s->top_src);
    for (size_t i = 0; i < s->ngroupf; i++) {
        ch_free(s->gnames[i]);
        ch_field_ref_free(s->grefs[i]);
    }
    for (size_t i = 0; i < s->gcap; i++)
        ch_free(s->groups[i].key);
    ch_free(s->groups);
    ch_free(s->gsorted);
    ch_free(s->bstart);
    ch_free(s->bcount);
    keep_free(s);
    ch_free(s->dec);
    ch_free(s->out);
    ch_free(s->cand);
    ch_free(s->ixterm);
    ch_buf_free(&s->explain);
    ch_buf_free(&s->damaged);
    ch_free(s);
}

void ch_search_cancel(ch_search *s) { atomic_store(&s->cancel, true); }

void ch_search_progress_get(const ch_search *s, ch_search_progress *p)
{
    p->state = (ch_search_state)atomic_load(&s->state);
    p->segments_total = atomic_load(&s->seg_total);
    p->segments_done = atomic_load(&s->seg_done);
    p->segments_skipped = atomic_load(&s->seg_skipped);
    p->segments_damaged = atomic_load(&s->seg_damaged);
    p->events_scanned = atomic_load(&s->scanned);
    p->events_matched = atomic_load(&s->matched);
    int64_t t0 = atomic_load(&s->t0_ns);
    p->elapsed_ms = t0 ? (double)(mono_ns() - t0) / 1e6 : 0;
}

void ch__search_range(const ch_search *s, int64_t *from, int64_t *to, bool *desc)
{
    *from = s->o.from_ms;
    *to = s->o.to_ms;
    *desc = !s->o.asc;
}

void ch__search_add_total(ch_search *s, size_t n) { atomic_fetch_add(&R(s)->seg_total, n); }

static bool aggregating(const ch_search *s)
{
    return s->ngroupf > 0 || s->o.histogram_ms > 0 || s->o.on_match != NULL;
}

static bool stop_state(ch_search *s)
{
    if (atomic_load(&R(s)->cancel)) {
        atomic_store(&R(s)->state, CH_SEARCH_CANCELLED);
        return true;
    }
    if (s->o.max_ms > 0 && mono_ns() - atomic_load(&s->t0_ns) > s->o.max_ms * 1000000) {
        atomic_store(&R(s)->state, CH_SEARCH_TIMEOUT);
        return true;
    }
    return atomic_load(&R(s)->state) != CH_SEARCH_RUNNING;
}

static void keep_sort_trim(ch_search *s);

/* Does the limit-th time kept (here or by another shard) rule out every event of [from, to]? */
static bool bound_excludes(ch_search *s, int64_t from, int64_t to)
{
    if (aggregating(s))
        return false;
    int64_t w = atomic_load_explicit(&R(s)->shared_worst, memory_order_relaxed);
    return s->o.asc ? from > w : to < w;
}

bool ch__search_cannot_improve(ch_search *s, int64_t seg_from, int64_t seg_to)
{
    if (aggregating(s))
        return false;
    /* Cut the kept matches to the limit at every segment boundary once there are enough (not
     * only when twice the limit piled up): the limit-th match's time then rules segments out
     * from the first one after the limit was reached. The result is the same either way. */
    if (s->nkeep >= s->o.limit && (!s->trimmed || s->nkeep > s->o.limit))
        keep_sort_trim(s);
    return bound_excludes(s, seg_from, seg_to);
}

bool ch__search_done(ch_search *s, int64_t seg_from, int64_t seg_to)
{
    if (stop_state(s))
        return true;
    /* Segments come in time order: past the limit-th kept match nothing can enter. */
    bool stop = ch__search_cannot_improve(s, seg_from, seg_to);
    if (stop && s->o.explain)
        ch_buf_printf(&s->explain,
                      "stop: %llu matches kept and older segments cannot improve "
                      "them\n",
                      (unsigned long long)s->o.limit); /* this reader's or another's */
    return stop;
}

void ch__search_damaged(ch_search *s, const char *path, const char *why)
{
    atomic_fetch_add(&R(s)->seg_damaged, 1);
    atomic_fetch_add(&R(s)->seg_done, 1);
    ch_buf_printf(&s->damaged, "%s: %s\n", path, why);
    if (s->o.explain)
        ch_buf_printf(&s->explain, "%s: damaged, skipped: %s\n", path, why);
}

/* A segment whose index (a field's frame, or the whole area) is damaged: reported with the
 * damage, and its records evaluated instead, so the answer is the scan's. */
static void index_damaged(ch_search *s, const char *path, const char *why)
{
    ch_buf_printf(&s->damaged, "%s: %s; its events were evaluated instead\n", path, why);
    if (s->o.explain)
        ch_buf_printf(&s->explain, "%s: damaged index, evaluated instead: %s\n", path, why);
}

/* ---- candidates from the indexes ---- */

typedef struct cset {
    bool all;
    uint32_t *v;
    size_t n;
} cset;

static void cset_free(cset *c)
{
    ch_free(c->v);
    c->v = NULL;
    c->n = 0;
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Sort and drop duplicates. */
static void cset_norm(cset *c)
{
    if (c->n < 2)
        return;
    qsort(c->v, c->n, sizeof *c->v, u32_cmp);
    size_t w = 1;
    for (size_t i = 1; i < c->n; i++)
        if (c->v[i] != c->v[w - 1])
            c->v[w++] = c->v[i];
    c->n = w;
}

/* Where a plan reads its term dictionaries: a segment's index (postings are record ordinals)
 * or a day summary (postings are the summary's segment numbers). The planning is the same. */
typedef struct tsrc {
    ch_seg *seg;
    ch_sum *sum;
} tsrc;

static int tsrc_terms(const tsrc *t, int f, const ch_seg_term **terms, size_t *n, uint32_t *nrec,
                      ch_error *err)
{
    if (t->sum) {
        *nrec = ch__sum_nseg(t->sum);
        return ch__sum_terms(t->sum, f, terms, n, err);
    }
    *nrec = ch__seg_meta(t->seg)->nrec;
    /* the dictionary alone: a term's postings are read once it matches (tsrc_post) */
    return ch__seg_dict(t->seg, f, terms, n, err);
}

/* Term i of field f, which matched: its postings, read now (format 6 inflates the chunk that
 * holds them, not the whole field's). */
static int tsrc_post(const tsrc *t, int f, size_t i, ch_error *err)
{
    return t->sum ? 0 : ch__seg_term_post(t->seg, f, i, err);
}

static int plan_node(ch_search *s, const tsrc *src, const ch_expr_node *n, cset *out,
                     ch_error *err);

static int plan_pred(ch_search *s, const tsrc *src, const ch_expr_node *n, cset *out, ch_error *err)
{
    *out = (cset){.all = true};
    const char *path = ch_expr_pred_index_field(n);
    int f = path ? ch__ix_field(path) : -1;
    if (f < 0)
        return 0;
    const ch_seg_term *terms;
    size_t nt;
    uint32_t nrec;
    int rc = tsrc_terms(src, f, &terms, &nt, &nrec, err);
    if (rc < 0)
        return rc;
    /* An equality needs one term: binary search (the dictionaries are sorted byte-wise, shorter
     * first on a common prefix). An address's term is its canonical text (ch__ix_terms
     * formats it), so the literal address formatted the same way is the only term that can
     * equal it. The test below still runs on the term found. */
    ch_value lv;
    char ib[64];
    size_t lo = 0, hi = nt;
    if (ch_expr_pred_eq_literal(n, &lv) && (lv.type == CH_V_IP) == ch__ix_is_ip(f)) {
        ch_sv key =
            lv.type == CH_V_STR ? lv.u.s : (ch_sv){ib, (uint32_t)ch_ip_format(&lv.u.ip, ib)};
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            size_t m = terms[mid].term.n < key.n ? terms[mid].term.n : key.n;
            int c = memcmp(terms[mid].term.p, key.p, m);
            if (c == 0)
                c = terms[mid].term.n < key.n ? -1 : terms[mid].term.n > key.n;
            if (c < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        hi = lo < nt && terms[lo].term.n == key.n && memcmp(terms[lo].term.p, key.p, key.n) == 0
                 ? lo + 1
                 : lo;
    }
    size_t cap = 0;
    *out = (cset){.all = false};
    for (size_t i = lo; i < hi; i++) {
        ch_value v;
        if (ch__ix_is_ip(f)) {
            v.type = CH_V_IP;
            if (!ch_ip_parse(terms[i].term.p, terms[i].term.n, &v.u.ip))
                continue;
        } else {
            v.type = CH_V_STR;
            v.u.s = terms[i].term;
        }
        if (!ch_expr_pred_test(n, &v, s->scratch))
            continue;
        if (out->n + terms[i].npost > cap) {
            size_t nc = (out->n + terms[i].npost) * 2;
            uint32_t *nv = ch_realloc(out->v, nc * sizeof *nv);
            if (nv == NULL) {
                cset_free(out);
                return ch_error_set(err, CH_ENOMEM, "out of memory");
            }
            out->v = nv;
            cap = nc;
        }
        if ((rc = tsrc_post(src, f, i, err)) < 0) {
            cset_free(out);
            return rc;
        }
        if (ch__seg_postings(&terms[i], out->v + out->n, nrec) < 0) {
            cset_free(out);
            return ch_error_set(err, CH_EPARSE, "index field %s: damaged postings", path);
        }
        out->n += terms[i].npost;
    }
    cset_norm(out);
    return 0;
}

static int plan_node(ch_search *s, const tsrc *src, const ch_expr_node *n, cset *out, ch_error *err)
{
    ch_expr_node_kind k = ch_expr_node_type(n);
    if (k == CH_EXPR_PRED)
        return plan_pred(s, src, n, out, err);
    if (k == CH_EXPR_NOT) {
        *out = (cset){.all = true};
        return 0;
    }
    size_t nk = ch_expr_node_nkids(n);
    cset acc = {.all = (k == CH_EXPR_AND)};
    for (size_t i = 0; i < nk; i++) {
        cset c;
        int rc = plan_node(s, src, ch_expr_node_kid(n, i), &c, err);
        if (rc < 0) {
            cset_free(&acc);
            return rc;
        }
        if (k == CH_EXPR_AND) {
            if (c.all)
                continue;
            if (acc.all) {
                acc = c;
                continue;
            }
            size_t w = 0, a = 0, b = 0;
            while (a < acc.n && b < c.n) {
                if (acc.v[a] < c.v[b])
                    a++;
                else if (acc.v[a] > c.v[b])
                    b++;
                else {
                    acc.v[w++] = acc.v[a];
                    a++;
                    b++;
                }
            }
            acc.n = w;
            cset_free(&c);
        } else {
            if (acc.all || c.all) {
                cset_free(&acc);
                cset_free(&c);
                acc = (cset){.all = true};
                continue;
            }
            uint32_t *nv = ch_realloc(acc.v, (acc.n + c.n + 1) * sizeof *nv);
            if (nv == NULL) {
                cset_free(&acc);
                cset_free(&c);
                return ch_error_set(err, CH_ENOMEM, "out of memory");
            }
            acc.v = nv;
            if (c.n)
                memcpy(acc.v + acc.n, c.v, c.n * sizeof *c.v);
            acc.n += c.n;
            cset_norm(&acc);
            cset_free(&c);
        }
    }
    *out = acc;
    return 0;
}

/* Can the indexes narrow anything? (A test on an indexed field not under `not`, in every
 * branch of an `or`.) */
static bool narrows(const ch_expr_node *n)
{
    ch_expr_node_kind k = ch_expr_node_type(n);
    if (k == CH_EXPR_PRED) {
        const char *f = ch_expr_pred_index_field(n);
        return f && ch__ix_field(f) >= 0;
    }
    if (k == CH_EXPR_NOT)
        return false;
    size_t nk = ch_expr_node_nkids(n);
    for (size_t i = 0; i < nk; i++) {
        bool b = narrows(ch_expr_node_kid(n, i));
        if (k == CH_EXPR_AND && b)
            return true;
        if (k == CH_EXPR_OR && !b)
            return false;
    }
    return k == CH_EXPR_OR && nk > 0;
}

/* Do the indexes give exactly the matches, not a superset to test? Only for `==` against a
 * literal on an indexed field (the term is the field's value, byte for byte: the test on the
 * term is the test on the event) and and/or of such tests. Other operators could depend on
 * more than the value (a set whose members expire at the event's time), so they are left to
 * the evaluator. */
static bool exact(const ch_expr_node *n)
{
    ch_expr_node_kind k = ch_expr_node_type(n);
    if (k == CH_EXPR_PRED) {
        const char *path = ch_expr_pred_index_field(n);
        int f = path ? ch__ix_field(path) : -1;
        ch_value lv;
        return f >= 0 && ch_expr_pred_eq_literal(n, &lv) && (lv.type == CH_V_IP) == ch__ix_is_ip(f);
    }
    if (k == CH_EXPR_NOT)
        return false;
    size_t nk = ch_expr_node_nkids(n);
    for (size_t i = 0; i < nk; i++)
        if (!exact(ch_expr_node_kid(n, i)))
            return false;
    return nk > 0;
}

bool ch__search_indexable(const ch_search *s)
{
    return !s->o.no_index && narrows(ch_expr_root(s->expr));
}

int ch__search_summary(ch_search *s, ch_sum *sum, uint8_t *maybe, ch_error *err)
{
    uint32_t n = ch__sum_nseg(sum);
    cset c = {.all = true};
    tsrc src = {NULL, sum};
    int rc = plan_node(s, &src, ch_expr_root(s->expr), &c, err);
    if (rc < 0)
        return rc;
    memset(maybe, c.all ? 1 : 0, n);
    for (size_t i = 0; !c.all && i < c.n; i++)
        maybe[c.v[i]] = 1;
    cset_free(&c);
    return 0;
}

void ch__search_skip(ch_search *s, const char *path, const char *why)
{
    atomic_fetch_add(&R(s)->seg_skipped, 1);
    atomic_fetch_add(&R(s)->seg_done, 1);
    if (s->o.explain)
        ch_buf_printf(&s->explain, "%s: skipped: %s\n", path, why);
}

void ch__search_note(ch_search *s, const char *what, bool damaged)
{
    if (damaged)
        ch_buf_printf(&s->damaged, "%s\n", what);
    if (s->o.explain)
        ch_buf_printf(&s->explain, "%s\n", what);
}

/* ---- keeping and aggregating ---- */

static int kept_cmp_desc(const void *a, const void *b)
{
    const kept *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts > y->ts ? -1 : 1;
    if (x->rid != y->rid)
        return x->rid > y->rid ? -1 : 1; /* newest first is oldest first reversed */
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int kept_cmp_asc(const void *a, const void *b)
{
    const kept *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    if (x->rid != y->rid)
        return x->rid < y->rid ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void keep_sort_trim(ch_search *s)
{
    if (s->nkeep > 1)
        qsort(s->keep, s->nkeep, sizeof *s->keep, s->o.asc ? kept_cmp_asc : kept_cmp_desc);
    if (s->nkeep >= s->o.limit) {
        for (size_t i = s->o.limit; i < s->nkeep; i++) {
            s->mem -= s->keep[i].n;
            ch_free(s->keep[i].rec);
        }
        s->nkeep = s->o.limit;
        s->trimmed = true;
        /* The bound of every test (bound_excludes): a compare-and-swap loop, as only a better
         * bound may win. */
        int64_t worst = s->keep[s->nkeep - 1].ts;
        _Atomic int64_t *sw = &R(s)->shared_worst;
        int64_t cur = atomic_load(sw);
        while ((s->o.asc ? worst < cur : worst > cur) &&
               !atomic_compare_exchange_weak(sw, &cur, worst))
            ;
    }
}

/* Would a match at ts enter the kept ones? */
static bool keep_wants(ch_search *s, int64_t ts) { return !bound_excludes(s, ts, ts); }

/* Keep a match: its stored bytes rec[0..n) followed by tail[0..tn) (format 3's original part;
 * the two back to back are the one-record form ch__ev_decode reads). */
static int keep_add(ch_search *s, const uint8_t *rec, size_t n, const uint8_t *tail, size_t tn,
                    int64_t ts, uint64_t rid, ch_error *err)
{
    if (!keep_wants(s, ts))
        return 0;
    if (s->nkeep == s->capkeep) {
        size_t nc = s->capkeep ? s->capkeep * 2 : 64;
        if (nc > s->o.limit * 2 + 1)
            nc = s->o.limit * 2 + 1;
        if (nc <= s->nkeep)
            nc = s->nkeep + 1;
        kept *nk = ch_realloc(s->keep, nc * sizeof *nk);
        if (nk == NULL)
            return ch_error_set(err, CH_ENOMEM, "out of memory");
        s->keep = nk;
        s->capkeep = nc;
    }
    uint8_t *c = ch_malloc(n + tn ? n + tn : 1);
    if (c == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    memcpy(c, rec, n);
    if (tn)
        memcpy(c + n, tail, tn);
    n += tn;
    s->keep[s->nkeep++] = (kept){ts, rid, s->seq++, c, n};
    s->mem += n + sizeof(kept);
    if (s->nkeep >= s->o.limit * 2)
        keep_sort_trim(s);
    return 0;
}

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 1099511628211ull;
    return h;
}

static int group_add(ch_search *s, const char *key, size_t kn, uint64_t count, ch_error *err)
{
    if (s->gcount * 2 >= s->gcap) {
        size_t nc = s->gcap ? s->gcap * 2 : 1024;
        group *ng = ch_calloc(nc, sizeof *ng);
        if (ng == NULL)
            return ch_error_set(err, CH_ENOMEM, "out of memory");
        for (size_t i = 0; i < s->gcap; i++) {
            if (s->groups[i].key == NULL)
                continue;
            size_t j = hash_bytes(s->groups[i].key, strlen(s->groups[i].key)) & (nc - 1);
            while (ng[j].key)
                j = (j + 1) & (nc - 1);
            ng[j] = s->groups[i];
        }
        ch_free(s->groups);
        s->groups = ng;
        s->gcap = nc;
    }
    size_t j = hash_bytes(key, kn) & (s->gcap - 1);
    while (s->groups[j].key) {
        if (strlen(s->groups[j].key) == kn && memcmp(s->groups[j].key, key, kn) == 0) {
            s->groups[j].count += count;
            return 0;
        }
        j = (j + 1) & (s->gcap - 1);
    }
    if (s->mem + kn + 64 > s->o.max_memory) {
        atomic_store(&R(s)->state, CH_SEARCH_MEMORY);
        return 0;
    }
    char *k = ch_malloc(kn + 1);
    if (k == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    memcpy(k, key, kn);
    k[kn] = '\0';
    s->groups[j] = (group){k, count};
    s->gcount++;
    s->mem += kn + 1 + sizeof(group);
    return 0;
}

static int hist_add(ch_search *s, int64_t ts, uint64_t count, ch_error *err);

static int aggregate(ch_search *s, const ch_event *ev, ch_error *err)
{
    int rc = 0;
    if (s->ngroupf) {
        char key[4096];
        size_t kn = 0;
        for (size_t i = 0; i < s->ngroupf; i++) {
            ch_value v;
            char tb[CH_VALUE_TEXT_MAX];
            ch_sv t = ch_field_first(s->grefs[i], ev, &s->gcache, &v) ? ch_value_text(&v, tb)
                                                                      : (ch_sv){"", 0};
            if (i)
                key[kn++] = '\x1f';
            size_t c = t.n < sizeof key - kn - 8 ? t.n : sizeof key - kn - 8;
            memcpy(key + kn, t.p, c);
            kn += c;
        }
        rc = group_add(s, key, kn, 1, err);
    }
    if (rc == 0 && s->o.histogram_ms > 0)
        rc = hist_add(s, ev->ts_ms, 1, err);
    return rc;
}

/* The start of the histogram bucket of ts. */
static int64_t bucket_of(const ch_search *s, int64_t ts)
{
    int64_t w = s->o.histogram_ms;
    int64_t b = ts / w * w;
    if (ts < 0 && ts % w)
        b -= w;
    return b;
}

/* count matches at ts into the histogram. */
static int hist_add(ch_search *s, int64_t ts, uint64_t count, ch_error *err)
{
    int64_t b = bucket_of(s, ts);
    /* Buckets arrive mostly in order: look from the end. */
    size_t i = s->nb;
    while (i > 0 && s->bstart[i - 1] > b)
        i--;
    if (i > 0 && s->bstart[i - 1] == b) {
        s->bcount[i - 1] += count;
    } else if (s->nb >= CH_SEARCH_MAX_BUCKETS) {
        atomic_store(&R(s)->state, CH_SEARCH_MEMORY);
    } else {
        if (s->nb == s->capb) {
            size_t nc = s->capb ? s->capb * 2 : 64;
            int64_t *ns = ch_realloc(s->bstart, nc * sizeof *ns);
            if (ns)
                s->bstart = ns;
            uint64_t *ncnt = ns ? ch_realloc(s->bcount, nc * sizeof *ncnt) : NULL;
            if (ncnt == NULL)
                return ch_error_set(err, CH_ENOMEM, "out of memory");
            s->bcount = ncnt;
            s->capb = nc;
        }
        memmove(s->bstart + i + 1, s->bstart + i, (s->nb - i) * sizeof *s->bstart);
        memmove(s->bcount + i + 1, s->bcount + i, (s->nb - i) * sizeof *s->bcount);
        s->bstart[i] = b;
        s->bcount[i] = count;
        s->nb++;
    }
    return 0;
}

/* A stored record's limits, for its document and for the lazy reader alike: a record the
 * reader refuses is parsed whole, so the two must accept the same records. */
#define RAW_MAX_DOC ((size_t)64 << 20)
#define RAW_MAX_DEPTH 1024

/* Make the record's JSON document available to raw paths (and to the writer). */
static void attach_doc(ch_search *s, ch_event *ev)
{
    if (ev->raw_json.p == NULL)
        return;
    if (s->jp == NULL && (s->jp = ch_json_parser_new(RAW_MAX_DOC, RAW_MAX_DEPTH)) == NULL)
        return;
    ch_error e = {0};
    if (ch_json_parse(s->jp, ev->raw_json.p, ev->raw_json.n, ev->raw_json.n, &ev->raw_doc, &e) == 0)
        ev->has_raw_doc = true;
}

/* Make the record's raw paths readable for the expression: through the lazy reader where it
 * takes the text (building each record's document was 30% of a scan that asks one raw path of
 * every record, on-demand walks cost about half of it: docs/BENCHMARKS.md section 79), else the
 * whole document. A match is given its document (keep_doc) before it leaves eval_record. */
static void read_raw(ch_search *s, ch_event *ev)
{
    if (ev->raw_json.p == NULL)
        return;
    if (s->jl == NULL)
        s->jl = ch_json_lazy_new(RAW_MAX_DOC, RAW_MAX_DEPTH);
    if (s->jl != NULL && ch_json_lazy_load(s->jl, ev->raw_json.p, ev->raw_json.n) == 0) {
        ev->raw_lazy = s->jl;
        return;
    }
    attach_doc(s, ev);
}

/* The matched record's document, for the writer and for on_match's readers of raw_doc. */
static void keep_doc(ch_search *s, ch_event *ev)
{
    if (ev->raw_lazy == NULL)
        return;
    ev->raw_lazy = NULL;
    attach_doc(s, ev);
}

/* Record ord could not be read (e says why, when the reader said): the segment is reported. */
static void record_damaged(ch_search *s, const char *path, uint32_t ord, ch_error *e)
{
    if (e->msg[0] == '\0')
        ch_error_set(e, CH_EPARSE, "record %u does not decode", ord);
    ch__search_damaged(s, path, e->msg);
}

/* Record ord's original part into *o, *on, and the event decoded again with it; false (the
 * segment reported damaged) when it cannot be read. */
static bool fetch_orig(ch_search *s, ch_seg *seg, uint32_t ord, const uint8_t *p, size_t n,
                       const uint8_t **o, size_t *on, const char *path)
{
    ch_error e = {0};
    if (ch__seg_orig(seg, ord, o, on, &e) < 0 || ch__ev_decode_parts(p, n, *o, *on, s->dec) < 0) {
        record_damaged(s, path, ord, &e);
        return false;
    }
    return true;
}

static void flush_scanned(ch_search *s)
{
    if (s->unscanned == 0)
        return;
    atomic_fetch_add_explicit(&R(s)->scanned, s->unscanned, memory_order_relaxed);
    s->unscanned = 0;
}

/* Count a text test's answer r; after TEXT_PROBE answers in a segment, turn the tests off for the
 * rest of it if fewer than one answer in eight ruled a record out (docs/BENCHMARKS.md section
 * 73). A record the text alone left open is asked again with its normalized fields: two answers. */
#define TEXT_PROBE 1024
static int text_answer(ch_search *s, int r)
{
    s->text_ruled_out += r == 0;
    if (++s->text_asked == TEXT_PROBE && s->text_ruled_out * 8 < TEXT_PROBE)
        s->text_off = true;
    return r;
}

static int eval_record(ch_search *s, ch_seg *seg, uint32_t ord, const char *path, bool *bad,
                       ch_error *err)
{
    const uint8_t *p, *o = NULL;
    size_t n, on = 0;
    ch_error e;
    ch_error_clear(&e);
    /* Format 3: the typed part, and the original part only when the expression reads it, and
     * then (typed_first) only once the normalized fields have not ruled the record out. */
    bool split = ch__seg_format(seg) == CH_SEG_FORMAT_SPLIT;
    if (split && s->text_alone && !s->text_off) {
        /* The text first, from the original part alone: most records of a raw path's scan lack
         * its literal, and their normalized fields are then never decoded (a fifth of the
         * scan's time, docs/BENCHMARKS.md section 72). */
        ch_sv t;
        if (ch__seg_orig(seg, ord, &o, &on, &e) < 0) {
            record_damaged(s, path, ord, &e);
            *bad = true;
            return 0;
        }
        if (ch__ev_orig_text(o, on, &t) &&
            text_answer(s, ch_expr_eval_text_alone(s->expr, t.p, t.n, s->scratch)) == 0) {
            s->unscanned++;
            return 0;
        }
    }
    /* Raw paths alone, and every record of the segment in the time range: the original part
     * answers, and a record it rules out has its normalized fields never decoded (inflating and
     * rebuilding them was a sixth of such a scan, docs/BENCHMARKS.md section 77). A match is
     * decoded whole below, its parsed document kept. (The text, where it can rule a record
     * out, was asked above: text_alone is text_first for such an expression.) */
    bool raw_matched = false;
    ch_json_val doc;
    memset(&doc, 0, sizeof doc);
    if (split && s->raw_only && s->seg_inside) {
        if ((o == NULL && ch__seg_orig(seg, ord, &o, &on, &e) < 0) ||
            ch__ev_decode_orig(o, on, s->dec) < 0) {
            record_damaged(s, path, ord, &e);
            *bad = true;
            return 0;
        }
        ch_event *rev = &s->dec->ev;
        read_raw(s, rev);
        if (!ch_expr_eval(s->expr, rev, s->scratch)) {
            s->unscanned++;
            return 0;
        }
        keep_doc(s, rev);
        /* not JSON (columns): nothing parsed to keep, and asked again below */
        raw_matched = rev->has_raw_doc;
        doc = rev->raw_doc;
    }
    bool with_orig = split && s->need_orig && !s->typed_first && o == NULL;
    if (ch__seg_typed(seg, ord, &p, &n, &e) < 0 ||
        (with_orig && ch__seg_orig(seg, ord, &o, &on, &e) < 0) ||
        (split ? ch__ev_decode_parts(p, n, o, on, s->dec) : ch__ev_decode(p, n, s->dec)) < 0) {
        record_damaged(s, path, ord, &e);
        *bad = true;
        return 0;
    }
    ch_event *ev = &s->dec->ev;
    s->unscanned++;
    if (ev->ts_ms < s->o.from_ms || ev->ts_ms > s->o.to_ms)
        return 0;
    if (s->typed_first) {
        if (ch_expr_eval_typed(s->expr, ev, s->scratch) == 0)
            return 0;
        /* with_orig was false: the original part is read now (uses_raw implies need_orig) */
        if (split && !fetch_orig(s, seg, ord, p, n, &o, &on, path)) {
            *bad = true;
            return 0;
        }
    }
    /* Parsing is about a third of a raw path's scan (docs/BENCHMARKS.md section 68): a record
     * whose text lacks the literals the expression needs is not parsed. */
    if (raw_matched) {
        ev->raw_doc = doc; /* the same bytes, parsed above */
        ev->has_raw_doc = true;
    } else {
        if (s->text_first && !s->text_off && ev->raw_json.p != NULL &&
            text_answer(
                s, ch_expr_eval_text(s->expr, ev, ev->raw_json.p, ev->raw_json.n, s->scratch)) == 0)
            return 0;
        if (s->uses_raw)
            read_raw(s, ev);
        if (!ch_expr_eval(s->expr, ev, s->scratch))
            return 0;
        keep_doc(s, ev);
    }
    atomic_fetch_add_explicit(&R(s)->matched, 1, memory_order_relaxed);
    /* A match that leaves the process (kept for the caller, or handed to an on_match that reads
     * more than normalized fields) carries its original record: fetch it now if not yet. */
    bool wants_orig =
        s->o.on_match ? !s->o.match_typed_only : !aggregating(s) && keep_wants(s, ev->ts_ms);
    if (split && o == NULL && wants_orig && !fetch_orig(s, seg, ord, p, n, &o, &on, path)) {
        *bad = true;
        return 0;
    }
    int rc = 0;
    if (s->o.on_match)
        s->o.on_match(s->o.match_ud, ev, s->dec->rid);
    else if (aggregating(s))
        rc = aggregate(s, ev, err);
    else
        rc = keep_add(s, p, n, o, on, ev->ts_ms, s->dec->rid, err);
    if (rc == 0 && s->mem > s->o.max_memory)
        atomic_store(&R(s)->state, CH_SEARCH_MEMORY);
    return rc;
}

/* A count whose expression the indexes answer exactly (ix_count) over a segment wholly inside
 * the time range: each candidate's group is the term of each grouping field whose postings
 * list it (no term: the field is missing or "", grouped under "" as aggregate does), so no
 * block is decompressed. The grouping fields' frames of the segment index are read instead:
 * a few KB against a block (about 100 KB of typed parts, 400 KB of whole records) per match. */
static int count_from_index(ch_search *s, ch_seg *seg, const cset *c, const char *path,
                            bool *fallback, ch_error *err)
{
    uint32_t nrec = ch__seg_meta(seg)->nrec;
    size_t ng = s->ngroupf, need = c->n * ng;
    if (s->capixterm < need) {
        uint32_t *nt = ch_realloc(s->ixterm, need * sizeof *nt);
        if (nt == NULL)
            return ch_error_set(err, CH_ENOMEM, "out of memory");
        s->ixterm = nt;
        s->capixterm = need;
    }
    if (need > 0) /* a histogram alone groups by no field: nothing to fill, maybe no buffer */
        memset(s->ixterm, 0xff, need * sizeof *s->ixterm);
    const ch_seg_term *terms[CH_SEARCH_MAX_GROUP_FIELDS] = {0};
    bool fwd = ch__seg_has_fwd(seg);
    for (size_t g = 0; g < ng && fwd; g++) {
        /* Format 6: each match's term from the field's record -> term column (a chunk per
         * CH_SEG_FWD_RECORDS records), and the dictionary for the terms' text: no posting of
         * the grouping field is read. */
        size_t nt;
        ch_error e = {0};
        int rc = ch__seg_dict(seg, s->gfield[g], &terms[g], &nt, &e);
        for (size_t k = 0; k < c->n && rc == 0; k++) {
            uint32_t j;
            if ((rc = ch__seg_fwd(seg, s->gfield[g], c->v[k], &j, &e)) == 0 && j != UINT32_MAX &&
                j >= nt)
                rc = ch_error_set(&e, CH_EPARSE, "index field %s: term %u past the dictionary",
                                  s->gnames[g], j);
            if (rc == 0)
                s->ixterm[k * ng + g] = j;
        }
        if (rc == CH_ENOMEM)
            return ch_error_set(err, rc, "%s", e.msg);
        if (rc < 0) {
            index_damaged(s, path, e.msg);
            *fallback = true;
            return 0;
        }
    }
    for (size_t g = 0; g < ng && !fwd; g++) {
        size_t nt, found = 0;
        ch_error e = {0};
        int rc = ch__seg_terms(seg, s->gfield[g], &terms[g], &nt, &e);
        if (rc == CH_ENOMEM)
            return ch_error_set(err, rc, "%s", e.msg);
        /* Each term's postings (sorted ordinals) merged with the sorted candidates, decoded only
         * up to the last candidate, and no further term once every candidate has its term: a
         * thin value's few matches stop the walk early. */
        for (size_t j = 0; j < nt && rc == 0 && found < c->n; j++) {
            const ch_seg_term *t = &terms[g][j];
            const uint8_t *p = t->post, *end = t->post + t->postlen;
            uint64_t cur = 0, want = c->n ? c->v[0] : UINT64_MAX; /* the next candidate */
            size_t k = 0;
            for (uint32_t q = 0; q < t->npost; q++) {
                /* Most deltas of a frequent term fit one byte, and most postings lie before
                 * the next candidate: both tested first (a thin value's count decodes every
                 * grouping term's postings up to its last match: 5.8M at 10M events). */
                uint64_t d = 0;
                bool ok = true;
                if (p < end && *p < 0x80)
                    d = *p++;
                else
                    ok = ch_leb_get(&p, end, &d);
                if (!ok || (cur += d) >= nrec || (q > 0 && d == 0)) {
                    rc = ch_error_set(&e, CH_EPARSE, "index field %s: damaged postings",
                                      s->gnames[g]);
                    break;
                }
                if (cur < want)
                    continue;
                while (k < c->n && c->v[k] < cur)
                    k++;
                if (k == c->n)
                    break; /* past the last candidate */
                if (c->v[k] == cur) {
                    found += s->ixterm[k * ng + g] == UINT32_MAX;
                    s->ixterm[k * ng + g] = (uint32_t)j;
                    if (k + 1 == c->n)
                        break; /* the last candidate: no later posting can match */
                    want = c->v[k + 1];
                } else {
                    want = c->v[k];
                }
            }
        }
        if (rc < 0) {
            /* nothing counted yet: the caller evaluates the candidates instead */
            index_damaged(s, path, e.msg);
            *fallback = true;
            return 0;
        }
    }
    if (s->o.histogram_ms > 0) {
        /* The caller saw the whole segment in one bucket. */
        int rc = hist_add(s, ch__seg_meta(seg)->min_ts, c->n, err);
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; i < c->n && ng > 0; i++) {
        char key[4096];
        size_t kn = 0;
        for (size_t g = 0; g < ng; g++) {
            uint32_t j = s->ixterm[i * ng + g];
            ch_sv t = j == UINT32_MAX ? (ch_sv){"", 0} : terms[g][j].term;
            if (g)
                key[kn++] = '\x1f';
            size_t cn = t.n < sizeof key - kn - 8 ? t.n : sizeof key - kn - 8;
            memcpy(key + kn, t.p, cn);
            kn += cn;
        }
        int rc = group_add(s, key, kn, 1, err);
        if (rc < 0)
            return rc;
    }
    atomic_fetch_add_explicit(&R(s)->matched, c->n, memory_order_relaxed);
    if (s->mem > s->o.max_memory)
        atomic_store(&R(s)->state, CH_SEARCH_MEMORY);
    return 0;
}

int ch__search_segment(ch_search *s, ch_seg *seg, const char *path, ch_error *err)
{
    const ch_seg_meta *m = ch__seg_meta(seg);
    if (s->dctx == NULL)
        s->dctx = ZSTD_createDCtx();
    if (s->dctx != NULL)
        ch__seg_use_dctx(seg, s->dctx);
    if (m->nrec == 0 || m->max_ts < s->o.from_ms || m->min_ts > s->o.to_ms) {
        atomic_fetch_add(&R(s)->seg_skipped, 1);
        atomic_fetch_add(&R(s)->seg_done, 1);
        if (s->o.explain)
            ch_buf_printf(&s->explain, "%s: skipped: outside the time range\n", path);
        return 0;
    }
    cset c = {.all = true};
    if (!s->o.no_index) {
        ch_error e = {0};
        tsrc src = {seg, NULL};
        int rc = plan_node(s, &src, ch_expr_root(s->expr), &c, &e);
        if (rc == CH_ENOMEM)
            return ch_error_set(err, rc, "%s", e.msg);
        if (rc < 0) {
            /* A damaged index costs the segment its lookup, not its answer: the records are
             * evaluated instead (format 5 checks each field's frame alone, so a damaged frame
             * is found only when a search reads it; the blocks have their own checksums). */
            index_damaged(s, path, e.msg);
            c = (cset){.all = true};
        }
    }
    if (!c.all && c.n == 0) {
        cset_free(&c); /* an intersection that came out empty still holds its array */
        atomic_fetch_add(&R(s)->seg_skipped, 1);
        atomic_fetch_add(&R(s)->seg_done, 1);
        if (s->o.explain)
            ch_buf_printf(&s->explain, "%s: skipped: the indexes rule out all %u events\n", path,
                          m->nrec);
        return 0;
    }
    uint64_t b0 = ch__seg_blocks_read(seg), o0 = ch__seg_orig_blocks_read(seg);
    bool bad = false;
    int rc = 0;
    if (s->ix_count && !c.all && m->min_ts >= s->o.from_ms && m->max_ts <= s->o.to_ms &&
        (s->o.histogram_ms <= 0 || bucket_of(s, m->min_ts) == bucket_of(s, m->max_ts))) {
        bool fallback = false;
        rc = count_from_index(s, seg, &c, path, &fallback, err);
        if (!fallback) {
            if (s->o.explain)
                ch_buf_printf(&s->explain,
                              "%s: index: %zu of %u events counted from the index alone, 0 of "
                              "%u blocks read\n",
                              path, c.n, m->nrec, m->nblocks);
            cset_free(&c);
            atomic_fetch_add(&R(s)->seg_done, 1);
            return rc;
        }
    }
    size_t n = c.all ? m->nrec : c.n, evaluated = n;
    s->seg_inside = m->min_ts >= s->o.from_ms && m->max_ts <= s->o.to_ms;
    s->text_asked = s->text_ruled_out = 0;
    s->text_off = false;
    for (size_t i = 0; i < n && rc == 0 && !bad; i++) {
        if ((i & 4095) == 4095 && stop_state(s))
            break;
        /* Another thread may have kept `limit` matches, all newer than this segment, since it
         * was handed out (its hour could not tell): the rest of it cannot enter either. */
        if ((i & 255) == 255) {
            flush_scanned(s);
            if (s->root != NULL && bound_excludes(s, m->min_ts, m->max_ts)) {
                evaluated = i;
                break;
            }
        }
        rc = eval_record(s, seg, c.all ? (uint32_t)i : c.v[i], path, &bad, err);
    }
    flush_scanned(s);
    if (s->o.explain && !bad) {
        ch_buf_printf(
            &s->explain, "%s: %s: %zu of %u events evaluated, %llu of %u blocks read", path,
            c.all ? (s->o.no_index ? "scan (index off)" : "scan (no indexed test narrows it)")
                  : "index",
            evaluated, m->nrec, (unsigned long long)(ch__seg_blocks_read(seg) - b0), m->nblocks);
        if (ch__seg_format(seg) == CH_SEG_FORMAT_SPLIT)
            ch_buf_printf(&s->explain, " (original records: %llu blocks)",
                          (unsigned long long)(ch__seg_orig_blocks_read(seg) - o0));
        if (evaluated < n)
            ch_buf_adds(&s->explain,
                        "; stopped: the matches kept meanwhile rule out the rest of it");
        ch_buf_addc(&s->explain, '\n');
    }
    cset_free(&c);
    if (!bad)
        atomic_fetch_add(&R(s)->seg_done, 1);
    return rc;
}

/* ---- shards: segments read on several threads ---- */

unsigned ch__search_threads(const ch_search *s)
{
    if (s->o.on_match != NULL)
        return 1; /* the callback is the caller's, and not made for two threads */
    if (s->o.threads > 0)
        return s->o.threads;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > CH_SEARCH_MAX_THREADS ? CH_SEARCH_MAX_THREADS : (unsigned)n;
}

int ch__search_shard_new(ch_search *s, unsigned nshards, ch_search **out, ch_error *err)
{
    ch_search_opts o = s->o;
    o.expr = s->expr_src;
    o.count_by = s->count_by_src;
    o.top = s->top_src;
    /* The memory bound is the search's: each shard gets its part. */
    o.max_memory = s->o.max_memory / (nshards ? nshards : 1);
    if (o.max_memory == 0)
        o.max_memory = 1;
    /* Its own compiled expression: the regex memo and the field caches are per expression and
     * scratch, and nothing of the root's is touched while the shard runs. */
    int rc = ch_search_new(&o, out, err);
    if (rc < 0)
        return rc;
    (*out)->root = s;
    atomic_store(&(*out)->t0_ns, atomic_load(&s->t0_ns));
    return 0;
}

void ch__search_shard_begin(ch_search *w, size_t pos)
{
    /* Kept matches sort by time and record identity, then by this (a record stored twice): the
     * segment's place in the reading order, then arrival within it, which is the order one
     * thread would have kept them in. */
    w->seq = (uint64_t)pos << 32;
}

int ch__search_shard_give(ch_search *s, ch_search *w, ch_error *err)
{
    if (w->nkeep == 0)
        return 0;
    if (s->nkeep + w->nkeep > s->capkeep) {
        size_t nc = s->capkeep * 2 > s->nkeep + w->nkeep ? s->capkeep * 2 : s->nkeep + w->nkeep;
        kept *nk = ch_realloc(s->keep, nc * sizeof *nk);
        if (nk == NULL)
            return ch_error_set(err, CH_ENOMEM, "out of memory");
        s->keep = nk;
        s->capkeep = nc;
    }
    for (size_t i = 0; i < w->nkeep; i++) {
        s->keep[s->nkeep++] = w->keep[i];
        s->mem += w->keep[i].n + sizeof(kept);
        w->mem -= w->keep[i].n + sizeof(kept);
    }
    w->nkeep = 0; /* the records are the root's now */
    /* Cut to the limit as soon as there are enough, as one thread does at a segment's end: the
     * limit-th time becomes every shard's bound (keep_sort_trim publishes it). */
    if (s->nkeep >= s->o.limit && (!s->trimmed || s->nkeep > s->o.limit))
        keep_sort_trim(s);
    if (s->mem > s->o.max_memory)
        atomic_store(&s->state, CH_SEARCH_MEMORY);
    return 0;
}

int ch__search_shard_merge(ch_search *s, ch_search *w, ch_error *err)
{
    int rc = ch__search_shard_give(s, w, err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < w->gcap && rc == 0; i++)
        if (w->groups[i].key)
            rc = group_add(s, w->groups[i].key, strlen(w->groups[i].key), w->groups[i].count, err);
    for (size_t i = 0; i < w->nb && rc == 0; i++)
        rc = hist_add(s, w->bstart[i], w->bcount[i], err);
    if (rc == 0 && s->mem > s->o.max_memory)
        atomic_store(&s->state, CH_SEARCH_MEMORY);
    return rc;
}

void ch__search_text_init(ch_search_text *t)
{
    ch_buf_init(&t->explain, (size_t)64 << 20);
    ch_buf_init(&t->damaged, (size_t)16 << 20);
}

void ch__search_text_swap(ch_search *s, ch_search_text *t)
{
    ch_buf e = s->explain, d = s->damaged;
    s->explain = t->explain;
    s->damaged = t->damaged;
    t->explain = e;
    t->damaged = d;
}

void ch__search_text_take(ch_search *s, ch_search_text *t)
{
    /* Past the buffers' bounds the text is cut, as one thread's would be. */
    if (t->explain.len)
        (void)ch_buf_add(&s->explain, t->explain.data, t->explain.len);
    if (t->damaged.len)
        (void)ch_buf_add(&s->damaged, t->damaged.data, t->damaged.len);
    ch_buf_free(&t->explain);
    ch_buf_free(&t->damaged);
}

/* ---- running and results ---- */

static void explain_plan(ch_search *s, const ch_expr_node *n)
{
    ch_expr_node_kind k = ch_expr_node_type(n);
    if (k == CH_EXPR_NOT) {
        ch_buf_printf(&s->explain,
                      "plan: 'not' at column %zu: tests under it are evaluated, "
                      "not looked up\n",
                      ch_expr_node_offset(n));
        return;
    }
    if (k != CH_EXPR_PRED) {
        for (size_t i = 0; i < ch_expr_node_nkids(n); i++)
            explain_plan(s, ch_expr_node_kid(n, i));
        return;
    }
    const char *f = ch_expr_pred_index_field(n);
    if (f && ch__ix_field(f) >= 0)
        ch_buf_printf(&s->explain, "plan: test at column %zu on %s: index lookup\n",
                      ch_expr_node_offset(n), f);
    else
        ch_buf_printf(&s->explain, "plan: test at column %zu: evaluated per event (%s)\n",
                      ch_expr_node_offset(n),
                      f ? "field not indexed" : "negated, exists, or dataset test");
}

static int group_cmp(const void *a, const void *b)
{
    const group *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return strcmp(x->key, y->key);
}

int ch_search_run(ch_search *s, ch_evstore *store, ch_error *err)
{
    atomic_store(&s->t0_ns, mono_ns());
    atomic_store(&s->state, CH_SEARCH_RUNNING);
    if (s->o.explain) {
        ch_buf_printf(&s->explain, "expression: %s\n", s->expr_src);
        explain_plan(s, ch_expr_root(s->expr));
        if (s->uses_raw)
            ch_buf_adds(&s->explain, "plan: a raw path is read: matching records' JSON is "
                                     "parsed\n");
    }
    int rc = store->ops->search(store->impl, s, err);
    keep_sort_trim(s);
    if (s->gcount) {
        s->gsorted = ch_malloc(s->gcount * sizeof *s->gsorted);
        if (s->gsorted == NULL && rc == 0)
            rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        size_t k = 0;
        for (size_t i = 0; i < s->gcap && s->gsorted; i++)
            if (s->groups[i].key)
                s->gsorted[k++] = s->groups[i];
        if (s->gsorted)
            qsort(s->gsorted, s->gcount, sizeof *s->gsorted, group_cmp);
    }
    int st = atomic_load(&s->state);
    if (rc < 0)
        atomic_store(&s->state, CH_SEARCH_FAILED);
    else if (st == CH_SEARCH_RUNNING)
        atomic_store(&s->state, CH_SEARCH_DONE);
    return rc;
}

size_t ch_search_nresults(const ch_search *s) { return s->nkeep; }

int ch_search_result(ch_search *s, size_t i, const ch_event **ev, uint64_t *rid, ch_error *err)
{
    if (i >= s->nkeep)
        return ch_error_set(err, CH_EUSAGE, "result %zu of %zu", i, s->nkeep);
    if (ch__ev_decode(s->keep[i].rec, s->keep[i].n, s->out) < 0)
        return ch_error_set(err, CH_EPARSE, "result %zu does not decode", i);
    /* The writer needs the document when a source key collides with an ECS root. */
    if (!s->out->ev.raw_no_ecs_root || s->uses_raw)
        attach_doc(s, &s->out->ev);
    *ev = &s->out->ev;
    if (rid)
        *rid = s->out->rid;
    return 0;
}

size_t ch_search_ngroups(const ch_search *s)
{
    if (s->top_src && s->gcount > s->o.limit)
        return s->o.limit;
    return s->gcount;
}

void ch_search_group(const ch_search *s, size_t i, const char **key, uint64_t *count)
{
    *key = s->gsorted[i].key;
    *count = s->gsorted[i].count;
}

size_t ch_search_group_fields(const ch_search *s, const char *const **names)
{
    *names = s->gnames_c;
    return s->ngroupf;
}

size_t ch_search_nbuckets(const ch_search *s) { return s->nb; }

void ch_search_bucket(const ch_search *s, size_t i, int64_t *start_ms, uint64_t *count)
{
    *start_ms = s->bstart[i];
    *count = s->bcount[i];
}

const char *ch_search_explain(const ch_search *s) { return s->explain.data ? s->explain.data : ""; }
const char *ch_search_damaged(const ch_search *s) { return s->damaged.data ? s->damaged.data : ""; }

int ch_search_parse_time(const char *str, int64_t now_ms, int64_t *out, ch_error *err)
{
    size_t n = strlen(str);
    int64_t v;
    if (n == 0)
        return ch_error_set(err, CH_EPARSE, "empty time");
    if (ch_time_parse_iso8601(str, n, &v)) {
        *out = v;
        return 0;
    }
    if (n == 10 && str[4] == '-' && str[7] == '-') {
        char full[32];
        snprintf(full, sizeof full, "%sT00:00:00Z", str);
        if (ch_time_parse_iso8601(full, strlen(full), &v)) {
            *out = v;
            return 0;
        }
    }
    char *end = NULL;
    long long ms = strtoll(str, &end, 10);
    if (end != str && *end == '\0') {
        *out = ms;
        return 0;
    }
    const char *d = str[0] == '-' ? str + 1 : str;
    if (ch_duration_parse(d, strlen(d), &v) && v >= 0) {
        *out = now_ms - v;
        return 0;
    }
    return ch_error_set(err, CH_EPARSE,
                        "'%s' is not a time (2026-01-05T10:00:00Z, 2026-01-05, 7d for 7 days ago, "
                        "or ms since the epoch)",
                        str);
}
