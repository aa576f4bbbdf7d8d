/*
 * aws_call.c - one signed AWS API call with retries and readable refusals (see aws_call.h).
 *
 * Each attempt is signed afresh (X-Amz-Date moves on, and AWS refuses a signature older than
 * five minutes). Backoff is "full jitter" (a uniform wait in [0, base * 2^attempt)), as AWS's
 * architecture guidance recommends, so that many responders throttled together do not retry in
 * step; the wait is capped at 20 s and the attempts at max_attempts.
 */
#include "response/aws_call.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/json.h"
#include "response/aws_int.h"
#include "response/sigv4.h"

#define RESP_MAX (4u << 20)
#define MAX_DELAY_MS 20000

bool ch_aws_error_parse(const char *body, size_t n, char *code, size_t code_cap, char *msg,
                        size_t msg_cap)
{
    code[0] = msg[0] = '\0';
    size_t i = 0;
    while (i < n && (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' || body[i] == '\t'))
        i++;
    if (i < n && body[i] == '{') {
        ch_json_parser *jp = ch_json_parser_new(n + 64, 16);
        ch_json_val root, v;
        ch_error e = {0};
        bool ok = false;
        const char *s;
        size_t sl;
        if (jp != NULL && ch_json_parse(jp, body, n, n, &root, &e) == 0 &&
            ch_json_obj_get(root, "__type", 6, &v) && ch_json_get_str(v, &s, &sl)) {
            /* "com.amazonaws.route53resolver#AccessDeniedException" -> the part after '#' */
            const char *hash = memchr(s, '#', sl);
            if (hash != NULL) {
                sl -= (size_t)(hash + 1 - s);
                s = hash + 1;
            }
            snprintf(code, code_cap, "%.*s", (int)sl, s);
            if ((ch_json_obj_get(root, "message", 7, &v) ||
                 ch_json_obj_get(root, "Message", 7, &v)) &&
                ch_json_get_str(v, &s, &sl))
                snprintf(msg, msg_cap, "%.*s", (int)sl, s);
            ok = code[0] != '\0';
        }
        ch_json_parser_free(jp);
        return ok;
    }
    if (!ch__aws_xml_text(body, n, "Code", code, code_cap) || code[0] == '\0')
        return false;
    if (!ch__aws_xml_text(body, n, "Message", msg, msg_cap))
        msg[0] = '\0';
    return true;
}

static bool throttled(long status, const char *code)
{
    static const char *const codes[] = {"Throttling",           "ThrottlingException",
                                        "RequestLimitExceeded", "TooManyRequestsException",
                                        "RequestThrottled",     "SlowDown"};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (strcmp(code, codes[i]) == 0)
            return true;
    return status == 429 || (status == 503 && code[0] == '\0');
}

static bool refused(const char *code)
{
    return strcmp(code, "AccessDenied") == 0 || strcmp(code, "AccessDeniedException") == 0 ||
           strcmp(code, "UnauthorizedOperation") == 0 || strcmp(code, "UnauthorizedAccess") == 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* One signed attempt. */
static int attempt(const ch_aws_creds *c, const ch_aws_request *r, ch_buf *resp, long *status,
                   ch_error *err)
{
    char url[1024], host[512], date[20], line[8192];
    snprintf(url, sizeof url, "%s/", r->endpoint);
    const char *hs = strstr(r->endpoint, "://");
    hs = hs != NULL ? hs + 3 : r->endpoint;
    snprintf(host, sizeof host, "%.*s", (int)strcspn(hs, "/"), hs);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%Y%m%dT%H%M%SZ", &tm);
    const char *ctype = r->target != NULL ? "application/x-amz-json-1.1"
                                          : "application/x-www-form-urlencoded; charset=utf-8";
    ch_sigv4_header hv[5] = {{"Content-Type", ctype}, {"Host", host}, {"X-Amz-Date", date}};
    size_t nh = 3;
    if (r->target != NULL)
        hv[nh++] = (ch_sigv4_header){"X-Amz-Target", r->target};
    if (c->session_token[0])
        hv[nh++] = (ch_sigv4_header){"X-Amz-Security-Token", c->session_token};
    const char *body = r->body != NULL ? r->body : "";
    ch_sigv4_request sr = {"POST", "/", "", hv, nh, body, strlen(body)};
    ch_sigv4_key k = {c->access_key, c->secret_key, r->region, r->service, date};
    ch_sigv4_out so;
    ch_sigv4_out_init(&so);
    struct curl_slist *h = NULL;
    int rc = ch_sigv4_sign(&sr, &k, &so, err);
    for (size_t i = 0; rc >= 0 && i <= nh; i++) {
        if (i < nh)
            snprintf(line, sizeof line, "%s: %s", hv[i].name, hv[i].value);
        else
            snprintf(line, sizeof line, "Authorization: %.*s", (int)so.authorization.len,
                     so.authorization.data);
        struct curl_slist *nhd = curl_slist_append(h, line);
        if (nhd == NULL)
            rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        else
            h = nhd;
    }
    if (rc >= 0) {
        ch_buf_clear(resp);
        rc = ch__aws_http("POST", url, h, body, 3000, status, resp, err);
    }
    sodium_memzero(line, sizeof line);
    curl_slist_free_all(h);
    ch_sigv4_out_free(&so);
    return rc;
}

int ch_aws_call(const ch_aws_creds *c, const ch_aws_request *r, ch_buf *resp, ch_aws_result *res,
                ch_error *err)
{
    int max = r->max_attempts > 0 ? r->max_attempts : 5;
    long base = r->base_delay_ms > 0 ? r->base_delay_ms : 100;
    memset(res, 0, sizeof *res);
    int lrc = ch_curl_load(err);
    if (lrc < 0)
        return lrc;
    char msg[512] = "";
    for (int a = 0; a < max; a++) {
        res->attempts = a + 1;
        res->code[0] = msg[0] = '\0';
        int rc = attempt(c, r, resp, &res->status, err);
        if (rc < 0 && rc != CH_EIO)
            return rc;
        if (rc == 0 && res->status >= 200 && res->status < 300)
            return 0;
        if (rc == 0)
            ch_aws_error_parse(resp->data != NULL ? resp->data : "", resp->len, res->code,
                               sizeof res->code, msg, sizeof msg);
        /* A connection that failed and a throttled answer are both worth another try. */
        if (a + 1 < max && (rc == CH_EIO || throttled(res->status, res->code))) {
            long cap = base << (a < 16 ? a : 16);
            if (cap > MAX_DELAY_MS)
                cap = MAX_DELAY_MS;
            sleep_ms((long)randombytes_uniform((uint32_t)cap + 1));
            continue;
        }
        if (rc == CH_EIO)
            return rc;
        if (refused(res->code))
            return ch_error_set(err, CH_EIO,
                                "AWS refused %s:%s (%s: %s): the responder's role needs "
                                "%s:%s (docs/RESPONSE.md lists the policy)",
                                r->service, r->action, res->code, msg, r->service, r->action);
        return ch_error_set(err, CH_EIO, "%s:%s failed after %d attempt%s: HTTP %ld %s%s%s",
                            r->service, r->action, res->attempts, res->attempts == 1 ? "" : "s",
                            res->status, res->code[0] ? res->code : "(no error code)",
                            msg[0] ? ": " : "", msg);
    }
    return ch_error_set(err, CH_EIO, "%s:%s: unreachable", r->service, r->action);
}
