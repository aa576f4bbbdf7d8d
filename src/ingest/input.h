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

/* Bytes asked of read(2) (and of zlib) per refill. */
#define CH_INPUT_CHUNK (1u << 20)

/*
 * Ownership: ch_input_open allocates the input and ch_input_close frees it (NULL-safe); the
 * input copies the path it is given. Everything a getter returns borrows from the input.
 *
 * path "-" is stdin (named "<stdin>" in messages, and not closed by ch_input_close).
 * max_window 0 means CH_INPUT_DEFAULT_MAX_WINDOW. The first bytes are read here, to sniff gzip:
 * a path that cannot be opened or read (ENOENT, EACCES, EISDIR...) fails here with CH_EIO and
 * a message "PATH: strerror".
 */
int ch_input_open(ch_input **out, const char *path, size_t max_window, ch_error *err);
/* An input over len bytes of memory (borrowed: they must outlive the input), gzip or not,
 * seen through the same window as a file. For tests, fuzz targets and data received whole
 * (an HTTP POST body). name is copied; NULL means "<memory>". */
int ch_input_open_mem(ch_input **out, const char *name, const void *data, size_t len,
                      size_t max_window, ch_error *err);
/* Bytes [start, end) of a plain (not gzip'd) regular file, as an input of its own: offsets
 * are the file's (ch_input_offset starts at start), the input ends at end, and the newlines it
 * delivers are counted. For reading one large JSON Lines file in chunks on several threads
 * (parse/merge.c); the caller checks that the file is plain. */
int ch_input_open_range(ch_input **out, const char *path, uint64_t start, uint64_t end,
                        size_t max_window, ch_error *err);
void ch_input_close(ch_input *in);

const char *ch_input_name(const ch_input *in);
bool ch_input_is_gzip(const ch_input *in);
/* The inflater gzip inputs opened now will use: "libdeflate" (the default when built in: whole
 * members checked before delivery, zlib streaming what libdeflate cannot take, with zlib's
 * records and errors), "zlib" (COINHOUND_INFLATE=zlib, or libdeflate not built in) or "igzip"
 * (ISA-L, when built in and COINHOUND_INFLATE=igzip). */
const char *ch_input_inflater(void);
/* gzip members of this input inflated whole by libdeflate so far (the rest streamed). */
uint64_t ch_input_whole_members(const ch_input *in);
size_t ch_input_max_window(const ch_input *in);
/* Raw (compressed, for gzip) bytes read from the source so far: for progress against the file
 * size. */
uint64_t ch_input_raw_bytes(const ch_input *in);

/* Current unconsumed bytes. Valid until the next ch_input_more or ch_input_consume. At least
 * CH_JSON_PADDING readable bytes always follow data + len, so a record ending anywhere in the
 * window can be given to ch_json_parse with cap = its length + CH_JSON_PADDING. */
const char *ch_input_data(const ch_input *in, size_t *len);
/* Decompressed-stream offset of the first byte of the window. */
uint64_t ch_input_offset(const ch_input *in);
/* Drop n bytes from the front of the window. */
void ch_input_consume(ch_input *in, size_t n);
/* Read more into the window (moving the unconsumed bytes to the front of the buffer first, so
 * pointers from ch_input_data are invalidated; offsets relative to the window start are not).
 * Returns bytes added (> 0), 0 at the end of input, CH_ELIMIT when the window is full
 * (max_window unconsumed bytes), CH_EIO or CH_EPARSE (damaged gzip). A failure comes only
 * after every byte decompressed before the damage has been delivered, and it is sticky: every
 * later call returns it again. */
int ch_input_more(ch_input *in, ch_error *err);
/* Ensure at least n bytes are in the window unless the input ends first (then returns what
 * there is); for content sniffing. Returns bytes available or a negative code. */
long ch_input_fill(ch_input *in, size_t n, ch_error *err);
/* Total decompressed bytes delivered so far (counted from offset 0, also for a range). */
uint64_t ch_input_bytes(const ch_input *in);
/* The offset the input starts at: 0, or a range's start. A reader counting lines from the
 * input's first byte can do so when it starts there. */
uint64_t ch_input_origin(const ch_input *in);
/* Newlines delivered so far by a range input (0 for any other). */
uint64_t ch_input_newlines(const ch_input *in);
/* True once the source is exhausted (cleanly or by a failure): no more bytes will come, though
 * the window may still hold unconsumed ones. */
bool ch_input_eof(const ch_input *in);
/* The input stopped on a failure (I/O, damaged gzip) rather than at its end: ch_input_eof is
 * true and the next refill returns the failure. */
bool ch_input_failed(const ch_input *in);

/* Lines on top of the window. Returns 1 with a line (without "\n" or "\r\n"), 0 at the end.
 * A line longer than max_line is skipped to its end and reported as CH_ELIMIT (the caller
 * counts it and calls again). line_no is 1-based.
 * The line stays at the front of the window (and *line valid) until the next call, which
 * consumes it; do not mix with ch_input_consume while reading lines. The last line is
 * returned even without a trailing newline. A too-long line is consumed chunk by chunk, so
 * memory stays flat; it is reported once, with *line_no set to its number and err naming
 * it. The effective cap is min(max_line, max_window - 1). Input failures (damaged gzip)
 * return their negative code; the partial line before the damage is dropped. */
int ch_input_line(ch_input *in, size_t max_line, const char **line, size_t *len, uint64_t *line_no,
                  ch_error *err);

#endif
