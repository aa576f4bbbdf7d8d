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

typedef struct ch_jsonrec ch_jsonrec;

typedef struct ch_jsonrec_rec {
    const char *p;      /* record text, in the input window (padded) */
    size_t n;
    uint64_t offset;    /* decompressed byte offset of the record's first byte */
    uint64_t line;      /* 1-based line of the record's first byte, 0 if not tracked */
    bool multiline;     /* contains raw newlines: minify before writing it on one line */
} ch_jsonrec_rec;

ch_jsonrec *ch_jsonrec_new(ch_input *in, size_t max_record);
void ch_jsonrec_free(ch_jsonrec *r);
/* Returns 1 with a record, 0 at the end. Framing problems (truncated record, record too large,
 * a non-object element, garbage between records) are reported to diag under `ds` with their
 * reason and offset, counted, and skipped; the call then goes on with the next record.
 * Returns a negative code only when the input itself fails (I/O, damaged gzip), after
 * reporting it. */
int ch_jsonrec_next(ch_jsonrec *r, ch_diag *diag, ch_dataset ds, ch_jsonrec_rec *rec);

#endif
