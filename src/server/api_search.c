/*
 * api_search.c - the event store over the REST API: an offense's contributing events
 * (GET /offenses/{id}/events) and asynchronous searches in the rules' expression language, as
 * Ariel searches are: POST /searches starts one on a thread of its own and answers its id at
 * once; GET /searches/{id} tells its state and progress; GET /searches/{id}/results pages
 * through the kept matches (and the count-by groups); DELETE cancels and forgets it.
 *
 * Every search opens its own read-only view of the event store (sealed segments are
 * immutable files, so readers never wait for the pipeline's writer) and is bounded in memory,
 * in time (CH_API_SEARCH_MS) and in number (CH_API_SEARCHES at once, the oldest finished one
 * forgotten first): a client cannot make the server keep unbounded state.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/json.h"
#include "core/mem.h"
#include "output/output.h"
#include "server/api.h"
#include "server/api_parse.h"
#include "server/http.h"
#include "store/evstore.h"
#include "store/offense_events.h"
#include "store/search.h"

#define CH_API_SEARCHES 16
#define CH_API_SEARCH_MS 60000
#define CH_API_SEARCH_MEMORY ((size_t)128 << 20)
#define CH_API_SEARCH_BODY 8192
#define CH_API_SEARCH_PAGE 1000

typedef struct api_search {
    uint64_t id;
    int64_t created_ms;
    ch_search *s;
    ch_evstore *es;
    pthread_t th;
    bool started, finished;
    int rc;
    char error[512];
} api_search;

struct ch_api_searches {
    pthread_mutex_t mu;
    uint64_t next_id;
    api_search *slot[CH_API_SEARCHES];
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

ch_api_searches *ch_api_searches_new(void)
{
    ch_api_searches *r = ch_calloc(1, sizeof *r);
    if (r != NULL) {
        pthread_mutex_init(&r->mu, NULL);
        r->next_id = 1;
    }
    return r;
}

static void search_free(api_search *x)
{
    if (x == NULL)
        return;
    if (x->started) {
        ch_search_cancel(x->s);
        pthread_join(x->th, NULL);
    }
    ch_search_free(x->s);
    ch_evstore_close(x->es);
    ch_free(x);
}

void ch_api_searches_free(ch_api_searches *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < CH_API_SEARCHES; i++)
        search_free(r->slot[i]);
    pthread_mutex_destroy(&r->mu);
    ch_free(r);
}

static void *search_main(void *arg)
{
    api_search *x = arg;
    ch_error err = {0};
    int rc = ch_search_run(x->s, x->es, &err);
    /* The handle's own state says done/cancelled/timeout; a failure keeps its message. */
    if (rc < 0)
        snprintf(x->error, sizeof x->error, "%s", err.msg);
    __atomic_store_n(&x->rc, rc, __ATOMIC_RELEASE);
    __atomic_store_n(&x->finished, true, __ATOMIC_RELEASE);
    return NULL;
}

/* ---- GET /offenses/{id}/events ---- */

static int add_events(ch_search *s, size_t from, size_t limit, ch_buf *b, ch_error *err)
{
    size_t n = ch_search_nresults(s);
    int rc = 0;
    for (size_t i = from; i < n && i - from < limit && rc == 0; i++) {
        const ch_event *ev;
        if ((rc = ch_search_result(s, i, &ev, NULL, err)) < 0)
            break;
        if (i > from)
            rc = ch_buf_addc(b, ',');
        if (rc == 0 && ch_event_to_json(ev, b) < 0)
            rc = ch_error_set(err, CH_ENOMEM, "out of memory");
    }
    return rc;
}

void ch_api_offense_events(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    ch_api *api = ch__serve_api(ud);
    uint64_t id, limit = 100;
    const char *lim = ch_http_arg(rq, "limit");
    if (!ch_api_parse_uint(ch_http_param(rq, 0), INT64_MAX, &id)) {
        ch_http_error(rs, 404, "no such offense");
        return;
    }
    if (lim != NULL && (!ch_api_parse_uint(lim, CH_API_SEARCH_PAGE, &limit) || limit == 0)) {
        ch_http_error(rs, 400, "limit must be a number from 1 to 1000");
        return;
    }
    ch_error err = {0};
    ch_offenses *m = ch_offenses_new();
    ch_evstore *es = NULL;
    ch_search *s = NULL;
    if (m == NULL) {
        ch_http_error(rs, 500, "out of memory");
        goto done;
    }
    pthread_mutex_lock(&api->store_mu);
    int rc = ch_store_load_one(api->store, (int64_t)id, m, &err);
    if (rc >= 0)
        rc = ch_evstore_open_local(api->store, false, NULL, &es, &err);
    pthread_mutex_unlock(&api->store_mu);
    const ch_offense *o = rc >= 0 ? ch_offenses_at(m, 0) : NULL;
    if (rc >= 0)
        rc = ch_search_offense_events(o, limit, CH_API_SEARCH_MEMORY, CH_API_SEARCH_MS, &s, &err);
    if (rc >= 0 && s != NULL)
        rc = ch_search_run(s, es, &err);
    if (rc >= 0) {
        rc = ch_buf_printf(&rs->body, "{\"offense\":%" PRIu64 ",\"event_ids\":%zu,\"events\":[", id,
                           o->nevent_ids);
        if (rc >= 0 && s != NULL)
            rc = add_events(s, 0, limit, &rs->body, &err);
        if (rc >= 0)
            rc = ch_buf_adds(&rs->body, "]}");
    }
    if (rc < 0) {
        ch_buf_clear(&rs->body);
        ch__api_error(rs, rc, &err);
    }
done:
    ch_search_free(s);
    ch_evstore_close(es);
    ch_offenses_free(m);
}

/* ---- asynchronous searches ---- */

/* The request body: {"expression", "from", "to", "limit", "count_by", "top", "sort"}. */
typedef struct search_req {
    char expr[CH_API_SEARCH_BODY];
    char count_by[256], top[128];
    int64_t from_ms, to_ms;
    uint64_t limit;
    bool asc;
} search_req;

static int req_str(ch_json_val v, const char *name, char *out, size_t cap, ch_error *err)
{
    const char *p;
    size_t n;
    if (!ch_json_get_str(v, &p, &n))
        return ch_error_set(err, CH_EPARSE, "%s must be a string", name);
    if (n >= cap)
        return ch_error_set(err, CH_EPARSE, "%s is longer than %zu bytes", name, cap - 1);
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

static int parse_search_req(const char *body, size_t n, search_req *q, ch_error *err)
{
    memset(q, 0, sizeof *q);
    q->limit = CH_API_SEARCH_PAGE;
    ch_json_parser *jp = ch_json_parser_new(CH_API_SEARCH_BODY * 2, 8);
    if (jp == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    ch_json_val root;
    int rc = ch_json_parse(jp, body, n, n, &root, err);
    if (rc < 0) {
        ch_json_parser_free(jp);
        return rc == CH_ELIMIT ? ch_error_set(err, CH_EPARSE, "the body is too large") : rc;
    }
    if (ch_json_typeof(root) != CH_JSON_OBJECT) {
        ch_json_parser_free(jp);
        return ch_error_set(err, CH_EPARSE, "the body must be a JSON object");
    }
    bool have_expr = false;
    char t[64];
    ch_json_iter it;
    ch_json_obj_iter(root, &it);
    const char *k;
    size_t kn;
    ch_json_val v;
    while (rc == 0 && ch_json_obj_next(&it, &k, &kn, &v)) {
        if (kn == 10 && memcmp(k, "expression", 10) == 0) {
            rc = req_str(v, "expression", q->expr, sizeof q->expr, err);
            have_expr = rc == 0;
        } else if ((kn == 4 && memcmp(k, "from", 4) == 0) || (kn == 2 && memcmp(k, "to", 2) == 0)) {
            bool from = kn == 4;
            if ((rc = req_str(v, from ? "from" : "to", t, sizeof t, err)) == 0)
                rc = ch_search_parse_time(t, now_ms(), from ? &q->from_ms : &q->to_ms, err);
        } else if (kn == 5 && memcmp(k, "limit", 5) == 0) {
            uint64_t u;
            if (!ch_json_get_u64(v, &u) || u == 0 || u > CH_API_SEARCH_PAGE * 10)
                rc = ch_error_set(err, CH_EPARSE, "limit must be a number from 1 to %d",
                                  CH_API_SEARCH_PAGE * 10);
            else
                q->limit = u;
        } else if (kn == 8 && memcmp(k, "count_by", 8) == 0) {
            rc = req_str(v, "count_by", q->count_by, sizeof q->count_by, err);
        } else if (kn == 3 && memcmp(k, "top", 3) == 0) {
            rc = req_str(v, "top", q->top, sizeof q->top, err);
        } else if (kn == 4 && memcmp(k, "sort", 4) == 0) {
            if ((rc = req_str(v, "sort", t, sizeof t, err)) == 0) {
                if (strcmp(t, "asc") != 0 && strcmp(t, "desc") != 0)
                    rc = ch_error_set(err, CH_EPARSE, "sort must be asc or desc");
                q->asc = strcmp(t, "asc") == 0;
            }
        } else {
            rc = ch_error_set(err, CH_EPARSE,
                              "unknown member \"%.*s\" (expression, from, to, limit, count_by, "
                              "top, sort)",
                              (int)(kn > 64 ? 64 : kn), k);
        }
    }
    ch_json_parser_free(jp);
    if (rc == 0 && !have_expr)
        rc = ch_error_set(err, CH_EPARSE, "expression is required");
    return rc;
}

static void status_json(ch_buf *b, const api_search *x)
{
    ch_search_progress p;
    ch_search_progress_get(x->s, &p);
    bool fin = __atomic_load_n(&x->finished, __ATOMIC_ACQUIRE);
    const char *st = !fin ? "running"
                     : __atomic_load_n(&x->rc, __ATOMIC_ACQUIRE) < 0
                         ? "failed"
                         : (p.state == CH_SEARCH_DONE ? "done" : ch_search_state_name(p.state));
    ch_buf_printf(b,
                  "{\"id\":%" PRIu64 ",\"status\":\"%s\",\"segments_total\":%" PRIu64
                  ",\"segments_done\":%" PRIu64 ",\"segments_skipped\":%" PRIu64
                  ",\"segments_damaged\":%" PRIu64 ",\"scanned\":%" PRIu64 ",\"matched\":%" PRIu64
                  ",\"kept\":%zu,\"elapsed_ms\":%.1f",
                  x->id, st, p.segments_total, p.segments_done, p.segments_skipped,
                  p.segments_damaged, p.events_scanned, p.events_matched,
                  fin ? ch_search_nresults(x->s) : (size_t)0, p.elapsed_ms);
    if (fin && x->error[0]) {
        ch_buf_adds(b, ",\"error\":");
        ch_buf_add_json_str(b, x->error, strlen(x->error));
    }
    ch_buf_addc(b, '}');
}

void ch_api_search_start(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    ch_api *api = ch__serve_api(ud);
    size_t n;
    const char *body = ch_http_body(rq, &n);
    search_req *q = ch_malloc(sizeof *q);
    api_search *x = ch_calloc(1, sizeof *x);
    ch_error err = {0};
    int rc = q == NULL || x == NULL ? ch_error_set(&err, CH_ENOMEM, "out of memory")
                                    : parse_search_req(body, n, q, &err);
    if (rc == 0) {
        ch_search_opts so = {.expr = q->expr,
                             .from_ms = q->from_ms,
                             .to_ms = q->to_ms,
                             .asc = q->asc,
                             .limit = q->limit,
                             .count_by = q->count_by[0] ? q->count_by : NULL,
                             .top = q->top[0] ? q->top : NULL,
                             .max_memory = CH_API_SEARCH_MEMORY,
                             .max_ms = CH_API_SEARCH_MS};
        rc = ch_search_new(&so, &x->s, &err);
    }
    if (rc == 0) {
        pthread_mutex_lock(&api->store_mu);
        rc = ch_evstore_open_local(api->store, false, NULL, &x->es, &err);
        pthread_mutex_unlock(&api->store_mu);
    }
    ch_free(q);
    if (rc < 0) {
        ch__api_error(rs, rc == CH_ELIMIT ? CH_EPARSE : rc, &err);
        search_free(x);
        return;
    }
    ch_api_searches *r = api->searches;
    pthread_mutex_lock(&r->mu);
    /* A free slot, or the oldest finished search's; all running: refuse. */
    size_t at = CH_API_SEARCHES;
    for (size_t i = 0; i < CH_API_SEARCHES && at == CH_API_SEARCHES; i++)
        if (r->slot[i] == NULL)
            at = i;
    for (size_t i = 0; i < CH_API_SEARCHES && at == CH_API_SEARCHES; i++) {
        api_search *y = r->slot[i];
        if (__atomic_load_n(&y->finished, __ATOMIC_ACQUIRE) &&
            (at == CH_API_SEARCHES || y->created_ms < r->slot[at]->created_ms))
            at = i;
    }
    if (at == CH_API_SEARCHES) {
        pthread_mutex_unlock(&r->mu);
        search_free(x);
        rs->retry_after_s = 5;
        ch_http_error(rs, 429, "every search slot is running; retry later");
        return;
    }
    api_search *old = r->slot[at];
    x->id = r->next_id++;
    x->created_ms = now_ms();
    r->slot[at] = x;
    x->started = pthread_create(&x->th, NULL, search_main, x) == 0;
    if (!x->started) {
        r->slot[at] = NULL;
        pthread_mutex_unlock(&r->mu);
        search_free(old);
        search_free(x);
        ch_http_error(rs, 503, "cannot start a search thread");
        return;
    }
    status_json(&rs->body, x);
    pthread_mutex_unlock(&r->mu);
    search_free(old);
    rs->status = 201;
    snprintf(rs->location, sizeof rs->location, "/api/v1/searches/%" PRIu64, x->id);
}

/* The search named by the path, with the registry locked (the caller unlocks), or NULL after
 * answering 404. */
static api_search *find(ch_api *api, const ch_http_req *rq, ch_http_resp *rs, size_t *slot)
{
    uint64_t id;
    ch_api_searches *r = api->searches;
    pthread_mutex_lock(&r->mu);
    if (ch_api_parse_uint(ch_http_param(rq, 0), UINT64_MAX, &id))
        for (size_t i = 0; i < CH_API_SEARCHES; i++)
            if (r->slot[i] != NULL && r->slot[i]->id == id) {
                if (slot != NULL)
                    *slot = i;
                return r->slot[i];
            }
    pthread_mutex_unlock(&r->mu);
    ch_http_error(rs, 404,
                  "no such search (finished searches are forgotten when newer "
                  "ones need their slot)");
    return NULL;
}

void ch_api_search_get(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    ch_api *api = ch__serve_api(ud);
    api_search *x = find(api, rq, rs, NULL);
    if (x == NULL)
        return;
    status_json(&rs->body, x);
    pthread_mutex_unlock(&api->searches->mu);
}

void ch_api_search_results(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    ch_api *api = ch__serve_api(ud);
    uint64_t offset = 0, limit = 100;
    const char *o = ch_http_arg(rq, "offset"), *l = ch_http_arg(rq, "limit");
    if ((o != NULL && !ch_api_parse_uint(o, UINT32_MAX, &offset)) ||
        (l != NULL && (!ch_api_parse_uint(l, CH_API_SEARCH_PAGE, &limit) || limit == 0))) {
        ch_http_error(rs, 400, "offset must be a number, limit from 1 to 1000");
        return;
    }
    api_search *x = find(api, rq, rs, NULL);
    if (x == NULL)
        return;
    if (!__atomic_load_n(&x->finished, __ATOMIC_ACQUIRE)) {
        pthread_mutex_unlock(&api->searches->mu);
        ch_http_error(rs, 409, "the search is still running");
        return;
    }
    ch_error err = {0};
    size_t total = ch_search_nresults(x->s);
    int rc = ch_buf_printf(&rs->body,
                           "{\"id\":%" PRIu64 ",\"total\":%zu,\"offset\":%" PRIu64 ",\"events\":[",
                           x->id, total, offset);
    if (rc >= 0 && offset < total)
        rc = add_events(x->s, (size_t)offset, (size_t)limit, &rs->body, &err);
    if (rc >= 0)
        rc = ch_buf_adds(&rs->body, "]");
    size_t ng = ch_search_ngroups(x->s);
    if (rc >= 0 && ng > 0) {
        const char *const *names;
        size_t nf = ch_search_group_fields(x->s, &names);
        rc = ch_buf_adds(&rs->body, ",\"counts\":[");
        for (size_t i = 0; i < ng && i < CH_API_SEARCH_PAGE && rc >= 0; i++) {
            const char *key;
            uint64_t cnt;
            ch_search_group(x->s, i, &key, &cnt);
            rc = ch_buf_adds(&rs->body, i ? ",{" : "{");
            /* key holds the group's values joined by the unit separator, in field order */
            const char *p = key;
            for (size_t f = 0; f < nf && rc >= 0; f++) {
                const char *e = strchr(p, '\x1f');
                size_t len = e != NULL ? (size_t)(e - p) : strlen(p);
                rc = ch_buf_add_json_str(&rs->body, names[f], strlen(names[f]));
                rc |= ch_buf_addc(&rs->body, ':');
                rc |= ch_buf_add_json_str(&rs->body, p, len);
                rc |= ch_buf_addc(&rs->body, ',');
                p = e != NULL ? e + 1 : p + len;
            }
            if (rc >= 0)
                rc = ch_buf_printf(&rs->body, "\"count\":%" PRIu64 "}", cnt);
        }
        if (rc >= 0)
            rc = ch_buf_addc(&rs->body, ']');
    }
    if (rc >= 0)
        rc = ch_buf_addc(&rs->body, '}');
    pthread_mutex_unlock(&api->searches->mu);
    if (rc < 0) {
        ch_buf_clear(&rs->body);
        ch__api_error(rs, rc, &err);
    }
}

void ch_api_search_delete(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    ch_api *api = ch__serve_api(ud);
    size_t at;
    api_search *x = find(api, rq, rs, &at);
    if (x == NULL)
        return;
    api->searches->slot[at] = NULL;
    pthread_mutex_unlock(&api->searches->mu);
    search_free(x); /* cancels a running one and waits for its thread */
    rs->status = 204;
}
