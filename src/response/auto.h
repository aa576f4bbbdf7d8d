/*
 * auto.h - automatic response (docs/RESPONSE.md, "Automatic response"): offenses that a
 * configured rule contributed to, at or above a magnitude, get a plan proposed; when the
 * configuration also sets respond.execute: true and names step kinds, those steps run, at most
 * respond.auto_rate runs per period, and never while the kill switch file exists or
 * respond.auto_enabled is false.
 *
 * `coinhound serve` runs a pass every respond.auto_every (5 s by default) on a thread of its own,
 * reading the offenses the pipeline checkpointed into the store: a new or updated offense is
 * seen within a checkpoint and a pass, and the pipeline never waits for AWS. Each (offense, rule)
 * is acted on once (response_auto), so restarts do not repeat a response; the rate limit counts
 * the recorded runs, so restarts do not reset it either. Cost per pass: loading the open
 * offenses (O(open offenses)), then nothing more for those already handled.
 *
 * Ownership: ch_resp_responder borrows the configuration and the log function until
 * ch_resp_auto_stop.
 */
#ifndef CH_RESPONSE_AUTO_H
#define CH_RESPONSE_AUTO_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "response/respond_config.h"

typedef void (*ch_resp_auto_log_fn)(void *ud, const char *level, const char *event,
                                    const char *msg);

typedef struct ch_resp_auto_stats {
    size_t proposed; /* plans proposed in this pass */
    size_t ran;      /* ... whose steps ran */
    size_t held;     /* ... not run: execute off, kill switch, or rate limit */
} ch_resp_auto_stats;

/* One pass over the open offenses of db at now_ms. */
int ch_resp_auto_pass(const char *db, const ch_resp_config *cfg, int64_t now_ms,
                      ch_resp_auto_log_fn log, void *log_ud, ch_resp_auto_stats *st, ch_error *err);

typedef struct ch_resp_responder ch_resp_responder;
/* Start the thread (nothing when the configuration names no automatic response: *out NULL). */
int ch_resp_auto_start(const char *db, const ch_resp_config *cfg, ch_resp_auto_log_fn log,
                       void *log_ud, ch_resp_responder **out, ch_error *err);
void ch_resp_auto_stop(ch_resp_responder *a);

#endif
