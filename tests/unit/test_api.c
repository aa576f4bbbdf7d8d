/*
 * test_api.c - the REST API's pieces that need no running server: the route table against the
 * OpenAPI document, the router, the request parsers, and offense triage in the store (ETag
 * conflicts, closing rules, audit entries with before and after).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/json.h"
#include "offense/store.h"
#include "offense/triage.h"
#include "server/api.h"
#include "server/api_parse.h"
#include "server/audit.h"
#include "server/http.h"
#include "server/serve.h"

static void test_openapi_names_every_route_and_no_other(void **state)
{
    (void)state;
    ch_json_parser *p = ch_json_parser_new(1u << 22, 64);
    ch_json_val root, paths, item, op, role;
    ch_error err = {0};
    assert_int_equal(
        ch_json_parse(p, ch_openapi_json, ch_openapi_json_len, ch_openapi_json_len, &root, &err),
        0);
    assert_true(ch_json_obj_get(root, "paths", 5, &paths));
    size_t nroutes = 0;
    for (const ch_route *r = ch_serve_routes(); r->method != NULL; r++, nroutes++) {
        char m[16];
        size_t i = 0;
        for (; r->method[i] && i < sizeof m - 1; i++)
            m[i] = (char)tolower((unsigned char)r->method[i]);
        m[i] = '\0';
        if (!ch_json_obj_get(paths, r->path, strlen(r->path), &item) ||
            !ch_json_obj_get(item, m, strlen(m), &op))
            fail_msg("route %s %s is not in docs/openapi.json", r->method, r->path);
        assert_true(ch_json_obj_get(op, "x-coinhound-role", 16, &role));
        const char *s;
        size_t n;
        assert_true(ch_json_get_str(role, &s, &n));
        const char *want = r->role == CH_ROLE_NONE ? "public" : ch_role_name(r->role);
        if (n != strlen(want) || memcmp(s, want, n) != 0)
            fail_msg("%s %s: role %s in the table, %.*s in docs/openapi.json", r->method, r->path,
                     want, (int)n, s);
    }
    /* And the other way: every operation of the document is a route. */
    size_t nops = 0;
    ch_json_iter it, it2;
    const char *k, *k2;
    size_t kn, kn2;
    ch_json_obj_iter(paths, &it);
    while (ch_json_obj_next(&it, &k, &kn, &item)) {
        ch_json_obj_iter(item, &it2);
        while (ch_json_obj_next(&it2, &k2, &kn2, &op)) {
            nops++;
            char path[256], method[16];
            snprintf(path, sizeof path, "%.*s", (int)kn, k);
            size_t i = 0;
            for (; i < kn2 && i < sizeof method - 1; i++)
                method[i] = (char)toupper((unsigned char)k2[i]);
            method[i] = '\0';
            bool found = false;
            for (const ch_route *r = ch_serve_routes(); r->method != NULL; r++)
                found |= strcmp(r->path, path) == 0 && strcmp(r->method, method) == 0;
            if (!found)
                fail_msg("docs/openapi.json has %s %s, the route table does not", method, path);
        }
    }
    assert_int_equal(nops, nroutes);
    ch_json_parser_free(p);
}

static void test_router_matches_patterns_and_tells_405_from_404(void **state)
{
    (void)state;
    const ch_route *rt = ch_serve_routes();
    char params[CH_HTTP_MAX_PARAMS][CH_HTTP_PARAM_MAX + 1];
    size_t np;
    bool known;
    int i = ch_route_match(rt, "GET", "/api/v1/offenses/42/notes", params, &np, &known);
    assert_true(i >= 0);
    assert_string_equal(rt[i].path, "/api/v1/offenses/{id}/notes");
    assert_int_equal(np, 1);
    assert_string_equal(params[0], "42");
    i = ch_route_match(rt, "POST", "/api/v1/offenses/7", params, &np, &known);
    assert_true(i >= 0);
    assert_int_equal(rt[i].role, CH_ROLE_ANALYST);
    i = ch_route_match(rt, "HEAD", "/api/v1/offenses", params, &np, &known);
    assert_true(i >= 0);
    assert_string_equal(rt[i].method, "GET");
    assert_int_equal(ch_route_match(rt, "DELETE", "/api/v1/offenses/7", params, &np, &known), -1);
    assert_true(known);
    assert_int_equal(ch_route_match(rt, "GET", "/api/v1/offenses/", params, &np, &known), -1);
    assert_false(known);
    assert_int_equal(ch_route_match(rt, "GET", "/api/v1/offenses//notes", params, &np, &known), -1);
    assert_int_equal(ch_route_match(rt, "GET", "/api/v1/nope", params, &np, &known), -1);
    assert_false(known);
    char longp[400] = "/api/v1/users/";
    memset(longp + strlen(longp), 'a', CH_HTTP_PARAM_MAX + 1);
    assert_int_equal(ch_route_match(rt, "GET", longp, params, &np, &known), -1);
}

static void test_request_parsers_are_strict(void **state)
{
    (void)state;
    uint64_t a, b;
    assert_int_equal(ch_api_parse_range("items=0-49", &a, &b), 0);
    assert_true(a == 0 && b == 49);
    assert_int_equal(ch_api_parse_range("items=5-4", &a, &b), CH_EPARSE);
    assert_int_equal(ch_api_parse_range("bytes=0-4", &a, &b), CH_EPARSE);
    assert_int_equal(ch_api_parse_range("items=0-", &a, &b), CH_EPARSE);
    assert_int_equal(ch_api_parse_range("items=0-99999999999999999999", &a, &b), CH_EPARSE);
    assert_true(ch_api_parse_uint("1000", 1000, &a) && a == 1000);
    assert_false(ch_api_parse_uint("1001", 1000, &a));
    assert_false(ch_api_parse_uint("01", 1000, &a));
    assert_false(ch_api_parse_uint("18446744073709551616", UINT64_MAX, &a));
    static const char *const names[] = {"id", "magnitude", "status"};
    ch_api_sort_key keys[CH_API_SORT_MAX];
    size_t n;
    ch_error err = {0};
    assert_int_equal(ch_api_parse_sort("-magnitude,+id", names, 3, keys, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_true(keys[0].field == 1 && keys[0].desc && keys[1].field == 0 && !keys[1].desc);
    assert_int_equal(ch_api_parse_sort("colour", names, 3, keys, &n, &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, "colour"));
    uint64_t mask;
    assert_int_equal(ch_api_parse_fields("id,status", names, 3, &mask, &err), 0);
    assert_int_equal(mask, 5);
    ch_api_update u;
    const char *body =
        "{\"status\":\"closed\",\"closing_reason\":\"Non-issue\",\"follow_up\":true}";
    assert_int_equal(ch_api_parse_offense_update(body, strlen(body), &u, &err), 0);
    assert_true(u.c.set_status && u.c.status == CH_OFFENSE_CLOSED && u.c.set_reason &&
                u.c.set_follow_up && u.c.follow_up && !u.c.set_assigned);
    body = "{\"asigned_to\":\"bob\"}";
    assert_int_equal(ch_api_parse_offense_update(body, strlen(body), &u, &err), CH_EPARSE);
    if (strstr(err.msg, "asigned_to") == NULL)
        fail_msg("%s", err.msg);
    body = "{\"status\":\"reopened\"}";
    assert_int_equal(ch_api_parse_offense_update(body, strlen(body), &u, &err), CH_EPARSE);
    assert_int_equal(ch_api_parse_offense_update("{}", 2, &u, &err), CH_EPARSE);
    assert_int_equal(ch_api_parse_offense_update("[1]", 3, &u, &err), CH_EPARSE);
    char *text = NULL;
    body = "{\"text\":\"looked at it\"}";
    assert_int_equal(ch_api_parse_note(body, strlen(body), &text, &err), 0);
    assert_string_equal(text, "looked at it");
    free(text);
    body = "{\"text\":\"a\\u0000b\"}";
    assert_int_equal(ch_api_parse_note(body, strlen(body), &text, &err), CH_EPARSE);
    ch_api_login l;
    body = "{\"name\":\"alice\",\"password\":\"correct horse\"}";
    assert_int_equal(ch_api_parse_login(body, strlen(body), false, &l, &err), 0);
    assert_string_equal(l.name, "alice");
    assert_string_equal(l.password, "correct horse");
    ch_api_login_free(&l);
    body = "{\"name\":\"alice\"}";
    assert_int_equal(ch_api_parse_login(body, strlen(body), false, &l, &err), CH_EPARSE);
    assert_null(l.password);
}

/* ---- triage in a store ---------------------------------------------------------------------- */

static const ch_rule_info R_A = {"CJ-AUTH-01", "Logins from several countries", "cj", 7, 8, 8, 40};

typedef struct {
    char dir[64];
    char db[128];
    ch_store *s;
    int64_t id;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/ch_api_XXXXXX");
    if (f == NULL || mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->db, sizeof f->db, "%s/coinhound.db", f->dir);
    ch_error err = {0};
    if (ch_store_open(f->db, &f->s, &err) < 0)
        return -1;
    ch_offenses *m = ch_offenses_new();
    ch_sv ids[1] = {{"e1", 2}};
    ch_rule_hit h = {.rule = &R_A,
                     .ts_ms = 1722588804000LL,
                     .first_ms = 1722588804000LL,
                     .index_field = "user.name",
                     .index_value = {"mallory", 7},
                     .user = {"mallory", 7},
                     .event_ids = ids,
                     .nevent_ids = 1,
                     .event_count = 1,
                     .evidence = "seen"};
    ch_offense *o = NULL;
    if (ch_offenses_add_hit(m, &h, &o) != 1 || ch_store_save(f->s, m, NULL, 1, &err) < 0)
        return -1;
    f->id = o->id;
    ch_offenses_free(m);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    ch_store_close(f->s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

typedef struct audit_seen {
    int n;
    char action[64], before[512], after[512];
} audit_seen;

static int last_audit(void *ud, const ch_audit_entry *e)
{
    audit_seen *a = ud;
    a->n++;
    snprintf(a->action, sizeof a->action, "%s", e->action);
    snprintf(a->before, sizeof a->before, "%s", e->before ? e->before : "");
    snprintf(a->after, sizeof a->after, "%s", e->after ? e->after : "");
    return 0;
}

static void test_update_with_a_stale_etag_is_a_conflict_and_changes_nothing(void **state)
{
    fixture *f = *state;
    ch_offense_triage t, after;
    ch_error err = {0};
    assert_int_equal(ch_triage_get(f->s, f->id, &t, &err), 0);
    char etag[CH_TRIAGE_ETAG_MAX];
    ch_triage_etag(&t, etag, sizeof etag);
    assert_string_equal(etag, "\"0-open\"");
    ch_actor alice = {"alice", "127.0.0.1"}, bob = {"bob", "127.0.0.2"};
    ch_triage_change c = {.set_assigned = true, .assigned_to = "alice"};
    bool conflict = true;
    assert_int_equal(ch_triage_update(f->s, f->id, etag, &c, &alice, 10, &conflict, &after, &err),
                     0);
    assert_false(conflict);
    assert_string_equal(after.assigned_to, "alice");
    assert_int_equal(after.version, 1);
    /* Bob read before Alice wrote: his update with the old ETag must not land. */
    ch_triage_change c2 = {.set_assigned = true, .assigned_to = "bob"};
    assert_int_equal(ch_triage_update(f->s, f->id, etag, &c2, &bob, 11, &conflict, &after, &err),
                     0);
    assert_true(conflict);
    assert_int_equal(ch_triage_get(f->s, f->id, &t, &err), 0);
    assert_string_equal(t.assigned_to, "alice");
    /* The change is audited with before and after, by Alice from her address. */
    audit_seen a = {0};
    ch_sql *q = ch_store_sql(f->s);
    assert_int_equal(ch_audit_list_db(q->db, q->path, 0, 0, last_audit, &a, &err), 1);
    assert_string_equal(a.action, "offense.update");
    assert_non_null(strstr(a.before, "\"assigned_to\":null"));
    assert_non_null(strstr(a.after, "\"assigned_to\":\"alice\""));
}

static void test_closing_needs_a_known_reason_and_is_final(void **state)
{
    fixture *f = *state;
    ch_offense_triage t, after;
    ch_error err = {0};
    ch_actor who = {"alice", "127.0.0.1"};
    bool conflict;
    char etag[CH_TRIAGE_ETAG_MAX];
    assert_int_equal(ch_triage_get(f->s, f->id, &t, &err), 0);
    ch_triage_etag(&t, etag, sizeof etag);
    ch_triage_change c = {.set_status = true, .status = CH_OFFENSE_CLOSED};
    assert_int_equal(ch_triage_update(f->s, f->id, etag, &c, &who, 10, &conflict, &after, &err),
                     CH_EUSAGE);
    assert_non_null(strstr(err.msg, "closing_reason"));
    c.set_reason = true;
    c.closing_reason = "Because";
    assert_int_equal(ch_triage_update(f->s, f->id, etag, &c, &who, 10, &conflict, &after, &err),
                     CH_EUSAGE);
    c.closing_reason = "Non-issue";
    assert_int_equal(ch_triage_update(f->s, f->id, etag, &c, &who, 10, &conflict, &after, &err), 0);
    assert_false(conflict);
    assert_int_equal(after.status, CH_OFFENSE_CLOSED);
    /* The store's offense row is closed too: the pipeline will not reopen it. */
    ch_offenses *m = ch_offenses_new();
    assert_true(ch_store_load_one(f->s, f->id, m, &err) >= 0);
    assert_int_equal(ch_offenses_find(m, f->id)->status, CH_OFFENSE_CLOSED);
    ch_offenses_free(m);
    ch_triage_etag(&after, etag, sizeof etag);
    assert_string_equal(etag, "\"1-closed\"");
    ch_triage_change re = {.set_status = true, .status = CH_OFFENSE_OPEN};
    assert_int_equal(ch_triage_update(f->s, f->id, etag, &re, &who, 11, &conflict, &after, &err),
                     CH_EUSAGE);
    assert_non_null(strstr(err.msg, "final"));
    assert_int_equal(ch_triage_update(f->s, 999, etag, &re, &who, 11, &conflict, &after, &err),
                     CH_ENOTFOUND);
}

static void test_protected_offense_keeps_its_status_until_unprotected(void **state)
{
    fixture *f = *state;
    ch_offense_triage t, after;
    ch_error err = {0};
    ch_actor who = {"alice", "127.0.0.1"};
    bool conflict;
    char etag[CH_TRIAGE_ETAG_MAX];
    assert_int_equal(ch_triage_get(f->s, f->id, &t, &err), 0);
    ch_triage_etag(&t, etag, sizeof etag);
    ch_triage_change p = {.set_protected = true, .protected_ = true};
    assert_int_equal(ch_triage_update(f->s, f->id, etag, &p, &who, 10, &conflict, &after, &err), 0);
    ch_triage_etag(&after, etag, sizeof etag);
    ch_triage_change h = {.set_status = true, .status = CH_OFFENSE_HIDDEN};
    assert_int_equal(ch_triage_update(f->s, f->id, etag, &h, &who, 11, &conflict, &after, &err),
                     CH_EUSAGE);
    assert_non_null(strstr(err.msg, "protected"));
    h.set_protected = true;
    h.protected_ = false;
    assert_int_equal(ch_triage_update(f->s, f->id, etag, &h, &who, 12, &conflict, &after, &err), 0);
    assert_int_equal(after.status, CH_OFFENSE_HIDDEN);
}

static void test_notes_keep_author_and_order(void **state)
{
    fixture *f = *state;
    ch_error err = {0};
    ch_actor who = {"alice", "127.0.0.1"};
    assert_true(ch_triage_note_add(f->s, f->id, "first", &who, 10, &err) > 0);
    assert_true(ch_triage_note_add(f->s, f->id, "second \"quoted\"", &who, 11, &err) > 0);
    assert_int_equal(ch_triage_note_add(f->s, f->id, "", &who, 12, &err), CH_EUSAGE);
    assert_int_equal(ch_triage_note_add(f->s, 999, "x", &who, 12, &err), CH_ENOTFOUND);
    ch_buf b;
    ch_buf_init(&b, 1 << 20);
    assert_int_equal(ch_triage_notes_json(f->s, f->id, &b, &err), 0);
    ch_buf_addc(&b, '\0');
    char *first = strstr(b.data, "\"first\""), *second = strstr(b.data, "second \\\"quoted\\\"");
    assert_non_null(first);
    assert_non_null(second);
    assert_true(first < second);
    assert_non_null(strstr(b.data, "\"author\":\"alice\""));
    ch_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openapi_names_every_route_and_no_other),
        cmocka_unit_test(test_router_matches_patterns_and_tells_405_from_404),
        cmocka_unit_test(test_request_parsers_are_strict),
        cmocka_unit_test_setup_teardown(
            test_update_with_a_stale_etag_is_a_conflict_and_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_closing_needs_a_known_reason_and_is_final, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_protected_offense_keeps_its_status_until_unprotected,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_notes_keep_author_and_order, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
