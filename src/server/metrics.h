/*
 * metrics.h - counters and gauges for `GET /metrics`, in the Prometheus text exposition format
 * (version 0.0.4): "# HELP", "# TYPE", then one "name{label="value",...} number" line per
 * series. No Prometheus C client is packaged for Debian and the format is small.
 *
 * A family (name, type, help) is declared once in a static table (metrics.c), so every series
 * of a name shares one HELP and TYPE line and a misspelt name fails loudly (CH_ENOTFOUND)
 * instead of inventing a family. Series are keyed by their label text, which the caller builds
 * with ch_metrics_labels (values escaped as the format requires). Updates take one mutex: they
 * happen per request, per batch and per rule hit, not per record. The number of series is
 * capped (CH_METRICS_MAX_SERIES); past it new series are counted in
 * coinhound_metrics_series_dropped_total and not kept.
 *
 * Ownership: ch_metrics_new allocates, ch_metrics_free frees; thread-safe throughout.
 */
#ifndef CH_SERVER_METRICS_H
#define CH_SERVER_METRICS_H

#include <stddef.h>

#include "core/buf.h"
#include "core/error.h"

#define CH_METRICS_MAX_SERIES 8192
#define CH_METRICS_LABELS_MAX 512

typedef struct ch_metrics ch_metrics;

ch_metrics *ch_metrics_new(void);
void ch_metrics_free(ch_metrics *m);

/* Add v to a counter (or gauge) series; labels as built by ch_metrics_labels, or NULL. */
int ch_metrics_add(ch_metrics *m, const char *name, const char *labels, double v);
/* Set a gauge series. */
int ch_metrics_set(ch_metrics *m, const char *name, const char *labels, double v);
/* The current value (0 when the series does not exist). */
double ch_metrics_get(ch_metrics *m, const char *name, const char *labels);

/* Build `k="v"` or `k1="v1",k2="v2"` into buf (values escaped; cut at cap); returns buf. */
const char *ch_metrics_label(char *buf, size_t cap, const char *k, const char *v);
const char *ch_metrics_labels2(char *buf, size_t cap, const char *k1, const char *v1,
                               const char *k2, const char *v2);

/* The whole exposition. */
int ch_metrics_render(ch_metrics *m, ch_buf *out);

#endif
