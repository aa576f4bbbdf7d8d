/*
 * report.h - glue between the rule engine and the offense and risk trackers for a run: a hit
 * sink to hand the engine (ch_hit_fn), and the offenses + users sections of `analyze`'s report.
 *
 * Ownership: a ch_offense_sink borrows its manager and tracker; the caller owns all three.
 */
#ifndef CH_OFFENSE_REPORT_H
#define CH_OFFENSE_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "offense/offense.h"
#include "uba/risk.h"

typedef struct ch_offense_sink {
    ch_offenses *offenses; /* may be NULL: no offenses */
    ch_risk *risk;         /* may be NULL: no user risk */
    uint64_t errors;       /* hits that could not be recorded (out of memory, caps) */
    int first_error;       /* CH_E* of the first of them, 0 when none */
} ch_offense_sink;

/* A ch_hit_fn: ud is a ch_offense_sink. Chains the hit into an offense and raises the user's
 * risk; failures are counted in the sink, never fatal to the run. */
void ch_offense_sink_hit(const ch_rule_hit *hit, void *ud);

/* Append `"offenses":[...],"users":[...]` (no braces): offenses of every status sorted by
 * magnitude, users by risk. flags: CH_OFFENSE_JSON_DETAIL adds event ids, evidence and notes to
 * offenses and timelines to users. m or r may be NULL (an empty array is written). */
int ch_offense_report_json(ch_buf *b, const ch_offenses *m, const ch_risk *r, unsigned flags);

/* The same for people: the offense table and the users table, limit rows each (0 = all). */
int ch_offense_report_table(ch_buf *b, const ch_offenses *m, const ch_risk *r, size_t limit);

#endif
