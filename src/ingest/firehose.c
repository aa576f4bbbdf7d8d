/*
 * firehose.c - the Firehose HTTP endpoint protocol and CloudWatch Logs envelopes (see
 * firehose.h).
 *
 * Two JSON parsers: the outer one holds the request document while the records are walked, the
 * inner one parses each unpacked CloudWatch Logs payload, so no record is copied out of the
 * request first. Each record costs its base64 decode, at most one gunzip and one parse, all
 * into scratch buffers reused across records: memory is bounded by the caps, not by the
 * number of records.
 */
#include "ingest/firehose.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "core/json.h"
#include "core/mem.h"

#define MAX_DEPTH 32
#define MAX_MESSAGES 1000000

struct ch_firehose {
    ch_json_parser *outer, *inner;
    ch_buf decoded, unpacked, joined;
    char origin[512];
};

int ch_firehose_new(ch_firehose **out)
{
    ch_firehose *f = ch_calloc(1, sizeof *f);
    if (f == NULL)
        return CH_ENOMEM;
    f->outer = ch_json_parser_new(CH_FIREHOSE_MAX_BODY, MAX_DEPTH);
    f->inner = ch_json_parser_new(CH_FIREHOSE_MAX_UNPACKED, MAX_DEPTH);
    ch_buf_init(&f->decoded, CH_FIREHOSE_MAX_RECORD);
    ch_buf_init(&f->unpacked, CH_FIREHOSE_MAX_UNPACKED);
    ch_buf_init(&f->joined, CH_FIREHOSE_MAX_UNPACKED);
    if (f->outer == NULL || f->inner == NULL) {
        ch_firehose_free(f);
        return CH_ENOMEM;
    }
    *out = f;
    return 0;
}

void ch_firehose_free(ch_firehose *f)
{
    if (f == NULL)
        return;
    ch_json_parser_free(f->outer);
    ch_json_parser_free(f->inner);
    ch_buf_free(&f->decoded);
    ch_buf_free(&f->unpacked);
    ch_buf_free(&f->joined);
    ch_free(f);
}

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int ch_base64_decode(const char *in, size_t n, ch_buf *out)
{
    while (n > 0 && in[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return CH_EPARSE;
    int rc = ch_buf_reserve(out, n / 4 * 3 + 3);
    if (rc < 0)
        return rc;
    unsigned char *o = (unsigned char *)out->data + out->len;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64val((unsigned char)in[i]);
        if (v < 0)
            return CH_EPARSE;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            *o++ = (unsigned char)(acc >> bits);
        }
    }
    out->len = (size_t)((char *)o - out->data);
    out->data[out->len] = '\0';
    return 0;
}

int ch_gunzip(const void *data, size_t len, ch_buf *out, ch_error *err)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 16) != Z_OK)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    z.next_in = (Bytef *)data;
    z.avail_in = len > UINT32_MAX ? UINT32_MAX : (uInt)len;
    int rc = 0;
    for (;;) {
        if (out->cap - out->len < 65536 + 1 && (rc = ch_buf_reserve(out, 65536)) < 0) {
            rc = ch_error_set(err, rc, "gzip payload larger than %zu bytes", out->max);
            break;
        }
        z.next_out = (Bytef *)out->data + out->len;
        z.avail_out = (uInt)(out->cap - out->len - 1);
        uInt before = z.avail_out;
        int zr = inflate(&z, Z_NO_FLUSH);
        out->len += before - z.avail_out;
        out->data[out->len] = '\0';
        if (zr == Z_STREAM_END) {
            if (z.avail_in == 0)
                break;
            /* Another gzip member follows (concatenated streams, as gzip -dc reads them). */
            if (inflateReset(&z) != Z_OK) {
                rc = ch_error_set(err, CH_EPARSE, "damaged gzip stream");
                break;
            }
            continue;
        }
        if (zr == Z_BUF_ERROR && z.avail_in == 0) {
            rc = ch_error_set(err, CH_EPARSE, "truncated gzip stream");
            break;
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            rc = ch_error_set(err, CH_EPARSE, "damaged gzip stream: %s", z.msg ? z.msg : "?");
            break;
        }
    }
    inflateEnd(&z);
    return rc;
}

static int want_str(ch_json_val obj, const char *key, const char **s, size_t *n)
{
    ch_json_val v;
    return ch_json_obj_get(obj, key, strlen(key), &v) && ch_json_get_str(v, s, n);
}

/* The end of the JSON document starting at d[0] (an object: strings and escapes respected), or
 * 0 when it does not close. Firehose and S3 deliveries concatenate documents ("}{"). */
static size_t doc_end(const char *d, size_t n)
{
    int depth = 0;
    bool str = false, esc = false;
    for (size_t i = 0; i < n; i++) {
        char c = d[i];
        if (str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                str = false;
        } else if (c == '"') {
            str = true;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if ((c == '}' || c == ']') && --depth == 0) {
            return i + 1;
        }
    }
    return 0;
}

/* One CloudWatch Logs document at doc[0..n): its messages appended to f->joined. 1 = a data
 * message, 2 = a control message, 0 = not a CloudWatch Logs document, negative = malformed. */
static int cwl_doc(ch_firehose *f, const char *doc, size_t n, size_t cap, ch_firehose_payload *p,
                   ch_error *err)
{
    ch_json_val root, v, events;
    ch_error jerr = {0};
    const char *s;
    size_t sn;
    if (ch_json_parse(f->inner, doc, n, cap, &root, &jerr) < 0 ||
        ch_json_typeof(root) != CH_JSON_OBJECT || !want_str(root, "messageType", &s, &sn))
        return 0;
    if (sn == 15 && memcmp(s, "CONTROL_MESSAGE", 15) == 0)
        return 2;
    if (!(sn == 12 && memcmp(s, "DATA_MESSAGE", 12) == 0))
        return ch_error_set(err, CH_EPARSE,
                            "record %zu: unknown CloudWatch Logs messageType '%.*s'", p->index,
                            (int)(sn > 40 ? 40 : sn), s);
    if (!ch_json_obj_get(root, "logEvents", 9, &events) || ch_json_typeof(events) != CH_JSON_ARRAY)
        return ch_error_set(err, CH_EPARSE, "record %zu: CloudWatch Logs data without logEvents",
                            p->index);
    if (f->origin[0] == '\0') {
        const char *g = "", *st = "";
        size_t gn = 0, stn = 0;
        want_str(root, "logGroup", &g, &gn);
        want_str(root, "logStream", &st, &stn);
        snprintf(f->origin, sizeof f->origin, "%.*s/%.*s", (int)(gn > 250 ? 250 : gn), g,
                 (int)(stn > 250 ? 250 : stn), st);
    }
    ch_json_iter it;
    ch_json_arr_iter(events, &it);
    while (ch_json_arr_next(&it, &v)) {
        if (ch_json_typeof(v) != CH_JSON_OBJECT || !want_str(v, "message", &s, &sn))
            return ch_error_set(err, CH_EPARSE, "record %zu: log event %zu has no message",
                                p->index, p->messages);
        if (++p->messages > MAX_MESSAGES)
            return ch_error_set(err, CH_ELIMIT, "record %zu: more than %d log events", p->index,
                                MAX_MESSAGES);
        /* A message is one record; a newline inside it would split it. */
        while (sn > 0 && (s[sn - 1] == '\n' || s[sn - 1] == '\r'))
            sn--;
        if (memchr(s, '\n', sn) != NULL)
            return ch_error_set(err, CH_EPARSE, "record %zu: log event %zu spans lines", p->index,
                                p->messages - 1);
        if (ch_buf_add(&f->joined, s, sn) < 0 || ch_buf_addc(&f->joined, '\n') < 0)
            return ch_error_set(err, CH_ELIMIT, "record %zu: log events over %u bytes", p->index,
                                CH_FIREHOSE_MAX_UNPACKED);
    }
    return 1;
}

/* f->unpacked as CloudWatch Logs documents (one, or several concatenated): the payload filled
 * and 1, 0 when it is not CloudWatch Logs data (pass the record on raw), negative when it is
 * but malformed. */
static int unpack_cwl(ch_firehose *f, ch_firehose_payload *p, ch_error *err)
{
    const char *d = f->unpacked.data;
    size_t n = f->unpacked.len, at = 0;
    bool data = false, any = false;
    ch_buf_clear(&f->joined);
    f->origin[0] = '\0';
    while (at < n) {
        while (at < n && (d[at] == ' ' || d[at] == '\n' || d[at] == '\r' || d[at] == '\t'))
            at++;
        if (at == n)
            break;
        size_t len = d[at] == '{' ? doc_end(d + at, n - at) : 0;
        int rc = len ? cwl_doc(f, d + at, len, f->unpacked.cap - at, p, err) : 0;
        if (rc < 0)
            return rc;
        if (rc == 0) {
            if (any) /* CloudWatch Logs documents followed by something else */
                return ch_error_set(err, CH_EPARSE,
                                    "record %zu: damaged CloudWatch Logs data "
                                    "at byte %zu",
                                    p->index, at);
            return 0;
        }
        any = true;
        data |= rc == 1;
        at += len;
    }
    if (!any)
        return 0;
    p->kind = data ? CH_FIREHOSE_CWL_DATA : CH_FIREHOSE_CWL_CONTROL;
    if (data) {
        p->data = f->joined.data;
        p->len = f->joined.len;
        p->origin = f->origin;
    }
    return 1;
}

int ch_firehose_parse(ch_firehose *f, const char *body, size_t len, ch_firehose_request *req,
                      ch_firehose_cb cb, void *ud, ch_error *err)
{
    memset(req, 0, sizeof *req);
    ch_json_val root, v, recs, rec;
    ch_error jerr = {0};
    const char *s;
    size_t n;
    int rc = ch_json_parse(f->outer, body, len, len, &root, &jerr);
    if (rc < 0)
        return ch_error_set(err, rc, "request body is not JSON: %s", jerr.msg);
    if (ch_json_typeof(root) != CH_JSON_OBJECT)
        return ch_error_set(err, CH_EPARSE, "request body is not a JSON object");
    if (!want_str(root, "requestId", &s, &n) || n == 0 || n > CH_FIREHOSE_ID_MAX)
        return ch_error_set(err, CH_EPARSE, "requestId missing, empty or longer than %d",
                            CH_FIREHOSE_ID_MAX);
    memcpy(req->request_id, s, n);
    req->request_id[n] = '\0';
    if (!ch_json_obj_get(root, "timestamp", 9, &v) || !ch_json_get_i64(v, &req->timestamp_ms))
        return ch_error_set(err, CH_EPARSE, "timestamp missing or not an integer");
    if (!ch_json_obj_get(root, "records", 7, &recs) || ch_json_typeof(recs) != CH_JSON_ARRAY)
        return ch_error_set(err, CH_EPARSE, "records missing or not an array");
    ch_json_iter it;
    ch_json_arr_iter(recs, &it);
    while (ch_json_arr_next(&it, &rec)) {
        ch_firehose_payload p = {req->records, CH_FIREHOSE_RAW, NULL, 0, 0, ""};
        if (req->records >= CH_FIREHOSE_MAX_RECORDS)
            return ch_error_set(err, CH_ELIMIT, "more than %d records", CH_FIREHOSE_MAX_RECORDS);
        if (ch_json_typeof(rec) != CH_JSON_OBJECT || !want_str(rec, "data", &s, &n))
            return ch_error_set(err, CH_EPARSE, "record %zu has no data string", p.index);
        req->records++;
        ch_buf_clear(&f->decoded);
        rc = ch_base64_decode(s, n, &f->decoded);
        if (rc == CH_ELIMIT)
            return ch_error_set(err, rc, "record %zu is over %u bytes", p.index,
                                CH_FIREHOSE_MAX_RECORD);
        if (rc < 0)
            return ch_error_set(err, CH_EPARSE, "record %zu: data is not base64", p.index);
        const ch_buf *raw = &f->decoded;
        if (f->decoded.len >= 2 && (unsigned char)f->decoded.data[0] == 0x1f &&
            (unsigned char)f->decoded.data[1] == 0x8b) {
            ch_buf_clear(&f->unpacked);
            ch_error gerr = {0};
            rc = ch_gunzip(f->decoded.data, f->decoded.len, &f->unpacked, &gerr);
            if (rc < 0)
                return ch_error_set(err, rc, "record %zu: %s", p.index, gerr.msg);
            /* simdjson reads past the end: keep its padding inside the buffer. */
            if ((rc = ch_buf_reserve(&f->unpacked, CH_JSON_PADDING)) < 0)
                return ch_error_set(err, rc, "record %zu: payload too large", p.index);
            raw = &f->unpacked;
            rc = unpack_cwl(f, &p, err);
            if (rc < 0)
                return rc;
        }
        if (p.kind == CH_FIREHOSE_RAW) {
            p.data = raw->data;
            p.len = raw->len;
            req->raw++;
        } else if (p.kind == CH_FIREHOSE_CWL_DATA) {
            req->cwl_data++;
        } else {
            req->cwl_control++;
        }
        rc = cb(ud, &p);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int ch_firehose_response(ch_buf *out, const char *request_id, int64_t now_ms,
                         const char *error_message)
{
    int rc = ch_buf_adds(out, "{\"requestId\":");
    if (rc == 0)
        rc = ch_buf_add_json_str(out, request_id ? request_id : "",
                                 request_id ? strlen(request_id) : 0);
    if (rc == 0)
        rc = ch_buf_printf(out, ",\"timestamp\":%lld", (long long)now_ms);
    if (rc == 0 && error_message != NULL) {
        rc = ch_buf_adds(out, ",\"errorMessage\":");
        if (rc == 0)
            rc = ch_buf_add_json_str(out, error_message, strlen(error_message));
    }
    if (rc == 0)
        rc = ch_buf_addc(out, '}');
    return rc;
}
