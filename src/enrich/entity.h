/*
 * entity.h - entity linking: one user behind many sources.
 *
 * A successful CloudTrail RunInstances response names every instance it started, with its
 * image, network interfaces and private addresses; the record itself names the principal and
 * access key that asked. ch_entity_observe remembers those links:
 *     instance id          -> {user, access key, image, account, region, launch time}
 *     network interface id -> instance id
 *     account + private IP -> instance id
 * ch_entity_enrich then gives DNS queries (Route 53 `srcids.instance`) and flows (`instance-id`,
 * or only `interface-id` in v2 flow logs, or failing both the private source/destination
 * address) the launching user.name, access key and cloud.instance.id, so that rules keyed by
 * user.name join the mining stage to the login that caused it.
 *
 * Launches by an AWS service on a principal's behalf (userIdentity.invokedBy, e.g. Auto
 * Scaling) are linked to the identity CloudTrail names (the service role), never to a human.
 *
 * Memory: one bounded table of `cap` links of all three kinds, with the strings copied in (a
 * RunInstances event is gone long before its instances start mining). When the table is full
 * the least recently used link is evicted and counted; a link not used for `ttl_ms` of event
 * time is dropped when met (counted as expired). Interface and address links hold an instance
 * id, not a pointer, so evicting an instance never leaves a dangling link: it just misses.
 * Private addresses are reused after termination: a later launch with the same address
 * replaces the link. Measured: 100k launches (300k links: instance, interface, address) hold
 * 70 MB, about 700 bytes per launched instance (an 88-byte slot per link, the copied strings,
 * buckets, and the slot array's doubling slack); the default cap of 1M links bounds the table
 * near 200 MB.
 *
 * Cost: observe and enrich are O(1) expected (a chained hash over the links), with no
 * allocation on enrich. Observe walks the RunInstances response once.
 *
 * Persistence: logs arrive over time, so a later run may see the DNS queries and flows of
 * instances launched in an earlier run's logs. ch_entity_export hands out the live links (most
 * recently used first, capped) for a store to save; ch_entity_import puts one back as if it had
 * been observed at its last use, so LRU order and expiry carry on across runs: a link older than
 * the TTL relative to the newest event time known is not restored.
 *
 * Ownership: ch_entity_new allocates the table, ch_entity_free releases it. Strings that
 * ch_entity_enrich puts into an event, and ch_entity_lookup returns, borrow from the table:
 * valid until the next ch_entity_observe (which may evict) or ch_entity_free. One thread at a
 * time.
 */
#ifndef CH_ENRICH_ENTITY_H
#define CH_ENRICH_ENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/event.h"

#define CH_ENTITY_DEFAULT_CAP (1u << 20)
#define CH_ENTITY_MAX_CAP (1u << 28)
#define CH_ENTITY_DEFAULT_TTL_MS (30LL * 24 * 3600 * 1000) /* 30 days of event time */
#define CH_ENTITY_MAX_STR 512 /* longer ids and names are not linked (counted as bad) */

typedef struct ch_entity ch_entity;

typedef struct ch_entity_instance {
    ch_sv instance_id, user_name, access_key, image_id, account_id, region, invoked_by;
    int64_t launch_ms;
} ch_entity_instance;

typedef struct ch_entity_stats {
    uint64_t launches;   /* RunInstances records learned from */
    uint64_t instances;  /* instance links made or refreshed */
    uint64_t interfaces; /* interface links made or refreshed */
    uint64_t addresses;  /* address links made or refreshed */
    uint64_t links;      /* links held now */
    uint64_t evicted;    /* links evicted because the table was full */
    uint64_t expired;    /* links dropped after ttl without use */
    uint64_t bad;        /* response items too long or malformed, not linked */
    uint64_t enriched;   /* events given a user by ch_entity_enrich */
    uint64_t by_instance, by_interface, by_address; /* ... through which link */
    uint64_t misses;   /* DNS/flow events with an id or address but no link */
    uint64_t restored; /* links put back by ch_entity_import */
} ch_entity_stats;

/* One link as exported or imported. kind is CH_ENTITY_LINK_INSTANCE (every field may be set),
 * _INTERFACE or _ADDRESS (only instance_id, the target, is used). key is the id without the
 * kind: the instance id, the interface id, or "ACCOUNT|address" (canonical address text). */
enum {
    CH_ENTITY_LINK_INSTANCE = 'i',
    CH_ENTITY_LINK_INTERFACE = 'e',
    CH_ENTITY_LINK_ADDRESS = 'a'
};

typedef struct ch_entity_link {
    char kind;
    ch_sv key;
    ch_sv instance_id, user_name, access_key, image_id, account_id, region, invoked_by;
    int64_t launch_ms;    /* the launch that made the link */
    int64_t last_used_ms; /* event time it was learned or last used */
} ch_entity_link;

/* Called per exported link; strings borrow from the table for the call only. Non-zero stops. */
typedef int (*ch_entity_link_fn)(void *ud, const ch_entity_link *l);

/* cap: links held at most (0 = CH_ENTITY_DEFAULT_CAP); ttl_ms: 0 = CH_ENTITY_DEFAULT_TTL_MS,
 * negative = never. CH_EUSAGE when cap > CH_ENTITY_MAX_CAP, CH_ENOMEM. */
int ch_entity_new(size_t cap, int64_t ttl_ms, ch_entity **out, ch_error *err);
void ch_entity_free(ch_entity *t);

/* Learn from ev when it is a successful CloudTrail RunInstances with its response. Returns the
 * number of instances learned (0 for any other event) or CH_ENOMEM. */
int ch_entity_observe(ch_entity *t, const ch_event *ev);

/* Fill user.name, user.access_key_id and cloud.instance.id of a DNS or flow event that has no
 * user yet from the links. Returns true when the event was linked. */
bool ch_entity_enrich(ch_entity *t, ch_event *ev);

/* Convenience for pipelines: observe, then enrich. */
bool ch_entity_process(ch_entity *t, ch_event *ev);

/* The instance's link at event time at_ms (INT64_MAX: ignore expiry), or false. */
bool ch_entity_lookup(ch_entity *t, const char *instance_id, size_t n, int64_t at_ms,
                      ch_entity_instance *out);

/* Visit the live links, most recently used first, at most max of them (0 = all). Returns 0, or
 * the first non-zero value fn returned. Does not change the table. */
int ch_entity_export(const ch_entity *t, size_t max, ch_entity_link_fn fn, void *ud);

/* Put l back as if observed at l->last_used_ms. now_ms is the newest event time the caller
 * knows (INT64_MIN: none); the table remembers the newest it has seen and uses the later. A
 * link that is expired relative to that time, malformed (unknown kind, empty key or target, a
 * string longer than CH_ENTITY_MAX_STR) or older than the table's own link of that key is not
 * restored. Import oldest first to keep LRU order. Returns 1 when restored, 0 when skipped,
 * CH_ENOMEM. The table's cap holds: a full table evicts its least recently used link. */
int ch_entity_import(ch_entity *t, const ch_entity_link *l, int64_t now_ms);

void ch_entity_stats_get(const ch_entity *t, ch_entity_stats *out);
/* Heap bytes held by the table (structures and strings). */
size_t ch_entity_memory(const ch_entity *t);

#endif
