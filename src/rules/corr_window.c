/*
 * corr_window.c - the threshold and distinct correlation types: enough matching events (or
 * enough of a summed value, or enough distinct values of a field) for one key within a sliding
 * window of `within` (semantics in engine.h, rule syntax in rule.h).
 *
 * A key keeps its window entries sorted by event time; events arrive nearly sorted, so an insert
 * is a short move from the back. The fire check is a two-pointer pass over the entries within
 * `within` of the new event, O(entries in 2 x within). Distinct keeps one entry per value (the
 * latest), found by a scan of the key's entries: they are few (capped by max_entries) and the
 * scan stays in one cache-friendly array. When the window fires, its entries are consumed and the
 * key is quiet for `within` (quiet_until, consumed_until in the key): one hit per episode.
 *
 * Neither type keeps state beyond the entries and those two times, so neither has save, load
 * or free hooks; a restored key expires when its newest entry, or its quiet time, ends.
 */
#include <math.h>
#include <string.h>

#include "rules/engine_int.h"

static void ent_remove(ch_engine *e, eng_key *k, uint32_t i)
{
    ch__eng_entry_free(e, &k->ent[i]);
    memmove(&k->ent[i], &k->ent[i + 1], (k->nent - i - 1) * sizeof(eng_entry));
    k->nent--;
}

/* Insert keeping event-time order (stable: equal times keep arrival order). When full, the
 * oldest entry makes room (counted as a cap hit). */
static int ent_insert(ch_engine *e, eng_key *k, const eng_entry *en)
{
    int rc = ch__eng_ent_reserve(e, k);
    if (rc == CH_ELIMIT) {
        e->st.cap_hits++;
        if (k->nent == 0 || k->ent[0].ts > en->ts)
            return CH_ELIMIT;
        ent_remove(e, k, 0);
    } else if (rc < 0) {
        return rc;
    }
    uint32_t i = k->nent;
    while (i > 0 && k->ent[i - 1].ts > en->ts)
        i--;
    memmove(&k->ent[i + 1], &k->ent[i], (k->nent - i) * sizeof(eng_entry));
    k->ent[i] = *en;
    k->nent++;
    return 0;
}

static void ent_prune(ch_engine *e, eng_key *k, int64_t before)
{
    uint32_t n = 0;
    while (n < k->nent && k->ent[n].ts < before)
        ch__eng_entry_free(e, &k->ent[n++]);
    if (n) {
        memmove(k->ent, k->ent + n, (k->nent - n) * sizeof(eng_entry));
        k->nent -= n;
    }
}

/* A window [ts_i, ts_i + within] containing t with enough weight: returns true with [*lo, *hi)
 * the entries in it. */
static bool window_find(const eng_key *k, int64_t t, int64_t within, double need, uint32_t *lo,
                        uint32_t *hi)
{
    uint32_t i = 0, j = 0;
    double sum = 0;
    while (i < k->nent && k->ent[i].ts < t - within)
        i++;
    j = i;
    for (; i < k->nent && k->ent[i].ts <= t; i++) {
        while (j < k->nent && k->ent[j].ts <= k->ent[i].ts + within)
            sum += k->ent[j++].w;
        if (sum >= need - 1e-9) {
            *lo = i;
            *hi = j;
            return true;
        }
        sum -= k->ent[i].w;
    }
    return false;
}

static int window_rule(ch_engine *e, uint32_t ri, const ch_event *ev, const char *key,
                       uint32_t klen)
{
    const ch_rule *r = e->rs->rules[ri];
    int64_t ts = ev->ts_ms;
    eng_vals vs;
    ch__eng_vals_init(&vs);
    double w = 1;
    if (r->type == CH_CORR_THRESHOLD && r->sum != NULL) {
        ch_field_visit(r->sum, ev, &e->cache, ch__eng_collect_value, &vs);
        w = r->sum_count ? (double)vs.count : vs.sum;
        if (!(w > 0) || !isfinite(w))
            return 0;
    } else if (r->type == CH_CORR_DISTINCT) {
        ch_field_visit(r->field, ev, &e->cache, ch__eng_collect_value, &vs);
        if (vs.n == 0)
            return 0;
    }
    eng_key *k = ch__eng_key_get(e, ri, key, klen, true);
    if (k == NULL)
        return 0;
    if (k->consumed_until != ENG_NO_TIME && ts <= k->consumed_until)
        return 0; /* belongs to a window that already fired */
    int64_t wm = ch__eng_watermark(e);
    if (wm != ENG_NO_TIME)
        ent_prune(e, k, wm - r->within_ms);
    if (r->type == CH_CORR_DISTINCT) {
        for (uint32_t v = 0; v < vs.n; v++) {
            eng_entry en = {ts, 1, vs.vh[v], NULL, 0};
            for (uint32_t i = 0; i < k->nent; i++)
                if (k->ent[i].vh == en.vh) {
                    if (k->ent[i].ts >= ts)
                        goto next_value;
                    ent_remove(e, k, i);
                    break;
                }
            en.text = ch__eng_entry_text(e, ev, vs.text[v], vs.tlen[v], &en.tlen);
            if (ent_insert(e, k, &en) < 0)
                ch__eng_entry_free(e, &en);
        next_value:;
        }
    } else {
        eng_entry en = {ts, w, 0, NULL, 0};
        en.text = ch__eng_entry_text(e, ev, NULL, 0, &en.tlen);
        if (ent_insert(e, k, &en) < 0)
            ch__eng_entry_free(e, &en);
    }
    int64_t newest = k->nent ? k->ent[k->nent - 1].ts : ts;
    int64_t exp = newest + r->within_ms;
    if (k->quiet_until != ENG_NO_TIME && k->quiet_until > exp)
        exp = k->quiet_until;
    ch__eng_expire_at(e, k, exp);
    if (k->quiet_until != ENG_NO_TIME && ts < k->quiet_until)
        return 0;
    uint32_t lo, hi;
    if (!window_find(k, ts, r->within_ms, r->count, &lo, &hi))
        return 0;
    eng_hitctx hc;
    memset(&hc, 0, sizeof hc);
    hc.first = k->ent[lo].ts;
    double total = 0;
    for (uint32_t i = lo; i < hi; i++) {
        total += k->ent[i].w;
        hc.count++;
        ch__eng_hit_add_id(&hc, k->ent[i].text);
    }
    ch__eng_evidence_begin(e);
    if (r->type == CH_CORR_DISTINCT) {
        ch_buf_printf(&e->evidence, "%llu distinct %s", (unsigned long long)hc.count,
                      ch_field_ref_path(r->field));
    } else if (r->sum != NULL) {
        ch_buf_printf(&e->evidence, "%s%s%s = %.15g over %llu events",
                      r->sum_count ? "count(" : "sum of ", ch_field_ref_path(r->sum),
                      r->sum_count ? ")" : "", total, (unsigned long long)hc.count);
    } else {
        ch_buf_printf(&e->evidence, "%llu events", (unsigned long long)hc.count);
    }
    ch__eng_evidence_key(e, r, k);
    ch_buf_adds(&e->evidence, " within ");
    ch__eng_evidence_dur(&e->evidence, r->within_ms);
    if (r->type == CH_CORR_DISTINCT) {
        ch_buf_adds(&e->evidence, ":");
        for (uint32_t i = lo; i < hi && i < lo + 16; i++) {
            const char *t = k->ent[i].text;
            ch_buf_printf(&e->evidence, "%s %s", i > lo ? "," : "", t ? t + strlen(t) + 1 : "");
        }
    }
    /* The episode: its entries are consumed and the key stays quiet for `within`. Ids borrow
     * from the entries, so they are freed only after the hit was delivered. */
    int64_t hi_ts = k->ent[hi - 1].ts;
    k->quiet_until = ts + r->within_ms;
    k->consumed_until = hi_ts;
    int rc = ch__eng_emit(e, ri, ev, ts, &hc);
    /* emit may have re-entered the engine (derived events) but never for this rule's own key
     * state with a freed pointer: keys are freed only by expire(), which runs at the top. */
    ent_prune(e, k, hi_ts + 1);
    ch__eng_expire_at(e, k,
                      k->quiet_until > ts + r->within_ms ? k->quiet_until : ts + r->within_ms);
    return rc;
}

static int window_process(ch_engine *e, uint32_t ri, const ch_event *ev, bool late)
{
    char key[ENG_KEY_MAX];
    uint32_t klen = 0;
    if (!ch__eng_select(e, ri, ev, late, key, &klen))
        return 0;
    return window_rule(e, ri, ev, key, klen);
}

static int64_t window_expiry(const ch_rule *r, const eng_key *k)
{
    int64_t exp = k->nent ? k->ent[k->nent - 1].ts + r->within_ms : ENG_NO_TIME;
    if (k->quiet_until != ENG_NO_TIME && (exp == ENG_NO_TIME || k->quiet_until > exp))
        exp = k->quiet_until;
    return exp;
}

const ch__corr_type ch__corr_threshold = {
    .type = CH_CORR_THRESHOLD,
    .process = window_process,
    .expiry = window_expiry,
};

const ch__corr_type ch__corr_distinct = {
    .type = CH_CORR_DISTINCT,
    .process = window_process,
    .expiry = window_expiry,
};
