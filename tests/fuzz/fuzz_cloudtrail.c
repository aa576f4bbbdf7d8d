/*
 * fuzz_cloudtrail.c - libFuzzer target for the CloudTrail source type: detection, then the
 * whole stream (input window, record splitter, simdjson, normalization) over arbitrary bytes,
 * gzip'd or not. Every byte of every view an event holds is read, so a view that outlives its
 * buffer or runs past it is caught by ASan; a raw_json with a raw newline traps.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/diag.h"
#include "core/event.h"
#include "ingest/input.h"
#include "parse/source.h"

extern const ch_source_type ch_source_cloudtrail;

static volatile uint32_t sink;

static void touch(ch_sv s)
{
    uint32_t h = 0;
    for (uint32_t i = 0; i < s.n; i++)
        h = h * 31 + (unsigned char)s.p[i];
    sink ^= h;
}

static void check_event(const ch_event *ev)
{
    const ch_sv views[] = {ev->id,           ev->action,      ev->category,   ev->type,
                           ev->provider,     ev->user_name,   ev->user_id,    ev->user_type,
                           ev->session_name, ev->access_key,  ev->invoked_by, ev->account_id,
                           ev->region,       ev->instance_id, ev->user_agent, ev->error_code,
                           ev->src_address,  ev->raw_json};
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++)
        touch(views[i]);
    if (ev->dataset != CH_DS_CLOUDTRAIL || !ev->has_raw_doc || ev->raw_json.n == 0 ||
        memchr(ev->raw_json.p, '\n', ev->raw_json.n) != NULL)
        __builtin_trap();
    if (ev->outcome != CH_OUTCOME_SUCCESS && ev->outcome != CH_OUTCOME_FAILURE)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sink ^= (uint32_t)ch_source_cloudtrail.detect((const char *)data, size);

    ch_input *in = NULL;
    ch_error err;
    ch_diag diag;
    ch_diag_init(&diag, NULL);
    /* A small window makes records cross window refills and hit the window cap. */
    if (ch_input_open_mem(&in, "fuzz", data, size, 1u << 16, &err) != 0)
        return 0;
    ch_stream *s = ch_source_cloudtrail.open(in, &diag, &err);
    if (s != NULL) {
        ch_event ev;
        while (ch_source_cloudtrail.next(s, &ev) == 1)
            check_event(&ev);
        ch_source_cloudtrail.close(s);
    }
    ch_input_close(in);
    return 0;
}
