/*
 * fuzz_route53.c - libFuzzer target for the Route 53 Resolver query log parser: record
 * splitting, simdjson parsing, CloudWatch envelopes and normalization over arbitrary bytes.
 * Every field of every event is touched so that a view into a freed or reused document shows
 * up under ASan.
 */
#include <stddef.h>
#include <stdint.h>

#include "core/diag.h"
#include "core/ip.h"
#include "parse/source.h"

extern const ch_source_type ch_source_route53;

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
    sink += (uint64_t)ch_source_route53.detect((const char *)data, size);
    if (ch_input_open_mem(&in, "fuzz", data, size, 1u << 16, &err) < 0)
        return 0;
    st = ch_source_route53.open(in, &diag, &err);
    if (st == NULL)
        goto cleanup;
    ch_event ev;
    for (int i = 0; i < 100000 && ch_source_route53.next(st, &ev) == 1; i++) {
        char buf[64];
        sink += ch_ip_format(&ev.src_ip, buf);
        sink += touch(ev.dns_qname) + touch(ev.dns_qtype) + touch(ev.dns_rcode) + touch(ev.action) +
                touch(ev.transport) + touch(ev.account_id) + touch(ev.region) +
                touch(ev.instance_id) + touch(ev.raw_json);
        for (uint8_t k = 0; k < ev.dns_nanswers; k++)
            sink += touch(ev.dns_answers[k]);
        /* The name is lower case (ASCII; other bytes are left as they are). */
        for (uint32_t k = 0; k < ev.dns_qname.n; k++)
            if (ev.dns_qname.p[k] >= 'A' && ev.dns_qname.p[k] <= 'Z')
                __builtin_trap();
        sink += (uint64_t)ev.ts_ms + ev.src_port;
    }
    if (diag.by_ds[CH_DS_ROUTE53].events > diag.by_ds[CH_DS_ROUTE53].records)
        __builtin_trap();
cleanup:
    if (st != NULL)
        ch_source_route53.close(st);
    ch_input_close(in);
    (void)sink;
    return 0;
}
