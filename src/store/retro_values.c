/*
 * retro_values.c - retro-hunts for the values a reference set just gained (retro_values.h).
 *
 * The matcher built here owns a small registry of fresh sets, one per set name among the
 * values, filled with the values and their validity at each event's own time. A value a rule
 * learned is valid for the rules from the moment it was learned; for the hunt it is valid from
 * the start of the hunted days (finding the earlier events is the point) until its TTL ends.
 */
#include <string.h>

#include "core/mem.h"
#include "enrich/refset.h"
#include "intel/intel_match.h"
#include "pipeline/pipeline.h"
#include "store/retro_values.h"

#define RULE_ADDS_MAX 4096 /* values one hunt takes; the rest wait for the next */

int ch_retro_hunt_values(ch_pipeline *p, ch_evstore *es, int64_t since_ms, const ch_retro_value *v,
                         size_t n, ch_retro_result *r, ch_error *err)
{
    memset(r, 0, sizeof *r);
    ch_refsets *sets = NULL;
    ch_intel_matcher *m = NULL;
    int rc = ch_refsets_new(&sets) < 0 ? ch_error_set(err, CH_ENOMEM, "out of memory") : 0;
    if (rc == 0)
        rc = ch_intel_matcher_new(&m, sets, NULL, err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (v[i].type != CH_REFSET_IP && v[i].type != CH_REFSET_DOMAIN)
            continue;
        ch_refset *set = NULL;
        if ((rc = ch_refsets_ensure(sets, v[i].set, (ch_refset_type)v[i].type, NULL, &set, err)) <
            0)
            break;
        ch_refset_meta meta = ch_refset_meta_make(v[i].source != NULL ? v[i].source : "retro", 0);
        meta.valid_from = v[i].valid_from;
        meta.expiry = v[i].expiry;
        ch_error e2;
        (void)ch_refset_add(set, v[i].value, v[i].len, &meta, &e2); /* refused: cannot match */
        if ((rc = ch_intel_matcher_add_set(m, set, err)) > 0)
            rc = 0;
    }
    /* No store given: the pipeline's own, opened for reading only while the hunt runs. */
    ch_evstore *own = NULL;
    if (rc == 0 && es == NULL)
        rc = ch_pipeline_store(p) == NULL
                 ? ch_error_set(err, CH_ENOTFOUND, "retro-hunting needs a store")
                 : ch_evstore_open_local(ch_pipeline_store(p), false, NULL, &own, err);
    if (rc == 0) {
        ch_retro_opts o = {.since_ms = since_ms, .matcher = m};
        rc = ch_retro_hunt(p, es != NULL ? es : own, &o, r, err);
    }
    ch_evstore_close(own);
    ch_intel_matcher_free(m);
    ch_refsets_free(sets);
    return rc;
}

int ch_retro_hunt_rule_adds(ch_pipeline *p, ch_evstore *es, int64_t since_ms, ch_retro_result *r,
                            size_t *nvalues, ch_error *err)
{
    memset(r, 0, sizeof *r);
    *nvalues = 0;
    ch_pipeline_add *adds = ch_malloc(RULE_ADDS_MAX * sizeof *adds);
    ch_retro_value *v = ch_malloc(RULE_ADDS_MAX * sizeof *v);
    if (adds == NULL || v == NULL) {
        ch_free(adds);
        ch_free(v);
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    }
    size_t n = ch_pipeline_hunt_take(p, adds, RULE_ADDS_MAX);
    ch_refsets *live = ch_pipeline_refsets(p);
    for (size_t i = 0; i < n; i++) {
        const ch_refset *s = ch_refsets_get(live, adds[i].set, strlen(adds[i].set));
        v[i] = (ch_retro_value){adds[i].set,
                                adds[i].source,
                                s != NULL ? (int)ch_refset_type_of(s) : (int)CH_REFSET_STRING,
                                adds[i].value,
                                adds[i].len,
                                CH_REFSET_ALWAYS,
                                adds[i].expiry};
    }
    if (since_ms == 0) {
        /* The stored days before the earliest value was learned, in the logs' own time: a run
         * over last year's logs hunts last year's events. */
        int64_t first = INT64_MAX;
        for (size_t i = 0; i < n; i++)
            first = adds[i].first_seen < first ? adds[i].first_seen : first;
        since_ms = first - (int64_t)CH_RETRO_DEFAULT_DAYS * 86400000;
        if (since_ms <= 0)
            since_ms = 1;
    }
    int rc = n > 0 ? ch_retro_hunt_values(p, es, since_ms, v, n, r, err) : 0;
    if (n > 0)
        ch_pipeline_hunt_done(p, rc == 0);
    *nvalues = n;
    ch_free(adds);
    ch_free(v);
    return rc;
}
