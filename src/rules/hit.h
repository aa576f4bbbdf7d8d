/*
 * hit.h - what the rule engine hands to its consumers (offenses, user risk, reference sets):
 * one rule firing on one event, with the evidence a person needs to trust it.
 *
 * Ownership: a hit and everything it points at borrow from the engine and the event that
 * fired it; they are valid only during the callback. Consumers copy what they keep.
 */
#ifndef CH_RULES_HIT_H
#define CH_RULES_HIT_H

#include <stdint.h>

#include "core/event.h"

#define CH_HIT_MAX_EVENT_IDS 64

typedef struct ch_rule_info {
    const char *id; /* "CJ-AUTH-01" */
    const char *title;
    const char *pack;                     /* content pack name */
    int severity, credibility, relevance; /* 0..10 */
    int risk;                             /* added to the user's risk score when the rule fires */
} ch_rule_info;

typedef struct ch_rule_hit {
    const ch_rule_info *rule;
    int64_t ts_ms;    /* event time of the event that completed the match */
    int64_t first_ms; /* earliest event time among the contributing events */
    /* Offense index: field name and the firing event's value; index_value.p == NULL means the
     * rule names an index but the event has no value for it: no offense is created. */
    const char *index_field;
    ch_sv index_value;
    ch_sv user; /* user.name of the event, for risk; may be empty */
    /* Contributing events: ids of the events in the window/sequence (bounded), and the total. */
    const ch_sv *event_ids;
    uint32_t nevent_ids;
    uint64_t event_count;
    /* One line of human evidence, e.g. "3 countries within 1h: GB, RU, FR". */
    const char *evidence;
    const ch_event *event; /* the event that completed the match */
} ch_rule_hit;

typedef void (*ch_hit_fn)(const ch_rule_hit *hit, void *ud);

#endif
