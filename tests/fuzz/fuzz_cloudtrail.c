/*
 * fuzz_cloudtrail.c - libFuzzer target for the CloudTrail source type: detection, then the
 * whole stream (input window, record splitter, simdjson, normalization) over arbitrary bytes,
 * gzip'd or not. Every byte of every view an event holds is read, so a view that outlives its
 * buffer or runs past it is caught by ASan; a raw_json with a raw newline traps.
 */
#include <string.h>

#include "fuzz_source.h"

extern const ch_source_type ch_source_cloudtrail;

static void check_event(const ch_event *ev)
{
    const ch_sv views[] = {ev->id,           ev->action,      ev->category,   ev->type,
                           ev->provider,     ev->user_name,   ev->user_id,    ev->user_type,
                           ev->session_name, ev->access_key,  ev->invoked_by, ev->account_id,
                           ev->region,       ev->instance_id, ev->user_agent, ev->error_code,
                           ev->src_address,  ev->raw_json};
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++)
        ch_fuzz_touch(views[i]);
    if (ev->dataset != CH_DS_CLOUDTRAIL || !ev->has_raw_doc || ev->raw_json.n == 0 ||
        memchr(ev->raw_json.p, '\n', ev->raw_json.n) != NULL)
        __builtin_trap();
    if (ev->outcome != CH_OUTCOME_SUCCESS && ev->outcome != CH_OUTCOME_FAILURE)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ch_diag diag;
    ch_fuzz_source(&ch_source_cloudtrail, data, size, &diag, check_event);
    return 0;
}
