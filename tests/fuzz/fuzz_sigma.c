/*
 * fuzz_sigma.c - libFuzzer target for the Sigma loader (src/rules/sigma.c): arbitrary bytes as
 * a Sigma file (libyaml, several documents, detections, conditions, modifiers, correlations,
 * the generated expression and its compilation). Rules that load are put in a ruleset and run
 * by an engine over a few events (a CloudTrail call twice, a DNS query), so that what the
 * translator accepts is known to compile and evaluate; an error message must be a string.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/mem.h"
#include "enrich/refset.h"
#include "rules/engine.h"
#include "rules/rule.h"
#include "rules/sigma.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ch_refsets *sets = NULL;
    if (ch_refsets_new(&sets) != 0)
        return 0;
    ch_expr_env env;
    ch_rule_env_init(&env, sets);
    ch_rule **rules = NULL;
    uint32_t n = 0;
    ch_error err;
    memset(&err, 0, sizeof err);
    (void)ch_sigma_sniff((const char *)data, size);
    int rc = ch_sigma_load_mem("fuzz.yml", (const char *)data, size, &env, sets, &rules, &n, &err);
    if (memchr(err.msg, '\0', sizeof err.msg) == NULL)
        __builtin_trap();
    if (rc == 0) {
        if (n == 0 || rules == NULL)
            __builtin_trap(); /* loaded means at least one rule */
        ch_ruleset *rs = NULL;
        if (ch_ruleset_from_rules(rules, n, "fuzz", sets, &rs, &err) == 0) {
            ch_engine *e = NULL;
            if (ch_engine_new(rs, NULL, NULL, NULL, &e, &err) == 0) {
                ch_event ev;
                memset(&ev, 0, sizeof ev);
                ev.ts_ms = 1722588000000LL;
                ev.dataset = CH_DS_CLOUDTRAIL;
                ev.action = CH_SV("StopLogging");
                ev.provider = CH_SV("cloudtrail.amazonaws.com");
                ev.user_name = CH_SV("alice");
                ev.id = CH_SV("e1");
                ch_engine_process(e, &ev);
                ev.ts_ms += 60000;
                ev.id = CH_SV("e2");
                ch_engine_process(e, &ev);
                memset(&ev, 0, sizeof ev);
                ev.ts_ms = 1722588120000LL;
                ev.dataset = CH_DS_ROUTE53;
                ev.dns_qname = CH_SV("pool.minexmr.com");
                ev.id = CH_SV("e3");
                ch_engine_process(e, &ev);
                ch_engine_free(e);
            }
            ch_ruleset_free(rs);
        }
    }
    ch_refsets_free(sets);
    return 0;
}
