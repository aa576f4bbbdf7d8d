/*
 * corr_first_seen.c - the first_seen correlation type: a value of `field` never seen before for
 * the key, once the learning time (the rule's, else the engine's) has passed since the first
 * event the engine saw; values seen while learning are remembered silently (engine.h, rule.h).
 *
 * A key keeps its values as entries sorted by value hash (the FNV-1a of the text, fixed because
 * it is saved with the state), found by binary search: O(log values) per event value, the
 * values capped per key by max_entries (a refused value is counted in cap_hits and stays new).
 * Each entry's time is the value's latest sighting. A first_seen key never expires: what it
 * learned is the point of it, so it has no expiry hook and no state beyond its entries.
 */
#include <string.h>

#include "rules/engine_int.h"

static int first_seen_rule(ch_engine *e, uint32_t ri, const ch_event *ev, const char *key,
                           uint32_t klen)
{
    const ch_rule *r = e->rs->rules[ri];
    eng_vals vs;
    ch__eng_vals_init(&vs);
    ch_field_visit(r->field, ev, &e->cache, ch__eng_collect_value, &vs);
    if (vs.n == 0)
        return 0;
    eng_key *k = ch__eng_key_get(e, ri, key, klen, true);
    if (k == NULL)
        return 0;
    int64_t learning = r->learning_ms >= 0 ? r->learning_ms : e->o.learning_ms;
    bool learn = ev->ts_ms < e->t0 + learning;
    uint32_t nnew = 0, newv[ENG_MAX_VALUES];
    for (uint32_t v = 0; v < vs.n; v++) {
        /* binary search by hash */
        uint32_t lo = 0, hi = k->nent;
        while (lo < hi) {
            uint32_t mid = (lo + hi) / 2;
            if (k->ent[mid].vh < vs.vh[v])
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < k->nent && k->ent[lo].vh == vs.vh[v]) {
            if (ev->ts_ms > k->ent[lo].ts)
                k->ent[lo].ts = ev->ts_ms;
            continue;
        }
        int rc = ch__eng_ent_reserve(e, k);
        if (rc < 0) {
            e->st.cap_hits++;
            continue;
        }
        memmove(&k->ent[lo + 1], &k->ent[lo], (k->nent - lo) * sizeof(eng_entry));
        k->ent[lo] = (eng_entry){ev->ts_ms, 1, vs.vh[v], NULL, 0};
        k->nent++;
        newv[nnew++] = v;
    }
    if (learn || nnew == 0)
        return 0;
    eng_hitctx hc;
    memset(&hc, 0, sizeof hc);
    hc.first = ev->ts_ms;
    hc.count = 1;
    ch__eng_evidence_begin(e);
    ch_buf_printf(&e->evidence, "first %s", ch_field_ref_path(r->field));
    ch__eng_evidence_key(e, r, k);
    ch_buf_adds(&e->evidence, ":");
    for (uint32_t i = 0; i < nnew && i < 16; i++)
        ch_buf_printf(&e->evidence, "%s %s", i ? "," : "", vs.text[newv[i]]);
    return ch__eng_emit(e, ri, ev, ev->ts_ms, &hc);
}

static int first_seen_process(ch_engine *e, uint32_t ri, const ch_event *ev, bool late)
{
    char key[ENG_KEY_MAX];
    uint32_t klen = 0;
    if (!ch__eng_select(e, ri, ev, late, key, &klen))
        return 0;
    return first_seen_rule(e, ri, ev, key, klen);
}

const ch__corr_type ch__corr_first_seen = {
    .type = CH_CORR_FIRST_SEEN,
    .process = first_seen_process,
};
