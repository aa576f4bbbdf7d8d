/*
 * taxii_publish.h - what `coinhound intel serve` publishes: catalogs (taxii_server.h) built from
 * the reference sets marked shareable and from the addresses and domains of offenses.
 *
 * Each shareable set is one collection (id: a UUIDv5 of the set name, so it survives restarts);
 * each element one STIX 2.1 indicator written by ch_stix_write_element, whose id is a UUIDv5 of
 * set and value: a subscriber sees one object per element, a newer `modified` when it is seen
 * again. Elements of several sources collapse into one object (the newest). Expired elements and
 * elements STIX cannot express (numbers, strings that are not URLs) are left out and counted.
 * A refreshed element has a newer `modified`, so a new version and a new date_added.
 *
 * Offenses give one more collection, "coinhound-offense-observables": public addresses and
 * domains found in the offense index value and in the `field=value` pairs of rule evidence
 * (source.ip, destination.ip, sourceIPAddress, dns.question.name, *.domain, ...). Private,
 * loopback and other internal addresses are never published. Open and closed offenses count,
 * hidden ones (an analyst put them out of sight) do not. Each carries the offense's credibility
 * as its confidence (x10).
 *
 * date_added is when the server first served that version of the object, never a time from the
 * logs: a ledger in the intel store (taxii_published) remembers, per collection and object, the
 * version served, its date_added and its JSON. A rebuild keeps the date_added of versions served
 * before, stamps new versions with now (one millisecond apart, after every date_added the
 * collection had: date_added is strictly increasing per collection, so a subscriber resuming
 * after a page's last date_added skips nothing), and serves every object that left its collection
 * (an element removed from a shared set, an offense hidden) as a revoked version (modified = now,
 * revoked = true) so that subscribers drop it; revocations are served for 90 days. Without a
 * ledger (ch_taxii_publish_refset, or offenses with ledger NULL) date_added is last_seen for
 * set elements and now for offense observables, and nothing is revoked.
 *
 * Ownership: the functions fill a catalog the caller owns (and usually hands to the server).
 */
#ifndef CH_INTEL_TAXII_PUBLISH_H
#define CH_INTEL_TAXII_PUBLISH_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "enrich/refset.h"
#include "intel/intel_store.h"
#include "intel/taxii_server.h"
#include "offense/offense.h"

#define CH_TAXII_OFFENSES_COLLECTION "coinhound-offense-observables"

typedef struct ch_taxii_publish_stats {
    size_t collections;
    size_t objects;     /* served: one per id (several sources of a value are one object),
                           revoked versions included */
    size_t expired;     /* elements past their expiry */
    size_t unsupported; /* elements STIX cannot express */
    size_t internal;    /* internal addresses of offenses, never published */
    size_t revoked;     /* objects gone from their collection, now served as revoked */
    size_t revived;     /* values back after their revocation: served, but STIX revocation is
                           final, so subscribers that honour it keep ignoring them */
} ch_taxii_publish_stats;

/* The collection id of a shareable set: the UUID of ch_stix_element_id("collection", name),
 * 37 bytes with NUL. */
void ch_taxii_publish_collection_id(const char *set_name, char out[37]);

/* One collection per shareable set of the store, filled with its live elements (at now_ms),
 * settled against the store's ledger (in one transaction, unless the caller holds one).
 * stats may be NULL (counts add up). */
int ch_taxii_publish_store_sets(ch_taxii_catalog *cat, ch_intel_store *store, int64_t now_ms,
                                ch_taxii_publish_stats *stats, ch_error *err);
/* One collection for an in-memory set (what the store path does per set, for tests and for
 * sets loaded without a store). date_added is each element's last_seen. */
int ch_taxii_publish_refset(ch_taxii_catalog *cat, const ch_refset *set, int64_t now_ms,
                            ch_taxii_publish_stats *stats, ch_error *err);
/* The offense observables collection from the offenses in m (open and closed ones), settled
 * against ledger's (NULL = none). */
int ch_taxii_publish_offenses(ch_taxii_catalog *cat, const ch_offenses *m, ch_intel_store *ledger,
                              int64_t now_ms, ch_taxii_publish_stats *stats, ch_error *err);

#endif
