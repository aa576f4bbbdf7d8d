/*
 * fuzz_vpcflow.c - libFuzzer target for the VPC Flow Logs parser: detection, header
 * resolution and record parsing over arbitrary bytes (plain or gzip, as the input layer
 * sniffs them). Every field of every event is touched so that a view pointing outside the
 * window shows up under ASan.
 */
#include "core/ip.h"
#include "fuzz_source.h"

extern const ch_source_type ch_source_vpcflow;

static void check_event(const ch_event *ev)
{
    char buf[64];
    ch_fuzz_sink += ch_ip_format(&ev->src_ip, buf) + ch_ip_format(&ev->dst_ip, buf);
    const ch_sv views[] = {ev->action, ev->transport,   ev->account_id,
                           ev->region, ev->instance_id, ev->interface_id};
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++)
        ch_fuzz_touch(views[i]);
    for (uint32_t k = 0; k < ev->raw_count; k++) {
        ch_fuzz_touch(ev->raw_names[k]);
        ch_fuzz_touch(ev->raw_values[k]);
    }
    ch_fuzz_sink += (uint64_t)ev->ts_ms + ev->bytes + ev->packets + ev->src_port + ev->dst_port;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ch_diag diag;
    ch_fuzz_source(&ch_source_vpcflow, data, size, &diag, check_event);
    /* Every record is an event, a skip or an error: nothing is lost silently. (Errors also
     * count a failed input, which is no record, hence the inequality.) */
    const ch_ds_stats *s = &diag.by_ds[CH_DS_VPCFLOW];
    if (s->events + s->skipped > s->records || s->records > s->events + s->skipped + s->errors)
        __builtin_trap();
    return 0;
}
