/*
 * jsonl.c - normalized events as JSON Lines, written as we go (no tree is built).
 *
 * Layout of one event: the ECS fields nested as ECS names them ("event": {"action": ...}),
 * then the original record's members at the top level, so that `requestParameters.instanceType`
 * or `srcids.instance` is found at its own path. JSON sources copy the record's text verbatim
 * (one memcpy: the parser already validated and, when needed, minified it). A source key that
 * would collide with an ECS root we write ("event", "user", ...) is moved under "original" so
 * the line stays valid JSON with unique keys; checking costs one walk over the record's
 * top-level keys, which the DOM makes cheap.
 */
#include <string.h>

#include "core/timeparse.h"
#include "output/output.h"

static bool ecs_root(const char *k, size_t n) { return ch_ecs_is_root(k, n); }

/* Tiny state machine so that nested objects get their commas right without a tree. It writes
 * through a raw cursor into space reserved ahead: one capacity check at the start of the event
 * and one per variable-length string (room for its worst-case escaping plus JW_SLACK), instead
 * of a check, a length update and a NUL on every key, brace and value. JW_SLACK covers every
 * fixed-size write of one event (about fifty keys, braces, two timestamps, two addresses, six
 * numbers: under 1.5 KB), so the fixed writes between two checks always fit. After a failed
 * reservation every helper does nothing, so nothing is ever written past the reservation. */
#define JW_SLACK 4096

typedef struct jw {
    ch_buf *b;
    char *p, *end; /* cursor and end of the reserved space in b */
    int rc;
    bool first[8];
    int depth;
} jw;

static bool jw_grow(jw *w, size_t need)
{
    w->b->len = (size_t)(w->p - w->b->data);
    if (ch_buf_reserve(w->b, need) < 0) {
        w->rc = CH_ENOMEM;
        return false;
    }
    w->p = w->b->data + w->b->len;
    w->end = w->b->data + w->b->cap - 1; /* keep the byte for the NUL */
    return true;
}

static inline bool jw_room(jw *w, size_t need)
{
    if (w->rc)
        return false;
    return (size_t)(w->end - w->p) >= need + JW_SLACK || jw_grow(w, need + JW_SLACK);
}

/* Back to ch_buf's contract (len, NUL) so that ch_buf calls can follow. */
static void jw_sync(jw *w)
{
    if (w->rc)
        return;
    w->b->len = (size_t)(w->p - w->b->data);
    w->b->data[w->b->len] = '\0';
}

/* qk is the key already quoted with its colon ("\"name\":"), a literal, so the copy has a
 * constant length. */
static inline void jw_qkey(jw *w, const char *qk, size_t qn)
{
    if (w->rc)
        return;
    if (!w->first[w->depth])
        *w->p++ = ',';
    w->first[w->depth] = false;
    memcpy(w->p, qk, qn);
    w->p += qn;
}
#define jw_key(w, k) jw_qkey((w), "\"" k "\":", sizeof(k) + 2)

static inline void jw_c(jw *w, char c)
{
    if (w->rc == 0)
        *w->p++ = c;
}

static inline void jw_qopen(jw *w, const char *qk, size_t qn)
{
    jw_qkey(w, qk, qn);
    jw_c(w, '{');
    if (w->rc == 0)
        w->first[++w->depth] = true;
}
#define jw_open(w, k) jw_qopen((w), "\"" k "\":", sizeof(k) + 2)

static inline void jw_close(jw *w)
{
    jw_c(w, '}');
    if (w->rc == 0)
        w->depth--;
}

static inline void jw_qstr(jw *w, const char *qk, size_t qn, ch_sv v)
{
    if (v.p == NULL || !jw_room(w, CH_JSON_STR_MAX(v.n)))
        return;
    jw_qkey(w, qk, qn);
    w->p = ch_json_str_put(w->p, v.p, v.n);
}
#define jw_str(w, k, v) jw_qstr((w), "\"" k "\":", sizeof(k) + 2, (v))

/* A value known to need no escaping (a literal, a formatted time, digits). */
static inline void jw_qplain(jw *w, const char *qk, size_t qn, const char *v, size_t n)
{
    jw_qkey(w, qk, qn);
    if (w->rc)
        return;
    *w->p++ = '"';
    memcpy(w->p, v, n);
    w->p += n;
    *w->p++ = '"';
}
#define jw_plain(w, k, v, n) jw_qplain((w), "\"" k "\":", sizeof(k) + 2, (v), (n))
#define jw_lit(w, k, lit) jw_plain((w), k, (lit), sizeof(lit) - 1)

static inline void jw_qu64(jw *w, const char *qk, size_t qn, uint64_t v)
{
    jw_qkey(w, qk, qn);
    if (w->rc)
        return;
    char tmp[24];
    int i = 24;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    memcpy(w->p, tmp + i, (size_t)(24 - i));
    w->p += 24 - i;
}
#define jw_u64(w, k, v) jw_qu64((w), "\"" k "\":", sizeof(k) + 2, (v))

/* Formatted in place: ch_ip_format writes at most 46 bytes (with its NUL), within JW_SLACK. */
static inline void jw_ip(jw *w, const ch_ip *ip)
{
    if (ip->family == 0)
        return;
    jw_key(w, "ip");
    if (w->rc)
        return;
    *w->p++ = '"';
    w->p += ch_ip_format(ip, w->p);
    *w->p++ = '"';
}

/* An ISO 8601 time: digits, '-', ':', '.', 'T', 'Z', never escaped. */
static inline void jw_qtime(jw *w, const char *qk, size_t qn, int64_t ms)
{
    jw_qkey(w, qk, qn);
    if (w->rc)
        return;
    char ts[32];
    size_t tn = ch_time_format(ms, ts);
    *w->p++ = '"';
    memcpy(w->p, ts, tn);
    w->p += tn;
    *w->p++ = '"';
}
#define jw_time(w, k, ms) jw_qtime((w), "\"" k "\":", sizeof(k) + 2, (ms))

static bool geo_has(const ch_geo *g) { return g->country[0] || g->asn || g->city.p; }

static void jw_qendpoint(jw *w, const char *qk, size_t qn, const ch_ip *ip, uint16_t port,
                         bool has_port, ch_sv address, const ch_geo *g)
{
    if (ip->family == 0 && !has_port && address.p == NULL)
        return;
    jw_qopen(w, qk, qn);
    jw_ip(w, ip);
    if (has_port)
        jw_u64(w, "port", port);
    if (address.p != NULL)
        jw_str(w, "address", address);
    if (g->internal) {
        /* Elastic's convention: internal addresses are not geolocated. */
        jw_key(w, "internal");
        if (w->rc == 0) {
            memcpy(w->p, "true", 4);
            w->p += 4;
        }
    }
    if (geo_has(g)) {
        jw_open(w, "geo");
        if (g->country[0])
            jw_str(w, "country_iso_code", ((ch_sv){g->country, (uint32_t)strlen(g->country)}));
        jw_str(w, "country_name", g->country_name);
        jw_str(w, "city_name", g->city);
        jw_close(w);
        if (g->asn) {
            jw_open(w, "as");
            jw_u64(w, "number", g->asn);
            if (g->as_org.p) {
                jw_open(w, "organization");
                jw_str(w, "name", g->as_org);
                jw_close(w);
            }
            jw_close(w);
        }
    }
    jw_close(w);
}
#define jw_endpoint(w, k, ...) jw_qendpoint((w), "\"" k "\":", sizeof(k) + 2, __VA_ARGS__)

/* A NUL-terminated string that may be NULL or "" (then nothing is written). */
#define jw_cstr(w, k, v)                                                                           \
    do {                                                                                           \
        const char *cs_ = (v);                                                                     \
        if (cs_ != NULL && cs_[0] != '\0')                                                         \
            jw_str((w), k, ((ch_sv){cs_, (uint32_t)strlen(cs_)}));                                 \
    } while (0)

/* The threat-intelligence match (intel/intel_match.h), as ECS nests it: enrichments is an
 * array (one element: coinhound keeps the first match), indicator and feed are objects. Only
 * written when there is a match. */
static void jw_threat(jw *w, const ch_threat *t)
{
    if (t->set == NULL || !jw_room(w, 256))
        return;
    jw_open(w, "threat");
    jw_key(w, "enrichments");
    jw_c(w, '[');
    jw_c(w, '{');
    if (w->rc == 0)
        w->first[++w->depth] = true;
    jw_open(w, "matched");
    if (t->atomic.n) {
        jw_str(w, "atomic", t->atomic);
    } else if (t->atomic_ip.family) {
        jw_key(w, "atomic");
        if (w->rc == 0) { /* at most 46 bytes, within JW_SLACK */
            *w->p++ = '"';
            w->p += ch_ip_format(&t->atomic_ip, w->p);
            *w->p++ = '"';
        }
    }
    jw_cstr(w, "field", t->field);
    jw_close(w);
    jw_close(w);
    jw_c(w, ']');
    bool conf = t->confidence >= 0;
    if ((t->indicator_id && t->indicator_id[0]) || (t->indicator_name && t->indicator_name[0]) ||
        (t->provider && t->provider[0]) || conf) {
        jw_open(w, "indicator");
        jw_cstr(w, "id", t->indicator_id);
        jw_cstr(w, "name", t->indicator_name);
        jw_cstr(w, "provider", t->provider);
        if (conf)
            jw_u64(w, "confidence", (uint64_t)t->confidence);
        jw_close(w);
    }
    if (t->feed && t->feed[0]) {
        jw_open(w, "feed");
        jw_cstr(w, "name", t->feed);
        jw_close(w);
    }
    jw_cstr(w, "set", t->set);
    jw_close(w);
}

static int write_member(ch_buf *b, const char *k, size_t kn, ch_json_val v, const char *sep)
{
    int rc = ch_buf_adds(b, sep);
    rc |= ch_buf_add_json_str(b, k, kn);
    rc |= ch_buf_addc(b, ':');
    return rc | ch_json_write(v, b);
}

/* Appends ",member,member..." after the ECS fields (which always include @timestamp). */
static int write_raw_json(const ch_event *ev, ch_buf *b)
{
    const char *p = ev->raw_json.p;
    size_t n = ev->raw_json.n;
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\n' || p[n - 1] == '\r' || p[n - 1] == '\t'))
        n--;
    while (n && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
        p++;
        n--;
    }
    if (n < 2 || p[0] != '{' || p[n - 1] != '}')
        return 0;
    ch_json_iter it;
    const char *k;
    size_t kn;
    ch_json_val v;
    /* A parser that saw every top-level key has told us whether one collides; else ask the
     * document. */
    bool collide =
        ev->has_raw_doc && !ev->raw_no_ecs_root && ch_json_obj_any_key(ev->raw_doc, ecs_root);
    if (!collide) {
        const char *inner = p + 1;
        size_t in = n - 2;
        while (in && (*inner == ' ' || *inner == '\t')) {
            inner++;
            in--;
        }
        if (in == 0)
            return 0;
        return ch_buf_addc(b, ',') | ch_buf_add(b, inner, in);
    }
    /* Rare path: member by member, the colliding ones moved under "original". */
    int rc = 0, norig = 0;
    ch_json_obj_iter(ev->raw_doc, &it);
    while (ch_json_obj_next(&it, &k, &kn, &v))
        if (!ch_ecs_is_root(k, kn))
            rc |= write_member(b, k, kn, v, ",");
    ch_json_obj_iter(ev->raw_doc, &it);
    while (ch_json_obj_next(&it, &k, &kn, &v))
        if (ch_ecs_is_root(k, kn))
            rc |= write_member(b, k, kn, v, norig++ ? "," : ",\"original\":{");
    if (norig)
        rc |= ch_buf_addc(b, '}');
    return rc;
}

static int write_raw_columns(const ch_event *ev, ch_buf *b)
{
    int rc = 0;
    for (uint32_t i = 0; i < ev->raw_count; i++) {
        ch_sv v = ev->raw_values[i];
        if (v.n == 1 && v.p[0] == '-')
            continue; /* "-" is the flow log's missing value */
        rc |= ch_buf_addc(b, ',');
        rc |= ch_buf_add_json_str(b, ev->raw_names[i].p, ev->raw_names[i].n);
        rc |= ch_buf_addc(b, ':');
        rc |= ch_buf_add_json_str(b, v.p, v.n);
    }
    return rc;
}

int ch_event_to_json(const ch_event *ev, ch_buf *b)
{
    jw w = {.b = b, .p = NULL, .end = NULL, .rc = 0, .depth = 0};
    w.first[0] = true;
    /* The record's text is copied after the ECS part: reserve for it now as well. */
    if (ch_buf_reserve(b, 0) < 0 || (w.p = b->data + b->len, w.end = b->data + b->cap - 1,
                                     !jw_room(&w, (ev->raw_json.p ? ev->raw_json.n : 0) + 8)))
        return CH_ENOMEM;
    jw_c(&w, '{');
    jw_time(&w, "@timestamp", ev->ts_ms);

    jw_open(&w, "event");
    const char *ds = ch_dataset_name(ev->dataset);
    jw_plain(&w, "dataset", ds, strlen(ds));
    jw_str(&w, "id", ev->id);
    jw_str(&w, "action", ev->action);
    jw_str(&w, "provider", ev->provider);
    jw_str(&w, "category", ev->category);
    jw_str(&w, "type", ev->type);
    switch (ev->outcome) {
    case CH_OUTCOME_SUCCESS:
        jw_lit(&w, "outcome", "success");
        break;
    case CH_OUTCOME_FAILURE:
        jw_lit(&w, "outcome", "failure");
        break;
    case CH_OUTCOME_UNKNOWN:
        jw_lit(&w, "outcome", "unknown");
        break;
    default:
        break;
    }
    if (ev->flags & CH_F_END)
        jw_time(&w, "end", ev->end_ms);
    jw_close(&w);

    if (ev->user_name.p || ev->user_id.p) {
        jw_open(&w, "user");
        jw_str(&w, "name", ev->user_name);
        jw_str(&w, "id", ev->user_id);
        jw_close(&w);
    }
    if (ev->account_id.p || ev->region.p || ev->instance_id.p) {
        jw_open(&w, "cloud");
        jw_lit(&w, "provider", "aws");
        if (ev->account_id.p) {
            jw_open(&w, "account");
            jw_str(&w, "id", ev->account_id);
            jw_close(&w);
        }
        jw_str(&w, "region", ev->region);
        if (ev->instance_id.p) {
            jw_open(&w, "instance");
            jw_str(&w, "id", ev->instance_id);
            jw_close(&w);
        }
        jw_close(&w);
    }
    jw_endpoint(&w, "source", &ev->src_ip, ev->src_port, ev->flags & CH_F_SRC_PORT, ev->src_address,
                &ev->src_geo);
    jw_endpoint(&w, "destination", &ev->dst_ip, ev->dst_port, ev->flags & CH_F_DST_PORT,
                (ch_sv){NULL, 0}, &ev->dst_geo);
    if (ev->transport.p || ev->iana_proto || (ev->flags & (CH_F_BYTES | CH_F_PACKETS))) {
        jw_open(&w, "network");
        jw_str(&w, "transport", ev->transport);
        if (ev->iana_proto) {
            char num[4];
            int nn = 0;
            unsigned v = ev->iana_proto;
            if (v >= 100)
                num[nn++] = (char)('0' + v / 100);
            if (v >= 10)
                num[nn++] = (char)('0' + v / 10 % 10);
            num[nn++] = (char)('0' + v % 10);
            jw_plain(&w, "iana_number", num, (size_t)nn);
        }
        if (ev->flags & CH_F_BYTES)
            jw_u64(&w, "bytes", ev->bytes);
        if (ev->flags & CH_F_PACKETS)
            jw_u64(&w, "packets", ev->packets);
        jw_close(&w);
    }
    if (ev->dns_qname.p || ev->dns_rcode.p || ev->dns_nanswers) {
        jw_open(&w, "dns");
        if (ev->dns_qname.p || ev->dns_qtype.p) {
            jw_open(&w, "question");
            jw_str(&w, "name", ev->dns_qname);
            jw_str(&w, "type", ev->dns_qtype);
            jw_close(&w);
        }
        jw_str(&w, "response_code", ev->dns_rcode);
        if (ev->dns_nanswers) {
            jw_key(&w, "answers");
            jw_c(&w, '[');
            for (unsigned i = 0; i < ev->dns_nanswers; i++) {
                if (!jw_room(&w, CH_JSON_STR_MAX(ev->dns_answers[i].n)))
                    break;
                if (i)
                    *w.p++ = ',';
                memcpy(w.p, "{\"data\":", 8);
                w.p += 8;
                w.p = ch_json_str_put(w.p, ev->dns_answers[i].p, ev->dns_answers[i].n);
                *w.p++ = '}';
            }
            jw_c(&w, ']');
        }
        jw_close(&w);
    }
    if (ev->user_agent.p) {
        jw_open(&w, "user_agent");
        jw_str(&w, "original", ev->user_agent);
        jw_close(&w);
    }
    if (ev->error_code.p) {
        jw_open(&w, "error");
        jw_str(&w, "code", ev->error_code);
        jw_close(&w);
    }
    jw_threat(&w, &ev->threat);
    jw_sync(&w);
    if (w.rc)
        return CH_ENOMEM;
    int rc = 0;
    if (ev->raw_json.p != NULL)
        rc |= write_raw_json(ev, b);
    else if (ev->raw_count)
        rc |= write_raw_columns(ev, b);
    rc |= ch_buf_addc(b, '}');
    return rc ? CH_ENOMEM : 0;
}
