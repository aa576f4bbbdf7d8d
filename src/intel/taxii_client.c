/*
 * taxii_client.c - TAXII 2.1 pull over libcurl (see taxii_client.h for the contract).
 *
 * One curl easy handle serves the whole pull, so the connection (and the TLS session) is
 * reused from discovery to the last page. Each response body lands in a capped ch_buf and is
 * parsed by simdjson (core/json.h) in one go: a TAXII page is bounded by the server's page size
 * and our max_response, so streaming would buy nothing but complexity. The cost of a pull is
 * one request per page plus three for discovery, collections and the API root probe.
 *
 * URLs are built with curl's URL API (relative API roots resolve against the discovery URL)
 * and every value placed in a query is escaped. Retries only ever repeat a GET, which is safe.
 */
#include "intel/taxii_client.h"

#include "core/curl_lazy.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/buf.h"
#include "core/ip.h"
#include "core/mem.h"

#define DEF_CONNECT_MS 10000L
#define DEF_TIMEOUT_MS 120000L
#define DEF_RETRIES 4u
#define DEF_BACKOFF_MS 500L
#define DEF_BACKOFF_MAX_MS 30000L
#define DEF_MAX_PAGES 100000u
#define DEF_MAX_RESPONSE (64u << 20)
#define URL_MAX 8192
#define JSON_DEPTH 128

/* ---- resource parsing --------------------------------------------------------------------- */

static int parse_root(ch_json_parser *p, const char *buf, size_t len, ch_json_val *root,
                      const char *what, ch_error *err)
{
    ch_error e = {0};
    if (buf == NULL || len == 0)
        return ch_error_set(err, CH_EPARSE, "%s is empty", what);
    int rc = ch_json_parse(p, buf, len, len, root, &e);
    if (rc < 0)
        return ch_error_set(err, rc == CH_ELIMIT ? CH_ELIMIT : CH_EPARSE, "%s is not JSON: %s",
                            what, e.msg);
    if (ch_json_typeof(*root) != CH_JSON_OBJECT)
        return ch_error_set(err, CH_EPARSE, "%s is not a JSON object", what);
    return 0;
}

static bool get_member(ch_json_val obj, const char *key, ch_json_val *out)
{
    return ch_json_obj_get(obj, key, strlen(key), out);
}

int ch_taxii_parse_envelope(ch_json_parser *p, const char *buf, size_t len, ch_taxii_envelope *out,
                            ch_error *err)
{
    memset(out, 0, sizeof *out);
    ch_json_val root, v;
    int rc = parse_root(p, buf, len, &root, "envelope", err);
    if (rc < 0)
        return rc;
    if (get_member(root, "more", &v) && !ch_json_get_bool(v, &out->more))
        return ch_error_set(err, CH_EPARSE, "envelope: \"more\" is not a boolean");
    if (get_member(root, "next", &v)) {
        if (!ch_json_get_str(v, &out->next, &out->next_len))
            return ch_error_set(err, CH_EPARSE, "envelope: \"next\" is not a string");
        if (out->next_len == 0 || out->next_len > CH_TAXII_NEXT_MAX)
            return ch_error_set(err, CH_EPARSE, "envelope: \"next\" is empty or longer than %d",
                                CH_TAXII_NEXT_MAX);
    }
    if (!get_member(root, "objects", &out->objects))
        return 0;
    out->has_objects = true;
    if (ch_json_typeof(out->objects) != CH_JSON_ARRAY)
        return ch_error_set(err, CH_EPARSE, "envelope: \"objects\" is not an array");
    ch_json_iter it;
    ch_json_val o;
    ch_json_arr_iter(out->objects, &it);
    while (ch_json_arr_next(&it, &o)) {
        const char *s;
        size_t n;
        if (ch_json_typeof(o) != CH_JSON_OBJECT)
            return ch_error_set(err, CH_EPARSE, "envelope: object %zu is not a JSON object",
                                out->nobjects);
        if (!get_member(o, "type", &v) || !ch_json_get_str(v, &s, &n) || n == 0)
            return ch_error_set(err, CH_EPARSE, "envelope: object %zu has no \"type\"",
                                out->nobjects);
        if (!get_member(o, "id", &v) || !ch_json_get_str(v, &s, &n) || n == 0)
            return ch_error_set(err, CH_EPARSE, "envelope: object %zu has no \"id\"",
                                out->nobjects);
        out->nobjects++;
    }
    return 0;
}

int ch_taxii_parse_discovery(ch_json_parser *p, const char *buf, size_t len, ch_taxii_str *roots,
                             size_t cap, bool *is_api_root, ch_error *err)
{
    /* The failures return CH_EPARSE spelled out, not ch_error_set's result (the same value): the
     * static analyzer cannot see into error.c and would read roots[] after a "success". */
    ch_json_val root, v, r;
    *is_api_root = false;
    int rc = parse_root(p, buf, len, &root, "discovery resource", err);
    if (rc < 0)
        return rc;
    if (!get_member(root, "api_roots", &v) && !get_member(root, "default", &v) &&
        !get_member(root, "title", &v)) {
        ch_error_set(err, CH_EPARSE, "discovery resource has no title and no api_roots");
        return CH_EPARSE;
    }
    if (!get_member(root, "api_roots", &v) && get_member(root, "versions", &r)) {
        *is_api_root = true;
        return 0;
    }
    size_t n = 0;
    ch_taxii_str def = {NULL, 0};
    if (get_member(root, "default", &v) && ch_json_typeof(v) != CH_JSON_NULL) {
        if (!ch_json_get_str(v, &def.s, &def.n) || def.n == 0) {
            ch_error_set(err, CH_EPARSE, "discovery: \"default\" is not a URL string");
            return CH_EPARSE;
        }
        if (n < cap)
            roots[n++] = def;
    }
    if (get_member(root, "api_roots", &v)) {
        ch_json_iter it;
        if (!ch_json_arr_iter(v, &it)) {
            ch_error_set(err, CH_EPARSE, "discovery: \"api_roots\" is not an array");
            return CH_EPARSE;
        }
        size_t i = 0;
        while (ch_json_arr_next(&it, &r)) {
            ch_taxii_str s;
            if (!ch_json_get_str(r, &s.s, &s.n) || s.n == 0) {
                ch_error_set(err, CH_EPARSE, "discovery: api_roots[%zu] is not a URL", i);
                return CH_EPARSE;
            }
            i++;
            if (def.s != NULL && s.n == def.n && memcmp(s.s, def.s, s.n) == 0)
                continue; /* already first */
            if (n < cap)
                roots[n++] = s;
        }
    }
    return (int)n;
}

int ch_taxii_parse_collections(ch_json_parser *p, const char *buf, size_t len,
                               ch_taxii_collection_info *out, size_t cap, ch_error *err)
{
    ch_json_val root, arr, c, v;
    int rc = parse_root(p, buf, len, &root, "collections resource", err);
    if (rc < 0)
        return rc;
    if (!get_member(root, "collections", &arr))
        return 0;
    ch_json_iter it;
    if (!ch_json_arr_iter(arr, &it))
        return ch_error_set(err, CH_EPARSE, "collections: \"collections\" is not an array");
    size_t n = 0, i = 0;
    while (ch_json_arr_next(&it, &c)) {
        ch_taxii_collection_info ci = {{NULL, 0}, {"", 0}, false};
        if (ch_json_typeof(c) != CH_JSON_OBJECT)
            return ch_error_set(err, CH_EPARSE, "collections[%zu] is not an object", i);
        if (!get_member(c, "id", &v) || !ch_json_get_str(v, &ci.id.s, &ci.id.n) || ci.id.n == 0)
            return ch_error_set(err, CH_EPARSE, "collections[%zu] has no string \"id\"", i);
        if (get_member(c, "title", &v) && !ch_json_get_str(v, &ci.title.s, &ci.title.n))
            return ch_error_set(err, CH_EPARSE, "collections[%zu]: \"title\" is not a string", i);
        if (get_member(c, "can_read", &v) && !ch_json_get_bool(v, &ci.can_read))
            return ch_error_set(err, CH_EPARSE, "collections[%zu]: \"can_read\" is not a boolean",
                                i);
        i++;
        if (n < cap)
            out[n++] = ci;
    }
    return (int)n;
}

/* ---- transport ---------------------------------------------------------------------------- */

typedef struct resp {
    long status;
    ch_buf body;
    char date_added_last[CH_TAXII_TIMESTAMP_MAX];
    char date_added_first[CH_TAXII_TIMESTAMP_MAX];
    long retry_after_s; /* -1 when absent */
    bool too_large;
} resp;

typedef struct client {
    const ch_taxii_client_opts *o;
    const ch_taxii_sink *sink;
    ch_taxii_pull_stats *st;
    CURL *curl;
    struct curl_slist *headers;
    ch_json_parser *json;
    char origin[URL_MAX]; /* scheme://host:port of the URL given, for the same-origin rule */
    char errbuf[CURL_ERROR_SIZE];
} client;

static void warn(client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(client *c, const char *fmt, ...)
{
    if (c->sink == NULL || c->sink->warn == NULL)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->sink->warn(c->sink->ud, msg);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    resp *r = ud;
    size_t n = size * nmemb;
    if (ch_buf_add(&r->body, ptr, n) < 0) {
        r->too_large = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    return n;
}

/* Header values of the last response only (a 100-continue status line resets them). */
static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    resp *r = ud;
    size_t n = size * nmemb;
    static const char dal[] = "x-taxii-date-added-last:";
    static const char daf[] = "x-taxii-date-added-first:";
    static const char ra[] = "retry-after:";
    bool last = n > sizeof dal - 1 && strncasecmp(ptr, dal, sizeof dal - 1) == 0;
    bool first = n > sizeof daf - 1 && strncasecmp(ptr, daf, sizeof daf - 1) == 0;
    if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) {
        r->date_added_last[0] = '\0';
        r->date_added_first[0] = '\0';
        r->retry_after_s = -1;
    } else if (last || first) {
        char *dst = last ? r->date_added_last : r->date_added_first;
        const char *v = ptr + (last ? sizeof dal : sizeof daf) - 1, *e = ptr + n;
        while (v < e && (*v == ' ' || *v == '\t'))
            v++;
        while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ' || e[-1] == '\t'))
            e--;
        size_t len = (size_t)(e - v);
        /* A timestamp is short and printable; anything else is ignored, not trusted. */
        bool ok = len > 0 && len < CH_TAXII_TIMESTAMP_MAX;
        for (size_t i = 0; ok && i < len; i++)
            ok = v[i] > ' ' && v[i] < 0x7f;
        if (ok) {
            memcpy(dst, v, len);
            dst[len] = '\0';
        }
    } else if (n > sizeof ra - 1 && strncasecmp(ptr, ra, sizeof ra - 1) == 0) {
        char tmp[32];
        size_t len = n - (sizeof ra - 1);
        if (len >= sizeof tmp)
            len = sizeof tmp - 1;
        memcpy(tmp, ptr + sizeof ra - 1, len);
        tmp[len] = '\0';
        char *end;
        long s = strtol(tmp, &end, 10);
        if (end != tmp && s >= 0)
            r->retry_after_s = s; /* an HTTP-date form is ignored: the backoff applies */
    }
    return n;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static bool transient_curl(CURLcode cc)
{
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_COULDNT_RESOLVE_HOST:
        return true;
    default:
        return false;
    }
}

static const char *status_reason(long status)
{
    switch (status) {
    case 400:
        return "400 Bad Request: the server rejected the request's parameters";
    case 401:
        return "401 Unauthorized: the server wants credentials (--user/--password or --token) or "
               "rejected the ones given";
    case 403:
        return "403 Forbidden: these credentials may not read this resource";
    case 404:
        return "404 Not Found: no such API root, collection or endpoint on this server";
    case 406:
        return "406 Not Acceptable: the server does not serve " CH_TAXII_MEDIA_TYPE
               " (is it TAXII 2.1?)";
    case 416:
        return "416 Range Not Satisfiable";
    case 429:
        return "429 Too Many Requests: still throttled after the retries";
    default:
        return NULL;
    }
}

/* Append the TAXII error message's title/description (if the body is one) to a detail. */
static void error_body_detail(client *c, const resp *r, char *out, size_t cap)
{
    out[0] = '\0';
    if (r->body.len == 0)
        return;
    ch_json_val root, v;
    ch_error e = {0};
    if (ch_json_parse(c->json, r->body.data, r->body.len, r->body.cap, &root, &e) < 0 ||
        ch_json_typeof(root) != CH_JSON_OBJECT)
        return;
    const char *s;
    size_t n;
    if (get_member(root, "title", &v) && ch_json_get_str(v, &s, &n))
        snprintf(out, cap, " (server says: %.*s", (int)(n > 200 ? 200 : n), s);
    else
        return;
    size_t used = strlen(out);
    if (get_member(root, "description", &v) && ch_json_get_str(v, &s, &n) && used < cap)
        snprintf(out + used, cap - used, ": %.*s", (int)(n > 200 ? 200 : n), s);
    used = strlen(out);
    if (used + 1 < cap)
        snprintf(out + used, cap - used, ")");
}

/* GET url into r, with retries. 0 on a 2xx response whose body fits; otherwise an error that
 * names the URL and the reason. */
static int http_get(client *c, const char *url, resp *r, ch_error *err)
{
    const ch_taxii_client_opts *o = c->o;
    unsigned max_retries = o->no_retry ? 0 : (o->max_retries ? o->max_retries : DEF_RETRIES);
    long backoff = o->backoff_ms > 0 ? o->backoff_ms : DEF_BACKOFF_MS;
    long backoff_max = o->backoff_max_ms > 0 ? o->backoff_max_ms : DEF_BACKOFF_MAX_MS;
    CURLcode cc = CURLE_OK;
    for (unsigned attempt = 0;; attempt++) {
        ch_buf_clear(&r->body);
        r->status = 0;
        r->too_large = false;
        r->date_added_last[0] = '\0';
        r->retry_after_s = -1;
        c->errbuf[0] = '\0';
        curl_easy_setopt(c->curl, CURLOPT_URL, url);
        curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, r);
        curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, r);
        cc = curl_easy_perform(c->curl);
        c->st->requests++;
        if (cc == CURLE_OK)
            curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &r->status);
        c->st->last_status = r->status;
        if (r->too_large)
            return ch_error_set(err, CH_ELIMIT, "GET %s: response larger than %zu bytes", url,
                                r->body.max);
        bool retry = (cc != CURLE_OK && transient_curl(cc)) ||
                     (cc == CURLE_OK && (r->status >= 500 || r->status == 429));
        if (!retry || attempt >= max_retries)
            break;
        long wait = backoff;
        for (unsigned i = 0; i < attempt && wait < backoff_max; i++)
            wait *= 2;
        if ((r->status == 429 || r->status == 503) && r->retry_after_s >= 0)
            wait = r->retry_after_s > backoff_max / 1000 ? backoff_max : r->retry_after_s * 1000;
        if (wait > backoff_max)
            wait = backoff_max;
        if (cc != CURLE_OK)
            warn(c, "GET %s: %s; retry %u of %u in %ld ms", url,
                 c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc), attempt + 1, max_retries, wait);
        else
            warn(c, "GET %s: HTTP %ld; retry %u of %u in %ld ms", url, r->status, attempt + 1,
                 max_retries, wait);
        c->st->retries++;
        sleep_ms(wait);
    }
    if (cc != CURLE_OK)
        return ch_error_set(err, CH_EIO, "GET %s: %s", url,
                            c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc));
    if (r->status >= 200 && r->status < 300) {
        char *ct = NULL;
        curl_easy_getinfo(c->curl, CURLINFO_CONTENT_TYPE, &ct);
        if (ct != NULL) {
            /* TAXII 2.1 answers application/taxii+json;version=2.1; plain JSON is tolerated
             * (some proxies rewrite it), HTML (a login page, a proxy error) or 2.0 is not. */
            bool taxii = strncasecmp(ct, "application/taxii+json", 22) == 0;
            bool json = taxii || strncasecmp(ct, "application/json", 16) == 0;
            const char *ver = strstr(ct, "version=");
            if (!json)
                return ch_error_set(err, CH_EPARSE,
                                    "GET %s: answered %s, not TAXII JSON (is this a TAXII 2.1 "
                                    "server?)",
                                    url, ct);
            if (taxii && ver != NULL && strncmp(ver + 8, "2.1", 3) != 0)
                return ch_error_set(err, CH_EPARSE, "GET %s: answered %s, not TAXII 2.1", url, ct);
        }
        return 0;
    }
    char detail[512];
    error_body_detail(c, r, detail, sizeof detail);
    if (r->status >= 300 && r->status < 400) {
        char *loc = NULL;
        curl_easy_getinfo(c->curl, CURLINFO_REDIRECT_URL, &loc);
        return ch_error_set(err, CH_EIO,
                            "GET %s: HTTP %ld redirect to %s (not followed, so that credentials "
                            "stay with the host given; use that URL)",
                            url, r->status, loc ? loc : "(no Location)");
    }
    const char *why = status_reason(r->status);
    if (why != NULL)
        return ch_error_set(err, CH_EIO, "GET %s: %s%s", url, why, detail);
    return ch_error_set(err, CH_EIO, "GET %s: HTTP %ld%s%s", url, r->status,
                        r->status >= 500 ? " (server error, after retries)" : "", detail);
}

/* ---- URLs --------------------------------------------------------------------------------- */

static bool host_is_loopback(const char *host)
{
    if (host == NULL)
        return false;
    size_t n = strlen(host);
    if (strcasecmp(host, "localhost") == 0 || strcasecmp(host, "localhost.") == 0)
        return true;
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        host++;
        n -= 2;
    }
    ch_ip ip;
    if (!ch_ip_parse(host, n, &ip))
        return false;
    if (ip.family == 4)
        return ip.b[12] == 127;
    static const uint8_t one[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    return memcmp(ip.b, one, 16) == 0;
}

bool ch_taxii_url_is_loopback(const char *url)
{
    CURLU *u = curl_url();
    char *host = NULL;
    bool ok = false;
    if (u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
        ok = host_is_loopback(host);
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

/* Resolve ref against base (ref may be absolute or relative), force a trailing '/' on the
 * path, drop query and fragment, and check the scheme: https, or http to loopback. The result
 * goes to out. want_origin: the result's scheme://host:port must equal c->origin. */
static int resolve_url(client *c, const char *base, const char *ref, size_t ref_len,
                       bool want_origin, char *out, size_t cap, ch_error *err)
{
    int rc = CH_EUSAGE;
    CURLU *u = curl_url();
    char *refz = ch_strndup(ref, ref_len);
    char *scheme = NULL, *host = NULL, *path = NULL, *full = NULL, *port = NULL;
    if (u == NULL || refz == NULL) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto cleanup;
    }
    if (base != NULL && curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK) {
        rc = ch_error_set(err, CH_EUSAGE, "'%s' is not a URL", base);
        goto cleanup;
    }
    if (curl_url_set(u, CURLUPART_URL, refz, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        rc = ch_error_set(err, CH_EUSAGE, "'%s' is not an absolute http(s) URL", refz);
        goto cleanup;
    }
    if (strcasecmp(scheme, "https") != 0 &&
        !(strcasecmp(scheme, "http") == 0 && host_is_loopback(host))) {
        rc = ch_error_set(err, CH_EUSAGE,
                          "'%s': only https:// is allowed (plain http:// only to a loopback "
                          "host), so that credentials and indicators are not sent in clear",
                          refz);
        goto cleanup;
    }
    curl_url_set(u, CURLUPART_QUERY, NULL, 0);
    curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0);
    curl_url_set(u, CURLUPART_USER, NULL, 0);
    curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
    if (curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK && path != NULL) {
        size_t pl = strlen(path);
        if (pl == 0 || path[pl - 1] != '/') {
            char *p2 = ch_malloc(pl + 2);
            if (p2 == NULL) {
                rc = ch_error_set(err, CH_ENOMEM, "out of memory");
                goto cleanup;
            }
            memcpy(p2, path, pl);
            p2[pl] = '/';
            p2[pl + 1] = '\0';
            curl_url_set(u, CURLUPART_PATH, p2, 0);
            ch_free(p2);
        }
    }
    if (want_origin) {
        char origin[URL_MAX];
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
        snprintf(origin, sizeof origin, "%s://%s:%s", scheme, host, port ? port : "");
        if (strcasecmp(origin, c->origin) != 0) {
            rc = ch_error_set(err, CH_EUSAGE,
                              "'%s' is on another host than the URL given (%s): not contacted "
                              "with these credentials; pull it with its own --url",
                              refz, c->origin);
            goto cleanup;
        }
    }
    if (curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK || strlen(full) >= cap) {
        rc = ch_error_set(err, CH_ELIMIT, "URL too long: %s", refz);
        goto cleanup;
    }
    strcpy(out, full);
    rc = 0;
cleanup:
    curl_free(scheme);
    curl_free(host);
    curl_free(path);
    curl_free(full);
    curl_free(port);
    curl_url_cleanup(u);
    ch_free(refz);
    return rc;
}

static int set_origin(client *c, const char *url, ch_error *err)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    int rc = 0;
    if (u == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        rc = ch_error_set(err, CH_EUSAGE, "'%s' is not an absolute http(s) URL", url);
    } else {
        snprintf(c->origin, sizeof c->origin, "%s://%s:%s", scheme, host, port);
        if (strcasecmp(scheme, "http") == 0)
            warn(c, "%s: plain http (no TLS); allowed only because the host is loopback", url);
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

/* True when the URL's path is empty or "/": the server itself, whose discovery is /taxii2/. */
static bool url_is_bare_server(const char *url)
{
    CURLU *u = curl_url();
    char *path = NULL;
    bool bare = false;
    if (u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK)
        bare = path == NULL || path[0] == '\0' || strcmp(path, "/") == 0;
    curl_free(path);
    curl_url_cleanup(u);
    return bare;
}

/* ---- the pull ----------------------------------------------------------------------------- */

static int append_param(client *c, char *url, size_t cap, const char *name, const char *val,
                        bool *first, ch_error *err)
{
    char *esc = curl_easy_escape(c->curl, val, 0);
    if (esc == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    size_t used = strlen(url);
    int n = snprintf(url + used, cap - used, "%c%s=%s", *first ? '?' : '&', name, esc);
    curl_free(esc);
    *first = false;
    if (n < 0 || (size_t)n >= cap - used)
        return ch_error_set(err, CH_ELIMIT, "URL too long for parameter %s", name);
    return 0;
}

/* in minus one microsecond, as a TAXII timestamp with microseconds ("...:58.999999Z"), into
 * out. False when in is not "YYYY-MM-DDTHH:MM:SS[.fraction]Z" (fraction digits past the sixth
 * are dropped, which can only make the bound earlier, never later). */
static bool timestamp_before(const char *in, char *out, size_t cap)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int used = 0;
    if (sscanf(in, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &used) != 6 ||
        used != 19)
        return false;
    const char *p = in + used;
    long us = 0;
    int digits = 0;
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 6)
                us = us * 10 + (*p - '0');
        if (digits == 0)
            return false;
    }
    if (p[0] != 'Z' || p[1] != '\0')
        return false;
    for (int k = digits; k < 6; k++)
        us *= 10;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t sec = timegm(&tm);
    if (us == 0) {
        sec--;
        us = 999999;
    } else {
        us--;
    }
    struct tm o;
    if (gmtime_r(&sec, &o) == NULL)
        return false;
    int n = snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", o.tm_year + 1900,
                     o.tm_mon + 1, o.tm_mday, o.tm_hour, o.tm_min, o.tm_sec, us);
    return n > 0 && (size_t)n < cap;
}

static int pull_collection(client *c, const char *api_root, const char *id, const char *title,
                           resp *r, ch_error *err)
{
    int rc = 0;
    char base[URL_MAX], url[URL_MAX];
    char added_after[CH_TAXII_TIMESTAMP_MAX + 1] = "";
    char *next = NULL;
    char *esc = curl_easy_escape(c->curl, id, 0);
    ch_taxii_collection_ref ref = {api_root, id, title};
    size_t max_pages = c->o->max_pages ? c->o->max_pages : DEF_MAX_PAGES;
    if (esc == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    int n = snprintf(base, sizeof base, "%scollections/%s/objects/", api_root, esc);
    curl_free(esc);
    if (n < 0 || (size_t)n >= sizeof base)
        return ch_error_set(err, CH_ELIMIT, "URL too long for collection %s", id);
    if (c->sink->get_added_after != NULL) {
        rc = c->sink->get_added_after(c->sink->ud, &ref, added_after, sizeof added_after, err);
        if (rc < 0)
            return rc;
        if ((size_t)rc >= sizeof added_after)
            return ch_error_set(err, CH_ELIMIT, "stored added_after too long");
        added_after[rc] = '\0';
    }
    size_t page;
    for (page = 0; page < max_pages; page++) {
        bool first = true;
        snprintf(url, sizeof url, "%s", base);
        if (added_after[0] &&
            (rc = append_param(c, url, sizeof url, "added_after", added_after, &first, err)) < 0)
            goto cleanup;
        if (c->o->page_limit) {
            char lim[24];
            snprintf(lim, sizeof lim, "%u", c->o->page_limit);
            if ((rc = append_param(c, url, sizeof url, "limit", lim, &first, err)) < 0)
                goto cleanup;
        }
        if (next != NULL && (rc = append_param(c, url, sizeof url, "next", next, &first, err)) < 0)
            goto cleanup;
        if ((rc = http_get(c, url, r, err)) < 0)
            goto cleanup;
        ch_taxii_envelope env;
        ch_error pe = {0};
        rc = ch_taxii_parse_envelope(c->json, r->body.data, r->body.len, &env, &pe);
        if (rc < 0) {
            rc = ch_error_set(err, rc, "GET %s: malformed envelope: %s", url, pe.msg);
            goto cleanup;
        }
        const char *dal = r->date_added_last[0] ? r->date_added_last : NULL;
        /* Where the next pull resumes: just before this page's last date_added, not at it.
         * Servers stamp whole loads with one timestamp, so the objects after this page may
         * share it; an exclusive bound at it would skip them for good if the pull stops here.
         * The objects of that instant come again and are ignored as unchanged versions. */
        char resume[CH_TAXII_TIMESTAMP_MAX + 1];
        const char *keep = dal;
        if (dal != NULL && timestamp_before(dal, resume, sizeof resume))
            keep = resume;
        rc = c->sink->page(c->sink->ud, &ref, env.has_objects ? &env.objects : NULL, env.nobjects,
                           keep, err);
        if (rc < 0)
            goto cleanup;
        rc = 0;
        c->st->pages++;
        c->st->objects += env.nobjects;
        if (!env.more)
            break;
        if (env.next != NULL) {
            if (next != NULL && env.nobjects == 0 && strlen(next) == env.next_len &&
                memcmp(next, env.next, env.next_len) == 0) {
                rc = ch_error_set(err, CH_EPARSE,
                                  "GET %s: malformed envelope: \"more\" with the same \"next\" "
                                  "and no objects (the server makes no progress)",
                                  url);
                goto cleanup;
            }
            ch_free(next);
            if ((next = ch_strndup(env.next, env.next_len)) == NULL) {
                rc = ch_error_set(err, CH_ENOMEM, "out of memory");
                goto cleanup;
            }
        } else if (dal != NULL && keep == resume && r->date_added_first[0] != '\0' &&
                   strcmp(r->date_added_first, dal) != 0 && strcmp(resume, added_after) != 0) {
            /* No next token: page on by date, as TAXII 2.1 section 3.4 allows, from just
             * before the page's last date_added, so that the objects of that instant beyond
             * the page come too (the page began earlier, so this is progress). */
            snprintf(added_after, sizeof added_after, "%s", resume);
        } else if (dal != NULL && strcmp(dal, added_after) != 0) {
            /* The whole page shares one date_added (or the server sends no first): only an
             * exclusive bound makes progress, and objects of that instant beyond the page are
             * lost unless the server pages with next. */
            if (r->date_added_first[0] != '\0' && strcmp(r->date_added_first, dal) == 0)
                warn(c,
                     "%s: a whole page was added at %s and the server sends no \"next\": "
                     "objects of that instant beyond the page may be skipped (a smaller "
                     "--limit does not help; a larger one may)",
                     url, dal);
            snprintf(added_after, sizeof added_after, "%s", dal);
        } else {
            rc = ch_error_set(err, CH_EPARSE,
                              "GET %s: malformed envelope: \"more\" is true but there is no "
                              "\"next\" and no new X-TAXII-Date-Added-Last to continue from",
                              url);
            goto cleanup;
        }
    }
    if (page == max_pages)
        rc = ch_error_set(err, CH_ELIMIT,
                          "collection %s: more than %zu pages; stopped (run the "
                          "pull again to continue)",
                          id, max_pages);
    c->st->collections++;
cleanup:
    ch_free(next);
    return rc;
}

static bool matches_selector(const ch_taxii_collection_info *ci, const char *sel)
{
    size_t n = strlen(sel);
    return (ci->id.n == n && memcmp(ci->id.s, sel, n) == 0) ||
           (ci->title.n == n && memcmp(ci->title.s, sel, n) == 0);
}

/* Collections of one API root; *found counts selector matches. */
static int pull_root(client *c, const char *api_root, resp *r, size_t *found, ch_error *err)
{
    char url[URL_MAX + 16];
    ch_taxii_collection_info *cis = NULL;
    char **ids = NULL, **titles = NULL;
    int n = 0, rc;
    snprintf(url, sizeof url, "%scollections/", api_root);
    if ((rc = http_get(c, url, r, err)) < 0)
        return rc;
    c->st->api_roots++;
    cis = ch_calloc(CH_TAXII_MAX_COLLECTIONS, sizeof *cis);
    if (cis == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    ch_error pe = {0};
    n = ch_taxii_parse_collections(c->json, r->body.data, r->body.len, cis,
                                   CH_TAXII_MAX_COLLECTIONS, &pe);
    if (n < 0) {
        rc = ch_error_set(err, n, "GET %s: malformed collections resource: %s", url, pe.msg);
        n = 0;
        goto cleanup;
    }
    /* Copy what we keep: the next request reuses the parser. */
    ids = ch_calloc((size_t)n + 1, sizeof *ids);
    titles = ch_calloc((size_t)n + 1, sizeof *titles);
    if (ids == NULL || titles == NULL) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto cleanup;
    }
    size_t want = 0;
    for (int i = 0; i < n; i++) {
        bool sel = c->o->collection == NULL || matches_selector(&cis[i], c->o->collection);
        if (!sel)
            continue;
        if (!cis[i].can_read) {
            if (c->o->collection != NULL) {
                rc = ch_error_set(err, CH_EIO,
                                  "collection '%s' at %s is not readable (can_read "
                                  "is false)",
                                  c->o->collection, api_root);
                goto cleanup;
            }
            warn(c, "%s: collection %.*s is not readable; skipped", api_root, (int)cis[i].id.n,
                 cis[i].id.s);
            continue;
        }
        ids[i] = ch_strndup(cis[i].id.s, cis[i].id.n);
        titles[i] = ch_strndup(cis[i].title.s, cis[i].title.n);
        if (ids[i] == NULL || titles[i] == NULL) {
            rc = ch_error_set(err, CH_ENOMEM, "out of memory");
            goto cleanup;
        }
        want++;
    }
    *found += want;
    for (int i = 0; i < n; i++) {
        if (ids[i] == NULL)
            continue;
        if ((rc = pull_collection(c, api_root, ids[i], titles[i], r, err)) < 0)
            goto cleanup;
    }
    rc = 0;
cleanup:
    for (int i = 0; ids != NULL && i < n; i++)
        ch_free(ids[i]);
    for (int i = 0; titles != NULL && i < n; i++)
        ch_free(titles[i]);
    ch_free(ids);
    ch_free(titles);
    ch_free(cis);
    return rc;
}

int ch_taxii_pull(const ch_taxii_client_opts *o, const ch_taxii_sink *sink,
                  ch_taxii_pull_stats *stats, ch_error *err)
{
    ch_taxii_pull_stats st_local;
    client c = {0};
    resp r = {0};
    char start[URL_MAX];
    char(*roots)[URL_MAX] = NULL;
    size_t nroots = 0, found = 0;
    int rc;
    if (stats == NULL)
        stats = &st_local;
    memset(stats, 0, sizeof *stats);
    c.o = o;
    c.sink = sink;
    c.st = stats;
    ch_buf_init(&r.body, o->max_response ? o->max_response : DEF_MAX_RESPONSE);
    if (o->url == NULL || *o->url == '\0' || sink == NULL || sink->page == NULL)
        return ch_error_set(err, CH_EUSAGE, "a TAXII pull needs a URL and a sink");
    if (o->token != NULL && (o->user != NULL || o->password != NULL))
        return ch_error_set(err, CH_EUSAGE, "give either --token or --user/--password, not both");
    if ((o->user == NULL) != (o->password == NULL))
        return ch_error_set(err, CH_EUSAGE, "--user and --password go together");
    if ((rc = ch_curl_load(err)) < 0)
        return rc;
    if ((rc = resolve_url(&c, NULL, o->url, strlen(o->url), false, start, sizeof start, err)) < 0)
        return rc;
    if ((rc = set_origin(&c, start, err)) < 0)
        return rc;

    c.curl = curl_easy_init();
    c.json = ch_json_parser_new(o->max_response ? o->max_response : DEF_MAX_RESPONSE, JSON_DEPTH);
    roots = ch_calloc(CH_TAXII_MAX_ROOTS, sizeof *roots);
    if (c.curl == NULL || c.json == NULL || roots == NULL) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto cleanup;
    }
    c.headers = curl_slist_append(NULL, "Accept: " CH_TAXII_MEDIA_TYPE);
    if (c.headers == NULL) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto cleanup;
    }
    CURL *h = c.curl;
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, c.headers);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "coinhound/" CH_VERSION " (TAXII 2.1)");
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (o->ca_file != NULL)
        curl_easy_setopt(h, CURLOPT_CAINFO, o->ca_file);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     o->connect_timeout_ms > 0 ? o->connect_timeout_ms : DEF_CONNECT_MS);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, o->timeout_ms > 0 ? o->timeout_ms : DEF_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, ""); /* gzip when the server offers it */
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c.errbuf);
    if (o->token != NULL) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, CURLAUTH_BEARER);
        curl_easy_setopt(h, CURLOPT_XOAUTH2_BEARER, o->token);
    } else if (o->user != NULL) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERNAME, o->user);
        curl_easy_setopt(h, CURLOPT_PASSWORD, o->password);
    }

    /* The URL names the server (discovery at /taxii2/), a discovery URL or an API root: ask
     * it, and let the answer say which. */
    char disc[URL_MAX + 16];
    snprintf(disc, sizeof disc, "%s%s", start, url_is_bare_server(start) ? "taxii2/" : "");
    if ((rc = http_get(&c, disc, &r, err)) < 0)
        goto cleanup;
    ch_taxii_str rs[CH_TAXII_MAX_ROOTS];
    bool is_root = false;
    ch_error pe = {0};
    int nr = ch_taxii_parse_discovery(c.json, r.body.data, r.body.len, rs, CH_TAXII_MAX_ROOTS,
                                      &is_root, &pe);
    if (nr < 0) {
        rc = ch_error_set(err, nr, "GET %s: malformed discovery resource: %s", disc, pe.msg);
        goto cleanup;
    }
    if (is_root) {
        snprintf(roots[0], URL_MAX, "%s", start);
        nroots = 1;
    } else {
        for (int i = 0; i < nr; i++) {
            ch_error re = {0};
            if (resolve_url(&c, disc, rs[i].s, rs[i].n, true, roots[nroots], URL_MAX, &re) < 0) {
                warn(&c, "%s: API root skipped: %s", disc, re.msg);
                continue;
            }
            nroots++;
        }
        if (nroots == 0) {
            rc = ch_error_set(err, CH_ENOTFOUND, "GET %s: the server lists no usable API root",
                              disc);
            goto cleanup;
        }
    }
    for (size_t i = 0; i < nroots; i++) {
        size_t before = found;
        rc = pull_root(&c, roots[i], &r, &found, err);
        /* An API root we may not read is no reason to skip the others when the user did not
         * name a collection; any other failure stops the pull. */
        if (rc < 0 && o->collection == NULL && nroots > 1 &&
            (stats->last_status == 401 || stats->last_status == 403) && found == before) {
            warn(&c, "%s", err ? err->msg : "API root refused");
            continue;
        }
        if (rc < 0)
            goto cleanup;
        if (o->collection != NULL && found > before)
            break; /* the named collection was found and pulled */
    }
    if (o->collection != NULL && found == 0) {
        rc = ch_error_set(err, CH_ENOTFOUND, "%s: no collection with id or title '%s'", disc,
                          o->collection);
        goto cleanup;
    }
    rc = 0;
cleanup:
    curl_slist_free_all(c.headers);
    if (c.curl != NULL)
        curl_easy_cleanup(c.curl);
    ch_json_parser_free(c.json);
    ch_buf_free(&r.body);
    ch_free(roots);
    return rc;
}
