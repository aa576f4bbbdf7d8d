/*
 * api_refsets.c - reference sets over the REST API: list, create, get (with its first
 * elements), add values (one or a bulk load, with a TTL), remove a value, delete a set.
 *
 * The sets live in the database through intel/intel_store.h, as `coinhound refset` keeps them;
 * values are normalized exactly as the CLI and the in-memory sets do (ch_intel_normalize_value),
 * so what the API adds, the CLI removes. A bulk load is one transaction: every value or none.
 * After a change the pipeline is asked to reload, which is how rules see the new values (the
 * running sets are immutable; docs/SERVE.md, reload). Every change is audited (refset.create,
 * refset.add, refset.remove, refset.drop) once it is committed. Values added to an address or
 * domain set are handed to the server's retro-hunt (serve.c), which searches the stored events
 * for them.
 */
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "core/timeparse.h"
#include "intel/intel_store.h"
#include "server/api.h"
#include "server/api_parse.h"

static int add_str(ch_buf *b, const char *s) { return ch_buf_add_json_str(b, s, strlen(s)); }

static bool set_name(const ch_http_req *rq, ch_http_resp *rs, const char **name)
{
    *name = ch_http_param(rq, 0);
    if (!ch_api_refset_name_ok(*name)) {
        ch_http_error(rs, 404, "no such reference set (names are 1 to 128 of A-Z a-z 0-9 _ . : -)");
        return false;
    }
    return true;
}

static int info_json(ch_buf *b, const ch_intel_set_info *i)
{
    int rc;
    if ((rc = ch_buf_adds(b, "{\"name\":")) < 0 || (rc = add_str(b, i->name)) < 0)
        return rc;
    return ch_buf_printf(b, ",\"type\":\"%s\",\"shareable\":%s,\"count\":%lld",
                         ch_refset_type_name(i->type), i->shareable ? "true" : "false",
                         (long long)i->count);
}

void ch_api_refsets_list(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    (void)rq;
    ch_api *api = ch__serve_api(ud);
    ch_intel_set_info *v = NULL;
    size_t n = 0;
    ch_error err = {0};
    pthread_mutex_lock(&api->intel_mu);
    int rc = ch_intel_store_set_list(api->intel, &v, &n, &err);
    pthread_mutex_unlock(&api->intel_mu);
    if (rc < 0) {
        ch__api_error(rs, rc, &err);
        return;
    }
    ch_buf_addc(&rs->body, '[');
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            ch_buf_addc(&rs->body, ',');
        info_json(&rs->body, &v[i]);
        ch_buf_addc(&rs->body, '}');
    }
    ch_buf_addc(&rs->body, ']');
    ch_free(v);
}

void ch_api_refset_create(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    ch_api *api = ch__serve_api(ud);
    size_t n;
    const char *body = ch_http_body(rq, &n);
    char name[CH_API_SET_NAME_MAX + 1];
    int type;
    ch_error err = {0};
    if (ch_api_parse_refset_create(body, n, name, &type, &err) < 0) {
        ch_http_error(rs, 400, err.msg);
        return;
    }
    ch_intel_set_info info;
    pthread_mutex_lock(&api->intel_mu);
    int rc = ch_intel_store_set_get(api->intel, name, &info, NULL);
    if (rc == 0) {
        pthread_mutex_unlock(&api->intel_mu);
        ch_http_error(rs, 409, "a reference set of that name exists");
        return;
    }
    rc = ch_intel_store_set_ensure(api->intel, name, (ch_refset_type)type, 0, &err);
    if (rc == 0)
        rc = ch_intel_store_set_get(api->intel, name, &info, &err);
    pthread_mutex_unlock(&api->intel_mu);
    if (rc < 0) {
        ch__api_error(rs, rc, &err);
        return;
    }
    char after[256], object[160];
    snprintf(after, sizeof after, "{\"type\":\"%s\"}", ch_refset_type_name((ch_refset_type)type));
    snprintf(object, sizeof object, "refset:%s", name);
    ch__api_audit(api, rq, "refset.create", object, NULL, after, &err);
    api->reload(api->ud);
    rs->status = 201;
    snprintf(rs->location, sizeof rs->location, "/api/v1/reference_sets/%s", name);
    info_json(&rs->body, &info);
    ch_buf_addc(&rs->body, '}');
}

typedef struct elem_walk {
    ch_buf *b;
    size_t n;
} elem_walk;

static int add_time_or_null(ch_buf *b, int64_t ms, int64_t none)
{
    if (ms == none)
        return ch_buf_adds(b, "null");
    char t[40];
    size_t n = ch_time_format(ms, t);
    return ch_buf_add_json_str(b, t, n);
}

static int elem_one(void *arg, const ch_intel_elem_row *r)
{
    elem_walk *w = arg;
    ch_buf *b = w->b;
    int rc;
    if ((w->n++ > 0 && (rc = ch_buf_addc(b, ',')) < 0) ||
        (rc = ch_buf_adds(b, "{\"value\":")) < 0 || (rc = add_str(b, r->value)) < 0 ||
        (rc = ch_buf_adds(b, ",\"source\":")) < 0 ||
        (rc = add_str(b, r->meta.source ? r->meta.source : "")) < 0 ||
        (rc = ch_buf_adds(b, ",\"first_seen\":")) < 0 ||
        (rc = add_time_or_null(b, r->meta.first_seen, 0)) < 0 ||
        (rc = ch_buf_adds(b, ",\"last_seen\":")) < 0 ||
        (rc = add_time_or_null(b, r->meta.last_seen, 0)) < 0 ||
        (rc = ch_buf_adds(b, ",\"expiry\":")) < 0 ||
        (rc = add_time_or_null(b, r->meta.expiry, CH_REFSET_NEVER)) < 0)
        return rc;
    return ch_buf_addc(b, '}');
}

void ch_api_refset_get(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    ch_api *api = ch__serve_api(ud);
    const char *name;
    if (!set_name(rq, rs, &name))
        return;
    ch_intel_set_info info;
    ch_error err = {0};
    pthread_mutex_lock(&api->intel_mu);
    int rc = ch_intel_store_set_get(api->intel, name, &info, &err);
    if (rc == 0) {
        info_json(&rs->body, &info);
        ch_buf_adds(&rs->body, ",\"elements\":[");
        elem_walk w = {&rs->body, 0};
        ch_intel_elem_query q = {name, false, false, INT64_MIN, CH_API_REFSET_SHOW};
        rc = ch_intel_store_each_elem(api->intel, &q, elem_one, &w, &err);
        ch_buf_adds(&rs->body, "]}");
    }
    pthread_mutex_unlock(&api->intel_mu);
    if (rc < 0)
        ch__api_error(rs, rc, &err);
}

void ch_api_refset_delete(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    ch_api *api = ch__serve_api(ud);
    const char *name;
    if (!set_name(rq, rs, &name))
        return;
    ch_intel_set_info info;
    ch_error err = {0};
    pthread_mutex_lock(&api->intel_mu);
    int rc = ch_intel_store_set_get(api->intel, name, &info, &err);
    if (rc == 0)
        rc = ch_intel_store_set_drop(api->intel, name, &err);
    pthread_mutex_unlock(&api->intel_mu);
    if (rc < 0) {
        ch__api_error(rs, rc, &err);
        return;
    }
    char before[256], object[160];
    snprintf(before, sizeof before, "{\"type\":\"%s\",\"count\":%lld}",
             ch_refset_type_name(info.type), (long long)info.count);
    snprintf(object, sizeof object, "refset:%s", name);
    ch__api_audit(api, rq, "refset.drop", object, before, NULL, &err);
    api->reload(api->ud);
    rs->status = 204;
}

void ch_api_refset_add(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    ch_api *api = ch__serve_api(ud);
    const char *name;
    if (!set_name(rq, rs, &name))
        return;
    size_t n;
    const char *body = ch_http_body(rq, &n);
    ch_api_values v;
    ch_error err = {0};
    if (ch_api_parse_refset_values(body, n, &v, &err) < 0) {
        ch_http_error(rs, 400, err.msg);
        return;
    }
    ch_intel_set_info info;
    int64_t now = ch__api_now();
    ch_refset_meta m = ch_refset_meta_make(v.source[0] ? v.source : "api", now);
    if (v.ttl_ms > 0)
        m.expiry = now + v.ttl_ms;
    char norm[CH_REFSET_STRING_MAX + 1];
    size_t bad = 0;
    bool hunt = false;
    pthread_mutex_lock(&api->intel_mu);
    int rc = ch_intel_store_set_get(api->intel, name, &info, &err);
    if (rc == 0)
        rc = ch_intel_store_begin(api->intel, &err);
    /* Values of an address or domain set are indicators: the stored events are searched for
     * them (issue: "a reference set that gains values through the API"), queued in this
     * transaction so that a crash cannot lose the hunt of values it kept. */
    if (rc == 0)
        hunt = api->hunt != NULL && (info.type == CH_REFSET_IP || info.type == CH_REFSET_DOMAIN);
    if (rc == 0) {
        for (size_t i = 0; i < v.n && rc == 0; i++) {
            if (ch_intel_normalize_value(info.type, v.values[i], strlen(v.values[i]), norm,
                                         sizeof norm, &err) < 0) {
                bad = i + 1;
                rc = CH_EUSAGE;
                break;
            }
            rc = ch_intel_store_elem_put(api->intel, name, norm, &m, now, &err);
            if (rc == 0 && hunt)
                rc = ch_intel_store_retro_queue(api->intel, name, info.type, norm, now, &err);
        }
        if (rc == 0)
            rc = ch_intel_store_commit(api->intel, &err);
        else
            ch_intel_store_rollback(api->intel);
    }
    pthread_mutex_unlock(&api->intel_mu);
    if (bad > 0) {
        char details[64];
        snprintf(details, sizeof details, "{\"index\":%zu}", bad - 1);
        char msg[600];
        snprintf(msg, sizeof msg, "values[%zu] is not a %s value (%s); nothing was added", bad - 1,
                 ch_refset_type_name(info.type), err.msg);
        ch_http_error_full(rs, 422, NULL, msg, details);
        ch_api_values_free(&v);
        return;
    }
    if (rc < 0) {
        ch_api_values_free(&v);
        ch__api_error(rs, rc, &err);
        return;
    }
    char after[512], object[160];
    snprintf(after, sizeof after,
             "{\"added\":%zu,\"ttl_ms\":%lld,\"source\":\"%s\",\"first\":", v.n,
             (long long)v.ttl_ms, v.source[0] ? "given" : "api");
    ch_buf a;
    ch_buf_init(&a, 8192);
    ch_buf_adds(&a, after);
    add_str(&a, v.values[0]);
    ch_buf_addc(&a, '}');
    snprintf(object, sizeof object, "refset:%s", name);
    ch__api_audit(api, rq, "refset.add", object, NULL, a.data, &err);
    ch_buf_free(&a);
    api->reload(api->ud);
    if (hunt)
        api->hunt(api->ud);
    ch_buf_printf(&rs->body, "{\"added\":%zu,\"retro_hunt\":%s}", v.n,
                  hunt ? "\"queued\"" : "null");
    ch_api_values_free(&v);
}

void ch_api_refset_remove(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    ch_api *api = ch__serve_api(ud);
    const char *name;
    if (!set_name(rq, rs, &name))
        return;
    const char *value = ch_http_param(rq, 1);
    ch_intel_set_info info;
    ch_error err = {0};
    char norm[CH_REFSET_STRING_MAX + 1];
    pthread_mutex_lock(&api->intel_mu);
    int rc = ch_intel_store_set_get(api->intel, name, &info, &err);
    if (rc == 0 &&
        ch_intel_normalize_value(info.type, value, strlen(value), norm, sizeof norm, &err) < 0)
        rc = CH_EUSAGE;
    if (rc == 0)
        rc = ch_intel_store_elem_remove(api->intel, name, norm, NULL, NULL, &err);
    pthread_mutex_unlock(&api->intel_mu);
    if (rc < 0) {
        if (rc == CH_ENOTFOUND && err.msg[0] == '\0')
            ch_error_set(&err, rc, "the value is not in the set");
        ch__api_error(rs, rc, &err);
        return;
    }
    ch_buf b;
    ch_buf_init(&b, 8192);
    ch_buf_adds(&b, "{\"value\":");
    add_str(&b, norm);
    ch_buf_printf(&b, ",\"elements\":%d}", rc);
    char object[160];
    snprintf(object, sizeof object, "refset:%s", name);
    ch__api_audit(api, rq, "refset.remove", object, b.data, NULL, &err);
    ch_buf_free(&b);
    api->reload(api->ud);
    rs->status = 204;
}
