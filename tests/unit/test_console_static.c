/*
 * test_console_static.c - the console's file server: what it hands out (index for "/", files
 * by name with their types and cache rules) and what it refuses as "not found" whatever the
 * disk holds (parent segments, dot files, unknown types, links out of the directory,
 * directories, names that are not console names).
 *
 * A small console tree and a secret file beside it are built under $TMPDIR (or /tmp).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "server/console_static.h"

static char base[256], root[300];

static void put(const char *rel, const char *text)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", base, rel);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup_tree(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(base, sizeof base, "%s/ch_console_XXXXXX", tmp != NULL ? tmp : "/tmp");
    if (mkdtemp(base) == NULL)
        return -1;
    snprintf(root, sizeof root, "%s/console", base);
    char p[512];
    mkdir(root, 0755);
    snprintf(p, sizeof p, "%s/vendor", root);
    mkdir(p, 0755);
    put("console/index.html", "<!doctype html><title>coinhound</title>");
    put("console/app.js", "export const x = 1;\n");
    put("console/vendor/uPlot.min.css", ".u{}");
    put("console/.env", "SECRET=1");
    put("console/notes.exe", "MZ");
    put("secret.txt", "top secret");
    snprintf(p, sizeof p, "%s/secret.txt", base);
    char l[512];
    snprintf(l, sizeof l, "%s/leak.txt", root);
    if (symlink(p, l) != 0)
        return -1;
    snprintf(l, sizeof l, "%s/up", root);
    if (symlink(base, l) != 0)
        return -1;
    return 0;
}

static int remove_tree(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    return system(cmd) == 0 ? 0 : -1;
}

static int get(const char *path, ch_buf *b, ch_console_file *f)
{
    ch_buf_clear(b);
    return ch_console_file_get(root, path, b, f);
}

static void test_console_serves_index_and_files_with_types_and_cache_rules(void **state)
{
    (void)state;
    ch_buf b;
    ch_buf_init(&b, 0);
    ch_console_file f;
    assert_int_equal(get("/", &b, &f), 0);
    assert_string_equal(b.data, "<!doctype html><title>coinhound</title>");
    assert_string_equal(f.content_type, "text/html; charset=utf-8");
    assert_string_equal(f.cache_control, "no-cache");
    assert_int_equal(get("/app.js", &b, &f), 0);
    assert_string_equal(b.data, "export const x = 1;\n");
    assert_string_equal(f.content_type, "text/javascript; charset=utf-8");
    assert_string_equal(f.cache_control, "private, max-age=60");
    assert_int_equal(get("/vendor/uPlot.min.css", &b, &f), 0);
    assert_string_equal(f.content_type, "text/css; charset=utf-8");
    ch_buf_free(&b);
}

static void test_console_refuses_everything_that_is_not_a_console_file(void **state)
{
    (void)state;
    ch_buf b;
    ch_buf_init(&b, 0);
    ch_console_file f;
    static const char *const refused[] = {
        "/../secret.txt",
        "/vendor/../../secret.txt",
        "/.env",
        "/notes.exe",
        "/leak.txt",
        "/up/secret.txt",
        "/vendor",
        "/vendor/",
        "//app.js",
        "/app.js?x=1",
        "/app%2ejs",
        "app.js",
        "",
        "/missing.js",
        "/a/b/c/d/e/f/g/h/i/x.js",
        "/vendor/.hidden.js",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        int rc = get(refused[i], &b, &f);
        if (rc != CH_ENOTFOUND)
            fail_msg("%s answered %d, not CH_ENOTFOUND", refused[i], rc);
        assert_int_equal(b.len, 0);
    }
    /* No console configured: nothing is served. */
    assert_int_equal(ch_console_file_get("", "/", &b, &f), CH_ENOTFOUND);
    assert_int_equal(ch_console_file_get(NULL, "/", &b, &f), CH_ENOTFOUND);
    ch_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_console_serves_index_and_files_with_types_and_cache_rules),
        cmocka_unit_test(test_console_refuses_everything_that_is_not_a_console_file),
    };
    return cmocka_run_group_tests(tests, setup_tree, remove_tree);
}
