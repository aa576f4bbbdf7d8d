/*
 * corpora.h - the one way a unit test may skip: the shared corpora folder is absent.
 *
 * Real public data (../shared/corpora, see its MANIFEST.md) cannot ship with the repository,
 * so a clone without it still has to build and test. Every other missing prerequisite fails:
 * a skip that can also mean "the code regressed" or "the file was renamed" is a test that
 * cannot fail. Hence the three cases of ch_test_need_corpora(path):
 *
 *   - the corpora folder itself (CH_CORPORA_DIR) is absent: the test is skipped, with a line
 *     saying so, unless the environment says CI (CI set to anything but "", "0" or "false"),
 *     where the corpora are a prerequisite and the test fails;
 *   - the folder is there but path is not: the test fails naming the path (a moved or renamed
 *     corpus file must not turn into a silent skip);
 *   - both are there: the test goes on.
 *
 * A skipped test shows as "[  SKIPPED ]" in the binary's output and in its summary line; the
 * binary, and so ctest, still reports success for the tests that ran.
 *
 * Include after <cmocka.h>; tests are built with CH_CORPORA_DIR defined (CMakeLists.txt).
 */
#ifndef CH_TESTS_CORPORA_H
#define CH_TESTS_CORPORA_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* True when the environment says this is a CI run (CI=true, as CI services set it). */
static inline bool ch_test_in_ci(void)
{
    const char *ci = getenv("CI");
    return ci != NULL && *ci != '\0' && strcmp(ci, "0") != 0 && strcasecmp(ci, "false") != 0;
}

/* Skip (corpora folder absent, outside CI), fail (under CI, or path absent from a present
 * folder), or return to let the test run. path is a full path under CH_CORPORA_DIR. A macro,
 * so that a failure or skip names the calling test's file and line. */
#define ch_test_need_corpora(path) ch__test_need_corpora((path), __FILE__, __LINE__)

static inline void ch__test_need_corpora(const char *path, const char *file, int line)
{
    struct stat st;
    if (stat(CH_CORPORA_DIR, &st) != 0) {
        if (ch_test_in_ci()) {
            print_error("the shared corpora folder %s is absent, and CI is set: the corpora "
                        "are a prerequisite of CI runs\n",
                        CH_CORPORA_DIR);
            _fail(file, line);
        }
        print_message("SKIPPED: the shared corpora folder %s is absent\n", CH_CORPORA_DIR);
        _skip(file, line);
    }
    if (stat(path, &st) != 0) {
        print_error("%s is missing from the shared corpora folder (moved or renamed?)\n", path);
        _fail(file, line);
    }
}

#endif
