/*
 * test_graph.c - the investigation graph (investigate/graph.h) over facts written straight into
 * a store: a launch burst folds into one group node (and expands back), separate bursts stay
 * apart, hubs are summarised, edges of folded members merge, a missing offense is an error, and
 * hostile labels cannot break the JSON or the DOT.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/json.h"
#include "investigate/facts.h"
#include "investigate/graph.h"
#include "offense/store.h"

#define MIN (60LL * 1000)
#define T0 1717490000000LL

typedef struct fx {
    char path[64];
    ch_store *s;
    ch_sql *c;
} fx;

static void exec(ch_sql *c, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : "?");
}

static void node(ch_sql *c, const char *id, const char *kind, const char *label, const char *attrs,
                 int64_t t)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(c->db,
                                        "INSERT INTO graph_nodes VALUES (1, ?, ?, ?, ?, ?, ?, 1)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, label, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, attrs, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, t);
    sqlite3_bind_int64(st, 6, t);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
}

static void edge(ch_sql *c, const char *kind, const char *s, const char *d, int64_t t, int count)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(c->db,
                                        "INSERT INTO graph_edges VALUES (1, ?, ?, ?, ?, ?, ?)", -1,
                                        &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, s, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, d, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, t);
    sqlite3_bind_int64(st, 5, t);
    sqlite3_bind_int(st, 6, count);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    snprintf(f->path, sizeof f->path, "/tmp/test_graph_%d.db", (int)getpid());
    unlink(f->path);
    ch_error err = {0};
    assert_int_equal(ch_store_open(f->path, &f->s, &err), 0);
    f->c = ch_store_sql(f->s);
    assert_int_equal(ch_facts_schema(f->c, &err), 0);
    exec(f->c, "INSERT INTO offenses (id, index_field, index_value, status, magnitude, score,"
               " severity, credibility, relevance, event_count, created, updated) VALUES"
               " (1, 'user.name', 'mallory', 'open', 9, 9, 8, 8, 8, 10, 0, 0)");
    /* mallory launches 8 instances within minutes (one burst), then 2 more a day later. */
    node(f->c, "user:mallory", "user", "mallory", "{\"type\":\"IAMUser\"}", T0);
    node(f->c, "domain:pool.example", "domain", "pool.example", "{}", T0);
    char id[64], eni[64], attrs[256];
    for (int i = 0; i < 10; i++) {
        int64_t t = i < 8 ? T0 + i * MIN : T0 + 24 * 60 * MIN + i * MIN;
        snprintf(id, sizeof id, "instance:i-%02d", i);
        snprintf(attrs, sizeof attrs,
                 "{\"type\":\"%s\",\"image\":\"ami-1\",\"region\":\"%s\",\"launched_by\":"
                 "\"mallory\"}",
                 i % 2 ? "p3.16xlarge" : "c5.4xlarge", i % 3 ? "us-east-1" : "sa-east-1");
        node(f->c, id, "instance", id + 9, attrs, t);
        edge(f->c, "launched", "user:mallory", id, t, 1);
        edge(f->c, "queried", id, "domain:pool.example", t + MIN, 3);
        snprintf(eni, sizeof eni, "eni:eni-%02d", i);
        node(f->c, eni, "interface", eni + 4, "{}", t);
        edge(f->c, "interface", id, eni, t, 1);
    }
    /* 40 user agents: a hub. */
    for (int i = 0; i < 40; i++) {
        snprintf(id, sizeof id, "ua:agent-%02d", i);
        node(f->c, id, "user_agent", id + 3, "{}", T0);
        edge(f->c, "agent", "user:mallory", id, T0, i + 1);
    }
    /* A label written by an attacker. */
    node(f->c, "ua:evil", "user_agent", "x\"];\n  \"pwn\" -> \"y\\ \xff", "{}", T0);
    edge(f->c, "agent", "domain:pool.example", "ua:evil", T0, 1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    ch_store_close(f->s);
    unlink(f->path);
    char p[96];
    snprintf(p, sizeof p, "%s-wal", f->path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", f->path);
    unlink(p);
    free(f);
    return 0;
}

/* Parse b as JSON; return the root (the parser is kept in *pp for freeing). */
static ch_json_val parse(ch_buf *b, ch_json_parser **pp)
{
    *pp = ch_json_parser_new(1 << 24, 64);
    ch_json_val root;
    ch_error err = {0};
    assert_int_equal(ch_json_parse(*pp, b->data, b->len, b->len, &root, &err), 0);
    return root;
}

static size_t count_kind(ch_json_val root, const char *kind, const char *what)
{
    ch_json_val el, arr, item, data, k;
    ch_json_iter it;
    assert_true(ch_json_obj_get(root, "elements", 8, &el));
    assert_true(ch_json_obj_get(el, what, strlen(what), &arr));
    assert_true(ch_json_arr_iter(arr, &it));
    size_t n = 0;
    while (ch_json_arr_next(&it, &item)) {
        const char *s;
        size_t sn;
        assert_true(ch_json_obj_get(item, "data", 4, &data));
        if (kind == NULL || (ch_json_obj_get(data, "kind", 4, &k) && ch_json_get_str(k, &s, &sn) &&
                             sn == strlen(kind) && memcmp(s, kind, sn) == 0))
            n++;
    }
    return n;
}

static void test_burst_becomes_one_group_and_expands(void **state)
{
    fx *f = *state;
    ch_error err = {0};
    ch_buf b;
    ch_buf_init(&b, 1 << 24);
    assert_int_equal(ch_offense_graph_json(f->c, 1, NULL, &b, &err), 0);
    ch_json_parser *p;
    ch_json_val root = parse(&b, &p);
    /* 8 launches minutes apart whatever their type and region: one group; the 2 of the next
     * day are too few to group and stay instances. */
    assert_int_equal(count_kind(root, "instance_group", "nodes"), 1);
    assert_int_equal(count_kind(root, "instance", "nodes"), 2);
    /* The members' interfaces fold into the group; the 2 loose instances keep theirs. */
    assert_int_equal(count_kind(root, "interface", "nodes"), 2);
    assert_non_null(strstr(b.data, "\"members_count\":8"));
    assert_non_null(strstr(b.data, "\"types\":[\"c5.4xlarge\",\"p3.16xlarge\"]"));
    /* The members' 8 DNS edges merge into one group -> domain edge with the counts added. */
    assert_non_null(strstr(b.data, "\"kind\":\"queried\""));
    assert_non_null(strstr(b.data, "\"count\":24}"));
    const char *g = strstr(b.data, "\"id\":\"group:instances:");
    assert_non_null(g);
    char gid[64];
    snprintf(gid, sizeof gid, "%.32s", g + 6);
    ch_json_parser_free(p);
    ch_buf_clear(&b);
    ch_graph_opts o = {.expand = gid, .hub_max = 100};
    assert_int_equal(ch_offense_graph_json(f->c, 1, &o, &b, &err), 0);
    root = parse(&b, &p);
    assert_int_equal(count_kind(root, "instance_group", "nodes"), 0);
    assert_int_equal(count_kind(root, "instance", "nodes"), 10);
    ch_json_parser_free(p);
    ch_buf_free(&b);
}

static void test_hub_keeps_the_busiest_and_summarises_the_rest(void **state)
{
    fx *f = *state;
    ch_error err = {0};
    ch_buf b;
    ch_buf_init(&b, 1 << 24);
    ch_graph_opts o = {.hub_max = 10};
    assert_int_equal(ch_offense_graph_json(f->c, 1, &o, &b, &err), 0);
    ch_json_parser *p;
    ch_json_val root = parse(&b, &p);
    /* mallory has 40 agents: the 10 busiest stay (agent-39 .. agent-30), 30 are summarised. */
    assert_int_equal(count_kind(root, "user_agent", "nodes"), 11); /* + the hostile one */
    assert_non_null(strstr(b.data, "\"label\":\"agent-39\""));
    assert_null(strstr(b.data, "\"label\":\"agent-00\""));
    assert_non_null(strstr(b.data, "\"label\":\"30 more user_agent\""));
    ch_json_parser_free(p);
    ch_buf_free(&b);
}

static void test_missing_offense_and_hostile_labels(void **state)
{
    fx *f = *state;
    ch_error err = {0};
    ch_graph *g = NULL;
    assert_int_equal(ch_graph_load(f->c, 2, NULL, &g, &err), CH_ENOTFOUND);
    assert_non_null(strstr(err.msg, "no offense 2"));
    assert_int_equal(ch_graph_load(f->c, 1, NULL, &g, &err), 0);
    ch_buf b;
    ch_buf_init(&b, 1 << 24);
    assert_int_equal(ch_graph_dot(g, &b), 0);
    /* The label's quote is escaped and its newline and invalid byte replaced: no statement of
     * its own can appear in the DOT. */
    assert_null(strstr(b.data, "\n  \"pwn\""));
    assert_non_null(strstr(b.data, "x\\\"];?  \\\"pwn\\\" -> \\\"y\\\\ ?"));
    ch_buf_clear(&b);
    assert_int_equal(ch_graph_json(g, &b), 0);
    ch_json_parser *p;
    (void)parse(&b, &p); /* valid JSON */
    ch_json_parser_free(p);
    ch_buf_free(&b);
    ch_graph_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_burst_becomes_one_group_and_expands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hub_keeps_the_busiest_and_summarises_the_rest, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_missing_offense_and_hostile_labels, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
