/*
 * prefetch.c - the worker pool and the per-stream rings of ingest/prefetch.h.
 *
 * A ring is a circle of batches of up to BATCH events. A worker fills a whole batch (reading,
 * parsing, normalizing and copying each event into memory the batch owns) before it publishes
 * it; the consumer takes a whole batch at once and hands its events out one by one without any
 * synchronisation. One mutex guards every ring's indexes and flags (head, tail, busy, eof): a
 * worker takes it once per claim and once per batch it publishes, the consumer once per batch.
 * Slots [head, tail) belong to the consumer (the one at head while it hands events out of it),
 * the one a worker fills belongs to that worker until it moves tail. Wake-ups are fewer than
 * batches: a worker is signalled when a ring falls to `low` ready batches, the consumer only
 * when it waits for an empty ring (`wanted`), and then once the ring holds WAKE batches again
 * (or its end); only a stream's first batch is published at once, however few events it holds,
 * so that a merge opening a file does not wait for 32 of them. A worker claims the stream the
 * consumer waits for first, else the one with the fewest batches ready, so that the merge
 * rarely waits.
 *
 * Measured (docs/BENCHMARKS.md section 26): handing events over one at a time, with a lock
 * round trip and often a futex wake-up per event, cost more CPU than the parse it moved; per
 * batch, the hand-off is a few instructions per event. A worker's stream writes each event
 * straight into its slot, and the slot copies the parsed document and what the event borrows
 * (the record's text in the input window, the few names a stream rewrote into its own
 * buffers). Section 63 handed the document over instead, saving the copy's tenth of the
 * worker's instructions; section 68 measured that slower (the parse wrote into a document last
 * read on the merge thread's core) and went back to the copy.
 * Section 43: a consumer faster than its worker waited at every batch, and the worker, which
 * then published every event on its own, made a hand-off with a wake-up and two context
 * switches per event (22,000 waits of the merge thread in a 300k-record run): hence WAKE.
 *
 * A stream may be opened by the worker too (ch_prefetch_start_open): the first fill runs the
 * caller's opener before reading, its reports captured into that first batch.
 *
 * Memory: per open stream, `depth` batches (RING_BATCHES, or more for a chunk of a large file:
 * ch_prefetch_set_depth), each with its events, their document copies and one arena for their
 * strings: about a MiB per open input for CloudTrail records.
 */
#include "ingest/prefetch.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/json.h"
#include "core/mem.h"

#define BATCH 32       /* events per batch: one publication, one take */
#define RING_BATCHES 8 /* batches read ahead per stream by default */
/* A consumer waiting for a ring is woken when it holds this many batches (or fewer for a ring
 * of fewer than twice as many): a chunk's deep ring would otherwise keep it waiting for half a
 * chunk. */
#define WAKE 4
/* The batch arena's chunk: 32 CloudTrail records' text and copied strings fit in one. */
#define ARENA_CHUNK (96u << 10)

/* Every string view of ch_event is rebased below: a field added to the event must be added
 * there too, or a slot would hand out a view into a buffer the stream has reused. */
_Static_assert(sizeof(ch_event) == 1088, "ch_event changed: update copy_event in prefetch.c");

typedef struct pf_item {
    int rc;
    ch_event ev;
    ch_json_doc *doc;
    size_t msg_end; /* end of the reports its next() made, in the batch's msgs */
} pf_item;

typedef struct pf_batch {
    unsigned n;     /* items filled; the last one may be the end (rc != 1) */
    ch_arena arena; /* the items' copied strings */
    ch_buf msgs;    /* reports captured while the items were read, in order */
    pf_item item[BATCH];
} pf_batch;

/* A captured report in msgs: this header, then file, reason and msg, each with its NUL. */
typedef struct pf_msg {
    uint64_t line, offset;
    int32_t ds;
    uint32_t file_len, reason_len, msg_len;
} pf_msg;

struct ch_prefetch {
    ch_prefetch_pool *pool;
    ch_diag diag; /* the stream's: capturing */
    ch_diag *target;
    const ch_source_type *type;
    ch_stream *st;
    ch_prefetch_opener opener; /* ch_prefetch_start_open: run by the first fill, then NULL */
    void *opener_ud;
    ch_buf *cur_msgs; /* where captured reports go now (the worker's batch, or open_msgs) */
    ch_buf open_msgs;
    pf_batch *ring;
    unsigned depth, low; /* batches in the ring; refill at this few ready */
    unsigned wake;       /* wake a waiting consumer at this many ready (low, at most WAKE) */
    uint64_t line_base;  /* added to the line of every report replayed (chunks of a file) */
    /* The consumer's: the batch it hands events out of, the next item and report. */
    pf_batch *cur;
    unsigned at;
    size_t msg_at;
    atomic_bool wanted; /* the consumer waits for this ring (set and cleared under mu) */
    /* Under pool->mu. */
    uint64_t head, tail;
    bool started, busy, eof, active;
    ch_prefetch *prev, *next; /* in pool->active while started, not at its end, not closed */
};

struct ch_prefetch_pool {
    pthread_mutex_t mu;
    pthread_cond_t work;  /* workers: a stream may need reading */
    pthread_cond_t ready; /* the consumer: its stream got a batch, or a worker let one go */
    ch_prefetch *active;
    ch_prefetch *waiting; /* the stream the consumer waits for, or NULL */
    bool stop;
    unsigned nthreads;
    pthread_t *threads;
    ch_prefetch_prep prep; /* zeroed: no per-event work */
};

unsigned ch_prefetch_cpus(void)
{
    /* The CPUs this process may run on, as nproc(1) counts them: under `taskset -c 0` two
     * threads would only take turns. */
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return (unsigned)CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1u : (unsigned)n;
}

/* ---- the event copy ---------------------------------------------------------------------------
 */

typedef struct copier {
    ch_arena *a;
    ch_json_strings js;
    bool oom;
} copier;

/* A view into the copied document's strings moves with it; any other is copied (with a NUL
 * after it, for producers that promise one). Empty views keep their pointer. */
static inline void rebase(copier *c, ch_sv *sv, size_t pad)
{
    if (sv->n == 0 || sv->p == NULL)
        return;
    if (c->js.len > 0 && sv->p >= c->js.from && sv->p + sv->n <= c->js.from + c->js.len) {
        sv->p = c->js.to + (sv->p - c->js.from);
        return;
    }
    char *d = ch_arena_alloc(c->a, (size_t)sv->n + 1 + pad);
    if (d == NULL) {
        c->oom = true;
        sv->n = 0;
        return;
    }
    memcpy(d, sv->p, sv->n);
    memset(d + sv->n, 0, 1 + pad);
    sv->p = d;
}

/* Make the event next() just wrote into slot s the slot's own by copying what it borrows, in
 * place: its document into the slot's (ch_json_doc_copy) and every view outside that document
 * into the batch's arena. Section 63 of docs/BENCHMARKS.md handed the parsed document over
 * instead (the parser took the slot's previous one for its next parse): fewer instructions, but
 * the parse then wrote into a document the merge thread had last read on its core, and on a
 * guest whose two vCPUs share no cache that cost more than the copy (section 68: 1.29 s against
 * 1.36 s for 300k records, both threads' CPU lower). */
static int copy_event(pf_item *s, ch_arena *arena)
{
    ch_event *e = &s->ev;
    /* What a worker prepares comes after this, in the batch's arena already. */
    memset(&e->prep, 0, sizeof e->prep);
    copier c = {.a = arena};
    e->raw_lazy = NULL; /* a parser's events never carry one: it belongs to a search */
    if (e->has_raw_doc) {
        if (s->doc == NULL && (s->doc = ch_json_doc_new()) == NULL)
            return CH_ENOMEM;
        if (ch_json_doc_copy(s->doc, e->raw_doc, &e->raw_doc, &c.js) < 0)
            return CH_ENOMEM;
    }
    ch_sv *svs[] = {
        &e->id,
        &e->action,
        &e->category,
        &e->type,
        &e->provider,
        &e->user_name,
        &e->user_id,
        &e->user_type,
        &e->session_name,
        &e->access_key,
        &e->invoked_by,
        &e->account_id,
        &e->region,
        &e->instance_id,
        &e->interface_id,
        &e->user_agent,
        &e->error_code,
        &e->src_address,
        &e->transport,
        &e->dns_qname,
        &e->dns_qtype,
        &e->dns_rcode,
        &e->src_geo.as_org,
        &e->src_geo.city,
        &e->src_geo.country_name,
        &e->dst_geo.as_org,
        &e->dst_geo.city,
        &e->dst_geo.country_name,
        &e->threat.atomic,
    };
    for (size_t i = 0; i < sizeof svs / sizeof *svs; i++)
        rebase(&c, svs[i], 0);
    for (uint8_t i = 0; i < e->dns_nanswers && i < CH_EVENT_MAX_ANSWERS; i++)
        rebase(&c, &e->dns_answers[i], 0);
    /* raw_json keeps the parse padding a record in the input window has. */
    rebase(&c, &e->raw_json, CH_JSON_PADDING);
    if (e->raw_count > 0) {
        ch_sv *names = ch_arena_alloc(arena, 2 * (size_t)e->raw_count * sizeof *names);
        if (names == NULL)
            return CH_ENOMEM;
        ch_sv *values = names + e->raw_count;
        memcpy(names, e->raw_names, e->raw_count * sizeof *names);
        memcpy(values, e->raw_values, e->raw_count * sizeof *values);
        for (uint32_t i = 0; i < e->raw_count; i++) {
            rebase(&c, &names[i], 0);
            rebase(&c, &values[i], 0);
        }
        e->raw_names = names;
        e->raw_values = values;
    }
    return c.oom ? CH_ENOMEM : 0;
}

/* ---- captured reports -------------------------------------------------------------------------
 */

static void capture(void *ud, ch_dataset ds, const char *file, uint64_t line, uint64_t offset,
                    const char *reason, const char *msg)
{
    ch_prefetch *pf = ud;
    const char *f = file ? file : "";
    pf_msg h = {line,
                offset,
                (int32_t)ds,
                (uint32_t)strlen(f),
                (uint32_t)strlen(reason),
                (uint32_t)strlen(msg)};
    ch_buf *b = pf->cur_msgs;
    /* Out of memory, a report is lost from the messages; the run is failing anyway. */
    if (ch_buf_add(b, &h, sizeof h) < 0 || ch_buf_add(b, f, h.file_len + 1) < 0 ||
        ch_buf_add(b, reason, h.reason_len + 1) < 0 || ch_buf_add(b, msg, h.msg_len + 1) < 0)
        return;
}

/* Report the captured reports in b[from, to) to target; a report with a line gets line_base
 * added (a chunk of a file counts its lines from its own start). */
static void replay(ch_diag *target, const ch_buf *b, size_t from, size_t to, uint64_t line_base)
{
    size_t at = from;
    while (at + sizeof(pf_msg) <= to) {
        pf_msg h;
        memcpy(&h, b->data + at, sizeof h);
        const char *file = b->data + at + sizeof h;
        const char *reason = file + h.file_len + 1;
        const char *msg = reason + h.reason_len + 1;
        ch_diag_report(target, (ch_dataset)h.ds, h.file_len ? file : NULL,
                       h.line ? h.line + line_base : 0, h.offset, reason, "%s", msg);
        at += sizeof h + h.file_len + h.reason_len + h.msg_len + 3;
    }
}

/* Counters the stream kept in its own diag go to the target (reports were replayed). */
static void add_counters(ch_prefetch *pf)
{
    for (int d = 0; d < CH_DS__COUNT; d++) {
        ch_ds_stats *t = &pf->target->by_ds[d], *s = &pf->diag.by_ds[d];
        t->records += s->records;
        t->events += s->events;
        t->skipped += s->skipped;
        t->errors += s->errors;
        t->files += s->files;
        t->bytes += s->bytes;
        memset(s, 0, sizeof *s);
    }
    pf->target->unreadable_inputs += pf->diag.unreadable_inputs;
    pf->diag.unreadable_inputs = 0;
}

/* ---- reading ahead ----------------------------------------------------------------------------
 */

/* Read up to BATCH events into b (on a worker, without the lock). Stops after the end of the
 * stream, and early when the consumer waits for the stream's first batch (first): a merge
 * opening a file gets its first event without waiting for BATCH of them. Later batches are
 * filled whole even while the consumer waits: cut at every event, they made a hand-off, a
 * futex wake and two context switches per event whenever the worker was the slower thread
 * (docs/BENCHMARKS.md section 43). An input that is slow to come (a pipe) is thus handed over
 * in batches too: analyze reports when its inputs end, and serve's streams are request bodies
 * in memory, which end. */
static void fill_batch(ch_prefetch *pf, pf_batch *b, void *tctx, bool first, bool light)
{
    const ch_prefetch_prep *pp = &pf->pool->prep;
    void (*prep)(void *, ch_event *, ch_arena *) = tctx == NULL ? NULL
                                                   : light && pp->event_light != NULL
                                                       ? pp->event_light
                                                       : pp->event;
    ch_arena_reset(&b->arena);
    ch_buf_clear(&b->msgs);
    pf->cur_msgs = &b->msgs;
    b->n = 0;
    if (pf->opener != NULL) {
        int ok = pf->opener(pf->opener_ud, &pf->diag, &pf->type, &pf->st);
        pf->opener = NULL;
        if (!ok) {
            pf_item *it = &b->item[b->n++];
            it->rc = 0; /* the end, after what the open reported */
            it->msg_end = b->msgs.len;
            return;
        }
    }
    while (b->n < BATCH) {
        pf_item *it = &b->item[b->n++];
        /* Straight into the slot: the event is not copied, only what it borrows is kept. */
        it->rc = pf->type->next(pf->st, &it->ev);
        if (it->rc == 1 && copy_event(it, &b->arena) < 0) {
            ch_diag_report(&pf->diag, pf->type->dataset, NULL, 0, UINT64_MAX, "out_of_memory",
                           "cannot keep an event read ahead: the rest of this input is skipped");
            it->rc = CH_ENOMEM;
        }
        if (it->rc == 1 && prep != NULL)
            prep(tctx, &it->ev, &b->arena);
        it->msg_end = b->msgs.len;
        if (it->rc != 1 || (first && atomic_load_explicit(&pf->wanted, memory_order_relaxed)))
            break;
    }
}

static void unlink_active(ch_prefetch_pool *pool, ch_prefetch *pf)
{
    if (!pf->active)
        return;
    if (pf->prev)
        pf->prev->next = pf->next;
    else
        pool->active = pf->next;
    if (pf->next)
        pf->next->prev = pf->prev;
    pf->prev = pf->next = NULL;
    pf->active = false;
}

/* The stream a worker should read now (under mu), or NULL. */
static ch_prefetch *pick(ch_prefetch_pool *pool)
{
    ch_prefetch *best = NULL;
    uint64_t best_ready = UINT64_MAX;
    for (ch_prefetch *pf = pool->active; pf != NULL; pf = pf->next) {
        uint64_t ready = pf->tail - pf->head;
        if (pf->busy || ready >= pf->depth)
            continue;
        if (atomic_load_explicit(&pf->wanted, memory_order_relaxed))
            return pf;
        if (ready > pf->low)
            continue;
        if (ready < best_ready) {
            best = pf;
            best_ready = ready;
        }
    }
    return best;
}

static void *worker(void *ud)
{
    ch_prefetch_pool *pool = ud;
    /* Named for perf, top and /proc: a run's per-thread times are read by thread. */
    pthread_setname_np(pthread_self(), "ch-read");
    /* The thread's own state for the per-event work, made here so that its memory is first
     * touched (faulted in) by the thread that uses it. */
    void *tctx = pool->prep.thread_new != NULL ? pool->prep.thread_new(pool->prep.ud) : NULL;
    pthread_mutex_lock(&pool->mu);
    while (!pool->stop) {
        ch_prefetch *pf = pick(pool);
        if (pf == NULL) {
            pthread_cond_wait(&pool->work, &pool->mu);
            continue;
        }
        pf->busy = true;
        /* Fill the ring up (a wake-up per depth - low batches, not per batch), unless the
         * consumer waits meanwhile for another stream that no worker is reading. At least one
         * batch per pick: a worker that picked and did nothing would pick again, forever. */
        for (bool first = true;
             pf->tail - pf->head < pf->depth && pf->active &&
             (first || pool->waiting == NULL || pool->waiting == pf || pool->waiting->busy);
             first = false) {
            pf_batch *b = &pf->ring[pf->tail % pf->depth];
            bool first_batch = pf->tail == 0;
            /* Balance (ch_prefetch_prep.event_light): the consumer waits for this ring, or has
             * eaten it down to this few batches: it takes batches faster than this worker makes
             * them. A ring the consumer has not begun is not behind (the first batches of every
             * file of many small ones would all be light). */
            bool light = atomic_load_explicit(&pf->wanted, memory_order_relaxed) ||
                         (pf->head > 0 && pf->tail - pf->head < CH_PREFETCH_LIGHT_BELOW);
            pthread_mutex_unlock(&pool->mu);
            fill_batch(pf, b, tctx, first_batch, light);
            pthread_mutex_lock(&pool->mu);
            pf->tail++;
            if (b->item[b->n - 1].rc != 1) {
                pf->eof = true;
                unlink_active(pool, pf);
            }
            /* A waiting consumer is woken when the ring holds `wake` batches (or its first, or
             * its end), not at every batch: it then works through them while this worker fills
             * the rest of the ring, one wake-up per `wake` batches. A ring this worker leaves
             * unfilled wakes it below (busy cleared). */
            if (atomic_load_explicit(&pf->wanted, memory_order_relaxed) &&
                (first_batch || pf->eof || pf->tail - pf->head >= pf->wake)) {
                atomic_store_explicit(&pf->wanted, false, memory_order_relaxed);
                pthread_cond_broadcast(&pool->ready);
            }
            if (pf->eof)
                break;
        }
        pf->busy = false;
        pthread_cond_broadcast(&pool->ready); /* a close may wait for this stream */
    }
    pthread_mutex_unlock(&pool->mu);
    if (tctx != NULL && pool->prep.thread_free != NULL)
        pool->prep.thread_free(pool->prep.ud, tctx);
    return NULL;
}

ch_prefetch_pool *ch_prefetch_pool_new(unsigned workers)
{
    return ch_prefetch_pool_new_prep(workers, NULL);
}

ch_prefetch_pool *ch_prefetch_pool_new_prep(unsigned workers, const ch_prefetch_prep *prep)
{
    ch_prefetch_pool *pool = ch_calloc(1, sizeof *pool);
    if (pool == NULL)
        return NULL;
    if (prep != NULL)
        pool->prep = *prep;
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->work, NULL);
    pthread_cond_init(&pool->ready, NULL);
    pool->threads = ch_calloc(workers ? workers : 1, sizeof *pool->threads);
    if (pool->threads == NULL) {
        ch_prefetch_pool_free(pool);
        return NULL;
    }
    for (unsigned i = 0; i < workers; i++) {
        if (pthread_create(&pool->threads[i], NULL, worker, pool) != 0) {
            ch_prefetch_pool_free(pool);
            return NULL;
        }
        pool->nthreads++;
    }
    return pool;
}

unsigned ch_prefetch_pool_workers(const ch_prefetch_pool *pool)
{
    return pool != NULL ? pool->nthreads : 0;
}

void ch_prefetch_pool_free(ch_prefetch_pool *pool)
{
    if (pool == NULL)
        return;
    pthread_mutex_lock(&pool->mu);
    pool->stop = true;
    pthread_cond_broadcast(&pool->work);
    pthread_mutex_unlock(&pool->mu);
    for (unsigned i = 0; i < pool->nthreads; i++)
        pthread_join(pool->threads[i], NULL);
    pthread_cond_destroy(&pool->ready);
    pthread_cond_destroy(&pool->work);
    pthread_mutex_destroy(&pool->mu);
    ch_free(pool->threads);
    ch_free(pool);
}

ch_prefetch *ch_prefetch_new(ch_prefetch_pool *pool, ch_diag *target)
{
    ch_prefetch *pf = ch_calloc(1, sizeof *pf);
    if (pf == NULL)
        return NULL;
    pf->pool = pool;
    pf->target = target;
    ch_diag_init(&pf->diag, NULL);
    pf->diag.capture = capture;
    pf->diag.capture_ud = pf;
    ch_buf_init(&pf->open_msgs, 0);
    pf->cur_msgs = &pf->open_msgs;
    atomic_init(&pf->wanted, false);
    if (ch_prefetch_set_depth(pf, RING_BATCHES * BATCH) < 0) {
        ch_free(pf);
        return NULL;
    }
    return pf;
}

int ch_prefetch_set_depth(ch_prefetch *pf, size_t events)
{
    unsigned depth = (unsigned)((events + BATCH - 1) / BATCH);
    if (depth < 2)
        depth = 2;
    pf_batch *ring = ch_calloc(depth, sizeof *ring);
    if (ring == NULL)
        return CH_ENOMEM;
    for (unsigned i = 0; i < depth; i++) {
        ch_arena_init(&ring[i].arena, ARENA_CHUNK);
        ch_buf_init(&ring[i].msgs, 0);
    }
    ch_free(pf->ring); /* the default ring, never used: set before start */
    pf->ring = ring;
    pf->depth = depth;
    pf->low = depth / 2;
    pf->wake = pf->low < WAKE ? pf->low : WAKE;
    return 0;
}

void ch_prefetch_set_line_base(ch_prefetch *pf, uint64_t lines) { pf->line_base = lines; }

ch_diag *ch_prefetch_diag(ch_prefetch *pf) { return &pf->diag; }

void ch_prefetch_flush(ch_prefetch *pf)
{
    replay(pf->target, &pf->open_msgs, 0, pf->open_msgs.len, pf->line_base);
    ch_buf_clear(&pf->open_msgs);
    add_counters(pf);
}

void ch_prefetch_start(ch_prefetch *pf, const ch_source_type *type, ch_stream *st)
{
    ch_prefetch_pool *pool = pf->pool;
    pf->type = type;
    pf->st = st;
    pthread_mutex_lock(&pool->mu);
    pf->started = true;
    pf->active = true;
    pf->next = pool->active;
    if (pool->active)
        pool->active->prev = pf;
    pool->active = pf;
    pthread_cond_signal(&pool->work);
    pthread_mutex_unlock(&pool->mu);
}

void ch_prefetch_start_open(ch_prefetch *pf, ch_prefetch_opener open, void *ud)
{
    pf->opener = open;
    pf->opener_ud = ud;
    ch_prefetch_start(pf, NULL, NULL);
}

int ch_prefetch_next(ch_prefetch *pf, ch_event *ev)
{
    ch_event *p = NULL;
    int rc = ch_prefetch_next_ref(pf, &p);
    if (rc == 1)
        *ev = *p;
    return rc;
}

int ch_prefetch_next_ref(ch_prefetch *pf, ch_event **ev)
{
    if (pf->cur == NULL || pf->at == pf->cur->n) {
        /* The batch is used up (or none is held): give it back and take the next, the only
         * synchronisation of a batch's events on this side. */
        ch_prefetch_pool *pool = pf->pool;
        pthread_mutex_lock(&pool->mu);
        if (pf->cur != NULL) {
            pf->cur = NULL;
            pf->head++;
            if (pf->active && !pf->busy && pf->tail - pf->head == pf->low)
                pthread_cond_signal(&pool->work);
        }
        while (pf->head == pf->tail) {
            if (pf->eof || !pf->started) {
                pthread_mutex_unlock(&pool->mu);
                return 0; /* the end was handed out already */
            }
            atomic_store_explicit(&pf->wanted, true, memory_order_relaxed);
            pool->waiting = pf;
            pthread_cond_signal(&pool->work);
            pthread_cond_wait(&pool->ready, &pool->mu);
        }
        atomic_store_explicit(&pf->wanted, false, memory_order_relaxed);
        pool->waiting = NULL;
        pf->cur = &pf->ring[pf->head % pf->depth];
        pf->at = 0;
        pf->msg_at = 0;
        pthread_mutex_unlock(&pool->mu);
    }
    pf_item *it = &pf->cur->item[pf->at++];
    replay(pf->target, &pf->cur->msgs, pf->msg_at, it->msg_end, pf->line_base);
    pf->msg_at = it->msg_end;
    if (it->rc == 1)
        *ev = &it->ev;
    return it->rc;
}

static void close_pf(ch_prefetch *pf, bool count)
{
    ch_prefetch_pool *pool = pf->pool;
    pthread_mutex_lock(&pool->mu);
    unlink_active(pool, pf);
    while (pf->busy)
        pthread_cond_wait(&pool->ready, &pool->mu);
    pthread_mutex_unlock(&pool->mu);
    if (count)
        add_counters(pf);
}

static void free_pf(ch_prefetch *pf)
{
    for (unsigned i = 0; i < pf->depth; i++) {
        for (unsigned k = 0; k < BATCH; k++)
            ch_json_doc_free(pf->ring[i].item[k].doc);
        ch_arena_free(&pf->ring[i].arena);
        ch_buf_free(&pf->ring[i].msgs);
    }
    ch_free(pf->ring);
    ch_buf_free(&pf->open_msgs);
    ch_free(pf);
}

void ch_prefetch_close(ch_prefetch *pf)
{
    if (pf != NULL) {
        close_pf(pf, true);
        free_pf(pf);
    }
}

void ch_prefetch_drop(ch_prefetch *pf)
{
    if (pf != NULL) {
        close_pf(pf, false);
        free_pf(pf);
    }
}

int ch_prefetch_recycle(ch_prefetch *pf, ch_diag *target)
{
    close_pf(pf, true);
    /* Every worker is out of it and it is off the active list: the consumer's alone. */
    pf->target = target;
    pf->type = NULL;
    pf->st = NULL;
    pf->opener = NULL;
    pf->cur = NULL;
    pf->at = 0;
    pf->msg_at = 0;
    pf->line_base = 0;
    pf->head = pf->tail = 0;
    pf->started = pf->busy = pf->eof = pf->active = false;
    atomic_store_explicit(&pf->wanted, false, memory_order_relaxed);
    ch_buf_clear(&pf->open_msgs);
    pf->cur_msgs = &pf->open_msgs;
    return 0;
}
