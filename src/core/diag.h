/*
 * diag.h - counting and reporting of bad input.
 *
 * Every record-level problem goes through ch_diag_report: it is counted by reason and by
 * dataset, and a message naming the file, the line or byte offset and the reason goes to the
 * sink (stderr in the CLI). Messages are rate-limited per reason (the first
 * CH_DIAG_MAX_MSGS_PER_REASON are printed, then one notice), counts never are, so a file of a
 * million bad lines neither floods the terminal nor hides how bad it was.
 *
 * Reasons are short stable snake_case words ("json_syntax", "truncated", "line_too_long"...),
 * documented in docs/coinhound.1; the JSON report keys errors by them.
 */
#ifndef CH_CORE_DIAG_H
#define CH_CORE_DIAG_H

#include <stdint.h>
#include <stdio.h>

#include "core/event.h"

#define CH_DIAG_MAX_REASONS 64
#define CH_DIAG_MAX_MSGS_PER_REASON 20

typedef struct ch_ds_stats {
    uint64_t records; /* records read (including ones that produced no event) */
    uint64_t events;  /* normalized events produced */
    uint64_t skipped; /* records that are not events by design (flow NODATA/SKIPDATA) */
    uint64_t errors;  /* records rejected */
    uint64_t files;
    uint64_t bytes; /* decompressed bytes read */
} ch_ds_stats;

typedef struct ch_diag {
    ch_ds_stats by_ds[CH_DS__COUNT];
    struct {
        char name[32];
        uint64_t count;
    } reasons[CH_DIAG_MAX_REASONS];
    int nreasons;
    uint64_t errors_total;
    uint64_t unreadable_inputs; /* inputs that could not be read at all: exit status 1 */
    FILE *sink;                 /* where messages go; NULL = count only */
    int quiet;
    /* When set, ch_diag_report neither counts nor prints: it hands the report (msg formatted)
     * to capture, which replays it into another diag later (a stream read ahead on a worker
     * thread, ingest/prefetch.h: its reports reach the real diag in the order of the events). */
    void (*capture)(void *ud, ch_dataset ds, const char *file, uint64_t line, uint64_t offset,
                    const char *reason, const char *msg);
    void *capture_ud;
} ch_diag;

void ch_diag_init(ch_diag *d, FILE *sink);
/* Count one error of `reason` for dataset ds and print "FILE:LINE: reason: msg" (line > 0)
 * or "FILE: offset N: reason: msg". Pass line 0 and offset UINT64_MAX when neither is known. */
void ch_diag_report(ch_diag *d, ch_dataset ds, const char *file, uint64_t line, uint64_t offset,
                    const char *reason, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
uint64_t ch_diag_count(const ch_diag *d, const char *reason);

#endif
