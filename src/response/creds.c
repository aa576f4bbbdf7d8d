/*
 * creds.c - the AWS credentials chain, STS calls and their parsing (see creds.h).
 *
 * HTTP goes through libcurl with short timeouts (IMDS answers in milliseconds on EC2 and not at
 * all elsewhere: one second to connect, so the chain does not hang off EC2), no redirects, and
 * a cap on the response (64 KiB). Secrets are wiped from the stack buffers that held them.
 */
#include "response/creds.h"

#include "core/curl_lazy.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/timeparse.h"
#include "response/aws_int.h"
#include "response/sigv4.h"

#define INI_MAX (1u << 20)
#define LINE_MAX_LEN 4096
#define RESP_MAX (64u << 10)

void ch_aws_creds_wipe(ch_aws_creds *c)
{
    volatile unsigned char *p = (volatile unsigned char *)c;
    for (size_t i = 0; i < sizeof *c; i++)
        p[i] = 0;
}

static void set_str(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* ---- INI ----------------------------------------------------------------------------------------
 */

static bool space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

int ch_aws_ini_get(const char *text, size_t n, const char *path, const char *section,
                   const char *key, char *out, size_t cap, ch_error *err)
{
    if (n > INI_MAX)
        return ch_error_set(err, CH_ELIMIT, "%s: over %u bytes", path, INI_MAX);
    bool in = false;
    size_t line = 0;
    for (size_t i = 0; i < n;) {
        line++;
        size_t e = i;
        while (e < n && text[e] != '\n')
            e++;
        if (e - i > LINE_MAX_LEN)
            return ch_error_set(err, CH_ELIMIT, "%s:%zu: line over %d bytes", path, line,
                                LINE_MAX_LEN);
        size_t s = i, t = e;
        i = e + 1;
        while (s < t && space(text[s]))
            s++;
        while (t > s && space(text[t - 1]))
            t--;
        if (s == t || text[s] == '#' || text[s] == ';')
            continue;
        if (text[s] == '[') {
            if (text[t - 1] != ']')
                return ch_error_set(err, CH_EPARSE, "%s:%zu: a section header needs ']'", path,
                                    line);
            size_t a = s + 1, b = t - 1;
            while (a < b && space(text[a]))
                a++;
            while (b > a && space(text[b - 1]))
                b--;
            in = strlen(section) == b - a && memcmp(text + a, section, b - a) == 0;
            continue;
        }
        const char *eq = memchr(text + s, '=', t - s);
        if (eq == NULL)
            return ch_error_set(err, CH_EPARSE, "%s:%zu: neither '[section]' nor 'key = value'",
                                path, line);
        /* A value on the next lines (an indented sub-section, as s3 = ... uses) has no key of
         * its own at the start: it is read as a key here and never matches a credential key. */
        if (!in)
            continue;
        size_t ke = (size_t)(eq - text);
        while (ke > s && space(text[ke - 1]))
            ke--;
        if (strlen(key) != ke - s || memcmp(text + s, key, ke - s) != 0)
            continue;
        size_t vs = (size_t)(eq - text) + 1;
        while (vs < t && space(text[vs]))
            vs++;
        if (t - vs >= cap)
            return ch_error_set(err, CH_ELIMIT, "%s:%zu: value of %s is too long", path, line, key);
        set_str(out, cap, text + vs, t - vs);
        return 1;
    }
    return 0;
}

static char *read_file(const char *path, size_t *n, ch_error *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *buf = ch_malloc(INI_MAX + 2);
    size_t got = buf != NULL ? fread(buf, 1, INI_MAX + 1, f) : 0;
    fclose(f);
    if (buf == NULL) {
        ch_error_set(err, CH_ENOMEM, "out of memory");
        return NULL;
    }
    buf[got] = '\0';
    *n = got;
    return buf;
}

/* ---- HTTP ---------------------------------------------------------------------------------------
 */

typedef struct sink {
    ch_buf *b;
} sink;

static size_t on_data(char *p, size_t sz, size_t nm, void *ud)
{
    sink *s = ud;
    return ch_buf_add(s->b, p, sz * nm) < 0 ? 0 : sz * nm;
}

/* One request: status into *status, body into resp. CH_EIO when no answer. Its callers built
 * hdrs, so they asked ch_curl_load first. */
int ch__aws_http(const char *method, const char *url, struct curl_slist *hdrs, const char *body,
                 long connect_ms, long *status, ch_buf *resp, ch_error *err)
{
    CURL *h = curl_easy_init();
    if (h == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    sink s = {resp};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "coinhound/" CH_VERSION " (respond)");
    if (body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    CURLcode cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(h);
    if (cc != CURLE_OK)
        return ch_error_set(err, CH_EIO, "%s %s: %s", method, url, curl_easy_strerror(cc));
    return 0;
}

/* ---- STS XML ------------------------------------------------------------------------------------
 */

/* The text of the first <tag>...</tag> after from, entities decoded, into out. */
bool ch__aws_xml_text(const char *xml, size_t n, const char *tag, char *out, size_t cap)
{
    char open[64], close[64];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    const char *end = xml + n, *a = NULL;
    size_t ol = strlen(open), cl = strlen(close);
    for (const char *p = xml; p + ol <= end; p++)
        if (memcmp(p, open, ol) == 0) {
            a = p + ol;
            break;
        }
    if (a == NULL)
        return false;
    const char *b = NULL;
    for (const char *p = a; p + cl <= end; p++)
        if (memcmp(p, close, cl) == 0) {
            b = p;
            break;
        }
    if (b == NULL)
        return false;
    static const struct {
        const char *ent, c;
    } ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    size_t k = 0;
    for (const char *p = a; p < b; p++) {
        char c = *p;
        if (c == '&') {
            bool ok = false;
            for (size_t e = 0; e < sizeof ents / sizeof ents[0] && !ok; e++) {
                size_t el = strlen(ents[e].ent);
                if ((size_t)(b - p) >= el && memcmp(p, ents[e].ent, el) == 0) {
                    c = ents[e].c;
                    p += el - 1;
                    ok = true;
                }
            }
            if (!ok)
                return false; /* no other entity is expanded */
        }
        if (k + 1 >= cap)
            return false;
        out[k++] = c;
    }
    out[k] = '\0';
    return true;
}

int ch_aws_sts_parse(const char *xml, size_t n, ch_aws_creds *c, ch_error *err)
{
    char code[128], msg[512], exp[64];
    if (ch__aws_xml_text(xml, n, "Code", code, sizeof code)) {
        if (!ch__aws_xml_text(xml, n, "Message", msg, sizeof msg))
            msg[0] = '\0';
        return ch_error_set(err, CH_EIO, "STS %s: %s%s", code, msg,
                            strcmp(code, "AccessDenied") == 0
                                ? " (the caller needs sts:AssumeRole on the role, and the role's "
                                  "trust policy must name the caller)"
                                : "");
    }
    memset(c, 0, sizeof *c);
    if (!ch__aws_xml_text(xml, n, "AccessKeyId", c->access_key, sizeof c->access_key) ||
        !ch__aws_xml_text(xml, n, "SecretAccessKey", c->secret_key, sizeof c->secret_key) ||
        !ch__aws_xml_text(xml, n, "SessionToken", c->session_token, sizeof c->session_token) ||
        c->access_key[0] == '\0' || c->secret_key[0] == '\0')
        return ch_error_set(err, CH_EPARSE, "STS: the response holds no complete Credentials");
    if (ch__aws_xml_text(xml, n, "Expiration", exp, sizeof exp) &&
        !ch_time_parse_iso8601(exp, strlen(exp), &c->expires_ms))
        return ch_error_set(err, CH_EPARSE, "STS: Expiration '%s' is no time", exp);
    return 0;
}

/* ---- sources ------------------------------------------------------------------------------------
 */

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && *v ? v : NULL;
}

static int from_env(ch_aws_creds *c)
{
    const char *ak = env("AWS_ACCESS_KEY_ID"), *sk = env("AWS_SECRET_ACCESS_KEY");
    if (ak == NULL || sk == NULL)
        return 0;
    memset(c, 0, sizeof *c);
    set_str(c->access_key, sizeof c->access_key, ak, strlen(ak));
    set_str(c->secret_key, sizeof c->secret_key, sk, strlen(sk));
    const char *tok = env("AWS_SESSION_TOKEN");
    if (tok != NULL)
        set_str(c->session_token, sizeof c->session_token, tok, strlen(tok));
    snprintf(c->source, sizeof c->source, "env");
    return 1;
}

static void home_path(char *out, size_t cap, const char *envname, const char *rel)
{
    const char *v = env(envname), *home = env("HOME");
    if (v != NULL)
        snprintf(out, cap, "%s", v);
    else
        snprintf(out, cap, "%s/.aws/%s", home != NULL ? home : "", rel);
}

/* url-encode for a form body */
static int form(ch_buf *b, const char *k, const char *v)
{
    int rc = ch_buf_printf(b, "%s%s=", b->len ? "&" : "", k);
    for (const unsigned char *p = (const unsigned char *)v; *p && rc >= 0; p++)
        rc = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                     strchr("-._~", *p) != NULL
                 ? ch_buf_addc(b, (char)*p)
                 : ch_buf_printf(b, "%%%02X", *p);
    return rc;
}

static void sts_url(char *out, size_t cap, const char *region)
{
    const char *e = env("AWS_ENDPOINT_URL_STS");
    if (e != NULL)
        snprintf(out, cap, "%s/", e);
    else
        snprintf(out, cap, "https://sts.%s.amazonaws.com/", region);
}

static int web_identity(const char *token_file, const char *role, const char *session,
                        ch_aws_creds *c, ch_error *err)
{
    int lrc = ch_curl_load(err);
    if (lrc < 0)
        return lrc;
    size_t n = 0;
    char *tok = read_file(token_file, &n, err);
    if (tok == NULL)
        return err->code == CH_ENOMEM
                   ? CH_ENOMEM
                   : ch_error_set(err, CH_EIO, "web identity: cannot read %s", token_file);
    while (n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r'))
        tok[--n] = '\0';
    ch_buf body, resp;
    ch_buf_init(&body, RESP_MAX);
    ch_buf_init(&resp, RESP_MAX);
    int rc = form(&body, "Action", "AssumeRoleWithWebIdentity");
    if (rc >= 0)
        rc = form(&body, "Version", "2011-06-15");
    if (rc >= 0)
        rc = form(&body, "RoleArn", role);
    if (rc >= 0)
        rc = form(&body, "RoleSessionName", session);
    if (rc >= 0)
        rc = form(&body, "WebIdentityToken", tok);
    if (rc >= 0)
        rc = ch_buf_addc(&body, '\0');
    char url[512];
    const char *region = env("AWS_REGION") != NULL ? env("AWS_REGION") : "us-east-1";
    sts_url(url, sizeof url, region);
    struct curl_slist *h =
        curl_slist_append(NULL, "Content-Type: application/x-www-form-urlencoded");
    long status = 0;
    if (rc < 0)
        rc = ch_error_set(err, rc, "web identity: token too large");
    else
        rc = ch__aws_http("POST", url, h, body.data, 3000, &status, &resp, err);
    if (rc >= 0)
        rc = ch_aws_sts_parse(resp.data != NULL ? resp.data : "", resp.len, c, err);
    if (rc >= 0)
        snprintf(c->source, sizeof c->source, "web-identity");
    curl_slist_free_all(h);
    memset(tok, 0, n);
    if (body.data != NULL)
        memset(body.data, 0, body.len);
    ch_free(tok);
    ch_buf_free(&body);
    ch_buf_free(&resp);
    return rc;
}

/* A profile's credentials from the shared files: keys first, then a web identity role. */
static int from_files(ch_aws_creds *c, int *tried, ch_error *err)
{
    const char *profile = env("AWS_PROFILE") != NULL ? env("AWS_PROFILE") : "default";
    char cred_path[4096], conf_path[4096], conf_section[300];
    home_path(cred_path, sizeof cred_path, "AWS_SHARED_CREDENTIALS_FILE", "credentials");
    home_path(conf_path, sizeof conf_path, "AWS_CONFIG_FILE", "config");
    snprintf(conf_section, sizeof conf_section, "%s%s",
             strcmp(profile, "default") ? "profile " : "", profile);
    const struct {
        const char *path, *section;
    } files[] = {{cred_path, profile}, {conf_path, conf_section}};
    char ak[128], sk[128], tok[4096], role[2048], wif[4096];
    int rc = 0;
    for (size_t f = 0; f < 2; f++) {
        size_t n = 0;
        char *text = read_file(files[f].path, &n, err);
        if (text == NULL) {
            if (err->code == CH_ENOMEM)
                return CH_ENOMEM;
            continue;
        }
        (*tried)++;
        const char *p = files[f].path, *sec = files[f].section;
        int a = ch_aws_ini_get(text, n, p, sec, "aws_access_key_id", ak, sizeof ak, err);
        int b = a >= 0
                    ? ch_aws_ini_get(text, n, p, sec, "aws_secret_access_key", sk, sizeof sk, err)
                    : a;
        int t =
            b >= 0 ? ch_aws_ini_get(text, n, p, sec, "aws_session_token", tok, sizeof tok, err) : b;
        int r = t >= 0 ? ch_aws_ini_get(text, n, p, sec, "role_arn", role, sizeof role, err) : t;
        int w = r >= 0 ? ch_aws_ini_get(text, n, p, sec, "web_identity_token_file", wif, sizeof wif,
                                        err)
                       : r;
        memset(text, 0, n);
        ch_free(text);
        if (w < 0)
            return w;
        if (a == 1 && b == 1) {
            memset(c, 0, sizeof *c);
            set_str(c->access_key, sizeof c->access_key, ak, strlen(ak));
            set_str(c->secret_key, sizeof c->secret_key, sk, strlen(sk));
            if (t == 1)
                set_str(c->session_token, sizeof c->session_token, tok, strlen(tok));
            snprintf(c->source, sizeof c->source, "shared-files");
            rc = 1;
        } else if (r == 1 && w == 1) {
            rc = web_identity(wif, role, "coinhound-respond", c, err);
            rc = rc < 0 ? rc : 1;
        }
        if (rc != 0)
            break;
    }
    memset(sk, 0, sizeof sk);
    memset(tok, 0, sizeof tok);
    return rc;
}

static int imds(ch_aws_creds *c, ch_error *err)
{
    int lrc = ch_curl_load(err);
    if (lrc < 0)
        return lrc;
    const char *base = env("AWS_EC2_METADATA_SERVICE_ENDPOINT") != NULL
                           ? env("AWS_EC2_METADATA_SERVICE_ENDPOINT")
                           : "http://169.254.169.254";
    char url[1024], hdr[256], role[256];
    ch_buf resp;
    ch_buf_init(&resp, RESP_MAX);
    long status = 0;
    struct curl_slist *h = curl_slist_append(NULL, "X-aws-ec2-metadata-token-ttl-seconds: 21600");
    snprintf(url, sizeof url, "%s/latest/api/token", base);
    int rc = ch__aws_http("PUT", url, h, NULL, 1000, &status, &resp, err);
    curl_slist_free_all(h);
    h = NULL;
    if (rc >= 0 && (status != 200 || resp.len == 0 || resp.len > 200))
        rc = ch_error_set(err, CH_EIO, "IMDSv2: PUT %s answered %ld", url, status);
    if (rc >= 0) {
        snprintf(hdr, sizeof hdr, "X-aws-ec2-metadata-token: %.*s", (int)resp.len, resp.data);
        h = curl_slist_append(NULL, hdr);
        snprintf(url, sizeof url, "%s/latest/meta-data/iam/security-credentials/", base);
        ch_buf_clear(&resp);
        rc = ch__aws_http("GET", url, h, NULL, 1000, &status, &resp, err);
    }
    if (rc >= 0 && status != 200)
        rc = ch_error_set(err, CH_ENOTFOUND, "IMDSv2: no instance role (GET %s answered %ld)", url,
                          status);
    if (rc >= 0) {
        size_t k = 0;
        while (k < resp.len && k + 1 < sizeof role && resp.data[k] != '\n' &&
               resp.data[k] != '\r' && resp.data[k] != '/')
            k++;
        set_str(role, sizeof role, resp.data, k);
        if (k == 0 || (k < resp.len && resp.data[k] == '/'))
            rc = ch_error_set(err, CH_EPARSE, "IMDSv2: a role name was expected");
    }
    if (rc >= 0) {
        snprintf(url, sizeof url, "%s/latest/meta-data/iam/security-credentials/%s", base, role);
        ch_buf_clear(&resp);
        rc = ch__aws_http("GET", url, h, NULL, 1000, &status, &resp, err);
        if (rc >= 0 && status != 200)
            rc = ch_error_set(err, CH_EIO, "IMDSv2: GET %s answered %ld", url, status);
    }
    ch_json_parser *jp = NULL;
    if (rc >= 0 && (jp = ch_json_parser_new(RESP_MAX, 8)) == NULL)
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
    if (rc >= 0) {
        ch_json_val root, v;
        const char *s;
        size_t n;
        ch_error e2 = {0};
        memset(c, 0, sizeof *c);
        static const char *const keys[] = {"AccessKeyId", "SecretAccessKey", "Token"};
        char *dst[] = {c->access_key, c->secret_key, c->session_token};
        size_t caps[] = {sizeof c->access_key, sizeof c->secret_key, sizeof c->session_token};
        if (ch_json_parse(jp, resp.data, resp.len, resp.len, &root, &e2) < 0)
            rc = ch_error_set(err, CH_EPARSE, "IMDSv2: the role's credentials are no JSON");
        for (int i = 0; i < 3 && rc >= 0; i++) {
            if (!ch_json_obj_get(root, keys[i], strlen(keys[i]), &v) ||
                !ch_json_get_str(v, &s, &n) || n == 0 || n >= caps[i])
                rc = ch_error_set(err, CH_EPARSE, "IMDSv2: no usable %s", keys[i]);
            else
                set_str(dst[i], caps[i], s, n);
        }
        if (rc >= 0 && ch_json_obj_get(root, "Expiration", 10, &v) && ch_json_get_str(v, &s, &n) &&
            !ch_time_parse_iso8601(s, n, &c->expires_ms))
            rc = ch_error_set(err, CH_EPARSE, "IMDSv2: Expiration is no time");
        if (rc >= 0)
            snprintf(c->source, sizeof c->source, "imds");
    }
    ch_json_parser_free(jp);
    curl_slist_free_all(h);
    if (resp.data != NULL)
        memset(resp.data, 0, resp.len);
    ch_buf_free(&resp);
    return rc;
}

int ch_aws_creds_chain(ch_aws_creds *c, ch_error *err)
{
    if (from_env(c))
        return 0;
    const char *wif = env("AWS_WEB_IDENTITY_TOKEN_FILE"), *role = env("AWS_ROLE_ARN");
    if (wif != NULL && role != NULL) {
        const char *sess = env("AWS_ROLE_SESSION_NAME");
        return web_identity(wif, role, sess != NULL ? sess : "coinhound-respond", c, err);
    }
    int tried = 0;
    int rc = from_files(c, &tried, err);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    const char *off = env("AWS_EC2_METADATA_DISABLED");
    if (off == NULL || strcmp(off, "true") != 0) {
        ch_error e2 = {0};
        if (imds(c, &e2) == 0)
            return 0;
        return ch_error_set(err, CH_ENOTFOUND,
                            "no AWS credentials: not in the environment, no web identity, none "
                            "for profile %s in the shared files (%d read), and %s",
                            env("AWS_PROFILE") != NULL ? env("AWS_PROFILE") : "default", tried,
                            e2.msg);
    }
    return ch_error_set(err, CH_ENOTFOUND,
                        "no AWS credentials: not in the environment, no web identity, none for "
                        "profile %s in the shared files (%d read); IMDS is disabled",
                        env("AWS_PROFILE") != NULL ? env("AWS_PROFILE") : "default", tried);
}

int ch_aws_assume_role(const ch_aws_creds *base, const char *role_arn, const char *region,
                       ch_aws_creds *out, ch_error *err)
{
    return ch_aws_assume_role_at(base, role_arn, region, NULL, out, err);
}

int ch_aws_assume_role_at(const ch_aws_creds *base, const char *role_arn, const char *region,
                          const char *endpoint, ch_aws_creds *out, ch_error *err)
{
    int lrc = ch_curl_load(err);
    if (lrc < 0)
        return lrc;
    ch_buf body, resp;
    ch_buf_init(&body, 8192);
    ch_buf_init(&resp, RESP_MAX);
    int rc = form(&body, "Action", "AssumeRole");
    if (rc >= 0)
        rc = form(&body, "Version", "2011-06-15");
    if (rc >= 0)
        rc = form(&body, "RoleArn", role_arn);
    if (rc >= 0)
        rc = form(&body, "RoleSessionName", "coinhound-respond");
    if (rc >= 0)
        rc = ch_buf_addc(&body, '\0');
    if (rc < 0) {
        ch_buf_free(&body);
        ch_buf_free(&resp);
        return ch_error_set(err, rc, "AssumeRole: role ARN too long");
    }
    char url[512], host[300], date[20];
    if (endpoint != NULL)
        snprintf(url, sizeof url, "%s/", endpoint);
    else
        sts_url(url, sizeof url, region);
    /* Host as curl will send it: what follows the scheme up to the path. */
    const char *hs = strstr(url, "://");
    hs = hs != NULL ? hs + 3 : url;
    size_t hl = strcspn(hs, "/");
    set_str(host, sizeof host, hs, hl);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%Y%m%dT%H%M%SZ", &tm);
    ch_sigv4_header hv[4] = {{"Content-Type", "application/x-www-form-urlencoded"},
                             {"Host", host},
                             {"X-Amz-Date", date},
                             {"X-Amz-Security-Token", base->session_token}};
    size_t nh = base->session_token[0] ? 4 : 3;
    ch_sigv4_request r = {"POST", "/", "", hv, nh, body.data, body.len - 1};
    ch_sigv4_key k = {base->access_key, base->secret_key, region, "sts", date};
    ch_sigv4_out so;
    ch_sigv4_out_init(&so);
    struct curl_slist *h = NULL;
    rc = ch_sigv4_sign(&r, &k, &so, err);
    char line[8192];
    for (size_t i = 0; rc >= 0 && i < nh; i++) {
        snprintf(line, sizeof line, "%s: %s", hv[i].name, hv[i].value);
        struct curl_slist *nhd = curl_slist_append(h, line);
        if (nhd == NULL)
            rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        h = nhd != NULL ? nhd : h;
    }
    if (rc >= 0) {
        snprintf(line, sizeof line, "Authorization: %.*s", (int)so.authorization.len,
                 so.authorization.data);
        struct curl_slist *nhd = curl_slist_append(h, line);
        if (nhd == NULL)
            rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        h = nhd != NULL ? nhd : h;
    }
    long status = 0;
    if (rc >= 0)
        rc = ch__aws_http("POST", url, h, body.data, 3000, &status, &resp, err);
    if (rc >= 0)
        rc = ch_aws_sts_parse(resp.data != NULL ? resp.data : "", resp.len, out, err);
    if (rc >= 0)
        snprintf(out->source, sizeof out->source, "assume-role");
    curl_slist_free_all(h);
    ch_sigv4_out_free(&so);
    ch_buf_free(&body);
    if (resp.data != NULL)
        memset(resp.data, 0, resp.len);
    ch_buf_free(&resp);
    return rc;
}
