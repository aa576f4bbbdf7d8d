/*
 * api_rules.c - the loaded rules over the REST API: the list, and one rule with its expression,
 * correlation, ATT&CK techniques and test cases.
 *
 * The rules are the running pipeline's compiled ruleset (read-only, swapped whole on reload),
 * read under the pipeline's lock for the time it takes to write them out: O(rules), a few
 * hundred at most, so ingest waits microseconds.
 */
#include <string.h>

#include "pipeline/pipeline.h"
#include "rules/expr.h"
#include "rules/rule.h"
#include "server/api.h"

static int add_str(ch_buf *b, const char *s)
{
    return s ? ch_buf_add_json_str(b, s, strlen(s)) : ch_buf_adds(b, "null");
}

static int rule_json(ch_buf *b, const ch_rule *r, bool detail)
{
    int rc;
    if ((rc = ch_buf_adds(b, "{\"id\":")) < 0 || (rc = add_str(b, r->info.id)) < 0 ||
        (rc = ch_buf_adds(b, ",\"title\":")) < 0 || (rc = add_str(b, r->info.title)) < 0 ||
        (rc = ch_buf_adds(b, ",\"pack\":")) < 0 || (rc = add_str(b, r->info.pack)) < 0 ||
        (rc = ch_buf_printf(b,
                            ",\"type\":\"%s\",\"severity\":%d,\"credibility\":%d,\"relevance\":%d,"
                            "\"risk\":%d,\"tests\":%u,\"mitre\":[",
                            ch_corr_type_name(r->type), r->info.severity, r->info.credibility,
                            r->info.relevance, r->info.risk, r->ntests)) < 0)
        return rc;
    for (uint32_t i = 0; i < r->nmitre; i++)
        if ((i > 0 && (rc = ch_buf_addc(b, ',')) < 0) || (rc = add_str(b, r->mitre[i])) < 0)
            return rc;
    if ((rc = ch_buf_addc(b, ']')) < 0)
        return rc;
    if (detail) {
        if ((rc = ch_buf_adds(b, ",\"file\":")) < 0 || (rc = add_str(b, r->file)) < 0 ||
            (rc = ch_buf_adds(b, ",\"where\":")) < 0 ||
            (rc = add_str(b, r->where ? ch_expr_source(r->where) : NULL)) < 0 ||
            (rc = ch_buf_printf(b, ",\"count\":%g,\"within_ms\":%lld,\"steps\":%u,\"cases\":[",
                                r->count, (long long)r->within_ms, r->nsteps)) < 0)
            return rc;
        for (uint32_t i = 0; i < r->ntests; i++) {
            const ch_rule_test *t = &r->tests[i];
            if ((i > 0 && (rc = ch_buf_addc(b, ',')) < 0) ||
                (rc = ch_buf_adds(b, "{\"name\":")) < 0 || (rc = add_str(b, t->name)) < 0 ||
                (rc = ch_buf_printf(b, ",\"expect\":\"%s\",\"line\":%u,\"events\":[",
                                    t->expect_fire ? "fire" : "silent", t->line)) < 0)
                return rc;
            for (uint32_t k = 0; k < t->nevents; k++)
                if ((k > 0 && (rc = ch_buf_addc(b, ',')) < 0) ||
                    (rc = add_str(b, t->events[k])) < 0)
                    return rc;
            if ((rc = ch_buf_adds(b, "],\"context\":")) < 0 || (rc = add_str(b, t->context)) < 0 ||
                (rc = ch_buf_addc(b, '}')) < 0)
                return rc;
        }
        if ((rc = ch_buf_addc(b, ']')) < 0)
            return rc;
    }
    return ch_buf_addc(b, '}');
}

static const ch_ruleset *rules_locked(ch_api *api)
{
    api->pipeline_lock(api->ud, true);
    return api->pipeline_rules(api->ud);
}

void ch_api_rules_list(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    (void)rq;
    ch_api *api = ch__serve_api(ud);
    const ch_ruleset *set = rules_locked(api);
    int rc = ch_buf_addc(&rs->body, '[');
    for (uint32_t i = 0; set != NULL && rc >= 0 && i < set->n; i++) {
        if (i > 0)
            rc = ch_buf_addc(&rs->body, ',');
        if (rc >= 0)
            rc = rule_json(&rs->body, set->rules[i], false);
    }
    api->pipeline_lock(api->ud, false);
    if (rc >= 0)
        rc = ch_buf_addc(&rs->body, ']');
    if (rc < 0)
        ch_http_error(rs, 500, "the rules could not be written");
}

void ch_api_rule_get(void *ud, const ch_http_req *rq, ch_http_resp *rs)
{
    ch_api *api = ch__serve_api(ud);
    const ch_ruleset *set = rules_locked(api);
    int i = set ? ch_ruleset_find(set, ch_http_param(rq, 0)) : -1;
    int rc = i >= 0 ? rule_json(&rs->body, set->rules[i], true) : 0;
    api->pipeline_lock(api->ud, false);
    if (i < 0)
        ch_http_error(rs, 404, "no loaded rule has that id");
    else if (rc < 0)
        ch_http_error(rs, 500, "the rule could not be written");
}
