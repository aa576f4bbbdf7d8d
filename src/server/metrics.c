/*
 * metrics.c - the metric families and their series (see metrics.h).
 *
 * Series live in one open-addressing table keyed by (family, labels) text; rendering sorts
 * them by family then labels so that the exposition is stable for people and tests (O(n log n)
 * per scrape, n a few hundred).
 */
#include "server/metrics.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "core/mem.h"

typedef struct family {
    const char *name, *type, *help;
} family;

/* Every metric serve exports (docs/SERVE.md lists them with their labels). */
static const family families[] = {
    {"coinhound_records_received_total", "counter",
     "Records received, by source (http, firehose, spool) and format (source type)."},
    {"coinhound_records_accepted_total", "counter",
     "Records accepted into the journal, by source and format."},
    {"coinhound_records_rejected_total", "counter",
     "Records refused by their parser, or batches refused whole, by source and reason."},
    {"coinhound_pipeline_rejected_total", "counter",
     "Records the pipeline's parsers refused, by reason (those refused at ingest included: "
     "they are journaled with their batch)."},
    {"coinhound_batches_refused_total", "counter",
     "Batches not journaled (journal full, I/O error, not logs), by source and reason."},
    {"coinhound_duplicates_skipped_total", "counter",
     "Records the pipeline had processed before (re-sent, replayed), skipped."},
    {"coinhound_events_processed_total", "counter", "Events through the pipeline."},
    {"coinhound_journal_bytes", "gauge", "Bytes of journal segments on disk."},
    {"coinhound_journal_max_bytes", "gauge", "The journal's size cap."},
    {"coinhound_journal_segments", "gauge", "Journal segments on disk."},
    {"coinhound_journal_lag_bytes", "gauge",
     "Journal bytes accepted but not yet processed by the pipeline."},
    {"coinhound_journal_fsyncs_total", "counter", "fdatasync calls on the journal."},
    {"coinhound_journal_full_total", "counter", "Appends refused because the journal was full."},
    {"coinhound_journal_io_errors_total", "counter", "Appends refused by a write or sync error."},
    {"coinhound_journal_damaged_entries_total", "counter",
     "Damaged journal entries found (at open or while reading), reported and skipped."},
    {"coinhound_watermark_lag_seconds", "gauge",
     "Wall-clock time minus the newest event time seen, by dataset."},
    {"coinhound_late_records_total", "counter",
     "Events older than their dataset's watermark (newest event time minus lateness)."},
    {"coinhound_rule_hits_total", "counter", "Rule hits, by rule id."},
    {"coinhound_offenses_open", "gauge", "Open offenses."},
    {"coinhound_checkpoint_duration_seconds", "gauge", "Duration of the last checkpoint."},
    {"coinhound_checkpoint_age_seconds", "gauge", "Seconds since the last checkpoint."},
    {"coinhound_checkpoints_total", "counter", "Checkpoints written."},
    {"coinhound_http_requests_total", "counter", "HTTP requests, by route and status."},
    {"coinhound_spool_chunks_total", "counter", "Chunks read from spool files and journaled."},
    {"coinhound_spool_paused_total", "counter", "Times the spool paused on a full journal."},
    {"coinhound_spool_ledger_files", "gauge", "Files in the spool ledger."},
    {"coinhound_firehose_control_messages_total", "counter",
     "CloudWatch Logs control messages received through Firehose (health checks)."},
    {"coinhound_reloads_total", "counter", "Reloads (SIGHUP), by result."},
    {"coinhound_metrics_series_dropped_total", "counter",
     "Series not kept because the series cap was reached."},
};
#define NFAM (sizeof families / sizeof families[0])

typedef struct series {
    int fam; /* -1 = empty slot */
    char *labels;
    double v;
} series;

struct ch_metrics {
    pthread_mutex_t mu;
    series *tab;
    size_t cap, n;
    double dropped;
};

ch_metrics *ch_metrics_new(void)
{
    ch_metrics *m = ch_calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->cap = 2 * CH_METRICS_MAX_SERIES;
    m->tab = ch_malloc(m->cap * sizeof *m->tab);
    if (m->tab == NULL) {
        ch_free(m);
        return NULL;
    }
    for (size_t i = 0; i < m->cap; i++)
        m->tab[i].fam = -1;
    pthread_mutex_init(&m->mu, NULL);
    return m;
}

void ch_metrics_free(ch_metrics *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->cap; i++)
        if (m->tab[i].fam >= 0)
            ch_free(m->tab[i].labels);
    ch_free(m->tab);
    pthread_mutex_destroy(&m->mu);
    ch_free(m);
}

static int fam_of(const char *name)
{
    for (size_t i = 0; i < NFAM; i++)
        if (strcmp(families[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* The series, created when create; NULL when missing or the cap is reached. Lock held. */
static series *lookup(ch_metrics *m, int fam, const char *labels, bool create)
{
    if (labels == NULL)
        labels = "";
    uint64_t h = ch_hash_fnv1a(CH_HASH_SEED, &fam, sizeof fam);
    h = ch_hash_fnv1a(h, labels, strlen(labels));
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    for (size_t i = (size_t)h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        series *s = &m->tab[i];
        if (s->fam < 0) {
            if (!create)
                return NULL;
            if (m->n >= CH_METRICS_MAX_SERIES || (s->labels = ch_strdup(labels)) == NULL) {
                m->dropped++;
                return NULL;
            }
            s->fam = fam;
            s->v = 0;
            m->n++;
            return s;
        }
        if (s->fam == fam && strcmp(s->labels, labels) == 0)
            return s;
    }
}

static int update(ch_metrics *m, const char *name, const char *labels, double v, bool set)
{
    int fam = fam_of(name);
    if (fam < 0)
        return CH_ENOTFOUND;
    pthread_mutex_lock(&m->mu);
    series *s = lookup(m, fam, labels, true);
    if (s != NULL)
        s->v = set ? v : s->v + v;
    pthread_mutex_unlock(&m->mu);
    return s ? 0 : CH_ELIMIT;
}

int ch_metrics_add(ch_metrics *m, const char *name, const char *labels, double v)
{
    return update(m, name, labels, v, false);
}

int ch_metrics_set(ch_metrics *m, const char *name, const char *labels, double v)
{
    return update(m, name, labels, v, true);
}

double ch_metrics_get(ch_metrics *m, const char *name, const char *labels)
{
    int fam = fam_of(name);
    if (fam < 0)
        return 0;
    pthread_mutex_lock(&m->mu);
    series *s = lookup(m, fam, labels, false);
    double v = s ? s->v : 0;
    pthread_mutex_unlock(&m->mu);
    return v;
}

/* Append k="v" (escaped) at buf[*o]; false when it does not fit. */
static bool put_label(char *buf, size_t cap, size_t *o, const char *k, const char *v)
{
    int w = snprintf(buf + *o, cap - *o, "%s%s=\"", *o ? "," : "", k);
    if (w < 0 || (size_t)w >= cap - *o)
        return false;
    *o += (size_t)w;
    /* The format escapes backslash, double quote and newline in label values. */
    for (const char *p = v ? v : ""; *p; p++) {
        if (*o + 4 >= cap)
            return false;
        if (*p == '\\' || *p == '"') {
            buf[(*o)++] = '\\';
            buf[(*o)++] = *p;
        } else if (*p == '\n') {
            buf[(*o)++] = '\\';
            buf[(*o)++] = 'n';
        } else {
            buf[(*o)++] = *p;
        }
    }
    buf[(*o)++] = '"';
    buf[*o] = '\0';
    return true;
}

const char *ch_metrics_label(char *buf, size_t cap, const char *k, const char *v)
{
    size_t o = 0;
    buf[0] = '\0';
    if (!put_label(buf, cap, &o, k, v))
        buf[0] = '\0';
    return buf;
}

const char *ch_metrics_labels2(char *buf, size_t cap, const char *k1, const char *v1,
                               const char *k2, const char *v2)
{
    size_t o = 0;
    buf[0] = '\0';
    if (!put_label(buf, cap, &o, k1, v1) || !put_label(buf, cap, &o, k2, v2))
        buf[0] = '\0';
    return buf;
}

static int cmp_series(const void *a, const void *b)
{
    const series *x = *(series *const *)a, *y = *(series *const *)b;
    if (x->fam != y->fam)
        return x->fam - y->fam;
    return strcmp(x->labels, y->labels);
}

static int put_value(ch_buf *out, double v)
{
    /* Integers as integers (counters mostly are); others with enough digits. */
    if (v == (double)(long long)v && v < 9e15 && v > -9e15)
        return ch_buf_printf(out, "%lld\n", (long long)v);
    return ch_buf_printf(out, "%.6f\n", v);
}

int ch_metrics_render(ch_metrics *m, ch_buf *out)
{
    pthread_mutex_lock(&m->mu);
    series **v = ch_malloc((m->n + 1) * sizeof *v);
    if (v == NULL) {
        pthread_mutex_unlock(&m->mu);
        return CH_ENOMEM;
    }
    size_t n = 0;
    for (size_t i = 0; i < m->cap; i++)
        if (m->tab[i].fam >= 0)
            v[n++] = &m->tab[i];
    qsort(v, n, sizeof *v, cmp_series);
    int rc = 0;
    int last = -1;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const family *f = &families[v[i]->fam];
        if (v[i]->fam != last) {
            rc = ch_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
                               f->type);
            last = v[i]->fam;
        }
        if (rc == 0)
            rc = v[i]->labels[0] ? ch_buf_printf(out, "%s{%s} ", f->name, v[i]->labels)
                                 : ch_buf_printf(out, "%s ", f->name);
        if (rc == 0)
            rc = put_value(out, v[i]->v);
    }
    if (rc == 0 && m->dropped > 0)
        rc = ch_buf_printf(out,
                           "# TYPE coinhound_metrics_series_dropped_total counter\n"
                           "coinhound_metrics_series_dropped_total %.0f\n",
                           m->dropped);
    pthread_mutex_unlock(&m->mu);
    ch_free(v);
    return rc;
}
