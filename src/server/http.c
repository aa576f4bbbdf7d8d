/*
 * http.c - route table dispatch, token checks and body collection over libmicrohttpd (see
 * http.h for the threading and security story).
 *
 * libmicrohttpd calls the access handler several times per request: first with the headers
 * (the route is found, the token checked and Content-Length compared with the route's limit
 * here, so a refused request is answered before its body is read), then once per piece of
 * body (appended to a buffer capped at the limit), then once more with nothing, when the
 * handler runs. The per-request context is freed by the completion callback whatever happened.
 * Route lookup is a linear scan of a table of a handful of routes.
 */
#include "server/http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "core/mem.h"
#include "server/config.h"

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

struct ch_http_req {
    ch_http *h;
    struct MHD_Connection *conn;
    const ch_route *route;
    int route_index;
    ch_buf body;
    bool too_large;
    bool answered; /* an answer was queued at the first call */
    char peer[64];
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

void ch_http_error(ch_http_resp *rs, unsigned status, const char *message)
{
    ch_buf_clear(&rs->body);
    rs->status = status;
    rs->content_type = "application/json";
    ch_buf_adds(&rs->body, "{\"error\":");
    ch_buf_add_json_str(&rs->body, message, strlen(message));
    ch_buf_addc(&rs->body, '}');
}

static void route_error(ch_http_req *rq, ch_http_resp *rs, unsigned status, const char *message)
{
    if (rq->route != NULL && rq->route->error_body != NULL) {
        ch_buf_clear(&rs->body);
        rs->status = status;
        rs->content_type = "application/json";
        rq->route->error_body(rq->h->o.ud, rq, rs, message);
    } else {
        ch_http_error(rs, status, message);
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

/* 0 ok, 401 no or wrong token, 403 role without tokens. Every configured token is compared,
 * so the time taken does not say which one (or whether an early one) matched. */
static unsigned check_token(ch_http_req *rq)
{
    ch_role role = rq->route->role;
    if (role == CH_ROLE_PUBLIC)
        return 0;
    ch_http *h = rq->h;
    if (h->tokens[role] == NULL)
        return 403;
    const char *given = NULL;
    const char *auth = ch_http_header(rq, "Authorization");
    if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0)
        given = auth + 7;
    if (given == NULL && rq->route->token_header != NULL)
        given = ch_http_header(rq, rq->route->token_header);
    if (given == NULL)
        return 401;
    size_t gn = strlen(given);
    bool ok = false;
    for (const char *t = h->tokens[role]; t < h->tokens[role] + h->tokens_len[role];
         t += strlen(t) + 1)
        ok |= ct_equal(given, gn, t, strlen(t));
    return ok ? 0 : 401;
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
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
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

static enum MHD_Result answer_now(ch_http_req *rq, unsigned status, const char *msg)
{
    ch_http_resp rs = {0};
    ch_buf_init(&rs.body, ERROR_BODY_MAX);
    route_error(rq, &rs, status, msg);
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
        bool path_known = false;
        for (int i = 0; h->o.routes[i].method != NULL; i++) {
            if (strcmp(h->o.routes[i].path, url) != 0)
                continue;
            path_known = true;
            if (strcmp(h->o.routes[i].method, method) == 0 ||
                (strcmp(method, "HEAD") == 0 && strcmp(h->o.routes[i].method, "GET") == 0)) {
                rq->route = &h->o.routes[i];
                rq->route_index = i;
                break;
            }
        }
        if (rq->route == NULL)
            return answer_now(rq, path_known ? 405 : 404,
                              path_known ? "method not allowed on this path" : "no such route");
        unsigned t = check_token(rq);
        if (t == 403)
            return answer_now(rq, 403, "no tokens are configured for this route's role");
        if (t == 401)
            return answer_now(rq, 401, "a valid token is required");
        const char *cl = ch_http_header(rq, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl != NULL && strtoull(cl, NULL, 10) > rq->route->body_limit)
            return answer_now(rq, 413, "request body over this route's limit");
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
        return answer_now(rq, 413, "request body over this route's limit");
    ch_http_resp rs = {0};
    ch_buf_init(&rs.body, RESP_MAX);
    rs.status = 200;
    rq->route->handler(h->o.ud, rq, &rs);
    if (rs.status == 0)
        route_error(rq, &rs, 500, "internal error");
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
    struct MHD_OptionItem tls[] = {
        {MHD_OPTION_HTTPS_MEM_KEY, 0, h->key},
        {MHD_OPTION_HTTPS_MEM_CERT, 0, h->cert},
        {MHD_OPTION_END, 0, NULL},
    };
    struct MHD_OptionItem none[] = {{MHD_OPTION_END, 0, NULL}};
    h->d =
        MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR,
                         (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT, maxc,
                         MHD_OPTION_CONNECTION_TIMEOUT, tmo, MHD_OPTION_NOTIFY_COMPLETED,
                         on_completed, h, MHD_OPTION_ARRAY, h->cert ? tls : none, MHD_OPTION_END);
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
