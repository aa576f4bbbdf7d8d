/*
 * cloudtrail.h - the inside of the CloudTrail source type, exposed for its tests.
 *
 * The public face of the parser is `ch_source_cloudtrail` (parse/source.h); these ch__
 * functions are its pure normalization steps, callable on a document parsed by the caller so
 * that the mapping can be pinned without an input. Everything they write into an event borrows
 * from the document they were given.
 */
#ifndef CH_PARSE_CLOUDTRAIL_H
#define CH_PARSE_CLOUDTRAIL_H

#include <stdbool.h>

#include "core/event.h"
#include "core/json.h"

/* Normalize one parsed record (a CloudTrail record, or an EventBridge/CloudWatch envelope whose
 * `detail` is one) into ev, which the caller has reset. On success returns 0 and sets *record
 * to the CloudTrail record itself (the envelope's detail when *enveloped). On failure returns
 * CH_EPARSE and sets *reason to "not_cloudtrail" or "bad_timestamp". */
int ch__cloudtrail_normalize(ch_json_val root, ch_event *ev, ch_json_val *record, bool *enveloped,
                             const char **reason);

/* event.category and event.type for an eventSource and eventName (static strings). */
void ch__cloudtrail_classify(ch_sv provider, ch_sv action, ch_sv *category, ch_sv *type);

/* True for an EC2 instance id: "i-" and 8 or 17 lower-case hex digits. */
bool ch__cloudtrail_is_instance_id(ch_sv s);

#endif
