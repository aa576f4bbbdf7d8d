/*
 * test_hotpath.c - the shortcuts taken on the per-event path (issue 2/3 tuning) give the same
 * answers as the careful paths they bypass: the reserve-once JSON string escaper against the
 * buffered one, the CloudTrail normalizer's "no top-level key is an ECS root" flag against the
 * writer's own collision walk, and the regex memo against a fresh regex run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/diag.h"
#include "core/json.h"
#include "ingest/input.h"
#include "output/output.h"
#include "parse/source.h"
#include "rules/expr.h"

extern const ch_source_type ch_source_cloudtrail;

/* The careful escaper: a buffer capped just below the fast path's worst-case reservation
 * makes ch_buf_add_json_str take its run-copying loop, which reserves only what it writes. */
static void escape_slow(const unsigned char *s, size_t n, ch_buf *out)
{
    ch_buf_init(out, 6 * n + 2);
    assert_int_equal(ch_buf_add_json_str(out, (const char *)s, n), 0);
}

static void check_same(const unsigned char *s, size_t n)
{
    ch_buf slow;
    escape_slow(s, n, &slow);
    size_t cap = CH_JSON_STR_MAX(n);
    char *fast = malloc(cap);
    assert_non_null(fast);
    char *end = ch_json_str_put(fast, (const char *)s, n);
    assert_true((size_t)(end - fast) <= cap);
    assert_int_equal((size_t)(end - fast), slow.len);
    assert_memory_equal(fast, slow.data, slow.len);
    /* And the buffered call, which now takes the fast path, agrees too. */
    ch_buf b;
    ch_buf_init(&b, 0);
    assert_int_equal(ch_buf_add_json_str(&b, (const char *)s, n), 0);
    assert_int_equal(b.len, slow.len);
    assert_memory_equal(b.data, slow.data, slow.len);
    assert_int_equal(b.data[b.len], '\0');
    ch_buf_free(&b);
    ch_buf_free(&slow);
    free(fast);
}

static void test_json_str_put_matches_the_buffered_escaper_byte_for_byte(void **state)
{
    (void)state;
    /* Every single byte, alone and inside plain text at each position of a 16/8-byte block. */
    for (unsigned c = 0; c < 256; c++) {
        unsigned char one = (unsigned char)c;
        check_same(&one, 1);
        for (size_t at = 0; at < 40; at += 3) {
            unsigned char s[41];
            memset(s, 'a', sizeof s);
            s[at] = (unsigned char)c;
            check_same(s, 41);
            check_same(s, at + 1);
        }
    }
    /* Valid and broken UTF-8 straddling block boundaries, quotes, escapes, every length. */
    static const char *const pieces[] = {
        "plain",
        "\"",
        "\\",
        "\n",
        "\t",
        "\x01",
        "\xC3\xA9",
        "\xE2\x82\xAC",
        "\xF0\x9F\x98\x80",
        "\xC3",
        "\xE2\x82",
        "\xF0\x9F\x98",
        "\xED\xA0\x80",
        "\xF4\x90\x80\x80",
        "\xC0\xAF",
        "\x7F",
        "aws-cli/2.15.30 Python/3.11.8 Linux/6.6.9-amd64-kali exe/x86_64.kali.2024",
    };
    unsigned seed = 12345;
    unsigned char buf[512];
    for (int round = 0; round < 4000; round++) {
        size_t n = 0;
        int parts = (int)(seed % 9);
        for (int k = 0; k < parts; k++) {
            seed = seed * 1103515245u + 12345u;
            const char *p = pieces[(seed >> 16) % (sizeof pieces / sizeof pieces[0])];
            size_t pl = strlen(p);
            if (n + pl > sizeof buf)
                break;
            memcpy(buf + n, p, pl);
            n += pl;
        }
        seed = seed * 1103515245u + 12345u;
        for (size_t cut = n > 0 ? n - (seed >> 16) % n : 0; cut <= n; cut++)
            check_same(buf, cut);
    }
}

static void test_buffered_escaper_keeps_long_strings_within_a_capped_buffer(void **state)
{
    (void)state;
    /* 100 KB of plain text into a buffer capped at 150 KB: the fast path's 6x reservation
     * would not fit, the string does, so it must be written. */
    size_t n = 100 * 1024;
    char *s = malloc(n);
    assert_non_null(s);
    memset(s, 'x', n);
    ch_buf b;
    ch_buf_init(&b, 150 * 1024);
    assert_int_equal(ch_buf_add_json_str(&b, s, n), 0);
    assert_int_equal(b.len, n + 2);
    ch_buf_free(&b);
    free(s);
}

/* One CloudTrail record through the real stream and the writer; returns the line. */
static void cloudtrail_line(const char *record, ch_buf *out)
{
    ch_input *in = NULL;
    ch_error err = {0};
    ch_diag diag;
    ch_diag_init(&diag, NULL);
    assert_int_equal(ch_input_open_mem(&in, "mem.json", record, strlen(record), 0, &err), 0);
    ch_stream *s = ch_source_cloudtrail.open(in, &diag, &err);
    assert_non_null(s);
    ch_event ev;
    assert_int_equal(ch_source_cloudtrail.next(s, &ev), 1);
    ch_buf_init(out, 0);
    assert_int_equal(ch_event_to_json(&ev, out), 0);
    ch_source_cloudtrail.close(s);
    ch_input_close(in);
}

static int count_key(ch_json_val obj, const char *name)
{
    ch_json_iter it;
    const char *k;
    size_t kn;
    ch_json_val v;
    int c = 0;
    assert_true(ch_json_obj_iter(obj, &it));
    while (ch_json_obj_next(&it, &k, &kn, &v))
        c += kn == strlen(name) && memcmp(k, name, kn) == 0;
    return c;
}

static void test_cloudtrail_key_named_like_an_ecs_root_still_moves_under_original(void **state)
{
    (void)state;
    /* Every top-level name the writer emits: the normalizer's flag must not let one through. */
    static const char *const roots[] = {"@timestamp", "event",       "user",    "cloud",
                                        "source",     "destination", "network", "dns",
                                        "user_agent", "error",       "threat",  "original"};
    ch_json_parser *q = ch_json_parser_new(1 << 20, 64);
    assert_non_null(q);
    for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++) {
        char rec[512];
        snprintf(rec, sizeof rec,
                 "{\"eventVersion\":\"1.08\",\"eventTime\":\"2024-08-02T08:53:24Z\","
                 "\"eventSource\":\"signin.amazonaws.com\",\"eventName\":\"ConsoleLogin\","
                 "\"%s\":\"theirs\",\"keep\":\"me\"}\n",
                 roots[i]);
        ch_buf line;
        cloudtrail_line(rec, &line);
        ch_error err = {0};
        ch_json_val v, orig, x;
        assert_int_equal(ch_json_parse(q, line.data, line.len, 0, &v, &err), 0);
        assert_true(count_key(v, roots[i]) <= 1); /* unique keys; ECS writes some only when set */
        assert_true(ch_json_obj_get(v, "original", 8, &orig));
        assert_true(ch_json_obj_get(orig, roots[i], strlen(roots[i]), &x));
        assert_true(ch_json_obj_get(v, "keep", 4, &x));
        ch_buf_free(&line);
    }
    ch_json_parser_free(q);
}

static void test_cloudtrail_record_without_ecs_root_keys_is_copied_verbatim(void **state)
{
    (void)state;
    const char *rec = "{\"eventVersion\":\"1.08\",\"eventTime\":\"2024-08-02T08:53:24Z\","
                      "\"eventSource\":\"signin.amazonaws.com\",\"eventName\":\"ConsoleLogin\","
                      "\"sources\":1,\"users\":2,\"eventual\":3}\n";
    ch_buf line;
    cloudtrail_line(rec, &line);
    const char *tail = ",\"eventVersion\":\"1.08\",\"eventTime\":\"2024-08-02T08:53:24Z\","
                       "\"eventSource\":\"signin.amazonaws.com\",\"eventName\":\"ConsoleLogin\","
                       "\"sources\":1,\"users\":2,\"eventual\":3}";
    size_t tn = strlen(tail);
    assert_true(line.len > tn);
    assert_memory_equal(line.data + line.len - tn, tail, tn);
    assert_null(strstr(line.data, "\"original\""));
    ch_buf_free(&line);
}

static void ua_event(ch_event *ev, const char *ua)
{
    ch_event_reset(ev);
    ev->dataset = CH_DS_CLOUDTRAIL;
    ev->ts_ms = 1722588804000LL;
    ev->user_agent = (ch_sv){ua, (uint32_t)strlen(ua)};
}

static void test_regex_memo_answers_like_a_fresh_match(void **state)
{
    (void)state;
    ch_expr *kali = NULL, *ubuntu = NULL;
    ch_error err = {0};
    assert_int_equal(
        ch_expr_compile("user_agent.original matches~ '(^|[^a-z])(kali|parrot|pentoo)'", NULL,
                        &kali, &err),
        0);
    assert_int_equal(ch_expr_compile("user_agent.original matches 'ubuntu'", NULL, &ubuntu, &err),
                     0);
    static const char *const uas[] = {
        "aws-cli/2.15.30 Python/3.11.8 Linux/6.6.9-amd64-kali exe/x86_64.kali.2024",
        "aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0-1014-aws exe/x86_64.ubuntu.22",
        "Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux#5.15.0 lang/python#3.10.12 Parrot",
        "console.amazonaws.com",
        "skali",
        "KALI",
        "",
    };
    ch_expr_scratch *s = ch_expr_scratch_new();
    assert_non_null(s);
    ch_event ev;
    /* Repeated values in one scratch (memo hits), two patterns over the same texts, and the
     * same text in a differently sized buffer: every answer equals a fresh scratch's. */
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < sizeof uas / sizeof uas[0]; i++) {
            char copy[256];
            snprintf(copy, sizeof copy, "%s", uas[i]);
            ua_event(&ev, round == 1 ? copy : uas[i]);
            assert_int_equal(ch_expr_eval(kali, &ev, s), ch_expr_eval(kali, &ev, NULL));
            assert_int_equal(ch_expr_eval(ubuntu, &ev, s), ch_expr_eval(ubuntu, &ev, NULL));
        }
    }
    ua_event(&ev, uas[0]);
    assert_true(ch_expr_eval(kali, &ev, s));
    assert_false(ch_expr_eval(ubuntu, &ev, s));
    ua_event(&ev, uas[4]);
    assert_false(ch_expr_eval(kali, &ev, s));
    ua_event(&ev, uas[5]);
    assert_true(ch_expr_eval(kali, &ev, s));
    /* A new expression (possibly at the freed one's address) never reuses the old answers. */
    ch_expr_free(kali);
    ch_expr *none = NULL;
    assert_int_equal(ch_expr_compile("user_agent.original matches 'zzz'", NULL, &none, &err), 0);
    ua_event(&ev, uas[0]);
    assert_false(ch_expr_eval(none, &ev, s));
    ch_expr_free(none);
    ch_expr_free(ubuntu);
    ch_expr_scratch_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_str_put_matches_the_buffered_escaper_byte_for_byte),
        cmocka_unit_test(test_buffered_escaper_keeps_long_strings_within_a_capped_buffer),
        cmocka_unit_test(test_cloudtrail_key_named_like_an_ecs_root_still_moves_under_original),
        cmocka_unit_test(test_cloudtrail_record_without_ecs_root_keys_is_copied_verbatim),
        cmocka_unit_test(test_regex_memo_answers_like_a_fresh_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
