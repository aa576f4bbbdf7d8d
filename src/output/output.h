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

typedef struct ch_output ch_output;

/* path "-" is stdout; NULL or "/dev/null" still formats every event (benchmarks measure
 * the formatting) but writes nothing. */
int ch_output_open(ch_output **out, const char *format, const char *path, ch_error *err);
int ch_output_write(ch_output *o, const ch_event *ev);
int ch_output_close(ch_output *o, ch_error *err);

/* Append one event as a JSON object (no newline) to b: ECS fields first, then every original
 * field at its own path. Exposed for tests and other sinks. */
int ch_event_to_json(const ch_event *ev, ch_buf *b);

#endif
