/*
 * retro.h - retro-hunting: the stored events of the last N days matched against the threat
 * intelligence loaded now ("indicator match reversed").
 *
 * Each stored event (CloudTrail, Route 53, flows) goes through the same intel matcher as at
 * ingest (intel/intel_match.h), at the event's own time, so an indicator's validity window and
 * revocation are honoured as they would have been had it been loaded first. A match that the
 * event did not have when it was stored raises CJ-MINE-03 in the offense of the user that
 * entity linking named at ingest (user.name), with the event's own time and `retro: true` in
 * the evidence. Each (record, rule) is raised once: the record identities already raised are
 * remembered in the database, in the same transaction as the offenses they changed.
 */
#ifndef CH_STORE_RETRO_H
#define CH_STORE_RETRO_H

#include <stdint.h>
#include <stdio.h>

#include "core/error.h"
#include "store/evstore.h"

typedef struct ch_pipeline ch_pipeline;

typedef struct ch_intel_matcher ch_intel_matcher;

typedef struct ch_retro_opts {
    int64_t since_ms; /* events from this time on (0 = now - 30 days) */
    const char *set;  /* only matches from this intel set, or NULL */
    /* Match with this matcher instead of the pipeline's, or NULL: `serve` hunts for just the
     * values a reference set gained, in a matcher holding only those, so the values it held
     * before (whose events the rules saw at ingest) raise nothing again. */
    const ch_intel_matcher *matcher;
} ch_retro_opts;

typedef struct ch_retro_result {
    uint64_t scanned;     /* stored events evaluated */
    uint64_t matched;     /* of those, matching an indicator now */
    uint64_t already;     /* matched at ingest or raised by an earlier hunt */
    uint64_t raised;      /* CJ-MINE-03 hits raised now */
    uint64_t unlinked;    /* matches with no user to put them under */
    int64_t offenses[64]; /* offenses changed (first 64) */
    size_t noffenses;
    uint64_t damaged; /* segments skipped */
} ch_retro_result;

/* Run over es (the store of p's database) and checkpoint p. p must have rules (CJ-MINE-03)
 * and a store. CH_ENOTFOUND when the pack has no CJ-MINE-03. */
int ch_retro_hunt(ch_pipeline *p, ch_evstore *es, const ch_retro_opts *o, ch_retro_result *r,
                  ch_error *err);

/* The whole of `coinhound hunt` (and of the hunt after `intel load` / `intel pull`): open a
 * pipeline on db_path (NULL = default) with pack (NULL = default), hunt over the last
 * since_ms, checkpoint. msg gets warnings. */
int ch_retro_run(const char *db_path, const char *pack, int64_t since_ms, const ch_retro_opts *o,
                 void (*msg)(void *ud, const char *m), void *msg_ud, ch_retro_result *r,
                 ch_error *err);
/* "retro-hunt: N stored events, M match the intelligence now, K raised ...; offenses: ..." */
void ch_retro_print(const ch_retro_result *r, FILE *f);

/* After `intel load` / `intel pull` into db_path (NULL = default): when that database has an
 * event store, hunt the last CH_RETRO_DEFAULT_DAYS days and print the result to out. 0 when
 * there is no event store (nothing printed). */
#define CH_RETRO_DEFAULT_DAYS 30
int ch_retro_after_intel(const char *db_path, FILE *out, ch_error *err);

#endif
