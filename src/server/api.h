/*
 * api.h - the REST API's handlers under /api/v1 (offenses and their triage, notes, closing
 * reasons, console sessions, users by risk, the audit log, the OpenAPI document), registered
 * in serve.c's route table. docs/API.md is the user's reference, docs/openapi.json the
 * machine-readable one.
 *
 * Handlers get the server's ch_serve as their user pointer and reach what they need through
 * the ch_api it holds (ch__serve_api): an offense store connection of their own (the
 * pipeline's stays the pipeline's), the accounts store, and the pipeline's lock and in-memory
 * offenses, so that a status an analyst sets is also the running pipeline's (otherwise its
 * next checkpoint would write the old one back).
 *
 * Reads come from the store, so they reflect the last checkpoint (at most the configured
 * checkpoint interval, and half a second once ingest is quiet, behind the journal).
 *
 * Ownership: serve.c creates and frees the ch_api; handlers borrow it.
 */
#ifndef CH_SERVER_API_H
#define CH_SERVER_API_H

#include <pthread.h>
#include <stdint.h>

#include "offense/offense.h"
#include "offense/store.h"
#include "server/accounts.h"
#include "server/http.h"

#define CH_API_LIST_MAX 1000 /* items per page at most */
#define CH_API_AUDIT_MAX 10000
#define CH_API_USER_HITS 50 /* recent rule hits in GET /users/{name} */
#define CH_API_SMALL_BODY 4096
#define CH_API_NOTE_BODY (4 * CH_OFFENSE_MAX_NOTE_LEN + 256) /* escapes can quadruple a text */

typedef struct ch_api {
    ch_store *store; /* one connection: every use holds store_mu */
    pthread_mutex_t store_mu;
    ch_accounts *accounts; /* shared with the HTTP layer: every use holds *accounts_mu */
    pthread_mutex_t *accounts_mu;
    /* The running pipeline: lock (true) / unlock (false), and its offenses while locked. */
    void (*pipeline_lock)(void *ud, bool lock);
    ch_offenses *(*pipeline_offenses)(void *ud);
    const struct ch_ruleset *(*pipeline_rules)(void *ud); /* while locked */
    /* Whether rule i of that ruleset is enabled, and turning one on or off (while locked). */
    bool (*pipeline_rule_enabled)(void *ud, uint32_t i);
    int (*pipeline_rule_set)(void *ud, const char *id, bool enabled, ch_error *err);
    /* The server's configuration (pack, context, GeoIP for rule tests; the intel feeds). */
    const struct ch_serve_config *cfg;
    /* Ask the pipeline to reload its pack, context and reference sets (asynchronous). */
    void (*reload)(void *ud);
    /* Tell the pipeline that values an ip or domain set just gained wait in the intel store's
     * retro_pending queue (queued with them): it hunts the stored events for them after the
     * reload (asynchronous). */
    void (*hunt)(void *ud);
    void *ud;
    /* Reference sets (intel/intel_store.h): its own connection, under intel_mu. */
    struct ch_intel_store *intel;
    pthread_mutex_t intel_mu;
    /* The intel pull scheduler's status and "pull now" (serve.h ch_serve_set_intel), under
     * intel_mu; NULL while nothing schedules pulls. */
    const struct ch_serve_intel_hook *intel_hook;
    /* Asynchronous searches of the event store (api_search.c). */
    struct ch_api_searches *searches;
    /* The serve configuration's respond: section (api_respond.c); borrowed. */
    const struct ch_resp_config *respond;
    /* Response plan runs the API started (api_respond.c). */
    struct ch_api_resp_runs *resp_runs;
} ch_api;

/* api_respond.c: response plans, and the runs the API started (each on a worker thread). */
typedef struct ch_api_resp_runs ch_api_resp_runs;
ch_api_resp_runs *ch_api_resp_runs_new(void);
void ch_api_resp_runs_free(ch_api_resp_runs *r); /* stops runs before their next call, joins */
void ch_api_response_plan_propose(void *ud, const ch_http_req *rq, ch_http_resp *rs);
void ch_api_response_plan_get(void *ud, const ch_http_req *rq, ch_http_resp *rs);
void ch_api_response_plan_run(void *ud, const ch_http_req *rq, ch_http_resp *rs);

/* serve.c: the ch_api of the server passed to handlers as ud. */
ch_api *ch__serve_api(void *ud);

void ch_api_offenses_list(void *ud, const ch_http_req *rq, ch_http_resp *rs);
void ch_api_offense_get(void *ud, const ch_http_req *rq, ch_http_resp *rs);
void ch_api_offense_update(void *ud, const ch_http_req *rq, ch_http_resp *rs);
void ch_api_notes_list(void *ud, const ch_http_req *rq, ch_http_resp *rs);
void ch_api_note_add(void *ud, const ch_http_req *rq, ch_http_resp *rs);
void ch_api_closing_reasons(void *ud, const ch_http_req *rq, ch_http_resp *rs);
void ch_api_session_login(void *ud, const ch_http_req *rq, ch_http_resp *rs);
void ch_api_session_get(void *ud, const ch_http_req *rq, ch_http_resp *rs);
void ch_api_session_logout(void *ud, const ch_http_req *rq, ch_http_resp *rs);
void ch_api_session_password(void *ud, const ch_http_req *rq, ch_http_resp *rs);
void ch_api_users_list(void *ud, const ch_http_req *rq, ch_http_resp *rs);
void ch_api_user_get(void *ud, const ch_http_req *rq, ch_http_resp *rs);
void ch_api_audit(void *ud, const ch_http_req *rq, ch_http_resp *rs);
void ch_api_openapi(void *ud, const ch_http_req *rq, ch_http_resp *rs);
/* api_rules.c */
void ch_api_rules_list(void *ud, const ch_http_req *rq, ch_http_resp *rs);
void ch_api_rule_get(void *ud, const ch_http_req *rq, ch_http_resp *rs);
void ch_api_rule_update(void *ud, const ch_http_req *rq, ch_http_resp *rs);
void ch_api_rules_test(void *ud, const ch_http_req *rq, ch_http_resp *rs);
/* api_intel.c */
void ch_api_intel_feeds(void *ud, const ch_http_req *rq, ch_http_resp *rs);
void ch_api_intel_pull(void *ud, const ch_http_req *rq, ch_http_resp *rs);
/* api_refsets.c */
void ch_api_refsets_list(void *ud, const ch_http_req *rq, ch_http_resp *rs);
void ch_api_refset_create(void *ud, const ch_http_req *rq, ch_http_resp *rs);
void ch_api_refset_get(void *ud, const ch_http_req *rq, ch_http_resp *rs);
void ch_api_refset_delete(void *ud, const ch_http_req *rq, ch_http_resp *rs);
void ch_api_refset_add(void *ud, const ch_http_req *rq, ch_http_resp *rs);
void ch_api_refset_remove(void *ud, const ch_http_req *rq, ch_http_resp *rs);

/* api_search.c: an offense's events, and asynchronous searches of the event store. */
typedef struct ch_api_searches ch_api_searches;
ch_api_searches *ch_api_searches_new(void);
void ch_api_searches_free(ch_api_searches *r); /* cancels and joins running searches */
void ch_api_offense_events(void *ud, const ch_http_req *rq, ch_http_resp *rs);
void ch_api_search_start(void *ud, const ch_http_req *rq, ch_http_resp *rs);
void ch_api_search_get(void *ud, const ch_http_req *rq, ch_http_resp *rs);
void ch_api_search_results(void *ud, const ch_http_req *rq, ch_http_resp *rs);
void ch_api_search_delete(void *ud, const ch_http_req *rq, ch_http_resp *rs);

/* api_investigate.c: an offense's graph, a user's timeline. */
void ch_api_offense_graph(void *ud, const ch_http_req *rq, ch_http_resp *rs);
void ch_api_user_timeline(void *ud, const ch_http_req *rq, ch_http_resp *rs);

/* Shared by the handler files: an error answer from a library code (404, 422, 400, 413, 500),
 * and an audit entry on the API's store connection (under store_mu). */
void ch__api_error(ch_http_resp *rs, int rc, const ch_error *err);
int ch__api_audit(ch_api *api, const ch_http_req *rq, const char *action, const char *object,
                  const char *before, const char *after, ch_error *err);
int64_t ch__api_now(void);

#define CH_API_REFSET_BODY (64u << 20) /* bulk loads */
#define CH_API_REFSET_SHOW 1000        /* elements listed by GET /reference_sets/{name} */

/* The OpenAPI document embedded at build time from docs/openapi.json (NUL-terminated). */
extern const char ch_openapi_json[];
extern const unsigned long ch_openapi_json_len;

#endif
