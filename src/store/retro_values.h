/*
 * retro_values.h - retro-hunts for particular values: the ones a reference set just gained,
 * through the API or from a rule, rather than all the intelligence loaded.
 *
 * The values go into a matcher that holds only them (one set per set name, of the set's own
 * type), so the values the sets held before, whose events the rules already saw at ingest, raise
 * nothing again; everything else is ch_retro_hunt (store/retro.h): each stored event at its own
 * time, CJ-MINE-03 with `retro: true` in the linked user's offense, each (record, rule) once.
 */
#ifndef CH_STORE_RETRO_VALUES_H
#define CH_STORE_RETRO_VALUES_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "store/retro.h"

typedef struct ch_retro_value {
    const char *set;    /* the reference set's name, as hits and evidence name it */
    const char *source; /* who added it (a rule id, "api"), as the evidence's feed */
    int type;           /* ch_refset_type: only CH_REFSET_IP and CH_REFSET_DOMAIN can match */
    const char *value;
    size_t len;
    int64_t valid_from, expiry; /* CH_REFSET_ALWAYS / CH_REFSET_NEVER for no bound */
} ch_retro_value;

/* Hunt es (the store of p's database; NULL: p's own event store, opened for the hunt) from
 * since_ms on for v[0..n), then checkpoint p. Values a set refuses are left out (they cannot
 * match). */
int ch_retro_hunt_values(ch_pipeline *p, ch_evstore *es, int64_t since_ms, const ch_retro_value *v,
                         size_t n, ch_retro_result *r, ch_error *err);

/* The values rules added to address and domain sets that no hunt has searched for yet
 * (es as for ch_retro_hunt_values; nothing is opened when none waits)
 * (pipeline.h, ch_pipeline_hunt_take), hunted and marked as hunted by the hunt's checkpoint.
 * since_ms 0: the CH_RETRO_DEFAULT_DAYS days before the earliest value was learned, in the time
 * of the events it was learned from. *nvalues: how many (0: nothing to do, nothing run). */
int ch_retro_hunt_rule_adds(ch_pipeline *p, ch_evstore *es, int64_t since_ms, ch_retro_result *r,
                            size_t *nvalues, ch_error *err);

#endif
