/*
 * auto.c - automatic response (see auto.h): a pass over the stored open offenses, and the
 * thread of `coinhound serve` that runs one every respond.auto_every.
 *
 * The order of a response is: record it in response_auto (so that a crash during the run does
 * not start a second one at the next start), propose and audit the plan, then, when every guard
 * allows, run the chosen kinds of steps as the actor "system" (the approval is the
 * configuration an administrator wrote), and record the outcome.
 */
#include "response/auto.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/mem.h"
#include "offense/store.h"
#include "response/resp_store.h"
#include "response/run.h"
#include "server/audit.h"

static void logf_(ch_resp_auto_log_fn log, void *ud, const char *level, const char *event,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void logf_(ch_resp_auto_log_fn log, void *ud, const char *level, const char *event,
                  const char *fmt, ...)
{
    if (log == NULL)
        return;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log(ud, level, event, msg);
}

static bool has_rule(const ch_offense *o, const char *rule)
{
    for (size_t i = 0; i < o->nrules; i++)
        if (strcmp(o->rules[i].id, rule) == 0)
            return true;
    return false;
}

/* Why the steps may not run now, or NULL when they may. */
static const char *held(const ch_resp_config *cfg, ch_resp_store *rs, int64_t now_ms, ch_error *err,
                        int *rc)
{
    struct stat sb;
    *rc = 0;
    if (!cfg->execute)
        return "respond.execute is not true: proposed only";
    if (cfg->auto_disabled)
        return "respond.auto_enabled is false: proposed only";
    if (cfg->kill_switch != NULL && stat(cfg->kill_switch, &sb) == 0)
        return "the kill switch file exists: proposed only";
    int n = ch_resp_auto_runs_since(rs, now_ms - cfg->auto_rate_ms, err);
    if (n < 0) {
        *rc = n;
        return "error";
    }
    if (n >= cfg->auto_rate)
        return "rate limit reached (respond.auto_rate): proposed only";
    return NULL;
}

static int audit_auto(const char *db, int64_t plan, int64_t offense, const char *rule,
                      int magnitude, const char *outcome, int64_t now_ms, ch_error *err)
{
    ch_audit *au = NULL;
    int rc = ch_audit_open(db, false, &au, err);
    if (rc < 0)
        return rc;
    char object[64];
    snprintf(object, sizeof object, "response_plan:%lld", (long long)plan);
    ch_buf b;
    ch_buf_init(&b, CH_AUDIT_JSON_MAX - 1);
    ch_buf_printf(&b, "{\"offense\":%lld,\"rule\":", (long long)offense);
    ch_buf_add_json_str(&b, rule, strlen(rule));
    ch_buf_printf(&b, ",\"magnitude\":%d,\"outcome\":", magnitude);
    ch_buf_add_json_str(&b, outcome, strlen(outcome));
    rc = ch_buf_addc(&b, '}');
    ch_audit_entry e = {.ts = now_ms,
                        .actor = "system",
                        .source = "auto",
                        .action = "response.auto",
                        .object = object,
                        .after = b.data};
    if (rc >= 0)
        rc = ch_audit_append(au, &e, err);
    ch_buf_free(&b);
    ch_audit_close(au);
    return rc;
}

static int respond_one(const char *db, const ch_resp_config *cfg, const ch_resp_auto *a,
                       const ch_offense *o, ch_resp_store *rs, int64_t now_ms,
                       ch_resp_auto_log_fn log, void *log_ud, ch_resp_auto_stats *st, ch_error *err)
{
    int rc = 0;
    const char *why =
        a->nkinds == 0 ? "proposal only (no steps configured)" : held(cfg, rs, now_ms, err, &rc);
    if (rc < 0)
        return rc;
    bool run = why == NULL;
    /* Recorded first: a crash from here on never starts a second response to this offense. */
    if ((rc = ch_resp_auto_put(rs, o->id, a->rule, 0, now_ms, run, run ? "running" : why, err)) < 0)
        return rc;
    ch_resp_plan *p = NULL;
    ch_resp_propose_opts po = {
        .actor = "system", .source = "auto", .now_ms = now_ms, .automatic = true};
    if ((rc = ch_resp_propose(db, o->id, &po, &p, err)) < 0)
        return rc;
    int64_t plan = p->id;
    ch_resp_plan_free(p);
    st->proposed++;
    char outcome[600];
    if (run) {
        ch_resp_run_opts ro = {.db = db,
                               .plan_id = plan,
                               .cfg = cfg,
                               .actor = "system",
                               .source = "auto",
                               .approved = true,
                               .kinds = (const char *const *)a->kinds,
                               .nkinds = a->nkinds};
        ch_resp_run_result res;
        ch_error rerr = {0};
        int r = ch_resp_run(&ro, &res, &rerr);
        snprintf(outcome, sizeof outcome, "ran: %zu steps done, %zu failed%s%s", res.done,
                 res.failed, r < 0 ? ": " : "", r < 0 ? rerr.msg : "");
        st->ran++;
        logf_(log, log_ud, r < 0 ? "error" : "info", "response_auto",
              "offense %lld (rule %s, magnitude %d): plan %lld %s", (long long)o->id, a->rule,
              o->magnitude, (long long)plan, outcome);
    } else {
        snprintf(outcome, sizeof outcome, "%s", why);
        st->held++;
        logf_(log, log_ud, "info", "response_auto",
              "offense %lld (rule %s, magnitude %d): plan %lld proposed; %s", (long long)o->id,
              a->rule, o->magnitude, (long long)plan, why);
    }
    if ((rc = ch_resp_auto_put(rs, o->id, a->rule, plan, now_ms, run, outcome, err)) < 0)
        return rc;
    return audit_auto(db, plan, o->id, a->rule, o->magnitude, outcome, now_ms, err);
}

int ch_resp_auto_pass(const char *db, const ch_resp_config *cfg, int64_t now_ms,
                      ch_resp_auto_log_fn log, void *log_ud, ch_resp_auto_stats *st, ch_error *err)
{
    memset(st, 0, sizeof *st);
    if (cfg->nauto == 0)
        return 0;
    ch_offenses *m = ch_offenses_new();
    ch_store *s = NULL;
    ch_resp_store *rs = NULL;
    int rc = m != NULL ? 0 : ch_error_set(err, CH_ENOMEM, "out of memory");
    if (rc >= 0)
        rc = ch_store_open(db, &s, err);
    if (rc >= 0)
        rc = ch_store_load(s, CH_OFFENSE_MASK_OPEN, m, err);
    ch_store_close(s);
    if (rc >= 0)
        rc = ch_resp_store_open(db, &rs, err);
    size_t n = rc >= 0 ? ch_offenses_count(m) : 0;
    for (size_t i = 0; i < n && rc >= 0; i++) {
        const ch_offense *o = ch_offenses_at(m, i);
        for (size_t k = 0; k < cfg->nauto && rc >= 0; k++) {
            const ch_resp_auto *a = &cfg->autos[k];
            if (o->magnitude < a->min_magnitude || !has_rule(o, a->rule))
                continue;
            int seen = ch_resp_auto_seen(rs, o->id, a->rule, err);
            if (seen != 0) {
                rc = seen < 0 ? seen : 0;
                continue;
            }
            rc = respond_one(db, cfg, a, o, rs, now_ms, log, log_ud, st, err);
        }
    }
    ch_resp_store_close(rs);
    ch_offenses_free(m);
    return rc;
}

/* ---- the thread ---------------------------------------------------------------------------- */

struct ch_resp_responder {
    char *db;
    const ch_resp_config *cfg;
    ch_resp_auto_log_fn log;
    void *log_ud;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *auto_main(void *arg)
{
    ch_resp_responder *a = arg;
    pthread_mutex_lock(&a->mu);
    while (!a->stop) {
        pthread_mutex_unlock(&a->mu);
        ch_error err = {0};
        ch_resp_auto_stats st;
        if (ch_resp_auto_pass(a->db, a->cfg, wall_ms(), a->log, a->log_ud, &st, &err) < 0)
            logf_(a->log, a->log_ud, "error", "response_auto", "automatic response: %s", err.msg);
        pthread_mutex_lock(&a->mu);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        int64_t ns = until.tv_nsec + (a->cfg->auto_every_ms % 1000) * 1000000;
        until.tv_sec += a->cfg->auto_every_ms / 1000 + ns / 1000000000;
        until.tv_nsec = ns % 1000000000;
        while (!a->stop && pthread_cond_timedwait(&a->cv, &a->mu, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

int ch_resp_auto_start(const char *db, const ch_resp_config *cfg, ch_resp_auto_log_fn log,
                       void *log_ud, ch_resp_responder **out, ch_error *err)
{
    *out = NULL;
    if (cfg->nauto == 0)
        return 0;
    ch_resp_responder *a = ch_calloc(1, sizeof *a);
    if (a == NULL || (a->db = ch_strdup(db)) == NULL) {
        ch_free(a);
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    }
    a->cfg = cfg;
    a->log = log;
    a->log_ud = log_ud;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    if (pthread_create(&a->th, NULL, auto_main, a) != 0) {
        pthread_mutex_destroy(&a->mu);
        pthread_cond_destroy(&a->cv);
        ch_free(a->db);
        ch_free(a);
        return ch_error_set(err, CH_ERR, "cannot start the automatic response thread");
    }
    *out = a;
    return 0;
}

void ch_resp_auto_stop(ch_resp_responder *a)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->mu);
    a->stop = true;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
    pthread_join(a->th, NULL);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    ch_free(a->db);
    ch_free(a);
}
