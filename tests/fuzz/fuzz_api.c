/*
 * fuzz_api.c - what the REST API reads from clients before any handler logic: the router (the
 * method and path of the request against the real route table), the Range header, the sort and
 * fields parameters, numbers, and the JSON bodies of offense updates, notes, logins, password
 * changes, new reference sets and values to add, rule toggles, rule tests and intel pulls
 * (server/api_parse.h, server/http.h).
 *
 * The first byte picks the parser; the rest is the input, NUL-terminated where the parser takes
 * a C string (libmicrohttpd hands over NUL-terminated paths, headers and arguments). Invariants
 * whatever the bytes: a matched route's path parameters are non-empty, within their cap and
 * free of '/'; a parsed range is ordered; an update sets at least one member; parsed strings
 * hold no NUL; a refused login hands out no password; a parsed rule test holds as many JSON
 * Lines as records, and a refused one holds nothing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/api_parse.h"
#include "server/http.h"
#include "server/serve.h"

static const char *const names[] = {"id", "magnitude", "status", "last_seen"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    unsigned which = data[0] % 12;
    size_t n = size - 1;
    char *s = malloc(n + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data + 1, n);
    s[n] = '\0';
    ch_error err;
    switch (which) {
    case 0: { /* "METHOD PATH" through the router */
        char *sp = strchr(s, ' ');
        const char *method = "GET", *path = s;
        if (sp != NULL) {
            *sp = '\0';
            method = s;
            path = sp + 1;
        }
        char params[CH_HTTP_MAX_PARAMS][CH_HTTP_PARAM_MAX + 1];
        size_t np;
        bool known;
        int i = ch_route_match(ch_serve_routes(), method, path, params, &np, &known);
        if (i >= 0) {
            if (!known || np > CH_HTTP_MAX_PARAMS)
                abort();
            for (size_t k = 0; k < np; k++)
                if (params[k][0] == '\0' || strlen(params[k]) > CH_HTTP_PARAM_MAX ||
                    strchr(params[k], '/') != NULL)
                    abort();
        }
        break;
    }
    case 1: {
        uint64_t a, b;
        if (ch_api_parse_range(s, &a, &b) == 0 && a > b)
            abort();
        if (ch_api_parse_uint(s, 1000, &a) && a > 1000)
            abort();
        break;
    }
    case 2: {
        ch_api_sort_key keys[CH_API_SORT_MAX];
        size_t nk;
        uint64_t mask;
        if (ch_api_parse_sort(s, names, 4, keys, &nk, &err) == 0)
            for (size_t k = 0; k < nk; k++)
                if (nk > CH_API_SORT_MAX || keys[k].field >= 4)
                    abort();
        if (ch_api_parse_fields(s, names, 4, &mask, &err) == 0 && (mask == 0 || mask >= 16))
            abort();
        break;
    }
    case 3: {
        ch_api_update u;
        if (ch_api_parse_offense_update(s, n, &u, &err) == 0) {
            if (!(u.c.set_status || u.c.set_assigned || u.c.set_reason || u.c.set_follow_up ||
                  u.c.set_protected))
                abort();
            if (strlen(u.assigned_to) > CH_TRIAGE_NAME_MAX ||
                strlen(u.closing_reason) > CH_TRIAGE_NAME_MAX)
                abort();
        }
        break;
    }
    case 4: {
        char *text = NULL;
        if (ch_api_parse_note(s, n, &text, &err) == 0 &&
            (text == NULL || strlen(text) == 0 || strlen(text) > CH_TRIAGE_NOTE_MAX))
            abort();
        free(text);
        break;
    }
    case 5:
    case 6: {
        ch_api_login l;
        int rc = ch_api_parse_login(s, n, which == 6, &l, &err);
        if (rc < 0 && (l.password != NULL || l.new_password != NULL))
            abort();
        if (rc == 0 && (l.password == NULL || (which == 6 && l.new_password == NULL)))
            abort();
        ch_api_login_free(&l);
        break;
    }
    case 7: {
        char name[CH_API_SET_NAME_MAX + 1];
        int type;
        if (ch_api_parse_refset_create(s, n, name, &type, &err) == 0 &&
            (!ch_api_refset_name_ok(name) || type < 1 || type > 4))
            abort();
        break;
    }
    case 8: {
        ch_api_values v;
        if (ch_api_parse_refset_values(s, n, &v, &err) == 0) {
            if (v.n == 0 || v.n > CH_API_VALUES_MAX || v.ttl_ms < 0)
                abort();
            for (size_t k = 0; k < v.n; k++)
                if (v.values[k][0] == '\0')
                    abort();
        } else if (v.values != NULL || v.n != 0) {
            abort();
        }
        ch_api_values_free(&v);
        break;
    }
    case 9: {
        bool on;
        (void)ch_api_parse_rule_toggle(s, n, &on, &err);
        break;
    }
    case 10: {
        ch_api_rule_test t;
        if (ch_api_parse_rule_test(s, n, &t, &err) == 0) {
            size_t lines = 0;
            for (size_t k = 0; k < t.records_len; k++)
                lines += t.records[k] == '\n';
            if (t.nrecords == 0 || lines != t.nrecords || (t.rule == NULL) == (t.id[0] == '\0'))
                abort();
        } else if (t.rule != NULL || t.records != NULL) {
            abort();
        }
        ch_api_rule_test_free(&t);
        break;
    }
    case 11: {
        long idx;
        char url[CH_API_FEED_URL_MAX + 1];
        if (ch_api_parse_intel_pull(s, n, &idx, url, &err) == 0 &&
            (idx < -1 || (idx >= 0 && url[0] != '\0') || strlen(url) > CH_API_FEED_URL_MAX))
            abort();
        break;
    }
    }
    free(s);
    return 0;
}
