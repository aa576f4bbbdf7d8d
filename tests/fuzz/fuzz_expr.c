/*
 * fuzz_expr.c - libFuzzer target for the expression language: compile arbitrary text and,
 * when it compiles, evaluate it on three fixed events (a console login with typed slots, a
 * RunInstances record reachable through raw JSON paths with arrays, a flow-log record with
 * columns) and read its dispatch hints. Named sets resolve when their name starts with 's'.
 * The answer from normalized fields alone (ch_expr_eval_typed, which search asks first), and the
 * one with the record's text (ch_expr_eval_text, asked before the parse), and the one from the
 * text alone (ch_expr_eval_text_alone, asked before the normalized fields are decoded), when
 * they give one, must be the full evaluation's: a difference aborts.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "rules/expr.h"
#include "rules/expr_index.h"

static int resolve(void *user, const char *name, size_t n, void **handle, ch_error *err)
{
    (void)user;
    (void)err;
    if (n == 0 || name[0] != 's')
        return CH_ENOTFOUND;
    *handle = (void *)(uintptr_t)n;
    return 0;
}

static bool contains(void *user, void *handle, const ch_value *v, bool icase)
{
    (void)user;
    (void)icase;
    char buf[CH_VALUE_TEXT_MAX];
    return ch_value_text(v, buf).n == (uintptr_t)handle;
}

static const ch_expr_env env = {resolve, contains, NULL, NULL};

static const char *json =
    "{\"eventName\":\"RunInstances\",\"userIdentity\":{\"type\":\"IAMUser\",\"userName\":\"a\"},"
    "\"requestParameters\":{\"instanceType\":\"p3.16xlarge\",\"maxCount\":\"25\",\"n\":null,"
    "\"f\":1.5,\"b\":true,\"big\":18446744073709551615},\"responseElements\":{\"instancesSet\":"
    "{\"items\":[{\"instanceId\":\"i-1\",\"ip\":\"10.0.0.1\"},{\"instanceId\":\"i-2\","
    "\"ip\":\"2001:db8::1\"}]}},\"nested\":[[1,2],[[\"x\"]],{\"a\":[{\"b\":\"c\"}]}]}";

static const ch_sv names[] = {{"version", 7}, {"instance-id", 11}, {"dstport", 7}, {"x", 1}};
static const ch_sv vals[] = {{"5", 1}, {"i-0abc", 6}, {"3333", 4}, {"-", 1}};

static ch_event events[3];
static ch_json_parser *parser;
static ch_expr_scratch *scratch;

static void init(void)
{
    ch_event *e = &events[0];
    ch_event_reset(e);
    e->dataset = CH_DS_CLOUDTRAIL;
    e->ts_ms = 1722588804000;
    e->action = CH_SV("ConsoleLogin");
    e->outcome = CH_OUTCOME_SUCCESS;
    e->user_name = CH_SV("alice");
    e->user_agent = CH_SV("Mozilla/5.0 (Kali)");
    memcpy(e->src_geo.country, "RU", 3);
    ch_ip_parse("203.0.113.9", 11, &e->src_ip);
    ch_ip_parse("2001:db8::5", 11, &e->dst_ip);
    e->src_port = 443;
    e->flags = CH_F_SRC_PORT | CH_F_BYTES;
    e->bytes = UINT64_MAX;
    e->dns_answers[0] = CH_SV("pool.example");
    e->dns_nanswers = 1;

    e = &events[1];
    ch_event_reset(e);
    e->dataset = CH_DS_CLOUDTRAIL;
    parser = ch_json_parser_new(1 << 16, 64);
    if (parser != NULL &&
        ch_json_parse(parser, json, strlen(json), strlen(json), &e->raw_doc, NULL) == 0)
        e->has_raw_doc = true;

    e = &events[2];
    ch_event_reset(e);
    e->dataset = CH_DS_VPCFLOW;
    e->raw_names = names;
    e->raw_values = vals;
    e->raw_count = 4;
    scratch = ch_expr_scratch_new();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        init();
        ready = true;
    }
    ch_expr *e = NULL;
    ch_error err;
    if (ch_expr_compile_n((const char *)data, size, &env, &e, &err) != 0)
        return 0;
    ch_expr_hints h;
    ch_expr_dispatch_hints(e, &h);
    /* The hint strings must be readable for their whole length (ASan checks the range). */
    size_t nul = 0;
    for (size_t i = 0; i < h.nactions; i++)
        nul += memchr(h.actions[i].p, '\0', h.actions[i].n) != NULL;
    (void)nul;
    bool can_reject = ch_expr_typed_can_reject(e), text_rejects = ch_expr_text_can_reject(e);
    bool alone_rejects = ch_expr_text_alone_can_reject(e);
    for (int i = 0; i < 3; i++) {
        bool full = ch_expr_eval(e, &events[i], scratch);
        int typed = ch_expr_eval_typed(e, &events[i], scratch);
        if ((typed >= 0 && typed != (int)full) || (typed == 0 && !can_reject))
            abort();
        if (i != 1)
            continue;
        /* The RunInstances record's own text, as search gives it before parsing. */
        int text = ch_expr_eval_text(e, &events[i], json, strlen(json), scratch);
        if ((text >= 0 && text != (int)full) || (text == 0 && !text_rejects && !can_reject))
            abort();
        /* and from the text alone, normalized fields unknown (asked before they are decoded) */
        int alone = ch_expr_eval_text_alone(e, json, strlen(json), scratch);
        if ((alone >= 0 && alone != (int)full) || (alone == 0 && !alone_rejects))
            abort();
    }
    ch_expr_free(e);
    return 0;
}
