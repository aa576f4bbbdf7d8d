/*
 * observables.h - what an offense names that a responder or a subscriber acts on: the
 * attacker's source addresses, the access key ids used, the instances entity linking ties to
 * the chain, and the mining pools' domains and addresses.
 *
 * Each hit's event is read once as it chains into the offense (ch_obs_add_event): a CloudTrail
 * event gives its public source address, its access key id and, for a successful RunInstances,
 * every instance of the response; a DNS query or a flow gives the instance and key that entity
 * linking put on it, the query name (a pool domain: the rule fired on that query) and a flow's
 * public end (a pool address). Values are de-duplicated per kind with a count and first/last
 * event time; each kind holds at most ch_obs_cap(kind) values, and what arrives past that is
 * counted in dropped[kind], never silently lost. De-duplication is a linear scan of at most that
 * many values per event, cheaper than a hash for these sizes.
 *
 * The observables of an offense are stored in their own tables (offense/obs_store.c), saved and
 * loaded with the offense by offense/store.c.
 *
 * Ownership: an offense owns its ch_offense_obs (ch_obs_free releases it); strings are copies.
 */
#ifndef CH_OFFENSE_OBSERVABLES_H
#define CH_OFFENSE_OBSERVABLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/event.h"

typedef enum ch_obs_kind {
    CH_OBS_SOURCE_IP = 0, /* public source address of the principal's API calls */
    CH_OBS_ACCESS_KEY,    /* access key id (AKIA... or ASIA...) */
    CH_OBS_INSTANCE,      /* EC2 instance id, with its account and region */
    CH_OBS_POOL_DOMAIN,   /* a DNS name the instances queried (mining pool) */
    CH_OBS_POOL_IP,       /* the public end of the instances' flows (mining pool) */
    CH_OBS__COUNT
} ch_obs_kind;

#define CH_OBS_MAX_VALUES 64     /* values kept per kind ... */
#define CH_OBS_MAX_INSTANCES 512 /* ... except instances: a burst launches hundreds */
#define CH_OBS_MAX_VALUE_LEN 255 /* longer values are not kept (counted as dropped) */

typedef struct ch_obs {
    char *value;
    char *account; /* "" when unknown */
    char *region;  /* "" when unknown */
    uint64_t count;
    int64_t first_ms, last_ms;
    int severity; /* highest severity (0..10) of the rules whose hits named it */
} ch_obs;

/* An offense indexed by a user also holds the user's own evidence (a low-severity "login
 * without MFA" from home); a value counts as the attacker's when a rule of at least this
 * severity named it. Publishing and response plans use only those. */
#define CH_OBS_ATTRIBUTED_SEVERITY 5

typedef struct ch_offense_obs {
    ch_obs *items[CH_OBS__COUNT];
    size_t n[CH_OBS__COUNT], cap[CH_OBS__COUNT];
    uint64_t dropped[CH_OBS__COUNT]; /* values (or sightings) past the cap */
    bool dirty;                      /* changed since loaded or saved */
} ch_offense_obs;

/* "source_ips", "access_keys", "instances", "pool_domains", "pool_ips". */
const char *ch_obs_kind_name(ch_obs_kind k);
/* The kind named so, or CH_OBS__COUNT. */
ch_obs_kind ch_obs_kind_parse(const char *s);
size_t ch_obs_cap(ch_obs_kind k);

ch_offense_obs *ch_obs_new(void); /* NULL when out of memory */
void ch_obs_free(ch_offense_obs *o);

/* Record one sighting (count sightings, at ts_ms) of value. Returns 1 when new, 0 when known,
 * CH_ELIMIT when dropped at the cap or for its length (counted), CH_ENOMEM. */
int ch_obs_put(ch_offense_obs *o, ch_obs_kind k, const char *value, size_t n, const char *account,
               const char *region, uint64_t count, int64_t first_ms, int64_t last_ms, int severity);

/* Read every observable of ev, the event of a hit of a rule of the given severity (see the top
 * note). Returns 0 or CH_ENOMEM. */
int ch_obs_add_event(ch_offense_obs *o, const ch_event *ev, int severity);

/* Append `{"source_ips":{"values":[{"value",...}],"dropped":N},...}`. o may be NULL (empty). */
int ch_obs_json(ch_buf *b, const ch_offense_obs *o);

#endif
