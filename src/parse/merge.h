/*
 * merge.h - read many inputs as one stream of events in event-time order.
 *
 * Logs arrive per region, per source and per hour, so files read one after another are far
 * from time order. Each file is nearly sorted on its own; the merge orders the files by their
 * first event and runs a k-way merge over a min-heap of open streams, opening a file only when
 * the merge's time reaches its first event. At most `max_open` streams are open at once, so
 * memory is bounded (each open stream holds one input window and one parser); a file that
 * could not be opened in time because of the cap delivers its events late, and those are
 * counted (`late_opens`) so the engine's allowed lateness can be judged.
 *
 * An input whose first events are not nearly sorted (newest-first exports, shuffled files) is
 * sorted by event time before the merge: in memory, or as sorted runs in temporary files when
 * it is larger than the sort memory (an external sort); the stats say which.
 *
 * Errors about whole inputs (unreadable, empty, unrecognised format) are reported to the
 * diag exactly once, as `coinhound analyze` does without merging.
 *
 * Ownership: the merge owns its streams and inputs. The event returned by ch_merge_next
 * borrows from its stream and is valid until the next ch_merge_next or ch_merge_free.
 */
#ifndef CH_PARSE_MERGE_H
#define CH_PARSE_MERGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/diag.h"
#include "core/event.h"
#include "parse/source.h"

typedef struct ch_merge ch_merge;

typedef struct ch_merge_stats {
    uint64_t files, opened, late_opens, max_open_seen;
    uint64_t out_of_order;   /* events older than the previous one yielded */
    uint64_t sorted_files;   /* inputs that were not nearly sorted and were sorted first */
    uint64_t sorted_on_disk; /* of those, larger than the sort memory (external sort) */
    uint64_t sorted_runs_in_memory, sorted_runs_on_disk;
    uint64_t chunks; /* chunks of large JSON Lines files parsed on several workers at once */
} ch_merge_stats;

/* forced: the source type for every input, or NULL to detect per file. */
ch_merge *ch_merge_new(ch_diag *diag, const ch_source_type *forced, size_t max_open);
void ch_merge_free(ch_merge *m);
/* Add an input path ("-" is stdin). Inputs are only opened by ch_merge_start. */
int ch_merge_add(ch_merge *m, const char *path);
/* Look at every input once (first event time), order them. Returns 0 or CH_ENOMEM. */
int ch_merge_start(ch_merge *m);
/* 1 with *ev, 0 when every input is exhausted. *path names the input the event came from. */
int ch_merge_next(ch_merge *m, ch_event **ev, const char **path);
void ch_merge_stats_get(const ch_merge *m, ch_merge_stats *out);
/* Bytes of record text a sort keeps in memory before it writes a run to a temporary file
 * ($TMPDIR or /tmp); default 256 MiB. Set before the first ch_merge_next. */
void ch_merge_set_sort_memory(ch_merge *m, size_t bytes);
/* threads > 1: inputs are read, inflated, parsed and normalized ahead on threads - 1 workers
 * (ingest/prefetch.h) while ch_merge_next runs on the caller's thread; with two workers or
 * more, a plain JSON Lines file of 4 MiB or more is split into chunks of about 2 MiB at line
 * boundaries, parsed by several workers at once and merged in the file's order (gzip'd files
 * stay one worker per file). The events, their order and the diag's reports and counts are
 * those of threads <= 1 (the default). Set before the first ch_merge_next. */
void ch_merge_set_threads(ch_merge *m, unsigned threads);
/* Per-event work for the workers (ingest/prefetch.h ch_prefetch_prep, copied; NULL: none): the
 * events they read come out of ch_merge_next with it done (ev->prep says what). Only with
 * threads > 1; set before the first ch_merge_next. */
typedef struct ch_prefetch_prep ch_prefetch_prep;
void ch_merge_set_prep(ch_merge *m, const ch_prefetch_prep *prep);

/* Shared with analyze: open `path`, detect its type and open a stream. Whole-input problems
 * are reported to diag (when report is true) and yield 0 with *st NULL; the input is counted
 * unreadable in diag when it cannot be opened. Returns 1 with an open stream. */
int ch_source_open_path(const char *path, const ch_source_type *forced, ch_diag *diag, bool report,
                        size_t max_window, ch_input **in, const ch_source_type **type,
                        ch_stream **st);

/* The same over an input already open (a memory buffer: HTTP ingest, sorted runs). The input
 * stays the caller's. Returns 1 with a stream, 0 after reporting why not. */
int ch_source_open_input(ch_input *in, const char *path, const ch_source_type *forced,
                         ch_diag *diag, bool report, const ch_source_type **type, ch_stream **st);

#endif
