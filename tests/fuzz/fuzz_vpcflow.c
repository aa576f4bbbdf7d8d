/*
 * fuzz_vpcflow.c - libFuzzer target for the VPC Flow Logs parser: detection, header
 * resolution and record parsing over arbitrary bytes (plain or gzip, as the input layer
 * sniffs them). Every field of every event is touched so that a view pointing outside the
 * window shows up under ASan.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/diag.h"
#include "core/ip.h"
#include "parse/source.h"

extern const ch_source_type ch_source_vpcflow;

static uint64_t touch(ch_sv v)
{
    uint64_t h = v.n;
    for (uint32_t i = 0; i < v.n; i++)
        h = h * 31 + (uint8_t)v.p[i];
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ch_diag diag;
    ch_error err = {0};
    ch_input *in = NULL;
    ch_stream *st = NULL;
    volatile uint64_t sink = 0;

    ch_diag_init(&diag, NULL);
    sink += (uint64_t)ch_source_vpcflow.detect((const char *)data, size);
    /* A small window so that the line cap and the window cap are both reachable. */
    if (ch_input_open_mem(&in, "fuzz", data, size, 1u << 16, &err) < 0)
        return 0;
    st = ch_source_vpcflow.open(in, &diag, &err);
    if (st == NULL)
        goto cleanup;
    ch_event ev;
    for (int i = 0; i < 100000 && ch_source_vpcflow.next(st, &ev) == 1; i++) {
        char buf[64];
        sink += ch_ip_format(&ev.src_ip, buf) + ch_ip_format(&ev.dst_ip, buf);
        sink += touch(ev.action) + touch(ev.transport) + touch(ev.account_id) + touch(ev.region) +
                touch(ev.instance_id) + touch(ev.interface_id);
        for (uint32_t k = 0; k < ev.raw_count; k++)
            sink += touch(ev.raw_names[k]) + touch(ev.raw_values[k]);
        sink += (uint64_t)ev.ts_ms + ev.bytes + ev.packets + ev.src_port + ev.dst_port;
    }
    /* Every record is an event, a skip or an error: nothing is lost silently. (Errors also
     * count a failed input, which is no record, hence the inequality.) */
    const ch_ds_stats *s = &diag.by_ds[CH_DS_VPCFLOW];
    if (s->events + s->skipped > s->records || s->records > s->events + s->skipped + s->errors)
        __builtin_trap();
cleanup:
    if (st != NULL)
        ch_source_vpcflow.close(st);
    ch_input_close(in);
    (void)sink;
    return 0;
}
