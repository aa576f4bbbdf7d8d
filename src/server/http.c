/*
 * http.c - route table dispatch, token checks and body collection over libmicrohttpd (see
 * http.h for the threading and security story).
 *
 * libmicrohttpd calls the access handler several times per request: first with the headers
 * (the route is found, the token checked and Content-Length compared with the route's limit
 * here, so a refused request is answered before its body is read), then once per piece of
 * body (appended to a buffer capped at the limit), then once more with nothing, when the
 * handler runs. The per-request context is freed by the completion callback whatever happened.
 * Route lookup is a linear scan of the table (a few dozen routes), segment by segment.
 */
#include "server/http.h"

#include <arpa/inet.h>
#include "server/mhd_lazy.h"
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "core/mem.h"
#include "server/config.h"
#include "server/console_static.h"

#define ERROR_BODY_MAX (64u << 10)
#define RESP_MAX (256u << 20)

struct ch_http {
    struct MHD_Daemon *d;
    ch_http_opts o;
    char *tokens[CH_ROLE__COUNT];
    size_t tokens_len[CH_ROLE__COUNT];
    char *cert, *key;
    uint16_t port;
};

/* One policy for every answer: the API serves JSON only, and the console to come serves its
 * own files, no inline script or style, no frames, from this origin only. */
#define CSP                                                                                        \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "                    \
    "form-action 'self'; frame-ancestors 'none'"

struct ch_http_req {
    ch_http *h;
    struct MHD_Connection *conn;
    const ch_route *route;
    int route_index;
    ch_buf body;
    bool too_large;
    bool answered; /* an answer was queued at the first call */
    char peer[64];
    const char *method;
    char params[CH_HTTP_MAX_PARAMS][CH_HTTP_PARAM_MAX + 1];
    size_t nparams;
    ch_principal who;
};

const char *ch_http_header(const ch_http_req *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}

const char *ch_http_arg(const ch_http_req *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *ch_http_body(const ch_http_req *rq, size_t *len)
{
    *len = rq->body.len;
    return rq->body.data ? rq->body.data : "";
}

const char *ch_http_peer(const ch_http_req *rq) { return rq->peer; }
const ch_route *ch_http_route(const ch_http_req *rq) { return rq->route; }

const char *ch_http_method(const ch_http_req *rq) { return rq->method; }
const char *ch_http_param(const ch_http_req *rq, size_t i)
{
    return i < rq->nparams ? rq->params[i] : "";
}
const ch_principal *ch_http_principal(const ch_http_req *rq) { return &rq->who; }
bool ch_http_tls(const ch_http_req *rq) { return rq->h->cert != NULL; }

const char *ch_http_status_code(unsigned status)
{
    switch (status) {
    case 400:
        return "bad_request";
    case 401:
        return "unauthenticated";
    case 403:
        return "forbidden";
    case 404:
        return "not_found";
    case 405:
        return "method_not_allowed";
    case 409:
        return "conflict";
    case 412:
        return "precondition_failed";
    case 413:
        return "payload_too_large";
    case 415:
        return "unsupported_media_type";
    case 416:
        return "range_not_satisfiable";
    case 422:
        return "invalid";
    case 428:
        return "precondition_required";
    case 429:
        return "too_many_requests";
    case 503:
        return "unavailable";
    default:
        return status >= 500 ? "internal" : "error";
    }
}

void ch_http_error_full(ch_http_resp *rs, unsigned status, const char *code, const char *message,
                        const char *details_json)
{
    ch_buf_clear(&rs->body);
    rs->status = status;
    rs->content_type = "application/json";
    if (code == NULL)
        code = ch_http_status_code(status);
    ch_buf_adds(&rs->body, "{\"code\":");
    ch_buf_add_json_str(&rs->body, code, strlen(code));
    ch_buf_adds(&rs->body, ",\"message\":");
    ch_buf_add_json_str(&rs->body, message, strlen(message));
    ch_buf_adds(&rs->body, ",\"details\":");
    ch_buf_adds(&rs->body, details_json ? details_json : "null");
    ch_buf_addc(&rs->body, '}');
}

void ch_http_error(ch_http_resp *rs, unsigned status, const char *message)
{
    ch_http_error_full(rs, status, NULL, message, NULL);
}

static void route_error(ch_http_req *rq, ch_http_resp *rs, unsigned status, const char *code,
                        const char *message)
{
    if (rq->route != NULL && rq->route->error_body != NULL) {
        ch_buf_clear(&rs->body);
        rs->status = status;
        rs->content_type = "application/json";
        rq->route->error_body(rq->h->o.ud, rq, rs, message);
    } else {
        ch_http_error_full(rs, status, code, message, NULL);
    }
}

/* Constant time in the expected token's length, whatever the given one. */
static bool ct_equal(const char *given, size_t gn, const char *want, size_t wn)
{
    unsigned char d = gn != wn;
    for (size_t i = 0; i < wn; i++)
        d |= (unsigned char)(want[i] ^ (i < gn ? given[i] : 0));
    return d == 0;
}

/* Is tok one of the token files' tokens? Every configured token is compared, so the time
 * taken does not say which one (or whether an early one) matched. */
static bool token_file_role(ch_http *h, const char *tok, size_t n, ch_role *role)
{
    bool found = false;
    for (int r = 1; r < CH_ROLE__COUNT; r++) {
        if (h->tokens[r] == NULL)
            continue;
        for (const char *t = h->tokens[r]; t < h->tokens[r] + h->tokens_len[r]; t += strlen(t) + 1)
            if (ct_equal(tok, n, t, strlen(t)) && !found) {
                found = true;
                *role = (ch_role)r;
            }
    }
    return found;
}

/* Authenticate a bearer-like token. 0 with rq->who filled, or 401. */
static unsigned auth_token(ch_http_req *rq, const char *tok, size_t n)
{
    ch_http *h = rq->h;
    ch_role role;
    if (token_file_role(h, tok, n, &role)) {
        rq->who.via = CH_AUTH_TOKEN_FILE;
        rq->who.role = role;
        snprintf(rq->who.name, sizeof rq->who.name, "token-file:%s", ch_role_name(role));
        return 0;
    }
    if (h->o.accounts == NULL)
        return 401;
    ch_token_info ti;
    ch_error err = {0};
    pthread_mutex_lock(h->o.accounts_mu);
    int rc = ch_token_verify(h->o.accounts, tok, n, rq->peer, &ti, &err);
    pthread_mutex_unlock(h->o.accounts_mu);
    if (rc < 0)
        return 401;
    rq->who.via = CH_AUTH_TOKEN;
    rq->who.role = ti.role;
    snprintf(rq->who.name, sizeof rq->who.name, "%s", ti.name);
    return 0;
}

/* Find and check the caller's credential (http.h has the order). 0, or the status to answer
 * with and *code / *msg. */
static unsigned authenticate(ch_http_req *rq, const char **code, const char **msg)
{
    ch_http *h = rq->h;
    const ch_route *rt = rq->route;
    *code = NULL;
    const char *auth = ch_http_header(rq, "Authorization");
    const char *alt = rt->token_header ? ch_http_header(rq, rt->token_header) : NULL;
    const char *cookie = ch_http_header(rq, "Cookie");
    unsigned st = 0;
    if (auth != NULL) {
        const char *tok;
        size_t n;
        int rc = ch_auth_parse_bearer(auth, strlen(auth), &tok, &n);
        if (rc < 0) {
            *msg = rc == CH_ENOTFOUND ? "the Authorization scheme must be Bearer"
                                      : "malformed Authorization header";
            return 401;
        }
        st = auth_token(rq, tok, n);
    } else if (alt != NULL) {
        st = auth_token(rq, alt, strlen(alt));
    } else if (cookie != NULL && h->o.accounts != NULL) {
        const char *sid;
        size_t n;
        if (ch_auth_cookie_get(cookie, strlen(cookie), CH_SESSION_COOKIE, &sid, &n) == 0 &&
            n <= CH_SECRET_B64_LEN) {
            ch_session_info si;
            ch_error err = {0};
            pthread_mutex_lock(h->o.accounts_mu);
            int rc = ch_session_check(h->o.accounts, sid, n, &si, &err);
            pthread_mutex_unlock(h->o.accounts_mu);
            if (rc == 0) {
                rq->who.via = CH_AUTH_SESSION;
                rq->who.role = si.role;
                rq->who.must_change = si.must_change;
                snprintf(rq->who.name, sizeof rq->who.name, "%s", si.name);
                memcpy(rq->who.session, sid, n);
                rq->who.session[n] = '\0';
            }
        }
    }
    if (st != 0) {
        *msg = "the token is not valid";
        return st;
    }
    if (rt->role == CH_ROLE_PUBLIC)
        return 0;
    if (rq->who.via == CH_AUTH_NONE) {
        *msg = "authentication required: a Bearer token or a console session";
        return 401;
    }
    if (!ch_role_allows(rq->who.role, rt->role)) {
        *msg = "this credential's role may not use this route";
        return 403;
    }
    return 0;
}

/* Session rules once the role passed: password change first, CSRF on state changes. */
static unsigned session_checks(ch_http_req *rq, const char **code, const char **msg)
{
    if (rq->who.via != CH_AUTH_SESSION)
        return 0;
    ch_http *h = rq->h;
    const ch_route *rt = rq->route;
    if (rq->who.must_change && !(rt->flags & CH_ROUTE_MUST_CHANGE_OK)) {
        *code = "password_change_required";
        *msg = "this account's password must be changed first (PUT /api/v1/session/password)";
        return 403;
    }
    bool safe = strcmp(rq->method, "GET") == 0 || strcmp(rq->method, "HEAD") == 0;
    size_t sn = strlen(rq->who.session);
    if (!safe && !(rt->flags & CH_ROUTE_CSRF_EXEMPT)) {
        const char *csrf = ch_http_header(rq, CH_CSRF_HEADER);
        pthread_mutex_lock(h->o.accounts_mu);
        bool ok = csrf != NULL &&
                  ch_session_csrf_ok(h->o.accounts, rq->who.session, sn, csrf, strlen(csrf));
        pthread_mutex_unlock(h->o.accounts_mu);
        if (!ok) {
            *code = "csrf";
            *msg = "a state-changing request on a console session needs the session's CSRF "
                   "token in " CH_CSRF_HEADER;
            return 403;
        }
    }
    ch_error err = {0};
    pthread_mutex_lock(h->o.accounts_mu);
    ch_session_touch(h->o.accounts, rq->who.session, sn, &err);
    pthread_mutex_unlock(h->o.accounts_mu);
    return 0;
}

static bool match_path(const char *pat, const char *path,
                       char params[CH_HTTP_MAX_PARAMS][CH_HTTP_PARAM_MAX + 1], size_t *np)
{
    *np = 0;
    while (*pat && *path) {
        if (*pat != '/' || *path != '/')
            return false;
        pat++;
        path++;
        const char *pe = strchr(pat, '/'), *se = strchr(path, '/');
        size_t pl = pe ? (size_t)(pe - pat) : strlen(pat);
        size_t sl = se ? (size_t)(se - path) : strlen(path);
        if (pl >= 2 && pat[0] == '{' && pat[pl - 1] == '}') {
            if (sl == 0 || sl > CH_HTTP_PARAM_MAX || *np >= CH_HTTP_MAX_PARAMS)
                return false;
            memcpy(params[*np], path, sl);
            params[(*np)++][sl] = '\0';
        } else if (pl != sl || memcmp(pat, path, pl) != 0) {
            return false;
        }
        pat += pl;
        path += sl;
    }
    return *pat == '\0' && *path == '\0';
}

int ch_route_match(const ch_route *routes, const char *method, const char *path,
                   char params[CH_HTTP_MAX_PARAMS][CH_HTTP_PARAM_MAX + 1], size_t *nparams,
                   bool *path_known)
{
    *path_known = false;
    *nparams = 0;
    bool head = strcmp(method, "HEAD") == 0;
    for (int i = 0; routes[i].method != NULL; i++) {
        size_t np;
        if (!match_path(routes[i].path, path, params, &np))
            continue;
        *path_known = true;
        if (strcmp(routes[i].method, method) == 0 ||
            (head && strcmp(routes[i].method, "GET") == 0)) {
            *nparams = np;
            return i;
        }
    }
    return -1;
}

static enum MHD_Result send_resp(ch_http_req *rq, ch_http_resp *rs)
{
    size_t len = rs->body.len;
    char *data = rs->body.data;
    if (data == NULL) {
        data = ch_strdup("");
        len = 0;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer_with_free_callback(len, data, ch_free);
    if (resp == NULL) {
        ch_free(data);
        return MHD_NO;
    }
    rs->body.data = NULL; /* the response owns it now */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            rs->content_type ? rs->content_type : "application/json");
    MHD_add_response_header(resp, "Cache-Control",
                            rs->cache_control ? rs->cache_control : "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Content-Security-Policy", CSP);
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "Cross-Origin-Opener-Policy", "same-origin");
    MHD_add_response_header(resp, "Cross-Origin-Resource-Policy", "same-origin");
    if (rq->h->cert != NULL)
        MHD_add_response_header(resp, "Strict-Transport-Security",
                                "max-age=63072000; includeSubDomains");
    if (rs->etag[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, rs->etag);
    if (rs->content_range[0])
        MHD_add_response_header(resp, "Content-Range", rs->content_range);
    if (rs->set_cookie[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, rs->set_cookie);
    if (rs->location[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, rs->location);
    if (rs->status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"coinhound\"");
    char ra[24];
    if (rs->retry_after_s > 0) {
        snprintf(ra, sizeof ra, "%u", rs->retry_after_s);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    enum MHD_Result ret = MHD_queue_response(rq->conn, rs->status, resp);
    MHD_destroy_response(resp);
    if (rq->h->o.on_answer)
        rq->h->o.on_answer(rq->h->o.ud, rq->route_index, rs->status);
    return ret;
}

static enum MHD_Result answer_now(ch_http_req *rq, unsigned status, const char *code,
                                  const char *msg)
{
    ch_http_resp rs = {0};
    ch_buf_init(&rs.body, ERROR_BODY_MAX);
    route_error(rq, &rs, status, code, msg);
    rq->answered = true;
    enum MHD_Result r = send_resp(rq, &rs);
    ch_buf_free(&rs.body);
    return r;
}

/* A console file for a GET that no API route took (see console_dir in http.h). */
static enum MHD_Result answer_console(ch_http_req *rq, const char *url)
{
    ch_http_resp rs = {0};
    ch_buf_init(&rs.body, CH_CONSOLE_FILE_MAX + 1);
    ch_console_file f;
    int rc = ch_console_file_get(rq->h->o.console_dir, url, &rs.body, &f);
    if (rc < 0) {
        ch_buf_free(&rs.body);
        return answer_now(rq, rc == CH_ENOTFOUND ? 404 : 500, NULL,
                          rc == CH_ENOTFOUND ? "no such route" : "the console file cannot be read");
    }
    rs.status = 200;
    rs.content_type = f.content_type;
    rs.cache_control = f.cache_control;
    rq->answered = true;
    enum MHD_Result r = send_resp(rq, &rs);
    ch_buf_free(&rs.body);
    return r;
}

static void peer_of(struct MHD_Connection *conn, char *buf, size_t cap)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(buf, cap, "?");
    if (ci == NULL || ci->client_addr == NULL)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)cap);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, (socklen_t)cap);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    ch_http *h = cls;
    ch_http_req *rq = *con_cls;
    if (rq == NULL) {
        rq = ch_calloc(1, sizeof *rq);
        if (rq == NULL)
            return MHD_NO;
        *con_cls = rq;
        rq->h = h;
        rq->conn = conn;
        rq->route_index = -1;
        peer_of(conn, rq->peer, sizeof rq->peer);
        rq->method = method;
        bool path_known = false;
        int ri = ch_route_match(h->o.routes, method, url, rq->params, &rq->nparams, &path_known);
        if (ri < 0 && !path_known && h->o.console_dir != NULL &&
            (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) &&
            strncmp(url, "/api/", 5) != 0)
            return answer_console(rq, url);
        if (ri < 0)
            return answer_now(rq, path_known ? 405 : 404, NULL,
                              path_known ? "method not allowed on this path" : "no such route");
        rq->route = &h->o.routes[ri];
        rq->route_index = ri;
        const char *code = NULL, *msg = NULL;
        unsigned t = authenticate(rq, &code, &msg);
        if (t == 0)
            t = session_checks(rq, &code, &msg);
        if (t != 0)
            return answer_now(rq, t, code, msg);
        const char *cl = ch_http_header(rq, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl != NULL && strtoull(cl, NULL, 10) > rq->route->body_limit)
            return answer_now(rq, 413, NULL, "request body over this route's limit");
        ch_buf_init(&rq->body, rq->route->body_limit ? rq->route->body_limit + 1 : 1);
        /* One allocation for a body of announced length, instead of doubling copies. */
        if (cl != NULL && rq->route->body_limit > 0)
            ch_buf_reserve(&rq->body, (size_t)strtoull(cl, NULL, 10));
        return MHD_YES;
    }
    if (rq->answered) {
        *upload_size = 0; /* drain and drop what the client sends after our answer */
        return MHD_YES;
    }
    if (*upload_size > 0) {
        if (!rq->too_large && ch_buf_add(&rq->body, upload, *upload_size) < 0)
            rq->too_large = true;
        *upload_size = 0;
        return MHD_YES;
    }
    if (rq->too_large)
        return answer_now(rq, 413, NULL, "request body over this route's limit");
    ch_http_resp rs = {0};
    ch_buf_init(&rs.body, RESP_MAX);
    rs.status = 200;
    rq->route->handler(h->o.ud, rq, &rs);
    if (rs.status == 0)
        route_error(rq, &rs, 500, NULL, "internal error");
    rq->answered = true;
    enum MHD_Result r = send_resp(rq, &rs);
    ch_buf_free(&rs.body);
    return r;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    ch_http_req *rq = *con_cls;
    if (rq == NULL)
        return;
    ch_buf_free(&rq->body);
    ch_free(rq);
    *con_cls = NULL;
}

int ch_http_start(const ch_http_opts *o, ch_http **out, ch_error *err)
{
    *out = NULL;
    struct sockaddr_storage ss;
    socklen_t sl;
    bool loopback;
    int rc = ch_listen_parse(o->listen, &ss, &sl, &loopback, err);
    if (rc < 0)
        return rc;
    if (!loopback && o->tls_cert_pem == NULL)
        return ch_error_set(err, CH_EUSAGE, "listen %s is not loopback: TLS is required",
                            o->listen);
    if ((rc = ch_mhd_load(err)) < 0)
        return rc;
    ch_http *h = ch_calloc(1, sizeof *h);
    if (h == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    h->o = *o;
    bool ok = true;
    for (int r = 0; r < CH_ROLE__COUNT; r++)
        if (o->tokens[r] != NULL && o->tokens_len[r] > 0) {
            h->tokens[r] = ch_malloc(o->tokens_len[r]);
            ok &= h->tokens[r] != NULL;
            if (h->tokens[r] != NULL) {
                memcpy(h->tokens[r], o->tokens[r], o->tokens_len[r]);
                h->tokens_len[r] = o->tokens_len[r];
            }
        }
    if (o->tls_cert_pem) {
        h->cert = ch_strdup(o->tls_cert_pem);
        h->key = ch_strdup(o->tls_key_pem);
        ok &= h->cert != NULL && h->key != NULL;
    }
    if (!ok) {
        ch_http_stop(h);
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_AUTO;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (h->cert)
        flags |= MHD_USE_TLS;
    unsigned maxc = o->max_connections ? o->max_connections : 64;
    unsigned tmo = o->timeout_s ? o->timeout_s : 60;
    unsigned per_ip = o->per_ip_connections ? o->per_ip_connections : maxc;
    struct MHD_OptionItem tls[] = {
        {MHD_OPTION_HTTPS_MEM_KEY, 0, h->key},
        {MHD_OPTION_HTTPS_MEM_CERT, 0, h->cert},
        {MHD_OPTION_END, 0, NULL},
    };
    struct MHD_OptionItem none[] = {{MHD_OPTION_END, 0, NULL}};
    h->d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_LIMIT, maxc, MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, tmo, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_ARRAY, h->cert ? tls : none, MHD_OPTION_END);
    if (h->d == NULL) {
        ch_http_stop(h);
        return ch_error_set(err, CH_EIO,
                            "cannot listen on %s (address in use or not local, or TLS "
                            "certificate/key refused)",
                            o->listen);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : 0;
    *out = h;
    return 0;
}

uint16_t ch_http_port(const ch_http *h) { return h->port; }

void ch_http_stop(ch_http *h)
{
    if (h == NULL)
        return;
    if (h->d != NULL)
        MHD_stop_daemon(h->d);
    for (int r = 0; r < CH_ROLE__COUNT; r++) {
        if (h->tokens[r] != NULL) {
            volatile char *p = h->tokens[r];
            for (size_t i = 0; i < h->tokens_len[r]; i++)
                p[i] = 0;
        }
        ch_free(h->tokens[r]);
    }
    ch_free(h->cert);
    if (h->key != NULL) {
        volatile char *p = h->key;
        while (*p)
            *p++ = 0;
    }
    ch_free(h->key);
    ch_free(h);
}
