/*
 * source.h - the registry of log source types (QRadar calls them DSMs).
 *
 * Each source type is one file in src/parse/ that defines a ch_source_type and is listed once
 * in registry.c. Detection is by content: every type scores the first bytes of a
 * (decompressed) input and the best score wins; `--type` skips detection.
 *
 * A stream yields normalized events one at a time. An event borrows from its stream and is
 * valid until the next call to next() or close() on that stream. Streams count records,
 * events and skipped records into diag->by_ds[type->dataset] and report bad records through
 * ch_diag_report; next() returns a negative code only when the input can no longer be read.
 */
#ifndef CH_PARSE_SOURCE_H
#define CH_PARSE_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "core/diag.h"
#include "core/event.h"
#include "ingest/input.h"

typedef struct ch_stream ch_stream; /* a source type's private per-input state */

typedef struct ch_source_type {
    const char *name; /* "cloudtrail": the --type value and event.dataset */
    ch_dataset dataset;
    /* Confidence 0..100 that `head` (the first bytes of the input, decompressed) is this type. */
    int (*detect)(const char *head, size_t n);
    /* Open a stream over `in` (borrowed; outlives the stream). NULL with err on failure. */
    ch_stream *(*open)(ch_input *in, ch_diag *diag, ch_error *err);
    /* 1 with an event, 0 at the end, negative when the input failed (already reported). */
    int (*next)(ch_stream *s, ch_event *ev);
    void (*close)(ch_stream *s);
} ch_source_type;

/* NULL-terminated list of all source types. */
const ch_source_type *const *ch_source_types(void);
const ch_source_type *ch_source_type_by_name(const char *name);
/* Best type for `head`, or NULL when no type scores above zero. */
const ch_source_type *ch_source_detect(const char *head, size_t n);
/* Calls of ch_source_detect in this process so far, all threads: each runs every type's
 * detector over up to 64 KiB, so tests check that an input is detected once, not per pass. */
uint64_t ch_source_detect_runs(void);

#endif
