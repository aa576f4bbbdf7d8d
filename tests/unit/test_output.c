/*
 * test_output.c - the JSON Lines event writer: ECS fields nested as ECS names them, original
 * fields at their own paths, a source key that collides with an ECS root moved under
 * "original" so the line stays valid JSON with unique keys, and every line parseable.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/json.h"
#include "output/output.h"

static ch_json_parser *P;

static void event_from_json(ch_event *ev, const char *json)
{
    ch_error err = {0};
    ch_event_reset(ev);
    assert_int_equal(ch_json_parse(P, json, strlen(json), 0, &ev->raw_doc, &err), 0);
    ev->has_raw_doc = true;
    ev->raw_json = (ch_sv){json, (uint32_t)strlen(json)};
    ev->dataset = CH_DS_CLOUDTRAIL;
    ev->ts_ms = 1722588804000LL;
    ev->action = CH_SV("ConsoleLogin");
    ev->outcome = CH_OUTCOME_SUCCESS;
    ev->user_name = CH_SV("alice");
}

/* Re-parse the produced line with a second parser: it must be valid JSON. */
static ch_json_val reparse(ch_json_parser *q, ch_buf *b)
{
    ch_error err = {0};
    ch_json_val v;
    assert_int_equal(ch_json_parse(q, b->data, b->len, 0, &v, &err), 0);
    return v;
}

static const char *str_at(ch_json_val v, const char *a, const char *b)
{
    ch_json_val x, y;
    const char *s;
    size_t n;
    if (!ch_json_obj_get(v, a, strlen(a), &x))
        return NULL;
    if (b != NULL) {
        if (!ch_json_obj_get(x, b, strlen(b), &y))
            return NULL;
        x = y;
    }
    static char out[256];
    if (!ch_json_get_str(x, &s, &n) || n >= sizeof out)
        return NULL;
    memcpy(out, s, n);
    out[n] = '\0';
    return out;
}

static void test_ecs_fields_and_original_paths_on_one_line(void **state)
{
    (void)state;
    ch_event ev;
    ch_buf b;
    ch_buf_init(&b, 0);
    event_from_json(
        &ev, "{\"eventName\":\"ConsoleLogin\",\"additionalEventData\":{\"MFAUsed\":\"No\"}}");
    ch_ip_parse("81.2.69.142", 11, &ev.src_ip);
    memcpy(ev.src_geo.country, "GB", 3);
    assert_int_equal(ch_event_to_json(&ev, &b), 0);
    assert_null(memchr(b.data, '\n', b.len));
    ch_json_parser *q = ch_json_parser_new(1 << 20, 64);
    ch_json_val v = reparse(q, &b);
    assert_string_equal(str_at(v, "@timestamp", NULL), "2024-08-02T08:53:24Z");
    assert_string_equal(str_at(v, "event", "action"), "ConsoleLogin");
    assert_string_equal(str_at(v, "event", "dataset"), "cloudtrail");
    assert_string_equal(str_at(v, "event", "outcome"), "success");
    assert_string_equal(str_at(v, "user", "name"), "alice");
    assert_string_equal(str_at(v, "source", "ip"), "81.2.69.142");
    assert_string_equal(str_at(v, "additionalEventData", "MFAUsed"), "No");
    ch_json_val src, geo;
    assert_true(ch_json_obj_get(v, "source", 6, &src));
    assert_true(ch_json_obj_get(src, "geo", 3, &geo));
    assert_string_equal(str_at(geo, "country_iso_code", NULL), "GB");
    ch_json_parser_free(q);
    ch_buf_free(&b);
}

static void test_source_key_colliding_with_ecs_root_moves_under_original(void **state)
{
    (void)state;
    ch_event ev;
    ch_buf b;
    ch_buf_init(&b, 0);
    event_from_json(&ev, "{\"event\":\"theirs\",\"user\":{\"x\":1},\"keep\":\"me\"}");
    assert_int_equal(ch_event_to_json(&ev, &b), 0);
    ch_json_parser *q = ch_json_parser_new(1 << 20, 64);
    ch_json_val v = reparse(q, &b);
    assert_string_equal(str_at(v, "event", "action"), "ConsoleLogin");
    assert_string_equal(str_at(v, "original", "event"), "theirs");
    assert_string_equal(str_at(v, "keep", NULL), "me");
    /* Keys are unique: exactly one "event" member at the top level. */
    ch_json_iter it;
    const char *k;
    size_t kn;
    ch_json_val x;
    int events = 0;
    assert_true(ch_json_obj_iter(v, &it));
    while (ch_json_obj_next(&it, &k, &kn, &x))
        events += kn == 5 && memcmp(k, "event", 5) == 0;
    assert_int_equal(events, 1);
    ch_json_parser_free(q);
    ch_buf_free(&b);
}

static void test_flow_columns_written_without_missing_values(void **state)
{
    (void)state;
    ch_event ev;
    ch_buf b;
    ch_buf_init(&b, 0);
    ch_event_reset(&ev);
    ev.dataset = CH_DS_VPCFLOW;
    static const ch_sv names[] = {{"srcaddr", 7}, {"instance-id", 11}, {"tcp-flags", 9}};
    static const ch_sv vals[] = {{"10.0.0.1", 8}, {"-", 1}, {"19", 2}};
    ev.raw_names = names;
    ev.raw_values = vals;
    ev.raw_count = 3;
    ev.bytes = 4242;
    ev.flags = CH_F_BYTES;
    assert_int_equal(ch_event_to_json(&ev, &b), 0);
    ch_json_parser *q = ch_json_parser_new(1 << 20, 64);
    ch_json_val v = reparse(q, &b);
    assert_string_equal(str_at(v, "srcaddr", NULL), "10.0.0.1");
    assert_string_equal(str_at(v, "tcp-flags", NULL), "19");
    assert_null(str_at(v, "instance-id", NULL));
    ch_json_val net, bytes;
    uint64_t nb;
    assert_true(ch_json_obj_get(v, "network", 7, &net));
    assert_true(ch_json_obj_get(net, "bytes", 5, &bytes));
    assert_true(ch_json_get_u64(bytes, &nb));
    assert_int_equal(nb, 4242);
    ch_json_parser_free(q);
    ch_buf_free(&b);
}

/* Write evs through a writer to a file and read the file back. */
static char *written(ch_event *const *evs, size_t n, size_t *len)
{
    char path[] = "/tmp/ch-output-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    ch_output *o = NULL;
    ch_error err = {0};
    assert_int_equal(ch_output_open(&o, "jsonl", path, &err), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ch_output_write(o, evs[i]), 0);
    assert_int_equal(ch_output_close(o, &err), 0);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char data[1 << 16];
    *len = fread(data, 1, sizeof data, f);
    fclose(f);
    unlink(path);
    return data;
}

/* analyze --threads: a worker formats an event's line ahead (ch_output_prepare), the writer
 * copies it; when the pipeline's stateful steps changed what the line shows after that (entity
 * linking gave the event a user or an instance, intelligence matched, an id was given), the
 * writer formats the event as it is now. Either way the file is what formatting every event at
 * write time gives. */
static void test_prepared_line_is_written_unless_the_event_changed_since(void **state)
{
    (void)state;
    static const char *json = "{\"eventName\":\"ConsoleLogin\",\"k\":1}";
    enum { N = 5 };
    ch_event evs[N], plain[N];
    ch_event *pe[N], *pp[N];
    ch_arena arena;
    ch_arena_init(&arena, 4096);
    ch_buf scratch;
    ch_buf_init(&scratch, 0);
    ch_output *fmt = NULL;
    ch_error err = {0};
    assert_int_equal(ch_output_open(&fmt, "jsonl", NULL, &err), 0);
    for (int i = 0; i < N; i++) {
        event_from_json(&evs[i], json);
        evs[i].id = CH_SV("ev-1");
        assert_int_equal(ch_output_prepare(fmt, &evs[i], &scratch, &arena), 0);
        assert_true(evs[i].prep.done & CH_PREP_LINE);
        pe[i] = &evs[i];
        pp[i] = &plain[i];
    }
    /* After the worker: 0 unchanged, 1 linked to a user, 2 to an instance, 3 matched, 4 id. */
    evs[1].user_name = CH_SV("launcher");
    evs[2].instance_id = CH_SV("i-0abc");
    ch_ip pool;
    assert_true(ch_ip_parse("198.51.100.7", 12, &pool));
    evs[3].threat.set = "mining_pools";
    evs[3].threat.atomic_ip = pool;
    evs[3].threat.field = "destination.ip";
    evs[3].threat.confidence = -1;
    evs[4].id = CH_SV("r-00000000000000ff");
    for (int i = 0; i < N; i++) {
        plain[i] = evs[i];
        memset(&plain[i].prep, 0, sizeof plain[i].prep);
    }
    size_t n1, n2;
    char *a = written(pe, N, &n1);
    char *copy = malloc(n1);
    assert_non_null(copy);
    memcpy(copy, a, n1);
    char *b = written(pp, N, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(copy, b, n1);
    assert_non_null(strstr(copy, "\"launcher\""));
    assert_non_null(strstr(copy, "\"i-0abc\""));
    assert_non_null(strstr(copy, "\"mining_pools\""));
    assert_non_null(strstr(copy, "r-00000000000000ff"));
    /* The unchanged event's line is the prepared one, copied (not formatted again). */
    char marker[] = "{\"prepared\":true}";
    evs[0].prep.line = (ch_sv){marker, (uint32_t)strlen(marker)};
    a = written(pe, 1, &n1);
    assert_int_equal(n1, strlen(marker) + 1);
    assert_memory_equal(a, marker, strlen(marker));
    free(copy);
    ch_output_close(fmt, &err);
    ch_buf_free(&scratch);
    ch_arena_free(&arena);
}

static int setup(void **state)
{
    (void)state;
    P = ch_json_parser_new(1 << 20, 64);
    return P == NULL;
}

static int teardown(void **state)
{
    (void)state;
    ch_json_parser_free(P);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ecs_fields_and_original_paths_on_one_line),
        cmocka_unit_test(test_source_key_colliding_with_ecs_root_moves_under_original),
        cmocka_unit_test(test_flow_columns_written_without_missing_values),
        cmocka_unit_test(test_prepared_line_is_written_unless_the_event_changed_since),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
