/*
 * serve.c - the always-on server (serve.h has the threading story; docs/SERVE.md the user's
 * view). This file holds the one route table, the handlers, the pipeline thread and the spool
 * thread.
 *
 * Exactly-once: a record is acknowledged only once its batch is in the journal (durable per the
 * fsync policy); the pipeline reads the journal from the position saved in its last checkpoint,
 * in the same SQLite transaction as everything the records changed; the pipeline's record
 * identities make a record seen twice (a client retrying after a lost answer, a Firehose retry,
 * a replay after a crash between a checkpoint and the next) change nothing. So after any crash
 * the store holds every acknowledged record once.
 *
 * Event time: every dataset (CloudTrail, VPC flow, Route 53) has its own watermark, the newest
 * event time seen minus the configured lateness; an event behind it is still pushed (the
 * pipeline processes it as far as it can) and counted and logged as late. When no records come
 * and the data is live (its newest event time within two latenesses of the wall clock), the
 * engine's event time is moved to the wall clock minus the lateness, so windows close; for
 * historical data it is not, which keeps a replay equal to one `analyze` over the same logs.
 */
#include "server/serve.h"
#include "response/auto.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "core/diag.h"
#include "core/mem.h"
#include "core/readfile.h"
#include "core/timeparse.h"
#include "ingest/batch.h"
#include "ingest/firehose.h"
#include "ingest/input.h"
#include "ingest/journal.h"
#include "ingest/prefetch.h"
#include "ingest/spool.h"
#include "offense/offense.h"
#include "parse/merge.h"
#include "parse/source.h"
#include "pipeline/pipeline.h"
#include "intel/intel_match.h"
#include "intel/intel_store.h"
#include "offense/store.h"
#include "server/api.h"
#include "server/api_parse.h"
#include "server/http.h"
#include "server/metrics.h"
#include "store/evstore.h"
#include "store/retro.h"
#include "store/retro_values.h"

#define INPUT_NAME "journal"       /* the pipeline's input name for its checkpoint position */
#define LEDGER_FILE "spool.ledger" /* in the journal directory */
#define LEDGER_SAVE_MS 1000
#define FIREHOSE_POOL 64
#define LATE_LOGGED_MAX 20 /* late events named in the log; the rest are counted */
#define RETRY_AFTER_S 5
#define ANSWER_RING 64           /* the last HTTP entries' counts the pipeline keeps for h_ingest */
#define ANSWER_WAIT_MS 2000      /* how long h_ingest waits for them before counting itself */
#define DETECT_BYTES (64 * 1024) /* as analyze: the type is detected from the first 64 KiB */

/* What the pipeline made of one journal entry from HTTP: h_ingest's answer when clean. */
typedef struct entry_answer {
    ch_journal_pos end; /* the entry's next position, as ch_journal_append reported it */
    uint64_t records, errors;
} entry_answer;

struct ch_serve {
    const ch_serve_config *cfg;
    ch_prefetch_pool
        *pool; /* parse workers (config threads), or NULL: parse on the pipeline thread */
    ch_serve_log_fn log;
    void *log_ud;
    ch_metrics *m;
    ch_journal *j;
    /* pipeline, under pl_mu */
    pthread_mutex_t pl_mu;
    ch_pipeline *p;
    ch_diag diag;
    pthread_t pipe_thread;
    bool pipe_started;
    struct ch_resp_responder *auto_resp; /* automatic response (response/auto.h), or NULL */
    atomic_bool stop_pipe, reload_req, ready, draining;
    atomic_int pl_waiting; /* readers (API, metrics) waiting for pl_mu */
    ch_journal_pos cp_pos; /* under st_mu */
    int64_t cp_wall_ms;
    int64_t max_ts[CH_DS__COUNT];
    uint64_t late_logged;
    uint64_t reason_seen[CH_DIAG_MAX_REASONS]; /* diag counts already in the metrics */
    /* spool */
    ch_spool *spool;
    pthread_t spool_thread;
    bool spool_started;
    atomic_bool stop_spool;
    char ledger_path[4200];
    ch_journal_pos ledger_pos; /* under st_mu: the position the saved ledger reflects */
    pthread_mutex_t st_mu;
    /* http: the route table with this config's body limits */
    ch_route routes[64];
    /* the REST API: accounts (tokens, sessions) and its own offense store connection */
    ch_api api;
    ch_accounts *accounts;
    pthread_mutex_t acc_mu;
    bool api_mu_init;
    ch_http *http;
    char *tokens[CH_ROLE__COUNT];
    size_t tokens_len[CH_ROLE__COUNT];
    pthread_mutex_t fh_mu;
    ch_firehose *fh_pool[FIREHOSE_POOL];
    size_t fh_free;
    /* under ans_mu: the counts of the last HTTP entries processed, and how far the pipeline is */
    pthread_mutex_t ans_mu;
    pthread_cond_t ans_cv;
    entry_answer ans[ANSWER_RING];
    size_t ans_next;
    ch_journal_pos ans_upto;
    /* set when values added through the API wait in the intel store's retro_pending */
    atomic_bool hunt_req;
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Readers take the pipeline's lock through here, so that the pipeline thread, which holds it
 * for a whole journal entry (thousands of records), lets them in between two events: an
 * offense list under ingest then waits for one event, not for a batch (issue 9's p99). */
static void pl_lock_reader(ch_serve *s)
{
    atomic_fetch_add(&s->pl_waiting, 1);
    pthread_mutex_lock(&s->pl_mu);
    atomic_fetch_sub(&s->pl_waiting, 1);
}

/* In the pipeline thread, holding pl_mu between two events: hand the lock to waiting readers
 * (the mutex is not fair: an unlock and a lock at once would take it straight back). */
static void pl_let_readers_in(ch_serve *s)
{
    if (atomic_load_explicit(&s->pl_waiting, memory_order_relaxed) == 0)
        return;
    pthread_mutex_unlock(&s->pl_mu);
    for (int i = 0; i < 10000 && atomic_load(&s->pl_waiting) > 0; i++)
        sched_yield();
    pthread_mutex_lock(&s->pl_mu);
}

static void slog(ch_serve *s, const char *level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void slog(ch_serve *s, const char *level, const char *event, const char *fmt, ...)
{
    if (s->log == NULL)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s->log(s->log_ud, level, event, msg);
}

static void count2(ch_serve *s, const char *name, const char *k1, const char *v1, const char *k2,
                   const char *v2, double v)
{
    char l[CH_METRICS_LABELS_MAX];
    ch_metrics_add(s->m, name, ch_metrics_labels2(l, sizeof l, k1, v1, k2, v2), v);
}

/* Receive-side counts of one batch: received, accepted, rejected by reason. */
static void count_batch(ch_serve *s, const char *source, const ch_batch_result *b)
{
    const char *fmt = b->type ? b->type->name : "unknown";
    count2(s, "coinhound_records_received_total", "source", source, "format", fmt,
           (double)b->records);
    count2(s, "coinhound_records_accepted_total", "source", source, "format", fmt,
           (double)b->accepted);
    for (int i = 0; i < b->diag.nreasons; i++)
        count2(s, "coinhound_records_rejected_total", "source", source, "reason",
               b->diag.reasons[i].name, (double)b->diag.reasons[i].count);
}

/* ---- the pipeline thread ----------------------------------------------------------------------
 */

/* Who a journal entry came from, for people: the file of a spool chunk, else the origin. */
static const char *entry_name(const ch_journal_entry *e)
{
    if (strncmp(e->origin, "spool:", 6) == 0) {
        const char *p = e->origin + 6;
        for (int i = 0; i < 5 && p != NULL; i++) {
            p = strchr(p, ':');
            if (p)
                p++;
        }
        return p && *p ? p : e->origin;
    }
    return e->origin[0] ? e->origin : "journal";
}

static uint64_t records_skipped(const ch_diag *d)
{
    uint64_t n = 0;
    for (int i = 0; i < CH_DS__COUNT; i++)
        n += d->by_ds[i].skipped;
    return n;
}

/* Push one entry's events; *records and *errors are how many records the entry held and how
 * many of them were rejected (h_ingest's answer), *format the type it was read as. Records are
 * the events plus the records that are not events by design (flow NODATA) plus the rejected,
 * which is how ch_batch_check counts them. */
static void process_entry(ch_serve *s, const ch_journal_entry *e, uint64_t *records,
                          uint64_t *errors, const char **format)
{
    bool spool = strncmp(e->origin, "spool:", 6) == 0;
    const char *name = entry_name(e);
    const ch_source_type *forced = e->type[0] ? ch_source_type_by_name(e->type) : NULL;
    ch_input *in = NULL;
    ch_error err = {0};
    if (ch_input_open_mem(&in, name, e->data, e->len, 0, &err) < 0) {
        slog(s, "error", "out_of_memory", "%s: %s", name, err.msg);
        return;
    }
    uint64_t errors0 = s->diag.errors_total, skipped0 = records_skipped(&s->diag);
    uint64_t events = 0;
    const ch_source_type *t = NULL;
    ch_stream *st = NULL;
    /* With workers, one parses and normalizes ahead of this thread (up to 64 events); its
     * reports reach s->diag when this thread takes the event they came before, as if read here. */
    ch_prefetch *pf = s->pool != NULL ? ch_prefetch_new(s->pool, &s->diag) : NULL;
    pthread_mutex_lock(&s->pl_mu);
    bool opened = ch_source_open_input(in, name, forced,
                                       pf != NULL ? ch_prefetch_diag(pf) : &s->diag, true, &t, &st);
    if (pf != NULL) {
        ch_prefetch_flush(pf);
        if (opened)
            ch_prefetch_start(pf, t, st);
    }
    if (opened) {
        ch_event ev;
        uint64_t n = 0;
        while ((pf != NULL ? ch_prefetch_next(pf, &ev) : t->next(st, &ev)) == 1) {
            int ds = (unsigned)ev.dataset < CH_DS__COUNT ? (int)ev.dataset : 0;
            if (ev.ts_ms > s->max_ts[ds]) {
                s->max_ts[ds] = ev.ts_ms;
            } else if (ev.ts_ms < s->max_ts[ds] - s->cfg->lateness_ms) {
                char l[CH_METRICS_LABELS_MAX];
                ch_metrics_add(s->m, "coinhound_late_records_total",
                               ch_metrics_label(l, sizeof l, "dataset", ch_dataset_name(ds)), 1);
                if (s->late_logged++ < LATE_LOGGED_MAX)
                    slog(s, "warn", "late_record",
                         "%s: a %s event %lld s behind its watermark (lateness %lld s); processed "
                         "as far as it can be%s",
                         name, ch_dataset_name(ds),
                         (long long)((s->max_ts[ds] - ev.ts_ms - s->cfg->lateness_ms) / 1000),
                         (long long)(s->cfg->lateness_ms / 1000),
                         s->late_logged == LATE_LOGGED_MAX ? " (further late events are counted)"
                                                           : "");
            }
            if ((++events & 63) == 0)
                pl_let_readers_in(s);
            if (ch_pipeline_push_event(s->p, &ev, name) == CH_ENOMEM && n++ == 0)
                slog(s, "error", "out_of_memory", "%s: correlation ran out of memory", name);
        }
        ch_prefetch_close(pf); /* first: no worker may be inside the stream */
        pf = NULL;
        t->close(st);
    }
    ch_prefetch_close(pf);
    pthread_mutex_unlock(&s->pl_mu);
    ch_input_close(in);
    *errors = s->diag.errors_total - errors0;
    *records = events + (records_skipped(&s->diag) - skipped0) + *errors;
    *format = t != NULL ? t->name : "unknown";
    for (int i = 0; i < s->diag.nreasons; i++)
        if (s->diag.reasons[i].count > s->reason_seen[i]) {
            char l[CH_METRICS_LABELS_MAX];
            ch_metrics_add(s->m, "coinhound_pipeline_rejected_total",
                           ch_metrics_label(l, sizeof l, "reason", s->diag.reasons[i].name),
                           (double)(s->diag.reasons[i].count - s->reason_seen[i]));
            /* Spool chunks are counted here only (spool_emit does not read them). */
            if (spool)
                count2(s, "coinhound_records_rejected_total", "source", "spool", "reason",
                       s->diag.reasons[i].name,
                       (double)(s->diag.reasons[i].count - s->reason_seen[i]));
            s->reason_seen[i] = s->diag.reasons[i].count;
        }
    if (spool) {
        count2(s, "coinhound_records_received_total", "source", "spool", "format", *format,
               (double)*records);
        count2(s, "coinhound_records_accepted_total", "source", "spool", "format", *format,
               (double)(*records - *errors));
    }
    if (s->diag.errors_total > errors0 && spool)
        slog(s, "warn", "bad_records",
             "%s: %llu records rejected (see "
             "coinhound_records_rejected_total)",
             name, (unsigned long long)(s->diag.errors_total - errors0));
}

static int checkpoint(ch_serve *s, ch_journal_pos pos)
{
    char text[CH_JOURNAL_POS_MAX];
    ch_journal_pos_format(pos, text);
    ch_error err = {0};
    pthread_mutex_lock(&s->pl_mu);
    int rc = ch_pipeline_checkpoint(s->p, INPUT_NAME, text, &err);
    ch_pipeline_stats ps;
    ch_pipeline_stats_get(s->p, &ps);
    pthread_mutex_unlock(&s->pl_mu);
    if (rc < 0) {
        slog(s, "error", "checkpoint_failed", "checkpoint at %s: %s (retried)", text, err.msg);
        return rc;
    }
    ch_metrics_add(s->m, "coinhound_checkpoints_total", NULL, 1);
    ch_metrics_set(s->m, "coinhound_checkpoint_duration_seconds", NULL, ps.checkpoint_ms / 1000);
    pthread_mutex_lock(&s->st_mu);
    s->cp_pos = pos;
    s->cp_wall_ms = wall_ms();
    ch_journal_pos upto = pos;
    if (s->spool != NULL && ch_journal_pos_cmp(s->ledger_pos, upto) < 0)
        upto = s->ledger_pos;
    pthread_mutex_unlock(&s->st_mu);
    if (ch_journal_release(s->j, upto, &err) < 0)
        slog(s, "warn", "journal_release_failed", "%s", err.msg);
    return 0;
}

static void do_reload(ch_serve *s)
{
    ch_error err = {0};
    pthread_mutex_lock(&s->pl_mu);
    int rc = ch_pipeline_reload(s->p, &err);
    pthread_mutex_unlock(&s->pl_mu);
    char l[CH_METRICS_LABELS_MAX];
    ch_metrics_add(s->m, "coinhound_reloads_total",
                   ch_metrics_label(l, sizeof l, "result", rc < 0 ? "failed" : "ok"), 1);
    if (rc < 0)
        slog(s, "error", "reload_failed", "reload: %s (the running configuration stays)", err.msg);
    else
        slog(s, "info", "reloaded",
             "pack, context and reference sets reloaded; correlation "
             "state kept");
}

/* The log line and metrics of one retro-hunt for n values added to what. */
static void hunt_report(ch_serve *s, int rc, const ch_error *err, size_t n, const char *what,
                        const ch_retro_result *rp)
{
    const ch_retro_result r = *rp;
    char l[CH_METRICS_LABELS_MAX];
    ch_metrics_add(s->m, "coinhound_retro_hunts_total",
                   ch_metrics_label(l, sizeof l, "result", rc < 0 ? "failed" : "ok"), 1);
    if (rc < 0) {
        slog(s, "error", "retro_hunt_failed", "retro-hunt for %zu values added to %s: %s", n, what,
             err->msg);
        return;
    }
    ch_metrics_add(s->m, "coinhound_retro_hunt_raised_total", NULL, (double)r.raised);
    char offs[256] = "";
    size_t o = 0;
    for (size_t i = 0; i < r.noffenses && o + 24 < sizeof offs; i++)
        o += (size_t)snprintf(offs + o, sizeof offs - o, "%s%" PRId64, i ? " " : "", r.offenses[i]);
    slog(s, "info", "retro_hunt",
         "retro-hunt for %zu values added to %s: %" PRIu64 " stored events, %" PRIu64
         " match, %" PRIu64 " already raised, %" PRIu64 " raised CJ-MINE-03 (retro), %" PRIu64
         " with no linked user; offenses changed: %s",
         n, what, r.scanned, r.matched, r.already, r.raised, r.unlinked, o ? offs : "none");
}

#define HUNT_BATCH CH_API_VALUES_MAX /* values one hunt takes from the queue: a whole bulk load */

/* Values read from the intel store's queue (copies: the rows die with the statement). */
typedef struct hunt_batch {
    ch_retro_value *v;
    size_t n, cap;
    int64_t last_id;
    char what[160]; /* the sets, for the log line */
    ch_error *err;
} hunt_batch;

static int hunt_collect(void *arg, const ch_intel_retro_row *row)
{
    hunt_batch *b = arg;
    if (b->n == b->cap) {
        ch_retro_value *nv = ch_grow(b->v, &b->cap, 64, sizeof *nv);
        if (nv == NULL)
            return ch_error_set(b->err, CH_ENOMEM, "out of memory");
        b->v = nv;
    }
    char *set = ch_strdup(row->set), *value = ch_strdup(row->value);
    if (set == NULL || value == NULL) {
        ch_free(set);
        ch_free(value);
        return ch_error_set(b->err, CH_ENOMEM, "out of memory");
    }
    b->v[b->n++] = (ch_retro_value){
        set, "api", (int)row->type, value, strlen(value), CH_REFSET_ALWAYS, CH_REFSET_NEVER};
    b->last_id = row->id;
    if (strstr(b->what, set) == NULL) {
        size_t o = strlen(b->what);
        snprintf(b->what + o, sizeof b->what - o, "%s%s", o ? ", " : "", set);
    }
    return 0;
}

static void hunt_batch_free(hunt_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        ch_free((char *)b->v[i].set);
        ch_free((char *)b->v[i].value);
    }
    ch_free(b->v);
}

/* The values added through the API that wait in the intel store's queue (written with the values
 * themselves, so a hunt waiting at a crash runs after the restart), hunted in one pass in a
 * matcher holding only them, over the stored events of the last CH_RETRO_DEFAULT_DAYS days.
 * Runs in the pipeline thread right after a checkpoint, so what it raises and checkpoints is the
 * pipeline's state at that point; the queue is cleared once the hunt's checkpoint committed (a
 * crash in between hunts again, which raises nothing twice). */
static void hunt_api_adds(ch_serve *s)
{
    ch_error err = {0};
    hunt_batch b = {.err = &err};
    pthread_mutex_lock(&s->api.intel_mu);
    int rc = s->api.intel == NULL
                 ? 0
                 : ch_intel_store_retro_each(s->api.intel, HUNT_BATCH, hunt_collect, &b, &err);
    pthread_mutex_unlock(&s->api.intel_mu);
    ch_retro_result r;
    memset(&r, 0, sizeof r);
    if (rc == 0 && b.n > 0) {
        pthread_mutex_lock(&s->pl_mu);
        rc = ch_retro_hunt_values(s->p, NULL, wall_ms() - CH_RETRO_DEFAULT_DAYS * 86400000LL, b.v,
                                  b.n, &r, &err);
        pthread_mutex_unlock(&s->pl_mu);
        if (rc == 0) {
            pthread_mutex_lock(&s->api.intel_mu);
            rc = ch_intel_store_retro_done(s->api.intel, b.last_id, &err);
            pthread_mutex_unlock(&s->api.intel_mu);
        }
    }
    if (rc < 0 || b.n > 0)
        hunt_report(s, rc, &err, b.n, b.what[0] ? b.what : "reference sets", &r);
    if (rc == 0 && b.n == HUNT_BATCH)
        atomic_store(&s->hunt_req, true); /* more wait */
    hunt_batch_free(&b);
}

/* Hunts start from a checkpoint at pos, so that what they raise and checkpoint is the
 * pipeline's state there. false when it failed (the hunts wait for the next turn). */
static bool checkpoint_before_hunt(ch_serve *s, ch_journal_pos pos, bool *dirty)
{
    if (*dirty) {
        if (checkpoint(s, pos) < 0)
            return false;
        *dirty = false;
    }
    return true;
}

/* Run the API's waiting hunts after a checkpoint at pos. Returns false when the checkpoint
 * failed. */
static bool run_hunts(ch_serve *s, ch_journal_pos pos, bool *dirty)
{
    if (!checkpoint_before_hunt(s, pos, dirty))
        return false;
    atomic_store(&s->hunt_req, false);
    hunt_api_adds(s);
    return true;
}

/* The values rules added to address and domain sets since the last such hunt (pipeline.h):
 * run in the pipeline thread like the API's hunts, after a checkpoint. */
static void hunt_rule_adds(ch_serve *s, ch_journal_pos pos, bool *dirty)
{
    if (!checkpoint_before_hunt(s, pos, dirty))
        return;
    ch_error err = {0};
    ch_retro_result r;
    memset(&r, 0, sizeof r);
    size_t n = 0;
    pthread_mutex_lock(&s->pl_mu);
    int rc = ch_retro_hunt_rule_adds(s->p, NULL, 0, &r, &n, &err);
    pthread_mutex_unlock(&s->pl_mu);
    if (rc < 0 || n > 0)
        hunt_report(s, rc, &err, n, "sets by rules", &r);
}

static void api_hunt(void *ud)
{
    ch_serve *s = ud;
    atomic_store(&s->hunt_req, true);
    ch_journal_wake(s->j);
}

static void *pipe_main(void *arg)
{
    ch_serve *s = arg;
    ch_error err = {0};
    ch_journal_reader *r = NULL;
    pthread_mutex_lock(&s->st_mu);
    ch_journal_pos pos = s->cp_pos;
    pthread_mutex_unlock(&s->st_mu);
    ch_journal_pos replay_end = ch_journal_end(s->j);
    if (ch_journal_reader_open(s->cfg->journal_dir, pos, s->cfg->max_body + (1u << 20), &r, &err) <
        0) {
        slog(s, "error", "journal_unreadable", "%s", err.msg);
        return NULL;
    }
    uint64_t replayed = 0;
    bool dirty = false;
    int64_t last_cp = wall_ms(), last_entry = wall_ms(), last_rule_hunt = wall_ms();
    for (;;) {
        if (atomic_exchange(&s->reload_req, false))
            do_reload(s);
        /* After the reload, so the rules already see the values the hunt looks for. */
        if (atomic_load(&s->hunt_req) && atomic_load(&s->ready) && run_hunts(s, pos, &dirty))
            last_cp = wall_ms();
        /* Values rules learned are hunted in batches: a second after ingest pauses, or every
         * minute under sustained ingest (each hunt reads the stored days). A server without a
         * store has nothing to hunt in (and keeps nothing pending: see hunt_rule_adds). */
        if (ch_pipeline_hunt_pending(s->p) && atomic_load(&s->ready) && !s->cfg->no_store) {
            int64_t t = wall_ms();
            if (t - last_rule_hunt >= (t - last_entry >= 1000 ? 1000 : 60000)) {
                hunt_rule_adds(s, pos, &dirty);
                last_rule_hunt = last_cp = wall_ms();
            }
        }
        ch_journal_pos limit = ch_journal_end(s->j);
        ch_journal_entry e;
        int rc = ch_journal_reader_next(r, limit, &e, &err);
        if (rc == 1) {
            uint64_t nrec = 0, nerr = 0;
            const char *fmt = NULL;
            process_entry(s, &e, &nrec, &nerr, &fmt);
            pos = e.next;
            pthread_mutex_lock(&s->ans_mu);
            if (strncmp(e.origin, "http:", 5) == 0) {
                s->ans[s->ans_next] = (entry_answer){e.next, nrec, nerr};
                s->ans_next = (s->ans_next + 1) % ANSWER_RING;
            }
            s->ans_upto = e.next;
            pthread_cond_broadcast(&s->ans_cv);
            pthread_mutex_unlock(&s->ans_mu);
            dirty = true;
            last_entry = wall_ms();
            if (!atomic_load(&s->ready)) {
                replayed++;
                if (ch_journal_pos_cmp(pos, replay_end) >= 0) {
                    atomic_store(&s->ready, true);
                    slog(s, "info", "replay_done",
                         "replayed %llu journal entries since the last "
                         "checkpoint",
                         (unsigned long long)replayed);
                }
            }
        } else if (rc == 0) {
            if (!atomic_load(&s->ready))
                atomic_store(&s->ready, true);
            if (atomic_load(&s->stop_pipe))
                break; /* drained: ingest has stopped and everything is read */
            int64_t now = wall_ms();
            int64_t newest = 0;
            for (int i = 0; i < CH_DS__COUNT; i++)
                newest = s->max_ts[i] > newest ? s->max_ts[i] : newest;
            if (now - last_entry > 1000 && newest > now - 2 * s->cfg->lateness_ms &&
                newest < now - s->cfg->lateness_ms) {
                pthread_mutex_lock(&s->pl_mu);
                ch_pipeline_advance(s->p, now - s->cfg->lateness_ms);
                pthread_mutex_unlock(&s->pl_mu);
            }
            /* The reader may stand at the next segment already (the last one was consumed
             * and dropped): wait from where it stands. */
            ch_journal_wait(s->j, ch_journal_reader_pos(r), 100);
        } else if (rc == CH_EPARSE) {
            ch_metrics_add(s->m, "coinhound_journal_damaged_entries_total", NULL, 1);
            if (strstr(err.msg, "belongs to journal") != NULL) {
                slog(s, "error", "journal_replaced", "%s: reading the journal from its start",
                     err.msg);
                ch_journal_reader_close(r);
                r = NULL;
                pos = ch_journal_begin(s->j);
                if (ch_journal_reader_open(s->cfg->journal_dir, pos, s->cfg->max_body + (1u << 20),
                                           &r, &err) < 0)
                    break;
                continue;
            }
            uint64_t lost = ch_journal_reader_skip_segment(r);
            slog(s, "error", "journal_damaged",
                 "%s: the entry is skipped with the rest of its segment (%llu bytes); entries "
                 "before it were processed",
                 err.msg, (unsigned long long)lost);
            pos = ch_journal_reader_pos(r);
        } else {
            slog(s, "error", "journal_read_failed", "%s (retrying)", err.msg);
            struct timespec ts = {1, 0};
            nanosleep(&ts, NULL);
        }
        /* Every `checkpoint` interval while busy, and once things are quiet, so an idle
         * server's state is never behind its journal. */
        int64_t now = wall_ms();
        if (dirty &&
            (now - last_cp >= s->cfg->checkpoint_ms || (rc == 0 && now - last_entry >= 500))) {
            if (checkpoint(s, pos) == 0)
                dirty = false;
            last_cp = now;
        }
    }
    if (dirty)
        checkpoint(s, pos);
    ch_journal_reader_close(r);
    return NULL;
}

/* ---- the spool thread -------------------------------------------------------------------------
 */

static const ch_source_type *detect_body(const char *body, size_t len, bool gz);

/* A spool chunk whose type the head tells is journaled as it is: the pipeline's read of it
 * counts its records (received, accepted, rejected by reason) and logs the bad ones, so it is
 * parsed once. A chunk of no known type is read here to say why, and not journaled. */
static int spool_emit(void *ud, const ch_spool_chunk *c)
{
    ch_serve *s = ud;
    ch_error err = {0};
    const unsigned char *u = c->data;
    const ch_source_type *t =
        c->len > 0 ? detect_body(c->data, c->len, c->len >= 2 && u[0] == 0x1f && u[1] == 0x8b)
                   : NULL;
    if (t == NULL) {
        ch_batch_result *b = ch_malloc(sizeof *b);
        if (b == NULL || ch_batch_check(c->data, c->len, NULL, c->path, b, &err) < 0) {
            ch_free(b);
            return CH_ELIMIT; /* out of memory: try again later rather than skip */
        }
        count_batch(s, "spool", b);
        if (b->accepted == 0) {
            slog(s, "warn", "bad_file", "%s: no records could be read (%s); not journaled", c->path,
                 b->nerrors ? b->errors[0] : "unknown format");
            ch_free(b);
            return 0;
        }
        t = b->type;
        ch_free(b);
    }
    ch_journal_rec rec = {t ? t->name : NULL, c->origin, c->data, c->len};
    int rc = ch_journal_append(s->j, &rec, 1, NULL, &err);
    if (rc == CH_ELIMIT) {
        ch_metrics_add(s->m, "coinhound_spool_paused_total", NULL, 1);
        return CH_ELIMIT;
    }
    if (rc < 0) {
        slog(s, "error", "journal_write_failed", "spool %s: %s; retried later", c->path, err.msg);
        return CH_ELIMIT;
    }
    ch_metrics_add(s->m, "coinhound_spool_chunks_total", NULL, 1);
    return 0;
}

static void spool_log(void *ud, const char *msg) { slog(ud, "warn", "spool", "%s", msg); }

static void save_ledger(ch_serve *s)
{
    ch_journal_pos pos = ch_journal_end(s->j);
    char text[CH_JOURNAL_POS_MAX];
    ch_journal_pos_format(pos, text);
    ch_error err = {0};
    if (ch_spool_ledger_save(s->spool, s->ledger_path, text, &err) < 0) {
        slog(s, "error", "ledger_save_failed", "%s", err.msg);
        return;
    }
    pthread_mutex_lock(&s->st_mu);
    s->ledger_pos = pos;
    pthread_mutex_unlock(&s->st_mu);
}

static void *spool_main(void *arg)
{
    ch_serve *s = arg;
    ch_error err = {0};
    int64_t last_save = 0;
    bool changed = true;
    while (!atomic_load(&s->stop_spool)) {
        /* Paused while the journal is full: wait for a checkpoint to free segments. */
        int rc = ch_spool_poll(s->spool, 250, spool_emit, s, &err);
        if (rc < 0)
            slog(s, "error", "spool_failed", "%s", err.msg);
        if (rc > 0)
            changed = true;
        if (wall_ms() - last_save >= LEDGER_SAVE_MS && changed) {
            save_ledger(s);
            last_save = wall_ms();
            changed = false;
        } else if (wall_ms() - last_save >= 10 * LEDGER_SAVE_MS) {
            save_ledger(s); /* moves the ledger position on, so old segments can go */
            last_save = wall_ms();
        }
        ch_spool_stats st;
        ch_spool_stats_get(s->spool, &st);
        ch_metrics_set(s->m, "coinhound_spool_ledger_files", NULL, (double)st.ledger_entries);
    }
    save_ledger(s);
    return NULL;
}

/* The spool ledger is the saved one plus every spool origin journaled after it. */
static int spool_replay(ch_serve *s, ch_error *err)
{
    char pos_text[128];
    int rc = ch_spool_ledger_load(s->spool, s->ledger_path, pos_text, sizeof pos_text, err);
    if (rc < 0)
        return rc;
    ch_journal_pos from;
    if ((rc = ch_journal_pos_parse(pos_text, &from, err)) < 0)
        return rc;
    ch_journal_pos begin = ch_journal_begin(s->j);
    if (from.id != begin.id || ch_journal_pos_cmp(from, begin) < 0)
        from = begin; /* a new journal, or no ledger yet */
    ch_journal_reader *r = NULL;
    if ((rc = ch_journal_reader_open(s->cfg->journal_dir, from, s->cfg->max_body + (1u << 20), &r,
                                     err)) < 0)
        return rc;
    ch_journal_entry e;
    ch_journal_pos end = ch_journal_end(s->j);
    uint64_t n = 0;
    for (;;) {
        rc = ch_journal_reader_next(r, end, &e, err);
        if (rc == 1) {
            ch_spool_ledger_note(s->spool, e.origin);
            n++;
            continue;
        }
        if (rc == CH_EPARSE) {
            ch_journal_reader_skip_segment(r);
            continue;
        }
        break;
    }
    ch_journal_reader_close(r);
    s->ledger_pos = from;
    if (n > 0)
        slog(s, "info", "ledger_replayed",
             "spool ledger brought up to date from %llu journal "
             "entries",
             (unsigned long long)n);
    return rc < 0 ? rc : 0;
}

/* ---- HTTP handlers ----------------------------------------------------------------------------
 */

static void json_errors(ch_buf *b, const ch_batch_result *r)
{
    ch_buf_adds(b, "\"errors\":[");
    for (size_t i = 0; i < r->nerrors; i++) {
        if (i)
            ch_buf_addc(b, ',');
        ch_buf_add_json_str(b, r->errors[i], strlen(r->errors[i]));
    }
    ch_buf_addc(b, ']');
}

/* Journal answers as HTTP: full -> 503 + Retry-After, no space -> 507, other -> 500. */
static void journal_refusal(ch_http_resp *rs, int rc, const char *msg)
{
    if (rc == CH_ELIMIT) {
        ch_http_error(rs, 503, msg);
        rs->retry_after_s = RETRY_AFTER_S;
    } else {
        ch_http_error(rs, strstr(msg, "No space") ? 507 : 500, msg);
    }
}

/* The source type of a body from its first 64 KiB (inflated, for gzip), as analyze detects a
 * file's; NULL when it cannot be told (h_ingest then counts the body to say why). Inflating
 * only the head keeps this cheap next to the pipeline's full read. */
static const ch_source_type *detect_body(const char *body, size_t len, bool gz)
{
    if (!gz)
        return ch_source_detect(body, len < DETECT_BYTES ? len : DETECT_BYTES);
    char *head = ch_malloc(DETECT_BYTES);
    if (head == NULL)
        return NULL;
    z_stream z;
    memset(&z, 0, sizeof z);
    const ch_source_type *t = NULL;
    if (inflateInit2(&z, 16 + MAX_WBITS) == Z_OK) {
        z.next_in = (unsigned char *)(uintptr_t)body;
        z.avail_in = len > UINT32_MAX ? UINT32_MAX : (uInt)len;
        z.next_out = (unsigned char *)head;
        z.avail_out = DETECT_BYTES;
        int zr = inflate(&z, Z_SYNC_FLUSH);
        size_t n = DETECT_BYTES - z.avail_out;
        if ((zr == Z_OK || zr == Z_STREAM_END || zr == Z_BUF_ERROR) && n > 0)
            t = ch_source_detect(head, n);
        inflateEnd(&z);
    }
    ch_free(head);
    return t;
}

/* Wait for the pipeline to have processed the entry that ends at `end`; true with its counts,
 * false when it took longer than ANSWER_WAIT_MS or the counts are gone (the ring moved on, or
 * the entry was skipped). */
static bool await_answer(ch_serve *s, ch_journal_pos end, entry_answer *out)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += ANSWER_WAIT_MS / 1000;
    dl.tv_nsec += (long)(ANSWER_WAIT_MS % 1000) * 1000000;
    if (dl.tv_nsec >= 1000000000) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000;
    }
    bool found = false;
    pthread_mutex_lock(&s->ans_mu);
    for (;;) {
        for (size_t i = 0; i < ANSWER_RING && !found; i++)
            if (ch_journal_pos_cmp(s->ans[i].end, end) == 0 && s->ans[i].end.id == end.id) {
                *out = s->ans[i];
                found = true;
            }
        if (found || ch_journal_pos_cmp(s->ans_upto, end) >= 0)
            break;
        if (pthread_cond_timedwait(&s->ans_cv, &s->ans_mu, &dl) != 0)
            break;
    }
    pthread_mutex_unlock(&s->ans_mu);
    return found;
}

/* POST /api/v1/ingest. The body is journaled as it came, then answered with the counts the
 * pipeline's own read of it produced: one parse per record, not one here to count and another
 * in the pipeline (which cost a third of the server's CPU, the whole of it twice for gzip).
 * Only when that read rejected something, or the pipeline is more than ANSWER_WAIT_MS behind,
 * or the type cannot be told from the head, is the body read here (ch_batch_check) for the
 * answer's counts and messages. A body whose type cannot be told, or with no good record, is
 * answered 400; the latter is in the journal already, where the pipeline has found nothing in
 * it, so a replay of it changes nothing either. */
static void h_ingest(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    ch_serve *s = ud;
    if (atomic_load(&s->draining)) {
        ch_http_error(rs, 503, "shutting down; send again later");
        rs->retry_after_s = RETRY_AFTER_S;
        return;
    }
    const ch_source_type *forced = NULL;
    const char *type = ch_http_arg(rq, "type");
    if (type != NULL && (forced = ch_source_type_by_name(type)) == NULL) {
        ch_http_error(rs, 400, "type: cloudtrail, vpcflow or route53resolver");
        return;
    }
    size_t len;
    const char *body = ch_http_body(rq, &len);
    const char *enc = ch_http_header(rq, "Content-Encoding");
    bool gz = false;
    if (enc != NULL && strcmp(enc, "identity") != 0) {
        if (strcmp(enc, "gzip") != 0) {
            ch_http_error(rs, 415, "Content-Encoding: only gzip");
            return;
        }
        if (len < 2 || (unsigned char)body[0] != 0x1f || (unsigned char)body[1] != 0x8b) {
            ch_http_error(rs, 400, "Content-Encoding says gzip, the body is not");
            return;
        }
        gz = true;
    } else {
        gz = len >= 2 && (unsigned char)body[0] == 0x1f && (unsigned char)body[1] == 0x8b;
    }
    char origin[96];
    snprintf(origin, sizeof origin, "http:%s", ch_http_peer(rq));
    ch_error err = {0};
    int rc = 0;
    bool journaled = false;
    const ch_source_type *t = len > 0 ? (forced ? forced : detect_body(body, len, gz)) : NULL;
    if (t != NULL) {
        ch_journal_rec rec = {t->name, origin, body, len};
        ch_journal_pos end;
        rc = ch_journal_append(s->j, &rec, 1, &end, &err);
        if (rc < 0)
            goto refused;
        journaled = true;
        entry_answer a;
        if (await_answer(s, end, &a) && a.errors == 0 && a.records > 0) {
            count2(s, "coinhound_records_received_total", "source", "http", "format", t->name,
                   (double)a.records);
            count2(s, "coinhound_records_accepted_total", "source", "http", "format", t->name,
                   (double)a.records);
            rs->status = 202;
            ch_buf_printf(&rs->body, "{\"accepted\":%llu,\"rejected\":0,\"errors\":[]}",
                          (unsigned long long)a.records);
            return;
        }
    }
    ch_batch_result *b = ch_malloc(sizeof *b);
    if (b == NULL || ch_batch_check(body, len, forced, origin, b, &err) < 0) {
        ch_free(b);
        ch_http_error(rs, 500, "out of memory");
        return;
    }
    count_batch(s, "http", b);
    if (b->accepted > 0 && !journaled) {
        ch_journal_rec rec = {b->type ? b->type->name : NULL, origin, body, len};
        rc = ch_journal_append(s->j, &rec, 1, NULL, &err);
    }
    if (rc < 0) {
        ch_free(b);
        goto refused;
    }
    rs->status = b->accepted > 0 ? 202 : 400;
    if (b->accepted == 0)
        count2(s, "coinhound_batches_refused_total", "source", "http", "reason", "no_records", 1);
    ch_buf_printf(&rs->body, "{\"accepted\":%llu,\"rejected\":%llu,",
                  (unsigned long long)b->accepted, (unsigned long long)b->rejected);
    json_errors(&rs->body, b);
    ch_buf_addc(&rs->body, '}');
    ch_free(b);
    return;
refused:
    count2(s, "coinhound_batches_refused_total", "source", "http", "reason",
           rc == CH_ELIMIT ? "journal_full" : "journal_error", 1);
    journal_refusal(rs, rc, err.msg);
}

typedef struct fh_batch {
    ch_serve *s;
    ch_journal_rec *recs;
    char **owned; /* data then origin, 2 per record */
    size_t n, cap;
    char request_id[CH_FIREHOSE_ID_MAX + 1];
} fh_batch;

static int fh_collect(void *ud, const ch_firehose_payload *p)
{
    fh_batch *fb = ud;
    if (p->kind == CH_FIREHOSE_CWL_CONTROL) {
        ch_metrics_add(fb->s->m, "coinhound_firehose_control_messages_total", NULL, 1);
        return 0;
    }
    ch_batch_result *b = ch_malloc(sizeof *b);
    ch_error err = {0};
    if (b == NULL || ch_batch_check(p->data, p->len, NULL, "firehose", b, &err) < 0) {
        ch_free(b);
        return CH_ENOMEM;
    }
    count_batch(fb->s, "firehose", b);
    const char *type = b->type ? b->type->name : NULL;
    uint64_t accepted = b->accepted;
    ch_free(b);
    if (accepted == 0)
        return 0; /* nothing a parser can read: counted as rejected, not journaled */
    if (fb->n == fb->cap) {
        size_t nc = fb->cap ? fb->cap * 2 : 16;
        ch_journal_rec *nr = ch_realloc(fb->recs, nc * sizeof *nr);
        if (nr == NULL)
            return CH_ENOMEM;
        fb->recs = nr;
        char **no = ch_realloc(fb->owned, 2 * nc * sizeof *no);
        if (no == NULL)
            return CH_ENOMEM;
        fb->owned = no;
        fb->cap = nc;
    }
    char origin[700];
    snprintf(origin, sizeof origin, "firehose:%s/%zu%s%s", fb->request_id, p->index,
             p->origin[0] ? " " : "", p->origin);
    char *d = ch_malloc(p->len + 1), *o = ch_strdup(origin);
    if (d == NULL || o == NULL) {
        ch_free(d);
        ch_free(o);
        return CH_ENOMEM;
    }
    memcpy(d, p->data, p->len);
    fb->owned[2 * fb->n] = d;
    fb->owned[2 * fb->n + 1] = o;
    fb->recs[fb->n] = (ch_journal_rec){type, o, d, p->len};
    fb->n++;
    return 0;
}

static void fh_error_body(void *ud, const ch_http_req *rq, ch_http_resp *rs, const char *message)
{
    (void)ud;
    const char *id = ch_http_header(rq, "X-Amz-Firehose-Request-Id");
    ch_firehose_response(&rs->body, id ? id : "", wall_ms(), message);
}

static ch_firehose *fh_get(ch_serve *s)
{
    ch_firehose *f = NULL;
    pthread_mutex_lock(&s->fh_mu);
    if (s->fh_free > 0)
        f = s->fh_pool[--s->fh_free];
    pthread_mutex_unlock(&s->fh_mu);
    if (f == NULL && ch_firehose_new(&f) < 0)
        return NULL;
    return f;
}

static void fh_put(ch_serve *s, ch_firehose *f)
{
    pthread_mutex_lock(&s->fh_mu);
    if (s->fh_free < FIREHOSE_POOL) {
        s->fh_pool[s->fh_free++] = f;
        f = NULL;
    }
    pthread_mutex_unlock(&s->fh_mu);
    ch_firehose_free(f);
}

static void h_firehose(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    ch_serve *s = ud;
    const char *hid = ch_http_header(rq, "X-Amz-Firehose-Request-Id");
    fh_batch fb = {s, NULL, NULL, 0, 0, ""};
    snprintf(fb.request_id, sizeof fb.request_id, "%s", hid ? hid : "");
    size_t len;
    const char *body = ch_http_body(rq, &len);
    ch_buf unz;
    ch_buf_init(&unz, CH_FIREHOSE_MAX_BODY);
    ch_error err = {0};
    ch_firehose *f = NULL;
    const char *fail = NULL;
    unsigned status = 200;
    int rc = 0;
    if (atomic_load(&s->draining)) {
        status = 503;
        fail = "shutting down; retry later";
        goto answer;
    }
    const char *enc = ch_http_header(rq, "Content-Encoding");
    if (enc != NULL && strcmp(enc, "gzip") == 0) {
        if ((rc = ch_gunzip(body, len, &unz, &err)) < 0 ||
            (rc = ch_buf_reserve(&unz, CH_JSON_PADDING)) < 0) {
            status = rc == CH_ELIMIT ? 413 : 400;
            fail = err.msg[0] ? err.msg : "request body too large";
            goto answer;
        }
        body = unz.data;
        len = unz.len;
    }
    if ((f = fh_get(s)) == NULL) {
        status = 500;
        fail = "out of memory";
        goto answer;
    }
    ch_firehose_request req;
    rc = ch_firehose_parse(f, body, len, &req, fh_collect, &fb, &err);
    if (fb.request_id[0] == '\0')
        snprintf(fb.request_id, sizeof fb.request_id, "%s", req.request_id);
    if (rc < 0) {
        status = rc == CH_ENOMEM ? 500 : rc == CH_ELIMIT ? 413 : 400;
        fail = err.msg[0] ? err.msg : "out of memory";
        count2(s, "coinhound_batches_refused_total", "source", "firehose", "reason", "bad_request",
               1);
        goto answer;
    }
    if (fb.n > 0 && (rc = ch_journal_append(s->j, fb.recs, fb.n, NULL, &err)) < 0) {
        status = rc == CH_ELIMIT ? 503 : 500;
        fail = err.msg;
        count2(s, "coinhound_batches_refused_total", "source", "firehose", "reason",
               rc == CH_ELIMIT ? "journal_full" : "journal_error", 1);
    }
answer:
    rs->status = status;
    if (status == 503)
        rs->retry_after_s = RETRY_AFTER_S;
    /* Firehose matches the answer to its request by the id in the header. */
    ch_firehose_response(&rs->body, fb.request_id, wall_ms(), fail);
    if (status != 200)
        slog(s, "warn", "firehose_refused", "firehose request %s: %u %s", fb.request_id, status,
             fail ? fail : "");
    for (size_t i = 0; i < 2 * fb.n; i++)
        ch_free(fb.owned[i]);
    ch_free(fb.owned);
    ch_free(fb.recs);
    if (f != NULL)
        fh_put(s, f);
    ch_buf_free(&unz);
}

static void refresh_gauges(ch_serve *s)
{
    ch_journal_stats js;
    ch_journal_stats_get(s->j, &js);
    ch_metrics_set(s->m, "coinhound_journal_bytes", NULL, (double)js.bytes);
    ch_metrics_set(s->m, "coinhound_journal_max_bytes", NULL, (double)js.max_bytes);
    ch_metrics_set(s->m, "coinhound_journal_segments", NULL, (double)js.segments);
    ch_metrics_set(s->m, "coinhound_journal_fsyncs_total", NULL, (double)js.fsyncs);
    ch_metrics_set(s->m, "coinhound_journal_full_total", NULL, (double)js.full);
    ch_metrics_set(s->m, "coinhound_journal_io_errors_total", NULL, (double)js.io_errors);
    pthread_mutex_lock(&s->st_mu);
    ch_journal_pos cp = s->cp_pos;
    int64_t cpw = s->cp_wall_ms;
    pthread_mutex_unlock(&s->st_mu);
    ch_metrics_set(s->m, "coinhound_journal_lag_bytes", NULL, (double)ch_journal_lag(s->j, cp));
    ch_metrics_set(s->m, "coinhound_checkpoint_age_seconds", NULL,
                   cpw ? (double)(wall_ms() - cpw) / 1000 : -1);
    int64_t now = wall_ms();
    pl_lock_reader(s);
    ch_pipeline_stats ps;
    ch_pipeline_stats_get(s->p, &ps);
    int64_t mts[CH_DS__COUNT];
    memcpy(mts, s->max_ts, sizeof mts);
    size_t open = 0;
    ch_offenses *o = ch_pipeline_offenses(s->p);
    ch_offense **v = NULL;
    if (o != NULL && ch_offenses_sorted(o, CH_OFFENSE_MASK_OPEN, &v, &open) == 0)
        ch_free(v);
    pthread_mutex_unlock(&s->pl_mu);
    ch_metrics_set(s->m, "coinhound_offenses_open", NULL, (double)open);
    ch_metrics_set(s->m, "coinhound_duplicates_skipped_total", NULL, (double)ps.duplicates);
    ch_metrics_set(s->m, "coinhound_events_processed_total", NULL, (double)ps.processed);
    for (int i = 1; i < CH_DS__COUNT; i++) {
        if (mts[i] == 0)
            continue;
        char l[CH_METRICS_LABELS_MAX];
        ch_metrics_set(s->m, "coinhound_watermark_lag_seconds",
                       ch_metrics_label(l, sizeof l, "dataset", ch_dataset_name(i)),
                       (double)(now - mts[i]) / 1000);
    }
}

static void h_metrics(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    (void)rq;
    ch_serve *s = ud;
    refresh_gauges(s);
    if (ch_metrics_render(s->m, &rs->body) < 0) {
        ch_http_error(rs, 500, "metrics could not be written");
        return;
    }
    rs->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

/* GET /api/v1/ingest/status: what an operator checks before trusting the offenses. */
static void h_ingest_status(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    (void)rq;
    ch_serve *s = ud;
    ch_journal_stats js;
    ch_journal_stats_get(s->j, &js);
    pthread_mutex_lock(&s->st_mu);
    ch_journal_pos cp = s->cp_pos;
    int64_t cpw = s->cp_wall_ms;
    pthread_mutex_unlock(&s->st_mu);
    pl_lock_reader(s);
    ch_pipeline_stats ps;
    ch_pipeline_stats_get(s->p, &ps);
    int64_t mts[CH_DS__COUNT];
    memcpy(mts, s->max_ts, sizeof mts);
    uint64_t late = s->late_logged;
    pthread_mutex_unlock(&s->pl_mu);
    char pos[CH_JOURNAL_POS_MAX];
    ch_journal_pos_format(cp, pos);
    ch_buf *b = &rs->body;
    ch_buf_printf(b,
                  "{\"ready\":%s,\"draining\":%s,\"journal\":{\"bytes\":%llu,\"max_bytes\":%llu,"
                  "\"segments\":%llu,\"lag_bytes\":%llu,\"fsyncs\":%llu,\"full\":%llu,"
                  "\"io_errors\":%llu,\"broken\":%s},\"checkpoint\":{\"position\":\"%s\","
                  "\"age_seconds\":%.3f},\"pipeline\":{\"events_processed\":%llu,"
                  "\"duplicates_skipped\":%llu,\"late_events\":%llu},\"watermarks\":{",
                  atomic_load(&s->ready) ? "true" : "false",
                  atomic_load(&s->draining) ? "true" : "false", (unsigned long long)js.bytes,
                  (unsigned long long)js.max_bytes, (unsigned long long)js.segments,
                  (unsigned long long)ch_journal_lag(s->j, cp), (unsigned long long)js.fsyncs,
                  (unsigned long long)js.full, (unsigned long long)js.io_errors,
                  js.broken ? "true" : "false", pos, cpw ? (double)(wall_ms() - cpw) / 1000 : -1.0,
                  (unsigned long long)ps.processed, (unsigned long long)ps.duplicates,
                  (unsigned long long)late);
    bool first = true;
    for (int i = 1; i < CH_DS__COUNT; i++) {
        if (mts[i] == 0)
            continue;
        char t[40];
        size_t n = ch_time_format(mts[i] - s->cfg->lateness_ms, t);
        ch_buf_printf(b, "%s\"%s\":\"%.*s\"", first ? "" : ",", ch_dataset_name(i), (int)n, t);
        first = false;
    }
    ch_buf_adds(b, "}}");
}

static void h_healthz(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    (void)rq;
    ch_serve *s = ud;
    ch_journal_stats js;
    ch_journal_stats_get(s->j, &js);
    pthread_mutex_lock(&s->st_mu);
    ch_journal_pos cp = s->cp_pos;
    int64_t cpw = s->cp_wall_ms;
    pthread_mutex_unlock(&s->st_mu);
    bool ready = atomic_load(&s->ready) && !js.broken && !atomic_load(&s->draining);
    rs->status = ready ? 200 : 503;
    ch_buf_printf(&rs->body,
                  "{\"ready\":%s,\"journal_lag_bytes\":%llu,\"checkpoint_age_seconds\":%.3f,"
                  "\"journal_bytes\":%llu,\"journal_max_bytes\":%llu,\"journal_broken\":%s}",
                  ready ? "true" : "false", (unsigned long long)ch_journal_lag(s->j, cp),
                  cpw ? (double)(wall_ms() - cpw) / 1000 : -1.0, (unsigned long long)js.bytes,
                  (unsigned long long)js.max_bytes, js.broken ? "true" : "false");
}

/* Every route, in one table: method, path (`{name}` matches one segment), role, handler, body
 * limit (0 = none accepted; the ingest route's is the config's max_body, filled at open),
 * token header, error shape, summary, flags. docs/openapi.json must name the same routes
 * (tests/unit/test_api.c), and the role matrix test walks them. Other modules add their routes
 * here, one line each. */
static const ch_route routes_template[] = {
    {"POST", "/api/v1/ingest", CH_ROLE_INGEST, h_ingest, 0, NULL, NULL,
     "records in any format analyze reads; 202 once journaled", 0},
    {"POST", "/api/v1/firehose", CH_ROLE_INGEST, h_firehose, CH_FIREHOSE_MAX_BODY,
     "X-Amz-Firehose-Access-Key", fh_error_body, "Amazon Data Firehose HTTP endpoint delivery", 0},
    {"GET", "/api/v1/offenses", CH_ROLE_VIEWER, ch_api_offenses_list, 0, NULL, NULL,
     "offenses: filter, sort, fields, Range or limit/offset", 0},
    {"GET", "/api/v1/offenses/{id}", CH_ROLE_VIEWER, ch_api_offense_get, 0, NULL, NULL,
     "one offense with its ETag", 0},
    {"POST", "/api/v1/offenses/{id}", CH_ROLE_ANALYST, ch_api_offense_update, CH_API_SMALL_BODY,
     NULL, NULL, "change status, assignment, closing reason, follow-up, protection (If-Match)", 0},
    {"GET", "/api/v1/offenses/{id}/notes", CH_ROLE_VIEWER, ch_api_notes_list, 0, NULL, NULL,
     "an offense's notes", 0},
    {"POST", "/api/v1/offenses/{id}/notes", CH_ROLE_ANALYST, ch_api_note_add, CH_API_NOTE_BODY,
     NULL, NULL, "add a note", 0},
    {"GET", "/api/v1/offenses/{id}/graph", CH_ROLE_VIEWER, ch_api_offense_graph, 0, NULL, NULL,
     "the offense's investigation graph (cytoscape.js elements; expand)", 0},
    {"GET", "/api/v1/offenses/{id}/events", CH_ROLE_VIEWER, ch_api_offense_events, 0, NULL, NULL,
     "the offense's contributing events from the event store (limit)", 0},
    {"POST", "/api/v1/searches", CH_ROLE_VIEWER, ch_api_search_start, 8192, NULL, NULL,
     "start an asynchronous search of the event store", 0},
    {"GET", "/api/v1/searches/{id}", CH_ROLE_VIEWER, ch_api_search_get, 0, NULL, NULL,
     "a search's state and progress", 0},
    {"GET", "/api/v1/searches/{id}/results", CH_ROLE_VIEWER, ch_api_search_results, 0, NULL, NULL,
     "a finished search's matches (offset, limit) and count-by groups", 0},
    {"DELETE", "/api/v1/searches/{id}", CH_ROLE_VIEWER, ch_api_search_delete, 0, NULL, NULL,
     "cancel and forget a search", 0},
    {"GET", "/api/v1/offense_closing_reasons", CH_ROLE_VIEWER, ch_api_closing_reasons, 0, NULL,
     NULL, "the reasons an offense may be closed with", 0},
    {"POST", "/api/v1/session", CH_ROLE_PUBLIC, ch_api_session_login, CH_API_SMALL_BODY, NULL, NULL,
     "console login: sets the session cookie, returns the CSRF token",
     CH_ROUTE_CSRF_EXEMPT | CH_ROUTE_MUST_CHANGE_OK},
    {"GET", "/api/v1/session", CH_ROLE_PUBLIC, ch_api_session_get, 0, NULL, NULL,
     "who am I: name, role, a fresh CSRF token", CH_ROUTE_MUST_CHANGE_OK},
    {"DELETE", "/api/v1/session", CH_ROLE_PUBLIC, ch_api_session_logout, 0, NULL, NULL, "logout",
     CH_ROUTE_MUST_CHANGE_OK},
    {"PUT", "/api/v1/session/password", CH_ROLE_PUBLIC, ch_api_session_password, CH_API_SMALL_BODY,
     NULL, NULL, "change the session's own password (first login)", CH_ROUTE_MUST_CHANGE_OK},
    {"GET", "/api/v1/users", CH_ROLE_VIEWER, ch_api_users_list, 0, NULL, NULL,
     "users by risk, highest first", 0},
    {"GET", "/api/v1/users/{name}", CH_ROLE_VIEWER, ch_api_user_get, 0, NULL, NULL,
     "a user's risk and recent rule hits", 0},
    {"GET", "/api/v1/users/{name}/timeline", CH_ROLE_VIEWER, ch_api_user_timeline, 0, NULL, NULL,
     "a user's timeline: firsts, rule hits, offenses, lineage", 0},
    {"GET", "/api/v1/audit", CH_ROLE_ADMIN, ch_api_audit, 0, NULL, NULL,
     "the audit log: since, limit", 0},
    {"GET", "/api/v1/rules", CH_ROLE_VIEWER, ch_api_rules_list, 0, NULL, NULL, "the loaded rules",
     0},
    {"POST", "/api/v1/rules/test", CH_ROLE_ANALYST, ch_api_rules_test, CH_API_TEST_BODY, NULL, NULL,
     "run a rule (YAML or id) over records in an isolated pipeline", 0},
    {"GET", "/api/v1/rules/{id}", CH_ROLE_VIEWER, ch_api_rule_get, 0, NULL, NULL,
     "one rule with its expression and test cases", 0},
    {"POST", "/api/v1/rules/{id}", CH_ROLE_ADMIN, ch_api_rule_update, CH_API_SMALL_BODY, NULL, NULL,
     "enable or disable a rule (durable, audited)", 0},
    {"GET", "/api/v1/intel/feeds", CH_ROLE_VIEWER, ch_api_intel_feeds, 0, NULL, NULL,
     "the configured intel pull feeds and their last pull", 0},
    {"POST", "/api/v1/intel/pull", CH_ROLE_ADMIN, ch_api_intel_pull, CH_API_SMALL_BODY, NULL, NULL,
     "pull one feed or every feed now", 0},
    {"GET", "/api/v1/reference_sets", CH_ROLE_VIEWER, ch_api_refsets_list, 0, NULL, NULL,
     "reference sets: name, type, count", 0},
    {"POST", "/api/v1/reference_sets", CH_ROLE_ANALYST, ch_api_refset_create, CH_API_SMALL_BODY,
     NULL, NULL, "create a reference set", 0},
    {"GET", "/api/v1/reference_sets/{name}", CH_ROLE_VIEWER, ch_api_refset_get, 0, NULL, NULL,
     "a reference set and its first elements", 0},
    {"DELETE", "/api/v1/reference_sets/{name}", CH_ROLE_ANALYST, ch_api_refset_delete, 0, NULL,
     NULL, "delete a reference set", 0},
    {"POST", "/api/v1/reference_sets/{name}/values", CH_ROLE_ANALYST, ch_api_refset_add,
     CH_API_REFSET_BODY, NULL, NULL, "add values (one or a bulk load), with a TTL", 0},
    {"DELETE", "/api/v1/reference_sets/{name}/values/{value}", CH_ROLE_ANALYST,
     ch_api_refset_remove, 0, NULL, NULL, "remove a value", 0},
    {"GET", "/api/v1/offenses/{id}/response_plan", CH_ROLE_ANALYST, ch_api_response_plan_propose, 0,
     NULL, NULL, "build, store and return a response plan for the offense", 0},
    {"GET", "/api/v1/response_plans/{id}", CH_ROLE_ANALYST, ch_api_response_plan_get, 0, NULL, NULL,
     "a stored response plan with each step's run state", 0},
    {"POST", "/api/v1/response_plans/{id}/run", CH_ROLE_ADMIN, ch_api_response_plan_run, 65536,
     NULL, NULL, "run an approved plan's steps (respond.execute must be true)", 0},
    {"GET", "/api/v1/ingest/status", CH_ROLE_VIEWER, h_ingest_status, 0, NULL, NULL,
     "journal, checkpoint, pipeline and watermark state", 0},
    {"GET", "/api/v1/openapi.json", CH_ROLE_PUBLIC, ch_api_openapi, 0, NULL, NULL,
     "this API's OpenAPI 3.1 document", 0},
    {"GET", "/healthz", CH_ROLE_PUBLIC, h_healthz, 0, NULL, NULL,
     "ready, journal lag, checkpoint age", 0},
    {"GET", "/metrics", CH_ROLE_PUBLIC, h_metrics, 0, NULL, NULL, "Prometheus text exposition", 0},
    {NULL, NULL, CH_ROLE_PUBLIC, NULL, 0, NULL, NULL, NULL, 0},
};

const ch_route *ch_serve_routes(void) { return routes_template; }

ch_api *ch__serve_api(void *ud) { return &((ch_serve *)ud)->api; }

static void api_pipeline_lock(void *ud, bool lock)
{
    ch_serve *s = ud;
    if (lock)
        pl_lock_reader(s);
    else
        pthread_mutex_unlock(&s->pl_mu);
}

static void api_reload(void *ud) { ch_serve_reload(ud); }

static const struct ch_ruleset *api_pipeline_rules(void *ud)
{
    return ch_pipeline_rules(((ch_serve *)ud)->p);
}

static bool api_pipeline_rule_enabled(void *ud, uint32_t i)
{
    return ch_pipeline_rule_enabled(((ch_serve *)ud)->p, i);
}

static int api_pipeline_rule_set(void *ud, const char *id, bool enabled, ch_error *err)
{
    return ch_pipeline_set_rule_enabled(((ch_serve *)ud)->p, id, enabled, err);
}

void ch_serve_set_intel(ch_serve *s, const ch_serve_intel_hook *h)
{
    pthread_mutex_lock(&s->api.intel_mu);
    s->api.intel_hook = h;
    pthread_mutex_unlock(&s->api.intel_mu);
}

static ch_offenses *api_pipeline_offenses(void *ud)
{
    return ch_pipeline_offenses(((ch_serve *)ud)->p);
}

static void on_answer(void *ud, int route, unsigned status)
{
    ch_serve *s = ud;
    char st[8];
    snprintf(st, sizeof st, "%u", status);
    count2(s, "coinhound_http_requests_total", "route",
           route >= 0 ? s->routes[route].path : "other", "status", st, 1);
}

static void pipe_msg(void *ud, const char *msg) { slog(ud, "warn", "pipeline", "%s", msg); }

static void on_hit(const ch_rule_hit *hit, void *ud)
{
    ch_serve *s = ud;
    char l[CH_METRICS_LABELS_MAX];
    ch_metrics_add(s->m, "coinhound_rule_hits_total",
                   ch_metrics_label(l, sizeof l, "rule", hit->rule->id), 1);
}

/* ---- lifecycle --------------------------------------------------------------------------------
 */

static int read_pem(const char *path, char **out, ch_error *err)
{
    size_t len;
    return ch_read_file(path, 1u << 20, out, &len, err);
}

int ch_serve_open(const ch_serve_config *cfg, ch_serve_log_fn log, void *log_ud, ch_serve **out,
                  ch_error *err)
{
    *out = NULL;
    int rc = ch_serve_config_check(cfg, err);
    if (rc < 0)
        return rc;
    ch_serve *s = ch_calloc(1, sizeof *s);
    if (s == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    s->cfg = cfg;
    s->log = log;
    s->log_ud = log_ud;
    pthread_mutex_init(&s->pl_mu, NULL);
    pthread_mutex_init(&s->st_mu, NULL);
    pthread_mutex_init(&s->fh_mu, NULL);
    pthread_mutex_init(&s->ans_mu, NULL);
    /* Hunts queued before a crash or a stop run once the server is ready. */
    atomic_store(&s->hunt_req, true);
    pthread_cond_init(&s->ans_cv, NULL);
    ch_diag_init(&s->diag, NULL);
    char *cert = NULL, *key = NULL;
    if ((s->m = ch_metrics_new()) == NULL) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto fail;
    }
    /* The journal first: what it holds is what was promised. */
    ch_journal_opts jo = {
        cfg->journal_dir, cfg->journal_max_bytes, cfg->journal_segment_bytes, cfg->max_body + 4096,
        cfg->fsync,       cfg->fsync_interval_ms};
    ch_journal_recovery rec;
    if ((rc = ch_journal_open(&jo, &s->j, &rec, err)) < 0)
        goto fail;
    if (rec.damaged) {
        ch_metrics_add(s->m, "coinhound_journal_damaged_entries_total", NULL, 1);
        slog(s, "error", "journal_recovered",
             "journal %s: a damaged entry at segment %llu offset %llu (%s); %llu bytes from "
             "there were cut, every entry before it is kept",
             cfg->journal_dir, (unsigned long long)rec.at.seg, (unsigned long long)rec.at.off,
             rec.reason, (unsigned long long)rec.cut_bytes);
    }
    ch_pipeline_config pc = {0};
    pc.db = cfg->db;
    pc.pack = cfg->pack;
    pc.context = cfg->context;
    pc.geoip = (const char *const *)cfg->geoip;
    pc.ngeoip = cfg->ngeoip;
    pc.no_geoip = cfg->no_geoip;
    pc.lateness_ms = cfg->lateness_ms;
    pc.event_retention = cfg->retention;
    pc.event_hot = cfg->store_hot;
    pc.no_event_store = cfg->no_store;
    pc.diag = &s->diag;
    pc.msg = pipe_msg;
    pc.msg_ud = s;
    pc.on_hit = on_hit;
    pc.hit_ud = s;
    if ((rc = ch_pipeline_open(&pc, &s->p, err)) < 0)
        goto fail;
    /* The workers do what analyze's do ahead of the chain (pipeline.h, ch_pipeline_prep: the
     * record identity, GeoIP on a clone of the pipeline's handle): so they start after the
     * pipeline opened, and stop before it closes. A reload swaps rules, context and reference
     * sets, never the GeoIP handle or the store the prepared work depends on. */
    unsigned threads = cfg->threads ? cfg->threads : ch_prefetch_cpus();
    if (threads > 1) {
        ch_prefetch_prep prep;
        ch_pipeline_prep(s->p, &prep);
        if ((s->pool = ch_prefetch_pool_new_prep(threads - 1, &prep)) == NULL)
            slog(s, "warn", "no_workers",
                 "parse workers could not be started; parsing on the pipeline thread");
    }
    char pos_text[256];
    if ((rc = ch_pipeline_position(s->p, INPUT_NAME, pos_text, sizeof pos_text, err)) < 0 ||
        (rc = ch_journal_pos_parse(pos_text, &s->cp_pos, err)) < 0)
        goto fail;
    ch_journal_pos begin = ch_journal_begin(s->j);
    if (s->cp_pos.id != 0 && s->cp_pos.id != begin.id) {
        slog(s, "error", "journal_replaced",
             "the store's checkpoint names journal %016llx, %s is journal %016llx: reading it "
             "from its start",
             (unsigned long long)s->cp_pos.id, cfg->journal_dir, (unsigned long long)begin.id);
        s->cp_pos = begin;
    } else if (s->cp_pos.id == 0) {
        s->cp_pos = begin;
    }
    s->cp_wall_ms = wall_ms();
    if (cfg->nspool > 0) {
        /* A chunk (with a flow log header carried in front) is one journal entry: it must fit
         * the entry cap, which is max_body. */
        uint64_t chunk = cfg->spool_max_chunk ? cfg->spool_max_chunk : CH_SPOOL_DEFAULT_CHUNK;
        if (chunk + 8192 > cfg->max_body)
            chunk = cfg->max_body > 2 * 8192 ? cfg->max_body - 8192 : 8192;
        ch_spool_opts so = {(const char *const *)cfg->spool,
                            cfg->nspool,
                            (unsigned)cfg->spool_rescan_ms,
                            0,
                            chunk,
                            cfg->spool_max_files,
                            false};
        if ((rc = ch_spool_new(&so, &s->spool, err)) < 0)
            goto fail;
        ch_spool_set_log(s->spool, spool_log, s);
        snprintf(s->ledger_path, sizeof s->ledger_path, "%s/%s", cfg->journal_dir, LEDGER_FILE);
        if ((rc = spool_replay(s, err)) < 0 || (rc = ch_spool_start(s->spool, err)) < 0)
            goto fail;
    }
    /* The REST API's stores: accounts (API tokens, console sessions, audit) and an offense
     * store connection of its own, both on the pipeline's database file. */
    pthread_mutex_init(&s->acc_mu, NULL);
    pthread_mutex_init(&s->api.store_mu, NULL);
    pthread_mutex_init(&s->api.intel_mu, NULL);
    s->api_mu_init = true;
    if ((rc = ch_accounts_open(cfg->db, true, &s->accounts, err)) < 0 ||
        (rc = ch_store_open(cfg->db, &s->api.store, err)) < 0 ||
        (rc = ch_intel_store_open(cfg->db, &s->api.intel, err)) < 0)
        goto fail;
    s->api.accounts = s->accounts;
    s->api.accounts_mu = &s->acc_mu;
    s->api.pipeline_lock = api_pipeline_lock;
    s->api.pipeline_offenses = api_pipeline_offenses;
    s->api.reload = api_reload;
    s->api.hunt = api_hunt;
    s->api.pipeline_rule_enabled = api_pipeline_rule_enabled;
    s->api.pipeline_rule_set = api_pipeline_rule_set;
    s->api.cfg = cfg;
    s->api.pipeline_rules = api_pipeline_rules;
    s->api.ud = s;
    s->api.respond = &cfg->respond;
    if ((s->api.resp_runs = ch_api_resp_runs_new()) == NULL) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto fail;
    }
    if ((s->api.searches = ch_api_searches_new()) == NULL) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto fail;
    }
    /* Tokens and TLS material. */
    const char *tf[CH_ROLE__COUNT] = {NULL};
    tf[CH_ROLE_INGEST] = cfg->ingest_token_file;
    tf[CH_ROLE_READ] = cfg->read_token_file;
    for (int r = 1; r < CH_ROLE__COUNT; r++) {
        size_t n;
        if (tf[r] != NULL &&
            (rc = ch_token_file_load(tf[r], &s->tokens[r], &s->tokens_len[r], &n, err)) < 0)
            goto fail;
    }
    if (cfg->tls_cert != NULL && ((rc = read_pem(cfg->tls_cert, &cert, err)) < 0 ||
                                  (rc = read_pem(cfg->tls_key, &key, err)) < 0))
        goto fail;
    if (pthread_create(&s->pipe_thread, NULL, pipe_main, s) != 0) {
        rc = ch_error_set(err, CH_ERR, "cannot start the pipeline thread");
        goto fail;
    }
    s->pipe_started = true;
    if (s->spool != NULL) {
        if (pthread_create(&s->spool_thread, NULL, spool_main, s) != 0) {
            rc = ch_error_set(err, CH_ERR, "cannot start the spool thread");
            goto fail;
        }
        s->spool_started = true;
    }
    if ((rc = ch_resp_auto_start(ch_store_path(s->api.store), &cfg->respond, s->log, s->log_ud,
                                 &s->auto_resp, err)) < 0)
        goto fail;
    _Static_assert(sizeof routes_template <= sizeof s->routes, "room for every route");
    memcpy(s->routes, routes_template, sizeof routes_template);
    for (size_t i = 0; s->routes[i].method != NULL; i++)
        if (s->routes[i].handler == h_ingest)
            s->routes[i].body_limit = cfg->max_body;
    ch_http_opts ho = {0};
    ho.listen = cfg->listen;
    ho.tls_cert_pem = cert;
    ho.tls_key_pem = key;
    ho.routes = s->routes;
    ho.ud = s;
    ho.console_dir = cfg->console;
    for (int r = 0; r < CH_ROLE__COUNT; r++) {
        ho.tokens[r] = s->tokens[r];
        ho.tokens_len[r] = s->tokens_len[r];
    }
    ho.max_connections = cfg->max_connections;
    ho.accounts = s->accounts;
    ho.accounts_mu = &s->acc_mu;
    ho.on_answer = on_answer;
    if ((rc = ch_http_start(&ho, &s->http, err)) < 0)
        goto fail;
    ch_free(cert);
    if (key) {
        memset(key, 0, strlen(key));
        ch_free(key);
    }
    slog(s, "info", "listening", "listening on %s (port %u)%s; journal %s (fsync %s)", cfg->listen,
         (unsigned)ch_http_port(s->http), cfg->tls_cert ? " with TLS" : "", cfg->journal_dir,
         cfg->fsync == CH_JOURNAL_FSYNC_BATCH      ? "batch"
         : cfg->fsync == CH_JOURNAL_FSYNC_INTERVAL ? "interval"
                                                   : "none");
    *out = s;
    return 0;
fail:
    ch_free(cert);
    ch_free(key);
    atomic_store(&s->draining, true);
    ch_serve_close(s);
    return rc;
}

uint16_t ch_serve_port(const ch_serve *s) { return s->http ? ch_http_port(s->http) : 0; }

void ch_serve_reload(ch_serve *s)
{
    atomic_store(&s->reload_req, true);
    ch_journal_wake(s->j);
}

int ch_serve_drain(ch_serve *s, ch_error *err)
{
    (void)err;
    atomic_store(&s->draining, true);
    /* HTTP first: requests in flight finish (and their records are journaled) before it stops. */
    ch_http_stop(s->http);
    s->http = NULL;
    if (s->spool_started) {
        atomic_store(&s->stop_spool, true);
        pthread_join(s->spool_thread, NULL);
        s->spool_started = false;
    }
    if (s->pipe_started) {
        atomic_store(&s->stop_pipe, true);
        ch_journal_wake(s->j);
        pthread_join(s->pipe_thread, NULL);
        s->pipe_started = false;
    }
    pthread_mutex_lock(&s->st_mu);
    char text[CH_JOURNAL_POS_MAX];
    ch_journal_pos_format(s->cp_pos, text);
    pthread_mutex_unlock(&s->st_mu);
    slog(s, "info", "drained",
         "drained: every accepted record is processed and checkpointed "
         "(journal position %s)",
         text);
    return 0;
}

void ch_serve_close(ch_serve *s)
{
    if (s == NULL)
        return;
    ch_http_stop(s->http);
    ch_api_resp_runs_free(s->api.resp_runs);
    ch_resp_auto_stop(s->auto_resp);
    if (s->spool_started) {
        atomic_store(&s->stop_spool, true);
        pthread_join(s->spool_thread, NULL);
    }
    if (s->pipe_started) {
        atomic_store(&s->stop_pipe, true);
        ch_journal_wake(s->j);
        pthread_join(s->pipe_thread, NULL);
    }
    ch_spool_free(s->spool);
    ch_store_close(s->api.store);
    ch_api_searches_free(s->api.searches);
    ch_intel_store_close(s->api.intel);
    ch_accounts_close(s->accounts);
    if (s->api_mu_init) {
        pthread_mutex_destroy(&s->acc_mu);
        pthread_mutex_destroy(&s->api.store_mu);
        pthread_mutex_destroy(&s->api.intel_mu);
    }
    ch_prefetch_pool_free(s->pool); /* first: its workers hold GeoIP clones of the pipeline's */
    ch_pipeline_close(s->p);
    ch_journal_close(s->j);
    ch_metrics_free(s->m);
    for (int r = 0; r < CH_ROLE__COUNT; r++) {
        if (s->tokens[r] != NULL)
            memset(s->tokens[r], 0, s->tokens_len[r]);
        ch_free(s->tokens[r]);
    }
    for (size_t i = 0; i < s->fh_free; i++)
        ch_firehose_free(s->fh_pool[i]);
    pthread_mutex_destroy(&s->pl_mu);
    pthread_mutex_destroy(&s->st_mu);
    pthread_mutex_destroy(&s->fh_mu);
    pthread_mutex_destroy(&s->ans_mu);
    pthread_cond_destroy(&s->ans_cv);
    ch_free(s);
}
