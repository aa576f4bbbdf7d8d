/*
 * merge.c - k-way merge of per-file event streams by event time, with a cap on open streams.
 *
 * Start-up opens each input once to read its first event time (with a scratch diag, so that
 * nothing is counted twice), unless all inputs fit under the cap, in which case they are simply
 * kept open. The entries are then sorted by that time; the heap holds the open streams keyed by
 * their pending event's time. Before each pop, every not-yet-opened input whose first time is
 * at or before the heap's minimum is opened (cap permitting). Cost: O(log k) per event, and
 * one extra open of each input when inputs outnumber the cap.
 */
#include "parse/merge.h"

#include <stdlib.h>
#include <string.h>

#include "core/heap.h"
#include "core/mem.h"

#define DETECT_BYTES (64 * 1024)
#define PEEK_WINDOW (256 * 1024)

typedef struct entry {
    char *path;
    int64_t first_ts;
    bool has_first, done, open, late;
    ch_input *in;
    const ch_source_type *type;
    ch_stream *st;
    ch_event ev; /* pending event while open */
} entry;

struct ch_merge {
    ch_diag *diag;
    const ch_source_type *forced;
    size_t max_open;
    entry *e;
    size_t n, cap;
    ch_heap_elem *heap; /* open entries, min-heap on ev.ts_ms, FIFO on ties by index */
    size_t nheap;
    size_t *order; /* unopened entries sorted by first_ts */
    size_t norder, next_order;
    size_t nopen;
    entry *last; /* entry whose event was handed out last; advanced on the next call */
    int64_t last_ts;
    bool started, any_yielded;
    ch_merge_stats stats;
};

int ch_source_open_input(ch_input *in, const char *path, const ch_source_type *forced,
                         ch_diag *diag, bool report, const ch_source_type **typep, ch_stream **stp)
{
    ch_error err = {0};
    const ch_source_type *type = forced;
    *stp = NULL;
    *typep = NULL;
    long head = ch_input_fill(in, DETECT_BYTES, &err);
    size_t hn = 0;
    const char *hp = ch_input_data(in, &hn);
    if (head == 0 && hn == 0) {
        if (report)
            ch_diag_report(diag, type ? type->dataset : CH_DS_UNKNOWN, path, 0, UINT64_MAX,
                           "empty_file", "the file is empty");
        return 0;
    }
    if (head < 0 && hn == 0) {
        if (report)
            ch_diag_report(diag, CH_DS_UNKNOWN, path, 0, 0,
                           ch_input_is_gzip(in) ? "gzip_error" : "read_error", "%s", err.msg);
        return 0;
    }
    if (type == NULL)
        type = ch_source_detect(hp, hn);
    if (type == NULL) {
        if (report)
            ch_diag_report(diag, CH_DS_UNKNOWN, path, 0, UINT64_MAX, "unrecognized_format",
                           "not a CloudTrail, VPC Flow Logs or Route 53 Resolver log "
                           "(use --type to force one)");
        return 0;
    }
    ch_stream *st = type->open(in, diag, &err);
    if (st == NULL) {
        if (report)
            ch_diag_report(diag, type->dataset, path, 0, UINT64_MAX, "open_failed", "%s", err.msg);
        return 0;
    }
    diag->by_ds[type->dataset].files++;
    *typep = type;
    *stp = st;
    return 1;
}

int ch_source_open_path(const char *path, const ch_source_type *forced, ch_diag *diag, bool report,
                        size_t max_window, ch_input **inp, const ch_source_type **typep,
                        ch_stream **stp)
{
    ch_error err = {0};
    ch_input *in = NULL;
    *inp = NULL;
    *stp = NULL;
    *typep = NULL;
    if (ch_input_open(&in, path, max_window, &err) < 0) {
        if (report) {
            ch_diag_report(diag, CH_DS_UNKNOWN, path, 0, UINT64_MAX, "unreadable", "%s", err.msg);
            diag->unreadable_inputs++;
        }
        return 0;
    }
    if (!ch_source_open_input(in, path, forced, diag, report, typep, stp)) {
        ch_input_close(in);
        return 0;
    }
    *inp = in;
    return 1;
}

ch_merge *ch_merge_new(ch_diag *diag, const ch_source_type *forced, size_t max_open)
{
    ch_merge *m = ch_calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->diag = diag;
    m->forced = forced;
    m->max_open = max_open ? max_open : 64;
    return m;
}

static void close_entry(ch_merge *m, entry *e)
{
    if (!e->open || e->type == NULL)
        return;
    m->diag->by_ds[e->type->dataset].bytes += ch_input_bytes(e->in);
    e->type->close(e->st);
    ch_input_close(e->in);
    e->st = NULL;
    e->in = NULL;
    e->open = false;
    m->nopen--;
}

void ch_merge_free(ch_merge *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n; i++) {
        close_entry(m, &m->e[i]);
        ch_free(m->e[i].path);
    }
    ch_free(m->e);
    ch_free(m->heap);
    ch_free(m->order);
    ch_free(m);
}

int ch_merge_add(ch_merge *m, const char *path)
{
    if (m->n == m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 64;
        entry *ne = ch_realloc(m->e, nc * sizeof *ne);
        if (ne == NULL)
            return CH_ENOMEM;
        m->e = ne;
        m->cap = nc;
    }
    entry *e = &m->e[m->n];
    memset(e, 0, sizeof *e);
    e->path = ch_strdup(path);
    if (e->path == NULL)
        return CH_ENOMEM;
    m->n++;
    m->stats.files++;
    return 0;
}

/* An entry's event time does not change while it is in the heap (it is pushed after its
 * stream's next() and popped before the next one), so the heap may keep it as the key. Ties go
 * by input order, so equal times stay stable. */
static void heap_push(ch_merge *m, entry *e)
{
    ch_heap_push(m->heap, &m->nheap, (ch_heap_elem){e->ev.ts_ms, (uint64_t)(e - m->e), e});
}

static entry *heap_pop(ch_merge *m) { return ch_heap_pop(m->heap, &m->nheap).item; }

/* Open e for real and read its first event; pushes it on the heap when it has one. */
static void open_and_push(ch_merge *m, entry *e, bool report)
{
    if (!ch_source_open_path(e->path, m->forced, m->diag, report, CH_INPUT_DEFAULT_MAX_WINDOW,
                             &e->in, &e->type, &e->st)) {
        e->done = true;
        return;
    }
    e->open = true;
    m->nopen++;
    m->stats.opened++;
    if (m->nopen > m->stats.max_open_seen)
        m->stats.max_open_seen = m->nopen;
    if (e->type->next(e->st, &e->ev) == 1) {
        heap_push(m, e);
    } else {
        close_entry(m, e);
        e->done = true;
    }
}

static int cmp_first(const void *a, const void *b, void *ud)
{
    const ch_merge *m = ud;
    const entry *x = &m->e[*(const size_t *)a], *y = &m->e[*(const size_t *)b];
    if (x->first_ts != y->first_ts)
        return x->first_ts < y->first_ts ? -1 : 1;
    return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

int ch_merge_start(ch_merge *m)
{
    m->heap = ch_calloc(m->n ? m->n : 1, sizeof *m->heap);
    m->order = ch_calloc(m->n ? m->n : 1, sizeof *m->order);
    if (m->heap == NULL || m->order == NULL)
        return CH_ENOMEM;
    m->started = true;
    bool keep_all = m->n <= m->max_open;
    for (size_t i = 0; i < m->n; i++) {
        entry *e = &m->e[i];
        if (keep_all || strcmp(e->path, "-") == 0) {
            /* stdin cannot be read twice: it stays open from the start. */
            open_and_push(m, e, true);
            continue;
        }
        /* Peek with a scratch diag: the real pass reports and counts. */
        ch_diag scratch;
        ch_diag_init(&scratch, NULL);
        ch_input *in;
        const ch_source_type *type;
        ch_stream *st;
        /* A small window: the peek needs the first record, not the first MiB (inflating a
         * whole S3 object twice doubled the cost of gzip'd inputs). */
        if (!ch_source_open_path(e->path, m->forced, &scratch, false, PEEK_WINDOW, &in, &type,
                                 &st)) {
            /* Report whole-input problems now, once, through the real diag. */
            ch_source_open_path(e->path, m->forced, m->diag, true, CH_INPUT_DEFAULT_MAX_WINDOW, &in,
                                &type, &st);
            if (st != NULL) { /* it opened this time: a race with the file system */
                type->close(st);
                ch_input_close(in);
            }
            e->done = true;
            continue;
        }
        ch_event ev;
        if (type->next(st, &ev) == 1) {
            e->first_ts = ev.ts_ms;
            e->has_first = true;
            m->order[m->norder++] = i;
        } else {
            /* No first event in the peek (empty, or a first record larger than the peek's
             * window): open it first, so that nothing in it can be late. */
            e->first_ts = INT64_MIN;
            m->order[m->norder++] = i; /* opened for real, so its errors are counted */
        }
        type->close(st);
        ch_input_close(in);
    }
    qsort_r(m->order, m->norder, sizeof *m->order, cmp_first, m);
    return 0;
}

int ch_merge_next(ch_merge *m, ch_event **ev, const char **path)
{
    if (!m->started && ch_merge_start(m) < 0)
        return CH_ENOMEM;
    if (m->last != NULL) {
        entry *e = m->last;
        m->last = NULL;
        if (e->type->next(e->st, &e->ev) == 1) {
            heap_push(m, e);
        } else {
            close_entry(m, e);
            e->done = true;
        }
    }
    /* Open every pending input whose first event is due, as far as the cap allows. */
    while (m->next_order < m->norder) {
        entry *e = &m->e[m->order[m->next_order]];
        bool due = m->nheap == 0 || e->first_ts <= m->heap[0].key;
        if (!due)
            break;
        if (m->nopen >= m->max_open) {
            if (m->nheap == 0)
                break; /* cannot happen: nothing open means nopen == 0 */
            if (!e->late)
                m->stats.late_opens++;
            e->late = true;
            break;
        }
        m->next_order++;
        open_and_push(m, e, true);
    }
    if (m->nheap == 0)
        return 0;
    entry *e = heap_pop(m);
    if (m->any_yielded && e->ev.ts_ms < m->last_ts)
        m->stats.out_of_order++;
    m->any_yielded = true;
    m->last_ts = e->ev.ts_ms;
    m->last = e;
    *ev = &e->ev;
    if (path != NULL)
        *path = e->path;
    return 1;
}

void ch_merge_stats_get(const ch_merge *m, ch_merge_stats *out) { *out = m->stats; }
