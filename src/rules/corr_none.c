/*
 * corr_none.c - the `none` correlation type: every event that matches the rule's `where` fires,
 * late or not (engine.h). It keeps no state, so a rule of this type costs one evaluation per
 * dispatched event and never a key; the evidence is the event's action and user.
 */
#include <string.h>

#include "rules/engine_int.h"

static int none_process(ch_engine *e, uint32_t ri, const ch_event *ev, bool late)
{
    (void)late; /* no window to be late for */
    const ch_rule *r = e->rs->rules[ri];
    if (!ch__eng_eval(e, ri, r->where, ev))
        return 0;
    eng_hitctx hc;
    memset(&hc, 0, sizeof hc);
    hc.first = ev->ts_ms;
    hc.count = 1;
    ch__eng_evidence_begin(e);
    ch_buf_printf(&e->evidence, "%.*s", (int)(ev->action.n < 200 ? ev->action.n : 200),
                  ev->action.p ? ev->action.p : "");
    if (ev->user_name.n)
        ch_buf_printf(&e->evidence, " by %.*s",
                      (int)(ev->user_name.n < 200 ? ev->user_name.n : 200), ev->user_name.p);
    return ch__eng_emit(e, ri, ev, ev->ts_ms, &hc);
}

const ch__corr_type ch__corr_none = {
    .type = CH_CORR_NONE,
    .process = none_process,
};
