/*
 * test_firehose.c - Amazon Data Firehose HTTP endpoint delivery as AWS documents it: the
 * example request (two base64 records) parses into its two payloads with requestId and
 * timestamp; the answers have the documented shape; CloudWatch Logs subscription records
 * (gzip'd DATA_MESSAGE documents, concatenated ones, CONTROL_MESSAGE health checks) unpack
 * into batches the parsers read as CloudTrail, VPC Flow Logs and Route 53 Resolver records;
 * malformed requests are refused with a reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/readfile.h"
#include "ingest/batch.h"
#include "ingest/firehose.h"

typedef struct got {
    int n;
    char data[8][8192];
    size_t len[8];
    ch_firehose_kind kind[8];
    size_t messages[8];
    char origin[8][256];
} got;

static int collect(void *ud, const ch_firehose_payload *p)
{
    got *g = ud;
    if (g->n < 8) {
        size_t n = p->len < 8191 ? p->len : 8191;
        if (p->data)
            memcpy(g->data[g->n], p->data, n);
        g->data[g->n][n] = '\0';
        g->len[g->n] = p->len;
        g->kind[g->n] = p->kind;
        g->messages[g->n] = p->messages;
        snprintf(g->origin[g->n], sizeof g->origin[0], "%s", p->origin);
    }
    g->n++;
    return 0;
}

static size_t gz(const char *in, size_t n, unsigned char *out, size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t len = z.total_out;
    deflateEnd(&z);
    return len;
}

static void b64(const unsigned char *in, size_t n, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        out[o++] = t[v >> 18 & 63];
        out[o++] = t[v >> 12 & 63];
        out[o++] = i + 1 < n ? t[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? t[v & 63] : '=';
    }
    out[o] = '\0';
}

/* A Firehose request whose one record is the gzip of `doc`. */
static char *request_with_gzip_record(const char *doc, size_t n)
{
    unsigned char *z = malloc(n + 1024);
    size_t zn = gz(doc, n, z, n + 1024);
    char *b = malloc(zn * 2 + 16);
    b64(z, zn, b);
    char *req = malloc(strlen(b) + 200);
    sprintf(req,
            "{\"requestId\":\"ed4acda5-034f-9f42-bba1-f29aea6d7d8f\",\"timestamp\":1578090901599,"
            "\"records\":[{\"data\":\"%s\"}]}",
            b);
    free(z);
    free(b);
    return req;
}

static void test_documented_example_request_yields_its_two_records(void **state)
{
    (void)state;
    /* AWS's example request body (docs: "HTTP endpoint delivery request and response
     * specifications"), with the comma its printed version lacks. */
    const char *body = "{\n  \"requestId\": \"ed4acda5-034f-9f42-bba1-f29aea6d7d8f\",\n"
                       "  \"timestamp\": 1578090901599,\n  \"records\": [\n"
                       "    {\n      \"data\": \"aGVsbG8=\"\n    },\n"
                       "    {\n      \"data\": \"aGVsbG8gd29ybGQ=\"\n    }\n  ]\n}";
    ch_firehose *f = NULL;
    assert_int_equal(ch_firehose_new(&f), 0);
    ch_firehose_request req;
    got g = {0};
    ch_error err = {0};
    assert_int_equal(ch_firehose_parse(f, body, strlen(body), &req, collect, &g, &err), 0);
    assert_string_equal(req.request_id, "ed4acda5-034f-9f42-bba1-f29aea6d7d8f");
    assert_int_equal(req.timestamp_ms, 1578090901599LL);
    assert_int_equal(req.records, 2);
    assert_int_equal(req.raw, 2);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.data[0], "hello");
    assert_string_equal(g.data[1], "hello world");
    assert_int_equal(g.kind[0], CH_FIREHOSE_RAW);
    ch_firehose_free(f);
}

static void test_answers_have_the_documented_shape(void **state)
{
    (void)state;
    ch_buf b;
    ch_buf_init(&b, 4096);
    assert_int_equal(
        ch_firehose_response(&b, "ed4acda5-034f-9f42-bba1-f29aea6d7d8f", 1578090903599LL, NULL), 0);
    assert_string_equal(b.data, "{\"requestId\":\"ed4acda5-034f-9f42-bba1-f29aea6d7d8f\","
                                "\"timestamp\":1578090903599}");
    ch_buf_clear(&b);
    assert_int_equal(ch_firehose_response(&b, "r-1", 5, "journal full, retry later"), 0);
    assert_string_equal(b.data, "{\"requestId\":\"r-1\",\"timestamp\":5,"
                                "\"errorMessage\":\"journal full, retry later\"}");
    ch_buf_free(&b);
}

static const char *ct1 =
    "{\"eventVersion\":\"1.08\",\"eventTime\":\"2024-08-02T08:53:24Z\",\"awsRegion\":"
    "\"us-east-1\",\"eventID\":\"10000000-0000-4000-8000-000000000001\",\"eventName\":"
    "\"ConsoleLogin\",\"eventSource\":\"signin.amazonaws.com\",\"userIdentity\":{\"type\":"
    "\"IAMUser\",\"userName\":\"alice\",\"accountId\":\"111122223333\"},\"sourceIPAddress\":"
    "\"81.2.69.142\",\"responseElements\":{\"ConsoleLogin\":\"Success\"}}";

static void test_cloudwatch_logs_cloudtrail_events_unpack_to_json_lines(void **state)
{
    (void)state;
    char doc[16384], esc[2048];
    size_t e = 0;
    for (const char *p = ct1; *p; p++) {
        if (*p == '"')
            esc[e++] = '\\';
        esc[e++] = *p;
    }
    esc[e] = '\0';
    snprintf(doc, sizeof doc,
             "{\"messageType\":\"DATA_MESSAGE\",\"owner\":\"111122223333\",\"logGroup\":"
             "\"CloudTrail/logs\",\"logStream\":\"111122223333_CloudTrail_us-east-1\","
             "\"subscriptionFilters\":[\"Destination\"],\"logEvents\":["
             "{\"id\":\"1\",\"timestamp\":1432826855000,\"message\":\"%s\"},"
             "{\"id\":\"2\",\"timestamp\":1432826855001,\"message\":\"%s\"}]}",
             esc, esc);
    char *req = request_with_gzip_record(doc, strlen(doc));
    ch_firehose *f = NULL;
    assert_int_equal(ch_firehose_new(&f), 0);
    ch_firehose_request r;
    got g = {0};
    ch_error err = {0};
    assert_int_equal(ch_firehose_parse(f, req, strlen(req), &r, collect, &g, &err), 0);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.kind[0], CH_FIREHOSE_CWL_DATA);
    assert_int_equal(g.messages[0], 2);
    assert_string_equal(g.origin[0], "CloudTrail/logs/111122223333_CloudTrail_us-east-1");
    assert_int_equal(r.cwl_data, 1);
    ch_batch_result br;
    assert_int_equal(ch_batch_check(g.data[0], g.len[0], NULL, "t", &br, &err), 0);
    assert_non_null(br.type);
    assert_string_equal(br.type->name, "cloudtrail");
    assert_int_equal(br.accepted, 2);
    assert_int_equal(br.rejected, 0);
    free(req);
    ch_firehose_free(f);
}

static void test_control_message_is_counted_not_passed_as_records(void **state)
{
    (void)state;
    const char *doc = "{\"messageType\":\"CONTROL_MESSAGE\",\"owner\":\"CloudwatchLogs\","
                      "\"logGroup\":\"\",\"logStream\":\"\",\"subscriptionFilters\":[],"
                      "\"logEvents\":[{\"id\":\"\",\"timestamp\":1432826855000,\"message\":"
                      "\"CWL CONTROL MESSAGE: Checking health of destination Firehose.\"}]}";
    char *req = request_with_gzip_record(doc, strlen(doc));
    ch_firehose *f = NULL;
    assert_int_equal(ch_firehose_new(&f), 0);
    ch_firehose_request r;
    got g = {0};
    ch_error err = {0};
    assert_int_equal(ch_firehose_parse(f, req, strlen(req), &r, collect, &g, &err), 0);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.kind[0], CH_FIREHOSE_CWL_CONTROL);
    assert_int_equal(g.len[0], 0);
    assert_int_equal(r.cwl_control, 1);
    free(req);
    ch_firehose_free(f);
}

static void test_concatenated_route53_documents_unpack_together(void **state)
{
    (void)state;
    /* The golden file is what a subscription delivers: a control message then data messages,
     * concatenated, gzip'd. */
    ch_buf raw;
    ch_buf_init(&raw, 1u << 20);
    ch_error err = {0};
    assert_int_equal(ch_gunzip(NULL, 0, &raw, &err), CH_EPARSE);
    FILE *fp = fopen(CH_SOURCE_DIR "/tests/golden/route53/cloudwatch_envelope.json.gz", "rb");
    assert_non_null(fp);
    unsigned char z[65536];
    size_t zn = fread(z, 1, sizeof z, fp);
    fclose(fp);
    ch_buf_clear(&raw);
    assert_int_equal(ch_gunzip(z, zn, &raw, &err), 0);
    char *req = request_with_gzip_record(raw.data, raw.len);
    ch_firehose *f = NULL;
    assert_int_equal(ch_firehose_new(&f), 0);
    ch_firehose_request r;
    got g = {0};
    assert_int_equal(ch_firehose_parse(f, req, strlen(req), &r, collect, &g, &err), 0);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.kind[0], CH_FIREHOSE_CWL_DATA);
    assert_true(g.messages[0] >= 1);
    ch_batch_result br;
    assert_int_equal(ch_batch_check(g.data[0], g.len[0], NULL, "t", &br, &err), 0);
    assert_non_null(br.type);
    assert_string_equal(br.type->name, "route53resolver");
    assert_int_equal(br.accepted, g.messages[0]);
    free(req);
    ch_buf_free(&raw);
    ch_firehose_free(f);
}

static void test_cloudwatch_flow_log_lines_read_as_vpc_flow_logs(void **state)
{
    (void)state;
    const char *doc =
        "{\"messageType\":\"DATA_MESSAGE\",\"owner\":\"111122223333\",\"logGroup\":\"vpc-flow\","
        "\"logStream\":\"eni-0a1b2c3d4e5f60718-all\",\"subscriptionFilters\":[\"f\"],"
        "\"logEvents\":[{\"id\":\"1\",\"timestamp\":1717405260000,\"message\":\"2 111122223333 "
        "eni-0a1b2c3d4e5f60718 10.20.1.15 198.51.100.23 51234 3333 6 142 38211 1717405200 "
        "1717405260 ACCEPT OK\"},{\"id\":\"2\",\"timestamp\":1717405260000,\"message\":\"2 "
        "111122223333 eni-0a1b2c3d4e5f60718 198.51.100.23 10.20.1.15 3333 51234 6 120 912034 "
        "1717405200 1717405260 ACCEPT OK\"}]}";
    char *req = request_with_gzip_record(doc, strlen(doc));
    ch_firehose *f = NULL;
    assert_int_equal(ch_firehose_new(&f), 0);
    ch_firehose_request r;
    got g = {0};
    ch_error err = {0};
    assert_int_equal(ch_firehose_parse(f, req, strlen(req), &r, collect, &g, &err), 0);
    ch_batch_result br;
    assert_int_equal(ch_batch_check(g.data[0], g.len[0], NULL, "t", &br, &err), 0);
    assert_non_null(br.type);
    assert_string_equal(br.type->name, "vpcflow");
    assert_int_equal(br.accepted, 2);
    free(req);
    ch_firehose_free(f);
}

static void test_malformed_requests_are_refused_with_a_reason(void **state)
{
    (void)state;
    ch_firehose *f = NULL;
    assert_int_equal(ch_firehose_new(&f), 0);
    ch_firehose_request r;
    got g = {0};
    ch_error err = {0};
    const char *no_id = "{\"timestamp\":1,\"records\":[]}";
    assert_int_equal(ch_firehose_parse(f, no_id, strlen(no_id), &r, collect, &g, &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, "requestId"));
    const char *bad64 = "{\"requestId\":\"x\",\"timestamp\":1,\"records\":[{\"data\":\"@@@@\"}]}";
    assert_int_equal(ch_firehose_parse(f, bad64, strlen(bad64), &r, collect, &g, &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, "base64"));
    /* The request id is known even when the request fails, so the answer can carry it. */
    assert_string_equal(r.request_id, "x");
    const char *notjson = "hello";
    assert_int_equal(ch_firehose_parse(f, notjson, strlen(notjson), &r, collect, &g, &err),
                     CH_EPARSE);
    const char *badcwl =
        "{\"messageType\":\"DATA_MESSAGE\",\"logGroup\":\"g\",\"logStream\":\"s\"}";
    char *req = request_with_gzip_record(badcwl, strlen(badcwl));
    assert_int_equal(ch_firehose_parse(f, req, strlen(req), &r, collect, &g, &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, "logEvents"));
    free(req);
    ch_firehose_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_documented_example_request_yields_its_two_records),
        cmocka_unit_test(test_answers_have_the_documented_shape),
        cmocka_unit_test(test_cloudwatch_logs_cloudtrail_events_unpack_to_json_lines),
        cmocka_unit_test(test_control_message_is_counted_not_passed_as_records),
        cmocka_unit_test(test_concatenated_route53_documents_unpack_together),
        cmocka_unit_test(test_cloudwatch_flow_log_lines_read_as_vpc_flow_logs),
        cmocka_unit_test(test_malformed_requests_are_refused_with_a_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
