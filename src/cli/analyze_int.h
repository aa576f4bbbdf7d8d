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
#include "parse/source.h"

typedef struct ch_analyze {
    ch_diag diag;
    const ch_source_type *forced;
    ch_geoip *geoip;
    ch_output *out;
    bool json, progress, write_failed;
    size_t files_total, files_done;
    double t0, elapsed, progress_last;
} ch_analyze;

int ch_analyze_file(ch_analyze *a, const char *path);
void ch_analyze_report(const ch_analyze *a, FILE *f);

#endif
