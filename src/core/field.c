/*
 * field.c - resolution and reading of field paths (see field.h).
 *
 * Normalized fields are one table: each line names the field, its type and where it lives in
 * ch_event (a storage kind and an offset, or a getter for the few computed ones). Adding a
 * field is adding a line; the readers below are generic over the storage kinds. Resolution
 * scans the table (about fifty strcmp), which is fine because it happens once per path per
 * rule load, never per event.
 *
 * Raw paths cost, per event, one ch_json_obj_get per segment per array element met (simdjson
 * object lookup is linear in the object's member count, and CloudTrail objects are small).
 * Columnar raw names cost one compare when the per-thread cache hits, a scan of the header
 * (tens of names) when it misses.
 */
#include "core/field.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

/* ---- the table of normalized fields ---- */

typedef enum slot_kind {
    K_SV,     /* ch_sv at off; empty = missing */
    K_IP,     /* ch_ip at off; family 0 = missing */
    K_I64,    /* int64_t at off, always present */
    K_I64_F,  /* int64_t at off, present when ev->flags & flag */
    K_U16_F,  /* uint16_t at off, present when ev->flags & flag */
    K_U64_F,  /* uint64_t at off, present when ev->flags & flag */
    K_U8_NZ,  /* uint8_t at off, present when non-zero */
    K_U32_NZ, /* uint32_t at off, present when non-zero */
    K_CC,     /* char[3] country code at off; "" = missing */
    K_CSTR,   /* const char * at off; NULL or "" = missing */
    K_GETTER, /* computed by get() */
} slot_kind;

typedef struct slot {
    ch_field_info info;
    slot_kind kind;
    uint32_t flag;
    size_t off;
    /* K_GETTER: write up to CH_EVENT_MAX_ANSWERS values into out, return how many. */
    unsigned (*get)(const ch_event *ev, ch_value *out);
} slot;

static unsigned get_dataset(const ch_event *ev, ch_value *out)
{
    if (ev->dataset == CH_DS_UNKNOWN)
        return 0;
    const char *n = ch_dataset_name(ev->dataset);
    out->type = CH_V_STR;
    out->u.s = (ch_sv){n, (uint32_t)strlen(n)};
    return 1;
}

static unsigned get_outcome(const ch_event *ev, ch_value *out)
{
    static const ch_sv names[] = {{"", 0}, {"success", 7}, {"failure", 7}, {"unknown", 7}};
    if (ev->outcome == CH_OUTCOME_NONE || (unsigned)ev->outcome >= 4)
        return 0;
    out->type = CH_V_STR;
    out->u.s = names[ev->outcome];
    return 1;
}

static unsigned get_answers(const ch_event *ev, ch_value *out)
{
    unsigned k = 0;
    for (unsigned i = 0; i < ev->dns_nanswers && i < CH_EVENT_MAX_ANSWERS; i++) {
        if (ev->dns_answers[i].n == 0)
            continue;
        out[k].type = CH_V_STR;
        out[k++].u.s = ev->dns_answers[i];
    }
    return k;
}

/* ECS allows source.address to hold an address or a name: the name when the parser kept one,
 * otherwise the address itself. */
static unsigned get_addr(const ch_sv *name, const ch_ip *ip, ch_value *out)
{
    if (name->n) {
        out->type = CH_V_STR;
        out->u.s = *name;
        return 1;
    }
    if (ip->family) {
        out->type = CH_V_IP;
        out->u.ip = *ip;
        return 1;
    }
    return 0;
}
static unsigned get_src_addr(const ch_event *ev, ch_value *out)
{
    return get_addr(&ev->src_address, &ev->src_ip, out);
}
static unsigned get_dst_addr(const ch_event *ev, ch_value *out)
{
    static const ch_sv none = {"", 0};
    return get_addr(&none, &ev->dst_ip, out);
}

static unsigned get_provider(const ch_event *ev, ch_value *out)
{
    if (ev->dataset == CH_DS_UNKNOWN)
        return 0;
    out->type = CH_V_STR;
    out->u.s = CH_SV("aws"); /* every dataset coinhound reads so far comes from AWS */
    return 1;
}

/* Computed from the address rather than read from the GeoIP result, so that it holds also
 * when enrichment did not run. */
static unsigned get_internal(const ch_ip *ip, ch_value *out)
{
    if (ip->family == 0)
        return 0;
    out->type = CH_V_BOOL;
    out->u.b = ch_ip_is_internal(ip);
    return 1;
}
static unsigned get_src_internal(const ch_event *ev, ch_value *out)
{
    return get_internal(&ev->src_ip, out);
}
static unsigned get_dst_internal(const ch_event *ev, ch_value *out)
{
    return get_internal(&ev->dst_ip, out);
}

/* threat.enrichments.matched.atomic: a name (DNS) or an address, whichever matched. */
static unsigned get_threat_atomic(const ch_event *ev, ch_value *out)
{
    if (ev->threat.set == NULL)
        return 0;
    if (ev->threat.atomic.n) {
        out->type = CH_V_STR;
        out->u.s = ev->threat.atomic;
        return 1;
    }
    if (ev->threat.atomic_ip.family) {
        out->type = CH_V_IP;
        out->u.ip = ev->threat.atomic_ip;
        return 1;
    }
    return 0;
}

/* A getter because 0 is a real confidence: present only with a match and a known value. */
static unsigned get_threat_confidence(const ch_event *ev, ch_value *out)
{
    if (ev->threat.set == NULL || ev->threat.confidence < 0)
        return 0;
    out->type = CH_V_INT;
    out->u.i = ev->threat.confidence;
    return 1;
}

#define OFF(m) offsetof(ch_event, m)
#define SV(name, m, doc)                                                                           \
    {                                                                                              \
        {name, CH_V_STR, false, false, doc}, K_SV, 0, OFF(m), NULL                                 \
    }
#define NUM(name, kind, flag, m, doc)                                                              \
    {                                                                                              \
        {name, CH_V_INT, false, false, doc}, kind, flag, OFF(m), NULL                              \
    }
#define TIME(name, kind, flag, m, doc)                                                             \
    {                                                                                              \
        {name, CH_V_INT, false, true, doc}, kind, flag, OFF(m), NULL                               \
    }
#define IP(name, m, doc)                                                                           \
    {                                                                                              \
        {name, CH_V_IP, false, false, doc}, K_IP, 0, OFF(m), NULL                                  \
    }
#define CC(name, m, doc)                                                                           \
    {                                                                                              \
        {name, CH_V_STR, false, false, doc}, K_CC, 0, OFF(m), NULL                                 \
    }
#define CSTR(name, m, doc)                                                                         \
    {                                                                                              \
        {name, CH_V_STR, false, false, doc}, K_CSTR, 0, OFF(m), NULL                               \
    }
#define GET(name, t, multi, fn, doc)                                                               \
    {                                                                                              \
        {name, t, multi, false, doc}, K_GETTER, 0, 0, fn                                           \
    }
#define GEO(pfx, g, what)                                                                          \
    CC(pfx ".geo.country_iso_code", g.country, what " country, ISO 3166-1 alpha-2"),               \
        SV(pfx ".geo.country_name", g.country_name, what " country name"),                         \
        SV(pfx ".geo.city_name", g.city, what " city"),                                            \
        NUM(pfx ".as.number", K_U32_NZ, 0, g.asn, what " autonomous system number"),               \
        SV(pfx ".as.organization.name", g.as_org, what " autonomous system organization")

/* The one table of normalized fields. Names follow ECS where ECS has one (docs/SCHEMA.md). */
static const slot slots[] = {
    TIME("@timestamp", K_I64, 0, ts_ms, "event time, ms since the epoch (UTC)"),
    TIME("event.end", K_I64_F, CH_F_END, end_ms, "end of a flow, ms since the epoch (UTC)"),
    GET("event.dataset", CH_V_STR, false, get_dataset, "cloudtrail, vpcflow, route53resolver"),
    SV("event.id", id, "CloudTrail eventID"),
    SV("event.action", action, "CloudTrail eventName, flow ACCEPT/REJECT, DNS rcode"),
    SV("event.category", category, "authentication, iam, network, ..."),
    SV("event.type", type, "start, info, creation, connection, protocol, ..."),
    GET("event.outcome", CH_V_STR, false, get_outcome, "success, failure or unknown"),
    SV("event.provider", provider, "CloudTrail eventSource"),
    SV("user.name", user_name, "IAM user, root, or the issuing role of a session"),
    SV("user.id", user_id, "principalId"),
    SV("user.type", user_type, "userIdentity.type (IAMUser, Root, AssumedRole, ...)"),
    SV("user.session_name", session_name, "role session name of an assumed role"),
    SV("user.access_key_id", access_key, "userIdentity.accessKeyId"),
    SV("user.invoked_by", invoked_by, "the AWS service acting for the principal"),
    GET("cloud.provider", CH_V_STR, false, get_provider, "aws"),
    SV("cloud.account.id", account_id, "account id"),
    SV("cloud.region", region, "region"),
    SV("cloud.instance.id", instance_id, "EC2 instance id"),
    SV("network.interface.id", interface_id, "network interface id (flow logs)"),
    SV("user_agent.original", user_agent, "user agent"),
    SV("error.code", error_code, "CloudTrail errorCode"),
    GET("source.address", CH_V_NONE, false, get_src_addr, "source name, else source address"),
    IP("source.ip", src_ip, "source address"),
    NUM("source.port", K_U16_F, CH_F_SRC_PORT, src_port, "source port"),
    GET("source.internal", CH_V_BOOL, false, get_src_internal,
        "private, loopback, link-local, CGNAT... source address"),
    GET("destination.address", CH_V_IP, false, get_dst_addr, "destination address"),
    IP("destination.ip", dst_ip, "destination address"),
    NUM("destination.port", K_U16_F, CH_F_DST_PORT, dst_port, "destination port"),
    GET("destination.internal", CH_V_BOOL, false, get_dst_internal,
        "private, loopback, link-local, CGNAT... destination address"),
    SV("network.transport", transport, "tcp, udp, icmp, ..."),
    NUM("network.iana_number", K_U8_NZ, 0, iana_proto, "IP protocol number"),
    NUM("network.bytes", K_U64_F, CH_F_BYTES, bytes, "bytes of a flow"),
    NUM("network.packets", K_U64_F, CH_F_PACKETS, packets, "packets of a flow"),
    SV("dns.question.name", dns_qname, "queried name, lower case, no trailing dot"),
    SV("dns.question.type", dns_qtype, "A, AAAA, TXT, ..."),
    SV("dns.response_code", dns_rcode, "NOERROR, NXDOMAIN, ..."),
    GET("dns.answers", CH_V_STR, true, get_answers, "answer data (several values)"),
    GET("dns.answers.data", CH_V_STR, true, get_answers, "same as dns.answers (ECS name)"),
    GEO("source", src_geo, "source"),
    GEO("destination", dst_geo, "destination"),
    /* Threat intelligence (intel/intel_match.h): present only when a loaded intel set lists a
     * value of the event at the event's time. */
    GET("threat.enrichments.matched.atomic", CH_V_NONE, false, get_threat_atomic,
        "the event's value that an intel set lists (a name or an address)"),
    CSTR("threat.enrichments.matched.field", threat.field,
         "the field that matched: source.ip, destination.ip, dns.question.name, dns.answers.data"),
    CSTR("threat.indicator.id", threat.indicator_id, "the feed's id of the indicator (STIX id)"),
    CSTR("threat.indicator.name", threat.indicator_name, "the indicator's name"),
    GET("threat.indicator.confidence", CH_V_INT, false, get_threat_confidence,
        "the indicator's confidence, 0..100 (STIX)"),
    CSTR("threat.indicator.provider", threat.provider, "who created the indicator (STIX identity)"),
    CSTR("threat.feed.name", threat.feed, "the feed the matching entry came from"),
    CSTR("threat.set", threat.set, "the reference set that matched (coinhound)"),
};

#define NSLOTS (sizeof slots / sizeof slots[0])

const ch_field_info *ch_field_name_list(size_t i) { return i < NSLOTS ? &slots[i].info : NULL; }

/* ---- refs ---- */

typedef ch_json_key seg; /* the lazy reader walks the same segments */

struct ch_field_ref {
    const slot *slot; /* NULL for a raw path */
    uint16_t len, nseg;
    seg segs[CH_FIELD_MAX_SEGMENTS];
    char path[]; /* NUL-terminated */
};

int ch_field_resolve(const char *path, size_t n, ch_field_ref **out, ch_error *err)
{
    *out = NULL;
    if (n == 0)
        return ch_error_set(err, CH_EPARSE, "empty field path");
    if (n > CH_FIELD_MAX_PATH)
        return ch_error_set(err, CH_ELIMIT, "field path longer than %d bytes", CH_FIELD_MAX_PATH);
    if (memchr(path, '\0', n) != NULL)
        return ch_error_set(err, CH_EPARSE, "field path contains a NUL byte");
    ch_field_ref *r = ch_calloc(1, sizeof *r + n + 1);
    if (r == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    memcpy(r->path, path, n);
    r->len = (uint16_t)n;
    for (size_t i = 0; i < NSLOTS; i++)
        if (strcmp(slots[i].info.name, r->path) == 0) {
            r->slot = &slots[i];
            *out = r;
            return 0;
        }
    size_t st = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && path[i] != '.')
            continue;
        if (i == st) {
            ch_free(r);
            return ch_error_set(err, CH_EPARSE, "empty segment in field path '%.*s'", (int)n, path);
        }
        if (r->nseg == CH_FIELD_MAX_SEGMENTS) {
            ch_free(r);
            return ch_error_set(err, CH_ELIMIT, "field path '%.*s' has more than %d segments",
                                (int)n, path, CH_FIELD_MAX_SEGMENTS);
        }
        r->segs[r->nseg++] = (seg){(uint16_t)st, (uint16_t)(i - st)};
        st = i + 1;
    }
    *out = r;
    return 0;
}

void ch_field_ref_free(ch_field_ref *r) { ch_free(r); }
const char *ch_field_ref_path(const ch_field_ref *r) { return r->path; }
const ch_field_info *ch_field_ref_info(const ch_field_ref *r)
{
    return r->slot ? &r->slot->info : NULL;
}

ch_sv ch_field_ref_last_key(const ch_field_ref *r)
{
    if (r->slot != NULL || r->nseg == 0)
        return (ch_sv){NULL, 0};
    const seg *g = &r->segs[r->nseg - 1];
    return (ch_sv){r->path + g->off, g->len};
}

void ch_field_cache_init(ch_field_cache *c) { memset(c, 0, sizeof *c); }

/* ---- reading ---- */

typedef struct visit {
    ch_field_visit_fn fn;
    void *ctx;
    size_t count;
} visit;

/* Emit one value; true when the visitor asked to stop. */
static inline bool emit(visit *vs, const ch_value *v)
{
    vs->count++;
    return vs->fn(vs->ctx, v);
}

static unsigned read_slot(const slot *s, const ch_event *ev, ch_value *out)
{
    const char *base = (const char *)ev + s->off;
    switch (s->kind) {
    case K_SV: {
        ch_sv sv;
        memcpy(&sv, base, sizeof sv);
        if (sv.n == 0 || sv.p == NULL)
            return 0;
        out->type = CH_V_STR;
        out->u.s = sv;
        return 1;
    }
    case K_IP:
        memcpy(&out->u.ip, base, sizeof(ch_ip));
        if (out->u.ip.family == 0)
            return 0;
        out->type = CH_V_IP;
        return 1;
    case K_I64:
    case K_I64_F:
        if (s->kind == K_I64_F && !(ev->flags & s->flag))
            return 0;
        out->type = CH_V_INT;
        memcpy(&out->u.i, base, sizeof(int64_t));
        return 1;
    case K_U16_F: {
        uint16_t v;
        if (!(ev->flags & s->flag))
            return 0;
        memcpy(&v, base, sizeof v);
        out->type = CH_V_INT;
        out->u.i = v;
        return 1;
    }
    case K_U64_F: {
        uint64_t v;
        if (!(ev->flags & s->flag))
            return 0;
        memcpy(&v, base, sizeof v);
        if (v > (uint64_t)INT64_MAX) {
            out->type = CH_V_DBL;
            out->u.d = (double)v;
        } else {
            out->type = CH_V_INT;
            out->u.i = (int64_t)v;
        }
        return 1;
    }
    case K_U8_NZ:
        if (*(const uint8_t *)base == 0)
            return 0;
        out->type = CH_V_INT;
        out->u.i = *(const uint8_t *)base;
        return 1;
    case K_U32_NZ: {
        uint32_t v;
        memcpy(&v, base, sizeof v);
        if (v == 0)
            return 0;
        out->type = CH_V_INT;
        out->u.i = v;
        return 1;
    }
    case K_CC:
        if (base[0] == '\0')
            return 0;
        out->type = CH_V_STR;
        out->u.s = (ch_sv){base, base[1] == '\0' ? 1u : base[2] == '\0' ? 2u : 3u};
        return 1;
    case K_CSTR: {
        const char *p;
        memcpy(&p, base, sizeof p);
        if (p == NULL || p[0] == '\0')
            return 0;
        out->type = CH_V_STR;
        out->u.s = (ch_sv){p, (uint32_t)strlen(p)};
        return 1;
    }
    case K_GETTER:
        return s->get(ev, out);
    }
    return 0;
}

/* A JSON leaf, from the DOM or the lazy reader, as a value; false for what counts as missing
 * (null, ""). One rule for both readers, so a raw path reads the same through either. */
static bool leaf_value(const ch_json_leaf *l, ch_value *out)
{
    switch (l->type) {
    case CH_JSON_STRING:
        if (l->n == 0)
            return false;
        out->type = CH_V_STR;
        out->u.s = (ch_sv){l->s, (uint32_t)l->n};
        return true;
    case CH_JSON_INT:
        out->type = CH_V_INT;
        out->u.i = l->i;
        return true;
    case CH_JSON_UINT:
        out->type = CH_V_DBL;
        out->u.d = (double)l->u;
        return true;
    case CH_JSON_DOUBLE:
        out->type = CH_V_DBL;
        out->u.d = l->d;
        return true;
    case CH_JSON_BOOL:
        out->type = CH_V_BOOL;
        out->u.b = l->b;
        return true;
    case CH_JSON_OBJECT:
        out->type = CH_V_OBJ;
        return true;
    default:
        return false;
    }
}

/* A DOM value of type t as a leaf; false when its getter fails. */
static bool dom_leaf(ch_json_val v, ch_json_type t, ch_json_leaf *l)
{
    l->type = t;
    switch (t) {
    case CH_JSON_STRING:
        return ch_json_get_str(v, &l->s, &l->n);
    case CH_JSON_INT:
        return ch_json_get_i64(v, &l->i);
    case CH_JSON_UINT:
        return ch_json_get_u64(v, &l->u);
    case CH_JSON_DOUBLE:
        return ch_json_get_f64(v, &l->d);
    case CH_JSON_BOOL:
        return ch_json_get_bool(v, &l->b);
    default:
        return true;
    }
}

/* Walk segments [i..) from v. Arrays fan out: met mid-path, the same segment is looked up in
 * every element; met at the end, every element is a value. Returns true when stopped. */
static bool walk(const ch_field_ref *r, unsigned i, ch_json_val v, unsigned nest, visit *vs)
{
    ch_json_type t = ch_json_typeof(v);
    if (t == CH_JSON_ARRAY) {
        if (nest >= CH_FIELD_MAX_ARRAY_NEST)
            return false;
        ch_json_iter it;
        ch_json_val e;
        if (!ch_json_arr_iter(v, &it))
            return false;
        while (ch_json_arr_next(&it, &e))
            if (walk(r, i, e, nest + 1, vs))
                return true;
        return false;
    }
    if (i == r->nseg) {
        ch_json_leaf l;
        ch_value out;
        return dom_leaf(v, t, &l) && leaf_value(&l, &out) && emit(vs, &out);
    }
    if (t != CH_JSON_OBJECT)
        return false;
    ch_json_val child;
    if (!ch_json_obj_get(v, r->path + r->segs[i].off, r->segs[i].len, &child))
        return false;
    return walk(r, i + 1, child, nest, vs);
}

/* A value from the lazy reader. */
static bool lazy_emit(void *ctx, const ch_json_leaf *l)
{
    ch_value out;
    return leaf_value(l, &out) && emit((visit *)ctx, &out);
}

static inline bool name_is(const ch_sv *name, const ch_field_ref *r)
{
    return name->n == r->len && memcmp(name->p, r->path, r->len) == 0;
}

/* Index of r's flat name in ev's columns, or -1. */
static long flat_index(const ch_field_ref *r, const ch_event *ev, ch_field_cache *c)
{
    unsigned h = 0;
    if (c != NULL) {
        h = (unsigned)(((uintptr_t)r >> 4) * 0x9E3779B1u) % CH_FIELD_CACHE_SLOTS;
        if (c->e[h].ref == r && c->e[h].names == ev->raw_names && c->e[h].count == ev->raw_count &&
            c->e[h].idx < ev->raw_count && name_is(&ev->raw_names[c->e[h].idx], r))
            return c->e[h].idx;
    }
    for (uint32_t k = 0; k < ev->raw_count; k++)
        if (name_is(&ev->raw_names[k], r)) {
            if (c != NULL) {
                c->e[h].ref = r;
                c->e[h].names = ev->raw_names;
                c->e[h].count = ev->raw_count;
                c->e[h].idx = k;
            }
            return k;
        }
    return -1;
}

size_t ch_field_visit(const ch_field_ref *r, const ch_event *ev, ch_field_cache *cache,
                      ch_field_visit_fn fn, void *ctx)
{
    visit vs = {fn, ctx, 0};
    if (r->slot != NULL) {
        if (!r->slot->info.multi) { /* the common case: one value, no array */
            ch_value v;
            if (read_slot(r->slot, ev, &v) == 0)
                return 0;
            fn(ctx, &v);
            return 1;
        }
        ch_value vals[CH_EVENT_MAX_ANSWERS];
        unsigned n = read_slot(r->slot, ev, vals);
        for (unsigned k = 0; k < n; k++)
            if (emit(&vs, &vals[k]))
                break;
        return vs.count;
    }
    if (ev->raw_lazy != NULL) {
        /* An error (none for a record the DOM parses) ends the visit with what it gave. */
        ch_json_lazy_visit(ev->raw_lazy, r->path, r->segs, r->nseg, CH_FIELD_MAX_ARRAY_NEST,
                           lazy_emit, &vs);
        return vs.count;
    }
    if (ev->has_raw_doc) {
        walk(r, 0, ev->raw_doc, 0, &vs);
        return vs.count;
    }
    if (ev->raw_names != NULL && ev->raw_values != NULL) {
        long k = flat_index(r, ev, cache);
        if (k < 0)
            return 0;
        ch_sv v = ev->raw_values[k];
        if (v.n == 0 || (v.n == 1 && v.p[0] == '-'))
            return 0;
        ch_value out = {.type = CH_V_STR, .u.s = v};
        emit(&vs, &out);
    }
    return vs.count;
}

static bool take_first(void *ctx, const ch_value *v)
{
    *(ch_value *)ctx = *v;
    return true;
}

bool ch_field_first(const ch_field_ref *r, const ch_event *ev, ch_field_cache *cache, ch_value *out)
{
    return ch_field_visit(r, ev, cache, take_first, out) > 0;
}

/* ---- values ---- */

ch_sv ch_value_text(const ch_value *v, char buf[CH_VALUE_TEXT_MAX])
{
    int n = 0;
    switch (v->type) {
    case CH_V_STR:
        return v->u.s;
    case CH_V_INT:
        n = snprintf(buf, CH_VALUE_TEXT_MAX, "%lld", (long long)v->u.i);
        break;
    case CH_V_DBL:
        /* Shortest text that reads back as the same double. */
        n = snprintf(buf, CH_VALUE_TEXT_MAX, "%.15g", v->u.d);
        if (strtod(buf, NULL) != v->u.d)
            n = snprintf(buf, CH_VALUE_TEXT_MAX, "%.17g", v->u.d);
        break;
    case CH_V_BOOL:
        return v->u.b ? CH_SV("true") : CH_SV("false");
    case CH_V_IP:
        n = (int)ch_ip_format(&v->u.ip, buf);
        break;
    default:
        return CH_SV("");
    }
    if (n < 0)
        n = 0;
    if (n >= CH_VALUE_TEXT_MAX)
        n = CH_VALUE_TEXT_MAX - 1;
    return (ch_sv){buf, (uint32_t)n};
}

bool ch_parse_number(const char *s, size_t n, bool *is_int, int64_t *i, double *d)
{
    size_t k = 0;
    bool integral = true;
    if (n == 0 || n > 63)
        return false;
    if (s[k] == '-' || s[k] == '+')
        k++;
    size_t st = k;
    while (k < n && s[k] >= '0' && s[k] <= '9')
        k++;
    if (k == st)
        return false;
    if (k < n && s[k] == '.') {
        integral = false;
        size_t fs = ++k;
        while (k < n && s[k] >= '0' && s[k] <= '9')
            k++;
        if (k == fs)
            return false;
    }
    if (k < n && (s[k] == 'e' || s[k] == 'E')) {
        integral = false;
        k++;
        if (k < n && (s[k] == '-' || s[k] == '+'))
            k++;
        size_t es = k;
        while (k < n && s[k] >= '0' && s[k] <= '9')
            k++;
        if (k == es)
            return false;
    }
    if (k != n)
        return false;
    char tmp[64];
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    *d = strtod(tmp, NULL);
    *is_int = false;
    if (integral) {
        errno = 0;
        long long v = strtoll(tmp, NULL, 10);
        if (errno == 0) { /* ERANGE: too big for int64, kept as a double */
            *i = v;
            *is_int = true;
        }
    }
    return isfinite(*d) || *is_int;
}
