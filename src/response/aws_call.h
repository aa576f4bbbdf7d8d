/*
 * aws_call.h - one signed AWS API call with the responder's rules: SigV4 (sigv4.h) with the
 * given credentials (creds.h), retries with exponential backoff and full jitter on throttling
 * (HTTP 429 and 503, and the codes Throttling, ThrottlingException, RequestLimitExceeded,
 * TooManyRequestsException, RequestThrottled, SlowDown), and errors that name the missing
 * permission ("AWS refused ec2:StopInstances (UnauthorizedOperation: ...): the responder's role
 * needs ec2:StopInstances").
 *
 * Errors are read from the shapes the AWS references document: the Query protocol's XML
 * (<ErrorResponse><Error><Code> for IAM and STS, <Response><Errors><Error><Code> for EC2) and
 * the JSON 1.1 protocol's {"__type": "...#Code", "message": "..."} (Route 53 Resolver).
 *
 * Ownership: the caller owns every buffer; nothing is kept between calls.
 */
#ifndef CH_RESPONSE_AWS_CALL_H
#define CH_RESPONSE_AWS_CALL_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/error.h"
#include "response/creds.h"

typedef struct ch_aws_request {
    const char *service;  /* signing name and IAM prefix: "ec2", "iam", "route53resolver" */
    const char *region;   /* signing region ("us-east-1" for IAM) */
    const char *action;   /* the API action, for messages: "StopInstances" */
    const char *endpoint; /* "https://ec2.us-east-1.amazonaws.com" (no trailing slash) */
    const char *target;   /* JSON 1.1: X-Amz-Target ("Route53Resolver.CreateFirewallDomainList");
                             NULL = Query protocol (form body) */
    const char *body;     /* form or JSON text */
    int max_attempts;     /* 0 = 5 */
    int base_delay_ms;    /* 0 = 100; the n-th retry waits up to base * 2^n ms, at most 20 s */
} ch_aws_request;

typedef struct ch_aws_result {
    long status;    /* HTTP status of the last attempt */
    int attempts;   /* made, 1.. */
    char code[128]; /* the AWS error code of the last attempt, "" on success */
} ch_aws_result;

/* Make the call; the last answer's body goes to resp. 0 on HTTP 2xx; otherwise CH_EIO with the
 * AWS code, message and, for a refusal, the permission in err. */
int ch_aws_call(const ch_aws_creds *c, const ch_aws_request *r, ch_buf *resp, ch_aws_result *res,
                ch_error *err);

/* The AWS error code and message of a response body (either protocol); false when it holds
 * none. For tests and the fuzz target. */
bool ch_aws_error_parse(const char *body, size_t n, char *code, size_t code_cap, char *msg,
                        size_t msg_cap);

#endif
