/*
 * api_intel.c - threat-intelligence feeds over the REST API: GET /intel/feeds lists every pull
 * feed of the configuration (intel.pull) with what the scheduler knows of it (last pull, its
 * result, indicators and reference-set elements it added, the next pull), and POST /intel/pull
 * asks the scheduler to pull one feed or every feed now.
 *
 * The scheduler is `coinhound serve`'s puller thread (cli/cmd_serve.c): it installs a hook
 * (serve.h ch_serve_set_intel) read here under intel_mu. "Pull now" only moves the feed's due
 * time and wakes the thread, so the request answers 202 at once and the pull's outcome shows in
 * the feed's status (and the server log) a moment later; a pull already running is not started
 * twice. Without a hook (a server embedded without the CLI, or one with no feeds) the feeds are
 * listed as "not scheduled" and a pull request is 409. Credentials are never shown: only which
 * kind a feed uses.
 */
#include <stdio.h>
#include <string.h>

#include "server/api.h"
#include "server/api_parse.h"
#include "server/config.h"
#include "server/serve.h"

static int add_str(ch_buf *b, const char *s)
{
    return s ? ch_buf_add_json_str(b, s, strlen(s)) : ch_buf_adds(b, "null");
}

static int add_ms(ch_buf *b, const char *key, int64_t ms)
{
    return ms > 0 ? ch_buf_printf(b, ",\"%s\":%lld", key, (long long)ms)
                  : ch_buf_printf(b, ",\"%s\":null", key);
}

static int feed_json(ch_buf *b, size_t i, const ch_serve_pull *p, const ch_serve_intel_hook *h)
{
    ch_serve_feed_status st;
    memset(&st, 0, sizeof st);
    if (h != NULL)
        h->status(h->ud, i, &st);
    const char *status = h == NULL       ? "not scheduled"
                         : st.running    ? "running"
                         : st.pulls == 0 ? "never"
                         : st.ok         ? "ok"
                                         : "failed";
    int rc;
    if ((rc = ch_buf_printf(b, "{\"index\":%zu,\"url\":", i)) < 0 ||
        (rc = add_str(b, p->url)) < 0 || (rc = ch_buf_adds(b, ",\"collection\":")) < 0 ||
        (rc = add_str(b, p->collection)) < 0 ||
        (rc = ch_buf_printf(b, ",\"every_ms\":%lld,\"auth\":\"%s\",\"status\":\"%s\"",
                            (long long)p->every_ms,
                            p->user         ? "basic"
                            : p->token_file ? "token"
                                            : "none",
                            status)) < 0 ||
        (rc = add_ms(b, "last_pull", st.last_ms)) < 0 ||
        (rc = add_ms(b, "next_pull", st.next_ms)) < 0 ||
        (rc = ch_buf_printf(b,
                            ",\"pulls\":%llu,\"failures_in_a_row\":%u,\"indicators\":%llu,"
                            "\"indicators_added\":%llu,\"elements_removed\":%llu,\"error\":",
                            (unsigned long long)st.pulls, st.fails,
                            (unsigned long long)st.indicators, (unsigned long long)st.added,
                            (unsigned long long)st.removed)) < 0 ||
        (rc = add_str(b, st.error[0] ? st.error : NULL)) < 0)
        return rc;
    return ch_buf_addc(b, '}');
}

void ch_api_intel_feeds(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    (void)rq;
    ch_api *api = ch__serve_api(ud);
    const ch_serve_config *cfg = api->cfg;
    size_t n = cfg ? cfg->npull : 0;
    int rc = ch_buf_addc(&rs->body, '[');
    pthread_mutex_lock(&api->intel_mu);
    for (size_t i = 0; rc >= 0 && i < n; i++) {
        if (i > 0)
            rc = ch_buf_addc(&rs->body, ',');
        if (rc >= 0)
            rc = feed_json(&rs->body, i, &cfg->pull[i], api->intel_hook);
    }
    pthread_mutex_unlock(&api->intel_mu);
    if (rc >= 0)
        rc = ch_buf_addc(&rs->body, ']');
    if (rc < 0) {
        ch_buf_clear(&rs->body);
        ch_http_error(rs, 500, "the feeds could not be written");
    }
}

void ch_api_intel_pull(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    ch_api *api = ch__serve_api(ud);
    const ch_serve_config *cfg = api->cfg;
    ch_error err = {0};
    size_t blen = 0;
    const char *body = ch_http_body(rq, &blen);
    long index = -1;
    char url[CH_API_FEED_URL_MAX + 1];
    int rc = ch_api_parse_intel_pull(body ? body : "", body ? blen : 0, &index, url, &err);
    if (rc < 0) {
        ch__api_error(rs, rc, &err);
        return;
    }
    size_t n = cfg ? cfg->npull : 0;
    if (n == 0) {
        ch_http_error(rs, 404, "no intel feeds are configured (intel.pull)");
        return;
    }
    if (url[0]) {
        for (size_t i = 0; i < n && index < 0; i++)
            if (strcmp(cfg->pull[i].url, url) == 0)
                index = (long)i;
        if (index < 0) {
            ch_http_error(rs, 404, "no configured feed has that URL");
            return;
        }
    } else if (index >= (long)n) {
        ch_http_error(rs, 404, "no configured feed has that index");
        return;
    }
    pthread_mutex_lock(&api->intel_mu);
    bool scheduled = api->intel_hook != NULL;
    pthread_mutex_unlock(&api->intel_mu);
    if (!scheduled) {
        ch_http_error(rs, 409, "no intel pull scheduler runs in this server");
        return;
    }
    /* The feeds asked for, as a JSON array: the audit entry's "after" and the answer. */
    ch_buf list, after;
    ch_buf_init(&list, 1u << 20);
    ch_buf_init(&after, 1u << 20);
    rc = ch_buf_addc(&list, '[');
    for (size_t i = 0; rc >= 0 && i < n; i++)
        if (index < 0 || (size_t)index == i) {
            if (list.len > 1)
                rc = ch_buf_addc(&list, ',');
            if (rc >= 0)
                rc = add_str(&list, cfg->pull[i].url);
        }
    if (rc >= 0)
        rc = ch_buf_addc(&list, ']');
    if (rc >= 0)
        rc = ch_buf_printf(&after, "{\"feeds\":%s}", list.data);
    /* Audited before the pull is asked for: no pull without its entry. */
    if (rc >= 0)
        rc = ch__api_audit(api, rq, "intel.pull", index < 0 ? "*" : cfg->pull[index].url, NULL,
                           after.data, &err);
    if (rc >= 0) {
        pthread_mutex_lock(&api->intel_mu);
        const ch_serve_intel_hook *h = api->intel_hook;
        if (h != NULL) /* removed meanwhile only when the server stops */
            h->pull_now(h->ud, index);
        pthread_mutex_unlock(&api->intel_mu);
        rs->status = 202;
        rc = ch_buf_printf(&rs->body, "{\"queued\":%s}", list.data);
    }
    ch_buf_free(&list);
    ch_buf_free(&after);
    if (rc < 0) {
        ch_buf_clear(&rs->body);
        ch__api_error(rs, rc, &err);
    }
}
