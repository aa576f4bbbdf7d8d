/*
 * firehose.h - Amazon Data Firehose HTTP endpoint delivery: the request body Firehose POSTs
 * ({"requestId", "timestamp", "records": [{"data": BASE64}]}), the answer it expects
 * ({"requestId", "timestamp"} plus "errorMessage" on failure, always application/json), and the
 * CloudWatch Logs subscription payloads inside the records.
 *
 * A record sent by a CloudWatch Logs subscription is gzip'd JSON: {"messageType":
 * "DATA_MESSAGE", "owner", "logGroup", "logStream", "subscriptionFilters", "logEvents": [{"id",
 * "timestamp", "message"}]}. Its messages (CloudTrail events as JSON, VPC flow log lines,
 * Route 53 Resolver query log JSON) are joined with newlines into one batch, which is JSON
 * Lines or header-less flow log lines: formats every parser already reads. CONTROL_MESSAGE
 * records (CloudWatch Logs checking the destination) are counted and dropped. Any other record
 * (a direct PUT) is passed on as it is, gunzipped when it is gzip.
 *
 * Caps: records per request, bytes per decoded record, bytes per unpacked payload, messages
 * per payload; CH_ELIMIT beyond them, CH_EPARSE for anything not in the documented shape.
 *
 * Ownership: a ch_firehose is made by ch_firehose_new and freed by ch_firehose_free (it holds
 * the JSON parsers and scratch buffers, so one per thread). What the callback receives borrows
 * from it for the duration of the call.
 */
#ifndef CH_INGEST_FIREHOSE_H
#define CH_INGEST_FIREHOSE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"

#define CH_FIREHOSE_MAX_RECORDS 100000
#define CH_FIREHOSE_MAX_RECORD (4u << 20)    /* decoded bytes of one record (AWS: 1000 KiB) */
#define CH_FIREHOSE_MAX_UNPACKED (64u << 20) /* after gunzip */
#define CH_FIREHOSE_MAX_BODY (80u << 20)     /* request body (AWS buffers up to 64 MiB) */
#define CH_FIREHOSE_ID_MAX 128

typedef enum ch_firehose_kind {
    CH_FIREHOSE_RAW = 0,     /* a record as put into the stream */
    CH_FIREHOSE_CWL_DATA,    /* CloudWatch Logs messages joined by newlines */
    CH_FIREHOSE_CWL_CONTROL, /* a CloudWatch Logs control message (no payload) */
} ch_firehose_kind;

typedef struct ch_firehose_payload {
    size_t index; /* the record's index in the request */
    ch_firehose_kind kind;
    const char *data; /* NULL for CH_FIREHOSE_CWL_CONTROL */
    size_t len;
    size_t messages;    /* CloudWatch Logs events joined (CH_FIREHOSE_CWL_DATA) */
    const char *origin; /* "LOGGROUP/LOGSTREAM" for CloudWatch Logs, "" otherwise */
} ch_firehose_payload;

/* Return 0 to go on; a negative code stops the parse and is returned. */
typedef int (*ch_firehose_cb)(void *ud, const ch_firehose_payload *p);

typedef struct ch_firehose_request {
    char request_id[CH_FIREHOSE_ID_MAX + 1];
    int64_t timestamp_ms;
    size_t records, cwl_data, cwl_control, raw;
} ch_firehose_request;

typedef struct ch_firehose ch_firehose;

int ch_firehose_new(ch_firehose **out);
void ch_firehose_free(ch_firehose *f);

/* Parse a request body (already gunzipped when Content-Encoding was gzip) and call cb for every
 * record, in order. req->request_id and timestamp are filled as soon as they are read, so an
 * error answer can carry them. */
int ch_firehose_parse(ch_firehose *f, const char *body, size_t len, ch_firehose_request *req,
                      ch_firehose_cb cb, void *ud, ch_error *err);

/* The answer body: {"requestId":ID,"timestamp":NOW} and, when error_message is not NULL,
 * "errorMessage". */
int ch_firehose_response(ch_buf *out, const char *request_id, int64_t now_ms,
                         const char *error_message);

/* Base64 (standard alphabet, padding optional, no whitespace) into out; CH_EPARSE when invalid,
 * CH_ELIMIT past out->max. Appends. */
int ch_base64_decode(const char *in, size_t n, ch_buf *out);

/* gunzip (concatenated members too) into out (appends), at most out->max bytes: CH_ELIMIT past
 * it, CH_EPARSE when the stream is damaged. */
int ch_gunzip(const void *data, size_t len, ch_buf *out, ch_error *err);

#endif
