/*
 * geoip.h - country, city and autonomous system of an address, from MaxMind DB (.mmdb) files
 * through libmaxminddb, behind a fixed-size cache.
 *
 * One handle opens one or more databases (say the free country database plus an optional City
 * and an ASN database). A lookup consults every database in the order given and merges what
 * they know: the country (and its English name) from the first that has one, the city from the
 * first that has one, the ASN and AS organisation from the first that has an ASN. Both the
 * MaxMind layout (country.iso_code, city.names.en, autonomous_system_number, ...) and the flat
 * ip-location-db layout (country_code) are understood.
 *
 * Internal addresses (ch_ip_is_internal: private, loopback, link-local, CGNAT, ...) are marked
 * internal and never looked up. IPv4 addresses, stored as IPv4-mapped IPv6, are looked up as
 * IPv4 so that IPv4-only databases answer them; an IPv6 address on an IPv4-only database is a
 * clean miss.
 *
 * Ownership: ch_geoip_open allocates the handle, ch_geoip_close frees it. The strings of a
 * ch_geo filled here (city, as_org, country_name) point straight into the memory-mapped
 * database, not into the cache, so they stay valid until ch_geoip_close of the handle that
 * opened the databases, however many lookups follow. They are not NUL-terminated.
 *
 * Threads: a handle is single-threaded (its cache and counters change on every lookup).
 * ch_geoip_clone gives another thread its own cache and counters over the same open
 * databases, which are read-only and safe to share; close every clone before the original.
 */
#ifndef CH_ENRICH_GEOIP_H
#define CH_ENRICH_GEOIP_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/event.h"
#include "core/ip.h"

#define CH_GEOIP_MAX_DBS 8
/* Default cache size: 64K entries of 64 bytes (4 MiB), 4-way set-associative, LRU per set. */
#define CH_GEOIP_CACHE_DEFAULT 65536u
/* Upper bound on the cache size a caller may ask for (64 MiB of entries). */
#define CH_GEOIP_CACHE_MAX (1u << 20)
/* Longest string kept from a database; longer ones are cut on a UTF-8 boundary. */
#define CH_GEOIP_MAX_STR 255u

typedef struct ch_geoip ch_geoip;

typedef struct ch_geoip_opts {
    /* Cache entries, rounded up to a power of two (at least 4) and capped at
     * CH_GEOIP_CACHE_MAX; 0 disables the cache (every lookup goes to the databases). */
    size_t cache_entries;
} ch_geoip_opts;

/* Counters for the run report. lookups = internal + cache_hits + cache_misses; with the
 * cache disabled every non-internal lookup counts as a miss. */
typedef struct ch_geoip_stats {
    uint64_t lookups;      /* calls with an address present */
    uint64_t internal;     /* internal addresses, not looked up */
    uint64_t cache_hits;   /* answered from the cache */
    uint64_t cache_misses; /* answered by the databases (then cached) */
    uint64_t unknown;      /* looked up, but no database knew anything about the address */
    uint64_t errors;       /* a database failed on a lookup (corrupt data): result left empty */
} ch_geoip_stats;

/* Open npaths databases (1..CH_GEOIP_MAX_DBS) with the default cache. On failure *out is
 * NULL, nothing stays open, and err names the file and the reason: CH_EIO when a file cannot
 * be opened or read, CH_EPARSE when it is not a valid MaxMind DB, CH_EUSAGE for bad arguments,
 * CH_ENOMEM. */
int ch_geoip_open(ch_geoip **out, const char *const *paths, size_t npaths, ch_error *err);
/* The same with options (opts may be NULL for the defaults). */
int ch_geoip_open_ex(ch_geoip **out, const char *const *paths, size_t npaths,
                     const ch_geoip_opts *opts, ch_error *err);
/* A new handle with its own empty cache (same size) and zeroed counters, sharing g's open
 * databases: for another thread. Close it before g. */
int ch_geoip_clone(const ch_geoip *g, ch_geoip **out, ch_error *err);
/* NULL-safe. */
void ch_geoip_close(ch_geoip *g);

/* Fill *out for ip. An absent address (family 0) gives an empty result with looked_up and
 * internal false; an internal one gives internal = true, looked_up = false. Never fails: a
 * database error leaves the fields it would have filled empty and is counted. */
void ch_geoip_lookup(ch_geoip *g, const ch_ip *ip, ch_geo *out);
/* ev->src_geo from ev->src_ip and ev->dst_geo from ev->dst_ip. */
void ch_geoip_enrich(ch_geoip *g, ch_event *ev);

/* Account on g for a lookup of ip that another handle over the same databases made (a
 * clone on a worker thread, whose answer is geo): the counters and the cache move exactly as
 * ch_geoip_lookup's would on g, the answer is kept in g's cache, and no database is read. So a
 * run whose lookups are made ahead on workers, each with a cache of its own, reports the counts
 * of one handle taking the processed events in order, whatever the number of workers. */
void ch_geoip_note(ch_geoip *g, const ch_ip *ip, const ch_geo *geo);
/* ch_geoip_note for ev's source and destination. */
void ch_geoip_note_event(ch_geoip *g, const ch_event *ev);

void ch_geoip_stats_get(const ch_geoip *g, ch_geoip_stats *out);
size_t ch_geoip_db_count(const ch_geoip *g);
/* The database_type of the i-th database from its metadata ("GeoIP2-City", ...), "" if none. */
const char *ch_geoip_db_type(const ch_geoip *g, size_t i);

#endif
