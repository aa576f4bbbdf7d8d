/*
 * offense.h - offenses: what an analyst acts on. Rule hits that share an index value (a user
 * name, a source address, an instance id) chain into one open offense, which keeps the
 * contributing rules with counts and first/last seen, a bounded list of contributing event ids
 * with the total, a status with notes, and a magnitude 1..10 (docs/OFFENSES.md has the formula
 * and why).
 *
 * The manager is in memory and per run; src/offense/store.h loads the open offenses of earlier
 * runs into it before the run, so that new hits extend them, and saves it afterwards.
 *
 * Ownership: the manager owns its offenses and everything in them (ch_offenses_free releases
 * all); pointers returned by ch_offenses_at / ch_offenses_find / ch_offenses_sorted borrow from
 * the manager and stay valid until it is freed (offenses never move or go away during a run).
 * ch_offenses_add_hit copies what it keeps from the hit.
 */
#ifndef CH_OFFENSE_OFFENSE_H
#define CH_OFFENSE_OFFENSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "rules/hit.h"

#define CH_OFFENSE_MAX_EVENT_IDS 100     /* event ids kept per offense; event_count has the total */
#define CH_OFFENSE_MAX_RULES 256         /* distinct contributing rules per offense */
#define CH_OFFENSE_MAX_NOTES 1000        /* notes per offense */
#define CH_OFFENSE_MAX_NOTE_LEN 4096     /* bytes of one note; longer notes are cut */
#define CH_OFFENSE_MAX_VALUE_LEN 1024    /* bytes of an index value; longer values are cut */
#define CH_OFFENSE_MAX_EVIDENCE_LEN 1024 /* bytes of a rule's evidence line */
#define CH_OFFENSE_MAX_SEEN 65536        /* event ids remembered to count distinct events */
#define CH_OFFENSES_MAX (1u << 20)       /* offenses per manager */

typedef enum ch_offense_status {
    CH_OFFENSE_OPEN = 0,
    CH_OFFENSE_CLOSED = 1,
    CH_OFFENSE_HIDDEN = 2, /* still active (hits keep chaining into it), just out of sight */
} ch_offense_status;

/* Bit mask of statuses, for listing. */
enum {
    CH_OFFENSE_MASK_OPEN = 1u << CH_OFFENSE_OPEN,
    CH_OFFENSE_MASK_CLOSED = 1u << CH_OFFENSE_CLOSED,
    CH_OFFENSE_MASK_HIDDEN = 1u << CH_OFFENSE_HIDDEN,
    CH_OFFENSE_MASK_ALL = 7u,
};

const char *ch_offense_status_name(ch_offense_status st); /* "open", "closed", "hidden" */
/* Parse "open"/"closed"/"hidden"; false when unknown. */
bool ch_offense_status_parse(const char *s, ch_offense_status *out);

/* One contributing rule. Strings are owned by the offense. */
typedef struct ch_offense_rule {
    char *id, *title;
    char *evidence; /* the latest hit's evidence line, may be NULL */
    int severity, credibility, relevance;
    uint64_t count; /* hits of this rule on this offense */
    int64_t first_ms, last_ms;
} ch_offense_rule;

typedef struct ch_offense_note {
    int64_t ts_ms;            /* wall-clock time the analyst wrote it */
    ch_offense_status status; /* status set together with the note */
    char *text;
    bool stored; /* already in the store */
} ch_offense_note;

typedef struct ch__offense_seen ch__offense_seen;
typedef struct ch_offense_obs ch_offense_obs; /* offense/observables.h */

/* Read-only for callers; change it through the functions below. */
typedef struct ch_offense {
    int64_t id; /* 1, 2, ...: unique per store (provisional until first saved) or per manager */
    char *index_field;
    char *index_value; /* NUL-terminated copy; index_value_len bytes, may contain any byte */
    size_t index_value_len;
    ch_offense_status status;
    int magnitude; /* 1..10 */
    double score;  /* magnitude before rounding, 0..10, for ties and curiosity */
    int severity, credibility, relevance; /* offense-level aggregates, 0..10 */
    uint64_t event_count;                 /* distinct contributing events (see docs/OFFENSES.md) */
    int64_t first_ms, last_ms;
    ch_offense_rule *rules;
    size_t nrules;
    char **event_ids; /* first CH_OFFENSE_MAX_EVENT_IDS distinct ids, in arrival order */
    size_t nevent_ids;
    ch_offense_note *notes;
    size_t nnotes;
    uint64_t dropped_rules; /* hits of rules past CH_OFFENSE_MAX_RULES */
    /* Addresses, keys, instances and pools the hits named (offense/observables.h); NULL until
     * the first hit or load that has one. */
    ch_offense_obs *obs;
    bool dirty;  /* changed since loaded or saved */
    bool stored; /* has a row in the store (its id is final) */
    /* internals */
    size_t rules_cap, notes_cap, event_ids_cap;
    ch__offense_seen *seen;
} ch_offense;

typedef struct ch_offenses ch_offenses;

typedef struct ch_offenses_stats {
    uint64_t hits;          /* hits given to ch_offenses_add_hit */
    uint64_t hits_no_index; /* rule names no index, or the event has no value: no offense */
    uint64_t hits_chained;  /* joined an existing offense */
    uint64_t created;       /* offenses created */
    uint64_t dropped_limit; /* hits lost to CH_OFFENSES_MAX */
} ch_offenses_stats;

ch_offenses *ch_offenses_new(void); /* NULL when out of memory */
void ch_offenses_free(ch_offenses *m);

/* Chain a hit into the active (open or hidden) offense for (index_field, index_value), or
 * create one. Returns 1 when the hit joined or created an offense (*out, if given, is it), 0 when
 * the hit has no index value (no offense), CH_ENOMEM, or CH_ELIMIT at CH_OFFENSES_MAX. */
int ch_offenses_add_hit(ch_offenses *m, const ch_rule_hit *hit, ch_offense **out);

size_t ch_offenses_count(const ch_offenses *m);
ch_offense *ch_offenses_at(const ch_offenses *m, size_t i); /* in creation/load order */
ch_offense *ch_offenses_find(const ch_offenses *m, int64_t id);
/* The active offense for an index, or NULL. */
ch_offense *ch_offenses_find_active(const ch_offenses *m, const char *field, const char *value,
                                    size_t value_len);
const ch_offenses_stats *ch_offenses_stats_get(const ch_offenses *m);
/* The id the next new offense gets; the store raises it past the ids it already holds. */
void ch_offenses_set_next_id(ch_offenses *m, int64_t next_id);
int64_t ch_offenses_next_id(const ch_offenses *m);

/* Set the status (and add a note when note != NULL and non-empty). A closed offense leaves the
 * chaining index, so later hits on its index value create a new offense. Closing is final. */
int ch_offense_set_status(ch_offenses *m, ch_offense *o, ch_offense_status st, const char *note,
                          int64_t now_ms);

/* Offenses of the given status mask sorted by magnitude (highest first), then last seen (latest
 * first), then id. *out is a ch_malloc'd array of borrowed pointers the caller ch_frees. */
int ch_offenses_sorted(const ch_offenses *m, unsigned status_mask, ch_offense ***out, size_t *n);

/* Magnitude from the offense's rules and event count: sets magnitude, score, severity,
 * credibility and relevance. Called by add_hit; public for the store and the tests. */
void ch_offense_score(ch_offense *o);

/* ---- rendering ---------------------------------------------------------------------------- */

enum {
    CH_OFFENSE_JSON_DETAIL = 1u << 0, /* add event_ids, evidence, notes, dropped counters,
                                         observables */
};

/* Append one offense as a JSON object. */
int ch_offense_json(ch_buf *b, const ch_offense *o, unsigned flags);
/* Append `"offenses":[...]` (no surrounding braces), sorted as ch_offenses_sorted. */
int ch_offenses_json(ch_buf *b, const ch_offenses *m, unsigned status_mask, unsigned flags);
/* A table for people: one line per offense, sorted; limit 0 = all. */
int ch_offenses_table(ch_buf *b, const ch_offenses *m, unsigned status_mask, size_t limit);
/* Everything about one offense for people: rules, evidence, event ids, notes. */
int ch_offense_detail_text(ch_buf *b, const ch_offense *o);

#endif
