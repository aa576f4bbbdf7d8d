/*
 * analyze_int.h - state of one `coinhound analyze` run, shared by analyze.c and report.c.
 */
#ifndef CH_CLI_ANALYZE_INT_H
#define CH_CLI_ANALYZE_INT_H

#include <stdbool.h>
#include <stdio.h>

#include "core/diag.h"
#include "enrich/geoip.h"
#include "output/output.h"
#include "enrich/entity.h"
#include "enrich/intel_match.h"
#include "intel/stix.h"
#include "enrich/refset.h"
#include "offense/report.h"
#include "offense/store.h"
#include "parse/merge.h"
#include "rules/engine.h"
#include "rules/rule.h"
#include "parse/source.h"

typedef struct ch_analyze {
    ch_diag diag;
    const ch_source_type *forced;
    ch_geoip *geoip;
    ch_output *out;
    ch_merge *merge;
    ch_merge_stats merge_stats;
    /* Correlation (absent with --no-rules). */
    ch_refsets *refsets;
    ch_ruleset *rules;
    ch_engine *engine;
    ch_entity *entity;
    ch_intel_matcher *intel;
    ch_intel_catalog *catalog;
    ch_offenses *offenses;
    ch_risk *risk;
    ch_offense_sink sink;
    ch_store *store;
    bool json, progress, write_failed, engine_failed;
    size_t files_total, files_done;
    double t0, elapsed, progress_last;
} ch_analyze;

void ch_analyze_report(const ch_analyze *a, FILE *f);

#endif
