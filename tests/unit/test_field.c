/*
 * test_field.c - field paths: normalized slots, raw JSON paths with array fan-out (read from the
 * parsed document and through the lazy on-demand reader), flow-log columns, missing values, the
 * name table and value helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/field.h"
#include "core/json.h"

/* ---- helpers ---- */

typedef struct collected {
    ch_value v[32];
    size_t n;
} collected;

static bool collect(void *ctx, const ch_value *v)
{
    collected *c = ctx;
    if (c->n < 32)
        c->v[c->n++] = *v;
    return false;
}

static size_t values_of(const char *path, const ch_event *ev, collected *c)
{
    ch_field_ref *r = NULL;
    ch_error err;
    assert_int_equal(ch_field_resolve(path, strlen(path), &r, &err), 0);
    memset(c, 0, sizeof *c);
    size_t n = ch_field_visit(r, ev, NULL, collect, c);
    ch_field_ref_free(r);
    return n;
}

static bool sv_is(ch_sv s, const char *lit)
{
    return s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

/* Parse JSON text into ev->raw_doc; the parser must outlive the event. */
static ch_json_parser *with_json(ch_event *ev, const char *json)
{
    ch_json_parser *p = ch_json_parser_new(1 << 20, 64);
    ch_error err;
    assert_non_null(p);
    assert_int_equal(ch_json_parse(p, json, strlen(json), strlen(json), &ev->raw_doc, &err), 0);
    ev->has_raw_doc = true;
    return p;
}

static const char *run_instances =
    "{\"eventName\":\"RunInstances\",\"userIdentity\":{\"type\":\"IAMUser\",\"userName\":\"alice\"}"
    ","
    "\"requestParameters\":{\"instanceType\":\"p3.16xlarge\",\"minCount\":2,\"dryRun\":false,"
    "\"ratio\":0.5,\"empty\":\"\",\"nothing\":null},"
    "\"responseElements\":{\"instancesSet\":{\"items\":["
    "{\"instanceId\":\"i-1\",\"instanceType\":\"p3.16xlarge\"},"
    "{\"instanceId\":\"i-2\",\"instanceType\":\"g4dn.xlarge\"}]}},"
    "\"tags\":[[\"a\",\"b\"],[\"c\"]]}";

/* ---- normalized slots ---- */

static void test_user_name_slot_reads_the_typed_view(void **state)
{
    (void)state;
    ch_event ev;
    ch_event_reset(&ev);
    ev.user_name = CH_SV("alice");
    collected c;
    assert_int_equal(values_of("user.name", &ev, &c), 1);
    assert_int_equal(c.v[0].type, CH_V_STR);
    assert_true(sv_is(c.v[0].u.s, "alice"));

    ch_field_ref *r;
    assert_int_equal(ch_field_resolve("user.name", 9, &r, NULL), 0);
    assert_non_null(ch_field_ref_info(r));
    assert_string_equal(ch_field_ref_info(r)->name, "user.name");
    assert_string_equal(ch_field_ref_path(r), "user.name");
    ch_field_ref_free(r);
}

static void test_empty_slot_is_missing(void **state)
{
    (void)state;
    ch_event ev;
    ch_event_reset(&ev);
    collected c;
    assert_int_equal(values_of("user.name", &ev, &c), 0);
    assert_int_equal(values_of("source.ip", &ev, &c), 0);
    assert_int_equal(values_of("source.geo.country_iso_code", &ev, &c), 0);
    assert_int_equal(values_of("event.dataset", &ev, &c), 0);
    assert_int_equal(values_of("event.outcome", &ev, &c), 0);
    assert_int_equal(values_of("source.as.number", &ev, &c), 0);
}

static void test_ports_are_present_only_with_their_flag(void **state)
{
    (void)state;
    ch_event ev;
    ch_event_reset(&ev);
    ev.src_port = 0;
    ev.dst_port = 3333;
    collected c;
    assert_int_equal(values_of("destination.port", &ev, &c), 0);
    ev.flags = CH_F_DST_PORT | CH_F_SRC_PORT;
    assert_int_equal(values_of("destination.port", &ev, &c), 1);
    assert_int_equal(c.v[0].type, CH_V_INT);
    assert_int_equal(c.v[0].u.i, 3333);
    /* Port 0 with its flag is a real value. */
    assert_int_equal(values_of("source.port", &ev, &c), 1);
    assert_int_equal(c.v[0].u.i, 0);
}

static void test_dataset_outcome_and_time_are_computed_slots(void **state)
{
    (void)state;
    ch_event ev;
    ch_event_reset(&ev);
    ev.dataset = CH_DS_VPCFLOW;
    ev.outcome = CH_OUTCOME_FAILURE;
    ev.ts_ms = 1722588804000;
    collected c;
    assert_int_equal(values_of("event.dataset", &ev, &c), 1);
    assert_true(sv_is(c.v[0].u.s, "vpcflow"));
    assert_int_equal(values_of("event.outcome", &ev, &c), 1);
    assert_true(sv_is(c.v[0].u.s, "failure"));
    assert_int_equal(values_of("@timestamp", &ev, &c), 1);
    assert_int_equal(c.v[0].u.i, 1722588804000);
}

static void test_ip_slots_and_source_address_fallback(void **state)
{
    (void)state;
    ch_event ev;
    ch_event_reset(&ev);
    assert_true(ch_ip_parse("203.0.113.9", 11, &ev.src_ip));
    collected c;
    assert_int_equal(values_of("source.ip", &ev, &c), 1);
    assert_int_equal(c.v[0].type, CH_V_IP);
    assert_int_equal(c.v[0].u.ip.family, 4);
    /* Without a name, source.address is the address. */
    assert_int_equal(values_of("source.address", &ev, &c), 1);
    assert_int_equal(c.v[0].type, CH_V_IP);
    assert_int_equal(values_of("source.internal", &ev, &c), 1);
    assert_int_equal(c.v[0].type, CH_V_BOOL);
    assert_false(c.v[0].u.b);
    assert_int_equal(values_of("destination.internal", &ev, &c), 0);
    ev.src_address = CH_SV("ec2.amazonaws.com");
    assert_int_equal(values_of("source.address", &ev, &c), 1);
    assert_int_equal(c.v[0].type, CH_V_STR);
    assert_true(sv_is(c.v[0].u.s, "ec2.amazonaws.com"));
}

static void test_dns_answers_yield_every_answer(void **state)
{
    (void)state;
    ch_event ev;
    ch_event_reset(&ev);
    ev.dns_answers[0] = CH_SV("1.2.3.4");
    ev.dns_answers[1] = CH_SV("5.6.7.8");
    ev.dns_nanswers = 2;
    collected c;
    assert_int_equal(values_of("dns.answers", &ev, &c), 2);
    assert_true(sv_is(c.v[1].u.s, "5.6.7.8"));
    assert_int_equal(values_of("dns.answers.data", &ev, &c), 2);
}

static void test_geo_fields_read_country_asn_and_org(void **state)
{
    (void)state;
    ch_event ev;
    ch_event_reset(&ev);
    memcpy(ev.src_geo.country, "RU", 3);
    ev.src_geo.asn = 64500;
    ev.src_geo.as_org = CH_SV("Example AS");
    memcpy(ev.dst_geo.country, "NL", 3);
    collected c;
    assert_int_equal(values_of("source.geo.country_iso_code", &ev, &c), 1);
    assert_true(sv_is(c.v[0].u.s, "RU"));
    assert_int_equal(values_of("source.as.number", &ev, &c), 1);
    assert_int_equal(c.v[0].u.i, 64500);
    assert_int_equal(values_of("source.as.organization.name", &ev, &c), 1);
    assert_true(sv_is(c.v[0].u.s, "Example AS"));
    assert_int_equal(values_of("destination.geo.country_iso_code", &ev, &c), 1);
    assert_true(sv_is(c.v[0].u.s, "NL"));
}

/* ---- raw JSON paths ---- */

static void test_raw_path_descends_json_objects(void **state)
{
    (void)state;
    ch_event ev;
    ch_event_reset(&ev);
    ch_json_parser *p = with_json(&ev, run_instances);
    collected c;
    assert_int_equal(values_of("requestParameters.instanceType", &ev, &c), 1);
    assert_true(sv_is(c.v[0].u.s, "p3.16xlarge"));
    assert_int_equal(values_of("userIdentity.userName", &ev, &c), 1);
    assert_true(sv_is(c.v[0].u.s, "alice"));

    ch_field_ref *r;
    assert_int_equal(ch_field_resolve("requestParameters.instanceType", 30, &r, NULL), 0);
    assert_null(ch_field_ref_info(r));
    ch_field_ref_free(r);
    ch_json_parser_free(p);
}

static void test_raw_path_fans_out_over_every_array_item(void **state)
{
    (void)state;
    ch_event ev;
    ch_event_reset(&ev);
    ch_json_parser *p = with_json(&ev, run_instances);
    collected c;
    assert_int_equal(values_of("responseElements.instancesSet.items.instanceType", &ev, &c), 2);
    assert_true(sv_is(c.v[0].u.s, "p3.16xlarge"));
    assert_true(sv_is(c.v[1].u.s, "g4dn.xlarge"));
    /* An array at the end yields its elements; nested arrays are flattened. */
    assert_int_equal(values_of("tags", &ev, &c), 3);
    assert_true(sv_is(c.v[2].u.s, "c"));
    ch_json_parser_free(p);
}

static void test_raw_path_types_numbers_bools_and_objects(void **state)
{
    (void)state;
    ch_event ev;
    ch_event_reset(&ev);
    ch_json_parser *p = with_json(&ev, run_instances);
    collected c;
    assert_int_equal(values_of("requestParameters.minCount", &ev, &c), 1);
    assert_int_equal(c.v[0].type, CH_V_INT);
    assert_int_equal(c.v[0].u.i, 2);
    assert_int_equal(values_of("requestParameters.dryRun", &ev, &c), 1);
    assert_int_equal(c.v[0].type, CH_V_BOOL);
    assert_false(c.v[0].u.b);
    assert_int_equal(values_of("requestParameters.ratio", &ev, &c), 1);
    assert_int_equal(c.v[0].type, CH_V_DBL);
    assert_int_equal(values_of("requestParameters", &ev, &c), 1);
    assert_int_equal(c.v[0].type, CH_V_OBJ);
    ch_json_parser_free(p);
}

static void test_raw_null_empty_and_absent_are_missing(void **state)
{
    (void)state;
    ch_event ev;
    ch_event_reset(&ev);
    ch_json_parser *p = with_json(&ev, run_instances);
    collected c;
    assert_int_equal(values_of("requestParameters.nothing", &ev, &c), 0);
    assert_int_equal(values_of("requestParameters.empty", &ev, &c), 0);
    assert_int_equal(values_of("requestParameters.absent", &ev, &c), 0);
    assert_int_equal(values_of("requestParameters.instanceType.deeper", &ev, &c), 0);
    assert_int_equal(values_of("no.such.path", &ev, &c), 0);
    ch_json_parser_free(p);
}

static bool stop_now(void *ctx, const ch_value *v)
{
    (void)v;
    (*(int *)ctx)++;
    return true;
}

/* run_instances's two instance ids: a visitor that stops at the first is called once, and the
 * first value is i-1. */
static void assert_stops_at_first_instance(const ch_event *ev)
{
    ch_field_ref *r;
    assert_int_equal(
        ch_field_resolve("responseElements.instancesSet.items.instanceId", 46, &r, NULL), 0);
    int calls = 0;
    assert_int_equal(ch_field_visit(r, ev, NULL, stop_now, &calls), 1);
    assert_int_equal(calls, 1);
    ch_value first;
    assert_true(ch_field_first(r, ev, NULL, &first));
    assert_true(sv_is(first.u.s, "i-1"));
    ch_field_ref_free(r);
}

static void test_visit_stops_when_the_visitor_says_so(void **state)
{
    (void)state;
    ch_event ev;
    ch_event_reset(&ev);
    ch_json_parser *p = with_json(&ev, run_instances);
    assert_stops_at_first_instance(&ev);
    ch_json_parser_free(p);
}

/* ---- the lazy reader (json.h: ch_json_lazy), which full scans use instead of the document ---- */

static bool same_values(const collected *a, const collected *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        const ch_value *x = &a->v[i], *y = &b->v[i];
        if (x->type != y->type)
            return false;
        if (x->type == CH_V_STR &&
            (x->u.s.n != y->u.s.n || memcmp(x->u.s.p, y->u.s.p, x->u.s.n) != 0))
            return false;
        if ((x->type == CH_V_INT && x->u.i != y->u.i) ||
            (x->type == CH_V_DBL && x->u.d != y->u.d) || (x->type == CH_V_BOOL && x->u.b != y->u.b))
            return false;
    }
    return true;
}

static void test_lazy_reader_gives_the_documents_values(void **state)
{
    (void)state;
    static const char *docs[] = {
        NULL, /* run_instances */
        "{\"a\":{\"b\":[1,-2,3.5,true,null,\"\",\"x\",{\"c\":1},[[\"deep\"]]]},"
        "\"big\":18446744073709551615,\"neg\":-9223372036854775808,\"e\":1e3,\"dup\":1,"
        "\"dup\":2,\"u\":\"caf\xc3\xa9\"}",
        "{\"Records\":[{\"eventName\":\"A\"},{\"eventName\":\"B\",\"x\":{}}],\"n\":[]}",
        "{\"nest\":[[[[[[[[[[\"ten\"]]]]]]]]]],\"s\":\"a\\\"b\"}",
    };
    static const char *paths[] = {
        "eventName",
        "userIdentity.userName",
        "requestParameters",
        "requestParameters.minCount",
        "requestParameters.ratio",
        "requestParameters.dryRun",
        "requestParameters.empty",
        "requestParameters.nothing",
        "responseElements.instancesSet.items.instanceId",
        "tags",
        "a.b",
        "a.b.c",
        "big",
        "neg",
        "e",
        "dup",
        "u",
        "Records.eventName",
        "Records.x",
        "n",
        "nest",
        "s",
        "absent",
        "a.absent.deeper",
        "eventName.deeper",
    };
    ch_json_lazy *l = ch_json_lazy_new(1 << 20, 64);
    assert_non_null(l);
    size_t lazily = 0;
    for (size_t d = 0; d < sizeof docs / sizeof *docs; d++) {
        const char *text = docs[d] ? docs[d] : run_instances;
        ch_event dom, lz;
        ch_event_reset(&dom);
        ch_event_reset(&lz);
        ch_json_parser *p = with_json(&dom, text);
        bool slash = strchr(text, '\\') != NULL;
        /* Text with a backslash is refused (its strings would need unescaping): the caller
         * parses it whole. */
        assert_int_equal(ch_json_lazy_load(l, text, strlen(text)), slash ? CH_EPARSE : 0);
        if (!slash) {
            lz.raw_lazy = l;
            lazily++;
            for (size_t k = 0; k < sizeof paths / sizeof *paths; k++) {
                collected a, b;
                size_t na = values_of(paths[k], &dom, &a), nb = values_of(paths[k], &lz, &b);
                assert_int_equal(na, nb);
                if (!same_values(&a, &b))
                    fail_msg("document %zu, path %s: the lazy reader's values differ", d, paths[k]);
            }
        }
        ch_json_parser_free(p);
    }
    assert_int_equal(lazily, 3);

    /* The same answers the document gives, spelled out for one path of each kind. */
    ch_event ev;
    ch_event_reset(&ev);
    ev.raw_lazy = l;
    assert_int_equal(ch_json_lazy_load(l, docs[1], strlen(docs[1])), 0);
    collected c;
    /* a.b: 1, -2, 3.5, true, "x", an object and "deep" (null and "" are missing) */
    assert_int_equal(values_of("a.b", &ev, &c), 7);
    assert_int_equal(c.v[0].type, CH_V_INT);
    assert_int_equal(c.v[1].u.i, -2);
    assert_int_equal(c.v[2].type, CH_V_DBL);
    assert_int_equal(c.v[3].type, CH_V_BOOL);
    assert_true(sv_is(c.v[4].u.s, "x"));
    assert_int_equal(c.v[5].type, CH_V_OBJ);
    assert_true(sv_is(c.v[6].u.s, "deep"));
    assert_int_equal(values_of("big", &ev, &c), 1);
    assert_int_equal(c.v[0].type, CH_V_DBL);
    assert_int_equal(values_of("dup", &ev, &c), 1);
    assert_int_equal(c.v[0].u.i, 1); /* the first of duplicate keys, as the document */
    /* Arrays inside arrays past CH_FIELD_MAX_ARRAY_NEST give nothing, as in the document. */
    const char *deep = "{\"nest\":[[[[[[[[[[\"ten\"]]]]]]]]]],\"seven\":[[[[[[[\"7\"]]]]]]]}";
    assert_int_equal(ch_json_lazy_load(l, deep, strlen(deep)), 0);
    assert_int_equal(values_of("nest", &ev, &c), 0);
    assert_int_equal(values_of("seven", &ev, &c), 1);

    /* Stopping: the visitor's first answer ends the walk. */
    assert_int_equal(ch_json_lazy_load(l, run_instances, strlen(run_instances)), 0);
    assert_stops_at_first_instance(&ev);

    /* Refused: not an object, invalid UTF-8, larger than the cap. */
    assert_int_equal(ch_json_lazy_load(l, "[1,2]", 5), CH_EPARSE);
    const char *bad_utf8 = "{\"a\":\"\xff\"}";
    assert_int_equal(ch_json_lazy_load(l, bad_utf8, strlen(bad_utf8)), CH_EPARSE);
    ch_json_lazy *small = ch_json_lazy_new(16, 64);
    assert_non_null(small);
    assert_int_equal(ch_json_lazy_load(small, run_instances, strlen(run_instances)), CH_ELIMIT);
    ch_json_lazy_free(small);
    ch_json_lazy_free(l);
}

/* ---- flow-log columns ---- */

static const ch_sv flow_names[] = {
    {"version", 7}, {"instance-id", 11}, {"tcp-flags", 9}, {"pkt-srcaddr", 11}};

static void test_flow_raw_names_with_dashes_and_dash_as_missing(void **state)
{
    (void)state;
    ch_sv vals[] = {CH_SV("5"), CH_SV("i-0abc"), CH_SV("2"), CH_SV("-")};
    ch_event ev;
    ch_event_reset(&ev);
    ev.raw_names = flow_names;
    ev.raw_values = vals;
    ev.raw_count = 4;
    collected c;
    assert_int_equal(values_of("instance-id", &ev, &c), 1);
    assert_true(sv_is(c.v[0].u.s, "i-0abc"));
    assert_int_equal(values_of("tcp-flags", &ev, &c), 1);
    assert_true(sv_is(c.v[0].u.s, "2"));
    assert_int_equal(values_of("pkt-srcaddr", &ev, &c), 0);
    assert_int_equal(values_of("no-such-column", &ev, &c), 0);
}

static void test_flow_cache_hits_and_survives_a_new_header(void **state)
{
    (void)state;
    ch_sv names[4], vals[] = {CH_SV("5"), CH_SV("i-0abc"), CH_SV("2"), CH_SV("-")};
    memcpy(names, flow_names, sizeof names);
    ch_event ev;
    ch_event_reset(&ev);
    ev.raw_names = names;
    ev.raw_values = vals;
    ev.raw_count = 4;
    ch_field_cache cache;
    ch_field_cache_init(&cache);
    ch_field_ref *r;
    assert_int_equal(ch_field_resolve("tcp-flags", 9, &r, NULL), 0);
    ch_value v;
    assert_true(ch_field_first(r, &ev, &cache, &v));
    assert_true(ch_field_first(r, &ev, &cache, &v)); /* second read: cached index */
    assert_true(sv_is(v.u.s, "2"));
    /* The same header array reused for another file with another column order: the cache
     * must check the name at the remembered index and rescan. */
    names[0] = CH_SV("tcp-flags");
    names[2] = CH_SV("version");
    vals[0] = CH_SV("18");
    vals[2] = CH_SV("5");
    assert_true(ch_field_first(r, &ev, &cache, &v));
    assert_true(sv_is(v.u.s, "18"));
    ch_field_ref_free(r);
}

/* ---- resolution and tables ---- */

static void test_resolve_rejects_bad_paths(void **state)
{
    (void)state;
    ch_field_ref *r = (ch_field_ref *)1;
    ch_error err;
    assert_int_equal(ch_field_resolve("", 0, &r, &err), CH_EPARSE);
    assert_null(r);
    assert_int_equal(ch_field_resolve("a..b", 4, &r, &err), CH_EPARSE);
    assert_non_null(strstr(err.msg, "empty segment"));
    assert_int_equal(ch_field_resolve("a.", 2, &r, &err), CH_EPARSE);
    char longp[300];
    memset(longp, 'a', sizeof longp);
    assert_int_equal(ch_field_resolve(longp, sizeof longp, &r, &err), CH_ELIMIT);
    char many[100];
    for (int i = 0; i < 50; i++) {
        many[2 * i] = 'a';
        many[2 * i + 1] = '.';
    }
    assert_int_equal(ch_field_resolve(many, 99, &r, &err), CH_ELIMIT);
}

static void test_field_name_list_is_unique_and_documented(void **state)
{
    (void)state;
    size_t n = 0;
    const ch_field_info *fi;
    while ((fi = ch_field_name_list(n)) != NULL) {
        assert_non_null(fi->doc);
        for (size_t k = 0; k < n; k++)
            assert_string_not_equal(ch_field_name_list(k)->name, fi->name);
        ch_field_ref *r;
        assert_int_equal(ch_field_resolve(fi->name, strlen(fi->name), &r, NULL), 0);
        assert_ptr_equal(ch_field_ref_info(r), fi);
        ch_field_ref_free(r);
        n++;
    }
    assert_true(n >= 40);
}

static void test_value_text_and_number_parsing(void **state)
{
    (void)state;
    char buf[CH_VALUE_TEXT_MAX];
    ch_value v = {.type = CH_V_INT, .u.i = -42};
    assert_true(sv_is(ch_value_text(&v, buf), "-42"));
    v = (ch_value){.type = CH_V_DBL, .u.d = 0.1};
    assert_true(sv_is(ch_value_text(&v, buf), "0.1"));
    v = (ch_value){.type = CH_V_BOOL, .u.b = true};
    assert_true(sv_is(ch_value_text(&v, buf), "true"));
    v.type = CH_V_IP;
    assert_true(ch_ip_parse("2001:db8::1", 11, &v.u.ip));
    assert_true(sv_is(ch_value_text(&v, buf), "2001:db8::1"));

    bool is_int;
    int64_t i;
    double d;
    assert_true(ch_parse_number("443", 3, &is_int, &i, &d));
    assert_true(is_int);
    assert_int_equal(i, 443);
    assert_true(ch_parse_number("-1.5e3", 6, &is_int, &i, &d));
    assert_false(is_int);
    assert_true(d == -1500.0);
    assert_true(ch_parse_number("99999999999999999999", 20, &is_int, &i, &d));
    assert_false(is_int); /* too big for int64: a double */
    assert_false(ch_parse_number("12a", 3, &is_int, &i, &d));
    assert_false(ch_parse_number("1.", 2, &is_int, &i, &d));
    assert_false(ch_parse_number("", 0, &is_int, &i, &d));
    assert_false(ch_parse_number("-", 1, &is_int, &i, &d));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_user_name_slot_reads_the_typed_view),
        cmocka_unit_test(test_empty_slot_is_missing),
        cmocka_unit_test(test_ports_are_present_only_with_their_flag),
        cmocka_unit_test(test_dataset_outcome_and_time_are_computed_slots),
        cmocka_unit_test(test_ip_slots_and_source_address_fallback),
        cmocka_unit_test(test_dns_answers_yield_every_answer),
        cmocka_unit_test(test_geo_fields_read_country_asn_and_org),
        cmocka_unit_test(test_raw_path_descends_json_objects),
        cmocka_unit_test(test_raw_path_fans_out_over_every_array_item),
        cmocka_unit_test(test_raw_path_types_numbers_bools_and_objects),
        cmocka_unit_test(test_raw_null_empty_and_absent_are_missing),
        cmocka_unit_test(test_visit_stops_when_the_visitor_says_so),
        cmocka_unit_test(test_lazy_reader_gives_the_documents_values),
        cmocka_unit_test(test_flow_raw_names_with_dashes_and_dash_as_missing),
        cmocka_unit_test(test_flow_cache_hits_and_survives_a_new_header),
        cmocka_unit_test(test_resolve_rejects_bad_paths),
        cmocka_unit_test(test_field_name_list_is_unique_and_documented),
        cmocka_unit_test(test_value_text_and_number_parsing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
