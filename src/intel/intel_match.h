/*
 * intel_match.h - match events against threat-intelligence reference sets, so that a listed
 * address or domain becomes rule CJ-MINE-03 with the indicator, feed and confidence in the
 * evidence.
 *
 * Which values are matched, at the event's own time (an element outside its validity window,
 * expired or not yet valid, never matches, so replaying old logs gives the verdicts of their day):
 *   CloudTrail  source.ip (sourceIPAddress)
 *   Route 53    dns.question.name against domain sets (suffix match on label boundaries), then
 *               each dns.answers.data: addresses against ip sets, names (CNAME targets) against
 *               domain sets
 *   VPC flows   destination.ip, then source.ip when it is not internal (inbound traffic from a
 *               listed address; the internal side of a flow is never in a feed)
 * Every ip set and domain set registered as an intel set is probed, in the order registered; the
 * first hit fills ev->threat (core/event.h) and the indicator's metadata comes from the catalog
 * by the element's indicator id (the STIX id). Sets of other types are ignored.
 *
 * Cost: a matcher without intel sets returns at its first test (no other work per event). With
 * sets, an event costs one lookup per set per value (reference-set lookups cost the same
 * whatever the set's size: refset.h); a name is prepared once (ch_refset_dq_prepare) and probed
 * against every domain set without rehashing. Nothing is allocated per event.
 *
 * Ownership: ch_intel_matcher_new allocates a matcher, ch_intel_matcher_free releases it. It
 * BORROWS the registry, the sets in it and the catalog: they must outlive the matcher and the
 * events it filled (ev->threat points into them). Sets must not be removed from the registry
 * while registered here.
 * Threads: ch_intel_match only reads the matcher and the sets; several threads may match at
 * once as long as nobody modifies the sets (refset.h).
 */
#ifndef CH_INTEL_INTEL_MATCH_H
#define CH_INTEL_INTEL_MATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/diag.h"
#include "core/error.h"
#include "core/event.h"
#include "enrich/refset.h"

typedef struct ch_intel_catalog ch_intel_catalog; /* intel/stix.h */
typedef struct ch_intel_store ch_intel_store;     /* intel/intel_store.h */

typedef struct ch_intel_matcher ch_intel_matcher;

/* sets: the registry the intel sets live in (may be NULL until ch_intel_matcher_load gives
 * one); cat: indicator metadata for evidence (may be NULL: hits then carry feed and indicator
 * id only). CH_ENOMEM. */
int ch_intel_matcher_new(ch_intel_matcher **out, ch_refsets *sets, const ch_intel_catalog *cat,
                         ch_error *err);
void ch_intel_matcher_free(ch_intel_matcher *m);

/* Register a set as an intel set. Returns 1 when added, 0 when it was already registered or is
 * not an ip or domain set (ignored); CH_EUSAGE for NULL, CH_ELIMIT past CH_REFSETS_MAX sets,
 * CH_ENOMEM. */
int ch_intel_matcher_add_set(ch_intel_matcher *m, const ch_refset *set, ch_error *err);
/* The same by name in the matcher's registry; CH_ENOTFOUND when there is no such set. */
int ch_intel_matcher_add_named(ch_intel_matcher *m, const char *name, ch_error *err);
/* Registered intel sets (ip and domain). */
size_t ch_intel_matcher_count(const ch_intel_matcher *m);

/* Match ev (see above). True on a hit, with ev->threat filled; false otherwise, with
 * ev->threat cleared when the matcher has sets (and left alone when it has none: parsers hand
 * out zeroed events). m may be NULL. */
bool ch_intel_match(const ch_intel_matcher *m, ch_event *ev);

/* ---- loading, for `analyze --intel FILE... --db FILE` and rule tests --------------------- */

typedef struct ch_intel_load_stats {
    uint64_t files;           /* files read */
    uint64_t bundles;         /* of those, STIX bundles */
    uint64_t lists;           /* of those, block lists */
    uint64_t indicators;      /* STIX indicators loaded from the files */
    uint64_t stix_elements;   /* set elements they added */
    uint64_t list_elements;   /* set elements the lists added */
    uint64_t stored_elements; /* set elements loaded from the store */
    uint64_t stored_indicators;
    uint64_t bad; /* bad lines, objects and patterns (details went to diag) */
} ch_intel_load_stats;

/* Load intelligence into sets (and indicator metadata into cat), and register every ip and
 * domain set so loaded with m:
 *   - store (may be NULL): every stored set, with every element whatever its expiry (lookups
 *     honour validity at each event's time), and every stored indicator and identity;
 *   - files[0..nfiles): STIX 2.1 bundles (told by content; feed = the file's base name; into
 *     intel_domains / intel_ips / intel_urls) and block lists (domains, hosts files, Adblock
 *     `||domain^`, addresses and CIDRs; gzip allowed) into the set named by the file's base name
 *     up to its first dot (mining_pool_ips.ip.txt -> mining_pool_ips; a second part naming a
 *     type - ip, domain - sets the type, else an existing set of that name keeps its type, else
 *     the content decides: ip when every entry is an address or CIDR). Addresses found in a
 *     domain list go to NAME_ips. Files are never written to the store.
 * m's registry and catalog are set to sets and cat when it had none; CH_EUSAGE when it has
 * others. Bad lines and objects go to diag (may be NULL) and are skipped. Returns 0, or the
 * first file's or the store's error (CH_EIO unreadable, CH_EPARSE not JSON where a bundle was
 * expected, CH_ENOMEM) with the file named in err; what was loaded before stays loaded.
 * stats may be NULL. */
int ch_intel_matcher_load(ch_intel_matcher *m, ch_refsets *sets, ch_intel_catalog *cat,
                          const char *const *files, size_t nfiles, ch_intel_store *store_or_NULL,
                          ch_diag *diag, ch_error *err);
/* Counts of every ch_intel_matcher_load call so far. */
const ch_intel_load_stats *ch_intel_matcher_load_stats(const ch_intel_matcher *m);

/* Append "intel: VALUE (FIELD) in SET (feed F, indicator ID 'NAME', confidence N)" for a
 * match to buf (the parts that are unknown are left out); nothing when t holds no match. For
 * rule evidence and reports. */
typedef struct ch_buf ch_buf;
int ch_threat_describe(const ch_threat *t, ch_buf *buf);

/* Block list files, shared with `coinhound refset import` and `intel load`: */

/* A set name from n bytes of a file name: at most cap - 1 of them, the characters a set name
 * cannot hold replaced by '_', "list" when none. */
void ch_intel_set_name(const char *s, size_t n, char *out, size_t cap);

/* The type of a block list from its first 500 lines: ip when every entry is an address or CIDR
 * (hosts-file lines, which map names, excepted), else domain. */
ch_refset_type ch_intel_sniff_list_type(const char *data, size_t len);

#endif
