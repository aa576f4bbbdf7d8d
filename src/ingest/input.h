/*
 * input.h - one readable input (a file or stdin), decompressed on the fly, seen through a
 * sliding window.
 *
 * gzip is recognised by its magic bytes (1f 8b), never by the name; concatenated gzip members
 * are read one after another, as `gzip -dc` does. Parsers look at the window, consume what
 * they used and ask for more; the window never holds more than `max_window` bytes, so memory
 * stays flat however large the file. The bytes after the window's end are always readable
 * padding (CH_JSON_PADDING), so simdjson can parse records in place without copying.
 *
 * A damaged gzip stream delivers everything decompressed before the damage, then fails with
 * CH_EPARSE and a message naming the compressed offset.
 */
#ifndef CH_INGEST_INPUT_H
#define CH_INGEST_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define CH_INPUT_DEFAULT_MAX_WINDOW (64u << 20)

typedef struct ch_input ch_input;

/* path "-" is stdin. name is what messages call it (borrowed, may equal path). */
int ch_input_open(ch_input **out, const char *path, size_t max_window, ch_error *err);
void ch_input_close(ch_input *in);

const char *ch_input_name(const ch_input *in);
bool ch_input_is_gzip(const ch_input *in);

/* Current unconsumed bytes. Valid until the next ch_input_more or ch_input_consume. */
const char *ch_input_data(const ch_input *in, size_t *len);
/* Decompressed-stream offset of the first byte of the window. */
uint64_t ch_input_offset(const ch_input *in);
/* Drop n bytes from the front of the window. */
void ch_input_consume(ch_input *in, size_t n);
/* Read more into the window. Returns bytes added (> 0), 0 at the end of input, CH_ELIMIT when
 * the window is full (max_window unconsumed bytes), CH_EIO or CH_EPARSE (damaged gzip). */
int ch_input_more(ch_input *in, ch_error *err);
/* Ensure at least n bytes are in the window unless the input ends first (then returns what
 * there is); for content sniffing. Returns bytes available or a negative code. */
long ch_input_fill(ch_input *in, size_t n, ch_error *err);
/* Total decompressed bytes delivered so far. */
uint64_t ch_input_bytes(const ch_input *in);
bool ch_input_eof(const ch_input *in);

/* Lines on top of the window. Returns 1 with a line (without "\n" or "\r\n"), 0 at the end.
 * A line longer than max_line is skipped to its end and reported as CH_ELIMIT (the caller
 * counts it and calls again). line_no is 1-based. */
int ch_input_line(ch_input *in, size_t max_line, const char **line, size_t *len, uint64_t *line_no,
                  ch_error *err);

#endif
