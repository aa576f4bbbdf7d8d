/*
 * api_respond.c - response plans over the REST API (docs/API.md, "Response plans"):
 *   GET  /api/v1/offenses/{id}/response_plan   build, store and return a plan (analyst)
 *   GET  /api/v1/response_plans/{id}           a stored plan with each step's run state (viewer)
 *   POST /api/v1/response_plans/{id}/run       run it: {"approve":true,"steps":[...]} (admin)
 *
 * The same library calls as `coinhound respond` (response/run.h), with the caller's account or
 * token name as the actor and the client address as the source of every audit entry. A run is
 * refused (409, audited) unless the serve configuration sets respond.execute: true, and (422,
 * audited) without "approve": true.
 *
 * A run is asynchronous: a run can take minutes (AWS throttles, DNS Firewall associations settle
 * slowly), too long to hold a request thread. The handler starts the run on a worker thread of
 * its own and waits only until the run is approved, audited, marked running and holds the plan's
 * lock (ch_resp_run_opts.started), so that every refusal (not enabled, not approved, unknown
 * plan or step, another run of the plan under way) is still the request's answer, and a 202
 * means the run is under way and on disk. The plan's GET route then shows its progress step by
 * step. At most MAX_RUNS runs at once (503 past that). Stopping the server asks each run to stop
 * before its next call and joins it; a run stopped so (or killed) is continued by running the
 * plan again, as from the command line.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/json.h"
#include "core/mem.h"
#include "core/sqlite_util.h"
#include "response/resp_store.h"
#include "response/run.h"
#include "server/api.h"
#include "server/api_parse.h"

#define RUN_BODY_MAX 65536
#define MAX_RUNS 8

/* One run the API started. Under the registry's mutex: started, finished and the outcome. */
typedef struct run_job {
    struct ch_api_resp_runs *owner;
    pthread_t thread;
    bool used, started, finished;
    int rc;
    ch_error err;
    char *db, *actor, *source;
    char **steps;
    size_t nsteps;
    int64_t plan;
    const ch_resp_config *cfg;
} run_job;

struct ch_api_resp_runs {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_bool stop;
    run_job jobs[MAX_RUNS];
};

static void job_clear(run_job *j)
{
    ch_free(j->db);
    ch_free(j->actor);
    ch_free(j->source);
    for (size_t i = 0; j->steps != NULL && i < j->nsteps; i++)
        ch_free(j->steps[i]);
    ch_free(j->steps);
    struct ch_api_resp_runs *owner = j->owner;
    memset(j, 0, sizeof *j);
    j->owner = owner;
}

ch_api_resp_runs *ch_api_resp_runs_new(void)
{
    ch_api_resp_runs *r = ch_calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    for (size_t i = 0; i < MAX_RUNS; i++)
        r->jobs[i].owner = r;
    return r;
}

void ch_api_resp_runs_free(ch_api_resp_runs *r)
{
    if (r == NULL)
        return;
    atomic_store(&r->stop, true);
    for (size_t i = 0; i < MAX_RUNS; i++)
        if (r->jobs[i].used) {
            pthread_join(r->jobs[i].thread, NULL);
            job_clear(&r->jobs[i]);
        }
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    ch_free(r);
}

static void on_started(void *ud)
{
    run_job *j = ud;
    pthread_mutex_lock(&j->owner->mu);
    j->started = true;
    pthread_cond_broadcast(&j->owner->cv);
    pthread_mutex_unlock(&j->owner->mu);
}

static void *run_main(void *arg)
{
    run_job *j = arg;
    ch_resp_run_opts ro = {.db = j->db,
                           .plan_id = j->plan,
                           .cfg = j->cfg,
                           .actor = j->actor,
                           .source = j->source,
                           .approved = true,
                           .steps = j->steps != NULL ? (const char *const *)j->steps : NULL,
                           .nsteps = j->nsteps,
                           .started = on_started,
                           .started_ud = j,
                           .cancel = &j->owner->stop};
    ch_resp_run_result res;
    ch_error err = {0};
    int rc = ch_resp_run(&ro, &res, &err);
    pthread_mutex_lock(&j->owner->mu);
    j->rc = rc;
    j->err = err;
    j->finished = true;
    pthread_cond_broadcast(&j->owner->cv);
    pthread_mutex_unlock(&j->owner->mu);
    return NULL;
}

static const char *db_path(ch_api *api) { return ch_store_sql(api->store)->path; }

static bool id_param(const ch_http_req *rq, ch_http_resp *rs, const char *what, int64_t *id)
{
    uint64_t v;
    if (!ch_api_parse_uint(ch_http_param(rq, 0), INT64_MAX, &v) || v == 0) {
        char msg[96];
        snprintf(msg, sizeof msg, "no such %s (ids are positive integers)", what);
        ch_http_error(rs, 404, msg);
        return false;
    }
    *id = (int64_t)v;
    return true;
}

/* {"id","offense","status","plan":{...},"run":[step states]} */
static void plan_body(ch_http_resp *rs, const char *db, int64_t id)
{
    ch_error err = {0};
    ch_resp_store *st = NULL;
    char *json = NULL, status[32];
    int64_t offense = 0;
    int rc = ch_resp_store_open(db, &st, &err);
    if (rc >= 0)
        rc = ch_resp_store_get(st, id, &json, &offense, status, &err);
    if (rc >= 0) {
        ch_buf_printf(&rs->body, "{\"id\":%lld,\"offense\":%lld,\"status\":", (long long)id,
                      (long long)offense);
        ch_buf_add_json_str(&rs->body, status, strlen(status));
        ch_buf_adds(&rs->body, ",\"plan\":");
        ch_buf_adds(&rs->body, json);
        ch_buf_adds(&rs->body, ",\"run\":");
        rc = ch_resp_steps_json(st, id, &rs->body, &err);
        if (rc >= 0)
            rc = ch_buf_addc(&rs->body, '}');
    }
    ch_free(json);
    ch_resp_store_close(st);
    if (rc < 0)
        ch__api_error(rs, rc, &err);
}

void ch_api_response_plan_propose(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    ch_api *api = ch__serve_api(ud);
    int64_t id;
    if (!id_param(rq, rs, "offense", &id))
        return;
    ch_error err = {0};
    ch_resp_plan *p = NULL;
    ch_resp_propose_opts po = {
        .actor = ch_http_principal(rq)->name, .source = ch_http_peer(rq), .now_ms = ch__api_now()};
    int rc = ch_resp_propose(db_path(api), id, &po, &p, &err);
    if (rc < 0) {
        ch__api_error(rs, rc, &err);
        return;
    }
    snprintf(rs->location, sizeof rs->location, "/api/v1/response_plans/%lld", (long long)p->id);
    plan_body(rs, db_path(api), p->id);
    ch_resp_plan_free(p);
}

void ch_api_response_plan_get(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    ch_api *api = ch__serve_api(ud);
    int64_t id;
    if (id_param(rq, rs, "response plan", &id))
        plan_body(rs, db_path(api), id);
}

/* {"approve": true, "steps": ["1", 2, ...]} (steps optional: every step). */
static int parse_run(const char *body, size_t n, bool *approve, char ***steps, size_t *nsteps,
                     ch_error *err)
{
    *approve = false;
    *steps = NULL;
    *nsteps = 0;
    ch_json_parser *jp = ch_json_parser_new(RUN_BODY_MAX, 8);
    if (jp == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    ch_json_val root, v, e;
    int rc = n == 0 ? ch_error_set(err, CH_EPARSE, "the body must be a JSON object")
                    : ch_json_parse(jp, body, n, n, &root, err);
    if (rc >= 0 && ch_json_typeof(root) != CH_JSON_OBJECT)
        rc = ch_error_set(err, CH_EPARSE, "the body must be a JSON object");
    if (rc >= 0 && ch_json_obj_get(root, "approve", 7, &v) && !ch_json_get_bool(v, approve))
        rc = ch_error_set(err, CH_EPARSE, "approve must be true or false");
    if (rc >= 0 && ch_json_obj_get(root, "steps", 5, &v)) {
        ch_json_iter it;
        size_t count = 0;
        if (!ch_json_arr_iter(v, &it))
            rc = ch_error_set(err, CH_EPARSE, "steps must be a list of step ids");
        while (rc >= 0 && ch_json_arr_next(&it, &e))
            count++;
        if (rc >= 0 && (count == 0 || count > CH_RESP_MAX_STEPS))
            rc = ch_error_set(err, CH_EPARSE, "steps: 1 to %d step ids", CH_RESP_MAX_STEPS);
        if (rc >= 0 && (*steps = ch_calloc(count, sizeof **steps)) == NULL)
            rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        if (rc >= 0)
            ch_json_arr_iter(v, &it);
        while (rc >= 0 && ch_json_arr_next(&it, &e)) {
            const char *s;
            size_t sl;
            uint64_t u;
            char t[24];
            if (ch_json_get_str(e, &s, &sl) && sl > 0 && sl < sizeof t) {
                memcpy(t, s, sl);
                t[sl] = '\0';
            } else if (ch_json_get_u64(e, &u)) {
                snprintf(t, sizeof t, "%llu", (unsigned long long)u);
            } else {
                rc = ch_error_set(err, CH_EPARSE, "steps: each a step id (\"3\" or 3)");
                break;
            }
            if (((*steps)[(*nsteps)++] = ch_strdup(t)) == NULL)
                rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        }
    }
    ch_json_parser_free(jp);
    return rc;
}

void ch_api_response_plan_run(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    ch_api *api = ch__serve_api(ud);
    int64_t id;
    if (!id_param(rq, rs, "response plan", &id))
        return;
    size_t n;
    const char *body = ch_http_body(rq, &n);
    bool approve;
    char **steps = NULL;
    size_t nsteps = 0;
    ch_error err = {0};
    const char *db = db_path(api);
    const char *actor = ch_http_principal(rq)->name, *peer = ch_http_peer(rq);
    int rc = parse_run(body, n, &approve, &steps, &nsteps, &err);
    if (rc < 0) {
        ch_http_error(rs, 400, err.msg);
        goto cleanup;
    }
    ch_resp_store *st = NULL;
    char *json = NULL, status[32];
    int64_t offense;
    rc = ch_resp_store_open(db, &st, &err);
    if (rc >= 0)
        rc = ch_resp_store_get(st, id, &json, &offense, status, &err);
    ch_free(json);
    ch_resp_store_close(st);
    if (rc < 0) {
        ch__api_error(rs, rc, &err);
        goto cleanup;
    }
    if (!approve) {
        /* Refused before a thread is spent on it, audited as the runner would. */
        ch_resp_run_opts ro = {.db = db,
                               .plan_id = id,
                               .cfg = api->respond,
                               .actor = actor,
                               .source = peer,
                               .approved = false};
        ch_resp_run_result res;
        rc = ch_resp_run(&ro, &res, &err);
        if (rc == CH_RESP_REFUSED)
            ch_http_error(rs, api->respond == NULL || !api->respond->execute ? 409 : 422, err.msg);
        else
            ch__api_error(rs, rc, &err);
        goto cleanup;
    }
    ch_api_resp_runs *r = api->resp_runs;
    pthread_mutex_lock(&r->mu);
    run_job *j = NULL;
    for (size_t i = 0; i < MAX_RUNS; i++) {
        run_job *k = &r->jobs[i];
        if (k->used && k->finished) { /* reap a run that ended */
            pthread_join(k->thread, NULL);
            job_clear(k);
        }
        if (!k->used && j == NULL)
            j = k;
    }
    if (j == NULL) {
        pthread_mutex_unlock(&r->mu);
        ch_http_error(rs, 503, "too many response plan runs at once; try again when one ends");
        goto cleanup;
    }
    j->used = true;
    j->plan = id;
    j->cfg = api->respond;
    j->db = ch_strdup(db);
    j->actor = ch_strdup(actor);
    j->source = ch_strdup(peer);
    j->steps = steps;
    j->nsteps = nsteps;
    steps = NULL; /* the job owns them now */
    nsteps = 0;
    if (j->db == NULL || j->actor == NULL || j->source == NULL ||
        pthread_create(&j->thread, NULL, run_main, j) != 0) {
        job_clear(j);
        pthread_mutex_unlock(&r->mu);
        ch_http_error(rs, 503, "cannot start the run");
        goto cleanup;
    }
    while (!j->started && !j->finished)
        pthread_cond_wait(&r->cv, &r->mu);
    bool started = j->started;
    int jrc = j->rc;
    ch_error jerr = j->err;
    pthread_mutex_unlock(&r->mu);
    if (!started) {
        /* Refused or failed before the first call: the request's answer, as before. */
        if (jrc == CH_RESP_REFUSED)
            ch_http_error(rs, api->respond == NULL || !api->respond->execute ? 409 : 422, jerr.msg);
        else if (jrc == CH_RESP_BUSY)
            ch_http_error(rs, 409, jerr.msg);
        else
            ch__api_error(rs, jrc, &jerr);
        goto cleanup;
    }
    rs->status = 202;
    snprintf(rs->location, sizeof rs->location, "/api/v1/response_plans/%lld", (long long)id);
    ch_buf_printf(&rs->body,
                  "{\"id\":%lld,\"status\":\"running\",\"status_url\":\"/api/v1/response_plans/"
                  "%lld\"}",
                  (long long)id, (long long)id);
cleanup:
    for (size_t i = 0; steps != NULL && i < nsteps; i++)
        ch_free(steps[i]);
    ch_free(steps);
}
