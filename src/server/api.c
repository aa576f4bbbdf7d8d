/*
 * api.c - handlers of the REST API (api.h has the model; docs/API.md the reference).
 *
 * GET /offenses loads the store's offenses (every status) and their triage rows, keeps those
 * the filter accepts, sorts, pages and projects. The filter is the rules' expression language
 * (rules/expr.h) evaluated over a small JSON document per offense (magnitude, status, user,
 * rules, start_time, ...), so analysts write the same language in rules, searches and here.
 * Cost: O(offenses) per request plus the sort; the store is read under its own connection's
 * lock, never the pipeline's, so listing does not stall ingest.
 *
 * POST /offenses/{id} is optimistic concurrency: the client sends the ETag it read in If-Match
 * (428 without it), the store compares it inside the update's transaction (412 when it moved
 * on) and the status change is applied to the pipeline's in-memory offense under the
 * pipeline's lock, held across the store write so a checkpoint cannot slip between them.
 */
#include "server/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/json.h"
#include "core/mem.h"
#include "core/timeparse.h"
#include "offense/triage.h"
#include "rules/expr.h"
#include "server/api_parse.h"
#include "server/audit.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void actor_of(const ch_http_req *rq, ch_actor *a)
{
    a->name = ch_http_principal(rq)->name;
    a->source = ch_http_peer(rq);
}

int64_t ch__api_now(void) { return now_ms(); }

int ch__api_audit(ch_api *api, const ch_http_req *rq, const char *action, const char *object,
                  const char *before, const char *after, ch_error *err)
{
    ch_audit_entry e = {
        0, now_ms(), ch_http_principal(rq)->name, ch_http_peer(rq), action, object, before, after};
    pthread_mutex_lock(&api->store_mu);
    ch_sql *q = ch_store_sql(api->store);
    int rc = ch_audit_schema_db(q->db, q->path, err);
    if (rc >= 0)
        rc = ch_audit_append_db(q->db, q->path, &e, err);
    pthread_mutex_unlock(&api->store_mu);
    return rc;
}

void ch__api_error(ch_http_resp *rs, int rc, const ch_error *err)
{
    unsigned st = rc == CH_ENOTFOUND ? 404
                  : rc == CH_EUSAGE  ? 422
                  : rc == CH_EPARSE  ? 400
                  : rc == CH_ELIMIT  ? 413
                                     : 500;
    ch_http_error(rs, st, err->msg[0] ? err->msg : "internal error");
}

static void err_from(ch_http_resp *rs, int rc, const ch_error *err) { ch__api_error(rs, rc, err); }

static bool offense_id(const ch_http_req *rq, ch_http_resp *rs, int64_t *id)
{
    uint64_t v;
    if (!ch_api_parse_uint(ch_http_param(rq, 0), INT64_MAX, &v) || v == 0) {
        ch_http_error(rs, 404, "no such offense (ids are positive integers)");
        return false;
    }
    *id = (int64_t)v;
    return true;
}

/* ---- offenses ------------------------------------------------------------------------------- */

enum {
    F_ID,
    F_INDEX,
    F_MAGNITUDE,
    F_SEVERITY,
    F_CREDIBILITY,
    F_RELEVANCE,
    F_RULES,
    F_EVENT_COUNT,
    F_FIRST_SEEN,
    F_LAST_SEEN,
    F_STATUS,
    F_ASSIGNED_TO,
    F_CLOSING_REASON,
    F_FOLLOW_UP,
    F_PROTECTED,
    F_VERSION,
    F__COUNT
};
/* The names of the offense resource's members, in the order it writes them. */
static const char *const offense_fields[F__COUNT] = {
    "id",        "index",       "magnitude",      "severity",   "credibility",
    "relevance", "rules",       "event_count",    "first_seen", "last_seen",
    "status",    "assigned_to", "closing_reason", "follow_up",  "protected",
    "version"};

typedef struct item {
    ch_offense *o;
    ch_offense_triage t;
} item;

static const ch_offense_triage *triage_or_default(const ch_offense_triage *v, size_t n,
                                                  const ch_offense *o, ch_offense_triage *def)
{
    const ch_offense_triage *t = ch_triage_find(v, n, o->id);
    if (t != NULL)
        return t;
    memset(def, 0, sizeof *def);
    def->offense_id = o->id;
    def->status = o->status;
    return def;
}

static int add_str(ch_buf *b, const char *s) { return ch_buf_add_json_str(b, s, strlen(s)); }

/* The offense resource: the store's offense JSON with the triage members appended. */
static int offense_resource(ch_buf *b, const ch_offense *o, const ch_offense_triage *t,
                            unsigned flags)
{
    size_t start = b->len;
    int rc = ch_offense_json(b, o, flags);
    if (rc < 0)
        return rc;
    b->len--; /* the closing brace */
    (void)start;
    if ((rc = ch_buf_adds(b, ",\"assigned_to\":")) < 0 ||
        (rc = t->assigned_to[0] ? add_str(b, t->assigned_to) : ch_buf_adds(b, "null")) < 0 ||
        (rc = ch_buf_adds(b, ",\"closing_reason\":")) < 0 ||
        (rc = t->closing_reason[0] ? add_str(b, t->closing_reason) : ch_buf_adds(b, "null")) < 0)
        return rc;
    return ch_buf_printf(b, ",\"follow_up\":%s,\"protected\":%s,\"version\":%lld}",
                         t->follow_up ? "true" : "false", t->protected_ ? "true" : "false",
                         (long long)t->version);
}

/* The document the filter sees: flat, typed, with the names docs/API.md lists. */
static int filter_doc(ch_buf *b, const ch_offense *o, const ch_offense_triage *t)
{
    int rc;
    ch_buf_clear(b);
    if ((rc = ch_buf_printf(b,
                            "{\"id\":%lld,\"magnitude\":%d,\"severity\":%d,\"credibility\":%d,"
                            "\"relevance\":%d,\"event_count\":%llu,\"start_time\":%lld,"
                            "\"last_time\":%lld,\"status\":\"%s\",\"follow_up\":%s,"
                            "\"protected\":%s,\"index_field\":",
                            (long long)o->id, o->magnitude, o->severity, o->credibility,
                            o->relevance, (unsigned long long)o->event_count,
                            (long long)o->first_ms, (long long)o->last_ms,
                            ch_offense_status_name(t->status), t->follow_up ? "true" : "false",
                            t->protected_ ? "true" : "false")) < 0 ||
        (rc = add_str(b, o->index_field)) < 0 || (rc = ch_buf_adds(b, ",\"index_value\":")) < 0 ||
        (rc = ch_buf_add_json_str(b, o->index_value, o->index_value_len)) < 0)
        return rc;
    if (strcmp(o->index_field, "user.name") == 0 &&
        ((rc = ch_buf_adds(b, ",\"user\":")) < 0 ||
         (rc = ch_buf_add_json_str(b, o->index_value, o->index_value_len)) < 0))
        return rc;
    if (t->assigned_to[0] &&
        ((rc = ch_buf_adds(b, ",\"assigned_to\":")) < 0 || (rc = add_str(b, t->assigned_to)) < 0))
        return rc;
    if (t->closing_reason[0] && ((rc = ch_buf_adds(b, ",\"closing_reason\":")) < 0 ||
                                 (rc = add_str(b, t->closing_reason)) < 0))
        return rc;
    if ((rc = ch_buf_adds(b, ",\"rules\":[")) < 0)
        return rc;
    for (size_t i = 0; i < o->nrules; i++)
        if ((i > 0 && (rc = ch_buf_addc(b, ',')) < 0) || (rc = add_str(b, o->rules[i].id)) < 0)
            return rc;
    return ch_buf_adds(b, "]}");
}

static const ch_api_sort_key *g_keys; /* qsort has no user pointer; set under sort_mu */
static size_t g_nkeys;
static pthread_mutex_t sort_mu = PTHREAD_MUTEX_INITIALIZER;

/* open < hidden < closed: the store keeps the further one (offense/store.h). */
static int status_rank(ch_offense_status st)
{
    return st == CH_OFFENSE_CLOSED ? 2 : st == CH_OFFENSE_HIDDEN ? 1 : 0;
}

static int cmp_i64(int64_t a, int64_t b) { return a < b ? -1 : a > b; }

static int cmp_items(const void *pa, const void *pb)
{
    const item *a = pa, *b = pb;
    for (size_t k = 0; k < g_nkeys; k++) {
        int c = 0;
        switch (g_keys[k].field) {
        case F_ID:
            c = cmp_i64(a->o->id, b->o->id);
            break;
        case F_MAGNITUDE:
            c = cmp_i64(a->o->magnitude, b->o->magnitude);
            break;
        case F_SEVERITY:
            c = cmp_i64(a->o->severity, b->o->severity);
            break;
        case F_CREDIBILITY:
            c = cmp_i64(a->o->credibility, b->o->credibility);
            break;
        case F_RELEVANCE:
            c = cmp_i64(a->o->relevance, b->o->relevance);
            break;
        case F_EVENT_COUNT:
            c = cmp_i64((int64_t)a->o->event_count, (int64_t)b->o->event_count);
            break;
        case F_FIRST_SEEN:
            c = cmp_i64(a->o->first_ms, b->o->first_ms);
            break;
        case F_LAST_SEEN:
            c = cmp_i64(a->o->last_ms, b->o->last_ms);
            break;
        case F_STATUS:
            c = strcmp(ch_offense_status_name(a->t.status), ch_offense_status_name(b->t.status));
            break;
        case F_ASSIGNED_TO:
            c = strcmp(a->t.assigned_to, b->t.assigned_to);
            break;
        case F_VERSION:
            c = cmp_i64(a->t.version, b->t.version);
            break;
        default:
            break;
        }
        if (c != 0)
            return g_keys[k].desc ? -c : c;
    }
    return cmp_i64(a->o->id, b->o->id);
}

/* Paging from Range (items=F-L) or limit/offset: *first and *count. false after answering. */
static bool paging(const ch_http_req *rq, ch_http_resp *rs, size_t *first, size_t *count,
                   bool *ranged)
{
    const char *range = ch_http_header(rq, "Range");
    const char *lim = ch_http_arg(rq, "limit"), *off = ch_http_arg(rq, "offset");
    *first = 0;
    *count = CH_API_LIST_MAX;
    *ranged = false;
    if (range != NULL) {
        uint64_t f, l;
        if (lim != NULL || off != NULL) {
            ch_http_error(rs, 400, "give either a Range header or limit/offset, not both");
            return false;
        }
        if (ch_api_parse_range(range, &f, &l) < 0) {
            ch_http_error(rs, 416, "Range must be items=FIRST-LAST with FIRST <= LAST");
            return false;
        }
        if (l - f + 1 > CH_API_LIST_MAX) {
            ch_http_error(rs, 416, "a Range spans at most 1000 items");
            return false;
        }
        *first = (size_t)f;
        *count = (size_t)(l - f + 1);
        *ranged = true;
        return true;
    }
    uint64_t v;
    if (lim != NULL) {
        if (!ch_api_parse_uint(lim, CH_API_LIST_MAX, &v) || v == 0) {
            ch_http_error(rs, 400, "limit must be a number from 1 to 1000");
            return false;
        }
        *count = (size_t)v;
    }
    if (off != NULL) {
        if (!ch_api_parse_uint(off, UINT32_MAX, &v)) {
            ch_http_error(rs, 400, "offset must be a non-negative number");
            return false;
        }
        *first = (size_t)v;
    }
    return true;
}

static void content_range(ch_http_resp *rs, size_t first, size_t n, size_t total)
{
    if (n == 0)
        snprintf(rs->content_range, sizeof rs->content_range, "items */%zu", total);
    else
        snprintf(rs->content_range, sizeof rs->content_range, "items %zu-%zu/%zu", first,
                 first + n - 1, total);
}

/* Write the objects of the JSON array text arr keeping only the members in mask. */
static int project(ch_buf *out, const ch_buf *arr, uint64_t mask, ch_error *err)
{
    ch_json_parser *p = ch_json_parser_new(arr->len + 4096, 16);
    if (p == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    ch_json_val root, v, m;
    int rc = ch_json_parse(p, arr->data, arr->len, arr->len, &root, err);
    if (rc == 0) {
        ch_json_iter it;
        ch_json_arr_iter(root, &it);
        rc = ch_buf_addc(out, '[');
        bool first = true;
        while (rc >= 0 && ch_json_arr_next(&it, &v)) {
            rc = ch_buf_adds(out, first ? "{" : ",{");
            first = false;
            bool fm = true;
            for (size_t f = 0; rc >= 0 && f < F__COUNT; f++) {
                if (!(mask & (1ull << f)) ||
                    !ch_json_obj_get(v, offense_fields[f], strlen(offense_fields[f]), &m))
                    continue;
                if ((!fm && (rc = ch_buf_addc(out, ',')) < 0) ||
                    (rc = add_str(out, offense_fields[f])) < 0 || (rc = ch_buf_addc(out, ':')) < 0)
                    break;
                fm = false;
                rc = ch_json_write(m, out);
            }
            if (rc >= 0)
                rc = ch_buf_addc(out, '}');
        }
        if (rc >= 0)
            rc = ch_buf_addc(out, ']');
    }
    ch_json_parser_free(p);
    return rc < 0 ? rc : 0;
}

void ch_api_offenses_list(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    ch_api *api = ch__serve_api(ud);
    ch_error err = {0};
    ch_offenses *m = NULL;
    ch_offense_triage *tv = NULL;
    size_t tn = 0;
    ch_expr *filter = NULL;
    ch_expr_scratch *scr = NULL;
    ch_json_parser *jp = NULL;
    item *items = NULL;
    ch_buf doc, full;
    ch_buf_init(&doc, 1u << 20);
    ch_buf_init(&full, 256u << 20);
    ch_api_sort_key keys[CH_API_SORT_MAX];
    size_t nkeys = 0, first, count;
    uint64_t mask = ~0ull;
    bool ranged, locked = false;
    const char *fs = ch_http_arg(rq, "filter"), *ss = ch_http_arg(rq, "sort"),
               *fl = ch_http_arg(rq, "fields");
    if (!paging(rq, rs, &first, &count, &ranged))
        goto done;
    if (fs != NULL && ch_expr_compile(fs, NULL, &filter, &err) < 0) {
        ch_http_error_full(rs, 400, "bad_filter", err.msg, NULL);
        goto done;
    }
    if ((ss != NULL && ch_api_parse_sort(ss, offense_fields, F__COUNT, keys, &nkeys, &err) < 0) ||
        (fl != NULL && ch_api_parse_fields(fl, offense_fields, F__COUNT, &mask, &err) < 0)) {
        ch_http_error(rs, 400, err.msg);
        goto done;
    }
    for (size_t k = 0; k < nkeys; k++)
        if (keys[k].field == F_INDEX || keys[k].field == F_RULES ||
            keys[k].field == F_CLOSING_REASON || keys[k].field == F_FOLLOW_UP ||
            keys[k].field == F_PROTECTED) {
            ch_http_error(rs, 400, "sort: that field is not sortable");
            goto done;
        }
    if ((m = ch_offenses_new()) == NULL) {
        ch_http_error(rs, 500, "out of memory");
        goto done;
    }
    pthread_mutex_lock(&api->store_mu);
    int rc = ch_store_load(api->store, CH_OFFENSE_MASK_ALL, m, &err);
    if (rc >= 0)
        rc = ch_triage_list(api->store, &tv, &tn, &err);
    pthread_mutex_unlock(&api->store_mu);
    if (rc < 0) {
        err_from(rs, rc, &err);
        goto done;
    }
    /* The store holds the last checkpoint; the running pipeline's offenses are newer (a hit a
     * moment ago, a magnitude that grew). Each offense is taken from the pipeline when it has
     * it, with the further-along status of the two (an analyst's or the CLI's close is in the
     * store first); offenses the pipeline made since the checkpoint are added (their ids are
     * final unless another process wrote offenses to this database meanwhile). The pipeline's
     * offenses are read under its lock, so the rest of the request holds it: O(offenses), as
     * rendering them always cost. */
    api->pipeline_lock(api->ud, true);
    locked = true;
    ch_offenses *mem = api->pipeline_offenses(api->ud);
    size_t ns = ch_offenses_count(m), nm = mem ? ch_offenses_count(mem) : 0;
    if ((items = ch_calloc(ns + nm + 1, sizeof *items)) == NULL ||
        (filter != NULL && ((scr = ch_expr_scratch_new()) == NULL ||
                            (jp = ch_json_parser_new(1u << 20, 8)) == NULL))) {
        ch_http_error(rs, 500, "out of memory");
        goto done;
    }
    size_t kept = 0;
    for (size_t i = 0; i < ns + nm; i++) {
        ch_offense *o;
        ch_offense_status st;
        if (i < ns) {
            ch_offense *so = ch_offenses_at(m, i);
            ch_offense *mo = mem ? ch_offenses_find(mem, so->id) : NULL;
            o = mo ? mo : so;
            st = so->status;
            if (mo != NULL && status_rank(mo->status) > status_rank(st))
                st = mo->status;
        } else {
            o = ch_offenses_at(mem, i - ns);
            if (ch_offenses_find(m, o->id) != NULL)
                continue;
            st = o->status;
        }
        ch_offense_triage def;
        item it = {o, *triage_or_default(tv, tn, o, &def)};
        it.t.status = st;
        if (filter != NULL) {
            ch_json_val root;
            ch_error e2 = {0};
            if (filter_doc(&doc, o, &it.t) < 0 ||
                ch_json_parse(jp, doc.data, doc.len, doc.len, &root, &e2) < 0)
                continue;
            ch_event ev;
            ch_event_reset(&ev);
            ev.has_raw_doc = true;
            ev.raw_doc = root;
            ev.ts_ms = o->last_ms;
            if (strcmp(o->index_field, "user.name") == 0)
                ev.user_name = (ch_sv){o->index_value, (uint32_t)o->index_value_len};
            if (!ch_expr_eval(filter, &ev, scr))
                continue;
        }
        items[kept++] = it;
    }
    /* Default order: as the CLI lists them (magnitude, then last seen, then id). */
    static const ch_api_sort_key by_default[] = {{F_MAGNITUDE, true}, {F_LAST_SEEN, true}};
    if (kept > 1) {
        pthread_mutex_lock(&sort_mu);
        g_keys = nkeys > 0 ? keys : by_default;
        g_nkeys = nkeys > 0 ? nkeys : 2;
        qsort(items, kept, sizeof *items, cmp_items);
        pthread_mutex_unlock(&sort_mu);
    }
    if (ranged && first >= kept && kept > 0) {
        content_range(rs, 0, 0, kept);
        ch_http_error(rs, 416, "the Range starts past the last item");
        goto done;
    }
    size_t end = first < kept ? (kept - first < count ? kept : first + count) : first;
    rc = ch_buf_addc(&full, '[');
    for (size_t i = first; rc >= 0 && i < end; i++) {
        if (i > first)
            rc = ch_buf_addc(&full, ',');
        if (rc >= 0)
            rc = offense_resource(&full, items[i].o, &items[i].t, 0);
    }
    if (rc >= 0)
        rc = ch_buf_addc(&full, ']');
    if (rc < 0) {
        ch_http_error(rs, 500, "the answer is too large");
        goto done;
    }
    if (fl != NULL) {
        if (project(&rs->body, &full, mask, &err) < 0)
            ch_http_error(rs, 500, "the answer could not be written");
    } else {
        ch_buf_add(&rs->body, full.data, full.len);
    }
    content_range(rs, first, end > first ? end - first : 0, kept);
done:
    if (locked)
        api->pipeline_lock(api->ud, false);
    ch_free(items);
    ch_json_parser_free(jp);
    ch_expr_scratch_free(scr);
    ch_expr_free(filter);
    ch_free(tv);
    ch_offenses_free(m);
    ch_buf_free(&doc);
    ch_buf_free(&full);
}

void ch_api_offense_get(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    ch_api *api = ch__serve_api(ud);
    int64_t id;
    if (!offense_id(rq, rs, &id))
        return;
    ch_error err = {0};
    ch_offenses *m = ch_offenses_new();
    if (m == NULL) {
        ch_http_error(rs, 500, "out of memory");
        return;
    }
    ch_offense_triage t;
    pthread_mutex_lock(&api->store_mu);
    int rc = ch_store_load_one(api->store, id, m, &err);
    if (rc >= 0)
        rc = ch_triage_get(api->store, id, &t, &err);
    pthread_mutex_unlock(&api->store_mu);
    ch_offense *o = rc >= 0 ? ch_offenses_find(m, id) : NULL;
    if (o == NULL && (rc >= 0 || rc == CH_ENOTFOUND)) {
        /* Made by the pipeline since its last checkpoint: its copy, with no triage yet (an
         * update waits for the checkpoint: the store does not know the offense until then). */
        api->pipeline_lock(api->ud, true);
        ch_offenses *mem = api->pipeline_offenses(api->ud);
        ch_offense *mo = mem ? ch_offenses_find(mem, id) : NULL;
        if (mo != NULL) {
            memset(&t, 0, sizeof t);
            t.offense_id = id;
            t.status = mo->status;
            if (offense_resource(&rs->body, mo, &t, CH_OFFENSE_JSON_DETAIL) < 0)
                ch_http_error(rs, 500, "the answer could not be written");
        } else {
            ch_http_error(rs, 404, "no such offense");
        }
        api->pipeline_lock(api->ud, false);
    } else if (rc < 0) {
        err_from(rs, rc, &err);
    } else if (offense_resource(&rs->body, o, &t, CH_OFFENSE_JSON_DETAIL) < 0) {
        ch_http_error(rs, 500, "the answer could not be written");
    } else {
        ch_triage_etag(&t, rs->etag, sizeof rs->etag);
    }
    ch_offenses_free(m);
}

void ch_api_offense_update(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    ch_api *api = ch__serve_api(ud);
    int64_t id;
    if (!offense_id(rq, rs, &id))
        return;
    size_t n;
    const char *body = ch_http_body(rq, &n);
    ch_api_update u;
    ch_error err = {0};
    if (ch_api_parse_offense_update(body, n, &u, &err) < 0) {
        ch_http_error(rs, 400, err.msg);
        return;
    }
    const char *if_match = ch_http_header(rq, "If-Match");
    if (if_match == NULL) {
        ch_http_error(rs, 428,
                      "an update needs If-Match with the offense's ETag (from GET "
                      "/api/v1/offenses/{id})");
        return;
    }
    ch_actor who;
    actor_of(rq, &who);
    bool conflict = false;
    ch_offense_triage after;
    api->pipeline_lock(api->ud, true);
    pthread_mutex_lock(&api->store_mu);
    int rc =
        ch_triage_update(api->store, id, if_match, &u.c, &who, now_ms(), &conflict, &after, &err);
    pthread_mutex_unlock(&api->store_mu);
    if (rc == 0 && !conflict && u.c.set_status) {
        ch_offenses *m = api->pipeline_offenses(api->ud);
        ch_offense *o = m ? ch_offenses_find(m, id) : NULL;
        if (o != NULL && o->status != after.status)
            ch_offense_set_status(m, o, after.status, NULL, now_ms());
    }
    api->pipeline_lock(api->ud, false);
    if (rc < 0) {
        err_from(rs, rc, &err);
        return;
    }
    ch_triage_etag(&after, rs->etag, sizeof rs->etag);
    if (conflict) {
        /* The ETag as sent in the header, quotes included, as a JSON string. */
        char details[128];
        snprintf(details, sizeof details, "{\"etag\":\"\\%.*s\\\"\"}", (int)strlen(rs->etag) - 1,
                 rs->etag);
        ch_http_error_full(rs, 412, NULL,
                           "the offense changed since it was read: read it again (its ETag is in "
                           "details) and retry",
                           details);
        return;
    }
    ch_api_offense_get(ud, rq, rs);
}

void ch_api_notes_list(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    ch_api *api = ch__serve_api(ud);
    int64_t id;
    if (!offense_id(rq, rs, &id))
        return;
    ch_error err = {0};
    pthread_mutex_lock(&api->store_mu);
    int rc = ch_triage_notes_json(api->store, id, &rs->body, &err);
    pthread_mutex_unlock(&api->store_mu);
    if (rc < 0)
        err_from(rs, rc, &err);
}

void ch_api_note_add(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    ch_api *api = ch__serve_api(ud);
    int64_t id;
    if (!offense_id(rq, rs, &id))
        return;
    size_t n;
    const char *body = ch_http_body(rq, &n);
    char *text = NULL;
    ch_error err = {0};
    if (ch_api_parse_note(body, n, &text, &err) < 0) {
        ch_http_error(rs, 400, err.msg);
        return;
    }
    ch_actor who;
    actor_of(rq, &who);
    pthread_mutex_lock(&api->store_mu);
    int64_t nid = ch_triage_note_add(api->store, id, text, &who, now_ms(), &err);
    pthread_mutex_unlock(&api->store_mu);
    ch_free(text);
    if (nid < 0) {
        err_from(rs, (int)nid, &err);
        return;
    }
    rs->status = 201;
    snprintf(rs->location, sizeof rs->location, "/api/v1/offenses/%lld/notes", (long long)id);
    ch_buf_printf(&rs->body, "{\"id\":%lld,\"offense_id\":%lld}", (long long)nid, (long long)id);
}

void ch_api_closing_reasons(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    (void)rq;
    ch_api *api = ch__serve_api(ud);
    ch_error err = {0};
    pthread_mutex_lock(&api->store_mu);
    int rc = ch_triage_reasons_json(api->store, &rs->body, &err);
    pthread_mutex_unlock(&api->store_mu);
    if (rc < 0)
        err_from(rs, rc, &err);
}

/* ---- sessions ------------------------------------------------------------------------------- */

static int session_json(ch_buf *b, const char *name, ch_role role, bool must_change,
                        const char *via, const char *csrf, int64_t expires)
{
    int rc;
    if ((rc = ch_buf_adds(b, "{\"name\":")) < 0 || (rc = add_str(b, name)) < 0 ||
        (rc = ch_buf_printf(b, ",\"role\":\"%s\",\"via\":\"%s\",\"must_change_password\":%s",
                            ch_role_name(role), via, must_change ? "true" : "false")) < 0)
        return rc;
    if (csrf != NULL &&
        ((rc = ch_buf_adds(b, ",\"csrf_token\":")) < 0 || (rc = add_str(b, csrf)) < 0))
        return rc;
    if (expires > 0) {
        char t[40];
        size_t n = ch_time_format(expires, t);
        if ((rc = ch_buf_adds(b, ",\"expires\":")) < 0 || (rc = ch_buf_add_json_str(b, t, n)) < 0)
            return rc;
    }
    return ch_buf_addc(b, '}');
}

void ch_api_session_login(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    ch_api *api = ch__serve_api(ud);
    size_t n;
    const char *body = ch_http_body(rq, &n);
    ch_api_login l;
    ch_error err = {0};
    if (ch_api_parse_login(body, n, false, &l, &err) < 0) {
        ch_http_error(rs, 400, err.msg);
        return;
    }
    ch_login_result res;
    pthread_mutex_lock(api->accounts_mu);
    int rc = ch_login(api->accounts, l.name, l.password, ch_http_peer(rq), &res, &err);
    int64_t max_age = ch_accounts_policy(api->accounts)->session_absolute_ms;
    pthread_mutex_unlock(api->accounts_mu);
    ch_api_login_free(&l);
    if (rc < 0) {
        err_from(rs, rc, &err);
        return;
    }
    if (res.status == CH_LOGIN_THROTTLED) {
        rs->retry_after_s = (unsigned)((res.retry_after_ms + 999) / 1000);
        ch_http_error_full(rs, 429, "login_throttled",
                           "too many failed logins for this account or address; retry later", NULL);
        return;
    }
    if (res.status != CH_LOGIN_OK) {
        ch_http_error_full(rs, 401, "login_failed", "wrong name or password", NULL);
        return;
    }
    if (ch_session_cookie(rs->set_cookie, sizeof rs->set_cookie, res.session.id, ch_http_tls(rq),
                          max_age) < 0) {
        ch_http_error(rs, 500, "the session cookie does not fit");
        return;
    }
    session_json(&rs->body, res.info.name, res.info.role, res.info.must_change, "session",
                 res.session.csrf, res.info.expires);
    memset(&res.session, 0, sizeof res.session);
}

void ch_api_session_get(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    ch_api *api = ch__serve_api(ud);
    const ch_principal *p = ch_http_principal(rq);
    if (p->via == CH_AUTH_NONE) {
        ch_http_error(rs, 401, "no session and no token");
        return;
    }
    if (p->via != CH_AUTH_SESSION) {
        session_json(&rs->body, p->name, p->role, false, "token", NULL, 0);
        return;
    }
    /* The console may have lost its CSRF token (a reload): hand out a new one. The answer is
     * readable only by this origin (no CORS), so a cross-site page cannot learn it. */
    char csrf[CH_SECRET_B64_LEN + 1];
    ch_session_info si = {0};
    ch_error err = {0};
    size_t sn = strlen(p->session);
    pthread_mutex_lock(api->accounts_mu);
    int rc = ch_session_rotate_csrf(api->accounts, p->session, sn, csrf, sizeof csrf, &err);
    if (rc == 0)
        rc = ch_session_check(api->accounts, p->session, sn, &si, &err);
    pthread_mutex_unlock(api->accounts_mu);
    if (rc < 0) {
        ch_http_error(rs, 401, "the session has ended");
        return;
    }
    session_json(&rs->body, si.name, si.role, si.must_change, "session", csrf, si.expires);
}

void ch_api_session_logout(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    ch_api *api = ch__serve_api(ud);
    const ch_principal *p = ch_http_principal(rq);
    if (p->via != CH_AUTH_SESSION) {
        ch_http_error(rs, 401, "no console session to end");
        return;
    }
    ch_error err = {0};
    pthread_mutex_lock(api->accounts_mu);
    ch_session_destroy(api->accounts, p->session, strlen(p->session), ch_http_peer(rq), &err);
    pthread_mutex_unlock(api->accounts_mu);
    ch_session_cookie(rs->set_cookie, sizeof rs->set_cookie, NULL, ch_http_tls(rq), 0);
    rs->status = 204;
}

void ch_api_session_password(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    ch_api *api = ch__serve_api(ud);
    const ch_principal *p = ch_http_principal(rq);
    if (p->via != CH_AUTH_SESSION) {
        ch_http_error(rs, 401, "a password is changed from a console session");
        return;
    }
    size_t n;
    const char *body = ch_http_body(rq, &n);
    ch_api_login l;
    ch_error err = {0};
    if (ch_api_parse_login(body, n, true, &l, &err) < 0) {
        ch_http_error(rs, 400, err.msg);
        return;
    }
    ch_account_info ai = {0};
    ch_session_new sn = {0};
    pthread_mutex_lock(api->accounts_mu);
    int rc = ch_account_change_password(api->accounts, p->name, l.password, l.new_password,
                                        ch_http_peer(rq), &err);
    /* Every session of the account ended with the change: this one goes on as a new one. */
    if (rc == 0)
        rc = ch_account_get(api->accounts, p->name, &ai, &err);
    if (rc == 0)
        rc = ch_session_create(api->accounts, ai.id, ch_http_peer(rq), &sn, &err);
    int64_t max_age = ch_accounts_policy(api->accounts)->session_absolute_ms;
    pthread_mutex_unlock(api->accounts_mu);
    ch_api_login_free(&l);
    if (rc < 0) {
        err_from(rs, rc, &err);
        return;
    }
    ch_session_cookie(rs->set_cookie, sizeof rs->set_cookie, sn.id, ch_http_tls(rq), max_age);
    session_json(&rs->body, ai.name, ai.role, false, "session", sn.csrf, 0);
    memset(&sn, 0, sizeof sn);
}

/* ---- users, audit, OpenAPI ------------------------------------------------------------------ */

void ch_api_users_list(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    ch_api *api = ch__serve_api(ud);
    size_t first, count, total = 0;
    bool ranged;
    if (!paging(rq, rs, &first, &count, &ranged))
        return;
    ch_error err = {0};
    pthread_mutex_lock(&api->store_mu);
    int rc = ch_triage_users_json(api->store, first, count, &rs->body, &total, &err);
    pthread_mutex_unlock(&api->store_mu);
    if (rc < 0) {
        err_from(rs, rc, &err);
        return;
    }
    size_t got = first < total ? (total - first < count ? total - first : count) : 0;
    if (ranged && got == 0 && total > 0) {
        content_range(rs, 0, 0, total);
        ch_http_error(rs, 416, "the Range starts past the last item");
        return;
    }
    content_range(rs, first, got, total);
}

void ch_api_user_get(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    ch_api *api = ch__serve_api(ud);
    ch_error err = {0};
    pthread_mutex_lock(&api->store_mu);
    int rc =
        ch_triage_user_json(api->store, ch_http_param(rq, 0), CH_API_USER_HITS, &rs->body, &err);
    pthread_mutex_unlock(&api->store_mu);
    if (rc < 0)
        err_from(rs, rc, &err);
}

typedef struct audit_walk {
    ch_buf *b;
    size_t n;
} audit_walk;

static int audit_one(void *ud, const ch_audit_entry *e)
{
    audit_walk *w = ud;
    int rc = w->n++ > 0 ? ch_buf_addc(w->b, ',') : 0;
    return rc < 0 ? rc : ch_audit_entry_json(w->b, e);
}

void ch_api_audit(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    ch_api *api = ch__serve_api(ud);
    const char *since = ch_http_arg(rq, "since"), *lim = ch_http_arg(rq, "limit");
    int64_t since_ms = 0;
    uint64_t limit = 100;
    if (since != NULL && !ch_time_parse_iso8601(since, strlen(since), &since_ms)) {
        uint64_t v;
        if (!ch_api_parse_uint(since, INT64_MAX, &v)) {
            ch_http_error(rs, 400, "since must be an ISO 8601 time or milliseconds since 1970");
            return;
        }
        since_ms = (int64_t)v;
    }
    if (lim != NULL && (!ch_api_parse_uint(lim, CH_API_AUDIT_MAX, &limit) || limit == 0)) {
        ch_http_error(rs, 400, "limit must be a number from 1 to 10000");
        return;
    }
    ch_error err = {0};
    audit_walk w = {&rs->body, 0};
    ch_buf_addc(&rs->body, '[');
    pthread_mutex_lock(&api->store_mu);
    ch_sql *q = ch_store_sql(api->store);
    int rc = ch_audit_schema_db(q->db, q->path, &err);
    if (rc >= 0)
        rc = ch_audit_list_db(q->db, q->path, since_ms, (size_t)limit, audit_one, &w, &err);
    pthread_mutex_unlock(&api->store_mu);
    if (rc < 0) {
        err_from(rs, rc, &err);
        return;
    }
    ch_buf_addc(&rs->body, ']');
}

void ch_api_openapi(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    (void)ud;
    (void)rq;
    ch_buf_add(&rs->body, ch_openapi_json, ch_openapi_json_len);
}
