/*
 * jsonstream.h - the record loop that the JSON parsers (CloudTrail, Route 53) share: take the
 * next record from the splitter (jsonrec.h), parse it with simdjson, and report a record that
 * does not parse, under the same diag reasons whichever source it came from.
 *
 * Only the loop's common head is here; what a parsed record means (an event, an envelope of
 * events, something to skip) stays with each parser. Cost: one call and the simdjson parse per
 * record, nothing allocated.
 */
#ifndef CH_PARSE_JSONSTREAM_H
#define CH_PARSE_JSONSTREAM_H

#include "core/diag.h"
#include "core/json.h"
#include "parse/jsonrec.h"

/* The diag reason for the parser's last failure: "invalid_utf8", "too_deep",
 * "record_too_large", "out_of_memory" or "json_syntax". */
const char *ch_jsonstream_parse_reason(const ch_json_parser *p);

/* The next record of r that parses, in *rec and *root (root valid until the next parse on p):
 * 1, 0 at the end, or jsonrec's negative input failure. A record that does not parse is
 * counted in diag->by_ds[ds].records, reported to diag under ds for file `name` at its line
 * and offset with simdjson's message, and skipped. Records that parse are not counted here:
 * the caller counts what it takes for a record (an envelope of log events is not one). */
int ch_jsonstream_next(ch_jsonrec *r, ch_json_parser *p, ch_diag *diag, ch_dataset ds,
                       const char *name, ch_jsonrec_rec *rec, ch_json_val *root);

#endif
