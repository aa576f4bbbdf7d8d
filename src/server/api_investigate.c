/*
 * api_investigate.c - the investigation views over the REST API: an offense's graph
 * (GET /offenses/{id}/graph, cytoscape.js `elements`, ?expand=GROUP to draw a group's members)
 * and a user's timeline (GET /users/{name}/timeline). Both are the library calls the CLI's
 * `offenses graph` and `users show --timeline` print, read on the API's own store connection.
 */
#include <string.h>

#include "investigate/graph.h"
#include "server/api.h"
#include "server/api_parse.h"
#include "uba/timeline.h"

void ch_api_offense_graph(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    ch_api *api = ch__serve_api(ud);
    uint64_t id;
    if (!ch_api_parse_uint(ch_http_param(rq, 0), INT64_MAX, &id) || id == 0) {
        ch_http_error(rs, 404, "no such offense (ids are positive integers)");
        return;
    }
    const char *expand = ch_http_arg(rq, "expand");
    ch_graph_opts o = {.expand = expand != NULL && expand[0] ? expand : NULL};
    ch_error err = {0};
    pthread_mutex_lock(&api->store_mu);
    int rc = ch_offense_graph_json(ch_store_sql(api->store), (int64_t)id, &o, &rs->body, &err);
    pthread_mutex_unlock(&api->store_mu);
    if (rc < 0) {
        ch_buf_clear(&rs->body);
        ch__api_error(rs, rc, &err);
    }
}

void ch_api_user_timeline(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    ch_api *api = ch__serve_api(ud);
    const char *name = ch_http_param(rq, 0);
    ch_error err = {0};
    pthread_mutex_lock(&api->store_mu);
    int rc =
        ch_user_timeline_json(api->store, name, strlen(name), CH_USER_TIMELINE, &rs->body, &err);
    pthread_mutex_unlock(&api->store_mu);
    if (rc < 0) {
        ch_buf_clear(&rs->body);
        ch__api_error(rs, rc, &err);
    }
}
