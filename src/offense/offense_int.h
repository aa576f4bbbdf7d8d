/*
 * offense_int.h - the inside of the offense manager that the store needs to rebuild offenses
 * it loads: create an offense with a known id and status, and add rules, event ids and notes
 * as they were saved. Not for other modules.
 */
#ifndef CH_OFFENSE_OFFENSE_INT_H
#define CH_OFFENSE_OFFENSE_INT_H

#include "offense/offense.h"

/* Create an offense with a given id (> 0) and status in m; active ones join the chaining index.
 * CH_EUSAGE when an active offense with that index or an offense with that id exists. */
int ch__offenses_create(ch_offenses *m, int64_t id, const char *field, const char *value,
                        size_t value_len, ch_offense_status st, ch_offense **out);

/* Add or merge a contributing rule as stored (counts add up, times widen). */
int ch__offense_put_rule(ch_offense *o, const char *id, const char *title, const char *evidence,
                         int severity, int credibility, int relevance, uint64_t count,
                         int64_t first_ms, int64_t last_ms);

/* Remember an event id: 1 when it was not seen before, 0 when it was, CH_ENOMEM. */
int ch__offense_put_event_id(ch_offense *o, const char *id, size_t n);

int ch__offense_put_note(ch_offense *o, int64_t ts_ms, ch_offense_status st, const char *text,
                         bool stored);

/* The offense's observables, made on first use; NULL when out of memory. */
ch_offense_obs *ch__offense_obs(ch_offense *o);

#endif
