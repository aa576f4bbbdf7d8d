/*
 * evcodec.c - a normalized event as stored bytes, and back.
 *
 * The stored form is the event's typed slots (times, addresses, ports, GeoIP, the intel match)
 * followed by its strings and its original record (the JSON text, or a flow log's column
 * names and values). Decoding is a walk that points views into the bytes: no allocation and
 * no JSON parsing, so a full scan evaluates expressions on typed slots at memory speed; only
 * an expression that reads a raw path (requestParameters.x) makes the searcher parse the
 * record. Strings are stored with a trailing NUL so that decoded `const char *` members
 * (the intel match's names) are valid C strings. Integers are little-endian; lengths are
 * LEB128 varints, with 0 for "absent" and n+1 for a string of n bytes, so absent and empty
 * stay apart as the writer needs.
 *
 * The bytes are two parts back to back: the typed part (everything up to the flag that says
 * whether the record collides with an ECS root) and the original part (the JSON text or the
 * flow columns). Segment formats 1 and 2 store them as one record; format 3 stores each part in
 * its own compressed stream (segment.c), so that a search reading only typed fields never
 * decompresses the original records. The concatenation of the two parts is the one-record form,
 * so a kept match of either format is the same bytes.
 */
#include <string.h>

#include "core/ip.h"
#include "core/leb.h"
#include "store/store_int.h"

#define ENC_VERSION 1

/* The encoder runs on the pipeline's thread for every stored event (docs/BENCHMARKS.md section
 * 57: 4.4k instructions an event, the store's largest cost there once its frames are not
 * compressed), so it reserves the most an event can take once and then writes through a
 * pointer: no capacity check, NUL store or libc call per item, as ch_buf_add costs. */

/* The most a string item takes: varint of n+1 (5 bytes at most), the bytes, the NUL. */
#define SV_MAX(n) ((size_t)(n) + 6)

static size_t cstr_len(const char *s) { return s ? strlen(s) : 0; }

/* Small strings (most of an event's) are copied without a libc call; the source is never read
 * past its end. */
static inline uint8_t *w_bytes(uint8_t *d, const void *src, size_t n)
{
    const uint8_t *s = src;
    if (n >= 8 && n <= 16) {
        uint64_t a, b;
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + n - 8, &b, 8);
    } else if (n >= 4 && n < 8) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        memcpy(d, &a, 4);
        memcpy(d + n - 4, &b, 4);
    } else if (n < 4) {
        for (size_t i = 0; i < n; i++)
            d[i] = s[i];
    } else {
        memcpy(d, s, n);
    }
    return d + n;
}

static inline uint8_t *w_u64(uint8_t *d, uint64_t v)
{
    ch_le_put64(d, v);
    return d + 8;
}

static inline uint8_t *w_sv(uint8_t *d, ch_sv s)
{
    if (s.p == NULL) {
        *d++ = 0;
        return d;
    }
    d = ch_leb_write(d, (uint64_t)s.n + 1);
    d = w_bytes(d, s.p, s.n);
    *d++ = '\0';
    return d;
}

static inline uint8_t *w_cstr(uint8_t *d, const char *s)
{
    return w_sv(d, s ? (ch_sv){s, (uint32_t)strlen(s)} : (ch_sv){NULL, 0});
}

static inline uint8_t *w_ip(uint8_t *d, const ch_ip *ip)
{
    *d++ = (uint8_t)ip->family;
    if (ip->family) {
        memcpy(d, ip->b, 16);
        d += 16;
    }
    return d;
}

static inline uint8_t *w_geo(uint8_t *d, const ch_geo *g)
{
    *d++ = (uint8_t)((g->looked_up ? 1 : 0) | (g->internal ? 2 : 0));
    memcpy(d, g->country, 3);
    d = ch_leb_write(d + 3, g->asn);
    d = w_sv(d, g->as_org);
    d = w_sv(d, g->city);
    return w_sv(d, g->country_name);
}

static size_t geo_max(const ch_geo *g)
{
    return 1 + 3 + 10 + SV_MAX(g->as_org.n) + SV_MAX(g->city.n) + SV_MAX(g->country_name.n);
}

int ch__ev_encode_typed_at(const ch_event *ev, uint64_t rid, ch_buf *b,
                           uint32_t off[CH_EV_TYPED_ITEMS + 1])
{
    const ch_sv *svs[] = {&ev->id,           &ev->action,      &ev->category,     &ev->type,
                          &ev->provider,     &ev->user_name,   &ev->user_id,      &ev->user_type,
                          &ev->session_name, &ev->access_key,  &ev->invoked_by,   &ev->account_id,
                          &ev->region,       &ev->instance_id, &ev->interface_id, &ev->user_agent,
                          &ev->error_code,   &ev->src_address, &ev->transport,    &ev->dns_qname,
                          &ev->dns_qtype,    &ev->dns_rcode};
    _Static_assert(sizeof svs / sizeof *svs == CH_EV_TYPED_SVS, "ch__ev_typed_split's items");
    unsigned na = ev->dns_nanswers > CH_EVENT_MAX_ANSWERS ? CH_EVENT_MAX_ANSWERS : ev->dns_nanswers;
    const ch_threat *t = &ev->threat;
    /* The most this event takes: fixed-size items and varints at their widest, strings. */
    size_t max = 1 + 3 * 8 + 2 + 10 + 2 * 17 + 4 * 10 + 2 + 1 + 1 + 1;
    for (size_t i = 0; i < sizeof svs / sizeof *svs; i++)
        max += SV_MAX(svs[i]->n);
    for (unsigned i = 0; i < na; i++)
        max += SV_MAX(ev->dns_answers[i].n);
    max += geo_max(&ev->src_geo) + geo_max(&ev->dst_geo);
    if (t->set)
        max += SV_MAX(cstr_len(t->set)) + SV_MAX(cstr_len(t->field)) + SV_MAX(t->atomic.n) + 17 +
               SV_MAX(cstr_len(t->feed)) + SV_MAX(cstr_len(t->indicator_id)) +
               SV_MAX(cstr_len(t->indicator_name)) + SV_MAX(cstr_len(t->indicator_types)) +
               SV_MAX(cstr_len(t->provider)) + 10;
    if (ch_buf_reserve(b, max) < 0)
        return CH_ENOMEM;
    /* off[i]: where item i starts, as ch__ev_typed_split would find it (the writer hands these
     * to ch__evcols_encode_at, which then need not parse the row again). */
    uint8_t *base = (uint8_t *)b->data + b->len, *d = base;
    int item = 0;
#define AT() (off ? (void)(off[item++] = (uint32_t)(d - base)) : (void)0)
    AT();
    *d++ = ENC_VERSION;
    AT();
    d = w_u64(d, rid);
    AT();
    d = w_u64(d, (uint64_t)ev->ts_ms);
    AT();
    d = w_u64(d, (uint64_t)ev->end_ms);
    AT();
    *d++ = (uint8_t)ev->dataset;
    AT();
    *d++ = (uint8_t)ev->outcome;
    AT();
    d = ch_leb_write(d, ev->flags);
    for (size_t i = 0; i < sizeof svs / sizeof *svs; i++) {
        AT();
        d = w_sv(d, *svs[i]);
    }
    AT();
    d = w_ip(d, &ev->src_ip);
    AT();
    d = w_ip(d, &ev->dst_ip);
    AT();
    d = ch_leb_write(d, ev->src_port);
    AT();
    d = ch_leb_write(d, ev->dst_port);
    AT();
    *d++ = (uint8_t)ev->iana_proto;
    AT();
    d = ch_leb_write(d, ev->bytes);
    AT();
    d = ch_leb_write(d, ev->packets);
    AT();
    *d++ = (uint8_t)na;
    for (unsigned i = 0; i < na; i++)
        d = w_sv(d, ev->dns_answers[i]);
    AT();
    d = w_geo(d, &ev->src_geo);
    AT();
    d = w_geo(d, &ev->dst_geo);
    AT();
    *d++ = t->set ? 1 : 0;
    if (t->set) {
        d = w_cstr(d, t->set);
        d = w_cstr(d, t->field);
        d = w_sv(d, t->atomic);
        d = w_ip(d, &t->atomic_ip);
        d = w_cstr(d, t->feed);
        d = w_cstr(d, t->indicator_id);
        d = w_cstr(d, t->indicator_name);
        d = w_cstr(d, t->indicator_types);
        d = w_cstr(d, t->provider);
        d = ch_leb_write(d, (uint64_t)(int64_t)t->confidence + 1);
    }
    AT();
    *d++ = ev->raw_no_ecs_root ? 1 : 0;
    AT();
#undef AT
    b->len += (size_t)(d - base);
    b->data[b->len] = '\0';
    return 0;
}

int ch__ev_encode_typed(const ch_event *ev, uint64_t rid, ch_buf *b)
{
    return ch__ev_encode_typed_at(ev, rid, b, NULL);
}

int ch__ev_encode_orig(const ch_event *ev, ch_buf *b)
{
    uint32_t nc = ev->raw_json.p ? 0 : ev->raw_count;
    if (nc > CH_EV_MAX_COLUMNS)
        nc = CH_EV_MAX_COLUMNS;
    size_t max = SV_MAX(ev->raw_json.n) + 10;
    for (uint32_t i = 0; i < nc; i++)
        max += SV_MAX(ev->raw_names[i].n) + SV_MAX(ev->raw_values[i].n);
    if (ch_buf_reserve(b, max) < 0)
        return CH_ENOMEM;
    uint8_t *base = (uint8_t *)b->data + b->len, *d = base;
    d = w_sv(d, ev->raw_json);
    d = ch_leb_write(d, nc);
    for (uint32_t i = 0; i < nc; i++) {
        d = w_sv(d, ev->raw_names[i]);
        d = w_sv(d, ev->raw_values[i]);
    }
    b->len += (size_t)(d - base);
    b->data[b->len] = '\0';
    return 0;
}

int ch__ev_encode(const ch_event *ev, uint64_t rid, ch_buf *b)
{
    int rc = ch__ev_encode_typed(ev, rid, b);
    return rc < 0 ? rc : ch__ev_encode_orig(ev, b);
}

typedef struct rd {
    const uint8_t *p, *end;
    bool bad;
} rd;

static uint8_t get_u8(rd *r)
{
    if (r->p >= r->end) {
        r->bad = true;
        return 0;
    }
    return *r->p++;
}

static uint64_t get_u64(rd *r)
{
    if (r->end - r->p < 8) {
        r->bad = true;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)r->p[i] << (8 * i);
    r->p += 8;
    return v;
}

static uint64_t get_var(rd *r)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        uint8_t c = get_u8(r);
        if (r->bad)
            return 0;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return v;
    }
    r->bad = true;
    return 0;
}

static ch_sv get_sv(rd *r)
{
    uint64_t n = get_var(r);
    if (r->bad || n == 0)
        return (ch_sv){NULL, 0};
    n--;
    if (n > UINT32_MAX || (uint64_t)(r->end - r->p) < n + 1 || r->p[n] != '\0') {
        r->bad = true;
        return (ch_sv){NULL, 0};
    }
    ch_sv s = {(const char *)r->p, (uint32_t)n};
    r->p += n + 1;
    return s;
}

static void get_ip(rd *r, ch_ip *ip)
{
    memset(ip, 0, sizeof *ip);
    uint8_t f = get_u8(r);
    if (f == 0)
        return;
    if ((f != 4 && f != 6) || r->end - r->p < 16) {
        r->bad = true;
        return;
    }
    ip->family = f;
    memcpy(ip->b, r->p, 16);
    r->p += 16;
}

static void get_geo(rd *r, ch_geo *g)
{
    uint8_t f = get_u8(r);
    g->looked_up = f & 1;
    g->internal = (f & 2) != 0;
    if (r->end - r->p < 3) {
        r->bad = true;
        return;
    }
    memcpy(g->country, r->p, 3);
    g->country[2] = '\0';
    r->p += 3;
    g->asn = (uint32_t)get_var(r);
    g->as_org = get_sv(r);
    g->city = get_sv(r);
    g->country_name = get_sv(r);
}

static const char *get_cstr(rd *r)
{
    ch_sv s = get_sv(r);
    return s.p ? s.p : "";
}

/* The typed part, from r (left just past it). */
static int decode_typed(rd *r, ch_ev_decoded *d)
{
    ch_event *ev = &d->ev;
    ch_event_reset(ev);
    if (get_u8(r) != ENC_VERSION)
        return CH_EPARSE;
    d->rid = get_u64(r);
    ev->ts_ms = (int64_t)get_u64(r);
    ev->end_ms = (int64_t)get_u64(r);
    uint8_t ds = get_u8(r), oc = get_u8(r);
    if (ds >= CH_DS__COUNT || oc > CH_OUTCOME_UNKNOWN)
        return CH_EPARSE;
    ev->dataset = (ch_dataset)ds;
    ev->outcome = (ch_outcome)oc;
    ev->flags = (uint32_t)get_var(r);
    ch_sv *svs[] = {&ev->id,           &ev->action,      &ev->category,     &ev->type,
                    &ev->provider,     &ev->user_name,   &ev->user_id,      &ev->user_type,
                    &ev->session_name, &ev->access_key,  &ev->invoked_by,   &ev->account_id,
                    &ev->region,       &ev->instance_id, &ev->interface_id, &ev->user_agent,
                    &ev->error_code,   &ev->src_address, &ev->transport,    &ev->dns_qname,
                    &ev->dns_qtype,    &ev->dns_rcode};
    for (size_t i = 0; i < sizeof svs / sizeof *svs; i++)
        *svs[i] = get_sv(r);
    get_ip(r, &ev->src_ip);
    get_ip(r, &ev->dst_ip);
    ev->src_port = (uint16_t)get_var(r);
    ev->dst_port = (uint16_t)get_var(r);
    ev->iana_proto = get_u8(r);
    ev->bytes = get_var(r);
    ev->packets = get_var(r);
    uint8_t na = get_u8(r);
    if (na > CH_EVENT_MAX_ANSWERS)
        return CH_EPARSE;
    ev->dns_nanswers = na;
    for (unsigned i = 0; i < na; i++)
        ev->dns_answers[i] = get_sv(r);
    get_geo(r, &ev->src_geo);
    get_geo(r, &ev->dst_geo);
    if (get_u8(r)) {
        ch_threat *t = &ev->threat;
        t->set = get_cstr(r);
        t->field = get_cstr(r);
        t->atomic = get_sv(r);
        get_ip(r, &t->atomic_ip);
        t->feed = get_cstr(r);
        t->indicator_id = get_cstr(r);
        t->indicator_name = get_cstr(r);
        t->indicator_types = get_cstr(r);
        t->provider = get_cstr(r);
        t->confidence = (int)((int64_t)get_var(r) - 1);
    }
    ev->raw_no_ecs_root = get_u8(r) != 0;
    return r->bad ? CH_EPARSE : 0;
}

/* Format 4 cuts a typed part into its items (store/evcols.c stores each item as a column of
 * its block). The walk is decode_typed's, reading into throw-away slots; variable-length groups
 * (the DNS answers, each GeoIP record, the intel match) are one item each, so every typed part
 * has the same CH_EV_TYPED_ITEMS items and the items back to back are the part. */
int ch__ev_typed_split(const uint8_t *p, size_t n, uint32_t off[CH_EV_TYPED_ITEMS + 1])
{
    rd r = {p, p + n, false};
    ch_ip ip;
    ch_geo g;
    int i = 0;
#define MARK() (off[i++] = (uint32_t)(r.p - p))
    MARK();
    (void)get_u8(&r); /* version */
    MARK();
    (void)get_u64(&r); /* rid */
    MARK();
    (void)get_u64(&r); /* ts */
    MARK();
    (void)get_u64(&r); /* end */
    MARK();
    (void)get_u8(&r); /* dataset */
    MARK();
    (void)get_u8(&r); /* outcome */
    MARK();
    (void)get_var(&r); /* flags */
    for (int k = 0; k < CH_EV_TYPED_SVS; k++) {
        MARK();
        (void)get_sv(&r);
    }
    MARK();
    get_ip(&r, &ip);
    MARK();
    get_ip(&r, &ip);
    MARK();
    (void)get_var(&r); /* src port */
    MARK();
    (void)get_var(&r); /* dst port */
    MARK();
    (void)get_u8(&r); /* protocol */
    MARK();
    (void)get_var(&r); /* bytes */
    MARK();
    (void)get_var(&r); /* packets */
    MARK();
    uint8_t na = get_u8(&r);
    for (unsigned k = 0; k < na && !r.bad; k++)
        (void)get_sv(&r);
    MARK();
    get_geo(&r, &g);
    MARK();
    get_geo(&r, &g);
    MARK();
    if (get_u8(&r)) {
        for (int k = 0; k < 2; k++)
            (void)get_sv(&r);
        (void)get_sv(&r);
        get_ip(&r, &ip);
        for (int k = 0; k < 5; k++)
            (void)get_sv(&r);
        (void)get_var(&r);
    }
    MARK();
    (void)get_u8(&r); /* raw_no_ecs_root */
    MARK();
#undef MARK
    return r.bad || r.p != r.end || i != CH_EV_TYPED_ITEMS + 1 ? CH_EPARSE : 0;
}

/* The original part, from r (left just past it). */
static int decode_orig(rd *r, ch_ev_decoded *d)
{
    ch_event *ev = &d->ev;
    ev->raw_json = get_sv(r);
    uint64_t nc = get_var(r);
    if (nc > CH_EV_MAX_COLUMNS)
        return CH_EPARSE;
    for (uint64_t i = 0; i < nc; i++) {
        d->names[i] = get_sv(r);
        d->values[i] = get_sv(r);
        if (d->names[i].p == NULL || d->values[i].p == NULL)
            r->bad = true;
    }
    ev->raw_count = (uint32_t)nc;
    ev->raw_names = nc ? d->names : NULL;
    ev->raw_values = nc ? d->values : NULL;
    return r->bad ? CH_EPARSE : 0;
}

int ch__ev_decode(const uint8_t *p, size_t n, ch_ev_decoded *d)
{
    rd r = {p, p + n, false};
    if (decode_typed(&r, d) < 0 || decode_orig(&r, d) < 0 || r.p != r.end)
        return CH_EPARSE;
    return 0;
}

bool ch__ev_orig_text(const uint8_t *o, size_t on, ch_sv *out)
{
    rd q = {o, o + on, false};
    *out = get_sv(&q);
    return !q.bad && out->p != NULL;
}

/* An original part, the whole of o[0..on), into d's event. */
static int decode_orig_part(const uint8_t *o, size_t on, ch_ev_decoded *d)
{
    rd q = {o, o + on, false};
    return decode_orig(&q, d) < 0 || q.p != q.end ? CH_EPARSE : 0;
}

int ch__ev_decode_parts(const uint8_t *t, size_t tn, const uint8_t *o, size_t on, ch_ev_decoded *d)
{
    rd r = {t, t + tn, false};
    if (decode_typed(&r, d) < 0 || r.p != r.end)
        return CH_EPARSE;
    if (o == NULL)
        return 0; /* typed only: no original record (raw_json NULL, no columns) */
    return decode_orig_part(o, on, d);
}

int ch__ev_decode_orig(const uint8_t *o, size_t on, ch_ev_decoded *d)
{
    ch_event_reset(&d->ev);
    d->rid = 0;
    return decode_orig_part(o, on, d);
}

/* The pivots of an investigation; the order is the on-disk order of a segment's
 * dictionaries, so it only ever grows at the end. */
const char *const ch__ix_fields[CH_IX_NFIELDS] = {
    "user.name",      "user.id",           "user.access_key_id", "source.ip",
    "destination.ip", "dns.question.name", "cloud.instance.id",  "network.interface.id",
    "event.action",
};

int ch__ix_field(const char *path)
{
    for (int i = 0; i < CH_IX_NFIELDS; i++)
        if (strcmp(path, ch__ix_fields[i]) == 0)
            return i;
    return -1;
}

bool ch__ix_is_ip(int i) { return i == 3 || i == 4; }

size_t ch__ix_terms(const ch_event *ev, int i, char buf[64], ch_sv *out)
{
    ch_sv s = {NULL, 0};
    switch (i) {
    case 0:
        s = ev->user_name;
        break;
    case 1:
        s = ev->user_id;
        break;
    case 2:
        s = ev->access_key;
        break;
    case 3:
    case 4: {
        const ch_ip *ip = i == 3 ? &ev->src_ip : &ev->dst_ip;
        if (ip->family == 0)
            return 0;
        size_t n = ch_ip_format(ip, buf);
        *out = (ch_sv){buf, (uint32_t)n};
        return 1;
    }
    case 5:
        s = ev->dns_qname;
        break;
    case 6:
        s = ev->instance_id;
        break;
    case 7:
        s = ev->interface_id;
        break;
    case 8:
        s = ev->action;
        break;
    default:
        return 0;
    }
    /* A missing value, and "" (missing in ECS), are not indexed: no test can match them. */
    if (s.p == NULL || s.n == 0)
        return 0;
    *out = s;
    return 1;
}
