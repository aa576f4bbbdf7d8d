/*
 * risk.c - per-user risk with exponential decay in event time, and its timeline.
 *
 * Users are found through an open-addressing index of pointers (core/hindex.h) keyed by
 * core/hash.h's hash of the name: one probe per hit. A user costs its name, ~64 bytes and its
 * timeline, which is capped at CH_RISK_MAX_TIMELINE entries (the oldest go first, counted);
 * dropping shifts the array (O(cap)), which only happens to users with hundreds of risky hits in
 * one run.
 *
 * Decay is kept as a factor per hour (QRadar UBA's "decay risk by this factor per hour"); the
 * half-life of the older interface converts to it. The population's threshold sorts the scores
 * of the users at risk: O(n log n) per report, never per hit. The watchlist is a sorted array
 * of names searched by bisection (a few thousand names at most).
 */
#include "uba/risk.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/hash.h"
#include "core/hindex.h"
#include "core/mem.h"
#include "core/timeparse.h"

struct ch_risk {
    ch_risk_user **all;
    size_t n, cap;
    ch_hindex index; /* users by name */
    int64_t half_life_ms;
    double ln_decay_per_ms; /* log of the per-hour factor / 3.6e6 (<= 0) */
    ch_risk_config cfg;
    char **watch; /* sorted by strcmp on the NUL-terminated names (names are cut, no NULs) */
    size_t nwatch;
    int64_t now_ms;
    uint64_t dropped;
};

/* A user's name, as ch_hindex compares it. */
typedef struct name_key {
    const char *p;
    size_t n;
} name_key;

static bool name_eq(const void *item, const void *key)
{
    const ch_risk_user *u = item;
    const name_key *k = key;
    return u->name_len == k->n && memcmp(u->name, k->p, k->n) == 0;
}

ch_risk *ch_risk_new(int64_t half_life_ms)
{
    ch_risk *r = ch_calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->half_life_ms = half_life_ms > 0 ? half_life_ms : CH_RISK_DEFAULT_HALF_LIFE_MS;
    r->cfg.decay_per_hour = exp2(-3600000.0 / (double)r->half_life_ms);
    r->ln_decay_per_ms = -M_LN2 / (double)r->half_life_ms;
    r->cfg.watch_multiplier = CH_RISK_DEFAULT_WATCH_MULTIPLIER;
    r->cfg.scale = CH_RISK_DEFAULT_SCALE;
    r->now_ms = INT64_MIN;
    return r;
}

int ch_risk_configure(ch_risk *r, const ch_risk_config *c)
{
    if (c->decay_per_hour < 0 || c->decay_per_hour > 1 || c->watch_multiplier < 0 ||
        (c->watch_multiplier > 0 && c->watch_multiplier < 1) || c->scale < 0 ||
        !isfinite(c->scale) || !isfinite(c->watch_multiplier))
        return CH_EUSAGE;
    if (c->decay_per_hour > 0) {
        r->cfg.decay_per_hour = c->decay_per_hour;
        r->ln_decay_per_ms = log(c->decay_per_hour) / 3600000.0;
        r->half_life_ms =
            c->decay_per_hour < 1 ? (int64_t)llround(-M_LN2 / r->ln_decay_per_ms) : INT64_MAX;
    }
    if (c->watch_multiplier > 0)
        r->cfg.watch_multiplier = c->watch_multiplier;
    if (c->scale > 0)
        r->cfg.scale = c->scale;
    return 0;
}

void ch_risk_config_get(const ch_risk *r, ch_risk_config *out) { *out = r->cfg; }

static int watch_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

bool ch_risk_watched(const ch_risk *r, const char *user, size_t n)
{
    if (r->nwatch == 0 || n > CH_RISK_MAX_NAME_LEN || memchr(user, '\0', n) != NULL)
        return false;
    char key[CH_RISK_MAX_NAME_LEN + 1];
    memcpy(key, user, n);
    key[n] = '\0';
    const char *k = key;
    return bsearch(&k, r->watch, r->nwatch, sizeof *r->watch, watch_cmp) != NULL;
}

int ch_risk_watch(ch_risk *r, const char *user, size_t n)
{
    if (n == 0 || ch_risk_watched(r, user, n))
        return 0;
    if (r->nwatch >= CH_RISK_MAX_WATCHLIST || n > CH_RISK_MAX_NAME_LEN)
        return CH_ELIMIT;
    char **nw = ch_realloc(r->watch, (r->nwatch + 1) * sizeof *nw);
    if (nw == NULL)
        return CH_ENOMEM;
    r->watch = nw;
    if ((nw[r->nwatch] = ch_strndup(user, n)) == NULL)
        return CH_ENOMEM;
    r->nwatch++;
    qsort(r->watch, r->nwatch, sizeof *r->watch, watch_cmp);
    return 0;
}

double ch_risk_score(const ch_risk *r, double raw)
{
    if (!(raw > 0))
        return 0;
    return 100.0 * -expm1(-raw / r->cfg.scale);
}

static void user_free(ch_risk_user *u)
{
    if (u == NULL)
        return;
    for (size_t i = 0; i < u->ntimeline; i++)
        ch_free(u->timeline[i].rule_id);
    ch_free(u->timeline);
    ch_free(u->name);
    ch_free(u);
}

void ch_risk_free(ch_risk *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++)
        user_free(r->all[i]);
    ch_free(r->all);
    for (size_t i = 0; i < r->nwatch; i++)
        ch_free(r->watch[i]);
    ch_free(r->watch);
    ch_hindex_free(&r->index);
    ch_free(r);
}

int64_t ch_risk_half_life(const ch_risk *r) { return r->half_life_ms; }
size_t ch_risk_count(const ch_risk *r) { return r->n; }
ch_risk_user *ch_risk_at(const ch_risk *r, size_t i) { return i < r->n ? r->all[i] : NULL; }
int64_t ch_risk_now(const ch_risk *r) { return r->now_ms; }
uint64_t ch_risk_dropped(const ch_risk *r) { return r->dropped; }

static double decay(const ch_risk *r, double v, int64_t dt_ms)
{
    if (dt_ms <= 0 || v == 0.0)
        return v;
    return v * exp((double)dt_ms * r->ln_decay_per_ms);
}

double ch_risk_user_at(const ch_risk *r, const ch_risk_user *u, int64_t ts_ms)
{
    return decay(r, u->risk, ts_ms - u->updated_ms);
}

ch_risk_user *ch_risk_find(const ch_risk *r, const char *user, size_t user_len)
{
    if (user_len > CH_RISK_MAX_NAME_LEN)
        user_len = CH_RISK_MAX_NAME_LEN;
    name_key k = {user, user_len};
    return ch_hindex_find(&r->index, ch_hash_bytes(user, user_len), name_eq, &k);
}

/* The user named (user, n), created at zero risk when absent. */
static int user_get(ch_risk *r, const char *user, size_t n, ch_risk_user **out)
{
    if (n > CH_RISK_MAX_NAME_LEN)
        n = CH_RISK_MAX_NAME_LEN;
    ch_risk_user *u = ch_risk_find(r, user, n);
    if (u != NULL) {
        *out = u;
        return 0;
    }
    if (r->n >= CH_RISK_MAX_USERS) {
        r->dropped++;
        return CH_ELIMIT;
    }
    if (ch_hindex_reserve(&r->index, r->n + 1, 64) < 0)
        return CH_ENOMEM;
    if (r->n == r->cap) {
        ch_risk_user **na = ch_grow(r->all, &r->cap, 16, sizeof *na);
        if (na == NULL)
            return CH_ENOMEM;
        r->all = na;
    }
    u = ch_calloc(1, sizeof *u);
    if (u == NULL)
        return CH_ENOMEM;
    u->name = ch_strndup(user, n);
    if (u->name == NULL) {
        ch_free(u);
        return CH_ENOMEM;
    }
    u->name_len = n;
    u->updated_ms = INT64_MIN;
    r->all[r->n++] = u;
    uint64_t h = ch_hash_bytes(user, n);
    name_key k = {user, n};
    ch_hindex_set(&r->index, ch_hindex_probe(&r->index, h, name_eq, &k), h, u);
    *out = u;
    return 0;
}

static int timeline_push(ch_risk_user *u, int64_t ts, const char *rule_id, double delta,
                         double after)
{
    char *rid = ch_strdup(rule_id != NULL ? rule_id : "");
    if (rid == NULL)
        return CH_ENOMEM;
    if (u->ntimeline == u->timeline_cap && u->timeline_cap < CH_RISK_MAX_TIMELINE) {
        /* Grown on demand: most users have a handful of entries. */
        size_t nc = u->timeline_cap ? u->timeline_cap * 2 : 4;
        if (nc > CH_RISK_MAX_TIMELINE)
            nc = CH_RISK_MAX_TIMELINE;
        ch_risk_entry *nt = ch_realloc(u->timeline, nc * sizeof *nt);
        if (nt == NULL) {
            ch_free(rid);
            return CH_ENOMEM;
        }
        u->timeline = nt;
        u->timeline_cap = nc;
    }
    if (u->ntimeline == CH_RISK_MAX_TIMELINE) {
        ch_free(u->timeline[0].rule_id);
        memmove(u->timeline, u->timeline + 1, (u->ntimeline - 1) * sizeof *u->timeline);
        u->ntimeline--;
        if (u->nstored > 0)
            u->nstored--;
        else
            u->dropped_timeline++;
    }
    u->timeline[u->ntimeline++] =
        (ch_risk_entry){.ts_ms = ts, .rule_id = rid, .delta = delta, .risk_after = after};
    return 0;
}

int ch_risk_add(ch_risk *r, const char *user, size_t user_len, int64_t ts_ms, const char *rule_id,
                double delta)
{
    if (user == NULL || user_len == 0 || delta == 0.0)
        return 0;
    ch_risk_user *u = NULL;
    int rc = user_get(r, user, user_len, &u);
    if (rc < 0)
        return rc;
    if (u->updated_ms == INT64_MIN || ts_ms >= u->updated_ms) {
        u->risk = decay(r, u->risk, u->updated_ms == INT64_MIN ? 0 : ts_ms - u->updated_ms) + delta;
        u->updated_ms = ts_ms;
    } else {
        /* A late hit: its delta has decayed by the time of the last update. */
        u->risk += decay(r, delta, u->updated_ms - ts_ms);
    }
    if (u->risk < 0)
        u->risk = 0;
    u->dirty = true;
    if (ts_ms > r->now_ms)
        r->now_ms = ts_ms;
    rc = timeline_push(u, ts_ms, rule_id, delta, ch_risk_user_at(r, u, ts_ms));
    return rc < 0 ? rc : 1;
}

int ch_risk_add_hit(ch_risk *r, const ch_rule_hit *hit)
{
    if (hit == NULL || hit->rule == NULL || hit->rule->risk == 0 || hit->user.p == NULL ||
        hit->user.n == 0)
        return 0;
    double delta = hit->rule->risk;
    if (ch_risk_watched(r, hit->user.p, hit->user.n))
        delta *= r->cfg.watch_multiplier;
    return ch_risk_add(r, hit->user.p, hit->user.n, hit->ts_ms, hit->rule->id, delta);
}

int ch_risk_put_user(ch_risk *r, const char *user, size_t user_len, double risk, int64_t updated_ms)
{
    ch_risk_user *u = NULL;
    int rc = user_get(r, user, user_len, &u);
    if (rc < 0)
        return rc;
    u->risk = risk;
    u->updated_ms = updated_ms;
    u->dirty = false;
    if (updated_ms > r->now_ms)
        r->now_ms = updated_ms;
    return 0;
}

int ch_risk_put_entry(ch_risk *r, const char *user, size_t user_len, int64_t ts_ms,
                      const char *rule_id, double delta, double risk_after)
{
    ch_risk_user *u = NULL;
    int rc = user_get(r, user, user_len, &u);
    if (rc < 0)
        return rc;
    if ((rc = timeline_push(u, ts_ms, rule_id, delta, risk_after)) < 0)
        return rc;
    u->nstored = u->ntimeline;
    return 0;
}

typedef struct {
    ch_risk_user *u;
    double v;
} scored;

static int cmp_scored(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    if (x->v != y->v)
        return x->v > y->v ? -1 : 1;
    size_t n = x->u->name_len < y->u->name_len ? x->u->name_len : y->u->name_len;
    int c = memcmp(x->u->name, y->u->name, n);
    if (c != 0)
        return c;
    return x->u->name_len < y->u->name_len ? -1 : x->u->name_len > y->u->name_len;
}

int ch_risk_sorted(const ch_risk *r, ch_risk_user ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    scored *s = ch_malloc((r->n ? r->n : 1) * sizeof *s);
    ch_risk_user **v = ch_malloc((r->n ? r->n : 1) * sizeof *v);
    if (s == NULL || v == NULL) {
        ch_free(s);
        ch_free(v);
        return CH_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < r->n; i++) {
        double val = ch_risk_user_at(r, r->all[i], r->now_ms);
        /* Below 0.05 the score prints as 0.0: the user has decayed out of the report. */
        if (val >= 0.05)
            s[k++] = (scored){r->all[i], val};
    }
    qsort(s, k, sizeof *s, cmp_scored);
    for (size_t i = 0; i < k; i++)
        v[i] = s[i].u;
    ch_free(s);
    *out = v;
    *n = k;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median_sorted(const double *v, size_t n)
{
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int ch_risk_population_get(const ch_risk *r, ch_risk_population *out)
{
    *out = (ch_risk_population){.threshold = CH_RISK_FIXED_THRESHOLD, .fixed = true};
    double *v = ch_malloc((r->n ? r->n : 1) * sizeof *v);
    if (v == NULL)
        return CH_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < r->n; i++) {
        double raw = ch_risk_user_at(r, r->all[i], r->now_ms);
        if (raw >= 0.05)
            v[k++] = ch_risk_score(r, raw);
    }
    out->users = k;
    if (k > 0) {
        qsort(v, k, sizeof *v, cmp_double);
        out->median = median_sorted(v, k);
        for (size_t i = 0; i < k; i++)
            v[i] = fabs(v[i] - out->median);
        qsort(v, k, sizeof *v, cmp_double);
        out->mad = median_sorted(v, k);
    }
    if (k >= CH_RISK_MIN_POPULATION) {
        /* 1.4826 MAD estimates a standard deviation robustly: the attacker being in the
         * population does not raise the bar he is measured against. The 10-point floor keeps a
         * population of identical scores from flagging a user one point above them. */
        double spread = 3 * 1.4826 * out->mad;
        out->threshold = out->median + (spread > 10 ? spread : 10);
        /* Scores saturate near 100 (a raw 460 is already 99): a cap below them keeps the
         * heaviest users comparable with a spread-out population. */
        if (out->threshold > 99)
            out->threshold = 99;
        out->fixed = false;
    }
    ch_free(v);
    return 0;
}

static int add_time(ch_buf *b, int64_t ms)
{
    char t[40];
    size_t n = ch_time_format(ms, t);
    return ch_buf_add_json_str(b, t, n);
}

int ch_risk_json(ch_buf *b, const ch_risk *r, bool detail)
{
    ch_risk_user **v = NULL;
    size_t n = 0;
    ch_risk_population pop;
    int rc = ch_risk_population_get(r, &pop);
    if (rc < 0 || (rc = ch_risk_sorted(r, &v, &n)) < 0)
        return rc;
    if ((rc = ch_buf_adds(b, "\"users\":[")) < 0)
        goto cleanup;
    for (size_t i = 0; i < n; i++) {
        const ch_risk_user *u = v[i];
        double raw = ch_risk_user_at(r, u, r->now_ms), score = ch_risk_score(r, raw);
        if ((i > 0 && (rc = ch_buf_addc(b, ',')) < 0) || (rc = ch_buf_adds(b, "{\"name\":")) < 0 ||
            (rc = ch_buf_add_json_str(b, u->name, u->name_len)) < 0 ||
            (rc = ch_buf_printf(b, ",\"risk\":%.1f,\"risk_raw\":%.1f,\"stands_out\":%s", score, raw,
                                score > pop.threshold ? "true" : "false")) < 0 ||
            (ch_risk_watched(r, u->name, u->name_len) &&
             (rc = ch_buf_adds(b, ",\"watched\":true")) < 0))
            goto cleanup;
        if (detail) {
            if ((rc = ch_buf_adds(b, ",\"updated\":")) < 0 ||
                (rc = add_time(b, u->updated_ms)) < 0 ||
                (rc = ch_buf_adds(b, ",\"timeline\":[")) < 0)
                goto cleanup;
            for (size_t k = 0; k < u->ntimeline; k++) {
                const ch_risk_entry *e = &u->timeline[k];
                if ((k > 0 && (rc = ch_buf_addc(b, ',')) < 0) ||
                    (rc = ch_buf_adds(b, "{\"time\":")) < 0 || (rc = add_time(b, e->ts_ms)) < 0 ||
                    (rc = ch_buf_adds(b, ",\"rule\":")) < 0 ||
                    (rc = ch_buf_add_json_str(b, e->rule_id, strlen(e->rule_id))) < 0 ||
                    (rc = ch_buf_printf(b, ",\"delta\":%.1f,\"risk_raw\":%.1f,\"risk\":%.1f}",
                                        e->delta, e->risk_after, ch_risk_score(r, e->risk_after))) <
                        0)
                    goto cleanup;
            }
            if ((rc = ch_buf_addc(b, ']')) < 0)
                goto cleanup;
        }
        if ((rc = ch_buf_addc(b, '}')) < 0)
            goto cleanup;
    }
    rc = ch_buf_printf(b,
                       "],\"risk_population\":{\"users\":%zu,\"median\":%.1f,\"mad\":%.1f,"
                       "\"threshold\":%.1f,\"fixed\":%s}",
                       pop.users, pop.median, pop.mad, pop.threshold, pop.fixed ? "true" : "false");
cleanup:
    ch_free(v);
    return rc < 0 ? rc : 0;
}

int ch_risk_table(ch_buf *b, const ch_risk *r, size_t limit)
{
    ch_risk_user **v = NULL;
    size_t n = 0;
    int rc = ch_risk_sorted(r, &v, &n);
    if (rc < 0)
        return rc;
    if (n == 0) {
        rc = ch_buf_adds(b, "no users at risk\n");
        goto cleanup;
    }
    ch_risk_population pop;
    if ((rc = ch_risk_population_get(r, &pop)) < 0)
        goto cleanup;
    rc = ch_buf_printf(b, "%6s %10s  %-24s %s\n", "RISK", "RAW", "UPDATED", "USER");
    for (size_t i = 0; i < n && rc >= 0 && (limit == 0 || i < limit); i++) {
        char t[40];
        ch_time_format(v[i]->updated_ms, t);
        double raw = ch_risk_user_at(r, v[i], r->now_ms), score = ch_risk_score(r, raw);
        rc = ch_buf_printf(b, "%5.1f%c %10.1f  %-24s ", score, score > pop.threshold ? '!' : ' ',
                           raw, t);
        for (size_t k = 0; k < v[i]->name_len && k < 64 && rc >= 0; k++) {
            unsigned char c = (unsigned char)v[i]->name[k];
            rc = ch_buf_addc(b, (c < 0x20 || c == 0x7f) ? '?' : (char)c);
        }
        if (rc >= 0)
            rc = ch_buf_addc(b, '\n');
    }
    if (rc >= 0 && limit != 0 && n > limit)
        rc = ch_buf_printf(b, "(%zu more users)\n", n - limit);
    if (rc >= 0)
        rc = ch_buf_printf(b, "! stands out: score above %.1f (%s)\n", pop.threshold,
                           pop.fixed ? "fixed: too few users at risk to compare"
                                     : "median + max(3 MAD, 10) of the users at risk");
cleanup:
    ch_free(v);
    return rc < 0 ? rc : 0;
}
