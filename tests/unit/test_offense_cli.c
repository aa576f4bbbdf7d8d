/*
 * test_offense_cli.c - `coinhound offenses list|show|close|hide|users` on a temporary database
 * filled through the store, calling ch_cmd_offenses directly and reading what it prints.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cmd_offenses.h"
#include "offense/store.h"

#define T0 1722588804000LL
#define MIN (60LL * 1000)

static const ch_rule_info R_CHAIN = {"CJ-CHAIN-01", "Kill chain", "cj", 10, 9, 10, 100};
static const ch_rule_info R_MINE = {"CJ-MINE-01", "Mining pool DNS", "cj", 9, 9, 9, 50};
static const ch_rule_info R_MFA = {"CJ-AUTH-05", "Login without MFA", "cj", 4, 6, 5, 10};

static char dir[64], db[128], outpath[128];

static void hit(ch_offenses *m, ch_risk *r, const ch_rule_info *rule, const char *user, int64_t ts,
                const char *id)
{
    ch_sv ids[1] = {{id, (uint32_t)strlen(id)}};
    ch_rule_hit h = {.rule = rule,
                     .ts_ms = ts,
                     .first_ms = ts,
                     .index_field = "user.name",
                     .index_value = {user, (uint32_t)strlen(user)},
                     .user = {user, (uint32_t)strlen(user)},
                     .event_ids = ids,
                     .nevent_ids = 1,
                     .event_count = 1,
                     .evidence = "why it fired"};
    assert_int_equal(ch_offenses_add_hit(m, &h, NULL), 1);
    ch_risk_add_hit(r, &h);
}

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/ch_offcli_XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(db, sizeof db, "%s/coinhound.db", dir);
    snprintf(outpath, sizeof outpath, "%s/out.txt", dir);
    ch_store *s = NULL;
    ch_error err = {0};
    if (ch_store_open(db, &s, &err) < 0)
        return -1;
    ch_offenses *m = ch_offenses_new();
    ch_risk *r = ch_risk_new(0);
    hit(m, r, &R_MFA, "bob", T0, "b1");            /* offense 1, low */
    hit(m, r, &R_MINE, "mallory", T0 + MIN, "m1"); /* offense 2, high */
    hit(m, r, &R_CHAIN, "mallory", T0 + 2 * MIN, "m2");
    hit(m, r, &R_MFA, "carol", T0 + 3 * MIN, "c1"); /* offense 3, low */
    int rc = ch_store_save(s, m, r, T0, &err);
    ch_offenses_free(m);
    ch_risk_free(r);
    ch_store_close(s);
    return rc;
}

static int teardown(void **state)
{
    (void)state;
    char p[160];
    const char *files[] = {"coinhound.db", "coinhound.db-wal", "coinhound.db-shm", "out.txt"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
    return 0;
}

/* Run `coinhound offenses ARGS...`; *out receives what it printed (caller frees). */
static int run(char **out, int argc, ...)
{
    char *argv[16];
    va_list ap;
    va_start(ap, argc);
    for (int i = 0; i < argc && i < 15; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    argv[argc] = NULL;
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    int fd = open(outpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, STDOUT_FILENO);
    close(fd);
    int rc = ch_cmd_offenses(argc, argv);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    FILE *f = fopen(outpath, "r");
    assert_non_null(f);
    char *buf = calloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
    fclose(f);
    *out = buf;
    return rc;
}

static void test_list_prints_open_offenses_by_magnitude(void **state)
{
    (void)state;
    char *out = NULL;
    assert_int_equal(run(&out, 4, "offenses", "list", "--db", db), CH_EXIT_OK);
    const char *mal = strstr(out, "user.name=mallory"), *bob = strstr(out, "user.name=bob");
    assert_non_null(strstr(out, "MAG"));
    assert_non_null(mal);
    assert_non_null(bob);
    assert_true(mal < bob);
    assert_non_null(strstr(out, "CJ-CHAIN-01"));
    free(out);
    assert_int_equal(run(&out, 6, "offenses", "list", "--db", db, "--format", "json"), CH_EXIT_OK);
    assert_true(strncmp(out,
                        "{\"offenses\":[{\"id\":2,\"index\":{\"field\":\"user.name\","
                        "\"value\":\"mallory\"}",
                        60) == 0);
    assert_non_null(strstr(out, "\"status\":\"open\""));
    free(out);
}

static void test_show_prints_rules_events_and_notes(void **state)
{
    (void)state;
    char *out = NULL;
    assert_int_equal(run(&out, 5, "offenses", "show", "2", "--db", db), CH_EXIT_OK);
    assert_non_null(strstr(out, "offense 2  [open]"));
    assert_non_null(strstr(out, "user.name=mallory"));
    assert_non_null(strstr(out, "CJ-MINE-01"));
    assert_non_null(strstr(out, "evidence: why it fired"));
    assert_non_null(strstr(out, "m2"));
    free(out);
    assert_int_equal(run(&out, 7, "offenses", "show", "--db", db, "--format", "json", "2"),
                     CH_EXIT_OK);
    assert_non_null(strstr(out, "\"event_ids\":[\"m1\",\"m2\"]"));
    free(out);
    assert_int_equal(run(&out, 5, "offenses", "show", "42", "--db", db), CH_EXIT_FAIL);
    free(out);
    assert_int_equal(run(&out, 5, "offenses", "show", "abc", "--db", db), CH_EXIT_USAGE);
    free(out);
}

static void test_close_and_hide_change_what_list_shows(void **state)
{
    (void)state;
    char *out = NULL;
    assert_int_equal(run(&out, 7, "offenses", "close", "1", "--db", db, "--note", "benign; MFA on"),
                     CH_EXIT_OK);
    assert_non_null(strstr(out, "offense 1 closed"));
    free(out);
    assert_int_equal(run(&out, 5, "offenses", "hide", "3", "--db", db), CH_EXIT_OK);
    free(out);
    assert_int_equal(run(&out, 5, "offenses", "hide", "1", "--db", db), CH_EXIT_USAGE);
    free(out);
    assert_int_equal(run(&out, 4, "offenses", "list", "--db", db), CH_EXIT_OK);
    assert_null(strstr(out, "=bob"));
    assert_null(strstr(out, "=carol"));
    assert_non_null(strstr(out, "=mallory"));
    free(out);
    assert_int_equal(run(&out, 6, "offenses", "list", "--db", db, "--status", "closed"),
                     CH_EXIT_OK);
    assert_non_null(strstr(out, "=bob"));
    assert_null(strstr(out, "=mallory"));
    free(out);
    assert_int_equal(run(&out, 6, "offenses", "list", "--db", db, "--status", "all"), CH_EXIT_OK);
    assert_non_null(strstr(out, "=bob"));
    assert_non_null(strstr(out, "=carol"));
    assert_non_null(strstr(out, "hidden"));
    free(out);
    assert_int_equal(run(&out, 5, "offenses", "show", "1", "--db", db), CH_EXIT_OK);
    assert_non_null(strstr(out, "[closed]  benign; MFA on"));
    free(out);
}

static void test_users_lists_risk_highest_first(void **state)
{
    (void)state;
    char *out = NULL;
    assert_int_equal(run(&out, 6, "offenses", "users", "--db", db, "--format", "json"), CH_EXIT_OK);
    assert_true(strncmp(out, "{\"users\":[{\"name\":\"mallory\",\"risk\":", 35) == 0);
    free(out);
}

static void test_usage_errors_and_missing_database(void **state)
{
    (void)state;
    char *out = NULL;
    char missing[160];
    snprintf(missing, sizeof missing, "%s/nope/none.db", dir);
    assert_int_equal(run(&out, 4, "offenses", "list", "--db", missing), CH_EXIT_FAIL);
    free(out);
    assert_int_equal(access(missing, F_OK), -1); /* not created */
    assert_int_equal(run(&out, 1, "offenses"), CH_EXIT_USAGE);
    free(out);
    assert_int_equal(run(&out, 2, "offenses", "frobnicate"), CH_EXIT_USAGE);
    free(out);
    assert_int_equal(run(&out, 6, "offenses", "list", "--db", db, "--format", "xml"),
                     CH_EXIT_USAGE);
    free(out);
    assert_int_equal(run(&out, 6, "offenses", "list", "--db", db, "--status", "pending"),
                     CH_EXIT_USAGE);
    free(out);
    assert_int_equal(run(&out, 3, "offenses", "close", "--db"), CH_EXIT_USAGE);
    free(out);
    assert_int_equal(run(&out, 6, "offenses", "list", "--db", db, "--note", "x"), CH_EXIT_USAGE);
    free(out);
    assert_int_equal(run(&out, 2, "offenses", "--help"), CH_EXIT_OK);
    assert_non_null(strstr(out, "usage: coinhound offenses list"));
    free(out);
}

int main(void)
{
    /* One database for the group: the tests run in order and build on each other. */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_prints_open_offenses_by_magnitude),
        cmocka_unit_test(test_show_prints_rules_events_and_notes),
        cmocka_unit_test(test_close_and_hide_change_what_list_shows),
        cmocka_unit_test(test_users_lists_risk_highest_first),
        cmocka_unit_test(test_usage_errors_and_missing_database),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
