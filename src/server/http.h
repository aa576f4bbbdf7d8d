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
 * Authentication: a route's role names the tokens that open it. A token is sent as
 * "Authorization: Bearer TOKEN" or, on routes that say so, in another header (Firehose's
 * X-Amz-Firehose-Access-Key). Tokens are compared in constant time against each configured
 * one. A role without tokens configured closes its routes (403): there are no default
 * credentials. Public routes (health, metrics) need none.
 *
 * Ownership: the server borrows the route table (static in the caller) and copies tokens and
 * TLS material; ch_http_stop frees everything. A response body is built in the ch_buf the
 * handler is given and handed to libmicrohttpd without a copy.
 */
#ifndef CH_SERVER_HTTP_H
#define CH_SERVER_HTTP_H

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
} ch_http_resp;

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
} ch_route;

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

/* {"error": message} into rs with status. */
void ch_http_error(ch_http_resp *rs, unsigned status, const char *message);

#endif
