/*
 * sigma.h - Sigma rules (https://sigmahq.io, specification v2) as a second rule format: the
 * detection of a Sigma rule and the correlation rules of the specification compile into the
 * same immutable ch_rule the YAML loader (rule.h) makes, so the engine, offenses and
 * `coinhound rules check|test` treat them alike.
 *
 * What loads:
 *   logsource    product: aws + service: cloudtrail -> field names are CloudTrail's own paths
 *                (eventName, userIdentity.type, requestParameters.x), read from the record;
 *                category: dns -> ECS (query -> dns.question.name, answer -> dns.answers,
 *                record_type -> dns.question.type); category: network_connection / firewall
 *                -> ECS (DestinationIp/dst_ip -> destination.ip, DestinationPort/dst_port ->
 *                destination.port, SourceIp/src_ip, SourcePort/src_port).
 *   detection    selections as maps (AND) or lists of maps (OR), lists of values (OR, or AND
 *                with |all), wildcards * and ? (with \ escapes), modifiers contains, startswith,
 *                endswith, all, re, cidr, exists, gt, gte, lt, lte; conditions with and, or,
 *                not, parentheses, `1 of X*`, `all of X*`, `them`, and lists of conditions.
 *                Sigma matching is case-insensitive except |re: so are the translations,
 *                except that CloudTrail's eventName becomes an exact event.action test (AWS
 *                spells each name one way) so that the engine indexes the rule by action, and
 *                every rule first tests its logsource's dataset (event.dataset).
 *   correlation  event_count (-> threshold), value_count (-> distinct), temporal_ordered
 *                (-> sequence of rule steps), temporal (-> each referenced rule derives a
 *                `SigmaMatch.ID` event and a distinct count over those actions needs all of
 *                them in the window), with group-by, timespan and a gte/gt condition. The
 *                rules a correlation names (by id or name) must be in the same file (documents
 *                separated by ---).
 *   extras       `tests:` as in rule.h (coinhound's extension, so that `rules test` covers
 *                Sigma rules); level -> severity (informational 1, low 3, medium 5, high 7,
 *                critical 9), credibility and relevance 5; tags attack.tNNNN -> ATT&CK.
 * Everything else is refused with the reason (file:line:column, the rule's id, "not
 * supported: ..."): other logsources, keyword searches, modifiers such as fieldref, base64,
 * windash, value_sum correlations, lt/lte/eq conditions, deprecated `| count()` aggregations.
 * Never widened silently: a rule either means what Sigma says or does not load.
 *
 * How: each Sigma document is translated into the text of a coinhound rule (JSON, which is
 * YAML) and given to ch_rule_load_mem, so one loader validates and compiles both formats.
 * Cost: linear in the file; translation happens once at load time, never per event.
 *
 * Ownership: ch_sigma_load_mem allocates *out (an array of *nout rules); the caller frees each
 * rule with ch_rule_free and the array with ch_free, or hands both to ch_ruleset_from_rules.
 */
#ifndef CH_RULES_SIGMA_H
#define CH_RULES_SIGMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "enrich/refset.h"
#include "rules/expr.h"
#include "rules/rule.h"

#define CH_SIGMA_MAX_DOCS 64 /* documents in one Sigma file */

/* Does this YAML text look like Sigma (a top-level `detection:` or `correlation:` key)? */
bool ch_sigma_sniff(const char *text, size_t n);

/* Load every rule of a Sigma file. 0, or CH_EPARSE (refused or malformed; err->msg
 * "FILE:LINE:COL: ID: ..."), CH_ELIMIT, CH_ENOMEM. On failure *out is NULL. */
int ch_sigma_load_mem(const char *name, const char *text, size_t n, const ch_expr_env *env,
                      ch_refsets *refsets, ch_rule ***out, uint32_t *nout, ch_error *err);

#endif
