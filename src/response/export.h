/*
 * export.h - the network side of a response, for the organisation's own firewalls and IPS: the
 * pool addresses and domains (and the attacker's source addresses) an offense names, as an
 * nftables ruleset, Suricata rules, an RPZ zone for BIND or Unbound, or a plain block list.
 *
 * Only attributed values (observables.h, CH_OBS_ATTRIBUTED_SEVERITY) are written, and only
 * values of a valid shape: an address must parse as one, a domain must be LDH labels. Values
 * from logs never reach a rule or a zone as written text otherwise; what was left out is counted
 * in a comment at the top, so the file says what it does not cover.
 *
 * Formats are registered in a table (export.c), one writer each.
 */
#ifndef CH_RESPONSE_EXPORT_H
#define CH_RESPONSE_EXPORT_H

#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"
#include "offense/offense.h"

/* "nft", "suricata", "rpz", "list"; CH_EUSAGE for another name. now_ms stamps the header
 * (and the RPZ serial). */
int ch_resp_export(ch_buf *b, const char *format, const ch_offense *o, int64_t now_ms,
                   ch_error *err);

/* The formats, NULL-terminated, for usage messages. */
const char *const *ch_resp_export_formats(void);

#endif
