/*
 * api_parse_rules.c - the request bodies of the rules and intel routes (api_parse.h): a rule
 * toggle, a rule test (a rule's YAML or id and raw records) and an intel pull. Strict like the
 * other body parsers: unknown members are errors, every size is capped, and nothing is read past
 * the body; tests/fuzz/fuzz_api.c runs them on arbitrary input.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/json.h"
#include "core/mem.h"
#include "rules/rule.h"
#include "server/api_parse.h"

static int string_of(ch_json_val v, const char *key, size_t max, const char **s, size_t *n,
                     ch_error *err)
{
    if (!ch_json_get_str(v, s, n))
        return ch_error_set(err, CH_EPARSE, "%s must be a string", key);
    if (*n > max)
        return ch_error_set(err, CH_ELIMIT, "%s is longer than %zu bytes", key, max);
    if (memchr(*s, '\0', *n) != NULL)
        return ch_error_set(err, CH_EPARSE, "%s holds a NUL character", key);
    return 0;
}

int ch_api_parse_rule_toggle(const char *body, size_t n, bool *enabled, ch_error *err)
{
    ch_json_parser *p = NULL;
    ch_json_val root, v;
    static const char *const allowed[] = {"enabled"};
    int rc = ch__api_body_object(body, n, 4, &p, &root, err);
    if (rc == 0)
        rc = ch__api_only_members(root, allowed, 1, err);
    if (rc == 0 && (!ch_json_obj_get(root, "enabled", 7, &v) || !ch_json_get_bool(v, enabled)))
        rc = ch_error_set(err, CH_EPARSE, "enabled is required: true or false");
    ch_json_parser_free(p);
    return rc;
}

void ch_api_rule_test_free(ch_api_rule_test *t)
{
    ch_free(t->rule);
    ch_free(t->records);
    t->rule = t->records = NULL;
}

int ch_api_parse_rule_test(const char *body, size_t n, ch_api_rule_test *out, ch_error *err)
{
    memset(out, 0, sizeof *out);
    ch_json_parser *p = NULL;
    ch_json_val root, v, arr;
    ch_json_iter it;
    ch_buf b;
    ch_buf_init(&b, CH_API_TEST_BODY + 1);
    static const char *const allowed[] = {"rule", "id", "events"};
    const char *s;
    size_t sn;
    int rc = ch__api_body_object(body, n, CH_API_TEST_DEPTH, &p, &root, err);
    if (rc == 0)
        rc = ch__api_only_members(root, allowed, 3, err);
    if (rc < 0)
        goto done;
    bool has_rule = ch_json_obj_get(root, "rule", 4, &v);
    if (has_rule) {
        if ((rc = string_of(v, "rule", CH_RULE_MAX_FILE, &s, &sn, err)) < 0)
            goto done;
        if ((out->rule = ch_malloc(sn + 1)) == NULL) {
            rc = ch_error_set(err, CH_ENOMEM, "out of memory");
            goto done;
        }
        memcpy(out->rule, s, sn);
        out->rule[sn] = '\0';
    }
    if (ch_json_obj_get(root, "id", 2, &v)) {
        if (has_rule) {
            rc = ch_error_set(err, CH_EPARSE, "give either rule or id, not both");
            goto done;
        }
        if ((rc = string_of(v, "id", CH_API_RULE_ID_MAX, &s, &sn, err)) < 0)
            goto done;
        if (sn == 0) {
            rc = ch_error_set(err, CH_EPARSE, "id must not be empty");
            goto done;
        }
        memcpy(out->id, s, sn);
        out->id[sn] = '\0';
    } else if (!has_rule) {
        rc = ch_error_set(err, CH_EPARSE, "rule (YAML text) or id is required");
        goto done;
    }
    if (!ch_json_obj_get(root, "events", 6, &arr) || ch_json_typeof(arr) != CH_JSON_ARRAY) {
        rc = ch_error_set(err, CH_EPARSE, "events is required: an array of records");
        goto done;
    }
    ch_json_arr_iter(arr, &it);
    while (ch_json_arr_next(&it, &v)) {
        if (ch_json_typeof(v) != CH_JSON_OBJECT) {
            rc = ch_error_set(err, CH_EPARSE, "events[%zu] must be an object (a raw record)",
                              out->nrecords);
            goto done;
        }
        if (out->nrecords == CH_API_TEST_EVENTS_MAX) {
            rc = ch_error_set(err, CH_ELIMIT, "at most %d events", CH_API_TEST_EVENTS_MAX);
            goto done;
        }
        if ((rc = ch_json_write(v, &b)) < 0 || (rc = ch_buf_addc(&b, '\n')) < 0) {
            rc = rc == CH_ELIMIT ? ch_error_set(err, CH_ELIMIT, "the events are too large")
                                 : ch_error_set(err, CH_ENOMEM, "out of memory");
            goto done;
        }
        out->nrecords++;
    }
    if (out->nrecords == 0) {
        rc = ch_error_set(err, CH_EPARSE, "events must hold at least one record");
        goto done;
    }
    out->records_len = b.len;
    out->records = b.data; /* the buffer's block moves to the caller */
    b.data = NULL;
    b.len = 0;
done:
    ch_buf_free(&b);
    ch_json_parser_free(p);
    if (rc < 0)
        ch_api_rule_test_free(out);
    return rc;
}

int ch_api_parse_intel_pull(const char *body, size_t n, long *index,
                            char url[CH_API_FEED_URL_MAX + 1], ch_error *err)
{
    *index = -1;
    url[0] = '\0';
    size_t i = 0;
    while (i < n && (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' || body[i] == '\t'))
        i++;
    if (i == n)
        return 0;
    ch_json_parser *p = NULL;
    ch_json_val root, v;
    static const char *const allowed[] = {"feed"};
    int rc = ch__api_body_object(body, n, 4, &p, &root, err);
    if (rc == 0)
        rc = ch__api_only_members(root, allowed, 1, err);
    if (rc == 0 && ch_json_obj_get(root, "feed", 4, &v)) {
        uint64_t u;
        const char *s;
        size_t sn;
        if (ch_json_get_u64(v, &u)) {
            if (u > 1000000)
                rc = ch_error_set(err, CH_EPARSE, "feed: no such index");
            else
                *index = (long)u;
        } else if (ch_json_get_str(v, &s, &sn)) {
            if ((rc = string_of(v, "feed", CH_API_FEED_URL_MAX, &s, &sn, err)) == 0) {
                memcpy(url, s, sn);
                url[sn] = '\0';
                if (sn == 0)
                    rc = ch_error_set(err, CH_EPARSE, "feed: an empty URL");
            }
        } else {
            rc = ch_error_set(err, CH_EPARSE, "feed must be a feed's index or its URL");
        }
    }
    ch_json_parser_free(p);
    return rc;
}
