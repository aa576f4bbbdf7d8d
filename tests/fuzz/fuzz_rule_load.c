/*
 * fuzz_rule_load.c - libFuzzer target for the YAML rule loader: arbitrary bytes as a rule file
 * (libyaml, every key and value check, expression compilation, field paths). A rule that loads
 * is also put in a ruleset and run by an engine over one event, so compiled rules that the
 * loader accepts are known to be usable.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/mem.h"
#include "enrich/refset.h"
#include "rules/engine.h"
#include "rules/rule.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ch_refsets *sets = NULL;
    if (ch_refsets_new(&sets) != 0)
        return 0;
    ch_refset *s = NULL;
    ch_error err;
    ch_refsets_ensure(sets, "business_countries", CH_REFSET_STRING, NULL, &s, &err);
    ch_expr_env env;
    ch_rule_env_init(&env, sets);
    ch_rule *r = NULL;
    if (ch_rule_load_mem("fuzz.yml", (const char *)data, size, &env, sets, &r, &err) == 0) {
        if (err.msg[0] != '\0' && memchr(err.msg, '\0', sizeof err.msg) == NULL)
            __builtin_trap();
        ch_rule **rules = ch_calloc(1, sizeof *rules);
        ch_ruleset *rs = NULL;
        if (rules != NULL) {
            rules[0] = r;
            r = NULL;
            if (ch_ruleset_from_rules(rules, 1, "fuzz", sets, &rs, &err) == 0) {
                ch_engine *e = NULL;
                if (ch_engine_new(rs, NULL, NULL, NULL, &e, &err) == 0) {
                    ch_event ev;
                    memset(&ev, 0, sizeof ev);
                    ev.ts_ms = 1722588000000LL;
                    ev.dataset = CH_DS_CLOUDTRAIL;
                    ev.action = CH_SV("ConsoleLogin");
                    ev.user_name = CH_SV("alice");
                    ev.id = CH_SV("e1");
                    ch_engine_process(e, &ev);
                    ev.ts_ms += 60000;
                    ch_engine_process(e, &ev);
                    ch_engine_free(e);
                }
                ch_ruleset_free(rs);
            }
        }
        ch_rule_free(r);
    }
    ch_refsets_free(sets);
    return 0;
}
