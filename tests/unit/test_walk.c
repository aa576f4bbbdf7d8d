/*
 * test_walk.c - expansion of input paths: byte-order sorting, recursion, dotfiles, "-",
 * missing paths, symlink loops and directories reachable twice.
 *
 * A small tree is built under $TMPDIR (or /tmp) and removed afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ingest/walk.h"

static char root[256];

static void touch(const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fclose(f);
}

static void mkd(const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    assert_int_equal(mkdir(p, 0755), 0);
}

static int setup_tree(void **state)
{
    (void)state;
    const char *base = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/ch_walk_XXXXXX", base && *base ? base : "/tmp");
    if (mkdtemp(root) == NULL)
        return -1;
    return 0;
}

static int remove_tree(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

typedef struct seen {
    char files[64][512];
    char missing[16][512];
    char reasons[16][128];
    int nf, nm;
    int stop_after; /* stop the walk after this many files (0: never) */
} seen;

static int on_file(const char *path, void *ud)
{
    seen *s = ud;
    const char *rel = strncmp(path, root, strlen(root)) == 0 ? path + strlen(root) : path;
    snprintf(s->files[s->nf++], sizeof s->files[0], "%s", rel);
    return s->stop_after && s->nf == s->stop_after ? 42 : 0;
}

static int on_missing(const char *path, const char *reason, void *ud)
{
    seen *s = ud;
    const char *rel = strncmp(path, root, strlen(root)) == 0 ? path + strlen(root) : path;
    snprintf(s->missing[s->nm], sizeof s->missing[0], "%s", rel);
    snprintf(s->reasons[s->nm++], sizeof s->reasons[0], "%s", reason);
    return 0;
}

static void test_walk_sorts_by_bytes_recurses_and_skips_dotfiles(void **state)
{
    (void)state;
    mkd("logs");
    mkd("logs/b");
    mkd("logs/B");
    mkd("logs/.hidden");
    touch("logs/b/2.json");
    touch("logs/b/10.json");
    touch("logs/a.json.gz");
    touch("logs/Z.json");
    touch("logs/.DS_Store");
    touch("logs/.hidden/x.json");
    touch("logs/B/x.json");
    char p[512];
    snprintf(p, sizeof p, "%s/logs", root);
    const char *paths[] = {p};
    seen s = {0};
    assert_int_equal(ch_walk_paths(paths, 1, on_file, on_missing, &s), 0);
    assert_int_equal(s.nf, 5);
    /* strcmp order: upper case before lower case, "10" before "2"; directories descended
     * in their place among the names. */
    assert_string_equal(s.files[0], "/logs/B/x.json");
    assert_string_equal(s.files[1], "/logs/Z.json");
    assert_string_equal(s.files[2], "/logs/a.json.gz");
    assert_string_equal(s.files[3], "/logs/b/10.json");
    assert_string_equal(s.files[4], "/logs/b/2.json");
    assert_int_equal(s.nm, 0);

    /* A trailing slash gives the same paths, without a doubled slash. */
    snprintf(p, sizeof p, "%s/logs/", root);
    seen t = {0};
    assert_int_equal(ch_walk_paths(paths, 1, on_file, on_missing, &t), 0);
    assert_int_equal(t.nf, 5);
    assert_string_equal(t.files[0], "/logs/B/x.json");
}

static void test_walk_passes_stdin_and_named_files_through_in_order(void **state)
{
    (void)state;
    touch("named.log");
    touch(".dot-but-named.json");
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/named.log", root);
    snprintf(b, sizeof b, "%s/.dot-but-named.json", root);
    const char *paths[] = {b, "-", a};
    seen s = {0};
    assert_int_equal(ch_walk_paths(paths, 3, on_file, on_missing, &s), 0);
    assert_int_equal(s.nf, 3);
    assert_string_equal(s.files[0], "/.dot-but-named.json");
    assert_string_equal(s.files[1], "-");
    assert_string_equal(s.files[2], "/named.log");
}

static void test_walk_reports_missing_paths_and_goes_on(void **state)
{
    (void)state;
    mkd("m");
    touch("m/ok.json");
    char a[512], b[512], dangling[512], target[512];
    snprintf(a, sizeof a, "%s/nope.json", root);
    snprintf(b, sizeof b, "%s/m", root);
    snprintf(dangling, sizeof dangling, "%s/m/link.json", root);
    snprintf(target, sizeof target, "%s/m/gone.json", root);
    assert_int_equal(symlink(target, dangling), 0);
    const char *paths[] = {a, b};
    seen s = {0};
    assert_int_equal(ch_walk_paths(paths, 2, on_file, on_missing, &s), 0);
    assert_int_equal(s.nm, 2);
    assert_string_equal(s.missing[0], "/nope.json");
    assert_string_equal(s.reasons[0], strerror(ENOENT));
    assert_string_equal(s.missing[1], "/m/link.json");
    assert_int_equal(s.nf, 1);
    assert_string_equal(s.files[0], "/m/ok.json");

    /* Without a missing callback they are skipped silently. */
    seen t = {0};
    assert_int_equal(ch_walk_paths(paths, 2, on_file, NULL, &t), 0);
    assert_int_equal(t.nf, 1);
}

static void test_walk_symlink_loop_and_second_link_descend_once(void **state)
{
    (void)state;
    mkd("loop");
    mkd("loop/d");
    touch("loop/d/f.json");
    char link[512], target[512];
    snprintf(link, sizeof link, "%s/loop/d/back", root);
    snprintf(target, sizeof target, "%s/loop", root);
    assert_int_equal(symlink(target, link), 0); /* loop/d/back -> loop */
    snprintf(link, sizeof link, "%s/loop/e", root);
    snprintf(target, sizeof target, "%s/loop/d", root);
    assert_int_equal(symlink(target, link), 0); /* loop/e -> loop/d */
    char p[512];
    snprintf(p, sizeof p, "%s/loop", root);
    const char *paths[] = {p};
    seen s = {0};
    assert_int_equal(ch_walk_paths(paths, 1, on_file, on_missing, &s), 0);
    assert_int_equal(s.nf, 1);
    assert_string_equal(s.files[0], "/loop/d/f.json");
    assert_int_equal(s.nm, 0);
}

static void test_walk_stops_when_a_callback_says_so(void **state)
{
    (void)state;
    mkd("stop");
    touch("stop/1");
    touch("stop/2");
    touch("stop/3");
    char p[512];
    snprintf(p, sizeof p, "%s/stop", root);
    const char *paths[] = {p, p};
    seen s = {.stop_after = 2};
    assert_int_equal(ch_walk_paths(paths, 2, on_file, on_missing, &s), 42);
    assert_int_equal(s.nf, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_walk_sorts_by_bytes_recurses_and_skips_dotfiles),
        cmocka_unit_test(test_walk_passes_stdin_and_named_files_through_in_order),
        cmocka_unit_test(test_walk_reports_missing_paths_and_goes_on),
        cmocka_unit_test(test_walk_symlink_loop_and_second_link_descend_once),
        cmocka_unit_test(test_walk_stops_when_a_callback_says_so),
    };
    return cmocka_run_group_tests(tests, setup_tree, remove_tree);
}
