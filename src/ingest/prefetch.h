/*
 * prefetch.h - event streams read ahead on worker threads, handed out in their own order.
 *
 * `analyze --threads N` reads, inflates, parses and normalizes on N-1 worker threads while the
 * calling thread merges by event time and runs everything stateful (duplicates, enrichment,
 * correlation, offenses, the store). Each open stream gets a ring of batches of events read
 * ahead; a worker claims a stream (one worker per stream at a time: a stream is not thread-safe,
 * but it may move between threads), fills a batch and publishes it whole. The consumer takes a
 * whole batch under one lock and hands its events out in order, so every stream yields exactly
 * the events, in exactly the order, that calling its next() directly would.
 *
 * An event borrows from its stream until the next call, so a batch slot owns what its event
 * points at: the stream writes the event into the slot, its parsed JSON document is copied into
 * the slot's (ch_json_doc_copy: the used tape and strings, no second parse) and every string view
 * is rebased into the copy or copied into the batch's arena. Cost on the worker: a memcpy of
 * the record's text and of its document per event (handing the document over instead was
 * slower: docs/BENCHMARKS.md section 68); the hand-off between threads is one lock round trip
 * per batch of events on each side. The consumer may give the
 * workers per-event work of its own to do after the copy (ch_prefetch_prep: the pipeline's
 * GeoIP lookups, record identity and events line), so that its one thread does less.
 *
 * Diagnostics stay deterministic: the stream reports into a capturing diag (core/diag.h), each
 * report is kept with the event whose next() call made it and replayed into the target diag when
 * the consumer takes that event, i.e. at the point of the run where a direct read would have
 * printed it. Per-dataset counters (records, events, files, bytes) are added to the target when
 * the stream is closed.
 *
 * Ownership: the pool owns its threads; ch_prefetch_pool_free joins them and needs every
 * ch_prefetch closed first. A ch_prefetch borrows its pool, its target diag and (once started)
 * the stream and its input, which the caller closes after ch_prefetch_close. One consumer
 * thread per pool.
 */
#ifndef CH_INGEST_PREFETCH_H
#define CH_INGEST_PREFETCH_H

#include "core/diag.h"
#include "core/event.h"
#include "core/mem.h"
#include "parse/source.h"

typedef struct ch_prefetch_pool ch_prefetch_pool;
typedef struct ch_prefetch ch_prefetch;

/* workers >= 1 threads. NULL when out of memory or threads cannot be created. */
ch_prefetch_pool *ch_prefetch_pool_new(unsigned workers);

/* Per-event work the consumer hands to the workers (pipeline.h's ch_pipeline_prep: GeoIP, the
 * record identity, the events writer's line): it must depend on the event alone and on state
 * that does not change while the pool runs, since it runs ahead of the consumer, in no
 * particular order across streams. thread_new runs on each worker as it starts and returns that
 * thread's state (NULL: its events go unprepared, the consumer then does the work itself);
 * thread_free on the same thread as it stops. event runs after an event was made its batch's
 * own; what it allocates comes from arena, which lives as long as the event. event_light
 * (NULL: event always) runs instead of event for the events of a batch begun while the consumer
 * waited for its ring, or had taken from it and left fewer than CH_PREFETCH_LIGHT_BELOW batches:
 * the worker is then the slower of the two threads, and what event does beyond event_light is
 * better left to the consumer, which must do all of it anyway for an unprepared event. Which
 * batches are light depends on timing: the consumer's results must not. */
typedef struct ch_prefetch_prep {
    void *(*thread_new)(void *ud);
    void (*thread_free)(void *ud, void *tctx);
    void (*event)(void *tctx, ch_event *ev, ch_arena *arena);
    void *ud;
    void (*event_light)(void *tctx, ch_event *ev, ch_arena *arena);
} ch_prefetch_prep;

#define CH_PREFETCH_LIGHT_BELOW 2

/* The same with per-event work on the workers (prep may be NULL: none). */
ch_prefetch_pool *ch_prefetch_pool_new_prep(unsigned workers, const ch_prefetch_prep *prep);
void ch_prefetch_pool_free(ch_prefetch_pool *pool);
/* Its worker threads (0 for NULL). */
unsigned ch_prefetch_pool_workers(const ch_prefetch_pool *pool);

/* A reader whose reports go to target. Open the stream over ch_prefetch_diag (reports made while
 * opening are kept), then ch_prefetch_flush, then ch_prefetch_start. NULL when out of memory. */
ch_prefetch *ch_prefetch_new(ch_prefetch_pool *pool, ch_diag *target);
/* Read up to about `events` ahead instead of the default (256): a chunk of a large file
 * (parse/merge.c) is parsed whole while the merge still reads the chunks before it. Before
 * start; CH_ENOMEM leaves the default. */
int ch_prefetch_set_depth(ch_prefetch *pf, size_t events);
/* Add `lines` to the line of every report replayed: a stream over a chunk of a file counts its
 * lines from the chunk's start. Set on the consumer's thread before the reports are replayed
 * (before flush and the first next). */
void ch_prefetch_set_line_base(ch_prefetch *pf, uint64_t lines);
/* The capturing diag to open the stream over. */
ch_diag *ch_prefetch_diag(ch_prefetch *pf);
/* Replay the reports kept so far and add the counters to the target (on the consumer's thread,
 * before start). */
void ch_prefetch_flush(ch_prefetch *pf);
/* Begin reading ahead from st (opened over ch_prefetch_diag). */
void ch_prefetch_start(ch_prefetch *pf, const ch_source_type *type, ch_stream *st);
/* Begin reading ahead from a stream that a worker opens first: open(ud, diag, &type, &st) runs
 * on the worker that first fills the ring, over the capturing diag, and returns 1 with the
 * stream or 0 (its reports say why; the reader then ends at once, as an empty stream would).
 * Its reports come out before the stream's first event, as those of an open here would: a
 * gzip'd input is inflated whole when opened, and that work then leaves the consumer's thread
 * (docs/BENCHMARKS.md section 73). What open writes through ud is the caller's to read after
 * the first next or the close. */
typedef int (*ch_prefetch_opener)(void *ud, ch_diag *diag, const ch_source_type **type,
                                  ch_stream **st);
void ch_prefetch_start_open(ch_prefetch *pf, ch_prefetch_opener open, void *ud);
/* The stream's next event, as type->next would return it: 1 with *ev (valid until the next
 * call or close), 0 at the end, negative when the input failed. */
int ch_prefetch_next(ch_prefetch *pf, ch_event *ev);
/* The same without copying the event out: *ev points into the ring (the consumer may change
 * it), valid until the next call or close. */
int ch_prefetch_next_ref(ch_prefetch *pf, ch_event **ev);
/* Stop reading ahead (waits for a worker inside the stream), add the counters to the target and
 * free pf (NULL-safe). The stream is then the caller's again, idle, to close. */
void ch_prefetch_close(ch_prefetch *pf);

/* Close the stream's reading as ch_prefetch_close does, but keep pf, its ring and the memory
 * its events used, for another stream reporting to target (started again with
 * ch_prefetch_start): the chunks of a large file reuse their rings instead of faulting in
 * fresh ones. Returns 0. */
int ch_prefetch_recycle(ch_prefetch *pf, ch_diag *target);
/* Close without adding the counters to the target: a reader whose events a direct read would
 * never have reached (the chunks after a failure). NULL-safe. */
void ch_prefetch_drop(ch_prefetch *pf);

/* The CPUs this process may run on (its affinity mask, as nproc counts them; at least 1): the
 * default of --threads. */
unsigned ch_prefetch_cpus(void);

#endif
