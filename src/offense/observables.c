/*
 * observables.c - collecting an offense's observables from the events of its hits, bounded and
 * de-duplicated (see observables.h for what each log source gives and why).
 *
 * Sightings of a known value only widen its times and add to its count: the per-event cost is a
 * scan of at most the kind's cap (64, or 512 instances) of short strings, with no allocation once
 * a value is known. Values past the cap are counted in dropped[] so that a plan or a report can
 * say "and N more" instead of pretending to be complete.
 */
#include "offense/observables.h"

#include <string.h>

#include "core/error.h"
#include "core/ip.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/timeparse.h"

static const char *const kind_names[CH_OBS__COUNT] = {"source_ips", "access_keys", "instances",
                                                      "pool_domains", "pool_ips"};

const char *ch_obs_kind_name(ch_obs_kind k)
{
    return (unsigned)k < CH_OBS__COUNT ? kind_names[k] : "unknown";
}

ch_obs_kind ch_obs_kind_parse(const char *s)
{
    for (int k = 0; k < CH_OBS__COUNT; k++)
        if (s != NULL && strcmp(s, kind_names[k]) == 0)
            return (ch_obs_kind)k;
    return CH_OBS__COUNT;
}

size_t ch_obs_cap(ch_obs_kind k)
{
    return k == CH_OBS_INSTANCE ? CH_OBS_MAX_INSTANCES : CH_OBS_MAX_VALUES;
}

ch_offense_obs *ch_obs_new(void) { return ch_calloc(1, sizeof(ch_offense_obs)); }

void ch_obs_free(ch_offense_obs *o)
{
    if (o == NULL)
        return;
    for (int k = 0; k < CH_OBS__COUNT; k++) {
        for (size_t i = 0; i < o->n[k]; i++) {
            ch_free(o->items[k][i].value);
            ch_free(o->items[k][i].account);
            ch_free(o->items[k][i].region);
        }
        ch_free(o->items[k]);
    }
    ch_free(o);
}

/* Fill an empty account/region once a later sighting knows it. */
static int fill(char **slot, const char *s)
{
    if ((*slot)[0] != '\0' || s == NULL || s[0] == '\0')
        return 0;
    char *c = ch_strndup(s, strnlen(s, CH_OBS_MAX_VALUE_LEN));
    if (c == NULL)
        return CH_ENOMEM;
    ch_free(*slot);
    *slot = c;
    return 0;
}

int ch_obs_put(ch_offense_obs *o, ch_obs_kind k, const char *value, size_t n, const char *account,
               const char *region, uint64_t count, int64_t first_ms, int64_t last_ms, int severity)
{
    if ((unsigned)k >= CH_OBS__COUNT || value == NULL || n == 0)
        return 0;
    if (n > CH_OBS_MAX_VALUE_LEN || memchr(value, '\0', n) != NULL) {
        o->dropped[k] += count;
        o->dirty = true;
        return CH_ELIMIT;
    }
    for (size_t i = 0; i < o->n[k]; i++) {
        ch_obs *e = &o->items[k][i];
        if (strlen(e->value) != n || memcmp(e->value, value, n) != 0)
            continue;
        e->count += count;
        if (first_ms < e->first_ms)
            e->first_ms = first_ms;
        if (last_ms > e->last_ms)
            e->last_ms = last_ms;
        if (severity > e->severity)
            e->severity = severity;
        if (fill(&e->account, account) < 0 || fill(&e->region, region) < 0)
            return CH_ENOMEM;
        o->dirty = true;
        return 0;
    }
    if (o->n[k] >= ch_obs_cap(k)) {
        o->dropped[k] += count;
        o->dirty = true;
        return CH_ELIMIT;
    }
    if (o->n[k] == o->cap[k]) {
        size_t nc = o->cap[k] ? o->cap[k] * 2 : 4;
        if (nc > ch_obs_cap(k))
            nc = ch_obs_cap(k);
        ch_obs *ni = ch_realloc(o->items[k], nc * sizeof *ni);
        if (ni == NULL)
            return CH_ENOMEM;
        o->items[k] = ni;
        o->cap[k] = nc;
    }
    ch_obs e = {
        .value = ch_strndup(value, n),
        .account = ch_strndup(account != NULL ? account : "",
                              account != NULL ? strnlen(account, CH_OBS_MAX_VALUE_LEN) : 0),
        .region = ch_strndup(region != NULL ? region : "",
                             region != NULL ? strnlen(region, CH_OBS_MAX_VALUE_LEN) : 0),
        .count = count,
        .first_ms = first_ms,
        .last_ms = last_ms,
        .severity = severity,
    };
    if (e.value == NULL || e.account == NULL || e.region == NULL) {
        ch_free(e.value);
        ch_free(e.account);
        ch_free(e.region);
        return CH_ENOMEM;
    }
    o->items[k][o->n[k]++] = e;
    o->dirty = true;
    return 1;
}

/* ---- reading events ---------------------------------------------------------------------------
 */

typedef struct ctx {
    ch_offense_obs *o;
    char account[CH_OBS_MAX_VALUE_LEN + 1], region[CH_OBS_MAX_VALUE_LEN + 1];
    int64_t ts;
    int severity;
} ctx;

static void sv_copy(char *dst, ch_sv v)
{
    size_t n = v.p != NULL && v.n <= CH_OBS_MAX_VALUE_LEN ? v.n : 0;
    if (n > 0)
        memcpy(dst, v.p, n);
    dst[n] = '\0';
}

static int put_sv(ctx *c, ch_obs_kind k, ch_sv v)
{
    if (v.p == NULL || v.n == 0)
        return 0;
    int rc = ch_obs_put(c->o, k, v.p, v.n, c->account, c->region, 1, c->ts, c->ts, c->severity);
    return rc == CH_ENOMEM ? rc : 0;
}

/* A public address only: private ones name the organisation's own hosts, which neither a NACL
 * nor a subscriber's block list should ever hold. */
static int put_public_ip(ctx *c, ch_obs_kind k, const ch_ip *ip)
{
    if (ip->family == 0 || ch_ip_is_internal(ip))
        return 0;
    char t[64];
    size_t n = ch_ip_format(ip, t);
    int rc = ch_obs_put(c->o, k, t, n, c->account, c->region, 1, c->ts, c->ts, c->severity);
    return rc == CH_ENOMEM ? rc : 0;
}

/* The instances a successful RunInstances started (responseElements.instancesSet.items). */
static int put_launched(ctx *c, const ch_event *ev)
{
    ch_json_val resp, set, items, item, v;
    ch_json_iter it;
    if (!ev->has_raw_doc || ev->outcome != CH_OUTCOME_SUCCESS ||
        !ch_sv_eq(ev->action, "RunInstances", 12) ||
        !ch_json_obj_get(ev->raw_doc, "responseElements", 16, &resp) ||
        !ch_json_obj_get(resp, "instancesSet", 12, &set) ||
        !(ch_json_obj_get(set, "items", 5, &items) || ch_json_obj_get(set, "item", 4, &items)) ||
        !ch_json_arr_iter(items, &it))
        return 0;
    while (ch_json_arr_next(&it, &item)) {
        const char *s;
        size_t n;
        if (!ch_json_obj_get(item, "instanceId", 10, &v) || !ch_json_get_str(v, &s, &n))
            continue;
        int rc = put_sv(c, CH_OBS_INSTANCE, (ch_sv){s, (uint32_t)n});
        if (rc < 0)
            return rc;
    }
    return 0;
}

int ch_obs_add_event(ch_offense_obs *o, const ch_event *ev, int severity)
{
    if (o == NULL || ev == NULL)
        return 0;
    ctx c = {.o = o, .ts = ev->ts_ms, .severity = severity};
    sv_copy(c.account, ev->account_id);
    sv_copy(c.region, ev->region);
    int rc = 0;
    switch (ev->dataset) {
    case CH_DS_CLOUDTRAIL:
        if ((rc = put_public_ip(&c, CH_OBS_SOURCE_IP, &ev->src_ip)) < 0 ||
            (rc = put_sv(&c, CH_OBS_ACCESS_KEY, ev->access_key)) < 0 ||
            (rc = put_sv(&c, CH_OBS_INSTANCE, ev->instance_id)) < 0)
            return rc;
        return put_launched(&c, ev);
    case CH_DS_ROUTE53:
        /* The instance and key come from entity linking (enrich/entity.h): the query itself
         * names no principal. */
        if ((rc = put_sv(&c, CH_OBS_INSTANCE, ev->instance_id)) < 0 ||
            (rc = put_sv(&c, CH_OBS_ACCESS_KEY, ev->access_key)) < 0)
            return rc;
        return put_sv(&c, CH_OBS_POOL_DOMAIN, ev->dns_qname);
    case CH_DS_VPCFLOW:
        if ((rc = put_sv(&c, CH_OBS_INSTANCE, ev->instance_id)) < 0 ||
            (rc = put_sv(&c, CH_OBS_ACCESS_KEY, ev->access_key)) < 0 ||
            (rc = put_public_ip(&c, CH_OBS_POOL_IP, &ev->dst_ip)) < 0)
            return rc;
        /* A record of the pool's answers has the pool as its source. */
        return put_public_ip(&c, CH_OBS_POOL_IP, &ev->src_ip);
    default:
        return 0;
    }
}

/* ---- JSON -------------------------------------------------------------------------------------
 */

static int add_time(ch_buf *b, int64_t ms)
{
    if (ms == INT64_MAX || ms == INT64_MIN)
        return ch_buf_adds(b, "null");
    char t[40];
    size_t n = ch_time_format(ms, t);
    return ch_buf_add_json_str(b, t, n);
}

int ch_obs_json(ch_buf *b, const ch_offense_obs *o)
{
    int rc = ch_buf_addc(b, '{');
    for (int k = 0; k < CH_OBS__COUNT && rc >= 0; k++) {
        rc = ch_buf_printf(b, "%s\"%s\":{\"values\":[", k ? "," : "", kind_names[k]);
        size_t n = o != NULL ? o->n[k] : 0;
        for (size_t i = 0; i < n && rc >= 0; i++) {
            const ch_obs *e = &o->items[k][i];
            if ((i > 0 && (rc = ch_buf_addc(b, ',')) < 0) ||
                (rc = ch_buf_adds(b, "{\"value\":")) < 0 ||
                (rc = ch_buf_add_json_str(b, e->value, strlen(e->value))) < 0)
                break;
            if (e->account[0] &&
                ((rc = ch_buf_adds(b, ",\"account\":")) < 0 ||
                 (rc = ch_buf_add_json_str(b, e->account, strlen(e->account))) < 0))
                break;
            if (e->region[0] && ((rc = ch_buf_adds(b, ",\"region\":")) < 0 ||
                                 (rc = ch_buf_add_json_str(b, e->region, strlen(e->region))) < 0))
                break;
            if ((rc = ch_buf_printf(b, ",\"count\":%llu,\"severity\":%d,\"first_seen\":",
                                    (unsigned long long)e->count, e->severity)) < 0 ||
                (rc = add_time(b, e->first_ms)) < 0 ||
                (rc = ch_buf_adds(b, ",\"last_seen\":")) < 0 ||
                (rc = add_time(b, e->last_ms)) < 0 || (rc = ch_buf_addc(b, '}')) < 0)
                break;
        }
        if (rc >= 0)
            rc = ch_buf_printf(b, "],\"dropped\":%llu}",
                               (unsigned long long)(o != NULL ? o->dropped[k] : 0));
    }
    if (rc >= 0)
        rc = ch_buf_addc(b, '}');
    return rc < 0 ? rc : 0;
}
