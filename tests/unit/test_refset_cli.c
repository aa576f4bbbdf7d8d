/*
 * test_refset_cli.c - `coinhound refset ...` and `coinhound intel load ...` run in-process
 * against a temporary database: exit codes, what lands in the store, and what export prints.
 * The mining lists and OASIS bundles of the shared corpora are used when present.
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
#include <sys/stat.h>
#include <unistd.h>

#include "corpora.h"

#include "cli/cmd_intel.h"
#include "cli/cmd_refset.h"
#include "intel/intel_store.h"

static char dir[128], db[192];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/ch_refset_cli_%d", (int)getpid());
    snprintf(db, sizeof db, "%s/c.db", dir);
    mkdir(dir, 0777);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Run a command with stdout captured into out (NUL-terminated). */
static int run(int (*fn)(int, char **), char *out, size_t cap, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, cap);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && argc < 31)
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    char path[256];
    snprintf(path, sizeof path, "%s/out.txt", dir);
    fflush(stdout);
    int saved = dup(1);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    dup2(fd, 1);
    close(fd);
    int rc = fn(argc, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    if (out != NULL) {
        FILE *f = fopen(path, "r");
        size_t n = f ? fread(out, 1, cap - 1, f) : 0;
        out[n] = '\0';
        if (f)
            fclose(f);
    }
    return rc;
}

static void write_file(const char *name, const char *text)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_add_show_remove_and_list_a_set(void **state)
{
    (void)state;
    static char out[1 << 16];
    assert_int_equal(run(ch_cmd_refset, out, sizeof out, "refset", "add", "pools",
                         "Pool.SupportXMR.com.", "--db", db, "--ttl", "24h", NULL),
                     0);
    assert_non_null(strstr(out, "added pool.supportxmr.com to pools (domain)"));
    assert_int_equal(run(ch_cmd_refset, out, sizeof out, "refset", "add", "pools", "minexmr.com",
                         "--db", db, NULL),
                     0);
    assert_int_equal(run(ch_cmd_refset, out, sizeof out, "refset", "add", "pool_ips",
                         "198.51.100.0/24", "--db", db, NULL),
                     0);
    assert_non_null(strstr(out, "(ip)"));
    assert_int_equal(run(ch_cmd_refset, out, sizeof out, "refset", "add", "pool_ips", "not-an-ip",
                         "--db", db, NULL),
                     2);
    assert_int_equal(run(ch_cmd_refset, out, sizeof out, "refset", "list", "--db", db, NULL), 0);
    assert_non_null(strstr(out, "pools"));
    assert_non_null(strstr(out, "pool_ips"));
    assert_int_equal(run(ch_cmd_refset, out, sizeof out, "refset", "show", "pools", "--db", db,
                         "--limit", "10", NULL),
                     0);
    assert_non_null(strstr(out, "pool.supportxmr.com"));
    assert_non_null(strstr(out, "cli"));
    assert_int_equal(run(ch_cmd_refset, out, sizeof out, "refset", "remove", "pools", "MINEXMR.com",
                         "--db", db, NULL),
                     0);
    assert_int_equal(run(ch_cmd_refset, out, sizeof out, "refset", "remove", "pools", "minexmr.com",
                         "--db", db, NULL),
                     1);
    assert_int_equal(
        run(ch_cmd_refset, out, sizeof out, "refset", "export", "pools", "--db", db, NULL), 0);
    assert_string_equal(out, "pool.supportxmr.com\n");
    assert_int_equal(
        run(ch_cmd_refset, out, sizeof out, "refset", "share", "pools", "--db", db, NULL), 0);
    assert_int_equal(run(ch_cmd_refset, out, sizeof out, "refset", "list", "--db", db, NULL), 0);
    assert_non_null(strstr(out, "yes"));
    assert_int_equal(run(ch_cmd_refset, out, sizeof out, "refset", "bogus", "--db", db, NULL), 2);
    assert_int_equal(run(ch_cmd_refset, out, sizeof out, "refset", "show", "--db", db, NULL), 2);
    char missing[256];
    snprintf(missing, sizeof missing, "%s/none.db", dir);
    assert_int_equal(run(ch_cmd_refset, out, sizeof out, "refset", "list", "--db", missing, NULL),
                     1);
    assert_int_not_equal(access(missing, F_OK), 0); /* not created */
}

static void test_export_json_and_stix(void **state)
{
    (void)state;
    static char out[1 << 16];
    assert_int_equal(run(ch_cmd_refset, out, sizeof out, "refset", "add", "bl", "coinhive.com",
                         "--db", db, NULL),
                     0);
    assert_int_equal(run(ch_cmd_refset, out, sizeof out, "refset", "export", "bl", "--format",
                         "json", "--db", db, NULL),
                     0);
    assert_non_null(strstr(out, "\"value\":\"coinhive.com\""));
    assert_int_equal(run(ch_cmd_refset, out, sizeof out, "refset", "export", "bl", "--format",
                         "stix", "--db", db, NULL),
                     0);
    assert_non_null(strstr(out, "\"type\":\"bundle\""));
    assert_non_null(strstr(out, "[domain-name:value = 'coinhive.com']"));
    /* the exported bundle loads back through intel load */
    write_file("bl.json", out);
    char p[256];
    snprintf(p, sizeof p, "%s/bl.json", dir);
    assert_int_equal(run(ch_cmd_intel_load, out, sizeof out, "load", p, "--db", db, "--domain-set",
                         "again", NULL),
                     0);
    assert_non_null(strstr(out, "1 loaded"));
    assert_int_equal(
        run(ch_cmd_refset, out, sizeof out, "refset", "export", "again", "--db", db, NULL), 0);
    assert_string_equal(out, "coinhive.com\n");
}

static void test_intel_load_detects_lists_and_their_types(void **state)
{
    (void)state;
    static char out[1 << 16];
    write_file("nocoin.txt", "! Title: test\n||coinhive.com^\n||minero.cc^$third-party\n"
                             "# c\n0.0.0.0 crypto-loot.com\n");
    write_file("pool-ips.txt", "# pools\n198.51.100.7\n203.0.113.0/24\n");
    char p1[256], p2[256];
    snprintf(p1, sizeof p1, "%s/nocoin.txt", dir);
    snprintf(p2, sizeof p2, "%s/pool-ips.txt", dir);
    assert_int_equal(run(ch_cmd_intel_load, out, sizeof out, "load", p1, p2, "--db", db, NULL), 0);
    assert_non_null(strstr(out, "set nocoin (domain): 3 stored"));
    assert_non_null(strstr(out, "set pool-ips (ip): 2 stored"));
    ch_error err = {0};
    ch_intel_store *s;
    assert_int_equal(ch_intel_store_open(db, &s, &err), 0);
    ch_refsets *r;
    assert_int_equal(ch_refsets_new(&r), 0);
    assert_int_equal(ch_intel_store_load_refsets(s, r, INT64_MIN, &err), 5);
    ch_refset *ips = ch_refsets_get(r, "pool-ips", 8);
    const ch_refset_elem *e = NULL;
    assert_true(ch_refset_contains(ips, "203.0.113.9", 11, 0, &e));
    assert_string_equal(e->source, "pool-ips");
    ch_refsets_free(r);
    ch_intel_store_close(s);
    /* --set and a missing file: the other files still load, exit 1 */
    assert_int_equal(run(ch_cmd_intel_load, out, sizeof out, "load", "/nonexistent/x.txt", p1,
                         "--set", "mine", "--db", db, NULL),
                     1);
    assert_non_null(strstr(out, "set mine (domain): 3 stored"));
    assert_int_equal(run(ch_cmd_intel_load, out, sizeof out, "load", "--db", db, NULL), 2);
}

static void test_intel_load_corpora_lists_and_bundles(void **state)
{
    (void)state;
    const char *nocoin = CH_CORPORA_DIR "/mining_lists/nocoin_hoshsadiq/nocoin.txt";
    const char *ips = CH_CORPORA_DIR "/mining_lists/coinblockerlists_2018/MiningServerIPList.txt";
    const char *poison = CH_CORPORA_DIR "/stix_taxii/cti-documentation/poisonivy.json";
    ch_test_need_corpora(nocoin);
    ch_test_need_corpora(ips);
    ch_test_need_corpora(poison);
    static char out[1 << 16];
    assert_int_equal(run(ch_cmd_intel_load, out, sizeof out, "load", poison, "--db", db, NULL), 0);
    assert_non_null(strstr(out, "25 indicators: 23 loaded"));
    assert_non_null(strstr(out, "unsupported: file:name: 2"));
    /* again: nothing new */
    assert_int_equal(run(ch_cmd_intel_load, out, sizeof out, "load", poison, "--db", db, NULL), 0);
    assert_non_null(strstr(out, "0 loaded"));
    assert_non_null(strstr(out, "25 unchanged or older"));
    assert_int_equal(run(ch_cmd_intel_load, out, sizeof out, "load", nocoin, ips, "--db", db, NULL),
                     0);
    assert_non_null(strstr(out, "set nocoin (domain)"));
    assert_non_null(strstr(out, "set MiningServerIPList (ip)"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_add_show_remove_and_list_a_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_export_json_and_stix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_intel_load_detects_lists_and_their_types, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_intel_load_corpora_lists_and_bundles, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
