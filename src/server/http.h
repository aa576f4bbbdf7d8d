/*
 * http.h - the HTTP layer of `coinhound serve` on libmicrohttpd: one route table (method, path,
 * role, handler, body limit), token authentication by role, bodies collected up to the route's
 * limit, and one hook told of every answer (for the metrics).
 *
 * Threads: libmicrohttpd runs a thread per connection (capped by max_connections, and per
 * client address), so a handler may block, as ingest does while its records are committed to
 * the journal, without holding up other clients; that is also what lets concurrent ingest
 * requests share one fsync. A connection idle for timeout_s is closed. A body larger than the
 * route's limit is answered 413 as soon as its Content-Length (or its bytes) say so, and never
 * kept in memory past the limit.
 *
 * Routes: a path is literal segments and `{name}` segments, each `{...}` matching one
 * non-empty segment (ch_http_param gives it back, percent-decoded by libmicrohttpd). Every
 * route says its role, its body limit and its flags; tests/unit/test_api.c checks that the
 * OpenAPI document (docs/openapi.json) and this table name the same routes.
 *
 * Authentication (in this order; the first credential present decides):
 *   - "Authorization: Bearer TOKEN" (or, on routes that say so, another header such as
 *     Firehose's X-Amz-Firehose-Access-Key): a token of the token files of the serve config
 *     (compared in constant time with each) or an API token of the accounts store
 *     (`coinhound token create`), which has a role; a token that is neither is 401;
 *   - the session cookie of a console login (POST /api/v1/session): its account's role. A
 *     state-changing request (anything but GET and HEAD) on a session must carry the session's
 *     CSRF token in X-CSRF-Token (403 otherwise), unless the route is the login itself. A
 *     session whose password must change reaches only the routes flagged for it.
 * The role then must allow the route's (ch_role_allows): 401 without a credential, 403 with
 * one of a role too low. There are no default credentials: nothing opens a route until an
 * administrator creates a token or account.
 *
 * Every answer carries the security headers (a strict Content-Security-Policy, frame deny,
 * nosniff, no referrer, no-store; HSTS under TLS) and every error the one JSON shape
 * {"code","message","details"} (except routes with an error_body of their own: Firehose).
 *
 * Ownership: the server borrows the route table (static in the caller) and copies tokens and
 * TLS material; ch_http_stop frees everything. A response body is built in the ch_buf the
 * handler is given and handed to libmicrohttpd without a copy.
 */
#ifndef CH_SERVER_HTTP_H
#define CH_SERVER_HTTP_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"
#include "server/accounts.h"

/* Roles (CH_ROLE_PUBLIC, CH_ROLE_INGEST, CH_ROLE_READ...) are the accounts module's. Until the
 * token store serves this layer, a route's role names the token file that opens it. */

typedef struct ch_http_req ch_http_req;

typedef struct ch_http_resp {
    unsigned status;
    ch_buf body;
    const char *content_type; /* default application/json */
    unsigned retry_after_s;   /* Retry-After when > 0 */
    /* Headers a handler may set ("" = absent). */
    char etag[64];
    char content_range[64];
    char set_cookie[256];
    char location[256];
    const char *cache_control; /* NULL = no-store */
} ch_http_resp;

/* Route flags. */
#define CH_ROUTE_CSRF_EXEMPT (1u << 0)    /* login: the session does not exist yet */
#define CH_ROUTE_MUST_CHANGE_OK (1u << 1) /* open to a session whose password must change */

#define CH_HTTP_MAX_PARAMS 4
#define CH_HTTP_PARAM_MAX 256
#define CH_CSRF_HEADER "X-CSRF-Token"

/* Who is calling, as authentication found it. */
typedef enum ch_auth_via {
    CH_AUTH_NONE = 0,
    CH_AUTH_TOKEN_FILE, /* a token of the serve config's token files */
    CH_AUTH_TOKEN,      /* an API token of the accounts store */
    CH_AUTH_SESSION,    /* a console session cookie */
} ch_auth_via;

typedef struct ch_principal {
    ch_auth_via via;
    ch_role role;
    char name[CH_ACCOUNT_NAME_MAX + 16]; /* account or token name; "token-file:ROLE" */
    bool must_change;                    /* a session whose password must change */
    char session[CH_SECRET_B64_LEN + 1]; /* the session id (cookie value), via SESSION */
} ch_principal;

typedef void (*ch_http_handler)(void *ud, const ch_http_req *rq, ch_http_resp *rs);
/* Write an error body in the route's own shape (Firehose answers with its request id). */
typedef void (*ch_http_error_body)(void *ud, const ch_http_req *rq, ch_http_resp *rs,
                                   const char *message);

typedef struct ch_route {
    const char *method, *path;
    ch_role role;
    ch_http_handler handler;
    uint64_t body_limit;           /* 0 = no body accepted */
    const char *token_header;      /* another header that may carry the token, or NULL */
    ch_http_error_body error_body; /* NULL = {"error": MESSAGE} */
    const char *summary;
    unsigned flags; /* CH_ROUTE_* */
} ch_route;

/* Find the route for method and path in routes (NULL-method terminated): its index, or -1
 * with *path_known telling 405 from 404. HEAD finds GET routes. The `{name}` segments go into
 * params (NUL-terminated, at most CH_HTTP_MAX_PARAMS, each at most CH_HTTP_PARAM_MAX bytes:
 * a longer segment does not match). Pure and allocation-free (fuzzed: tests/fuzz/fuzz_api.c). */
int ch_route_match(const ch_route *routes, const char *method, const char *path,
                   char params[CH_HTTP_MAX_PARAMS][CH_HTTP_PARAM_MAX + 1], size_t *nparams,
                   bool *path_known);

typedef struct ch_http_opts {
    const char *listen; /* "127.0.0.1:8440", port 0 = an ephemeral one */
    const char *tls_cert_pem, *tls_key_pem;
    const ch_route *routes; /* terminated by a NULL method */
    void *ud;               /* given to handlers */
    /* Tokens per role: NUL-separated lists (as ch_token_file_load gives them). */
    const char *tokens[CH_ROLE__COUNT];
    size_t tokens_len[CH_ROLE__COUNT];
    unsigned max_connections; /* 0 = 64 */
    unsigned timeout_s;       /* 0 = 60 */
    /* API tokens and console sessions (may be NULL: token files only). The accounts handle
     * is one SQLite connection: every use, the handlers' too, holds accounts_mu. */
    ch_accounts *accounts;
    pthread_mutex_t *accounts_mu;
    unsigned per_ip_connections; /* 0 = max_connections (no cap of its own) */
    /* The web console's directory: a GET or HEAD that matches no route and is not under
     * /api/ is answered from it (server/console_static.h), without credentials, since the
     * files hold no data: every call they make goes through the authenticated API. */
    const char *console_dir;
    /* Told of every answer: route index (-1 when no route matched), status. */
    void (*on_answer)(void *ud, int route, unsigned status);
} ch_http_opts;

typedef struct ch_http ch_http;

/* Start serving on threads of its own. CH_EUSAGE for a bad address, CH_EIO when it cannot be
 * bound (in use, or TLS material refused). */
int ch_http_start(const ch_http_opts *o, ch_http **out, ch_error *err);
uint16_t ch_http_port(const ch_http *h);
/* Stop accepting, finish requests in flight, free. NULL is fine. */
void ch_http_stop(ch_http *h);

/* Request accessors for handlers. */
const char *ch_http_header(const ch_http_req *rq, const char *name);
const char *ch_http_arg(const ch_http_req *rq, const char *name);
const char *ch_http_body(const ch_http_req *rq, size_t *len);
const char *ch_http_peer(const ch_http_req *rq); /* "127.0.0.1" */
const ch_route *ch_http_route(const ch_http_req *rq);
const char *ch_http_method(const ch_http_req *rq);
const char *ch_http_param(const ch_http_req *rq, size_t i); /* "" past the last */
const ch_principal *ch_http_principal(const ch_http_req *rq);
bool ch_http_tls(const ch_http_req *rq);

/* The error code for a status: "not_found", "precondition_failed", ... */
const char *ch_http_status_code(unsigned status);
/* {"code","message","details":null} into rs with status (code from ch_http_status_code). */
void ch_http_error(ch_http_resp *rs, unsigned status, const char *message);
/* The same with a code of the caller's and details (JSON text, or NULL for null). */
void ch_http_error_full(ch_http_resp *rs, unsigned status, const char *code, const char *message,
                        const char *details_json);

#endif
