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

static const char *const ecs_roots[] = {"@timestamp", "event", "user", "cloud", "source",
                                        "destination", "network", "dns", "user_agent",
                                        "error", "original", NULL};
static const size_t ecs_root_lens[] = {10, 5, 4, 5, 6, 11, 7, 3, 10, 5, 8};
#define N_ECS_ROOTS (sizeof ecs_root_lens / sizeof ecs_root_lens[0])

/* Used on the rare path only (a record that has a colliding key). */
static bool is_ecs_root(const char *k, size_t n)
{
    if (n < 3 || n > 11)
        return false;
    switch (k[0]) {
    case '@': case 'e': case 'u': case 'c': case 's': case 'd': case 'n': case 'o': break;
    default: return false;
    }
    for (int i = 0; ecs_roots[i] != NULL; i++)
        if (ecs_roots[i][0] == k[0] && strlen(ecs_roots[i]) == n && memcmp(ecs_roots[i], k, n) == 0)
            return true;
    return false;
}

/* Tiny state machine so that nested objects get their commas right without a tree. */
typedef struct jw {
    ch_buf *b;
    int rc;
    bool first[8];
    int depth;
} jw;

static void jw_key_n(jw *w, const char *k, size_t kn)
{
    /* One reservation for separator, quotes and colon; keys are plain ASCII literals. */
    if (ch_buf_reserve(w->b, kn + 4) < 0) {
        w->rc |= CH_ENOMEM;
        return;
    }
    char *p = w->b->data + w->b->len;
    if (!w->first[w->depth])
        *p++ = ',';
    w->first[w->depth] = false;
    *p++ = '"';
    memcpy(p, k, kn);
    p += kn;
    *p++ = '"';
    *p++ = ':';
    w->b->len = (size_t)(p - w->b->data);
    w->b->data[w->b->len] = '\0';
}

#define jw_key(w, k) jw_key_n((w), (k), strlen(k))

static void jw_open(jw *w, const char *k)
{
    jw_key(w, k);
    w->rc |= ch_buf_addc(w->b, '{');
    w->first[++w->depth] = true;
}

static void jw_close(jw *w)
{
    w->rc |= ch_buf_addc(w->b, '}');
    w->depth--;
}

static void jw_str(jw *w, const char *k, ch_sv v)
{
    if (v.p == NULL)
        return;
    jw_key(w, k);
    w->rc |= ch_buf_add_json_str(w->b, v.p, v.n);
}

static void jw_u64(jw *w, const char *k, uint64_t v)
{
    jw_key(w, k);
    w->rc |= ch_buf_add_u64(w->b, v);
}

static void jw_ip(jw *w, const char *k, const ch_ip *ip)
{
    if (ip->family == 0)
        return;
    char tmp[48];
    size_t n = ch_ip_format(ip, tmp);
    jw_key(w, k);
    w->rc |= ch_buf_addc(w->b, '"');
    w->rc |= ch_buf_add(w->b, tmp, n);
    w->rc |= ch_buf_addc(w->b, '"');
}

static bool geo_has(const ch_geo *g) { return g->country[0] || g->asn || g->city.p; }

static void jw_endpoint(jw *w, const char *k, const ch_ip *ip, uint16_t port, bool has_port,
                        ch_sv address, const ch_geo *g)
{
    if (ip->family == 0 && !has_port && address.p == NULL)
        return;
    jw_open(w, k);
    jw_ip(w, "ip", ip);
    if (has_port)
        jw_u64(w, "port", port);
    if (address.p != NULL)
        jw_str(w, "address", address);
    if (g->internal) {
        /* Elastic's convention: internal addresses are not geolocated. */
        jw_key(w, "internal");
        w->rc |= ch_buf_add(w->b, "true", 4);
    }
    if (geo_has(g)) {
        jw_open(w, "geo");
        if (g->country[0])
            jw_str(w, "country_iso_code", (ch_sv){g->country, (uint32_t)strlen(g->country)});
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
    bool collide = ev->has_raw_doc &&
                   ch_json_obj_has_any_key(ev->raw_doc, ecs_roots, ecs_root_lens, N_ECS_ROOTS);
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
        if (!is_ecs_root(k, kn))
            rc |= write_member(b, k, kn, v, ",");
    ch_json_obj_iter(ev->raw_doc, &it);
    while (ch_json_obj_next(&it, &k, &kn, &v))
        if (is_ecs_root(k, kn))
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

static const char *outcome_name(ch_outcome o)
{
    switch (o) {
    case CH_OUTCOME_SUCCESS: return "success";
    case CH_OUTCOME_FAILURE: return "failure";
    case CH_OUTCOME_UNKNOWN: return "unknown";
    default: return NULL;
    }
}

int ch_event_to_json(const ch_event *ev, ch_buf *b)
{
    jw w = {.b = b, .rc = 0, .depth = 0};
    w.first[0] = true;
    char ts[32];
    w.rc |= ch_buf_addc(b, '{');
    size_t tn = ch_time_format(ev->ts_ms, ts);
    jw_str(&w, "@timestamp", (ch_sv){ts, (uint32_t)tn});

    jw_open(&w, "event");
    const char *ds = ch_dataset_name(ev->dataset);
    jw_str(&w, "dataset", (ch_sv){ds, (uint32_t)strlen(ds)});
    jw_str(&w, "id", ev->id);
    jw_str(&w, "action", ev->action);
    jw_str(&w, "provider", ev->provider);
    jw_str(&w, "category", ev->category);
    jw_str(&w, "type", ev->type);
    const char *oc = outcome_name(ev->outcome);
    if (oc != NULL)
        jw_str(&w, "outcome", (ch_sv){oc, (uint32_t)strlen(oc)});
    if (ev->flags & CH_F_END) {
        tn = ch_time_format(ev->end_ms, ts);
        jw_str(&w, "end", (ch_sv){ts, (uint32_t)tn});
    }
    jw_close(&w);

    if (ev->user_name.p || ev->user_id.p) {
        jw_open(&w, "user");
        jw_str(&w, "name", ev->user_name);
        jw_str(&w, "id", ev->user_id);
        jw_close(&w);
    }
    if (ev->account_id.p || ev->region.p || ev->instance_id.p) {
        jw_open(&w, "cloud");
        jw_str(&w, "provider", CH_SV("aws"));
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
    jw_endpoint(&w, "source", &ev->src_ip, ev->src_port, ev->flags & CH_F_SRC_PORT,
                ev->src_address, &ev->src_geo);
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
            jw_str(&w, "iana_number", (ch_sv){num, (uint32_t)nn});
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
            w.rc |= ch_buf_addc(b, '[');
            for (unsigned i = 0; i < ev->dns_nanswers; i++) {
                w.rc |= ch_buf_adds(b, i ? ",{\"data\":" : "{\"data\":");
                w.rc |= ch_buf_add_json_str(b, ev->dns_answers[i].p, ev->dns_answers[i].n);
                w.rc |= ch_buf_addc(b, '}');
            }
            w.rc |= ch_buf_addc(b, ']');
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
    if (ev->raw_json.p != NULL)
        w.rc |= write_raw_json(ev, b);
    else if (ev->raw_count)
        w.rc |= write_raw_columns(ev, b);
    w.rc |= ch_buf_addc(b, '}');
    return w.rc ? CH_ENOMEM : 0;
}
