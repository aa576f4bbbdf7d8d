/*
 * analyze_int.h - state of one `coinhound analyze` run, shared by analyze.c and report.c: the
 * pipeline (pipeline/pipeline.h) does the work, this holds what the report reads.
 */
#ifndef CH_CLI_ANALYZE_INT_H
#define CH_CLI_ANALYZE_INT_H

#include <stdbool.h>
#include <stdio.h>

#include "core/diag.h"
#include "enrich/geoip.h"
#include "output/output.h"
#include "enrich/entity.h"
#include "intel/intel_match.h"
#include "intel/stix.h"
#include "enrich/refset.h"
#include "offense/report.h"
#include "offense/store.h"
#include "parse/merge.h"
#include "rules/engine.h"
#include "rules/rule.h"
#include "parse/source.h"
#include "pipeline/pipeline.h"

/* The parts below the pipeline are borrowed from it (ch_pipeline_*), for the report. */
typedef struct ch_analyze {
    ch_diag diag;
    ch_pipeline *pipeline;
    ch_pipeline_stats pstats;
    const ch_source_type *forced;
    ch_geoip *geoip;
    ch_output *out;
    ch_merge_stats merge_stats;
    /* Correlation (absent with --no-rules). */
    const ch_ruleset *rules;
    ch_engine *engine;
    ch_entity *entity;
    ch_offenses *offenses;
    ch_risk *risk;
    bool json, progress;
    size_t files_done;
    double t0, elapsed, progress_last;
} ch_analyze;

void ch_analyze_report(const ch_analyze *a, FILE *f);

#endif
