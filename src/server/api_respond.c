/*
 * api_respond.c - response plans over the REST API (docs/API.md, "Response plans"):
 *   GET  /api/v1/offenses/{id}/response_plan   build, store and return a plan (analyst)
 *   GET  /api/v1/response_plans/{id}           a stored plan with each step's run state (viewer)
 *   POST /api/v1/response_plans/{id}/run       run it: {"approve":true,"steps":[...]} (admin)
 *
 * The same library calls as `coinhound respond` (response/run.h), with the caller's account or
 * token name as the actor and the client address as the source of every audit entry. A run is
 * refused (409, audited) unless the serve configuration sets respond.execute: true, and (422,
 * audited) without "approve": true. The run happens inside the request: the handler thread
 * waits for AWS, which is acceptable for an action an administrator takes by hand, and a client
 * that gives up does not stop it (the run continues and is recorded step by step).
 */
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
    ch_resp_run_opts ro = {.db = db,
                           .plan_id = id,
                           .cfg = api->respond,
                           .actor = actor,
                           .source = peer,
                           .approved = approve,
                           .steps = steps != NULL ? (const char *const *)steps : NULL,
                           .nsteps = nsteps};
    ch_resp_run_result res;
    rc = ch_resp_run(&ro, &res, &err);
    if (rc == CH_RESP_REFUSED) {
        /* Not a permission problem of the caller (an admin): the server is not set up for it,
         * or the request did not approve. */
        ch_http_error(rs, api->respond == NULL || !api->respond->execute ? 409 : 422, err.msg);
        goto cleanup;
    }
    if (rc < 0 && rc != CH_EIO) {
        ch__api_error(rs, rc, &err);
        goto cleanup;
    }
    rs->status = rc < 0 ? 502 : 200;
    ch_buf_printf(&rs->body,
                  "{\"id\":%lld,\"status\":\"%s\",\"done\":%zu,\"already\":%zu,\"skipped\":%zu,"
                  "\"failed\":%zu,\"error\":",
                  (long long)id, res.status, res.done, res.already, res.skipped, res.failed);
    if (rc < 0)
        ch_buf_add_json_str(&rs->body, err.msg, strlen(err.msg));
    else
        ch_buf_adds(&rs->body, "null");
    ch_buf_addc(&rs->body, '}');
cleanup:
    for (size_t i = 0; steps != NULL && i < nsteps; i++)
        ch_free(steps[i]);
    ch_free(steps);
}
