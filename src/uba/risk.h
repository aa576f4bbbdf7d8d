/*
 * risk.h - user risk (UBA): every rule hit adds its rule's risk value to the user's raw risk
 * (times the watchlist multiplier for a watched user), and the raw risk is multiplied by a
 * decay factor per hour of event time (0.9715 by default: it halves in 24 h), so that a user
 * who tripped one rule last month is not ranked with one who tripped five today. Each change is
 * kept on the user's timeline as (time, rule, delta, risk after). docs/RISK.md has the model.
 *
 * What people see is a bounded score, 100 * (1 - exp(-raw / scale)): 0 to 100, comparable
 * across users and deployments whatever the pack's risk values add up to, with the raw sum kept
 * beside it. Whether a user stands out is judged against the population of users at risk (a
 * robust dynamic threshold: median score + max(3 MAD, 10 points)), not by an absolute number.
 *
 * Scores are kept as (value, time of value) and decayed lazily when read or raised, so idle users
 * cost nothing. "Now" for reporting is the latest event time the tracker has seen, never the
 * wall clock: re-analysing last year's logs gives the same ranking as on the day.
 *
 * Ownership: the tracker owns its users, their names and timelines; pointers returned by
 * ch_risk_at / ch_risk_find borrow from it until ch_risk_free (users never move).
 */
#ifndef CH_UBA_RISK_H
#define CH_UBA_RISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "rules/hit.h"

#define CH_RISK_DEFAULT_HALF_LIFE_MS (24LL * 3600 * 1000)
#define CH_RISK_MAX_USERS (1u << 20) /* users tracked; hits for more are counted and dropped */
#define CH_RISK_MAX_TIMELINE 512     /* timeline entries kept per user (the latest) */
#define CH_RISK_MAX_NAME_LEN 512     /* bytes of a user name; longer names are cut */
#define CH_RISK_MAX_WATCHLIST 4096   /* watched user names */
#define CH_RISK_DEFAULT_WATCH_MULTIPLIER 2.0
#define CH_RISK_DEFAULT_SCALE 100.0
/* Below this many users at risk the population says nothing: the threshold is fixed. */
#define CH_RISK_MIN_POPULATION 5
#define CH_RISK_FIXED_THRESHOLD 50.0

/* The model's parameters (docs/RISK.md); zero fields take the defaults. */
typedef struct ch_risk_config {
    double decay_per_hour;   /* (0, 1]: raw risk is multiplied by it per hour of event time */
    double watch_multiplier; /* >= 1: a watched user's hits count this many times */
    double scale;            /* > 0: the raw risk at which the score is 63 (1 - 1/e) */
} ch_risk_config;

/* The population's view at ch_risk_now. */
typedef struct ch_risk_population {
    size_t users;       /* users at risk (raw >= 0.05) */
    double median, mad; /* of their scores */
    double threshold;   /* a score above it stands out */
    bool fixed;         /* fewer than CH_RISK_MIN_POPULATION users: the threshold is fixed */
} ch_risk_population;

typedef struct ch_risk_entry {
    int64_t ts_ms;
    char *rule_id;
    double delta;      /* the rule's risk value */
    double risk_after; /* the user's risk right after, at ts_ms */
} ch_risk_entry;

/* Read-only for callers. */
typedef struct ch_risk_user {
    char *name;
    size_t name_len;
    double risk; /* value at updated_ms; decay it with ch_risk_user_at */
    int64_t updated_ms;
    ch_risk_entry *timeline; /* oldest first; the latest CH_RISK_MAX_TIMELINE */
    size_t ntimeline, timeline_cap;
    size_t nstored; /* timeline entries already in the store (a prefix) */
    uint64_t dropped_timeline;
    bool dirty;
} ch_risk_user;

typedef struct ch_risk ch_risk;

/* half_life_ms <= 0 means CH_RISK_DEFAULT_HALF_LIFE_MS. NULL when out of memory. */
ch_risk *ch_risk_new(int64_t half_life_ms);
void ch_risk_free(ch_risk *r);
int64_t ch_risk_half_life(const ch_risk *r);
/* Set the model (zero fields keep the defaults). CH_EUSAGE for a value out of range. */
int ch_risk_configure(ch_risk *r, const ch_risk_config *c);
void ch_risk_config_get(const ch_risk *r, ch_risk_config *out);
/* Watch a user: later hits count watch_multiplier times. CH_ELIMIT past
 * CH_RISK_MAX_WATCHLIST, CH_ENOMEM. Idempotent. */
int ch_risk_watch(ch_risk *r, const char *user, size_t n);
bool ch_risk_watched(const ch_risk *r, const char *user, size_t n);
/* The bounded score of a raw risk value: 0 to 100. */
double ch_risk_score(const ch_risk *r, double raw);
/* The population's median, spread and threshold at ch_risk_now (see the top). */
int ch_risk_population_get(const ch_risk *r, ch_risk_population *out);

/* Raise hit->user's risk by hit->rule->risk at hit->ts_ms. 1 when applied, 0 when the hit has
 * no user or the rule no risk, CH_ENOMEM, CH_ELIMIT at CH_RISK_MAX_USERS. */
int ch_risk_add_hit(ch_risk *r, const ch_rule_hit *hit);
/* The same with explicit values (delta may be negative; risk never goes below 0). A change
 * older than the user's last update is decayed forward to it, so out-of-order hits within the
 * merge's lateness give the same score as in-order ones. */
int ch_risk_add(ch_risk *r, const char *user, size_t user_len, int64_t ts_ms, const char *rule_id,
                double delta);
/* Set a user's state as stored (the store's loader); the user starts clean (not dirty). */
int ch_risk_put_user(ch_risk *r, const char *user, size_t user_len, double risk,
                     int64_t updated_ms);
/* Append a stored timeline entry to a user (the store's loader; call before any ch_risk_add for
 * that user, since stored entries must come first). */
int ch_risk_put_entry(ch_risk *r, const char *user, size_t user_len, int64_t ts_ms,
                      const char *rule_id, double delta, double risk_after);

size_t ch_risk_count(const ch_risk *r);
ch_risk_user *ch_risk_at(const ch_risk *r, size_t i);
ch_risk_user *ch_risk_find(const ch_risk *r, const char *user, size_t user_len);
/* The latest event time seen (hits and loaded users); INT64_MIN when none. */
int64_t ch_risk_now(const ch_risk *r);
/* A user's risk decayed to ts_ms (never raised: ts before the last update gives the value then). */
double ch_risk_user_at(const ch_risk *r, const ch_risk_user *u, int64_t ts_ms);
uint64_t ch_risk_dropped(const ch_risk *r);

/* Users with risk > 0 at ch_risk_now, highest first (ties by name). *out is ch_malloc'd, of
 * borrowed pointers; the caller ch_frees it. */
int ch_risk_sorted(const ch_risk *r, ch_risk_user ***out, size_t *n);

/* Append `"users":[{"name","risk","risk_raw","stands_out","watched"}...],"risk_population":
 * {"users","median","threshold","fixed"}`: risk is the bounded score at ch_risk_now, risk_raw
 * the raw sum (one decimal each), sorted. With detail, each user also carries "updated" and
 * "timeline":[{"time","rule","delta","risk_raw","risk"}] (delta and risk_raw raw, risk the
 * score at that time). */
int ch_risk_json(ch_buf *b, const ch_risk *r, bool detail);
/* A table for people; limit 0 = all. */
int ch_risk_table(ch_buf *b, const ch_risk *r, size_t limit);

#endif
