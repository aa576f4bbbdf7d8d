/*
 * batch.h - look at one batch of records as it arrives (an HTTP body, a Firehose record, a
 * chunk of a spool file) before it goes into the journal: which source type it is, how many
 * records it holds, how many of them would be rejected and why.
 *
 * Flow logs go through their parser (parse/source.h), as the pipeline will read them. JSON
 * sources (CloudTrail, Route 53 Resolver) are split into records and each is parsed with
 * simdjson, as the pipeline's parsers do first, but not normalized: framing and syntax errors
 * (the reasons the parsers share: json_syntax, truncated, garbage, record_too_large, ...) are
 * rejected here, while a valid JSON object the normalizer then refuses (no eventTime, say:
 * not_cloudtrail, bad_timestamp) is accepted into the journal and refused by the pipeline,
 * which counts and logs it. Normalizing twice, once here and once in the pipeline, halved the
 * server's ingest rate on two cores (docs/BENCHMARKS.md); a parse is a fraction of it. Nothing
 * here keeps the records.
 *
 * Ownership: the caller owns the result; its strings are inside it (no heap).
 */
#ifndef CH_INGEST_BATCH_H
#define CH_INGEST_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "core/diag.h"
#include "core/error.h"
#include "parse/source.h"

#define CH_BATCH_MAX_ERRORS 20 /* messages kept for the answer; counts are never capped */
#define CH_BATCH_ERROR_LEN 240

typedef struct ch_batch_result {
    const ch_source_type *type; /* detected or forced; NULL when nothing matched */
    uint64_t records;           /* records seen (NODATA flow records included) */
    uint64_t accepted;          /* records taken into the journal (see the top) */
    uint64_t rejected;          /* records the parser refused, or the whole batch */
    size_t nerrors;
    char errors[CH_BATCH_MAX_ERRORS][CH_BATCH_ERROR_LEN]; /* "REASON: message" */
    ch_diag diag;                                         /* counts by reason */
} ch_batch_result;

/* Parse data[0..len) (gzip or not; any format `analyze` reads) as `forced` (NULL = detect) and
 * fill *res. A batch that is not a log at all (undetectable, empty, damaged gzip) is one
 * rejected record with its reason. Returns 0, or CH_ENOMEM. origin names the batch in
 * messages. */
int ch_batch_check(const void *data, size_t len, const ch_source_type *forced, const char *origin,
                   ch_batch_result *res, ch_error *err);

#endif
