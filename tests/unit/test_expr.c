/*
 * test_expr.c - the expression language: every operator, precedence, multi-valued and missing
 * fields, flow columns, CIDRs, durations, regexes, case-insensitive forms, named sets through
 * a resolver, error messages with line:column, caps, and dispatch hints.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/json.h"
#include "core/mem.h"
#include "rules/expr.h"
#include "rules/expr_index.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* ---- a tiny resolver: two named sets ---- */

typedef struct test_set {
    const char *name;
    const char *members[4];
} test_set;

static test_set sets[] = {
    {"business_countries", {"GB", "US", NULL}},
    {"pool_ips", {"198.51.100.7", NULL}},
};
static int released;

static int resolve(void *user, const char *name, size_t n, void **handle, ch_error *err)
{
    (void)user;
    (void)err;
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
        if (strlen(sets[i].name) == n && memcmp(sets[i].name, name, n) == 0) {
            *handle = &sets[i];
            return 0;
        }
    return CH_ENOTFOUND;
}

static bool set_contains(void *user, void *handle, const ch_value *v, bool icase)
{
    (void)user;
    const test_set *s = handle;
    char buf[CH_VALUE_TEXT_MAX];
    ch_sv t = ch_value_text(v, buf);
    for (int i = 0; s->members[i] != NULL; i++)
        if (strlen(s->members[i]) == t.n &&
            (icase ? strncasecmp(s->members[i], t.p, t.n) : memcmp(s->members[i], t.p, t.n)) == 0)
            return true;
    return false;
}

static void release(void *user, void *handle)
{
    (void)user;
    (void)handle;
    released++;
}

static const ch_expr_env env = {resolve, set_contains, release, NULL};

/* ---- events ---- */

static ch_event login; /* a successful console login from RU */
static ch_event run;   /* RunInstances with two instances, from JSON */
static ch_event flow;  /* a VPC flow log record */
static ch_json_parser *parser;
static ch_expr_scratch *scratch;

static const char *run_json =
    "{\"eventName\":\"RunInstances\",\"eventSource\":\"ec2.amazonaws.com\","
    "\"userIdentity\":{\"type\":\"IAMUser\",\"userName\":\"alice\"},"
    "\"requestParameters\":{\"instanceType\":\"p3.16xlarge\",\"maxCount\":\"25\","
    "\"imageId\":\"ami-0abc\"},"
    "\"responseElements\":{\"instancesSet\":{\"items\":["
    "{\"instanceId\":\"i-1\",\"instanceType\":\"p3.16xlarge\",\"privateIpAddress\":\"172.31.5.9\"},"
    "{\"instanceId\":\"i-2\",\"instanceType\":\"g4dn.xlarge\",\"privateIpAddress\":\"172.31.7.1\"}]"
    "}},"
    "\"additionalEventData\":{\"MFAUsed\":\"No\"},\"readOnly\":false,\"count\":3}";

static const ch_sv flow_names[] = {{"version", 7}, {"instance-id", 11}, {"srcaddr", 7},
                                   {"dstport", 7}, {"tcp-flags", 9},    {"pkt-srcaddr", 11},
                                   {"bytes", 5}};
static const ch_sv flow_vals[] = {{"5", 1}, {"i-0abc", 6}, {"172.31.5.9", 10}, {"3333", 4},
                                  {"2", 1}, {"-", 1},      {"9000000", 7}};

static int setup(void **state)
{
    (void)state;
    ch_event_reset(&login);
    login.dataset = CH_DS_CLOUDTRAIL;
    login.ts_ms = 1722588804000; /* 2024-08-02T08:53:24Z */
    login.action = CH_SV("ConsoleLogin");
    login.outcome = CH_OUTCOME_SUCCESS;
    login.user_name = CH_SV("alice");
    login.user_type = CH_SV("IAMUser");
    login.user_agent = CH_SV("Mozilla/5.0 (X11; Linux x86_64; Kali) Firefox/115.0");
    login.region = CH_SV("us-east-1");
    memcpy(login.src_geo.country, "RU", 3);
    login.src_geo.asn = 64500;
    ch_ip_parse("203.0.113.9", 11, &login.src_ip);
    ch_ip_parse("2001:db8:1::5", 13, &login.dst_ip);
    login.src_port = 51000;
    login.flags = CH_F_SRC_PORT;
    login.dns_answers[0] = CH_SV("pool.minexmr.com");
    login.dns_answers[1] = CH_SV("10.1.2.3");
    login.dns_nanswers = 2;

    ch_event_reset(&run);
    run.dataset = CH_DS_CLOUDTRAIL;
    run.action = CH_SV("RunInstances");
    run.user_name = CH_SV("alice");
    parser = ch_json_parser_new(1 << 20, 64);
    ch_error err;
    if (parser == NULL ||
        ch_json_parse(parser, run_json, strlen(run_json), strlen(run_json), &run.raw_doc, &err) < 0)
        return -1;
    run.has_raw_doc = true;

    ch_event_reset(&flow);
    flow.dataset = CH_DS_VPCFLOW;
    flow.action = CH_SV("ACCEPT");
    ch_ip_parse("172.31.5.9", 10, &flow.src_ip);
    ch_ip_parse("198.51.100.7", 12, &flow.dst_ip);
    flow.dst_port = 3333;
    flow.bytes = 9000000;
    flow.flags = CH_F_DST_PORT | CH_F_BYTES;
    flow.raw_names = flow_names;
    flow.raw_values = flow_vals;
    flow.raw_count = 7;

    scratch = ch_expr_scratch_new();
    return scratch == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    ch_expr_scratch_free(scratch);
    ch_json_parser_free(parser);
    return 0;
}

/* Compile (must succeed), evaluate on ev, free. */
static bool m(const char *src, const ch_event *ev)
{
    ch_expr *e = NULL;
    ch_error err = {0, ""};
    int rc = ch_expr_compile(src, &env, &e, &err);
    if (rc != 0)
        fail_msg("compile of <%s> failed: %s", src, err.msg);
    bool r = ch_expr_eval(e, ev, scratch);
    ch_expr_free(e);
    return r;
}

/* Compile must fail with code and exactly msg. */
static void bad(const char *src, int code, const char *msg)
{
    ch_expr *e = (ch_expr *)1;
    ch_error err = {0, ""};
    int rc = ch_expr_compile(src, &env, &e, &err);
    if (rc != code || strcmp(err.msg, msg) != 0)
        fail_msg("<%s>: got %d \"%s\", want %d \"%s\"", src, rc, err.msg, code, msg);
    assert_null(e);
}

/* ---- operators ---- */

static void test_equality_and_inequality_on_strings(void **state)
{
    (void)state;
    assert_true(m("event.action == \"ConsoleLogin\"", &login));
    assert_false(m("event.action == \"consolelogin\"", &login));
    assert_true(m("event.action != \"RunInstances\"", &login));
    assert_false(m("event.action != \"ConsoleLogin\"", &login));
    assert_true(m("event.outcome == \"success\"", &login));
    assert_true(m("event.dataset == \"cloudtrail\"", &login));
}

/* Dataset tests are compiled to a bit test on the typed dataset: same answers as the string
 * compare, including case-insensitive forms and names that are no dataset. */
static void test_dataset_tests_answer_like_string_compares(void **state)
{
    (void)state;
    ch_event derived = login;
    derived.dataset = CH_DS_UNKNOWN;
    assert_true(m("event.dataset in [\"vpcflow\", \"cloudtrail\"]", &login));
    assert_false(m("event.dataset in [\"vpcflow\", \"route53resolver\"]", &login));
    assert_true(m("event.dataset =~ \"CloudTrail\"", &login));
    assert_false(m("event.dataset == \"CloudTrail\"", &login));
    assert_false(m("event.dataset == \"cloudtrail\"", &derived));
    /* A derived event has no dataset: the field is missing, as before the bit test. */
    assert_false(m("event.dataset == \"unknown\"", &derived));
    assert_true(m("event.dataset not exists", &derived));
    assert_true(m("not event.dataset == \"vpcflow\"", &login));
}

static void test_ordering_numbers_strings_and_times(void **state)
{
    (void)state;
    assert_true(m("source.port > 50000", &login));
    assert_true(m("source.port >= 51000 and source.port <= 51000", &login));
    assert_false(m("source.port < 1024", &login));
    assert_true(m("user.name < \"bob\"", &login));
    assert_true(m("user.name >= \"alice\"", &login));
    assert_true(m("@timestamp >= \"2024-08-02T00:00:00Z\"", &login));
    assert_false(m("@timestamp > \"2024-08-03T00:00:00Z\"", &login));
    assert_true(m("source.as.number == 64500", &login));
}

static void test_strings_holding_numbers_compare_numerically_against_numbers(void **state)
{
    (void)state;
    assert_true(m("requestParameters.maxCount >= 20", &run));
    assert_true(m("requestParameters.maxCount == 25.0", &run));
    assert_false(m("requestParameters.maxCount > 100", &run));
    /* A string literal compares as text: "25" vs "3" bytewise. */
    assert_true(m("requestParameters.maxCount < \"3\"", &run));
    assert_true(m("count == 3 and count > 2.5", &run));
    assert_true(m("dstport == 3333", &flow));
    assert_true(m("bytes > 1000000", &flow));
    assert_true(m("network.bytes > 1000000", &flow));
}

static void test_booleans_and_raw_json_booleans(void **state)
{
    (void)state;
    assert_true(m("readOnly == false", &run));
    assert_false(m("readOnly == true", &run));
    assert_true(m("additionalEventData.MFAUsed == \"No\"", &run));
}

static void test_in_lists_of_strings_numbers_and_mixed(void **state)
{
    (void)state;
    assert_true(m("event.action in [\"RunInstances\", \"ConsoleLogin\"]", &login));
    assert_false(m("event.action in [\"RunInstances\"]", &login));
    assert_true(m("source.geo.country_iso_code not in [\"GB\", \"US\"]", &login));
    assert_false(m("source.geo.country_iso_code not in [\"RU\", \"US\",]", &login));
    assert_true(m("destination.port in [3333, 4444, 5555, 7777, 14444, 45700]", &flow));
    assert_true(m("destination.port in [\"3333\"]", &flow)); /* a number is in ["3333"] */
    assert_true(m("dstport in [3333]", &flow));              /* "3333" is in [3333] */
    assert_false(m("dstport in [\"03333\"]", &flow));        /* strings match as text */
    assert_false(m("event.action in []", &login));
}

static void test_large_lists_become_hash_sets(void **state)
{
    (void)state;
    char *src = malloc(2000 * 16 + 64);
    size_t k = (size_t)sprintf(src, "event.action in [");
    for (int i = 0; i < 2000; i++)
        k += (size_t)sprintf(src + k, "\"Act%d\",", i);
    sprintf(src + k, "\"ConsoleLogin\"]");
    assert_true(m(src, &login));
    sprintf(src + k, "\"Other\"]");
    assert_false(m(src, &login));
    free(src);
}

static void test_string_operators_and_case_insensitive_forms(void **state)
{
    (void)state;
    assert_true(m("user_agent.original contains \"Kali\"", &login));
    assert_false(m("user_agent.original contains \"kali\"", &login));
    assert_true(m("user_agent.original contains~ \"kali\"", &login));
    assert_true(m("user_agent.original startswith \"Mozilla/\"", &login));
    assert_true(m("user_agent.original startswith~ \"MOZILLA\"", &login));
    assert_true(m("user_agent.original endswith \"115.0\"", &login));
    assert_true(m("user_agent.original endswith~ \"FIREFOX/115.0\"", &login));
    assert_true(m("event.action =~ \"consolelogin\"", &login));
    assert_false(m("event.action !~ \"CONSOLELOGIN\"", &login));
    assert_true(m("user.name in~ [\"ALICE\", \"BOB\"]", &login));
    assert_true(m("user_agent.original not contains \"Parrot\"", &login));
    assert_false(m("user_agent.original not startswith \"Mozilla\"", &login));
    assert_true(m("user_agent.original not endswith \"Chrome\"", &login));
    /* String operators read other types as text. */
    assert_true(m("source.ip startswith \"203.0.\"", &login));
}

static void test_regex_matches_with_jit_and_caseless_form(void **state)
{
    (void)state;
    assert_true(m("user_agent.original matches '(Kali|Parrot|Pentoo)'", &login));
    assert_false(m("user_agent.original matches 'kali'", &login));
    assert_true(m("user_agent.original matches~ 'kali'", &login));
    assert_true(m("user_agent.original matches \"Firefox/\\\\d+\"", &login));
    assert_true(m("requestParameters.instanceType matches '^(p[2-5]|g[3-6])'", &run));
    assert_true(m("user_agent.original not matches 'Windows NT'", &login));
    assert_int_equal(ch_expr_scratch_regex_errors(scratch), 0);
}

static void test_runaway_regex_is_a_counted_non_match(void **state)
{
    (void)state;
    ch_event ev;
    ch_event_reset(&ev);
    ev.user_agent = CH_SV("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!");
    uint64_t before = ch_expr_scratch_regex_errors(scratch);
    assert_false(m("user_agent.original matches '^(a+)+$'", &ev));
    assert_int_equal(ch_expr_scratch_regex_errors(scratch), before + 1);
}

/* The answer PCRE2 gives with the options expr.c compiles `matches` with, without the
 * expression language in between. */
static bool pcre2_says(const char *pat, bool icase, const char *text)
{
    int ec;
    PCRE2_SIZE eo;
    uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_NEVER_BACKSLASH_C |
                    (icase ? PCRE2_CASELESS : 0);
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, opts, &ec, &eo, NULL);
    if (re == NULL)
        fail_msg("oracle: <%s> does not compile", pat);
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    int rc = pcre2_match(re, (PCRE2_SPTR)text, strlen(text), 0, 0, md, NULL);
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return rc >= 0;
}

/* Texts without any literal a pattern needs are answered without running the regex
 * (rules/expr_prefilter.c): every answer must still be PCRE2's, for the pack's patterns and
 * for the constructs the prefilter reads (alternations, optional and repeated atoms, classes
 * holding ']', escaped punctuation, long literals) or declines (lookarounds, back-references,
 * escapes of letters). */
static void test_regex_answers_with_literal_prefilter_are_pcre2s(void **state)
{
    (void)state;
    static const char *const pats[] = {
        "(^|[^a-z])(kali|parrot|pentoo)",
        "(kali|parrot|pentoo|blackarch)",
        "\"Effect\"\\s*:\\s*\"Allow\"",
        "\"Action\"\\s*:\\s*(\\[[^\\]]*)?\"(\\*|ec2:\\*|iam:\\*)\"",
        "^(p[2-5][a-z]*|g[3-6][a-z]*|gr6|f1|inf[12]|trn[12]|dl1)(\\.|$)",
        "admin",
        "xmrig\\.exe",
        "ab?cdef",
        "abc*def",
        "(?:mine|pool)r+s{2,}tratum",
        "stratum\\+tcp://[a-z.]+:(3333|4444|5555)",
        "x{0}kali",
        "ka(li)?linux",
        "(kali|)linux",
        "(?=kali)k",
        "(kal)i\\1",
        "\\x6bali",
        "[]kali]+parrot",
        "[[:alpha:]]{3}-pentoo",
        "0123456789abcdefghijklmnopqrstuvwxyz0123456789-LONG",
        "\\bpentoo\\b",
        "K[A]LI|PARROT",
    };
    static const char *const texts[] = {
        "aws-cli/2.15.0 Python/3.11.6 Linux/6.6.9-amd64-kali1 exe/x86_64.kali",
        "aws-cli/2.15.0 Python/3.11.6 Linux/6.6.9-amd64-KALI1",
        "aws-cli/2.15.0 Python/3.11.6 Linux/6.6.9-amd64-\342\204\252ali1", /* KELVIN SIGN */
        "aws-cli/2.15.0 Python/3.11.6 Linux/5.15.0-1051-aws exe/x86_64.ubuntu.22",
        "Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0",
        "parrotsec linux pentoo",
        "kalilinux",
        "kalinux",
        "linux",
        "{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[\"ec2:*\"],\"Resource\":\"*\"}]}",
        "p3.16xlarge",
        "t3.micro",
        "minerrrsssstratum stratum+tcp://pool.example:3333",
        "acdef abdef abccdef",
        "kalikali",
        "]]kparrot",
        "abc-pentoo",
        "0123456789abcdefghijklmnopqrstuvwxyz0123456789-LONG",
        "0123456789abcdefghijklmnopqrstuvwxyz0123456789-LON",
        "invalid \xff\xfe kali",
        "",
    };
    ch_event ev;
    char src[512];
    for (size_t i = 0; i < sizeof pats / sizeof *pats; i++)
        for (int icase = 0; icase < 2; icase++) {
            /* The pattern as a single-quoted literal of the language: no quote inside. */
            snprintf(src, sizeof src, "user_agent.original matches%s '%s'", icase ? "~" : "",
                     pats[i]);
            for (size_t j = 0; j < sizeof texts / sizeof *texts; j++) {
                ch_event_reset(&ev);
                ev.user_agent = (ch_sv){texts[j], (uint32_t)strlen(texts[j])};
                bool want = pcre2_says(pats[i], icase, texts[j]);
                if (m(src, &ev) != want)
                    fail_msg("<%s> on <%s>: PCRE2 says %d", src, texts[j], want);
            }
        }
    /* A text whose user agent names the OS in the Kelvin sign's 'K' matches caselessly. */
    ch_event_reset(&ev);
    ev.user_agent = CH_SV("Linux/6.6.9-amd64-\342\204\252ali");
    assert_true(m("user_agent.original matches~ '(^|[^a-z])(kali|parrot|pentoo)'", &ev));
    assert_false(m("user_agent.original matches '(^|[^a-z])(kali|parrot|pentoo)'", &ev));
}

/* A runaway regex on a text that lacks every literal the pattern needs is a plain non-match,
 * no longer a counted match-limit error: the text never reaches PCRE2. */
static void test_runaway_regex_without_its_literals_is_a_plain_non_match(void **state)
{
    (void)state;
    ch_event ev;
    ch_event_reset(&ev);
    ev.user_agent = CH_SV("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!");
    uint64_t before = ch_expr_scratch_regex_errors(scratch);
    assert_false(m("user_agent.original matches '^(a+)+(kali|parrot|pentoo)'", &ev));
    assert_int_equal(ch_expr_scratch_regex_errors(scratch), before);
    /* With one of them, PCRE2 runs and its limit still counts. */
    ev.user_agent = CH_SV("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!kali");
    assert_false(m("user_agent.original matches '^(a+)+(kali|parrot|pentoo)$'", &ev));
    assert_int_equal(ch_expr_scratch_regex_errors(scratch), before + 1);
}

static void test_two_fields_of_one_event_compare(void **state)
{
    (void)state;
    /* The run event: user alice; request and response instance types p3.16xlarge. */
    assert_true(
        m("requestParameters.instanceType == responseElements.instancesSet.items.instanceType",
          &run));
    assert_false(
        m("requestParameters.instanceType != responseElements.instancesSet.items.instanceType",
          &run));
    assert_true(m("requestParameters.imageId != user.name", &run));
    assert_false(m("requestParameters.imageId == user.name", &run));
    assert_true(m("user.name =~ userIdentity.userName", &run));
    /* A missing side: neither equal nor different. */
    assert_false(m("requestParameters.userName != user.name", &run));
    assert_false(m("requestParameters.userName == user.name", &run));
    assert_false(m("user.name != requestParameters.userName", &run));
    /* A bare word is still a forgotten pair of quotes, not a field. */
    bad("user.name == alice", CH_EPARSE,
        "expected a value after '==' at 1:14, found 'alice' (strings need quotes)");
}

/* Search asks the normalized fields first (ch_expr_eval_typed) and parses a record's JSON
 * only when they leave the answer open. A 0 or 1 must be the full answer for every event
 * whatever its raw paths hold, and -1 only when a raw path decides. */
static int typed3(const char *src, const ch_event *ev, bool *can_reject)
{
    ch_expr *e = NULL;
    ch_error err = {0, ""};
    if (ch_expr_compile(src, &env, &e, &err) != 0)
        fail_msg("compile of <%s> failed: %s", src, err.msg);
    int r = ch_expr_eval_typed(e, ev, scratch);
    *can_reject = ch_expr_typed_can_reject(e);
    if (r >= 0 && r != (int)ch_expr_eval(e, ev, scratch))
        fail_msg("<%s>: typed answer %d differs from the full one", src, r);
    ch_expr_free(e);
    return r;
}

static void test_normalized_fields_alone_answer_when_they_can(void **state)
{
    (void)state;
    bool rej;
    /* run: RunInstances by alice, instance type p3.16xlarge in its JSON */
    const char *act = "event.action == \"RunInstances\"";
    const char *raw = "requestParameters.instanceType == \"p3.16xlarge\"";
    char src[256];
    snprintf(src, sizeof src, "event.action == \"ConsoleLogin\" and %s", raw);
    assert_int_equal(typed3(src, &run, &rej), 0); /* ruled out without the JSON */
    assert_true(rej);
    snprintf(src, sizeof src, "%s and %s", act, raw);
    assert_int_equal(typed3(src, &run, &rej), -1); /* the raw path decides */
    assert_true(rej);
    snprintf(src, sizeof src, "%s or %s", act, raw);
    assert_int_equal(typed3(src, &run, &rej), 1); /* true whatever the JSON holds */
    assert_false(rej);                            /* a raw path alone can make it true */
    snprintf(src, sizeof src, "not (event.action == \"ConsoleLogin\" or %s)", raw);
    assert_int_equal(typed3(src, &run, &rej), -1);
    assert_true(rej);
    snprintf(src, sizeof src, "not (%s or %s)", act, raw);
    assert_int_equal(typed3(src, &run, &rej), 0);
    assert_int_equal(typed3(raw, &run, &rej), -1);
    assert_false(rej); /* nothing for a search to save */
    snprintf(src, sizeof src, "not %s", raw);
    assert_int_equal(typed3(src, &run, &rej), -1);
    assert_false(rej);
    /* the other side of a two-field compare is a raw path too */
    assert_int_equal(typed3("user.name == userIdentity.userName", &run, &rej), -1);
    assert_false(rej);
    assert_int_equal(typed3("user.name == \"alice\"", &run, &rej), 1);
    assert_true(rej);
}

/* Search then asks the record's JSON text, before parsing it: a raw path's test of a text
 * literal is false when the text lacks it (and has no escape that could spell it). A 0 or 1 must
 * be the full answer; -1 leaves it to the parse. */
static int text3(const char *src, const ch_event *ev, const char *text, bool *can_reject)
{
    ch_expr *e = NULL;
    ch_error err = {0, ""};
    if (ch_expr_compile(src, &env, &e, &err) != 0)
        fail_msg("compile of <%s> failed: %s", src, err.msg);
    int r = ch_expr_eval_text(e, ev, text, strlen(text), scratch);
    *can_reject = ch_expr_text_can_reject(e);
    if (r >= 0 && r != (int)ch_expr_eval(e, ev, scratch))
        fail_msg("<%s>: text answer %d differs from the full one", src, r);
    if (r == 0 && !*can_reject && !ch_expr_typed_can_reject(e))
        fail_msg("<%s>: rejected though it cannot", src);
    /* From the text alone (normalized fields unknown too): never another answer than the full
     * one, and a 0 only where it says it can give one. */
    int ra = ch_expr_eval_text_alone(e, text, strlen(text), scratch);
    if (ra >= 0 && ra != (int)ch_expr_eval(e, ev, scratch))
        fail_msg("<%s>: text-alone answer %d differs from the full one", src, ra);
    if (ra == 0 && !ch_expr_text_alone_can_reject(e))
        fail_msg("<%s>: rejected from the text alone though it cannot", src);
    if (ra >= 0 && r != ra)
        fail_msg("<%s>: text-alone answer %d, with the event %d", src, ra, r);
    ch_expr_free(e);
    return r;
}

/* The text alone, for search to ask before it decodes the normalized fields. */
static int alone(const char *src, const char *text, bool *can_reject)
{
    ch_expr *e = NULL;
    ch_error err = {0, ""};
    if (ch_expr_compile(src, &env, &e, &err) != 0)
        fail_msg("compile of <%s> failed: %s", src, err.msg);
    int r = ch_expr_eval_text_alone(e, text, strlen(text), scratch);
    *can_reject = ch_expr_text_alone_can_reject(e);
    ch_expr_free(e);
    return r;
}

static void test_record_text_alone_leaves_normalized_fields_unknown(void **state)
{
    (void)state;
    bool rej;
    assert_int_equal(alone("requestParameters.instanceType == \"t3.micro\"", run_json, &rej), 0);
    assert_true(rej);
    /* an and with a normalized test: the raw test alone decides */
    assert_int_equal(alone("requestParameters.instanceType == \"t3.micro\" and user.name == "
                           "\"alice\"",
                           run_json, &rej),
                     0);
    assert_true(rej);
    /* an or with one: only the event could say (text3 above answers 1 with it) */
    assert_int_equal(alone("requestParameters.instanceType == \"t3.micro\" or user.name == "
                           "\"alice\"",
                           run_json, &rej),
                     -1);
    assert_false(rej);
    assert_int_equal(alone("event.dataset == \"cloudtrail\"", run_json, &rej), -1);
    assert_false(rej);
    assert_int_equal(alone("requestParameters.instanceType == \"p3.16xlarge\"", run_json, &rej),
                     -1);
    const char *escaped = "{\"requestParameters\":{\"instanceType\":\"t3\\u002emicro\"}}";
    assert_int_equal(alone("requestParameters.instanceType == \"t3.micro\"", escaped, &rej), -1);
}

static void test_record_text_rules_out_literals_it_lacks(void **state)
{
    (void)state;
    bool rej;
    /* run's JSON holds p3.16xlarge (twice) and g4dn.xlarge, not t3.micro */
    assert_int_equal(text3("requestParameters.instanceType == \"t3.micro\"", &run, run_json, &rej),
                     0);
    assert_true(rej);
    assert_int_equal(
        text3("requestParameters.instanceType == \"p3.16xlarge\"", &run, run_json, &rej), -1);
    assert_int_equal(
        text3("requestParameters.instanceType == \"g4dn.xlarge\"", &run, run_json, &rej), -1);
    assert_int_equal(text3("requestParameters.instanceType in [\"t3.micro\", \"m5.large\"]", &run,
                           run_json, &rej),
                     0);
    assert_int_equal(text3("responseElements.instancesSet.items.instanceType endswith \"2xlarge\"",
                           &run, run_json, &rej),
                     0);
    assert_int_equal(text3("requestParameters.imageId startswith \"ami-0\"", &run, run_json, &rej),
                     -1);
    /* negations and combinations keep Kleene's logic */
    assert_int_equal(
        text3("not requestParameters.instanceType == \"t3.micro\"", &run, run_json, &rej), 1);
    assert_false(rej);
    assert_int_equal(text3("requestParameters.instanceType == \"t3.micro\" or user.name == "
                           "\"alice\"",
                           &run, run_json, &rej),
                     1);
    assert_int_equal(text3("requestParameters.instanceType == \"t3.micro\" or "
                           "requestParameters.imageId exists",
                           &run, run_json, &rej),
                     -1);
    assert_true(rej); /* a record without an imageId key */
    /* what the text's literals cannot rule out where the path's key is in it: !=,
     * case-insensitive tests, numbers, booleans, addresses, literals shorter than four bytes (in
     * nearly every record), a record with an escape */
    assert_int_equal(text3("requestParameters.instanceType != \"t3.micro\"", &run, run_json, &rej),
                     -1);
    assert_true(rej);
    assert_int_equal(text3("requestParameters.maxCount == \"25.0\"", &run, run_json, &rej), -1);
    assert_true(rej);
    assert_int_equal(text3("requestParameters.maxCount == 25", &run, run_json, &rej), -1);
    assert_int_equal(text3("readOnly == \"false\"", &run, run_json, &rej), -1);
    assert_int_equal(text3("responseElements.instancesSet.items.privateIpAddress == "
                           "\"172.031.5.9\"",
                           &run, run_json, &rej),
                     -1);
    assert_int_equal(text3("requestParameters.imageId contains \"zzz\"", &run, run_json, &rej), -1);
    assert_true(rej);
    /* `not exists` is true without the key: nothing the text can rule out */
    assert_int_equal(text3("requestParameters.imageId not exists", &run, run_json, &rej), -1);
    assert_false(rej);
    assert_int_equal(
        text3("requestParameters.imageId contains~ \"AMI-0ABC\"", &run, run_json, &rej), -1);
    const char *escaped = "{\"requestParameters\":{\"instanceType\":\"t3\\u002emicro\"}}";
    assert_int_equal(text3("requestParameters.instanceType == \"t3.micro\"", &run, escaped, &rej),
                     -1);
}

/* Which expressions an event holding only its original record answers in full (a search then
 * skips decoding the normalized fields of the records they rule out): raw paths alone. */
static bool raw_only(const char *src)
{
    ch_expr *e = NULL;
    ch_error err = {0, ""};
    if (ch_expr_compile(src, &env, &e, &err) != 0)
        fail_msg("compile of <%s> failed: %s", src, err.msg);
    bool r = ch_expr_raw_only(e);
    ch_expr_free(e);
    return r;
}

static void test_raw_only_expressions_read_no_normalized_slot(void **state)
{
    (void)state;
    assert_true(raw_only("requestParameters.instanceType == \"p3.16xlarge\""));
    assert_true(raw_only("userAgent matches \"^[0-9]+$\" or not requestParameters.maxCount > 5"));
    assert_true(raw_only("requestParameters.imageId == responseElements.imageId"));
    assert_false(raw_only("user.name == \"alice\""));
    assert_false(raw_only("requestParameters.instanceType exists and user.name == \"alice\""));
    assert_false(raw_only("event.dataset == \"cloudtrail\" and requestParameters.maxCount > 5"));
    /* a compare of two fields reads both sides */
    assert_false(raw_only("user.name == userIdentity.userName"));
    assert_false(raw_only("userIdentity.userName == user.name"));
    /* and an event holding only its original record answers those as the whole event does */
    ch_event only = run;
    ch_event_reset(&only);
    only.raw_json = run.raw_json;
    only.raw_doc = run.raw_doc;
    only.has_raw_doc = run.has_raw_doc;
    const char *srcs[] = {"requestParameters.instanceType == \"p3.16xlarge\"",
                          "requestParameters.instanceType == \"t3.micro\"",
                          "userAgent matches \"^[0-9]+$\" or requestParameters.maxCount exists"};
    for (size_t i = 0; i < sizeof srcs / sizeof srcs[0]; i++) {
        ch_expr *e = NULL;
        ch_error err = {0, ""};
        assert_int_equal(ch_expr_compile(srcs[i], &env, &e, &err), 0);
        bool got = ch_expr_eval(e, &only, scratch);
        assert_int_equal(got, ch_expr_eval(e, &run, scratch));
        assert_int_equal(got, i != 1); /* the second is false, the others true */
        ch_expr_free(e);
    }
}

/* A regular expression's every match holds one of the literals its prefilter found
 * (expr_prefilter.c): a text without any of them holds no matching value. */
static void test_record_text_rules_out_patterns_whose_literals_it_lacks(void **state)
{
    (void)state;
    bool rej;
    assert_int_equal(
        text3("requestParameters.instanceType matches \"^t3.micro$\"", &run, run_json, &rej), 0);
    assert_true(rej);
    assert_int_equal(
        text3("requestParameters.instanceType matches \"^(m5|c6i)[.]metal\"", &run, run_json, &rej),
        0);
    assert_int_equal(text3("userAgent matches \"^(kali|parrot)-linux\"", &run, run_json, &rej), 0);
    assert_int_equal(text3("userAgent matches \"kali|parrot\"", &run, run_json, &rej), 0);
    assert_true(rej);
    bool rej_alone;
    assert_int_equal(alone("userAgent matches \"kali|parrot\"", run_json, &rej_alone), 0);
    assert_true(rej_alone);
    /* the literal in the text, at the path or anywhere: the parse decides */
    assert_int_equal(
        text3("requestParameters.instanceType matches \"16xlarge$\"", &run, run_json, &rej), -1);
    assert_int_equal(
        text3("requestParameters.instanceType matches \"^g4dn\"", &run, run_json, &rej), -1);
    assert_int_equal(
        text3("requestParameters.instanceType matches \"^alice\"", &run, run_json, &rej), -1);
    /* what the literals cannot say: a caseless pattern, a number's digits (a number's text as
     * the test sees it need not be the record's), no literal of three bytes, a negated test, a
     * record with an escape */
    assert_int_equal(
        text3("requestParameters.instanceType matches~ \"^T3.MICRO\"", &run, run_json, &rej), -1);
    assert_int_equal(text3("count matches \"^1000\"", &run, run_json, &rej), -1);
    assert_int_equal(
        text3("requestParameters.instanceType matches \"^.3[.]\"", &run, run_json, &rej), -1);
    assert_int_equal(
        text3("requestParameters.instanceType not matches \"^t3.micro\"", &run, run_json, &rej),
        -1);
    const char *escaped = "{\"requestParameters\":{\"instanceType\":\"t3\\u002emicro\"}}";
    assert_int_equal(
        text3("requestParameters.instanceType matches \"^t3.micro\"", &run, escaped, &rej), -1);
}

/* A raw path has no value in a record whose text lacks its last key (between quotes, the text
 * without a backslash), and every test of a missing path but `not exists` is false: so the key's
 * absence rules out tests no literal can (numbers, regular expressions, !=, short literals). */
static void test_record_text_lacking_the_paths_key_rules_out_any_test_of_it(void **state)
{
    (void)state;
    bool rej;
    const char *tests[] = {
        "requestParameters.minCount > 5",
        "requestParameters.minCount == 25",
        "requestParameters.minCount != \"25\"",
        "requestParameters.minCount =~ \"^2\"",
        "requestParameters.minCount contains \"2\"",
        "requestParameters.minCount not in [\"a\"]",
        "requestParameters.minCount exists",
        "responseElements.instancesSet.items.publicIp == \"203.0.113.9\"",
    };
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        if (text3(tests[i], &run, run_json, &rej) != 0 || !rej)
            fail_msg("<%s> not ruled out by the missing key", tests[i]);
        if (alone(tests[i], run_json, &rej) != 0 || !rej)
            fail_msg("<%s> not ruled out from the text alone", tests[i]);
    }
    /* a key the text holds leaves the parse to decide, also where it is held elsewhere than at
     * the path (instanceType under responseElements too) or as a value */
    assert_int_equal(text3("requestParameters.maxCount > 5", &run, run_json, &rej), -1);
    assert_int_equal(text3("requestParameters.instanceType =~ \"^p3\"", &run, run_json, &rej), -1);
    assert_int_equal(text3("userIdentity.RunInstances == 1", &run, run_json, &rej), -1);
    const char *as_value = "{\"eventName\":\"x\",\"note\":\"minCount\"}";
    assert_int_equal(alone("requestParameters.minCount > 5", as_value, &rej), -1);
    const char *quoted = "{\"eventName\":\"x\",\"note\":\"\\\"minCount\\\"\"}";
    assert_int_equal(alone("requestParameters.minCount > 5", quoted, &rej), -1); /* an escape */
    /* not exists, and not of a test, are true without the key: the text cannot rule them out
     * (the first is left to the parse, the second is proved true) */
    assert_int_equal(text3("requestParameters.minCount not exists", &run, run_json, &rej), -1);
    assert_false(rej);
    assert_int_equal(text3("not requestParameters.minCount > 5", &run, run_json, &rej), 1);
    assert_false(rej);
    /* a compare of two fields: the other side could be a slot */
    assert_int_equal(text3("requestParameters.minCount == user.name", &run, run_json, &rej), -1);
    /* an escape anywhere could spell the key: nothing ruled out */
    const char *escaped = "{\"requestParameters\":{\"min\\u0043ount\":\"7\"}}";
    assert_int_equal(alone("requestParameters.minCount > 5", escaped, &rej), -1);
}

static void test_exists_and_not_exists(void **state)
{
    (void)state;
    assert_true(m("user.name exists", &login));
    assert_false(m("error.code exists", &login));
    assert_true(m("error.code not exists", &login));
    assert_true(m("not error.code exists", &login));
    assert_true(m("requestParameters exists", &run));
    assert_true(m("pkt-srcaddr not exists", &flow)); /* "-" is missing */
}

/* ---- semantics ---- */

static void test_missing_field_makes_every_test_false_but_not_exists(void **state)
{
    (void)state;
    const char *tests[] = {
        "error.code == \"x\"",
        "error.code != \"x\"",
        "error.code < 5",
        "error.code > \"a\"",
        "error.code in [\"a\"]",
        "error.code not in [\"a\"]",
        "error.code contains \"a\"",
        "error.code not contains \"a\"",
        "error.code matches 'a'",
        "error.code =~ \"a\"",
        "error.code !~ \"a\"",
        "error.code in $pool_ips",
        "error.code not in $pool_ips",
        "error.code exists",
        "nosuch.raw.path == 1",
    };
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        if (m(tests[i], &login))
            fail_msg("<%s> matched a missing field", tests[i]);
    assert_true(m("error.code not exists", &login));
    assert_true(m("not (error.code == \"x\")", &login));
}

static void test_precedence_not_then_and_then_or(void **state)
{
    (void)state;
    /* a or (b and c): true because a */
    assert_true(m("user.name == \"alice\" or user.name == \"x\" and user.name == \"y\"", &login));
    /* (a or b) and c would be false */
    assert_false(
        m("(user.name == \"alice\" or user.name == \"x\") and user.name == \"y\"", &login));
    /* (not a) and b */
    assert_false(m("not user.name == \"alice\" and user.name == \"alice\"", &login));
    assert_true(m("not (user.name == \"x\" and user.name == \"alice\")", &login));
    assert_true(m("not not user.name == \"alice\"", &login));
    assert_true(
        m("! user.name == \"bob\" && (user.name == \"bob\" || user.name == \"alice\")", &login));
    assert_true(m("NOT user.name == \"bob\" AND user.name == \"alice\"", &login));
}

static void test_multi_valued_raw_path_matches_any_element(void **state)
{
    (void)state;
    const char *p = "responseElements.instancesSet.items.instanceType";
    char src[256];
    snprintf(src, sizeof src, "%s == \"g4dn.xlarge\"", p);
    assert_true(m(src, &run));
    snprintf(src, sizeof src, "%s == \"p3.16xlarge\"", p);
    assert_true(m(src, &run));
    snprintf(src, sizeof src, "%s == \"t3.micro\"", p);
    assert_false(m(src, &run));
    /* Negated: present and no element matches. */
    snprintf(src, sizeof src, "%s != \"g4dn.xlarge\"", p);
    assert_false(m(src, &run));
    snprintf(src, sizeof src, "%s not in [\"t3.micro\", \"t3.small\"]", p);
    assert_true(m(src, &run));
    snprintf(src, sizeof src, "%s startswith \"g4\"", p);
    assert_true(m(src, &run));
    assert_true(m("responseElements.instancesSet.items.privateIpAddress in 172.31.7.0/24", &run));
    assert_true(m("dns.answers in 10.0.0.0/8", &login));
    assert_true(m("dns.answers endswith \".minexmr.com\"", &login));
}

static void test_flow_columns_with_dashes(void **state)
{
    (void)state;
    assert_true(m("instance-id == \"i-0abc\"", &flow));
    assert_true(m("tcp-flags == 2", &flow));
    assert_true(m("srcaddr in 172.31.0.0/16", &flow));
    assert_false(m("pkt-srcaddr == \"-\"", &flow));
    assert_true(m("`tcp-flags` in [2, 18]", &flow));
}

static void test_cidr_containment_v4_and_v6(void **state)
{
    (void)state;
    assert_true(m("source.ip in 203.0.113.0/24", &login));
    assert_false(m("source.ip in 10.0.0.0/8", &login));
    assert_true(m("source.ip in [10.0.0.0/8, 192.168.0.0/16, 203.0.0.0/8]", &login));
    assert_true(m("source.ip not in [10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16]", &login));
    assert_true(m("source.ip == 203.0.113.9", &login));
    assert_true(m("source.ip == \"203.0.113.9\"", &login));
    assert_true(m("source.ip in [203.0.113.9, 2001:db8::1]", &login));
    assert_true(m("destination.ip in 2001:db8::/32", &login));
    assert_true(m("destination.ip in [2001:db8:1::/48]", &login));
    assert_false(m("destination.ip in 2001:db9::/32", &login));
    assert_true(m("destination.ip == 2001:db8:1::5", &login));
    /* An IPv4 network never holds an IPv6 address, even ::/0 against IPv4. */
    assert_false(m("source.ip in ::/0", &login));
    assert_true(m("source.ip in 0.0.0.0/0", &login));
    assert_true(m("source.internal == false and cloud.provider == \"aws\"", &login));
    assert_true(m("source.internal == true", &flow));
}

static void test_durations_are_milliseconds(void **state)
{
    (void)state;
    ch_event ev;
    ch_event_reset(&ev);
    ev.ts_ms = 600000;
    assert_true(m("@timestamp == 10m", &ev));
    assert_true(m("@timestamp == 600s and @timestamp == 600000ms", &ev));
    assert_true(
        m("@timestamp < 1h and @timestamp < 24h and @timestamp < 7d and @timestamp < 1w", &ev));
    assert_true(m("@timestamp < 0.5h and @timestamp > 9.5m and @timestamp >= -1d", &ev));
    ev.flags = CH_F_END;
    ev.end_ms = 1800000;
    assert_true(m("event.end == 0.5h", &ev));
}

static void test_named_sets_resolve_once_and_release(void **state)
{
    (void)state;
    released = 0;
    assert_true(m("source.geo.country_iso_code not in $business_countries", &login));
    assert_false(m("source.geo.country_iso_code in $business_countries", &login));
    assert_true(m("destination.ip in $pool_ips", &flow));
    assert_true(m("destination.ip in $pool_ips and source.ip in $pool_ips or "
                  "user.name in~ $business_countries or dstport == 3333",
                  &flow));
    assert_int_equal(released, 6);
    bad("user.name in $unknown", CH_EPARSE, "unknown set $unknown at 1:14");
    ch_expr *e = NULL;
    ch_error err;
    assert_int_equal(ch_expr_compile("x in $business_countries", NULL, &e, &err), CH_EPARSE);
    assert_string_equal(err.msg, "named set $business_countries cannot be used here (no sets "
                                 "are defined) at 1:6");
}

/* ---- errors ---- */

static void test_errors_name_line_column_and_what_was_expected(void **state)
{
    (void)state;
    bad("event.action == ", CH_EPARSE, "expected a value after '==' at 1:17, found end of input");
    bad("event.action == )", CH_EPARSE, "expected a value after '==' at 1:17, found ')'");
    bad("event.outcome == success", CH_EPARSE,
        "expected a value after '==' at 1:18, found 'success' (strings need quotes)");
    bad("(event.action == \"x\"", CH_EPARSE,
        "expected ')' (for the '(' at 1:1) at 1:21, found end of input");
    bad("event.action = \"x\"", CH_EPARSE, "unexpected '=' at 1:14 (use '==' to compare)");
    bad("user.name == \"abc", CH_EPARSE, "unterminated string starting at 1:14");
    bad("user.name == \"a\\d\"", CH_EPARSE,
        "unknown escape '\\d' in string at 1:16 (use single quotes for a raw string, as in "
        "matches '\\d+')");
    bad("user.name matches \"(\"", CH_EPARSE,
        "invalid regular expression at 1:19: missing closing parenthesis at offset 1 of the "
        "pattern");
    bad("source.ip in 10.0.0.0/33", CH_EPARSE, "invalid CIDR prefix length at 1:14 (0..32)");
    bad("user.name == \"a\" and", CH_EPARSE, "expected a condition at 1:21, found end of input");
    bad("user.name \"x\"", CH_EPARSE,
        "expected an operator after 'user.name' at 1:11, found '\"x\"' (==, !=, <, <=, >, >=, "
        "=~, !~, in, contains, startswith, endswith, matches, exists)");
    bad("event.action == \"x\"\n  and user.name ==", CH_EPARSE,
        "expected a value after '==' at 2:19, found end of input");
    bad("source.port == \"https\"", CH_EPARSE,
        "'source.port' holds numbers, so this value can never match at 1:16, found '\"https\"'");
    bad("source.internal == 1", CH_EPARSE,
        "'source.internal' holds booleans, so this value can never match at 1:20, found '1'");
    bad("a == 1 b == 2", CH_EPARSE, "expected 'and', 'or' or the end at 1:8, found 'b'");
    bad("a == 1)", CH_EPARSE, "unmatched ')' at 1:7, found ')'");
    bad("10m == x", CH_EPARSE, "expected a field name, 'not' or '(' at 1:1, found '10m'");
    bad("x == 5q", CH_EPARSE, "unknown duration unit at 1:7 (use ms, s, m, h, d or w, as in 10m)");
    bad("x in [1, 2", CH_EPARSE,
        "expected ',' or ']' (for the '[' at 1:6) at 1:11, found end of input");
    bad("x not == 1", CH_EPARSE,
        "expected 'exists', 'in', 'contains', 'startswith', 'endswith' or 'matches' after "
        "'not' at 1:7, found '=='");
    bad("x contains 5", CH_EPARSE, "expected a string after 'contains' at 1:12, found '5'");
    bad("x == 10.0.0.0/8", CH_EPARSE,
        "a network needs 'in' (as in source.ip in 10.0.0.0/8) at 1:6, found '10.0.0.0/8'");
    bad("x < 10.0.0.1", CH_EPARSE,
        "'<' compares numbers, durations, times or strings at 1:5, found '10.0.0.1'");
    bad("x =~ 5", CH_EPARSE, "'=~' compares strings; use '==' for other values at 1:6, found '5'");
    bad("x == 1..2", CH_EPARSE, "invalid number at 1:6");
    bad("x == fe80::zz", CH_EPARSE, "invalid IPv6 address at 1:6");
    bad("a..b == 1", CH_EPARSE, "invalid field path at 1:1: empty segment in field path 'a..b'");
    bad("", CH_EPARSE, "expected a condition at 1:1, found end of input");
    bad("   # only a comment", CH_EPARSE, "expected a condition at 1:20, found end of input");
    bad("x == \"caf\xc3\xa9\" and \x01", CH_EPARSE, "unexpected byte 0x01 at 1:17");
}

static void test_caps_on_depth_length_and_list_size(void **state)
{
    (void)state;
    /* 100,000 parentheses: an error, not a stack overflow. */
    size_t n = 100000;
    char *src = malloc(2 * n + 16);
    memset(src, '(', n);
    strcpy(src + n, "x == 1");
    memset(src + n + 6, ')', n);
    src[2 * n + 6] = '\0';
    ch_expr *e = NULL;
    ch_error err;
    assert_int_equal(ch_expr_compile_n(src, 60000, &env, &e, &err), CH_ELIMIT);
    assert_string_equal(err.msg, "expression nests deeper than 128 levels at 1:129");
    assert_int_equal(ch_expr_compile(src, &env, &e, &err), CH_ELIMIT); /* too long */
    /* 128 levels are fine. */
    memset(src, '(', 128);
    strcpy(src + 128, "x == 1");
    memset(src + 134, ')', 128);
    src[262] = '\0';
    assert_int_equal(ch_expr_compile(src, &env, &e, &err), 0);
    ch_expr_free(e);
    /* 100,000 `not` are as deep. */
    for (size_t i = 0; i < 15000; i++)
        memcpy(src + 4 * i, "not ", 4);
    strcpy(src + 60000, "x == 1");
    assert_int_equal(ch_expr_compile(src, &env, &e, &err), CH_ELIMIT);
    free(src);

    /* A list longer than the cap. */
    size_t cnt = CH_EXPR_MAX_LIST + 1;
    src = malloc(cnt * 2 + 32);
    size_t k = (size_t)sprintf(src, "x in [");
    for (size_t i = 0; i < cnt; i++) {
        src[k++] = '1';
        src[k++] = ',';
    }
    strcpy(src + k, "]");
    assert_int_equal(ch_expr_compile_n(src, strlen(src), &env, &e, &err), CH_ELIMIT);
    free(src);

    /* A long flat chain of `or` is fine (it is one n-ary node). */
    src = malloc(60000);
    k = 0;
    for (int i = 0; i < 4000; i++)
        k += (size_t)sprintf(src + k, "%sx == %d", i ? " or " : "", i);
    assert_int_equal(ch_expr_compile(src, &env, &e, &err), 0);
    ch_expr_free(e);
    free(src);
}

static void test_allocation_failures_are_reported_and_leak_nothing(void **state)
{
    (void)state;
    const char *src = "event.action in [\"A\", \"B\"] and user.name matches '^a' and "
                      "source.ip in [10.0.0.0/8, 1.2.3.4] and x in $pool_ips and "
                      "requestParameters.instanceType exists or (not a == 1)";
    for (long n = 0; n < 200; n++) {
        ch_expr *e = NULL;
        ch_error err;
        ch_mem_fail_after(n);
        int rc = ch_expr_compile(src, &env, &e, &err);
        ch_mem_fail_after(-1);
        if (rc == 0) {
            ch_expr_free(e);
            break;
        }
        assert_int_equal(rc, CH_ENOMEM);
        assert_null(e);
    }
}

/* ---- hints ---- */

static void hints_of(const char *src, ch_expr_hints *h, ch_expr **e)
{
    ch_error err;
    if (ch_expr_compile(src, &env, e, &err) != 0)
        fail_msg("%s", err.msg);
    ch_expr_dispatch_hints(*e, h);
}

static bool has_action(const ch_expr_hints *h, const char *a)
{
    for (size_t i = 0; i < h->nactions; i++)
        if (h->actions[i].n == strlen(a) && memcmp(h->actions[i].p, a, h->actions[i].n) == 0)
            return true;
    return false;
}

static void test_dispatch_hints_from_dataset_and_actions(void **state)
{
    (void)state;
    ch_expr *e;
    ch_expr_hints h;

    hints_of("event.action == \"ConsoleLogin\" and event.outcome == \"success\"", &h, &e);
    assert_true(h.by_action);
    assert_false(h.by_dataset);
    assert_int_equal(h.nactions, 1);
    assert_true(has_action(&h, "ConsoleLogin"));
    ch_expr_free(e);

    hints_of("event.dataset == \"cloudtrail\" and event.action in [\"RunInstances\", "
             "\"StartInstances\"] and user.name exists",
             &h, &e);
    assert_true(h.by_dataset);
    assert_int_equal(h.datasets, 1u << CH_DS_CLOUDTRAIL);
    assert_int_equal(h.nactions, 2);
    assert_true(has_action(&h, "StartInstances"));
    ch_expr_free(e);

    /* Union through or when every branch constrains. */
    hints_of("(event.action == \"A\" and x == 1) or event.action in [\"B\", \"A\"]", &h, &e);
    assert_true(h.by_action);
    assert_int_equal(h.nactions, 2);
    ch_expr_free(e);

    /* One unconstrained branch: no hint. */
    hints_of("event.action == \"A\" or user.name == \"root\"", &h, &e);
    assert_false(h.by_action);
    ch_expr_free(e);

    /* Negations, case-insensitive tests and non-string lists give no hint. */
    hints_of("event.action != \"A\"", &h, &e);
    assert_false(h.by_action);
    ch_expr_free(e);
    hints_of("event.action =~ \"consolelogin\"", &h, &e);
    assert_false(h.by_action);
    ch_expr_free(e);
    hints_of("not event.action == \"A\"", &h, &e);
    assert_false(h.by_action);
    ch_expr_free(e);

    /* Intersection of two action constraints; an empty one means "never". */
    hints_of("event.action in [\"A\", \"B\"] and event.action in [\"B\", \"C\"]", &h, &e);
    assert_int_equal(h.nactions, 1);
    assert_true(has_action(&h, "B"));
    ch_expr_free(e);
    hints_of("event.action == \"A\" and event.action == \"B\"", &h, &e);
    assert_true(h.by_action);
    assert_int_equal(h.nactions, 0);
    ch_expr_free(e);

    hints_of("event.dataset in [\"vpcflow\", \"route53resolver\"] and dstport == 3333", &h, &e);
    assert_int_equal(h.datasets, (1u << CH_DS_VPCFLOW) | (1u << CH_DS_ROUTE53));
    ch_expr_free(e);
    hints_of("event.dataset =~ \"VPCFlow\"", &h, &e);
    assert_int_equal(h.datasets, 1u << CH_DS_VPCFLOW);
    ch_expr_free(e);
}

static void test_compiled_expression_is_reusable_and_keeps_its_source(void **state)
{
    (void)state;
    ch_expr *e;
    ch_error err;
    const char *src = "event.action == \"ConsoleLogin\" and source.geo.country_iso_code not in "
                      "[\"GB\", \"US\"]";
    assert_int_equal(ch_expr_compile(src, &env, &e, &err), 0);
    assert_string_equal(ch_expr_source(e), src);
    for (int i = 0; i < 3; i++) {
        assert_true(ch_expr_eval(e, &login, scratch));
        assert_false(ch_expr_eval(e, &run, scratch));
    }
    assert_true(ch_expr_eval(e, &login, NULL)); /* slow path without a scratch */
    ch_expr_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equality_and_inequality_on_strings),
        cmocka_unit_test(test_dataset_tests_answer_like_string_compares),
        cmocka_unit_test(test_ordering_numbers_strings_and_times),
        cmocka_unit_test(test_strings_holding_numbers_compare_numerically_against_numbers),
        cmocka_unit_test(test_booleans_and_raw_json_booleans),
        cmocka_unit_test(test_in_lists_of_strings_numbers_and_mixed),
        cmocka_unit_test(test_large_lists_become_hash_sets),
        cmocka_unit_test(test_string_operators_and_case_insensitive_forms),
        cmocka_unit_test(test_regex_matches_with_jit_and_caseless_form),
        cmocka_unit_test(test_runaway_regex_is_a_counted_non_match),
        cmocka_unit_test(test_regex_answers_with_literal_prefilter_are_pcre2s),
        cmocka_unit_test(test_runaway_regex_without_its_literals_is_a_plain_non_match),
        cmocka_unit_test(test_two_fields_of_one_event_compare),
        cmocka_unit_test(test_normalized_fields_alone_answer_when_they_can),
        cmocka_unit_test(test_record_text_rules_out_literals_it_lacks),
        cmocka_unit_test(test_record_text_rules_out_patterns_whose_literals_it_lacks),
        cmocka_unit_test(test_raw_only_expressions_read_no_normalized_slot),
        cmocka_unit_test(test_record_text_alone_leaves_normalized_fields_unknown),
        cmocka_unit_test(test_record_text_lacking_the_paths_key_rules_out_any_test_of_it),
        cmocka_unit_test(test_exists_and_not_exists),
        cmocka_unit_test(test_missing_field_makes_every_test_false_but_not_exists),
        cmocka_unit_test(test_precedence_not_then_and_then_or),
        cmocka_unit_test(test_multi_valued_raw_path_matches_any_element),
        cmocka_unit_test(test_flow_columns_with_dashes),
        cmocka_unit_test(test_cidr_containment_v4_and_v6),
        cmocka_unit_test(test_durations_are_milliseconds),
        cmocka_unit_test(test_named_sets_resolve_once_and_release),
        cmocka_unit_test(test_errors_name_line_column_and_what_was_expected),
        cmocka_unit_test(test_caps_on_depth_length_and_list_size),
        cmocka_unit_test(test_allocation_failures_are_reported_and_leak_nothing),
        cmocka_unit_test(test_dispatch_hints_from_dataset_and_actions),
        cmocka_unit_test(test_compiled_expression_is_reusable_and_keeps_its_source),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
