/*
 * jsonrec.h - split a stream of JSON into records without parsing it.
 *
 * Accepts the shapes CloudTrail and friends are delivered in: one object per line (JSON
 * Lines), a top-level array of objects, the S3 delivery object {"Records":[...]}, and a
 * sequence of (pretty-printed) objects. The splitter only tracks strings and bracket depth, so
 * it runs at memory speed; each record it yields is then validated and parsed by simdjson.
 * Records are returned in place in the input window (padding guaranteed), and a record with
 * raw newlines inside (pretty-printed) is reported so the caller can minify it for output.
 *
 * Damage is local: a truncated record at the end of input is reported with its offset; in
 * JSON Lines a bad line costs only that line. The splitter caps record size and depth.
 */
#ifndef CH_PARSE_JSONREC_H
#define CH_PARSE_JSONREC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/diag.h"
#include "ingest/input.h"

/* Nesting cap of the splitter; deeper records are reported as "too_deep" and skipped. It
 * only counts brackets (no stack), so any depth costs nothing to skip. */
#define CH_JSONREC_MAX_DEPTH 10000

typedef struct ch_jsonrec ch_jsonrec;

typedef struct ch_jsonrec_rec {
    const char *p; /* record text, in the input window (padded) */
    size_t n;
    uint64_t offset; /* decompressed byte offset of the record's first byte */
    uint64_t line;   /* 1-based line of the record's first byte, 0 if not tracked */
    bool multiline;  /* contains raw newlines: minify before writing it on one line */
} ch_jsonrec_rec;

/* Ownership: ch_jsonrec_new allocates (NULL when out of memory), ch_jsonrec_free frees
 * (NULL-safe). `in` is borrowed and must outlive the splitter, which owns its window while it
 * runs: do not consume from it in between. Splitting starts at the window's front, so bytes
 * sniffed with ch_input_fill are not lost. max_record caps one record (0 or more than the
 * input's max_window: the window size). */
ch_jsonrec *ch_jsonrec_new(ch_input *in, size_t max_record);
void ch_jsonrec_free(ch_jsonrec *r);
/* Nesting cap (default CH_JSONREC_MAX_DEPTH). */
void ch_jsonrec_set_max_depth(ch_jsonrec *r, uint64_t max_depth);
/* Returns 1 with a record, 0 at the end. Framing problems (truncated record, record too large,
 * a non-object element, garbage between records) are reported to diag under `ds` with their
 * reason and offset, counted, and skipped; the call then goes on with the next record.
 * Returns a negative code only when the input itself fails (I/O, damaged gzip), after
 * reporting it; later calls then return 0.
 *
 * rec->p is valid until the next call (which consumes it from the window); at least
 * CH_JSON_PADDING readable bytes follow rec->p + rec->n, so ch_json_parse(p, rec->p, rec->n,
 * rec->n + CH_JSON_PADDING, ...) parses it in place. A record starts with '{' and ends with
 * the bracket that brings the depth back to zero: '}', or ']' in a malformed record, since
 * brackets are counted, not matched (simdjson then rejects it). Nothing else is checked.
 *
 * Reasons reported: "truncated" (input ended inside a record or an unclosed array; in JSON
 * Lines, a line ending inside its record), "record_too_large", "not_an_object" (an array
 * element or a JSON Lines line that is not an object), "garbage" (bytes between records that
 * are not JSON), "too_deep", "gzip_error" and "read_error". An empty input yields no record
 * and no report. An array missing the comma between two objects is accepted as if it were
 * there (one of the shared CloudTrail samples is damaged that way). */
int ch_jsonrec_next(ch_jsonrec *r, ch_diag *diag, ch_dataset ds, ch_jsonrec_rec *rec);

#endif
