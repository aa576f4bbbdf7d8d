/*
 * offense_events.h - the search that finds an offense's contributing events in the event
 * store: `event.id in [its ids]` over its own time span, oldest first. One definition for
 * `coinhound offenses show --events` and GET /api/v1/offenses/{id}/events.
 */
#ifndef CH_STORE_OFFENSE_EVENTS_H
#define CH_STORE_OFFENSE_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "offense/offense.h"
#include "store/search.h"

/* A search (not run yet) for o's events, keeping at most limit (0 = all its ids), bounded by
 * max_memory and max_ms as ch_search_opts says. *out is NULL when o has no event ids (flows and
 * DNS queries carry none). */
int ch_search_offense_events(const ch_offense *o, uint64_t limit, size_t max_memory, int64_t max_ms,
                             ch_search **out, ch_error *err);

#endif
