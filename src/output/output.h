/*
 * output.h - event writers. One writer per output format, registered in a table
 * (output.c); `analyze --events FILE` uses the JSON Lines writer.
 *
 * A writer owns a buffer that it flushes to its file descriptor in large writes, so writing an
 * event is appending bytes to memory. ch_output_close flushes and reports the first write
 * error (a full disk is an error the user must see, not a silent truncation).
 */
#ifndef CH_OUTPUT_OUTPUT_H
#define CH_OUTPUT_OUTPUT_H

#include "core/buf.h"
#include "core/error.h"
#include "core/event.h"
#include "core/mem.h"

typedef struct ch_output ch_output;

/* path "-" is stdout; NULL or "/dev/null" still formats every event (benchmarks measure
 * the formatting) but writes nothing. */
int ch_output_open(ch_output **out, const char *format, const char *path, ch_error *err);
int ch_output_write(ch_output *o, const ch_event *ev);
/* On a read-ahead worker (pipeline.h, ch_pipeline_prep): format ev's line as ch_output_write
 * would now, into arena (scratch is the thread's working buffer), and remember it in ev->prep
 * with the fields the pipeline may still change. ch_output_write then copies the line instead
 * of formatting the event again, unless one of those fields changed (entity linking gave a
 * flow its user, intelligence matched): then it formats the event as it is. Thread-safe: reads
 * only o's format. Returns 0, or CH_ENOMEM (ev then has no line). */
int ch_output_prepare(const ch_output *o, ch_event *ev, ch_buf *scratch, ch_arena *arena);
int ch_output_close(ch_output *o, ch_error *err);

/* Append one event as a JSON object (no newline) to b: ECS fields first, then every original
 * field at its own path. Exposed for tests and other sinks. */
int ch_event_to_json(const ch_event *ev, ch_buf *b);

#endif
