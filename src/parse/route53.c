/*
 * route53.c - Amazon Route 53 Resolver query logs (with DNS Firewall fields).
 *
 * Records arrive as JSON Lines (S3 and Firehose delivery), or wrapped in CloudWatch Logs
 * subscription envelopes ({"messageType":"DATA_MESSAGE", "logEvents":[{"message":"<record>"}]})
 * where each log event's message is one record as a JSON string. ch_jsonrec frames the
 * records without parsing them, simdjson parses each one once, and the hot fields are pulled
 * into typed slots; everything else stays reachable in the parsed document (raw_doc).
 * Envelope messages are parsed by a second parser so that the envelope stays valid while its
 * events are walked; that costs one copy of each message into simdjson's padded buffer.
 *
 * Mapping (docs/SCHEMA.md): @timestamp <- query_timestamp; dns.question.name <- query_name in
 * lower case without its trailing dot (copied into a per-stream buffer, as it is rewritten);
 * dns.question.type, dns.response_code, dns.answers (the first 16 Rdata values, as given);
 * source.ip/port <- srcaddr/srcport (a string in AWS's records; numbers are accepted too);
 * network.transport in lower case; cloud.instance.id <- srcids.instance.
 * event.action is "query", or the DNS Firewall action (BLOCK, ALERT, ALLOW, as AWS spells it)
 * when a firewall rule matched, so that "the firewall blocked a mining domain" is one typed
 * comparison. event.outcome is failure for a BLOCKed query (whatever rcode the firewall
 * answered with), otherwise success for NOERROR and failure for any other rcode.
 */
#include "parse/source.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/mem.h"
#include "core/timeparse.h"
#include "parse/jsonrec.h"
#include "parse/jsonstream.h"

#define R53_MAX_RECORD (1u << 20) /* real records are < 2 KB; envelopes hold many */
#define R53_MAX_ENVELOPE (16u << 20)
#define R53_MAX_DEPTH 64
#define R53_MAX_QNAME 1024 /* DNS names are at most 255 bytes on the wire */

struct ch_stream {
    ch_input *in;
    ch_diag *diag;
    const char *file;
    ch_jsonrec *rec;
    ch_json_parser *jp;    /* the record or the envelope */
    ch_json_parser *inner; /* one envelope message */
    bool in_envelope;
    ch_json_iter env_it;
    ch_jsonrec_rec env_rec; /* where the envelope was, for messages */
    char qname[R53_MAX_QNAME];
    char transport[16];
    ch_buf minified;
};

static bool get_str(ch_json_val obj, const char *key, size_t klen, ch_sv *out)
{
    ch_json_val v;
    const char *p;
    size_t n;
    if (!ch_json_obj_get(obj, key, klen, &v) || !ch_json_get_str(v, &p, &n) || n > UINT32_MAX)
        return false;
    *out = (ch_sv){p, (uint32_t)n};
    return true;
}
#define GET_STR(obj, lit, out) get_str((obj), (lit), sizeof(lit) - 1, (out))

static void report(ch_stream *s, const ch_jsonrec_rec *r, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void report(ch_stream *s, const ch_jsonrec_rec *r, const char *reason, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ch_diag_report(s->diag, CH_DS_ROUTE53, s->file, r->line, r->offset, reason, "%s", msg);
}

/* Reason for a failed parse, from simdjson's. */
static bool parse_port(ch_json_val v, uint16_t *out)
{
    const char *p;
    size_t n;
    uint64_t x = 0;
    if (ch_json_get_u64(v, &x))
        goto range;
    if (!ch_json_get_str(v, &p, &n) || n == 0 || n > 5)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        x = x * 10 + (uint64_t)(p[i] - '0');
    }
range:
    if (x > 65535)
        return false;
    *out = (uint16_t)x;
    return true;
}

/* Normalize one parsed record. Returns true with ev filled, false after reporting. `text` is
 * the record's own JSON (one line unless multiline). */
static bool normalize(ch_stream *s, ch_json_val root, const char *text, size_t n, bool multiline,
                      const ch_jsonrec_rec *where, ch_event *ev)
{
    ch_sv v;
    ch_json_val x;

    if (ch_json_typeof(root) != CH_JSON_OBJECT || !GET_STR(root, "query_name", &v)) {
        report(s, where, "not_route53", "record has no query_name");
        return false;
    }
    ch_event_reset(ev);
    ev->dataset = CH_DS_ROUTE53;

    /* dns.question.name: lower case, trailing dot dropped. */
    if (v.n > R53_MAX_QNAME) {
        report(s, where, "not_route53", "query_name of %u bytes is longer than any DNS name", v.n);
        return false;
    }
    uint32_t qn = v.n;
    if (qn > 0 && v.p[qn - 1] == '.')
        qn--;
    for (uint32_t i = 0; i < qn; i++) {
        char c = v.p[i];
        s->qname[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    ev->dns_qname = (ch_sv){s->qname, qn};

    ch_sv ts;
    if (!GET_STR(root, "query_timestamp", &ts) || !ch_time_parse_iso8601(ts.p, ts.n, &ev->ts_ms)) {
        report(s, where, "bad_timestamp", "query_timestamp is missing or not ISO 8601");
        return false;
    }

    if (ch_json_obj_get(root, "srcaddr", 7, &x) && ch_json_typeof(x) != CH_JSON_NULL) {
        const char *ap = "";
        size_t an = 0;
        if (!ch_json_get_str(x, &ap, &an) || !ch_ip_parse(ap, an, &ev->src_ip)) {
            report(s, where, "bad_address", "srcaddr '%.*s' is not an IP address",
                   (int)(an > 64 ? 64 : an), ap);
            return false;
        }
    }
    if (ch_json_obj_get(root, "srcport", 7, &x) && ch_json_typeof(x) != CH_JSON_NULL) {
        if (!parse_port(x, &ev->src_port)) {
            report(s, where, "bad_number", "srcport is not a port number");
            return false;
        }
        ev->flags |= CH_F_SRC_PORT;
    }

    GET_STR(root, "query_type", &ev->dns_qtype);
    GET_STR(root, "rcode", &ev->dns_rcode);
    GET_STR(root, "account_id", &ev->account_id);
    GET_STR(root, "region", &ev->region);
    if (ch_json_obj_get(root, "srcids", 6, &x))
        GET_STR(x, "instance", &ev->instance_id);

    if (GET_STR(root, "transport", &v)) {
        if (v.n < sizeof s->transport) {
            for (uint32_t i = 0; i < v.n; i++) {
                char c = v.p[i];
                s->transport[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
            }
            ev->transport = (ch_sv){s->transport, v.n};
        } else {
            ev->transport = v;
        }
        if (ch_sv_eq(ev->transport, "udp", 3))
            ev->iana_proto = 17;
        else if (ch_sv_eq(ev->transport, "tcp", 3))
            ev->iana_proto = 6;
    }

    ch_json_iter it;
    if (ch_json_obj_get(root, "answers", 7, &x) && ch_json_arr_iter(x, &it)) {
        ch_json_val a;
        while (ev->dns_nanswers < CH_EVENT_MAX_ANSWERS && ch_json_arr_next(&it, &a))
            if (GET_STR(a, "Rdata", &v))
                ev->dns_answers[ev->dns_nanswers++] = v;
    }

    ev->category = CH_SV("network");
    ev->type = CH_SV("protocol");
    bool blocked = false;
    if (GET_STR(root, "firewall_rule_action", &v) && v.n > 0) {
        ev->action = v;
        blocked = ch_sv_eq(v, "BLOCK", 5);
    } else {
        ev->action = CH_SV("query");
    }
    if (blocked)
        ev->outcome = CH_OUTCOME_FAILURE;
    else if (ev->dns_rcode.n > 0)
        ev->outcome =
            ch_sv_eq(ev->dns_rcode, "NOERROR", 7) ? CH_OUTCOME_SUCCESS : CH_OUTCOME_FAILURE;

    ev->has_raw_doc = true;
    ev->raw_doc = root;
    ev->raw_json = (ch_sv){text, (uint32_t)n};
    if (multiline) {
        size_t out = 0;
        ch_buf_clear(&s->minified);
        if (ch_buf_reserve(&s->minified, n + 1) < 0 ||
            ch_json_minify(text, n, s->minified.data, &out) < 0) {
            report(s, where, "record_too_large", "cannot write the record on one line");
            return false;
        }
        s->minified.len = out;
        ev->raw_json = (ch_sv){s->minified.data, (uint32_t)out};
    }
    return true;
}

/* The next message of the current envelope as an event. 1 with an event, 0 when the envelope
 * is exhausted. */
static int next_envelope_event(ch_stream *s, ch_event *ev)
{
    ch_ds_stats *st = &s->diag->by_ds[CH_DS_ROUTE53];
    ch_json_val le;
    while (ch_json_arr_next(&s->env_it, &le)) {
        ch_sv msg;
        ch_json_val root;
        ch_error err;
        ch_error_clear(&err);
        st->records++;
        if (!GET_STR(le, "message", &msg)) {
            report(s, &s->env_rec, "not_route53", "log event has no message string");
            continue;
        }
        if (ch_json_parse(s->inner, msg.p, msg.n, msg.n, &root, &err) < 0) {
            report(s, &s->env_rec, ch_jsonstream_parse_reason(s->inner), "log event message: %s",
                   err.msg);
            continue;
        }
        bool multiline = memchr(msg.p, '\n', msg.n) != NULL;
        if (!normalize(s, root, msg.p, msg.n, multiline, &s->env_rec, ev))
            continue;
        st->events++;
        return 1;
    }
    s->in_envelope = false;
    return 0;
}

static int next_(ch_stream *s, ch_event *ev)
{
    ch_ds_stats *st = &s->diag->by_ds[CH_DS_ROUTE53];
    for (;;) {
        if (s->in_envelope && next_envelope_event(s, ev) == 1)
            return 1;

        ch_jsonrec_rec r;
        ch_json_val root, x;
        int rc = ch_jsonstream_next(s->rec, s->jp, s->diag, CH_DS_ROUTE53, s->file, &r, &root);
        if (rc <= 0)
            return rc;
        ch_json_iter it;
        if (ch_json_typeof(root) == CH_JSON_OBJECT && ch_json_obj_get(root, "logEvents", 9, &x) &&
            ch_json_arr_iter(x, &it)) {
            /* A CloudWatch Logs envelope: its log events are the records. A control message
             * (the subscription's health check) holds a text log event that is no record: it
             * is neither counted nor reported. */
            ch_sv mt;
            if (GET_STR(root, "messageType", &mt) && ch_sv_eq(mt, "CONTROL_MESSAGE", 15))
                continue;
            s->in_envelope = true;
            s->env_it = it;
            s->env_rec = r;
            continue;
        }
        st->records++;
        if (!normalize(s, root, r.p, r.n, r.multiline, &r, ev))
            continue;
        st->events++;
        return 1;
    }
}

static void close_(ch_stream *s)
{
    if (s == NULL)
        return;
    ch_jsonrec_free(s->rec);
    ch_json_parser_free(s->jp);
    ch_json_parser_free(s->inner);
    ch_buf_free(&s->minified);
    ch_free(s);
}

static ch_stream *open_(ch_input *in, ch_diag *diag, ch_error *err)
{
    ch_stream *s = ch_calloc(1, sizeof *s);
    if (s == NULL)
        goto nomem;
    s->in = in;
    s->diag = diag;
    s->file = ch_input_name(in);
    ch_buf_init(&s->minified, R53_MAX_ENVELOPE);
    s->rec = ch_jsonrec_new(in, R53_MAX_ENVELOPE);
    s->jp = ch_json_parser_new(R53_MAX_ENVELOPE, R53_MAX_DEPTH);
    s->inner = ch_json_parser_new(R53_MAX_RECORD, R53_MAX_DEPTH);
    if (s->rec == NULL || s->jp == NULL || s->inner == NULL)
        goto nomem;
    return s;
nomem:
    close_(s);
    ch_error_set(err, CH_ENOMEM, "out of memory opening a Route 53 stream");
    return NULL;
}

/* Route 53 records are the only JSON here with both of these keys; in a CloudWatch envelope
 * they appear escaped inside message strings, which the plain substring still finds. */
static int detect(const char *head, size_t n)
{
    size_t i = 0;
    while (i < n && (head[i] == ' ' || head[i] == '\t' || head[i] == '\r' || head[i] == '\n'))
        i++;
    if (i == n || (head[i] != '{' && head[i] != '['))
        return 0;
    bool qn = memmem(head, n, "query_name", 10) != NULL;
    bool qt = memmem(head, n, "query_timestamp", 15) != NULL;
    return qn && qt ? 95 : qn || qt ? 40 : 0;
}

const ch_source_type ch_source_route53 = {
    "route53resolver", CH_DS_ROUTE53, detect, open_, next_, close_};
