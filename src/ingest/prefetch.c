/*
 * prefetch.c - the worker pool and the per-stream rings of ingest/prefetch.h.
 *
 * One mutex guards every ring's indexes and flags (head, tail, busy, eof, wanted): a worker takes
 * it twice per event it publishes and once per claim, the consumer once per event. The slots
 * themselves are never touched under the lock: slots [head, tail) belong to the consumer (the
 * one at head while it is held), the ones a claiming worker fills belong to that worker until
 * it publishes them by moving tail. A worker claims the stream the consumer waits for first,
 * else the one with the fewest events ready, so that the merge rarely waits.
 *
 * Memory: SLOTS events per open stream, each with its document copy and arena (a few KiB for a
 * CloudTrail record), so about half a MiB per open input at most.
 */
#include "ingest/prefetch.h"

#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/json.h"
#include "core/mem.h"

#define SLOTS 64 /* events read ahead per stream */
#define BATCH 32 /* events a worker reads per claim before it looks for a needier stream */
/* A worker takes up a stream again only when it has this few events ready (or the consumer
 * waits for it): refilling one slot per event taken cost a futex wake-up per event. */
#define LOW (SLOTS / 2)

/* Every string view of ch_event is rebased below: a field added to the event must be added
 * there too, or a slot would hand out a view into a buffer the stream has reused. */
_Static_assert(sizeof(ch_event) == 1000, "ch_event changed: update copy_event in prefetch.c");

typedef struct pf_slot {
    int rc;
    ch_event ev;
    ch_json_doc *doc;
    ch_arena arena;
    ch_buf msgs; /* reports captured while this slot's next() ran */
} pf_slot;

/* A captured report in a slot's msgs: this header, then file, reason and msg, each with its
 * NUL. */
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
    ch_buf *cur; /* where captured reports go now */
    ch_buf open_msgs;
    pf_slot ring[SLOTS];
    /* Under pool->mu. */
    uint64_t head, tail;
    bool started, busy, eof, wanted, held, active;
    ch_prefetch *prev, *next; /* in pool->active while started, not at its end, not closed */
};

struct ch_prefetch_pool {
    pthread_mutex_t mu;
    pthread_cond_t work;  /* workers: a stream may need reading */
    pthread_cond_t ready; /* the consumer: its stream got an event, or a worker let one go */
    ch_prefetch *active;
    bool stop;
    unsigned nthreads;
    pthread_t *threads;
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
static void rebase(copier *c, ch_sv *sv, size_t pad)
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

static int copy_event(pf_slot *s, const ch_event *src)
{
    ch_arena_reset(&s->arena);
    s->ev = *src;
    ch_event *e = &s->ev;
    copier c = {.a = &s->arena};
    if (src->has_raw_doc) {
        if (s->doc == NULL && (s->doc = ch_json_doc_new()) == NULL)
            return CH_ENOMEM;
        if (ch_json_doc_copy(s->doc, src->raw_doc, &e->raw_doc, &c.js) < 0)
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
        ch_sv *names = ch_arena_alloc(&s->arena, 2 * (size_t)e->raw_count * sizeof *names);
        if (names == NULL)
            return CH_ENOMEM;
        ch_sv *values = names + e->raw_count;
        memcpy(names, src->raw_names, e->raw_count * sizeof *names);
        memcpy(values, src->raw_values, e->raw_count * sizeof *values);
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
    ch_buf *b = pf->cur;
    /* Out of memory, a report is lost from the messages; the run is failing anyway. */
    if (ch_buf_add(b, &h, sizeof h) < 0 || ch_buf_add(b, f, h.file_len + 1) < 0 ||
        ch_buf_add(b, reason, h.reason_len + 1) < 0 || ch_buf_add(b, msg, h.msg_len + 1) < 0)
        return;
}

static void replay(ch_diag *target, ch_buf *b)
{
    size_t at = 0;
    while (at + sizeof(pf_msg) <= b->len) {
        pf_msg h;
        memcpy(&h, b->data + at, sizeof h);
        const char *file = b->data + at + sizeof h;
        const char *reason = file + h.file_len + 1;
        const char *msg = reason + h.reason_len + 1;
        ch_diag_report(target, (ch_dataset)h.ds, h.file_len ? file : NULL, h.line, h.offset, reason,
                       "%s", msg);
        at += sizeof h + h.file_len + h.reason_len + h.msg_len + 3;
    }
    ch_buf_clear(b);
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

static void fill(ch_prefetch *pf, pf_slot *s)
{
    ch_buf_clear(&s->msgs);
    pf->cur = &s->msgs;
    ch_event ev;
    s->rc = pf->type->next(pf->st, &ev);
    if (s->rc == 1 && copy_event(s, &ev) < 0) {
        ch_diag_report(&pf->diag, pf->type->dataset, NULL, 0, UINT64_MAX, "out_of_memory",
                       "cannot keep an event read ahead: the rest of this input is skipped");
        s->rc = CH_ENOMEM;
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
    uint64_t best_ready = SLOTS;
    for (ch_prefetch *pf = pool->active; pf != NULL; pf = pf->next) {
        uint64_t ready = pf->tail - pf->head;
        if (pf->busy || ready >= SLOTS)
            continue;
        if (pf->wanted)
            return pf;
        if (ready > LOW)
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
    pthread_mutex_lock(&pool->mu);
    while (!pool->stop) {
        ch_prefetch *pf = pick(pool);
        if (pf == NULL) {
            pthread_cond_wait(&pool->work, &pool->mu);
            continue;
        }
        pf->busy = true;
        for (int k = 0; k < BATCH && pf->tail - pf->head < SLOTS && !pool->stop; k++) {
            pf_slot *s = &pf->ring[pf->tail % SLOTS];
            pthread_mutex_unlock(&pool->mu);
            fill(pf, s);
            pthread_mutex_lock(&pool->mu);
            pf->tail++;
            if (s->rc != 1) {
                pf->eof = true;
                unlink_active(pool, pf);
            }
            if (pf->wanted)
                pthread_cond_broadcast(&pool->ready);
            if (pf->eof || !pf->active)
                break;
        }
        pf->busy = false;
        pthread_cond_broadcast(&pool->ready); /* a close may wait for this stream */
    }
    pthread_mutex_unlock(&pool->mu);
    return NULL;
}

ch_prefetch_pool *ch_prefetch_pool_new(unsigned workers)
{
    ch_prefetch_pool *pool = ch_calloc(1, sizeof *pool);
    if (pool == NULL)
        return NULL;
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
    pf->cur = &pf->open_msgs;
    for (size_t i = 0; i < SLOTS; i++) {
        ch_arena_init(&pf->ring[i].arena, 4096);
        ch_buf_init(&pf->ring[i].msgs, 0);
    }
    return pf;
}

ch_diag *ch_prefetch_diag(ch_prefetch *pf) { return &pf->diag; }

void ch_prefetch_flush(ch_prefetch *pf)
{
    replay(pf->target, &pf->open_msgs);
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

int ch_prefetch_next(ch_prefetch *pf, ch_event *ev)
{
    ch_prefetch_pool *pool = pf->pool;
    pthread_mutex_lock(&pool->mu);
    if (pf->held) {
        pf->head++;
        pf->held = false;
        if (pf->active && !pf->busy && pf->tail - pf->head == LOW)
            pthread_cond_signal(&pool->work);
    }
    while (pf->head == pf->tail) {
        if (pf->eof || !pf->started) {
            pthread_mutex_unlock(&pool->mu);
            return 0; /* the end was handed out already */
        }
        pf->wanted = true;
        pthread_cond_signal(&pool->work);
        pthread_cond_wait(&pool->ready, &pool->mu);
    }
    pf->wanted = false;
    pf_slot *s = &pf->ring[pf->head % SLOTS];
    if (s->rc == 1)
        pf->held = true;
    else
        pf->head++; /* the end: nothing to keep */
    pthread_mutex_unlock(&pool->mu);
    replay(pf->target, &s->msgs);
    if (s->rc == 1)
        *ev = s->ev;
    return s->rc;
}

void ch_prefetch_close(ch_prefetch *pf)
{
    if (pf == NULL)
        return;
    ch_prefetch_pool *pool = pf->pool;
    pthread_mutex_lock(&pool->mu);
    unlink_active(pool, pf);
    while (pf->busy)
        pthread_cond_wait(&pool->ready, &pool->mu);
    pthread_mutex_unlock(&pool->mu);
    add_counters(pf);
    for (size_t i = 0; i < SLOTS; i++) {
        ch_json_doc_free(pf->ring[i].doc);
        ch_arena_free(&pf->ring[i].arena);
        ch_buf_free(&pf->ring[i].msgs);
    }
    ch_buf_free(&pf->open_msgs);
    ch_free(pf);
}
