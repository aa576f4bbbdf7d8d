/*
 * fuzz_route53.c - libFuzzer target for the Route 53 Resolver query log parser: record
 * splitting, simdjson parsing, CloudWatch envelopes and normalization over arbitrary bytes.
 * Every field of every event is touched so that a view into a freed or reused document shows
 * up under ASan.
 */
#include "core/ip.h"
#include "fuzz_source.h"

extern const ch_source_type ch_source_route53;

static void check_event(const ch_event *ev)
{
    char buf[64];
    ch_fuzz_sink += ch_ip_format(&ev->src_ip, buf);
    const ch_sv views[] = {ev->dns_qname, ev->dns_qtype,   ev->dns_rcode,
                           ev->action,    ev->transport,   ev->account_id,
                           ev->region,    ev->instance_id, ev->raw_json};
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++)
        ch_fuzz_touch(views[i]);
    for (uint8_t k = 0; k < ev->dns_nanswers; k++)
        ch_fuzz_touch(ev->dns_answers[k]);
    /* The name is lower case (ASCII; other bytes are left as they are). */
    for (uint32_t k = 0; k < ev->dns_qname.n; k++)
        if (ev->dns_qname.p[k] >= 'A' && ev->dns_qname.p[k] <= 'Z')
            __builtin_trap();
    ch_fuzz_sink += (uint64_t)ev->ts_ms + ev->src_port;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ch_diag diag;
    ch_fuzz_source(&ch_source_route53, data, size, &diag, check_event);
    if (diag.by_ds[CH_DS_ROUTE53].events > diag.by_ds[CH_DS_ROUTE53].records)
        __builtin_trap();
    return 0;
}
