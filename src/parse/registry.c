/*
 * registry.c - the one list of source types. Adding a log source type means writing its file
 * and adding one line here.
 */
#include "parse/source.h"

#include <stdatomic.h>
#include <string.h>

extern const ch_source_type ch_source_cloudtrail;
extern const ch_source_type ch_source_vpcflow;
extern const ch_source_type ch_source_route53;

static const ch_source_type *const types[] = {
    &ch_source_cloudtrail,
    &ch_source_vpcflow,
    &ch_source_route53,
    NULL,
};

const ch_source_type *const *ch_source_types(void) { return types; }

const ch_source_type *ch_source_type_by_name(const char *name)
{
    for (int i = 0; types[i] != NULL; i++)
        if (strcmp(types[i]->name, name) == 0)
            return types[i];
    return NULL;
}

/* Detections run (ch_source_detect_runs): relaxed, since only the count matters. */
static _Atomic uint64_t detect_runs;

uint64_t ch_source_detect_runs(void)
{
    return atomic_load_explicit(&detect_runs, memory_order_relaxed);
}

const ch_source_type *ch_source_detect(const char *head, size_t n)
{
    atomic_fetch_add_explicit(&detect_runs, 1, memory_order_relaxed);
    const ch_source_type *best = NULL;
    int best_score = 0;
    for (int i = 0; types[i] != NULL; i++) {
        int s = types[i]->detect(head, n);
        if (s > best_score) {
            best_score = s;
            best = types[i];
        }
    }
    return best;
}
