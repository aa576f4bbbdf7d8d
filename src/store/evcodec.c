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

static int put_raw(ch_buf *b, const void *p, size_t n) { return ch_buf_add(b, p, n); }

static int put_u64(ch_buf *b, uint64_t v)
{
    uint8_t t[8];
    for (int i = 0; i < 8; i++)
        t[i] = (uint8_t)(v >> (8 * i));
    return put_raw(b, t, 8);
}

static int put_var(ch_buf *b, uint64_t v) { return ch_leb_put(b, v); }

static int put_sv(ch_buf *b, ch_sv s)
{
    if (s.p == NULL)
        return put_var(b, 0);
    int rc = put_var(b, (uint64_t)s.n + 1);
    rc |= put_raw(b, s.p, s.n);
    return rc | ch_buf_addc(b, '\0');
}

static int put_cstr(ch_buf *b, const char *s)
{
    return put_sv(b, s ? (ch_sv){s, (uint32_t)strlen(s)} : (ch_sv){NULL, 0});
}

static int put_ip(ch_buf *b, const ch_ip *ip)
{
    int rc = ch_buf_addc(b, (char)ip->family);
    if (ip->family)
        rc |= put_raw(b, ip->b, 16);
    return rc;
}

static int put_geo(ch_buf *b, const ch_geo *g)
{
    uint8_t f = (uint8_t)((g->looked_up ? 1 : 0) | (g->internal ? 2 : 0));
    int rc = ch_buf_addc(b, (char)f);
    rc |= put_raw(b, g->country, 3);
    rc |= put_var(b, g->asn);
    rc |= put_sv(b, g->as_org);
    rc |= put_sv(b, g->city);
    return rc | put_sv(b, g->country_name);
}

int ch__ev_encode_typed_at(const ch_event *ev, uint64_t rid, ch_buf *b,
                           uint32_t off[CH_EV_TYPED_ITEMS + 1])
{
    /* off[i]: where item i starts, as ch__ev_typed_split would find it (the writer hands these
     * to ch__evcols_encode_at, which then need not parse the row again). */
    size_t base = b->len;
    int item = 0;
#define AT() (off ? (void)(off[item++] = (uint32_t)(b->len - base)) : (void)0)
    AT();
    int rc = ch_buf_addc(b, ENC_VERSION);
    AT();
    rc |= put_u64(b, rid);
    AT();
    rc |= put_u64(b, (uint64_t)ev->ts_ms);
    AT();
    rc |= put_u64(b, (uint64_t)ev->end_ms);
    AT();
    rc |= ch_buf_addc(b, (char)ev->dataset);
    AT();
    rc |= ch_buf_addc(b, (char)ev->outcome);
    AT();
    rc |= put_var(b, ev->flags);
    const ch_sv *svs[] = {&ev->id,           &ev->action,      &ev->category,     &ev->type,
                          &ev->provider,     &ev->user_name,   &ev->user_id,      &ev->user_type,
                          &ev->session_name, &ev->access_key,  &ev->invoked_by,   &ev->account_id,
                          &ev->region,       &ev->instance_id, &ev->interface_id, &ev->user_agent,
                          &ev->error_code,   &ev->src_address, &ev->transport,    &ev->dns_qname,
                          &ev->dns_qtype,    &ev->dns_rcode};
    _Static_assert(sizeof svs / sizeof *svs == CH_EV_TYPED_SVS, "ch__ev_typed_split's items");
    for (size_t i = 0; i < sizeof svs / sizeof *svs; i++) {
        AT();
        rc |= put_sv(b, *svs[i]);
    }
    AT();
    rc |= put_ip(b, &ev->src_ip);
    AT();
    rc |= put_ip(b, &ev->dst_ip);
    AT();
    rc |= put_var(b, ev->src_port);
    AT();
    rc |= put_var(b, ev->dst_port);
    AT();
    rc |= ch_buf_addc(b, (char)ev->iana_proto);
    AT();
    rc |= put_var(b, ev->bytes);
    AT();
    rc |= put_var(b, ev->packets);
    AT();
    unsigned na = ev->dns_nanswers > CH_EVENT_MAX_ANSWERS ? CH_EVENT_MAX_ANSWERS : ev->dns_nanswers;
    rc |= ch_buf_addc(b, (char)na);
    for (unsigned i = 0; i < na; i++)
        rc |= put_sv(b, ev->dns_answers[i]);
    AT();
    rc |= put_geo(b, &ev->src_geo);
    AT();
    rc |= put_geo(b, &ev->dst_geo);
    AT();
    const ch_threat *t = &ev->threat;
    rc |= ch_buf_addc(b, t->set ? 1 : 0);
    if (t->set) {
        rc |= put_cstr(b, t->set);
        rc |= put_cstr(b, t->field);
        rc |= put_sv(b, t->atomic);
        rc |= put_ip(b, &t->atomic_ip);
        rc |= put_cstr(b, t->feed);
        rc |= put_cstr(b, t->indicator_id);
        rc |= put_cstr(b, t->indicator_name);
        rc |= put_cstr(b, t->indicator_types);
        rc |= put_cstr(b, t->provider);
        rc |= put_var(b, (uint64_t)(int64_t)t->confidence + 1);
    }
    AT();
    rc |= ch_buf_addc(b, (char)(ev->raw_no_ecs_root ? 1 : 0));
    AT();
#undef AT
    return rc < 0 ? CH_ENOMEM : 0;
}

int ch__ev_encode_typed(const ch_event *ev, uint64_t rid, ch_buf *b)
{
    return ch__ev_encode_typed_at(ev, rid, b, NULL);
}

int ch__ev_encode_orig(const ch_event *ev, ch_buf *b)
{
    int rc = put_sv(b, ev->raw_json);
    uint32_t nc = ev->raw_json.p ? 0 : ev->raw_count;
    if (nc > CH_EV_MAX_COLUMNS)
        nc = CH_EV_MAX_COLUMNS;
    rc |= put_var(b, nc);
    for (uint32_t i = 0; i < nc; i++) {
        rc |= put_sv(b, ev->raw_names[i]);
        rc |= put_sv(b, ev->raw_values[i]);
    }
    return rc < 0 ? CH_ENOMEM : 0;
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

int ch__ev_decode_parts(const uint8_t *t, size_t tn, const uint8_t *o, size_t on, ch_ev_decoded *d)
{
    rd r = {t, t + tn, false};
    if (decode_typed(&r, d) < 0 || r.p != r.end)
        return CH_EPARSE;
    if (o == NULL)
        return 0; /* typed only: no original record (raw_json NULL, no columns) */
    rd q = {o, o + on, false};
    if (decode_orig(&q, d) < 0 || q.p != q.end)
        return CH_EPARSE;
    return 0;
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
