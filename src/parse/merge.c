/*
 * merge.c - k-way merge of per-file event streams by event time, with a cap on open streams.
 *
 * Start-up opens each input once to read its first events (with a scratch diag, so that
 * nothing is counted twice): the earliest of them orders the inputs, and an input whose first
 * events are not nearly sorted is sorted first (see "sorting" below). When all inputs fit under
 * the cap they are then simply kept open. The entries are then sorted by that time; the heap holds
 * the open streams keyed by their pending event's time. Before each pop, every not-yet-opened input
 * whose first time is at or before the heap's minimum is opened (cap permitting). Cost: O(log k)
 * per event, and one extra open of each input (its first PEEK_EVENTS records, inflated and
 * parsed again by the real pass); the type the peek detected is kept for the later passes, so
 * detection runs once per input.
 *
 * With two or more workers, a large plain JSON Lines file is read in chunks (see "chunks"
 * below): several workers parse it at once, and the merge takes the chunks in file order.
 * With workers, a gzip'd input is opened (inflated whole) on a worker, and the next one in time
 * order is opened there before it falls due (open_early), so that this thread merges while the
 * next S3 object inflates; the events, reports and stats are those of an open when due.
 */
#include "parse/merge.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/heap.h"
#include "core/json.h"
#include "core/mem.h"
#include "ingest/prefetch.h"

#define DETECT_BYTES (64 * 1024)
#define PEEK_WINDOW (256 * 1024)
/* Events read by the peek to judge whether a file is nearly sorted, and how far back an event
 * may be from the newest before the file counts as not sorted (the engine's default allowed
 * lateness: within it, the merge and the engine put events in their place anyway). */
#define PEEK_EVENTS 32
#define SORTED_SLACK_MS (90 * 1000)
#define SORT_MEM_DEFAULT ((size_t)256 << 20)

/* Chunks of a large JSON Lines file (see "chunks" below). */
#define CHUNK_BYTES ((uint64_t)2 << 20) /* a chunk's size, cut at the next suitable line */
#define CHUNK_LINE_MAX (64u << 10)      /* a chunk starts at a line this long at most */
#define CHUNK_PROBE (1u << 20)          /* bytes searched past a nominal cut for that line */
#define CHUNK_EVENTS 2048 /* events a chunk's reader keeps ahead: its whole chunk, mostly */
#define MAX_CHUNKS 8      /* chunks of one file open at once */

typedef struct chunk {
    ch_input *in; /* bytes [start, end) of the file */
    ch_stream *st;
    ch_prefetch *pf;
} chunk;

typedef struct entry {
    char *path; /* what messages name: the original file, also for a sorted run */
    char *tmp;  /* a sorted run on disk (unlinked when the merge is freed), or NULL */
    char *mem;  /* a sorted run in memory (owned), or NULL */
    size_t mem_len;
    const ch_source_type *run_type; /* the type of a sorted run (its source file's) */
    /* Where a sorted run's stream counts and reports (the pass that sorted the file counted it
     * in the real diag). Owned, and on the heap: the stream keeps the pointer for its whole
     * life, so it must outlive open_run (a diag on open_run's stack was written by every
     * next() after open_run returned: a fuzz_merge finding, issue 15). */
    ch_diag *run_diag;
    int64_t first_ts;
    bool has_first, done, open, late;
    /* The type the peek detected (or was forced to): the real pass and the sort take it instead
     * of detecting again, so each input's type is detected once. Both passes give detection the
     * same bytes (the decompressed stream's first DETECT_BYTES, whatever the window or the
     * inflater), so the answer is the one a second detection would give. NULL: not peeked. */
    const ch_source_type *peek_type;
    bool peek_gzip; /* the peek found a gzip'd input: a worker opens it (open_early) */
    ch_input *in;
    const ch_source_type *type;
    ch_stream *st;
    ch_prefetch *pf; /* the stream read ahead on the worker pool, or NULL: read here */
    ch_event ev;     /* pending event while open, when read here */
    ch_event *evp;   /* the pending event: &ev, or in a read-ahead ring */
    /* A large JSON Lines file read in chunks: the chunks open, in file order, and where the
     * next one starts; newlines in the chunks done (the line of the current one's first). */
    bool chunked;
    chunk chunks[MAX_CHUNKS];
    size_t nchunks;
    uint64_t size, cut, lines;
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
    /* Of them, the one opened early (open_early) and not yet due, or NULL: only the next input
     * in time order is ever opened early, so there is at most one. */
    entry *early;
    entry *last; /* entry whose event was handed out last; advanced on the next call */
    int64_t last_ts;
    bool started, any_yielded;
    size_t sort_mem;       /* bytes of record text one sort keeps in memory before spilling a run */
    unsigned threads;      /* ch_merge_set_threads: > 1 reads streams ahead on threads - 1 */
    ch_prefetch_prep prep; /* ch_merge_set_prep: the workers' per-event work */
    bool has_prep;
    ch_prefetch_pool *pool;         /* the workers, from ch_merge_start; NULL = every read here */
    ch_json_parser *probe_parser;   /* checks the line a chunk starts at */
    char *probe;                    /* CHUNK_PROBE bytes (and padding) read there */
    ch_prefetch *spare[MAX_CHUNKS]; /* readers of finished chunks, for the next ones */
    size_t nspare;
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
    /* Detection looks at DETECT_BYTES, not at the whole first window: a detector that does
     * not find its keys searches all it is given, and the window is 1 MiB (the flow-log and
     * Route 53 detectors scanning the heads of gzip'd S3 files, twice per file, were 14% of
     * the instructions of such a run); and a gzip input's first window depends on how much
     * one inflate call produced. */
    if (type == NULL)
        type = ch_source_detect(hp, hn < DETECT_BYTES ? hn : DETECT_BYTES);
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
    m->sort_mem = SORT_MEM_DEFAULT;
    return m;
}

/* Close the oldest open chunk of e: its counters and bytes go to the diag (unless dropped: a
 * chunk after the point where the file failed, which a direct read never reached). */
static void close_chunk(ch_merge *m, entry *e, bool drop)
{
    chunk *c = &e->chunks[0];
    if (drop)
        ch_prefetch_drop(c->pf);
    else if (m->nspare < MAX_CHUNKS) /* first: no worker may be inside the stream or its input */
        ch_prefetch_recycle(m->spare[m->nspare++] = c->pf, m->diag);
    else
        ch_prefetch_close(c->pf);
    if (!drop)
        m->diag->by_ds[e->type->dataset].bytes += ch_input_bytes(c->in) - ch_input_origin(c->in);
    e->lines += ch_input_newlines(c->in);
    e->type->close(c->st);
    ch_input_close(c->in);
    memmove(&e->chunks[0], &e->chunks[1], (e->nchunks - 1) * sizeof *c);
    e->nchunks--;
}

static void close_entry(ch_merge *m, entry *e)
{
    if (!e->open || e->type == NULL)
        return;
    if (e->chunked) {
        for (bool first = true; e->nchunks > 0; first = false)
            close_chunk(m, e, !first);
        e->open = false;
        m->nopen--;
        return;
    }
    ch_prefetch_close(e->pf); /* first: no worker may be inside the stream or its input */
    e->pf = NULL;
    if (m->early == e) /* opened early, never due: the merge stopped first */
        m->early = NULL;
    /* An input a worker failed to open (open_early) has neither. */
    if (e->run_type == NULL && e->in != NULL)
        m->diag->by_ds[e->type->dataset].bytes += ch_input_bytes(e->in);
    if (e->st != NULL)
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
        ch_free(m->e[i].mem);
        ch_free(m->e[i].run_diag);
        if (m->e[i].tmp != NULL) {
            unlink(m->e[i].tmp);
            ch_free(m->e[i].tmp);
        }
    }
    while (m->nspare > 0)
        ch_prefetch_close(m->spare[--m->nspare]);
    ch_prefetch_pool_free(m->pool);
    ch_json_parser_free(m->probe_parser);
    ch_free(m->probe);
    ch_free(m->e);
    ch_free(m->heap);
    ch_free(m->order);
    ch_free(m);
}

int ch_merge_add(ch_merge *m, const char *path)
{
    if (m->n == m->cap) {
        entry *ne = ch_grow(m->e, &m->cap, 64, sizeof *ne);
        if (ne == NULL)
            return CH_ENOMEM;
        m->e = ne;
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
    ch_heap_push(m->heap, &m->nheap, (ch_heap_elem){e->evp->ts_ms, (uint64_t)(e - m->e), e});
}

static entry *heap_pop(ch_merge *m) { return ch_heap_pop(m->heap, &m->nheap).item; }

/* A sorted run holds only records that parsed once already: its second parse reports into a
 * scratch diag, so nothing is counted twice (the sort pass counted them). */
static bool open_run(ch_merge *m, entry *e, ch_diag *sdiag)
{
    ch_error err = {0};
    if (e->run_diag == NULL && (e->run_diag = ch_malloc(sizeof *e->run_diag)) == NULL) {
        ch_diag_report(m->diag, e->run_type->dataset, e->path, 0, UINT64_MAX, "sort_failed",
                       "out of memory reading the sorted copy back");
        return false;
    }
    ch_diag_init(e->run_diag, NULL);
    int rc = e->mem != NULL ? ch_input_open_mem(&e->in, e->path, e->mem, e->mem_len,
                                                CH_INPUT_DEFAULT_MAX_WINDOW, &err)
                            : ch_input_open(&e->in, e->tmp, CH_INPUT_DEFAULT_MAX_WINDOW, &err);
    if (rc < 0) {
        ch_diag_report(m->diag, e->run_type->dataset, e->path, 0, UINT64_MAX, "sort_failed",
                       "the sorted copy cannot be read back: %s", err.msg);
        return false;
    }
    if (!ch_source_open_input(e->in, e->path, e->run_type, sdiag ? sdiag : e->run_diag, false,
                              &e->type, &e->st)) {
        ch_input_close(e->in);
        e->in = NULL;
        return false;
    }
    return true;
}

/* ---- chunks of a large JSON Lines file ----------------------------------------------------
 *
 * One worker per stream would leave a single large file to one worker however many there are.
 * A plain (not gzip'd) JSON Lines CloudTrail or Route 53 file of two chunks or more is read as
 * chunks of about CHUNK_BYTES instead, each a range input (ingest/input.h) with its own stream
 * and read-ahead ring deep enough to hold most of a chunk, so that up to workers + 1 chunks are
 * parsed at once while the merge takes them in file order. The results are those of a direct
 * read because a chunk only starts where a direct read is in the same state as a fresh one:
 *  - the file is read as JSON Lines from its first line on (jsonrec.h: its first line is one
 *    object on one line), so every line is split on its own, and nothing carries over a
 *    newline; the first line of the file is checked the same way as a cut's line;
 *  - a chunk starts at a line that is one JSON object on one line (simdjson parses it), with no
 *    "Records" key (no envelope), at most CHUNK_LINE_MAX long: the chunk's own splitter, which
 *    decides the shape from its first record, then reads it as JSON Lines too;
 *  - offsets are the file's (a range input starts at its chunk's offset) and lines are counted
 *    from the chunk's start and moved by the newlines of the chunks before it when the reports
 *    are replayed (ch_prefetch_set_line_base), so every report names the same line and byte;
 *  - counters are added when a chunk is done, and bytes are those of the chunks read.
 * A file without such a line near a cut is read as fewer, larger chunks. gzip'd files are read
 * per file: a deflate stream cannot be entered in the middle. */

/* Is line [p, p + n) (without its newline; followed by readable padding up to cap) a place a
 * chunk may start? */
static bool chunk_line_ok(ch_merge *m, const char *p, size_t n, size_t cap)
{
    while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    if (n < 2 || n > CHUNK_LINE_MAX || p[0] != '{' || p[n - 1] != '}' ||
        memmem(p, n, "\"Records\"", 9) != NULL)
        return false;
    ch_json_val root;
    ch_error err;
    return ch_json_parse(m->probe_parser, p, n, cap, &root, &err) == 0 &&
           ch_json_typeof(root) == CH_JSON_OBJECT;
}

/* Where the chunk after `from` should start: the first suitable line at or after from, or
 * size when there is none within CHUNK_PROBE bytes (the rest of the file is one chunk). */
static uint64_t chunk_cut(ch_merge *m, int fd, uint64_t from, uint64_t size)
{
    ssize_t got = pread(fd, m->probe, CHUNK_PROBE, (off_t)(from - 1));
    if (got <= 0)
        return size;
    const char *b = m->probe, *end = b + got;
    memset(m->probe + got, 0, CH_JSON_PADDING);
    for (const char *q = memchr(b, '\n', (size_t)got); q != NULL;) {
        const char *line = q + 1;
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        if (nl == NULL)
            break;
        if (chunk_line_ok(m, line, (size_t)(nl - line), (size_t)(end - line) + CH_JSON_PADDING))
            return from - 1 + (uint64_t)(line - b);
        q = nl;
    }
    return size;
}

/* Whether e (just opened, type detected) is read in chunks; sets e->size. */
static bool chunkable(ch_merge *m, entry *e)
{
    if (ch_prefetch_pool_workers(m->pool) < 2 || e->run_type != NULL || ch_input_is_gzip(e->in) ||
        (e->type->dataset != CH_DS_CLOUDTRAIL && e->type->dataset != CH_DS_ROUTE53) ||
        strcmp(e->path, "-") == 0)
        return false;
    struct stat sb;
    if (stat(e->path, &sb) != 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size < 2 * CHUNK_BYTES)
        return false;
    if (m->probe == NULL) {
        m->probe = ch_malloc(CHUNK_PROBE + CH_JSON_PADDING);
        m->probe_parser = ch_json_parser_new(CHUNK_LINE_MAX, 1024);
        if (m->probe == NULL || m->probe_parser == NULL)
            return false;
    }
    int fd = open(e->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t got = pread(fd, m->probe, CHUNK_PROBE, 0);
    close(fd);
    if (got <= 0)
        return false;
    memset(m->probe + got, 0, CH_JSON_PADDING);
    const char *nl = memchr(m->probe, '\n', (size_t)got);
    if (nl == NULL ||
        !chunk_line_ok(m, m->probe, (size_t)(nl - m->probe), (size_t)got + CH_JSON_PADDING))
        return false;
    e->size = (uint64_t)sb.st_size;
    return true;
}

/* Open chunks of e until workers + 1 are open or the file is covered. A chunk that cannot be
 * opened (out of memory, out of file descriptors) ends the file there, reported. */
static void open_chunks(ch_merge *m, entry *e)
{
    size_t want = ch_prefetch_pool_workers(m->pool) + 1;
    if (want > MAX_CHUNKS)
        want = MAX_CHUNKS;
    int fd = -1;
    while (e->nchunks < want && e->cut < e->size) {
        uint64_t start = e->cut, end = e->size;
        if (e->size - start >= CHUNK_BYTES + CHUNK_BYTES / 2) {
            if (fd < 0 && (fd = open(e->path, O_RDONLY | O_CLOEXEC)) < 0)
                break;
            end = chunk_cut(m, fd, start + CHUNK_BYTES, e->size);
        }
        chunk c = {0};
        ch_error err = {0};
        bool fresh = m->nspare == 0;
        c.pf = fresh ? ch_prefetch_new(m->pool, m->diag) : m->spare[--m->nspare];
        int rc = c.pf == NULL ? ch_error_set(&err, CH_ENOMEM, "out of memory")
                              : ch_input_open_range(&c.in, e->path, start, end,
                                                    CH_INPUT_DEFAULT_MAX_WINDOW, &err);
        if (rc == 0 && (!fresh || ch_prefetch_set_depth(c.pf, CHUNK_EVENTS) == 0))
            c.st = e->type->open(c.in, ch_prefetch_diag(c.pf), &err);
        if (c.st == NULL) {
            ch_diag_report(m->diag, e->type->dataset, e->path, 0, start, "open_failed",
                           "cannot read the chunk at byte %llu: %s", (unsigned long long)start,
                           err.msg[0] ? err.msg : "out of memory");
            ch_prefetch_drop(c.pf);
            ch_input_close(c.in);
            e->cut = e->size;
            break;
        }
        ch_prefetch_start(c.pf, e->type, c.st);
        e->chunks[e->nchunks++] = c;
        e->cut = end;
        m->stats.chunks++;
    }
    if (fd >= 0)
        close(fd);
}

/* The next event of a chunked file: from its oldest chunk, then the next. */
static int chunks_next(ch_merge *m, entry *e)
{
    while (e->nchunks > 0) {
        int rc = ch_prefetch_next_ref(e->chunks[0].pf, &e->evp);
        if (rc == 1)
            return 1;
        close_chunk(m, e, false);
        if (rc < 0) { /* the file failed here: a direct read would stop, and so do the chunks */
            while (e->nchunks > 0)
                close_chunk(m, e, true);
            return rc;
        }
        open_chunks(m, e);
        if (e->nchunks > 0)
            ch_prefetch_set_line_base(e->chunks[0].pf, e->lines);
    }
    return 0;
}

/* The next event of an open entry, from its stream or its read-ahead ring (the same events in
 * the same order, reports at the same point: ingest/prefetch.h). */
static int entry_next(ch_merge *m, entry *e)
{
    if (e->chunked)
        return chunks_next(m, e);
    if (e->pf != NULL)
        return ch_prefetch_next_ref(e->pf, &e->evp);
    e->evp = &e->ev;
    return e->type->next(e->st, &e->ev);
}

/* A reader on the pool for e, reporting where e's stream would (NULL: read e here). */
static ch_prefetch *entry_prefetch(ch_merge *m, entry *e)
{
    if (m->pool == NULL)
        return NULL;
    if (e->run_type == NULL)
        return ch_prefetch_new(m->pool, m->diag);
    if (e->run_diag == NULL && (e->run_diag = ch_malloc(sizeof *e->run_diag)) == NULL)
        return NULL;
    ch_diag_init(e->run_diag, NULL);
    return ch_prefetch_new(m->pool, e->run_diag);
}

/* e counted open: against the cap at once, in the stats when it is due. An input opened early
 * (open_early) is the merge's only when its first event is due: the stats are those of a merge
 * whose inputs all open when due, whatever the number of workers. */
static void mark_open(ch_merge *m, entry *e, bool early)
{
    if (!e->open) {
        e->open = true;
        m->nopen++;
    }
    if (early) {
        m->early = e;
        return;
    }
    if (m->early == e)
        m->early = NULL;
    m->stats.opened++;
    size_t held = m->nopen - (m->early != NULL);
    if (held > m->stats.max_open_seen)
        m->stats.max_open_seen = held;
}

/* e's first event, on the heap; or e closed, when it has none. */
static void push_first(ch_merge *m, entry *e)
{
    if (entry_next(m, e) == 1) {
        heap_push(m, e);
    } else {
        close_entry(m, e);
        e->done = true;
    }
}

/* A gzip'd input is opened on a worker: the open inflates the whole member (libdeflate has no
 * streaming call), which on this thread was a quarter of its samples in a two-thread run over
 * gzip'd S3 files (docs/BENCHMARKS.md section 73). Never chunked (chunkable), so nothing here
 * needs it open. */
static bool on_worker(const ch_merge *m, const entry *e)
{
    return m->pool != NULL && e->run_type == NULL && e->peek_gzip && e->peek_type != NULL;
}

/* The opener run on the worker: writes e->in and e->st, which this thread reads only after
 * the stream's first event or its close (both synchronise with the worker). */
static int open_worker(void *ud, ch_diag *diag, const ch_source_type **type, ch_stream **st)
{
    entry *e = ud;
    ch_input *in = NULL;
    int ok = ch_source_open_path(e->path, e->peek_type, diag, true, CH_INPUT_DEFAULT_MAX_WINDOW,
                                 &in, type, st);
    e->in = in;
    e->st = *st;
    return ok;
}

/* Begin e's open on a worker and count it open; its first event is taken when it is due
 * (open_and_push). Called for the next input in time order before it is due, so that the
 * worker inflates it while this thread merges the inputs before it. The type is the peek's:
 * the open, told it, detects nothing. */
static bool open_early(ch_merge *m, entry *e)
{
    ch_prefetch *pf = entry_prefetch(m, e);
    if (pf == NULL)
        return false;
    e->type = e->peek_type;
    e->pf = pf;
    ch_prefetch_start_open(pf, open_worker, e);
    mark_open(m, e, true);
    return true;
}

/* Open e for real and read its first event; pushes it on the heap when it has one. */
static void open_and_push(ch_merge *m, entry *e, bool report)
{
    if (e->open || (on_worker(m, e) && open_early(m, e))) {
        mark_open(m, e, false);
        push_first(m, e);
        return;
    }
    ch_prefetch *pf = entry_prefetch(m, e);
    ch_diag *sdiag = pf != NULL ? ch_prefetch_diag(pf) : NULL;
    bool ok = e->run_type != NULL
                  ? open_run(m, e, sdiag)
                  : ch_source_open_path(e->path, e->peek_type ? e->peek_type : m->forced,
                                        sdiag ? sdiag : m->diag, report,
                                        CH_INPUT_DEFAULT_MAX_WINDOW, &e->in, &e->type, &e->st);
    if (pf != NULL)
        ch_prefetch_flush(pf); /* what opening reported, now, as a direct open would */
    if (!ok) {
        ch_prefetch_close(pf);
        e->done = true;
        return;
    }
    if (pf != NULL && chunkable(m, e)) {
        /* Read in chunks instead: this stream only detected the type and counted the file. */
        ch_prefetch_close(pf);
        pf = NULL;
        e->type->close(e->st);
        ch_input_close(e->in);
        e->st = NULL;
        e->in = NULL;
        e->chunked = true;
        open_chunks(m, e);
    }
    if (pf != NULL) {
        e->pf = pf;
        ch_prefetch_start(pf, e->type, e->st);
    }
    mark_open(m, e, false);
    push_first(m, e);
}

static int cmp_first(const void *a, const void *b, void *ud)
{
    const ch_merge *m = ud;
    const entry *x = &m->e[*(const size_t *)a], *y = &m->e[*(const size_t *)b];
    if (x->first_ts != y->first_ts)
        return x->first_ts < y->first_ts ? -1 : 1;
    return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

/* ---- sorting a file that is not nearly sorted ------------------------------------------------
 *
 * Newest-first exports (the console's Event history download, `aws cloudtrail lookup-events`)
 * and shuffled files would put whole stages of an attack behind the watermark. Such a file is
 * read once, its records kept as text (the JSON record, or the flow log's columns under a
 * header line) with their event times, sorted by time (stable), and handed to the merge as
 * sorted runs that the source type parses again. A flow log may change its columns mid-file
 * (a new header line): each record keeps the header it was read under, and a run states the
 * header again wherever it changes from one record to the next (one header for the whole run
 * lost every record of the other layouts: a fuzz_merge finding, issue 15). Runs stay in memory up
 * to sort_mem bytes; beyond that each full run is written to a temporary file and the merge's own
 * k-way merge joins them: an external sort with no extra code. Cost: one extra parse of such files.
 */

typedef struct srec {
    int64_t ts;
    size_t off, len;
    size_t hoff, hlen; /* its header line in the headers buffer (hlen 0: JSON, none) */
} srec;

static int cmp_srec(const void *a, const void *b)
{
    const srec *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->off < y->off ? -1 : (x->off > y->off); /* stable: file order on ties */
}

static int add_run_entry(ch_merge *m, size_t src, char *mem, size_t len, char *tmp,
                         const ch_source_type *type, int64_t first_ts)
{
    if (ch_merge_add(m, m->e[src].path) < 0)
        return CH_ENOMEM;
    entry *r = &m->e[m->n - 1];
    m->stats.files--; /* a run is not another input */
    r->mem = mem;
    r->mem_len = len;
    r->tmp = tmp;
    r->run_type = type;
    r->first_ts = first_ts;
    r->has_first = true;
    return 0;
}

/* Whether record i of a sorted run needs its header line written before it. */
static bool header_due(const srec *recs, size_t i)
{
    return recs[i].hlen > 0 &&
           (i == 0 || recs[i - 1].hlen != recs[i].hlen || recs[i - 1].hoff != recs[i].hoff);
}

/* Sort recs over text and make a run of records, each header line written where the layout
 * changes: in memory, or on disk. */
static int emit_run(ch_merge *m, size_t src, const ch_source_type *type, const ch_buf *hdr,
                    const ch_buf *text, srec *recs, size_t n, bool disk)
{
    if (n == 0)
        return 0;
    qsort(recs, n, sizeof *recs, cmp_srec);
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += recs[i].len + 1 + (header_due(recs, i) ? recs[i].hlen : 0);
    char *tmp = NULL;
    char *mem = NULL;
    FILE *f = NULL;
    if (disk) {
        const char *dir = getenv("TMPDIR");
        char path[4096];
        snprintf(path, sizeof path, "%s/coinhound-sort-XXXXXX", dir && *dir ? dir : "/tmp");
        int fd = mkstemp(path);
        if (fd < 0 || (f = fdopen(fd, "wb")) == NULL) {
            if (fd >= 0)
                close(fd);
            ch_diag_report(m->diag, type->dataset, m->e[src].path, 0, UINT64_MAX, "sort_failed",
                           "cannot create a temporary file for sorting in %s",
                           dir && *dir ? dir : "/tmp");
            return CH_EIO;
        }
        tmp = ch_strdup(path);
        for (size_t i = 0; i < n; i++) {
            if (header_due(recs, i))
                fwrite(hdr->data + recs[i].hoff, 1, recs[i].hlen, f);
            fwrite(text->data + recs[i].off, 1, recs[i].len, f);
            fputc('\n', f);
        }
        if (fclose(f) != 0 || tmp == NULL) {
            unlink(path);
            ch_free(tmp);
            ch_diag_report(m->diag, type->dataset, m->e[src].path, 0, UINT64_MAX, "sort_failed",
                           "cannot write a sorted run to %s", path);
            return CH_EIO;
        }
        m->stats.sorted_runs_on_disk++;
    } else {
        mem = ch_malloc(total + 1);
        if (mem == NULL)
            return CH_ENOMEM;
        size_t o = 0;
        for (size_t i = 0; i < n; i++) {
            if (header_due(recs, i)) {
                memcpy(mem + o, hdr->data + recs[i].hoff, recs[i].hlen);
                o += recs[i].hlen;
            }
            memcpy(mem + o, text->data + recs[i].off, recs[i].len);
            o += recs[i].len;
            mem[o++] = '\n';
        }
        m->stats.sorted_runs_in_memory++;
    }
    int rc = add_run_entry(m, src, mem, total, tmp, type, recs[0].ts);
    if (rc < 0) {
        ch_free(mem);
        if (tmp) {
            unlink(tmp);
            ch_free(tmp);
        }
    }
    return rc;
}

/* One record as one line of text the source type reads back; for a flow log record, r's
 * header is the line of its column names in hdr (shared with the record before when it is
 * the same). */
static int record_text(ch_buf *text, ch_buf *hdr, const ch_event *ev, srec *r, const srec *prev)
{
    r->hoff = r->hlen = 0;
    if (ev->raw_json.n > 0) {
        size_t at = text->len;
        int rc = ch_buf_add(text, ev->raw_json.p, ev->raw_json.n);
        if (rc < 0)
            return rc;
        for (size_t i = at; i < text->len; i++) /* pretty-printed records: one line */
            if (text->data[i] == '\n' || text->data[i] == '\r')
                text->data[i] = ' ';
        return 0;
    }
    if (ev->raw_count == 0)
        return CH_EUSAGE;
    size_t at = hdr->len;
    int rc = 0;
    for (uint32_t i = 0; i < ev->raw_count && rc >= 0; i++) {
        if (i)
            rc = ch_buf_addc(hdr, ' ');
        if (rc >= 0)
            rc = ch_buf_add(hdr, ev->raw_names[i].p, ev->raw_names[i].n);
    }
    if (rc < 0 || (rc = ch_buf_addc(hdr, '\n')) < 0)
        return rc;
    r->hoff = at;
    r->hlen = hdr->len - at;
    if (prev != NULL && prev->hlen == r->hlen &&
        memcmp(hdr->data + prev->hoff, hdr->data + at, r->hlen) == 0) {
        hdr->len = at; /* the same columns as the record before: keep one copy */
        r->hoff = prev->hoff;
    }
    for (uint32_t i = 0; i < ev->raw_count; i++) {
        if (i)
            ch_buf_addc(text, ' ');
        ch_buf_add(text, ev->raw_values[i].p, ev->raw_values[i].n);
    }
    return 0;
}

static int sort_entry(ch_merge *m, size_t idx)
{
    ch_input *in = NULL;
    const ch_source_type *type = NULL;
    ch_stream *st = NULL;
    /* The real diag: this pass is the one that reads, reports and counts the file. */
    const ch_source_type *known = m->e[idx].peek_type ? m->e[idx].peek_type : m->forced;
    if (!ch_source_open_path(m->e[idx].path, known, m->diag, true, CH_INPUT_DEFAULT_MAX_WINDOW, &in,
                             &type, &st)) {
        m->e[idx].done = true;
        return 0;
    }
    ch_buf text, hdr;
    ch_buf_init(&text, 0);
    ch_buf_init(&hdr, 0); /* header lines: one per change of columns, counted in sort_mem */
    srec *recs = NULL;
    size_t n = 0, cap = 0;
    bool disk = false;
    int rc = 0;
    ch_event ev;
    while (rc >= 0 && type->next(st, &ev) == 1) {
        if (n == cap) {
            srec *nr = ch_grow(recs, &cap, 1024, sizeof *nr);
            if (nr == NULL) {
                rc = CH_ENOMEM;
                break;
            }
            recs = nr;
        }
        size_t off = text.len;
        srec *r = &recs[n];
        if ((rc = record_text(&text, &hdr, &ev, r, n > 0 ? &recs[n - 1] : NULL)) < 0)
            break;
        r->ts = ev.ts_ms;
        r->off = off;
        r->len = text.len - off;
        n++;
        if (text.len + hdr.len >= m->sort_mem) {
            disk = true;
            if ((rc = emit_run(m, idx, type, &hdr, &text, recs, n, true)) < 0)
                break;
            n = 0;
            ch_buf_clear(&text);
            ch_buf_clear(&hdr); /* the next record states its header again */
        }
    }
    if (rc >= 0)
        rc = emit_run(m, idx, type, &hdr, &text, recs, n, disk);
    m->diag->by_ds[type->dataset].bytes += ch_input_bytes(in);
    type->close(st);
    ch_input_close(in);
    ch_buf_free(&text);
    ch_buf_free(&hdr);
    ch_free(recs);
    m->e[idx].done = true; /* its runs stand in for it */
    m->stats.sorted_files++;
    if (disk)
        m->stats.sorted_on_disk++;
    return rc == CH_EUSAGE || rc == CH_EIO ? 0 : rc;
}

/* Peek at the first events of an input: its earliest time, and whether it is nearly sorted.
 * Returns 1 with a first time, 0 without (empty, unreadable: reported by the real pass). */
static int peek(ch_merge *m, entry *e, bool *unsorted)
{
    ch_diag scratch;
    ch_diag_init(&scratch, NULL);
    ch_input *in;
    const ch_source_type *type;
    ch_stream *st;
    *unsorted = false;
    /* A small window: the peek needs the first records, not the first MiB (inflating a
     * whole S3 object twice doubled the cost of gzip'd inputs). */
    if (!ch_source_open_path(e->path, m->forced, &scratch, false, PEEK_WINDOW, &in, &type, &st))
        return -1;
    e->peek_type = type;
    e->peek_gzip = ch_input_is_gzip(in);
    ch_event ev;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    int k = 0;
    for (; k < PEEK_EVENTS && type->next(st, &ev) == 1; k++) {
        if (hi != INT64_MIN && ev.ts_ms < hi - SORTED_SLACK_MS)
            *unsorted = true;
        if (ev.ts_ms > hi)
            hi = ev.ts_ms;
        if (ev.ts_ms < lo)
            lo = ev.ts_ms;
    }
    type->close(st);
    ch_input_close(in);
    e->first_ts = k ? lo : INT64_MIN;
    e->has_first = k > 0;
    return k > 0;
}

void ch_merge_set_sort_memory(ch_merge *m, size_t bytes) { m->sort_mem = bytes ? bytes : 1; }

void ch_merge_set_threads(ch_merge *m, unsigned threads) { m->threads = threads; }

void ch_merge_set_prep(ch_merge *m, const ch_prefetch_prep *prep)
{
    m->has_prep = prep != NULL;
    if (prep != NULL)
        m->prep = *prep;
}

int ch_merge_start(ch_merge *m)
{
    m->started = true;
    size_t n0 = m->n;
    /* First every input's peek and the sorting of unsorted ones (which appends run entries:
     * nothing may hold an entry pointer yet). */
    for (size_t i = 0; i < n0; i++) {
        entry *e = &m->e[i];
        if (strcmp(e->path, "-") == 0)
            continue; /* stdin cannot be read twice: it stays open from the start */
        bool unsorted = false;
        int pk = peek(m, e, &unsorted);
        if (pk < 0) {
            /* Report whole-input problems now, once, through the real diag. */
            ch_input *in;
            const ch_source_type *type;
            ch_stream *st;
            ch_source_open_path(e->path, m->forced, m->diag, true, CH_INPUT_DEFAULT_MAX_WINDOW, &in,
                                &type, &st);
            if (st != NULL) { /* it opened this time: a race with the file system */
                type->close(st);
                ch_input_close(in);
            }
            e->done = true;
            continue;
        }
        if (unsorted) {
            int rc = sort_entry(m, i);
            if (rc < 0)
                return rc;
        }
    }
    /* Workers start after the sorting (which reads on this thread); without them (out of memory,
     * no threads) every stream is read here, with the same result. */
    if (m->threads > 1)
        m->pool = ch_prefetch_pool_new_prep(m->threads - 1, m->has_prep ? &m->prep : NULL);
    m->heap = ch_calloc(m->n ? m->n : 1, sizeof *m->heap);
    m->order = ch_calloc(m->n ? m->n : 1, sizeof *m->order);
    if (m->heap == NULL || m->order == NULL)
        return CH_ENOMEM;
    /* Every input is opened when the merge's time reaches its first event, even when all of
     * them would fit under the cap: opened at once, each held a window (1 MiB decompressed)
     * from the start, so 100 S3 files cost 150 MB and a cold cache for each (issue 14: half
     * the time of a gzip'd run went to faulting those windows in); opened when due, only the
     * files whose times overlap are held. Ties still go to the lower index, so the order of
     * events does not change. */
    for (size_t i = 0; i < m->n; i++) {
        entry *e = &m->e[i];
        if (e->done)
            continue;
        if (strcmp(e->path, "-") == 0) {
            open_and_push(m, e, true);
            continue;
        }
        /* No first event in the peek (empty, or a first record larger than the peek's
         * window): open it first, so that nothing in it can be late; it is opened for real,
         * so its errors are counted. */
        if (!e->has_first)
            e->first_ts = INT64_MIN;
        m->order[m->norder++] = i;
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
        if (entry_next(m, e) == 1) {
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
        if (!e->open && m->nopen >= m->max_open) {
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
    /* The next input to fall due, opened ahead on a worker where it would be opened there
     * anyway: within the cap, so that its opening early makes no input late that would not be
     * (nothing else opens before it). */
    if (m->next_order < m->norder && m->nopen < m->max_open) {
        entry *e = &m->e[m->order[m->next_order]];
        if (!e->open && on_worker(m, e))
            (void)open_early(m, e);
    }
    if (m->nheap == 0)
        return 0;
    entry *e = heap_pop(m);
    if (m->any_yielded && e->evp->ts_ms < m->last_ts)
        m->stats.out_of_order++;
    m->any_yielded = true;
    m->last_ts = e->evp->ts_ms;
    m->last = e;
    *ev = e->evp;
    if (path != NULL)
        *path = e->path;
    return 1;
}

void ch_merge_stats_get(const ch_merge *m, ch_merge_stats *out) { *out = m->stats; }
