/*
 * timeline.h - one user's story for an analyst: the bounded risk score against the population,
 * who created or empowered the user (identity lineage) and whom the user created, the offenses
 * the user is in (indexed by the user, or holding the user through lineage), and a timeline
 * merged in event-time order of
 *     first_seen  first login from a country, first call from a country, first use of a region,
 *                 an instance type, an API (investigate/facts.h)
 *     rule        a rule hit with its risk delta, the raw risk and the score after it
 *     offense     an offense the user is in opened (its first event)
 * Everything is read from the store (offense/store.h and the investigate tables); nothing is
 * kept between calls. docs/INVESTIGATION.md shows the JSON.
 *
 * Cost: a handful of indexed queries, the user's rows (firsts capped at CH_TIMELINE_MAX_FIRSTS,
 * rule hits at CH_RISK_MAX_TIMELINE, the latest kept) and one pass over all users' stored risk
 * for the population's threshold.
 *
 * Ownership: output is appended to the caller's buffer.
 */
#ifndef CH_UBA_TIMELINE_H
#define CH_UBA_TIMELINE_H

#include <stddef.h>

#include "core/buf.h"
#include "core/error.h"
#include "offense/store.h"

#define CH_TIMELINE_MAX_FIRSTS 5000

enum {
    CH_USER_TIMELINE = 1u << 0, /* add the merged "timeline" array (else the summary only) */
};

/* The user as JSON (one object). CH_ENOTFOUND when the store knows nothing of the user (no
 * risk, no firsts, no offense). */
int ch_user_timeline_json(ch_store *s, const char *name, size_t n, unsigned flags, ch_buf *b,
                          ch_error *err);
/* The same for people. */
int ch_user_timeline_text(ch_store *s, const char *name, size_t n, unsigned flags, ch_buf *b,
                          ch_error *err);

#endif
