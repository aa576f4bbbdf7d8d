/*
 * test_taxii.c - the TAXII 2.1 protocol on loopback, in process: coinhound's server answering
 * curl and coinhound's client, and the client against canned medallion-shaped responses
 * (tests/golden/taxii) served by a tiny libmicrohttpd handler. Every server binds 127.0.0.1:0.
 * The client's sink here is an in-memory recorder, so these tests pin the protocol alone; the
 * STIX round trip through reference sets is in test_taxii_roundtrip.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corpora.h"

#include "core/buf.h"
#include "core/json.h"
#include "core/mem.h"
#include "intel/taxii_client.h"
#include "intel/taxii_server.h"

#define T0 1722588804000LL
#define SEC 1000LL

/* ---- an in-memory sink ---------------------------------------------------------------- */

#define MAX_IDS 256

typedef struct rec {
    char added_after[64];
    char *ids[MAX_IDS];
    size_t nids;
    size_t pages;
    size_t fail_on_page; /* 1-based; 0 = never */
    char warnings[4096];
} rec;

static int rec_get(void *ud, const ch_taxii_collection_ref *c, char *buf, size_t cap, ch_error *err)
{
    (void)c;
    (void)err;
    rec *r = ud;
    snprintf(buf, cap, "%s", r->added_after);
    return (int)strlen(r->added_after);
}

static int rec_page(void *ud, const ch_taxii_collection_ref *c, const ch_json_val *objects,
                    size_t nobjects, const char *dal, ch_error *err)
{
    (void)c;
    rec *r = ud;
    if (r->fail_on_page && r->pages + 1 == r->fail_on_page)
        return ch_error_set(err, CH_EIO, "sink refused page %zu", r->pages + 1);
    ch_json_iter it;
    ch_json_val o, v;
    size_t n = 0;
    if (objects != NULL && ch_json_arr_iter(*objects, &it))
        while (ch_json_arr_next(&it, &o)) {
            const char *s;
            size_t len;
            assert_true(ch_json_obj_get(o, "id", 2, &v));
            assert_true(ch_json_get_str(v, &s, &len));
            assert_true(r->nids < MAX_IDS);
            r->ids[r->nids++] = strndup(s, len);
            n++;
        }
    assert_int_equal(n, nobjects);
    if (dal != NULL)
        snprintf(r->added_after, sizeof r->added_after, "%s", dal);
    r->pages++;
    return 0;
}

static void rec_warn(void *ud, const char *msg)
{
    rec *r = ud;
    size_t used = strlen(r->warnings);
    snprintf(r->warnings + used, sizeof r->warnings - used, "%s\n", msg);
}

static void rec_clear(rec *r)
{
    for (size_t i = 0; i < r->nids; i++)
        free(r->ids[i]);
    r->nids = 0;
    r->pages = 0;
}

static ch_taxii_sink sink_of(rec *r)
{
    ch_taxii_sink s = {rec_get, rec_page, rec_warn, r};
    return s;
}

/* ---- coinhound's server with synthetic objects ---------------------------------------- */

static ch_taxii_catalog *catalog_with(size_t n, int64_t t_first)
{
    ch_taxii_catalog *c = NULL;
    ch_error err = {0};
    assert_int_equal(ch_taxii_catalog_new(&c), 0);
    int coll = ch_taxii_catalog_add_collection(c, "c0ffee00-0000-5000-8000-000000000001",
                                               "shared_ips", "test collection", &err);
    assert_true(coll >= 0);
    for (size_t i = 0; i < n; i++) {
        char id[80], json[256];
        snprintf(id, sizeof id, "indicator--00000000-0000-5000-8000-%012zu", i);
        int64_t t = t_first + (int64_t)i * SEC;
        snprintf(json, sizeof json,
                 "{\"type\":\"indicator\",\"spec_version\":\"2.1\",\"id\":\"%s\","
                 "\"pattern\":\"[ipv4-addr:value = '198.51.100.%zu']\",\"pattern_type\":\"stix\"}",
                 id, i + 1);
        assert_int_equal(ch_taxii_catalog_add_object(c, coll, id, t, t, json, strlen(json), &err),
                         0);
    }
    return c;
}

static ch_taxii_server *start_server(ch_taxii_catalog *cat)
{
    ch_taxii_server_opts o = {0};
    o.listen = "127.0.0.1:0";
    o.user = "analyst";
    o.password = "s3cret";
    ch_taxii_server *s = NULL;
    ch_error err = {0};
    int rc = ch_taxii_server_start(&o, cat, &s, &err);
    if (rc < 0)
        fail_msg("server: %s", err.msg);
    assert_true(ch_taxii_server_port(s) > 0);
    return s;
}

typedef struct got {
    long status;
    ch_buf body;
    char www_auth[256];
    char dal[64];
} got;

static size_t got_body(char *p, size_t sz, size_t n, void *ud)
{
    got *g = ud;
    ch_buf_add(&g->body, p, sz * n);
    return sz * n;
}

static size_t got_header(char *p, size_t sz, size_t n, void *ud)
{
    got *g = ud;
    size_t len = sz * n;
    if (len > 17 && strncasecmp(p, "WWW-Authenticate:", 17) == 0)
        snprintf(g->www_auth, sizeof g->www_auth, "%.*s", (int)(len - 17), p + 17);
    if (len > 27 && strncasecmp(p, "X-TAXII-Date-Added-Last: ", 25) == 0)
        snprintf(g->dal, sizeof g->dal, "%.*s", (int)(len - 27), p + 25); /* no CRLF */
    return len;
}

static void http_method(uint16_t port, const char *method, const char *path, const char *accept,
                        const char *userpwd, got *g);

/* GET path on the server with an Accept header (NULL = none) and user:password (NULL = none). */
static void http(uint16_t port, const char *path, const char *accept, const char *userpwd, got *g)
{
    http_method(port, "GET", path, accept, userpwd, g);
}

static void http_method(uint16_t port, const char *method, const char *path, const char *accept,
                        const char *userpwd, got *g)
{
    char url[512], acc[256];
    memset(g, 0, sizeof *g);
    ch_buf_init(&g->body, 1u << 24);
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", (unsigned)port, path);
    CURL *h = curl_easy_init();
    struct curl_slist *hd = NULL;
    if (accept != NULL) {
        snprintf(acc, sizeof acc, "Accept: %s", accept);
        hd = curl_slist_append(hd, acc);
    } else {
        hd = curl_slist_append(hd, "Accept:"); /* no Accept at all */
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "{\"objects\":[]}");
        hd = curl_slist_append(hd, "Content-Type: " CH_TAXII_MEDIA_TYPE);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    if (userpwd != NULL)
        curl_easy_setopt(h, CURLOPT_USERPWD, userpwd);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, got_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, g);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, got_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, g);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &g->status);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
}

static ch_taxii_client_opts client_opts(uint16_t port, char *url, size_t cap)
{
    snprintf(url, cap, "http://127.0.0.1:%u/", (unsigned)port);
    ch_taxii_client_opts o = {0};
    o.url = url;
    o.user = "analyst";
    o.password = "s3cret";
    o.backoff_ms = 1;
    o.backoff_max_ms = 5;
    o.timeout_ms = 10000;
    return o;
}

static void test_server_refuses_to_start_without_credentials(void **state)
{
    (void)state;
    ch_taxii_server_opts o = {0};
    o.listen = "127.0.0.1:0";
    ch_taxii_server *s = NULL;
    ch_error err = {0};
    assert_int_equal(ch_taxii_server_start(&o, catalog_with(1, T0), &s, &err), CH_EUSAGE);
    assert_null(s);
    assert_non_null(strstr(err.msg, "no default credentials"));
    o.user = "u";
    o.password = "";
    assert_int_equal(ch_taxii_server_start(&o, catalog_with(1, T0), &s, &err), CH_EUSAGE);
}

static void test_server_refuses_plain_http_on_a_public_address(void **state)
{
    (void)state;
    ch_taxii_server_opts o = {0};
    o.listen = "0.0.0.0:0";
    o.user = "u";
    o.password = "p";
    ch_taxii_server *s = NULL;
    ch_error err = {0};
    assert_int_equal(ch_taxii_server_start(&o, catalog_with(1, T0), &s, &err), CH_EUSAGE);
    assert_non_null(strstr(err.msg, "TLS"));
}

static void test_server_refuses_a_port_past_65535(void **state)
{
    (void)state;
    /* atoi("4294967296") wraps to 0, which used to start the server on an ephemeral port. */
    static const char *const bad[] = {
        "127.0.0.1:4294967296", "127.0.0.1:65536", "127.0.0.1:18446744073709551616",
        "127.0.0.1:000009443",  "4294967296",      "[::1]:99999",
        "127.0.0.1:-1",         "127.0.0.1:"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ch_taxii_server_opts o = {0};
        o.listen = bad[i];
        o.user = "u";
        o.password = "p";
        ch_taxii_server *s = NULL;
        ch_error err = {0};
        assert_int_equal(ch_taxii_server_start(&o, catalog_with(1, T0), &s, &err), CH_EUSAGE);
        assert_null(s);
        assert_non_null(strstr(err.msg, "bad port"));
    }
}

static void test_request_without_credentials_gets_401_with_challenge(void **state)
{
    (void)state;
    ch_taxii_server *s = start_server(catalog_with(1, T0));
    got g;
    http(ch_taxii_server_port(s), "/taxii2/", CH_TAXII_MEDIA_TYPE, NULL, &g);
    assert_int_equal(g.status, 401);
    assert_non_null(strstr(g.www_auth, "Basic realm="));
    ch_buf_free(&g.body);
    http(ch_taxii_server_port(s), "/taxii2/", CH_TAXII_MEDIA_TYPE, "analyst:wrong", &g);
    assert_int_equal(g.status, 401);
    ch_buf_free(&g.body);
    ch_taxii_server_stop(s);
}

static void test_wrong_accept_gets_406(void **state)
{
    (void)state;
    ch_taxii_server *s = start_server(catalog_with(1, T0));
    uint16_t port = ch_taxii_server_port(s);
    got g;
    http(port, "/taxii2/", "application/json", "analyst:s3cret", &g);
    assert_int_equal(g.status, 406);
    assert_non_null(strstr(g.body.data, "\"http_status\":\"406\""));
    ch_buf_free(&g.body);
    http(port, "/taxii2/", "application/taxii+json;version=2.0", "analyst:s3cret", &g);
    assert_int_equal(g.status, 406);
    ch_buf_free(&g.body);
    http(port, "/taxii2/", NULL, "analyst:s3cret", &g);
    assert_int_equal(g.status, 406);
    ch_buf_free(&g.body);
    http(port, "/taxii2/", "text/html, application/taxii+json", "analyst:s3cret", &g);
    assert_int_equal(g.status, 200);
    ch_buf_free(&g.body);
    /* Issue 16 item 11: wildcards admit TAXII (curl and browsers send them); q=0 refuses. */
    http(port, "/taxii2/", "*/*", "analyst:s3cret", &g);
    assert_int_equal(g.status, 200);
    ch_buf_free(&g.body);
    http(port, "/taxii2/", "application/*;q=0.5", "analyst:s3cret", &g);
    assert_int_equal(g.status, 200);
    ch_buf_free(&g.body);
    http(port, "/taxii2/", "application/taxii+json;version=2.1;q=0", "analyst:s3cret", &g);
    assert_int_equal(g.status, 406);
    ch_buf_free(&g.body);
    http(port, "/taxii2/", "*/*; q=0", "analyst:s3cret", &g);
    assert_int_equal(g.status, 406);
    ch_buf_free(&g.body);
    ch_taxii_server_stop(s);
}

/* Issue 16 item 6: Get Object Versions, match[spec_version], and 403 for Add Objects to a
 * read-only collection. */
static void test_versions_spec_version_and_read_only_post(void **state)
{
    (void)state;
    ch_taxii_server *s = start_server(catalog_with(3, T0));
    uint16_t port = ch_taxii_server_port(s);
    got g;
#define OBJ1                                                                                       \
    "/coinhound/collections/c0ffee00-0000-5000-8000-000000000001/objects/"                         \
    "indicator--00000000-0000-5000-8000-000000000001/"
    http(port, OBJ1 "versions/", CH_TAXII_MEDIA_TYPE, "analyst:s3cret", &g);
    assert_int_equal(g.status, 200);
    assert_non_null(strstr(g.body.data, "\"versions\":[\"2024-08-02T08:53:25.000000Z\"]"));
    assert_non_null(strstr(g.body.data, "\"more\":false"));
    ch_buf_free(&g.body);
    http(port,
         "/coinhound/collections/c0ffee00-0000-5000-8000-000000000001/objects/"
         "indicator--ffffffff-0000-5000-8000-000000000000/versions/",
         CH_TAXII_MEDIA_TYPE, "analyst:s3cret", &g);
    assert_int_equal(g.status, 404);
    ch_buf_free(&g.body);
    http(port,
         "/coinhound/collections/c0ffee00-0000-5000-8000-000000000001/objects/"
         "?match[spec_version]=2.1",
         CH_TAXII_MEDIA_TYPE, "analyst:s3cret", &g);
    assert_int_equal(g.status, 200);
    assert_non_null(strstr(g.body.data, "198.51.100.3"));
    ch_buf_free(&g.body);
    http(port,
         "/coinhound/collections/c0ffee00-0000-5000-8000-000000000001/objects/"
         "?match[spec_version]=2.0",
         CH_TAXII_MEDIA_TYPE, "analyst:s3cret", &g);
    assert_int_equal(g.status, 200);
    assert_non_null(strstr(g.body.data, "\"objects\":[]"));
    ch_buf_free(&g.body);
    http_method(port, "POST",
                "/coinhound/collections/c0ffee00-0000-5000-8000-000000000001/objects/",
                CH_TAXII_MEDIA_TYPE, "analyst:s3cret", &g);
    assert_int_equal(g.status, 403);
    assert_non_null(strstr(g.body.data, "\"http_status\":\"403\""));
    ch_buf_free(&g.body);
    http_method(port, "POST", "/taxii2/", CH_TAXII_MEDIA_TYPE, "analyst:s3cret", &g);
    assert_int_equal(g.status, 405);
    ch_buf_free(&g.body);
    ch_taxii_server_stop(s);
#undef OBJ1
}

static void test_discovery_api_root_and_collections_are_served(void **state)
{
    (void)state;
    ch_taxii_server *s = start_server(catalog_with(3, T0));
    uint16_t port = ch_taxii_server_port(s);
    got g;
    http(port, "/taxii2/", CH_TAXII_MEDIA_TYPE, "analyst:s3cret", &g);
    assert_int_equal(g.status, 200);
    assert_non_null(strstr(g.body.data, "/coinhound/\"]"));
    ch_buf_free(&g.body);
    http(port, "/coinhound/", CH_TAXII_MEDIA_TYPE, "analyst:s3cret", &g);
    assert_int_equal(g.status, 200);
    assert_non_null(strstr(g.body.data, "\"versions\":[\"" CH_TAXII_MEDIA_TYPE "\"]"));
    ch_buf_free(&g.body);
    http(port, "/coinhound/collections/", CH_TAXII_MEDIA_TYPE, "analyst:s3cret", &g);
    assert_int_equal(g.status, 200);
    assert_non_null(strstr(g.body.data, "\"title\":\"shared_ips\""));
    assert_non_null(strstr(g.body.data, "\"can_write\":false"));
    ch_buf_free(&g.body);
    http(port, "/coinhound/collections/c0ffee00-0000-5000-8000-000000000001/", CH_TAXII_MEDIA_TYPE,
         "analyst:s3cret", &g);
    assert_int_equal(g.status, 200);
    ch_buf_free(&g.body);
    ch_taxii_server_stop(s);
}

static void test_unknown_root_and_collection_get_404(void **state)
{
    (void)state;
    ch_taxii_server *s = start_server(catalog_with(1, T0));
    uint16_t port = ch_taxii_server_port(s);
    got g;
    http(port, "/api9/", CH_TAXII_MEDIA_TYPE, "analyst:s3cret", &g);
    assert_int_equal(g.status, 404);
    ch_buf_free(&g.body);
    http(port, "/coinhound/collections/nope/objects/", CH_TAXII_MEDIA_TYPE, "analyst:s3cret", &g);
    assert_int_equal(g.status, 404);
    assert_non_null(strstr(g.body.data, "unknown collection"));
    ch_buf_free(&g.body);
    http(port,
         "/coinhound/collections/c0ffee00-0000-5000-8000-000000000001/objects/"
         "indicator--ffffffff-0000-5000-8000-000000000000/",
         CH_TAXII_MEDIA_TYPE, "analyst:s3cret", &g);
    assert_int_equal(g.status, 404);
    ch_buf_free(&g.body);
    ch_taxii_server_stop(s);
}

static void test_manifest_and_object_by_id(void **state)
{
    (void)state;
    ch_taxii_server *s = start_server(catalog_with(3, T0));
    uint16_t port = ch_taxii_server_port(s);
    got g;
    http(port, "/coinhound/collections/c0ffee00-0000-5000-8000-000000000001/manifest/?limit=2",
         CH_TAXII_MEDIA_TYPE, "analyst:s3cret", &g);
    assert_int_equal(g.status, 200);
    assert_non_null(strstr(g.body.data, "\"date_added\":\"2024-08-02T08:53:24.000000Z\""));
    assert_non_null(strstr(g.body.data, "\"more\":true"));
    assert_string_equal(g.dal, "2024-08-02T08:53:25.000000Z");
    ch_buf_free(&g.body);
    http(port,
         "/coinhound/collections/c0ffee00-0000-5000-8000-000000000001/objects/"
         "indicator--00000000-0000-5000-8000-000000000001/",
         CH_TAXII_MEDIA_TYPE, "analyst:s3cret", &g);
    assert_int_equal(g.status, 200);
    assert_non_null(strstr(g.body.data, "198.51.100.2"));
    assert_null(strstr(g.body.data, "198.51.100.1'"));
    ch_buf_free(&g.body);
    http(port,
         "/coinhound/collections/c0ffee00-0000-5000-8000-000000000001/objects/"
         "?match[type]=malware",
         CH_TAXII_MEDIA_TYPE, "analyst:s3cret", &g);
    assert_int_equal(g.status, 200);
    assert_non_null(strstr(g.body.data, "\"objects\":[]"));
    ch_buf_free(&g.body);
    http(port, "/coinhound/collections/c0ffee00-0000-5000-8000-000000000001/objects/?limit=0",
         CH_TAXII_MEDIA_TYPE, "analyst:s3cret", &g);
    assert_int_equal(g.status, 400);
    ch_buf_free(&g.body);
    ch_taxii_server_stop(s);
}

static void test_client_pages_with_limit_2_across_pages(void **state)
{
    (void)state;
    ch_taxii_server *s = start_server(catalog_with(5, T0));
    char url[128];
    ch_taxii_client_opts o = client_opts(ch_taxii_server_port(s), url, sizeof url);
    o.page_limit = 2;
    rec r = {0};
    ch_taxii_sink sink = sink_of(&r);
    ch_taxii_pull_stats st;
    ch_error err = {0};
    int rc = ch_taxii_pull(&o, &sink, &st, &err);
    if (rc < 0)
        fail_msg("%s", err.msg);
    assert_int_equal(r.pages, 3);
    assert_int_equal(r.nids, 5);
    for (size_t i = 0; i < 5; i++) {
        char id[80];
        snprintf(id, sizeof id, "indicator--00000000-0000-5000-8000-%012zu", i);
        assert_string_equal(r.ids[i], id);
    }
    assert_string_equal(r.added_after, "2024-08-02T08:53:27.999999Z");
    assert_int_equal(st.collections, 1);
    assert_non_null(strstr(r.warnings, "plain http"));
    rec_clear(&r);
    ch_taxii_server_stop(s);
}

static void test_added_after_pull_fetches_only_new_objects(void **state)
{
    (void)state;
    ch_taxii_server *s = start_server(catalog_with(3, T0));
    char url[128];
    ch_taxii_client_opts o = client_opts(ch_taxii_server_port(s), url, sizeof url);
    rec r = {0};
    ch_taxii_sink sink = sink_of(&r);
    ch_error err = {0};
    assert_int_equal(ch_taxii_pull(&o, &sink, NULL, &err), 0);
    assert_int_equal(r.nids, 3);
    rec_clear(&r);
    /* Nothing new: one page holding only the last instant again (the bound is inclusive, so
     * that objects sharing it are never skipped), added_after unchanged. */
    assert_int_equal(ch_taxii_pull(&o, &sink, NULL, &err), 0);
    assert_int_equal(r.nids, 1);
    assert_string_equal(r.ids[0], "indicator--00000000-0000-5000-8000-000000000002");
    assert_string_equal(r.added_after, "2024-08-02T08:53:25.999999Z");
    rec_clear(&r);
    /* Two more objects published later: only they come (after the last instant again). */
    ch_taxii_server_publish(s, catalog_with(5, T0));
    o.page_limit = 1;
    assert_int_equal(ch_taxii_pull(&o, &sink, NULL, &err), 0);
    assert_int_equal(r.nids, 3);
    assert_string_equal(r.ids[1], "indicator--00000000-0000-5000-8000-000000000003");
    assert_string_equal(r.ids[2], "indicator--00000000-0000-5000-8000-000000000004");
    rec_clear(&r);
    ch_taxii_server_stop(s);
}

static void test_client_reports_401_with_its_reason(void **state)
{
    (void)state;
    ch_taxii_server *s = start_server(catalog_with(1, T0));
    char url[128];
    ch_taxii_client_opts o = client_opts(ch_taxii_server_port(s), url, sizeof url);
    o.password = "wrong";
    rec r = {0};
    ch_taxii_sink sink = sink_of(&r);
    ch_taxii_pull_stats st;
    ch_error err = {0};
    assert_int_equal(ch_taxii_pull(&o, &sink, &st, &err), CH_EIO);
    assert_int_equal(st.last_status, 401);
    assert_non_null(strstr(err.msg, "401 Unauthorized"));
    assert_non_null(strstr(err.msg, "/taxii2/"));
    assert_int_equal(st.requests, 1); /* 401 is not retried */
    ch_taxii_server_stop(s);
}

static void test_client_refuses_plain_http_to_a_remote_host(void **state)
{
    (void)state;
    ch_taxii_client_opts o = {0};
    o.url = "http://taxii.example.com/taxii2/";
    rec r = {0};
    ch_taxii_sink sink = sink_of(&r);
    ch_error err = {0};
    assert_int_equal(ch_taxii_pull(&o, &sink, NULL, &err), CH_EUSAGE);
    assert_non_null(strstr(err.msg, "https"));
    o.url = "https://taxii.example.com/";
    o.token = "t";
    o.user = "u";
    o.password = "p";
    assert_int_equal(ch_taxii_pull(&o, &sink, NULL, &err), CH_EUSAGE);
    assert_true(ch_taxii_url_is_loopback("http://[::1]:9443/taxii2/"));
    assert_true(ch_taxii_url_is_loopback("http://127.0.0.2/"));
    assert_false(ch_taxii_url_is_loopback("http://128.0.0.1/"));
}

/* ---- canned responses ------------------------------------------------------------------ */

typedef struct route {
    const char *path;
    const char *query; /* substring the query must contain; NULL = any */
    unsigned status;
    const char *body; /* text, with BASE replaced by the server's base URL */
    const char *file; /* or a file under tests/golden/taxii */
    const char *date_added_last;
    const char *content_type; /* NULL = TAXII 2.1 */
    unsigned fail_first;      /* answer 503 this many times first */
    unsigned hits;
} route;

typedef struct canned {
    struct MHD_Daemon *d;
    uint16_t port;
    route *routes;
    size_t nroutes;
    char log[8192]; /* "path?query\n" per request */
    char base[64];
} canned;

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    ch_buf *b = cls;
    ch_buf_printf(b, "%s%s=%s", b->len ? "&" : "", key, value ? value : "");
    return MHD_YES;
}

static char *read_golden(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/tests/golden/taxii/%s", CH_SOURCE_DIR, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strdup(buf);
}

static char *replace_base(const char *text, const char *base)
{
    ch_buf b;
    ch_buf_init(&b, 1u << 24);
    const char *p = text, *q;
    while ((q = strstr(p, "BASE")) != NULL) {
        ch_buf_add(&b, p, (size_t)(q - p));
        ch_buf_adds(&b, base);
        p = q + 4;
    }
    ch_buf_adds(&b, p);
    return b.data;
}

static enum MHD_Result canned_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **con_cls)
{
    (void)method, (void)version, (void)upload_data, (void)upload_data_size, (void)con_cls;
    canned *c = cls;
    ch_buf q;
    ch_buf_init(&q, 4096);
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_arg, &q);
    size_t used = strlen(c->log);
    snprintf(c->log + used, sizeof c->log - used, "%s?%s\n", url, q.data ? q.data : "");
    route *hit = NULL;
    for (size_t i = 0; i < c->nroutes && hit == NULL; i++) {
        route *r = &c->routes[i];
        if (strcmp(r->path, url) == 0 &&
            (r->query == NULL || (q.data != NULL && strstr(q.data, r->query) != NULL)))
            hit = r;
    }
    ch_buf_free(&q);
    unsigned status = 404;
    char *body = NULL;
    if (hit != NULL && hit->fail_first > hit->hits) {
        hit->hits++;
        status = 503;
        body = strdup("{\"title\":\"busy\"}");
    } else if (hit != NULL) {
        hit->hits++;
        status = hit->status;
        char *raw = hit->file ? read_golden(hit->file) : strdup(hit->body);
        body = replace_base(raw, c->base);
        free(raw);
    } else {
        body = strdup("{\"title\":\"not found\",\"http_status\":\"404\"}");
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, "Content-Type",
                            hit && hit->content_type ? hit->content_type : CH_TAXII_MEDIA_TYPE);
    if (hit != NULL && hit->date_added_last != NULL && status == 200) {
        /* "first|last" sends both headers. */
        const char *bar = strchr(hit->date_added_last, '|');
        if (bar != NULL) {
            char first[64];
            snprintf(first, sizeof first, "%.*s", (int)(bar - hit->date_added_last),
                     hit->date_added_last);
            MHD_add_response_header(resp, "X-TAXII-Date-Added-First", first);
            MHD_add_response_header(resp, "X-TAXII-Date-Added-Last", bar + 1);
        } else {
            MHD_add_response_header(resp, "X-TAXII-Date-Added-Last", hit->date_added_last);
        }
    }
    enum MHD_Result ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void canned_start(canned *c, route *routes, size_t n)
{
    memset(c, 0, sizeof *c);
    c->routes = routes;
    c->nroutes = n;
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL, NULL,
                            canned_handler, c, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_END);
    assert_non_null(c->d);
    c->port = MHD_get_daemon_info(c->d, MHD_DAEMON_INFO_BIND_PORT)->port;
    snprintf(c->base, sizeof c->base, "http://127.0.0.1:%u", (unsigned)c->port);
}

#define COLL "/trustgroup1/collections/91a7b528-80eb-42ed-a74d-c6fbd5a26116/objects/"

static void test_client_against_medallion_shaped_responses(void **state)
{
    (void)state;
    route routes[] = {
        {"/taxii2/", NULL, 200, NULL, "discovery.json", NULL, NULL, 0, 0},
        {"/trustgroup1/collections/", NULL, 200, NULL, "collections.json", NULL, NULL, 0, 0},
        {"/api1/collections/", NULL, 200, "{}", NULL, NULL, NULL, 0, 0},
        {COLL, "next=b0a3f0a6", 200, NULL, "objects_page2.json", "2016-11-03T12:30:59.000000Z",
         NULL, 0, 0},
        {COLL, NULL, 200, NULL, "objects_page1.json", "2016-11-01T03:04:05.000000Z", NULL, 0, 0},
    };
    canned c;
    canned_start(&c, routes, sizeof routes / sizeof routes[0]);
    char url[128];
    ch_taxii_client_opts o = client_opts(c.port, url, sizeof url);
    rec r = {0};
    ch_taxii_sink sink = sink_of(&r);
    ch_taxii_pull_stats st;
    ch_error err = {0};
    int rc = ch_taxii_pull(&o, &sink, &st, &err);
    if (rc < 0)
        fail_msg("%s\n%s", err.msg, c.log);
    assert_int_equal(r.nids, 3);
    assert_string_equal(r.ids[0], "indicator--cd981c25-8042-4166-8945-51178443bdac");
    assert_string_equal(r.ids[2], "indicator--6770298f-0fd8-471a-ab8c-1c658a46574e");
    /* Resume just before the last date_added: objects sharing it may follow. */
    assert_string_equal(r.added_after, "2016-11-03T12:30:58.999999Z");
    assert_int_equal(st.api_roots, 2); /* trustgroup1 (default) and api1; elsewhere skipped */
    assert_non_null(strstr(r.warnings, "elsewhere.example"));
    assert_non_null(strstr(r.warnings, "472c94ae")); /* unreadable collection skipped */
    assert_non_null(strstr(c.log, "next=b0a3f0a6-8f5b-4f8e-9c4e-2f0a1c5a9d11"));
    /* The next pull starts after what was stored. */
    rec_clear(&r);
    routes[3].query = "added_after=2016-11-03T12:30:58.999999Z";
    routes[3].file = NULL;
    routes[3].body = "{}";
    o.collection = "High Value Indicator Collection";
    assert_int_equal(ch_taxii_pull(&o, &sink, &st, &err), 0);
    assert_int_equal(r.nids, 0);
    assert_int_equal(r.pages, 1);
    MHD_stop_daemon(c.d);
}

static void test_client_pull_of_unknown_collection_names_it(void **state)
{
    (void)state;
    route routes[] = {
        {"/taxii2/", NULL, 200, NULL, "discovery.json", NULL, NULL, 0, 0},
        {"/trustgroup1/collections/", NULL, 200, NULL, "collections.json", NULL, NULL, 0, 0},
        {"/api1/collections/", NULL, 200, "{\"collections\":[]}", NULL, NULL, NULL, 0, 0},
    };
    canned c;
    canned_start(&c, routes, sizeof routes / sizeof routes[0]);
    char url[128];
    ch_taxii_client_opts o = client_opts(c.port, url, sizeof url);
    o.collection = "no-such-collection";
    rec r = {0};
    ch_taxii_sink sink = sink_of(&r);
    ch_error err = {0};
    assert_int_equal(ch_taxii_pull(&o, &sink, NULL, &err), CH_ENOTFOUND);
    assert_non_null(strstr(err.msg, "no-such-collection"));
    MHD_stop_daemon(c.d);
}

static void test_client_reports_403_clearly(void **state)
{
    (void)state;
    route routes[] = {
        {"/taxii2/", NULL, 403, "{\"title\":\"Forbidden\",\"description\":\"not in trust group\"}",
         NULL, NULL, NULL, 0, 0},
    };
    canned c;
    canned_start(&c, routes, 1);
    char url[128];
    ch_taxii_client_opts o = client_opts(c.port, url, sizeof url);
    rec r = {0};
    ch_taxii_sink sink = sink_of(&r);
    ch_taxii_pull_stats st;
    ch_error err = {0};
    assert_int_equal(ch_taxii_pull(&o, &sink, &st, &err), CH_EIO);
    assert_int_equal(st.last_status, 403);
    assert_non_null(strstr(err.msg, "403 Forbidden"));
    assert_non_null(strstr(err.msg, "not in trust group"));
    MHD_stop_daemon(c.d);
}

static void test_client_rejects_malformed_envelope_naming_url(void **state)
{
    (void)state;
    route routes[] = {
        {"/api1/", NULL, 200, NULL, "api_root.json", NULL, NULL, 0, 0},
        {"/api1/collections/", NULL, 200, "{\"collections\":[{\"id\":\"c1\",\"can_read\":true}]}",
         NULL, NULL, NULL, 0, 0},
        {"/api1/collections/c1/objects/", NULL, 200, "{\"more\":\"yes\",\"objects\":[]}", NULL,
         NULL, NULL, 0, 0},
    };
    canned c;
    canned_start(&c, routes, 3);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/api1/", (unsigned)c.port);
    ch_taxii_client_opts o = client_opts(c.port, url, 0);
    o.url = url;
    rec r = {0};
    ch_taxii_sink sink = sink_of(&r);
    ch_error err = {0};
    assert_int_equal(ch_taxii_pull(&o, &sink, NULL, &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, "/api1/collections/c1/objects/"));
    assert_non_null(strstr(err.msg, "\"more\" is not a boolean"));
    /* HTML where JSON was expected (a login page, a proxy) is refused the same way. */
    routes[2].body = "<html>login</html>";
    routes[2].content_type = "text/html";
    assert_int_equal(ch_taxii_pull(&o, &sink, NULL, &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, "text/html"));
    /* more:true without next or a new date: no way on, so an error rather than a loop. */
    routes[2].body = "{\"more\":true,\"objects\":[]}";
    routes[2].content_type = NULL;
    assert_int_equal(ch_taxii_pull(&o, &sink, NULL, &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, "no \"next\""));
    MHD_stop_daemon(c.d);
}

static void test_client_retries_503_then_succeeds(void **state)
{
    (void)state;
    route routes[] = {
        {"/api1/", NULL, 200, NULL, "api_root.json", NULL, NULL, 2, 0},
        {"/api1/collections/", NULL, 200, "{\"collections\":[{\"id\":\"c1\",\"can_read\":true}]}",
         NULL, NULL, NULL, 0, 0},
        {"/api1/collections/c1/objects/", NULL, 200, NULL, "objects_page2.json",
         "2016-11-03T12:30:59.000000Z", NULL, 0, 0},
    };
    canned c;
    canned_start(&c, routes, 3);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/api1/", (unsigned)c.port);
    ch_taxii_client_opts o = client_opts(c.port, url, 0);
    o.url = url;
    rec r = {0};
    ch_taxii_sink sink = sink_of(&r);
    ch_taxii_pull_stats st;
    ch_error err = {0};
    assert_int_equal(ch_taxii_pull(&o, &sink, &st, &err), 0);
    assert_int_equal(st.retries, 2);
    assert_int_equal(r.nids, 1);
    rec_clear(&r);
    /* Retries are bounded: a server that stays down fails with the status. */
    routes[0].fail_first = 100;
    routes[0].hits = 0;
    o.max_retries = 3;
    assert_int_equal(ch_taxii_pull(&o, &sink, &st, &err), CH_EIO);
    assert_int_equal(st.requests, 4);
    assert_int_equal(st.last_status, 503);
    assert_non_null(strstr(err.msg, "503"));
    MHD_stop_daemon(c.d);
}

static void test_failed_pull_keeps_pages_and_resumes(void **state)
{
    (void)state;
    route routes[] = {
        {"/api1/", NULL, 200, NULL, "api_root.json", NULL, NULL, 0, 0},
        {"/api1/collections/", NULL, 200, "{\"collections\":[{\"id\":\"c1\",\"can_read\":true}]}",
         NULL, NULL, NULL, 0, 0},
        {"/api1/collections/c1/objects/", "next=", 500, "{\"title\":\"boom\"}", NULL, NULL, NULL, 0,
         0},
        {"/api1/collections/c1/objects/", "added_after=2016-11-01", 200, NULL, "objects_page2.json",
         "2016-11-03T12:30:59.000000Z", NULL, 0, 0},
        {"/api1/collections/c1/objects/", NULL, 200, NULL, "objects_page1.json",
         "2016-11-01T03:04:05.000000Z", NULL, 0, 0},
    };
    canned c;
    canned_start(&c, routes, 5);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/api1/", (unsigned)c.port);
    ch_taxii_client_opts o = client_opts(c.port, url, 0);
    o.url = url;
    o.no_retry = true;
    rec r = {0};
    ch_taxii_sink sink = sink_of(&r);
    ch_error err = {0};
    assert_int_equal(ch_taxii_pull(&o, &sink, NULL, &err), CH_EIO);
    assert_non_null(strstr(err.msg, "500"));
    assert_non_null(strstr(err.msg, "boom"));
    assert_int_equal(r.nids, 2); /* page 1 kept */
    assert_string_equal(r.added_after, "2016-11-01T03:04:04.999999Z");
    /* The second pull resumes after page 1 (added_after), with no next cursor. */
    assert_int_equal(ch_taxii_pull(&o, &sink, NULL, &err), 0);
    assert_int_equal(r.nids, 3);
    assert_string_equal(r.ids[2], "indicator--6770298f-0fd8-471a-ab8c-1c658a46574e");
    assert_string_equal(r.added_after, "2016-11-03T12:30:58.999999Z");
    rec_clear(&r);
    MHD_stop_daemon(c.d);
}

static size_t distinct_ids(const rec *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->nids; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(r->ids[i], r->ids[j]) == 0;
        n += !seen;
    }
    return n;
}

/* A server that pages by date only (no "next") and gives several objects one date_added: the
 * client pages on from just before a page's last date_added, so C (added with B) comes too. */
static void test_date_paging_without_next_keeps_objects_sharing_a_timestamp(void **state)
{
    (void)state;
#define OBJ(x) "{\"type\":\"indicator\",\"id\":\"indicator--" x "\"}"
    route routes[] = {
        {"/api1/", NULL, 200, NULL, "api_root.json", NULL, NULL, 0, 0},
        {"/api1/collections/", NULL, 200, "{\"collections\":[{\"id\":\"c1\",\"can_read\":true}]}",
         NULL, NULL, NULL, 0, 0},
        {"/api1/collections/c1/objects/", "added_after=2024-01-01T00:00:01.999999Z", 200,
         "{\"more\":false,\"objects\":[" OBJ("b") "," OBJ("c") "," OBJ("d") "]}", NULL,
         "2024-01-01T00:00:02.000000Z|2024-01-01T00:00:03.000000Z", NULL, 0, 0},
        {"/api1/collections/c1/objects/", NULL, 200,
         "{\"more\":true,\"objects\":[" OBJ("a") "," OBJ("b") "]}", NULL,
         "2024-01-01T00:00:01.000000Z|2024-01-01T00:00:02.000000Z", NULL, 0, 0},
    };
#undef OBJ
    canned c;
    canned_start(&c, routes, 4);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/api1/", (unsigned)c.port);
    ch_taxii_client_opts o = client_opts(c.port, url, 0);
    o.url = url;
    o.no_retry = true;
    rec r = {0};
    ch_taxii_sink sink = sink_of(&r);
    ch_error err = {0};
    int rc = ch_taxii_pull(&o, &sink, NULL, &err);
    if (rc < 0)
        fail_msg("%s\n%s", err.msg, c.log);
    assert_int_equal(distinct_ids(&r), 4);
    rec_clear(&r);
    MHD_stop_daemon(c.d);
}

static void test_sink_failure_stops_the_pull_with_its_error(void **state)
{
    (void)state;
    ch_taxii_server *s = start_server(catalog_with(4, T0));
    char url[128];
    ch_taxii_client_opts o = client_opts(ch_taxii_server_port(s), url, sizeof url);
    o.page_limit = 2;
    rec r = {0};
    r.fail_on_page = 2;
    ch_taxii_sink sink = sink_of(&r);
    ch_error err = {0};
    assert_int_equal(ch_taxii_pull(&o, &sink, NULL, &err), CH_EIO);
    assert_non_null(strstr(err.msg, "sink refused page 2"));
    assert_int_equal(r.nids, 2);
    assert_string_equal(r.added_after, "2024-08-02T08:53:24.999999Z");
    r.fail_on_page = 0;
    assert_int_equal(ch_taxii_pull(&o, &sink, NULL, &err), 0);
    assert_int_equal(r.nids, 5); /* the second object again, then the other two */
    assert_int_equal(distinct_ids(&r), 4);
    rec_clear(&r);
    ch_taxii_server_stop(s);
}

/* Issue 16 item 1: 29 objects, 24 of them added in one millisecond (one load), pulled 4 per
 * page. A pull that stops at page k (a 500, a dead proxy, a full disk: the page is not stored)
 * and is then run again must end with all 29, whichever page it stopped at. */
static void test_pull_interrupted_at_every_page_in_turn_ends_with_every_object(void **state)
{
    (void)state;
    ch_taxii_catalog *c = NULL;
    ch_error err = {0};
    assert_int_equal(ch_taxii_catalog_new(&c), 0);
    int coll = ch_taxii_catalog_add_collection(c, "c0ffee00-0000-5000-8000-000000000002", "load",
                                               NULL, &err);
    assert_true(coll >= 0);
    for (size_t i = 0; i < 29; i++) {
        char id[80], json[256];
        snprintf(id, sizeof id, "indicator--00000000-0000-5000-8000-%012zu", i);
        int64_t t = i < 3 ? T0 + (int64_t)i : i < 27 ? T0 + 500 : T0 + 500 + (int64_t)i;
        snprintf(json, sizeof json,
                 "{\"type\":\"indicator\",\"spec_version\":\"2.1\",\"id\":\"%s\"}", id);
        assert_int_equal(ch_taxii_catalog_add_object(c, coll, id, t, t, json, strlen(json), &err),
                         0);
    }
    ch_taxii_server *s = start_server(c);
    char url[128];
    ch_taxii_client_opts o = client_opts(ch_taxii_server_port(s), url, sizeof url);
    o.page_limit = 4;
    for (size_t k = 1; k <= 8; k++) {
        rec r = {0};
        r.fail_on_page = k;
        ch_taxii_sink sink = sink_of(&r);
        assert_int_equal(ch_taxii_pull(&o, &sink, NULL, &err), CH_EIO);
        assert_int_equal(r.nids, (k - 1) * 4);
        r.fail_on_page = 0;
        r.pages = 0;
        assert_int_equal(ch_taxii_pull(&o, &sink, NULL, &err), 0);
        if (distinct_ids(&r) != 29)
            fail_msg("stopped at page %zu: %zu of 29 objects after the next pull", k,
                     distinct_ids(&r));
        /* A later pull finds nothing new (what it fetches again is the last instant only). */
        size_t before = distinct_ids(&r);
        assert_int_equal(ch_taxii_pull(&o, &sink, NULL, &err), 0);
        assert_int_equal(distinct_ids(&r), before);
        rec_clear(&r);
    }
    ch_taxii_server_stop(s);
}

/* ---- parsers ------------------------------------------------------------------------------ */

static void test_envelope_parser_accepts_empty_and_rejects_bad_objects(void **state)
{
    (void)state;
    ch_json_parser *p = ch_json_parser_new(1 << 20, 64);
    ch_taxii_envelope env;
    ch_error err = {0};
    assert_int_equal(ch_taxii_parse_envelope(p, "{}", 2, &env, &err), 0);
    assert_false(env.more);
    assert_int_equal(env.nobjects, 0);
    const char *bad = "{\"objects\":[{\"type\":\"indicator\"}]}";
    assert_int_equal(ch_taxii_parse_envelope(p, bad, strlen(bad), &env, &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, "no \"id\""));
    assert_int_equal(ch_taxii_parse_envelope(p, "[1]", 3, &env, &err), CH_EPARSE);
    assert_int_equal(ch_taxii_parse_envelope(p, "", 0, &env, &err), CH_EPARSE);
    ch_json_parser_free(p);
}

static void test_timestamps_have_microseconds(void **state)
{
    (void)state;
    char b[40];
    ch_taxii_format_timestamp(T0, b);
    assert_string_equal(b, "2024-08-02T08:53:24.000000Z");
    ch_taxii_format_timestamp(T0 + 123, b);
    assert_string_equal(b, "2024-08-02T08:53:24.123000Z");
}

/* The whole medallion test collection, served as one canned page, reaches the sink intact. */
static void test_client_pulls_the_medallion_corpus_collection(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/stix_taxii/medallion/default_data.json", CH_CORPORA_DIR);
    ch_test_need_corpora(path);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    ch_buf raw;
    ch_buf_init(&raw, 1u << 26);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        assert_int_equal(ch_buf_add(&raw, chunk, n), 0);
    fclose(f);
    ch_json_parser *p = ch_json_parser_new(1u << 26, 128);
    ch_json_val root, tg, colls, coll, v;
    ch_error err = {0};
    assert_int_equal(ch_json_parse(p, raw.data, raw.len, raw.cap, &root, &err), 0);
    assert_true(ch_json_obj_get(root, "trustgroup1", 11, &tg));
    assert_true(ch_json_obj_get(tg, "collections", 11, &colls));
    ch_json_iter it;
    ch_json_arr_iter(colls, &it);
    ch_buf env;
    ch_buf_init(&env, 1u << 26);
    size_t want = 0;
    while (ch_json_arr_next(&it, &coll)) {
        const char *id = NULL;
        size_t idn = 0;
        assert_true(ch_json_obj_get(coll, "id", 2, &v) && ch_json_get_str(v, &id, &idn));
        if (idn != 36 || memcmp(id, "91a7b528-80eb-42ed-a74d-c6fbd5a26116", 36) != 0)
            continue;
        assert_true(ch_json_obj_get(coll, "objects", 7, &v));
        ch_buf_adds(&env, "{\"more\":false,\"objects\":");
        assert_int_equal(ch_json_write(v, &env), 0);
        ch_buf_adds(&env, "}");
        ch_json_iter oi;
        ch_json_val o;
        ch_json_arr_iter(v, &oi);
        while (ch_json_arr_next(&oi, &o))
            want++;
    }
    assert_true(want > 0);
    route routes[] = {
        {"/trustgroup1/", NULL, 200, NULL, "api_root.json", NULL, NULL, 0, 0},
        {"/trustgroup1/collections/", NULL, 200, NULL, "collections.json", NULL, NULL, 0, 0},
        {COLL, NULL, 200, env.data, NULL, "2017-01-27T13:49:59.997000Z", NULL, 0, 0},
    };
    canned c;
    canned_start(&c, routes, 3);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/trustgroup1/", (unsigned)c.port);
    ch_taxii_client_opts o = client_opts(c.port, url, 0);
    o.url = url;
    rec r = {0};
    ch_taxii_sink sink = sink_of(&r);
    assert_int_equal(ch_taxii_pull(&o, &sink, NULL, &err), 0);
    assert_int_equal(r.nids, want);
    rec_clear(&r);
    MHD_stop_daemon(c.d);
    ch_buf_free(&env);
    ch_buf_free(&raw);
    ch_json_parser_free(p);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_refuses_to_start_without_credentials),
        cmocka_unit_test(test_server_refuses_plain_http_on_a_public_address),
        cmocka_unit_test(test_request_without_credentials_gets_401_with_challenge),
        cmocka_unit_test(test_wrong_accept_gets_406),
        cmocka_unit_test(test_versions_spec_version_and_read_only_post),
        cmocka_unit_test(test_discovery_api_root_and_collections_are_served),
        cmocka_unit_test(test_unknown_root_and_collection_get_404),
        cmocka_unit_test(test_manifest_and_object_by_id),
        cmocka_unit_test(test_client_pages_with_limit_2_across_pages),
        cmocka_unit_test(test_added_after_pull_fetches_only_new_objects),
        cmocka_unit_test(test_client_reports_401_with_its_reason),
        cmocka_unit_test(test_client_refuses_plain_http_to_a_remote_host),
        cmocka_unit_test(test_client_against_medallion_shaped_responses),
        cmocka_unit_test(test_client_pull_of_unknown_collection_names_it),
        cmocka_unit_test(test_client_reports_403_clearly),
        cmocka_unit_test(test_client_rejects_malformed_envelope_naming_url),
        cmocka_unit_test(test_client_retries_503_then_succeeds),
        cmocka_unit_test(test_failed_pull_keeps_pages_and_resumes),
        cmocka_unit_test(test_sink_failure_stops_the_pull_with_its_error),
        cmocka_unit_test(test_date_paging_without_next_keeps_objects_sharing_a_timestamp),
        cmocka_unit_test(test_pull_interrupted_at_every_page_in_turn_ends_with_every_object),
        cmocka_unit_test(test_envelope_parser_accepts_empty_and_rejects_bad_objects),
        cmocka_unit_test(test_timestamps_have_microseconds),
        cmocka_unit_test(test_server_refuses_a_port_past_65535),
        cmocka_unit_test(test_client_pulls_the_medallion_corpus_collection),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
