/*
 * local.c - the local event store: a directory of segment files beside the SQLite database.
 *
 *     <db>.events/<dataset>-<hour>-<generation>-<seq>.seg
 *
 * hour is hours since the epoch (UTC) of the segment's events, generation the checkpoint
 * generation that wrote it (hex), seq a counter within the generation. The name carries what
 * a search needs to skip a segment without opening it (dataset, hour, generation); the header
 * repeats it under its checksum, and the header is what counts.
 *
 * The committed generation lives in the SQLite state table (see evstore.h for why). Listing
 * the directory is O(segments); with one segment per source and hour and a retention of
 * months that is thousands of names, read once per search.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "core/mem.h"
#include "core/timeparse.h"
#include "ingest/prefetch.h"
#include "offense/store.h"
#include "store/search_int.h"
#include "store/store_int.h"

#define STATE_GEN "evstore_generation"
#define STATE_RETENTION "evstore_retention"
#define STATE_HOT "evstore_hot" /* "on", "off", "raw" or "auto" (see HOT_SEQ); unset: "auto" */
#define MAX_OPEN 64             /* open segments (source x hour) at once */
/* An open segment is sealed once events this many hours newer arrive: logs in time order keep
 * two hours open, not every hour since the last checkpoint (a day of CloudTrail read by one
 * analyze had held 25 open segments, peak RSS growing with the span of the input). Events
 * later than that for a sealed hour open another segment of the hour, as a restart does. */
#define SEAL_BEHIND_HOURS 2
#define SEAL_BYTES ((size_t)48 << 20) /* seal an open segment past this many raw bytes */
#define HOUR_MS 3600000LL
#define WQ_BYTES ((size_t)16 << 20) /* work queued for the writer before add waits */
/* Compaction (see compact_choose): an hour's segments written by successive checkpoints are
 * merged COMPACT_TIER at a time while the hour is open, and all into one once it is closed;
 * one merge takes at most COMPACT_MAX_BYTES of segment files. Compacted segments take
 * sequence numbers from COMPACT_SEQ up, so they never meet a checkpoint's. */
#define COMPACT_TIER 16
/* 16 MiB of segment files is about 85k CloudTrail records: the merge's builder holds their index
 * terms and compressed blocks, some 45 MB, beside a running server, and compact.c their records'
 * bytes to order them (up to 256 MiB). A single generation that passes it is merged whole
 * (compact_pick): serve's checkpoints keep its generations small; an analyze run's hour may hold
 * many times the bound (about 2.5 KB of memory per record, and compact.c's 256 MiB). */
#define COMPACT_MAX_BYTES ((uint64_t)16 << 20)
#define COMPACT_SEQ 0x80000000u
/* Hot segments: `analyze` and `serve` seal their segments cheaply (ch__segb_init_hot: format
 * 3, no dictionaries, zstd level 1: the store's own instructions at 0.23 of the cold writer's,
 * 1.4-1.5x its bytes, docs/BENCHMARKS.md section 53) and compaction rewrites them cold (format 6,
 * full compression) once their hour has closed, in `serve`'s background or by `coinhound store
 * compact`. A hot segment is a checkpoint's segment whose sequence number is HOT_SEQ or more
 * (and below COMPACT_SEQ): every reader, older binaries included, already accepts any
 * sequence, and reads the format from the header, so the mark costs no format change.
 * `store hot raw` seals the same hot segments with every frame stored as zstd raw blocks
 * (ch__segb_init_raw): no compression on the ingest path at 5.7x the level-1 hot bytes until
 * compaction (docs/BENCHMARKS.md section 57). Its full blocks go to the segment's temporary
 * files as they fill (ch__segb_spill), so that it holds the memory a level-1 segment does and
 * the queue counts its bytes as they are (section 60).
 * `store hot auto`, the default, seals raw while the raw bytes it has sealed stay within a
 * budget (raw_budget), and at level 1 after: raw's cheaper ingest for the runs that fit (an hour
 * of a busy account, a day's analyze), without letting a long run that nobody compacts take 8x
 * the gzip'd bytes of disk, or push older events out of a size-bounded retention. */
#define HOT_SEQ 0x40000000u
/* auto's budget: raw hot bytes in the store, at most RAW_BUDGET_MAX, an eighth of the free
 * space of the store's file system and an eighth of a size retention's bound. */
#define RAW_BUDGET_MAX ((uint64_t)4 << 30)
#define COMPACT_BACKOFF 100
#define COMPACT_PER_COMMIT 8 /* merges queued at once (of different hours), one after the other */

/* Work for the writer thread, done in the order given: compress one block, or write one sealed
 * segment (whose earlier blocks the queue has compressed by then). */
typedef struct wjob {
    struct wjob *next;
    ch_seg_block *blk;
    ch_seg_builder *seg; /* owned by the job */
    char path[4400];
    uint64_t gen;
    uint32_t seq;
    size_t cost; /* bytes counted against WQ_BYTES */
    /* a compaction (blk and seg NULL): input paths in order, merged into path */
    char **inputs;
    size_t ninputs;
    uint32_t ds;
    int64_t hour;
} wjob;

/* The writer threads: compression, the index build, write and fsync of sealed segments, all
 * off the pipeline's thread, which keeps state and must not wait for zstd. zstd is most of an
 * ingest's instructions (docs/BENCHMARKS.md section 30), so blocks are compressed by up to
 * one thread per CPU (COINHOUND_STORE_WRITERS overrides): a block depends only on its segment's
 * block 0, so any two other blocks compress at once. Jobs are taken in queue order; a block
 * waits while its block 0 is still in a thread's hands, and a segment's write waits until no
 * job is in hand, so every block before it (its own) is compressed and segments reach the disk
 * in the order they were sealed. The bytes written do not depend on the number of threads.
 * A checkpoint waits for the queue to drain (w_drain) before it records the generation, so a
 * committed generation is still one whose every segment is on disk; a crash with work queued
 * loses only what the checkpoint did not commit, which the inputs or the journal deliver
 * again. */
#define MAX_WRITERS 8
#define MAX_BG 32
typedef struct writer writer;
typedef struct wthread {
    writer *w;
    pthread_t th;
    ZSTD_CCtx *cctx;
} wthread;

struct writer {
    wthread t[MAX_WRITERS];
    unsigned nthreads, started;
    bool stop;
    unsigned busy;        /* compressions and writes in a thread's hands */
    unsigned queued_sync; /* compressions and writes queued (a checkpoint waits for them) */
    /* Compactions queued or in hand (nobody waits for them), by source and hour. An entry
     * stays after its job is done until the pipeline's thread drops it before listing the
     * directory (compact_release): a listing taken before a merge's rename must not choose the
     * same segments again, or both merged segments would be listed. */
    struct {
        uint32_t ds;
        int64_t hour;
        bool done;
    } bgq[MAX_BG];
    unsigned nbg;
    atomic_bool abort_bg; /* closing: compactions stop where they are */
    uint64_t compacted, compact_failed;
    const char *dir; /* the store's directory (compactions sync it) */
    const ch_seg_block *inflight[MAX_WRITERS];
    pthread_mutex_t mu;
    pthread_cond_t work, done, room;
    wjob *head, *tail;
    size_t queued;          /* cost of the queued jobs */
    uint64_t queued_events; /* events of sealed segments not yet written */
    int rc;                 /* the first failure; later jobs are dropped */
    ch_error err;
    bool ready; /* w_init succeeded */
};

typedef struct segname {
    char name[256];
    ch_dataset ds;
    int64_t hour;
    uint64_t gen;
    uint32_t seq;
    bool compacted; /* <ds>-<hour>-<gen>-<seq>-<lo>-<hi>.seg: merged from generations lo..hi */
    uint64_t lo, hi;
    bool hidden; /* a compacted segment holds its records */
    bool hot;    /* sealed hot (HOT_SEQ): compaction rewrites it cold */
} segname;

typedef struct local {
    char dir[4096];
    bool writable;
    uint64_t committed, pending; /* generations */
    uint32_t seq;
    ch_seg_builder open[MAX_OPEN];
    size_t nopen;
    ch_evstore_retention ret;
    ch_evstore_stats counters;
    bool wrote; /* files of the pending generation exist */
    bool hot;   /* seal hot segments (HOT_SEQ); fixed at open */
    /* with hot: bytes the store may still seal raw (frames stored, not compressed): UINT64_MAX
     * for `store hot raw`, raw_budget for auto, 0 for on; each raw seal takes its bytes */
    uint64_t raw_left;
    bool raw_auto;      /* `store hot auto`: raw_left is raw_budget's, renewed at every commit */
    uint32_t spill_seq; /* names the raw segments' temporary files (ch__segb_spill) */
    int lock_fd;        /* the writer's lock on <dir>/LOCK, -1 for readers */
    size_t seal_bytes;
    int64_t newest_hour; /* the latest hour an event was added for; INT64_MIN before any */
    writer w;
    /* days whose segments changed since the last commit: their summaries are refreshed then */
    int64_t *sum_days;
    size_t nsum_days, capsum_days;
    /* segments a compacted one held at the last commit: removed at the next one, so that a
     * search that listed the directory just before has a checkpoint interval to open them */
    segname *doomed;
    size_t ndoomed;
    uint64_t compact_failed_seen;
    uint32_t compact_seq;
    unsigned compact_backoff; /* commits to let pass before the next compaction */
    bool sum_exact;           /* `store compact`: summaries rewritten with no slack */
} local;

int ch_evstore_dir(const char *db_path, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s.events", db_path);
    return n < 0 || (size_t)n >= cap ? CH_ELIMIT : 0;
}

static bool parse_name(const char *name, segname *out)
{
    size_t n = strlen(name);
    if (n < 5 || n >= sizeof out->name || strcmp(name + n - 4, ".seg") != 0)
        return false;
    const char *dash = strchr(name, '-');
    if (dash == NULL)
        return false;
    ch_dataset ds = ch_dataset_from_name(name, (size_t)(dash - name));
    long long hour;
    unsigned long long gen, lo = 0, hi = 0;
    unsigned seq;
    int used = 0, used2 = 0;
    if (sscanf(dash, "-%lld-%llx-%x%n", &hour, &gen, &seq, &used) != 3)
        return false;
    bool compacted = strcmp(dash + used, ".seg") != 0;
    if (compacted &&
        (sscanf(dash + used, "-%llx-%llx.seg%n", &lo, &hi, &used2) != 2 ||
         (size_t)used + (size_t)used2 != strlen(dash) || lo > hi || hi > gen || seq < COMPACT_SEQ))
        return false;
    memcpy(out->name, name, n + 1);
    out->ds = ds;
    out->hour = hour;
    out->gen = gen;
    out->seq = seq;
    out->compacted = compacted;
    out->lo = lo;
    out->hi = hi;
    out->hidden = false;
    out->hot = !compacted && seq >= HOT_SEQ;
    return true;
}

static int seg_cmp(const void *a, const void *b)
{
    const segname *x = a, *y = b;
    if (x->hour != y->hour)
        return x->hour < y->hour ? -1 : 1;
    if (x->gen != y->gen)
        return x->gen < y->gen ? -1 : 1;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return (int)x->ds - (int)y->ds;
}

/* Does compacted segment c hold the records of s (same source and hour, s's generation in c's
 * range, and s older than c: a later compaction that took c in holds c)? */
static bool holds(const segname *c, const segname *s)
{
    if (!c->compacted || c == s || c->ds != s->ds || c->hour != s->hour || s->gen < c->lo ||
        s->gen > c->hi)
        return false;
    return !s->compacted || s->gen < c->gen || (s->gen == c->gen && s->seq < c->seq);
}

/* Mark the segments whose records a committed compacted segment holds (v sorted: an hour's
 * segments are together). */
static void mark_hidden(segname *v, size_t n)
{
    for (size_t a = 0, b; a < n; a = b) {
        for (b = a; b < n && v[b].hour == v[a].hour; b++)
            ;
        for (size_t c = a; c < b; c++)
            for (size_t i = a; v[c].compacted && i < b; i++)
                if (holds(&v[c], &v[i]))
                    v[i].hidden = true;
    }
}

/* The committed segments, oldest hour first, without those a compacted segment holds unless
 * keep_hidden (then marked). Caller frees *out. */
static int list_segments_ex(local *l, bool keep_hidden, segname **out, size_t *n, ch_error *err)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(l->dir);
    if (d == NULL) {
        if (errno == ENOENT)
            return 0;
        return ch_error_set(err, CH_EIO, "%s: %s", l->dir, strerror(errno));
    }
    segname *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        segname s;
        if (!parse_name(de->d_name, &s) || s.gen > l->committed)
            continue;
        if (cnt == cap) {
            segname *nv = ch_grow(v, &cap, 64, sizeof *nv);
            if (nv == NULL) {
                rc = ch_error_set(err, CH_ENOMEM, "out of memory");
                break;
            }
            v = nv;
        }
        v[cnt++] = s;
    }
    closedir(d);
    if (rc < 0) {
        ch_free(v);
        return rc;
    }
    if (cnt)
        qsort(v, cnt, sizeof *v, seg_cmp);
    mark_hidden(v, cnt);
    if (!keep_hidden) {
        size_t k = 0;
        for (size_t i = 0; i < cnt; i++)
            if (!v[i].hidden)
                v[k++] = v[i];
        cnt = k;
    }
    *out = v;
    *n = cnt;
    return 0;
}

static int list_segments(local *l, segname **out, size_t *n, ch_error *err)
{
    return list_segments_ex(l, false, out, n, err);
}

static void path_of(const local *l, const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", l->dir, name);
}

/* Files a crashed run left: temporaries and generations no checkpoint committed. */
static void remove_uncommitted(local *l)
{
    DIR *d = opendir(l->dir);
    if (d == NULL)
        return;
    struct dirent *de;
    char p[4400];
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        segname s;
        bool tmp = n > 8 && strcmp(de->d_name + n - 8, ".seg.tmp") == 0;
        if (tmp || (parse_name(de->d_name, &s) && s.gen > l->committed)) {
            path_of(l, de->d_name, p, sizeof p);
            if (unlink(p) == 0 && !tmp)
                l->counters.uncommitted++;
        }
    }
    closedir(d);
}

static int sync_dir(const char *dir, ch_error *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return ch_error_set(err, CH_EIO, "%s: %s", dir, strerror(e));
    }
    close(fd);
    return 0;
}

/* ---- per-day summaries (summary.c): the hook of the writer and the search ---- */

static void sum_touch(local *l, int64_t hour)
{
    int64_t day = ch__sum_day_of_hour(hour);
    for (size_t i = 0; i < l->nsum_days; i++)
        if (l->sum_days[i] == day)
            return;
    if (l->nsum_days == l->capsum_days) {
        int64_t *nd = ch_grow(l->sum_days, &l->capsum_days, 16, sizeof *nd);
        if (nd == NULL)
            return; /* the day's summary goes stale: searches open what it misses, then rebuild */
        l->sum_days = nd;
    }
    l->sum_days[l->nsum_days++] = day;
}

/* The day of v[a] spans v[a..*b); its inputs (paths allocated) into in. */
static int day_inputs(const local *l, const segname *v, size_t n, size_t a, size_t *b,
                      ch_sum_input **in)
{
    int64_t day = ch__sum_day_of_hour(v[a].hour);
    size_t e = a;
    while (e < n && ch__sum_day_of_hour(v[e].hour) == day)
        e++;
    *b = e;
    *in = ch_calloc(e - a, sizeof **in);
    if (*in == NULL)
        return CH_ENOMEM;
    for (size_t i = a; i < e; i++) {
        size_t len = strlen(l->dir) + strlen(v[i].name) + 2;
        char *p = ch_malloc(len);
        if (p == NULL)
            return CH_ENOMEM;
        snprintf(p, len, "%s/%s", l->dir, v[i].name);
        (*in)[i - a] = (ch_sum_input){v[i].name, p};
    }
    return 0;
}

static void inputs_free(ch_sum_input *in, size_t n)
{
    for (size_t i = 0; in && i < n; i++)
        ch_free((char *)in[i].path);
    ch_free(in);
}

/* After a commit: the summaries of the days that gained or lost segments, from the commit's
 * listing v (visible segments only). Failures leave a stale summary, which is correct (searches
 * open the segments it does not cover). */
static void sum_refresh_touched(local *l, const segname *v, size_t n)
{
    ch_error e = {0};
    int64_t newest = n ? ch__sum_day_of_hour(v[n - 1].hour) : INT64_MIN;
    for (size_t d = 0; d < l->nsum_days; d++) {
        size_t a = 0, b = 0;
        while (a < n && ch__sum_day_of_hour(v[a].hour) < l->sum_days[d])
            a++;
        ch_sum_input *in = NULL;
        if (a < n && ch__sum_day_of_hour(v[a].hour) == l->sum_days[d]) {
            if (day_inputs(l, v, n, a, &b, &in) < 0) {
                inputs_free(in, b - a);
                continue;
            }
        }
        (void)ch__sum_refresh(l->dir, l->sum_days[d], in, b - a,
                              l->sum_days[d] >= newest && !l->sum_exact ? ch__sum_slack() : 0, &e);
        inputs_free(in, b - a);
    }
    l->nsum_days = 0;
}

static void job_free(wjob *j)
{
    if (j->seg) {
        ch__segb_free(j->seg);
        ch_free(j->seg);
    }
    for (size_t i = 0; i < j->ninputs; i++)
        ch_free(j->inputs[i]);
    ch_free(j->inputs);
    ch_free(j);
}

static bool is_compaction(const wjob *j) { return j->blk == NULL && j->seg == NULL; }

/* Merge the compaction's inputs (compact.c orders their records) into one segment at
 * j->path: written under a temporary name, fsynced and renamed by ch__segb_write, and then
 * visible at once, since its generation is committed. A reader lists either the inputs or
 * the result (holds() hides the inputs), never both. Stops when abort is set (closing); a
 * failure (an input gone to retention, a damaged one) leaves the inputs as they were.
 * *events and *bytes (either may be NULL): the merged segment's records and file bytes. */
static int compact_run(const char *dir, wjob *j, ZSTD_CCtx *cctx, atomic_bool *abort,
                       uint64_t *events, uint64_t *bytes, ch_error *err)
{
    ch_seg_builder b;
    ch__segb_init(&b, j->ds, j->hour);
    int rc = ch__compact_merge((const char *const *)j->inputs, j->ninputs, &b, cctx, abort, err);
    if (events != NULL)
        *events = b.nrec;
    if (rc == 0)
        rc = ch__segb_write(&b, j->path, j->gen, j->seq, cctx, bytes, err);
    if (rc == 0)
        rc = sync_dir(dir, err);
    ch__segb_free(&b);
    return rc;
}

/* May a thread take j now? See the writer's note for the two waits. */
static bool job_ready(const writer *w, const wjob *j)
{
    if (is_compaction(j))
        return true; /* reads committed files, writes its own */
    if (j->seg)
        return w->busy == 0;
    for (unsigned i = 0; j->blk->dict && i < w->nthreads; i++)
        if (w->inflight[i] == j->blk->dict)
            return false;
    return true;
}

static void *writer_main(void *arg)
{
    wthread *t = arg;
    writer *w = t->w;
    unsigned me = (unsigned)(t - w->t);
    pthread_setname_np(pthread_self(), "ch-store"); /* for perf, top and /proc */
    /* Every job the pipeline's thread queues wakes a writer, which under the default policy
     * often preempted the thread that woke it on its own CPU: ingest's critical path lost
     * 0.1-0.15 s per 300k records runnable but not running (docs/BENCHMARKS.md section 74).
     * SCHED_BATCH keeps the fair share and only gives up wake-up preemption; unprivileged. A
     * refusal leaves the default, which is slower but correct. */
    struct sched_param sp = {0};
    (void)pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
    pthread_mutex_lock(&w->mu);
    for (;;) {
        wjob *j = w->head;
        if (j == NULL && w->stop)
            break;
        if (j == NULL || !job_ready(w, j)) {
            pthread_cond_wait(&w->work, &w->mu);
            continue;
        }
        w->head = j->next;
        if (w->head == NULL)
            w->tail = NULL;
        bool bg = is_compaction(j);
        if (!bg) {
            w->queued_sync--;
            w->busy++;
            w->inflight[me] = j->blk;
        }
        bool skip = w->rc < 0 || (bg && w->stop);
        pthread_mutex_unlock(&w->mu);
        ch_error e = {0};
        int rc = 0;
        if (!skip && j->blk)
            rc = ch__segb_compress(j->blk, t->cctx, &e);
        else if (!skip && j->seg)
            rc = ch__segb_write(j->seg, j->path, j->gen, j->seq, t->cctx, NULL, &e);
        else if (!skip)
            rc = compact_run(w->dir, j, t->cctx, &w->abort_bg, NULL, NULL, &e);
        uint32_t events = j->seg ? j->seg->nrec : 0, ds = j->ds;
        int64_t hour = j->hour;
        size_t cost = j->cost;
        job_free(j);
        pthread_mutex_lock(&w->mu);
        if (bg) {
            /* A failed compaction leaves the inputs as they were: nothing is lost, and the
             * next commit may try again. */
            for (unsigned q = 0; q < w->nbg; q++)
                if (w->bgq[q].ds == ds && w->bgq[q].hour == hour && !w->bgq[q].done) {
                    w->bgq[q].done = true;
                    break;
                }
            if (!skip && rc < 0)
                w->compact_failed++;
            else if (!skip)
                w->compacted++;
        } else {
            if (rc < 0 && w->rc == 0) {
                w->rc = rc;
                w->err = e;
            }
            w->busy--;
            w->inflight[me] = NULL;
        }
        w->queued -= cost;
        w->queued_events -= events;
        pthread_cond_broadcast(&w->room);
        pthread_cond_broadcast(&w->work); /* a job waiting on this one may go now */
        if (w->queued_sync == 0 && w->busy == 0)
            pthread_cond_broadcast(&w->done);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Threads for compression: one per CPU this process may use (two at least), at most
 * MAX_WRITERS. */
static unsigned writer_threads(void)
{
    const char *v = getenv("COINHOUND_STORE_WRITERS");
    /* Two at least by default, so that a compaction never holds up a checkpoint's work. */
    long n = v && *v ? strtol(v, NULL, 10) : (long)ch_prefetch_cpus();
    if ((v == NULL || *v == '\0') && n < 2)
        n = 2;
    return n < 1 ? 1 : n > MAX_WRITERS ? MAX_WRITERS : (unsigned)n;
}

static int w_init(writer *w, ch_error *err)
{
    w->nthreads = writer_threads();
    for (unsigned i = 0; i < w->nthreads; i++) {
        w->t[i].w = w;
        if ((w->t[i].cctx = ZSTD_createCCtx()) == NULL) {
            while (i-- > 0)
                ZSTD_freeCCtx(w->t[i].cctx);
            return ch_error_set(err, CH_ENOMEM, "out of memory");
        }
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->work, NULL);
    pthread_cond_init(&w->done, NULL);
    pthread_cond_init(&w->room, NULL);
    w->ready = true;
    return 0;
}

/* Queue j (taking it, even on failure); the threads start with the first job. Waits while
 * the queue holds more than WQ_BYTES, so memory stays bounded when zstd is the slower side. */
static int w_push(writer *w, wjob *j, ch_error *err)
{
    pthread_mutex_lock(&w->mu);
    while (w->started < w->nthreads) {
        if (pthread_create(&w->t[w->started].th, NULL, writer_main, &w->t[w->started]) != 0) {
            if (w->started > 0)
                break; /* fewer threads than asked: slower, still correct */
            pthread_mutex_unlock(&w->mu);
            job_free(j);
            return ch_error_set(err, CH_ERR, "cannot start the event store's writer thread");
        }
        w->started++;
    }
    while (w->queued > WQ_BYTES && w->rc == 0)
        pthread_cond_wait(&w->room, &w->mu);
    int rc = w->rc;
    if (rc < 0) {
        *err = w->err;
        pthread_mutex_unlock(&w->mu);
        job_free(j);
        return rc;
    }
    j->next = NULL;
    if (w->tail)
        w->tail->next = j;
    else
        w->head = j;
    w->tail = j;
    w->queued += j->cost;
    w->queued_events += j->seg ? j->seg->nrec : 0;
    if (!is_compaction(j))
        w->queued_sync++;
    pthread_cond_broadcast(&w->work);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

/* Wait until every queued job is done; the writer's first failure, if any. */
static int w_drain(writer *w, ch_error *err)
{
    pthread_mutex_lock(&w->mu);
    while (w->queued_sync || w->busy)
        pthread_cond_wait(&w->done, &w->mu);
    int rc = w->rc;
    if (rc < 0)
        *err = w->err;
    pthread_mutex_unlock(&w->mu);
    return rc;
}

static void w_fini(writer *w)
{
    if (!w->ready)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    atomic_store(&w->abort_bg, true);
    pthread_cond_broadcast(&w->work);
    pthread_mutex_unlock(&w->mu);
    for (unsigned i = 0; i < w->started; i++)
        pthread_join(w->t[i].th, NULL);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->work);
    pthread_cond_destroy(&w->done);
    pthread_cond_destroy(&w->room);
    for (unsigned i = 0; i < w->nthreads; i++)
        ZSTD_freeCCtx(w->t[i].cctx);
    w->ready = false;
}

/* Hand the open segment i to the writer thread, which writes it under the pending generation
 * and frees it. */
static int seal(local *l, size_t i, ch_error *err)
{
    ch_seg_builder *b = &l->open[i];
    int rc = 0;
    if (b->nrec) {
        if (mkdir(l->dir, 0750) < 0 && errno != EEXIST)
            return ch_error_set(err, CH_EIO, "%s: %s", l->dir, strerror(errno));
        wjob *j = ch_calloc(1, sizeof *j);
        ch_seg_builder *own = j ? ch_malloc(sizeof *own) : NULL;
        if (own == NULL) {
            ch_free(j);
            return ch_error_set(err, CH_ENOMEM, "out of memory");
        }
        char name[256];
        snprintf(name, sizeof name, "%s-%" PRId64 "-%016" PRIx64 "-%08" PRIx32 ".seg",
                 ch_dataset_name((ch_dataset)b->dataset), b->hour, l->pending,
                 (l->hot ? HOT_SEQ : 0) + l->seq);
        path_of(l, name, j->path, sizeof j->path);
        j->gen = l->pending;
        j->seq = (l->hot ? HOT_SEQ : 0) + l->seq++;
        *own = *b;
        j->seg = own;
        /* The last block is still raw unless it filled (then it may be in the writer's hands:
         * only cnt, rawlen and origlen, which the writer never changes, are read); the earlier ones
         * wait compressed; the index is built from the term buffers. */
        const ch_seg_block *last = b->blocks[b->nblocks - 1];
        size_t open_last = last->cnt < CH_SEG_BLOCK_RECORDS ? last->rawlen + last->origlen : 0;
        bool raw = ch__segb_is_raw(b);
        if (raw)
            l->raw_left -= b->raw_bytes < l->raw_left ? b->raw_bytes : l->raw_left;
        if (raw && b->sfd < 0)
            j->cost = b->raw_bytes; /* raw blocks held in memory: all of them */
        else /* spilled raw blocks are on disk or in the queue, which counts them as they are */
            j->cost = open_last + (raw ? 0 : b->raw_bytes / 8);
        for (int f = 0; f < CH_IX_NFIELDS; f++)
            j->cost += b->terms[f].len;
        sum_touch(l, own->hour);
        l->open[i] = l->open[--l->nopen];
        l->wrote = true;
        return w_push(&l->w, j, err);
    }
    ch__segb_free(b);
    l->open[i] = l->open[--l->nopen];
    return rc;
}

static int64_t floor_hour(int64_t ts)
{
    int64_t h = ts / HOUR_MS;
    return ts < 0 && ts % HOUR_MS ? h - 1 : h;
}

static int l_add(void *impl, const ch_event *ev, uint64_t rid, ch_error *err)
{
    local *l = impl;
    int64_t hour = floor_hour(ev->ts_ms);
    if (hour > l->newest_hour) {
        l->newest_hour = hour;
        for (size_t k = 0; k < l->nopen;) {
            if (l->open[k].hour > hour - SEAL_BEHIND_HOURS) {
                k++;
                continue;
            }
            int rc = seal(l, k, err); /* moves the last open segment to k */
            if (rc < 0)
                return rc;
        }
    }
    size_t i = 0;
    while (i < l->nopen && !(l->open[i].hour == hour && l->open[i].dataset == ev->dataset))
        i++;
    if (i == l->nopen) {
        if (l->nopen == MAX_OPEN) {
            /* Logs that jump between many hours: the open segment of the oldest hour goes. */
            size_t old = 0;
            for (size_t k = 1; k < l->nopen; k++)
                if (l->open[k].hour < l->open[old].hour)
                    old = k;
            int rc = seal(l, old, err);
            if (rc < 0)
                return rc;
            i = l->nopen;
        }
        if (l->hot && l->raw_left > 0) {
            /* Raw blocks go to the segment's temporary file as they fill (ch__segb_spill): an
             * open or sealed raw segment then holds what a level-1 one does, not its records. */
            ch__segb_init_raw(&l->open[i], ev->dataset, hour);
            char base[4400];
            snprintf(base, sizeof base, "%s/spill-%016" PRIx64 "-%08" PRIx32, l->dir, l->pending,
                     l->spill_seq++);
            /* Without the directory or the name the segment is held in memory until its write
             * (the same bytes; seal() counts them all against WQ_BYTES). */
            if (mkdir(l->dir, 0750) == 0 || errno == EEXIST)
                (void)ch__segb_spill(&l->open[i], base);
        } else if (l->hot)
            ch__segb_init_hot(&l->open[i], ev->dataset, hour);
        else
            ch__segb_init(&l->open[i], ev->dataset, hour);
        l->nopen++;
    }
    ch_seg_builder *b = &l->open[i];
    if (ch__segb_add(b, ev, rid) < 0)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    if (b->raw_bytes >= l->seal_bytes)
        return seal(l, i, err);
    ch_seg_block *full = ch__segb_full(b);
    if (full != NULL) {
        wjob *j = ch_calloc(1, sizeof *j);
        if (j == NULL)
            return ch_error_set(err, CH_ENOMEM, "out of memory");
        j->blk = full;
        j->cost = full->raw.len + full->orig.len;
        return w_push(&l->w, j, err);
    }
    return 0;
}

/* Retire what is too old or over the size budget from the commit's listing v (held segments
 * too: they take disk space, and a merged segment retired before what it holds would let those
 * reappear until the next pass), removing the retired entries from v. */
static void retain(local *l, int64_t now_ms, segname *v, size_t *n)
{
    if (l->ret.max_age_ms <= 0 && l->ret.max_bytes == 0)
        return;
    char p[4400];
    uint64_t total = 0;
    uint64_t *sz = *n ? ch_calloc(*n, sizeof *sz) : NULL;
    if (sz == NULL)
        return; /* retention is retried at the next checkpoint */
    for (size_t i = 0; i < *n; i++) {
        struct stat st;
        path_of(l, v[i].name, p, sizeof p);
        sz[i] = stat(p, &st) == 0 ? (uint64_t)st.st_size : 0;
        total += sz[i];
    }
    size_t k = 0;
    for (size_t i = 0; i < *n; i++) {
        bool old = l->ret.max_age_ms > 0 && (v[i].hour + 1) * HOUR_MS <= now_ms - l->ret.max_age_ms;
        bool big = l->ret.max_bytes && total > l->ret.max_bytes;
        path_of(l, v[i].name, p, sizeof p);
        if ((old || big) && unlink(p) == 0) {
            total -= sz[i];
            l->counters.retired += !v[i].hidden;
            sum_touch(l, v[i].hour);
            continue;
        }
        v[k++] = v[i];
    }
    ch_free(sz);
    if (k != *n) { /* what a retired merged segment held is visible again */
        *n = k;
        for (size_t i = 0; i < k; i++)
            v[i].hidden = false;
        mark_hidden(v, k);
    }
}

static int l_seal(void *impl, ch_error *err)
{
    local *l = impl;
    int rc = 0;
    while (l->nopen && rc == 0)
        rc = seal(l, l->nopen - 1, err);
    return rc;
}

static int l_flush(void *impl, ch_store *db, int64_t now_ms, ch_error *err)
{
    local *l = impl;
    int rc = l_seal(impl, err);
    if (rc < 0)
        return rc;
    if (!l->wrote)
        return 0;
    /* Acknowledge only what is on disk: every segment of the generation is written and
     * fsynced before the generation is recorded. */
    if ((rc = w_drain(&l->w, err)) < 0 || (rc = sync_dir(l->dir, err)) < 0)
        return rc;
    char g[32];
    snprintf(g, sizeof g, "%" PRIu64, l->pending);
    if ((rc = ch_store_put_state(db, STATE_GEN, g, strlen(g), now_ms, err)) < 0)
        return rc;
    return 0;
}

/* Remove what compacted segments held at the last commit (and from the listing v), and
 * remember what they hold now. */
static void compact_cleanup(local *l, segname *v, size_t *n)
{
    char p[4400];
    for (size_t i = 0; i < l->ndoomed; i++) {
        path_of(l, l->doomed[i].name, p, sizeof p);
        if (unlink(p) != 0)
            continue;
        sum_touch(l, l->doomed[i].hour);
        for (size_t k = 0; k < *n; k++)
            if (strcmp(v[k].name, l->doomed[i].name) == 0) {
                memmove(&v[k], &v[k + 1], (*n - k - 1) * sizeof *v);
                (*n)--;
                break;
            }
    }
    l->ndoomed = 0;
    size_t k = 0;
    for (size_t i = 0; i < *n; i++)
        k += v[i].hidden;
    segname *nd = k ? ch_realloc(l->doomed, k * sizeof *nd) : l->doomed;
    if (nd == NULL)
        return; /* removed by a later commit, or by the next process */
    l->doomed = nd;
    for (size_t i = 0; i < *n; i++)
        if (v[i].hidden)
            l->doomed[l->ndoomed++] = v[i];
}

/* The merge of v[pick[0..np)] (one source and hour, in generation order) into one segment
 * named for the committed generation and the generations it takes in; NULL when out of
 * memory. */
static wjob *compact_job(local *l, const segname *v, const size_t *pick, size_t np)
{
    wjob *j = ch_calloc(1, sizeof *j);
    if (j == NULL || (j->inputs = ch_calloc(np, sizeof *j->inputs)) == NULL) {
        ch_free(j);
        return NULL;
    }
    uint64_t lo = UINT64_MAX, hi = 0;
    for (size_t i = 0; i < np; i++) {
        const segname *s = &v[pick[i]];
        uint64_t slo = s->compacted ? s->lo : s->gen;
        lo = slo < lo ? slo : lo;
        hi = s->gen > hi ? s->gen : hi;
        char p[4400];
        path_of(l, s->name, p, sizeof p);
        if ((j->inputs[i] = ch_malloc(strlen(p) + 1)) == NULL) {
            job_free(j);
            return NULL;
        }
        memcpy(j->inputs[i], p, strlen(p) + 1);
        j->ninputs++;
    }
    uint32_t seq = l->compact_seq++;
    j->ds = v[pick[0]].ds;
    j->hour = v[pick[0]].hour;
    j->gen = l->committed;
    j->seq = seq;
    char name[256];
    snprintf(name, sizeof name,
             "%s-%" PRId64 "-%016" PRIx64 "-%08" PRIx32 "-%016" PRIx64 "-%016" PRIx64 ".seg",
             ch_dataset_name((ch_dataset)j->ds), j->hour, j->gen, j->seq, lo, hi);
    path_of(l, name, j->path, sizeof j->path);
    return j;
}

/* Queue that merge for the writer threads (nobody waits for it). */
static void compact_queue(local *l, const segname *v, const size_t *pick, size_t np)
{
    wjob *j = compact_job(l, v, pick, np);
    if (j == NULL)
        return;
    pthread_mutex_lock(&l->w.mu);
    unsigned q = l->w.nbg++;
    l->w.bgq[q].ds = j->ds;
    l->w.bgq[q].hour = j->hour;
    l->w.bgq[q].done = false;
    pthread_mutex_unlock(&l->w.mu);
    ch_error e = {0};
    if (w_push(&l->w, j, &e) < 0) { /* it took j; no compaction this time */
        pthread_mutex_lock(&l->w.mu);
        l->w.bgq[q].done = true;
        pthread_mutex_unlock(&l->w.mu);
    }
}

/* Drop the finished compactions' entries: called before listing the directory, which then
 * shows their results. */
static void compact_release(writer *w)
{
    pthread_mutex_lock(&w->mu);
    unsigned k = 0;
    for (unsigned q = 0; q < w->nbg; q++)
        if (!w->bgq[q].done)
            w->bgq[k++] = w->bgq[q];
    w->nbg = k;
    pthread_mutex_unlock(&w->mu);
}

/* Is a compaction of this source and hour queued, in hand, or done since the listing? */
static bool compact_pending(writer *w, uint32_t ds, int64_t hour)
{
    bool found = false;
    pthread_mutex_lock(&w->mu);
    for (unsigned q = 0; q < w->nbg && !found; q++)
        found = w->bgq[q].ds == ds && w->bgq[q].hour == hour;
    pthread_mutex_unlock(&w->mu);
    return found;
}

/* The merge to make of source ds in the hour v[a..b) (v sorted), into pick[]: its count, 0 for
 * none. An open hour merges the segments written since its last compaction once there are
 * COMPACT_TIER of them; a closed one (or any with force: `store compact`) merges all of them
 * once there are two, or from its first hot segment on once it has one (a hot segment alone is
 * rewritten cold). In generation order, up to COMPACT_MAX_BYTES, ending at a generation's end: a
 * compacted segment's range hides every segment of its generations, so it must hold them all. */
static size_t compact_pick(local *l, const segname *v, size_t a, size_t b, int ds, bool force,
                           size_t *pick)
{
    uint64_t after = 0; /* the tier: what came after the hour's last compaction */
    uint64_t last = 0, first_hot = UINT64_MAX;
    size_t np = 0, all = 0, fresh = 0;
    for (size_t i = a; i < b; i++) {
        if ((int)v[i].ds != ds)
            continue;
        all++;
        last = v[i].gen > last ? v[i].gen : last;
        if (v[i].compacted && v[i].gen + 1 > after)
            after = v[i].gen + 1;
        if (v[i].hot && v[i].gen < first_hot)
            first_hot = v[i].gen;
    }
    for (size_t i = a; i < b; i++)
        fresh += (int)v[i].ds == ds && v[i].gen >= after;
    bool closed =
        force || (l->newest_hour != INT64_MIN && v[a].hour <= l->newest_hour - SEAL_BEHIND_HOURS &&
                  last + 2 <= l->committed);
    bool hot = closed && first_hot != UINT64_MAX;
    closed = closed && (all >= 2 || hot);
    if (!closed && fresh < COMPACT_TIER)
        return 0;
    /* With a hot segment, the cold ones of older generations stay as they are: a closed hour
     * whose cold segments already fill COMPACT_MAX_BYTES would otherwise never take its hot
     * ones. The merge must not name a generation it does not hold, so from goes down to the
     * oldest generation that a compacted segment it takes holds. */
    uint64_t from = hot ? first_hot : closed ? 0 : after;
    for (bool again = hot; again;) {
        again = false;
        for (size_t i = a; i < b; i++)
            if ((int)v[i].ds == ds && v[i].compacted && v[i].gen >= from && v[i].lo < from) {
                from = v[i].lo;
                again = true;
            }
    }
    uint64_t bytes = 0;
    size_t gen_start = 0;
    bool picked_hot = false, whole = false;
    char p[4400];
    for (size_t i = a; i < b; i++) {
        if ((int)v[i].ds != ds || v[i].gen < from)
            continue;
        if (np && v[pick[np - 1]].gen != v[i].gen) {
            if (whole)
                break;
            gen_start = np;
        }
        struct stat st;
        path_of(l, v[i].name, p, sizeof p);
        bytes += stat(p, &st) == 0 ? (uint64_t)st.st_size : 0;
        if (bytes > COMPACT_MAX_BYTES && np > 0 && !whole) {
            /* A merged segment names the generations it holds, so a generation is merged
             * whole or not at all. One that alone passes the bound is taken whole, past it:
             * else it would never be merged. That is an analyze run (one generation) whose
             * hour sealed several 48 MiB segments: 10M CloudTrail records in a day are 15
             * an hour, which stayed hot, at 3.2x the bytes of the gzip'd S3 files. */
            if (gen_start > 0) {
                np = gen_start;
                break;
            }
            whole = true;
        }
        pick[np++] = i;
    }
    for (size_t i = 0; i < np; i++)
        picked_hot |= v[pick[i]].hot;
    return np >= 2 || (np == 1 && picked_hot) ? np : 0;
}

/* The sources of the hour v[a..b) in the order their first segment is listed (generation,
 * then sequence), into order[]; their count. Merges are numbered in this order, so that a
 * listing shows the merged segments of an hour in the order it showed what they hold, and a
 * search returns events of equal times in the same order before and after. */
static int hour_sources(const segname *v, size_t a, size_t b, int order[CH_DS__COUNT])
{
    int k = 0;
    bool seen[CH_DS__COUNT] = {false};
    for (size_t i = a; i < b; i++)
        if (!seen[v[i].ds]) {
            seen[v[i].ds] = true;
            order[k++] = (int)v[i].ds;
        }
    return k;
}

/* Choose merges (at most COMPACT_PER_COMMIT, as a server that goes quiet commits no more, and
 * none of a source and hour whose merge is pending), by compact_pick: a source and hour is
 * closed SEAL_BEHIND_HOURS behind the newest event this process has added, and written by
 * neither of the last two checkpoints (so that a trickle of late events does not rewrite its
 * hour at every checkpoint). `serve` seals every open segment at each checkpoint, so an hour
 * of its events arrives as hundreds of small segments, and each search and day summary would
 * pay for every one; merging COMPACT_TIER at a time and once more when the hour closes writes
 * each record about twice. Hot segments are rewritten cold once their hour has closed. */
static void compact_choose(local *l, const segname *v, size_t n)
{
    pthread_mutex_lock(&l->w.mu);
    bool busy = l->w.stop || l->w.nbg + 1 >= MAX_BG;
    uint64_t failed = l->w.compact_failed;
    pthread_mutex_unlock(&l->w.mu);
    if (failed != l->compact_failed_seen) {
        /* An input that cannot be read (damaged: `store verify` names it) would fail again at
         * every commit: wait a while before the next try. */
        l->compact_failed_seen = failed;
        l->compact_backoff = COMPACT_BACKOFF;
    }
    if (l->compact_backoff > 0) {
        l->compact_backoff--;
        return;
    }
    const char *off = getenv("COINHOUND_STORE_COMPACT"); /* 0: never (benchmarks compare) */
    if (busy || n < 1 || (off != NULL && strcmp(off, "0") == 0))
        return;
    size_t *pick = ch_malloc(n * sizeof *pick);
    if (pick == NULL)
        return;
    int queued = 0;
    for (size_t a = 0, b; a < n; a = b) {
        for (b = a; b < n && v[b].hour == v[a].hour; b++)
            ;
        int order[CH_DS__COUNT], nds = hour_sources(v, a, b, order);
        for (int o = 0; o < nds; o++) {
            int ds = order[o];
            if (compact_pending(&l->w, (uint32_t)ds, v[a].hour))
                continue;
            size_t np = compact_pick(l, v, a, b, ds, false, pick);
            if (np == 0)
                continue;
            compact_queue(l, v, pick, np);
            if (++queued == COMPACT_PER_COMMIT || l->w.nbg + 1 >= MAX_BG) {
                ch_free(pick);
                return;
            }
        }
    }
    ch_free(pick);
}

/* A sequence number above every compacted one of the committed generation in the listing. */
static void compact_seq_init(local *l, const segname *v, size_t n)
{
    l->compact_seq = COMPACT_SEQ;
    for (size_t i = 0; i < n; i++)
        if (v[i].compacted && v[i].gen == l->committed && v[i].seq >= l->compact_seq)
            l->compact_seq = v[i].seq + 1;
}

/* auto's raw budget: RAW_BUDGET_MAX, an eighth of the free space under the store and an eighth
 * of a size retention's bound, whichever is least, less the hot segments of the listing v
 * (uncompacted hot bytes of earlier runs and of this one count, raw or not). Taken at open and
 * again after every commit, so that compaction (serve's, each hour) gives back what it rewrote
 * cold, and a run that outgrows it seals the rest at level 1. COINHOUND_STORE_RAW_BUDGET (bytes)
 * replaces the bound for tests, which need a run to cross it. */
static uint64_t raw_budget(const local *l, const segname *v, size_t n)
{
    uint64_t cap = RAW_BUDGET_MAX;
    const char *knob = getenv("COINHOUND_STORE_RAW_BUDGET");
    struct statvfs fs;
    if (knob != NULL && *knob)
        cap = strtoull(knob, NULL, 10);
    else if (statvfs(l->dir, &fs) == 0 && (uint64_t)fs.f_bavail * fs.f_frsize / 8 < cap)
        cap = (uint64_t)fs.f_bavail * fs.f_frsize / 8;
    if (l->ret.max_bytes && l->ret.max_bytes / 8 < cap)
        cap = l->ret.max_bytes / 8;
    char p[4400];
    for (size_t i = 0; i < n && cap; i++) {
        struct stat st;
        path_of(l, v[i].name, p, sizeof p);
        if (v[i].hot && stat(p, &st) == 0)
            cap -= (uint64_t)st.st_size < cap ? (uint64_t)st.st_size : cap;
    }
    return cap;
}

/* After a commit, on one listing of the directory, in this order: retention, then the
 * removal of what merged segments held, the choice of new merges, and the day summaries of
 * what changed. */
static void l_committed(void *impl)
{
    local *l = impl;
    if (l->wrote) {
        l->committed = l->pending++;
        l->seq = 0;
        l->wrote = false;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    bool retaining = l->ret.max_age_ms > 0 || l->ret.max_bytes != 0;
    if (!l->writable && !retaining && l->nsum_days == 0)
        return;
    if (l->writable)
        compact_release(&l->w); /* before listing: finished merges then show their results */
    segname *v = NULL;
    size_t n = 0;
    ch_error e = {0};
    if (list_segments_ex(l, true, &v, &n, &e) < 0)
        return; /* retention, merges and summaries are retried at the next commit */
    retain(l, now, v, &n);
    if (l->writable) {
        compact_seq_init(l, v, n);
        compact_cleanup(l, v, &n);
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!v[i].hidden)
            v[k++] = v[i];
    if (l->writable)
        compact_choose(l, v, k);
    if (l->raw_auto)
        l->raw_left = raw_budget(l, v, k);
    sum_refresh_touched(l, v, k);
    ch_free(v);
}

static void src_init(ch_evstore_source_stats *s)
{
    memset(s, 0, sizeof *s);
    s->min_ts = INT64_MAX;
    s->max_ts = INT64_MIN;
}

static int l_stats(void *impl, ch_evstore_stats *out, ch_error *err)
{
    local *l = impl;
    memset(out, 0, sizeof *out);
    for (int d = 0; d < CH_DS__COUNT; d++)
        src_init(&out->by_ds[d]);
    out->retired = l->counters.retired;
    out->uncommitted = l->counters.uncommitted;
    for (size_t i = 0; i < l->nopen; i++)
        out->open_events += l->open[i].nrec;
    if (l->w.ready) {
        pthread_mutex_lock(&l->w.mu);
        out->open_events += l->w.queued_events;
        pthread_mutex_unlock(&l->w.mu);
    }
    segname *v;
    size_t n;
    int rc = list_segments(l, &v, &n, err);
    if (rc < 0)
        return rc;
    char p[4400];
    for (size_t i = 0; i < n; i++) {
        ch_seg *s = NULL;
        ch_error e = {0};
        path_of(l, v[i].name, p, sizeof p);
        if (ch__seg_open(p, &s, &e) < 0) {
            out->damaged++;
            continue;
        }
        const ch_seg_meta *m = ch__seg_meta(s);
        ch_evstore_source_stats *st = &out->by_ds[m->dataset];
        st->events += m->nrec;
        st->bytes += m->file_bytes;
        st->raw_bytes += m->raw_bytes;
        st->segments++;
        if (v[i].hot) {
            st->hot_segments++;
            st->hot_bytes += m->file_bytes;
        }
        if (m->nrec && m->min_ts < st->min_ts)
            st->min_ts = m->min_ts;
        if (m->nrec && m->max_ts > st->max_ts)
            st->max_ts = m->max_ts;
        ch__seg_close(s);
    }
    ch_free(v);
    return 0;
}

static long l_verify(void *impl, ch_evstore_verify_fn fn, void *ud, ch_error *err)
{
    local *l = impl;
    segname *v;
    size_t n;
    int rc = list_segments(l, &v, &n, err);
    if (rc < 0)
        return rc;
    long bad = 0;
    char p[4400];
    for (size_t i = 0; i < n; i++) {
        ch_seg *s = NULL;
        ch_error e = {0};
        path_of(l, v[i].name, p, sizeof p);
        int r = ch__seg_open(p, &s, &e);
        uint64_t nrec = s ? ch__seg_meta(s)->nrec : 0;
        if (r == 0 && (r = ch__seg_verify(s, &e)) == 0 &&
            (ch__seg_meta(s)->dataset != (uint32_t)v[i].ds || ch__seg_meta(s)->gen != v[i].gen)) {
            r = ch_error_set(&e, CH_EPARSE, "header does not match the file name");
        }
        if (r < 0)
            bad++;
        if (fn)
            fn(ud, p, nrec, r < 0 ? e.msg : NULL);
        ch__seg_close(s);
    }
    /* Each day's summary: its frames, and that it records the terms of the segments it covers.
     * A missing one is not damage (the next checkpoint or search writes it). */
    for (size_t a = 0, b = 0; a < n; a = b) {
        ch_sum_input *in = NULL;
        int64_t day = ch__sum_day_of_hour(v[a].hour);
        b = a + 1;
        if (day_inputs(l, v, n, a, &b, &in) == 0 && ch__sum_path(l->dir, day, p, sizeof p) == 0) {
            ch_sum *sm = NULL;
            ch_error e = {0};
            int r = ch__sum_open(p, &sm, &e);
            if (r == 0)
                r = ch__sum_verify(sm, in, b - a, &e);
            if (r != CH_ENOTFOUND) {
                uint64_t ev = 0;
                for (uint32_t k = 0; sm && k < ch__sum_nseg(sm); k++)
                    ev += ch__sum_seg(sm, k)->nrec;
                if (r < 0)
                    bad++;
                if (fn)
                    fn(ud, p, ev, r < 0 ? e.msg : NULL);
            }
            ch__sum_close(sm);
        }
        inputs_free(in, b - a);
    }
    ch_free(v);
    return bad;
}

/* One search's reading of the segments: a cursor over them in reading order (newest first
 * unless --sort asc), handed out under a lock to as many threads as the search asks for. The
 * day summaries are planned by whichever thread enters the day, under the same lock. */
typedef struct lsearch {
    local *l;
    ch_search *sr; /* the root */
    segname *v;
    size_t n;
    int64_t from, to;
    bool desc;
    bool *skip; /* per segment: its day's summary rules it out */
    int64_t pday, newest_day;
    size_t k;    /* the next place in reading order */
    bool shards; /* more than one thread: text goes to per-segment slots */
    /* Segments handed out so far: the next one's place in reading order (its kept matches'
     * order among equal times). With shards, slot i holds what was said before and while the
     * i-th segment handed out was read (the store's skips and day plans, then the segment's own
     * lines), so that --explain reads in the one-thread order. */
    ch_search_text *slots;
    size_t nslots;
    atomic_bool stop; /* a shard found that no later segment can improve the matches kept */
    pthread_mutex_t mu;
    int rc;
    ch_error err;
} lsearch;

static bool in_range(const lsearch *x, size_t i)
{
    return (x->v[i].hour + 1) * HOUR_MS > x->from && x->v[i].hour * HOUR_MS <= x->to;
}

/* Should w stop before segment i's hour (ch__search_done over the hour's bounds)? */
static bool hour_done(const lsearch *x, ch_search *w, size_t i)
{
    return ch__search_done(w, x->v[i].hour * HOUR_MS, (x->v[i].hour + 1) * HOUR_MS - 1);
}

/* fn(arg) for the n items of args (each size bytes): items 1..n-1 on threads of their own, item
 * 0 on the calling thread, then the threads joined. A thread that cannot start leaves its
 * item undone: the callers' items take work from a shared queue, so the others do it. */
static void on_threads(unsigned n, void *(*fn)(void *), void *args, size_t size)
{
    pthread_t th[MAX_WRITERS > CH_SEARCH_MAX_THREADS ? MAX_WRITERS : CH_SEARCH_MAX_THREADS];
    unsigned started = 0;
    if (n == 0)
        return;
    for (unsigned t = 1; t < n && t < sizeof th / sizeof *th; t++) {
        if (pthread_create(&th[t], NULL, fn, (char *)args + (size_t)t * size) != 0)
            break;
        started++;
    }
    fn(args);
    for (unsigned t = 1; t <= started; t++)
        pthread_join(th[t], NULL);
}

/* The next segment to read: its index and its slot; false at the end. */
static bool ls_next(lsearch *x, size_t *out, size_t *slot, char *p, size_t cap)
{
    bool found = false;
    pthread_mutex_lock(&x->mu);
    if (x->shards)
        ch__search_text_swap(x->sr, &x->slots[x->nslots]);
    while (x->k < x->n && x->rc == 0 && !atomic_load(&x->stop)) {
        size_t i = x->desc ? x->n - 1 - x->k : x->k;
        x->k++;
        if (!in_range(x, i))
            continue;
        /* The root itself keeps matches only when it reads alone. */
        if (hour_done(x, x->sr, i)) {
            x->k = x->n;
            break;
        }
        path_of(x->l, x->v[i].name, p, cap);
        if (ch__sum_day_of_hour(x->v[i].hour) != x->pday) {
            /* Entering a day: its summary says which of its segments cannot match. */
            x->pday = ch__sum_day_of_hour(x->v[i].hour);
            size_t a = i, b = i;
            while (a > 0 && ch__sum_day_of_hour(x->v[a - 1].hour) == x->pday)
                a--;
            ch_sum_input *in = NULL;
            int rc;
            if (day_inputs(x->l, x->v, x->n, a, &b, &in) < 0)
                rc = ch_error_set(&x->err, CH_ENOMEM, "out of memory");
            else
                rc = ch__sum_plan_day(x->l->dir, x->pday, in, b - a,
                                      x->pday >= x->newest_day ? ch__sum_slack() : 0, x->sr,
                                      x->skip + a, &x->err);
            inputs_free(in, b - a);
            if (rc < 0) {
                x->rc = rc;
                break;
            }
        }
        if (x->skip[i]) {
            ch__search_skip(x->sr, p,
                            "the day's summary rules out every term (segment not opened)");
            continue;
        }
        *out = i;
        *slot = x->nslots;
        found = true;
        break;
    }
    if (x->shards)
        ch__search_text_swap(x->sr, &x->slots[x->nslots]);
    if (found)
        x->nslots++; /* with shards, the segment's own lines follow in the same slot */
    pthread_mutex_unlock(&x->mu);
    return found;
}

static void ls_fail(lsearch *x, int rc, const ch_error *e)
{
    pthread_mutex_lock(&x->mu);
    if (x->rc == 0) {
        x->rc = rc;
        x->err = *e;
    }
    atomic_store(&x->stop, true);
    pthread_mutex_unlock(&x->mu);
}

/* Read segments until none is left; w is a shard, or the root when it reads alone. */
static void ls_read(lsearch *x, ch_search *w)
{
    char p[4400];
    size_t i, slot;
    while (ls_next(x, &i, &slot, p, sizeof p)) {
        if (x->shards)
            ch__search_text_swap(w, &x->slots[slot]);
        ch__search_shard_begin(w, slot);
        ch_seg *s = NULL;
        ch_error e = {0};
        int rc = 0;
        if (x->shards && hour_done(x, w, i)) {
            /* Segments come in time order: no later one can improve what this shard keeps,
             * so none can improve the merged matches either. */
            atomic_store(&x->stop, true);
        } else if (ch__seg_open(p, &s, &e) < 0) {
            ch__search_damaged(w, p, e.msg);
        } else {
            /* The hour ruled nothing out; the segment's own time bounds (its header) may. */
            const ch_seg_meta *m = ch__seg_meta(s);
            if (ch__search_cannot_improve(w, m->min_ts, m->max_ts))
                ch__search_skip(w, p,
                                "its time range cannot improve the matches kept (header read)");
            else
                rc = ch__search_segment(w, s, p, &e);
            ch__seg_close(s);
        }
        if (x->shards) {
            ch__search_text_swap(w, &x->slots[slot]);
            pthread_mutex_lock(&x->mu);
            if (rc == 0)
                rc = ch__search_shard_give(x->sr, w, &e);
            pthread_mutex_unlock(&x->mu);
        }
        if (rc < 0)
            ls_fail(x, rc, &e);
    }
}

typedef struct ls_thread {
    lsearch *x;
    ch_search *w;
} ls_thread;

static void *ls_main(void *arg)
{
    ls_thread *t = arg;
    ls_read(t->x, t->w);
    return NULL;
}

static int l_search(void *impl, ch_search *sr, ch_error *err)
{
    lsearch x = {.l = impl, .sr = sr, .pday = INT64_MIN, .newest_day = INT64_MIN};
    int rc = list_segments(x.l, &x.v, &x.n, err);
    if (rc < 0)
        return rc;
    ch__search_range(sr, &x.from, &x.to, &x.desc);
    size_t total = 0;
    for (size_t i = 0; i < x.n; i++)
        total += in_range(&x, i);
    ch__search_add_total(sr, total);
    if (x.n)
        x.newest_day = ch__sum_day_of_hour(x.v[x.n - 1].hour);
    unsigned nt = ch__search_threads(sr);
    if (nt > total)
        nt = total ? (unsigned)total : 1;
    x.shards = nt > 1;
    pthread_mutex_init(&x.mu, NULL);
    ch_search *w[CH_SEARCH_MAX_THREADS] = {0};
    x.skip = x.n ? ch_calloc(x.n, sizeof *x.skip) : NULL;
    if (x.n && x.skip == NULL)
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
    if (rc == 0 && x.shards) {
        /* A slot per segment that can be handed out, and one for what follows the last. */
        x.slots = ch_calloc(total + 1, sizeof *x.slots);
        if (x.slots == NULL)
            rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        for (size_t i = 0; x.slots && i <= total; i++)
            ch__search_text_init(&x.slots[i]);
        for (unsigned t = 0; t < nt && rc == 0; t++)
            rc = ch__search_shard_new(sr, nt, &w[t], err);
    }
    if (rc == 0 && !x.shards) {
        ls_read(&x, sr);
    } else if (rc == 0) {
        /* The calling thread reads too, as shard 0; fewer threads read the same answer. */
        ls_thread ta[CH_SEARCH_MAX_THREADS];
        for (unsigned t = 0; t < nt; t++)
            ta[t] = (ls_thread){&x, w[t]};
        on_threads(nt, ls_main, ta, sizeof *ta);
    }
    if (rc == 0 && x.rc < 0) {
        rc = x.rc;
        *err = x.err;
    }
    for (unsigned t = 0; t < nt; t++) {
        if (w[t] && rc == 0)
            rc = ch__search_shard_merge(sr, w[t], err);
        ch_search_free(w[t]);
    }
    /* --explain in the reading order: every slot used, and the one after the last. */
    for (size_t i = 0; x.slots && i <= total; i++)
        ch__search_text_take(sr, &x.slots[i]);
    ch_free(x.slots);
    pthread_mutex_destroy(&x.mu);
    ch_free(x.skip);
    ch_free(x.v);
    return rc;
}

static void l_close(void *impl)
{
    local *l = impl;
    /* Queued work finishes first: its blocks belong to the open segments freed below. What it
     * wrote is of an uncommitted generation unless a checkpoint committed it. */
    w_fini(&l->w);
    for (size_t i = 0; i < l->nopen; i++)
        ch__segb_free(&l->open[i]);
    if (l->lock_fd >= 0)
        close(l->lock_fd);
    ch_free(l->sum_days);
    ch_free(l->doomed);
    ch_free(l);
}

static const ch_evstore_ops local_ops = {
    .name = "local",
    .add = l_add,
    .seal = l_seal,
    .flush = l_flush,
    .committed = l_committed,
    .stats = l_stats,
    .verify = l_verify,
    .search = l_search,
    .close = l_close,
};

int ch_evstore_open_local(ch_store *db, bool writable, const ch_evstore_retention *ret,
                          ch_evstore **out, ch_error *err)
{
    local *l = ch_calloc(1, sizeof *l);
    ch_evstore *s = ch_calloc(1, sizeof *s);
    void *val = NULL;
    size_t vn = 0;
    int rc = 0;
    if (l == NULL || s == NULL) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto fail;
    }
    if (ch_evstore_dir(ch_store_path(db), l->dir, sizeof l->dir) < 0) {
        rc = ch_error_set(err, CH_ELIMIT, "%s: path too long", ch_store_path(db));
        goto fail;
    }
    rc = ch_store_get_state(db, STATE_GEN, &val, &vn, err);
    if (rc == 0) {
        char *end = NULL;
        l->committed = strtoull(val, &end, 10);
        if (end == val || *end != '\0') {
            rc = ch_error_set(err, CH_EPARSE, "%s: bad %s", ch_store_path(db), STATE_GEN);
            goto fail;
        }
    } else if (rc != CH_ENOTFOUND)
        goto fail;
    l->pending = l->committed + 1;
    l->writable = writable;
    l->lock_fd = -1;
    /* Tests make segments small to have a crash land between two seals. */
    const char *sb = getenv("COINHOUND_STORE_SEAL_BYTES");
    l->seal_bytes = sb && atoll(sb) > 0 ? (size_t)atoll(sb) : SEAL_BYTES;
    l->newest_hour = INT64_MIN;
    if (ret)
        l->ret = *ret;
    if (writable) {
        char lp[4400];
        if (mkdir(l->dir, 0750) < 0 && errno != EEXIST) {
            rc = ch_error_set(err, CH_EIO, "%s: %s", l->dir, strerror(errno));
            goto fail;
        }
        path_of(l, "LOCK", lp, sizeof lp);
        l->lock_fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
        if (l->lock_fd < 0) {
            rc = ch_error_set(err, CH_EIO, "%s: %s", lp, strerror(errno));
            goto fail;
        }
        if (flock(l->lock_fd, LOCK_EX | LOCK_NB) < 0) {
            close(l->lock_fd);
            rc = ch_error_set(err, CH_EUSAGE, "%s: another process is writing this event store",
                              l->dir);
            goto fail;
        }
        remove_uncommitted(l);
        l->w.dir = l->dir;
        if ((rc = w_init(&l->w, err)) < 0) {
            close(l->lock_fd);
            goto fail;
        }
    }
    ch_free(val);
    s->ops = &local_ops;
    s->impl = l;
    *out = s;
    return 0;
fail:
    ch_free(val);
    ch_free(l);
    ch_free(s);
    return rc;
}

void ch_evstore_close(ch_evstore *s)
{
    if (s == NULL)
        return;
    s->ops->close(s->impl);
    ch_free(s);
}

int ch_evstore_retention_parse(const char *s, ch_evstore_retention *out, ch_error *err)
{
    memset(out, 0, sizeof *out);
    const char *p = s;
    if (s == NULL || *s == '\0')
        return ch_error_set(err, CH_EPARSE, "empty retention");
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        char part[64];
        if (n == 0 || n >= sizeof part)
            return ch_error_set(err, CH_EPARSE, "retention '%s': bad part at offset %zu", s,
                                (size_t)(p - s));
        memcpy(part, p, n);
        part[n] = '\0';
        char *u = NULL;
        unsigned long long v = strtoull(part, &u, 10);
        static const struct {
            const char *unit;
            uint64_t mul;
        } sizes[] = {{"B", 1},           {"KB", 1000},          {"MB", 1000000},
                     {"GB", 1000000000}, {"TB", 1000000000000}, {"KiB", 1024},
                     {"MiB", 1048576},   {"GiB", 1073741824}};
        bool done = false;
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes && u != part; i++)
            if (strcmp(u, sizes[i].unit) == 0 && v > 0) {
                out->max_bytes = v * sizes[i].mul;
                done = true;
            }
        int64_t ms;
        if (!done && ch_duration_parse(part, n, &ms) && ms > 0) {
            out->max_age_ms = ms;
            done = true;
        }
        if (!done)
            return ch_error_set(err, CH_EPARSE,
                                "retention '%s': '%s' is neither an age (30d) nor a size (10GB)", s,
                                part);
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

int ch_evstore_retention_save(ch_store *db, const char *retention, ch_error *err)
{
    ch_evstore_retention r;
    int rc = 0;
    if (retention[0] && (rc = ch_evstore_retention_parse(retention, &r, err)) < 0)
        return rc;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ch_store_put_state(db, STATE_RETENTION, retention, strlen(retention),
                              (int64_t)ts.tv_sec * 1000, err);
}

int ch_evstore_attach(ch_store *db, const char *retention, ch_evstore **out, char *warn,
                      size_t wcap, ch_error *err)
{
    *out = NULL;
    if (wcap)
        warn[0] = '\0';
    ch_evstore_retention r = {0};
    void *val = NULL;
    size_t vn = 0;
    int rc = 0;
    if (retention != NULL) {
        if ((rc = ch_evstore_retention_save(db, retention, err)) < 0)
            return rc;
    } else if ((rc = ch_store_get_state(db, STATE_RETENTION, &val, &vn, err)) == 0) {
        retention = val;
    } else if (rc != CH_ENOTFOUND) {
        return rc;
    }
    if (retention && retention[0] && (rc = ch_evstore_retention_parse(retention, &r, err)) < 0) {
        ch_free(val);
        return rc;
    }
    ch_free(val);
    const char *hot = "auto";
    if ((rc = ch_evstore_hot_mode(db, &hot, err)) < 0)
        return rc;
    rc = ch_evstore_open_local(db, true, &r, out, err);
    if (rc == CH_EUSAGE) {
        snprintf(warn, wcap, "warning: %s: events of this run are not kept", err->msg);
        return 0;
    }
    if (rc == 0) {
        local *l = (*out)->impl;
        l->hot = strcmp(hot, "off") != 0;
        l->raw_auto = strcmp(hot, "auto") == 0;
        l->raw_left = strcmp(hot, "raw") == 0 ? UINT64_MAX : 0;
        segname *v = NULL;
        size_t n = 0;
        ch_error e = {0};
        /* a store it cannot list seals at level 1 until the first commit lists it */
        if (l->raw_auto && list_segments(l, &v, &n, &e) == 0)
            l->raw_left = raw_budget(l, v, n);
        ch_free(v);
    }
    return rc;
}

static const char *const hot_modes[] = {"auto", "on", "off", "raw"};

/* The mode named by v[0..n) as a static string, NULL for none of them. */
static const char *hot_find(const void *v, size_t n)
{
    for (size_t i = 0; i < sizeof hot_modes / sizeof *hot_modes; i++)
        if (n == strlen(hot_modes[i]) && memcmp(v, hot_modes[i], n) == 0)
            return hot_modes[i];
    return NULL;
}

bool ch_evstore_hot_known(const char *mode) { return hot_find(mode, strlen(mode)) != NULL; }

int ch_evstore_hot_set(ch_store *db, const char *mode, ch_error *err)
{
    if (!ch_evstore_hot_known(mode))
        return ch_error_set(err, CH_EUSAGE, "store hot: '%s' is not auto, on, off or raw", mode);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ch_store_put_state(db, STATE_HOT, mode, strlen(mode), (int64_t)ts.tv_sec * 1000, err);
}

int ch_evstore_hot_mode(ch_store *db, const char **mode, ch_error *err)
{
    void *val = NULL;
    size_t vn = 0;
    *mode = "auto";
    int rc = ch_store_get_state(db, STATE_HOT, &val, &vn, err);
    const char *saved = rc == 0 ? hot_find(val, vn) : NULL;
    if (saved != NULL) /* anything else (a value an older binary never wrote): the default */
        *mode = saved;
    ch_free(val);
    if (rc < 0 && rc != CH_ENOTFOUND)
        return rc;
    /* COINHOUND_STORE_HOT: benchmarks compare on one database. A format, level or dictionary
     * choice of the benchmark knobs (segment.c) is written as asked, hence cold, unless it says
     * otherwise. */
    const char *env = getenv("COINHOUND_STORE_HOT");
    static const char *const knobs[] = {"COINHOUND_STORE_FORMAT", "COINHOUND_STORE_LEVEL",
                                        "COINHOUND_STORE_ORIG_LEVEL", "COINHOUND_STORE_DICT"};
    for (size_t i = 0; (env == NULL || *env == '\0') && i < sizeof knobs / sizeof *knobs; i++)
        if (getenv(knobs[i]) != NULL)
            *mode = "off";
    if (env != NULL && *env)
        *mode = strcmp(env, "0") == 0 || strcmp(env, "off") == 0 ? "off"
                : strcmp(env, "raw") == 0                        ? "raw"
                : strcmp(env, "auto") == 0                       ? "auto"
                                                                 : "on";
    return 0;
}

/* Unlink the segments the listing v marks hidden (a committed compacted segment holds their
 * records), dropping them from v. */
static uint64_t remove_hidden(local *l, segname *v, size_t *n)
{
    char p[4400];
    uint64_t removed = 0;
    size_t k = 0;
    for (size_t i = 0; i < *n; i++) {
        path_of(l, v[i].name, p, sizeof p);
        if (v[i].hidden && unlink(p) == 0) {
            removed++;
            sum_touch(l, v[i].hour);
            continue;
        }
        if (!v[i].hidden)
            v[k++] = v[i];
    }
    *n = k;
    return removed;
}

/* One merge of `store compact`, and what it did. */
typedef struct cmerge {
    wjob *j;
    int64_t hour;
    size_t np;
    uint64_t bytes, hot, events, written;
    int r;
    ch_error e;
} cmerge;

typedef struct cpool {
    local *l;
    cmerge *m;
    size_t n;
    atomic_size_t next;
    atomic_bool never;
} cpool;

typedef struct cworker {
    cpool *p;
    ZSTD_CCtx *cctx;
} cworker;

static void *compact_worker(void *arg)
{
    cworker *w = arg;
    cpool *p = w->p;
    for (size_t i; (i = atomic_fetch_add(&p->next, 1)) < p->n;) {
        cmerge *m = &p->m[i];
        m->r = compact_run(p->l->dir, m->j, w->cctx, &p->never, &m->events, &m->written, &m->e);
    }
    return NULL;
}

/* Run a round's merges on up to one thread per CPU (the writer threads' compression contexts,
 * idle here): merges of different hours share nothing but the directory, and each renames its
 * own file into place. */
static void compact_round(local *l, cmerge *m, size_t n)
{
    cpool p = {.l = l, .m = m, .n = n};
    unsigned nt = ch_prefetch_cpus();
    if (nt > l->w.nthreads)
        nt = l->w.nthreads;
    if (nt > n)
        nt = (unsigned)n;
    if (nt < 1)
        nt = 1;
    cworker w[MAX_WRITERS];
    for (unsigned t = 0; t < nt; t++)
        w[t] = (cworker){&p, l->w.t[t].cctx};
    on_threads(nt, compact_worker, w, sizeof *w); /* fewer threads: the same merges */
}

int ch_evstore_compact(ch_store *db, ch_evstore_compact_result *out, ch_error *err)
{
    memset(out, 0, sizeof *out);
    ch_evstore *es = NULL;
    int rc = ch_evstore_open_local(db, true, NULL, &es, err);
    if (rc < 0 || es == NULL)
        return rc < 0 ? rc : ch_error_set(err, CH_ERR, "event store not opened");
    local *l = es->impl;
    l->sum_exact = true;
    ch_error first = {0};
    segname *v = NULL;
    size_t *pick = NULL;
    cmerge *m = NULL;
    char p[4400];
    /* Rounds until nothing is left to merge: a round merges each source and hour once (at most
     * COMPACT_MAX_BYTES of it, or one generation whole). Every merge lowers the number of
     * segments or of hot ones, and a round without a merge ends it, so this ends. */
    for (bool progress = true; progress && rc == 0;) {
        progress = false;
        size_t n = 0, nm = 0;
        ch_free(v);
        v = NULL;
        if ((rc = list_segments_ex(l, true, &v, &n, err)) < 0)
            break;
        compact_seq_init(l, v, n);
        out->removed += remove_hidden(l, v, &n);
        ch_free(pick);
        ch_free(m);
        m = NULL;
        /* at most one merge per source and hour, so fewer than n */
        if (n == 0 || (pick = ch_malloc(n * sizeof *pick)) == NULL ||
            (m = ch_calloc(n, sizeof *m)) == NULL) {
            rc = n ? ch_error_set(err, CH_ENOMEM, "out of memory") : 0;
            break;
        }
        for (size_t a = 0, b; a < n && rc == 0; a = b) {
            for (b = a; b < n && v[b].hour == v[a].hour; b++)
                ;
            int order[CH_DS__COUNT], nds = hour_sources(v, a, b, order);
            for (int o = 0; o < nds; o++) {
                size_t np = compact_pick(l, v, a, b, order[o], true, pick);
                if (np == 0)
                    continue;
                cmerge *c = &m[nm];
                for (size_t i = 0; i < np; i++) {
                    struct stat st;
                    path_of(l, v[pick[i]].name, p, sizeof p);
                    c->bytes += stat(p, &st) == 0 ? (uint64_t)st.st_size : 0;
                    c->hot += v[pick[i]].hot;
                }
                if ((c->j = compact_job(l, v, pick, np)) == NULL) {
                    rc = ch_error_set(err, CH_ENOMEM, "out of memory");
                    break;
                }
                c->np = np;
                c->hour = v[a].hour;
                nm++;
            }
        }
        if (rc == 0)
            compact_round(l, m, nm);
        for (size_t i = 0; i < nm; i++) {
            const cmerge *c = &m[i];
            if (rc == 0 && c->r == 0) {
                out->merges++;
                out->inputs += c->np;
                out->hot_inputs += c->hot;
                out->events += c->events;
                out->bytes_in += c->bytes;
                out->bytes_out += c->written;
                sum_touch(l, c->hour);
                progress = true;
            } else if (rc == 0 && c->r < 0) {
                /* A damaged input (`store verify` names it): its hour stays as it was. */
                if (out->failed++ == 0)
                    first = c->e;
            }
            job_free(m[i].j);
        }
    }
    if (rc == 0) {
        size_t n = 0;
        ch_free(v);
        v = NULL;
        if ((rc = list_segments_ex(l, true, &v, &n, err)) == 0) {
            out->removed += remove_hidden(l, v, &n);
            if (out->removed)
                rc = sync_dir(l->dir, err);
            if (rc == 0)
                sum_refresh_touched(l, v, n);
        }
    }
    if (rc == 0 && out->failed)
        snprintf(out->first_failure, sizeof out->first_failure, "%s", first.msg);
    ch_free(m);
    ch_free(pick);
    ch_free(v);
    ch_evstore_close(es);
    return rc;
}
